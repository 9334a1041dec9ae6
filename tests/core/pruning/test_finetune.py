"""Masked fine-tune: works on a copy, masked units stay silent, progress and cancel."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from core._validation import UnitScopeError
from core.pruning import FinetuneConfig, MaskSet, finetune

MASKED = list(range(0, 200, 2))  # half of conv_4


@pytest.fixture(scope="module")
def tuned(deep4, dense_set):
    X, y = dense_set
    masks = MaskSet.for_model(deep4).prune("conv_4", MASKED)
    state = {k: v.clone() for k, v in deep4.state_dict().items()}
    seen = []
    result = finetune(deep4, X, y, masks=masks, config=FinetuneConfig(n_epochs=2, lr=1e-3, batch_size=7,
                                                                                batchnorm="frozen"),
                      X_eval=X, y_eval=y, progress=seen.append)
    return result, masks, state, seen


def test_original_untouched_and_masked_units_receive_no_update(deep4, tuned):
    result, masks, state, _ = tuned
    assert all(torch.equal(v, state[k]) for k, v in deep4.state_dict().items())
    net = result.model
    assert not net.training and all(not m._forward_hooks for m in net.modules())
    keep = torch.ones(200, dtype=torch.bool)
    keep[MASKED] = False
    w_old, w_new = state["final_layer.conv_classifier.weight"], net.final_layer.conv_classifier.weight.detach()
    assert torch.equal(w_new[:, ~keep], w_old[:, ~keep])  # silent units: zero gradient downstream
    assert not torch.equal(w_new[:, keep], w_old[:, keep])
    assert torch.equal(net.conv_4.weight.detach()[~keep], state["conv_4.weight"][~keep])
    assert torch.equal(net.bnorm_4.running_mean, state["bnorm_4.running_mean"])  # batchnorm="frozen"


def test_recovery_history_and_progress(tuned):
    result, _, _, seen = tuned
    assert len(result.history) == 2 and result.n_steps == 4 and not result.cancelled  # 13 windows, batches of 7
    assert result.after == result.history[-1]["metric"]
    assert result.after > result.before  # decoding recovers on the training windows
    steps = [p["step"] for p in seen if not p.get("end_of_epoch")]
    assert steps == list(range(1, 5)) and seen[-1]["end_of_epoch"] and seen[-1]["fraction"] == 1.0


def test_cancel_and_max_steps(deep4, dense_set):
    X, y = dense_set
    masks = MaskSet.for_model(deep4).prune("conv_2", 1)
    cancel = threading.Event()
    cancel.set()
    res = finetune(deep4, X, y, masks=masks, cancel=cancel, X_eval=X[:4], y_eval=y[:4])
    assert res.cancelled and res.n_steps == 0 and res.after == res.before
    res = finetune(deep4, X[:8], y[:8], masks=masks, config=FinetuneConfig(max_steps=2, batch_size=2))
    assert res.n_steps == 2 and np.isnan(res.after)


def test_config_round_trip_and_bad_input(deep4, dense_set, shallow):
    cfg = FinetuneConfig(n_epochs=4, lr=3e-4, max_steps=10)
    assert FinetuneConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(UnitScopeError, match=r"Unknown fine-tune options \['epochs'\]"):
        FinetuneConfig.from_dict({"epochs": 3})
    with pytest.raises(UnitScopeError, match="Allowed values are 'train' and 'frozen'"):
        FinetuneConfig(batchnorm="eval").validate()
    with pytest.raises(UnitScopeError, match="'lr' must lie in"):
        FinetuneConfig(lr=0).validate()
    X, y = dense_set
    with pytest.raises(UnitScopeError, match="saved for shallow"):
        finetune(deep4, X, y, masks=MaskSet.for_model(shallow))
    m = MaskSet.for_model(deep4)
    with pytest.raises(UnitScopeError, match=r"Targets y of shape \(\d+, 79\) do not match the predictions"):
        finetune(deep4, X, y[:-1], masks=m)
    # each was a torch or numpy error from inside the training, or a copy trained to NaN silently
    nan = X.copy()
    nan[0, 1, 5] = np.nan
    cases = [((X, y[:, :10]), {}, r"Targets y of shape \(\d+, 10\)"),
             ((X, y), {"task": "classification"}, "Classification fine-tuning needs one output per class"),
             ((X[:, :2], y), {}, "X has 2 channels but the model expects n_chans=4"),
             ((nan, y), {}, r"X contains NaN or Inf samples \(1 of .*the first at index \(0, 1, 5\)\)"),
             ((X, y), {"X_eval": X, "y_eval": y[:, :5]}, r"Targets y_eval of shape .*y_eval must have shape"),
             ((X, y), {"X_eval": X}, "Give both X_eval and y_eval, or neither; got only X_eval")]
    for args, kw, match in cases:
        with pytest.raises(UnitScopeError, match=match):
            finetune(deep4, *args, masks=m, **kw)
