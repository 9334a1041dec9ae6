"""A run folder's files read and checked: where its recording is, its model rebuilt from
config.json, weights that do not fit it named, whether other data or options are the ones it
was trained with, and where its weights come from. :mod:`core.workspace` drives them.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from ._validation import UnitScopeError
from .dataset import DataSpec
from .models import build_model
from .recording import Recording, recording_differences, target_types
from .training import load_state

__all__ = ["find_run_recording", "load_run_model", "mismatch_parts", "check_state_file", "state_mismatches",
           "config_record", "same_source", "unfinished_note", "same_data", "check_same_decoding",
           "check_same_classes", "weights_provenance", "DATA_OPTIONS", "TRAIN_OPTIONS"]

logger = logging.getLogger(__name__)


def find_run_recording(source: str, run_dir: str | Path, source_path: str | None = None) -> str:
    """The recording a run was trained on: ``source`` as its ``config.json`` gives it (a path
    relative to the folder ``unitscope train`` ran in, say), else where it was in full when the
    run was saved (``source_path``), else the same path, or the same file name, beside the run
    folder or in its parent (a run moved with its recording). ``source`` itself when it exists;
    an error saying where it was looked for when it is nowhere."""
    given = Path(str(source)).expanduser()
    if given.exists():
        return str(source)
    run_dir = Path(run_dir)
    candidates = [Path(source_path)] if source_path else []
    candidates += [] if given.is_absolute() else [run_dir / given, run_dir.parent / given]
    candidates += [run_dir / given.name, run_dir.parent / given.name]
    for c in candidates:
        if c.exists():
            logger.info("the recording %s of %s is read from %s", source, run_dir, c)
            return str(c)
    looked = ", ".join(dict.fromkeys(str(p.resolve()) for p in [given, *candidates]))
    raise UnitScopeError(f"The decoder in {str(run_dir)!r} was trained on {str(source)!r}, which is not there "
                         f"(looked for: {looked}): put the recording back, or beside the run folder.")


def load_run_model(run_dir: str | Path, mcfg: dict) -> torch.nn.Module:
    """The decoder of a run folder, in eval mode: built from its config.json's ``"model"``
    (``mcfg``) and loaded with its model.pt; no data read. Raises UnitScopeError when the
    weights do not fit that architecture (the RuntimeError as its cause)."""
    run_dir = Path(run_dir)
    model = build_model(mcfg["kind"], n_chans=mcfg["n_chans"], n_outputs=mcfg["n_outputs"],
                        n_times=mcfg["n_times"], dense=mcfg["dense"], drop_prob=mcfg["drop_prob"])
    state = load_state(run_dir / "model.pt")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        own = model.state_dict()
        parts = (mismatch_parts(*state_mismatches(state, own)) if isinstance(state, dict)
                 and all(torch.is_tensor(v) for v in state.values()) else [])
        raise UnitScopeError(
            f"The checkpoint {str(run_dir / 'model.pt')!r} does not match the {mcfg['kind']} architecture its "
            f"config.json describes ({mcfg['n_chans']} channels, {mcfg['n_outputs']} output(s), {mcfg['n_times']}"
            f"-sample windows, {'dense' if mcfg['dense'] else 'trial-wise'}): "
            f"{'; '.join(parts) if parts else str(exc).splitlines()[0]}. The weights are of another decoder: "
            "train the run again, or import the weights into a run of their own data (unitscope import).") from exc
    return model.eval()


def mismatch_parts(missing: list, unexpected: list, shapes: list) -> list[str]:
    """:func:`state_mismatches`' lists in words (as ``unitscope import`` words them), the first
    few of each: ``["missing ['a', 'b'] and 3 more", "unexpected ['c']", "shape mismatch: d (2,
    3) in the file vs (4, 3) here"]``."""
    def some(items, n, join=str):
        return join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")

    return (([f"missing {some(missing, 4)}"] if missing else [])
            + ([f"unexpected {some(unexpected, 4)}"] if unexpected else [])
            + ([f"shape mismatch: {some(shapes, 3, '; '.join)}"] if shapes else []))


def check_state_file(path: str | Path) -> None:
    """Refuse a file that is no PyTorch save before torch reads it (torch's own words for a text
    file are the first byte's code: "101"): ``torch.save`` writes a zip archive, or a pickle
    before PyTorch 1.6. A missing file is left to :func:`core.training.load_state`."""
    path = Path(path)
    if not path.is_file():
        return
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith((b"PK\x03\x04", b"\x80")):  # a zip archive; a pickle of protocol 2 or later
        return
    begins = f"it begins with {head.decode('latin-1')!r}" if head else "it is empty"
    raise UnitScopeError(
        f"{str(path)!r} is not a PyTorch state dict file: torch.save writes a zip archive (a pickle before "
        f"PyTorch 1.6), and {begins}. Save the trained network with torch.save(model.state_dict(), path).")


def state_mismatches(state: dict, own: dict, *, there: str = "in the file") -> tuple[list, list, list]:
    """How a state dict ``state`` fails to fit a model's ``own``: parameter names missing from it,
    names it has that the model lacks, and ``"name (shape) {there} vs (shape) here"`` for each
    parameter of another shape. Three empty lists when it fits."""
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} {there} vs {tuple(own[k].shape)} here"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    return missing, unexpected, shapes


# the DataSpec / TrainConfig fields a resumed training must keep, as the CLI names them
DATA_OPTIONS = {"target": "target (--target)", "picks": "picks (--picks)", "l_freq": "l_freq (--l-freq)",
                 "h_freq": "h_freq (--h-freq)", "filter_phase": "filter_phase (--filter-phase)",
                 "sfreq": "sfreq (--sfreq)", "tmin": "tmin (--tmin)",
                 "tmax": "tmax (--tmax)", "bids": "bids (--bids)", "fractions": "fractions", "seed": "demo seed",
                 "duration": "demo duration", "ipsi_fraction": "ipsi_fraction (--demo-ipsi-fraction)"}


TRAIN_OPTIONS = {"model": "model (--model)", "n_times": "n_times (--n-times)", "lr": "lr (--lr)",
                  "seed": "seed (--seed)", "batch_size": "batch_size", "scheduler": "scheduler (--scheduler)",
                  "weight_decay": "weight_decay", "drop_prob": "drop_prob"}


def config_record(cfg: dict) -> dict:
    """A run's config.json as :meth:`Workspace.run_record` words it."""
    return {"data": cfg["data"], "source_path": cfg.get("source_path"), "model": cfg.get("model") or {},
            "train": cfg.get("train") or {}, "task": cfg.get("task"),
            "recording": (cfg.get("prep") or {}).get("recording")}


def same_source(now: dict, then: dict) -> bool:
    """Whether two records (:meth:`Workspace.run_record`) name one recording: both the demo, or
    the same file in full, or files of one name that the record identifies alike (a recording
    moved or copied since)."""
    a, b = str(now["data"].get("source")), str((then.get("data") or {}).get("source"))
    if "demo" in (a, b):
        return a == b
    where = [Path(p).expanduser().resolve() if p else None
             for p in (now.get("source_path") or a, then.get("source_path") or b)]
    if where[0] == where[1]:
        return True
    ours, theirs = now.get("recording"), then.get("recording")
    return (Path(a).name == Path(b).name and isinstance(ours, dict) and isinstance(theirs, dict)
            and not recording_differences(ours, theirs))


def unfinished_note(run_dir: Path) -> str:
    """Why a folder without config.json has none, when a training left it so: ``": a training
    into it is in progress (pid 12)"``, or an interrupted one's; "" otherwise."""
    from .training import PARTIAL_FILE, training_by

    now = training_by(run_dir)
    if now:
        return f": a training into it is in progress ({now}); it is a run folder when that ends"
    if (run_dir / PARTIAL_FILE).is_file():
        return (f": it holds an interrupted training ({PARTIAL_FILE}), which unitscope train --out {run_dir} "
                "--resume continues")
    return ""


def same_data(spec: DataSpec, own: DataSpec) -> bool:
    """Whether ``spec`` names the data a run was trained on (``own``, its config.json's), perhaps
    found elsewhere: the same options and a recording of the same file name."""
    a, b = spec.to_dict(), own.to_dict()
    return (Path(str(a.pop("source"))).name == Path(str(b.pop("source"))).name) and a == b


def check_same_decoding(cfg: dict, run_dir: Path, spec: DataSpec, rec: Recording, task: str, prep: dict) -> None:
    """Refuse data (a run opened with another ``spec``) that the run's decoder does not decode as
    it was trained to: another task, sampling rate or trial window. A decoder trained at
    128 Hz read 256-Hz data as if they were slower, and a 2-s trial window gave 4-s windows."""
    mcfg, where = cfg["model"], f"The decoder in {str(run_dir)!r}"
    trained = DataSpec.from_record(cfg["data"]) if isinstance(cfg.get("data"), dict) else None
    if task != cfg.get("task", task):
        raise UnitScopeError(
            f"{where} was trained for {cfg['task']} (target {trained.target if trained else '?'!r}); target "
            f"{spec.target!r} gives {task}. Give a target of the same kind.")
    sfreq = (cfg.get("prep") or {}).get("sfreq")
    if sfreq is not None and abs(float(sfreq) - float(prep["sfreq"])) > 1e-6 * float(sfreq):
        raise UnitScopeError(
            f"{where} was trained on data at {float(sfreq):g} Hz; these data are at {float(prep['sfreq']):g} Hz. "
            f"Resample them to {float(sfreq):g} Hz (DataSpec sfreq={float(sfreq):g}, --sfreq).")
    if task == "classification":
        n = int(round((spec.tmax - spec.tmin) * rec.sfreq))
        if n != int(mcfg["n_times"]):
            raise UnitScopeError(
                f"{where} takes trials of {mcfg['n_times']} samples ({int(mcfg['n_times']) / rec.sfreq:g} s); "
                f"tmin {spec.tmin:g} s to tmax {spec.tmax:g} s gives {n}. Give a window of that length"
                + (f" (the run's: tmin {trained.tmin:g}, tmax {trained.tmax:g})." if trained else "."))


def check_same_classes(cfg: dict, run_dir: Path, data) -> None:
    """Refuse labels other than the ones the decoder's outputs stand for, in their order (a run
    trained on T1 vs T2 opened with ``events:T0,T1`` scored output 0 as T0). Runs saved before
    the classes were kept: the classes their target names, else the number of outputs."""
    classes = [str(c) for c in data.classes]
    trained = cfg.get("classes")
    if trained is None:
        types = target_types(str(cfg.get("data", {}).get("target") or "events"))
        n_out = int(cfg["model"]["n_outputs"])
        trained = sorted(types) if types and len(types) == n_out else None  # a type named but absent: unknown
    where, n_out = f"The decoder in {str(run_dir)!r}", int(cfg["model"]["n_outputs"])
    if trained is not None and [str(c) for c in trained] != classes:
        raise UnitScopeError(
            f"{where} was trained on the classes {', '.join(map(str, trained))} (output by output); these data "
            f"give {', '.join(classes)}. Give target 'events:{','.join(map(str, trained))}'.")
    if len(classes) != n_out:
        raise UnitScopeError(f"{where} has {n_out} outputs; these data give {len(classes)} classes "
                             f"({', '.join(classes)}).")


def weights_provenance(metrics: dict, history: list) -> str:
    """Where a decoder's weights come from, in words ("" when unknown): the epochs it was
    trained and the one kept, or the file they were imported from (``load_weights``)."""
    if metrics.get("weights_from"):
        return f"weights imported from {Path(metrics['weights_from']).name}"
    if history:
        best = metrics.get("best_epoch")
        kept = f", weights of epoch {int(best) + 1}" if best is not None and best >= 0 else ""
        return f"trained {len(history)} epoch(s){kept}"
    return ""
