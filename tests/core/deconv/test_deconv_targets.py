"""DUNL against METHODS.md 2.8 validation targets 2, 4 and 5 on simulated spiking data.

Each test names the item it checks and the numbers measured when it was written (seeds
fixed, one torch thread). Where a target is out of reach as 2.8 states it, the test
asserts what holds instead and its docstring shows the evidence.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from scipy.stats import spearmanr

from core.deconv import (DUNL, DeconvConfig, detection_rates, kernel_error, r2, simulate_a,
                         simulate_b)

pytestmark = pytest.mark.slow


# ------------------------------------------------------ 2.8.2: unknown timing on simulation A
@pytest.fixture(scope="module")
def fits_a():
    """Simulation A (amplitude 30, 8 Hz, 25-ms bins): 200 training trials, 60 test trials,
    and a kernel learned on the same training data with known and with unknown timing."""
    sim = simulate_a(n_trials=200, bin_ms=25, rng=302)
    test = simulate_a(n_trials=60, bin_ms=25, rng=402)
    before = torch.get_num_threads()  # conftest's one-thread fixture is per test, not per module
    torch.set_num_threads(1)
    try:
        known = DUNL(kernel_length=20, likelihood="bernoulli", n_iter=30, epochs=12, batch_size=16,
                     lr=0.02).fit(sim.y, support=sim.support, baseline=sim.baseline_est, rng=0)
        unknown = DUNL(kernel_length=20, likelihood="bernoulli", timing="unknown", n_events=5,
                       n_iter=40, refine_iter=20, topk_every=10, epochs=12, batch_size=16,
                       lr=0.02).fit(sim.y, baseline=sim.baseline_est, rng=0)
    finally:
        torch.set_num_threads(before)
    return sim, test, known, unknown


def _smoothed_peaks(y, *, width: float, lag: int, n_codes: int) -> np.ndarray:
    """Raw-threshold detector of 2.6: local maxima of the Gaussian-smoothed raster.

    Returns (n_trials, 1, n_codes) peak heights (0 elsewhere), a peak at bin t standing for
    an event with onset t - ``lag``.
    """
    half = int(np.ceil(3 * width))
    g = np.exp(-0.5 * (np.arange(-half, half + 1) / width) ** 2)
    s = np.stack([np.convolve(row, g / g.sum(), mode="same") for row in y])
    peaks = np.zeros_like(s)
    is_peak = (s[:, 1:-1] >= s[:, :-2]) & (s[:, 1:-1] >= s[:, 2:])
    peaks[:, 1:-1] = np.where(is_peak, s[:, 1:-1], 0.0)
    return peaks[:, None, lag:lag + n_codes]


def _raw_miss_at(test, false_max: float, *, tol: int, lag: int) -> float:
    """Lowest miss rate of raw-threshold detection with a false rate <= ``false_max``, over a
    threshold sweep (every peak-height quantile) and four smoothing widths."""
    n_codes = test.support.shape[-1]
    best = 1.0
    for width in (0.5, 1.0, 2.0, 3.0):
        peaks = _smoothed_peaks(test.y, width=width, lag=lag, n_codes=n_codes)
        for thr in np.quantile(peaks[peaks > 0], np.linspace(0, 0.999, 200)):
            hit, false = detection_rates(peaks, test.support, tol=tol, threshold=thr)
            if false <= false_max:
                best = min(best, 1 - hit)
    return best


def test_unknown_timing_kernel_error_is_at_least_the_known_timing_error(fits_a):
    """METHODS.md 2.8.2: at equal data, not knowing the onsets costs kernel accuracy.

    Measured (shift-tolerant error, which favours unknown timing): known 0.088, unknown
    0.129; over 5 data seeds known 0.068-0.108, unknown 0.090-0.160, unknown higher by
    0.022-0.057 every time.
    """
    sim, _, known, unknown = fits_a
    err_known = kernel_error(sim.kernels_binned, known.kernels_, shift_tolerant=True)[0]
    err_unknown = kernel_error(sim.kernels_binned, unknown.kernels_, shift_tolerant=True)[0]
    assert err_known < 0.15 and err_unknown < 0.3  # both fits work: 2.8.1 / existing tests
    assert err_unknown > err_known


@pytest.mark.parametrize("tol", [1, 2])
def test_unknown_timing_detection_beats_raw_threshold_detection(fits_a, tol):
    """METHODS.md 2.8.2: hit rate near 1 at amplitude 30, and DUNL's operating point lies
    below the raw-threshold miss/false curve: at DUNL's false rate, peak detection on the
    smoothed raster (given the true response lag, best of 4 smoothing widths, every
    threshold) misses more events.

    Measured, DUNL (miss, false) vs raw miss at that false rate: tol 1 (0.013, 0.013) vs
    0.123; tol 2 (0.013, 0.013) vs 0.063. Over 5 data seeds DUNL missed 0.003-0.023 and raw
    0.043-0.263, at least 0.026 more.

    [A] Not the whole curve: DUNL detects exactly k = 5 events per trial, so its curve stops
    at its operating point; with tol 2, raw detection reaches fewer misses at false rates of
    0.1 and more (0.003-0.01 against DUNL's 0.003-0.017), and at a false rate of exactly 0.
    """
    _, test, _, unknown = fits_a
    codes = unknown.encode(test.y, baseline=test.baseline_est)
    hit, false = detection_rates(codes, test.support, tol=tol)
    assert hit > 0.95 and false < 0.05
    lag = int(np.argmax(test.kernels_binned[0]))  # peak of the response, bins after onset
    raw_miss = _raw_miss_at(test, false, tol=tol, lag=lag)
    assert raw_miss > (1 - hit) + 0.02


# ------------------------------------------------ 2.8.4: dopamine simulation B, learned kernels
_DOPAMINE = DeconvConfig(n_kernels=3, kernel_length=24, likelihood="bernoulli", n_iter=50,
                         code_sign=(1, 1, 2), kernel_nonneg=(True, True, True), epochs=15,
                         batch_size=2, lr=0.01, valid_fraction=0.0)


def _reward_window_init(sim, K: int = 24) -> np.ndarray:
    """Initial (cue, salience, value) kernels for simulation B from its event windows.

    Cue: the cue-locked average. The salience and value kernels share every onset, so an
    average cannot tell them apart; here salience starts from the reward-locked average and
    value from the leading principal component of the per-trial reward-locked windows
    (each averaged over neurons first, which leaves the trial-to-trial variation that the
    value code carries). All clipped at 0 (non-negative kernels), unit norm.
    """
    expected = sim.info["expected"]
    rate0 = 1 / (1 + np.exp(-sim.baseline_est))                       # (trials, neurons)
    reward = np.where(expected, 2500, 1000) // sim.bin_ms
    cue = 1000 // sim.bin_ms
    windows = np.stack([(sim.y[n, :, reward[n]:reward[n] + K] - rate0[n, :, None]).mean(0)
                        for n in range(len(sim.y))])                  # (trials, K)
    cue_avg = np.mean([(sim.y[n, :, cue:cue + K] - rate0[n, :, None]).mean(0)
                       for n in np.flatnonzero(expected)], axis=0)
    mean = windows.mean(0)
    pc = np.linalg.svd(windows - mean, full_matrices=False)[2][0]
    init = np.clip(np.stack([cue_avg, mean, pc * np.sign(pc.sum())]), 0, None)
    return init / np.linalg.norm(init, axis=1, keepdims=True)


def _dopamine_readouts(model, sim) -> dict:
    codes = model.encode(sim.y, support=sim.support, baseline=sim.baseline_est)
    expected, level = sim.info["expected"], sim.info["level"]
    reward = np.where(expected, 2500, 1000) // sim.bin_ms
    at_reward = codes[np.arange(len(level)), :, :, reward]           # (trials, neurons, kernels)
    return dict(
        value=np.array([at_reward[level == k, :, 2].mean() for k in range(7)]),
        salience=np.array([at_reward[level == k, :, 1].mean() for k in range(7)]),
        cue=codes[:, :, 0, 1000 // sim.bin_ms],                       # (trials, neurons)
        value_per_neuron=at_reward[:, :, 2].mean(0),
        errors=kernel_error(sim.kernels_binned, model.kernels_),
    )


def _assert_dopamine_codes(out, sim):
    assert np.all(out["errors"] < 0.4)
    value, salience = out["value"], out["salience"]
    assert spearmanr(np.arange(7), value)[0] > 0.85
    assert salience.std() < 0.15 * salience.mean()
    assert np.ptp(value) > 2.5 * np.ptp(salience)
    expected = sim.info["expected"]
    assert np.all(out["cue"][~expected] == 0) and out["cue"][expected].mean() > 1
    assert np.corrcoef(out["value_per_neuron"], sim.info["offset"])[0, 1] > 0.3


def test_dopamine_codes_with_learned_kernels():
    """METHODS.md 2.8.4 with kernels learned on simulation B (40 neurons, 14 trials), started
    from :func:`_reward_window_init`.

    Measured, seeds 1 (this test) / 0 / 2 / 3:
    - kernel errors (cue, salience, value) [0.19 0.16 0.26]; worst over the seeds 0.37
      (from 0.28 0.18 0.57 at the start);
    - value code by reward level: Spearman 0.93 / 1.00 / 0.96 / 0.96;
    - salience code: sd / mean 0.11 / 0.08 / 0.09 / 0.11; its range is a quarter of the
      value code's (value 4.1-5.3, salience 1.0-1.3);
    - cue code exactly 0 on surprise trials, about 3.3 on expected trials.

    [A] Two parts of 2.8.4 hold only in a weaker form:
    - "Salience roughly constant": yes, but it falls slightly with reward (Spearman -0.7 to
      -0.93; it was flat with the true kernels): the learned value kernel keeps a little of
      the salience shape.
    - "Value code crosses zero at each neuron's offset": per-neuron zero crossings cannot be
      resolved from 14 trials (see
      test_dopamine_zero_crossings_are_not_resolvable_per_neuron). What holds is that
      neurons with larger offsets have larger value codes: r 0.45-0.66 between the
      per-neuron mean value code and the offset.
    """
    sim = simulate_b(n_neurons=40, rng=1)
    model = DUNL(_DOPAMINE, kernels=_reward_window_init(sim)).fit(
        sim.y, support=sim.support, baseline=sim.baseline_est, rng=0)
    _assert_dopamine_codes(_dopamine_readouts(model, sim), sim)


def test_dopamine_kernels_learned_from_the_default_init():
    """METHODS.md 2.8.4 from DUNL's own initial kernels (kernel_init "average"), the same
    fit as test_dopamine_codes_with_learned_kernels without :func:`_reward_window_init`.

    The salience and value kernels share every onset; the default start separates them
    ([A] rule of DeconvConfig.kernel_init): salience from the reward-locked average, value
    from the leading principal component of the reward windows (each averaged over the
    trial's neurons). Start errors (cue, salience, value) [0.32 0.24 0.58] (value 0.55-0.61
    on data seeds 0-4; 0.76-0.78 when both started from the average).

    Measured after 15 epochs, seed 1 (this test): kernel errors [0.22 0.20 0.27]; value code
    by reward Spearman 0.93; salience sd / mean 0.11; value range 4.55, salience 1.20; cue code
    0 on surprise trials, 3.3 on expected ones; r 0.44 between the per-neuron value code and
    the offset. Data seeds 0-4: errors at most 0.24 (cue), 0.33 (salience), 0.39 (value);
    Spearman 0.93-1.00; salience sd / mean 0.08-0.14; range ratio value / salience 3.8-4.8;
    r 0.44-0.65 except seed 4 (0.25, where the true kernels reach only 0.27). Fit seeds 1
    and 2 on data seed 1: value error 0.30 and 0.29. With 10 epochs the fit is still
    improving (seed 0: value error 0.43).

    Before that rule, both started from the average and learning settled in a label-mixed
    local minimum: 15 epochs on seeds 0-4 ended at value kernel error 0.85-0.88 (salience
    0.49-0.53, value code falling with reward, Spearman -0.68 to -0.96). The true kernels
    are the better optimum: 20 epochs started from them end at a lower training loss
    (0.012105 against 0.012181 from that start) with errors [0.13 0.11 0.17]. Random inits,
    100 epochs, 200 encoder iterations and 4 times the data (160 neurons or 56 trials)
    ended in the same wrong basin.
    """
    sim = simulate_b(n_neurons=40, rng=1)
    model = DUNL(_DOPAMINE).fit(sim.y, support=sim.support, baseline=sim.baseline_est, rng=0)
    _assert_dopamine_codes(_dopamine_readouts(model, sim), sim)


def test_dopamine_zero_crossings_are_not_resolvable_per_neuron():
    """METHODS.md 2.8.4 asks that the value code cross zero at each neuron's offset. On
    simulation B as 2.5 gives it (14 trials, a baseline of about 5 Hz), even an oracle does
    not resolve that: a per-neuron GLM that knows the true kernels, baselines, cue and
    salience codes, and that the value code is linear in the reward, fitting only its
    intercept and slope from all 14 trials. Its zero crossings correlate with the true ones
    at r 0.07 (seed 1) and 0.28 (seed 2), with a median error of 4-5 on a range of 11."""
    sim = simulate_b(n_neurons=40, rng=1)
    h, bins, K = sim.kernels_binned, sim.y.shape[-1], sim.kernel_length
    expected, level, offset = sim.info["expected"], sim.info["level"], sim.info["offset"]
    value_scale = np.linspace(1, 20, 7)[level]                        # (trials,)
    reward, cue = np.where(expected, 2500, 1000) // sim.bin_ms, 1000 // sim.bin_ms
    # codes are in 1-ms kernel units; a 25-ms binned unit-norm kernel is 5x the 1-ms one
    to_bins = 1 / np.sqrt(sim.bin_ms)
    crossings = []
    for j in range(sim.y.shape[1]):
        fixed = sim.baseline_est[:, j, None] * np.ones((len(level), bins))
        design = np.zeros((len(level), bins))
        for n in range(len(level)):
            if expected[n]:
                fixed[n, cue:cue + K] += sim.codes[n, j, 0] * to_bins * h[0]
            fixed[n, reward[n]:reward[n] + K] += sim.codes[n, j, 1] * to_bins * h[1]
            design[n, reward[n]:reward[n] + K] = to_bins * h[2]
        y = sim.y[:, j].astype(np.float64)

        def nll(p):
            eta = fixed + (p[0] + p[1] * value_scale[:, None]) * design
            return np.sum(np.logaddexp(0, eta) - y * eta)

        a, b = minimize(nll, np.zeros(2), method="BFGS").x
        crossings.append(-a / b)
    crossings = np.array(crossings)
    assert np.corrcoef(crossings, -offset)[0, 1] < 0.5
    assert np.median(np.abs(crossings + offset)) > 2.0


# ----------------------------------------------------------------- 2.8.5: unrolling sweep (D)
def _orthogonal_kernel_data(n_trials: int, *, n_kernels=3, K=20, n_times=100, n_sub=5,
                            rng=None):
    """Simulation D-like data [A] (2.5 D names only the sweep; simulate.py has no D).

    ``n_kernels`` orthogonal windowed-sinusoid kernels of K bins, one event per kernel per
    trial at a random onset, amplitude ~ N(8, 1), baseline logit -3, Binomial(``n_sub``)
    spikes per bin as fractions.

    Returns y (n_trials, n_times), the true kernels and the noiseless mean.
    """
    rng = np.random.default_rng(rng)
    t = np.arange(K) + 0.5
    waves = np.stack([np.sin(np.pi * t / K) * np.sin(np.pi * (c + 1) * t / K + 0.3 * c)
                      for c in range(n_kernels)])
    h = np.linalg.qr(waves.T)[0].T                                    # orthonormal rows
    h *= np.sign(h.sum(1, keepdims=True))                             # net-positive responses
    onsets = rng.integers(0, n_times - K + 1, (n_trials, n_kernels))
    amps = rng.normal(8.0, 1.0, (n_trials, n_kernels))
    eta = np.full((n_trials, n_times), -3.0)
    for n in range(n_trials):
        for c in range(n_kernels):
            eta[n, onsets[n, c]:onsets[n, c] + K] += amps[n, c] * h[c]
    mean = 1 / (1 + np.exp(-eta))
    y = rng.binomial(n_sub, mean) / n_sub
    return y.astype(np.float32), h, mean


def test_fit_and_kernel_similarity_rise_with_unrolled_iterations_and_saturate():
    """METHODS.md 2.8.5: test R^2 and kernel similarity (best-match max |xcorr|, as [D]'s
    sweep reports) rise with the number R of unrolled iterations and saturate by R 10-20.

    Measured (unknown timing, k = 1, default step 1 / L of about 2), R = 2 / 5 / 10 / 20:
    R^2 0.457 0.518 0.530 0.540 and similarity 0.821 0.915 0.933 0.930 (data seed 3; the
    noiseless mean reaches R^2 0.63). Over 3 data seeds R^2 rose 0.06-0.07 from R 2 to 10
    and changed by at most 0.011 from 10 to 20; similarity rose 0.04-0.11, then changed by
    at most 0.007. [D]'s step of 0.25 converges later: R^2 0.07 0.41 0.51 0.54 (0.57 at
    R = 50), similarity saturating by R = 20.
    """
    y, h, _ = _orthogonal_kernel_data(150, rng=3)
    y_test, _, _ = _orthogonal_kernel_data(100, rng=103)
    fit, similarity = {}, {}
    for R in (2, 5, 10, 20):
        cfg = DeconvConfig(n_kernels=3, kernel_length=20, likelihood="bernoulli", timing="unknown",
                           n_events=1, n_iter=R, refine_iter=R, epochs=10, batch_size=16, lr=0.02)
        model = DUNL(cfg).fit(y, baseline=-3.0, rng=0)
        codes = model.encode(y_test, baseline=-3.0)
        fit[R] = r2(y_test, model.reconstruct(codes, baseline=-3.0))
        errors = kernel_error(h[:, None], model.kernels_[None], shift_tolerant=True)  # (true, est)
        similarity[R] = float(np.sqrt(1 - errors.min(1) ** 2).mean())
    assert fit[2] < fit[5] and fit[10] - fit[2] > 0.03
    assert similarity[10] - similarity[2] > 0.02
    assert abs(fit[20] - fit[10]) < 0.02
    assert similarity[20] > similarity[10] - 0.02
