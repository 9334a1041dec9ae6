"""Perturbation probes: the shared engine (METHODS.md 1.2, 1.3 and 1.6).

A :class:`Probe` binds a decoder and some of its conv blocks at construction; ``run(X)``
perturbs the Fourier spectrum of the windows ``X`` again and again and, for every unit,
correlates across windows the perturbation value of each (channel, frequency bin) with a
scalar response of the unit. Subclasses define one perturbation and one response each
(:class:`~core.probing.amplitude.AmplitudeProbe`, :class:`~core.probing.phase.PhaseProbe`).

Speed: every perturbation batch takes ONE forward pass; forward hooks on all probed blocks
reduce each block's activation to a (window, unit) response on the fly, and the
correlations of all (channel, freq) with all units come out of one matrix product per
iteration, which also carries the permutation null (the same responses with the windows
shuffled, so the null costs no forward pass).

A :class:`~core.probing._run.ProbeRun` holds the running sums: its ``result()`` is the running
estimate at any time, ``progress`` runs from 0 to 1, and ``stop()`` asks a worker thread to
stop after the current pass (``run()`` resumes).
"""
from __future__ import annotations

import functools
import hashlib

import numpy as np
import torch
import xarray as xr
from torch import nn

from .._files import source_version
from .._validation import UnitScopeError, check_option, check_range, ensure_int, validate_type
from ..models import LayerInfo, get_layer, layer_map
from .bands import resolve_bands

__all__ = ["Probe", "SITES", "RESOLUTIONS", "resolve_layers", "model_hash", "code_version", "stale_probe", "centred_unit_norm",
           "similarity"]

SITES = ("conv", "nonlin")  # conv output before BatchNorm (seed paper) | after the nonlinearity
RESOLUTIONS = ("band", "freq")  # frequency resolution of the max-statistic, see Probe
DEFAULT_N_NULL = {"band": 16, "freq": 4}  # [A] null replicates per iteration, see Probe


def resolve_layers(model: nn.Module, layers=None) -> list:
    """The :class:`~core.models.LayerInfo` of the requested blocks, in forward order.

    ``layers`` is None (all blocks and the output), one name or a list of names; an unknown
    name is an error that lists the valid ones. For a model :func:`~core.models.layer_map`
    does not know, pass the blocks as :class:`~core.models.LayerInfo` objects.
    """
    if layers is not None and not isinstance(layers, str) and all(
            isinstance(li, LayerInfo) for li in layers) and len(layers):
        for li in layers:
            get_layer(model, li.conv_module), get_layer(model, li.nonlin_module)
        return list(layers)
    known = layer_map(model)
    if layers is None:
        return known
    if isinstance(layers, str):
        layers = [layers]
    names = [li.name for li in known]
    wanted = {check_option("layers", name, names) for name in layers}
    if not wanted:
        raise UnitScopeError(f"'layers' is empty; give at least one of {names}.")
    return [li for li in known if li.name in wanted]


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Which probing code computed a result: :func:`core._files.source_version` of
    ``core/probing``, kept in a probe result's attrs (``code_version``). The demo probe shipped
    with UnitScope is held to it by the tests; ``unitscope bench prune`` reuses a cached probe
    only from the same code; the app says when a run folder's probe.nc came from other code.
    """
    return source_version(__file__)


def stale_probe(ds: xr.Dataset, model: nn.Module) -> str:
    """Why a saved probe result does not describe ``model`` as this UnitScope would, or "".

    ``"weights"``: it was made for other weights (``model_hash``: e.g. a run folder trained
    again since, which keeps its old probe.nc), so its units are other units; ``"code"``: the
    same weights, probed by other probing code (``code_version``: an earlier UnitScope).
    A result without ``model_hash`` (per-unit scores of the user's own) is taken as given.
    """
    made_for = ds.attrs.get("model_hash")
    if made_for is None:
        return ""
    if made_for != model_hash(model):
        return "weights"
    return "code" if ds.attrs.get("code_version") != code_version() else ""


def model_hash(model: nn.Module) -> str:
    """SHA-1 of the model's state dict (names, shapes and values), for provenance attrs."""
    h = hashlib.sha1()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class Probe:
    """Thin base of the perturbation probes: bind the model and blocks, then ``run(X)``.

    Parameters
    ----------
    model : torch.nn.Module
        A decoder from :func:`core.models.build_model` (or one :func:`~core.models.layer_map`
        knows), in eval mode.
    sfreq : float
        Sampling frequency of the windows in Hz.
    layers : None | str | list of str
        Blocks to probe by name (``"conv_time_spat"``, ``"conv_2"`` ... ``"conv_classifier"``);
        None probes all of them, the output included, in the same forward passes.
    site : {"conv", "nonlin"}
        Where a block is read: ``"conv"`` the conv output before BatchNorm (the seed paper's
        site), ``"nonlin"`` after the nonlinearity. The two are not interchangeable (METHODS
        1.10), so the site is stored in the result's attrs.
    n_iterations : int
        Number of perturbation draws (K in METHODS 1.6); each costs one forward pass over
        all windows.
    batch_size : int
        Windows per forward pass (memory only; results do not depend on it).
    n_null : int | None
        Permutation-null replicates per iteration. Each correlates the same responses with
        the perturbation values shuffled across windows. 0 for none: the result then has an
        empty ``null`` dim and can give no p-values or unit classes (``attrs["unclassified"]``
        says so; :func:`~core.probing.stats.classify` refuses it). None: 16 with
        ``resolution="band"`` (the null then only needs band means, a small matrix product),
        4 with ``"freq"`` (full (channel, bin) null maps: memory and time grow with it).
    bands : None | list of str | dict
        Bands of the summaries, see :func:`~core.probing.bands.resolve_bands`.
    resolution : {"band", "freq"}
        Frequency resolution of the per-unit max-statistic. ``"freq"``: the max over
        (channel, bin) of the per-bin |R| (within a band for band scores). ``"band"``
        (default) [A]: the max over channels of |band mean of R|, i.e. band pooling
        (METHODS 1.10), far more powerful when a unit's sensitivity is spread over many bins.
    rng : numpy.random.Generator | int | None
        Source of the perturbations and of the null permutations.
    """

    method = "perturbation"  # set by subclasses
    prefix = "p"             # prefix of the result variables ("amp", "phase")
    needs_timecourses = False

    def __init__(self, model: nn.Module, *, sfreq: float, layers=None, site: str = "conv",
                 n_iterations: int = 30, batch_size: int = 64, n_null: int | None = None, bands=None,
                 resolution: str = "band", rng=None):
        validate_type("model", model, nn.Module)
        if model.training:
            raise UnitScopeError(
                "The model is in training mode (model.training=True): dropout and batch-norm "
                "updates would make every forward pass random. Call model.eval() first.")
        self.model = model
        self.sfreq = float(check_range("sfreq", float(sfreq), low=0, low_inclusive=False))
        self.layers = resolve_layers(model, layers)
        self.site = check_option("site", site, SITES)
        self.n_iterations = check_range("n_iterations", ensure_int("n_iterations", n_iterations), low=1)
        self.batch_size = check_range("batch_size", ensure_int("batch_size", batch_size), low=1)
        self.bands = resolve_bands(bands, sfreq=self.sfreq)
        self.resolution = check_option("resolution", resolution, RESOLUTIONS)
        if n_null is None:
            n_null = DEFAULT_N_NULL[self.resolution]
        self.n_null = check_range("n_null", ensure_int("n_null", n_null), low=0)
        self.rng = np.random.default_rng(rng)

    # --- what a subclass defines --------------------------------------------------------
    def _prepare(self, Z: torch.Tensor, n_times: int) -> dict:
        """Per-run state from the windows' spectra ``Z`` (W, C, F) complex64."""
        return {}

    def _perturb(self, state: dict, Z: torch.Tensor, rng: np.random.Generator):
        """Return the perturbed spectra (W, C, F) and the perturbation values (W, Q)."""
        raise NotImplementedError

    def _response(self, act: torch.Tensor, orig: dict, rows: slice) -> torch.Tensor:
        """Reduce a perturbed activation (B, U, T) to a response (B, U)."""
        raise NotImplementedError

    def _excluded(self, freqs: np.ndarray, n_times: int) -> np.ndarray:
        """Bins (F,) left out of this probe's maps (set to NaN)."""
        return np.zeros(len(freqs), dtype=bool)

    def _channel_resolved(self) -> bool:
        return True

    def _attrs(self) -> dict:
        return {}

    # --- the verb ---------------------------------------------------------------------------
    @property
    def modules(self) -> list[str]:
        """Dotted module paths read at this probe's site, one per block."""
        return [li.conv_module if self.site == "conv" else li.nonlin_module for li in self.layers]

    def start(self, X, *, y=None, task: str = "regression", ch_names=None):
        """Prepare a :class:`ProbeRun` on windows ``X`` without running an iteration.

        Parameters are those of :meth:`run`; iterate the returned run, or call its ``run``.
        """
        from ._run import ProbeRun

        return ProbeRun([self], X, y=y, task=task, ch_names=ch_names)

    def run(self, X, *, y=None, task: str = "regression", ch_names=None, progress=None) -> xr.Dataset:
        """Probe every unit on the windows ``X``.

        Parameters
        ----------
        X : ndarray | torch.Tensor, shape (n_windows, n_chans, n_times)
            Input windows (training windows by default in UnitScope), at least as long as
            the decoder's receptive field.
        y : ndarray | None
            Targets aligned with the model output on ``X`` (regression: (n_windows, n_preds);
            classification: (n_windows,)), for the validity check; None skips it.
        task : {"regression", "classification"}
        ch_names : list of str | None
            Channel labels of the result (default ``"0"``, ``"1"``, ...).
        progress : callable | None
            Called with the fraction done (0..1) after every iteration.

        Returns
        -------
        result : xarray.Dataset
            See :meth:`ProbeRun.result`.
        """
        return self.start(X, y=y, task=task, ch_names=ch_names).run(progress=progress)


FLAT_TOL = 1e-5  # [A] a time course whose sd is at most this fraction of its |mean| is flat


def centred_unit_norm(a: torch.Tensor) -> torch.Tensor:
    """Centre time courses over the last axis and scale them to unit norm.

    A flat time course (sd at most ``FLAT_TOL`` x |mean|, i.e. float32 round-off) becomes all
    zeros instead of amplified round-off [A], so its similarity to anything is 0.

    Parameters
    ----------
    a : torch.Tensor, shape (..., n_times)

    Returns
    -------
    z : torch.Tensor, same shape
    """
    var, mean = torch.var_mean(a, dim=-1, correction=0, keepdim=True)  # (..., 1)
    scale = _inverse_norm(var, mean, a.shape[-1])
    return (a - mean) * scale


def similarity(z: torch.Tensor, a: torch.Tensor, z_sum: torch.Tensor | None = None) -> torch.Tensor:
    """Pearson r over the last axis between unit-norm centred ``z`` and raw ``a``.

    Two passes over ``a`` (a dot product and a fused variance); flat ``a`` gives 0.

    Parameters
    ----------
    z : torch.Tensor, shape (..., n_times)
        Output of :func:`centred_unit_norm`.
    a : torch.Tensor, shape (..., n_times)
    z_sum : torch.Tensor, shape (...) | None
        ``z.sum(-1)`` if known (float32 round-off leaves it slightly off 0).

    Returns
    -------
    r : torch.Tensor, shape (...)
    """
    var, mean = torch.var_mean(a, dim=-1, correction=0)  # (...)
    z_sum = z.sum(-1) if z_sum is None else z_sum
    # <z, a - mean> = <z, a> - mean * sum(z), without a centred copy of a
    return (torch.linalg.vecdot(z, a) - mean * z_sum) * _inverse_norm(var, mean, a.shape[-1])


def _inverse_norm(var: torch.Tensor, mean: torch.Tensor, n_times: int) -> torch.Tensor:
    """1 / ||a - mean|| from the variance, 0 where the time course is flat."""
    flat = var <= (FLAT_TOL * mean) ** 2
    return torch.where(flat, torch.zeros_like(var), (var * n_times).clamp_min(1e-30).rsqrt())
