"""Amplitude probe against analytic ground truth (METHODS.md 1.6, 1.9 item 1)."""
import numpy as np
import pytest
import torch

from core._validation import UnitScopeError
from core.probing import AmplitudeProbe

from probing_toys import F0, SFREQ, BandpassUnit


def _f0_index(ds):
    return int(np.argmin(np.abs(ds["freq"].values - F0)))


def test_linear_bandpass_unit_is_amplitude_insensitive(tones):
    model = BandpassUnit()
    ds = AmplitudeProbe(model, sfreq=SFREQ, layers=model.layers, n_iterations=8, rng=0).run(tones)
    r = ds["amp_corr"].isel(unit=0)
    # the time mean of a band-passed tone does not follow its amplitude
    assert abs(float(r.isel(channel=0, freq=_f0_index(ds)))) < 0.1
    assert float(np.nanmax(np.abs(r))) < 0.15


def test_squared_unit_follows_amplitude_at_its_frequency(tones):
    model = BandpassUnit(square=True)
    ds = AmplitudeProbe(model, sfreq=SFREQ, layers=model.layers, n_iterations=8, rng=0).run(tones)
    r = ds["amp_corr"].isel(unit=0)
    i0 = _f0_index(ds)
    # power rises with amplitude: r > 0 with the "new - orig" sign convention
    assert float(r.isel(channel=0, freq=i0)) > 0.9
    others = np.abs(r.values.copy())
    others[0, i0] = 0
    assert others.max() < 0.15
    # the band summary carries it into alpha (7-13 Hz) on channel 0 only
    band = ds["amp_band"].isel(unit=0)
    assert int(band.sel(band="alpha").argmax("channel")) == 0


def test_noise_references_and_raw_scale(tones):
    model = BandpassUnit(square=True)
    for noise in ("std", "mad", "raw"):
        ds = AmplitudeProbe(model, sfreq=SFREQ, layers=model.layers, n_iterations=3, rng=1,
                            noise=noise, noise_scale=0.3).run(tones)
        assert float(ds["amp_corr"].isel(unit=0, channel=0, freq=_f0_index(ds))) > 0.8
        assert ds.attrs["amp_noise"] == noise and ds.attrs["amp_noise_scale"] == 0.3


def test_effective_noise_is_clipped_at_zero_amplitude():
    model = BandpassUnit()
    probe = AmplitudeProbe(model, sfreq=SFREQ, layers=model.layers, noise="raw", noise_scale=50.0)
    Z = torch.fft.rfft(torch.zeros(4, 3, 256) + 0.01, dim=-1)
    state = probe._prepare(Z, 256)
    Zp, P = probe._perturb(state, Z, np.random.default_rng(0))
    assert torch.all(Zp.abs() >= 0)
    M = Z.abs().reshape(4, -1)
    # amplitudes are clipped at 0, so the effective noise never goes below -|Z|
    assert torch.all(P >= -M - 1e-6)
    assert torch.allclose(Zp.abs().reshape(4, -1), M + P, atol=1e-4)


def test_bad_noise_options():
    model = BandpassUnit()
    with pytest.raises(UnitScopeError, match="'noise' parameter.*'std'"):
        AmplitudeProbe(model, sfreq=SFREQ, layers=model.layers, noise="sd")
    with pytest.raises(UnitScopeError, match="'noise_scale' must lie in"):
        AmplitudeProbe(model, sfreq=SFREQ, layers=model.layers, noise_scale=0)
