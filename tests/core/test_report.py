"""The HTML report: self-contained (no script, no link out), escaped, right numbers, atomic writes."""
from __future__ import annotations

import base64
import copy
import re
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
import xarray as xr

from core._validation import UnitScopeError
from core.metrics import score
from core.pruning import MaskSet
from core.report import ReportContent, render_report, write_report


@pytest.fixture(scope="module")
def ws():
    from core.training import TrainConfig
    from core.workspace import DataSpec, Workspace

    return Workspace.create(DataSpec(duration=60.0), TrainConfig(max_epochs=1))


def fake_probe(ws, ch_names=None) -> xr.Dataset:
    """A probe-shaped result: unit u of each layer has class CLASSES[u % 4]."""
    from core.probing import CLASSES

    units = [(li.name, j) for li in ws.layers for j in range(li.n_units)]
    rng = np.random.default_rng(0)
    n, C, F = len(units), ws.recording.n_chans, 6
    freq = np.linspace(1, 100, F)
    return xr.Dataset(
        {"amp_corr": (("unit", "channel", "freq"), rng.standard_normal((n, C, F)) * 0.1),
         "phase_corr": (("unit", "channel", "freq"), rng.standard_normal((n, C, F)) * 0.1),
         "amp_stat_all": ("unit", rng.random(n)), "phase_stat_all": ("unit", rng.random(n)),
         "unit_class_all": ("unit", [CLASSES[j % 4] for _, j in units])},
        coords={"unit": [f"{l}/{j}" for l, j in units], "layer": ("unit", [u[0] for u in units]),
                "index": ("unit", [u[1] for u in units]), "channel": ch_names or ws.recording.ch_names,
                "freq": freq, "band": ["low", "high"], "band_lo": ("band", [1.0, 30.0]),
                "band_hi": ("band", [30.0, 100.0])})


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data):
        self.text.append(data)


def _parse(text: str) -> _Collector:
    p = _Collector()
    p.feed(text)
    return p


def test_report_is_self_contained_and_has_every_section(ws, tmp_path):
    masks = MaskSet.for_model(ws.model).prune("conv_3", [0, 4, 8])
    content = ReportContent.from_workspace(ws, masks=masks, probe=fake_probe(ws), control=fake_probe(ws),
                                           selected_units=["conv_3/4", "conv_2/1", "conv_9/1"],
                                           notes=["A note."], title="Lab session")
    text = render_report(content)
    parsed = _parse(text)
    assert "script" not in parsed.tags and "link" not in parsed.tags and "iframe" not in parsed.tags
    for name, value in parsed.attrs:
        if name in ("src", "href"):
            assert value.startswith("data:image/png;base64,"), value[:40]
    assert not re.search(r"https?://", text)
    for heading in ("Recording", "Decoder and metric", "Layer summaries", "Selected units", "Pruning"):
        assert f"<h2>{heading}</h2>" in text
    imgs = [v for n, v in parsed.attrs if n == "src"]
    assert len(imgs) == 1 + 1 + 2  # prediction, class fractions, two unit maps
    for uri in imgs:
        assert base64.b64decode(uri.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Not in the probe result: conv_9/1" in text
    assert "conv_3</td><td>3</td><td>0, 4, 8" in text
    # the layer table reports the probe's classes: unit j has class CLASSES[j % 4]
    assert "amplitude 25%" in text and "<td>conv_4</td><td>200</td>" in text


def test_metric_change_is_the_masked_decoders(ws):
    masks = MaskSet.for_model(ws.model).prune("conv_2", list(range(0, 50, 3)))
    content = ReportContent.from_workspace(ws, masks=masks)
    model = copy.deepcopy(ws.model).eval()
    X, y = ws.eval_set("test")
    with torch.no_grad():
        before = score(ws.task, model(torch.as_tensor(X))[:, 0].numpy(), y)
        with masks.apply(model):
            after = score(ws.task, model(torch.as_tensor(X))[:, 0].numpy(), y)
    assert content.metric_before == pytest.approx(before, abs=1e-4)
    assert content.metric_after == pytest.approx(after, abs=1e-4)
    text = render_report(content)
    assert f"{after:.3f}" in text and f"{before:.3f}" in text and f"{after - before:.3f}" in text
    assert content.pruned == {"conv_2": list(range(0, 50, 3))}


def test_text_from_files_is_escaped(ws):
    names = ["<script>alert(1)</script>"] + [f"<b>C{i}</b>" for i in range(ws.recording.n_chans - 1)]
    content = ReportContent(title="<i>t</i>", recording={"ch_names": names, "n_chans": len(names), "source": "x&y"},
                            probe=fake_probe(ws, names), selected_units=["conv_2/0"])
    text = render_report(content)
    assert "<script>" not in text and "<b>C1</b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "x&amp;y" in text and "&lt;i&gt;t&lt;/i&gt;" in text


def test_kernels_and_curves_sections_draw_the_results():
    lag = np.linspace(-0.5, 1.5, 20)
    k = xr.Dataset({"kernels": (("kernel", "lag"), np.sin(lag)[None]), "codes": (("event", "kernel"), [[1.0], [2.0]])},
                   coords={"kernel": ["movement_onset"], "lag": lag, "event": [0, 1], "value": ("event", [0.2, 0.4])},
                   attrs={"signal": "output", "r2": 0.9, "masks": "{}"})
    curves = xr.Dataset({"metric": (("order", "fraction"), [[0.9, 0.1], [0.9, 0.8]])},
                        coords={"order": ["most", "least"], "fraction": [0.0, 1.0]}, attrs={"layers": "conv_3"})
    text = render_report(ReportContent(kernels=[(k, k)], curves=[curves], value_label="peak speed"))
    assert "<h2>Event-locked kernels (DUNL)</h2>" in text and "against peak speed" in text
    assert "Pruning curves of conv_3" in text
    assert text.count("<img") == 2
    assert "dashed: before the last change" in text and "no unit pruned" in text and "mask {}" not in text
    # no change made, and events whose values do not vary (a file's annotations of one length)
    same = k.assign_coords(value=("event", [5.12, 5.12]), onset=("event", [10.0, 30.0]))
    same = same.assign_attrs(masks='{"conv_4": [3]}')
    text = render_report(ReportContent(kernels=[(same, None)], value_label="event value"))
    assert "against event onset (the events&#x27; values do not vary)" in text and "against event value" not in text
    assert "dashed" not in text and 'mask {&quot;conv_4&quot;: [3]}' in text


def test_write_report_is_atomic_and_reports_unwritable_folders(tmp_path):
    path = write_report(ReportContent(title="x"), tmp_path / "sub" / "r.html")
    assert path.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in path.parent.iterdir()] == ["r.html"]  # no temporary file left
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    with pytest.raises(UnitScopeError, match="Cannot write the report to the folder .*afile"):
        write_report(ReportContent(), blocker / "r.html")
    with pytest.raises(UnitScopeError, match="is a folder"):
        write_report(ReportContent(), tmp_path)
    with pytest.raises(UnitScopeError, match="Cannot write the report to the folder '/proc/"):
        write_report(ReportContent(), "/proc/unitscope-test/r.html")


def test_a_broken_section_does_not_lose_the_report(ws):
    bad = xr.Dataset({"unit_class_all": ("unit", ["amplitude"])}, coords={"unit": ["conv_2/0"]})
    text = render_report(ReportContent(decoder={"layers": [{"name": "conv_2", "n_units": 50, "receptive_field": 9}]},
                                       probe=bad))
    assert "could not be drawn" in text and "<h2>" not in text.split("could not be drawn")[1]


def test_cli_writes_a_report(ws, tmp_path, capsys):
    from core.cli import main

    run_dir = ws.save(tmp_path / "run")
    fake_probe(ws).to_netcdf(run_dir / "probe.nc", engine="h5netcdf")
    MaskSet.for_model(ws.model).prune("conv_4", [1, 2]).save(tmp_path / "mask.json")
    out = tmp_path / "out" / "report.html"
    assert main(["report", str(run_dir), "--out", str(out), "--units", "conv_4/1", "--mask",
                 str(tmp_path / "mask.json")]) == 0
    text = out.read_text()
    assert "conv_4/1: class phase" in text and "conv_4</td><td>2</td><td>1, 2" in text
    assert "Event-locked kernels" not in text
    # a deconvolution written beside the run by 'unitscope deconv' is reported (no refit)
    assert main(["deconv", str(run_dir), "--signal", "channel:G03:60-90", "--epochs", "2", "--block", "all"]) == 0
    assert (run_dir / "deconv_channel_G03_60-90_all.nc").is_file()  # not the test block's file
    assert not (run_dir / "deconv_channel_G03_60-90.nc").exists()
    assert main(["report", str(run_dir), "--out", str(out)]) == 0
    assert "channel:G03:60-90: kernels locked to movement_onset" in out.read_text()
    assert main(["report", str(run_dir), "--units", "conv_9/1"]) == 2
    assert "Unknown unit 'conv_9/1'" in capsys.readouterr().err
    (tmp_path / "other.json").write_text(MaskSet({"kind": "shallow", "units": {"conv_time_spat": 40}}).to_json())
    assert main(["report", str(run_dir), "--mask", str(tmp_path / "other.json")]) == 2
    assert "This mask was saved for" in capsys.readouterr().err


def test_a_probe_of_other_weights_is_not_reported_as_this_decoders(ws, tmp_path, capsys):
    """A run folder trained again keeps its old probe.nc: its classes belong to other units."""
    from core import __version__
    from core.cli import main
    from core.probing._base import code_version, model_hash

    run_dir = ws.save(tmp_path / "run")
    probe = fake_probe(ws).assign_attrs(model_hash=model_hash(ws.model), code_version=code_version())
    out = tmp_path / "r.html"
    for attrs, said, classes in (({}, "", True),
                                 ({"code_version": "0123456789ab"}, "was computed by other probing code", True),
                                 ({"model_hash": "f" * 16}, "probe.nc was made for the weights trained before: left "
                                  f"out of the report (unitscope probe {run_dir} remakes it)", False)):
        probe.assign_attrs(**attrs).to_netcdf(run_dir / "probe.nc", engine="h5netcdf")
        assert main(["report", str(run_dir), "--out", str(out)]) == 0
        err = capsys.readouterr().err
        assert (said in err) if said else "note:" not in err
        assert ("unit classes (probe)" in out.read_text()) == classes
        text = out.read_text()  # provenance: the version, the weights' hash (as the results' attrs), the probe's code
        assert f"Made by UnitScope {__version__} on" in text and f"<td>{model_hash(ws.model)}</td>" in text
        shown = attrs.get("code_version", code_version()) if classes else None  # the probe's, when reported
        assert (f"computed by probing code {shown}" in text) if shown else "computed by probing code" not in text
    assert main(["report", str(run_dir), "--out", str(out), "--probe", str(run_dir / "probe.nc")]) == 2
    assert "was made for other weights than the decoder in" in capsys.readouterr().err
    (run_dir / "probe.nc").unlink()
    # pruning curves and a unit's kernels written beside the run record the weights too
    assert main(["prune", str(run_dir), "--curve", "--layer", "conv_4", "--fractions", "0,0.5", "--orders", "random",
                 "--repeats", "1", "--out", str(run_dir / "prune_curves.nc")]) == 0
    assert main(["deconv", str(run_dir), "--signal", "unit:conv_4:3", "--epochs", "1"]) == 0
    deconv = next(run_dir.glob("deconv_unit*.nc"))
    assert main(["report", str(run_dir), "--out", str(out)]) == 0
    text = out.read_text()
    assert "note:" not in capsys.readouterr().err and "Pruning curves of conv_4" in text and "unit:conv_4:3" in text
    for path in (run_dir / "prune_curves.nc", deconv):
        ds = xr.load_dataset(path, engine="h5netcdf")
        ds.assign_attrs(model_hash="f" * 16).to_netcdf(path, engine="h5netcdf")
    assert main(["report", str(run_dir), "--out", str(out)]) == 0
    err, text = capsys.readouterr().err, out.read_text()
    assert f"note: {run_dir / 'prune_curves.nc'} was made for the weights trained before" in err
    assert f"note: {deconv} was made for the weights trained before" in err
    assert "unit:conv_4:3" not in text and "Pruning curves of conv_4" not in text


def test_band_occlusion_section_lists_each_removal_escaped():
    rows = [dict(label="high_gamma band", channels=[f"G{i:02d}" for i in range(6)], band=(60.0, 90.0), metric=0.826,
                 reference=0.97, drop=0.144),
            dict(label="<b>mine</b>", channels=[f"<i>C{i}</i>" for i in range(10)], band=None, metric=0.9,
                 reference=0.97, drop=0.07)]
    text = render_report(ReportContent(occlusions=rows, decoder={"metric_name": "Pearson r"}))
    assert "<h2>Band occlusion</h2>" in text and "against 0.970 with nothing removed" in text
    assert "<td>high_gamma band</td><td>G00, G01, G02, G03, G04, G05</td><td>60-90 Hz</td><td>0.826</td><td>-0.144</td>" in text
    assert "&lt;b&gt;mine&lt;/b&gt;" in text and "<i>C0</i>" not in text and "10 channels: &lt;i&gt;C0" in text
    assert "all frequencies" in text
    assert "Band occlusion" not in render_report(ReportContent())


def test_the_report_says_where_the_weights_come_from(ws, monkeypatch):
    assert "provenance" not in render_report(ReportContent.from_workspace(ws))  # untrained: nothing to say
    monkeypatch.setattr(ws, "history", [{}, {}])
    monkeypatch.setattr(ws, "metrics", {"best_epoch": 0})
    assert "<td>provenance</td><td>trained 2 epoch(s), weights of epoch 1</td>" in render_report(
        ReportContent.from_workspace(ws))
    monkeypatch.setattr(ws, "metrics", {"weights_from": "/lab/deep4_state.pt"})
    assert "weights imported from deep4_state.pt" in render_report(ReportContent.from_workspace(ws))


def test_the_class_legend_sits_beside_the_bars_not_on_them():
    """Stacked class fractions fill every bar to 1: a legend inside the axes covered bars."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from core.report_figures import class_bars, class_legend, new_figure

    frac = xr.DataArray([[0.2, 0.3, 0.4, 0.1], [1.0, 0.0, 0.0, 0.0]], dims=("layer", "class"),
                        coords={"layer": ["conv_2", "conv_classifier"],
                                "class": ["amplitude", "phase", "bimodal", "insensitive"]})
    fig, axes = new_figure(9.0, 3.0, ncols=2)
    for ax in axes:
        class_bars(ax, frac, "t")
    class_legend(axes[-1])
    renderer = FigureCanvasAgg(fig).get_renderer()
    legend = axes[-1].get_legend().get_window_extent(renderer)
    assert [t.get_text() for t in axes[-1].get_legend().get_texts()] == ["amplitude", "phase", "bimodal", "insensitive"]
    assert all(not legend.overlaps(ax.get_window_extent(renderer)) for ax in axes)


def test_the_report_says_when_the_decoder_is_at_chance(ws):
    """The untrained decoder and its twin with the output's sign flipped (test r of opposite
    signs): the one at or below r 0 gets a caution row, the other none."""
    flipped = copy.deepcopy(ws)
    with torch.no_grad():
        for p in flipped.model.final_layer.conv_classifier.parameters():
            p.neg_()
    for w in (ws, flipped):
        content = ReportContent.from_workspace(w)
        html = render_report(content)
        r = content.metric_before
        assert r == r and abs(r) > 1e-3
        said = (f"<td>caution</td><td>test Pearson r {r:.3f} is at or below chance, r = 0: the decoder has learnt "
                "nothing that holds on the test block</td>")
        assert (said in html) == (r <= 0) and ("<td>caution</td>" in html) == (r <= 0)


def test_unit_maps_of_many_channels_keep_some_channel_names(monkeypatch):
    """A 64-channel map (EEG) was drawn with no channel names at all (names were written up to
    40 channels only): every k-th row is named, at most 40."""
    from core import report_figures as report

    drawn = []
    monkeypatch.setattr(report, "figure_png", lambda fig, **kw: drawn.append(fig) or "data:image/png;base64,")
    for n_ch, step in ((32, 1), (64, 2), (306, 8)):
        names = [f"E{i}" for i in range(n_ch)]
        ds = xr.Dataset({v: (("unit", "channel", "freq"), np.zeros((1, n_ch, 4))) for v in ("amp_corr", "phase_corr")},
                        coords={"unit": ["conv_2/0"], "channel": names, "freq": [1.0, 2.0, 3.0, 4.0]})
        report.unit_maps_fig(ds, "conv_2/0")
        ax = drawn[-1].axes[0]
        assert [t.get_text() for t in ax.get_yticklabels()] == names[::step]
        assert len(names[::step]) <= 40
    # the first map's colour bar (and its label) end before the second map's channel names begin
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = drawn[-1]
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    first_bar, second = fig.axes[2], fig.axes[1]  # the maps' axes first, then the colour bars'
    assert first_bar.get_tightbbox(renderer).x1 < second.get_tightbbox(renderer).x0
