"""A run folder is never self-contradictory: a training writes checkpoint.partial.pt until it
ends and then replaces model.pt, config.json and checkpoint.pt together; an interrupted one
leaves the previous run whole; a resume on other data is refused; one process writes a folder
at a time; weights that do not fit their run name the parameters."""
from __future__ import annotations

import json
import os
import socket
import signal
from pathlib import Path

import pytest
import torch

from core._validation import UnitScopeError
from core.training import TrainConfig, load_state, save_state
from core.workspace import DataSpec, Workspace, load_run_model

PARTIAL_FILE, LOCK_FILE = "checkpoint.partial.pt", ".unitscope.lock"  # core.training's names
PICKS = [f"G{i:02d}" for i in range(1, 9)]
DEAD_PID = 2**31 - 1  # above any pid_max: no such process


def _ws(*, seed=1, max_epochs=2, **spec):
    # 60 s of the demo, 8 channels, the light Shallow decoder: a second or two per epoch
    return Workspace.create(DataSpec(duration=60.0, picks=PICKS, **spec),
                            TrainConfig(model="shallow", n_times=700, max_epochs=max_epochs, seed=seed))


def _files(run):
    return {f: (run / f).read_bytes() for f in ("config.json", "model.pt", "checkpoint.pt")}


@pytest.fixture(scope="module")
def complete_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "old"
    _ws(max_epochs=1).train(run_dir=run)
    return run


def test_an_interrupted_retraining_leaves_the_previous_run_whole_and_resume_completes_it(
        complete_run, tmp_path, interrupt_at_epoch, monkeypatch):
    import shutil

    run = shutil.copytree(complete_run, tmp_path / "run")
    before = _files(run)
    interrupt_at_epoch(1)
    with pytest.raises(KeyboardInterrupt):
        _ws(seed=2, max_epochs=3).train(run_dir=run)
    assert _files(run) == before  # model.pt, config.json and checkpoint.pt: the old run's, together
    from core.training import checkpoint_summary

    kept = checkpoint_summary(run / PARTIAL_FILE)
    assert kept["epochs"] == 1 and kept["record"]["train"]["seed"] == 2 and kept["record"]["data"]["picks"] == PICKS
    assert not (run / LOCK_FILE).exists()
    monkeypatch.undo()
    ws = _ws(seed=2, max_epochs=3)
    result = ws.train(run_dir=run, resume=True)
    assert [h["epoch"] for h in result.history] == [0, 1, 2]
    assert not (run / PARTIAL_FILE).exists() and load_state(run / "checkpoint.pt")["epoch"] == 2
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train"]["seed"] == 2 and len(cfg["history"]) == 3
    for k, v in load_state(run / "model.pt").items():  # the weights config.json's metrics describe
        torch.testing.assert_close(v, ws.model.state_dict()[k], msg=k)


def test_ctrl_c_while_the_run_is_written_comes_after_all_of_it(complete_run, tmp_path, monkeypatch):
    import shutil

    from core import _files, training

    run = shutil.copytree(complete_run, tmp_path / "run")
    real_bytes, real_state = _files.write_synced, training.save_state
    # Python's own Ctrl-C handler for this test: a whole-suite run once left another in place (a
    # library's), which took the Ctrl-C without raising
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)

    def ctrl_c_after_model_pt(write):
        def written(path, data):
            write(path, data)
            if Path(path).name == "model.pt" or Path(path).name.startswith(".model.pt."):
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C between model.pt and config.json
        return written

    monkeypatch.setattr(_files, "write_synced", ctrl_c_after_model_pt(real_bytes))
    monkeypatch.setattr(training, "save_state", ctrl_c_after_model_pt(real_state))  # (as it was written before)
    ws = _ws(seed=3, max_epochs=1)
    try:
        with pytest.raises(KeyboardInterrupt):
            ws.train(run_dir=run)
    finally:
        signal.signal(signal.SIGINT, previous)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train"]["seed"] == 3 and cfg["metrics"]["test"] == pytest.approx(ws.metrics["test"])
    assert not (run / PARTIAL_FILE).exists() and load_state(run / "checkpoint.pt")["epoch"] == 0


def test_resume_on_other_data_or_another_decoder_is_refused_naming_what_differs(complete_run, tmp_path):
    import shutil

    run = shutil.copytree(complete_run, tmp_path / "run")
    before = _files(run)
    with pytest.raises(UnitScopeError, match=r"Cannot resume the training in .*checkpoint\.pt' on other data or "
                                             r"with another decoder: l_freq \(--l-freq\) 1\.0 now, None in the "
                                             r"checkpoint\. It was trained on the demo recording"):
        _ws(max_epochs=3, l_freq=1.0).train(run_dir=run, resume=True)
    with pytest.raises(UnitScopeError, match=r"seed \(--seed\) 9 now, 1 in the checkpoint"):
        _ws(seed=9, max_epochs=3).train(run_dir=run, resume=True)
    assert _files(run) == before


def test_a_folder_another_process_writes_is_refused_naming_its_pid(complete_run, tmp_path):
    import shutil

    run = shutil.copytree(complete_run, tmp_path / "run")
    before = _files(run)
    parent = os.getppid()  # alive, and not this process
    (run / LOCK_FILE).write_text(f"pid={parent}\nhost={socket.gethostname()}\nsince=today\n")
    ws = _ws(max_epochs=1)
    with pytest.raises(UnitScopeError, match=rf"is being written by another process \(pid {parent} since today\)"):
        ws.train(run_dir=run)
    with pytest.raises(UnitScopeError, match=rf"pid {parent}"):
        ws.save(run)
    assert _files(run) == before and (run / LOCK_FILE).read_text().startswith(f"pid={parent}\n")


def test_a_lock_left_by_a_process_that_ended_is_taken_over_and_released(tmp_path):
    from core.training import lock_holder, run_lock

    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text(f"pid={DEAD_PID}\nhost={socket.gethostname()}\n")
    with run_lock(run):
        assert lock_holder(run)["pid"] == os.getpid()
        with run_lock(run):  # re-entrant in its thread
            pass
        assert (run / LOCK_FILE).exists()
    assert lock_holder(run) is None
    with run_lock(tmp_path / "new" / "run"):
        pass
    assert not (tmp_path / "new").exists()  # made for the lock, empty: removed again


def test_weights_of_another_architecture_name_the_parameters_that_differ(complete_run, tmp_path):
    import shutil

    run = shutil.copytree(complete_run, tmp_path / "run")
    mcfg = json.loads((run / "config.json").read_text())["model"]
    state = load_state(run / "model.pt")
    wrong = {("conv_1.weight" if k == "conv_time_spat.conv_time.weight" else k): v for k, v in state.items()}
    wrong["final_layer.conv_classifier.weight"] = torch.zeros(3, 40, 30, 1)  # 3 outputs
    save_state(run / "model.pt", wrong)
    with pytest.raises(UnitScopeError) as exc:
        load_run_model(run, mcfg)
    text = str(exc.value)
    assert "does not match the shallow architecture its config.json describes (8 channels, 1 output(s)" in text
    assert "missing ['conv_time_spat.conv_time.weight']; unexpected ['conv_1.weight']; shape mismatch: " \
           "final_layer.conv_classifier.weight (3, 40, 30, 1) in the file vs (1, 40, 30, 1) here" in text


def test_ctrl_c_in_a_notebook_keeps_the_best_epoch_so_far_in_eval_mode(tmp_path):
    """Ctrl-C in ``ws.train()`` (a notebook): the model kept the half-trained weights of the
    epoch under way, in training mode (probe_units then refused it), ``history`` was empty and
    the completed epochs nowhere. Now the best epoch so far is in the model, in eval mode, and
    the workspace says the training was interrupted."""
    from core.training import TrainingInterrupted

    ws = _ws(max_epochs=6)
    ws.config.patience = 10
    seen = []

    def ctrl_c(p):  # three epochs complete, then Ctrl-C in the first batch of the fourth
        if p.get("end_of_epoch"):
            seen.append(p["history"][-1])
        elif p["epoch"] == 3 and p["batch"] == 1:
            raise KeyboardInterrupt

    version = ws.version
    with pytest.raises(KeyboardInterrupt) as info:  # still a Ctrl-C: a script or command ends
        ws.train(progress=ctrl_c, run_dir=tmp_path / "run")
    assert isinstance(info.value, TrainingInterrupted) and len(info.value.result.history) == 3
    assert not ws.model.training and ws.history == info.value.result.history == seen
    assert ws.version == version + 1 and ws.metrics["interrupted"] and "test" not in ws.metrics
    best = min(range(3), key=lambda i: -seen[i]["valid_metric"])  # regression: the highest r
    assert ws.metrics["best_epoch"] == best
    kept = load_state(tmp_path / "run" / PARTIAL_FILE)["best_model"]  # the best epoch's weights
    assert all(torch.equal(v, kept[k]) for k, v in ws.model.state_dict().items())
    assert not (tmp_path / "run" / "model.pt").exists()  # and the run folder is not committed
