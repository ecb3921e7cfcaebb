"""Count tails in the regularized gamma/beta functions: exact at any scale, bounded loops.

The old ``poisson_cdf`` started from ``exp(-lam)``, which underflows above 745: a steady
800 an hour looked "silent" and ``poisson_threshold(746, 0.001)`` never returned.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from detectors.tails import (
    betabinom_sf,
    nbinom_cdf,
    nbinom_sf,
    poisson_cdf,
    poisson_sf,
    upper_quantile,
)


def test_hand_computed_poisson_values() -> None:
    # P(X <= 0) = e^-6.9; P(X <= 1 | 2) = e^-2 (1 + 2) = 0.406006; P(X >= 2 | 1) = 1 - 2/e
    assert poisson_cdf(0, 6.9) == pytest.approx(math.exp(-6.9))
    assert poisson_cdf(1, 2.0) == pytest.approx(0.406006, abs=1e-6)
    assert poisson_sf(2, 1.0) == pytest.approx(1 - 2 / math.e)
    assert poisson_cdf(-1, 2.0) == 0.0
    assert poisson_sf(0, 5.0) == 1.0


def test_no_underflow_above_745() -> None:
    # A steady 800 an hour: observing 800 is the middle of the distribution, not "silent".
    assert poisson_cdf(800, 800.0) == pytest.approx(0.509402, abs=1e-5)
    assert poisson_sf(801, 800.0) == pytest.approx(1 - poisson_cdf(800, 800.0))


def test_the_quantile_that_never_returned_now_does() -> None:
    q = upper_quantile(lambda k: poisson_sf(k, 746.0), 0.001)
    assert q == stats.poisson.isf(0.001, 746.0) + 1
    assert poisson_sf(q, 746.0) < 0.001 <= poisson_sf(q - 1, 746.0)


@settings(max_examples=200, deadline=None)
@given(lam=st.floats(min_value=1e-3, max_value=1e6), frac=st.floats(0.0, 2.0))
def test_poisson_agrees_with_scipy_up_to_a_million(lam: float, frac: float) -> None:
    x = int(lam * frac)
    assert poisson_cdf(x, lam) == pytest.approx(stats.poisson.cdf(x, lam), rel=1e-9, abs=1e-300)
    assert poisson_sf(x, lam) == pytest.approx(stats.poisson.sf(x - 1, lam), rel=1e-9,
                                               abs=1e-300)


@settings(max_examples=100, deadline=None)
@given(lam=st.floats(min_value=1e-2, max_value=1e6),
       alpha=st.sampled_from([0.1, 1e-3, 1e-6, 1e-9]))
def test_quantiles_are_exact_and_bounded(lam: float, alpha: float) -> None:
    q = upper_quantile(lambda k: poisson_sf(k, lam), alpha)
    assert poisson_sf(q, lam) < alpha
    assert q == 1 or poisson_sf(q - 1, lam) >= alpha


@settings(max_examples=100, deadline=None)
@given(mean=st.floats(1e-3, 1e6), size=st.floats(0.05, 1e4), frac=st.floats(0.0, 3.0))
def test_negative_binomial_agrees_with_scipy(mean: float, size: float, frac: float) -> None:
    x = int(mean * frac)
    p = size / (size + mean)
    assert nbinom_cdf(x, mean, size) == pytest.approx(stats.nbinom.cdf(x, size, p), rel=1e-8,
                                                      abs=1e-300)
    assert nbinom_sf(x, mean, size) == pytest.approx(stats.nbinom.sf(x - 1, size, p), rel=1e-8,
                                                     abs=1e-300)


def test_negative_binomial_becomes_poisson() -> None:
    assert nbinom_cdf(3, 5.0, 1e13) == poisson_cdf(3, 5.0)
    # Over-dispersion fattens the tail: P(X >= 20 | mean 8) grows as size shrinks.
    assert nbinom_sf(20, 8.0, 5.0) > nbinom_sf(20, 8.0, 50.0) > poisson_sf(20, 8.0)


def _exact_betabinom_sf(k: int, n: int, a: int, b: int) -> Fraction:
    """For whole a and b the pmf is rational: C(n, j) B(j + a, n - j + b) / B(a, b), with
    B(x, y) = (x - 1)! (y - 1)! / (x + y - 1)!."""
    def beta(x: int, y: int) -> Fraction:
        return Fraction(math.factorial(x - 1) * math.factorial(y - 1), math.factorial(x + y - 1))

    return sum((math.comb(n, j) * beta(j + a, n - j + b) / beta(a, b)
                for j in range(max(k, 0), n + 1)), Fraction(0))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 300), a=st.integers(1, 60), b=st.integers(1, 3000),
       k=st.integers(0, 12))
def test_beta_binomial_is_exact(n: int, a: int, b: int, k: int) -> None:
    # Against exact rational arithmetic (scipy's betabinom is off in the 7th digit for
    # b in the thousands, which is where shares of 0.5 % live).
    expected = float(_exact_betabinom_sf(k, n, a, b))
    assert betabinom_sf(k, n, float(a), float(b)) == pytest.approx(expected, rel=1e-9,
                                                                   abs=1e-300)


def test_beta_binomial_hand_computed() -> None:
    # n = 1: P(X >= 1) is the mean share a / (a + b) = 1 / 13590.
    assert betabinom_sf(1, 1, 1.0, 13589.0) == pytest.approx(1 / 13590, rel=1e-12)


def test_bad_arguments_are_refused_with_the_value() -> None:
    with pytest.raises(ValueError, match="-1"):
        poisson_cdf(3, -1.0)
    with pytest.raises(ValueError, match="size"):
        nbinom_cdf(3, 2.0, 0.0)
    with pytest.raises(ValueError, match="alpha"):
        upper_quantile(lambda k: poisson_sf(k, 3.0), 1.5)
