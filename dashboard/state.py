"""The state of one browser session: data, decoder, training, probe, selection, alerts.

:class:`Session` is a ``param.Parameterized`` with no Panel code. Views read and set its
parameters; its methods start the long work (loading, training, probing) in worker threads
(:mod:`dashboard.jobs`) that update the parameters as they go. The decoder is shared by
all views of the session (one page with navigation); the demo decoder is shared read-only
by all sessions of the process.

The session's methods are kept by topic: the data source in :mod:`dashboard.session_data`,
run folders, training and imported weights in :mod:`dashboard.session_train`, probing and
band occlusion in :mod:`dashboard.session_probe` (mixins :class:`Session` inherits); the
parameters, their watchers, the page, alerts, jobs and the decoder stay here.
"""
from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

import param

from core.training import TrainConfig
from core.workspace import DataSpec

from .decoder import Decoder, demo_provider
from .files import data_root
from .jobs import Job, error_message
from .session_data import SessionData
from .session_probe import SessionProbe
from .session_train import SessionTrain

__all__ = ["Session", "VIEWS", "PROBE_STATES", "apply_in_doc", "doc_destroyed"]

logger = logging.getLogger(__name__)

VIEWS = ("data", "overview", "units", "prune", "kernels", "encoding", "export")
PROBE_STATES = ("none", "running", "stopped", "done", "error")


def doc_destroyed(doc) -> bool:
    """Whether ``doc`` is a served Bokeh document whose session has ended (the page was closed
    or reloaded): Bokeh's ``Document.destroy`` drops its session context and deletes its roots,
    before the app's ``on_session_destroyed`` hooks run."""
    if doc is None or getattr(doc, "session_context", None) is not None:
        return False
    try:
        doc.roots
    except AttributeError:
        return True
    return False


def apply_in_doc(doc, fn) -> None:
    """Run ``fn`` (a change of Bokeh models) under the document lock, from any thread.

    A served document gets it on its next tick; without a document (tests, export) it runs
    at once. A document whose session has ended gets nothing [A]: run at once, on the worker
    thread that asked, ``fn`` drew into the destroyed document's models (``IndexError`` in
    the server log some 20 s after a page was reloaded during a probe).
    """
    if doc is None:
        fn()
    elif doc.session_context is not None:
        try:
            doc.add_next_tick_callback(fn)
        except (AttributeError, RuntimeError):  # destroyed meanwhile (Bokeh tears its callbacks down)
            if not doc_destroyed(doc):
                raise
    elif not doc_destroyed(doc):  # a document never served (tests that render a view)
        fn()


def address_selection_notes(asked: dict | None, names: list[str], layer: str, unit: int, n_units: dict) -> list[str]:
    """What to say of an address's ``layer`` / ``unit`` (``asked``: their texts as given) that
    the decoder shown lacks, given the ``layer`` and ``unit`` shown instead: a link with
    ``layer=bogus`` or ``unit=999`` had shown another unit without a word, the address still
    naming the one asked for."""
    if not asked:
        return []
    out = []
    given_layer = asked.get("layer")
    if given_layer and given_layer not in names:
        from core._validation import suggest

        out.append(f"The address names the layer {given_layer!r}, which this decoder does not have; its layers are "
                   f"{', '.join(names)}.{suggest(given_layer, names)} {layer} is shown.")
    given_unit = asked.get("unit")
    if given_unit not in (None, ""):
        try:
            index = int(given_unit)
        except ValueError:
            index = None
        if index is None or index < 0:
            out.append(f"The address names the unit {given_unit!r}, which is no unit index (0 or more); "
                       f"{layer}/{unit} is shown.")
        elif index >= n_units[layer] and (not given_layer or given_layer == layer):
            out.append(f"The address names unit {index} of {layer}, which has units 0 to {n_units[layer] - 1}; "
                       f"{layer}/{unit} is shown.")
    return out


class Session(SessionData, SessionTrain, SessionProbe, param.Parameterized):
    """Everything one user has chosen and computed.

    Selection (``view``, ``layer``, ``unit``) is what the URL carries.
    """

    # ---- navigation and selection (linkable) ------------------------------------------
    view = param.Selector(default="overview", objects=list(VIEWS), doc="The view shown.")
    layer = param.String(default="conv_2", doc="Selected block, by its braindecode name.")
    unit = param.Integer(default=0, bounds=(0, None), doc="Selected unit index within the block.")
    run = param.String(default="", doc="Run folder under the data root whose decoder is shown ('' for the "
                                        "demo or a decoder trained in the app); the URL carries it.")
    layer_names = param.List(default=[], item_type=str, doc="Blocks of the current decoder.")

    # ---- data source ---------------------------------------------------------------------
    source = param.Selector(default="demo", objects=["demo", "file", "upload"],
                            doc="Demo recording, a file under the data root, or an upload.")
    path = param.String(default="", doc="Recording path relative to the data root.")
    recording_info = param.Dict(default={}, doc="Summary of the inspected recording (Recording.summary()).")
    target = param.String(default="", doc="Target: a channel name, 'events' or 'events:T1,T2'.")
    picks = param.List(default=[], item_type=str, doc="Input channels of a user file (the target is never one).")
    l_freq = param.Number(default=None, allow_None=True, doc="High-pass edge in Hz (None: off).")
    h_freq = param.Number(default=None, allow_None=True, doc="Low-pass edge in Hz (None: off).")
    resample_to = param.Number(default=None, allow_None=True, doc="Resample to this rate in Hz (None: keep).")
    tmin = param.Number(default=DataSpec.tmin, doc="Label trials: start, in s from each event's onset.")
    tmax = param.Number(default=DataSpec.tmax, doc="Label trials: end, in s from each event's onset.")
    model_kind = param.Selector(default="deep4", objects=["deep4", "shallow"], doc="Decoder architecture.")
    max_epochs = param.Integer(default=TrainConfig.max_epochs, bounds=(1, 500), doc="Training epochs at most (early stopping may end sooner).")

    # ---- decoder and training ----------------------------------------------------------
    decoder = param.ClassSelector(class_=Decoder, default=None, allow_None=True,
                                  doc="The trained decoder every view shows.")
    decoder_version = param.Integer(default=0, bounds=(0, None), doc="Bumped whenever the decoder changes.")
    page_redrawn = param.Integer(default=0, bounds=(0, None), doc=(
        "Bumped on the page's event loop once it has loaded, when what changed while it loaded was drawn again: "
        "views send the visibility of their parts again (see dashboard.views._common.Shown)."))
    status = param.String(default="", doc="One-line status of the decoder (shown in the sidebar).")
    busy = param.Selector(default="", objects=["", "loading", "inspecting", "training", "opening", "importing"],
                          doc="Long work running on the data/model side.")
    train_progress = param.Number(default=0.0, bounds=(0, 1), doc="Fraction of training done.")
    train_history = param.List(default=[], doc="One dict per epoch (train_loss, valid_loss, valid_metric).")
    train_outcome = param.String(default="", doc="How the last run of this session ended (shown under its bar).")
    train_batches = param.List(default=[], doc="(fractional epoch, train loss) per batch of the current run.")

    # ---- probe ---------------------------------------------------------------------------
    probe = param.Parameter(default=None, doc="Probe result (xarray.Dataset) of the current decoder, or None.")
    control = param.Parameter(default=None, doc="Probe result of the untrained control network, or None.")
    probe_state = param.Selector(default="none", objects=list(PROBE_STATES), doc="Probe job state.")
    probe_progress = param.Number(default=0.0, bounds=(0, 1), doc="Fraction of the probe (and control) done.")
    probe_source = param.String(default="", doc="Where the probe result comes from (shipped, run here).")
    probe_iterations = param.Integer(default=24, bounds=(1, 500),
                                     doc="Perturbation draws per pass (noise floor about 1/sqrt(windows x iterations)).")
    probe_control = param.Boolean(default=True, doc="Also probe an untrained network of the same architecture.")
    probe_site = param.Selector(default="conv", objects=["conv", "nonlin"],
                                doc="Where units are read: the conv output before BatchNorm (the seed paper) or "
                                    "after the block's nonlinearity (for Shallow: the squared output, band power).")
    top_ready = param.Boolean(default=False, doc="Most-activating windows of the decoder are available.")
    channel_map_band = param.String(default="", doc="What the Units view's channel maps show: '' the strongest band "
                                                    "of each channel, a band of the probe result, or 'LO-HI' in Hz.")

    # ---- band occlusion ------------------------------------------------------------------
    occlusions = param.List(default=[], doc="Band-occlusion results of the current decoder, newest first (dicts).")
    occluding = param.Boolean(default=False, doc="A band occlusion is queued or running.")
    demo_ipsi = param.Number(default=0.0, bounds=(0.0, 1.0),
                             doc="Demo only: share of ipsilateral movements, marked by beta alone (core.demo).")

    # ---- messages ------------------------------------------------------------------------
    alerts = param.List(default=[], doc="(level, text) pairs shown as alerts; text is escaped when shown.")

    live_interval = 0.5  # seconds between live updates of the training curves [A]
    probe_interval = 2.0  # seconds between live updates of the probe maps (each costs a redraw) [A]
    # [A] a session keeps a probe's (unit, channel, freq) maps in 1 Hz bins above this size (the
    # shipped demo probe's binning): Deep4 on 306 MEG channels holds 553 MB at full resolution
    probe_maps_limit_mb = 64.0

    def __init__(self, **params):
        self._run_shown = ""  # the run folder of the decoder shown (see ``run``)
        self._run_refused = ""  # the last run an address named that did not open (not tried again)
        self._address_selection = None  # {"layer": ..., "unit": ...} as the page's address gave them
        super().__init__(**params)
        self.root = data_root()
        self._jobs: dict[str, Job] = {}
        self._inspect_key = None  # ((path, BIDS entities), label) of the recording the inspect job reads
        self._probe_run = None
        self._upload_dir: Path | None = None
        self._uploads: dict[str, tuple] = {}  # uploaded name -> (size, digest) of the file saved
        self._saved_stamps: dict[str, tuple] = {}  # saved name -> (size, digest) of the file saved
        self._unpacked: dict[str, tuple] = {}  # saved .zip name -> (size, digest) of the archive unpacked
        self._upload_order: list[str] = []  # saved names, oldest first
        self._upload_opened = None  # (path, markers missing, its files' stamps) of the upload shown
        self._upload_pending = False  # files came while the upload worker ran
        self._upload_active = False  # the upload worker runs (see ``_open_upload``)
        self._upload_lock = threading.RLock()  # uploads arrive in several server threads at once
        self._demo = demo_provider("deep4")
        self._demo_listener = None
        self._closed = False
        self._training = None  # the training run that is the session's (see train)
        self._decoder_lock = threading.RLock()
        self._jobs_lock = threading.RLock()
        self._decoder_next = None  # the decoder set last (set before the views hear of it)
        self._batches: list = []
        self._last_push = 0.0
        self._parts: dict = {}
        self._parts_lock = threading.RLock()  # a factory may ask for another part
        self._doc = None  # the served Bokeh document showing this session (see attach_document)
        self._doc_ready = False
        self._changed_while_loading = False

    def attach_document(self, doc) -> None:
        """Tie the session to the served document that shows it (called by the app, which also
        calls :meth:`document_ready` once the browser has loaded the page).

        A decoder switch announced by a worker thread (the shared demo finished loading) then
        runs on that document's event loop, and if it happened while the browser was still
        loading the page, the views are drawn once more when the page has loaded [A]: a
        switch made then could miss the browser (the new children of the views never
        arrived, and the Overview kept "The decoder is loading" for good: 1 of 26 fresh
        server starts as the switch was made from the worker, 6 of 52 when it ran on the
        event loop at once). Waiting for the page instead would cost every first visitor of a
        fresh server about two seconds.
        """
        self._doc = doc

    def document_ready(self) -> None:
        """The browser has loaded the page: what changed while it was loading (the decoder, an
        alert) is drawn once more."""
        with self._parts_lock:
            self._doc_ready = True
            redraw, self._changed_while_loading = self._changed_while_loading, False
        if redraw:
            def again():
                names = [n for n, on in (("decoder_version", self.decoder is not None), ("alerts", bool(self.alerts))) if on]
                if names:
                    self.param.trigger(*names)
                # a part shown or hidden while the page loaded can keep its old visibility in the
                # browser (8 pages opened at once on a fresh server: the first Units view without
                # its scatter and maps in 7 of 8 starts, sidebars without the lesson); triggering
                # the decoder again sets the same value, which sends nothing
                self.page_redrawn += 1
            self._in_doc(again)

    def _in_doc(self, fn) -> None:
        """Run ``fn`` on the attached document's event loop (next tick); at once when no
        document is attached (tests, scripts)."""
        def run():
            with self._parts_lock:
                if self._doc is not None and not self._doc_ready:
                    self._changed_while_loading = True
            fn()
        apply_in_doc(self._doc, run)

    def _on_loop(self, fn, name: str):
        """``fn`` as a job callback (``on_done`` / ``on_error`` of job ``name``) that runs on the
        page's event loop, as :meth:`_in_doc` runs it [A]. A worker that ended a training, an
        import or a file's reading changed the session there and then, so every view's
        watchers ran on the worker: a choice the user made in the same moment was dropped (the
        views' ``_syncing`` guards), and their Panel objects were built off the page's thread.
        An error of ``fn`` is logged and shown, as the job's own would be."""
        def call(*args):
            def run():
                try:
                    fn(*args)
                except Exception as exc:  # noqa: BLE001 - shown, as Job shows a callback's error
                    logger.exception("callback of job %s failed", name)
                    self.alert(error_message(exc))
            self._in_doc(run)
        return call

    def part(self, key: str, factory=None):
        """The session's per-view state named ``key`` (e.g. the prune state), made by
        ``factory()`` on first use, one per session; None when absent and no factory given."""
        with self._parts_lock:
            obj = self._parts.get(key)
            if obj is None and factory is not None:
                obj = self._parts[key] = factory()
            return obj

    # ---- alerts --------------------------------------------------------------------------
    def alert(self, text: str, level: str = "danger") -> None:
        """Show a message (levels: danger, warning, info, success); keeps the last five."""
        self.alerts = (self.alerts + [(level, str(text))])[-5:]

    def dismiss(self, i: int | None = None) -> None:
        """Remove one alert (by position) or all of them."""
        self.alerts = [] if i is None else [a for j, a in enumerate(self.alerts) if j != i]

    # ---- jobs ----------------------------------------------------------------------------
    def _start(self, name: str, fn, *, on_done=None, on_error=None, finishing: bool = False) -> Job | None:
        """Start job ``name`` in a worker thread; refused (None, with an alert) while one runs.

        ``finishing=True``: the caller knows a running job of that name has left its work and
        is only returning (a worker loop that re-checks for changes before it goes idle), so
        it is waited for (at most 10 s) instead of refusing the new job, which would lose it.
        """
        if self._closed:
            return None
        job = self._jobs.get(name)
        if finishing and job is not None and job.running and threading.current_thread() is not job.thread:
            job.join(10)

        def failed(msg):
            if self._jobs.get(name) is not job:  # retired (see _retire): nothing of it is shown
                return
            self.alert(msg)
            if on_error:
                on_error(msg)

        # [A] checked and claimed at once: the page's loop, a worker's callback (_retire) and
        # other workers change the jobs at the same time
        with self._jobs_lock:
            running = self._jobs.get(name)
            claimed = running is None or not running.running  # (read once: it may end meanwhile)
            if claimed:
                job = self._jobs[name] = Job(name, fn, on_done=on_done, on_error=failed)
        if not claimed:
            self.alert(f"{name.capitalize()} is already running.", "warning")
            return None
        job.start()
        return job

    def running(self, name: str) -> bool:
        job = self._jobs.get(name)
        return job is not None and job.running

    def close(self, timeout: float = 5.0) -> None:
        """Stop every worker of the session and remove its uploads (session destroyed)."""
        self._closed = True
        if self._demo_listener is not None:
            self._demo.unsubscribe(self._demo_listener)
            self._demo_listener = None
        for run in (self._probe_run, self._control_run):
            if run is not None:
                run.stop()
        with self._jobs_lock:  # (a worker may start or retire a job meanwhile)
            jobs = list(self._jobs.values())
        for job in jobs:
            job.stop()
        if timeout:
            for job in jobs:
                job.join(timeout)
        if self._upload_dir is not None:
            shutil.rmtree(self._upload_dir, ignore_errors=True)

    def _gone(self) -> bool:
        """The session has ended (closed, or the page showing it was closed or reloaded: its
        document destroyed before the app's ``on_session_destroyed`` hook closes it, which
        Bokeh runs some 15-20 s after the page went): its workers stop at their next check."""
        return self._closed or doc_destroyed(self._doc)

    def _retire(self, name: str) -> Job | None:
        """Stop job ``name`` and keep it out of the way while it ends (its result discarded by
        its callbacks): a new job of that name can start at once. Closing the session still
        stops it."""
        with self._jobs_lock:  # (it runs on a worker, e.g. a training's end, as jobs start elsewhere)
            job = self._jobs.get(name)
            if job is None or not job.running:
                return None
            job.stop()
            for key in [k for k, j in self._jobs.items() if k.startswith(f"{name}#") and not j.running]:
                del self._jobs[key]  # retired jobs that have ended
            self._jobs[f"{name}#{id(job)}"] = self._jobs.pop(name)
        return job

    # ---- decoder ---------------------------------------------------------------------------
    @staticmethod
    def _test_metric(decoder: Decoder) -> str:
        note = decoder.metric_notes()
        return f"test {decoder.metric_name()} {decoder.predictions()['metric']:.3f}" + (f" ({note})" if note else "")

    @classmethod
    def _decoder_status(cls, decoder: Decoder) -> str:
        return f"{decoder.label}: {cls._test_metric(decoder)}"

    def set_decoder(self, decoder: Decoder, *, probe=None, control=None, probe_source: str = "",
                    run: str = "") -> None:
        """Make ``decoder`` the one all views show; drops probe results of the old one.
        ``run``: the run folder it was opened from (relative to the data root), if any."""
        self._run_shown = run
        with self._decoder_lock:  # from here on, results of the old decoder's jobs are dropped (_set_for)
            self._decoder_next = decoder
        if self._probe_run is not None:
            self._probe_run.stop()
            self._probe_run = None
        names = decoder.layer_names
        hidden = [n for n in names if n != "conv_classifier"] or names  # (Shallow: one hidden block)
        layer = self.layer if self.layer in names else (hidden[1] if len(hidden) > 1 else hidden[0])
        unit = min(self.unit, decoder.n_units[layer] - 1)
        asked, self._address_selection = self._address_selection, None  # (the first decoder only)
        for note in address_selection_notes(asked, names, layer, unit, decoder.n_units):
            self.alert(note, "warning")
        self.param.update(
            decoder=decoder, layer_names=names, layer=layer, unit=unit, occlusions=[],
            decoder_version=self.decoder_version + 1, probe=probe, control=control,
            probe_state="done" if probe is not None else "none",
            probe_progress=1.0 if probe is not None else 0.0, probe_source=probe_source,
            top_ready=decoder.top_ready, run=run, status=self._decoder_status(decoder))
        if not decoder.top_ready and not (self.running("activations") and self._activations_of is decoder):
            # [A] another decoder's windows are no longer wanted: refused while they were computed
            # ("Activations is already running." on going back to the demo), this one's never came
            self._retire("activations")
            self._activations_of = decoder
            self._start("activations", lambda stop: decoder.top_windows(stop=stop),
                        on_done=lambda top: self._top_done(decoder, top))

    def _set_for(self, decoder: Decoder, **values) -> bool:
        """Set ``values`` (results of a job on ``decoder``) unless another decoder has been set
        meanwhile (or the session has ended); True when set. [A] A probe checked its decoder,
        then set its maps: a training that finished in between got the old decoder's probe."""
        with self._decoder_lock:
            if decoder is not self.decoder or decoder is not self._decoder_next or self._gone():
                return False
            self.param.update(**values)
            return True

    def _top_done(self, decoder: Decoder, top) -> None:
        if top is not None and decoder is self.decoder:
            self.top_ready = True

    def load_demo(self) -> None:
        """Use the demo decoder (shared); loads or trains it on first use with progress."""
        demo = self._demo
        if self._demo_listener is None:
            self._demo_listener = self._on_demo
            demo.subscribe(self._demo_listener)
        if demo.state == "ready":
            self._use_demo()
            return
        if self.busy != "training":  # (never over a training: its Stop stays usable)
            self.busy = "loading"
        self.status = "Loading the demo decoder ..."
        demo.start()
        if demo.state == "ready":  # finished between the two checks
            self._use_demo()

    def back_to_demo(self) -> None:
        """Show the demo decoder again (the Data view's "Back to the demo decoder").

        A training in progress is stopped and what it trained is discarded, with an alert that
        says so [A]: it kept running unseen (the page looked idle, its Stop disabled, Train
        answering "Training is already running") and replaced the demo when it finished.
        """
        if self.busy in ("opening", "importing"):
            self.alert(f"Wait until {self.busy} is done: the decoder being {self.busy.replace('ing', 'ed')} "
                       "would replace the demo when it is ready.", "warning")
            return
        if self.running("training"):
            self._discard_training("you went back to the demo decoder")
        self.source = "demo"
        self.load_demo()

    def _discard_training(self, why: str) -> None:
        """Stop the training in progress and drop what it trains (see :meth:`back_to_demo`)."""
        run = self._training
        if run is None or not self.running("training"):
            return
        self._training = None  # its callbacks see they are no longer the session's
        self._retire("training")
        ep = len(self.train_history)
        self.param.update(busy="" if self.busy == "training" else self.busy,
                          train_outcome=f"Last run: stopped in epoch {ep + 1} of at most {run.max_epochs} because "
                                        f"{why}; the {run.kind} decoder it was training is discarded.")
        self.alert(f"Training stopped: {why}, so the {run.kind} decoder it was training (epoch {ep + 1} of at "
                   f"most {run.max_epochs}) is discarded.", "warning")

    def _use_demo(self) -> None:
        demo = self._demo
        probe, control = demo.probe
        self.set_decoder(demo.decoder, probe=probe, control=control,
                         probe_source="shipped with UnitScope" if probe is not None else "")
        self.top_ready = demo.decoder.top_ready
        if self.busy == "loading":  # (a training in progress keeps its state; cleared after the
            self.busy = ""          # decoder is set: see _busy_ended)

    def _waits_for_demo(self) -> bool:
        """Whether the shared demo decoder, once ready, is this session's decoder: it asked for
        it (:meth:`load_demo`), has no decoder, and opens or imports none meanwhile [A]. The
        demo arriving while the page inspected a recording, imported weights or trained (a user
        quicker than the demo) was dropped, and the page said "Loading the demo decoder" for
        good; after loading, the demo stays shown through all of these, and so it now does."""
        return (not self._closed and self._demo_listener is not None and self.decoder is None
                and self.busy not in ("opening", "importing"))

    def no_decoder_note(self, fallback: str = "No decoder yet: load the demo or train one first.") -> str:
        """Why there is no decoder, for a message: the demo decoder still loading (it comes by
        itself), else ``fallback``."""
        if self.decoder is None and self._demo_listener is not None and self._demo.state in ("loading", "training"):
            return "The demo decoder is still loading: it is shown in a moment."
        return fallback

    def _on_demo(self, state: str, info: dict) -> None:
        if self._closed:
            return
        if state == "training" and "progress" in info:
            p = info["progress"]
            self._train_progress_cb(p)
            self.status = "Training the demo decoder (first start; cached afterwards) ..."
        elif state == "ready" and info.get("top_ready"):
            def ready():
                if self.decoder is self._demo.decoder:
                    self.top_ready = True
            self._in_doc(ready)
        elif state == "ready" and self._waits_for_demo():
            self._in_doc(self._use_demo_once)
        elif state == "error":
            error = info.get("error")

            def show():
                self.busy = ""
                self.alert(f"The demo decoder could not be loaded: {error}")
            self._in_doc(show)

    def _use_demo_once(self) -> None:
        """:meth:`_use_demo` unless a decoder was set meanwhile (or the session closed)."""
        if self._waits_for_demo() and self._demo.state == "ready":
            self._use_demo()

    @param.depends("busy", watch=True)
    def _busy_ended(self):
        """Opening a run or importing weights ended without a decoder (failed): the demo, if
        it arrived meanwhile, is shown (see :meth:`_waits_for_demo`)."""
        if not self.busy and self._waits_for_demo() and self._demo.state == "ready":
            self._in_doc(self._use_demo_once)

    # ---- watchers of the mixins' parameters (param.depends registers on Parameterized classes only)
    @param.depends("target", watch=True)
    def _target_not_picked(self):
        if self.target in self.picks:  # the target is split off the inputs
            self.picks = [c for c in self.picks if c != self.target]

    @param.depends("run", watch=True)
    def _run_requested(self):
        """A run named by the URL (or set by a caller) opens; names already shown do nothing."""
        if self.run and self.run != self._run_shown:
            if self.run == self._run_refused:  # (refused already, and said)
                self.run = self._run_shown
                return
            self.open_run(self.run)

    # ---- selection -------------------------------------------------------------------------
    @param.depends("layer", watch=True)
    def _check_layer(self):
        if self.layer_names and self.layer not in self.layer_names:
            from core._validation import suggest

            bad = self.layer
            self.alert(f"Unknown layer {bad!r}; the layers are {self.layer_names}.{suggest(bad, self.layer_names)}",
                       "warning")
            self.layer = self.layer_names[min(1, len(self.layer_names) - 1)]
            return
        self._clip_unit()

    @param.depends("unit", watch=True)
    def _clip_unit(self):
        if self.decoder is not None and self.layer in self.decoder.n_units:
            n = self.decoder.n_units[self.layer]
            if self.unit >= n:
                self.unit = n - 1

    def n_units(self) -> int:
        """Units of the selected layer (0 without a decoder)."""
        if self.decoder is None or self.layer not in self.decoder.n_units:
            return 0
        return self.decoder.n_units[self.layer]
