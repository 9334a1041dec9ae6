import numpy as np
import pytest
import xarray as xr

from core._validation import UnitScopeError
from core.encoding.evaluate import correlation_arrays, correlation_map, post_onset_mean, time_course


def _da(values, subject):
    n, c, t = values.shape
    return xr.DataArray(values, dims=("epoch", "channel", "time"),
                        coords={"epoch": np.arange(n), "channel": [f"c{i}" for i in range(c)],
                                "time": np.arange(t) * 0.1 - 0.5, "subject": ("epoch", subject)})


def test_r_is_pearson_across_epochs_per_time_and_channel():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((30, 2, 10))
    p = a + rng.standard_normal((30, 2, 10))
    subject = np.array(["x"] * 15 + ["y"] * 15)
    r = correlation_map(_da(p, subject), _da(a, subject))
    assert r.dims == ("subject", "time", "channel")
    expected = np.corrcoef(p[15:, 1, 3], a[15:, 1, 3])[0, 1]
    np.testing.assert_allclose(r.sel(subject="y", channel="c1").values[3], expected, rtol=1e-10)


def test_r_is_invariant_to_affine_scaling_and_nan_when_constant():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((20, 1, 4))
    p = a + rng.standard_normal((20, 1, 4))
    s = np.zeros(20)
    r1 = correlation_arrays(p, a, s)
    r2 = correlation_arrays(3 * p + 5, a, s)
    np.testing.assert_allclose(r1, r2)
    p[:, :, 2] = 1.0
    assert np.isnan(correlation_arrays(p, a, s)[0, 2, 0])


def test_post_onset_mean_uses_only_times_from_the_onset():
    r = xr.DataArray(np.zeros((1, 10, 2)), dims=("subject", "time", "channel"),
                     coords={"time": np.arange(10) * 0.1 - 0.5})
    r[:, 5:] = 0.4  # t >= 0
    r[:, :5] = 1.0
    assert post_onset_mean(r) == pytest.approx(0.4)
    assert time_course(r).dims == ("time",)


def test_too_few_epochs_per_subject():
    a = np.ones((4, 1, 3))
    with pytest.raises(UnitScopeError, match="Subject 'x' has 2 test epochs"):
        correlation_arrays(a, a, np.array(["x", "x", "y", "y"]))
