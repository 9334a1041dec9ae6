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


def test_chance_level_and_note():
    """Chance is r 0 for a trace and 1 / the classes present for balanced accuracy; a score at or
    below it, or a NaN (a constant output), gets a note; one above it gets none."""
    from core.cautions import chance_note
    from core.metrics import balanced_accuracy, chance_level

    assert chance_level("regression") == 0.0 and chance_level("classification", 8) == 0.125
    assert math.isnan(chance_level("classification", 0))
    # a decoder that always says the first class: balanced accuracy is exactly chance
    y = np.repeat(np.arange(4), 5)
    assert balanced_accuracy(y, np.zeros_like(y)) == chance_level("classification", 4)
    assert chance_note("classification", 0.25, 4) == "at or below chance, 1/4 = 0.250"
    assert chance_note("classification", 0.0, 8) == "at or below chance, 1/8 = 0.125"
    assert chance_note("classification", 0.3, 4) == ""
    assert chance_note("regression", -0.21) == "at or below chance, r = 0"
    assert chance_note("regression", 0.0) != "" and chance_note("regression", 0.05) == ""
    assert chance_note("regression", float("nan")) == "undefined: the output does not vary"
    # a test block of one class: its balanced accuracy is that class's recall (0 or 1 alike were
    # "at or below chance, 1/1 = 1.000"), and few trials are said
    from core.cautions import ONE_CLASS, trials_note

    assert chance_note("classification", 1.0, 1) == chance_note("classification", 0.0, 1) == ONE_CLASS
    assert "one class only" in ONE_CLASS
    assert trials_note("classification", 3) == "on 3 test trials: very uncertain"
    assert trials_note("classification", 1) == "on 1 test trial: very uncertain"
    assert trials_note("classification", 20) == trials_note("regression", 3) == trials_note("classification", None) == ""
    from core.cli._common import metric_cautions, metric_chance_caution

    said = metric_cautions("classification", {"test": 0.0, "n_test": 25, "n_test_classes": 1})
    assert said == [f"test balanced_accuracy 0.0000 is {ONE_CLASS}: what the decoder learnt is not measured"]
    caution = metric_chance_caution("classification", 1.0, [2, 2, 2], "valid", "balanced_accuracy", doing="pruning")
    assert "the valid block holds trials of one class only" in caution and "not above chance" not in caution
    with pytest.raises(Exception, match="task"):
        chance_level("regresion")
