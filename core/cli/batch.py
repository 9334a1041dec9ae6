"""``unitscope batch``: train (and probe) many recordings, decoders and seeds on Dask.

Every combination of ``--data`` x ``--model`` x ``--seeds`` is one run (a BIDS folder gives one
per recording, or per recording ``--bids`` chooses), handed to Dask
distributed (a local cluster by default, ``--scheduler tcp://host:8786`` for a lab cluster).
Each run writes ``OUT/<recording>-<model>-s<seed>/`` (checkpoint, config, and ``probe.nc``
with ``--probe``); ``OUT/batch.nc`` gathers the held-out metrics (and the probe's class
fractions) along a ``run`` dimension. A failed run is reported and the others go on; the
exit status is 1 when any run failed. Interrupted (Ctrl-C), it says which runs finished and
which were left unfinished (no batch.nc is written).
"""
from __future__ import annotations

import sys
from pathlib import Path

from .._validation import UnitScopeError
from ._common import check_out_dir, option_names, seed_arg


def add_parser(sub) -> None:
    p = sub.add_parser("batch", help="train (and probe) many recordings / decoders / seeds on Dask distributed")
    p.add_argument("--data", nargs="+", required=True, metavar="SOURCE",
                   help="'demo', recording paths and/or BIDS folders (one run per recording; a BIDS folder's "
                        "every recording, or those --bids chooses)")
    p.add_argument("--bids", default=None, metavar="ENTITIES",
                   help="the BIDS folders' recordings to run: 'task=reach', 'sub-01', 'subject=01,run=1' "
                        "(default: all)")
    p.add_argument("--target", default=None, help="channel, 'events' or 'events:T1,T2' (as for train)")
    p.add_argument("--model", nargs="+", default=["deep4"], choices=("deep4", "shallow"),
                   help="decoders, one run each (default deep4)")
    p.add_argument("--seeds", nargs="+", type=seed_arg, default=None,
                   help="training seeds (default: the training default)")
    p.add_argument("--epochs", type=int, default=None, help="maximum epochs per run (default: the training default, 25)")
    p.add_argument("--duration", type=float, default=None, help="demo length in seconds (default 600)")
    p.add_argument("--probe", action="store_true", help="probe every run after training (writes probe.nc)")
    p.add_argument("--iterations", type=int, default=None, help="probe iterations per pass (with --probe; default: the probe's, 24)")
    p.add_argument("--out", required=True, help="batch folder (one sub-folder per run, and batch.nc)")
    p.add_argument("--scheduler", default=None, help="address of a Dask scheduler (default: a local cluster)")
    p.add_argument("--workers", type=int, default=None, help="local workers (default: cores / threads per worker)")
    p.add_argument("--threads-per-worker", type=int, default=1, help="torch threads per run (default 1)")
    p.add_argument("--no-processes", action="store_true",
                   help="local workers as threads of this process (small jobs; not reproducible when concurrent)")
    p.set_defaults(func=run)


def _interrupted_text(out: Path, runs, ended: dict) -> str:
    """What an interrupted batch left in ``out`` (``ended``: run name -> its error, "" when it
    finished), and how to go on."""
    from ..training import PARTIAL_FILE

    done = [r.name for r in runs if ended.get(r.name) == ""]
    failed = [r.name for r in runs if ended.get(r.name)]
    left = [r.name for r in runs if r.name not in ended]
    kept = [name for name in left if (out / name / PARTIAL_FILE).is_file()]
    parts = [f"interrupted after {len(ended)} of {len(runs)} runs ended; no {out / 'batch.nc'} was written"]
    if done:
        parts.append(f"finished (complete run folders): {', '.join(done)}")
    if failed:
        parts.append(f"failed: {', '.join(failed)}")
    if left:
        parts.append(f"not finished (no config.json): {', '.join(left)}"
                     + (f"; {len(kept)} of them {'keeps its' if len(kept) == 1 else 'keep their'} epochs so far in "
                        f"{PARTIAL_FILE} (unitscope train --out "
                        f"{out / kept[0]} --resume continues one)" if kept else ""))
    parts.append(f"unitscope batch with the same options and --out {out} runs the whole batch again")
    return "; ".join(parts)


def _check_sources(args) -> None:
    """What every run would fail on, said once before any starts: a recording that is not
    there, a demo length the simulator refuses, epochs below one."""
    missing = [src for src in args.data if src != "demo" and not Path(src).exists()]
    if missing:
        raise UnitScopeError(f"--data: {', '.join(repr(m) for m in missing)} {'does' if len(missing) == 1 else 'do'} "
                             "not exist (give recording files or BIDS folders, or demo).")
    if args.duration is not None and not (args.duration >= 30.0):  # (core.demo.simulate_reaching's bound)
        raise UnitScopeError(f"--duration: the demo is at least 30 s long, got {args.duration:g}.")


def run(args) -> int:
    from ..batch import plan_runs, run_batch

    out = check_out_dir(args.out)
    _check_sources(args)  # before the cluster starts: each run failed on its own, into batch.nc
    probe = None
    if args.probe:
        probe = {} if args.iterations is None else {"n_iterations": args.iterations}
    with option_names({"max_epochs": "--epochs", "n_iterations": "--iterations", "duration": "--duration"}):
        runs = plan_runs(args.data, target=args.target, models=args.model, seeds=args.seeds,
                         max_epochs=args.epochs, duration=args.duration, probe=probe, bids=args.bids)
    where = args.scheduler or f"a local cluster ({'threads' if args.no_processes else 'processes'})"
    print(f"unitscope batch: {len(runs)} runs on {where} -> {args.out}", file=sys.stderr)

    ended = {}  # run name -> its error ("" when it finished)

    def progress(info: dict) -> None:
        ended[info["name"]] = info["error"]
        status = f"FAILED: {info['error']}" if info["error"] else "done"
        print(f"[{info['done']}/{info['n']}] {info['name']}: {status}", file=sys.stderr, flush=True)

    try:
        ds = run_batch(runs, out, scheduler=args.scheduler, n_workers=args.workers,
                       threads_per_worker=args.threads_per_worker, processes=not args.no_processes,
                       progress=progress)
    except KeyboardInterrupt:
        print(f"unitscope batch: {_interrupted_text(out, runs, ended)}", file=sys.stderr)
        return 130
    from ..batch import run_note
    from ..metrics import METRIC_NAMES

    for name in ds["run"].values:
        row = ds.sel(run=name)
        if str(row["error"].values):
            print(f"{name}: failed ({row['error'].values})")
            continue
        n = int(row["n_test"])
        on = f" on {n} {'trials' if str(row['task'].values) == 'classification' else 'windows'}" if n > 0 else ""
        print(f"{name}: {METRIC_NAMES.get(str(row['task'].values), 'metric')} valid {float(row['valid']):.3f}, test "
              f"{float(row['test']):.3f}{on} ({int(row['epochs'])} epochs, {float(row['train_seconds']):.0f} s)")
        note = run_note(ds, name)
        if note:
            print(f"  caution: test {note}")
    print(f"wrote {args.out}/batch.nc")
    return 1 if ds.attrs["n_failed"] else 0
