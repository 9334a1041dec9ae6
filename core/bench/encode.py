"""``unitscope bench encode``: the Deep Recurrent Encoder on the synthetic reading data set.

One :class:`core.encoding.EncodingStudy` on :func:`core.encoding.simulate_reading` (10
subjects x 800 words; ``--quick``: 4 x 300 and fewer passes): the DRE, the TRF and RTRF
baselines and the NO-INIT / NO-SUB ablations on the same splits, then the DRE's permutation
importance on the test split.

Keys (issue 8): ``dre_r``, ``trf_r``, ``rtrf_r`` (post-onset mean R), ``dre_over_trf``,
``importance_peak_error_ms`` (largest |latency of the importance peak - true response
latency| over word length and word frequency; the peak of the loss-increase time course,
see :func:`core.encoding.peak_latency`), ``no_init_r``, ``no_subject_r``,
``fit_seconds`` (wall time of the DRE's training). Also: ``importance_peak_r_drop_ms``
(the peaks of the R-drop time courses, for comparison), ``fit_cpu_seconds`` (its CPU
time: on a shared machine the wall time also counts other people's work), ``importance_peak_ms`` and
``truth_latency_ms`` per feature, ``meg_importance_early_over_late`` (mean R drop from
permuting the initial state over 0-0.25 s divided by that over 0.75-1.5 s; METHODS.md 3.9
expects the initial state to matter early), ``fit_seconds_all`` per model,
``total_seconds``, ``torch_threads`` (1, see :func:`run`), ``torch_threads_configured``,
``device``, ``quick``.
"""
from __future__ import annotations

import json
import time

import torch


def run(*, quick: bool = False, progress=None) -> dict:
    """Run the benchmark (``quick``: a smoke test whose scores are not the targets).

    [A] Runs with one torch intra-op thread and one BLAS thread (restored afterwards): the
    DRE's tensors are small (batches of 64 epochs x 120 samples, width 64), so a second
    thread saves little, and on a loaded 2-core machine two threads made the DRE's fit
    seven times slower (490 s instead of 67 s in one run). ``torch_threads_configured`` is
    the setting found on entry.
    """
    from ..encoding import DREConfig
    from ..encoding.study import blas_threads

    n_subjects, n_words = (4, 300) if quick else (10, 800)
    cfg = DREConfig(n_epochs=6) if quick else DREConfig()
    configured = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with blas_threads(1):
            result = measure(n_subjects=n_subjects, n_words=n_words, config=cfg, progress=progress)
    finally:
        torch.set_num_threads(configured)
    return {**result, "torch_threads_configured": configured, "quick": quick}


def measure(*, n_subjects: int, n_words: int, config, progress=None) -> dict:
    """The benchmark's measurements for one data size and DRE config (see the module doc)."""
    from ..encoding import EncodingStudy, peak_latency, simulate_reading
    from ..encoding.study import ABLATIONS

    say = progress or (lambda msg: None)
    cfg = config
    data = simulate_reading(n_subjects=n_subjects, n_words=n_words, seed=0)
    say(f"synthetic reading: {n_subjects} subjects x {n_words} words; DRE {cfg.to_dict()}")
    t0 = time.perf_counter()
    result = EncodingStudy(cfg, ablations=ABLATIONS, n_repeats=2, seed=0).run(data, progress=say)
    total = time.perf_counter() - t0
    score = {str(m): float(result["score"].sel(model=m)) for m in result["model"].values}
    peaks, peaks_r, truth = {}, {}, {}
    for feature in ("word_length", "word_freq"):
        peaks[feature] = peak_latency(result, feature)
        peaks_r[feature] = peak_latency(result, feature, measure="r")
        truth[feature] = float(data.attrs[f"truth_latency_{feature}"])
    error_ms = 1000 * max(abs(peaks[f] - truth[f]) for f in peaks)
    meg = result["r_drop"].sel(feature="meg").mean(("subject", "channel"))
    early = float(meg.sel(time=slice(0, 0.25)).mean())
    late = float(meg.sel(time=slice(0.75, 1.5)).mean())
    fit_seconds = json.loads(result.attrs["fit_seconds"])
    fit_cpu = json.loads(result.attrs["fit_cpu_seconds"])
    return {
        "dre_r": round(score["dre"], 4),
        "trf_r": round(score["trf"], 4),
        "rtrf_r": round(score["rtrf"], 4),
        "dre_over_trf": round(score["dre"] / score["trf"], 3),
        "importance_peak_error_ms": round(error_ms, 1),
        "no_init_r": round(score["no_init"], 4),
        "no_subject_r": round(score["no_subject"], 4),
        "fit_seconds": round(fit_seconds["dre"], 2),
        "importance_peak_ms": {f: round(1000 * v, 1) for f, v in peaks.items()},
        "importance_peak_r_drop_ms": {f: round(1000 * v, 1) for f, v in peaks_r.items()},
        "truth_latency_ms": {f: round(1000 * v, 1) for f, v in truth.items()},
        "meg_importance_early_over_late": round(early / late, 2) if late > 0 else None,
        "fit_cpu_seconds": round(fit_cpu["dre"], 2),
        "fit_seconds_all": fit_seconds,
        "total_seconds": round(total, 2),
        "torch_threads": torch.get_num_threads(),
        "device": "cpu",
    }
