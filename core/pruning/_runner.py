"""Step-by-step execution of a sequential decoder, with fast paths for (K, 1) layers.

braindecode 0.8's Deep4Net and ShallowFBCSPNet are ``nn.Sequential`` subclasses whose forward
is the plain chain of their children, so in eval mode the network is a list of steps and any
intermediate tensor can be cached. Tensors keep the model's logical shape
(batch, units, times, 1); the fast steps store them *channels-last*, i.e. time-major
(batch, times, units) in memory, where

* a (K, 1) convolution runs as oneDNN's channels-last conv2d (faster than the default
  layout and than conv1d on 2 cores), or, with fewer than ``SMALL_OUT`` output channels
  (the classifier), as K matrix products over shifted time slices;
* a (K, 1) max-pool with stride 1 is the elementwise max of K shifted slices;
* the contribution of a few input channels (incremental updates) is one GEMM on their
  stacked shifted slices.

Everything else runs the module's own ``forward`` (hooks bypassed: masks are applied by the
caller). :func:`check_steps` compares the chain with ``model(X)`` so a conversion error can
never go unnoticed.
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Step", "PoolThenElu", "build_steps", "optimize_chain", "run_steps", "check_steps", "SMALL_OUT"]

logger = logging.getLogger(__name__)
SMALL_OUT = 16  # convs with fewer output channels run as per-tap matrix products
CL = torch.channels_last


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _time_major(x: torch.Tensor) -> torch.Tensor:
    """(batch, chans, times, 1) -> its (batch, times, chans) channels-last storage (a view)."""
    if not x.is_contiguous(memory_format=CL):
        x = x.contiguous(memory_format=CL)
    return x.permute(0, 2, 3, 1)[:, :, 0, :]  # (batch, times, chans)


def _from_time_major(t: torch.Tensor) -> torch.Tensor:
    """(batch, times, chans) contiguous -> (batch, chans, times, 1) channels-last view."""
    return t.permute(0, 2, 1).unsqueeze(-1)


class Step:
    """One leaf module of the chain, callable on (batch, chans, times, 1) tensors.

    ``kind`` is ``"skip"`` (dropout/identity: the identity in eval mode), ``"conv"`` (a (K, 1)
    convolution; ``weight1d`` has shape (n_out, n_in, K)), ``"pool"`` (a (K, 1) max-pool,
    stride 1), ``"combined"`` (braindecode's ``CombinedConv``: temporal and spatial convs
    merged) or ``"module"`` (the module's own forward).
    """

    def __init__(self, path: str, module: nn.Module, *, fast: bool = True):
        self.path, self.module = path, module
        self.kind = "module"
        if isinstance(module, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.Identity)):
            self.kind = "skip"
        elif fast and isinstance(module, nn.Conv2d) and self._conv_ok(module):
            self.kind = "conv"
            self._set_weights(module.weight.detach()[..., 0], None if module.bias is None else module.bias.detach(),
                              int(module.dilation[0]))
        elif fast and isinstance(module, nn.MaxPool2d) and self._pool_ok(module):
            self.kind = "pool"
            self.k = _pair(module.kernel_size)[0]
            self.dilation = _pair(module.dilation)[0]
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

    def _set_weights(self, weight1d: torch.Tensor, bias, dilation: int) -> None:
        self.weight1d = weight1d.contiguous()  # (n_out, n_in, K)
        self.bias, self.dilation = bias, dilation
        self.weight_cl = weight1d.unsqueeze(-1).contiguous(memory_format=CL)  # (n_out, n_in, K, 1)
        self.weight_taps = weight1d.permute(2, 1, 0).contiguous()  # (K, n_in, n_out)

    @staticmethod
    def _conv_ok(m: nn.Conv2d) -> bool:
        return (m.kernel_size[1] == 1 and tuple(m.stride) == (1, 1) and m.groups == 1
                and m.padding in ((0, 0), "valid") and m.dilation[1] == 1 and m.padding_mode == "zeros")

    @staticmethod
    def _pool_ok(m: nn.MaxPool2d) -> bool:
        k, s, p = _pair(m.kernel_size), _pair(m.stride if m.stride is not None else m.kernel_size), _pair(m.padding)
        return (k[1] == 1 and s == (1, 1) and p == (0, 0) and not m.ceil_mode and not m.return_indices
                and _pair(m.dilation)[1] == 1)

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
            fused = Step(f"{self.path}+{bn.__class__.__name__}", nn.Identity())
            fused.kind = "conv"
            fused._set_weights(self.weight1d * scale.view(-1, 1, 1),
                               shift if self.bias is None else self.bias * scale + shift, self.dilation)
        return fused

    def __call__(self, x: torch.Tensor, in_keep: torch.Tensor | None = None) -> torch.Tensor:
        """Apply the step; ``in_keep`` (0/1 per input channel, ``"conv"`` steps only) masks the
        input by zeroing the matching weight columns, which costs nothing per sample."""
        kind = self.kind
        if kind == "skip":
            return x
        if kind == "conv" and x.dim() == 4 and x.shape[-1] == 1:
            if self.weight1d.shape[0] < SMALL_OUT:
                w = self.weight_taps if in_keep is None else self.weight_taps * in_keep.view(1, -1, 1)
                return _from_time_major(self._taps(_time_major(x), w, self.bias))
            w = self.weight_cl if in_keep is None else self.weight_cl * in_keep.view(1, -1, 1, 1)
            x = x if x.is_contiguous(memory_format=CL) else x.contiguous(memory_format=CL)
            return F.conv2d(x, w, self.bias, dilation=(self.dilation, 1))
        if in_keep is not None:
            x = x * in_keep.view(1, -1, *([1] * (x.dim() - 2)))
        if kind == "pool" and x.dim() == 4 and x.shape[-1] == 1:
            return self._pool(x)
        if kind == "combined" and x.dim() == 4 and x.shape[1] == 1:
            x1 = x[:, 0].transpose(1, 2)  # (batch, chans, times)
            y = F.conv1d(x1, self.weight1d, self.bias).unsqueeze(-1)  # (batch, units, times, 1)
            return y.contiguous(memory_format=CL)
        return self.module.forward(x)  # bypasses hooks: masks are applied by the evaluator

    def _pool(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Stride-1 max-pool as the max of shifted slices, into ``out`` (same shape as the
        result, channels-last) when given."""
        t = _time_major(x)  # (batch, times, chans)
        n_t = t.shape[1] - (self.k - 1) * self.dilation
        y = None if out is None else _time_major(out)
        if y is not None and (tuple(y.shape) != (t.shape[0], n_t, t.shape[2]) or not y.is_contiguous()):
            y = None
        y = torch.maximum(t[:, :n_t], t[:, self.dilation:self.dilation + n_t], out=y)
        for k in range(2, self.k):
            y = torch.maximum(y, t[:, k * self.dilation:k * self.dilation + n_t], out=y)
        return _from_time_major(y)

    def _taps(self, t: torch.Tensor, w_taps: torch.Tensor, bias) -> torch.Tensor:
        """Sum over taps of (batch, times', n_in) @ (n_in, n_out); returns (batch, times', n_out).

        One product with every tap at once, (batch, times, n_in) @ (n_in, K * n_out), then a
        sum of shifted slices of its small result: the large input is read once, not K times.
        """
        K, n_in, n_out = w_taps.shape
        d = self.dilation
        n_t = t.shape[1] - (K - 1) * d
        y = torch.matmul(t, w_taps.permute(1, 0, 2).reshape(n_in, K * n_out))  # (batch, times, K * n_out)
        out = y[:, :n_t, :n_out].clone()
        for k in range(1, K):
            out += y[:, k * d:k * d + n_t, k * n_out:(k + 1) * n_out]
        if bias is not None:
            out += bias
        return out

    def update(self, z: torch.Tensor, src: torch.Tensor, idx: torch.Tensor, sign: torch.Tensor,
               *, inplace: bool = False) -> torch.Tensor:
        """``z + sign * (contribution of input channels idx of src)``, for a ``"conv"`` step.

        Parameters
        ----------
        z : tensor, shape (batch, n_out, times', 1)
            Cached output of this conv.
        src : tensor, shape (batch, n_in, times, 1)
            Its (unmasked) input.
        idx : LongTensor, shape (n_idx,)
        sign : tensor, shape (n_idx,)
            +1 to add a channel's contribution (unmask), -1 to remove it (mask).
        inplace : bool
            Add into ``z`` itself (it must be channels-last contiguous, as the steps make it)
            and return it: no new buffer, which for a large cached output saves more time
            than the product costs (a fresh buffer is first-touched page by page).
        """
        w = self.weight1d.index_select(1, idx) * sign.view(1, -1, 1)  # (n_out, n_idx, K)
        n_out, n_idx, K = w.shape
        if inplace and not z.is_contiguous(memory_format=CL):
            inplace = False
        if n_idx * K > 64:
            x = src.index_select(1, idx).contiguous(memory_format=CL)
            delta = F.conv2d(x, w.unsqueeze(-1).contiguous(memory_format=CL), None, dilation=(self.dilation, 1))
            return z.add_(delta) if inplace else z + delta
        # few input channels: one GEMM on their stacked shifted slices, added to z in the same pass
        t = _time_major(src).index_select(2, idx)  # (batch, times, n_idx)
        B, n_t = t.shape[0], z.shape[2]
        cols = torch.cat([t[:, k * self.dilation:k * self.dilation + n_t] for k in range(K)], dim=2)  # (batch, times', K*n_idx)
        w_cols = w.permute(2, 1, 0).reshape(K * n_idx, n_out)  # row k*n_idx + i = w[:, i, k]
        zt = _time_major(z).reshape(B * n_t, n_out)  # (batch*times', n_out)
        if inplace and zt.data_ptr() == z.data_ptr():  # a view of z's storage: add in place
            zt.addmm_(cols.reshape(B * n_t, K * n_idx), w_cols)
            return z
        out = torch.addmm(zt, cols.reshape(B * n_t, K * n_idx), w_cols)
        return _from_time_major(out.reshape(B, n_t, n_out))


class PoolThenElu(Step):
    """ELU followed by a max-pool, run as the pool then an in-place ELU: ELU is increasing,
    so it commutes with max, and the pooled tensor is fresh (one pass and one buffer less)."""

    def __init__(self, pool: Step):
        super().__init__(f"{pool.path}+elu", nn.Identity())
        self.kind, self.k, self.dilation, self.pool = "pool_elu", pool.k, pool.dilation, pool

    def __call__(self, x: torch.Tensor, in_keep=None, *, out: torch.Tensor | None = None) -> torch.Tensor:
        """``out``: an existing buffer of the result's shape (channels-last) to write into."""
        if self.pool.kind != "pool" or x.dim() != 4 or x.shape[-1] != 1:
            return F.elu_(self.pool(x))
        return F.elu_(self.pool._pool(x, out))


def optimize_chain(steps: list[Step]) -> list[Step]:
    """Fuse [ELU, max-pool] pairs into :class:`PoolThenElu` (exact)."""
    out, i = [], 0
    while i < len(steps):
        s = steps[i]
        if (i + 1 < len(steps) and getattr(s.module, "expression_fn", None) is F.elu
                and steps[i + 1].kind == "pool"):
            out.append(PoolThenElu(steps[i + 1]))
            i += 2
        else:
            out.append(s)
            i += 1
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


def run_steps(steps, x: torch.Tensor, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """Apply ``steps`` in order. ``out``: a buffer the result may be written into, used when
    the chain is one :class:`PoolThenElu` plus skips (a block's pool and nonlinearity);
    any other chain ignores it (compare ``result.data_ptr()`` with ``out.data_ptr()``)."""
    work = [s for s in steps if s.kind != "skip"]
    if out is not None and len(work) == 1 and isinstance(work[0], PoolThenElu):
        return work[0](x, out=out)
    for step in steps:
        x = step(x)
    return x


@torch.no_grad()
def check_steps(model: nn.Module, steps: list[Step], X: torch.Tensor, expected: torch.Tensor | None = None) -> bool:
    """True if the chain of ``steps`` reproduces ``model(X)`` (eval mode; ``expected`` when the
    caller has it already) within float tolerance."""
    if expected is None:
        expected = model(X)
    actual = run_steps(steps, X)
    if expected.shape != actual.shape:
        logger.warning("step chain output %s differs from model output %s", tuple(actual.shape), tuple(expected.shape))
        return False
    scale = float(expected.abs().max()) + 1e-12
    return bool(torch.allclose(actual, expected, rtol=1e-4, atol=1e-5 * scale))
