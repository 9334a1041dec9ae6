"""``unitscope bench prune``: mask-toggle latency and the pruning asymmetry on the demo decoder.

Keys (issue 4):

* ``toggle_ms_p50``, ``toggle_ms_p95``: one single-unit mask change, from the call to the new
  test metric, over ``n_toggles`` (>= 50) random toggles. Each toggle flips one unit drawn
  uniformly from all maskable units (so blocks are hit in proportion to their size: 25 / 50 /
  100 / 200), after two forced toggles per block so that every block is represented;
  toggles accumulate (about half of them un-mask a unit again).
* ``naive_ms_p50``: full re-evaluation of the test block (the hooked model on every test
  window, as ``Workspace.evaluate`` does), same run, same mask state.
* ``speedup``: ``naive_ms_p50 / toggle_ms_p50``.
* ``r_drop_most_20``, ``r_drop_least_20``, ``r_drop_random_20``: test Pearson r lost when 20% of
  every block's units are masked, most-sensitive first, least-sensitive first, and random
  (mean over ``n_random`` orders).

Sensitivity: the per-unit max-statistics ``amp_stat_all`` / ``phase_stat_all`` of
``core.probing`` (METHODS.md 1.7 item 1) from ``RUN_DIR/probe.nc`` of the demo run when
present, else the default probe of the training windows (cached on disk after the first
run; ``--quick`` without a cache uses a reduced probe), ranked by ``max(s_amp, s_phase)``
(METHODS.md 1.7 item 4); the pruning engine's own band-amplitude sensitivity only if
``core.probing`` fails (``sensitivity_source`` says which). ``r_drop_20_by_amplitude`` and
``r_drop_20_by_phase`` give the most/least drops of the single-sensitivity orders;
``r_drop_20_by_ablation`` the same cuts ranked by each unit's single-unit ablation effect on
the test block (a reference: how much asymmetry the network allows at all, an upper bound as
it is ranked on the data it is scored on), ``r_drop_20_by_ablation_valid`` ranked by the
effects on the validation block (as the app and ``unitscope prune --by ablation`` rank);
``r_drop_20_by_block`` the most/least/random drops when 20% of one block alone is cut, and
``spearman_sensitivity_vs_ablation`` per block how well the ranking predicts each unit's own
ablation drop.
Extra keys: per-block toggle medians, the largest fast-vs-full metric difference over the
toggles checked, the curve's random 95% band, timings of the sensitivity step.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import torch

from ..metrics import spearman_r

logger = logging.getLogger(__name__)


def _probe(ws, quick: bool, say) -> tuple[object, str, dict]:
    """Probe result with ``amp_stat_all`` / ``phase_stat_all``, its source, and details.

    Order of preference: ``RUN_DIR/probe.nc``; the default probe of this model cached by an
    earlier run; a fresh probe (the default configuration, or a reduced one with ``quick``),
    cached when it is the default one.
    """
    import xarray as xr

    from ..workspace import default_cache_dir

    path = Path(ws.run_dir) / "probe.nc" if ws.run_dir else None
    if path is not None and path.is_file():
        with xr.open_dataset(path, engine="h5netcdf") as f:
            return f[["amp_stat_all", "phase_stat_all"]].load(), "probe.nc of the demo run", {}
    from ..probing import ProbeConfig, probe_units
    from ..probing._base import code_version, model_hash
    from ..probing.pipeline import workspace_windows

    full = ProbeConfig()
    cache = Path(default_cache_dir()) / "bench" / f"prune-probe-{model_hash(ws.model)}-{code_version()}.nc"
    if cache.is_file():
        with xr.open_dataset(cache, engine="h5netcdf") as f:
            return f.load(), "core.probing default probe (cached)", {"probe_config": full.to_dict()}
    cfg = ProbeConfig(n_iterations=4, n_windows=32) if quick else full
    X, y = workspace_windows(ws, "train")
    say(f"probing units ({cfg.n_iterations} iterations x {cfg.n_windows} windows)")
    ds = probe_units(ws.model, X, sfreq=ws.recording.sfreq, config=cfg, y=y, task=ws.task,
                     ch_names=ws.recording.ch_names)[["amp_stat_all", "phase_stat_all"]]
    if not quick:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        ds.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, cache)
    return ds, "core.probing" + (" (reduced: quick)" if quick else " default probe"), {"probe_config": cfg.to_dict()}


def _sensitivity(ws, quick: bool, say) -> tuple[dict, str, dict]:
    """Keyword arguments of ``pruning_curve`` (amplitude, phase), their source, and details."""
    try:
        ds, source, extra = _probe(ws, quick, say)
        return dict(amplitude=ds["amp_stat_all"], phase=ds["phase_stat_all"]), source, extra
    except Exception as exc:  # the fallback keeps the benchmark usable without the probing engine
        logger.warning("core.probing unavailable (%s); using the band-amplitude fallback", exc)
        from ..pruning import amplitude_sensitivity

        X = ws.windows("train")
        amp = amplitude_sensitivity(ws.model, X[:: max(1, len(X) // 48)], sfreq=ws.recording.sfreq,
                                    n_iter=4 if quick else 10, rng=0)
        return dict(amplitude=amp), "fallback band-amplitude sensitivity", {"error": str(exc)}


def run(*, quick: bool = False, progress=None) -> dict:
    from ..pruning import MaskEvaluator, pruning_curve
    from ..workspace import Workspace

    say = progress or (lambda m: None)
    say("loading the demo decoder (trains it if no cached one)")
    ws = Workspace.demo()
    X, y = ws.eval_set("test")
    t = time.perf_counter()
    ev = MaskEvaluator(ws.model, X, y, task=ws.task)
    build_s = time.perf_counter() - t
    names = [l.name for l in ev.layers]
    sizes = np.array([l.n_units for l in ev.layers])
    rng = np.random.default_rng(0)
    n_toggles = 50 if quick else 100
    forced = [(li, int(rng.integers(sizes[li]))) for li in range(len(names)) for _ in range(2)]
    flat = rng.integers(sizes.sum(), size=n_toggles - len(forced))
    edges = np.cumsum(sizes)
    toggles = list(forced)
    for u in flat:
        li = int(np.searchsorted(edges, u, side="right"))  # block of the flat unit index
        toggles.append((li, int(u - (edges[li - 1] if li else 0))))
    rng.shuffle(toggles)
    say(f"{len(toggles)} single-unit toggles")
    times, by_layer, masks = [], {n: [] for n in names}, ev.masks
    checked, max_diff = 0, 0.0
    for k, (li, unit) in enumerate(toggles):
        masks = masks.copy().toggle(names[li], unit)
        t = time.perf_counter()
        value = ev.evaluate(masks)
        dt = (time.perf_counter() - t) * 1e3
        times.append(dt)
        by_layer[names[li]].append(dt)
        if k % 10 == 0:  # spot-check against the full re-evaluation (not timed)
            max_diff = max(max_diff, abs(value - ev.full_evaluate(masks)))
            checked += 1
    say("full re-evaluations")
    naive = []
    for _ in range(3 if quick else 5):
        t = time.perf_counter()
        ev.full_evaluate(masks)
        naive.append((time.perf_counter() - t) * 1e3)
    ev.evaluate(ev.new_masks())
    t = time.perf_counter()
    kw, source, extra = _sensitivity(ws, quick, say)
    sens_s = time.perf_counter() - t
    n_random = 5 if quick else 20
    by = "either" if "phase" in kw else "amplitude"
    say(f"20% pruning: most, least (by {by}) and {n_random} random orders")
    curves = pruning_curve(ev, fractions=[0.2], n_repeats=n_random, rng=0, by=by, **kw)
    base = ev.baseline
    drop = {o: base - float(curves["metric"].sel(order=o, fraction=0.2)) for o in ("most", "least", "random")}
    per_by = {}
    for other in ("amplitude", "phase"):
        if other != by and other in kw:  # the single-sensitivity orders, for context
            c = pruning_curve(ev, fractions=[0.2], orders=("most", "least"), by=other, **kw)
            per_by[f"r_drop_20_by_{other}"] = {o: round(base - float(c["metric"].sel(order=o, fraction=0.2)), 4)
                                               for o in ("most", "least")}
    # [A] reference: the same 20% cuts ranked by each unit's own ablation effect on the test
    # block (an importance ranking measured on the very data it is scored on, so an upper
    # bound): how large an asymmetry this network allows at all
    from ..pruning import ablation_effects

    effects = ablation_effects(ev)
    c = pruning_curve(ev, fractions=[0.2], orders=("most", "least"), scores=effects)
    per_by["r_drop_20_by_ablation"] = {o: round(base - float(c["metric"].sel(order=o, fraction=0.2)), 4)
                                       for o in ("most", "least")}
    # the same ranking measured on the validation block, as the app and `unitscope prune --by
    # ablation` rank: what an importance ranking does on data it was not chosen on
    ev_valid = MaskEvaluator(ws.model, *ws.eval_set("valid"), task=ws.task)
    c = pruning_curve(ev, fractions=[0.2], orders=("most", "least"), scores=ablation_effects(ev_valid))
    per_by["r_drop_20_by_ablation_valid"] = {o: round(base - float(c["metric"].sel(order=o, fraction=0.2)), 4)
                                             for o in ("most", "least")}
    # how well the sensitivity ranking predicts each unit's own importance, per block: the
    # Spearman correlation of the ranking score with the single-unit ablation drop (an
    # asymmetry needs it clearly positive)
    from ..pruning import select_scores

    sizes = {l.name: l.n_units for l in ev.layers}
    ranked, _ = select_scores(sizes, by=by, **kw)
    drops, _ = select_scores(sizes, scores=effects)
    per_by["spearman_sensitivity_vs_ablation"] = {
        name: round(spearman_r(ranked[name], drops[name]), 3) for name in sizes if name in ranked and name in drops}
    # where the drop comes from: the same 20% cut in one block at a time (the others intact)
    per_by["r_drop_20_by_block"] = {}
    for name in sizes:
        c = pruning_curve(ev, fractions=[0.2], n_repeats=n_random, rng=0, by=by, layers=name, **kw)
        per_by["r_drop_20_by_block"][name] = {o: round(base - float(c["metric"].sel(order=o, fraction=0.2)), 4)
                                              for o in ("most", "least", "random")}
    p50, p95 = float(np.percentile(times, 50)), float(np.percentile(times, 95))
    naive_p50 = float(np.percentile(naive, 50))
    return {
        "toggle_ms_p50": round(p50, 2),
        "toggle_ms_p95": round(p95, 2),
        "naive_ms_p50": round(naive_p50, 2),
        "speedup": round(naive_p50 / p50, 2),
        "r_drop_most_20": round(drop["most"], 4),
        "r_drop_least_20": round(drop["least"], 4),
        "r_drop_random_20": round(drop["random"], 4),
        "random_20_band": [round(base - float(curves["random_hi"][0]), 4), round(base - float(curves["random_lo"][0]), 4)],
        "baseline_r": round(base, 4),
        "n_toggles": len(times),
        "toggles_per_layer": {n: len(v) for n, v in by_layer.items()},
        "toggle_ms_p50_per_layer": {n: round(float(np.median(v)), 2) for n, v in by_layer.items()},
        "max_abs_diff_vs_full": float(f"{max_diff:.3g}"),
        "n_checked_vs_full": checked,
        "eval_layout": f"{tuple(ev._inputs.shape)} from {tuple(ev.X.shape)} windows",
        "evaluator_build_s": round(build_s, 2),
        "sensitivity_source": source,
        "sensitivity_by": by,
        **per_by,
        "sensitivity_s": round(sens_s, 1),
        **extra,
        "quick": bool(quick),
        "torch_threads": torch.get_num_threads(),
        "device": "cpu",
    }
