"""Pruning state of one browser session.

The per-decoder data all sessions share (evaluation set, pristine evaluator, ablation
effects, pruning curves) live in :mod:`dashboard.prune_shared`.

:class:`PruneState` (one per session, no Panel code) holds that session's
:class:`core.pruning.MaskSet`, an undo stack, the held-out metric before and after, and an
optional fine-tuned copy. The shared decoder is never modified: masks act through the
session's own evaluator, which *forks* the pristine one (it shares the cached activations
of the unpruned network and only stores what its own mask changes), and a fine-tune works
on a copy made on the first fine-tune only [A], so an extra session costs little memory.

All computing runs in worker threads (:class:`dashboard.jobs.Job` via the session) that
first take a slot of the process-wide :func:`dashboard.queue.work_queue`.
"""
from __future__ import annotations

import logging
import threading
import time

import numpy as np
import param

from core._validation import UnitScopeError, check_option, suggest

from .prune_shared import CURVE_REPEATS, SharedPruning, shared_pruning
from .queue import Cancelled, work_queue
from .state import Session

__all__ = ["PruneState", "SharedPruning", "shared_pruning", "FINETUNE_STATES", "CURVE_REPEATS"]

logger = logging.getLogger(__name__)

FINETUNE_STATES = ("none", "queued", "running", "done", "stopped", "error")


def _pruned_dict(masks) -> dict:
    """layer -> pruned unit indices of a MaskSet (layers with none left out), as ``pruned``."""
    return {k: masks.pruned(k).tolist() for k in masks.layers if len(masks.pruned(k))}


def _normal(pruned: dict) -> dict:
    return {k: sorted(int(i) for i in v) for k, v in pruned.items() if len(v)}


class PruneState(param.Parameterized):
    """One session's pruning: mask, undo, metric before/after, fine-tune, curves, effects."""

    session = param.ClassSelector(class_=Session, doc="The session this state belongs to.")
    ready = param.Boolean(default=False, doc="The evaluator of the session's decoder is built.")
    metric_name = param.String(default="", doc="Held-out metric: pearson_r or balanced_accuracy.")
    metric_base = param.Number(default=float("nan"), doc="Held-out metric with nothing pruned (shared decoder).")
    metric = param.Number(default=float("nan"), doc="Held-out metric with the session's mask (and fine-tune).")
    metric_previous = param.Number(default=float("nan"), doc="The metric before the last change of the mask.")
    measuring = param.Boolean(default=False, doc="A re-measurement is queued or running.")
    queue_position = param.Integer(default=0, bounds=(0, None), doc="Place in the server's work queue (0: running).")
    pruned = param.Dict(default={}, doc="Masked unit indices per layer (a mirror of the MaskSet).")
    mask_version = param.Integer(default=0, doc="Bumped after every change of the mask.")
    measured_version = param.Integer(default=0, doc="Mask version the metric belongs to.")
    n_undo = param.Integer(default=0, bounds=(0, None), doc="Steps that can be undone.")
    last_change = param.String(default="", doc="What the last edit did (shown beside the metric).")

    effects = param.Parameter(default=None, doc="Single-unit ablation drop of the layer shown (DataArray) or None.")
    effects_layer = param.String(default="", doc="Layer the effects belong to.")
    effects_progress = param.Number(default=0.0, bounds=(0, 1))
    curves = param.Parameter(default=None, doc="Pruning curves (Dataset) of the layer shown, or None.")
    curves_layer = param.String(default="")
    curves_progress = param.Number(default=0.0, bounds=(0, 1))
    effects_running = param.String(default="", doc="Layer whose ablation effects this session is computing, "
                                                     "or \"\" (one computation at a time; Stop cancels it).")
    curves_running = param.String(default="", doc="Layer whose pruning curves this session is computing, or \"\".")
    curves_by = param.Selector(default="either", objects=["either", "amplitude", "phase", "ablation"],
                               doc="Ranking of the curves and the top-k selection: probe sensitivity (either, "
                                   "amplitude, phase) or each unit's own ablation drop (an importance ranking "
                                   "measured on the test block: what sensitivity is compared with).")

    finetune_state = param.Selector(default="none", objects=list(FINETUNE_STATES), doc="Fine-tune job state.")
    finetune_progress = param.Number(default=0.0, bounds=(0, 1))
    finetune_epochs = param.Integer(default=1, bounds=(1, 10), doc="Fine-tune passes over the training windows.")
    finetune_result = param.Dict(default={}, doc="before / after / history of the last fine-tune.")
    finetuned = param.Boolean(default=False, doc="The session measures its own fine-tuned copy.")

    def __init__(self, **params):
        super().__init__(**params)
        self._lock = threading.Lock()
        self._claim_lock = threading.RLock()  # claims effects_running / curves_running
        self._decoder = None
        self._shared: SharedPruning | None = None
        self._ev = None
        self._masks = None
        self._undo: list = []
        self._model = None  # the fine-tuned copy (None: the shared decoder)
        self._busy = False  # a measuring job is looping
        self.timing: dict = {}  # where the last re-measurement's time went (ms; debug log, benchmark)
        self._active = False  # the evaluator is prepared once the Prune view has been shown
        self.session.param.watch(self._decoder_changed, "decoder_version")
        self._decoder_changed()

    # ---- decoder ---------------------------------------------------------------------
    def _decoder_changed(self, *_):
        dec = self.session.decoder
        if dec is self._decoder:
            return
        with self._lock:
            self._decoder, self._ev, self._masks, self._undo, self._model = dec, None, None, [], None
            self._shared = shared_pruning(dec) if dec is not None else None
        for name in ("prune-effects", "prune-curves"):  # of the previous decoder: of no use to this session now
            self._stop_job(name)
        self.param.update(ready=False, effects_running="", curves_running="", effects_progress=0.0,
                          curves_progress=0.0, metric_base=float("nan"), metric=float("nan"), metric_previous=float("nan"),
                          pruned={}, n_undo=0, effects=None, effects_layer="", curves=None, curves_layer="",
                          finetune_state="none", finetune_result={}, finetuned=False, last_change="",
                          metric_name="" if dec is None else ("pearson_r" if dec.task == "regression" else "balanced_accuracy"))
        if dec is not None and self._active:
            self._run("prune-prepare", self._prepare)

    def activate(self) -> None:
        """Prepare the session's evaluator (first time on a server: about a second) [A].

        Called when the Prune view is shown (or by tests): sessions that never prune cost
        nothing, and the app's cold start is not slowed down.
        """
        self._active = True
        if self._decoder is not None and self._ev is None and not self.session.running("prune-prepare"):
            self._run("prune-prepare", self._prepare)

    def _prepare(self, stop):
        dec = self._decoder
        shared = self._shared
        with work_queue().slot(kind="interactive", label="prepare pruning", stop=stop,
                               on_position=self._position):
            ev = shared.fork()
            # [A] the buffers the session's first prune would allocate, made now (while the view
            # opens) so that the first prune is updated in place and as quick as the next ones
            ev.reserve()
        with self._lock:
            if dec is not self._decoder:
                return
            if self._ev is None:
                self._ev, self._masks = ev, ev.new_masks()
        self.param.update(ready=True, metric_base=ev.baseline, metric=ev.baseline, metric_previous=ev.baseline,
                          measured_version=self.mask_version)

    @property
    def shared(self) -> SharedPruning | None:
        return self._shared

    @property
    def decoder(self):
        """The decoder this state's mask and evaluator belong to (it follows the session's
        decoder when the session announces a new one, ``decoder_version``)."""
        return self._decoder

    def chance_note(self) -> str:
        """What the unpruned test metric means when it is no better than chance, else ""
        (:meth:`dashboard.decoder.Decoder.chance_note`)."""
        dec = self._decoder
        return dec.chance_note() if dec is not None and self.ready else ""

    @property
    def model(self):
        """The model this session measures: its fine-tuned copy, or the shared decoder's (read-only)."""
        if self._model is not None:
            return self._model
        return None if self._decoder is None else self._decoder.ws.model

    def predictions(self, masks=None):
        """Held-out predictions of the session's decoder with ``masks`` (default: its own mask).

        Returns
        -------
        pred : ndarray, shape (n_windows, n_preds) (regression) or (n_trials, n_classes)
        """
        self._require()
        with self._lock:
            ev, masks = self._ev, (self._masks.copy() if masks is None else masks)
        return ev.predict(masks)

    def masks(self):
        """A copy of the session's MaskSet (None before the evaluator is ready)."""
        with self._lock:
            return None if self._masks is None else self._masks.copy()

    JOBS = ("prune-prepare", "prune-measure", "prune-effects", "prune-curves", "finetune")

    def join(self, timeout: float = 120.0) -> bool:
        """Wait for this state's worker threads (tests, benchmark); True when all have ended."""
        deadline = time.monotonic() + timeout
        while True:
            jobs = [self.session._jobs.get(n) for n in self.JOBS]
            running = [j for j in jobs if j is not None and j.running]
            if not running:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            running[0].join(left)

    # ---- jobs ------------------------------------------------------------------------
    def _run(self, name, fn, **kw):
        """Start ``fn(stop)`` as a session job; a request withdrawn from the queue returns None."""
        def work(stop):
            try:
                return fn(stop)
            except Cancelled:
                return None

        return self.session._start(name, work, **kw)

    def _position(self, pos: int) -> None:
        self.queue_position = int(pos)

    POSITION_EVERY = 0.25  # s between two queue positions shown for a re-measurement [A]

    def _measure_position(self):
        """A queue-position listener for one re-measurement that shows its place in line at once,
        then at most every ``POSITION_EVERY`` seconds. [A] Five sessions pruning together made
        up to ten position changes per round, each a render and a message to a browser on the
        same two cores; the metric that follows within a second resets the position anyway."""
        last = [None]

        def cb(pos: int) -> None:
            now = time.monotonic()
            if last[0] is None or now - last[0] >= self.POSITION_EVERY:
                last[0] = now
                self.queue_position = int(pos)

        return cb

    # ---- editing the mask ------------------------------------------------------------
    def _require(self):
        if self._masks is None and self._decoder is not None:
            self.activate()  # an edit before the view prepared the evaluator waits for it (once)
            job = self.session._jobs.get("prune-prepare")
            if job is not None:
                job.join(60)
        if self._masks is None:
            if self._decoder is None:
                raise UnitScopeError(self.session.no_decoder_note())
            raise UnitScopeError("The pruning evaluator is still being prepared; try again in a moment.")

    def _layers(self) -> list[str]:
        return [] if self._masks is None else self._masks.layers

    def _check_layer(self, layer: str) -> str:
        names = self._layers()
        if layer not in names:
            extra = " The output layer cannot be pruned." if layer == "conv_classifier" else ""
            raise UnitScopeError(f"Layer {layer!r} cannot be pruned; the prunable layers are {names}.{extra}"
                                 f"{suggest(layer, names)}")
        return layer

    def _edit(self, fn, text: str) -> bool:
        """Apply ``fn(masks)`` to a copy, push the old mask on the undo stack, re-measure."""
        try:
            self._require()
            with self._lock:
                new = self._masks.copy()
                fn(new)
                if new == self._masks:
                    return False
                self._undo.append(self._masks)
                self._masks = new
                version = self.mask_version + 1
                self._t_edit = time.perf_counter()
            self._publish(version, text)
        except UnitScopeError as exc:
            self.session.alert(str(exc))
            return False
        return True

    def _publish(self, version: int, text: str) -> None:
        self.param.update(pruned=_pruned_dict(self._masks),
                          n_undo=len(self._undo), mask_version=version, last_change=text,
                          metric_previous=self.metric, measuring=True)
        self._measure()

    def toggle(self, layer: str, unit: int) -> bool:
        """Prune ``unit`` of ``layer``, or restore it if it is pruned."""
        was = self._masks is not None and layer in self._layers() and unit in self.pruned.get(layer, [])
        return self._edit(lambda m: m.toggle(self._check_layer(layer), int(unit)),
                          f"{'restored' if was else 'pruned'} {layer}/{unit}")

    def prune(self, layer: str, units) -> bool:
        units = [int(u) for u in np.atleast_1d(units)]
        return self._edit(lambda m: m.prune(self._check_layer(layer), units),
                          f"pruned {len(units)} unit(s) of {layer}")

    def restore(self, layer: str, units) -> bool:
        units = [int(u) for u in np.atleast_1d(units)]
        return self._edit(lambda m: m.restore(self._check_layer(layer), units),
                          f"restored {len(units)} unit(s) of {layer}")

    def prune_layer(self, layer: str) -> bool:
        """Prune every unit of ``layer`` (the metric is still reported, often undefined)."""
        return self._edit(lambda m: m.prune(self._check_layer(layer), range(len(m.keep(layer)))),
                          f"pruned every unit of {layer}")

    def class_units(self, layer: str, cls: str) -> list[int]:
        """Units of ``layer`` the session's probe puts in class ``cls``."""
        from core.probing import CLASSES

        check_option("class", cls, CLASSES)
        probe = self.session.probe
        if probe is None or "unit_class_all" not in probe:
            raise UnitScopeError("Pruning by class needs the probe's unit classes: run the probe (Units view) first.")
        sel = probe["layer"].values == layer
        idx = probe["index"].values[sel]
        return sorted(int(i) for i in idx[probe["unit_class_all"].values[sel] == cls])

    def prune_class(self, layer: str, cls: str) -> bool:
        try:
            units = self.class_units(self._check_layer(layer), cls)
        except UnitScopeError as exc:
            self.session.alert(str(exc))
            return False
        if not units:
            self.session.alert(f"No unit of {layer} is in the class {cls!r}.", "info")
            return False
        return self._edit(lambda m: m.prune(layer, units), f"pruned the {len(units)} {cls} unit(s) of {layer}")

    def top_units(self, layer: str, k: int, *, by: str | None = None) -> list[int]:
        """The ``k`` most sensitive units of ``layer`` (probe sensitivity, or the ablation drop)."""
        from core.pruning import select_scores, sensitivity_order

        n = len(self._masks.keep(layer))
        if k < 1:
            raise UnitScopeError(f"{k=} must be at least 1.")
        k = min(int(k), n)
        probe = self.session.probe
        sizes = {layer: n}
        by = by or self.curves_by
        if by != "ablation" and probe is not None and "amp_stat_all" in probe:
            scores, _ = select_scores(sizes, amplitude=probe["amp_stat_all"], phase=probe["phase_stat_all"], by=by)
        elif self.effects is not None and self.effects_layer == layer:
            scores, _ = select_scores(sizes, scores=self.effects)
        else:
            raise UnitScopeError(f"Ranking by ablation needs the ablation effects of {layer}: Compute ablation effects "
                                 "first." if by == "ablation" else
                                 "Ranking units needs the probe (Units view) or the ablation effects of this layer.")
        return [int(i) for i in sensitivity_order(scores[layer])[:k]]

    def prune_top(self, layer: str, k: int, *, by: str | None = None) -> bool:
        try:
            units = self.top_units(self._check_layer(layer), k, by=by)
        except UnitScopeError as exc:
            self.session.alert(str(exc))
            return False
        what = "most important (ablation)" if (by or self.curves_by) == "ablation" else "most sensitive"
        return self._edit(lambda m: m.prune(layer, units), f"pruned the {len(units)} {what} unit(s) of {layer}")

    def undo(self) -> bool:
        with self._lock:
            if not self._undo:
                return False
            self._masks = self._undo.pop()
            version = self.mask_version + 1
        self._publish(version, "undo")
        return True

    def reset(self) -> bool:
        """Restore every unit (undoable); a fine-tuned copy is discarded too."""
        if self._model is not None:
            self.discard_finetune()
        return self._edit(lambda m: m.restore(), "reset: every unit restored")

    def load_mask(self, text: str | bytes) -> bool:
        """Replace the mask by one saved as JSON; refused if it belongs to another model."""
        from core.pruning import MaskSet

        try:
            self._require()
            if isinstance(text, bytes):
                text = text.decode("utf-8", errors="replace")
            loaded = MaskSet.from_json(text, model=self._decoder.ws.model)
        except UnitScopeError as exc:
            self.session.alert(f"Mask not loaded: {exc}")
            return False
        return self._edit(lambda m: m.restore().prune_many({k: loaded.pruned(k) for k in loaded.layers}),
                          f"loaded a mask pruning {loaded.n_pruned} unit(s)")

    def mask_json(self) -> str:
        self._require()
        return self.masks().to_json()

    # ---- measuring -------------------------------------------------------------------
    def _measure(self) -> None:
        with self._lock:
            if self._busy:
                return  # the running job loops until it has measured the latest mask
            self._busy = True
        self.measuring = True

        def work(stop):
            try:
                while True:
                    t_job = time.perf_counter()
                    with work_queue().slot(kind="interactive", label="prune re-measure", owner=self, stop=stop,
                                           on_position=self._measure_position()):
                        t_slot = time.perf_counter()
                        while True:
                            with self._lock:
                                masks, version, ev = self._masks.copy(), self.mask_version, self._ev
                            value = ev.evaluate(masks)
                            t_eval = time.perf_counter()
                            with self._lock:
                                if version == self.mask_version and ev is self._ev:
                                    break
                    t0 = getattr(self, "_t_edit", t_job)
                    self.timing = {"version": version, "edit_to_job_ms": 1e3 * (t_job - t0),
                                   "queue_ms": 1e3 * (t_slot - t_job), "evaluate_ms": 1e3 * (t_eval - t_slot),
                                   "measured_at": t_eval}
                    logger.debug("prune re-measure v%d: %s", version, self.timing)
                    if version >= self.measured_version:  # a newer job may have published already
                        self.param.update(metric=float(value), measured_version=version,
                                          measuring=version != self.mask_version, queue_position=0)
                    # published first, then _busy cleared: a change made meanwhile (even by a
                    # watcher of the metric) is measured by the next turn of this loop
                    with self._lock:
                        if version == self.mask_version and ev is self._ev:
                            self._busy = False
                            return
            except BaseException:
                with self._lock:
                    self._busy = False
                self.param.update(measuring=False, queue_position=0)
                raise

        def failed(msg):
            self.measuring = False

        # a "prune-measure" job still running has left its loop (it cleared _busy): let it end
        if self._run("prune-measure", work, on_error=failed, finishing=True) is None:
            with self._lock:
                self._busy = False
            self.measuring = False

    # ---- shared analyses ---------------------------------------------------------------
    _ANALYSES = {"effects": "ablation effects", "curves": "pruning curves"}  # flag prefix -> words

    def _claim(self, kind: str, layer: str) -> bool:
        """Mark ``kind``'s computation ("effects" or "curves") as running for ``layer``, or, while
        one runs, say why this request is refused (never dropped silently); True when claimed."""
        flag, what = f"{kind}_running", self._ANALYSES[kind]
        with self._claim_lock:  # (its own lock: watchers of the flag may take self._lock)
            running = getattr(self, flag)
            if not running:
                setattr(self, flag, layer)
        if not running:
            return True
        if running == layer:
            self.session.alert(f"The {what} of {layer} are already being computed: they appear when done.", "info")
        else:
            self.session.alert(f"The {what} of {running} are being computed: wait for them (or press Stop) before "
                               f"computing those of {layer}.", "info")
        return False

    def _stop_job(self, name: str) -> None:
        """Cancel this session's job ``name`` (cooperative: at its next step)."""
        job = self.session._jobs.get(name)
        if job is not None and job.running:
            job.stop()

    def compute_effects(self, layer: str | None = None) -> bool:
        """Single-unit ablation drop of ``layer`` (default the session's layer), in a thread.

        One computation at a time per session: while one runs (:attr:`effects_running`), a request
        for another layer is refused with an alert saying why (the view disables its button), never
        dropped silently. Effects some session already computed are shown at once. Returns whether
        the effects were shown or their computation started.
        """
        layer = layer or self.session.layer
        if self._shared is None or layer not in self._layers():
            return False
        shared = self._shared
        if ("ablation", layer) in shared.cache:
            self.param.update(effects=shared.cache[("ablation", layer)], effects_layer=layer, effects_progress=1.0)
            return True
        if not self._claim("effects", layer):
            return False
        self.param.update(effects=None, effects_layer=layer, effects_progress=0.0)

        def work(stop):
            drop = shared.ablation(layer, stop=stop, on_progress=self._effects_progress)
            return None if stop.is_set() else drop  # stopped: an incomplete result is not shown

        def done(drop):
            if shared is not self._shared:
                return  # another decoder since (its change cleared the running state)
            if drop is None:
                self.param.update(effects_running="", effects_progress=0.0)
                self.session.alert(f"Stopped: the ablation effects of {layer} were not computed.", "info")
                return
            # shown unless the session has shown another layer's effects since (served from the cache)
            show = self.effects_layer == layer or self.session.layer == layer
            self.param.update(effects_running="", effects_progress=1.0,
                              **({"effects": drop, "effects_layer": layer} if show else {}))

        def failed(msg):
            if shared is self._shared:
                self.param.update(effects_running="", effects_progress=0.0)

        # a job that has just cleared effects_running is only returning: waited for, not refused
        if self._run("prune-effects", work, on_done=done, on_error=failed, finishing=True) is None:
            self.param.update(effects_running="", effects_progress=0.0)
            return False
        return True

    def stop_effects(self) -> None:
        """Cancel the ablation effects being computed (cooperative: within one unit's ablation)."""
        self._stop_job("prune-effects")

    def _effects_progress(self, p: dict) -> None:
        if "fraction" in p:
            self.effects_progress = float(p["fraction"])

    def compute_curves(self, layer: str | None = None) -> bool:
        """Pruning curves of ``layer`` (default the session's layer), in a thread.

        One computation at a time per session, as :meth:`compute_effects`: a request while
        :attr:`curves_running` is refused with an alert saying why. Returns whether the
        computation started.
        """
        layer = layer or self.session.layer
        if self._shared is None or layer not in self._layers():
            return False
        if not self._claim("curves", layer):
            return False
        shared, probe, by = self._shared, self.session.probe, self.curves_by
        self.param.update(curves=None, curves_layer=layer, curves_progress=0.0)

        def work(stop):
            ds = shared.curves(layer, probe, by=by, stop=stop, on_progress=self._curves_progress)
            return None if stop.is_set() else ds  # stopped: an incomplete curve is not shown

        def done(ds):
            if shared is not self._shared:
                return
            if ds is None:
                self.param.update(curves_running="", curves_progress=0.0)
                self.session.alert(f"Stopped: the pruning curves of {layer} were not computed.", "info")
                return
            self.param.update(curves=ds, curves_layer=layer, curves_progress=1.0, curves_running="")
            if ("ablation", layer) in shared.cache and self.session.layer == layer:
                self.compute_effects(layer)  # ranked by ablation: the drops were measured, so the bars show them

        def failed(msg):
            if shared is self._shared:
                self.param.update(curves_running="", curves_progress=0.0)

        if self._run("prune-curves", work, on_done=done, on_error=failed, finishing=True) is None:
            self.param.update(curves_running="", curves_progress=0.0)
            return False
        return True

    def stop_curves(self) -> None:
        """Cancel the pruning curves being computed (cooperative: within one step of a curve)."""
        self._stop_job("prune-curves")

    def _curves_progress(self, p: dict) -> None:
        if "fraction" in p:
            self.curves_progress = float(p["fraction"])

    # ---- fine-tune -------------------------------------------------------------------
    def start_finetune(self) -> None:
        """Short masked fine-tune of a copy (the shared decoder is never touched), in a thread."""
        from core.pruning import FinetuneConfig, MaskEvaluator, finetune

        try:
            self._require()
        except UnitScopeError as exc:
            self.session.alert(str(exc))
            return
        if self.session.running("finetune"):
            self.session.alert("A fine-tune is already running.", "warning")
            return
        dec, masks, base_model = self._decoder, self.masks(), self.model
        config = FinetuneConfig(n_epochs=int(self.finetune_epochs))
        self.param.update(finetune_state="queued", finetune_progress=0.0, finetune_result={})

        def progress(p):
            self.finetune_progress = min(float(p.get("fraction", 0.0)), 1.0)

        def work(stop):
            with work_queue().slot(kind="long", label="fine-tune", owner=self, stop=stop, on_position=self._position):
                self.finetune_state = "running"
                X, y = dec.ws.eval_set("train")
                Xt, yt = self._shared.eval_set()
                res = finetune(base_model, X, y, masks=masks, task=dec.task, config=config, X_eval=Xt, y_eval=yt,
                               progress=progress, cancel=stop)
                ev = MaskEvaluator(res.model, Xt, yt, task=dec.task, masks=masks)
            return res, ev

        def done(out):
            if out is None:
                self.param.update(finetune_state="stopped", queue_position=0)
                return
            res, ev = out
            if dec is not self._decoder:
                return
            with self._lock:
                self._model, self._ev = res.model, ev
            self.param.update(
                finetune_state="stopped" if res.cancelled else "done", finetune_progress=1.0, finetuned=True,
                finetune_result={"before": float(res.before), "after": float(res.after), "history": list(res.history),
                                 "n_steps": int(res.n_steps), "seconds": float(res.seconds),
                                 "unpruned": float(self.metric_base), "n_pruned": int(masks.n_pruned),
                                 # the mask it was made with: the session's may change while it runs
                                 "pruned": _pruned_dict(masks)},
                metric_previous=self.metric, last_change="fine-tuned", queue_position=0,
                mask_version=self.mask_version + 1)
            self._measure()

        def failed(msg):
            self.finetune_state = "stopped" if "cancelled" in msg else "error"

        self._run("finetune", work, on_done=done, on_error=failed)

    def finetune_mask_changed(self) -> bool:
        """Whether the session's mask differs from the one its last fine-tune was made with
        (units pruned or restored while it ran, or since): its before/after numbers are then
        those of the earlier mask, while the metric shown is the copy's with the current mask."""
        r = self.finetune_result
        if not r or "pruned" not in r:
            return False
        return _normal(r["pruned"]) != _normal(self.pruned)

    def stop_finetune(self) -> None:
        job = self.session._jobs.get("finetune")
        if job is not None and job.running:
            job.stop()

    def discard_finetune(self) -> None:
        """Measure the shared decoder again (the fine-tuned copy is dropped)."""
        if self._model is None or self._shared is None:
            return
        with self._lock:
            self._model, self._ev = None, self._shared.fork()
        self.param.update(finetuned=False, finetune_state="none", finetune_result={},
                          last_change="fine-tune discarded", metric_previous=self.metric,
                          mask_version=self.mask_version + 1)
        self._measure()
