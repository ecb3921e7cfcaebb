"""Applies batches of declaration records to the per-checkpoint count tables.

The adapter between Kafka records and ``detectors.counts``: decode, check, group by
checkpoint and hour, update each touched bucket once per batch, prune buckets that fell
out of the horizon. Tables are plain mappings here (faust tables in the worker, dicts in
unit tests); nothing in this module does I/O.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection, MutableMapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from pydantic import ValidationError

from detectors.counts import (
    DEFAULT_HORIZON_MS,
    AddOutcome,
    CountedDeclaration,
    HourBucket,
    declaration_key,
)
from detectors.errors import decoding
from detectors.flags import DeclarationFlags, FlagPolicy, flags_of
from streams.errors import BadRecordError
from streams.kept import KeptDecoded
from vhc_common import fastjson
from vhc_common.partitioning import composite_key
from vhc_common.schemas import DeclarationEvent
from vhc_common.timebase import hour_of, to_ms

__all__ = [
    "BEYOND_HORIZON",
    "CheckpointRecent",
    "Counted",
    "CountingResult",
    "DeclarationCounting",
    "RawRecord",
    "decode",
]

#: The outcome of a declaration too old for the count buckets (still one for detection).
BEYOND_HORIZON = "beyond_horizon"

#: Decoded hour buckets kept between batches (``streams.kept``).
HOT_BUCKETS_MAX = 20_000

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A record as consumed, with its coordinates for dead-letter reports."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(slots=True)
class CheckpointRecent:
    """Per-checkpoint bookkeeping: newest ``scanned_at`` and the bucket hours kept."""

    newest_ms: int = 0
    hours: set[int] = field(default_factory=set)

    def encode(self) -> str:
        return fastjson.dumps({"newest_ms": self.newest_ms, "hours": sorted(self.hours)})

    @classmethod
    def decode(cls, data: str | None) -> CheckpointRecent:
        if not data:
            return cls()
        with decoding("a checkpoint's recent hours"):
            raw = fastjson.loads(data)
            return cls(newest_ms=int(raw["newest_ms"]), hours={int(h) for h in raw["hours"]})


# An enum member's ``value`` is a Python-level property: read once here, not per record.
_COUNTED = AddOutcome.COUNTED.value
_DUPLICATE = AddOutcome.DUPLICATE.value


@dataclass(slots=True)
class Counted:
    """A decoded record, what counting made of it, and its flags (computed once, for the
    counts and the detectors alike)."""

    record: RawRecord
    event: DeclarationEvent
    scanned_at_ms: int
    flags: DeclarationFlags = DeclarationFlags.NONE
    #: an ``AddOutcome`` value or ``BEYOND_HORIZON``
    outcome: str = _COUNTED

    @property
    def duplicate(self) -> bool:
        """Another record of a declaration counted already (a retried publish)."""
        return self.outcome == _DUPLICATE


@dataclass
class CountingResult:
    """What one batch changed, for the Redis view, the dead-letter topic and metrics."""

    events: list[Counted] = field(default_factory=list)
    buckets: dict[tuple[str, int], HourBucket] = field(default_factory=dict)
    #: the stored encoding of each bucket in ``buckets`` that counting wrote (the view
    #: writes the same bytes: encoding every touched bucket twice cost 2,000 checkpoints
    #: more than 200)
    encoded: dict[tuple[str, int], bytes] = field(default_factory=dict)
    removed: list[tuple[str, int]] = field(default_factory=list)
    newest_ms: dict[str, int] = field(default_factory=dict)
    dead: list[tuple[RawRecord, str]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)


def decode(record: RawRecord) -> DeclarationEvent:
    """Decode and check one ``declarations.v1`` record or raise ``BadRecordError``."""
    if record.value is None:
        raise BadRecordError("empty value")
    try:
        event = DeclarationEvent.model_validate_json(record.value)
    except ValidationError as exc:
        # The fields and reasons, never the input: it may hold personal data.
        errors = exc.errors(include_url=False, include_input=False)
        raise BadRecordError(f"invalid declaration: {errors}") from exc
    if record.key is not None and record.key != event.checkpoint_id.encode():
        # Keyed by something else, it sits on another checkpoint's partition: counting it
        # there would split that checkpoint's state across workers.
        raise BadRecordError(
            f"key {record.key!r} does not match checkpoint_id {event.checkpoint_id!r}"
        )
    return event


class DeclarationCounting:
    """Counts declarations into hour buckets kept in ``buckets`` (see ``detectors.counts``)."""

    def __init__(
        self,
        *,
        buckets: MutableMapping[str, bytes],
        recent: MutableMapping[str, str],
        policy: FlagPolicy,
        outbreak_areas_at: Callable[[int], Collection[str]],
        horizon_ms: int = DEFAULT_HORIZON_MS,
    ) -> None:
        if horizon_ms <= 0:
            raise ValueError(f"horizon_ms must be > 0, got {horizon_ms}")
        self._buckets = buckets
        self._recent = recent
        self._policy = policy
        self._outbreak_areas_at = outbreak_areas_at
        self._horizon_ms = horizon_ms
        #: decoded buckets kept between batches (a busy checkpoint's hour was decoded and
        #: encoded whole at every batch)
        self._hot: KeptDecoded[HourBucket] = KeptDecoded(HOT_BUCKETS_MAX)
        #: each checkpoint's bookkeeping, kept decoded the same way (decoding it was an
        #: eighth of counting a checkpoint's records in a batch)
        self._hot_recent: KeptDecoded[CheckpointRecent] = KeptDecoded(HOT_BUCKETS_MAX)

    def forget(self) -> None:
        """Drop the decoded buckets and bookkeeping kept between batches (after a
        rebalance)."""
        self._hot.clear()
        self._hot_recent.clear()

    def apply(self, records: Sequence[RawRecord]) -> CountingResult:
        result = CountingResult()
        by_checkpoint: dict[str, list[Counted]] = {}
        for record in records:
            try:
                event = decode(record)
            except BadRecordError as exc:
                log.warning("dead-lettering %s[%d]@%d: %s", record.topic, record.partition,
                            record.offset, exc)
                result.dead.append((record, str(exc)))
                result.outcomes["dead_letter"] += 1
                continue
            at_ms = to_ms(event.scanned_at)
            item = Counted(record, event, at_ms, flags_of(
                event, outbreak_areas=self._outbreak_areas_at(at_ms), policy=self._policy))
            by_checkpoint.setdefault(event.checkpoint_id, []).append(item)
            result.events.append(item)
        for checkpoint_id, items in by_checkpoint.items():
            self._apply_checkpoint(checkpoint_id, items, result)
        return result

    def _apply_checkpoint(
        self,
        checkpoint_id: str,
        items: list[Counted],
        result: CountingResult,
    ) -> None:
        stored = self._recent.get(checkpoint_id)
        recent = self._hot_recent.take_or_decode(checkpoint_id, stored, CheckpointRecent.decode)
        newest_ms = max(recent.newest_ms, *(i.scanned_at_ms for i in items))
        floor_hour = hour_of(newest_ms - self._horizon_ms)
        touched: dict[int, HourBucket] = {}
        for item in items:
            hour = hour_of(item.scanned_at_ms)
            if hour < floor_hour:
                item.outcome = BEYOND_HORIZON
                result.outcomes[BEYOND_HORIZON] += 1
                continue
            bucket = touched.get(hour)
            if bucket is None:
                key = composite_key(checkpoint_id, hour)
                bucket = touched[hour] = self._hot.take_or_decode(
                    key, self._buckets.get(key), partial(HourBucket.decode, hour))
            added = bucket.add(CountedDeclaration(
                key=declaration_key(item.event.declaration_id),
                scanned_at_ms=item.scanned_at_ms,
                flags=item.flags,
                offset=item.record.offset,
            ))
            item.outcome = outcome = added.value
            result.outcomes[outcome] += 1
        for hour, bucket in touched.items():
            # Written even when unchanged: a replay after a crash must rebuild the view.
            key = composite_key(checkpoint_id, hour)
            data = self._buckets[key] = bucket.encode()
            self._hot.keep(key, data, bucket)
            result.buckets[(checkpoint_id, hour)] = bucket
            result.encoded[(checkpoint_id, hour)] = data
        stale = {h for h in recent.hours if h < floor_hour}
        for hour in stale:
            key = composite_key(checkpoint_id, hour)
            self._buckets.pop(key, None)
            self._hot.drop(key)
            result.removed.append((checkpoint_id, hour))
        hours = (recent.hours - stale) | set(touched)
        # Stored when what it decides changes: the hours kept, or the horizon's floor hour.
        # The newest time within one floor hour decides nothing (it was a table write per
        # checkpoint per batch); the view's newest time comes from the batch itself.
        if hours != recent.hours or floor_hour != hour_of(recent.newest_ms - self._horizon_ms):
            recent = CheckpointRecent(newest_ms, hours)
            stored = self._recent[checkpoint_id] = recent.encode()
        if stored is not None:
            self._hot_recent.keep(checkpoint_id, stored, recent)
        result.newest_ms[checkpoint_id] = newest_ms

