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
    assert lines["metric"] == f"test pearson_r {ws.metrics['test']:.4f}, valid {ws.metrics['valid']:.4f}"
    assert lines["training"].startswith(f"{len(ws.history)} epoch(s), kept epoch {ws.metrics['best_epoch'] + 1}, ")
    assert lines["layers"] == "conv_time_spat 40, conv_classifier 1"
    assert "probe.nc (unitscope probe)" in lines["files"] and "checkpoint.pt (training state, for --resume)" in lines["files"]
    assert "next" not in lines  # a probe is there already


def test_info_json_and_a_corrupt_run(run, tmp_path, capsys):
    ws, folder = run
    assert main(["info", str(folder), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["model"] == "shallow" and s["metrics"]["test"] == pytest.approx(ws.metrics["test"])
    assert s["layers"] == {"conv_time_spat": 40, "conv_classifier": 1} and "model.pt" in s["files"]
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
