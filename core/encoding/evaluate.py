"""Evaluation of encoders (METHODS.md 3.4): Pearson r across test epochs per (time, channel).

For each subject, ``R[t, c]`` is the correlation, across that subject's test epochs, between
predicted and actual signals at time ``t`` and channel ``c``: how well single-trial
fluctuations are predicted at each latency. The headline is the mean over subjects,
channels and post-onset times (t >= 0). Pearson r is invariant to the per-subject,
per-channel affine scaling, so scaled and sensor-space predictions give the same R.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from .._validation import UnitScopeError

__all__ = ["correlation_map", "correlation_arrays", "post_onset_mean", "time_course"]


def correlation_arrays(pred: np.ndarray, actual: np.ndarray, subject: np.ndarray,
                       subjects=None) -> np.ndarray:
    """R per subject, time and channel from arrays.

    Parameters
    ----------
    pred, actual : ndarray, shape (n_epochs, n_chans, n_times)
    subject : ndarray, shape (n_epochs,)
        Subject label (or index) of each epoch.
    subjects : sequence, optional
        Subjects to report, in order (default: sorted unique of ``subject``).

    Returns
    -------
    r : ndarray, shape (n_subjects, n_times, n_chans)
        NaN where a prediction or signal is constant across epochs.
    """
    if pred.shape != actual.shape:
        raise UnitScopeError(f"pred has shape {pred.shape} but actual has {actual.shape}.")
    subjects = np.unique(subject) if subjects is None else subjects
    out = np.full((len(subjects), pred.shape[2], pred.shape[1]), np.nan)
    for i, s in enumerate(subjects):
        sel = subject == s
        if sel.sum() < 3:
            raise UnitScopeError(
                f"Subject {str(s)!r} has {int(sel.sum())} test epochs; r across epochs needs at least 3.")
        p = pred[sel].astype(np.float64)
        a = actual[sel].astype(np.float64)
        p -= p.mean(axis=0)
        a -= a.mean(axis=0)
        num = (p * a).sum(axis=0)  # (chans, times)
        den = np.sqrt((p * p).sum(axis=0) * (a * a).sum(axis=0))
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(den > 1e-12 * max(den.max(), 1e-300), num / den, np.nan)
        out[i] = r.T
    return out


def correlation_map(predicted: xr.DataArray, actual: xr.DataArray) -> xr.DataArray:
    """R[subject, time, channel] across epochs.

    Parameters
    ----------
    predicted, actual : xarray.DataArray, dims ("epoch", "channel", "time")
        Same epochs; ``actual`` carries the ``subject`` coordinate along "epoch".

    Returns
    -------
    r : xarray.DataArray, dims ("subject", "time", "channel")
        Pearson r; attrs ``method`` and ``model`` (from ``predicted.attrs``).
    """
    if "subject" not in actual.coords:
        raise UnitScopeError("actual needs a 'subject' coordinate along 'epoch'.")
    dims = ("epoch", "channel", "time")
    predicted, actual = predicted.transpose(*dims), actual.transpose(*dims)
    subject = actual["subject"].values.astype(str)
    subjects = np.unique(subject)
    r = correlation_arrays(predicted.values, actual.values, subject, subjects)
    return xr.DataArray(
        r, dims=("subject", "time", "channel"),
        coords={"subject": subjects, "time": actual["time"].values,
                "channel": actual["channel"].values},
        name="r", attrs={"method": "pearson r across epochs per (time, channel)",
                         "model": str(predicted.attrs.get("model", ""))})


def post_onset_mean(r: xr.DataArray, *, tmin: float = 0.0) -> float:
    """Headline score: mean R over subjects, channels and times ``>= tmin`` (NaN ignored)."""
    return float(np.nanmean(r.sel(time=slice(tmin - 1e-9, None)).values))


def time_course(r: xr.DataArray) -> xr.DataArray:
    """R averaged over subjects and channels, dims ("time",)."""
    return r.mean(dim=[d for d in r.dims if d != "time"], skipna=True)
