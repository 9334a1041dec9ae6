"""Any decoder with conv blocks, described with core.models.describe_model: receptive fields
against decoders whose geometry is known, and probing and pruning against a hand-built model
whose units are known."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

from core._validation import UnitScopeError
from core.models import build_model, describe_model, layer_map

SFREQ, N_TIMES, F0, K = 128.0, 256, 10.0, 64


def _blocks_of(model):
    return [(li.name, li.conv_module, li.nonlin_module, li.mask_module) for li in layer_map(model)[:-1]]


@pytest.mark.parametrize("kind, dense", [("deep4", True), ("deep4", False), ("shallow", True)])
def test_receptive_fields_and_units_equal_those_of_the_known_decoders(kind, dense):
    """Measured on a linear twin (nonlinearities as identities, max-pools as means over the
    same dilated windows): exactly the receptive fields the layer map derives from the dense
    decoder's output lengths (Deep4: 10, 39, 126, 387, 522 samples)."""
    model = build_model(kind, n_chans=4, n_outputs=2, n_times=1200, dense=dense)
    known = layer_map(model)
    bare = copy.deepcopy(model)
    del bare._unitscope_layer_map
    got = describe_model(bare, _blocks_of(model), n_chans=4, n_times=1200, output=known[-1].conv_module)
    assert [li.n_units for li in got] == [li.n_units for li in known]
    assert [li.receptive_field for li in got[:-1]] == [li.receptive_field for li in known[:-1]]
    if dense:
        assert got[-1].receptive_field == known[-1].receptive_field
    assert layer_map(bare) == got and bare.unitscope_config["dense"] == dense


def test_eegnet_blocks_see_what_their_kernels_and_pools_say():
    """braindecode's EEGNetv4: the spatial block sees its 64-tap temporal kernel; the second
    block 64 + 3 (pool of 4) + 15 x 4 (16 taps at the pooled rate) = 127 samples."""
    from braindecode.models import EEGNetv4

    net = EEGNetv4(n_chans=8, n_outputs=2, n_times=256)
    got = describe_model(net, [("block_1", "conv_spatial", "elu_1", "pool_1"),
                               ("block_2", "conv_separable_point", "elu_2", "pool_2")],
                         n_chans=8, n_times=256, output="final_layer.conv_classifier")
    assert [(li.name, li.n_units, li.receptive_field) for li in got] == [
        ("block_1", 16, 64), ("block_2", 16, 127), ("conv_classifier", 2, 256)]
    from core.pruning import MaskEvaluator

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((24, 8, 256)).astype(np.float32), np.arange(24) % 2
    ev = MaskEvaluator(net.eval(), X, y, task="classification")
    masks = ev.masks.prune("block_1", [0, 3]).prune("block_2", range(8))
    ev.evaluate(masks)
    with masks.apply(net):  # the masks' hooks on the model itself: what the incremental evaluator computes
        with torch.no_grad():
            hooked = net(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(ev.predict(masks), hooked, rtol=1e-4, atol=1e-6)
    assert not np.allclose(ev.predict(ev.new_masks()), hooked)


class Square(nn.Module):
    def forward(self, x):
        return x ** 2


def _power_decoder():
    """Two band-pass units (unit 0: F0 on channel 0; unit 1: 3 F0 on channel 1), squared and
    smoothed (a power envelope), averaged over time; class 1 when unit 0's power is above that
    of a tone of amplitude 1. Decodes 'is the F0 tone on channel 0 louder than 1' from unit 0
    alone."""
    net = nn.Sequential()
    net.add_module("conv", nn.Conv1d(3, 2, K, bias=False))
    net.add_module("square", Square())
    net.add_module("smooth", nn.AvgPool1d(32, stride=1))
    net.add_module("mean", nn.AdaptiveAvgPool1d(1))
    net.add_module("flat", nn.Flatten())
    net.add_module("out", nn.Linear(2, 2))
    t = np.arange(K) / SFREQ
    with torch.no_grad():
        net.conv.weight.zero_()
        for unit, (ch, f) in enumerate([(0, F0), (1, 3 * F0)]):
            k = np.hanning(K) * np.cos(2 * np.pi * f * t)
            net.conv.weight[unit, ch] = torch.as_tensor(k / np.abs(k).sum() * 2, dtype=torch.float32)
        net.out.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
        net.out.bias.zero_()
        tone = torch.zeros(1, 3, N_TIMES)
        tone[0, 0] = torch.cos(2 * torch.pi * F0 * torch.arange(N_TIMES) / SFREQ)  # amplitude 1: the threshold
        net.out.bias[0] = net(tone)[0, 1]
    return net.eval()


def _windows(n=120, seed=0):
    rng = np.random.default_rng(seed)
    tt = np.arange(N_TIMES) / SFREQ
    amp = rng.uniform(0.2, 1.8, n)
    X = 0.05 * rng.standard_normal((n, 3, N_TIMES))
    X[:, 0] += amp[:, None] * np.cos(2 * np.pi * F0 * tt[None] + rng.uniform(-np.pi, np.pi, n)[:, None])
    X[:, 1] += rng.uniform(0.2, 1.8, n)[:, None] * np.cos(2 * np.pi * 3 * F0 * tt[None])
    return X.astype(np.float32), (amp > 1.0).astype(np.int64)


def test_a_described_model_is_probed_and_pruned_as_its_units_say():
    from core.probing import ProbeConfig, probe_units
    from core.pruning import MaskEvaluator

    net = _power_decoder()
    layers = describe_model(net, [("band", "conv", "square", "smooth")], n_chans=3, n_times=N_TIMES, output="out")
    assert [(li.n_units, li.receptive_field) for li in layers] == [(2, K), (2, N_TIMES)]
    X, y = _windows()
    cfg = ProbeConfig(n_iterations=6, n_windows=None, n_null=4, resolution="freq")
    ds = probe_units(net, X, sfreq=SFREQ, config=cfg, y=y, task="classification")
    f0 = int(np.argmin(np.abs(ds["freq"].values - F0)))
    phase = ds["phase_corr"].sel(unit=ds["layer"] == "band").isel(unit=0)
    assert float(phase.isel(channel=0, freq=f0)) < -0.9  # a linear band-pass: phase-coded at (ch 0, F0)
    assert int(np.nanargmax(np.abs(phase.values))) == np.ravel_multi_index((0, f0), phase.shape)
    nonlin = probe_units(net, X, sfreq=SFREQ, config=ProbeConfig(n_iterations=6, n_windows=None, n_null=4,
                                                               resolution="freq", site="nonlin"),
                         y=y, task="classification")
    amp = nonlin["amp_corr"].sel(unit=nonlin["layer"] == "band").isel(unit=0)
    assert int(np.nanargmax(np.abs(amp.values))) == np.ravel_multi_index((0, f0), amp.shape)  # squared: amplitude-coded

    from core.activations import MostActivating

    top = MostActivating(net, layers="band", k=5).run(X)  # unit 0 peaks on the loudest F0 tones
    loud = np.argsort(-np.abs(np.fft.rfft(X[:, 0], axis=-1))[:, int(F0 * N_TIMES / SFREQ)])[:5]
    assert set(top["window"].sel(unit="band/0").values) == set(loud)
    assert int(top["receptive_field"].sel(unit="band/0")) == K

    ev = MaskEvaluator(net, X, y, task="classification")
    assert ev.baseline > 0.95
    without_0 = ev.masks.prune("band", [0])
    without_1 = ev.masks.prune("band", [1])
    assert ev.evaluate(without_1) == pytest.approx(ev.baseline)  # unit 1 carries nothing the output uses
    assert ev.evaluate(without_0) == pytest.approx(0.5)  # unit 0 silenced: one class always
    assert ev.evaluate(without_0) == pytest.approx(ev.full_evaluate(without_0))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 3, 5, padding=2)
        self.act = nn.ELU()
        self.out = nn.Linear(3, 2)

    def forward(self, x):
        return self.out((x + self.act(self.conv(x))).mean(-1))


def test_bad_descriptions_and_models_are_clear_errors():
    from core.pruning import MaskEvaluator

    net = _power_decoder()
    with pytest.raises(UnitScopeError, match=r"Unknown module 'convv'; the model has \['conv', 'flat'"):
        describe_model(net, [("band", "convv", "square", "smooth")], n_chans=3, n_times=N_TIMES, output="out")
    with pytest.raises(UnitScopeError, match=r"\(name, conv, nonlin, mask\)"):
        describe_model(net, [("band", "conv", "square")], n_chans=3, n_times=N_TIMES, output="out")
    with pytest.raises(UnitScopeError, match="distinct and not 'conv_classifier'"):
        describe_model(net, [("conv_classifier", "conv", "square", "smooth")], n_chans=3, n_times=N_TIMES,
                       output="out")
    with pytest.raises(UnitScopeError, match=r"cannot take input of shape \(1, 5, 256\)"):
        describe_model(net, [("band", "conv", "square", "smooth")], n_chans=5, n_times=N_TIMES, output="out")
    with pytest.raises(UnitScopeError, match="describe the conv blocks of any other decoder"):
        layer_map(nn.Sequential(nn.Conv1d(3, 2, 5)))
    res = Residual().eval()
    describe_model(res, [("b", "conv", "act", "act")], n_chans=3, n_times=64, output="out")
    X, y = _windows(20)
    with pytest.raises(UnitScopeError, match="without skip connections"):
        MaskEvaluator(res, X[..., :64], y[:20], task="classification")
