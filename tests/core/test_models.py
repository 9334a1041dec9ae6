import numpy as np
import pytest
import torch

from core._validation import UnitScopeError
from core.models import build_model, get_layer, layer_map, receptive_field


def test_deep4_layer_map_names_units_and_receptive_fields():
    model = build_model("deep4", n_chans=4, n_outputs=1, n_times=800, seed=0)
    layers = layer_map(model)
    assert [l.name for l in layers] == ["conv_time_spat", "conv_2", "conv_3", "conv_4", "conv_classifier"]
    assert [l.n_units for l in layers] == [25, 50, 100, 200, 1]
    rfs = [l.receptive_field for l in layers]
    assert rfs == sorted(rfs) and rfs[0] == 10 and rfs[-1] == 522
    for l in layers:
        get_layer(model, l.conv_module)
        get_layer(model, l.mask_module)


def test_shallow_layer_map():
    model = build_model("shallow", n_chans=4, n_outputs=1, n_times=800, seed=0)
    names = [l.name for l in layer_map(model)]
    assert names == ["conv_time_spat", "conv_classifier"]
    assert layer_map(model)[0].n_units == 40


@pytest.mark.parametrize("kind", ["deep4", "shallow"])
def test_dense_decoder_is_causal_with_its_receptive_field(kind):
    """Prediction i depends on input samples [i, i + rf - 1] and on nothing else."""
    n_times = 700
    model = build_model(kind, n_chans=3, n_outputs=1, n_times=n_times, seed=1)
    rf = receptive_field(model)
    x = torch.randn(1, 3, n_times)
    with torch.no_grad():
        base = model(x)[0, 0].numpy()
        assert base.shape == (n_times - rf + 1,)
        s = 600
        x2 = x.clone()
        x2[0, :, s] += 5.0
        changed = np.flatnonzero(np.abs(model(x2)[0, 0].numpy() - base) > 1e-6)
    assert changed.min() >= s - rf + 1 and changed.max() <= s
    assert len(changed) > 0


def test_trialwise_classifier_outputs_one_score_per_class():
    model = build_model("deep4", n_chans=5, n_outputs=3, n_times=500, dense=False, seed=0)
    with torch.no_grad():
        assert model(torch.randn(2, 5, 500)).shape == (2, 3)
    assert layer_map(model)[-1].receptive_field == 500


def test_same_seed_same_weights():
    a = build_model("deep4", n_chans=4, n_outputs=1, n_times=800, seed=7)
    b = build_model("deep4", n_chans=4, n_outputs=1, n_times=800, seed=7)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(va, vb, msg=k)


def test_bad_arguments():
    with pytest.raises(UnitScopeError, match="Allowed values are 'deep4' and 'shallow'.*Did you mean 'deep4'"):
        build_model("deep5", n_chans=4, n_outputs=1, n_times=800)
    with pytest.raises(UnitScopeError, match="n_times=100 samples is shorter than the deep4 network needs: its receptive field is 522"):
        build_model("deep4", n_chans=4, n_outputs=1, n_times=100)
    # trial-wise (labels): the shortest window the layers take, not braindecode's "see above in the stacktrace"
    with pytest.raises(UnitScopeError, match="n_times=440 samples is shorter than the deep4 network needs: its layers "
                                             "need 441 samples; use windows of at least 441 samples") as err:
        build_model("deep4", n_chans=4, n_outputs=2, n_times=440, dense=False)
    assert "stacktrace" not in str(err.value)
    assert build_model("deep4", n_chans=4, n_outputs=2, n_times=441, dense=False) is not None
    with pytest.raises(UnitScopeError, match="must be an int"):
        build_model("deep4", n_chans=True, n_outputs=1, n_times=800)
    # one channel: braindecode's first block cannot run it, whatever the window (it was called too short)
    for kind, dense in (("deep4", True), ("shallow", False)):
        with pytest.raises(UnitScopeError, match=f"The {kind} network needs at least 2 input channels.*given 1"):
            build_model(kind, n_chans=1, n_outputs=1 if dense else 2, n_times=2000, dense=dense)
    model = build_model("deep4", n_chans=4, n_outputs=1, n_times=800)
    with pytest.raises(UnitScopeError, match="Unknown module 'conv_9'"):
        get_layer(model, "conv_9")
