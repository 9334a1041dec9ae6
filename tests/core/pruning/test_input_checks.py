"""What the evaluator and the curves refuse or warn about: labels, NaN inputs, stale or partial scores."""
from __future__ import annotations

import copy
import logging
import warnings

import numpy as np
import pytest
import torch
import xarray as xr

from core._validation import UnitScopeError
from core.models import build_model
from core.probing import AmplitudeProbe
from core.probing._base import model_hash
from core.pruning import MaskEvaluator, ablation_effects, pruning_curve, select_scores


@pytest.fixture(scope="module")
def three_classes():
    """A trialwise 3-class Deep4, 30 trials and labels 0..2."""
    rng = np.random.default_rng(3)
    model = build_model("deep4", n_chans=4, n_outputs=3, n_times=600, dense=False, seed=0)
    return model, rng.standard_normal((30, 4, 600)).astype(np.float32), rng.integers(0, 3, 30)


@pytest.mark.parametrize("case, expected, rest", [
    ("strings", r"y holds strings \('c", r"; expected integer class indexes 0\.\.2 \(Workspace\.data\.classes"),
    ("shifted", r"y holds class indexes 5\.\.7; expected integer class indexes 0\.\.2: the model has 3 outputs",
     ""),
    ("halves", r"y holds non-integer values \(", r"\); expected integer class indexes 0\.\.2"),
    ("two_d", r"y has shape \(30, 2\); classification expects one class index per window, shape \(30,\)", ""),
])
def test_bad_labels_are_refused_naming_them(three_classes, case, expected, rest):
    model, X, y = three_classes
    bad = {"strings": np.array(["c0", "c1", "c2"])[y], "shifted": y + 5, "halves": y + 0.5,
           "two_d": np.stack([y, y], 1)}[case]
    with pytest.raises(UnitScopeError, match=expected + ".*" + rest if rest else expected):
        MaskEvaluator(model, X, bad, task="classification")


def test_whole_number_float_labels_give_the_integer_baseline(three_classes):
    model, X, y = three_classes
    ints = MaskEvaluator(model, X, y, task="classification")
    floats = MaskEvaluator(model, X, y.astype(np.float32), task="classification")
    assert floats.y.dtype == np.int64 and floats.baseline == ints.baseline > 0
    assert floats.full_evaluate() == ints.baseline


def test_classification_on_a_dense_regression_decoder(deep4, dense_set):
    X, y = dense_set
    with pytest.raises(UnitScopeError, match=r"task='classification' needs a model with one output per class "
                                             r"\(at least 2\), but this model has 1 output"):
        MaskEvaluator(deep4, X, y, task="classification")
    with pytest.raises(UnitScopeError, match=r"Targets y of shape \(\d+,\) do not match the predictions"):
        MaskEvaluator(deep4, X, y.ravel())


def test_nan_inputs_are_named_not_blamed_on_the_architecture(deep4, dense_set, caplog):
    X, y = dense_set
    bad = X.copy()
    bad[1, 2, 30] = np.nan
    with caplog.at_level(logging.WARNING, logger="core.pruning.evaluator"), \
            pytest.raises(UnitScopeError) as err:
        MaskEvaluator(deep4, bad, y)
    assert str(err.value) == f"X contains NaN or Inf samples (1 of {X.size}, the first at index (1, 2, 30))."
    assert "reproduce" not in caplog.text  # the steps were never compared with the model
    bad_y = y.copy()
    bad_y[0, 0] = np.inf
    with pytest.raises(UnitScopeError, match=r"y contains NaN or Inf targets \(1 of"):
        MaskEvaluator(deep4, X, bad_y)


@pytest.fixture(scope="module")
def shallow_eval(shallow):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((3, 4, 600)).astype(np.float32)
    with torch.no_grad():
        y = shallow(torch.as_tensor(X))[:, 0].numpy()
    return MaskEvaluator(shallow, X, y + rng.standard_normal(y.shape))


def _scores(layer: str, n: int, **attrs) -> xr.DataArray:
    return xr.DataArray(np.arange(n, dtype=float), dims="unit", attrs=attrs,
                        coords={"layer": ("unit", [layer] * n), "index": ("unit", np.arange(n))})


def test_scores_of_fewer_units_than_the_ranked_layer_are_refused(shallow_eval):
    """Deep4's 25 conv_time_spat scores do not rank a Shallow net's 40 conv_time_spat units."""
    deep4_scores = _scores("conv_time_spat", 25)
    with pytest.raises(UnitScopeError, match=r"The scores cover 25 of the 40 units of layer 'conv_time_spat'"):
        pruning_curve(shallow_eval, scores=deep4_scores, fractions=[0, 0.5], orders=("most",))
    with pytest.raises(UnitScopeError, match=r"The amplitude scores cover 25 of the 40 units"):
        pruning_curve(shallow_eval, amplitude=deep4_scores, phase=_scores("conv_time_spat", 40),
                      fractions=[0, 0.5], orders=("most",))
    # every unit scored (NaN scores included: units not reached) is a ranking
    full = _scores("conv_time_spat", 40)
    full[3] = np.nan
    curve = pruning_curve(shallow_eval, scores=full, fractions=[0, 0.5], orders=("most",))
    assert curve["n_pruned"].values.tolist() == [[0, 20]]
    # a layer that is not ranked may be scored in part
    sizes = {"conv_2": 50, "conv_4": 200}
    part = xr.concat([_scores("conv_2", 10), _scores("conv_4", 200)], dim="unit")
    with pytest.raises(UnitScopeError, match="cover 10 of the 50 units of layer 'conv_2'"):
        select_scores(sizes, scores=part)
    assert select_scores(sizes, scores=part, layers=["conv_4"])[0]["conv_4"].tolist() == list(range(200))


def test_scores_made_for_other_weights_are_used_with_a_warning(shallow_eval, caplog):
    mine = model_hash(shallow_eval.model)
    fresh = _scores("conv_time_spat", 40, model_hash=mine)
    stale = _scores("conv_time_spat", 40, model_hash="f" * 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for these weights' own scores
        expected = pruning_curve(shallow_eval, scores=fresh, fractions=[0, 0.5], orders=("most", "least"))
    with caplog.at_level(logging.WARNING, logger="core.pruning.curves"), \
            pytest.warns(UserWarning, match=f"made for other weights \\(model_hash {'f' * 16}\\) than the "
                                            f"evaluator's decoder \\({mine}\\)"):
        curve = pruning_curve(shallow_eval, scores=stale, fractions=[0, 0.5], orders=("most", "least"))
    assert "made for other weights" in caplog.text
    np.testing.assert_array_equal(curve["metric"].values, expected["metric"].values)  # used all the same
    with pytest.warns(UserWarning, match="The phase scores were made for other weights"):
        pruning_curve(shallow_eval, amplitude=fresh, phase=stale, fractions=[0.5], orders=("most",))


def test_a_probe_of_another_decoder_warns_and_one_of_this_decoder_does_not(shallow, shallow_eval):
    X = np.random.default_rng(5).standard_normal((6, 4, 600)).astype(np.float32)
    probe = AmplitudeProbe(shallow, sfreq=250.0, layers=["conv_time_spat"], n_iterations=1, n_null=1).run(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pruning_curve(shallow_eval, scores=probe["amp_stat_all"], fractions=[0.5], orders=("most",))
    twin = copy.deepcopy(shallow)
    with torch.no_grad():
        twin.conv_time_spat.conv_time.weight.mul_(2.0)
    other = MaskEvaluator(twin, shallow_eval.X, shallow_eval.y)
    with pytest.warns(UserWarning, match="made for other weights"):
        pruning_curve(other, scores=probe["amp_stat_all"], fractions=[0.5], orders=("most",))
    drops = ablation_effects(shallow_eval)
    assert drops.attrs["model_hash"] == model_hash(shallow)
    with pytest.warns(UserWarning, match="The scores were made for other weights"):
        pruning_curve(other, scores=drops, fractions=[0.5], orders=("most",))
