"""Checks of what the command line is given: channel names matched as ``unitscope info``
matches them, a run folder opened on the recording it was trained on, words for a metric that is
undefined (NaN) or a validity ratio that means nothing, and scores or weights files of the
wrong kind."""
import json
import shutil

import numpy as np
import pytest
import xarray as xr

from core._validation import UnitScopeError
from core.cli import main
from core.training import TrainConfig
from core.workspace import ASSETS_DIR, DataSpec, Workspace, load_data

GAZE = "EyetrackerLeftEyeGazeX"


def one_line_error(capsys, command: str) -> str:
    """The single error line a refused command wrote (exit status 2 checked by the caller)."""
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("caution")]
    assert len(err) == 1, err
    assert err[0].startswith(f"unitscope {command}: error: ")
    return err[0]


@pytest.fixture(scope="module")
def gaze_run(edf_like, tmp_path_factory):
    """A shallow decoder of the trace in 'EyetrackerLeftEyeGazeX' trained one epoch on a copy of
    ``edf_like`` (a continuous target: a constant output makes its Pearson r NaN)."""
    where = tmp_path_factory.mktemp("gaze")
    rec = shutil.copy(edf_like, where / "rec_raw.fif")
    run = where / "run"
    assert main(["train", "--data", str(rec), "--target", GAZE, "--model", "shallow", "--epochs", "1",
                 "--n-times", "700", "--threads", "1", "--out", str(run)]) == 0
    return run


# ---- 1. channel names ---------------------------------------------------------------------
def test_picks_and_a_channel_target_match_names_as_info_does(edf_like, tmp_path, capsys):
    """C3 is C3.. for --picks and a channel --target too (case and trailing dots ignored), as
    for occlude --channels and deconv --signal; the names written are the file's own."""
    for picks in (["C3", "C4"], ["c3", "c4"]):
        rec = load_data(DataSpec(source=str(edf_like), target="events:T1,T2", picks=picks))[0]
        assert rec.ch_names == ["C3..", "C4.."]
    out = tmp_path / "run"
    assert main(["train", "--data", str(edf_like), "--target", "C3", "--picks", "cz,C4", "--model", "shallow",
                 "--epochs", "1", "--n-times", "700", "--threads", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    data = json.loads((out / "config.json").read_text())["data"]
    assert data["target"] == "C3.." and data["picks"] == ["Cz..", "C4.."]
    assert Workspace.load(out).recording.target.name == "C3.."


@pytest.mark.parametrize("target, picks, named", [
    (GAZE, f"Cz..,{GAZE}", GAZE),
    ("c3", "C3,C4", "C3.."),
])
def test_a_target_among_the_picks_is_refused_by_name(edf_like, tmp_path, capsys, target, picks, named):
    assert main(["train", "--data", str(edf_like), "--target", target, "--picks", picks,
                 "--out", str(tmp_path / "run")]) == 2
    err = one_line_error(capsys, "train")
    assert f"The target channel {named!r} cannot also be an input" in err and "not in the recording" not in err


def test_real_recordings_picks_and_target(shared_data):
    edf = shared_data / "eeg_motor_eegmmidb" / "test_edf_overlapping_annotations.edf"
    rec = load_data(DataSpec(source=str(edf), target="events:T1,T2", picks=["C3", "c4"]))[0]
    assert rec.ch_names == ["C3..", "C4.."]
    dat = shared_data / "bci2000_samplefiles" / "eeg3_1.dat"
    with pytest.raises(UnitScopeError, match=f"The target channel '{GAZE}' cannot also be an input"):
        load_data(DataSpec(source=str(dat), target=GAZE, picks=["Cz", GAZE]))


def test_an_event_type_the_recording_lacks_is_refused_not_dropped(shared_data, tmp_path, capsys):
    """'events:T0,T1,T3' trained a T0-vs-T1 decoder labelled with T3 (and 'events:1,2,13' a
    2-class one): a typo in the list is named, with the recording's types."""
    edf = shared_data / "eeg_motor_eegmmidb" / "test_edf_overlapping_annotations.edf"
    with pytest.raises(UnitScopeError, match=r"names event type 'T3' that the recording does not hold; its event "
                                             r"types are \['T0', 'T1', 'T2'\]\. Did you mean 'T2'\?"):
        load_data(DataSpec(source=str(edf), target="events:T0,T1,T3"))
    assert main(["train", "--data", str(edf), "--target", "events:t1,T9", "--out", str(tmp_path / "run")]) == 2
    err = one_line_error(capsys, "train")
    assert "event types 't1', 'T9' that the recording does not hold" in err and "Did you mean 'T1'?" in err
    assert not (tmp_path / "run").exists()


# ---- 2. the recording a run was trained on -------------------------------------------------
def _moved_run(gaze_run, tmp_path):
    """A copy of ``gaze_run`` trained on its own copy of the recording: (run, recording)."""
    run = shutil.copytree(gaze_run, tmp_path / "run")
    rec = shutil.copy(gaze_run.parent / "rec_raw.fif", tmp_path / "rec_raw.fif")
    cfg = json.loads((run / "config.json").read_text())
    cfg["data"]["source"], cfg["source_path"] = str(rec), str(rec)
    (run / "config.json").write_text(json.dumps(cfg))
    return run, rec


def test_a_run_refuses_a_recording_replaced_since(gaze_run, tmp_path, capsys):
    mne = pytest.importorskip("mne")
    run, rec = _moved_run(gaze_run, tmp_path)
    cfg = json.loads((run / "config.json").read_text())
    identity = cfg["prep"]["recording"]
    assert identity["n_times"] == 15000 and identity["sfreq"] == 250.0 and len(identity["ch_names"]) == 32
    assert Workspace.load(run).evaluate("test") == pytest.approx(cfg["metrics"]["test"], abs=1e-6)

    raw = mne.io.read_raw_fif(rec, preload=True, verbose="error")
    raw.copy().crop(0, 40.0, include_tmax=False).save(rec, overwrite=True, verbose="error")  # cut short
    with pytest.raises(UnitScopeError, match=r"is not the one the decoder in .* was trained on: 10000 samples "
                                             r"\(40.0 s\) given, 15000 \(60.0 s\) expected"):
        Workspace.load(run)
    assert main(["prune", str(run), "--layer", "conv_time_spat", "--units", "1"]) == 2
    assert "10000 samples (40.0 s) given, 15000 (60.0 s) expected" in one_line_error(capsys, "prune")

    data = raw.get_data()
    data[5, 9000:9500] += 3 * data[5].std()  # the same length, other values on one channel
    mne.io.RawArray(data, raw.info, verbose="error").save(rec, overwrite=True, verbose="error")
    with pytest.raises(UnitScopeError, match=r"the same length but other values: Fc4\. has mean .* given, mean .* "
                                             r"expected\. Put back"):
        Workspace.load(run)
    # another recording asked for by name is not checked; check_recording=True checks it too
    other = DataSpec.from_dict({**cfg["data"], "source": str(rec), "seed": 1})
    Workspace.load(run, spec=other)
    with pytest.raises(UnitScopeError, match="the same length but other values"):
        Workspace.load(run, spec=other, check_recording=True)

    del cfg["prep"]["recording"]  # a run saved before the check: loads as before
    (run / "config.json").write_text(json.dumps(cfg))
    Workspace.load(run)


def test_a_run_found_beside_its_folder_is_checked_too(gaze_run, tmp_path):
    """The app opens a run on its recording found under the data root (a spec naming the same
    file elsewhere): checked as the run's own."""
    mne = pytest.importorskip("mne")
    run, rec = _moved_run(gaze_run, tmp_path)
    cfg = json.loads((run / "config.json").read_text())
    elsewhere = tmp_path / "root"
    elsewhere.mkdir()
    raw = mne.io.read_raw_fif(rec, preload=True, verbose="error")
    raw.crop(0, 50.0, include_tmax=False).save(elsewhere / rec.name, verbose="error")
    spec = DataSpec.from_dict({**cfg["data"], "source": str(elsewhere / rec.name)})
    with pytest.raises(UnitScopeError, match="12500 samples"):
        Workspace.load(run, spec=spec)


def test_the_shipped_demo_run_loads_without_the_identity():
    shipped = json.loads((ASSETS_DIR / "demo-deep4" / "config.json").read_text())
    assert "recording" not in shipped["prep"]  # nothing shipped was rewritten
    ws = Workspace.load(ASSETS_DIR / "demo-deep4")
    assert ws.prep["recording"]["n_times"] == ws.recording.n_times == 150000


# ---- 3. the probe's validity ratio -------------------------------------------------------
def _probe_ds(task, metric, amp, phase, **attrs):
    return xr.Dataset({"amp_validity": ((), amp), "amp_metric": ((), amp * metric),
                       "phase_validity": ((), phase), "phase_metric": ((), phase * metric)},
                      attrs={"task": task, "metric_unperturbed": metric, **attrs})


def test_the_validity_ratio_is_undefined_over_a_metric_near_chance():
    from core.cli.probe import validity_text

    text = validity_text(_probe_ds("regression", 0.0108, 0.833, -10.504))
    assert text.startswith("undefined: the unperturbed pearson_r 0.0108 is too small to divide by (below 0.1)")
    assert "0.833" not in text and "perturbed pearson_r: amplitude 0.0090, phase -0.1134" in text
    assert "at or below chance, r = 0" in validity_text(_probe_ds("regression", -0.2, 1.1, 0.5))
    assert "at or below chance, 1/2 = 0.500" in validity_text(_probe_ds("classification", 0.5, 1.0, 1.0, n_classes=2))
    assert "does not vary" in validity_text(_probe_ds("regression", float("nan"), float("nan"), float("nan")))
    # the amplitude pass is the check (at least 0.95); the phase pass's surrogates are not expected to decode
    assert validity_text(_probe_ds("regression", 0.9, 0.996, 0.071)) == (
        "amplitude 0.996 (perturbed / unperturbed metric; at least 0.95: the probed inputs stay ones the decoder "
        "decodes); phase 0.071 (no check: each draw gives every frequency a new phase, a surrogate the decoder is "
        "not expected to decode)")
    assert "amplitude 0.800 (perturbed / unperturbed metric; below 0.95: the noise takes the inputs away" in \
        validity_text(_probe_ds("regression", 0.9, 0.8, 0.071))
    assert validity_text(_probe_ds("classification", 0.8, 0.9, 0.7, n_classes=2)).startswith("amplitude 0.900")


def test_info_says_why_the_control_probes_ratio_is_undefined(capsys):
    assert main(["info", str(ASSETS_DIR / "demo-probe" / "deep4-control.nc")]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("validity"))
    assert "undefined: the unperturbed pearson_r 0.0430 is too small to divide by" in line


def test_probe_of_labels_keeps_the_classes_for_the_chance_level(label_run, tmp_path, capsys):
    from core.cli.probe import validity_text

    run, _, _ = label_run
    out = tmp_path / "probe.nc"
    assert main(["probe", str(run), "--iterations", "1", "--windows", "8", "--null", "2", "--out", str(out)]) == 0
    printed = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("validity: "))
    ds = xr.load_dataset(out, engine="h5netcdf")
    assert ds.attrs["n_classes"] == 2 and printed.startswith(f"validity: {validity_text(ds)}; wrote")


# ---- 4. prune --scores -------------------------------------------------------------------
def test_scores_that_are_no_probe_are_refused_in_one_line(gaze_run, tmp_path, capsys):
    curves = tmp_path / "curves.nc"
    assert main(["prune", str(gaze_run), "--curve", "--layer", "conv_time_spat", "--fractions", "0,0.5",
                 "--orders", "random", "--repeats", "1", "--out", str(curves)]) == 0
    capsys.readouterr()
    assert main(["prune", str(gaze_run), "--curve", "--scores", str(curves), "--out", str(tmp_path / "c.nc")]) == 2
    err = one_line_error(capsys, "prune")
    assert "--scores takes a probe result (probe.nc, as unitscope probe writes it) or a netCDF of per-unit scores" in err
    assert f"{str(curves)!r} holds pruning curves, as unitscope prune --curve writes them" in err
    assert "other probing code" not in err


def test_another_runs_probe_is_said_to_be_made_for_other_weights(gaze_run, tmp_path, capsys):
    probe = tmp_path / "probe.nc"
    xr.Dataset({"amp_stat_all": ("unit", np.ones(3))},
               attrs={"model_hash": "0123456789abcdef", "run_dir": "/elsewhere/edf", "code_version": "x"}
               ).to_netcdf(probe, engine="h5netcdf")
    assert main(["prune", str(gaze_run), "--curve", "--scores", str(probe), "--out", str(tmp_path / "c.nc")]) == 2
    err = one_line_error(capsys, "prune")
    assert (f"was made for other weights than the decoder in {str(gaze_run)!r} (another decoder, or this one "
            "before it was trained again; it was made for the decoder in '/elsewhere/edf')") in err
    assert "trained again since?" not in err


# ---- 5. NaN said in words ----------------------------------------------------------------
def test_a_constant_output_is_said_undefined(gaze_run, capsys):
    assert main(["occlude", str(gaze_run), "--whole", "--json"]) == 0
    text = capsys.readouterr().out.strip().splitlines()[-1]
    out = json.loads(text)  # valid JSON: no bare NaN
    assert "NaN" not in text and out["occluded"] == {"all frequencies of all channels": None}
    assert out["drop"] == {"all frequencies of all channels": None}
    assert out["undefined"]["all frequencies of all channels"].startswith("undefined: the decoder's output does not vary")
    assert main(["occlude", str(gaze_run), "--whole"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.endswith("undefined: the decoder's output does not vary (with these inputs removed it is a constant)")
    assert "nan" not in line

    assert main(["prune", str(gaze_run), "--layer", "conv_time_spat", "--units", "0-39"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2] == ("+ conv_time_spat: 40 unit(s) masked -> undefined: the decoder's output does not vary "
                         "(with these units masked it is a constant)")
    assert lines[-1].endswith("-> undefined: the decoder's output does not vary (with these units masked it is a "
                              "constant)") and "nan" not in lines[-1]


def test_a_deconvolution_of_a_constant_says_why_its_r2_is_undefined():
    from core.cli.deconv import summary_lines

    ds = xr.Dataset({"kernels": (("kernel", "lag"), np.zeros((1, 3))), "codes": (("event", "kernel"), np.ones((3, 1))),
                     "observed": ("time", np.full(20, 0.7))},
                    coords={"kernel": ["T1"], "lag": [0.0, 0.04, 0.08], "event": np.arange(3),
                            "value": ("event", np.zeros(3))},
                    attrs={"r2": float("nan"), "best_epoch": 0, "n_segments": 2, "fit_seconds": 0.1, "refit": "warm"})
    line = summary_lines(ds)[-1]
    assert line.startswith("fit: R^2 undefined: the deconvolved signal does not vary (under the mask it is a constant")
    assert "nan" not in line


def test_a_chance_caution_of_a_nan_metric_says_undefined():
    from core.cli._common import metric_chance_caution

    caution = metric_chance_caution("regression", float("nan"), np.zeros(4), "test", "pearson_r", doing="x changes")
    assert caution.startswith("caution: the decoder's test pearson_r is undefined: the output does not vary")


# ---- 6. a weights file that is no PyTorch file -------------------------------------------
def test_import_of_a_text_file_says_it_is_no_state_dict(edf_like, tmp_path, capsys):
    text = tmp_path / "text.pt"
    text.write_text("hello\n")
    assert main(["import", str(text), "--data", str(edf_like), "--target", GAZE, "--out", str(tmp_path / "r")]) == 2
    err = one_line_error(capsys, "import")
    assert f"{str(text)!r} is not a PyTorch state dict file" in err and "it begins with 'hello\\n'" in err
    ws = Workspace.create(DataSpec(source=str(edf_like), target=GAZE), TrainConfig(model="shallow", n_times=700))
    with pytest.raises(UnitScopeError, match="is not a PyTorch state dict file"):
        ws.load_weights(text)


def test_a_band_passed_run_is_probed_in_its_pass_band(edf_like, tmp_path, capsys):
    """A run band-passed at 1-40 Hz was probed and labelled in 30-60 Hz and high gamma, which
    the filter had taken out of every window it was trained on: the probe's bands are cut to
    the pass-band (high gamma left out, low gamma 30-40 Hz), and it says so."""
    import xarray as xr

    from core.workspace import Workspace

    run = tmp_path / "filtered"
    assert main(["train", "--data", str(edf_like), "--target", "EyetrackerLeftEyeGazeX", "--picks", "C3,C4,Cz",
                 "--l-freq", "1", "--h-freq", "40", "--model", "shallow", "--epochs", "1", "--threads", "1",
                 "--out", str(run)]) == 0
    assert Workspace.load(run).probe_bands() == {"delta_theta": (1.0, 7.0), "alpha": (7.0, 13.0),
                                                 "beta": (13.0, 30.0), "low_gamma": (30.0, 40.0)}
    capsys.readouterr()
    assert main(["probe", str(run), "--iterations", "1", "--windows", "4", "--threads", "1"]) == 0
    assert "bands within the run's band-pass: delta_theta 1-7 Hz, alpha 7-13 Hz, beta 13-30 Hz, low_gamma 30-40 Hz" \
        in capsys.readouterr().err
    with xr.open_dataset(run / "probe.nc", engine="h5netcdf") as ds:
        assert list(ds["band"].values) == ["delta_theta", "alpha", "beta", "low_gamma"]
        assert float(ds["band_hi"].sel(band="low_gamma")) == 40.0


def test_a_run_not_band_passed_keeps_the_probes_bands(short_demo):
    from core.training import TrainConfig
    from core.workspace import DataSpec, Workspace

    ws = Workspace.create(DataSpec(duration=60.0), TrainConfig(model="shallow", max_epochs=1))
    assert ws.probe_bands() is None
