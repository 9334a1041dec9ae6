"""``unitscope info PATH``: channels, types, duration, sampling rate, events; or, for a run
folder, its decoder, data, metrics and the result files beside it (from config.json; a probe.nc
of other weights or other probing code is named, from its attrs and model.pt);
or, for a batch folder, the held-out metric per recording and decoder and the failed runs."""
from __future__ import annotations

import json
from pathlib import Path

from .._validation import UnitScopeError

# result files a run folder may hold, and what writes them
RUN_FILES = {"model.pt": "weights", "checkpoint.pt": "training state, for --resume",
             "probe.nc": "unitscope probe", "probe_untrained.nc": "unitscope probe --untrained"}


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="describe a recording (channels, types, duration, sfreq, events) or a run folder")
    p.add_argument("path", help="recording file, BIDS folder, 'demo', a run folder (config.json) or a batch "
                   "folder (batch.nc)")
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
    bids = parse_bids(getattr(args, "bids", None))
    listed = []
    if args.path != "demo" and is_bids_root(args.path):
        listed = bids_recordings(args.path)
    elif bids:
        raise UnitScopeError(f"--bids chooses a recording of a BIDS folder; {args.path!r} is not one "
                             "(no dataset_description.json).")
    rec = simulate_reaching() if args.path == "demo" else read_recording(args.path, bids=bids or None)
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
    print(f"events     {sum(ev.values())}" + (f": {', '.join(f'{k} x{v}' for k, v in ev.items())}" if ev else "")
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
        kept = f", kept epoch {int(m['best_epoch']) + 1}" if m.get("best_epoch", -1) >= 0 else ""
        secs = f", {float(m['train_seconds']):.0f} s" if "train_seconds" in m else ""
        print(f"training   {s['epochs']} epoch(s){kept}{secs}{' (stopped)' if m.get('stopped') else ''}")
    print(f"layers     {', '.join(f'{k} {v}' for k, v in s['layers'].items())}")
    known = [f"{f} ({RUN_FILES[f]})" for f in s["files"] if f in RUN_FILES]
    other = [f for f in s["files"] if f not in RUN_FILES and f != "config.json"]
    print(f"files      {', '.join(known + other)}")
    if "probe.nc" not in s["files"]:
        print(f"next       unitscope probe {s['run']}")
    else:
        why = probe_status(run_dir)
        if why:
            print(f"note       {why}")
    return 0


def probe_status(run_dir: Path) -> str:
    """What keeps a run folder's probe.nc from describing its decoder as this UnitScope would
    (:func:`core.probing._base.stale_probe`), in words; "" when nothing does. Reads the probe's
    attrs and the weights (model.pt), not the data."""
    import xarray as xr

    from ..probing._base import stale_probe
    from ..workspace import load_run_model

    run_dir = Path(run_dir)
    try:
        with xr.open_dataset(run_dir / "probe.nc", engine="h5netcdf") as f:
            probe = xr.Dataset(attrs=dict(f.attrs))
    except Exception as exc:  # noqa: BLE001 - a file that cannot be read is said, not raised
        return f"probe.nc cannot be read ({exc.__class__.__name__})"
    if "model_hash" not in probe.attrs:
        return ""
    m = json.loads((run_dir / "config.json").read_text())["model"]
    try:
        model = load_run_model(run_dir, m)
    except UnitScopeError as exc:  # unreadable, or weights of another architecture: the loader's words
        return str(exc).splitlines()[0]
    why = stale_probe(probe, model)
    if why == "weights":
        return f"probe.nc was made for the weights trained before: unitscope probe {run_dir} probes these"
    return other_code_note("probe.nc", run_dir) if why == "code" else ""


def other_code_note(name, run_dir) -> str:
    """The words for a probe result of these weights computed by other probing code."""
    return f"{name} was computed by other probing code (an earlier UnitScope): unitscope probe {run_dir} updates it"
