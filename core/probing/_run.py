"""Running sums of perturbation probes: one forward pass per perturbation, all blocks at once.

A :class:`ProbeRun` holds, for each of its probes, the running sum of the per-iteration
correlation maps (and of the permutation-null maps) as one (Q, U * (1 + n_null)) tensor, Q =
channels x bins, U = units of all probed blocks. Each iteration perturbs the spectra of all
windows, runs ONE forward pass with hooks on every probed block that reduce activations to a
(window, unit) response on the fly, and adds ``Pz.T @ [Dz, Dz[perm_1], ...]``: the Pearson r
of every (channel, bin) with every unit, and the same with the windows shuffled (the null
costs no forward pass). :meth:`ProbeRun.result` turns the sums into the running estimate.
"""
from __future__ import annotations

import json
import logging
import threading
from functools import partial

import numpy as np
import torch
import xarray as xr

from .._validation import UnitScopeError
from ..metrics import check_finite, check_targets
from ..models import get_layer, layer_map
from ._base import Probe, centred_unit_norm, code_version, model_hash
from .bands import band_masks, freq_bins
from .validity import ValidityCheck

__all__ = ["ProbeRun"]

logger = logging.getLogger(__name__)
NO_NULL_NOTE = ("no permutation null (n_null=0): the result holds no p-values and no unit classes; "
                "probe with n_null >= 1 to test and classify the units")


class ProbeRun:
    """Running sums of one or several probes (same model, blocks and site) on windows ``X``.

    Construction runs the unperturbed forward pass. Iterating yields ``self`` after every
    iteration (each probe's pass once); :meth:`run` iterates to the end or until
    :meth:`stop`. Both can be called again to resume, with the same random sequence as an
    uninterrupted run. :meth:`result` and :attr:`progress` may be read from another thread.

    Parameters
    ----------
    probes : list of Probe
        Probes sharing model, blocks, site and bands (e.g. an amplitude and a phase probe).
    X : ndarray | torch.Tensor, shape (n_windows, n_chans, n_times)
        Input windows.
    y : ndarray | None
        Targets aligned with the model output, for the validity check (see
        :func:`~core.probing.validity.decoding_metric`): regression (n_windows, n_preds),
        classification (n_windows,) integer class indexes ``0 .. n_outputs - 1``; checked by
        :func:`core.metrics.check_targets` before any pass; None skips the check.
    task : {"regression", "classification"}
    ch_names : list of str | None
        Channel labels of the result.
    """

    def __init__(self, probes, X, *, y=None, task: str = "regression", ch_names=None):
        if not probes:
            raise UnitScopeError("A ProbeRun needs at least one probe.")
        first = probes[0]
        for p in probes[1:]:
            if p.model is not first.model or p.modules != first.modules or p.bands != first.bands:
                raise UnitScopeError("All probes of one run must share model, layers, site and bands.")
        self.probes = list(probes)
        self.model, self.layers, self.site = first.model, first.layers, first.site
        if self.model.training:
            raise UnitScopeError("The model is in training mode (model.training=True); call model.eval() first.")
        self.X = self._check_windows(X)
        W, C, T = self.X.shape
        if y is not None:  # checked against the output of one window before any full pass
            with torch.inference_mode():
                out_shape = (W,) + tuple(self.model(self.X[:1]).shape[1:])
            y = check_targets(task, y, out_shape)
        self.ch_names = [str(c) for c in (range(C) if ch_names is None else ch_names)]
        if len(self.ch_names) != C:
            raise UnitScopeError(f"{len(self.ch_names)} ch_names given for {C} channels.")
        self.freqs = np.fft.rfftfreq(T, 1.0 / first.sfreq)
        self.band_mask = band_masks(self.freqs, first.bands)  # (B, F)
        self.n_units = [li.n_units for li in self.layers]
        self.offsets = np.r_[0, np.cumsum(self.n_units)]
        self.Z = torch.fft.rfft(self.X, dim=-1)  # (W, C, F) complex64
        self._stop = threading.Event()
        self.on_pass = None  # optional callable(probe_index, X_perturbed), e.g. for benchmarks
        self._lock = threading.Lock()
        self.done = [0] * len(self.probes)
        self._orig = self._original_pass()
        self.validity = [ValidityCheck(task, y, self._orig["pred"]) if y is not None else None
                         for _ in self.probes]
        self._state = [p._prepare(self.Z, T) for p in self.probes]
        U = int(self.offsets[-1])
        self._wts = [self._band_weights(p) for p in self.probes]  # (F, B) per probe
        Q = [C * len(self.freqs) if p._channel_resolved() else len(self.freqs) for p in self.probes]
        self._acc = [torch.zeros(q, U) for q in Q]  # sums of per-iteration r, (Q, U)
        # null sums: band means only (resolution "band": (C * B, n_null * U)), else full maps
        self._acc_null = [torch.zeros(q // len(self.freqs) * w.shape[1] if p.resolution == "band" else q,
                                      p.n_null * U) for p, q, w in zip(self.probes, Q, self._wts)]

    # --- validation and forward passes -------------------------------------------------
    def _check_windows(self, X) -> torch.Tensor:
        X = torch.as_tensor(np.asarray(X, dtype=np.float32) if not torch.is_tensor(X) else X,
                            dtype=torch.float32)
        if X.ndim != 3:
            raise UnitScopeError(f"X must have shape (n_windows, n_chans, n_times), got {tuple(X.shape)}.")
        W, C, T = X.shape
        cfg = getattr(self.model, "unitscope_config", {})
        if cfg.get("n_chans", C) != C:
            raise UnitScopeError(f"X has n_chans={C} but the model expects {cfg['n_chans']}.")
        rf = max(li.receptive_field for li in self.layers)
        if cfg:  # a UnitScope decoder: the whole forward pass needs the output's receptive field
            rf = max(rf, layer_map(self.model)[-1].receptive_field)
        if T < rf:
            raise UnitScopeError(
                f"n_times={T} is shorter than the receptive field of the decoder ({rf} samples, "
                f"{rf / self.probes[0].sfreq:.2f} s); use windows of at least {rf} samples.")
        if W < 3:
            raise UnitScopeError(f"n_windows={W}: correlations across windows need at least 3 windows.")
        check_finite("X", X)
        return X.contiguous()

    def _forward(self, X: torch.Tensor, on_act) -> torch.Tensor:
        """One forward pass over all windows, hooks on every block; returns the model output."""
        was_training = self.model.training
        handles, outs, rows = [], [], {}

        def hook(i, module, inputs, out):
            a = out.reshape(out.shape[0], out.shape[1], -1)  # (batch, units, times)
            on_act(i, a, rows["now"])

        try:
            for i, path in enumerate(self.probes[0].modules):
                handles.append(get_layer(self.model, path).register_forward_hook(partial(hook, i)))
            self.model.eval()
            bs = self.probes[0].batch_size
            with torch.inference_mode():
                for s in range(0, X.shape[0], bs):
                    rows["now"] = slice(s, min(s + bs, X.shape[0]))
                    outs.append(self.model(X[rows["now"]]))
        finally:
            for h in handles:
                h.remove()
            self.model.train(was_training)
        return torch.cat(outs)

    def _original_pass(self) -> dict:
        """Activations of the unperturbed windows: time means and normalised time courses."""
        W = self.X.shape[0]
        keep = any(p.needs_timecourses for p in self.probes)
        orig = {"mean": torch.zeros(W, int(self.offsets[-1])), "tc": [None] * len(self.layers),
                "tc_sum": torch.zeros(W, int(self.offsets[-1]))}

        def on_act(i, a, rows):
            orig["mean"][rows, self.offsets[i]:self.offsets[i + 1]] = a.mean(-1)
            if keep:
                if orig["tc"][i] is None:
                    orig["tc"][i] = torch.empty(W, a.shape[1], a.shape[2])
                orig["tc"][i][rows] = z = centred_unit_norm(a)
                orig["tc_sum"][rows, self.offsets[i]:self.offsets[i + 1]] = z.sum(-1)

        orig["pred"] = self._forward(self.X, on_act).numpy()
        return orig

    # --- iterations ----------------------------------------------------------------------
    @property
    def n_total(self) -> int:
        return sum(p.n_iterations for p in self.probes)

    @property
    def progress(self) -> float:
        """Fraction of the planned passes done, 0..1."""
        return sum(self.done) / self.n_total

    @property
    def finished(self) -> bool:
        return all(d >= p.n_iterations for d, p in zip(self.done, self.probes))

    def stop(self) -> None:
        """Ask the run to stop after the current pass (thread-safe, cooperative)."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _pass(self, j: int) -> None:
        probe, W = self.probes[j], self.X.shape[0]
        Zp, P = probe._perturb(self._state[j], self.Z, probe.rng)  # (W, C, F), (W, Q)
        Xp = torch.fft.irfft(Zp, n=self.X.shape[-1], dim=-1)  # (W, C, T)
        if self.on_pass is not None:
            self.on_pass(j, Xp)
        D = torch.empty(W, int(self.offsets[-1]))

        def on_act(i, a, rows):
            cols = slice(self.offsets[i], self.offsets[i + 1])
            D[rows, cols] = probe._response(
                a, {"mean": self._orig["mean"][rows, cols], "tc_sum": self._orig["tc_sum"][rows, cols],
                    "tc": None if self._orig["tc"][i] is None else self._orig["tc"][i][rows]}, rows)

        pred = self._forward(Xp, on_act)
        Pz, Dz = _unit_columns(P), _unit_columns(D)  # (W, Q), (W, U): centred, unit norm
        if probe.n_null:
            perms = torch.from_numpy(np.stack([probe.rng.permutation(W) for _ in range(probe.n_null)]))
            Dn = Dz[perms.T].reshape(W, -1)  # (W, n_null * U): windows shuffled per replicate
            Pn = Pz
            if probe.resolution == "band":  # the null needs band means only: r is linear in Pz
                Pn = (Pz.view(W, -1, len(self.freqs)) @ self._wts[j]).reshape(W, -1)  # (W, C * B)
        ratio = self.validity[j].update(pred.numpy()) if self.validity[j] is not None else None
        with self._lock:
            self._acc[j].addmm_(Pz.T, Dz)  # (Q, U): this iteration's Pearson r, summed
            if probe.n_null:
                self._acc_null[j].addmm_(Pn.T, Dn)
            self.done[j] += 1
        logger.debug("%s pass %d/%d done (validity ratio %s)", probe.method, self.done[j],
                     probe.n_iterations, ratio)

    def __iter__(self):
        while not self.finished and not self._stop.is_set():
            for j, p in enumerate(self.probes):
                if self.done[j] < p.n_iterations and not self._stop.is_set():
                    self._pass(j)
            yield self

    def run(self, *, progress=None) -> xr.Dataset:
        """Iterate until done or stopped (clears an earlier stop); return :meth:`result`."""
        self._stop.clear()
        for _ in self:
            if progress is not None:
                progress(self.progress)
        return self.result()

    # --- the running estimate ---------------------------------------------------------
    def result(self, *, map_bin: float | None = None, maps: bool = True) -> xr.Dataset:
        """The running estimate as an ``xarray.Dataset``.

        ``map_bin`` (Hz) stores the (unit, channel, freq) maps averaged into bins of that width
        and ``maps=False`` stores none, as :func:`~core.probing.pipeline.bin_maps` would make
        them from the full result, but without building the full-resolution maps first (with
        many channels they are most of the memory: 553 MB for Deep4 on 306 MEG channels).

        Dims ``unit`` (coords ``layer`` str, ``index`` int; values "layer/index"),
        ``channel``, ``freq`` (Hz), ``band`` (coords ``band_lo``, ``band_hi`` in Hz) and
        ``null``. For each probe with prefix ``p`` (``amp``, ``phase``):

        * ``p_corr`` (unit, channel, freq): mean over iterations of the per-iteration Pearson
          r across windows between perturbation value and unit response; NaN on excluded
          bins (DC and Nyquist for phase);
        * ``p_band`` (unit, channel, band): mean of ``p_corr`` over the bins of each band;
        * ``p_stat`` (unit, band) and ``p_stat_all`` (unit): the max-statistic (see
          ``resolution``), per band and over all bands or bins; with ``resolution="band"``
          ``p_stat_all`` is the max over (channel, band) of |band mean| x sqrt(n_bins in
          the band) [A], so that every band has the same null scale;
        * ``p_null`` (null, unit, band) and ``p_null_all`` (null, unit): the same statistic
          on the permutation null; with ``n_null=0`` the ``null`` dim is empty, the result
          can hold no p-value or class, and ``attrs["unclassified"]`` says so;
        * ``p_validity`` and ``p_metric`` (scalars): mean ratio of the decoding metric on
          perturbed over unperturbed inputs, and the mean perturbed metric (NaN without y).

        Every per-unit variable carries the ``model_hash`` attr of the result, so that a score
        taken out of it (``ds["amp_stat_all"]``) still says which weights it describes
        (:func:`~core.probing._base.stale_probe`, checked by
        :func:`~core.pruning.pruning_curve`).
        """
        if map_bin is not None and not map_bin > 0:
            raise UnitScopeError(f"map_bin must be a positive frequency in Hz or None, got {map_bin!r}.")
        first = self.probes[0]
        unit_ids = [f"{li.name}/{k}" for li in self.layers for k in range(li.n_units)]
        coords = {
            "unit": unit_ids,
            "layer": ("unit", [li.name for li in self.layers for _ in range(li.n_units)]),
            "index": ("unit", np.concatenate([np.arange(li.n_units) for li in self.layers])),
            "channel": self.ch_names,
            "band": list(first.bands),
            "band_lo": ("band", [float(v[0]) for v in first.bands.values()]),
            "band_hi": ("band", [float(v[1]) for v in first.bands.values()]),
        }
        data = {}
        W, C, T = self.X.shape
        attrs = {
            "method": "+".join(p.method for p in self.probes),
            "site": self.site,
            "layers": ",".join(li.name for li in self.layers),
            "modules": ",".join(first.modules),
            "sfreq": first.sfreq,
            "n_windows": int(W),
            "n_times": int(T),
            "resolution": first.resolution,
            "bands": json.dumps(first.bands),
            "model_hash": model_hash(self.model),
            "code_version": code_version(),
            "progress": float(self.progress),
            "metric_unperturbed": float("nan"),
            "correlation": "Pearson r across windows per iteration, averaged over iterations",
        }
        bins = None
        if not maps:
            attrs["maps"] = "none"
        elif map_bin is not None:
            bins = freq_bins(self.freqs, map_bin)
            coords["freq"] = bins[1]
            attrs["maps_binned_hz"] = float(map_bin)
        else:
            coords["freq"] = self.freqs
        for j, p in enumerate(self.probes):
            with self._lock:  # [A] one probe at a time: only its mean maps are held besides the sums
                n_done = self.done[j]
                scale = 1.0 / n_done if n_done else float("nan")
                acc, acc_null = self._acc[j] * scale, self._acc_null[j] * scale
            data.update(self._probe_vars(j, acc, acc_null, maps=maps, bins=bins))
            attrs.update({f"{p.prefix}_{k}": v for k, v in p._attrs().items()})
            attrs[f"{p.prefix}_iterations"] = int(n_done)
            attrs[f"{p.prefix}_n_iterations"] = int(p.n_iterations)
            attrs[f"{p.prefix}_n_null"] = int(p.n_null)
            v = self.validity[j]
            data[f"{p.prefix}_validity"] = ((), np.float64(v.ratio if v else np.nan))
            data[f"{p.prefix}_metric"] = ((), np.float64(v.metric if v else np.nan))
            if v is not None:
                attrs["metric_unperturbed"] = float(v.reference)
                attrs["task"] = v.task
        if any(p.n_null == 0 for p in self.probes):
            attrs["unclassified"] = NO_NULL_NOTE
        ds = xr.Dataset(data, coords=coords, attrs=attrs)
        for var in ds.data_vars.values():
            if "unit" in var.dims:
                var.attrs["model_hash"] = attrs["model_hash"]
        return ds

    def _band_weights(self, p: Probe) -> torch.Tensor:
        """(F, B) weights of the band means: 1 / n_bins on a band's included bins, else 0."""
        keep = self.band_mask & ~p._excluded(self.freqs, self.X.shape[-1])[None]  # (B, F)
        if not keep.any(axis=1).all():
            empty = [b for b, k in zip(p.bands, keep.any(axis=1)) if not k]
            raise UnitScopeError(f"Bands {empty} hold no bin the {p.method} probe can use.")
        wts = torch.from_numpy(keep.T.astype(np.float32))
        return wts / wts.sum(0)

    def _probe_vars(self, j: int, R: torch.Tensor, R_null: torch.Tensor, *, maps: bool = True,
                    bins: tuple | None = None) -> dict:
        """Variables of probe ``j`` from its mean maps ``R`` (Q, U) and null ``R_null``."""
        p, wts = self.probes[j], self._wts[j]
        C, F, U, B, n = len(self.ch_names), len(self.freqs), int(self.offsets[-1]), len(p.bands), p.n_null
        excluded = torch.from_numpy(p._excluded(self.freqs, self.X.shape[-1]))  # (F,)
        R = R.reshape(-1, F, U)  # (C or 1, F, U): mean r over iterations
        Rb = torch.einsum("cfu,fb->cbu", R, wts)  # (C or 1, B, U): band means
        # n_null=0: no null replicates, null (B, 0, U) and null_all (0, U) stay empty
        null, null_all = torch.zeros(B, n, U), torch.zeros(n, U)
        if p.resolution == "band":
            stat = Rb.abs().amax(dim=0)  # (B, U): max over channels of |band mean|
            # [A] over bands, weigh by sqrt(n_bins): a band mean's null sd is 1/sqrt(n_bins)
            # times a bin's, so narrow bands would otherwise dominate the max by their noise
            z = (wts > 0).sum(0).float().sqrt()  # (B,)
            stat_all = (stat * z[:, None]).amax(dim=0)  # (U,)
            if n:
                null = R_null.reshape(-1, B, n, U).abs().amax(dim=0)  # (B, n, U)
                null_all = (null * z[:, None, None]).amax(dim=0)  # (n, U)
        else:
            masks = torch.from_numpy(self.band_mask) & ~excluded[None]  # (B, F)
            absR = R.abs().masked_fill(excluded[None, :, None], 0)
            stat = torch.stack([absR[:, m].amax(dim=(0, 1)) for m in masks])  # (B, U)
            stat_all = absR.amax(dim=(0, 1))
            if n:
                absN = R_null.reshape(-1, F, n, U).abs().masked_fill(excluded[None, :, None, None], 0)
                null = torch.stack([absN[:, m].amax(dim=(0, 1)) for m in masks])  # (B, n, U)
                null_all = absN.amax(dim=(0, 1))
        band = Rb.permute(2, 0, 1).numpy()  # (U, C or 1, B)
        if band.shape[1] != C:  # shared across channels: one map repeated over channels
            band = np.repeat(band, C, axis=1)
        pre = p.prefix
        out = {}
        if maps:
            out[f"{pre}_corr"] = (("unit", "channel", "freq"), self._maps(R, excluded, bins, C))
        return out | {
            f"{pre}_band": (("unit", "channel", "band"), band.astype(np.float32)),
            f"{pre}_stat": (("unit", "band"), stat.T.numpy().astype(np.float32)),
            f"{pre}_stat_all": (("unit",), stat_all.numpy().astype(np.float32)),
            f"{pre}_null": (("null", "unit", "band"), null.permute(1, 2, 0).numpy().astype(np.float32)),
            f"{pre}_null_all": (("null", "unit"), null_all.numpy().astype(np.float32)),
        }

    @staticmethod
    def _maps(R: torch.Tensor, excluded: torch.Tensor, bins: tuple | None, C: int) -> np.ndarray:
        """The (unit, channel, freq) float32 maps from ``R`` (C or 1, F, U): NaN on excluded
        bins; with ``bins`` (see :func:`~core.probing.bands.freq_bins`) the mean of the included
        bins of each wide bin (NaN where none is included), as ``bin_maps`` computes it."""
        if bins is None:
            corr = R.permute(2, 0, 1).numpy().copy()  # (U, C or 1, F)
            corr[:, :, excluded.numpy()] = np.nan
        else:
            which = torch.from_numpy(bins[0])
            avg = torch.zeros(R.shape[1], len(bins[1]))  # (F, F_wide): means of the included bins
            avg[torch.arange(R.shape[1]), which] = (~excluded).float()
            n = avg.sum(0)
            avg = avg / n.clamp_min(1)
            corr = torch.einsum("cfu,fb->ucb", R, avg).numpy()  # (U, C or 1, F_wide)
            corr[:, :, (n == 0).numpy()] = np.nan
        if corr.shape[1] != C:  # shared across channels: one map repeated over channels
            corr = np.repeat(corr, C, axis=1)
        return corr.astype(np.float32, copy=False)


def _unit_columns(M: torch.Tensor) -> torch.Tensor:
    """Centre each column over rows and scale it to unit norm (zero for a constant column)."""
    M = M - M.mean(0, keepdim=True)
    norm = M.norm(dim=0, keepdim=True)
    return torch.where(norm > 1e-12 * (1 + norm.max()), M / norm.clamp_min(1e-30), torch.zeros_like(M))
