import numpy as np
import pytest

from core._validation import UnitScopeError
from core.encoding.synthetic import (READING_FEATURES, _cascade, _cascade_pole, freq_gain,
                                     length_gain, simulate_reading)


def test_layout_and_determinism(reading_small):
    assert [str(f) for f in reading_small["feature"].values] == list(READING_FEATURES)
    assert sorted(READING_FEATURES) == list(READING_FEATURES)  # forcings sorted by name
    assert np.unique(reading_small["subject"].values).tolist() == ["S01", "S02", "S03"]
    again = simulate_reading(n_subjects=3, n_words=120, n_sensors=12, sfreq=50.0, seed=1)
    np.testing.assert_array_equal(again["meg"].values, reading_small["meg"].values)
    other = simulate_reading(n_subjects=3, n_words=120, n_sensors=12, sfreq=50.0, seed=2)
    assert not np.allclose(other["meg"].values, reading_small["meg"].values)


@pytest.mark.parametrize("latency", [0.1, 0.15, 0.4])
def test_pathway_impulse_response_peaks_at_the_requested_latency(latency):
    a = _cascade_pole(latency, 60.0)
    h = _cascade(np.r_[1.0, np.zeros(200)], a)
    assert np.argmax(h) / 60.0 == pytest.approx(latency, abs=1e-9)


def test_truth_latencies_are_recorded():
    data = simulate_reading(n_subjects=1, n_words=40, n_sensors=4, sfreq=100.0,
                            latency_length=0.12, latency_freq=0.35, seed=0)
    assert data.attrs["truth_latency_word_length"] == pytest.approx(0.12)
    assert data.attrs["truth_latency_word_freq"] == pytest.approx(0.35)


def test_forcings_mark_the_own_word_and_its_features(reading_small):
    f = reading_small["forcing"]
    t = reading_small["time"].values
    own = f.sel(feature="first_mask").values > 0
    shown = (t >= 0) & (t < 0.3)
    assert np.all(own[:, shown]) and not np.any(own[:, ~shown])
    i0 = int(np.argmax(t >= 0))
    length = f.sel(feature="word_length").values[:, i0]
    assert np.all((length >= 1) & (length <= 14)) and np.all(length == np.round(length))
    zipf = f.sel(feature="word_freq").values[:, i0]
    assert np.all((zipf >= 1) & (zipf <= 7))
    # context words appear too: some epochs show another word after the own one
    later = f.sel(feature="word_onset").values[:, t > 0.5]
    assert later.any(axis=1).mean() > 0.8  # (not after sentence-final words)


def test_gains_are_nonlinear():
    assert length_gain(14) - length_gain(7) < 0.5 * (length_gain(7) - length_gain(0))  # saturates
    assert freq_gain(2.0) > 0.95 and freq_gain(6.0) < 0.05  # a threshold on rare words


def _evoked_projection(data, pathway, latency):
    """Each epoch's signal projected on the pathway's sensor pattern at its latency."""
    t = data["time"].values
    i = int(np.argmin(np.abs(t - latency)))
    out = np.empty(data.sizes["epoch"])
    for s in np.unique(data["subject"].values):
        sel = data["subject"].values == s
        w = data["truth_mixing"].sel(truth_subject=s, pathway=pathway).values
        out[sel] = data["meg"].values[sel, :, i] @ w / (w @ w)
    return out


def test_alpha_gate_and_features_drive_the_evoked_response():
    data = simulate_reading(n_subjects=2, n_words=400, n_sensors=40, noise=0.1, spontaneous=0.1, seed=3)
    gate = data["alpha_gate"].values
    i0 = int(np.argmax(data["time"].values >= 0))
    length = data["forcing"].sel(feature="word_length").values[:, i0]
    zipf = data["forcing"].sel(feature="word_freq").values[:, i0]
    visual = _evoked_projection(data, "visual_length", data.attrs["truth_latency_word_length"])
    lexical = _evoked_projection(data, "lexical_freq", data.attrs["truth_latency_word_freq"])
    # the response is (gate x gain) plus context words, alpha and noise
    assert np.corrcoef(visual, gate * length_gain(length))[0, 1] > 0.6
    assert np.corrcoef(lexical, gate * freq_gain(zipf))[0, 1] > 0.6
    # high pre-stimulus alpha (low gate) damps the response
    assert visual[gate < 0.5].mean() < 0.5 * visual[gate > 1.5].mean()


def test_bad_parameters():
    with pytest.raises(UnitScopeError, match="'n_words' must lie in"):
        simulate_reading(n_words=5)
    with pytest.raises(UnitScopeError, match="'sfreq' must lie in"):
        simulate_reading(sfreq=20.0)
