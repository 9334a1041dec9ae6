"""Prune: silence units and watch the held-out metric, with ablation bars, curves and a fine-tune.

Units are chosen by clicking them (the sensitivity scatter or the ablation bars: a click
prunes, a second click restores), by class, as the top-k most sensitive of the layer, or the
whole layer. Every edit re-measures the held-out metric at once (incremental
re-measurement, :class:`core.pruning.MaskEvaluator`); undo, reset, a mask file in and out,
and a short masked fine-tune show how much decoding recovers. The state lives in
:class:`dashboard.prune_state.PruneState`; this module only renders it.
"""
from __future__ import annotations

import math

import holoviews as hv
import numpy as np
import panel as pn
import param
from holoviews import streams

from ..prune_state import PruneState
from ..state import Session
from ._common import CSS, esc, placeholder
from .overview import CLASS_COLORS

__all__ = ["PruneView", "effect_bars", "prune_scatter", "curve_plot", "metric_html", "fmt_metric",
           "prune_state_of"]

PRUNED_COLOR = "#222222"
ORDER_STYLE = {"most": ("#d62728", "most sensitive first"), "least": ("#1f77b4", "least sensitive first"),
               "random": ("#7f7f7f", "random (mean)")}


def prune_state_of(session: Session) -> PruneState:
    """The session's :class:`PruneState`, created on first use (one per session)."""
    state = getattr(session, "_prune_state", None)
    if state is None:
        state = PruneState(session=session)
        session._prune_state = state
    return state


def fmt_metric(value: float) -> str:
    """A metric for display; NaN reads as undefined (e.g. a constant output)."""
    return "undefined" if value is None or not math.isfinite(value) else f"{value:.4f}"


def metric_html(ps: PruneState) -> str:
    """The before/after card: unpruned metric, current metric, change, units pruned."""
    name = {"pearson_r": "Pearson r", "balanced_accuracy": "balanced accuracy"}.get(ps.metric_name, ps.metric_name)
    if not ps.ready:
        return "<p class='us-muted'>Preparing the pruning evaluator ...</p>"
    n = sum(len(v) for v in ps.pruned.values())
    before, after = ps.metric_base, ps.metric
    if math.isfinite(before) and math.isfinite(after):
        delta = f"{after - before:+.4f}"
    else:
        delta = "n/a"
    note = ""
    if not math.isfinite(after):
        note = ("<p class='us-muted'>The metric is undefined: with these units pruned the decoder's output no "
                "longer varies (nothing reaches the output).</p>")
    state = ""
    if ps.measuring:
        state = (f" · waiting for a free core (position {ps.queue_position})" if ps.queue_position
                 else " · measuring ...")
    ft = ""
    if ps.finetuned:
        ft = " · <b>fine-tuned copy</b>"
    prev = ""
    if ps.last_change:
        prev = (f"<br><span class='us-muted'>last change: {esc(ps.last_change)} "
                f"({fmt_metric(ps.metric_previous)} → {fmt_metric(after)})</span>")
    return (
        f"<div class='us-prune-metric' style='font-size:15px'>Held-out {esc(name)} (test block): "
        f"unpruned <b class='us-metric-before'>{fmt_metric(before)}</b> → with the mask "
        f"<b class='us-metric-after' style='font-size:20px'>{fmt_metric(after)}</b> "
        f"(change <span class='us-metric-delta'>{delta}</span>) · "
        f"<span class='us-n-pruned'>{n}</span> unit(s) pruned{ft}{esc(state)}{prev}</div>{note}")


def effect_bars(drop, layer: str, pruned, n_units: int) -> hv.Bars:
    """Single-unit ablation drop of every unit of ``layer`` as bars (x: unit id strings).

    Parameters
    ----------
    drop : xarray.DataArray (dims "unit") or None
        :func:`core.pruning.ablation_effects` output; None draws zero-height bars.
    pruned : sequence of int
        Units masked in the session (drawn dark).
    """
    pruned = set(int(u) for u in pruned)
    vals = np.zeros(n_units)
    if drop is not None:
        sel = drop.where(drop["layer"] == layer, drop=True)
        vals[sel["index"].values.astype(int)] = np.nan_to_num(sel.values.astype(float))
    data = {"unit": [str(i) for i in range(n_units)], "drop": vals,
            "state": ["pruned" if i in pruned else "kept" for i in range(n_units)]}
    if not n_units:  # keep the axis categorical before a decoder exists (a later update needs it)
        data = {"unit": ["-"], "drop": [0.0], "state": ["kept"]}
    title = (f"{layer}: drop of the metric when each unit alone is pruned (click a bar to prune / restore)"
             if drop is not None else f"{layer}: ablation effects not computed yet (click a bar to prune / restore)")
    return hv.Bars(data, "unit", ["drop", "state"]).opts(
        color="state", cmap={"pruned": PRUNED_COLOR, "kept": "#ff7f0e"}, tools=["hover", "tap"], responsive=True,
        height=240, xlabel=f"unit of {layer}", ylabel="metric drop", title=title, show_legend=False,
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
        legend_position="top_right", nonselection_alpha=1.0, framewise=True)
    m = np.isin(t["index"], list(pruned))
    crossed = hv.Points((t["amp"][m], t["phase"][m]), ["amp", "phase"]).opts(
        marker="x", size=14, color=PRUNED_COLOR, line_width=2, framewise=True)
    return (pts * crossed).opts(hv.opts.Overlay(
        title=f"{layer}: click a unit to prune / restore it (× pruned)", responsive=True, height=300,
        xlabel="amplitude sensitivity", ylabel="phase sensitivity", framewise=True))


def curve_plot(curves, *, current: tuple[float, float] | None = None) -> hv.Overlay:
    """Pruning curves: metric vs fraction pruned; random as mean with its 95% band.

    ``current`` is (fraction pruned in the layer, metric) of the session, drawn as a star.
    """
    ydim = hv.Dimension("metric", label="held-out metric")
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
        color, label = ORDER_STYLE.get(str(order), ("#000000", str(order)))
        parts.append(hv.Curve((q, curves["metric"].sel(order=order).values), xdim, ydim, label=label).opts(
            color=color, line_width=2.5))
    star = hv.Scatter([current] if current is not None and all(map(math.isfinite, current)) else [], xdim, ydim,
                      label="this session").opts(marker="star", size=16, color="black")
    layer = curves.attrs.get("layers", "")
    by = curves.attrs.get("ranked_by", curves.attrs.get("by", ""))
    return hv.Overlay(parts + [star]).opts(
        hv.opts.Curve(framewise=True), hv.opts.Scatter(framewise=True), hv.opts.Area(framewise=True),
        hv.opts.Overlay(title=f"Pruning curves of {layer} (ranked by {by}; {curves.attrs.get('n_repeats', 0)} random "
                              "orders)", legend_position="bottom_left", responsive=True, height=300, framewise=True))


class PruneView(pn.viewable.Viewer):
    """Select units to prune, watch the metric, curves, ablation bars, fine-tune."""

    session = param.ClassSelector(class_=Session)
    title = "Prune"

    def __init__(self, **params):
        super().__init__(**params)
        s = self.session
        self.ps = ps = prune_state_of(s)
        self.layer = pn.widgets.Select(label="Layer", options=[], width=170)
        self.unit = pn.widgets.IntInput(label="Unit", value=s.unit, start=0, width=100, placeholder="unit index")
        self.toggle_btn = pn.widgets.Button(label="Prune unit", color="primary", width=170)
        self.cls = pn.widgets.Select(label="Class", options=["amplitude", "phase", "bimodal", "insensitive"], width=130)
        self.cls_btn = pn.widgets.Button(label="Prune class", width=120)
        self.k = pn.widgets.IntInput(label="k", value=5, start=1, width=80)
        self.by = pn.widgets.Select.from_param(ps.param.curves_by, label="Ranked by", width=120)
        self.top_btn = pn.widgets.Button(label="Prune top-k", width=120)
        self.layer_btn = pn.widgets.Button(label="Prune whole layer", color="danger", width=150)
        self.undo_btn = pn.widgets.Button(label="Undo", width=80)
        self.reset_btn = pn.widgets.Button(label="Reset", width=80)
        self.metric = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")
        self.mask_in = pn.widgets.FileInput(accept=".json", multiple=False, width=230)
        self.mask_out = pn.widgets.FileDownload(label="Download mask (JSON)", filename="unitscope-mask.json",
                                                callback=self._mask_file, width=200, color="light")
        self.effects_btn = pn.widgets.Button(label="Compute ablation effects", width=210)
        self.effects_progress = pn.indicators.Progress(value=0, max=1000, width=200, height=14, bar_color="warning")
        self.curves_btn = pn.widgets.Button(label="Compute pruning curves", width=210)
        self.curves_progress = pn.indicators.Progress(value=0, max=1000, width=200, height=14, bar_color="warning")
        self.epochs = pn.widgets.IntInput.from_param(ps.param.finetune_epochs, label="Epochs", width=90)
        self.ft_btn = pn.widgets.Button(label="Fine-tune", color="primary", width=110)
        self.ft_stop = pn.widgets.Button(label="Stop", color="danger", width=80, disabled=True)
        self.ft_discard = pn.widgets.Button(label="Discard fine-tune", width=150, disabled=True)
        self.ft_progress = pn.indicators.Progress(value=0, max=1000, width=220, height=16, bar_color="primary")
        self.ft_text = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")
        self._syncing = False

        self.layer.param.watch(self._layer_chosen, "value")
        self.unit.param.watch(self._unit_chosen, "value")
        self.toggle_btn.on_click(lambda e: ps.toggle(s.layer, s.unit))
        self.cls_btn.on_click(lambda e: ps.prune_class(s.layer, self.cls.value))
        self.top_btn.on_click(lambda e: ps.prune_top(s.layer, int(self.k.value or 1)))
        self.layer_btn.on_click(lambda e: ps.prune_layer(s.layer))
        self.undo_btn.on_click(lambda e: ps.undo())
        self.reset_btn.on_click(lambda e: ps.reset())
        self.mask_in.param.watch(self._mask_loaded, "value")
        self.effects_btn.on_click(lambda e: ps.compute_effects(s.layer))
        self.curves_btn.on_click(lambda e: ps.compute_curves(s.layer))
        self.ft_btn.on_click(lambda e: ps.start_finetune())
        self.ft_stop.on_click(lambda e: ps.stop_finetune())
        self.ft_discard.on_click(lambda e: ps.discard_finetune())
        s.param.watch(self._sync_selection, ["layer", "unit", "layer_names", "decoder_version"])
        ps.param.watch(self._sync_metric, ["ready", "metric", "metric_base", "measuring", "queue_position", "pruned",
                                           "last_change", "finetuned", "n_undo"])
        ps.param.watch(self._sync_progress, ["effects_progress", "curves_progress", "effects", "curves",
                                             "effects_layer", "curves_layer"])
        ps.param.watch(self._sync_finetune, ["finetune_state", "finetune_progress", "finetune_result", "finetuned",
                                             "queue_position"])
        s.param.watch(self._view_changed, "view")
        self._sync_selection()
        self._sync_metric()
        self._sync_progress()
        self._sync_finetune()
        if s.view == "prune":
            ps.activate()

        bars = hv.DynamicMap(pn.bind(self._bars, layer=s.param.layer, pruned=ps.param.pruned, effects=ps.param.effects,
                                     version=s.param.decoder_version))
        self.bar_tap = streams.Tap(source=bars, x=None, y=None)
        self.bar_tap.param.watch(self._bar_clicked, ["x", "y"])
        self.bars = pn.pane.HoloViews(bars, sizing_mode="stretch_width")
        scatter = hv.DynamicMap(pn.bind(self._scatter, layer=s.param.layer, pruned=ps.param.pruned,
                                        probe=s.param.probe))
        self.scatter_tap = streams.Tap(source=scatter, x=None, y=None)
        self.scatter_tap.param.watch(self._scatter_clicked, ["x", "y"])
        self.scatter = pn.pane.HoloViews(scatter, sizing_mode="stretch_width")
        self.curves = pn.pane.HoloViews(hv.DynamicMap(pn.bind(
            self._curves, layer=s.param.layer, curves=ps.param.curves, metric=ps.param.metric,
            pruned=ps.param.pruned)), sizing_mode="stretch_width")

    # ---- widgets <-> state -----------------------------------------------------------
    def _view_changed(self, event):
        if event.new == "prune":
            self.ps.activate()

    def _prunable(self) -> list[str]:
        return [n for n in self.session.layer_names if n != "conv_classifier"]

    def _layer_chosen(self, event):
        if not self._syncing and event.new:
            self.session.layer = event.new

    def _unit_chosen(self, event):
        if not self._syncing and event.new is not None:
            self.session.unit = int(event.new)

    def _sync_selection(self, *_):
        s = self.session
        self._syncing = True
        try:
            names = self._prunable()
            self.layer.param.update(options=names, value=s.layer if s.layer in names else None)
            self.unit.param.update(end=max(s.n_units() - 1, 0), value=s.unit)
        finally:
            self._syncing = False
        self._sync_toggle_label()
        if s.layer in self._prunable():
            self._auto_effects()

    def _auto_effects(self):
        """Show the ablation effects of the layer at once when some session already computed them."""
        ps = self.ps
        if ps.shared is not None and ("ablation", self.session.layer) in ps.shared.cache:
            ps.compute_effects(self.session.layer)

    def _sync_toggle_label(self):
        s, ps = self.session, self.ps
        ok = s.layer in self._prunable() and ps.ready
        is_pruned = s.unit in ps.pruned.get(s.layer, [])
        self.toggle_btn.label = f"{'Restore' if is_pruned else 'Prune'} {s.layer}/{s.unit}"
        for w in (self.toggle_btn, self.cls_btn, self.top_btn, self.layer_btn, self.effects_btn, self.curves_btn,
                  self.ft_btn):
            w.disabled = not ok
        self.undo_btn.disabled = ps.n_undo == 0
        self.reset_btn.disabled = not ps.pruned and not ps.finetuned

    def _sync_metric(self, *_):
        self.metric.object = metric_html(self.ps)
        self._sync_toggle_label()

    def _sync_progress(self, *_):
        ps = self.ps
        self.effects_progress.value = int(round(ps.effects_progress * 1000))
        self.curves_progress.value = int(round(ps.curves_progress * 1000))

    def _sync_finetune(self, *_):
        ps = self.ps
        running = ps.finetune_state in ("queued", "running")
        self.ft_btn.disabled = running or not ps.ready
        self.ft_stop.disabled = not running
        self.ft_discard.disabled = not ps.finetuned or running
        self.ft_progress.value = int(round(ps.finetune_progress * 1000))
        r = ps.finetune_result
        if ps.finetune_state == "queued":
            pos = ps.queue_position
            text = f"Fine-tune waiting for a free core{f' (position {pos} in line)' if pos else ''} ..."
        elif ps.finetune_state == "running":
            text = f"Fine-tuning a copy of the decoder with the mask attached: {ps.finetune_progress:.0%}"
        elif r:
            drop = r["unpruned"] - r["before"]
            gain = r["after"] - r["before"]
            share = (f" ({gain / drop:.0%} of the drop recovered)" if math.isfinite(drop) and drop > 1e-6
                     and math.isfinite(gain) else "")
            text = (f"Fine-tune {'stopped' if ps.finetune_state == 'stopped' else 'done'} ({r['n_steps']} steps, "
                    f"{r['seconds']:.0f} s): unpruned {fmt_metric(r['unpruned'])}, pruned "
                    f"{fmt_metric(r['before'])} → after fine-tune <b class='us-ft-after'>{fmt_metric(r['after'])}"
                    f"</b>{share}. The shared decoder is unchanged; this session measures its own copy.")
        elif ps.finetune_state == "error":
            text = "The fine-tune failed (see the message above)."
        else:
            text = ("Optional: a short fine-tune of a copy with the pruned units kept silent shows how much "
                    "decoding recovers.")
        self.ft_text.object = f"<span class='us-muted'>{text}</span>"

    def _mask_file(self):
        import io

        try:
            return io.StringIO(self.ps.mask_json())
        except Exception as exc:  # noqa: BLE001 - shown as an alert, never a traceback
            self.session.alert(f"No mask to download: {exc}")
            return io.StringIO("")

    def _mask_loaded(self, event):
        if event.new:
            self.ps.load_mask(event.new)

    # ---- clicks on plots ---------------------------------------------------------------
    def _bar_clicked(self, *_):
        x = self.bar_tap.x
        if x is None:
            return
        try:
            unit = int(round(float(x)))
        except (TypeError, ValueError):
            return
        s = self.session
        if 0 <= unit < s.n_units():
            s.unit = unit
            self.ps.toggle(s.layer, unit)

    def _scatter_clicked(self, *_):
        x, y = self.scatter_tap.x, self.scatter_tap.y
        probe = self.session.probe
        if x is None or y is None or probe is None:
            return
        from .units import unit_table

        s = self.session
        if s.layer not in set(probe["layer"].values):
            return
        t = unit_table(probe, s.layer)
        sx = max(float(np.ptp(t["amp"])), 1e-9)
        sy = max(float(np.ptp(t["phase"])), 1e-9)
        d = ((t["amp"] - x) / sx) ** 2 + ((t["phase"] - y) / sy) ** 2  # snap to the nearest unit
        k = int(np.argmin(d))
        if d[k] > 0.05 ** 2 * 2:  # a click far from every unit does nothing
            return
        unit = int(t["index"][k])
        s.unit = unit
        self.ps.toggle(s.layer, unit)

    # ---- plots -----------------------------------------------------------------------------
    def _bars(self, layer, pruned, effects, version):
        dec = self.session.decoder
        n = dec.n_units.get(layer, 0) if dec is not None and layer in self._prunable() else 0
        drop = effects if (effects is not None and self.ps.effects_layer == layer) else None
        return effect_bars(drop, layer, pruned.get(layer, []), n)

    def _scatter(self, layer, pruned, probe):
        return prune_scatter(probe, layer, pruned.get(layer, []))

    def _curves(self, layer, curves, metric, pruned):
        dec = self.session.decoder
        if curves is None or self.ps.curves_layer != layer or dec is None:
            return curve_plot(None)
        n = dec.n_units.get(layer, 1)
        return curve_plot(curves, current=(len(pruned.get(layer, [])) / n, metric))

    def __panel__(self):
        s = self.session
        def low(w):
            return pn.Column(pn.Spacer(height=18), w, margin=0)

        row1 = pn.Row(self.layer, self.unit, low(self.toggle_btn), low(self.layer_btn), low(self.undo_btn),
                      low(self.reset_btn), sizing_mode="stretch_width")
        row2 = pn.Row(self.cls, low(self.cls_btn), self.k, self.by, low(self.top_btn), sizing_mode="stretch_width")
        row3 = pn.Row(pn.pane.HTML("<b>Mask file</b>", margin=(12, 5, 5, 5), width=80), self.mask_in, self.mask_out,
                      sizing_mode="stretch_width")
        no_decoder = placeholder("No decoder yet: load the demo or train one (Data & model).",
                                 visible=s.param.decoder.rx().rx.is_(None))
        output_note = pn.pane.HTML("<p class='us-muted'>The output layer (conv_classifier) cannot be pruned: "
                                   "choose a hidden layer.</p>", visible=s.param.layer.rx() == "conv_classifier")
        analyses = pn.Row(pn.Column(self.effects_btn, self.effects_progress),
                          pn.Column(self.curves_btn, self.curves_progress), sizing_mode="stretch_width")
        finetune = pn.Column(pn.pane.HTML("<h4>Recover by fine-tuning</h4>", margin=(0, 5)),
                             pn.Row(self.epochs, pn.Column(pn.Spacer(height=18), pn.Row(self.ft_btn, self.ft_stop,
                                                                                          self.ft_discard)),
                                    pn.Column(pn.Spacer(height=28), self.ft_progress)),
                             self.ft_text, sizing_mode="stretch_width")
        return pn.Column(no_decoder, self.metric, row1, row2, row3, output_note,
                         pn.Row(self.scatter, self.curves, sizing_mode="stretch_width"),
                         self.bars, analyses, finetune, sizing_mode="stretch_width")
