import numpy as np
import pytest
import xarray as xr

from core._validation import UnitScopeError
from core.encoding._data import (FeatureScaler, MegScaler, check_epochs, load_epochs,
                                 make_epochs, onset_index, split_epochs)


def _arrays(n=30, c=2, t=20, f=2):
    rng = np.random.default_rng(0)
    forcing = np.zeros((n, f, t), np.float32)
    forcing[:, 0, 10:12] = 1
    return rng.standard_normal((n, c, t)).astype(np.float32), forcing


def test_make_epochs_layout():
    meg, forcing = _arrays()
    data = make_epochs(meg, forcing, subject=["a"] * 30, sfreq=10.0, tmin=-1.0,
                       feature_names=["first_mask", "x"])
    assert data["meg"].dims == ("epoch", "channel", "time")
    assert data["forcing"].dims == ("epoch", "feature", "time")
    assert onset_index(data) == 10
    np.testing.assert_allclose(data["time"].values[10], 0.0, atol=1e-12)


def test_epochs_of_different_lengths_are_rejected():
    meg, forcing = _arrays()
    megs = [m for m in meg]
    megs[3] = megs[3][:, :15]
    with pytest.raises(UnitScopeError, match=r"Epochs of different lengths in meg: got n_times in \[15, 20\]"):
        make_epochs(megs, forcing, subject=["a"] * 30, sfreq=10.0, tmin=-1.0,
                    feature_names=["first_mask", "x"])


def test_missing_features_are_rejected():
    meg, forcing = _arrays()
    forcing[4, 1, 10] = np.nan
    with pytest.raises(UnitScopeError, match=r"Features are missing for some events: \{'x': 1\}.*epoch 4"):
        make_epochs(meg, forcing, subject=["a"] * 30, sfreq=10.0, tmin=-1.0,
                    feature_names=["first_mask", "x"])
    with pytest.raises(UnitScopeError, match="features are missing for some events"):
        make_epochs(meg, forcing[:20], subject=["a"] * 30, sfreq=10.0, tmin=-1.0,
                    feature_names=["first_mask", "x"])


def test_check_epochs_names_what_is_wrong():
    meg, forcing = _arrays()
    data = make_epochs(meg, forcing, subject=["a"] * 30, sfreq=10.0, tmin=-1.0,
                       feature_names=["first_mask", "x"])
    with pytest.raises(UnitScopeError, match="own-event mask 'first_mask'"):
        check_epochs(data.assign_coords(feature=["onset", "x"]))
    with pytest.raises(UnitScopeError, match="lacks the 'meg' variable"):
        check_epochs(data.drop_vars("meg"))
    bad = data.copy(deep=True)
    bad["meg"][2, 0, 0] = np.inf
    with pytest.raises(UnitScopeError, match="NaN or infinite samples in 1 epochs"):
        check_epochs(bad)


def test_split_is_chronological_per_subject_and_keeps_sentences(reading_small):
    splits = split_epochs(reading_small)
    for s in np.unique(reading_small["subject"].values):
        parts = {k: v.isel(epoch=v["subject"].values == s) for k, v in splits.items()}
        # chronological: every train onset precedes every valid onset, which precede test
        assert parts["train"]["onset_time"].max() < parts["valid"]["onset_time"].min()
        assert parts["valid"]["onset_time"].max() < parts["test"]["onset_time"].min()
        # no sentence is cut between splits
        sets = [set(p["sentence"].values.tolist()) for p in parts.values()]
        assert not (sets[0] & sets[1]) and not (sets[1] & sets[2]) and not (sets[0] & sets[2])
        # purge gap: windows of different splits do not overlap
        span = float(reading_small["time"][-1] - reading_small["time"][0])
        assert parts["valid"]["onset_time"].min() - parts["train"]["onset_time"].max() > span
        n = sum(p.sizes["epoch"] for p in parts.values())
        assert 0.6 < parts["train"].sizes["epoch"] / n < 0.8


def test_too_few_epochs_to_split():
    meg, forcing = _arrays(n=12)
    data = make_epochs(meg, forcing, subject=["a"] * 12, sfreq=10.0, tmin=-1.0,
                       feature_names=["first_mask", "x"])
    with pytest.raises(UnitScopeError, match="Too few epochs to fit: subject 'a' has 12 epochs"):
        split_epochs(data)


def test_meg_scaler_is_fitted_on_train_and_inverts():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((40, 3, 10)) * [[[1.0], [5.0], [0.1]]] + 7).astype(np.float32)
    subject = np.array(["a"] * 20 + ["b"] * 20)
    scaler = MegScaler().fit(x[:30], subject[:30])
    z = scaler.transform(x, subject)
    np.testing.assert_allclose(z[:20].mean(axis=(0, 2)), 0, atol=1e-5)  # subject a: all in train
    np.testing.assert_allclose(scaler.inverse(z, subject), x, rtol=1e-5, atol=1e-4)
    # the scale of subject b comes from its 10 training epochs only
    z_b = scaler.transform(x[20:30], subject[20:30])
    np.testing.assert_allclose(z_b.mean(axis=(0, 2)), 0, atol=1e-5)
    with pytest.raises(UnitScopeError, match=r"Subject 'c' was never seen in training"):
        scaler.transform(x[:2], np.array(["c", "c"]))


def test_feature_scaler_keeps_zero_as_no_event():
    f = np.zeros((10, 2, 8), np.float32)
    f[:, 0, 2:4] = 1
    f[:, 1, 2:4] = np.arange(10)[:, None] + 1
    out = FeatureScaler().fit(f).transform(f)
    assert np.all(out[:, :, :2] == 0) and np.all(out[:, :, 4:] == 0)
    np.testing.assert_array_equal(out[:, 0], f[:, 0])  # binary forcing unchanged
    np.testing.assert_allclose(np.sqrt(np.mean(out[:, 1, 2:4] ** 2)), 1, atol=1e-6)
    np.testing.assert_allclose(out[:, 1, 2:4] / f[:, 1, 2:4], out[0, 1, 2] / f[0, 1, 2], rtol=1e-6)


def test_netcdf_round_trip_and_bad_files(tmp_path, reading_small):
    path = tmp_path / "reading.nc"
    small = reading_small.isel(epoch=slice(0, 50)).drop_vars("truth_mixing")
    small.to_netcdf(path)
    back = load_epochs(path)
    xr.testing.assert_allclose(back["meg"], small["meg"])
    with pytest.raises(FileNotFoundError):
        load_epochs(tmp_path / "missing.nc")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(UnitScopeError, match="Unsupported encoding data file 'x.csv'"):
        load_epochs(tmp_path / "x.csv")


def test_mne_epochs_with_metadata(tmp_path):
    import mne
    import pandas as pd

    rng = np.random.default_rng(0)
    info = mne.create_info(["a", "b"], 50.0, "mag")
    meta = pd.DataFrame({"length": rng.integers(1, 9, 30).astype(float)})
    events = np.c_[np.arange(30) * 100 + 50, np.zeros(30, int), np.ones(30, int)]
    epochs = mne.EpochsArray(rng.standard_normal((30, 2, 50)) * 1e-12, info, events, tmin=-0.4,
                             metadata=meta, verbose="error")
    path = tmp_path / "x-epo.fif"
    epochs.save(path, verbose="error")
    data = load_epochs(path)
    assert [str(f) for f in data["feature"].values] == ["event_onset", "length", "first_mask"]
    on = data["time"].values >= 0
    np.testing.assert_allclose(data["forcing"].sel(feature="length").values[:, np.argmax(on)],
                               meta["length"].values)
    meta.loc[3, "length"] = np.nan
    epochs.metadata = meta
    epochs.save(path, overwrite=True, verbose="error")
    with pytest.raises(UnitScopeError, match="Features are missing for some events"):
        load_epochs(path)


def _with_artefacts(ds, n, rng):
    """``ds`` with ``n`` of its epochs given a large step (a SQUID jump), on every sensor."""
    ds = ds.copy(deep=True)
    bad = np.sort(rng.choice(ds.sizes["epoch"], n, replace=False))
    ds["meg"].values[bad, :, 40:] += 300 * float(np.abs(ds["meg"].values).std())
    return ds, bad


def test_artefact_epochs_are_dropped_in_every_split_and_the_encoders_decode_again(reading_splits):
    """METHODS 3.1: epochs with any |value| > 16 after robust scaling are dropped. Six artefact
    epochs (2% of training) had cut the TRF's test R from 0.18 to 0.01."""
    from core.encoding._data import reject_artifacts
    from core.encoding.evaluate import correlation_map, post_onset_mean
    from core.encoding.linear import TRF

    rng = np.random.default_rng(0)
    splits, bad = {}, {}
    for name, ds in reading_splits.items():
        splits[name], bad[name] = _with_artefacts(ds, {"train": 6, "valid": 2, "test": 2}[name], rng)
    clean, dropped = reject_artifacts(splits)
    assert dropped == {"train": 6, "valid": 2, "test": 2}
    for name, ds in clean.items():  # exactly the artefact epochs went
        kept = np.setdiff1d(np.arange(splits[name].sizes["epoch"]), bad[name])
        assert np.array_equal(ds["onset_time"].values, splits[name]["onset_time"].values[kept])
    assert reject_artifacts(reading_splits)[1] == {"train": 0, "valid": 0, "test": 0}  # clean data: none

    def test_r(tr):
        return post_onset_mean(correlation_map(TRF().fit(tr["train"], tr["valid"]).predict(tr["test"]),
                                               tr["test"]["meg"]))

    assert test_r(clean) > 0.15 and test_r(clean) > test_r(reading_splits) - 0.03
    kept, _ = reject_artifacts({**splits, "test": clean["test"]}, None)
    assert test_r(kept) < 0.08  # (threshold None: every epoch kept, as before)
    with pytest.raises(UnitScopeError, match="'threshold' must lie in"):
        reject_artifacts(splits, 0)
    with pytest.raises(UnitScopeError, match=r"subject 'S01' keeps 2 'valid' epochs of 5 .*\(at least 3 needed\); raise the threshold"):
        few = {**splits, "valid": _with_artefacts(reading_splits["valid"].isel(
            epoch=np.flatnonzero(reading_splits["valid"]["subject"].values == reading_splits["valid"]["subject"].values[0])[:5]),
            3, np.random.default_rng(1))[0]}
        reject_artifacts(few)


def test_artefact_rejection_leaves_out_channels_without_spread_and_refuses_nan(reading_splits):
    """A channel with an IQR of 0 (mostly one value) was scaled by 1, in its own units: half the
    ordinary epochs went as artefacts; a NaN sample turned the test off on its channel."""
    from core.encoding._data import reject_artifacts

    splits = {name: ds.copy(deep=True) for name, ds in reading_splits.items()}
    for ds in splits.values():
        x = ds["meg"].values
        x[:, 0] = 0.0
        x[::2, 0, 5] = 50.0  # channel 0 mostly one value (IQR 0), with ordinary deviations
    assert reject_artifacts(splits)[1] == {"train": 0, "valid": 0, "test": 0}
    splits["train"]["meg"].values[0, 1, 3] = np.nan
    with pytest.raises(UnitScopeError, match="'train' epochs hold NaN or infinite values"):
        reject_artifacts(splits)
