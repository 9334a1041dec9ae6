"""The ridge baseline on log band powers (core.baselines), and METHODS 1.9 item 2's first
expectation of a trained Deep4: a test r well above a ridge baseline on band powers, or at
least comparable."""
from __future__ import annotations

import numpy as np
import pytest

from core.baselines import band_power_features


def test_band_power_follows_an_amplitude_envelope_in_its_band_only():
    """A 20-Hz carrier whose amplitude steps from 1 to 3 at 10 s: the beta feature (13-30 Hz)
    rises by log(9) (power ratio), causally (within the FIR half-length and the 0.5-s window),
    and the other bands of that channel barely move; a silent second channel stays put."""
    sfreq, n = 250.0, 5000
    t = np.arange(n) / sfreq
    amp = np.where(t < 10, 1.0, 3.0)
    rng = np.random.default_rng(0)
    X = np.stack([amp * np.sin(2 * np.pi * 20 * t), np.zeros(n)]) + 1e-3 * rng.standard_normal((2, n))
    F = band_power_features(X, sfreq).reshape(n, 5, 2)          # (samples, bands, chans): band-major
    before, after = slice(int(3 * sfreq), int(8 * sfreq)), slice(int(13 * sfreq), int(18 * sfreq))
    beta = F[:, 2, 0]
    assert beta[after].mean() - beta[before].mean() == pytest.approx(np.log(9), abs=0.05)
    early = int(9.5 * sfreq)                                     # before the step, minus the FIR's reach
    assert np.ptp(beta[int(3 * sfreq):early]) < 0.1
    for band in (0, 1, 3, 4):                                    # other bands: far below the carrier's power
        assert F[after, band, 0].mean() < beta[after].mean() - 3
    assert abs(F[after, 2, 1].mean() - F[before, 2, 1].mean()) < 0.2


@pytest.mark.slow
def test_the_shipped_deep4_decodes_well_above_the_ridge_baseline():
    """METHODS 1.9 item 2 on the demo: the shipped Deep4's test r (0.970) against ridge on the
    log band powers of every channel, its penalty chosen on the validation block (0.864,
    alpha 3.2e4), scored on the same test samples."""
    import torch

    from core.baselines import ridge_baseline
    from core.workspace import Workspace

    torch.set_num_threads(1)
    ws = Workspace.demo()
    ridge = ridge_baseline(ws.data, ws.recording.sfreq)
    assert 0.7 < ridge["test_r"] < 0.95                          # the baseline decodes too: a fair reference
    assert ws.evaluate("test") > ridge["test_r"] + 0.05
