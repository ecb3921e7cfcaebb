"""Runs the detectors for one checkpoint at a time, with state kept in a table.

Per checkpoint the table holds one JSON envelope: the last applied input offset, the
hourly history, and each detector's state. Records at or below the stored offset were
applied before (a replay after a crash or rebalance) and are skipped, which makes every
detector's update exactly-once per record; a checkpoint's records always come from one
partition, in offset order (co-partitioning), so one offset per checkpoint suffices.
"""

from __future__ import annotations

import json
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from detectors.aberration import KEEP_HOURS, AberrationDetector, AberrationState
from detectors.cluster import ClusterDetector, ClusterState
from detectors.counts import HOUR_MS
from detectors.declaration_alerts import declaration_alert
from detectors.flags import FlagPolicy, flags_of
from detectors.history import HourlyHistory
from detectors.outbreak import OutbreakAreaHistory
from detectors.volume import VolumeDetector, VolumeState
from vhc_common.schemas import AlertEvent, DeclarationEvent

__all__ = ["CheckpointInfo", "CheckpointState", "Detection", "DetectionResult"]

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """What the registry says about a checkpoint (defaults when it is not known yet)."""

    ward_code: str | None = None
    opening_hours: tuple[str, ...] | None = None
    kind: str | None = None


@dataclass(slots=True)
class CheckpointState:
    offset: int = -1
    history: HourlyHistory = field(default_factory=HourlyHistory)
    cluster: ClusterState = field(default_factory=ClusterState)
    aberration: AberrationState = field(default_factory=AberrationState)
    volume: VolumeState = field(default_factory=VolumeState)

    def encode(self) -> str:
        return json.dumps({"v": 1, "o": self.offset, "h": self.history.encode(),
                           "c": self.cluster.encode(), "a": self.aberration.encode(),
                           "u": self.volume.encode()})

    @classmethod
    def decode(cls, data: str | None) -> CheckpointState:
        if not data:
            return cls()
        raw = json.loads(data)
        return cls(offset=int(raw["o"]), history=HourlyHistory.decode(raw["h"]),
                   cluster=ClusterState.decode(raw["c"]),
                   aberration=AberrationState.decode(raw["a"]),
                   volume=VolumeState.decode(raw["u"]))


@dataclass
class DetectionResult:
    alerts: list[AlertEvent] = field(default_factory=list)
    #: ``(ward, scanned_at_ms, flags)`` of declarations applied for the first time
    ward_records: list[tuple[str, int, int]] = field(default_factory=list)
    #: ``(checkpoint, local date) -> declarations that day`` for the days a batch touched
    daily_totals: dict[tuple[str, str], int] = field(default_factory=dict)
    applied: int = 0
    replayed: int = 0
    late_after_close: int = 0


class Detection:
    """Applies a partition's declarations in offset order, judging closed hours whenever
    stream time crosses an hour boundary (see ``streams.clock``), exactly as if each
    declaration had come alone: a big replay batch and small live batches agree."""

    def __init__(
        self,
        *,
        states: MutableMapping[str, str],
        policy: FlagPolicy,
        cluster: ClusterDetector,
        aberration: AberrationDetector,
        volume: VolumeDetector,
        grace_s: int,
        utc_offset_min: int = 7 * 60,
    ) -> None:
        self._utc_offset_ms = utc_offset_min * 60_000
        self._states = states
        self._policy = policy
        self._cluster = cluster
        self._aberration = aberration
        self._volume = volume
        self._grace_ms = grace_s * 1000

    def crosses_hour(self, before_ms: int, after_ms: int) -> bool:
        return (after_ms - self._grace_ms) // HOUR_MS > (before_ms - self._grace_ms) // HOUR_MS

    def on_partition(
        self,
        events: Sequence[tuple[int, DeclarationEvent]],
        *,
        members: set[str],
        info: Callable[[str], CheckpointInfo],
        outbreak: OutbreakAreaHistory,
        stream_time_ms: int,
        result: DetectionResult,
    ) -> int:
        """Apply ``(offset, declaration)`` pairs of one partition in offset order; returns
        the stream time after them."""
        cache: dict[str, CheckpointState] = {}
        days: set[tuple[str, int]] = set()
        now_ms = stream_time_ms
        for offset, event in events:
            at_ms = int(event.scanned_at.timestamp() * 1000)
            if at_ms > now_ms:
                if self.crosses_hour(now_ms, at_ms):
                    self._sweep(members | set(cache), at_ms, info, cache, result)
                now_ms = at_ms
            cid = event.checkpoint_id
            state = cache.get(cid)
            if state is None:
                state = cache[cid] = CheckpointState.decode(self._states.get(cid))
            self._apply(state, offset, event, at_ms, info(cid), outbreak, result)
            days.add((cid, (at_ms + self._utc_offset_ms) // DAY_MS))
        for cid, day in days:
            first_hour = (day * DAY_MS - self._utc_offset_ms) // HOUR_MS
            date = datetime.fromtimestamp(day * DAY_MS / 1000, UTC).date().isoformat()
            result.daily_totals[(cid, date)] = cache[cid].history.local_day_total(first_hour)
        for cid, state in cache.items():
            self._states[cid] = state.encode()
        return now_ms

    def on_time(self, *, members: set[str], info: Callable[[str], CheckpointInfo],
                before_ms: int, after_ms: int, result: DetectionResult) -> None:
        """Stream time moved on without declarations (a tick): judge the closed hours."""
        if not self.crosses_hour(before_ms, after_ms):
            return
        cache: dict[str, CheckpointState] = {}
        self._sweep(members, after_ms, info, cache, result)
        for cid, state in cache.items():
            self._states[cid] = state.encode()

    def _apply(self, state: CheckpointState, offset: int, event: DeclarationEvent,
               at_ms: int, info: CheckpointInfo, outbreak: OutbreakAreaHistory,
               result: DetectionResult) -> None:
        if offset <= state.offset:
            result.replayed += 1
            return
        state.offset = offset
        result.applied += 1
        areas = outbreak.areas_at(at_ms)
        flags = flags_of(event, outbreak_areas=areas, policy=self._policy)
        alert = declaration_alert(event, flags, outbreak_areas=areas, ward_code=info.ward_code)
        if alert is not None:
            result.alerts.append(alert)
        hour = state.history.observe(at_ms, flags)
        if info.ward_code is not None:
            result.ward_records.append((info.ward_code, at_ms, int(flags)))
        if state.aberration.evaluated_hour is not None and (
                hour <= state.aberration.evaluated_hour):
            result.late_after_close += 1
        state.cluster, cluster_alerts = self._cluster.update(
            state.cluster, event, flags, ward_code=info.ward_code)
        result.alerts += cluster_alerts

    def _sweep(self, checkpoint_ids: set[str], now_ms: int,
               info: Callable[[str], CheckpointInfo], cache: dict[str, CheckpointState],
               result: DetectionResult) -> None:
        for cid in sorted(checkpoint_ids):  # sorted: the same order in every run
            state = cache.get(cid)
            if state is None:
                raw = self._states.get(cid)
                if raw is None:
                    continue
                state = cache[cid] = CheckpointState.decode(raw)
            details = info(cid)
            result.alerts += self._aberration.advance(
                state.aberration, state.history, now_ms=now_ms, checkpoint_id=cid,
                ward_code=details.ward_code)
            result.alerts += self._volume.advance(
                state.volume, state.history, now_ms=now_ms, checkpoint_id=cid,
                opening_hours=details.opening_hours, ward_code=details.ward_code)
            state.history.prune(now_ms // HOUR_MS - KEEP_HOURS - 2)
