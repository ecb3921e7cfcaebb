"""Credential checks and the per-credential token bucket."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest_api.security import CredentialSet, RateLimiter

KEY = b"k" * 32


def test_credentials() -> None:
    creds = CredentialSet(["first-key-0123456789", "second-key-0123456789"], key=KEY)
    assert creds.check("first-key-0123456789") is not None
    assert creds.check("first-key-0123456789") != creds.check("second-key-0123456789")
    assert creds.check("first-key-012345678") is None
    assert creds.check("") is None
    assert creds.check(None) is None


@given(st.binary(min_size=16, max_size=200), st.text(min_size=1, max_size=40),
       st.text(min_size=1, max_size=40))
def test_a_credential_matches_itself_and_only_itself(key: bytes, secret: str,
                                                     other: str) -> None:
    creds = CredentialSet([secret], key=key)
    assert creds._digest(secret) == hmac.new(key, b"credential|" + secret.encode(),
                                             hashlib.sha256).digest()
    who = creds.check(secret)
    assert who is not None and who == creds.check(secret)
    # Labels name credentials in audit records and alert histories: they must not change.
    assert who.label == hmac.new(key, b"label|" + secret.encode(),
                                 hashlib.sha256).hexdigest()[:12]
    assert (creds.check(other) is None) == (other != secret)


def test_labels_are_keyed_not_plain_hash_prefixes() -> None:
    secret = "first-key-0123456789"
    who = CredentialSet([secret], key=KEY).check(secret)
    assert who is not None and len(who.label) == 12
    assert who.label != hashlib.sha256(secret.encode()).hexdigest()[:12]
    other = CredentialSet([secret], key=b"other-key-0123456789").check(secret)
    assert other is not None and other.label != who.label
    with pytest.raises(ValueError, match=">= 16 bytes"):
        CredentialSet([secret], key=b"short")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_burst_then_refills_at_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=100, burst=5, clock=clock)
    assert [limiter.acquire("k") for _ in range(5)] == [0.0] * 5
    wait = limiter.acquire("k")
    assert wait == pytest.approx(0.01)  # one token at 100/s
    assert limiter.acquire("other") == 0.0  # buckets are per credential
    clock.now += 0.02  # two tokens refilled
    assert limiter.acquire("k") == 0.0
    assert limiter.acquire("k") == 0.0
    assert limiter.acquire("k") > 0


def test_sustained_rate_of_100_per_second_is_never_refused() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=100, burst=1, clock=clock)
    for _ in range(1000):
        assert limiter.acquire("k") == 0.0
        clock.now += 0.01


@pytest.mark.parametrize(("rate", "burst", "message"), [(0, 1, "rate_per_s"), (1, 0, "burst")])
def test_bad_parameters_are_refused(rate: float, burst: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RateLimiter(rate_per_s=rate, burst=burst)


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert RateLimiter.retry_after_header(0.01) == "1"
    assert RateLimiter.retry_after_header(2.2) == "3"


def test_the_bucket_table_stays_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=1, burst=2, clock=clock, max_buckets=100)
    for i in range(1_000):
        limiter.acquire(f"10.0.{i // 256}.{i % 256}")
        clock.now += 0.001
    assert len(limiter) <= 100
    # A draining bucket survives a prune while it can: the address stays limited.
    limiter.acquire("attacker")
    limiter.acquire("attacker")
    assert limiter.acquire("attacker") > 0
