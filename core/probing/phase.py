"""Phase perturbation probe (Hartmann et al. 2018; Hammer et al. 2022; METHODS.md 1.3, 1.6).

Each iteration adds a random shift to the Fourier phase of every window and frequency bin,
keeps the amplitudes, transforms back, and takes for each unit the Pearson correlation over
time between its original and its perturbed activation. The probe correlates, across
windows, |shift| of each (channel, bin) with that similarity. A phase-sensitive unit gives
r < 0 (a larger shift, a less similar time course); a linear unit passing one frequency gives
r = -2 sqrt(24) / pi^2 = -0.9927 at that frequency.

Conventions:

* shifts are uniform on (-pi, pi) (the braindecode code [B]; the thesis text's "N(0, pi)"
  is not used);
* ``variant="channel"`` (default, Hammer's ``_chnls`` script [J]) draws an independent
  shift per channel, so the map resolves channels; ``variant="shared"`` (Hartmann,
  braindecode [B]) applies one shift per window and bin to all channels, keeping
  inter-channel phase relations, and its map is the same for every channel;
* DC and Nyquist bins are neither shifted nor reported (NaN): ``irfft`` keeps only the
  real part there, turning a phase shift into an amplitude change (METHODS 1.10).
"""
from __future__ import annotations

import numpy as np
import torch

from .._validation import check_option
from ._base import Probe, similarity
from .bands import phase_excluded

__all__ = ["PhaseProbe", "PHASE_VARIANTS"]

PHASE_VARIANTS = ("channel", "shared")


class PhaseProbe(Probe):
    """Correlate |Fourier-phase shift| with each unit's original/perturbed time-course similarity.

    Parameters
    ----------
    model, sfreq, layers, site, n_iterations, batch_size, n_null, bands, resolution, rng
        See :class:`~core.probing._base.Probe`.
    variant : {"channel", "shared"}
        Independent shift per channel, or one shift shared by all channels.
    """

    method = "phase"
    prefix = "phase"
    needs_timecourses = True

    def __init__(self, model, *, variant: str = "channel", **kwargs):
        super().__init__(model, **kwargs)
        self.variant = check_option("variant", variant, PHASE_VARIANTS)

    def _channel_resolved(self) -> bool:
        return self.variant == "channel"

    def _excluded(self, freqs: np.ndarray, n_times: int) -> np.ndarray:
        return phase_excluded(len(freqs), n_times)  # DC and Nyquist

    def _prepare(self, Z: torch.Tensor, n_times: int) -> dict:
        keep = ~torch.from_numpy(self._excluded(np.arange(Z.shape[-1]), n_times))  # (F,)
        return {"keep": keep.float()}

    def _perturb(self, state: dict, Z: torch.Tensor, rng: np.random.Generator):
        W, C, F = Z.shape
        shape = (W, C if self.variant == "channel" else 1, F)
        delta = torch.from_numpy(rng.uniform(-np.pi, np.pi, size=shape).astype(np.float32))
        delta = delta * state["keep"]  # no shift at DC / Nyquist
        Zp = Z * torch.polar(torch.ones_like(delta), delta)  # (W, C, F): phase + delta
        return Zp, delta.abs().reshape(W, -1)  # |shift| (W, C*F) or (W, F)

    def _response(self, act: torch.Tensor, orig: dict, rows: slice) -> torch.Tensor:
        return similarity(orig["tc"], act, orig["tc_sum"])  # (B, U): Pearson r over time

    def _attrs(self) -> dict:
        return {"variant": self.variant, "shift": "uniform(-pi, pi)",
                "excluded": "DC and Nyquist bins (NaN)"}
