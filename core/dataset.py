"""From a data spec to prepared data: :class:`DataSpec` (where the data come from and how they
are prepared) and :func:`load_data` (read, name the target and picks as the recording names
them, pick, resample, band-pass and standardise on the training block), and the decoder's
windows or trials of the prepared recording. :mod:`core.workspace` drives them.
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from ._validation import UnitScopeError, check_option, suggest
from .decoding import ContinuousData, TrialData
from .demo import simulate_reaching
from .io import DATA_CH_TYPES, match_channels, read_recording
from .models import layer_map
from .preprocessing import (FILTER_PHASES, Standardizer, bandpass, check_signals, flat_channels, mark_missing_target,
                            pick_channels, recorded_filter_phase, resample, split_blocks)
from .recording import Recording, recording_identity, target_types, touches

__all__ = ["DataSpec", "load_data", "read_spec", "input_picks", "prepare", "make_data"]

logger = logging.getLogger(__name__)


@dataclass
class DataSpec:
    """Where the data come from and how they are prepared (JSON round trip)."""

    source: str = "demo"                 # "demo" or a path (file or BIDS folder)
    target: str | None = None            # channel name, or "events" / "events:T1,T2" for labels
    picks: list | None = None            # channel names; default: all data channels
    l_freq: float | None = None          # band-pass edges in Hz (None: off)
    h_freq: float | None = None
    filter_phase: str = "causal"         # band-pass: "causal" (minimum phase) or "zero" (looks ahead)
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
        check_option("filter_phase", self.filter_phase, FILTER_PHASES)
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

    @classmethod
    def from_record(cls, d: dict) -> "DataSpec":
        """A run's data as its ``config.json`` (or a checkpoint's record) wrote them: as
        :meth:`from_dict`, but a band-pass recorded before ``filter_phase`` existed is read as
        the zero-phase filter it was (those runs were trained on it)."""
        return cls.from_dict({**d, "filter_phase": recorded_filter_phase(d)})

    def is_plain_demo(self) -> bool:
        """The built-in demo as the shipped decoder was trained on it: its own target, every
        channel, no filter or resampling, no ipsilateral movements, the default length and seed
        (:data:`core.workspace.DEMO_TRAIN` applies to it)."""
        default = DataSpec()
        return (self.source == "demo" and self.target in (None, "hand_speed") and not self.picks
                and self.l_freq is None and self.h_freq is None and self.sfreq is None and not self.ipsi_fraction
                and self.duration == default.duration and self.seed == default.seed
                and tuple(self.fractions) == tuple(default.fractions))


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


def load_data(spec: DataSpec):
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
    rec, task, spec = read_spec(spec)
    return prepare(rec, task, spec, input_picks(rec, spec))


def read_spec(spec: DataSpec):
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


def input_picks(rec: Recording, spec: DataSpec) -> list[str]:
    """The input channels: ``spec.picks``, else the data channels the file does not mark bad
    and that vary (:func:`core.preprocessing.flat_channels`; when all are flat, all of them, for
    the error that names them)."""
    twice = sorted({c for c in spec.picks or [] if spec.picks.count(c) > 1})
    if twice:  # a decoder with the channel twice among its inputs, which later commands could not read
        raise UnitScopeError(f"Channels picked more than once: {twice}; pick each input channel once "
                             f"(picks given: {list(spec.picks)}).")
    # [A] channels the file marks bad are left out unless picked by name (MNE's convention), and
    # so are flat ones (a disconnected electrode had stopped training, and the way out was to
    # name the other 63 channels)
    picks = spec.picks
    if not picks:
        picks = [c for c, t in zip(rec.ch_names, rec.ch_types) if t in DATA_CH_TYPES and c not in rec.bads]
        flat = flat_channels(rec, picks)
        if flat and len(flat) < len(picks):
            logger.warning("left out %d flat channel(s) (no variance): %s; pick channels by name to choose otherwise",
                           len(flat), ", ".join(flat[:10]) + (" ..." if len(flat) > 10 else ""))
            picks = [c for c in picks if c not in flat]
    if not picks:
        bad = [c for c, t in zip(rec.ch_names, rec.ch_types) if t in DATA_CH_TYPES]
        raise UnitScopeError(
            f"Every EEG/iEEG/MEG channel is marked bad in the file ({bad[:10]}{' ...' if len(bad) > 10 else ''}); "
            "pick the channels to use by name." if bad else
            f"No EEG/iEEG/MEG channels in the recording; its channel types are {set(rec.ch_types)}.")
    return picks


def prepare(rec: Recording, task: str, spec: DataSpec, picks: list[str]):
    """Pick, resample, band-pass and standardise ``rec`` (see :func:`load_data`)."""
    if not spec.picks and rec.bads:
        logger.info("left out %d channel(s) marked bad in the file: %s", len(rec.bads), ", ".join(rec.bads))
    rec = pick_channels(rec, picks)
    rec = resample(rec, spec.sfreq)
    if spec.h_freq is None and rec.sfreq < 2 * 4.0:
        raise UnitScopeError(f"A sampling rate of {rec.sfreq} Hz is too low for the decoders (at least 8 Hz).")
    rec = bandpass(rec, spec.l_freq, spec.h_freq, phase=spec.filter_phase)
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


def make_data(rec: Recording, task: str, blocks: dict, prep: dict, spec: DataSpec, model, n_times: int):
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
