"""Prune view jobs and exports as a class met them (audit s28): a second "Compute" while one
runs, Stop, a fine-tune whose mask changed while it ran, downloads of nothing, and the export's
legend placement. Without a browser: state and view objects, worker threads held on events.
"""
from __future__ import annotations

import io
import threading

import pytest

from dashboard.prune_state import shared_pruning
from dashboard.views.export import Download, ExportView
from dashboard.views.prune import RECOVERY_MIN_DROP, PruneView, finetune_html

WAIT = 60  # s: the most a held worker takes to reach its gate


def _hold(monkeypatch, shared, name):
    """Replace ``shared.<name>`` (curves or ablation) by one that reports 40 %, then waits for
    ``gate`` (then computes for real) or for its stop event (then returns as a cancelled
    computation does). Returns (started, gate)."""
    real = getattr(shared, name)
    started, gate = threading.Event(), threading.Event()

    def held(layer, *args, stop=None, on_progress=None, **kw):
        on_progress({"fraction": 0.4})
        started.set()
        while not gate.wait(0.02):
            if stop is not None and stop.is_set():
                return None
        return real(layer, *args, stop=stop, on_progress=on_progress, **kw)

    monkeypatch.setattr(shared, name, held)
    return started, gate


def _view(s, layer):
    s.view = "prune"
    view = PruneView(session=s)
    view.__panel__()
    s.layer = layer
    return view


# ---- 1. a second Compute while one runs: refused with its reason, never lost; Stop ------------------
def test_a_second_curves_request_while_one_runs_is_refused_with_its_reason(sessions, tiny_decoder, monkeypatch):
    s, ps = sessions()
    view = _view(s, "conv_3")
    started, gate = _hold(monkeypatch, shared_pruning(tiny_decoder), "curves")
    view.curves_btn.clicks += 1
    assert started.wait(WAIT)
    # while conv_3's curves compute, the button waits for them and the page says why
    assert view.curves_btn.disabled
    assert "Computing the pruning curves of conv_3 (40%)" in view.analyses_note.object
    assert view.curves_stop.visible and not view.curves_stop.disabled
    assert view.curve_fig.title.text.startswith("Pruning curves of conv_3: computing")
    s.layer = "conv_time_spat"
    assert view.curves_btn.disabled
    assert "those of conv_3 are being computed first" in view.curve_fig.title.text
    # a request that reaches the state anyway (another tab of the same session, a script) is
    # refused aloud, never dropped without a word
    n_alerts = len(s.alerts)
    assert ps.compute_curves("conv_time_spat") is False
    assert len(s.alerts) == n_alerts + 1
    assert "pruning curves of conv_3 are being computed" in s.alerts[-1][1]
    gate.set()
    assert ps.join()
    assert ps.curves_layer == "conv_3" and ps.curves is not None and ps.curves_running == ""
    assert not view.curves_btn.disabled and not view.curves_stop.visible and view.analyses_note.object == ""
    assert "not computed yet\n(Compute pruning curves" in view.curve_fig.title.text  # conv_time_spat shown
    view.curves_btn.clicks += 1  # now it computes conv_time_spat's
    assert ps.join()
    assert ps.curves_layer == "conv_time_spat" and ps.curves is not None
    assert view.curve_fig.title.text.startswith("Pruning curves of conv_time_spat")


def test_a_second_effects_request_while_one_runs_is_refused_with_its_reason(sessions, tiny_decoder, monkeypatch):
    s, ps = sessions()
    shared = shared_pruning(tiny_decoder)
    for layer in ("conv_2", "conv_time_spat"):  # computed by this test, whatever other tests left
        monkeypatch.delitem(shared.cache, ("ablation", layer), raising=False)
    view = _view(s, "conv_2")
    started, gate = _hold(monkeypatch, shared, "ablation")
    view.effects_btn.clicks += 1
    assert started.wait(WAIT)
    assert view.effects_btn.disabled and view.effects_stop.visible
    assert "Computing the ablation effects of conv_2" in view.analyses_note.object
    s.layer = "conv_time_spat"
    assert view.effects_btn.disabled
    assert ps.compute_effects("conv_time_spat") is False
    assert "ablation effects of conv_2 are being computed" in s.alerts[-1][1]
    gate.set()
    assert ps.join()
    assert ps.effects_running == "" and not view.effects_btn.disabled
    assert ("ablation", "conv_2") in shared.cache  # computed (shown when conv_2 is shown again)
    view.effects_btn.clicks += 1
    assert ps.join()
    assert ps.effects_layer == "conv_time_spat" and ps.effects is not None


@pytest.mark.parametrize("what", ["curves", "effects"])
def test_stop_cancels_the_curves_and_the_ablation_effects(sessions, tiny_decoder, monkeypatch, what):
    s, ps = sessions()
    shared = shared_pruning(tiny_decoder)
    monkeypatch.delitem(shared.cache, ("ablation", "conv_3"), raising=False)
    view = _view(s, "conv_3")
    started, gate = _hold(monkeypatch, shared, "curves" if what == "curves" else "ablation")
    btn, stop = (view.curves_btn, view.curves_stop) if what == "curves" else (view.effects_btn, view.effects_stop)
    btn.clicks += 1
    assert started.wait(WAIT)
    stop.clicks += 1
    assert ps.join()
    assert not gate.is_set()  # ended by Stop, not by the gate
    kind = "pruning curves" if what == "curves" else "ablation effects"
    assert s.alerts[-1] == ("info", f"Stopped: the {kind} of conv_3 were not computed.")
    assert getattr(ps, what) is None and getattr(ps, f"{what}_running") == ""
    assert getattr(ps, f"{what}_progress") == 0.0
    assert not btn.disabled and not stop.visible and view.analyses_note.object == ""


# ---- 2. a fine-tune's summary names its mask, and says when the mask changed since ---------------------
def test_the_finetune_summary_names_its_mask_and_says_when_it_changed(sessions, monkeypatch):
    import core.pruning

    s, ps = sessions()
    view = _view(s, "conv_3")
    ps.prune("conv_3", [1])
    assert ps.join()
    real = core.pruning.finetune
    started, gate = threading.Event(), threading.Event()

    def held(*args, **kw):
        started.set()
        assert gate.wait(WAIT)
        return real(*args, **kw)

    monkeypatch.setattr(core.pruning, "finetune", held)
    ps.finetune_epochs = 1
    view.ft_btn.clicks += 1
    assert started.wait(WAIT)
    ps.prune("conv_3", list(range(2, 12)))  # pruned while the fine-tune runs: 11 units now
    gate.set()
    assert ps.join()
    assert ps.finetune_state == "done" and ps.finetuned and ps.finetune_result["n_pruned"] == 1
    text = view.ft_text.object
    assert "with <span class='us-ft-mask'>1 unit(s) pruned</span>" in text
    assert "The mask has changed since:</b> these numbers are of the earlier mask (1 unit(s) pruned)" in text
    card = view.metric.object
    assert "11</span> unit(s) pruned · <b>fine-tuned copy</b> (tuned with 1 unit(s) pruned)" in card
    ps.undo()  # back to the fine-tune's own mask: nothing to warn of
    assert ps.join()
    assert "changed since" not in view.ft_text.object and "tuned with" not in view.metric.object
    assert "with <span class='us-ft-mask'>1 unit(s) pruned</span>" in view.ft_text.object


def test_the_recovered_share_is_given_only_for_a_drop_that_means_something(sessions):
    s, ps = sessions()
    view = _view(s, "conv_3")
    base = {"history": [], "n_steps": 40, "seconds": 3.0, "n_pruned": 1, "pruned": {}}
    # the audit's numbers: a 0.0007 drop read as "-331% of the drop recovered"
    ps.param.update(finetune_state="done", finetune_result={**base, "unpruned": 0.9699, "before": 0.9692,
                                                            "after": 0.9670})
    text = view.ft_text.object
    assert "%" not in text and "recovered)" not in text
    assert f"The pruning cost almost nothing (a drop of 0.0007, under {RECOVERY_MIN_DROP})" in text
    ps.finetune_result = {**base, "unpruned": 0.90, "before": 0.60, "after": 0.75}
    assert "(50% of the 0.3000 drop recovered)" in view.ft_text.object
    ps.finetune_result = {**base, "unpruned": 0.90, "before": 0.60, "after": 0.55}
    assert "(it lost a further 0.0500 of the 0.3000 drop)" in view.ft_text.object
    assert finetune_html(ps) == view.ft_text.object


# ---- 3. a download with nothing to download sends no file -------------------------------------------
def test_a_download_callback_returning_nothing_sends_no_file():
    """On the installed Panel: the browser starts a download when ``_transfers`` changes."""
    for nothing in (None, io.BytesIO(b""), io.StringIO("")):
        w = Download(callback=lambda nothing=nothing: nothing, filename="unitscope-curves.nc")
        w._clicks += 1
        assert w._transfers == 0 and w.data is None
    w = Download(callback=lambda: io.BytesIO(b"CDF"), filename="unitscope-curves.nc")
    w._clicks += 1
    assert w._transfers == 1 and w.data.startswith("data:application/octet-stream;base64,")


def test_exports_of_nothing_alert_and_download_nothing(sessions):
    s, ps = sessions(decoder=False)  # nothing computed, nothing to export
    view = ExportView(session=s)
    by_label = {d.label: d for d in view.downloads}
    for label in ("Pruning curves and ablation (netCDF)", "Kernels (netCDF)", "Probe result (netCDF)"):
        n = len(s.alerts)
        by_label[label]._clicks += 1
        assert len(s.alerts) == n + 1 and s.alerts[-1][1].startswith("Export failed: ")
        assert by_label[label]._transfers == 0 and by_label[label].data is None, label
    view.plot.value = "Pruning curves (Prune)"
    view.plot_dl._clicks += 1
    assert view.plot_dl._transfers == 0 and s.alerts[-1][1].startswith("Export failed: ")
    prune = PruneView(session=s)
    prune.mask_out._clicks += 1
    assert prune.mask_out._transfers == 0 and s.alerts[-1][1].startswith("No mask to download")


def test_kernels_of_a_session_that_fitted_none_download_nothing(sessions):
    s, ps = sessions()
    view = ExportView(session=s)
    kernels = next(d for d in view.downloads if d.label == "Kernels (netCDF)")
    kernels._clicks += 1
    assert kernels._transfers == 0 and "No kernels yet" in s.alerts[-1][1]
    probe = next(d for d in view.downloads if d.label == "Probe result (netCDF)")
    probe._clicks += 1  # (what there is downloads as before)
    assert probe._transfers == 1


# ---- 4. the exported "Predicted vs true": its legend below the plot, not beside it -------------------
def test_an_exported_legend_drawn_above_in_the_app_sits_below_the_plot():
    import holoviews as hv
    import holoviews.plotting.mpl  # noqa: F401
    import numpy as np

    from dashboard import export
    from dashboard.views.overview import prediction_plot

    t = np.arange(0, 100, 0.04)
    true = np.abs(np.sin(0.7 * t)) ** 8
    pred = {"task": "regression", "time": t, "true": true, "pred": 0.8 * true, "metric": 0.97,
            "target": "hand_speed"}
    obj = prediction_plot(pred)
    obj = obj[()] if isinstance(obj, hv.DynamicMap) else obj
    plot = hv.renderer("matplotlib").get_plot(export._app_looks(obj))
    ax = plot.handles["axis"]
    leg, axes, xaxis = ax.get_legend().get_window_extent(), ax.get_window_extent(), ax.xaxis.get_tightbbox()
    # below the axis (its tick labels and label), within the plot's width: beside it, it took two
    # thirds of a preview's width
    assert leg.y1 <= xaxis.y0 + 1
    assert axes.x0 - 1 <= leg.x0 and leg.x1 <= axes.x1 + 1
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["true", "predicted"]
