"""DUNL applied to a decoder: event-locked kernels and per-event codes of its signals.

A *signal* is one time course on the recording's time axis:

* ``"output"`` (or ``"output:I"``): the decoder's dense output I (default 0);
* ``"unit:LAYER:INDEX"``: a unit's activation after its block's nonlinearity (LayerInfo
  ``nonlin_module``) in a dense decoder;
* ``"channel:NAME:BAND"``: the amplitude envelope (|Hilbert|) of a band of an input channel,
  BAND a name of :data:`BANDS` or ``"LO-HI"`` in Hz.

The signal of a block is binned, cut into segments around the events (the trials of DUNL)
and deconvolved with known timing: one kernel per event type, one code per event.
Dense-decoder samples are aligned causally: the activation at module output sample j belongs
to input sample ``j + receptive_field - 1`` of that module (as the decoder's predictions).

[A] Segmentation: consecutive events whose kernel windows overlap share a segment; segments
are cut half-way in the gaps between windows, so every bin belongs to exactly one segment;
segments are padded to a common length with a mask. The last ``valid_fraction`` of segments
(in time) select the epoch. A segment's baseline is the mean of its bins outside every kernel
window.
"""
from __future__ import annotations

import difflib
import logging
import math
import time

import numpy as np
import torch
import xarray as xr

from .._validation import UnitScopeError, check_range, suggest
from ..io import channel_key, match_channels
from ..models import get_layer, layer_map, receptive_field
from ..recording import natural_key, touches
from .config import DeconvConfig
from .metrics import r2
# (the signal names and envelopes live in .signals; imported from here as before)
from .signals import BANDS, SignalSpec, band_envelope, codes_axis, hz_band, parse_signal, values_vary
from .unrolled import DUNL

__all__ = ["EventDeconvolution", "SignalSpec", "parse_signal", "BANDS", "band_envelope", "codes_axis",
           "values_vary", "hz_band"]

logger = logging.getLogger(__name__)

class EventDeconvolution:
    """Deconvolve a decoder's signals into event-locked kernels and per-event codes.

    Parameters
    ----------
    model : torch.nn.Module
        A dense (continuous-target) decoder from :func:`core.models.build_model`.
    recording : Recording
        The (preprocessed) recording the decoder reads; its events give the onsets.
    block : slice or str
        Samples deconvolved: a slice, or a name of ``blocks`` ("train", "valid", "test"), or
        "all" (default).
    blocks : dict of str to slice, optional
        Named blocks (``Workspace.blocks``).
    event_types : sequence of str, optional
        Event types to use, one kernel each (default: every type of the recording).
    lag_start : float
        Start of the kernels relative to the event onset in seconds (negative: before). [A] The
        kernel window starts on the bin at or before it (``floor(lag_start / bin)`` bins, within
        1e-6 bin, so an exact multiple stays exact): the default -0.5 s with 0.04 s bins starts at
        -0.52 s, not -0.48 s (rounding -12.5 bins half to even had started it after the lag
        asked). The result's ``attrs["lag_start"]`` is the start used, ``lag_start_requested``
        the one asked.
    kernel_seconds : float
        Kernel duration in seconds.
    bin_seconds : float
        Bin width in seconds (rounded to whole samples).
    config : DeconvConfig, optional
        Fitting options; ``n_kernels`` and ``kernel_length`` are set here, and its timing must
        be "known" (the events' onsets). Default [A]:
        Gaussian likelihood, non-negative codes, 20 FISTA iterations, 30 epochs, batch 8,
        lr 0.02.
    refit_epochs : int
        Epochs of a warm-started :meth:`refit` ([A] full-batch steps: the kernels start
        near the answer, so a few large steps suffice).
    rng : numpy.random.Generator or int or None
        Randomness of the kernel initialisation and trial order.
    chunk_samples : int
        Output samples per forward chunk of the decoder (memory bound).
    cache_activations : bool
        [A] Keep the unmasked activations at every block's mask point (for a test block of
        the demo, about 45 MB) so a refit after pruning reruns only the blocks downstream of
        the first masked one.
    """

    def __init__(self, model, recording, *, block="all", blocks=None, event_types=None,
                 lag_start: float = -0.5, kernel_seconds: float = 2.0, bin_seconds: float = 0.04,
                 config: DeconvConfig | None = None, refit_epochs: int = 8, rng=0,
                 chunk_samples: int = 4000, cache_activations: bool = True):
        self.model, self.recording = model, recording
        sfreq = recording.sfreq
        check_range("bin_seconds", bin_seconds, low=1.0 / sfreq)
        check_range("kernel_seconds", kernel_seconds, low=bin_seconds, low_inclusive=True)
        self.bin = int(round(bin_seconds * sfreq))  # samples per bin
        self.bin_seconds = self.bin / sfreq
        # kernel start in bins from onset: at or before lag_start (a float quotient such as
        # -0.28 / 0.04 = -7.000000000000001 is an exact multiple, within 1e-6 bin)
        self.lag_start_requested = float(lag_start)
        self.lag0 = int(math.floor(lag_start / self.bin_seconds + 1e-6))
        self.K = int(round(kernel_seconds / self.bin_seconds))
        self.block = self._resolve_block(block, blocks, recording.n_times)
        # the recording's types in natural order (trigger codes as numbers: 2 before 10)
        types = (sorted(np.unique(recording.events.type), key=natural_key) if event_types is None
                 else np.asarray(event_types, str))
        if len(types) == 0 and event_types is not None:
            # (not "the recording has no events": it may have many)
            there = (f": give at least one of the recording's event types {recording.events.counts()}, or None for "
                     "all of them" if len(recording.events.type) else ", and the recording has no events to lock "
                     "kernels to")
            raise UnitScopeError(f"event_types is empty (got {list(event_types)!r}){there}.")
        if len(types) == 0:
            raise UnitScopeError("The recording has no events to lock kernels to.")
        missing = sorted(set(map(str, types)) - set(map(str, recording.events.type)))
        if missing:
            raise UnitScopeError(f"No events of type {missing}; the recording has {recording.events.counts()}.")
        self.event_types = [str(t) for t in types]
        self.types_left_out: list[str] = []  # types of the recording with no event in the block
        self._events = self._select_events(explicit=event_types is not None)
        if config is not None and config.timing != "known":  # it was replaced by "known" without a word
            raise UnitScopeError(
                f"EventDeconvolution locks its kernels to the recording's event onsets (timing 'known'); the config "
                f"gives timing={config.timing!r}. To find events of unknown timing in a signal, fit "
                "core.deconv.DUNL on it directly (DeconvConfig(timing='unknown', n_events=...)).")
        base = config or DeconvConfig(likelihood="gaussian", n_iter=20, epochs=30, batch_size=8, lr=0.02)
        changes = dict(n_kernels=len(self.event_types), kernel_length=self.K, timing="known")
        if base.n_kernels != len(self.event_types):
            # per-kernel settings of another number of kernels: one setting for all is kept
            # (--two-sided when a type without events was left out), else the defaults
            changes.update({name: (val[:1] * len(self.event_types) if val and len(set(val)) == 1 else None)
                            for name, val in (("code_sign", base.code_sign), ("kernel_nonneg", base.kernel_nonneg))})
        self.config = base.replace(**changes)
        self.refit_epochs = refit_epochs
        self.rng = rng
        self.chunk_samples = chunk_samples
        self.cache_activations = cache_activations
        self._offsets: dict = {}
        self._cache: dict = {}

    # ------------------------------------------------------------------------ set-up
    @staticmethod
    def _resolve_block(block, blocks, n_times: int) -> slice:
        if isinstance(block, slice):
            start, stop, _ = block.indices(n_times)
            return slice(start, stop)
        if block == "all":
            return slice(0, n_times)
        names = list(blocks or {})
        if block not in names:
            raise UnitScopeError(f"Unknown block {block!r}; the blocks are {names + ['all']}.{suggest(block, names)}")
        return blocks[block]

    @classmethod
    def from_workspace(cls, ws, *, block: str = "test", **kwargs) -> "EventDeconvolution":
        """Bind a :class:`core.workspace.Workspace`'s decoder, recording and blocks."""
        return cls(ws.model, ws.recording, block=block, blocks=ws.blocks, **kwargs)

    def _select_events(self, *, explicit: bool = True) -> dict:
        """The events whose kernel window lies in the block. A type with none there gets no
        kernel (it would stay its initial guess, its codes empty): left out with a note when
        the types were the recording's, refused when they were asked for (``explicit``)."""
        ev = self.recording.events
        sfreq = self.recording.sfreq
        keep = np.isin(ev.type, self.event_types)
        # onsets are seconds from the recording's start (core.recording.Events), as the trials
        # of a label decoder are cut; this used to read them on the time axis, so a recording
        # whose axis starts elsewhere had its events "outside the recording"
        onset_sample = np.round(ev.onset[keep] * sfreq).astype(int)
        outside = (onset_sample < 0) | (onset_sample >= self.recording.n_times)
        if outside.any():
            bad = ev.onset[keep][outside]
            raise UnitScopeError(
                f"{int(outside.sum())} event(s) lie outside the recording (onsets {bad[:5].round(3).tolist()} s "
                f"from its start; it lasts {self.recording.n_times / sfreq:.3f} s).")
        start, stop = self.block.start, self.block.stop
        n_bins = (stop - start) // self.bin
        if n_bins < self.K:
            raise UnitScopeError(
                f"The kernel ({self.K} bins of {self.bin_seconds:g} s) is longer than the block "
                f"({n_bins} bins, {(stop - start) / sfreq:.2f} s).")
        onset_bin = (onset_sample - start) // self.bin
        first = onset_bin + self.lag0  # code index of each event
        inside = (first >= 0) & (first + self.K <= n_bins)
        bad = self.recording.bad_samples()
        if bad.any():  # an event whose kernel window touches a stretch the file marks bad is left out
            a = start + first * self.bin
            touched = inside & touches(bad, a, a + self.K * self.bin)
            if touched.any():
                logger.info("%d event(s) left out: their kernel window touches a stretch marked bad", int(touched.sum()))
            inside &= ~touched
        idx = np.flatnonzero(keep)[inside]
        order = np.argsort(first[inside], kind="stable")
        if len(idx) == 0:
            raise UnitScopeError(
                f"No event of types {self.event_types} has its whole kernel window "
                f"({self.lag0 * self.bin_seconds:+.2f} s to {(self.lag0 + self.K) * self.bin_seconds:+.2f} s) inside "
                f"the block ({start / sfreq:.1f}-{stop / sfreq:.1f} s).")
        logger.info("%d of %d events have their kernel window inside the block", len(idx), int(keep.sum()))
        empty = [t for t in self.event_types if t not in set(map(str, ev.type[idx]))]
        if empty:
            where = (f"has its whole kernel window ({self.lag0 * self.bin_seconds:+.2f} s to "
                     f"{(self.lag0 + self.K) * self.bin_seconds:+.2f} s) inside the block "
                     f"({start / sfreq:.1f}-{stop / sfreq:.1f} s)")
            if explicit:
                raise UnitScopeError(f"No event of type {empty} {where}; leave {'it' if len(empty) == 1 else 'them'} "
                                     f"out of the event types, or deconvolve another block.")
            logger.warning("No event of type %s %s: %s no kernel.", empty, where,
                           "it gets" if len(empty) == 1 else "they get")
            self.types_left_out = empty
            self.event_types = [t for t in self.event_types if t not in empty]
        return {"index": idx[order], "first": first[inside][order], "n_bins": n_bins,
                "kernel": np.array([self.event_types.index(t) for t in ev.type[idx[order]]])}

    # ---------------------------------------------------------------------- signals
    def signal(self, spec, *, masks=None, model=None) -> xr.DataArray:
        """The signal's time course over the block, at the recording's sampling rate.

        Parameters
        ----------
        spec : str or SignalSpec
        masks : core.pruning.MaskSet, optional
            Pruning mask applied while running the decoder.
        model : torch.nn.Module, optional
            Decoder to run instead of the bound one (e.g. a pruned copy).

        Returns
        -------
        signal : xarray.DataArray, dims ("time",)
            NaN where the decoder's receptive field reaches before the recording, and where the
            file marks the input bad (for the decoder's signals: where its receptive field
            reaches a stretch marked bad); NaN samples are left out of the fit.
        """
        spec = self._resolve(spec)
        start, stop = self.block.start, self.block.stop
        times = self.recording.signals["time"].values[start:stop]
        if spec.kind == "channel":
            x = self.recording.signals.sel(channel=spec.channel).values
            values = band_envelope(x, self.recording.sfreq, spec.band)[start:stop]
            units = "envelope (input units)"
        else:
            values = self._decoder_signal(spec, masks=masks, model=model or self.model)
            units = "activation" if spec.kind == "unit" else "decoder output"
        bad = self.recording.bad_samples()
        if bad.any():  # not modelled where the file marks the input bad (or, for the decoder, its field reaches it)
            reach = 0 if spec.kind == "channel" else self._offset(model or self.model, self._module_path(spec, model or self.model))
            if reach:
                t = np.arange(len(bad))
                bad = touches(bad, t - reach, t + 1)  # a bad sample within [t - reach, t]
            values = np.where(bad[start:stop], np.nan, values)
        return xr.DataArray(values.astype(np.float32), dims=("time",), coords={"time": times},
                            name=str(spec), attrs={"signal": str(spec), "units": units})

    def _resolve(self, spec) -> SignalSpec:
        """``spec`` parsed; a channel's name as the recording spells it, matched as the CLI
        matches names (:func:`core.io.match_channels`: case and the trailing dots of EDF names
        ignored, ``C3`` is EEGMMIDB's ``C3..``), so a result names the channel it read."""
        spec = parse_signal(spec) if isinstance(spec, str) else spec
        if spec.kind != "channel":
            return spec
        names = [str(n) for n in self.recording.ch_names]
        name = match_channels([spec.channel], names)[0]
        if name not in names:
            # the closest name by the same rule ('C3' read 'Cp3.' as the closest raw name)
            keys = {channel_key(n): n for n in names}
            close = difflib.get_close_matches(channel_key(name), list(keys), n=1, cutoff=0.5)
            hint = f" Did you mean {keys[close[0]]!r}?" if close else ""
            # a run's recording holds its decoder's inputs only: a channel of the file left out of
            # them had read as a misspelling of an input ('Fz' for a run of 7 picks: "Did you mean 'Cz..'?")
            raise UnitScopeError(f"Unknown channel {spec.channel!r} (case and trailing dots ignored): a channel: "
                                 f"signal is read from the recording given, for a run its {len(names)} input "
                                 f"channel(s) (a channel of the file left out of them cannot be read): "
                                 f"{names}.{hint}")
        return spec if name == spec.channel else SignalSpec("channel", channel=name, band=spec.band)

    def _module_path(self, spec: SignalSpec, model) -> str:
        if spec.kind == "output":
            n_out = int(getattr(model, "n_outputs", 1))
            if not 0 <= spec.index < n_out:
                raise UnitScopeError(f"Output index {spec.index} is out of range: the decoder has {n_out} output(s).")
            return ""
        layers = {info.name: info for info in layer_map(model)}
        if spec.layer not in layers:
            raise UnitScopeError(f"Unknown layer {spec.layer!r}; the layers are {list(layers)}.{suggest(spec.layer, layers)}")
        info = layers[spec.layer]
        if not 0 <= spec.index < info.n_units:
            raise UnitScopeError(f"Unit index {spec.index} is out of range: {spec.layer} has {info.n_units} units.")
        return info.nonlin_module

    def _offset(self, model, path: str) -> int:
        key = (id(model), path)
        if key not in self._offsets:
            self._offsets[key] = receptive_field(model, path or None) - 1
        return self._offsets[key]

    def _decoder_signal(self, spec: SignalSpec, *, masks, model) -> np.ndarray:
        cfg = getattr(model, "unitscope_config", {})
        if not cfg.get("dense", True):
            raise UnitScopeError("Deconvolving a decoder's signals needs a dense (continuous-target) decoder.")
        path = self._module_path(spec, model)
        offset = self._offset(model, path)  # causal alignment of module samples
        start, stop = self.block.start, self.block.stop
        lead = min(offset, start)  # input samples available before the block
        X = self.recording.signals.values[:, start - lead:stop].astype(np.float32)  # (chans, times)
        n_out = X.shape[1] - offset
        out = np.full(stop - start, np.nan, dtype=np.float32)
        if n_out <= 0:
            raise UnitScopeError(f"The block ({stop - start} samples) is shorter than the receptive field ({offset + 1}).")
        step = self.chunk_samples
        n_chunks = -(-n_out // step)
        X = np.pad(X, ((0, 0), (0, n_chunks * step + offset - X.shape[1])))
        idx = np.arange(n_chunks)[:, None] * step + np.arange(step + offset)[None]
        chunks = np.ascontiguousarray(X[:, idx].transpose(1, 0, 2))  # (chunks, chans, times)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                pieces = self._forward(model, chunks, path, masks, key=(start, stop, step, offset))
        finally:
            model.train(was_training)
        series = np.concatenate([p[:, spec.index, :step] for p in pieces], axis=0).reshape(-1)[:n_out]
        out[offset - lead:] = series  # module sample j belongs to input sample j + offset
        return out

    def _resume_point(self, model, path: str, masks):
        """(layer, child index) to resume from a cached mask-point activation, or None.

        [A] A dense Deep4/Shallow decoder is an ``nn.Sequential``; when the first masked
        block's mask module is a top-level child upstream of the signal, its (unmasked)
        output is cached once and only the children after it are rerun, with the mask
        applied to the cached activation (as the mask hook would).
        """
        if masks is None or masks.n_pruned == 0 or not isinstance(model, torch.nn.Sequential):
            return None
        names = [n for n, _ in model.named_children()]
        first = next(info for info in layer_map(model) if info.name in masks.layers and len(masks.pruned(info.name)))
        if first.mask_module not in names:
            return None
        i = names.index(first.mask_module)
        top = path.split(".")[0] if path else names[-1]
        if top not in names or names.index(top) <= i:
            return None
        return first.name, i

    def _forward(self, model, chunks: np.ndarray, path: str, masks, *, key) -> list:
        """Outputs of module ``path`` (or the model) per batch of 4 chunks, each (batch, channels, times)."""
        captured = {}
        target = get_layer(model, path) if path else None
        hook = None if target is None else target.register_forward_hook(
            lambda m, i, o: captured.__setitem__("x", o))
        resume = self._resume_point(model, path, masks)
        children = list(model.children())
        base_key = (id(model), _fingerprint(model), key) if isinstance(model, torch.nn.Sequential) else None
        if self._cache.get("key") != base_key:
            self._cache = {"key": base_key, "acts": {}}
        acts = self._cache["acts"]
        pieces = []
        try:
            if resume is None:
                # an unmasked pass also caches every mask point's activation for later refits
                names = [n for n, _ in model.named_children()]
                points = [names.index(info.mask_module) for info in layer_map(model)[:-1]
                          if info.mask_module in names] if base_key and self.cache_activations and (
                    masks is None or masks.n_pruned == 0) else []
                stash = {i: [] for i in points if i not in acts}
                hooks = [children[i].register_forward_hook(lambda m, inp, o, i=i: stash[i].append(o))
                         for i in stash]
                ctx = masks.apply(model) if masks is not None else _nullcontext()
                try:
                    with ctx:
                        for b in range(0, len(chunks), 4):
                            y = model(torch.from_numpy(chunks[b:b + 4]))
                            y = captured["x"] if target is not None else y
                            pieces.append(y.reshape(y.shape[0], y.shape[1], -1).numpy())  # (chunks, channels, times)
                finally:
                    for h in hooks:
                        h.remove()
                acts.update(stash)
                return pieces
            layer, i = resume
            if i not in acts:
                acts[i] = []
                for b in range(0, len(chunks), 4):
                    x = torch.from_numpy(chunks[b:b + 4])
                    for child in children[: i + 1]:
                        x = child(x)
                    acts[i].append(x)
            with masks.apply(model):  # hooks of later blocks' masks fire on the rerun children
                for x in acts[i]:
                    x = x * masks.keep_tensor(layer, ndim=x.dim(), dtype=x.dtype)
                    for child in children[i + 1:]:
                        x = child(x)
                    y = captured["x"] if target is not None else x
                    pieces.append(y.reshape(y.shape[0], y.shape[1], -1).numpy())
            return pieces
        finally:
            if hook is not None:
                hook.remove()

    # --------------------------------------------------------------------- segments
    def _segments(self, values: np.ndarray):
        """Bin ``values`` and cut segments around the events (see the module docstring)."""
        n_bins = self._events["n_bins"]
        binned = values[: n_bins * self.bin].reshape(n_bins, self.bin).mean(1)  # (bins,)
        valid = np.isfinite(binned)
        first, kernel = self._events["first"], self._events["kernel"]
        last = first + self.K
        groups, cur = [], [0]
        for e in range(1, len(first)):
            if first[e] < last[cur].max():
                cur.append(e)
            else:
                groups.append(cur)
                cur = [e]
        groups.append(cur)
        cuts = [0]
        for g0, g1 in zip(groups[:-1], groups[1:]):
            cuts.append((int(last[g0].max()) + int(first[g1[0]])) // 2)
        cuts.append(n_bins)
        T = max(b - a for a, b in zip(cuts[:-1], cuts[1:]))
        S = len(groups)
        y = np.zeros((S, T), dtype=np.float32)
        mask = np.zeros((S, T), dtype=bool)
        support = np.zeros((S, len(self.event_types), T - self.K + 1), dtype=bool)
        where = np.zeros((len(first), 2), dtype=int)  # (segment, code index) of each event
        for s, (g, a, b) in enumerate(zip(groups, cuts[:-1], cuts[1:])):
            y[s, : b - a] = np.where(valid[a:b], binned[a:b], 0.0)
            mask[s, : b - a] = valid[a:b]
            for e in g:
                support[s, kernel[e], first[e] - a] = True
                where[e] = (s, first[e] - a)
        return binned, y, mask, support, where, np.array(cuts[:-1])

    def _baseline(self, y, mask, support) -> np.ndarray:
        covered = np.zeros_like(mask)
        any_event = support.any(1)
        for k in range(self.K):
            covered[:, k:k + any_event.shape[-1]] |= any_event
        use = mask & ~covered
        overall = y[use].mean() if use.any() else y[mask].mean()
        count = use.sum(1)
        return np.where(count > 0, (y * use).sum(1) / np.maximum(count, 1), overall)

    # ------------------------------------------------------------------------ fitting
    def run(self, spec, *, masks=None, model=None, kernels=None, epochs: int | None = None,
            progress=None) -> xr.Dataset:
        """Fit kernels and codes of one signal.

        Parameters
        ----------
        spec : str or SignalSpec
        masks : core.pruning.MaskSet, optional
        model : torch.nn.Module, optional
            Decoder to run instead of the bound one.
        kernels : ndarray, shape (n_kernels, kernel_length), optional
            Warm start (see :meth:`refit`).
        epochs : int, optional
            Override the configured number of epochs.
        progress : callable, optional
            Per-epoch callback (see :meth:`DUNL.fit`).

        Returns
        -------
        result : xarray.Dataset
            ``kernels`` (kernel, lag): unit-norm kernels, ``lag`` in seconds from the onset;
            ``codes`` (event, kernel): per-event amplitudes (NaN for kernels an event does not
            drive), with event coords ``onset`` (s), ``type``, ``value``; ``observed`` and
            ``fitted`` (time): the binned signal and its reconstruction (NaN where not
            modelled). ``attrs``: method, signal (a channel named as the recording spells it),
            config (JSON), fit statistics and, for the decoder's signals, ``model_hash`` (the
            weights, unpruned, that gave the signal). ``block``: [start, stop) in samples of the
            recording (``block_units``; ``block_seconds``: the same on its time axis);
            ``lag_start``: the kernels' start used, in s (``lag_start_requested``: the one
            asked); ``valid_loss`` (the selected epoch's) was measured on ``valid_loss_on``:
            "held-out segments" (``n_valid_segments`` of ``n_segments``) or, [A] where a single
            segment leaves none to hold out, "training segments" (``valid_loss_note`` says so).
        """
        spec = self._resolve(spec)
        signal = self.signal(spec, masks=masks, model=model)
        result = self._fit(spec, signal.values, kernels=kernels, epochs=epochs, progress=progress, masks=masks)
        if spec.kind != "channel":  # the decoder's weights the signal came from (a channel's is the input's own)
            from ..probing._base import model_hash

            result.attrs["model_hash"] = model_hash(model or self.model)
        return result

    def _fit(self, spec, values, *, kernels, epochs, progress, masks, full_batch=False) -> xr.Dataset:
        binned, y, mask, support, where, starts = self._segments(values)
        cfg = self.config if epochs is None else self.config.replace(epochs=epochs)
        if full_batch:
            cfg = cfg.replace(batch_size=max(cfg.batch_size, y.shape[0]))
        baseline = self._baseline(y, mask, support)
        model = DUNL(cfg, kernels=kernels)
        t0 = time.perf_counter()
        model.fit(y, support=support, baseline=baseline, mask=mask, rng=self.rng, progress=progress)
        seconds = time.perf_counter() - t0
        codes = model.encode(y, support=support, baseline=baseline, mask=mask)  # (segments, kernels, codes)
        recon = model.reconstruct(codes, baseline=baseline)
        fitted = np.full_like(binned, np.nan)
        for s, a in enumerate(starts):
            n = min(len(binned) - a, y.shape[1])
            fitted[a:a + n] = np.where(mask[s, :n], recon[s, :n], np.nan)
        ev = self.recording.events
        idx = self._events["index"]
        code = np.full((len(idx), len(self.event_types)), np.nan, dtype=np.float32)
        code[np.arange(len(idx)), self._events["kernel"]] = codes[where[:, 0], self._events["kernel"], where[:, 1]]
        t_bins = self.recording.signals["time"].values[self.block.start] + (np.arange(len(binned)) + 0.5) * self.bin_seconds
        lag = (self.lag0 + np.arange(self.K)) * self.bin_seconds
        ok = np.isfinite(fitted)
        sfreq = self.recording.sfreq
        block_t0 = self.recording.signals["time"].values[self.block.start]
        n_seg = int(y.shape[0])
        # [A] a single segment (one long stretch of overlapping windows, e.g. a P300 run's
        # flashes) leaves nothing to hold out: the epoch is chosen on the training data
        valid_note = (f"valid_loss: the last {model.n_valid_} of {n_seg} segments, held out" if model.n_valid_ else
                      f"valid_loss is measured on the training data: {n_seg} segment(s), none held out "
                      f"(valid_fraction {cfg.valid_fraction:g}); it selects the epoch but measures no generalisation")
        return xr.Dataset(
            {"kernels": (("kernel", "lag"), model.kernels_.astype(np.float32)),
             "codes": (("event", "kernel"), code),
             "observed": (("time",), binned.astype(np.float32)),
             "fitted": (("time",), fitted.astype(np.float32))},
            coords={"kernel": self.event_types, "lag": lag, "event": np.arange(len(idx)),
                    "onset": ("event", ev.onset[idx]), "type": ("event", ev.type[idx]),
                    "value": ("event", ev.value[idx]), "time": t_bins},
            attrs={"method": "dunl", "signal": str(spec), "likelihood": cfg.likelihood,
                   "bin_seconds": self.bin_seconds, "lag_start": float(lag[0]),
                   "lag_start_requested": self.lag_start_requested, "lag_units": "s",
                   "block": [int(self.block.start), int(self.block.stop)], "block_units": "samples",
                   "block_seconds": [float(block_t0), float(block_t0 + (self.block.stop - self.block.start) / sfreq)],
                   "config": _json(cfg.to_dict()),
                   "n_segments": int(y.shape[0]), "best_epoch": int(model.best_epoch_),
                   "valid_loss": float(model.history_["valid_loss"][model.best_epoch_]),
                   "n_valid_segments": int(model.n_valid_),
                   "valid_loss_on": "held-out segments" if model.n_valid_ else "training segments",
                   "valid_loss_note": valid_note,
                   "r2": r2(binned[ok], fitted[ok]) if ok.any() else float("nan"),
                   "fit_seconds": seconds, "warm_start": int(kernels is not None),
                   "masks": _json(_mask_summary(masks)), "types_left_out": _json(self.types_left_out)})

    def refit(self, previous: xr.Dataset, *, masks=None, model=None, epochs: int | None = None,
              progress=None) -> xr.Dataset:
        """Refit a signal's kernels after the network changed, warm-started from ``previous``.

        Signals the change cannot reach are returned unchanged (``attrs["refit"] =
        "unaffected"``): channel envelopes always, unit activations when no block before the
        unit's block is masked (a block's own mask acts after its activation).

        Parameters
        ----------
        previous : xarray.Dataset
            A result of :meth:`run` or :meth:`refit` for the same signal.
        masks : core.pruning.MaskSet, optional
            The new pruning mask.
        model : torch.nn.Module, optional
            The changed decoder (e.g. pruned or fine-tuned copy).
        epochs : int, optional
            Warm-start epochs (default ``refit_epochs``).

        Returns
        -------
        result : xarray.Dataset
            As :meth:`run`, with ``attrs["refit"]`` and ``attrs["refit_seconds"]`` (the
            whole refit: the changed decoder's signal and the warm-started fit).
        """
        spec = parse_signal(previous.attrs["signal"])
        if model is None and not self._affected(spec, masks):
            out = previous.copy()
            out.attrs.update(refit="unaffected", refit_seconds=0.0, masks=_json(_mask_summary(masks)))
            return out
        t0 = time.perf_counter()
        signal = self.signal(spec, masks=masks, model=model)
        result = self._fit(spec, signal.values, kernels=previous["kernels"].values,
                           epochs=self.refit_epochs if epochs is None else epochs, progress=progress,
                           masks=masks, full_batch=True)
        result.attrs.update(refit="warm_start", refit_seconds=time.perf_counter() - t0)
        if spec.kind != "channel":  # as run(): the weights the signal came from (unpruned)
            from ..probing._base import model_hash

            result.attrs["model_hash"] = model_hash(model or self.model)
        return result

    def _check_values(self, values) -> np.ndarray:
        v = np.asarray(getattr(values, "values", values), dtype=np.float32)
        n = self.block.stop - self.block.start
        if v.ndim != 1 or v.shape[0] != n:
            raise UnitScopeError(f"values must be one time course over the block, shape ({n},) "
                                 f"(samples {self.block.start}-{self.block.stop}); got shape {v.shape}.")
        if not np.isfinite(v).any():
            raise UnitScopeError("values hold no finite sample: nothing to deconvolve.")
        return v

    def fit_values(self, values, *, signal="output", kernels=None, epochs: int | None = None, masks=None,
                   progress=None) -> xr.Dataset:
        """Fit kernels and codes of a time course computed elsewhere (no decoder pass).

        For a signal already at hand, e.g. a pruned decoder's predictions that the pruning
        evaluator has just computed: the same segmentation, baseline and fit as :meth:`run`.

        Parameters
        ----------
        values : ndarray or xarray.DataArray, shape (n_block_samples,)
            The signal at every sample of the block, on the recording's sampling rate and
            causally aligned like :meth:`signal` (NaN where undefined: not modelled).
        signal : str or SignalSpec
            The name recorded in ``attrs["signal"]`` (default "output").
        kernels : ndarray, shape (n_kernels, kernel_length), optional
            Warm start.
        epochs : int, optional
            Override the configured number of epochs.
        masks : core.pruning.MaskSet, optional
            The mask the values were computed with (recorded in ``attrs["masks"]`` only).
        progress : callable, optional
            Per-epoch callback (see :meth:`DUNL.fit`).

        Returns
        -------
        result : xarray.Dataset
            As :meth:`run`.
        """
        spec = parse_signal(signal) if isinstance(signal, str) else signal
        return self._fit(spec, self._check_values(values), kernels=kernels, epochs=epochs, progress=progress,
                         masks=masks)

    def refit_values(self, previous: xr.Dataset, values, *, masks=None, epochs: int | None = None,
                     progress=None) -> xr.Dataset:
        """Warm-started refit of ``previous``'s signal on new values computed elsewhere.

        As :meth:`refit` (same warm start from ``previous``'s kernels, ``refit_epochs``
        full-batch epochs [A]) but the changed signal is given, e.g. the predictions of a
        pruned decoder from :meth:`core.pruning.MaskEvaluator.predict`, so no decoder pass
        is run here.

        Parameters
        ----------
        previous : xarray.Dataset
            A result of :meth:`run`, :meth:`fit_values` or a refit, for the same block.
        values : ndarray or xarray.DataArray, shape (n_block_samples,)
            The changed signal (see :meth:`fit_values`).
        masks : core.pruning.MaskSet, optional
            The mask the values were computed with (recorded in ``attrs["masks"]``).
        epochs : int, optional
            Warm-start epochs (default ``refit_epochs``).

        Returns
        -------
        result : xarray.Dataset
            As :meth:`run`, with ``attrs["refit"] = "warm_start"`` and
            ``attrs["refit_seconds"]`` (the fit).
        """
        kernels = np.asarray(previous["kernels"].values)
        if kernels.shape != (len(self.event_types), self.K):
            raise UnitScopeError(f"previous holds kernels of shape {kernels.shape}; this deconvolution fits "
                                 f"({len(self.event_types)}, {self.K}) (event types x lags).")
        t0 = time.perf_counter()
        values = self._check_values(values)
        result = self._fit(parse_signal(previous.attrs["signal"]), values, kernels=kernels,
                           epochs=self.refit_epochs if epochs is None else epochs, progress=progress,
                           masks=masks, full_batch=True)
        result.attrs.update(refit="warm_start", refit_seconds=time.perf_counter() - t0)
        return result

    def _affected(self, spec: SignalSpec, masks) -> bool:
        if spec.kind == "channel" or masks is None or masks.n_pruned == 0:
            return False
        if spec.kind == "output":
            return True
        names = [info.name for info in layer_map(self.model)]
        upstream = names[: names.index(spec.layer)]
        return any(len(masks.pruned(name)) for name in upstream if name in masks.layers)


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _fingerprint(model) -> float:
    """A cheap checksum of the weights, so a cached activation is never reused after training."""
    with torch.no_grad():
        return float(sum(p.double().abs().sum() for p in model.parameters()))


def _mask_summary(masks) -> dict:
    if masks is None:
        return {}
    return {name: masks.pruned(name).tolist() for name in masks.layers if len(masks.pruned(name))}


def _json(d) -> str:
    import json

    return json.dumps(d)
