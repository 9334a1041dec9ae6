"""``unitscope probe RUN_DIR``: writes the Dataset beside the checkpoint, with progress."""
import re

import numpy as np
import pytest
import xarray as xr

from core.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from core.training import TrainConfig
    from core.workspace import DataSpec, Workspace

    ws = Workspace.create(DataSpec(duration=60.0), TrainConfig(n_times=600))
    return ws.save(tmp_path_factory.mktemp("run"))


def test_probe_writes_dataset_beside_the_checkpoint(run_dir, capsys):
    rc = main(["probe", str(run_dir), "--iterations", "2", "--windows", "5", "--null", "2",
               "--layers", "conv_3,conv_classifier", "--threads", "1"])
    out, err = capsys.readouterr()
    assert rc == 0
    assert "100.0%" in err and "2 iterations x 2 passes" in err
    assert "conv_3:" in out and "validity: amplitude" in out
    with xr.open_dataset(run_dir / "probe.nc", engine="h5netcdf") as ds:
        assert ds.sizes["unit"] == 101 and ds.sizes["channel"] == 32
        assert ds.attrs["progress"] == 1.0 and ds.attrs["block"] == "train"
        assert "unit_class_all" in ds and ds["channel"].values[0] == "G01"
        assert 0 < float(ds["amp_validity"]) <= 1.5  # targets were given: the ratio is reported
    assert not list(run_dir.glob(".probe.nc.*"))  # no temporary file left behind


def test_a_probe_in_which_no_unit_passes_says_why_it_may_have_no_power(run_dir, tmp_path, capsys):
    """Three windows x two iterations: no unit passes, and the note names the numbers to raise."""
    rc = main(["probe", str(run_dir), "--iterations", "2", "--windows", "3", "--null", "2", "--layers",
               "conv_classifier", "--threads", "1", "--out", str(tmp_path / "p.nc")])
    out, err = capsys.readouterr()
    assert rc == 0 and "conv_classifier: amplitude 0%, phase 0%, bimodal 0%, insensitive 100%" in out
    assert "note: no unit passed the test (false-discovery rate 0.05). With 3 windows x 2 iterations" in err
    assert "spread is about 0.408" in err and "--windows; the train block has" in err


def test_maps_binned_or_left_out_and_the_size_said(run_dir, tmp_path, capsys):
    """--map-bin 2 stores 2 Hz bins (the mean of the bins inside; statistics unchanged);
    --no-maps none; every run says the file's size."""
    base = ["probe", str(run_dir), "--iterations", "2", "--windows", "4", "--null", "2", "--layers", "conv_4",
            "--threads", "1"]
    assert main(base + ["--out", str(tmp_path / "full.nc")]) == 0
    assert re.search(r"full\.nc \(\d+\.\d MB\)", capsys.readouterr().out)
    assert main(base + ["--out", str(tmp_path / "bin.nc"), "--map-bin", "2"]) == 0
    assert main(base + ["--out", str(tmp_path / "none.nc"), "--no-maps"]) == 0
    with xr.open_dataset(tmp_path / "full.nc", engine="h5netcdf") as full, \
            xr.open_dataset(tmp_path / "bin.nc", engine="h5netcdf") as binned, \
            xr.open_dataset(tmp_path / "none.nc", engine="h5netcdf") as none:
        f = full["freq"].values
        assert binned.attrs["maps_binned_hz"] == 2.0 and binned.sizes["freq"] == len(np.unique(f // 2))
        inside = (f >= 10) & (f < 12)
        expected = np.nanmean(full["amp_corr"].values[..., inside], axis=-1)
        k = int(np.flatnonzero(np.isclose(binned["freq"].values, f[inside].mean()))[0])
        np.testing.assert_allclose(binned["amp_corr"].values[..., k], expected, rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(binned["unit_class_all"].values, full["unit_class_all"].values)
        assert "amp_corr" not in none and "freq" not in none.dims and none.attrs["maps"] == "none"
        np.testing.assert_array_equal(none["amp_stat_all"].values, full["amp_stat_all"].values)
    assert main(base + ["--map-bin", "0"]) == 2
    assert "--map-bin must be a positive frequency in Hz, got 0" in capsys.readouterr().err


@pytest.mark.parametrize("argv, match", [
    (["--layers", "conv_9"], "Allowed values are 'conv_time_spat'"),
    (["--iterations", "0"], "--iterations must lie in"),
    (["--block", "tets"], "Unknown block 'tets'"),
])
def test_bad_input_exits_2_with_one_line(run_dir, capsys, argv, match):
    rc = main(["probe", str(run_dir), "--windows", "4"] + argv)
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("unitscope probe: error:")
    assert re.search(match, err)


def test_missing_run_folder(tmp_path, capsys):
    assert main(["probe", str(tmp_path / "nope")]) == 2
    assert f"Run folder '{tmp_path / 'nope'}' does not exist." in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["probe", str(tmp_path / "empty")]) == 2
    assert "not a UnitScope run folder" in capsys.readouterr().err
