"""``unitscope prune``: typos said before any work, fine-tuning that lowers the metric said so;
progress lines in a log (stderr not a terminal) about every 10% of the work."""
from __future__ import annotations

import types

import pytest

from core.cli import main


@pytest.mark.parametrize("argv, message", [
    (["--layer", "conv_tim_spat", "--units", "1"], "Unknown layer 'conv_tim_spat'"),
    (["--layer", "conv_time_spat", "--units", "35-45"], "Unit index 40 is out of range for layer 'conv_time_spat'"),
    (["--curve", "--layer", "conv_tim_spat"], "Unknown layer 'conv_tim_spat'"),
])
def test_layer_and_unit_typos_are_said_before_the_baseline(label_run, monkeypatch, argv, message, capsys):
    from core import workspace

    def no_data(*a, **kw):
        raise AssertionError("the data were read before the typo was said")

    monkeypatch.setattr(workspace.Workspace, "load", no_data)
    assert main(["prune", str(label_run[0]), *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("unitscope prune: error:") and err.count("\n") == 1
    assert message in err


@pytest.mark.parametrize("after, said", [(-0.2943, "(fine-tuning lowered the metric by 0.1304)"),
                                         (-0.1000, "(recovered +0.0639)")])
def test_finetune_that_lowers_the_metric_says_so(label_run, monkeypatch, after, said, capsys):
    import core.pruning

    monkeypatch.setattr(core.pruning, "finetune",
                        lambda *a, **kw: types.SimpleNamespace(n_steps=4, before=-0.1639, after=after))
    assert main(["prune", str(label_run[0]), "--layer", "conv_time_spat", "--units", "0-9", "--finetune"]) == 0
    assert f"fine-tune (4 steps): -0.1639 -> {after:.4f} {said}" in capsys.readouterr().out


def test_curve_progress_in_a_log_is_about_ten_lines(label_run, tmp_path, capsys):
    fractions = ",".join(f"{i / 20:g}" for i in range(21))
    assert main(["prune", str(label_run[0]), "--curve", "--layer", "conv_time_spat", "--orders", "random",
                 "--repeats", "5", "--fractions", fractions, "--out", str(tmp_path / "c.nc")]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("curves")]
    assert 2 <= len(lines) <= 12 and lines[-1].endswith("100.0%")


def test_progress_writes_every_tenth_or_every_few_seconds_when_not_a_terminal(capsys):
    from core.cli._common import Progress

    now = [0.0]
    show = Progress(clock=lambda: now[0])
    assert not show.tty  # pytest captures stderr
    for i in range(1, 243):
        show(i / 242, f"step {i}")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "step 1" and lines[-1] == "step 242" and len(lines) == 11
    show = Progress(clock=lambda: now[0])
    for i in range(1, 5):  # slow steps: one line each few seconds, even below 10%
        now[0] += 6.0
        show(i / 1000, f"slow {i}")
    assert len(capsys.readouterr().err.splitlines()) == 4


def test_the_fine_tuned_copy_is_saved_as_a_run_that_opens_with_its_mask(label_run, tmp_path, capsys):
    """``--save-run``: the tuned copy had been measured and thrown away."""
    from core.pruning import MaskEvaluator, MaskSet
    from core.workspace import Workspace

    run, saved = label_run[0], tmp_path / "tuned"
    before = (run / "model.pt").read_bytes()
    assert main(["prune", str(run), "--layer", "conv_time_spat", "--units", "0-9", "--finetune", "--epochs", "1",
                 "--save-run", str(saved), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    after = float(out.split("fine-tune (")[1].split("-> ")[1].split(" ")[0])
    assert f"wrote {saved}: the fine-tuned copy" in out and (run / "model.pt").read_bytes() == before
    ws = Workspace.load(saved)
    masks = MaskSet.load(saved / "mask.json", model=ws.model)
    assert masks.pruned("conv_time_spat").tolist() == list(range(10)) and masks.n_pruned == 10
    X, y = ws.eval_set("test")
    ev = MaskEvaluator(ws.model, X, y, task=ws.task)
    assert ev.evaluate(masks) == pytest.approx(after, abs=1e-3)  # what the fine-tune measured, masked
    for argv, message in ((["--save-run", str(saved)], "--save-run writes the fine-tuned copy of --finetune"),
                          (["--finetune", "--save-run", str(saved)], "holds a run; give a new folder"),
                          (["--finetune", "--save-run", str(run)], "holds a run; give a new folder")):
        assert main(["prune", str(run), "--layer", "conv_time_spat", "--units", "0-9", *argv]) == 2
        assert message in capsys.readouterr().err
