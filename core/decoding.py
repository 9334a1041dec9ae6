"""Decoding data sets built from a preprocessed recording.

* :class:`ContinuousData`: dense cropped decoding of a continuous target. Input windows of
  ``n_times`` samples give ``n_preds = n_times - receptive_field + 1`` predictions; prediction
  ``i`` of a window starting at sample ``s`` belongs to sample ``s + receptive_field - 1 + i``
  (causal: the target at t is decoded from the signal in [t - rf + 1, t]).
* :class:`TrialData`: trial-wise decoding of event labels; a trial belongs to the block that
  contains its whole window (trials straddling two blocks are dropped).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import UnitScopeError
from .recording import touches

__all__ = ["ContinuousData", "TrialData"]


@dataclass
class ContinuousData:
    """Signals, z-scored target and blocks for dense regression.

    Attributes
    ----------
    X : ndarray, shape (n_chans, n_samples), float32
        Standardised signals.
    y : ndarray, shape (n_samples,), float32
        Target, z-scored with the training block's mean and std (``y_mean``, ``y_std``).
    blocks : dict of str to slice
    n_times, receptive_field : int
    """

    X: np.ndarray
    y: np.ndarray
    blocks: dict
    n_times: int
    receptive_field: int
    task: str = "regression"
    bad: np.ndarray | None = None  # (n_samples,) bool: stretches the file marks bad (no window touches them)

    @property
    def n_preds(self) -> int:
        return self.n_times - self.receptive_field + 1

    def check_lengths(self, sfreq: float) -> None:
        for name, blk in self.blocks.items():
            n = blk.stop - blk.start
            if n < self.n_times:
                raise UnitScopeError(
                    f"The {name} block has {n} samples ({n / sfreq:.1f} s) but the decoder needs "
                    f"windows of n_times={self.n_times} samples ({self.n_times / sfreq:.1f} s; "
                    f"receptive field {self.receptive_field} samples). The recording must be at "
                    f"least {self.n_times * 5 / sfreq:.1f} s long with a 60/20/20 split."
                )
            if len(self.window_starts(name)) == 0:
                raise UnitScopeError(
                    f"Every window of the {name} block ({n / sfreq:.1f} s) touches a stretch the file marks "
                    f"bad (BAD annotations); no {self.n_times}-sample window is left to decode.")

    def window_starts(self, block: str, *, offset: int = 0) -> np.ndarray:
        """Starts of non-overlapping-prediction windows covering ``block``, shape (W,); those
        touching a stretch the file marks bad (``bad``) are left out."""
        blk = self.blocks[block]
        last = blk.stop - self.n_times
        # [A] windows touching a stretch marked bad are left out
        return self._clean(np.arange(blk.start + offset, last + 1, self.n_preds), self.n_times)

    def tiling_starts(self, block: str, n_times: int | None = None) -> np.ndarray:
        """Starts of back-to-back windows of ``n_times`` samples (default the decoder's) from the
        start of ``block`` (the probe's windows), shape (W,); those touching a stretch the file
        marks bad (``bad``) are left out."""
        n = n_times or self.n_times
        blk = self.blocks[block]
        return self._clean(np.arange(blk.start, blk.stop - n + 1, n), n)

    def _clean(self, starts: np.ndarray, n: int) -> np.ndarray:
        """``starts`` of ``n``-sample windows that touch no sample marked bad."""
        if self.bad is None or not self.bad.any():
            return starts
        return starts[~touches(self.bad, starts, starts + n)]

    def batch(self, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Windows and aligned targets: X (W, C, n_times), y (W, n_preds)."""
        idx = starts[:, None] + np.arange(self.n_times)[None]  # (W, n_times)
        X = self.X[:, idx].transpose(1, 0, 2)  # (W, C, n_times)
        y = self.y[idx[:, self.receptive_field - 1:]]  # (W, n_preds)
        return np.ascontiguousarray(X), y

    def eval_set(self, block: str = "test") -> tuple[np.ndarray, np.ndarray]:
        return self.batch(self.window_starts(block))

    def train_epoch(self, rng: np.random.Generator) -> np.ndarray:
        """Shuffled window starts for one epoch over the training block (random phase)."""
        starts = self.window_starts("train", offset=int(rng.integers(0, self.n_preds)))
        return rng.permutation(starts)


@dataclass
class TrialData:
    """Trials and integer labels for trial-wise classification.

    Attributes
    ----------
    X : ndarray, shape (n_trials, n_chans, n_times), float32
    y : ndarray, shape (n_trials,), int64
    block_of : ndarray of str, shape (n_trials,)
    classes : list of str
    """

    X: np.ndarray
    y: np.ndarray
    block_of: np.ndarray
    classes: list
    n_times: int
    receptive_field: int
    task: str = "classification"

    def check_lengths(self, sfreq: float) -> None:
        for name in ("train", "valid", "test"):
            if not (self.block_of == name).any():
                raise UnitScopeError(
                    f"No complete trial falls in the {name} block; the recording has "
                    f"{len(self.y)} usable trials. Use a longer recording or shorter trials."
                )

    def eval_set(self, block: str = "test") -> tuple[np.ndarray, np.ndarray]:
        m = self.block_of == block
        return self.X[m], self.y[m]

    def train_epoch(self, rng: np.random.Generator) -> np.ndarray:
        return rng.permutation(np.flatnonzero(self.block_of == "train"))

    def batch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.X[idx], self.y[idx]
