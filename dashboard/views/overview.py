"""Overview: decoding on the test block, unit classes per layer, band occlusion, a multichannel signal browser."""
from __future__ import annotations

import threading
import weakref

import holoviews as hv
import numpy as np
import panel as pn
import param
from bokeh.models import BasicTicker
from holoviews.operation.downsample import downsample1d

from core.cautions import chance_note, shift_note
from core.metrics import FEW_TRIALS
from core.report_figures import confusion_counts, dark_above

from ..jobs import Job
from ..state import Session
from ._common import CSS, apply_in_doc, esc, known_roles, placeholder
from .occlusion import OcclusionPanel

__all__ = ["OverviewView", "prediction_plot", "signal_browser", "fraction_table", "fraction_plot",
           "CLASS_COLORS"]

CLASS_COLORS = {"amplitude": "#d62728", "phase": "#1f77b4", "bimodal": "#9467bd",
                "insensitive": "#c7c7c7", "unclassified": "#e0e0e0"}


def with_gaps(t: np.ndarray, *ys: np.ndarray) -> tuple[np.ndarray, ...]:
    """``t`` and ``ys`` with a NaN sample inserted wherever ``t`` jumps (windows left out, e.g.
    touching a stretch marked bad), so that lines break there instead of bridging the gap."""
    t = np.asarray(t, dtype=np.float64)
    if len(t) < 3:
        return (t, *ys)
    step = np.diff(t)
    at = np.flatnonzero(step > 1.5 * np.median(step)) + 1
    if not len(at):
        return (t, *ys)
    gap_t = (t[at - 1] + t[at]) / 2
    return (np.insert(t, at, gap_t), *(np.insert(np.asarray(y, dtype=np.float64), at, np.nan) for y in ys))


def prediction_plot(pred: dict):
    """Predicted vs true target on the test block (regression) or a confusion matrix (labels)."""
    if pred["task"] == "regression":
        t, y_true, y_pred = with_gaps(pred["time"], pred["true"], pred["pred"])
        tdim = hv.Dimension("test_time", label="time", unit="s")  # not linked to the signal browser
        ydim = hv.Dimension("target", label=pred.get("target", "target"))
        true = hv.Curve((t, y_true), tdim, ydim, label="true").opts(color="#333333")
        est = hv.Curve((t, y_pred), tdim, ydim, label="predicted").opts(color="#d62728")
        note = chance_note("regression", pred["metric"])
        return downsample1d(true * est, width=1200).opts(
            hv.opts.Curve(line_width=1.2, responsive=True, height=285, tools=["xwheel_zoom"]),
            # the legend above the plot, in one row: inside, it covered the traces (a gaze target fills the plot)
            hv.opts.Overlay(legend_position="top", legend_cols=2,
                            title=f"Test block: Pearson r = {pred['metric']:.3f}" + (f" ({note})" if note else "")))
    order, cm = confusion_counts(pred)  # class names in natural order (2 before 16); rows predicted
    n = len(order)
    # hover: each cell's share of its true class's trials (the diagonal's are the recalls that
    # balanced accuracy averages)
    per_true = np.maximum(cm.sum(axis=0), 1)
    rows = [(order[t], order[p], cm[p, t], 100.0 * cm[p, t] / per_true[t]) for t in range(n) for p in range(n)]
    n_trials = int(cm.sum())
    title = f"{n_trials} test trials: balanced accuracy = {pred['metric']:.3f}"
    if n_trials < FEW_TRIALS:
        title += f"\n(fewer than {FEW_TRIALS} trials: very uncertain)"
    note = chance_note("classification", pred["metric"], len(np.unique(np.asarray(pred["true"]))), n_trials)
    if note:
        title += f"\n({note})"
    axes = [hv.Dimension("true", values=order), hv.Dimension("predicted", values=order)]
    share = hv.Dimension("share", label="of the true class's trials")  # in %
    hm = hv.HeatMap(rows, axes, ["trials", share]).opts(
        cmap="Blues", colorbar=True, tools=["hover"], height=300, width=380, title=title,
        colorbar_opts={"ticker": BasicTicker(min_interval=1)},  # whole trials (it ticked 0.5, 1.5, 2.5)
        hover_tooltips=[("true", "@true"), ("predicted", "@predicted"), ("trials", "@trials"),
                        ("of the true class's trials", "@share{0}%")])
    # white counts on the dark cells (above half the largest count): black on navy did not read
    dark = (hv.dim("trials") > dark_above(cm.max())).categorize({True: "white", False: "black"})
    return hm * hv.Labels(hm, vdims="trials").opts(text_color=dark)


class SignalBrowser:
    """Stacked channels with a minimap (plain Bokeh) [A].

    The main plot shows the visible time range and channels only, reduced on the server to a
    min/max envelope of at most ``n_px`` points per channel whenever the view changes
    (dragging or resizing the box in the minimap, panning), so it stays fast on a long
    recording with hundreds of channels. The minimap is an RMS image of the whole recording,
    every channel; its box selects the time range and the channels shown (``page``
    channels at first). Channel labels are thinned to stay legible.

    For teaching, the traces of channels with a known role (the demo's ground truth) take
    the role's colour, events (the demo's movement onsets) are dashed lines, and
    :meth:`show` swaps the signals for their amplitude envelope in a band
    (:func:`core.deconv.signals.band_envelope`, smoothed and z-scored per channel): the demo's high-gamma
    channels rise at every movement, its beta channels drop. A continuous target (the demo's
    hand speed) is drawn above the channels on the same time axis; with an envelope shown,
    its title gives the envelope's Pearson r with the target over the whole recording, per
    role (the mean of its channels' r) or, without roles, of the channels that follow it most
    (:func:`target_r`).
    """

    RAW = "signals"
    SMOOTH_S = 0.2  # [A] Gaussian smoothing of a shown envelope (s): a movement's rise, not the band's ripple

    SPACING = 3.0  # offset between two channels, in standard deviations
    BAD_COLOR = "#d62728"  # stretches the file marks bad (BAD/EDGE annotations), as MNE's browser shades them
    LABEL_PX = 11  # at least this many pixels between two channel labels

    def __init__(self, decoder, *, window_s: float = 10.0, page: int = 32, n_px: int = 1200,
                 height: int = 520):
        from bokeh.layouts import column
        from bokeh.models import ColumnDataSource, FixedTicker, Range1d, RangeTool
        from bokeh.palettes import Greys256
        from bokeh.plotting import figure

        rec = decoder.ws.recording
        sig = rec.signals
        self.names = [str(c) for c in sig["channel"].values]
        self.raw = self.data = sig.values  # (chans, times), standardised
        self.t = sig["time"].values
        self.sfreq = 1.0 / (self.t[1] - self.t[0]) if len(self.t) > 1 else 1.0
        self.shown = self.RAW
        known = known_roles(sig)
        roles = known["roles"] if known is not None else np.full(len(self.names), "")
        self.colors = [known["legend"][r][1] if r else "#1f3b57" for r in roles]
        self.options = {self.RAW: None}  # what show() offers: label -> band (Hz) or None
        if known is not None:
            for role, (lo, hi) in known["bands"].items():
                if 0 < lo < hi < self.sfreq / 2:  # a band the band-pass can take
                    self.options[f"{role.replace('_', ' ')} envelope ({lo:g}-{hi:g} Hz)"] = (lo, hi)
        else:
            from core.probing.bands import resolve_bands

            for name, (lo, hi) in resolve_bands(None, sfreq=self.sfreq).items():
                hi = min(hi, round(0.45 * self.sfreq, 1))  # [A] a band-pass edge stays below Nyquist
                if lo < hi:
                    self.options[f"{name.replace('_', ' ')} envelope ({lo:g}-{hi:g} Hz)"] = (lo, hi)
        events = getattr(rec, "events", None)
        self.onsets = np.asarray(events.onset, float) if events is not None else np.zeros(0)
        t_first = float(self.t[0]) if len(self.t) else 0.0
        self.bad_spans = np.array([(t_first + o, t_first + o + d) for o, d, _ in getattr(rec, "bad_segments", [])],
                                  dtype=float).reshape(-1, 2)  # (start, stop) s of each stretch marked bad
        target = getattr(rec, "target", None)
        self.target = None if target is None else np.asarray(target.values, dtype=np.float64)
        self.target_name = None if target is None else str(target.name or "target").replace("_", " ")
        self.target_r = None  # (channels,) r of the shown envelope with the target, or None
        # every channel's role, those without a band (the demo's noise channels) included
        self.roles = sig["role"].values.astype(str) if "role" in sig.coords else np.full(len(self.names), "")
        self.n_px = n_px
        self.height = height
        n = len(self.names)
        self.offsets = self.SPACING * np.arange(n)[::-1]  # first channel on top
        t0, t1 = float(self.t[0]), float(self.t[-1])
        top = self.SPACING * (n - 1)
        shown = min(page, n)
        lo_y, hi_y = -self.SPACING, top + self.SPACING  # the whole stack, with room for the outer traces
        self.src = ColumnDataSource(dict(xs=[], ys=[], channel=[], color=[]))
        main = figure(x_range=Range1d(t0, min(t0 + window_s, t1), bounds=(t0, t1)),
                      y_range=Range1d(top - self.SPACING * shown, hi_y, bounds=(lo_y, hi_y)),
                      height=height, sizing_mode="stretch_width",
                      tools="pan,xpan,xwheel_zoom,reset,save", active_drag="pan" if n > shown else "xpan",
                      active_scroll="xwheel_zoom",
                      title=self._title(shown, n), x_axis_label="time (s)")
        if len(self.onsets):  # events (the demo's movement onsets): dashed lines behind the traces
            main.segment(x0=self.onsets, x1=self.onsets, y0=lo_y, y1=hi_y, color="#555555", line_dash="dashed",
                         line_width=1.5, alpha=0.8)
        if len(self.bad_spans):  # stretches marked bad: shaded red, here and in the minimap
            main.quad(left=self.bad_spans[:, 0], right=self.bad_spans[:, 1], bottom=lo_y, top=hi_y,
                      color=self.BAD_COLOR, alpha=0.15, line_alpha=0)
        main.multi_line("xs", "ys", source=self.src, line_width=0.8, color="color")
        main.yaxis.ticker = FixedTicker(ticks=[])
        main.yaxis.major_label_overrides = {float(o): name for o, name in zip(self.offsets, self.names)}
        main.ygrid.visible = False
        # the minimap shares the main plot's y coordinates, so its box selects channels too
        mini = figure(x_range=Range1d(t0, t1), y_range=Range1d(lo_y, hi_y), height=135 if n <= 64 else 185,
                      sizing_mode="stretch_width", toolbar_location=None, tools="", x_axis_label="time (s)")
        self.mini_src = ColumnDataSource(dict(image=[self._overview_image()]))
        mini.image(image="image", source=self.mini_src, x=t0, y=lo_y, dw=t1 - t0, dh=hi_y - lo_y,
                   palette=list(reversed(Greys256)))
        mini.yaxis.visible = False
        if len(self.bad_spans):
            mini.quad(left=self.bad_spans[:, 0], right=self.bad_spans[:, 1], bottom=lo_y, top=hi_y,
                      color=self.BAD_COLOR, alpha=0.3, line_alpha=0)
        tool = RangeTool(x_range=main.x_range, y_range=main.y_range if n > page else None)
        mini.add_tools(tool)
        self.main, self.mini = main, mini
        self.tgt = None
        if self.target is not None:  # the target above the channels, on their time axis
            finite = self.target[np.isfinite(self.target)]
            mu, sd = (finite.mean(), max(finite.std(), 1e-12)) if len(finite) else (0.0, 1.0)
            self.target_z = (self.target - mu) / sd
            lo_t, hi_t = (float(finite.min() - mu) / sd, float(finite.max() - mu) / sd) if len(finite) else (-1, 1)
            pad = 0.05 * max(hi_t - lo_t, 1e-6)
            self.tgt_src = ColumnDataSource(dict(x=[], y=[]))
            self.tgt = figure(x_range=main.x_range, y_range=Range1d(lo_t - pad, hi_t + pad), height=120,
                              sizing_mode="stretch_width", toolbar_location=None, tools="",
                              title=f"{self.target_name[0].upper()}{self.target_name[1:]} "
                                    "(the decoder's target), z-scored")
            self.tgt.line("x", "y", source=self.tgt_src, color="#111111", line_width=1.2)
            if len(self.onsets):
                self.tgt.segment(x0=self.onsets, x1=self.onsets, y0=lo_t - pad, y1=hi_t + pad, color="#555555",
                                 line_dash="dashed", line_width=1.5, alpha=0.8)
            self.tgt.yaxis.axis_label = "z"
            self.tgt.xaxis.visible = False
        self.layout = column(*([self.tgt] if self.tgt is not None else []), main, mini, sizing_mode="stretch_width")
        for r in (main.x_range, main.y_range):
            r.on_change("start", self._moved)
            r.on_change("end", self._moved)
        self._draw()

    def _overview_image(self) -> np.ndarray:
        """The minimap in up to 2000 time bins, first channel on top: the RMS of the signals, or
        the mean of an envelope (its rises dark, its drops light)."""
        n_bins = min(2000, len(self.t))
        edges = np.linspace(0, len(self.t), n_bins + 1).astype(int)
        x = self.data.astype(np.float64)
        if self.shown == self.RAW:
            img = np.sqrt(np.add.reduceat(x ** 2, edges[:-1], axis=1) / np.diff(edges)[None])  # (chans, bins)
        else:
            img = np.add.reduceat(x, edges[:-1], axis=1) / np.diff(edges)[None]
        return img[::-1].astype(np.float32)

    def show(self, label: str) -> None:
        """Show the standardised signals (:attr:`RAW`) or one of :attr:`options`' envelopes."""
        if label not in self.options:
            raise KeyError(f"{label!r} is not one of {list(self.options)}")
        band = self.options[label]
        if band is None:
            self.data, self.target_r = self.raw, None
        else:
            self.data = shown_envelope(self.raw, self.sfreq, band, self.SMOOTH_S)
            self.target_r = None if self.target is None else target_r(self.data, self.target)
        self.shown = label
        self.mini_src.data = dict(image=[self._overview_image()])
        self._draw()

    TOP_R = 3  # [A] without known roles, the channels whose envelope follows the target most, named

    def r_text(self) -> str:
        """How the shown envelope follows the target, in words ("" with the signals shown or
        no continuous target): Pearson r over the whole recording, per role (the mean of its
        channels' r; strongest first) or, without roles, of the channels that follow it most."""
        r = self.target_r
        if r is None:
            return ""
        what = self.shown.split(" (")[0]
        if any(self.roles):
            mean = {role: float(np.nanmean(r[self.roles == role])) for role in known_roles_legend(self.roles)
                    if np.isfinite(r[self.roles == role]).any()}
            parts = [f"{role.replace('_', ' ')} {_signed(v)}" for role, v in sorted(mean.items(), key=lambda kv: -abs(kv[1]))]
            head = f"r of the {what} with {self.target_name}, mean of each role's channels"
        else:
            order = [i for i in np.argsort(-np.nan_to_num(np.abs(r), nan=-1.0)) if np.isfinite(r[i])][:self.TOP_R]
            parts = [f"{self.names[i]} {_signed(r[i])}" for i in order]
            head = f"r of the {what} with {self.target_name}, the channels that follow it most"
        if not parts:
            return f"r of the {what} with {self.target_name}: undefined (the target does not vary)"
        return f"{head} (whole recording): " + ", ".join(parts)

    def _title(self, shown: int, n: int) -> str:
        what = "Signals (standardised)" if self.shown == self.RAW else f"{self.shown[0].upper()}{self.shown[1:]}, z-scored"
        parts = [what] + ([f"{shown} of {n} channels"] if shown < n else []) + (
            ["dashed: events"] if len(self.onsets) else []) + (["red: marked bad"] if len(self.bad_spans) else [])
        return " · ".join(parts)

    def _hint(self, shown: int, n: int) -> str:
        """The minimap's title: how to move (a hint of its own; in the main title it ran past a
        1024-px page)."""
        return ("Drag or resize the box to move through time" if shown >= n else
                "Drag or resize the box (or drag the signals) to move through time and channels")

    def _moved(self, attr, old, new):
        self._draw()

    def visible_channels(self) -> np.ndarray:
        """Indexes of the channels inside the main plot's y range."""
        r = self.main.y_range
        return np.flatnonzero((self.offsets > r.start) & (self.offsets < r.end))

    def _draw(self):
        """Min/max envelope of the visible range and channels, at most ``n_px`` bins each."""
        r = self.main.x_range
        chans = self.visible_channels()
        i0 = max(int((r.start - self.t[0]) * self.sfreq) - 1, 0)
        i1 = min(int((r.end - self.t[0]) * self.sfreq) + 2, len(self.t))
        seg = self.data[chans, i0:i1]  # (visible chans, samples)
        t = self.t[i0:i1]
        n_px = max(200, int(self.n_px * min(1.0, 64 / max(len(chans), 1))))  # many lines: fewer points each
        tt, y = _min_max(seg, t, n_px)
        self.src.data = dict(xs=[tt] * len(chans), ys=[y[k] + self.offsets[c] for k, c in enumerate(chans)],
                             channel=[self.names[c] for c in chans], color=[self.colors[c] for c in chans])
        if self.tgt is not None:
            x, y_t = _min_max(self.target_z[None, i0:i1], t, n_px)
            self.tgt_src.data = dict(x=x, y=y_t[0])
        every = max(1, int(np.ceil(len(chans) * self.LABEL_PX / max(self.height - 60, 1))))
        self.main.yaxis.ticker.ticks = [float(self.offsets[c]) for c in chans[::every]]
        self.main.title.text = self._title(len(chans), len(self.names))
        self.mini.title.text = self._hint(len(chans), len(self.names))


def _signed(r: float) -> str:
    """An r with its sign, two decimals; one that rounds to zero has none ("-0.00" reads as a drop)."""
    text = f"{r:+.2f}"
    return "0.00" if text in ("+0.00", "-0.00") else text


def _min_max(seg: np.ndarray, t: np.ndarray, n_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Traces (``seg``: (rows, samples) at times ``t``) reduced to their min and max in at most
    ``n_px`` bins each: (times, values (rows, 2 * bins)); as given when they are short enough."""
    step = max(1, int(np.ceil(seg.shape[1] / n_px)))
    if step == 1:
        return t, seg
    m = seg.shape[1] // step * step
    blocks = seg[:, :m].reshape(seg.shape[0], -1, step)  # (rows, bins, step)
    y = np.stack([blocks.min(-1), blocks.max(-1)], axis=-1).reshape(seg.shape[0], -1)  # (rows, 2 * bins)
    return np.repeat(t[:m].reshape(-1, step)[:, 0], 2), y


def known_roles_legend(roles: np.ndarray) -> list[str]:
    """The roles among ``roles`` (one per channel, "" for none), in order of first channel."""
    return [r for r in dict.fromkeys(roles.tolist()) if r]


def target_r(env: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pearson r of each channel's envelope (``env``: (channels, times)) with a continuous
    target over the samples where the target is known (NaN where it does not vary)."""
    ok = np.isfinite(target)
    y = target[ok] - target[ok].mean()
    out = np.full(len(env), np.nan)
    for c in range(0, len(env), 16):  # [A] 16 channels at a time: float64 without a copy of all of them
        x = env[c:c + 16][:, ok].astype(np.float64)
        x -= x.mean(axis=1, keepdims=True)
        den = np.sqrt((x ** 2).sum(axis=1) * (y ** 2).sum())
        out[c:c + 16] = np.where(den > 0, x @ y / np.where(den > 0, den, 1.0), np.nan)
    return out


_ENVELOPES: dict = {}  # (id of the signals, band, smoothing) -> (weakref to the signals, envelope)
_ENVELOPES_LOCK = threading.Lock()
_ENVELOPES_KEPT = 4  # [A] the envelopes kept for all sessions (a class shares the demo's)


def envelope_cached(raw: np.ndarray, band: tuple, smooth_s: float) -> bool:
    """Whether :func:`shown_envelope` has this envelope at hand (no computing)."""
    with _ENVELOPES_LOCK:
        hit = _ENVELOPES.get((id(raw), tuple(band), smooth_s))
        return hit is not None and hit[0]() is raw


def shown_envelope(raw: np.ndarray, sfreq: float, band: tuple, smooth_s: float) -> np.ndarray:
    """A band's envelope of ``raw`` (channels, times), z-scored per channel so the browser's
    spacing holds [A]; shared by every session showing the same recording (the demo's
    signals are one array for all sessions), the last few kept. Seconds for hundreds of
    channels (306 MEG channels, 6 min: 5 s): the browser computes it in a worker."""
    key = (id(raw), tuple(band), smooth_s)
    with _ENVELOPES_LOCK:
        hit = _ENVELOPES.get(key)
        if hit is not None and hit[0]() is raw:
            return hit[1]
    from core.deconv.signals import band_envelope

    env = band_envelope(raw, sfreq, band, smooth_s=smooth_s).astype(np.float32)
    env -= env.mean(axis=1, keepdims=True)
    env /= np.maximum(env.std(axis=1, keepdims=True), 1e-12)
    env.setflags(write=False)
    with _ENVELOPES_LOCK:
        _ENVELOPES[key] = (weakref.ref(raw), env)
        while len(_ENVELOPES) > _ENVELOPES_KEPT:
            _ENVELOPES.pop(next(iter(_ENVELOPES)))
    return env


def signal_browser(decoder, *, window_s: float = 10.0, page: int = 32, doc=None):
    """The signal browser of a decoder's recording as a Panel pane (``.browser``), with a
    choice of what it shows above it (``.choice``): the signals or a band's envelope.
    ``doc``: the page's document, where a band's envelope computed by a worker is drawn
    (default: the current one; the Overview gives its own, as it builds this in a callback
    of the loop, not a Panel event)."""
    sb = SignalBrowser(decoder, window_s=window_s, page=page)
    choice = pn.widgets.Select(label="Show", options=list(sb.options), value=sb.RAW, width=300,
                               css_classes=["us-signal-choice"])
    doc = doc if doc is not None else pn.state.curdoc
    col = pn.Column(sizing_mode="stretch_width")
    col.job = None
    r_line = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width", css_classes=["us-signal-r"])

    def draw(label):
        sb.show(label)
        text = sb.r_text()
        r_line.object = f"<p class='us-muted'>{esc(text)}</p>" if text else ""

    def show(event):
        label, band = event.new, sb.options.get(event.new)
        if band is None or envelope_cached(sb.raw, band, sb.SMOOTH_S):
            apply_in_doc(doc, lambda: draw(label))
            return
        # [A] computed in a worker (seconds for hundreds of channels), then drawn on the page's loop
        apply_in_doc(doc, lambda: setattr(sb.main.title, "text", f"Computing the {label} ..."))

        def done(_):
            if choice.value == label:  # not overtaken by a later choice
                apply_in_doc(doc, lambda: draw(label))

        def failed(msg):
            apply_in_doc(doc, lambda: setattr(sb.main.title, "text", f"The {label} could not be computed: {msg}"))

        col.job = Job("envelope", lambda stop: shown_envelope(sb.raw, sb.sfreq, band, sb.SMOOTH_S),
                      on_done=done, on_error=failed).start()

    choice.param.watch(show, "value")
    legend = ""
    if len(set(sb.colors)) > 1:
        known = known_roles(decoder.ws.recording.signals)
        keys = "".join(f'<span class="us-role"><span class="us-role-box" style="border-color:{esc(c)}"></span>'
                       f"{esc(label)}</span>" for label, c in known["legend"].values())
        legend = f"<p class='us-muted'>Traces coloured by the channels' known roles: {keys}</p>"
    pane = pn.pane.Bokeh(sb.layout, sizing_mode="stretch_width")
    col[:] = [pn.Row(choice, pn.pane.HTML(legend, stylesheets=[CSS], sizing_mode="stretch_width")), r_line, pane]
    col.browser, col.choice, col.r_line = sb, choice, r_line
    return col


def fraction_table(ds):
    """Per-layer class fractions of a classified probe result (DataArray layer x class) or None."""
    if ds is None or "unit_class_all" not in ds:
        return None
    from core.probing.stats import class_fractions

    return class_fractions(ds)


def fraction_plot(frac, title: str, *, legend: bool = True):
    """Stacked class fractions per layer. ``legend=False`` leaves the legend to the page (the
    Overview draws one for its two plots, :func:`class_legend`)."""
    rows = [(str(l), str(c), float(frac.sel(layer=l, **{"class": c})))
            for l in frac["layer"].values for c in frac["class"].values]
    bars = hv.Bars(rows, ["layer", "class"], "fraction").opts(
        stacked=True, cmap=CLASS_COLORS, color="class", height=380, responsive=True, ylim=(0, 1),
        # legend on top, two by two: on the right it squeezed the five bars until their names
        # overlapped (1024 px); in one row it ran past a half-width plot
        title=title, tools=["hover"], legend_position="top", legend_cols=2, xrotation=35, show_legend=legend)
    return bars


def class_legend(classes) -> str:
    """HTML swatches of the unit classes, one line for the Overview's two class plots: Bokeh's
    legend above a plot was drawn taller than the room it was given and covered the tops of the
    bars (or, with no margin, the title)."""
    keys = "".join(f'<span class="us-role"><span class="us-role-box" style="border-color:{CLASS_COLORS[c]};'
                   f'background:{CLASS_COLORS[c]}"></span>{esc(c)}</span>' for c in classes if c in CLASS_COLORS)
    return f"<p class='us-muted'>Unit classes: {keys}</p>"


def chance_aside(dec) -> str:
    """" (at or below chance, ...)" after the test metric of a decoder no better than chance, or
    one whose metric rests on few trials."""
    note = dec.metric_notes()
    return f" ({note})" if note else ""


def shift_caution(dec) -> str:
    """A caution paragraph when the test block's mean target drifted from the training block's
    (:func:`core.cautions.shift_note`), else ""."""
    note = shift_note(dec.target_shift())
    return f"<p class='us-muted us-caution'>Caution: {esc(note)}.</p>" if note else ""


def provenance(ws) -> str:
    """Where the decoder's weights come from, as "; ..." for the header (empty when unknown)."""
    from core.workspace import weights_provenance

    text = weights_provenance(ws.metrics, ws.history)
    return f"; {text}" if text else ""


PRUNE_WATCHED = ["pruned", "metric", "finetuned", "measured_version"]  # what pruned_note reads of a PruneState


def pruned_note(session: Session, *, short: bool = False) -> str:
    """What the session's pruning does to the test metric, in words ("" with nothing pruned):
    the sidebar and the Overview show the unpruned decoder's figures, and a class saw 0.970
    there beside the Prune view's 0.911 with no word of which was which. ``short``: the
    sidebar's line."""
    ps = session.part("prune")
    dec = session.decoder
    if ps is None or dec is None:
        return ""
    n = sum(len(v) for v in (ps.pruned or {}).values())
    if not n and not ps.finetuned:
        return ""
    what = (f"{n} unit{'' if n == 1 else 's'} pruned" if n else "nothing pruned") + (
        ", fine-tuned" if ps.finetuned else "")
    metric = "being measured" if not np.isfinite(ps.metric) or ps.measuring else f"{ps.metric:.3f}"
    base = dec.predictions()["metric"]
    if short:
        return f"{what}: test {dec.metric_name()} {metric} (unpruned {base:.3f})"
    return (f"These figures are the unpruned decoder's (test {dec.metric_name()} {base:.3f}). In the Prune view "
            f"{what}: {metric}.")


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
        self._pruned = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")
        self._occlusion = OcclusionPanel(session=s)
        self._doc = None  # the served document (set in __panel__)
        # [A] rendered on the page's event loop: a probe or training worker sets these, and Panel
        # objects built in that thread raced Panel's per-document state (a probe failed with
        # AttributeError in config.theme in a browser-test run)
        s.param.watch(lambda *_: apply_in_doc(self._doc, self._render_decoder), "decoder_version")
        s.param.watch(lambda *_: apply_in_doc(self._doc, self._render_fractions), ["probe", "control", "probe_state"])
        from .prune import prune_state_of  # (the Prune view's state: made here first, as the views are built)

        prune_state_of(s).param.watch(lambda *_: apply_in_doc(self._doc, self._render_pruned), PRUNE_WATCHED)
        self._render_decoder()

    def _render_pruned(self, *_):
        note = pruned_note(self.session)
        self._pruned.object = f"<div class='us-alert us-alert-warning'>{esc(note)}</div>" if note else ""

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
            f"<b>{pred['metric']:.3f}</b>{esc(chance_aside(dec))}{esc(provenance(dec.ws))}</p>"
            + shift_caution(dec))
        self._pred[:] = [pn.pane.HoloViews(prediction_plot(pred), sizing_mode="stretch_width")]
        self._signals[:] = [signal_browser(dec, doc=self._doc)]
        self._render_pruned()
        self._render_fractions()

    def _render_fractions(self, *_):
        s = self.session
        trained, control = fraction_table(s.probe), fraction_table(s.control)
        if trained is None:
            msg = ("The probe is running; class fractions appear when its first passes are done."
                   if s.probe_state == "running" else
                   "Unit classes appear with the decoder (and its probe, where it has one)."
                   if s.decoder is None else  # (a run folder's probe comes with its decoder)
                   "Probe not run yet: start it in the Units view to classify every unit.")
            self._fractions[:] = [placeholder(msg)]
            return
        panes = [pn.pane.HoloViews(fraction_plot(trained, "Trained decoder", legend=False),
                                   sizing_mode="stretch_width")]
        if control is not None:
            panes.append(pn.pane.HoloViews(fraction_plot(control, "Untrained control\n(same architecture)",
                                                         legend=False), sizing_mode="stretch_width"))
        else:  # [A] words, not empty axes (which also stretched the linked y axis below 0)
            panes.append(placeholder(
                "Untrained control: not probed yet. Tick 'with untrained control' in the Units view and run the "
                "probe (for a run folder: unitscope probe RUN_DIR --untrained writes probe_untrained.nc beside it)."))
        self._fractions[:] = [pn.pane.HTML(class_legend([str(c) for c in trained["class"].values]), stylesheets=[CSS],
                                           sizing_mode="stretch_width"),
                              pn.Row(*panes, sizing_mode="stretch_width")]

    def __panel__(self):
        if self._doc is None and pn.state.curdoc is not None:
            self._doc = pn.state.curdoc
        return pn.Column(self._header, self._pruned, self._pred, pn.pane.Markdown("### Unit classes per layer"),
                         self._fractions,
                         pn.pane.Markdown("### Which inputs does the decoder need? (band occlusion)"),
                         self._occlusion, pn.pane.Markdown("### Signal browser"), self._signals,
                         sizing_mode="stretch_width")
