"""Loading real recordings (../shared/data; skipped where absent) and bad files."""
import re

import numpy as np
import pytest

from core._validation import UnitScopeError
from core.io import read_bci2000, read_recording
from core.training import TrainConfig
from core.workspace import DataSpec, Workspace

EDF = "eeg_motor_eegmmidb/test_edf_overlapping_annotations.edf"
BCI = "bci2000_samplefiles/eeg3_1.dat"
FIF = "meg_elekta_triux_3ch/test_elekta_3ch_raw.fif"


def test_edf_with_annotations(shared_data):
    rec = read_recording(shared_data / EDF)
    assert rec.n_chans == 64 and rec.sfreq == 128.0
    assert rec.duration == pytest.approx(124.0)
    assert rec.events.counts() == {"T0": 19, "T1": 10, "T2": 9}


def test_edf_without_positions_gets_the_standard_montage_by_channel_name(shared_data):
    """EEGMMIDB's names ('Fc5.', 'C3..') are 10-05 positions: the channels are drawn on the head."""
    sig = read_recording(shared_data / EDF).signals
    assert sig.attrs["positions"] == "standard 10-05 montage, by channel name"
    x = dict(zip(sig["channel"].values, sig["x"].values))
    y = dict(zip(sig["channel"].values, sig["y"].values))
    assert x["C3.."] < 0 < x["C4.."] and abs(x["Cz.."]) < 1e-3  # left, right, midline
    assert y["Fpz."] > y["Cz.."] > y["Oz.."]  # front to back


def test_standard_positions_only_for_eeg_named_by_the_montage(tmp_path):
    import mne

    from core.io import recording_from_raw, standard_positions

    pos = standard_positions(["C3", "cz", "speed"], ["eeg", "eeg", "misc"])
    assert np.isfinite(pos[:2]).all() and np.isnan(pos[2]).all() and pos[0, 0] < 0
    assert standard_positions(["C3", "E17"], ["eeg", "eeg"]) is None  # one unknown name: none at all
    assert standard_positions(["MEG0113"], ["grad"]) is None
    info = mne.create_info(["C3", "C4", "Cz"], 100.0, "eeg")
    raw = mne.io.RawArray(np.zeros((3, 200)), info, verbose="error")
    assert recording_from_raw(raw).signals.attrs["positions"] == "standard 10-05 montage, by channel name"
    raw.set_montage(mne.channels.make_dig_montage(
        {"C3": [-0.05, 0.0, 0.05], "C4": [0.05, 0.0, 0.05], "Cz": [0.0, 0.0, 0.09]}, coord_frame="head"))
    sig = recording_from_raw(raw).signals
    assert sig.attrs["positions"] == "from the file" and sig["x"].values[0] == pytest.approx(-0.05)
    odd = mne.io.RawArray(np.zeros((2, 200)), mne.create_info(["A1x", "B2x"], 100.0, "eeg"), verbose="error")
    sig = recording_from_raw(odd).signals
    assert sig.attrs["positions"] == "none" and "x" not in sig.coords


def test_edf_label_target_trains_a_trialwise_decoder(shared_data):
    spec = DataSpec(source=str(shared_data / EDF), target="events:T1,T2", tmin=0.0, tmax=4.0)
    ws = Workspace.create(spec, TrainConfig(model="shallow", max_epochs=2))
    assert ws.task == "classification" and ws.data.classes == ["T1", "T2"]
    X, y = ws.eval_set("test")
    assert X.shape[1:] == (64, 512) and set(y.tolist()) <= {0, 1}
    ws.train()
    assert 0.0 <= ws.metrics["test"] <= 1.0


def test_bci2000_gaze_states_are_read_in_microvolts(shared_data):
    eeg, states, sfreq, names = read_bci2000(shared_data / BCI)
    assert eeg.shape[1] == 8 and sfreq == 256.0
    assert "EyetrackerLeftEyeGazeX" in states and len(states["StimulusCode"]) == eeg.shape[0]
    assert 1.0 < np.median(np.abs(eeg - np.median(eeg, 0))) < 1000.0  # microvolts, not A/D counts
    rec = read_recording(shared_data / BCI)
    assert "EyetrackerLeftEyeGazeX" in rec.ch_names
    assert rec.signals.sel(channel="EyetrackerLeftEyeGazeX").ch_type.item() == "misc"


def test_bci2000_gaze_as_continuous_target(shared_data):
    spec = DataSpec(source=str(shared_data / BCI), target="EyetrackerLeftEyeGazeX")
    ws = Workspace.create(spec, TrainConfig(model="shallow", max_epochs=1, n_times=700))
    assert ws.task == "regression" and ws.recording.n_chans == 8  # EEG only; states are not inputs
    assert "EyetrackerLeftEyeGazeX" not in ws.recording.ch_names
    ws.train()
    assert np.isfinite(ws.metrics["test"])


def test_bci2000_eeg_named_by_10_05_positions_is_placed_on_the_standard_head(shared_data):
    """eeg3's EEG channels are named Fz, Cz, P3, ... (no positions in the file): placed as the
    EDF reader places EEGMMIDB's (it said "positions none"); the misc states stay unplaced."""
    rec = read_recording(shared_data / BCI)
    sig = rec.signals
    assert sig.attrs["positions"] == "standard 10-05 montage, by channel name"
    eeg = [i for i, t in enumerate(rec.ch_types) if t == "eeg"]
    assert np.isfinite(sig["x"].values[eeg]).all() and np.isnan(sig["x"].values[len(eeg):]).all()
    cz, fz = (rec.ch_names.index(n) for n in ("Cz", "Fz"))
    assert sig["y"].values[fz] > sig["y"].values[cz]  # Fz lies in front of Cz


def test_fif_meg_events_as_labels(shared_data):
    rec = read_recording(shared_data / FIF)
    assert set(rec.ch_types) == {"mag", "grad", "stim"} and len(rec.events) == 162
    spec = DataSpec(source=str(shared_data / FIF), target="events:1,2", tmin=0.0, tmax=0.6, sfreq=250.0)
    ws = Workspace.create(spec, TrainConfig(model="shallow", max_epochs=1))
    assert ws.recording.ch_types == ["mag", "grad", "grad"]
    assert ws.data.X.shape[1:] == (3, 150)


def test_what_a_label_trial_holds_is_counted_around_the_target_events(shared_data):
    """EEGMMIDB's events are 1.4 s apart (median, T0 rest periods included), but a T1/T2 trial of
    4 s holds no other event: the next one (a T0) comes 5.1 s after each onset. The caution
    about trials holding other events was raised from the median spacing of all events."""
    from core.cautions import trial_overlap_note

    ev = read_recording(shared_data / EDF).events
    assert ev.median_spacing() < 2.0
    assert ev.others_in_trials(["T1", "T2"], 0.0, 4.0) == 0 and trial_overlap_note(ev, ["T1", "T2"], 0.0, 4.0) == ""
    assert ev.others_in_trials(["T1", "T2"], 0.0, 6.0) == 1  # to 6 s: the T0 after each
    assert trial_overlap_note(ev, ["T1", "T2"], -2.0, 4.0) == ("trials of 6 s (-2 to 4 s from their events) also "
                                                              "hold 1 other event each (median)")  # the T0 before


def test_fif_meg_with_stretches_marked_bad_keeps_its_trigger_events(shared_data, tmp_path):
    """Artefacts marked as BAD annotations (routine in MEG) are not events: a file whose only
    annotations are such marks still has its trigger channel's events (it had none)."""
    import mne

    raw = mne.io.read_raw_fif(shared_data / FIF, preload=True, verbose="error")
    raw.set_annotations(mne.Annotations([10.0, 30.0], [2.0, 1.0], ["BAD_seg", "BAD_seg"],
                                        orig_time=raw.annotations.orig_time))
    raw.save(tmp_path / "marked_raw.fif", verbose="error")
    rec = read_recording(tmp_path / "marked_raw.fif")
    assert len(rec.events) == 162 and rec.events.counts() == read_recording(shared_data / FIF).events.counts()
    t0 = raw.first_time  # (onsets with an orig_time count from the measurement's start)
    np.testing.assert_allclose([(o, d) for o, d, _ in rec.bad_segments], [(10.0 - t0, 2.0), (30.0 - t0, 1.0)])


def test_bids_folder(shared_data, tmp_path):
    mne = pytest.importorskip("mne")
    mne_bids = pytest.importorskip("mne_bids")
    raw = mne.io.read_raw_edf(shared_data / EDF, preload=False, verbose="error")
    path = mne_bids.BIDSPath(subject="01", task="motor", root=tmp_path / "bids")
    mne_bids.write_raw_bids(raw, path, verbose="error", allow_preload=False, overwrite=True)
    rec = read_recording(tmp_path / "bids", bids={"subject": "01"})
    assert rec.n_chans == 64 and rec.events.counts()["T1"] == 10
    with pytest.raises(UnitScopeError, match="No EEG/iEEG/MEG recording matching"):
        read_recording(tmp_path / "bids", bids={"subject": "99"})


def test_missing_corrupt_and_unsupported_files(tmp_path):
    with pytest.raises(UnitScopeError, match="does not exist"):
        read_recording(tmp_path / "nope.edf")
    bad = tmp_path / "broken.edf"
    bad.write_bytes(b"0" * 300)
    with pytest.raises(UnitScopeError, match="broken.edf"):
        read_recording(bad)
    odd = tmp_path / "notes.xyz"
    odd.write_text("hello")
    with pytest.raises(UnitScopeError, match="notes.xyz"):
        read_recording(odd)
    (tmp_path / "folder").mkdir()
    with pytest.raises(UnitScopeError, match="not a BIDS root"):
        read_recording(tmp_path / "folder")
    (tmp_path / "meg.ds").mkdir()  # a CTF recording is a folder: MNE's reader is asked, and says what is missing
    (tmp_path / "meg.ds" / "meg.meg4").write_bytes(b"junk")
    with pytest.raises(UnitScopeError, match=r"Cannot read .*meg\.ds' \(OSError: Standard file .*meg\.res4 not found"):
        read_recording(tmp_path / "meg.ds")
    dat = tmp_path / "bad.dat"
    dat.write_bytes(b"garbage\nmore")
    with pytest.raises(UnitScopeError, match="not a readable BCI2000"):
        read_recording(dat)


def test_deconv_of_a_trialwise_run_takes_channel_envelopes_only(shared_data, tmp_path, capsys):
    """A decoder of trials has no output time course to deconvolve, but a channel's band
    envelope is the input: ``unitscope deconv --signal channel:...`` works for its run."""
    import xarray as xr

    from core.cli import main

    spec = DataSpec(source=str(shared_data / EDF), target="events:T1,T2", tmin=0.0, tmax=4.0)
    run = Workspace.create(spec, TrainConfig(model="shallow", max_epochs=1)).save(tmp_path / "run")
    out = tmp_path / "c3.nc"
    assert main(["deconv", str(run), "--signal", "channel:C3..:8-13", "--epochs", "2", "--block", "all",
                 "--out", str(out)]) == 0
    assert "kernel T1:" in capsys.readouterr().out
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert list(ds["kernel"].values) == ["T0", "T1", "T2"] and ds.attrs["signal"] == "channel:C3..:8-13"
    assert main(["deconv", str(run), "--signal", "output"]) == 2
    err = capsys.readouterr().err
    assert "Deconvolving the output needs a dense decoder" in err and "--signal channel:NAME:BAND" in err


def _small_raw(seconds=20.0, sfreq=100.0):
    """Three EEG channels with two kinds of annotated events (an MNE Raw)."""
    import mne

    rng = np.random.default_rng(0)
    raw = mne.io.RawArray(rng.standard_normal((3, int(seconds * sfreq))) * 1e-5,
                          mne.create_info(["C3", "C4", "Cz"], sfreq, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations([2.0, 5.0, 9.0], [0.5, 0.5, 0.5], ["left", "right", "left"]))
    return raw


def _eeglab_with_fdt(raw, path):
    """Write ``raw`` as an EEGLAB .set that keeps its data in a .fdt (EEGLAB's two-file save)."""
    import mne
    import scipy.io

    embedded = path.with_name("embedded.set")
    mne.export.export_raw(embedded, raw, fmt="eeglab", verbose="error")
    mat = {k: v for k, v in scipy.io.loadmat(embedded).items() if not k.startswith("__")}
    data = np.asarray(mat["data"], dtype=np.float32)  # (channels, samples)
    data.T.tofile(path.with_suffix(".fdt"))  # samples of all channels, one after another
    mat["data"] = path.with_suffix(".fdt").name
    scipy.io.savemat(path, mat)
    embedded.unlink()


def test_brainvision_and_eeglab_files(tmp_path):
    """BrainVision (header, markers, data) and EEGLAB (data embedded or in a .fdt) read to the
    same signals and events; a missing data file is one clear error naming it."""
    pytest.importorskip("pybv")
    pytest.importorskip("eeglabio")
    import mne

    from core.io import missing_companions

    raw = _small_raw()
    mne.export.export_raw(tmp_path / "bv.vhdr", raw, fmt="brainvision", verbose="error")
    mne.export.export_raw(tmp_path / "one.set", raw, fmt="eeglab", verbose="error")
    _eeglab_with_fdt(raw, tmp_path / "two.set")
    want = raw.get_data()
    for name in ("bv.vhdr", "one.set", "two.set"):
        rec = read_recording(tmp_path / name)
        assert rec.ch_names == ["C3", "C4", "Cz"] and rec.sfreq == 100.0
        np.testing.assert_allclose(rec.signals.values, want, rtol=1e-5, atol=1e-10)
        kinds = {k.split("/")[-1]: v for k, v in rec.events.counts().items()}  # BrainVision: 'Comment/left'
        assert kinds == {"left": 2, "right": 1}, name
        np.testing.assert_allclose(np.sort(rec.events.onset), [2.0, 5.0, 9.0], atol=0.011)
    assert missing_companions(tmp_path / "bv.vhdr") == {"required": [], "optional": []}
    assert missing_companions(tmp_path / "one.set") == {"required": [], "optional": []}

    (tmp_path / "two.fdt").unlink()
    assert missing_companions(tmp_path / "two.set")["required"] == ["two.fdt"]
    with pytest.raises(UnitScopeError, match=r"'two.set' keeps its data in another file.*two\.fdt"):
        read_recording(tmp_path / "two.set")
    (tmp_path / "bv.vmrk").unlink()  # markers missing: the signals are read, without events
    assert missing_companions(tmp_path / "bv.vhdr") == {"required": [], "optional": ["bv.vmrk"]}
    assert read_recording(tmp_path / "bv.vhdr").events.counts() == {}
    (tmp_path / "bv.eeg").unlink()
    with pytest.raises(UnitScopeError, match=r"'bv.vhdr' keeps its data in another file.*bv\.eeg"):
        read_recording(tmp_path / "bv.vhdr")


@pytest.mark.parametrize("line", ["DataFile=/etc/hostname", "DataFile: /etc/hostname", "DataFile=../outside/x.eeg",
                                  "MarkerFile=../x.vmrk"])
def test_a_header_naming_a_file_elsewhere_is_refused_before_it_is_read(tmp_path, line):
    """Security: MNE joins a BrainVision header's DataFile onto the header's folder, so an
    uploaded header naming /etc/... or ../.. read a file of the server's (the bytes came back
    as samples). A header's files are read beside it, by file name alone."""
    pytest.importorskip("pybv")
    import mne

    mne.export.export_raw(tmp_path / "bv.vhdr", _small_raw(), fmt="brainvision", verbose="error")
    key = line.split("=")[0].split(":")[0]
    text = (tmp_path / "bv.vhdr").read_text(encoding="latin1")
    text = re.sub(rf"^{key}=.*$", line.replace("\\", "\\\\"), text, flags=re.M)
    (tmp_path / "bv.vhdr").write_text(text, encoding="latin1")
    with pytest.raises(UnitScopeError, match=rf"'bv.vhdr' names its {key} as .*, outside its own folder"):
        read_recording(tmp_path / "bv.vhdr")


def test_a_header_hiding_a_path_in_its_codepage_or_a_windows_path_is_read_as_mne_reads_it(tmp_path):
    """Codepage=UTF-7 made "..+AC8-outside+AC8-x.eeg" read as ../outside/x.eeg by MNE, while a
    latin-1 reading saw one file name; a Windows path of a marker file is one (missing) name
    here, and MNE falls back to the .vmrk beside the header: read, not refused."""
    pytest.importorskip("pybv")
    import mne

    mne.export.export_raw(tmp_path / "bv.vhdr", _small_raw(), fmt="brainvision", verbose="error")
    text = (tmp_path / "bv.vhdr").read_text(encoding="latin1")
    (tmp_path / "..+AC8-outside+AC8-x.eeg").write_bytes((tmp_path / "bv.eeg").read_bytes())  # a decoy beside it
    hidden = re.sub(r"^Codepage=.*$", "Codepage=UTF-7", text, flags=re.M)
    hidden = re.sub(r"^DataFile=.*$", "DataFile=..+AC8-outside+AC8-x.eeg", hidden, flags=re.M)
    hidden = "".join(c for c in hidden if ord(c) < 128)  # (UTF-7 text holds no byte above 127: "µV" left out)
    (tmp_path / "hidden.vhdr").write_text(hidden, encoding="latin1")
    with pytest.raises(UnitScopeError, match=r"'hidden.vhdr' names its DataFile as '../outside/x.eeg', outside"):
        read_recording(tmp_path / "hidden.vhdr")
    windows = re.sub(r"^MarkerFile=.*$", r"MarkerFile=C:\\Vision\\Raw Files\\bv.vmrk", text, flags=re.M)
    (tmp_path / "bv.vhdr").write_text(windows, encoding="latin1")
    assert read_recording(tmp_path / "bv.vhdr").events.counts()  # (its own bv.vmrk beside it)


def test_a_bids_folders_header_naming_a_file_elsewhere_is_refused(bids_study, tmp_path):
    """A BIDS folder (a .zip of one, uploaded) went straight to mne_bids, past the check."""
    header = next(bids_study.glob("sub-01/eeg/*.vhdr"))
    (tmp_path / "secret.eeg").write_bytes((header.with_suffix(".eeg")).read_bytes())
    text = header.read_text(encoding="latin1")
    header.write_text(re.sub(r"^DataFile=.*$", "DataFile=../../../secret.eeg", text, flags=re.M), encoding="latin1")
    with pytest.raises(UnitScopeError, match=r"names its DataFile as '../../../secret.eeg', outside its own folder"):
        read_recording(bids_study, bids="subject=01")


def test_an_eeglab_set_naming_a_data_file_elsewhere_is_refused(tmp_path):
    """Security: MNE reads EEG.data's path first, wherever it leads, even with the set's own
    .fdt beside it."""
    pytest.importorskip("eeglabio")
    import scipy.io

    _eeglab_with_fdt(_small_raw(), tmp_path / "two.set")
    mat = {k: v for k, v in scipy.io.loadmat(tmp_path / "two.set").items() if not k.startswith("__")}
    mat["data"] = "/etc/hostname"
    scipy.io.savemat(tmp_path / "two.set", mat)
    with pytest.raises(UnitScopeError, match=r"'two.set' names its data file \(EEG.data\) as '/etc/hostname', outside"):
        read_recording(tmp_path / "two.set")
    mat["data"] = "two.fdt"  # an EEG struct inside EEG, as MNE unwraps it, naming a file elsewhere
    scipy.io.savemat(tmp_path / "nested.set", {"EEG": {"EEG": {**mat, "data": "../other/rec.fdt"}}})
    with pytest.raises(UnitScopeError, match=r"'nested.set' names its data file .* '../other/rec.fdt', outside"):
        read_recording(tmp_path / "nested.set")


def test_bids_recordings_are_listed_and_chosen_by_their_entities(bids_study, caplog):
    from core.io import bids_recordings, parse_bids

    found = bids_recordings(bids_study)
    assert [r["label"] for r in found] == ["sub-01_task-reach_run-1 (eeg)", "sub-02_task-reach_run-1 (eeg)",
                                           "sub-02_task-reach_run-2 (eeg)"]
    assert found[2]["entities"] == {"subject": "02", "task": "reach", "run": "2", "datatype": "eeg"}
    assert found[0]["path"] == "sub-01/eeg/sub-01_task-reach_run-1_eeg.vhdr"
    assert parse_bids("subject=02, run=2") == parse_bids("sub-02_run-2") == {"subject": "02", "run": "2"}
    assert parse_bids(None) == parse_bids("") == {}
    assert [r["label"] for r in bids_recordings(bids_study, "sub-02")][1] == "sub-02_task-reach_run-2 (eeg)"

    def first_c3(rec):
        return round(float(rec.signals.sel(channel="C3").values[0]) / 1e-5)

    assert first_c3(read_recording(bids_study, bids="sub-02_run-2")) == 22
    assert first_c3(read_recording(bids_study, bids={"subject": "02", "run": "1"})) == 21
    assert read_recording(bids_study, bids="run-2").events.counts() == {"left": 14, "right": 14}
    with caplog.at_level("WARNING", logger="core.io"):
        assert first_c3(read_recording(bids_study, bids="subject=02")) == 21  # two match: the first, said
    assert "2 recordings in" in caplog.text and "sub-02_task-reach_run-1_eeg" in caplog.text
    with pytest.raises(UnitScopeError, match=r"Unknown BIDS entity 'subj'.*use subject, session, task"):
        parse_bids("subj=01")
    with pytest.raises(UnitScopeError, match="Cannot read the BIDS choice 'sub01'"):
        parse_bids("sub01")
    with pytest.raises(UnitScopeError, match=r"No EEG/iEEG/MEG recording matching \{'subject': '03'\}.*it holds "
                                             r"sub-01_task-reach_run-1 \(eeg\), sub-02"):
        read_recording(bids_study, bids="sub-03")


def test_channels_marked_bad_are_kept_but_left_out_of_the_inputs(tmp_path, capsys, monkeypatch):
    """A FIF's info['bads'] (and a BIDS channels.tsv's status) marks channels bad: they are
    read and named, left out of the default inputs, used when picked by name; a run trained
    before a channel was marked reopens on the channels it was trained on (the file read once),
    even when every one of them is marked bad since."""
    import mne

    import core.dataset as dataset
    from core.cli import main
    from core.workspace import DataSpec, Workspace, load_data

    rng = np.random.default_rng(0)
    names = ["C3", "C4", "Cz", "Pz", "speed"]
    data = rng.standard_normal((5, 100 * 60)) * 1e-5
    raw = mne.io.RawArray(data, mne.create_info(names, 100.0, ["eeg"] * 4 + ["misc"]), verbose="error")
    raw.save(tmp_path / "ok_raw.fif", verbose="error")
    run = tmp_path / "run"
    ws = Workspace.create(DataSpec(source=str(tmp_path / "ok_raw.fif"), target="speed"),
                          TrainConfig(model="shallow", max_epochs=1))
    ws.train(run_dir=run)
    raw.info["bads"] = ["C4", "Pz"]
    raw.save(tmp_path / "ok_raw.fif", overwrite=True, verbose="error")

    rec = read_recording(tmp_path / "ok_raw.fif")
    assert rec.bads == ["C4", "Pz"] and rec.summary()["bads"] == ["C4", "Pz"] and rec.n_chans == 5
    assert load_data(DataSpec(source=str(tmp_path / "ok_raw.fif"), target="speed"))[0].ch_names == ["C3", "Cz"]
    with pytest.raises(TypeError, match="n_times"):  # taken and ignored before: the window is the decoder's
        load_data(DataSpec(source=str(tmp_path / "ok_raw.fif"), target="speed"), n_times=100)
    picked = load_data(DataSpec(source=str(tmp_path / "ok_raw.fif"), target="speed", picks=["C3", "C4"]))[0]
    assert picked.ch_names == ["C3", "C4"] and picked.bads == ["C4"]
    reads = []
    read = dataset.read_recording
    monkeypatch.setattr(dataset, "read_recording", lambda *a, **k: reads.append(a) or read(*a, **k))
    reopened = Workspace.load(run)
    assert reopened.recording.ch_names == ["C3", "C4", "Cz", "Pz"] and len(reads) == 1  # as trained, read once
    assert reopened.spec.picks == ["C3", "C4", "Cz", "Pz"]
    assert Workspace.load(run, spec=DataSpec(source=str(tmp_path / "ok_raw.fif"), target="speed",
                                             picks=["C3", "C4", "Cz", "Pz"])).spec.picks == ["C3", "C4", "Cz", "Pz"]
    monkeypatch.undo()
    assert main(["info", str(tmp_path / "ok_raw.fif")]) == 0
    assert "bads       2 marked in the file: C4, Pz (left out of the inputs" in capsys.readouterr().out

    raw.info["bads"] = ["C3", "C4", "Cz", "Pz"]
    raw.save(tmp_path / "all_raw.fif", verbose="error")
    with pytest.raises(UnitScopeError, match=r"Every EEG/iEEG/MEG channel is marked bad in the file \(\['C3'"):
        load_data(DataSpec(source=str(tmp_path / "all_raw.fif"), target="speed"))
    raw.save(tmp_path / "ok_raw.fif", overwrite=True, verbose="error")  # the run's file, every channel marked
    assert Workspace.load(run).recording.ch_names == ["C3", "C4", "Cz", "Pz"]


def test_bids_channel_status_marks_channels_bad(tmp_path):
    mne_bids = pytest.importorskip("mne_bids")
    pytest.importorskip("pybv")
    import mne

    raw = mne.io.RawArray(np.random.default_rng(0).standard_normal((3, 3000)) * 1e-5,
                          mne.create_info(["C3", "C4", "Cz"], 100.0, "eeg"), verbose="error")
    raw.info["bads"] = ["Cz"]
    mne_bids.write_raw_bids(raw, mne_bids.BIDSPath(subject="01", task="rest", root=tmp_path / "b"),
                            format="BrainVision", allow_preload=True, verbose="error")
    assert "\tbad" in next((tmp_path / "b").rglob("*_channels.tsv")).read_text()
    assert read_recording(tmp_path / "b").bads == ["Cz"]


def test_info_offers_label_targets_of_two_or_more_event_types(shared_data, capsys):
    from core.cli import main

    assert main(["info", str(shared_data / EDF)]) == 0
    assert "labels     --target events | events:T0,T1 | events:T0,T2 | events:T1,T2\n" in capsys.readouterr().out


def test_stretches_marked_bad_are_no_events_and_no_window_touches_them(tmp_path, capsys):
    """MNE's BAD/EDGE annotations mark stretches, not events: they are listed as such, left
    out of the standardisation's fit (an artefact inside must not set the scale), and no
    decoding window (continuous) or trial (labels) touches them."""
    import mne

    from core.cli import main
    from core.workspace import DataSpec, Workspace, load_data

    sfreq, n = 100.0, 100 * 120
    rng = np.random.default_rng(1)
    data = rng.standard_normal((3, n)) * 1e-5
    data[2] = np.sin(np.arange(n) / 10.0)  # a 'speed' channel
    data[:2, 1000:1500] += 1e-2  # a huge artefact at 10-15 s, in the training block
    raw = mne.io.RawArray(data, mne.create_info(["C3", "C4", "speed"], sfreq, ["eeg", "eeg", "misc"]), verbose="error")
    onsets = np.arange(2.0, 110.0, 4.0)
    kinds = ["right" if k % 2 else "left" for k in range(len(onsets))]
    raw.set_annotations(mne.Annotations(onsets, 0.5, kinds))
    raw.save(tmp_path / "unmarked_raw.fif", verbose="error")
    raw.set_annotations(mne.Annotations(list(onsets) + [10.0, 40.0], [0.5] * len(onsets) + [5.0, 2.0],
                                        kinds + ["BAD_muscle", "EDGE boundary"]))
    raw.save(tmp_path / "a_raw.fif", verbose="error")

    rec = read_recording(tmp_path / "a_raw.fif")
    assert rec.events.counts() == {"left": 14, "right": 13}  # the marks are not events
    assert rec.bad_segments == [(10.0, 5.0, "BAD_muscle"), (40.0, 2.0, "EDGE boundary")]
    mask = rec.bad_samples()
    assert mask.sum() == 700 and mask[1000:1500].all() and mask[4000:4200].all() and not mask[1500]
    assert main(["info", str(tmp_path / "a_raw.fif")]) == 0
    assert "bad spans  2 marked in the file (7.0 s; BAD/EDGE annotations)" in capsys.readouterr().out

    spec = DataSpec(source=str(tmp_path / "a_raw.fif"), target="speed")
    clean, _, blocks, prep = load_data(spec)
    good = ~mask[blocks["train"]]
    np.testing.assert_allclose(prep["std"], data[:2, blocks["train"]][:, good].std(axis=1), rtol=1e-5)
    assert prep["bad_seconds"] == 7.0
    ws = Workspace.create(spec, TrainConfig(model="shallow", max_epochs=1))
    d = ws.data
    for block in ("train", "valid", "test"):
        for s in d.window_starts(block):
            assert not mask[s:s + d.n_times].any()
    every = np.arange(blocks["train"].start, blocks["train"].stop - d.n_times + 1, d.n_preds)
    assert 0 < len(d.window_starts("train")) < len(every)  # some were left out, not all
    for w in ws.windows("train"):
        assert np.abs(w).max() < 50  # standardised signals, the artefact (about 1000 sd) never inside

    def n_trials(name):
        ws = Workspace.create(DataSpec(source=str(tmp_path / name), target="events:left,right", tmax=1.0),
                              TrainConfig(model="shallow", max_epochs=1))
        return len(ws.data.y)

    touching = [o for o in onsets if mask[int(round(o * sfreq)):int(round(o * sfreq)) + 100].any()]
    assert touching == [10.0, 14.0]  # trials at 10 and 14 s lie in the artefact (10-15 s); 40-42 s has none
    assert n_trials("a_raw.fif") == n_trials("unmarked_raw.fif") - 2
    # kernels: an event whose kernel window (-0.5 to +1.5 s) touches a marked stretch is left out
    from core.deconv.apply import EventDeconvolution

    def n_events(name):
        rec = read_recording(tmp_path / name)
        return len(EventDeconvolution(None, rec, block="all")._select_events()["index"])

    near = [o for o in onsets if mask[max(int(round((o - 0.5) * sfreq)), 0):int(round((o + 1.5) * sfreq))].any()]
    assert near == [10.0, 14.0, 42.0] and n_events("a_raw.fif") == n_events("unmarked_raw.fif") - 3
    # the deconvolved signals are not modelled on marked stretches (NaN: left out of the fit),
    # the decoder's also where its receptive field reaches one
    dec = EventDeconvolution.from_workspace(ws, block="all", event_types=["left", "right"])
    env = dec.signal("channel:C3:8-13").values
    assert np.array_equal(np.isnan(env), mask)
    out = dec.signal("output").values
    reach = dec._offset(ws.model, "")
    assert np.isnan(out[1000:1500 + reach]).all() and np.isfinite(out[1500 + reach:3900]).all()
    fit = dec.run("channel:C3:8-13")
    assert np.isfinite(fit["kernels"].values).all() and 0 < len(fit["codes"]) < len(onsets)
    # the probe's windows touch no marked stretch either
    from core.probing.pipeline import workspace_windows

    Xp, _ = workspace_windows(ws, "train")
    starts = ws.data.tiling_starts("train")
    assert len(Xp) == len(starts) and all(not mask[s:s + ws.data.n_times].any() for s in starts)
    assert len(starts) < (blocks["train"].stop - blocks["train"].start) // ws.data.n_times
    # the run's report says what was left out
    ws.save(tmp_path / "run")
    assert main(["report", str(tmp_path / "run"), "--out", str(tmp_path / "r.html")]) == 0
    assert "2 stretch(es) marked bad, 7 s (no window or trial touches them)" in (tmp_path / "r.html").read_text()


def test_bids_recordings_told_apart_by_acquisition_and_processing(tmp_path):
    mne_bids = pytest.importorskip("mne_bids")
    pytest.importorskip("pybv")
    import mne

    from core.io import bids_recordings

    for acq, proc, first in ((None, None, 1.0), (None, "filt", 2.0), ("a", None, 3.0)):
        data = np.random.default_rng(0).standard_normal((2, 2000)) * 1e-5
        data[0, 0] = first * 1e-5
        raw = mne.io.RawArray(data, mne.create_info(["C3", "C4"], 100.0, "eeg"), verbose="error")
        mne_bids.write_raw_bids(raw, mne_bids.BIDSPath(subject="01", task="rest", acquisition=acq, processing=proc,
                                                       datatype="eeg", root=tmp_path / "b"),
                                format="BrainVision", allow_preload=True, verbose="error")
    labels = [r["label"] for r in bids_recordings(tmp_path / "b")]
    assert labels == ["sub-01_task-rest_acq-a (eeg)", "sub-01_task-rest (eeg)", "sub-01_task-rest_proc-filt (eeg)"]
    rec = read_recording(tmp_path / "b", bids="proc-filt")
    assert round(float(rec.signals.values[0, 0]) / 1e-5) == 2
    # the listing's entities choose exactly their recording, the unprocessed one too
    plain = next(r for r in bids_recordings(tmp_path / "b") if r["label"] == "sub-01_task-rest (eeg)")
    rec = read_recording(tmp_path / "b", bids=plain["entities"])
    assert round(float(rec.signals.values[0, 0]) / 1e-5) == 1


def test_files_are_read_a_stretch_at_a_time_into_float32(tmp_path, monkeypatch):
    """A recording is never held in float64 as a whole: its samples are read from the file a
    stretch at a time into one float32 array, equal to MNE's whole read (events from the stim
    channel included); a file whose samples stop short is a clear error naming it."""
    import mne

    import core.io as io

    rng = np.random.default_rng(3)
    data = rng.standard_normal((4, 2500)) * 1e-5
    data[3] = 0.0
    data[3, [400, 1300, 2200]] = 1.0
    info = mne.create_info(["A", "B", "C", "STI"], 250.0, ["eeg", "eeg", "eeg", "stim"])
    mne.io.RawArray(data, info, verbose=False).save(tmp_path / "rec_raw.fif", verbose=False)
    monkeypatch.setattr(io, "_READ_CHUNK_BYTES", 8 * 4 * 300)  # 300 samples a stretch: 9 stretches
    rec = read_recording(tmp_path / "rec_raw.fif")
    whole = mne.io.read_raw(tmp_path / "rec_raw.fif", preload=True, verbose="error").get_data()
    assert rec.signals.dtype == np.float32 and np.array_equal(rec.signals.values, whole.astype(np.float32))
    np.testing.assert_allclose(rec.events.onset, [1.6, 5.2, 8.8])
    blob = (tmp_path / "rec_raw.fif").read_bytes()
    (tmp_path / "cut_raw.fif").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(UnitScopeError, match=r"cut_raw\.fif"):
        read_recording(tmp_path / "cut_raw.fif")


def test_event_counts_come_in_natural_order():
    """Trigger codes read as numbers (2 before 10; ``unitscope info`` listed 1, 10, 11, 2)."""
    from core.recording import Events

    events = Events(np.arange(8.0), ["1", "10", "11", "2", "T10", "T2", "b", "a"], np.zeros(8))
    assert list(events.counts()) == ["1", "2", "10", "11", "T2", "T10", "a", "b"]


def test_natural_key_orders_codes_as_numbers():
    from core.recording import natural_key

    assert sorted(["128", "16", "2", "1", "T10", "T2"], key=natural_key) == ["1", "2", "16", "128", "T2", "T10"]


def test_info_says_how_far_apart_the_events_are(tmp_path, capsys):
    """Triggers every 0.6 s (150 samples at 250 Hz): the median spacing is summarised and printed,
    since label trials longer than it hold the next events."""
    import mne

    from core.cli import main

    data = np.zeros((2, 250 * 30))
    data[0] = np.random.default_rng(0).standard_normal(250 * 30) * 1e-5
    for k, at in enumerate(range(250, 250 * 28, 150)):
        data[1, at:at + 5] = 1 + k % 2
    info = mne.create_info(["Cz", "STI"], 250.0, ["eeg", "stim"])
    mne.io.RawArray(data, info, verbose=False).save(tmp_path / "ev_raw.fif", verbose=False)
    assert read_recording(tmp_path / "ev_raw.fif").summary()["event_spacing_s"] == 0.6
    assert main(["info", str(tmp_path / "ev_raw.fif")]) == 0
    assert "events     45: 1 x23, 2 x22 (0.6 s apart, median)\n" in capsys.readouterr().out


def test_trigger_codes_come_from_the_composite_stim_channel(tmp_path):
    """A Neuromag FIF holds single-bit trigger lines (STI001 ...) before the composite STI101:
    the events were read from the first stim channel, STI001, which carries one bit of the codes
    (code 5 read as 1, code 4 lost). They come from STI101, as MNE chooses."""
    mne = pytest.importorskip("mne")
    sfreq, n = 250.0, 2500
    codes = {250: 5, 750: 4, 1250: 1, 1750: 6}
    composite = np.zeros(n)
    for start, code in codes.items():
        composite[start:start + 10] = code
    bit1 = (composite.astype(int) & 1).astype(float)
    eeg = np.random.default_rng(0).standard_normal((2, n)) * 1e-5
    info = mne.create_info(["C3", "C4", "STI001", "STI101"], sfreq, ["eeg", "eeg", "stim", "stim"])
    mne.io.RawArray(np.vstack([eeg, bit1, composite]), info, verbose="error").save(tmp_path / "nm_raw.fif",
                                                                                  verbose="error")
    rec = read_recording(tmp_path / "nm_raw.fif")
    assert rec.events.type.tolist() == ["5", "4", "1", "6"]
    np.testing.assert_allclose(rec.events.onset, np.array(list(codes)) / sfreq)


def test_bci2000_stimuli_start_where_the_code_changes_to_a_nonzero_value(tmp_path):
    """A StimulusCode that goes from 5 straight to 3 (no 0 between) starts a stimulus: only rises
    were read as events, so the 3 was lost."""
    header = ("HeaderLen= {n:5d} SourceCh= 1 StatevectorLen= 1\n[ State Vector Definition ]\nStimulusCode 8 0 0 0\n"
              "[ Parameter Definition ]\nSource int SamplingRate= 100Hz\n"
              "Source floatlist SourceChGain= 1 1\nSource floatlist SourceChOffset= 1 0\n")
    text = header.format(n=len(header.format(n=0)))
    code = np.zeros(60, np.uint8)
    code[10:15], code[15:20], code[30:35], code[35:40] = 5, 3, 2, 7  # 5 then 3, 2 then 7: four stimuli
    samples = np.zeros((60, 3), np.uint8)  # one int16 channel and the state byte per sample
    samples[:, 2] = code
    (tmp_path / "codes.dat").write_bytes(text.encode("latin1") + samples.tobytes())
    rec = read_recording(tmp_path / "codes.dat")
    assert rec.events.type.tolist() == ["5", "3", "2", "7"]
    np.testing.assert_allclose(rec.events.onset, [0.10, 0.15, 0.30, 0.35])


def test_bids_entities_given_with_a_recording_file_are_refused(shared_data):
    """``unitscope train rec.edf --bids sub-01`` read the file and trained 25 epochs on it,
    the entities ignored without a word."""
    with pytest.raises(UnitScopeError, match=r"BIDS entities \(subject=01\) choose a recording of a BIDS folder, but "
                                             r"'.*test_elekta_3ch_raw.fif' is a recording itself: leave out --bids"):
        read_recording(shared_data / FIF, bids="sub-01")
    assert read_recording(shared_data / FIF, bids="").n_chans > 0  # none given: read as before
