"""Configuration of the unrolled convolutional sparse coding model (DUNL, METHODS.md 2.2-2.4)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .._validation import UnitScopeError, config_from_dict, check_option, check_range, ensure_int

__all__ = ["DeconvConfig", "LIKELIHOODS", "ALGORITHMS", "TIMINGS", "BACKPROPS"]

LIKELIHOODS = ("gaussian", "poisson", "bernoulli")
ALGORITHMS = ("fista", "ista")
TIMINGS = ("known", "unknown")
BACKPROPS = ("full", "truncated")


@dataclass
class DeconvConfig:
    """Hyper-parameters of an unrolled (F)ISTA deconvolution model.

    Defaults follow the published configurations (METHODS.md 2.4) where one exists; the
    others are marked [A].

    Attributes
    ----------
    n_kernels : int
        Number of kernels C, shared across trials (and neurons).
    kernel_length : int
        Kernel length K in bins.
    likelihood : {"gaussian", "poisson", "bernoulli"}
        Observation model: identity link + squared error, log link, logit link.
    n_iter : int
        Number R of unrolled proximal-gradient iterations of the encoder.
    algorithm : {"fista", "ista"}
        FISTA (momentum) or plain ISTA iterations.
    step : float or None
        Encoder step size alpha. None (default) uses ``1 / L``, with L the analytic bound of
        the Lipschitz constant of the data term (likelihood curvature bound times the
        squared operator norm of the kernels, from their Fourier transform) [A]. A step
        above ``2 / L`` diverges; divergence is detected and reported.
    lam : float
        Sparsity weight lambda of the encoder's l1 prox (0 with known timing [D]).
    lam_decay : float
        Per-iteration multiplicative decay of lambda (1 = none).
    code_sign : tuple of int or None
        Per-kernel code constraint: 1 non-negative, -1 non-positive, 2 two-sided. None:
        all non-negative; such a filled-in default follows a new ``n_kernels`` in
        :meth:`replace`, while a value given explicitly must match it.
    kernel_nonneg : tuple of bool or None
        Per-kernel projection of the kernel onto >= 0 after every step. None: none (a
        filled-in default, following a new ``n_kernels`` in :meth:`replace` as ``code_sign``).
    timing : {"known", "unknown"}
        Known: the code support is restricted to the event onsets given to ``fit``.
        Unknown: sparsity plus top-k with ``n_events`` events per trial and kernel.
    n_events : int or None
        Number of events per trial and kernel (top-k), required with unknown timing.
    topk_every : int
        Apply the decreasing top-k schedule every this many iterations (a final top-k
        always follows the loop).
    topk_separation : int
        [A] Top-k keeps only codes that are the largest within +-``topk_separation`` bins
        (0 = plain top-k as in [D]; default 1: local maxima). Neighbouring code positions of one event are nearly
        collinear, so plain top-k spends several of its k picks on one event.
    refine_iter : int or None
        [A] Unknown timing: after the detection loop and its final top-k, this many
        (F)ISTA iterations re-estimate the codes on the detected support (the known-timing
        encoder); kernel gradients flow through them and the decoder, as through the
        iterations after the last top-k in [D]. None: ``n_iter``.
    backprop : {"full", "truncated"}
        Backpropagate through all unrolled iterations, or only the last
        ``truncated_iters`` ones (validated, unlike the published YAML typo, 2.9).
    truncated_iters : int
        Iterations with gradient when ``backprop="truncated"``.
    epochs : int
        Passes over the training trials.
    batch_size : int
        Trials per optimiser step.
    lr : float
        Adam learning rate (eps 1e-3 as in [D]).
    smooth_weight : float
        Weight of the kernel smoothness penalty sum_t (h[t+1]-h[t])^2 / C.
    l1_weight : float or None
        Weight of the mean |code| penalty in the training loss; None uses ``lam`` [D].
    valid_fraction : float
        Fraction of trials (the last ones) held out to select the epoch by validation
        reconstruction loss, never by a true kernel (2.9).
    kernel_init : {"auto", "random", "average", "decay"}
        Initial kernels when none are given: "random" is N(0, 1) (optionally smoothed) as in
        [D]. [A] "average" (known timing): the event-locked average of the training data
        minus the baseline mean, for each kernel over its events, plus 10% smoothed noise;
        with sign-constrained codes a random kernel anti-correlated with the response gets
        all-zero codes and hence no gradient, which this avoids. [A] Design decision:
        kernels whose onsets coincide (the same onsets in every trial and neuron, as the
        salience and value kernels at the reward of simulation B) have the same average,
        and the noise alone did not separate them: on simulation B, learning from that shared start settled in
        a label-mixed local minimum (value kernel error 0.85-0.88, salience 0.49-0.53 after
        15 epochs on 5 data seeds). So within such a group only the first kernel (lowest
        index) starts from the average; each further one starts from the next principal
        component of the group's event windows (each centred as for the average and
        averaged over the neurons of its trial), signed as a net-positive response
        (negated for non-positive codes), clipped at 0 for a non-negative kernel, unit
        norm, plus the same 10% noise; where the windows span too few components, from the
        average as before. On simulation B this starts the value kernel at error 0.55-0.61
        (0.76-0.78 before) and learning reaches 0.27-0.39 (salience 0.14-0.33). Kernels
        with onsets of their own start exactly as before.
        [A] "decay" (unknown timing): an exponential decay from
        the event (time constant K/5) plus 10% smoothed noise, the prior that a response
        follows its event; with unknown timing the lag of a kernel relative to its events is
        not identifiable (a shifted kernel with shifted codes fits as well), and this prior
        anchors responses at the kernel's start. "auto": "average" with known timing,
        "decay" with unknown timing.
    init_smooth : float
        Standard deviation in bins of the Gaussian smoother applied to random initial
        kernels (0: none).
    divergence_factor : float
        The encoder is declared divergent when its final objective exceeds this factor
        times the objective at zero code, or is not finite [A].
    """

    n_kernels: int = 1
    kernel_length: int = 20
    likelihood: str = "gaussian"
    n_iter: int = 100
    algorithm: str = "fista"
    step: float | None = None
    lam: float = 0.0
    lam_decay: float = 1.0
    code_sign: tuple | None = None
    kernel_nonneg: tuple | None = None
    timing: str = "known"
    n_events: int | None = None
    topk_every: int = 1
    topk_separation: int = 1
    refine_iter: int | None = None
    backprop: str = "full"
    truncated_iters: int = 10
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-2
    smooth_weight: float = 0.0
    l1_weight: float | None = None
    valid_fraction: float = 0.2
    kernel_init: str = "auto"
    init_smooth: float = 0.0
    divergence_factor: float = 10.0

    def __post_init__(self):
        self.n_kernels = ensure_int("n_kernels", self.n_kernels)
        check_range("n_kernels", self.n_kernels, low=1)
        self.kernel_length = ensure_int("kernel_length", self.kernel_length)
        check_range("kernel_length", self.kernel_length, low=1)
        check_option("likelihood", self.likelihood, LIKELIHOODS)
        self.n_iter = ensure_int("n_iter", self.n_iter)
        check_range("n_iter", self.n_iter, low=1)
        check_option("algorithm", self.algorithm, ALGORITHMS)
        if self.step is not None:
            check_range("step", float(self.step), low=0.0, low_inclusive=False)
        check_range("lam", float(self.lam), low=0.0)
        check_range("lam_decay", float(self.lam_decay), low=0.0, low_inclusive=False, high=1.0)
        filled = set()  # per-kernel fields filled with their default here (not given)
        if self.code_sign is None:
            self.code_sign = (1,) * self.n_kernels
            filled.add("code_sign")
        self.code_sign = tuple(int(s) for s in self.code_sign)
        if len(self.code_sign) != self.n_kernels:
            raise UnitScopeError(
                f"code_sign has {len(self.code_sign)} entries but n_kernels={self.n_kernels}.")
        for s in self.code_sign:
            check_option("code_sign", s, (1, -1, 2))
        if self.kernel_nonneg is None:
            self.kernel_nonneg = (False,) * self.n_kernels
            filled.add("kernel_nonneg")
        self._filled = frozenset(filled)  # not a field: not compared, not in to_dict
        self.kernel_nonneg = tuple(bool(b) for b in self.kernel_nonneg)
        if len(self.kernel_nonneg) != self.n_kernels:
            raise UnitScopeError(
                f"kernel_nonneg has {len(self.kernel_nonneg)} entries but n_kernels={self.n_kernels}.")
        check_option("timing", self.timing, TIMINGS)
        if self.n_events is not None:
            self.n_events = ensure_int("n_events", self.n_events)
            check_range("n_events", self.n_events, low=1)
        if self.timing == "unknown" and self.n_events is None:
            raise UnitScopeError(
                "timing='unknown' needs n_events (the known number of events per trial and "
                "kernel, used by top-k), got n_events=None.")
        self.topk_every = ensure_int("topk_every", self.topk_every)
        check_range("topk_every", self.topk_every, low=1)
        self.topk_separation = ensure_int("topk_separation", self.topk_separation)
        check_range("topk_separation", self.topk_separation, low=0)
        if self.refine_iter is not None:
            self.refine_iter = ensure_int("refine_iter", self.refine_iter)
            check_range("refine_iter", self.refine_iter, low=1)
        check_option("backprop", self.backprop, BACKPROPS)
        self.truncated_iters = ensure_int("truncated_iters", self.truncated_iters)
        check_range("truncated_iters", self.truncated_iters, low=1)
        self.epochs = ensure_int("epochs", self.epochs)
        check_range("epochs", self.epochs, low=0)
        self.batch_size = ensure_int("batch_size", self.batch_size)
        check_range("batch_size", self.batch_size, low=1)
        check_range("lr", float(self.lr), low=0.0, low_inclusive=False)
        check_range("smooth_weight", float(self.smooth_weight), low=0.0)
        if self.l1_weight is not None:
            check_range("l1_weight", float(self.l1_weight), low=0.0)
        check_range("valid_fraction", float(self.valid_fraction), low=0.0, high=0.9)
        check_option("kernel_init", self.kernel_init, ("auto", "random", "average", "decay"))
        check_range("init_smooth", float(self.init_smooth), low=0.0)
        check_range("divergence_factor", float(self.divergence_factor), low=1.0,
                    low_inclusive=False)

    @property
    def l1_loss_weight(self) -> float:
        """The training-loss l1 weight (``lam`` when ``l1_weight`` is None, as in [D])."""
        return float(self.lam if self.l1_weight is None else self.l1_weight)

    def replace(self, **changes) -> "DeconvConfig":
        """Return a validated copy with ``changes`` applied.

        ``code_sign`` and ``kernel_nonneg`` left to their defaults (None) are filled in again
        for the copy's ``n_kernels`` unless ``changes`` sets them; values given explicitly
        are kept and must match it.
        """
        current = self.to_dict()
        for name in getattr(self, "_filled", ()):
            current[name] = None
        return DeconvConfig.from_dict({**current, **changes})

    def to_dict(self) -> dict:
        """JSON-able dict (tuples become lists)."""
        d = asdict(self)
        d["code_sign"] = list(self.code_sign)
        d["kernel_nonneg"] = list(self.kernel_nonneg)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DeconvConfig":
        """Build from a dict; unknown keys are an error naming the valid ones."""
        return config_from_dict(cls, d, "deconvolution")
