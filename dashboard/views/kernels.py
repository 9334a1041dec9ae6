"""Kernels: DUNL kernels of the decoder output and the selected unit, locked to movement onsets.

Each signal shows its event-locked kernels (lag in seconds from the onset) and its per-event
codes against the events' values (peak speed for the demo's movement onsets). After every
prune (or fine-tune) the affected kernels refit and redraw, with the kernels from before the
change drawn faintly. State: :class:`dashboard.kernel_state.KernelState`; this module only
renders it.
"""
from __future__ import annotations

import math

import holoviews as hv
import numpy as np
import panel as pn
import param

from core.deconv.signals import parse_signal, values_vary
from core.recording import natural_key

from ..kernel_state import NO_EVENTS, KernelState, has_events
from ..state import Session
from ._common import CSS, UnitPicker, apply_in_doc, controls, esc, known_roles, lowered, placeholder, placeholder_html
from .prune import prune_state_of, undo

__all__ = ["KernelsView", "kernel_plot", "codes_plot", "kernel_state_of", "signal_label", "codes_r"]

TRIALWISE = (
    "This decoder classifies trials, so its output and units have no time course to deconvolve: their "
    "event-locked kernels need a decoder of a continuous target (the demo's hand speed, or a recording "
    "trained with its Target set to a channel in Data & model; unitscope train --target CHANNEL). The "
    "input's own kernels, below, work for any decoder.")
COLORS = ["#1f5f8b", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]


def kernel_state_of(session: Session) -> KernelState:
    """The session's :class:`KernelState`, created on first use (one per session)."""
    return session.part("kernels", lambda: KernelState(session=session, prune=prune_state_of(session)))


def signal_label(signal: str) -> str:
    """``"unit:conv_3:5"`` -> ``"unit conv_3/5"``; ``"output"`` -> ``"decoder output"``;
    ``"channel:G03:60-90"`` -> ``"channel G03, 60-90 Hz envelope"``."""
    if signal.startswith("unit:"):
        _, layer, idx = signal.split(":")
        return f"unit {layer}/{idx}"
    if signal.startswith("channel:"):
        _, name, band = signal.split(":", 2)
        return f"channel {name}, {band}{' Hz' if band[:1].isdigit() else ''} envelope"
    return "decoder output" if signal.startswith("output") else signal


def signal_title(signal: str) -> str:
    """:func:`signal_label` starting with a capital, for a plot title (the rest as it is:
    ``str.capitalize`` would lower a channel's name); a channel's without the word "channel"
    (``"G03, 60-90 Hz envelope"``: "Channel G03, 60-90 Hz envelope kernel:" ran past a half-width
    plot at 1024 pixels)."""
    label = signal_label(signal)
    if signal.startswith("channel:"):
        return label[len("channel "):]
    return label[:1].upper() + label[1:]


def codes_r(result, kernel) -> float:
    """Pearson r of the codes of ``kernel`` with the events' values (NaN when undefined)."""
    c = result["codes"].sel(kernel=kernel).values.astype(float)
    v = result["value"].values.astype(float)
    ok = np.isfinite(c) & np.isfinite(v)
    if ok.sum() < 3 or not values_vary(c[ok]) or not values_vary(v[ok]):
        return float("nan")
    return float(np.corrcoef(c[ok], v[ok])[0, 1])


def _r_text(kernels, rs) -> str:
    """The codes' r with the events' values, for a title: ``": r = 0.91"`` for one kernel; per
    kernel on a line of its own for two or three (a kernel whose events share one value has
    no r); the range for more (twelve trigger codes' list ran past the plot)."""
    if len(kernels) == 1:
        return f": r = {rs[0]:.2f}" if math.isfinite(rs[0]) else " (one value: no r)"
    if len(kernels) <= 3:
        return ":\n" + ", ".join(f"{k}: r = {r:.2f}" if math.isfinite(r) else f"{k}: one value"
                                 for k, r in zip(kernels, rs))
    ok = [r for r in rs if math.isfinite(r)]
    return f":\nr {min(ok):.2f} to {max(ok):.2f} ({len(ok)} of {len(rs)} kernels)" if ok else " (one value each: no r)"


def _version_note(tag: str | None) -> str:
    return f"[{tag}] " if tag else ""


def legend_opts(n_kernels: int) -> dict:
    """The legend of ``n_kernels`` kernels: none for one (the title names the signal, the view's
    text the faint dashed line; the demo's "movement_onset" covered the kernel's rise at 1024
    pixels), in the plot's corner for a few, beside it for more (twelve trigger codes' legend
    covered the curves)."""
    if n_kernels <= 1:
        return dict(show_legend=False)
    if n_kernels <= 3:  # below, in one row: in the corner it covered EEGMMIDB's T0/T1/T2 kernels and codes
        return dict(show_legend=True, legend_position="bottom", legend_cols=n_kernels)
    return dict(show_legend=True, legend_position="right")


def kernel_plot(result, previous=None, *, title: str, tag: str | None = None, pruned: bool = False) -> hv.Overlay:
    """Kernels (lag in s) of ``result``; ``previous`` drawn faintly and dashed. ``pruned``: the
    signal is a unit that is itself pruned (the title says why its kernel did not change).

    Parameters
    ----------
    result, previous : xarray.Dataset or None
        :meth:`core.deconv.apply.EventDeconvolution.run` outputs (``kernels`` (kernel, lag)).
    """
    lag = hv.Dimension("lag", label="time from onset", unit="s")
    amp = hv.Dimension("kernel", label="kernel (unit norm)")
    onset = hv.VLine(0.0).opts(color="#888888", line_dash="dotted")  # last: the first element names the axes
    parts = []
    if result is None:
        return hv.Overlay([hv.Curve([], lag, amp), onset]).opts(
            hv.opts.Overlay(title=f"{title}: not fitted yet", responsive=True, height=260))
    kernels = sorted(result["kernel"].values, key=natural_key)  # trigger codes as numbers: 2 before 10
    for i, k in enumerate(kernels):
        color = COLORS[i % len(COLORS)]
        if previous is not None and k in previous["kernel"].values:
            parts.append(hv.Curve((previous["lag"].values, previous["kernels"].sel(kernel=k).values), lag, amp,
                                  label=f"{k} (before the change)").opts(color=color, alpha=0.3, line_dash="dashed",
                                                                       line_width=2))
        parts.append(hv.Curve((result["lag"].values, result["kernels"].sel(kernel=k).values), lag, amp,
                              label=str(k)).opts(color=color, line_width=2.5))
    r2 = result.attrs.get("r2", float("nan"))
    how = {"warm_start": "refit", "unaffected": "unaffected"}.get(result.attrs.get("refit", ""), "fitted")
    why = ""
    if how == "unaffected":  # a block's mask acts after its activations, so only masks upstream reach a unit
        # lines of their own: in one line the title ran past a half-width plot and was cut off
        why = "\n(the unit is pruned after it is read)" if pruned else "\n(no unit pruned upstream of it)"
    return hv.Overlay(parts + [onset]).opts(hv.opts.Curve(framewise=True), hv.opts.Overlay(
        title=f"{title} kernel:\n{_version_note(tag)}{how}, R² {r2:.2f}{why}", responsive=True, height=260,
        framewise=True, **legend_opts(len(kernels))))


def codes_plot(result, previous=None, *, title: str, value_label: str = "event value") -> hv.Overlay:
    """Per-event codes against the events' values, or their onsets where the values do not vary
    (:func:`core.deconv.signals.codes_axis`); ``previous`` faint."""
    cdim = hv.Dimension("code", label="code (event amplitude)")
    if result is None:
        return hv.Overlay([hv.Scatter([], hv.Dimension("value", label=value_label), cdim)]).opts(
            hv.opts.Overlay(title=f"{title} codes: not fitted yet", responsive=True, height=260))
    from core.deconv.signals import codes_axis

    x = codes_axis(result)
    over_time = x == "onset"
    vdim = hv.Dimension(x, label="event onset (s)" if over_time else value_label)
    parts = []
    rs = []
    kernels = sorted(result["kernel"].values, key=natural_key)
    for i, k in enumerate(kernels):
        color = COLORS[i % len(COLORS)]
        if previous is not None and k in previous["kernel"].values and x in previous.coords:
            parts.append(hv.Scatter((previous[x].values, previous["codes"].sel(kernel=k).values), vdim, cdim,
                                    label=f"{k} (before)").opts(color=color, alpha=0.25, size=6))
        parts.append(hv.Scatter((result[x].values, result["codes"].sel(kernel=k).values), vdim, cdim,
                                label=str(k)).opts(color=color, size=8, tools=["hover"]))
        if not over_time:
            rs.append(codes_r(result, k))
    what = "over time (one value per event type)" if over_time else f"vs {value_label}{_r_text(kernels, rs)}"
    return hv.Overlay(parts).opts(hv.opts.Scatter(framewise=True, padding=0.08), hv.opts.Overlay(
        title=f"{title} codes\n{what}",  # two lines: one ran past a half-width plot at 1024 pixels
        responsive=True, height=260, framewise=True, **legend_opts(len(kernels))))


def channel_bands(decoder) -> dict:
    """Bands offered for a channel's envelope kernels: ``{label: "LO-HI"}``, the recording's
    known roles first (the demo's), then the standard bands below Nyquist."""
    from core.deconv.signals import BANDS

    nyq = decoder.ws.recording.sfreq / 2
    out = {}
    known = known_roles(decoder.ws.recording.signals)
    for role, (lo, hi) in (known["bands"] if known is not None else {}).items():
        if 0 < lo < hi < nyq:
            out[f"{role.replace('_', ' ')} role, {lo:g}-{hi:g} Hz"] = f"{lo:g}-{hi:g}"
    for name, (lo, hi) in BANDS.items():
        if hi < nyq and f"{lo:g}-{hi:g}" not in out.values():
            out[f"{name.replace('_', ' ')}, {lo:g}-{hi:g} Hz"] = f"{lo:g}-{hi:g}"
    return out


def default_channel(decoder) -> str:
    """The channel first offered: the first with a known role (the demo's G03), else the first."""
    known = known_roles(decoder.ws.recording.signals)
    names = list(decoder.ch_names)
    if known is not None:
        with_role = [n for n, r in zip(names, known["roles"]) if r]
        if with_role:
            return with_role[0]
    return names[0]


class KernelsView(pn.viewable.Viewer):
    """Event-locked kernels and codes of the decoder output and of the selected unit."""

    session = param.ClassSelector(class_=Session)
    shown = param.Integer(default=0, doc="Bumped when the plots are to show newer kernels (see _show).")
    title = "Kernels"

    def __init__(self, **params):
        super().__init__(**params)
        s = self.session
        self.ks = ks = kernel_state_of(s)
        self.ps = ks.prune
        self.fit_btn = pn.widgets.Button(label="Fit kernels", color="primary", width=140)
        self.fit_btn.on_click(lambda e: ks.start())
        # the unit whose kernels are shown (the selection all views share), and prune from here
        # too, to watch the kernels change (same state as the Prune view)
        self.picker = UnitPicker(s, hidden_only=True)
        self.metric = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")
        # wide enough for the longest label, "Prune / restore conv_time_spat/39"
        self.toggle_btn = pn.widgets.Button(label="Prune / restore unit", color="primary", width=250)
        self.undo_btn = pn.widgets.Button(label="Undo", width=80)
        self.toggle_btn.on_click(self._toggle)
        self.undo_btn.on_click(lambda e: undo(s, self.ps))
        self.ps.param.watch(self._sync_prune, ["ready", "metric", "metric_base", "measuring", "queue_position",
                                               "pruned", "last_change", "finetuned", "n_undo"])
        s.param.watch(self._sync_prune, ["layer", "unit"])
        self.status = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")
        self._doc = None  # the served document (set in __panel__)
        self._shown = self._snapshot()
        ks.param.watch(self._sync, ["state", "message", "queue_position", "tracking", "fitted_version", "output"])
        ks.param.watch(self._results_changed, ["output", "output_previous", "unit", "unit_previous",
                                               "fitted_version"])
        s.param.watch(self._view_changed, "view")
        # a unit not fitted yet is titled by the selection: redraw its empty plots when it changes,
        # while the view is shown (a prune click elsewhere selects a unit: hidden plots wait)
        s.param.watch(self._selection_changed, ["layer", "unit"])
        s.param.watch(self._sync, "decoder_version")
        self._sync_prune()
        # [A] The plots follow the view's own ``shown`` counter, bumped on the document's event
        # loop (``apply_in_doc``), never the kernel worker's parameters directly: a result
        # published by the worker while the tab's plots were being created (the worker starts
        # when the tab is opened) could otherwise reach only the plots that already existed.
        # [A] Axes not linked: Panel links panes' axes of the same dimension, and the output's and
        # the unit's codes (and kernels) live on different scales, so one clipped the other.
        self.output_kernel = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._kernel, which="output", shown=self.param.shown)),
                                               sizing_mode="stretch_width", linked_axes=False)
        self.output_codes = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._codes, which="output", shown=self.param.shown)),
                                              sizing_mode="stretch_width", linked_axes=False)
        self.unit_kernel = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._kernel, which="unit", shown=self.param.shown)),
                                             sizing_mode="stretch_width", linked_axes=False)
        self.unit_codes = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._codes, which="unit", shown=self.param.shown)),
                                            sizing_mode="stretch_width", linked_axes=False)
        self.plots = pn.Column(
            controls(self.picker.layer, self.picker.unit, *lowered(self.toggle_btn, self.undo_btn)),
            self.metric,
            pn.Row(self.output_kernel, self.output_codes, sizing_mode="stretch_width"),
            pn.Row(self.unit_kernel, self.unit_codes, sizing_mode="stretch_width"), sizing_mode="stretch_width")
        # the input's own kernels: a channel's band envelope, for any decoder (pruning never changes it)
        self.ch_select = pn.widgets.Select(label="Input channel", options=[], width=140, css_classes=["us-ch-kernel"])
        self.band_select = pn.widgets.Select(label="Band", options={}, width=230, css_classes=["us-band-kernel"])
        self.ch_btn = pn.widgets.Button(label="Fit channel kernels", width=170)
        self.ch_btn.on_click(lambda e: self.fit_channel())
        self.ch_status = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")
        self.ch_kernel = pn.pane.HoloViews(kernel_plot(None, title="Input channel"), sizing_mode="stretch_width",
                                           linked_axes=False)
        self.ch_codes = pn.pane.HoloViews(codes_plot(None, title="Input channel"), sizing_mode="stretch_width",
                                          linked_axes=False)
        self.channels = pn.Column(
            pn.pane.Markdown("### The input's own kernels"),
            pn.pane.HTML("<p class='us-muted'>DUNL on a channel's band envelope, locked to the same events: what the "
                         "input itself does at each event, beside what the decoder's output and units do. Pruning "
                         "never changes it.</p>", stylesheets=[CSS], sizing_mode="stretch_width"),
            controls(self.ch_select, self.band_select, *lowered(self.ch_btn)),
            self.ch_status,
            pn.Row(self.ch_kernel, self.ch_codes, sizing_mode="stretch_width"), sizing_mode="stretch_width")
        s.param.watch(self._sync_channels, "decoder_version")
        self._sync_channels()
        self.unavailable = placeholder(TRIALWISE)
        self._sync()
        if s.view == "kernels":
            ks.start()

    def _snapshot(self) -> dict:
        ks = self.ks
        return dict(output=ks.output, output_previous=ks.output_previous, unit=ks.unit,
                    unit_previous=ks.unit_previous, unit_signal=ks.unit_signal, tag=self._tag(),
                    selection=ks.selected_signal() if ks.unit is None else "")

    def _results_changed(self, *_):
        apply_in_doc(self._doc, self._show)

    def _selection_changed(self, *_):
        if self.session.view == "kernels":
            apply_in_doc(self._doc, self._show)

    def _show(self):
        """Draw the latest results (on the document's event loop when served)."""
        shown = self._snapshot()
        if any(shown[k] is not self._shown[k] for k in ("output", "output_previous", "unit", "unit_previous")) \
                or any(shown[k] != self._shown[k] for k in ("unit_signal", "tag", "selection")):
            self._shown = shown
            self.shown += 1

    def _toggle(self, *_):
        s = self.session
        if s.layer == "conv_classifier":
            s.alert("The output layer cannot be pruned: choose a unit of a hidden layer (Units or Prune view).",
                    "warning")
            return
        self.ps.toggle(s.layer, s.unit)

    def _sync_prune(self, *_):
        from .prune_text import metric_html, toggle_label

        s, ps = self.session, self.ps
        if s.view != "kernels" and _:
            return  # updated when the view is shown: hidden widgets cost the server time on every prune
        self.metric.object = metric_html(ps, s.layer, s.unit) if ps.ready else ""
        self.toggle_btn.label = toggle_label(s.layer, s.unit)  # the selection only (see toggle_label)
        self.toggle_btn.disabled = s.decoder is None or s.layer == "conv_classifier"
        self.undo_btn.disabled = not ps.ready  # enabled throughout, as in the Prune view (see there)

    def _view_changed(self, event):
        if event.new == "kernels":
            self._sync_prune()
            apply_in_doc(self._doc, self._show)  # a selection made elsewhere meanwhile
        if event.new == "kernels" and not self.ks.tracking:
            self.ks.start()

    def _tag(self) -> str:
        n = sum(len(v) for v in self.ps.pruned.values())
        ft = ", fine-tuned" if self.ps.finetuned else ""
        return f"mask v{self.ks.fitted_version}: {n} pruned{ft}"

    def _sync(self, *_):
        ks = self.ks
        dec = self.session.decoder
        no_events = dec is not None and not has_events(dec)
        available = dec is None or (dec.task == "regression" and not no_events)
        self.unavailable.object = placeholder_html(NO_EVENTS if no_events else TRIALWISE)
        self.plots.visible = available
        self.unavailable.visible = not available
        self.fit_btn.visible = not ks.tracking and available
        if ks.message:
            text = esc(ks.message)
        elif ks.state == "fitting":
            text = "Fitting the kernels of the unpruned decoder (once per server; about ten seconds) ..."
        elif ks.state == "refitting":
            text = "Refitting the kernels for the new mask ..."
        elif ks.state == "ready":
            text = (f"Kernels fitted for the current mask ({esc(self._tag())}). Every prune refits them, "
                    "warm-started; the faint dashed lines are the kernels before the last change.")
        else:
            text = ("Press <b>Fit kernels</b>: DUNL learns a kernel locked to each event type (the demo's movement "
                    "onsets) on the test block, for the decoder output and the selected unit.")
        if ks.queue_position:
            text += f" Waiting for a free core (position {ks.queue_position})."
        self.status.object = f"<p class='us-muted'>{text}</p>"

    # ---- the input's own kernels ------------------------------------------------------
    def _sync_channels(self, *_):
        """Channel and band choices of the decoder shown; its earlier channel kernels dropped."""
        dec = self.session.decoder
        self.ch_btn.disabled = dec is None
        if dec is None:
            self.ch_select.options, self.band_select.options = [], {}
            return
        first = default_channel(dec)
        self.ch_select.options = list(dec.ch_names)
        self.ch_select.value = first
        bands = channel_bands(dec)
        self.band_select.options = bands
        known = known_roles(dec.ws.recording.signals)
        role = known["roles"][list(dec.ch_names).index(first)] if known is not None else ""
        lo_hi = known["bands"].get(role) if role else None  # the first channel's role band, else the first band
        wanted = f"{lo_hi[0]:g}-{lo_hi[1]:g}" if lo_hi else None
        self.band_select.value = wanted if wanted in bands.values() else next(iter(bands.values()), None)
        if not has_events(dec):
            self.ch_btn.disabled = True
            self.ch_status.object = "<span class='us-muted'>The recording has no events to lock kernels to.</span>"
        else:
            self.ch_status.object = ""
        apply_in_doc(self._doc, self._draw_channel)

    def channel_signal(self) -> str:
        return f"channel:{self.ch_select.value}:{self.band_select.value}"

    def fit_channel(self) -> None:
        """Fit the chosen channel's envelope kernels in a worker (cached per decoder and signal)."""
        s, dec, signal = self.session, self.session.decoder, self.channel_signal()
        if dec is None or not self.ch_select.value or not self.band_select.value:
            return
        from ..kernel_state import shared_kernels

        self.ch_btn.disabled = True
        self.ch_status.object = f"<span class='us-muted'>Fitting the kernels of {esc(signal_label(signal))} ...</span>"

        def work(stop):
            return dec, signal, shared_kernels(dec).initial(signal, stop=stop)

        def done(result):
            got_dec, got_signal, ds = result
            self.ch_btn.disabled = False
            if got_dec is not self.session.decoder:
                return  # the decoder changed meanwhile
            self.ks.channel = ds
            self.ch_status.object = (f"<span class='us-muted'>{esc(signal_label(got_signal))}: R² "
                                     f"{ds.attrs.get('r2', float('nan')):.2f} over {ds.sizes['event']} events of the "
                                     "test block</span>")
            apply_in_doc(self._doc, self._draw_channel)

        def failed(msg):
            self.ch_btn.disabled = False
            self.ch_status.object = ""

        if s._start("channel kernels", work, on_done=done, on_error=failed) is None:
            self.ch_btn.disabled = False

    def _draw_channel(self):
        ds = self.ks.channel
        title = signal_title(ds.attrs.get("signal", "")) if ds is not None else "Input channel"
        self.ch_kernel.object = kernel_plot(ds, title=title)
        self.ch_codes.object = codes_plot(ds, title=title, value_label=self._value_label())

    def _value_label(self) -> str:
        dec = self.session.decoder
        if dec is not None and dec.ws.spec.source == "demo":
            return "peak speed"
        return "event value"

    def _title(self, which: str) -> str:
        if which == "output":
            return "Decoder output"
        shown = self._shown["unit_signal"] if self._shown["unit"] is not None else None  # else: the selection
        return signal_title(shown or self.ks.selected_signal())

    def _kernel(self, which, shown):
        result, previous = self._shown[which], self._shown[f"{which}_previous"]
        tag = self._shown["tag"] if result is not None else None
        pruned = False
        signal = self._shown["unit_signal"] or ""
        if which == "unit" and signal.startswith("unit:"):
            spec = parse_signal(signal)
            pruned = spec.index in self.ps.pruned.get(spec.layer, [])
        return kernel_plot(result, previous, title=self._title(which), tag=tag, pruned=pruned)

    def _codes(self, which, shown):
        result, previous = self._shown[which], self._shown[f"{which}_previous"]
        return codes_plot(result, previous, title=self._title(which), value_label=self._value_label())

    def __panel__(self):
        if self._doc is None and pn.state.curdoc is not None:
            self._doc = pn.state.curdoc
        return pn.Column(pn.Row(self.fit_btn, self.status, sizing_mode="stretch_width"), self.unavailable,
                         self.plots, self.channels, sizing_mode="stretch_width")
