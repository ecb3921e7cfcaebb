"""Poisson tails shared by the detectors that compare a count with an expectation."""

from __future__ import annotations

import math

__all__ = ["poisson_cdf", "poisson_threshold"]


def poisson_cdf(x: int, lam: float) -> float:
    """``P(X <= x)`` for ``X ~ Poisson(lam)``."""
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    if x < 0:
        return 0.0
    term = math.exp(-lam)
    total = term
    for i in range(1, x + 1):
        term *= lam / i
        total += term
    return min(1.0, total)


def poisson_threshold(lam: float, alpha: float) -> int:
    """Smallest ``q`` with ``P(X >= q) < alpha`` for ``X ~ Poisson(lam)``."""
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    q = 1
    while 1.0 - poisson_cdf(q - 1, lam) >= alpha:
        q += 1
    return q
