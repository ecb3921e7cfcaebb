"""The alerts' Redis view: written by the worker's sink and the API, read by the API.

Keys (all under ``vhc:``): ``alert:<id>`` the alert as served (the event plus ``status``
and ``history``), ``alerts:index`` a sorted set of ids scored by arrival sequence (the
listing order and cursor), ``alerts:seq`` the sequence, and ``alerts:events`` a Redis
stream of every new alert and every status change (Server-Sent Events read it; its
entry ids are the SSE ids, so ``Last-Event-ID`` resumes). Alerts expire with the
retention period, since their evidence links to declarations.

Facet indexes ``alerts:by:<field>:<value>`` (kind, severity, ward, checkpoint; same
scores) let a filtered listing read only the alerts that can match: a filter that matches
nothing costs one round trip, not a scan of thousands. ``alerts:facets-from`` is the first
sequence the facets cover (alerts stored before they existed are scanned in the main
index).

Inserting is idempotent by ``alert_id`` (alert ids are deterministic), so the view can be
rebuilt by replaying ``alerts.v1``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from redis.asyncio import Redis

from vhc_common.redis_keys import as_text
from vhc_common.schemas import AlertEvent, AlertStatus

__all__ = ["AlertMissingError", "AlertResolvedError", "AlertView", "StatusChangeError"]

PREFIX = "vhc:"
INDEX = PREFIX + "alerts:index"
SEQ = PREFIX + "alerts:seq"
EVENTS = PREFIX + "alerts:events"
EVENTS_MAXLEN = 100_000
FACETS = PREFIX + "alerts:by:"
FACETS_FROM = PREFIX + "alerts:facets-from"
#: The fields alerts are listed by, each with a facet index.
FACET_FIELDS = ("kind", "severity", "ward_code", "checkpoint_id")
#: Alerts per insert script call (a call blocks Redis while it runs).
INSERT_CHUNK = 200


def facet_key(field: str, value: str) -> str:
    return f"{FACETS}{field}:{value}"


def _facet_keys(alert: AlertEvent) -> list[str]:
    values = (alert.kind.value, alert.severity.value, alert.ward_code, alert.checkpoint_id)
    return [facet_key(f, v) for f, v in zip(FACET_FIELDS, values, strict=True) if v]


def stored_text(alert: AlertEvent) -> str:
    """A new alert as stored and served: the event's JSON with ``status`` open and an
    empty ``history`` (spliced into the event's own JSON: building a dict of it and
    encoding that again cost more than the rest of storing it)."""
    return f'{alert.model_dump_json()[:-1]},"status":"{AlertStatus.OPEN.value}","history":[]}}'


def _key(alert_id: str) -> str:
    return f"{PREFIX}alert:{alert_id}"


class StatusChangeError(ValueError):
    """The alert does not exist, or the change is not allowed (resolved is final)."""


class AlertMissingError(StatusChangeError):
    """There is no such alert."""


class AlertResolvedError(StatusChangeError):
    """The alert is resolved already (final)."""


class AlertView:
    def __init__(self, redis: Redis, *, retention_s: int) -> None:
        self._redis = redis
        self._retention_s = retention_s

    async def insert(self, alert: AlertEvent) -> bool:
        """Store a new alert (status ``open``); ``False`` if it is stored already.

        One Lua script does it all (the key, its place in the index, its event on the
        stream): Redis runs a script whole or not at all, so an alert is never stored
        without being listed and streamed. An alert stored but not indexed (by a writer
        from before this script) is repaired: indexed and streamed, its stored lifecycle
        kept.
        """
        (added,) = await self.insert_many([alert])
        return added

    async def insert_many(self, alerts: Sequence[AlertEvent]) -> list[bool]:
        """``insert`` for each, in order, in one round trip: a script call per
        ``INSERT_CHUNK`` alerts (a call per alert was most of the worker's alert sink: one
        command for redis-py to pack and parse, and for Redis to run, per alert)."""
        if not alerts:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for start in range(0, len(alerts), INSERT_CHUNK):
            keys = [INDEX, SEQ, EVENTS, FACETS_FROM]
            rows: list[tuple[int, str, str]] = []
            for alert in alerts[start:start + INSERT_CHUNK]:
                facets = _facet_keys(alert)
                keys.append(_key(alert.alert_id))
                keys.extend(facets)
                rows.append((len(facets), stored_text(alert), alert.alert_id))
            pipe.eval(_INSERT, len(keys), *keys, self._retention_s, EVENTS_MAXLEN,
                      json.dumps(rows, ensure_ascii=False))
        return [bool(added) for answer in await pipe.execute() for added in answer]

    async def get(self, alert_id: str) -> dict[str, Any] | None:
        raw = await self._redis.get(_key(alert_id))
        return None if raw is None else dict(json.loads(raw))

    async def set_status(
        self, alert_id: str, status: AlertStatus, *, note: str | None, by: str,
        publish: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    ) -> dict[str, Any]:
        """Acknowledge or resolve; the change and its note are kept in ``history``.

        The change is stored with a compare-and-set (one script: it applies only if the
        alert is still what was read, else the read is retried), then ``publish`` sends
        it to ``alert-status.v1`` exactly once. If publishing fails, the stored change is
        rolled back the same way and the error raised (answered 503): Kafka never holds a
        change the view lacks, and the view never keeps one Kafka lacks.
        """
        key = _key(alert_id)
        while True:
            raw = await self._redis.get(key)
            if raw is None:
                raise AlertMissingError(f"no alert {alert_id!r}")
            before = raw.decode() if isinstance(raw, bytes) else raw
            alert = self.next_status(json.loads(before), status, note=note, by=by)
            text = json.dumps(alert, ensure_ascii=False)
            if await self._redis.eval(_SWAP, 1, key, before, text):
                break  # stored; another writer in between means: read again
        if publish is not None:
            try:
                await publish(alert)
            except Exception:
                await self._redis.eval(_SWAP, 1, key, text, before)  # undo ours only
                raise
        await self._redis.xadd(EVENTS, {"alert": text}, maxlen=EVENTS_MAXLEN, approximate=True)
        await self.trim()
        return dict(alert)

    async def trim(self, *, now_ms: int | None = None) -> int:
        """Drop stream entries older than the retention (they hold the alerts' evidence);
        returns how many went. Inserts trim as they go; the worker calls this too, so an
        idle stream is trimmed as well."""
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        return int(await self._redis.xtrim(EVENTS, minid=now_ms - self._retention_s * 1000,
                                           approximate=False))

    async def restore_status(self, alert_id: str, status: AlertStatus,
                             history: list[dict[str, Any]]) -> bool:
        """Put a stored lifecycle back (view rebuild); ``False`` if the alert is unknown."""
        key = _key(alert_id)
        raw = await self._redis.get(key)
        if raw is None:
            return False
        alert = json.loads(raw)
        if alert["status"] == status.value and alert["history"] == history:
            return True
        alert["status"], alert["history"] = status.value, history
        await self._redis.set(key, json.dumps(alert, ensure_ascii=False), keepttl=True)
        return True

    def next_status(self, alert: dict[str, Any], status: AlertStatus, *, note: str | None,
                    by: str) -> dict[str, Any]:
        """The alert after a change, checked (pure: the caller stores it)."""
        if alert["status"] == AlertStatus.RESOLVED.value:
            raise AlertResolvedError(f"alert {alert['alert_id']!r} is resolved already")
        history = [*alert["history"], {"status": status.value, "note": note, "by": by,
                                        "at": datetime.now(UTC).isoformat()}]
        return alert | {"status": status.value, "history": history}

    async def narrowest(self, filters: dict[str, str | None]) -> tuple[str, int] | None:
        """The facet index with the fewest entries among ``filters`` (field -> value, of
        ``FACET_FIELDS``) and its first covered sequence, or ``None`` without a facet
        filter. One round trip."""
        keys = [facet_key(f, v) for f, v in filters.items() if v and f in FACET_FIELDS]
        if not keys:
            return None
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            pipe.zcard(key)
        pipe.get(FACETS_FROM)
        *cards, since = await pipe.execute()
        best = min(zip(cards, keys, strict=True))[1]
        return best, int(since) if since is not None else 0

    async def find(self, match: Callable[[dict[str, Any]], bool], *,
                   facets: dict[str, str | None], before_seq: int | None, limit: int,
                   batch: int = 200, scan_max: int = 5_000,
                   ) -> tuple[list[dict[str, Any]], int | None, int]:
        """Up to ``limit`` alerts that ``match`` accepts, newest first, below ``before_seq``:
        ``(alerts, next cursor or None, alerts read)``. Reads the narrowest facet index of
        ``facets`` (every facet filter must also be in ``match``), then, for alerts stored
        before the facets existed, the main index; at most ``scan_max`` alerts a call."""
        narrow = await self.narrowest(facets)
        index, floor = (INDEX, 1) if narrow is None else narrow
        items: list[dict[str, Any]] = []
        scanned = 0
        last: int | None = None
        before = before_seq
        while len(items) < limit and scanned < scan_max:
            page = await self.page(before_seq=before, batch=batch, index=index)
            if not page:
                if index != INDEX and floor != 1:
                    # Alerts older than the facets (``floor``; 0: no facet yet) are only
                    # in the main index.
                    index = INDEX
                    if floor > 1:
                        before = floor if before is None else min(before, floor)
                    continue
                return items, None, scanned
            for seq, alert in page:
                scanned += 1
                last = seq
                if alert and match(alert):
                    items.append(alert)
                    if len(items) == limit:
                        break
            before = last
        return items, last, scanned

    async def page(self, *, before_seq: int | None, batch: int,
                   index: str = INDEX) -> list[tuple[int, dict[str, Any]]]:
        """Alerts newest first with a sequence below ``before_seq``: ``(seq, alert)``,
        from ``index`` (the main one, or a facet)."""
        top = f"({before_seq}" if before_seq is not None else "+inf"
        rows = cast(list[tuple[bytes, float]], await self._redis.zrevrangebyscore(
            index, top, "-inf", start=0, num=batch, withscores=True))
        if not rows:
            return []
        raws = await self._redis.mget([_key(as_text(m)) for m, _ in rows])
        out = []
        for (member, score), raw in zip(rows, raws, strict=True):
            if raw is None:  # expired with the retention period
                await self._redis.zrem(index, member)
                continue
            out.append((int(score), dict(json.loads(raw))))
        if len(rows) == batch and not out:
            out.append((int(rows[-1][1]), {}))  # all expired: keep paging
        return out

    async def events(self, after_id: str, *, block_ms: int,
                     count: int = 100) -> Sequence[tuple[str, dict[str, Any]]]:
        """Stream entries after ``after_id`` (``$``: only new ones), waiting ``block_ms``."""
        answer = cast(Any, await self._redis.xread({EVENTS: after_id}, count=count,
                                                   block=block_ms))
        out = []
        for _stream, entries in answer or []:
            for entry_id, fields in entries:
                raw = fields.get(b"alert") or fields.get("alert")
                out.append((as_text(entry_id), dict(json.loads(raw))))
        return out

    async def last_event_id(self) -> str:
        info = cast(Any, await self._redis.xrevrange(EVENTS, count=1))
        return as_text(info[0][0]) if info else "0-0"


# KEYS: the index, the sequence, the events stream, facets-from, then per alert its key and
# its facet indexes; ARGV: TTL (s), stream length, and a JSON list with a row per alert:
# its number of facet keys, its JSON, its id. Returns a list with 1 for each alert that was
# new, 0 for one there already (indexed, or repaired: indexed and streamed now, its stored
# lifecycle kept). Alerts are taken in order, as if inserted one after the other.
_INSERT = """
local ttl = tonumber(ARGV[1])
local rows = cjson.decode(ARGV[3])
local added = {}
local k = 5
for i, row in ipairs(rows) do
  local facets, id = row[1], row[3]
  local key = KEYS[k]
  local existing = redis.call('GET', key)
  if existing and redis.call('ZSCORE', KEYS[1], id) then
    added[i] = 0
  else
    local text = existing or row[2]
    if not existing then redis.call('SET', key, text, 'EX', ttl) end
    local seq = redis.call('INCR', KEYS[2])
    redis.call('ZADD', KEYS[1], seq, id)
    -- Facets: the same score; each kept while alerts keep coming to it.
    for j = k + 1, k + facets do
      redis.call('ZADD', KEYS[j], seq, id)
      redis.call('EXPIRE', KEYS[j], ttl)
    end
    redis.call('SET', KEYS[4], seq, 'NX')
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', tonumber(ARGV[2]), '*', 'alert', text)
    if existing then added[i] = 0 else added[i] = 1 end
  end
  k = k + 1 + facets
end
-- Entries older than the retention go too (they hold pseudonymous keys in evidence).
local now = redis.call('TIME')
redis.call('XTRIM', KEYS[3], 'MINID', '~', tonumber(now[1]) * 1000 - ttl * 1000)
return added
"""

# KEYS: the alert key; ARGV: the value expected, the value to store (TTL kept). 1 if
# stored, 0 if the alert was not the expected value (changed by another writer).
_SWAP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
"""
