"""``unitscope train``: --resume on the run's own data, early stopping said, the count under
the test metric, hints for a path without --data and for targets, defaults in --help."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.cli import main

ROOT = Path(__file__).resolve().parents[3]


def _one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"unitscope {command}: error:") and err.count("\n") == 1, err
    return err


def test_resume_without_data_trains_on_the_runs_own_recording(gaze_run, edf_like, tmp_path, capsys):
    run = shutil.copytree(gaze_run, tmp_path / "gaze")
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert f"shallow on {edf_like} (regression, 8 channels" in err and "resuming from" in err
    assert "epoch 2/2" in err and "epoch 1/2" not in err  # epoch 1 came from the checkpoint
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"]["source"] == str(edf_like) and len(cfg["history"]) == 2 and cfg["train"]["model"] == "shallow"


def test_a_checkpoint_that_does_not_fit_the_data_is_one_line_and_exit_2(gaze_run, tmp_path, capsys):
    run = shutil.copytree(gaze_run, tmp_path / "gaze")
    assert main(["train", "--out", str(run), "--resume", "--data", "demo", "--epochs", "2"]) == 2
    err = _one_line_error(capsys, "train")
    assert f"The checkpoint {str(run / 'checkpoint.pt')!r} does not fit the shallow decoder of these data (32 " in err
    assert " there vs " in err  # the first parameter whose shape differs
    assert "trained on '" in err and "with --target EyetrackerLeftEyeGazeX" in err and "leave out --data" in err
    assert main(["train", "--out", str(run), "--resume"]) == 2  # the run's own --epochs 1: done
    assert "has trained 1 epoch(s) and --epochs allows 1: nothing to resume; give --epochs above 1." in \
        _one_line_error(capsys, "train")
    (run / "config.json").unlink()  # training stopped before its end: the folder names no data
    assert main(["train", "--out", str(run), "--resume"]) == 2
    assert "--resume without --data needs the data the run was trained on" in _one_line_error(capsys, "train")
    assert main(["train", "--out", str(tmp_path / "new"), "--resume"]) == 2
    assert "checkpoint.pt', which does not exist; leave out --resume" in _one_line_error(capsys, "train")


def test_early_stopping_is_said_and_patience_and_lr_are_options(gaze_args, edf_like, tmp_path, monkeypatch, capsys):
    from core import workspace
    from core.training import TrainResult

    seen = {}

    def fake_train(model, data, config, **kw):
        seen.update(patience=config.patience, lr=config.lr)
        history = [{"epoch": i, "train_loss": 1.0, "valid_loss": 1.0, "valid_metric": 0.1, "seconds": 0.0}
                   for i in range(3)]
        return TrainResult(history=history, best_epoch=0, early_stopped=True)

    monkeypatch.setattr(workspace, "train", fake_train)
    assert main(["train", "--data", str(edf_like), *gaze_args, "--epochs", "10", "--patience", "2", "--lr", "0.01",
                 "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert seen == {"patience": 2, "lr": 0.01}
    assert ("stopped early after epoch 3 of 10: no validation improvement for 2 epochs (--patience 2); "
            "weights of epoch 1 kept") in out


def test_trials_longer_than_the_time_between_events_get_a_caution(edf_like, label_run, tmp_path, monkeypatch,
                                                                   capsys):
    """T1/T2 every 3 s: trials of 2 s (the label run) get no caution, trials of 4 s (the default)
    hold the next event, which is said before training."""
    from core import workspace
    from core.training import TrainResult

    assert "also hold" not in label_run[2]
    history = [{"epoch": 0, "train_loss": 1.0, "valid_loss": 1.0, "valid_metric": 0.5, "seconds": 0.0}]
    monkeypatch.setattr(workspace, "train", lambda *a, **k: TrainResult(history=history, best_epoch=0))
    assert main(["train", "--data", str(edf_like), "--target", "events:T1,T2", "--model", "shallow",
                 "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert ("caution: trials of 4 s (0 to 4 s from their events) also hold 1 other event each (median): "
            "shorten them (--tmin/--tmax)") in err


def test_the_test_metric_says_how_many_trials_it_rests_on(label_run, capsys):
    out_dir, out, err = label_run
    cfg = json.loads((out_dir / "config.json").read_text())
    n_test, n_valid = cfg["metrics"]["n_test"], cfg["metrics"]["n_valid"]
    # T1/T2 every 3 s from 1 s on, the test block the last 20% of 60 s: onsets 49, 52 and 55 s
    assert n_test == 3 and cfg["metrics"]["count_of"] == "trials"
    assert f"on {n_test} trials (valid " in out and f"on {n_valid} trials, best epoch 1)" in out
    assert f"caution: the test balanced_accuracy rests on {n_test} trial(s) only" in err
    assert main(["info", str(out_dir)]) == 0
    pairs = [line.split(None, 1) for line in capsys.readouterr().out.splitlines()]
    lines = dict(pairs)
    assert lines["metric"].endswith(f"on {n_test} trials, valid {cfg['metrics']['valid']:.4f} on {n_valid} trials")
    assert any("very uncertain" in text for key, text in pairs if key == "caution")


def test_a_correlation_at_or_below_zero_is_called_chance(gaze_run, tmp_path, capsys):
    run = shutil.copytree(gaze_run, tmp_path / "gaze")
    cfg = json.loads((run / "config.json").read_text())
    cfg["metrics"]["test"] = -0.2
    (run / "config.json").write_text(json.dumps(cfg))
    assert main(["info", str(run)]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert lines["metric"].startswith("test pearson_r -0.2000 on ") and " windows, valid " in lines["metric"]
    assert lines["caution"] == ("test pearson_r -0.2000 is not above 0: the decoder predicts no better than "
                                "chance on the test block")


def test_a_balanced_accuracy_at_or_below_chance_is_called_chance(label_run, tmp_path, capsys):
    """The classes of the test block are stored beside its trial count; a balanced accuracy at or
    below 1 / classes gets a caution (an Elekta FIF's 8 trigger codes gave 0.000 with no word)."""
    run = shutil.copytree(label_run[0], tmp_path / "labels")
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["metrics"]["n_test_classes"] == 2
    for test, said in ((0.5, True), (0.25, True), (0.75, False)):
        cfg["metrics"]["test"] = test
        (run / "config.json").write_text(json.dumps(cfg))
        assert main(["info", str(run)]) == 0
        out = capsys.readouterr().out
        assert (f"test balanced_accuracy {test:.4f} is at or below chance, 1/2 = 0.500: the decoder predicts no "
                "better than chance on the test block" in out) == said


def test_a_test_block_whose_target_drifted_gets_a_caution(gaze_run, tmp_path, capsys):
    """The test block's mean target, in training SDs from the training mean, is stored with the
    metrics (measured here against the recording's own target); from 1 SD on it is a caution."""
    from core.workspace import Workspace

    ws = Workspace.load(gaze_run)
    shift = json.loads((gaze_run / "config.json").read_text())["metrics"]["test_target_shift"]
    train = ws.recording.target.values[ws.blocks["train"]]
    _, truth = ws.predict("test")  # the test targets the metric rests on, in the target's units
    assert shift == pytest.approx((truth.mean() - train.mean()) / train.std(), abs=2e-3)
    assert abs(shift) < 1  # the simulated speed does not drift: no caution
    run = shutil.copytree(gaze_run, tmp_path / "gaze")
    cfg = json.loads((run / "config.json").read_text())
    cfg["metrics"]["test_target_shift"] = 1.56
    (run / "config.json").write_text(json.dumps(cfg))
    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    assert "caution    the target's mean on the test block lies +1.6 SDs (of the training block)" in out


@pytest.mark.parametrize("argv", [
    ["train", "rec.edf", "--out", "x"],
    ["import", "w.pt", "rec.edf", "--out", "x"],
    ["batch", "rec.edf", "--data", "other.edf", "--out", "x"],
])
def test_a_recording_given_without_data_gets_a_hint(argv, capsys):
    assert main(argv) == 2
    err = _one_line_error(capsys, argv[0])
    assert "unrecognized argument 'rec.edf': give a recording with --data PATH" in err


def test_an_existing_recording_given_in_place_of_data_is_taken(edf_like, tmp_path, monkeypatch, capsys):
    """`unitscope train rec.fif --target ...`, as one types it: an existing path given alone is the
    recording (a path that does not exist keeps the hint above; --data given too is refused)."""
    from core import workspace
    from core.training import TrainResult

    history = [{"epoch": 0, "train_loss": 1.0, "valid_loss": 1.0, "valid_metric": 0.5, "seconds": 0.0}]
    monkeypatch.setattr(workspace, "train", lambda *a, **k: TrainResult(history=history, best_epoch=0))
    assert main(["train", str(edf_like), "--target", "events:T1,T2", "--tmax", "2", "--model", "shallow",
                 "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert f"unitscope train: shallow on {edf_like} (classification, " in err
    assert main(["train", str(edf_like), "--data", str(edf_like), "--out", str(tmp_path / "s")]) == 2
    assert "give a recording with --data PATH" in _one_line_error(capsys, "train")


def test_verbose_after_the_subcommand(capsys):
    assert main(["info", "demo", "-v"]) == 0
    assert "channels   32" in capsys.readouterr().out


@pytest.mark.parametrize("target, message", [
    # (another case alone names the channel, as for --picks: test_cli_data_checks.py)
    ("EyetrackerLeftEyeGazeXX", "Did you mean 'EyetrackerLeftEyeGazeX'?"),
    ("T1,T2", "'T1,T2' is not in the recording, but it names event types: for label decoding write "
              "--target events:T1,T2."),
])
def test_target_hints(edf_like, target, message, capsys):
    assert main(["train", "--data", str(edf_like), "--target", target, "--out", "x"]) == 2
    assert message in _one_line_error(capsys, "train")


def test_a_target_missing_from_the_demo_says_the_demo_was_read(capsys):
    assert main(["train", "--target", "EyetrackerLeftEyeGazeX", "--out", "x"]) == 2
    assert "No --data was given, so this is the built-in demo recording" in _one_line_error(capsys, "train")


def _help(command: str, capsys) -> str:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines anywhere


def test_help_says_the_demo_and_the_defaults(capsys):
    from core.probing import ProbeConfig
    from core.training import TrainConfig

    d = TrainConfig()
    text = _help("train", capsys)
    assert "'demo' or left out: the built-in demo recording" in text
    for expected in (f"decoder (default {d.model})", f"maximum epochs (default {d.max_epochs};", f"(default {d.scheduler};",
                     "start relative to events, s (default 0)", "end relative to events, s (default 4)",
                     f"(default {d.n_times})", f"improvement (default {d.patience})", "Adam learning rate (default"):
        assert expected in text
    p = ProbeConfig()
    text = _help("probe", capsys)
    assert f"perturbations per pass (default {p.n_iterations})" in text
    assert f"at most this many windows (default {p.n_windows})" in text


def test_a_trial_window_that_ends_before_it_starts_is_one_line(edf_like, tmp_path, capsys):
    """--tmin 1 --tmax 0.5 said "Cannot build deep4 for n_times=-64 samples"."""
    assert main(["train", str(edf_like), "--target", "events:T1,T2", "--tmin", "1", "--tmax", "0.5",
                 "--out", str(tmp_path / "r")]) == 2
    assert ("The trial window must end after it starts: tmin=1 s, tmax=0.5 s"
            in _one_line_error(capsys, "train"))
    assert not (tmp_path / "r").exists()



def test_a_label_decoder_says_its_test_trials_called_right_per_class(label_run, capsys):
    """Balanced accuracy averages each class's share of trials called right; train and info say
    those numbers (a class without test trials shows 0/0), and they give the metric."""
    import json
    import re

    import numpy as np

    run, stdout, _ = label_run
    line = [x for x in stdout.splitlines() if x.startswith("test trials called right, per class: ")][0]
    counts = {c: (int(k), int(n)) for c, k, n in re.findall(r"(\S+) (\d+)/(\d+)", line.split(": ", 1)[1])}
    assert list(counts) == ["T1", "T2"]
    metrics = json.loads((run / "config.json").read_text())["metrics"]
    assert sum(n for _, n in counts.values()) == metrics["n_test"]
    recall = [k / n for k, n in counts.values() if n]
    assert np.mean(recall) == pytest.approx(metrics["test"], abs=1e-6)
    assert main(["info", str(run)]) == 0
    assert f"per class  test trials called right: {line.split(': ', 1)[1]}" in capsys.readouterr().out


def test_a_run_trained_on_a_relative_path_opens_from_any_folder(edf_like, tmp_path, monkeypatch, capsys):
    """`unitscope train rec_raw.fif --out runs/a` stored 'rec_raw.fif' as given: every later
    command run from another folder said "Recording 'rec_raw.fif' does not exist." The run keeps
    where the recording was in full, finds it beside the run folder when moved with it, and says
    where it looked when it is nowhere."""
    import shutil

    study = tmp_path / "study"
    study.mkdir()
    shutil.copy(edf_like, study / "rec_raw.fif")
    monkeypatch.chdir(study)
    assert main(["train", "rec_raw.fif", "--target", "events:T1,T2", "--tmax", "2", "--model", "shallow",
                 "--epochs", "1", "--threads", "1", "--out", "runs/a"]) == 0
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["occlude", "study/runs/a", "--band", "8", "30", "--json"]) == 0
    assert '"reference"' in capsys.readouterr().out
    moved = tmp_path / "elsewhere"
    shutil.move(str(study / "runs" / "a"), moved)  # the run moved on its own: the recording is nowhere near
    shutil.move(str(study / "rec_raw.fif"), tmp_path / "gone_raw.fif")
    assert main(["occlude", str(moved), "--band", "8", "30"]) == 2
    err = _one_line_error(capsys, "occlude")
    assert f"The decoder in {str(moved)!r} was trained on 'rec_raw.fif', which is not there (looked for: " in err
    assert str(study / "rec_raw.fif") in err and str(moved / "rec_raw.fif") in err
    shutil.move(str(tmp_path / "gone_raw.fif"), moved / "rec_raw.fif")  # put beside the run folder
    assert main(["occlude", str(moved), "--band", "8", "30", "--json"]) == 0


def test_the_plain_demo_trains_with_the_shipped_decoders_recipe():
    """``train --data demo`` trains Deep4 as the shipped decoder was (and as the app's Train
    does): 30 epochs at a constant learning rate. It had used TrainConfig's 25 cosine epochs,
    and a command-line user could not train the decoder the app and the lesson show."""
    import argparse

    from core.cli.train import _train_config, add_parser, data_spec

    sub = argparse.ArgumentParser().add_subparsers()
    add_parser(sub)
    parser = sub.choices["train"]
    shipped = json.loads((ROOT / "assets" / "demo-deep4" / "config.json").read_text())["train"]

    def config(*argv):
        args = parser.parse_args(["--out", "x", *argv])
        return _train_config(args, None, data_spec(args))[0]

    cfg = config("--data", "demo")
    assert (cfg.model, cfg.max_epochs, cfg.scheduler, cfg.learning_rate) == (
        "deep4", shipped["max_epochs"], shipped["scheduler"], shipped["lr"])
    cfg = config("--data", "demo", "--epochs", "2", "--scheduler", "cosine")  # what is given wins
    assert (cfg.max_epochs, cfg.scheduler, cfg.learning_rate) == (2, "cosine", 1e-3)
    cfg = config("--data", "demo", "--target", "hand_speed")  # the demo's own target, named
    assert (cfg.max_epochs, cfg.scheduler) == (30, "none")
    for argv in (["--model", "shallow"], ["--demo-ipsi-fraction", "0.3"], ["--l-freq", "1"], ["--sfreq", "125"],
                 ["--picks", "G01,G02"], ["--target", "G03"]):  # not the shipped decoder's data: the defaults
        cfg = config("--data", "demo", *argv)
        assert (cfg.max_epochs, cfg.scheduler) == (25, "cosine"), argv


def test_every_option_with_a_default_says_it_in_its_help(capsys):
    """A user reads the defaults in --help: every option whose default is a value (not None,
    not a switch) says "default" in its help text; the numbers that other classes own are
    theirs."""
    import argparse

    from core.cli import build_parser
    from core.encoding.dre import DREConfig
    from core.probing import ProbeConfig
    from core.training import TrainConfig

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    silent = []
    for name, parser in sub.choices.items():
        for action in parser._actions:
            if (action.option_strings and action.default not in (None, False, argparse.SUPPRESS)
                    and not isinstance(action, (argparse._StoreTrueAction, argparse._HelpAction))
                    and "default" not in (action.help or "")):
                silent.append(f"{name} {action.option_strings[0]} (default {action.default!r})")
    assert not silent, silent
    text = _help("encode", capsys)
    assert f"(default {DREConfig().n_epochs};" in text and f"(default {DREConfig().hidden})" in text
    text = _help("batch", capsys)
    assert f"the probe's, {ProbeConfig().n_iterations})" in text and f"the training default, {TrainConfig().max_epochs})" in text


def test_resuming_a_run_band_passed_before_filter_phase_keeps_its_zero_phase_filter(tmp_path, capsys):
    """A run trained before the causal band-pass recorded no filter_phase: read as the zero-phase
    filter it was trained on. Resumed with --data (a new spec, causal by default), it had gone on
    training on causally filtered data, and its config.json then said causal."""
    from core.training import load_state, save_state

    run = tmp_path / "old"
    argv = ["--data", "demo", "--l-freq", "1", "--h-freq", "40", "--filter-phase", "zero", "--n-times", "700",
            "--model", "shallow", "--threads", "1"]
    assert main(["train", *argv, "--epochs", "1", "--out", str(run)]) == 0
    cfg = json.loads((run / "config.json").read_text())
    del cfg["data"]["filter_phase"]  # as written before the choice existed
    (run / "config.json").write_text(json.dumps(cfg))
    ckpt = load_state(run / "checkpoint.pt")  # (weights_only=True)
    record = json.loads(ckpt["run"])  # (the checkpoint's record of the data it was trained on)
    del record["data"]["filter_phase"]
    ckpt["run"] = json.dumps(record)
    save_state(run / "checkpoint.pt", ckpt)
    capsys.readouterr()
    assert main(["info", str(run)]) == 0 and "band-pass 1-40 Hz (zero-phase)" in capsys.readouterr().out
    resume = ["train", "--out", str(run), "--resume", "--data", "demo", "--l-freq", "1", "--h-freq", "40",
              "--n-times", "700", "--model", "shallow", "--epochs", "2", "--threads", "1"]
    assert main(resume) == 2
    assert "filter_phase (--filter-phase) 'causal' now, 'zero' in the checkpoint" in capsys.readouterr().err
    assert main([*resume, "--filter-phase", "zero"]) == 0
    assert json.loads((run / "config.json").read_text())["data"]["filter_phase"] == "zero"
