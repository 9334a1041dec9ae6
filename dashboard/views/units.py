"""Units: every unit of a block as a point; a click shows its maps, channel map and top windows.

[A] The plots of this view are plain Bokeh figures whose data sources are replaced on each
click (a few kB over the websocket), so a unit click or a layer switch never rebuilds a
plot. Changes are applied through ``doc.add_next_tick_callback`` (under the document
lock), whichever thread they come from (a click, a URL, a probe worker).
"""
from __future__ import annotations

import numpy as np
import panel as pn
import param
from bokeh.models import (BoxAnnotation, ColorBar, ColumnDataSource, CustomJSHover, FixedTicker, HoverTool, LabelSet,
                          LinearColorMapper, TapTool)
from bokeh.palettes import RdBu11, Viridis256
from bokeh.plotting import figure

from core._validation import UnitScopeError
from core.layout import head_outline
from core.cautions import no_discovery_note, partial_probe_note, validity_text
from core.probing.stats import band_weights, sensitivity_peak

from ..decoder import run_probe_source
from ..state import Session
from ._common import (CSS, Shown, UnitPicker, apply_in_doc, controls, esc, known_roles, lowered, number_box, placeholder,
                      select_on_double_tap)
from .overview import CLASS_COLORS

_POINT_SIZE = 10  # scatter marker diameter (screen pixels)

__all__ = ["UnitsView", "unit_table", "unit_maps", "channel_scores", "window_traces", "channel_ticks",
           "strongest", "map_bands", "parse_hz_range"]



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


def channel_scores(ds, layer: str, unit: int, band: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Per-channel sensitivity of one unit, (amp, phase): |band mean r| in ``band``.

    ``band``: "" the strongest band of each channel on the scale of the unit's sensitivity
    (:func:`core.probing.stats.sensitivity_peak`: |band mean r| x sqrt(bins in the band), so
    the brightest channel is the unit's sensitivity; a narrow band's mean, noisier, no longer
    wins by its noise); one of the result's bands; or "LO-HI" (Hz), the mean of the maps' bins
    from LO to HI (a role's band of the demo, say).
    """
    uid = f"{layer}/{unit}"
    out = []
    for prefix in ("amp", "phase"):
        if band and band in ds["band"].values:
            vals = np.abs(ds[f"{prefix}_band"].sel(unit=uid, band=band).values)
        elif band:
            lo, hi = parse_hz_range(band)
            f = ds["freq"].values
            inside = (f >= lo) & (f <= hi)
            if not inside.any():
                raise UnitScopeError(f"No frequency of the probe's maps lies in {band} Hz.")
            with np.errstate(all="ignore"):
                vals = np.abs(np.nanmean(ds[f"{prefix}_corr"].sel(unit=uid).values[:, inside], axis=-1))
        else:
            vals = np.nanmax(np.abs(ds[f"{prefix}_band"].sel(unit=uid).values) * band_weights(ds, prefix)[None],
                             axis=-1)
        out.append(np.nan_to_num(vals))  # (channel,)
    return out[0], out[1]


def _short_band(band: str) -> str:
    """A channel-map band in a few words (plot titles): "strongest band", "beta band", "60-90 Hz"."""
    if not band:
        return "strongest band"
    return f"{band} Hz" if band[:1].isdigit() else f"{band.replace('_', ' ')} band"


def band_range(ds, band: str) -> tuple[float, float] | None:
    """The edges in Hz of a channel-map band (a band of ``ds`` or "LO-HI"); None for the
    strongest band of each channel."""
    if not band:
        return None
    if band in ds["band"].values:
        row = ds.sel(band=band)
        return float(row["band_lo"]), float(row["band_hi"])
    return parse_hz_range(band)


def parse_hz_range(text: str) -> tuple[float, float]:
    """``"60-90"`` -> (60.0, 90.0) (:func:`core.deconv.signals.hz_band`), with LO < HI."""
    from core.deconv.signals import hz_band

    try:
        band = hz_band(text)
    except ValueError:
        band = None
    if band is None or not band[0] < band[1]:
        raise UnitScopeError(f"Expected a band as 'LO-HI' in Hz with LO < HI, got {text!r}.")
    return band


def map_bands(ds, signals=None) -> dict:
    """Channel-map choices: ``{label: value}`` for :func:`channel_scores` (the strongest band,
    the known roles' bands of ``signals``, the probe's bands)."""
    out = {"strongest band of each channel": ""}
    known = known_roles(signals) if signals is not None else None
    for role, (lo, hi) in (known["bands"] if known is not None else {}).items():
        out[f"{role.replace('_', ' ')} role band, {lo:g}-{hi:g} Hz"] = f"{lo:g}-{hi:g}"
    for name, lo, hi in zip(ds["band"].values, ds["band_lo"].values, ds["band_hi"].values):
        out[f"{str(name).replace('_', ' ')}, {float(lo):g}-{float(hi):g} Hz"] = str(name)
    return out


def strongest(ds, layer: str, unit: int) -> dict:
    """Where each sensitivity of a unit comes from: ``{"amplitude": peak, "phase": peak}``
    (:func:`core.probing.stats.sensitivity_peak`: channel, band, band-mean ``r``, ``bins``,
    ``score``; the channel maps' strongest band lights the same channel brightest)."""
    return {kind: sensitivity_peak(ds, f"{layer}/{unit}", prefix)
            for kind, prefix in (("amplitude", "amp"), ("phase", "phase"))}


def peak_text(kind: str, peak: dict, weighted: bool = True) -> str:
    """One line on where a sensitivity comes from, with the product that gives it."""
    band = esc(peak["band"].replace("_", " "))
    where = (f"{kind} peaks in {band}, every channel alike (one phase shift shared by all)" if peak.get("shared")
             else f"{kind} peaks at {esc(peak['channel'])} in {band}")
    if not weighted:  # a "freq" resolution probe: the sensitivity is a single bin's |r|
        return f"{where} (band-mean r {peak['r']:+.3f})"
    return f"{where}: band-mean r {peak['r']:+.3f} over {peak['bins']} bins (× √{peak['bins']} = {peak['score']:.3f})"


def window_traces(segments: np.ndarray, channel: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """z-scored traces of the top segments at one channel, with their median and quartiles.

    Returns traces (k, rf), median, q25, q75 (rf,).
    """
    x = segments[:, channel, :].astype(np.float64)  # (k, rf)
    x = (x - x.mean(axis=1, keepdims=True)) / np.maximum(x.std(axis=1, keepdims=True), 1e-12)
    q25, med, q75 = np.percentile(x, [25, 50, 75], axis=0)
    return x, med, q25, q75


def channel_ticks(names, most: int = 32) -> dict[int, str]:
    """Row -> channel name of the rows labelled on a (channel, freq) map: every row up to
    ``most`` channels, else every k-th, so that at most ``most`` labels share the axis [A]."""
    step = -(-len(names) // most)
    return {i: str(names[i]) for i in range(0, len(names), step)}


def _band_edges(ds) -> tuple[list, list]:
    lo = ds["band_lo"].values.astype(float)
    hi = ds["band_hi"].values.astype(float)
    edges = sorted(set(lo.tolist()) | set(hi.tolist()))
    centres = [((a + b) / 2, str(n)) for a, b, n in zip(lo, hi, ds["band"].values)]
    return edges, centres


def _fig(title: str, **kw):
    f = figure(title=title, sizing_mode="stretch_width", toolbar_location="right",
               tools="pan,wheel_zoom,box_zoom,reset,save", **kw)
    f.title.text_font_size = "11pt"
    return f


class UnitsView(pn.viewable.Viewer):
    """Layer choice, unit scatter, probe controls and the selected unit's details."""

    session = param.ClassSelector(class_=Session)
    title = "Units"

    def __init__(self, **params):
        super().__init__(**params)
        s = self.session
        self.picker = UnitPicker(s, layer_width=170, unit_width=100, on_sync=lambda *_: self._header())
        self.shown = Shown(s, ["probe", "decoder"])  # a placeholder, or the scatter and the unit's maps
        self.layer, self.unit = self.picker.layer, self.picker.unit
        self.iterations = number_box(s, "probe_iterations", s, label="Iterations", width=100,
                                                       css_classes=["us-iterations"])
        self.site = pn.widgets.Select.from_param(
            s.param.probe_site, label="Site", width=160, css_classes=["us-site"],
            options={"before BatchNorm": "conv", "after nonlinearity": "nonlin"},
            description="Where each unit is read. Before BatchNorm follows the seed paper; after the nonlinearity "
                        "reads what the next block sees (for Shallow, the squared output: band power). The two "
                        "give different amplitude/phase balances, so compare like with like.")
        self.control = pn.widgets.Checkbox.from_param(s.param.probe_control, label="with untrained control",
                                                      css_classes=["us-control"], width=170)
        self.run_btn = pn.widgets.Button(label="Run probe", color="primary", width=120)
        self.stop_btn = pn.widgets.Button(label="Stop", color="danger", width=90, disabled=True)
        self.save_btn = pn.widgets.Button(label="Save beside the run", width=170, visible=False,
                                          description="Write this probe result (and its untrained control) into the "
                                                      "run folder shown, as probe.nc, so the run opens with it")
        self.progress = pn.indicators.Progress(value=0, max=1000, width=160, height=18, bar_color="primary")
        self.probe_text = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")
        self.unit_header = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")
        # off: a class guesses from the maps first, then looks
        self.show_roles = pn.widgets.Checkbox(label="show known roles", value=True, width=150,
                                              css_classes=["us-show-roles"])
        self.roles_legend = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width", margin=(0, 10))
        self.map_band = pn.widgets.Select(label="Channel maps show", options={"strongest band of each channel": ""},
                                          width=280, css_classes=["us-map-band"])
        self.map_band.param.watch(self._on_map_band, "value")
        self._syncing = False
        self._doc = None
        self.run_btn.on_click(lambda e: s.run_probe())
        self.stop_btn.on_click(lambda e: s.stop_probe())
        self.save_btn.on_click(lambda e: s.save_probe_to_run())
        self._build_figures()
        s.param.watch(self._sync_probe, ["probe_state", "probe_progress", "probe", "decoder_version", "probe_site",
                                         "run", "probe_source", "busy"])
        s.param.watch(self._redraw_all, ["layer", "probe", "control", "decoder_version"])
        s.param.watch(self._redraw_unit, ["unit", "top_ready", "channel_map_band"])
        self.show_roles.param.watch(self._redraw_all, "value")
        self._header()
        self._sync_probe()
        self._draw_all()

    # ---- figures ---------------------------------------------------------------------
    def _build_figures(self):
        self.pts_src = ColumnDataSource(dict(amp=[], phase=[], index=[], cls=[], color=[]))
        f = _fig("Units (probe not run yet)", height=380, x_axis_label="amplitude sensitivity",
                 y_axis_label="phase sensitivity")
        # the untrained control's units of the same block, behind (what training moved): not clickable
        self.ctrl_src = ColumnDataSource(dict(amp=[], phase=[]))
        f.scatter("amp", "phase", source=self.ctrl_src, size=7, marker="x", line_color="#8c8c8c", line_alpha=0.7,
                  legend_label="untrained control")
        self.ctrl_item = f.legend[0].items[-1]  # listed only with a control to show
        select_on_double_tap(f, self.pts_src, x="amp", y="phase", size=_POINT_SIZE)  # quick second clicks
        units = f.scatter("amp", "phase", source=self.pts_src, size=_POINT_SIZE, fill_color="color",
                          line_color="white", legend_field="cls", selection_line_color="black",
                          selection_line_width=3, selection_fill_color="color", nonselection_fill_alpha=0.55,
                          nonselection_line_alpha=0.3)
        f.add_tools(HoverTool(renderers=[units], tooltips=[("unit", "@index"), ("class", "@cls"),
                                                           ("amplitude", "@amp{0.000}"), ("phase", "@phase{0.000}")]))
        f.add_tools(TapTool(renderers=[units]))
        f.legend.label_text_font_size = "9pt"
        f.add_layout(f.legend[0], "right")  # beside the plot: inside, it hid the units in its corner
        self.pts_src.selected.on_change("indices", self._on_select)
        self.scatter_fig = f
        self.maps = {}
        for kind in ("amplitude", "phase"):
            src = ColumnDataSource(dict(image=[np.zeros((1, 1))], x=[0.0], y=[-0.5], dw=[1.0], dh=[1.0]))
            mapper = LinearColorMapper(palette=list(RdBu11), low=-1, high=1, nan_color="#ffffff")  # red: r > 0
            fm = _fig(f"{kind}\n", height=420, x_axis_label="frequency (Hz)", y_axis_label="channel")
            fm.title.text_font_size = "10pt"  # "conv_time_spat/39 amplitude sensitivity" in half of 1024 px
            fm.image(image="image", x="x", y="y", dw="dw", dh="dh", source=src, color_mapper=mapper)
            # the hovered row's channel name (its index when names are not set yet)
            names_js = CustomJSHover(args=dict(names=[]), code="const i = Math.round(value); "
                                     "return (i >= 0 && i < names.length) ? names[i] : String(i);")
            fm.add_tools(HoverTool(tooltips=[("freq (Hz)", "$x{0.1}"), ("channel", "$y{custom}"),
                                             ("r", "@image{0.000}")], formatters={"$y": names_js}))
            fm.add_layout(ColorBar(color_mapper=mapper, width=10), "right")
            bands = ColumnDataSource(dict(x0=[], y0=[], x1=[], y1=[]))
            fm.segment("x0", "y0", "x1", "y1", source=bands, color="black", line_dash="dashed", line_width=1)
            roles = ColumnDataSource(dict(left=[], right=[], bottom=[], top=[], color=[], role=[]))
            fm.quad(left="left", right="right", bottom="bottom", top="top", source=roles, fill_alpha=0,
                    line_color="color", line_width=2.5)  # known roles: each over its band
            labels = ColumnDataSource(dict(x=[], y=[], text=[]))
            fm.add_layout(LabelSet(x="x", y="y", text="text", source=labels, text_font_size="8pt",
                                   text_align="center", text_baseline="bottom"))
            fm.x_range.range_padding = fm.y_range.range_padding = 0
            shade = BoxAnnotation(fill_color="#444444", fill_alpha=0.08, line_color="#444444", line_alpha=0.5,
                                  line_dash="dotted", visible=False)  # the channel maps' band, when one is chosen
            fm.add_layout(shade)
            self.maps[kind] = dict(fig=fm, src=src, mapper=mapper, bands=bands, labels=labels, names=names_js, shade=shade,
                                   roles=roles)
        self.chans = {}
        for kind in ("amplitude", "phase"):
            src = ColumnDataSource(dict(x=[], y=[], channel=[], score=[], role=[]))
            halos = ColumnDataSource(dict(x=[], y=[], color=[]))  # known roles: a ring around the dot
            mapper = LinearColorMapper(palette=Viridis256, low=0, high=1)
            fc = _fig(f"{kind}: channel map", height=240, match_aspect=True)  # a head keeps its shape
            outline = ColumnDataSource(dict(xs=[], ys=[]))  # a head's outline (core.layout.head_outline)
            fc.multi_line("xs", "ys", source=outline, color="#888888", line_width=1.5)
            halo = fc.scatter("x", "y", source=halos, size=28, fill_alpha=0, line_color="color", line_width=3)
            dots = fc.scatter("x", "y", source=src, size=18, fill_color={"field": "score", "transform": mapper},
                              line_color="#444444")
            fc.add_tools(HoverTool(tooltips=[("channel", "@channel"), ("sensitivity", "@score{0.000}"),
                                             ("known role", "@role")]))
            fc.add_layout(ColorBar(color_mapper=mapper, width=10), "right")
            fc.axis.visible = False
            fc.grid.visible = False
            self.chans[kind] = dict(fig=fc, src=src, mapper=mapper, outline=outline, dots=dots, halo=halo,
                                    halos=halos)
        self.win_traces = ColumnDataSource(dict(xs=[], ys=[]))
        self.win_stats = ColumnDataSource(dict(t=[], med=[], q25=[], q75=[]))
        fw = _fig("most-activating windows", height=270, x_axis_label="time before the activation peak (s)",
                  y_axis_label="z-scored input")
        fw.multi_line("xs", "ys", source=self.win_traces, color="#999999", alpha=0.5, line_width=0.8)
        fw.varea("t", "q25", "q75", source=self.win_stats, color="#1f77b4", alpha=0.3)
        fw.line("t", "med", source=self.win_stats, color="#1f77b4", line_width=2.5)
        self.win_fig = fw
        self.scatter = pn.pane.Bokeh(self.scatter_fig, sizing_mode="stretch_width")
        self.amp_map = pn.pane.Bokeh(self.maps["amplitude"]["fig"], sizing_mode="stretch_width")
        self.phase_map = pn.pane.Bokeh(self.maps["phase"]["fig"], sizing_mode="stretch_width")
        self.chan_map = pn.Row(pn.pane.Bokeh(self.chans["amplitude"]["fig"], sizing_mode="stretch_width"),
                               pn.pane.Bokeh(self.chans["phase"]["fig"], sizing_mode="stretch_width"),
                               sizing_mode="stretch_width")
        self.windows = pn.pane.Bokeh(self.win_fig, sizing_mode="stretch_width")

    def _apply(self, fn):
        """Run a change of Bokeh models under the document lock (any thread)."""
        apply_in_doc(self._doc, fn)

    # ---- widgets <-> session ----------------------------------------------------------
    def _on_select(self, attr, old, new):
        if not new or self._syncing:
            return
        # [A] overlapping points: the one drawn last (on top, the one the user sees) wins
        unit = int(self.pts_src.data["index"][max(new)])
        if unit != self.session.unit:
            self.session.unit = unit

    def _on_map_band(self, event):
        if not self._syncing:
            self.session.channel_map_band = event.new or ""

    def _map_band(self, probe) -> tuple[str, str]:
        """The channel maps' band (the session's choice when this probe offers it, else the
        strongest) and its label; the widget is set to this probe's choices and that band (the
        choice may come from elsewhere: the lesson)."""
        dec = self.session.decoder
        options = map_bands(probe, dec.ws.recording.signals if dec is not None else None)
        band = self.session.channel_map_band if self.session.channel_map_band in options.values() else ""
        self._syncing = True
        try:
            if self.map_band.options != options:
                self.map_band.options = options
            if self.map_band.value != band:
                self.map_band.value = band
        finally:
            self._syncing = False
        return band, next(k for k, v in options.items() if v == band)

    def _header(self):
        s = self.session
        if s.decoder is None:
            self.unit_header.object = ""
            return
        txt = f"<h3>Unit {esc(s.layer)}/{s.unit}</h3>"
        if s.probe is not None and f"{s.layer}/{s.unit}" in s.probe["unit"].values:
            row = s.probe.sel(unit=f"{s.layer}/{s.unit}")
            cls = str(row["unit_class_all"].values) if "unit_class_all" in s.probe else "not classified yet"
            weighted = s.probe.attrs.get("resolution", "band") == "band"
            where = " · ".join(peak_text(kind, peak, weighted)
                               for kind, peak in strongest(s.probe, s.layer, s.unit).items())
            how = ("the largest |band-mean r| × √(bins in the band) over channels and bands" if weighted
                   else "the largest |r| over channels and frequency bins")
            txt += (f"<p class='us-muted'>class <b>{esc(cls)}</b> · amplitude sensitivity "
                    f"{float(row['amp_stat_all']):.3f} · phase sensitivity {float(row['phase_stat_all']):.3f} "
                    f"({how})<br>{where}</p>")
        self.unit_header.object = txt

    def _sync_probe(self, *_):
        s = self.session
        running = s.probe_state == "running"
        self.run_btn.disabled = running or s.decoder is None
        self.stop_btn.disabled = not running
        # a probe run here for a decoder opened from a run folder can be kept with it
        self.save_btn.visible = bool(s.run) and s.probe_state == "done" and s.probe is not None \
            and not s.probe_source.startswith(run_probe_source(""))
        same_site = s.probe is not None and s.probe.attrs.get("site", "conv") == s.probe_site
        self.run_btn.label = "Resume probe" if s.probe_state == "stopped" and same_site else (
            "Run probe again" if s.probe_state == "done" else "Run probe")
        self.progress.value = int(round(s.probe_progress * 1000))
        if s.probe is None:
            text = ("Probe not run yet: press <b>Run probe</b> (a few minutes on two cores; maps refine as it runs)."
                    if s.decoder is not None else
                    # (the demo's probe comes with it: "press Run probe" was said of a disabled button)
                    "The probe comes with the decoder (the demo decoder's with it), or is run here once one is shown.")
            if running:
                text = "Probing: preparing the windows and the unperturbed pass ..."
        else:
            it = s.probe.attrs.get("amp_iterations", "?"), s.probe.attrs.get("amp_n_iterations", "?")
            src = esc(s.probe_source) if s.probe_source else ""
            state = {"running": "running", "stopped": "stopped (resume continues it)", "done": "done",
                     "error": "failed", "none": ""}[s.probe_state]
            site = {"conv": "units read before BatchNorm", "nonlin": "units read after the nonlinearity"}.get(
                str(s.probe.attrs.get("site", "conv")), "")
            text = (f"Probe {state}: {it[0]} of {it[1]} iterations per pass, {s.probe_progress:.0%} · {site}"
                    + (f" · {src}" if src else ""))
            if s.probe_state in ("done", "stopped") and "amp_validity" in s.probe:
                valid = validity_text(s.probe, closer="unitscope probe --noise-scale sets a smaller noise")
                text += f"<br>Validity: {esc(valid)}"
            partial = partial_probe_note(s.probe) if s.probe_state == "done" else ""
            if partial:  # a probe.nc opened with its run, written stopped (the count above says how far)
                text += f"<br>Note: this probe was {esc(partial)}: <b>Run probe again</b> for a complete one."
            note = no_discovery_note(s.probe) if s.probe_state != "running" else ""
            if note:  # every unit insensitive: say why that may be a lack of power, not of sensitivity
                text += (f"<br><span class='us-probe-power'>Note: {esc(note)}: raise Iterations, or probe a "
                         "longer recording (more windows).</span>")
        if s.busy == "training" and s.decoder is not None:  # [A] a probe run now was dropped without a word
            text += ("<br><span class='us-probe-training'>A new decoder is training (Data &amp; model): when it "
                     "finishes it replaces this one, and a probe of this decoder is stopped or dropped.</span>")
        self.probe_text.object = f'<span class="us-muted">{text}</span>'
        self._header()

    # ---- drawing ----------------------------------------------------------------------
    def _redraw_all(self, *_):
        self._apply(self._draw_all)

    def _redraw_unit(self, *_):
        self._apply(self._draw_unit)

    def _draw_all(self):
        s = self.session
        probe, layer = s.probe, s.layer
        control = s.control
        if control is not None and layer in set(control["layer"].values) and probe is not None:
            c = unit_table(control, layer)
            self.ctrl_src.data = dict(amp=c["amp"], phase=c["phase"])
        else:
            self.ctrl_src.data = dict(amp=[], phase=[])
        self.ctrl_item.visible = len(self.ctrl_src.data["amp"]) > 0
        if probe is None or layer not in set(probe["layer"].values):
            self.pts_src.data = dict(amp=[], phase=[], index=[], cls=[], color=[])
            self.scatter_fig.title.text = "Units (probe not run yet)"
        else:
            t = unit_table(probe, layer)
            self.pts_src.data = dict(amp=t["amp"], phase=t["phase"], index=t["index"], cls=list(t["cls"]),
                                     color=[CLASS_COLORS.get(c, "#e0e0e0") for c in t["cls"]])
            self.scatter_fig.title.text = (f"{layer}: {len(t['index'])} units, amplitude vs phase sensitivity "
                                           "(click a unit)")
            edges, centres = _band_edges(probe)
            n_ch = probe.sizes["channel"]
            known = self._known_roles(n_ch)
            names = [str(c) for c in probe["channel"].values]
            hover_names = names if known is None else [
                f"{n} ({r.replace('_', ' ')})" if r else n for n, r in zip(names, known["roles"])]
            boxes = known["boxes"] if known is not None and self.show_roles.value else \
                dict(left=[], right=[], bottom=[], top=[], color=[], role=[])
            for kind in ("amplitude", "phase"):
                m = self.maps[kind]
                m["bands"].data = dict(x0=edges, x1=edges, y0=[-0.5] * len(edges), y1=[n_ch - 0.5] * len(edges))
                m["labels"].data = dict(x=[c for c, _ in centres], y=[n_ch - 0.5] * len(centres),
                                        text=[n for _, n in centres])
                m["names"].args = dict(names=hover_names)
                m["roles"].data = boxes
                ax = m["fig"].yaxis[0]
                ticks = channel_ticks(names)
                ax.ticker = FixedTicker(ticks=list(ticks))
                ax.major_label_overrides = ticks
            self._map_band(probe)
        self._draw_roles_legend()
        self._draw_unit()

    def _known_roles(self, n_ch: int) -> dict | None:
        """The decoder's known channel roles when they fit ``n_ch`` channels, else None."""
        dec = self.session.decoder
        if dec is None:
            return None
        known = known_roles(dec.ws.recording.signals)
        return known if known is not None and len(known["roles"]) == n_ch else None

    def _probe_roles(self) -> dict | None:
        """The known roles of the probe's channels (see :meth:`_known_roles`), or None."""
        probe = self.session.probe
        return None if probe is None else self._known_roles(probe.sizes["channel"])

    def _draw_roles_legend(self):
        known = self._probe_roles()
        self.show_roles.visible = known is not None
        if known is None or not self.show_roles.value:
            self.roles_legend.object = ""
            return
        keys = "".join(f'<span class="us-role"><span class="us-role-box" style="border-color:{esc(c)}"></span>'
                       f"{esc(label)}</span>" for label, c in known["legend"].values())
        self.roles_legend.object = (f'<p class="us-muted">Known roles of the channels (the recording\'s ground '
                                    f"truth), outlined over their bands and ringed on the channel maps: {keys}</p>")

    def _draw_unit(self):
        s = self.session
        layer, unit, probe, dec = s.layer, s.unit, s.probe, s.decoder
        uid = f"{layer}/{unit}"
        has = probe is not None and uid in probe["unit"].values
        self._syncing = True
        try:
            idx = list(self.pts_src.data["index"])
            self.pts_src.selected.indices = [idx.index(unit)] if unit in idx else []
        finally:
            self._syncing = False
        for kind in ("amplitude", "phase"):
            m = self.maps[kind]
            sign = "r(noise, response)" if kind == "amplitude" else "r(|phase shift|, similarity)"
            # [A] two lines in every state: a title that went from one line to two when the probe
            # finished left a cut-off line drawn above the phase map
            if not has:
                m["fig"].title.text = f"{uid} {kind} sensitivity\n(probe not run yet)"
                continue
            da = unit_maps(probe, layer, unit)[0 if kind == "amplitude" else 1]
            vals = da.values.astype(np.float32)  # (channel, freq)
            freqs = da["freq"].values.astype(float)
            df = float(freqs[1] - freqs[0]) if len(freqs) > 1 else 1.0
            lim = float(np.nanmax(np.abs(vals))) if np.isfinite(vals).any() else 1.0
            m["src"].data = dict(image=[vals], x=[freqs[0] - df / 2], y=[-0.5], dw=[df * len(freqs)],
                                 dh=[float(vals.shape[0])])
            m["mapper"].update(low=-(lim or 1.0), high=lim or 1.0)
            m["fig"].title.text = f"{uid} {kind} sensitivity\n{sign}"  # one line ran past the plot at 1024 px
        if has and dec is not None:
            pos = dec.positions()
            kind_txt = {"grid": "grid positions", "head": "head", "montage": "montage positions",
                        "index": "no positions in the file: reading order"}[pos["kind"]]
            if pos["kind"] in ("head", "montage") and "standard" in str(dec.ws.recording.signals.attrs.get("positions", "")):
                kind_txt += ", 10-05 by name"
            if not pos.get("placed", np.ones(1, bool)).all():
                kind_txt += "; without a position: below"
            band, _ = self._map_band(probe)
            amp, phase = channel_scores(probe, layer, unit, band)
            lo_hi = band_range(probe, band)
            for kind in ("amplitude", "phase"):  # the maps shade the band the channel maps summarise
                shade = self.maps[kind]["shade"]
                shade.visible = lo_hi is not None
                if lo_hi is not None:
                    shade.left, shade.right = lo_hi
            names = [str(c) for c in probe["channel"].values]
            outline = head_outline() if pos["kind"] == "head" else dict(xs=[], ys=[])
            size = float(np.clip(18 * np.sqrt(32 / max(len(names), 1)), 6, 18))  # many channels: smaller dots
            known = self._known_roles(len(names))
            role = known["roles"] if known is not None else np.full(len(names), "")
            ringed = np.flatnonzero(role != "") if known is not None and self.show_roles.value else []
            halos = dict(x=np.asarray(pos["x"])[ringed], y=np.asarray(pos["y"])[ringed],
                         color=[known["legend"][role[i]][1] for i in ringed])
            role = [r.replace("_", " ") if r else "none known" for r in role]
            for kind, score in (("amplitude", amp), ("phase", phase)):
                c = self.chans[kind]
                c["outline"].data = outline
                c["dots"].glyph.size = size
                c["halo"].glyph.size = size + 8
                c["halos"].data = halos
                c["src"].data = dict(x=pos["x"], y=pos["y"], channel=names, score=score, role=role)
                c["mapper"].update(low=0, high=max(float(score.max()), 1e-6))
                # [A] "sensitivity": the scale of the header's (|r| x sqrt(bins)); a root sign in a
                # Bokeh title left a clipped ghost line above it (its font's taller glyph box)
                what = "sensitivity" if not band and probe.attrs.get("resolution", "band") == "band" else "|r|"
                c["fig"].title.text = f"{uid} {kind} {what},\n{_short_band(band)} ({kind_txt})"
        self._draw_windows(layer, unit, probe, has, dec, uid)
        self._header()

    def _draw_windows(self, layer, unit, probe, has, dec, uid):
        if dec is None or not self.session.top_ready or not dec.top_ready or layer not in dec.n_units:
            self.win_traces.data = dict(xs=[], ys=[])
            self.win_stats.data = dict(t=[], med=[], q25=[], q75=[])
            self.win_fig.title.text = f"{uid} most-activating windows: computing ..."
            return
        from core.activations import unit_segments

        X, _ = dec.probe_inputs()
        seg = unit_segments(X, dec.top_windows(), uid)  # (k, C, rf)
        if has:
            band, band_txt = self._map_band(probe)
            amp, phase = channel_scores(probe, layer, unit, band)
            ch = int(np.argmax(np.maximum(amp, phase)))
            why = "most sensitive channel" + ("" if not band else f" in the {band_txt.split(',')[0]}")
        else:
            ch, why = int(np.argmax(seg.mean(axis=0).std(axis=-1))), "channel with the largest mean waveform"
        traces, med, q25, q75 = window_traces(seg, ch)
        t = (np.arange(seg.shape[-1]) - seg.shape[-1] + 1) / dec.sfreq
        self.win_traces.data = dict(xs=[t] * len(traces), ys=list(traces))
        self.win_stats.data = dict(t=t, med=med, q25=q25, q75=q75)
        self.win_fig.title.text = (f"{uid} most-activating windows at {dec.ch_names[ch]} ({why}):\n"
                                   f"{len(traces)} windows, median and IQR")

    def __panel__(self):
        s = self.session
        if self._doc is None and pn.state.curdoc is not None:
            self._doc = pn.state.curdoc
        row = controls(self.layer, self.unit, self.iterations, self.site, *lowered(self.run_btn, self.stop_btn, top=12),
                       *lowered(self.control, top=22))
        none_yet = placeholder("Probe not run yet: no unit maps to show. Press Run probe above; the maps refine "
                               "live while it runs.")
        no_decoder = placeholder("No decoder yet: the unit maps appear with it (the demo decoder comes with its "
                                 "probe).")
        details = pn.Column(pn.Row(self.roles_legend, self.show_roles, sizing_mode="stretch_width"),
                            pn.Row(self.amp_map, self.phase_map, sizing_mode="stretch_width"),
                            pn.Row(self.map_band, sizing_mode="stretch_width"), self.chan_map,
                            sizing_mode="stretch_width")
        scatter = pn.Column(self.scatter, sizing_mode="stretch_width")
        self.shown.set((none_yet, lambda: s.probe is None and s.decoder is not None),
                       (no_decoder, lambda: s.probe is None and s.decoder is None), (scatter, lambda: s.probe is not None),
                       (details, lambda: s.probe is not None),
                       (self.show_roles, lambda: self._probe_roles() is not None))
        return pn.Column(row, pn.Row(self.progress, self.probe_text, self.save_btn, sizing_mode="stretch_width"),
                         none_yet, no_decoder, scatter, self.unit_header, details, self.windows, sizing_mode="stretch_width")
