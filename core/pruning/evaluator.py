"""Fast re-measurement of the held-out metric of a masked decoder.

:class:`MaskEvaluator` runs the evaluation set through the network once and caches, for
every hidden block, its activation at the mask point (unmasked) and the output of the conv
that reads it. After a mask change only what lies downstream of the first changed layer is
recomputed; when few units of that layer changed, the next conv's output is *updated*
instead of recomputed (a conv is linear in its input: masking unit u subtracts
``conv(a_u, W[:, u])``). Toggling a ``conv_4`` unit therefore costs a rank-2 update of the
classifier output; a ``conv_3`` unit, a rank-10 update of ``conv_4`` plus its ELU/pool and the
classifier; a ``conv_time_spat`` unit, the ``conv_3`` and ``conv_4`` blocks in full.
Masks on a conv's input are applied by zeroing weight columns (no pass over the data).
:meth:`MaskEvaluator.full_evaluate` is the plain reference (the hooked model on every window)
and the two agree within float tolerance (tested).

One evaluator serves one caller (a dashboard session, a script): calls are serialised by a
lock, and curves / ablations restore the mask state they found. The cache holds two
tensors per block, about 100 MB for the demo's 2-minute test block. Several callers of one
decoder (the browser sessions of a class) each take a :meth:`MaskEvaluator.fork`: it
shares the frozen model, the evaluation set and the cached tensors of its parent and only
stores the tensors its own masks change.

[A] Dense windows whose predictions tile a contiguous stretch of the recording (consecutive
windows overlap by ``receptive_field - 1`` input samples, as ``Workspace.eval_set`` makes
them) are re-cut into a few long segments: a dense network's prediction depends only on its
receptive field, so the predictions are identical while the overlap is computed once.
Each eval-mode BatchNorm is folded into the conv before it (one pass instead of two; the
cached conv output is then post-BN, and incremental updates use the scaled weights).
[A] Incremental updates are used when at most a quarter of the layer's units changed, and the
cached conv output is recomputed from scratch every ``resync_every`` updates to bound
rounding drift, and whenever a layer keeps no unit: the next conv's output is then its bias
alone, and the metric of a constant prediction is NaN as in a full evaluation (updated, the
rounding left of the subtracted units gave a Pearson r of noise, e.g. -0.14 for the demo's
conv_4 pruned unit by unit).
"""
from __future__ import annotations

import copy
import logging
import threading
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._validation import UnitScopeError, check_option, check_range, ensure_int, suggest
from ..metrics import METRIC_NAMES, check_finite, check_targets, score
from ._runner import Step, build_steps, check_steps, optimize_chain, run_steps
from .masks import MaskSet, maskable_layers

__all__ = ["MaskEvaluator", "METRIC_NAMES"]

logger = logging.getLogger(__name__)


@dataclass
class _Segment:
    """The steps between two mask points: [skipped steps] conv post..., or any steps."""

    in_layer: str | None     # maskable layer feeding the segment (None: the input)
    out_layer: str | None    # maskable layer whose mask point ends it (None: the output)
    conv: Step | None        # leading linear conv, BatchNorm folded in (enables incremental updates)
    post: list               # steps after ``conv`` (all steps when ``conv`` is None)


def _foldable(module) -> bool:
    """An eval-mode BatchNorm with running statistics (foldable into the conv before it)."""
    return (isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats
            and module.running_var is not None and not module.training)


def _split_segments(steps: list[Step], layers) -> list[_Segment]:
    paths = [s.path for s in steps]
    segments, start, prev = [], 0, None
    bounds = []
    for info in layers:
        if info.mask_module not in paths:
            raise UnitScopeError(f"The model has no module {info.mask_module!r} (mask point of {info.name!r}); "
                                 "only sequential decoders are supported.")
        bounds.append((info.name, paths.index(info.mask_module) + 1))
    bounds.append((None, len(steps)))
    for name, stop in bounds:
        seg = [s for s in steps[start:stop] if s.kind != "skip"]
        conv = seg[0] if (prev is not None and seg and seg[0].kind == "conv") else None
        post = seg[1:] if conv is not None else seg
        if conv is not None and post and _foldable(post[0].module):
            conv, post = conv.fuse_batchnorm(post[0].module), post[1:]
        post = optimize_chain(post)
        segments.append(_Segment(prev, name, conv, post))
        start, prev = stop, name
    return segments


def _as_tensor(X, name: str) -> torch.Tensor:
    X = torch.as_tensor(np.asarray(X, dtype=np.float32) if not isinstance(X, torch.Tensor) else X.float())
    if X.dim() != 3:
        raise UnitScopeError(f"{name} must have shape (n_windows, n_chans, n_times), got {tuple(X.shape)}.")
    return X.detach().cpu()


class MaskEvaluator:
    """Held-out decoding metric of a masked decoder, recomputed incrementally.

    Parameters
    ----------
    model : torch.nn.Module
        A sequential decoder (Deep4Net / ShallowFBCSPNet from :func:`core.models.build_model`).
        A frozen eval-mode copy is used; ``model`` itself is never modified.
    X : ndarray, shape (n_windows, n_chans, n_times), float32
        Evaluation inputs (e.g. ``Workspace.eval_set("test")[0]``).
    y : ndarray
        Regression: target of shape (n_windows, n_preds) aligned with the dense predictions
        ``model(X)[:, 0, :]``. Classification: class indexes ``0 .. n_outputs - 1`` of shape
        (n_windows,) (``Workspace.data.classes`` maps class names to them). ``X`` and ``y`` are
        checked (finite, shape, type, range: :func:`core.metrics.check_targets`) before anything
        is computed.
    task : {"regression", "classification"}
        Metric: Pearson r over all predictions, or balanced accuracy.
    masks : MaskSet, optional
        Initial mask state (default: nothing masked).
    segment_len : int
        Input samples per segment when contiguous dense windows are re-cut (see module notes).
    chunk_samples : int
        At most this many (window x time) input samples per forward chunk (bounds memory).
    incremental : bool
        Use incremental conv updates (False: recompute every changed segment in full).
    resync_every : int
        Recompute a cached conv output from scratch after this many incremental updates.
    """

    def __init__(self, model: nn.Module, X, y, *, task: str = "regression", masks: MaskSet | None = None,
                 segment_len: int = 16384, chunk_samples: int = 2 ** 17, incremental: bool = True,
                 resync_every: int = 32):
        self.task = check_option("task", task, tuple(METRIC_NAMES))
        self.metric_name = METRIC_NAMES[task]
        segment_len = check_range("segment_len", ensure_int("segment_len", segment_len), low=1)
        self._chunk_samples = check_range("chunk_samples", ensure_int("chunk_samples", chunk_samples), low=1)
        self._resync_every = check_range("resync_every", ensure_int("resync_every", resync_every), low=1)
        self.incremental = bool(incremental)
        maskable_layers(model)  # computes (once) and caches the layer map on the model
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.layers = maskable_layers(self.model)
        self._lock = threading.RLock()
        self._model_lock = threading.Lock()  # shared with forks: full_evaluate hooks the shared model
        self.X = _as_tensor(X, "X")
        cfg = getattr(self.model, "unitscope_config", {}) or {}
        if cfg.get("n_chans") is not None and self.X.shape[1] != cfg["n_chans"]:
            raise UnitScopeError(f"X has {self.X.shape[1]} channels but the model expects n_chans={cfg['n_chans']}.")
        if len(self.X) == 0:
            raise UnitScopeError("X holds no windows: the evaluation block is empty.")
        check_finite("X", self.X)  # before the steps are checked against the model: NaN reproduces nothing
        steps = build_steps(self.model)
        probe = self.X[:2]
        try:
            with torch.no_grad():
                out = self.model(probe)
        except RuntimeError as exc:
            raise UnitScopeError(f"The model cannot process windows of n_times={self.X.shape[2]} samples: "
                                 f"{str(exc).splitlines()[0]}") from exc
        if self.task == "regression" and out.dim() != 3:
            raise UnitScopeError(f"Regression needs a dense decoder with output (batch, n_outputs, n_preds); "
                                 f"the model returns shape {tuple(out.shape)}.")
        self.y = check_targets(self.task, y, (len(self.X),) + tuple(out.shape[1:]))
        if self.task == "classification" and out.dim() != 2:
            raise UnitScopeError(f"Classification needs a decoder with one output per class, (batch, n_classes); "
                                 f"the model returns shape {tuple(out.shape)} (a dense one: build it with dense=False).")

        def reproduces(chain) -> bool:
            try:
                return check_steps(self.model, chain, probe, expected=out)
            except RuntimeError:  # the modules do not even chain (a model with a forward of its own)
                return False

        if not reproduces(steps):
            logger.warning("fast 1-D steps do not reproduce the model; using its modules as they are")
            steps = build_steps(self.model, fast=False)
            if not reproduces(steps):
                raise UnitScopeError(
                    f"{type(self.model).__name__}'s modules, run one after the other, do not reproduce its output: "
                    "pruning re-measures decoding from a chain of the modules, so it needs a model whose forward "
                    "pass runs them in order (nn.Sequential, nested ones included), without skip connections.")
        self._segments = _split_segments(steps, self.layers)
        self._prepare_layout(out, segment_len)
        self._state = MaskSet.for_model(self.model)
        self._shared_ptrs: set[int] = set()  # storages of cached tensors shared with forks (never written)
        self._build_cache()
        self.baseline = self._metric_of(self._out)
        if masks is not None:
            self.evaluate(masks)

    # ---- layout ----------------------------------------------------------------------
    def _prepare_layout(self, out: torch.Tensor, segment_len: int) -> None:
        """Decide between the windows as given and long contiguous segments (dense only)."""
        W, C, T = self.X.shape
        self._gather = None
        self._inputs = self.X
        if self.task == "classification":
            return
        n_preds = out.shape[2]  # y was checked in __init__: (W, n_preds)
        rf = T - n_preds + 1
        contiguous = W > 1 and bool(torch.equal(self.X[1:, :, :T - n_preds], self.X[:-1, :, n_preds:]))
        if not contiguous:
            return
        n_total = W * n_preds
        per_seg = max(segment_len - rf + 1, n_preds)
        n_seg = -(-n_total // per_seg)
        m = -(-n_total // n_seg)  # predictions per segment (balanced)
        x_cat = torch.cat([self.X[0]] + [self.X[w, :, T - n_preds:] for w in range(1, W)], dim=1)  # (C, W*n_preds+rf-1)
        starts = [min(j * m, n_total - m) for j in range(n_seg)]
        self._inputs = torch.stack([x_cat[:, s:s + m + rf - 1] for s in starts])  # (n_seg, C, m + rf - 1)
        p = np.arange(n_total)
        j = np.minimum(p // m, n_seg - 1)
        self._gather = torch.as_tensor(j * m + p - np.asarray(starts)[j])  # flat index into (n_seg, m)
        logger.info("re-cut %d windows into %d segments of %d samples", W, n_seg, m + rf - 1)

    def _chunks(self):
        n, length = self._inputs.shape[0], self._inputs.shape[2]
        step = max(1, self._chunk_samples // max(length, 1))
        return [slice(i, min(i + step, n)) for i in range(0, n, step)]

    def _map(self, fn, *tensors) -> torch.Tensor:
        """Apply ``fn`` chunk by chunk along the batch dim and concatenate."""
        parts = [fn(*(t[sl] for t in tensors)) for sl in self._chunks()]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    # ---- cache -----------------------------------------------------------------------
    @torch.no_grad()
    def _build_cache(self) -> None:
        self._a, self._z, self._n_incr = {}, {}, {}
        x = self._map(lambda t: run_steps(self._segments[0].post, t), self._inputs)
        self._a[self._segments[0].out_layer] = x
        self._out = self._forward_from(0, {}, self._state, self._a, self._z, self._n_incr)

    def _forward_from(self, first_seg: int, diff: dict, new: MaskSet, a: dict, z: dict, n_incr: dict,
                      *, inplace: bool = False):
        """Recompute segments ``first_seg + 1`` .. end for mask state ``new``; fills a, z, n_incr.

        ``inplace``: cached hidden tensors this evaluator owns alone (:meth:`_private`) are
        updated in their own buffers [A]. A fresh 20-MB buffer per step (the demo's
        ``conv_4`` output) is first-touched page by page, which cost more than the
        arithmetic of a one-unit update. The output segment is never written in place
        (predictions handed out by :meth:`predict` may still be read).
        """
        out = None
        last = len(self._segments) - 1
        for s in range(first_seg + 1, len(self._segments)):
            seg = self._segments[s]
            src = a[seg.in_layer]
            idx = diff.get(seg.in_layer) if s == first_seg + 1 else None
            mine = inplace and s < last
            if seg.conv is not None:
                n_in = src.shape[1]
                if (self.incremental and idx is not None and len(idx) <= max(1, n_in // 4)
                        and s in z and n_incr.get(s, 0) < self._resync_every
                        and new._keep[seg.in_layer].any()):
                    sign = torch.as_tensor(new._keep[seg.in_layer][idx].astype(np.float32)
                                           - self._state._keep[seg.in_layer][idx].astype(np.float32))
                    idx_t = torch.as_tensor(idx)
                    own = mine and self._private(z[s], a, z)
                    z[s] = self._map_into(z[s] if own else None,
                                          lambda zc, sc: seg.conv.update(zc, sc, idx_t, sign, inplace=own), z[s], src)
                    n_incr[s] = n_incr.get(s, 0) + 1
                else:
                    keep = self._keep_vector(new, seg.in_layer)
                    z[s] = self._map(lambda t: seg.conv(t, keep), src)
                    n_incr[s] = 0
                buf = a.get(seg.out_layer) if mine and seg.out_layer in a and self._private(a[seg.out_layer], a, z) else None
                y = self._map_into(buf, lambda t, b=None: run_steps(seg.post, t, out=b), z[s], with_out=buf is not None)
            else:
                keep = self._keep_vector(new, seg.in_layer)
                y = self._map(lambda t: run_steps(seg.post, t if keep is None else t * keep.view(1, -1, *([1] * (t.dim() - 2)))), src)
            if seg.out_layer is None:
                out = y
            else:
                a[seg.out_layer] = y
        return out

    def _map_into(self, target, fn, *tensors, with_out: bool = False) -> torch.Tensor:
        """:meth:`_map` whose chunks may be written into ``target`` (None: new tensors).

        With ``with_out``, ``fn(*chunks, b)`` gets the matching chunk ``b`` of ``target`` as
        its output buffer; otherwise ``fn`` updates its first chunk in place. If every chunk
        landed in ``target``, ``target`` is returned; else the chunks are concatenated.
        """
        if target is None:
            return self._map(fn, *tensors)
        parts, kept = [], True
        for sl in self._chunks():
            chunks = [t[sl] for t in tensors]
            b = target[sl]
            r = fn(*chunks, b) if with_out else fn(*chunks)
            kept = kept and r.data_ptr() == b.data_ptr() and r.shape == b.shape
            parts.append(r)
        if kept:
            return target
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    @staticmethod
    def _ptr(t: torch.Tensor) -> int:
        return t.untyped_storage().data_ptr()

    def _private(self, t: torch.Tensor, a: dict, z: dict) -> bool:
        """True if ``t`` is a cached tensor no other evaluator can see and no other cache
        entry shares (so it may be overwritten)."""
        p = self._ptr(t)
        if p in self._shared_ptrs:
            return False
        return sum(self._ptr(u) == p for u in list(a.values()) + list(z.values())) == 1

    @staticmethod
    def _keep_vector(masks: MaskSet, layer: str) -> torch.Tensor | None:
        keep = masks._keep[layer]
        return None if keep.all() else torch.as_tensor(keep, dtype=torch.float32)

    # ---- metric ----------------------------------------------------------------------
    def _predictions(self, out: torch.Tensor) -> np.ndarray:
        if self.task == "classification":
            return out.numpy()
        pred = out[:, 0]  # (batch, n_preds_batch)
        if self._gather is not None:
            pred = pred.reshape(-1).index_select(0, self._gather)  # (W * n_preds,)
        return pred.reshape(self.y.shape).numpy()

    def _metric_of(self, out: torch.Tensor) -> float:
        return score(self.task, self._predictions(out), self.y)

    # ---- public API ------------------------------------------------------------------
    @property
    def masks(self) -> MaskSet:
        """A copy of the mask state the cache currently holds."""
        return self._state.copy()

    def new_masks(self) -> MaskSet:
        """An empty MaskSet for this evaluator's architecture."""
        return MaskSet.for_model(self.model)

    @torch.no_grad()
    def evaluate(self, masks: MaskSet | None = None, *, commit: bool = True) -> float:
        """Held-out metric with ``masks`` applied, reusing everything upstream of the change.

        Parameters
        ----------
        masks : MaskSet, optional
            The mask state to measure (default: the current one).
        commit : bool
            Keep the new state in the cache (True) or only measure it (False: the cache stays
            at the current state, e.g. for one-unit ablations around a fixed state).

        Returns
        -------
        metric : float
            Pearson r (regression) or balanced accuracy (classification).
        """
        with self._lock:
            if masks is None:
                return self._metric_of(self._out)
            diff = self._state.diff(masks)
            if not diff:
                return self._metric_of(self._out)
            first = min(self._layer_index(name) for name in diff)
            a, z, n_incr = dict(self._a), dict(self._z), dict(self._n_incr)
            try:
                out = self._forward_from(first + 0, diff, masks, a, z, n_incr, inplace=commit)
            except BaseException as exc:
                if commit:  # a tensor may have been half updated in place: rebuild for the old state
                    if not isinstance(exc, KeyboardInterrupt):  # (a Ctrl-C is no failure to warn of)
                        logger.warning("re-measurement failed; rebuilding the cache of the previous mask state")
                    self._build_cache()  # full passes (no incremental update) with self._state's masks
                raise
            if commit:
                self._a, self._z, self._n_incr, self._out = a, z, n_incr, out
                self._state = masks.copy()
            return self._metric_of(out)

    def _layer_index(self, name: str) -> int:
        """Segment index whose output is layer ``name`` (segment 0 ends at the first layer)."""
        for i, seg in enumerate(self._segments):
            if seg.out_layer == name:
                return i
        raise UnitScopeError(f"Unknown layer {name!r}; the maskable layers are {[l.name for l in self.layers]}.")

    def toggle(self, layer: str, unit: int) -> float:
        """Flip one unit of the current state, commit, and return the new metric."""
        with self._lock:
            return self.evaluate(self._state.copy().toggle(layer, unit))

    def predict(self, masks: MaskSet | None = None) -> np.ndarray:
        """Predictions for ``masks`` (committed): (n_windows, n_preds) or (n_windows, n_classes)."""
        with self._lock:
            self.evaluate(masks)
            return self._predictions(self._out)

    def refresh(self) -> float:
        """Rebuild the cache from scratch for the current state; return the metric."""
        with self._lock:
            state = self._state
            self._state = MaskSet.for_model(self.model)
            self._build_cache()
            return self.evaluate(state)

    def fork(self) -> "MaskEvaluator":
        """A new evaluator at this one's current mask state, sharing its read-only data.

        The fork shares (never copies) the frozen model copy, the evaluation set, the compiled
        steps with their folded weights and the cached tensors of the current state; it has
        its own mask state, its own cache dictionaries and its own lock. A shared tensor is
        never modified in place (an evaluation builds new tensors and swaps dictionary
        entries; only tensors an evaluator made itself after the fork are updated in their
        own buffers), so a fork costs a few dictionaries at first and afterwards only the
        tensors its own masks change; masks set on the fork never reach the parent or other
        forks, and a fork's metrics equal those of a fresh evaluator with the same masks.

        Thread-safety: the parent and each of its forks may be used from different threads
        at once (the steps and shared tensors are only read; :meth:`full_evaluate`, which
        attaches hooks to the shared model, is serialised across the whole family by a
        shared lock). One evaluator (parent or fork) serialises its own calls.

        Returns
        -------
        fork : MaskEvaluator
            With ``fork.masks == self.masks`` and ``fork.baseline == self.baseline``.
        """
        with self._lock:
            new = copy.copy(self)  # shallow: model, X, y, steps, layout and cached tensors are shared
            new._lock = threading.RLock()
            new._a, new._z, new._n_incr = dict(self._a), dict(self._z), dict(self._n_incr)
            new._state = self._state.copy()
            # from now on both see these tensors: neither may update them in place
            self._shared_ptrs |= {self._ptr(t) for t in list(self._a.values()) + list(self._z.values())}
            new._shared_ptrs = set(self._shared_ptrs)
        return new

    def reserve(self, layer: str | None = None) -> int:
        """Give this evaluator its own copies of the cached tensors a change in ``layer`` updates.

        A fork shares its parent's cache, so its first change of a layer allocates new
        buffers for everything downstream (the demo's ``conv_4`` block: about 47 MB, first-
        touched page by page, which under load made a session's first prune up to four
        times slower than the next ones). ``reserve`` makes those copies ahead of time (e.g.
        while a user opens the Prune view) so that the first change is updated in place
        like every later one [A]. It costs the memory the first change would take anyway.

        Parameters
        ----------
        layer : str, optional
            The maskable layer whose changes should find private buffers (default: the one
            before the last: its block is the one a change in any layer but the last
            updates, and the largest; a change further up still copies the blocks between).

        Returns
        -------
        n_bytes : int
            Bytes copied (0 when everything was already private).
        """
        names = [l.name for l in self.layers]
        if layer is None:
            if len(names) < 2:
                return 0  # a change of the only layer updates the output alone
            layer = names[-2]
        if layer not in names:
            raise UnitScopeError(f"Unknown layer {layer!r}; the maskable layers are {names}.{suggest(layer, names)}")
        n_bytes = 0
        with self._lock:
            last = len(self._segments) - 1
            for s in range(self._layer_index(layer) + 1, last):  # never the output (see _forward_from)
                seg = self._segments[s]
                for cache, key in ((self._z, s), (self._a, seg.out_layer)):
                    t = cache.get(key)
                    if t is not None and not self._private(t, self._a, self._z):
                        cache[key] = t.clone()
                        n_bytes += t.numel() * t.element_size()
        return n_bytes

    @torch.no_grad()
    def full_evaluate(self, masks: MaskSet | None = None, *, batch_size: int = 64) -> float:
        """Reference: run the hooked model on every window (no cache); return the metric."""
        with self._lock:
            masks = self._state if masks is None else masks
            with self._model_lock, masks.apply(self.model):
                outs = [self.model(self.X[i:i + batch_size]) for i in range(0, len(self.X), batch_size)]
        out = torch.cat(outs)
        pred = out.numpy() if self.task == "classification" else out[:, 0].numpy()
        return score(self.task, pred, self.y)
