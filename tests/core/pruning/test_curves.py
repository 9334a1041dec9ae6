"""Pruning curves and single-unit ablation effects."""
from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
import torch
import xarray as xr

from core._validation import UnitScopeError
from core.pruning import (MaskEvaluator, ablation_effects, n_to_prune, prune_fraction, pruning_curve,
                          select_scores, sensitivity_order, unit_scores)

SIZES = {"conv_time_spat": 25, "conv_2": 50, "conv_3": 100, "conv_4": 200}


@pytest.fixture(scope="module")
def half_dead(deep4, dense_set):
    """conv_4 units 0..99 feed nothing (zero classifier weights); their score is 0."""
    model = copy.deepcopy(deep4)
    with torch.no_grad():
        model.final_layer.conv_classifier.weight[:, :100] = 0.0
    X, _ = dense_set
    with torch.no_grad():
        out = model(torch.as_tensor(X))[:, 0].numpy()
    y = out + 0.3 * out.std() * np.random.default_rng(0).standard_normal(out.shape)
    w = model.final_layer.conv_classifier.weight.detach().abs().sum(dim=(0, 2, 3)).numpy()  # (200,)
    return MaskEvaluator(model, X, y), {"conv_4": w}


def test_pruning_units_that_feed_nothing_leaves_the_metric_unchanged(half_dead):
    ev, scores = half_dead
    curves = pruning_curve(ev, scores=scores, layers="conv_4", fractions=[0, 0.25, 0.5, 0.75],
                           orders=("most", "least"))
    least = curves["metric"].sel(order="least").values
    most = curves["metric"].sel(order="most").values
    np.testing.assert_allclose(least[:3], ev.baseline, atol=1e-6)  # dead units go first
    assert least[3] < ev.baseline - 0.01
    assert most[1] < ev.baseline - 0.01 and most[2] < most[1]
    assert curves.attrs["baseline"] == pytest.approx(ev.baseline)
    assert curves.attrs["by"] == "custom"
    assert curves["n_pruned"].sel(layer="conv_4").values.tolist() == [0, 50, 100, 150]
    assert ev.masks.n_pruned == 0  # state restored


def test_curve_points_equal_full_evaluations(half_dead):
    ev, scores = half_dead
    two = {"conv_3": np.arange(100.0), "conv_4": scores["conv_4"]}
    curves = pruning_curve(ev, scores=two, layers=["conv_3", "conv_4"], fractions=[0.3], n_repeats=2,
                           rng=5, orders=("most", "random"))
    base = ev.new_masks()
    ranked = {"conv_3": np.arange(100)[::-1], "conv_4": sensitivity_order(scores["conv_4"])}
    expected = ev.full_evaluate(prune_fraction(base, ranked, 0.3))
    assert float(curves["metric"].sel(order="most", fraction=0.3)) == pytest.approx(expected, abs=1e-5)
    gen = np.random.default_rng(5)
    runs = [ev.full_evaluate(prune_fraction(base, {n: gen.permutation(SIZES[n]) for n in ("conv_3", "conv_4")}, 0.3))
            for _ in range(2)]
    np.testing.assert_allclose(curves["random_runs"].values[:, 0], runs, atol=1e-5)
    assert curves["metric"].sel(order="random").item() == pytest.approx(np.mean(runs), abs=1e-5)
    assert curves["random_lo"].item() <= np.mean(runs) <= curves["random_hi"].item()
    one = pruning_curve(ev, scores=two, layers="conv_4", fractions=[0.3], orders=("most",))  # extra layers ignored
    assert one["metric"].item() == pytest.approx(ev.full_evaluate(prune_fraction(base, {"conv_4": ranked["conv_4"]}, 0.3)),
                                                 abs=1e-5)
    # one order as a str (as layers takes one): it was read letter by letter ("... but got 'm'")
    alone = pruning_curve(ev, scores=two, layers="conv_4", fractions=[0.3], orders="most")
    assert list(alone["order"].values) == ["most"] and alone["metric"].item() == one["metric"].item()


def test_whole_network_curve_is_reproducible_and_serialisable(half_dead, tmp_path):
    ev, _ = half_dead
    rng = np.random.default_rng(0)
    amp = {n: rng.random(k) for n, k in SIZES.items()}
    kw = dict(amplitude=amp, by="amplitude", fractions=[0.0, 0.2], n_repeats=2)
    a = pruning_curve(ev, rng=1, **kw)
    b = pruning_curve(ev, rng=1, **kw)
    xr.testing.assert_allclose(a, b, rtol=0, atol=1e-6)  # same draws; float paths may differ
    assert a.attrs.keys() == b.attrs.keys()
    assert a["n_pruned"].sel(fraction=0.2).values.tolist() == [5, 10, 20, 40]
    np.testing.assert_allclose(a["metric"].sel(fraction=0.0).values, ev.baseline, atol=1e-6)
    path = tmp_path / "curves.nc"
    a.to_netcdf(path, engine="h5netcdf")
    with xr.open_dataset(path, engine="h5netcdf") as back:
        xr.testing.assert_allclose(back.load(), a)


def test_ablation_effects_match_full_evaluation(half_dead):
    ev, _ = half_dead
    base = ev.new_masks().prune("conv_3", 3)
    drop = ablation_effects(ev, layers=["conv_3", "conv_4"], base=base)
    assert drop.sizes == {"unit": 300}
    assert drop.sel(unit="conv_3/3").isnull()  # already masked
    for unit in ("conv_3/7", "conv_4/150"):
        layer, idx = unit.split("/")
        expected = ev.full_evaluate(base) - ev.full_evaluate(base.copy().prune(layer, int(idx)))
        assert float(drop.sel(unit=unit)) == pytest.approx(expected, abs=1e-5)
    np.testing.assert_allclose(drop.where(drop.layer == "conv_4", drop=True).values[:100], 0.0, atol=1e-6)
    assert ev.masks.n_pruned == 0


def test_progress_and_cancel(half_dead):
    ev, scores = half_dead
    cancel, seen = threading.Event(), []

    def progress(p):
        seen.append(p)
        if p["done"] == 2:
            cancel.set()

    curves = pruning_curve(ev, scores=scores, layers="conv_4", fractions=[0.1, 0.2, 0.3], orders=("most", "least"),
                           progress=progress, cancel=cancel)
    assert [p["done"] for p in seen] == [1, 2] and seen[0]["total"] == 6
    assert curves.attrs["complete"] == 0
    assert np.isfinite(curves["metric"].sel(order="most").values[:2]).all()
    assert np.isnan(curves["metric"].sel(order="least").values).all()
    assert ev.masks.n_pruned == 0


def test_scores_in_every_accepted_form():
    da = xr.DataArray(np.zeros((4, 2, 3)), dims=("unit", "channel", "freq"),
                      coords={"layer": ("unit", ["conv_2"] * 4), "index": ("unit", [0, 1, 2, 49])})
    da[3, 1, 2] = -0.9  # max |R| over (channel, freq)
    da[1, 0, 0] = 0.4
    s = unit_scores(da, SIZES)
    assert list(s) == ["conv_2"] and s["conv_2"][49] == pytest.approx(0.9) and s["conv_2"][1] == pytest.approx(0.4)
    assert np.isnan(s["conv_2"][10])
    energy = unit_scores(da, SIZES, reduce="energy")["conv_2"]
    assert energy[49] == pytest.approx(0.81) and energy[1] == pytest.approx(0.16) and energy[0] == 0.0
    assert sensitivity_order(s["conv_2"])[:3].tolist() == [49, 1, 0] and sensitivity_order(s["conv_2"])[-1] != 0
    amp, ph = {"conv_2": np.r_[1.0, np.zeros(49)]}, {"conv_2": np.r_[0.0, 2.0, np.zeros(48)]}
    either, by = select_scores(SIZES, amplitude=amp, phase=ph, by="either")
    assert by == "either" and either["conv_2"][:2].tolist() == [1.0, 2.0]
    assert n_to_prune(0.1, 25) == 3 and n_to_prune(0.5, 25) == 13 and n_to_prune(0.2, 25) == 5


def test_bad_scores_and_options(half_dead):
    ev, scores = half_dead
    with pytest.raises(UnitScopeError, match="Ordering by 'either' needs amplitude and phase scores; phase not given"):
        select_scores(SIZES, amplitude={"conv_2": np.zeros(50)})
    with pytest.raises(UnitScopeError, match="Allowed values are 'max' and 'energy'"):
        unit_scores({"conv_2": np.zeros(50)}, SIZES, reduce="sum")
    with pytest.raises(UnitScopeError, match=r"Scores for layer 'conv_2' must have shape \(50,\), got \(49,\)"):
        unit_scores({"conv_2": np.zeros(49)}, SIZES)
    with pytest.raises(UnitScopeError, match="Scores given for unknown layer 'conv2'.*Did you mean 'conv_2'"):
        unit_scores({"conv2": np.zeros(50)}, SIZES)
    bad = xr.DataArray([1.0], dims=("unit",), coords={"layer": ("unit", ["conv_2"]), "index": ("unit", [60])})
    with pytest.raises(UnitScopeError, match="index unit 60, but the layer has 50 units"):
        unit_scores(bad, SIZES)
    with pytest.raises(UnitScopeError, match="Unknown layer 'conv_9'"):
        pruning_curve(ev, scores=scores, layers="conv_9")
    with pytest.raises(UnitScopeError, match=r"No sensitivity scores for layer\(s\) \['conv_3'\]"):
        pruning_curve(ev, scores=scores, layers=["conv_3", "conv_4"])
    with pytest.raises(UnitScopeError, match="'fraction' must lie in"):
        pruning_curve(ev, scores=scores, layers="conv_4", fractions=[0.5, 1.5])
    with pytest.raises(UnitScopeError, match="Allowed values are 'most', 'least' and 'random'"):
        pruning_curve(ev, scores=scores, layers="conv_4", orders=("best",))
