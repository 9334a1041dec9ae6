"""Exports without a browser: netCDF round trips, PNG/SVG, checkpoint + mask, report, folders."""
from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest
import xarray as xr

from core._validation import UnitScopeError
from core.pruning import MaskSet
from dashboard import export
from dashboard.state import Session
from dashboard.views.export import PLOTS, ExportView, plot_for
from dashboard.views.prune import prune_state_of


@pytest.fixture()
def session(tmp_path, monkeypatch, tiny_decoder, tiny_probe):
    monkeypatch.setenv("UNITSCOPE_DATA_ROOT", str(tmp_path))
    s = Session()
    s.set_decoder(tiny_decoder, probe=tiny_probe, probe_source="test")
    ps = prune_state_of(s)
    ps.activate()
    ps.join()
    yield s
    s.close()


def test_probe_round_trips_through_netcdf(session, tiny_probe):
    ds = xr.load_dataset(io.BytesIO(export.netcdf_bytes(export.probe_dataset(session))), engine="h5netcdf")
    xr.testing.assert_allclose(ds["amp_corr"], tiny_probe["amp_corr"])
    assert list(ds["unit_class_all"].values) == list(tiny_probe["unit_class_all"].values)


def test_curves_export_holds_the_computed_layers(session, tmp_path, capsys):
    ps = prune_state_of(session)
    with pytest.raises(UnitScopeError, match="Nothing to export yet"):
        export.curves_dataset(Session())
    ps.prune("conv_4", [3])
    ps.compute_curves("conv_4")
    ps.join()
    ps.compute_effects("conv_4")
    ps.join()
    ds = xr.load_dataset(io.BytesIO(export.netcdf_bytes(export.curves_dataset(session))), engine="h5netcdf")
    assert "conv_4" in ds["layer"].values
    np.testing.assert_allclose(ds["metric"].sel(layer="conv_4").values, ps.curves["metric"].values)
    assert ds.attrs["metric_pruned"] == pytest.approx(ps.metric)
    assert json.loads(ds.attrs["session_pruned"]) == {"conv_4": [3]}
    drop = ds["ablation_drop"]
    assert float(drop.sel(unit="conv_4/3")) == pytest.approx(float(ps.effects.sel(unit="conv_4/3")))
    # `unitscope info` reads the export: the session's mask, each layer's curves, the drops
    from core.cli import main

    path = tmp_path / "pruning.nc"
    path.write_bytes(export.netcdf_bytes(export.curves_dataset(session)))
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0] == f"result     {path}: pruning curves and ablation effects, written by the app's Export view"
    assert text[1].endswith(f"{ps.metric:.4f} with the session's mask (conv_4 1 pruned)")
    first = float(ps.curves["metric"].sel(order="most").values[0])
    assert f"{float(ps.curves['fraction'].values[0]):8.2f}{first:9.4f}" in "\n".join(text)
    assert text[-1].startswith("ablation   ") and "largest single-unit drops: " in text[-1]


def test_checkpoint_zip_is_a_loadable_run_with_the_mask(session, tmp_path, tiny_decoder):
    import torch

    from core.workspace import Workspace

    ps = prune_state_of(session)
    ps.prune("conv_2", [5, 6])
    ps.join()
    data = export.checkpoint_zip(session)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == ["unitscope-run/config.json", "unitscope-run/mask.json",
                                         "unitscope-run/model.pt"]
        zf.extractall(tmp_path / "x")
    ws = Workspace.load(tmp_path / "x" / "unitscope-run")
    for k, v in tiny_decoder.ws.model.state_dict().items():
        torch.testing.assert_close(ws.model.state_dict()[k], v)
    masks = MaskSet.load(tmp_path / "x" / "unitscope-run" / "mask.json", model=ws.model)
    assert masks.pruned("conv_2").tolist() == [5, 6]
    assert tiny_decoder.ws.run_dir != tmp_path / "x"  # the shared workspace was not re-pointed


@pytest.mark.parametrize("fmt,magic", [("png", b"\x89PNG"), ("svg", b"<?xml")])
def test_plots_export_as_png_and_svg(session, fmt, magic):
    for name in ("Predicted vs true (Overview)", "Amplitude map of the selected unit (Units)",
                 "Units of the layer, pruned crossed (Prune)", "Ablation effects of the layer (Prune)"):
        data = export.plot_bytes(plot_for(session, name), fmt)
        assert data.startswith(magic), name
    with pytest.raises(UnitScopeError, match="fmt"):
        export.plot_bytes(plot_for(session, "Predicted vs true (Overview)"), "gif")


def test_an_exported_unit_map_reads_as_the_apps(session):
    """The exported sensitivity maps numbered their rows 0..31 instead of naming the channels,
    lost the app's colour scale symmetric about 0 (matplotlib stretched it from the map's
    minimum to its maximum, so a map of small positive r came out red and blue alike), its
    colour bar, its band edges and the known roles' outlines."""
    import holoviews as hv
    import holoviews.plotting.mpl  # noqa: F401

    from dashboard.views.units import unit_maps

    session.layer, session.unit = "conv_3", 1
    amp = unit_maps(session.probe, "conv_3", 1)[0]
    looks = export._app_looks(plot_for(session, "Amplitude map of the selected unit (Units)"))
    image = looks.get(0)
    assert isinstance(image, hv.Image)
    lim = float(np.abs(np.nan_to_num(amp.values)).max())
    plot_opts = hv.Store.lookup_options("matplotlib", image, "plot").kwargs
    assert plot_opts["clim"] == pytest.approx((-lim, lim)) and plot_opts["colorbar"] is True
    assert plot_opts["yticks"][0] == (0, "G01")
    freqs = amp["freq"].values
    for ch in (0, 5, amp.sizes["channel"] - 1):  # each row where its channel is named
        for k in (0, 7):
            assert image[float(freqs[k]), float(ch)] == pytest.approx(float(amp.values[ch, k]))
    assert sum(isinstance(el, hv.VLine) for el in looks) == len(set(session.probe["band_lo"].values.tolist())
                                                                  | set(session.probe["band_hi"].values.tolist()))
    boxes = [el for el in looks if isinstance(el, hv.Rectangles)]
    assert len(boxes) == 1 and len(boxes[0]) > 0  # the demo's roles
    assert hv.Store.lookup_options("matplotlib", boxes[0], "style").kwargs["facecolor"] == "none"
    assert hv.Store.lookup_options("matplotlib", looks, "plot").kwargs["title"] == (
        "conv_3/1 amplitude sensitivity\nr(noise, response)")
    assert export.plot_bytes(plot_for(session, "Phase map of the selected unit (Units)"), "png").startswith(b"\x89PNG")


def test_exported_bars_label_some_units_and_legends_leave_the_title_alone():
    """The exported ablation bars of 200 units wrote 200 labels into one black band; legends the
    app draws above a plot came out inside it (over the class bars), and matplotlib's place
    above a plot is the title's."""
    import holoviews as hv
    import holoviews.plotting.mpl  # noqa: F401
    import xarray as xr

    from dashboard.views.overview import CLASS_COLORS, fraction_plot
    from dashboard.views.prune_plots import effect_bars

    plot = hv.renderer("matplotlib").get_plot(export._app_looks(effect_bars(None, "conv_4", [3], 200)))
    labels = [t.get_text() for t in plot.handles["axis"].get_xticklabels()]
    assert labels[:3] == ["0", "10", "20"] and len(labels) == 20
    few = hv.renderer("matplotlib").get_plot(export._app_looks(effect_bars(None, "conv_2", [], 12)))
    assert len(few.handles["axis"].get_xticklabels()) == 12  # a few bars: each labelled
    # the pruned units' bars dark, as in the app (matplotlib drew every bar orange), and a title
    # without the app's "click a bar" (nothing is clicked in a PNG)
    from matplotlib.colors import to_hex

    from dashboard.views.prune_plots import PRUNED_COLOR

    drop = xr.DataArray(np.linspace(0.01, 0.02, 30), dims="unit",
                        coords={"unit": [f"conv_2/{i}" for i in range(30)], "layer": ("unit", ["conv_2"] * 30),
                                "index": ("unit", np.arange(30))})
    looks = export._app_looks(effect_bars(drop, "conv_2", [3, 4], 30))
    drawn = hv.renderer("matplotlib").get_plot(looks)
    colours = [to_hex(p.get_facecolor()) for p in drawn.handles["axis"].patches]
    assert [i for i, c in enumerate(colours) if c == PRUNED_COLOR] == [3, 4] and colours[0] == "#ff7f0e"
    title = hv.Store.lookup_options("matplotlib", looks, "plot").kwargs["title"]
    assert "click" not in title and title.endswith("(dark: pruned in the session)")
    frac = xr.DataArray(np.full((2, 4), 0.25), dims=("layer", "class"),
                        coords={"layer": ["conv_2", "conv_3"], "class": list(CLASS_COLORS)[:4]})
    bars = export._app_looks(fraction_plot(frac, "Unit classes"))
    assert hv.Store.lookup_options("bokeh", bars, "plot").kwargs["legend_position"] == "top"
    assert hv.Store.lookup_options("matplotlib", bars, "plot").kwargs["legend_position"] == "right"


def test_the_exported_ablation_bars_carry_the_rank_correlation_the_view_shows(session):
    from dashboard.views.prune import PruneView

    ps = prune_state_of(session)
    session.layer = "conv_3"
    ps.compute_effects("conv_3")  # (or the effects another test's session left in the shared cache)
    ps.join()
    view = PruneView(session=session)
    label = plot_for(session, "Ablation effects of the layer (Prune)").opts.get().kwargs["xlabel"]
    assert "rank correlation of the drops with either sensitivity" in label
    assert label == view.bar_fig.xaxis[0].axis_label


def test_plots_not_computed_yet_say_so(session):
    with pytest.raises(UnitScopeError, match="No pruning curves yet"):
        plot_for(session, "Pruning curves (Prune)")
    with pytest.raises(UnitScopeError, match="No kernels yet"):
        plot_for(session, "Decoder output kernel (Kernels)")
    with pytest.raises(UnitScopeError, match="No input channel kernels yet"):
        plot_for(session, "Input channel kernel (Kernels)")
    with pytest.MonkeyPatch.context() as mp:  # a decoder of trials has none to fit: say so, not "open the view"
        mp.setattr(type(session.decoder), "task", property(lambda self: "classification"))
        for make in (lambda: plot_for(session, "Decoder output kernel (Kernels)"),
                     lambda: export.kernels_dataset(session)):
            with pytest.raises(UnitScopeError, match="This decoder classifies trials: it has no kernels"):
                make()


def test_the_input_channels_kernels_export_for_any_decoder(session, tiny_decoder, monkeypatch, tmp_path, capsys):
    from dashboard.kernel_state import shared_kernels
    from dashboard.views.kernels import kernel_state_of

    ks = kernel_state_of(session)
    ks.channel = res = shared_kernels(tiny_decoder).initial("channel:G03:60-90")
    monkeypatch.setattr(type(session.decoder), "task", property(lambda self: "classification"))
    ds = xr.load_dataset(io.BytesIO(export.netcdf_bytes(export.kernels_dataset(session))), engine="h5netcdf")
    assert "output_kernels" not in ds and ds.attrs["channel_signal"] == "channel:G03:60-90"
    np.testing.assert_allclose(ds["channel_kernels"].values, res["kernels"].values)
    from core.cli import main  # `unitscope info` reads the export: each fit as `unitscope deconv` prints it
    from core.cli.deconv import summary_lines

    path = tmp_path / "kernels.nc"
    path.write_bytes(export.netcdf_bytes(export.kernels_dataset(session)))
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0] == f"result     {path}: kernels (DUNL), written by the app's Export view"
    assert text[2] == "signal     channel:G03:60-90"
    # (the export keeps each fit's R^2 only: not its epochs and segments, nor where its valid_loss was measured)
    kept = [line for line in summary_lines(res) if not line.startswith(("fit:", "caution: valid_loss"))]
    assert text[3:] == [f"           {line}" for line in kept] + [f"           fit: R^2 {res.attrs['r2']:.3f}"]
    assert plot_for(session, "Input channel kernel (Kernels)").opts.get().kwargs["title"].startswith(
        "G03, 60-90 Hz envelope kernel")
    assert "codes\nvs" in plot_for(session, "Input channel codes (Kernels)").opts.get().kwargs["title"]
    assert "channel:G03:60-90: kernels locked to" in export.report_html(session)  # in the report too
    view = ExportView(session=session)
    view.plot.value = "Pruning curves (Prune)"
    view.fmt.value = "svg"
    assert view.plot_dl.filename == "unitscope-pruning-curves.svg"
    assert view._plot_file().getvalue() == b""
    assert session.alerts[-1][1] == "Export failed: No pruning curves yet: compute them in the Prune view."


def test_report_of_the_session_names_pruned_units_and_the_metric(session):
    ps = prune_state_of(session)
    ps.prune("conv_3", [2, 9])
    ps.join()
    session.param.update(layer="conv_3", unit=40)
    html = export.report_html(session)
    assert "conv_3</td><td>2</td><td>2, 9" in html
    assert f"{ps.metric:.3f}" in html and f"{ps.metric_base:.3f}" in html
    assert "conv_3/40: class" in html and "conv_3/9: class" in html
    assert "<script" not in html and "Band occlusion" not in html
    session.occlude({"beta band": (session.occlusion_presets()["beta"][0], (15.0, 25.0))})
    assert session._jobs["occlusion"].join(60)
    html = export.report_html(session)
    assert "<h2>Band occlusion</h2>" in html and "<td>beta band</td>" in html


def test_save_to_folder_writes_under_the_data_root(session, tmp_path):
    paths = export.save_to_folder(session, "lab/exports")
    names = [p.name for p in paths]
    assert names[0] == "unitscope-report.html" and "probe.nc" in names and "unitscope-run.zip" in names
    folder = paths[0].parent  # a new folder of its own under the one given
    assert folder.parent == tmp_path / "lab" / "exports" and folder.name.startswith("unitscope-")
    assert all(p.parent == folder for p in paths)
    # a second save (another session's, or this one's later) never replaces the first's files
    again = export.save_to_folder(session, "lab/exports")
    assert again[0].parent != folder and all(p.exists() for p in paths)
    run = tmp_path / "runs" / "r1"  # a run folder given as the folder: its own files untouched
    run.mkdir(parents=True)
    (run / "probe.nc").write_bytes(b"the run's own")
    export.save_to_folder(session, "runs/r1")
    assert (run / "probe.nc").read_bytes() == b"the run's own"
    assert paths[0].read_text().startswith("<!DOCTYPE html>")
    umask = os.umask(0)
    os.umask(umask)
    assert {oct(p.stat().st_mode & 0o777) for p in paths} == {oct(0o666 & ~umask)}  # shareable, not mkstemp's 0600


def test_unwritable_or_outside_folders_give_clear_messages(session, tmp_path):
    with pytest.raises(UnitScopeError, match="lies outside the data root"):
        export.save_to_folder(session, "../elsewhere")
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(UnitScopeError, match="it is a file, not a folder"):
        export.save_to_folder(session, "taken")
    with pytest.raises(UnitScopeError, match="Cannot write to the folder .*taken"):
        export.save_to_folder(session, "taken/sub")
    with pytest.raises(UnitScopeError, match="Cannot write to the folder '/proc"):
        export.save_to_folder(session, "/proc/unitscope", root="/proc")
    view = ExportView(session=session)
    view.folder.value = "taken/sub"
    view.save_btn.clicks += 1
    assert session.alerts[-1][1].startswith("Export failed: Cannot write to the folder")
    assert view.saved.object == ""


def test_every_listed_plot_has_a_builder():
    assert all(callable(fn) for fn in PLOTS.values()) and len(PLOTS) >= 10


def test_a_confusion_matrix_exports_with_the_apps_title_counts_and_colours():
    """The export of a label decoder's confusion matrix failed (matplotlib cannot place the app's
    count labels on categorical axes); it is now drawn with its counts in the cells, and every
    exported plot keeps the app's title and colours (the matplotlib renderer's defaults drew
    'true' and 'predicted' in blue and orange, and no title)."""
    import holoviews as hv

    from dashboard.views.overview import prediction_plot

    true = np.repeat(np.arange(4), 6)
    cm = {"task": "classification", "classes": ["1", "128", "16", "2"], "true": true, "pred": (true + 1) % 4,
          "metric": 0.0}
    for fmt, magic in (("png", b"\x89PNG"), ("svg", b"<?xml")):
        assert export.plot_bytes(prediction_plot(cm), fmt).startswith(magic)
    import holoviews.plotting.mpl  # noqa: F401

    looks = export._app_looks(prediction_plot(cm))
    assert isinstance(looks, hv.HeatMap)
    assert hv.Store.lookup_options("matplotlib", looks, "plot").kwargs["show_values"] is True
    assert hv.Store.lookup_options("matplotlib", looks, "plot").kwargs["title"] == (
        "24 test trials: balanced accuracy = 0.000\n(at or below chance, 1/4 = 0.250)")
    assert hv.Store.lookup_options("matplotlib", looks, "style").kwargs["cmap"] == "Blues"
    t = np.arange(100.0)
    reg = prediction_plot({"task": "regression", "time": t, "true": np.sin(t), "pred": np.cos(t), "metric": 0.1})
    reg = export._app_looks(reg[()] if isinstance(reg, hv.DynamicMap) else reg)  # as plot_bytes does
    assert hv.Store.lookup_options("matplotlib", reg, "plot").kwargs["title"] == "Test block: Pearson r = 0.100"
    colours = {el.label: hv.Store.lookup_options("matplotlib", el, "style").kwargs.get("color") for el in reg}
    assert colours == {"true": "#333333", "predicted": "#d62728"}


def test_an_exported_confusion_matrix_puts_each_count_in_its_cell_dark_cells_in_white():
    """HoloViews' matplotlib renderer gridded the cells of a full matrix in another order than
    its axis labels (the counts of predicted 1 were written beside the label 128); and the app
    writes the counts of its dark cells (above half the largest count) in white, the export
    wrote them all in black, which does not read on navy."""
    import holoviews as hv
    import holoviews.plotting.mpl  # noqa: F401

    from dashboard.views.overview import prediction_plot

    codes = ["1", "2", "16", "128"]
    true = np.repeat(np.arange(4), [12, 6, 5, 3])
    pred = np.r_[[0] * 7, 1, 2, 2, 2, 2, 1, 1, 1, 2, 3, 3, [2] * 5, [3] * 3]
    matrix = np.zeros((4, 4), int)
    np.add.at(matrix, (true, pred), 1)
    assert matrix[0, 0] == 7 and matrix.min() == 0  # every cell present, as in a decoder's matrix
    cm = {"task": "classification", "classes": codes, "true": true, "pred": pred, "metric": 0.6}
    plot = hv.renderer("matplotlib").get_plot(export._app_looks(prediction_plot(cm)))
    ax = plot.handles["axis"]
    x_at = {round(t.get_position()[0]): t.get_text() for t in ax.get_xticklabels()}
    y_at = {round(t.get_position()[1]): t.get_text() for t in ax.get_yticklabels()}
    assert [x_at[i] for i in range(4)] == codes and [y_at[i] for i in range(4)] == codes
    for (x, y), text in plot.handles["annotations"].items():
        i, j = codes.index(x_at[round(x)]), codes.index(y_at[round(y)])  # true, predicted
        assert text.get_text() == str(matrix[i, j]), (x_at[round(x)], y_at[round(y)])
        assert text.get_color() == ("white" if matrix[i, j] > 7 / 2 else "black")
    plot.state.clf()
    few = dict(cm, true=np.repeat(np.arange(4), [3, 3, 2, 2]), pred=np.repeat(np.arange(4), [3, 3, 2, 2]))
    plot = hv.renderer("matplotlib").get_plot(export._app_looks(prediction_plot(few)))  # at most 3 trials a cell
    ticks = [t.get_text() for t in plot.handles["cbar"].ax.get_yticklabels()]
    assert ticks and all(t.lstrip("−-").isdigit() for t in ticks), ticks  # whole trials: it ticked 0.5, 1.5
    plot.state.clf()


def test_exported_plots_keep_the_class_colours_stacking_and_grey_band():
    """The unit classes' bars came out side by side in the renderer's colour cycle, and the
    pruning curves' random band in light blue: the classes keep their colours and stack, the
    band is grey without an edge."""
    import holoviews as hv
    import holoviews.plotting.mpl  # noqa: F401
    import xarray as xr

    from dashboard.views.overview import CLASS_COLORS, fraction_plot
    from dashboard.views.prune_plots import curve_plot

    frac = xr.DataArray(np.full((2, 4), 0.25), dims=("layer", "class"),
                        coords={"layer": ["conv_2", "conv_3"], "class": list(CLASS_COLORS)[:4]})
    bars = export._app_looks(fraction_plot(frac, "Unit classes"))
    plot, style = (hv.Store.lookup_options("matplotlib", bars, g).kwargs for g in ("plot", "style"))
    assert plot["stacked"] is True and plot["title"] == "Unit classes"
    colour = style["color"]
    assert isinstance(colour, hv.dim) and list(colour.apply(bars)) == [CLASS_COLORS[c] for c in bars["class"]]
    q = np.linspace(0, 1, 5)
    curves = xr.Dataset({"metric": (("order", "fraction"), np.ones((2, 5))), "random_lo": ("fraction", q),
                         "random_hi": ("fraction", q + 0.1)},
                        coords={"order": ["most", "least"], "fraction": q}, attrs={"layers": "conv_4"})
    band = [el for el in export._app_looks(curve_plot(curves)) if isinstance(el, hv.Area)][0]
    style = hv.Store.lookup_options("matplotlib", band, "style").kwargs
    assert (style["facecolor"], style["edgecolor"]) == ("#7f7f7f", "none")
    assert export.plot_bytes(fraction_plot(frac, "Unit classes"), "png").startswith(b"\x89PNG")
    # the session's own point, a Bokeh "star" (matplotlib: "*"), and the pruned units' crosses
    now = [el for el in export._app_looks(curve_plot(curves, current=(0.2, 0.9))) if isinstance(el, hv.Scatter)]
    assert hv.Store.lookup_options("matplotlib", now[-1], "style").kwargs["marker"] == "*"
    assert export.plot_bytes(curve_plot(curves, current=(0.2, 0.9)), "png").startswith(b"\x89PNG")


def test_the_export_view_previews_the_plot_as_the_download_draws_it(session):
    """One chose a plot and downloaded it blind: Preview draws it as the PNG download does, in
    a thread, again for each plot chosen after; a plot not drawable yet says why in its place."""
    view = ExportView(session=session)
    assert view.preview_job is None and not view.preview.visible  # nothing drawn before asked
    session.layer, session.unit = "conv_3", 1
    view.plot.value = "Amplitude map of the selected unit (Units)"
    assert view.preview_job is None  # choosing alone draws nothing
    view.show_preview()
    assert view.preview_job.join(60)
    assert view.preview.visible and view.preview.object.startswith(b"\x89PNG")
    assert view.preview.object == export.plot_bytes(plot_for(session, view.plot.value), "png")
    assert "Amplitude map of the selected unit (Units), as the download draws it" in view.preview_note.object
    session.unit = 2  # another unit: the preview of unit 1 is put away, not left as if it were unit 2's
    assert not view.preview.visible and "Preview draws it again" in view.preview_note.object
    view.show_preview()
    assert view.preview_job.join(60) and view.preview.visible
    ps = prune_state_of(session)
    ps.prune("conv_3", [4])  # a unit pruned in the Prune view: the bars and scatter drawn before are stale
    ps.join()
    assert not view.preview.visible and "Preview draws it again" in view.preview_note.object
    ps.restore("conv_3", [4])
    ps.join()
    view.show_preview()
    assert view.preview_job.join(60) and view.preview.visible
    ps.curves = None
    first = view.preview_job
    view.plot.value = "Pruning curves (Prune)"  # after a first preview, each choice is drawn
    assert view.preview_job is not first and view.preview_job.join(60)
    assert not view.preview.visible and view.preview.object is None
    assert "No preview: No pruning curves yet: compute them in the Prune view." in view.preview_note.object
    assert session.alerts == [] or "Export failed" not in session.alerts[-1][1]  # a preview is no failed export


def test_a_preview_asked_for_is_drawn_from_what_changed_while_it_drew(session, monkeypatch):
    """Preview clicked while the demo decoder loaded: the decoder arrived mid-drawing, and the
    page said "The plots changed since the preview" for a preview it never showed (a browser
    test failed on it in CI). A drawing under way is drawn again from the new state instead."""
    import threading

    view = ExportView(session=session)
    session.layer, session.unit = "conv_3", 1
    view.plot.value = "Amplitude map of the selected unit (Units)"
    real, first, release = export.plot_bytes, threading.Event(), threading.Event()

    def held(obj, fmt):  # the first drawing waits until the unit has changed under it
        if not first.is_set():
            first.set()
            assert release.wait(60)
        return real(obj, fmt)

    monkeypatch.setattr(export, "plot_bytes", held)
    view.show_preview()
    assert first.wait(60)
    drawing = view.preview_job
    session.unit = 2  # (the decoder, probe or mask arriving alike)
    release.set()
    assert drawing.join(60) and view.preview_job is not drawing and view.preview_job.join(60)
    assert view.preview.visible and "as the download draws it" in view.preview_note.object
    assert view.preview.object == real(plot_for(session, view.plot.value), "png")  # unit 2's, not unit 1's
    session.unit = 3  # once shown, a change puts it away as before
    assert not view.preview.visible and "Preview draws it again" in view.preview_note.object


def test_a_preview_asked_for_before_a_decoder_is_drawn_when_it_arrives(tmp_path, monkeypatch, tiny_decoder,
                                                                       tiny_probe):
    """Preview clicked while the demo decoder loaded said "No probe maps for conv_3/1: run the
    probe (Units view)" of the probe being loaded with it. It now waits, and draws on arrival."""
    monkeypatch.setenv("UNITSCOPE_DATA_ROOT", str(tmp_path))
    s = Session()
    try:
        view = ExportView(session=s)
        view.plot.value = "Amplitude map of the selected unit (Units)"
        view.show_preview()
        assert view.preview_job is None and not view.preview.visible
        assert "drawn here as soon as a decoder is loaded" in view.preview_note.object
        s.set_decoder(tiny_decoder, probe=tiny_probe, probe_source="test")
        assert view.preview_job is not None and view.preview_job.join(60)
        assert view.preview.visible and "as the download draws it" in view.preview_note.object
        assert view.preview.object == export.plot_bytes(plot_for(s, view.plot.value), "png")
    finally:
        s.close()


def test_a_served_pages_preview_is_drawn_on_its_event_loop(session, served_doc):
    """The preview's worker does not change the page's panes itself (a failed preview raised
    Bokeh's "_pending_writes should be non-None when we have a document lock" in the server):
    the page's next tick does, for a drawing and for a plot that cannot be drawn."""
    view = ExportView(session=session)
    view._doc = doc = served_doc
    prune_state_of(session).curves = None
    view.plot.value = "Pruning curves (Prune)"
    view.show_preview()
    assert view.preview_job.join(60)
    assert "Drawing" in view.preview_note.object and len(doc.ticks) == 1  # not from the worker
    doc.ticks.pop()()
    assert "No preview: No pruning curves yet" in view.preview_note.object and not view.preview.visible
    session.layer, session.unit = "conv_3", 1  # the note "No pruning curves yet" is put away (two ticks)
    view.plot.value = "Amplitude map of the selected unit (Units)"
    assert view.preview_job.join(60) and not view.preview.visible and len(doc.ticks) == 3
    while doc.ticks:
        doc.ticks.pop(0)()
    assert view.preview.visible and view.preview.object.startswith(b"\x89PNG")
