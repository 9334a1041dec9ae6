"""Decoding metrics: Pearson r for continuous targets, balanced accuracy for labels; and the
checks of what they are given (:func:`check_targets`, :func:`check_finite`), shared by the probe
(:func:`core.probing.probe_units`) and the pruning evaluator (:class:`core.pruning.MaskEvaluator`)."""
from __future__ import annotations

import numpy as np

from ._validation import UnitScopeError, check_option

__all__ = ["METRIC_NAMES", "pearson_r", "spearman_r", "balanced_accuracy", "score", "chance_level", "check_targets", "check_finite",
           "TASKS", "FEW_TRIALS"]

TASKS = ("regression", "classification")
# the held-out metric of each task, by the name results and messages give it
METRIC_NAMES = {"regression": "pearson_r", "classification": "balanced_accuracy"}
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


def check_finite(name: str, values, what: str = "samples"):
    """Raise if ``values`` (ndarray or torch.Tensor) holds a NaN or Inf; return it otherwise.

    The message names how many and where the first one is, e.g. ``"X contains NaN or Inf
    samples (2 of 3072, the first at index (0, 1, 5))."``.
    """
    bad = ~np.isfinite(values.numpy() if hasattr(values, "numpy") else np.asarray(values))
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f", the first at index {first}" if len(first) > 1 else f", the first at index {first[0]}" if first else ""
        raise UnitScopeError(f"{name} contains NaN or Inf {what} ({int(bad.sum())} of {bad.size}{where}).")
    return values


def _some(values, k: int = 4) -> str:
    """The first ``k`` distinct values, as ``"'T1', 'T2'"`` (``", ..."`` when there are more)."""
    uniq = list(dict.fromkeys(np.asarray(values).ravel().tolist()))
    text = ", ".join(repr(v) for v in uniq[:k])
    return text + (", ..." if len(uniq) > k else "")


def check_targets(task: str, y, out_shape) -> np.ndarray:
    """Check targets against the model output they are scored with; return them as an array.

    Called before any work by the probe and the pruning evaluator, so that a wrong ``y``
    is a :class:`UnitScopeError` naming what was given and what is expected, instead of a
    metric of 0 or NaN or an ``IndexError`` deep inside :func:`score`.

    Parameters
    ----------
    task : {"regression", "classification"}
    y : array-like
        Classification: class indexes, shape (n_windows,), integers ``0 .. n_classes - 1``
        (the model's outputs, one per class). [A] Floats are taken when every value is a whole
        number (labels read from a text file), and returned as int64; strings, other floats,
        indexes out of range and other shapes are refused. Regression: finite numbers, one per
        prediction: shape (n_windows, n_preds) for a dense output (its first output is
        scored), else the output's shape.
    out_shape : tuple of int
        Shape of the model's output on the windows: (n_windows, n_outputs) or dense
        (n_windows, n_outputs, n_preds).

    Returns
    -------
    y : ndarray
        int64 class indexes (classification) or the targets as given (regression).
    """
    check_option("task", task, TASKS)
    out_shape = tuple(int(n) for n in out_shape)
    y = np.asarray(y)
    n = out_shape[0]
    if task == "classification":
        n_classes = out_shape[1] if len(out_shape) > 1 else 1
        expected = f"integer class indexes 0..{n_classes - 1}"
        if n_classes < 2:
            raise UnitScopeError(
                f"task='classification' needs a model with one output per class (at least 2), but this model has "
                f"{n_classes} output (output shape {out_shape}): a regression decoder takes task='regression'.")
        if y.dtype.kind in "USO":
            kind = "strings" if y.dtype.kind in "US" else f"{y.dtype} values"
            raise UnitScopeError(f"y holds {kind} ({_some(y)}); expected {expected} (Workspace.data.classes maps "
                                 "names to indexes).")
        if y.shape != (n,):
            raise UnitScopeError(f"y has shape {y.shape}; classification expects one class index per window, "
                                 f"shape ({n},), holding {expected}.")
        if y.dtype.kind == "f":
            check_finite("y", y, "labels")
            if (y != np.round(y)).any():
                raise UnitScopeError(f"y holds non-integer values ({_some(y[y != np.round(y)])}); expected {expected}.")
        elif y.dtype.kind not in "iu":
            raise UnitScopeError(f"y holds {y.dtype} values ({_some(y)}); expected {expected}.")
        if n and (y.min() < 0 or y.max() >= n_classes):
            raise UnitScopeError(f"y holds class indexes {_num(y.min())}..{_num(y.max())}; expected {expected}: the "
                                 f"model has {n_classes} outputs, one per class.")
        return y.astype(np.int64)
    if y.dtype.kind not in "biuf":
        raise UnitScopeError(f"y holds {'strings' if y.dtype.kind in 'US' else f'{y.dtype} values'} ({_some(y)}); "
                             "regression expects numbers, one per model prediction.")
    dense = len(out_shape) == 3
    expected = (n, out_shape[2]) if dense else out_shape
    if y.shape != expected:
        what = "(n_windows, n_preds)" if dense else "(n_windows, n_outputs)"
        raise UnitScopeError(
            f"Targets y of shape {y.shape} do not match the predictions {expected}: y must have shape {what} = "
            f"{expected}, one target per model prediction{' of its first output' if dense else ''}"
            f"{'' if dense or y.shape != (n,) else '; class labels take task=' + repr('classification')}.")
    check_finite("y", y, "targets")
    return y


def _num(v) -> str:
    return f"{float(v):g}"
