"""``unitscope bench probe``: the full default probe of the trained demo Deep4.

Keys: ``n_units``, ``n_windows``, ``n_iterations`` (per pass), ``probe_seconds`` (start,
both passes over all blocks, statistics and classes; the reference forwards below are
excluded), ``forward_seconds`` (bare forward passes of the model over the same perturbed
inputs, run right after each probe pass in the same loop), ``overhead_ratio`` (probe /
forward), ``gt_amp_auc`` and ``gt_phase_auc``, ``perturbed_r_ratio`` (test-style Pearson r
on amplitude-perturbed training windows over unperturbed, mean over iterations),
``class_fractions`` and ``untrained_class_fractions`` (per layer, all bands), plus
``gt_amp_auc_by_role``, ``validity_phase`` (phase-perturbed over unperturbed r; phase
perturbation scrambles every bin, so it is expected to be low), ``untrained_gt_amp_auc``,
``role_occlusion_r_drop`` (per role: test-block r minus r with the role's band removed from
the role's channels, :func:`core.probing.validity.band_occlusion`; how much the decoder
needs each coded population, which bounds what any probe of it can find),
``torch_threads`` and ``device``.

Ground-truth AUC [A]: channel c's sensitivity in band b is the max over all units of
|mean over the bins of b of r[unit, c, bin]| (:func:`core.probing.stats.channel_sensitivity`).
``gt_amp_auc`` is the mean, over the amplitude-coded roles (high_gamma 60-90 Hz, beta 15-25
Hz), of the ROC AUC with which amplitude sensitivity in the role's band ranks that role's
channels above all other channels; ``gt_phase_auc`` the same for phase sensitivity in 1-4 Hz
and the low_freq channels.
"""
from __future__ import annotations

import time

import torch


def _fractions(ds) -> dict:
    from ..probing import class_fractions

    frac = class_fractions(ds)
    return {str(layer): {str(c): round(float(frac.sel(layer=layer, **{"class": c})), 3)
                         for c in frac["class"].values} for layer in frac["layer"].values}


def _probe(model, X, y, ws, cfg, say, label):
    from ..probing.pipeline import finish, start_probe

    fwd = {"seconds": 0.0}

    def bare_forward(j, Xp):  # the reference: the same perturbed inputs, bare model
        t = time.perf_counter()
        with torch.inference_mode():
            for s in range(0, Xp.shape[0], cfg.batch_size):
                model(Xp[s:s + cfg.batch_size])
        fwd["seconds"] += time.perf_counter() - t

    t0 = time.perf_counter()
    run = start_probe(model, X, sfreq=ws.recording.sfreq, config=cfg, y=y, task=ws.task,
                      ch_names=ws.recording.ch_names)
    run.on_pass = bare_forward
    for r in run:
        say(f"{label}: {100 * r.progress:.0f}%")
    ds = finish(run)
    total = time.perf_counter() - t0
    return ds, total - fwd["seconds"], fwd["seconds"]


def run(*, quick: bool = False, progress=None) -> dict:
    from ..demo import ROLE_BANDS
    from ..probing import ProbeConfig, ground_truth_auc
    from ..probing.pipeline import untrained_twin, workspace_windows
    from ..probing.validity import band_occlusions
    from ..workspace import Workspace

    say = progress or (lambda m: None)
    say("loading the demo decoder (trains it if no cached one)")
    ws = Workspace.demo(progress=lambda p: say(f"training: {p}") if p.get("end_of_epoch") else None)
    X, y = workspace_windows(ws, "train")
    cfg = ProbeConfig(n_iterations=4, n_windows=32) if quick else ProbeConfig()
    ds, probe_s, fwd_s = _probe(ws.model, X, y, ws, cfg, say, "probe")
    roles = ws.recording.signals["role"].values
    amp_roles = {k: ROLE_BANDS[k] for k in ("high_gamma", "beta")}
    say("untrained control")
    ds_u, _, _ = _probe(untrained_twin(ws.model, seed=cfg.seed + 1), X, y, ws, cfg, say, "untrained")
    say("occluding each role's band on the test block")
    Xt, yt = ws.eval_set("test")
    cases = {role: ((roles == role).nonzero()[0], band) for role, band in ROLE_BANDS.items()}
    occluded, reference = band_occlusions(ws.model, Xt, yt, sfreq=ws.recording.sfreq, cases=cases, task=ws.task)
    occlusion = {role: round(reference - occluded[role], 4) for role in cases}
    return {
        "n_units": int(ds.sizes["unit"]),
        "n_windows": int(ds.attrs["n_windows"]),
        "n_iterations": int(cfg.n_iterations),
        "probe_seconds": round(probe_s, 2),
        "forward_seconds": round(fwd_s, 2),
        "overhead_ratio": round(probe_s / fwd_s, 3),
        "gt_amp_auc": round(ground_truth_auc(ds, "amp_corr", roles, amp_roles), 4),
        "gt_phase_auc": round(ground_truth_auc(ds, "phase_corr", roles,
                                               {"low_freq": ROLE_BANDS["low_freq"]}), 4),
        "gt_amp_auc_by_role": {k: round(ground_truth_auc(ds, "amp_corr", roles, {k: v}), 4)
                               for k, v in amp_roles.items()},
        "perturbed_r_ratio": round(float(ds["amp_validity"]), 4),
        "validity_phase": round(float(ds["phase_validity"]), 4),
        "class_fractions": _fractions(ds),
        "untrained_class_fractions": _fractions(ds_u),
        "untrained_gt_amp_auc": round(ground_truth_auc(ds_u, "amp_corr", roles, amp_roles), 4),
        "role_occlusion_r_drop": occlusion,
        "torch_threads": torch.get_num_threads(),
        "device": "cpu",
    }
