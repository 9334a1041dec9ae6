"""The ``unitscope`` command line: info, train, bench dispatch, and one-line errors (exit 2)."""
import json

import numpy as np
import pytest

from core.cli import main


@pytest.fixture(scope="module")
def demo_fif(tmp_path_factory):
    """60 s of the demo written as a FIF file with the hand speed as a misc channel."""
    mne = pytest.importorskip("mne")
    from core.demo import simulate_reaching

    rec = simulate_reaching(duration=60.0)
    names = rec.ch_names + ["speed"]
    info = mne.create_info(names, rec.sfreq, ["ecog"] * rec.n_chans + ["misc"])
    data = np.vstack([rec.signals.values, rec.target.values[None]]).astype(np.float64)
    raw = mne.io.RawArray(data, info, verbose="error")
    path = tmp_path_factory.mktemp("fif") / "demo_raw.fif"
    raw.save(path, verbose="error")
    return path


def test_info_demo_and_file(capsys, demo_fif):
    assert main(["info", "demo"]) == 0
    out = capsys.readouterr().out
    assert "channels   32" in out and "sfreq      250 Hz" in out and "movement_onset" in out
    assert main(["info", str(demo_fif), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_chans"] == 33 and info["ch_types"] == {"ecog": 32, "misc": 1}


def test_train_writes_a_run_folder(tmp_path, demo_fif, capsys):
    out = tmp_path / "run"
    code = main(["train", "--data", str(demo_fif), "--target", "speed", "--model", "shallow",
                 "--epochs", "1", "--n-times", "700", "--out", str(out), "--threads", "1"])
    assert code == 0
    captured = capsys.readouterr()
    assert "test pearson_r" in captured.out and "torch_threads=1" in captured.err
    assert "epoch 1/1" in captured.err
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["task"] == "regression" and cfg["model"]["n_chans"] == 32
    assert (out / "model.pt").is_file() and (out / "checkpoint.pt").is_file()
    assert "probed the earlier weights" not in captured.err
    for name in ("probe.nc", "prune_curves.nc", "deconv_unit_conv_4_3.nc", "deconv_channel_G03_60-90.nc"):
        (out / name).write_bytes(b"")  # results of these weights (but the channel's): training again makes them stale
    assert main(["train", "--data", str(demo_fif), "--target", "speed", "--model", "shallow", "--epochs", "1",
                 "--n-times", "700", "--out", str(out), "--threads", "1", "--seed", "3"]) == 0
    err = capsys.readouterr().err
    assert f"note: {out / 'probe.nc'} probed the earlier weights: run 'unitscope probe {out}' again" in err
    assert f"note: deconv_unit_conv_4_3.nc, prune_curves.nc in {out} came from the earlier weights" in err


def test_nan_samples_and_flat_channels_in_a_file(tmp_path, demo_fif, capsys, caplog):
    mne = pytest.importorskip("mne")
    raw = mne.io.read_raw_fif(demo_fif, preload=True, verbose="error")
    data = raw.get_data()
    data[3, 1000:1010] = np.nan
    data[5] = 0.0
    bad = tmp_path / "bad_raw.fif"
    mne.io.RawArray(data, raw.info, verbose="error").save(bad, verbose="error")
    assert main(["train", "--data", str(bad), "--target", "speed", "--out", str(tmp_path / "r")]) == 2
    assert "['G04'] contain NaN or Inf samples" in capsys.readouterr().err
    picks = ",".join(f"G{i:02d}" for i in range(5, 9))  # G04 dropped, G06 is flat
    assert main(["train", "--data", str(bad), "--target", "speed", "--picks", picks, "--out", str(tmp_path / "r")]) == 2
    assert "['G06'] are flat (zero variance): leave them out of the picks" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing written for a bad input
    # with no picks given, a flat channel is left out (said), as channels marked bad are: a disconnected
    # electrode had stopped training, and the way out was to name every other channel
    data[3, 1000:1010] = 0.0
    mne.io.RawArray(data, raw.info, verbose="error").save(bad, verbose="error", overwrite=True)
    assert main(["train", "--data", str(bad), "--target", "speed", "--model", "shallow", "--epochs", "1",
                 "--threads", "1", "--out", str(tmp_path / "r")]) == 0
    assert "left out 1 flat channel(s) (no variance): G06; pick channels by name" in caplog.text  # (a warning)
    names = json.loads((tmp_path / "r" / "config.json").read_text())["model"]["ch_names"]
    assert "G06" not in names and len(names) == len(raw.ch_names) - 2  # (and the speed target)
    assert main(["info", str(tmp_path / "r")]) == 0  # the run opens again on its file, G06 still left out


@pytest.mark.parametrize("argv, message", [
    (["info", "/no/such/file.edf"], "does not exist"),
    (["info", "/no/such/run"], "'/no/such/run' does not exist; info takes a recording, a BIDS folder, a run folder"),
    (["train", "--data", "demo", "--target", "G3", "--out", "x"], "is not in the recording"),
    (["bench", "trian"], "Unknown benchmark 'trian'"),
    (["train", "--demo-ipsi-fraction", "1.5", "--out", "x"], "--demo-ipsi-fraction must lie in"),
    (["train", "--epochs", "0", "--out", "x"], "--epochs must lie in [1, inf], got 0"),
    (["train", "--data", "rec.edf", "--demo-ipsi-fraction", "0.5", "--out", "x"], "applies to the demo recording only"),
])
def test_user_errors_print_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith(f"unitscope {argv[0]}: error:")


@pytest.mark.parametrize("argv, message", [
    (["train", "--seed", "-1", "--out", "x"], "argument --seed: expected a whole number from 0 to 4294967295, got -1."),
    (["train", "--model", "deep5", "--out", "x"], "invalid choice: 'deep5' (choose from 'deep4', 'shallow'). "
                                                  "Did you mean 'deep4'?"),
    (["trian"], "invalid choice: 'trian' (choose from 'info', 'train',"),
    (["probe"], "the following arguments are required: RUN_DIR."),
])
def test_argparse_errors_print_one_line_too(argv, message, capsys):
    """argparse's own errors had its usage block above them (10 lines for train)."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    prog = "unitscope" if argv[0] == "trian" else f"unitscope {argv[0]}"
    assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith(f"{prog}: error:"), err
    assert message in err[0] and err[0].endswith(f"('{prog} --help' lists the options)")
    if argv[0] == "trian":
        assert "Did you mean 'train'?" in err[0]


def test_a_failed_app_benchmark_prints_the_servers_last_log_lines(tmp_path, capsys):
    """`unitscope bench app` runs the server in the background: when a measurement fails,
    the last lines of its log are printed, so the failure can be told from the server's side."""
    from core.bench.app import _server_log_on_error

    log = tmp_path / "serve.log"
    log.write_text("\n".join(f"line {i}" for i in range(100)) + "\nTraceback (most recent call last): boom\n")
    with pytest.raises(TimeoutError, match="session 4 of 5"):
        with _server_log_on_error(log, n_lines=3):
            raise TimeoutError("session 4 of 5 did not show its metric")
    err = capsys.readouterr().err
    assert f"the server's log ({log}), last 3 lines" in err
    assert "line 98\nline 99\nTraceback (most recent call last): boom" in err and "line 97" not in err
    with _server_log_on_error(log):  # no error: nothing printed
        pass
    assert capsys.readouterr().err == ""
