"""Overview: decoding on the test block, a multichannel signal browser, unit classes per layer."""
from __future__ import annotations

import weakref

import holoviews as hv
import numpy as np
import panel as pn
import param
from holoviews.operation.downsample import downsample1d
from holoviews.plotting.links import RangeToolLink

from ..state import Session
from ._common import CSS, esc, placeholder

__all__ = ["OverviewView", "prediction_plot", "signal_browser", "fraction_table", "fraction_plot",
           "CLASS_COLORS"]

CLASS_COLORS = {"amplitude": "#d62728", "phase": "#1f77b4", "bimodal": "#9467bd",
                "insensitive": "#c7c7c7", "unclassified": "#e0e0e0"}


def prediction_plot(pred: dict):
    """Predicted vs true target on the test block (regression) or a confusion matrix (labels)."""
    if pred["task"] == "regression":
        t = pred["time"]
        tdim = hv.Dimension("test_time", label="time", unit="s")  # not linked to the signal browser
        ydim = hv.Dimension("target", label=pred.get("target", "target"))
        true = hv.Curve((t, pred["true"]), tdim, ydim, label="true").opts(color="#333333")
        est = hv.Curve((t, pred["pred"]), tdim, ydim, label="predicted").opts(color="#d62728")
        return downsample1d(true * est, width=1200).opts(
            hv.opts.Curve(line_width=1.2, responsive=True, height=260, tools=["xwheel_zoom"]),
            hv.opts.Overlay(legend_position="top_right", title=f"Test block: Pearson r = {pred['metric']:.3f}"))
    classes = pred["classes"]
    n = len(classes)
    cm = np.zeros((n, n), dtype=int)
    for a, b in zip(pred["true"], pred["pred"]):
        cm[int(a), int(b)] += 1
    rows = [(classes[i], classes[j], cm[i, j]) for i in range(n) for j in range(n)]
    hm = hv.HeatMap(rows, ["true", "predicted"], "trials").opts(
        cmap="Blues", colorbar=True, tools=["hover"], height=300, width=380,
        title=f"Test trials: balanced accuracy = {pred['metric']:.3f}")
    return hm * hv.Labels(hm).opts(text_color="black")


_CURVES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # decoder -> (curves, minimap)


def _browser_elements(decoder, max_chans: int):
    """Channel curves and the minimap image of a decoder's recording (built once, shared).

    HoloViews elements are immutable, so sessions showing the same (demo) decoder share them.
    """
    if decoder in _CURVES:
        return _CURVES[decoder]
    sig = decoder.ws.recording.signals
    names = [str(c) for c in sig["channel"].values][:max_chans]
    data = sig.values[: len(names)]  # (chans, times), standardised
    t = sig["time"].values
    curves = [hv.Curve(np.column_stack([t, data[i]]), "time", "amplitude", label=f"{i}: {name}").opts(
        subcoordinate_y=True, subcoordinate_scale=2.5, line_width=0.8, color="#1f3b57")
        for i, name in enumerate(names)]
    n_bins = min(2000, len(t))
    edges = np.linspace(0, len(t), n_bins + 1).astype(int)
    env = np.sqrt(np.add.reduceat(data.astype(np.float64) ** 2, edges[:-1], axis=1)
                  / np.diff(edges)[None])  # (chans, bins) RMS per bin
    tb = t[(edges[:-1] + edges[1:]) // 2]
    minimap = hv.Image((tb, np.arange(len(names)), env), ["time", "channel"], "rms")
    _CURVES[decoder] = (curves, minimap, float(t[0]))
    return _CURVES[decoder]


def signal_browser(decoder, *, window_s: float = 10.0, max_chans: int = 64):
    """Stacked channels (LTTB-downsampled on zoom) with a minimap of the whole recording."""
    curves, minimap, t0 = _browser_elements(decoder, max_chans)
    main = downsample1d(hv.Overlay(curves, kdims="channel"), width=1000).opts(
        hv.opts.Overlay(show_legend=False, responsive=True, height=520, xlabel="time (s)", xlim=(t0, t0 + window_s),
                        title="Signals (standardised); drag the box in the minimap to move",
                        tools=["xwheel_zoom", "xpan"], active_tools=["xpan"]),
        hv.opts.Curve(tools=["hover"]))
    minimap = minimap.clone().opts(
        cmap="Greys", responsive=True, height=110, yaxis=None, xlabel="time (s)", toolbar=None,
        default_tools=[], title="")
    RangeToolLink(minimap, main, axes=["x"], boundsx=(t0, t0 + window_s))
    return pn.Column(pn.pane.HoloViews(main, sizing_mode="stretch_width"),
                     pn.pane.HoloViews(minimap, sizing_mode="stretch_width"), sizing_mode="stretch_width")


def fraction_table(ds):
    """Per-layer class fractions of a classified probe result (DataArray layer x class) or None."""
    if ds is None or "unit_class_all" not in ds:
        return None
    from core.probing.stats import class_fractions

    return class_fractions(ds)


def fraction_plot(frac, title: str):
    rows = [(str(l), str(c), float(frac.sel(layer=l, **{"class": c})))
            for l in frac["layer"].values for c in frac["class"].values]
    bars = hv.Bars(rows, ["layer", "class"], "fraction").opts(
        stacked=True, cmap=CLASS_COLORS, color="class", height=280, responsive=True, ylim=(0, 1),
        title=title, tools=["hover"], legend_position="right", xrotation=20)
    return bars


class OverviewView(pn.viewable.Viewer):
    """Decoding, signals and unit classes of the session's decoder."""

    session = param.ClassSelector(class_=Session)
    title = "Overview"

    def __init__(self, **params):
        super().__init__(**params)
        s = self.session
        self._pred = pn.Column(sizing_mode="stretch_width")
        self._signals = pn.Column(sizing_mode="stretch_width")
        self._fractions = pn.Column(sizing_mode="stretch_width")
        self._header = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")
        s.param.watch(self._render_decoder, "decoder_version")
        s.param.watch(self._render_fractions, ["probe", "control", "probe_state"])
        self._render_decoder()

    def _render_decoder(self, *_):
        dec = self.session.decoder
        if dec is None:
            self._header.object = ""
            self._pred[:] = [placeholder("The decoder is loading; the overview appears when it is ready.")]
            self._signals[:] = []
            self._render_fractions()
            return
        pred = dec.predictions()
        rec = dec.ws.recording
        self._header.object = (
            f"<h3>{esc(dec.label)}</h3><p class='us-muted'>{rec.n_chans} channels, "
            f"{rec.duration:.0f} s at {rec.sfreq:g} Hz; test {esc(dec.metric_name())} "
            f"<b>{pred['metric']:.3f}</b></p>")
        self._pred[:] = [pn.pane.HoloViews(prediction_plot(pred), sizing_mode="stretch_width")]
        self._signals[:] = [signal_browser(dec)]
        self._render_fractions()

    def _render_fractions(self, *_):
        s = self.session
        trained, control = fraction_table(s.probe), fraction_table(s.control)
        if trained is None:
            msg = ("The probe is running; class fractions appear when its first passes are done."
                   if s.probe_state == "running" else
                   "Probe not run yet: start it in the Units view to classify every unit.")
            self._fractions[:] = [placeholder(msg)]
            return
        plots = [fraction_plot(trained, "Trained decoder")]
        if control is not None:
            plots.append(fraction_plot(control, "Untrained control (same architecture)"))
        else:
            plots.append(hv.Bars([], ["layer", "class"], "fraction").opts(
                title="Untrained control: not probed yet", responsive=True, height=280))
        self._fractions[:] = [pn.Row(*[pn.pane.HoloViews(p, sizing_mode="stretch_width") for p in plots],
                                     sizing_mode="stretch_width")]

    def __panel__(self):
        return pn.Column(self._header, self._pred, pn.pane.Markdown("### Unit classes per layer"), self._fractions,
                         pn.pane.Markdown("### Signal browser"), self._signals, sizing_mode="stretch_width")
