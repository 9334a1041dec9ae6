"""Most-activating input windows of every unit (METHODS.md 4.2, Hartmann et al. 2018).

For each unit of the chosen blocks, the windows whose activation peak is highest, and the
input segment (one receptive field long) that produced each peak. One forward pass over the
windows, with hooks on every block, collects all units at once.

Usage::

    top = MostActivating(model, k=12).run(X)          # xr.Dataset, dims (unit, rank)
    seg = unit_segments(X, top, "conv_2/7")           # (k, n_chans, receptive_field)

[A] Design decisions (not in the published method):

- The activation is read after the block's nonlinearity (what the unit passes on), one
  peak per window per unit, so the top windows of a unit are distinct windows.
- In a dense decoder, output sample ``t`` of a block sees input samples ``[t, t + rf)``.
  For a strided (trial-wise) decoder the block output is shorter; its peak position is
  mapped to an input start proportionally, ``t * (T - rf) / (n_out - 1)``.
- The hooks go on a deep copy of the model in eval mode, so a model shared with other
  threads (the dashboard's demo decoder) never sees them.
"""
from __future__ import annotations

import copy
import logging

import numpy as np
import torch
import xarray as xr
from torch import nn

from ._validation import UnitScopeError, check_range, ensure_int, suggest, validate_type
from .models import get_layer

__all__ = ["MostActivating", "unit_segments"]

logger = logging.getLogger(__name__)


class MostActivating:
    """Find the ``k`` most-activating windows of every unit of some conv blocks.

    Parameters
    ----------
    model : torch.nn.Module
        The decoder; input (batch, n_chans, n_times) float32. It is not modified (a deep
        copy in eval mode is hooked).
    layers : str or list of str or list of core.models.LayerInfo, optional
        Blocks to scan (names from :func:`core.models.layer_map`); None scans every block.
        For a model that ``layer_map`` does not know, pass ``LayerInfo`` objects.
    k : int
        Windows kept per unit (capped at the number of windows). Default 12.
    batch_size : int
        Windows per forward pass. Default 16.
    """

    def __init__(self, model: nn.Module, layers=None, *, k: int = 12, batch_size: int = 16):
        from .probing._base import resolve_layers

        self.model = validate_type("model", model, nn.Module)
        self.layers = resolve_layers(model, layers)
        self.k = check_range("k", ensure_int("k", k), low=1)
        self.batch_size = check_range("batch_size", ensure_int("batch_size", batch_size), low=1)

    def _check_X(self, X) -> np.ndarray:
        X = validate_type("X", X, np.ndarray, "numpy.ndarray")
        if X.ndim != 3:
            raise UnitScopeError(f"'X' must have shape (n_windows, n_chans, n_times), got {X.shape=}.")
        n_windows, _, n_times = X.shape
        if n_windows < 1:
            raise UnitScopeError(f"'X' holds no windows ({X.shape=}).")
        rf = max(int(li.receptive_field) for li in self.layers)
        if n_times < rf:
            raise UnitScopeError(f"{n_times=} is shorter than the receptive field of the scanned blocks "
                                 f"({rf} samples); give longer windows.")
        if not np.isfinite(X).all():
            raise UnitScopeError("'X' contains NaN or infinite values.")
        return np.ascontiguousarray(X, dtype=np.float32)

    @torch.no_grad()
    def run(self, X: np.ndarray, *, stop=None) -> xr.Dataset | None:
        """Scan the windows ``X`` once.

        Parameters
        ----------
        X : ndarray, shape (n_windows, n_chans, n_times)
            Input windows (float32; other float dtypes are converted).
        stop : threading.Event, optional
            Checked between batches; a stopped scan returns None.

        Returns
        -------
        top : xr.Dataset or None
            Dims ``unit`` (ids ``"<layer>/<index>"``, forward order) and ``rank`` (0 = best).
            Variables ``value`` (peak activation after the nonlinearity), ``window`` (index
            into ``X``), ``start`` (first input sample of the receptive field behind the
            peak), all (unit, rank). Coords ``layer``, ``index`` and ``receptive_field``
            (input samples) on ``unit``. Attrs: ``k``, ``n_windows``, ``n_times``,
            ``model_hash``, ``site`` ("nonlin").
        """
        from .probing._base import model_hash

        X = self._check_X(X)
        n_windows, n_chans, n_times = X.shape
        k = min(self.k, n_windows)
        net = copy.deepcopy(self.model).eval()
        peaks = {li.name: [] for li in self.layers}
        where = {li.name: [] for li in self.layers}
        out_len: dict[str, int] = {}

        def make_hook(name):
            def hook(module, inputs, out):
                a = out.reshape(out.shape[0], out.shape[1], -1)  # (batch, units, times)
                v, t = a.max(dim=-1)  # (batch, units)
                peaks[name].append(v.float().numpy())
                where[name].append(t.numpy())
                out_len[name] = a.shape[-1]
            return hook

        handles = []
        try:
            for li in self.layers:
                handles.append(get_layer(net, li.nonlin_module).register_forward_hook(make_hook(li.name)))
            for s in range(0, n_windows, self.batch_size):
                if stop is not None and stop.is_set():
                    logger.info("most-activating scan stopped after %d of %d windows", s, n_windows)
                    return None
                net(torch.as_tensor(X[s:s + self.batch_size]))
        finally:
            for h in handles:
                h.remove()
        value, window, start, units, layer, index, rfs = [], [], [], [], [], [], []
        for li in self.layers:
            v = np.concatenate(peaks[li.name]).T  # (units, windows)
            t = np.concatenate(where[li.name]).T  # (units, windows)
            order = np.argsort(-v, axis=1, kind="stable")[:, :k]  # (units, k), best first
            rf = min(int(li.receptive_field), n_times)
            n_out = out_len[li.name]
            t_top = np.take_along_axis(t, order, axis=1)
            if n_out == n_times - rf + 1:  # dense: output t sees [t, t + rf)
                s0 = t_top
            else:  # strided decoder: proportional mapping [A]
                s0 = np.round(t_top * (n_times - rf) / max(n_out - 1, 1)).astype(np.int64)
            value.append(np.take_along_axis(v, order, axis=1))
            window.append(order)
            start.append(np.clip(s0, 0, n_times - rf))
            n_units = v.shape[0]
            units += [f"{li.name}/{u}" for u in range(n_units)]
            layer += [li.name] * n_units
            index += list(range(n_units))
            rfs += [rf] * n_units
        dims = ("unit", "rank")
        return xr.Dataset(
            {"value": (dims, np.concatenate(value).astype(np.float32)),
             "window": (dims, np.concatenate(window).astype(np.int64)),
             "start": (dims, np.concatenate(start).astype(np.int64))},
            coords={"unit": units, "rank": np.arange(k), "layer": ("unit", layer),
                    "index": ("unit", np.asarray(index, np.int64)),
                    "receptive_field": ("unit", np.asarray(rfs, np.int64))},
            attrs={"k": k, "n_windows": n_windows, "n_chans": n_chans, "n_times": n_times,
                   "model_hash": model_hash(self.model), "site": "nonlin",
                   "method": "most-activating windows (METHODS.md 4.2)"},
        )


def unit_segments(X: np.ndarray, top: xr.Dataset, unit: str) -> np.ndarray:
    """Input segments behind the top activations of one unit.

    Parameters
    ----------
    X : ndarray, shape (n_windows, n_chans, n_times)
        The windows that :meth:`MostActivating.run` scanned.
    top : xr.Dataset
        Its result.
    unit : str
        Unit id ``"<layer>/<index>"``.

    Returns
    -------
    segments : ndarray, shape (k, n_chans, receptive_field)
        Best first; same dtype as ``X``.
    """
    units = [str(u) for u in top["unit"].values]
    if unit not in units:
        raise UnitScopeError(f"Unknown unit {unit!r}: expected an id like {units[0]!r}.{suggest(unit, units)}")
    if X.ndim != 3 or X.shape[0] != top.attrs["n_windows"] or X.shape[2] != top.attrs["n_times"]:
        raise UnitScopeError(f"'X' of shape {X.shape} is not the set that was scanned "
                             f"({top.attrs['n_windows']} windows of {top.attrs['n_times']} samples).")
    row = top.sel(unit=unit)
    rf = int(row["receptive_field"])
    w = row["window"].values
    idx = row["start"].values[:, None] + np.arange(rf)[None]  # (k, rf)
    return X[w[:, None], :, idx].transpose(0, 2, 1)  # (k, n_chans, rf)
