"""Step-by-step execution of a sequential decoder, with fast 1-D paths.

braindecode 0.8's Deep4Net and ShallowFBCSPNet are ``nn.Sequential`` subclasses whose forward
is the plain chain of their children, so in eval mode the network is a list of steps and any
intermediate tensor can be cached. Tensors keep the model's own layout,
(batch, units, times, 1). Convs and pools with (K, 1) kernels and stride 1 (every one of a
dense Deep4Net) run as their 1-D equivalents on the squeezed view, which oneDNN executes
several times faster than the 2-D (K, 1) form; everything else runs the module itself.
:func:`check_steps` compares the result with ``model(X)`` so a conversion error can never go
unnoticed.
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Step", "build_steps", "run_steps", "check_steps"]

SMALL_OUT = 16  # convs with fewer output channels run as per-tap matrix products

logger = logging.getLogger(__name__)


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


class Step:
    """One leaf module of the chain, callable on (batch, chans, times, 1) tensors.

    ``kind`` is ``"skip"`` (dropout/identity: the identity in eval mode), ``"conv"`` (a
    (K, 1) convolution run as ``conv1d``; ``weight1d`` has shape (n_out, n_in, K)),
    ``"pool"`` (a (K, 1) max/avg pool run as its 1-D form), ``"combined"`` (braindecode's
    ``CombinedConv``: temporal and spatial convs merged) or ``"module"`` (the module itself).
    """

    def __init__(self, path: str, module: nn.Module, *, fast: bool = True):
        self.path, self.module = path, module
        self.kind = "module"
        if isinstance(module, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.Identity)):
            self.kind = "skip"
        elif fast and isinstance(module, nn.Conv2d) and self._conv_ok(module):
            self.kind = "conv"
            self.weight1d = module.weight.detach()[..., 0].contiguous()  # (n_out, n_in, K)
            self.bias = None if module.bias is None else module.bias.detach()
            self.dilation = int(module.dilation[0])
        elif fast and isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)) and self._pool_ok(module):
            self.kind = "pool"
            self.k = _pair(module.kernel_size)[0]
            self.dilation = _pair(getattr(module, "dilation", 1))[0]
        elif fast and type(module).__name__ == "CombinedConv":
            self.kind = "combined"
            with torch.no_grad():  # CombinedConv.forward's merge of the two convs
                w = (module.conv_time.weight * module.conv_spat.weight.permute(1, 0, 2, 3)).sum(0)  # (out, K, C)
                bias = None
                if module.bias_time or module.bias_spat:
                    bias = 0
                    if module.bias_time:
                        bias = bias + module.conv_spat.weight.squeeze().sum(-1).mm(
                            module.conv_time.bias.unsqueeze(-1)).squeeze()
                    if module.bias_spat:
                        bias = bias + module.conv_spat.bias
            self.weight1d = w.permute(0, 2, 1).contiguous()  # (n_out, n_chans, K)
            self.bias = None if bias is None else bias.detach()
            self.dilation = 1

    @staticmethod
    def _conv_ok(m: nn.Conv2d) -> bool:
        return (m.kernel_size[1] == 1 and tuple(m.stride) == (1, 1) and m.groups == 1
                and m.padding in ((0, 0), "valid") and m.dilation[1] == 1 and m.padding_mode == "zeros")

    @staticmethod
    def _pool_ok(m) -> bool:
        k, s, p = _pair(m.kernel_size), _pair(m.stride if m.stride is not None else m.kernel_size), _pair(m.padding)
        if k[1] != 1 or s != (1, 1) or p != (0, 0) or m.ceil_mode:
            return False
        if isinstance(m, nn.MaxPool2d):
            return not m.return_indices and _pair(m.dilation)[1] == 1
        return m.divisor_override is None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        kind = self.kind
        if kind == "skip":
            return x
        if kind == "conv" and x.dim() == 4 and x.shape[-1] == 1:
            if self.weight1d.shape[0] < SMALL_OUT:
                return _conv_taps(x[..., 0], self.weight1d, self.bias, self.dilation).unsqueeze(-1)
            return F.conv1d(x[..., 0], self.weight1d, self.bias, dilation=self.dilation).unsqueeze(-1)
        if kind == "pool" and x.dim() == 4 and x.shape[-1] == 1:
            if isinstance(self.module, nn.MaxPool2d):
                y = F.max_pool1d(x[..., 0], self.k, stride=1, dilation=self.dilation)
            else:
                y = F.avg_pool1d(x[..., 0], self.k, stride=1, count_include_pad=self.module.count_include_pad)
            return y.unsqueeze(-1)
        if kind == "combined" and x.dim() == 4 and x.shape[1] == 1:
            x1 = x[:, 0].transpose(1, 2)  # (batch, chans, times)
            return F.conv1d(x1, self.weight1d, self.bias).unsqueeze(-1)  # (batch, units, times, 1)
        return self.module.forward(x)  # bypasses hooks: masks are applied by the evaluator

    def fuse_batchnorm(self, bn: nn.Module) -> "Step":
        """A ``"conv"`` step with the eval-mode BatchNorm ``bn`` that follows it folded in
        (BN is affine per channel: ``scale * conv(x) + shift``), so the pair costs one pass."""
        with torch.no_grad():
            scale = 1.0 / torch.sqrt(bn.running_var + bn.eps)
            if bn.affine:
                scale = scale * bn.weight
            shift = -bn.running_mean * scale
            if bn.affine:
                shift = shift + bn.bias
            fused = Step(f"{self.path}+{bn.__class__.__name__}", self.module, fast=True)
            fused.weight1d = (self.weight1d * scale.view(-1, 1, 1)).contiguous()
            fused.bias = shift if self.bias is None else self.bias * scale + shift
        return fused

    def partial(self, x_sub: torch.Tensor, idx) -> torch.Tensor:
        """Contribution of the input channels ``idx`` alone (no bias), for a ``"conv"`` step.

        ``x_sub`` has shape (batch, len(idx), times, 1); the result (batch, n_out, times', 1).
        """
        w = self.weight1d.index_select(1, idx)  # (n_out, n_idx, K)
        x = x_sub[..., 0]  # (batch, n_idx, times)
        n_idx, K = w.shape[1], w.shape[2]
        if n_idx * K > 64:
            return F.conv1d(x, w, None, dilation=self.dilation).unsqueeze(-1)
        # few input channels: one GEMM on the stacked shifted inputs (oneDNN is slow here)
        n_t = x.shape[2] - (K - 1) * self.dilation
        cols = torch.stack([x[:, :, k * self.dilation:k * self.dilation + n_t] for k in range(K)], dim=2)  # (batch, n_idx, K, times')
        return torch.matmul(w.reshape(w.shape[0], n_idx * K), cols.reshape(x.shape[0], n_idx * K, n_t)).unsqueeze(-1)


def _conv_taps(x: torch.Tensor, w: torch.Tensor, bias, dilation: int) -> torch.Tensor:
    """conv1d as a sum over taps of (n_out, n_in) @ (batch, n_in, times') products.

    oneDNN is slow for convolutions with very few output channels (the classifier has one);
    there, K matrix-vector products reading the input K times are ~20x faster.
    """
    K = w.shape[2]
    n_out_t = x.shape[2] - (K - 1) * dilation
    out = torch.matmul(w[:, :, 0], x[:, :, :n_out_t])  # (batch, n_out, times')
    for k in range(1, K):
        out += torch.matmul(w[:, :, k], x[:, :, k * dilation:k * dilation + n_out_t])
    if bias is not None:
        out += bias.view(1, -1, 1)
    return out


def _leaves(module: nn.Module, prefix: str = ""):
    for name, child in module.named_children():
        path = f"{prefix}{name}"
        if isinstance(child, nn.Sequential):
            yield from _leaves(child, f"{path}.")
        else:
            yield path, child


def build_steps(model: nn.Module, *, fast: bool = True) -> list[Step]:
    """Flatten a sequential ``model`` (nested ``nn.Sequential`` included) into steps."""
    return [Step(path, m, fast=fast) for path, m in _leaves(model)]


def run_steps(steps, x: torch.Tensor) -> torch.Tensor:
    for step in steps:
        x = step(x)
    return x


@torch.no_grad()
def check_steps(model: nn.Module, steps: list[Step], X: torch.Tensor) -> bool:
    """True if the chain of ``steps`` reproduces ``model(X)`` (eval mode) within float tolerance."""
    expected = model(X)
    actual = run_steps(steps, X)
    if expected.shape != actual.shape:
        logger.warning("step chain output %s differs from model output %s", tuple(actual.shape), tuple(expected.shape))
        return False
    scale = float(expected.abs().max()) + 1e-12
    return bool(torch.allclose(actual, expected, rtol=1e-4, atol=1e-5 * scale))
