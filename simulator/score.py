"""Scoring alerts against a scenario's ground truth.

* **False alarms**: baseline and cluster alerts (``symptom_cluster``,
  ``symptom_aberration``, ``volume_surge``, ``checkpoint_silent``) that no injected event
  explains, detected from ``armed_from`` (day 7, when every baseline detector can fire) to
  the end, per 100 checkpoint-days of that period. An event explains an alert of one of
  its ``explains`` kinds at its checkpoint (or, for a ward event, at the ward or any of its
  checkpoints; a checkpoint event also explains its ward's aberration) detected between its
  start and 24 hours after its end. Clusters in the first days (the cluster detector is
  armed from the start, with a prior) are reported apart.
* **Sensitivity**: an event is found when an alert of one of its ``found_by`` kinds is
  explained by it; travellers are found when each traveller's declaration raised an alert
  flagged ``travel_from_outbreak_area``.
* **Delay**: the first finding alert's ``detected_at`` minus the event's start (for a
  silence, minus the time the checkpoint was next expected to be active).
* **Exposure**: every visit of the confirmed case has an exposure alert whose
  ``exposed_count`` equals the truth.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

__all__ = ["BASELINE_KINDS", "Score", "score_alerts"]

BASELINE_KINDS = ("symptom_cluster", "symptom_aberration", "volume_surge", "checkpoint_silent")
EXPLAIN_SLACK = timedelta(hours=24)


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass
class EventResult:
    event_id: str
    kind: str
    found: bool
    delay_h: float | None
    alert_ids: list[str] = field(default_factory=list)


@dataclass
class Score:
    seed: int
    checkpoint_days: float
    false_alarms: int
    false_alarms_by_kind: Counter[str]
    cold_start_clusters: int
    events: list[EventResult]
    exposure_exact: bool | None
    exposure_detail: list[dict[str, Any]]
    unexplained: list[dict[str, Any]]
    alerts_by_kind: Counter[str]

    @property
    def fa_per_100(self) -> float:
        return 100.0 * self.false_alarms / self.checkpoint_days if self.checkpoint_days else 0.0

    def fa_per_100_of(self, kind: str) -> float:
        return (100.0 * self.false_alarms_by_kind[kind] / self.checkpoint_days
                if self.checkpoint_days else 0.0)

    @property
    def sensitivity(self) -> float:
        scored = [e for e in self.events if e.kind != "backlog"]
        return sum(e.found for e in scored) / len(scored) if scored else 1.0

    def delay(self, kind: str) -> float | None:
        delays = [e.delay_h for e in self.events if e.kind == kind and e.delay_h is not None]
        return statistics.median(delays) if delays else None


def _explains(event: dict[str, Any], alert: dict[str, Any], wards: dict[str, str]) -> bool:
    if alert["kind"] not in event["explains"] and not (
            event["kind"] == "checkpoint_outbreak" and alert["kind"] == "symptom_aberration"):
        return False
    at = _t(alert["detected_at"])
    if not _t(event["start"]) <= at <= _t(event["end"]) + EXPLAIN_SLACK:
        return False
    cp, ward = alert.get("checkpoint_id"), alert.get("ward_code")
    if event["kind"] == "ward_rise":
        return bool(ward == event["ward_code"]
                    or (cp is not None and wards.get(cp) == event["ward_code"]))
    if event["kind"] == "checkpoint_outbreak" and cp is None:
        return bool(ward == event["ward_code"] and alert["kind"] == "symptom_aberration")
    return bool(cp == event["checkpoint_id"])


def score_alerts(truth: dict[str, Any], alerts: list[dict[str, Any]]) -> Score:
    wards = {c["checkpoint_id"]: c["ward_code"] for c in truth["checkpoints"]}
    armed = _t(truth["armed_from"])
    end = _t(truth["end"])
    events = truth["events"]
    explained: set[str] = set()
    results = []
    for event in events:
        if event["kind"] == "travellers":
            ids = set(event["details"]["declaration_ids"])
            flagged = {str(d) for a in alerts if "travel_from_outbreak_area" in a["evidence"].get(
                "flags", ()) for d in a["evidence"].get("declaration_ids", ())}
            hits = [a for a in alerts if set(map(str, a["evidence"].get("declaration_ids", ())))
                    & ids and "travel_from_outbreak_area" in a["evidence"].get("flags", ())]
            results.append(EventResult(event["event_id"], event["kind"], ids <= flagged, None,
                                       [a["alert_id"] for a in hits]))
            continue
        mine = sorted((a for a in alerts if _explains(event, a, wards)),
                      key=lambda a: a["detected_at"])
        explained.update(a["alert_id"] for a in mine)
        finding = [a for a in mine if a["kind"] in event["found_by"]]
        delay = None
        if finding:
            origin = _t(event.get("expected_activity") or event["start"])
            delay = (_t(finding[0]["detected_at"]) - origin).total_seconds() / 3600
        results.append(EventResult(event["event_id"], event["kind"], bool(finding), delay,
                                   [a["alert_id"] for a in finding]))
    unexplained = [a for a in alerts if a["kind"] in BASELINE_KINDS
                   and a["alert_id"] not in explained]
    in_armed = [a for a in unexplained if armed <= _t(a["detected_at"]) < end]
    cold = [a for a in unexplained if _t(a["detected_at"]) < armed
            and a["kind"] == "symptom_cluster"]
    days = (end - armed).total_seconds() / 86_400
    exposure_exact, detail = _exposure(truth, alerts)
    return Score(
        seed=truth["seed"],
        checkpoint_days=days * len(truth["checkpoints"]),
        false_alarms=len(in_armed),
        false_alarms_by_kind=Counter(a["kind"] for a in in_armed),
        cold_start_clusters=len(cold),
        events=results,
        exposure_exact=exposure_exact,
        exposure_detail=detail,
        unexplained=[{k: a.get(k) for k in ("alert_id", "kind", "checkpoint_id", "ward_code",
                                             "detected_at")} | {"summary": a["summary"]["en"]}
                     for a in in_armed],
        alerts_by_kind=Counter(a["kind"] for a in alerts),
    )


def _exposure(truth: dict[str, Any], alerts: list[dict[str, Any]]
              ) -> tuple[bool | None, list[dict[str, Any]]]:
    case = truth.get("case")
    exposures = [a for a in alerts if a["kind"] == "exposure"]
    if not case or not exposures:
        return None, []
    by_visit = {}
    for a in exposures:
        ids = [str(d) for d in a["evidence"].get("declaration_ids", ())]
        if ids:
            by_visit[ids[0]] = a["evidence"].get("exposed_count")
    detail = [{"checkpoint_id": v["checkpoint_id"], "expected": v["exposed_count"],
               "got": by_visit.get(v["declaration_id"])} for v in case["visits"]]
    exact = len(exposures) == len(case["visits"]) and all(
        d["expected"] == d["got"] for d in detail)
    return exact, detail
