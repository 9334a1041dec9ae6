"""The convolutional dictionary of DUNL as linear operators (synthesis and its adjoint).

``synth`` maps codes to the signal, ``x -> sum_c h_c (*) x_c`` (the "full" convolution, a
code at index j puts kernel c on bins j..j+K-1); ``analysis`` is its adjoint (correlation
with the kernels). Both are differentiable in the kernels ``H`` (n_kernels, 1, K).

[A] Two implementations of the same operator, chosen for CPU speed:

* :class:`ConvOperator`: every code position (unknown timing). Short trials use a dense
  Toeplitz matrix built from ``H`` by a differentiable gather (two small matrix products per
  iteration, much faster on CPU than ``conv_transpose1d``); long trials use ``conv1d``.
* :class:`SupportOperator`: known timing. Only the support positions are variables, so the
  codes are (B, P) with P the largest number of (event, kernel) pairs of a sequence. This
  equals multiplying full codes by the support mask after every prox (METHODS.md 2.3) but
  costs P instead of C * n_codes per sequence.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["ConvOperator", "SupportOperator", "operator_norm_sq", "support_index"]


def operator_norm_sq(H: torch.Tensor, n_fft: int | None = None) -> float:
    """Squared operator norm of the synthesis: max over frequency of sum_c |FFT(h_c)|^2.

    Parameters
    ----------
    H : Tensor, shape (n_kernels, 1, kernel_length)
    n_fft : int, optional
        FFT length (default ``max(256, 8 * kernel_length)``, a fine sampling of the DTFT).
    """
    K = H.shape[-1]
    n_fft = n_fft or max(256, 8 * K)
    spec = torch.fft.rfft(H.detach().double().reshape(H.shape[0], K), n=n_fft)
    return float((spec.abs() ** 2).sum(0).max())


def support_index(support: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat code indices ``c * n_codes + j`` of a support, padded per sequence.

    Parameters
    ----------
    support : ndarray of bool, shape (B, n_kernels, n_codes)

    Returns
    -------
    index : ndarray of int64, shape (B, P)
    valid : ndarray of bool, shape (B, P)
    """
    flat = support.reshape(support.shape[0], -1)
    counts = flat.sum(1)
    P = max(int(counts.max()) if len(counts) else 0, 1)
    index = np.zeros((flat.shape[0], P), dtype=np.int64)
    valid = np.arange(P)[None, :] < counts[:, None]
    rows, cols = np.nonzero(flat)
    index[valid] = cols  # np.nonzero is row-major, matching the row-wise fill of ``valid``
    return index, valid


class ConvOperator:
    """All code positions. Codes (B, C, n_codes); signal (B, 1, T).

    Parameters
    ----------
    H : Tensor, shape (C, 1, K)
    n_times : int
    code_sign : tuple of int
        Per kernel: 1, -1 or 2 (two-sided).
    mask : Tensor, shape (B, C, n_codes), optional
        Multiplies the codes after every prox (a restricted support with unknown timing).
    """

    max_dense = 4_000_000  # entries of the Toeplitz matrix (16 MB in float32)

    def __init__(self, H: torch.Tensor, n_times: int, code_sign, mask=None):
        self.H = H
        C, _, K = H.shape
        self.C, self.K, self.T = C, K, n_times
        self.n_codes = n_times - K + 1
        self.mask = mask
        self.sign = torch.tensor(code_sign).view(1, C, 1)
        self.dense = C * self.n_codes * n_times <= self.max_dense
        if self.dense:
            lag = torch.arange(n_times)[None, :] - torch.arange(self.n_codes)[:, None]  # (codes, times)
            lag = torch.where((lag >= 0) & (lag < K), lag, torch.full_like(lag, K))
            h_ext = torch.cat([H.reshape(C, K), H.new_zeros(C, 1)], dim=1)  # (kernels, K + 1)
            self.D = h_ext[:, lag].reshape(C * self.n_codes, n_times)  # (kernels * codes, times)

    def zeros(self, B: int) -> torch.Tensor:
        return torch.zeros(B, self.C, self.n_codes)

    def synth(self, x: torch.Tensor) -> torch.Tensor:
        """Codes (B, C, n_codes) -> signal (B, 1, T)."""
        if self.dense:
            return (x.reshape(x.shape[0], -1) @ self.D).unsqueeze(1)
        w = self.H.flip(-1).transpose(0, 1)  # (1, kernels, K): transposed conv as correlation
        return F.conv1d(F.pad(x, (self.K - 1, self.K - 1)), w)

    def analysis(self, e: torch.Tensor) -> torch.Tensor:
        """Signal (B, 1, T) -> code domain (B, C, n_codes)."""
        if self.dense:
            return (e.reshape(e.shape[0], -1) @ self.D.T).reshape(e.shape[0], self.C, self.n_codes)
        return F.conv1d(e, self.H)

    def norm_sq(self) -> float:
        """Bound of the squared operator norm (a float for all sequences)."""
        return operator_norm_sq(self.H)

    def full(self, x: torch.Tensor) -> torch.Tensor:
        return x


class SupportOperator:
    """Known support only. Codes (B, P); signal (B, 1, T).

    Parameters
    ----------
    H : Tensor, shape (C, 1, K)
    n_times : int
    code_sign : tuple of int
    index, valid : Tensor, shape (B, P)
        From :func:`support_index`.
    """

    def __init__(self, H: torch.Tensor, n_times: int, code_sign, index: torch.Tensor,
                 valid: torch.Tensor):
        C, _, K = H.shape
        self.H, self.C, self.K, self.T = H, C, K, n_times
        self.n_codes = n_times - K + 1
        self.index = index
        self.mask = valid.float()
        kernel = index // self.n_codes  # (batch, P)
        start = index % self.n_codes
        lag = torch.arange(n_times)[None, None, :] - start[..., None]  # (batch, P, times)
        lag = torch.where((lag >= 0) & (lag < K), lag, torch.full_like(lag, K))
        h_ext = torch.cat([H.reshape(C, K), H.new_zeros(C, 1)], dim=1)  # (kernels, K + 1)
        self.D = h_ext[kernel[..., None].expand_as(lag), lag] * self.mask[..., None]  # (batch, P, times)
        self.sign = torch.tensor(code_sign)[kernel]

    def zeros(self, B: int) -> torch.Tensor:
        return torch.zeros(B, self.index.shape[1])

    def synth(self, x: torch.Tensor) -> torch.Tensor:
        """Codes (B, P) -> signal (B, 1, T)."""
        return torch.bmm(x.unsqueeze(1), self.D)

    def analysis(self, e: torch.Tensor) -> torch.Tensor:
        """Signal (B, 1, T) -> codes (B, P)."""
        return torch.bmm(self.D, e.transpose(1, 2)).squeeze(-1)

    def norm_sq(self) -> torch.Tensor:
        """Per-sequence squared norm (largest eigenvalue of the P x P Gram), shape (B, 1)."""
        with torch.no_grad():
            gram = torch.bmm(self.D, self.D.transpose(1, 2)).double()  # (batch, P, P)
            return torch.linalg.eigvalsh(gram)[:, -1:].clamp_min(1e-12).float()

    def full(self, x: torch.Tensor) -> torch.Tensor:
        """Scatter codes (B, P) into (B, C, n_codes)."""
        out = x.new_zeros(x.shape[0], self.C * self.n_codes)
        out = out.scatter_add(1, self.index, x * self.mask)
        return out.reshape(x.shape[0], self.C, self.n_codes)
