"""``unitscope prune RUN_DIR``: mask units and re-measure decoding, or write pruning curves.

Two modes:

* ``--layer conv_3 --units 1,2,5-9 [--layer conv_4 --units 7]``: mask those units (after each
  block's nonlinearity and pooling) and print the held-out metric before and after each layer's
  change; ``--save-mask FILE`` keeps the mask as JSON, ``--finetune`` adds a short masked
  fine-tune and prints how much decoding recovers.
* ``--curve``: metric versus fraction pruned, most / least sensitive first and random (mean and
  95% band), written as netCDF (default ``RUN_DIR/prune_curves.nc``); ``--ablation`` adds the
  drop caused by masking each unit alone. Units are ranked by ``RUN_DIR/probe.nc`` (or
  ``--scores FILE``) when present, else by the pruning engine's own band-amplitude sensitivity;
  a probe stopped before its end (``probe.partial.nc``) ranks them with a caution, one stopped
  before its first iteration not at all.

``--mask FILE`` starts from a saved mask (refused if it was saved for another architecture).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from .._validation import UnitScopeError
from ._common import (Progress, bar, chance_caution, check_out_dir, check_out_file, metric_str, seed_arg,
                      undefined_note)


def add_parser(sub) -> None:
    p = sub.add_parser("prune", help="mask units and re-measure decoding, or write pruning curves (netCDF)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by 'unitscope train'")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--units", action="append", default=None, metavar="LIST",
                      help="unit indices to mask, e.g. 1,2,5-9 (one --units per --layer)")
    mode.add_argument("--curve", action="store_true", help="compute pruning curves and write them as netCDF")
    p.add_argument("--layer", action="append", default=None, metavar="NAME",
                   help="block name (with --units: the block the units belong to; with --curve: "
                        "restrict the curve to these blocks, default the whole network)")
    p.add_argument("--block", default="test", help="held-out block measured (default test)")
    p.add_argument("--mask", default=None, metavar="FILE", help="start from a mask saved as JSON")
    p.add_argument("--save-mask", default=None, metavar="FILE", help="write the resulting mask as JSON")
    p.add_argument("--by", default=None, choices=("amplitude", "phase", "either", "ablation"),
                   help="ranking of the units: probe sensitivity (default: either when both are available), or "
                        "ablation: each unit's own single-unit drop (importance), measured on --rank-block")
    p.add_argument("--rank-block", default=None, metavar="BLOCK",
                   help="with --by ablation: the block whose single-unit drops rank the units (default valid, "
                        "or test when --block is valid); never the measured block, whose noise the ranking "
                        "would then follow")
    p.add_argument("--reduce", default="max", choices=("max", "energy"),
                   help="per-unit summary of a probe: max, its statistic (the max over channels and bands of "
                        "|band-mean r|, each band weighted by the square root of its bins; default), or energy, the "
                        "sum of squares of its channel x band maps (total sensitivity)")
    p.add_argument("--scores", default=None, metavar="FILE",
                   help="netCDF with per-unit scores (default RUN_DIR/probe.nc when present)")
    p.add_argument("--fractions", default=None, help="comma-separated fractions (default 0,0.1,...,1)")
    p.add_argument("--orders", default="most,least,random", help="pruning orders (most, least, random; default all three)")
    p.add_argument("--repeats", type=int, default=20, help="random orders drawn for the random curve (default 20)")
    p.add_argument("--seed", type=seed_arg, default=0, help="seed of the random orders (default 0)")
    p.add_argument("--ablation", action="store_true", help="with --curve: add every unit's single-unit drop")
    p.add_argument("--out", default=None, help="curves file (default RUN_DIR/prune_curves.nc)")
    p.add_argument("--finetune", action="store_true",
                   help="with --units: a short masked fine-tune of a copy afterwards, to see how much of the "
                        "metric it recovers (the run's weights stay as they are; --save-run keeps the tuned copy)")
    p.add_argument("--save-run", default=None, metavar="DIR",
                   help="with --finetune: write the fine-tuned copy as a new run folder (model.pt, config.json, and "
                        "its mask as mask.json), which every command opens (default: not saved)")
    p.add_argument("--epochs", type=int, default=2, help="fine-tune epochs (default 2)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.set_defaults(func=run)


def parse_units(text: str) -> list[int]:
    """``"1,2,5-7"`` -> [1, 2, 5, 6, 7]."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        rng = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        try:
            out.extend(range(int(rng[1]), int(rng[2]) + 1) if rng else [int(part)])
        except ValueError as exc:
            raise UnitScopeError(f"Invalid unit list {text!r}: expected integers and ranges such as 1,2,5-9.") from exc
    if not out:
        raise UnitScopeError(f"Invalid unit list {text!r}: no unit given.")
    return out


def _check_probe(ds, path: Path, ws, run_dir) -> None:
    """A scores file ranks this decoder's units only if it was made for these weights
    (:func:`core.probing._base.stale_probe`); a probe result from other probing code is noted."""
    from ..probing._base import stale_probe
    from ._results import result_kind

    why = stale_probe(ds, ws.model)
    if why == "weights":
        made = ds.attrs.get("run_dir")
        named = (f"; it was made for the decoder in {str(made)!r}"
                 if made and str(made) != str(Path(run_dir).resolve()) else "")
        raise UnitScopeError(f"{str(path)!r} was made for other weights than the decoder in {str(run_dir)!r} "
                             f"(another decoder, or this one before it was trained again{named}): run "
                             f"'unitscope probe {run_dir}' to rank its own units.")
    if why == "code" and result_kind(ds) == "probe":  # code_version is a probe's: other results lack it
        from ._results import other_code_note

        print(f"note: {other_code_note(path.name, run_dir)}", file=sys.stderr)


def _check_partial(ds, path: Path, run_dir) -> str:
    """A probe stopped before its end (:func:`core.cautions.partial_probe_note`) ranks units by
    fewer perturbations than asked for: said on stderr, and ``"; partial: ..."`` returned for the
    curves' ``scores`` attr; one stopped before its first iteration holds no score: refused."""
    from ..cautions import partial_probe_note, probe_iterations_done

    note = partial_probe_note(ds)
    if not note:
        return ""
    if probe_iterations_done(ds) == 0:
        raise UnitScopeError(f"{str(path)!r} holds a probe {note}: it has no sensitivity to rank units by. Run "
                             f"'unitscope probe {run_dir}' to its end (or give --scores a complete probe).")
    print(f"caution: ranking by {path.name}, a probe {note}: its sensitivities rest on fewer perturbations than asked "
          f"for, so the ranking is noisier ('unitscope probe {run_dir}' to its end computes a complete one)",
          file=sys.stderr)
    return f"; partial: {note}"


SCORES_TAKES = ("a probe result (probe.nc, as unitscope probe writes it) or a netCDF of per-unit scores "
                "(amp_stat_all, phase_stat_all, amplitude_r or ablation_drop)")


def _no_scores(ds, path: Path, given: bool) -> UnitScopeError:
    """The error for a scores file without per-unit scores: what it holds instead."""
    from ._results import holds_text, result_kind

    holds = holds_text(ds, "per-unit scores")
    if result_kind(ds) == "pruning_curve":
        holds += ", without single-unit drops (--curve --ablation adds them)"
    return UnitScopeError(f"{'--scores' if given else 'Ranking units'} takes {SCORES_TAKES}; {str(path)!r} {holds}.")


def rank_block(args) -> str:
    """The block whose single-unit ablation drops rank units (``--by ablation``): never the
    measured one. [A] Ranked on the block a curve then measures, the units are chosen for that
    block's noise: on the demo decoder's conv_4 the 10% least important units cost 0.07 of test
    r ranked on the test block, 0.41 ranked on the validation block."""
    block = args.rank_block or ("test" if args.block == "valid" else "valid")
    if block == args.block:
        raise UnitScopeError(f"--rank-block {block} is the measured block (--block {args.block}): units ranked by "
                             "their drops on the block that measures them are chosen for its noise; rank on "
                             "another block (e.g. valid).")
    return block


def _drops(ablation_effects, ev, args, masks, what: str):
    """Every unit's single-unit ablation drop, with a progress line (one evaluation per unit:
    the whole network's 375 units took over a minute on two cores without a sign)."""
    show = Progress()
    try:
        return ablation_effects(ev, layers=args.layer, base=masks, progress=lambda p: show(
            p["fraction"], f"{what} {bar(p['fraction'])} {p['done']}/{p['total']} units of {p['layer']}"))
    finally:
        show.close()


def _scores(args, ws, ev=None, masks=None) -> tuple[dict, str]:
    """Keyword arguments of ``pruning_curve`` carrying the ranking, and where they came from."""
    import xarray as xr

    if args.by == "ablation":  # importance: every unit's own drop, measured on another block
        from ..pruning import MaskEvaluator, ablation_effects


        block = rank_block(args)
        print(f"ranking by each unit's single-unit ablation drop on the {block} block", file=sys.stderr)
        X, y = ws.eval_set(block)
        drop = _drops(ablation_effects, MaskEvaluator(ws.model, X, y, task=ws.task), args, masks, "ranking")
        drop.attrs["block"] = block
        return dict(scores=drop), f"single-unit ablation drop on the {block} block"

    path = Path(args.scores) if args.scores else Path(args.run_dir) / "probe.nc"
    if args.scores and not path.is_file():
        raise UnitScopeError(f"Scores file {str(path)!r} does not exist.")
    if path.is_file():
        try:
            with xr.open_dataset(path, engine="h5netcdf") as f:
                ds = f.load()
        except (OSError, ValueError) as exc:
            raise UnitScopeError(f"Cannot read scores file {str(path)!r}: {exc}") from exc
        if not ({"amp_stat_all", "phase_stat_all", "amplitude_r", "ablation_drop"} & set(ds.data_vars)):
            raise _no_scores(ds, path, bool(args.scores))
        _check_probe(ds, path, ws, args.run_dir)
        partial = _check_partial(ds, path, args.run_dir)
        if args.reduce == "energy" and "amp_band" in ds:  # the (unit, channel, band) maps
            given = {"amplitude": ds.get("amp_band"), "phase": ds.get("phase_band")}
        else:
            given = {"amplitude": ds.get("amp_stat_all"), "phase": ds.get("phase_stat_all")}
        if given["amplitude"] is None and "amplitude_r" in ds:
            given["amplitude"] = ds["amplitude_r"]
        given = {k: v for k, v in given.items() if v is not None}
        if given:
            by = args.by or ("either" if len(given) == 2 else next(iter(given)))
            return dict(by=by, reduce=args.reduce, **given), f"{path.name} ({by}, {args.reduce}{partial})"
        drop = ds["ablation_drop"]
        if "layer" not in drop.coords:  # (in a curves file its layer coord gives way to the curves' layer dim)
            drop = drop.assign_coords(layer=("unit", [str(u).rsplit("/", 1)[0] for u in drop["unit"].values]))
        return dict(scores=drop), f"{path.name} (single-unit ablation drop)"
    if args.by not in (None, "amplitude"):
        raise UnitScopeError(f"Ranking by {args.by!r} needs the probe results: run 'unitscope probe "
                             f"{args.run_dir}' first (no {str(path)!r}).")
    import numpy as np

    from ..pruning import amplitude_sensitivity

    X = ws.windows("train")
    X = X[np.unique(np.linspace(0, len(X) - 1, min(len(X), 64)).round().astype(int))]
    from .probe import partial_path

    unused = (f" ({partial_path(path).name}, an interrupted probe, is used only when given: --scores "
              f"{partial_path(path)})" if partial_path(path).is_file() else "")
    print(f"no probe.nc{unused}: ranking by the pruning engine's band-amplitude sensitivity", file=sys.stderr)
    amp = amplitude_sensitivity(ws.model, X, sfreq=ws.recording.sfreq, n_iter=10, rng=args.seed,
                                ch_names=ws.recording.ch_names)
    return dict(amplitude=amp, by="amplitude", reduce=args.reduce), "band-amplitude sensitivity (fallback)"


def _run_model(run_dir):
    """A run folder's decoder, from its config.json and model.pt alone (no data read);
    Workspace.load says what is wrong with a folder this cannot read."""
    import json

    from ..workspace import Workspace, load_run_model

    try:
        mcfg = json.loads((Path(run_dir) / "config.json").read_text())["model"]
        return load_run_model(run_dir, mcfg)
    except (OSError, ValueError, KeyError, TypeError):
        Workspace.load(run_dir)  # raises the folder's own error
        raise


def _run_masks(run_dir):
    """An empty MaskSet of a run folder's decoder (:func:`_run_model`: no data read)."""
    from ..pruning import MaskSet

    return MaskSet.for_model(_run_model(run_dir))


def _check_layers_and_units(args, masks) -> None:
    """The --layer names and --units lists, checked against the decoder's maskable layers
    (the MaskSet's own errors) before any work."""
    layers = args.layer or []
    if args.units:
        if len(layers) != len(args.units):
            raise UnitScopeError(f"Give one --layer per --units: got {len(layers)} --layer and {len(args.units)} "
                                 "--units.")
        for layer, text in zip(layers, args.units):
            masks.copy().prune(layer, parse_units(text))
    else:
        for layer in layers:
            masks.copy().prune(layer, [])


def _check_options(args) -> None:
    """What the options say, checked before any data are read or anything computed: --out and
    --save-mask writable files, --finetune with --units and at least one epoch, --curve's
    fractions, orders and repeats."""
    if args.out is not None:
        if not args.curve:
            raise UnitScopeError("--out names the file of the pruning curves (--curve); with --units, --save-mask "
                                 "FILE keeps the mask.")
        check_out_file(args.out)
    elif args.curve:  # the default, beside the run
        check_out_file(Path(args.run_dir) / "prune_curves.nc", given="The curves file")
    if args.save_mask is not None:
        check_out_file(args.save_mask, given="--save-mask")
    if args.by == "ablation" and args.scores:  # (it was left unread without a word)
        raise UnitScopeError("--by ablation measures each unit's drop itself (on --rank-block), so --scores is not "
                             "read: leave out --scores, or rank by what the file holds (--by amplitude, phase or "
                             "either for a probe; a curves file's single-unit drops rank without --by).")
    if args.finetune:
        if not args.units:
            raise UnitScopeError("--finetune fine-tunes the decoder with the units of --layer NAME --units LIST "
                                 "masked: give them.")
        if args.epochs < 1:
            raise UnitScopeError(f"Invalid value for --epochs: the fine-tune needs at least 1 epoch, got {args.epochs}.")
    if args.save_run is not None:
        if not args.finetune:
            raise UnitScopeError("--save-run writes the fine-tuned copy of --finetune: add --finetune (--save-mask "
                                 "FILE keeps the mask of the run's own weights).")
        save = check_out_dir(args.save_run, given="--save-run")
        if (save / "config.json").exists() or save.resolve() == Path(args.run_dir).resolve():
            raise UnitScopeError(f"--save-run {str(save)!r} holds a run; give a new folder (the fine-tuned copy "
                                 "never replaces a run).")
    if args.curve:
        curve_options(args)


MASKED = "with these units masked it is a constant"  # why a masked decoder's metric is NaN


def _changed(value: float, before: float, word: str = "") -> str:
    """``"0.1234 (+0.0100)"``: a metric and its change from ``before``; when either is NaN, the
    value or why it is undefined, without a change."""
    if value == value and before == before:
        return f"{value:.4f} ({word}{value - before:+.4f})"
    return metric_str(value, MASKED)


def _units_mode(args, ws, ev, masks) -> int:
    layers = args.layer or []
    name = ev.metric_name
    start = ev.evaluate(masks)
    print(f"{args.block} {name}: {metric_str(start, MASKED)} "
          f"({'baseline' if masks.n_pruned == 0 else f'{masks.n_pruned} units already masked'})")
    caution = chance_caution(ev, args.block)
    if caution:
        print(caution, file=sys.stderr)
    current = start
    for layer, text in zip(layers, args.units):
        units = parse_units(text)
        before = masks.n_pruned
        masks = masks.copy().prune(layer, units)
        value = ev.evaluate(masks)
        new = masks.n_pruned - before  # (units masked already, by --mask or an earlier pair, count once)
        already = len(set(units)) - new
        print(f"+ {layer}: {new} unit(s) masked{f' ({already} of those named were masked already)' if already else ''}"
              f" -> {_changed(value, current)}")
        current = value
    print(f"total: {masks.n_pruned} units masked: {metric_str(ev.baseline, MASKED)} -> "
          f"{_changed(current, ev.baseline, 'change ')}")
    if args.save_mask:
        print(f"wrote {masks.save(args.save_mask)}")
    if args.finetune:
        from ..pruning import FinetuneConfig, finetune

        if ws.task == "regression":
            Xtr, ytr = ws.data.batch(ws.data.window_starts("train"))
        else:
            Xtr, ytr = ws.eval_set("train")
        show = Progress()
        try:
            res = finetune(ws.model, Xtr, ytr, masks=masks, task=ws.task, config=FinetuneConfig(n_epochs=args.epochs),
                           X_eval=ev.X.numpy(), y_eval=ev.y,
                           progress=lambda p: show(p["fraction"], f"fine-tune {bar(p['fraction'])} "
                                                                  f"{100 * p['fraction']:5.1f}%"))
        finally:
            show.close()
        change = res.after - res.before
        said = (f"recovered {change:+.4f}" if change >= 0 else f"fine-tuning lowered the metric by {-change:.4f}")
        print(f"fine-tune ({res.n_steps} steps): {res.before:.4f} -> {res.after:.4f} ({said})")
        if args.save_run:
            import copy

            tuned = copy.copy(ws)  # (shallow: saving sets run_dir on the copy only)
            tuned.model = res.model
            tuned.save(args.save_run, exported_from=f"unitscope prune --finetune of {args.run_dir}", finetuned=True)
            masks.save(Path(args.save_run) / "mask.json")
            print(f"wrote {args.save_run}: the fine-tuned copy (model.pt, config.json) and its mask (mask.json); "
                  f"'unitscope prune {args.save_run} --mask {Path(args.save_run) / 'mask.json'}' measures it masked")
    return 0


def curve_options(args) -> tuple[list | None, list[str]]:
    """``--fractions`` (None: the default) and ``--orders`` of ``--curve``, checked with
    ``--repeats`` before any work, in the options' own names (the engine named its parameters,
    'n_repeats' and 'fraction', only after the baseline was measured)."""
    from .._validation import suggest
    from ..pruning.curves import ORDERS

    fractions = None
    if args.fractions:
        try:
            fractions = [float(f) for f in args.fractions.split(",") if f.strip()]
        except ValueError as exc:
            raise UnitScopeError(f"Invalid --fractions {args.fractions!r}: expected numbers such as 0,0.2,0.5.") from exc
        if not fractions:
            raise UnitScopeError(f"Invalid --fractions {args.fractions!r}: no fraction given.")
        bad = [f for f in fractions if not 0 <= f <= 1]
        if bad:
            raise UnitScopeError(f"Invalid --fractions {args.fractions!r}: fractions of the units pruned lie from 0 "
                                 f"to 1, got {bad[0]:g}.")
    orders = [o.strip() for o in args.orders.split(",") if o.strip()]
    for o in orders or [""]:
        if o not in ORDERS:
            raise UnitScopeError(f"Invalid --orders {args.orders!r}: expected a comma-separated list of "
                                 f"{', '.join(ORDERS)}, got {o!r}.{suggest(o, ORDERS)}")
    if "random" in orders and args.repeats < 1:
        raise UnitScopeError(f"Invalid value for --repeats: the random order needs at least 1 draw, got "
                             f"{args.repeats}.")
    return fractions, orders


def _curve_mode(args, ws, ev, masks) -> int:
    from ..pruning import ablation_effects, pruning_curve

    fractions, orders = curve_options(args)
    kw, source = _scores(args, ws, ev, masks) if {"most", "least"} & set(orders) else ({}, "none")

    show = Progress()
    try:
        curves = pruning_curve(ev, layers=args.layer, fractions=fractions, orders=orders, n_repeats=args.repeats,
                               rng=args.seed, base=masks, progress=lambda p: show(
                                   p["fraction"], f"curves {bar(p['fraction'])} {100 * p['fraction']:5.1f}%"),
                               **kw)
    finally:
        show.close()
    if args.ablation:
        curves["ablation_drop"] = _drops(ablation_effects, ev, args, masks, "single-unit drops")
    curves.attrs.update(run_dir=str(Path(args.run_dir).resolve()), block=args.block, scores=source)
    out = Path(args.out) if args.out else Path(args.run_dir) / "prune_curves.nc"
    from ..training import atomic_write_netcdf
    atomic_write_netcdf(curves, out)
    lines = curve_lines(curves)
    print(lines[0])
    caution = chance_caution(ev, args.block)
    if caution:
        print(caution, file=sys.stderr)
    print("\n".join(lines[1:]))
    print(f"wrote {out}")
    return 0


def curve_lines(curves) -> list[str]:
    """Pruning curves (:func:`core.pruning.pruning_curve`, as ``--curve`` writes them) in words:
    what was measured and ranked, the metric per fraction and order, the largest single-unit
    drops when they were measured."""
    import numpy as np

    a = curves.attrs
    metric = str(a.get("metric", "metric"))
    lines = [f"{a.get('block', 'test')} {metric} (baseline {float(a['baseline']):.4f}); ranked by "
             f"{a.get('scores', a.get('by', '?'))}; layers {a.get('layers', '?')}"]
    head = "".join(f"{o:>9}" for o in curves["order"].values)
    n_random = int(a.get("n_repeats", 0) or 0)
    # [A] from 10 orders (the app's): a band of one or two orders says nothing (--repeats 1 gave
    # [-0.19, -0.19]), which is said
    band_name = ("random 95% band" if n_random >= 10 or not n_random else
                 f"random 95% band of {n_random} order{'s' * (n_random != 1)} (too few to mean much)")
    lines.append(f"fraction{head}" + (f"   {band_name}" if "random_lo" in curves else ""))
    undefined = False  # a cell shows "-" (a NaN metric): a footnote says why; "-0.1234" is no such cell
    for i, q in enumerate(curves["fraction"].values):
        values = curves["metric"].values[:, i]
        row = "".join(f"{v:9.4f}" if v == v else f"{'-':>9}" for v in values)
        undefined |= bool(np.isnan(values).any())
        band = ""
        if "random_lo" in curves:
            lo, hi = float(curves["random_lo"][i]), float(curves["random_hi"][i])
            undefined |= lo != lo or hi != hi
            band = f"   [{lo:.4f}, {hi:.4f}]".replace("[nan, nan]", "-")
        lines.append(f"{q:8.2f}{row}{band}")
    if undefined:
        lines.append(f"-: {undefined_note('with every unit of a block pruned it is a constant')}")
    if "ablation_drop" in curves:
        lines.append(drops_line(curves["ablation_drop"]))
    return lines


def drops_line(drop) -> str:
    """The five largest single-unit ablation drops (a DataArray over ``unit``), in one line."""
    import numpy as np

    top = np.argsort(-np.nan_to_num(drop.values, nan=-np.inf))[:5]
    return "largest single-unit drops: " + ", ".join(f"{drop['unit'].values[i]} {drop.values[i]:+.4f}" for i in top)


def run(args) -> int:
    from ..pruning import MaskEvaluator, MaskSet
    from ..training import configure_threads
    from ..workspace import Workspace

    configure_threads(args.threads)
    if not args.units and not args.curve and not args.mask:
        raise UnitScopeError("Nothing to do: give --layer NAME --units LIST, --curve, or --mask FILE.")
    if args.units and not args.layer:
        raise UnitScopeError("--units needs --layer NAME (the block the units belong to).")
    if args.rank_block and args.by != "ablation":
        raise UnitScopeError("--rank-block names the block whose ablation drops rank the units: it goes with "
                             "--by ablation.")
    if args.by == "ablation":
        rank_block(args)  # refused at once when it is the measured block
    _check_options(args)  # before the data are read and the baseline is measured
    if args.layer or args.mask:  # a typo, or a mask of another decoder, is said before any work
        model = _run_model(args.run_dir)
        if args.layer:
            _check_layers_and_units(args, MaskSet.for_model(model))
        if args.mask:
            MaskSet.load(args.mask, model=model)
    ws = Workspace.load(args.run_dir)
    masks = MaskSet.load(args.mask, model=ws.model) if args.mask else MaskSet.for_model(ws.model)
    X, y = ws.eval_set(args.block)
    ev = MaskEvaluator(ws.model, X, y, task=ws.task)
    if args.curve:
        return _curve_mode(args, ws, ev, masks)
    if args.units:
        return _units_mode(args, ws, ev, masks)
    value = ev.evaluate(masks)
    print(f"{args.block} {ev.metric_name}: {metric_str(ev.baseline, MASKED)} -> "
          f"{_changed(value, ev.baseline, 'change ')} with {masks.n_pruned} units masked")
    return 0
