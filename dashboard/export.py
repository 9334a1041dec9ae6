"""Export a session: netCDF results, PNG/SVG plots, the checkpoint with its mask, the HTML report.

Every function returns bytes (for a browser download) or writes under the data root
(:func:`save_to_folder`); none of them changes the session or the shared decoder. Plots
are re-drawn with HoloViews' matplotlib renderer (no browser needed, so SVG works too).
Writes are atomic (temporary file, then rename) and an unwritable folder gives a one-line
message naming it. No Panel code.
"""
from __future__ import annotations

import copy
import io
import json
import logging
import os
import tempfile
import threading
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np

from core._files import atomic_write_bytes
from core._validation import UnitScopeError, check_option
from core.report_figures import dark_above

from .files import data_root

__all__ = ["netcdf_bytes", "plot_bytes", "probe_dataset", "curves_dataset", "kernels_dataset", "checkpoint_zip",
           "report_content", "report_html", "resolve_export_folder", "save_to_folder", "PLOT_FORMATS"]

logger = logging.getLogger(__name__)
PLOT_FORMATS = ("png", "svg")
_MPL_LOCK = threading.Lock()  # matplotlib's renderer is not thread-safe


def _prune(session):
    from .views.prune import prune_state_of

    return prune_state_of(session)


NO_KERNELS_FOR_TRIALS = ("This decoder classifies trials: it has no kernels (they deconvolve the time course "
                         "of a decoder of a continuous target).")


def _kernels(session):
    from .views.kernels import kernel_state_of

    dec = session.decoder
    if dec is not None and dec.task != "regression":
        raise UnitScopeError(NO_KERNELS_FOR_TRIALS)
    return kernel_state_of(session)


def _require_decoder(session):
    if session.decoder is None:
        raise UnitScopeError(session.no_decoder_note("Nothing to export yet: load the demo or train a decoder first."))
    return session.decoder


# ---- netCDF ----------------------------------------------------------------------------------
def _clean_attrs(ds):
    """netCDF attributes must be str, numbers or arrays: others become JSON text."""
    ds = ds.copy()
    for obj in [ds] + [ds[v] for v in ds.variables]:
        for k, v in list(obj.attrs.items()):
            if isinstance(v, (bool, np.bool_)):
                obj.attrs[k] = int(v)
            elif isinstance(v, (dict, list, tuple)) or v is None:
                obj.attrs[k] = json.dumps(v, default=str)
    return ds


def netcdf_bytes(ds) -> bytes:
    """An xarray Dataset (or DataArray) as netCDF-4 bytes (h5netcdf)."""
    import xarray as xr

    if isinstance(ds, xr.DataArray):
        ds = ds.to_dataset(name=ds.name or "data")
    fd, tmp = tempfile.mkstemp(suffix=".nc")
    os.close(fd)
    try:
        _clean_attrs(ds).to_netcdf(tmp, engine="h5netcdf")
        return Path(tmp).read_bytes()
    finally:
        Path(tmp).unlink(missing_ok=True)


def probe_dataset(session):
    """The session's probe result (xarray.Dataset); raises when there is none."""
    _require_decoder(session)
    if session.probe is None:
        raise UnitScopeError("No probe result to export: run the probe (Units view) first.")
    return session.probe


def curves_dataset(session):
    """Pruning curves and ablation effects computed for the session's decoder, in one Dataset.

    Returns
    -------
    xarray.Dataset
        ``metric`` (layer, order, fraction), ``random_lo``/``random_hi`` (layer, fraction) and
        ``ablation_drop`` (unit) for the layers computed so far, plus ``session_pruned``
        attributes (the session's mask as JSON) and the metric before/after.
    """
    import xarray as xr

    dec = _require_decoder(session)
    ps = _prune(session)
    shared = ps.shared
    cache = dict(shared.cache) if shared is not None else {}
    curves = [(k[1], v) for k, v in cache.items() if k[0] == "curves"]
    drops = [v for k, v in cache.items() if k[0] == "ablation"]
    if ps.curves is not None and all(layer != ps.curves_layer for layer, _ in curves):
        curves.append((ps.curves_layer, ps.curves))
    if not curves and not drops:
        raise UnitScopeError("No pruning curves or ablation effects yet: compute them in the Prune view first.")
    parts = {}
    if curves:
        seen = {}
        for layer, ds in curves:
            seen.setdefault(layer, ds)  # one ranking per layer (the first computed)
        layers = list(seen)
        stacked = xr.concat([seen[l].drop_vars(["n_pruned", "layer"], errors="ignore") for l in layers],
                            dim="layer", coords="minimal", compat="override", combine_attrs="drop_conflicts")
        stacked = stacked.assign_coords(layer=layers)
        stacked["n_units"] = ("layer", [dec.n_units[l] for l in layers])
        parts = dict(stacked.data_vars)
        coords = dict(stacked.coords)
        attrs = dict(stacked.attrs)
    else:
        coords, attrs = {}, {}
    out = xr.Dataset(parts, coords=coords, attrs=attrs)
    if drops:
        drop = xr.concat(drops, dim="unit")
        out["ablation_drop"] = drop.rename({"layer": "unit_layer", "index": "unit_index"}) \
            if "layer" in out.dims else drop
    out.attrs.update(method="pruning_curve+single_unit_ablation", metric=ps.metric_name,
                     metric_unpruned=float(ps.metric_base), metric_pruned=float(ps.metric),
                     session_pruned=json.dumps(ps.pruned), decoder=dec.label)
    return out


def kernels_dataset(session):
    """The session's DUNL results: ``output_*``, ``unit_*`` and ``channel_*`` variables
    (kernels, codes) of those fitted."""
    import xarray as xr

    from .views.kernels import kernel_state_of

    ks = kernel_state_of(session)
    parts = [(n, r) for n, r in (("output", ks.output), ("unit", ks.unit), ("channel", ks.channel)) if r is not None]
    if not parts:
        dec = session.decoder
        if dec is not None and dec.task != "regression":
            raise UnitScopeError(NO_KERNELS_FOR_TRIALS + " Fit the input's own kernels in the Kernels view.")
        raise UnitScopeError("No kernels yet: open the Kernels view and fit them first.")
    out = xr.Dataset(attrs={"method": "dunl", "unit_signal": ks.unit_signal,
                            "mask_version": int(ks.fitted_version), "pruned": json.dumps(_prune(session).pruned)})
    for name, res in parts:
        ren = {d: f"{name}_{d}" for d in ("kernel", "lag", "event", "time") if d in res.dims}
        r = res.rename(ren)
        r = r.rename({c: f"{name}_{c}" for c in ("onset", "type", "value") if c in r.coords})
        for v in r.data_vars:
            out[f"{name}_{v}"] = r[v]
        out.attrs[f"{name}_signal"] = res.attrs.get("signal", name)
        out.attrs[f"{name}_r2"] = float(res.attrs.get("r2", float("nan")))
    return out


# ---- plots -----------------------------------------------------------------------------------
def plot_bytes(obj, fmt: str = "png") -> bytes:
    """A HoloViews element, overlay or layout as PNG or SVG bytes (matplotlib renderer)."""
    import holoviews as hv

    fmt = check_option("fmt", fmt, PLOT_FORMATS)
    if isinstance(obj, hv.DynamicMap):
        obj = obj[()] if not obj.kdims else obj.last
    buf = io.BytesIO()
    with _MPL_LOCK:
        import holoviews.plotting.mpl  # noqa: F401 - registers the matplotlib renderer

        hv.renderer("matplotlib").instance(dpi=EXPORT_DPI).save(_app_looks(obj), buf, fmt=fmt)
    return buf.getvalue()


# HoloViews gives every marker an edge colour, and matplotlib warns of it on the crosses of the
# pruned units, which have none: filtered once for the process (a catch_warnings() around each
# export would swap the process's warning state under other threads of the server)
warnings.filterwarnings("ignore", message="You passed an? edgecolor", category=UserWarning)
EXPORT_DPI = 120  # [A] a PNG sharp enough for a slide (matplotlib's 72 gave 290-pixel plots)
# Bokeh style options the matplotlib renderer takes under another name (or the same)
_STYLE_NAMES = {"color": "color", "cmap": "cmap", "alpha": "alpha", "line_width": "linewidth",
                "line_dash": "linestyle", "size": "s", "marker": "marker"}
# Bokeh marker names as matplotlib's (others are left to matplotlib's default)
_MARKERS = {"circle": "o", "square": "s", "triangle": "^", "inverted_triangle": "v", "diamond": "D", "star": "*",
            "x": "x", "cross": "+", "plus": "P", "hex": "h", "dot": "."}
_PLOT_NAMES = ("stacked", "xrotation", "yrotation", "xlim", "ylim", "logx", "logy", "invert_yaxis",  # the same
               "clim", "colorbar", "xticks", "yticks", "xlabel", "ylabel", "aspect", "legend_cols")
# the app's legend positions as matplotlib places them: above the plot is where matplotlib writes the
# title, so an app's legend above the plot is placed outside the axes by HoloViews ("right"), then
# moved under the axis labels by :func:`_legend_below`: beside the plot it took two thirds of a
# preview's width from the time series of "Predicted vs true"
_LEGEND_PLACES = {"top": "right", **{p: p for p in ("right", "bottom", "left", "top_right", "top_left",
                                                     "bottom_left", "bottom_right")}}
_LEGEND_BELOW = ("top",)  # the app's legend positions exported below the plot


def _legend_below(plot, element) -> None:
    """matplotlib hook: the legend centred under the x axis's tick labels and label.

    (HoloViews' own "bottom" legend sits at a fixed offset under the axes: over the axis label
    of a plot whose tick labels are rotated, the unit classes per layer.)"""
    ax = plot.handles["axis"]
    leg = ax.get_legend()
    if leg is None:
        return
    box = ax.xaxis.get_tightbbox()  # display coordinates (the figure's renderer: any canvas has one)
    if box is None:
        return
    y = ax.transAxes.inverted().transform((0.0, box.y0))[1]
    leg.set_loc("upper center")  # centred in a box as wide as the axes
    leg.set_bbox_to_anchor((0.0, y - 0.02, 1.0, 0.0), transform=ax.transAxes)
_MOST_BAR_LABELS = 20  # [A] tick labels on an exported bar chart (200 units' labels ran into one black band)


def _light_counts_on_dark(plot, element) -> None:
    """matplotlib hook of an exported confusion matrix: counts above half the largest count
    (its dark cells) in white, as the app draws them (black on navy does not read), and whole
    trials on its colour bar."""
    texts = list(plot.handles.get("annotations", {}).values())
    values = []
    for text in texts:
        try:
            values.append(float(text.get_text()))
        except ValueError:  # "-" for a missing cell
            values.append(float("nan"))
    top = max([v for v in values if v == v] or [0.0])
    for text, v in zip(texts, values):
        text.set_color("white" if v == v and v > dark_above(top) else "black")
    cbar = plot.handles.get("cbar")
    if cbar is not None:  # whole trials on the colour bar, as in the app
        from matplotlib.ticker import MaxNLocator

        cbar.locator = MaxNLocator(integer=True)
        cbar.update_ticks()


def _bar_colours(column: str, colours: dict):
    """matplotlib hook colouring each bar by its value of ``column`` (``colours``: value ->
    colour), as the app does: matplotlib's bar plot of HoloViews drew every bar in one colour."""
    def hook(plot, element) -> None:
        for patch, value in zip(plot.handles["axis"].patches, element.dimension_values(column)):
            patch.set_facecolor(colours.get(str(value), "#999999"))
    return hook


def _thin_bar_labels(plot, element) -> None:
    """matplotlib hook of an exported bar chart of many bars: every k-th bar labelled, at most
    :data:`_MOST_BAR_LABELS` labels."""
    ax = plot.handles["axis"]
    ticks, labels = ax.get_xticks(), ax.get_xticklabels()
    step = -(-len(ticks) // _MOST_BAR_LABELS)
    if step > 1:
        ax.set_xticks(ticks[::step], labels[::step])


def _indexed_heatmap(heat, style: dict):
    """``heat`` (a HeatMap of categories in a set order, the confusion matrix) on integer cell
    positions, labelled with its categories, counts in the cells: HoloViews' matplotlib renderer
    labels categorical axes in the order the dimension sets but may grid the cells in another
    (an export put the counts of predicted 1 beside the label 128)."""
    import holoviews as hv

    def order(i):
        dim = heat.kdims[i]
        return [str(v) for v in (dim.values or dict.fromkeys(heat.dimension_values(i)))]

    xs, ys = order(0), order(1)
    value = {(str(a), str(b)): v for a, b, v in zip(*(heat.dimension_values(i) for i in range(3)))}
    rows = [(i, j, value.get((x, y), np.nan)) for i, x in enumerate(xs) for j, y in enumerate(ys)]
    kdims = [hv.Dimension(d.name, label=d.label) for d in heat.kdims]
    out = hv.HeatMap(rows, kdims, heat.vdims[:1]).opts(backend="bokeh", **style)  # the counts
    return out.opts(show_values=True, hooks=[_light_counts_on_dark], xticks=list(enumerate(xs)),
                    yticks=list(enumerate(ys)), backend="matplotlib")


def _app_looks(obj):
    """``obj`` (drawn by the app with Bokeh) with the app's looks carried over to the
    matplotlib renderer [A]: its title, and each element's colour, colour map, line width and
    dash. A confusion matrix's counts are written in its cells by the HeatMap itself: the
    app's hv.Labels over the cells cannot be placed by matplotlib on categorical axes (the
    export of every label decoder's matrix failed). Sets the matplotlib options of ``obj``'s
    elements in place (the plots of :data:`dashboard.views.export.PLOTS` are made for each export)."""
    import holoviews as hv
    from matplotlib.colors import is_color_like

    def bokeh(el, group):
        return hv.Store.lookup_options("bokeh", el, group).kwargs

    title = bokeh(obj, "plot").get("title")
    if isinstance(obj, hv.Overlay):
        heat = [el for el in obj if isinstance(el, hv.HeatMap)]
        if heat and any(isinstance(el, hv.Labels) for el in obj):
            title = title or bokeh(heat[0], "plot").get("title")
            obj = _indexed_heatmap(heat[0], bokeh(heat[0], "style"))
    mpl_options = hv.Store.options(backend="matplotlib")
    for el in obj.traverse(lambda x: x, [hv.Element]):
        style = bokeh(el, "style")
        try:
            allowed = set(mpl_options[type(el).__name__].groups["style"].allowed_keywords)
        except (KeyError, AttributeError):
            continue
        mpl = {new: style[old] for old, new in _STYLE_NAMES.items() if old in style and new in allowed}
        colour = mpl.get("color")
        hooks = []
        if isinstance(el, hv.Bars) and isinstance(colour, str) and colour in [d.name for d in el.vdims] and \
                isinstance(style.get("cmap"), dict):  # each bar's own colour (the pruned units' ablation bars)
            hooks.append(_bar_colours(colour, style["cmap"]))
            mpl.pop("color")
        elif isinstance(colour, str) and colour in el.dimensions("all", label=True) and isinstance(
                style.get("cmap"), dict):  # a class per colour (the unit classes' bars and scatter)
            mpl["color"] = hv.dim(colour).categorize(style["cmap"], default="#999999")
        elif "color" in mpl and not (isinstance(colour, str) and is_color_like(colour)):
            mpl.pop("color")  # a colour mapped from a column otherwise: left to matplotlib
        if isinstance(el, hv.Area) and "color" in mpl:  # its fill follows a colour cycle of its own
            mpl["facecolor"] = mpl["color"]
        if style.get("line_alpha") == 0 and "edgecolor" in allowed:
            mpl["edgecolor"] = "none"
        if isinstance(el, hv.Rectangles) and style.get("fill_alpha") == 0:  # outlines only (the known roles)
            line = style.get("line_color")
            mpl.pop("color", None)
            mpl["facecolor"] = "none"
            mpl["edgecolor"] = hv.dim(line) if isinstance(line, str) and line in el.dimensions("all", label=True) \
                else line
        if not isinstance(el, (hv.HeatMap, hv.Image, hv.QuadMesh)):
            mpl.pop("cmap", None)
        if "marker" in mpl:
            marker = mpl.pop("marker")
            marker = _MARKERS.get(marker) if isinstance(marker, str) else None
            if marker:
                mpl["marker"] = marker
        if mpl.get("linestyle") not in (None, "solid", "dashed", "dotted", "dashdot"):
            mpl.pop("linestyle")  # a Bokeh dash pattern of numbers
        if isinstance(el, hv.Scatter) and "s" in mpl and isinstance(mpl["s"], (int, float)):
            mpl["s"] = mpl["s"] ** 2  # marker size: Bokeh's is a diameter, matplotlib's an area
        else:
            mpl.pop("s", None)
        plot_allowed = set(mpl_options[type(el).__name__].groups["plot"].allowed_keywords)
        mpl.update({k: v for k, v in bokeh(el, "plot").items() if k in _PLOT_NAMES and k in plot_allowed})
        if bokeh(el, "plot").get("legend_position") in _LEGEND_PLACES:
            mpl["legend_position"] = _LEGEND_PLACES[bokeh(el, "plot")["legend_position"]]
            if bokeh(el, "plot")["legend_position"] in _LEGEND_BELOW:
                hooks.append(_legend_below)
        if isinstance(el, hv.Bars) and len(el.dimension_values(0, expanded=False)) > _MOST_BAR_LABELS:
            hooks.append(_thin_bar_labels)
            mpl.update(aspect=2.4, fig_size=160)  # [A] wide, as in the app: 200 bars in a square were slivers
        if hooks:
            mpl["hooks"] = hooks
        if mpl:
            el.opts(backend="matplotlib", **mpl)
        if isinstance(el, hv.HeatMap) and "cmap" in mpl:
            el.opts(backend="matplotlib", colorbar=True)
    if isinstance(obj, hv.Overlay):  # an overlay's axis labels and legend (the traces, the curves, the units)
        plot = bokeh(obj, "plot")
        allowed = set(mpl_options["Overlay"].groups["plot"].allowed_keywords)
        own = {k: v for k, v in plot.items() if k in _PLOT_NAMES and k in allowed}
        if plot.get("legend_position") in _LEGEND_PLACES:
            own["legend_position"] = _LEGEND_PLACES[plot["legend_position"]]
            if plot["legend_position"] in _LEGEND_BELOW:
                own["hooks"] = [_legend_below]
        if own:
            obj.opts(backend="matplotlib", **own)
    if title:
        obj = obj.opts(backend="matplotlib", title=title)
    return obj


# ---- checkpoint --------------------------------------------------------------------------------
def checkpoint_zip(session) -> bytes:
    """A zip of a loadable run folder: ``model.pt`` (the session's weights: its fine-tuned copy,
    else the trained decoder), ``config.json`` and ``mask.json`` (the session's mask).

    ``Workspace.load`` opens the unzipped folder; ``MaskSet.load(..., model=ws.model)`` the mask.
    """
    dec = _require_decoder(session)
    ps = _prune(session)
    model = ps.model or dec.ws.model
    ws = copy.copy(dec.ws)  # shallow: saving sets run_dir on the copy only
    ws.model = model
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="unitscope-export-") as tmp:
        folder = Path(tmp) / "run"
        ws.save(folder, exported_from="UnitScope dashboard", finetuned=bool(ps.finetuned))
        masks = ps.masks()
        if masks is not None:
            masks.save(folder / "mask.json")
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in sorted(folder.iterdir()):
                if p.name in ("model.pt", "config.json", "mask.json"):
                    zf.write(p, f"unitscope-run/{p.name}")
    return buf.getvalue()


# ---- report ------------------------------------------------------------------------------------
def report_content(session):
    """A :class:`core.report.ReportContent` describing the session."""
    from core.report import MAX_UNIT_MAPS, ReportContent

    dec = _require_decoder(session)
    ps = _prune(session)
    ks = session.part("kernels")
    units = [f"{session.layer}/{session.unit}"]
    for layer, idx in ps.pruned.items():
        units += [f"{layer}/{i}" for i in idx]
    units = list(dict.fromkeys(units))[:MAX_UNIT_MAPS]
    curves = []
    if ps.shared is not None:
        curves = [v for k, v in dict(ps.shared.cache).items() if k[0] == "curves"]
    if ps.curves is not None and not any(c is ps.curves for c in curves):
        curves.append(ps.curves)
    kernels = []
    if ks is not None and ks.output is not None:
        kernels.append((ks.output, ks.output_previous))
        if ks.unit is not None and ks.unit_signal != "output":
            kernels.append((ks.unit, ks.unit_previous))
    if ks is not None and ks.channel is not None:  # the input's own kernels (any decoder)
        kernels.append((ks.channel, None))
    ft = dict(ps.finetune_result) if ps.finetune_result else None
    masks = ps.masks()
    after = ps.metric if ps.ready else None
    return ReportContent.from_workspace(
        dec.ws, masks=masks, metric_after=after, probe=session.probe, control=session.control,
        selected_units=units, curves=curves, kernels=kernels, finetune=ft, title=f"UnitScope session: {dec.label}",
        occlusions=list(session.occlusions),
        notes=[f"Probe: {session.probe_source}." if session.probe is not None else "No probe result in this session."])


def report_html(session) -> str:
    from core.report import render_report

    return render_report(report_content(session))


# ---- saving to a folder ---------------------------------------------------------------------------
def resolve_export_folder(text: str, *, root: str | Path | None = None) -> Path:
    """A folder under the data root (created if missing); ``..`` escapes are refused."""
    root = Path(root or data_root()).resolve()
    text = str(text or "").strip() or "exports"
    candidate = Path(text).expanduser()
    full = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if full != root and root not in full.parents:
        raise UnitScopeError(f"The export folder {text!r} lies outside the data root {str(root)!r}; the app writes "
                             "only under it.")
    if full.exists() and not full.is_dir():
        raise UnitScopeError(f"Cannot export to {text!r}: it is a file, not a folder.")
    return full


def _new_export_folder(parent: Path) -> Path:
    """A new, empty folder ``parent/unitscope-YYYYMMDD-HHMMSS[-N]`` (made here, never reused)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        folder = parent / (f"unitscope-{stamp}" + (f"-{n}" if n > 1 else ""))
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
        except OSError as exc:
            raise UnitScopeError(f"Cannot write to the folder {str(parent)!r}: {exc.strerror or exc}. Choose a folder "
                                 "you can write to.") from exc
    raise UnitScopeError(f"Cannot make a new folder in {str(parent)!r}: too many exports this second.")


def _atomic_write(path: Path, data: bytes) -> Path:
    """:func:`core._files.atomic_write_bytes`, its errors as one line naming the folder or file."""
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):  # no temporary file there
            raise UnitScopeError(f"Cannot write to the folder {str(path.parent)!r}: {exc.strerror or exc}. "
                                 "Choose a folder you can write to.") from exc
        raise UnitScopeError(f"Cannot write {str(path)!r}: {exc.strerror or exc}.") from exc
    return path


def save_probe_beside_run(session) -> list[Path]:
    """The session's probe result (and its untrained control) as ``probe.nc`` (and
    ``probe_untrained.nc``) in the run folder shown, as ``unitscope probe RUN_DIR [--untrained]``
    writes them, so the run opens with them next time; atomic, replacing earlier ones.

    Raises
    ------
    UnitScopeError
        No run folder shown, no probe result, or the folder cannot be written.
    """
    from .files import resolve_in_root

    ds = probe_dataset(session)
    if not session.run:
        raise UnitScopeError("The decoder shown was not opened from a run folder: save the probe with the Export "
                             "view instead.")
    from core.cautions import partial_probe_note

    partial = partial_probe_note(ds)
    if partial:  # as unitscope probe: a partial result never replaces the run's probe.nc
        raise UnitScopeError(f"The probe shown was {partial}: run it to its end before keeping it with the run "
                             "(a partial probe would replace the run's probe.nc); the Export view saves it as it is.")
    run = resolve_in_root(session.root, session.run)
    written = [_atomic_write(run / "probe.nc", netcdf_bytes(ds))]
    if session.control is not None:
        written.append(_atomic_write(run / "probe_untrained.nc", netcdf_bytes(session.control)))
    return written


def save_to_folder(session, folder: str, *, root: str | Path | None = None) -> list[Path]:
    """Write the report and whatever results exist (probe, curves, kernels, checkpoint) to ``folder``.

    Returns
    -------
    paths : list of Path
        The files written (the report first), in a new folder of their own under ``folder``
        (``unitscope-YYYYMMDD-HHMMSS``) [A]: sessions saving to the default folder at once had
        replaced each other's files, left another session's probe.nc beside a report, and a run
        folder given as ``folder`` had its own probe.nc replaced.
    """
    parent = resolve_export_folder(folder, root=root)
    report = report_html(session).encode("utf-8")  # (made before its folder: a failure leaves none)
    target = _new_export_folder(parent)
    written = [_atomic_write(target / "unitscope-report.html", report)]
    for name, make in (("probe.nc", lambda: netcdf_bytes(probe_dataset(session))),
                       ("prune_curves.nc", lambda: netcdf_bytes(curves_dataset(session))),
                       ("kernels.nc", lambda: netcdf_bytes(kernels_dataset(session)))):
        try:
            data = make()
        except UnitScopeError:
            continue  # not computed in this session: nothing to write
        written.append(_atomic_write(target / name, data))
    written.append(_atomic_write(target / "unitscope-run.zip", checkpoint_zip(session)))
    return written
