"""``unitscope train``: train a decoder on the demo or a recording, with terminal progress.

The run folder ``--out`` is locked while it trains (a second ``train`` into it is refused), and
a training writes ``OUT/checkpoint.partial.pt`` until it ends: an interrupted one (Ctrl-C)
leaves the folder's earlier run as it was, and says how to continue. ``--resume`` continues
from that file (else from a complete run's ``OUT/checkpoint.pt``); without ``--data`` it trains
on the data and with the training options the checkpoint (or the run's config.json) records,
and a checkpoint of other data or another decoder is refused before training.
"""
from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from .._validation import UnitScopeError, check_range
from ..cautions import trial_overlap_note
from ..recording import target_types
from ._common import (Progress, bar, check_out_dir, metric_cautions, on_count, option_names, per_class_line,
                      seed_arg)

DEMO_TEXT = "the built-in demo recording (simulated 32-channel ECoG of a reaching task, target hand speed)"


def add_data_args(p) -> None:
    """The data and decoder options ``train`` and ``import`` share (see :func:`data_spec`).
    Their defaults are None here and said in the help: ``train --resume`` takes the run's own
    values for the options not given."""
    from ..train_config import TrainConfig

    d = TrainConfig()
    p.add_argument("--data", default=None, metavar="PATH",
                   help=f"recording file or BIDS folder; 'demo' or left out: {DEMO_TEXT}")
    p.add_argument("--bids", default=None, metavar="ENTITIES",
                   help="a BIDS folder's recording: 'subject=01,run=1' or 'sub-01_run-1' (unitscope info FOLDER "
                        "lists them; default: the first)")
    p.add_argument("--target", default=None,
                   help="continuous target channel, or 'events' / 'events:T1,T2' for labels (demo: hand speed)")
    p.add_argument("--model", default=None, choices=("deep4", "shallow"), help=f"decoder (default {d.model})")
    p.add_argument("--picks", default=None, help="comma-separated channel names (default: the data channels)")
    p.add_argument("--l-freq", type=float, default=None, help="band-pass low edge in Hz (default: none)")
    p.add_argument("--h-freq", type=float, default=None, help="band-pass high edge in Hz (default: none)")
    p.add_argument("--filter-phase", default=None, choices=("causal", "zero"),
                   help="band-pass filter: causal (minimum phase; a sample depends on the past only, as the "
                        "decoder is causal; default) or zero (zero phase: no phase distortion, but each "
                        "sample holds half a filter length of the future; runs trained before the choice, and "
                        "weights trained elsewhere on zero-phase filtered data, were filtered so)")
    p.add_argument("--sfreq", type=float, default=None, help="resample to this rate in Hz (default: keep)")
    p.add_argument("--tmin", type=float, default=None, help="label trials: start relative to events, s (default 0)")
    p.add_argument("--tmax", type=float, default=None, help="label trials: end relative to events, s (default 4)")
    p.add_argument("--demo-ipsi-fraction", type=float, default=None,
                   help="demo only: share of movements made with the other hand, marked by beta alone, 0-1 "
                        "(default 0)")
    p.add_argument("--n-times", type=int, default=None,
                   help=f"input window in samples, continuous targets (default {d.n_times})")


def data_spec(args, base: dict | None = None):
    """The :class:`~core.workspace.DataSpec` of :func:`add_data_args`' options: those given,
    over ``base`` (a run's ``config.json`` "data") or the DataSpec defaults."""
    from ..io import parse_bids
    from ..workspace import DataSpec

    given = {"source": args.data, "target": args.target, "picks": args.picks.split(",") if args.picks else None,
             "l_freq": args.l_freq, "h_freq": args.h_freq, "sfreq": args.sfreq, "tmin": args.tmin,
             "tmax": args.tmax, "ipsi_fraction": args.demo_ipsi_fraction, "bids": parse_bids(args.bids) or None,
             "filter_phase": args.filter_phase}
    base = DataSpec.from_record(base).to_dict() if base else {}  # a run's own, as it was trained
    return DataSpec.from_dict({**base, **{k: v for k, v in given.items() if v is not None}})


def create_workspace(args, spec, cfg):
    """``Workspace.create(spec, cfg)``, its errors about the target or the data told in
    terms of the command line: which recording was read when ``--data`` was left out, and
    ``events:T1,T2`` for a target that names event types."""
    from ..workspace import Workspace

    try:
        ws = Workspace.create(spec, cfg)
    except UnitScopeError as exc:
        if not str(exc).startswith(("Target channel", "No target given")):
            raise
        events = _event_types_named(spec) if spec.target else []
        if events:
            raise UnitScopeError(f"Target channel {spec.target!r} is not in the recording, but it names event types: "
                                 f"for label decoding write --target events:{','.join(events)}.") from exc
        if args.data is None and spec.source == "demo":
            raise UnitScopeError(f"{exc} No --data was given, so this is {DEMO_TEXT}; give --data PATH for a "
                                 "recording.") from exc
        raise
    native = ws.native_sfreq()
    if native is not None:  # (allowed: e.g. weights trained at a higher rate, given to unitscope import)
        print(f"caution: --sfreq {spec.sfreq:g} resamples the recording up from {native:g} Hz: it holds nothing "
              f"above {native / 2:g} Hz, so probe, occlude and deconv keep their bands below {native / 2:g} Hz",
              file=sys.stderr)
    return ws


def _event_types_named(spec) -> list[str]:
    """The event types the comma-separated target names, when they all are event types of
    the recording, else []."""
    from ..demo import simulate_reaching
    from ..io import read_recording

    parts = [t.strip() for t in spec.target.split(",") if t.strip()]
    try:
        rec = (simulate_reaching(seed=spec.seed, duration=spec.duration) if spec.source == "demo"
               else read_recording(spec.source, bids=spec.bids))
    except (UnitScopeError, OSError):
        return []
    types = set(rec.events.type.tolist())
    return parts if parts and all(t in types for t in parts) else []


def add_parser(sub) -> None:
    from ..train_config import TrainConfig

    d = TrainConfig()
    p = sub.add_parser("train", help="train a Deep4/Shallow decoder and write a run folder")
    add_data_args(p)
    p.add_argument("--out", required=True, help="run folder to write (config.json, model.pt, checkpoint.pt)")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"maximum epochs (default {d.max_epochs}; the plain demo's Deep4: 30, the shipped decoder's "
                        "recipe, with a constant learning rate)")
    p.add_argument("--patience", type=int, default=None,
                   help=f"stop after this many epochs without validation improvement (default {d.patience})")
    p.add_argument("--lr", type=float, default=None,
                   help="Adam learning rate (default: the decoder's own, "
                        + ", ".join(f"{k} {TrainConfig(model=k).learning_rate:g}" for k in ("deep4", "shallow"))
                        + ")")
    p.add_argument("--scheduler", default=None, choices=("cosine", "none"),
                   help=f"learning-rate schedule: cosine annealing or none (constant) (default {d.scheduler}; the "
                        "plain demo's Deep4: none)")
    p.add_argument("--seed", type=seed_arg, default=None, help=f"training seed (default {d.seed})")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="(default auto)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted training (OUT/checkpoint.partial.pt), else a complete run "
                        "(OUT/checkpoint.pt); without --data, on the data (and with the training options) it was "
                        "trained with")
    p.set_defaults(func=run)


def _run_config(out: Path) -> dict | None:
    """The run folder's config.json, or None when it has none."""
    path = out / "config.json"
    if not path.is_file():
        return None
    try:
        cfg = json.loads(path.read_text())
        if not isinstance(cfg.get("data"), dict) or not isinstance(cfg.get("train"), dict):
            raise KeyError("data/train")
    except (ValueError, KeyError, AttributeError) as exc:
        raise UnitScopeError(f"Corrupt run config {str(path)!r}: {exc}") from exc
    return cfg


def _trained_on(run_cfg: dict | None) -> str:
    """The data a run was trained on, in words (from its config.json)."""
    if run_cfg is None:
        return "data its folder does not record (no config.json)"
    from ..io import source_label

    d = run_cfg["data"]
    source = DEMO_TEXT if d.get("source") == "demo" else repr(source_label(d.get("source"), d.get("bids")))
    return f"{source} with --target {d.get('target') or '(the default)'}"


def _resume_spec(args, out: Path, run_cfg: dict | None):
    """The DataSpec of ``train --resume``: the command line's when it names --data, else the
    run's own data (``run_cfg``: its config.json, or an interrupted training's record),
    readable."""
    if args.data is not None:
        return data_spec(args)
    if run_cfg is None:
        raise UnitScopeError(f"--resume without --data needs the data the run was trained on, and {str(out)!r} "
                             "records none (no config.json beside its checkpoint.pt, which an earlier UnitScope "
                             "also left when interrupted); give the --data and --target it was trained on.")
    source = run_cfg["data"].get("source", "demo")
    if source != "demo" and not Path(source).exists():
        from ..workspace import find_run_recording

        try:
            source = find_run_recording(source, out, run_cfg.get("source_path"))
        except UnitScopeError:
            raise UnitScopeError(f"--resume without --data trains on the recording {str(out)!r} was trained on, "
                                 f"{source!r}, which does not exist (any more); give --data PATH.") from None
        return data_spec(args, base={**run_cfg["data"], "source": source})
    return data_spec(args, base=run_cfg["data"])


def _check_checkpoint(ckpt: Path, ws, run_cfg: dict | None, max_epochs: int) -> None:
    """Refuse a checkpoint whose parameters do not fit ``ws.model`` (the decoder of the data),
    one trained on other data or with other options (:meth:`Workspace.check_resume`), or a
    complete run's that has trained ``max_epochs`` already."""
    from ..training import PARTIAL_FILE, load_state
    from ..run_folder import config_record, state_mismatches

    model = ws.model
    state = load_state(ckpt)
    saved = state.get("model") if isinstance(state, dict) else None
    if not isinstance(saved, dict):
        raise UnitScopeError(f"{str(ckpt)!r} is not a UnitScope training checkpoint (no 'model' entry).")
    missing, unexpected, shapes = state_mismatches(saved, model.state_dict(), there="there")
    wrong = shapes + [f"{k} only here" for k in missing] + [f"{k} only there" for k in unexpected]
    if wrong:
        cfg = model.unitscope_config
        raise UnitScopeError(
            f"The checkpoint {str(ckpt)!r} does not fit the {cfg['kind']} decoder of these data ({cfg['n_chans']} "
            f"channels, {cfg['n_outputs']} output(s), {cfg['n_times']}-sample windows): {wrong[0]}"
            f"{f' and {len(wrong) - 1} more' if len(wrong) > 1 else ''}. The run was trained on "
            f"{_trained_on(run_cfg)}: resume on those data (leave out --data to use them), or train into "
            "another --out.")
    ws.check_resume(ckpt.parent, record=config_record(run_cfg) if run_cfg is not None else None)
    done = int(state.get("epoch", -1)) + 1
    # an interrupted training that has all its epochs is resumed all the same: to be measured and written
    if done > max_epochs or (done == max_epochs and ckpt.name != PARTIAL_FILE):
        raise UnitScopeError(f"The checkpoint {str(ckpt)!r} has trained {done} epoch(s) and --epochs allows "
                             f"{max_epochs}: nothing to resume; give --epochs "
                             f"{'of at least' if ckpt.name == PARTIAL_FILE else 'above'} {done}.")


def _train_config(args, run_cfg: dict | None, spec=None):
    """``(TrainConfig, recipe)``: the options given, over the run's own (``--resume``), the
    plain demo's recipe (:func:`core.workspace.demo_recipe`, returned as ``recipe``; {} for
    any other data) or the defaults."""
    from ..train_config import TrainConfig
    from ..workspace import demo_recipe

    recipe = {}
    if run_cfg is not None:
        cfg = TrainConfig.from_dict(run_cfg["train"])
    else:
        model = args.model or TrainConfig.model
        recipe = demo_recipe(spec, model) if spec is not None else {}
        cfg = TrainConfig(model=model, **recipe)
    given = {"model": args.model, "max_epochs": args.epochs, "n_times": args.n_times, "seed": args.seed,
             "patience": args.patience, "lr": args.lr, "device": args.device, "scheduler": args.scheduler}
    for name, val in given.items():
        if val is not None:
            setattr(cfg, name, val)
    return cfg, recipe


def stopped_early_line(result, config) -> str:
    """``stopped early after epoch 7 of 30: ...``, or "" when training ran to its end."""
    if not result.early_stopped or not result.history:
        return ""
    last, best = int(result.history[-1]["epoch"]) + 1, result.best_epoch + 1
    return (f"stopped early after epoch {last} of {config.max_epochs}: no validation improvement for "
            f"{last - best} epoch{'s' if last - best != 1 else ''} (--patience {config.patience}); "
            f"weights of epoch {best} kept")


def _interrupted_text(out: Path, ws, resumed: Path | None) -> str:
    """What an interrupt left in ``out``, and how to continue (:func:`run`)."""
    from ..training import PARTIAL_FILE, checkpoint_summary

    if ws.run_dir is not None:  # the interrupt came while the finished run was written: it was
        return f"interrupted after the training ended; the run in {str(out)!r} was written in full"
    earlier = ("the earlier run there (config.json, model.pt) is as it was" if (out / "config.json").is_file()
               else "")
    partial = out / PARTIAL_FILE
    if partial.is_file():
        try:
            s = checkpoint_summary(partial)
        except UnitScopeError:
            s = None
        n_epochs = (s["record"] or {}).get("train", {}).get("max_epochs", "?") if s else "?"
        done = f"{s['epochs']} of {n_epochs} epoch(s) kept" if s else "its state kept"
        how = f"unitscope train --out {out} --resume"
        return (f"interrupted; {done} in {str(partial)!r}{f' ({earlier})' if earlier else ''}. Continue it with: "
                f"{how} (the data and options it was trained with are kept in it; add --epochs N to change its "
                "length)")
    if resumed is not None:
        return f"interrupted before an epoch ended; nothing new was kept, {str(resumed)!r} is as it was"
    return ("interrupted before the first epoch ended; nothing was kept" + (f" ({earlier})" if earlier else "")
            + ": run the command again to train from the start")


def run(args) -> int:
    from ..training import resume_checkpoint, run_lock

    out = check_out_dir(args.out)
    if args.resume and resume_checkpoint(out) is None:
        raise UnitScopeError(f"--resume continues from {str(out / 'checkpoint.pt')!r}, which does not exist; leave "
                             "out --resume to train from the start.")
    with run_lock(out):  # before any data are read: a second train into --out is refused at once
        return _train(args, out)


def _train(args, out: Path) -> int:
    from ..training import CHECKPOINT_FILE, PARTIAL_FILE, checkpoint_summary, configure_threads, resolve_device
    from ..training import resume_checkpoint

    run_cfg, ckpt = None, None
    if args.resume:
        ckpt = resume_checkpoint(out)
        if ckpt is None:
            raise UnitScopeError(f"--resume continues from {str(out / CHECKPOINT_FILE)!r}, which does not exist; "
                                 "leave out --resume to train from the start.")
        if ckpt.name == PARTIAL_FILE:  # an interrupted training: the data and options it records
            run_cfg = checkpoint_summary(ckpt)["record"] or _run_config(out)
        else:
            run_cfg = _run_config(out)
        spec = _resume_spec(args, out, run_cfg)
    else:
        spec = data_spec(args)
    cfg, recipe = _train_config(args, run_cfg, spec)
    with option_names({"max_epochs": "--epochs", "n_times": "--n-times", "patience": "--patience", "lr": "--lr",
                       "seed": "--seed", "ipsi_fraction": "--demo-ipsi-fraction"}):
        cfg.validate()  # before any data are read, in the options' own names
        if spec.source == "demo":
            check_range("ipsi_fraction", spec.ipsi_fraction, low=0.0, high=1.0)
    threads = configure_threads(args.threads)
    device = resolve_device(cfg.device)
    ws = create_workspace(args, spec, cfg)
    if args.resume:
        _check_checkpoint(ckpt, ws, run_cfg, cfg.max_epochs)
    what = "the built-in demo recording" if spec.source == "demo" else spec.source
    print(f"unitscope train: {cfg.model} on {what} ({ws.task}, {ws.recording.n_chans} channels, "
          f"{ws.recording.sfreq:g} Hz), device={device.type}, torch_threads={threads}"
          f"{f'; resuming from {ckpt}' if args.resume else ''}", file=sys.stderr)
    if recipe:
        print(f"unitscope train: the plain demo's {cfg.model}: the shipped decoder's recipe "
              f"({', '.join(f'{k} {v:g}' if isinstance(v, float) else f'{k} {v}' for k, v in recipe.items())}; "
              "options given override it)", file=sys.stderr)
    if ws.task == "classification":
        overlap = trial_overlap_note(ws.recording.events, target_types(spec.target), spec.tmin, spec.tmax)
        if overlap:
            print(f"caution: {overlap}: shorten them (--tmin/--tmax)", file=sys.stderr)
    show = Progress()

    def progress(p: dict) -> None:
        head = f"epoch {p['epoch'] + 1}/{p['n_epochs']} {bar(p['fraction'])}"
        if p.get("end_of_epoch"):
            show.line(f"{head} train loss {p['train_loss']:.4f}  valid loss {p['valid_loss']:.4f}  "
                      f"valid metric {p['valid_metric']:.3f}")
        elif show.tty:  # elsewhere, one line per epoch is enough
            show(p["fraction"], f"{head} batch {p['batch']}/{p['n_batches']}")

    stop = threading.Event()
    try:
        result = ws.train(progress=progress, stop=stop, resume=args.resume, run_dir=out)
    except KeyboardInterrupt:
        stop.set()
        show.close()
        print(f"unitscope train: {_interrupted_text(out, ws, ckpt)}", file=sys.stderr)
        return 130
    finally:
        show.close()
    m = ws.metrics
    early = stopped_early_line(result, cfg)
    if early:
        print(early)
    name = "pearson_r" if ws.task == "regression" else "balanced_accuracy"
    print(f"test {name} {m['test']:.4f}{on_count(m, 'test')} (valid {m['valid']:.4f}{on_count(m, 'valid')}, "
          f"best epoch {m['best_epoch'] + 1}); wrote {args.out}")
    if per_class_line(m):
        print(f"test trials called right, per class: {per_class_line(m)}")
    for text in metric_cautions(ws.task, m):
        print(f"caution: {text}", file=sys.stderr)
    if (out / "probe.nc").is_file():  # of the weights trained before, into the same folder
        print(f"note: {out / 'probe.nc'} probed the earlier weights: run 'unitscope probe {args.out}' "
              "again (until then the app and unitscope report leave it out, and unitscope prune refuses it)",
              file=sys.stderr)
    earlier = [f.name for f in sorted(out.glob("*.nc")) if f.name == "prune_curves.nc"
               or (f.name.startswith("deconv_") and not f.name.startswith("deconv_channel_"))]
    if earlier:
        print(f"note: {', '.join(earlier)} in {args.out} came from the earlier weights (unitscope report leaves "
              "them out)", file=sys.stderr)
    return 0
