"""``unitscope info PATH``: channels, types, duration, sampling rate, events; or, for a run
folder, its decoder, data, metrics and the result files beside it (from config.json; a probe.nc
of other weights or other probing code is named, from its attrs and model.pt);
or, for a batch folder, the held-out metric per recording and decoder and the failed runs;
or, for a result file UnitScope wrote (``.nc``: a probe, pruning curves, kernels, an encoding
study), what it holds, in the words of the command that wrote it; or, for a pruning mask
(``--save-mask`` JSON), its pruned units. Other files UnitScope writes (a run's config.json,
model.pt, an HTML report) are named, with what to run instead."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._validation import UnitScopeError

# result files a run folder may hold, and what writes them
RUN_FILES = {"model.pt": "weights", "checkpoint.pt": "training state, for --resume",
             "checkpoint.partial.pt": "an interrupted training, for train --resume",
             "probe.nc": "unitscope probe", "probe_untrained.nc": "unitscope probe --untrained",
             "prune_curves.nc": "unitscope prune --curve"}


MOST_TYPES = 20  # [A] event types listed by name; --json has them all

# what ``unitscope info`` describes, for the files it does not
ACCEPTS = ("unitscope info describes recordings (a file MNE reads, a BCI2000 .dat, a BIDS folder), run folders, "
           "batch folders, UnitScope's result files (.nc) and pruning masks (.json)")


def _what_writes(name: str) -> str | None:
    """What wrote a run folder's file, by its name (``deconv_<signal>[_<block>].nc`` included)."""
    if name in RUN_FILES:
        return RUN_FILES[name]
    return "unitscope deconv" if name.startswith("deconv_") and name.endswith(".nc") else None


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="describe a recording (channels, types, duration, sfreq, events), a run folder "
                                    "or a result file")
    p.add_argument("path", help="recording file, BIDS folder, 'demo', a run folder (config.json), a batch "
                   "folder (batch.nc), a result file (.nc: probe, pruning curves, kernels, encoding) or a pruning "
                   "mask (.json)")
    p.add_argument("--bids", default=None, metavar="ENTITIES",
                   help="of a BIDS folder, the recording to describe: 'subject=01,run=1' or 'sub-01_run-1' "
                        "(default: the first; every recording is listed)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..demo import simulate_reaching
    from ..io import bids_recordings, is_bids_root, parse_bids, read_recording
    from ..recording import label_targets

    if args.path != "demo":
        from ..batch import BATCH_FILE

        folder = Path(args.path)
        if (folder / "config.json").is_file():
            return _run_info(folder, as_json=args.json)
        if (folder / BATCH_FILE).is_file():
            return _batch_info(folder, as_json=args.json)
        if folder.is_file() and folder.suffix.lower() == ".nc":
            if folder.name == BATCH_FILE:
                return _batch_info(folder.parent, as_json=args.json)
            return _result_info(folder, as_json=args.json)
        if folder.is_file() and folder.suffix.lower() in (".json", ".pt", ".pth", ".html", ".htm"):
            return _own_file_info(folder, as_json=args.json)  # no format MNE reads: UnitScope's own files
        if folder.is_dir() and _training_left(folder):
            return _training_info(folder, as_json=args.json)
        if folder.is_dir() and not is_bids_root(folder) and _batch_runs(folder):
            return _unfinished_batch_info(folder, as_json=args.json)
    bids = parse_bids(getattr(args, "bids", None))
    listed = []
    if args.path != "demo" and is_bids_root(args.path):
        listed = bids_recordings(args.path)
    elif bids:
        raise UnitScopeError(f"--bids chooses a recording of a BIDS folder; {args.path!r} is not one "
                             "(no dataset_description.json).")
    try:
        rec = simulate_reaching() if args.path == "demo" else read_recording(args.path, bids=bids or None)
    except UnitScopeError as exc:
        # MNE's "Unsupported file type (.py). Consider using a dedicated reader function": a
        # file of no recording format; say what info takes instead
        if isinstance(exc.__cause__, ValueError) and "Unsupported file type" in str(exc.__cause__):
            raise UnitScopeError(f"{args.path!r} is no recording format UnitScope reads "
                                 f"({Path(args.path).suffix or 'no suffix'}); {ACCEPTS}.") from exc
        raise
    s = rec.summary()
    if listed:
        chosen = bids_recordings(args.path, bids)[0]
        s.update(bids_recordings=listed, bids_chosen=chosen)
    if args.json:
        print(json.dumps(s))
        return 0
    if listed:
        print(f"bids       {len(listed)} recording(s): " + ", ".join(r["label"] for r in listed[:40])
              + (" ..." if len(listed) > 40 else ""))
        other = next((r for r in listed if r["path"] != chosen["path"]), None)
        hint = f"   (another: --bids {other['label'].split()[0]})" if other else ""
        print(f"shown      {chosen['label']}: {chosen['path']}{hint}")
    names = s["ch_names"]
    print(f"channels   {s['n_chans']}: {', '.join(names[:16])}{' ...' if len(names) > 16 else ''}")
    print(f"types      {', '.join(f'{k} x{v}' for k, v in s['ch_types'].items())}")
    print(f"sfreq      {s['sfreq']:g} Hz")
    print(f"duration   {s['duration_s']:.1f} s ({s['n_times']} samples)")
    if s.get("read_note"):
        print(f"caution    {s['read_note']}")
    if s["target"]:
        print(f"target     {s['target']}")
    ev = s["events"]
    spacing = s.get("event_spacing_s")
    kinds = [f"{k} x{v}" for k, v in ev.items()]
    if len(kinds) > MOST_TYPES:  # (a file's thousands of codes printed 191 KB)
        kinds = kinds[:MOST_TYPES] + [f"... {len(kinds) - MOST_TYPES} more types (--json lists all)"]
    print(f"events     {sum(ev.values())}" + (f": {', '.join(kinds)}" if ev else "")
          + (f" ({spacing:g} s apart, median)" if spacing is not None else ""))
    targets = label_targets(ev)
    if targets:
        print(f"labels     --target {' | '.join(targets[:6])}{' | ...' if len(targets) > 6 else ''}")
    print(f"positions  {s['positions']}")
    if s.get("bad_segments"):
        print(f"bad spans  {s['bad_segments']} marked in the file ({s['bad_seconds']:.1f} s; BAD/EDGE annotations): "
              "left out of the standardisation, the windows and the trials")
    if s["bads"]:
        print(f"bads       {len(s['bads'])} marked in the file: {', '.join(s['bads'][:20])}"
              f"{' ...' if len(s['bads']) > 20 else ''} (left out of the inputs unless --picks names them)")
    return 0


def _training_left(folder: Path) -> bool:
    """Whether ``folder`` (no config.json) holds a training that has not ended: an interrupted
    one's checkpoint.partial.pt, a checkpoint.pt an earlier UnitScope left when interrupted, or
    a training that holds its lock now."""
    from ..training import CHECKPOINT_FILE, PARTIAL_FILE, training_by

    return (folder / PARTIAL_FILE).is_file() or (folder / CHECKPOINT_FILE).is_file() or bool(training_by(folder))


def _training_info(folder: Path, *, as_json: bool) -> int:
    """A run folder without config.json: an interrupted training (what it has done, on what,
    and the command that continues it), or one in progress."""
    from ..io import source_label
    from ..training import CHECKPOINT_FILE, PARTIAL_FILE, checkpoint_summary, training_by

    now = training_by(folder)
    path = folder / PARTIAL_FILE if (folder / PARTIAL_FILE).is_file() else folder / CHECKPOINT_FILE
    s = checkpoint_summary(path) if path.is_file() else None
    record = (s or {}).get("record") or {}
    data, train = record.get("data") or {}, record.get("train") or {}
    if record:
        resume = f"unitscope train --out {folder} --resume"
    else:
        resume = (f"unitscope train --out {folder} --resume --data RECORDING --target TARGET (with the options it "
                  "was trained with: this checkpoint, from an earlier UnitScope, does not record them)")
    state = "training now" if now else "interrupted" if s else "starting"
    out = {"run": str(folder), "state": state, "training_by": now or None, "checkpoint": str(path) if s else None,
           "epochs_done": s["epochs"] if s else 0, "max_epochs": train.get("max_epochs"),
           "best_epoch": s["best_epoch"] + 1 if s and s["best_epoch"] >= 0 else None, "record": record or None,
           "resume": None if now else resume}
    if as_json:
        print(json.dumps(out))
        return 0
    if now:
        print(f"run        {folder}: a training in progress ({now}); no config.json until it ends")
    else:
        print(f"run        {folder}: an interrupted training (no config.json: the run was never completed)")
    if record:
        m = record.get("model") or {}
        print(f"decoder    {m.get('kind', train.get('model', '?'))}, {m.get('n_chans', '?')} channels, "
              f"{m.get('n_outputs', '?')} output(s), {m.get('n_times', '?')}-sample windows")
        target = data.get("target") or ("hand speed" if data.get("source") == "demo" else "?")
        print(f"data       {source_label(str(data.get('source')), data.get('bids'))} ({record.get('task', '?')}; "
              f"target {target})")
    if s:
        last = s["history"][-1] if s["history"] else {}
        best = (f", best valid metric {s['best_valid']:.4f} at epoch {s['best_epoch'] + 1}"
                if s["best_epoch"] >= 0 else "")
        print(f"training   {s['epochs']} of {train.get('max_epochs', '?')} epoch(s) done{best}"
              + (f" (last valid metric {last['valid_metric']:.4f})" if "valid_metric" in last else ""))
    files = sorted(f.name for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))
    print(f"files      {', '.join(f'{f} ({_what_writes(f)})' if _what_writes(f) else f for f in files) or 'none'}")
    if now:
        print("next       wait for it to end (unitscope info shows the run then)")
    elif s:
        print(f"next       {resume}")
    return 0


def _batch_runs(folder: Path) -> dict:
    """The run folders directly in ``folder`` (a batch folder whose batch.nc was never written):
    ``{"complete": [names with config.json], "unfinished": [names with a training left]}``, or
    {} when there are none."""
    from ..batch import RUN_NAME_END

    complete, unfinished = [], []
    # runs as core.batch.plan_runs names them (a folder of other runs is no batch)
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and RUN_NAME_END.search(p.name)):
        if (sub / "config.json").is_file():
            complete.append(sub.name)
        elif _training_left(sub):
            unfinished.append(sub.name)
    return {"complete": complete, "unfinished": unfinished} if complete or unfinished else {}


def _unfinished_batch_info(folder: Path, *, as_json: bool) -> int:
    """A folder of run folders without batch.nc: a batch interrupted (or still running)."""
    runs = _batch_runs(folder)
    done, left = runs["complete"], runs["unfinished"]
    if as_json:
        print(json.dumps({"batch": str(folder), "state": "unfinished", "complete": done, "unfinished": left}))
        return 0
    print(f"batch      {folder}: no batch.nc (the batch was interrupted, or still runs): {len(done)} complete "
          f"run(s), {len(left)} unfinished")
    if done:
        print(f"complete   {', '.join(done)}   (unitscope info {folder / done[0]}, and so on)")
    if left:
        print(f"unfinished {', '.join(left)}   (each continues with unitscope train --out {folder / left[0]} "
              "--resume, and so on)")
    print(f"next       unitscope batch with the same options and --out {folder} runs every run again and writes "
          "batch.nc")
    return 0


def _batch_info(folder: Path, *, as_json: bool) -> int:
    """A batch folder: the held-out metric per recording and decoder, and the failed runs."""
    from ..batch import load_batch, summarise_batch

    ds = load_batch(folder)
    summary = summarise_batch(ds)
    groups, failed = summary["groups"], summary["failed"]
    if as_json:
        print(json.dumps({"batch": str(folder), "n_runs": int(ds.sizes["run"]), "groups": groups, "failed": failed,
                          "probed": "class_fraction" in ds}))
        return 0
    print(f"batch      {folder}: {ds.sizes['run']} runs, {len(failed)} failed"
          f"{', probed' if 'class_fraction' in ds else ''}")
    for g in groups:
        spread = f" ± {g['sd']:.4f}" if g["sd"] == g["sd"] else ""  # no sd with one run
        lost = f", {g['n_failed']} failed" if g["n_failed"] else ""
        print(f"           {g['source']} {g['model']}: test {g['mean']:.4f}{spread} over "
              f"{g['n'] - g['n_failed']} run(s){lost}")
    for run, err in failed.items():
        print(f"failed     {run}: {err}")
    print(f"next       unitscope report {folder}   (metrics and unit classes over the runs)")
    return 0


def _own_file_info(path: Path, *, as_json: bool) -> int:
    """A file UnitScope writes that is no recording: a pruning mask is described; a run
    folder's own file (config.json, model.pt, checkpoint.pt, report.html) points to its folder;
    anything else says what info describes (a UnitScopeError, one line)."""
    in_run = (path.parent / "config.json").is_file()
    folder = f"unitscope info {path.parent} describes that run" if in_run else ""
    if path.suffix.lower() == ".json":
        try:
            content = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise UnitScopeError(f"{str(path)!r} is not valid JSON ({exc.__class__.__name__}); {ACCEPTS}.") from exc
        from ..pruning.masks import FORMAT

        if isinstance(content, dict) and content.get("format") == FORMAT:
            return _mask_info(path, content, as_json=as_json)
        if in_run and path.name == "config.json":
            raise UnitScopeError(f"{str(path)!r} is the configuration of the run folder {str(path.parent)!r}: "
                                 f"{folder}.")
        raise UnitScopeError(f"{str(path)!r} is a JSON file but not a pruning mask (format {FORMAT!r}); {ACCEPTS}.")
    if path.suffix.lower() in (".html", ".htm"):
        raise UnitScopeError(f"{str(path)!r} is an HTML page (unitscope report writes them): open it in a browser; "
                             + (f"{folder}." if in_run else f"{ACCEPTS}."))
    held = {"model.pt": "the weights", "checkpoint.pt": "the training state (for unitscope train --resume)"}
    from ..training import PARTIAL_FILE

    if path.name == PARTIAL_FILE:
        raise UnitScopeError(f"{str(path)!r} holds an interrupted training into the run folder {str(path.parent)!r}: "
                             f"unitscope info {path.parent} describes it, and unitscope train --out {path.parent} "
                             "--resume continues it.")
    if in_run and path.name in held:
        raise UnitScopeError(f"{str(path)!r} holds {held[path.name]} of the run folder {str(path.parent)!r}: "
                             f"{folder}.")
    raise UnitScopeError(f"{str(path)!r} is not described by info (weights? a decoder's state dict becomes a run "
                         f"folder with unitscope import {path} --data RECORDING --out RUN_DIR); {ACCEPTS}.")


def _mask_info(path: Path, content: dict, *, as_json: bool) -> int:
    """A pruning mask (``unitscope prune --save-mask``, the app's Export): its decoder and the
    units it prunes per layer."""
    from ..pruning import MaskSet

    try:
        masks = MaskSet.from_dict(content)
    except (UnitScopeError, TypeError, ValueError, AttributeError) as exc:
        raise UnitScopeError(f"{str(path)!r} is a UnitScope pruning mask that cannot be read: {exc}") from exc
    sig = masks.signature
    pruned = {layer: masks.pruned(layer).tolist() for layer in masks.layers}
    if as_json:
        print(json.dumps({"mask": str(path), "signature": sig, "n_pruned": masks.n_pruned, "pruned": pruned}))
        return 0
    units = sig.get("units", {})
    print(f"mask       {path}: a pruning mask (unitscope prune --save-mask, the app's Export)")
    print(f"decoder    {sig.get('kind', '?')}, {sig.get('n_chans', '?')} channels, {sig.get('n_outputs', '?')} "
          f"output(s); layers {', '.join(f'{k} {v}' for k, v in units.items())}")
    print(f"pruned     {masks.n_pruned} of {sum(units.values())} units: "
          + ", ".join(f"{k} {len(v)}/{units.get(k, '?')}" for k, v in pruned.items()))
    listed = [f"{layer}: {', '.join(map(str, idx[:30]))}{' ...' if len(idx) > 30 else ''}"
              for layer, idx in pruned.items() if idx]
    for i, line in enumerate(listed):
        print(f"{'units' if i == 0 else '':<11}{line}")
    print(f"use        unitscope prune|deconv|report RUN_DIR --mask {path} (a run of this decoder), or the app's "
          "Prune view")
    return 0


def run_summary(run_dir: Path) -> dict:
    """What a run folder holds, from its ``config.json`` (no data are loaded)."""
    path = Path(run_dir) / "config.json"
    try:
        cfg = json.loads(path.read_text())
        model, data, metrics = cfg["model"], cfg["data"], cfg.get("metrics", {})
        layers = {l["name"]: int(l["n_units"]) for l in cfg.get("layers", [])}
        summary = {
            "run": str(run_dir), "model": model["kind"], "dense": bool(model["dense"]),
            "n_chans": int(model["n_chans"]), "n_outputs": int(model["n_outputs"]), "n_times": int(model["n_times"]),
            "task": cfg["task"], "data": data, "metrics": metrics, "epochs": len(cfg.get("history", [])),
            "layers": layers,
            # 1-based, as the text and the training's messages count epochs; metrics["best_epoch"]
            # is config.json's own 0-based index, kept as written
            "kept_epoch": int(metrics["best_epoch"]) + 1 if int(metrics.get("best_epoch", -1)) >= 0 else None,
            "files": sorted(f.name for f in Path(run_dir).iterdir() if f.is_file() and not f.name.startswith(".")),
        }
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise UnitScopeError(f"Corrupt run config {str(path)!r}: {exc}") from exc
    return summary


def _run_info(run_dir: Path, *, as_json: bool) -> int:
    from ..io import source_label
    from ._common import metric_cautions, on_count, per_class_line

    s = run_summary(run_dir)
    if as_json:
        print(json.dumps(s))
        return 0
    m, d = s["metrics"], s["data"]
    name = "pearson_r" if s["task"] == "regression" else "balanced_accuracy"
    print(f"run        {s['run']}")
    print(f"decoder    {s['model']} ({'dense' if s['dense'] else 'trial-wise'}), {s['n_chans']} channels, "
          f"{s['n_outputs']} output(s), {s['n_times']}-sample windows")
    prep = [f"target {d.get('target') or ('hand speed' if d['source'] == 'demo' else '?')}"]
    if d.get("ipsi_fraction"):
        prep.append(f"{float(d['ipsi_fraction']):.0%} ipsilateral movements")
    if d.get("picks"):
        prep.append(f"{len(d['picks'])} picked channels")
    if d.get("l_freq") or d.get("h_freq"):
        prep.append(f"band-pass {d.get('l_freq') or 0:g}-{d.get('h_freq') or 'Nyquist'} Hz")
    if d.get("sfreq"):
        prep.append(f"resampled to {d['sfreq']:g} Hz")
    print(f"data       {source_label(d['source'], d.get('bids'))} ({s['task']}; {', '.join(prep)})")
    if "test" in m:
        print(f"metric     test {name} {m['test']:.4f}{on_count(m, 'test')}, valid {m.get('valid', float('nan')):.4f}"
              f"{on_count(m, 'valid')}")
        if per_class_line(m):
            print(f"per class  test trials called right: {per_class_line(m)}")
        for text in metric_cautions(s["task"], m):
            print(f"caution    {text}")
    if m.get("weights_from"):
        print(f"weights    imported from {m['weights_from']} (unitscope import)")
    elif s["epochs"]:
        kept = f", kept epoch {s['kept_epoch']}" if s["kept_epoch"] else ""
        secs = f", {float(m['train_seconds']):.0f} s" if "train_seconds" in m else ""
        print(f"training   {s['epochs']} epoch(s){kept}{secs}{' (stopped)' if m.get('stopped') else ''}")
    print(f"layers     {', '.join(f'{k} {v}' for k, v in s['layers'].items())}")
    known = [f"{f} ({_what_writes(f)})" for f in s["files"] if _what_writes(f)]
    other = [f for f in s["files"] if not _what_writes(f) and f != "config.json"]
    print(f"files      {', '.join(known + other)}")
    for why in result_notes(run_dir, s["files"]) + _training_notes(run_dir):
        print(f"note       {why}")
    if "probe.nc" not in s["files"]:
        print(f"next       unitscope probe {s['run']}")
    else:
        print(f"read       unitscope info {Path(s['run']) / 'probe.nc'}   (and each result file so)")
    return 0


def _training_notes(run_dir: Path) -> list[str]:
    """A training into a complete run's folder that has not ended: in progress, or interrupted
    (its checkpoint.partial.pt), with the command that continues it."""
    from ..training import PARTIAL_FILE, checkpoint_summary, training_by

    now = training_by(run_dir)
    if now:
        return [f"a training into this folder is in progress ({now}); the run above stays until it ends"]
    partial = run_dir / PARTIAL_FILE
    if not partial.is_file():
        return []
    try:
        s = checkpoint_summary(partial)
        done = f" ({s['epochs']} of {((s['record'] or {}).get('train') or {}).get('max_epochs', '?')} epochs done)"
    except UnitScopeError:
        done = ""
    return [f"{PARTIAL_FILE} holds an interrupted training into this folder{done}; the run above is the earlier, "
            f"complete one. unitscope train --out {run_dir} --resume continues it"]


def _reported(name: str) -> bool:
    """Whether ``unitscope report`` reads a run folder's file (probe.nc, prune_curves.nc,
    deconv_*.nc), leaving it out when made for other weights."""
    return name in ("probe.nc", "prune_curves.nc") or (name.startswith("deconv_") and name.endswith(".nc"))


def _redo(name: str, attrs: dict, run_dir: Path) -> str:
    """The command that makes a run folder's pruning curves or kernels again, for its decoder."""
    if name == "prune_curves.nc":
        return f"unitscope prune {run_dir} --curve"
    # deconv_<signal>[_<block>][_masked].nc, as unitscope deconv names it
    stem = name[:-len(".nc")].removesuffix("_masked")
    block = next((b for b in ("train", "valid", "all") if stem.endswith(f"_{b}")), None)
    return (f"unitscope deconv {run_dir} --signal {attrs.get('signal', 'SIGNAL')}"
            + (f" --block {block}" if block else "") + (" --mask FILE" if name.endswith("_masked.nc") else ""))


def result_notes(run_dir: Path, files) -> list[str]:
    """What keeps the result files of a run folder that ``unitscope report`` reads (``files``:
    names) from describing its decoder, in words, one note each: a probe.nc of the weights
    trained before or of other probing code; the other results (pruning curves, kernels) made
    for the weights trained before, which the report leaves out. Each file's weights are
    judged as the report judges them (:func:`core.probing._base.stale_probe`: a file without
    ``model_hash`` is taken as given). Reads the files' attrs and the weights (model.pt), not
    the data; [] when nothing is to be said."""
    import xarray as xr

    from ..probing._base import stale_probe
    from ..workspace import load_run_model

    run_dir = Path(run_dir)
    notes, attrs = [], {}
    for name in (f for f in files if _reported(f)):
        try:
            with xr.open_dataset(run_dir / name, engine="h5netcdf") as f:
                attrs[name] = dict(f.attrs)
        except Exception as exc:  # noqa: BLE001 - a file that cannot be read is said, not raised
            notes.append(f"{name} cannot be read ({exc.__class__.__name__})")
    made_for = {name: a for name, a in attrs.items() if "model_hash" in a}
    if not made_for:
        return notes
    m = json.loads((run_dir / "config.json").read_text())["model"]
    try:
        model = load_run_model(run_dir, m)
    except UnitScopeError as exc:  # unreadable, or weights of another architecture: the loader's words
        return notes + [str(exc).splitlines()[0]]
    why = {name: stale_probe(xr.Dataset(attrs=a), model) for name, a in made_for.items()}
    probe = why.pop("probe.nc", "")  # "code": the same weights, other probing code (only a probe says)
    if probe == "weights":
        notes.append(f"probe.nc was made for the weights trained before: unitscope probe {run_dir} probes these")
    elif probe == "code":
        notes.append(other_code_note("probe.nc", run_dir))
    before = [name for name, w in why.items() if w == "weights"]
    if before:
        redo = list(dict.fromkeys(_redo(name, made_for[name], run_dir) for name in before))
        notes.append(f"{', '.join(before)} {'was' if len(before) == 1 else 'were'} made for the weights trained "
                     f"before, so unitscope report leaves {'it' if len(before) == 1 else 'them'} out: "
                     f"{' and '.join(redo)} remake{'s' if len(redo) == 1 else ''} "
                     f"{'it' if len(before) == 1 else 'them'} for these")
    return notes


def other_code_note(name, run_dir) -> str:
    """The words for a probe result of these weights computed by other probing code."""
    return f"{name} was computed by other probing code (an earlier UnitScope): unitscope probe {run_dir} updates it"


RESULT_KINDS = {"probe": "unitscope probe", "pruning_curve": "unitscope prune --curve", "dunl": "unitscope deconv",
                "encoding": "unitscope encode"}  # kind -> the command that writes it
KIND_NAMES = {"probe": "probe", "pruning_curve": "pruning curves", "dunl": "kernels (DUNL)",
              "encoding": "encoding study", "app_pruning": "pruning curves and ablation effects",
              "app_kernels": "kernels (DUNL)"}
WRITERS = {**RESULT_KINDS, "app_pruning": "the app's Export view", "app_kernels": "the app's Export view"}


def result_kind(ds) -> str:
    """Which UnitScope command wrote a result Dataset (its ``method`` attr), or ""."""
    method = str(ds.attrs.get("method", ""))
    if "unit" in ds.dims and ("amp_stat_all" in ds or "phase_stat_all" in ds):
        return "probe"
    if method == "pruning_curve+single_unit_ablation":  # the app's Export: curves of several layers
        return "app_pruning"
    if method == "dunl" and "kernel" not in ds.dims:  # the app's Export: output_*, unit_*, channel_* fits
        return "app_kernels"
    if method in ("pruning_curve", "dunl"):
        return method
    if method.startswith("Deep Recurrent Encoder") or {"score", "model"} <= set(ds.variables):
        return "encoding"
    return ""


def _result_info(path: Path, *, as_json: bool) -> int:
    """A result file UnitScope wrote: what it is and holds (no model or data loaded)."""
    from .._files import load_netcdf

    try:
        ds = load_netcdf(path)
    except Exception as exc:  # noqa: BLE001 - xarray's words name its backends, not the file's fault
        raise UnitScopeError(f"{str(path)!r} cannot be read: it is not a netCDF-4 (HDF5) file, as UnitScope "
                             f"writes them, or it is damaged ({exc.__class__.__name__}).") from exc
    kind = result_kind(ds)
    if not kind:
        raise UnitScopeError(
            f"{str(path)!r} is a netCDF file UnitScope did not write (method attr {ds.attrs.get('method')!r}): "
            f"unitscope info describes recordings, run folders, batch folders and the result files of "
            f"{', '.join(RESULT_KINDS.values())}.")
    lines, facts = {"probe": _probe_lines, "pruning_curve": _curve_lines, "dunl": _kernel_lines,
                    "encoding": _encoding_lines, "app_pruning": _app_pruning_lines,
                    "app_kernels": _app_kernel_lines}[kind](ds)
    if as_json:
        print(json.dumps({"result": str(path), "kind": kind, "written_by": WRITERS[kind], **facts},
                         default=str))
        return 0
    print(f"result     {path}: {KIND_NAMES[kind]}, written by {WRITERS[kind]}")
    for line in lines:
        print(line)
    return 0


def _made_for(ds) -> str:
    a = ds.attrs
    block = a.get("block")
    if block is not None and not isinstance(block, str):  # a deconvolution keeps its block's sample range
        block = "samples {}-{}".format(*np.asarray(block).ravel()[:2])
    parts = [f"weights {a['model_hash']}" if "model_hash" in a else "",
             f"run {a['run_dir']}" if "run_dir" in a else "", f"block {block}" if block is not None else ""]
    return ", ".join(p for p in parts if p)


def _probe_lines(ds) -> tuple[list[str], dict]:
    from ..probing._base import code_version
    from ..probing.stats import sensitivity_peak
    from .probe import class_lines, validity_text

    a = ds.attrs
    site = {"conv": "before BatchNorm (conv output, as the seed paper)", "nonlin": "after the nonlinearity"}
    layers = [str(x) for x in dict.fromkeys(ds["layer"].values)]
    counts = {layer: int((ds["layer"].values == layer).sum()) for layer in layers}
    done = float(a.get("progress", 1.0))
    lines = [f"probe      {a.get('method', '?')}, units read {site.get(a.get('site'), a.get('site', '?'))}"
             + (" (untrained control)" if int(a.get("untrained", 0)) else ""),
             f"data       {int(a.get('n_windows', 0))} windows of {int(a.get('n_times', 0))} samples at "
             f"{float(a.get('sfreq', float('nan'))):g} Hz, {ds.sizes.get('channel', 0)} channels; "
             f"{int(a.get('amp_iterations', 0))} of {int(a.get('amp_n_iterations', 0))} iterations per pass"
             + ("" if done >= 1 else f" (stopped at {done:.0%})"),
             "bands      " + ", ".join(f"{b} {float(lo):g}-{float(hi):g} Hz" for b, lo, hi in
                                      zip(ds["band"].values, ds["band_lo"].values, ds["band_hi"].values)),
             f"units      {ds.sizes['unit']}: " + ", ".join(f"{k} {v}" for k, v in counts.items())]
    made = _made_for(ds)
    if made:
        lines.append(f"made for   {made}")
    if a.get("code_version") and a["code_version"] != code_version():
        lines.append(f"note       computed by other probing code ({a['code_version']}; this UnitScope's is "
                     f"{code_version()}): unitscope probe RUN_DIR computes it again")
    if "unit_class_all" in ds:
        lines += [f"classes    {line}" if i == 0 else f"           {line}" for i, line in enumerate(class_lines(ds))]
    lines.append(f"validity   {validity_text(ds)}")
    facts = {"site": a.get("site"), "n_units": int(ds.sizes["unit"]), "units_per_layer": counts,
             "n_windows": int(a.get("n_windows", 0)), "progress": done, "most_sensitive": {}}
    weighted = a.get("resolution", "band") == "band"
    for kind, prefix in (("amplitude", "amp"), ("phase", "phase")):
        var = f"{prefix}_stat_all"
        if var not in ds:
            continue
        top = [str(u) for u in ds["unit"].values[np.argsort(-np.nan_to_num(ds[var].values, nan=-np.inf))[:3]]]
        peaks = [sensitivity_peak(ds, u, prefix) for u in top]
        facts["most_sensitive"][kind] = [{"unit": u, **p} for u, p in zip(top, peaks)]
        lines.append(f"{'top ' + ('amp' if kind == 'amplitude' else kind):<11}" + ", ".join(
            f"{u} {p['score']:.3f} ({'all channels' if p['shared'] else p['channel']}, {p['band'].replace('_', ' ')})"
            for u, p in zip(top, peaks)))
    lines.append("           (sensitivity: a unit's largest |band-mean r| x sqrt(bins in the band) over channels "
                 "and bands)" if weighted else "           (sensitivity: a unit's largest |r| over channels and bins)")
    return lines, facts


def _curve_lines(ds) -> tuple[list[str], dict]:
    from .prune import curve_lines

    made = _made_for(ds)
    facts = {"metric": ds.attrs.get("metric"), "baseline": float(ds.attrs["baseline"]),
             "orders": [str(o) for o in ds["order"].values], "fractions": ds["fraction"].values.tolist(),
             "curves": {str(o): ds["metric"].sel(order=o).values.tolist() for o in ds["order"].values}}
    return ([f"made for   {made}"] if made else []) + curve_lines(ds), facts


def _kernel_lines(ds) -> tuple[list[str], dict]:
    from .deconv import summary_lines

    a = ds.attrs
    lines = [f"signal     {a.get('signal', '?')}, {a.get('likelihood', '?')} likelihood, {ds.sizes.get('event', 0)} "
             f"events, {ds.sizes.get('kernel', 0)} kernel(s) of {ds.sizes.get('lag', 0) * float(a.get('bin_seconds', 0)):.2f} s"
             + (f", refit under a mask ({a['refit']})" if a.get("refit") else "")]
    made = _made_for(ds)
    if made:
        lines.append(f"made for   {made}")
    facts = {"signal": a.get("signal"), "r2": float(a.get("r2", float("nan"))),
             "kernels": [str(k) for k in ds["kernel"].values], "n_events": int(ds.sizes.get("event", 0))}
    return lines + summary_lines(ds), facts


def _encoding_lines(ds) -> tuple[list[str], dict]:
    from .encode import result_lines

    a = ds.attrs
    sizes = ", ".join(f"{ds.sizes[d]} {d}s" for d in ("subject", "channel", "feature") if d in ds.sizes)
    lines = [f"study      {a.get('method', '?')}; data {a.get('data', a.get('data_source', '?'))} ({sizes})"]
    facts = {"models": [str(m) for m in ds["model"].values],
             "score": {str(m): float(ds["score"].sel(model=m)) for m in ds["model"].values}}
    return lines + result_lines(ds), facts


def _mask_text(pruned: dict) -> str:
    """A session's mask ({layer: [units]}, as the app's exports keep it) in a few words."""
    return (", ".join(f"{k} {len(v)}" for k, v in pruned.items()) or "nothing") + " pruned"


def _app_pruning_lines(ds) -> tuple[list[str], dict]:
    """The app's pruning export: the session's mask and metric, each layer's curves, the
    largest single-unit drops."""
    from .prune import curve_lines, drops_line

    a = ds.attrs
    pruned = json.loads(a.get("session_pruned", "{}") or "{}")
    lines = [f"decoder    {a.get('decoder', '?')}; {a.get('metric', 'metric')} {float(a.get('metric_unpruned', np.nan)):.4f}"
             f" unpruned, {float(a.get('metric_pruned', np.nan)):.4f} with the session's mask ({_mask_text(pruned)})"]
    facts = {"metric_unpruned": float(a.get("metric_unpruned", np.nan)), "session_pruned": pruned, "curves": {}}
    if "metric" in ds and "layer" in ds["metric"].dims:
        for layer in ds["layer"].values:
            sub = ds[[v for v in ("metric", "random_lo", "random_hi") if v in ds]].sel(layer=layer)
            sub.attrs = {"block": "test", "metric": a.get("metric", "metric"), "baseline": a.get("metric_unpruned"),
                         "scores": a.get("by", "?"), "layers": str(layer)}
            lines += curve_lines(sub)
            facts["curves"][str(layer)] = {str(o): sub["metric"].sel(order=o).values.tolist()
                                           for o in sub["order"].values}
    if "ablation_drop" in ds:
        lines.append(f"ablation   {ds['ablation_drop'].sizes.get('unit', 0)} units; {drops_line(ds['ablation_drop'])}")
    return lines, facts


def _app_kernel_lines(ds) -> tuple[list[str], dict]:
    """The app's kernels export: each fit (decoder output, unit, input channel) as deconv prints it."""
    from .deconv import summary_lines

    lines, facts = [], {"fits": {}}
    pruned = json.loads(ds.attrs.get("pruned", "{}") or "{}")
    lines.append(f"mask       v{ds.attrs.get('mask_version', '?')}: {_mask_text(pruned)}")
    for name in ("output", "unit", "channel"):
        if f"{name}_kernels" not in ds:
            continue
        own = [v for v in ds.variables if str(v).startswith(f"{name}_")]
        sub = ds[[v for v in own if v in ds.data_vars]]
        sub = sub.rename({v: str(v)[len(name) + 1:] for v in sub.variables if str(v).startswith(f"{name}_")})
        sub.attrs = {"r2": float(ds.attrs.get(f"{name}_r2", np.nan))}
        signal = ds.attrs.get(f"{name}_signal", name)
        lines.append(f"signal     {signal}")
        lines += [f"           {line}" for line in summary_lines(sub)]
        facts["fits"][str(signal)] = {"r2": sub.attrs["r2"], "kernels": [str(k) for k in sub["kernel"].values]}
    return lines, facts
