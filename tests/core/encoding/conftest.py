"""Small encoding data sets shared by the encoding tests."""
from __future__ import annotations

import pytest

from core.encoding._data import split_epochs
from core.encoding.synthetic import simulate_reading
from encoding_helpers import one_thread


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="session")
def reading_small():
    """3 subjects x 120 words, 12 sensors, 50 Hz: seconds to fit anything on it."""
    return simulate_reading(n_subjects=3, n_words=120, n_sensors=12, sfreq=50.0, seed=1)


@pytest.fixture(scope="session")
def reading_splits(reading_small):
    return split_epochs(reading_small)
