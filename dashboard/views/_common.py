"""Small pieces shared by the views: escaped text, alerts, placeholders."""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import panel as pn
import param

from ..state import Session, apply_in_doc

__all__ = ["esc", "CSS", "AlertsView", "UnitPicker", "placeholder", "placeholder_html", "kv_table", "select_on_double_tap",
           "apply_in_doc", "known_roles", "ROLE_COLORS", "choice", "number_box"]

CSS = (Path(__file__).resolve().parents[2] / "assets" / "unitscope.css").read_text()
# the keyboard's focus, visible on a projector (Panel's theme removes the outline): every widget's
# default stylesheet (dashboard.app._focus_outlines); the same rule closes unitscope.css
FOCUS_CSS = ":focus-visible { outline: 3px solid #ff7f0e !important; outline-offset: 1px; }"

# known channel roles (the demo's ground truth), drawn over the maps; away from the class colours
ROLE_COLORS = {"high_gamma": "#2ca02c", "beta": "#ff7f0e", "low_freq": "#8c564b"}
_MORE_ROLE_COLORS = ("#e377c2", "#bcbd22", "#17becf", "#7f7f7f")


def known_roles(signals) -> dict | None:
    """The channels' known roles, when the recording stores them (the demo's ground truth).

    Uses the ``role``, ``band_lo`` and ``band_hi`` channel coordinates
    (:func:`core.probing.validity.role_cases`); roles without a band (``noise``) are not
    drawn. None for recordings without roles.

    Returns
    -------
    dict | None
        ``roles`` (the role of every channel, "" where none), ``legend`` (role -> (label,
        colour)), ``bands`` (role -> (lo, hi) Hz), in channel order, and ``boxes``: one
        rectangle per run of adjacent rows of a role over its band on a (channel, freq) map
        (``left``, ``right``, ``bottom``, ``top``, ``color``).
    """
    from core.probing.validity import role_cases

    cases = role_cases(signals)
    if not cases:
        return None
    n_ch = signals.sizes["channel"]
    roles = np.asarray(signals["role"].values).astype(str)
    extra = iter(_MORE_ROLE_COLORS * (1 + len(cases) // len(_MORE_ROLE_COLORS)))
    legend, boxes = {}, dict(left=[], right=[], bottom=[], top=[], color=[], role=[])
    bands = {role: band for role, (_, band) in cases.items()}
    for role, (idx, (lo, hi)) in cases.items():
        color = ROLE_COLORS.get(role) or next(extra)
        legend[role] = (f"{role.replace('_', ' ')} {lo:g}-{hi:g} Hz", color)
        runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)  # adjacent rows: one box
        for r in runs:
            boxes["left"].append(lo), boxes["right"].append(hi)
            boxes["bottom"].append(float(r[0]) - 0.5), boxes["top"].append(float(r[-1]) + 0.5)
            boxes["color"].append(color), boxes["role"].append(role)
    shown = np.array([r if r in legend else "" for r in roles]) if len(roles) == n_ch else np.full(n_ch, "")
    return {"roles": shown, "legend": legend, "bands": bands, "boxes": boxes}


def esc(text) -> str:
    """HTML-escape text from files (channel names, annotations, paths, messages)."""
    return html.escape(str(text), quote=True)


# JS (doubletap event): select the scatter point drawn on top within its radius of the cursor
_DOUBLE_TAP_JS = """
const d = src.data, xr = fig.x_range, yr = fig.y_range;
const w = fig.inner_width, h = fig.inner_height;
const xs = d[xcol], ys = d[ycol];
if (!xs || !xs.length || !(w > 0) || !(h > 0)) return;
const kx = w / (xr.end - xr.start), ky = h / (yr.end - yr.start);
let best = -1;
for (let i = 0; i < xs.length; i++) {
  const dx = (xs[i] - cb_obj.x) * kx, dy = (ys[i] - cb_obj.y) * ky;
  if (dx * dx + dy * dy <= r2) best = i;
}
if (best >= 0) src.selected.indices = [best];
"""


def select_on_double_tap(fig, src, *, x: str, y: str, size: float) -> None:
    """Make a double tap select the scatter point under the cursor.

    Bokeh reads a second tap within 300 ms as a double tap wherever it lands, and the
    TapTool ignores double taps: clicking one point and then another quickly dropped the
    second click. With this, the double tap selects the point drawn on top within its
    radius (``size`` is the marker diameter in screen pixels).
    """
    from bokeh.models import CustomJS

    code = CustomJS(args=dict(src=src, fig=fig, xcol=x, ycol=y, r2=(size / 2 + 1) ** 2), code=_DOUBLE_TAP_JS)
    fig.js_on_event("doubletap", code)


def placeholder_html(text: str) -> str:
    """The HTML of a :func:`placeholder` (text escaped), to set on one already shown."""
    return f'<div class="us-placeholder">{esc(text)}</div>'


def placeholder(text: str, **kw) -> pn.pane.HTML:
    return pn.pane.HTML(placeholder_html(text), stylesheets=[CSS], sizing_mode="stretch_width", **kw)


def controls(*objs, **kw) -> pn.FlexBox:
    """A row of widgets and buttons that wraps onto a second line where the page is narrow (a
    projector at 1024 pixels, a zoomed browser): a plain Row cut its last buttons off, out of reach.
    Items of fixed width only, and no nested layouts (see :func:`lowered`): a Column in it, drawn
    while its tab was hidden, took a line of its own at any width."""
    return pn.FlexBox(*objs, flex_wrap="wrap", align_items="flex-start", sizing_mode="stretch_width", **kw)


# The chosen button of a choice (Deep4 | Shallow, png | svg): Panel's Fast design draws it in the
# accent colour with dark text (contrast 2.9:1, hard to read on a projector), and a plain
# RadioButtonGroup's chosen button in a grey one shade off the others (measured: 234 vs 229).
# (the design's own rule, ``:host(.outline) .bk-btn.bk-btn-primary.bk-active``, outranks a plainer one)
_CHOICE_CSS = (":host(.outline) .bk-btn-group .bk-btn.bk-btn-primary.bk-active,"
               ":host(.outline) .bk-btn-group .bk-btn.bk-btn-primary.bk-active:hover { color: #ffffff; }")


def choice(widget):
    """``widget`` (a RadioButtonGroup) with its chosen button filled in the accent colour and
    lettered in white, the others outlined: which one is chosen reads from the back of a room."""
    widget.param.update(button_type="primary", button_style="outline",
                        stylesheets=[*widget.stylesheets, _CHOICE_CSS])
    return widget


def lowered(*widgets, top: int = 18) -> tuple:
    """``widgets`` (buttons, a checkbox) moved down by ``top`` pixels to line up with the inputs
    beside them in a :func:`controls` row, whose inputs carry their label above them."""
    for w in widgets:
        w.margin = (5 + top, 10, 5, 10)
    return widgets


class Shown:
    """Parts of a view shown or hidden by rules on the session's state: ``rules`` are
    ``(part, rule)`` pairs, ``rule()`` true where the part is to be shown. Set on every change of
    the session's ``params``, and sent to the browser again (hidden and shown, or the reverse)
    when the page has drawn again what changed while it loaded (``Session.page_redrawn``):
    setting the same value again sends nothing. Watchers are made once; :meth:`set` takes the
    parts of each ``__panel__`` call."""

    def __init__(self, session, params=()):
        self.rules = []
        if params:  # (none: the view sets the parts itself; they are only sent again)
            session.param.watch(self.sync, list(params))
        session.param.watch(self.resend, "page_redrawn")

    def set(self, *rules) -> None:
        self.rules = list(rules)
        self.sync()

    def sync(self, *_) -> None:
        for part, rule in self.rules:
            part.visible = bool(rule())

    def resend(self, *_) -> None:
        for part, rule in self.rules:
            shown = bool(rule())
            part.visible = not shown
            part.visible = shown


def kv_table(rows) -> str:
    """An HTML table of (key, value) rows; both escaped."""
    body = "".join(f"<tr><td><b>{esc(k)}</b></td><td>{esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="us-kv">{body}</table>'


def number_box(obj: param.Parameterized, name: str, session: Session, *, label: str, **params):
    """An IntInput (for a ``param.Integer``) or FloatInput bound to ``obj.name`` both ways, which
    answers what the parameter cannot take in words: a box emptied (or not a number) when the
    parameter needs a value, or a value outside its bounds, gives an alert naming the box and
    what it takes, and the box shows the value kept. A parameter that allows None takes an
    emptied box (or NaN, which the browser sends for text that is no number) as None [A].

    ``from_param`` boxes had sent None into a parameter that refuses it: Panel logged a
    traceback ("Callback failed for object named 'Max epochs'") and the box snapped back
    without a word."""
    p = obj.param[name]
    integer = isinstance(p, param.Integer)
    lo, hi = p.bounds or (None, None)
    kind = pn.widgets.IntInput if integer else pn.widgets.FloatInput
    if p.doc:  # (the parameter's doc as the box's tooltip, as from_param gives it)
        params.setdefault("description", p.doc)
    box = kind(label=label, value=getattr(obj, name), **{"start": lo, "end": hi, **params})
    state = {"syncing": False}

    def show(value):
        state["syncing"] = True  # the box follows the parameter: not written back
        try:
            box.value = value
        finally:
            state["syncing"] = False

    def takes() -> str:
        what = "a whole number" if integer else "a number"
        if lo is not None and hi is not None:
            return f"{what} from {lo:g} to {hi:g}"
        if lo is not None:
            return f"{what} of at least {lo:g}"
        return f"{what} of at most {hi:g}" if hi is not None else what

    def chosen(event):
        if state["syncing"]:
            return
        value = event.new
        if value is not None and not integer and value != value:
            value = None  # (NaN: text that is no number)
        kept = getattr(obj, name)
        said = "empty" if kept is None else f"{kept:g}"
        if value is None and not p.allow_None:
            session.alert(f"{label} needs {takes()}; it stays at {said}.", "warning")
            show(kept)
            return
        try:
            setattr(obj, name, value)
        except ValueError:
            session.alert(f"{label}: {value:g} is not allowed; it takes {takes()} and stays at {said}.", "warning")
            show(kept)
            return
        if event.new is not value:
            show(value)  # (NaN shown as the empty box of None)

    box.param.watch(chosen, "value")
    obj.param.watch(lambda e: show(e.new), name)
    return box


class UnitPicker:
    """A Layer select and a Unit input bound both ways to the session's ``layer`` and ``unit``
    (the selection every view shares).

    Parameters
    ----------
    session : Session
    hidden_only : bool
        Offer the hidden layers only (not ``conv_classifier``, the output): while the output is
        selected elsewhere, the Select says so (value ""). Otherwise every layer is offered.
    on_sync : callable, optional
        Called after the widgets follow a change of the session's selection.
    """

    def __init__(self, session: Session, *, hidden_only: bool = False, layer_width: int = 170,
                 unit_width: int = 100, on_sync=None):
        self.session, self.hidden_only, self._on_sync = session, hidden_only, on_sync
        self.layer = pn.widgets.Select(label="Layer", options=[], width=layer_width)
        self.unit = pn.widgets.IntInput(label="Unit", value=session.unit, width=unit_width, placeholder="unit index")
        self._syncing = False
        self.layer.param.watch(self._layer_chosen, "value")
        self.unit.param.watch(self._unit_chosen, "value")
        session.param.watch(self.sync, ["layer", "unit", "layer_names", "decoder_version"])
        self.sync()

    def layers(self) -> list[str]:
        names = list(self.session.layer_names)
        return [n for n in names if n != "conv_classifier"] if self.hidden_only else names

    def _layer_chosen(self, event):
        if not self._syncing and event.new:
            self.session.layer = event.new

    def _unit_chosen(self, event):
        if self._syncing or event.new is None:
            return
        n = self.session.n_units()
        if n and not 0 <= int(event.new) < n:  # said, not clamped in the browser without a word [A]
            self.session.alert(f"Unit {int(event.new)} is not a unit of {self.session.layer}: it has units 0 to "
                               f"{n - 1}; unit {self.session.unit} stays selected.", "warning")
            self._syncing = True
            try:
                self.unit.value = self.session.unit
            finally:
                self._syncing = False
            return
        self.session.unit = int(event.new)

    def sync(self, *events):
        s = self.session
        self._syncing = True  # programmatic widget updates must not write back
        try:
            names = self.layers()
            if s.layer in names or not names:
                self.layer.param.update(options=names, value=s.layer if s.layer in names else None)
            elif self.hidden_only and s.layer:  # the output, chosen in another view: say so, not a
                # layer that is not selected (a Select shows its first option for a value it lacks)
                self.layer.param.update(options={f"{s.layer} (the output)": "", **{n: n for n in names}}, value="")
            else:
                self.layer.param.update(options=names, value=names[0])
            self.unit.value = s.unit  # (no end bound: a browser clamped a typed 999 without a word)
        finally:
            self._syncing = False
        if events and self._on_sync is not None:  # (not on construction: the view is not built yet)
            self._on_sync(*events)


class AlertsView(pn.viewable.Viewer):
    """The session's alerts as dismissable boxes; text is always escaped."""

    session = param.ClassSelector(class_=Session)

    def __init__(self, **params):
        super().__init__(**params)
        self._col = pn.Column(sizing_mode="stretch_width", margin=0)
        # [A] drawn on the page's loop: a worker's alert built the boxes on the worker, where
        # Panel reads the current document some 27 times per alert
        self.session.param.watch(lambda *_: self.session._in_doc(self._render), "alerts")
        self._render()

    def _render(self, *_):
        items = []
        for i, (level, text) in enumerate(self.session.alerts):
            box = pn.pane.HTML(f'<div class="us-alert us-alert-{esc(level)}" role="alert">{esc(text)}</div>',
                               stylesheets=[CSS], sizing_mode="stretch_width", margin=(0, 5))
            close = pn.widgets.Button(label="✕", width=36, color="light", margin=(4, 5),
                                      description="Dismiss this message")
            close.on_click(lambda e, i=i: self.session.dismiss(i))
            items.append(pn.Row(box, close, sizing_mode="stretch_width", margin=0))
        if len(items) > 1:  # (messages of earlier steps stacked above the tabs: one click clears them)
            clear = pn.widgets.Button(label=f"Dismiss all {len(items)} messages", color="light", margin=(0, 5),
                                      css_classes=["us-dismiss-all"])
            clear.on_click(lambda e: self.session.dismiss())
            items.append(clear)
        self._col[:] = items
        self._col.visible = bool(items)

    def __panel__(self):
        return self._col
