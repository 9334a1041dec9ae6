"""Decoding and ranking metrics."""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.metrics import pearson_r, spearman_r


def test_spearman_of_sensitivity_and_ablation_scores():
    a = np.array([0.1, 0.5, 0.3, 0.9, 0.7])
    assert spearman_r(a, a ** 3) == pytest.approx(1.0)  # any increasing map: rank correlation 1
    assert pearson_r(a, a ** 3) < 0.99  # unlike Pearson's
    assert spearman_r(a, -a) == pytest.approx(-1.0)
    b = np.array([0.2, np.nan, 0.1, 0.4, 0.3])
    assert spearman_r(a, b) == pytest.approx(spearman_r(a[[0, 2, 3, 4]], b[[0, 2, 3, 4]]))  # NaN pairs dropped
    assert math.isnan(spearman_r([1.0, np.nan], [2.0, 3.0]))  # too few pairs
