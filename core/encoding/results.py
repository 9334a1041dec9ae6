"""Encoding results files: validation, loading and the summaries a viewer draws.

An encoding result is the ``xarray.Dataset`` of :meth:`core.encoding.EncodingStudy.run`
(written by ``unitscope encode``):

* ``r`` (model, subject, time, channel): Pearson r across test epochs; ``score`` (model):
  post-onset mean r;
* optional ``predicted`` (model, example, channel, time) with ``actual`` (example, channel,
  time): a few test epochs in sensor units; ``example_subject`` (example), when known;
* optional ``loss_increase`` (feature), ``loss_increase_map`` and ``r_drop`` (feature,
  subject, time, channel): the DRE's permutation importance;
* attrs ``sfreq`` (Hz), ``meg_init`` (samples of given initial state) and, for synthetic
  data, ``truth_latency_<feature>`` (s).

:func:`load_results` reads such a file and :func:`check_results` rejects anything else with
a message naming what is missing, so a viewer can show it instead of failing later.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from .._files import load_netcdf
from .._validation import UnitScopeError, check_option

__all__ = ["check_results", "load_results", "truth_latencies", "importance_course", "example_subjects",
           "REQUIRED_VARS", "OPTIONAL_VARS"]

REQUIRED_VARS = {"r": ("model", "subject", "time", "channel"), "score": ("model",)}
OPTIONAL_VARS = {"predicted": ("model", "example", "channel", "time"), "actual": ("example", "channel", "time"),
                 "loss_increase": ("feature",), "loss_increase_map": ("feature", "subject", "time", "channel"),
                 "r_drop": ("feature", "subject", "time", "channel"), "example_subject": ("example",)}
_TRUTH = "truth_latency_"


def check_results(ds, *, name: str = "the result") -> xr.Dataset:
    """Validate an encoding result (see the module docstring); return it.

    Parameters
    ----------
    ds : xarray.Dataset
        A candidate result.
    name : str
        How the result is called in messages (e.g. its file name).

    Raises
    ------
    UnitScopeError
        Naming the missing variables, the wrong dims, or an unusable time axis.
    """
    if not isinstance(ds, xr.Dataset):
        raise UnitScopeError(f"An encoding result must be an xarray.Dataset, got {type(ds).__name__}.")
    missing = [v for v in REQUIRED_VARS if v not in ds]
    if missing:
        raise UnitScopeError(
            f"{name} is not an encoding result: it lacks the variables {missing} (an encoding result "
            f"holds {sorted(REQUIRED_VARS)}; write one with 'unitscope encode'). It holds "
            f"{sorted(str(v) for v in ds.data_vars)[:8]}.")
    for var, dims in {**REQUIRED_VARS, **OPTIONAL_VARS}.items():
        if var in ds and tuple(ds[var].dims) != dims:
            raise UnitScopeError(f"In {name}, {var!r} must have dims {dims}, got {tuple(ds[var].dims)}.")
    if ("predicted" in ds) != ("actual" in ds):
        have, lack = ("predicted", "actual") if "predicted" in ds else ("actual", "predicted")
        raise UnitScopeError(f"{name} holds {have!r} but not {lack!r}; both are needed to compare them.")
    if "loss_increase_map" in ds and "loss_increase" not in ds:
        raise UnitScopeError(f"{name} holds 'loss_increase_map' but not 'loss_increase'.")
    for dim in ("model", "subject", "time", "channel"):
        if ds.sizes.get(dim, 0) < 1:
            raise UnitScopeError(f"{name} has no {dim!r} entries.")
    t = np.asarray(ds["time"].values, dtype=float)
    if t.size > 1 and not np.all(np.diff(t) > 0):
        raise UnitScopeError(f"The time axis of {name} must increase; got {t[:4]}...")
    return ds


def load_results(path) -> xr.Dataset:
    """Load and validate an encoding results file (netCDF).

    Parameters
    ----------
    path : str or Path
        A file written by ``unitscope encode`` (or ``EncodingStudy.run(...).to_netcdf``).

    Returns
    -------
    result : xarray.Dataset
        Loaded into memory (the file is closed).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    UnitScopeError
        When the file is not netCDF or not an encoding result.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such results file: {str(path)!r}")
    try:
        ds = load_netcdf(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure means "not a netCDF file"
        raise UnitScopeError(
            f"{path.name!r} could not be read as netCDF ({type(exc).__name__}); expected an encoding "
            "results file written by 'unitscope encode'.") from exc
    return check_results(ds, name=repr(path.name))


def truth_latencies(ds: xr.Dataset) -> dict[str, float]:
    """Ground-truth response latency (s) per feature, from ``truth_latency_<feature>`` attrs.

    Empty for real data (no ground truth).
    """
    out = {}
    for key, value in ds.attrs.items():
        if str(key).startswith(_TRUTH):
            try:
                out[str(key)[len(_TRUTH):]] = float(value)
            except (TypeError, ValueError):
                continue
    return out


def example_subjects(ds: xr.Dataset) -> list[str] | None:
    """Subject of each stored example epoch, or None when the file does not say."""
    if "example_subject" in ds:
        return [str(s) for s in ds["example_subject"].values]
    return None


def importance_course(ds: xr.Dataset, feature: str, *, measure: str = "loss", subject: str | None = None,
                      channel: str | None = None) -> xr.DataArray:
    """Time course of a feature's permutation importance.

    Parameters
    ----------
    ds : xarray.Dataset
        An encoding result with importance.
    feature : str
        A permuted feature (``ds["feature"]``).
    measure : {"loss", "r"}
        ``loss_increase_map`` (percent of the reference loss) or ``r_drop``.
    subject, channel : str, optional
        Restrict to one subject / channel (default: mean over all).

    Returns
    -------
    course : xarray.DataArray, dims ("time",)
    """
    check_option("measure", measure, ("loss", "r"))
    var = "loss_increase_map" if measure == "loss" else "r_drop"
    if var not in ds:
        raise UnitScopeError(f"This result holds no {var!r} (importance was not computed).")
    feats = [str(f) for f in ds["feature"].values]
    if feature not in feats:
        raise UnitScopeError(f"No importance for {feature!r}; the result has {feats}.")
    da = ds[var].sel(feature=feature)
    for dim, value in (("subject", subject), ("channel", channel)):
        if value is not None:
            names = [str(v) for v in da[dim].values]
            if value not in names:
                raise UnitScopeError(f"Unknown {dim} {value!r}; the result has {names[:6]}...")
            da = da.sel({dim: value})
    rest = [d for d in da.dims if d != "time"]
    return da.mean(rest, skipna=True) if rest else da
