"""The full probe: config, both passes with classes, the untrained control, workspace windows."""
import json

import numpy as np
import pytest
import torch

from core._validation import UnitScopeError
from core.probing import CLASSES, ProbeConfig, probe_units, untrained_twin
from core.probing.pipeline import bin_maps, finish, maps_mb, select_windows, start_probe, workspace_windows


def test_config_round_trip_and_validation():
    cfg = ProbeConfig(n_iterations=3, layers=["conv_2"], bands=["beta"])
    assert ProbeConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(UnitScopeError, match=r"Unknown probe options \['iterations'\].*Did you mean 'n_iterations'"):
        ProbeConfig.from_dict({"iterations": 3})
    with pytest.raises(UnitScopeError, match="'n_iterations' must lie in"):
        ProbeConfig(n_iterations=0).validate()
    with pytest.raises(UnitScopeError, match="'site' parameter"):
        ProbeConfig(site="bn").validate()


def test_select_windows():
    assert select_windows(10, None).tolist() == list(range(10))
    assert select_windows(10, 20).tolist() == list(range(10))
    assert select_windows(10, 4).tolist() == [0, 3, 6, 9]


def test_probe_units_classifies_every_unit(small_deep4):
    X = np.random.default_rng(0).standard_normal((8, 4, 560)).astype(np.float32)
    cfg = ProbeConfig(n_iterations=2, n_windows=6, n_null=2, layers=["conv_2", "conv_classifier"])
    seen = []
    ds = probe_units(small_deep4, X, sfreq=250.0, config=cfg, progress=seen.append)
    assert seen == [0.5, 1.0]
    assert ds.attrs["n_windows"] == 6 and json.loads(ds.attrs["config"])["n_iterations"] == 2
    # the settings as a dict (a probe.nc's config): 'dict' object has no attribute 'validate' before
    again = probe_units(small_deep4, X, sfreq=250.0, config=json.loads(ds.attrs["config"]))
    assert json.loads(again.attrs["config"]) == json.loads(ds.attrs["config"])
    with pytest.raises(UnitScopeError, match="config must be a ProbeConfig or a dict of its fields, got int"):
        probe_units(small_deep4, X, sfreq=250.0, config=3)
    assert ds.sizes["unit"] == 51
    assert set(np.unique(ds["unit_class_all"].values)) <= set(CLASSES)
    assert ds["unit_class"].dims == ("unit", "band")
    with pytest.raises(UnitScopeError, match="y has 3 entries but X has 8 windows"):
        probe_units(small_deep4, X, sfreq=250.0, config=cfg, y=np.zeros((3, 39)))


@pytest.mark.parametrize("variant", ["channel", "shared"])
def test_binned_maps_of_a_run_equal_binning_its_full_result(small_deep4, variant):
    """``finish(run, map_bin=...)`` builds the binned maps without the full ones: the same
    numbers as :func:`bin_maps` of the full result (the phase maps' excluded DC and Nyquist
    bins skipped), and the same statistics; ``maps=False`` drops the maps only."""
    X = np.random.default_rng(1).standard_normal((8, 4, 560)).astype(np.float32)
    cfg = ProbeConfig(n_iterations=2, n_null=2, layers=["conv_2", "conv_3"], phase_variant=variant)
    run = start_probe(small_deep4, X, sfreq=250.0, config=cfg)
    run.run()
    full = finish(run)
    assert maps_mb(run) == pytest.approx(maps_mb(full))
    for hz in (0.45, 2.0, 7.0):  # under one bin (0.45 Hz) keeps each bin alone, bar its edges
        binned, expected = finish(run, map_bin=hz), bin_maps(full, hz)
        assert binned.attrs["maps_binned_hz"] == hz
        np.testing.assert_allclose(binned["freq"].values, expected["freq"].values)
        for var in ("amp_corr", "phase_corr"):
            assert binned[var].dims == ("unit", "channel", "freq") and binned[var].dtype == np.float32
            np.testing.assert_allclose(binned[var].values, expected[var].values, rtol=1e-5, atol=1e-7)
            assert np.array_equal(np.isnan(binned[var].values), np.isnan(expected[var].values))
        assert np.isnan(binned["phase_corr"].values[..., 0]).all() == (hz < 250.0 / 560)  # DC alone: NaN
        np.testing.assert_array_equal(binned["unit_class_all"].values, full["unit_class_all"].values)
    none = finish(run, maps=False)
    assert "amp_corr" not in none and "freq" not in none.dims and none.attrs["maps"] == "none"
    assert set(none.data_vars) == set(bin_maps(full, None).data_vars)
    np.testing.assert_array_equal(none["phase_stat_all"].values, full["phase_stat_all"].values)
    np.testing.assert_array_equal(finish(run)["amp_corr"].values, full["amp_corr"].values)  # sums untouched
    with pytest.raises(UnitScopeError, match="map_bin must be a positive frequency in Hz or None, got 0"):
        run.result(map_bin=0)


def test_untrained_twin_is_a_fresh_copy_of_the_architecture(small_deep4):
    twin = untrained_twin(small_deep4, seed=3)
    a, b = small_deep4.state_dict(), twin.state_dict()
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)
    assert not torch.equal(a["conv_2.weight"], b["conv_2.weight"])
    assert torch.equal(b["conv_2.weight"], untrained_twin(small_deep4, seed=3).state_dict()["conv_2.weight"])
    assert not twin.training and twin is not small_deep4
    with pytest.raises(UnitScopeError, match="build_model"):
        untrained_twin(torch.nn.Conv1d(2, 2, 3))


@pytest.fixture(scope="module")
def small_workspace():
    from core.training import TrainConfig
    from core.workspace import DataSpec, Workspace

    return Workspace.create(DataSpec(duration=60.0), TrainConfig(n_times=600))


def test_workspace_windows_align_targets_with_predictions(small_workspace):
    ws = small_workspace
    X, y = workspace_windows(ws, "train")
    blk = ws.blocks["train"]
    assert X.shape == ((blk.stop - blk.start) // 600, 32, 600)
    assert y.shape == (X.shape[0], 600 - 522 + 1)
    starts = np.arange(blk.start, blk.stop - 600 + 1, 600)
    Xb, yb = ws.data.batch(starts)
    np.testing.assert_array_equal(X, Xb)
    np.testing.assert_array_equal(y, yb)
    with pytest.raises(UnitScopeError, match="Unknown block 'tran'"):
        workspace_windows(ws, "tran")
