"""Shared fixtures: a short demo recording, small decoders, the shared real-data folder."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_addoption(parser):
    parser.addoption("--ui", action="store_true", default=False,
                     help="also run the browser tests (marker 'ui'; needs /usr/bin/chromium)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--ui"):
        return
    skip = pytest.mark.skip(reason="browser test: run with --ui")
    for item in items:
        if "ui" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the project; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real recordings not available at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def short_demo():
    """90 s of the demo recording (seed 0)."""
    from core.demo import simulate_reaching

    return simulate_reaching(seed=0, duration=90.0)


@pytest.fixture()
def rng():
    return np.random.default_rng(12345)
