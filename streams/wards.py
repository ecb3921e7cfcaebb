"""Ward-level ``symptom_aberration``: the same detector as for checkpoints, on the sum of a
ward's checkpoints, framework-free (plain mappings for tables, as ``streams.pipeline``).

How a ward series is built
--------------------------
A ward's checkpoints sit on several input partitions (and several workers). Each
checkpoint, when it judges one of its hours, sends an :class:`HourSummary` to the internal
by-ward topic (keyed by ward code): the hour's declarations and the keys of its
symptomatic declarants. A summary is an *absolute* value for ``(checkpoint, hour)``, so a
summary sent twice (a replay, an outbox re-send) or sent again with late declarations
simply replaces the earlier one: nothing is counted twice.

When is a ward hour complete? Each input partition also sends, for every ward with
checkpoints registered on it, a :class:`Watermark`: every checkpoint of that ward on that
partition has judged (and so summarised) its hours up to ``hour`` (``None``: it has no
active checkpoint of the ward, so nothing to wait for). The ward judges an hour once the
watermark of every partition holding one of its registered checkpoints has passed it.
Records of one partition reach the by-ward topic in order, so the ward sees an hour only
once its summaries are all in, however the partitions interleave: a replay or a crash
gives the same ward alerts as a clean run. The ward's symptomatic count of an hour counts
each person once (a person already counted in the ward in the previous 24 hours is not
new).

A summary for an hour the ward has judged (a checkpoint's backlog, judged late on the
checkpoint's own time) updates the hour and judges it again; it can raise an alert the
first judgement did not, and never withdraws one. Detail older than ``CELL_KEEP_H`` (72
hours) behind the ward's progress is folded into its series; a summary for such an hour
is counted in ``late_dropped`` and left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors.aberration import AberrationState
from detectors.base import Detector, DetectorState, Subject
from detectors.errors import MALFORMED, StateDecodeError, decoding
from detectors.series import DEFAULT_KEEP_HOURS, HourlySeries
from streams.errors import BadRecordError
from streams.offsets import Admission, OffsetGuard
from vhc_common import fastjson
from vhc_common.partitioning import partition_for, partition_key
from vhc_common.schemas import AlertEvent
from vhc_common.timebase import DAY_H, HOUR_MS

__all__ = [
    "HourSummary",
    "WardEnvelope",
    "WardOutput",
    "WardProcessor",
    "Watermark",
    "decode_ward_record",
]

RECORD_VERSION = 2
ENVELOPE_VERSION = 2
#: Hours a ward keeps per-checkpoint detail for, behind its progress.
CELL_KEEP_H = 72


@dataclass(frozen=True, slots=True)
class HourSummary:
    """One checkpoint's hour, for its ward (a by-ward topic record)."""

    ward_code: str
    checkpoint_id: str
    hour: int
    total: int
    persons: tuple[str, ...]

    def encode(self) -> bytes:
        return fastjson.dumps_bytes({"v": RECORD_VERSION, "k": "s", "w": self.ward_code,
                                     "c": self.checkpoint_id, "h": self.hour,
                                     "t": self.total, "p": list(self.persons)})


@dataclass(frozen=True, slots=True)
class Watermark:
    """Partition ``partition`` has summarised every hour up to ``hour`` of its checkpoints
    in ``ward_code`` (``None``: none of them is active; a by-ward topic record)."""

    ward_code: str
    partition: int
    hour: int | None

    def encode(self) -> bytes:
        return fastjson.dumps_bytes({"v": RECORD_VERSION, "k": "w", "w": self.ward_code,
                                     "p": self.partition, "h": self.hour})


def decode_ward_record(data: bytes) -> HourSummary | Watermark:
    """A by-ward record, or ``BadRecordError``."""
    try:
        raw = fastjson.loads(data)
        if not isinstance(raw, dict) or raw.get("v") != RECORD_VERSION:
            raise BadRecordError(f"not a version-{RECORD_VERSION} by-ward record")
        if raw["k"] == "s":
            return HourSummary(str(raw["w"]), str(raw["c"]), int(raw["h"]), int(raw["t"]),
                               tuple(str(p) for p in raw["p"]))
        if raw["k"] == "w":
            return Watermark(str(raw["w"]), int(raw["p"]),
                             None if raw["h"] is None else int(raw["h"]))
    except MALFORMED as exc:
        raise BadRecordError(f"not a by-ward record: {type(exc).__name__}") from exc
    raise BadRecordError("unknown by-ward record kind")


@dataclass(slots=True)
class WardEnvelope:
    """Everything a ward keeps, in one table value (one changelog record, so it is made
    durable whole): the last by-ward offset applied, the partitions' watermarks, per-hour
    checkpoint cells ``{hour: {checkpoint: [total, persons or their count]}}``, the newest
    hour judged, the series, the detector state, and the outbox of alerts not yet known
    to be delivered."""

    offset: int = -1
    marks: dict[str, int | None] = field(default_factory=dict)
    cells: dict[int, dict[str, list[Any]]] = field(default_factory=dict)
    cursor: int | None = None
    series: HourlySeries = field(default_factory=HourlySeries)
    aberration: Any = field(default_factory=AberrationState)
    #: ``[[key, alert json], ...]`` of the last batch
    outbox: list[list[str]] = field(default_factory=list)
    #: the newest hour whose checkpoint detail was folded into the series
    folded_through: int = -1

    def encode(self) -> str:
        return fastjson.dumps({
            "v": ENVELOPE_VERSION, "o": self.offset, "m": self.marks,
            "c": {str(h): cell for h, cell in self.cells.items()}, "cur": self.cursor,
            "s": self.series.to_json(), "a": self.aberration.to_json(), "ob": self.outbox,
            "f": self.folded_through,
        })

    @classmethod
    def decode(cls, data: str | None, *,
               aberration: type[DetectorState] = AberrationState) -> WardEnvelope:
        if not data:
            return cls(aberration=aberration.from_json(None))
        with decoding("a ward's state"):
            raw = fastjson.loads(data)
            if not isinstance(raw, dict) or raw.get("v") != ENVELOPE_VERSION:
                found = raw.get("v") if isinstance(raw, dict) else type(raw).__name__
                raise StateDecodeError(
                    f"ward state version {found!r}, expected {ENVELOPE_VERSION}")
            cursor = raw["cur"]
            return cls(offset=int(raw["o"]), marks=dict(raw["m"]),
                       cells={int(h): dict(c) for h, c in raw["c"].items()},
                       cursor=None if cursor is None else int(cursor),
                       series=HourlySeries.from_json(raw["s"]),
                       aberration=aberration.from_json(raw["a"]),
                       outbox=[list(e) for e in raw["ob"]], folded_through=int(raw["f"]))


@dataclass
class WardOutput:
    alerts: list[AlertEvent] = field(default_factory=list)
    #: alerts to (re)send, as JSON, with their key
    sends: list[tuple[bytes, bytes]] = field(default_factory=list)
    #: ``outbox_resent``, ``late_dropped``, ``after_gap``
    outcomes: Counter[str] = field(default_factory=Counter)
    #: ``partition -> first missing offset``: records were skipped, seek back there
    gaps: dict[int, int] = field(default_factory=dict)


class WardProcessor:
    def __init__(self, *, states: MutableMapping[str, str], partitions: int,
                 aberration: Detector[Any], grace_s: int,
                 ward_partitions: Callable[[str], set[int]],
                 ward_names: Callable[[str], str | None] | None = None,
                 keep_hours: int = DEFAULT_KEEP_HOURS) -> None:
        """``ward_partitions(ward)``: the input partitions holding the ward's registered
        checkpoints (from the registry)."""
        self._states = states
        self._partitions = partitions
        self._aberration = aberration
        self._state_type: type[DetectorState] = type(aberration.initial_state())
        self._grace_ms = grace_s * 1000
        self._sources = ward_partitions
        self._names = ward_names or (lambda _w: None)
        self._keep_hours = keep_hours
        #: wards whose stored outbox this process wrote (so it was delivered before the
        #: next batch) or has re-sent since it started
        self._confirmed: set[str] = set()
        #: per by-ward partition, the key of the next offset expected (``streams.offsets``)
        self._next_keys = [partition_key(p, partitions, "next-offset")
                           for p in range(partitions)]
        self.offsets = OffsetGuard()

    def forget_deliveries(self) -> None:
        """After a rebalance: stored outboxes may come from another worker."""
        self._confirmed.clear()

    def pending_outboxes(self, partitions: Iterable[int] | None = None) -> WardOutput:
        """The stored outboxes of wards (on ``partitions``, default all) this process has
        not confirmed: call after start and after every rebalance."""
        wanted = set(partitions) if partitions is not None else None
        out = WardOutput()
        for ward in sorted(self._states.keys()):
            if ward.startswith("__") or ward in self._confirmed or (
                    wanted is not None
                    and partition_for(ward.encode(), self._partitions) not in wanted):
                continue
            self._resend(out, self._decode(self._states.get(ward)))
            self._confirmed.add(ward)
        return out

    def _decode(self, raw: str | None) -> WardEnvelope:
        return WardEnvelope.decode(raw, aberration=self._state_type)

    @staticmethod
    def _resend(out: WardOutput, env: WardEnvelope) -> None:
        out.sends += [(a[0].encode(), a[1].encode()) for a in env.outbox]
        out.outcomes["outbox_resent"] += len(env.outbox)

    def next_offset(self, partition: int) -> int:
        """The offset of the next record expected on ``partition`` (-1: any)."""
        return int(self._states.get(self._next_keys[partition]) or -1)

    def accept_gap(self, partition: int) -> None:
        """The records missing on ``partition`` are gone (retention): go on from the next
        record that comes."""
        self._states[self._next_keys[partition]] = "-1"
        self.offsets.close(partition)

    def on_records(self, records: Sequence[tuple[int, int, HourSummary | Watermark | None]]
                   ) -> WardOutput:
        """Apply ``(partition, offset, record)`` triples, in offset order within each
        partition (a ward's records all come from one by-ward partition); ``None`` is an
        unreadable record (dead-lettered by the caller): it only moves the offset."""
        out = WardOutput()
        cache: dict[str, WardEnvelope] = {}
        fresh: dict[str, list[AlertEvent]] = {}
        expected: dict[int, int] = {}
        for partition, offset, record in records:
            if partition in out.gaps:  # nothing past a hole
                out.outcomes["after_gap"] += 1
                continue
            if partition not in expected:
                expected[partition] = self.next_offset(partition)
            admission = self.offsets.admit(partition, expected[partition], offset)
            if admission is Admission.GAP:
                out.gaps[partition] = self.offsets.open_gaps()[partition]
                out.outcomes["after_gap"] += 1
                continue
            if admission is Admission.APPLY:
                expected[partition] = offset + 1
            if record is None:
                continue
            ward = record.ward_code
            env = cache.get(ward)
            if env is None:
                env = cache[ward] = self._decode(self._states.get(ward))
                if ward not in self._confirmed:
                    self._resend(out, env)  # written before a crash: maybe not delivered
                fresh[ward] = []
            if offset <= env.offset:
                continue
            env.offset = offset
            if isinstance(record, HourSummary):
                fresh[ward] += self._summary(env, record, out)
            else:
                env.marks[str(record.partition)] = record.hour
            fresh[ward] += self._advance(env, ward)
        for partition, next_offset in expected.items():
            self._states[self._next_keys[partition]] = str(next_offset)
        for ward, env in cache.items():
            env.outbox = [[ward, a.model_dump_json()] for a in fresh[ward]]
            out.alerts += fresh[ward]
            out.sends += [(k.encode(), v.encode()) for k, v in env.outbox]
            self._states[ward] = env.encode()
            self._confirmed.add(ward)
        return out

    # -------------------------------------------------------------- internals

    def _summary(self, env: WardEnvelope, s: HourSummary, out: WardOutput) -> list[AlertEvent]:
        if s.hour <= env.folded_through:
            out.outcomes["late_dropped"] += 1  # older than the detail kept
            return []
        env.cells.setdefault(s.hour, {})[s.checkpoint_id] = [s.total, list(s.persons)]
        if env.cursor is not None and s.hour <= env.cursor:
            return self._judge(env, s.ward_code, s.hour, late=True)
        return []

    def ready_through(self, env: WardEnvelope, ward: str) -> int | None:
        """The newest hour every partition of the ward has summarised (``None``: some
        partition has not said yet)."""
        newest: int | None = None
        bound = None
        for p in self._sources(ward):
            mark = env.marks.get(str(p), -1)
            if mark == -1:
                return None  # not heard from this partition yet
            if mark is not None:
                bound = mark if bound is None else min(bound, mark)
        if bound is None:  # no active checkpoint anywhere: what is in is all there is
            newest = max(env.cells, default=None)
            return newest
        return bound

    def _advance(self, env: WardEnvelope, ward: str) -> list[AlertEvent]:
        through = self.ready_through(env, ward)
        if through is None or not env.cells:
            return []
        if env.cursor is None:
            env.cursor = min(env.cells) - 1
        alerts: list[AlertEvent] = []
        while env.cursor < through:
            env.cursor += 1
            alerts += self._judge(env, ward, env.cursor, late=False)
        self._prune(env)
        return alerts

    def _judge(self, env: WardEnvelope, ward: str, hour: int, *, late: bool) -> list[AlertEvent]:
        cells = env.cells.get(hour, {})
        total = sum(int(c[0]) for c in cells.values())
        persons: set[str] = set()
        counted = 0
        for c in cells.values():
            if isinstance(c[1], list):
                persons.update(c[1])
            else:
                counted += int(c[1])
        before: set[str] = set()
        for h in range(hour - DAY_H + 1, hour):
            for c in env.cells.get(h, {}).values():
                if isinstance(c[1], list):
                    before.update(c[1])
        env.series.put(hour, total=total, symptomatic=counted + len(persons - before))
        name = self._names(ward)
        subject = Subject(series=env.series, checkpoint_id=None, ward_code=ward,
                          place=f"{name} ({ward})" if name else f"phường/xã {ward}")
        now_ms = (hour + 1) * HOUR_MS + self._grace_ms
        return self._aberration.on_hour_closed(env.aberration, subject, hour, now_ms=now_ms,
                                               late=late)

    def _prune(self, env: WardEnvelope) -> None:
        """Fold hours far behind: their sums stay in the series only."""
        if env.cursor is None:
            return
        fold_before = env.cursor - CELL_KEEP_H
        for hour in [h for h in env.cells if h < fold_before]:
            del env.cells[hour]
            env.folded_through = max(env.folded_through, hour)
        for hour, cell in env.cells.items():
            if hour < env.cursor - 2 * DAY_H:
                for values in cell.values():
                    if isinstance(values[1], list):
                        values[1] = len(values[1])  # persons are only needed for 24 h
        if env.cursor % DAY_H == 0:
            env.series.prune(env.cursor - self._keep_hours, now_ms=env.cursor * HOUR_MS)
