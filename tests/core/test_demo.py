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
    with pytest.raises(UnitScopeError, match="'ipsi_fraction' must lie in"):
        simulate_reaching(duration=60.0, ipsi_fraction=1.5)


def _locked_power(x, sf, lo, hi, onsets, start=0.0, stop=1.0):
    """Mean band power of ``x`` from ``start`` to ``stop`` s after each onset."""
    env = _band_envelope(x.astype(float), sf, lo, hi, smooth_s=0.1)
    return np.array([env[int((o + start) * sf): int((o + stop) * sf)].mean() for o in onsets])


def test_ipsilateral_movements_are_marked_by_beta_alone():
    """With ipsi_fraction, the behaviour and the noise stay those of the plain demo; on the
    ipsilateral movements beta still drops but high gamma and the 1-4 Hz waveform are absent."""
    plain = simulate_reaching(seed=2, duration=300.0)
    rec = simulate_reaching(seed=2, duration=300.0, ipsi_fraction=0.5)
    assert "ipsi_onsets" not in plain.signals.attrs
    np.testing.assert_array_equal(plain.target.values, rec.target.values)
    np.testing.assert_array_equal(plain.events.onset, rec.events.onset)
    ipsi_on = rec.signals.attrs["ipsi_onsets"]
    assert rec.signals.attrs["ipsi_fraction"] == 0.5 and 0.3 < len(ipsi_on) / len(rec.events) < 0.7
    ipsi = np.isin(rec.events.onset, ipsi_on)
    assert ipsi.sum() == len(ipsi_on)
    onsets, sf, roles = rec.events.onset, rec.sfreq, rec.signals.role.values
    # noise channels are untouched
    noise = roles == "noise"
    np.testing.assert_array_equal(plain.signals.values[noise], rec.signals.values[noise])

    def move_over_rest(role, lo, hi):
        x = rec.signals.values[np.flatnonzero(roles == role)[0]]
        return _locked_power(x, sf, lo, hi, onsets, 0.2, 0.8) / _locked_power(x, sf, lo, hi, onsets, -1.2, -0.6)

    hg = move_over_rest("high_gamma", 60, 90)
    beta = move_over_rest("beta", 15, 25)
    assert np.median(hg[~ipsi]) > 2.0 and 0.7 < np.median(hg[ipsi]) < 1.3  # high gamma: contralateral only
    assert np.median(beta[~ipsi]) < 0.6 and np.median(beta[ipsi]) < 0.6      # beta drops on both
    # the 1-4 Hz waveform's event-locked average: present after contralateral onsets only
    idx = np.flatnonzero(roles == "low_freq")[0]
    spec = np.fft.rfft(rec.signals.values[idx].astype(float))
    spec[np.fft.rfftfreq(rec.signals.sizes["time"], 1 / sf) > 5] = 0
    x = np.fft.irfft(spec, n=rec.signals.sizes["time"])
    seg = np.stack([x[int(o * sf): int(o * sf) + int(sf)] for o in onsets])
    assert np.abs(seg[~ipsi].mean(0)).max() > 3 * np.abs(seg[ipsi].mean(0)).max()
