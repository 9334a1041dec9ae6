"""EventDeconvolution.fit_values / refit_values: kernels of a time course computed elsewhere."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from core._validation import UnitScopeError
from core.deconv import DeconvConfig, kernel_error
from core.deconv.apply import EventDeconvolution
from core.models import build_model
from core.recording import Events, Recording

SFREQ = 100.0
LAG = np.arange(int(1.2 * SFREQ)) / SFREQ


def _bump(tau: float) -> np.ndarray:
    return (LAG / tau) * np.exp(1 - LAG / tau)


def _series(onsets, amps, kernel, rng, n, noise=0.05):
    """A baseline of 0.2 plus ``amp * kernel`` after each onset, plus white noise."""
    x = np.full(n, 0.2)
    for o, a in zip(onsets, amps):
        i = int(round(o * SFREQ))
        x[i:i + len(kernel)] += a * kernel
    return (x + noise * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    duration, n_events = 150.0, 36
    n = int(duration * SFREQ)
    onsets = np.sort(rng.choice(np.arange(3.0, duration - 4.0, 3.5), n_events, replace=False))
    amps = rng.uniform(0.5, 2.0, n_events)
    t = np.arange(n) / SFREQ
    signals = xr.DataArray(np.zeros((2, n), np.float32), dims=("channel", "time"),
                           coords={"channel": ["C0", "C1"], "time": t}, attrs={"sfreq": SFREQ})
    rec = Recording(signals, None, Events(onsets, np.full(n_events, "go"), amps))
    model = build_model("deep4", n_chans=2, n_outputs=1, n_times=600, seed=0)
    dec = EventDeconvolution(model, rec, lag_start=-0.2, kernel_seconds=1.4, bin_seconds=0.04,
                             config=DeconvConfig(n_iter=50, epochs=25, batch_size=8, lr=0.03), refit_epochs=8)
    return dec, rng, onsets, amps, n


def _truth(dec, res, kernel):
    lag = res["lag"].values
    return np.interp(lag + dec.bin_seconds / 2, LAG, kernel, left=0.0, right=0.0)


def test_fit_values_recovers_the_simulated_kernel_and_codes(setup):
    dec, rng, onsets, amps, n = setup
    kernel = _bump(0.2)
    values = _series(onsets, amps, kernel, rng, n)
    values[:150] = np.nan  # e.g. before the decoder's first full receptive field: not modelled
    res = dec.fit_values(values, signal="output")
    assert res.attrs["signal"] == "output" and res.attrs["warm_start"] == 0
    assert kernel_error(_truth(dec, res, kernel), res["kernels"].values[0]) < 0.2
    assert np.corrcoef(res["codes"].values[:, 0], amps)[0, 1] > 0.95
    assert np.isnan(res["fitted"].values[:3]).all() and res.attrs["r2"] > 0.8


def test_refit_values_warm_starts_and_follows_the_change(setup):
    dec, rng, onsets, amps, n = setup
    old_kernel, new_kernel = _bump(0.2), _bump(0.45)
    first = dec.fit_values(_series(onsets, amps, old_kernel, rng, n))
    # "after a prune": every response halves and slows down
    changed = _series(onsets, 0.5 * amps, new_kernel, rng, n)
    refit = dec.refit_values(first, changed)
    assert refit.attrs["refit"] == "warm_start" and refit.attrs["warm_start"] == 1
    assert refit.attrs["refit_seconds"] > 0
    err_new = kernel_error(_truth(dec, refit, new_kernel), refit["kernels"].values[0])
    err_old = kernel_error(_truth(dec, refit, old_kernel), refit["kernels"].values[0])
    assert err_new < 0.3 and err_new < err_old
    assert np.corrcoef(refit["codes"].values[:, 0], amps)[0, 1] > 0.9
    # an unchanged signal keeps its kernels (the warm start begins at the answer)
    same = dec.refit_values(first, _series(onsets, amps, old_kernel, rng, n))
    assert kernel_error(first["kernels"].values[0], same["kernels"].values[0]) < 0.1


def test_values_bad_input(setup):
    dec, rng, onsets, amps, n = setup
    with pytest.raises(UnitScopeError, match=rf"values must be one time course over the block, shape \({n},\)"):
        dec.fit_values(np.zeros(n - 5, np.float32))
    with pytest.raises(UnitScopeError, match="values hold no finite sample"):
        dec.fit_values(np.full(n, np.nan, np.float32))
    first = dec.fit_values(_series(onsets, amps, _bump(0.2), rng, n), epochs=2)
    bad = first.isel(lag=slice(0, 10))
    with pytest.raises(UnitScopeError, match=r"previous holds kernels of shape \(1, 10\); this deconvolution fits \(1, 35\)"):
        dec.refit_values(bad, np.zeros(n, np.float32))
