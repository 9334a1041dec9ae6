import json

import numpy as np
import pytest

from core._validation import UnitScopeError
from core.preprocessing import (Standardizer, band_envelope, bandpass, check_signals, pick_channels, resample,
                                split_blocks)


def test_split_blocks_contiguous_and_complete():
    blocks = split_blocks(1000)
    assert blocks == {"train": slice(0, 600), "valid": slice(600, 800), "test": slice(800, 1000)}
    with pytest.raises(UnitScopeError, match="three positive numbers"):
        split_blocks(1000, (0.5, 0.5))


def test_standardizer_fitted_on_train_block_only(short_demo):
    rec = short_demo.copy() if hasattr(short_demo, "copy") else short_demo
    blocks = split_blocks(rec.n_times)
    # make the test block very different: standardisation must not look at it
    data = rec.signals.values.copy()
    data[:, blocks["test"]] += 1.0
    shifted = type(rec)(rec.signals.copy(data=data), rec.target, rec.events)
    out = Standardizer().fit(shifted, blocks["train"]).transform(shifted)
    train = out.signals.values[:, blocks["train"]]
    np.testing.assert_allclose(train.mean(1), 0, atol=1e-4)
    np.testing.assert_allclose(train.std(1), 1, atol=1e-3)
    assert out.signals.values[:, blocks["test"]].mean() > 100  # 1 V offset in units of ~20 uV
    steps = json.loads(out.signals.attrs["preprocessing"])
    assert steps[-1]["step"] == "standardize" and steps[-1]["fitted_on"] == "train"


def test_pick_bandpass_resample(short_demo):
    rec = pick_channels(short_demo, ["G03", "G01"])
    assert rec.ch_names == ["G03", "G01"]
    with pytest.raises(UnitScopeError, match=r"\['G99'\] are not in the recording"):
        pick_channels(short_demo, ["G99"])
    filt = bandpass(rec, 60.0, 90.0)
    spec = np.abs(np.fft.rfft(filt.signals.values[0]))
    f = np.fft.rfftfreq(filt.n_times, 1 / filt.sfreq)
    assert spec[(f > 65) & (f < 85)].mean() > 20 * spec[(f > 5) & (f < 40)].mean()
    with pytest.raises(UnitScopeError, match="'h_freq' must lie in"):
        bandpass(rec, 1.0, 200.0)
    down = resample(rec, 125.0)
    assert down.sfreq == 125.0 and down.n_times == rec.n_times // 2
    assert down.target.sizes["time"] == down.n_times


def test_nan_and_flat_channels_are_named(short_demo):
    data = short_demo.signals.values.copy()
    data[4, 100] = np.nan
    bad = type(short_demo)(short_demo.signals.copy(data=data), short_demo.target, short_demo.events)
    with pytest.raises(UnitScopeError, match=r"\['G05'\] contain NaN or Inf"):
        check_signals(bad)
    data = short_demo.signals.values.copy()
    data[7] = 0.0
    flat = type(short_demo)(short_demo.signals.copy(data=data), short_demo.target, short_demo.events)
    with pytest.raises(UnitScopeError, match=r"\['G08'\] are flat"):
        check_signals(flat)


def test_band_envelope_recovers_an_amplitude_modulation_inside_the_band_only():
    sfreq, t = 250.0, np.arange(0, 20, 1 / 250.0)
    a = 1 + 0.5 * np.sin(2 * np.pi * 0.3 * t)  # slow amplitude a(t)
    x = np.vstack([a * np.sin(2 * np.pi * 75 * t), a * np.sin(2 * np.pi * 20 * t), a * np.sin(2 * np.pi * 75 * t)])
    env = band_envelope(x, sfreq, 60, 90, chunk=2)  # chunks of rows give the same rows
    inner = slice(500, -500)
    np.testing.assert_allclose(env[0, inner], a[inner], atol=1e-3)
    assert np.abs(env[1]).max() < 1e-3  # 20 Hz: outside the band
    np.testing.assert_array_equal(env[2], env[0])
    assert env.dtype == np.float32 and env.shape == x.shape
    smooth = band_envelope(x, sfreq, 60, 90, smooth_s=0.1)  # a Gaussian of sd s scales a sine by exp(-(2 pi f s)^2 / 2)
    a_smooth = 1 + 0.5 * np.exp(-(2 * np.pi * 0.3 * 0.1) ** 2 / 2) * np.sin(2 * np.pi * 0.3 * t)
    np.testing.assert_allclose(smooth[0, inner], a_smooth[inner], atol=1e-3)
    noise = np.random.default_rng(0).standard_normal((1, len(t)))
    assert band_envelope(noise, sfreq, 60, 90, smooth_s=0.1).std() < 0.5 * band_envelope(noise, sfreq, 60, 90).std()
    with pytest.raises(UnitScopeError, match="'smooth_s' must lie in"):
        band_envelope(x, sfreq, 60, 90, smooth_s=-1)
    with pytest.raises(UnitScopeError, match="lo < hi"):
        band_envelope(x, sfreq, 90, 60)
    with pytest.raises(UnitScopeError, match="'hi' must lie in"):
        band_envelope(x, sfreq, 60, 200)
    with pytest.raises(UnitScopeError, match=r"x must have shape \(n_rows, n_times\)"):
        band_envelope(x[0], sfreq, 60, 90)
