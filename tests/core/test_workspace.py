import numpy as np
import pytest

from core._validation import UnitScopeError
from core.training import TrainConfig
from core.workspace import DataSpec, Workspace


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    ws = Workspace.create(DataSpec(duration=60.0), TrainConfig(model="shallow", max_epochs=1, n_times=700))
    ws.train(run_dir=run)
    return ws, run


def test_eval_set_alignment_matches_the_target(trained):
    ws, _ = trained
    X, y = ws.eval_set("test")
    rf, n_preds = ws.data.receptive_field, ws.data.n_preds
    assert X.shape == (len(y), 32, 700) and y.shape[1] == n_preds == 700 - rf + 1
    start = ws.blocks["test"].start
    expected = (ws.recording.target.values[start + rf - 1: start + rf - 1 + n_preds] - ws.prep["target_mean"]) \
        / ws.prep["target_std"]
    np.testing.assert_allclose(y[0], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(X[0], ws.recording.signals.values[:, start:start + 700])


def test_save_load_round_trip(trained):
    ws, run = trained
    loaded = Workspace.load(run)
    assert loaded.evaluate("test") == pytest.approx(ws.evaluate("test"), abs=1e-6)
    assert loaded.metrics["test"] == pytest.approx(ws.metrics["test"])
    assert [l.name for l in loaded.layers] == ["conv_time_spat", "conv_classifier"]
    w = ws.windows("train")
    assert w.shape[1:] == (32, 700) and w.dtype == np.float32


def test_checkpoint_for_other_channels_is_rejected(trained, tmp_path):
    ws, run = trained
    import json
    import shutil

    other = tmp_path / "other"
    shutil.copytree(run, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["data"]["picks"] = [f"G{i:02d}" for i in range(1, 17)]
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnitScopeError, match="trained on 32 channels .* but the data have 16 channels"):
        Workspace.load(other)
    with pytest.raises(UnitScopeError, match="trained on 32 channels"):
        Workspace.load(run, spec=DataSpec(duration=60.0, picks=["G01", "G02"]))
    other_subject = Workspace.load(run, spec=DataSpec(duration=60.0, seed=5))
    assert other_subject.evaluate("test") != pytest.approx(ws.evaluate("test"))
    with pytest.raises(UnitScopeError, match="not a UnitScope run folder"):
        Workspace.load(tmp_path)


def test_bad_targets_and_short_recordings():
    with pytest.raises(UnitScopeError, match="Target channel 'G3' is not in the recording. Did you mean 'G\d\d'\? Channels: \['G01'"):
        Workspace.create(DataSpec(duration=60.0, target="G3"))
    with pytest.raises(UnitScopeError, match="The valid block has 1500 samples .* needs windows of n_times=2000 samples"):
        Workspace.create(DataSpec(duration=30.0), TrainConfig(n_times=2000))
    with pytest.raises(UnitScopeError, match="needs at least two event types"):
        Workspace.create(DataSpec(duration=60.0, target="events:movement_onset"), TrainConfig(model="shallow"))
    ws = Workspace.create(DataSpec(duration=60.0), TrainConfig(model="shallow", n_times=700))
    with pytest.raises(UnitScopeError, match="Unknown block 'tset'.*Did you mean 'test'"):
        ws.evaluate("tset")


def test_the_demo_retrains_with_the_shipped_decoders_recipe(tmp_path, monkeypatch):
    """Without the shipped run, Workspace.demo() trains the lesson's decoder as the shipped one
    was trained (its config.json), not with TrainConfig's defaults."""
    import json

    import core.workspace as workspace

    shipped = json.loads((workspace.ASSETS_DIR / "demo-deep4" / "config.json").read_text())["train"]
    assert TrainConfig(model="deep4", **workspace.DEMO_TRAIN["deep4"]).to_dict() == shipped
    assert TrainConfig(model="deep4").to_dict() != shipped  # the defaults are another recipe

    class Trained(Exception):
        pass

    def create(spec, config):
        raise Trained(config)

    monkeypatch.setattr(workspace, "ASSETS_DIR", tmp_path / "no-assets")
    monkeypatch.setattr(workspace.Workspace, "create", staticmethod(create))
    with pytest.raises(Trained) as got:
        workspace.Workspace.demo(cache_dir=tmp_path / "cache")
    assert got.value.args[0].to_dict() == shipped


def test_a_stim_channel_is_refused_as_a_continuous_target(tmp_path):
    """A stim channel holds trigger codes (steps from 0 to a code and back): decoding it as a
    trace is no decoding problem; the error points to its events as labels."""
    import mne

    rng = np.random.default_rng(0)
    data = rng.standard_normal((4, 250 * 60)) * 1e-5
    data[3] = 0.0
    for k, at in enumerate(range(500, 250 * 58, 700)):
        data[3, at:at + 5] = 1 + k % 2
    info = mne.create_info(["A", "B", "C", "STI"], 250.0, ["eeg", "eeg", "eeg", "stim"])
    mne.io.RawArray(data, info, verbose=False).save(tmp_path / "rec_raw.fif", verbose=False)
    with pytest.raises(UnitScopeError, match=r"Target channel 'STI' is a stim \(trigger\) channel: it holds event "
                                             r"codes.*--target events .*Events: \{'1': 10, '2': 10\}"):
        Workspace.create(DataSpec(source=str(tmp_path / "rec_raw.fif"), target="STI"),
                         TrainConfig(model="shallow", n_times=250))


@pytest.fixture(scope="module")
def label_run(tmp_path_factory):
    """A label decoder trained on T1 vs T2 of a small FIF holding T0, T1 and T2 events."""
    import mne

    folder = tmp_path_factory.mktemp("labels")
    rng = np.random.default_rng(3)
    raw = mne.io.RawArray(rng.standard_normal((3, 100 * 150)) * 1e-5,
                          mne.create_info(["C3", "C4", "Cz"], 100.0, "eeg"), verbose="error")
    onsets = np.arange(2.0, 140.0, 3.0)
    raw.set_annotations(mne.Annotations(onsets, 0.5, [f"T{k % 3}" for k in range(len(onsets))]))
    raw.save(folder / "labels_raw.fif", verbose="error")
    spec = DataSpec(source=folder / "labels_raw.fif", target="events:T1,T2", tmax=2.0)  # a Path, as Python gives it
    ws = Workspace.create(spec, TrainConfig(model="shallow", max_epochs=np.int64(1)))  # a numpy int, as well
    ws.train(run_dir=folder / "run")
    return ws, folder


def test_a_run_refuses_data_it_was_not_trained_to_decode(trained, label_run, tmp_path):
    """Opened with another DataSpec, a run refuses data its decoder would read otherwise than it
    was trained to: another task, sampling rate, trial window or classes (a T1/T2 decoder on
    T0/T1 scored output 0 as T0; on every type, 3 classes for 2 outputs). Other data it
    decodes as trained still open: labels written with capitals and spaces name the same."""
    import json

    _, run = trained
    with pytest.raises(UnitScopeError, match="was trained on data at 250 Hz; these data are at 125 Hz. Resample"):
        Workspace.load(run, spec=DataSpec(duration=60.0, sfreq=125.0))
    with pytest.raises(UnitScopeError, match="was trained for regression .*; target 'events' gives classification"):
        Workspace.load(run, spec=DataSpec(duration=60.0, target="events"))
    ws, folder = label_run
    run, source = folder / "run", str(folder / "labels_raw.fif")
    assert json.loads((run / "config.json").read_text())["classes"] == ["T1", "T2"]
    for target in ("events:T0,T1", "events"):
        with pytest.raises(UnitScopeError, match="trained on the classes T1, T2 .*; these data give T0, T1"):
            Workspace.load(run, spec=DataSpec(source=source, target=target, tmax=2.0))
    with pytest.raises(UnitScopeError, match=r"takes trials of 200 samples \(2 s\); tmin 0 s to tmax 1 s gives 100"):
        Workspace.load(run, spec=DataSpec(source=source, target="events:T1,T2", tmax=1.0))
    same = Workspace.load(run, spec=DataSpec(source=source, target="Events: T2, T1", tmax=2.0))
    assert same.data.classes == ["T1", "T2"] and same.evaluate("test") == pytest.approx(ws.evaluate("test"))
    cfg = json.loads((run / "config.json").read_text())  # a run saved before the classes were kept
    del cfg["classes"]
    (run / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnitScopeError, match="trained on the classes T1, T2"):  # from its target
        Workspace.load(run, spec=DataSpec(source=source, target="events:T0,T1", tmax=2.0))


def test_python_values_are_written_as_json_and_train_again(label_run):
    """A ``pathlib.Path`` source and numpy numbers in the options are written as JSON a run
    reopens with: the Path trained, then failed at saving (no config.json, the training lost);
    ``np.int64(1)`` epochs were written 1.0, which could not be trained again."""
    import json

    ws, folder = label_run
    cfg = json.loads((folder / "run" / "config.json").read_text())
    assert cfg["data"]["source"] == str(folder / "labels_raw.fif") and cfg["train"]["max_epochs"] == 1
    assert isinstance(cfg["train"]["max_epochs"], int)
    again = Workspace.load(folder / "run")
    again.train()  # the options validate again
    assert len(again.history) == 1


def test_data_specs_read_what_python_callers_give():
    spec = DataSpec(picks="C3", target=" Events: T1 ,T2 ")
    assert spec.picks == ["C3"] and spec.target == "events:T1,T2"  # one channel, not ['C', '3']
    assert DataSpec(target="events").target == "events" and DataSpec(target=" C3 ").target == "C3"
    with pytest.raises(UnitScopeError, match="target 'events: ' names no event type"):
        DataSpec(target="events: ")
    with pytest.raises(UnitScopeError, match=r"'lr' must be a number, got '1e-3' \(str\)"):
        TrainConfig(lr="1e-3").validate()


def test_a_band_pass_is_causal_unless_a_run_was_filtered_before_the_choice_existed():
    import argparse

    from core.cli.train import add_data_args, data_spec

    assert DataSpec(l_freq=1.0).filter_phase == "causal"
    # a run's config.json from before filter_phase: it was filtered at zero phase, and is read so
    assert DataSpec.from_record({"source": "demo", "l_freq": 1.0, "h_freq": 40.0}).filter_phase == "zero"
    assert DataSpec.from_record({"source": "demo"}).filter_phase == "causal"
    assert DataSpec.from_record(DataSpec(l_freq=1.0).to_dict()).filter_phase == "causal"
    assert DataSpec.from_dict({"source": "demo", "l_freq": 1.0}).filter_phase == "causal"  # a Python caller's
    with pytest.raises(UnitScopeError, match="'filter_phase' parameter"):
        DataSpec(filter_phase="minimum")
    parser = argparse.ArgumentParser()
    add_data_args(parser)
    assert data_spec(parser.parse_args(["--l-freq", "1"])).filter_phase == "causal"  # a new training
    assert data_spec(parser.parse_args(["--l-freq", "1", "--filter-phase", "zero"])).filter_phase == "zero"
    old_run = {"source": "demo", "l_freq": 1.0}  # resumed or imported over an old run's data: as it was
    assert data_spec(parser.parse_args([]), base=old_run).filter_phase == "zero"
    assert data_spec(parser.parse_args([]), base={"source": "demo"}).filter_phase == "causal"


def test_a_channel_picked_twice_is_refused_and_named_twice_for_occlusion_taken_once():
    """``--picks Fz,Fz,Cz`` made a decoder with Fz twice among its inputs: deconv of its
    channel:Fz envelope then crashed ("different number of dimensions"), and occlude said
    "without 60-90 Hz of G03,G03"."""
    from core.cli._common import resolve_channels

    with pytest.raises(UnitScopeError, match=r"Channels picked more than once: \['G01'\]; pick each input channel "
                                             r"once \(picks given: \['G01', 'G02', 'G01'\]\)"):
        Workspace.create(DataSpec(duration=60.0, picks=["G01", "G02", "G01"]), TrainConfig(max_epochs=1))
    assert resolve_channels(["G03", "g03", "G04"], ["G03", "G04", "G05"]) == ["G03", "G04"]


def test_a_run_trained_from_python_keeps_what_its_cautions_rest_on(label_run, capsys):
    """``Workspace.train`` records the trials its metrics rest on (per class too), as ``unitscope
    train`` did alone: ``unitscope info`` of a run trained from Python said nothing of a test
    block of a handful of trials, or of one class."""
    from core.cli import main

    ws, folder = label_run
    m = ws.metrics
    _, y = ws.eval_set("test")
    assert m["n_test"] == len(y) < 20 and m["count_of"] == "trials" and m["n_test_classes"] == len(set(y.tolist()))
    assert sum(n for _, n in m["test_per_class"].values()) == len(y)
    assert main(["info", str(folder / "run")]) == 0
    out = capsys.readouterr().out
    assert f"on {len(y)} trials" in out and f"rests on {len(y)} trial(s) only" in out


def test_a_save_the_disk_cannot_take_leaves_the_run_as_it_was(trained, tmp_path):
    """A full disk (the OS refusing writes past 64 kB here: RLIMIT_FSIZE) while a run is saved
    over: config.json had been removed before model.pt was written, so the failed save left a
    folder that was no run."""
    import resource
    import signal

    ws, _ = trained
    run = ws.save(tmp_path / "run")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert len(before["model.pt"]) > 64 * 1024
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))
    try:
        with pytest.raises(OSError):
            ws.save(run)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # (no temporary file left either)
    assert Workspace.load(run).model is not None


def test_a_save_whose_model_rename_fails_leaves_the_run_as_it_was(trained, tmp_path, monkeypatch):
    """model.pt's rename refused (a read-only remount, a file held open elsewhere): config.json
    had been removed already, and the folder was no run."""
    import os as _os

    ws, _ = trained
    run = ws.save(tmp_path / "run")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    real = _os.replace

    def refuse_model(src, dst):
        if str(dst).endswith("model.pt"):
            raise PermissionError(13, "Permission denied", str(dst))
        return real(src, dst)

    monkeypatch.setattr(_os, "replace", refuse_model)
    with pytest.raises(PermissionError):
        ws.save(run)
    monkeypatch.setattr(_os, "replace", real)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_trials_too_short_for_the_network_name_the_trial_window(label_run):
    """A label decoder's input is the trial window at the recording's rate: too short, the
    error says so in those terms (it had named n_times, an option for continuous targets)."""
    _, folder = label_run
    spec = DataSpec(source=folder / "labels_raw.fif", target="events:T1,T2", tmax=1.0)
    with pytest.raises(UnitScopeError) as info:
        Workspace.create(spec, TrainConfig(model="deep4"))
    text = str(info.value)
    assert text.startswith("Trials from tmin=0 s to tmax=1 s at 100 Hz are 100 samples, shorter than the deep4 "
                           "network needs (441 samples, 4.41 s at 100 Hz): lengthen the trial window (--tmin/--tmax).")
    assert "n_times" not in text and "--sfreq" not in text  # (not resampled: a higher rate would be made up)
    with pytest.raises(UnitScopeError, match=r"are 100 samples, .* or resample less \(--sfreq\)\.$"):
        Workspace.create(DataSpec(source=folder / "labels_raw.fif", target="events:T1,T2", tmax=2.0, sfreq=50.0),
                         TrainConfig(model="deep4"))


def test_a_recording_resampled_up_holds_nothing_above_its_own_nyquist(label_run):
    """A 100 Hz recording trained at sfreq=200 holds nothing above 50 Hz: the probe's bands stop
    there (high gamma had been probed in 60-100 Hz of resampling leftovers), and a band above
    it is said to be one the recording never held."""
    from core.cautions import passband_note

    _, folder = label_run
    spec = DataSpec(source=folder / "labels_raw.fif", target="events:T1,T2", tmax=2.0, sfreq=200.0)
    ws = Workspace.create(spec, TrainConfig(model="shallow"))
    assert ws.recording.sfreq == 200.0 and ws.native_sfreq() == 100.0 and ws.input_band() == (None, 50.0)
    bands = ws.probe_bands()
    assert "high_gamma" not in bands and bands["low_gamma"] == (30.0, 50.0) and bands["beta"] == (13.0, 30.0)
    note = passband_note((60.0, 90.0), None, None, native_sfreq=100.0)
    assert note == ("the band 60-90 Hz lies outside the band the recording holds (below 50 Hz: it was sampled at "
                    "100 Hz and resampled up for this run): the recording never held it, and what is there was "
                    "made by the resampling: it measures nothing")
    assert passband_note((20.0, 60.0), 8.0, 30.0, native_sfreq=100.0).endswith("the rest was filtered out")  # 30 < 50
    assert passband_note((40.0, 60.0), None, 80.0, native_sfreq=100.0).endswith("the rest was never recorded")
    # with a high-pass edge too: what lies below it was filtered, not unrecorded
    assert passband_note((1.0, 60.0), 8.0, None, native_sfreq=100.0).endswith("the rest was filtered out or never "
                                                                              "recorded")
    assert passband_note((1.0, 4.0), 8.0, None, native_sfreq=100.0).startswith(
        "the band 1-4 Hz lies outside this run's band-pass (8-50 Hz): the filter removed it")
    same = Workspace.create(DataSpec(source=folder / "labels_raw.fif", target="events:T1,T2", tmax=2.0, sfreq=50.0),
                            TrainConfig(model="shallow"))
    assert same.native_sfreq() is None and same.input_band() == (None, None) and same.probe_bands() is None
