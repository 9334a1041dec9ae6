"""Most-activating input windows of every unit (METHODS.md 4.2, Hartmann et al. 2018).

For each unit, the training windows whose activation peak is highest, and the input
segment (one receptive field long) that produced each peak. One forward pass over the
windows with hooks on every block collects all units at once.

[A] The activation is read after the block's nonlinearity (what the unit passes on); one
peak per window per unit, so the top windows are distinct. In a dense decoder output
sample t of a block sees input samples [t, t + rf); for strided (trial-wise) decoders the
start is mapped proportionally.

This module is torch/numpy only (no Panel); it belongs with the engine and can move to
``core`` unchanged.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["TopWindows", "top_windows", "unit_segments"]


@dataclass
class TopWindows:
    """Per block: peak activation, window and input start of the top windows of each unit.

    Attributes
    ----------
    value, window, start : dict of str to ndarray, shape (n_units, k)
        Peak activation, window index into X, and the first input sample of the
        receptive field, best first.
    receptive_field : dict of str to int
        Input samples seen by one output sample of the block.
    """

    value: dict
    window: dict
    start: dict
    receptive_field: dict


@torch.no_grad()
def top_windows(model: torch.nn.Module, layers, X: np.ndarray, *, k: int = 12,
                batch_size: int = 16, stop=None) -> TopWindows:
    """Find the ``k`` most-activating windows of every unit of ``layers``.

    Parameters
    ----------
    model : torch.nn.Module
        The decoder (a deep copy is probed, so hooks never touch a shared model).
    layers : list of core.models.LayerInfo
    X : ndarray, shape (n_windows, n_chans, n_times), float32
    k : int
        Windows kept per unit (at most n_windows).
    stop : threading.Event, optional
        Checked between batches; a stopped call returns None.

    Returns
    -------
    top : TopWindows | None
    """
    from core.models import get_layer

    net = copy.deepcopy(model).eval()
    W, _, T = X.shape
    k = max(1, min(k, W))
    peaks = {li.name: [] for li in layers}
    where = {li.name: [] for li in layers}
    out_len: dict[str, int] = {}
    handles = []

    def make_hook(name):
        def hook(module, inputs, out):
            a = out.reshape(out.shape[0], out.shape[1], -1)  # (batch, units, times)
            v, t = a.max(dim=-1)  # (batch, units)
            peaks[name].append(v.numpy())
            where[name].append(t.numpy())
            out_len[name] = a.shape[-1]
        return hook

    try:
        for li in layers:
            handles.append(get_layer(net, li.nonlin_module).register_forward_hook(make_hook(li.name)))
        for s in range(0, W, batch_size):
            if stop is not None and stop.is_set():
                return None
            net(torch.as_tensor(X[s:s + batch_size]))
    finally:
        for h in handles:
            h.remove()
    value, window, start, rfs = {}, {}, {}, {}
    for li in layers:
        v = np.concatenate(peaks[li.name]).T  # (units, windows)
        t = np.concatenate(where[li.name]).T  # (units, windows)
        order = np.argsort(-v, axis=1)[:, :k]  # (units, k)
        rf = int(li.receptive_field)
        n_out = out_len[li.name]
        t_top = np.take_along_axis(t, order, axis=1)
        if n_out == T - rf + 1:
            s0 = t_top
        else:  # strided decoder: proportional mapping [A]
            s0 = np.round(t_top * (T - rf) / max(n_out - 1, 1)).astype(int)
        value[li.name] = np.take_along_axis(v, order, axis=1)
        window[li.name] = order
        start[li.name] = np.clip(s0, 0, max(T - rf, 0))
        rfs[li.name] = min(rf, T)
    return TopWindows(value, window, start, rfs)


def unit_segments(X: np.ndarray, top: TopWindows, layer: str, unit: int) -> np.ndarray:
    """Input segments behind the top activations of one unit.

    Returns
    -------
    segments : ndarray, shape (k, n_chans, receptive_field)
    """
    rf = top.receptive_field[layer]
    w = top.window[layer][unit]
    s = top.start[layer][unit]
    idx = s[:, None] + np.arange(rf)[None]  # (k, rf)
    return X[w[:, None], :, idx].transpose(0, 2, 1)  # (k, chans, rf)
