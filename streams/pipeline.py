"""The worker's batch body, framework-free: records in, table writes and records to send out.

``Pipeline.process(records)`` does everything one batch of ``declarations.v1`` records
needs: decode and count (``streams.counting``), detect per checkpoint, advance stream time
and judge the hours it closes, and say what to send (alerts to ``alerts.v1``, hour
summaries to the by-ward topic). Tables are plain mappings: faust tables in the worker,
dicts in unit tests. The faust agents (``streams.app``) only move records in and out.

Exactly once per alert, across crashes: the outbox
--------------------------------------------------
Everything a checkpoint knows lives in one table value, its *envelope*: the last input
offset applied, the series, every detector's state, and the *outbox*, the alerts and
summaries this batch produced for it. One value is one changelog record, so the state and
what it caused are made durable together, never one without the other. The worker sends
the outbox and waits for the broker's acknowledgements before it processes the next
batch, so an outbox found again by the next batch was delivered and is replaced. After a
restart or a rebalance, envelopes are loaded that this process did not write: their
outbox may not have been delivered, so it is sent again (``pending_outboxes`` at start,
and whenever such an envelope is loaded). Alert ids are deterministic and summaries are
absolute values, so a re-send is harmless.

Records at or below the envelope's offset were applied before (a replay) and are
skipped; a record of a declaration counted from *another* offset (a retried publish) is a
duplicate and skipped too (``detectors.counts`` keeps the first offset of every
declaration), so the detectors see each declaration once, as the counts do.

Stream time: frames, and a backlog on its own time
--------------------------------------------------
Each input partition keeps two clocks. The *live* clock is the newest ``scanned_at`` of
live declarations (received within ``live_lag`` of being scanned), moved on by the wall
clock (ticks: no further than the records applied, see ``tick``) while the partition has
live checkpoints, so that a silence is noticed. The
*backlog* clock is the newest ``scanned_at`` of the other declarations: recorded traffic
replayed, or a front end's offline queue. A checkpoint follows the frame of its newest
declaration. Its hours are judged when its frame's clock passes their end plus ``grace``;
a backlog checkpoint more than ``carry`` (four days: a long weekend) behind the backlog
clock runs on its own newest ``scanned_at`` instead, and the backlog clock does not jump
more than ``carry`` ahead while it is in use (``backlog_idle``), so two unrelated backlogs
do not judge each other's hours. Live traffic never moves a replay's clock, and a replay
never moves the live one: a checkpoint's verdicts do not depend on its neighbours on the
partition.

A declaration for an hour already judged is *late*: it counts (stats, per-declaration
alerts, clusters, later baselines), and its hour is *reopened*. A reopened hour is judged
again, once the checkpoint's late declarations have moved past its end plus ``grace``
(the backlog's own time), or once a declaration newer than everything judged arrives
(the backlog has caught up). Re-judging can raise an alert the first judgement did not
(a surge inside a backlog); it never withdraws one: a silence raised live stands. The
checkpoint's ward hears of the reopened hour through a new summary.

Hours are judged at quarter-hour steps of stream time: hour-based detectors when an hour
closes, ongoing conditions (a silence) at every step. A checkpoint with no hour to close
and no detector due (``Detector.clock_due``) is passed over: looking would find nothing.
An envelope is written when a batch changed it: a record applied, an hour judged, an
alert raised, an outbox re-sent. A step that only looked (or was passed over) is not
written; the partition clock keeps where each frame's last sweep brought its checkpoints
(``_catch_up``), so a state read back from the table (after a restart) is brought there
before a late declaration changes it, as if it had been stored.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import Enum
from typing import Any

from detectors.aberration import AberrationState
from detectors.base import Case, Detector, DetectorState, Subject
from detectors.cluster import ClusterDetector, ClusterState
from detectors.counts import HourBucket
from detectors.declaration_alerts import declaration_alert
from detectors.errors import MALFORMED, StateDecodeError, decoding
from detectors.flags import FlagPolicy, is_symptomatic
from detectors.outbreak import OutbreakAreaHistory
from detectors.schedule import HoursTimeline
from detectors.series import DEFAULT_KEEP_HOURS, HourlySeries
from detectors.volume import VolumeDetector, VolumeState
from streams.counting import Counted, CountingResult, DeclarationCounting, RawRecord
from streams.errors import BadRecordError
from streams.kept import KeptDecoded
from streams.offsets import Admission, OffsetGuard
from streams.wards import HourSummary, Watermark
from vhc_common import fastjson
from vhc_common.partitioning import KEY_SEPARATOR, partition_for, partition_key
from vhc_common.schemas import AlertEvent
from vhc_common.timebase import (
    DAY_H,
    DAY_MS,
    HOUR_MS,
    LOCAL_UTC_OFFSET_MIN,
    MINUTE_MS,
    to_ms,
)

__all__ = [
    "UNREGISTERED",
    "BatchOutput",
    "CheckpointEnvelope",
    "CheckpointInfo",
    "Pipeline",
    "PipelineTables",
    "TimeRules",
]

ENVELOPE_VERSION = 2
LIVE, BACKLOG = "l", "b"
_UNSENT = object()


class _Unknown(Enum):
    """``Pipeline._next_look_ms``: the detectors' clock due is not known."""

    DUE = 0


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """What the registry says about a checkpoint (defaults when it is not known yet)."""

    ward_code: str | None = None
    hours: HoursTimeline = field(default_factory=HoursTimeline)
    kind: str | None = None


#: A checkpoint the registry does not know (yet): shared, it is never changed.
UNREGISTERED = CheckpointInfo()


@dataclass(frozen=True, slots=True)
class TimeRules:
    """How stream time moves (see the module doc); all in milliseconds."""

    grace_ms: int = 300_000
    live_lag_ms: int = 600_000
    tick_lag_ms: int = 30_000
    carry_ms: int = 4 * DAY_MS
    backlog_idle_ms: int = 60_000
    backlog_stall_ms: int = 3_600_000
    step_ms: int = 15 * MINUTE_MS
    utc_offset_min: int = LOCAL_UTC_OFFSET_MIN

    def __post_init__(self) -> None:
        if not 0 <= self.grace_ms <= DAY_MS:
            raise ValueError(f"grace_ms must be within 0..86400000, got {self.grace_ms}")
        if self.live_lag_ms <= 0 or self.tick_lag_ms < 0:
            raise ValueError(f"bad lags: live_lag_ms={self.live_lag_ms}, "
                             f"tick_lag_ms={self.tick_lag_ms}")
        if HOUR_MS % self.step_ms:
            raise ValueError(f"step_ms must divide an hour, got {self.step_ms}")
        if self.carry_ms < HOUR_MS or self.backlog_idle_ms <= 0:
            raise ValueError(f"bad carry_ms={self.carry_ms} or "
                             f"backlog_idle_ms={self.backlog_idle_ms}")

    def closed_through(self, clock_ms: int) -> int:
        """The newest hour a clock at ``clock_ms`` has closed."""
        return (clock_ms - self.grace_ms) // HOUR_MS - 1

    def step(self, clock_ms: int) -> int:
        return (clock_ms - self.grace_ms) // self.step_ms

    def first_step_from(self, clock_ms: int) -> int:
        """The first step whose time (``step * step_ms + grace_ms``) is at or after
        ``clock_ms``."""
        return -((self.grace_ms - clock_ms) // self.step_ms)


@dataclass(slots=True)
class PartitionClock:
    live_ms: int = 0
    backlog_ms: int = 0
    #: received_at of the declaration that last moved the backlog clock
    backlog_moved_received_ms: int = 0
    #: checkpoint id -> ``[frame (LIVE or BACKLOG), newest hour judged]``
    members: dict[str, list[Any]] = field(default_factory=dict)
    #: the next input offset expected on the partition (``streams.offsets``)
    next_offset: int = -1
    #: frame -> its clock at its last sweep (``Pipeline._catch_up``)
    swept: dict[str, int] = field(default_factory=dict)
    #: frame -> its members in id order, as the sweeps walk them (not stored; ``join``
    #: forgets it): sorting them at every sweep was a tenth of a sweep at 2,000 checkpoints
    _in_frame: dict[str, list[str]] = field(default_factory=dict, compare=False, repr=False)

    def encode(self) -> str:
        return fastjson.dumps([self.live_ms, self.backlog_ms, self.backlog_moved_received_ms,
                               self.members, self.next_offset, self.swept])

    @classmethod
    def decode(cls, data: str | None) -> PartitionClock:
        if not data:
            return cls()
        with decoding("a partition clock"):
            live, backlog, moved, members, next_offset, *rest = fastjson.loads(data)
            swept = rest[0] if rest else {}  # written before 6/7: no sweep known
            return cls(int(live), int(backlog), int(moved),
                       {str(k): list(v) for k, v in members.items()}, int(next_offset),
                       {str(k): int(v) for k, v in swept.items()})

    def join(self, checkpoint_id: str, frame: str, cursor: int | None) -> None:
        """``checkpoint_id`` follows ``frame`` from now on (or for the first time)."""
        self.members[checkpoint_id] = [frame, cursor]
        self._in_frame.clear()

    def in_frame(self, frame: str) -> list[str]:
        """The members following ``frame``, in id order."""
        ids = self._in_frame.get(frame)
        if ids is None:
            ids = self._in_frame[frame] = sorted(
                c for c, m in self.members.items() if m[0] == frame)
        return ids

    def frame_of(self, checkpoint_id: str) -> str | None:
        member = self.members.get(checkpoint_id)
        return None if member is None else str(member[0])

    def frame_ms(self, frame: str) -> int:
        return self.live_ms if frame == LIVE else self.backlog_ms


@dataclass(slots=True)
class CheckpointEnvelope:
    """One checkpoint's whole state (see the module doc)."""

    offset: int = -1
    frame: str = LIVE
    #: the newest hour judged, and the newest quarter-hour step judged
    cursor: int | None = None
    step: int = -1
    newest_ms: int = 0
    reopened: list[int] = field(default_factory=list)
    late_ms: int = 0
    series: HourlySeries = field(default_factory=HourlySeries)
    cluster: ClusterState = field(default_factory=ClusterState)
    #: the hour-based detectors' states (their types come from the detectors)
    volume: Any = field(default_factory=VolumeState)
    aberration: Any = field(default_factory=AberrationState)
    #: ``[["a", key, alert json] | ["s", ward, summary json], ...]`` of the last batch
    outbox: list[list[str]] = field(default_factory=list)

    def encode(self) -> str:
        # The JSON of ``{"v": ..., "ser": series, "cl": ..., "ob": ...}`` with the series'
        # text put in as it is kept (most writes close an hour and leave the series as it
        # was): the same text as encoding the whole object at once.
        head = fastjson.dumps({
            "v": ENVELOPE_VERSION, "o": self.offset, "fr": self.frame, "cur": self.cursor,
            "st": self.step, "new": self.newest_ms, "re": self.reopened, "late": self.late_ms,
        })
        tail = fastjson.dumps({
            "cl": self.cluster.to_json(), "vo": self.volume.to_json(),
            "ab": self.aberration.to_json(), "ob": self.outbox,
        })
        return f'{head[:-1]},"ser":{self.series.json_text()},{tail[1:]}'

    @classmethod
    def decode(cls, data: str | bytes | None, *, volume: type[DetectorState] = VolumeState,
               aberration: type[DetectorState] = AberrationState) -> CheckpointEnvelope:
        if not data:
            return cls(volume=volume.from_json(None), aberration=aberration.from_json(None))
        with decoding("a checkpoint's state"):
            raw = fastjson.loads(data)
            if not isinstance(raw, dict) or raw.get("v") != ENVELOPE_VERSION:
                found = raw.get("v") if isinstance(raw, dict) else type(raw).__name__
                raise StateDecodeError(
                    f"checkpoint state version {found!r}, expected {ENVELOPE_VERSION}")
            cursor = raw["cur"]
            return cls(offset=int(raw["o"]), frame=str(raw["fr"]),
                       cursor=None if cursor is None else int(cursor),
                       step=int(raw["st"]), newest_ms=int(raw["new"]),
                       reopened=[int(h) for h in raw["re"]], late_ms=int(raw["late"]),
                       series=HourlySeries.from_json(raw["ser"]),
                       cluster=ClusterState.from_json(raw["cl"]),
                       volume=volume.from_json(raw["vo"]),
                       aberration=aberration.from_json(raw["ab"]),
                       outbox=[list(e) for e in raw["ob"]])


@dataclass
class PipelineTables:
    """The worker's tables (faust tables in the worker, dicts in tests)."""

    buckets: MutableMapping[str, bytes]
    recent: MutableMapping[str, str]
    checkpoints: MutableMapping[str, str]
    clocks: MutableMapping[str, str]


@dataclass
class BatchOutput:
    """What a batch asks the framework to do: send records (alerts and ward summaries,
    first emissions and re-sends alike), write Redis views, count metrics."""

    #: ``(key, alert json)`` for ``alerts.v1``
    alert_sends: list[tuple[bytes, bytes]] = field(default_factory=list)
    #: ``(ward, summary)`` for the by-ward topic
    summary_sends: list[tuple[bytes, bytes]] = field(default_factory=list)
    #: alerts raised for the first time (for metrics)
    alerts: list[AlertEvent] = field(default_factory=list)
    counting: CountingResult = field(default_factory=CountingResult)
    daily_totals: dict[tuple[str, str], int] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    #: ``partition -> first missing offset``: records were skipped, seek back there
    gaps: dict[int, int] = field(default_factory=dict)
    #: ``partition -> offset`` below which every record of the partition is applied (this
    #: batch's views and earlier batches' hold them): what the case look-up may rely on.
    #: Short of the batch's last record when records were skipped (``gaps``): the ones
    #: past the hole are applied only when the seek back brings the hole again.
    applied: dict[int, int] = field(default_factory=dict)


@dataclass
class _Batch:
    """Per-batch working set: decoded envelopes and partition clocks, written once."""

    envelopes: dict[str, CheckpointEnvelope] = field(default_factory=dict)
    #: each loaded envelope's stored form (to keep an unchanged one decoded)
    stored: dict[str, str | None] = field(default_factory=dict)
    produced: dict[str, list[list[str]]] = field(default_factory=dict)
    #: envelopes the batch changed (besides the step: see the module doc)
    changed: set[str] = field(default_factory=set)
    #: checkpoint -> (when it next has something to judge, its newest_ms) as of its last
    #: advance in this batch (``_sweep``)
    looks: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: sent after the batch's summaries: a ward must see an hour's summaries first
    watermarks: list[tuple[bytes, bytes]] = field(default_factory=list)
    out: BatchOutput = field(default_factory=BatchOutput)


class Pipeline:
    def __init__(
        self,
        *,
        tables: PipelineTables,
        partitions: int,
        policy: FlagPolicy,
        cluster: ClusterDetector,
        volume: VolumeDetector,
        aberration: Detector[Any],
        rules: TimeRules,
        info: Callable[[str], CheckpointInfo],
        wards_on_partition: Callable[[int], set[str]],
        outbreak: Callable[[], OutbreakAreaHistory],
        wall_ms: Callable[[], int],
        keep_hours: int = DEFAULT_KEEP_HOURS,
    ) -> None:
        self._tables = tables
        self._partitions = partitions
        self._rules = rules
        self._info = info
        self._wards_on = wards_on_partition
        self._marks_sent: dict[tuple[int, str], int | None] = {}
        self._outbreak = outbreak
        self._wall_ms = wall_ms
        self._keep_hours = keep_hours
        self._cluster = cluster
        self._volume = volume
        self._aberration = aberration
        self._state_types: dict[str, type[DetectorState]] = {
            "volume": type(volume.initial_state()),
            "aberration": type(aberration.initial_state()),
        }
        self.counting = DeclarationCounting(
            buckets=tables.buckets, recent=tables.recent, policy=policy,
            outbreak_areas_at=lambda ms: outbreak().areas_at(ms))
        self._clock_keys = [partition_key(p, partitions, "clock") for p in range(partitions)]
        #: checkpoints whose stored outbox this process wrote or re-sent
        self._confirmed: set[str] = set()
        #: decoded states kept between batches (decoding every touched checkpoint's JSON
        #: was a third of the pipeline's time)
        self._hot: KeptDecoded[CheckpointEnvelope] = KeptDecoded(HOT_MAX)
        #: checkpoint -> (when it next has something to judge, its newest_ms, the stored
        #: state that holds): a sweep passes it by until then (``_sweep``)
        self._idle: dict[str, tuple[int, int, str]] = {}
        self.offsets = OffsetGuard()
        #: partition -> the newest ``received_at`` of the records this process applied
        #: there (``tick``)
        self._received_through: dict[int, int] = {}

    # -------------------------------------------------------------- outbox recovery

    def forget_deliveries(self) -> None:
        """After a rebalance: stored outboxes (and states) may come from another worker."""
        self._confirmed.clear()
        self._hot.clear()
        self._idle.clear()
        self._received_through.clear()
        self.counting.forget()

    def pending_outboxes(self, partitions: Iterable[int] | None = None) -> BatchOutput:
        """The stored outboxes this process has not confirmed (call after start and after
        every rebalance, before processing), for the partitions given (default: all)."""
        wanted = set(partitions) if partitions is not None else None
        batch = _Batch()
        for key in sorted(self._tables.checkpoints.keys()):
            if key in self._confirmed:
                continue
            if wanted is not None and partition_for(key.encode(), self._partitions) not in wanted:
                continue
            env = self._decode(self._tables.checkpoints.get(key))
            self._resend(batch.out, env.outbox)
            self._confirmed.add(key)
        return batch.out

    @staticmethod
    def _resend(out: BatchOutput, outbox: list[list[str]]) -> None:
        _to_sends(out, outbox)
        out.outcomes["outbox_resent"] += len(outbox)

    # -------------------------------------------------------------- entry points

    def process(self, records: Sequence[RawRecord]) -> BatchOutput:
        """One batch of ``declarations.v1`` records (any partitions, offset order within
        each): see the module doc."""
        batch = _Batch()
        counted = self.counting.apply(records)
        batch.out.counting = counted
        batch.out.outcomes.update(counted.outcomes)
        # Per partition in offset order; a dead-lettered record (None) only moves the offset.
        by_partition: dict[int, list[tuple[int, Counted | None]]] = {}
        for item in counted.events:
            by_partition.setdefault(item.record.partition, []).append((item.record.offset, item))
        for record, _reason in counted.dead:
            by_partition.setdefault(record.partition, []).append((record.offset, None))
        days: set[tuple[str, int]] = set()
        offset_ms = self._rules.utc_offset_min * MINUTE_MS
        for partition, entries in by_partition.items():
            entries.sort(key=lambda e: e[0])
            clock = self._clock(partition)
            for i, (offset, entry) in enumerate(entries):
                admission = self.offsets.admit(partition, clock.next_offset, offset)
                if admission is Admission.GAP:
                    # Records before this one were skipped: apply nothing past the hole.
                    batch.out.gaps[partition] = self.offsets.open_gaps()[partition]
                    batch.out.outcomes["after_gap"] += len(entries) - i
                    break
                if admission is Admission.APPLY:
                    clock.next_offset = offset + 1
                if entry is None:
                    continue
                self._on_record(batch, clock, entry)
                days.add((entry.event.checkpoint_id,
                          (entry.scanned_at_ms + offset_ms) // DAY_MS))
            batch.out.applied[partition] = self.offsets.done(partition, clock.next_offset,
                                                             entries[-1][0] + 1)
            self._watermarks(batch, partition, clock)
            self._tables.clocks[self._clock_keys[partition]] = clock.encode()
        for cid, day in days:
            env = batch.envelopes[cid]
            first = (day * DAY_MS - offset_ms) // HOUR_MS
            total = env.series.window(first, first + DAY_H - 1)[0]
            batch.out.daily_totals[(cid, (date(1970, 1, 1) + timedelta(days=day)).isoformat())] \
                = total
        self._finish(batch)
        return batch.out

    def tick(self, partition: int, wall_ms: int, *, highwater: int | None) -> BatchOutput:
        """The wall clock moved on: move the partition's live clock (if it has live
        checkpoints) to ``wall_ms - tick_lag`` and judge what that closes.

        Not past what the worker has seen: ``highwater`` is the offset the partition's
        next record will get, as the consumer last heard (``None``: not heard yet).
        Records past the ones applied (a worker restarting, or behind) may be
        declarations received in the hours the tick would close; judged without them,
        those hours would look empty, and a silence raised live stands. Records are
        appended in the order they were received, so every waiting one was received
        after the newest ``received_at`` applied (give or take the API processes'
        publishing, well inside ``tick_lag``): the tick moves the clock to that, less
        ``tick_lag``, and no further (outcome ``tick_held``). While a backlog keeps the
        partition busy, a live checkpoint's silence is still noticed, as far as the
        worker has got. (After records lost to retention were accepted, ``accept_gap``,
        nothing applied is known until the next record: ticked as before.)"""
        batch = _Batch()
        clock = self._clock(partition)
        target = wall_ms - self._rules.tick_lag_ms
        live = any(m[0] == LIVE for m in clock.members.values())
        if clock.next_offset >= 0 and (highwater is None or highwater > clock.next_offset):
            seen = self._received_through.get(partition)
            target = -1 if seen is None else min(target, seen - self._rules.tick_lag_ms)
            if live:
                batch.out.outcomes["tick_held"] += 1
        if live and target > clock.live_ms:
            before = clock.live_ms
            clock.live_ms = target
            if self._rules.step(target) > self._rules.step(before):
                self._sweep(batch, clock, LIVE)
        self._watermarks(batch, partition, clock)
        self._tables.clocks[self._clock_keys[partition]] = clock.encode()
        self._finish(batch)
        return batch.out

    def accept_gap(self, partition: int) -> None:
        """The records missing on ``partition`` are gone (retention): go on from the next
        record that comes."""
        clock = self._clock(partition)
        clock.next_offset = -1
        self._tables.clocks[self._clock_keys[partition]] = clock.encode()
        self.offsets.close(partition)

    def next_offset(self, partition: int) -> int:
        """The offset of the next record expected on ``partition`` (-1: any)."""
        return self._clock(partition).next_offset

    def forget_watermarks(self) -> None:
        """Send every watermark again (after a restart or rebalance: the wards may not
        have them)."""
        self._marks_sent.clear()

    def _watermarks(self, batch: _Batch, partition: int, clock: PartitionClock) -> None:
        """Tell each ward with checkpoints on ``partition`` how far they have all been
        judged (see ``streams.wards``), when that changed. A backlog that has not moved
        for ``backlog_stall_ms`` of wall time holds no ward back."""
        for cid, env in batch.envelopes.items():
            member = clock.members.get(cid)
            if member is not None and env.cursor is not None:
                member[1] = env.cursor
        rules = self._rules
        stalled = self._wall_ms() - clock.backlog_moved_received_ms > rules.backlog_stall_ms
        frames = {m[0] for m in clock.members.values()} - ({BACKLOG} if stalled else set())
        # A checkpoint that starts declaring on this partition starts after what its frame
        # has closed: no ward waits for more than that, or for a stalled backlog.
        closed = [rules.closed_through(clock.frame_ms(f)) for f in frames]
        guarantee = min(closed) if closed else None
        marks: dict[str, int | None] = dict.fromkeys(self._wards_on(partition), guarantee)
        for cid, (frame, cursor) in clock.members.items():
            ward = self._info(cid).ward_code
            if ward is None or cursor is None or (frame == BACKLOG and stalled):
                continue
            mark = marks.get(ward, guarantee)
            marks[ward] = int(cursor) if mark is None else min(mark, int(cursor))
        for ward, mark in sorted(marks.items()):
            if ward and self._marks_sent.get((partition, ward), _UNSENT) != mark:
                batch.watermarks.append(
                    (ward.encode(), Watermark(ward, partition, mark).encode()))
                self._marks_sent[(partition, ward)] = mark

    # -------------------------------------------------------------- per record

    def views_of_tables(self, *, days: Iterable[int]) -> tuple[CountingResult,
                                                                dict[tuple[str, str], int]]:
        """Every stats bucket this worker holds, with each checkpoint's newest time, and
        the daily totals of ``days`` (days since the epoch, local time): what the Redis
        views hold, rebuilt from the tables after Redis lost them."""
        result = CountingResult()
        for key, data in list(self._tables.buckets.items()):
            cid, _, hour_text = key.rpartition(KEY_SEPARATOR)
            bucket = HourBucket.decode(int(hour_text), data)
            result.buckets[(cid, bucket.hour)] = bucket
            newest = max((ts for ts, _ in bucket), default=None)
            if newest is not None:
                result.newest_ms[cid] = max(result.newest_ms.get(cid, newest), newest)
        offset_ms = self._rules.utc_offset_min * MINUTE_MS
        daily: dict[tuple[str, str], int] = {}
        for cid, raw in list(self._tables.checkpoints.items()):
            env = self._decode(raw)
            for day in days:
                first = (day * DAY_MS - offset_ms) // HOUR_MS
                total = env.series.window(first, first + DAY_H - 1)[0]
                if total:
                    daily[(cid, (date(1970, 1, 1) + timedelta(days=day)).isoformat())] = total
        return result, daily

    def _clock(self, partition: int) -> PartitionClock:
        return PartitionClock.decode(self._tables.clocks.get(self._clock_keys[partition]))

    def _decode(self, raw: str | None) -> CheckpointEnvelope:
        return CheckpointEnvelope.decode(raw, volume=self._state_types["volume"],
                                         aberration=self._state_types["aberration"])

    def _load(self, batch: _Batch, cid: str) -> CheckpointEnvelope:
        env = batch.envelopes.get(cid)
        if env is None:
            raw = batch.stored[cid] = self._tables.checkpoints.get(cid)
            env = batch.envelopes[cid] = self._hot.take_or_decode(cid, raw, self._decode)
            if cid not in self._confirmed and env.outbox:
                self._resend(batch.out, env.outbox)  # written before a crash: maybe lost
                batch.changed.add(cid)  # stored again with this batch's outbox
            batch.produced[cid] = []
        return env

    def _on_record(self, batch: _Batch, clock: PartitionClock, item: Counted) -> None:
        rules = self._rules
        event = item.event
        at_ms = item.scanned_at_ms
        received_ms = to_ms(event.received_at)
        partition = item.record.partition
        if received_ms > self._received_through.get(partition, 0):
            self._received_through[partition] = received_ms
        frame = LIVE if received_ms - at_ms <= rules.live_lag_ms else BACKLOG
        # Stream time first: the hours this record's arrival closes are judged without it.
        self._move_frame(batch, clock, frame, at_ms, received_ms)
        cid = event.checkpoint_id
        env = self._load(batch, cid)
        self._catch_up(env, clock)
        if item.record.offset <= env.offset:
            batch.out.outcomes["replayed_detection"] += 1
            return
        env.offset = item.record.offset
        batch.changed.add(cid)
        if item.duplicate:
            return
        info = self._info(cid)
        if env.cursor is None:
            env.cursor = at_ms // HOUR_MS - 1  # nothing before its first declaration
        env.frame = frame
        if clock.frame_of(cid) != frame:
            clock.join(cid, frame, env.cursor)
        subject = self._subject(env, cid, info)
        areas = self._outbreak().areas_at(at_ms)
        produced = batch.produced[cid]
        alert = declaration_alert(event, item.flags, outbreak_areas=areas,
                                  ward_code=info.ward_code)
        if alert is not None:
            self._emit(batch, produced, alert)
        symptomatic = is_symptomatic(item.flags)
        env.series.observe(at_ms, symptomatic=symptomatic, person_key=event.person.key)
        case = Case(str(event.declaration_id), event.person.key, at_ms, symptomatic)
        for found in (self._cluster.on_declaration(env.cluster, subject, case),
                      self._volume.on_declaration(env.volume, subject, case),
                      self._aberration.on_declaration(env.aberration, subject, case)):
            for a in found:
                self._emit(batch, produced, a)
        hour = at_ms // HOUR_MS
        if hour <= env.cursor:
            batch.out.outcomes["late_after_close"] += 1
            if hour not in env.reopened:
                env.reopened.append(hour)
            env.late_ms = max(env.late_ms, at_ms)
            due = [h for h in sorted(env.reopened) if h <= rules.closed_through(env.late_ms)]
        else:
            due = sorted(env.reopened)  # a declaration past everything judged: caught up
        for h in due:
            env.reopened.remove(h)
            self._judge_hour(batch, env, cid, subject, info, h, now_ms=max(env.late_ms, at_ms),
                             late=True)
        env.newest_ms = max(env.newest_ms, at_ms)
        self._advance(batch, env, cid, info, self._judgement_clock(clock, env))

    def _move_frame(self, batch: _Batch, clock: PartitionClock, frame: str, at_ms: int,
                    received_ms: int) -> None:
        rules = self._rules
        before = clock.frame_ms(frame)
        if at_ms <= before:
            return
        if frame == LIVE:
            clock.live_ms = at_ms
        else:
            idle = received_ms - clock.backlog_moved_received_ms >= rules.backlog_idle_ms
            if before and at_ms - before > rules.carry_ms and not idle:
                return  # another backlog far ahead: it runs on its own time
            clock.backlog_ms = at_ms
            clock.backlog_moved_received_ms = received_ms
        if rules.step(at_ms) > rules.step(before):
            self._sweep(batch, clock, frame)

    def _judgement_clock(self, clock: PartitionClock, env: CheckpointEnvelope) -> int:
        return self._judgement_at(clock.frame_ms(env.frame), env)

    def _judgement_at(self, frame_ms: int, env: CheckpointEnvelope) -> int:
        if env.frame == BACKLOG and frame_ms - env.newest_ms > self._rules.carry_ms:
            return env.newest_ms  # far behind the backlog it shares the partition with
        return max(frame_ms, env.newest_ms)

    def _catch_up(self, env: CheckpointEnvelope, clock: PartitionClock) -> None:
        """The step its frame's last sweep brought the checkpoint to, where the sweep
        passed it over (nothing due) or looked without storing (``_finish``): looked at
        with the state it had then, before anything (a late declaration) changes it. (A
        checkpoint that joins a frame is advanced to the frame's clock at once, past the
        frame's earlier sweeps: ``_on_record``.)"""
        swept = clock.swept.get(env.frame)
        if env.cursor is not None and swept is not None:
            env.step = max(env.step, self._rules.step(self._judgement_at(swept, env)))

    def _sweep(self, batch: _Batch, clock: PartitionClock, frame: str) -> None:
        frame_ms = clock.frame_ms(frame)
        stored = self._tables.checkpoints
        for cid in clock.in_frame(frame):
            look = batch.looks.get(cid)
            if look is None and cid not in batch.envelopes:
                idle = self._idle.get(cid)
                if idle is not None and stored.get(cid) is idle[2]:
                    look = idle[0], idle[1]  # unchanged since it was stored
            if look is not None and max(frame_ms, look[1]) < look[0]:
                # No hour to close and no detector due before then (its judgement clock
                # is at most max(frame, newest)).
                continue
            env = self._load(batch, cid)
            if env.cursor is None:
                continue
            self._catch_up(env, clock)
            self._advance(batch, env, cid, self._info(cid), self._judgement_clock(clock, env))
        clock.swept[frame] = frame_ms

    # -------------------------------------------------------------- judging

    def _subject(self, env: CheckpointEnvelope, cid: str, info: CheckpointInfo) -> Subject:
        return Subject(series=env.series, checkpoint_id=cid, ward_code=info.ward_code,
                       place=cid, hours=info.hours)

    def _advance(self, batch: _Batch, env: CheckpointEnvelope, cid: str, info: CheckpointInfo,
                 clock_ms: int) -> None:
        assert env.cursor is not None
        closed = self._rules.closed_through(clock_ms)
        if closed - env.cursor > self._keep_hours:
            env.cursor = closed - self._keep_hours  # nothing older is kept to judge
            batch.changed.add(cid)
        # Stream time may jump (a replay: the next record is a day later). Walk the jump
        # step by step, as live time would have: each hour judged as of its close, what
        # was ongoing (a silence) looked at every step, dated when it showed.
        # Steps with no hour to close and no detector due (``_next_look_ms``) would only
        # look and find nothing: they are passed over.
        rules = self._rules
        last = rules.step(clock_ms)
        step = max(env.step + 1, rules.step((env.cursor + 1) * HOUR_MS + rules.grace_ms))
        subject = self._subject(env, cid, info)  # its series is changed in place, never swapped
        while step < last:
            at_ms = step * rules.step_ms + rules.grace_ms
            self._close_hours(batch, env, cid, subject, info, rules.closed_through(at_ms), at_ms)
            due = self._at_step(batch, env, cid, subject, at_ms)
            step = max(step + 1, rules.first_step_from(self._next_look_ms(env, subject, due)))
        self._close_hours(batch, env, cid, subject, info, closed, clock_ms)
        due = self._at_step(batch, env, cid, subject, clock_ms)
        batch.looks[cid] = self._next_look_ms(env, subject, due), env.newest_ms

    def _clock_due(self, env: CheckpointEnvelope, subject: Subject) -> int | None:
        dues = [d for d in (self._volume.clock_due(env.volume, subject),
                            self._cluster.clock_due(env.cluster, subject),
                            self._aberration.clock_due(env.aberration, subject))
                if d is not None]
        return min(dues) if dues else None

    def _next_look_ms(self, env: CheckpointEnvelope, subject: Subject,
                      due: int | _Unknown | None = _Unknown.DUE) -> int:
        """The judgement clock at which the checkpoint next has something to judge: its
        next hour closes, or a detector's clock is due (``Detector.clock_due``; ``due``
        when the caller knows it for the state as it is)."""
        assert env.cursor is not None
        close = (env.cursor + 2) * HOUR_MS + self._rules.grace_ms
        if due is _Unknown.DUE:
            due = self._clock_due(env, subject)
        return close if due is None else min(close, due)

    def _close_hours(self, batch: _Batch, env: CheckpointEnvelope, cid: str, subject: Subject,
                     info: CheckpointInfo, through: int, now_ms: int) -> None:
        assert env.cursor is not None
        for hour in range(env.cursor + 1, through + 1):
            self._judge_hour(batch, env, cid, subject, info, hour, now_ms=now_ms, late=False)
            env.cursor = hour
            batch.changed.add(cid)

    def _at_step(self, batch: _Batch, env: CheckpointEnvelope, cid: str, subject: Subject,
                 clock_ms: int) -> int | _Unknown | None:
        """Ongoing conditions (a silence), once per step of stream time. Returns the
        detectors' clock due when it found it and looked at nothing (the state is as it
        was), else ``_Unknown.DUE``."""
        step = self._rules.step(clock_ms)
        if step <= env.step:
            return _Unknown.DUE
        env.step = step
        due = self._clock_due(env, subject)
        if due is None or clock_ms < due:
            return due  # each look would return nothing and change nothing
        produced = batch.produced[cid]
        for found in (self._volume.on_clock(env.volume, subject, now_ms=clock_ms),
                      self._cluster.on_clock(env.cluster, subject, now_ms=clock_ms),
                      self._aberration.on_clock(env.aberration, subject, now_ms=clock_ms)):
            for a in found:
                self._emit(batch, produced, a)
        return _Unknown.DUE

    def _judge_hour(self, batch: _Batch, env: CheckpointEnvelope, cid: str, subject: Subject,
                    info: CheckpointInfo, hour: int, *, now_ms: int, late: bool) -> None:
        produced = batch.produced[cid]
        for found in (
            self._volume.on_hour_closed(env.volume, subject, hour, now_ms=now_ms, late=late),
            self._aberration.on_hour_closed(env.aberration, subject, hour, now_ms=now_ms,
                                            late=late),
            self._cluster.on_hour_closed(env.cluster, subject, hour, now_ms=now_ms, late=late),
        ):
            for a in found:
                self._emit(batch, produced, a)
        if info.ward_code is not None:
            summary = HourSummary(info.ward_code, cid, hour, env.series.total(hour),
                                  self._persons(env, hour))
            produced.append(["s", info.ward_code, summary.encode().decode()])
        if not late and hour % DAY_H == 0:
            env.series.prune(hour - self._keep_hours, now_ms=(hour + 1) * HOUR_MS)

    @staticmethod
    def _persons(env: CheckpointEnvelope, hour: int) -> tuple[str, ...]:
        """The symptomatic declarants of ``hour`` (from the cluster's case list)."""
        cases = env.cluster.cases
        lo = bisect.bisect_left(cases, (hour * HOUR_MS, "", ""))
        hi = bisect.bisect_left(cases, ((hour + 1) * HOUR_MS, "", ""))
        return tuple(sorted({c[1] for c in cases[lo:hi]}))

    def _emit(self, batch: _Batch, produced: list[list[str]], alert: AlertEvent) -> None:
        key = alert.checkpoint_id or alert.ward_code or alert.alert_id
        produced.append(["a", key, alert.model_dump_json()])
        batch.out.alerts.append(alert)

    def _finish(self, batch: _Batch) -> None:
        """Write each changed envelope once, its outbox being what this batch produced;
        the watermarks go last (the summaries they vouch for are in the outboxes)."""
        for cid, env in batch.envelopes.items():
            if cid not in batch.changed and not batch.produced[cid]:
                # Only looked at (a sweep's step): the table keeps what it holds.
                self._hot.keep(cid, batch.stored[cid], env)
                self._keep_idle(batch, cid, env, batch.stored[cid])
                continue
            env.outbox = batch.produced[cid]
            text = env.encode()
            self._tables.checkpoints[cid] = text
            self._keep_idle(batch, cid, env, text)
            self._hot.keep(cid, text, env)
            self._confirmed.add(cid)
            _to_sends(batch.out, env.outbox)
        batch.out.summary_sends += batch.watermarks

    def _keep_idle(self, batch: _Batch, cid: str, env: CheckpointEnvelope,
                   stored: str | None) -> None:
        """Remember until when sweeps may pass the checkpoint over (``_sweep``)."""
        if env.cursor is None or stored is None:
            self._idle.pop(cid, None)
            return
        look = batch.looks.get(cid)
        if look is None:
            look = self._next_look_ms(env, self._subject(env, cid, self._info(cid))), env.newest_ms
        self._idle[cid] = (*look, stored)
        if len(self._idle) > 4 * HOT_MAX:
            del self._idle[next(iter(self._idle))]


#: Decoded checkpoint states kept between batches (about 5 KiB each).
HOT_MAX = 20_000


def _to_sends(out: BatchOutput, outbox: list[list[str]]) -> None:
    for kind, key, value in outbox:
        sends = out.alert_sends if kind == "a" else out.summary_sends
        sends.append((key.encode(), value.encode()))


def decode_tick(value: bytes) -> int:
    """The wall clock (ms) a tick record carries, or ``BadRecordError``."""
    try:
        raw: Any = json.loads(value)
        return int(raw["wall_ms"])
    except MALFORMED as exc:
        raise BadRecordError(f"not a tick record: {type(exc).__name__}") from exc
