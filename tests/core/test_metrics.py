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


def test_a_balanced_accuracy_above_chance_by_luck_is_said_not_clearly_above_it():
    """Above 1/k but within what guessing gives on that many trials, a balanced accuracy gets
    a note with the binomial test's p (12 classes, 0.102 on 147 trials had no word); held to
    simulated decoders: guessing is called so on most draws, a decoder right 60% of the time
    on 4 classes never."""
    from core.cautions import NOT_CLEARLY, chance_note
    from core.cli._common import metric_cautions
    from core.metrics import balanced_accuracy

    note = chance_note("classification", 0.102, 12, 147)
    assert note == f"{NOT_CLEARLY}, 1/12 = 0.083, one-sided binomial p = 0.24 on 147 trials"
    assert chance_note("classification", 0.2, 12, 147) == ""  # 29 of 147 at 1/12: p < 1e-5
    assert chance_note("classification", 0.102, 12) == ""  # (no trial count: only at or below chance)
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 25)
    guessed = [chance_note("classification", balanced_accuracy(y, rng.integers(0, 4, y.size)), 4, y.size)
               for _ in range(300)]
    assert sum(bool(n) for n in guessed) / len(guessed) > 0.9  # (at or below chance, or not clearly above it)
    assert sum(n.startswith(NOT_CLEARLY) for n in guessed) > 50
    skilled = [balanced_accuracy(y, np.where(rng.random(y.size) < 0.6, y, rng.integers(0, 4, y.size)))
               for _ in range(100)]
    assert all(chance_note("classification", m, 4, y.size) == "" for m in skilled)
    said = metric_cautions("classification", {"test": 0.102, "n_test": 147, "n_test_classes": 12})
    assert said == [f"test balanced_accuracy 0.1020 is {note}: the decoder may predict no better than chance on "
                    "the test block"]


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
