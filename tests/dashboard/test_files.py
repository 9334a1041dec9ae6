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
