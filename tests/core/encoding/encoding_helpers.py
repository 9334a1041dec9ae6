"""Helpers of the encoding tests, importable by name (a module called conftest is not:
pytest puts every test folder on sys.path, so `from conftest import` finds whichever
folder's conftest was imported first)."""
from __future__ import annotations

import contextlib

import numpy as np
import torch

from core.encoding._data import make_epochs


@contextlib.contextmanager
def one_thread():
    """One torch and one BLAS thread: the machine running the tests is shared."""
    from threadpoolctl import threadpool_limits

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(n)


def linear_data(*, n_subjects=2, n_epochs=60, n_chans=3, n_times=40, seed=0, noise=0.0):
    """Epochs whose signals are a known kernel convolved with a random pulse forcing.

    Returns (data, kernel) with kernel of shape (n_chans, n_lags=6).
    """
    rng = np.random.default_rng(seed)
    kernel = rng.standard_normal((n_chans, 6))
    f = np.zeros((n_subjects * n_epochs, 2, n_times), np.float32)  # first_mask, value
    starts = rng.integers(0, n_times - 10, len(f))
    for e, s in enumerate(starts):
        f[e, 0, 10:13] = 1.0
        f[e, 1, s:s + 3] = rng.uniform(1.0, 3.0)
    meg = np.zeros((len(f), n_chans, n_times), np.float32)
    for c in range(n_chans):
        for d in range(6):
            meg[:, c, d:] += kernel[c, d] * f[:, 1, : n_times - d]
    meg += noise * rng.standard_normal(meg.shape).astype(np.float32)
    data = make_epochs(meg, f, subject=np.repeat([f"S{i}" for i in range(n_subjects)], n_epochs),
                       sfreq=20.0, tmin=-0.5, feature_names=["first_mask", "value"],
                       onset_time=np.tile(np.arange(n_epochs) * 10.0, n_subjects))
    return data, kernel
