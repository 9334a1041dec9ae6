"""The Workspace facade: one recording, one decoder and its results, with a run folder.

The dashboard and the CLI both drive a Workspace. A run folder holds ``config.json`` (data
spec, preprocessing statistics, model and training config, metrics), ``model.pt`` (the best
state dict) and ``checkpoint.pt`` (to resume training). A training writes
``checkpoint.partial.pt`` until it ends and then replaces the three together, so a run folder
trained again keeps its previous complete run until the new one is complete; an interrupted
training leaves that file, which ``resume`` continues (:mod:`core.training`). ``version``
increases whenever the model changes so callers can key caches on it.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ._validation import UnitScopeError, suggest
from .decoding import ContinuousData, TrialData
from .demo import simulate_reaching
from .io import DATA_CH_TYPES, match_channels, read_recording
from .metrics import score
from .models import build_model, layer_map
from .preprocessing import (Standardizer, bandpass, check_signals, mark_missing_target, pick_channels, resample,
                            split_blocks)
from .recording import Recording, recording_differences, recording_identity, target_types, touches
from .training import (DEFAULT_LR, TrainConfig, TrainResult, checkpoint_summary, commit_checkpoint,
                       held_interrupt, load_state, predict, resume_checkpoint, run_lock, train)

__all__ = ["DataSpec", "Workspace", "load_data", "load_run_model", "state_mismatches", "default_cache_dir",
           "ASSETS_DIR", "weights_provenance", "check_state_file"]

logger = logging.getLogger(__name__)
ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
DEMO_VERSION = 1  # bump when the simulator or the default training changes
# The recipe of the demo decoder shipped in assets/demo-deep4/ (its config.json's "train"; a test
# holds them equal): Workspace.demo() retrains with it when the shipped run is missing, and gets
# the shipped weights bit for bit on the 2-core CPU machines it was measured on (TrainConfig's
# defaults differ: 25 epochs, cosine lr)
DEMO_TRAIN = {"deep4": {"max_epochs": 30, "scheduler": "none", "lr": 1e-3}}


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


def default_cache_dir() -> Path:
    return Path(os.environ.get("UNITSCOPE_CACHE", Path.home() / ".cache" / "unitscope"))


@dataclass
class DataSpec:
    """Where the data come from and how they are prepared (JSON round trip)."""

    source: str = "demo"                 # "demo" or a path (file or BIDS folder)
    target: str | None = None            # channel name, or "events" / "events:T1,T2" for labels
    picks: list | None = None            # channel names; default: all data channels
    l_freq: float | None = None          # band-pass edges in Hz (None: off)
    h_freq: float | None = None
    sfreq: float | None = None           # resample to this rate (None: keep)
    tmin: float = 0.0                    # label trials: window relative to event onset (s)
    tmax: float = 4.0
    fractions: tuple = (0.6, 0.2, 0.2)   # train / valid / test blocks, contiguous; shares (3, 1, 1: 60/20/20)
    seed: int = 0                        # demo simulator seed
    duration: float = 600.0              # demo length in seconds
    ipsi_fraction: float = 0.0           # demo: share of movements only beta marks (core.demo)
    bids: dict | None = None             # BIDS entities (subject, session, task, run)

    def __post_init__(self):
        """Normalise what Python callers naturally give: a ``pathlib.Path`` source (kept as text, so
        the run's config.json can be written), one channel name as ``picks`` (a str is not a list
        of one-letter channels), and a label target written with spaces or capitals
        (``"Events: T1, T2"`` is ``"events:T1,T2"``)."""
        if isinstance(self.source, os.PathLike):
            self.source = os.fspath(self.source)
        if isinstance(self.picks, str):
            self.picks = [self.picks]
        elif self.picks is not None:
            self.picks = [str(p) for p in self.picks]
        if isinstance(self.target, str):
            head, sep, types = self.target.strip().partition(":")
            if head.strip().lower() == "events":
                named = [t.strip() for t in types.split(",") if t.strip()] if sep else []
                if sep and not named:
                    raise UnitScopeError(f"target {self.target!r} names no event type; give 'events' (every type) "
                                         "or 'events:T1,T2'.")
                self.target = "events" + (":" + ",".join(named) if named else "")
            else:
                self.target = self.target.strip()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fractions"] = list(self.fractions)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DataSpec":
        known = {f.name for f in fields(cls)}
        return cls(**{k: (tuple(v) if k == "fractions" else v) for k, v in d.items() if k in known})


def _resolve_names(rec: Recording, spec: DataSpec) -> DataSpec:
    """``spec`` with its channel target and picks named as ``rec`` (read, target not yet split
    off) names them (:func:`core.io.match_channels`, as ``unitscope info`` matches names: case and
    the trailing dots of EDF names ignored, ``C3`` is EEGMMIDB's ``C3..``). A target channel also
    among the picks is refused: the decoder would be given what it is to decode."""
    changes = {}
    target = spec.target
    own_target = getattr(rec.target, "name", None)  # the demo's hand speed
    if target is not None and not target.startswith("events") and target != own_target:
        target = match_channels([target], rec.ch_names)[0]
        changes["target"] = target
    named = target_types(target) if target is not None and target.startswith("events") else None
    if named:  # a type the recording lacks was dropped without a word: 'events:T0,T1,T3' trained T0 vs T1
        have = [str(t) for t in rec.events.counts()]
        unknown = [t for t in named if t not in have]
        if unknown:
            raise UnitScopeError(
                f"The target {target!r} names event type{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))} that the "
                f"recording does not hold; its event types are {have or 'none'}.{suggest(unknown[0], have)}")
    if spec.picks:
        picks = match_channels([str(p).strip() for p in spec.picks], rec.ch_names)
        changes["picks"] = picks
        decoded = own_target if target is None else None if target.startswith("events") else target
        if decoded is not None and decoded in picks:
            raise UnitScopeError(
                f"The target channel {decoded!r} cannot also be an input: the decoder would be given the trace it "
                f"is to decode. Leave it out of the picks (--picks), which are {picks}.")
    return replace(spec, **changes) if changes else spec


# the DataSpec / TrainConfig fields a resumed training must keep, as the CLI names them
_DATA_OPTIONS = {"target": "target (--target)", "picks": "picks (--picks)", "l_freq": "l_freq (--l-freq)",
                 "h_freq": "h_freq (--h-freq)", "sfreq": "sfreq (--sfreq)", "tmin": "tmin (--tmin)",
                 "tmax": "tmax (--tmax)", "bids": "bids (--bids)", "fractions": "fractions", "seed": "demo seed",
                 "duration": "demo duration", "ipsi_fraction": "ipsi_fraction (--demo-ipsi-fraction)"}
_TRAIN_OPTIONS = {"model": "model (--model)", "n_times": "n_times (--n-times)", "lr": "lr (--lr)",
                  "seed": "seed (--seed)", "batch_size": "batch_size", "scheduler": "scheduler",
                  "weight_decay": "weight_decay", "drop_prob": "drop_prob"}


def _config_record(cfg: dict) -> dict:
    """A run's config.json as :meth:`Workspace.run_record` words it."""
    return {"data": cfg["data"], "source_path": cfg.get("source_path"), "model": cfg.get("model") or {},
            "train": cfg.get("train") or {}, "task": cfg.get("task"),
            "recording": (cfg.get("prep") or {}).get("recording")}


def _same_source(now: dict, then: dict) -> bool:
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


def _unfinished(run_dir: Path) -> str:
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


def _same_data(spec: DataSpec, own: DataSpec) -> bool:
    """Whether ``spec`` names the data a run was trained on (``own``, its config.json's), perhaps
    found elsewhere: the same options and a recording of the same file name."""
    a, b = spec.to_dict(), own.to_dict()
    return (Path(str(a.pop("source"))).name == Path(str(b.pop("source"))).name) and a == b


def _extract_target(rec: Recording, spec: DataSpec) -> tuple[Recording, str]:
    """Split the target channel off the signals; return the recording and the task."""
    if spec.target is None:
        if rec.target is not None:
            return rec, "regression"
        raise UnitScopeError(
            "No target given: name a channel holding a continuous trace (--target CHANNEL) or "
            f"use event labels (--target events or events:TYPE1,TYPE2). Channels: {rec.ch_names[:20]}; "
            f"events: {rec.events.counts()}"
        )
    if spec.target.startswith("events"):
        return rec, "classification"
    if spec.target == getattr(rec.target, "name", None):
        return rec, "regression"
    if spec.target not in rec.ch_names:
        raise UnitScopeError(
            f"Target channel {spec.target!r} is not in the recording.{suggest(spec.target, rec.ch_names)} "
            f"Channels: {rec.ch_names[:30]}{' ...' if rec.n_chans > 30 else ''}"
        )
    if rec.ch_types[rec.ch_names.index(spec.target)] == "stim":
        raise UnitScopeError(
            f"Target channel {spec.target!r} is a stim (trigger) channel: it holds event codes, not a continuous "
            "trace to decode. Decode its events as labels instead: --target events (every type) or "
            f"events:TYPE1,TYPE2. Events: {rec.events.counts() or 'none found'}"
        )
    import xarray as xr

    y = rec.signals.sel(channel=spec.target)
    target = xr.DataArray(y.values.astype(np.float32), dims=("time",), coords={"time": rec.signals["time"].values},
                          name=spec.target)
    keep = [c for c in rec.ch_names if c != spec.target]
    return Recording(rec.signals.sel(channel=keep), target, rec.events), "regression"


def load_data(spec: DataSpec, *, n_times: int | None = None, model_kind: str = "deep4"):
    """Read and prepare the data of ``spec``.

    Returns
    -------
    recording : Recording
        Preprocessed (picked, filtered, resampled, standardised on the training block).
    task : str
    blocks : dict of str to slice
    prep : dict
        JSON-able statistics of the preprocessing (channel means/stds, target mean/std).
    """
    rec, task, spec = _read(spec)
    return _prepare(rec, task, spec, _picks(rec, spec))


def _read(spec: DataSpec):
    """The recording of ``spec`` with its target extracted (not yet picked or prepared), its
    task, and ``spec`` with the target and picks named as the recording names them."""
    if spec.source == "demo":
        rec = simulate_reaching(seed=spec.seed, duration=spec.duration, ipsi_fraction=spec.ipsi_fraction)
    else:
        if spec.ipsi_fraction:
            raise UnitScopeError(f"ipsi_fraction={spec.ipsi_fraction:g} applies to the demo recording only, "
                                 f"not to {spec.source!r}; leave it at 0.")
        rec = read_recording(spec.source, bids=spec.bids)
    spec = _resolve_names(rec, spec)
    rec, task = _extract_target(rec, spec)
    if task == "classification" and not spec.tmax > spec.tmin:
        raise UnitScopeError(f"The trial window must end after it starts: tmin={spec.tmin:g} s, tmax={spec.tmax:g} s "
                             "(relative to each event's onset; --tmin/--tmax).")
    return rec, task, spec


def _picks(rec: Recording, spec: DataSpec) -> list[str]:
    """The input channels: ``spec.picks``, else the data channels the file does not mark bad."""
    # [A] channels the file marks bad are left out unless picked by name (MNE's convention)
    picks = spec.picks or [c for c, t in zip(rec.ch_names, rec.ch_types) if t in DATA_CH_TYPES and c not in rec.bads]
    if not picks:
        bad = [c for c, t in zip(rec.ch_names, rec.ch_types) if t in DATA_CH_TYPES]
        raise UnitScopeError(
            f"Every EEG/iEEG/MEG channel is marked bad in the file ({bad[:10]}{' ...' if len(bad) > 10 else ''}); "
            "pick the channels to use by name." if bad else
            f"No EEG/iEEG/MEG channels in the recording; its channel types are {set(rec.ch_types)}.")
    return picks


def _prepare(rec: Recording, task: str, spec: DataSpec, picks: list[str]):
    """Pick, resample, band-pass and standardise ``rec`` (see :func:`load_data`)."""
    if not spec.picks and rec.bads:
        logger.info("left out %d channel(s) marked bad in the file: %s", len(rec.bads), ", ".join(rec.bads))
    rec = pick_channels(rec, picks)
    rec = resample(rec, spec.sfreq)
    if spec.h_freq is None and rec.sfreq < 2 * 4.0:
        raise UnitScopeError(f"A sampling rate of {rec.sfreq} Hz is too low for the decoders (at least 8 Hz).")
    rec = bandpass(rec, spec.l_freq, spec.h_freq)
    rec = mark_missing_target(rec)
    check_signals(rec)
    identity = recording_identity(rec)
    blocks = split_blocks(rec.n_times, spec.fractions)
    bad = rec.bad_samples()  # stretches the file marks bad: left out of fits and windows
    std = Standardizer().fit(rec, blocks["train"], exclude=bad)
    rec = std.transform(rec)
    prep = {"mean": std.mean_.tolist(), "std": std.std_.tolist(), "ch_names": rec.ch_names, "sfreq": rec.sfreq}
    if bad.any():
        prep["bad_seconds"] = round(float(bad.sum()) / rec.sfreq, 3)
    prep["recording"] = identity
    if task == "regression":
        y = rec.target.values[blocks["train"]][~bad[blocks["train"]]]
        prep["target_mean"], prep["target_std"] = float(y.mean()), float(y.std() or 1.0)
    return rec, task, blocks, prep


def _check_same_decoding(cfg: dict, run_dir: Path, spec: DataSpec, rec: Recording, task: str, prep: dict) -> None:
    """Refuse data (a run opened with another ``spec``) that the run's decoder does not decode as
    it was trained to: another task, sampling rate or trial window. A decoder trained at
    128 Hz read 256-Hz data as if they were slower, and a 2-s trial window gave 4-s windows."""
    mcfg, where = cfg["model"], f"The decoder in {str(run_dir)!r}"
    trained = DataSpec.from_dict(cfg["data"]) if isinstance(cfg.get("data"), dict) else None
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


def _check_same_classes(cfg: dict, run_dir: Path, data) -> None:
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


def _make_data(rec: Recording, task: str, blocks: dict, prep: dict, spec: DataSpec, model, n_times: int):
    rf = layer_map(model)[-1].receptive_field
    if task == "regression":
        y = (rec.target.values - prep["target_mean"]) / prep["target_std"]
        data = ContinuousData(rec.signals.values, y.astype(np.float32), blocks, n_times, rf, bad=rec.bad_samples())
    else:
        types = target_types(spec.target)
        ev = rec.events if types is None else rec.events.select(np.isin(rec.events.type, types))
        classes = sorted(set(ev.type.tolist()))
        if len(classes) < 2:
            raise UnitScopeError(
                f"Label decoding needs at least two event types; {spec.target!r} selects {classes}. "
                f"The recording has {rec.events.counts()}."
            )
        start = np.round((ev.onset + spec.tmin) * rec.sfreq).astype(int)
        ok = (start >= 0) & (start + n_times <= rec.n_times)
        bad = rec.bad_samples()
        if bad.any():  # [A] as MNE's epochs (reject_by_annotation): a trial touching a bad stretch is dropped
            touched = ok & touches(bad, start, start + n_times)
            if touched.any():
                logger.info("dropped %d of %d trials that touch stretches marked bad", int(touched.sum()), int(ok.sum()))
            ok &= ~touched
        idx = start[ok, None] + np.arange(n_times)[None]
        X = rec.signals.values[:, idx].transpose(1, 0, 2)  # (trials, chans, times)
        block_of = np.full(ok.sum(), "", dtype=object)
        for name, blk in blocks.items():
            block_of[(start[ok] >= blk.start) & (start[ok] + n_times <= blk.stop)] = name
        y = np.array([classes.index(t) for t in ev.type[ok]], dtype=np.int64)
        keep = block_of != ""
        data = TrialData(np.ascontiguousarray(X[keep]), y[keep], block_of[keep].astype(str), classes, n_times, rf)
    data.check_lengths(rec.sfreq)
    return data


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


class Workspace:
    """One recording, one decoder, its run folder and a version counter.

    Build with :meth:`create` (new decoder), :meth:`load` (a run folder) or :meth:`demo`.
    """

    def __init__(self, spec: DataSpec, config: TrainConfig, recording: Recording, task: str,
                 blocks: dict, prep: dict, model: torch.nn.Module, data, run_dir: Path | None = None):
        self.spec, self.config = spec, config
        self.recording, self.task, self.blocks, self.prep = recording, task, blocks, prep
        self.model, self.data, self.run_dir = model, data, run_dir
        self.layers = layer_map(model)
        self.version = 0
        self.metrics: dict = {}
        self.history: list = []

    # ---- construction ----------------------------------------------------------------
    @classmethod
    def create(cls, spec: DataSpec | None = None, config: TrainConfig | None = None) -> "Workspace":
        spec = spec or DataSpec()
        config = (config or TrainConfig()).validate()
        rec, task, spec = _read(spec)  # spec: the target and picks named as the recording names them
        rec, task, blocks, prep = _prepare(rec, task, spec, _picks(rec, spec))
        n_times = config.n_times
        if task == "classification":
            n_times = int(round((spec.tmax - spec.tmin) * rec.sfreq))
        n_outputs = 1
        if task == "classification":
            types = target_types(spec.target)
            ev = rec.events.type if types is None else rec.events.type[np.isin(rec.events.type, types)]
            n_outputs = max(len(set(ev.tolist())), 2)
        model = build_model(config.model, n_chans=rec.n_chans, n_outputs=n_outputs, n_times=n_times,
                            dense=task == "regression", drop_prob=config.drop_prob, seed=config.seed)
        data = _make_data(rec, task, blocks, prep, spec, model, n_times)
        return cls(spec, config, rec, task, blocks, prep, model, data)

    def probe_bands(self) -> dict[str, tuple[float, float]] | None:
        """The probe's bands within this run's band-pass (``l_freq``/``h_freq``): a default band
        (:data:`core.probing.bands.BANDS`) the filter removed is left out, one it cuts is
        clipped to the pass-band; None (the probe's defaults) for a run not band-passed.

        [A] Perturbing frequencies the filter took out of every window the decoder was trained
        on measures its answer to input it never saw: a run band-passed at 1-40 Hz was probed
        and labelled in 30-60 Hz and high gamma all the same.
        """
        lo_cut, hi_cut = self.spec.l_freq, self.spec.h_freq
        if lo_cut is None and hi_cut is None:
            return None
        from .probing.bands import BANDS

        from .cautions import in_passband  # the part of a band a band-pass keeps, as occlude and deconv take it

        nyquist = self.recording.sfreq / 2
        lo_cut, hi_cut = lo_cut or 0.0, min(hi_cut or nyquist, nyquist)
        kept = {name: in_passband(band, lo_cut, hi_cut) for name, band in BANDS.items()}
        out = {name: band for name, band in kept.items() if band is not None}
        if not out:
            raise UnitScopeError(f"No probe band lies in this run's band-pass ({lo_cut:g}-{hi_cut:g} Hz); the bands "
                                 f"are {', '.join(f'{k} {lo:g}-{hi:g} Hz' for k, (lo, hi) in BANDS.items())}.")
        return out

    @classmethod
    def load(cls, run_dir: str | Path, *, spec: DataSpec | None = None,
             check_recording: bool | None = None) -> "Workspace":
        """Open a run folder written by :meth:`save` (the model loads with weights_only=True).

        ``spec`` inspects the trained decoder on other data (another session or subject);
        its channels must match the ones the decoder was trained on.

        A run saved with what identifies its recording (``config.json``'s
        ``prep["recording"]``: samples, sampling rate, channels, per-channel mean and SD) is
        refused on a recording that differs (a file replaced or cut since), when opened on its
        own data: ``spec`` None, or the same options with a recording of the same file name found
        elsewhere (``check_recording=None``; True checks any ``spec``, False none). Runs saved
        without it (as the shipped demo run) load as before.
        """
        run_dir = Path(run_dir)
        given = spec
        cfg_path = run_dir / "config.json"
        if not cfg_path.is_file():
            raise UnitScopeError(
                f"{str(run_dir)!r} is not a UnitScope run folder (no config.json){_unfinished(run_dir)}.")
        try:
            cfg = json.loads(cfg_path.read_text())
            spec = spec or DataSpec.from_dict(cfg["data"])
            config = TrainConfig.from_dict(cfg["train"])
            mcfg = cfg["model"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise UnitScopeError(f"Corrupt run config {str(cfg_path)!r}: {exc}") from exc
        if spec.source != "demo":
            found = find_run_recording(spec.source, run_dir, cfg.get("source_path"))
            if found != spec.source:
                spec = DataSpec.from_dict({**spec.to_dict(), "source": found})
        rec, task, spec = _read(spec)
        trained_on = mcfg.get("ch_names")
        if spec.picks is None and trained_on:
            try:
                default = _picks(rec, spec)
            except UnitScopeError:  # e.g. every channel marked bad since: the trained ones by name
                default = None
            if default != list(trained_on):
                # a run trained before channels marked bad were left out by default, or on a file
                # whose marks changed since: the channels the decoder was trained on, by name
                # (read once: the same recording, picked otherwise)
                spec = DataSpec.from_dict({**spec.to_dict(), "picks": list(trained_on)})
        rec, task, blocks, prep = _prepare(rec, task, spec, _picks(rec, spec))
        if rec.ch_names != mcfg.get("ch_names", rec.ch_names) or rec.n_chans != mcfg["n_chans"]:
            raise UnitScopeError(
                f"The checkpoint in {str(run_dir)!r} was trained on {mcfg['n_chans']} channels "
                f"{mcfg.get('ch_names', [])[:8]}... but the data have {rec.n_chans} channels {rec.ch_names[:8]}..."
            )
        expected = (cfg.get("prep") or {}).get("recording")
        if check_recording is None:
            check_recording = given is None or _same_data(given, DataSpec.from_dict(cfg["data"]))
        if isinstance(expected, dict) and check_recording:
            diffs = recording_differences(prep["recording"], expected)
            if diffs:
                what = "The demo recording" if spec.source == "demo" else f"The recording {str(spec.source)!r}"
                raise UnitScopeError(
                    f"{what} is not the one the decoder in {str(run_dir)!r} was trained on: {'; '.join(diffs)}. "
                    "Put back the recording it was trained on, or train a decoder on this one.")
        model = load_run_model(run_dir, mcfg)
        _check_same_decoding(cfg, run_dir, spec, rec, task, prep)
        data = _make_data(rec, task, blocks, prep, spec, model, mcfg["n_times"])
        if task == "classification":
            _check_same_classes(cfg, run_dir, data)
        ws = cls(spec, config, rec, task, blocks, prep, model, data, run_dir)
        ws.metrics, ws.history = cfg.get("metrics", {}), cfg.get("history", [])
        return ws

    @classmethod
    def demo(cls, *, model: str = "deep4", cache_dir: str | Path | None = None,
             progress: Callable[[dict], None] | None = None, stop: threading.Event | None = None) -> "Workspace":
        """The trained decoder of the demo recording.

        Looks for a shipped run in ``assets/demo-<model>/``, then in
        ``<cache_dir>/demo-<model>-v<N>/``; trains (the shipped run's recipe, ``DEMO_TRAIN``;
        for Deep4 about 2.5 minutes on 2 cores, and, measured there, the very weights shipped: the
        same ``model_hash``) and caches it when neither exists.
        """
        for folder in (ASSETS_DIR / f"demo-{model}", Path(cache_dir or default_cache_dir()) / f"demo-{model}-v{DEMO_VERSION}"):
            if (folder / "model.pt").is_file() and (folder / "config.json").is_file():
                cfg = json.loads((folder / "config.json").read_text())
                if cfg.get("demo_version") == DEMO_VERSION:
                    return cls.load(folder)
        ws = cls.create(DataSpec(), TrainConfig(model=model, **DEMO_TRAIN.get(model, {})))
        ws.train(progress=progress, stop=stop)
        ws.save(folder, demo_version=DEMO_VERSION)
        return ws

    # ---- training and saving ---------------------------------------------------------
    def train(self, *, progress=None, stop=None, resume: bool = False, run_dir=None) -> TrainResult:
        """Train the decoder (in place), then measure valid and test metrics.

        With a run folder (``run_dir``, else the workspace's own), the folder is locked for the
        training (:func:`core.training.run_lock`: a second training into it is refused), the
        state of every epoch goes to its ``checkpoint.partial.pt``, and only a training that
        ends (finished, early-stopped or stopped with ``stop``) replaces the run's
        ``model.pt``, ``config.json`` and ``checkpoint.pt``, together; an interrupted one (an
        exception, Ctrl-C) leaves the folder's previous run as it was. ``resume`` continues
        from the folder's checkpoint (:func:`core.training.resume_checkpoint`) and refuses one
        of other data or another decoder (:meth:`check_resume`).
        """
        run_dir = Path(run_dir) if run_dir else self.run_dir
        with run_lock(run_dir) if run_dir else contextlib.nullcontext():
            if resume and run_dir:
                self.check_resume(run_dir)
            result = train(self.model, self.data, self.config, progress=progress, stop=stop,
                           checkpoint_dir=run_dir, resume=resume, record=self.run_record() if run_dir else None)
            self.history = result.history
            self.version += 1
            self.metrics = {"valid": self.evaluate("valid"), "test": self.evaluate("test"),
                            "best_epoch": result.best_epoch, "epochs": len(result.history),
                            "train_seconds": result.seconds, "stopped": result.stopped, **self.held_out_counts()}
            if run_dir:
                self._write(run_dir, {}, commit=True)
        return result

    def run_record(self) -> dict:
        """What this decoder is trained on and how (JSON-able), as a training's checkpoint keeps
        it: ``data`` (the DataSpec), ``source_path`` (the recording, in full), ``model`` (the
        architecture and its channels), ``train`` (the TrainConfig), ``task`` and ``recording``
        (what identifies the recording, :func:`core.recording.recording_identity`)."""
        # where the recording was, in full: a source given relative to the folder train ran in is
        # found again from any other (find_run_recording)
        source = Path(str(self.spec.source)).expanduser()
        return {"data": self.spec.to_dict(),
                "source_path": str(source.resolve()) if self.spec.source != "demo" and source.exists() else None,
                "model": dict(self.model.unitscope_config, ch_names=list(self.recording.ch_names)),
                "train": self.config.to_dict(), "task": self.task, "recording": self.prep.get("recording")}

    def resume_differences(self, record: dict) -> list[str]:
        """How this workspace's data and decoder differ from those a checkpoint was trained with
        (``record``: :meth:`run_record`'s, or a run's config.json), one ``"NAME NOW now, THEN in
        the checkpoint"`` each; [] when a training of it can be resumed here. The number of
        epochs, the patience and the device may differ."""
        now, out = self.run_record(), []

        def differs(label, a, b):
            out.append(f"{label} {a!r} now, {b!r} in the checkpoint")

        then_data = record.get("data") or {}
        if then_data and not _same_source(now, record):
            differs("data (--data)", now["data"]["source"], then_data.get("source"))
        for key, label in _DATA_OPTIONS.items():
            a, b = now["data"].get(key), then_data.get(key, now["data"].get(key))
            if (list(a) if isinstance(a, tuple) else a) != (list(b) if isinstance(b, tuple) else b):
                differs(label, a, b)
        then_train = record.get("train") or {}
        for key, label in _TRAIN_OPTIONS.items():
            a, b = now["train"].get(key), then_train.get(key, now["train"].get(key))
            if key == "lr":
                a = self.config.learning_rate
                b = DEFAULT_LR.get(then_train.get("model"), a) if b is None else float(b)
            if a != b:
                differs(label, a, b)
        then_model = record.get("model") or {}
        if not out:  # what the options above did not show: the channels or classes the data gave
            for key, label in (("ch_names", "input channels"), ("n_outputs", "outputs"), ("n_times", "window"),
                               ("dense", "dense")):
                if key in then_model and now["model"].get(key) != then_model[key]:
                    differs(label, now["model"].get(key), then_model[key])
        return out

    def check_resume(self, run_dir: str | Path, *, record: dict | None = None) -> None:
        """Refuse to resume the training in ``run_dir`` (its checkpoint,
        :func:`core.training.resume_checkpoint`) on other data or with another decoder than it
        was trained with (:meth:`resume_differences`), naming what differs. The record is the
        checkpoint's own; for a checkpoint that keeps none (written before UnitScope kept it),
        ``record`` or the run's config.json; nothing is checked when there is neither."""
        path = resume_checkpoint(run_dir)
        if path is None:
            return
        kept = checkpoint_summary(path)["record"]
        if kept is None and record is None and (Path(run_dir) / "config.json").is_file():
            try:
                record = _config_record(json.loads((Path(run_dir) / "config.json").read_text()))
            except (ValueError, TypeError, AttributeError):
                record = None
        kept = kept or record
        diffs = self.resume_differences(kept) if kept else []
        if diffs:
            d = kept.get("data") or {}
            from .io import source_label

            what = ("the demo recording" if d.get("source") == "demo"
                    else repr(source_label(str(d.get("source")), d.get("bids"))))
            target = f"target {d['target']!r}" if d.get("target") else "its own target"
            raise UnitScopeError(
                f"Cannot resume the training in {str(path)!r} on other data or with another decoder: "
                f"{'; '.join(diffs)}. It was trained on {what}, {target}, with a "
                f"{(kept.get('train') or {}).get('model', '?')} decoder: resume it with those options (unitscope "
                "train --resume without --data takes them from the run), or train from the start (without "
                "--resume) or into another folder.")

    def held_out_counts(self) -> dict:
        """How many trials (labels) or windows (continuous targets) the valid and test metrics
        rest on, to store beside them in a run's metrics (:meth:`train` and :meth:`load_weights`
        do, so the cautions of ``unitscope info`` and the app hold for runs made from Python): ``n_valid``, ``n_test``, ``count_of``;
        for a continuous target also ``test_target_shift``: the test block's mean target in SDs of
        the training block's from its mean (the targets are standardised on the training block)."""
        _, y_test = self.eval_set("test")
        out = {"n_valid": int(len(self.eval_set("valid")[0])), "n_test": int(len(y_test)),
               "count_of": "trials" if self.task == "classification" else "windows"}
        if self.task == "regression" and np.size(y_test):
            out["test_target_shift"] = round(float(np.nanmean(y_test)), 3)
        if self.task == "classification":
            out["n_test_classes"] = int(len(np.unique(y_test)))
            pred, true = self.predict("test")
            guess = np.asarray(pred).argmax(axis=1)
            true = np.asarray(true).astype(int)
            classes = [str(c) for c in self.data.classes]
            # per class: the test trials called right and the trials of the class (its recall), the
            # numbers balanced accuracy averages
            out["test_per_class"] = {c: [int(np.sum((true == k) & (guess == k))), int(np.sum(true == k))]
                                     for k, c in enumerate(classes)}
        return out

    def load_weights(self, path: str | Path) -> None:
        """Put weights trained elsewhere into this workspace's decoder, then measure them.

        For model inspection: a braindecode Deep4Net / ShallowFBCSPNet trained outside
        UnitScope, saved as its ``state_dict()`` (``torch.save(model.state_dict(), path)``,
        skorch's ``save_params(f_params=...)``, or a dict holding it under ``model``,
        ``state_dict`` or ``model_state_dict``, as UnitScope's own ``checkpoint.pt``). The file
        loads with ``weights_only=True``; a ``module.`` prefix (DataParallel) is dropped. The
        decoder built for these data (channels, outputs, window, dense or trial-wise) must have
        the same parameter names (braindecode's older names are mapped as braindecode maps them)
        and shapes; dropout is not a parameter and does not matter.

        [A] The inputs are prepared as UnitScope prepares them (per-channel standardisation
        fitted on the training block, the DataSpec's filtering and resampling); weights trained
        on inputs prepared differently decode worse here, and the test metric shows it.

        Raises
        ------
        UnitScopeError
            Unreadable or unsafe file, no state dict in it, or parameters that do not fit.
        """
        from .training import load_state

        path = Path(path)
        check_state_file(path)
        state = load_state(path)
        if isinstance(state, dict):
            for key in ("model", "state_dict", "model_state_dict"):
                if isinstance(state.get(key), dict):
                    state = state[key]
                    break
        if not isinstance(state, dict) or not state or not all(torch.is_tensor(v) for v in state.values()):
            raise UnitScopeError(
                f"{str(path)!r} holds no state dict (a mapping of parameter names to tensors); save the "
                "trained network with torch.save(model.state_dict(), path).")
        state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
        legacy = getattr(self.model, "mapping", None) or {}  # braindecode's names before 0.8
        state = {legacy.get(k, k): v for k, v in state.items()}
        own = self.model.state_dict()
        missing, unexpected, shapes = state_mismatches(state, own)
        if missing or unexpected or shapes:
            cfg = self.model.unitscope_config
            parts = mismatch_parts(missing, unexpected, shapes)
            raise UnitScopeError(
                f"The weights in {str(path)!r} do not fit the {cfg['kind']} decoder of these data "
                f"({cfg['n_chans']} channels, {cfg['n_outputs']} output(s), {cfg['n_times']}-sample windows, "
                f"{'dense' if cfg['dense'] else 'trial-wise'}): {'; '.join(parts)}. Check the decoder kind "
                "(Deep4 or Shallow; --model), the input channels (--picks), the target and the window (--n-times, "
                "or --tmin/--tmax for labels).")
        self.model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
        self.model.eval()
        self.history = []
        self.version += 1
        self.metrics = {"valid": self.evaluate("valid"), "test": self.evaluate("test"),
                        "weights_from": str(path), **self.held_out_counts()}

    def save(self, run_dir: str | Path, **extra) -> Path:
        """Write ``model.pt`` and ``config.json`` into ``run_dir``, each atomically, as one step
        (:meth:`_write`); refused while another process trains into the folder."""
        return self._write(run_dir, extra, commit=False)

    def _write(self, run_dir: str | Path, extra: dict, *, commit: bool) -> Path:
        """Replace the run in ``run_dir`` by this one: config.json goes first (for that moment
        the folder is no run, rather than one whose config.json describes other weights), then
        model.pt and the new config.json are written, and with ``commit`` the training's
        ``checkpoint.partial.pt`` becomes ``checkpoint.pt``. Under the folder's lock, with a
        Ctrl-C held until the step ends."""
        import io

        from .training import atomic_write_bytes, json_default

        run_dir = Path(run_dir)
        record = self.run_record()  # the data spec, the recording in full, the model, as a checkpoint keeps them
        where = {"source_path": record["source_path"]} if record["source_path"] else {}
        # a label decoder's classes, output by output: opened on other data, the same classes are asked
        classes = {"classes": list(self.data.classes)} if self.task == "classification" else {}
        cfg = {"data": record["data"], **where, "train": record["train"], "model": record["model"],
               "task": self.task, "prep": self.prep, "metrics": self.metrics, "history": self.history,
               "layers": [l.to_dict() for l in self.layers], **classes, **extra}
        # both files in bytes first: one that cannot be written leaves the folder as it was
        weights = io.BytesIO()
        torch.save(self.model.state_dict(), weights)
        text = json.dumps(cfg, indent=2, default=json_default).encode()
        with run_lock(run_dir), held_interrupt():
            (run_dir / "config.json").unlink(missing_ok=True)
            atomic_write_bytes(run_dir / "model.pt", weights.getvalue())
            atomic_write_bytes(run_dir / "config.json", text)
            if commit:
                commit_checkpoint(run_dir)
            self.run_dir = run_dir
        return run_dir

    # ---- evaluation ------------------------------------------------------------------
    def windows(self, block: str = "train", *, n_times: int | None = None) -> np.ndarray:
        """Non-overlapping windows of a block, shape (W, C, n_times), float32 (none touching a
        stretch the file marks bad)."""
        self._check_block(block)
        if self.task == "classification":
            return self.data.eval_set(block)[0]
        n_times = n_times or self.data.n_times
        starts = self.data.tiling_starts(block, n_times)
        idx = starts[:, None] + np.arange(n_times)[None]
        return np.ascontiguousarray(self.data.X[:, idx].transpose(1, 0, 2))  # (W, C, T)

    def eval_set(self, block: str = "test") -> tuple[np.ndarray, np.ndarray]:
        """Inputs and aligned targets: regression X (W, C, n_times), y (W, n_preds) z-scored;
        classification X (N, C, T), y (N,) int."""
        self._check_block(block)
        return self.data.eval_set(block)

    def predict(self, block: str = "test", model=None) -> tuple[np.ndarray, np.ndarray]:
        """Predictions and truth: regression (W*n_preds,) each in target units; labels (N, n_classes), (N,)."""
        X, y = self.eval_set(block)
        out = predict(model or self.model, X)
        if self.task == "regression":
            s, m = self.prep["target_std"], self.prep["target_mean"]
            return out[:, 0, :].ravel() * s + m, y.ravel() * s + m
        return out, y

    def evaluate(self, block: str = "test", model=None) -> float:
        pred, y = self.predict(block, model)
        return score(self.task, pred, y)

    def _check_block(self, block: str) -> None:
        if block not in self.blocks:
            raise UnitScopeError(f"Unknown block {block!r}; the blocks are {list(self.blocks)}.{suggest(block, self.blocks)}")
