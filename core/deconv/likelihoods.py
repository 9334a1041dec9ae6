"""Observation models of DUNL (METHODS.md 2.1): Gaussian, Poisson and Bernoulli.

Each likelihood maps the natural parameter ``eta = a + sum_c h_c * x_c`` to the mean
``mu = g^-1(eta)`` and gives the negative log-likelihood per bin (up to constants), whose
gradient with respect to ``eta`` is ``mu - y`` for all three.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from .._validation import UnitScopeError, check_option

__all__ = ["Likelihood", "Gaussian", "Poisson", "Bernoulli", "get_likelihood"]

_RATE_FLOOR = 1e-3  # floor of the mean rate before taking logit / log (2.9, [D])


class Likelihood:
    """Base class: link, mean, loss, curvature bound and data-domain check."""

    name = "base"

    def mean(self, eta: torch.Tensor) -> torch.Tensor:
        """Mean ``mu = g^-1(eta)``, same shape as ``eta``."""
        raise NotImplementedError

    def nll(self, y: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood per bin relative to the saturated model (>= 0, 0 at ``mu = y``).

        Same shape as ``y``; the offset does not depend on ``eta``, so gradients are those of
        the plain NLL, and the value is comparable across data sets (half the deviance).
        """
        raise NotImplementedError

    def link(self, mu: np.ndarray) -> np.ndarray:
        """Natural parameter of a mean ``mu`` (used for baselines)."""
        raise NotImplementedError

    def curvature_bound(self, y: torch.Tensor, baseline: torch.Tensor) -> float:
        """Upper bound of d mu / d eta over the region the encoder visits."""
        raise NotImplementedError

    def check_data(self, y: np.ndarray) -> None:
        """Raise :class:`UnitScopeError` when ``y`` lies outside the likelihood's domain."""
        if not np.all(np.isfinite(y)):
            raise UnitScopeError(
                f"The signal has {int(np.sum(~np.isfinite(y)))} NaN/Inf samples; pass a mask "
                "for missing samples instead.")


class Gaussian(Likelihood):
    """Identity link, squared error ``0.5 (y - eta)^2`` (calcium, photometry, activations)."""

    name = "gaussian"

    def mean(self, eta):
        return eta

    def nll(self, y, eta):
        return 0.5 * (y - eta) ** 2

    def link(self, mu):
        return np.asarray(mu, dtype=float)

    def curvature_bound(self, y, baseline):
        return 1.0


class Bernoulli(Likelihood):
    """Logit link, ``-y eta + log(1 + e^eta)``; y is the fraction of spiking sub-bins in [0, 1]."""

    name = "bernoulli"

    def mean(self, eta):
        return torch.sigmoid(eta)

    def nll(self, y, eta):
        xlogy = torch.special.xlogy
        return F.softplus(eta) - y * eta + xlogy(y, y) + xlogy(1 - y, 1 - y)

    def link(self, mu):
        mu = np.clip(np.asarray(mu, dtype=float), _RATE_FLOOR, 1 - _RATE_FLOOR)
        return np.log(mu / (1 - mu))

    def curvature_bound(self, y, baseline):
        return 0.25  # sigma' <= 1/4 (2.9)

    def check_data(self, y):
        super().check_data(y)
        lo, hi = float(np.min(y)), float(np.max(y))
        if lo < 0 or hi > 1:
            raise UnitScopeError(
                f"The 'bernoulli' likelihood needs values in [0, 1] (fraction of spiking sub-bins), "
                f"got values in [{lo:.3g}, {hi:.3g}]. Use likelihood='gaussian' for real-valued "
                "signals or 'poisson' for counts.")


class Poisson(Likelihood):
    """Log link, ``-y eta + e^eta``; y are non-negative counts or rates per bin."""

    name = "poisson"

    def mean(self, eta):
        return torch.exp(eta)

    def nll(self, y, eta):
        return torch.exp(eta) - y * eta - y + torch.special.xlogy(y, y)

    def link(self, mu):
        return np.log(np.maximum(np.asarray(mu, dtype=float), _RATE_FLOOR))

    def curvature_bound(self, y, baseline):
        # [A] e^eta is unbounded; near the solution mu ~ y, so the curvature is bounded by
        # the largest observed value or baseline rate, with a factor 2 of margin.
        peak = max(float(y.max()), float(torch.exp(baseline).max()), _RATE_FLOOR)
        return 2.0 * peak

    def check_data(self, y):
        super().check_data(y)
        lo = float(np.min(y))
        if lo < 0:
            raise UnitScopeError(
                f"The 'poisson' likelihood needs non-negative counts, got a minimum of {lo:.3g}. "
                "Use likelihood='gaussian' for real-valued signals.")


_LIKELIHOODS = {"gaussian": Gaussian, "poisson": Poisson, "bernoulli": Bernoulli}


def get_likelihood(name: str) -> Likelihood:
    """Return the likelihood object named ``name`` ("gaussian", "poisson" or "bernoulli")."""
    check_option("likelihood", name, tuple(_LIKELIHOODS))
    return _LIKELIHOODS[name]()


def logit(p: float) -> float:
    """Logit of a probability (the baseline of a rate ``r`` Hz at bin ``dt`` s is logit(r dt))."""
    return math.log(p / (1 - p))
