import numpy as np
import pytest
import torch

from core._validation import UnitScopeError
from core.encoding.dre import DeepRecurrentEncoder, DREConfig, DRENet
from core.encoding.evaluate import correlation_map, post_onset_mean

TINY = dict(hidden=16, subject_dim=4, n_epochs=2, batch_size=16)


@pytest.mark.parametrize("n_times", [37, 40, 64])
@pytest.mark.parametrize("conv_layers", [0, 1, 2])
def test_output_has_the_input_length(n_times, conv_layers):
    cfg = DREConfig(meg_init=5, hidden=8, subject_dim=3, conv_layers=conv_layers)
    net = DRENet(n_chans=4, n_features=2, n_subjects=2, config=cfg)
    out = net(torch.zeros(3, 4, n_times), torch.zeros(3, 2, n_times), torch.tensor([0, 1, 0]))
    assert out.shape == (3, 4, n_times)


def test_network_sees_only_the_initial_samples_of_the_signals():
    cfg = DREConfig(meg_init=6, hidden=8, subject_dim=3)
    torch.manual_seed(0)
    net = DRENet(n_chans=4, n_features=2, n_subjects=2, config=cfg).eval()
    meg, forcing, subject = torch.randn(2, 4, 32), torch.randn(2, 2, 32), torch.tensor([0, 1])
    spoiled = meg.clone()
    spoiled[:, :, 6:] = 100.0  # the future: must not leak into the prediction
    torch.testing.assert_close(net(spoiled, forcing, subject), net(meg, forcing, subject))
    changed = meg.clone()
    changed[:, :, :6] += 1.0
    assert not torch.allclose(net(changed, forcing, subject), net(meg, forcing, subject))
    # and the subject embedding matters
    assert not torch.allclose(net(meg, forcing, torch.tensor([1, 0])), net(meg, forcing, subject))


def test_config_round_trip_and_validation():
    cfg = DREConfig(hidden=32, n_epochs=3)
    assert DREConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(UnitScopeError, match=r"Unknown DRE options \['bogus'\]"):
        DREConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(UnitScopeError, match="'hidden' must lie in"):
        DeepRecurrentEncoder(hidden=0)
    with pytest.raises(UnitScopeError, match="Unknown DRE option 'hiden'"):
        DeepRecurrentEncoder(hiden=3)


def test_fit_learns_and_keeps_the_best_validation_model(reading_splits):
    model = DeepRecurrentEncoder(meg_init=10, **{**TINY, "n_epochs": 5, "lr": 5e-3})
    model.fit(reading_splits["train"], reading_splits["valid"])
    losses = [h["valid_loss"] for h in model.history_]
    assert model.best_valid_loss_ == min(losses)
    assert losses[-1] < losses[0] or min(losses) < losses[0]
    pred = model.predict(reading_splits["test"])
    assert pred.dims == ("epoch", "channel", "time")
    # predictions are in sensor units (inverse-scaled): same order of magnitude as the data
    ratio = float(pred.std() / reading_splits["test"]["meg"].std())
    assert 0.05 < ratio < 2
    r = correlation_map(pred, reading_splits["test"]["meg"])
    assert post_onset_mean(r) > 0.05  # better than chance after a few passes


def test_fit_is_deterministic_and_leaves_global_rng_alone(reading_splits):
    state = torch.random.get_rng_state()
    a = DeepRecurrentEncoder(meg_init=10, **TINY).fit(reading_splits["train"], reading_splits["valid"])
    assert torch.equal(torch.random.get_rng_state(), state)
    b = DeepRecurrentEncoder(meg_init=10, **TINY).fit(reading_splits["train"], reading_splits["valid"])
    np.testing.assert_allclose(a.predict(reading_splits["test"]).values,
                               b.predict(reading_splits["test"]).values, rtol=1e-5, atol=1e-6)


def test_progress_and_stop(reading_splits):
    seen = []
    model = DeepRecurrentEncoder(meg_init=10, **{**TINY, "n_epochs": 5})
    model.fit(reading_splits["train"], reading_splits["valid"], progress=seen.append,
              stop=lambda: len(seen) >= 2)
    assert [s["epoch"] for s in seen] == [1, 2]
    assert seen[-1]["n_epochs"] == 5 and 0 < seen[-1]["fraction"] <= 1


def test_bad_inputs(reading_splits):
    train, valid, test = (reading_splits[k] for k in ("train", "valid", "test"))
    with pytest.raises(UnitScopeError, match="not fitted yet"):
        DeepRecurrentEncoder().predict(test)
    model = DeepRecurrentEncoder(meg_init=10, **TINY).fit(train, valid)
    unseen = test.assign_coords(subject=("epoch", ["S42"] * test.sizes["epoch"]))
    with pytest.raises(UnitScopeError, match=r"Subjects \['S42'\] were never seen in training"):
        model.predict(unseen)
    with pytest.raises(UnitScopeError, match=r"Subjects \['S42'\] were never seen"):
        DeepRecurrentEncoder(meg_init=10, **TINY).fit(train, unseen)
    with pytest.raises(UnitScopeError, match="Epochs of different lengths"):
        model.predict(test.isel(time=slice(0, 60)))
    few = train.isel(epoch=np.flatnonzero(train["subject"].values != "S02")[:5].tolist()
                     + np.flatnonzero(train["subject"].values == "S02").tolist())
    with pytest.raises(UnitScopeError, match=r"Too few epochs to fit: \{'S01': 5\}"):
        DeepRecurrentEncoder(meg_init=10, **TINY).fit(few, valid)
    with pytest.raises(UnitScopeError, match="meg_init=500 samples leaves nothing to predict"):
        DeepRecurrentEncoder(meg_init=500, **TINY).fit(train, valid)
