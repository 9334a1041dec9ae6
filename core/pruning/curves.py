"""Pruning curves and single-unit ablation effects (METHODS.md 1.7 item 4).

A pruning curve is the held-out metric as a function of the fraction ``q`` of units masked,
the units taken in one of three orders:

* ``"most"``: most sensitive first; ``"least"``: least sensitive first (the seed paper's
  pair: a steep drop for the first, little change for the second);
* ``"random"``: a random order, repeated ``n_repeats`` times; reported as the mean and a 95%
  band (2.5th and 97.5th percentiles over repeats).

Sensitivity is a per-unit score, by amplitude, by phase, or by either (``max(s_amp,
s_phase)``, METHODS.md 1.7 item 4). [A] For the whole network, every block loses the same
fraction ``q`` of its units, each ranked within its own block (scores of different blocks are
not comparable), ``round_half_up(q * n_units)`` of them; ties keep the lower index first and
NaN scores rank as least sensitive. Masks act after each block's nonlinearity and pooling.
"""
from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import xarray as xr

from .._validation import UnitScopeError, check_option, check_range, ensure_int, suggest
from ..probing._base import model_hash, stale_probe
from .evaluator import MaskEvaluator
from .masks import MaskSet

__all__ = ["ORDERS", "BY", "REDUCE", "unit_scores", "select_scores", "sensitivity_order", "n_to_prune",
           "prune_fraction", "pruning_curve", "ablation_effects"]

logger = logging.getLogger(__name__)
ORDERS = ("most", "least", "random")
BY = ("amplitude", "phase", "either")


REDUCE = ("max", "energy")


def unit_scores(scores, sizes: Mapping[str, int], *, reduce: str = "max") -> dict[str, np.ndarray]:
    """Normalise per-unit scores to ``{layer: ndarray (n_units,)}`` for the layers in ``sizes``.

    Parameters
    ----------
    scores : xarray.DataArray or dict
        A DataArray with dim ``"unit"`` and coords ``"layer"`` (str) and ``"index"`` (int) along
        it; any other dims (e.g. ``channel``, ``band``) are reduced (see ``reduce``). Or a dict
        ``layer -> array (n_units,)``.
    sizes : dict of str to int
        Units per layer of the network.
    reduce : {"max", "energy"}
        How a map is summarised per unit: ``"max"``, the max of the absolute value
        (METHODS.md 1.7 item 1); ``"energy"``, the sum of squares over the other dims [A]
        (total sensitivity: high for a unit that pools many channels and bands, each weakly,
        where the max favours narrowly tuned units).

    Returns
    -------
    scores : dict of str to ndarray, float64
        Layers absent from ``scores`` are omitted; a layer with missing units gets NaN there
        (:func:`select_scores`, which ranks, refuses such a layer).
    """
    return _unit_scores(scores, sizes, reduce=reduce)[0]


def _unit_scores(scores, sizes: Mapping[str, int], *, reduce: str = "max") -> tuple[dict, dict]:
    """:func:`unit_scores` and, per layer it returns, how many of its units the scores name."""
    check_option("reduce", reduce, REDUCE)
    if isinstance(scores, xr.DataArray):
        if "unit" not in scores.dims or "layer" not in scores.coords or "index" not in scores.coords:
            raise UnitScopeError(f"Score DataArray needs a 'unit' dim with 'layer' and 'index' coords; got dims "
                                 f"{scores.dims} and coords {list(scores.coords)}.")
        other = [d for d in scores.dims if d != "unit"]
        if not other:
            vals = np.asarray(scores.values, dtype=float)
        elif reduce == "max":
            vals = np.abs(scores).max(other).values
        else:
            vals = (scores.astype(float) ** 2).sum(other).values
        layers = np.asarray(scores["layer"].values).astype(str)
        index = np.asarray(scores["index"].values).astype(int)
        out, covered = {}, {}
        for layer in dict.fromkeys(layers.tolist()):  # str names (not np.str_: their repr names numpy)
            if layer not in sizes:
                continue
            arr = np.full(sizes[layer], np.nan)
            sel = layers == layer
            idx = index[sel]
            if idx.min() < 0 or idx.max() >= sizes[layer]:
                raise UnitScopeError(f"Scores for layer {layer!r} index unit {int(idx.max())}, but the layer has "
                                     f"{sizes[layer]} units: the scores belong to another network.")
            arr[idx] = vals[sel]
            out[layer], covered[layer] = arr, len(np.unique(idx))
        return out, covered
    if isinstance(scores, Mapping):
        out = {}
        for layer, arr in scores.items():
            if layer not in sizes:
                raise UnitScopeError(f"Scores given for unknown layer {layer!r}; the layers are {list(sizes)}."
                                     f"{suggest(str(layer), sizes)}")
            arr = np.asarray(arr, dtype=float)
            if arr.shape != (sizes[layer],):
                raise UnitScopeError(f"Scores for layer {layer!r} must have shape ({sizes[layer]},), got {arr.shape}.")
            out[layer] = arr
        return out, {layer: len(arr) for layer, arr in out.items()}
    raise UnitScopeError(f"Scores must be an xarray.DataArray or a dict of arrays, got {type(scores).__name__}.")


def select_scores(sizes: Mapping[str, int], *, amplitude=None, phase=None, scores=None,
                  by: str = "either", reduce: str = "max", layers: Sequence[str] | None = None) -> tuple[dict, str]:
    """The per-unit ranking score: ``scores`` if given, else by amplitude, phase or either.

    ``layers`` are the layers to be ranked (default: every layer of ``sizes`` the scores hold):
    scores that name only some units of one of them are refused [A]. The missing units would
    rank as least sensitive; scores of another network's layer of the same name (Deep4's 25
    ``conv_time_spat`` units for a Shallow net's 40) would rank 25 units and leave 15 NaN.

    Returns
    -------
    scores : dict of str to ndarray
    by : str
        What the scores are (``"amplitude"``, ``"phase"``, ``"either"`` or ``"custom"``).
    """
    if scores is not None:
        need, given, by = ["custom"], {"custom": scores}, "custom"
    else:
        check_option("by", by, BY)
        need = {"amplitude": ["amplitude"], "phase": ["phase"], "either": ["amplitude", "phase"]}[by]
        given = {"amplitude": amplitude, "phase": phase}
        missing = [n for n in need if given[n] is None]
        if missing:
            raise UnitScopeError(f"Ordering by {by!r} needs {' and '.join(need)} scores; {', '.join(missing)} "
                                 "not given.")
    parts = []
    for name in need:
        part, covered = _unit_scores(given[name], sizes, reduce=reduce)
        for layer in (covered if layers is None else [n for n in layers if n in covered]):
            if covered[layer] < sizes[layer]:
                raise UnitScopeError(
                    f"The {'' if name == 'custom' else name + ' '}scores cover {covered[layer]} of the {sizes[layer]} "
                    f"units of layer {layer!r}: they were made for another network (or for some of its units "
                    "only); ranking a layer needs a score for every one of its units.")
        parts.append(part)
    if len(parts) == 1:
        return parts[0], by
    amp, ph = parts
    return {k: np.fmax(amp[k], ph[k]) for k in amp if k in ph}, by


def sensitivity_order(scores: np.ndarray) -> np.ndarray:
    """Unit indices from most to least sensitive (ties: lower index first; NaN last)."""
    s = np.where(np.isfinite(scores), scores, -np.inf)
    return np.argsort(-s, kind="stable")


def n_to_prune(fraction: float, n_units: int) -> int:
    """``round_half_up(fraction * n_units)`` [A]."""
    return int(np.floor(fraction * n_units + 0.5 + 1e-9))


def prune_fraction(base: MaskSet, orders: Mapping[str, np.ndarray], fraction: float) -> MaskSet:
    """A copy of ``base`` with the first ``n_to_prune(fraction, n)`` units of each order masked."""
    masks = base.copy()
    for layer, order in orders.items():
        k = n_to_prune(fraction, len(order))
        if k:
            masks.prune(layer, order[:k])
    return masks


def _warn_stale(evaluator: MaskEvaluator, used: Mapping[str, object]) -> None:
    """Warn (logger and :class:`UserWarning`) about scores made for other weights than the
    evaluator's: :func:`~core.probing._base.stale_probe` of their ``model_hash`` attr (a probe
    result's variables and :func:`ablation_effects` carry it; scores without it are taken as
    given). [A] A warning, not an error: ranking by another decoder's scores (the trained
    decoder's for its untrained twin) can be meant; ``unitscope prune`` refuses such a file."""
    for name, s in used.items():
        if s is None or not hasattr(s, "attrs") or stale_probe(s, evaluator.model) != "weights":
            continue
        what = "scores" if name == "custom" else f"{name} scores"
        msg = (f"The {what} were made for other weights (model_hash {s.attrs['model_hash']}) than the evaluator's "
               f"decoder ({model_hash(evaluator.model)}): they rank the units of another decoder, or of this one "
               "before it was trained again; probe this decoder to rank its own units.")
        logger.warning(msg)
        warnings.warn(msg, UserWarning, stacklevel=3)


def _resolve_layers(evaluator: MaskEvaluator, layers) -> list[str]:
    names = [l.name for l in evaluator.layers]
    if layers is None:
        return names
    layers = [layers] if isinstance(layers, str) else list(layers)
    if not layers:
        raise UnitScopeError(f"No layer given; choose from {names}.")
    for layer in layers:
        if layer not in names:
            raise UnitScopeError(f"Unknown layer {layer!r}; the maskable layers are {names}.{suggest(layer, names)}")
    return [n for n in names if n in layers]


def pruning_curve(
    evaluator: MaskEvaluator,
    *,
    amplitude=None,
    phase=None,
    scores=None,
    by: str = "either",
    reduce: str = "max",
    layers: str | Sequence[str] | None = None,
    fractions: Sequence[float] | None = None,
    orders: Sequence[str] = ORDERS,
    n_repeats: int = 20,
    rng: np.random.Generator | int | None = None,
    base: MaskSet | None = None,
    progress: Callable[[dict], None] | None = None,
    cancel: threading.Event | None = None,
) -> xr.Dataset:
    """Held-out metric versus fraction of units pruned, for several pruning orders.

    Parameters
    ----------
    evaluator : MaskEvaluator
        Bound to the model and the evaluation set; its mask state is restored on return.
    amplitude, phase : xarray.DataArray or dict, optional
        Per-unit amplitude / phase sensitivity (see :func:`unit_scores`), with a score for
        every unit of each ranked layer (else an error, see :func:`select_scores`). Scores
        whose ``model_hash`` attr names other weights than the evaluator's model (a probe of
        another decoder) are used with a warning.
    scores : xarray.DataArray or dict, optional
        Any other per-unit score (overrides ``by``). Scores measured on data (e.g.
        :func:`ablation_effects`) must come from another block than the evaluator's: ranked on
        the block they then measure, units are chosen for its noise.
    by : {"amplitude", "phase", "either"}
        Which sensitivity ranks the units; "either" uses ``max(s_amp, s_phase)``.
    reduce : {"max", "energy"}
        Per-unit summary of score maps with more dims than ``unit`` (see :func:`unit_scores`).
    layers : str or list of str, optional
        Layers to prune (default: every maskable layer, i.e. the whole network).
    fractions : sequence of float in [0, 1]
        Fractions pruned in each layer (default 0, 0.1, ..., 1).
    orders : {"most", "least", "random"} or a sequence of them
    n_repeats : int
        Random orders drawn for the "random" curve.
    rng : numpy.random.Generator | int | None
        Source of the random orders.
    base : MaskSet, optional
        Units masked throughout (default: none).
    progress : callable, optional
        Called with ``{"done": int, "total": int, "fraction": float, "order": str}``.
    cancel : threading.Event, optional
        When set, stops early; missing points are NaN and ``attrs["complete"]`` is 0.

    Returns
    -------
    curves : xarray.Dataset
        ``metric`` (order, fraction) with order in ``orders`` ("random" = mean over repeats);
        ``random_runs`` (repeat, fraction), ``random_lo`` / ``random_hi`` (fraction) when
        "random" is requested; ``n_pruned`` (layer, fraction). ``attrs``: method, metric,
        task, baseline (metric of ``base``), by, layers, n_repeats, band, complete.
    """
    names = _resolve_layers(evaluator, layers)
    orders = [check_option("orders", o, ORDERS) for o in ([orders] if isinstance(orders, str) else orders)]
    fractions = np.round(np.linspace(0, 1, 11), 6) if fractions is None else np.asarray(fractions, dtype=float)
    if fractions.ndim != 1 or not len(fractions):
        raise UnitScopeError(f"fractions must be a non-empty 1-D sequence, got {fractions!r}.")
    for q in fractions:
        check_range("fraction", float(q), low=0.0, high=1.0)
    n_repeats = ensure_int("n_repeats", n_repeats) if "random" in orders else 0
    if "random" in orders:
        check_range("n_repeats", n_repeats, low=1)
    all_sizes = {l.name: l.n_units for l in evaluator.layers}
    sizes = {n: all_sizes[n] for n in names}
    ranked = {}
    if {"most", "least"} & set(orders):
        s, by = select_scores(all_sizes, amplitude=amplitude, phase=phase, scores=scores, by=by, reduce=reduce,
                              layers=names)
        absent = [n for n in names if n not in s]
        if absent:
            raise UnitScopeError(f"No sensitivity scores for layer(s) {absent}; the scores cover {list(s)}.")
        _warn_stale(evaluator, {"custom": scores} if scores is not None else {
            k: v for k, v in (("amplitude", amplitude), ("phase", phase)) if by in (k, "either")})
        ranked = {n: sensitivity_order(s[n]) for n in names}
    else:
        by = "none"
    gen = np.random.default_rng(rng)
    base = evaluator.new_masks() if base is None else base
    plans = []  # (label, repeat, orders per layer)
    for o in orders:
        if o == "most":
            plans.append(("most", None, ranked))
        elif o == "least":
            plans.append(("least", None, {n: r[::-1] for n, r in ranked.items()}))
        else:
            for r in range(n_repeats):
                plans.append(("random", r, {n: gen.permutation(sizes[n]) for n in names}))
    F, total = len(fractions), len(plans) * len(fractions)
    metric = {o: np.full(F, np.nan) for o in orders}
    runs = np.full((n_repeats, F), np.nan)
    previous, done, complete = evaluator.masks, 0, True
    baseline = evaluator.evaluate(base, commit=False)
    try:
        for label, rep, plan in plans:
            for i, q in enumerate(fractions):
                if cancel is not None and cancel.is_set():
                    complete = False
                    break
                value = evaluator.evaluate(prune_fraction(base, plan, float(q)))
                if label == "random":
                    runs[rep, i] = value
                else:
                    metric[label][i] = value
                done += 1
                if progress is not None:
                    progress({"done": done, "total": total, "fraction": done / total, "order": label})
            if not complete:
                break
    finally:
        evaluator.evaluate(previous)
    if "random" in orders:
        with warnings.catch_warnings():  # all-NaN columns after a cancel stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            metric["random"] = np.nanmean(runs, axis=0)
            lo, hi = np.nanpercentile(runs, [2.5, 97.5], axis=0)
    data = {"metric": (("order", "fraction"), np.stack([metric[o] for o in orders]))}
    if "random" in orders:
        data.update(random_runs=(("repeat", "fraction"), runs), random_lo=(("fraction",), lo),
                    random_hi=(("fraction",), hi))
    data["n_pruned"] = (("layer", "fraction"),
                        np.array([[n_to_prune(q, sizes[n]) for q in fractions] for n in names]))
    coords = {"order": list(orders), "fraction": fractions, "layer": names}
    if "random" in orders:
        coords["repeat"] = np.arange(n_repeats)
    return xr.Dataset(data, coords=coords, attrs={
        "method": "pruning_curve", "metric": evaluator.metric_name, "task": evaluator.task,
        "baseline": float(baseline), "by": by, "reduce": reduce, "layers": ",".join(names), "n_repeats": int(n_repeats),
        "band": "2.5th-97.5th percentile of random repeats", "n_base_pruned": int(base.n_pruned),
        "mask_site": "after each block's nonlinearity and pooling", "complete": int(complete),
        "model_hash": model_hash(evaluator.model)})


def ablation_effects(
    evaluator: MaskEvaluator,
    *,
    layers: str | Sequence[str] | None = None,
    base: MaskSet | None = None,
    progress: Callable[[dict], None] | None = None,
    cancel: threading.Event | None = None,
) -> xr.DataArray:
    """Metric drop when each unit alone is masked (on top of ``base``).

    Parameters
    ----------
    evaluator : MaskEvaluator
    layers : str or list of str, optional
        Default: every maskable layer.
    base : MaskSet, optional
        Mask state around which units are ablated (default: the evaluator's current state).
    progress, cancel
        As in :func:`pruning_curve`; units not reached are NaN.

    Returns
    -------
    drop : xarray.DataArray, dims ("unit",)
        ``metric(base) - metric(base + unit masked)``: positive when the unit helps decoding;
        NaN for units already masked in ``base``. Coords ``layer``, ``index`` and a string
        unit id ``"conv_2/7"``; attrs baseline, metric, task, model_hash.
    """
    names = _resolve_layers(evaluator, layers)
    base = evaluator.masks if base is None else base
    previous = evaluator.masks
    baseline = evaluator.evaluate(base)
    units = [(l.name, j) for l in evaluator.layers if l.name in names for j in range(l.n_units)]
    drop = np.full(len(units), np.nan)
    try:
        for k, (layer, idx) in enumerate(units):
            if cancel is not None and cancel.is_set():
                break
            if base._keep[layer][idx]:
                drop[k] = baseline - evaluator.evaluate(base.copy().prune(layer, idx), commit=False)
            if progress is not None:
                progress({"done": k + 1, "total": len(units), "fraction": (k + 1) / len(units), "layer": layer})
    finally:
        evaluator.evaluate(previous)
    layer_c = [u[0] for u in units]
    index_c = [u[1] for u in units]
    return xr.DataArray(drop, dims=("unit",), name="ablation_drop", coords={
        "unit": [f"{l}/{i}" for l, i in units], "layer": ("unit", layer_c), "index": ("unit", index_c)},
        attrs={"method": "single_unit_ablation", "metric": evaluator.metric_name, "task": evaluator.task,
               "baseline": float(baseline), "n_base_pruned": int(base.n_pruned),
               "model_hash": model_hash(evaluator.model)})
