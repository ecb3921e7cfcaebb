"""Exposure look-up for a confirmed case (``POST /v1/cases``).

Exact by construction: the end offsets of ``declarations.v1`` are read when the case is
reported, and the look-up waits until the worker has applied every declaration up to them
(it records its processed offsets in Redis after writing the visit index), and until the
worker has marked each partition's index complete (``redis_keys.exposure_indexed``: a
Redis loss takes the index and the marks; the worker marks a partition once it has
replayed what its batches did not write). So every declaration answered 202 before the
call is covered.

For each check-in of the case (by any of the person's keys) from ``confirmed_at -
lookback`` on, the exposed people are the distinct *other* person keys checked in at the
same checkpoint within ``window`` either side. One ``exposure`` alert per visit, with a
deterministic id (case, checkpoint, declaration), so reporting the same case twice raises
nothing new.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from detectors.alerts import make_alert
from ingest_api.errors import BrokerUnavailableError, StoreUnavailableError
from ingest_api.publisher import KafkaPublisher, Message
from ingest_api.store import CheckpointStore
from vhc_common import redis_keys
from vhc_common.alert_view import AlertView
from vhc_common.kafka_security import client_options
from vhc_common.redis_keys import as_text
from vhc_common.schemas import (
    AlertEvent,
    AlertKind,
    CaseEvent,
    Evidence,
    PersonRef,
    Severity,
)
from vhc_common.topics import ALERTS, CASES, DECLARATIONS

__all__ = ["ExposureResult", "ExposureService", "WorkerBehindError"]


class WorkerBehindError(StoreUnavailableError):
    """The worker has not applied the declarations the look-up must cover (yet)."""


@dataclass
class ExposureResult:
    case: CaseEvent
    visits: int
    alerts: list[AlertEvent]


class EndOffsets:
    """End offsets of ``declarations.v1`` through one reused kafka-python consumer."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._consumer: KafkaConsumer | None = None
        self._lock = threading.Lock()

    def read(self) -> dict[int, int]:
        with self._lock:
            try:
                if self._consumer is None:
                    self._consumer = KafkaConsumer(bootstrap_servers=self._bootstrap.split(","),
                                                   group_id=None, enable_auto_commit=False,
                                                   client_id="vhc-exposure",
                                                   request_timeout_ms=5000,
                                                   bootstrap_timeout_ms=5000,
                                                   **client_options())
                partitions = self._consumer.partitions_for_topic(DECLARATIONS) or set()
                tps = [TopicPartition(DECLARATIONS, p) for p in partitions]
                ends = self._consumer.end_offsets(tps)
                return {tp.partition: int(offset) for tp, offset in ends.items()}
            except KafkaError as exc:
                if self._consumer is not None:
                    self._consumer.close()
                    self._consumer = None
                raise BrokerUnavailableError(f"cannot read end offsets: {exc!r}") from exc

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None


class ExposureService:
    def __init__(self, *, redis: Redis, publisher: KafkaPublisher, alerts: AlertView,
                 checkpoints: CheckpointStore, bootstrap: str, lookback: timedelta,
                 window: timedelta, catch_up_timeout_s: float = 30.0,
                 on_alert: Callable[[AlertEvent], None] | None = None) -> None:
        self._redis = redis
        self._on_alert = on_alert
        self._checkpoints = checkpoints
        self._publisher = publisher
        self._alerts = alerts
        self._ends = EndOffsets(bootstrap)
        self._lookback = lookback
        self._window = window
        self._timeout_s = catch_up_timeout_s

    def close(self) -> None:
        self._ends.close()

    async def report(self, person: PersonRef, *, confirmed_at: datetime, reported_at: datetime,
                     by: str) -> ExposureResult:
        ends = await asyncio.to_thread(self._ends.read)
        keys = sorted({k for k in (person.id_key, person.phone_key, person.key) if k})
        case = CaseEvent(
            case_id="case-" + hashlib.sha256("|".join(keys).encode()).hexdigest()[:24],
            person=person, confirmed_at=confirmed_at, reported_at=reported_at,
            lookback_s=int(self._lookback.total_seconds()),
            window_s=int(self._window.total_seconds()), reported_by=by)
        await self._publisher.publish(Message(CASES, person.key.encode(),
                                              case.model_dump_json().encode()))
        await self._wait_for_worker(ends)
        try:
            visits = await self._visits(keys, confirmed_at - self._lookback)
            wards: dict[str, str | None] = {}
            for cp, _, _ in visits:
                if cp not in wards:
                    found = await self._checkpoints.get(cp)
                    wards[cp] = found.ward_code if found else None
            alerts = [await self._exposure(case, keys, cp, did, at_ms, wards[cp])
                      for cp, did, at_ms in visits]
        except RedisError as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc
        for alert in alerts:
            # The view first (the answer and GET agree at once), then the topic, so other
            # consumers and a rebuilt view see it too.
            new = await self._alerts.insert(alert)
            await self._publisher.publish(Message(
                ALERTS, (alert.checkpoint_id or "").encode(), alert.model_dump_json().encode()))
            if new and self._on_alert is not None:
                self._on_alert(alert)
        return ExposureResult(case=case, visits=len(visits), alerts=alerts)

    async def _wait_for_worker(self, ends: dict[int, int]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        while True:
            try:
                pipe = self._redis.pipeline(transaction=False)
                pipe.hgetall(redis_keys.processed_offsets())
                pipe.hgetall(redis_keys.exposure_indexed())
                raw, marks = cast(list[dict[Any, Any]], await pipe.execute())
            except RedisError as exc:
                raise StoreUnavailableError(f"redis: {exc}") from exc
            done = {int(k): int(v) for k, v in raw.items()}
            indexed = {int(k) for k in marks}
            behind = sorted(p for p, e in ends.items() if e > 0 and done.get(p, 0) < e)
            unindexed = sorted(p for p, e in ends.items() if e > 0 and p not in indexed)
            if not behind and not unindexed:
                return
            if loop.time() > deadline:
                raise WorkerBehindError(
                    f"the stream worker has not caught up with partitions {behind}"
                    if behind else "the stream worker is still replaying the exposure "
                    f"index of partitions {unindexed} (after a Redis loss or a restart)")
            await asyncio.sleep(0.1)

    async def _visits(self, keys: list[str], since: datetime) -> list[tuple[str, str, int]]:
        since_ms = int(since.timestamp() * 1000)
        found: dict[str, tuple[str, str, int]] = {}
        for key in keys:
            rows = cast(list[tuple[bytes, float]], await self._redis.zrangebyscore(
                redis_keys.visits_of_person(key), since_ms, "+inf", withscores=True))
            for member, score in rows:
                cp, did = as_text(member).split("|", 1)
                found[did] = (cp, did, int(score))
        return sorted(found.values(), key=lambda v: (v[2], v[0]))

    async def _exposure(self, case: CaseEvent, keys: list[str], checkpoint_id: str,
                        declaration_id: str, at_ms: int, ward_code: str | None) -> AlertEvent:
        w_ms = int(self._window.total_seconds() * 1000)
        rows = cast(list[bytes], await self._redis.zrangebyscore(
            redis_keys.visits_at(checkpoint_id), at_ms - w_ms, at_ms + w_ms))
        exposed: dict[str, list[str]] = {}
        for member in rows:
            person_key, did = as_text(member).split("|", 1)
            if person_key not in keys:
                exposed.setdefault(person_key, []).append(did)
        count = len(exposed)
        minutes = w_ms // 60_000
        return make_alert(
            kind=AlertKind.EXPOSURE,
            condition=(case.case_id, checkpoint_id, declaration_id),
            severity=Severity.CRITICAL if count else Severity.WARNING,
            detected_at_ms=int(case.reported_at.timestamp() * 1000),
            vi=f"Ca bệnh đã đến {checkpoint_id}: {count} người khác khai báo tại đó trong "
               f"vòng {minutes} phút trước/sau",
            en=f"A confirmed case visited {checkpoint_id}: {count} other people checked in "
               f"there within {minutes} minutes either side",
            checkpoint_id=checkpoint_id,
            ward_code=ward_code,
            window_ms=(at_ms - w_ms, at_ms + w_ms),
            evidence=Evidence(
                method=f"check-ins at the same checkpoint within ±{minutes} min of the visit",
                observed=float(count),
                exposed_count=count,
                person_keys=tuple(sorted(exposed)),
                declaration_ids=(UUID(declaration_id),
                                 *(UUID(d) for ds in exposed.values() for d in ds)),
            ),
        )
