"""Run a scenario through the worker's own pipeline in process (no broker, no API).

The same ``streams.pipeline.Pipeline`` and ``streams.wards.WardProcessor`` the worker runs,
over dict tables: declarations are pseudonymised as the API does, keyed and partitioned as
Kafka would, and fed partition by partition in batches; hour summaries go to the ward
processor as the by-ward topic would carry them. What it cannot show is the API, Redis and
exposure (``simulator.live`` runs the real system for those); it is fast enough to compare
methods and budgets over many seeds.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from detectors.base import Detector
from detectors.cluster import ClusterDetector
from detectors.flags import FlagPolicy
from detectors.outbreak import OutbreakAreaChange, OutbreakAreaHistory
from detectors.schedule import HoursChange, HoursTimeline, parse_opening_hours
from detectors.volume import VolumeDetector
from simulator.scenario import Scenario
from streams.counting import RawRecord
from streams.pipeline import (
    UNREGISTERED,
    CheckpointInfo,
    Pipeline,
    PipelineTables,
    TimeRules,
)
from streams.wards import HourSummary, WardProcessor, Watermark, decode_ward_record
from vhc_common.partitioning import partition_for
from vhc_common.pseudonym import Pseudonymiser
from vhc_common.schemas import DeclarationEvent, PersonIn
from vhc_common.timebase import to_ms
from vhc_common.topics import DECLARATIONS

__all__ = ["OfflineResult", "run_offline"]

SECRET = b"offline-evaluation-secret-0123456789"


@dataclass
class OfflineResult:
    alerts: list[dict[str, Any]]
    records: int
    seconds: float


def _events(scenario: Scenario, partitions: int) -> dict[int, list[RawRecord]]:
    pseudo = Pseudonymiser(SECRET)
    now = datetime.now(UTC)
    keys: dict[str, Any] = {}
    out: dict[int, list[RawRecord]] = defaultdict(list)
    for i, d in enumerate(scenario.stream()):
        person = keys.get(d.person)
        if person is None:
            person = keys[d.person] = pseudo.person(PersonIn(id_number=d.person))
        received = max(now, (d.sent_at or d.scanned_at)) + timedelta(milliseconds=i)
        event = DeclarationEvent(
            declaration_id=d.declaration_id, checkpoint_id=d.checkpoint_id,
            scanned_at=d.scanned_at, received_at=received, person=person,
            temperature_c=d.temperature_c, symptoms=d.symptoms, contact=d.contact,
            travel_from=d.travel_from)
        p = partition_for(d.checkpoint_id.encode(), partitions)
        out[p].append(RawRecord(DECLARATIONS, p, len(out[p]), d.checkpoint_id.encode(),
                                event.model_dump_json().encode()))
    return out


def run_offline(scenario: Scenario, *, cluster: ClusterDetector, volume: VolumeDetector,
                aberration: Detector[Any], ward_aberration: Detector[Any],
                partitions: int = 4, batch: int = 1000,
                progress: Callable[[int], object] | None = None) -> OfflineResult:
    started = time.perf_counter()
    registry = {}
    for cp in scenario.plan.checkpoints:
        registry[cp.checkpoint_id] = CheckpointInfo(
            ward_code=cp.ward_code, kind=cp.kind,
            hours=HoursTimeline([HoursChange(0, parse_opening_hours(cp.registered))]))
    outbreak = OutbreakAreaHistory([OutbreakAreaChange(to_ms(scenario.start),
                                                       frozenset({scenario.outbreak_area}))])
    partition_wards: dict[int, set[str]] = defaultdict(set)
    ward_partitions: dict[str, set[int]] = defaultdict(set)
    for cp in scenario.plan.checkpoints:
        part = partition_for(cp.checkpoint_id.encode(), partitions)
        partition_wards[part].add(cp.ward_code)
        ward_partitions[cp.ward_code].add(part)
    pipeline = Pipeline(
        tables=PipelineTables(buckets={}, recent={}, checkpoints={}, clocks={}),
        partitions=partitions, policy=FlagPolicy(), cluster=cluster, volume=volume,
        aberration=aberration, rules=TimeRules(),
        info=lambda cid: registry.get(cid) or UNREGISTERED,
        wards_on_partition=lambda p: partition_wards[p],
        outbreak=lambda: outbreak, wall_ms=lambda: int(time.time() * 1000))
    wards = WardProcessor(states={}, partitions=partitions, aberration=ward_aberration,
                          grace_s=300, ward_partitions=lambda w: ward_partitions[w],
                          ward_names=scenario.plan.wards.get)
    by_partition = _events(scenario, partitions)
    ward_offsets: dict[int, int] = defaultdict(int)
    alerts: dict[str, dict[str, Any]] = {}
    done = 0
    cursors = dict.fromkeys(by_partition, 0)
    while any(cursors[p] < len(recs) for p, recs in by_partition.items()):
        for p, recs in sorted(by_partition.items()):
            chunk = recs[cursors[p]:cursors[p] + batch]
            if not chunk:
                continue
            cursors[p] += len(chunk)
            out = pipeline.process(chunk)
            for a in out.alerts:
                alerts.setdefault(a.alert_id, a.model_dump(mode="json"))
            summaries: dict[int, list[tuple[int, int, HourSummary | Watermark]]] = \
                defaultdict(list)
            for key, value in out.summary_sends:
                wp = partition_for(key, partitions)
                summaries[wp].append((wp, ward_offsets[wp], decode_ward_record(value)))
                ward_offsets[wp] += 1
            for wp in sorted(summaries):
                for a in wards.on_records(summaries[wp]).alerts:
                    alerts.setdefault(a.alert_id, a.model_dump(mode="json"))
            done += len(chunk)
            if progress is not None:
                progress(len(chunk))
    return OfflineResult(sorted(alerts.values(), key=lambda a: a["detected_at"]), done,
                         time.perf_counter() - started)
