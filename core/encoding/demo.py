"""Encoding data from the demo reaching recording: band envelopes from movement features.

The demo ECoG recording (:func:`core.demo.simulate_reaching`) is turned into an encoding
data set (:mod:`core.encoding._data`):

* signals: each channel's amplitude envelope (band-pass, Hilbert magnitude) in its role's
  band (``band_lo``-``band_hi`` coords: high gamma 60-90 Hz, beta 15-25 Hz, low frequency
  1-4 Hz); noise channels use the high-gamma band [A]; envelopes are low-passed at 4 Hz
  and decimated to ``sfreq``;
* epochs locked to every movement onset, ``tmin`` to ``tmax``;
* forcings: ``movement`` (1 while any movement in the window is under way), ``peak_speed``
  (each movement's peak speed over its duration), ``speed`` (the hand speed trace, a
  *series* feature, see :mod:`core.encoding.importance`) and ``first_mask`` (the epoch's
  own movement).

Ground truth: high-gamma envelopes follow speed, beta envelopes drop during movement, noise
channels follow nothing; the channel coords ``role`` travel with the data set.
"""
from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.signal import hilbert, resample_poly

from .._validation import UnitScopeError, check_range
from ._data import make_epochs

__all__ = ["reaching_epochs", "band_envelopes"]

_NOISE_BAND = (60.0, 90.0)


def band_envelopes(signals: xr.DataArray, *, sfreq: float, smooth: float = 4.0) -> xr.DataArray:
    """Amplitude envelope of every channel in its band, low-passed and decimated to ``sfreq``.

    Parameters
    ----------
    signals : xarray.DataArray, dims ("channel", "time")
        ``attrs["sfreq"]`` in Hz; channel coords ``band_lo``/``band_hi`` (Hz, NaN: the
        high-gamma band).
    sfreq : float
        Output sampling frequency in Hz; must divide the input rate.
    smooth : float
        Low-pass cut-off (Hz) applied to the envelopes [A]: the raw Hilbert magnitude of a
        band-limited signal fluctuates far faster than its amplitude modulation.

    Returns
    -------
    envelopes : xarray.DataArray, dims ("channel", "time")
        Same units as ``signals``.
    """
    import mne

    sfreq_in = float(signals.attrs["sfreq"])
    factor = sfreq_in / sfreq
    if abs(factor - round(factor)) > 1e-9 or factor < 1:
        raise UnitScopeError(f"{sfreq=} Hz must divide the recording's {sfreq_in} Hz.")
    n_chans = signals.sizes["channel"]
    lo = signals["band_lo"].values if "band_lo" in signals.coords else np.full(n_chans, np.nan)
    hi = signals["band_hi"].values if "band_hi" in signals.coords else np.full(n_chans, np.nan)
    bands = [(_NOISE_BAND if np.isnan(a) else (float(a), float(b))) for a, b in zip(lo, hi)]
    x = signals.values.astype(np.float64)
    env = np.empty_like(x)
    for band in sorted(set(bands)):
        idx = [i for i, b in enumerate(bands) if b == band]
        if band[1] >= sfreq_in / 2:
            raise UnitScopeError(f"Band {band} Hz needs a sampling rate above {2 * band[1]} Hz.")
        filt = mne.filter.filter_data(x[idx], sfreq_in, band[0], band[1], verbose="error")
        env[idx] = np.abs(hilbert(filt, axis=1))
    env = mne.filter.filter_data(env, sfreq_in, None, smooth, verbose="error")
    env = resample_poly(env, 1, int(round(factor)), axis=1)  # (chans, times / factor)
    coords = {k: v for k, v in signals["channel"].coords.items()}
    return xr.DataArray(env.astype(np.float32), dims=("channel", "time"),
                        coords={**coords, "time": np.arange(env.shape[1]) / sfreq},
                        attrs={**signals.attrs, "sfreq": float(sfreq), "envelope": "hilbert"})


def reaching_epochs(recording=None, *, seed: int = 0, duration: float = 600.0,
                    sfreq: float = 50.0, tmin: float = -1.0, tmax: float = 2.0) -> xr.Dataset:
    """Encoding data set of the demo reaching recording.

    Parameters
    ----------
    recording : Recording, optional
        A recording with the demo's layout (default: ``simulate_reaching(seed=seed,
        duration=duration)``).
    seed, duration
        Passed to :func:`core.demo.simulate_reaching`.
    sfreq : float
        Sampling frequency of the envelopes in Hz.
    tmin, tmax : float
        Epoch window around each movement onset, seconds.

    Returns
    -------
    data : xarray.Dataset
        ``meg`` (epoch, channel, time) envelopes in volts, ``forcing`` (epoch, feature, time)
        with features ``first_mask``, ``movement``, ``peak_speed``, ``speed``; one subject
        ``"demo"``.
    """
    check_range("tmin", tmin, high=0.0, high_inclusive=False)
    check_range("tmax", tmax, low=0.0, low_inclusive=False)
    if recording is None:
        from ..demo import simulate_reaching

        recording = simulate_reaching(seed=seed, duration=duration)
    if recording.target is None:
        raise UnitScopeError("The reaching recording needs its hand-speed target.")
    env = band_envelopes(recording.signals, sfreq=sfreq)
    factor = int(round(recording.sfreq / sfreq))
    speed = np.asarray(recording.target.values, np.float64)
    speed = speed[: len(speed) // factor * factor].reshape(-1, factor).mean(axis=1)[: env.sizes["time"]]
    ev = recording.events.select(recording.events.type == "movement_onset")
    if len(ev) < 20:
        raise UnitScopeError(f"Too few epochs to fit: {len(ev)} movement onsets (20 needed).")
    on_idx = np.round(ev.onset * sfreq).astype(int)
    moving = speed > 0.02 * speed.max()
    ends = []
    for i in on_idx:  # each movement lasts until the speed falls back to ~0
        stop = np.flatnonzero(~moving[i + 1:])
        ends.append(i + 1 + (stop[0] if stop.size else 0))
    n_times = int(round((tmax - tmin) * sfreq))
    i_tmin = int(round(tmin * sfreq))
    megs, forcings, onsets = [], [], []
    for k, i in enumerate(on_idx):
        i0 = i + i_tmin
        if i0 < 0 or i0 + n_times > env.sizes["time"]:
            continue
        f = np.zeros((4, n_times), np.float32)  # first_mask, movement, peak_speed, speed
        for j, (a, b) in enumerate(zip(on_idx, ends)):
            sl = slice(max(a - i0, 0), min(b - i0, n_times))
            if sl.start < sl.stop:
                f[1, sl], f[2, sl] = 1.0, ev.value[j]
                if j == k:
                    f[0, sl] = 1.0
        f[3] = speed[i0:i0 + n_times]
        megs.append(env.values[:, i0:i0 + n_times])
        forcings.append(f)
        onsets.append(ev.onset[k])
    data = make_epochs(
        np.stack(megs), np.stack(forcings), subject=["demo"] * len(megs), sfreq=sfreq, tmin=tmin,
        ch_names=env["channel"].values, feature_names=["first_mask", "movement", "peak_speed", "speed"],
        onset_time=onsets, series_features=["speed"],
        attrs={"source": "unitscope demo reaching (band envelopes)", "units": "V"})
    for name in ("role", "band_lo", "band_hi", "row", "col"):
        if name in env.coords:
            data = data.assign_coords({name: ("channel", env[name].values)})
    return data
