"""Ward-level ``symptom_aberration``: the same EARS/CUSUM as for checkpoints, on the sum
of a ward's checkpoints.

A ward's checkpoints sit on several input partitions, so the worker re-keys what the
ward series needs, ``(ward, scanned_at, flags)``, onto an internal topic keyed by ward
code. Only declarations applied for the first time are re-keyed (a replayed one is
skipped upstream by its offset), and the ward state skips ward records at or below its
last applied offset, so nothing is counted twice.

Stream time of a ward is the newest ``scanned_at`` it has seen; ward records from
different input partitions can interleave out of order by up to a batch, which the
detector's grace period absorbs in live operation.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field

from detectors.aberration import KEEP_HOURS, AberrationDetector, AberrationState
from detectors.counts import HOUR_MS
from detectors.flags import DeclarationFlags
from detectors.history import HourlyHistory
from vhc_common.schemas import AlertEvent

__all__ = ["WardDetection", "WardRecord", "WardState"]


@dataclass(frozen=True, slots=True)
class WardRecord:
    ward_code: str
    scanned_at_ms: int
    flags: int

    def encode(self) -> bytes:
        return json.dumps([self.ward_code, self.scanned_at_ms, self.flags]).encode()

    @classmethod
    def decode(cls, data: bytes) -> WardRecord:
        ward, at_ms, flags = json.loads(data)
        return cls(str(ward), int(at_ms), int(flags))


@dataclass(slots=True)
class WardState:
    offset: int = -1
    newest_ms: int = 0
    history: HourlyHistory = field(default_factory=HourlyHistory)
    aberration: AberrationState = field(default_factory=AberrationState)

    def encode(self) -> str:
        return json.dumps({"o": self.offset, "n": self.newest_ms, "h": self.history.encode(),
                           "a": self.aberration.encode()})

    @classmethod
    def decode(cls, data: str | None) -> WardState:
        if not data:
            return cls()
        raw = json.loads(data)
        return cls(offset=int(raw["o"]), newest_ms=int(raw["n"]),
                   history=HourlyHistory.decode(raw["h"]),
                   aberration=AberrationState.decode(raw["a"]))


class WardDetection:
    def __init__(self, *, states: MutableMapping[str, str], aberration: AberrationDetector,
                 grace_s: int, ward_names: dict[str, str] | None = None) -> None:
        self._states = states
        self._aberration = aberration
        self._grace_ms = grace_s * 1000
        self._names = ward_names if ward_names is not None else {}

    def on_records(self, records: Sequence[tuple[int, WardRecord]]) -> list[AlertEvent]:
        """Apply ``(offset, record)`` pairs (offset order); judge closed hours per ward."""
        alerts: list[AlertEvent] = []
        cache: dict[str, WardState] = {}
        for offset, record in records:
            state = cache.get(record.ward_code)
            if state is None:
                state = cache[record.ward_code] = WardState.decode(
                    self._states.get(record.ward_code))
            if offset <= state.offset:
                continue
            state.offset = offset
            if record.scanned_at_ms > state.newest_ms:
                crossed = ((record.scanned_at_ms - self._grace_ms) // HOUR_MS
                           > (state.newest_ms - self._grace_ms) // HOUR_MS)
                if crossed and state.newest_ms:
                    alerts += self._advance(record.ward_code, state, record.scanned_at_ms)
                state.newest_ms = record.scanned_at_ms
            state.history.observe(record.scanned_at_ms, DeclarationFlags(record.flags))
        for ward, state in cache.items():
            self._states[ward] = state.encode()
        return alerts

    def _advance(self, ward: str, state: WardState, now_ms: int) -> list[AlertEvent]:
        name = self._names.get(ward)
        alerts = self._aberration.advance(
            state.aberration, state.history, now_ms=now_ms, checkpoint_id=None,
            ward_code=ward, place=f"{name} ({ward})" if name else f"phường/xã {ward}")
        state.history.prune(now_ms // HOUR_MS - KEEP_HOURS - 2)
        return alerts
