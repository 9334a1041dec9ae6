"""The shipped demo probe (made by this probing code: ``python -m dashboard.demo_probe``; a test
of dashboard/test_views.py holds its code version) shows what the probing issue asks of a
trained decoder and its untrained control (METHODS 1.7 item 2, 1.8 (i))."""
from __future__ import annotations

from pathlib import Path

import xarray as xr

from core.probing import class_fractions

ASSETS = Path(__file__).resolve().parents[3] / "assets" / "demo-probe"


def test_the_trained_decoder_has_three_classes_and_its_untrained_control_differs():
    """Amplitude, phase and bimodal units coexist in the trained Deep4 (conv_4: 49% / 1% / 50%);
    its untrained twin, probed the same way, has phase units only (random first-layer filters
    are phase-sensitive already, METHODS 1.7): amplitude and bimodal units emerge with training."""
    trained = class_fractions(xr.load_dataset(ASSETS / "deep4.nc", engine="h5netcdf"))
    control = class_fractions(xr.load_dataset(ASSETS / "deep4-control.nc", engine="h5netcdf"))
    hidden = [layer for layer in trained["layer"].values if layer != "conv_classifier"]
    for cls in ("amplitude", "phase", "bimodal"):
        assert float(trained.sel(layer=hidden, **{"class": cls}).max()) > 0.1, cls
    assert float(control.sel(layer=hidden, **{"class": ["amplitude", "bimodal"]}).max()) == 0.0
    assert float(control.sel(layer="conv_time_spat", **{"class": "phase"})) > 0.5
    assert float(trained.sel(layer="conv_4", **{"class": "amplitude"})) > 0.4 > \
        float(control.sel(layer="conv_4", **{"class": "amplitude"}))
