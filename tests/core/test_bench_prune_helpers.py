"""Helpers of ``unitscope bench prune`` that are not timed."""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.bench.prune import _spearman


def test_spearman_of_sensitivity_and_ablation_scores():
    a = np.array([0.1, 0.5, 0.3, 0.9, 0.7])
    assert _spearman(a, a ** 3) == pytest.approx(1.0)  # any increasing map: rank correlation 1
    assert _spearman(a, -a) == pytest.approx(-1.0)
    b = np.array([0.2, np.nan, 0.1, 0.4, 0.3])
    assert _spearman(a, b) == pytest.approx(_spearman(a[[0, 2, 3, 4]], b[[0, 2, 3, 4]]))  # NaN pairs dropped
    assert math.isnan(_spearman([1.0, np.nan], [2.0, 3.0]))  # too few pairs
