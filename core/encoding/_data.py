"""Epoched encoding data: construction, validation, chronological splits and scalers.

An encoding data set is an ``xarray.Dataset`` with

* ``meg`` : dims ("epoch", "channel", "time"), the recorded signals of every epoch;
* ``forcing`` : dims ("epoch", "feature", "time"), the stimulus/behaviour forcings;
* coords ``time`` (seconds, 0 = the event the epoch is locked to), ``channel``,
  ``feature``, and per epoch ``subject`` (str), ``sentence`` (int, a block of epochs that a
  split must not cut) and ``onset_time`` (seconds in the subject's continuous recording);
* attrs ``sfreq`` (Hz), ``first_mask`` (name of the forcing that marks the epoch's own event,
  METHODS.md 3.1), ``series_features`` (forcings that are continuous traces rather than
  per-event pulses; see :mod:`core.encoding.importance`).

The split (METHODS.md 3.1) is per subject and chronological, 70 / 10 / 20 %, with cuts moved
to sentence ends. Scalers are fitted on the training epochs only (METHODS.md 3.10 fixes the
published code's leak of fitting them on all epochs).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from .._files import load_netcdf
from .._validation import UnitScopeError, check_range

__all__ = ["make_epochs", "check_epochs", "split_epochs", "load_epochs", "onset_index",
           "MegScaler", "FeatureScaler", "MIN_EPOCHS", "reject_artifacts", "REJECT_THRESHOLD"]

logger = logging.getLogger(__name__)

# Fewest epochs per subject and split: Pearson r across epochs needs a few of them.
MIN_EPOCHS = {"train": 8, "valid": 3, "test": 3}


def _stack(name: str, arrays, n_rows_name: str) -> np.ndarray:
    """Stack per-epoch arrays of shape (rows, n_times) into (n_epochs, rows, n_times)."""
    if isinstance(arrays, np.ndarray):
        if arrays.ndim != 3:
            raise UnitScopeError(
                f"{name} must have shape (n_epochs, {n_rows_name}, n_times), got shape {arrays.shape}.")
        return arrays.astype(np.float32, copy=False)
    arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
    if not arrays:
        raise UnitScopeError(f"{name} holds no epochs.")
    lengths = sorted({a.shape[-1] for a in arrays})
    if len(lengths) > 1:
        n_short = sum(a.shape[-1] != lengths[-1] for a in arrays)
        raise UnitScopeError(
            f"Epochs of different lengths in {name}: got n_times in {lengths} ({n_short} of "
            f"{len(arrays)} epochs differ); crop or pad every epoch to one length first.")
    rows = sorted({a.shape[0] if a.ndim == 2 else -1 for a in arrays})
    if len(rows) > 1 or rows[0] < 0:
        raise UnitScopeError(f"Every epoch of {name} must be ({n_rows_name}, n_times); got {rows}.")
    return np.stack(arrays)


def make_epochs(meg, forcing, *, subject, sfreq: float, tmin: float,
                ch_names: Sequence[str] | None = None, feature_names: Sequence[str],
                sentence=None, onset_time=None, first_mask: str = "first_mask",
                series_features: Sequence[str] = (), attrs: dict | None = None) -> xr.Dataset:
    """Build and validate an encoding data set.

    Parameters
    ----------
    meg : ndarray, shape (n_epochs, n_chans, n_times), or sequence of (n_chans, n_times)
        Recorded signals per epoch (any unit).
    forcing : ndarray, shape (n_epochs, n_features, n_times), or sequence of such arrays
        Forcings per epoch. NaN marks a missing feature value and is rejected.
    subject : sequence of str or int, length n_epochs
        Subject of each epoch.
    sfreq : float
        Sampling frequency in Hz.
    tmin : float
        Time of the first sample relative to the locking event, in seconds (negative).
    ch_names, feature_names : sequence of str
        Channel and forcing names (``feature_names`` must contain ``first_mask``).
    sentence : sequence of int, optional
        Block label per epoch that splits must not cut (default: one block per epoch).
    onset_time : sequence of float, optional
        Onset of each epoch's event in its subject's recording, seconds (default: order).
    first_mask, series_features, attrs
        See the module docstring.

    Returns
    -------
    data : xarray.Dataset
        Variables ``meg`` ("epoch", "channel", "time") and ``forcing`` ("epoch", "feature",
        "time"), float32.
    """
    meg = _stack("meg", meg, "n_chans")
    forcing = _stack("forcing", forcing, "n_features")
    n_epochs, n_chans, n_times = meg.shape
    if forcing.shape[0] != n_epochs or forcing.shape[2] != n_times:
        raise UnitScopeError(
            f"forcing has {forcing.shape[0]} epochs of {forcing.shape[2]} samples but meg has "
            f"{n_epochs} epochs of {n_times} samples; features are missing for some events.")
    subject = np.asarray(subject).astype(str).reshape(-1)
    if len(subject) != n_epochs:
        raise UnitScopeError(f"subject has {len(subject)} labels for {n_epochs} epochs.")
    ch_names = [f"MEG{i:03d}" for i in range(n_chans)] if ch_names is None else list(ch_names)
    sentence = np.arange(n_epochs) if sentence is None else np.asarray(sentence, dtype=int)
    onset_time = np.arange(n_epochs, dtype=float) if onset_time is None else np.asarray(
        onset_time, dtype=float)
    data = xr.Dataset(
        {"meg": (("epoch", "channel", "time"), meg),
         "forcing": (("epoch", "feature", "time"), forcing)},
        coords={"epoch": np.arange(n_epochs), "channel": ch_names,
                "feature": [str(f) for f in feature_names],
                "time": tmin + np.arange(n_times) / float(sfreq),
                "subject": ("epoch", subject), "sentence": ("epoch", sentence),
                "onset_time": ("epoch", onset_time)},
        attrs={"sfreq": float(sfreq), "first_mask": first_mask,
               "series_features": list(series_features), **(attrs or {})},
    )
    return check_epochs(data)


def check_epochs(data) -> xr.Dataset:
    """Validate an encoding data set (see the module docstring); return it.

    Raises :class:`UnitScopeError` naming the problem: missing variables or coords, NaN or
    infinite signals, missing feature values, no locking event inside the epoch.
    """
    if not isinstance(data, xr.Dataset):
        raise UnitScopeError(f"Encoding data must be an xarray.Dataset, got {type(data).__name__}.")
    for var, dims in (("meg", ("epoch", "channel", "time")),
                      ("forcing", ("epoch", "feature", "time"))):
        if var not in data:
            raise UnitScopeError(f"Encoding data lacks the {var!r} variable (dims {dims}).")
        if tuple(data[var].dims) != dims:
            raise UnitScopeError(f"{var!r} must have dims {dims}, got {tuple(data[var].dims)}.")
    for coord in ("subject", "time", "feature"):
        if coord not in data.coords:
            raise UnitScopeError(f"Encoding data lacks the {coord!r} coordinate.")
    if "sfreq" not in data.attrs:
        raise UnitScopeError("Encoding data attrs must hold 'sfreq' (Hz).")
    mask = data.attrs.get("first_mask", "first_mask")
    features = [str(f) for f in data["feature"].values]
    if mask not in features:
        raise UnitScopeError(
            f"The forcings must include the epoch's own-event mask {mask!r}; got {features}.")
    if not np.all(np.isfinite(data["meg"].values)):
        n_bad = int((~np.isfinite(data["meg"].values)).any(axis=(1, 2)).sum())
        raise UnitScopeError(f"meg holds NaN or infinite samples in {n_bad} epochs; drop them.")
    bad = ~np.isfinite(data["forcing"].values)  # (epoch, feature, time)
    if bad.any():
        per_feature = bad.any(axis=2).sum(axis=0)
        missing = {f: int(n) for f, n in zip(features, per_feature) if n}
        first = int(np.flatnonzero(bad.any(axis=(1, 2)))[0])
        raise UnitScopeError(
            f"Features are missing for some events: {missing} epochs (first: epoch {first}) "
            "have NaN forcings; fill those values or drop the events.")
    times = data["time"].values
    if not times[0] < 0 <= times[-1]:
        raise UnitScopeError(
            f"Epochs must start before their event and end after it; got time from {times[0]:.3f} "
            f"to {times[-1]:.3f} s.")
    return data


def onset_index(data: xr.Dataset) -> int:
    """Index of the first sample at or after the locking event (t >= 0)."""
    return int(np.searchsorted(data["time"].values, -1e-9))


def split_epochs(data: xr.Dataset, *, fractions=(0.7, 0.1, 0.2)) -> dict[str, xr.Dataset]:
    """Split per subject, chronologically, with cuts moved to sentence ends (METHODS.md 3.1).

    [A] Epochs overlap in time, so after each cut the epochs of the later split whose window
    overlaps the last window of the earlier split are dropped (a purge gap).

    Parameters
    ----------
    data : xarray.Dataset
        An encoding data set.
    fractions : tuple of 3 floats
        Train, validation and test fractions (summing to 1).

    Returns
    -------
    splits : dict
        ``{"train": ds, "valid": ds, "test": ds}``, each a subset of ``data`` along "epoch".
    """
    fractions = np.asarray(fractions, dtype=float)
    if fractions.shape != (3,) or np.any(fractions <= 0) or abs(fractions.sum() - 1) > 1e-6:
        raise UnitScopeError(f"fractions must be 3 positive numbers summing to 1, got {fractions}.")
    span = float(data["time"].values[-1] - data["time"].values[0])
    picks = {"train": [], "valid": [], "test": []}
    for subject in np.unique(data["subject"].values):
        idx = np.flatnonzero(data["subject"].values == subject)
        idx = idx[np.argsort(data["onset_time"].values[idx], kind="stable")]
        sentence = data["sentence"].values[idx]
        onset = data["onset_time"].values[idx]
        ends = np.flatnonzero(np.r_[sentence[1:] != sentence[:-1], True]) + 1  # sentence ends
        cuts = []
        for frac in np.cumsum(fractions)[:2]:
            cut = ends[np.argmin(np.abs(ends - frac * len(idx)))]
            cuts.append(max(cut, cuts[-1] if cuts else 0))
        parts = np.split(np.arange(len(idx)), cuts)
        for name, part, prev in zip(picks, parts, [None, *parts[:2]]):
            if prev is not None and len(prev) and len(part):
                part = part[onset[part] > onset[prev[-1]] + span]  # purge overlapping epochs
            if len(part) < MIN_EPOCHS[name]:
                raise UnitScopeError(
                    f"Too few epochs to fit: subject {str(subject)!r} has {len(idx)} epochs, leaving "
                    f"{len(part)} for {name!r} (at least {MIN_EPOCHS[name]} needed).")
            picks[name].append(idx[part])
    return {name: data.isel(epoch=np.concatenate(p)) for name, p in picks.items()}


def load_epochs(path) -> xr.Dataset:
    """Load an encoding data set from disk.

    Supported: a netCDF file written by ``Dataset.to_netcdf`` in the layout of this module
    (``.nc``), or MNE epochs (``-epo.fif``) whose ``metadata`` columns are numeric event
    features; each becomes a pulse from the event to ``metadata["duration"]`` (default 0.3 s)
    [A], ``metadata["subject"]`` names subjects (default one subject).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such file: {str(path)!r}")
    if path.suffix == ".nc":
        return check_epochs(load_netcdf(path))
    if path.name.endswith(("-epo.fif", "_epo.fif", "-epo.fif.gz")):
        import mne

        epochs = mne.read_epochs(path, preload=True, verbose="error")
        meta = epochs.metadata
        if meta is None:
            raise UnitScopeError(f"{path.name} has no metadata; event features are expected there.")
        names = [c for c in meta.columns if c not in ("subject", "duration", "sentence")
                 and np.issubdtype(meta[c].dtype, np.number)]
        if not names:
            raise UnitScopeError(f"{path.name}: metadata holds no numeric feature column.")
        times = epochs.times
        dur = meta["duration"].to_numpy(float) if "duration" in meta else np.full(len(meta), 0.3)
        on = (times >= 0)[None] & (times[None] < dur[:, None])  # (epoch, time)
        forcing = [on * meta[c].to_numpy(float)[:, None] for c in names]
        forcing = np.stack([on.astype(float), *forcing, on.astype(float)], axis=1)
        subject = meta["subject"].to_numpy() if "subject" in meta else np.zeros(len(meta))
        return make_epochs(epochs.get_data(), forcing, subject=subject, sfreq=epochs.info["sfreq"],
                           tmin=float(times[0]), ch_names=epochs.ch_names,
                           feature_names=["event_onset", *names, "first_mask"],
                           sentence=meta["sentence"].to_numpy() if "sentence" in meta else None,
                           onset_time=epochs.events[:, 0] / epochs.info["sfreq"],
                           attrs={"source": str(path.name)})
    raise UnitScopeError(
        f"Unsupported encoding data file {path.name!r}: expected a '.nc' data set or MNE "
        "'-epo.fif' epochs with feature metadata.")


REJECT_THRESHOLD = 16.0  # METHODS 3.1: |value| after robust scaling


def reject_artifacts(splits: dict, threshold: float | None = REJECT_THRESHOLD) -> tuple[dict, dict]:
    """Drop the epochs holding any |value| > ``threshold`` after robust scaling (METHODS.md 3.1),
    in every split; ``(splits, dropped)``, ``dropped`` the count per split.

    [A] The scaling (median and IQR per subject and channel, as :class:`MegScaler`) is fitted on
    the training epochs only, as everything here (METHODS.md 3.10), not on all epochs before
    the split. A few artefact epochs (2% of training) had cut the TRF's post-onset R from 0.18
    to 0.01; dropped, it is 0.17. ``threshold=None`` keeps every epoch."""
    if threshold is None:
        return dict(splits), {name: 0 for name in splits}
    check_range("threshold", threshold, low=0, low_inclusive=False)
    for name, ds in splits.items():
        if not np.isfinite(ds["meg"].values).all():  # (a NaN turned the test off on its channel)
            raise UnitScopeError(f"The {name!r} epochs hold NaN or infinite values: artefacts cannot be told apart; "
                                 "interpolate or drop those epochs first.")
    train = splits["train"]
    scaler = MegScaler().fit(train["meg"].values, train["subject"].values.astype(str))
    out, dropped = {}, {}
    for name, ds in splits.items():
        subj = ds["subject"].values.astype(str)
        bad = scaler.exceeds(ds["meg"].values, subj, threshold)
        out[name], dropped[name] = ds.isel(epoch=np.flatnonzero(~bad)), int(bad.sum())
        for sub in np.unique(subj):
            left = int((~bad[subj == sub]).sum())
            if left < MIN_EPOCHS[name]:
                raise UnitScopeError(
                    f"Too few epochs to fit: subject {str(sub)!r} keeps {left} {name!r} epochs of {int((subj == sub).sum())} "
                    f"after dropping those with |value| > {threshold:g} after robust scaling (at least "
                    f"{MIN_EPOCHS[name]} needed); raise the threshold (--reject) or look at the data.")
    return out, dropped


class MegScaler:
    """Per subject and channel: robust scaling (median, IQR) then minus the grand mean.

    Fitted on training epochs only (METHODS.md 3.10). ``transform``/``inverse`` take
    ``(x, subject)`` with ``x`` of shape (n_epochs, n_chans, n_times).
    """

    def fit(self, x: np.ndarray, subject: np.ndarray) -> "MegScaler":
        self.params_, self.iqr_ = {}, {}
        for s in np.unique(subject):
            xs = x[subject == s].transpose(1, 0, 2).reshape(x.shape[1], -1)  # (chans, samples)
            q25, med, q75 = np.percentile(xs, [25, 50, 75], axis=1)
            scale = np.where(q75 - q25 > 0, q75 - q25, 1.0)
            mean = ((xs - med[:, None]) / scale[:, None]).mean(axis=1)
            self.params_[str(s)] = (med[:, None], scale[:, None], mean[:, None])  # (chans, 1)
            self.iqr_[str(s)] = q75 - q25
        return self

    def _get(self, s):
        if str(s) not in self.params_:
            raise UnitScopeError(
                f"Subject {str(s)!r} was never seen in training; known subjects: "
                f"{sorted(self.params_)}.")
        return self.params_[str(s)]

    def exceeds(self, x: np.ndarray, subject: np.ndarray, threshold: float) -> np.ndarray:
        """Per epoch: does any |value| exceed ``threshold`` after the robust scaling (median, IQR)?

        [A] A channel without spread (IQR 0: flat, or nearly always one value) has no robust
        scale, and the fallback of 1 is in the data's own units: it is left out of the test."""
        bad = np.zeros(len(x), dtype=bool)
        for s in np.unique(subject):
            med, scale, _ = self._get(s)
            rows = subject == s
            spread = self.iqr_[str(s)] > 0
            bad[rows] = (np.abs((x[rows][:, spread] - med[spread]) / scale[spread]) > threshold).any(axis=(1, 2))
        return bad

    def transform(self, x: np.ndarray, subject: np.ndarray) -> np.ndarray:
        out = np.empty_like(x, dtype=np.float32)
        for s in np.unique(subject):
            med, scale, mean = self._get(s)
            out[subject == s] = (x[subject == s] - med) / scale - mean
        return out

    def inverse(self, x: np.ndarray, subject: np.ndarray) -> np.ndarray:
        out = np.empty_like(x, dtype=np.float32)
        for s in np.unique(subject):
            med, scale, mean = self._get(s)
            out[subject == s] = (x[subject == s] + mean) * scale + med
        return out


class FeatureScaler:
    """Scale each forcing by the RMS of its active (non-zero) training values; 0 stays 0.

    [A] The published code z-scores every forcing over the whole array, so "no word" becomes
    a negative constant that depends on word density (METHODS.md 3.10). Here each forcing is
    only divided by the root mean square of its non-zero training values: 0 keeps meaning
    "no event", scaled values stay proportional to the raw ones (no information is lost for
    linear models), and binary forcings (0/1) pass unchanged.
    """

    def fit(self, f: np.ndarray) -> "FeatureScaler":
        self.scale_ = np.ones((f.shape[1], 1), np.float32)
        for i in range(f.shape[1]):
            values = f[:, i][f[:, i] != 0]
            if values.size:
                self.scale_[i] = np.sqrt(np.mean(values.astype(np.float64) ** 2))
        return self

    def transform(self, f: np.ndarray) -> np.ndarray:
        return (f / self.scale_).astype(np.float32)
