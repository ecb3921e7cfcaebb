"""Rebuilds the registry's Redis view from ``checkpoints.v1``, its source of truth.

Run at API start: every checkpoint on the compacted topic that the view lacks (Redis lost,
a new Redis, another region) is put back. Existing entries are left alone: the API writes
the view after Kafka acknowledged, so an entry present in Redis is never older than the
topic's copy that this read could race with.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from vhc_common.kafka_replay import replay_topic
from vhc_common.schemas import CheckpointEvent
from vhc_common.topics import CHECKPOINTS

__all__ = ["read_registry"]

log = logging.getLogger(__name__)


async def read_registry(bootstrap: str, *, partitions: int) -> list[CheckpointEvent]:
    """The newest record of every checkpoint on the topic."""
    latest: dict[str, CheckpointEvent] = {}

    async def keep(value: bytes) -> None:
        try:
            event = CheckpointEvent.model_validate_json(value)
        except ValidationError as exc:
            log.error("skipping a bad %s record: %s", CHECKPOINTS, exc)
            return
        latest[event.checkpoint_id] = event

    await replay_topic(bootstrap, CHECKPOINTS, partitions, keep)
    return list(latest.values())
