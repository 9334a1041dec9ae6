"""Short masked fine-tune: how much decoding recovers once units are pruned.

The network is copied, the masks are attached to the copy (so masked units stay silent in
every forward pass, training included: their downstream weights receive no signal from them),
and the copy is trained for a few epochs with Adam. The original model is never modified.

[A] Defaults (not in the published method, which prunes without retraining): 2 epochs, Adam
with lr 1e-4 (a tenth of the training rate), batch 32, MSE (regression) or cross-entropy
(labels), BatchNorm in training mode so its running statistics adapt to the pruned network
(``batchnorm="frozen"`` keeps them, e.g. for very small batches).
"""
from __future__ import annotations

import copy
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from .._validation import UnitScopeError, config_from_dict, check_option, check_range, ensure_int
from ..metrics import check_finite, check_targets, score
from .masks import MaskSet

__all__ = ["FinetuneConfig", "FinetuneResult", "finetune"]

logger = logging.getLogger(__name__)


@dataclass
class FinetuneConfig:
    """Options of :func:`finetune` (JSON round trip with ``to_dict``/``from_dict``)."""

    n_epochs: int = 2            # passes over the training windows
    lr: float = 1e-4             # Adam learning rate (a tenth of the training default)
    batch_size: int = 32         # windows per step
    max_steps: int | None = None  # stop after this many optimiser steps (None: no limit)
    seed: int = 0                # batch order and dropout
    batchnorm: str = "train"     # "train": batch statistics, running stats adapt; "frozen": kept

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FinetuneConfig":
        return config_from_dict(cls, d, "fine-tune")

    def validate(self) -> "FinetuneConfig":
        check_range("n_epochs", ensure_int("n_epochs", self.n_epochs), low=1)
        check_range("batch_size", ensure_int("batch_size", self.batch_size), low=1)
        check_range("lr", float(self.lr), low=0, low_inclusive=False)
        ensure_int("seed", self.seed)
        check_option("batchnorm", self.batchnorm, ("train", "frozen"))
        if self.max_steps is not None:
            check_range("max_steps", ensure_int("max_steps", self.max_steps), low=1)
        return self


@dataclass
class FinetuneResult:
    """Outcome of :func:`finetune`.

    Attributes
    ----------
    model : torch.nn.Module
        The fine-tuned copy, in eval mode, *without* mask hooks: evaluate it with the same
        MaskSet attached.
    before, after : float
        Held-out metric of the masked network before and after (NaN without an eval set).
    history : list of dict
        One entry per epoch: ``epoch``, ``train_loss``, ``metric``.
    n_steps : int
    cancelled : bool
    seconds : float
    """

    model: nn.Module
    before: float = float("nan")
    after: float = float("nan")
    history: list = field(default_factory=list)
    n_steps: int = 0
    cancelled: bool = False
    seconds: float = 0.0


@torch.no_grad()
def _masked_metric(model, masks, X, y, task, batch_size=64) -> float:
    was = model.training
    model.eval()
    try:
        with masks.apply(model):
            out = torch.cat([model(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])
    finally:
        model.train(was)
    return score(task, out.numpy() if task == "classification" else out[:, 0].numpy(), y)


def _checked(model: nn.Module, X, y, task: str, x_name: str, y_name: str) -> tuple[torch.Tensor, np.ndarray]:
    """Windows and targets checked against ``model`` before any step [A], as
    :class:`~core.pruning.MaskEvaluator` checks them: a wrong shape, channel count, task or a
    NaN failed inside torch (or trained a copy to NaN without a word)."""
    X = np.asarray(X, dtype=np.float32) if not isinstance(X, torch.Tensor) else X.detach().cpu().float().numpy()
    if X.ndim != 3 or len(X) == 0:
        raise UnitScopeError(f"{x_name} must have shape (n_windows, n_chans, n_times) with at least one window, "
                             f"got {X.shape}.")
    n_chans = (getattr(model, "unitscope_config", None) or {}).get("n_chans")
    if n_chans is not None and X.shape[1] != n_chans:
        raise UnitScopeError(f"{x_name} has {X.shape[1]} channels but the model expects n_chans={n_chans}.")
    check_finite(x_name, X)
    was = model.training
    try:
        with torch.no_grad():
            out = model.eval()(torch.as_tensor(X[:2]))
    except RuntimeError as exc:
        raise UnitScopeError(f"The model cannot process {x_name}'s windows of n_times={X.shape[2]} samples: "
                             f"{str(exc).splitlines()[0]}") from exc
    finally:
        model.train(was)
    if task == "regression" and out.dim() != 3:
        raise UnitScopeError(f"Regression fine-tuning needs a dense decoder with output (batch, n_outputs, n_preds); "
                             f"the model returns shape {tuple(out.shape)}: give task='classification'.")
    if task == "classification" and out.dim() != 2:
        raise UnitScopeError(f"Classification fine-tuning needs one output per class, (batch, n_classes); the model "
                             f"returns shape {tuple(out.shape)}: give task='regression'.")
    try:
        y = check_targets(task, y, (len(X),) + tuple(out.shape[1:]))
    except UnitScopeError as exc:
        raise UnitScopeError(re.sub(r"\by\b", y_name, str(exc))) from None
    return torch.as_tensor(X), y


def finetune(
    model: nn.Module,
    X,
    y,
    *,
    masks: MaskSet,
    task: str = "regression",
    config: FinetuneConfig | None = None,
    X_eval=None,
    y_eval=None,
    progress: Callable[[dict], None] | None = None,
    cancel: threading.Event | None = None,
) -> FinetuneResult:
    """Fine-tune a copy of ``model`` with ``masks`` attached.

    Parameters
    ----------
    model : torch.nn.Module
        The decoder (left untouched).
    X : ndarray, shape (n_windows, n_chans, n_times), float32
        Training windows.
    y : ndarray
        Regression: targets (n_windows, n_preds) aligned with ``model(X)[:, 0, :]``;
        classification: integer labels (n_windows,).
    masks : MaskSet
        Units kept silent throughout.
    task : {"regression", "classification"}
    config : FinetuneConfig, optional
    X_eval, y_eval : ndarray, optional
        Held-out set measured before training and after every epoch.
    progress : callable, optional
        Called after every step with ``{"epoch", "step", "n_steps", "fraction", "train_loss"}``
        and after every epoch with ``"metric"`` and ``"end_of_epoch": True`` added.
    cancel : threading.Event, optional
        Checked before every step; when set, training stops and the copy is returned as is.

    Returns
    -------
    result : FinetuneResult
    """
    check_option("task", task, ("regression", "classification"))
    config = (config or FinetuneConfig()).validate()
    masks.check_compatible(model)
    if (X_eval is None) != (y_eval is None):  # one alone was ignored: 'before' and 'after' came out NaN
        raise UnitScopeError(f"Give both X_eval and y_eval, or neither; got only {'X_eval' if y_eval is None else 'y_eval'}.")
    X, y = _checked(model, X, y, task, "X", "y")
    y_t = torch.as_tensor(y.astype(np.float32) if task == "regression" else y.astype(np.int64))
    has_eval = X_eval is not None
    if has_eval:
        X_eval, y_eval = _checked(model, X_eval, y_eval, task, "X_eval", "y_eval")
    net = copy.deepcopy(model)
    net.requires_grad_(True)
    loss_fn = nn.MSELoss() if task == "regression" else nn.CrossEntropyLoss()
    result = FinetuneResult(model=net)
    n_batches = -(-len(X) // config.batch_size)
    n_steps = n_batches * config.n_epochs if config.max_steps is None else min(config.max_steps,
                                                                                 n_batches * config.n_epochs)
    rng = np.random.default_rng(config.seed)
    t0 = time.perf_counter()
    handle = masks.attach(net)
    try:
        if has_eval:
            result.before = _masked_metric(net, masks, X_eval, y_eval, task)
        opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=config.lr)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)  # dropout, without touching the global stream
            for epoch in range(config.n_epochs):
                net.train()
                if config.batchnorm == "frozen":
                    for m in net.modules():
                        if isinstance(m, nn.modules.batchnorm._BatchNorm):
                            m.eval()
                order = rng.permutation(len(X))
                losses = []
                for b in range(n_batches):
                    if result.n_steps >= n_steps:
                        break
                    if cancel is not None and cancel.is_set():
                        result.cancelled = True
                        break
                    idx = torch.as_tensor(np.sort(order[b * config.batch_size:(b + 1) * config.batch_size]))
                    opt.zero_grad()
                    out = net(X[idx])
                    loss = loss_fn(out[:, 0, :] if task == "regression" else out, y_t[idx])
                    loss.backward()
                    opt.step()
                    result.n_steps += 1
                    losses.append(float(loss.item()))
                    if progress is not None:
                        progress({"epoch": epoch, "step": result.n_steps, "n_steps": n_steps,
                                  "fraction": result.n_steps / n_steps, "train_loss": losses[-1]})
                if not losses:
                    break
                rec = {"epoch": epoch, "train_loss": float(np.mean(losses)),
                       "metric": _masked_metric(net, masks, X_eval, y_eval, task) if has_eval else float("nan")}
                result.history.append(rec)
                logger.info("fine-tune epoch %d: loss %.4f metric %.4f", epoch, rec["train_loss"], rec["metric"])
                if progress is not None:
                    progress({**rec, "step": result.n_steps, "n_steps": n_steps,
                              "fraction": result.n_steps / n_steps, "end_of_epoch": True})
                if result.cancelled or result.n_steps >= n_steps:
                    break
    finally:
        handle.remove()
        net.eval()
    if result.history:
        result.after = result.history[-1]["metric"]
    else:
        result.after = result.before
    result.seconds = time.perf_counter() - t0
    return result
