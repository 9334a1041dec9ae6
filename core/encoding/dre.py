"""Deep Recurrent Encoder (Chehab, Défossez, Loiseau, Gramfort, King 2022, NBDT 38668).

METHODS.md 3.2-3.3. At each time step the network sees, stacked on channels,

* the signals masked to the first ``meg_init`` samples (the initial brain state) and the
  mask itself (1 channel);
* a learned subject embedding (``subject_dim``) broadcast over time;
* the forcings (stimulus / behaviour features, sorted by name).

Encoder: ``conv_layers`` x [Conv1d(k=4, stride 2), ReLU]; a unidirectional LSTM over the
downsampled time axis; decoder: ``conv_layers`` ConvTranspose1d(k=4, stride 2) with ReLU
between them, back to the sensors. All subjects train jointly; the model with the best
validation loss (t >= meg_init) is kept.

[A] Differences from the published defaults, for 2 CPU cores: ``hidden`` 64 (paper 512),
lr 2e-3 (paper 1e-4) with batches of 64 (paper 32), 20 epochs (paper 60) plus an optional
time budget; convolutions use padding 1 so every stride exactly halves an input padded to a
multiple of ``2 ** conv_layers`` (the paper pads and centre-trims). As in the paper the
training loss covers all samples, the ``meg_init`` given ones included (learning to
reproduce them makes the network carry the initial state forward; ``loss_on_init=False``
drops them); validation (model selection) and evaluation use t >= meg_init only, and the
headline R t >= onset (METHODS.md 3.10).
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from .._validation import UnitScopeError, config_from_dict, check_range, ensure_int
from ._base import Encoder

__all__ = ["DREConfig", "DeepRecurrentEncoder", "DRENet"]

logger = logging.getLogger(__name__)


@dataclass
class DREConfig:
    """Hyper-parameters of the Deep Recurrent Encoder."""

    meg_init: int = 20          # samples of initial brain state (paper: 40 at 120 Hz); 0 = NO-INIT
    subject_dim: int = 16       # subject embedding size; 0 = NO-SUB ablation
    hidden: int = 64            # [A] conv and LSTM width (paper 512)
    conv_layers: int = 2        # strided conv / deconv pairs; 0 = NO-CONV (1x1 decoder)
    lstm_layers: int = 2
    lr: float = 2e-3            # [A] Adam learning rate (paper 1e-4)
    batch_size: int = 64        # [A] paper 32
    n_epochs: int = 20          # [A] passes over the training set (paper 60)
    max_seconds: float | None = None  # [A] stop training after this wall time
    cosine: bool = True         # [A] cosine learning-rate decay to 0 over n_epochs (paper: constant)
    dropout: float = 0.0        # [A] dropout on the LSTM's input and between its layers
    weight_decay: float = 0.0   # [A] decoupled weight decay (AdamW); 0: plain Adam
    loss_on_init: bool = True   # training loss also on the given samples (paper); False: t >= meg_init
    seed: int = 42

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DREConfig":
        return config_from_dict(cls, d, "DRE")

    def validate(self) -> "DREConfig":
        for name in ("meg_init", "subject_dim", "conv_layers", "hidden", "lstm_layers",
                     "batch_size", "n_epochs"):
            ensure_int(name, getattr(self, name))
        for name in ("meg_init", "subject_dim", "conv_layers"):
            check_range(name, getattr(self, name), low=0)
        for name in ("hidden", "lstm_layers", "batch_size", "n_epochs"):
            check_range(name, getattr(self, name), low=1)
        check_range("lr", self.lr, low=0, low_inclusive=False)
        check_range("dropout", self.dropout, low=0.0, high=1.0, high_inclusive=False)
        check_range("weight_decay", self.weight_decay, low=0.0)
        return self


class DRENet(nn.Module):
    """The network; input and output are scaled arrays.

    ``forward(meg, forcing, subject)``: meg (batch, n_chans, n_times), forcing (batch,
    n_features, n_times), subject (batch,) int64 -> prediction (batch, n_chans, n_times).
    """

    def __init__(self, n_chans: int, n_features: int, n_subjects: int, config: DREConfig):
        super().__init__()
        self.meg_init = config.meg_init
        self.conv_layers = config.conv_layers
        self.subject_embedding = (nn.Embedding(n_subjects, config.subject_dim)
                                  if config.subject_dim else None)
        n_in = n_chans + 1 + config.subject_dim + n_features
        h = config.hidden
        enc = []
        for i in range(config.conv_layers):
            enc += [nn.Conv1d(n_in if i == 0 else h, h, 4, stride=2, padding=1), nn.ReLU()]
        self.encoder = nn.Sequential(*enc)
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(h if config.conv_layers else n_in, h, config.lstm_layers,
                            batch_first=True, dropout=config.dropout if config.lstm_layers > 1 else 0.0)
        dec = []
        for i in range(config.conv_layers):
            last = i == config.conv_layers - 1
            dec.append(nn.ConvTranspose1d(h, n_chans if last else h, 4, stride=2, padding=1))
            if not last:
                dec.append(nn.ReLU())
        self.decoder = nn.Sequential(*dec) if dec else nn.Conv1d(h, n_chans, 1)

    def forward(self, meg: torch.Tensor, forcing: torch.Tensor,
                subject: torch.Tensor) -> torch.Tensor:
        B, C, T = meg.shape
        mask = torch.zeros(B, 1, T, dtype=meg.dtype, device=meg.device)
        mask[:, :, : self.meg_init] = 1.0
        parts = [meg * mask, mask]  # initial brain state, zero after meg_init
        if self.subject_embedding is not None:
            emb = self.subject_embedding(subject)  # (B, subject_dim)
            parts.append(emb[:, :, None].expand(-1, -1, T))  # (B, subject_dim, T)
        parts.append(forcing)
        x = torch.cat(parts, dim=1)  # (B, n_in, T)
        stride = 2 ** self.conv_layers
        pad = (-T) % stride
        x = nn.functional.pad(x, (0, pad))  # (B, n_in, T + pad)
        x = self.encoder(x)  # (B, hidden, (T + pad) / stride)
        x, _ = self.lstm(self.dropout(x.transpose(1, 2)))  # (B, T', hidden)
        x = self.decoder(x.transpose(1, 2))  # (B, C, T + pad)
        return x[:, :, :T]


class DeepRecurrentEncoder(Encoder):
    """Deep Recurrent Encoder: configure, ``fit(train, valid)``, then ``predict(data)``.

    Parameters
    ----------
    config : DREConfig, optional
        Hyper-parameters; keyword overrides (``hidden=64``, ...) are applied on top.

    Attributes (after ``fit``)
    --------------------------
    net_ : DRENet
        The trained network (eval mode), best validation epoch.
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``valid_loss``, ``seconds``.
    fit_seconds_ : float
        Wall time of the training loop.
    """

    name = "dre"

    def __init__(self, config: DREConfig | None = None, **overrides):
        config = copy.deepcopy(config) if config is not None else DREConfig()
        for key, value in overrides.items():
            if not hasattr(config, key):
                raise UnitScopeError(f"Unknown DRE option {key!r}; see DREConfig.")
            setattr(config, key, value)
        self.config = config.validate()
        self.meg_init = config.meg_init

    def fit(self, train, valid, *, progress=None, stop=None) -> "DeepRecurrentEncoder":
        """Train jointly on all subjects of ``train``; select on ``valid``.

        Parameters
        ----------
        train, valid : xarray.Dataset
            Encoding data sets (the validation subjects must appear in ``train``).
        progress : callable, optional
            Called as ``progress(info)`` after every epoch; ``info`` is the history entry
            plus ``n_epochs`` and ``fraction``.
        stop : callable, optional
            Polled after every epoch; training ends when it returns True.

        Returns
        -------
        self
        """
        cfg = self.config
        self._setup(train, valid)
        meg, forcing, sidx = self.prepare(train)
        vmeg, vforcing, vsidx = self.prepare(valid)
        # torch's global RNG (initialisation, dropout) is seeded here and restored on exit
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self._train(cfg, (meg, forcing, sidx), (vmeg, vforcing, vsidx), progress, stop)
        return self

    def _train(self, cfg, train, valid, progress, stop) -> None:
        meg, forcing, sidx = train
        vmeg, vforcing, vsidx = valid
        net = DRENet(meg.shape[1], forcing.shape[1], len(self.subjects_), cfg)
        rng = np.random.default_rng(cfg.seed)
        opt = (torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
               if cfg.weight_decay else torch.optim.Adam(net.parameters(), lr=cfg.lr))
        n_batches = max(1, len(sidx) // cfg.batch_size)
        sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.n_epochs * n_batches)
                 if cfg.cosine else None)
        t_loss = 0 if cfg.loss_on_init else cfg.meg_init
        tensors = [torch.from_numpy(a) for a in (meg, forcing, sidx)]
        best, best_state, self.history_ = np.inf, None, []
        start = time.perf_counter()
        for epoch in range(cfg.n_epochs):
            net.train()
            total, n_seen = 0.0, 0
            for batch in np.array_split(rng.permutation(len(sidx)), n_batches):
                m, f, s = (t[batch] for t in tensors)
                pred = net(m, f, s)
                loss = nn.functional.mse_loss(pred[:, :, t_loss:], m[:, :, t_loss:])
                opt.zero_grad()
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                total += float(loss.detach()) * len(batch)
                n_seen += len(batch)
            net.eval()
            vpred = self._run(net, vmeg, vforcing, vsidx)
            vloss = float(np.mean((vpred[:, :, cfg.meg_init:] - vmeg[:, :, cfg.meg_init:]) ** 2))
            if vloss < best:
                best, best_state = vloss, copy.deepcopy(net.state_dict())
            info = {"epoch": epoch + 1, "train_loss": total / n_seen, "valid_loss": vloss,
                    "seconds": time.perf_counter() - start}
            self.history_.append(info)
            logger.info("DRE epoch %d: train %.4f valid %.4f", epoch + 1, info["train_loss"], vloss)
            if progress is not None:
                progress({**info, "n_epochs": cfg.n_epochs, "fraction": (epoch + 1) / cfg.n_epochs})
            if (stop is not None and stop()) or (
                    cfg.max_seconds is not None and info["seconds"] > cfg.max_seconds):
                break
        self.fit_seconds_ = time.perf_counter() - start
        net.load_state_dict(best_state)
        self.net_ = net.eval()
        self.best_valid_loss_ = best

    @staticmethod
    @torch.no_grad()
    def _run(net: DRENet, meg, forcing, sidx, batch_size: int = 256) -> np.ndarray:
        out = []
        for i in range(0, len(sidx), batch_size):
            sl = slice(i, i + batch_size)
            out.append(net(torch.from_numpy(meg[sl]), torch.from_numpy(forcing[sl]),
                           torch.from_numpy(sidx[sl])).numpy())
        return np.concatenate(out)

    def predict_arrays(self, meg, forcing, subject) -> np.ndarray:
        if not hasattr(self, "net_"):
            raise UnitScopeError("This DeepRecurrentEncoder is not fitted yet; call fit() first.")
        was_training = self.net_.training
        self.net_.eval()
        try:
            return self._run(self.net_, np.ascontiguousarray(meg, np.float32),
                             np.ascontiguousarray(forcing, np.float32),
                             np.asarray(subject, np.int64))
        finally:
            self.net_.train(was_training)
