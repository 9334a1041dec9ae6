"""Session state without a browser: decoder wiring, selection, alerts, jobs, bad input."""
from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from dashboard.jobs import Job, error_message, stop_all
from dashboard.state import Session


def _join(session, name, timeout=120):
    job = session._jobs[name]
    assert job.join(timeout), f"job {name} did not finish"
    return job


@pytest.fixture()
def session(tmp_path, monkeypatch):
    monkeypatch.setenv("UNITSCOPE_DATA_ROOT", str(tmp_path))
    s = Session()
    yield s
    s.close()


def test_an_address_naming_a_layer_or_unit_the_decoder_lacks_is_answered(session, tiny_decoder):
    """A link with layer=bogus or unit=999 had shown another unit without a word (the address
    still naming the one asked for); the first decoder set says what is shown instead."""
    session._address_selection = {"layer": "bogus", "unit": "3"}
    session.set_decoder(tiny_decoder)
    assert session.alerts[-1] == ("warning", "The address names the layer 'bogus', which this decoder does not have; "
                                             "its layers are conv_time_spat, conv_2, conv_3, conv_4, conv_classifier. "
                                             f"{session.layer} is shown.")
    n = len(session.alerts)
    session.set_decoder(tiny_decoder)  # (said for the address's page once: not for later decoders)
    assert len(session.alerts) == n
    from dashboard.state import Session

    for asked, layer, said in (({"layer": "conv_4", "unit": "999"}, "conv_4",
                                "The address names unit 999 of conv_4, which has units 0 to 199; conv_4/199 is shown."),
                               ({"layer": "conv_4", "unit": "abc"}, "conv_4",
                                "The address names the unit 'abc', which is no unit index (0 or more); conv_4/0 is "
                                "shown."),
                               ({"layer": "conv_3", "unit": "7"}, "conv_3", None)):
        other = Session()
        try:
            other._address_selection = asked
            other.param.update(layer=layer, unit=999 if asked["unit"] == "999" else 7 if asked["unit"] == "7" else 0)
            other.set_decoder(tiny_decoder)
            assert (other.alerts[-1][1] if other.alerts else None) == said
        finally:
            other.close()


def test_set_decoder_sets_layers_and_clips_unit(session, tiny_decoder):
    session.param.update(layer="conv_4", unit=150)
    session.set_decoder(tiny_decoder)
    assert session.layer_names == ["conv_time_spat", "conv_2", "conv_3", "conv_4", "conv_classifier"]
    assert (session.layer, session.unit) == ("conv_4", 150)
    session.layer = "conv_2"  # 50 units: the unit index is clipped
    assert session.unit == 49
    session.layer = "conv_classifier"
    assert session.unit == 0 and session.n_units() == 1
    assert "Pearson r" in session.status
    assert session.probe is None and session.probe_state == "none"


def test_unknown_layer_from_url_falls_back_with_alert(session, tiny_decoder):
    session.set_decoder(tiny_decoder)
    session.layer = "conv_9"
    assert session.layer == "conv_2"
    level, text = session.alerts[-1]
    assert level == "warning" and "Unknown layer 'conv_9'" in text and "conv_4" in text


def test_layer_from_url_before_decoder_is_kept(session, tiny_decoder):
    session.param.update(layer="conv_3", unit=7)  # as location.sync does before the demo is ready
    session.set_decoder(tiny_decoder)
    assert (session.layer, session.unit) == ("conv_3", 7)


def test_alerts_keep_last_five_and_dismiss(session):
    for i in range(7):
        session.alert(f"m{i}")
    assert [t for _, t in session.alerts] == ["m2", "m3", "m4", "m5", "m6"]
    session.dismiss(0)
    assert session.alerts[0][1] == "m3"
    session.dismiss()
    assert session.alerts == []


def test_path_outside_root_is_an_alert(session, tmp_path):
    session.inspect("../../etc/passwd")
    assert "outside the data root" in session.alerts[-1][1]
    assert session.busy == ""


def test_corrupt_file_is_an_alert_and_session_keeps_working(session, tmp_path, fif):
    (tmp_path / "broken.edf").write_bytes(b"not an edf file at all" * 10)
    session.inspect("broken.edf")
    _join(session, "inspect")
    level, text = session.alerts[-1]
    assert level == "danger" and "broken.edf" in text
    assert session.busy == "" and session.recording_info == {}
    # an upload's is named as it was uploaded: the server's session folder stays out of the message
    session.upload("corrupt.edf", b"this is not an EDF file" * 20)
    _join(session, "inspect")
    level, text = session.alerts[-1]
    assert level == "danger" and "'corrupt.edf'" in text and "unitscope-session-" not in text, text
    fif(tmp_path / "ok_raw.fif", ["C3", "C4"])
    session.inspect("ok_raw.fif")
    _join(session, "inspect")
    assert session.recording_info["n_chans"] == 3
    assert session.target == "speed"
    assert session.target_options()[0] == "speed"


def test_a_file_cut_short_opens_with_a_warning_saying_how_much_it_holds(session, tmp_path, write_edf):
    """An EDF cut short (an unfinished upload) opened as a shorter recording with no word."""
    from dashboard.views.data import DataView

    whole = write_edf(tmp_path / "whole.edf").read_bytes()
    (tmp_path / "cut.edf").write_bytes(whole[: 256 * 3 + 6 * 400])
    session.inspect("cut.edf")
    _join(session, "inspect")
    level, text = session.alerts[-1]
    assert level == "warning" and text.startswith("cut.edf: the file holds 6 of the 10 data records")
    assert session.recording_info["duration_s"] == pytest.approx(6.0, abs=0.02)
    view = DataView(session=session)
    assert "<b>Caution</b></td><td>the file holds 6 of the 10 data records" in view.info.object
    session.inspect("whole.edf")
    _join(session, "inspect")
    assert session.alerts[-1] == (level, text)  # nothing new: the whole file opens without a word
    assert "Caution" not in DataView(session=session).info.object


def test_the_same_file_asked_for_while_it_is_read_is_not_a_warning(session, tmp_path, fif, monkeypatch):
    """Enter in the path box opens the file, and so does the Open button after it: the second
    ask, while the first read runs, said "Inspect is already running." in yellow. It is now
    taken as the same request; another file asked for meanwhile is refused, saying which file is
    being read, and the inputs shown are left as they are."""
    entered, release = threading.Event(), threading.Event()
    read = Session._read_info

    def held(path, label, bids=None):
        entered.set()
        release.wait(30)
        return read(path, label, bids)

    monkeypatch.setattr(Session, "_read_info", staticmethod(held))
    fif(tmp_path / "a_raw.fif", ["C3", "C4"])
    fif(tmp_path / "b_raw.fif", ["C3", "C4"])
    try:
        session.inspect("a_raw.fif")
        assert entered.wait(30)
        session.inspect("a_raw.fif")
        assert session.alerts == []
        session.inspect("b_raw.fif")
        assert session.alerts[-1] == ("warning", "Still reading a_raw.fif: open b_raw.fif when it is shown.")
    finally:
        release.set()
    _join(session, "inspect")
    assert session.recording_info["label"] == "a_raw.fif" and session.busy == ""
    session.inspect("b_raw.fif")  # once read, another file opens
    _join(session, "inspect")
    assert session.recording_info["label"] == "b_raw.fif"


def test_a_stim_channel_is_not_offered_as_a_target(session, tmp_path, stim_fif):
    """A recording with MEG sensors and a stim channel (as an Elekta FIF): the default target is
    its events as labels, not the stim channel's trigger codes as a trace (which the app chose
    before), and the stim channel is not among the targets offered."""
    stim_fif(tmp_path / "meg_raw.fif", seconds=40.0)
    session.inspect("meg_raw.fif")
    _join(session, "inspect")
    assert session.recording_info["events"] == {"1": 8, "2": 7}
    assert session.target == "events" and session.target_options() == ["MEG0111", "MEG2643", "events"]
    assert session.picks == ["MEG0111", "MEG2643"]


def test_the_trial_window_of_label_targets(session, tmp_path, stim_fif):
    """Events 0.6 s apart (an Elekta FIF's auditory stimuli): the default 4-s trials would each
    hold the next six events, which the session says; the window chosen goes into the data
    spec, and one that ends before it starts is a problem named before training."""
    stim_fif(tmp_path / "meg_raw.fif", every=150, first=250)
    session.inspect("meg_raw.fif")
    _join(session, "inspect")
    assert session.recording_info["event_spacing_s"] == 0.6 and session.target == "events"
    assert (session.tmin, session.tmax) == (0.0, 4.0)  # DataSpec's defaults
    assert session.trial_overlap() == ("Trials of 4 s (0 to 4 s from their events) also hold 6 other events each "
                                       "(median): shorten the trial window to what one event is followed by.")
    session.param.update(tmin=0.0, tmax=0.5)
    assert session.trial_overlap() == "" and session.prep_problems() == []
    spec = session.data_spec()
    assert (spec.tmin, spec.tmax, spec.target) == (0.0, 0.5, "events")
    session.tmax = -0.1
    assert session.prep_problems() == ["The trial window must end after it starts: from 0.0 to -0.1 s."]
    session.param.update(tmax=0.5, target="MEG0111")  # a trace target has no trials
    assert session.trial_overlap() == "" and session.prep_problems() == []


def test_markup_channel_names_are_kept_as_data(session, tmp_path, fif):
    names = ["<script>alert(1)</script>", "<b>C4</b>"]
    fif(tmp_path / "markup_raw.fif", names)
    session.inspect("markup_raw.fif")
    _join(session, "inspect")
    assert session.recording_info["ch_names"][:2] == names


def test_upload_over_limit_is_an_alert(session, monkeypatch):
    monkeypatch.setenv("UNITSCOPE_MAX_UPLOAD_MB", "0.001")
    session.upload("big.edf", b"x" * 5000)
    assert "above the limit" in session.alerts[-1][1]
    # each file within the limit (1048 bytes), five together past the session's 4 x the limit
    session.upload_files({f"part{i}.edf": b"x" * 1000 for i in range(5)})
    _join(session, "inspect")  # (the newest kept file is then read, and is no EDF)
    assert any("'part4.edf' (0.0 MB) would take this session's uploads past 0.0 MB" in t for _, t in session.alerts)
    assert sorted(p.name for p in session._upload_dir.iterdir()) == [f"part{i}.edf" for i in range(4)]


def test_train_without_target_is_an_alert(session, tmp_path, fif):
    session.source = "file"
    session.train()
    assert "inspect a recording first" in session.alerts[-1][1]
    fif(tmp_path / "x_raw.fif", ["C3"], misc=())
    session.inspect("x_raw.fif")
    _join(session, "inspect")
    session.target = ""
    session.train()
    assert "Choose the target" in session.alerts[-1][1]


def test_training_error_too_short_is_an_alert(session, tmp_path, fif):
    fif(tmp_path / "short_raw.fif", ["C3", "C4"], seconds=8.0)
    session.inspect("short_raw.fif")
    _join(session, "inspect")
    session.param.update(target="speed", max_epochs=1)
    session.train()
    _join(session, "training")
    assert session.busy == ""
    assert "block has" in session.alerts[-1][1] and session.decoder is None
    assert session.train_outcome.startswith("Last run: failed (") and "block has" in session.train_outcome
    from dashboard.views.data import DataView

    view = DataView(session=session)
    assert "Last run: failed" in view.progress_text.object  # under the bar, after the alert has gone


@pytest.mark.slow
def test_a_test_block_of_one_class_is_not_called_learnt_nothing(session, tmp_path):
    """Trained on labels whose test block holds one class, the metric measures nothing
    (unitscope info and the report say "not measured"); the alert said "the decoder has learnt
    nothing that holds on the test block"."""
    import mne

    sfreq, n = 250.0, 250 * 80
    data = np.random.default_rng(0).standard_normal((3, n)) * 1e-12
    data[2] = 0.0
    for k, at in enumerate(range(500, n - 1500, 600)):
        data[2, at:at + 5] = 1 if at > 0.8 * n else 1 + k % 2   # the last fifth: code 1 only
    info = mne.create_info(["MEG0111", "MEG2643", "STI101"], sfreq, ["mag", "grad", "stim"])
    mne.io.RawArray(data, info, verbose=False).save(tmp_path / "one_raw.fif", overwrite=True, verbose=False)
    session.inspect("one_raw.fif")
    _join(session, "inspect")
    session.param.update(target="events", max_epochs=1, model_kind="shallow")
    session.train()
    _join(session, "training")
    level, text = [a for a in session.alerts if a[1].startswith("Training finished")][-1]
    assert "one class" in text and "learnt nothing" not in text and level == "warning"


@pytest.mark.slow
def test_train_and_stop_on_user_file(session, tmp_path, fif):
    fif(tmp_path / "run_raw.fif", ["C3", "C4", "Cz"], seconds=40.0)
    session.inspect("run_raw.fif")
    _join(session, "inspect")
    session.param.update(target="speed", max_epochs=50, model_kind="shallow")
    seen = threading.Event()
    session.param.watch(lambda e: e.new > 0 and seen.set(), "train_progress")
    session.train()
    assert seen.wait(120)
    session.stop_training()
    _join(session, "training")
    assert session.decoder is not None and session.decoder.model_kind == "shallow"
    assert session.busy == "" and len(session.train_history) < 50
    assert session.alerts[-1][0] == "success" and "stopped" in session.alerts[-1][1]
    n = len(session.train_history)
    assert session.train_outcome.startswith(f"Last run: stopped after {n} of at most 50 epochs (stopped by you)")
    assert session.layer in session.layer_names


def test_probe_runs_stops_and_resumes(session, tiny_decoder):
    session.set_decoder(tiny_decoder)
    session.probe_iterations = 2
    session.run_probe(control=False)
    _join(session, "probe")
    assert session.probe_state == "done" and session.probe_progress == 1.0
    ds = session.probe
    assert ds.sizes["unit"] == sum(tiny_decoder.n_units.values())
    assert "unit_class_all" in ds and ds.attrs["amp_iterations"] == 2
    # a stopped run resumes where it was (the stop is seen after the first iteration)
    session.probe_iterations = 3
    session.run_probe(control=False)
    session.stop_probe()
    _join(session, "probe")
    run = session._probe_run
    assert session.probe_state == "stopped" and run.done == [1, 1]
    session.run_probe(control=False)
    _join(session, "probe")
    assert session._probe_run is run and run.done == [3, 3]
    assert session.probe_state == "done" and session.probe.attrs["amp_iterations"] == 3
    assert session.probe.attrs["site"] == "conv"


def test_large_probe_maps_are_kept_in_1_hz_bins(session, tiny_decoder, monkeypatch):
    """Above the session's limit (306 MEG channels: 553 MB) the maps are kept in 1 Hz bins,
    as the shipped demo probe is; the statistics and classes are those computed."""
    session.set_decoder(tiny_decoder)
    session.probe_iterations = 2
    session.run_probe(control=False)
    _join(session, "probe")
    full = session.probe
    assert "maps_binned_hz" not in full.attrs  # small: as computed
    monkeypatch.setattr(session, "probe_maps_limit_mb", 0.0)
    session.run_probe(control=True)
    _join(session, "probe")
    ds, control = session.probe, session.control
    assert ds.attrs["maps_binned_hz"] == 1.0 and control.attrs["maps_binned_hz"] == 1.0
    assert ds.sizes["freq"] < full.sizes["freq"] and np.diff(ds["freq"].values).min() > 0.5
    np.testing.assert_array_equal(ds["unit_class_all"].values, full["unit_class_all"].values)
    from dashboard.views.units import unit_maps

    amp, _ = unit_maps(ds, "conv_2", 0)  # the Units view reads them as it reads the shipped probe
    assert amp.dims == ("channel", "freq") and np.isfinite(amp.values).any()


def test_probe_site_is_the_sessions_choice_and_a_stopped_run_of_another_site_starts_afresh(session, tiny_decoder):
    session.set_decoder(tiny_decoder)
    session.probe_iterations = 3
    session.run_probe(control=False)
    session.stop_probe()
    _join(session, "probe")
    stopped = session._probe_run
    assert session.probe_state == "stopped" and session.probe.attrs["site"] == "conv"
    session.probe_site = "nonlin"
    session.run_probe(control=False)
    _join(session, "probe")
    assert session._probe_run is not stopped and session.probe_state == "done"
    assert session.probe.attrs["site"] == "nonlin" and session.probe.attrs["amp_iterations"] == 3


def test_new_decoder_drops_old_probe(session, tiny_decoder, tiny_probe):
    session.set_decoder(tiny_decoder, probe=tiny_probe, probe_source="test")
    assert session.probe_state == "done"
    from dashboard.decoder import Decoder

    session.set_decoder(Decoder(tiny_decoder.ws, label="again"))
    assert session.probe is None and session.control is None and session.probe_state == "none"


def test_close_stops_jobs(session):
    started = threading.Event()

    def work(stop):
        started.set()
        stop.wait(60)
        return "stopped"

    session._start("probe", work)
    assert started.wait(10)
    session.close()
    assert not session._jobs["probe"].running


def test_job_errors_become_messages(caplog):
    from core._validation import UnitScopeError

    msgs = []
    job = Job("x", lambda stop: (_ for _ in ()).throw(UnitScopeError("bad input 'x'")), on_error=msgs.append)
    with caplog.at_level(logging.INFO, logger="dashboard.jobs"):
        job.start().join(10)
    assert msgs == ["bad input 'x'"]
    # the server log keeps what the page was told, in one line without a traceback
    assert [r.getMessage() for r in caplog.records] == ["job x ended with an error shown to its page: bad input 'x'"]
    assert caplog.records[0].levelno == logging.INFO and caplog.records[0].exc_info is None
    job = Job("y", lambda stop: 1 / 0, on_error=msgs.append)
    job.start().join(10)
    assert msgs[-1].startswith("Unexpected error (ZeroDivisionError") and "Traceback" not in msgs[-1]
    assert error_message(FileNotFoundError(2, "No such file", "a.edf")).startswith("[Errno 2]")


def test_running_jobs_are_stopped_and_awaited_at_exit():
    """``stop_all`` (registered with atexit) stops every running job and waits for it: a
    daemon thread killed inside torch at exit aborts the process (status 134). A job that
    does not check its stop event is named once the wait is over."""
    started, release = threading.Event(), threading.Event()

    def polite(stop):
        started.set()
        stop.wait()
        return "stopped"

    def deaf(stop):
        release.wait()

    a = Job("polite", polite).start()
    b = Job("deaf", deaf).start()
    assert started.wait(10)
    try:
        assert stop_all(timeout=0.2) == ["deaf"]
        assert not a.running and a.result == "stopped" and b.stop_event.is_set()
    finally:
        release.set()
        b.join(10)
    assert stop_all(timeout=0.2) == []  # ended jobs are forgotten


def test_a_job_running_torch_ends_cleanly_when_the_interpreter_exits(tmp_path):
    import subprocess
    import sys

    marker = tmp_path / "ended"
    code = f"""
import threading, torch
from dashboard.jobs import Job
busy = threading.Event()
def work(stop):
    a = torch.randn(256, 256)
    while not stop.is_set():
        a = torch.tanh(a @ a)
        busy.set()
    open({str(marker)!r}, "w").write("stopped")
Job("torch", work).start()
busy.wait(60)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    assert marker.read_text() == "stopped"  # the job saw its stop event before the exit


def test_jobs_stop_at_exit_before_libraries_imported_later_tear_down(tmp_path):
    """Jobs are stopped before any library's exit handler runs, whenever it was imported. h5py
    registers one when first imported (after dashboard.jobs) that unregisters its type
    converters; atexit runs the last registered first, so a job still reading a netCDF file
    printed tracebacks when the server stopped (before: 5 of 5 runs of such a script)."""
    import subprocess
    import sys

    path = tmp_path / "result.nc"
    code = f"""
import atexit, threading
import numpy as np, xarray as xr
from dashboard.jobs import Job
from core._files import load_netcdf
torn_down = []
atexit.register(torn_down.append, "a library's exit handler")  # registered after dashboard.jobs
xr.Dataset({{"a": ("x", np.arange(1000.0))}}, attrs={{"note": "text"}}).to_netcdf({str(path)!r}, engine="h5netcdf")
read = threading.Event()
def work(stop):
    while not stop.is_set():
        load_netcdf({str(path)!r})  # h5py, imported here for the first time
        read.set()
    print("stopped after", torn_down or "nothing", flush=True)
Job("reader", work).start()
read.wait(60)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0 and done.stderr == "", done.stderr[-2000:]
    assert done.stdout.strip() == "stopped after nothing"


def test_decoder_most_activating_windows_cover_every_unit(tiny_decoder):
    """The decoder scans its probing windows once for every block (the method itself is
    tested in tests/core/test_activations.py)."""
    from core.activations import unit_segments

    top = tiny_decoder.top_windows()
    assert top is tiny_decoder.top_windows() and tiny_decoder.top_ready
    assert top.sizes["unit"] == sum(tiny_decoder.n_units.values())
    X, _ = tiny_decoder.probe_inputs()
    li = tiny_decoder.layers[1]
    seg = unit_segments(X, top, f"{li.name}/4")
    assert seg.shape == (top.sizes["rank"], X.shape[1], li.receptive_field)
    w, s = int(top["window"].sel(unit=f"{li.name}/4", rank=0)), int(top["start"].sel(unit=f"{li.name}/4", rank=0))
    np.testing.assert_array_equal(seg[0], X[w, :, s:s + li.receptive_field])


def test_prediction_cache_round_trip(tiny_ws, tmp_path, monkeypatch):
    from dashboard.decoder import Decoder

    first = Decoder(tiny_ws, label="a", cache_dir=tmp_path).predictions()
    assert len(list(tmp_path.glob("predictions-*.npz"))) == 1
    again = Decoder(tiny_ws, label="b", cache_dir=tmp_path)
    cached = again._load_predictions()
    assert cached is not None and cached["metric"] == pytest.approx(first["metric"])
    np.testing.assert_array_equal(cached["pred"], first["pred"])
    np.testing.assert_array_equal(cached["time"], first["time"])
    assert cached["task"] == "regression" and cached["target"] == first["target"]
    import core.workspace
    from core._files import source_version

    # keyed by the code that prepares the data too: a cache of other code is not read
    assert source_version(core.workspace.__file__) in again._cache_file().name
    monkeypatch.setattr("core._files.source_version", lambda f: "0123456789ab")
    assert again._load_predictions() is None


INFO = {"label": "rec.edf", "path": "/data/rec.edf", "n_chans": 4, "sfreq": 128.0, "duration_s": 60.0,
        "ch_names": ["Fp1", "C3", "<b>Cz</b>", "speed"], "ch_types_list": ["eeg", "eeg", "eeg", "misc"],
        "ch_types": {"eeg": 3, "misc": 1}, "events": {}}


def test_prep_problems_name_what_is_wrong(session):
    from core._validation import UnitScopeError

    session.param.update(source="file", recording_info=INFO, target="speed", picks=[])
    assert session.pick_options() == [("Fp1", "eeg"), ("C3", "eeg"), ("<b>Cz</b>", "eeg")]
    assert session.prep_problems() == ["No input channel picked: choose at least one channel."]
    with pytest.raises(UnitScopeError, match="No input channel picked"):
        session.data_spec()
    session.param.update(picks=["C3", "T9"], h_freq=70.0)
    problems = session.prep_problems()
    assert problems[0] == "Picked channel(s) ['T9'] are not in the recording."
    assert problems[1].startswith("h_freq=70 Hz is at or above the Nyquist frequency, 64 Hz (128 Hz sampling)")
    session.param.update(picks=["C3"], resample_to=100.0, h_freq=55.0)
    assert session.prep_problems() == ["h_freq=55 Hz is at or above the Nyquist frequency, 50 Hz (100 Hz sampling "
                                       "after resampling): choose less than 50 Hz."]
    session.param.update(resample_to=4.0, h_freq=None)
    assert "too low for the decoders (at least 8 Hz)" in session.prep_problems()[0]
    session.resample_to = 256.0
    assert "above the file's rate (128 Hz)" in session.prep_problems()[0]
    session.param.update(resample_to=None, l_freq=30.0, h_freq=20.0)
    assert session.prep_problems() == ["l_freq=30 Hz must be below h_freq=20 Hz."]
    session.param.update(l_freq=0.0, h_freq=None)
    assert "must be above 0 Hz" in session.prep_problems()[0]
    session.train()  # a problem becomes an alert, nothing starts
    assert "must be above 0 Hz" in session.alerts[-1][1] and "training" not in session._jobs


def test_data_spec_carries_picks_filter_and_rate(session):
    session.param.update(source="file", recording_info=INFO, target="speed", picks=["<b>Cz</b>", "C3"],
                         l_freq=1.0, h_freq=40.0, resample_to=100.0)
    assert session.prep_problems() == []
    spec = session.data_spec()
    assert (spec.source, spec.target, spec.picks) == ("/data/rec.edf", "speed", ["<b>Cz</b>", "C3"])
    assert (spec.l_freq, spec.h_freq, spec.sfreq) == (1.0, 40.0, 100.0)
    session.target = "C3"  # a channel that becomes the target leaves the inputs
    assert session.picks == ["<b>Cz</b>"] and ("C3", "eeg") not in session.pick_options()
    session.source = "demo"  # the demo ignores the file's preparation
    assert session.prep_problems() == [] and session.data_spec().source == "demo"
    assert session.data_spec().picks is None


def test_inspected_file_preparation_reaches_the_data(session, tmp_path, fif):
    """Defaults after inspecting a file (data channels but the target, no filter), and a chosen
    preparation is what core.workspace.load_data makes of the file."""
    from core.workspace import load_data

    fif(tmp_path / "prep_raw.fif", ["C3", "C4", "Cz"], seconds=30.0)
    session.inspect("prep_raw.fif")
    _join(session, "inspect")
    assert session.target == "speed" and session.picks == ["C3", "C4", "Cz"]
    assert (session.l_freq, session.h_freq, session.resample_to) == (None, None, None)
    session.param.update(picks=["Cz", "C3"], l_freq=2.0, h_freq=40.0, resample_to=125.0)
    rec, task, _, _ = load_data(session.data_spec())
    assert task == "regression" and rec.ch_names == ["Cz", "C3"] and rec.sfreq == 125.0


class _LoadingDemo:
    """A stand-in for the shared demo provider: loading until the test announces it."""

    def __init__(self, decoder):
        self.state, self.decoder, self.probe, self.listeners = "loading", decoder, (None, None), []

    def subscribe(self, fn):
        self.listeners.append(fn)

    def unsubscribe(self, fn):
        self.listeners.remove(fn)

    def start(self):
        pass

    def announce(self, state, **info):
        """Notify the listeners from a worker thread, as the provider's loader does."""
        self.state = state
        t = threading.Thread(target=lambda: [fn(state, info) for fn in list(self.listeners)])
        t.start()
        t.join()


def test_demo_ready_from_a_worker_switches_the_decoder_on_the_documents_loop(session, tiny_decoder, served_doc):
    """Announced by the loader thread, the demo decoder is set on the document's event loop
    (its next tick), never from the worker; set while the page was loading, the views are
    drawn again once it has loaded."""
    demo = session._demo = _LoadingDemo(tiny_decoder)
    doc = served_doc
    session.attach_document(doc)
    seen = []
    session.param.watch(lambda e: seen.append(threading.current_thread()), "decoder_version")
    session.load_demo()
    assert session.busy == "loading" and session.decoder is None
    demo.announce("ready")
    assert session.decoder is None and len(doc.ticks) == 1  # nothing changed in the worker
    doc.ticks.pop()()  # the document's loop runs it
    assert session.decoder is tiny_decoder and session.busy == "" and seen == [threading.current_thread()]
    # it happened while the page was loading: once loaded, the views are drawn again
    session.document_ready()
    assert len(doc.ticks) == 1
    doc.ticks.pop()()
    assert len(seen) == 2 and session.decoder_version == 1
    assert session.page_redrawn == 1  # the views send their parts' visibility again
    session.document_ready()  # nothing more to redraw
    demo.announce("ready")  # a late repeat does nothing once the decoder is set
    for fn in doc.ticks:
        fn()
    assert len(seen) == 2 and session.decoder_version == 1


def test_demo_ready_after_the_page_loaded_is_drawn_once(session, tiny_decoder, served_doc):
    demo = session._demo = _LoadingDemo(tiny_decoder)
    doc = served_doc
    session.attach_document(doc)
    seen = []
    session.param.watch(lambda e: seen.append(e.new), "decoder_version")
    session.load_demo()
    session.document_ready()
    assert doc.ticks == []  # nothing to redraw yet
    demo.announce("ready")
    doc.ticks.pop()()
    session.document_ready()
    assert doc.ticks == [] and seen == [1] and session.page_redrawn == 0


def test_demo_error_from_a_worker_is_shown_on_the_documents_loop(session, tiny_decoder, served_doc):
    demo = session._demo = _LoadingDemo(tiny_decoder)
    doc = served_doc
    session.attach_document(doc)
    session.document_ready()  # loaded before the error arrives: it goes out on the next tick
    session.load_demo()
    demo.announce("error", error="disk full")
    assert session.alerts == [] and len(doc.ticks) == 1
    doc.ticks.pop()()
    assert session.busy == "" and "could not be loaded: disk full" in session.alerts[-1][1]


def test_an_alert_made_while_the_page_loads_is_drawn_again_once_loaded(session, tiny_decoder, served_doc):
    demo = session._demo = _LoadingDemo(tiny_decoder)
    doc = served_doc
    session.attach_document(doc)
    shown = []
    session.param.watch(lambda e: shown.append(list(e.new)), "alerts")
    session.load_demo()
    demo.announce("error", error="disk full")
    doc.ticks.pop()()  # before the page has loaded
    session.document_ready()
    doc.ticks.pop()()
    assert len(shown) == 2 and shown[0] == shown[1] and session.decoder_version == 0


def test_demo_ready_without_a_document_switches_at_once(session, tiny_decoder):
    demo = session._demo = _LoadingDemo(tiny_decoder)
    session.load_demo()
    demo.announce("ready")
    assert session.decoder is tiny_decoder


def test_the_demo_arriving_while_the_page_does_something_else_is_shown(session, tiny_decoder, tmp_path):
    """A user quicker than the demo: weights tried, a recording inspected or a training started
    while the demo decoder loaded replaced the session's "loading" state, the demo was dropped
    when it arrived, and the page said "Loading the demo decoder ..." for good (every view
    empty). It is shown as it is once loaded; a run or weights being opened keep their turn."""
    demo = session._demo = _LoadingDemo(tiny_decoder)
    (tmp_path / "bad.pt").write_bytes(b"not a state dict")
    session.load_demo()
    assert session.no_decoder_note() == "The demo decoder is still loading: it is shown in a moment."
    session.import_weights("bad.pt")  # fails while the demo loads
    _join(session, "import")
    assert "not a PyTorch state dict" in session.alerts[-1][1] and session.busy == ""
    demo.announce("ready")
    assert session.decoder is tiny_decoder
    for busy in ("inspecting", "training"):  # (the work goes on beside the demo, as after loading)
        session.decoder, demo.state = None, "loading"
        session.busy = busy
        demo.announce("ready")
        assert session.decoder is tiny_decoder and session.busy == busy
    for busy in ("opening", "importing"):  # their decoder is on its way: it is shown, not the demo
        session.decoder, demo.state = None, "loading"
        session.busy = busy
        demo.announce("ready")
        assert session.decoder is None
        session.busy = ""  # it failed: the demo that arrived meanwhile is shown
        assert session.decoder is tiny_decoder
    assert session.no_decoder_note() == "No decoder yet: load the demo or train one first."


def test_band_occlusion_presets_results_and_bad_input(session, tiny_decoder):
    from core.demo import ROLE_BANDS
    from core.probing.validity import band_occlusions

    session.occlude({"x": (["G01"], (60.0, 90.0))})
    assert "No decoder yet" in session.alerts[-1][1]
    session.set_decoder(tiny_decoder)
    presets = session.occlusion_presets()
    assert {k: v[1] for k, v in presets.items()} == ROLE_BANDS
    roles = tiny_decoder.ws.recording.signals["role"].values
    assert presets["beta"][0] == [tiny_decoder.ch_names[i] for i in np.flatnonzero(roles == "beta")]
    cases = {f"{r} band": (chs, band) for r, (chs, band) in presets.items()}
    session.occlude(cases)
    _join(session, "occlusion")
    assert not session.occluding and [r["label"] for r in session.occlusions] == list(cases)
    X, y = tiny_decoder.ws.eval_set("test")
    names = tiny_decoder.ch_names
    expected, ref = band_occlusions(tiny_decoder.ws.model, X, y, sfreq=tiny_decoder.sfreq, task="regression",
                                    cases={k: ([names.index(c) for c in chs], b) for k, (chs, b) in cases.items()})
    for row in session.occlusions:
        assert row["metric"] == pytest.approx(expected[row["label"]]) and row["reference"] == pytest.approx(ref)
        assert row["drop"] == pytest.approx(ref - expected[row["label"]])
    session.occlude({"whole G05": (["G05"], None)})  # newest first
    _join(session, "occlusion")
    assert session.occlusions[0]["label"] == "whole G05" and len(session.occlusions) == 4
    # bad input: an alert, nothing lost, the session goes on
    session.occlude({"none": ([], (1.0, 4.0))})
    assert "choose at least one channel" in session.alerts[-1][1]
    session.occlude({"typo": (["G99"], (1.0, 4.0))})
    assert "['G99'] are not inputs of the decoder" in session.alerts[-1][1]
    session.occlude({"high": (["G01"], (130.0, 140.0))})
    _join(session, "occlusion")
    assert "below Nyquist (125 Hz)" in session.alerts[-1][1] and not session.occluding
    assert len(session.occlusions) == 4
    session.set_decoder(tiny_decoder)  # results belong to one decoder
    assert session.occlusions == []


def test_demo_ipsi_share_reaches_the_data_spec(session):
    session.demo_ipsi = 0.4
    assert session.data_spec().ipsi_fraction == 0.4
    session.demo_ipsi = 0.0
    assert session.data_spec().ipsi_fraction == 0.0


# ---- decoders trained earlier (run folders under the data root) --------------------------------
def test_a_run_folder_opens_with_the_probe_saved_beside_it(session, tmp_path, tiny_ws, tiny_probe):
    run = tmp_path / "runs" / "demo-run"
    tiny_ws.save(run)
    tiny_probe.to_netcdf(run / "probe.nc")
    (tmp_path / "runs" / "not-a-run").mkdir()
    (tmp_path / "runs" / "not-a-run" / "config.json").write_text("{}")
    assert session.runs() == ["runs/demo-run/"]
    session.open_run("runs/demo-run")
    assert session.busy == "opening"
    _join(session, "open")
    dec = session.decoder
    assert session.busy == "" and dec.label == "demo-run (Deep4)"
    assert dec.predictions()["metric"] == pytest.approx(tiny_ws.evaluate("test"), abs=1e-6)
    assert session.probe is not None and session.probe_state == "done"
    assert session.probe_source == "probe.nc of demo-run" and session.probe.attrs == tiny_probe.attrs
    level, text = session.alerts[-1]
    assert level == "success" and text.startswith("Opened demo-run: test Pearson r") and "with its probe" in text
    assert "other probing code" not in text
    # a probe computed by other probing code is shown, and said to be so
    older = tiny_probe.copy()
    older.attrs["code_version"] = "0123456789ab"
    older.to_netcdf(run / "probe.nc")
    session.open_run("runs/demo-run/")
    _join(session, "open")
    assert session.probe is not None and session.probe.attrs["code_version"] == "0123456789ab"
    assert session.probe_source == "probe.nc of demo-run, computed by other probing code"  # sidebar, Units view
    assert ("with its probe (probe.nc); probe.nc was computed by other probing code (an earlier UnitScope): "
            "run the probe again in the Units view to update it.") in session.alerts[-1][1]
    # a probe made for other weights is not shown as this decoder's
    other = tiny_probe.copy()
    other.attrs["model_hash"] = "other"
    other.to_netcdf(run / "probe.nc")
    session.open_run("runs/demo-run/")
    _join(session, "open")
    assert session.decoder is dec  # the run's decoder is shared, reopened or not; its probe is read anew
    assert session.probe is None and session.probe_state == "none"
    assert "probe.nc was made for other weights; ignored" in session.alerts[-1][1]
    assert "mask.json" not in session.alerts[-1][1]
    (run / "mask.json").write_text("{}")  # an unzipped "Checkpoint and mask" export holds one
    session.open_run("runs/demo-run/")
    _join(session, "open")
    assert "a mask.json is beside it: load it in the Prune view" in session.alerts[-1][1]


def test_an_error_showing_an_opened_run_is_shown_and_the_session_is_not_left_busy(session, tmp_path, tiny_ws,
                                                                                   monkeypatch):
    tiny_ws.save(tmp_path / "runs" / "r")

    def fails(*a, **kw):
        raise RuntimeError("the views could not be drawn")

    monkeypatch.setattr(session, "set_decoder", fails)
    demo_loads = []  # (no decoder yet: the demo is loaded instead; not in the background here)
    monkeypatch.setattr(session, "load_demo", lambda: demo_loads.append(session.run))
    session.open_run("runs/r")
    _join(session, "open")
    level, text = session.alerts[-1]  # (it had been written to the log only, the page said nothing)
    assert level == "danger" and "RuntimeError: the views could not be drawn" in text
    # what is shown instead is said again: with no decoder yet, the demo (it had said "Opening ..." on)
    assert session.busy == "" and session.run == session._run_shown and len(demo_loads) == 1


def test_a_run_folder_whose_files_link_out_of_the_data_root_is_refused(session, tmp_path, tiny_ws, monkeypatch):
    monkeypatch.setattr(session, "load_demo", lambda: None)  # (what is shown instead: not loaded here)
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    tiny_ws.save(outside)
    run = tmp_path / "runs" / "linked"
    tiny_ws.save(run)
    (run / "model.pt").unlink()
    (run / "model.pt").symlink_to(outside / "model.pt")  # (only someone who writes to the data root can)
    session.open_run("runs/linked")
    assert "model.pt' lies outside the data root" in session.alerts[-1][1] and session.busy == ""


def test_bad_run_folders_are_refused_with_what_was_expected(session, tmp_path, tiny_ws, monkeypatch):
    demo_loads = []
    monkeypatch.setattr(session, "load_demo", lambda: demo_loads.append(session.run))
    (tmp_path / "empty").mkdir()
    session.open_run("empty")
    assert "'empty' is not a run folder: it must hold config.json and model.pt" in session.alerts[-1][1]
    session.open_run("../elsewhere")
    assert "outside the data root" in session.alerts[-1][1]
    run = tmp_path / "broken"
    tiny_ws.save(run)
    (run / "config.json").write_text("{not json")
    session.open_run("broken")
    assert "cannot be read" in session.alerts[-1][1] and session.busy == "" and session.decoder is None
    assert len(demo_loads) == 3  # nothing shown yet: the demo instead (each time)
    (run / "config.json").write_text('{"data": {"source": "demo"}}')
    session.open_run("broken")
    assert "cannot be read: 'model'" in session.alerts[-1][1]
    tiny_ws.save(run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["model"]["kind"] = "shallow"  # weights of another architecture: found out in the worker
    (run / "config.json").write_text(json.dumps(cfg))
    session.open_run("broken")
    _join(session, "open")
    assert session.busy == "" and session.decoder is None
    assert "does not match the shallow architecture" in session.alerts[-1][1]
    assert len(demo_loads) == 5
    session.run = "gone/"  # a link to a run that is gone: said, the URL cleared, the demo instead
    assert "does not exist under the data root" in session.alerts[-1][1]
    assert session.alerts[-1][1].endswith("The demo decoder is shown.")
    assert session.run == "" and demo_loads[-1] == "" and len(demo_loads) == 6
    # the page syncs its address once more before the cleared one reaches it: not tried (nor said) again
    n = len(session.alerts)
    session.run = "gone/"
    assert len(session.alerts) == n and session.run == "" and len(demo_loads) == 6


def test_the_run_shown_is_named_by_the_session_and_a_link_opens_it(session, tmp_path, tiny_ws, tiny_decoder):
    tiny_ws.save(tmp_path / "runs" / "linked")
    session.run = "runs/linked/"  # as a link ?run=runs/linked/ sets it
    _join(session, "open")
    opened = session.decoder
    assert opened.label == "linked (Deep4)" and session.run == "runs/linked/"
    session.run = "runs/linked/"  # the same name again: nothing reopens
    assert session.decoder is opened
    session.open_run("runs/missing")  # a failed open keeps the decoder and the name shown
    assert session.decoder is opened and session.run == "runs/linked/"
    assert session.status.startswith("linked (Deep4): test Pearson r")  # not "Opening ..." any more
    session.set_decoder(tiny_decoder)  # another decoder (the demo, or one trained here): no run
    assert session.run == ""
    session.open_run("runs/linked")  # opened from the Data view: the URL gets its name
    _join(session, "open")
    assert session.run == "runs/linked" and session.decoder is opened  # (the same folder: one shared decoder)


def test_a_run_opens_on_its_recording_only_under_the_data_root(session, tmp_path, tmp_path_factory, fif):
    from core.training import TrainConfig
    from core.workspace import DataSpec, Workspace

    outside = tmp_path_factory.mktemp("elsewhere") / "rec_raw.fif"
    fif(outside, [f"E{i}" for i in range(6)], seconds=60.0)
    ws = Workspace.create(DataSpec(source=str(outside), target="speed"), TrainConfig(max_epochs=1))
    ws.save(tmp_path / "runs" / "file-run")
    session.open_run("runs/file-run")
    level, text = session.alerts[-1]
    assert level == "danger" and f"it exists at {str(outside.resolve())!r}, outside the data root" in text
    # the decoder in use stays: none yet, or the demo where this process has it loaded already
    # (another test may have loaded it: the session falls back to it)
    assert session.decoder is None or session.decoder is session._demo.decoder
    (tmp_path / "runs" / "rec_raw.fif").write_bytes(outside.read_bytes())  # copied beside the run folder
    session.open_run("runs/file-run")
    _join(session, "open")
    assert session.decoder.label == "file-run (Deep4)"
    assert session.decoder.ws.spec.source == str((tmp_path / "runs" / "rec_raw.fif").resolve())
    assert session.decoder.ws.recording.ch_names == [f"E{i}" for i in range(6)]
    assert "no probe.nc beside it" in session.alerts[-1][1]


def test_sessions_opening_the_same_run_share_its_decoder(tmp_path, monkeypatch, tiny_ws):
    """A class opening one run loads it once (read-only and shared, as the demo); new weights
    in the folder make a new decoder."""
    monkeypatch.setenv("UNITSCOPE_DATA_ROOT", str(tmp_path))
    tiny_ws.save(tmp_path / "shared-run")
    a, b = Session(), Session()
    try:
        for s in (a, b):
            s.open_run("shared-run")
            _join(s, "open")
        assert a.decoder is b.decoder and a.decoder.label == "shared-run (Deep4)"
        model = tmp_path / "shared-run" / "model.pt"
        model.write_bytes(model.read_bytes())  # rewritten (a new mtime): the folder's weights changed
        os.utime(model, ns=(model.stat().st_atime_ns, model.stat().st_mtime_ns + 10**9))
        b.open_run("shared-run")
        _join(b, "open")
        assert b.decoder is not a.decoder
    finally:
        a.close()
        b.close()


def test_a_run_folder_whose_probe_was_stopped_says_so_and_a_stopped_probe_is_not_saved_over_it(
        session, tmp_path, tiny_ws, tiny_probe):
    """A probe.nc written stopped (by an earlier unitscope probe interrupted) opened as if complete
    ("Probe done"); and the app could save a stopped probe over a run's probe.nc."""
    from core._validation import UnitScopeError
    from dashboard.export import save_probe_beside_run
    from dashboard.views.units import UnitsView

    run = tmp_path / "runs" / "half"
    tiny_ws.save(run)
    stopped = tiny_probe.copy()
    stopped.attrs.update(progress=0.25, amp_iterations=1, phase_iterations=1, amp_n_iterations=4, phase_n_iterations=4)
    stopped.to_netcdf(run / "probe.nc")
    session.open_run("runs/half")
    _join(session, "open")
    assert session.probe is not None and session.probe_source == "probe.nc of half, stopped before its end"
    level, text = session.alerts[-1]
    assert "its probe.nc was stopped before its end, after 1 of 4 iterations per pass (25%): Run probe" in text
    view = UnitsView(session=session)
    view.__panel__()
    assert "this probe was stopped before its end" in view.probe_text.object
    with pytest.raises(UnitScopeError, match="The probe shown was stopped before its end.*run it to its end"):
        save_probe_beside_run(session)


def test_a_shallow_decoder_opens_on_its_hidden_block_not_the_output(session):
    from core.training import TrainConfig
    from core.workspace import DataSpec, Workspace
    from dashboard.decoder import Decoder

    ws = Workspace.create(DataSpec(duration=60.0), TrainConfig(model="shallow", max_epochs=1))
    session.layer = "conv_4"  # a Deep4 block (as a link may name): not in Shallow
    session.set_decoder(Decoder(ws, label="shallow"))
    assert session.layer_names == ["conv_time_spat", "conv_classifier"] and session.layer == "conv_time_spat"


def test_a_probe_run_in_the_app_is_saved_beside_the_run_and_opens_with_it(session, tmp_path, tiny_ws, tiny_probe,
                                                                        tiny_decoder):
    from dashboard.views.units import UnitsView

    session.set_decoder(tiny_decoder, probe=tiny_probe)  # the demo, or a decoder trained here: nowhere to save
    session.save_probe_to_run()
    assert session.alerts[-1][1].startswith("Probe not saved: The decoder shown was not opened from a run folder")
    tiny_ws.save(tmp_path / "runs" / "p1")
    session.open_run("runs/p1")
    _join(session, "open")
    view = UnitsView(session=session)
    view.__panel__()
    assert session.probe is None and not view.save_btn.visible
    session.param.update(probe=tiny_probe, control=tiny_probe, probe_state="done", probe_source="run here")
    assert view.save_btn.visible  # probed in the app: it can be kept with the run
    view.save_btn.clicks += 1
    assert {p.name for p in (tmp_path / "runs" / "p1").iterdir()} >= {"probe.nc", "probe_untrained.nc"}
    level, text = session.alerts[-1]
    assert level == "success" and "Saved probe.nc and probe_untrained.nc in runs/p1" in text
    assert session.probe_source == "probe.nc of p1" and not view.save_btn.visible
    other = Session()
    try:
        other.open_run("runs/p1")
        _join(other, "open")
        assert other.probe is not None and other.control is not None
        np.testing.assert_allclose(other.probe["amp_corr"].values, tiny_probe["amp_corr"].values)
    finally:
        other.close()


def _brainvision(tmp_path):
    """{name: bytes} of a small BrainVision recording (3 EEG channels, 'left'/'right' events)."""
    pytest.importorskip("pybv")
    import mne

    raw = mne.io.RawArray(np.random.default_rng(0).standard_normal((3, 3000)) * 1e-5,
                          mne.create_info(["C3", "C4", "Cz"], 100.0, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations([2.0, 5.0, 9.0], [0.5, 0.5, 0.5], ["left", "right", "left"]))
    out = tmp_path / "bv_src"
    out.mkdir()
    mne.export.export_raw(out / "rec.vhdr", raw, fmt="brainvision", verbose="error")
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}, raw


def test_upload_of_a_recording_in_several_files(session, tmp_path):
    """BrainVision's three files arrive one by one: nothing is read until the data file is
    there, the recording opens without markers (said), then again with its events."""
    files, _ = _brainvision(tmp_path)
    session.upload_files({"rec.vhdr": files["rec.vhdr"]})
    _join(session, "inspect")
    assert session.source == "upload" and session.recording_info == {}
    assert "rec.vhdr keeps its data in rec.eeg: drop that file too" in session.alerts[-1][1]
    session.upload_files({"rec.vhdr": files["rec.vhdr"], "rec.eeg": files["rec.eeg"]})  # a dropper's whole value
    _join(session, "inspect")
    assert session.recording_info["ch_names"] == ["C3", "C4", "Cz"] and session.recording_info["events"] == {}
    assert "without its markers (rec.vmrk not uploaded)" in session.alerts[-1][1]
    session.upload_files(dict(files))
    _join(session, "inspect")
    info = session.recording_info
    assert info["label"] == "rec.vhdr" and info["events"] == {"Comment/left": 2, "Comment/right": 1}
    assert session.target_options()[-1] == "events" and session.target == "events"
    n_alerts = len(session.alerts)
    session.upload_files(dict(files))  # nothing new: nothing read again, nothing said
    assert "inspect" not in [n for n, j in session._jobs.items() if j.running] and len(session.alerts) == n_alerts


def test_a_file_uploaded_again_with_other_content_of_the_same_size_is_read_again(session, tmp_path, fif):
    """A recording re-exported under its name has the old one's size (same channels, same
    length): it replaces the old file and is read again, and so is a re-made archive. A
    repeat of the same content is still skipped (a dropper's value is passed whole)."""
    import zipfile

    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    old = fif(tmp_path / "a" / "rec_raw.fif", ["C1", "C2"], seconds=10.0).read_bytes()
    new = fif(tmp_path / "b" / "rec_raw.fif", ["C3", "C4"], seconds=10.0).read_bytes()
    assert len(old) == len(new) and old != new  # (the case: only the content differs)
    session.upload_files({"rec_raw.fif": old})
    _join(session, "inspect")
    assert session.recording_info["ch_names"][:2] == ["C1", "C2"]
    session.upload_files({"rec_raw.fif": new})
    _join(session, "inspect")
    assert session.recording_info["ch_names"][:2] == ["C3", "C4"]
    assert (session._upload_dir / "rec_raw.fif").read_bytes() == new
    n_alerts = len(session.alerts)
    session.upload_files({"rec_raw.fif": new})  # the same content again: nothing read, nothing said
    assert "inspect" not in [n for n, j in session._jobs.items() if j.running] and len(session.alerts) == n_alerts

    def archive(data: bytes, name: str) -> bytes:
        path = tmp_path / name
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
            info = zipfile.ZipInfo("study/sub_raw.fif", date_time=(2026, 1, 1, 0, 0, 0))
            zf.writestr(info, data)
        return path.read_bytes()

    first, second = archive(old, "1.zip"), archive(new, "2.zip")
    assert len(first) == len(second) and first != second
    session.upload_files({"study.zip": first})
    _join(session, "inspect")
    assert session.recording_info["ch_names"][:2] == ["C1", "C2"]
    session.upload_files({"study.zip": second})
    _join(session, "inspect")
    assert session.recording_info["ch_names"][:2] == ["C3", "C4"]
    assert not any(p.name.startswith(".study.unpacking-") for p in session._upload_dir.iterdir())


def test_files_arriving_while_an_upload_is_read_are_looked_at(session, tmp_path, monkeypatch, fif):
    """The worker is held inside its look at a first recording; a second recording's three
    files arrive meanwhile and are taken by the same worker before it ends: the newest is
    shown (no 'already running' refusal, nothing lost)."""
    import dashboard.session_data as state_mod

    files, _ = _brainvision(tmp_path)
    first = fif(tmp_path / "first_raw.fif", ["C1", "C2"], seconds=10.0).read_bytes()
    entered, release = threading.Event(), threading.Event()
    real = state_mod.upload_choice

    def held(folder, order):
        entered.set()
        assert release.wait(30)
        return real(folder, order)

    monkeypatch.setattr(state_mod, "upload_choice", held)
    session.upload_files({"first_raw.fif": first})
    assert entered.wait(30)
    for name in ("rec.vhdr", "rec.eeg", "rec.vmrk"):
        session.upload_files({name: files[name]})
    release.set()
    _join(session, "inspect")
    assert session.recording_info["label"] == "rec.vhdr"
    assert session.recording_info["events"] == {"Comment/left": 2, "Comment/right": 1}
    assert not any("already running" in text for _, text in session.alerts)
    assert session.busy == ""


def test_upload_of_a_zipped_bids_folder_and_of_a_bad_archive(session, tmp_path):
    mne_bids = pytest.importorskip("mne_bids")
    import shutil

    _, raw = _brainvision(tmp_path)
    root = tmp_path / "study"
    mne_bids.write_raw_bids(raw, mne_bids.BIDSPath(subject="01", task="reach", root=root), format="BrainVision",
                            allow_preload=True, verbose="error")
    archive = shutil.make_archive(str(tmp_path / "study"), "zip", root_dir=root)
    session.upload_files({"study.zip": Path(archive).read_bytes()})
    _join(session, "inspect")
    info = session.recording_info
    assert info["ch_names"] == ["C3", "C4", "Cz"] and info["label"] == "study/"
    assert "Opened the BIDS folder study/ from study.zip" in session.alerts[-1][1]

    import zipfile

    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("../../escape.edf", b"x")
    session.upload_files({"evil.zip": (tmp_path / "evil.zip").read_bytes()})
    _join(session, "inspect")
    assert "outside its own folder" in " ".join(t for _, t in session.alerts)
    assert "evil.zip" not in session._upload_order and not (session._upload_dir / "evil.zip").exists()
    assert session.recording_info["ch_names"] == ["C3", "C4", "Cz"]  # the BIDS recording stays open


def test_files_brought_by_two_server_threads_at_once_land_in_one_folder(session, tmp_path, monkeypatch):
    """`panel serve --num-threads` hands each finished file of a drop to its own thread: both
    must land in the session's one upload folder (a race made two folders and lost a file).
    mkdtemp is held until both threads could be in it (2 s at most, then it goes on)."""
    import tempfile

    files, _ = _brainvision(tmp_path)
    barrier = threading.Barrier(2)
    real = tempfile.mkdtemp

    def held(*args, **kwargs):
        try:
            barrier.wait(timeout=2)
        except threading.BrokenBarrierError:
            pass  # the other thread is not here: it waits for the session's upload lock
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkdtemp", held)
    threads = [threading.Thread(target=session.upload_files, args=({n: files[n]},))
               for n in ("rec.eeg", "rec.vhdr")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    _join(session, "inspect")
    assert sorted(p.name for p in session._upload_dir.iterdir()) == ["rec.eeg", "rec.vhdr"]
    assert session.recording_info["ch_names"] == ["C3", "C4", "Cz"]


def test_a_bids_folder_lists_its_recordings_and_one_is_chosen(session, tmp_path, bids_study):
    assert bids_study == tmp_path / "study"  # under the session's data root
    session.inspect("study")
    _join(session, "inspect")
    info = session.recording_info
    assert [r["label"] for r in info["bids_recordings"]] == [
        "sub-01_task-reach_run-1 (eeg)", "sub-02_task-reach_run-1 (eeg)", "sub-02_task-reach_run-2 (eeg)"]
    assert info["bids_chosen"]["label"] == "sub-01_task-reach_run-1 (eeg)"
    session.target = "events:left,right"
    session.choose_bids(info["bids_recordings"][2]["entities"])
    _join(session, "inspect")
    info = session.recording_info
    assert info["bids_chosen"]["path"] == "sub-02/eeg/sub-02_task-reach_run-2_eeg.vhdr"
    session.target = "events:left,right"
    spec = session.data_spec()
    assert spec.source == str(tmp_path / "study") and spec.bids == info["bids_chosen"]["entities"]
    from core.io import read_recording

    first = read_recording(spec.source, bids=spec.bids).signals.sel(channel="C3").values[0]
    assert round(float(first) / 1e-5) == 22  # sub-02's run 2, as the conftest writes it


def test_channels_marked_bad_are_not_picked_by_default(session, tmp_path, fif):
    import mne

    path = fif(tmp_path / "bads_raw.fif", ["C3", "C4", "Cz"], seconds=10.0)
    raw = mne.io.read_raw_fif(path, preload=True, verbose="error")
    raw.info["bads"] = ["C4"]
    raw.save(path, overwrite=True, verbose="error")
    session.inspect("bads_raw.fif")
    _join(session, "inspect")
    assert session.recording_info["bads"] == ["C4"]
    assert session.target == "speed" and session.picks == ["C3", "Cz"]
    session.picks = ["C3", "C4", "Cz"]  # picked by name: used
    assert session.data_spec().picks == ["C3", "C4", "Cz"]


def test_label_targets_name_two_or_more_event_types():
    from core.recording import label_targets as event_targets

    # EEGMMIDB: rest, left and right fist; all three, or any two
    assert event_targets({"T0": 19, "T1": 10, "T2": 9}) == ["events", "events:T0,T1", "events:T0,T2", "events:T1,T2"]
    # a lone marker is not a class: the default leaves it out
    assert event_targets({"New Segment/": 1, "Stimulus/S  1": 40, "Stimulus/S  2": 38})[:2] == [
        "events:Stimulus/S  1,Stimulus/S  2", "events"]
    assert event_targets({"a": 3, "b": 4}) == ["events"]
    assert event_targets({"only": 30}) == [] and event_targets({}) == []


def test_a_zip_of_several_recordings_lists_them_and_one_is_chosen(session, tmp_path, fif):
    import zipfile

    for name, chans in (("a_raw.fif", ["C1", "C2"]), ("b_raw.fif", ["C3", "C4", "C5"])):
        fif(tmp_path / name, chans, seconds=10.0)
    with zipfile.ZipFile(tmp_path / "runs.zip", "w") as zf:
        zf.write(tmp_path / "a_raw.fif", "s1/a_raw.fif")
        zf.write(tmp_path / "b_raw.fif", "s1/b_raw.fif")
    session.upload_files({"runs.zip": (tmp_path / "runs.zip").read_bytes()})
    _join(session, "inspect")
    info = session.recording_info
    assert info["archive"] == "runs.zip" and info["archive_recordings"] == ["runs/s1/a_raw.fif", "runs/s1/b_raw.fif"]
    assert info["label"] == "runs/s1/a_raw.fif" and info["n_chans"] == 3  # C1, C2 and speed
    assert "holds 2 recordings; opened runs/s1/a_raw.fif: choose another" in session.alerts[-1][1]
    session.choose_in_archive("runs/s1/b_raw.fif")
    _join(session, "inspect")
    info = session.recording_info
    assert info["label"] == "runs/s1/b_raw.fif" and info["n_chans"] == 4
    assert info["archive_recordings"] == ["runs/s1/a_raw.fif", "runs/s1/b_raw.fif"]  # still offered
    session.choose_in_archive("../../etc/passwd")
    assert "is not a recording of the uploaded archive shown" in session.alerts[-1][1]


def test_weights_trained_elsewhere_are_imported_into_the_chosen_decoder(session, tmp_path):
    """The shipped demo decoder's state dict, as a file under the data root, put into a Deep4
    built for the demo recording: the same test r as the shipped decoder (0.970)."""
    import shutil

    from dashboard.files import list_weights

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "models").mkdir()
    shutil.copy(root / "assets" / "demo-deep4" / "model.pt", tmp_path / "models" / "deep4_demo.pt")
    (tmp_path / "run").mkdir()
    for f in ("model.pt", "config.json"):
        (tmp_path / "run" / f).write_text("x")
    (tmp_path / "interrupted").mkdir()  # a training interrupted before its end: resumed, not opened
    (tmp_path / "interrupted" / "checkpoint.partial.pt").write_text("x")
    assert list_weights(tmp_path) == ["models/deep4_demo.pt"]  # a run's own model.pt opens as a run
    session.import_weights("models")
    assert "is a folder; choose a weights file" in session.alerts[-1][1]
    session.import_weights("../outside.pt")
    assert "outside the data root" in session.alerts[-1][1]
    session.param.update(source="demo", model_kind="deep4")
    session.import_weights("models/deep4_demo.pt")
    assert session.busy == "importing"
    _join(session, "import", timeout=300)
    assert session.busy == "" and session.decoder is not None
    assert session.decoder.predictions()["metric"] == pytest.approx(0.970, abs=0.0015)
    assert "The weights of deep4_demo.pt in a Deep4 decoder: test Pearson r 0.970" in session.alerts[-1][1]
    session.param.update(model_kind="shallow")  # the wrong architecture: said, the decoder kept
    session.import_weights("models/deep4_demo.pt")
    _join(session, "import", timeout=300)
    assert session.busy == "" and "deep4_demo.pt" in session.decoder.label
    assert "do not fit the shallow decoder of these data" in session.alerts[-1][1]


def test_a_recording_kept_as_a_folder_is_read_as_one(session, tmp_path):
    """A CTF .ds folder is read by MNE's reader (here a broken one: its error, not a BIDS listing)."""
    (tmp_path / "meg.ds").mkdir()
    (tmp_path / "meg.ds" / "meg.meg4").write_bytes(b"junk")
    session.inspect("meg.ds/")
    _join(session, "inspect")
    assert "Cannot read" in session.alerts[-1][1] and "meg.res4 not found" in session.alerts[-1][1]
    assert session.busy == ""


def test_a_metric_on_few_trials_says_so_wherever_it_is_shown(session, tmp_path, stim_fif):
    """A label decoder tested on a handful of trials: the sidebar's status (and the alerts and
    the Overview, which take the same words) says how few, not only the confusion matrix."""
    from core.training import TrainConfig
    from core.workspace import DataSpec, Workspace
    from dashboard.decoder import Decoder

    stim_fif(tmp_path / "meg_raw.fif", seconds=40.0)
    ws = Workspace.create(DataSpec(source=str(tmp_path / "meg_raw.fif"), target="events", tmin=0.0, tmax=0.5),
                          TrainConfig(model="shallow", max_epochs=1))
    dec = Decoder(ws, label="few")
    n = len(dec.predictions()["true"])
    assert 0 < n < 20
    session.set_decoder(dec)
    assert f"on {n} test trial" in session.status and "very uncertain" in session.status
    from dashboard.views.overview import chance_aside

    assert f"on {n} test trial" in chance_aside(dec)


def test_a_file_read_in_a_worker_is_shown_on_the_page_s_loop(session, tmp_path, fif, served_doc):
    """A worker that finished reading a recording set the session's choices there and then, so
    the Data view's watchers ran on the worker: a choice the user made in that moment was
    dropped by the view's ``_syncing`` guard. Its result now waits for the page's loop."""
    from dashboard.views.data import DataView

    session.attach_document(served_doc)
    view = DataView(session=session)
    threads = []
    session.param.watch(lambda e: threads.append(threading.current_thread().name), "recording_info")
    fif(tmp_path / "ok_raw.fif", ["C3", "C4"])
    session.inspect("ok_raw.fif")
    _join(session, "inspect")
    assert session.busy == "inspecting" and session.recording_info == {} and not threads  # not on the worker
    while served_doc.ticks:  # the page's loop
        served_doc.ticks.pop(0)()
    assert session.busy == "" and session.recording_info["n_chans"] == 3 and session.target == "speed"
    assert threads == [threading.current_thread().name]
    assert view.target.value == "speed" and not view._syncing  # the view's choices, set on the loop


def test_a_job_callback_s_error_on_the_loop_is_shown_and_logged(session, served_doc, caplog):
    session.attach_document(served_doc)
    call = session._on_loop(lambda x: 1 / x, "training")
    call(0)
    assert not session.alerts  # waits for the loop
    with caplog.at_level(logging.ERROR, logger="dashboard.state"):
        served_doc.ticks.pop(0)()
    assert session.alerts[-1][0] == "danger" and "division by zero" in session.alerts[-1][1]
    assert "callback of job training failed" in caplog.text


def test_retiring_a_job_on_a_worker_as_another_starts_loses_neither():
    """``_retire`` (a training's end, on its worker) walked the session's jobs while the page
    started another one: "dictionary changed size during iteration", so the new decoder's
    most-activating windows never came. The walk is held in the middle here."""
    s = Session()
    inside, go_on = threading.Event(), threading.Event()

    class Held:  # a retired job whose "running" is read during the walk
        def __init__(self, running, gate=None):
            self._running, self.gate = running, gate

        @property
        def running(self):
            if self.gate is not None:
                inside.set()
                self.gate.wait(10)
            return self._running

        def stop(self):
            pass

        def join(self, timeout=None):
            return True

    s._jobs = {"activations": Held(True), "activations#1": Held(False, gate=go_on)}
    errors, started = [], []
    retire = threading.Thread(target=lambda: _catch(errors, lambda: s._retire("activations")))
    retire.start()
    assert inside.wait(10)
    start = threading.Thread(target=lambda: started.append(s._start("probe", lambda stop: None)))
    start.start()  # the page's Run probe, meanwhile
    go_on.set()
    retire.join(10)
    start.join(10)
    assert errors == [] and started and started[0] is not None
    assert "probe" in s._jobs and "activations" not in s._jobs  # started, and retired
    s.close()


def _catch(errors, fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the test reads it
        errors.append(repr(exc))


def test_a_worker_s_alert_is_drawn_on_the_page_s_loop(session, served_doc):
    """The alert boxes were built on the worker that raised the alert, where Panel reads the
    current document some 27 times per alert (an AttributeError there, in a probe's error
    path, left the probe "running" for good)."""
    from dashboard.views._common import AlertsView

    session.attach_document(served_doc)
    view = AlertsView(session=session)
    worker = threading.Thread(target=lambda: session.alert("The probe failed: out of memory."))
    worker.start()
    worker.join(10)
    assert session.alerts and len(view._col) == 0  # said, and drawn on the loop
    while served_doc.ticks:
        served_doc.ticks.pop(0)()
    assert len(view._col) == 1 and "out of memory" in view._col[0][0].object
