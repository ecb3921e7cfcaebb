"""Live alerts for every open console from one Redis reader per API process.

Each open ``GET /v1/alerts/stream`` used to hold a connection of the shared Redis pool in
a 15 s blocking read: about 100 open consoles exhausted the pool and every declaration got
``503``. Now:

* the feed has its own Redis client (its own small pool), so streams never take ingest's
  connections;
* one task reads the alerts' Redis stream (blocking ``XREAD`` of ``block_ms``, shorter
  than the client's socket timeout) and fans each entry out to every subscriber's queue;
* a resumed stream (``Last-Event-ID``) first reads what it missed with ``XRANGE`` on the
  feed's client, then follows the fan-out, skipping what it has sent;
* streams are capped per staff credential (``429``) and per process (``503``); a client
  too slow to keep up (its queue full) is closed and resumes with ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ingest_api.errors import IngestApiError
from vhc_common.alert_view import EVENTS
from vhc_common.redis_keys import as_text

__all__ = ["AlertFeed", "TooManyStreamsError", "parse_event_id"]

log = logging.getLogger(__name__)

StreamId = tuple[int, int]
MAX_ID_PART = 2**64 - 1


class TooManyStreamsError(IngestApiError):
    """The credential (``per_token``) or the process has as many streams open as allowed."""

    def __init__(self, message: str, *, per_token: bool) -> None:
        super().__init__(message)
        self.per_token = per_token


def parse_event_id(text: str) -> StreamId | None:
    """A Redis stream id ``<ms>-<seq>`` within 64 bits each, or ``None``."""
    ms, sep, seq = text.partition("-")
    if (not sep or not text.isascii() or not ms.isdigit() or not seq.isdigit()
            or len(ms) > 20 or len(seq) > 20):
        return None
    parsed = (int(ms), int(seq))
    return parsed if max(parsed) <= MAX_ID_PART else None


@dataclass(eq=False)
class Subscriber:
    who: str
    queue: asyncio.Queue[tuple[str, dict[str, Any]]]
    overflowed: bool = False


@dataclass
class AlertFeed:
    redis_url: str
    max_streams: int
    max_per_token: int
    block_ms: int = 5_000
    queue_size: int = 1_000
    _subscribers: set[Subscriber] = field(default_factory=set)
    _per_token: Counter[str] = field(default_factory=Counter)
    _task: asyncio.Task[None] | None = None
    _redis: Redis | None = None
    healthy: bool = True

    @property
    def open_streams(self) -> int:
        return len(self._subscribers)

    def _client(self) -> Redis:
        if self._redis is None:
            # Its own pool: the reader, plus a few for resumed streams' catch-up reads.
            self._redis = Redis.from_url(self.redis_url, max_connections=8,
                                         socket_timeout=self.block_ms / 1000 + 5,
                                         socket_connect_timeout=2)
        return self._redis

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="alert-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    def check(self, who: str) -> None:
        """Raise ``TooManyStreamsError`` if ``who`` may not open another stream now."""
        if self._per_token[who] >= self.max_per_token:
            raise TooManyStreamsError(
                f"{self.max_per_token} alert streams are open with this credential; close "
                "one first", per_token=True)
        if len(self._subscribers) >= self.max_streams:
            raise TooManyStreamsError(f"this API process serves {self.max_streams} alert "
                                      "streams already; retry later", per_token=False)

    def subscribe(self, who: str) -> Subscriber:
        sub = Subscriber(who, asyncio.Queue(maxsize=self.queue_size))
        self._subscribers.add(sub)
        self._per_token[who] += 1
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        if sub in self._subscribers:
            self._subscribers.discard(sub)
            self._per_token[sub.who] -= 1
            if self._per_token[sub.who] <= 0:
                del self._per_token[sub.who]

    async def last_id(self) -> str:
        info = cast(Any, await self._client().xrevrange(EVENTS, count=1))
        return as_text(info[0][0]) if info else "0-0"

    async def missed(self, after: str, *, limit: int = 10_000) -> list[tuple[str, dict[str, Any]]]:
        """Entries after ``after`` (exclusive), oldest first, at most ``limit``."""
        out: list[tuple[str, dict[str, Any]]] = []
        start = f"({after}"
        while len(out) < limit:
            rows = cast(Any, await self._client().xrange(EVENTS, min=start, max="+",
                                                         count=min(500, limit - len(out))))
            if not rows:
                break
            out += [(as_text(i), _alert(f)) for i, f in rows]
            start = f"({out[-1][0]}"
        return out

    async def _run(self) -> None:
        last: str | None = None
        while True:
            try:
                if last is None:
                    last = await self.last_id()
                answer = cast(Any, await self._client().xread({EVENTS: last}, count=500,
                                                              block=self.block_ms))
                self.healthy = True
            except RedisError as exc:
                if self.healthy:
                    log.warning("alert feed: Redis unavailable, retrying every 1 s: %s", exc)
                self.healthy = False
                await asyncio.sleep(1)
                continue
            for _stream, entries in answer or []:
                for entry_id, fields in entries:
                    last = as_text(entry_id)
                    self._fan_out(last, _alert(fields))

    def _fan_out(self, entry_id: str, alert: dict[str, Any]) -> None:
        for sub in list(self._subscribers):
            if sub.overflowed:
                continue
            try:
                sub.queue.put_nowait((entry_id, alert))
            except asyncio.QueueFull:
                sub.overflowed = True  # its stream ends; the client resumes by id

    async def events(self, who: str, start: str, *, keepalive_s: float,
                     visible: Callable[[dict[str, Any]], bool] | None = None,
                     ) -> AsyncIterator[str]:
        """The SSE body of one stream: missed entries after ``start`` (``$``: none), then
        the live fan-out; comments as keep-alives. Only alerts ``visible`` accepts are
        sent (a scoped token's area). (Subscribed when the body starts, so a response
        never sent holds no subscription; ``check`` ran before.)"""
        sub = self.subscribe(who)
        try:
            yield "retry: 3000\n\n"
            sent: StreamId = (0, 0)
            if start != "$":
                sent = parse_event_id(start) or (0, 0)
                try:
                    for entry_id, alert in await self.missed(start):
                        sent = parse_event_id(entry_id) or sent
                        if visible is None or visible(alert):
                            yield _frame(entry_id, alert)
                except RedisError:
                    yield ": store unavailable; reconnect to resume\n\n"
                    return
            while not sub.overflowed:
                try:
                    entry_id, alert = await asyncio.wait_for(sub.queue.get(), keepalive_s)
                except TimeoutError:
                    yield ": keep-alive\n\n" if self.healthy else ": store unavailable\n\n"
                    continue
                parsed = parse_event_id(entry_id)
                if parsed is None or parsed <= sent:
                    continue  # sent already from the catch-up read
                sent = parsed
                if visible is None or visible(alert):
                    yield _frame(entry_id, alert)
        finally:
            self.unsubscribe(sub)


def _alert(fields: dict[Any, Any]) -> dict[str, Any]:
    raw = fields.get(b"alert") or fields.get("alert")
    if raw is None:
        raise ValueError("an alerts stream entry without an alert field")
    return dict(json.loads(raw))


def _frame(entry_id: str, alert: dict[str, Any]) -> str:
    data = json.dumps(alert, ensure_ascii=False, separators=(",", ":"))
    return f"id: {entry_id}\nevent: alert\ndata: {data}\n\n"
