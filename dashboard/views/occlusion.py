"""Band occlusion in the Overview: does the decoder *need* a band of some channels?

A sensitivity map says what a decoder responds to; removing a band from some channels and
re-measuring the test block says what it needs (``core.probing.validity.band_occlusions``).
For the demo, each channel role comes as a preset (its channels and its band), and one
button measures every role, so a class can see at once which coded populations the decoder
decodes from. Results stay listed (newest first) until the decoder changes.
"""
from __future__ import annotations

import math

import panel as pn
import param

from core.probing.bands import BANDS
from core.probing.validity import band_text

from ..state import Session
from ._common import CSS, Shown, controls, esc, lowered

__all__ = ["OcclusionPanel", "occlusion_table", "channels_text"]


def channels_text(channels, *, at_most: int = 6) -> str:
    """``"G03, G04"`` or ``"7 channels: G03, G04, G05, …"`` (escaped)."""
    channels = [str(c) for c in channels]
    if len(channels) <= at_most:
        return esc(", ".join(channels))
    return f"{len(channels)} channels: " + esc(", ".join(channels[:3])) + ", …"


def occlusion_table(rows, metric_name: str) -> str:
    """HTML table of occlusion results (see :meth:`dashboard.state.Session.occlude`)."""
    if not rows:
        return ("<p class='us-muted'>Nothing removed yet. Choose channels and a band (or a preset), then "
                "<i>Remove and re-measure</i>.</p>")
    body = []
    for r in rows:
        band = band_text(r["band"])
        drop = r["drop"]
        change = "n/a" if not math.isfinite(drop) else f"{-drop:+.3f}"
        strong = " class='us-occ-strong'" if math.isfinite(drop) and drop > 0.05 else ""
        metric = "n/a (constant output)" if not math.isfinite(r["metric"]) else f"{r['metric']:.3f}"
        body.append(f"<tr{strong}><td>{esc(r['label'])}</td><td>{channels_text(r['channels'])}</td><td>{band}</td>"
                    f"<td>{metric}</td><td><b>{change}</b></td></tr>")
    ref = rows[0]["reference"]
    head = (f"<tr><th>removed</th><th>channels</th><th>band</th><th>test {esc(metric_name)} without</th>"
            f"<th>change (from {ref:.3f})</th></tr>")
    return f"<table class='us-occ'>{head}{''.join(body)}</table>"


class OcclusionPanel(pn.viewable.Viewer):
    """Controls and results of band occlusion for the session's decoder."""

    session = param.ClassSelector(class_=Session)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.session
        self.preset = pn.widgets.Select(label="Preset", options={}, width=260)
        self.channels = pn.widgets.MultiChoice(label="Channels", options=[], width=420, css_classes=["us-occ-channels"])
        self.band = pn.widgets.RangeSlider(label="Band (Hz)", start=0.0, end=125.0, value=(60.0, 90.0), step=0.5,
                                           width=260)
        self.all_btn = pn.widgets.Button(label="All channels", width=120,
                                         description="Choose every input channel (does the decoder need the band at all?)")
        self.whole = pn.widgets.Checkbox(label="all frequencies (zero the channels)", value=False)
        self.run_btn = pn.widgets.Button(label="Remove and re-measure", color="primary", width=200)
        self.roles_btn = pn.widgets.Button(label="Each role in its band", width=200)
        self.result = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")
        self.preset.param.watch(self._preset_chosen, "value")
        self.whole.param.watch(lambda e: setattr(self.band, "disabled", e.new), "value")
        self.all_btn.on_click(lambda e: self._choose_all())
        self.run_btn.on_click(lambda e: self._run())
        self.roles_btn.on_click(lambda e: self._run_roles())
        s.param.watch(self._sync_decoder, "decoder_version")
        s.param.watch(self._sync_results, ["occlusions", "occluding"])
        self._sync_decoder()
        self.shown = Shown(s)  # set with the decoder (the demo's roles: "Each role in its band")
        self.shown.set((self.preset, lambda: bool(self._presets)), (self.roles_btn, lambda: bool(self._presets)))

    def _sync_decoder(self, *_):
        s, dec = self.session, self.session.decoder
        presets = s.occlusion_presets()
        self._presets = presets
        self.preset.options = {"(choose channels and band)": "", **{
            f"{role} channels, {band[0]:g}-{band[1]:g} Hz": role for role, (_, band) in presets.items()}}
        self.preset.visible = self.roles_btn.visible = bool(presets)
        if dec is None:
            self.channels.options = {}  # (label -> name, as with a decoder)
            self.run_btn.disabled = self.roles_btn.disabled = True
        else:
            roles = {c: role for role, (chs, _) in presets.items() for c in chs}
            # labels are rendered as HTML by the widget (Choices.js): escaped, as the Data view's picks
            self.channels.options = {esc(f"{c} ({roles[c]})" if c in roles else c): c for c in dec.ch_names}
            nyq = dec.sfreq / 2
            lo, hi = self.band.value
            if hi > nyq:
                # [A] a band past this recording's Nyquist (the demo's 60-90 Hz on 128 Hz EEG) becomes the
                # beta band, classic for motor EEG (or 1-7 Hz where even beta does not fit)
                lo, hi = next((b for b in (BANDS["beta"], BANDS["delta_theta"]) if b[1] <= nyq), (0.0, nyq))
            self.band.param.update(end=nyq, value=(lo, hi))
        self._sync_results()

    def _sync_results(self, *_):
        s, dec = self.session, self.session.decoder
        busy = s.occluding
        self.run_btn.disabled = self.roles_btn.disabled = busy or dec is None
        self.all_btn.disabled = dec is None  # (before a decoder there are no channels to choose)
        self.run_btn.label = "Re-measuring ..." if busy else "Remove and re-measure"
        self.result.object = occlusion_table(s.occlusions, dec.metric_name() if dec else "metric")

    def _choose_all(self) -> None:
        """Every input channel (none before a decoder: the options were a list then, and the
        button raised AttributeError in the server log when pressed while the demo loaded)."""
        self.channels.value = list(self.channels.options.values())

    def _preset_chosen(self, event):
        if event.new in self._presets:
            chs, band = self._presets[event.new]
            self.channels.value = list(chs)
            self.whole.value = False
            self.band.value = band

    def _run(self):
        chs = list(self.channels.value)
        band = None if self.whole.value else tuple(float(v) for v in self.band.value)
        role = self.preset.value
        same = role in self._presets and list(self._presets[role][0]) == chs and self._presets[role][1] == band
        every = self.session.decoder is not None and len(chs) == len(self.session.decoder.ch_names)
        label = f"{role} band" if same else ("all channels" if every else f"{len(chs)} channel(s)")
        self.session.occlude({label: (chs, band)})

    def _run_roles(self):
        self.session.occlude({f"{role} band": (list(chs), band) for role, (chs, band) in self._presets.items()})

    def __panel__(self):
        return pn.Column(
            pn.pane.HTML("<p class='us-muted'>A sensitivity map shows what the decoder responds to; removing a band "
                         "from some channels (every test window's Fourier bins in the band set to zero) and "
                         "re-measuring shows what it <i>needs</i>. The unpruned decoder, test block.</p>",
                         stylesheets=[CSS], sizing_mode="stretch_width"),
            controls(self.preset, self.channels, *lowered(self.all_btn)),
            controls(self.band, *lowered(self.whole, top=12), *lowered(self.run_btn, self.roles_btn, top=8)),
            self.result, sizing_mode="stretch_width")
