"""``unitscope info RUN_DIR``: what a run folder holds, from its config.json alone."""
from __future__ import annotations

import json

import pytest
import torch

from core.cli import main
from core.training import TrainConfig
from core.workspace import DataSpec, Workspace


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    ws = Workspace.create(DataSpec(duration=60.0, ipsi_fraction=0.25), TrainConfig(model="shallow", max_epochs=2))
    folder = tmp_path_factory.mktemp("runs") / "s1"
    ws.train(run_dir=folder)
    (folder / "probe.nc").write_bytes(b"")  # only listed, never read
    return ws, folder


def test_info_describes_a_run_folder(run, capsys):
    ws, folder = run
    assert main(["info", str(folder)]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert lines["decoder"] == "shallow (dense), 32 channels, 1 output(s), 1200-sample windows"
    assert lines["data"] == "demo (regression; target hand speed, 25% ipsilateral movements)"
    m = ws.metrics  # Workspace.train counts the windows its metrics rest on
    assert lines["metric"] == (f"test pearson_r {m['test']:.4f} on {m['n_test']} windows, valid {m['valid']:.4f} on "
                               f"{m['n_valid']} windows")
    assert lines["training"].startswith(f"{len(ws.history)} epoch(s), kept epoch {ws.metrics['best_epoch'] + 1}, ")
    assert lines["layers"] == "conv_time_spat 40, conv_classifier 1"
    assert "probe.nc (unitscope probe)" in lines["files"] and "checkpoint.pt (training state, for --resume)" in lines["files"]
    assert "next" not in lines  # a probe is there already
    assert lines["read"] == f"unitscope info {folder / 'probe.nc'}   (and each result file so)"


def test_info_json_and_a_corrupt_run(run, tmp_path, capsys):
    ws, folder = run
    assert main(["info", str(folder), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["model"] == "shallow" and s["metrics"]["test"] == pytest.approx(ws.metrics["test"])
    assert s["layers"] == {"conv_time_spat": 40, "conv_classifier": 1} and "model.pt" in s["files"]
    # the epoch kept counts from 1 in JSON as in the text; config.json's 0-based index stays as written
    assert s["kept_epoch"] == ws.metrics["best_epoch"] + 1 == s["metrics"]["best_epoch"] + 1
    (tmp_path / "config.json").write_text('{"model": {}}')
    assert main(["info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("unitscope info: error: Corrupt run config") and err.count("\n") == 1


def test_info_says_when_the_probe_is_not_this_decoders(run, tmp_path, capsys):
    """A run folder trained again keeps its old probe.nc; info reads the probe's attrs and the
    weights (not the data) to say so."""
    import shutil

    from core.probing import ProbeConfig, probe_units

    ws, folder = run
    here = shutil.copytree(folder, tmp_path / "run")
    probe = probe_units(ws.model, ws.windows("train")[:8], sfreq=ws.recording.sfreq,
                        config=ProbeConfig(n_iterations=1, n_windows=8, n_null=1))
    said = {}
    for case, attrs in (("fresh", {}), ("code", {"code_version": "0123456789ab"}), ("weights", {"model_hash": "f" * 16})):
        probe.assign_attrs(**attrs).to_netcdf(here / "probe.nc", engine="h5netcdf")
        assert main(["info", str(here)]) == 0
        said[case] = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines()).get("note")
    assert said["fresh"] is None
    assert said["code"] == f"probe.nc was computed by other probing code (an earlier UnitScope): unitscope probe {here} updates it"
    assert said["weights"] == f"probe.nc was made for the weights trained before: unitscope probe {here} probes these"
    probe.to_netcdf(here / "probe.nc", engine="h5netcdf")
    torch.save({"conv_time_spat.weight": torch.zeros(1)}, here / "model.pt")  # weights of another network
    assert main(["info", str(here)]) == 0
    assert f"note       The checkpoint {str(here / 'model.pt')!r} does not match the" in capsys.readouterr().out
    (here / "probe.nc").write_bytes(b"")
    assert main(["info", str(here)]) == 0
    assert "note       probe.nc cannot be read (" in capsys.readouterr().out


def test_info_describes_the_result_files_unitscope_writes(tmp_path, capsys):
    """``unitscope info FILE.nc``: a probe, pruning curves, kernels, an encoding study, each in
    the words of the command that wrote it (the same lines), from the file alone; a netCDF file
    of another program and a file that is no netCDF are refused in one line."""
    import shutil
    from pathlib import Path

    import numpy as np
    import xarray as xr

    assets = Path(__file__).resolve().parents[3] / "assets"
    run = shutil.copytree(assets / "demo-deep4", tmp_path / "run")
    shutil.copy(assets / "demo-probe" / "deep4.nc", run / "probe.nc")

    def info(path, *extra):
        assert main(["info", str(path), *extra]) == 0
        return capsys.readouterr().out

    # a probe: its units, classes, validity and the most sensitive units with where each peaks
    text = info(run / "probe.nc")
    probe = xr.load_dataset(run / "probe.nc", engine="h5netcdf")
    assert text.startswith(f"result     {run / 'probe.nc'}: probe, written by unitscope probe\n")
    assert "units      376: conv_time_spat 25, conv_2 50, conv_3 100, conv_4 200, conv_classifier 1\n" in text
    assert f"validity   amplitude {float(probe['amp_validity']):.3f} (perturbed / unperturbed metric; at least 0.95" in text
    assert f"; phase {float(probe['phase_validity']):.3f} (no check: " in text
    assert "           conv_4: amplitude 49%, phase 1%, bimodal 50%, insensitive 0%\n" in text
    best = str(probe["unit"].values[int(np.argmax(probe["amp_stat_all"].values))])
    assert f"top amp    {best} {float(probe['amp_stat_all'].max()):.3f} (G11, high gamma), " in text
    probe.assign_attrs(phase_variant="shared").to_netcdf(tmp_path / "shared.nc", engine="h5netcdf")
    shared = {line[:11].strip(): line[11:] for line in info(tmp_path / "shared.nc").splitlines()}
    assert "(all channels, " in shared["top phase"] and "(all channels, " not in shared["top amp"]
    facts = json.loads(info(run / "probe.nc", "--json"))
    assert facts["kind"] == "probe" and facts["n_units"] == 376
    assert facts["most_sensitive"]["amplitude"][0]["score"] == pytest.approx(float(probe["amp_stat_all"].max()), rel=1e-5)

    # pruning curves: the table `prune --curve` printed, read back from the file
    assert main(["prune", str(run), "--curve", "--layer", "conv_4", "--fractions", "0,0.5", "--repeats", "2"]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("wrote")]
    text = info(run / "prune_curves.nc").splitlines()
    assert text[0] == f"result     {run / 'prune_curves.nc'}: pruning curves, written by unitscope prune --curve"
    assert text[-len(printed):] == printed and printed[1].startswith("fraction     most    least   random")
    curves = json.loads(info(run / "prune_curves.nc", "--json"))
    assert curves["fractions"] == [0.0, 0.5] and curves["curves"]["most"][0] == pytest.approx(curves["baseline"])

    # kernels: the fit's lines, as `deconv` printed them
    assert main(["deconv", str(run), "--signal", "output", "--epochs", "2"]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("wrote")]
    text = info(run / "deconv_output.nc").splitlines()
    assert text[1].startswith("signal     output, gaussian likelihood, ") and text[-len(printed):] == printed
    assert "block samples 120000-150000" in text[2]  # the test block of the demo's 600 s at 250 Hz

    # the run folder names what wrote each result file beside the weights
    files = dict(line.split(None, 1) for line in info(run).splitlines())["files"]
    assert {"probe.nc (unitscope probe)", "prune_curves.nc (unitscope prune --curve)",
            "deconv_output.nc (unitscope deconv)"} <= set(files.split(", ")), files

    # an encoding study
    text = info(assets / "demo-encoding" / "synthetic-reading.nc")
    study = xr.load_dataset(assets / "demo-encoding" / "synthetic-reading.nc", engine="h5netcdf")
    assert f"dre: post-onset mean r {float(study['score'].sel(model='dre')):.4f}\n" in text
    assert "importance word_freq: loss +" in text

    # not UnitScope's
    xr.Dataset({"a": ("x", [1, 2])}, attrs={"method": "other"}).to_netcdf(tmp_path / "other.nc", engine="h5netcdf")
    assert main(["info", str(tmp_path / "other.nc")]) == 2
    err = capsys.readouterr().err
    assert "is a netCDF file UnitScope did not write (method attr 'other')" in err and err.count("\n") == 1
    (tmp_path / "junk.nc").write_text("not netCDF")
    assert main(["info", str(tmp_path / "junk.nc")]) == 2
    assert "cannot be read: it is not a netCDF-4 (HDF5) file" in capsys.readouterr().err
