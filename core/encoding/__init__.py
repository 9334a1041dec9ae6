"""Encoding: the Deep Recurrent Encoder, linear baselines, evaluation and permutation importance.

METHODS.md section 3 (Chehab, Défossez, Loiseau, Gramfort, King 2022). The decoders elsewhere
in UnitScope go from brain to behaviour; an encoder goes the other way, from stimulus or
behaviour features (forcings) to the recorded signals, and permutation importance asks which
feature drives which channel when.

Typical use::

    from core.encoding import simulate_reading, EncodingStudy, DREConfig
    data = simulate_reading(seed=0)
    result = EncodingStudy(DREConfig(), ablations=("no_init", "no_subject")).run(data, progress=print)
    result["score"]            # post-onset mean R per model
    result["r_drop"]           # importance over (feature, subject, time, channel)

What it costs: at the simulator's defaults (10 subjects, 800 words) each DRE pass takes about
30 s on two cores, and this study fits three DREs of 20 passes (the full model and its two
ablations) besides the linear baselines: about half an hour, said line by line with
``progress=print`` (without it, nothing is printed). The shipped result's size,
``simulate_reading(n_subjects=6, n_words=600, seed=0)`` without ablations, takes about 100 s.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "make_epochs": "._data", "check_epochs": "._data", "split_epochs": "._data",
    "load_epochs": "._data",
    "simulate_reading": ".synthetic", "READING_FEATURES": ".synthetic",
    "reaching_epochs": ".demo", "band_envelopes": ".demo",
    "DREConfig": ".dre", "DeepRecurrentEncoder": ".dre",
    "TRF": ".linear", "RTRF": ".linear",
    "correlation_map": ".evaluate", "post_onset_mean": ".evaluate", "time_course": ".evaluate",
    "permutation_importance": ".importance", "peak_latency": ".importance",
    "EncodingStudy": ".study",
    "EncodingStopped": ".study",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module 'core.encoding' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
