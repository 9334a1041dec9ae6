"""Pruning: reversible unit masks, fast re-measurement, pruning curves, masked fine-tune.

Method: METHODS.md 1.7 item 4 and 1.10 (mask after the block's nonlinearity and pooling;
never zero the pre-BatchNorm conv output).
"""
from .curves import (BY, ORDERS, REDUCE, ablation_effects, n_to_prune, prune_fraction, pruning_curve, select_scores,
                     sensitivity_order, unit_scores)
from .evaluator import METRIC_NAMES, MaskEvaluator
from .finetune import FinetuneConfig, FinetuneResult, finetune
from .masks import MaskHandle, MaskSet, architecture_signature, maskable_layers
from .sensitivity import DEFAULT_BANDS, amplitude_sensitivity

__all__ = [
    "MaskSet", "MaskHandle", "architecture_signature", "maskable_layers",
    "MaskEvaluator", "METRIC_NAMES",
    "pruning_curve", "ablation_effects", "unit_scores", "select_scores", "sensitivity_order",
    "n_to_prune", "prune_fraction", "ORDERS", "BY", "REDUCE",
    "FinetuneConfig", "FinetuneResult", "finetune",
    "amplitude_sensitivity", "DEFAULT_BANDS",
]
