"""The full probe of a decoder: both passes, statistics, classes, validity, untrained control.

:class:`ProbeConfig` holds every option (JSON round trip); :func:`start_probe` returns a
:class:`~core.probing.ProbeRun` (amplitude and phase passes interleaved, so a running
estimate of both is readable at any time); :func:`probe_units` runs it to the end and adds
the unit classes; :func:`untrained_twin` builds the control network.

Defaults [A]: all blocks and the output at the conv site, up to 80 training windows of the
decoder's ``n_times`` samples (the demo's 360 s training block gives 75 windows of 1200
samples), 24 iterations of each pass, 16 null permutations per iteration (band-resolution
statistic). The per-bin noise floor of a mean correlation is 1 / sqrt(n_windows *
n_iterations) = 0.024, a band mean's 5-17 times lower. On the trained demo Deep4 these
settings rank the high-gamma channels first by amplitude sensitivity (AUC 1.0) and the
low-frequency channels by phase sensitivity (AUC 0.97) while the full probe costs 49
forward passes over 90 000 samples (about 50 s on 2 idle cores; ``unitscope bench
probe``). More iterations sharpen the maps at a linear cost.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import xarray as xr
from torch import nn

from .._validation import UnitScopeError, config_from_dict, check_option, check_range, ensure_int
from ._base import RESOLUTIONS, SITES
from ._run import ProbeRun
from .amplitude import NOISE_REFS, AmplitudeProbe
from .bands import freq_bins
from .phase import PHASE_VARIANTS, PhaseProbe
from .stats import classify

__all__ = ["ProbeConfig", "start_probe", "probe_units", "untrained_twin", "select_windows", "bin_maps", "maps_mb",
           "workspace_windows", "finish"]

logger = logging.getLogger(__name__)


@dataclass
class ProbeConfig:
    """Options of a full probe (JSON round trip with ``to_dict``/``from_dict``)."""

    n_iterations: int = 24          # perturbation draws per pass (K); noise ~ 1/sqrt(W*K)
    n_windows: int | None = 80      # at most this many windows, evenly spaced (None: all)
    batch_size: int = 64            # windows per forward pass (memory only)
    site: str = "conv"              # "conv": before BatchNorm (seed paper); "nonlin": after ELU
    layers: list | None = None      # block names; None: all blocks and the output
    noise: str = "std"              # amplitude noise reference per (channel, bin): std|mad|raw
    noise_scale: float = 0.5        # amplitude noise sd in units of the reference
    phase_variant: str = "channel"  # "channel": independent shifts; "shared": one per bin
    n_null: int | None = None       # null replicates per iteration (None: 16 band, 4 freq; 0: no null,
    #                                 so no p-values and no unit classes, see finish)
    resolution: str = "band"        # max-statistic over (channel, band mean) or (channel, bin)
    bands: list | None = None       # band names (None: all default bands below Nyquist)
    alpha: float = 0.05             # false-discovery rate across units
    seed: int = 0                   # perturbations and permutations

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ProbeConfig":
        return config_from_dict(cls, d, "probe")

    def validate(self) -> "ProbeConfig":
        check_range("n_iterations", ensure_int("n_iterations", self.n_iterations), low=1)
        if self.n_windows is not None:
            check_range("n_windows", ensure_int("n_windows", self.n_windows), low=3)
        check_range("batch_size", ensure_int("batch_size", self.batch_size), low=1)
        check_option("site", self.site, SITES)
        check_option("noise", self.noise, NOISE_REFS)
        check_range("noise_scale", self.noise_scale, low=0, low_inclusive=False)
        check_option("phase_variant", self.phase_variant, PHASE_VARIANTS)
        if self.n_null is not None:
            check_range("n_null", ensure_int("n_null", self.n_null), low=0)
        check_option("resolution", self.resolution, RESOLUTIONS)
        check_range("alpha", self.alpha, low=0, high=1, low_inclusive=False)
        ensure_int("seed", self.seed)
        return self


def select_windows(n_total: int, n_windows: int | None) -> np.ndarray:
    """Indices of at most ``n_windows`` of ``n_total`` windows, evenly spaced [A]."""
    if n_windows is None or n_windows >= n_total:
        return np.arange(n_total)
    return np.unique(np.round(np.linspace(0, n_total - 1, n_windows)).astype(int))


def start_probe(model: nn.Module, X, *, sfreq: float, config: ProbeConfig | None = None, y=None,
                task: str = "regression", ch_names=None) -> ProbeRun:
    """Prepare the amplitude and phase probes of every block on windows ``X``.

    Parameters
    ----------
    model : torch.nn.Module
        Decoder in eval mode.
    X : ndarray, shape (n_windows, n_chans, n_times)
        Windows (UnitScope uses the training block's); subsampled to ``config.n_windows``.
    sfreq : float
        Sampling frequency in Hz.
    config : ProbeConfig | dict | None
        The probe's settings (a dict of :class:`ProbeConfig` fields, e.g. a probe.nc's
        ``probe_config``, is read with :meth:`ProbeConfig.from_dict`); None: the defaults.
    y : ndarray | None
        Targets aligned with the model output on ``X`` for the validity check: regression
        (n_windows, n_preds); classification (n_windows,) integer class indexes
        ``0 .. n_outputs - 1`` (``Workspace.data.classes`` maps class names to them). A ``y``
        of another shape, range or type is an error before any pass
        (:func:`core.metrics.check_targets`).
    task : {"regression", "classification"}
    ch_names : list of str | None

    Returns
    -------
    run : ProbeRun
        Iterate it, or call ``run.run(progress=...)``; ``run.result()`` at any time.
    """
    if isinstance(config, Mapping):  # as a probe.nc's or a script's JSON gives it
        config = ProbeConfig.from_dict(dict(config))
    elif config is not None and not isinstance(config, ProbeConfig):
        raise UnitScopeError(f"config must be a ProbeConfig or a dict of its fields, got {type(config).__name__}.")
    config = (config or ProbeConfig()).validate()
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 3:
        raise UnitScopeError(f"X must have shape (n_windows, n_chans, n_times), got {X.shape}.")
    keep = select_windows(X.shape[0], config.n_windows)
    if y is not None:  # the values are checked by ProbeRun (core.metrics.check_targets), before any pass
        y = np.asarray(y)
        if y.ndim == 0 or len(y) != X.shape[0]:
            raise UnitScopeError(f"y has {y.size if y.ndim == 0 else len(y)} entries but X has {X.shape[0]} windows.")
        y = y[keep]
    X = X[keep]
    seeds = np.random.SeedSequence(config.seed).spawn(2)
    common = dict(sfreq=sfreq, layers=config.layers, site=config.site, n_iterations=config.n_iterations,
                  batch_size=config.batch_size, n_null=config.n_null, bands=config.bands,
                  resolution=config.resolution)
    amp = AmplitudeProbe(model, noise=config.noise, noise_scale=config.noise_scale,
                         rng=np.random.default_rng(seeds[0]), **common)
    phase = PhaseProbe(model, variant=config.phase_variant, rng=np.random.default_rng(seeds[1]), **common)
    run = ProbeRun([amp, phase], X, y=y, task=task, ch_names=ch_names)
    run.config = config
    return run


def finish(run: ProbeRun, *, map_bin: float | None = None, maps: bool = True) -> xr.Dataset:
    """The run's current result with classes (when it holds a null) and the config in attrs.

    ``map_bin`` and ``maps`` are those of :meth:`ProbeRun.result`: maps in wider frequency
    bins, or none, as :func:`bin_maps` makes them, without the full-resolution maps in memory.

    [A] A run with ``n_null=0`` has no permutation null to test against: its result holds the
    maps and statistics but no p-value, q-value, significance or class variable (as a run
    stopped before its first iteration), and ``attrs["unclassified"]`` says why (also logged).
    """
    ds = run.result(map_bin=map_bin, maps=maps)
    config = getattr(run, "config", None)
    if config is not None:
        ds.attrs["config"] = _json(config.to_dict())
    if all(p.n_null > 0 for p in run.probes) and all(d > 0 for d in run.done):
        ds = classify(ds, alpha=config.alpha if config else 0.05)
    elif "unclassified" in ds.attrs:
        logger.info("probe result: %s", ds.attrs["unclassified"])
    return ds


def probe_units(model: nn.Module, X, *, sfreq: float, config: ProbeConfig | None = None, y=None,
                task: str = "regression", ch_names=None, progress=None) -> xr.Dataset:
    """Run the full probe (both passes, all blocks) and classify the units.

    Parameters are those of :func:`start_probe`; ``progress`` is called with the fraction
    done after every iteration.

    Returns
    -------
    result : xarray.Dataset
        Dims (``unit``, ``channel``, ``freq``, ``band``, ``null``): the maps and statistics
        of :meth:`ProbeRun.result` plus the classes of :func:`~core.probing.stats.classify`;
        with ``config.n_null=0`` no p-values or classes (see :func:`finish`).
    """
    run = start_probe(model, X, sfreq=sfreq, config=config, y=y, task=task, ch_names=ch_names)
    run.run(progress=progress)
    return finish(run)


def untrained_twin(model: nn.Module, *, seed: int = 1) -> nn.Module:
    """A freshly initialised network of the same architecture (the untrained control).

    Parameters
    ----------
    model : torch.nn.Module
        A decoder from :func:`core.models.build_model` (carries ``unitscope_config``).
    seed : int
        Seed of the new initialisation.

    Returns
    -------
    twin : torch.nn.Module
        In eval mode, default BatchNorm statistics; ``model`` is not touched.
    """
    from ..models import build_model

    cfg = getattr(model, "unitscope_config", None)
    if cfg is None:
        raise UnitScopeError("The untrained control needs a model built by core.models.build_model.")
    return build_model(cfg["kind"], n_chans=cfg["n_chans"], n_outputs=cfg["n_outputs"],
                       n_times=cfg["n_times"], dense=cfg["dense"], drop_prob=cfg["drop_prob"], seed=seed)


def _json(d: dict) -> str:
    import json

    return json.dumps(d)


def workspace_windows(ws, block: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Probe windows of a :class:`~core.workspace.Workspace` block and their targets.

    Regression: non-overlapping windows of the decoder's ``n_times`` samples from the start
    of the block (none touching a stretch marked bad), ``X`` (W, C, n_times), and the z-scored targets of their predictions,
    ``y`` (W, n_preds) (prediction i of a window starting at s belongs to sample
    s + receptive_field - 1 + i). Classification: the block's trials and labels.
    """
    if ws.task == "classification":
        return ws.eval_set(block)
    if block not in ws.blocks:
        raise UnitScopeError(f"Unknown block {block!r}; the blocks are {list(ws.blocks)}.")
    data = ws.data
    blk, T, rf = ws.blocks[block], data.n_times, data.receptive_field
    starts = data.tiling_starts(block)
    if len(starts) < 3:
        raise UnitScopeError(
            f"The {block} block has {blk.stop - blk.start} samples: fewer than 3 windows of "
            f"n_times={T} (that touch no stretch marked bad); correlations across windows need at least 3.")
    idx = starts[:, None] + np.arange(T)[None]  # (W, T)
    X = np.ascontiguousarray(data.X[:, idx].transpose(1, 0, 2), dtype=np.float32)  # (W, C, T)
    y = data.y[idx[:, rf - 1:]]  # (W, n_preds)
    return X, y


def maps_mb(ds: xr.Dataset | ProbeRun) -> float:
    """Megabytes of a probe result's (unit, channel, freq) maps (``amp_corr``, ``phase_corr``),
    or of the full-resolution maps a :class:`ProbeRun`'s result holds."""
    if isinstance(ds, ProbeRun):
        return len(ds.probes) * int(ds.offsets[-1]) * len(ds.ch_names) * len(ds.freqs) * 4 / 1e6
    return sum(ds[v].nbytes for v in ("amp_corr", "phase_corr") if v in ds) / 1e6


def bin_maps(ds: xr.Dataset, bin_hz: float | None = 1.0) -> xr.Dataset:
    """A smaller copy of a probe result: the (unit, channel, freq) maps averaged into
    ``bin_hz`` bins (NaN bins skipped; the ``freq`` coordinate is each bin's mean
    frequency), or without maps (``bin_hz=None``). Every other variable is kept as it is.

    The maps are the bulk of a result: ``2 x units x channels x bins`` float32 (376 units of
    Deep4, 306 MEG channels and 601 bins of a 1200-sample window: 553 MB; 1 Hz bins at
    250 Hz: 116 MB). [A] Averaging neighbouring bins is averaging independent estimates
    (each bin is perturbed independently), so binned maps are less noisy at a coarser
    resolution; the statistics and classes were computed before and do not change.
    """
    if bin_hz is not None and not bin_hz > 0:
        raise UnitScopeError(f"bin_hz must be a positive frequency in Hz or None (no maps), got {bin_hz!r}.")
    keep = {k: v for k, v in ds.data_vars.items() if "freq" not in v.dims}
    out = xr.Dataset(keep, coords={k: v for k, v in ds.coords.items() if "freq" not in v.dims}, attrs=dict(ds.attrs))
    if bin_hz is None:
        out.attrs["maps"] = "none"
        return out
    which, centres = freq_bins(ds["freq"].values, bin_hz)
    for var in ("amp_corr", "phase_corr"):
        if var not in ds:
            continue
        da = ds[var].transpose(..., "freq")
        vals = da.values
        parts = []
        for b in range(len(centres)):
            chunk = vals[..., which == b]
            with np.errstate(all="ignore"):
                parts.append(np.nanmean(chunk, axis=-1) if np.isfinite(chunk).any() else np.full(da.shape[:-1], np.nan))
        out[var] = (da.dims, np.stack(parts, axis=-1).astype(np.float32), da.attrs)
    out = out.assign_coords(freq=centres)
    out.attrs["maps_binned_hz"] = float(bin_hz)
    return out
