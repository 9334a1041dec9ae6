"""Validity check: the decoding metric on perturbed inputs relative to unperturbed."""
import numpy as np
import pytest
import torch

from core._validation import UnitScopeError
from core.metrics import pearson_r
from core.probing import AmplitudeProbe, PhaseProbe, ProbeRun
from core.probing.validity import ValidityCheck, decoding_metric

from probing_toys import SFREQ, BandpassUnit


def test_decoding_metric(rng):
    pred = rng.standard_normal((5, 1, 20))
    y = pred[:, 0] + 0.5 * rng.standard_normal((5, 20))
    assert decoding_metric("regression", pred, y) == pytest.approx(pearson_r(pred[:, 0], y))
    with pytest.raises(UnitScopeError, match=r"do not match the predictions \(5, 20\)"):
        decoding_metric("regression", pred, y[:, :10])
    scores = np.zeros((4, 2, 3))
    scores[[0, 1], 0] = 1.0
    scores[[2, 3], 1] = 1.0
    assert decoding_metric("classification", scores, np.array([0, 0, 1, 1])) == 1.0
    assert decoding_metric("classification", scores, np.array([1, 1, 0, 0])) == 0.0


def test_validity_check_ratio(rng):
    pred = rng.standard_normal((6, 1, 30))
    check = ValidityCheck("regression", pred[:, 0], pred)
    assert check.reference == pytest.approx(1.0) and np.isnan(check.ratio)
    assert check.update(pred) == pytest.approx(1.0)
    check.update(pred + rng.standard_normal(pred.shape))
    assert 0.5 < check.ratio < 1.0 and not check.valid


def _ratio(tones, noise_scale):
    model = BandpassUnit(square=True)
    with torch.no_grad():
        y = model(torch.as_tensor(tones))[:, 0].numpy()  # the unit's own output as target
    amp = AmplitudeProbe(model, sfreq=SFREQ, layers=model.layers, n_iterations=3, rng=0,
                         noise_scale=noise_scale)
    phase = PhaseProbe(model, sfreq=SFREQ, layers=model.layers, n_iterations=3, rng=1)
    ds = ProbeRun([amp, phase], tones, y=y).run()
    assert ds.attrs["metric_unperturbed"] == pytest.approx(1.0)
    return float(ds["amp_validity"]), float(ds["phase_validity"])


def test_validity_reported_with_every_probe_and_falls_with_noise(tones):
    small, phase = _ratio(tones, 0.1)
    large, _ = _ratio(tones, 3.0)
    assert 0.95 < small <= 1.0
    assert large < small
    # a power unit does not care about phase: its output survives phase perturbation
    assert phase > 0.9


def test_without_targets_the_ratio_is_nan(tones):
    model = BandpassUnit()
    ds = AmplitudeProbe(model, sfreq=SFREQ, layers=model.layers, n_iterations=1).run(tones)
    assert np.isnan(float(ds["amp_validity"]))
