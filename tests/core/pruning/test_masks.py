"""Masks: silence after the nonlinearity, reversibility, composition, JSON, bad input."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import xarray as xr

from core._validation import UnitScopeError
from core.models import get_layer, layer_map
from core.pruning import MaskSet, architecture_signature, maskable_layers

from pruning_helpers import N_CHANS, N_TIMES


def _perturb_unit_upstream(model, info, unit, gen):
    """Change every parameter that produces unit ``unit`` of block ``info`` (conv + BN)."""
    with torch.no_grad():
        conv = get_layer(model, info.conv_module)
        if info.name == "conv_time_spat":
            conv.conv_spat.weight[unit] += torch.randn(conv.conv_spat.weight[unit].shape, generator=gen)
        else:
            conv.weight[unit] += torch.randn(conv.weight[unit].shape, generator=gen)
        bn_name = {"conv_time_spat": "bnorm"}.get(info.name, info.name.replace("conv", "bnorm"))
        bn = get_layer(model, bn_name)
        bn.weight[unit] += 1.0
        bn.bias[unit] += 1.0


def _output(model, X):
    with torch.no_grad():
        return model(torch.as_tensor(X))


@pytest.mark.parametrize("layer", ["conv_time_spat", "conv_2", "conv_3", "conv_4"])
def test_masked_unit_contributes_nothing_downstream(deep4, dense_set, layer):
    X = dense_set[0][:3]
    info = {l.name: l for l in layer_map(deep4)}[layer]
    unit = info.n_units // 2
    masks = MaskSet.for_model(deep4).prune(layer, unit)
    model = copy.deepcopy(deep4)
    with masks.apply(model):
        expected = _output(model, X)
    _perturb_unit_upstream(model, info, unit, torch.Generator().manual_seed(0))
    with masks.apply(model):
        actual = _output(model, X)
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    # without the mask the same perturbation does reach the output
    assert not torch.allclose(_output(model, X), _output(deep4, X))


def test_zeroing_the_pre_batchnorm_channel_is_not_silent(deep4, dense_set):
    X = dense_set[0][:2]
    model = copy.deepcopy(deep4)
    with torch.no_grad():
        model.bnorm_2.running_mean.uniform_(-1, 1)  # a trained BN has non-zero statistics
        model.bnorm_2.bias.uniform_(-1, 1)
    masks = MaskSet.for_model(model).prune("conv_2", 3)
    with masks.apply(model):
        masked = _output(model, X)
    with torch.no_grad():
        model.conv_2.weight[3] = 0.0  # conv output 0 before BN: BN still adds beta - gamma*mu/sigma
    zeroed = _output(model, X)
    assert (masked - zeroed).abs().max() > 1e-3


def test_unmasking_restores_exact_outputs_and_weights_are_untouched(deep4, dense_set):
    X = dense_set[0][:2]
    before_state = {k: v.clone() for k, v in deep4.state_dict().items()}
    expected = _output(deep4, X)
    masks = MaskSet.for_model(deep4).prune("conv_2", [1, 2]).prune("conv_4", 7)
    handle = masks.attach(deep4)
    try:
        pruned = _output(deep4, X)
        masks.restore()
        torch.testing.assert_close(_output(deep4, X), expected, rtol=0, atol=0)
        masks.prune("conv_3", 5)  # live: the attached hooks see later edits
        assert not torch.equal(_output(deep4, X), expected)
    finally:
        handle.remove()
    assert not torch.equal(pruned, expected)
    torch.testing.assert_close(_output(deep4, X), expected, rtol=0, atol=0)
    for k, v in deep4.state_dict().items():
        assert torch.equal(v, before_state[k]), k
    assert all(not m._forward_hooks for m in deep4.modules())


def test_masking_changes_only_the_activations_a_unit_feeds(deep4, dense_set):
    """Mask conv_2 unit u: conv_time_spat and the other conv_2 units are identical; conv_3
    units whose kernels ignore u are identical; the conv_3 units that read u change."""
    X = torch.as_tensor(dense_set[0][:2])
    model = copy.deepcopy(deep4)
    u, blind = 4, torch.arange(0, 100, 2)  # even conv_3 units do not read conv_2 unit u
    with torch.no_grad():
        model.conv_3.weight[blind, u] = 0.0
    # what the next block receives: the inputs of the dropouts after each mask point
    sites = {"drop_2": "pool_nonlin", "drop_3": "pool_nonlin_2", "drop_4": "pool_nonlin_3"}

    def acts(masks=None):
        out, hooks = {}, []
        for d, s in sites.items():
            hooks.append(get_layer(model, d).register_forward_pre_hook(lambda m, i, s=s: out.__setitem__(s, i[0])))
        try:
            if masks is None:
                _output(model, X)
            else:
                with masks.apply(model):
                    _output(model, X)
        finally:
            for h in hooks:
                h.remove()
        return out

    ref, new = acts(), acts(MaskSet.for_model(model).prune("conv_2", u))
    assert torch.equal(new["pool_nonlin"], ref["pool_nonlin"])
    others = torch.arange(50) != u
    assert torch.equal(new["pool_nonlin_2"][:, others], ref["pool_nonlin_2"][:, others])
    assert torch.count_nonzero(new["pool_nonlin_2"][:, u]) == 0
    assert torch.equal(new["pool_nonlin_3"][:, blind], ref["pool_nonlin_3"][:, blind])
    changed = (new["pool_nonlin_3"] - ref["pool_nonlin_3"]).abs().amax(dim=(0, 2, 3)) > 0
    assert changed[1::2].all() and not changed[0::2].any()


def test_edits_compose_and_diff(deep4):
    model = deep4
    a = MaskSet.for_model(model).prune("conv_2", [1, 3])
    b = MaskSet.for_model(model).prune("conv_4", 10).prune("conv_2", 3)
    both = a | b
    assert both.pruned("conv_2").tolist() == [1, 3] and both.pruned("conv_4").tolist() == [10]
    assert both.n_pruned == 3 and a.n_pruned == 2  # operands untouched
    d = a.diff(both)
    assert list(d) == ["conv_4"] and d["conv_4"].tolist() == [10]
    c = a.copy().toggle("conv_2", 1).toggle("conv_3", 0)
    assert c.pruned("conv_2").tolist() == [3] and c.pruned("conv_3").tolist() == [0]
    assert c.restore("conv_3").pruned("conv_3").size == 0
    assert MaskSet.for_model(model).prune("conv_2", [3, 1]) == a
    assert [l.name for l in maskable_layers(model)] == a.layers == ["conv_time_spat", "conv_2", "conv_3", "conv_4"]


def test_json_round_trip(tmp_path, deep4):
    model = deep4
    masks = MaskSet.for_model(model).prune("conv_time_spat", [0, 24]).prune("conv_3", 99)
    again = MaskSet.from_json(masks.to_json(), model=model)
    assert again == masks and again.signature == architecture_signature(model)
    path = masks.save(tmp_path / "sub" / "mask.json")
    loaded = MaskSet.load(path, model=model)
    assert loaded == masks
    assert json.loads(path.read_text())["pruned"]["conv_3"] == [99]


def test_shallow_masks_silence_units(shallow):
    model = shallow
    X = torch.randn(2, N_CHANS, N_TIMES, generator=torch.Generator().manual_seed(0))
    masks = MaskSet.for_model(model).prune("conv_time_spat", list(range(40)))
    with masks.apply(model):
        out = _output(model, X)
    bias = model.final_layer.conv_classifier.bias
    torch.testing.assert_close(out, bias.view(1, -1, 1).expand_as(out))


def test_bad_input_is_explained(deep4):
    model = deep4
    masks = MaskSet.for_model(model)
    with pytest.raises(UnitScopeError, match=r"Unknown layer 'conv3'.*Did you mean 'conv_3'"):
        masks.prune("conv3", 1)
    with pytest.raises(UnitScopeError, match="output layer cannot be masked"):
        masks.prune("conv_classifier", 0)
    with pytest.raises(UnitScopeError, match=r"Unit index 50 is out of range for layer 'conv_2', which has 50 units"):
        masks.prune("conv_2", [3, 50])
    with pytest.raises(UnitScopeError, match="Unit index -1 is out of range"):
        masks.toggle("conv_2", -1)
    with pytest.raises(UnitScopeError, match="must be an int"):
        masks.prune("conv_2", [1.5])
    with pytest.raises(UnitScopeError, match=r"must be bool of shape \(50,\)"):
        masks.set_keep("conv_2", np.ones(49, bool))
    assert masks.n_pruned == 0


def test_mask_for_another_architecture_is_refused(tmp_path, deep4, shallow):
    deep = deep4
    wider = copy.deepcopy(deep4)
    wider.unitscope_config = dict(wider.unitscope_config, n_chans=N_CHANS + 1)
    path = MaskSet.for_model(deep).prune("conv_4", 3).save(tmp_path / "m.json")
    with pytest.raises(UnitScopeError, match=r"saved for deep4 \(n_chans=4.*but the model is shallow"):
        MaskSet.load(path, model=shallow)
    with pytest.raises(UnitScopeError, match=r"but the model is deep4 \(n_chans=5"):
        MaskSet.load(path, model=wider)
    with pytest.raises(UnitScopeError, match="saved for deep4"):
        MaskSet.load(path).attach(shallow)
    with pytest.raises(UnitScopeError, match="different architectures"):
        MaskSet.for_model(deep) | MaskSet.for_model(shallow)
    # the same units per layer, another channel count: composed and compared as one before
    with pytest.raises(UnitScopeError, match=r"different architectures: deep4 \(n_chans=4.* vs deep4 \(n_chans=5"):
        MaskSet.for_model(deep).diff(MaskSet.for_model(wider))
    assert MaskSet.for_model(deep) != MaskSet.for_model(wider)
    with pytest.raises(UnitScopeError, match=r"'unit index' must be an int, got 3.0 \(float\)"):
        MaskSet.for_model(deep).prune("conv_4", 3.0)  # was: TypeError: 'float' object is not iterable
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UnitScopeError, match="Invalid mask JSON"):
        MaskSet.load(tmp_path / "bad.json")
    with pytest.raises(UnitScopeError, match="Not a UnitScope mask"):
        MaskSet.from_json('{"pruned": {}}')
    with pytest.raises(UnitScopeError, match="does not exist"):
        MaskSet.load(tmp_path / "missing.json")
    # a result file given as a mask by mistake: UnicodeDecodeError with a traceback, before
    xr.Dataset({"x": ("a", np.zeros(3))}).to_netcdf(tmp_path / "probe.nc", engine="h5netcdf")
    with pytest.raises(UnitScopeError, match=r"'.*probe.nc' is a netCDF file \(a result of unitscope probe.*"
                                             r"not a mask: a mask is the JSON file"):
        MaskSet.load(tmp_path / "probe.nc")
    (tmp_path / "noise.bin").write_bytes(bytes(range(256)))
    with pytest.raises(UnitScopeError, match="'.*noise.bin' is not text, not a mask"):
        MaskSet.load(tmp_path / "noise.bin")


@pytest.mark.parametrize("signature, pruned, message", [
    ({"units": {"conv_2": 3_000_000_000}}, {}, "has 3000000000 units; expected a whole number from 1 to 100000"),
    ({"units": {"conv_2": "x"}}, {}, "has 'x' units"),
    ({"units": {"conv_2": -5}}, {}, "has -5 units"),
    ({"units": {f"l{i}": 90_000 for i in range(300)}}, {}, "a mask covers at most 100000 units"),
    ({"units": [1]}, {}, "needs a signature naming at least one maskable layer"),
    ("x", {}, "needs a signature naming at least one maskable layer"),
    (None, [1], "'pruned' maps layer names to unit indices"),
])
def test_a_hostile_or_broken_mask_file_is_refused_in_one_line_before_memory_is_taken(deep4, tmp_path, signature,
                                                                                      pruned, message):
    """Security: a 93-byte mask naming 3e9 units took 3 GB before it was refused, and "x" or -5
    raised a ValueError the app did not show."""
    import resource

    own = MaskSet.for_model(deep4).to_dict()
    d = {**own, "signature": own["signature"] if signature is None else signature, "pruned": pruned}
    (tmp_path / "m.json").write_text(json.dumps(d))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for model in (None, deep4):
        with pytest.raises(UnitScopeError, match="|".join(["saved for", message]) if model is not None else message):
            MaskSet.load(tmp_path / "m.json", model=model)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 200_000  # kB: no 3 GB array
