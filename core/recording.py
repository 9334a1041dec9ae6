"""A recording: signals, an optional continuous target and events, as xarray objects.

``Recording.signals`` is an ``xarray.DataArray`` with dims ``("channel", "time")``; its
``attrs`` hold ``sfreq`` (Hz) and the provenance of every preprocessing step. Channel
coordinates carry ``ch_type`` and, where known, positions (``x``, ``y``) and simulator roles.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ._validation import UnitScopeError

__all__ = ["Events", "Recording", "label_targets", "natural_key", "touches", "recording_identity",
           "recording_differences", "MIN_EVENTS_PER_CLASS", "IDENTITY_RTOL"]


def natural_key(name) -> list:
    """Sort key of an event type or class name in natural order: trigger codes as numbers
    (2 before 10), T2 before T10."""
    import re

    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", str(name)) if p]


@dataclass
class Events:
    """Events of a recording.

    Attributes
    ----------
    onset : ndarray, shape (n_events,)
        Onset times in seconds from the start of the recording (its first sample), whatever
        its ``time`` axis reads there.
    type : ndarray of str, shape (n_events,)
        Event type (annotation description, trigger code as text, ...).
    value : ndarray, shape (n_events,)
        A number per event (the demo: peak hand speed; otherwise the duration or NaN).
    """

    onset: np.ndarray
    type: np.ndarray
    value: np.ndarray

    def __post_init__(self):
        self.onset = np.asarray(self.onset, dtype=float).reshape(-1)
        self.type = np.array([str(t) for t in np.asarray(self.type, dtype=object).reshape(-1)], dtype=str)
        if self.type.size == 0:
            self.type = self.type.astype("<U1")
        self.value = np.asarray(self.value, dtype=float).reshape(-1)
        if not (len(self.onset) == len(self.type) == len(self.value)):
            raise UnitScopeError(
                f"Events need as many types and values as onsets, got {len(self.onset)} onsets, "
                f"{len(self.type)} types and {len(self.value)} values."
            )

    def __len__(self) -> int:
        return len(self.onset)

    @classmethod
    def empty(cls) -> "Events":
        return cls(np.zeros(0), np.zeros(0, dtype=str), np.zeros(0))

    def select(self, mask) -> "Events":
        mask = np.asarray(mask)
        return Events(self.onset[mask], self.type[mask], self.value[mask])

    def median_spacing(self) -> float | None:
        """Median time between consecutive onsets (s, to the ms), None with fewer than 2 events:
        label trials longer than it hold the next events."""
        if len(self) < 2:
            return None
        return round(float(np.median(np.diff(np.sort(self.onset)))), 3)

    def others_in_trials(self, types, tmin: float, tmax: float) -> float | None:
        """Median number of other events in a label trial: events of any type whose onset lies in
        ``[onset + tmin, onset + tmax)`` of each event of ``types`` (None: every type), the event
        itself not counted; None when there is no such trial."""
        own = self.onset if types is None else self.onset[np.isin(self.type, [str(t) for t in types])]
        if len(own) == 0 or tmax <= tmin:
            return None
        every = np.sort(self.onset)
        n = np.searchsorted(every, own + tmax, "left") - np.searchsorted(every, own + tmin, "left")
        if tmin <= 0 < tmax:
            n = n - 1  # the trial's own event
        return float(np.median(n))

    def counts(self) -> dict[str, int]:
        """Events per type, in natural order (:func:`natural_key`)."""
        kinds, n = np.unique(self.type, return_counts=True)
        pairs = sorted(zip(kinds.tolist(), n.tolist()), key=lambda kc: natural_key(kc[0]))
        return {str(k): int(c) for k, c in pairs}


@dataclass
class Recording:
    """Signals (channel x time), an optional continuous target (time) and events.

    Attributes
    ----------
    signals : xarray.DataArray, dims ("channel", "time")
        ``attrs["sfreq"]`` is the sampling frequency in Hz; ``time`` is in seconds.
    target : xarray.DataArray, dims ("time",), or None
        A continuous behavioural trace on the same time axis (e.g. hand speed).
    events : Events
        Event onsets, types and values.
    """

    signals: xr.DataArray
    target: xr.DataArray | None = None
    events: Events = field(default_factory=Events.empty)

    def __post_init__(self):
        if tuple(self.signals.dims) != ("channel", "time"):
            raise UnitScopeError(f"signals must have dims ('channel', 'time'), got {self.signals.dims}.")
        if "sfreq" not in self.signals.attrs:
            raise UnitScopeError("signals.attrs must contain 'sfreq' (Hz).")
        if self.target is not None and self.target.sizes["time"] != self.signals.sizes["time"]:
            raise UnitScopeError(
                f"target has {self.target.sizes['time']} samples but signals have "
                f"{self.signals.sizes['time']}; they must share one time axis."
            )

    @property
    def sfreq(self) -> float:
        return float(self.signals.attrs["sfreq"])

    @property
    def n_chans(self) -> int:
        return int(self.signals.sizes["channel"])

    @property
    def n_times(self) -> int:
        return int(self.signals.sizes["time"])

    @property
    def duration(self) -> float:
        return self.n_times / self.sfreq

    @property
    def ch_names(self) -> list[str]:
        return [str(c) for c in self.signals["channel"].values]

    @property
    def bads(self) -> list[str]:
        """Channels the file marks as bad (MNE's ``info["bads"]``, BIDS ``channels.tsv``
        status), those still in the recording; kept in ``signals.attrs["bads"]`` (JSON)."""
        import json

        marked = set(json.loads(self.signals.attrs.get("bads", "[]")))
        return [c for c in self.ch_names if c in marked]

    @property
    def bad_segments(self) -> list[tuple[float, float, str]]:
        """Stretches the file marks bad: MNE's convention, annotations whose description starts
        with 'bad' or 'edge' (any case). ``(onset, duration, description)``, seconds from the
        recording's first sample; kept in ``signals.attrs["bad_segments"]`` (JSON)."""
        import json

        return [(float(o), float(d), str(t)) for o, d, t in json.loads(self.signals.attrs.get("bad_segments", "[]"))]

    def bad_samples(self) -> np.ndarray:
        """Boolean mask (n_times,): samples inside a :attr:`bad_segments` stretch."""
        mask = np.zeros(self.n_times, dtype=bool)
        for onset, duration, _ in self.bad_segments:
            a = max(int(np.floor(onset * self.sfreq)), 0)
            b = min(int(np.ceil((onset + duration) * self.sfreq)), self.n_times)
            mask[a:max(b, a + 1)] = True  # a zero-length mark still marks its sample
        return mask

    @property
    def ch_types(self) -> list[str]:
        if "ch_type" in self.signals.coords:
            return [str(c) for c in self.signals["ch_type"].values]
        return ["misc"] * self.n_chans

    def summary(self) -> dict:
        """A JSON-able description: channels, types, duration, sampling rate, events, and
        where the channel positions come from."""
        kinds, counts = np.unique(self.ch_types, return_counts=True)
        return {
            "n_chans": self.n_chans,
            "ch_names": self.ch_names,
            "ch_types": {str(k): int(c) for k, c in zip(kinds, counts)},
            "sfreq": self.sfreq,
            "n_times": self.n_times,
            "duration_s": round(self.duration, 3),
            "target": None if self.target is None else str(self.target.name),
            "events": self.events.counts(),
            "event_spacing_s": self.events.median_spacing(),
            "bads": self.bads,
            "bad_segments": len(self.bad_segments),
            "bad_seconds": round(float(self.bad_samples().sum()) / self.sfreq, 3),
            "positions": str(self.signals.attrs.get("positions", "given with the recording" if "x" in self.signals.coords
                                                    else "none")),
            "read_note": str(self.signals.attrs.get("read_note", "")),  # e.g. a file cut short
        }


MIN_EVENTS_PER_CLASS = 5  # [A] an event type with fewer is left out of the default label target


def target_types(target: str) -> list[str] | None:
    """The event types a label target names: ``"events:T1,T2"`` -> ["T1", "T2"]; ``"events"``
    (every type) -> None."""
    return None if target == "events" else target.split(":", 1)[1].split(",")


def label_targets(counts: dict) -> list[str]:
    """Label targets a recording's events offer (``DataSpec.target`` values), the default first.

    Every choice names at least two event types (one type alone is no decoding problem): the
    types with at least :data:`MIN_EVENTS_PER_CLASS` events each (a lone 'New Segment' marker
    is not a class), all types (``events``), then every pair of types (up to 8 types), e.g.
    EEGMMIDB's ``events:T1,T2`` (left against right fist).
    """
    types = [str(k) for k in counts]
    if len(types) < 2:
        return []
    frequent = [k for k in types if counts[k] >= MIN_EVENTS_PER_CLASS]
    out = [f"events:{','.join(frequent)}"] if 2 <= len(frequent) < len(types) else []
    out.append("events")
    if 2 < len(types) <= 8:
        out += [f"events:{a},{b}" for i, a in enumerate(types) for b in types[i + 1:]]
    return list(dict.fromkeys(out))


def touches(mask: np.ndarray, start, stop) -> np.ndarray:
    """Whether each sample range ``[start, stop)`` (arrays; clipped to the mask) holds a sample
    ``mask`` marks, e.g. a window touching a stretch marked bad (:meth:`Recording.bad_samples`)."""
    hits = np.concatenate([[0], np.cumsum(mask)])
    n = len(mask)
    return hits[np.clip(stop, 0, n)] - hits[np.clip(start, 0, n)] > 0


def recording_identity(rec: Recording) -> dict:
    """What identifies a prepared recording (picked, resampled, filtered, not yet standardised),
    kept in a run's ``config.json`` (``prep["recording"]``) to check that the recording a run is
    opened on is the one it was trained on: ``n_times``, ``sfreq``, ``ch_names``, the target's
    name, and a cheap checksum: each channel's (and the target's) mean and SD over the whole
    recording, to 6 significant digits."""
    x = rec.signals.values  # (chans, times)
    # row by row in float64: no full-size float64 copy of a long MEG recording
    mean = [float(f"{np.mean(row, dtype=np.float64):.6g}") for row in x]
    sd = [float(f"{np.std(row, dtype=np.float64):.6g}") for row in x]
    out = {"n_times": int(rec.n_times), "sfreq": float(rec.sfreq), "ch_names": [str(c) for c in rec.ch_names],
           "mean": mean, "sd": sd}
    if rec.target is not None:
        y = np.asarray(rec.target.values, dtype=np.float64)
        out.update(target=str(rec.target.name), target_mean=float(f"{y.mean():.6g}"),
                   target_sd=float(f"{y.std():.6g}"))
    return out


# [A] a channel's mean or SD that moves by more than this share of its SD is another recording
# (float sums in another order or another MNE's filters move them by about 1e-6)
IDENTITY_RTOL = 1e-3


def recording_differences(given: dict, expected: dict) -> list[str]:
    """How a prepared recording (its :func:`recording_identity`, ``given``) differs from the one
    a run was trained on (``expected``), one phrase each, given vs expected; [] when it does not."""
    out = []
    sfreq = float(expected.get("sfreq") or given["sfreq"])
    if given["n_times"] != expected["n_times"]:
        out.append(f"{given['n_times']} samples ({given['n_times'] / float(given['sfreq']):.1f} s) given, "
                   f"{expected['n_times']} ({expected['n_times'] / sfreq:.1f} s) expected")
    if not np.isclose(float(given["sfreq"]), sfreq):
        out.append(f"sampling rate {float(given['sfreq']):g} Hz given, {sfreq:g} Hz expected")
    g, e = list(given["ch_names"]), list(expected["ch_names"])
    if len(g) != len(e):
        out.append(f"{len(g)} channels given, {len(e)} expected")
    elif g != e:
        i = next(i for i, (a, b) in enumerate(zip(g, e)) if a != b)
        out.append(f"channel {i + 1} {g[i]!r} given, {e[i]!r} expected")
    if given.get("target") != expected.get("target"):
        out.append(f"target {given.get('target')!r} given, {expected.get('target')!r} expected")
    if out:
        return out
    rows = [(c, g_m, g_s, e_m, e_s) for c, g_m, g_s, e_m, e_s in
            zip(expected["ch_names"], given["mean"], given["sd"], expected["mean"], expected["sd"])]
    if expected.get("target") is not None and "target_mean" in expected:
        rows.append((f"target {expected['target']}", given["target_mean"], given["target_sd"],
                     expected["target_mean"], expected["target_sd"]))
    moved = [r for r in rows if abs(r[1] - r[3]) > IDENTITY_RTOL * abs(r[4]) + 1e-30
             or abs(r[2] - r[4]) > IDENTITY_RTOL * abs(r[4]) + 1e-30]
    if moved:
        c, g_m, g_s, e_m, e_s = moved[0]
        more = f" (and {len(moved) - 1} more)" if len(moved) > 1 else ""
        out.append(f"the same length but other values: {c!s} has mean {g_m:.4g} and SD {g_s:.4g} given, "
                   f"mean {e_m:.4g} and SD {e_s:.4g} expected{more}")
    return out
