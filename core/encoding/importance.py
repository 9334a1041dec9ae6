"""Permutation feature importance of an encoder (METHODS.md 3.7).

The test set is predicted once as is, then once per permuted input:

* an *event* feature (a forcing that is a pulse over each event, e.g. word length): a
  random permutation of all test epochs is drawn; during the epoch's own event (where the
  ``first_mask`` forcing is > 0) the feature takes the value it had at the event onset
  (t = 0) in the permuted epoch; context events keep their true values;
* a *series* feature (a continuous trace, listed in ``data.attrs["series_features"]``,
  e.g. hand speed): its whole trace is taken from the permuted epoch;
* ``"meg"``: the initial brain state (the given first ``meg_init`` samples) is taken from
  the permuted epoch;
* ``"subject"``: the subject index given to the model is taken from the permuted epoch
  (the data stay scaled with their true subject).

Importance is the relative loss increase ``100 (L_perm - L_ref) / L_ref`` (MSE on scaled
signals, t >= meg_init), overall and resolved over (subject, time, channel), and the drop
of R[t, c] (:mod:`core.encoding.evaluate`). [A] The loss-increase map is the squared change
of the prediction plus a cross term that averages out, so its time course follows the
response a feature drives; the R drop is that change divided by the predicted and actual
variance at each time, which flattens and shifts its peaks where other sources dominate.
:func:`peak_latency` therefore reads latencies from the loss-increase map by default.

The permutation runs across the **whole test set**, not within mini-batches of 32 as in the
published code, whose results depend on batch size and test-set order (METHODS.md 3.10).
"""
from __future__ import annotations

import json
import logging

import numpy as np
import xarray as xr

from .._validation import UnitScopeError, check_option, ensure_int
from ._data import onset_index
from .evaluate import correlation_arrays

__all__ = ["permutation_importance", "default_features", "left_out_features", "peak_latency"]

logger = logging.getLogger(__name__)


def left_out_features(data: xr.Dataset) -> dict[str, str]:
    """Forcings that permuting cannot change, each with the reason (name -> words).

    The own-event mask; an event feature with the same value at every epoch's own event
    (e.g. an event-onset pulse, 1 everywhere); a series feature with the same trace in every
    epoch. A binary feature whose value differs between events (0 or 1) is permuted.
    """
    mask = str(data.attrs.get("first_mask", "first_mask"))
    series = [str(f) for f in np.atleast_1d(data.attrs.get("series_features", []))]
    forcing = data["forcing"].values  # (epochs, features, times)
    onset = onset_index(data)
    out = {}
    for i, name in enumerate(str(f) for f in data["feature"].values):
        if name == mask:
            out[name] = "marks each epoch's own event"
        elif name in series:
            if np.all(forcing[:, i] == forcing[:1, i]):
                out[name] = "the same trace in every epoch, so permuting changes nothing"
        else:
            values = np.unique(forcing[:, i, onset])  # each epoch's own-event value
            if len(values) == 1:
                out[name] = f"{values[0]:g} at every event, so permuting changes nothing"
    return out


def default_features(model, data: xr.Dataset) -> list[str]:
    """Features permuted by default: every forcing but those :func:`left_out_features`
    names, then ``"meg"`` (if the model takes an initial state) and ``"subject"`` (if
    several)."""
    left_out = left_out_features(data)
    out = [str(f) for f in data["feature"].values if str(f) not in left_out]
    if getattr(model, "meg_init", 0) > 0:
        out.append("meg")
    if len(getattr(model, "subjects_", [])) > 1:
        out.append("subject")
    return out


def _permute(name, perm, meg, forcing, sidx, *, features, mask, series, onset, meg_init):
    """Copies of the scaled inputs with ``name`` permuted by ``perm``."""
    if name == "meg":
        meg = meg.copy()
        meg[:, :, :meg_init] = meg[perm, :, :meg_init]
        return meg, forcing, sidx
    if name == "subject":
        return meg, forcing, sidx[perm]
    i = features.index(name)
    forcing = forcing.copy()
    if name in series:
        forcing[:, i] = forcing[perm, i]
    else:
        own = mask > 0  # (epochs, times): the epoch's own event
        value = forcing[perm, i, onset]  # (epochs,): the permuted epochs' own-event values
        forcing[:, i] = np.where(own, value[:, None], forcing[:, i])
    return meg, forcing, sidx


def permutation_importance(model, data: xr.Dataset, *, features=None, n_repeats: int = 1,
                           rng=None, progress=None) -> xr.Dataset:
    """Permutation importance of each feature, the initial state and the subject.

    Parameters
    ----------
    model : Encoder
        A fitted encoder (:class:`~core.encoding.dre.DeepRecurrentEncoder`, ``TRF``, ``RTRF``).
    data : xarray.Dataset
        The test split (an encoding data set whose subjects the model knows).
    features : sequence of str, optional
        What to permute: forcing names, ``"meg"``, ``"subject"`` (default:
        :func:`default_features`).
    n_repeats : int
        Permutations per feature; losses and R maps are averaged over them.
    rng : numpy.random.Generator, int or None
        Source of the permutations.
    progress : callable, optional
        Called as ``progress(i, n, name)`` after each feature.

    Returns
    -------
    importance : xarray.Dataset
        ``loss_increase`` (feature), percent; ``loss_increase_map`` (feature, subject, time,
        channel), the increase of the mean squared error over that subject's epochs at each
        (time, channel), in percent of the overall reference loss; ``r_drop`` (feature,
        subject, time, channel), R_ref - R_perm; ``r_ref`` (subject, time, channel); attrs
        ``method``, ``model``, ``n_repeats``, ``meg_init``, ``reference_loss`` and
        ``left_out``, JSON of the forcings not permuted with the reason (name -> words; by
        default those of :func:`left_out_features`).
    """
    rng = np.random.default_rng(rng)
    n_repeats = ensure_int("n_repeats", n_repeats)
    if n_repeats < 1:
        raise UnitScopeError(f"{n_repeats=} must be at least 1.")
    meg, forcing, sidx = model.prepare(data)
    names = [str(f) for f in data["feature"].values]
    if features is None:
        features = default_features(model, data)
        left_out = left_out_features(data)
    else:
        features = list(features)
        left_out = {n: "not asked for" for n in names if n not in features}
    allowed = [*names, "meg", "subject"]
    unknown = [f for f in features if f not in allowed]
    if unknown:
        raise UnitScopeError(f"Unknown features {unknown} to permute; allowed: {allowed}.")
    if len(sidx) < 3:
        raise UnitScopeError(f"Permutation importance needs at least 3 test epochs, got {len(sidx)}.")
    mask_name = str(data.attrs.get("first_mask", "first_mask"))
    opts = dict(features=names, mask=forcing[:, names.index(mask_name)],
                series=[str(f) for f in np.atleast_1d(data.attrs.get("series_features", []))],
                onset=onset_index(data), meg_init=model.meg_init)
    t0 = model.meg_init
    subjects = np.arange(len(model.subjects_))
    present = np.unique(sidx)

    def score(pred):
        err = (pred - meg) ** 2  # (epochs, chans, times)
        per_subject = np.stack([err[sidx == s].mean(axis=0).T for s in present])  # (S, T, C)
        return (float(np.mean(err[:, :, t0:])), per_subject,
                correlation_arrays(pred, meg, sidx, present))

    ref_loss, ref_map, ref_r = score(model.predict_arrays(meg, forcing, sidx))
    losses, maps, drops = [], [], []
    for k, name in enumerate(features):
        loss_k, map_k, r_k = 0.0, 0.0, 0.0
        for _ in range(n_repeats):
            perm = rng.permutation(len(sidx))
            loss, lmap, r = score(model.predict_arrays(*_permute(name, perm, meg, forcing, sidx, **opts)))
            loss_k += loss / n_repeats
            map_k = map_k + lmap / n_repeats
            r_k = r_k + r / n_repeats
        losses.append(100.0 * (loss_k - ref_loss) / ref_loss)
        maps.append(100.0 * (map_k - ref_map) / ref_loss)
        drops.append(ref_r - r_k)
        logger.info("importance of %s: loss +%.2f %%", name, losses[-1])
        if progress is not None:
            progress(k + 1, len(features), name)
    coords = {"feature": features, "subject": [model.subjects_[s] for s in subjects[present]],
              "time": data["time"].values, "channel": data["channel"].values}
    dims = ("subject", "time", "channel")
    return xr.Dataset(
        {"loss_increase": (("feature",), np.array(losses)),
         "loss_increase_map": (("feature", *dims), np.stack(maps) if maps else
                               np.zeros((0,) + ref_r.shape)),
         "r_drop": (("feature", *dims), np.stack(drops) if drops else
                    np.zeros((0,) + ref_r.shape)),
         "r_ref": (dims, ref_r)},
        coords=coords,
        attrs={"method": "permutation feature importance across the whole test set",
               "model": model.name, "n_repeats": n_repeats, "meg_init": model.meg_init,
               "reference_loss": ref_loss, "left_out": json.dumps(left_out)},
    )


def peak_latency(importance: xr.Dataset, feature: str, *, measure: str = "loss",
                 tmin: float = 0.0) -> float:
    """Latency (s) at or after ``tmin`` where ``feature``'s importance time course peaks.

    Parameters
    ----------
    importance : xarray.Dataset
        The result of :func:`permutation_importance` (or an encoding study's result).
    feature : str
        A permuted feature.
    measure : {"loss", "r"}
        Time course of the loss-increase map (default) or of the R drop, each averaged over
        subjects and channels.
    tmin : float
        Earliest latency considered, seconds.
    """
    check_option("measure", measure, ("loss", "r"))
    if feature not in importance["feature"].values:
        raise UnitScopeError(
            f"No importance for {feature!r}; computed: {list(importance['feature'].values)}.")
    var = "loss_increase_map" if measure == "loss" else "r_drop"
    course = importance[var].sel(feature=feature).mean(("subject", "channel"))
    course = course.sel(time=slice(tmin - 1e-9, None))
    return float(course["time"].values[int(np.nanargmax(course.values))])
