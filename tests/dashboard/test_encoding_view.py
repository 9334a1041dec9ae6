"""Encoding view and its per-session state: shipped result, files, selection, background fit."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import xarray as xr

from dashboard import encoding_state as es_mod
from dashboard.encoding_demo import ENCODING_ASSET, add_example_subjects, write_small
from dashboard.encoding_state import ALL_SUBJECTS, SHIPPED_LABEL, FitPreset, _fraction, encoding_state_of, \
    shipped_result
from dashboard.queue import WorkQueue
from dashboard.state import Session
from dashboard.views.encoding import EncodingView, score_html


@pytest.fixture()
def make_view(tmp_path, monkeypatch):
    monkeypatch.setenv("UNITSCOPE_DATA_ROOT", str(tmp_path))
    made = []

    def make():
        s = Session()
        v = EncodingView(session=s)
        v.__panel__()
        made.append(s)
        return s, v

    yield make
    for s in made:
        s.close()


@pytest.fixture(scope="module")
def tiny_preset():
    """A fit that takes seconds: 2 synthetic subjects, one DRE pass of width 8."""
    from core.encoding import simulate_reading

    class Tiny(FitPreset):
        def load(self, key):
            return simulate_reading(n_subjects=2, n_words=120, n_sensors=6, sfreq=50.0, seed=1)

    return Tiny("tiny synthetic reading", n_epochs=1, hidden=8)


def test_the_shipped_result_is_small_documented_and_valid():
    assert ENCODING_ASSET.stat().st_size < 3e6
    assert (ENCODING_ASSET.parent / "README.md").read_text().count("python -m dashboard.encoding_demo") >= 1
    ds = shipped_result()
    assert {"dre", "trf", "rtrf"} <= set(ds["model"].values) and "loss_increase_map" in ds
    assert ds.attrs["truth_latency_word_length"] < ds.attrs["truth_latency_word_freq"]
    assert shipped_result() is ds  # shared read-only by every session


def test_the_shipped_result_meets_the_synthetic_validation_targets():
    """METHODS 3.9.1 on the shipped fit (6 subjects x 600 words): DRE > RTRF > TRF in
    post-onset mean R, and the DRE's importance of word length and word frequency peaks near
    the latencies where the simulated responses live (the importance maps the view shows
    explain a model that learnt them). Small fits miss these (the tests' own, 3 x 120 words:
    DRE 0.04 < TRF 0.18); the views and the command line then say so (core.cautions.dre_note).
    Not met, and so not asserted: NO-SUB below the DRE (0.286 vs 0.284 when fitted beside it
    at this size, with the simulated subjects' sensor patterns 60% apart)."""
    from core.encoding import peak_latency

    ds = shipped_result()
    score = {str(m): float(ds["score"].sel(model=m)) for m in ds["model"].values}
    assert score["dre"] > score["rtrf"] > score["trf"], score
    for feature in ("word_length", "word_freq"):
        error = abs(peak_latency(ds, feature) - ds.attrs[f"truth_latency_{feature}"])
        assert error <= 0.1, (feature, error)


def test_the_shipped_result_is_what_the_current_encoding_code_computes():
    """The Encoding view shows it as what the engine computes: a change to core/encoding needs
    ``python -m dashboard.encoding_demo`` to remake it."""
    from core.encoding.study import code_version

    assert shipped_result().attrs.get("code_version") == code_version(), (
        "assets/demo-encoding/synthetic-reading.nc was computed by other encoding code: "
        "run python -m dashboard.encoding_demo")


def test_the_tab_draws_the_shipped_result_at_once(make_view):
    s, v = make_view()
    es, ds = v.es, shipped_result()
    assert es.result is ds and es.label == SHIPPED_LABEL and s.alerts == []
    # predicted vs actual: the stored epoch's actual signal and every model's prediction at the channel
    k, ch = es.example, es.channel
    np.testing.assert_allclose(v.pred_srcs["actual"].data["y"], ds["actual"].isel(example=k).sel(channel=ch).values)
    for m in ("dre", "trf", "rtrf"):
        np.testing.assert_allclose(v.pred_srcs[m].data["y"],
                                   ds["predicted"].sel(model=m).isel(example=k).sel(channel=ch).values)
    assert v.pred_fig.title.text.startswith(f"Predicted vs actual:\n{ch}, epoch {int(ds['example'][k])} (")
    end = float(ds["time"][ds.attrs["meg_init"]])  # the given initial state: shaded, and dotted on the maps
    assert v.init_box.right == pytest.approx(end) and v.maps["r"]["init"].location == pytest.approx(end)
    assert "initial brain state given to the models (333 ms)" in v.caption.object
    # the default channel is the one the DRE predicts best after onset
    post = ds["r"].sel(model="dre", time=slice(0, None)).mean(("subject", "time"))
    assert ch == str(post["channel"].values[int(np.argmax(post.values))])
    # r map: mean over subjects, channels on y, time on x; scores of the three models shown
    image = v.maps["r"]["src"].data["image"][0]
    np.testing.assert_allclose(image, ds["r"].sel(model="dre").mean("subject").values.T, rtol=1e-5)
    # hovering a row names its channel (it said "channel #" and the row's number)
    assert v.maps["r"]["names"].args["names"] == [str(c) for c in ds["channel"].values]
    for m in ("dre", "trf", "rtrf"):
        assert f"{float(ds['score'].sel(model=m)):.3f}" in v.scores.object
    # importance: one course per stimulus feature, the selected one bold, the true latencies marked
    feats = ["word_freq", "word_length"]
    assert [f.split(" ")[0] for f in v.imp_src.data["feature"]] == feats
    np.testing.assert_allclose(v.imp_src.data["ys"][feats.index("word_length")],
                               ds["loss_increase_map"].sel(feature="word_length").mean(("subject", "channel")).values,
                               rtol=1e-5)
    assert sorted(v.truth_src.data["x0"]) == [0.15, 0.4]
    assert sorted(v.truth_src.data["text"]) == ["word_freq: true 400 ms", "word_length: true 150 ms"]
    assert v.imp_fig.legend[0] in v.imp_fig.above  # above the courses, not over them
    assert v.imp_src.data["width"][feats.index(es.feature)] == 4.0


def test_switching_channel_feature_subject_and_model_changes_the_plots(make_view):
    s, v = make_view()
    es, ds = v.es, shipped_result()
    before = np.array(v.pred_srcs["dre"].data["y"])
    other = next(c for c in es.channels() if c != es.channel)
    v.channel.value = other  # through the widget, as a click would
    assert es.channel == other and other in v.pred_fig.title.text
    assert not np.allclose(before, v.pred_srcs["dre"].data["y"])
    v.feature.value = "word_length"
    np.testing.assert_allclose(v.maps["imp"]["src"].data["image"][0],
                               ds["loss_increase_map"].sel(feature="word_length").mean("subject").values.T, rtol=1e-5)
    assert v.maps["imp"]["fig"].title.text.startswith("Importance of word_length (all subjects)")
    v.subject.value = "S02"
    np.testing.assert_allclose(v.maps["r"]["src"].data["image"][0],
                               ds["r"].sel(model="dre", subject="S02").values.T, rtol=1e-5)
    v.model.value = "trf"
    assert v.maps["r"]["fig"].title.text.startswith("r of TRF (S02);\npost-onset mean")
    v.example.value = v.example.options[3]
    assert es.example == 3 and v.example.options[3] in v.pred_fig.title.text
    v.at_channel.value = True
    np.testing.assert_allclose(
        v.imp_src.data["ys"][1],
        ds["loss_increase_map"].sel(feature="word_length", subject="S02", channel=other).values, rtol=1e-5)
    assert v.imp_fig.title.text == f"Importance over time\n(S02, {other})\nbold: word_length"
    third = next(c for c in es.channels() if c not in (other, es.channel))
    r_image = v.maps["r"]["src"].data["image"][0]
    v.channel.value = third  # with "at the selected channel", the courses follow the channel ...
    np.testing.assert_allclose(
        v.imp_src.data["ys"][1],
        ds["loss_increase_map"].sel(feature="word_length", subject="S02", channel=third).values, rtol=1e-5)
    assert v.maps["r"]["src"].data["image"][0] is r_image  # ... and the r map, not concerned, is not resent
    v.context.value = True  # the initial state and the subject join the courses
    assert [f.split(" ")[0] for f in v.imp_src.data["feature"]] == list(ds["feature"].values)


def test_bad_files_give_alerts_and_keep_the_result(make_view, tmp_path, monkeypatch):
    (tmp_path / "notes.nc").write_text("not a netCDF file")
    xr.Dataset({"amp_corr": (("unit", "freq"), np.zeros((2, 2)))}).to_netcdf(tmp_path / "probe.nc", engine="h5netcdf")
    s, v = make_view()
    shown = v.es.result
    assert v.file_select.options == ["choose a results file ...", "notes.nc", "probe.nc"]
    assert not v.file_select.disabled and s.alerts == []
    v.file_select.value = "notes.nc"  # choosing a file loads it
    assert s.alerts[-1][1].startswith("Encoding result not loaded: 'notes.nc' could not be read as netCDF")
    assert v.file_select.value == "choose a results file ..."
    v.es.load_file("probe.nc")
    assert "'probe.nc' is not an encoding result: it lacks the variables ['r', 'score']" in s.alerts[-1][1]
    v.es.load_file("../outside.nc")
    assert "lies outside the data root" in s.alerts[-1][1]
    with monkeypatch.context() as m:
        m.setattr(es_mod, "MAX_RESULT_BYTES", 10)
        v.es.load_file("probe.nc")
    assert "'probe.nc' is 0 MB; an encoding result is a few MB" in s.alerts[-1][1]
    assert v.es.result is shown and v.es.label == SHIPPED_LABEL


def test_without_files_the_file_list_explains_itself(make_view):
    s, v = make_view()
    assert v.file_select.disabled and "No .nc files under the data root" in v.file_select.description
    assert v.file_select.options == ["(no .nc files under the data root)"]
    assert "unitscope encode" in v.source_text.object
    assert v.stop_btn.disabled and "no fit is running" in v.stop_btn.description
    assert s.alerts == []


def test_a_results_file_under_the_data_root_is_shown(make_view, tmp_path):
    ds = shipped_result()
    small = ds.isel(channel=slice(0, 5), subject=[0, 2]).drop_vars("example_subject")
    small["score"] = small["score"] * 0 + [0.5, 0.25, 0.125]
    (tmp_path / "runs").mkdir()
    write_small(small, tmp_path / "runs" / "mine.nc")
    s, v = make_view()
    v.refresh_btn.clicks += 1
    assert v.file_select.options == ["choose a results file ...", "runs/mine.nc"]
    v.file_select.value = "runs/mine.nc"
    es = v.es
    assert s.alerts == [] and es.label == "file runs/mine.nc"
    assert es.channels() == [str(c) for c in ds["channel"].values[:5]] and es.channel in es.channels()
    assert v.subject.options == [ALL_SUBJECTS, "S01", "S03"]
    assert "0.500" in v.scores.object and "0.125" in v.scores.object
    assert "other encoding code" not in v.source_text.object
    small.attrs["code_version"] = "0123456789ab"  # a file of an earlier UnitScope
    write_small(small, tmp_path / "runs" / "older.nc")
    v.refresh_btn.clicks += 1
    v.file_select.value = "runs/older.nc"
    assert ("computed by other encoding code (an earlier UnitScope): fit again to update it"
            in v.source_text.object)
    v.file_select.value = "runs/mine.nc"
    assert v.example.options[0] == f"epoch {int(ds['example'][0])}"  # no subjects stored: none shown
    v.shipped_btn.clicks += 1
    assert es.label == SHIPPED_LABEL and v.file_select.value == "choose a results file ..."


def test_progress_fractions_follow_the_study_messages():
    assert _fraction("dre epoch 3/6: valid loss 0.5", 3, 0) == pytest.approx(0.3)
    assert _fraction("dre: post-onset mean r 0.15 (6.4 s)", 3, 1) == pytest.approx(0.6)
    assert _fraction("trf: post-onset mean r 0.10 (5.1 s)", 3, 2) == pytest.approx(0.775)
    assert _fraction("rtrf: post-onset mean r 0.21 (2.3 s)", 3, 3) == pytest.approx(0.95)
    assert _fraction("permutation importance of the DRE", 3, 3) == 0.95
    assert _fraction("fitting trf", 3, 1) is None and _fraction("1200 epochs of 4 subjects", 3, 0) is None


def test_fit_runs_in_the_background_and_shows_its_result(make_view, monkeypatch, tiny_preset):
    monkeypatch.setitem(es_mod.FIT_PRESETS, "synthetic-reading", tiny_preset)
    s, v = make_view()
    es = v.es
    v.fit_btn.clicks += 1
    assert es.fit_state in ("waiting", "running", "done")
    assert es.join(120)
    assert es.fit_state == "done" and es.fit_progress == 1.0, (es.fit_message, s.alerts)
    assert es.label.startswith("fitted in this session") and es.result is not shipped_result()
    assert list(es.result["model"].values) == ["dre", "trf", "rtrf"] and es.result.sizes["channel"] == 6
    assert v.fit_btn.disabled is False and v.stop_btn.disabled is True
    assert es.channel in es.channels() and "(S0" in v.example.options[0]  # example subjects kept
    assert shipped_result()["channel"].size == 40  # the shared result is untouched


def test_stop_ends_the_fit_and_keeps_the_result(make_view, monkeypatch, tiny_preset):
    monkeypatch.setitem(es_mod.FIT_PRESETS, "synthetic-reading", tiny_preset)
    s, v = make_view()
    es = v.es
    es.fit()
    es.stop_fit()
    assert es.join(120)
    assert es.fit_state == "stopped" and es.label == SHIPPED_LABEL and s.alerts == []


def test_the_fit_waits_for_a_free_slot_of_the_shared_queue(make_view, monkeypatch, tiny_preset):
    queue = WorkQueue(n_slots=2, max_long=1)
    monkeypatch.setattr(es_mod, "work_queue", lambda: queue)
    monkeypatch.setitem(es_mod.FIT_PRESETS, "synthetic-reading", tiny_preset)
    s, v = make_view()
    es = v.es
    queued, release, held = threading.Event(), threading.Event(), threading.Event()
    es.param.watch(lambda e: queued.set() if e.new == 1 else None, "queue_position")

    def other_session():
        with queue.slot(kind="long", label="someone's fine-tune"):
            held.set()
            release.wait(60)

    t = threading.Thread(target=other_session)
    t.start()
    assert held.wait(30)
    es.fit()
    assert queued.wait(30)
    assert es.fit_state == "waiting" and "position 1" in v.fit_text.object and v.stop_btn.disabled is False
    release.set()
    t.join(30)
    assert es.join(120) and es.fit_state == "done"


def test_a_second_fit_while_one_runs_is_refused(make_view, monkeypatch, tiny_preset):
    queue = WorkQueue(n_slots=2, max_long=1)
    monkeypatch.setattr(es_mod, "work_queue", lambda: queue)
    monkeypatch.setitem(es_mod.FIT_PRESETS, "synthetic-reading", tiny_preset)
    s, v = make_view()
    with queue.slot(kind="long", label="block"):
        v.es.fit()
        v.es.fit()
        assert "already running" in s.alerts[-1][1]
        v.es.stop_fit()
    assert v.es.join(60) and v.es.fit_state == "stopped"


def test_state_is_per_session_and_scores_render_escaped(make_view):
    a, va = make_view()
    b, vb = make_view()
    va.channel.value = va.es.channels()[0]
    vb.channel.value = vb.es.channels()[1]
    assert va.es.channel != vb.es.channel and encoding_state_of(a) is va.es
    assert "&lt;b&gt;" in score_html({"<b>x</b>": 0.5})


def test_add_example_subjects_reads_them_from_the_data():
    ds = xr.Dataset(coords={"example": [2, 0]})
    data = xr.Dataset(coords={"epoch": [0, 1, 2], "subject": ("epoch", ["A", "B", "C"])})
    assert list(add_example_subjects(ds, data)["example_subject"].values) == ["C", "A"]


def test_a_result_without_examples_or_importance_explains_the_empty_plots(make_view, tmp_path):
    bare = shipped_result().drop_vars(["predicted", "actual", "example_subject", "loss_increase",
                                       "loss_increase_map", "r_drop"])
    write_small(bare, tmp_path / "bare.nc")
    s, v = make_view()
    v.refresh_btn.clicks += 1
    v.file_select.value = "bare.nc"
    assert s.alerts == [] and v.es.label == "file bare.nc"
    assert v.pred_fig.title.text == "Predicted vs actual: no stored test epochs in this result"
    assert v.imp_fig.title.text == "Permutation importance: not in this result"
    assert v.maps["imp"]["fig"].title.text.endswith("no importance in this result")
    assert v.maps["r"]["fig"].title.text.startswith("r of DRE (all subjects)")  # the r map is still there
    assert v.feature.disabled and v.feature.description == "This result holds no permutation importance"
    assert v.example.disabled and v.example.description == "This result stores no example test epochs"
    assert v.at_channel.disabled and "no permutation importance in this result" in v.source_text.object
    assert "no predicted-vs-actual plot" in v.source_text.object


def test_packing_keeps_the_maps_to_a_ten_thousandth_of_their_range(tmp_path):
    from core.encoding.results import load_results

    rng = np.random.default_rng(0)
    expected = shipped_result().copy(deep=True)
    expected["r"] = expected["r"] + 0.01 * rng.standard_normal(expected["r"].shape)  # not already on the grid
    actual = load_results(write_small(expected, tmp_path / "packed.nc"))
    for var in ("r", "loss_increase_map", "r_drop", "predicted", "actual"):
        span = float(np.nanmax(np.abs(expected[var].values)))
        np.testing.assert_allclose(actual[var].values, expected[var].values, atol=1e-4 * span, rtol=0)
    assert list(actual["example_subject"].values) == list(expected["example_subject"].values)
