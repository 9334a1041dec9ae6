"""Frequency bands for the band summaries of perturbation maps (METHODS.md 1.7, item 1).

Default edges follow Hartmann et al. (2018) where they exist [A]: delta/theta 1-7 Hz,
alpha 7-13 Hz, beta 13-30 Hz, low gamma 30-60 Hz, high gamma 60-120 Hz. A band contains the
rfft bins with ``lo <= f < hi`` (half-open, so adjacent bands share no bin) [A].

Default bands are clipped at the Nyquist frequency and dropped when they start above it; a
band the caller asks for by name or by edges that starts at or above Nyquist is an error.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from .._validation import UnitScopeError, check_option

__all__ = ["BANDS", "resolve_bands", "band_masks", "band_mean", "freq_bins", "phase_excluded"]

BANDS: dict[str, tuple[float, float]] = {
    "delta_theta": (1.0, 7.0),
    "alpha": (7.0, 13.0),
    "beta": (13.0, 30.0),
    "low_gamma": (30.0, 60.0),
    "high_gamma": (60.0, 120.0),
}


def resolve_bands(bands=None, *, sfreq: float) -> dict[str, tuple[float, float]]:
    """Return the bands to summarise, as ``{name: (lo, hi)}`` in Hz, clipped at Nyquist.

    Parameters
    ----------
    bands : None | sequence of str | mapping of str to (float, float)
        None: all of :data:`BANDS` that start below Nyquist. A sequence picks default bands by
        name. A mapping gives custom edges in Hz (``lo < hi``).
    sfreq : float
        Sampling frequency in Hz.

    Returns
    -------
    bands : dict of str to (float, float)
        Band edges in Hz, ``hi`` clipped at ``sfreq / 2``.
    """
    nyquist = float(sfreq) / 2
    if bands is None:
        return {k: (lo, min(hi, nyquist)) for k, (lo, hi) in BANDS.items() if lo < nyquist}
    if isinstance(bands, str):
        bands = [bands]
    if isinstance(bands, Mapping):
        requested = {}
        for name, edges in bands.items():
            try:
                lo, hi = (float(e) for e in edges)
            except (TypeError, ValueError) as exc:
                raise UnitScopeError(
                    f"Band {name!r} must be given as (lo, hi) in Hz, got {edges!r}.") from exc
            if not 0 <= lo < hi:
                raise UnitScopeError(f"Band {name!r} needs 0 <= lo < hi, got ({lo}, {hi}) Hz.")
            requested[str(name)] = (lo, hi)
    elif isinstance(bands, Sequence):
        requested = {check_option("bands", b, tuple(BANDS)): BANDS[b] for b in bands}
    else:
        raise UnitScopeError(
            f"'bands' must be None, a list of band names or a dict of edges, got {type(bands).__name__}.")
    if not requested:
        raise UnitScopeError("'bands' is empty; give at least one band.")
    out = {}
    for name, (lo, hi) in requested.items():
        if lo >= nyquist:
            raise UnitScopeError(
                f"Band {name!r} ({lo:g}-{hi:g} Hz) lies above the Nyquist frequency "
                f"({nyquist:g} Hz at sfreq={float(sfreq):g} Hz); use bands below {nyquist:g} Hz.")
        out[name] = (lo, min(hi, nyquist))
    return out


def band_masks(freqs: np.ndarray, bands: Mapping[str, tuple[float, float]]) -> np.ndarray:
    """Boolean bin membership, shape (n_bands, n_freqs); error for a band holding no bin.

    The Nyquist bin belongs to a band whose upper edge is the Nyquist frequency.
    """
    freqs = np.asarray(freqs, dtype=float)
    top = freqs[-1] if len(freqs) else 0.0
    masks = []
    for name, (lo, hi) in bands.items():
        m = (freqs >= lo) & ((freqs < hi) | ((hi >= top) & (freqs == top)))
        if not m.any():
            df = freqs[1] - freqs[0] if len(freqs) > 1 else float("nan")
            raise UnitScopeError(
                f"Band {name!r} ({lo:g}-{hi:g} Hz) holds no frequency bin at a resolution of "
                f"{df:.3g} Hz; use longer windows or a wider band.")
        masks.append(m)
    return np.stack(masks)


def phase_excluded(n_freqs: int, n_times: int) -> np.ndarray:
    """Bins (n_freqs,) without a phase: DC, and Nyquist when ``n_times`` is even (a real
    signal's coefficient there is real). The phase probe leaves them out of its maps."""
    out = np.zeros(int(n_freqs), dtype=bool)
    out[0] = True
    if int(n_times) % 2 == 0:
        out[-1] = True
    return out


def band_mean(da: xr.DataArray, bands: Mapping[str, tuple[float, float]]) -> xr.DataArray:
    """Mean of ``da`` over the bins of each band (NaN bins skipped).

    Parameters
    ----------
    da : xarray.DataArray
        With a ``freq`` dim (Hz).
    bands : mapping of str to (float, float)

    Returns
    -------
    summary : xarray.DataArray
        ``freq`` replaced by ``band``, with coords ``band_lo`` and ``band_hi`` (Hz).
    """
    masks = band_masks(da["freq"].values, bands)
    parts = [da.isel(freq=np.flatnonzero(m)).mean("freq", skipna=True) for m in masks]
    out = xr.concat(parts, dim="band", coords="minimal", compat="override")
    out = out.transpose(*["band" if d == "freq" else d for d in da.dims])  # band where freq was
    return out.assign_coords(band=list(bands), band_lo=("band", [float(v[0]) for v in bands.values()]),
                             band_hi=("band", [float(v[1]) for v in bands.values()]))


def freq_bins(freqs: np.ndarray, bin_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Group frequency bins into ``bin_hz``-wide bins starting at 0 Hz.

    Returns
    -------
    which : ndarray of int, shape (n_freqs,)
        The wide bin of every frequency bin, numbered 0, 1, ... over the wide bins that hold
        at least one frequency bin.
    centres : ndarray, shape (n_wide,)
        The mean frequency of the bins in each wide bin.
    """
    if not bin_hz > 0:
        raise UnitScopeError(f"bin_hz must be a positive frequency in Hz, got {bin_hz!r}.")
    freqs = np.asarray(freqs, dtype=float)
    edges = np.arange(0.0, freqs[-1] + bin_hz, bin_hz)
    raw = np.clip(np.digitize(freqs, edges) - 1, 0, len(edges) - 1)
    used, which = np.unique(raw, return_inverse=True)
    centres = np.array([freqs[which == b].mean() for b in range(len(used))])
    return which, centres
