"""Metrics of DUNL fits (METHODS.md 2.6): kernel error, event detection rates, R^2."""
from __future__ import annotations

import numpy as np

from .._validation import UnitScopeError, ensure_int

__all__ = ["kernel_error", "detection_rates", "r2", "upsample_kernel"]


def _unit(h: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(h, axis=-1, keepdims=True)
    if np.any(norm == 0):
        raise UnitScopeError("A kernel is all zeros; its error is undefined.")
    return h / norm


def upsample_kernel(kernel, n_out: int) -> np.ndarray:
    """Linearly interpolate binned kernels (..., n_bins) to ``n_out`` samples, unit norm.

    Bin centres sit at ``(j + 0.5) * n_out / n_bins``; samples beyond the first and last
    centre hold the edge value. This is how [D]'s characterisation plots bring an estimate
    back to 1-ms resolution.
    """
    kernel = np.asarray(kernel, dtype=float)
    n_bins = kernel.shape[-1]
    width = n_out / n_bins
    centres = (np.arange(n_bins) + 0.5) * width
    t = np.arange(n_out) + 0.5
    flat = kernel.reshape(-1, n_bins)
    out = np.stack([np.interp(t, centres, row) for row in flat])
    return _unit(out.reshape(kernel.shape[:-1] + (n_out,)))


def kernel_error(true, est, *, shift_tolerant: bool = False) -> np.ndarray | float:
    """Kernel error ``sqrt(max(0, 1 - <h, h_hat>^2))`` of unit-normalised kernels (sine of the angle).

    Parameters
    ----------
    true : ndarray, shape (..., n_true)
        True kernels.
    est : ndarray, shape (..., n_est)
        Estimated kernels. When ``n_est < n_true`` (binned estimate of a finer true kernel)
        the estimate is first interpolated to ``n_true`` samples (:func:`upsample_kernel`).
    shift_tolerant : bool
        Use the maximum absolute cross-correlation over all shifts instead of the zero-lag
        inner product (the [D] shift-tolerant variant).

    Returns
    -------
    error : float or ndarray, shape (...)
        0 for identical shapes, 1 for orthogonal ones; the sign of a kernel does not count.
    """
    true = np.asarray(true, dtype=float)
    est = np.asarray(est, dtype=float)
    if est.shape[-1] < true.shape[-1]:
        est = upsample_kernel(est, true.shape[-1])
    elif est.shape[-1] != true.shape[-1]:
        raise UnitScopeError(
            f"The estimated kernels are longer ({est.shape[-1]} samples) than the true ones "
            f"({true.shape[-1]}); bin the true kernels first.")
    true, est = np.broadcast_arrays(_unit(true), _unit(est))
    if shift_tolerant:
        flat_t, flat_e = true.reshape(-1, true.shape[-1]), est.reshape(-1, est.shape[-1])
        sim = np.array([np.abs(np.correlate(a, b, mode="full")).max() for a, b in zip(flat_t, flat_e)])
        sim = sim.reshape(true.shape[:-1])
    else:
        sim = (true * est).sum(-1)
    err = np.sqrt(np.maximum(0.0, 1.0 - sim**2))
    return float(err) if err.ndim == 0 else err


def detection_rates(codes, support, *, tol: int = 2, threshold: float = 0.0) -> tuple[float, float]:
    """Hit and false rates of event detection from estimated codes (METHODS.md 2.6).

    Parameters
    ----------
    codes : ndarray, shape (n_trials, [n_neurons,] n_kernels, n_codes)
        Estimated codes.
    support : ndarray of bool, shape (n_trials, n_kernels, n_codes)
        True event onsets.
    tol : int
        Tolerance in bins: an estimated non-zero code within +-tol bins of a true event
        hits it.
    threshold : float
        A code counts as non-zero when ``|code| > threshold``.

    Returns
    -------
    hit_rate : float
        Fraction of true events with a non-zero code within the tolerance.
    false_rate : float
        Fraction of non-zero codes outside every tolerance window (0 if there are none).
    """
    tol = ensure_int("tol", tol)
    codes = np.asarray(codes)
    support = np.asarray(support, dtype=bool)
    if codes.ndim == 4:
        support = np.repeat(support[:, None], codes.shape[1], axis=1).reshape((-1,) + support.shape[1:])
        codes = codes.reshape((-1,) + codes.shape[2:])
    if codes.shape != support.shape:
        raise UnitScopeError(f"codes have shape {codes.shape} but support has {support.shape}.")
    active = np.abs(codes) > threshold

    def dilate(a):
        out = a.copy()
        for d in range(1, tol + 1):
            out[..., d:] |= a[..., :-d]
            out[..., :-d] |= a[..., d:]
        return out

    n_true = int(support.sum())
    hit_rate = float((dilate(active) & support).sum() / n_true) if n_true else float("nan")
    n_active = int(active.sum())
    false_rate = float((active & ~dilate(support)).sum() / n_active) if n_active else 0.0
    return hit_rate, false_rate


def r2(y, y_hat, *, mask=None) -> float:
    """Coefficient of determination ``1 - mean((y - y_hat)^2) / var(y)`` over valid samples."""
    y = np.asarray(y, dtype=float)
    y_hat = np.asarray(y_hat, dtype=float)
    if y.shape != y_hat.shape:
        raise UnitScopeError(f"y has shape {y.shape} but y_hat has {y_hat.shape}.")
    m = np.ones(y.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    var = y[m].var()
    if var == 0:
        return float("nan")
    return float(1.0 - np.mean((y[m] - y_hat[m]) ** 2) / var)
