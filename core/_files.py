"""File helpers without heavy imports (the report, masks and the app's exports use them)."""
from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import threading
from pathlib import Path

__all__ = ["usual_file_mode", "source_version", "atomic_target", "atomic_write_bytes", "write_synced", "load_netcdf"]

_NETCDF_LOCK = threading.Lock()


def usual_file_mode(path) -> None:
    """Give a file from ``tempfile.mkstemp`` (mode 0600) the mode a plain ``open`` would
    (0666 less the umask), so results written atomically can be shared like any file."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


@functools.lru_cache(maxsize=16)
def source_version(package_file) -> str:
    """SHA-1 (12 hex digits) of the ``*.py`` files beside ``package_file`` (a package's
    ``__file__``): which code computed a result, for its provenance attrs."""
    import hashlib

    h = hashlib.sha1()
    for f in sorted(Path(package_file).resolve().parent.glob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


@contextlib.contextmanager
def atomic_target(path):
    """Yield a temporary path beside ``path`` to write; on success it gets the usual mode
    (:func:`usual_file_mode`) and is renamed to ``path``: never a half-written file. On any
    error (folder not creatable or not writable, disk full) it is removed and the error
    propagates."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        usual_file_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_synced(path, data: bytes) -> None:
    """Write ``data`` to ``path``, flushed to disk."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_target`), flushed to disk first."""
    with atomic_target(path) as tmp:
        write_synced(tmp, data)


def load_netcdf(path):
    """Read a netCDF file into memory (an :class:`xarray.Dataset`), safely from any thread.

    [A] Through h5netcdf (h5py serialises every HDF5 call behind its own global lock), as
    UnitScope writes them; the netCDF4 library is not thread-safe, and two sessions of the app
    reading probe results at once through it crashed the server ("double free or
    corruption"). Files h5netcdf cannot read (netCDF3) go through xarray's default engine,
    one thread at a time.
    """
    import xarray as xr

    try:
        return xr.load_dataset(path, engine="h5netcdf")
    except (OSError, ValueError):
        with _NETCDF_LOCK:
            return xr.load_dataset(path)
