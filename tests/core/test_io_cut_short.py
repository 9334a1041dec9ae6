"""Files cut short (an unfinished copy or upload): an EDF whose data records are fewer than its
header announces was read, silently, as a shorter recording; an empty file or a header cut
short gave a reader's internal error."""
from __future__ import annotations

import numpy as np
import pytest

from core._validation import UnitScopeError
from core.io import edf_cut_short, read_recording


def test_a_whole_edf_reads_without_a_note(tmp_path, write_edf):
    path = write_edf(tmp_path / "whole.edf")
    assert edf_cut_short(path) == ("", "")
    rec = read_recording(path)
    assert rec.duration == pytest.approx(10.0, abs=0.02) and rec.summary()["read_note"] == ""


def test_an_edf_cut_short_says_how_much_it_holds(tmp_path, write_edf, caplog, capsys):
    from core.cli import main

    whole = write_edf(tmp_path / "whole.edf").read_bytes()
    path = tmp_path / "cut.edf"
    path.write_bytes(whole[: 256 * 3 + 4 * 400 + 123])  # 4 whole records of 2 x 100 int16, and a piece
    error, note = edf_cut_short(path)
    assert error == ""
    assert note.startswith("the file holds 4 of the 10 data records its header announces (4 of 10 s): it was cut "
                           "short")
    rec = read_recording(path)
    assert rec.duration == pytest.approx(4.0, abs=0.02)  # what it holds, as MNE reads it
    assert rec.summary()["read_note"] == note
    assert note in caplog.text  # a warning every command shows
    assert main(["info", str(path)]) == 0
    assert f"caution    {note}" in capsys.readouterr().out


def test_an_empty_file_or_a_header_cut_short_is_one_clear_error(tmp_path, write_edf):
    whole = write_edf(tmp_path / "whole.edf").read_bytes()
    (tmp_path / "empty.fif").write_bytes(b"")
    with pytest.raises(UnitScopeError, match=r"'.*empty.fif' is empty \(0 bytes\)"):
        read_recording(tmp_path / "empty.fif")
    (tmp_path / "head.edf").write_bytes(whole[:500])
    with pytest.raises(UnitScopeError, match="its header is cut short: 2 signals need 768 bytes of header, the file "
                                             "holds 500"):
        read_recording(tmp_path / "head.edf")
    (tmp_path / "tiny.bdf").write_bytes(whole[:100])
    with pytest.raises(UnitScopeError, match="its header is cut short: the file holds 100 bytes, a BDF header"):
        read_recording(tmp_path / "tiny.bdf")


def test_a_bci2000_file_says_what_its_header_lacks_or_that_it_is_cut_short(tmp_path):
    """A BCI2000 header the reader could not parse said "'NoneType' object has no attribute
    'group'"; it names what is missing, and a header cut short says so with its length."""
    header = ("HeaderLen= {n:5d} SourceCh= 2 StatevectorLen= 1\n[ State Vector Definition ]\nRunning 1 0 0 0\n"
              "[ Parameter Definition ]\nSource int SamplingRate= 100Hz\n"
              "Source floatlist SourceChGain= 2 1 1\nSource floatlist SourceChOffset= 2 0 0\n")
    text = header.format(n=len(header.format(n=0)))
    samples = np.zeros((50, 5), np.uint8).tobytes()  # 2 int16 channels and 1 state byte per sample
    whole = tmp_path / "whole.dat"
    whole.write_bytes(text.encode("latin1") + samples)
    assert read_recording(whole).n_times == 50
    cut = tmp_path / "cut.dat"
    cut.write_bytes(text.encode("latin1")[:100])
    with pytest.raises(UnitScopeError, match=f"its header is cut short: HeaderLen says {len(text)} bytes, the file "
                                             "holds 100"):
        read_recording(cut)
    lacking = tmp_path / "lacking.dat"
    lacking.write_bytes(text.replace("SamplingRate", "Rate").encode("latin1") + samples)
    with pytest.raises(UnitScopeError, match="not a readable BCI2000 .dat file: its header has no SamplingRate"):
        read_recording(lacking)
    # the format has no sample count: a file ending inside a sample was cut short (or its header
    # does not fit its samples), which is said; a whole file says nothing
    assert "read_note" not in read_recording(whole).signals.attrs
    mid = tmp_path / "mid.dat"
    mid.write_bytes(text.encode("latin1") + samples[:-3])
    rec = read_recording(mid)
    assert rec.n_times == 49 and "ends 2 bytes into a sample of 5 bytes: it was cut short" in rec.signals.attrs["read_note"]
    # a header whose channel count and channel names disagree (read as garbage channels Ch1..)
    named = text.replace("Source int SamplingRate", "Source list ChannelNames= 3 C3 C4 Cz\nSource int SamplingRate")
    wrong = tmp_path / "wrong.dat"
    wrong.write_bytes(named.replace(f"HeaderLen= {len(text):5d}", f"HeaderLen= {len(named):5d}").encode("latin1")
                      + samples)
    with pytest.raises(UnitScopeError, match="its header says SourceCh=2 but names 3 channels"):
        read_recording(wrong)


def test_a_brainvision_file_cut_short_says_its_markers_lie_past_the_end(tmp_path):
    """A BrainVision header does not say how many samples follow: a data file cut short opened
    as a shorter recording, its markers past the end dropped, without a word. Markers past the
    end of the data make the caution; a whole file has none."""
    mne = pytest.importorskip("mne")
    pytest.importorskip("pybv")
    info = mne.create_info(["C3", "C4"], 250.0, "eeg")
    raw = mne.io.RawArray(np.random.default_rng(0).standard_normal((2, 2500)) * 1e-5, info, verbose="error")
    raw.set_annotations(mne.Annotations([1.0, 3.0, 5.0, 7.0, 9.0], 0.0, ["a", "b", "a", "b", "a"]))
    mne.export.export_raw(tmp_path / "rec.vhdr", raw, fmt="brainvision", verbose="error")
    whole = read_recording(tmp_path / "rec.vhdr")
    assert whole.n_times == 2500 and whole.summary()["read_note"] == ""
    data = (tmp_path / "rec.eeg").read_bytes()
    (tmp_path / "rec.eeg").write_bytes(data[: len(data) // 2])
    cut = read_recording(tmp_path / "rec.vhdr")
    assert cut.n_times == 1250
    assert len(cut.events) == 3  # the markers at 7 and 9 s are past the data's end: MNE drops them
    assert cut.summary()["read_note"] == ("2 of its 5 markers lie past the end of its data (up to sample 2251; the "
                                          "data end at sample 1250): the data file may be cut short (an unfinished "
                                          "copy or upload?); those markers are left out")

