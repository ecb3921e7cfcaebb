"""A scenario: a province's ordinary traffic plus injected events, with the ground truth.

Injected events (all deterministic for the seed, placed after the baselines are armed):

* ``checkpoint_outbreak``: symptomatic people at one checkpoint, growing hour by hour
  (2, 3, 5, 8, 12, 16 extra in six consecutive hours);
* ``ward_rise``: for 36 hours the symptomatic share in a whole ward is multiplied (4x by
  default), spread thinly over all its checkpoints;
* ``silence``: a busy checkpoint stops declaring for the rest of the day;
* ``surge``: three times the usual traffic at a checkpoint for three hours;
* ``travellers``: six declarants coming from an outbreak area;
* ``case``: a person who checked in at five places over ten days is confirmed; the
  exposure of each visit (distinct other people within 60 minutes) is known exactly;
* ``backlog``: a checkpoint's front end is offline for five hours and sends its queue
  when it comes back; inside the outage its traffic surged (``backlog_surge``), which
  must be found late, on the backlog's own time.

``Scenario.stream()`` yields declarations in the order front ends send them
(``sent_at``: scan time, or the reconnection for a queue). ``truth()`` is what
``simulator.score`` judges alerts against, written to a JSON file by ``generate``.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from simulator.traffic import (
    LOCAL,
    SYMPTOMS,
    CheckpointPlan,
    Declaration,
    ProvincePlan,
    TrafficConfig,
    _declaration,
    hour_rates,
    ordinary_traffic,
    plan_province,
)

__all__ = ["ARMED_FROM_DAY", "Scenario", "ScenarioConfig", "TruthEvent", "build_scenario"]

#: The first day on which every baseline detector can fire (7 days of history).
ARMED_FROM_DAY = 7
OUTBREAK_RAMP = (2, 3, 5, 8, 12, 16)


@dataclass(frozen=True)
class ScenarioConfig:
    traffic: TrafficConfig = field(default_factory=TrafficConfig)
    ward_rise_multiplier: float = 4.0
    ward_rise_hours: int = 36
    surge_multiplier: float = 3.0
    inject: bool = True


@dataclass
class TruthEvent:
    event_id: str
    kind: str
    start: str
    end: str
    checkpoint_id: str | None = None
    ward_code: str | None = None
    #: alert kinds this event explains (at its checkpoint, or in its ward)
    explains: list[str] = field(default_factory=list)
    #: alert kinds that count as finding it
    found_by: list[str] = field(default_factory=list)
    #: for a silence: when the checkpoint would next have been active
    expected_activity: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Scenario:
    config: ScenarioConfig
    plan: ProvincePlan
    declarations: list[Declaration]
    events: list[TruthEvent]
    outbreak_area: str
    case: dict[str, Any] | None

    def stream(self) -> Iterator[Declaration]:
        """Declarations in the order front ends send them."""
        yield from sorted(self.declarations, key=lambda d: (d.sent_at or d.scanned_at,
                                                             d.scanned_at))

    @property
    def start(self) -> datetime:
        return self.plan.start_utc

    @property
    def end(self) -> datetime:
        return self.plan.day_start(self.plan.config.days)

    def truth(self) -> dict[str, Any]:
        config = self.plan.config
        return {
            "seed": config.seed, "days": config.days, "start": self.start.isoformat(),
            "end": self.end.isoformat(), "armed_from": self.plan.day_start(
                ARMED_FROM_DAY).isoformat(),
            "province": {"code": self.plan.province_code, "name": self.plan.province_name},
            "checkpoints": [{"checkpoint_id": c.checkpoint_id, "kind": c.kind,
                             "ward_code": c.ward_code, "registered_hours": c.registered,
                             "volume_per_day": round(c.volume, 1)} for c in self.plan.checkpoints],
            "wards": self.plan.wards,
            "outbreak_area": self.outbreak_area,
            "declarations": len(self.declarations),
            "events": [asdict(e) for e in self.events],
            "case": self.case,
        }

    def write_truth(self, path: Path) -> None:
        path.write_text(json.dumps(self.truth(), ensure_ascii=False, indent=2))


def build_scenario(config: ScenarioConfig) -> Scenario:
    plan = plan_province(config.traffic)
    decls = ordinary_traffic(plan)
    rng = random.Random(f"events-{config.traffic.seed}")
    area = f"OB-{config.traffic.seed:03d}"
    if not config.inject:
        return Scenario(config, plan, decls, [], area, None)
    injector = _Injector(plan, decls, rng, config)
    events = injector.run(area)
    case = injector.case(area)
    return Scenario(config, plan, injector.decls, events, area, case)


class _Injector:
    def __init__(self, plan: ProvincePlan, decls: list[Declaration], rng: random.Random,
                 config: ScenarioConfig) -> None:
        self.plan = plan
        self.decls = decls
        self.rng = rng
        self.config = config
        self.used: set[str] = set()
        self.person_seq = 0

    # ---------------------------------------------------------------- helpers

    def _new_person(self) -> str:
        self.person_seq += 1
        return f"9{self.plan.config.seed % 100:02d}{self.person_seq:09d}"

    def _busy_slot(self, min_rate: float, hours: int, days: range, kinds: set[str] | None = None,
                   exclude_wards: set[str] | None = None) -> tuple[CheckpointPlan, datetime]:
        """A checkpoint and a local hour start with at least ``min_rate`` expected
        declarations in each of the next ``hours`` hours."""
        candidates = []
        for cp in self.plan.checkpoints:
            if cp.checkpoint_id in self.used or (kinds and cp.kind not in kinds):
                continue
            if exclude_wards and cp.ward_code in exclude_wards:
                continue
            for day in days:
                day_local = self.plan.day_start(day) + LOCAL
                rates = {h: r for h, r, _, _ in hour_rates(cp, day_local, 1.0)}
                for h in range(24 - hours):
                    if all(rates.get(h + i, 0) >= min_rate for i in range(hours)):
                        candidates.append((cp, self.plan.day_start(day) + timedelta(hours=h)))
        if not candidates:
            raise RuntimeError(f"no checkpoint with {min_rate}/h for {hours} h: scale up traffic")
        cp, at = self.rng.choice(candidates)
        self.used.add(cp.checkpoint_id)
        return cp, at

    def _event_days(self) -> range:
        days = self.plan.config.days
        return range(min(ARMED_FROM_DAY + 2, days - 2), max(ARMED_FROM_DAY + 3, days - 1))

    def _add(self, cp_id: str, at: datetime, person: str, symptoms: tuple[str, ...],
             tag: str, **extra: Any) -> Declaration:
        d = _declaration(self.rng, cp_id, at, person, symptoms, tag=tag)
        for k, v in extra.items():
            setattr(d, k, v)
        self.decls.append(d)
        return d

    # ---------------------------------------------------------------- events

    def run(self, area: str) -> list[TruthEvent]:
        events = [self.outbreak()]
        events.append(self.ward_rise(exclude={events[0].ward_code or ""}))
        events += [self.silence(), self.surge(), self.travellers(area)]
        events += self.backlog()
        self.decls.sort(key=lambda d: d.scanned_at)
        return events

    def outbreak(self) -> TruthEvent:
        cp, start = self._busy_slot(8.0, len(OUTBREAK_RAMP), self._event_days(),
                                    kinds={"market", "supermarket", "office", "school",
                                           "factory", "shop"})
        for i, extra in enumerate(OUTBREAK_RAMP):
            for _ in range(extra):
                at = start + timedelta(hours=i, minutes=self.rng.uniform(0, 59.9))
                symptoms = tuple(sorted(self.rng.sample(SYMPTOMS, self.rng.choice((1, 2)))))
                self._add(cp.checkpoint_id, at, self._new_person(), symptoms, "outbreak")
        end = start + timedelta(hours=len(OUTBREAK_RAMP))
        return TruthEvent("outbreak-1", "checkpoint_outbreak", start.isoformat(), end.isoformat(),
                          checkpoint_id=cp.checkpoint_id, ward_code=cp.ward_code,
                          explains=["symptom_cluster", "symptom_aberration"],
                          found_by=["symptom_cluster", "symptom_aberration"],
                          details={"extra_per_hour": list(OUTBREAK_RAMP), "kind": cp.kind})

    def ward_rise(self, exclude: set[str]) -> TruthEvent:
        wards = [w for w in sorted(self.plan.wards) if w not in exclude]
        ward = self.rng.choice(wards)
        day = self.rng.choice(list(self._event_days()))
        start = self.plan.day_start(day) + timedelta(hours=self.rng.choice((7, 8, 9)))  # local
        end = start + timedelta(hours=self.config.ward_rise_hours)
        members = {c.checkpoint_id for c in self.plan.checkpoints if c.ward_code == ward}
        share = self.plan.config.symptomatic_share
        extra_p = (self.config.ward_rise_multiplier - 1) * share
        converted = 0
        for d in self.decls:
            if (d.checkpoint_id in members and start <= d.scanned_at < end and not d.symptoms
                    and self.rng.random() < extra_p):
                d.person = self._new_person()
                d.symptoms = tuple(sorted(self.rng.sample(SYMPTOMS, 1)))
                d.tag = "ward_rise"
                converted += 1
        return TruthEvent("ward-rise-1", "ward_rise", start.isoformat(), end.isoformat(),
                          ward_code=ward,
                          explains=["symptom_aberration", "symptom_cluster"],
                          found_by=["symptom_aberration"],
                          details={"multiplier": self.config.ward_rise_multiplier,
                                   "extra_symptomatic": converted,
                                   "checkpoints": sorted(members)})

    def silence(self) -> TruthEvent:
        cp, start = self._busy_slot(10.0, 3, self._event_days())
        start += timedelta(minutes=self.rng.uniform(0, 40))
        day_end = (start + LOCAL).replace(hour=23, minute=59) - LOCAL
        end = day_end + timedelta(hours=5)  # until the small hours of the next day
        self.decls[:] = [d for d in self.decls if not (
            d.checkpoint_id == cp.checkpoint_id and start <= d.scanned_at < end)]
        return TruthEvent("silence-1", "silence", start.isoformat(), end.isoformat(),
                          checkpoint_id=cp.checkpoint_id, ward_code=cp.ward_code,
                          explains=["checkpoint_silent"], found_by=["checkpoint_silent"],
                          expected_activity=start.isoformat(), details={"kind": cp.kind})

    def surge(self, cp: CheckpointPlan | None = None, start: datetime | None = None,
              hours: int = 3, tag: str = "surge", sent_at: datetime | None = None) -> TruthEvent:
        if cp is None or start is None:
            cp, start = self._busy_slot(6.0, hours, self._event_days())
        day_local = (start + LOCAL).replace(hour=0, minute=0, second=0, microsecond=0)
        rates = {h: r for h, r, _, _ in hour_rates(cp, day_local, 1.0)}
        extra_factor = self.config.surge_multiplier - 1
        added = 0
        for i in range(hours):
            at_hour = start + timedelta(hours=i)
            local_h = (at_hour + LOCAL).hour
            n = round(rates.get(local_h, 0) * extra_factor)
            for _ in range(n):
                at = at_hour + timedelta(minutes=self.rng.uniform(0, 59.9))
                self._add(cp.checkpoint_id, at, self._new_person(), (), tag, sent_at=sent_at)
                added += 1
        end = start + timedelta(hours=hours)
        return TruthEvent(f"{tag}-1", tag, start.isoformat(), end.isoformat(),
                          checkpoint_id=cp.checkpoint_id, ward_code=cp.ward_code,
                          explains=["volume_surge"], found_by=["volume_surge"],
                          details={"multiplier": self.config.surge_multiplier, "added": added})

    def travellers(self, area: str) -> TruthEvent:
        days = list(range(ARMED_FROM_DAY, self.plan.config.days))
        ids = []
        first = last = None
        for _ in range(6):
            cp = self.rng.choice(self.plan.checkpoints)
            day = self.rng.choice(days)
            day_local = self.plan.day_start(day) + LOCAL
            open_hours = [h for h, r, _, _ in hour_rates(cp, day_local, 1.0) if r > 0]
            if not open_hours:
                continue
            at = (self.plan.day_start(day)
                  + timedelta(hours=self.rng.choice(open_hours), minutes=self.rng.uniform(0, 59)))
            d = self._add(cp.checkpoint_id, at, self._new_person(), (), "traveller",
                          travel_from=(area,), contact="none")
            ids.append(d.declaration_id)
            first = at if first is None or at < first else first
            last = at if last is None or at > last else last
        assert first is not None and last is not None
        return TruthEvent("travellers-1", "travellers", first.isoformat(), last.isoformat(),
                          explains=["travel_from_outbreak_area"],
                          found_by=["travel_from_outbreak_area"],
                          details={"declaration_ids": ids, "area": area})

    def backlog(self) -> list[TruthEvent]:
        cp, start = self._busy_slot(6.0, 5, self._event_days())
        hours = 5
        end = start + timedelta(hours=hours)
        upload = end + timedelta(minutes=5)
        for d in self.decls:
            if d.checkpoint_id == cp.checkpoint_id and start <= d.scanned_at < end:
                d.sent_at = upload
        inner = self.surge(cp, start + timedelta(hours=1), hours=2, tag="backlog_surge",
                           sent_at=upload)
        inner.details["uploaded_at"] = upload.isoformat()
        outage = TruthEvent("backlog-1", "backlog", start.isoformat(), upload.isoformat(),
                            checkpoint_id=cp.checkpoint_id, ward_code=cp.ward_code,
                            explains=["checkpoint_silent"], found_by=[],
                            details={"hours": hours, "uploaded_at": upload.isoformat()})
        return [outage, inner]

    def case(self, area: str) -> dict[str, Any]:
        """A confirmed case: five visits in the last ten days, exposures counted exactly
        (distinct other people at the checkpoint within 60 minutes either side)."""
        del area
        person = self._new_person()
        days = self.plan.config.days
        visits = []
        for day in sorted(self.rng.sample(range(max(1, days - 10), days), 5)):
            for _ in range(20):
                cp = self.rng.choice(self.plan.checkpoints)
                day_local = self.plan.day_start(day) + LOCAL
                open_hours = [h for h, r, _, _ in hour_rates(cp, day_local, 1.0) if r >= 3]
                if open_hours:
                    break
            else:
                continue
            at = (self.plan.day_start(day)
                  + timedelta(hours=self.rng.choice(open_hours), minutes=self.rng.uniform(5, 55)))
            d = self._add(cp.checkpoint_id, at, person, (), "case")
            visits.append((cp.checkpoint_id, at, d.declaration_id))
        self.decls.sort(key=lambda d: d.scanned_at)
        window = timedelta(minutes=60)
        by_cp: dict[str, list[Declaration]] = {}
        for d in self.decls:
            by_cp.setdefault(d.checkpoint_id, []).append(d)
        expected = []
        for cp_id, at, did in visits:
            others = {d.person for d in by_cp[cp_id]
                      if abs(d.scanned_at - at) <= window and d.person != person}
            expected.append({"checkpoint_id": cp_id, "scanned_at": at.isoformat(),
                             "declaration_id": did, "exposed_count": len(others)})
        confirmed = self.plan.day_start(days) - timedelta(hours=2)
        return {"person_id": person, "confirmed_at": confirmed.isoformat(), "visits": expected}


def new_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
