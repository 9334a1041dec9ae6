"""Fixtures of the probing tests."""
import pytest

from probing_toys import tone_windows


@pytest.fixture(scope="session")
def tones():
    return tone_windows()


@pytest.fixture(scope="session")
def small_deep4():
    """An untrained dense Deep4 on 4 channels (receptive field 522 samples)."""
    from core.models import build_model

    return build_model("deep4", n_chans=4, n_outputs=1, n_times=560, seed=0)
