"""The figures of UnitScope's HTML report (:mod:`core.report`), drawn with matplotlib (Agg,
no GUI) and returned as ``data:image/png;base64,...`` URIs to embed."""
from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np

__all__ = ["figure_png", "new_figure", "dark_above", "confusion_counts", "prediction_fig", "confusion_fig",
           "class_bars", "class_legend", "fractions_fig", "unit_maps_fig", "curves_fig", "kernels_fig",
           "batch_metric_fig", "batch_fractions_fig", "CLASS_COLORS", "ORDER_COLORS"]

CLASS_COLORS = {"amplitude": "#d62728", "phase": "#1f77b4", "bimodal": "#9467bd", "insensitive": "#c7c7c7"}
ORDER_COLORS = {"most": "#d62728", "least": "#1f77b4", "random": "#7f7f7f"}


def figure_png(fig, *, dpi: int = 100) -> str:
    """A matplotlib Figure as a ``data:image/png;base64,...`` URI."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def new_figure(w: float = 9.0, h: float = 3.0, ncols: int = 1, *, layout: str | None = None):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), layout=layout)
    axes = fig.subplots(1, ncols) if ncols > 1 else fig.add_subplot(1, 1, 1)
    return fig, axes


def prediction_fig(pred: dict) -> str:
    fig, ax = new_figure(10, 2.8)
    t = np.asarray(pred["time"])
    n = min(len(t), int(np.searchsorted(t, t[0] + 60.0)) or len(t))  # the first minute [A]
    ax.plot(t[:n], np.asarray(pred["true"])[:n], color="#333333", lw=1, label="true")
    ax.plot(t[:n], np.asarray(pred["pred"])[:n], color="#d62728", lw=1, label="predicted")
    ax.set_xlabel("time (s)")
    ax.set_ylabel(str(pred.get("target", "target")))
    ax.legend(loc="upper right", fontsize=8)
    return figure_png(fig)


def dark_above(top) -> float:
    """Counts above this, out of a largest count ``top``, sit on a confusion matrix's dark cells
    and are written in white (black on navy does not read): the app, its export and the report
    draw them alike."""
    return max(int(top), 1) / 2


def confusion_counts(pred: dict) -> tuple[list[str], np.ndarray]:
    """The class names in natural order (trigger codes as numbers: 2 before 16) and the test
    trials per (predicted, true) class in that order, rows predicted (the app's axes)."""
    from .recording import natural_key

    classes = [str(c) for c in pred["classes"]]
    order = sorted(range(len(classes)), key=lambda i: natural_key(classes[i]))
    where = {c: k for k, c in enumerate(order)}
    cm = np.zeros((len(classes),) * 2, dtype=int)
    for t, p in zip(np.asarray(pred["true"]).astype(int), np.asarray(pred["pred"]).astype(int)):
        cm[where[p], where[t]] += 1
    return [classes[i] for i in order], cm


def confusion_fig(pred: dict) -> str:
    """Test trials per (true, predicted) class (:func:`confusion_counts`), counts in the
    cells: white on the dark ones, as the app draws them."""
    names, cm = confusion_counts(pred)
    n = len(names)
    size = min(3.0 + 0.35 * n, 9.0)
    fig, ax = new_figure(size + 1.0, size)
    im = ax.imshow(cm, origin="lower", cmap="Blues", vmin=0, vmax=max(int(cm.max()), 1))
    if n <= 20:  # [A] counts stay legible up to 20 classes
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > dark_above(cm.max()) else "black")
    ax.set_xticks(range(n), names, rotation=90 if n > 8 else 0)
    ax.set_yticks(range(n), names)
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    from matplotlib.ticker import MaxNLocator

    fig.colorbar(im, ax=ax, label="trials", ticks=MaxNLocator(integer=True))  # whole trials
    return figure_png(fig)


def class_bars(ax, frac, title: str) -> None:
    """Stacked bars of the unit-class fractions (DataArray layer x class) of one decoder."""
    from .probing import CLASSES

    layers = [str(x) for x in frac["layer"].values]
    bottom = np.zeros(len(layers))
    for c in CLASSES:
        v = np.nan_to_num(frac.sel({"class": c}).values)
        ax.bar(layers, v, bottom=bottom, color=CLASS_COLORS.get(c, "#999999"), label=c)
        bottom += v
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("fraction of units")
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)


def class_legend(ax) -> None:
    """The classes' legend beside the last panel: stacked fractions fill every bar to 1, so inside
    the axes it covered the bars."""
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)


def fractions_fig(probe, control) -> str:
    from .probing import class_fractions

    sets = [("trained", probe)] + ([("untrained control", control)] if control is not None else [])
    fig, axes = new_figure(4.5 * len(sets), 3.0, ncols=len(sets))
    axes = np.atleast_1d(axes)
    for ax, (label, ds) in zip(axes, sets):
        class_bars(ax, class_fractions(ds), label)
    class_legend(axes[-1])
    return figure_png(fig)


def unit_maps_fig(probe, uid: str) -> str:
    # constrained: the first map's colour bar label ran into the second map's channel names
    fig, axes = new_figure(10, 3.6, ncols=2, layout="constrained")
    for ax, var, label in zip(axes, ("amp_corr", "phase_corr"), ("amplitude", "phase")):
        da = probe[var].sel(unit=uid)
        vals = np.asarray(da.values, dtype=float)  # (channel, freq)
        lim = float(np.nanmax(np.abs(vals))) if np.isfinite(vals).any() else 1.0
        freqs = da["freq"].values
        im = ax.imshow(vals, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-(lim or 1), vmax=lim or 1,
                       extent=(float(freqs[0]), float(freqs[-1]), -0.5, vals.shape[0] - 0.5), interpolation="nearest")
        if "band_lo" in probe:
            for edge in sorted(set(probe["band_lo"].values.tolist()) | set(probe["band_hi"].values.tolist())):
                ax.axvline(edge, color="black", lw=0.6, ls="--")
        chans = [str(c) for c in da["channel"].values]
        step = -(-len(chans) // 40)  # [A] at most 40 names: every k-th row of a 64- or 306-channel map
        ax.set_yticks(range(0, len(chans), step), chans[::step], fontsize=6)
        ax.set_xlabel("frequency (Hz)")
        ax.set_ylabel("channel")
        ax.set_title(f"{uid} {label} sensitivity", fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.8, label="r", pad=0.02)
    return figure_png(fig)


def curves_fig(ds) -> str:
    fig, ax = new_figure(6, 3.2)
    q = ds["fraction"].values
    if "random_lo" in ds:
        ax.fill_between(q, ds["random_lo"].values, ds["random_hi"].values, color="#7f7f7f", alpha=0.25,
                        label="random (95% band)")
    for order in ds["order"].values:
        ax.plot(q, ds["metric"].sel(order=order).values, color=ORDER_COLORS.get(str(order), "k"), lw=2,
                label={"most": "most sensitive first", "least": "least sensitive first",
                       "random": "random (mean)"}.get(str(order), str(order)))
    ax.set_xlabel("fraction of units pruned")
    ax.set_ylabel(str(ds.attrs.get("metric", "metric")))
    ax.legend(fontsize=7)
    ax.set_title(f"{ds.attrs.get('layers', '')} (ranked by {ds.attrs.get('ranked_by', ds.attrs.get('by', ''))})",
                 fontsize=10)
    return figure_png(fig)


def kernels_fig(current, previous, value_label: str) -> str:
    from .deconv.signals import codes_axis

    x = codes_axis(current)
    fig, axes = new_figure(10, 3.0, ncols=2)
    colors = ["#1f5f8b", "#d62728", "#2ca02c", "#9467bd"]
    for i, k in enumerate(current["kernel"].values):
        c = colors[i % len(colors)]
        if previous is not None and k in previous["kernel"].values:
            axes[0].plot(previous["lag"].values, previous["kernels"].sel(kernel=k).values, color=c, alpha=0.35,
                         ls="--", label=f"{k} (before)")
            axes[1].scatter(previous[x].values, previous["codes"].sel(kernel=k).values, color=c, alpha=0.25,
                            s=12)
        axes[0].plot(current["lag"].values, current["kernels"].sel(kernel=k).values, color=c, lw=2, label=str(k))
        axes[1].scatter(current[x].values, current["codes"].sel(kernel=k).values, color=c, s=16, label=str(k))
    axes[0].axvline(0, color="#888888", ls=":")
    axes[0].set_xlabel("time from onset (s)")
    axes[0].set_ylabel("kernel (unit norm)")
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel(value_label if x == "value" else "event onset (s)")
    axes[1].set_ylabel("code")
    return figure_png(fig)


def batch_metric_fig(ds, groups) -> str:
    """The held-out metric of every finished run, one column per (recording, decoder)."""
    fig, ax = new_figure(max(4.0, 1.3 * len(groups) + 2), 3.0)
    test = ds["test"].astype(float)
    finished = [r for g in groups for r in g["finished"]]
    for i, g in enumerate(groups):
        v = test.sel(run=g["finished"]).values
        jitter = (np.arange(len(v)) - (len(v) - 1) / 2) * 0.06
        ax.scatter(i + jitter, v, color="#1f5f8b", zorder=3, s=22)
        if np.isfinite(g["mean"]):
            ax.hlines(g["mean"], i - 0.3, i + 0.3, color="#d62728", lw=2, zorder=2)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{Path(g['source']).name}\n{g['model']}" for g in groups], fontsize=8)
    task = str(ds["task"].sel(run=finished[0]).values) if "task" in ds.coords and finished else ""
    ax.set_ylabel("test balanced accuracy" if task == "classification" else "test Pearson r")
    ax.grid(axis="y", alpha=0.3)
    return figure_png(fig)


def batch_fractions_fig(frac) -> str:
    models = [str(m) for m in frac["model"].values]
    fig, axes = new_figure(4.5 * len(models), 3.0, ncols=len(models))
    axes = np.atleast_1d(axes)
    for ax, model in zip(axes, models):
        f = frac.sel(model=model)
        f = f.isel(layer=np.flatnonzero(np.isfinite(f.values).any(axis=-1)))  # this decoder's layers
        class_bars(ax, f, f"{model}: mean over runs")
    class_legend(axes[-1])
    return figure_png(fig)
