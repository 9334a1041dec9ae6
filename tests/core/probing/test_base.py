"""The probe engine: one forward per pass, running estimates, stop/resume, bad input, netCDF."""
import numpy as np
import pytest
import torch
import xarray as xr

from core._validation import UnitScopeError
from core.models import layer_map
from core.probing import AmplitudeProbe, PhaseProbe, ProbeRun

from probing_toys import SFREQ, BandpassUnit


def _pair(model, k=4, **kw):
    kw = dict(sfreq=SFREQ, layers=model.layers, n_iterations=k, **kw)
    return AmplitudeProbe(model, rng=0, **kw), PhaseProbe(model, rng=1, **kw)


def test_one_forward_pass_per_perturbation_for_all_blocks(small_deep4):
    layer_map(small_deep4)  # its receptive-field dry runs are not probe passes
    calls = []
    handle = small_deep4.register_forward_pre_hook(lambda m, i: calls.append(i[0].shape[0]))
    X = np.random.default_rng(0).standard_normal((6, 4, 560)).astype(np.float32)
    try:
        kw = dict(sfreq=250.0, n_iterations=2, batch_size=64, n_null=1)
        run = ProbeRun([AmplitudeProbe(small_deep4, rng=0, **kw), PhaseProbe(small_deep4, rng=1, **kw)], X)
        ds = run.run()
    finally:
        handle.remove()
    assert calls == [6] * (1 + 2 * 2)  # the original pass, then one per iteration and probe
    assert set(ds["layer"].values) == {"conv_time_spat", "conv_2", "conv_3", "conv_4", "conv_classifier"}
    assert ds.sizes["unit"] == 25 + 50 + 100 + 200 + 1
    assert ds["unit"].values[30] == "conv_2/5" and ds["index"].values[30] == 5
    assert not small_deep4._forward_hooks and not small_deep4.training
    for m in small_deep4.modules():
        assert not m._forward_hooks


def test_running_estimate_progress_and_resume_equals_uninterrupted(tones):
    model = BandpassUnit()
    full = ProbeRun(list(_pair(model)), tones).run()
    run = ProbeRun(list(_pair(model)), tones)
    assert run.progress == 0
    early = run.result()  # readable before any iteration
    assert np.isnan(early["amp_corr"]).all() and early.attrs["progress"] == 0
    seen = []
    for r in run:
        seen.append(r.progress)
        if r.done == [2, 2]:
            r.stop()
    assert seen == [0.25, 0.5] and run.stopped and not run.finished
    partial = run.result()
    assert partial.attrs["amp_iterations"] == 2 and partial.attrs["progress"] == 0.5
    # a running estimate is already informative
    assert float(partial["phase_corr"].isel(unit=0, channel=0, freq=20)) < -0.9
    resumed = run.run()
    assert run.progress == 1 and run.finished
    xr.testing.assert_identical(resumed, full)


def test_same_rng_gives_same_result_and_batches_do_not_matter(tones):
    model = BandpassUnit()
    a = ProbeRun(list(_pair(model, k=2, batch_size=160)), tones).run()
    b = ProbeRun(list(_pair(model, k=2, batch_size=7)), tones).run()
    xr.testing.assert_allclose(a, b, atol=1e-5)


def test_netcdf_round_trip(tmp_path, tones):
    model = BandpassUnit()
    ds = ProbeRun(list(_pair(model, k=2, n_null=3)), tones, ch_names=["C3", "Cz", "C4"]).run()
    path = tmp_path / "probe.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    with xr.open_dataset(path, engine="h5netcdf") as back:
        back.load()
    xr.testing.assert_identical(back, ds)
    assert back["unit"].values.tolist() == ["unit/0"]
    assert back["layer"].values.tolist() == ["unit"] and back["index"].values.tolist() == [0]
    assert back.sizes == {"unit": 1, "channel": 3, "freq": 129, "band": 5, "null": 3}
    assert back.attrs["site"] == "conv" and back["band_hi"].sel(band="alpha") == 13.0


def test_site_selects_the_module(small_deep4):
    X = np.random.default_rng(0).standard_normal((5, 4, 560)).astype(np.float32)
    conv = AmplitudeProbe(small_deep4, sfreq=250.0, layers="conv_2", n_iterations=1, rng=0)
    post = AmplitudeProbe(small_deep4, sfreq=250.0, layers="conv_2", site="nonlin", n_iterations=1, rng=0)
    assert conv.modules == ["conv_2"] and post.modules == ["nonlin_2"]
    a, b = conv.run(X), post.run(X)
    assert a.attrs["site"] == "conv" and b.attrs["site"] == "nonlin"
    assert not np.allclose(a["amp_corr"], b["amp_corr"])
    assert a.sizes["unit"] == 50 and set(a["layer"].values) == {"conv_2"}


def test_bad_input(small_deep4, tones):
    X = np.zeros((5, 4, 560), dtype=np.float32)
    with pytest.raises(UnitScopeError, match=r"Allowed values are 'conv_time_spat', .* but got 'conv_5'.*"
                                             r"Did you mean 'conv_"):
        AmplitudeProbe(small_deep4, sfreq=250.0, layers=["conv_5"])
    with pytest.raises(UnitScopeError, match="'n_iterations' must lie in"):
        AmplitudeProbe(small_deep4, sfreq=250.0, n_iterations=0)
    with pytest.raises(UnitScopeError, match="'n_iterations' must be an int"):
        PhaseProbe(small_deep4, sfreq=250.0, n_iterations=2.5)
    with pytest.raises(UnitScopeError, match="above the Nyquist frequency"):
        AmplitudeProbe(small_deep4, sfreq=100.0, bands={"hg": (60, 90)})
    probe = AmplitudeProbe(small_deep4, sfreq=250.0, n_iterations=1)
    with pytest.raises(UnitScopeError, match=r"n_times=500 is shorter than the receptive field .*522"):
        probe.run(X[..., :500])
    with pytest.raises(UnitScopeError, match="n_chans=3 but the model expects 4"):
        probe.run(X[:, :3])
    with pytest.raises(UnitScopeError, match=r"shape \(n_windows, n_chans, n_times\)"):
        probe.run(X[0])
    with pytest.raises(UnitScopeError, match="at least 3 windows"):
        probe.run(X[:2])
    bad = X.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(UnitScopeError, match="NaN"):
        probe.run(bad)
    small_deep4.train()
    try:
        with pytest.raises(UnitScopeError, match=r"training mode.*model\.eval\(\)"):
            AmplitudeProbe(small_deep4, sfreq=250.0)
    finally:
        small_deep4.eval()
    model = BandpassUnit()
    amp = AmplitudeProbe(model, sfreq=SFREQ, layers=model.layers, n_iterations=1)
    other = PhaseProbe(BandpassUnit(), sfreq=SFREQ, layers=model.layers, n_iterations=1)
    with pytest.raises(UnitScopeError, match="share model"):
        ProbeRun([amp, other], tones)


def test_untouched_model_state(small_deep4):
    before = {k: v.clone() for k, v in small_deep4.state_dict().items()}
    X = np.random.default_rng(1).standard_normal((4, 4, 560)).astype(np.float32)
    PhaseProbe(small_deep4, sfreq=250.0, layers="conv_time_spat", n_iterations=1).run(X)
    for k, v in small_deep4.state_dict().items():
        assert torch.equal(v, before[k])


def test_similarity_is_pearson_r_even_with_large_offsets(rng):
    from core.probing._base import centred_unit_norm, similarity

    a = rng.standard_normal((3, 4, 500))
    b = 0.6 * a + 0.8 * rng.standard_normal((3, 4, 500))
    expected = np.array([[np.corrcoef(x, y)[0, 1] for x, y in zip(ra, rb)] for ra, rb in zip(a, b)])
    z = centred_unit_norm(torch.as_tensor(a + 1000.0, dtype=torch.float32))
    actual = similarity(z, torch.as_tensor(b - 500.0, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(actual, expected, atol=2e-3)
    # flat time courses (round-off around a constant) have similarity 0, not amplified noise
    flat = torch.full((2, 500), 3.0) + 1e-7 * torch.as_tensor(rng.standard_normal((2, 500)), dtype=torch.float32)
    assert torch.all(centred_unit_norm(flat) == 0)
    assert torch.all(similarity(z[0, :2], flat) == 0)
