"""Units: every unit of a block as a point; a click shows its maps, channel map and top windows."""
from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
import param
from holoviews import streams

from ..state import Session
from ._common import CSS, esc, placeholder
from .overview import CLASS_COLORS

__all__ = ["UnitsView", "unit_table", "unit_maps", "channel_scores", "window_traces"]


def unit_table(ds, layer: str) -> dict:
    """Per-unit sensitivities and classes of one block, in unit-index order.

    Returns
    -------
    dict of ndarray
        ``index``, ``amp`` (amplitude max-statistic), ``phase``, ``cls`` (class or
        "unclassified").
    """
    m = ds["layer"].values == layer
    idx = ds["index"].values[m]
    order = np.argsort(idx)
    cls = ds["unit_class_all"].values[m][order] if "unit_class_all" in ds else np.full(m.sum(), "unclassified")
    return {"index": idx[order].astype(int), "amp": ds["amp_stat_all"].values[m][order].astype(float),
            "phase": ds["phase_stat_all"].values[m][order].astype(float), "cls": cls.astype(str)}


def unit_maps(ds, layer: str, unit: int):
    """Amplitude and phase maps of one unit: two DataArrays (channel, freq)."""
    uid = f"{layer}/{unit}"
    return ds["amp_corr"].sel(unit=uid), ds["phase_corr"].sel(unit=uid)


def channel_scores(ds, layer: str, unit: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel sensitivity of one unit: max over bands of |band mean r|, (amp, phase)."""
    uid = f"{layer}/{unit}"
    amp = np.nan_to_num(np.abs(ds["amp_band"].sel(unit=uid).values)).max(axis=-1)  # (channel,)
    phase = np.nan_to_num(np.abs(ds["phase_band"].sel(unit=uid).values)).max(axis=-1)
    return amp, phase


def window_traces(segments: np.ndarray, channel: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """z-scored traces of the top segments at one channel, with their median and quartiles.

    Returns traces (k, rf), median, q25, q75 (rf,).
    """
    x = segments[:, channel, :].astype(np.float64)  # (k, rf)
    x = (x - x.mean(axis=1, keepdims=True)) / np.maximum(x.std(axis=1, keepdims=True), 1e-12)
    q25, med, q75 = np.percentile(x, [25, 50, 75], axis=0)
    return x, med, q25, q75


def _band_edges(ds) -> tuple[list, list]:
    lo = ds["band_lo"].values.astype(float)
    hi = ds["band_hi"].values.astype(float)
    edges = sorted(set(lo.tolist()) | set(hi.tolist()))
    centres = [((a + b) / 2, str(n)) for a, b, n in zip(lo, hi, ds["band"].values)]
    return edges, centres


class UnitsView(pn.viewable.Viewer):
    """Layer choice, unit scatter, probe controls and the selected unit's details."""

    session = param.ClassSelector(class_=Session)
    title = "Units"

    def __init__(self, **params):
        super().__init__(**params)
        s = self.session
        self.layer = pn.widgets.Select(label="Layer", options=list(s.layer_names), value=s.layer if s.layer in s.layer_names else None,
                                       width=180)
        self.unit = pn.widgets.IntInput(label="Unit", value=s.unit, start=0, width=110)
        self.iterations = pn.widgets.IntInput.from_param(s.param.probe_iterations, label="Iterations", width=100)
        self.run_btn = pn.widgets.Button(label="Run probe", color="primary", width=120)
        self.stop_btn = pn.widgets.Button(label="Stop", color="danger", width=90, disabled=True)
        self.progress = pn.indicators.Progress(value=0, max=1000, width=260, height=18, bar_color="primary")
        self.probe_text = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")
        self.unit_header = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")
        self._syncing = False
        self.layer.param.watch(self._layer_chosen, "value")
        self.unit.param.watch(self._unit_chosen, "value")
        self.run_btn.on_click(lambda e: s.run_probe())
        self.stop_btn.on_click(lambda e: s.stop_probe())
        s.param.watch(self._sync_selection, ["layer", "unit", "layer_names", "decoder_version"])
        s.param.watch(self._sync_probe, ["probe_state", "probe_progress", "probe", "decoder_version"])
        self._sync_selection()
        self._sync_probe()

        deps = dict(layer=s.param.layer, probe=s.param.probe)
        self.points = hv.DynamicMap(pn.bind(self._points, **deps))
        self.tap = streams.Selection1D(source=self.points)
        self.tap.param.watch(self._tapped, "index")
        ring = hv.DynamicMap(pn.bind(self._ring, layer=s.param.layer, unit=s.param.unit, probe=s.param.probe))
        self.scatter = pn.pane.HoloViews(self.points * ring, sizing_mode="stretch_width")
        sel = dict(layer=s.param.layer, unit=s.param.unit, probe=s.param.probe)
        self.amp_map = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._map, kind="amplitude", **sel)),
                                         sizing_mode="stretch_width")
        self.phase_map = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._map, kind="phase", **sel)),
                                           sizing_mode="stretch_width")
        self.chan_map = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._channels, **sel)),
                                          sizing_mode="stretch_width")
        self.windows = pn.pane.HoloViews(
            hv.DynamicMap(pn.bind(self._windows, top_ready=s.param.top_ready, version=s.param.decoder_version, **sel)),
            sizing_mode="stretch_width")

    # ---- widgets <-> session ----------------------------------------------------------
    def _layer_chosen(self, event):
        if not self._syncing and event.new:
            self.session.layer = event.new

    def _unit_chosen(self, event):
        if not self._syncing and event.new is not None:
            self.session.unit = int(event.new)

    def _sync_selection(self, *_):
        s = self.session
        self._syncing = True  # programmatic widget updates must not write back
        try:
            names = list(s.layer_names)
            self.layer.param.update(options=names, value=s.layer if s.layer in names else (names[0] if names else None))
            self.unit.param.update(end=max(s.n_units() - 1, 0), value=s.unit)
        finally:
            self._syncing = False
        self._header()

    def _header(self):
        s = self.session
        if s.decoder is None:
            self.unit_header.object = ""
            return
        txt = f"<h3>Unit {esc(s.layer)}/{s.unit}</h3>"
        if s.probe is not None and f"{s.layer}/{s.unit}" in s.probe["unit"].values:
            row = s.probe.sel(unit=f"{s.layer}/{s.unit}")
            cls = str(row["unit_class_all"].values) if "unit_class_all" in s.probe else "not classified yet"
            txt += (f"<p class='us-muted'>class <b>{esc(cls)}</b> · amplitude sensitivity "
                    f"{float(row['amp_stat_all']):.3f} · phase sensitivity {float(row['phase_stat_all']):.3f} "
                    f"(max over channels of |band-mean r|)</p>")
        self.unit_header.object = txt

    def _sync_probe(self, *_):
        s = self.session
        running = s.probe_state == "running"
        self.run_btn.disabled = running or s.decoder is None
        self.stop_btn.disabled = not running
        self.run_btn.label = "Resume probe" if s.probe_state == "stopped" else (
            "Run probe again" if s.probe_state == "done" else "Run probe")
        self.progress.value = int(round(s.probe_progress * 1000))
        if s.probe is None:
            text = "Probe not run yet: press <b>Run probe</b> (about two minutes on two cores; maps refine as it runs)."
            if running:
                text = "Probing: preparing the windows and the unperturbed pass ..."
        else:
            it = s.probe.attrs.get("amp_iterations", "?"), s.probe.attrs.get("amp_n_iterations", "?")
            src = esc(s.probe_source) if s.probe_source else ""
            state = {"running": "running", "stopped": "stopped (resume continues it)", "done": "done",
                     "error": "failed", "none": ""}[s.probe_state]
            text = (f"Probe {state}: {it[0]} of {it[1]} iterations per pass, {s.probe_progress:.0%}"
                    + (f" · {src}" if src else ""))
        self.probe_text.object = f'<span class="us-muted">{text}</span>'
        self._header()

    def _tapped(self, index):
        idx = index.new if hasattr(index, "new") else index
        if idx:
            self.session.unit = int(idx[0])

    # ---- plots ------------------------------------------------------------------------
    def _points(self, layer, probe):
        if probe is None or layer not in set(probe["layer"].values):
            data = {"amp": [], "phase": [], "index": [], "cls": []}
            title = "Units (probe not run yet)"
        else:
            data = unit_table(probe, layer)
            title = f"{layer}: {len(data['index'])} units, amplitude vs phase sensitivity (click a unit)"
        return hv.Points(data, ["amp", "phase"], ["index", "cls"]).opts(
            color="cls", cmap=CLASS_COLORS, size=9, tools=["tap", "hover"], responsive=True, height=380,
            xlabel="amplitude sensitivity", ylabel="phase sensitivity", title=title, framewise=True,
            nonselection_alpha=0.9, selection_alpha=1.0, legend_position="top_right", show_legend=True,
            line_color="white")

    def _ring(self, layer, unit, probe):
        if probe is None or f"{layer}/{unit}" not in probe["unit"].values:
            return hv.Points([], ["amp", "phase"])
        row = probe.sel(unit=f"{layer}/{unit}")
        return hv.Points([(float(row["amp_stat_all"]), float(row["phase_stat_all"]))], ["amp", "phase"]).opts(
            size=18, fill_alpha=0, line_color="black", line_width=2)

    def _map(self, kind, layer, unit, probe):
        uid = f"{layer}/{unit}"
        label = "amplitude" if kind == "amplitude" else "phase"
        if probe is None or uid not in probe["unit"].values:
            img = hv.Image(np.zeros((2, 2)), ["freq", "channel"], "r")
            title = f"{uid} {label}: probe not run yet"
            return (img * hv.VLines([]) * hv.Labels([], ["freq", "channel"], "band")).opts(
                hv.opts.Image(responsive=True, height=300, cmap="RdBu_r", title=title), hv.opts.Overlay(title=title))
        amp, phase = unit_maps(probe, layer, unit)
        da = amp if kind == "amplitude" else phase
        vals = da.values.astype(float)  # (channel, freq)
        freqs = da["freq"].values
        chans = [str(c) for c in da["channel"].values]
        lim = float(np.nanmax(np.abs(vals))) if np.isfinite(vals).any() else 1.0
        lim = lim or 1.0
        img = hv.Image((freqs, np.arange(len(chans)), vals), ["freq", "channel"], "r")
        edges, centres = _band_edges(probe)
        labels = hv.Labels([(c, len(chans) - 0.5, n) for c, n in centres], ["freq", "channel"], "band")
        yticks = [(i, c) for i, c in enumerate(chans)] if len(chans) <= 64 else None
        sign = "r(noise, response)" if kind == "amplitude" else "r(|phase shift|, similarity)"
        return (img * hv.VLines(edges).opts(color="black", line_dash="dashed", line_width=1) * labels.opts(
            text_font_size="9pt", text_baseline="bottom")).opts(
            hv.opts.Image(cmap="RdBu_r", clim=(-lim, lim), colorbar=True, responsive=True, height=300,
                          tools=["hover"], yticks=yticks, xlabel="frequency (Hz)", ylabel="channel",
                          title=f"{uid} {label} sensitivity, {sign}", framewise=True),
            hv.opts.Overlay(title=f"{uid} {label} sensitivity, {sign}"))

    def _channels(self, layer, unit, probe):
        dec = self.session.decoder
        uid = f"{layer}/{unit}"
        if dec is None or probe is None or uid not in probe["unit"].values:
            empty = hv.Points([], ["x", "y"], ["channel", "score"])
            return (empty + empty).opts(hv.opts.Points(title=f"{uid}: probe not run yet", height=220, responsive=True))
        pos = dec.positions()
        amp, phase = channel_scores(probe, layer, unit)
        names = [str(c) for c in probe["channel"].values]
        kind = {"grid": "grid positions", "montage": "montage positions", "index": "no positions in the file: reading order"}[pos["kind"]]
        plots = []
        for label, score in (("amplitude", amp), ("phase", phase)):
            pts = hv.Points({"x": pos["x"], "y": pos["y"], "channel": names, "score": score},
                            ["x", "y"], ["channel", "score"])
            plots.append(pts.opts(color="score", cmap="viridis", size=16, colorbar=True, clim=(0, max(float(score.max()), 1e-6)),
                                  tools=["hover"], xaxis=None, yaxis=None, responsive=True, height=220,
                                  title=f"{uid} {label}: channel map ({kind})", line_color="#444", framewise=True))
        return plots[0] + plots[1]

    def _windows(self, layer, unit, probe, top_ready, version):
        dec = self.session.decoder
        uid = f"{layer}/{unit}"
        empty = (hv.Path([], ["time", "z"]) * hv.Spread(([], [], []), "time", ["z", "err"]) * hv.Curve([], "time", "z"))
        if dec is None or not top_ready or not dec.top_ready or layer not in dec.n_units:
            return empty.opts(hv.opts.Overlay(title=f"{uid} most-activating windows: computing ...", height=260,
                                              responsive=True))
        from ..activations import unit_segments

        X, _ = dec.probe_inputs()
        top = dec.top_windows()
        seg = unit_segments(X, top, layer, unit)  # (k, C, rf)
        if probe is not None and uid in probe["unit"].values:
            amp, phase = channel_scores(probe, layer, unit)
            ch = int(np.argmax(np.maximum(amp, phase)))
            why = "most sensitive channel"
        else:
            ch = int(np.argmax(seg.mean(axis=0).std(axis=-1)))
            why = "channel with the largest mean waveform"
        traces, med, q25, q75 = window_traces(seg, ch)
        t = (np.arange(seg.shape[-1]) - seg.shape[-1] + 1) / dec.sfreq
        name = dec.ch_names[ch]
        path = hv.Path([np.column_stack([t, tr]) for tr in traces], ["time", "z"]).opts(color="#999999", alpha=0.5, line_width=0.8)
        mid, half = (q75 + q25) / 2, (q75 - q25) / 2
        band = hv.Spread((t, mid, half), "time", ["z", "err"]).opts(color="#1f77b4", alpha=0.3)
        median = hv.Curve((t, med), "time", "z").opts(color="#1f77b4", line_width=2.5)
        title = f"{uid} most-activating windows at {name} ({why}): {len(traces)} windows, median and IQR"
        return (path * band * median).opts(hv.opts.Overlay(title=title, height=260, responsive=True,
                                                           xlabel="time before the activation peak (s)",
                                                           ylabel="z-scored input", framewise=True))

    def __panel__(self):
        s = self.session
        controls = pn.Row(self.layer, self.unit, self.iterations,
                          pn.Column(pn.Spacer(height=12), pn.Row(self.run_btn, self.stop_btn)),
                          pn.Column(pn.Spacer(height=22), self.progress), sizing_mode="stretch_width")
        none_yet = placeholder("Probe not run yet: no unit maps to show. Press Run probe above; the maps refine "
                               "live while it runs.", visible=s.param.probe.rx().rx.is_(None))
        has_probe = s.param.probe.rx().rx.is_not(None)
        details = pn.Column(pn.Row(self.amp_map, self.phase_map, sizing_mode="stretch_width"),
                            self.chan_map, sizing_mode="stretch_width", visible=has_probe)
        return pn.Column(controls, self.probe_text, none_yet,
                         pn.Column(self.scatter, sizing_mode="stretch_width", visible=has_probe),
                         self.unit_header, details, self.windows, sizing_mode="stretch_width")
