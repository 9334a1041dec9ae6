"""`unitscope encode` on data and options it used to mishandle: epochs shorter than the
baselines' lag window, a binary event feature, out-of-range numbers, and the words of its
result lines."""
import json

import numpy as np
import pytest
import xarray as xr

from core._validation import UnitScopeError
from core.cli import main
from core.encoding._data import make_epochs, split_epochs
from core.encoding.dre import DREConfig
from core.encoding.importance import default_features
from core.encoding.linear import RTRF, TRF
from core.encoding.study import EncodingStudy

from encoding_helpers import one_thread

SFREQ, TMIN, N_TIMES = 50.0, -0.3, 46  # epochs of -0.3 .. 0.6 s: shorter than the 1-s lags


def _short_epochs(n=120, seed=0):
    """Events with a code 0-7 and a binary is_one (code == 1) that both drive a bump 0.2 s
    after the event: (meg (n, 3, N_TIMES), code, is_one)."""
    rng = np.random.default_rng(seed)
    t = TMIN + np.arange(N_TIMES) / SFREQ
    code = rng.integers(0, 8, n).astype(float)
    is_one = (code == 1).astype(float)
    h = np.exp(-0.5 * ((t - 0.2) / 0.05) ** 2)  # (times,)
    gain = np.array([1.0, 0.5, -0.8])[None, :, None]  # (1, chans, 1)
    meg = (0.3 * code + 2.0 * is_one)[:, None, None] * gain * h + 0.2 * rng.standard_normal((n, 3, N_TIMES))
    return meg, code, is_one


@pytest.fixture(scope="module")
def short_data():
    """The short epochs as an encoding data set (forcings as the -epo.fif loader builds them)."""
    meg, code, is_one = _short_epochs()
    t = TMIN + np.arange(N_TIMES) / SFREQ
    on = ((t >= 0) & (t < 0.3)).astype(np.float32)  # (times,)
    forcing = np.stack([np.broadcast_to(on, (len(code), N_TIMES)), code[:, None] * on,
                        is_one[:, None] * on, np.broadcast_to(on, (len(code), N_TIMES))], axis=1)
    return make_epochs(meg.astype(np.float32), forcing.astype(np.float32), subject=["s"] * len(code),
                       sfreq=SFREQ, tmin=TMIN, feature_names=["event_onset", "code", "is_one", "first_mask"],
                       onset_time=np.arange(len(code)) * 2.0)


@pytest.fixture(scope="module")
def short_fif(tmp_path_factory):
    """The short epochs as MNE epochs with metadata columns code and is_one."""
    mne = pytest.importorskip("mne")
    pd = pytest.importorskip("pandas")
    meg, code, is_one = _short_epochs()
    info = mne.create_info(["MEG001", "MEG002", "MEG003"], SFREQ, "mag")
    events = np.column_stack([np.arange(len(code)) * 100 + 1000, np.zeros(len(code), int),
                              (2 ** code).astype(int)])
    epochs = mne.EpochsArray(meg * 1e-12, info, events=events, tmin=TMIN,
                             metadata=pd.DataFrame({"code": code, "is_one": is_one}), verbose="error")
    path = tmp_path_factory.mktemp("short") / "short-epo.fif"
    epochs.save(path, verbose="error")
    return path


@pytest.fixture(scope="module")
def cli_run(short_fif, tmp_path_factory):
    """`unitscope encode` on the short MNE epochs with the default baselines: (rc, stdout,
    stderr, result)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("enc") / "enc.nc"
    stdout, stderr = io.StringIO(), io.StringIO()
    with one_thread(), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main(["encode", "--data", str(short_fif), "--epochs", "1", "--hidden", "4", "--repeats", "1",
                   "--threads", "1", "--out", str(out)])
    result = xr.load_dataset(out, engine="h5netcdf") if rc == 0 else None
    return rc, stdout.getvalue(), stderr.getvalue(), result


# --- 1. the baselines' lags on epochs shorter than 1 s -------------------------------------

def test_trf_lags_longer_than_the_epochs_are_refused_in_words(short_data):
    splits = split_epochs(short_data)
    for model in (TRF(), RTRF(meg_init=10)):
        with pytest.raises(UnitScopeError, match=r"lags 0-1 s \(51 samples\) are longer than the epochs: "
                                                 r"46 samples at 50 Hz hold lags up to 0\.9 s; give tmax=0\.9"):
            model.fit(splits["train"], splits["valid"])
    # the longest lag the epochs hold fits (MNE's ridge failed on a longer one)
    TRF(tmax=0.9, alphas=(1.0,)).fit(splits["train"], splits["valid"])


def test_study_shortens_the_lags_to_the_epochs_and_says_so_first(short_data):
    said = []
    study = EncodingStudy(DREConfig(meg_init=10, hidden=4, n_epochs=1), importance=False, n_examples=2)
    with one_thread():
        result = study.run(short_data, progress=said.append)
    lag = [i for i, m in enumerate(said) if "forcing lags 0-0.9 s instead of 0-1 s" in m]
    assert lag and lag[0] < said.index("fitting dre"), said  # before any fit starts
    assert "46 samples at 50 Hz" in said[lag[0]]
    assert result.attrs["baseline_lag_seconds"] == pytest.approx(0.9)
    assert list(result["model"].values) == ["dre", "trf", "rtrf"]


def test_cli_runs_on_short_mne_epochs(cli_run):
    rc, out, err, result = cli_run
    assert rc == 0, err
    assert "Traceback" not in err
    assert "trf and rtrf: forcing lags 0-0.9 s instead of 0-1 s" in err
    # the default initial state (1/3 s) is cut to the 0.3 s before the event, and says so
    assert "initial brain state 0.3 s instead of 0.333 s" in err
    assert result.attrs["meg_init"] == 15


# --- 2. a binary event feature is permuted; what is left out is said -----------------------

def test_binary_event_feature_is_permuted(short_data):
    from core.encoding.importance import left_out_features

    class Model:
        meg_init, subjects_ = 0, ["s"]

    assert default_features(Model(), short_data) == ["code", "is_one"]
    left = left_out_features(short_data)
    assert left == {"event_onset": "1 at every event, so permuting changes nothing",
                    "first_mask": "marks each epoch's own event"}


def test_cli_reports_the_binary_feature_and_what_is_left_out(cli_run):
    rc, out, err, result = cli_run
    assert "is_one" in result["feature"].values.tolist()
    assert "importance is_one: loss " in out
    assert ("importance left out: event_onset (1 at every event, so permuting changes nothing); "
            "first_mask (marks each epoch's own event)") in out
    assert json.loads(result.attrs["importance_left_out"])["event_onset"].startswith("1 at every event")


# --- 3. out-of-range numbers are refused before anything is loaded ------------------------

@pytest.mark.parametrize("option, value, least", [
    ("--subjects", "0", 1), ("--subjects", "-2", 1), ("--words", "0", 20), ("--epochs", "0", 1),
    ("--hidden", "0", 1), ("--repeats", "0", 1), ("--seed", "-1", 0), ("--threads", "0", 1)])
def test_cli_refuses_out_of_range_numbers(option, value, least, monkeypatch, capsys, tmp_path):
    import core.cli.encode as encode

    def loaded(*args, **kwargs):
        raise AssertionError("the data were loaded before the options were checked")

    monkeypatch.setattr(encode, "load_data", loaded)
    assert main(["encode", "--data", "synthetic-reading", option, value, "--out", str(tmp_path / "x.nc")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"Invalid value for {option}: expected an integer of at least {least}, got {value}." in err


@pytest.mark.parametrize("value", ["-1", "inf", "nan"])
def test_cli_refuses_a_bad_reject_threshold_before_making_the_data(value, monkeypatch, capsys, tmp_path):
    import core.cli.encode as encode

    monkeypatch.setattr(encode, "load_data", lambda *a, **kw: pytest.fail("the data were made first"))
    assert main(["encode", "--data", "synthetic-reading", "--reject", value, "--out", str(tmp_path / "x.nc")]) == 2
    assert (f"Invalid value for --reject: expected 0 (keep every epoch) or a positive threshold, got {float(value)}"
            in capsys.readouterr().err)


@pytest.mark.parametrize("value", ["-0.1", "inf", "nan"])
def test_cli_refuses_bad_init_seconds(value, capsys, tmp_path):
    assert main(["encode", "--data", "synthetic-reading", "--init-seconds", value,
                 "--out", str(tmp_path / "x.nc")]) == 2
    assert "Invalid value for --init-seconds: expected 0 or more seconds" in capsys.readouterr().err


def test_cli_refuses_init_seconds_past_the_event(short_fif, capsys, tmp_path):
    assert main(["encode", "--data", str(short_fif), "--init-seconds", "0.5", "--out", str(tmp_path / "x.nc")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "Invalid value for --init-seconds: expected at most 0.3 s (the epochs start 0.3 s before their event), " \
           "got 0.5" in err


def test_cli_refuses_synthetic_options_for_other_data(short_fif, capsys):
    assert main(["encode", "--data", str(short_fif), "--subjects", "2"]) == 2
    assert "--subjects applies to --data synthetic-reading only" in capsys.readouterr().err


def test_study_refuses_out_of_range_numbers():
    with pytest.raises(UnitScopeError, match=r"'n_repeats' must lie in \[1, inf\], got 0"):
        EncodingStudy(n_repeats=0)
    with pytest.raises(UnitScopeError, match=r"'seed' must lie in \[0, inf\], got -1"):
        EncodingStudy(seed=-1)


# --- 4. the words of the result lines ------------------------------------------------------

def _result(loss, course, baselines=("trf", "rtrf")):
    """A hand-made encoding result: one feature 'f' with the overall loss increase ``loss`` and
    the loss-increase time course ``course`` (5 times from -0.1 s)."""
    from core.encoding.study import method_name

    time = -0.1 + 0.1 * np.arange(5)
    lmap = np.asarray(course, float)[None, None, :, None]  # (feature, subject, time, channel)
    return xr.Dataset(
        {"score": ("model", [0.1]), "loss_increase": ("feature", [loss]),
         "loss_increase_map": (("feature", "subject", "time", "channel"), lmap),
         "r_drop": (("feature", "subject", "time", "channel"), lmap)},
        coords={"model": ["dre"], "feature": ["f"], "subject": ["s"], "time": time, "channel": ["c"]},
        attrs={"method": method_name(baselines)})


def test_result_lines_sign_and_peak():
    from core.cli.encode import result_lines

    lines = result_lines(_result(-0.01, [0.0, -0.01, -0.02, -0.01, -0.03]))
    assert lines[-1] == ("importance f: loss -0.01%, no peak (permuting it does not raise the loss: "
                         "the DRE does not use it)")
    assert "+-" not in "\n".join(lines) and "peaks at" not in "\n".join(lines)
    lines = result_lines(_result(2.5, [0.0, 0.1, 0.4, 0.2, 0.0]))
    assert lines[-1] == "importance f: loss +2.50%, peaks at 100 ms"


def test_method_names_the_baselines_fitted():
    from core.encoding.study import method_name

    assert method_name([]) == "Deep Recurrent Encoder (Chehab et al. 2022), no baseline"
    assert method_name(["trf"]) == "Deep Recurrent Encoder (Chehab et al. 2022) with the linear baseline trf"
    assert method_name(["trf", "rtrf"]).endswith("with linear baselines trf and rtrf")


def test_cli_no_baselines_says_so(short_fif, tmp_path, capsys):
    out = tmp_path / "none.nc"
    with one_thread():
        assert main(["encode", "--data", str(short_fif), "--epochs", "1", "--hidden", "4", "--baselines", "none",
                     "--no-importance", "--threads", "1", "--out", str(out)]) == 0
    assert "forcing lags" not in capsys.readouterr().err  # no baseline: nothing to shorten
    method = xr.load_dataset(out, engine="h5netcdf").attrs["method"]
    assert "linear baselines" not in method and method.endswith("no baseline")
    assert main(["info", str(out)]) == 0
    assert "with linear baselines" not in capsys.readouterr().out
