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
"""

from __future__ import annotations

import uuid

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

    async def lost(self) -> bool:
        """Whether the data this process (or, on the first call, its role) wrote is gone.
        The process's marker is set again with a fresh TTL each time (one command), so the
        markers of processes that are gone expire. Raises ``RedisError`` when Redis is
        down."""
        previous = await self._redis.set(self._own, "1", ex=MARKER_TTL_S, get=True)
        if not self._checked:
            self._checked = True
            return not await self._redis.exists(self._restored)
        return previous is None

    async def mark_restored(self) -> None:
        """The role's views are back (or were never lost)."""
        await self._redis.set(self._restored, "1")

