import numpy as np
import pytest

from core._validation import UnitScopeError
from core.demo import simulate_reaching
from core.encoding.demo import band_envelopes, reaching_epochs


@pytest.fixture(scope="module")
def reaching():
    return simulate_reaching(seed=0, duration=150.0)


def test_epochs_layout(reaching):
    data = reaching_epochs(reaching, sfreq=50.0)
    assert data["meg"].dims == ("epoch", "channel", "time")
    assert [str(f) for f in data["feature"].values] == ["first_mask", "movement", "peak_speed", "speed"]
    assert data.attrs["series_features"] == ["speed"]
    assert data.sizes["time"] == 150 and data.attrs["sfreq"] == 50.0
    # the own movement starts at t = 0 and carries the event's peak speed
    i0 = int(np.argmax(data["time"].values >= 0))
    own = data["forcing"].sel(feature="first_mask").values
    assert np.all(own[:, i0] == 1) and np.all(own[:, i0 - 1] == 0)
    peak = data["forcing"].sel(feature="peak_speed").values[:, i0]
    ev = reaching.events
    np.testing.assert_allclose(peak, ev.value[np.isin(ev.onset, data["onset_time"].values)], rtol=1e-6)


def test_envelopes_follow_the_channel_roles(reaching):
    env = band_envelopes(reaching.signals, sfreq=50.0)
    speed = reaching.target.values.reshape(-1, 5).mean(axis=1)
    roles = env["role"].values
    r = np.array([np.corrcoef(e, speed)[0, 1] for e in env.values])
    assert r[roles == "high_gamma"].min() > 0.3  # high gamma rises with speed
    assert r[roles == "beta"].max() < -0.1  # beta drops during movement
    assert np.abs(r[roles == "noise"]).max() < 0.2


def test_bad_rates(reaching):
    with pytest.raises(UnitScopeError, match="must divide the recording's 250.0 Hz"):
        band_envelopes(reaching.signals, sfreq=60.0)
    short = simulate_reaching(seed=0, duration=40.0)
    with pytest.raises(UnitScopeError, match="Too few epochs to fit"):
        reaching_epochs(short)
