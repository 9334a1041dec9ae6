"""Statistics of perturbation maps: permutation null, FDR, unit classes (METHODS.md 1.7).

Hammer et al. (2022) do not state their tests or thresholds in the sources at hand, so the
procedure below is UnitScope's reconstruction [A] of METHODS 1.7:

1. **Statistic.** For unit u and band b, ``T[u, b]`` is the probe's max-statistic
   (``p_stat``): the max over channels of |band mean of r| (``resolution="band"``) or over
   (channel, bin in b) of |r| (``resolution="freq"``); ``T_all[u]`` takes the max over all
   bands, each weighted by sqrt(its number of bins) so that all share one null scale (or
   over all bins). Taking the max over (channel, freq) controls the family-wise error
   within a unit.
2. **Null.** The same statistic computed, in the same forward passes, with the perturbation
   values shuffled across windows (``p_null``). The null maxima of all units are pooled
   [A]: after normalisation every unit's null statistic has the same distribution up to
   the shape of its response, so pooling gives n_null x n_units draws, enough for p-values
   well below 1e-3 from a handful of permutations. ``p = (1 + #{null >= T}) / (1 + N)``.
   A unit that never varies (its null all zeros) is left out of the pool, with p = NaN [A].
3. **FDR.** Benjamini-Hochberg across units (all probed blocks together), separately for
   every band and for the all-band statistic, at ``alpha`` (default 0.05).
4. **Classes.** amplitude (amplitude significant, phase not), phase, bimodal (both),
   insensitive (neither), per unit and band and over all bands; per-layer fractions.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from .._validation import UnitScopeError, check_option, check_range
from .bands import band_masks, phase_excluded

__all__ = ["CLASSES", "permutation_pvalues", "fdr_bh", "classify", "class_fractions",
           "channel_sensitivity", "ground_truth_auc", "band_bins", "band_weights", "sensitivity_peak"]

CLASSES = ("amplitude", "phase", "bimodal", "insensitive")


def permutation_pvalues(stat: xr.DataArray, null: xr.DataArray) -> xr.DataArray:
    """Empirical p-values of ``stat`` against the null pooled over ``null`` and ``unit``.

    Parameters
    ----------
    stat : xarray.DataArray, dims ("unit", ...)
        Observed statistics (larger = more extreme).
    null : xarray.DataArray, dims ("null", "unit", ...)
        Statistics under the permutation null; other dims are kept separate.

    Returns
    -------
    p : xarray.DataArray
        Same dims as ``stat``, ``(1 + #{null >= stat}) / (1 + n_null * n_units)`` over the units
        whose null is not all zero there; NaN for a constant unit (all its null draws and its
        statistic 0: no test), which the FDR step leaves out and classes as insensitive.
    """
    if null.sizes.get("null", 0) == 0:
        raise UnitScopeError("The result holds no permutation null (n_null=0); probe with n_null >= 1.")
    # [A] A unit whose response never varies (constant: a dead unit, a pruned one) has a null
    # of exact zeros: pooled, those draws shrank the null and the live units' p-values with it
    # (30 units under H0 beside 90 constant ones: 21% below 0.05 instead of 5%). Such a unit's
    # null is left out of the pool, entry by entry (a unit constant in one band only, too),
    # and its p-value is NaN: nothing about it can be told, and it is no test that the
    # false-discovery control should count (as p = 1, 90 such units cut 30 true discoveries to 19).
    st = stat.transpose("unit", ...)
    obs = st.values.reshape(st.sizes["unit"], -1)  # (unit, entry)
    draws = null.transpose("null", "unit", *st.dims[1:]).values.reshape(null.sizes["null"], obs.shape[0], -1)
    live = (np.abs(draws) > 0).any(axis=0) | (np.abs(obs) > 0)  # (unit, entry); NaN counts as neither
    p = np.full(obs.shape, np.nan)
    for k in range(obs.shape[1]):
        ref = np.sort(draws[:, live[:, k], k].ravel())  # (a NaN draw sorts last: it beats every statistic)
        if ref.size:
            p[:, k] = (1.0 + ref.size - np.searchsorted(ref, obs[:, k], side="left")) / (1.0 + ref.size)
    p[~live | ~np.isfinite(obs)] = np.nan
    return xr.DataArray(p.reshape(st.shape), dims=st.dims, coords=st.coords).transpose(*stat.dims)


def fdr_bh(p: np.ndarray, alpha: float = 0.05, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini-Hochberg step-up procedure along ``axis``.

    Returns
    -------
    reject : ndarray of bool
        Discoveries at false-discovery rate ``alpha`` (NaN p-values are never rejected).
    q : ndarray of float
        Adjusted p-values (q-values), same shape as ``p``.
    """
    check_range("alpha", alpha, low=0, high=1, low_inclusive=False)
    p = np.moveaxis(np.asarray(p, dtype=float), axis, -1)
    q = np.full(p.shape, np.nan)
    for idx in np.ndindex(p.shape[:-1]):
        row = p[idx]
        ok = np.flatnonzero(np.isfinite(row))
        if not len(ok):
            continue
        order = ok[np.argsort(row[ok])]
        m = len(order)
        adj = row[order] * m / np.arange(1, m + 1)
        adj = np.minimum.accumulate(adj[::-1])[::-1]
        q[idx + (order,)] = np.minimum(adj, 1.0)
    reject = np.where(np.isfinite(q), q <= alpha, False)
    return np.moveaxis(reject, -1, axis), np.moveaxis(q, -1, axis)


def _label(amp: np.ndarray, phase: np.ndarray) -> np.ndarray:
    out = np.full(amp.shape, "insensitive", dtype=object)
    out[amp & ~phase] = "amplitude"
    out[phase & ~amp] = "phase"
    out[amp & phase] = "bimodal"
    return out.astype(str)


def classify(ds: xr.Dataset, *, alpha: float = 0.05) -> xr.Dataset:
    """Add p-values, q-values, significance and classes to a probe result.

    Parameters
    ----------
    ds : xarray.Dataset
        A result holding ``amp_stat``/``amp_null`` and ``phase_stat``/``phase_null`` (and the
        ``*_all`` variants), from :meth:`~core.probing.ProbeRun.result`.
    alpha : float
        False-discovery rate across units.

    Returns
    -------
    ds : xarray.Dataset
        A new Dataset with, for ``p`` in (amp, phase): ``p_p``, ``p_q`` (unit, band),
        ``p_p_all``, ``p_q_all`` (unit), ``p_sig`` (unit, band) and ``p_sig_all`` (unit) bool;
        and ``unit_class`` (unit, band), ``unit_class_all`` (unit) str in :data:`CLASSES`.
    """
    for var in ("amp_stat", "amp_null", "phase_stat", "phase_null"):
        if var not in ds:
            raise UnitScopeError(
                f"The result has no {var!r}; classes need both the amplitude and the phase probe.")
    ds = ds.copy()
    sig = {}
    for pre in ("amp", "phase"):
        for suffix in ("", "_all"):
            p = permutation_pvalues(ds[f"{pre}_stat{suffix}"], ds[f"{pre}_null{suffix}"])
            axis = p.dims.index("unit")
            reject, q = fdr_bh(p.values, alpha, axis=axis)
            ds[f"{pre}_p{suffix}"] = p
            ds[f"{pre}_q{suffix}"] = (p.dims, q)
            ds[f"{pre}_sig{suffix}"] = (p.dims, reject)
            sig[pre + suffix] = reject
    ds["unit_class"] = (ds["amp_p"].dims, _label(sig["amp"], sig["phase"]))
    ds["unit_class_all"] = (("unit",), _label(sig["amp_all"], sig["phase_all"]))
    ds.attrs.update(alpha=float(alpha), classes=",".join(CLASSES),
                    test="permutation max-statistic, null pooled over units; BH-FDR across units")
    return ds


def class_fractions(ds: xr.Dataset, *, band: str | None = None) -> xr.DataArray:
    """Fraction of each block's units in each class.

    Parameters
    ----------
    ds : xarray.Dataset
        Output of :func:`classify`.
    band : str | None
        A band name, or None for the all-band classes.

    Returns
    -------
    fractions : xarray.DataArray, dims ("layer", "class")
        Rows sum to 1; layers in forward order.
    """
    if "unit_class_all" not in ds:
        raise UnitScopeError("Run classify(ds) first: the result holds no unit classes.")
    labels = ds["unit_class_all"] if band is None else ds["unit_class"].sel(band=band)
    layers = list(dict.fromkeys(ds["layer"].values.tolist()))
    frac = np.zeros((len(layers), len(CLASSES)))
    for i, name in enumerate(layers):
        lab = labels.values[ds["layer"].values == name]
        frac[i] = [np.mean(lab == c) for c in CLASSES]
    return xr.DataArray(frac, dims=("layer", "class"), coords={"layer": layers, "class": list(CLASSES)},
                        name="class_fraction", attrs={"band": band or "all"})


def channel_sensitivity(ds: xr.Dataset, var: str, band: tuple[float, float], *,
                        layers=None) -> xr.DataArray:
    """Channel-level sensitivity in a frequency band.

    ``s[c] = max over units u of |mean over bins f in [lo, hi] of r[u, c, f]|`` [A]: the
    strongest band-pooled sensitivity any unit shows to channel c (``r`` is ``ds[var]``,
    e.g. ``"amp_corr"``; bins with ``lo <= f <= hi``; NaN bins skipped).

    Returns
    -------
    s : xarray.DataArray, dims ("channel",)
    """
    lo, hi = band
    r = ds[var]
    if layers is not None:
        r = r.sel(unit=np.isin(ds["layer"].values, list(layers)))
    m = (ds["freq"].values >= lo) & (ds["freq"].values <= hi)
    if not m.any():
        raise UnitScopeError(f"No frequency bin of the result lies in {lo:g}-{hi:g} Hz.")
    return abs(r.isel(freq=np.flatnonzero(m)).mean("freq", skipna=True)).max("unit")


def ground_truth_auc(ds: xr.Dataset, var: str, roles, role_bands: dict) -> float:
    """How well channel sensitivity ranks the channels of given roles above the others.

    For each role ``k`` in ``role_bands`` (name -> (lo, hi) Hz), channels are scored by
    :func:`channel_sensitivity` in that role's band; the ROC AUC of the score for "channel
    has role k" against all other channels is computed; the mean over roles is returned.

    Parameters
    ----------
    ds : xarray.Dataset
    var : str
        ``"amp_corr"`` or ``"phase_corr"``.
    roles : array-like of str, shape (n_chans,)
        Ground-truth role of every channel.
    role_bands : dict of str to (float, float)

    Returns
    -------
    auc : float
    """
    from sklearn.metrics import roc_auc_score

    roles = np.asarray(roles)
    aucs = []
    for role, band in role_bands.items():
        s = channel_sensitivity(ds, var, band).values
        aucs.append(roc_auc_score(roles == role, s))
    return float(np.mean(aucs))


def band_bins(ds: xr.Dataset, prefix: str) -> np.ndarray:
    """Frequency bins each band of a probe result averaged (``band`` order): the bins of its
    windows' spectrum inside the band's edges, DC and Nyquist left out for the phase probe.

    Parameters
    ----------
    ds : xarray.Dataset
        A probe result (attrs ``n_times`` and ``sfreq``, coords ``band_lo`` and ``band_hi``).
    prefix : {"amp", "phase"}
    """
    check_option("prefix", prefix, ("amp", "phase"))
    missing = [k for k in ("n_times", "sfreq") if k not in ds.attrs] + \
        [c for c in ("band_lo", "band_hi") if c not in ds.coords]
    if missing:
        raise UnitScopeError(f"This probe result lacks {missing}: it does not say how many frequency bins its "
                             "bands hold.")
    n_times = int(ds.attrs["n_times"])
    freqs = np.fft.rfftfreq(n_times, 1.0 / float(ds.attrs["sfreq"]))
    edges = {str(b): (float(lo), float(hi))
             for b, lo, hi in zip(ds["band"].values, ds["band_lo"].values, ds["band_hi"].values)}
    keep = band_masks(freqs, edges)  # (B, F)
    if prefix == "phase":
        keep &= ~phase_excluded(len(freqs), n_times)[None]
    return keep.sum(axis=1)


def band_weights(ds: xr.Dataset, prefix: str) -> np.ndarray:
    """What each band's |mean r| is multiplied by on the scale of ``{prefix}_stat_all``:
    sqrt(bins in the band) with ``resolution="band"`` (module docstring, step 1), else 1."""
    if ds.attrs.get("resolution", "band") == "band":
        return np.sqrt(band_bins(ds, prefix))
    return np.ones(ds.sizes["band"])


def sensitivity_peak(ds: xr.Dataset, unit: str, prefix: str) -> dict:
    """Where a unit's sensitivity ``{prefix}_stat_all`` comes from.

    With ``resolution="band"`` the statistic is the largest |band mean of r| x sqrt(bins in
    the band) over channels and bands (module docstring, step 1), so the peak is where that
    product is largest: a wide band's small mean can outweigh a narrow band's larger one,
    whose mean holds more noise. Otherwise (``"freq"``) the statistic is a single bin's |r|
    and the peak is the largest |band mean|.

    Returns
    -------
    dict
        ``channel``, ``band`` (names), ``r`` (the band mean of r there, signed), ``bins``
        (bins in that band), ``score`` (|r| x sqrt(bins), or |r|) and ``shared``: True for
        the phase probe's shared variant, one phase shift for all channels, whose maps are the
        same on every channel (``channel`` is then the first, standing for all).
    """
    vals = np.nan_to_num(ds[f"{prefix}_band"].sel(unit=unit).values.astype(np.float64))  # (channel, band)
    bins = band_bins(ds, prefix)
    score = np.abs(vals) * band_weights(ds, prefix)[None]
    c, b = np.unravel_index(int(np.argmax(score)), score.shape)
    return {"channel": str(ds["channel"].values[c]), "band": str(ds["band"].values[b]), "r": float(vals[c, b]),
            "bins": int(bins[b]), "score": float(score[c, b]),
            "shared": prefix == "phase" and ds.attrs.get("phase_variant") == "shared"}
