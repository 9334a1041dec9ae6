"""Batches on Dask distributed: planning, gathering, reproducibility, failures, CLI."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("dask.distributed")

from core._validation import UnitScopeError  # noqa: E402
from core.batch import BatchRun, plan_runs, run_batch, run_one  # noqa: E402
from core.cli import main  # noqa: E402
from core.workspace import Workspace  # noqa: E402

TINY_PROBE = {"n_iterations": 2, "n_windows": 4, "n_null": 2}


def _tiny(seeds, probe=None, sources=("demo",)):
    return plan_runs(list(sources), seeds=seeds, max_epochs=1, duration=60.0, probe=probe)


def test_plan_is_the_product_of_recordings_models_and_seeds(tmp_path):
    edf = tmp_path / "sub-01.edf"
    runs = plan_runs(["demo", str(edf)], target="events", models=["deep4", "shallow"], seeds=[3, 4], max_epochs=2)
    assert [r.name for r in runs][:4] == ["demo-deep4-s3", "demo-deep4-s4", "demo-shallow-s3", "demo-shallow-s4"]
    assert len(runs) == 8 and runs[-1].name == "sub-01-shallow-s4"
    assert {r.train["max_epochs"] for r in runs} == {2} and runs[-1].data["source"] == str(edf)
    assert all(r.probe is None for r in runs)
    # runs travel to workers as plain data
    assert json.loads(json.dumps(runs[0].to_dict()))["train"]["seed"] == 3


def test_bad_plans_are_clear_errors(tmp_path):
    with pytest.raises(UnitScopeError, match="No recordings given"):
        plan_runs([])
    with pytest.raises(UnitScopeError, match="'model'.*'deep5'"):
        plan_runs(["demo"], models=["deep5"])
    with pytest.raises(UnitScopeError, match="share the folder 'a-deep4-s1'"):
        plan_runs([str(tmp_path / "x" / "a.edf"), str(tmp_path / "y" / "a.fif")], seeds=[1])
    with pytest.raises(UnitScopeError, match="The batch is empty"):
        run_batch([], tmp_path)
    run = plan_runs(["demo"], seeds=[1])[0]
    with pytest.raises(UnitScopeError, match="unique; repeated: \\['demo-deep4-s1'\\]"):
        run_batch([run, run], tmp_path)


def test_batch_gathers_metrics_and_probes_and_matches_a_run_on_its_own(tmp_path):
    runs = _tiny([1, 2], probe=TINY_PROBE)
    seen = []
    ds = run_batch(runs, tmp_path / "b", n_workers=1, processes=False, progress=seen.append)
    assert list(ds["run"].values) == ["demo-deep4-s1", "demo-deep4-s2"]
    assert [s["done"] for s in seen] == [1, 2] and not any(s["error"] for s in seen)
    assert ds.attrs["n_failed"] == 0 and list(ds["error"].values) == ["", ""]
    assert np.isfinite(ds["test"].values).all() and list(ds["epochs"].values) == [1, 1]
    # the two seeds give two different networks
    assert ds["test"].values[0] != ds["test"].values[1]
    # class fractions per layer sum to one, as in each run's own probe file
    frac = ds["class_fraction"].sel(run="demo-deep4-s1")
    np.testing.assert_allclose(frac.sum("class").values, 1.0)
    assert (tmp_path / "b" / "demo-deep4-s1" / "probe.nc").is_file()
    # each run folder opens like any training run, with the metric the summary reports
    ws = Workspace.load(tmp_path / "b" / "demo-deep4-s2")
    assert ws.evaluate("test") == pytest.approx(float(ds["test"].sel(run="demo-deep4-s2")), abs=1e-6)
    # the summary file is the returned dataset
    back = xr.load_dataset(tmp_path / "b" / "batch.nc", engine="h5netcdf")
    np.testing.assert_allclose(back["test"].values, ds["test"].values)
    # reproducible: the same run on its own, outside Dask, gives the same metric
    alone = run_one(runs[1].to_dict(), str(tmp_path / "alone"))
    assert alone["test"] == pytest.approx(float(ds["test"].sel(run="demo-deep4-s2")), abs=1e-6)


def test_a_failed_run_is_reported_and_the_others_finish(tmp_path):
    good = _tiny([1])[0]
    bad = BatchRun("missing-deep4-s1", {**good.data, "source": str(tmp_path / "missing.edf")}, good.train)
    ds = run_batch([bad, good], tmp_path / "b", n_workers=1, processes=False)
    assert ds.attrs["n_failed"] == 1
    assert "missing.edf" in str(ds["error"].sel(run="missing-deep4-s1").values)
    assert np.isnan(float(ds["test"].sel(run="missing-deep4-s1")))
    assert str(ds["error"].sel(run="demo-deep4-s1").values) == ""
    assert np.isfinite(float(ds["test"].sel(run="demo-deep4-s1")))


def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    with pytest.raises(UnitScopeError, match="Could not reach the Dask scheduler 'tcp://127.0.0.1:9'"):
        run_batch(_tiny([1]), tmp_path, scheduler="tcp://127.0.0.1:9", timeout=2)


def test_cli_batch(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["batch", "--data", "demo", "--duration", "60", "--epochs", "1", "--seeds", "5",
                 "--out", str(out), "--workers", "1", "--no-processes"])
    assert code == 0
    printed = capsys.readouterr()
    assert re.search(r"demo-deep4-s5: pearson_r valid -?\d\.\d{3}, test -?\d\.\d{3} on \d+ windows \(1 epochs",
                     printed.out) and "[1/1] demo-deep4-s5: done" in printed.err
    assert (out / "batch.nc").is_file() and (out / "demo-deep4-s5" / "model.pt").is_file()
    # a failing run makes the exit status 1, with its reason on the terminal (a file that is not
    # there is refused before the batch starts: one that cannot be read fails its run)
    (tmp_path / "nope.edf").write_bytes(b"not an EDF file" * 40)
    code = main(["batch", "--data", str(tmp_path / "nope.edf"), "--epochs", "1", "--out", str(out / "f"),
                 "--workers", "1", "--no-processes"])
    assert code == 1
    assert "nope-deep4-s20170629: failed" in capsys.readouterr().out


def test_cli_batch_refuses_what_every_run_would_fail_on_before_any_starts(tmp_path, capsys, monkeypatch):
    """A recording that is not there and a demo of 5 s became FAILED runs in batch.nc, after
    the cluster had started."""
    from core import batch

    monkeypatch.setattr(batch, "run_batch", lambda *a, **kw: pytest.fail("the batch started"))
    assert main(["batch", "--data", "demo", str(tmp_path / "nope.edf"), "--out", str(tmp_path / "b")]) == 2
    assert f"--data: {str(tmp_path / 'nope.edf')!r} does not exist" in capsys.readouterr().err
    for duration in ("5", "-5"):
        assert main(["batch", "--data", "demo", "--duration", duration, "--out", str(tmp_path / "b")]) == 2
        assert f"--duration: the demo is at least 30 s long, got {float(duration):g}." in capsys.readouterr().err
    for argv, said in ((["--epochs", "0"], "--epochs must lie in [1, inf], got 0"),  # (it named 'max_epochs')
                       (["--probe", "--iterations", "0"], "--iterations must lie in [1, inf], got 0")):
        assert main(["batch", "--data", "demo", *argv, "--out", str(tmp_path / "b")]) == 2
        assert said in capsys.readouterr().err
