"""Runs the detectors for one checkpoint at a time, with state kept in a table.

Per checkpoint the table holds one JSON envelope: the last applied input offset, the
hourly history, and each detector's state. Records at or below the stored offset were
applied before (a replay after a crash or rebalance) and are skipped, which makes every
detector's update exactly-once per record; a checkpoint's records always come from one
partition, in offset order (co-partitioning), so one offset per checkpoint suffices.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field

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
    applied: int = 0
    replayed: int = 0
    late_after_close: int = 0


class Detection:
    def __init__(
        self,
        *,
        states: MutableMapping[str, str],
        policy: FlagPolicy,
        cluster: ClusterDetector,
        aberration: AberrationDetector,
        volume: VolumeDetector,
    ) -> None:
        self._states = states
        self._policy = policy
        self._cluster = cluster
        self._aberration = aberration
        self._volume = volume

    def on_declarations(
        self,
        checkpoint_id: str,
        events: Sequence[tuple[int, DeclarationEvent]],
        *,
        info: CheckpointInfo,
        outbreak: OutbreakAreaHistory,
        now_ms: int,
        result: DetectionResult,
    ) -> None:
        """Apply ``(offset, declaration)`` pairs of one checkpoint, then advance time."""
        state = CheckpointState.decode(self._states.get(checkpoint_id))
        for offset, event in events:
            if offset <= state.offset:
                result.replayed += 1
                continue
            state.offset = offset
            result.applied += 1
            at_ms = int(event.scanned_at.timestamp() * 1000)
            areas = outbreak.areas_at(at_ms)
            flags = flags_of(event, outbreak_areas=areas, policy=self._policy)
            alert = declaration_alert(event, flags, outbreak_areas=areas,
                                      ward_code=info.ward_code)
            if alert is not None:
                result.alerts.append(alert)
            hour = state.history.observe(at_ms, flags)
            if state.aberration.evaluated_hour is not None and (
                    hour <= state.aberration.evaluated_hour):
                result.late_after_close += 1
            state.cluster, cluster_alerts = self._cluster.update(
                state.cluster, event, flags, ward_code=info.ward_code)
            result.alerts += cluster_alerts
        result.alerts += self._advance(checkpoint_id, state, info, now_ms)
        self._states[checkpoint_id] = state.encode()

    def on_time(self, checkpoint_id: str, *, info: CheckpointInfo, now_ms: int,
                result: DetectionResult) -> None:
        """Stream time moved on without declarations here: judge the closed hours."""
        raw = self._states.get(checkpoint_id)
        if raw is None:
            return
        state = CheckpointState.decode(raw)
        before = (state.aberration.evaluated_hour, state.volume.evaluated_hour)
        alerts = self._advance(checkpoint_id, state, info, now_ms)
        result.alerts += alerts
        if alerts or before != (state.aberration.evaluated_hour, state.volume.evaluated_hour):
            self._states[checkpoint_id] = state.encode()

    def _advance(self, checkpoint_id: str, state: CheckpointState, info: CheckpointInfo,
                 now_ms: int) -> list[AlertEvent]:
        alerts = self._aberration.advance(state.aberration, state.history, now_ms=now_ms,
                                          checkpoint_id=checkpoint_id,
                                          ward_code=info.ward_code)
        alerts += self._volume.advance(state.volume, state.history, now_ms=now_ms,
                                       checkpoint_id=checkpoint_id,
                                       opening_hours=info.opening_hours,
                                       ward_code=info.ward_code)
        state.history.prune(now_ms // HOUR_MS - KEEP_HOURS - 2)
        return alerts
