"""The state of one browser session: data, decoder, training, probe, selection, alerts.

:class:`Session` is a ``param.Parameterized`` with no Panel code. Views read and set its
parameters; its methods start the long work (loading, training, probing) in worker threads
(:mod:`dashboard.jobs`) that update the parameters as they go. The decoder is shared by
all views of the session (one page with navigation); the demo decoder is shared read-only
by all sessions of the process.
"""
from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import param

from core._validation import UnitScopeError
from core.cautions import ONE_CLASS, partial_probe_note
from core.io import DATA_CH_TYPES
from core.recording import label_targets
from core.training import TrainConfig
from core.workspace import DataSpec

from .decoder import KIND_LABELS, Decoder, demo_provider, run_decoder, run_probe_source
from .files import (WEIGHTS_SUFFIXES, archive_recordings, data_root, is_run_folder, list_recordings, list_runs, list_weights,
                    resolve_in_root, run_recording, save_upload, session_room, unpack_zip,
                    upload_choice)
from .jobs import Job

__all__ = ["Session", "VIEWS", "PROBE_STATES", "apply_in_doc", "doc_destroyed"]

logger = logging.getLogger(__name__)

VIEWS = ("data", "overview", "units", "prune", "kernels", "encoding", "export")
PROBE_STATES = ("none", "running", "stopped", "done", "error")
MIN_SFREQ = 8.0  # Hz; the lowest rate core.workspace.load_data accepts


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


class Session(param.Parameterized):
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
        super().__init__(**params)
        self.root = data_root()
        self._jobs: dict[str, Job] = {}
        self._inspect_key = None  # ((path, BIDS entities), label) of the recording the inspect job reads
        self._probe_run = None
        self._upload_dir: Path | None = None
        self._uploads: dict[str, int] = {}  # uploaded name -> size, for the files already saved
        self._upload_order: list[str] = []  # saved names, oldest first
        self._upload_opened = None  # (path, markers missing) of the upload shown
        self._upload_pending = False  # files came while the upload worker ran
        self._upload_active = False  # the upload worker runs (see ``_open_upload``)
        self._upload_lock = threading.RLock()  # uploads arrive in several server threads at once
        self._demo = demo_provider("deep4")
        self._demo_listener = None
        self._closed = False
        self._training = None  # the training run that is the session's (see train)
        self._decoder_lock = threading.RLock()
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
        if job is not None and job.running:
            self.alert(f"{name.capitalize()} is already running.", "warning")
            return None

        def failed(msg):
            if self._jobs.get(name) is not job:  # retired (see _retire): nothing of it is shown
                return
            self.alert(msg)
            if on_error:
                on_error(msg)

        job = Job(name, fn, on_done=on_done, on_error=failed)
        self._jobs[name] = job
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
        jobs = list(self._jobs.values())  # (a worker may start or retire a job meanwhile)
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
        if self.busy == "loading":  # (a training in progress keeps its state)
            self.busy = ""
        self.set_decoder(demo.decoder, probe=probe, control=control,
                         probe_source="shipped with UnitScope" if probe is not None else "")
        self.top_ready = demo.decoder.top_ready

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
        elif state == "ready" and (self.decoder is None and self.busy == "loading"):
            self._in_doc(self._use_demo_once)
        elif state == "error":
            error = info.get("error")

            def show():
                self.busy = ""
                self.alert(f"The demo decoder could not be loaded: {error}")
            self._in_doc(show)

    def _use_demo_once(self) -> None:
        """:meth:`_use_demo` unless a decoder was set meanwhile (or the session closed)."""
        if not self._closed and self.decoder is None and self.busy == "loading":
            self._use_demo()

    # ---- data source ---------------------------------------------------------------------
    def recordings(self) -> list[str]:
        """Recordings under the data root, relative paths."""
        return list_recordings(self.root)

    def inspect(self, path: str | None = None) -> None:
        """Read the chosen file (in a thread) and list its channels and events."""
        text = self.path if path is None else path
        try:
            full = resolve_in_root(self.root, text)
        except UnitScopeError as exc:
            self.alert(str(exc))
            return
        self.source = "file"
        self._inspect(full, label=text)

    def upload(self, filename: str, data: bytes) -> None:
        """Store one uploaded file for this session and open it (see :meth:`upload_files`)."""
        self.upload_files({filename: data})

    def upload_files(self, files: dict) -> None:
        """Store uploaded files (``{name: bytes}``; names already stored with the same size are
        skipped, so a dropper's growing value can be passed whole) and open the newest
        recording among the session's uploads once the files it keeps its data in are there.

        A recording may come as several files (BrainVision: .vhdr, .vmrk, .eeg; EEGLAB: .set
        and .fdt), which arrive one by one, or as a .zip (a BIDS folder, a CTF .ds folder).
        """
        new, errors = False, []
        with self._upload_lock:  # a server's threads may each bring one file of a recording at once
            if self._upload_dir is None:
                import tempfile

                self._upload_dir = Path(tempfile.mkdtemp(prefix="unitscope-session-"))
            for name, data in files.items():
                if isinstance(data, str):
                    data = data.encode()
                if self._uploads.get(name) == len(data):
                    continue
                self._uploads[name] = len(data)
                try:
                    full = save_upload(self._upload_dir, name, data, room=session_room(self._upload_dir))
                except UnitScopeError as exc:
                    errors.append(str(exc))
                    continue
                self._upload_order = [n for n in self._upload_order if n != full.name] + [full.name]
                new = True
        for msg in errors:
            self.alert(msg)
        if new:
            self.source = "upload"
            self._open_upload()

    def _open_upload(self) -> None:
        """Unpack new archives, choose the upload to show (:func:`upload_choice`) and read it,
        in the inspect worker; files that arrive meanwhile are looked at by the same worker
        before it ends (files of one recording arrive one by one)."""
        with self._upload_lock:
            if self._upload_active:
                self._upload_pending = True
                return
            self._upload_active = True
        self.busy = "inspecting"
        if self._start("inspect", self._upload_worker, on_error=self._upload_failed) is None:
            with self._upload_lock:
                self._upload_active = False
            self.busy = ""

    def _upload_failed(self, msg: str) -> None:
        with self._upload_lock:
            self._upload_active = self._upload_pending = False
        self.busy = ""

    def _upload_worker(self, stop) -> None:
        from core.io import missing_companions

        folder = self._upload_dir
        while not stop.is_set():
            with self._upload_lock:
                order, self._upload_pending = list(self._upload_order), False
            for name in order:
                if name.lower().endswith(".zip") and not (folder / name[:-4]).is_dir():
                    try:
                        unpack_zip(folder / name, folder, room=session_room(folder))
                    except UnitScopeError as exc:
                        with self._upload_lock:
                            self._upload_order.remove(name)
                        (folder / name).unlink(missing_ok=True)
                        self.alert(str(exc))
                        order = [n for n in order if n != name]
            path, note = upload_choice(folder, order)
            key = None if path is None else (str(path), tuple(missing_companions(path)["optional"]))
            if key is not None and key != self._upload_opened:
                self.param.update(recording_info={}, target="", picks=[])
                info = self._read_info(path, str(path.relative_to(folder)) + ("/" if path.is_dir() else ""))
                info.update(self._archive_of(path))
                self._upload_opened = key
                self._apply_info(info)
                if note:
                    self.alert(note, "info")
            elif path is None and note:
                self.alert(note, "info")
            with self._upload_lock:
                if not self._upload_pending:
                    self._upload_active = False
                    break
        self.busy = ""

    def _archive_of(self, path: Path) -> dict:
        """For a recording unpacked from an uploaded .zip that holds several: the archive's name
        and its recordings (``archive``, ``archive_recordings``: paths under the upload folder)."""
        folder = self._upload_dir
        if folder is None or folder not in path.parents:
            return {}
        first = path.relative_to(folder).parts[0]
        if not (folder / f"{first}.zip").is_file():
            return {}
        found = [str(f.relative_to(folder)) for f in archive_recordings(folder, f"{first}.zip")]
        return {"archive": f"{first}.zip", "archive_recordings": found} if len(found) > 1 else {}

    def choose_in_archive(self, relpath: str) -> None:
        """Read another recording of the uploaded archive shown (one of
        ``recording_info["archive_recordings"]``)."""
        info = self.recording_info
        if relpath not in info.get("archive_recordings", []):
            self.alert(f"{relpath!r} is not a recording of the uploaded archive shown.")
            return
        if relpath == info["label"]:
            return
        self._inspect(self._upload_dir / relpath, label=relpath,
                      extra={k: info[k] for k in ("archive", "archive_recordings")})

    @staticmethod
    def _read_info(path: Path, label: str, bids: dict | None = None) -> dict:
        """Read a recording and describe it (``summary()``, path, label, channel types); a BIDS
        folder's also lists its recordings (``bids_recordings``) and the one read
        (``bids_chosen``: the first that ``bids`` matches)."""
        from core.io import bids_recordings, is_bids_root, read_recording

        try:
            rec = read_recording(path, bids=bids or None)
        except UnitScopeError as exc:  # named as the user knows it: an upload's server folder stays out
            if str(path) not in str(exc):
                raise
            raise UnitScopeError(str(exc).replace(str(path), label)) from exc
        info = rec.summary()
        info.update(path=str(path), label=label, ch_types_list=rec.ch_types,
                    # onsets and types, for what a label trial holds (trial_overlap)
                    event_table=(rec.events.onset.tolist(), [str(t) for t in rec.events.type]))
        if is_bids_root(path):  # (a CTF .ds folder is none)
            info.update(bids_recordings=bids_recordings(path), bids_chosen=bids_recordings(path, bids)[0])
        return info

    def _inspect(self, full: Path, *, label: str, bids: dict | None = None, extra: dict | None = None) -> None:
        key = (str(full), repr(bids))
        if self.running("inspect"):
            # the same file asked for again while it is read (Enter in the path box, then Open) is
            # the same request; another waits (the inputs shown still belong to the one being read)
            if self._inspect_key[0] != key:
                self.alert(f"Still reading {self._inspect_key[1]}: open {label} when it is shown.", "warning")
            return
        self._inspect_key = (key, label)
        self.param.update(busy="inspecting", recording_info={}, target="", picks=[])
        self._start("inspect", lambda stop: {**self._read_info(full, label, bids), **(extra or {})},
                    on_done=self._apply_info, on_error=lambda m: setattr(self, "busy", ""))

    def choose_bids(self, entities: dict) -> None:
        """Read another recording of the BIDS folder shown (its entities, as listed in
        ``recording_info["bids_recordings"]``)."""
        info = self.recording_info
        if not info.get("bids_recordings"):
            self.alert("Choose a recording of a BIDS folder: the recording shown is not one.")
            return
        if entities == info["bids_chosen"]["entities"]:
            return
        self._inspect(Path(info["path"]), label=info["label"], bids=dict(entities))

    def _apply_info(self, info: dict) -> None:
        """Show a recording just read: its channels, a default target and the input picks."""
        # [A] a continuous channel first (e.g. a speed or gaze trace), else event labels
        misc = self._trace_channels(info)
        default = misc[0] if misc else (label_targets(info["events"]) or [""])[0]
        self.param.update(busy="", recording_info=info, target=default, picks=self._inputs_of(info, default),
                          l_freq=None, h_freq=None, resample_to=None)
        if info.get("read_note"):  # e.g. a file cut short, read as a shorter recording
            self.alert(f"{info.get('label', 'The recording')}: {info['read_note']}.", "warning")

    @staticmethod
    def _inputs_of(info: dict, target: str) -> list[str]:
        """The default inputs of a recording read: its data channels but the target and, [A] as
        MNE does, those the file marks bad (used only when picked by name)."""
        bads = set(info.get("bads", []))
        return [c for c, t in zip(info["ch_names"], info["ch_types_list"])
                if t in DATA_CH_TYPES and c != target and c not in bads]

    def default_picks(self) -> list[str]:
        """:meth:`_inputs_of` the recording inspected, for the target chosen."""
        return self._inputs_of(self.recording_info, self.target) if self.recording_info else []

    def target_options(self) -> list[str]:
        """Targets the inspected file offers: non-data channels first, then data channels, events.
        Stim channels are left out: their trigger codes are offered as the events' labels."""
        info = self.recording_info
        if not info:
            return []
        rest = [c for c, t in zip(info["ch_names"], info["ch_types_list"]) if t in DATA_CH_TYPES]
        return self._trace_channels(info) + rest + label_targets(info.get("events", {}))

    @staticmethod
    def _trace_channels(info: dict) -> list[str]:
        """The recording's channels that are neither data nor stim (e.g. a speed or gaze trace): a
        stim channel's values are trigger codes, offered as the events' labels instead."""
        return [c for c, t in zip(info["ch_names"], info["ch_types_list"]) if t not in (*DATA_CH_TYPES, "stim")]

    def pick_options(self) -> list[tuple[str, str]]:
        """(channel, type) pairs the inspected file offers as inputs (every channel but the target)."""
        info = self.recording_info
        if not info:
            return []
        return [(c, t) for c, t in zip(info["ch_names"], info["ch_types_list"]) if c != self.target]

    @param.depends("target", watch=True)
    def _target_not_picked(self):
        if self.target in self.picks:  # the target is split off the inputs
            self.picks = [c for c in self.picks if c != self.target]

    def prep_problems(self) -> list[str]:
        """What is wrong with the channel picks, band-pass and resampling of a user file
        (one sentence each; empty when all is well or for the demo)."""
        info = self.recording_info
        if self.source == "demo" or not info:
            return []
        out = []
        known = set(info["ch_names"])
        if not self.picks:
            out.append("No input channel picked: choose at least one channel.")
        unknown = [c for c in self.picks if c not in known]
        if unknown:
            out.append(f"Picked channel(s) {unknown[:5]} are not in the recording.")
        if self.target in self.picks:
            out.append(f"The target channel {self.target!r} cannot also be an input channel.")
        rate = float(info["sfreq"])
        fs, resampled = self.resample_to, False
        if fs is not None:
            if fs < MIN_SFREQ:
                out.append(f"Resampling to {fs:g} Hz is too low for the decoders (at least {MIN_SFREQ:g} Hz).")
            elif fs > rate:
                out.append(f"Resampling to {fs:g} Hz is above the file's rate ({rate:g} Hz): upsampling adds "
                           "nothing; leave it empty to keep the rate.")  # [A] no upsampling from the app
            else:
                rate, resampled = float(fs), True
        nyq = rate / 2  # the filter runs after resampling (core.workspace.load_data)
        where = f"({rate:g} Hz sampling{' after resampling' if resampled else ''})"
        lo, hi = self.l_freq, self.h_freq
        if lo is not None and lo <= 0:
            out.append(f"l_freq={lo:g} Hz: the high-pass edge must be above 0 Hz (leave it empty for none).")
        if hi is not None and hi <= 0:
            out.append(f"h_freq={hi:g} Hz: the low-pass edge must be above 0 Hz (leave it empty for none).")
        if hi is not None and hi >= nyq:
            out.append(f"h_freq={hi:g} Hz is at or above the Nyquist frequency, {nyq:g} Hz {where}: "
                       f"choose less than {nyq:g} Hz.")
        if lo is not None and lo > 0 and lo >= nyq:
            out.append(f"l_freq={lo:g} Hz is at or above the Nyquist frequency, {nyq:g} Hz {where}.")
        if lo is not None and hi is not None and 0 < hi <= lo:
            out.append(f"l_freq={lo:g} Hz must be below h_freq={hi:g} Hz.")
        if self.target.startswith("events"):
            if self.tmin is None or self.tmax is None or self.tmax <= self.tmin:
                out.append(f"The trial window must end after it starts: from {self.tmin} to {self.tmax} s.")
            elif self.tmax - self.tmin > info["duration_s"]:
                out.append(f"Trials of {self.tmax - self.tmin:g} s are longer than the recording "
                           f"({info['duration_s']:g} s).")
        return out

    def trial_overlap(self) -> str:
        """For label targets, when the trials are longer than the time between events (median),
        e.g. 4-s trials of auditory stimuli 0.5 s apart, in one sentence
        (:func:`core.cautions.trial_overlap_note`); else ""."""
        import numpy as np

        from core.cautions import trial_overlap_note
        from core.recording import Events, target_types

        info = self.recording_info
        if not info or not self.target.startswith("events"):
            return ""
        events = info.get("event_table")
        if events is None:
            return ""
        note = trial_overlap_note(Events(events[0], events[1], np.zeros(len(events[0]))), target_types(self.target),
                                  self.tmin, self.tmax)
        return f"{note[0].upper()}{note[1:]}: shorten the trial window to what one event is followed by." if note else ""

    def demo_recipe(self) -> dict:
        """The shipped decoder's recipe (``core.workspace.DEMO_TRAIN``: a constant learning rate)
        when the choices are the plain demo and a decoder shipped for it, else {}."""
        from core.workspace import DEMO_TRAIN

        return DEMO_TRAIN.get(self.model_kind, {}) if self.source == "demo" and not self.demo_ipsi else {}

    def train_config(self):
        """The :class:`core.training.TrainConfig` that **Train** uses: the chosen decoder and
        epochs, with :meth:`demo_recipe`, so that retraining Deep4 on the plain demo for 23 or more
        epochs trains the shipped decoder again (its weights bit for bit with two torch threads;
        the last bits differ with one)."""
        return TrainConfig(model=self.model_kind, **{**self.demo_recipe(), "max_epochs": int(self.max_epochs)})

    def data_spec(self):
        """The :class:`core.workspace.DataSpec` of the chosen data; raises UnitScopeError with
        the first problem (see :meth:`prep_problems`)."""
        if self.source == "demo":
            return DataSpec(ipsi_fraction=float(self.demo_ipsi))
        info = self.recording_info
        if not info:
            raise UnitScopeError("Choose and inspect a recording first (Data: file or upload).")
        if not self.target:
            raise UnitScopeError("Choose the target: a channel holding a continuous trace, or events.")
        problems = self.prep_problems()
        if problems:
            raise UnitScopeError(problems[0])
        return DataSpec(source=info["path"], target=self.target, picks=list(self.picks), l_freq=self.l_freq,
                        h_freq=self.h_freq, sfreq=self.resample_to, tmin=float(self.tmin), tmax=float(self.tmax),
                        bids=info["bids_chosen"]["entities"] if info.get("bids_chosen") else None)

    # ---- decoders trained earlier ----------------------------------------------------------
    def runs(self) -> list[str]:
        """Run folders under the data root (``unitscope train --out``, ``unitscope batch``)."""
        return list_runs(self.root)

    def open_run(self, path: str) -> None:
        """Open a run folder under the data root (in a thread): its decoder, on the recording it
        was trained on (found under the data root), with ``probe.nc`` / ``probe_untrained.nc``
        beside it as the probe result when they were made for these weights."""
        import json

        from core.workspace import DataSpec

        if self.running("training") or self.busy in ("training", "opening"):
            self.alert("Wait for the training (or the decoder being opened) to finish first.", "warning")
            self.run = self._run_shown  # the URL names what is shown
            return
        try:
            run = resolve_in_root(self.root, path, what="run folder",
                                  choose="type its path, or press List runs to pick one under the data root")
            if not is_run_folder(run):
                raise UnitScopeError(f"{str(path)!r} is not a run folder: it must hold config.json and model.pt "
                                     "(as `unitscope train --out RUN_DIR` writes them).")
            try:
                cfg = json.loads((run / "config.json").read_text())
                data, model_kind = cfg["data"], str(cfg["model"]["kind"])
                spec = DataSpec.from_dict(data)
            except (ValueError, KeyError, TypeError) as exc:
                raise UnitScopeError(f"The run config {str(path)!r}/config.json cannot be read: {exc}") from exc
            if spec.source != "demo":
                spec = DataSpec.from_dict({**data, "source": str(run_recording(self.root, run, spec.source,
                                                                                cfg.get("source_path")))})
        except UnitScopeError as exc:
            self._run_failed(str(exc))
            return
        name = run.name
        shown = str(path).strip()
        self.param.update(busy="opening", status=f"Opening the decoder in {name} ...")

        def work(stop):
            kind = KIND_LABELS.get(model_kind, model_kind)
            dec = run_decoder(run, spec, label=f"{name} ({kind})")
            dec.predictions()
            probe, control, note = dec.saved_probe(run / "probe.nc", run / "probe_untrained.nc")
            return dec, probe, control, note

        def done(out):
            dec, probe, control, note = out
            what = (f"with its probe (probe.nc{' and the untrained control' if control is not None else ''})"
                    if probe is not None else (note or "no probe.nc beside it: run the probe in the Units view"))
            if probe is not None and note:
                what += f"; {note}"
            partial = partial_probe_note(probe) if probe is not None else ""
            if partial:  # (unitscope probe never writes one there now, earlier versions did)
                what += f"; its probe.nc was {partial}: Run probe in the Units view for a complete one"
            if (run / "mask.json").is_file():  # e.g. an unzipped "Checkpoint and mask" export
                what += "; a mask.json is beside it: load it in the Prune view (Mask file)"

            def show():
                self.busy = ""
                source = "" if probe is None else run_probe_source(name) + (
                    ", computed by other probing code" if note else "") + (
                    ", stopped before its end" if partial else "")  # said wherever the probe is named
                self.set_decoder(dec, probe=probe, control=control, probe_source=source, run=shown)
                self.alert(f"Opened {name}: {self._test_metric(dec)}; {what}.", "success")
            # [A] on the page's event loop, redrawn once it has loaded (see attach_document): a run
            # already open in another session opens at once, often while this page still loads
            self._in_doc(show)

        def failed(msg):
            def show():
                self.busy = ""
                self._run_failed(None)
            self._in_doc(show)

        self._start("open", work, on_done=done, on_error=failed)

    def _run_failed(self, message: str | None) -> None:
        """A run folder did not open: say why (``message``, unless already said), keep the
        decoder in use (the demo when there is none yet, e.g. a link to a run that is gone)."""
        if message:
            self.alert(message)
        self.run = self._run_shown  # the URL names what is shown
        if self.decoder is not None:
            self.status = self._decoder_status(self.decoder)  # (it said "Opening ..." meanwhile)
        elif self.busy != "loading":
            self.load_demo()

    @param.depends("run", watch=True)
    def _run_requested(self):
        """A run named by the URL (or set by a caller) opens; names already shown do nothing."""
        if self.run and self.run != self._run_shown:
            self.open_run(self.run)

    def save_probe_to_run(self) -> None:
        """Write the probe result beside the run folder shown (see
        :func:`dashboard.export.save_probe_beside_run`); says what it wrote, or why not."""
        from .export import save_probe_beside_run

        try:
            paths = save_probe_beside_run(self)
        except UnitScopeError as exc:
            self.alert(f"Probe not saved: {exc}")
            return
        self.probe_source = run_probe_source(paths[0].parent.name)
        self.alert(f"Saved {' and '.join(p.name for p in paths)} in {self.run}: the run opens with them.", "success")

    # ---- training --------------------------------------------------------------------------
    def _train_progress_cb(self, p: dict) -> None:
        now = time.monotonic()
        if "history" in p:
            self.train_history = list(p["history"])
        if "batch" in p:
            x = p["epoch"] + p["batch"] / max(p["n_batches"], 1)
            self._batches.append((x, float(p["train_loss"])))
        if "history" in p or now - self._last_push > self.live_interval:
            self._last_push = now
            self.param.update(train_progress=min(float(p.get("fraction", 0.0)), 1.0),
                              train_batches=list(self._batches))

    def train(self) -> None:
        """Build a decoder on the chosen data and train it in a worker thread."""
        from core.workspace import Workspace

        if self.running("training"):
            self.alert("Training is already running.", "warning")
            return
        try:
            spec = self.data_spec()
        except UnitScopeError as exc:
            self.alert(str(exc))
            return
        label = ("Demo reaching recording" + (f", {self.demo_ipsi:.0%} ipsilateral" if self.demo_ipsi else "")
                 if self.source == "demo" else self.recording_info["label"])
        config = self.train_config()
        kind = KIND_LABELS[self.model_kind]
        self._batches = []
        # this run, while it is the session's: a run discarded (back to the demo) changes nothing
        run = self._training = SimpleNamespace(kind=kind, max_epochs=config.max_epochs)
        self.param.update(busy="training", train_progress=0.0, train_history=[], train_batches=[], train_outcome="")

        def current() -> bool:
            return self._training is run

        def work(stop):
            def progress(p):
                if self._gone():  # the page went: its session's training stops
                    stop.set()
                elif current():
                    self._train_progress_cb(p)

            ws = Workspace.create(spec, config)
            result = ws.train(progress=progress, stop=stop)
            if not current() or self._gone():
                return None  # discarded: no decoder made, nothing measured
            dec = Decoder(ws, label=f"{label} ({kind})")
            dec.predictions()
            return dec, result

        def done(out):
            if out is None or not current():
                return
            self._training = None
            dec, result = out
            dec.batches = list(self._batches)
            dropped = self._dropped_with_decoder()
            self.busy = ""
            self.train_batches = list(self._batches)
            self.set_decoder(dec)
            how = "stopped" if result.stopped else "finished"
            n = len(result.history)
            why = (" (stopped by you)" if result.stopped else
                   f" (early stopping: the validation metric had not improved for {config.patience} epochs)"
                   if result.early_stopped else "")
            self.train_outcome = (f"Last run: {how} after {n} of at most {config.max_epochs} epochs{why}; "
                                  f"weights of epoch {result.best_epoch + 1} kept.")
            note = dec.chance_note()
            # a test block of one class measures nothing (core.cautions.ONE_CLASS), which is not
            # "learnt nothing" (unitscope info and the report say "not measured")
            self.alert(f"Training {how} after {n} epoch(s): {self._test_metric(dec)}"
                       + ("." if not note or note == ONE_CLASS else
                          ": the decoder has learnt nothing that holds on the test block."),
                       "warning" if note else "success")
            if dropped:  # [A] they went without a word: a probe run meanwhile, its pruning
                self.alert(f"The new decoder replaces {dropped[0]}: {'; '.join(dropped[1:])}.", "warning")

        def failed(message):
            if current():
                self._training = None
                self.param.update(busy="", train_outcome=f"Last run: failed ({message}).")

        self._start("training", work, on_done=done, on_error=failed)

    def _dropped_with_decoder(self) -> list[str]:
        """What the session computed for its decoder that a new decoder drops: ``[the decoder's
        name, phrase, ...]``, or [] when nothing of it would be lost (a shipped probe comes back
        with its decoder)."""
        dec = self.decoder
        if dec is None:
            return []
        out = []
        if self.running("probe") and self.probe_state == "running":
            out.append("the probe of the previous decoder was stopped (it was running)")
        elif self.probe is not None and self.probe_source == "run in this session":
            out.append("the probe you ran on it is dropped")
        prune = self._parts.get("prune")
        if prune is not None:
            n = sum(len(v) for v in getattr(prune, "pruned", {}).values())
            what = ([f"its pruning ({n} unit{'s' if n != 1 else ''} pruned)"] if n else []) + (
                ["its pruning curves"] if getattr(prune, "curves", None) is not None
                or getattr(prune, "curves_running", "") else []) + (
                ["its fine-tuned copy"] if getattr(prune, "finetuned", False) else [])
            if what:
                out.append(", ".join(what) + (" is" if len(what) == 1 else " are") + " dropped")
        if self.occlusions:
            out.append("its band-occlusion results are dropped")
        return [dec.label] + out if out else []

    def weights_files(self) -> list[str]:
        """State dict files under the data root (see :func:`dashboard.files.list_weights`)."""
        return list_weights(self.root)

    def import_weights(self, path: str) -> None:
        """Put weights trained elsewhere (a braindecode Deep4Net / ShallowFBCSPNet state dict,
        a file under the data root) into the decoder built for the chosen data and decoder
        kind, measure them and show that decoder (``unitscope import`` in the app;
        :meth:`core.workspace.Workspace.load_weights`)."""
        from core.training import TrainConfig
        from core.workspace import Workspace

        if self.busy in ("inspecting", "training", "opening", "importing"):
            self.alert(f"Wait until {self.busy} is done.", "warning")
            return
        try:
            full = resolve_in_root(self.root, path, what="weights file",
                                   choose="type its path, or press List files beside Use weights to pick one under the data root")
            if not full.is_file():
                raise UnitScopeError(f"{str(path)!r} is a folder; choose a weights file (a state dict: "
                                     f"{', '.join(WEIGHTS_SUFFIXES)}), or open a run folder above.")
            spec = self.data_spec()
        except UnitScopeError as exc:
            self.alert(str(exc))
            return
        label = "Demo reaching recording" if self.source == "demo" else self.recording_info["label"]
        config = TrainConfig(model=self.model_kind)
        kind = KIND_LABELS[self.model_kind]
        self.busy = "importing"

        def work(stop):
            ws = Workspace.create(spec, config)
            ws.load_weights(full)
            dec = Decoder(ws, label=f"{label} ({kind}, weights of {full.name})")
            dec.predictions()
            return dec

        def done(dec):
            self.busy = ""
            self.set_decoder(dec)
            self.alert(f"The weights of {full.name} in a {kind} decoder: {self._test_metric(dec)}.",
                       "warning" if dec.chance_note() else "success")

        self._start("import", work, on_done=done, on_error=lambda m: setattr(self, "busy", ""))

    def stop_training(self) -> None:
        job = self._jobs.get("training")
        if job is not None and job.running:
            job.stop()

    # ---- probing ---------------------------------------------------------------------------
    def run_probe(self, *, config=None, control: bool | None = None) -> None:
        """Probe the decoder (and then an untrained twin) in a worker thread; resumes a stopped run."""
        dec = self.decoder
        if dec is None:
            self.alert("No decoder yet: load the demo or train one first.")
            return
        if self.running("probe"):
            self.alert("The probe is already running.", "warning")
            return
        from core.probing.pipeline import ProbeConfig, start_probe, untrained_twin
        import copy

        try:  # (bands within the run's band-pass, where it has one: Workspace.probe_bands)
            cfg = config or ProbeConfig(n_iterations=int(self.probe_iterations), site=self.probe_site,
                                        bands=dec.ws.probe_bands())
        except UnitScopeError as exc:
            self.alert(str(exc))
            return
        control = self.probe_control if control is None else control
        run0 = self._probe_run
        resume = run0 if (run0 is not None and self._probe_run_decoder is dec and not run0.finished
                          and self.probe_state == "stopped" and self.probe is not None
                          and self.probe.attrs.get("site", "conv") == cfg.site) else None
        self.probe_state = "running"
        if resume is None:
            self.param.update(probe=None, control=None, probe_progress=0.0, probe_source="run in this session")

        def work(stop):
            run = resume
            if run is None:
                X, y = dec.probe_inputs()
                model = copy.deepcopy(dec.ws.model).eval()  # hooks never touch a shared model
                run = start_probe(model, X, sfreq=dec.sfreq, config=cfg, y=y, task=dec.task, ch_names=dec.ch_names)
                self._probe_run, self._probe_run_decoder = run, dec
            share = 0.7 if control else 1.0  # [A] the control takes the rest of the bar
            last = [0.0]

            def progress(frac):
                if stop.is_set():
                    run.stop()
                now = time.monotonic()
                if dec is not self.decoder or self._gone():  # (the page went: nothing is drawn)
                    run.stop()
                    return
                if now - last[0] > self.probe_interval or frac >= 1:
                    last[0] = now
                    self._set_for(dec, probe_progress=share * frac, probe=self._kept(run))
                else:
                    self._set_for(dec, probe_progress=share * frac)

            run.run(progress=progress)
            if not self._set_for(dec, probe=self._kept(run)):
                return None
            if not run.finished:
                return "stopped"
            if control and not stop.is_set():
                twin = untrained_twin(dec.ws.model)
                X, y = dec.probe_inputs()
                crun = start_probe(twin, X, sfreq=dec.sfreq, config=cfg, y=y, task=dec.task, ch_names=dec.ch_names)
                self._control_run = crun

                def cprogress(frac):
                    if stop.is_set() or dec is not self.decoder or self._gone():
                        crun.stop()
                        return
                    self._set_for(dec, probe_progress=share + (1 - share) * frac)

                crun.run(progress=cprogress)
                if crun.finished:
                    self._set_for(dec, control=self._kept(crun))
            return "done"  # the decoder's probe is complete (a stopped control is simply absent)

        def done(state):
            if state is not None:
                self._set_for(dec, probe_state=state, **({"probe_progress": 1.0} if state == "done" else {}))

        self._start("probe", work, on_done=done, on_error=lambda m: self._set_for(dec, probe_state="error"))

    def _kept(self, run):
        """A probe run's result as the session keeps it: maps in 1 Hz bins when the full maps
        would pass :attr:`probe_maps_limit_mb` (``attrs["maps_binned_hz"]`` says so; made
        without the full maps in memory), else as computed."""
        from core.probing.pipeline import finish, maps_mb

        return finish(run, map_bin=1.0 if maps_mb(run) > self.probe_maps_limit_mb else None)

    def stop_probe(self) -> None:
        job = self._jobs.get("probe")
        if job is not None and job.running:
            job.stop()
        if self._probe_run is not None:
            self._probe_run.stop()

    # ---- band occlusion ------------------------------------------------------------------
    def occlusion_presets(self) -> dict:
        """``{role: (channel names, (lo, hi) Hz)}`` from the decoder's channel roles (the demo);
        empty for recordings without roles."""
        from core.probing.validity import role_cases

        dec = self.decoder
        if dec is None:
            return {}
        names = dec.ch_names
        return {role: ([names[i] for i in idx], band)
                for role, (idx, band) in role_cases(dec.ws.recording.signals).items()}

    def occlude(self, cases: dict) -> None:
        """Re-measure the test block with bands removed from channels, in a worker thread.

        ``cases``: ``{label: (channel names, (lo, hi) Hz or None for the whole channels)}``.
        Each result is put first in :attr:`occlusions`: label, channels, band, metric without
        the band, reference metric and the drop. Bad input is an alert; nothing is lost.
        """
        from core.probing.validity import band_occlusions, named_cases

        from .queue import work_queue

        dec = self.decoder
        if dec is None:
            self.alert("No decoder yet: load the demo or train one first.")
            return
        if self.running("occlusion"):
            self.alert("A band occlusion is already running.", "warning")
            return
        try:
            idx_cases = named_cases(dec.ch_names, cases)
        except UnitScopeError as exc:
            self.alert(f"Band occlusion: {exc}")
            return
        self.occluding = True

        def work(stop):
            with work_queue().slot(kind="long", label="band occlusion", owner=self, stop=stop):
                X, y = dec.ws.eval_set("test")
                return band_occlusions(dec.ws.model, X, y, sfreq=dec.sfreq, cases=idx_cases, task=dec.task)

        def done(out):
            self.occluding = False
            occluded, reference = out
            rows = [dict(label=label, channels=list(cases[label][0]), band=cases[label][1], metric=occluded[label],
                         reference=reference, drop=reference - occluded[label]) for label in cases]
            with self._decoder_lock:  # (another decoder set meanwhile: its list stays empty)
                self._set_for(dec, occlusions=(rows + self.occlusions)[:12])

        self._start("occlusion", work, on_done=done, on_error=lambda m: setattr(self, "occluding", False))

    _probe_run_decoder = None
    _control_run = None
    _activations_of = None  # the decoder whose most-activating windows the "activations" job computes

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
