"""Rebuilds the registry's Redis view from ``checkpoints.v1``, its source of truth.

Run at API start: every checkpoint on the compacted topic that the view lacks (Redis lost,
a new Redis, another region) is put back. Existing entries are left alone: the API writes
the view after Kafka acknowledged, so an entry present in Redis is never older than the
topic's copy that this read could race with.
"""

from __future__ import annotations

import logging

from kafka import KafkaConsumer, TopicPartition
from pydantic import ValidationError

from vhc_common.schemas import CheckpointEvent
from vhc_common.topics import CHECKPOINTS

__all__ = ["read_registry"]

log = logging.getLogger(__name__)


def read_registry(bootstrap: str, *, timeout_s: float = 30.0) -> list[CheckpointEvent]:
    """The newest record of every checkpoint on the topic (blocking: run in a thread)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False,
                             group_id=None, client_id="vhc-registry-sync",
                             request_timeout_ms=int(timeout_s * 1000))
    try:
        partitions = consumer.partitions_for_topic(CHECKPOINTS) or set()
        tps = [TopicPartition(CHECKPOINTS, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        latest: dict[str, CheckpointEvent] = {}
        while any(consumer.position(tp) < end[tp] for tp in tps):
            for tp, records in consumer.poll(timeout_ms=1000).items():
                for record in records:
                    if record.value is None:
                        continue
                    try:
                        event = CheckpointEvent.model_validate_json(record.value)
                    except ValidationError as exc:
                        log.error("skipping bad registry record %s[%d]@%d: %s", tp.topic,
                                  tp.partition, record.offset, exc)
                        continue
                    latest[event.checkpoint_id] = event
        return list(latest.values())
    finally:
        consumer.close()
