"""A compact per-unit amplitude-perturbation sensitivity, to rank units for pruning.

The full amplitude/phase probes live in ``core.probing`` (METHODS.md 1.6); this module is
the pruning engine's own fallback so that pruning curves can be ranked without them.

Method [A] (a band-level variant of the amplitude pass of METHODS.md 1.6):
for ``n_iter`` iterations, every window's rfft amplitude in each (channel, band) is scaled by
``exp(noise * e)`` with ``e ~ N(0, 1)`` drawn per (window, channel, band), phases kept; the
change of each unit's time-averaged activation, ``D = A(original) - A(perturbed)`` (the
sign convention of [J]), is correlated across windows with ``e``. The result is the mean
correlation over iterations, ``R[unit, channel, band]``; a unit's score is ``max |R|``.
Band-level rather than bin-level noise raises the signal per draw, so a few iterations
suffice. [A] Activations are taken after the block's nonlinearity: the time average of a
linear conv output is nearly amplitude-insensitive (METHODS.md 1.6), which would leave the
first block unranked.
"""
from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Mapping

import numpy as np
import torch
import xarray as xr
from torch import nn

from .._validation import UnitScopeError, check_option, check_range, ensure_int
from ._runner import build_steps
from .masks import maskable_layers

__all__ = ["DEFAULT_BANDS", "amplitude_sensitivity"]

logger = logging.getLogger(__name__)

# METHODS.md 1.7 item 1 (Hartmann's edges where they exist), in Hz.
DEFAULT_BANDS = {"delta_theta": (1.0, 7.0), "alpha": (7.0, 13.0), "beta": (13.0, 30.0),
                 "low_gamma": (30.0, 60.0), "high_gamma": (60.0, 120.0)}


def _corr_w(e: np.ndarray, d: np.ndarray, statistic: str = "corr") -> np.ndarray:
    """Correlation (or regression slope of d on e) over windows: e (W, C, B), d (W, U) -> (U, C, B)."""
    e = (e - e.mean(0)) / (e.std(0) + 1e-12)
    d = d - d.mean(0)
    if statistic == "corr":
        d = d / (d.std(0) + 1e-12)
    return np.einsum("wcb,wu->ucb", e, d) / len(e)


def amplitude_sensitivity(
    model: nn.Module,
    X,
    *,
    sfreq: float,
    bands: Mapping[str, tuple[float, float]] | None = None,
    n_iter: int = 20,
    noise: float = 0.3,
    site: str = "nonlin",
    statistic: str = "corr",
    batch_size: int = 64,
    rng: np.random.Generator | int | None = None,
    ch_names: list[str] | None = None,
    progress: Callable[[dict], None] | None = None,
    cancel: threading.Event | None = None,
) -> xr.DataArray:
    """Correlation of each unit's activation change with band-amplitude perturbations.

    Parameters
    ----------
    model : torch.nn.Module
        Decoder (an eval-mode copy is used).
    X : ndarray, shape (n_windows, n_chans, n_times), float32
        Windows to perturb (training windows, as in [J]); at least 3.
    sfreq : float
        Sampling frequency in Hz.
    bands : dict of str to (float, float), optional
        Band edges in Hz (default :data:`DEFAULT_BANDS`, clipped to Nyquist).
    n_iter : int
        Perturbation draws.
    noise : float
        Standard deviation of the log-amplitude scaling.
    site : {"nonlin", "mask"}
        Activation after the block's nonlinearity, or at its mask point (after pooling:
        what the next block receives).
    statistic : {"corr", "slope"}
        Correlation over windows (scale-free), or the regression slope of the activation
        change on the standardised perturbation (in activation units: a large, strongly
        modulated unit scores higher than a faint one) [A].
    batch_size : int
        Windows per forward pass.
    rng : numpy.random.Generator | int | None
    ch_names : list of str, optional
    progress : callable, optional
        Called with ``{"done", "total", "fraction"}`` after each iteration.
    cancel : threading.Event, optional
        Stops after the current iteration (the mean covers the iterations done).

    Returns
    -------
    R : xarray.DataArray, dims ("unit", "channel", "band")
        Mean correlation; coords ``layer``, ``index`` along ``unit`` (id ``"conv_2/7"``),
        ``band_lo``/``band_hi`` (Hz) along ``band``. Score a unit with ``abs(R).max(...)``.
    """
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 3 or len(X) < 3:
        raise UnitScopeError(f"X must have shape (n_windows >= 3, n_chans, n_times), got {X.shape}.")
    n_iter = check_range("n_iter", ensure_int("n_iter", n_iter), low=1)
    check_range("sfreq", float(sfreq), low=0, low_inclusive=False)
    W, C, T = X.shape
    nyq = sfreq / 2
    bands = {k: (lo, min(hi, nyq)) for k, (lo, hi) in (bands or DEFAULT_BANDS).items() if lo < nyq}
    freqs = np.fft.rfftfreq(T, 1 / sfreq)
    band_of = np.full(len(freqs), -1)
    for b, (lo, hi) in enumerate(bands.values()):
        band_of[(freqs >= lo) & (freqs < hi) & (band_of < 0)] = b
    if not (band_of >= 0).any():
        raise UnitScopeError(f"No frequency bin of windows of {T} samples at {sfreq} Hz falls in the bands {bands}.")
    net = copy.deepcopy(model).eval()
    layers = maskable_layers(net)
    steps = build_steps(net)
    check_option("site", site, ("nonlin", "mask"))
    check_option("statistic", statistic, ("corr", "slope"))
    sites = {(info.nonlin_module if site == "nonlin" else info.mask_module): info for info in layers}

    @torch.no_grad()
    def activations(x: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(x), batch_size):
            h, means = torch.as_tensor(x[i:i + batch_size]), []
            for step in steps:
                h = step(h)
                if step.path in sites:
                    means.append(h.mean(dim=tuple(range(2, h.dim()))))  # (batch, units)
            out.append(torch.cat(means, dim=1).numpy())
        return np.concatenate(out).astype(np.float64)  # (W, n_units_total)

    gen = np.random.default_rng(rng)
    spec = np.fft.rfft(X.astype(np.float64), axis=-1)  # (W, C, F)
    a0 = activations(X)
    acc, done = 0.0, 0
    for k in range(n_iter):
        if cancel is not None and cancel.is_set():
            break
        e = gen.standard_normal((W, C, len(bands)))
        gain = np.where(band_of >= 0, np.exp(noise * e[:, :, np.maximum(band_of, 0)]), 1.0)  # (W, C, F)
        xp = np.fft.irfft(spec * gain, n=T, axis=-1).astype(np.float32)  # (W, C, T)
        acc = acc + _corr_w(e, a0 - activations(xp), statistic)
        done += 1
        if progress is not None:
            progress({"done": done, "total": n_iter, "fraction": done / n_iter})
    if done == 0:
        raise UnitScopeError("Amplitude sensitivity was cancelled before the first iteration.")
    R = acc / done
    units = [(info.name, j) for info in layers for j in range(info.n_units)]
    return xr.DataArray(R.astype(np.float32), dims=("unit", "channel", "band"), name="amplitude_r", coords={
        "unit": [f"{l}/{j}" for l, j in units], "layer": ("unit", [u[0] for u in units]),
        "index": ("unit", [u[1] for u in units]),
        "channel": list(ch_names) if ch_names is not None else [f"ch{c}" for c in range(C)],
        "band": list(bands), "band_lo": ("band", [v[0] for v in bands.values()]),
        "band_hi": ("band", [v[1] for v in bands.values()])},
        attrs={"method": "band_amplitude_perturbation", "n_iter": done, "noise": float(noise),
               "n_windows": W, "site": site, "statistic": statistic, "sign": "original - perturbed",
               "sfreq": float(sfreq)})
