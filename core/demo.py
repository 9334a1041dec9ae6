"""The demo recording: a deterministic simulator of a reaching task on a 4 x 8 ECoG grid.

Ground truth a test can check:

* 250 Hz, 10 minutes, 32 channels on a 4 x 8 grid (4 mm pitch), 1/f background noise that
  is spatially correlated (Gaussian kernel over grid distance).
* Behaviour: movement bouts every 2.5-5 s, each a bell-shaped (minimum-jerk) speed profile;
  the target is hand speed; events are movement onsets valued by their peak speed.
* Channel roles, stored as coordinates (``role``, ``band_lo``, ``band_hi``):
  ``high_gamma``: 60-90 Hz amplitude rises with speed (leading it by 100 ms);
  ``beta``: 15-25 Hz amplitude drops around movement;
  ``low_freq``: a 1-4 Hz movement-locked waveform of fixed amplitude whose shape (phase)
  carries the timing within the movement;
  ``noise``: background only.
* ``ipsi_fraction`` (default 0): the share of movements made with the other hand
  (ipsilateral to the grid). Beta drops on every movement (beta desynchronisation is
  bilateral), but high gamma and the 1-4 Hz waveform follow only the contralateral ones,
  so on ipsilateral movements beta alone marks the movement; the target is the speed of
  either hand. The onsets of ipsilateral movements are kept in the signals' attrs
  (``ipsi_onsets``). A what-if for teaching: does a decoder use a population that alone
  carries part of the target? (ShallowFBCSPNet does; Deep4 does not learn to, see README.)
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from ._validation import UnitScopeError, check_range
from .recording import Events, Recording

__all__ = ["simulate_reaching", "ROLE_BANDS", "GRID_LAYOUT"]

ROLE_BANDS = {"high_gamma": (60.0, 90.0), "beta": (15.0, 25.0), "low_freq": (1.0, 4.0)}

# Role of each grid position, row by row (H high gamma, B beta, L low frequency, . noise).
GRID_LAYOUT = (
    ". . H H H B . .",
    ". L H H H B B .",
    ". L L L B B B .",
    ". . L L . . . .",
)
_ROLE_OF = {"H": "high_gamma", "B": "beta", "L": "low_freq", ".": "noise"}
_PITCH_M = 0.004  # grid pitch in metres


def _bandlimited(rng: np.random.Generator, n_chans: int, n_times: int, sfreq: float,
                 lo: float, hi: float) -> np.ndarray:
    """White noise band-passed in the Fourier domain, unit variance per channel."""
    spec = np.fft.rfft(rng.standard_normal((n_chans, n_times)), axis=1)  # (chans, freqs)
    freqs = np.fft.rfftfreq(n_times, 1 / sfreq)
    spec[:, (freqs < lo) | (freqs > hi)] = 0
    x = np.fft.irfft(spec, n=n_times, axis=1)  # (chans, times)
    return x / x.std(axis=1, keepdims=True)


def _pink(rng: np.random.Generator, n_chans: int, n_times: int, sfreq: float) -> np.ndarray:
    """1/f (pink) noise, unit variance per channel, flat below 1 Hz."""
    spec = np.fft.rfft(rng.standard_normal((n_chans, n_times)), axis=1)
    freqs = np.fft.rfftfreq(n_times, 1 / sfreq)
    spec /= np.sqrt(np.maximum(freqs, 1.0))
    x = np.fft.irfft(spec, n=n_times, axis=1)
    return x / x.std(axis=1, keepdims=True)


def _smooth(x: np.ndarray, sfreq: float, sigma_s: float) -> np.ndarray:
    half = int(4 * sigma_s * sfreq)
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / (sigma_s * sfreq)) ** 2)
    return np.convolve(x, k / k.sum(), mode="same")


def simulate_reaching(*, seed: int = 0, duration: float = 600.0, sfreq: float = 250.0,
                      ipsi_fraction: float = 0.0) -> Recording:
    """Simulate the demo ECoG reaching recording.

    Parameters
    ----------
    seed : int
        Seed of the simulator's own ``numpy.random.Generator``; the same seed gives the same
        recording bit for bit.
    duration : float
        Length in seconds (at least 30).
    sfreq : float
        Sampling frequency in Hz (at least 200, so that the 60-90 Hz band exists).
    ipsi_fraction : float
        Share of ipsilateral movements, 0-1 (module docstring). Drawn from a stream of its
        own, so the behaviour and the noise are those of ``ipsi_fraction=0``.

    Returns
    -------
    recording : Recording
        ``signals`` in volts, dims ("channel", "time"), with channel coords ``ch_type``
        ("ecog"), ``role``, ``band_lo``, ``band_hi`` (Hz, NaN for noise), ``row``, ``col``,
        ``x``, ``y`` (metres); ``target`` hand speed in m/s; events "movement_onset" valued
        by peak speed (both hands).
    """
    check_range("duration", duration, low=30.0)
    check_range("sfreq", sfreq, low=200.0)
    check_range("ipsi_fraction", ipsi_fraction, low=0.0, high=1.0)
    rng = np.random.default_rng(seed)
    side_rng = np.random.default_rng([seed, 1])  # its own stream: the rest stays as it was
    n_times = int(round(duration * sfreq))
    t = np.arange(n_times) / sfreq

    # --- behaviour: minimum-jerk bouts ---------------------------------------------------
    onsets, peaks, speed = [], [], np.zeros(n_times)
    contra_speed = np.zeros(n_times)  # speed of the movements the grid's hemisphere drives
    ipsi_onsets = []
    phase_wave = np.zeros(n_times)  # the movement-locked low-frequency waveform
    onset = 2.0 + rng.uniform(0, 1)
    while onset + 3.0 < duration:
        dur = rng.uniform(0.8, 1.4)
        peak = rng.uniform(0.15, 0.6)  # m/s
        i0, i1 = int(onset * sfreq), int((onset + dur) * sfreq)
        tau = (np.arange(i0, i1) / sfreq - onset) / dur
        bell = peak * 16 * tau**2 * (1 - tau) ** 2  # bell shape, peak at tau = 0.5
        speed[i0:i1] += bell
        contra = side_rng.uniform() >= ipsi_fraction
        if not contra:
            ipsi_onsets.append(onset)
        # 2.5 Hz waveform locked to onset, Gaussian-windowed, from -0.3 s to +1.5 s
        j0, j1 = max(int((onset - 0.3) * sfreq), 0), min(int((onset + 1.5) * sfreq), n_times)
        rel = np.arange(j0, j1) / sfreq - onset
        if contra:
            contra_speed[i0:i1] += bell
            phase_wave[j0:j1] += np.sin(2 * np.pi * 2.5 * rel) * np.exp(-0.5 * ((rel - 0.45) / 0.4) ** 2)
        onsets.append(onset)
        peaks.append(peak)
        onset += dur + rng.uniform(1.5, 3.6)
    if len(onsets) < 5:
        raise UnitScopeError(f"{duration=} s is too short for the demo: it holds fewer than 5 movements.")

    # --- channels --------------------------------------------------------------------------
    rows, cols = np.divmod(np.arange(32), 8)
    roles = np.array([_ROLE_OF[GRID_LAYOUT[r].split()[c]] for r, c in zip(rows, cols)])
    lead = int(0.1 * sfreq)  # neural activity leads movement by 100 ms
    speed_lead = np.r_[speed[lead:], np.zeros(lead)]
    norm_speed = np.r_[contra_speed[lead:], np.zeros(lead)] / 0.6
    movement = np.clip(_smooth((speed_lead > 0.02).astype(float), sfreq, 0.15) * 1.3, 0, 1)

    n_chans = 32
    d2 = (rows[:, None] - rows[None]) ** 2 + (cols[:, None] - cols[None]) ** 2
    mixing = np.linalg.cholesky(np.exp(-d2 / (2 * 1.5**2)) + 1e-6 * np.eye(n_chans))
    background = mixing @ _pink(rng, n_chans, n_times, sfreq)  # (chans, times), correlated
    background /= background.std(axis=1, keepdims=True)
    x = background + 0.2 * rng.standard_normal((n_chans, n_times))

    band_lo = np.full(n_chans, np.nan)
    band_hi = np.full(n_chans, np.nan)
    gains = rng.uniform(0.7, 1.0, n_chans)
    for role, (lo, hi) in ROLE_BANDS.items():
        idx = np.flatnonzero(roles == role)
        band_lo[idx], band_hi[idx] = lo, hi
        if role == "high_gamma":
            carrier = _bandlimited(rng, len(idx), n_times, sfreq, lo, hi)
            x[idx] += gains[idx, None] * (0.15 + 1.2 * norm_speed) * carrier
        elif role == "beta":
            carrier = _bandlimited(rng, len(idx), n_times, sfreq, lo, hi)
            x[idx] += gains[idx, None] * 0.9 * (1.0 - 0.8 * movement) * carrier
        else:
            x[idx] += gains[idx, None] * 1.5 * phase_wave

    signals = xr.DataArray(
        (x * 20e-6).astype(np.float32),  # about 20 uV of background
        dims=("channel", "time"),
        coords={
            "channel": [f"G{i + 1:02d}" for i in range(n_chans)],
            "time": t,
            "ch_type": ("channel", ["ecog"] * n_chans),
            "role": ("channel", roles),
            "band_lo": ("channel", band_lo),
            "band_hi": ("channel", band_hi),
            "row": ("channel", rows),
            "col": ("channel", cols),
            "x": ("channel", cols * _PITCH_M),
            "y": ("channel", -rows * _PITCH_M),
        },
        attrs={"sfreq": float(sfreq), "units": "V", "source": "unitscope demo reaching simulator",
               "seed": int(seed), "duration": float(duration),
               **({"ipsi_fraction": float(ipsi_fraction), "ipsi_onsets": np.array(ipsi_onsets, dtype=float)}
                  if ipsi_fraction > 0 else {})},
        name="ecog",
    )
    target = xr.DataArray(speed.astype(np.float32), dims=("time",), coords={"time": t},
                          name="hand_speed", attrs={"units": "m/s"})
    events = Events(np.array(onsets), np.full(len(onsets), "movement_onset"), np.array(peaks))
    return Recording(signals, target, events)
