"""Validity check of a perturbation probe: decoding on perturbed inputs (METHODS.md 1.2, 1.9).

Perturbations must not change the decoder's behaviour much, or the correlations describe a
network pushed off its data. Schirrmeister et al. (2017) kept accuracy on perturbed
training trials above 99.5 % of the unperturbed accuracy; UnitScope reports, with every
probe, the ratio of the decoding metric on perturbed over unperturbed windows, from the
probe's own forward passes (no extra computation), and flags a ratio below 0.95 [A]
(METHODS 1.9, item 3).

For phase perturbations, which redraw every bin's phase, a low ratio is expected: they keep
the power spectrum of each window and scramble its time course.
"""
from __future__ import annotations

import logging

import numpy as np

from .._validation import UnitScopeError, check_option
from ..metrics import TASKS, score

__all__ = ["ValidityCheck", "decoding_metric", "VALIDITY_THRESHOLD"]

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
        Regression targets (n_windows, n_preds); integer labels (n_trials,).

    Returns
    -------
    metric : float
        Pearson r over the flattened predictions, or balanced accuracy.
    """
    check_option("task", task, TASKS)
    pred = np.asarray(pred)
    if task == "regression":
        pred = pred[:, 0] if pred.ndim == 3 else pred
        if pred.shape != np.shape(y):
            raise UnitScopeError(
                f"Targets of shape {np.shape(y)} do not match the predictions {pred.shape}; "
                "y must hold one target per model prediction (n_windows, n_preds).")
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
        self.y = np.asarray(y)
        self.reference = decoding_metric(task, pred, self.y)
        self.metrics: list[float] = []
        if not np.isfinite(self.reference) or self.reference <= 0:
            logger.warning("Unperturbed decoding metric is %s; the validity ratio is undefined.",
                           self.reference)

    def update(self, pred) -> float:
        """Add one perturbed pass; return its ratio."""
        m = decoding_metric(self.task, pred, self.y)
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
