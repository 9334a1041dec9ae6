"""Amplitude perturbation probe (Schirrmeister et al. 2017; Hammer et al. 2022; METHODS.md 1.2, 1.6).

Each iteration adds Gaussian noise to the Fourier amplitudes of every window, channel and
frequency bin, keeps the phases, transforms back, and takes the change of each unit's
time-mean activation. The probe correlates, across windows, the noise of each
(channel, bin) with that change.

Conventions:

* response = mean_t(perturbed) - mean_t(original) (braindecode's "new - orig" [B]; Hammer's
  script uses "orig - perturbed" [J], which flips every sign). A positive r means that more
  amplitude in that (channel, bin) raises the unit's mean activation.
* amplitudes are clipped at 0 after adding the noise; the perturbation value correlated is
  the *effective* noise after clipping [B] (Hammer's script uses the raw draw [J]).
* noise scale (METHODS 1.10): ``noise="std"`` (default) [A] draws the noise of bin (c, f) as
  ``noise_scale * sd_w(|Z[w, c, f]|) * N(0, 1)``, the spread of that bin's amplitude over the
  probed windows, so every bin is perturbed by the same fraction of its natural variation
  whatever the data units, window length and spectral slope (braindevel's ``rand_std``);
  ``"mad"`` uses 1.4826 x the median absolute deviation (``rand_mad``); ``"raw"`` is the
  seed paper's N(0, 1) in raw rfft-amplitude units times ``noise_scale``. Correlations are
  scale-free for a linear response; the scale only sets how far the input moves (see the
  validity check).
"""
from __future__ import annotations

import numpy as np
import torch

from .._validation import check_option, check_range
from ._base import Probe

__all__ = ["AmplitudeProbe", "NOISE_REFS"]

NOISE_REFS = ("std", "mad", "raw")


class AmplitudeProbe(Probe):
    """Correlate Fourier-amplitude noise with the change of each unit's mean activation.

    Parameters
    ----------
    model, sfreq, layers, site, n_iterations, batch_size, n_null, bands, resolution, rng
        See :class:`~core.probing._base.Probe`.
    noise : {"std", "mad", "raw"}
        Per-(channel, bin) reference of the noise scale, see the module docstring.
    noise_scale : float
        Multiplier of the reference (default 0.5 [A], chosen so that the decoding metric on
        perturbed windows stays >= 95 % of the unperturbed one on the demo).

    Examples
    --------
    >>> probe = AmplitudeProbe(model, sfreq=250.0, n_iterations=30)  # doctest: +SKIP
    >>> ds = probe.run(X)  # X: (n_windows, n_chans, n_times)           # doctest: +SKIP
    >>> ds["amp_corr"].sel(unit="conv_3/7")                           # doctest: +SKIP
    """

    method = "amplitude"
    prefix = "amp"

    def __init__(self, model, *, noise: str = "std", noise_scale: float = 0.5, **kwargs):
        super().__init__(model, **kwargs)
        self.noise = check_option("noise", noise, NOISE_REFS)
        self.noise_scale = float(check_range("noise_scale", float(noise_scale), low=0, low_inclusive=False))

    def _prepare(self, Z: torch.Tensor, n_times: int) -> dict:
        M = Z.abs()  # (W, C, F)
        if self.noise == "std":
            ref = M.std(dim=0)  # (C, F)
        elif self.noise == "mad":
            ref = 1.4826 * (M - M.median(dim=0).values).abs().median(dim=0).values
        else:
            ref = torch.ones(M.shape[1:])
        unit = torch.where(M > 0, Z / M.clamp_min(1e-30), torch.ones_like(Z))  # e^{i phi}
        return {"M": M, "unit": unit, "sigma": (self.noise_scale * ref).float()}

    def _perturb(self, state: dict, Z: torch.Tensor, rng: np.random.Generator):
        M = state["M"]
        E = torch.from_numpy(rng.standard_normal(M.shape, dtype=np.float32)) * state["sigma"]
        Mp = (M + E).clamp_min(0)  # (W, C, F) amplitudes stay >= 0
        return Mp * state["unit"], (Mp - M).reshape(M.shape[0], -1)  # effective noise (W, C*F)

    def _response(self, act: torch.Tensor, orig: dict, rows: slice) -> torch.Tensor:
        return act.mean(-1) - orig["mean"]  # (B, U): new - orig

    def _attrs(self) -> dict:
        return {"noise": self.noise, "noise_scale": self.noise_scale,
                "sign": "response = mean_t(perturbed) - mean_t(original)"}
