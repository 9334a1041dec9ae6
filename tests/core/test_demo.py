import numpy as np
import pytest

from core._validation import UnitScopeError
from core.demo import ROLE_BANDS, simulate_reaching


def _band_envelope(x, sfreq, lo, hi, smooth_s=0.25):
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / sfreq)
    spec[(f < lo) | (f > hi)] = 0
    power = np.fft.irfft(spec, n=len(x)) ** 2
    k = np.ones(int(smooth_s * sfreq)) / int(smooth_s * sfreq)
    return np.convolve(power, k, mode="same")


def test_default_size_and_determinism():
    a = simulate_reaching(seed=3, duration=60.0)
    b = simulate_reaching(seed=3, duration=60.0)
    c = simulate_reaching(seed=4, duration=60.0)
    assert a.signals.shape == (32, 15000) and a.sfreq == 250.0
    np.testing.assert_array_equal(a.signals.values, b.signals.values)
    np.testing.assert_array_equal(a.target.values, b.target.values)
    assert not np.array_equal(a.signals.values, c.signals.values)
    full = simulate_reaching()
    assert full.duration == pytest.approx(600.0) and full.n_chans == 32
    assert 100 <= len(full.events) <= 300  # a movement every few seconds


def test_roles_bands_and_grid_coords(short_demo):
    s = short_demo.signals
    roles = set(s["role"].values.tolist())
    assert roles == {"high_gamma", "beta", "low_freq", "noise"}
    for role, (lo, hi) in ROLE_BANDS.items():
        sel = s.where(s.role == role, drop=True)
        assert np.all(sel.band_lo.values == lo) and np.all(sel.band_hi.values == hi)
    assert sorted(set(s.row.values.tolist())) == [0, 1, 2, 3]
    assert sorted(set(s.col.values.tolist())) == list(range(8))


def test_events_are_onsets_valued_by_peak_speed(short_demo):
    rec = short_demo
    y = rec.target.values
    for onset, peak in zip(rec.events.onset, rec.events.value):
        i = int(onset * rec.sfreq)
        assert y[max(i - 5, 0)] < 0.01 * peak + 1e-6  # still before the onset
        assert y[i:i + int(1.5 * rec.sfreq)].max() == pytest.approx(peak, rel=0.02)


def test_ground_truth_channel_roles(short_demo):
    """High-gamma power follows speed, beta power drops in movement, noise does neither."""
    rec = short_demo
    sf = rec.sfreq
    speed = rec.target.values
    r = {}
    for role, (lo, hi) in {"high_gamma": (60, 90), "beta": (15, 25), "noise": (60, 90)}.items():
        idx = np.flatnonzero(rec.signals.role.values == role)[0]
        env = _band_envelope(rec.signals.values[idx].astype(float), sf, lo, hi)
        r[role] = np.corrcoef(env, speed)[0, 1]
    assert r["high_gamma"] > 0.5
    assert r["beta"] < -0.2
    assert abs(r["noise"]) < 0.1
    # the low-frequency waveform is locked to movement onset: its event-locked average is large
    def lowpass(x):
        spec = np.fft.rfft(x)
        spec[np.fft.rfftfreq(len(x), 1 / sf) > 5] = 0
        return np.fft.irfft(spec, n=len(x))

    idx = np.flatnonzero(rec.signals.role.values == "low_freq")[0]
    x = lowpass(rec.signals.values[idx].astype(float))
    seg = np.stack([x[int(o * sf): int(o * sf) + int(sf)] for o in rec.events.onset])
    noise_idx = np.flatnonzero(rec.signals.role.values == "noise")[0]
    xn = lowpass(rec.signals.values[noise_idx].astype(float))
    segn = np.stack([xn[int(o * sf): int(o * sf) + int(sf)] for o in rec.events.onset])
    assert np.abs(seg.mean(0)).max() > 2 * np.abs(segn.mean(0)).max()


def test_bad_arguments():
    with pytest.raises(UnitScopeError, match="'duration' must lie in"):
        simulate_reaching(duration=5.0)
    with pytest.raises(UnitScopeError, match="'sfreq' must lie in"):
        simulate_reaching(sfreq=100.0)
