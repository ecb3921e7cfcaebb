"""Count-distribution tails the detectors compare observations with, accurate at any scale.

Every tail goes through a regularized incomplete gamma or beta function (``scipy.special``),
never through a sum started at ``exp(-lam)`` (which underflows to 0 above lam = 745, and
would call a steady 800-an-hour checkpoint "silent"). Quantiles are found by bisection on a
bracket, so every loop here has a bound.

* Poisson(lam):        P(X <= x) = Q(x + 1, lam)        (regularized upper gamma)
                       P(X >= x) = P(x, lam), x >= 1     (regularized lower gamma)
* NegBin(mean, size):  p = size / (size + mean);  P(X <= x) = I_p(size, x + 1)
  (variance mean + mean^2 / size; size -> infinity is Poisson)
* Beta-binomial(n, a, b): P(X >= k) summed term by term in log space from k up (terms fall
  geometrically past the mode; at most n - k + 1 terms).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from scipy import special

__all__ = [
    "betabinom_sf",
    "nbinom_cdf",
    "nbinom_sf",
    "poisson_cdf",
    "poisson_sf",
    "upper_quantile",
]

#: Beyond this size a negative binomial is a Poisson to double precision.
_POISSON_SIZE = 1e12


def _check_mean(mean: float) -> None:
    if not mean >= 0 or math.isinf(mean):
        raise ValueError(f"mean must be finite and >= 0, got {mean}")


def poisson_cdf(x: int, lam: float) -> float:
    """``P(X <= x)`` for ``X ~ Poisson(lam)``."""
    _check_mean(lam)
    if x < 0:
        return 0.0
    if lam == 0:
        return 1.0
    return float(special.gammaincc(x + 1, lam))


def poisson_sf(x: int, lam: float) -> float:
    """``P(X >= x)`` for ``X ~ Poisson(lam)``."""
    _check_mean(lam)
    if x <= 0:
        return 1.0
    if lam == 0:
        return 0.0
    return float(special.gammainc(x, lam))


def _nb_p(mean: float, size: float) -> float:
    if not size > 0:
        raise ValueError(f"size must be > 0, got {size}")
    return size / (size + mean)


def nbinom_cdf(x: int, mean: float, size: float) -> float:
    """``P(X <= x)`` for a negative binomial with ``mean`` and ``size`` (dispersion)."""
    _check_mean(mean)
    if size >= _POISSON_SIZE:
        return poisson_cdf(x, mean)
    if x < 0:
        return 0.0
    if mean == 0:
        return 1.0
    return float(special.betainc(size, x + 1, _nb_p(mean, size)))


def nbinom_sf(x: int, mean: float, size: float) -> float:
    """``P(X >= x)`` for a negative binomial with ``mean`` and ``size``."""
    _check_mean(mean)
    if size >= _POISSON_SIZE:
        return poisson_sf(x, mean)
    if x <= 0:
        return 1.0
    if mean == 0:
        return 0.0
    # 1 - I_p(size, x) = I_{1-p}(x, size), computed directly (no cancellation).
    return float(special.betainc(x, size, 1.0 - _nb_p(mean, size)))


def betabinom_sf(k: int, n: int, a: float, b: float) -> float:
    """``P(X >= k)`` for ``X ~ BetaBinomial(n, a, b)``: a binomial count whose success
    probability is uncertain, Beta(a, b) (for example a share learned from few days)."""
    if n < 0 or not a > 0 or not b > 0:
        raise ValueError(f"need n >= 0, a > 0, b > 0; got n={n}, a={a}, b={b}")
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    log_norm = special.betaln(a, b)
    total = 0.0
    for j in range(k, n + 1):  # bounded by n; stops early once terms stop mattering
        # log C(n, j) = -log(n + 1) - log B(n - j + 1, j + 1)
        log_term = (-math.log(n + 1) - special.betaln(n - j + 1, j + 1)
                    + special.betaln(j + a, n - j + b) - log_norm)
        term = math.exp(log_term)
        total += term
        if j > (n * a / (a + b)) + 1 and term < 1e-17 * total:
            break
    return min(1.0, total)


def upper_quantile(sf: Callable[[int], float], alpha: float, *, start: int = 1,
                   limit: int = 10**9) -> int:
    """Smallest ``q >= start`` with ``sf(q) < alpha``, for a decreasing survival function
    ``sf(q) = P(X >= q)``: bisection over ``[start, limit]`` (at most ~30 steps)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be within (0, 1), got {alpha}")
    f = sf
    lo, hi = start, start
    while f(hi) >= alpha:  # exponential search for an upper bracket, at most ~30 doublings
        lo = hi + 1
        hi = min(limit, hi * 2 + 1)
        if lo > limit:
            raise ValueError(f"no quantile below {limit} for alpha {alpha}")
    while lo < hi:  # sf(hi) < alpha, sf(q) >= alpha for q < lo
        mid = (lo + hi) // 2
        if f(mid) < alpha:
            hi = mid
        else:
            lo = mid + 1
    return hi
