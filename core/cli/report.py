"""``unitscope report RUN_DIR --out report.html``: a self-contained HTML report of a run.

A batch folder (``unitscope batch --out``, holding ``batch.nc``) gets a batch report instead:
the held-out metric per recording and decoder over its runs, the unit classes per layer of
each decoder, and every run (:func:`core.report.render_batch_report`).

Gathers the run folder's results: the decoder and its metric, ``probe.nc`` (unit classes,
maps of ``--units``; a probe stopped before its end, such as ``probe.partial.nc`` given with
``--probe``, is marked partial), ``prune_curves.nc`` and a mask (``--mask FILE``: pruned units and the
metric change), and with ``--kernels`` fits the DUNL kernels of the decoder output (and of the
first ``--units`` unit) on the test block, with and without the mask.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .._validation import UnitScopeError
from ..cautions import partial_probe_note
from ._common import check_out_file


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="write a self-contained HTML report of a run or a batch (opens offline)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by 'unitscope train' (or a batch folder "
                   "of 'unitscope batch': metrics and unit classes over its runs)")
    p.add_argument("--out", default=None, help="HTML file to write (default RUN_DIR/report.html)")
    p.add_argument("--probe", default=None, metavar="FILE", help="probe result (default RUN_DIR/probe.nc if present)")
    p.add_argument("--curves", default=None, metavar="FILE",
                   help="pruning curves (default RUN_DIR/prune_curves.nc if present)")
    p.add_argument("--mask", default=None, metavar="FILE", help="pruning mask (JSON) whose effect is reported")
    p.add_argument("--units", default="", help="units whose maps are drawn, e.g. conv_3/5,conv_4/17 (default none)")
    p.add_argument("--kernels", action="store_true", help="fit DUNL kernels of the decoder output (test block); "
                   "results of 'unitscope deconv' in RUN_DIR (deconv_*.nc) are reported in any case")
    p.add_argument("--title", default=None, help="report title")
    p.set_defaults(func=run)


def _load_nc(path: Path, what: str):
    import xarray as xr

    try:
        with xr.open_dataset(path, engine="h5netcdf") as f:
            return f.load()
    except (OSError, ValueError) as exc:
        raise UnitScopeError(f"Cannot read the {what} {str(path)!r}: {exc}") from exc


def _optional(run_dir: Path, given: str | None, default: str, what: str):
    if given:
        path = Path(given)
        if not path.is_file():
            raise UnitScopeError(f"The {what} file {str(path)!r} does not exist.")
        return _load_nc(path, what)
    path = run_dir / default
    return _load_nc(path, what) if path.is_file() else None


def _this_decoders(ds, weights: str, run_dir: Path, name, *, given: bool, redo: str):
    """``ds`` when made with the run's weights (``weights``: their model_hash; or not saying:
    ``model_hash`` absent), else None with a note (a run folder trained again keeps the results
    of the weights before), or, for a file given by name, an error."""
    if ds is None or ds.attrs.get("model_hash", weights) == weights:
        return ds
    if given:
        raise UnitScopeError(f"{str(name)!r} was made for other weights than the decoder in {str(run_dir)!r}; "
                             f"remake it for this decoder: {redo}.")
    print(f"note: {name} was made for the weights trained before: left out of the report ({redo} remakes it)",
          file=sys.stderr)
    return None


def _task(run_dir: Path) -> str:
    """The run's task from its config.json ("" where it cannot be read: loading the run says why)."""
    import json

    try:
        return str(json.loads((run_dir / "config.json").read_text()).get("task", ""))
    except (OSError, ValueError, AttributeError):
        return ""


def _check_probe(ds, path, *, units: bool):
    """``ds`` when it is a probe whose maps ``--units`` can draw; else a UnitScopeError naming
    what it is (pruning curves given as --probe were reported "computed by other probing code",
    and a probe saved without maps drew a traceback into the report's units section)."""
    if ds is None:
        return None
    from ._results import holds_text, result_kind

    if result_kind(ds) != "probe":
        raise UnitScopeError(f"--probe takes a probe result (probe.nc, as unitscope probe writes it); "
                             f"{str(path)!r} {holds_text(ds, 'probe')}.")
    if units and "amp_corr" not in ds:
        raise UnitScopeError(f"{str(path)!r} was saved without its channel x frequency maps (unitscope probe "
                             "--no-maps), so the maps of --units cannot be drawn: probe without --no-maps, or "
                             "leave out --units.")
    return ds


def parse_units(text: str) -> list[str]:
    """``"conv_3/5, conv_4/17"`` -> ["conv_3/5", "conv_4/17"]."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        layer, _, idx = part.partition("/")
        if not layer or not idx.isdigit():
            raise UnitScopeError(f"Invalid unit {part!r}: expected LAYER/INDEX such as conv_3/5.")
        out.append(f"{layer}/{int(idx)}")
    return out


def _batch(args, run_dir: Path, out: Path) -> int:
    """The report of a batch folder (``batch.nc``): metrics and unit classes over its runs."""
    from ..batch import load_batch
    from ..report import render_batch_report, write_report

    given = [f"--{k}" for k in ("probe", "curves", "mask", "units", "kernels") if getattr(args, k)]
    if given:
        raise UnitScopeError(f"{', '.join(given)} report(s) one run; {str(run_dir)!r} is a batch folder. Report a "
                             f"run of it instead, e.g. unitscope report {run_dir / '<run>'}.")
    ds = load_batch(run_dir)
    path = write_report(render_batch_report(ds, title=args.title or f"UnitScope batch report: {run_dir.name}"), out)
    print(f"batch report of {ds.sizes['run']} runs written to {path}")
    return 0


def run(args) -> int:
    from ..batch import BATCH_FILE
    from ..report import ReportContent, write_report
    from ..workspace import Workspace

    run_dir = Path(args.run_dir)
    out = Path(args.out) if args.out else run_dir / "report.html"
    check_out_file(out, example="report.html")  # said before the report is made
    if (run_dir / BATCH_FILE).is_file() and not (run_dir / "config.json").is_file():
        return _batch(args, run_dir, out)
    if args.kernels and _task(run_dir) == "classification":  # said before the data are read
        raise UnitScopeError("--kernels fits DUNL kernels of a dense decoder's output (a continuous target); "
                             f"{str(run_dir)!r} decodes labels, trial by trial: leave out --kernels (unitscope deconv "
                             f"{run_dir} --signal channel:NAME:BAND deconvolves a channel's band envelope).")
    ws = Workspace.load(run_dir)
    from ..probing._base import model_hash

    weights = model_hash(ws.model)
    probe = _check_probe(_optional(run_dir, args.probe, "probe.nc", "probe result"), args.probe or run_dir / "probe.nc",
                         units=bool(args.units))
    probe = _this_decoders(probe, weights, run_dir,
                           args.probe or run_dir / "probe.nc", given=bool(args.probe), redo=f"unitscope probe {run_dir}")
    if probe is not None:
        from ..probing._base import stale_probe

        from ._results import other_code_note

        if stale_probe(probe, ws.model) == "code":
            print(f"note: {other_code_note(args.probe or run_dir / 'probe.nc', run_dir)}", file=sys.stderr)
        partial = partial_probe_note(probe)
        if partial:  # the report says so beside its classes too
            print(f"note: {args.probe or run_dir / 'probe.nc'} holds a probe {partial}: the report says so; 'unitscope probe "
                  f"{run_dir}' to its end computes a complete one", file=sys.stderr)
    elif not args.probe and (run_dir / "probe.partial.nc").is_file():
        print(f"note: {run_dir / 'probe.partial.nc'} (an interrupted probe) is left out of the report: --probe "
              f"{run_dir / 'probe.partial.nc'} reports it, marked partial", file=sys.stderr)
    curves = _this_decoders(_optional(run_dir, args.curves, "prune_curves.nc", "pruning curves"), weights, run_dir,
                            args.curves or run_dir / "prune_curves.nc", given=bool(args.curves),
                            redo=f"unitscope prune {run_dir} --curve")
    masks = None
    if args.mask:
        from ..pruning import MaskSet

        masks = MaskSet.load(args.mask, model=ws.model)
    units = parse_units(args.units)
    layers = {li.name: li.n_units for li in ws.layers}
    for uid in units:
        layer, idx = uid.split("/")
        if layer not in layers or int(idx) >= layers[layer]:
            raise UnitScopeError(f"Unknown unit {uid!r}; the layers and their units are {layers}.")
    kernels = []
    if args.kernels:
        from ..deconv.apply import EventDeconvolution

        print("fitting DUNL kernels on the test block ...", file=sys.stderr)
        deconv = EventDeconvolution.from_workspace(ws, block="test")
        signals = ["output"] + [f"unit:{units[0].replace('/', ':')}"] if units else ["output"]
        for signal in signals:
            base = deconv.run(signal)
            if masks is not None and masks.n_pruned:
                kernels.append((deconv.refit(base, masks=masks), base))
            else:
                kernels.append((base, None))
    fitted = {k.attrs.get("signal") for k, _ in kernels}
    for path in sorted(run_dir.glob("deconv_*.nc")):  # written by 'unitscope deconv' beside the run
        ds = _this_decoders(_load_nc(path, "deconvolution result"), weights, run_dir, path, given=False,
                            redo=f"unitscope deconv {run_dir}")
        if ds is None:
            continue
        if "kernels" in ds and ds.attrs.get("signal") not in fitted:
            kernels.append((ds, None))
    content = ReportContent.from_workspace(
        ws, masks=masks, probe=probe, selected_units=units, kernels=kernels,
        curves=[curves] if curves is not None else [],
        title=args.title or f"UnitScope report: {run_dir.name}")
    path = write_report(content, out)
    print(f"report written to {path}")
    return 0
