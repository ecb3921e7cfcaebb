"""Credentials and per-credential rate limits.

Front ends send ``X-API-Key``; staff send ``Authorization: Bearer <token>``. Credentials
from the environment are unrestricted (every checkpoint, area and role). Comparisons are
constant-time. Each credential has a token bucket (``rate_limit_per_s`` refill,
``rate_limit_burst`` capacity); an empty bucket answers 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["CredentialSet", "RateLimiter"]


class CredentialSet:
    def __init__(self, secrets: Iterable[str]) -> None:
        self._digests = [hashlib.sha256(s.encode()).digest() for s in secrets]

    def check(self, presented: str | None) -> str | None:
        """A short, non-secret label of the matching credential, or ``None``."""
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode()).digest()
        found = None
        for known in self._digests:  # no early exit: timing does not tell which matched
            if hmac.compare_digest(digest, known):
                found = known.hex()[:12]
        return found


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, *, rate_per_s: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0:
            raise ValueError(f"rate_per_s must be > 0, got {rate_per_s}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        self._rate = rate_per_s
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, who: str, cost: float = 1.0) -> float:
        """0 if allowed, else the seconds to wait before a retry can succeed."""
        now = self._clock()
        bucket = self._buckets.get(who)
        if bucket is None:
            bucket = self._buckets[who] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= cost - 1e-9:  # float refill must not refuse an exact rate
            bucket.tokens -= cost
            return 0.0
        return max(0.001, (cost - bucket.tokens) / self._rate)

    @staticmethod
    def retry_after_header(wait_s: float) -> str:
        return str(max(1, math.ceil(wait_s)))
