"""Explicit preprocessing: picks, band-pass, resampling, block splits, standardisation.

Every step returns a new :class:`Recording` and appends a record of itself to
``signals.attrs["preprocessing"]`` (a JSON string list), so results carry their provenance.
Standardisation is fitted on the training block only (no leakage from valid/test).
"""
from __future__ import annotations

import json

import numpy as np

from ._validation import UnitScopeError, check_option, check_range, suggest
from .recording import Recording

__all__ = ["pick_channels", "bandpass", "FILTER_PHASES", "recorded_filter_phase", "resample", "split_blocks", "Standardizer", "check_signals",
           "mark_missing_target", "MAX_MISSING_TARGET"]

MAX_MISSING_TARGET = 0.5  # [A] above this share of missing target samples, training is refused


def _log_step(rec: Recording, step: dict) -> None:
    steps = json.loads(rec.signals.attrs.get("preprocessing", "[]"))
    steps.append(step)
    rec.signals.attrs["preprocessing"] = json.dumps(steps)


# [A] Long recordings are processed a few channels at a time in float64 and kept in float32, so
# a step holds one float32 copy of the signals plus a chunk, not two float64 copies (a 20-min,
# 64-channel 1 kHz FIF: peak memory of load_data from 1.83 GB to 1.08 GB). Each channel is
# processed alone by every step here, so the results equal the whole-array computation bit for bit.
_CHUNK_BYTES = 64 * 2 ** 20


def rowwise(values: np.ndarray, fn) -> np.ndarray:
    """``fn(x, rows)`` (float64 rows ``x`` of ``values[rows]`` -> float64 rows, any length, the
    same for all) applied to a few rows of ``values`` at a time; returns float32 (n_rows, length)."""
    n_rows, n_cols = values.shape
    out = None
    step = max(1, _CHUNK_BYTES // (8 * max(n_cols, 1)))
    for s in range(0, n_rows, step):
        rows = slice(s, min(s + step, n_rows))
        y = fn(values[rows].astype(np.float64), rows)
        if out is None:
            out = np.empty((n_rows, y.shape[1]), dtype=np.float32)
        out[rows] = y
    return out


def _copy(rec: Recording, signals) -> Recording:
    signals.attrs = dict(rec.signals.attrs)
    return Recording(signals, rec.target, rec.events)


def flat_channels(rec: Recording, names=None) -> list[str]:
    """The channels of ``names`` (default: all) whose samples do not vary: every sample equal
    (a constant at any offset: in float32 the std of a 25-uV constant came out 3.6e-12, not 0,
    and such a channel passed as if it varied), or a variance negligible beside the largest
    amplitude among them. Channel by channel (no copy of the recording)."""
    data = rec.signals.values
    order = list(rec.ch_names)
    idx = range(len(order)) if names is None else [order.index(n) for n in names]
    stats = [(float(np.ptp(data[i])), float(np.std(data[i])), float(np.max(np.abs(data[i])))) for i in idx]
    if not stats:
        return []
    top = max(max((a for _, _, a in stats if a == a), default=0.0), 1e-30)
    return [order[i] for i, (ptp, sd, _) in zip(idx, stats) if ptp == 0 or sd <= 1e-20 * top]


def check_signals(rec: Recording) -> None:
    """Raise on NaN/Inf samples or flat channels, naming the channels."""
    data = rec.signals.values
    bad = ~np.isfinite(data).all(axis=1)
    if bad.any():
        names = [rec.ch_names[i] for i in np.flatnonzero(bad)][:10]
        raise UnitScopeError(
            f"Channels {names} contain NaN or Inf samples; interpolate or drop them "
            "(e.g. pick other channels) before training."
        )
    flat = flat_channels(rec)
    if flat:
        raise UnitScopeError(f"Channels {flat[:10]} are flat (zero variance): leave them out of the picks (with no "
                             "picks given, flat channels are left out).")
    if rec.target is not None:
        y = rec.target.values
        if not np.isfinite(y).all():
            raise UnitScopeError(f"The target {rec.target.name!r} contains NaN or Inf samples.")
        if y.size and np.ptp(y) == 0:
            raise UnitScopeError(f"The target {rec.target.name!r} is constant (every sample {float(y.flat[0]):g}): "
                                 "there is nothing to decode, and a Pearson r of a constant is undefined. "
                                 "Choose a channel that varies as the target.")


def mark_missing_target(rec: Recording) -> Recording:
    """Treat the samples where a continuous target is missing (NaN/Inf: a behavioural trace's
    dropouts) like stretches the file marks bad: added to ``bad_segments``
    ('BAD_target_missing'), so no window and no fit uses them; the target is set to 0 there.

    Raises
    ------
    UnitScopeError
        When more than :data:`MAX_MISSING_TARGET` of the target is missing.
    """
    if rec.target is None:
        return rec
    y = rec.target.values
    miss = ~np.isfinite(y)
    if not miss.any():
        return rec
    if miss.mean() > MAX_MISSING_TARGET:
        raise UnitScopeError(
            f"The target {rec.target.name!r} is missing (NaN or Inf) in {miss.mean():.0%} of its samples; at most "
            f"{MAX_MISSING_TARGET:.0%} can be left out. Choose another target or a stretch of the recording.")
    edges = np.flatnonzero(np.diff(np.r_[0, miss.astype(np.int8), 0]))
    runs = edges.reshape(-1, 2)  # [start, stop) sample of each missing run
    segments = json.loads(rec.signals.attrs.get("bad_segments", "[]"))
    segments += [[a / rec.sfreq, (b - a) / rec.sfreq, "BAD_target_missing"] for a, b in runs]
    target = rec.target.copy(data=np.where(miss, 0.0, y).astype(y.dtype))
    signals = rec.signals.copy()
    signals.attrs = dict(rec.signals.attrs, bad_segments=json.dumps(segments))
    out = Recording(signals, target, rec.events)
    _log_step(out, {"step": "target_missing", "samples": int(miss.sum()), "stretches": int(len(runs))})
    return out


def pick_channels(rec: Recording, picks: list[str] | None) -> Recording:
    """Keep the named channels (in the given order); unknown names raise with a suggestion."""
    if not picks:
        return rec
    missing = [p for p in picks if p not in rec.ch_names]
    if missing:
        raise UnitScopeError(
            f"Channels {missing} are not in the recording.{suggest(missing[0], rec.ch_names)} "
            f"Available: {rec.ch_names[:20]}{' ...' if rec.n_chans > 20 else ''}"
        )
    out = _copy(rec, rec.signals.sel(channel=list(picks)))
    _log_step(out, {"step": "pick", "channels": list(picks)})
    return out


FILTER_PHASES = ("causal", "zero")


def recorded_filter_phase(data: dict) -> str:
    """The band-pass phase of a run's data as its config.json records them: ``filter_phase``,
    or, for a band-pass recorded before the choice existed, "zero" (those runs were filtered so)."""
    if "filter_phase" in data:
        return str(data["filter_phase"])
    return "zero" if data.get("l_freq") is not None or data.get("h_freq") is not None else "causal"


def bandpass(rec: Recording, l_freq: float | None, h_freq: float | None, *, phase: str = "causal") -> Recording:
    """FIR band-pass with MNE's ``filter_data`` (None disables an edge).

    ``phase="causal"`` (the default) applies MNE's minimum-phase version of the filter, so a
    sample depends on the recording up to it only, as the decoders are causal (METHODS 1.5).
    ``"zero"`` is MNE's zero-phase filter: no phase distortion, but every sample holds the next
    half filter length of the recording (1.65 s for 1-40 Hz at 250 Hz), which a decoder then
    reads before it happens; runs trained before the choice existed were filtered so."""
    check_option("phase", phase, FILTER_PHASES)
    if l_freq is None and h_freq is None:
        return rec
    nyq = rec.sfreq / 2
    for name, f in (("l_freq", l_freq), ("h_freq", h_freq)):
        if f is not None:
            check_range(name, f, low=0.0, high=nyq, low_inclusive=False, high_inclusive=False)
    if l_freq is not None and h_freq is not None and l_freq >= h_freq:
        # MNE takes l_freq > h_freq as a band-stop: edges given the wrong way round removed the band
        raise UnitScopeError(f"l_freq={l_freq:g} Hz must be below h_freq={h_freq:g} Hz for a band-pass "
                             "(the high-pass edge first, then the low-pass edge).")
    import mne

    mne_phase = "minimum" if phase == "causal" else "zero"
    data = rowwise(rec.signals.values, lambda x, _: mne.filter.filter_data(x, rec.sfreq, l_freq, h_freq,
                                                                           phase=mne_phase, verbose="error"))
    out = _copy(rec, rec.signals.copy(data=data))
    _log_step(out, {"step": "bandpass", "l_freq": l_freq, "h_freq": h_freq, "phase": phase})
    return out


def resample(rec: Recording, sfreq: float | None) -> Recording:
    """Resample signals, target and time axis to ``sfreq`` Hz (polyphase, MNE)."""
    if sfreq is None or np.isclose(sfreq, rec.sfreq):
        return rec
    check_range("sfreq", sfreq, low=1.0)
    import mne
    import xarray as xr

    data = rowwise(rec.signals.values, lambda x, _: mne.filter.resample(x, sfreq, rec.sfreq, verbose="error"))
    n = data.shape[1]
    t = np.arange(n) / sfreq
    coords = {k: v for k, v in rec.signals.coords.items() if "time" not in v.dims}
    signals = xr.DataArray(data, dims=("channel", "time"), coords={**coords, "time": t},
                           attrs={**rec.signals.attrs, "sfreq": float(sfreq)}, name=rec.signals.name)
    target = None
    if rec.target is not None:
        y = np.interp(t, rec.target["time"].values, rec.target.values)
        target = xr.DataArray(y.astype(np.float32), dims=("time",), coords={"time": t},
                              name=rec.target.name, attrs=rec.target.attrs)
    out = Recording(signals, target, rec.events)
    _log_step(out, {"step": "resample", "from": rec.sfreq, "to": float(sfreq)})
    return out


def split_blocks(n_times: int, fractions=(0.6, 0.2, 0.2)) -> dict[str, slice]:
    """Contiguous train / valid / test blocks of sample indices (never shuffled across blocks)."""
    fr = np.asarray(fractions, dtype=float)
    if fr.shape != (3,) or (fr <= 0).any():
        raise UnitScopeError(f"fractions must be three positive numbers, got {fractions}.")
    edges = np.r_[0, np.cumsum(fr / fr.sum())] * n_times
    edges = edges.round().astype(int)
    return {name: slice(int(a), int(b)) for name, a, b in zip(("train", "valid", "test"), edges[:-1], edges[1:])}


class Standardizer:
    """Per-channel z-scoring fitted on one block (the training block).

    Attributes after ``fit``: ``mean_`` and ``std_`` of shape (n_chans,).
    """

    def fit(self, rec: Recording, block: slice, *, exclude: np.ndarray | None = None) -> "Standardizer":
        """Fit on ``block``, leaving out the samples ``exclude`` marks (a (n_times,) mask:
        the stretches the file marks bad, whose artefacts would set the scale)."""
        keep = None
        if exclude is not None and exclude[block].any():
            keep = ~exclude[block]
            if keep.sum() < 2:
                raise UnitScopeError("The whole training block is marked bad in the file (BAD annotations); "
                                     "nothing is left to fit the standardisation on.")
        values = rec.signals.values
        self.mean_ = np.empty(values.shape[0])
        self.std_ = np.empty(values.shape[0])
        for c in range(values.shape[0]):  # one channel at a time in float64 (see rowwise)
            x = values[c, block].astype(np.float64)
            if keep is not None:
                x = x[keep]
            self.mean_[c], self.std_[c] = x.mean(), x.std()
        self.std_[self.std_ == 0] = 1.0
        return self

    def transform(self, rec: Recording) -> Recording:
        mean, std = self.mean_[:, None], self.std_[:, None]
        data = rowwise(rec.signals.values, lambda x, rows: (x - mean[rows]) / std[rows])
        out = _copy(rec, rec.signals.copy(data=data))
        out.signals.attrs["standardized_on"] = "train"
        _log_step(out, {"step": "standardize", "fitted_on": "train",
                        "mean": self.mean_.tolist(), "std": self.std_.tolist()})
        return out
