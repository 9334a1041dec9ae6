"""Results written atomically (temporary file, then rename) get the mode of any new file
(0666 less the umask), not mkstemp's 0600: reports, masks and checkpoints can be shared."""
from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import xarray as xr

from core.models import build_model
from core.pruning import MaskSet
from core.report import ReportContent, write_report
from core.training import atomic_write_bytes, atomic_write_netcdf


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    yield 0o644
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writers_leave_the_usual_file_mode(tmp_path, umask_022):
    expected = umask_022
    atomic_write_bytes(tmp_path / "a.bin", b"x")
    atomic_write_netcdf(xr.Dataset({"v": ("t", np.arange(3.0))}), tmp_path / "b.nc")
    write_report(ReportContent(title="x"), tmp_path / "r.html")
    MaskSet.for_model(build_model("shallow", n_chans=4, n_outputs=1, n_times=600)).save(tmp_path / "m.json")
    modes = {p.name: _mode(p) for p in tmp_path.iterdir()}
    assert modes == {"a.bin": expected, "b.nc": expected, "r.html": expected, "m.json": expected}
    os.umask(0o077)  # a stricter umask is honoured
    write_report(ReportContent(title="y"), tmp_path / "private.html")
    assert _mode(tmp_path / "private.html") == 0o600


def test_netcdf_files_are_read_safely_from_many_threads(tmp_path, monkeypatch):
    """Sessions read probe results in worker threads at once: through h5netcdf (h5py's global
    lock), not the netCDF4 library, which crashed the server when two threads read at once."""
    import threading

    from core._files import load_netcdf

    ds = xr.Dataset({"v": (("unit", "freq"), np.random.default_rng(0).normal(size=(50, 40)))},
                    attrs={"model_hash": "abc"})
    paths = []
    for i in range(4):
        atomic_write_netcdf(ds, tmp_path / f"p{i}.nc")
        paths.append(tmp_path / f"p{i}.nc")
    out, errors = [], []

    def read(k):
        try:
            for _ in range(5):
                out.append(load_netcdf(paths[k % 4]))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(out) == 40
    assert all(o.identical(ds) for o in out)
    engines = []
    real = xr.load_dataset
    monkeypatch.setattr(xr, "load_dataset", lambda path, **kw: engines.append(kw.get("engine")) or real(path, **kw))
    load_netcdf(paths[0])
    assert engines == ["h5netcdf"]
    legacy = tmp_path / "classic.nc"  # netCDF3 (h5netcdf cannot read it): the default engine, under a lock
    ds.to_netcdf(legacy, engine="scipy")
    assert load_netcdf(legacy)["v"].shape == (50, 40) and engines[-2:] == ["h5netcdf", None]
