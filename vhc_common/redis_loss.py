"""Noticing that Redis lost its data (flushed, failed over to an empty replica, replaced by
a new instance without its files), so each process can put back the views it owns.

Each process keeps a marker key of its own (refreshed, with a TTL, at every check), and
each role (the API, a worker group) a marker saying its views are in place, set once they
are (``mark_restored``). The first check of a process says "lost" when its role's marker
is missing (a new or emptied Redis); later checks say "lost" when the process's own
marker has vanished. Kafka is the source of truth for every view, so "lost" means
"rebuild", never "give up". The ingest claim script refuses (503) while the API's role
marker is missing, so no declaration is judged against a registry view that is not back
yet.

A process's marker holds a *generation*, a token that changes at each loss it notices.
Work that must not be declared done across a loss it did not see (the worker's replay of
the exposure index, ``streams.recovery``) takes the generation when it starts and writes
its "done" with ``hset_if_generation``: nothing is written when Redis lost its data
meanwhile, noticed or not.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from redis.asyncio import Redis

from vhc_common import redis_keys

__all__ = ["MARKER_TTL_S", "RedisLossGuard"]

#: A process's own marker outlives its checks (every few seconds) by far: a process
#: paused longer than this takes the marker's expiry for a loss and rebuilds (harmless).
MARKER_TTL_S = 3_600


class RedisLossGuard:
    def __init__(self, redis: Redis, role: str) -> None:
        self._redis = redis
        self._own = redis_keys.instance_marker(f"{role}:{uuid.uuid4().hex}")
        self._restored = redis_keys.restored_marker(role)
        self._checked = False
        self._generation = uuid.uuid4().hex

    @property
    def generation(self) -> str:
        """The token of the data this process wrote since the last loss it noticed."""
        return self._generation

    async def lost(self) -> bool:
        """Whether the data this process (or, on the first call, its role) wrote is gone.
        The process's marker gets a fresh TTL each time (one script), so the markers of
        processes that are gone expire; when it had vanished it is set to a new
        generation in the same step. Raises ``RedisError`` when Redis is down."""
        fresh = uuid.uuid4().hex
        previous = await self._redis.eval(_KEEP_MARKER, 1, self._own, fresh, MARKER_TTL_S)
        if previous is None:
            self._generation = fresh
        if not self._checked:
            self._checked = True
            return not await self._redis.exists(self._restored)
        return previous is None

    async def hset_if_generation(self, generation: str, key: str,
                                 mapping: Mapping[str, str]) -> bool:
        """Set ``mapping``'s fields of the hash ``key`` if this process's marker still
        holds ``generation`` (Redis has kept what the process wrote since then); returns
        whether it did."""
        fields = [item for pair in mapping.items() for item in pair]
        done = await self._redis.eval(_HSET_IF_GENERATION, 2, self._own, key, generation,
                                      *fields)
        return bool(done)

    async def mark_restored(self) -> None:
        """The role's views are back (or were never lost)."""
        await self._redis.set(self._restored, "1")


# KEYS: the marker; ARGV: a new generation, the TTL (s). Returns the previous value (nil:
# the marker had vanished, and now holds the new generation).
_KEEP_MARKER = """
local previous = redis.call('GET', KEYS[1])
if previous then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return previous
"""

# KEYS: the marker, the hash; ARGV: the generation, then field and value pairs.
_HSET_IF_GENERATION = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"""
