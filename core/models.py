"""Decoders (braindecode's Deep4Net and ShallowFBCSPNet) and the layer map.

Deep4Net: Schirrmeister et al. 2017, Hum. Brain Mapp. 38:5391 (deep ConvNet).
ShallowFBCSPNet: same paper (shallow ConvNet inspired by filter-bank CSP).

Both come unmodified from braindecode 0.8; UnitScope only wraps them:

* continuous targets use *dense cropped decoding* (``to_dense_prediction_model``): every
  stride becomes 1 and later layers are dilated, so an input of ``n_times`` samples yields
  ``n_times - receptive_field + 1`` predictions, prediction ``i`` belonging to input sample
  ``receptive_field - 1 + i`` (a causal decoder, METHODS.md 1.5);
* event labels use trial-wise decoding (``final_conv_length="auto"``).

[A] Deep4Net is built with braindecode 0.8's default ``stride_before_pool=False``. With
``stride_before_pool=True`` (Hammer et al.'s setting) braindecode 0.8's ``CombinedConv``
drops the first block's stride, giving a different network (receptive field 234 samples
instead of the intended 682). With the default, the dense Deep4 receptive field is 522
samples (2.09 s at 250 Hz).
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from ._validation import UnitScopeError, check_option, ensure_int

__all__ = ["LayerInfo", "MODEL_KINDS", "build_model", "layer_map", "receptive_field", "receptive_fields", "get_layer",
           "describe_model"]

MODEL_KINDS = ("deep4", "shallow")


@dataclass(frozen=True)
class LayerInfo:
    """One probe-able conv block of a decoder.

    Attributes
    ----------
    name : str
        Stable braindecode name of the block's conv (``"conv_time_spat"``, ``"conv_2"``, ...,
        ``"conv_classifier"``).
    conv_module : str
        Dotted module path of the conv (output = before BatchNorm; the seed paper's probe site).
    nonlin_module : str
        Module whose output is the block's activation after the nonlinearity.
    mask_module : str
        Module after which a pruning mask silences a unit (after nonlinearity and pooling,
        right before dropout / the next conv), so a masked unit contributes nothing downstream.
    n_units : int
        Number of units (output feature maps) of the block.
    receptive_field : int
        Receptive field of one unit of this block in input samples (dense model).
    """

    name: str
    conv_module: str
    nonlin_module: str
    mask_module: str
    n_units: int
    receptive_field: int

    def to_dict(self) -> dict:
        return asdict(self)


_BLOCKS = {
    "deep4": [
        ("conv_time_spat", "conv_time_spat", "conv_nonlin", "pool_nonlin", "n_filters_spat"),
        ("conv_2", "conv_2", "nonlin_2", "pool_nonlin_2", "n_filters_2"),
        ("conv_3", "conv_3", "nonlin_3", "pool_nonlin_3", "n_filters_3"),
        ("conv_4", "conv_4", "nonlin_4", "pool_nonlin_4", "n_filters_4"),
    ],
    "shallow": [
        ("conv_time_spat", "conv_time_spat", "conv_nonlin_exp", "pool_nonlin_exp", "n_filters_spat"),
    ],
}


def _kind_of(model: nn.Module) -> str:
    name = type(model).__name__
    if name == "Deep4Net":
        return "deep4"
    if name == "ShallowFBCSPNet":
        return "shallow"
    kind = getattr(model, "unitscope_kind", None)
    if kind in _BLOCKS:
        return kind
    raise UnitScopeError(
        f"Unsupported model class {name!r}: UnitScope knows Deep4Net and ShallowFBCSPNet "
        "(or a module with a 'unitscope_kind' attribute of 'deep4' or 'shallow'); describe the conv blocks "
        "of any other decoder with core.models.describe_model."
    )


def build_model(
    kind: str,
    *,
    n_chans: int,
    n_outputs: int,
    n_times: int,
    dense: bool = True,
    drop_prob: float = 0.5,
    seed: int | None = None,
) -> nn.Module:
    """Build a braindecode decoder.

    Parameters
    ----------
    kind : {"deep4", "shallow"}
        Architecture.
    n_chans : int
        Number of input channels.
    n_outputs : int
        1 for a continuous target (regression), the number of classes for labels.
    n_times : int
        Input window length in samples.
    dense : bool
        Dense cropped decoding (continuous targets) when True; trial-wise otherwise.
    drop_prob : float
        Dropout probability.
    seed : int | None
        Seed for the weight initialisation (uses a local ``torch.Generator`` fork).

    Returns
    -------
    model : torch.nn.Module
        In eval mode; ``model.unitscope_config`` holds the arguments (JSON-able).
    """
    check_option("kind", kind, MODEL_KINDS)
    n_chans, n_outputs, n_times = (ensure_int(k, v) for k, v in
                                   (("n_chans", n_chans), ("n_outputs", n_outputs), ("n_times", n_times)))
    if n_chans < 2:
        # braindecode 0.8's Deep4Net and ShallowFBCSPNet are built for one channel but fail in
        # their first block's forward pass ("self must be a matrix"); this was reported as a
        # window too short, and no window length helped
        raise UnitScopeError(f"The {kind} network needs at least 2 input channels (its first block mixes channels "
                             f"with a spatial convolution, which braindecode cannot run on one); given {n_chans}. "
                             "Pick two or more channels.")
    from braindecode.models import Deep4Net, ShallowFBCSPNet

    kwargs = dict(n_chans=n_chans, n_outputs=n_outputs, n_times=n_times,
                  add_log_softmax=False, drop_prob=drop_prob)
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if seed is not None:
            torch.manual_seed(seed)
        try:
            if kind == "deep4":
                final = 2 if dense else "auto"
                model = Deep4Net(final_conv_length=final, **kwargs)
            else:
                final = 30 if dense else "auto"
                model = ShallowFBCSPNet(final_conv_length=final, **kwargs)
        except (RuntimeError, ValueError, AssertionError) as exc:
            raise _too_short(kind, n_times, dense) from exc
        if dense:
            model.to_dense_prediction_model()
    model.unitscope_kind = kind
    model.unitscope_config = dict(kind=kind, n_chans=n_chans, n_outputs=n_outputs,
                                  n_times=n_times, dense=dense, drop_prob=drop_prob)
    model.eval()
    try:  # dry run: braindecode builds windows too short for the network without complaint
        with torch.no_grad():
            model(torch.zeros(1, n_chans, n_times))
    except RuntimeError as exc:
        raise _too_short(kind, n_times, dense) from exc
    return model


def _fits(kind: str, n_times: int, dense: bool) -> bool:
    """Whether braindecode builds ``kind`` for ``n_times`` samples and it runs (2 channels)."""
    from braindecode.models import Deep4Net, ShallowFBCSPNet

    net, final = (Deep4Net, 2 if dense else "auto") if kind == "deep4" else (ShallowFBCSPNet, 30 if dense else "auto")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = net(n_chans=2, n_outputs=1, n_times=n_times, final_conv_length=final, add_log_softmax=False)
            if dense:
                model.to_dense_prediction_model()
            with torch.no_grad():
                model.eval()(torch.zeros(1, 2, n_times))
        return True
    except (RuntimeError, ValueError, AssertionError):
        return False


def _too_short(kind: str, n_times: int, dense: bool) -> UnitScopeError:
    """The error for a window too short for ``kind``, with the shortest one it takes (found by
    bisection; braindecode's own message points to a stack trace the user does not see, and
    the dense receptive field, 522 samples for Deep4, is not the trial-wise network's 441)."""
    lo, hi = max(int(n_times), 1), max(4 * int(n_times), 2048)
    if not _fits(kind, hi, dense):
        return UnitScopeError(f"{n_times=} samples is shorter than the {kind} network needs.")
    while hi - lo > 1:  # lo does not fit, hi does
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _fits(kind, mid, dense) else (mid, hi)
    what = "its receptive field is" if dense else "its layers need"
    err = UnitScopeError(
        f"{n_times=} samples is shorter than the {kind} network needs: {what} {hi} samples; use windows "
        f"of at least {hi} samples (a longer recording or trial).")
    err.needed_samples = hi  # (callers that know where n_times came from say it in their words)
    return err


def get_layer(model: nn.Module, path: str) -> nn.Module:
    """Return the submodule at dotted ``path``; list valid names when it does not exist."""
    modules = dict(model.named_modules())
    if path not in modules:
        raise UnitScopeError(f"Unknown module {path!r}; the model has {sorted(k for k in modules if k)}.")
    return modules[path]


def _out_lens(model: nn.Module, paths: list[str], n_chans: int, n_times: int) -> dict[str, int]:
    """Output lengths (time axis) of the modules at ``paths`` for one zero input."""
    out = {}
    handles = [get_layer(model, p).register_forward_hook(
        lambda m, i, o, p=p: out.__setitem__(p, o.shape[2])) for p in paths]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, n_chans, n_times))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {p: int(out[p]) for p in paths}


def receptive_fields(model: nn.Module, paths: list[str]) -> dict[str, int]:
    """Receptive fields in input samples of the modules at ``paths`` (one forward pass).

    Exact for stride-1 (dense) networks: rf = n_times - output length + 1. For a trial-wise
    model, conv blocks are measured on a dense twin of the architecture and the classifier
    sees the whole trial.
    """
    cfg = model.unitscope_config
    out = "final_layer.conv_classifier"
    if cfg["dense"]:
        n = cfg["n_times"]
        return {p: n - t + 1 for p, t in _out_lens(model, paths, cfg["n_chans"], n).items()}
    n = max(4 * cfg["n_times"], 2048)
    twin = build_model(cfg["kind"], n_chans=2, n_outputs=1, n_times=n, dense=True)
    convs = [p for p in paths if p != out]
    rfs = {p: n - t + 1 for p, t in _out_lens(twin, convs, 2, n).items()} if convs else {}
    if out in paths:
        rfs[out] = cfg["n_times"]
    return rfs


def receptive_field(model: nn.Module, module_path: str | None = None) -> int:
    """Receptive field in input samples of ``module_path`` (default: the decoder output)."""
    path = module_path or "final_layer.conv_classifier"
    return receptive_fields(model, [path])[path]


def layer_map(model: nn.Module) -> list[LayerInfo]:
    """List the probe-able conv blocks of a decoder, in forward order, ending with the output.

    Returns
    -------
    layers : list of LayerInfo
        ``conv_time_spat``, ``conv_2`` ... for Deep4Net; ``conv_time_spat`` for Shallow; the
        last entry is ``conv_classifier`` (the decoder output, ``n_units = n_outputs``).
    """
    cached = getattr(model, "_unitscope_layer_map", None)  # (set here, or by describe_model)
    if cached is not None:
        return list(cached)
    kind = _kind_of(model)
    out = "final_layer.conv_classifier"
    rfs = receptive_fields(model, [b[1] for b in _BLOCKS[kind]] + [out])
    layers = [LayerInfo(name, conv, nonlin, mask, int(getattr(model, attr)), rfs[conv])
              for name, conv, nonlin, mask, attr in _BLOCKS[kind]]
    layers.append(LayerInfo("conv_classifier", out, out, out, int(model.n_outputs), rfs[out]))
    model._unitscope_layer_map = tuple(layers)
    return layers


_NONLINEAR = (nn.ReLU, nn.ELU, nn.LeakyReLU, nn.PReLU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid,
              nn.Softplus, nn.Hardtanh, nn.Mish, nn.LogSoftmax, nn.Softmax)


class _MeanPool(nn.Module):
    """A max-pool's geometry (kernel, stride, padding, dilation) as a mean over the window
    (nn.AvgPool has no dilation, which dense decoders' pools use)."""

    def __init__(self, pool: nn.Module):
        super().__init__()
        self.pool, self.two_d = pool, isinstance(pool, nn.MaxPool2d)

    def forward(self, x):
        import torch.nn.functional as F

        p = self.pool
        n = 2 if self.two_d else 1
        pair = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v,) * n  # noqa: E731
        k, d, pad = pair(p.kernel_size), pair(p.dilation), pair(p.padding)
        stride = pair(p.stride if p.stride is not None else p.kernel_size)
        w = torch.ones((x.shape[1], 1) + k, dtype=x.dtype, device=x.device) / float(np.prod(k))
        conv = F.conv2d if self.two_d else F.conv1d
        return conv(x, w, stride=stride, padding=pad, dilation=d, groups=x.shape[1])


def _linear_twin(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode with positive weights, the nonlinearities made identities and
    max-pools made means over the same windows: gradients then reach every input sample a unit
    sees (its structural receptive field, whatever the trained weights)."""
    import copy

    twin = copy.deepcopy(model).eval()
    with torch.no_grad():  # positive weights summing to one per output: no tap of zero weight, no
        for module in twin.modules():  # cancellation hides an input sample, and nothing overflows
            w = getattr(module, "weight", None)
            if isinstance(w, torch.Tensor) and w.is_floating_point():
                w.fill_(1.0 / w[0].numel() if w.dim() > 1 else 1.0)
    for name, module in list(twin.named_modules()):
        repl = None
        if isinstance(module, _NONLINEAR):
            repl = nn.Identity()
        elif isinstance(module, (nn.MaxPool1d, nn.MaxPool2d)):
            repl = _MeanPool(module)
        if repl is not None and name:
            parent, _, leaf = name.rpartition(".")
            setattr(twin.get_submodule(parent) if parent else twin, leaf, repl)
    return twin


def describe_model(model: nn.Module, blocks, *, n_chans: int, n_times: int, output: str) -> list[LayerInfo]:
    """Make any decoder with conv blocks one UnitScope can probe, prune and scan (Python API).

    [A] Any ``nn.Module`` with conv blocks can be wrapped. The blocks are
    named by the caller; UnitScope measures each block's units and receptive field and keeps
    the layer map on the model (``layer_map`` then returns it), so :func:`core.probing.probe_units`,
    :class:`core.pruning.MaskEvaluator`, ``pruning_curve``, ``ablation_effects`` and
    :class:`core.activations.MostActivating` take the model as they take Deep4Net. Pruning
    needs a model whose forward pass runs its modules one after the other (``nn.Sequential``,
    nested ones included); ``MaskEvaluator`` says so when a model is not.

    Parameters
    ----------
    model : torch.nn.Module
        Input (batch, n_chans, n_times) float32; output (batch, n_outputs, n_preds) for a
        dense decoder of a continuous target, (batch, n_classes) for a trial-wise one.
    blocks : list of (name, conv, nonlin, mask) tuples
        Per block, in forward order: its name, the dotted module paths of its conv (probed
        before BatchNorm, as in the seed paper), of its nonlinearity (the "after the
        nonlinearity" probe site) and of the module after which a pruning mask silences a
        unit (after the nonlinearity and pooling). Units are the conv's output channels.
    n_chans, n_times : int
        The input the model takes (a window or a trial).
    output : str
        Dotted path of the module producing the decoder output (named ``conv_classifier``
        in the layer map, as braindecode names it).

    Returns
    -------
    layers : list of LayerInfo
        The blocks then the output, each with its units and receptive field (input samples
        one unit of the block sees, measured by the gradient of a linear twin of the model:
        positive weights, nonlinearities as identities, max-pools as means).
    """
    n_chans, n_times = ensure_int("n_chans", n_chans), ensure_int("n_times", n_times)
    rows = [tuple(b) for b in blocks]
    if not rows:
        raise UnitScopeError("blocks is empty: name at least one conv block as (name, conv, nonlin, mask).")
    if any(len(r) != 4 for r in rows):
        raise UnitScopeError(f"Each block is (name, conv, nonlin, mask) module paths; got {rows!r}.")
    names = [r[0] for r in rows]
    if len(set(names)) != len(names) or "conv_classifier" in names:
        raise UnitScopeError(f"Block names must be distinct and not 'conv_classifier' (the output); got {names}.")
    for r in rows:
        for path in r[1:]:
            get_layer(model, path)
    get_layer(model, output)
    twin = _linear_twin(model)
    paths = [r[1] for r in rows] + [output]
    shapes, grads = {}, {}
    x = torch.randn(1, n_chans, n_times, generator=torch.Generator().manual_seed(0), requires_grad=True)

    def keep(path):
        def hook(module, inputs, out):
            shapes[path] = tuple(out.shape)
            grads[path] = out
        return hook

    handles = [twin.get_submodule(p).register_forward_hook(keep(p)) for p in paths]
    try:
        twin(x)
    except RuntimeError as exc:
        raise UnitScopeError(f"The model cannot take input of shape (1, {n_chans}, {n_times}): "
                             f"{str(exc).splitlines()[0]}") from exc
    finally:
        for h in handles:
            h.remove()
    rfs = {}
    for p in paths:  # the span of input samples one unit (its middle position) sees
        out = grads[p]
        if out.dim() < 3:  # (batch, units): a trial-wise output sees the whole trial
            rfs[p] = n_times
            continue
        unit = out[0, 0]
        g, = torch.autograd.grad(unit[tuple(n // 2 for n in unit.shape)], x, retain_graph=True)
        seen = torch.nonzero(g[0].abs().sum(0) > 0).flatten()
        rfs[p] = int(seen.max() - seen.min() + 1) if len(seen) else n_times
    layers = [LayerInfo(name, conv, nonlin, mask, int(shapes[conv][1]), rfs[conv]) for name, conv, nonlin, mask in rows]
    n_out = int(shapes[output][1])
    layers.append(LayerInfo("conv_classifier", output, output, output, n_out, rfs[output]))
    model._unitscope_layer_map = tuple(layers)
    dense = len(shapes[output]) >= 3 and shapes[output][2] > 1
    model.unitscope_config = {**(getattr(model, "unitscope_config", None) or {}), "kind": type(model).__name__,
                              "n_chans": n_chans, "n_outputs": n_out, "n_times": n_times, "dense": dense}
    return layers
