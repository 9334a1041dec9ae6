"""Encoding results files: validation, loading, ground-truth latencies and importance courses."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from core._validation import UnitScopeError
from core.encoding.results import (check_results, example_subjects, importance_course, load_results,
                                   truth_latencies)

SFREQ = 50.0


def fake_result(*, latency=(("word_length", 0.2), ("word_freq", 0.5)), rng=None) -> xr.Dataset:
    """A result with the study's layout whose importance maps peak at known latencies."""
    rng = np.random.default_rng(0) if rng is None else rng
    models, subjects, chans = ["dre", "trf", "rtrf"], ["S01", "S02"], ["C1", "C2", "C3"]
    time = -0.4 + np.arange(60) / SFREQ
    feats = [f for f, _ in latency] + ["meg"]
    r = rng.uniform(-0.1, 0.5, (3, 2, 60, 3))
    lmap = np.zeros((len(feats), 2, 60, 3))
    for i, (_, lat) in enumerate(latency):
        bump = np.exp(-0.5 * ((time - lat) / 0.04) ** 2)  # (time,)
        lmap[i] = bump[None, :, None] * np.array([1.0, 2.0, 3.0])[None, None, :]
    lmap[-1] = np.where(time < 0, 5.0, 0.0)[None, :, None]
    return xr.Dataset(
        {"r": (("model", "subject", "time", "channel"), r),
         "score": (("model",), r[..., time >= 0, :].mean(axis=(1, 2, 3))),
         "predicted": (("model", "example", "channel", "time"), rng.standard_normal((3, 4, 3, 60))),
         "actual": (("example", "channel", "time"), rng.standard_normal((4, 3, 60))),
         "example_subject": (("example",), ["S01", "S01", "S02", "S02"]),
         "loss_increase": (("feature",), lmap.mean(axis=(1, 2, 3))),
         "loss_increase_map": (("feature", "subject", "time", "channel"), lmap),
         "r_drop": (("feature", "subject", "time", "channel"), lmap / 10)},
        coords={"model": models, "subject": subjects, "time": time, "channel": chans,
                "example": [3, 8, 40, 41], "feature": feats},
        attrs={"sfreq": SFREQ, "meg_init": 10, **{f"truth_latency_{f}": lat for f, lat in latency}})


def test_a_saved_result_loads_back_unchanged(tmp_path):
    expected = fake_result()
    path = tmp_path / "enc.nc"
    expected.to_netcdf(path, engine="h5netcdf")
    actual = load_results(path)
    xr.testing.assert_allclose(actual, expected)
    assert example_subjects(actual) == ["S01", "S01", "S02", "S02"]


def test_truth_latencies_and_importance_peaks_agree_with_the_construction():
    ds = fake_result()
    assert truth_latencies(ds) == {"word_length": 0.2, "word_freq": 0.5}
    assert truth_latencies(ds.drop_attrs()) == {}
    for feature, lat in truth_latencies(ds).items():
        course = importance_course(ds, feature)
        assert course.dims == ("time",)
        assert float(course["time"].values[int(np.argmax(course.values))]) == pytest.approx(lat, abs=0.5 / SFREQ)
    # channel C3 carries 3x the mean of (1, 2, 3): the per-channel course is 1.5x the mean course
    mean = importance_course(ds, "word_length").values
    c3 = importance_course(ds, "word_length", channel="C3", subject="S02").values
    np.testing.assert_allclose(c3, 1.5 * mean)
    np.testing.assert_allclose(importance_course(ds, "word_length", measure="r").values, mean / 10)


def test_importance_course_names_what_is_unknown():
    ds = fake_result()
    with pytest.raises(UnitScopeError, match=r"No importance for 'speed'; the result has \['word_length'"):
        importance_course(ds, "speed")
    with pytest.raises(UnitScopeError, match="Unknown channel 'C9'"):
        importance_course(ds, "word_freq", channel="C9")
    with pytest.raises(UnitScopeError, match="holds no 'loss_increase_map'"):
        importance_course(ds.drop_vars(["loss_increase_map"]), "word_freq")


@pytest.mark.parametrize("change, message", [
    (lambda ds: ds.drop_vars(["r", "score"]), r"is not an encoding result: it lacks the variables \['r', 'score'\]"),
    (lambda ds: ds.drop_vars(["actual"]), "holds 'predicted' but not 'actual'"),
    (lambda ds: ds.assign(r=ds["r"].transpose("model", "subject", "channel", "time")),
     r"'r' must have dims \('model', 'subject', 'time', 'channel'\)"),
    (lambda ds: ds.drop_vars(["loss_increase"]), "holds 'loss_increase_map' but not 'loss_increase'"),
    (lambda ds: ds.isel(time=slice(None, None, -1)), "time axis of the result must increase"),
])
def test_check_results_rejects_what_a_viewer_cannot_draw(change, message):
    with pytest.raises(UnitScopeError, match=message):
        check_results(change(fake_result()))


def test_files_that_are_not_results_are_clear_errors(tmp_path):
    text = tmp_path / "notes.nc"
    text.write_text("this is not netCDF")
    with pytest.raises(UnitScopeError, match="'notes.nc' could not be read as netCDF"):
        load_results(text)
    other = tmp_path / "probe.nc"
    xr.Dataset({"amp_corr": (("unit", "freq"), np.zeros((2, 3)))}).to_netcdf(other, engine="h5netcdf")
    with pytest.raises(UnitScopeError, match=r"'probe.nc' is not an encoding result.*It holds \['amp_corr'\]"):
        load_results(other)
    with pytest.raises(FileNotFoundError, match="No such results file"):
        load_results(tmp_path / "missing.nc")
    with pytest.raises(UnitScopeError, match="must be an xarray.Dataset, got DataArray"):
        check_results(fake_result()["r"])


def test_a_study_result_passes_the_check(reading_small):
    from core.encoding import DREConfig, EncodingStudy

    result = EncodingStudy(DREConfig(n_epochs=1, hidden=8, meg_init=5), baselines=(), n_examples=4).run(
        reading_small)
    check_results(result)
    assert set(truth_latencies(result)) == {"word_length", "word_freq"}
