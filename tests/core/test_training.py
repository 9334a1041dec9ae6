import json
import threading

import numpy as np
import pytest
import torch

from core._validation import UnitScopeError
from core.training import TrainConfig, atomic_write_json, load_state, resolve_device, save_state
from core.workspace import DataSpec, Workspace


def _ws(**cfg):
    # the light Shallow decoder on 60 s of demo keeps these tests fast
    cfg = {"model": "shallow", "max_epochs": 2, "n_times": 700, **cfg}
    return Workspace.create(DataSpec(duration=60.0), TrainConfig(**cfg))


def test_progress_is_reported_and_training_lowers_the_loss():
    ws = _ws(max_epochs=4, patience=10, lr=3e-3)
    events = []
    result = ws.train(progress=events.append)
    batch_events = [e for e in events if not e.get("end_of_epoch")]
    epoch_events = [e for e in events if e.get("end_of_epoch")]
    assert len(epoch_events) == 4 and len(batch_events) >= 4
    fractions = [e["fraction"] for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert ws.metrics["test"] == pytest.approx(ws.evaluate("test"))


def test_print_progress_prints_a_line_per_epoch(capsys):
    """``print_progress`` (the README's callback): one line per epoch, not every batch's report
    and the whole history each epoch, as ``progress=print`` gave (10 kB for 10 epochs)."""
    from core.training import print_progress

    ws = _ws(max_epochs=2)
    result = ws.train(progress=print_progress)
    lines = capsys.readouterr().out.splitlines()
    h = result.history[-1]
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2: train loss ")
    assert lines[1].startswith(f"epoch 2/2: train loss {h['train_loss']:.4f}, valid loss {h['valid_loss']:.4f}, "
                               f"valid metric {h['valid_metric']:.4f} (") and lines[1].endswith(" s so far)")


def test_stop_flag_ends_training_after_the_current_batch():
    ws = _ws(max_epochs=50)
    stop = threading.Event()

    def progress(p):
        if p.get("end_of_epoch"):
            stop.set()

    result = ws.train(progress=progress, stop=stop)
    assert result.stopped and len(result.history) == 1


def test_seeded_training_is_deterministic():
    a, b = _ws(), _ws()
    a.train()
    b.train()
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        torch.testing.assert_close(va, vb, msg=k)


def test_checkpoint_resume_continues_where_it_stopped(tmp_path):
    full = _ws(max_epochs=3, patience=10)
    full.train(run_dir=tmp_path / "full")
    part = _ws(max_epochs=3, patience=10)
    stop = threading.Event()
    part.train(run_dir=tmp_path / "part", stop=stop,
               progress=lambda p: p.get("end_of_epoch") and p["epoch"] == 1 and stop.set())
    assert len(part.history) == 2
    state = load_state(tmp_path / "part" / "checkpoint.pt")
    assert state["epoch"] == 1
    resumed = _ws(max_epochs=3, patience=10)
    result = resumed.train(run_dir=tmp_path / "part", resume=True)
    assert [h["epoch"] for h in result.history] == [0, 1, 2]
    np.testing.assert_allclose(result.history[-1]["train_loss"], full.history[-1]["train_loss"], rtol=1e-4)


def test_atomic_writes_leave_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    save_state(path, {"w": torch.ones(3)})

    class Boom:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(Exception):
        save_state(path, {"w": Boom()})
    torch.testing.assert_close(load_state(path)["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary left behind
    atomic_write_json(tmp_path / "c.json", {"a": 1})
    assert json.loads((tmp_path / "c.json").read_text()) == {"a": 1}


def test_checkpoints_load_weights_only(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(UnitScopeError, match="Cannot read checkpoint"):
        load_state(tmp_path / "evil.pt")
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UnitScopeError, match="Cannot read checkpoint"):
        load_state(tmp_path / "corrupt.pt")
    with pytest.raises(UnitScopeError, match="does not exist"):
        load_state(tmp_path / "missing.pt")


def test_config_validation_and_devices():
    with pytest.raises(UnitScopeError, match="Unknown training options"):
        TrainConfig.from_dict({"epochs": 3})
    assert TrainConfig.from_dict(TrainConfig().to_dict()) == TrainConfig()
    with pytest.raises(UnitScopeError, match="'lr' must lie in"):
        TrainConfig(lr=0).validate()
    # accepted before, then a torch error mid-training (weight_decay) or a training stopped after
    # its first epoch whatever it learnt (patience 0 or -1)
    for bad in ({"weight_decay": -1.0}, {"patience": 0}, {"patience": -1}, {"n_times": -5}, {"seed": -1}):
        (name, value), = bad.items()
        with pytest.raises(UnitScopeError, match=f"'{name}' must lie in .* got {value}"):
            TrainConfig(**bad).validate()
    # the learning rate defaults per decoder; an explicit one wins
    assert TrainConfig().learning_rate == 1e-3
    assert TrainConfig(model="shallow").learning_rate == 4e-3
    assert TrainConfig(model="shallow", lr=2e-3).learning_rate == 2e-3
    assert TrainConfig.from_dict({"model": "shallow", "lr": None}).learning_rate == 4e-3
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(UnitScopeError, match="no CUDA GPU is available"):
            resolve_device("cuda")
        assert resolve_device("auto").type == "cpu"
