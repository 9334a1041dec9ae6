"""Generators A and B (METHODS.md 2.5), the metrics of 2.6, and DUNL validated on them (2.8)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from core._validation import UnitScopeError
from core.deconv import (DUNL, DeconvConfig, detection_rates, kernel_error, r2, simulate_a,
                         simulate_b, upsample_kernel)
from core.deconv.likelihoods import logit
from core.deconv.simulate import bin_kernel, whisker_kernel


# -------------------------------------------------------------------------------- metrics
def test_kernel_error_is_the_sine_of_the_angle():
    h = np.array([1.0, 2.0, 0.5, -1.0])
    assert kernel_error(h, 3 * h) == pytest.approx(0.0, abs=1e-7)
    assert kernel_error(h, -h) == pytest.approx(0.0, abs=1e-7)  # sign does not count
    assert kernel_error([1.0, 0.0], [0.0, 1.0]) == pytest.approx(1.0)
    assert kernel_error([1.0, 0.0], [1.0, 1.0]) == pytest.approx(np.sin(np.pi / 4))
    shifted = np.roll(np.r_[h, np.zeros(4)], 2)
    assert kernel_error(np.r_[h, np.zeros(4)], shifted) > 0.5
    assert kernel_error(np.r_[h, np.zeros(4)], shifted, shift_tolerant=True) == pytest.approx(0.0, abs=1e-7)
    np.testing.assert_allclose(kernel_error(np.eye(3), np.eye(3)), 0.0, atol=1e-7)


def test_binned_kernel_upsampled_is_close_to_the_fine_kernel():
    h = whisker_kernel(500)
    assert kernel_error(h, bin_kernel(h, 5)) < 0.05  # interpolated back to 1 ms
    assert kernel_error(h, bin_kernel(h, 5)) < kernel_error(h, bin_kernel(h, 50))
    np.testing.assert_allclose(np.linalg.norm(upsample_kernel(bin_kernel(h, 25), 500)), 1.0)


def test_detection_rates_on_handmade_codes():
    support = np.zeros((2, 1, 20), bool)
    support[0, 0, [3, 10]] = True
    support[1, 0, [15]] = True
    codes = np.zeros((2, 1, 20))
    codes[0, 0, 4] = 1.0   # hit within 1 bin of 3
    codes[0, 0, 17] = 1.0  # false
    codes[1, 0, 13] = 2.0  # hit within 2 bins of 15
    hit, false = detection_rates(codes, support, tol=2)
    assert hit == pytest.approx(2 / 3) and false == pytest.approx(1 / 3)
    hit, false = detection_rates(codes, support, tol=1)
    assert hit == pytest.approx(1 / 3) and false == pytest.approx(2 / 3)
    with pytest.raises(UnitScopeError, match="codes have shape"):
        detection_rates(codes[:, :, :10], support)


def test_r2():
    y = np.arange(10.0)
    assert r2(y, y) == 1.0
    assert r2(y, np.full(10, y.mean())) == pytest.approx(0.0)


# ----------------------------------------------------------------------------- generators
def test_simulation_a_follows_the_protocol():
    sim = simulate_a(n_trials=200, bin_ms=25, rate_hz=8.0, rng=1)
    assert sim.y.shape == (200, 160) and sim.kernel_length == 20
    assert sim.y.min() >= 0 and sim.y.max() <= 1
    onsets_ms = sim.info["onsets_ms"]
    assert onsets_ms.min() >= 500 and onsets_ms.max() <= 3500  # kernel fits, baseline clean
    assert np.all(onsets_ms % 200 == 0)
    assert all(len(np.unique(o)) == 5 for o in onsets_ms)
    assert sim.support.sum() == 200 * 5
    # the first 500 ms are pure baseline: the rate there is the 8 Hz of the protocol
    assert sim.y[:, :20].mean() * 1000 == pytest.approx(8.0, rel=0.1)
    assert sim.baseline.mean() == pytest.approx(logit(0.008), abs=0.01)
    assert sim.codes.mean() == pytest.approx(30.0, abs=0.3)
    again = simulate_a(n_trials=200, bin_ms=25, rng=1)
    np.testing.assert_array_equal(sim.y, again.y)
    with pytest.raises(UnitScopeError, match="must divide"):
        simulate_a(n_trials=2, bin_ms=30)
    with pytest.raises(UnitScopeError, match="grid positions fit"):
        simulate_a(n_trials=2, n_events=20)


def test_simulation_b_follows_the_protocol():
    sim = simulate_b(rng=0)
    assert sim.y.shape == (14, 40, 124)
    expected, level = sim.info["expected"], sim.info["level"]
    assert expected.sum() == 7 and sorted(level[expected]) == list(range(7))
    assert np.all(sim.codes[~expected, :, 0] == 0)  # no cue in surprise trials
    assert not sim.support[~expected, 0].any() and sim.support[:, 1:].sum() == 2 * 14
    np.testing.assert_array_equal(sim.support[:, 1], sim.support[:, 2])  # shared reward onset
    assert np.all(sim.kernels >= 0)
    offset = sim.info["offset"]
    np.testing.assert_allclose(sim.codes[:, :, 2], np.linspace(1, 20, 7)[level][:, None] + offset)


# --------------------------------------------------------------- DUNL on the simulations
@pytest.mark.slow
def test_known_timing_kernel_error_falls_with_trials():
    """METHODS.md 2.8.1: error far below the 0.79 reference and decreasing with trials."""
    errors = []
    for n_trials in (30, 100, 300):
        sim = simulate_a(n_trials=n_trials, bin_ms=25, rng=n_trials)
        cfg = DeconvConfig(kernel_length=20, likelihood="bernoulli", n_iter=30, epochs=10,
                           batch_size=16, lr=0.02)
        model = DUNL(cfg).fit(sim.y, support=sim.support, rng=0)
        errors.append(float(kernel_error(sim.kernels_binned, model.kernels_)[0]))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.15


@pytest.mark.slow
@pytest.mark.parametrize("bin_ms", [10, 50])
def test_known_timing_kernel_error_falls_with_trials_at_other_bin_sizes(bin_ms):
    """METHODS.md 2.8.1 "at every bin size": 10-ms bins (a 50-bin kernel) and 50-ms bins (10
    bins: shorter than the initial kernels' 13-tap smoothing, which failed with a numpy
    broadcasting error before). Mean over three data sets per size (measured: 10 ms 0.238,
    0.127, 0.071; 50 ms 0.155, 0.084, 0.061; one data set alone is not monotone at 50 ms:
    0.127, 0.052, 0.088)."""
    means = []
    for n_trials in (30, 100, 300):
        errors = []
        for seed in range(3):
            sim = simulate_a(n_trials=n_trials, bin_ms=bin_ms, rng=1000 * seed + n_trials)
            cfg = DeconvConfig(kernel_length=sim.kernels_binned.shape[-1], likelihood="bernoulli", n_iter=30,
                               epochs=10, batch_size=16, lr=0.02)
            model = DUNL(cfg).fit(sim.y, support=sim.support, rng=0)
            errors.append(float(kernel_error(sim.kernels_binned, model.kernels_)[0]))
        means.append(np.mean(errors))
    assert means[0] > means[1] > means[2] and means[2] < 0.15, means


@pytest.mark.slow
def test_unknown_timing_detects_events_on_simulation_a():
    sim = simulate_a(n_trials=200, bin_ms=25, rng=3)
    test = simulate_a(n_trials=50, bin_ms=25, rng=4)
    cfg = DeconvConfig(kernel_length=20, likelihood="bernoulli", timing="unknown", n_events=5,
                       n_iter=40, refine_iter=20, topk_every=10, epochs=8, lr=0.02)
    model = DUNL(cfg).fit(sim.y, baseline=sim.baseline_est, rng=0)
    assert kernel_error(sim.kernels_binned, model.kernels_, shift_tolerant=True) < 0.3
    hit, false = detection_rates(model.encode(test.y, baseline=test.baseline_est), test.support, tol=2)
    assert hit > 0.85 and false < 0.15


def test_true_kernels_recover_amplitudes_on_simulation_a():
    """METHODS.md 2.8.3: known support and true kernel, codes track the amplitudes. [A] With
    amplitudes of SD 6 and 10-ms bins: at the spec's SD 2 no estimator can reach its r > 0.9
    (the next test)."""
    sim = simulate_a(n_trials=100, bin_ms=10, amp_sd=6.0, rng=5)
    model = DUNL(kernel_length=50, likelihood="bernoulli", n_iter=100, kernels=sim.kernels_binned)
    codes = model.encode(sim.y, support=sim.support)  # baseline from bins outside the kernels
    est = np.stack([codes[n, 0, sim.onsets[n]] for n in range(100)])
    assert np.corrcoef(est.ravel(), sim.codes.ravel())[0, 1] > 0.7
    codes = model.encode(sim.y, support=sim.support, baseline=sim.baseline)  # the true baseline
    est = np.stack([codes[n, 0, sim.onsets[n]] for n in range(100)])
    assert np.corrcoef(est.ravel(), sim.codes.ravel())[0, 1] > 0.8


def test_known_support_codes_are_the_exact_fit_on_simulation_a_as_specified():
    """METHODS.md 2.8.3 asks codes that correlate with the true amplitudes at r > 0.9, on
    simulation A as 2.5 gives it (amplitudes N(30, 2²), 25-ms bins). No estimator reaches it
    there: the exact maximum-likelihood fit (L-BFGS-B, the same kernel, support and
    baseline) gives r 0.30, a spread of 2 logits being small against the Bernoulli noise of
    a 20-bin kernel. The encoder is held to that exact fit instead (its codes within 1e-3),
    and to tracking amplitudes that spread more (the test above)."""
    from scipy.optimize import minimize

    sim = simulate_a(n_trials=60, bin_ms=25, rng=11)
    k = sim.kernel_length
    model = DUNL(kernel_length=k, likelihood="bernoulli", n_iter=300, kernels=sim.kernels_binned)
    codes = model.encode(sim.y, support=sim.support, baseline=sim.baseline_est)
    est = np.stack([codes[n, 0, sim.onsets[n]] for n in range(len(sim.y))])
    h, t = sim.kernels_binned[0], sim.y.shape[1]
    exact = []
    for n in range(len(sim.y)):
        d = np.zeros((len(sim.onsets[n]), t))  # one row per event: the kernel at its onset
        for e, j in enumerate(sim.onsets[n]):
            d[e, j:j + k] = h
        a, y = sim.baseline_est[n], sim.y[n].astype(np.float64)
        fit = minimize(lambda x: np.sum(np.logaddexp(0, a + x @ d) - y * (a + x @ d)), np.zeros(len(d)),
                       jac=lambda x: d @ (1 / (1 + np.exp(-(a + x @ d))) - y), bounds=[(0, None)] * len(d),
                       method="L-BFGS-B", options=dict(maxiter=2000, gtol=1e-10))
        exact.append(fit.x)
    exact = np.array(exact)
    assert np.abs(est - exact).max() < 1e-3  # 3e-4 measured
    r_exact = np.corrcoef(exact.ravel(), sim.codes.ravel())[0, 1]
    assert 0.1 < r_exact < 0.5  # 0.30: the spec's 0.9 is out of reach, not missed


def test_dopamine_codes_with_true_kernels():
    """METHODS.md 2.8.4 with the true kernels: value code rises with reward, salience flat,
    cue code only on expected trials."""
    sim = simulate_b(n_neurons=40, rng=1)
    cfg = DeconvConfig(n_kernels=3, kernel_length=24, likelihood="bernoulli", n_iter=150,
                       code_sign=(1, 1, 2), kernel_nonneg=(True, True, True))
    codes = DUNL(cfg, kernels=sim.kernels_binned).encode(sim.y, support=sim.support,
                                                         baseline=sim.baseline_est)
    expected, level = sim.info["expected"], sim.info["level"]
    reward_bin = np.where(expected, 100, 40)
    at_reward = codes[np.arange(14), :, :, reward_bin]  # (trials, neurons, kernels)
    value = np.array([at_reward[level == k, :, 2].mean() for k in range(7)])
    salience = np.array([at_reward[level == k, :, 1].mean() for k in range(7)])
    assert spearmanr(np.arange(7), value)[0] > 0.9
    assert abs(spearmanr(np.arange(7), salience)[0]) < 0.6
    assert value.max() - value.min() > 3 * salience.std()
    cue = codes[:, :, 0, 40]
    assert np.all(cue[~expected] == 0) and cue[expected].mean() > 1
