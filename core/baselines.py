"""Classic baseline: ridge regression on log band-power features (same blocks, same samples).

For every sample the decoder predicts, the features are the log of the causal, smoothed
power of each channel in the bands delta/theta (1-7 Hz), alpha (7-13), beta (13-30),
low gamma (30-60) and high gamma (60-120, clipped below Nyquist): band-pass (zero-phase
FIR, MNE), square, then a causal moving average over ``win_s`` seconds, so the feature at t
uses only the signal up to t (plus the FIR's symmetric half-length) like the causal decoder.
The ridge penalty is chosen on the validation block.
"""
from __future__ import annotations

import numpy as np

from .metrics import pearson_r

__all__ = ["band_power_features", "ridge_baseline", "BASELINE_BANDS"]

BASELINE_BANDS = ((1.0, 7.0), (7.0, 13.0), (13.0, 30.0), (30.0, 60.0), (60.0, 120.0))


def band_power_features(X: np.ndarray, sfreq: float, *, win_s: float = 0.5) -> np.ndarray:
    """Log band power per channel and band.

    Parameters
    ----------
    X : ndarray, shape (n_chans, n_samples)
    sfreq : float
        Sampling frequency in Hz.

    Returns
    -------
    feats : ndarray, shape (n_samples, n_chans * n_bands)
    """
    import mne

    win = max(int(win_s * sfreq), 1)
    feats = []
    for lo, hi in BASELINE_BANDS:
        hi = min(hi, sfreq / 2 - 1.0)
        if lo >= hi:
            continue
        xb = mne.filter.filter_data(X.astype(np.float64), sfreq, lo, hi, verbose="error")
        power = np.cumsum(xb**2, axis=1)
        power[:, win:] = power[:, win:] - power[:, :-win]  # causal moving sum over win samples
        power[:, :win] /= np.arange(1, win + 1)
        power[:, win:] /= win
        feats.append(np.log(power + 1e-8))
    return np.concatenate(feats).T  # (samples, chans * bands)


def ridge_baseline(data, sfreq: float, *, alphas=np.logspace(-1, 5, 13)) -> dict:
    """Fit ridge on the training block, choose alpha on valid, report test r.

    ``data`` is a :class:`core.decoding.ContinuousData`; the samples scored are exactly the
    ones the dense decoder predicts on each block (``eval_set`` alignment).
    """
    from sklearn.linear_model import Ridge

    F = band_power_features(data.X, sfreq)
    rf = data.receptive_field

    def rows(block):
        starts = data.window_starts(block)
        idx = (starts[:, None] + rf - 1 + np.arange(data.n_preds)[None]).ravel()
        return F[idx], data.y[idx]

    (Ftr, ytr), (Fva, yva), (Fte, yte) = rows("train"), rows("valid"), rows("test")
    mu, sd = Ftr.mean(0), Ftr.std(0) + 1e-8
    Ftr, Fva, Fte = (Ftr - mu) / sd, (Fva - mu) / sd, (Fte - mu) / sd
    best = max(alphas, key=lambda a: pearson_r(Ridge(alpha=a).fit(Ftr, ytr).predict(Fva), yva))
    model = Ridge(alpha=best).fit(Ftr, ytr)
    return {"alpha": float(best), "valid_r": pearson_r(model.predict(Fva), yva),
            "test_r": pearson_r(model.predict(Fte), yte)}
