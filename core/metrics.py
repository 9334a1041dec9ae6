"""Decoding metrics: Pearson r for continuous targets, balanced accuracy for labels."""
from __future__ import annotations

import numpy as np

from ._validation import check_option

__all__ = ["pearson_r", "spearman_r", "balanced_accuracy", "score", "chance_level", "TASKS", "FEW_TRIALS"]

TASKS = ("regression", "classification")
# [A] a balanced accuracy on fewer test trials than this is said to be very uncertain (with 20
# trials of two balanced classes, chance alone reaches 0.70 or more one time in 17)
FEW_TRIALS = 20


def pearson_r(a, b) -> float:
    """Pearson correlation of two equally long vectors (flattened); NaN if either is constant."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def spearman_r(a, b) -> float:
    """Spearman rank correlation of two score vectors (average ranks for ties; pairs with a NaN
    dropped); NaN with fewer than 3 pairs."""
    from scipy.stats import spearmanr

    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return float("nan")
    return float(spearmanr(a[ok], b[ok])[0])


def balanced_accuracy(y_true, y_pred) -> float:
    """Mean per-class recall over the classes present in ``y_true``."""
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    recalls = [np.mean(y_pred[y_true == k] == k) for k in np.unique(y_true)]
    return float(np.mean(recalls)) if recalls else float("nan")


def score(task: str, pred, y) -> float:
    """The decoding metric of ``task``.

    Parameters
    ----------
    task : {"regression", "classification"}
    pred : ndarray
        Regression: predictions, any shape matching ``y``. Classification: scores of shape
        (n_trials, n_classes) or predicted labels (n_trials,).
    y : ndarray
        True targets (regression) or integer labels (classification).
    """
    check_option("task", task, TASKS)
    if task == "regression":
        return pearson_r(pred, y)
    pred = np.asarray(pred)
    labels = pred.argmax(axis=1) if pred.ndim == 2 else pred
    return balanced_accuracy(y, labels)


def chance_level(task: str, n_classes: int | None = None) -> float:
    """The score of a decoder that has learnt nothing: Pearson r 0, balanced accuracy
    1 / ``n_classes`` (the classes present in the true labels, whose recalls it averages)."""
    check_option("task", task, TASKS)
    if task == "regression":
        return 0.0
    return 1.0 / n_classes if n_classes else float("nan")
