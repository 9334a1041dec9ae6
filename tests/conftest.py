"""Shared fixtures: a short demo recording, small decoders, the shared real-data folder."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_addoption(parser):
    parser.addoption("--ui", action="store_true", default=False,
                     help="also run the browser tests (marker 'ui'; needs /usr/bin/chromium)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--ui"):
        return
    skip = pytest.mark.skip(reason="browser test: run with --ui")
    for item in items:
        if "ui" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the project; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real recordings not available at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def short_demo():
    """90 s of the demo recording (seed 0)."""
    from core.demo import simulate_reaching

    return simulate_reaching(seed=0, duration=90.0)


@pytest.fixture()
def rng():
    return np.random.default_rng(12345)


def write_bids_study(root: Path, recordings=(("01", "1"), ("02", "1"), ("02", "2")), *, seconds=60.0):
    """A BIDS folder (BrainVision files, written by mne-bids) of small EEG recordings, one per
    (subject, run): 3 channels at 100 Hz, 'left'/'right' events every 2 s, and the first
    sample of C3 equal to 1e-5 * (10 * subject + run) so a test can tell which was read."""
    import mne
    import mne_bids

    for sub, run in recordings:
        rng = np.random.default_rng(int(sub) * 10 + int(run))
        n = int(seconds * 100)
        data = rng.standard_normal((3, n)) * 1e-5
        data[0, 0] = 1e-5 * (10 * int(sub) + int(run))
        raw = mne.io.RawArray(data, mne.create_info(["C3", "C4", "Cz"], 100.0, "eeg"), verbose="error")
        onsets = np.arange(1.0, seconds - 3.0, 2.0)
        raw.set_annotations(mne.Annotations(onsets, 0.5, np.where(np.arange(len(onsets)) % 2, "right", "left")))
        path = mne_bids.BIDSPath(subject=sub, task="reach", run=run, datatype="eeg", root=root)
        mne_bids.write_raw_bids(raw, path, format="BrainVision", allow_preload=True, overwrite=True, verbose="error")
    return root


@pytest.fixture()
def bids_study(tmp_path):
    """:func:`write_bids_study` under tmp_path: sub-01 run 1, sub-02 runs 1 and 2."""
    pytest.importorskip("mne_bids")
    pytest.importorskip("pybv")
    return write_bids_study(tmp_path / "study")


def _write_edf(path, *, n_records=10, sfreq=100, names=("C3", "C4")):
    """A plain EDF (no annotations): ``n_records`` records of 1 s, int16 sine waves."""
    ns = len(names)

    def field(values, width):
        return "".join(str(v)[:width].ljust(width) for v in values)

    head = (field(["0"], 8) + field(["X X X X"], 80) + field(["Startdate 01-JAN-2020 X X X"], 80)
            + "01.01.20" + "00.00.00" + field([256 * (ns + 1)], 8) + " " * 44 + field([n_records], 8)
            + field([1], 8) + field([ns], 4))
    head += (field(names, 16) + field(["AgAgCl"] * ns, 80) + field(["uV"] * ns, 8) + field([-3200] * ns, 8)
             + field([3200] * ns, 8) + field([-32768] * ns, 8) + field([32767] * ns, 8) + field([""] * ns, 80)
             + field([sfreq] * ns, 8) + field([""] * ns, 32))
    assert len(head) == 256 * (ns + 1)
    t = np.arange(n_records * sfreq) / sfreq
    data = (np.sin(2 * np.pi * 10 * t) * 10000).astype("<i2").reshape(n_records, 1, sfreq)
    body = np.concatenate([data] * ns, axis=1).tobytes()  # record by record, channel by channel
    path.write_bytes(head.encode("ascii") + body)
    return path


@pytest.fixture(scope="session")
def write_edf():
    """``write_edf(path, n_records=10, sfreq=100, names=("C3", "C4"))``: a small plain EDF file."""
    return _write_edf
