"""Hand-checkable units and inputs for the perturbation probes (analytic ground truth)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core.models import LayerInfo

SFREQ, N_TIMES, N_WINDOWS, N_CHANS, F0 = 128.0, 256, 160, 3, 10.0
KERNEL_LEN = 64


class BandpassUnit(nn.Module):
    """One unit: an FIR band-pass at F0 on one channel; optionally squared and smoothed."""

    def __init__(self, n_chans: int = N_CHANS, channel: int = 0, square: bool = False):
        super().__init__()
        k = np.hanning(KERNEL_LEN) * np.cos(2 * np.pi * F0 * np.arange(KERNEL_LEN) / SFREQ)
        self.conv = nn.Conv1d(n_chans, 1, KERNEL_LEN, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, channel] = torch.as_tensor(k / np.abs(k).sum(), dtype=torch.float32)
        self.square = square
        self.smooth = nn.AvgPool1d(32, stride=1)  # a power envelope over ~2.5 cycles of F0
        self.out = nn.Identity()
        self.eval()

    def forward(self, x):
        a = self.conv(x)  # (batch, 1, times)
        if self.square:
            a = self.smooth(a ** 2)
        return self.out(a)

    @property
    def layers(self):
        rf = KERNEL_LEN + (31 if self.square else 0)
        return [LayerInfo("unit", "out", "out", "out", 1, rf)]


def tone_windows(seed: int = 0, n_windows: int = N_WINDOWS) -> np.ndarray:
    """Windows (W, C, T): a bin-centred F0 tone of random amplitude and phase on channel 0
    plus weak white noise on every channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(N_TIMES) / SFREQ
    X = 0.05 * rng.standard_normal((n_windows, N_CHANS, N_TIMES))
    amp = rng.uniform(0.5, 1.5, n_windows)
    phase = rng.uniform(-np.pi, np.pi, n_windows)
    X[:, 0] += amp[:, None] * np.cos(2 * np.pi * F0 * t[None] + phase[:, None])
    return X.astype(np.float32)




class NoiseUnits(nn.Module):
    """Units whose activations are fresh noise, unrelated to the input (the null hypothesis)."""

    def __init__(self, n_units: int = 20, seed: int = 0, n_constant: int = 0):
        super().__init__()
        self.n_units, self.n_constant = n_units, n_constant  # constant units (dead ones) after the noise
        self.generator = torch.Generator().manual_seed(seed)
        self.out = nn.Identity()
        self.eval()

    def forward(self, x):
        noise = torch.randn(x.shape[0], self.n_units, 50, generator=self.generator)
        constant = torch.ones(x.shape[0], self.n_constant, 50)
        return self.out(torch.cat([noise, constant], 1) + 0 * x[:, :1, :50])

    @property
    def layers(self):
        return [LayerInfo("noise", "out", "out", "out", self.n_units + self.n_constant, 1)]


def _bandpass(f0: float) -> torch.Tensor:
    k = np.hanning(KERNEL_LEN) * np.cos(2 * np.pi * f0 * np.arange(KERNEL_LEN) / SFREQ)
    return torch.as_tensor(k / np.abs(k).sum(), dtype=torch.float32)


class FourClassUnits(nn.Module):
    """Four units with known classes on ``two_tone_windows``.

    0 amplitude: power of channel 0 at 10 Hz; 1 phase: channel 1 band-passed at 30 Hz;
    2 bimodal: channel 0 band-passed at 10 Hz plus the power of channel 1 at 30 Hz;
    3 insensitive: constant.
    """

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(N_CHANS, 2, KERNEL_LEN, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0] = _bandpass(F0)
            self.conv.weight[1, 1] = _bandpass(3 * F0)
        self.smooth = nn.AvgPool1d(32, stride=1)
        self.out = nn.Identity()
        self.eval()

    def forward(self, x):
        a = self.conv(x)[..., 31:]  # (batch, 2, times), cropped to the smoothed length
        power = self.smooth(self.conv(x) ** 2)  # (batch, 2, times)
        units = [power[:, 0], a[:, 1], a[:, 0] + 4 * power[:, 1], torch.zeros_like(a[:, 0])]
        return self.out(torch.stack(units, dim=1))  # (batch, 4, times)

    @property
    def layers(self):
        return [LayerInfo("toy", "out", "out", "out", 4, KERNEL_LEN + 31)]


def two_tone_windows(seed: int = 0, n_windows: int = N_WINDOWS) -> np.ndarray:
    """Pure tones of random amplitude and phase: F0 on channel 0, 3 F0 on channel 1; noise on 2.

    Without noise beside the tones, a power unit has no envelope fluctuations (beats between
    the tone and nearby bins), whose shape would make it phase-sensitive too.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(N_TIMES) / SFREQ
    X = np.zeros((n_windows, N_CHANS, N_TIMES))
    X[:, 2] = rng.standard_normal((n_windows, N_TIMES))
    for ch, f in ((0, F0), (1, 3 * F0)):
        amp = rng.uniform(0.5, 1.5, n_windows)
        phase = rng.uniform(-np.pi, np.pi, n_windows)
        X[:, ch] += amp[:, None] * np.cos(2 * np.pi * f * t[None] + phase[:, None])
    return X.astype(np.float32)
