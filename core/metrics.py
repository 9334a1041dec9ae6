"""Decoding metrics: Pearson r for continuous targets, balanced accuracy for labels."""
from __future__ import annotations

import numpy as np

from ._validation import check_option

__all__ = ["pearson_r", "spearman_r", "balanced_accuracy", "score", "chance_level", "chance_note", "shift_note",
           "TASKS", "FEW_TRIALS", "SHIFT_SD"]

TASKS = ("regression", "classification")
# [A] a balanced accuracy on fewer test trials than this is said to be very uncertain (with 20
# trials of two balanced classes, chance alone reaches 0.70 or more one time in 17)
FEW_TRIALS = 20
# [A] a test block whose mean target lies this many SDs (of the training block) off the training
# block's mean is said to differ from it
SHIFT_SD = 1.0


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


def chance_note(task: str, metric: float, n_classes: int | None = None) -> str:
    """``"at or below chance, 1/8 = 0.125"`` when ``metric`` (a score of ``task``) is at or below
    :func:`chance_level`, or what a NaN means (a constant output); else ``""``."""
    if metric != metric:
        return "undefined: the output does not vary"
    chance = chance_level(task, n_classes)
    if not (chance == chance and metric <= chance):
        return ""
    if task == "regression":
        return "at or below chance, r = 0"
    return f"at or below chance, 1/{n_classes} = {chance:.3f}"


def shift_note(shift: float | None) -> str:
    """What a test block's mean target ``shift`` (in SDs of the training block, from its mean;
    the targets are standardised on the training block) means from :data:`SHIFT_SD` on, else ""."""
    if shift is None or not abs(shift) >= SHIFT_SD:
        return ""
    return (f"the target's mean on the test block lies {shift:+.1f} SDs (of the training block) from its mean on "
            "the training block: the blocks differ (a drifting or step-wise target), so the test metric says "
            "little about how well the decoder would do on data like its training block")
