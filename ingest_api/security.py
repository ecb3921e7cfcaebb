"""Credentials and per-credential rate limits.

Front ends send ``X-API-Key``; staff send ``Authorization: Bearer <token>``. A credential
carries a role and an area (``ingest_api.access``); a plain entry is unrestricted. Secrets
are held only as keyed hashes and compared in constant time. Each credential has a token
bucket (``rate_limit_per_s`` refill, ``rate_limit_burst`` capacity); an empty bucket
answers 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ingest_api.access import EVERYWHERE, CredentialEntry, Principal, Role

__all__ = ["CredentialSet", "RateLimiter"]


class CredentialSet:
    """Credentials held as keyed hashes (HMAC-SHA256 under a server key), compared in
    constant time. A credential's label, the name it goes by in audit records and alert
    histories, is a second keyed hash: it cannot be computed, or checked against a
    guess, without the server key (plain hash prefixes could)."""

    def __init__(self, entries: Iterable[CredentialEntry | str], *, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError(f"the credential hashing key must be >= 16 bytes, got {len(key)}")
        # The key set up once; each hash copies the keyed state (as ``Pseudonymiser`` does).
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)
        self._known: list[tuple[bytes, Principal]] = []
        for entry in entries:
            if isinstance(entry, str):  # a plain secret: unrestricted
                entry = CredentialEntry(entry, Role.ADMIN, EVERYWHERE)
            self._known.append((self._digest(entry.secret),
                                Principal(self._label(entry.secret), entry.role, entry.area)))

    def _mac(self, domain: bytes, secret: str) -> hmac.HMAC:
        mac = self._keyed.copy()
        mac.update(domain + b"|" + secret.encode())
        return mac

    def _digest(self, secret: str) -> bytes:
        return self._mac(b"credential", secret).digest()

    def _label(self, secret: str) -> str:
        return self._mac(b"label", secret).hexdigest()[:12]

    @staticmethod
    def derive_key(secret: bytes) -> bytes:
        """A key for credential hashing from another server secret (domain-separated)."""
        return hmac.new(secret, b"vhc-watch credential hashing v1", hashlib.sha256).digest()

    def check(self, presented: str | None) -> Principal | None:
        """The matching credential's principal (a short, non-secret label, its role and
        area), or ``None``."""
        if not presented:
            return None
        digest = self._digest(presented)
        found = None
        for known, principal in self._known:  # no early exit: timing does not tell which
            if hmac.compare_digest(digest, known):
                found = principal
        return found


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, *, rate_per_s: float, burst: int,
                 clock: Callable[[], float] = time.monotonic,
                 max_buckets: int = 100_000) -> None:
        if rate_per_s <= 0:
            raise ValueError(f"rate_per_s must be > 0, got {rate_per_s}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        self._rate = rate_per_s
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._max_buckets = max_buckets  # keys may be client addresses: keep it bounded

    def acquire(self, who: str, cost: float = 1.0) -> float:
        """0 if allowed, else the seconds to wait before a retry can succeed."""
        now = self._clock()
        bucket = self._buckets.get(who)
        if bucket is None:
            if len(self._buckets) >= self._max_buckets:
                self._prune(now)
            bucket = self._buckets[who] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= cost - 1e-9:  # float refill must not refuse an exact rate
            bucket.tokens -= cost
            return 0.0
        return max(0.001, (cost - bucket.tokens) / self._rate)

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled (they behave as new ones); if every bucket is
        still draining, forget the oldest half."""
        full = [k for k, b in self._buckets.items()
                if b.tokens + (now - b.updated) * self._rate >= self._burst]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self._max_buckets:
            oldest = sorted(self._buckets, key=lambda k: self._buckets[k].updated)
            for k in oldest[: len(oldest) // 2]:
                del self._buckets[k]

    def __len__(self) -> int:
        return len(self._buckets)

    @staticmethod
    def retry_after_header(wait_s: float) -> str:
        return str(max(1, math.ceil(wait_s)))
