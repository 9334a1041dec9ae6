"""Phase probe against analytic ground truth (METHODS.md 1.6, 1.9 item 1)."""
import numpy as np
import pytest

from core._validation import UnitScopeError
from core.probing import PhaseProbe

from probing_toys import F0, N_TIMES, SFREQ, BandpassUnit

# corr(|D|, cos D) for |D| ~ U(0, pi): -2 sqrt(24) / pi^2
ANALYTIC = -2 * np.sqrt(24) / np.pi ** 2


def _f0_index(ds):
    return int(np.argmin(np.abs(ds["freq"].values - F0)))


def test_analytic_constant():
    rng = np.random.default_rng(0)
    d = np.abs(rng.uniform(-np.pi, np.pi, 400_000))
    assert np.corrcoef(d, np.cos(d))[0, 1] == pytest.approx(ANALYTIC, abs=2e-3)


def test_linear_bandpass_unit_is_phase_sensitive_at_its_frequency(tones):
    model = BandpassUnit()
    ds = PhaseProbe(model, sfreq=SFREQ, layers=model.layers, n_iterations=8, rng=0).run(tones)
    r = ds["phase_corr"].isel(unit=0)
    i0 = _f0_index(ds)
    assert float(r.isel(channel=0, freq=i0)) == pytest.approx(ANALYTIC, abs=0.02)
    others = np.abs(r.values.copy())
    others[0, i0] = 0
    assert np.nanmax(others) < 0.15


def test_squared_unit_is_phase_insensitive(tones):
    model = BandpassUnit(square=True)
    ds = PhaseProbe(model, sfreq=SFREQ, layers=model.layers, n_iterations=8, rng=0).run(tones)
    r = ds["phase_corr"].isel(unit=0)
    # a power envelope moves with cos(2 D), which is uncorrelated with |D|
    assert abs(float(r.isel(channel=0, freq=_f0_index(ds)))) < 0.1
    assert np.nanmax(np.abs(r.values)) < 0.15


def test_dc_and_nyquist_are_excluded(tones):
    model = BandpassUnit()
    ds = PhaseProbe(model, sfreq=SFREQ, layers=model.layers, n_iterations=2, rng=0).run(tones)
    r = ds["phase_corr"].isel(unit=0)
    assert N_TIMES % 2 == 0
    assert np.isnan(r.isel(freq=0)).all() and np.isnan(r.isel(freq=-1)).all()
    assert np.isfinite(r.isel(freq=slice(1, -1))).all()
    # nothing is shifted there: the spectra keep their DC and Nyquist bins
    probe = PhaseProbe(model, sfreq=SFREQ, layers=model.layers)
    import torch

    Z = torch.fft.rfft(torch.as_tensor(tones[:5]), dim=-1)
    Zp, P = probe._perturb(probe._prepare(Z, N_TIMES), Z, np.random.default_rng(0))
    assert torch.allclose(Zp[..., 0], Z[..., 0]) and torch.allclose(Zp[..., -1], Z[..., -1])
    assert torch.allclose(Zp.abs(), Z.abs(), rtol=1e-4, atol=1e-5)  # amplitudes kept


def test_shared_and_per_channel_shifts_agree_for_a_single_channel_unit(tones):
    model = BandpassUnit(channel=0)
    kw = dict(sfreq=SFREQ, layers=model.layers, n_iterations=8)
    per_channel = PhaseProbe(model, variant="channel", rng=0, **kw).run(tones)
    shared = PhaseProbe(model, variant="shared", rng=1, **kw).run(tones)
    a = per_channel["phase_corr"].isel(unit=0, channel=0).values
    b = shared["phase_corr"].isel(unit=0, channel=0).values
    ok = np.isfinite(a)
    i0 = _f0_index(per_channel)
    assert a[i0] == pytest.approx(ANALYTIC, abs=0.02) and b[i0] == pytest.approx(ANALYTIC, abs=0.02)
    # elsewhere both are noise of sd 1 / sqrt(n_windows * n_iterations) = 0.028
    assert np.abs(a[ok] - b[ok]).max() < 0.15
    assert np.abs(a[ok] - b[ok]).mean() < 0.05
    # the shared map is the same for every channel (no channel resolution)
    assert np.allclose(shared["phase_corr"].isel(unit=0, channel=1), b, equal_nan=True)
    assert shared.attrs["phase_variant"] == "shared"


def test_bad_variant():
    model = BandpassUnit()
    with pytest.raises(UnitScopeError, match="Allowed values are 'channel' and 'shared'"):
        PhaseProbe(model, sfreq=SFREQ, layers=model.layers, variant="shard")
