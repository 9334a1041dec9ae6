"""Data root confinement, recording listing and upload limits."""
from __future__ import annotations

import os

import pytest

from core._validation import UnitScopeError
from dashboard.files import list_recordings, resolve_in_root, save_upload


def test_resolve_inside_root(tmp_path):
    (tmp_path / "sub").mkdir()
    f = tmp_path / "sub" / "a.edf"
    f.write_bytes(b"x")
    assert resolve_in_root(tmp_path, "sub/a.edf") == f.resolve()
    assert resolve_in_root(tmp_path, str(f)) == f.resolve()


@pytest.mark.parametrize("path", ["../outside.edf", "sub/../../outside.edf", "/etc/passwd"])
def test_paths_outside_root_are_refused(tmp_path, path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "outside.edf").write_bytes(b"x")
    with pytest.raises(UnitScopeError, match="outside the data root"):
        resolve_in_root(root, path)


def test_symlink_escape_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.edf").write_bytes(b"x")
    os.symlink(tmp_path / "secret.edf", root / "link.edf")
    with pytest.raises(UnitScopeError, match="outside the data root"):
        resolve_in_root(root, "link.edf")


def test_missing_and_empty_paths(tmp_path):
    with pytest.raises(UnitScopeError, match="does not exist"):
        resolve_in_root(tmp_path, "nope.edf")
    with pytest.raises(UnitScopeError, match="No recording chosen"):
        resolve_in_root(tmp_path, "  ")


def test_an_empty_run_or_weights_box_names_what_is_missing(tmp_path, monkeypatch):
    """Open decoder (or Use weights) with an empty box said "No recording chosen: pick a file
    under the data root", while the demo recording was chosen: it names what is missing."""
    from dashboard.state import Session

    monkeypatch.setenv("UNITSCOPE_DATA_ROOT", str(tmp_path))
    s = Session()
    try:
        s.open_run("")
        assert s.alerts[-1][1].startswith("No run folder chosen: type its path, or press List runs")
        s.import_weights("  ")
        assert s.alerts[-1][1].startswith("No weights file chosen: type its path, or press List files beside Use "
                                          "weights")
        with pytest.raises(UnitScopeError, match="Run folder 'gone' does not exist under the data root"):
            resolve_in_root(s.root, "gone", what="run folder")
    finally:
        s.close()


def test_list_recordings_finds_files_and_bids_roots(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.fif").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "bids").mkdir()
    (tmp_path / "bids" / "dataset_description.json").write_text("{}")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "y.edf").write_bytes(b"x")
    assert list_recordings(tmp_path) == ["a/x.fif", "bids/"]


def test_upload_limit_and_names(tmp_path):
    with pytest.raises(UnitScopeError, match="above the limit"):
        save_upload(tmp_path, "big.edf", b"x" * 2000, max_bytes=1000)
    with pytest.raises(UnitScopeError, match="Unsupported file type"):
        save_upload(tmp_path, "evil.py", b"x", max_bytes=1000)
    with pytest.raises(UnitScopeError, match="empty"):
        save_upload(tmp_path, "a.edf", b"", max_bytes=1000)
    p = save_upload(tmp_path, "../../<script>x.fif", b"abc", max_bytes=1000)
    assert p.parent == tmp_path and p.name.endswith(".fif") and "<" not in p.name and ".." not in p.name
    assert p.read_bytes() == b"abc"


def test_run_folders_are_listed_and_their_recordings_found_under_the_root(tmp_path):
    from dashboard.files import list_runs, run_recording

    for folder in ("runs/a", "runs/b/deeper", ".hidden/c", "half"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "config.json").write_text("{}")
        if folder != "half":
            (tmp_path / folder / "model.pt").write_bytes(b"")
    assert list_runs(tmp_path) == ["runs/a/", "runs/b/deeper/"]  # not hidden, not without model.pt
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "s1_raw.fif").write_bytes(b"x")
    run = tmp_path / "runs" / "a"
    # a path relative to where the run was trained: tried under the root, then beside the run
    assert run_recording(tmp_path, run, "data/s1_raw.fif") == tmp_path / "data" / "s1_raw.fif"
    (run / "s2_raw.fif").write_bytes(b"x")
    assert run_recording(tmp_path, run, "/gone/lab/s2_raw.fif") == run / "s2_raw.fif"  # moved: found by name
    with pytest.raises(UnitScopeError, match=r"trained on 'nowhere.fif', but it is not under the data root"):
        run_recording(tmp_path, run, "nowhere.fif")
    # trained from a folder below the root (study/), the run two levels down: where the recording
    # was in full (config.json's source_path) finds it; without it, the relative path did not
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "s3_raw.fif").write_bytes(b"x")
    with pytest.raises(UnitScopeError, match="not under the data root"):
        run_recording(tmp_path, run, "s3_raw.fif")
    assert run_recording(tmp_path, run, "s3_raw.fif", str(tmp_path / "study" / "s3_raw.fif")) == \
        tmp_path / "study" / "s3_raw.fif"


def _zip(path, members: dict):
    """A .zip holding ``{name: bytes}``; a value None makes a link member."""
    import stat
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            if data is None:
                info = zipfile.ZipInfo(name)
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, "/etc/passwd")
            else:
                zf.writestr(name, data)
    return path


def test_companion_files_and_archives_are_taken_with_their_names(tmp_path):
    """A BrainVision header names its data file: usual names are saved unchanged."""
    for name in ("sub-01_task-reach_eeg.vhdr", "sub-01_task-reach_eeg.vmrk", "sub-01_task-reach_eeg.eeg",
                 "s1.set", "s1.fdt", "bids.zip", "Rec.VHDR"):
        assert save_upload(tmp_path, name, b"x", max_bytes=1000).name == name
    assert save_upload(tmp_path, "my rec.eeg", b"x", max_bytes=1000).name == "my_rec.eeg"
    with pytest.raises(UnitScopeError, match=r"files that go with one \(\.eeg, \.vmrk, \.fdt\)"):
        save_upload(tmp_path, "notes.txt", b"x", max_bytes=1000)


@pytest.mark.parametrize("members, match", [
    ({"../evil.edf": b"x"}, "outside its own folder"),
    ({"a/../../evil.edf": b"x"}, "outside its own folder"),
    ({"/abs.edf": b"x"}, "outside its own folder"),
    ({"link.edf": None}, "holds a link"),
    ({"big.edf": b"0" * 5000}, r"unpacks to .* above"),
])
def test_unsafe_or_oversized_archives_are_refused_with_nothing_written(tmp_path, members, match):
    from dashboard.files import unpack_zip

    z = _zip(tmp_path / "up.zip", members)
    with pytest.raises(UnitScopeError, match=match):
        unpack_zip(z, tmp_path / "out", max_bytes=1000)  # unpacks to at most 4000 bytes
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.edf").exists()
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(UnitScopeError, match="not a readable .zip"):
        unpack_zip(tmp_path / "bad.zip", tmp_path / "out", max_bytes=1000)


def test_a_damaged_archive_is_refused_in_words_and_leaves_nothing_half_unpacked(tmp_path):
    """A member whose bytes were damaged (bad CRC) gave "Unexpected error (BadZipFile ...)" and
    left a half-unpacked folder; an earlier upload of the same name stays as it was."""
    from dashboard.files import unpack_zip

    good = _zip(tmp_path / "study.zip", {"a.txt": b"first", "b.txt": b"second"})
    first = unpack_zip(good, tmp_path / "out", max_bytes=10_000)
    assert (first / "b.txt").read_bytes() == b"second"
    data = bytearray(good.read_bytes())
    at = data.find(b"second")
    data[at:at + 6] = b"SECOND"  # stored (not deflated): the CRC no longer matches
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "study.zip").write_bytes(bytes(data))
    with pytest.raises(UnitScopeError, match=r"'study.zip' could not be unpacked \(.*\): a damaged, encrypted"):
        unpack_zip(tmp_path / "up" / "study.zip", tmp_path / "out", max_bytes=10_000)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["study"]  # no staging folder left
    assert (first / "b.txt").read_bytes() == b"second"  # the earlier upload as it was
    (tmp_path / "out" / "rec.edf").write_bytes(b"uploaded before")  # "rec.edf.zip" would unpack onto it
    zipped = _zip(tmp_path / "up" / "rec.edf.zip", {"rec.edf": b"x"})
    with pytest.raises(UnitScopeError, match=r"'rec.edf.zip' would unpack into 'rec.edf', which is a file"):
        unpack_zip(zipped, tmp_path / "out", max_bytes=10_000)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["rec.edf", "study"]


def test_upload_choice_waits_for_data_files_and_opens_the_newest(tmp_path):
    """The newest recording is opened once its data file is there; missing markers are said."""
    from dashboard.files import unpack_zip, upload_choice

    (tmp_path / "a.edf").write_bytes(b"x")
    assert upload_choice(tmp_path, ["a.edf"]) == (tmp_path / "a.edf", "")
    (tmp_path / "r.vhdr").write_text("[Common Infos]\nDataFile=r.eeg\nMarkerFile=r.vmrk\n")
    path, note = upload_choice(tmp_path, ["a.edf", "r.vhdr"])
    assert path is None and "r.vhdr keeps its data in r.eeg: drop that file too" in note
    (tmp_path / "r.eeg").write_bytes(b"x")
    path, note = upload_choice(tmp_path, ["a.edf", "r.vhdr", "r.eeg"])
    assert path == tmp_path / "r.vhdr" and "without its markers (r.vmrk not uploaded)" in note
    (tmp_path / "r.vmrk").write_text("x")
    assert upload_choice(tmp_path, ["a.edf", "r.vhdr", "r.eeg", "r.vmrk"]) == (tmp_path / "r.vhdr", "")
    path, note = upload_choice(tmp_path, ["r.vmrk"])
    assert path is None and "part of a recording: drop its header too" in note

    (tmp_path / "bids" / "sub-01" / "eeg").mkdir(parents=True)
    (tmp_path / "bids" / "dataset_description.json").write_text("{}")
    (tmp_path / "bids" / "sub-01" / "eeg" / "x_eeg.edf").write_bytes(b"x")
    import shutil

    shutil.make_archive(str(tmp_path / "bids"), "zip", root_dir=tmp_path, base_dir="bids")
    shutil.rmtree(tmp_path / "bids")
    unpack_zip(tmp_path / "bids.zip", tmp_path)
    path, note = upload_choice(tmp_path, ["a.edf", "bids.zip"])
    assert path == tmp_path / "bids" / "bids" and "BIDS folder bids/bids/" in note
    _zip(tmp_path / "two.zip", {"x/one.edf": b"x", "x/two.fif": b"x", "readme.txt": b"x"})
    unpack_zip(tmp_path / "two.zip", tmp_path)
    path, note = upload_choice(tmp_path, ["two.zip"])
    assert path == tmp_path / "two" / "x" / "one.edf" and "holds 2 recordings; opened two/x/one.edf: choose" in note
    _zip(tmp_path / "none.zip", {"readme.txt": b"x"})
    unpack_zip(tmp_path / "none.zip", tmp_path)
    path, note = upload_choice(tmp_path, ["a.edf", "none.zip"])
    assert path is None and "none.zip holds no recording" in note


def test_recordings_kept_as_folders_are_listed(tmp_path):
    (tmp_path / "sub" / "meg.ds").mkdir(parents=True)
    (tmp_path / "sub" / "meg.ds" / "meg.meg4").write_bytes(b"x")
    (tmp_path / "net.mff").mkdir()
    (tmp_path / "a.edf").write_bytes(b"x")
    assert list_recordings(tmp_path) == ["a.edf", "net.mff/", "sub/meg.ds/"]


def test_all_of_a_sessions_uploads_together_are_limited(tmp_path):
    """Each file is checked against the upload limit, and all of a session's files together
    (archives unpacked included) against SESSION_UPLOAD_FACTOR times it: a drop of many files
    cannot hold many times the limit. A refused file writes nothing; one replaced counts as freed."""
    import zipfile

    from dashboard.files import SESSION_UPLOAD_FACTOR, session_room, unpack_zip

    limit = 1000
    assert session_room(None, max_bytes=limit) == session_room(tmp_path / "none", max_bytes=limit) == 4000
    assert SESSION_UPLOAD_FACTOR == 4
    for i in range(4):
        save_upload(tmp_path, f"r{i}.edf", b"x" * 900, max_bytes=limit, room=session_room(tmp_path, max_bytes=limit))
    assert session_room(tmp_path, max_bytes=limit) == 400
    with pytest.raises(UnitScopeError, match=r"'r4\.edf' \(0\.0 MB\) would take this session's uploads past 0\.0 MB \(4 x the upload limit"):
        save_upload(tmp_path, "r4.edf", b"x" * 900, max_bytes=limit, room=session_room(tmp_path, max_bytes=limit))
    assert not (tmp_path / "r4.edf").exists()
    save_upload(tmp_path, "r0.edf", b"y" * 950, max_bytes=limit, room=session_room(tmp_path, max_bytes=limit))
    assert (tmp_path / "r0.edf").read_bytes() == b"y" * 950  # replaced: 900 freed, 950 taken
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr("a/rec.edf", b"z" * 600)
    with pytest.raises(UnitScopeError, match=r"'a\.zip' unpacked .* would take this session's uploads past"):
        unpack_zip(tmp_path / "a.zip", tmp_path, max_bytes=limit, room=session_room(tmp_path, max_bytes=limit))
    assert not (tmp_path / "a").exists()
    assert unpack_zip(tmp_path / "a.zip", tmp_path, max_bytes=limit, room=None) == tmp_path / "a"


def test_the_server_lets_go_of_an_upload_past_the_limit_as_it_arrives():
    """The browser's max_file_size is a property any client may change: the server held every
    chunk of a 60 MB upload, under a 1 MB limit, before it refused the file."""
    import types

    from dashboard.views.data import LimitedFileDropper

    refused = []
    dropper = LimitedFileDropper(limit_bytes=1000, on_refused=lambda name, size: refused.append((name, size)))

    def send(name, chunks, size):
        for i in range(1, chunks + 1):
            dropper._process_event(types.SimpleNamespace(event_name="upload_event", data={
                "name": name, "chunk": i, "total_chunks": chunks, "data": b"x" * size, "type": "application/x"}))
            if name == "big.edf" and i == 3:  # refused at the chunk that passed the limit: nothing held
                assert name not in dropper._file_buffer and refused == [("big.edf", 1200)]

    send("big.edf", 10, 400)
    assert refused == [("big.edf", 1200)] and "big.edf" not in dropper.value and not dropper._file_buffer
    send("small.edf", 2, 300)
    assert dropper.value["small.edf"] == b"x" * 600 and len(refused) == 1
    send("big.edf", 2, 300)  # the same name again, within the limit: taken
    assert dropper.value["big.edf"] == b"x" * 600


def test_unfinished_uploads_under_many_names_are_let_go_past_the_sessions_room():
    """Chunk 1 of 2 of 900 kB under 60 names, each under a 1 MB limit, had piled up 54 MB."""
    import types

    from dashboard.files import SESSION_UPLOAD_FACTOR
    from dashboard.views.data import LimitedFileDropper

    refused = []
    dropper = LimitedFileDropper(limit_bytes=1000, on_refused=lambda name, size: refused.append(name))
    for i in range(60):
        dropper._process_event(types.SimpleNamespace(event_name="upload_event", data={
            "name": f"f{i}.edf", "chunk": 1, "total_chunks": 2, "data": b"x" * 900, "type": "application/x"}))
    held = sum(len(b) for parts in dropper._file_buffer.values() for b in parts)
    assert held <= SESSION_UPLOAD_FACTOR * 1000 and len(refused) >= 55
    name = next(iter(dropper._file_buffer))
    dropper._process_event(types.SimpleNamespace(event_name="delete_event", data={"name": name}))
    assert name not in dropper._file_buffer  # removed while it arrived: its bytes let go
