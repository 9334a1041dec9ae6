"""``unitscope train``: train a decoder on the demo or a recording, with terminal progress."""
from __future__ import annotations

import sys
import threading
from pathlib import Path


def add_data_args(p) -> None:
    """The data and decoder options ``train`` and ``import`` share (see :func:`data_spec`)."""
    p.add_argument("--data", default="demo", help="'demo' or a recording path / BIDS folder")
    p.add_argument("--bids", default=None, metavar="ENTITIES",
                   help="a BIDS folder's recording: 'subject=01,run=1' or 'sub-01_run-1' (unitscope info FOLDER "
                        "lists them; default: the first)")
    p.add_argument("--target", default=None,
                   help="continuous target channel, or 'events' / 'events:T1,T2' for labels (demo: hand speed)")
    p.add_argument("--model", default="deep4", choices=("deep4", "shallow"))
    p.add_argument("--picks", default=None, help="comma-separated channel names")
    p.add_argument("--l-freq", type=float, default=None, help="band-pass low edge in Hz")
    p.add_argument("--h-freq", type=float, default=None, help="band-pass high edge in Hz")
    p.add_argument("--sfreq", type=float, default=None, help="resample to this rate in Hz")
    p.add_argument("--tmin", type=float, default=0.0, help="label trials: start relative to events (s)")
    p.add_argument("--tmax", type=float, default=4.0, help="label trials: end relative to events (s)")
    p.add_argument("--demo-ipsi-fraction", type=float, default=0.0,
                   help="demo only: share of movements made with the other hand, marked by beta alone (0-1)")
    p.add_argument("--n-times", type=int, default=None, help="input window in samples (continuous targets)")


def data_spec(args):
    """The :class:`~core.workspace.DataSpec` of :func:`add_data_args`' options."""
    from ..io import parse_bids
    from ..workspace import DataSpec

    return DataSpec(source=args.data, target=args.target, picks=args.picks.split(",") if args.picks else None,
                    l_freq=args.l_freq, h_freq=args.h_freq, sfreq=args.sfreq, tmin=args.tmin, tmax=args.tmax,
                    ipsi_fraction=args.demo_ipsi_fraction, bids=parse_bids(args.bids) or None)


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a Deep4/Shallow decoder and write a run folder")
    add_data_args(p)
    p.add_argument("--out", required=True, help="run folder to write (config.json, model.pt, checkpoint.pt)")
    p.add_argument("--epochs", type=int, default=None, help="maximum epochs (default from TrainConfig)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.set_defaults(func=run)


def _bar(fraction: float, width: int = 30) -> str:
    n = int(round(fraction * width))
    return "[" + "#" * n + "." * (width - n) + "]"


def run(args) -> int:
    from ..training import TrainConfig, configure_threads, resolve_device
    from ..workspace import Workspace

    threads = configure_threads(args.threads)
    device = resolve_device(args.device)
    spec = data_spec(args)
    cfg = TrainConfig(model=args.model, device=args.device)
    for name, val in (("max_epochs", args.epochs), ("n_times", args.n_times), ("seed", args.seed)):
        if val is not None:
            setattr(cfg, name, val)
    ws = Workspace.create(spec, cfg)
    print(f"unitscope train: {args.model} on {args.data} ({ws.task}, {ws.recording.n_chans} channels, "
          f"{ws.recording.sfreq:g} Hz), device={device.type}, torch_threads={threads}", file=sys.stderr)
    tty = sys.stderr.isatty()

    def progress(p: dict) -> None:
        if p.get("end_of_epoch"):
            print(f"\repoch {p['epoch'] + 1}/{p['n_epochs']} {_bar(p['fraction'])} train loss "
                  f"{p['train_loss']:.4f}  valid loss {p['valid_loss']:.4f}  valid metric {p['valid_metric']:.3f}",
                  file=sys.stderr, flush=True)
        elif tty:
            print(f"\repoch {p['epoch'] + 1}/{p['n_epochs']} {_bar(p['fraction'])} batch {p['batch']}/{p['n_batches']}",
                  end="", file=sys.stderr, flush=True)

    stop = threading.Event()
    try:
        ws.train(progress=progress, stop=stop, resume=args.resume, run_dir=Path(args.out))
    except KeyboardInterrupt:
        stop.set()
        raise
    m = ws.metrics
    name = "pearson_r" if ws.task == "regression" else "balanced_accuracy"
    print(f"test {name} {m['test']:.4f} (valid {m['valid']:.4f}, best epoch {m['best_epoch'] + 1}); wrote {args.out}")
    out = Path(args.out)
    if (out / "probe.nc").is_file():  # of the weights trained before, into the same folder
        print(f"note: {out / 'probe.nc'} probed the earlier weights: run 'unitscope probe {args.out}' "
              "again (the app, unitscope prune and unitscope report ignore it until then)", file=sys.stderr)
    earlier = [f.name for f in sorted(out.glob("*.nc")) if f.name == "prune_curves.nc"
               or (f.name.startswith("deconv_") and not f.name.startswith("deconv_channel_"))]
    if earlier:
        print(f"note: {', '.join(earlier)} in {args.out} came from the earlier weights (unitscope report leaves "
              "them out)", file=sys.stderr)
    return 0
