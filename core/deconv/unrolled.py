"""Unrolled convolutional sparse coding: DUNL's (F)ISTA encoder with learned kernels.

Tolooshams et al. 2025 (Neuron 113:1151), METHODS.md 2.1-2.4 and 2.9. Generative model per
sequence (a trial of one neuron / signal)::

    eta[t] = a + sum_c (h_c (*) x_c)[t],    y ~ p(y | mu = g^-1(eta))

with C unit-norm kernels ``h_c`` of K bins shared by all sequences, codes ``x_c`` of length
``n_codes = n_times - K + 1`` (a code at index j puts the kernel on bins j..j+K-1) and a
per-sequence baseline ``a``. The encoder runs R unrolled proximal-gradient iterations; the
kernels are learned by backpropagation through them and renormalised after every step.

Shapes: ``y`` is (n_trials, n_times) or (n_trials, n_neurons, n_times); internally all
sequences are stacked on the batch axis, ``(B, 1, T)`` with B = n_trials * n_neurons, and
the codes are ``(B, C, n_codes)``.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from dataclasses import fields as dc_fields

import numpy as np
import torch
from torch.nn import functional as F

from .._validation import UnitScopeError, validate_type
from .config import DeconvConfig
from .likelihoods import get_likelihood
from .operators import ConvOperator, SupportOperator, operator_norm_sq, support_index

__all__ = ["DUNL", "support_from_onsets", "estimate_baseline", "operator_norm_sq"]

logger = logging.getLogger(__name__)


def _as_rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def support_from_onsets(onsets, *, n_times: int, kernel_length: int, n_kernels: int = 1,
                        kernels=None) -> np.ndarray:
    """Binary code support from event onsets (known timing, METHODS.md 2.3).

    Parameters
    ----------
    onsets : sequence of array-like of int
        Per trial, the onset bins of its events (the first bin of each event's kernel).
    n_times : int
        Trial length in bins.
    kernel_length : int
        Kernel length K in bins.
    n_kernels : int
        Number of kernels C.
    kernels : sequence of array-like of int, optional
        Per trial, for each event, the kernel index it drives; or a sequence of index lists
        per event (several kernels may share an onset). Default: every event drives every
        kernel.

    Returns
    -------
    support : ndarray of bool, shape (n_trials, n_kernels, n_times - kernel_length + 1)
    """
    n_codes = n_times - kernel_length + 1
    if n_codes < 1:
        raise UnitScopeError(f"{kernel_length=} bins is longer than the trials ({n_times=} bins).")
    support = np.zeros((len(onsets), n_kernels, n_codes), dtype=bool)
    for n, trial_onsets in enumerate(onsets):
        trial_onsets = np.asarray(trial_onsets, dtype=int).reshape(-1)
        for e, j in enumerate(trial_onsets):
            if j < 0 or j >= n_codes:
                raise UnitScopeError(
                    f"Event {e} of trial {n} starts at bin {j}, outside the trial: a kernel of "
                    f"{kernel_length} bins needs an onset in [0, {n_codes - 1}] for {n_times=} bins.")
            which = range(n_kernels) if kernels is None else np.atleast_1d(kernels[n][e])
            support[n, list(which), j] = True
    return support


def estimate_baseline(y, likelihood: str, *, support=None, kernel_length: int | None = None,
                      mask=None, n_bins: int | None = None) -> np.ndarray:
    """Per-sequence baseline in natural-parameter units (identity, log or logit).

    Parameters
    ----------
    y : ndarray, shape (n_trials, n_times) or (n_trials, n_neurons, n_times)
    likelihood : {"gaussian", "poisson", "bernoulli"}
    support : ndarray of bool, shape (n_trials, n_kernels, n_codes), optional
        With a support, the baseline is the mean over bins that no event's kernel covers [A]
        (less contaminated than [D]'s fixed pre-event window).
    kernel_length : int, optional
        Needed with ``support``.
    mask : ndarray of bool, same shape as ``y``, optional
        Valid bins.
    n_bins : int, optional
        Use the first ``n_bins`` bins of each trial ([D]'s pre-event window). Takes priority.

    Returns
    -------
    baseline : ndarray, shape ``y.shape[:-1]``
        ``link(mean)``; rates are floored at 1e-3 before log/logit (2.9).
    """
    lik = get_likelihood(likelihood)
    y = np.asarray(y, dtype=float)
    use = np.ones(y.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool).copy()
    if n_bins is not None:
        use[..., n_bins:] = False
    elif support is not None:
        covered = np.zeros((support.shape[0], y.shape[-1]), dtype=bool)
        for k in range(kernel_length):
            covered[:, k:k + support.shape[-1]] |= support.any(axis=1)
        covered = covered.reshape((support.shape[0],) + (1,) * (y.ndim - 2) + (y.shape[-1],))
        use &= ~covered
    total = np.where(use, y, 0.0).sum(-1)
    count = use.sum(-1)
    overall = float(np.where(use, y, 0.0).sum() / max(use.sum(), 1))
    mean = np.where(count > 0, total / np.maximum(count, 1), overall)
    return lik.link(mean)


@dataclass
class _Data:
    """Validated tensors of a fit or an encoding; rows are sequences (trial x neuron)."""

    y: torch.Tensor        # (batch, 1, times)
    a: torch.Tensor        # (batch, 1, 1) baseline
    m: torch.Tensor        # (batch, 1, times) valid bins as 0/1
    index: torch.Tensor | None = None   # (batch, P) known support, flat code indices
    valid: torch.Tensor | None = None   # (batch, P)
    mask: torch.Tensor | None = None    # (batch, C, n_codes) support mask, unknown timing
    trial: torch.Tensor | None = None   # (batch,) trial of each row (a trial's neurons share it)

    def rows(self, r: np.ndarray) -> "_Data":
        r = torch.from_numpy(np.asarray(r, dtype=np.int64))
        pick = (lambda t: None if t is None else t[r])
        return _Data(*(pick(getattr(self, f.name)) for f in dc_fields(self)))


class DUNL:
    """Deconvolutional unrolled neural learning: learn event-locked kernels and sparse codes.

    Configure, then call :meth:`fit` (learn kernels) and :meth:`encode` (codes of new data).

    Parameters
    ----------
    config : DeconvConfig, optional
        Hyper-parameters (defaults: :class:`DeconvConfig`); keyword ``overrides`` replace
        fields.
    kernels : ndarray, shape (n_kernels, kernel_length), optional
        Initial kernels (warm start); renormalised to unit l2 norm.

    Attributes
    ----------
    kernels_ : ndarray, shape (n_kernels, kernel_length)
        Learned unit-norm kernels (the epoch with the lowest validation loss).
    history_ : dict
        ``train_loss`` per epoch and ``valid_loss`` per epoch (index 0: initial kernels),
        mean NLL per valid bin relative to the saturated model; ``init_kernels``.
    best_epoch_ : int
        Selected epoch (0 = the initial kernels).
    n_valid_ : int
        Trials held out to select the epoch (the last ones); 0 when a single trial (or
        ``valid_fraction=0``) left none, and ``valid_loss`` was measured on the training trials.
    step_ : float
        Encoder step size of the last encoding (the smallest over sequences).
    """

    def __init__(self, config: DeconvConfig | None = None, *, kernels=None, **overrides):
        config = DeconvConfig() if config is None else config
        validate_type("config", config, DeconvConfig)
        self.config = config.replace(**overrides) if overrides else config
        self.likelihood = get_likelihood(self.config.likelihood)
        self._init = None if kernels is None else self._check_kernels(kernels)
        self.kernels_ = self._init
        self.history_ = {"train_loss": [], "valid_loss": []}
        self.best_epoch_ = 0
        self.n_valid_ = 0
        self.step_ = float("nan")

    # ----------------------------------------------------------------- validation helpers
    def _check_kernels(self, kernels) -> np.ndarray:
        cfg = self.config
        kernels = np.asarray(kernels, dtype=np.float32)
        kernels = kernels.reshape(-1, kernels.shape[-1]) if kernels.ndim else kernels.reshape(1, 1)
        if kernels.shape != (cfg.n_kernels, cfg.kernel_length):
            raise UnitScopeError(
                f"kernels have shape {kernels.shape}, expected (n_kernels, kernel_length) = "
                f"({cfg.n_kernels}, {cfg.kernel_length}).")
        norms = np.linalg.norm(kernels, axis=1, keepdims=True)
        if not np.all(np.isfinite(kernels)) or np.any(norms == 0):
            raise UnitScopeError("Initial kernels must be finite and non-zero.")
        return kernels / norms

    def _prepare(self, y, support, baseline, mask) -> tuple[_Data, tuple]:
        cfg = self.config
        y = np.asarray(y, dtype=np.float32)
        if y.ndim not in (2, 3):
            raise UnitScopeError(
                f"y must have shape (n_trials, n_times) or (n_trials, n_neurons, n_times), got {y.shape}.")
        n_trials, n_times = y.shape[0], y.shape[-1]
        n_neurons = y.shape[1] if y.ndim == 3 else 1
        n_codes = n_times - cfg.kernel_length + 1
        if n_codes < 1:
            raise UnitScopeError(
                f"kernel_length={cfg.kernel_length} bins is longer than the trials ({n_times=} bins).")
        m = np.ones(y.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        if m.shape != y.shape:
            raise UnitScopeError(f"mask has shape {m.shape}, expected the shape of y {y.shape}.")
        if not m.any():
            raise UnitScopeError("The mask leaves no valid sample.")
        self.likelihood.check_data(y[m])
        if cfg.timing == "known" and support is None:
            raise UnitScopeError(
                "timing='known' needs the event support (see support_from_onsets); "
                "use timing='unknown' with n_events when the onsets are not known.")
        if support is not None:
            support = np.asarray(support, dtype=bool)
            expected = (n_trials, cfg.n_kernels, n_codes)
            if support.shape != expected:
                raise UnitScopeError(
                    f"support has shape {support.shape}, expected (n_trials, n_kernels, n_codes) = {expected}.")
        if baseline is None:
            baseline = estimate_baseline(y, cfg.likelihood, support=support,
                                         kernel_length=cfg.kernel_length, mask=m)
        try:
            a = np.broadcast_to(np.asarray(baseline, dtype=np.float32), y.shape[:-1])
        except ValueError as exc:
            raise UnitScopeError(
                f"baseline has shape {np.shape(baseline)}, expected a scalar or {y.shape[:-1]}.") from exc
        if not np.all(np.isfinite(a)):
            raise UnitScopeError("baseline must be finite.")
        B = n_trials * n_neurons
        data = _Data(
            y=torch.from_numpy(np.where(m, y, 0.0).astype(np.float32).reshape(B, 1, n_times)),
            a=torch.from_numpy(np.array(a, dtype=np.float32).reshape(B, 1, 1)),
            m=torch.from_numpy(m.reshape(B, 1, n_times).astype(np.float32)),
            trial=torch.arange(n_trials).repeat_interleave(n_neurons),  # rows are trial-major
        )
        if support is not None:
            rep = np.repeat(support, n_neurons, axis=0)  # (batch, kernels, codes)
            if cfg.timing == "known":
                index, valid = support_index(rep)
                data.index, data.valid = torch.from_numpy(index), torch.from_numpy(valid)
            else:
                data.mask = torch.from_numpy(rep.astype(np.float32))
        return data, y.shape[:-1]

    # ----------------------------------------------------------------------- the encoder
    def _operator(self, H: torch.Tensor, d: _Data):
        if d.index is not None:
            return SupportOperator(H, d.y.shape[-1], self.config.code_sign, d.index, d.valid)
        return ConvOperator(H, d.y.shape[-1], self.config.code_sign, d.mask)

    @staticmethod
    def _prox(v: torch.Tensor, thr, sign: torch.Tensor) -> torch.Tensor:
        """Soft threshold with per-code sign constraints (1: >= 0, -1: <= 0, 2: two-sided)."""
        pos = F.relu(v - thr) * (sign != -1)
        neg = F.relu(-v - thr) * (sign != 1)
        return pos - neg

    def _topk(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Keep the k largest |x| per sequence and kernel (x: (B, C, n_codes)), optionally
        only among local maxima within +-``topk_separation`` bins [A]. Selection is detached."""
        w = self.config.topk_separation
        mag = x.detach().abs()
        if w > 0:
            peak = F.max_pool1d(mag, 2 * w + 1, stride=1, padding=w)
            mag = torch.where(mag >= peak, mag, torch.zeros_like(mag))
        if k >= x.shape[-1]:
            return x * (mag > 0) if w > 0 else x
        idx = mag.topk(k, dim=-1).indices
        keep = torch.zeros_like(x).scatter_(-1, idx, 1.0) * (mag > 0)
        return x * keep

    def _objective(self, op, d: _Data, x, lam) -> torch.Tensor:
        return (self.likelihood.nll(d.y, op.synth(x) + d.a) * d.m).sum() + lam * x.abs().sum()

    def _iterate(self, op, d: _Data, x, n_iter: int, *, grad_iters: int, topk: bool):
        """``n_iter`` (F)ISTA iterations from codes ``x`` (METHODS.md 2.2); returns (x, lam, step, bound)."""
        cfg = self.config
        bound = 1.0 / (self.likelihood.curvature_bound(d.y, d.a) * op.norm_sq())
        step = bound if cfg.step is None else float(cfg.step)
        self.step_ = float(torch.as_tensor(step).min())
        z, t, lam = x, 1.0, cfg.lam
        for r in range(1, n_iter + 1):
            with torch.set_grad_enabled(torch.is_grad_enabled() and r > n_iter - grad_iters):
                e = (d.y - self.likelihood.mean(op.synth(z) + d.a)) * d.m  # (batch, 1, times)
                v = z + step * op.analysis(e)                               # code domain
                lam = lam * cfg.lam_decay
                x_new = self._prox(v, step * lam, op.sign)
                if op.mask is not None:
                    x_new = x_new * op.mask
                if topk and r % cfg.topk_every == 0:
                    k_r = int(cfg.n_events * ((n_iter - r + 1) / n_iter + 1))  # 2k0 -> k0 [D]
                    x_new = self._topk(x_new, k_r)
                if cfg.algorithm == "fista":
                    t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
                    z = x_new + ((t - 1) / t_new) * (x_new - x)
                    t = t_new
                else:
                    z = x_new
                x = x_new
        return x, lam, step, bound

    def _grad_iters(self, n_iter: int) -> int:
        """Iterations to backpropagate through (full or truncated, validated option, 2.9)."""
        if self.config.backprop == "full":
            return n_iter
        return min(self.config.truncated_iters, n_iter)

    def _encode(self, H, d: _Data):
        """Encode ``d``; returns (operator, codes in the operator's layout).

        Known timing: (F)ISTA on the support. Unknown timing: detection by (F)ISTA with the
        top-k schedule and a final top-k (no gradient: [D] detaches top-k), then
        ``refine_iter`` iterations on the detected support [A].
        """
        cfg = self.config
        if cfg.timing == "known":
            op = self._operator(H, d)
            x, lam, step, bound = self._iterate(op, d, op.zeros(d.y.shape[0]), cfg.n_iter,
                                                grad_iters=self._grad_iters(cfg.n_iter), topk=False)
            self._check_divergence(op, d, x, lam, step, bound)
            return op, x
        with torch.no_grad():
            op = ConvOperator(H.detach(), d.y.shape[-1], cfg.code_sign, d.mask)
            x, lam, step, bound = self._iterate(op, d, op.zeros(d.y.shape[0]), cfg.n_iter,
                                                grad_iters=0, topk=True)
            x = self._topk(x, cfg.n_events)
            self._check_divergence(op, d, x, lam, step, bound)
            index, valid = support_index((x != 0).numpy())
            index, valid = torch.from_numpy(index), torch.from_numpy(valid)
            start = torch.gather(x.reshape(x.shape[0], -1), 1, index) * valid
        n_refine = cfg.n_iter if cfg.refine_iter is None else cfg.refine_iter
        op = SupportOperator(H, d.y.shape[-1], cfg.code_sign, index, valid)
        x, lam, step, bound = self._iterate(op, d, start, n_refine,
                                            grad_iters=self._grad_iters(n_refine), topk=False)
        self._check_divergence(op, d, x, lam, step, bound)
        return op, x

    def _check_divergence(self, op, d: _Data, x, lam, step, bound) -> None:
        with torch.no_grad():
            final = float(self._objective(op, d, x.detach(), lam))
            start = float(self._objective(op, d, torch.zeros_like(x), lam))
        if not math.isfinite(final) or final > self.config.divergence_factor * start + 1e-6:
            stable = float(torch.as_tensor(bound).min())
            raise UnitScopeError(
                f"The unrolled encoder diverged with step={self.step_:.4g} (objective {start:.4g} at "
                f"zero code, {final:.4g} after {self.config.n_iter} iterations); a stable step is "
                f"<= {stable:.4g} (1 / Lipschitz bound). Leave step=None to use it.")

    # -------------------------------------------------------------------------- training
    def _init_kernels(self, rng: np.random.Generator, data: _Data | None = None) -> np.ndarray:
        """Initial unit-norm kernels (n_kernels, kernel_length); see ``DeconvConfig.kernel_init``.

        "average" with a known support: each kernel's event average (:meth:`_event_average`)
        plus 10% smoothed noise. [A] Design decision for kernels whose onsets coincide in
        every row (:meth:`_shared_onset_groups`), which would all start from the same
        average: the first (lowest index) of such a group keeps it; the i-th further one
        starts from the i-th principal component of the group's event windows
        (:meth:`_event_components`: centred as the average, each averaged over the neurons
        of its trial), signed so that it sums positive (negated for ``code_sign`` -1 unless
        ``kernel_nonneg``), clipped at 0 where ``kernel_nonneg``, unit norm, plus the same
        10% noise; a component the windows do not span leaves the average start. It fixes
        the failure of simulation B (salience and value kernels share every reward onset):
        from the shared start, 15 epochs end with the kernels' labels mixed (value kernel
        error 0.85-0.88 on data seeds 0-4); from this one at 0.27-0.39 (start 0.55-0.61,
        was 0.76-0.78). It draws no extra random numbers, so kernels with onsets of their
        own start bit for bit as before.
        """
        cfg = self.config
        C, K = cfg.n_kernels, cfg.kernel_length
        kind = cfg.kernel_init
        if kind == "auto":
            kind = "average" if cfg.timing == "known" else "decay"
        noise = rng.standard_normal((C, K))
        smooth = cfg.init_smooth or (2.0 if kind != "random" else 0.0)
        if smooth > 0:
            half = int(math.ceil(3 * smooth))
            g = np.exp(-0.5 * (np.arange(-half, half + 1) / smooth) ** 2)
            # the centred K samples of the full convolution: numpy's mode="same" gives max(K, len(g))
            # samples, and a kernel shorter than the 13-tap filter (kernel_length <= 12, e.g. 0.4 s in
            # 40-ms bins) failed with a broadcasting ValueError
            noise = np.stack([np.convolve(row, g, mode="full")[half:half + K] for row in noise])
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        h = noise
        if kind == "decay":
            h = np.exp(-np.arange(K) / (K / 5.0))[None] + 0.1 * noise
        elif kind == "average" and data is not None and data.index is not None:
            avg = self._event_average(data)
            norm = np.linalg.norm(avg, axis=1, keepdims=True)
            ok = (norm[:, 0] > 0) & np.isfinite(norm[:, 0])
            sign = np.where(np.array(cfg.code_sign) == -1, -1.0, 1.0)[:, None]
            h = np.where(ok[:, None], sign * avg / np.where(ok[:, None], norm, 1.0) + 0.1 * noise, noise)
            for group in self._shared_onset_groups(data):
                # [A] kernels after the first of a group: the next principal components
                for c, pc in zip(group[1:], self._event_components(data, group[0], len(group) - 1)):
                    if pc is None:
                        continue  # fewer distinct event windows than kernels: as before
                    pc = pc * (1.0 if pc.sum() >= 0 else -1.0)  # a net-positive response
                    if cfg.kernel_nonneg[c]:
                        pc = np.clip(pc, 0.0, None)
                    elif cfg.code_sign[c] == -1:
                        pc = -pc  # carried by non-positive codes, as the event average
                    size = np.linalg.norm(pc)
                    if size > 0 and np.isfinite(size):
                        h[c] = pc / size + 0.1 * noise[c]
        nonneg = list(cfg.kernel_nonneg)
        h[nonneg] = np.abs(h[nonneg])
        return (h / np.linalg.norm(h, axis=1, keepdims=True)).astype(np.float32)

    def _event_average(self, d: _Data) -> np.ndarray:
        """Mean over each kernel's events of the data after the onset minus the baseline mean."""
        cfg = self.config
        C, K = cfg.n_kernels, cfg.kernel_length
        n_codes = d.y.shape[-1] - K + 1
        start = d.index % n_codes                                    # (batch, P)
        kernel = d.index // n_codes
        cols = start[..., None] + torch.arange(K)                    # (batch, P, K)
        y = d.y[:, 0, :]                                             # (batch, times)
        m = d.m[:, 0, :]
        centred = (y - self.likelihood.mean(d.a[:, 0, :])) * m
        win = torch.gather(centred[:, None, :].expand(-1, cols.shape[1], -1), 2, cols)
        w = d.valid.float()[..., None] * torch.gather(m[:, None, :].expand(-1, cols.shape[1], -1), 2, cols)
        total = torch.zeros(C, K).index_add_(0, kernel.reshape(-1), (win * w).reshape(-1, K))
        count = torch.zeros(C, K).index_add_(0, kernel.reshape(-1), w.reshape(-1, K))
        return (total / count.clamp_min(1)).double().numpy()

    def _shared_onset_groups(self, d: _Data) -> list[list[int]]:
        """Groups (two or more, ascending) of kernels with the same onsets in every row.

        Kernels without any event are in no group.
        """
        C = self.config.n_kernels
        n_codes = d.y.shape[-1] - self.config.kernel_length + 1
        index, valid = d.index.numpy(), d.valid.numpy()
        rows = np.broadcast_to(np.arange(index.shape[0])[:, None], index.shape)
        onsets = np.zeros((C, index.shape[0], n_codes), dtype=bool)
        onsets[index[valid] // n_codes, rows[valid], index[valid] % n_codes] = True
        groups: list[list[int]] = []
        for c in range(C):
            if not onsets[c].any():
                continue
            for g in groups:
                if np.array_equal(onsets[g[0]], onsets[c]):
                    g.append(c)
                    break
            else:
                groups.append([c])
        return [g for g in groups if len(g) > 1]

    def _event_components(self, d: _Data, kernel: int, n: int) -> list:
        """The ``n`` leading principal components (unit norm, arbitrary sign) of the events of
        ``kernel``: each event's window centred as in :meth:`_event_average` and averaged over
        the rows (neurons) of its trial; None for a component the windows do not span."""
        K = self.config.kernel_length
        n_codes = d.y.shape[-1] - K + 1
        index, valid = d.index.numpy(), d.valid.numpy()
        rows, pos = np.nonzero(valid & (index // n_codes == kernel))
        start = index[rows, pos] % n_codes
        m = d.m[:, 0, :]
        centred = ((d.y[:, 0, :] - self.likelihood.mean(d.a[:, 0, :])) * m).double().numpy()
        cols = start[:, None] + np.arange(K)
        win, w = centred[rows[:, None], cols], m.double().numpy()[rows[:, None], cols]
        trial = rows if d.trial is None else d.trial.numpy()[rows]
        _, event = np.unique(trial * n_codes + start, return_inverse=True)
        total = np.zeros((event.max() + 1 if len(event) else 0, K))
        count = np.zeros_like(total)
        np.add.at(total, event, win * w)
        np.add.at(count, event, w)
        windows = (total / np.maximum(count, 1))[count.any(1)]  # events not wholly masked
        out: list = [None] * n
        if len(windows) < 2:
            return out
        _, sv, vt = np.linalg.svd(windows - windows.mean(0), full_matrices=False)
        tol = sv[0] * max(windows.shape) * np.finfo(float).eps
        for i in range(min(n, len(sv))):
            if sv[i] > tol and np.all(np.isfinite(vt[i])):
                out[i] = vt[i]
        return out

    def _project(self, H: torch.Tensor) -> None:
        """In place: kernels >= 0 where required, then unit l2 norm (after every step, 2.4)."""
        with torch.no_grad():
            nonneg = torch.tensor(self.config.kernel_nonneg)
            H[nonneg] = H[nonneg].clamp_min(0)
            H /= H.norm(dim=(1, 2), keepdim=True).clamp_min(1e-12)

    def _loss(self, H, d: _Data) -> torch.Tensor:
        cfg = self.config
        op, x = self._encode(H, d)
        loss = (self.likelihood.nll(d.y, op.synth(x) + d.a) * d.m).sum() / d.m.sum()
        if cfg.smooth_weight > 0:
            loss = loss + cfg.smooth_weight * (H[..., 1:] - H[..., :-1]).pow(2).sum() / cfg.n_kernels
        if cfg.l1_loss_weight > 0:  # mean |x| over all code positions, as in [D]
            loss = loss + cfg.l1_loss_weight * x.abs().sum() / (x.shape[0] * cfg.n_kernels * op.n_codes)
        return loss

    def _nll(self, H, d: _Data) -> float:
        """Mean NLL per valid bin of the encoded reconstruction (no gradient)."""
        with torch.no_grad():
            op, x = self._encode(H, d)
            return float((self.likelihood.nll(d.y, op.synth(x) + d.a) * d.m).sum() / d.m.sum())

    def fit(self, y, *, support=None, baseline=None, mask=None, rng=None, progress=None) -> "DUNL":
        """Learn the kernels on ``y``; the last ``valid_fraction`` of trials select the epoch.

        Parameters
        ----------
        y : ndarray, shape (n_trials, n_times) or (n_trials, n_neurons, n_times)
            Binned observations (Bernoulli: fraction of spiking sub-bins in [0, 1]).
        support : ndarray of bool, shape (n_trials, n_kernels, n_codes), optional
            Event support (required with known timing; see :func:`support_from_onsets`).
            With unknown timing it optionally restricts where codes may be non-zero.
        baseline : float or ndarray, shape (n_trials,) or (n_trials, n_neurons), optional
            Per-sequence baseline in natural-parameter units; default
            :func:`estimate_baseline`.
        mask : ndarray of bool, same shape as ``y``, optional
            Valid bins (padding or missing samples are False).
        rng : numpy.random.Generator or int or None
            Randomness for the initial kernels and the trial order.
        progress : callable, optional
            Called after every epoch with a dict (``epoch``, ``n_epochs``, ``fraction``,
            ``train_loss``, ``valid_loss``).

        Returns
        -------
        self : DUNL
        """
        cfg = self.config
        rng = _as_rng(rng)
        data, lead = self._prepare(y, support, baseline, mask)
        n_trials = lead[0]
        per_trial = data.y.shape[0] // n_trials
        n_valid = min(int(round(cfg.valid_fraction * n_trials)), n_trials - 1)
        train_trials = np.arange(n_trials - n_valid)
        self.n_valid_ = int(n_valid)

        def rows(trials):
            return (np.asarray(trials)[:, None] * per_trial + np.arange(per_trial)).reshape(-1)

        # [A] with a single trial (or valid_fraction=0) the training trials select the epoch
        held_out = data.rows(rows(np.arange(n_trials - n_valid, n_trials)) if n_valid else rows(train_trials))
        init = self._init if self._init is not None else self._init_kernels(rng, data.rows(rows(train_trials)))
        H = torch.tensor(init.reshape(cfg.n_kernels, 1, cfg.kernel_length), requires_grad=True)
        opt = torch.optim.Adam([H], lr=cfg.lr, eps=1e-3)
        best, best_state, best_epoch = self._nll(H, held_out), H.detach().clone(), 0
        self.history_ = {"train_loss": [], "valid_loss": [best], "init_kernels": init.copy()}
        for epoch in range(1, cfg.epochs + 1):
            order = rng.permutation(train_trials)
            total, count = 0.0, 0
            for b0 in range(0, len(order), cfg.batch_size):
                batch = data.rows(rows(order[b0:b0 + cfg.batch_size]))
                loss = self._loss(H, batch)
                if not torch.isfinite(loss):
                    raise UnitScopeError(
                        f"The training loss became {float(loss)} at epoch {epoch}; lower lr={cfg.lr} "
                        f"or the step ({self.step_:.4g}).")
                opt.zero_grad()
                loss.backward()
                opt.step()
                self._project(H)
                n = batch.y.shape[0]
                total, count = total + float(loss.detach()) * n, count + n
            valid = self._nll(H, held_out)
            self.history_["train_loss"].append(total / max(count, 1))
            self.history_["valid_loss"].append(valid)
            if valid < best:
                best, best_state, best_epoch = valid, H.detach().clone(), epoch
            if progress is not None:
                progress({"epoch": epoch, "n_epochs": cfg.epochs, "fraction": epoch / cfg.epochs,
                          "train_loss": total / max(count, 1), "valid_loss": valid})
            logger.debug("epoch %d: train %.5g valid %.5g", epoch, total / max(count, 1), valid)
        self.kernels_ = best_state.reshape(cfg.n_kernels, cfg.kernel_length).numpy().copy()
        self.best_epoch_ = best_epoch
        return self

    # ------------------------------------------------------------------------ inference
    def _require_fit(self) -> torch.Tensor:
        if self.kernels_ is None:
            raise UnitScopeError("The model has no kernels yet: call fit() or pass kernels=.")
        return torch.from_numpy(self.kernels_.reshape(self.config.n_kernels, 1, -1).astype(np.float32))

    def encode(self, y, *, support=None, baseline=None, mask=None) -> np.ndarray:
        """Codes of ``y`` under the current kernels (arguments as in :meth:`fit`).

        Returns
        -------
        codes : ndarray, shape (n_trials, [n_neurons,] n_kernels, n_codes)
            Zero outside the support with known timing.
        """
        H = self._require_fit()
        data, lead = self._prepare(y, support, baseline, mask)
        with torch.no_grad():
            op, x = self._encode(H, data)
            x = op.full(x)
        return x.numpy().reshape(lead + tuple(x.shape[1:]))

    def reconstruct(self, codes, *, baseline) -> np.ndarray:
        """Mean ``g^-1(a + sum_c h_c (*) x_c)``.

        Parameters
        ----------
        codes : ndarray, shape (n_trials, [n_neurons,] n_kernels, n_codes)
        baseline : float or ndarray, shape ``codes.shape[:-2]``

        Returns
        -------
        mean : ndarray, shape (n_trials, [n_neurons,] n_times)
        """
        H = self._require_fit()
        codes = np.asarray(codes, dtype=np.float32)
        lead = codes.shape[:-2]
        x = torch.from_numpy(codes.reshape((-1,) + codes.shape[-2:]))
        a = torch.from_numpy(np.broadcast_to(np.asarray(baseline, np.float32), lead).reshape(-1, 1, 1).copy())
        n_times = x.shape[-1] + H.shape[-1] - 1
        with torch.no_grad():
            mu = self.likelihood.mean(ConvOperator(H, n_times, self.config.code_sign).synth(x) + a)
        return mu.numpy().reshape(lead + (mu.shape[-1],))
