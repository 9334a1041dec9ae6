"""Weights trained outside UnitScope (a braindecode state dict): loaded into the decoder of the
data, measured, written as a run folder (``Workspace.load_weights``, ``unitscope import``)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core._validation import UnitScopeError
from core.cli import main
from core.training import TrainConfig, predict
from core.workspace import DataSpec, Workspace


@pytest.fixture(scope="module")
def trained_elsewhere(tmp_path_factory):
    """A Deep4 (seed 1, one epoch on 60 s of the demo) and its state dict on disk."""
    ws = Workspace.create(DataSpec(duration=60.0), TrainConfig(max_epochs=1, seed=1))
    ws.train()
    path = tmp_path_factory.mktemp("weights") / "deep4_state.pt"
    torch.save(ws.model.state_dict(), path)
    return ws, path


def _fresh(**kw):
    return Workspace.create(DataSpec(duration=60.0, **kw.pop("spec", {})), TrainConfig(seed=2, **kw))


def test_loaded_weights_decode_exactly_as_the_network_that_learned_them(trained_elsewhere):
    source, path = trained_elsewhere
    ws = _fresh()
    X, _ = ws.eval_set("test")
    assert not np.allclose(predict(ws.model, X), predict(source.model, X))  # other initial weights
    ws.load_weights(path)
    np.testing.assert_array_equal(predict(ws.model, X), predict(source.model, X))
    assert ws.metrics["test"] == pytest.approx(source.evaluate("test"), abs=1e-12)
    assert ws.metrics["weights_from"] == str(path) and ws.history == [] and not ws.model.training


@pytest.mark.parametrize("wrap", ["model", "state_dict", "module_prefix", "legacy_names"])
def test_common_state_dict_files_load(trained_elsewhere, tmp_path, wrap):
    source, _ = trained_elsewhere
    sd = source.model.state_dict()
    if wrap == "module_prefix":  # saved from torch.nn.DataParallel
        obj = {f"module.{k}": v for k, v in sd.items()}
    elif wrap == "legacy_names":  # braindecode before 0.8 named the first and last convolutions so
        back = {new: old for old, new in source.model.mapping.items()}
        obj = {back.get(k, k): v for k, v in sd.items()}
        assert "conv_time.weight" in obj
    else:
        obj = {wrap: sd, "epoch": 3}
    torch.save(obj, tmp_path / "w.pt")
    ws = _fresh()
    ws.load_weights(tmp_path / "w.pt")
    X, _ = ws.eval_set("test")
    np.testing.assert_array_equal(predict(ws.model, X), predict(source.model, X))


def test_weights_that_do_not_fit_are_refused_naming_the_difference(trained_elsewhere, tmp_path):
    source, path = trained_elsewhere
    shallow = _fresh(model="shallow")
    with pytest.raises(UnitScopeError, match=r"do not fit the shallow decoder of these data \(32 channels.*unexpected \['conv_2.weight'.* and \d+ more"):
        shallow.load_weights(path)
    fewer = _fresh(spec={"picks": [f"G{i:02d}" for i in range(1, 9)]})
    with pytest.raises(UnitScopeError, match=r"shape mismatch: conv_time_spat.conv_spat.weight .* in the file vs"):
        fewer.load_weights(path)
    torch.save(source.model, tmp_path / "pickled.pt")  # a whole pickled module: never unpickled
    with pytest.raises(UnitScopeError, match="Cannot read checkpoint"):
        fewer.load_weights(tmp_path / "pickled.pt")
    torch.save({"lr": 0.01}, tmp_path / "no_state.pt")
    with pytest.raises(UnitScopeError, match="holds no state dict"):
        fewer.load_weights(tmp_path / "no_state.pt")
    ws = _fresh()
    before = {k: v.clone() for k, v in ws.model.state_dict().items()}
    with pytest.raises(UnitScopeError):
        ws.load_weights(tmp_path / "no_state.pt")
    assert all(torch.equal(before[k], v) for k, v in ws.model.state_dict().items())  # nothing changed


def test_cli_import_writes_a_run_folder_the_other_commands_open(trained_elsewhere, tmp_path, capsys, monkeypatch):
    source, path = trained_elsewhere
    # the CLI has no --duration: the import runs on the full demo, so the weights are
    # measured there (the decoder's shapes do not depend on the recording's length)
    out = tmp_path / "imported"
    assert main(["import", str(path), "--data", "demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "test pearson_r" in printed and "deep4_state.pt" in printed and "unitscope probe" in printed
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["metrics"]["weights_from"] == str(path) and cfg["model"]["kind"] == "deep4"
    ws = Workspace.load(out)
    assert all(torch.equal(v, source.model.state_dict()[k]) for k, v in ws.model.state_dict().items())
    assert ws.evaluate("test") == pytest.approx(cfg["metrics"]["test"], abs=1e-9)
    assert main(["import", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x")]) == 2
    assert "No weights file" in capsys.readouterr().err
    assert main(["import", str(path), "--model", "shallow", "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "do not fit the shallow decoder" in err and not (tmp_path / "y").exists()
    # a folder that holds a run is never replaced by an import (it was, silently, and the run's
    # checkpoint.pt stayed behind for a --resume that could not work)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert main(["import", str(path), "--data", "demo", "--out", str(out)]) == 2
    assert f"--out {str(out)!r} holds a run already" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_a_whole_pickled_model_is_named_in_one_line(tmp_path):
    """``torch.save(model)`` (not its state dict): torch's 8 lines advised ``weights_only=False``
    and ``add_safe_globals``, which a user of the command line cannot act on."""
    from torch import nn

    from core.training import load_state

    torch.save(nn.Linear(2, 2), tmp_path / "whole.pt")
    with pytest.raises(UnitScopeError) as exc:
        load_state(tmp_path / "whole.pt")
    text = str(exc.value)
    assert "it holds Python objects beside tensors (a whole model saved with torch.save(model)" in text
    assert "\n" not in text and "weights_only" not in text and "torch.save(model.state_dict(), path)" in text
