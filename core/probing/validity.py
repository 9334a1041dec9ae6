"""Validity check of a perturbation probe: decoding on perturbed inputs (METHODS.md 1.2, 1.9).

Perturbations must not change the decoder's behaviour much, or the correlations describe a
network pushed off its data. Schirrmeister et al. (2017) kept accuracy on perturbed
training trials above 99.5 % of the unperturbed accuracy; UnitScope reports, with every
probe, the ratio of the decoding metric on perturbed over unperturbed windows, from the
probe's own forward passes (no extra computation), and flags a ratio below 0.95 [A]
(METHODS 1.9, item 3).

For phase perturbations, which redraw every bin's phase, a low ratio is expected: they keep
the power spectrum of each window and scramble its time course.

:func:`band_occlusion` answers the question a sensitivity map cannot: does the decoder
*need* a band of some channels? It removes the band from those channels and re-measures
decoding [A]. A probe reports what a decoder responds to; where the decoder ignores a coded
channel (the metric does not change when its band is removed), no probe of that decoder can
rank the channel as coded.
"""
from __future__ import annotations

import logging

import numpy as np

from .._validation import UnitScopeError, check_option, check_range
from ..metrics import TASKS, check_targets, score

__all__ = ["ValidityCheck", "decoding_metric", "band_occlusion", "band_occlusions", "role_cases", "named_cases", "band_text",
           "VALIDITY_THRESHOLD"]

logger = logging.getLogger(__name__)

VALIDITY_THRESHOLD = 0.95  # [A] METHODS 1.9: perturbed r >= 0.95 x unperturbed r


def decoding_metric(task: str, pred: np.ndarray, y: np.ndarray) -> float:
    """The decoding metric of ``task`` for a model output.

    Parameters
    ----------
    task : {"regression", "classification"}
    pred : ndarray
        Model output: dense regression (n_windows, n_outputs, n_preds), first output used;
        classification (n_trials, n_classes) or dense (n_trials, n_classes, n_preds),
        averaged over predictions.
    y : ndarray
        Regression targets (n_windows, n_preds); class indexes 0..n_classes-1 (n_trials,);
        anything else is a UnitScopeError (:func:`core.metrics.check_targets`).

    Returns
    -------
    metric : float
        Pearson r over the flattened predictions, or balanced accuracy.
    """
    pred = np.asarray(pred)
    return _metric(task, pred, check_targets(task, y, pred.shape))  # y's shape, type and range against this output


def _metric(task: str, pred: np.ndarray, y: np.ndarray) -> float:
    """:func:`decoding_metric` of targets already checked against this output's shape."""
    if task == "regression":
        pred = pred[:, 0] if pred.ndim == 3 else pred
        return score(task, pred, y)
    if pred.ndim == 3:
        pred = pred.mean(-1)  # (n_trials, n_classes)
    return score(task, pred, y)


class ValidityCheck:
    """Running mean of the perturbed / unperturbed decoding-metric ratio.

    Parameters
    ----------
    task : {"regression", "classification"}
    y : ndarray
        Targets aligned with the model output (see :func:`decoding_metric`).
    pred : ndarray
        Model output on the unperturbed windows (the reference).
    """

    def __init__(self, task: str, y, pred):
        self.task = check_option("task", task, TASKS)
        self.y = check_targets(task, y, np.shape(pred))  # once: every perturbed pass has this output's shape
        self.reference = _metric(task, np.asarray(pred), self.y)
        self.metrics: list[float] = []
        if not np.isfinite(self.reference) or self.reference <= 0:
            logger.warning("Unperturbed decoding metric is %s; the validity ratio is undefined.",
                           self.reference)

    def update(self, pred) -> float:
        """Add one perturbed pass; return its ratio."""
        m = _metric(self.task, np.asarray(pred), self.y)
        self.metrics.append(m)
        return m / self.reference if self.reference > 0 else float("nan")

    @property
    def metric(self) -> float:
        """Mean decoding metric over the perturbed passes so far (NaN before the first)."""
        return float(np.mean(self.metrics)) if self.metrics else float("nan")

    @property
    def ratio(self) -> float:
        """Mean perturbed metric over the unperturbed metric (NaN if undefined)."""
        if not self.metrics or not (self.reference > 0):
            return float("nan")
        return self.metric / self.reference

    @property
    def valid(self) -> bool:
        """Whether the ratio reaches :data:`VALIDITY_THRESHOLD`."""
        return bool(self.ratio >= VALIDITY_THRESHOLD)


def band_occlusion(model, X, y, *, sfreq: float, channels, band=None, task: str = "regression",
                   batch_size: int = 64) -> tuple[float, float]:
    """Decoding metric with a band removed from some channels, and without the removal.

    Every window's rfft bins within ``band`` (inclusive edges) are set to zero on
    ``channels``; ``band=None`` zeroes the channels altogether. Inputs are expected
    standardised per channel, so zero is each channel's training mean.

    Parameters
    ----------
    model : torch.nn.Module
        Decoder; run in eval mode (its training mode is restored).
    X : ndarray, shape (n_windows, n_chans, n_times)
    y : ndarray
        Targets aligned with the model output (see :func:`decoding_metric`).
    sfreq : float
        Sampling frequency in Hz.
    channels : sequence of int
        Indices of the channels to occlude (at least one).
    band : (float, float) or None
        Band edges in Hz, ``0 <= lo < hi``, ``lo`` below Nyquist.
    task : {"regression", "classification"}
    batch_size : int

    Returns
    -------
    occluded, reference : float
        The metric with the band removed, and on the unchanged windows.
    """
    occluded, reference = band_occlusions(model, X, y, sfreq=sfreq, cases={"case": (channels, band)}, task=task,
                                          batch_size=batch_size)
    return occluded["case"], reference


def band_occlusions(model, X, y, *, sfreq: float, cases: dict, task: str = "regression",
                    batch_size: int = 64) -> tuple[dict, float]:
    """:func:`band_occlusion` for several cases, with one pass over the unchanged windows.

    Parameters
    ----------
    cases : dict of str to (channels, band)
        Each case's channel indices and band (None: the whole channels), as in
        :func:`band_occlusion`; every case is checked before any forward pass.

    Returns
    -------
    occluded : dict of str to float
        The metric with each case's band removed.
    reference : float
        The metric on the unchanged windows.
    """
    from ..training import predict

    check_option("task", task, TASKS)
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 3:
        raise UnitScopeError(f"X must have shape (n_windows, n_chans, n_times), got {X.shape}.")
    if not cases:
        raise UnitScopeError("cases is empty: give at least one (channels, band) to occlude.")
    plans = {name: _occlusion_plan(X.shape, sfreq, channels, band) for name, (channels, band) in cases.items()}
    occluded = {}
    for name, (chans, inside) in plans.items():
        Xo = X.copy()
        if inside is None:
            Xo[:, chans] = 0.0
        else:
            spec = np.fft.rfft(X[:, chans], axis=-1)
            spec[..., inside] = 0
            Xo[:, chans] = np.fft.irfft(spec, n=X.shape[-1], axis=-1)
        occluded[name] = decoding_metric(task, predict(model, Xo, batch_size=batch_size), y)
    reference = decoding_metric(task, predict(model, X, batch_size=batch_size), y)
    return occluded, reference


def _occlusion_plan(shape, sfreq, channels, band):
    """Checked channel indices and the rfft bins to zero (None: the whole channels)."""
    chans = np.unique(np.asarray(channels, dtype=int).ravel())
    if not len(chans):
        raise UnitScopeError("channels is empty: name at least one channel index to occlude.")
    if chans.min() < 0 or chans.max() >= shape[1]:
        raise UnitScopeError(f"Channel indices {chans.tolist()} are out of range for {shape[1]} channels.")
    if band is None:
        return chans, None
    lo, hi = (float(v) for v in band)
    nyq = check_range("sfreq", float(sfreq), low=0, low_inclusive=False) / 2
    if not 0 <= lo < hi or lo >= nyq:
        raise UnitScopeError(f"band must be (lo, hi) Hz with 0 <= lo < hi and lo below Nyquist "
                             f"({nyq:g} Hz), got {band!r}.")
    freqs = np.fft.rfftfreq(shape[-1], 1 / sfreq)
    inside = (freqs >= lo) & (freqs <= hi)
    if not inside.any():
        raise UnitScopeError(f"No frequency bin of windows of {shape[-1]} samples at {sfreq:g} Hz "
                             f"falls in {lo:g}-{hi:g} Hz.")
    return chans, inside


def role_cases(signals) -> dict:
    """Occlusion cases from a recording's channel roles: ``{role: (channel indices, (lo, hi))}``.

    Uses the ``role``, ``band_lo`` and ``band_hi`` channel coordinates (the demo recording
    has them); roles without a band (``noise``) are left out; empty for recordings without
    roles.
    """
    if not all(k in signals.coords for k in ("role", "band_lo", "band_hi")):
        return {}
    roles = np.asarray(signals["role"].values).astype(str)
    lo, hi = np.asarray(signals["band_lo"].values, float), np.asarray(signals["band_hi"].values, float)
    out = {}
    for role in dict.fromkeys(roles):  # in channel order
        idx = np.flatnonzero(roles == role)
        if np.isfinite(lo[idx[0]]) and np.isfinite(hi[idx[0]]):
            out[str(role)] = (idx, (float(lo[idx[0]]), float(hi[idx[0]])))
    return out


def named_cases(ch_names, cases: dict) -> dict:
    """Occlusion cases by channel name -> by channel index, for :func:`band_occlusions`.

    ``cases``: ``{label: (channel names, band)}``. A name that is not among ``ch_names`` or a
    case without channels is a :class:`UnitScopeError` naming it.
    """
    names = list(ch_names)
    out = {}
    for label, (channels, band) in cases.items():
        unknown = [c for c in channels if c not in names]
        if unknown:
            raise UnitScopeError(f"Channels {unknown} are not inputs of the decoder; its channels are {names}.")
        if not channels:
            raise UnitScopeError(f"'{label}': choose at least one channel.")
        out[label] = ([names.index(c) for c in channels], band)
    return out


def band_text(band) -> str:
    """``"60-90 Hz"``, or ``"all frequencies"`` for ``None`` (a whole-channel occlusion)."""
    return "all frequencies" if band is None else f"{float(band[0]):g}-{float(band[1]):g} Hz"
