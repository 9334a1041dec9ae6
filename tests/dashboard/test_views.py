"""Views without a browser: derived data, plots for a chosen unit, escaping, app assembly."""
from __future__ import annotations

import html
import runpy
from pathlib import Path

import holoviews as hv
import numpy as np
import panel as pn
import pytest

from core.probing.stats import band_bins
from dashboard.state import Session
from dashboard.views import DataView, OverviewView, UnitsView
from dashboard.views._common import AlertsView
from dashboard.views.overview import CLASS_COLORS, fraction_table, prediction_plot
from dashboard.views._common import ROLE_COLORS, known_roles
from dashboard.views.units import (channel_scores, channel_ticks, peak_text, strongest, unit_maps, unit_table,
                                   window_traces)


@pytest.fixture()
def session(tmp_path, monkeypatch, tiny_decoder, tiny_probe):
    monkeypatch.setenv("UNITSCOPE_DATA_ROOT", str(tmp_path))
    s = Session()
    s.set_decoder(tiny_decoder, probe=tiny_probe, probe_source="test")
    tiny_decoder.top_windows()
    s.top_ready = True
    yield s
    s.close()


def _html(viewable) -> str:
    """All HTML text of the panes below a viewable."""
    out = []
    for pane in viewable.select(pn.pane.HTML):
        out.append(str(pane.object))
    return "\n".join(out)


def test_unit_table_matches_the_probe(tiny_probe):
    t = unit_table(tiny_probe, "conv_3")
    assert list(t["index"]) == list(range(100))
    expected = tiny_probe["amp_stat_all"].sel(unit="conv_3/17").item()
    assert t["amp"][17] == pytest.approx(expected)
    assert set(t["cls"]) <= {"amplitude", "phase", "bimodal", "insensitive"}


def test_unit_maps_and_channel_scores(tiny_probe):
    amp, phase = unit_maps(tiny_probe, "conv_2", 3)
    assert amp.dims == ("channel", "freq") and amp.shape == (32, tiny_probe.sizes["freq"])
    np.testing.assert_array_equal(amp.values, tiny_probe["amp_corr"].sel(unit="conv_2/3").values)
    a, p = channel_scores(tiny_probe, "conv_2", 3)
    # the strongest band of each channel on the sensitivity's scale: |band mean r| x sqrt(bins)
    bins = band_bins(tiny_probe, "phase")
    expected = (np.abs(tiny_probe["phase_band"].sel(unit="conv_2/3").values) * np.sqrt(bins)).max(axis=-1)
    np.testing.assert_allclose(p, np.nan_to_num(expected), rtol=1e-6)
    assert a.shape == (32,)


def test_the_strongest_channel_and_band_give_the_units_sensitivity(tiny_probe):
    """The header's peak and the channel maps' brightest channel are where the unit's
    sensitivity (``*_stat_all``, the scatter's axes) comes from, for every unit of the probe."""
    for uid in tiny_probe["unit"].values[::7]:
        layer, index = uid.split("/")
        peaks = strongest(tiny_probe, layer, int(index))
        amp, phase = channel_scores(tiny_probe, layer, int(index))
        for kind, prefix, scores in (("amplitude", "amp", amp), ("phase", "phase", phase)):
            stat = float(tiny_probe[f"{prefix}_stat_all"].sel(unit=uid))
            peak = peaks[kind]
            assert peak["score"] == pytest.approx(stat, rel=1e-5) and scores.max() == pytest.approx(stat, rel=1e-5)
            assert peak["channel"] == str(tiny_probe["channel"].values[int(np.argmax(scores))])
            band = tiny_probe[f"{prefix}_band"].sel(unit=uid, channel=peak["channel"], band=peak["band"])
            assert peak["r"] == pytest.approx(float(band)) and peak["score"] == pytest.approx(
                abs(peak["r"]) * np.sqrt(peak["bins"]), rel=1e-6)
    text = peak_text("amplitude", {"channel": "G14", "band": "high_gamma", "r": 0.0046, "bins": 288, "score": 0.078})
    assert text == "amplitude peaks at G14 in high gamma: band-mean r +0.005 over 288 bins (× √288 = 0.078)"
    # the shared phase variant shifts every channel's phase alike: its peak names no channel
    shared = tiny_probe.assign_attrs(phase_variant="shared")
    peaks = strongest(shared, "conv_2", 3)
    assert peaks["phase"]["shared"] and not peaks["amplitude"]["shared"]
    assert peak_text("phase", peaks["phase"]).startswith(
        f"phase peaks in {peaks['phase']['band'].replace('_', ' ')}, every channel alike (one phase shift shared by all): ")


def test_channel_scores_in_a_band_or_a_frequency_range(tiny_probe):
    uid = "conv_3/7"
    amp, phase = channel_scores(tiny_probe, "conv_3", 7, "beta")
    np.testing.assert_allclose(amp, np.abs(tiny_probe["amp_band"].sel(unit=uid, band="beta").values), rtol=1e-6)
    f = tiny_probe["freq"].values
    inside = (f >= 60) & (f <= 90)
    amp, phase = channel_scores(tiny_probe, "conv_3", 7, "60-90")
    np.testing.assert_allclose(amp, np.abs(tiny_probe["amp_corr"].sel(unit=uid).values[:, inside].mean(-1)), rtol=1e-5)
    assert np.isfinite(phase).all()
    with pytest.raises(Exception, match="Expected a band as 'LO-HI'"):
        channel_scores(tiny_probe, "conv_3", 7, "90-60")
    with pytest.raises(Exception, match="No frequency of the probe's maps lies in 200-300 Hz"):
        channel_scores(tiny_probe, "conv_3", 7, "200-300")


def test_window_traces_are_z_scored():
    rng = np.random.default_rng(0)
    seg = rng.standard_normal((6, 3, 50)) * 5 + 2
    traces, med, q25, q75 = window_traces(seg, 1)
    np.testing.assert_allclose(traces.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(traces.std(axis=1), 1, atol=1e-12)
    assert np.all(q25 <= med) and np.all(med <= q75)


def test_units_view_follows_the_selection(session):
    view = UnitsView(session=session)
    assert isinstance(view.__panel__(), pn.Column)
    session.param.update(layer="conv_3", unit=12)
    assert view.layer.value == "conv_3" and view.unit.value == 12
    # a unit the layer lacks, typed: said, and the selection kept (the browser had clamped 999 to
    # the last unit, or dropped it, without a word)
    for typed in (999, -5):
        view.unit.value = typed
        assert (session.unit, view.unit.value) == (12, 12)
        assert session.alerts[-1] == ("warning", f"Unit {typed} is not a unit of conv_3: it has units 0 to 99; "
                                                 "unit 12 stays selected.")
    assert "Unit conv_3/12" in view.unit_header.object
    peak = strongest(session.probe, "conv_3", 12)["amplitude"]
    assert f"amplitude peaks at {peak['channel']} in {peak['band'].replace('_', ' ')}: " in view.unit_header.object
    assert f"(× √{peak['bins']} = {float(session.probe['amp_stat_all'].sel(unit='conv_3/12')):.3f})" \
        in view.unit_header.object  # the product is the sensitivity the header states
    amp = view.maps["amplitude"]
    assert amp["fig"].title.text == "conv_3/12 amplitude sensitivity\nr(noise, response)"
    np.testing.assert_allclose(amp["src"].data["image"][0],
                               session.probe["amp_corr"].sel(unit="conv_3/12").values, rtol=1e-6)
    assert view.maps["phase"]["fig"].title.text.startswith("conv_3/12 phase sensitivity")
    lim = np.nanmax(np.abs(session.probe["amp_corr"].sel(unit="conv_3/12").values))
    assert amp["mapper"].high == pytest.approx(lim) and amp["mapper"].low == pytest.approx(-lim)
    assert len(view.pts_src.data["index"]) == 100 and view.pts_src.selected.indices == [12]
    assert view.scatter_fig.title.text.startswith("conv_3: 100 units")
    assert view.win_fig.title.text.startswith("conv_3/12 most-activating windows")
    assert len(view.win_traces.data["ys"]) == min(12, len(session.decoder.probe_inputs()[0]))
    chans = view.chans["phase"]["src"].data
    assert len(chans["channel"]) == 32 and chans["channel"][0] == "G01"
    assert view.maps["amplitude"]["names"].args["names"][:2] == ["G01", "G02"]  # the map's hover names rows
    assert view.maps["amplitude"]["fig"].yaxis[0].major_label_overrides[31] == "G32"  # every row labelled
    assert "(grid positions)" in view.chans["phase"]["fig"].title.text
    assert view.chans["phase"]["outline"].data["xs"] == []  # an ECoG grid: no head drawn
    # band boundaries drawn at the band edges of the result
    edges = set(view.maps["phase"]["bands"].data["x0"])
    assert set(session.probe["band_lo"].values) <= edges


def test_channel_map_of_a_head_montage_draws_the_head(session, monkeypatch):
    """EEG positions on a head: the map draws the head's outline, names the layout, and says
    where channels without a position went."""
    from core.io import standard_positions
    from core.layout import channel_layout

    dec = session.decoder
    names = ["Fp1", "Fpz", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7", "P3",
             "Pz", "P4", "P8", "O1", "Oz", "O2", "T9", "T10", "Iz", "FC1", "FC2", "CP1", "CP2", "AF3", "AF4"]
    pos = np.vstack([standard_positions(names, ["eeg"] * 30), [[0.0, 0, 0], [np.nan] * 3]])
    sig = dec.ws.recording.signals.drop_vars(["row", "col"]).assign_coords(
        x=("channel", pos[:, 0]), y=("channel", pos[:, 1]), z=("channel", pos[:, 2]))
    monkeypatch.setattr(type(dec), "positions", lambda self: channel_layout(sig))
    view = UnitsView(session=session)
    session.param.update(layer="conv_2", unit=3)
    c = view.chans["amplitude"]
    assert len(c["outline"].data["xs"]) == 4  # head, nose, two ears
    assert "(head; without a position: below)" in c["fig"].title.text
    assert c["dots"].glyph.size == pytest.approx(18.0)  # 32 channels
    xy = np.c_[c["src"].data["x"], c["src"].data["y"]]
    assert np.hypot(*xy[names.index("Cz")]) < 0.15 and xy[30:, 1].max() < xy[:30, 1].min()


def test_channel_ticks_name_every_row_up_to_32_then_every_kth():
    names = [f"MEG {i:04d}" for i in range(306)]  # a Neuromag montage: labels, not row numbers
    ticks = channel_ticks(names)
    assert list(ticks) == list(range(0, 306, 10)) and ticks[10] == "MEG 0010" and len(ticks) <= 32
    assert channel_ticks(names[:32]) == dict(enumerate(names[:32]))
    assert list(channel_ticks(names[:33])) == list(range(0, 33, 2))


def test_channel_maps_show_the_chosen_band(session):
    """The channel maps (and the most-activating windows' channel) follow the band chosen,
    a role's band of the demo included; the choice is the session's (the lesson sets it)."""
    view = UnitsView(session=session)
    session.param.update(layer="conv_3", unit=7)
    labels = list(view.map_band.options)
    assert labels[:4] == ["strongest band of each channel", "high gamma role band, 60-90 Hz",
                          "beta role band, 15-25 Hz", "low freq role band, 1-4 Hz"]
    # the strongest band is taken on the sensitivity's scale (|r| x sqrt(bins)): the title says so
    assert "conv_3/7 amplitude sensitivity,\nstrongest band (grid positions)" in view.chans["amplitude"]["fig"].title.text
    view.map_band.value = "60-90"
    assert session.channel_map_band == "60-90"
    amp, _ = channel_scores(session.probe, "conv_3", 7, "60-90")
    np.testing.assert_allclose(view.chans["amplitude"]["src"].data["score"], amp)
    assert "conv_3/7 amplitude |r|,\n60-90 Hz (grid positions)" in view.chans["amplitude"]["fig"].title.text
    assert "most sensitive channel in the high gamma role band" in view.win_fig.title.text
    shade = view.maps["phase"]["shade"]  # the ch x freq maps shade the band summarised
    assert shade.visible and (shade.left, shade.right) == (60.0, 90.0)
    session.channel_map_band = "beta"  # set elsewhere (the lesson): the widget follows
    assert view.map_band.value == "beta"
    assert "conv_3/7 phase |r|,\nbeta band" in view.chans["phase"]["fig"].title.text
    lo, hi = (float(session.probe.sel(band="beta")[k]) for k in ("band_lo", "band_hi"))
    assert (shade.left, shade.right) == (lo, hi)
    session.channel_map_band = "7-9"  # not offered by this probe: the strongest band
    assert "amplitude sensitivity,\nstrongest band" in view.chans["amplitude"]["fig"].title.text and not shade.visible


def test_known_roles_outline_each_role_over_its_band():
    """The demo's roles: every role channel's row lies in exactly one box of its role, over
    its band; noise rows and rows of other roles in none; a recording without roles: None."""
    from core.demo import ROLE_BANDS, simulate_reaching

    sig = simulate_reaching(seed=0, duration=30.0).signals
    known = known_roles(sig)
    roles = sig["role"].values.astype(str)
    assert list(known["roles"]) == [r if r != "noise" else "" for r in roles]
    assert set(known["legend"]) == set(ROLE_BANDS) and known["legend"]["beta"] == ("beta 15-25 Hz", ROLE_COLORS["beta"])
    b = known["boxes"]
    for i, role in enumerate(roles):
        inside = [k for k in range(len(b["role"])) if b["bottom"][k] < i < b["top"][k]]
        if role == "noise":
            assert inside == []
        else:
            assert len(inside) == 1 and b["role"][inside[0]] == role
            assert (b["left"][inside[0]], b["right"][inside[0]]) == ROLE_BANDS[role]
    assert sum(t - bo for t, bo in zip(b["top"], b["bottom"])) == (roles != "noise").sum()  # no row twice
    assert known_roles(sig.drop_vars("role")) is None


def test_units_view_shows_known_roles_and_hides_them_on_request(session, monkeypatch):
    view = UnitsView(session=session)
    session.param.update(layer="conv_2", unit=3)
    roles = session.decoder.ws.recording.signals["role"].values.astype(str)
    amp, ring = view.maps["amplitude"], view.chans["amplitude"]["src"].data
    assert view.show_roles.visible and "beta 15-25 Hz" in view.roles_legend.object
    assert len(amp["roles"].data["left"]) > 0 and amp["roles"].data == view.maps["phase"]["roles"].data
    g03 = list(roles).index("high_gamma")
    assert amp["names"].args["names"][g03].endswith("(high gamma)")
    assert ring["role"][g03] == "high gamma" and ring["role"][0] == "none known"  # G01: noise
    halos = view.chans["amplitude"]["halos"].data  # a ring around each role channel, in its colour
    assert len(halos["x"]) == (roles != "noise").sum()
    at = [i for i in range(len(halos["x"])) if (halos["x"][i], halos["y"][i]) == (ring["x"][g03], ring["y"][g03])]
    assert [halos["color"][i] for i in at] == [ROLE_COLORS["high_gamma"]]
    view.show_roles.value = False  # a quiz: guess first
    assert amp["roles"].data["left"] == [] and view.roles_legend.object == ""
    assert len(view.chans["amplitude"]["halos"].data["x"]) == 0
    view.show_roles.value = True
    assert len(amp["roles"].data["left"]) > 0
    # a recording without roles: nothing drawn, no checkbox
    sig = session.decoder.ws.recording.signals
    monkeypatch.setattr(session.decoder.ws.recording, "signals", sig.drop_vars("role"))
    plain = UnitsView(session=session)
    assert not plain.show_roles.visible and plain.maps["amplitude"]["roles"].data["left"] == []
    assert plain.maps["amplitude"]["names"].args["names"][g03] == str(sig["channel"].values[g03])


def test_the_scatter_sets_the_untrained_controls_units_behind(session, tiny_probe):
    """With an untrained control, its units of the block are drawn behind (what training
    moved); only the trained units answer hover and clicks."""
    from bokeh.models import HoverTool, TapTool

    view = UnitsView(session=session)
    session.layer = "conv_3"
    assert len(view.ctrl_src.data["amp"]) == 0 and not view.ctrl_item.visible  # no control: not in the legend
    control = tiny_probe.copy()
    control["amp_stat_all"] = control["amp_stat_all"] * 0.5  # a stand-in with other numbers
    session.control = control
    t = unit_table(control, "conv_3")
    np.testing.assert_allclose(view.ctrl_src.data["amp"], t["amp"])
    np.testing.assert_allclose(view.ctrl_src.data["phase"], t["phase"])
    assert view.ctrl_item.visible and view.ctrl_item.label.value == "untrained control"
    tools = [t for t in view.scatter_fig.tools if isinstance(t, (HoverTool, TapTool))]
    assert tools and all(t.renderers != "auto" and len(t.renderers) == 1
                         and t.renderers[0].data_source is view.pts_src for t in tools)
    session.control = None
    assert len(view.ctrl_src.data["amp"]) == 0 and not view.ctrl_item.visible


def test_tap_selects_the_clicked_unit(session):
    view = UnitsView(session=session)
    session.layer = "conv_2"
    view.pts_src.selected.indices = [7]
    assert session.unit == 7
    assert view.maps["amplitude"]["fig"].title.text.startswith("conv_2/7 ")


def test_a_probe_in_which_no_unit_passed_says_why_it_may_lack_power(session, tiny_probe):
    """Every unit insensitive (a short recording's few trials): the probe's line says the windows
    and iterations it rests on and the null spread of a correlation, as unitscope probe does; a
    probe with units that passed says nothing of the kind."""
    from core.cautions import no_discovery_note

    view = UnitsView(session=session)
    assert (tiny_probe["unit_class_all"] == "insensitive").all()  # 7 windows x 2 iterations
    n_win, n_it = tiny_probe.attrs["n_windows"], tiny_probe.attrs["amp_iterations"]
    assert (f"Note: no unit passed the test (false-discovery rate 0.05). With {n_win} windows x {n_it} iterations "
            f"a correlation&#x27;s null spread is about {1 / (n_win * n_it) ** 0.5:.3f}: raise Iterations"
            in view.probe_text.object)
    some = tiny_probe.copy()
    some["unit_class_all"] = ("unit", np.where(np.arange(some.sizes["unit"]) == 3, "amplitude", "insensitive"))
    session.param.update(probe=some, probe_state="done")
    assert no_discovery_note(some) == "" and "Note:" not in view.probe_text.object


def test_units_view_reports_the_probes_validity(session, tiny_probe):
    """Every probe reports its validity check (issue: probing, item 4): the amplitude pass's
    perturbed over unperturbed metric, in the words of unitscope probe; the phase pass's
    ratio is said to be no check (its draws scramble every frequency's phase)."""
    from core.cautions import validity_text

    view = UnitsView(session=session)
    some = tiny_probe.copy()
    some["amp_validity"], some["phase_validity"] = np.float64(0.97), np.float64(0.07)
    some.attrs.update(task="regression", metric_unperturbed=0.8)
    session.param.update(probe=some, probe_state="done")
    line = view.probe_text.object
    assert "Validity: amplitude 0.970 (perturbed / unperturbed metric; at least 0.95" in line
    assert "phase 0.070 (no check: each draw gives every frequency a new phase" in line
    some = some.copy()
    some["amp_validity"] = np.float64(0.5)
    session.param.update(probe=some)
    assert "below 0.95" in view.probe_text.object and "unitscope probe --noise-scale sets a smaller noise" in \
        view.probe_text.object and "--noise-scale keeps" not in validity_text(some, closer="x")
    session.probe_state = "running"  # a running probe's ratio is not final: not said
    assert "Validity" not in view.probe_text.object


def test_units_view_without_probe_says_not_run(session, tiny_decoder):
    session.set_decoder(tiny_decoder)  # drops the probe
    view = UnitsView(session=session)
    assert "Probe not run yet" in view.probe_text.object
    assert view.run_btn.label == "Run probe" and not view.run_btn.disabled
    assert len(view.pts_src.data["index"]) == 0
    # two lines, as with a probe: a title growing from one line to two left a cut-off line drawn
    assert view.maps["phase"]["fig"].title.text == f"{session.layer}/{session.unit} phase sensitivity\n(probe not run yet)"
    assert view.win_fig.title.text.startswith(f"{session.layer}/{session.unit} most-activating windows at")


def _visible_events(part) -> list:
    seen = []
    part.param.watch(lambda e: seen.append(e.new), "visible")
    return seen


def test_parts_shown_by_the_session_state_are_sent_again_once_the_page_has_loaded(session, tiny_decoder, tiny_probe):
    """The Units view's placeholder, scatter and maps follow the probe; once the page has drawn
    again what changed while it loaded (``page_redrawn``), each part is hidden and shown (or the
    reverse) so that the browser gets its visibility again: setting the same value sends nothing,
    and once in 48 pages opened at once the Units view stayed without its scatter and maps."""
    from dashboard.views.lesson import LessonView
    from dashboard.views.prune import PruneView

    session.set_decoder(tiny_decoder)  # no probe
    view = UnitsView(session=session)
    page = view.__panel__()
    (none_yet, _), (no_decoder, _), (scatter, _), (details, _), _roles = view.shown.rules
    assert all(p in page.objects for p in (none_yet, no_decoder, scatter, details)) and not no_decoder.visible
    assert none_yet.visible and not scatter.visible and not details.visible
    session.probe = tiny_probe
    assert not none_yet.visible and scatter.visible and details.visible
    events = [_visible_events(p) for p in (none_yet, scatter, details)]
    lesson = LessonView(session=session)
    lesson_events = _visible_events(lesson.column)
    prune = PruneView(session=session)
    prune.__panel__()
    prune_events = [_visible_events(p) for p, _ in prune.shown.rules]
    from dashboard.views.occlusion import OcclusionPanel

    occlusion = OcclusionPanel(session=session)
    assert occlusion.roles_btn.visible  # the demo's known roles: "Each role in its band"
    roles_events = _visible_events(occlusion.roles_btn)
    session.page_redrawn += 1
    assert events == [[True, False], [False, True], [False, True]]
    assert lesson_events == [not lesson.column.visible, lesson.column.visible]
    assert prune_events == [[True, False], [True, False]]  # a decoder, a hidden layer: both hidden again
    assert roles_events == [False, True]


def test_overview_cautions_when_the_test_blocks_target_drifted(session, tmp_path):
    """A target that steps up in its last fifth (the test block), as BCI2000's eye gaze does:
    the header says how many training SDs the test block's mean lies off, as unitscope info
    does; the demo's speed, which does not drift, gets no caution."""
    import mne

    from core.training import TrainConfig
    from core.workspace import DataSpec, Workspace
    from dashboard.decoder import Decoder

    view = OverviewView(session=session)
    view.__panel__()
    assert "Caution" not in view._header.object and abs(session.decoder.target_shift()) < 1
    rng = np.random.default_rng(0)
    n = 128 * 60
    speed = rng.standard_normal(n) * 0.1 + np.where(np.arange(n) >= 0.8 * n, 2.0, 0.0)
    info = mne.create_info(["C3", "C4", "Cz", "speed"], 128.0, ["eeg"] * 3 + ["misc"])
    data = np.vstack([rng.standard_normal((3, n)) * 1e-5, speed])
    mne.io.RawArray(data, info, verbose=False).save(tmp_path / "drift_raw.fif", verbose=False)
    ws = Workspace.create(DataSpec(source=str(tmp_path / "drift_raw.fif"), target="speed"),
                          TrainConfig(model="shallow", n_times=600))
    dec = Decoder(ws, label="drift")
    train = ws.recording.target.values[ws.blocks["train"]]
    truth = dec.predictions()["true"]
    shift = dec.target_shift()
    assert shift == pytest.approx((truth.mean() - train.mean()) / train.std(), abs=1e-3) and shift > 2
    session.set_decoder(dec)
    assert (f"Caution: the target&#x27;s mean on the test block lies +{shift:.1f} SDs (of the training block)"
            in view._header.object)


def test_units_view_names_the_probe_site_and_resumes_only_the_same_site(session, tiny_probe):
    view = UnitsView(session=session)
    assert "units read before BatchNorm" in view.probe_text.object
    assert view.site.value == "conv" and set(view.site.options.values()) == {"conv", "nonlin"}
    session.probe_state = "stopped"
    assert view.run_btn.label == "Resume probe"
    view.site.value = "nonlin"  # a stopped probe of the other site is not resumed
    assert session.probe_site == "nonlin" and view.run_btn.label == "Run probe"


def test_overview_shows_metric_and_fractions(session, tiny_probe):
    view = OverviewView(session=session)
    view.__panel__()
    metric = session.decoder.predictions()["metric"]
    assert f"{metric:.3f}" in view._header.object
    frac = fraction_table(tiny_probe)
    np.testing.assert_allclose(frac.sum("class").values, 1.0)
    assert list(frac["layer"].values) == session.layer_names
    legend, plots = view._fractions
    assert len(plots) == 2  # trained and control side by side
    # one legend for both plots, on the page: each class once, in its colour; none in the plots
    for c in frac["class"].values:
        assert legend.object.count(f">{c}</span>") == 1 and CLASS_COLORS[str(c)] in legend.object
    bars = plots[0].object
    assert hv.Store.lookup_options("bokeh", bars, "plot").kwargs["show_legend"] is False
    assert session.control is None and "Untrained control: not probed yet" in _html(view._fractions)
    session.probe = None
    assert "Probe not run yet" in _html(view._fractions)
    session.decoder = None  # a run folder's decoder still loading: its probe comes with it
    session.decoder_version += 1
    assert "Unit classes appear with the decoder" in _html(view._fractions)


def test_prediction_plot_regression(tiny_decoder):
    pred = tiny_decoder.predictions()
    assert pred["time"].shape == pred["pred"].shape == pred["true"].shape
    # prediction times lie inside the test block
    blk = tiny_decoder.ws.blocks["test"]
    assert pred["time"].min() * tiny_decoder.sfreq >= blk.start and pred["time"].max() * tiny_decoder.sfreq < blk.stop
    assert prediction_plot(pred) is not None


def test_alerts_and_channel_names_are_escaped(session):
    session.alert("<script>alert(1)</script> & <b>x</b>")
    alerts = AlertsView(session=session)
    html = _html(alerts.__panel__())
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # two or more messages: one button dismisses them all (they stacked above the tabs)
    assert not alerts._col.select(pn.widgets.Button)[-1].label.startswith("Dismiss all")
    session.alert("Training finished after 2 epoch(s).", "success")
    clear = alerts._col.objects[-1]
    assert clear.label == "Dismiss all 2 messages"
    clear.clicks += 1
    assert session.alerts == [] and not alerts._col.visible
    view = DataView(session=session)
    session.recording_info = {"label": "<img src=x onerror=alert(1)>.fif", "n_chans": 2,
                              "ch_names": ["<script>evil()</script>", "C4"], "ch_types_list": ["eeg", "misc"],
                              "ch_types": {"eeg": 1, "misc": 1}, "sfreq": 250.0, "duration_s": 60.0,
                              "events": {"<i>T1</i>": 3, "T2": 3, "T3": 3}, "path": "/x"}
    html = view.info.object
    assert "<script>" not in html and "<img" not in html and "<i>" not in html
    assert "&lt;script&gt;evil()&lt;/script&gt;" in html
    assert view.target.options[0] == "C4" and "events:<i>T1</i>,T2" in view.target.options


def test_number_boxes_answer_what_their_setting_cannot_take(session):
    """An emptied Max epochs box had sent None into a setting that needs a number: Panel logged a
    traceback and the box snapped back without a word. Each box now says what it takes and
    shows the value kept; a box that may be empty (a filter edge) takes an empty box or NaN
    (the browser's value for text that is no number) as off."""
    view = DataView(session=session)
    view.__panel__()
    n = len(session.alerts)
    view.epochs.value = None
    assert session.max_epochs == 25 and view.epochs.value == 25
    assert session.alerts[n:] == [("warning", "Max epochs needs a whole number from 1 to 500; it stays at 25.")]
    view.epochs.value = 0
    assert session.max_epochs == 25 and view.epochs.value == 25
    assert session.alerts[-1][1] == "Max epochs: 0 is not allowed; it takes a whole number from 1 to 500 and stays at 25."
    view.epochs.value = 7
    assert session.max_epochs == 7 and session.alerts[-1][1].startswith("Max epochs: 0")  # nothing said
    session.max_epochs = 9  # and the box follows the setting
    assert view.epochs.value == 9
    view.tmin.value = None
    assert session.tmin == 0.0 and view.tmin.value == 0.0
    assert session.alerts[-1][1] == "Trials from (s after onset) needs a number; it stays at 0."
    view.h_freq.value = 30.0
    assert session.h_freq == 30.0
    view.h_freq.value = float("nan")
    assert session.h_freq is None and view.h_freq.value is None  # off, and the box shows its placeholder
    view.h_freq.value = None
    assert session.h_freq is None and session.alerts[-1][1].startswith("Trials from")  # nothing said


def test_data_view_buttons_follow_training_state(session):
    view = DataView(session=session)
    view.__panel__()
    session.busy = "training"
    assert view.train_btn.disabled and not view.stop_btn.disabled
    session.busy = ""
    assert not view.train_btn.disabled and view.stop_btn.disabled
    history = [{"epoch": 0, "train_loss": 1.0, "valid_loss": 0.9, "valid_metric": 0.3},
               {"epoch": 1, "train_loss": 0.8, "valid_loss": 0.85, "valid_metric": 0.4}]
    layout = view._curves(history, [(0.5, 1.1), (1.0, 1.0)])
    assert isinstance(layout, hv.Layout) and len(layout) == 2
    shown = view.curves_shown
    session.param.update(train_history=history, train_batches=[(0.5, 1.1)])  # no document: redrawn at once
    assert view.curves_shown == shown + 1


def test_data_view_trial_window_shows_for_event_labels_and_warns_of_overlap(session, tmp_path, monkeypatch,
                                                                             stim_fif):
    """Trial start and end appear for a target of event labels only; the line under the inputs
    names the window, and trials longer than the time between events get a warning."""
    monkeypatch.setattr(session, "root", tmp_path)
    view = DataView(session=session)
    view.__panel__()
    assert not view.trials.visible  # the demo
    stim_fif(tmp_path / "meg_raw.fif", every=150, first=250)  # events 0.6 s apart
    session.inspect("meg_raw.fif")
    assert session._jobs["inspect"].join(60)
    assert session.target == "events" and view.trials.visible
    assert "trials 0 to 4 s from each onset" in view.prep_note.object
    assert "us-trial-overlap" in view.prep_note.object and "also hold 6 other events each (median)" in view.prep_note.object
    view.tmax.value = 0.5  # through the widget
    assert session.tmax == 0.5 and "us-trial-overlap" not in view.prep_note.object
    assert "trials 0 to 0.5 s from each onset" in view.prep_note.object
    assert "target events (trials 0 to 0.5 s from each onset), up to" in view.plan.object  # what Train will do
    session.target = "MEG0111"
    assert not view.trials.visible and "trials" not in view.prep_note.object


def test_training_curves_show_the_decoder_in_use_or_the_run_in_progress(session, tiny_ws, monkeypatch):
    from dashboard.decoder import Decoder

    view = DataView(session=session)
    view.__panel__()
    assert "holds no training history" in view.curves_note.object  # the untrained tiny decoder
    empty = view._shown_curves(0)
    loss_of = lambda layout: layout.Overlay.I  # noqa: E731 (loss panel, then the metric panel)
    metric_of = lambda layout: list(layout.Overlay.II.values()[0].data["metric"])  # noqa: E731
    best_of = lambda layout: [v.data for v in layout.Overlay.II.values() if isinstance(v, hv.VLine)]  # noqa: E731
    assert all(np.isnan(v.data.iloc[:, 1]).all() for v in loss_of(empty).values())  # nothing drawn
    assert np.isnan(best_of(empty)).all()
    saved = [{"epoch": e, "train_loss": 1.0 - e / 10, "valid_loss": 0.9, "valid_metric": 0.1 * e} for e in range(3)]
    monkeypatch.setattr(tiny_ws, "history", saved)
    monkeypatch.setattr(tiny_ws, "metrics", {**tiny_ws.metrics, "best_epoch": 1})
    dec = Decoder(tiny_ws, label="saved run")
    shown = view.curves_shown
    session.set_decoder(dec)
    assert view.curves_shown > shown  # a new decoder redraws its curves
    # the curves' metric is named (the plot's axis says only "metric")
    assert "saved run: 3 epoch(s), validation metric Pearson r, weights of epoch 2" in view.curves_note.object
    assert "per-batch losses are kept only" in view.curves_note.object
    curves = view._shown_curves(0)
    assert metric_of(curves) == [0.0, 0.1, 0.2]
    assert best_of(curves) == [2.0]  # best epoch
    live = [{"epoch": 0, "train_loss": 2.0, "valid_loss": 1.5, "valid_metric": 0.05}]
    session.param.update(busy="training", train_history=live, train_batches=[(0.5, 2.1)])
    assert "run in progress" in view.curves_note.object
    assert metric_of(view._shown_curves(0)) == [0.05]
    dec.batches = [(0.5, 1.2), (1.0, 1.1)]  # a run of this session keeps its batches
    session.busy = ""
    assert "per-batch" not in view.curves_note.object and "the thin line: the loss of each batch" in view.curves_note.object
    full = view._shown_curves(0)
    assert list(loss_of(full).values()[0].data["loss"]) == [1.2, 1.1]

    # every frame has the same elements and options: the app draws them as frames of one
    # DynamicMap, which keeps its first frame's (a page opened before its decoder had loaded
    # showed empty axes ever after)
    def look(layout):
        return [(type(v).__name__, v.label, sorted(hv.Store.lookup_options("bokeh", v, "plot").kwargs.items()))
                for panel in layout for v in panel.values()] + [
                sorted(hv.Store.lookup_options("bokeh", panel, "plot").kwargs.items()) for panel in layout]
    assert look(empty) == look(curves) == look(full)
    # and each curve's frame sets the axes' ranges (framewise on the overlays only, they kept the first's)
    assert all(hv.Store.lookup_options("bokeh", v, "norm").kwargs.get("framewise") for panel in full
               for v in panel.values() if isinstance(v, (hv.Curve, hv.Scatter)))
    legend = [v.label for v in loss_of(full).values()
              if hv.Store.lookup_options("bokeh", v, "plot").kwargs.get("show_legend", True) and v.label]
    assert legend == ["train (epoch)", "validation"]  # the thin per-batch line is not in it


def test_data_view_lists_and_opens_run_folders(session, tmp_path, tiny_ws):
    view = DataView(session=session)
    view.__panel__()
    view.list_runs.clicks += 1
    assert "No run folders" in session.alerts[-1][1] and "unitscope train" in session.alerts[-1][1]
    tiny_ws.save(tmp_path / "runs" / "r1")
    view.list_runs.clicks += 1
    assert view.run_path.options == ["runs/r1/"]
    view.run_path.value = "runs/r1/"
    view.open_run.clicks += 1
    assert view.open_run.disabled and view.train_btn.disabled  # while it opens
    assert session._jobs["open"].join(120)
    assert session.decoder.label == "r1 (Deep4)" and not view.open_run.disabled
    assert "r1 (Deep4)" in view.curves_note.object
    tiny_ws.save(tmp_path / "runs" / "r2")
    view.run_path.value = "runs/r2/"  # Enter in the field opens too
    assert session._jobs["open"].join(120) and session.decoder.label == "r2 (Deep4)"


def test_training_curves_of_a_served_page_redraw_on_its_event_loop(session, served_doc):
    view = DataView(session=session)
    view._doc = doc = served_doc
    shown = view.curves_shown
    session.train_history = [{"epoch": 0, "train_loss": 1.0, "valid_loss": 0.9, "valid_metric": 0.3}]
    assert view.curves_shown == shown and len(doc.ticks) == 1  # not from the training thread
    doc.ticks.pop()()
    assert view.curves_shown == shown + 1


def test_the_overview_of_a_served_page_renders_on_its_event_loop(session, served_doc, tiny_probe):
    """A probe worker setting the session's probe does not build the class-fraction panes in its
    own thread (Panel objects made there raced Panel's per-document state): the page's next
    tick does."""
    view = OverviewView(session=session)
    view._doc = doc = served_doc
    before = view._fractions.objects
    session.probe = None
    assert view._fractions.objects == before and len(doc.ticks) == 1
    doc.ticks.pop()()
    assert "Probe not run yet" in _html(view._fractions)
    session.probe = tiny_probe
    assert "Probe not run yet" in _html(view._fractions) and len(doc.ticks) == 1
    doc.ticks.pop()()
    assert "Probe not run yet" not in _html(view._fractions)


def test_the_sidebar_and_overview_say_their_metric_is_the_unpruned_decoders(session):
    """After a prune the sidebar and the Overview showed the unpruned test r (0.970) with no
    word, beside the Prune view's 0.911: both now say what is pruned and its metric."""
    from dashboard.app import build_app
    from dashboard.views.prune import prune_state_of

    app = build_app(session, load_demo=False)
    status, overview = app.sidebar[0], app.views["overview"]
    assert "Pruned" not in status.object and overview._pruned.object == ""
    ps = prune_state_of(session)
    ps.activate()
    assert ps.join() and ps.toggle("conv_2", 3) and ps.join()
    base = session.decoder.predictions()["metric"]
    assert f"<b>Pruned</b><br>1 unit pruned: test Pearson r {ps.metric:.3f} (unpruned {base:.3f})" in status.object
    assert (f"These figures are the unpruned decoder&#x27;s (test Pearson r {base:.3f}). In the Prune view 1 unit "
            f"pruned: {ps.metric:.3f}.") in overview._pruned.object
    assert ps.toggle("conv_2", 3) and ps.join()  # restored: nothing pruned, nothing said
    assert "Pruned" not in status.object and overview._pruned.object == ""


def test_an_address_naming_no_view_says_so_and_where_it_is():
    """``?view=occlusion`` (or ``lesson``) opened the Overview without a word."""
    from dashboard.app import TABS, view_arg_note

    assert all(view_arg_note(v) == "" for v in TABS)
    note = view_arg_note("occlusion")
    assert note.startswith("The address names the view 'occlusion', which UnitScope does not have (band occlusion "
                           "is part of the Overview); the views are data, overview, units") and "Overview is shown" in note
    assert "(the lesson is in the sidebar)" in view_arg_note("Lesson")
    assert "Did you mean 'units'?" in view_arg_note("unts")


def test_build_app_assembles_one_page(session):
    from dashboard.app import VIEW_CLASSES, build_app

    app = build_app(session, load_demo=False)
    assert app.session is session and set(app.views) == set(VIEW_CLASSES)
    tabs = app.main[0][1]
    assert isinstance(tabs, pn.Tabs) and len(tabs) == len(VIEW_CLASSES)
    session.view = "units"
    assert tabs.active == 2
    tabs.active = 0
    assert session.view == "data"
    # no process-wide busy spinner: one page's callbacks must not touch another page's models
    assert app.busy_indicator is None
    # nor Panel's process-wide busy counter, whose read-only toggling lost clicks across threads
    from panel.io.state import state

    before = list(state._busy_counter)
    state._add_busy_event("an-event")
    assert state._busy_counter == before and not state.busy
    state._remove_busy_event("an-event")


def test_launch_builds_the_app(monkeypatch, demo_cache):
    """launch.py imports and builds without serving (the demo comes from a small cached run)."""
    monkeypatch.setenv("UNITSCOPE_CACHE", str(demo_cache))
    import dashboard.decoder as dd

    monkeypatch.setattr(dd, "_PROVIDERS", {})
    root = Path(__file__).resolve().parents[2]
    ns = runpy.run_path(str(root / "launch.py"))
    assert "build_app" in ns
    provider = dd.demo_provider()
    assert provider._job.join(120) and provider.state == "ready", provider.error


def test_signal_browser_envelope_follows_the_range(tiny_decoder):
    from dashboard.views.overview import SignalBrowser

    sb = SignalBrowser(tiny_decoder, window_s=10.0, n_px=200)
    xs, ys = sb.src.data["xs"], sb.src.data["ys"]
    assert len(ys) == 32 and xs[0].max() <= 10.1 and len(xs[0]) <= 2 * 200 + 2
    raw = tiny_decoder.ws.recording.signals.values[0, :2500]
    # the envelope keeps the extremes of the window (channel 0 is drawn at the top offset)
    assert ys[0].max() - sb.offsets[0] == pytest.approx(raw[: len(raw) // 13 * 13].max(), rel=1e-5)
    sb.main.x_range.update(start=20.0, end=60.0)  # as the minimap's box does
    assert sb.src.data["xs"][0].min() >= 19.9 and sb.src.data["xs"][0].max() <= 60.1


def test_signal_browser_colours_roles_marks_events_and_shows_band_envelopes(tiny_decoder):
    """The demo's ground truth in the browser: role channels in their colours, movement onsets
    as dashed lines, and the 60-90 Hz envelope, which follows hand speed on the high-gamma
    channels (the simulator's amplitude code) and not on the noise channels."""
    from bokeh.models import Segment

    from core.deconv.apply import band_envelope
    from dashboard.views import overview
    from dashboard.views.overview import SignalBrowser, signal_browser

    overview._ENVELOPES.clear()  # what is computed below, and when, is part of the test

    rec = tiny_decoder.ws.recording
    roles = rec.signals["role"].values.astype(str)
    sb = SignalBrowser(tiny_decoder, window_s=10.0, n_px=200)
    hg = int(np.flatnonzero(roles == "high_gamma")[0])
    assert sb.colors[hg] == ROLE_COLORS["high_gamma"] and sb.colors[0] == "#1f3b57"  # G01: noise
    assert sb.src.data["color"][hg] == ROLE_COLORS["high_gamma"]
    seg = [r for r in sb.main.renderers if isinstance(r.glyph, Segment)]
    assert len(seg) == 1 and list(seg[0].data_source.data["x0"]) == list(rec.events.onset)
    assert "dashed: events" in sb.main.title.text
    label = "high gamma envelope (60-90 Hz)"
    assert list(sb.options)[:2] == ["signals", label]
    image = sb.mini_src.data["image"][0].copy()
    sb.show(label)
    env = sb.data
    np.testing.assert_allclose(env.mean(axis=1), 0, atol=1e-3)
    np.testing.assert_allclose(env.std(axis=1), 1, atol=1e-3)
    raw = band_envelope(rec.signals.values, rec.sfreq, (60, 90), smooth_s=sb.SMOOTH_S)
    assert np.corrcoef(env[hg], raw[hg])[0, 1] > 0.9999  # z-scored, the same envelope
    speed = rec.target.values
    r = np.array([np.corrcoef(e, speed)[0, 1] for e in env])
    assert r[roles == "high_gamma"].min() > 0.6 and np.abs(r[roles == "noise"]).max() < 0.3  # 0.86 and 0.16 measured
    assert not np.array_equal(sb.mini_src.data["image"][0], image)  # the minimap follows
    assert sb.main.title.text.startswith("High gamma envelope (60-90 Hz), z-scored")
    np.testing.assert_allclose(sb.src.data["ys"][hg].max() - sb.offsets[hg], env[hg, :2500].max(), rtol=1e-5)
    sb.show("signals")
    assert sb.data is sb.raw and sb.main.title.text.startswith("Signals (standardised)")
    other = SignalBrowser(tiny_decoder, window_s=10.0, n_px=200)  # another session: the same envelope
    other.show(label)
    assert other.data is env and not env.flags.writeable
    with pytest.raises(KeyError, match="'alpha' is not one of"):
        sb.show("alpha")
    pane = signal_browser(tiny_decoder)
    pane.choice.value = label  # computed already (above): drawn at once
    assert pane.browser.shown == label and pane.job is None
    pane.choice.value = "beta envelope (15-25 Hz)"  # not yet: computed in a worker, then drawn
    assert pane.job is not None and pane.job.join(60)
    assert pane.browser.shown == "beta envelope (15-25 Hz)"
    r = np.array([np.corrcoef(e, speed)[0, 1] for e in pane.browser.data])  # beta drops in movement
    assert r[roles == "beta"].max() < -0.3 and np.abs(r[roles == "noise"]).max() < 0.3
    assert "Traces coloured by the channels' known roles" in _html(pane)


def test_signal_browser_draws_the_target_and_says_how_an_envelope_follows_it(tiny_decoder):
    """A continuous target (hand speed) is drawn above the channels on their time axis; with an
    envelope shown, the line under the menu gives its r with the target: per role (strongest
    first) on the demo, the channels that follow it most without roles, undefined for a
    constant target, over the known samples only."""
    from types import SimpleNamespace

    from dashboard.views.overview import SignalBrowser, signal_browser

    rec = tiny_decoder.ws.recording
    roles, speed = rec.signals["role"].values.astype(str), rec.target.values.astype(np.float64)
    sb = SignalBrowser(tiny_decoder, window_s=10.0, n_px=200)
    assert sb.layout.children[0] is sb.tgt and sb.tgt.x_range is sb.main.x_range
    assert sb.tgt.title.text == "Hand speed (the decoder's target), z-scored"
    x, y = sb.tgt_src.data["x"], sb.tgt_src.data["y"]
    z = (speed - speed.mean()) / speed.std()
    assert x.max() <= 10.1 and (y.min(), y.max()) == pytest.approx((z[:2500].min(), z[:2500].max()), abs=1e-4)
    sb.main.x_range.update(start=20.0, end=60.0)
    assert sb.tgt_src.data["x"].min() >= 19.9 and sb.tgt_src.data["x"].max() <= 60.1  # follows the channels
    assert sb.r_text() == ""  # the signals themselves: no r
    sb.show("high gamma envelope (60-90 Hz)")
    r = np.array([np.corrcoef(e, speed)[0, 1] for e in sb.data])
    text = sb.r_text()
    assert text.startswith("r of the high gamma envelope with hand speed, mean of each role's channels "
                           f"(whole recording): high gamma {r[roles == 'high_gamma'].mean():+.2f}, ")
    assert text.count(",") == 4 and "-0.00" not in text and "+0.00" not in text  # 4 roles, strongest first
    noise = f"{r[roles == 'noise'].mean():+.2f}".replace("+0.00", "0.00").replace("-0.00", "0.00")
    assert f"noise {noise}" in text
    # no roles: the channels that follow the target most; a target with gaps: its known samples
    plain = rec.signals.drop_vars(["role", "band_lo", "band_hi"])
    gappy = rec.target.copy(data=np.where(np.arange(len(speed)) % 7 == 0, np.nan, speed).astype(np.float32))
    sb = SignalBrowser(SimpleNamespace(ws=SimpleNamespace(recording=SimpleNamespace(signals=plain, target=gappy))),
                       n_px=200)
    label = next(k for k in sb.options if k.startswith("high gamma envelope"))
    sb.show(label)
    ok = np.isfinite(gappy.values)
    r = np.array([np.corrcoef(e[ok], speed[ok])[0, 1] for e in sb.data])
    best = np.argsort(-np.abs(r))[:3]
    assert sb.r_text() == ("r of the high gamma envelope with hand speed, the channels that follow it most "
                           "(whole recording): " + ", ".join(f"{sb.names[i]} {r[i]:+.2f}" for i in best))
    flat = rec.target.copy(data=np.ones(len(speed), np.float32))
    sb = SignalBrowser(SimpleNamespace(ws=SimpleNamespace(recording=SimpleNamespace(signals=plain, target=flat))),
                       n_px=200)
    sb.show(label)
    assert sb.r_text() == "r of the high gamma envelope with hand speed: undefined (the target does not vary)"
    sb = SignalBrowser(SimpleNamespace(ws=SimpleNamespace(recording=SimpleNamespace(signals=plain))), n_px=200)
    assert sb.tgt is None and len(sb.layout.children) == 2  # no target: no plot, no r
    sb.show(label)
    assert sb.r_text() == ""
    pane = signal_browser(tiny_decoder)
    pane.choice.value = "beta envelope (15-25 Hz)"
    assert pane.job is None or pane.job.join(60)
    assert "r of the beta envelope with hand speed" in pane.r_line.object and "beta -0." in pane.r_line.object


def test_signal_browser_pages_through_many_channels(tiny_decoder):
    """306 channels (an MEG system): 32 drawn at first; the minimap's box moves through the
    channels (every channel reachable, none hidden), labels thinned, the title says how many."""
    from types import SimpleNamespace

    from bokeh.models import RangeTool

    from dashboard.views.overview import SignalBrowser

    sig = tiny_decoder.ws.recording.signals.isel(time=slice(0, 2500))
    rng = np.random.default_rng(0)
    many = sig.isel(channel=np.arange(306) % 32).copy(data=rng.standard_normal((306, 2500)).astype(np.float32))
    many = many.assign_coords(channel=[f"MEG{i:04d}" for i in range(306)])
    sb = SignalBrowser(SimpleNamespace(ws=SimpleNamespace(recording=SimpleNamespace(signals=many))), n_px=200)
    assert sb.src.data["channel"] == [f"MEG{i:04d}" for i in range(32)]
    assert sb.main.title.text == "Signals (standardised) · 32 of 306 channels"
    assert sb.mini.title.text.endswith("to move through time and channels")
    tool = next(t for t in sb.mini.tools if isinstance(t, RangeTool))
    assert tool.y_range is sb.main.y_range  # the box selects channels too
    # the box dragged to the last channels: those are drawn, at their own offsets
    span = sb.main.y_range.end - sb.main.y_range.start
    sb.main.y_range.update(start=-3.0, end=-3.0 + span)
    names = sb.src.data["channel"]
    assert names[-1] == "MEG0305" and len(names) == 32
    k = names.index("MEG0300")
    drawn, raw = sb.src.data["ys"][k] - sb.offsets[300], many.values[300, : 2500 // 13 * 13]
    assert (drawn.max(), drawn.min()) == pytest.approx((raw.max(), raw.min()), abs=1e-5)  # its envelope
    # the box dragged over every channel: all drawn, labels thinned to stay legible
    sb.main.y_range.update(start=-1.5, end=3.0 * 305 + 1.5)
    assert len(sb.src.data["channel"]) == 306
    ticks = sb.main.yaxis.ticker.ticks
    assert 10 < len(ticks) < 60 and ticks[0] == sb.offsets[0]
    assert sb.main.title.text == "Signals (standardised)"  # all shown
    assert sb.mini.title.text == "Drag or resize the box to move through time"
    plain = many.drop_vars(["role", "band_lo", "band_hi"])  # no known roles: the standard bands, one colour
    sb = SignalBrowser(SimpleNamespace(ws=SimpleNamespace(recording=SimpleNamespace(signals=plain))), n_px=200)
    assert list(sb.options)[1] == "delta theta envelope (1-7 Hz)" and set(sb.colors) == {"#1f3b57"}
    assert list(sb.options)[-1] == "high gamma envelope (60-112.5 Hz)"  # below Nyquist (125 Hz)


def test_data_prep_controls_are_off_for_the_demo_with_a_reason(session):
    view = DataView(session=session)
    assert session.source == "demo"
    assert all(w.disabled for w in (view.picks, view.all_data, view.l_freq, view.h_freq, view.resample))
    assert "demo recording comes prepared" in view.prep_note.object


def test_data_prep_controls_follow_the_file(session):
    view = DataView(session=session)
    info = {"label": "rec.edf", "path": "/x", "n_chans": 4, "sfreq": 128.0, "duration_s": 60.0,
            "ch_names": ["<img src=x onerror=alert(1)>", "C3", "Cz", "speed"],
            "ch_types_list": ["eeg", "eeg", "eeg", "misc"], "ch_types": {"eeg": 3, "misc": 1}, "events": {}}
    session.param.update(source="file", recording_info=info, target="speed",
                         picks=["<img src=x onerror=alert(1)>", "C3", "Cz"])
    assert not view.picks.disabled and not view.h_freq.disabled
    # labels are escaped (the widget renders them as HTML); values are the raw channel names
    assert view.picks.options == {"&lt;img src=x onerror=alert(1)&gt; (eeg)": "<img src=x onerror=alert(1)>",
                                  "C3 (eeg)": "C3", "Cz (eeg)": "Cz"}
    assert view.picks.value == ["<img src=x onerror=alert(1)>", "C3", "Cz"]
    assert "3 of 4 channels as input" in view.prep_note.object
    view.picks.value = ["Cz"]  # the user removes two channels
    assert session.picks == ["Cz"]
    view.h_freq.value = 70.0
    assert session.h_freq == 70.0
    note = view.prep_note.object
    assert "us-alert-danger" in note and "h_freq=70 Hz is at or above the Nyquist frequency, 64 Hz" in note
    view.picks.value = []
    assert "No input channel picked" in view.prep_note.object
    view.all_data.clicks += 1  # back to every data channel
    assert session.picks == ["<img src=x onerror=alert(1)>", "C3", "Cz"]
    view.h_freq.value = 40.0
    assert "band-pass 0-40 Hz (causal, as the decoder)" in view.prep_note.object and "<img" not in view.prep_note.object


def test_new_target_options_keep_the_sessions_target(session):
    """Listing a file's targets must not turn the widget's first option (a channel) into the target."""
    view = DataView(session=session)
    info = {"label": "m.edf", "path": "/x", "n_chans": 2, "sfreq": 128.0, "duration_s": 60.0,
            "ch_names": ["Fc5.", "C3.."], "ch_types_list": ["eeg", "eeg"], "ch_types": {"eeg": 2},
            "events": {"T1": 3, "T2": 3}}
    session.param.update(source="file", recording_info=info, target="events", picks=["Fc5.", "C3.."])
    assert view.target.options[0] == "Fc5." and view.target.value == "events"
    assert session.target == "events" and session.picks == ["Fc5.", "C3.."]
    view.target.value = "C3.."  # a user's choice still goes through
    assert session.target == "C3.." and session.picks == ["Fc5."]


def test_server_heap_is_frozen_and_long_gc_pauses_are_logged(caplog):
    """What is loaded at start-up is kept out of full collections (they paused the server for
    up to 0.8 s with five sessions), and a long pause still shows in the server log."""
    import gc
    import logging

    from dashboard import app

    app.configure_process()
    assert gc.get_freeze_count() > 10_000  # torch, Bokeh, Panel, MNE ... are frozen
    n = len(gc.callbacks)
    app._log_long_gc_pauses(threshold_s=0.0)  # every collection counts as long here
    try:
        with caplog.at_level(logging.WARNING, logger="dashboard.app"):
            gc.collect(0)
        assert any("garbage collection (generation 0) paused the server" in r.message for r in caplog.records)
    finally:
        del gc.callbacks[n:]


def test_unitscope_log_sets_logger_levels_and_reports_bad_entries(caplog):
    import logging

    from dashboard.app import _log_levels

    names = ["core", "dashboard", "dashboard.prune_state"]
    saved = {n: logging.getLogger(n).level for n in names}
    try:
        _log_levels("dashboard.prune_state=debug")
        assert logging.getLogger("dashboard.prune_state").level == logging.DEBUG
        _log_levels("INFO")
        assert logging.getLogger("core").level == logging.getLogger("dashboard").level == logging.INFO
        with caplog.at_level(logging.WARNING, logger="dashboard.app"):
            _log_levels("core=LOUD, ,dashboard=ERROR")
        assert "'LOUD' is not a logging level" in caplog.text
        assert logging.getLogger("core").level == logging.INFO and logging.getLogger("dashboard").level == logging.ERROR
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)


def test_occlusion_panel_presets_run_and_table(session, monkeypatch):
    from dashboard.views.occlusion import OcclusionPanel, channels_text, occlusion_table

    panel = OcclusionPanel(session=session)
    assert panel.preset.visible and "beta channels, 15-25 Hz" in panel.preset.options
    assert "G06 (beta)" in panel.channels.options and panel.band.end == 125.0
    calls = []
    monkeypatch.setattr(session, "occlude", lambda cases: calls.append(cases))
    panel.preset.value = "beta"
    beta = session.occlusion_presets()["beta"][0]
    assert panel.channels.value == beta and panel.band.value == (15.0, 25.0)
    panel.run_btn.clicks += 1
    assert calls[-1] == {"beta band": (beta, (15.0, 25.0))}
    panel.channels.value = beta[:2]  # no longer the preset: named by its channels
    panel.whole.value = True
    assert panel.band.disabled
    panel.run_btn.clicks += 1
    assert calls[-1] == {"2 channel(s)": (beta[:2], None)}
    panel.roles_btn.clicks += 1
    assert list(calls[-1]) == ["high_gamma band", "beta band", "low_freq band"]
    panel.all_btn.clicks += 1
    assert panel.channels.value == session.decoder.ch_names
    panel.whole.value = False
    panel.band.value = (8.0, 12.0)
    panel.run_btn.clicks += 1
    assert calls[-1] == {"all channels": (session.decoder.ch_names, (8.0, 12.0))}
    # results: newest first, markup in names shown as text, a drop above 0.05 highlighted
    rows = [dict(label="<b>x</b>", channels=["<i>C1</i>"], band=None, metric=0.5, reference=0.9, drop=0.4),
            dict(label="hg", channels=[f"G{i}" for i in range(7)], band=(60.0, 90.0), metric=0.9, reference=0.9,
                 drop=0.0)]
    html = occlusion_table(rows, "Pearson r")
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<i>C1</i>" not in html and "&lt;i&gt;C1&lt;/i&gt;" in html
    assert "-0.400" in html and "us-occ-strong" in html and html.count("us-occ-strong") == 1
    assert "7 channels: G0, G1, G2, …" in html and "60-90 Hz" in html and "all frequencies" in html
    assert channels_text(["a", "b"]) == "a, b"
    session.occlusions = rows
    assert "change (from 0.900)" in panel.result.object
    assert "Nothing removed yet" in occlusion_table([], "Pearson r")


def test_channel_names_are_escaped_in_the_occlusion_channel_choices(session, monkeypatch):
    """The Channels MultiChoice renders its labels as HTML (Choices.js): a channel named
    ``<img src=x onerror=...>`` in a shared run ran its script in every page that opened it."""
    from dashboard.decoder import Decoder
    from dashboard.views.occlusion import OcclusionPanel

    evil = '<img src=x onerror="window.__x=1">'
    names = list(session.decoder.ch_names)
    monkeypatch.setattr(Decoder, "ch_names", property(lambda self: [evil, *names[1:]]))
    panel = OcclusionPanel(session=session)
    assert evil not in panel.channels.options and panel.channels.options[html.escape(evil)] == evil
    assert all("<" not in label for label in panel.channels.options)


def test_occlusion_band_fits_a_recording_with_a_low_nyquist(session, tmp_path, fif):
    """EEG at 128 Hz (EEGMMIDB's rate): the demo's 60-90 Hz band became 60-64 Hz, a sliver at
    Nyquist; it is the beta band, 13-30 Hz, and a band that fits is kept."""
    from core.training import TrainConfig
    from core.workspace import DataSpec, Workspace
    from dashboard.decoder import Decoder
    from dashboard.views.occlusion import OcclusionPanel

    panel = OcclusionPanel(session=session)
    assert panel.band.value == (60.0, 90.0) and panel.band.end == 125.0  # the demo
    path = fif(tmp_path / "eeg128_raw.fif", ["C3", "C4", "Cz"], sfreq=128.0)
    ws = Workspace.create(DataSpec(source=str(path), target="speed"), TrainConfig(model="shallow", n_times=600))
    session.set_decoder(Decoder(ws, label="128 Hz"))
    assert panel.band.end == 64.0 and panel.band.value == (13.0, 30.0)
    panel.band.value = (8.0, 12.0)
    session.set_decoder(Decoder(ws, label="again"))
    assert panel.band.value == (8.0, 12.0)


def test_overview_has_band_occlusion(session):
    view = OverviewView(session=session)
    md = [str(p.object) for p in view.__panel__().select(pn.pane.Markdown)]
    assert any("band occlusion" in m for m in md)


def test_data_view_says_what_train_will_fit(session):
    import json

    from core.workspace import ASSETS_DIR, DEMO_TRAIN
    from dashboard.views.data import SHIPPED_BEST_EPOCH

    view = DataView(session=session)
    assert ("Train fits Deep4 on the demo recording, up to 25 epochs (early stopping on the validation block), "
            "with the shipped decoder's recipe (a constant learning rate): with 23 or more epochs, the shipped "
            "decoder again (test r 0.970)") in view.plan.object
    shipped = json.loads((ASSETS_DIR / "demo-deep4" / "config.json").read_text())
    assert shipped["metrics"]["best_epoch"] + 1 == SHIPPED_BEST_EPOCH == 23
    config = session.train_config()  # the shipped run's recipe but the epochs chosen here
    assert config.to_dict() == {**shipped["train"], "max_epochs": 25} and DEMO_TRAIN["deep4"]["scheduler"] == "none"
    session.param.update(demo_ipsi=0.35, model_kind="shallow", max_epochs=4)
    assert "Train fits Shallow on the demo recording with 35% ipsilateral movements, up to 4 epochs" in view.plan.object
    assert "recipe" not in view.plan.object and session.train_config().scheduler == "cosine"  # TrainConfig's default
    session.param.update(demo_ipsi=0.35, model_kind="deep4")
    assert "recipe" not in view.plan.object and session.train_config().scheduler == "cosine"  # not the shipped data
    session.source = "file"
    assert "the recording you open above" in view.plan.object


def test_the_shipped_demo_probe_is_what_the_current_probing_code_computes():
    """The app shows the shipped probe as the demo decoder's: it must come from this probing code
    (a change to core/probing needs ``python -m dashboard.demo_probe`` to remake it)."""
    from core._files import load_netcdf
    from core.probing._base import code_version

    for name in ("deep4.nc", "deep4-control.nc"):
        ds = load_netcdf(Path(__file__).resolve().parents[2] / "assets" / "demo-probe" / name)
        assert ds.attrs.get("code_version") == code_version(), (
            f"assets/demo-probe/{name} was computed by other probing code: run python -m dashboard.demo_probe")


def test_the_lessons_step_2_is_true_of_the_shipped_probe():
    """Step 2's claims, checked on the demo's shipped decoder and probe: its unit's channel maps
    in the high-gamma role band light high-gamma channels, as for 95% of conv_4's amplitude
    units (5 of their 6 strongest); with the strongest band of each channel four high-gamma channels,
    then 1-4 Hz ones at chance level; conv_2's strongest phase unit reads the 1-4 Hz channels."""
    import xarray as xr

    from core.demo import simulate_reaching
    from dashboard.views.lesson import STEP2_BAND, STEPS
    from dashboard.views.units import unit_table

    path = Path(__file__).resolve().parents[2] / "assets" / "demo-probe" / "deep4.nc"
    ds = xr.load_dataset(path, engine="h5netcdf")
    roles = simulate_reaching(seed=0, duration=30.0).signals["role"].values.astype(str)
    t = unit_table(ds, "conv_4")
    amp_units = t["index"][t["cls"] == "amplitude"]
    best = int(amp_units[np.argmax(t["amp"][t["cls"] == "amplitude"])])
    top = lambda scores, k: roles[np.argsort(-scores)[:k]]
    assert set(top(channel_scores(ds, "conv_4", best, STEP2_BAND)[0], 5)) == {"high_gamma"}
    share = np.mean([(top(channel_scores(ds, "conv_4", int(u), STEP2_BAND)[0], 6) == "high_gamma").sum() >= 5
                     for u in amp_units])
    assert share >= 0.93 and "95% of conv_4's amplitude units" in STEPS[1][3]  # measured: 0.947
    # the strongest band of each channel, on the sensitivity's scale (|band mean r| x sqrt(bins)):
    # the same high-gamma channels first (with plain band means, which let a narrow band's noisier
    # mean win, the 1-4 Hz channels came first for this unit, and no conv_4 amplitude unit had a
    # high-gamma channel first); the 1-4 Hz channels next, at the level the null's maxima reach
    strongest = channel_scores(ds, "conv_4", best, "")[0]
    assert list(top(strongest, 5)) == ["high_gamma"] * 4 + ["low_freq"]
    assert "its first four channels are high-gamma ones" in STEPS[1][3]
    assert strongest.max() == pytest.approx(float(ds["amp_stat_all"].sel(unit=f"conv_4/{best}")), rel=1e-5)
    first = np.mean([top(channel_scores(ds, "conv_4", int(u), "")[0], 1)[0] == "high_gamma" for u in amp_units])
    assert 0.7 <= first <= 0.8 and "three in four of these units have a high-gamma channel first" in STEPS[1][3]
    # measured: 0.745
    null95 = np.percentile(ds["amp_null_all"].values, 95)
    assert round(np.sort(strongest)[-5], 2) == 0.09 and round(null95, 3) == 0.085  # measured: 0.088, 0.0852
    assert "that follow reach 0.09, what chance gives (the permutation null's 95th percentile, 0.085)" in STEPS[1][3]
    t2 = unit_table(ds, "conv_2")
    phase_units = t2["cls"] == "phase"
    u2 = int(t2["index"][phase_units][np.argmax(t2["phase"][phase_units])])
    assert set(top(channel_scores(ds, "conv_2", u2, "1-4")[1], 4)) == {"low_freq"}
    control = xr.load_dataset(path.with_name("deep4-control.nc"), engine="h5netcdf")
    ratio = np.median(t["amp"]) / np.median(unit_table(control, "conv_4")["amp"])
    assert round(ratio, 1) == 2.5 and "amplitude sensitivity 2.5-fold (median)" in STEPS[1][3]  # measured 2.53


@pytest.mark.slow
def test_the_lessons_step_1_is_true_of_the_demo():
    """Step 1's numbers on the full demo: the beta channels' beta envelope (as the signal
    browser smooths it) falls with hand speed (r -0.61), the high-gamma one rises (0.87); G14's
    beta-band kernel on the test block drops at the onset (half its dip within 0.1 s) and stays
    down about 1 s, and explains more than a noise channel's. (It said "a dip 0.6 s after", the
    kernel's noisy minimum; the drop starts at the onset.)"""
    from types import SimpleNamespace

    from core.deconv.apply import EventDeconvolution, band_envelope
    from core.workspace import Workspace
    from dashboard.views.lesson import STEPS
    from dashboard.views.overview import SignalBrowser

    ws = Workspace.demo()
    sig, speed = ws.recording.signals, ws.recording.target.values
    roles = sig["role"].values.astype(str)
    browser = SignalBrowser(SimpleNamespace(ws=ws), n_px=200)
    for role, band, said in (("beta", (15, 25), "-0.61"), ("high_gamma", (60, 90), "0.88")):
        env = band_envelope(sig.values[roles == role], ws.recording.sfreq, band, smooth_s=SignalBrowser.SMOOTH_S)
        r = np.mean([np.corrcoef(e, speed)[0, 1] for e in env])
        assert f"{r:.2f}" == said and f"r {said}" in STEPS[0][3]  # (it said 0.87; 0.882 measured)
        browser.show(f"{role.replace('_', ' ')} envelope ({band[0]}-{band[1]} Hz)")  # the page says the same
        assert f"{role.replace('_', ' ')} {r:+.2f}" in browser.r_text()
    eng = EventDeconvolution(ws.model, ws.recording, block="test", blocks=ws.blocks)
    beta, noise = eng.run("channel:G14:15-25"), eng.run("channel:G01:15-25")
    k = beta["kernels"].values[0]
    assert roles[list(sig["channel"].values).index("G14")] == "beta"
    down = beta["lag"].values[k <= k.min() / 2]  # where the kernel is below half its dip
    assert k.min() < -2 * max(k.max(), 0) and -0.1 <= down.min() <= 0.1 and 0.8 <= down.max() <= 1.3
    assert beta.attrs["r2"] > 2 * noise.attrs["r2"] and "drops at each movement onset and stays down for about 1 s" \
        in STEPS[0][3]


@pytest.mark.slow
def test_the_lessons_step_3_is_true_of_the_demo(tmp_path, capsys):
    """Step 3's pruning numbers for conv_4 of the shipped decoder (test r): ranked by each
    unit's own drop on the validation block, the 10% most important take it from 0.97 to 0.28
    and the 10% least important to 0.56, below 10% at random (0.91); ranked by either
    sensitivity (the shipped probe) the 10% most sensitive take it to 0.91, as 10% at random do
    (0.91), the least sensitive to 0.95; at 30% the least sensitive cost more (0.80 against 0.91)."""
    import shutil

    import xarray as xr

    from core.cli import main
    from dashboard.views.lesson import STEPS

    assets = Path(__file__).resolve().parents[2] / "assets"
    run = shutil.copytree(assets / "demo-deep4", tmp_path / "demo")
    curves = {}
    for by, extra in (("ablation", []), ("either", ["--scores", str(assets / "demo-probe" / "deep4.nc")])):
        out = tmp_path / f"{by}.nc"
        assert main(["prune", str(run), "--curve", "--layer", "conv_4", "--by", by, "--fractions", "0,0.1,0.2,0.3",
                     "--orders", "most,least,random", "--out", str(out), "--threads", "1"] + extra) == 0
        with xr.open_dataset(out, engine="h5netcdf") as ds:
            curves[by] = {str(o): np.round(ds["metric"].sel(order=o).values.ravel(), 2) for o in ds["order"].values}
    capsys.readouterr()
    text = STEPS[2][3]
    assert curves["ablation"]["most"][:2].tolist() == [0.97, 0.28] and "from 0.97 to 0.28" in text
    assert curves["ablation"]["least"][1] == 0.56 and "cost more than 10% at random (0.56)" in text
    assert curves["ablation"]["random"][1] == 0.91
    assert curves["either"]["most"][1] == 0.91 and "the 10% most sensitive to 0.91" in text
    assert curves["either"]["random"][1] == 0.91 and "chosen at random (0.91)" in text
    most, least = curves["either"]["most"], curves["either"]["least"]
    assert least[1] == 0.95 and (least[3], most[3]) == (0.80, 0.91)  # README: 0.95; 0.80 against 0.91 at 30%
    assert least[2] < most[2]  # README: from 20% pruned the least sensitive cost more


def test_the_overview_says_where_the_decoders_weights_come_from():
    from types import SimpleNamespace

    from dashboard.views.overview import provenance

    trained = SimpleNamespace(metrics={"best_epoch": 1}, history=[{}, {}, {}])
    assert provenance(trained) == "; trained 3 epoch(s), weights of epoch 2"
    imported = SimpleNamespace(metrics={"weights_from": "/lab/models/deep4_state.pt"}, history=[])
    assert provenance(imported) == "; weights imported from deep4_state.pt"
    assert provenance(SimpleNamespace(metrics={}, history=[])) == ""


def test_lesson_opens_each_step_on_the_demo_only(session, tiny_decoder, tiny_probe, monkeypatch):
    from dashboard.views.lesson import STEPS, LessonView
    from dashboard.views.units import unit_table

    lesson = LessonView(session=session)
    assert not lesson.column.visible  # a decoder other than the demo's: its numbers would be wrong
    monkeypatch.setattr(tiny_decoder, "demo_model", "deep4", raising=False)
    session.set_decoder(tiny_decoder, probe=tiny_probe, probe_source="test")
    assert lesson.column.visible
    lesson.buttons[1].clicks += 1  # step 2: Units, conv_4, its most amplitude-sensitive amplitude unit
    t = unit_table(tiny_probe, "conv_4")
    assert (session.view, session.layer) == ("units", "conv_4") and session.channel_map_band == "60-90"
    amp_units = t["cls"] == "amplitude"
    best = t["index"][amp_units][np.argmax(t["amp"][amp_units])] if amp_units.any() else t["index"][np.argmax(t["amp"])]
    assert session.unit == int(best)
    assert lesson.buttons[1].variant == "solid" and "high-gamma channels" in lesson.text.object
    lesson.buttons[2].clicks += 1
    assert (session.view, session.layer) == ("prune", "conv_4") and "ablation" in lesson.text.object
    lesson.buttons[3].clicks += 1
    assert session.view == "data" and session.layer == "conv_4" and lesson.step == len(STEPS) - 1
    lesson.buttons[0].clicks += 1
    assert session.view == "overview" and [b.variant for b in lesson.buttons].count("solid") == 1
    assert not lesson.note.visible


def test_the_lesson_stays_for_the_decoder_its_step_4_trains(session, tiny_decoder, tiny_probe, monkeypatch):
    """Step 4 trains a decoder on the demo recording, then says to go on with it: the lesson
    (it vanished with the shipped decoder) stays, saying whose numbers steps 1-3 give; a
    decoder of another recording has no lesson."""
    import dataclasses

    from dashboard.views.lesson import STEPS, LessonView

    monkeypatch.setattr(tiny_decoder, "demo_model", "deep4", raising=False)
    session.set_decoder(tiny_decoder, probe=tiny_probe, probe_source="test")
    lesson = LessonView(session=session)
    lesson.buttons[3].clicks += 1
    assert lesson.column.visible and not lesson.note.visible
    monkeypatch.setattr(tiny_decoder, "demo_model", None)  # as one trained in the session
    session.decoder_version += 1
    assert lesson.column.visible and lesson.note.visible and "shipped Deep4" in lesson.note.object
    assert "band occlusion again" in lesson.text.object  # step 4's instruction still there
    assert lesson.step == len(STEPS) - 1
    # steps 1-3 with that decoder: said, with the way back, and no view switched (step 2 had opened
    # a Shallow decoder's conv_time_spat/0 under "conv_4's amplitude units")
    session.view = "data"
    lesson.buttons[1].clicks += 1
    assert session.view == "data" and lesson.step == 1 and lesson.back.visible
    assert "Step 2 is written for the shipped Deep4" in lesson.text.object
    back = []
    monkeypatch.setattr(session, "back_to_demo", lambda: back.append(1))
    lesson.back.clicks += 1
    assert back == [1] and not lesson.back.visible
    monkeypatch.setattr(tiny_decoder.ws, "spec", dataclasses.replace(tiny_decoder.ws.spec, source="/lab/s01.fif"))
    session.decoder_version += 1
    assert not lesson.column.visible


def test_signal_browser_shades_stretches_marked_bad(tiny_decoder):
    import json
    from types import SimpleNamespace

    from bokeh.models import Quad

    from core.recording import Recording
    from dashboard.views.overview import SignalBrowser

    rec = tiny_decoder.ws.recording
    assert SignalBrowser(tiny_decoder, window_s=10.0, n_px=200).bad_spans.shape == (0, 2)
    signals = rec.signals.copy()
    signals.attrs = dict(rec.signals.attrs, bad_segments=json.dumps([[5.0, 2.0, "BAD_muscle"], [30.0, 1.0, "EDGE x"]]))
    marked = SimpleNamespace(ws=SimpleNamespace(recording=Recording(signals, rec.target, rec.events)))
    sb = SignalBrowser(marked, window_s=10.0, n_px=200)
    t0 = float(rec.signals["time"].values[0])
    for fig in (sb.main, sb.mini):
        quads = [r for r in fig.renderers if isinstance(r.glyph, Quad)]
        assert len(quads) == 1
        assert list(quads[0].data_source.data["left"]) == [t0 + 5.0, t0 + 30.0]
        assert list(quads[0].data_source.data["right"]) == [t0 + 7.0, t0 + 31.0]
    assert "red: marked bad" in sb.main.title.text


def test_data_view_offers_the_recordings_of_a_bids_folder_or_an_archive(session):
    view = DataView(session=session)
    base = {"n_chans": 1, "ch_names": ["C3"], "ch_types_list": ["eeg"], "ch_types": {"eeg": 1}, "sfreq": 100.0,
            "duration_s": 10.0, "events": {}, "path": "/x"}
    assert not view.bids_pick.visible and not view.archive_pick.visible
    session.recording_info = {**base, "label": "up/b.fif", "archive": "up.zip",
                              "archive_recordings": ["up/a.fif", "up/b.fif"]}
    assert view.archive_pick.visible and view.archive_pick.options == ["up/a.fif", "up/b.fif"]
    assert view.archive_pick.value == "up/b.fif" and not view.bids_pick.visible
    chosen = {"label": "sub-02_run-1 (eeg)", "entities": {"subject": "02", "run": "1"}, "path": "sub-02/x.vhdr"}
    session.recording_info = {**base, "label": "study/", "bids_chosen": chosen,
                              "bids_recordings": [{"label": "sub-01_run-1 (eeg)", "entities": {"subject": "01"}}, chosen]}
    assert view.bids_pick.visible and view.bids_pick.value == "sub-02_run-1 (eeg)" and not view.archive_pick.visible
    assert "sub-02_run-1 (eeg): sub-02/x.vhdr" in view.info.object


def test_prediction_lines_break_where_windows_were_left_out():
    from dashboard.views.overview import prediction_plot, with_gaps

    t = np.r_[np.arange(0, 1, 0.01), np.arange(3, 4, 0.01)]  # windows of 1-3 s left out
    y = np.ones_like(t)
    tt, yy = with_gaps(t, y)
    assert len(tt) == len(t) + 1 and np.isnan(yy).sum() == 1 and tt[100] == pytest.approx(1.995)
    assert np.all(np.diff(tt) > 0)
    assert with_gaps(np.arange(0, 1, 0.01), y[:100])[1].tolist() == y[:100].tolist()  # no gap: unchanged
    plot = prediction_plot({"task": "regression", "time": t, "true": y, "pred": y, "metric": 1.0})
    assert plot is not None  # builds with the NaN breaks (downsampling keeps them)


def test_the_dropper_lets_go_of_files_the_session_saved(session):
    view = DataView(session=session)
    session.source = "upload"  # the dropper is made when Upload is chosen
    assert view.dropper is not None
    view.dropper.value = {"rec.vhdr": "[Common Infos]\nDataFile=rec.eeg\n"}  # text arrives as str
    assert view.dropper.value == {} and view.dropper.mime_type == {}
    assert (session._upload_dir / "rec.vhdr").read_text().startswith("[Common Infos]")
    job = session._jobs["inspect"]
    assert job.join(60)
    assert "rec.vhdr keeps its data in rec.eeg" in session.alerts[-1][1]


def test_a_confusion_matrix_says_how_many_test_trials_it_rests_on():
    """Few test trials (a short recording's labels): the title counts them and says the number is
    very uncertain; from 20 trials on it only counts them."""
    from dashboard.views.overview import prediction_plot

    few = {"task": "classification", "classes": ["T1", "T2"], "true": [0, 1, 1], "pred": [0, 0, 1], "metric": 0.75}
    title = prediction_plot(few).get(0).opts.get().kwargs["title"]  # the heat map under its labels
    assert title == ("3 test trials: balanced accuracy = 0.750\n(fewer than 20 trials: very uncertain)"
                     "\n(not clearly above chance, 1/2 = 0.500, one-sided binomial p = 0.5 on 3 trials)")
    many = dict(few, true=[0, 1] * 10, pred=[0, 1] * 10, metric=1.0)
    assert prediction_plot(many).get(0).opts.get().kwargs["title"] == "20 test trials: balanced accuracy = 1.000"


def test_a_confusion_matrix_orders_codes_as_numbers_and_says_chance():
    """Trigger codes as classes (an Elekta FIF's 1 ... 128, which the decoder holds in string order):
    both axes run 1, 2, 16, 128, not 1, 128, 16, 2; a balanced accuracy at or below chance says so,
    and so does a Pearson r at or below 0."""
    import holoviews as hv

    from core.metrics import balanced_accuracy
    from dashboard.views.overview import prediction_plot

    true = np.repeat(np.arange(4), 6)
    pred = (true + 1) % 4  # every trial called the next class
    cm = {"task": "classification", "classes": ["1", "128", "16", "2"], "true": true, "pred": pred,
          "metric": balanced_accuracy(true, pred)}
    plot = hv.render(prediction_plot(cm))
    assert list(plot.x_range.factors) == list(plot.y_range.factors) == ["1", "2", "16", "128"]
    text = [r for r in plot.renderers if type(r.glyph).__name__ == "Text"][0].data_source.data
    # the counts read on every cell: white on the dark ones (6 trials), black on the pale ones (0)
    assert {(str(n), c) for n, c in zip(text["trials"], text["text_color"])} == {("6", "white"), ("0", "black")}
    # hovering a cell gives its share of the true class's trials (the diagonal's: each class's recall)
    bar = [r for r in plot.right if type(r).__name__ == "ColorBar"][0]
    assert bar.ticker.min_interval == 1  # whole trials on the colour bar (it ticked 0.5, 1.5, 2.5)
    hover = [t for t in plot.tools if type(t).__name__ == "HoverTool"][0]
    assert ("of the true class's trials", "@share{0}%") in hover.tooltips
    heat = [r for r in plot.renderers if "share" in r.data_source.data][0].data_source.data
    shares = {(t, p): float(v) for t, p, v in zip(heat["true"], heat["predicted"], heat["share"])}
    # every trial called the next class in the decoder's order (1, 128, 16, 2): all "1" trials "128"
    assert shares[("1", "128")] == 100.0 and shares[("1", "1")] == 0.0 and shares[("2", "1")] == 100.0
    title = prediction_plot(cm).get(0).opts.get().kwargs["title"]
    assert title == "24 test trials: balanced accuracy = 0.000\n(at or below chance, 1/4 = 0.250)"
    good = dict(cm, pred=true, metric=1.0)
    assert prediction_plot(good).get(0).opts.get().kwargs["title"] == "24 test trials: balanced accuracy = 1.000"
    t = np.arange(50.0)
    reg = {"task": "regression", "time": t, "true": np.sin(t), "pred": -np.sin(t), "metric": -1.0}
    fig = hv.render(prediction_plot(reg))
    assert fig.title.text == "Test block: Pearson r = -1.000 (at or below chance, r = 0)"
    assert fig.legend[0] in fig.above  # above the traces, not over them


def test_the_upload_limit_is_stated_as_set(session, monkeypatch):
    """UNITSCOPE_MAX_UPLOAD_MB=200 (the default) was shown as 'Files up to 210 MB' (MiB / 1e6)."""
    view = DataView(session=session)
    assert "Files up to 200 MB" in _html(view.__panel__())
    monkeypatch.setenv("UNITSCOPE_MAX_UPLOAD_MB", "50")
    assert "Files up to 50 MB" in _html(DataView(session=session).__panel__())


def test_the_training_curves_epoch_axis_follows_the_decoder(session):
    """After a decoder of 29 epochs, one of 4: the epoch axis of both plots spans 1-4 (in one
    Layout it kept 1-29, the new curves squeezed into its first seventh)."""
    from bokeh.models import Plot

    view = DataView(session=session)
    view.__panel__()
    history = lambda n: [{"epoch": i, "train_loss": 1.0 / (i + 1), "valid_loss": 1.0 / (i + 1),  # noqa: E731
                          "valid_metric": i / n} for i in range(n)]
    session.param.update(busy="training", train_history=history(29))
    plots = [hv.renderer("bokeh").get_plot(pane.object) for pane in view.curves]
    ranges = lambda: [(f.x_range.start, f.x_range.end) for p in plots for f in p.state.select({"type": Plot})]  # noqa: E731
    assert ranges() == [(1, 29), (1, 29)]
    session.train_history = history(4)
    for pane, plot in zip(view.curves, plots):
        plot.refresh()
    assert ranges() == [(1, 4), (1, 4)]


def test_before_a_decoder_the_views_say_it_comes_and_offer_nothing_to_press(tmp_path, monkeypatch, tiny_decoder,
                                                                          tiny_probe):
    """While the demo decoder loads: the Units view said "Probe not run yet: press Run probe" of
    a disabled button and of the shipped probe on its way, and "All channels" in the band
    occlusion raised AttributeError in the server log."""
    from dashboard.views.occlusion import OcclusionPanel

    monkeypatch.setenv("UNITSCOPE_DATA_ROOT", str(tmp_path))
    s = Session()
    try:
        units, occ = UnitsView(session=s), OcclusionPanel(session=s)
        page = units.__panel__()
        shown = " ".join(_html(part) for part, rule in units.shown.rules if rule() and part in page.objects)
        assert "No decoder yet: the unit maps appear with it" in shown and "Press Run probe" not in shown
        assert "comes with the decoder" in units.probe_text.object and units.run_btn.disabled
        assert occ.all_btn.disabled
        occ._choose_all()
        assert occ.channels.value == []
        s.set_decoder(tiny_decoder, probe=tiny_probe, probe_source="test")
        assert "No decoder yet" not in " ".join(_html(part) for part, rule in units.shown.rules if rule())
        assert not occ.all_btn.disabled
        occ.all_btn.clicks += 1
        assert occ.channels.value == list(tiny_decoder.ch_names)
    finally:
        s.close()


def test_a_page_closed_mid_send_is_one_debug_line_not_two_tracebacks(caplog):
    """asyncio logged "Task exception was never retrieved" with two tracebacks when a page
    closed while Panel sent it messages; other errors of the loop still reach its handler."""
    import asyncio
    import logging

    from tornado.websocket import WebSocketClosedError

    from dashboard.app import _quiet_closed_pages

    loop = asyncio.new_event_loop()
    try:
        async def install():
            _quiet_closed_pages()

        loop.run_until_complete(install())
        with caplog.at_level(logging.DEBUG):
            loop.call_exception_handler({"message": "Task exception was never retrieved",
                                         "exception": WebSocketClosedError()})
            assert [r.levelno for r in caplog.records] == [logging.DEBUG]
            assert "a page closed while messages were sent to it" in caplog.records[0].getMessage()
            caplog.clear()
            loop.call_exception_handler({"message": "Task exception was never retrieved",
                                         "exception": ValueError("a real error")})
            assert [r.levelno for r in caplog.records] == [logging.ERROR]
            assert caplog.records[0].exc_info[0] is ValueError
    finally:
        loop.close()


def test_a_worker_never_takes_a_page_s_document_for_its_own(monkeypatch):
    """Panel's "may this thread change the page's models now?" reads the current document
    once (dashboard.app._one_look_at_the_document): a worker that saw the page's document
    current, then not (the server's loop left the page's callback in between), was let
    through and changed the models without the document lock (RuntimeError in a CI run)."""
    import threading

    from bokeh.document import Document
    from panel.io.state import _state, state

    from dashboard.app import configure_process

    configure_process()
    doc = Document()
    monkeypatch.setitem(_state._thread_id_, doc, threading.get_ident())  # the page's thread: this one
    readings = []

    def current(self):  # the loop runs a callback of the page, and leaves it after one reading
        readings.append(1)
        return doc if len(readings) == 1 else None

    monkeypatch.setattr(_state, "curdoc", property(current))
    seen = {}
    worker = threading.Thread(target=lambda: seen.update(worker=state._unblocked(doc)))
    worker.start()
    worker.join()
    assert seen == {"worker": False}
    # the page's own thread while its document is current: at once, as Panel says
    monkeypatch.setattr(_state, "curdoc", property(lambda self: doc))
    assert state._unblocked(doc) is True
    worker = threading.Thread(target=lambda: seen.update(worker=state._unblocked(doc)))
    worker.start()
    worker.join()
    assert seen == {"worker": False}  # another thread: on the page's next tick


def test_a_worker_s_scheduling_never_changes_the_document_the_loop_runs_for():
    """Bokeh's current document was one stack for the process: a worker that scheduled a change
    for page A while the loop ran a callback of page B popped the loop's entry, and the rest of
    B's callback ran with A as the current document (dashboard.app._curdoc_per_thread). The
    worker is held inside its push and pop by a change listener, as a socket write held it."""
    import threading
    import weakref

    import bokeh.io.doc as bokeh_doc
    from bokeh.document import Document
    from bokeh.document.callbacks import invoke_with_curdoc

    from dashboard.app import configure_process

    configure_process()

    class Context:  # stands for a served page's session context
        session = None

    contexts = Context(), Context()
    a, b = Document(), Document()
    a._session_context, b._session_context = weakref.ref(contexts[0]), weakref.ref(contexts[1])
    a.title, b.title = "page A", "page B"
    pushed, go_on = threading.Event(), threading.Event()

    def slow_listener(event):  # the worker's scheduling, held between its push and its pop
        if type(event).__name__ == "SessionCallbackAdded" and threading.current_thread().name == "worker":
            seen["the worker's own"] = bokeh_doc.curdoc().title
            pushed.set()
            go_on.wait(10)

    a.on_change(slow_listener)
    worker = threading.Thread(target=lambda: a.add_next_tick_callback(lambda: None), name="worker")
    seen = {}

    def callback_of_b():  # the loop runs a callback of page B meanwhile
        seen["at start"] = bokeh_doc.curdoc().title
        go_on.set()
        worker.join(10)
        seen["after the worker's pop"] = bokeh_doc.curdoc().title

    worker.start()
    assert pushed.wait(10)
    invoke_with_curdoc(b, callback_of_b)
    assert seen == {"the worker's own": "page A", "at start": "page B", "after the worker's pop": "page B"}
    assert len(bokeh_doc._PATCHED_CURDOCS) == 0  # every push popped, on its own thread
    # a worker sees no page's document while the loop runs one's callback
    inside = {}

    def look():
        inside["worker"] = bokeh_doc.curdoc()._session_context

    def callback_of_a():
        t = threading.Thread(target=look)
        t.start()
        t.join(10)

    invoke_with_curdoc(a, callback_of_a)
    assert inside == {"worker": None}  # (curstate's document, never served)
