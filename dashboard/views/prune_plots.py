"""HoloViews versions of the Prune view's plots, for the PNG/SVG export (and notebooks).

They draw the same data as the view's Bokeh figures: single-unit ablation bars, the unit
scatter with pruned units crossed, and the pruning curves with the random band.
"""
from __future__ import annotations

import math

import holoviews as hv
import numpy as np

from .overview import CLASS_COLORS

__all__ = ["effect_bars", "bars_axis_label", "layer_drops", "prune_scatter", "curve_plot", "PRUNED_COLOR", "ORDER_STYLE",
           "order_label", "ranked_by", "curves_title", "bars_title", "scatter_title"]

PRUNED_COLOR = "#222222"
ORDER_STYLE = {"most": ("#d62728", "most sensitive first"), "least": ("#1f77b4", "least sensitive first"),
               "random": ("#7f7f7f", "random (mean)")}


def ranked_by(curves) -> str:
    """How a pruning-curves Dataset ranked the units (its ``ranked_by`` attr, or ``by``)."""
    return str(curves.attrs.get("ranked_by", curves.attrs.get("by", "")))


def curves_title(curves, layer: str | None = None) -> str:
    """Title of the pruning curves of ``curves`` (the view's figure and the exported plot)."""
    layer = curves.attrs.get("layers", "") if layer is None else layer
    return f"Pruning curves of {layer}\n(ranked by {ranked_by(curves)}; {curves.attrs.get('n_repeats', 0)} random orders)"


def bars_title(layer: str, computed: bool, *, click: str | None = "a bar") -> str:
    """Title of the ablation bars of ``layer``; before they are computed, ``click`` names what a
    click prunes (the view's empty figure has no bars yet: "a unit's column"); None for the
    exported plot, where nothing is clicked (it names the pruned units' colour instead)."""
    what = ("drop on the validation block when each unit alone is pruned" if computed
            else "ablation effects not computed yet")
    if click is None:
        return f"{layer}: {what}\n(dark: pruned in the session)"
    return f"{layer}: {what}\n(click {'a bar' if computed else click} to prune / restore)"


def scatter_title(layer: str, *, clickable: bool = True) -> str:
    """Title of the unit scatter of ``layer`` in the Prune view, or of its exported plot
    (``clickable=False``: nothing to click there)."""
    if not clickable:
        return f"{layer}: units by amplitude and phase sensitivity\n(× pruned in the session)"
    return f"{layer}: click a unit\nto prune / restore it (× pruned)"


def order_label(order: str, by: str = "either") -> str:
    """Legend text of a pruning-curve order; a ranking by ablation ranks importance, not sensitivity."""
    label = ORDER_STYLE.get(str(order), ("", str(order)))[1]
    return label.replace("sensitive", "important") if by == "ablation" else label


def layer_drops(drop, layer: str, n_units: int) -> np.ndarray:
    """Ablation drop of each unit of ``layer`` by unit index (0 where not measured)."""
    vals = np.zeros(n_units)
    if drop is not None and n_units:
        sel = drop.where(drop["layer"] == layer, drop=True)
        vals[sel["index"].values.astype(int)] = np.nan_to_num(sel.values.astype(float))
    return vals


def bars_axis_label(layer: str, table=None, drop=None, by: str = "either") -> str:
    """x-axis label of the ablation bars; with the probe's ``table`` (``units.unit_table``) and
    the layer's ablation ``drop`` (per unit index), how well the sensitivity ``by`` that ranks
    the pruning curves predicts each unit's own drop (Spearman rank correlation)."""
    text = f"unit of {layer}"
    if drop is not None and table is not None and by in ("amplitude", "phase", "either"):
        from core.metrics import spearman_r

        score = {"amplitude": table["amp"], "phase": table["phase"],
                 "either": np.fmax(table["amp"], table["phase"])}[by]
        rho = spearman_r(score, drop)
        if np.isfinite(rho):
            text += f" · rank correlation of the drops with {by} sensitivity: {rho:+.2f}"
    return text


def effect_bars(drop, layer: str, pruned, n_units: int, *, table=None, by: str = "either") -> hv.Bars:
    """Single-unit ablation drop of every unit of ``layer`` as bars (x: unit id strings).

    Parameters
    ----------
    drop : xarray.DataArray (dims "unit") or None
        :func:`core.pruning.ablation_effects` output; None draws zero-height bars.
    pruned : sequence of int
        Units masked in the session (drawn dark).
    table, by
        The probe's table of the layer (``units.unit_table``) and the ranking sensitivity: the
        axis label then says how well it predicts the drops (see :func:`bars_axis_label`).
    """
    pruned = set(int(u) for u in pruned)
    vals = layer_drops(drop, layer, n_units)
    data = {"unit": [str(i) for i in range(n_units)], "drop": vals,
            "state": ["pruned" if i in pruned else "kept" for i in range(n_units)]}
    if not n_units:  # keep the axis categorical before a decoder exists (a later update needs it)
        data = {"unit": ["-"], "drop": [0.0], "state": ["kept"]}
    title = bars_title(layer, drop is not None, click=None)  # the export's: nothing to click there
    xlabel = bars_axis_label(layer, table, vals if drop is not None else None, by)
    return hv.Bars(data, "unit", ["drop", "state"]).opts(
        color="state", cmap={"pruned": PRUNED_COLOR, "kept": "#ff7f0e"}, tools=["hover", "tap"], responsive=True,
        height=240, xlabel=xlabel, ylabel="metric drop (validation)", title=title, show_legend=False, yformatter="%.2g",
        xrotation=90, fontsize={"xticks": 6 if n_units > 60 else 8}, framewise=True,
        line_alpha=0, nonselection_alpha=1.0)


def prune_scatter(probe, layer: str, pruned) -> hv.Overlay:
    """Units of ``layer``, amplitude vs phase sensitivity coloured by class; pruned ones crossed."""
    from .units import unit_table

    pruned = set(int(u) for u in pruned)
    if probe is None or layer not in set(probe["layer"].values):
        pts = hv.Points({"amp": [], "phase": [], "index": [], "cls": []}, ["amp", "phase"], ["index", "cls"])
        return (pts * hv.Points([], ["amp", "phase"])).opts(
            hv.opts.Points(framewise=True), hv.opts.Overlay(title="Units (run the probe to place them)", height=300,
                                                           responsive=True, framewise=True))
    t = unit_table(probe, layer)
    pts = hv.Points(t, ["amp", "phase"], ["index", "cls"]).opts(
        color="cls", cmap=CLASS_COLORS, size=9, tools=["hover", "tap"], line_color="white", show_legend=True,
        nonselection_alpha=1.0, framewise=True)
    m = np.isin(t["index"], list(pruned))
    crossed = hv.Points((t["amp"][m], t["phase"][m]), ["amp", "phase"]).opts(
        marker="x", size=14, color=PRUNED_COLOR, line_width=2, framewise=True)
    return (pts * crossed).opts(hv.opts.Overlay(
        title=scatter_title(layer, clickable=False), responsive=True, height=300,
        xlabel="amplitude sensitivity", ylabel="phase sensitivity", framewise=True,
        legend_position="right"))  # beside the plot: inside, it hid the units in its corner


def curve_plot(curves, *, current: tuple[float, float] | None = None) -> hv.Overlay:
    """Pruning curves: metric vs fraction pruned; random as mean with its 95% band.

    ``current`` is (fraction pruned in the layer, metric) of the session, drawn as a star.
    """
    ydim = hv.Dimension("metric", label="test block metric")
    xdim = hv.Dimension("fraction", label="fraction of the layer's units pruned")
    if curves is None:
        return (hv.Curve([], xdim, ydim) * hv.Scatter([], xdim, ydim)).opts(
            hv.opts.Overlay(title="Pruning curves: not computed yet", responsive=True, height=280))
    q = curves["fraction"].values
    parts = []
    if "random_lo" in curves:
        lo, hi = curves["random_lo"].values, curves["random_hi"].values
        parts.append(hv.Area((q, lo, hi), xdim, [ydim, "hi"], label="random (95% band)").opts(
            color="#7f7f7f", alpha=0.25, line_alpha=0))
    for order in curves["order"].values:
        color = ORDER_STYLE.get(str(order), ("#000000", ""))[0]
        label = order_label(str(order), ranked_by(curves))
        parts.append(hv.Curve((q, curves["metric"].sel(order=order).values), xdim, ydim, label=label).opts(
            color=color, line_width=2.5))
    star = hv.Scatter([current] if current is not None and all(map(math.isfinite, current)) else [], xdim, ydim,
                      label="this session").opts(marker="star", size=16, color="black")
    return hv.Overlay(parts + [star]).opts(
        hv.opts.Curve(framewise=True), hv.opts.Scatter(framewise=True), hv.opts.Area(framewise=True),
        hv.opts.Overlay(title=curves_title(curves), legend_position="top_right", responsive=True, height=300,
                        framewise=True))
