"""Assembly: one page with navigation (tabs), one :class:`~dashboard.state.Session` per browser tab.

``build_app()`` returns the servable template. The URL carries the view, layer and unit
(``?view=units&layer=conv_3&unit=7``), so a link opens the same view. Worker threads of a
session stop when its browser tab closes.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import holoviews as hv
import panel as pn

from .heap import heap_keeper
from .state import Session, apply_in_doc
from .views import DataView, ExportView, KernelsView, OverviewView, PruneView, UnitsView
from .views.overview import PRUNE_WATCHED, pruned_note
from .views.prune import prune_state_of
from .views._common import CSS, FOCUS_CSS, AlertsView, Shown, esc
from .views.encoding import EncodingView
from .views.lesson import LessonView

__all__ = ["build_app", "configure_process", "VIEW_CLASSES"]

logger = logging.getLogger(__name__)
ASSETS = Path(__file__).resolve().parent.parent / "assets"

# view key -> Viewer class, in tab order (a Prune or Kernels view is one more entry here)
VIEW_CLASSES = {"data": DataView, "overview": OverviewView, "units": UnitsView, "prune": PruneView,
                "kernels": KernelsView, "encoding": EncodingView, "export": ExportView}
TABS = tuple(VIEW_CLASSES)  # tab order; also the URL's ?view= values

_CONFIGURED = False


def _log_long_gc_pauses(threshold_s: float = 0.25) -> None:
    """Log garbage collections that pause the server for more than ``threshold_s`` seconds."""
    import gc

    started: dict[int, float] = {}

    def watch(phase: str, info: dict) -> None:
        gen = info.get("generation", -1)
        if phase == "start":
            started[gen] = time.perf_counter()
            return
        dt = time.perf_counter() - started.pop(gen, time.perf_counter())
        if dt > threshold_s:
            logger.warning("garbage collection (generation %d) paused the server for %.0f ms", gen, dt * 1000)

    gc.callbacks.append(watch)


class UnitScopeTemplate(pn.template.FastListTemplate):
    """Panel's FastListTemplate with UnitScope's page preamble (``dashboard/templates/unitscope.html``):
    a script that keeps FilePond's animation loop off while no file dropper is shown."""

    _template = Path(__file__).resolve().parent / "templates" / "unitscope.html"


def _log_levels(spec: str) -> None:
    """Apply ``UNITSCOPE_LOG``: a level for UnitScope's loggers (``DEBUG``) and/or
    ``logger=LEVEL`` pairs, comma-separated (``dashboard.prune_state=DEBUG,core=INFO``).
    A malformed entry is reported in the log and skipped; the server starts anyway."""
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, level = item.rpartition("=")
        names = [name] if name else ["core", "dashboard"]
        if not isinstance(logging.getLevelName(level.upper()), int):
            logger.warning("UNITSCOPE_LOG: %r is not a logging level (DEBUG, INFO, WARNING, ERROR); ignored", level)
            continue
        for n in names:
            logging.getLogger(n).setLevel(level.upper())


def _no_font_download() -> None:
    """[A] Pages use the system's sans-serif font instead of fetching Open Sans from
    fonts.googleapis.com (Panel's Fast design asks for it). UnitScope must work offline (a
    lab or classroom network without internet, CI): the link is a render-blocking
    stylesheet, so there the page waits until the lookup fails, however long the network's
    DNS takes to say so."""
    from panel.theme.fast import Fast

    Fast._resources = {**Fast._resources, "font": {}}


def _no_busy_tracking() -> None:
    """[A] Events are handled without Panel's busy counter.

    Panel counts every event of every page of the process in one busy counter (``state.busy``,
    for a header spinner UnitScope does not show) and toggles its parameters' read-only flags
    around each update, which is not thread-safe: with ``--num-threads``, two pages' events at
    once raised "TypeError: Read-only parameter 'busy' cannot be modified" before the event was
    handled, so a click was lost (seen in a browser test: Train pressed in one tab while another
    trained; the server log held the traceback). Without the counter nothing is shared between
    pages' events here.
    """
    from panel.io.state import state

    for name in ("_add_busy_event", "_remove_busy_event"):
        if hasattr(state, name):  # Panel 1.x; a later Panel without them needs nothing
            setattr(state, name, lambda event_id: None)


class _PerThreadStack:
    """A stack of which each thread sees only its own entries (see :func:`_curdoc_per_thread`)."""

    def __init__(self, items=()):
        self._local = threading.local()
        self._items.extend(items)  # (the caller's: it pushed them and pops them)

    @property
    def _items(self) -> list:
        items = getattr(self._local, "items", None)
        if items is None:
            items = self._local.items = []
        return items

    def append(self, item) -> None:
        self._items.append(item)

    def pop(self, *index):
        return self._items.pop(*index)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i):
        return self._items[i]

    def __iter__(self):
        return iter(list(self._items))


def _curdoc_per_thread() -> None:
    """[A] Bokeh's "current document" is per thread.

    Bokeh keeps the documents it runs callbacks for (``curdoc()``) on one stack for the whole
    process (``bokeh.io.doc._PATCHED_CURDOCS``): the server's loop pushes a page's document
    around each of its callbacks, and a worker thread pushes one each time it schedules a
    change (``add_next_tick_callback``, as :func:`dashboard.state.apply_in_doc` and Panel do).
    When the two overlapped, the worker's pop took the loop's entry: the rest of the loop's
    callback for page B ran with page A as the current document (Panel then let it change B's
    models as if under A's lock: "_pending_writes should be non-None" in the server log), and
    a worker could see another page's document as current. Each thread now has a stack of its
    own: the loop sees the document of the callback it runs, and a worker none but its own.
    Entries pushed before (by the thread that calls this, which pops them) stay its own."""
    import bokeh.io.doc as bokeh_doc

    stack = bokeh_doc._PATCHED_CURDOCS
    if isinstance(stack, _PerThreadStack):
        return
    bokeh_doc._PATCHED_CURDOCS = _PerThreadStack(list(stack))


def _one_look_at_the_document() -> None:
    """[A] Panel decides whether a change may go to a page's Bokeh models at once from one
    reading of the current document, not two.

    A session's workers (training, probe, kernels) change its parameters, and the views'
    watchers then change panes from the worker thread. Panel's ``state._unblocked(doc)``
    says whether that may be done at once (on the document's own thread, under its lock) or
    must wait for the page's next tick, and reads ``state.curdoc`` twice: it is Bokeh's one
    process-wide "current document", set while the server's loop runs a callback of that
    page. A worker that saw it set on the first reading and unset on the second (the loop
    left the callback in between) took the unset one for "no document thread" and changed
    the models without the lock: Bokeh raised "_pending_writes should be non-None when we
    have a document lock" in the worker, so a training stopped from the page ended without
    its decoder and without a word (a CI run of the browser tests, on a loaded machine).
    Here the document is read once, and the rest of the test is Panel's. A Panel without
    ``_unblocked`` is left as it is. (With :func:`_curdoc_per_thread` a worker sees no page's
    document as current; this stays as a second guard.)"""
    from panel.io.state import _state

    if not hasattr(_state, "_unblocked") or getattr(_state._unblocked, "_unitscope", False):
        return

    def _unblocked(self, doc) -> bool:
        curdoc = self.curdoc
        if self._is_pyodide:
            thread_id = self._current_thread
        else:
            thread_id = self._thread_id_.get(curdoc) if curdoc else None
        return bool(doc is curdoc and thread_id in (self._current_thread, None) and
                    (not (doc and doc.session_context and getattr(doc.session_context, "session", None))
                     or self._connected.get(doc)))

    _unblocked._unitscope = True
    _state._unblocked = _unblocked


def configure_process() -> int:
    """Once per process: torch threads, Panel/HoloViews extensions. Returns torch's thread count.

    Torch gets ``UNITSCOPE_TORCH_THREADS`` threads, default all cores but one [A], so the
    server keeps a core for other browser tabs while a session trains or probes.
    """
    global _CONFIGURED
    import torch

    if not _CONFIGURED:
        if not logging.getLogger().handlers:  # tracebacks go to the server log, never to the page
            logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        _log_levels(os.environ.get("UNITSCOPE_LOG", ""))
        n = int(os.environ.get("UNITSCOPE_TORCH_THREADS", max(1, (os.cpu_count() or 2) - 1)))
        torch.set_num_threads(max(1, n))
        _log_long_gc_pauses()
        _no_font_download()
        _no_busy_tracking()
        _curdoc_per_thread()
        _one_look_at_the_document()
        _focus_outlines()
        _quiet_closed_pages()
        pn.extension("filedropper", notifications=False, sizing_mode="stretch_width", raw_css=[CSS])
        hv.extension("bokeh", logo=False)
        heap_keeper().startup()  # see dashboard.heap
        _CONFIGURED = True
    return torch.get_num_threads()


CLOSED_PAGE_ERRORS = ("WebSocketClosedError", "StreamClosedError")


def _quiet_closed_pages() -> None:
    """A page closed while the server was sending it messages (a reload, a link followed, a
    tab closed during a fresh server's first page): Panel's send task ends with tornado's
    ``WebSocketClosedError``, which asyncio logged as "Task exception was never retrieved"
    with two tracebacks in the server's terminal (3 of 7 fresh starts of ``make demo`` with a
    browser check, old code alike). [A] Such errors of the running loop are one debug line;
    every other one goes to the handler before. Without a running loop (scripts, tests that
    build the app) nothing is changed."""
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    previous = loop.get_exception_handler()

    def handler(loop, context):
        exc = context.get("exception")
        if exc is not None and type(exc).__name__ in CLOSED_PAGE_ERRORS:
            logger.debug("a page closed while messages were sent to it (%s)", type(exc).__name__)
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def _focus_outlines() -> None:
    """A visible outline on the control that has the keyboard's focus (Tab), in every widget.

    Panel's theme sets ``outline: none``, and each widget draws in its own shadow root, which
    the page's CSS does not always reach (in a browser-test run, no widget's shadow root held
    UnitScope's CSS): the rule goes into every widget's default stylesheets."""
    from panel.widgets.base import Widget

    default = list(Widget.param.stylesheets.default or [])
    if FOCUS_CSS not in default:
        Widget.param.stylesheets.default = default + [FOCUS_CSS]


def _sidebar(session: Session):
    status = pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=[CSS])

    def render(*_):
        s = session
        parts = [f"<p class='us-wrap'><b>Decoder</b><br>{esc(s.status or 'none yet')}</p>"]
        pruned = pruned_note(s, short=True)
        if pruned:  # the status's metric is the unpruned decoder's
            parts.append(f"<p class='us-wrap'><b>Pruned</b><br>{esc(pruned)}</p>")
        if s.busy == "training":
            parts.append(f"<p>Training: {s.train_progress:.0%}</p>")
        elif s.busy:
            parts.append(f"<p>{esc(s.busy.capitalize())} ...</p>")
        if s.probe_state == "running":
            parts.append(f"<p>Probe: {s.probe_progress:.0%}</p>")
        elif s.probe is not None:
            parts.append(f"<p>Probe: {esc(s.probe_state)}{' (' + esc(s.probe_source) + ')' if s.probe_source else ''}</p>")
        elif s.decoder is not None:  # (without one, the probe comes with it: the demo's does)
            parts.append("<p>Probe: not run yet</p>")
        parts.append(f"<p class='us-muted us-wrap'>Data root: {esc(s.root)}</p>")
        status.object = "".join(parts)

    session.param.watch(render, ["status", "busy", "train_progress", "probe_state", "probe_progress", "probe"])
    doc = pn.state.curdoc  # a re-measurement ends in a worker: drawn on the page's loop
    prune_state_of(session).param.watch(lambda *_: apply_in_doc(doc, render), PRUNE_WATCHED)
    render()
    demo_progress = pn.indicators.Progress(value=0, max=1000, sizing_mode="stretch_width", height=16,
                                           bar_color="warning")
    Shown(session, ["busy"]).set((demo_progress, lambda: session.busy == "loading"))
    session.param.watch(lambda e: setattr(demo_progress, "value", int(e.new * 1000)), "train_progress")
    guide = pn.pane.HTML(
        "<p class='us-muted'><b>Data &amp; model</b>: choose a recording and train.<br>"
        "<b>Overview</b>: decoding, signals and unit classes.<br>"
        "<b>Units</b>: click a unit to see what it is sensitive to.<br>"
        "<b>Prune</b>: silence units and watch decoding change.<br>"
        "<b>Kernels</b>: movement-locked kernels, refit after every prune.<br>"
        "<b>Encoding</b>: which feature drives which channel when (DRE).<br>"
        "<b>Export</b>: results, plots, checkpoint and an HTML report.</p>", stylesheets=[CSS])
    return [status, demo_progress, LessonView(session=session), guide]


def _mend_address(session) -> None:
    """Panel cannot split an address holding a second '?' (``?view=units?layer=conv_4``): the
    page stayed blank, with a traceback in the server log. Such an address is read as the '&'
    it stands for (the request this page's document was made from is changed), and said."""
    request = getattr(pn.state.curdoc.session_context.request, "_request", None)
    uri = getattr(request, "uri", None)
    if not isinstance(uri, str) or uri.count("?") < 2:
        return
    head, _, query = uri.partition("?")
    request.uri = f"{head}?{query.replace('?', '&')}"
    session.alert(f"The address held more than one '?' ({uri!r}); it was read as {request.uri!r}. "
                  "Settings in an address are joined with '&'.", "info")


# [A] where the parts that are no view of their own live, for an address naming them
_NOT_VIEWS = {"occlusion": "band occlusion is part of the Overview", "lesson": "the lesson is in the sidebar",
              "probe": "the probe is run in the Units view", "deconv": "the kernels (DUNL) are the Kernels view",
              "kernel": "the kernels (DUNL) are the Kernels view"}


def view_arg_note(given: str) -> str:
    """What to say of an address's ``?view=`` value that names no view ("" for a view): the
    page opened the Overview without a word (``?view=occlusion``)."""
    if given in TABS:
        return ""
    from core._validation import suggest

    where = _NOT_VIEWS.get(given.strip().lower())
    return (f"The address names the view {given!r}, which UnitScope does not have"
            + (f" ({where})" if where else "") + f"; the views are {', '.join(TABS)}."
            + ("" if where else suggest(given, list(TABS))) + " The Overview is shown.")


def _check_view_arg(session) -> None:
    values = (pn.state.session_args or {}).get("view") or []
    given = values[0].decode("utf-8", "replace") if values and isinstance(values[0], bytes) else ""
    note = view_arg_note(given) if given else ""
    if note:
        session.alert(note, "warning")


def _selection_args() -> dict:
    """The address's ``layer`` and ``unit`` as given (text), for those it names."""
    out = {}
    for key in ("layer", "unit"):
        values = (pn.state.session_args or {}).get(key) or []
        if values:
            v = values[0]
            out[key] = (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)).strip()
    return out


def remote_refusal(request, env=None) -> str:
    """Why a page asked for from another machine is refused, or "" (asked for from this one, or
    ``UNITSCOPE_ALLOW_REMOTE=1``). The server serves the machine it runs on unless told
    otherwise: ``panel serve launch.py`` without ``--address`` listens on every interface, so
    the app itself refuses pages asked for from elsewhere [A]. ``request`` is Bokeh's request
    of the page (its ``remote_ip``)."""
    import ipaddress

    env = os.environ if env is None else env
    ip = str(getattr(request, "remote_ip", "") or "")
    if not ip or env.get("UNITSCOPE_ALLOW_REMOTE", "").strip().lower() in ("1", "true", "yes"):
        return ""
    try:
        address = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return ""  # (not an IP address: a proxy's own name; nothing to tell)
    mapped = getattr(address, "ipv4_mapped", None)
    if (mapped or address).is_loopback:
        return ""
    return (f"This UnitScope server serves the machine it runs on only; this page was asked for from {ip}. "
            "To serve a room on purpose, start it with UNITSCOPE_ALLOW_REMOTE=1 and panel serve's --address "
            "and --allow-websocket-origin (see the README).")


def build_app(session: Session | None = None, *, load_demo: bool = True):
    """Build the app for one browser session.

    Parameters
    ----------
    session : Session, optional
        A session to show (tests pass their own); a new one by default.
    load_demo : bool
        Start with the demo decoder (loaded, or trained on first start, in a worker thread).

    Returns
    -------
    template : panel.template.FastListTemplate
        (or, for a page asked for from another machine without ``UNITSCOPE_ALLOW_REMOTE``, a
        page that says so: :func:`remote_refusal`)
    """
    context = getattr(pn.state.curdoc, "session_context", None) if pn.state.curdoc is not None else None
    refusal = remote_refusal(getattr(context, "request", None)) if context is not None else ""
    if refusal:
        logger.warning("%s", refusal)
        return pn.pane.HTML(f"<p role='alert'>{esc(refusal)}</p>", stylesheets=[CSS])
    configure_process()
    if load_demo:  # start loading the shared demo decoder before building the views [A]
        from .decoder import demo_provider

        demo_provider("deep4").start()
    session = session or Session()
    views = {key: cls(session=session) for key, cls in VIEW_CLASSES.items()}
    tabs = pn.Tabs(*[(views[k].title, views[k]) for k in TABS], dynamic=True, sizing_mode="stretch_width")
    tabs.active = list(TABS).index(session.view)
    tabs.param.watch(lambda e: setattr(session, "view", list(TABS)[e.new]), "active")
    session.param.watch(lambda e: setattr(tabs, "active", list(TABS).index(e.new)), "view")
    template = UnitScopeTemplate(
        title="UnitScope", sidebar=_sidebar(session), main=[pn.Column(AlertsView(session=session), tabs, sizing_mode="stretch_width")],
        logo=str(ASSETS / "logo.svg"), accent="#1f5f8b", sidebar_width=260, theme_toggle=False,
        # [A] no header spinner: Panel's busy state is one for the whole process (any page's
        # callback spins every page's spinner, misleading a class), and a worker thread setting
        # the spinner of a page that was closing raised AttributeError in the server log (seen
        # once in a browser-test run); long work shows its own progress in every view
        busy_indicator=None)
    template.session = session  # for tests and the benchmark
    template.views = views
    if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
        session.attach_document(pn.state.curdoc)
        pn.state.onload(session.document_ready)
        pn.state.onload(heap_keeper().page_loaded)  # the page's objects leave the collector's scans
        _mend_address(session)
        _check_view_arg(session)
        session._address_selection = _selection_args()  # said once the decoder is known (set_decoder)
        if pn.state.location is not None:
            pn.state.location.sync(session, {"view": "view", "layer": "layer", "unit": "unit", "run": "run"})
        # never block the server: workers are told to stop, the page's objects collected when idle
        pn.state.on_session_destroyed(lambda ctx: (session.close(timeout=0), heap_keeper().page_closed()))
    if load_demo and not session.run:  # a link to a run folder opens it instead (the demo if it cannot)
        session.load_demo()
    return template
