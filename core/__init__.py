"""UnitScope's engine: train, probe, prune and deconvolve decoders of brain signals.

No Panel import anywhere in ``core``; everything here is usable from Python and the CLI.
Public names are re-exported flatly and imported lazily (``import core`` stays fast)::

    from core import Workspace, DataSpec, TrainConfig, simulate_reaching
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    # foundation
    "UnitScopeError": "._validation",
    "Recording": ".recording", "Events": ".recording",
    "simulate_reaching": ".demo",
    "read_recording": ".io", "read_bci2000": ".io",
    "build_model": ".models", "layer_map": ".models", "LayerInfo": ".models",
    "TrainConfig": ".training", "train": ".training",
    "Workspace": ".workspace", "DataSpec": ".workspace",
    "pearson_r": ".metrics", "balanced_accuracy": ".metrics",
    "plan_runs": ".batch", "run_batch": ".batch", "BatchRun": ".batch",
    "MostActivating": ".activations", "unit_segments": ".activations",
    # probing
    "AmplitudeProbe": ".probing", "PhaseProbe": ".probing", "ProbeConfig": ".probing",
    "probe_units": ".probing", "start_probe": ".probing", "classify": ".probing",
    # pruning
    "MaskSet": ".pruning", "MaskEvaluator": ".pruning", "pruning_curve": ".pruning",
    "ablation_effects": ".pruning", "finetune": ".pruning",
    # deconvolution (DUNL)
    "DUNL": ".deconv", "DeconvConfig": ".deconv", "EventDeconvolution": ".deconv",
    "simulate_a": ".deconv", "simulate_b": ".deconv",
    # encoding (DRE)
    "EncodingStudy": ".encoding",
    "DREConfig": ".encoding",
    "DeepRecurrentEncoder": ".encoding",
    "TRF": ".encoding",
    "RTRF": ".encoding",
    "simulate_reading": ".encoding",
    "reaching_epochs": ".encoding",
    "load_epochs": ".encoding",
    "correlation_map": ".encoding",
    "permutation_importance": ".encoding",
    "peak_latency": ".encoding",
    "load_results": ".encoding.results",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module 'core' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
