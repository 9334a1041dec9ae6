"""Pruning data of one trained decoder, shared read-only by every browser session that shows it.

:class:`SharedPruning` holds the held-out evaluation set, a pristine
:class:`core.pruning.MaskEvaluator` (never used to compute) and the results that do not
depend on a session's own mask: single-unit ablation effects and pruning curves around the
unpruned network, each computed once per server (a class of students shares them).

Ablation effects are measured on the validation block (:data:`RANK_BLOCK`), the metric and the
curves on the test block: units ranked by their drops on the very block a curve then measures
are chosen for that block's noise. Measured on the demo decoder's conv_4, its 10% least
important units cost 0.07 of test r when ranked on the test block itself and 0.41 when ranked
on the validation block; its 10% most important 0.79 and 0.69 (/work/diag/s23/abl_bias.py). A
session's own evaluator is a *fork* of the pristine one
(:meth:`core.pruning.MaskEvaluator.fork`): it shares the cached activations of the unpruned
network and stores only what its mask changes. No Panel code.
"""
from __future__ import annotations

import hashlib
import logging
import threading

import numpy as np

from .decoder import PerDecoder
from .queue import Cancelled, work_queue

__all__ = ["SharedPruning", "shared_pruning", "CURVE_REPEATS", "RANK_BLOCK"]

logger = logging.getLogger(__name__)

CURVE_REPEATS = 10  # random orders of the random curve [A] (the engine's default is 20)
RANK_BLOCK = "valid"  # where single-unit ablation drops are measured (they rank units; see above)


def _fingerprint(probe) -> str:
    if probe is None:
        return "none"
    h = hashlib.sha1()
    for var in ("amp_stat_all", "phase_stat_all"):
        if var in probe:
            h.update(np.ascontiguousarray(probe[var].values).tobytes())
    return h.hexdigest()[:16]


class SharedPruning:
    """Pruning data of one decoder, shared read-only by every session that shows it.

    Parameters
    ----------
    decoder : dashboard.decoder.Decoder
    block : str
        Held-out block measured (default "test", the metric shown everywhere in the app).
    """

    def __init__(self, decoder, *, block: str = "test"):
        self.decoder, self.block = decoder, block
        self._lock = threading.Lock()
        self._keys: dict = {}
        self._evaluators: dict = {}  # block -> pristine evaluator
        self.cache: dict = {}       # ("ablation", layer) / ("curves", layer, by, probe) -> result
        self.progress: dict = {}    # same keys -> fraction done while computing

    @property
    def metric_name(self) -> str:
        return "pearson_r" if self.decoder.task == "regression" else "balanced_accuracy"

    def eval_set(self, block: str | None = None):
        return self.decoder.ws.eval_set(block or self.block)

    def evaluator(self, block: str | None = None):
        """The pristine evaluator of ``block`` (default the measured one; built once, ~1 s for
        the demo); never used to compute."""
        block = block or self.block
        with self._lock:
            if block not in self._evaluators:
                from core.pruning import MaskEvaluator

                X, y = self.eval_set(block)
                self._evaluators[block] = MaskEvaluator(self.decoder.ws.model, X, y, task=self.decoder.task)
            return self._evaluators[block]

    @property
    def baseline(self) -> float:
        return float(self.evaluator().baseline)

    def fork(self):
        """A session's own evaluator (cheap: shares the unpruned activations)."""
        return self.evaluator().fork()

    def _key_lock(self, key) -> threading.Lock:
        with self._lock:
            return self._keys.setdefault(key, threading.Lock())

    def compute(self, key, fn, *, stop: threading.Event | None = None, on_progress=None, label: str = ""):
        """The cached result of ``fn(progress, cancel)`` under ``key``, computed once.

        Concurrent callers wait for the first one (following its progress) instead of
        computing the same thing again; the computing caller takes a long-work queue slot.
        An incomplete result (cancelled) is returned to its caller but not cached.
        """
        lock = self._key_lock(key)
        while not lock.acquire(timeout=0.2):
            if stop is not None and stop.is_set():
                raise Cancelled(f"{label} cancelled.")
            if on_progress is not None and key in self.progress:
                on_progress({"fraction": self.progress[key], "shared": True})
        try:
            if key in self.cache:
                return self.cache[key]
            with work_queue().slot(kind="long", label=label, stop=stop,
                                   on_position=(lambda pos: on_progress({"queue": pos})) if on_progress else None):
                def progress(p):
                    self.progress[key] = float(p.get("fraction", 0.0))
                    if on_progress is not None:
                        on_progress(p)

                result = fn(progress, stop)
            complete = bool(result.attrs.get("complete", 1)) and not (stop is not None and stop.is_set())
            if complete:
                self.cache[key] = result
            return result
        finally:
            self.progress.pop(key, None)
            lock.release()

    def ablation(self, layer: str, *, stop=None, on_progress=None):
        """Metric drop on the validation block (:data:`RANK_BLOCK`) when each unit of ``layer``
        alone is masked (nothing else pruned).

        Returns
        -------
        drop : xarray.DataArray, dims ("unit",)
            See :func:`core.pruning.ablation_effects`; attrs ``block`` names the block.
        """
        from core.pruning import ablation_effects

        def fn(progress, cancel):
            out = ablation_effects(self.evaluator(RANK_BLOCK).fork(), layers=layer, progress=progress, cancel=cancel)
            out.attrs["complete"] = int(not (cancel is not None and cancel.is_set()))
            out.attrs["block"] = RANK_BLOCK
            return out

        return self.compute(("ablation", layer), fn, stop=stop, on_progress=on_progress,
                            label=f"ablation effects of {layer}")

    def curves(self, layer: str, probe=None, *, by: str = "either", stop=None, on_progress=None):
        """Pruning curves of ``layer`` (most / least sensitive first, random with its band).

        Units are ranked by the probe's sensitivities when ``probe`` is given and ``by`` is not
        "ablation", else by the single-unit ablation drop on the validation block [A]; the
        curves measure the test block.

        Returns
        -------
        curves : xarray.Dataset
            See :func:`core.pruning.pruning_curve`.
        """
        from core.pruning import pruning_curve

        if probe is None or by == "ablation":
            drop = self.ablation(layer, stop=stop, on_progress=on_progress)
            kwargs, by = {"scores": drop}, "ablation"
        else:
            amp, ph = probe["amp_stat_all"], probe["phase_stat_all"]
            kwargs = {"amplitude": amp, "phase": ph, "by": by}

        def fn(progress, cancel):
            out = pruning_curve(self.fork(), layers=layer, n_repeats=CURVE_REPEATS, rng=0, progress=progress,
                                cancel=cancel, **kwargs)
            out.attrs["ranked_by"] = by
            if by == "ablation":
                out.attrs["ranked_on_block"] = RANK_BLOCK
            return out

        return self.compute(("curves", layer, by, _fingerprint(probe)), fn, stop=stop, on_progress=on_progress,
                            label=f"pruning curves of {layer}")


shared_pruning = PerDecoder(SharedPruning)  # the process-wide SharedPruning of a decoder
