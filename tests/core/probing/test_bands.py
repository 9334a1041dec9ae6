import numpy as np
import pytest
import xarray as xr

from core._validation import UnitScopeError
from core.probing.bands import BANDS, band_masks, band_mean, resolve_bands


def test_default_bands_at_250_hz():
    bands = resolve_bands(sfreq=250.0)
    assert bands == BANDS
    assert bands["delta_theta"] == (1.0, 7.0) and bands["high_gamma"] == (60.0, 120.0)


def test_default_bands_are_clipped_and_dropped_at_nyquist():
    bands = resolve_bands(sfreq=100.0)
    assert list(bands) == ["delta_theta", "alpha", "beta", "low_gamma"]
    assert bands["low_gamma"] == (30.0, 50.0)


def test_requested_bands():
    assert resolve_bands(["beta"], sfreq=250.0) == {"beta": (13.0, 30.0)}
    assert resolve_bands({"mu": (8, 12)}, sfreq=250.0) == {"mu": (8.0, 12.0)}
    assert resolve_bands({"hi": (100, 200)}, sfreq=250.0) == {"hi": (100.0, 125.0)}


@pytest.mark.parametrize("bands, match", [
    (["high_gamma"], r"'high_gamma' \(60-120 Hz\) lies above the Nyquist frequency \(50 Hz"),
    ({"x": (55, 70)}, "above the Nyquist frequency"),
    (["gamma"], "Allowed values are 'delta_theta'.*Did you mean 'low_gamma'"),
    ({"x": (10, 5)}, "0 <= lo < hi"),
    ({"x": 5}, r"given as \(lo, hi\)"),
    ([], "empty"),
])
def test_bad_bands(bands, match):
    with pytest.raises(UnitScopeError, match=match):
        resolve_bands(bands, sfreq=100.0)


def test_band_masks_are_half_open_and_include_nyquist_at_the_top():
    freqs = np.fft.rfftfreq(100, 1 / 100.0)  # 0, 1, ..., 50 Hz
    m = band_masks(freqs, {"a": (7, 13), "b": (13, 30), "top": (40, 50)})
    assert freqs[m[0]].tolist() == list(range(7, 13))
    assert freqs[m[1]][0] == 13 and not (m[0] & m[1]).any()
    assert freqs[m[2]][-1] == 50
    with pytest.raises(UnitScopeError, match="holds no frequency bin"):
        band_masks(freqs, {"narrow": (7.2, 7.8)})


def test_band_mean_values():
    freqs = np.arange(0, 21.0)
    da = xr.DataArray(np.tile(freqs, (2, 1)), dims=("unit", "freq"), coords={"freq": freqs})
    out = band_mean(da, {"alpha": (7, 13), "beta": (13, 20)})
    assert out.dims == ("unit", "band")
    assert out.sel(band="alpha").values.tolist() == [9.5, 9.5]
    assert out["band_lo"].values.tolist() == [7.0, 13.0]
