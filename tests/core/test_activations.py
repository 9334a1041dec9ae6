"""Most-activating windows against a hand-built model whose answers are known exactly.

Unit ``a/0`` reads channel 0 at the last sample of its 4-sample receptive field, unit
``a/1`` reads channel 1 at the first sample, and ``b/0`` (receptive field 6) passes ``a/0``
on. Each window holds one spike per channel with a chosen height and position, so the
ranking, the peak values, the window indices and the segment starts are all known.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torch import nn

from core._validation import UnitScopeError
from core.activations import MostActivating, unit_segments
from core.models import LayerInfo

N_WIN, N_CH, N_T = 6, 2, 20
H0 = np.array([1.0, 5.0, 3.0, 6.0, 2.0, 4.0])  # spike heights on channel 0, per window
P0 = np.array([3, 10, 17, 7, 12, 5])  # spike positions on channel 0
H1 = np.array([2.5, 0.5, 1.5, 3.5, 4.5, 5.5])  # channel 1
P1 = np.array([0, 16, 4, 9, 2, 11])


class Toy(nn.Module):
    def __init__(self, stride: int = 1):
        super().__init__()
        self.conv_a = nn.Conv1d(N_CH, 2, 4, stride=stride, bias=False)
        self.nonlin_a = nn.Identity()
        self.conv_b = nn.Conv1d(2, 1, 3, bias=False)
        self.nonlin_b = nn.ReLU()
        with torch.no_grad():
            self.conv_a.weight.zero_()
            self.conv_a.weight[0, 0, 3] = 1.0  # a/0[t] = x[0, t + 3]
            self.conv_a.weight[1, 1, 0] = 1.0  # a/1[t] = x[1, t]
            self.conv_b.weight.zero_()
            self.conv_b.weight[0, 0, 0] = 1.0  # b/0[t] = a/0[t]

    def forward(self, x):
        return self.nonlin_b(self.conv_b(self.nonlin_a(self.conv_a(x))))


LAYERS = [LayerInfo("a", "conv_a", "nonlin_a", "nonlin_a", 2, 4), LayerInfo("b", "conv_b", "nonlin_b", "nonlin_b", 1, 6)]


def spikes(h0=H0, p0=P0, h1=H1, p1=P1) -> np.ndarray:
    X = np.zeros((N_WIN, N_CH, N_T), np.float32)
    X[np.arange(N_WIN), 0, p0] = h0
    X[np.arange(N_WIN), 1, p1] = h1
    return X


def test_ranking_values_and_starts_match_the_known_spikes():
    X = spikes()
    top = MostActivating(Toy(), LAYERS, k=3).run(X)
    assert top.sizes == {"unit": 3, "rank": 3}
    assert list(top["unit"].values) == ["a/0", "a/1", "b/0"]
    assert list(top["receptive_field"].values) == [4, 4, 6]
    best0 = np.argsort(-H0)[:3]  # windows 3, 1, 5
    np.testing.assert_array_equal(top["window"].sel(unit="a/0"), best0)
    np.testing.assert_allclose(top["value"].sel(unit="a/0"), H0[best0])
    np.testing.assert_array_equal(top["start"].sel(unit="a/0"), P0[best0] - 3)  # spike at the rf's end
    best1 = np.argsort(-H1)[:3]
    np.testing.assert_array_equal(top["window"].sel(unit="a/1"), best1)
    np.testing.assert_array_equal(top["start"].sel(unit="a/1"), P1[best1])  # spike at the rf's start
    # b/0 (rf 6) passes a/0 on, but window 2's spike (position 17) falls outside its 15 outputs
    ok = P0 - 3 <= N_T - 6
    best_b = [w for w in np.argsort(-H0) if ok[w]][:3]
    np.testing.assert_array_equal(top["window"].sel(unit="b/0"), best_b)
    np.testing.assert_array_equal(top["start"].sel(unit="b/0"), P0[best_b] - 3)
    assert top.attrs["k"] == 3 and top.attrs["n_windows"] == N_WIN and top.attrs["site"] == "nonlin"


def test_segments_hold_the_spike_where_the_unit_reads_it():
    X = spikes()
    top = MostActivating(Toy(), LAYERS, k=4).run(X)
    seg = unit_segments(X, top, "a/0")
    assert seg.shape == (4, N_CH, 4)
    np.testing.assert_allclose(seg[:, 0, 3], np.sort(H0)[::-1][:4])  # last sample of each segment
    np.testing.assert_allclose(seg[:, 0, :3], 0.0)
    seg_b = unit_segments(X, top, "b/0")
    assert seg_b.shape == (4, N_CH, 6)
    np.testing.assert_allclose(seg_b[:, 0, 3], top["value"].sel(unit="b/0"))
    w, s = int(top["window"].sel(unit="a/1", rank=0)), int(top["start"].sel(unit="a/1", rank=0))
    np.testing.assert_array_equal(unit_segments(X, top, "a/1")[0], X[w, :, s:s + 4])


def test_strided_block_maps_peaks_back_proportionally():
    """Stride 4: output t sees input [4t, 4t + 4), which the proportional mapping recovers."""
    p0 = np.array([3, 7, 11, 15, 19, 3])
    X = spikes(p0=p0)
    layer = [LayerInfo("a", "conv_a", "nonlin_a", "nonlin_a", 2, 4)]
    top = MostActivating(Toy(stride=4), layer, k=2).run(X)
    best = np.argsort(-H0)[:2]
    np.testing.assert_array_equal(top["window"].sel(unit="a/0"), best)
    np.testing.assert_array_equal(top["start"].sel(unit="a/0"), p0[best] - 3)


def test_k_is_capped_and_the_model_is_left_untouched():
    model = Toy().train()
    top = MostActivating(model, LAYERS, k=50).run(spikes())
    assert top.sizes["rank"] == N_WIN
    assert model.training and not model.nonlin_a._forward_hooks and not model.nonlin_b._forward_hooks


def test_stop_returns_none():
    stop = threading.Event()
    stop.set()
    assert MostActivating(Toy(), LAYERS).run(spikes(), stop=stop) is None


@pytest.mark.parametrize("kw, match", [
    (dict(k=0), r"'k' must lie in \[1, inf\], got 0"),
    (dict(k=2.5), r"'k' must be an int, got 2.5"),
    (dict(batch_size=0), r"'batch_size' must lie in \[1, inf\]"),
])
def test_bad_options(kw, match):
    with pytest.raises(UnitScopeError, match=match):
        MostActivating(Toy(), LAYERS, **kw)


def test_bad_inputs():
    scan = MostActivating(Toy(), LAYERS)
    with pytest.raises(UnitScopeError, match=r"shape \(n_windows, n_chans, n_times\), got X.shape=\(2, 20\)"):
        scan.run(np.zeros((2, 20), np.float32))
    with pytest.raises(UnitScopeError, match=r"n_times=5 is shorter than the receptive field .* \(6 samples\)"):
        scan.run(np.zeros((3, N_CH, 5), np.float32))
    bad = spikes()
    bad[0, 0, 0] = np.nan
    with pytest.raises(UnitScopeError, match="NaN or infinite"):
        scan.run(bad)
    with pytest.raises(UnitScopeError, match="must be an instance of numpy.ndarray, got list"):
        scan.run([[[0.0]]])
    X = spikes()
    top = scan.run(X)
    with pytest.raises(UnitScopeError, match="Unknown unit 'a/9'.*Did you mean"):
        unit_segments(X, top, "a/9")
    with pytest.raises(UnitScopeError, match="is not the set that was scanned"):
        unit_segments(X[:3], top, "a/0")
