"""Table changelog records sent a batch at a time (installed as faust's ``Table`` class).

faust sends one changelog record per table write, each through its channel, serializer
registry, producer buffer and aiokafka's ``send`` (a future and a task or two per record).
The worker writes a few table keys per checkpoint per batch, so that path was the largest
single cost of a batch (about a third of the worker's time with 2,000 checkpoints, profiled).

``BatchedTable`` keeps faust's tables as they are (store, recovery, standbys, the changelog
topic and its partitioning) and changes only when and how the changelog records leave: a
write updates the store at once and marks the key; the marked keys leave together, the
latest value of each, in one aiokafka record batch per partition, when

- the agent that wrote them awaits ``flush_changelogs`` (after each batch),
- faust flushes its producer before it commits offsets or gives up partitions
  (``batched_changelogs`` hooks that flush), or
- at the latest, the event loop's next turn after the first write (a task it schedules).

So a committed offset never runs ahead of the changelog, as with faust's own path. Keys
are serialized as faust serializes them (JSON for ``str`` keys; the table's value
serializer, ``raw`` or ``json``), and partitioned by the app's co-partitioner
(``vhc_common.partitioning``), as faust does with ``use_partitioner=True``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, cast

import faust
from faust.serializers import codecs
from faust.stores.memory import Store as MemoryStore
from faust.types import TP, AppT

from streams.errors import StreamsError
from vhc_common.partitioning import partition_for

__all__ = [
    "BatchedTable",
    "ChangelogError",
    "batched_changelogs",
    "flush_changelogs",
    "send_batches",
    "send_keyed",
]

log = logging.getLogger(__name__)

#: a key deleted since the last flush: a tombstone goes out
_DELETED: Any = object()


class ChangelogError(StreamsError):
    """A changelog batch was refused by the producer or the broker."""


def _encoder(serializer: Any, what: str) -> Callable[[Any], bytes]:
    if serializer == "raw":
        return lambda v: v if isinstance(v, bytes) else str(v).encode()
    if serializer == "json":
        # faust's own codec, so the bytes are faust's whatever JSON library it picked
        # (orjson when installed: UTF-8 where ``json`` escaped).
        return lambda v: codecs.dumps("json", v)
    raise ValueError(f"BatchedTable: {what} serializer {serializer!r} is not raw or json")


class BatchedTable(faust.Table[Any, Any]):
    """A faust table whose changelog records leave in batches (see the module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.use_partitioner:
            raise ValueError("BatchedTable partitions by key: create it with use_partitioner")
        self._encode_key = _encoder(self.key_serializer, "key")
        self._encode_value = _encoder(self.value_serializer, "value")
        #: the changelog topic's partitions (faust's default when the table names none)
        self._partition_count: int = self.partitions or self.app.conf.topic_partitions
        #: key -> latest value (``_DELETED``), in first-write order
        self._dirty: dict[Any, Any] = {}
        self._flushing = asyncio.Lock()
        self._scheduled: asyncio.Task[None] | None = None
        #: why a changelog batch failed (then every write and flush raises)
        self._failed: BaseException | None = None
        self._crashing: asyncio.Future[None] | None = None

    # ------------------------------------------------------------ reads

    #: ``get`` of the memory store's dict, once known (``_fast_reads``)
    _reads: Callable[[Any, Any], Any] | None = None

    def get(self, key: Any, default: Any = None) -> Any:
        """The value of ``key``, read from the memory store's dict. faust's path
        (``Mapping.get``, ``__getitem__``, its sensors' ``on_table_get``, and a
        ``KeyError`` raised and caught for a missing key) was 3.4 % of the worker's samples
        at 2,000 checkpoints; no sensor of the worker counts table reads (faust's
        ``Monitor`` is left out: ``streams.faust_fixes.without_monitor``)."""
        reads = self._reads
        if reads is None:
            reads = self._reads = self._fast_reads()
        return reads(key, default)

    def _fast_reads(self) -> Callable[[Any, Any], Any]:
        store = self.data
        if self.default is None and isinstance(store, MemoryStore):
            # Recovery and every write change this same dict (``Store.data``).
            return cast(Callable[[Any, Any], Any], store.data.get)
        # Another store, or a default for missing keys (``__missing__``): faust's path.
        return partial(Mapping.get, self)

    # ------------------------------------------------------------ faust's hooks

    def on_key_set(self, key: Any, value: Any) -> None:
        self._mark(key, value)

    def on_key_del(self, key: Any) -> None:
        self._mark(key, _DELETED)

    def _mark(self, key: Any, value: Any) -> None:
        self._check()
        self._dirty[key] = value
        if self._scheduled is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop (a synchronous caller): sent by the next flush
            self._scheduled = loop.create_task(self._scheduled_flush())

    async def _scheduled_flush(self) -> None:
        try:
            await self.flush_changelog()
        except ChangelogError:
            pass  # failed before: reported then
        except Exception as exc:  # nobody awaits this task: report it, stop the worker
            self._fail(exc)
        finally:
            self._scheduled = None

    def _fail(self, exc: BaseException) -> None:
        """A changelog record may be lost: the table refuses every further write and
        flush (so no offset is committed past it) and the worker stops, to start again
        from the changelog and the committed offsets."""
        if self._failed is not None:
            return
        self._failed = exc
        log.error("%s: changelog batch failed, stopping the worker: %r", self.name, exc)
        self._crashing = asyncio.ensure_future(self.app.crash(
            ChangelogError(f"{self.name}: changelog batch failed: {exc!r}")))

    def _check(self) -> None:
        if self._failed is not None:
            raise ChangelogError(f"{self.name}: an earlier changelog batch failed") \
                from self._failed

    # ------------------------------------------------------------ sending

    @property
    def dirty(self) -> int:
        """Keys written since the last flush."""
        return len(self._dirty)

    async def flush_changelog(self) -> None:
        """Send the latest value of every key written since the last flush (one record
        batch per partition, partitions in order) and wait until the producer has them
        queued; delivery is awaited by the producer's own flush, as faust does."""
        async with self._flushing:
            self._check()
            if not self._dirty:
                return
            dirty, self._dirty = self._dirty, {}
            topic = self.changelog_topic.get_topic_name()
            by_partition: dict[int, list[tuple[bytes, bytes | None]]] = {}
            for key, value in dirty.items():
                key_bytes = self._encode_key(key)
                data = None if value is _DELETED else self._encode_value(value)
                by_partition.setdefault(partition_for(key_bytes, self._partition_count),
                                        []).append((key_bytes, data))
            try:
                for partition, records in sorted(by_partition.items()):
                    for delivered, count in await send_batches(self.app, topic, partition,
                                                               records):
                        self._track(delivered, count)
            except Exception as exc:  # the records taken out may be lost
                self._fail(exc)
                raise

    def _track(self, delivered: Awaitable[Any], count: int) -> None:
        """When the batch is delivered, what faust's per-record callback did: tell the
        store the newest changelog offset it holds (RocksDB keeps it for restarts)."""

        def done(fut: asyncio.Future[Any]) -> None:
            if fut.cancelled():
                return
            exc = fut.exception()
            if exc is not None:
                self._fail(exc)
                return
            meta = fut.result()
            if not self.app.in_transaction:
                self.data.set_persisted_offset(TP(meta.topic, meta.partition),
                                               meta.offset + count - 1)

        cast(asyncio.Future[Any], delivered).add_done_callback(done)


async def send_batches(app: AppT, topic: str, partition: int,
                       records: Iterable[tuple[bytes, bytes | None]]
                       ) -> list[tuple[Awaitable[Any], int]]:
    """Queue ``(key, value)`` records for one partition in as few aiokafka record
    batches as they fit, past faust's per-record path (its channel, a future and a task or
    two per record); ``(delivery, records in the batch)`` per batch. A producer without a
    Kafka client (the agents' tests) gets one ``send`` per record."""
    producer = app.producer
    kafka_of = getattr(producer, "_ensure_producer", None)
    if kafka_of is None:
        return [(await producer.send(topic, key, value, partition, None, None), 1)
                for key, value in records]
    kafka = kafka_of()
    out: list[tuple[Awaitable[Any], int]] = []
    batch, count = kafka.create_batch(), 0
    for key, value in records:
        if batch.append(key=key, value=value, timestamp=None) is None:
            out.append((await kafka.send_batch(batch, topic, partition=partition), count))
            batch, count = kafka.create_batch(), 0
            # the first record always fits an empty batch, whatever its size
            batch.append(key=key, value=value, timestamp=None)
        count += 1
    if count:
        out.append((await kafka.send_batch(batch, topic, partition=partition), count))
    return out


async def send_keyed(app: AppT, topic: str, records: Sequence[tuple[bytes, bytes]]
                     ) -> list[Awaitable[Any]]:
    """Queue keyed records in batches (``send_batches``), each on the partition faust's
    ``topic.send`` would pick (the producer's ``key_partition``: the app's co-partitioner),
    in order within a partition; their deliveries."""
    if not records:
        return []
    producer = app.producer
    kafka_of = getattr(producer, "_ensure_producer", None)
    if kafka_of is not None:
        await kafka_of().partitions_for(topic)  # the topic's metadata, for key_partition
    by_partition: dict[int, list[tuple[bytes, bytes | None]]] = {}
    for key, value in records:
        partition = producer.key_partition(topic, key).partition
        by_partition.setdefault(partition, []).append((key, value))
    deliveries: list[Awaitable[Any]] = []
    for partition, part in sorted(by_partition.items()):
        deliveries += [d for d, _ in await send_batches(app, topic, partition, part)]
    return deliveries


def _batched(app: faust.App) -> list[BatchedTable]:
    return [t for t in app.tables.values() if isinstance(t, BatchedTable)]


async def flush_changelogs(app: faust.App) -> None:
    """Send every batched table's pending changelog records."""
    for table in _batched(app):
        await table.flush_changelog()


def batched_changelogs(app: faust.App) -> None:
    """Flush the batched tables whenever faust flushes its producer (before it commits
    offsets and when partitions are revoked), so no commit runs ahead of the changelog."""
    producer = cast(Any, app.producer)
    producer_flush = producer.flush

    async def flush() -> None:
        await flush_changelogs(app)
        await producer_flush()

    producer.flush = flush
