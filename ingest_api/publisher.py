"""Publishing to Kafka with kafka-python without blocking the event loop.

``KafkaProducer.send`` may block (metadata, a full buffer) up to ``max_block_ms``, so sends
run in a worker thread; acknowledgements are bridged back to asyncio futures through the
producer future's callbacks. ``acks=all`` and the idempotent producer make "acknowledged"
mean durably in the log. A broker that does not acknowledge within ``timeout_s`` becomes
a ``BrokerUnavailableError`` (answered 503), never a silent drop.

The producer is created lazily and re-created after a failure to connect, so the API can
start (and answer ``/healthz``) while the broker is still down. A producer whose sends
time out is replaced (at most every ``RESET_EVERY_S``): after an outage, kafka-python's
idempotent producer can keep batches that expired mid-flight and never acknowledge
anything again (a 10 s broker outage left every later declaration at 503 until restart;
``tests/integration/test_faults.py``). Its unacknowledged sends fail at once (they were
answered 503 already); retries go through the new producer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.partitioner import DefaultPartitioner

from ingest_api.errors import BrokerUnavailableError
from vhc_common.kafka_security import client_options

__all__ = ["KafkaPublisher", "Message", "RememberingPartitioner", "producer_options"]

log = logging.getLogger(__name__)

RESET_EVERY_S = 2.0


def producer_options(*, timeout_s: float, linger_ms: int = 0,
                     batch_bytes: int = 16_384) -> dict[str, Any]:
    """The ingest producer's kafka-python settings (the benchmarks' bare producer uses
    them too). kafka-python refuses a ``delivery_timeout_ms`` below ``linger_ms +
    request_timeout_ms``: it is derived from both, so any linger the settings allow works
    (it was ``timeout + 2`` ms: a linger over 2 ms failed every publish with 503)."""
    timeout_ms = int(timeout_s * 1000)
    return {
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": linger_ms,
        "batch_size": batch_bytes,
        "max_block_ms": timeout_ms,
        "request_timeout_ms": timeout_ms,
        "delivery_timeout_ms": timeout_ms + linger_ms + 2,
        # Without a broker the constructor waited 30 s (the default) before failing: the
        # first declaration hung that long instead of a 503.
        "bootstrap_timeout_ms": timeout_ms,
        "reconnect_backoff_max_ms": 1000,
        "partitioner": RememberingPartitioner(),
    }


class RememberingPartitioner(DefaultPartitioner):  # type: ignore[misc]
    """kafka-python's default partitioner, its answer for a key remembered: murmur2 is
    pure Python there (about 5 % of the batch route's main thread), and a keyed record's
    partition depends only on its key and the topic's partition count. Keyless records,
    and a key first seen, go to the default as before."""

    KEEP = 100_000

    def __init__(self) -> None:
        super().__init__()
        self._known: dict[tuple[bytes, int], int] = {}

    def partition(self, topic: str, key: Any, serialized_key: bytes | None, value: Any,
                  serialized_value: bytes | None, cluster: Any) -> int:
        if serialized_key is None:
            return int(super().partition(topic, key, serialized_key, value, serialized_value,
                                         cluster))
        partitions = cluster.partitions_for_topic(topic)
        known = (serialized_key, len(partitions) if partitions else 0)
        found = self._known.get(known)
        if found is None:
            found = int(super().partition(topic, key, serialized_key, value,
                                          serialized_value, cluster))
            if len(self._known) >= self.KEEP:
                self._known.clear()
            self._known[known] = found
        return found


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    key: bytes
    value: bytes


class KafkaPublisher:
    def __init__(self, bootstrap: str, *, timeout_s: float, linger_ms: int = 0,
                 batch_bytes: int = 16_384,
                 on_error: Callable[[str], None] | None = None) -> None:
        self._bootstrap = bootstrap
        self._timeout_s = timeout_s
        self._options = producer_options(timeout_s=timeout_s, linger_ms=linger_ms,
                                         batch_bytes=batch_bytes)
        self._on_error = on_error  # called with the topic of each message not acknowledged
        self._producer: KafkaProducer | None = None
        self._admin: KafkaAdminClient | None = None
        self._lock = threading.Lock()
        self._reset_at = 0.0
        self._admin_lock = threading.Lock()
        self._probe_lock = asyncio.Lock()
        self._probe: tuple[float, bool] | None = None

    def _get(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                self._producer = KafkaProducer(
                    bootstrap_servers=self._bootstrap.split(","),
                    client_id="vhc-ingest",
                    **client_options(),
                    **self._options,
                )
            return self._producer

    def _send_all(self, messages: Sequence[Message]) -> list[Any]:
        try:
            producer = self._get()
            return [producer.send(m.topic, key=m.key, value=m.value) for m in messages]
        except KafkaError as exc:
            raise BrokerUnavailableError(f"broker unavailable: {exc!r}") from exc

    async def publish_many(self, messages: Sequence[Message]) -> list[BaseException | None]:
        """Send all, wait for every acknowledgement; per message ``None`` or the error."""
        results = await self._publish_many(messages)
        if self._on_error is not None:
            for message, error in zip(messages, results, strict=True):
                if error is not None:
                    self._on_error(message.topic)
        return results

    async def _publish_many(self, messages: Sequence[Message]) -> list[BaseException | None]:
        if not messages:
            return []
        loop = asyncio.get_running_loop()
        try:
            if self._can_send_now(messages):
                # Metadata known: send() only appends to the producer's buffer, so no
                # thread hop (it could still block on a full buffer, bounded by
                # max_block_ms, as the thread would).
                kafka_futures = self._send_all(messages)
            else:
                kafka_futures = await asyncio.to_thread(self._send_all, messages)
        except BrokerUnavailableError as exc:
            return [exc] * len(messages)
        done = _AllAcknowledged(loop, len(kafka_futures))
        for i, kf in enumerate(kafka_futures):
            kf.add_callback(done.ok, i)
            kf.add_errback(done.failed, i)
        try:
            errors = await asyncio.wait_for(done.waiter, timeout=self._timeout_s + 1)
        except TimeoutError:
            self._reset()
            timeout = BrokerUnavailableError(f"no acknowledgement within {self._timeout_s} s")
            return [timeout] * len(messages)
        if any(isinstance(e, KafkaTimeoutError) for e in errors):
            self._reset()
        return [None if e is None else BrokerUnavailableError(f"not acknowledged: {e!r}")
                for e in errors]

    def _reset(self) -> None:
        """Replace the producer (see the module's docstring); the old one is closed in a
        thread without waiting, which fails its pending sends."""
        with self._lock:
            now = time.monotonic()
            if self._producer is None or now - self._reset_at < RESET_EVERY_S:
                return
            old, self._producer, self._reset_at = self._producer, None, now
        log.warning("Kafka sends timed out: replacing the producer")
        threading.Thread(target=old.close, kwargs={"timeout": 0}, daemon=True,
                         name="vhc-producer-close").start()

    def _can_send_now(self, messages: Sequence[Message]) -> bool:
        producer = self._producer
        if producer is None:
            return False
        metadata = producer._metadata  # kafka-python has no public non-blocking probe
        return all(metadata.partitions_for_topic(t) for t in {m.topic for m in messages})

    async def publish(self, message: Message) -> None:
        (error,) = await self.publish_many([message])
        if error is not None:
            raise BrokerUnavailableError(str(error)) from error

    async def reachable(self, *, max_age_s: float = 2.0) -> bool:
        """``ping`` for readiness probes: at most one probe thread at a time, and a result
        younger than ``max_age_s`` is reused, so any number of ``/readyz`` calls while the
        broker is unreachable hold one thread, not the whole pool ingest needs."""
        async with self._probe_lock:
            loop = asyncio.get_running_loop()
            if self._probe is not None and loop.time() - self._probe[0] < max_age_s:
                return self._probe[1]
            ok = await asyncio.to_thread(self.ping)
            self._probe = (loop.time(), ok)
            return ok

    def ping(self) -> bool:
        """Does a broker answer a request right now? (blocking: call from a thread)"""
        with self._admin_lock:  # one admin client, never used by two threads at once
            return self._ping()

    def _ping(self) -> bool:
        try:
            if self._admin is None:
                self._admin = KafkaAdminClient(bootstrap_servers=self._bootstrap.split(","),
                                               client_id="vhc-ingest-health",
                                               request_timeout_ms=3000,
                                               bootstrap_timeout_ms=3000, **client_options())
            self._admin.describe_cluster()
            return True
        except KafkaError:
            if self._admin is not None:
                self._admin.close()
                self._admin = None
            return False

    def close(self) -> None:
        with self._admin_lock:
            if self._admin is not None:
                self._admin.close()
                self._admin = None
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=5)
                self._producer = None


class _AllAcknowledged:
    """Collects the outcome of every send on the producer's thread and wakes the event
    loop once, when the last is known (one cross-thread call per batch, not per message)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, n: int) -> None:
        self._loop = loop
        self._errors: list[BaseException | None] = [None] * n
        self._left = n
        self._lock = threading.Lock()
        self._reset_at = 0.0
        self.waiter: asyncio.Future[list[BaseException | None]] = loop.create_future()
        if n == 0:
            self.waiter.set_result([])

    def ok(self, index: int, _meta: Any) -> None:
        self._settle(index, None)

    def failed(self, index: int, exc: BaseException) -> None:
        self._settle(index, exc)

    def _settle(self, index: int, error: BaseException | None) -> None:
        with self._lock:
            self._errors[index] = error
            self._left -= 1
            last = self._left == 0
        if last:
            self._loop.call_soon_threadsafe(self._finish)

    def _finish(self) -> None:
        if not self.waiter.done():
            self.waiter.set_result(self._errors)
