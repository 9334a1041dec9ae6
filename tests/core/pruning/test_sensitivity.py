"""The pruning engine's own amplitude-perturbation sensitivity (ranking fallback)."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from core._validation import UnitScopeError
from core.pruning import amplitude_sensitivity, unit_scores


@pytest.fixture(scope="module")
def sens(deep4):
    """conv_time_spat unit 0 reads channel 2 only; unit 1 reads nothing (dead)."""
    model = copy.deepcopy(deep4)
    with torch.no_grad():
        w = model.conv_time_spat.conv_spat.weight  # (25, 40, 1, n_chans)
        w[0, :, :, [0, 1, 3]] = 0.0
        w[1] = 0.0
    X = np.random.default_rng(0).standard_normal((24, 4, 600)).astype(np.float32)
    return amplitude_sensitivity(model, X, sfreq=250.0, n_iter=6, rng=0, ch_names=["a", "b", "c", "d"])


def test_a_unit_is_sensitive_only_to_the_channel_it_reads(sens):
    r = abs(sens.sel(unit="conv_time_spat/0")).max("band")
    assert r.idxmax("channel").item() == "c"
    assert float(r.sel(channel="c")) > 2 * float(r.drop_sel(channel="c").max())
    np.testing.assert_array_equal(sens.sel(unit="conv_time_spat/1").values, 0.0)  # dead unit: no change


def test_layout_and_scores(sens):
    assert sens.dims == ("unit", "channel", "band") and sens.sizes["unit"] == 375
    assert list(sens["band"].values) == ["delta_theta", "alpha", "beta", "low_gamma", "high_gamma"]
    assert float(sens["band_hi"][-1]) == 120.0 and sens.attrs["n_iter"] == 6
    s = unit_scores(sens, {"conv_time_spat": 25, "conv_4": 200})
    assert s["conv_time_spat"][1] == 0.0 and s["conv_time_spat"][0] > 0.2 and s["conv_4"].shape == (200,)


def test_slope_at_the_mask_point_scales_with_the_unit(deep4):
    """The slope statistic is in activation units: doubling a unit's BN gain (ELU is linear
    for positive inputs, max-pool commutes with positive scaling) raises its score, the
    correlation stays nearly the same."""
    X = np.random.default_rng(1).standard_normal((12, 4, 600)).astype(np.float32)
    model = copy.deepcopy(deep4)
    with torch.no_grad():
        model.bnorm.bias[2] = 5.0  # unit 2 of the first block stays in ELU's linear range
    kw = dict(sfreq=250.0, n_iter=3, rng=0, site="mask")
    before = {s: amplitude_sensitivity(model, X, statistic=s, **kw) for s in ("slope", "corr")}
    with torch.no_grad():
        model.bnorm.weight[2] *= 2.0
        model.bnorm.bias[2] *= 2.0
    after = {s: amplitude_sensitivity(model, X, statistic=s, **kw) for s in ("slope", "corr")}
    u = "conv_time_spat/2"
    np.testing.assert_allclose(after["slope"].sel(unit=u), 2 * before["slope"].sel(unit=u), rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(after["corr"].sel(unit=u), before["corr"].sel(unit=u), atol=1e-3)
    assert after["slope"].attrs["statistic"] == "slope" and after["slope"].attrs["site"] == "mask"


def test_bad_input(deep4):
    X = np.zeros((2, 4, 600), np.float32)
    with pytest.raises(UnitScopeError, match=r"n_windows >= 3"):
        amplitude_sensitivity(deep4, X, sfreq=250.0)
    with pytest.raises(UnitScopeError, match="'sfreq' must lie in"):
        amplitude_sensitivity(deep4, np.zeros((3, 4, 600), np.float32), sfreq=0)
    with pytest.raises(UnitScopeError, match="Allowed values are 'corr' and 'slope'"):
        amplitude_sensitivity(deep4, np.zeros((3, 4, 600), np.float32), sfreq=250.0, statistic="cov")
    with pytest.raises(UnitScopeError, match="No frequency bin"):
        amplitude_sensitivity(deep4, np.zeros((3, 4, 600), np.float32), sfreq=1.5)
