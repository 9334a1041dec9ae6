import numpy as np
import pytest

from core._validation import UnitScopeError
from core.encoding._data import make_epochs, split_epochs
from core.encoding.evaluate import correlation_map, post_onset_mean
from core.encoding.linear import RTRF, TRF, _convolve

from encoding_helpers import linear_data


def test_fast_prediction_equals_mne_receptive_field():
    from mne.decoding import ReceptiveField

    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 7, 3))  # (times, epochs, features)
    y = rng.standard_normal((50, 7, 4))
    rf = ReceptiveField(0.0, 0.3, 20.0, estimator=1.0, fit_intercept=True).fit(x, y)
    expected = rf.predict(x).transpose(1, 2, 0)
    actual = _convolve(rf.coef_, rf.estimator_.intercept_, x.transpose(1, 2, 0))
    np.testing.assert_allclose(actual, expected, atol=1e-5)


def test_trf_recovers_a_known_kernel():
    data, kernel = linear_data(noise=0.05)
    splits = split_epochs(data)
    trf = TRF(tmax=0.5, alphas=(1e-2, 1.0, 1e2)).fit(splits["train"], splits["valid"])
    rf = trf.models_[0]
    # coef in scaled units: compare the shape of the kernel (correlation per channel)
    for c in range(kernel.shape[0]):
        est = rf.coef_[c, 1, :6]
        assert np.corrcoef(est, kernel[c])[0, 1] > 0.99
    assert np.all(rf.coef_[:, 1, 7:] ** 2 < 0.01 * (rf.coef_[:, 1, :6] ** 2).sum())
    r = correlation_map(trf.predict(splits["test"]), splits["test"]["meg"])
    # (times where only a test epoch or two carry a pulse give noisy r: use the median)
    assert np.nanmedian(r.sel(time=slice(0, None)).values) > 0.95
    assert set(trf.alpha_) == {"S0", "S1"}


def _arx_data(n_epochs=80, n_times=60, seed=0):
    """y_t = 0.8 y_{t-1} - 0.3 y_{t-2} + 0.5 x_t, noiseless, random initial state."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n_epochs, 2, n_times), np.float32)
    x[:, 0, 20:23] = 1
    x[:, 1, 20:23] = rng.uniform(1, 3, n_epochs)[:, None]
    y = np.zeros((n_epochs, 2, n_times))
    y[:, :, :2] = rng.standard_normal((n_epochs, 2, 2))
    for t in range(2, n_times):
        y[:, 0, t] = 0.8 * y[:, 0, t - 1] - 0.3 * y[:, 0, t - 2] + 0.5 * x[:, 1, t]
        y[:, 1, t] = 0.5 * y[:, 1, t - 1] + 0.2 * y[:, 0, t - 1]
    data = make_epochs(y.astype(np.float32), x, subject=["a"] * n_epochs, sfreq=20.0, tmin=-1.0,
                       feature_names=["first_mask", "value"], onset_time=np.arange(n_epochs) * 10.0)
    return data, y


def test_rtrf_unrolls_an_exact_arx_system_from_the_initial_samples():
    data, y = _arx_data()
    splits = split_epochs(data)
    model = RTRF(meg_init=5, ar_lags=3, tmax=0.2, alphas=(1e-9, 1e-6)).fit(splits["train"], splits["valid"])
    pred = model.predict(splits["test"])
    np.testing.assert_allclose(pred.values, splits["test"]["meg"].values, atol=5e-3)
    # the initial samples are the true ones, later ones are predicted
    np.testing.assert_allclose(pred.values[:, :, :5], splits["test"]["meg"].values[:, :, :5], rtol=1e-6)


def test_rtrf_does_not_use_true_signals_after_the_initial_samples():
    data, _ = _arx_data()
    splits = split_epochs(data)
    model = RTRF(meg_init=5, ar_lags=3, tmax=0.2).fit(splits["train"], splits["valid"])
    test = splits["test"]
    spoiled = test.copy(deep=True)
    spoiled["meg"][:, :, 5:] = 1e3  # garbage after the initial state
    np.testing.assert_allclose(model.predict(spoiled).values, model.predict(test).values, atol=1e-4)


def test_rtrf_scores_are_real_not_zero(reading_splits):
    model = RTRF(meg_init=10, ar_lags=5, tmax=0.6).fit(reading_splits["train"], reading_splits["valid"])
    r = correlation_map(model.predict(reading_splits["test"]), reading_splits["test"]["meg"])
    assert post_onset_mean(r) > 0.05


def test_linear_models_reject_unseen_subjects_and_bad_options(reading_splits):
    trf = TRF(tmax=0.5).fit(reading_splits["train"], reading_splits["valid"])
    other = reading_splits["test"].assign_coords(subject=("epoch", ["S99"] * reading_splits["test"].sizes["epoch"]))
    with pytest.raises(UnitScopeError, match=r"Subjects \['S99'\] were never seen in training"):
        trf.predict(other)
    with pytest.raises(UnitScopeError, match="'ar_lags' must lie in"):
        RTRF(meg_init=5, ar_lags=10)
    with pytest.raises(UnitScopeError, match="Epochs of different lengths"):
        trf.predict(reading_splits["test"].isel(time=slice(0, 50)))
