"""Small decoders and contiguous dense windows for the pruning tests."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.models import build_model
from pruning_helpers import N_CHANS, N_TIMES, dense_windows



@pytest.fixture(scope="module")
def deep4():
    return build_model("deep4", n_chans=N_CHANS, n_outputs=1, n_times=N_TIMES, seed=1)


@pytest.fixture(scope="module")
def dense_set(deep4):
    """(X, y): contiguous windows of a random signal; y = unmasked output + noise."""
    rng = np.random.default_rng(7)
    signal = rng.standard_normal((N_CHANS, 1600)).astype(np.float32)
    n_preds = N_TIMES - 521
    X = dense_windows(signal, N_TIMES, n_preds)
    with torch.no_grad():
        out = deep4(torch.as_tensor(X))[:, 0].numpy()
    y = out + 0.5 * out.std() * rng.standard_normal(out.shape).astype(np.float32)
    return X, y


@pytest.fixture(scope="module")
def shallow():
    return build_model("shallow", n_chans=N_CHANS, n_outputs=1, n_times=N_TIMES, seed=0)
