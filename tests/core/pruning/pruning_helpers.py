"""Helpers shared by the pruning tests (imported by name: the test folders are not packages)."""
from __future__ import annotations

import numpy as np

N_CHANS, N_TIMES = 4, 600


def dense_windows(signal: np.ndarray, n_times: int, n_preds: int) -> np.ndarray:
    """Windows (W, C, n_times) stepping by n_preds, as ``Workspace.eval_set`` cuts them."""
    starts = np.arange(0, signal.shape[1] - n_times + 1, n_preds)
    return np.stack([signal[:, s:s + n_times] for s in starts]).astype(np.float32)
