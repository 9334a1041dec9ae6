"""Kernels view and per-session kernel state: fitted once, refit after prunes, isolated."""
from __future__ import annotations

import copy
import logging

import numpy as np
import panel as pn
import pytest

from core.deconv.apply import EventDeconvolution
from core.pruning import MaskSet
from dashboard.kernel_state import output_series, shared_kernels
from dashboard.state import Session
from dashboard.views.kernels import KernelsView, codes_plot, codes_r, kernel_plot, kernel_state_of, signal_label


@pytest.fixture()
def make_session(tmp_path, monkeypatch, tiny_decoder):
    monkeypatch.setenv("UNITSCOPE_DATA_ROOT", str(tmp_path))
    made = []

    def make():
        s = Session()
        s.set_decoder(tiny_decoder)
        s.param.update(layer="conv_3", unit=4)
        ks = kernel_state_of(s)
        ks.prune.join()
        made.append(s)
        return s, ks

    yield make
    for s in made:
        s.close()


@pytest.fixture(scope="module")
def fitted(tiny_decoder):
    """The unpruned kernels, fitted once for the module (the same the app shares)."""
    sk = shared_kernels(tiny_decoder)
    return sk.initial("output"), sk.initial("unit:conv_3:4")


def test_kernels_start_from_the_unpruned_fits_and_refit_after_a_prune(make_session, fitted, tiny_decoder, caplog):
    s, ks = make_session()
    with caplog.at_level(logging.DEBUG, logger="dashboard.kernel_state"):
        ks.start()
        ks.join()
    # each step of the refit loop is in the server log at DEBUG (what a stuck refit is read from)
    steps = [r.getMessage() for r in caplog.records if r.name == "dashboard.kernel_state"]
    assert steps[0] == f"kernels of {s.name}: refit started"
    assert steps[-1].startswith(f"kernels of {s.name}: mask v{ks.fitted_version}, unit:conv_3:4 published (")
    assert ks.state == "ready" and ks.unit_signal == "unit:conv_3:4"
    assert ks.output is fitted[0] and ks.unit is fitted[1]
    assert ks.output["kernels"].dims == ("kernel", "lag") and ks.output["codes"].dims == ("event", "kernel")
    v0 = ks.fitted_version
    ks.prune.prune("conv_2", [0, 1, 2, 3])
    ks.prune.join()
    ks.join()
    assert ks.fitted_version == ks.prune.mask_version > v0
    assert ks.output.attrs["refit"] == "warm_start" and ks.output_previous is fitted[0]
    assert ks.unit.attrs["refit"] == "warm_start"  # conv_2 feeds conv_3
    # the refit is DUNL warm-started on the pruned decoder's output: the series the app fits is
    # the masked model's own forward pass over the block (where the test windows predict)
    engine = EventDeconvolution(copy.deepcopy(tiny_decoder.ws.model).eval(), tiny_decoder.ws.recording,
                                block="test", blocks=tiny_decoder.ws.blocks)
    masks = MaskSet.for_model(tiny_decoder.ws.model).prune("conv_2", [0, 1, 2, 3])
    truth = engine.signal("output", masks=masks).values
    series = output_series(tiny_decoder, ks.prune.predictions())
    ok = np.isfinite(series)
    assert ok.mean() > 0.5
    np.testing.assert_allclose(series[ok], truth[ok], atol=1e-4)
    expected = engine.refit_values(fitted[0], series, masks=masks)
    np.testing.assert_allclose(ks.output["kernels"].values, expected["kernels"].values, atol=1e-5)
    assert not np.allclose(ks.output["kernels"].values, fitted[0]["kernels"].values)
    assert not any(m._forward_hooks for m in tiny_decoder.ws.model.modules())


def test_a_prune_while_the_kernels_are_being_published_is_refitted(make_session, fitted):
    """A mask change that arrives while the kernel worker publishes its result (a user
    clicking Undo the moment the kernel is drawn) gets its own refit, not a dead end."""
    s, ks = make_session()
    ks.start()
    ks.join()
    edits = []

    def edit_once(event):  # runs in the worker thread, inside its publishing step
        if not edits and event.new == ks.prune.mask_version and ks.prune.mask_version == 1:
            edits.append(ks.prune.toggle("conv_3", 2))

    ks.param.watch(edit_once, "fitted_version")
    ks.prune.toggle("conv_3", 1)
    for _ in range(3):  # the edit above starts a new measurement and refit: wait for all of them
        ks.prune.join()
        ks.join()
    assert edits == [True]
    assert ks.prune.mask_version == 2 and ks.prune.pruned == {"conv_3": [1, 2]}
    assert ks.fitted_version == 2 and ks.state == "ready"
    assert not any("already running" in text for _, text in s.alerts)


def test_a_unit_the_mask_cannot_reach_keeps_its_kernel(make_session, fitted):
    s, ks = make_session()
    ks.start()
    ks.join()
    ks.prune.prune("conv_4", [7])  # downstream of conv_3: its activation is unchanged
    ks.prune.join()
    ks.join()
    assert ks.unit.attrs["refit"] == "unaffected"
    np.testing.assert_array_equal(ks.unit["kernels"].values, fitted[1]["kernels"].values)
    assert ks.output.attrs["refit"] == "warm_start"


def test_undo_to_no_mask_shows_the_unpruned_kernels_again(make_session, fitted):
    s, ks = make_session()
    ks.start()
    ks.join()
    ks.prune.toggle("conv_3", 1)
    ks.prune.join()
    ks.join()
    assert ks.output is not fitted[0]
    ks.prune.undo()
    ks.prune.join()
    ks.join()
    assert ks.output is fitted[0] and ks.output_previous is not None


def test_sessions_refit_their_own_masks(make_session, fitted):
    a, ka = make_session()
    b, kb = make_session()
    ka.start()
    kb.start()
    ka.join()
    kb.join()
    ka.prune.prune("conv_3", list(range(20)))
    ka.prune.join()
    ka.join()
    kb.join()
    assert ka.output.attrs["refit"] == "warm_start"
    assert kb.output is fitted[0] and kb.fitted_version == kb.prune.mask_version


def test_selecting_another_unit_fits_its_kernel(make_session, fitted):
    s, ks = make_session()
    ks.start()
    ks.join()
    s.unit = 5
    ks.join()
    assert ks.unit_signal == "unit:conv_3:5" and ks.unit.attrs["signal"] == "unit:conv_3:5"
    assert ks.unit_previous is None  # no faint kernel of another unit


def test_kernels_view_renders_and_starts_when_shown(make_session):
    s, ks = make_session()
    view = KernelsView(session=s)
    assert isinstance(view.__panel__(), pn.Column) and not ks.tracking
    assert "Fit kernels" in view.status.object
    s.view = "kernels"  # showing the view starts the fits
    assert ks.tracking
    ks.join()
    ks.prune.join()  # (showing the view also prepares the pruning evaluator: the card's metric)
    assert ks.state == "ready" and not view.fit_btn.visible
    plot = view._kernel("output", view.shown)
    assert plot.opts.get().kwargs["title"].startswith(f"Decoder output kernel:\n[mask v{ks.fitted_version}: 0 pruned]")
    assert "Kernels fitted for the current mask" in view.status.object
    # pruning from the Kernels view refits the kernels shown there
    assert view.toggle_btn.label == "Prune / restore conv_3/4" and "conv_3/4: in use" in view.metric.object
    view.toggle_btn.clicks += 1
    ks.prune.join()
    ks.join()
    assert ks.prune.pruned == {"conv_3": [4]} and view.toggle_btn.label == "Prune / restore conv_3/4"
    assert "conv_3/4: pruned" in view.metric.object
    assert ks.fitted_version == ks.prune.mask_version and "us-metric-after" in view.metric.object
    view._show()  # (no document: drawn at once)
    assert _title(view, "unit").endswith(f"unaffected, R² {ks.unit.attrs['r2']:.2f}\n(the unit is pruned after it is read)")
    view.toggle_btn.clicks += 1  # restored; another block's unit pruned downstream of conv_3
    ks.prune.prune("conv_4", [1])
    ks.prune.join()
    ks.join()
    view._show()
    assert _title(view, "unit").endswith("unaffected, R² " f"{ks.unit.attrs['r2']:.2f}\n(no unit pruned upstream of it)")


def test_the_kernels_view_chooses_its_unit_with_the_shared_selection(make_session, fitted):
    s, ks = make_session()
    view = KernelsView(session=s)
    view.__panel__()
    picker = view.picker
    assert "conv_classifier" not in picker.layer.options and picker.layer.options[0] == "conv_time_spat"
    assert (picker.layer.value, picker.unit.value) == ("conv_3", 4)
    s.view = "kernels"
    ks.join()
    picker.layer.value = "conv_2"  # chosen here: every view follows, and the unit's kernel refits
    picker.unit.value = 7
    assert (s.layer, s.unit) == ("conv_2", 7)
    ks.join()
    assert ks.unit_signal == "unit:conv_2:7" and view.toggle_btn.label == "Prune / restore conv_2/7"
    s.unit = 3  # chosen elsewhere: the widgets follow without writing back
    assert picker.unit.value == 3
    s.layer = "conv_classifier"  # the output (shown above): no hidden layer is selected here
    assert picker.layer.value == "" and view.toggle_btn.disabled  # the Select says the output is selected
    assert list(picker.layer.options)[0] == "conv_classifier (the output)"
    view._shown = {**view._shown, "unit": None, "unit_previous": None, "unit_signal": "unit:conv_2:7"}
    assert _title(view, "unit") == "Decoder output: not fitted yet"  # nothing shown: the title follows the selection


def _title(view, which="output"):
    return view._kernel(which, view.shown).opts.get().kwargs["title"]


def test_served_plots_take_new_kernels_on_the_documents_loop_only(make_session, served_doc):
    """A result the kernel worker publishes is drawn on the document's next tick, never from
    the worker's thread (where it could race the tab's plots being created)."""
    s, ks = make_session()
    view = KernelsView(session=s)
    view._doc = doc = served_doc
    shown = view.shown
    ks.start()
    ks.join()
    assert ks.state == "ready" and ks.output is not None
    assert view.shown == shown and _title(view).endswith("not fitted yet")  # nothing drawn off the loop
    assert doc.ticks
    while doc.ticks:
        doc.ticks.pop(0)()
    assert view.shown == shown + 1  # several published fields, one redraw
    assert _title(view).startswith(f"Decoder output kernel:\n[mask v{ks.fitted_version}: 0 pruned]")
    assert _title(view, "unit").startswith("Unit conv_3/4 kernel")


def test_the_unit_plots_are_titled_by_the_selection_until_fitted(make_session, monkeypatch):
    s, ks = make_session()
    monkeypatch.setattr(ks, "start", lambda: None)  # no fit: the titles come from the selection only
    view = KernelsView(session=s)
    assert _title(view, "unit") == "Unit conv_3/4: not fitted yet"
    shown = view.shown
    s.param.update(layer="conv_2", unit=5)  # chosen in another view (hidden here: nothing redrawn)
    assert view.shown == shown
    s.view = "kernels"  # shown: the plots follow the selection
    assert view.shown > shown and _title(view, "unit") == "Unit conv_2/5: not fitted yet"
    shown = view.shown
    s.unit = 6
    assert view.shown > shown and _title(view, "unit") == "Unit conv_2/6: not fitted yet"


def test_a_decoder_of_trials_shows_why_there_are_no_kernels(make_session, tiny_decoder, monkeypatch):
    """No dead end: a classification decoder hides the empty plots and the Fit button and
    says what kernels need; the demo's decoder brings them back."""
    s, ks = make_session()
    view = KernelsView(session=s)
    view.__panel__()
    assert view.plots.visible and not view.unavailable.visible and view.fit_btn.visible
    monkeypatch.setattr(type(tiny_decoder), "task", property(lambda self: "classification"))
    s.decoder_version += 1  # as opening another decoder announces it
    assert not view.plots.visible and view.unavailable.visible and not view.fit_btn.visible
    assert "classifies trials" in view.unavailable.object and "--target CHANNEL" in view.unavailable.object
    s.view = "kernels"
    assert not ks.tracking and "continuous target" in view.status.object
    monkeypatch.undo()
    s.decoder_version += 1
    assert view.plots.visible and not view.unavailable.visible


def test_a_recording_without_events_shows_why_there_are_no_kernels(make_session, tiny_decoder, monkeypatch):
    """A decoder of a continuous target whose recording has no events: nothing to lock kernels
    to. The view says so in place of four empty plots, and showing it raises no alert (every
    visit to the view put a red alert on the page)."""
    from dashboard.kernel_state import NO_EVENTS

    s, ks = make_session()
    view = KernelsView(session=s)
    view.__panel__()
    rec = tiny_decoder.ws.recording
    monkeypatch.setattr(rec, "events", type(rec.events)(onset=[], type=[], value=[]))
    s.decoder_version += 1
    assert not view.plots.visible and view.unavailable.visible and not view.fit_btn.visible
    assert "no events to lock kernels to" in view.unavailable.object
    n_alerts = len(s.alerts)
    s.view = "kernels"
    assert not ks.tracking and ks.message == NO_EVENTS and len(s.alerts) == n_alerts
    monkeypatch.undo()
    s.decoder_version += 1
    assert view.plots.visible and not view.unavailable.visible


def test_the_input_channels_own_kernels(make_session, tiny_decoder, monkeypatch):
    """A channel's band envelope, DUNL-deconvolved on the same events: the demo's G03 (high
    gamma) first, in its role's band; its kernel rises after the movement onset and explains
    more of the envelope than a noise channel's; offered for decoders of trials too."""
    from dashboard.kernel_state import SharedKernels, shared_kernels
    from dashboard.views.kernels import channel_bands

    s, ks = make_session()
    view = KernelsView(session=s)
    view.__panel__()
    assert view.ch_select.value == "G03" and view.band_select.value == "60-90"
    bands = channel_bands(tiny_decoder)
    assert list(bands)[:3] == ["high gamma role, 60-90 Hz", "beta role, 15-25 Hz", "low freq role, 1-4 Hz"]
    assert "delta, 1-4 Hz" not in bands and bands["alpha, 7-13 Hz"] == "7-13"  # one entry per band, the probe's
    view.fit_channel()
    assert s._jobs["channel kernels"].join(120)
    ds = view.ks.channel
    assert ds is shared_kernels(tiny_decoder).initial("channel:G03:60-90")  # cached per decoder
    lag = ds["lag"].values[int(np.argmax(ds["kernels"].values[0]))]
    assert 0 < lag < 1.0  # the envelope rises after the onset (speed peaks about 0.4 s later)
    noise = shared_kernels(tiny_decoder).initial("channel:G01:60-90")
    assert ds.attrs["r2"] > noise.attrs["r2"]
    assert _plot_title(view.ch_kernel).startswith("G03, 60-90 Hz envelope kernel")
    assert "R²" in view.ch_status.object and not view.ch_btn.disabled
    # a decoder of trials: output and unit kernels refused, the input's own allowed
    monkeypatch.setattr(type(tiny_decoder.ws), "task", property(lambda self: "classification"), raising=False)
    shared = SharedKernels(tiny_decoder)
    with pytest.raises(Exception, match="continuous target"):
        shared.engine("output")
    assert shared.engine("channel:G03:60-90") is not None
    rec = tiny_decoder.ws.recording  # a recording without events: nothing to lock kernels to, said
    monkeypatch.setattr(rec, "events", type(rec.events)(onset=[], type=[], value=[]))
    s.decoder_version += 1
    assert view.ch_btn.disabled and "no events" in view.ch_status.object


def _plot_title(pane):
    return pane.object.opts.get().kwargs["title"]


def test_without_a_dense_decoder_the_messages_are_clear(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from core._validation import UnitScopeError
    from dashboard.kernel_state import SharedKernels

    monkeypatch.setenv("UNITSCOPE_DATA_ROOT", str(tmp_path))
    s = Session()
    ks = kernel_state_of(s)
    ks.start()
    assert "No decoder yet" in ks.message and not ks.tracking
    s.close()
    stub = SimpleNamespace(ws=SimpleNamespace(task="classification"))
    with pytest.raises(UnitScopeError, match="continuous target"):
        SharedKernels(stub).engine()


def test_plot_helpers_draw_previous_faintly_and_report_r():
    import xarray as xr

    lag = np.linspace(-0.5, 1.5, 10)
    value = np.array([0.1, 0.2, 0.3, 0.4])
    cur = xr.Dataset({"kernels": (("kernel", "lag"), np.sin(lag)[None]),
                      "codes": (("event", "kernel"), (2 * value)[:, None])},
                     coords={"kernel": ["movement_onset"], "lag": lag, "event": np.arange(4), "value": ("event", value)},
                     attrs={"r2": 0.8, "refit": "warm_start"})
    prev = cur.copy()
    assert codes_r(cur, "movement_onset") == pytest.approx(1.0)
    k = kernel_plot(cur, prev, title="Decoder output", tag="mask v2: 1 pruned")
    curves = [el for el in k if type(el).__name__ == "Curve"]
    assert len(curves) == 2 and curves[0].opts.get().kwargs["alpha"] == 0.3
    assert k.opts.get().kwargs["title"] == "Decoder output kernel:\n[mask v2: 1 pruned] refit, R² 0.80"
    c = codes_plot(cur, None, title="Unit conv_3/4", value_label="peak speed")
    assert c.opts.get().kwargs["title"] == "Unit conv_3/4 codes\nvs peak speed: r = 1.00"
    # events whose values do not vary (a file's annotations carry their duration): codes over the session
    same = cur.assign_coords(value=("event", np.full(4, 0.5)), onset=("event", [3.0, 9.0, 14.0, 20.0]))
    c = codes_plot(same, None, title="Unit conv_3/4", value_label="event value")
    assert c.opts.get().kwargs["title"] == "Unit conv_3/4 codes\nover time (one value per event type)"
    scatter = [el for el in c if type(el).__name__ == "Scatter"][0]
    assert scatter.kdims[0].label == "event onset (s)" and list(scatter.dimension_values(0)) == [3.0, 9.0, 14.0, 20.0]
    # several kernels: each named with its r, or said to have none (its events share one value);
    # the values of T0's events differ from T1's, but no code of a kernel meets another's events
    two = xr.Dataset({"kernels": (("kernel", "lag"), np.sin(lag)[None].repeat(2, 0)),
                      "codes": (("event", "kernel"), [[1.0, np.nan], [2.0, np.nan], [3.0, np.nan],
                                                      [np.nan, 1.0], [np.nan, 4.0], [np.nan, 2.0]])},
                     coords={"kernel": ["T0", "T1"], "lag": lag, "event": np.arange(6),
                             "type": ("event", ["T0"] * 3 + ["T1"] * 3),
                             "value": ("event", [0.1, 0.2, 0.3, 5.0, 5.0, 5.0]), "onset": ("event", np.arange(6.0))},
                     attrs={"r2": 0.5})
    c = codes_plot(two, None, title="Channel C3", value_label="event value")
    assert c.opts.get().kwargs["title"] == "Channel C3 codes\nvs event value:\nT0: r = 1.00, T1: one value"
    c = codes_plot(two.assign_coords(value=("event", [0.1, 0.1, 0.1, 5.0, 5.0, 5.0])), None, title="Channel C3")
    assert c.opts.get().kwargs["title"] == "Channel C3 codes\nover time (one value per event type)"
    assert signal_label("unit:conv_3:4") == "unit conv_3/4" and signal_label("output") == "decoder output"
    assert signal_label("channel:G03:60-90") == "channel G03, 60-90 Hz envelope"
    assert signal_label("channel:C3:beta") == "channel C3, beta envelope"
    assert "not fitted yet" in kernel_plot(None, title="X").opts.get().kwargs["title"]


def test_many_kernels_come_in_natural_order_with_the_legend_beside():
    """Twelve trigger codes (BCI2000's P300 speller): kernels listed 1, 2, ... 12 (they came as
    1, 10, 11, 12, 2), and their legend beside the plot, where inside it covered the curves; a
    few keep it in the corner, and one has none."""
    import xarray as xr

    lag = np.linspace(-0.5, 1.5, 10)
    names = [str(k) for k in sorted(range(1, 13), key=str)]  # the order np.unique gives: 1, 10, 11, 12, 2, ...
    assert names[:5] == ["1", "10", "11", "12", "2"]
    many = xr.Dataset({"kernels": (("kernel", "lag"), np.ones((12, 10))),
                       "codes": (("event", "kernel"), np.ones((4, 12)))},
                      coords={"kernel": names, "lag": lag, "event": np.arange(4),
                              "value": ("event", [0.1, 0.2, 0.3, 0.4])}, attrs={"r2": 0.5})
    for plot in (kernel_plot(many, title="Decoder output"), codes_plot(many, title="Decoder output")):
        labels = [el.label for el in plot if type(el).__name__ in ("Curve", "Scatter")]
        assert labels == [str(k) for k in range(1, 13)]
        assert plot.opts.get().kwargs["legend_position"] == "right"
    one = many.isel(kernel=[0])  # the demo's movement onsets: no legend over the kernel's rise
    assert kernel_plot(one, title="Decoder output").opts.get().kwargs["show_legend"] is False
    three = many.isel(kernel=[0, 1, 2])
    opts = codes_plot(three, title="Decoder output").opts.get().kwargs  # a few: below the plot, one row
    assert opts["legend_position"] == "bottom" and opts["legend_cols"] == 3


def test_the_output_and_unit_plots_keep_their_own_axes(make_session):
    """The output's and the unit's codes live on different scales: one shared (linked) y range
    hid the output's largest codes behind the unit's range."""
    from bokeh.models import Plot

    s, ks = make_session()
    s.view = "kernels"
    view = KernelsView(session=s)
    ks.join()
    root = view.__panel__().get_root()
    plots = [p for p in root.select({"type": Plot}) if p.title is not None and " codes" in (p.title.text or "")]
    assert len(plots) == 3  # the output's, the unit's and the input channel's
    assert len({id(p.y_range) for p in plots}) == 3


@pytest.fixture(scope="module")
def shallow_decoder():
    """A Shallow decoder of the same 60 s: another architecture, so another number of
    predictions on the test block than the Deep4 of ``tiny_decoder``."""
    from core.training import TrainConfig
    from core.workspace import DataSpec, Workspace
    from dashboard.decoder import Decoder

    return Decoder(Workspace.create(DataSpec(duration=60.0), TrainConfig(model="shallow", max_epochs=1)),
                   label="tiny shallow")


def test_a_new_decoder_after_a_prune_gets_its_own_unpruned_kernels(make_session, fitted, shallow_decoder):
    """A session that pruned, then trained another architecture (lesson steps 3 and 4): the
    layer changes with the decoder, and the refit that change asks for must not use the old
    decoder's mask and predictions (it failed with 'shape mismatch: value array of shape
    (29197,) could not be broadcast to indexing result of shape (29348,)')."""
    s, ks = make_session()
    ks.start()
    ks.join()
    ks.prune.prune("conv_2", [0, 1, 2, 3])
    ks.prune.join()
    ks.join()
    assert ks.output.attrs["refit"] == "warm_start"
    s.set_decoder(shallow_decoder)
    assert s.layer != "conv_3"  # Shallow has no conv_3: the selection moved with the decoder
    ks.prune.join()
    ks.join()
    assert ks.state == "ready", ks.message
    assert ks.prune.masks().n_pruned == 0
    sk = shared_kernels(shallow_decoder)
    assert ks.output is sk.fits["output"] and ks.unit is sk.fits[ks.selected_signal()]
    assert ks.output_previous is None and not s.alerts


def test_a_decoder_changed_during_a_fit_gets_its_kernels(make_session, fitted, shallow_decoder, monkeypatch):
    """The decoder changes while the kernel worker fits the old one's: the new decoder's
    fit is asked for while the worker is busy, so the worker must take it up (it used to
    drop its results and end, leaving the new decoder's kernels never fitted)."""
    import threading

    from dashboard.kernel_state import SharedKernels

    s, ks = make_session()
    started, go = threading.Event(), threading.Event()
    initial = SharedKernels.initial

    def held(self, signal, **kw):
        if self.decoder is not shallow_decoder and not go.is_set():
            started.set()
            assert go.wait(60)
        return initial(self, signal, **kw)

    monkeypatch.setattr(SharedKernels, "initial", held)
    ks.start()
    assert started.wait(60)
    s.set_decoder(shallow_decoder)  # start() for the new decoder finds the worker busy
    go.set()
    ks.join()
    ks.prune.join()
    assert ks.state == "ready", (ks.state, ks.message)
    assert ks.output is shared_kernels(shallow_decoder).fits["output"]
    assert ks.unit_signal == ks.selected_signal() and ks.unit_signal.startswith(f"unit:{s.layer}:")
