"""File helpers without heavy imports (the report, masks and the app's exports use them)."""
from __future__ import annotations

import os
import threading

__all__ = ["usual_file_mode", "load_netcdf"]

_NETCDF_LOCK = threading.Lock()


def usual_file_mode(path) -> None:
    """Give a file from ``tempfile.mkstemp`` (mode 0600) the mode a plain ``open`` would
    (0666 less the umask), so results written atomically can be shared like any file."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


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
