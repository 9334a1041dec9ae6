"""Training options of a decoder (:class:`TrainConfig`) and the names of a run folder's
training files, apart from :mod:`core.training` so that reading them (the command line's
defaults, a run folder's config) needs no torch."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ._validation import config_from_dict, check_option, check_range, ensure_int

__all__ = ["DEFAULT_LR", "TrainConfig", "CHECKPOINT_FILE", "PARTIAL_FILE", "LOCK_FILE"]


# [A] Default Adam learning rate per decoder, chosen on the demo's validation block: Deep4
# at 1e-3 (PyTorch's default, as in the seed paper); Shallow's squared, log-pooled features
# train slowly at 1e-3 (demo test r 0.82 at 6.25e-4, 0.84 at 1e-3, 0.90 at 4e-3, 25 epochs).
DEFAULT_LR = {"deep4": 1e-3, "shallow": 4e-3}
CHECKPOINT_FILE = "checkpoint.pt"          # a complete run's training state (to train it further)
PARTIAL_FILE = "checkpoint.partial.pt"     # the state of a training not yet committed (interrupted)
LOCK_FILE = ".unitscope.lock"              # pid and host of the process writing a run folder


@dataclass
class TrainConfig:
    """Training options (JSON round trip with ``to_dict``/``from_dict``)."""

    model: str = "deep4"          # "deep4" or "shallow"
    n_times: int = 1200           # input window in samples (4.8 s at 250 Hz)
    batch_size: int = 32          # windows per batch (as in METHODS.md 1.5)
    max_epochs: int = 25
    patience: int = 6             # epochs without validation improvement before stopping
    lr: float | None = None       # Adam learning rate; None: the model's default (DEFAULT_LR)
    scheduler: str = "cosine"     # [A] cosine annealing over max_epochs ("none": constant lr)
    weight_decay: float = 0.0
    drop_prob: float = 0.5
    seed: int = 20170629          # the seed paper's seed
    device: str = "auto"          # "auto" | "cpu" | "cuda"

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def learning_rate(self) -> float:
        """``lr``, or the model's default when ``lr`` is None."""
        return float(self.lr) if self.lr is not None else DEFAULT_LR[self.model]

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return config_from_dict(cls, d, "training")

    def validate(self) -> "TrainConfig":
        check_option("model", self.model, ("deep4", "shallow"))
        check_option("device", self.device, ("auto", "cpu", "cuda"))
        check_option("scheduler", self.scheduler, ("cosine", "none"))
        for name in ("n_times", "batch_size", "max_epochs", "patience", "seed"):
            ensure_int(name, getattr(self, name))
        check_range("max_epochs", self.max_epochs, low=1)
        check_range("batch_size", self.batch_size, low=1)
        check_range("n_times", self.n_times, low=1)
        # patience 0 stopped every training after its first epoch, even an improving one
        check_range("patience", self.patience, low=1)
        check_range("seed", self.seed, low=0, high=2**32 - 1)  # numpy's seeds
        check_range("weight_decay", self.weight_decay, low=0)  # torch's Adam refuses < 0 mid-training
        if self.lr is not None:
            check_range("lr", self.lr, low=0, low_inclusive=False)
        check_range("drop_prob", self.drop_prob, low=0, high=1, high_inclusive=False)
        return self
