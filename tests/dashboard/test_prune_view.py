"""Prune view and per-session prune state, without a browser.

The metric the app shows is checked against an independent measurement (the masked model
run on every held-out window); isolation between sessions and the shared decoder's weights
are checked directly.
"""
from __future__ import annotations

import copy
import math
import threading

import numpy as np
import panel as pn
import pytest
import torch

from core._validation import UnitScopeError
from core.bench.app_prune import TOGGLE
from core.metrics import score
from core.pruning import MaskSet
from dashboard.prune_state import shared_pruning
from dashboard.queue import Cancelled, WorkQueue
from dashboard.state import Session
from dashboard.views.prune import (PruneView, bars_axis_label, curve_plot, effect_bars, fmt_metric, metric_html,
                                   prune_state_of)


def _session(decoder, probe=None):
    s = Session()
    s.set_decoder(decoder, probe=probe, probe_source="test")
    return s


def _expected_metric(decoder, masks) -> float:
    """The held-out metric of the masked decoder, run window by window on a copy."""
    model = copy.deepcopy(decoder.ws.model).eval()
    X, y = decoder.ws.eval_set("test")
    with torch.no_grad(), masks.apply(model):
        out = model(torch.as_tensor(X))
    return score(decoder.task, out[:, 0].numpy(), y)


def _weights(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_prune_click_updates_the_metric_to_the_masked_decoder(sessions, tiny_decoder):
    s, ps = sessions()
    before = ps.metric
    assert before == pytest.approx(tiny_decoder.predictions()["metric"], abs=1e-4)
    assert ps._ev.reserve() == 0  # opening the view made the buffers of the first prune
    unpruned_html = metric_html(ps)
    assert "last change: none yet" in unpruned_html
    assert ps.toggle("conv_2", 3) and ps.join()
    expected = _expected_metric(tiny_decoder, MaskSet.for_model(tiny_decoder.ws.model).prune("conv_2", 3))
    assert ps.metric == pytest.approx(expected, abs=1e-4)
    assert ps.metric != pytest.approx(before, abs=1e-7)
    assert ps.pruned == {"conv_2": [3]} and ps.measured_version == ps.mask_version
    assert ps.metric_base == pytest.approx(before) and ps.metric_previous == pytest.approx(before)
    html = metric_html(ps)
    assert fmt_metric(ps.metric) in html and fmt_metric(before) in html and "1</span> unit(s) pruned" in html
    assert "last change: pruned conv_2/3" in html
    assert html.count("<br>") == unpruned_html.count("<br>")  # the card keeps its lines on the first change


def test_an_edit_while_the_metric_is_being_published_is_measured(sessions, tiny_decoder):
    """An edit arriving while the measuring worker publishes its metric (here made by a
    watcher of that very update) is measured too: no lost click, no "already running"."""
    s, ps = sessions()
    edits = []

    def edit_once(event):  # runs in the worker thread, inside its publishing step
        if not edits and ps.measured_version == 1:
            edits.append(ps.toggle("conv_2", 4))

    ps.param.watch(edit_once, "metric")
    assert ps.toggle("conv_2", 3)
    for _ in range(2):
        assert ps.join()
    assert edits == [True] and ps.pruned == {"conv_2": [3, 4]}
    assert ps.measured_version == ps.mask_version == 2 and not ps.measuring
    expected = _expected_metric(tiny_decoder, MaskSet.for_model(tiny_decoder.ws.model).prune("conv_2", [3, 4]))
    assert ps.metric == pytest.approx(expected, abs=1e-4)
    assert not any("already running" in text for _, text in s.alerts)


def test_undo_reset_and_toggle_back(sessions, tiny_decoder):
    s, ps = sessions()
    base = ps.metric
    ps.prune("conv_3", [1, 2, 3])
    ps.toggle("conv_4", 0)
    ps.join()
    assert ps.pruned == {"conv_3": [1, 2, 3], "conv_4": [0]} and ps.n_undo == 2
    assert ps.undo() and ps.join()
    assert ps.pruned == {"conv_3": [1, 2, 3]}
    expected = _expected_metric(tiny_decoder, MaskSet.for_model(tiny_decoder.ws.model).prune("conv_3", [1, 2, 3]))
    assert ps.metric == pytest.approx(expected, abs=1e-4)
    assert ps.reset() and ps.join()
    assert ps.pruned == {} and ps.metric == pytest.approx(base, abs=1e-5)
    assert ps.undo() and ps.join() and ps.pruned == {"conv_3": [1, 2, 3]}  # reset is undoable
    ps.toggle("conv_3", 2)
    ps.join()
    assert ps.pruned == {"conv_3": [1, 3]}


def test_sessions_are_isolated_and_the_shared_decoder_is_never_changed(sessions, tiny_decoder):
    model = tiny_decoder.ws.model
    weights = _weights(model)
    a, pa = sessions()
    b, pb = sessions()
    pa.prune("conv_2", list(range(10)))
    pa.join()
    assert pa.metric != pytest.approx(pb.metric, abs=1e-6)
    assert pb.pruned == {} and pb.metric == pytest.approx(pb.metric_base)
    pb.toggle("conv_4", 5)
    pb.join()
    assert pa.pruned == {"conv_2": list(range(10))} and pb.pruned == {"conv_4": [5]}
    expected = _expected_metric(tiny_decoder, MaskSet.for_model(model).prune("conv_4", 5))
    assert pb.metric == pytest.approx(expected, abs=1e-4)
    for k, v in _weights(model).items():
        torch.testing.assert_close(v, weights[k])
    assert not any(m._forward_hooks for m in model.modules())
    assert pa._ev is not pb._ev and pa._ev.model is pb._ev.model  # forks share the frozen copy


def test_pruning_a_whole_layer_reports_the_metric(sessions):
    s, ps = sessions()
    assert ps.prune_layer("conv_3") and ps.join()
    assert len(ps.pruned["conv_3"]) == 100
    expected = _expected_metric(s.decoder, MaskSet.for_model(s.decoder.ws.model).prune("conv_3", range(100)))
    assert ps.metric == pytest.approx(expected, abs=1e-4, nan_ok=True)
    html = metric_html(ps)
    assert "unit(s) pruned" in html
    if not math.isfinite(ps.metric):
        assert "undefined" in html and "no longer varies" in html
    assert not s.alerts


def test_bad_layer_and_mask_from_another_model_give_clear_messages(sessions):
    from core.models import build_model

    s, ps = sessions()
    assert not ps.toggle("conv_classifier", 0)
    assert "cannot be pruned" in s.alerts[-1][1] and "output layer" in s.alerts[-1][1]
    other = build_model("shallow", n_chans=32, n_outputs=1, n_times=1200)
    assert not ps.load_mask(MaskSet.for_model(other).prune("conv_time_spat", 1).to_json())
    assert s.alerts[-1][1].startswith("Mask not loaded: This mask was saved for")
    assert not ps.load_mask(b"{not json")
    assert "Mask not loaded: Invalid mask JSON" in s.alerts[-1][1]
    assert ps.pruned == {}
    good = MaskSet.for_model(s.decoder.ws.model).prune("conv_2", [4, 7])
    assert ps.load_mask(good.to_json().encode()) and ps.join()
    assert ps.pruned == {"conv_2": [4, 7]}
    assert MaskSet.from_json(ps.mask_json()) == good


def test_prune_by_class_and_top_k_follow_the_probe(sessions, tiny_probe):
    s, ps = sessions()
    sel = tiny_probe["layer"].values == "conv_3"
    classes = tiny_probe["unit_class_all"].values[sel]
    cls = max(set(classes), key=lambda c: (classes == c).sum())
    expected = sorted(int(i) for i in tiny_probe["index"].values[sel][classes == cls])
    assert ps.class_units("conv_3", cls) == expected
    assert ps.prune_class("conv_3", cls) and ps.join()
    assert ps.pruned["conv_3"] == expected
    ps.reset()
    amp = tiny_probe["amp_stat_all"].values[sel]
    idx = tiny_probe["index"].values[sel]
    top = sorted(int(i) for i in idx[np.argsort(-amp, kind="stable")[:4]])
    assert sorted(ps.top_units("conv_3", 4, by="amplitude")) == top
    assert ps.prune_top("conv_3", 4, by="amplitude") and ps.join()
    assert ps.pruned["conv_3"] == top
    with pytest.raises(UnitScopeError, match="class"):
        ps.class_units("conv_3", "amp")


def test_prune_by_class_without_a_probe_says_what_to_do(tmp_path, monkeypatch, tiny_decoder):
    monkeypatch.setenv("UNITSCOPE_DATA_ROOT", str(tmp_path))
    s = _session(tiny_decoder)
    try:
        ps = prune_state_of(s)
        ps.activate()
        ps.join()
        assert not ps.prune_class("conv_2", "amplitude")
        assert "run the probe" in s.alerts[-1][1]
    finally:
        s.close()


def test_ablation_effects_and_curves_are_shared_between_sessions(sessions, tiny_decoder):
    a, pa = sessions()
    b, pb = sessions()
    pa.compute_effects("conv_4")
    pa.join()
    drop = pa.effects
    assert drop.sizes["unit"] == 200 and pa.effects_layer == "conv_4"
    # the drop of unit 7 is the change of the validation block's metric when it alone is pruned
    # (the drops rank units for the curves, which measure the test block: never the same block)
    assert drop.attrs["block"] == "valid"
    valid = shared_pruning(tiny_decoder).evaluator("valid").fork()
    assert float(drop.sel(unit="conv_4/7")) == pytest.approx(
        valid.baseline - valid.evaluate(valid.new_masks().prune("conv_4", 7)), abs=1e-6)
    pb.toggle("conv_4", 7)  # the session's metric: the test block
    pb.join()
    assert pb.metric_base == pytest.approx(tiny_decoder.ws.evaluate("test"), abs=1e-4)
    assert pb.metric_base != pytest.approx(valid.baseline, abs=1e-4)
    assert shared_pruning(tiny_decoder).cache[("ablation", "conv_4")] is drop
    pb.compute_effects("conv_4")  # served from the shared cache, no job
    assert pb.effects is drop
    pa.compute_curves("conv_4")
    pa.join()
    ds = pa.curves
    assert set(ds["order"].values) == {"most", "least", "random"} and ds.attrs["complete"] == 1
    assert ds["metric"].sel(fraction=0.0).values == pytest.approx(pa.metric_base, abs=1e-4)
    assert ds["random_lo"].values[3] <= ds["metric"].sel(order="random").values[3] <= ds["random_hi"].values[3]


def test_finetune_works_on_a_copy_and_reports_recovery(sessions, tiny_decoder):
    model = tiny_decoder.ws.model
    weights = _weights(model)
    a, pa = sessions()
    b, pb = sessions()
    pa.prune("conv_3", list(range(30)))
    pa.join()
    pa.finetune_epochs = 1
    pa.start_finetune()
    pa.join()
    assert pa.finetune_state == "done" and pa.finetuned
    r = pa.finetune_result
    assert r["before"] == pytest.approx(pa.metric_previous, abs=1e-3) and r["n_steps"] > 0
    assert pa.metric == pytest.approx(r["after"], abs=1e-3)
    assert pa.model is not model
    for k, v in _weights(model).items():
        torch.testing.assert_close(v, weights[k])
    assert pb.metric == pytest.approx(pb.metric_base) and not pb.finetuned
    pa.discard_finetune()
    pa.join()
    assert not pa.finetuned and pa.model is model
    expected = _expected_metric(tiny_decoder, MaskSet.for_model(model).prune("conv_3", list(range(30))))
    assert pa.metric == pytest.approx(expected, abs=1e-4)


def test_closing_a_session_stops_its_workers(tmp_path, monkeypatch, tiny_decoder):
    monkeypatch.setenv("UNITSCOPE_DATA_ROOT", str(tmp_path))
    s = _session(tiny_decoder)
    ps = prune_state_of(s)
    ps.activate()
    ps.join()
    ps.prune("conv_2", [1])
    ps.finetune_epochs = 10
    ps.start_finetune()
    job = s._jobs["finetune"]
    s.close()
    assert job.join(30) and not job.running
    assert ps.finetune_state in ("stopped", "done") or not ps.finetuned


def test_fork_shares_the_unpruned_cache(tiny_decoder):
    ev = shared_pruning(tiny_decoder).evaluator()
    f = ev.fork()
    assert all(f._a[k] is ev._a[k] for k in ev._a)
    value = f.evaluate(f.new_masks().prune("conv_4", [1, 2]))
    assert ev.masks.n_pruned == 0 and f.masks.n_pruned == 2
    assert ev.evaluate() == pytest.approx(ev.baseline)
    assert value == pytest.approx(f.full_evaluate(), abs=1e-4)


# ---- the view ----------------------------------------------------------------------------------
def test_prune_view_renders_and_follows_the_state(sessions):
    s, ps = sessions()
    s.view = "prune"
    view = PruneView(session=s)
    assert isinstance(view.__panel__(), pn.Column)
    s.param.update(layer="conv_3", unit=12)
    assert view.layer.value == "conv_3" and view.unit.value == 12
    assert view.toggle_btn.label == "Prune / restore conv_3/12" and "conv_3/12: in use" in view.metric.object
    assert view.toggle_btn.label == f"{TOGGLE} conv_3/12"  # the label the benchmark clicks
    view.toggle_btn.clicks += 1
    ps.join()
    assert ps.pruned == {"conv_3": [12]}
    assert view.toggle_btn.label == "Prune / restore conv_3/12" and "conv_3/12: pruned" in view.metric.object
    s.unit = 13  # the card follows the selection
    assert "conv_3/13: in use" in view.metric.object and view.toggle_btn.label == "Prune / restore conv_3/13"
    s.unit = 12
    assert fmt_metric(ps.metric) in view.metric.object and not view.undo_btn.disabled
    bars = view.unit_src.data["bar"]
    assert len(bars) == 100 and bars[12] == "#222222" and bars.count("#222222") == 1
    assert view.unit_src.data["marker"][12] == "x" and view.unit_src.data["marker"].count("x") == 1  # crossed
    sel = s.probe.sel(unit="conv_3/12")
    assert view.unit_src.data["amp"][12] == pytest.approx(float(sel["amp_stat_all"]))
    view.undo_btn.clicks += 1
    ps.join()
    assert ps.pruned == {} and "conv_3/12: in use" in view.metric.object
    assert "#222222" not in view.unit_src.data["bar"] and "x" not in view.unit_src.data["marker"]


def _legend_looks(fig) -> dict:
    """label -> (marker, fill colour, line colour) of each legend entry as the browser draws it."""
    out = {}
    for item in fig.legend[0].items:
        g = item.renderers[0].glyph
        label = item.label.value if hasattr(item.label, "value") else item.label
        out[label] = tuple(getattr(p, "value", p) for p in (g.marker, g.fill_color, g.line_color))
    return out


def test_the_scatter_legend_keeps_its_looks_when_a_class_first_unit_is_pruned(sessions, tiny_probe):
    """The classes' legend entries do not take the looks of a unit: grouped by the units' class,
    an entry was drawn from the class's first unit and became a dark cross once it was pruned."""
    from dashboard.views.overview import CLASS_COLORS
    from dashboard.views.units import unit_table

    s, ps = sessions()
    s.view = "prune"
    view = PruneView(session=s)
    view.__panel__()
    s.layer = "conv_3"
    assert view.scatter_fig.legend.visible
    before = _legend_looks(view.scatter_fig)
    assert before == {**{c: ("circle", CLASS_COLORS[c], "white") for c in ("amplitude", "phase", "bimodal",
                                                                          "insensitive")},
                      "pruned": ("x", before["pruned"][1], "#222222")}
    cls = list(unit_table(tiny_probe, "conv_3")["cls"])
    firsts = sorted({cls.index(c) for c in set(cls)})
    for i in firsts:
        ps.toggle("conv_3", i)
        ps.join()
    assert sorted(ps.pruned["conv_3"]) == firsts and view.unit_src.data["marker"].count("x") == len(firsts)
    assert _legend_looks(view.scatter_fig) == before


def test_the_scatter_legend_is_hidden_without_a_probe(tmp_path, monkeypatch, tiny_decoder):
    monkeypatch.setenv("UNITSCOPE_DATA_ROOT", str(tmp_path))
    s = _session(tiny_decoder)
    try:
        s.view = "prune"
        view = PruneView(session=s)
        view.__panel__()
        s.layer = "conv_3"
        assert not view.scatter_fig.legend.visible and "run the probe" in view.scatter_fig.title.text
    finally:
        s.close()


def test_the_buttons_keep_their_state_through_a_prune(sessions):
    """A change of a button's state or label makes the browser lay out the page again: the
    toggle, Undo and Reset keep theirs through a prune and its undo (the card tells the
    unit's state), and Undo/Reset explain a click that has nothing to do."""
    s, ps = sessions()
    s.view = "prune"
    view = PruneView(session=s)
    view.__panel__()
    s.param.update(layer="conv_3", unit=3)
    assert ps.ready and not view.undo_btn.disabled and not view.reset_btn.disabled
    changed = []
    for b in (view.undo_btn, view.reset_btn, view.toggle_btn):
        b.param.watch(lambda e: changed.append(e.name), ["disabled", "label"])
    view.undo_btn.clicks += 1
    view.reset_btn.clicks += 1
    assert [t for _, t in s.alerts[-2:]] == ["Nothing to undo.", "Nothing to reset: no unit is pruned."]
    assert ps.mask_version == 0
    view.toggle_btn.clicks += 1
    ps.join()
    view.undo_btn.clicks += 1
    ps.join()
    assert ps.pruned == {} and ps.mask_version == 2 and changed == []


def test_clicking_a_bar_or_a_point_toggles_that_unit(sessions, tiny_probe):
    from types import SimpleNamespace

    s, ps = sessions()
    s.view = "prune"
    view = PruneView(session=s)
    s.layer = "conv_4"
    assert (view.bar_fig.x_range.start, view.bar_fig.x_range.end) == (-0.5, 199.5)  # unit k: k - 0.5 .. k + 0.5
    view._on_bar(SimpleNamespace(x=17.4, y=0.0))  # a click anywhere in unit 17's column
    ps.join()
    assert ps.pruned == {"conv_4": [17]} and s.unit == 17
    k = list(view.unit_src.data["index"]).index(33)
    view.unit_src.selected.indices = [k]  # a click on unit 33's point
    ps.join()
    assert 33 in ps.pruned["conv_4"] and s.unit == 33 and view.unit_src.selected.indices == []
    view._on_bar(SimpleNamespace(x=16.6, y=0.1))  # a second click restores
    ps.join()
    assert ps.pruned == {"conv_4": [33]}


def _view_with_effects(sessions, layer):
    """A session showing the Prune view of ``layer`` with its ablation effects computed."""
    s, ps = sessions()
    s.view = "prune"
    view = PruneView(session=s)
    s.layer = layer
    ps.compute_effects(layer)
    ps.join()
    return s, ps, view


def test_curves_and_effects_reach_the_plots(sessions):
    s, ps, view = _view_with_effects(sessions, "conv_4")
    np.testing.assert_allclose(view.unit_src.data["drop"], np.nan_to_num(ps.effects.values), atol=1e-12)
    assert view.bar_fig.title.text.startswith("conv_4: drop on the validation block")
    # numbered by a ticker of whole units (on a categorical axis all 200 names were printed over each other)
    ticker = view.bar_fig.xaxis[0].ticker
    assert ticker.min_interval == 1 and ticker.desired_num_ticks <= 20
    assert not view.curve_fig.legend.visible and "not computed yet" in view.curve_fig.title.text
    assert not view.effects_progress.visible and not view.curves_progress.visible  # no bar when idle or done
    ps.effects_progress = 0.4  # (as a running computation reports)
    assert view.effects_progress.visible and view.effects_progress.value == 400
    ps.effects_progress = 1.0
    assert not view.ft_progress.visible
    ps.compute_curves("conv_4")
    ps.join()
    assert not view.curves_progress.visible and view.curves_progress.value == 1000
    np.testing.assert_allclose(view.curve_srcs["most"].data["m"], ps.curves["metric"].sel(order="most").values)
    assert view.star_src.data["q"] == [0.0] and view.curve_fig.title.text.startswith("Pruning curves of conv_4")
    legend = view.curve_fig.legend[0]
    assert legend.visible and legend.click_policy == "hide"
    assert legend in view.curve_fig.below and legend not in view.curve_fig.center  # never over a curve
    ps.prune("conv_4", list(range(20)))
    ps.join()
    assert view.star_src.data["q"] == [pytest.approx(0.1)] and view.star_src.data["m"] == [pytest.approx(ps.metric)]


def test_the_ablation_bars_say_how_well_sensitivity_predicts_each_units_drop(sessions, tiny_probe):
    from scipy.stats import spearmanr

    s, ps, view = _view_with_effects(sessions, "conv_3")
    sel = tiny_probe["layer"].values == "conv_3"
    order = np.argsort(tiny_probe["index"].values[sel])
    amp = tiny_probe["amp_stat_all"].values[sel][order]
    phase = tiny_probe["phase_stat_all"].values[sel][order]
    drop = np.nan_to_num(ps.effects.sel(unit=[f"conv_3/{i}" for i in range(len(amp))]).values)
    for by, s_by in (("either", np.maximum(amp, phase)), ("amplitude", amp), ("phase", phase)):
        ps.curves_by = by
        rho = spearmanr(s_by, drop)[0]
        assert view.bar_fig.xaxis[0].axis_label == f"unit of conv_3 · rank correlation of the drops with {by} sensitivity: {rho:+.2f}"
    # without the effects, or without the probe, the label just names the layer
    table = {"amp": amp, "phase": phase}
    assert bars_axis_label("conv_3", table, None) == bars_axis_label("conv_3", None, drop) == "unit of conv_3"


def test_ranking_by_ablation_compares_sensitivity_with_importance(sessions):
    """"Ranked by: ablation": top-k and the curves follow each unit's own ablation drop (on the
    validation block; the curve measures the test block), and the curves' legend speaks of
    importance, not sensitivity."""
    s, ps = sessions()
    ps.curves_by = "ablation"
    with pytest.raises(UnitScopeError, match="Ranking by ablation needs the ablation effects of conv_2"):
        ps.top_units("conv_2", 3)
    s.layer = "conv_2"
    ps.compute_curves("conv_2")  # ranked by ablation: the drops are measured, and the bars get them too
    ps.join()
    assert ps.effects_layer == "conv_2" and ps.effects is not None and len(ps.top_units("conv_2", 3)) == 3
    s, ps, view = _view_with_effects(sessions, "conv_3")
    ps.curves_by = "ablation"
    drop = np.nan_to_num(ps.effects.sel(unit=[f"conv_3/{i}" for i in range(100)]).values)
    top = sorted(int(i) for i in np.argsort(-drop, kind="stable")[:3])
    assert sorted(ps.top_units("conv_3", 3)) == top
    assert ps.prune_top("conv_3", 3) and ps.join()
    assert ps.pruned["conv_3"] == top and "most important (ablation)" in ps.last_change
    ps.reset()
    ps.compute_curves("conv_3")
    ps.join()
    curves = ps.curves
    assert curves.attrs["ranked_by"] == "ablation" and curves.attrs["ranked_on_block"] == "valid"
    first = float(curves["fraction"].values[1])  # the first cut (10%): the most important units go first
    ev = ps.shared.fork()
    most = [int(i) for i in np.argsort(-drop, kind="stable")[:10]]
    assert float(curves["metric"].sel(order="most", fraction=first)) == pytest.approx(
        ev.evaluate(ev.new_masks().prune("conv_3", most)), abs=1e-9)
    assert view.curve_fig.title.text.startswith("Pruning curves of conv_3\n(ranked by ablation")
    assert [view.curve_items[o].label.value for o in ("most", "least")] == ["most important first",
                                                                             "least important first"]
    ps.curves_by = "either"
    ps.compute_curves("conv_3")
    ps.join()
    assert view.curve_items["most"].label.value == "most sensitive first"


def test_output_layer_disables_pruning(sessions):
    s, ps = sessions()
    s.view = "prune"
    view = PruneView(session=s)
    s.layer = "conv_classifier"
    assert view.toggle_btn.disabled and view.layer.value == "" and "conv_classifier (the output)" in view.layer.options
    s.layer = "conv_3"  # back to a hidden layer: the note goes
    assert view.layer.value == "conv_3" and list(view.layer.options) == ["conv_time_spat", "conv_2", "conv_3", "conv_4"]


def test_effect_bars_and_curve_plot_show_the_data(tiny_probe):
    import xarray as xr

    drop = xr.DataArray([0.1, -0.02, 0.3], dims="unit", coords={
        "unit": ["conv_2/0", "conv_2/1", "conv_2/2"], "layer": ("unit", ["conv_2"] * 3), "index": ("unit", [0, 1, 2])})
    bars = effect_bars(drop, "conv_2", [2], 3)
    np.testing.assert_allclose(bars.dimension_values("drop"), [0.1, -0.02, 0.3])
    assert list(bars.dimension_values("state")) == ["kept", "kept", "pruned"]
    q = np.linspace(0, 1, 3)
    curves = xr.Dataset({"metric": (("order", "fraction"), [[0.9, 0.3, 0.0], [0.9, 0.8, 0.0], [0.9, 0.6, 0.0]]),
                         "random_lo": ("fraction", [0.9, 0.5, 0.0]), "random_hi": ("fraction", [0.9, 0.7, 0.0])},
                        coords={"order": ["most", "least", "random"], "fraction": q},
                        attrs={"layers": "conv_2", "by": "either", "n_repeats": 3})
    plot = curve_plot(curves, current=(0.5, 0.4))
    assert "conv_2" in plot.opts.get().kwargs["title"]
    curves_drawn = [el for el in plot if el.__class__.__name__ == "Curve"]
    np.testing.assert_allclose(curves_drawn[0].dimension_values("metric"), [0.9, 0.3, 0.0])
    assert len(curve_plot(None)) == 2


# ---- the work queue ----------------------------------------------------------------------------
def test_queue_limits_running_jobs_and_reports_positions():
    q = WorkQueue(1)
    release = threading.Event()
    entered = threading.Event()
    positions = []

    def first():
        with q.slot(kind="long", label="a"):
            entered.set()
            release.wait(10)

    t1 = threading.Thread(target=first)
    t1.start()
    assert entered.wait(10)
    got = threading.Event()

    def second():
        with q.slot(kind="interactive", label="b", on_position=positions.append):
            got.set()

    t2 = threading.Thread(target=second)
    t2.start()
    while not positions:  # the waiting request has been numbered
        t2.join(0.01)
    assert positions[0] == 1 and not got.is_set() and q.n_running == 1 and q.n_waiting == 1
    release.set()
    t1.join(10)
    t2.join(10)
    assert got.is_set() and positions[-1] == 0 and q.n_running == 0


def test_queue_serves_clicks_before_long_jobs_and_cancels_waiters():
    q = WorkQueue(2, max_long=1)
    hold = threading.Event()
    started = threading.Event()

    def long_job():
        with q.slot(kind="long", label="finetune"):
            started.set()
            hold.wait(10)

    t = threading.Thread(target=long_job)
    t.start()
    assert started.wait(10)
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):  # a second long job must wait (max_long=1), and is withdrawn
        with q.slot(kind="long", label="curves", stop=stop):
            pass
    with q.slot(kind="interactive", label="click"):  # the free core serves a click at once
        assert q.n_running == 2
    hold.set()
    t.join(10)
    assert q.snapshot() == {"running": [], "waiting": []}


@pytest.mark.parametrize("with_decoder", [False, True])
def test_part2_views_render_to_bokeh_models(tmp_path, monkeypatch, tiny_decoder, tiny_probe, with_decoder):
    """The views build their Bokeh models before a decoder exists (app start) and after."""
    from bokeh.document import Document

    from dashboard.views import ExportView, KernelsView

    monkeypatch.setenv("UNITSCOPE_DATA_ROOT", str(tmp_path))
    s = Session()
    try:
        if with_decoder:
            s.set_decoder(tiny_decoder, probe=tiny_probe)
            s.layer = "conv_4"
        for cls in (PruneView, KernelsView, ExportView):
            model = pn.panel(cls(session=s)).get_root(Document())
            assert model is not None
    finally:
        s.close()


def test_a_hidden_prune_view_catches_up_when_shown(sessions):
    s, ps = sessions()
    s.view = "overview"
    view = PruneView(session=s)
    before = view.metric.object
    ps.toggle("conv_4", 2)
    ps.join()
    assert view.metric.object == before  # no work for widgets nobody sees
    s.view = "prune"
    assert "last change: pruned conv_4/2" in view.metric.object and fmt_metric(ps.metric) in view.metric.object


def test_queue_slot_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("UNITSCOPE_WORK_SLOTS", "4")
    monkeypatch.delenv("UNITSCOPE_INTERACTIVE_SLOTS", raising=False)
    q = WorkQueue()
    assert (q.n_slots, q.max_interactive, q.max_long) == (4, 3, 3)
    monkeypatch.setenv("UNITSCOPE_INTERACTIVE_SLOTS", "4")
    assert WorkQueue().max_interactive == 4
    assert WorkQueue(max_interactive=1).max_interactive == 1  # an explicit argument wins
    monkeypatch.setenv("UNITSCOPE_INTERACTIVE_SLOTS", "many")
    with pytest.raises(UnitScopeError, match="UNITSCOPE_INTERACTIVE_SLOTS"):
        WorkQueue()


def test_the_card_says_when_the_unpruned_decoder_is_at_chance(tmp_path, monkeypatch, tiny_ws):
    """The untrained decoder and its twin with the output's sign flipped (test r of opposite
    signs): the card of the one at or below r 0 says that pruning it means nothing, the other's
    does not; the session's status says the same beside the metric."""
    from dashboard.decoder import Decoder

    monkeypatch.setenv("UNITSCOPE_DATA_ROOT", str(tmp_path))
    flipped_ws = copy.deepcopy(tiny_ws)
    with torch.no_grad():
        for p in flipped_ws.model.final_layer.conv_classifier.parameters():
            p.neg_()
    decoders = [Decoder(tiny_ws, label="tiny"), Decoder(flipped_ws, label="flipped")]
    r = [d.predictions()["metric"] for d in decoders]
    assert r[0] == pytest.approx(-r[1], abs=1e-5) and r[0] != pytest.approx(0.0, abs=1e-3)
    for dec, metric in zip(decoders, r):
        s = _session(dec, None)
        try:
            ps = prune_state_of(s)
            ps.activate()
            assert ps.join() and ps.ready
            html = metric_html(ps)
            assert ("us-prune-chance" in html) == (metric <= 0), (metric, html)
            assert ("at or below chance, r = 0" in s.status) == (metric <= 0)
            if metric <= 0:
                assert "The unpruned decoder's test Pearson r is at or below chance, r = 0: what pruning" in html
        finally:
            s.close()
