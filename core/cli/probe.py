"""``unitscope probe RUN_DIR``: amplitude and phase probe of every unit, written beside the model.

Writes ``RUN_DIR/probe.nc`` (or ``--out``) atomically: the :class:`xarray.Dataset` of
:func:`core.probing.probe_units` (maps, band summaries, statistics, unit classes, validity);
``--map-bin HZ`` averages the maps into wider frequency bins and ``--no-maps`` leaves them
out (:func:`core.probing.pipeline.bin_maps`), for montages whose maps run to hundreds of MB.
Ctrl-C stops the probe (the pass in progress is dropped) and writes the passes completed, a
partial result (its ``progress`` attr below 1), beside the output as ``probe.partial.nc``
(:func:`partial_path`), never over it: a complete ``probe.nc`` stays as it was. Interrupted
before every pass has completed an iteration, it writes nothing.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .._validation import UnitScopeError
from ..cautions import partial_probe_note, validity_text  # the validity check's words: the app says them too
from ._common import Progress, bar, check_out_file, option_names, seed_arg


def class_lines(ds) -> list[str]:
    """``"LAYER: amplitude 20%, phase 38%, ..."`` per probed block of a classified probe result."""
    from ..probing.stats import class_fractions

    frac = class_fractions(ds)
    return [f"{layer}: " + ", ".join(f"{c} {100 * float(frac.sel(layer=layer, **{'class': c})):.0f}%"
                                     for c in frac["class"].values) for layer in frac["layer"].values]


def add_parser(sub) -> None:
    from ..probing import ProbeConfig

    d = ProbeConfig()
    p = sub.add_parser("probe", help="probe every unit's amplitude and phase sensitivity (writes probe.nc)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by 'unitscope train'")
    p.add_argument("--out", default=None, help="output file (default RUN_DIR/probe.nc)")
    p.add_argument("--iterations", type=int, default=d.n_iterations,
                   help=f"perturbations per pass (default {d.n_iterations})")
    p.add_argument("--windows", type=int, default=d.n_windows, help=f"at most this many windows (default {d.n_windows})")
    p.add_argument("--block", default="train", help="block whose windows are probed (default train)")
    p.add_argument("--layers", default=None, help="comma-separated block names (default all)")
    p.add_argument("--site", default=d.site, choices=("conv", "nonlin"),
                   help="conv output before BatchNorm (default) or after the nonlinearity")
    p.add_argument("--variant", default=d.phase_variant, choices=("channel", "shared"),
                   help="phase shifts per channel (default) or shared by all channels")
    p.add_argument("--noise", default=d.noise, choices=("std", "mad", "raw"),
                   help=f"amplitude noise reference per (channel, bin) (default {d.noise})")
    p.add_argument("--noise-scale", type=float, default=d.noise_scale,
                   help=f"amplitude noise sd / reference (default {d.noise_scale:g})")
    p.add_argument("--null", type=int, default=d.n_null,
                   help="permutation-null replicates per iteration (default 16, or 4 with --resolution freq)")
    p.add_argument("--resolution", default=d.resolution, choices=("band", "freq"),
                   help="max-statistic over band means (default) or single bins")
    p.add_argument("--alpha", type=float, default=d.alpha, help=f"false-discovery rate across units (default {d.alpha:g})")
    p.add_argument("--seed", type=seed_arg, default=d.seed, help=f"(default {d.seed})")
    maps = p.add_mutually_exclusive_group()
    maps.add_argument("--map-bin", type=float, default=None, metavar="HZ",
                      help="store the (unit, channel, freq) maps averaged into HZ-wide bins (default: every "
                           "frequency bin of the window; the maps are most of the file: 553 MB for Deep4 on 306 "
                           "MEG channels, 116 MB in 1 Hz bins)")
    maps.add_argument("--no-maps", action="store_true",
                      help="store no maps: band summaries, statistics and classes only")
    p.add_argument("--untrained", action="store_true",
                   help="probe a freshly initialised twin of the model instead (the control)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.set_defaults(func=run)


MAPS_HINT_MB = 100  # maps larger than this: say how to store them smaller


def partial_path(out: Path) -> Path:
    """Where an interrupted probe writes its partial result: beside ``out``, ``probe.nc`` ->
    ``probe.partial.nc`` (a partial result never replaces a complete one)."""
    return out.with_suffix(".partial" + out.suffix)


def run(args) -> int:
    from ..cautions import no_discovery_note
    from ..probing import ProbeConfig, resolve_layers
    from ..probing.pipeline import finish, start_probe, untrained_twin, workspace_windows
    from ..training import configure_threads
    from ..workspace import Workspace

    if args.map_bin is not None and not args.map_bin > 0:  # said before the probe runs, not after
        raise UnitScopeError(f"--map-bin must be a positive frequency in Hz, got {args.map_bin:g}.")
    out = Path(args.out) if args.out else Path(args.run_dir) / ("probe_untrained.nc" if args.untrained else "probe.nc")
    check_out_file(out, given="--out" if args.out else "The output file")  # a folder failed only after the probe
    if partial_path(out).is_dir():
        raise UnitScopeError(f"{str(partial_path(out))!r} is a folder: an interrupted probe writes its partial result "
                             "there; move or rename the folder.")
    threads = configure_threads(args.threads)
    with option_names({"n_iterations": "--iterations", "n_windows": "--windows", "noise_scale": "--noise-scale",
                       "n_null": "--null", "alpha": "--alpha"}):
        cfg = ProbeConfig(n_iterations=args.iterations, n_windows=args.windows,
                          layers=args.layers.split(",") if args.layers else None, site=args.site,
                          noise=args.noise, noise_scale=args.noise_scale, phase_variant=args.variant,
                          n_null=args.null, resolution=args.resolution, alpha=args.alpha,
                          seed=args.seed).validate()
    ws = Workspace.load(args.run_dir)
    bands = ws.probe_bands()  # within the run's band-pass, where it has one
    if bands is not None:
        from dataclasses import replace

        cfg = replace(cfg, bands=bands)
        print(f"unitscope probe: bands within the run's band-pass: "
              f"{', '.join(f'{k} {lo:g}-{hi:g} Hz' for k, (lo, hi) in bands.items())}", file=sys.stderr)
    model = untrained_twin(ws.model, seed=args.seed + 1) if args.untrained else ws.model
    layers = resolve_layers(model, cfg.layers)
    X, y = workspace_windows(ws, args.block)
    print(f"unitscope probe: {len(layers)} blocks, {sum(li.n_units for li in layers)} units, "
          f"{min(len(X), cfg.n_windows or len(X))} {args.block} windows x {X.shape[-1]} samples, "
          f"{cfg.n_iterations} iterations x 2 passes, torch_threads={threads}", file=sys.stderr)
    run_ = start_probe(model, X, sfreq=ws.recording.sfreq, config=cfg, y=y, task=ws.task,
                       ch_names=ws.recording.ch_names)
    show = Progress()
    interrupted = False
    try:
        for r in run_:
            show(r.progress, f"{bar(r.progress)} {100 * r.progress:5.1f}%")
    except KeyboardInterrupt:
        interrupted = True
    show.close()
    partial = not run_.finished
    if partial:  # interrupted: the partial result goes beside the output, never over it
        done, planned = min(run_.done), max(p.n_iterations for p in run_.probes)
        kept = f"{out} was not replaced" if out.is_file() else f"no {out.name} was written"
        if done == 0:
            print(f"interrupted before every pass had completed an iteration (0 of {planned}): nothing written; "
                  f"{kept}", file=sys.stderr)
            return 130
        complete_out, out = out, partial_path(out)
        print(f"interrupted after {done} of {planned} iterations per pass ({run_.progress:.0%}): writing the partial "
              f"result to {out}; {kept}", file=sys.stderr)
    from ..probing.pipeline import maps_mb

    full_mb = maps_mb(run_)
    ds = finish(run_, map_bin=args.map_bin, maps=not args.no_maps)  # binned without the full maps in memory
    ds.attrs["run_dir"] = str(Path(args.run_dir).resolve())
    ds.attrs["block"] = args.block
    ds.attrs["untrained"] = int(args.untrained)
    if ws.task == "classification":  # the chance level of the validity check's balanced accuracy
        import numpy as np

        ds.attrs["n_classes"] = int(len(np.unique(np.asarray(y))))
    from ..training import atomic_write_netcdf
    atomic_write_netcdf(ds, out)
    if "unit_class_all" in ds:
        for line in class_lines(ds):
            print(line)
        note = no_discovery_note(ds)
        if note:
            print(f"note: {note}: probe more windows (--windows; the {args.block} block has {len(X)}) or iterations "
                  "(--iterations), or a longer recording", file=sys.stderr)
    elif args.null == 0:  # (it said nothing: no class lines, and a probe.nc without unit classes)
        print("note: with --null 0 there is no permutation null, so no unit is tested or classified; the "
              "sensitivities are written (--null 16, the default, classifies them)", file=sys.stderr)
    size_mb = out.stat().st_size / 1e6
    print(f"validity: {validity_text(ds)}; wrote {out} ({size_mb:.1f} MB)")
    if partial:
        print(f"{out.name} holds a probe {partial_probe_note(ds)}: its sensitivities and classes rest on fewer perturbations "
              f"than asked for. 'unitscope probe {args.run_dir}' with the same options computes a complete "
              f"{complete_out.name}; 'unitscope prune {args.run_dir} --curve --scores {out}' ranks by this one.",
              file=sys.stderr)
    if full_mb > MAPS_HINT_MB and not args.no_maps and args.map_bin is None:
        df = float(ds["freq"].values[1] - ds["freq"].values[0]) if ds.sizes.get("freq", 0) > 1 else float("nan")
        print(f"the maps are {full_mb:.0f} MB ({ds.sizes['channel']} channels x {ds.sizes['freq']} bins of "
              f"{df:.2f} Hz); --map-bin 1 stores them in 1 Hz bins, --no-maps without them", file=sys.stderr)
    return 130 if interrupted else 0
