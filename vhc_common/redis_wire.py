"""Commands packed for Redis in C, for the project's asyncio Redis clients.

redis-py's asyncio connection packs a command in Python, argument by argument, each joined
onto the bytes packed so far (its sync client packs with hiredis when it is installed; the
asyncio one does not). The worker's view scripts pass thousands of keys a call (the
exposure index: about four keys a declaration), and that packing was 2.8 % of the worker's
samples at 2,000 checkpoints; hiredis packs such a call ten times as fast. ``client``
makes a ``redis.asyncio.Redis`` from a URL whose connections pack with
``hiredis.pack_command``, whatever connection class the URL picks (plain, TLS); the bytes
are redis-py's (``tests/unit/test_redis_wire.py``).
"""

from __future__ import annotations

from typing import Any, cast

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.typing import EncodableT

__all__ = ["FastPacking", "client", "fast_class"]

#: what hiredis packs as redis-py's encoder does (UTF-8 text; ``repr`` of numbers)
_PACKED_ALIKE = frozenset({str, bytes, int, float})


class FastPacking(AbstractConnection):
    """A connection whose ``pack_command`` is hiredis's where the arguments are text,
    bytes or numbers and the client encodes text as UTF-8; anything else (a ``bool``,
    ``None``, a memoryview, another encoding) goes redis-py's way, with its errors."""

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        encoder = self.encoder
        if encoder.encoding.lower().replace("-", "") != "utf8" or \
                encoder.encoding_errors != "strict":
            return super().pack_command(*args)
        first = args[0]
        # As redis-py: a command name given with its literal arguments ("CONFIG GET") is
        # sent as separate arguments.
        if isinstance(first, str):
            args = (*first.encode().split(), *args[1:])
        elif isinstance(first, bytes) and b" " in first:
            args = (*first.split(), *args[1:])
        if not _PACKED_ALIKE.issuperset(map(type, args)):
            return super().pack_command(*args)
        return [hiredis.pack_command(cast(Any, args))]  # checked: _PACKED_ALIKE


_FAST: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def fast_class(base: type[AbstractConnection]) -> type[AbstractConnection]:
    """``base`` with hiredis packing (one class per base)."""
    fast = _FAST.get(base)
    if fast is None:
        fast = _FAST[base] = type(f"FastPacking{base.__name__}", (FastPacking, base), {})
    return fast


def client(url: str, **kwargs: Any) -> Redis:
    """``Redis.from_url(url, **kwargs)`` with connections that pack with hiredis."""
    redis = Redis.from_url(url, **kwargs)
    pool = redis.connection_pool
    pool.connection_class = fast_class(pool.connection_class)
    return redis
