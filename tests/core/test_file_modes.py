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
