"""Several ``symptom_aberration`` methods (and thresholds) on the same traffic, in one pass.

``MultiMethod`` follows the detector contract (``detectors.base.Detector``) and holds one
``AberrationDetector`` per variant, each with its own state; its alerts carry the variant in
``evidence.method`` and in their id, so one offline run scores every variant against the
same truth. Evaluation only: the worker runs one configured detector.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Self

from detectors.aberration import AberrationDetector, AberrationParams, AberrationState
from detectors.alerts import alert_id
from detectors.base import Case, Subject
from vhc_common.schemas import AlertEvent, AlertKind

__all__ = ["MultiMethod", "MultiState", "Variant"]


@dataclass(frozen=True)
class Variant:
    """A method and its threshold knob: the budget for ``llr_cusum`` and ``negbin`` (their
    thresholds derive from it), the statistic's threshold for EARS and ``cusum``."""

    method: str
    knob: float

    @property
    def name(self) -> str:
        return f"{self.method}@{self.knob:g}"

    def params(self, base: AberrationParams) -> AberrationParams:
        p = replace(base, methods=(self.method,))
        if self.method in {"llr_cusum", "negbin"}:
            return replace(p, budget_per_100_days=self.knob)
        if self.method == "cusum":
            return replace(p, cusum_h=self.knob)
        if self.method == "ears_c1":
            return replace(p, c1_threshold=self.knob)
        if self.method == "ears_c2":
            return replace(p, c2_threshold=self.knob)
        return replace(p, c3_threshold=self.knob)


@dataclass(slots=True)
class MultiState:
    states: dict[str, AberrationState] = field(default_factory=dict)

    def to_json(self) -> Any:
        return {k: s.to_json() for k, s in self.states.items()}

    @classmethod
    def from_json(cls, raw: Any) -> Self:
        return cls({k: AberrationState.from_json(v) for k, v in (raw or {}).items()})


class MultiMethod:
    def __init__(self, variants: list[Variant], base: AberrationParams | None = None) -> None:
        base = base or AberrationParams()
        self.detectors = {v.name: AberrationDetector(v.params(base)) for v in variants}

    @staticmethod
    def initial_state() -> MultiState:
        return MultiState()

    def on_declaration(self, state: MultiState, subject: Subject, case: Case) -> list[AlertEvent]:
        return []

    def on_clock(self, state: MultiState, subject: Subject, *, now_ms: int) -> list[AlertEvent]:
        return []

    def clock_due(self, state: MultiState, subject: Subject) -> int | None:
        return None

    def on_hour_closed(self, state: MultiState, subject: Subject, hour: int, *, now_ms: int,
                       late: bool) -> list[AlertEvent]:
        out = []
        for name, detector in self.detectors.items():
            sub = state.states.setdefault(name, AberrationState())
            for alert in detector.on_hour_closed(sub, subject, hour, now_ms=now_ms, late=late):
                evidence = alert.evidence.model_copy(update={"method": name})
                out.append(alert.model_copy(update={
                    "alert_id": alert_id(AlertKind.SYMPTOM_ABERRATION, name, alert.alert_id),
                    "evidence": evidence}))
        return out
