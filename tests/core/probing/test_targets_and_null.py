"""Targets checked before any pass (core.metrics.check_targets); probes without a permutation null."""
import re

import numpy as np
import pytest
import torch

from core._validation import UnitScopeError
from core.models import layer_map
from core.probing import AmplitudeProbe, ProbeConfig, probe_units
from core.probing._base import model_hash
from core.probing.stats import classify

CFG = ProbeConfig(n_iterations=1, n_null=2, layers=["conv_classifier"])


@pytest.fixture(scope="module")
def classifier():
    """A two-class trialwise Shallow net on 4 channels and its trials with labels 0/1."""
    from core.models import build_model

    model = build_model("shallow", n_chans=4, n_outputs=2, n_times=600, dense=False, seed=0)
    X = np.random.default_rng(0).standard_normal((8, 4, 600)).astype(np.float32)
    return model, X, np.array([0, 1] * 4)


def _passes(model, fn):
    """Run ``fn``; return its error and the batch size of every forward pass of ``model``."""
    layer_map(model)  # its receptive-field dry runs are not probe passes
    calls = []
    handle = model.register_forward_pre_hook(lambda m, i: calls.append(i[0].shape[0]))
    try:
        with pytest.raises(UnitScopeError) as err:
            fn()
    finally:
        handle.remove()
    return str(err.value), calls


@pytest.mark.parametrize("case, expected", [
    ("strings", r"y holds strings \('T1', 'T2'\); expected integer class indexes 0\.\.1 "
                r"\(Workspace\.data\.classes maps names to indexes\)"),
    ("shifted", r"y holds class indexes 5\.\.6; expected integer class indexes 0\.\.1: the model has 2 outputs"),
    ("too_high", r"y holds class indexes 0\.\.2; expected integer class indexes 0\.\.1"),
    ("negative", r"y holds class indexes -1\.\.1"),
    ("halves", r"y holds non-integer values \(0\.5, 1\.5\); expected integer class indexes 0\.\.1"),
    ("two_d", r"y has shape \(8, 2\); classification expects one class index per window, shape \(8,\)"),
])
def test_probe_refuses_bad_labels_before_any_pass(classifier, case, expected):
    model, X, y = classifier
    bad = {"strings": np.array(["T1", "T2"])[y], "shifted": y + 5, "too_high": np.r_[y[:-1], 2],
           "negative": np.r_[y[:-1], -1], "halves": y + 0.5, "two_d": np.stack([y, y], 1)}[case]
    msg, calls = _passes(model, lambda: probe_units(model, X, sfreq=250.0, config=CFG, y=bad,
                                                     task="classification"))
    assert re.search(expected, msg), msg
    assert calls == [1]  # only the one-window look at the output's shape: no full pass


def test_whole_number_float_labels_score_as_integers(classifier):
    model, X, y = classifier
    as_int = probe_units(model, X, sfreq=250.0, config=CFG, y=y, task="classification")
    as_float = probe_units(model, X, sfreq=250.0, config=CFG, y=y.astype(np.float64), task="classification")
    assert np.isfinite(as_int.attrs["metric_unperturbed"])
    assert as_float.attrs["metric_unperturbed"] == as_int.attrs["metric_unperturbed"]
    assert float(as_float["amp_validity"]) == float(as_int["amp_validity"])


def test_classification_on_a_regression_decoder_and_regression_targets_of_the_wrong_shape(small_deep4):
    X = np.random.default_rng(0).standard_normal((6, 4, 560)).astype(np.float32)
    cfg = ProbeConfig(n_iterations=1, n_null=2, layers=["conv_classifier"])
    with torch.no_grad():
        n_preds = small_deep4(torch.as_tensor(X[:1])).shape[2]
    labels = np.zeros((6, n_preds))
    msg, calls = _passes(small_deep4, lambda: probe_units(small_deep4, X, sfreq=250.0, config=cfg, y=labels,
                                                           task="classification"))
    assert "task='classification' needs a model with one output per class (at least 2), but this model has " \
           "1 output (output shape (6, 1, 39))" in msg and "takes task='regression'" in msg
    assert calls == [1]
    msg, calls = _passes(small_deep4, lambda: probe_units(small_deep4, X, sfreq=250.0, config=cfg,
                                                           y=np.zeros(6)))
    assert f"Targets y of shape (6,) do not match the predictions (6, {n_preds})" in msg
    assert f"y must have shape (n_windows, n_preds) = (6, {n_preds})" in msg and calls == [1]
    nan = np.zeros((6, n_preds))
    nan[2, 3] = np.nan
    msg, _ = _passes(small_deep4, lambda: probe_units(small_deep4, X, sfreq=250.0, config=cfg, y=nan))
    assert msg == "y contains NaN or Inf targets (1 of 234, the first at index (2, 3))."


@pytest.mark.parametrize("resolution", ["band", "freq"])
def test_no_null_gives_the_statistics_without_p_values_or_classes(small_deep4, resolution):
    """n_null=0 ("none"): the same maps and statistics as with a null (with one iteration the
    null's permutations, drawn after the perturbation, do not change it), an empty null dim,
    no p-value or class variable, and a note saying why."""
    X = np.random.default_rng(2).standard_normal((6, 4, 560)).astype(np.float32)
    kw = dict(n_iterations=1, layers=["conv_4", "conv_classifier"], resolution=resolution)
    none = probe_units(small_deep4, X, sfreq=250.0, config=ProbeConfig(n_null=0, **kw))
    some = probe_units(small_deep4, X, sfreq=250.0, config=ProbeConfig(n_null=2, **kw))
    for pre in ("amp", "phase"):
        np.testing.assert_array_equal(none[f"{pre}_stat_all"].values, some[f"{pre}_stat_all"].values)
        np.testing.assert_array_equal(none[f"{pre}_stat"].values, some[f"{pre}_stat"].values)
        assert none[f"{pre}_null"].shape == (0, 201, none.sizes["band"]) and none[f"{pre}_null_all"].shape == (0, 201)
        assert none.attrs[f"{pre}_n_null"] == 0
    assert "unit_class_all" in some and "unclassified" not in some.attrs
    assert not any(v.endswith(("_p", "_p_all", "_q", "_sig")) or v.startswith("unit_class") for v in none.data_vars)
    assert "no permutation null (n_null=0)" in none.attrs["unclassified"]
    with pytest.raises(UnitScopeError, match="holds no permutation null"):
        classify(none)
    alone = AmplitudeProbe(small_deep4, sfreq=250.0, layers=["conv_classifier"], n_iterations=1, n_null=0,
                           resolution=resolution).run(X)
    assert alone["amp_null_all"].shape == (0, 1) and np.isfinite(alone["amp_stat_all"].values).all()


def test_every_per_unit_variable_names_the_weights(small_deep4):
    X = np.random.default_rng(3).standard_normal((6, 4, 560)).astype(np.float32)
    ds = probe_units(small_deep4, X, sfreq=250.0, config=ProbeConfig(n_iterations=1, n_null=1,
                                                                     layers=["conv_classifier"]))
    for var in ("amp_stat_all", "phase_stat_all", "amp_band", "amp_corr", "phase_stat"):
        assert ds[var].attrs["model_hash"] == ds.attrs["model_hash"] == model_hash(small_deep4)
