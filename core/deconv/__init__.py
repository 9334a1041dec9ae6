"""Deconvolution of event-locked signals: DUNL (Tolooshams et al. 2025; METHODS.md 2).

* :class:`DeconvConfig`, :class:`DUNL`: unrolled (F)ISTA convolutional sparse coding with
  learned unit-norm kernels, Gaussian / Poisson / Bernoulli likelihoods, known or unknown
  event timing.
* :func:`simulate_a`, :func:`simulate_b`: validation generators with ground truth.
* :func:`kernel_error`, :func:`detection_rates`, :func:`r2`: the metrics of METHODS.md 2.6.
* :class:`EventDeconvolution`: applied to a decoder's output, a unit's activation or a
  channel's band envelope, with warm-started refits after pruning.
"""
from .apply import EventDeconvolution
from .signals import BANDS, SignalSpec, band_envelope, parse_signal
from .config import DeconvConfig
from .likelihoods import get_likelihood
from .metrics import detection_rates, kernel_error, r2, upsample_kernel
from .simulate import Simulation, simulate_a, simulate_b
from .unrolled import DUNL, estimate_baseline, operator_norm_sq, support_from_onsets

__all__ = [
    "DeconvConfig", "DUNL", "get_likelihood", "support_from_onsets", "estimate_baseline",
    "operator_norm_sq", "Simulation", "simulate_a", "simulate_b", "kernel_error",
    "detection_rates", "r2", "upsample_kernel", "EventDeconvolution", "SignalSpec", "parse_signal",
    "band_envelope", "BANDS",
]
