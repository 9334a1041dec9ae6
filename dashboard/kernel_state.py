"""DUNL kernels of one session (decoder output and selected unit), refit after every prune.

:class:`SharedKernels` (one per trained decoder, process-wide) binds a
:class:`core.deconv.apply.EventDeconvolution` to a private copy of the decoder, so the
temporary mask hooks of a refit never touch the model other sessions read. It caches the
kernels of the unpruned network per signal (every session starts from them) and its
activation cache; refits of different sessions take turns on it (a lock).

:class:`KernelState` (one per session, no Panel code) tracks the kernels of the decoder
output and of the selected unit. Once the Kernels view has asked for them, every change of
the session's mask (or a fine-tune) refits them warm-started from the unpruned kernels [A]
(a signal the change cannot reach keeps its unpruned kernels), and the kernels shown before
the change are kept as ``*_previous`` so a view can draw them faintly.
"""
from __future__ import annotations

import copy
import logging
import threading
import time

import numpy as np
import param

from core._validation import UnitScopeError

from .decoder import PerDecoder
from .prune_state import PruneState
from .queue import Cancelled, work_queue
from .state import Session

__all__ = ["KernelState", "SharedKernels", "shared_kernels", "KERNEL_STATES"]

logger = logging.getLogger(__name__)
KERNEL_STATES = ("idle", "fitting", "refitting", "ready", "error")
BLOCK = "test"  # the block deconvolved: the held-out block the pruning metric is measured on [A]


class SharedKernels:
    """Per decoder: the deconvolution engine on a private model copy and the unpruned fits.

    Parameters
    ----------
    decoder : dashboard.decoder.Decoder
    """

    def __init__(self, decoder):
        self.decoder = decoder
        self._lock = threading.Lock()       # guards the engine (hooks, activation cache)
        self._keys_lock = threading.Lock()
        self._keys: dict = {}
        self._engine = None
        self.fits: dict = {}                 # signal -> Dataset of the unpruned network

    def _check(self, signal: str = "output") -> None:
        """Output and unit kernels need a dense decoder; a channel's envelope (the input) does not."""
        if not signal.startswith("channel:") and self.decoder.ws.task != "regression":
            raise UnitScopeError("Kernels need a decoder of a continuous target (dense output); this decoder "
                                 "classifies trials.")

    def _make_engine(self, model):
        from core.deconv.apply import EventDeconvolution

        ws = self.decoder.ws
        return EventDeconvolution(model, ws.recording, block=BLOCK, blocks=ws.blocks)

    def engine(self, signal: str = "output"):
        self._check(signal)
        with self._keys_lock:
            if self._engine is None:
                self._engine = self._make_engine(copy.deepcopy(self.decoder.ws.model).eval())
            return self._engine

    def private_engine(self, model):
        """An engine bound to a session's own (fine-tuned) model."""
        self._check()
        return self._make_engine(model)

    def _acquire(self, lock, stop):
        while not lock.acquire(timeout=0.2):
            if stop is not None and stop.is_set():
                raise Cancelled("kernel fit cancelled.")

    def initial(self, signal: str, *, stop=None, on_position=None):
        """Kernels of ``signal`` for the unpruned decoder (fitted once per process)."""
        with self._keys_lock:
            key_lock = self._keys.setdefault(signal, threading.Lock())
        self._acquire(key_lock, stop)
        try:
            if signal not in self.fits:
                engine = self.engine(signal)
                if signal == "output":  # the decoder's own predictions (see output_series)
                    from .prune_state import shared_pruning

                    pred = shared_pruning(self.decoder).evaluator().predict()
                    with work_queue().slot(kind="long", label="kernels of output", stop=stop,
                                           on_position=on_position):
                        self.fits[signal] = engine.fit_values(output_series(self.decoder, pred), signal="output")
                else:
                    self._acquire(self._lock, stop)
                    try:
                        with work_queue().slot(kind="long", label=f"kernels of {signal}", stop=stop,
                                               on_position=on_position):
                            self.fits[signal] = engine.run(signal)
                    finally:
                        self._lock.release()
            return self.fits[signal]
        finally:
            key_lock.release()

    def refit_output(self, pred, masks, *, stop=None, on_position=None):
        """Output kernels for predictions ``pred`` of a pruned (or fine-tuned) decoder, warm-started.

        [A] The decoder output of a pruned network is the pruning evaluator's own prediction
        (already computed by the re-measurement, identical to a forward pass within float
        tolerance), so a refit costs only the fit
        (:meth:`core.deconv.apply.EventDeconvolution.refit_values`).
        """
        initial = self.initial("output", stop=stop, on_position=on_position)
        engine = self.engine()
        with work_queue().slot(kind="interactive", label="refit output", stop=stop, on_position=on_position):
            return engine.refit_values(initial, output_series(self.decoder, pred), masks=masks)

    def refit(self, signal: str, masks, *, stop=None, on_position=None):
        """Kernels of a unit ``signal`` under ``masks``, warm-started from the unpruned kernels."""
        initial = self.initial(signal, stop=stop, on_position=on_position)
        engine = self.engine()
        self._acquire(self._lock, stop)
        try:
            with work_queue().slot(kind="interactive", label=f"refit {signal}", stop=stop, on_position=on_position):
                return engine.refit(initial, masks=masks)
        finally:
            self._lock.release()


def output_series(decoder, pred) -> np.ndarray:
    """The decoder output over the deconvolved block from held-out predictions.

    Parameters
    ----------
    decoder : dashboard.decoder.Decoder
    pred : ndarray, shape (n_windows, n_preds)
        Dense predictions of the test windows (``MaskEvaluator.predict``), z-scored units.

    Returns
    -------
    series : ndarray, shape (n_block_samples,), float32
        Prediction at each sample of the block (the sample it belongs to), NaN before the
        first full receptive field and after the last window.
    """
    ws = decoder.ws
    d, blk = ws.data, ws.blocks[BLOCK]
    starts = d.window_starts(BLOCK)
    idx = starts[:, None] + d.receptive_field - 1 + np.arange(d.n_preds)[None]  # (W, n_preds) sample index
    out = np.full(blk.stop - blk.start, np.nan, dtype=np.float32)
    out[idx.ravel() - blk.start] = np.asarray(pred, dtype=np.float32).ravel()
    return out


shared_kernels = PerDecoder(SharedKernels)  # the process-wide SharedKernels of a decoder


def has_events(decoder) -> bool:
    """The decoder's recording has events to lock kernels to."""
    events = getattr(decoder.ws.recording, "events", None)
    return events is not None and len(events.onset) > 0


NO_EVENTS = ("The recording has no events to lock kernels to: DUNL learns a kernel locked to each event "
             "type (a file's annotations, or a stim channel's pulses). Open a recording with events in Data & model "
             "to see the kernels of its decoder's output and units.")


class KernelState(param.Parameterized):
    """The kernels one session shows: decoder output and the selected unit."""

    session = param.ClassSelector(class_=Session)
    prune = param.ClassSelector(class_=PruneState)
    tracking = param.Boolean(default=False, doc="Kernels are fitted and follow every prune.")
    state = param.Selector(default="idle", objects=list(KERNEL_STATES))
    message = param.String(default="", doc="Why there are no kernels (shown instead of the plots).")
    queue_position = param.Integer(default=0, bounds=(0, None))
    output = param.Parameter(default=None, doc="DUNL result (Dataset) of the decoder output, current mask.")
    output_previous = param.Parameter(default=None, doc="The output's result before the last change.")
    unit = param.Parameter(default=None, doc="DUNL result of the selected unit, current mask.")
    unit_previous = param.Parameter(default=None)
    unit_signal = param.String(default="", doc="Signal name of the unit shown (unit:LAYER:INDEX).")
    channel = param.Parameter(default=None, doc="DUNL result of an input channel's band envelope (pruning "
                                                "never changes it; set by the Kernels view).")
    fitted_version = param.Integer(default=-1, doc="Prune state version the shown kernels belong to.")
    refit_seconds = param.Number(default=float("nan"), doc="Wall time of the last refit (prune to kernels).")

    def __init__(self, **params):
        super().__init__(**params)
        self._lock = threading.Lock()
        self._busy = False
        self._decoder = self.session.decoder
        self._private = None  # (model, engine) for a fine-tuned copy
        self._wanted = False  # start() was asked for (the Kernels view was shown)
        self.session.param.watch(self._decoder_changed, "decoder_version")
        self.session.param.watch(self._selection_changed, ["layer", "unit"])
        self.prune.param.watch(self._mask_changed, "mask_version")

    # ---- triggers --------------------------------------------------------------------
    def _decoder_changed(self, *_):
        if self.session.decoder is self._decoder:
            return  # the same decoder drawn again (e.g. once the page has loaded): kernels stay valid
        with self._lock:
            self._decoder = self.session.decoder
            self._private = None
        self.param.update(tracking=False, state="idle", message="", output=None, output_previous=None, unit=None,
                          unit_previous=None, unit_signal="", fitted_version=-1, channel=None)
        if self._wanted and self.session.decoder is not None:
            self.start()  # the view asked before the decoder was ready (e.g. a link to the Kernels view)

    def _selection_changed(self, *_):
        # a new decoder moves the selection in the same update that announces it: its own
        # watcher (_decoder_changed) schedules the fit, once this state has been reset
        if self.tracking and self.session.decoder is self._decoder:
            self._schedule()

    def _mask_changed(self, *_):
        if self.tracking and self.session.decoder is self._decoder:
            self._schedule()

    def start(self) -> None:
        """Fit the kernels (once) and follow every prune from now on (also for later decoders)."""
        self._wanted = True
        if self.session.decoder is None:
            self.message = self.session.no_decoder_note()
            return
        if self.session.decoder.task != "regression":
            self.param.update(message="Kernels need a decoder of a continuous target; this decoder classifies trials.",
                              state="error")
            return
        if not has_events(self.session.decoder):  # said in the view, not as an alert on every visit
            self.param.update(message=NO_EVENTS, state="error")
            return
        self.prune.activate()
        self.tracking = True
        self._schedule()

    def selected_signal(self) -> str:
        s = self.session
        return "output" if s.layer == "conv_classifier" else f"unit:{s.layer}:{s.unit}"

    # ---- the refit loop ----------------------------------------------------------------
    def _schedule(self) -> None:
        with self._lock:
            if self._busy:
                logger.debug("kernels of %s: a change during a refit (its loop takes it up)", self.session.name)
                return
            self._busy = True
        logger.debug("kernels of %s: refit started", self.session.name)
        t_start = time.perf_counter()
        first = self.output is None
        self.state = "fitting" if first else "refitting"

        def work(stop):
            try:
                return self._loop(stop, t_start)
            except BaseException:
                with self._lock:
                    self._busy = False
                raise

        def failed(msg):
            self.param.update(state="error", message=msg, queue_position=0)

        # a "kernels" job still running has left its loop (it cleared _busy): let it end
        if self.session._start("kernels", work, on_error=failed, finishing=True) is None:
            logger.info("kernels of %s: refit not started (another still running or session closed)", self.session.name)
            with self._lock:
                self._busy = False

    def _engine_for(self, model):
        dec = self.session.decoder
        if model is dec.ws.model:
            return None
        with self._lock:
            if self._private is None or self._private[0] is not model:
                self._private = (model, shared_kernels(dec).private_engine(model))
            return self._private[1]

    def _after_decoder_change(self, dec) -> str:
        """What the loop does once a turn for decoder ``dec`` is done: "publish" (still the
        session's decoder); else its results are dropped and it takes another turn ("follow":
        this state was already reset for the new decoder and asked to follow it, and start()
        found the loop busy) or ends ("end": the reset, still to come, schedules afresh)."""
        with self._lock:
            if dec is self.session.decoder:
                return "publish"
            if self.tracking and self._decoder is self.session.decoder:
                return "follow"
            self._busy = False
            return "end"

    def _loop(self, stop, t_start):
        pos = self._position
        while True:
            dec = self.session.decoder
            shared = shared_kernels(dec)
            version = self.prune.mask_version
            masks, model = self.prune.masks(), self.prune.model
            finetuned = self.prune.finetuned
            if self.prune.decoder is not dec:  # the pruning state is still the old decoder's
                masks, model, finetuned = None, dec.ws.model, False
            signal = self.selected_signal()
            try:
                results = {}
                unpruned = (masks is None or masks.n_pruned == 0) and not finetuned
                for name in dict.fromkeys(["output", signal]):
                    if unpruned:
                        results[name] = shared.initial(name, stop=stop, on_position=pos)
                    elif name == "output":  # from the session's own evaluator (pruned / fine-tuned)
                        results[name] = shared.refit_output(self.prune.predictions(masks), masks, stop=stop,
                                                            on_position=pos)
                    elif finetuned:  # a fine-tuned copy: its own engine, always refit
                        own = self._engine_for(model)
                        initial = shared.initial(name, stop=stop, on_position=pos)
                        with work_queue().slot(kind="interactive", label=f"refit {name}", stop=stop, on_position=pos):
                            results[name] = own.refit(initial, masks=masks, model=model)
                    else:
                        results[name] = shared.refit(name, masks, stop=stop, on_position=pos)
            except Cancelled:
                logger.debug("kernels of %s: refit cancelled", self.session.name)
                with self._lock:
                    self._busy = False
                return None
            then = self._after_decoder_change(dec)
            if then != "publish":
                logger.debug("kernels of %s: decoder changed during the refit; results dropped (%s)",
                             self.session.name, then)
                if then == "end":
                    return None
                t_start = time.perf_counter()
                continue
            out, unit = results["output"], results[signal]
            updates = dict(output=out, unit=unit, unit_signal=signal, fitted_version=version, state="ready",
                           message="", queue_position=0, refit_seconds=time.perf_counter() - t_start)
            if self.output is not None and self.fitted_version != version:
                updates["output_previous"] = self.output
            if self.unit is not None and self.fitted_version != version:
                updates["unit_previous"] = self.unit if self.unit_signal == signal else None
            elif self.unit_signal != signal:
                updates["unit_previous"] = None
            # publish first, then decide under the lock whether this was the latest change: a
            # change made meanwhile (even by a watcher of this update) sees _busy and is picked
            # up by the next turn of this loop, never refused as a second "kernels" job
            self.param.update(**updates)
            logger.debug("kernels of %s: mask v%d, %s published (%.2f s)", self.session.name, version, signal,
                         updates["refit_seconds"])
            with self._lock:
                done = version == self.prune.mask_version and signal == self.selected_signal() \
                    and model is self.prune.model
                if done:
                    self._busy = False
            if done:
                return out
            t_start = time.perf_counter()

    def _position(self, pos: int) -> None:
        self.queue_position = int(pos)

    def join(self, timeout: float = 120.0) -> bool:
        """Wait for the kernel worker (tests, benchmark); True when it has ended."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.session._jobs.get("kernels")
            if job is None or not job.running:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            job.join(left)
