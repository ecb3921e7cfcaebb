"""Fixes to faust-streaming 0.15: its recovery (installed through faust's
``TableManager`` setting, ``create_worker`` sets it), its table changelog sends
(``ProducerTopics``, awaited by the agents before every batch), the cost of its
pre-commit flush (``cheap_producer_flush``), of its hand-over of each fetched record to
a stream (``cheap_message_delivery``) and of its ``Monitor`` sensor (``without_monitor``),
below.

When a worker gets partitions, faust pauses them, restores the tables, and then, in
``Recovery.on_recovery_completed`` (and ``_resume_streams``, without tables), *resumes*
the stream partitions and only *then* seeks them to the committed offsets, while its
fetcher runs. Records fetched in between are queued; the fetch loop records their offsets
as read after the seek; ``flow_control.resume()`` clears the queue; the copies fetched
again from the committed offset are dropped as already read. Those records are never
processed and the group's committed offset stops at them (a hole at the head of faust's
acknowledgements): the worker looks stuck. It happened in about one run in four of the
repeated-SIGKILL scenario (``tests/integration/test_crash.py``).

faust's own fix for the table-less branch (faust-streaming #216/#217) states the order
this module restores: seek, then resume. ``streams.offsets`` stays as the safety net for
any other way of skipping records.

faust sends a table's changelog records with ``send_soon``, which picks the partition from
the producer's *cached* metadata without waiting for it. Until the producer has fetched
the metadata of a changelog topic, a table write raises ``TypeError: 'NoneType' object is
not iterable`` from aiokafka's partitioner; the agent crashes and faust restarts it, with
the batch's table writes half done. It happens when the broker is slow to answer just
after start (seen in the integration tests on a loaded machine); it lost the first
batches of a fresh worker. ``ProducerTopics`` waits for the metadata of every topic the
worker writes before each batch, and any exception out of an agent now stops the process
instead (``stop_on_agent_error``): faust's restart in place commits and acks the failed
batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn, cast

import faust
from aiokafka.errors import UnknownTopicOrPartitionError
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.types import TP, AppT
from mode import Service

from streams.offsets import ProgressWatch

__all__ = [
    "ProducerTopics",
    "SeekFirstTableManager",
    "changelog_topics",
    "cheap_message_delivery",
    "cheap_producer_flush",
    "commit_processed",
    "committed_offset",
    "exit_code",
    "exit_now",
    "on_streams_sought",
    "paused_by_faust",
    "start_offsets",
    "stop_for_restart",
    "stop_on_agent_error",
    "without_monitor",
]

SOUGHT_HOOK = "_vhc_on_streams_sought"

if not faust.__version__.startswith("0.15."):  # pragma: no cover - guards an upgrade
    raise ImportError(
        f"streams.faust_fixes overrides faust-streaming 0.15's Recovery; found "
        f"{faust.__version__}: check the fix is still needed and still right")


#: how long faust's table recovery may read nothing, with changelog records left, before
#: the worker stops to be restarted (``SeekFirstRecovery``)
RECOVERY_STALL_S = 45.0
RECOVERY_CHECK_S = 5.0


class SeekFirstRecovery(Recovery):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._progress = ProgressWatch(RECOVERY_STALL_S)

    @Service.timer(RECOVERY_CHECK_S)
    async def _watch_progress(self) -> None:
        """faust's table recovery waits for its changelog records before the worker judges
        anything; if its fetcher never brings them, it waits for ever (seen in 6/7 after a
        rebalance: none of a changelog partition's two records read in over a minute).
        The worker stops to be restarted: a new consumer fetches them. A timer of this
        service, not of the app: the app's start only after the first recovery."""
        remaining = int(self.active_remaining_total()) if self.in_recovery else 0
        if self._progress.stalled(remaining, time.monotonic()):
            self.log.critical("table recovery has read none of the %d changelog records "
                              "left to it in %.0f s; stopping the worker to be restarted "
                              "(exit code %d)", remaining, RECOVERY_STALL_S, STALLED_EXIT)
            stop_for_restart(logging.getLogger(__name__), STALLED_EXIT)

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        """faust's, with the stream partitions sought before they are resumed."""
        consumer = self.app.consumer
        self.log.info("Restore complete!")
        await self.app.on_rebalance_complete.send()
        self._set_recovery_ended()
        callback_coros = [
            asyncio.ensure_future(table.on_recovery_completed(
                self.actives_for_table[table], self.standbys_for_table[table]))
            for table in self.tables.values()
        ]
        if callback_coros:
            await asyncio.wait(callback_coros)
        assignment = consumer.assignment()
        if self.app.consumer_generation_id != generation_id:
            self.log.warning(f"Recovery rebalancing again app id "
                             f"{self.app.consumer_generation_id} param {generation_id}")
            return
        await self._seek_then_resume(assignment)
        self.completed.set()
        self.app.flow_control.resume()
        consumer.resume_flow()
        await cast(Any, self.app)._fetcher.maybe_start()
        self.tables.on_actives_ready()
        if not self.app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")

    async def _resume_streams(self, generation_id: int = 0) -> None:
        """faust's, with the stream partitions sought before they are resumed."""
        app = self.app
        consumer = app.consumer
        await app.on_rebalance_complete.send()
        assignment = consumer.assignment()
        if self.app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again")
            return
        if not assignment:
            self.log.info("Resuming streams with empty assignment")
        await self._seek_then_resume(assignment)
        self.completed.set()
        self.log.info("Resuming flow...")
        app.flow_control.resume()
        consumer.resume_flow()
        await cast(Any, app)._fetcher.maybe_start()
        self.tables.on_actives_ready()
        self.tables.on_standbys_ready()
        app.on_rebalance_end()
        self.log.info("Worker ready")

    async def _seek_then_resume(self, assignment: set[TP]) -> None:
        """The fix: seek the stream partitions to the committed offsets, tell the app
        where they start, and only then resume them."""
        consumer = self.app.consumer
        if assignment:
            self.log.info("Seek stream partitions to committed offsets.")
            await self._wait(consumer.perform_seek(),
                             timeout=self.app.conf.broker_request_timeout)
            await self._seek_again_if_moved(assignment)
            await self._report_positions(assignment)
        consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})

    async def _seek_again_if_moved(self, assignment: set[TP]) -> None:
        """Records of a stream partition can be taken from the consumer while
        ``perform_seek`` waits for the committed offsets, and never reach its stream:
        after a restart, the declarations that came while the worker was down sat until
        the stall watch sought back to them 30 s later (every time in a scenario of 6/7:
        position 5 before the seek, 8 after it, 5 committed). Each stream partition
        whose position is not its committed offset is sought to it again; one the group
        never committed, to the log's earliest offset, where the consumer starts it (6/7's
        tenth round: a partition whose first 20 records came during the rebalance was
        reported at position 20, and they were never processed nor seen as stalled)."""
        consumer = self.app.consumer
        starts = await asyncio.wait_for(
            start_offsets(self.app, [tp for tp in assignment if not self._is_changelog_tp(tp)]),
            timeout=self.app.conf.broker_request_timeout)
        for _ in range(3):
            moved: dict[TP, int] = {}
            for tp, offset in starts.items():
                if await consumer.position(tp) != offset:
                    moved[tp] = offset
            if not moved:
                return
            self.log.warning("stream partitions moved past their committed offsets while "
                             "being sought; seeking them again: %s", ", ".join(
                                 f"{tp.topic}[{tp.partition}] to {offset}"
                                 for tp, offset in sorted(moved.items())))
            await self._wait(consumer.seek_wait(moved),
                             timeout=self.app.conf.broker_request_timeout)

    async def _report_positions(self, assignment: set[TP]) -> None:
        """Tell the app's hook (``on_streams_sought``) where each stream partition
        starts: its first record is expected there."""
        hook = getattr(self.app, SOUGHT_HOOK, None)
        if hook is None:
            return
        consumer = self.app.consumer
        positions: dict[TP, int] = {}
        for tp in assignment:
            if not self._is_changelog_tp(tp):
                position = await consumer.position(tp)
                if position is not None:
                    positions[tp] = position
        hook(positions)


class SeekFirstTableManager(TableManager):
    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekFirstRecovery(self.app, self, beacon=self.beacon,
                                               loop=self.loop)
        return self._recovery


AGENT_ERROR_EXIT = 70  # EX_SOFTWARE: an internal error


def stop_on_agent_error(app: faust.App, log: logging.Logger) -> None:
    """An exception out of an agent stops the process at once, without a commit.

    faust would commit (``Consumer.on_task_error``), restart the agent in place (its
    supervisor allows 100 restarts a second) and ack the failed batch as its generator
    closes: a batch that failed after its table writes would then be committed with its
    views and alerts unsent, and a bug that fails every batch would spin unseen. Stopping
    like a SIGKILL leaves what the crash tests cover: the restarted process restores the
    tables, resumes from the group's commit and resends the outboxes. Install before the
    agents are defined (faust binds the handler then); ``agent.test_context`` keeps its
    own."""

    async def on_agent_error(agent: Any, exc: BaseException) -> None:
        log.critical("agent %s failed; stopping the worker without committing (exit "
                     "code %d)", getattr(agent, "name", agent), AGENT_ERROR_EXIT,
                     exc_info=exc)
        exit_now(log, AGENT_ERROR_EXIT)

    app._on_agent_error = on_agent_error  # type: ignore[method-assign]


STALLED_EXIT = 75  # EX_TEMPFAIL: a consumer that no longer fetches; a restart mends it


_exit_code: int | None = None
#: how long a stop for a restart may take before the process ends without it
STOP_FOR_RESTART_S = 20.0


def stop_for_restart(log: logging.Logger, code: int) -> None:
    """Stop the worker as SIGTERM does and have it exit with ``code`` (``exit_code``):
    it leaves the consumer group at once, so its partitions move without waiting for the
    session timeout, and ``make up`` or the container runtime start it afresh. If the stop
    hangs (the consumer that failed is part of it), the process ends without it after
    ``STOP_FOR_RESTART_S``."""
    global _exit_code
    if _exit_code is not None:
        return  # already stopping
    _exit_code = code
    asyncio.get_running_loop().call_later(STOP_FOR_RESTART_S, exit_now, log, code)
    os.kill(os.getpid(), signal.SIGTERM)


def exit_code() -> int | None:
    """The exit code ``stop_for_restart`` asked for, if it was called."""
    return _exit_code


def exit_now(log: logging.Logger, code: int) -> NoReturn:
    """Flush the logs and end the process at once, without a commit or faust's shutdown
    (which waits for the very consumer that failed): the SIGKILL case the crash tests
    cover. ``make up`` and the compose file restart the worker."""
    for handler in logging.getLogger().handlers + log.handlers:
        handler.flush()
    os._exit(code)


def on_streams_sought(app: faust.App, hook: Callable[[Mapping[TP, int]], None]) -> None:
    """Call ``hook`` with each stream partition's position once it is sought to its
    committed offset (at every assignment), before any of its records is delivered."""
    setattr(app, SOUGHT_HOOK, hook)


class ProducerTopics:
    """The topics the worker writes, and whether faust's producer can send to all of them.

    Its metadata can also lose a topic later (a refresh while the broker reports the
    topic's leader unavailable), so the agents ask before *every* batch: their batch
    bodies are synchronous, so no metadata refresh can come between the check and the
    table writes. A producer without metadata (a test double) has nothing to wait for.
    """

    def __init__(self, app: faust.App, topics: Iterable[str]) -> None:
        self._app = app
        self.topics = sorted(set(topics))

    def _producer(self) -> Any:
        ensure = getattr(self._app.producer, "_ensure_producer", None)
        return ensure() if ensure is not None else None

    def missing(self) -> list[str]:
        producer = self._producer()
        if producer is None:
            return []
        cluster = producer.client.cluster
        return [t for t in self.topics if cluster.partitions_for_topic(t) is None]

    async def wait(self, timeout_s: float = 120.0) -> None:
        """Until the producer has metadata for every topic at once (it fetches what it
        lacks; ``TimeoutError`` if the broker does not give it within ``timeout_s``)."""
        if not self.missing():
            return
        producer = self._producer()
        async with asyncio.timeout(timeout_s):
            while missing := self.missing():
                for topic in missing:
                    # Unknown: not created yet, or its leader not elected. Again.
                    with contextlib.suppress(UnknownTopicOrPartitionError):
                        await producer.partitions_for(topic)
                await asyncio.sleep(0.1)


async def commit_processed(app: faust.App, offsets: Mapping[TP, int]) -> None:
    """Commit ``offsets`` (each the next record to read, every record below it processed
    and its effects written) through faust's own commit path, which flushes the producer
    first, and drop faust's acknowledgement bookkeeping below them.

    For a partition whose committed offset stopped although everything was processed:
    faust computes its commit from the head of its acknowledgements, and a record that
    reached the agent only through a seek back (``streams.offsets``) after faust had
    already counted past it can leave a hole there that nothing fills.
    """
    consumer = cast(Any, app.consumer)
    await consumer._commit_offsets(dict(offsets))
    for tp, offset in offsets.items():
        acked = [o for o in consumer._acked[tp] if o >= offset]
        consumer._acked[tp] = acked
        consumer._acked_index[tp] = set(acked)
        consumer._gap[tp].chop(0, offset)


def committed_offset(app: AppT, tp: TP) -> int | None:
    """faust's committed offset for ``tp`` (None before its first commit)."""
    committed = cast(Any, app.consumer)._committed_offset.get(tp)
    return None if committed is None else int(committed)


async def start_offsets(app: AppT, tps: Iterable[TP]) -> dict[TP, int]:
    """Where the group starts reading each of ``tps``: its committed offset or, with none,
    the log's earliest offset (the worker's consumer resets to the earliest; one broker
    request for them all). A partition whose start is not known is left out."""
    starts: dict[TP, int] = {}
    uncommitted: list[TP] = []
    for tp in tps:
        offset = committed_offset(app, tp)
        if offset is None:
            uncommitted.append(tp)
        else:
            starts[tp] = offset
    if uncommitted and app.conf.consumer_auto_offset_reset == "earliest":
        found = await app.consumer.earliest_offsets(*uncommitted)
        starts |= {tp: int(found[tp]) for tp in uncommitted if found.get(tp) is not None}
    return starts


def paused_by_faust(app: faust.App, tp: TP) -> bool:
    """Whether faust holds back ``tp``'s records (its consumer's own pause: the records
    are still fetched, never handed to the streams)."""
    return tp in cast(Any, app.consumer)._paused_partitions


def changelog_topics(app: faust.App) -> list[str]:
    """The changelog topics of the app's tables."""
    return [table.changelog_topic.get_topic_name() for table in app.tables.values()]


FLUSH_POLL_S = 0.002
FLUSH_STALL_S = 0.1


def cheap_producer_flush(app: faust.App) -> None:
    """Replace the flush of faust's producer buffer (run before every commit) with a poll.

    faust waits for the buffer to empty one sent record at a time, each through
    ``asyncio.wait_for`` (a task and a timer per record): with a batch's several hundred
    changelog records in the buffer at each commit, that was more of the worker's time
    than the records' own sends. The poll keeps its rules: done when the buffer is empty,
    given up when nothing was sent for 0.1 s, an error if the producer stopped with
    records left.
    """
    buffer = cast(Any, app.producer.buffer)  # faust's type lacks message_sent

    async def flush() -> None:
        stalled = 0.0
        while buffer.size:
            if buffer.state != "running":
                raise RuntimeError("Cannot flush: Producer not Running")
            buffer.message_sent.clear()
            await asyncio.sleep(FLUSH_POLL_S)
            if buffer.message_sent.is_set():
                stalled = 0.0
            else:
                stalled += FLUSH_POLL_S
                if stalled >= FLUSH_STALL_S:
                    return

    buffer.flush = flush


class _Resumed:
    """A coroutine already stepped once (it yielded ``pending``), awaitable from there: what
    ``yield from`` does for a generator already started, by hand. The task that awaits it
    gets the future the coroutine waits on, and every value or exception the task sends
    back goes to the coroutine, cancellation included."""

    __slots__ = ("_coro", "_pending")

    def __init__(self, coro: Any, pending: Any) -> None:
        self._coro, self._pending = coro, pending

    def __await__(self) -> Any:
        coro, pending = self._coro, self._pending
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # forwarded to the coroutine, as the task sent it
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


def cheap_message_delivery(app: faust.App) -> None:
    """Hand each fetched record to its stream without four tasks per record.

    faust's fetch loop (``Consumer._drain_messages``) delivers every record with
    ``wait_first(callback(message), suspend_flow.wait())`` so that a delivery blocked on a
    full stream buffer gives way when a rebalance suspends the flow; ``wait_first`` makes
    that four tasks (the delivery, the flow, the consumer's stopped and crashed events),
    an ``asyncio.wait`` and three cancellations per record, about a third of faust's own
    time per record. Almost every delivery finishes without waiting (a ``put_nowait`` into
    a stream's queue): it now runs one step at once, and only one that has to wait goes
    through ``wait_first`` as before, resumed where it stopped. Deliveries that finish
    at once no longer yield to the event loop each: the fetch loop still yields every
    100 records and per fetch. Applies to that call only (the consumer's other waits are
    faust's own)."""
    consumer = cast(Any, app.consumer)
    original = consumer.wait_first
    flow_wait = type(consumer.suspend_flow).wait.__code__

    async def wait_first(*coros: Any, timeout: Any = None) -> Any:  # noqa: ASYNC109 - mode's signature
        if len(coros) == 2 and timeout is None \
                and getattr(coros[1], "cr_code", None) is flow_wait:
            delivery, flow = coros
            try:
                pending = delivery.send(None)
            except StopIteration:
                flow.close()  # never started: nothing waits on it
                return None  # the fetch loop does not look at the result
            except BaseException:
                flow.close()
                raise  # as faust's wait_first raises the delivery's exception
            return await original(_Resumed(delivery, pending), flow)
        return await original(*coros, timeout=timeout)

    consumer.wait_first = wait_first


def without_monitor(app: faust.App) -> None:
    """Leave faust's ``Monitor`` sensor out: it keeps faust's own statistics for its web
    views (off in the worker, ``web_enabled=False``; the worker's metrics are its own), and
    it is called four times for every record (in, into a stream, out of it, acked), each a
    few dictionary updates and clock reads. faust adds it when the app starts
    (``App.on_init_dependencies``); this takes it out there. Other sensors stay."""
    original = app.on_init_dependencies

    def on_init_dependencies() -> Any:
        dependencies = original()
        app.sensors.remove(app.monitor)
        return dependencies

    app.on_init_dependencies = on_init_dependencies  # type: ignore[method-assign]
