"""Fast re-measurement equals the full re-evaluation of the hooked model."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from core._validation import UnitScopeError
from core.metrics import pearson_r
from core.models import build_model
from core.pruning import MaskEvaluator, MaskSet

TOL = 1e-5


def _random_toggles(ev, rng, n):
    names = [l.name for l in ev.layers]
    sizes = {l.name: l.n_units for l in ev.layers}
    masks = ev.masks
    for _ in range(n):
        layer = names[rng.integers(len(names))]
        masks = masks.copy().toggle(layer, int(rng.integers(sizes[layer])))
        yield layer, masks


def test_unmasked_metric_and_predictions_match_the_model(deep4, dense_set):
    X, y = dense_set
    ev = MaskEvaluator(deep4, X, y)
    assert ev._gather is not None  # contiguous windows were re-cut into segments
    with torch.no_grad():
        expected = deep4(torch.as_tensor(X))[:, 0].numpy()
    np.testing.assert_allclose(ev.predict(), expected, rtol=1e-4, atol=1e-5)
    assert ev.baseline == pytest.approx(pearson_r(expected, y), abs=TOL)
    assert ev.full_evaluate() == pytest.approx(ev.baseline, abs=TOL)


@pytest.mark.parametrize("contiguous", [True, False])
def test_fast_equals_full_over_random_toggles(deep4, dense_set, contiguous):
    X, y = dense_set
    if not contiguous:
        X, y = X[::2], y[::2]  # every other window: no longer a contiguous stretch
    ev = MaskEvaluator(deep4, X, y, resync_every=3)
    assert (ev._gather is not None) == contiguous
    rng = np.random.default_rng(0)
    seen = set()
    for layer, masks in _random_toggles(ev, rng, 16):
        fast = ev.evaluate(masks)
        seen.add(layer)
        assert fast == pytest.approx(ev.full_evaluate(masks), abs=TOL), layer
    assert seen == {"conv_time_spat", "conv_2", "conv_3", "conv_4"}
    assert ev.masks == masks
    # large changes (no incremental update) and a full restore
    big = ev.new_masks().prune("conv_2", range(30)).prune("conv_4", range(0, 200, 3))
    assert ev.evaluate(big) == pytest.approx(ev.full_evaluate(big), abs=TOL)
    assert ev.evaluate(ev.new_masks()) == pytest.approx(ev.baseline, abs=TOL)


def test_uncommitted_evaluation_leaves_the_cache_alone(deep4, dense_set):
    ev = MaskEvaluator(deep4, *dense_set)
    state = ev.new_masks().prune("conv_3", [1, 2])
    committed = ev.evaluate(state)
    probe = state.copy().prune("conv_2", 5)
    peek = ev.evaluate(probe, commit=False)
    assert ev.masks == state and ev.evaluate() == committed
    assert peek == pytest.approx(ev.full_evaluate(probe), abs=TOL)
    assert ev.refresh() == pytest.approx(committed, abs=TOL)
    assert ev.toggle("conv_3", 1) == pytest.approx(ev.full_evaluate(state.copy().restore("conv_3", 1)), abs=TOL)


def test_incremental_and_recomputed_paths_agree(deep4, dense_set):
    inc = MaskEvaluator(deep4, *dense_set)
    full = MaskEvaluator(deep4, *dense_set, incremental=False)
    for _, masks in _random_toggles(inc, np.random.default_rng(1), 10):
        assert inc.evaluate(masks) == pytest.approx(full.evaluate(masks), abs=TOL)
    # eight conv_3 units at once: still incremental (<= a quarter), through the conv path
    several = inc.masks.copy().toggle("conv_3", 0)
    for u in range(1, 9):
        several.toggle("conv_3", u)
    assert inc.evaluate(several) == pytest.approx(full.evaluate(several), abs=TOL)
    assert inc._n_incr[3] > 0


def test_a_layer_pruned_unit_by_unit_gives_the_constant_output_of_a_full_evaluation(deep4, dense_set):
    """With every unit of conv_4 masked the output is the classifier's bias, the same for every
    window: Pearson r is undefined (NaN), as in a full evaluation. Updated unit by unit, the
    rounding left of the subtracted units made up an r of noise (the demo's: -0.14)."""
    ev = MaskEvaluator(deep4, *dense_set, resync_every=1000)
    masks = ev.new_masks()
    n = next(l.n_units for l in ev.layers if l.name == "conv_4")
    for u in range(n):
        masks = masks.copy().prune("conv_4", u)
        ev.evaluate(masks)
    assert np.isnan(ev.evaluate()) and np.isnan(ev.full_evaluate(masks))
    assert np.ptp(ev.predict()) == 0
    assert ev.evaluate(masks.copy().restore("conv_4", 0)) == pytest.approx(
        ev.full_evaluate(masks.copy().restore("conv_4", 0)), abs=TOL)


def test_classification_and_shallow(shallow):
    rng = np.random.default_rng(3)
    clf = build_model("deep4", n_chans=4, n_outputs=3, n_times=600, dense=False, seed=0)
    X = rng.standard_normal((30, 4, 600)).astype(np.float32)
    y = rng.integers(0, 3, 30)
    ev = MaskEvaluator(clf, X, y, task="classification")
    for _, masks in _random_toggles(ev, rng, 6):
        assert ev.evaluate(masks) == pytest.approx(ev.full_evaluate(masks), abs=TOL)
    assert ev.metric_name == "balanced_accuracy"
    Xs = rng.standard_normal((3, 4, 600)).astype(np.float32)
    with torch.no_grad():
        ys = shallow(torch.as_tensor(Xs))[:, 0].numpy()
    ys = ys + rng.standard_normal(ys.shape)
    ev = MaskEvaluator(shallow, Xs, ys)
    masks = ev.new_masks().prune("conv_time_spat", [0, 5, 7])
    assert ev.evaluate(masks) == pytest.approx(ev.full_evaluate(masks), abs=TOL)


def test_model_is_never_modified(deep4, dense_set):
    model = copy.deepcopy(deep4).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    ev = MaskEvaluator(model, *dense_set)
    ev.evaluate(ev.new_masks().prune("conv_2", 1))
    assert model.training
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert all(not m._forward_hooks for m in model.modules())


def test_bad_input(deep4, dense_set, shallow):
    X, y = dense_set
    with pytest.raises(UnitScopeError, match=r"y must have shape \(n_windows, n_preds\)"):
        MaskEvaluator(deep4, X, y[:, :-1])
    with pytest.raises(UnitScopeError, match="X has 3 channels but the model expects n_chans=4"):
        MaskEvaluator(deep4, X[:, :3], y)
    with pytest.raises(UnitScopeError, match="Allowed values are 'regression' and 'classification'"):
        MaskEvaluator(deep4, X, y, task="regresion")
    with pytest.raises(UnitScopeError, match="cannot process windows of n_times=100"):
        MaskEvaluator(deep4, X[:, :, :100], y)
    ev = MaskEvaluator(deep4, X, y)
    with pytest.raises(UnitScopeError, match="different architectures"):
        ev.evaluate(MaskSet.for_model(shallow))
    wider = copy.deepcopy(deep4)  # a mask of a Deep4 with other channels: measured as this one's before
    wider.unitscope_config = dict(wider.unitscope_config, n_chans=wider.unitscope_config["n_chans"] + 1)
    with pytest.raises(UnitScopeError, match=r"different architectures: deep4 \(n_chans=4.* vs deep4 \(n_chans=5"):
        ev.evaluate(MaskSet.for_model(wider).prune("conv_4", 1))
    with pytest.raises(UnitScopeError, match="Unknown layer 'conv_5'"):
        ev.toggle("conv_5", 0)
