"""Redis access of the API: the ingest idempotency marks, the registry view, the stats view.

Route handlers never talk to Redis directly; they call these classes, which map Redis
errors to ``StoreUnavailableError``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Literal, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from detectors.counts import HourBucket
from detectors.underuse import CheckpointDay
from ingest_api.access import EVERYWHERE, Area
from ingest_api.errors import StoreUnavailableError
from vhc_common import redis_keys
from vhc_common.redis_keys import as_text
from vhc_common.schemas import CheckpointEvent, OutbreakAreasEvent
from vhc_common.timebase import to_ms

__all__ = [
    "CheckpointStore",
    "Claim",
    "OutbreakAreaStore",
    "SeenStore",
    "StatsStore",
    "checkpoint_days",
]


class SeenStore:
    """Which declaration ids are durably in Kafka (the ingest's idempotency record).

    A declaration is *claimed* (``pending:<owner>``, a TTL longer than the whole publish
    path) while it is being published and *confirmed* (``done``, kept for the retention
    period) after the broker acknowledged. A failed publish *releases* the claim, so the
    client's retry is accepted, not called a duplicate; a release deletes only its own
    claim (a late release cannot free another request's). A crash between
    acknowledgement and confirmation leaves a claim that expires; the retry is then
    published again and the worker, which counts by declaration id, still counts it once.
    """

    def __init__(self, redis: Redis, *, retention_s: int, pending_ttl_s: int = 30) -> None:
        self._redis = redis
        self._retention_ms = retention_s * 1000
        self._pending_ms = pending_ttl_s * 1000

    async def claim_registered(
        self, items: Sequence[tuple[str, str]], *, owner: str, area: Area = EVERYWHERE,
    ) -> list[Claim]:
        """For each ``(declaration id, checkpoint id)``: ``unknown`` if the checkpoint is
        not registered, ``forbidden`` if it lies outside ``area`` (nothing claimed for
        either), ``done`` if in Kafka already, ``pending`` if another request holds it,
        else ``claimed`` for ``owner``; every item ``lost`` if Redis lost its data (the
        registry view cannot be trusted until it is put back). One round trip."""
        if not items:
            return []
        keys = [redis_keys.checkpoint_index(), redis_keys.checkpoint_places(),
                redis_keys.restored_marker("api"),
                *(redis_keys.declaration_seen(d) for d, _ in items)]
        mode = "" if area.code is None else "W" if len(area.code) == 5 else "P"
        try:
            answers = await self._redis.eval(_CLAIM_REGISTERED, len(keys), *keys,
                                             self._pending_ms, f"pending:{owner}", mode,
                                             area.code or "", *(c for _, c in items))
        except RedisError as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc
        out: list[Claim] = []
        for a in answers:
            text = a.decode() if isinstance(a, bytes) else a
            out.append(cast(Claim, text) if text in _CLAIMS else "pending")
        return out

    async def confirm(self, ids: Sequence[str]) -> None:
        """Mark ``ids`` as durably in Kafka (kept for the retention period)."""
        if not ids:
            return
        keys = [redis_keys.declaration_seen(i) for i in ids]
        try:  # one command for the whole batch, not one per id
            await self._redis.eval(_CONFIRM, len(keys), *keys, self._retention_ms)
        except RedisError as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc

    async def release(self, ids: Sequence[str], *, owner: str) -> int:
        """Free ``owner``'s claims on ``ids`` (others' claims and confirmed ids stay);
        returns how many were freed."""
        if not ids:
            return 0
        keys = [redis_keys.declaration_seen(i) for i in ids]
        try:
            return int(await self._redis.eval(_RELEASE, len(keys), *keys, f"pending:{owner}"))
        except RedisError as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc


Claim = Literal["claimed", "done", "pending", "unknown", "forbidden", "lost"]
_CLAIMS = frozenset({"claimed", "done", "pending", "unknown", "forbidden", "lost"})

# KEYS: the checkpoint index, the checkpoint places hash, the API's restored marker, then
# one declaration key per item; ARGV: the pending TTL (ms), the owner's claim value, the
# area mode ("" everywhere, "W" a ward, "P" a province) and code, then each item's
# checkpoint id. Per item: "unknown", "forbidden", "claimed", "done" or "pending"; every
# item "lost" when the marker is gone (Redis lost its data: see vhc_common.redis_loss).
_CLAIM_REGISTERED = """
local out = {}
if redis.call('EXISTS', KEYS[3]) == 0 then
  for i = 4, #KEYS do out[i - 3] = 'lost' end
  return out
end
local mode, code = ARGV[3], ARGV[4]
for i = 4, #KEYS do
  local cp = ARGV[i + 1]
  local allowed = true
  if not redis.call('ZSCORE', KEYS[1], cp) then
    out[i - 3] = 'unknown'
    allowed = false
  elseif mode ~= '' then
    local place = redis.call('HGET', KEYS[2], cp)
    if not place then allowed = false
    elseif mode == 'P' then allowed = string.sub(place, 1, 2) == code
    else allowed = string.sub(place, 4) == code end
    if not allowed then out[i - 3] = 'forbidden' end
  end
  if allowed then
    local previous = redis.call('SET', KEYS[i], ARGV[2], 'NX', 'PX', ARGV[1], 'GET')
    if not previous then out[i - 3] = 'claimed'
    elseif previous == 'done' then out[i - 3] = 'done'
    else out[i - 3] = 'pending' end
  end
end
return out
"""

# KEYS: declaration keys; ARGV: the owner's claim value. Deletes only the owner's claims.
_RELEASE = """
local n = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]); n = n + 1 end
end
return n
"""


# KEYS: declaration keys; ARGV: the retention (ms). Marks each as done.
_CONFIRM = """
for i = 1, #KEYS do redis.call('SET', KEYS[i], 'done', 'PX', ARGV[1]) end
return #KEYS
"""


class CheckpointStore:
    """The registry's Redis view (source of truth: the compacted ``checkpoints.v1``)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def put(self, checkpoint: CheckpointEvent) -> None:
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.set(redis_keys.checkpoint(checkpoint.checkpoint_id),
                     checkpoint.model_dump_json())
            pipe.zadd(redis_keys.checkpoint_index(), {checkpoint.checkpoint_id: 0})
            pipe.hset(redis_keys.checkpoint_places(), checkpoint.checkpoint_id,
                      _place(checkpoint))
            await pipe.execute()
        except RedisError as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc

    async def restore(self, checkpoints: Sequence[CheckpointEvent]) -> int:
        """Put back checkpoints the view lacks; returns how many were missing."""
        if not checkpoints:
            return 0
        try:
            pipe = self._redis.pipeline(transaction=False)
            for cp in checkpoints:
                pipe.set(redis_keys.checkpoint(cp.checkpoint_id), cp.model_dump_json(), nx=True)
                pipe.hsetnx(redis_keys.checkpoint_places(), cp.checkpoint_id, _place(cp))
            added = (await pipe.execute())[::2]
            await self._redis.zadd(redis_keys.checkpoint_index(),
                                   {cp.checkpoint_id: 0 for cp in checkpoints})
        except RedisError as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc
        return sum(1 for a in added if a)

    async def get(self, checkpoint_id: str) -> CheckpointEvent | None:
        try:
            raw = await self._redis.get(redis_keys.checkpoint(checkpoint_id))
        except RedisError as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc
        return None if raw is None else CheckpointEvent.model_validate_json(raw)

    async def registered(self, checkpoint_ids: Sequence[str]) -> set[str]:
        """The subset of ``checkpoint_ids`` that is registered."""
        unique = list(dict.fromkeys(checkpoint_ids))
        if not unique:
            return set()
        try:
            scores = await self._redis.zmscore(redis_keys.checkpoint_index(), unique)
        except RedisError as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc
        return {cid for cid, score in zip(unique, scores, strict=True) if score is not None}

    async def page(self, *, after: str | None, limit: int) -> list[CheckpointEvent]:
        """Checkpoints in id order, starting after ``after``."""
        try:
            start = f"({after}" if after else "-"
            ids = await self._redis.zrangebylex(redis_keys.checkpoint_index(), start, "+",
                                                start=0, num=limit)
            if not ids:
                return []
            raws = await self._redis.mget([redis_keys.checkpoint(as_text(i)) for i in ids])
        except RedisError as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc
        return [CheckpointEvent.model_validate_json(r) for r in raws if r is not None]

    async def all(self, *, ward_code: str | None = None,
                  area: Area = EVERYWHERE) -> list[CheckpointEvent]:
        """Every registered checkpoint (of one ward; in ``area``), in id order."""
        out: list[CheckpointEvent] = []
        cursor = None
        while True:
            page = await self.page(after=cursor, limit=500)
            out += [cp for cp in page if (ward_code is None or cp.ward_code == ward_code)
                    and area.covers_ward(cp.ward_code)]
            if len(page) < 500:
                return out
            cursor = page[-1].checkpoint_id


class OutbreakAreaStore:
    """The outbreak-area list in force now (source of truth: ``outbreak-areas.v1``)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def put_if_later(self, event: OutbreakAreasEvent) -> bool:
        """Store ``event``'s list unless one that starts later is stored already (the list
        in force is the one with the latest start, backdated or not)."""
        value = json.dumps({"areas": list(event.areas),
                            "effective_from": event.effective_from.isoformat()})
        try:
            return bool(await self._redis.eval(_SET_IF_LATER, 1, redis_keys.outbreak_areas(),
                                               value, to_ms(event.effective_from)))
        except RedisError as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc

    async def current(self) -> dict[str, Any] | None:
        """``{"areas": [...], "effective_from": iso}`` or ``None`` before any list."""
        try:
            raw = await self._redis.get(redis_keys.outbreak_areas())
        except RedisError as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc
        return None if raw is None else dict(json.loads(raw))


_SET_IF_LATER = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local at = redis.call('GET', KEYS[1] .. ':at')
  if at and tonumber(at) > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[1] .. ':at', ARGV[2])
return 1
"""


class StatsStore:
    """Reads the hour buckets the worker maintains (see ``streams.views``)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def buckets(
        self, checkpoint_id: str, hours: range
    ) -> tuple[int | None, list[HourBucket]]:
        """Newest ``scanned_at`` (ms) and the buckets of ``hours`` that exist."""
        keys = [redis_keys.stats_last(checkpoint_id)]
        keys += [redis_keys.stats_bucket(checkpoint_id, h) for h in hours]
        try:
            raws = await self._redis.mget(keys)
        except RedisError as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc
        last = int(raws[0]) if raws[0] is not None else None
        buckets = [HourBucket.decode(h, _bytes(raw))
                   for h, raw in zip(hours, raws[1:], strict=True) if raw is not None]
        return last, buckets

    async def daily_totals(self, day: date) -> dict[str, int]:
        """Declarations per checkpoint on a local (UTC+7) date."""
        try:
            raw = cast(dict[Any, Any], await self._redis.hgetall(
                redis_keys.daily_totals(day.isoformat())))
        except RedisError as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc
        return {as_text(k): int(v) for k, v in raw.items()}

    async def last_seen(self, checkpoint_ids: Sequence[str]) -> list[int | None]:
        """Newest ``scanned_at`` (ms) of each checkpoint, ``None`` if none yet."""
        if not checkpoint_ids:
            return []
        try:
            raws = await self._redis.mget([redis_keys.stats_last(i) for i in checkpoint_ids])
        except RedisError as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc
        return [None if r is None else int(r) for r in raws]

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except RedisError:
            return False

    async def worker_alive(self) -> bool:
        try:
            return bool(await self._redis.exists(redis_keys.worker_heartbeat()))
        except RedisError:
            return False


def _place(checkpoint: CheckpointEvent) -> str:
    return f"{checkpoint.province_code}:{checkpoint.ward_code}"


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def checkpoint_days(registry: Sequence[CheckpointEvent],
                    totals: Mapping[str, int]) -> list[CheckpointDay]:
    """The registry with a day's totals, as ``detectors.underuse`` takes them."""
    return [CheckpointDay(cp.checkpoint_id, cp.ward_code, cp.kind.value,
                          totals.get(cp.checkpoint_id, 0)) for cp in registry]
