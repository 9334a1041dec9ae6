"""``unitscope train`` / ``batch`` interrupted (Ctrl-C, driven in-process at a chosen epoch):
the earlier run stays whole, the message and ``unitscope info`` say how to resume; a resume of
other data is refused; a folder another train writes is refused; --seed and --out are checked
before any work; a batch's user errors are one line."""
from __future__ import annotations

import logging
import os
import socket
import shutil
from pathlib import Path

import pytest

from core import workspace
from core.cli import main

PARTIAL_FILE, LOCK_FILE = "checkpoint.partial.pt", ".unitscope.lock"  # core.training's names


def _files(run):
    return {f: (run / f).read_bytes() for f in ("config.json", "model.pt", "checkpoint.pt")}


def test_ctrl_c_while_training_again_keeps_the_earlier_run_and_says_how_to_resume(
        gaze_args, gaze_run, edf_like, tmp_path, interrupt_at_epoch, monkeypatch, capsys):
    run = shutil.copytree(gaze_run, tmp_path / "gaze")
    before = _files(run)
    interrupt_at_epoch(1)
    assert main(["train", "--data", str(edf_like), *gaze_args, "--epochs", "3", "--out", str(run)]) == 130
    err = capsys.readouterr().err.splitlines()[-1]
    assert err == (f"unitscope train: interrupted; 1 of 3 epoch(s) kept in {str(run / PARTIAL_FILE)!r} (the earlier "
                   "run there (config.json, model.pt) is as it was). Continue it with: unitscope train --out "
                   f"{run} --resume (the data and options it was trained with are kept in it; add --epochs N to "
                   "change its length)")
    assert _files(run) == before and not (run / LOCK_FILE).exists()
    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    assert "metric     test pearson_r" in out  # the complete earlier run, as before
    assert (f"note       {PARTIAL_FILE} holds an interrupted training into this folder (1 of 3 epochs done); the run "
            f"above is the earlier, complete one. unitscope train --out {run} --resume continues it") in out
    monkeypatch.undo()
    assert main(["train", "--out", str(run), "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"resuming from {run / PARTIAL_FILE}" in err and "epoch 3/3" in err and "epoch 1/3" not in err
    assert not (run / PARTIAL_FILE).exists()


def test_an_interrupted_first_training_is_described_by_info_with_the_command_that_resumes_it(
        gaze_args, edf_like, tmp_path, interrupt_at_epoch, capsys):
    run = tmp_path / "fresh"
    interrupt_at_epoch(1)
    assert main(["train", "--data", str(edf_like), *gaze_args, "--epochs", "2", "--out", str(run)]) == 130
    assert f"Continue it with: unitscope train --out {run} --resume" in capsys.readouterr().err
    assert sorted(os.listdir(run)) == [PARTIAL_FILE]
    assert main(["info", str(run)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"run        {run}: an interrupted training (no config.json: the run was never completed)"
    assert "decoder    shallow, 8 channels, 1 output(s), 700-sample windows" in lines
    assert any(line.startswith("training   1 of 2 epoch(s) done, best valid metric ") for line in lines)
    assert lines[-1] == f"next       unitscope train --out {run} --resume"


def test_resume_with_another_target_is_refused_naming_both(gaze_run, edf_like, tmp_path, capsys):
    run = shutil.copytree(gaze_run, tmp_path / "gaze")
    before = _files(run)
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--target", "EyetrackerLeftEyeGazeY"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and (
        f"Cannot resume the training in {str(run / 'checkpoint.pt')!r} on other data or with another decoder: target "
        "(--target) 'EyetrackerLeftEyeGazeY' now, 'EyetrackerLeftEyeGazeX' in the checkpoint. It was trained on "
        f"{str(edf_like)!r}, target 'EyetrackerLeftEyeGazeX', with a shallow decoder") in err
    assert _files(run) == before


def test_a_train_into_a_folder_another_train_writes_is_refused_before_reading_data(gaze_run, tmp_path, monkeypatch,
                                                                                   capsys):
    run = shutil.copytree(gaze_run, tmp_path / "gaze")
    before = _files(run)
    parent = os.getppid()  # a live process that is not this one
    (run / LOCK_FILE).write_text(f"pid={parent}\nhost={socket.gethostname()}\nsince=now\n")
    monkeypatch.setattr(workspace, "read_spec", lambda spec: pytest.fail("the data were read"))
    assert main(["train", "--data", "demo", "--epochs", "1", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert err == (f"unitscope train: error: The run folder {str(run)!r} is being written by another process (pid "
                   f"{parent} since now): two trainings into one folder would lose one of them. Wait for it to end, "
                   f"or write another folder (--out). If no such process runs, delete {str(run / LOCK_FILE)!r}.\n")
    assert _files(run) == before


def test_seed_and_out_are_checked_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(workspace, "read_spec", lambda spec: pytest.fail("the data were read"))
    afile = tmp_path / "afile"
    afile.write_text("x")
    for command in (["train", "--data", "demo"], ["import", str(afile), "--data", "demo"],
                    ["batch", "--data", "demo"]):
        assert main([*command, "--out", str(afile)]) == 2
        assert f"error: --out {str(afile)!r} is a file; give a folder." in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--data", "demo", "--seed", "-1", "--out", str(tmp_path / "r")])
    assert "expected a whole number from 0 to 4294967295, got -1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["batch", "--data", "demo", "--seeds", "1", "2**40", "--out", str(tmp_path / "b")])
    assert "got '2**40'" in capsys.readouterr().err


def test_an_interrupted_batch_says_which_runs_were_left(tmp_path, monkeypatch, capsys):
    from core import batch

    out = tmp_path / "b"

    def run_batch(runs, out_dir, *, progress, **kw):  # the first run ends, the second is cut short
        out_dir = Path(out_dir)
        (out_dir / runs[0].name).mkdir(parents=True)
        (out_dir / runs[0].name / "config.json").write_text("{}")
        (out_dir / runs[1].name).mkdir()
        (out_dir / runs[1].name / PARTIAL_FILE).write_bytes(b"")
        progress({"done": 1, "n": len(runs), "name": runs[0].name, "error": ""})
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "run_batch", run_batch)
    assert main(["batch", "--data", "demo", "--seeds", "1", "2", "--epochs", "1", "--out", str(out)]) == 130
    err = capsys.readouterr().err.splitlines()[-1]
    assert err == (f"unitscope batch: interrupted after 1 of 2 runs ended; no {out / 'batch.nc'} was written; "
                   "finished (complete run folders): demo-deep4-s1; not finished (no config.json): demo-deep4-s2; 1 "
                   f"of them keeps its epochs so far in {PARTIAL_FILE} (unitscope train --out {out / 'demo-deep4-s2'} "
                   f"--resume continues one); unitscope batch with the same options and --out {out} runs the whole "
                   "batch again")
    assert main(["info", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"batch      {out}: no batch.nc (the batch was interrupted, or still runs): 1 complete run(s), "
                        "1 unfinished")


def test_a_batch_run_failing_on_a_user_error_is_one_line_without_a_worker_traceback(tmp_path, caplog, capsys):
    pytest.importorskip("dask.distributed")
    flat = tmp_path / "flat.edf"  # no recording: the run's UnitScopeError (a missing file is refused before)
    flat.write_bytes(b"not an EDF file" * 40)
    with caplog.at_level(logging.INFO):
        assert main(["batch", "--data", str(flat), "--epochs", "1", "--out", str(tmp_path / "b"), "--workers", "1",
                     "--no-processes"]) == 1
    err = capsys.readouterr().err
    assert "[1/1] flat-deep4-s20170629: FAILED: " in err and "Traceback" not in err
    assert not [r for r in caplog.records if r.name.startswith("distributed") and r.levelno >= logging.ERROR]
