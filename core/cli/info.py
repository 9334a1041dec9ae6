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

from .._validation import UnitScopeError
from ._common import json_text
from ._results import result_info, result_notes

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
        if not folder.exists():  # (named "Recording ... does not exist" when it was a run or a result)
            raise UnitScopeError(f"{str(folder)!r} does not exist; info takes a recording, a BIDS folder, a run "
                                 "folder, a result file (.nc) or 'demo'.")
        if (folder / "config.json").is_file():
            return _run_info(folder, as_json=args.json)
        if (folder / BATCH_FILE).is_file():
            return _batch_info(folder, as_json=args.json)
        if folder.is_file() and folder.suffix.lower() == ".nc":
            if folder.name == BATCH_FILE:
                return _batch_info(folder.parent, as_json=args.json)
            return result_info(folder, as_json=args.json)
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
        print(json_text(s))
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
          + (f" ({spacing:.3g} s apart, median)" if spacing is not None else ""))
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
        print(json_text(out))
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
        print(json_text({"batch": str(folder), "state": "unfinished", "complete": done, "unfinished": left}))
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
        print(json_text({"batch": str(folder), "n_runs": int(ds.sizes["run"]), "groups": groups, "failed": failed,
                          "probed": "class_fraction" in ds}))
        return 0
    print(f"batch      {folder}: {ds.sizes['run']} runs, {len(failed)} failed"
          f"{', probed' if 'class_fraction' in ds else ''}")
    for g in groups:
        spread = f" ± {g['sd']:.4f}" if g["sd"] == g["sd"] else ""  # no sd with one run
        lost = f", {g['n_failed']} failed" if g["n_failed"] else ""
        print(f"           {g['source']} {g['model']}: test {g['metric']} {g['mean']:.4f}{spread} over "
              f"{g['n'] - g['n_failed']} run(s){lost}")
        for run, note in g["notes"].items():
            print(f"caution    {run}: test {note}")
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
        print(json_text({"mask": str(path), "signature": sig, "n_pruned": masks.n_pruned, "pruned": pruned}))
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
        print(json_text(s))
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
        from ..preprocessing import recorded_filter_phase

        phase = recorded_filter_phase(d)
        high = f"{d['h_freq']:g}" if d.get("h_freq") else "Nyquist"
        prep.append(f"band-pass {d.get('l_freq') or 0:g}-{high} Hz "
                    f"({'causal' if phase == 'causal' else 'zero-phase'})")
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
