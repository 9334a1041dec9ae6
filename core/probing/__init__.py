"""Amplitude and phase perturbation probing of decoder units (METHODS.md 1.2-1.10).

Hammer et al. 2022 (J. Neural Eng. 19:036006), built on Schirrmeister et al. 2017 (amplitude
perturbation) and Hartmann et al. 2018 (phase perturbation, layer-wise analysis).
"""
from ._base import Probe, resolve_layers
from ._run import ProbeRun
from .amplitude import AmplitudeProbe
from .bands import BANDS, resolve_bands
from .phase import PhaseProbe
from .pipeline import ProbeConfig, probe_units, start_probe, untrained_twin
from .stats import CLASSES, class_fractions, classify, ground_truth_auc
from .validity import ValidityCheck

__all__ = ["AmplitudeProbe", "PhaseProbe", "Probe", "ProbeRun", "ProbeConfig", "probe_units",
           "start_probe", "untrained_twin", "classify", "class_fractions", "ground_truth_auc",
           "CLASSES", "BANDS", "resolve_bands", "resolve_layers", "ValidityCheck"]
