"""Noticing that Redis lost its data (flushed, failed over to an empty replica, replaced by
a new instance without its files), so each process can put back the views it owns.

Each process keeps a marker key of its own (no expiry), and each role (the API, a worker
group) a marker saying its views are in place, set once they are (``mark_restored``). The
first check of a process says "lost" when its role's marker is missing (a new or emptied
Redis); later checks say "lost" when the process's own marker has vanished. Kafka is the
source of truth for every view, so "lost" means "rebuild", never "give up". The ingest
claim script refuses (503) while the API's role marker is missing, so no declaration is
judged against a registry view that is not back yet.
"""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from vhc_common import redis_keys

__all__ = ["RedisLossGuard"]


class RedisLossGuard:
    def __init__(self, redis: Redis, role: str) -> None:
        self._redis = redis
        self._own = redis_keys.instance_marker(f"{role}:{uuid.uuid4().hex}")
        self._restored = redis_keys.restored_marker(role)
        self._checked = False

    async def lost(self) -> bool:
        """Whether the data this process (or, on the first call, its role) wrote is gone.
        Raises ``RedisError`` when Redis is down."""
        if not self._checked:
            had = bool(await self._redis.exists(self._restored))
            await self._redis.set(self._own, "1")
            self._checked = True
            return not had
        return bool(await self._redis.set(self._own, "1", nx=True))

    async def mark_restored(self) -> None:
        """The role's views are back (or were never lost)."""
        await self._redis.set(self._restored, "1")

    async def close(self) -> None:
        """Forget this process's marker (a clean stop)."""
        await self._redis.delete(self._own)
