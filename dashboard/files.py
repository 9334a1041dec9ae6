"""Where the app may read recordings: a data root, a recording listing, uploads.

The app reads files only under one data root (``UNITSCOPE_DATA_ROOT``, default ``./data``
when it exists, else the home folder); paths typed by a user are resolved and must stay
inside it (no ``..`` or symlink escapes). Uploads are size-limited
(``UNITSCOPE_MAX_UPLOAD_MB``, default 200) and written under a per-session temporary
folder with a sanitised name. No Panel code here.
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path

from core._validation import UnitScopeError
from core.io import is_bids_root, missing_companions
from core.training import PARTIAL_FILE

__all__ = ["RECORDING_SUFFIXES", "COMPANION_SUFFIXES", "data_root", "max_upload_bytes", "resolve_in_root",
           "list_recordings", "list_runs", "is_run_folder", "run_recording", "save_upload", "unpack_zip",
           "upload_choice", "archive_recordings", "list_weights", "WEIGHTS_SUFFIXES", "session_room"]

RUN_FOLDER_FILES = ("config.json", "model.pt")  # what makes a folder a run folder (``Workspace.save``)

# Files MNE (or UnitScope's BCI2000 reader) can open; BIDS roots are listed as folders.
RECORDING_SUFFIXES = (".fif", ".fif.gz", ".edf", ".bdf", ".gdf", ".vhdr", ".set", ".cnt",
                      ".dat", ".mff", ".nxe", ".egi", ".con", ".sqd", ".ds", ".nwb", ".snirf")
# Files that hold part of a recording another file names: BrainVision's data and markers
# (beside its .vhdr), EEGLAB's data (beside its .set). Uploaded with it, never opened alone.
COMPANION_SUFFIXES = (".eeg", ".vmrk", ".fdt")
ZIP_UNPACK_FACTOR = 4  # [A] a .zip may unpack to at most this many times the upload limit
ZIP_MAX_MEMBERS = 20000
# [A] all of one browser session's uploads together (files kept, archives unpacked): at most
# this many times the upload limit, so a drop of many files cannot hold many times the limit.
SESSION_UPLOAD_FACTOR = 4


def data_root() -> Path:
    """The folder the app may read from (resolved, absolute)."""
    env = os.environ.get("UNITSCOPE_DATA_ROOT")
    if env:
        return Path(env).expanduser().resolve()
    local = Path.cwd() / "data"
    return (local if local.is_dir() else Path.home()).resolve()


def max_upload_bytes() -> int:
    """Upload size limit in bytes (``UNITSCOPE_MAX_UPLOAD_MB``, default 200 MB)."""
    try:
        mb = float(os.environ.get("UNITSCOPE_MAX_UPLOAD_MB", "200"))
    except ValueError:
        mb = 200.0
    return int(max(mb, 0.001) * 1024 * 1024)


def _inside(root: Path, full: Path) -> bool:
    """``full`` (resolved) is ``root`` (resolved) or lies under it."""
    return full == root or root in full.parents


def resolve_in_root(root: str | Path, path: str | Path, *, what: str = "recording",
                    choose: str = "pick a file under the data root") -> Path:
    """Resolve ``path`` (relative to ``root``, or absolute) and check it stays inside ``root``.

    ``what`` names what the path is for in the messages ("recording", "run folder", "weights
    file", ...) and ``choose`` how to choose one: an empty box for a run folder said "No
    recording chosen" while the demo recording was.

    Raises
    ------
    UnitScopeError
        When the resolved path (symlinks followed) lies outside the data root, or is empty.
    """
    root = Path(root).resolve()
    text = str(path).strip()
    if not text:
        raise UnitScopeError(f"No {what} chosen: {choose}.")
    candidate = Path(text).expanduser()
    full = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not _inside(root, full):
        raise UnitScopeError(
            f"The path {text!r} lies outside the data root {str(root)!r}; the app reads only files "
            "under it (set UNITSCOPE_DATA_ROOT to change it).")
    if not full.exists():
        raise UnitScopeError(f"{what[0].upper()}{what[1:]} {text!r} does not exist under the data root {str(root)!r}.")
    return full


def _is_recording(p: Path) -> bool:
    name = p.name.lower()
    return any(name.endswith(s) for s in RECORDING_SUFFIXES)


def walk_root(root: str | Path, *, max_depth: int = 4):
    """Walk ``root`` in sorted order, without following links or entering hidden folders,
    at most ``max_depth`` levels deep (200 sub-folders per folder at most).

    Yields ``(folder, filenames)`` with ``folder`` a :class:`~pathlib.Path`; nothing when
    ``root`` is not a folder.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))[:200]
        if len(here.relative_to(root).parts) >= max_depth:
            dirnames[:] = []
        yield here, sorted(filenames)


def list_recordings(root: str | Path, *, max_files: int = 500, max_depth: int = 4) -> list[str]:
    """Recordings and BIDS roots under ``root``, as paths relative to it (sorted, bounded)."""
    root = Path(root).resolve()
    out: list[str] = []
    for here, filenames in walk_root(root, max_depth=max_depth):
        if here != root and (is_bids_root(here) or _is_recording(here)):
            out.append(str(here.relative_to(root)) + "/")  # a BIDS root, or a CTF .ds / EGI .mff folder
        for f in filenames:
            if _is_recording(here / f):
                out.append(str((here / f).relative_to(root)))
                if len(out) >= max_files:
                    return sorted(out)
    return sorted(out)


WEIGHTS_SUFFIXES = (".pt", ".pth", ".pkl", ".ckpt")  # torch.save state dicts, skorch's f_params


def list_weights(root: str | Path, *, max_files: int = 200, max_depth: int = 4) -> list[str]:
    """State dict files under ``root`` (:data:`WEIGHTS_SUFFIXES`), relative to it, sorted;
    the ``model.pt`` / ``checkpoint.pt`` of run folders are left out (a run opens as a run), and
    so is an interrupted training's ``checkpoint.partial.pt`` anywhere (``unitscope train --resume``
    continues it; it is no decoder to open)."""
    root = Path(root).resolve()
    out: list[str] = []
    for here, filenames in walk_root(root, max_depth=max_depth):
        in_run = is_run_folder(here)
        for f in filenames:
            if f == PARTIAL_FILE:
                continue
            if f.lower().endswith(WEIGHTS_SUFFIXES) and not (in_run and f in ("model.pt", "checkpoint.pt")):
                out.append(str((here / f).relative_to(root)))
                if len(out) >= max_files:
                    return sorted(out)
    return sorted(out)


def is_run_folder(folder: Path) -> bool:
    """``folder`` holds a saved decoder (:data:`RUN_FOLDER_FILES`)."""
    return all((Path(folder) / f).is_file() for f in RUN_FOLDER_FILES)


def list_runs(root: str | Path, *, max_runs: int = 200, max_depth: int = 4) -> list[str]:
    """Run folders under ``root`` (``config.json`` and ``model.pt``, as ``unitscope train
    --out`` and ``unitscope batch`` write them), relative to it with a trailing ``/``."""
    root = Path(root).resolve()
    out: list[str] = []
    for here, filenames in walk_root(root, max_depth=max_depth):
        if all(f in filenames for f in RUN_FOLDER_FILES):
            out.append(("." if here == root else str(here.relative_to(root))) + "/")
            if len(out) >= max_runs:
                break
    return sorted(out)


def run_recording(root: str | Path, run_dir: Path, source: str, source_path: str | None = None) -> Path:
    """The recording a run was trained on, found under the data root.

    ``source`` is the path the run's ``config.json`` holds (absolute, or relative to where the
    run was trained), ``source_path`` where it was in full when the run was saved (runs saved
    before it was kept have none). It is looked for as given, then at ``source_path``, then
    relative to the data root, to the run folder and to the run folder's parent; the first that
    exists inside the data root wins.

    Raises
    ------
    UnitScopeError
        When none exists inside the data root (the app reads nothing outside it).
    """
    root = Path(root).resolve()
    given = Path(str(source)).expanduser()
    if given.is_absolute():
        candidates = [given, root / given.name, run_dir / given.name, run_dir.parent / given.name]
    else:
        candidates = [root / given, run_dir / given, run_dir.parent / given, root / given.name]
    if source_path:
        candidates.insert(1 if given.is_absolute() else 0, Path(source_path))
    outside = None
    for c in candidates:
        full = c.resolve()
        if not full.exists():
            continue
        if _inside(root, full):
            return full
        outside = outside or full
    where = (f"it exists at {str(outside)!r}, outside the data root {str(root)!r}" if outside else
             f"it is not under the data root {str(root)!r}")
    raise UnitScopeError(
        f"The decoder in {str(run_dir.name)!r} was trained on {str(source)!r}, but {where}; the app reads "
        "only files under the data root: copy the recording there (beside the run folder, say), or set "
        "UNITSCOPE_DATA_ROOT to a folder holding both.")


def session_room(folder: str | Path | None, *, max_bytes: int | None = None) -> int:
    """Bytes a session's upload ``folder`` may still take: :data:`SESSION_UPLOAD_FACTOR` times
    the upload limit, less the files already under it (archives unpacked included)."""
    limit = (max_upload_bytes() if max_bytes is None else max_bytes) * SESSION_UPLOAD_FACTOR
    used = 0
    if folder is not None and Path(folder).is_dir():
        for here, _, names in os.walk(folder):
            used += sum((Path(here) / n).lstat().st_size for n in names)
    return limit - used


def _over_room(what: str, size: int, room: int, file_limit: int) -> UnitScopeError:
    limit = file_limit * SESSION_UPLOAD_FACTOR
    return UnitScopeError(
        f"{what} ({size / 1e6:.1f} MB) would take this session's uploads past {limit / 1e6:.1f} MB "
        f"({SESSION_UPLOAD_FACTOR} x the upload limit, UNITSCOPE_MAX_UPLOAD_MB; {max(room, 0) / 1e6:.1f} MB "
        "left): reload the page for a new session, or put large files under the data root.")


def save_upload(folder: str | Path | None, filename: str, data: bytes, *, max_bytes: int | None = None,
                room: int | None = None) -> Path:
    """Write an uploaded file into ``folder`` (a new temporary folder when None).

    Recordings (:data:`RECORDING_SUFFIXES`), the files that belong to one
    (:data:`COMPANION_SUFFIXES`) and ``.zip`` archives are taken. The name keeps only safe
    characters and its suffix (the usual names of a recording's files are kept as they are,
    so a BrainVision header still finds its data file); the size limit, and ``room`` (the
    bytes the session may still take, :func:`session_room`; a file replaced counts as freed),
    are checked before anything is written.
    """
    limit = max_upload_bytes() if max_bytes is None else max_bytes
    size = len(data)
    if size > limit:
        raise UnitScopeError(
            f"The upload {filename!r} is {size / 1e6:.1f} MB, above the limit of {limit / 1e6:.1f} MB "
            "(UNITSCOPE_MAX_UPLOAD_MB); put large files under the data root instead.")
    if size == 0:
        raise UnitScopeError(f"The upload {filename!r} is empty.")
    base = Path(str(filename).replace("\\", "/")).name
    suffix = next((s for s in RECORDING_SUFFIXES + COMPANION_SUFFIXES + (".zip",) if base.lower().endswith(s)), None)
    if suffix is None:
        raise UnitScopeError(
            f"Unsupported file type {base!r}; upload one of {', '.join(RECORDING_SUFFIXES)}, the files "
            f"that go with one ({', '.join(COMPANION_SUFFIXES)}), or a .zip of them (a BIDS folder, say).")
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", base[: -len(suffix)])[:80].strip("._") or "upload"
    folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="unitscope-upload-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}{base[-len(suffix):]}"
    if room is not None and size - (path.stat().st_size if path.is_file() else 0) > room:
        raise _over_room(f"The upload {filename!r}", size, room, limit)
    path.write_bytes(data)
    return path


def unpack_zip(path: str | Path, dest: str | Path, *, max_bytes: int | None = None,
               room: int | None = None) -> Path:
    """Unpack an uploaded ``.zip`` into a new folder ``dest/<stem>`` and return it.

    Refused, with nothing written: a member whose path is absolute or climbs out (``..``), a
    link, more than :data:`ZIP_MAX_MEMBERS` members, more than :data:`ZIP_UNPACK_FACTOR`
    times the upload limit once unpacked, or more than ``room`` (the bytes the session may
    still take, :func:`session_room`).
    """
    path = Path(path)
    file_limit = max_upload_bytes() if max_bytes is None else max_bytes
    limit = file_limit * ZIP_UNPACK_FACTOR
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnitScopeError(f"{path.name!r} is not a readable .zip archive ({exc}).") from exc
    with zf:
        members = zf.infolist()
        if len(members) > ZIP_MAX_MEMBERS:
            raise UnitScopeError(f"{path.name!r} holds {len(members)} files; at most {ZIP_MAX_MEMBERS} are unpacked.")
        total = sum(m.file_size for m in members)
        if total > limit:
            raise UnitScopeError(
                f"{path.name!r} unpacks to {total / 1e6:.1f} MB, above {limit / 1e6:.1f} MB "
                f"({ZIP_UNPACK_FACTOR} x the upload limit); put large recordings under the data root instead.")
        if room is not None and total > room:
            raise _over_room(f"{path.name!r} unpacked", total, room, file_limit)
        for m in members:
            parts = Path(m.filename.replace("\\", "/")).parts
            if m.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                raise UnitScopeError(f"{path.name!r} holds a file outside its own folder ({m.filename!r}); refused.")
            if stat.S_ISLNK(m.external_attr >> 16):
                raise UnitScopeError(f"{path.name!r} holds a link ({m.filename!r}); refused.")
        out = Path(dest) / (path.name[: -len(".zip")] or "archive")
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists() and not out.is_dir():  # ("rec.edf.zip", macOS's name for a zipped rec.edf, beside it)
            raise UnitScopeError(f"{path.name!r} would unpack into {out.name!r}, which is a file already uploaded; "
                                 "rename the archive (e.g. to study.zip) and upload it again.")
        # unpacked beside it first, moved into place whole: a damaged or encrypted member had left
        # a half-unpacked folder, and "Unexpected error (BadZipFile ...)"
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.unpacking-"))
        try:
            try:
                zf.extractall(staging)
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, zlib.error) as exc:
                raise UnitScopeError(f"{path.name!r} could not be unpacked ({exc}): a damaged, encrypted or "
                                     "unusually compressed archive; pack it again as a plain .zip.") from exc
            if out.exists():
                shutil.rmtree(out)
            staging.rename(out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # whatever is left of it (nothing once renamed)
    return out


def _recordings_in(folder: Path) -> tuple[list[Path], Path | None]:
    """Recording files and folders under ``folder`` (sorted) and its shallowest BIDS root."""
    bids, found = None, []
    for here, filenames in walk_root(folder, max_depth=6):
        if bids is None and is_bids_root(here):
            bids = here
        if _is_recording(here) and here != folder:  # a CTF .ds folder, say
            found.append(here)
        found += [here / f for f in filenames if _is_recording(here / f)]
    return sorted(set(found)), bids


def _readable(files: list[Path]) -> list[Path]:
    """``files`` but those missing a data file (:func:`core.io.missing_companions`)."""
    return [f for f in files if not missing_companions(f)["required"]]


def archive_recordings(folder: str | Path, name: str) -> list[Path]:
    """The recordings UnitScope can open in an unpacked upload ``name`` (a ``.zip`` under
    ``folder``, unpacked by :func:`unpack_zip`), sorted; those missing a data file left out."""
    return _readable(_recordings_in(Path(folder) / name[: -len(".zip")])[0])


def upload_choice(folder: str | Path, order: list[str]) -> tuple[Path | None, str]:
    """Which of a session's uploads to open, and what to tell the user.

    ``order`` lists the saved files' names under ``folder``, oldest first. The newest
    recording (or unpacked ``.zip``) is chosen. A recording whose data file has not arrived
    is not opened yet (``None`` and what to drop); one missing only its markers is opened,
    with a note.

    Returns
    -------
    path : Path or None
        The recording file or BIDS folder to open.
    note : str
        What the user should know (what is still missing, which of several was opened), or "".
    """
    folder = Path(folder)
    for name in reversed(order):
        full = folder / name
        if name.lower().endswith(".zip"):
            unpacked = folder / name[: -len(".zip")]
            found, bids = _recordings_in(unpacked)
            if bids is not None:
                return bids, (f"Opened the BIDS folder {bids.relative_to(folder)}/ from {name}: its first recording; "
                              "choose another under 'Recording in the BIDS folder'.")
            files = _readable(found)
            if not files:
                return None, (f"{name} holds no recording UnitScope reads (one of "
                              f"{', '.join(RECORDING_SUFFIXES)} with its files, or a BIDS folder).")
            note = "" if len(files) == 1 else (
                f"{name} holds {len(files)} recordings; opened {files[0].relative_to(folder)}: choose another "
                "under 'Recording in the archive'.")
            return files[0], note
        if not _is_recording(full):
            continue
        missing = missing_companions(full)
        if missing["required"]:
            return None, (f"{name} keeps its data in {', '.join(missing['required'])}: drop that file too "
                          "(or all the recording's files at once).")
        note = (f"Opened {name} without its markers ({', '.join(missing['optional'])} not uploaded): no "
                "events. Drop it too to add them." if missing["optional"] else "")
        return full, note
    if order:
        return None, (f"{order[-1]} is part of a recording: drop its header too (a BrainVision .vhdr, "
                      "an EEGLAB .set), or all the recording's files at once.")
    return None, ""
