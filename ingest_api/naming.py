"""Checkpoint names against the convention, at the registry's edge.

``flag`` mode (default) stores the checkpoint, answers the verdict and raises a
``naming_violation`` alert (warning) for a name that breaks the rule; when the name is
changed, the previous name's open alert is resolved by ``system`` with a note. ``strict``
mode answers ``422`` with every rule broken and the suggestion instead.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from detectors.alerts import alert_id, make_alert
from detectors.naming import NamingRule, check_name, fold
from ingest_api.errors import StoreUnavailableError
from ingest_api.publisher import KafkaPublisher, Message
from vhc_common import redis_keys
from vhc_common.alert_view import AlertView, StatusChangeError
from vhc_common.schemas import (
    AlertEvent,
    AlertKind,
    AlertStatus,
    AlertStatusEvent,
    CheckpointEvent,
    Evidence,
    NamingVerdict,
    NamingViolation,
    Severity,
)
from vhc_common.timebase import to_ms
from vhc_common.topics import ALERT_STATUS, ALERTS

__all__ = ["NamingService"]

SYSTEM = "system"


class NamingService:
    def __init__(self, *, rule: NamingRule, strict: bool, redis: Redis, alerts: AlertView,
                 publisher: KafkaPublisher,
                 on_alert: Callable[[AlertEvent], None] | None = None) -> None:
        self.rule = rule
        self._on_alert = on_alert
        self.strict = strict
        self._redis = redis
        self._alerts = alerts
        self._publisher = publisher

    async def names(self) -> dict[str, str]:
        """Folded name -> checkpoint id, for every registered checkpoint."""
        try:
            raw = cast(dict[Any, Any], await self._redis.hgetall(redis_keys.checkpoint_names()))
        except RedisError as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc
        return {redis_keys.as_text(k): redis_keys.as_text(v) for k, v in raw.items()}

    def verdict(self, name: str, *, kind: str, ward_code: str, checkpoint_id: str | None,
                others: dict[str, str]) -> NamingVerdict:
        found = check_name(name, kind=kind, ward_code=ward_code, rule=self.rule,
                           others=others, checkpoint_id=checkpoint_id)
        return NamingVerdict(
            conforms=found.conforms, suggestion=found.suggestion,
            violations=tuple(NamingViolation(rule=v.rule, message=v.message,
                                             message_vi=v.message_vi)
                             for v in found.violations))

    async def judge(self, name: str, *, kind: str, ward_code: str,
                    checkpoint_id: str | None) -> NamingVerdict:
        return self.verdict(name, kind=kind, ward_code=ward_code, checkpoint_id=checkpoint_id,
                            others=await self.names())

    async def remember(self, event: CheckpointEvent, previous: CheckpointEvent | None) -> None:
        """Index the stored name for near-duplicate checks (the first owner keeps it)."""
        key = redis_keys.checkpoint_names()
        try:
            if previous is not None and fold(previous.name) != fold(event.name):
                await self._redis.eval(_DEL_IF_OWNER, 1, key, fold(previous.name),
                                       event.checkpoint_id)
            await self._redis.hsetnx(key, fold(event.name), event.checkpoint_id)
        except RedisError as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc

    async def restore(self, checkpoints: list[CheckpointEvent]) -> None:
        """Index names after a registry restore (first registered keeps a folded name)."""
        if not checkpoints:
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for cp in sorted(checkpoints, key=lambda c: c.created_at):
                pipe.hsetnx(redis_keys.checkpoint_names(), fold(cp.name), cp.checkpoint_id)
            await pipe.execute()
        except RedisError as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc

    def alert_for(self, event: CheckpointEvent) -> AlertEvent | None:
        verdict = event.naming
        if verdict is None or verdict.conforms:
            return None
        rules = ", ".join(dict.fromkeys(v.rule for v in verdict.violations))
        return make_alert(
            kind=AlertKind.NAMING_VIOLATION,
            condition=(event.checkpoint_id, event.name),
            severity=Severity.WARNING,
            detected_at_ms=to_ms(event.updated_at),
            checkpoint_id=event.checkpoint_id,
            ward_code=event.ward_code,
            vi=f"Tên điểm {event.checkpoint_id} không đúng quy ước ({rules}). "
               f"Tên gợi ý: {verdict.suggestion}",
            en=f"Checkpoint {event.checkpoint_id} is named against the convention "
               f"({rules}). Suggested name: {verdict.suggestion}",
            evidence=Evidence(method="naming_rule",
                              observed=float(len(verdict.violations)), threshold=0.0,
                              violations=tuple(v.message for v in verdict.violations),
                              suggestion=verdict.suggestion),
        )

    async def flag(self, event: CheckpointEvent, previous: CheckpointEvent | None) -> None:
        """Raise the alert for a bad name; settle the previous name's alert on a rename."""
        if previous is not None and previous.name != event.name:
            await self._settle(alert_id(AlertKind.NAMING_VIOLATION, previous.checkpoint_id,
                                        previous.name), event)
        alert = self.alert_for(event)
        if alert is None:
            return
        try:
            new = await self._alerts.insert(alert)
        except RedisError as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc
        await self._publisher.publish(Message(ALERTS, event.checkpoint_id.encode(),
                                              alert.model_dump_json().encode()))
        if new and self._on_alert is not None:
            self._on_alert(alert)

    async def _settle(self, old_alert_id: str, event: CheckpointEvent) -> None:
        async def publish(alert: dict[str, Any]) -> None:
            change = AlertStatusEvent(alert_id=old_alert_id, status=AlertStatus(alert["status"]),
                                      history=tuple(alert["history"]))
            await self._publisher.publish(Message(ALERT_STATUS, old_alert_id.encode(),
                                                  change.model_dump_json().encode()))

        note = (f"renamed to {event.name!r} at {datetime.now(UTC).isoformat(timespec='seconds')}"
                + ("" if event.naming is None or event.naming.conforms
                   else "; the new name has its own alert"))
        try:
            found = await self._alerts.get(old_alert_id)
            if found is None or found["status"] == AlertStatus.RESOLVED.value:
                return
            await self._alerts.set_status(old_alert_id, AlertStatus.RESOLVED, note=note,
                                          by=SYSTEM, publish=publish)
        except StatusChangeError:
            return  # resolved meanwhile by someone else: nothing left to settle
        except RedisError as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc


# KEYS: names hash; ARGV: folded name, checkpoint id. Deletes the entry only if it is ours.
_DEL_IF_OWNER = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""
