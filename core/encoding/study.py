"""One encoding run: DRE, linear baselines, ablations, evaluation and permutation importance.

``EncodingStudy(...).run(data)`` splits an encoding data set (per subject, chronological),
fits the Deep Recurrent Encoder and, in the same run, the TRF and RTRF baselines and the
requested ablations on the same splits, evaluates every model on the test split
(R[subject, time, channel], METHODS.md 3.4), and computes the DRE's permutation feature
importance (METHODS.md 3.7). The result is one ``xarray.Dataset`` that the CLI writes to
netCDF and the dashboard's Encoding view reads:

* ``r`` (model, subject, time, channel) and ``score`` (model): post-onset mean R;
* ``loss_increase`` (feature), ``loss_increase_map`` and ``r_drop`` (feature, subject,
  time, channel): the DRE's permutation importance (:mod:`core.encoding.importance`);
* ``predicted`` (model, example, channel, time) and ``actual`` (example, channel, time):
  a few test epochs in sensor units, for predicted-vs-actual plots;
* attrs: the DRE config, fit wall and CPU seconds per model, the data's provenance and
  ground truth, and ``code_version`` (:func:`core._files.source_version` of ``core/encoding``).
"""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import xarray as xr

from .._files import source_version
from .._validation import check_option, check_range, ensure_int
from ._data import REJECT_THRESHOLD, check_epochs, reject_artifacts, split_epochs
from .dre import DeepRecurrentEncoder, DREConfig
from .evaluate import correlation_map, post_onset_mean
from .importance import permutation_importance
from .linear import LAG_SECONDS, RTRF, TRF, longest_lag

__all__ = ["EncodingStudy", "EncodingStopped", "BASELINES", "ABLATIONS", "blas_threads", "code_version",
           "method_name"]


class EncodingStopped(RuntimeError):
    """Raised by :meth:`EncodingStudy.run` when its ``stop`` flag was set; nothing is returned."""

logger = logging.getLogger(__name__)

BASELINES = ("trf", "rtrf")
ABLATIONS = ("no_init", "no_subject")


class EncodingStudy:
    """Configure an encoding run, then ``run(data)``.

    Parameters
    ----------
    config : DREConfig, optional
        DRE hyper-parameters.
    baselines : sequence of {"trf", "rtrf"}
        Linear baselines fitted in the same run.
    ablations : sequence of {"no_init", "no_subject"}
        DRE ablations (METHODS.md 3.6): ``meg_init=0`` and ``subject_dim=0``.
    importance : bool
        Compute the DRE's permutation feature importance on the test split.
    n_repeats : int
        Permutations per feature (at least 1).
    n_examples : int
        Test epochs stored as predicted-vs-actual examples.
    seed : int
        Seed of the permutations (the DRE has its own ``config.seed``), at least 0.
    reject : float or None
        Epochs with any |value| above this after robust scaling are dropped from every split
        (METHODS.md 3.1, default 16; None keeps them all): counted in ``attrs["rejected_epochs"]``.

    Notes
    -----
    The baselines take forcing lags 0-1 s (:data:`core.encoding.linear.LAG_SECONDS`), or
    up to the epochs' length where they are shorter (said through ``progress`` and kept
    in ``attrs["baseline_lag_seconds"]``): longer lags would only see the zeros before
    the epoch.
    """

    def __init__(self, config: DREConfig | None = None, *, baselines: Sequence[str] = BASELINES,
                 ablations: Sequence[str] = (), importance: bool = True, n_repeats: int = 1,
                 n_examples: int = 8, seed: int = 0, reject: float | None = REJECT_THRESHOLD):
        self.config = (config or DREConfig()).validate()
        self.baselines = [check_option("baselines", b, BASELINES) for b in baselines]
        self.ablations = [check_option("ablations", a, ABLATIONS) for a in ablations]
        self.importance = bool(importance)
        self.n_repeats = check_range("n_repeats", ensure_int("n_repeats", n_repeats), low=1)
        self.n_examples = check_range("n_examples", ensure_int("n_examples", n_examples), low=0)
        self.seed = check_range("seed", ensure_int("seed", seed), low=0)
        self.reject = None if reject is None else check_range("reject", reject, low=0, low_inclusive=False)

    def _models(self, lag: float):
        cfg = self.config
        yield "dre", lambda: DeepRecurrentEncoder(cfg)
        for b in self.baselines:
            init = max(cfg.meg_init, 1)
            yield b, (lambda: TRF(tmax=lag)) if b == "trf" else (
                lambda: RTRF(meg_init=init, ar_lags=min(10, init), tmax=lag))
        for a in self.ablations:
            change = {"meg_init": 0} if a == "no_init" else {"subject_dim": 0}
            yield a, lambda change=change: DeepRecurrentEncoder(replace(cfg, **change))

    def run(self, data: xr.Dataset, *, progress=None, stop=None) -> xr.Dataset:
        """Fit, evaluate and explain; see the module docstring for the result's layout.

        Parameters
        ----------
        data : xarray.Dataset
            An encoding data set (:mod:`core.encoding._data`).
        progress : callable, optional
            Called with one-line messages (str) as the run advances.
        stop : threading.Event or callable, optional
            Checked before every model and after every DRE epoch; when set, the run ends
            with :class:`EncodingStopped` (no partial result).
        """
        import torch

        # [A] BLAS threads capped at torch's: on a shared machine, surplus BLAS threads
        # make the ridge baselines many times slower (restored on exit)
        with blas_threads(torch.get_num_threads()):
            return self._run(data, progress, stop)

    def _run(self, data, progress, stop):
        say = progress or (lambda msg: None)
        stopped = (lambda: False) if stop is None else (stop.is_set if hasattr(stop, "is_set") else stop)
        check_epochs(data)
        splits, rejected = reject_artifacts(split_epochs(data), self.reject)
        test = splits["test"]
        say(f"{data.sizes['epoch']} epochs of {len(np.unique(data['subject'].values))} subjects: "
            f"{splits['train'].sizes['epoch']} train, {splits['valid'].sizes['epoch']} valid, "
            f"{test.sizes['epoch']} test")
        if sum(rejected.values()):
            say(f"dropped {', '.join(f'{n} {k}' for k, n in rejected.items())} epochs with |value| > "
                f"{self.reject:g} after robust scaling (artefacts; METHODS 3.1)")
        lag = self._baseline_lag(data, say)
        rng = np.random.default_rng(self.seed)
        examples = np.sort(rng.choice(test.sizes["epoch"], min(self.n_examples, test.sizes["epoch"]),
                                      replace=False))
        maps, scores, preds, seconds, cpu, fitted = [], {}, [], {}, {}, {}
        for name, make in self._models(lag):
            if stopped():
                raise EncodingStopped(f"stopped before fitting {name}")
            model = make()
            say(f"fitting {name}")
            t0, c0 = time.perf_counter(), time.process_time()
            if isinstance(model, DeepRecurrentEncoder):
                model.fit(splits["train"], splits["valid"], progress=lambda info, n=name: say(
                    f"{n} epoch {info['epoch']}/{info['n_epochs']}: valid loss {info['valid_loss']:.4f}"),
                          stop=stopped)
                if stopped():
                    raise EncodingStopped(f"stopped while fitting {name}")
            else:
                model.fit(splits["train"], splits["valid"])
            seconds[name] = time.perf_counter() - t0
            cpu[name] = time.process_time() - c0
            pred = model.predict(test)
            r = correlation_map(pred, test["meg"])
            scores[name] = post_onset_mean(r)
            say(f"{name}: post-onset mean r {scores[name]:.4f} ({seconds[name]:.1f} s)")
            maps.append(r.expand_dims(model=[name]))
            preds.append(pred.isel(epoch=examples).expand_dims(model=[name]))
            fitted[name] = model
        result = xr.Dataset({"r": xr.concat(maps, dim="model")})
        result["score"] = ("model", [scores[m] for m in result["model"].values])
        actual = test["meg"].isel(epoch=examples)
        result["predicted"] = xr.concat(preds, dim="model").rename(epoch="example").drop_vars(
            ["sentence", "onset_time"], errors="ignore")
        result["actual"] = actual.rename(epoch="example").drop_vars(
            ["sentence", "onset_time"], errors="ignore")
        result["example_subject"] = ("example", np.asarray(test["subject"].values).astype(str)[examples])
        if self.importance:
            if stopped():
                raise EncodingStopped("stopped before the permutation importance")
            say("permutation importance of the DRE")
            imp = permutation_importance(fitted["dre"], test, n_repeats=self.n_repeats, rng=rng)
            for var in ("loss_increase", "loss_increase_map", "r_drop"):
                result[var] = imp[var]
            result.attrs["importance_left_out"] = imp.attrs["left_out"]
        truth = {k: v for k, v in data.attrs.items() if k.startswith("truth_")}
        result.attrs.update({
            "method": method_name(self.baselines),
            "code_version": code_version(),
            "dre_config": json.dumps(self.config.to_dict()),
            "fit_seconds": json.dumps({k: round(v, 3) for k, v in seconds.items()}),
            "fit_cpu_seconds": json.dumps({k: round(v, 3) for k, v in cpu.items()}),
            "data_source": str(data.attrs.get("source", "")),
            "sfreq": float(data.attrs["sfreq"]),
            "meg_init": int(self.config.meg_init),
            "baseline_lag_seconds": float(lag),
            "n_epochs": json.dumps({k: int(v.sizes["epoch"]) for k, v in splits.items()}),
            "rejected_epochs": json.dumps(rejected),
            "reject_threshold": float(self.reject) if self.reject is not None else float("nan"),
            **truth,
        })
        self.models_ = fitted
        return result

    def _baseline_lag(self, data, say) -> float:
        """Largest forcing lag (s) of the baselines: 1 s, or the epochs' length if shorter
        (said once, before anything is fitted)."""
        n_times, sfreq = int(data.sizes["time"]), float(data.attrs["sfreq"])
        if not self.baselines or int(round(LAG_SECONDS * sfreq)) + 1 <= n_times:
            return LAG_SECONDS
        lag = longest_lag(n_times, sfreq)
        msg = (f"{' and '.join(self.baselines)}: forcing lags 0-{lag:g} s instead of 0-{LAG_SECONDS:g} s, "
               f"as the epochs last {n_times} samples at {sfreq:g} Hz (a longer lag would only see "
               f"the zeros before the epoch)")
        logger.info(msg)
        say(msg)
        return lag


def method_name(baselines: Sequence[str]) -> str:
    """The ``method`` attr of a result: the DRE and the baselines fitted beside it."""
    name = "Deep Recurrent Encoder (Chehab et al. 2022)"
    if not baselines:
        return f"{name}, no baseline"
    if len(baselines) == 1:
        return f"{name} with the linear baseline {baselines[0]}"
    return f"{name} with linear baselines {', '.join(baselines[:-1])} and {baselines[-1]}"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Which encoding code computed a result (``attrs["code_version"]``):
    :func:`core._files.source_version` of ``core/encoding``. The result shipped for the Encoding
    view is held to it by the tests; the view says when a results file came from other code."""
    return source_version(__file__)


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Limit numpy's BLAS threads to ``n`` inside the block (no-op without threadpoolctl).

    The ridge baselines spend their time in BLAS; on a shared machine, more BLAS threads
    than free cores make them many times slower.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield
