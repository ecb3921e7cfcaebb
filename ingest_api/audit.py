"""Who did what: every staff action is recorded durably on ``audit.v1`` (Kafka, the
record of truth) and kept beside its target in Redis for display."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ingest_api.errors import StoreUnavailableError
from ingest_api.publisher import KafkaPublisher, Message
from vhc_common import redis_keys
from vhc_common.schemas import AuditEvent
from vhc_common.topics import AUDIT

__all__ = ["AuditLog", "TargetType"]

TargetType = Literal["alert", "checkpoint", "outbreak_areas", "case"]
KEEP_PER_TARGET = 200


class AuditLog:
    def __init__(self, *, redis: Redis, publisher: KafkaPublisher, retention_s: int) -> None:
        self._redis = redis
        self._publisher = publisher
        self._retention_s = retention_s

    async def record(self, *, action: str, target_type: TargetType, target_id: str, by: str,
                     note: str | None = None,
                     details: dict[str, str] | None = None) -> AuditEvent:
        """Publish the record (acknowledged by Kafka), then show it beside its target."""
        event = AuditEvent(audit_id=f"audit-{secrets.token_hex(12)}", action=action,
                           target_type=target_type, target_id=target_id, by=by,
                           at=datetime.now(UTC), note=note, details=details or {})
        text = event.model_dump_json()
        await self._publisher.publish(Message(AUDIT, target_id.encode(), text.encode()))
        key = redis_keys.audit(target_type, target_id)
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.lpush(key, text)
            pipe.ltrim(key, 0, KEEP_PER_TARGET - 1)
            pipe.expire(key, self._retention_s)
            await pipe.execute()
        except RedisError as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc
        return event

    async def of(self, target_type: TargetType, target_id: str,
                 limit: int = 50) -> list[AuditEvent]:
        """The target's records, newest first."""
        try:
            raws = await self._redis.lrange(redis_keys.audit(target_type, target_id), 0,
                                            limit - 1)
        except RedisError as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc
        return [AuditEvent.model_validate_json(r) for r in raws]
