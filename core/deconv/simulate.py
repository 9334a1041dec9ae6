"""Simulated spiking data with known kernels and codes (METHODS.md 2.5, generators A and B).

Both generators work at 1-ms resolution with Bernoulli spikes ``p = sigmoid(eta)`` and bin
the raster into fractions of spiking 1-ms sub-bins, the observation of DUNL's binomial
model. Events start at >= 500 ms so the pre-event baseline window is clean (2.9).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._validation import UnitScopeError, check_range, ensure_int
from .likelihoods import logit
from .unrolled import _as_rng, support_from_onsets

__all__ = ["Simulation", "simulate_a", "simulate_b", "whisker_kernel", "dopamine_kernels",
           "bin_kernel", "REWARD_AMOUNTS"]

REWARD_AMOUNTS = (0.1, 0.3, 1.2, 2.5, 5.0, 10.0, 20.0)  # labels 1..7 of simulation B [D]


@dataclass
class Simulation:
    """Simulated observations with their ground truth.

    Attributes
    ----------
    y : ndarray, shape (n_trials, n_bins) or (n_trials, n_neurons, n_bins)
        Fraction of spiking 1-ms sub-bins per bin, in [0, 1].
    support : ndarray of bool, shape (n_trials, n_kernels, n_codes)
        True event support (code index = onset bin).
    kernels : ndarray, shape (n_kernels, kernel_ms)
        True unit-norm kernels at 1-ms resolution.
    kernels_binned : ndarray, shape (n_kernels, kernel_bins)
        True kernels block-averaged to the bins and renormalised.
    codes : ndarray, shape (n_trials, [n_neurons,] n_kernels)
        True event amplitudes (1-ms kernel units) per trial and kernel; for simulation A,
        shape (n_trials, n_events), one per event.
    onsets : list of ndarray of int
        Per trial, the onset bins of its events.
    baseline : ndarray, shape (n_trials,) or (n_trials, n_neurons)
        True baseline logit at 1 ms.
    baseline_est : ndarray, same shape as ``baseline``
        Logit of the mean binned rate in the first 500 ms, floored at 1e-3 ([D]).
    bin_ms : int
        Bin width in ms.
    info : dict
        Generator parameters and extra ground truth (reward levels, offsets, ...).
    """

    y: np.ndarray
    support: np.ndarray
    kernels: np.ndarray
    kernels_binned: np.ndarray
    codes: np.ndarray
    onsets: list
    baseline: np.ndarray
    baseline_est: np.ndarray
    bin_ms: int
    info: dict = field(default_factory=dict)

    @property
    def kernel_length(self) -> int:
        """Kernel length in bins."""
        return int(self.kernels_binned.shape[1])


def _unit(h: np.ndarray) -> np.ndarray:
    return h / np.linalg.norm(h, axis=-1, keepdims=True)


def whisker_kernel(kernel_ms: int = 500) -> np.ndarray:
    """Simulation A's true kernel at 1 ms, unit norm [A].

    The published kernel is read from a file absent from [D]; ours is a thalamus-like
    whisker response: an excitatory peak at 50 ms (alpha function) followed by a slower,
    weaker suppression peaking at 150 ms.
    """
    t = np.arange(kernel_ms) + 0.5
    h = (t / 50.0) * np.exp(1 - t / 50.0) - 0.3 * (t / 150.0) ** 2 * np.exp(2 * (1 - t / 150.0))
    return _unit(h)


def dopamine_kernels(kernel_ms: int = 600) -> np.ndarray:
    """Simulation B's three non-negative true kernels at 1 ms (cue, salience, value/RPE) [A].

    Alpha functions peaking at 120 ms (cue), 60 ms (salience, fast and brief) and 220 ms
    (value/RPE, slower), unit norm.
    """
    t = np.arange(kernel_ms) + 0.5
    peaks = np.array([120.0, 60.0, 220.0])[:, None]
    return _unit((t / peaks) * np.exp(1 - t / peaks))


def bin_kernel(kernel: np.ndarray, bin_ms: int) -> np.ndarray:
    """Block-average 1-ms kernels (..., kernel_ms) to ``bin_ms`` bins and renormalise."""
    n = kernel.shape[-1] // bin_ms
    return _unit(kernel[..., : n * bin_ms].reshape(kernel.shape[:-1] + (n, bin_ms)).mean(-1))


def _spikes_binned(eta: np.ndarray, bin_ms: int, rng) -> np.ndarray:
    p = 1.0 / (1.0 + np.exp(-eta))
    spikes = rng.random(eta.shape, dtype=np.float32) < p
    n = eta.shape[-1] // bin_ms
    return spikes[..., : n * bin_ms].reshape(eta.shape[:-1] + (n, bin_ms)).mean(-1).astype(np.float32)


def _baseline_est(y: np.ndarray, bin_ms: int) -> np.ndarray:
    rate = y[..., : max(1, 500 // bin_ms)].mean(-1)
    p = np.clip(rate, 1e-3, 1 - 1e-3)
    return np.log(p / (1 - p))


def simulate_a(*, n_trials: int = 500, bin_ms: int = 25, rate_hz: float = 8.0, n_events: int = 5,
               amp_mean: float = 30.0, amp_sd: float = 2.0, trial_ms: int = 4000,
               kernel_ms: int = 500, grid_ms: int = 200, first_event_ms: int = 500,
               kernel: np.ndarray | None = None, rng=None) -> Simulation:
    """Characterisation simulation A (thalamus / whisker, METHODS.md 2.5 A).

    One neuron; trials of ``trial_ms`` ms; one kernel of ``kernel_ms`` ms; ``n_events``
    events per trial at distinct random positions of a ``grid_ms`` grid that starts at the
    first grid point >= ``first_event_ms`` (>= 500 ms, unlike [D]'s 400 ms, 2.9) and ends
    where the kernel still fits; amplitudes ~ N(amp_mean, amp_sd^2); baseline logit
    logit(rate_hz * 1 ms) with an across-trial sd of 0.01.

    Parameters
    ----------
    n_trials : int
    bin_ms : int
        Bin width in ms; must divide ``trial_ms``, ``kernel_ms`` and ``grid_ms``.
    rate_hz : float
        Baseline firing rate in Hz ([D] uses 2, 5, 8, 11, 14 and 17 Hz).
    kernel : ndarray, shape (kernel_ms,), optional
        True kernel at 1 ms (default :func:`whisker_kernel`); renormalised.
    rng : numpy.random.Generator or int or None

    Returns
    -------
    Simulation
        ``y`` (n_trials, trial_ms / bin_ms); ``codes`` (n_trials, n_events) amplitudes.
    """
    n_trials = ensure_int("n_trials", n_trials)
    check_range("n_trials", n_trials, low=1)
    bin_ms, trial_ms, kernel_ms, grid_ms = (ensure_int(k, v) for k, v in (
        ("bin_ms", bin_ms), ("trial_ms", trial_ms), ("kernel_ms", kernel_ms), ("grid_ms", grid_ms)))
    check_range("rate_hz", rate_hz, low=0.0, low_inclusive=False, high=1000.0, high_inclusive=False)
    check_range("first_event_ms", first_event_ms, low=500)
    for name, v in (("trial_ms", trial_ms), ("kernel_ms", kernel_ms), ("grid_ms", grid_ms)):
        if v % bin_ms:
            raise UnitScopeError(f"{bin_ms=} must divide {name}={v}.")
    rng = _as_rng(rng)
    h = whisker_kernel(kernel_ms) if kernel is None else _unit(np.asarray(kernel, dtype=float))
    if h.shape != (kernel_ms,):
        raise UnitScopeError(f"kernel has shape {h.shape}, expected ({kernel_ms},) for {kernel_ms=}.")
    start = -(-first_event_ms // grid_ms) * grid_ms
    grid = np.arange(start, trial_ms - kernel_ms + 1, grid_ms)
    if len(grid) < n_events:
        raise UnitScopeError(
            f"Only {len(grid)} grid positions fit {n_events=} events in {trial_ms=} ms with a "
            f"{kernel_ms} ms kernel starting at >= {first_event_ms} ms.")
    onsets_ms = np.sort(np.stack([rng.choice(grid, n_events, replace=False) for _ in range(n_trials)]), 1)
    amps = rng.normal(amp_mean, amp_sd, (n_trials, n_events))
    base = logit(rate_hz / 1000.0) + 0.01 * rng.standard_normal(n_trials)
    eta = np.repeat(base[:, None], trial_ms, axis=1)  # (trials, ms)
    rows = np.arange(n_trials)[:, None, None]
    cols = onsets_ms[:, :, None] + np.arange(kernel_ms)  # (trials, events, kernel_ms)
    np.add.at(eta, (np.broadcast_to(rows, cols.shape), cols), amps[:, :, None] * h)
    y = _spikes_binned(eta, bin_ms, rng)
    onsets = [o // bin_ms for o in onsets_ms]
    support = support_from_onsets(onsets, n_times=y.shape[-1], kernel_length=kernel_ms // bin_ms)
    return Simulation(y=y, support=support, kernels=h[None], kernels_binned=bin_kernel(h[None], bin_ms),
                      codes=amps, onsets=onsets, baseline=base, baseline_est=_baseline_est(y, bin_ms),
                      bin_ms=bin_ms, info=dict(generator="A", rate_hz=rate_hz, n_events=n_events,
                                               amp_mean=amp_mean, amp_sd=amp_sd, trial_ms=trial_ms,
                                               kernel_ms=kernel_ms, grid_ms=grid_ms,
                                               first_event_ms=first_event_ms, onsets_ms=onsets_ms))


def simulate_b(*, n_neurons: int = 40, n_trials: int = 14, bin_ms: int = 25, rng=None) -> Simulation:
    """Dopamine-like simulation B (METHODS.md 2.5 B).

    Trials of 3100 ms; the first half are expected trials (cue at 1000 ms, reward at
    2500 ms), the second half surprise trials (reward at 1000 ms, no cue). Each half covers
    the 7 reward levels in random order (cycled if a half has more than 7 trials). Three
    non-negative 600-ms kernels: cue (at the cue), salience and value/RPE (both at the
    reward). Per neuron and trial: cue code ~ N(15, 1), salience ~ N(20, 2^2), value =
    linspace(1, 20, 7)[level] + a per-neuron offset ~ U(-7, 5) (neuron-specific zero
    crossings); baseline logit ~ N(-5.3, 0.3^2) per neuron.

    Returns
    -------
    Simulation
        ``y`` (n_trials, n_neurons, 124); ``codes`` (n_trials, n_neurons, 3);
        ``info`` holds ``level`` (n_trials,) in 0..6, ``expected`` (n_trials,) bool and
        ``offset`` (n_neurons,).
    """
    n_neurons, n_trials, bin_ms = (ensure_int(k, v) for k, v in (
        ("n_neurons", n_neurons), ("n_trials", n_trials), ("bin_ms", bin_ms)))
    check_range("n_trials", n_trials, low=2)
    check_range("n_neurons", n_neurons, low=1)
    trial_ms, kernel_ms = 3100, 600
    for name, v in (("trial_ms", trial_ms), ("kernel_ms", kernel_ms), ("cue time", 1000), ("reward time", 2500)):
        if v % bin_ms:
            raise UnitScopeError(f"{bin_ms=} must divide {name} ({v} ms).")
    rng = _as_rng(rng)
    h = dopamine_kernels(kernel_ms)
    n_exp = n_trials // 2
    expected = np.arange(n_trials) < n_exp
    level = np.concatenate([np.resize(rng.permutation(7), n_exp), np.resize(rng.permutation(7), n_trials - n_exp)])
    offset = rng.uniform(-7, 5, n_neurons)
    codes = np.stack([rng.normal(15, 1, (n_trials, n_neurons)) * expected[:, None],
                      rng.normal(20, 2, (n_trials, n_neurons)),
                      np.linspace(1, 20, 7)[level][:, None] + offset[None]], axis=-1)
    base = np.broadcast_to(rng.normal(-5.3, 0.3, n_neurons), (n_trials, n_neurons)).copy()
    cue_ms = np.where(expected, 1000, -1)
    reward_ms = np.where(expected, 2500, 1000)
    eta = np.repeat(base[..., None], trial_ms, axis=-1)  # (trials, neurons, ms)
    for n in range(n_trials):
        if expected[n]:
            eta[n, :, cue_ms[n]:cue_ms[n] + kernel_ms] += codes[n, :, 0, None] * h[0]
        r = slice(reward_ms[n], reward_ms[n] + kernel_ms)
        eta[n, :, r] += codes[n, :, 1, None] * h[1] + codes[n, :, 2, None] * h[2]
    y = _spikes_binned(eta, bin_ms, rng)
    onsets, which = [], []
    for n in range(n_trials):
        if expected[n]:
            onsets.append(np.array([cue_ms[n], reward_ms[n]]) // bin_ms)
            which.append([[0], [1, 2]])
        else:
            onsets.append(np.array([reward_ms[n]]) // bin_ms)
            which.append([[1, 2]])
    support = support_from_onsets(onsets, n_times=y.shape[-1], kernel_length=kernel_ms // bin_ms,
                                  n_kernels=3, kernels=which)
    return Simulation(y=y, support=support, kernels=h, kernels_binned=bin_kernel(h, bin_ms), codes=codes,
                      onsets=onsets, baseline=base, baseline_est=_baseline_est(y, bin_ms), bin_ms=bin_ms,
                      info=dict(generator="B", level=level, expected=expected, offset=offset,
                                reward_amounts=REWARD_AMOUNTS, cue_ms=1000, reward_ms=(2500, 1000)))
