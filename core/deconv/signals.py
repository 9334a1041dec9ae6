"""Signals of a decoder and its recording that UnitScope deconvolves, by name.

A signal name is ``"output"`` (or ``"output:I"``), ``"unit:LAYER:INDEX"`` (or
``"unit:LAYER/INDEX"``) or ``"channel:NAME:BAND"``, BAND a name of :data:`BANDS` or
``"LO-HI"`` in Hz (see :mod:`core.deconv.apply`, which computes them). Here: the names
parsed (:func:`parse_signal`), the band envelope of a channel (:func:`band_envelope`), and
what a fit's per-event codes are drawn against (:func:`codes_axis`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .._validation import UnitScopeError, check_range, suggest
from ..probing.bands import BANDS as PROBE_BANDS

__all__ = ["BANDS", "SignalSpec", "hz_band", "parse_signal", "band_envelope", "values_vary", "codes_axis"]

# Named bands of a channel's envelope: the probe's (core.probing.bands.BANDS: a probe's "peaks in
# beta" and channel:C3:beta name one band; here beta was 15-25 Hz, alpha 8-13, high gamma 60-90),
# and narrower names of their own. The demo's role bands are given in Hz (channel:G14:15-25).
BANDS = {**PROBE_BANDS, "delta": (1.0, 4.0), "theta": (4.0, 8.0)}


@dataclass(frozen=True)
class SignalSpec:
    """A parsed signal name (see the module docstring)."""

    kind: str                      # "output", "unit" or "channel"
    layer: str | None = None       # unit: block name
    index: int = 0                 # unit: unit index; output: output index
    channel: str | None = None     # channel: channel name
    band: tuple | None = None      # channel: (lo, hi) in Hz

    def __str__(self) -> str:
        if self.kind == "output":
            return "output" if self.index == 0 else f"output:{self.index}"
        if self.kind == "unit":
            return f"unit:{self.layer}:{self.index}"
        return f"channel:{self.channel}:{self.band[0]:g}-{self.band[1]:g}"


# the signal names, as an error says them
FORMS = ("'output', 'unit:LAYER:INDEX' (e.g. unit:conv_3:5, unit:conv_3/5 or conv_3/5) or 'channel:NAME:BAND' "
         "(e.g. channel:G03:high_gamma or channel:G03:60-90)")


def hz_band(text: str) -> tuple[float, float] | None:
    """``"60-90"`` (spaces allowed) -> (60.0, 90.0); None when ``text`` is not 'LO-HI'.
    A malformed number ("1.2.3-5") raises ValueError."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*-\s*([0-9.]+)\s*", str(text))
    return (float(m[1]), float(m[2])) if m else None


def parse_signal(text: str) -> SignalSpec:
    """Parse ``"output"``, ``"output:I"``, ``"unit:LAYER:INDEX"`` (or ``"unit:LAYER/INDEX"``, the
    unit id the app and the probe's ``unit`` coordinate write) or ``"channel:NAME:BAND"``."""
    parts = str(text).split(":")
    if len(parts) == 2 and parts[0] == "unit" and "/" in parts[1]:
        parts = ["unit", *parts[1].rsplit("/", 1)]
    elif len(parts) == 1 and "/" in parts[0]:  # "conv_3/5", the unit id alone (as --help offers it)
        parts = ["unit", *parts[0].rsplit("/", 1)]
    if parts[0] not in ("output", "unit", "channel"):
        raise UnitScopeError(f"Invalid signal {text!r}: expected {FORMS}.{suggest(parts[0], ('output', 'unit', 'channel'))}")
    kind = parts[0]
    try:
        if kind == "output" and len(parts) <= 2:
            return SignalSpec("output", index=int(parts[1]) if len(parts) == 2 else 0)
        if kind == "unit" and len(parts) == 3:
            return SignalSpec("unit", layer=parts[1], index=int(parts[2]))
        if kind == "channel" and len(parts) == 3:
            band = parts[2]
            if band in BANDS:
                return SignalSpec("channel", channel=parts[1], band=BANDS[band])
            hz = hz_band(band)
            if hz is None:
                raise UnitScopeError(
                    f"Unknown band {band!r}: use one of {sorted(BANDS)} or 'LO-HI' in Hz.{suggest(band, BANDS)}")
            return SignalSpec("channel", channel=parts[1], band=hz)
    except ValueError as exc:
        if isinstance(exc, UnitScopeError):
            raise
    raise UnitScopeError(f"Invalid signal {text!r}: expected {FORMS}.")


def band_envelope(x: np.ndarray, sfreq: float, band: tuple, *, smooth_s: float = 0.0,
                  chunk: int = 16) -> np.ndarray:
    """Amplitude envelope |hilbert(bandpass(x))| (zero-phase 4th-order Butterworth).

    Parameters
    ----------
    x : ndarray, shape (n_times,) or (n_rows, n_times)
    sfreq : float
        Sampling frequency in Hz.
    band : (float, float)
        Band edges in Hz; the upper edge at most Nyquist (a band up to Nyquist is a high-pass).
    smooth_s : float
        Standard deviation in seconds of a Gaussian smoothing of the envelope (0: none): the
        envelope of a band B Hz wide fluctuates on a 1/B s scale even without a modulation.
    chunk : int
        Rows filtered at once (memory only).

    Returns
    -------
    envelope : ndarray of float64, the shape of ``x``
    """
    from scipy.signal import butter, hilbert, sosfiltfilt

    lo, hi = float(band[0]), float(band[1])
    if not 0 < lo < hi:
        raise UnitScopeError(f"Band edges must satisfy 0 < lo < hi, got {band}.")
    if hi > sfreq / 2 or lo >= sfreq / 2:
        raise UnitScopeError(f"The band {lo:g}-{hi:g} Hz needs a sampling rate of at least {2 * hi:g} Hz, got "
                             f"{sfreq:g} Hz.")
    check_range("smooth_s", smooth_s, low=0.0)
    x = np.asarray(x)
    if x.ndim not in (1, 2):
        raise UnitScopeError(f"x must have shape (n_times,) or (n_rows, n_times), got {x.shape}.")
    # [A] a band up to Nyquist (a probe's high gamma at 128 Hz: 60-64 Hz) is what lies above its
    # low edge: a high-pass (a band-pass filter's upper edge must lie below Nyquist)
    sos = (butter(4, lo, btype="highpass", fs=sfreq, output="sos") if hi == sfreq / 2 else
           butter(4, [lo, hi], btype="bandpass", fs=sfreq, output="sos"))
    rows = x.reshape(-1, x.shape[-1])
    out = np.empty(rows.shape, dtype=np.float64)
    for s in range(0, len(rows), chunk):
        out[s:s + chunk] = np.abs(hilbert(sosfiltfilt(sos, rows[s:s + chunk].astype(np.float64), axis=-1), axis=-1))
    if smooth_s > 0:
        from scipy.ndimage import gaussian_filter1d

        out = gaussian_filter1d(out, smooth_s * sfreq, axis=-1, mode="reflect")
    return out.reshape(x.shape)


def values_vary(values) -> bool:
    """Whether events' ``values`` vary (two finite values at least, not all equal)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    # (the range, not the sd: three values of 0.1 have an sd of 1e-17)
    return bool(len(values) > 1 and np.ptp(values) > 0)


def codes_axis(result) -> str:
    """What a fit's per-event codes are drawn against: ``"value"`` (the events' values, e.g. the
    demo's peak speed) or, [A] where those do not vary (events read from a file carry their
    duration, often all the same), ``"onset"``: how each event's amplitude goes over the session.

    Values count as varying only within one kernel's own events (its event type): annotations
    whose duration is fixed per type (EEGMMIDB's T0 1.38 s, T1 and T2 5.12 s) differ between
    types, but no kernel's codes can be compared with them."""
    values = np.asarray(result["value"].values, dtype=float)
    if "type" not in result.coords:
        return "value" if values_vary(values) else "onset"
    types = np.asarray(result["type"].values).astype(str)
    return "value" if any(values_vary(values[types == t]) for t in np.unique(types)) else "onset"
