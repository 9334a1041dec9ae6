"""``unitscope probe RUN_DIR``: writes the Dataset beside the checkpoint, with progress."""
import re

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


@pytest.mark.parametrize("argv, match", [
    (["--layers", "conv_9"], "Allowed values are 'conv_time_spat'"),
    (["--iterations", "0"], "'n_iterations' must lie in"),
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
    assert "not a UnitScope run folder" in capsys.readouterr().err
