"""Fixtures of the CLI tests: a small recording named as EEGMMIDB names its channels, and
run folders trained on it."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from core.cli import main

# EEGMMIDB's first 32 channel names: 10-05 positions padded with dots to four characters
EDF_NAMES = ["Fc5.", "Fc3.", "Fc1.", "Fcz.", "Fc2.", "Fc4.", "Fc6.", "C5..", "C3..", "C1..", "Cz..", "C2..", "C4..",
             "C6..", "Cp5.", "Cp3.", "Cp1.", "Cpz.", "Cp2.", "Cp4.", "Cp6.", "Fp1.", "Fpz.", "Fp2.", "Af7.", "Af3.",
             "Afz.", "Af4.", "Af8.", "F7..", "F5..", "F3.."]


@pytest.fixture(scope="session")
def edf_like(tmp_path_factory):
    """60 s of the demo at 250 Hz as a FIF file: 32 EEG channels with EEGMMIDB's names, the
    hand speed as 'EyetrackerLeftEyeGazeX' and a copy as 'EyetrackerLeftEyeGazeY' (misc), and
    'T1'/'T2' annotations every 3 s."""
    mne = pytest.importorskip("mne")
    from core.demo import simulate_reaching

    rec = simulate_reaching(duration=60.0)
    names = EDF_NAMES + ["EyetrackerLeftEyeGazeX", "EyetrackerLeftEyeGazeY"]
    info = mne.create_info(names, rec.sfreq, ["eeg"] * 32 + ["misc"] * 2)
    speed = rec.target.values[None]
    data = np.vstack([rec.signals.values * 1e-5, speed, speed[:, ::-1]]).astype(np.float64)
    raw = mne.io.RawArray(data, info, verbose="error")
    onsets = np.arange(1.0, 57.0, 3.0)
    raw.set_annotations(mne.Annotations(onsets, 2.0, ["T1" if i % 2 else "T2" for i in range(len(onsets))]))
    path = tmp_path_factory.mktemp("edf_like") / "edf_like_raw.fif"
    raw.save(path, verbose="error")
    return path


@pytest.fixture(scope="session")
def label_run(edf_like, tmp_path_factory):
    """A shallow decoder of T1 vs T2 trained one epoch on ``edf_like`` (a few test trials):
    the run folder, and what ``unitscope train`` wrote to stdout and stderr."""
    out = tmp_path_factory.mktemp("runs") / "labels"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main(["train", "--data", str(edf_like), "--target", "events:T1,T2", "--tmin", "0", "--tmax", "2",
                   "--model", "shallow", "--epochs", "1", "--threads", "1", "--out", str(out)])
    assert rc == 0, stderr.getvalue()
    return out, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="session")
def gaze_args():
    """``unitscope train`` options of a shallow regression decoder of 8 channels of ``edf_like``
    decoding its gaze trace (the demo's 32 channels do not fit it)."""
    return ["--target", "EyetrackerLeftEyeGazeX", "--picks", "C3..,C4..,Cz..,Fc3.,Fc4.,Cp3.,Cp4.,Cpz.",
            "--model", "shallow", "--n-times", "700", "--threads", "1"]


@pytest.fixture(scope="session")
def gaze_run(edf_like, gaze_args, tmp_path_factory):
    """A run of ``gaze_args`` trained one epoch; tests copy it before changing it."""
    out = tmp_path_factory.mktemp("runs") / "gaze"
    assert main(["train", "--data", str(edf_like), *gaze_args, "--epochs", "1", "--out", str(out)]) == 0
    return out
