"""Topic creation at start-up (idempotent), so no topic is ever auto-created with defaults."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from vhc_common.kafka_security import client_options
from vhc_common.topics import TopicSpec

__all__ = ["KafkaUnavailableError", "ensure_topics", "group_lag", "wait_until_consumed"]

log = logging.getLogger(__name__)


class KafkaUnavailableError(RuntimeError):
    """The broker did not answer in time."""


def ensure_topics(bootstrap: str, specs: list[TopicSpec], *, timeout_s: float = 30.0) -> None:
    """Create every topic of ``specs`` that does not exist yet; existing ones are left as is."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            # A short bootstrap wait, retried in this loop: the default (30 s) held a
            # stopping API that long when the broker was away.
            admin = KafkaAdminClient(
                bootstrap_servers=bootstrap, client_id="vhc-admin", request_timeout_ms=10_000,
                bootstrap_timeout_ms=int(max(1.0, min(5.0, deadline - time.monotonic())) * 1000),
                **client_options())
        except KafkaError as exc:
            last_error = exc
            time.sleep(0.5)
            continue
        try:
            existing = set(admin.list_topics())
            missing = [s for s in specs if s.name not in existing]
            for spec in missing:
                try:
                    admin.create_topics([NewTopic(spec.name, spec.partitions, 1,
                                                  topic_configs=dict(spec.config))])
                    log.info("created topic %s (%d partitions)", spec.name, spec.partitions)
                except TopicAlreadyExistsError:
                    pass  # another process created it meanwhile
            return
        except KafkaError as exc:
            last_error = exc
            time.sleep(0.5)
        finally:
            admin.close()
    raise KafkaUnavailableError(
        f"could not create topics on {bootstrap} within {timeout_s:.0f} s: {last_error!r}"
    )


def group_lag(bootstrap: str, group: str, topics: list[str]) -> dict[str, int]:
    """Records on ``topics`` not yet committed by consumer group ``group``, per topic (a
    partition the group never committed counts from the start). For tools and tests
    that wait until a worker has processed everything."""
    from kafka import KafkaConsumer, TopicPartition

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="vhc-lag",
                             **client_options())
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             **client_options())
    try:
        # kafka-python 3: {group id: {TopicPartition: OffsetAndMetadata}}
        committed = admin.list_group_offsets(group).get(group, {})
        tps = [TopicPartition(t, p) for t in topics
               for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = consumer.end_offsets(tps) if tps else {}
        lag: dict[str, int] = dict.fromkeys(topics, 0)
        for tp in tps:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag[tp.topic] += max(0, ends[tp] - done)
        return lag
    finally:
        consumer.close()
        admin.close()


def wait_until_consumed(bootstrap: str, group: str, topics: list[str], *,
                        timeout_s: float = 300.0, settle_s: float = 1.5,
                        alive: Callable[[], bool] = lambda: True) -> None:
    """Until ``group`` has committed every record of ``topics``, twice ``settle_s`` apart
    (work that follows through internal topics is committed too). Raises
    ``TimeoutError`` with the lag, or ``RuntimeError`` when ``alive()`` turns false."""
    quiet = 0
    deadline = time.monotonic() + timeout_s
    while quiet < 2:
        if not alive():
            raise RuntimeError("the consumer died")
        lag = group_lag(bootstrap, group, topics)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{group} still behind after {timeout_s:.0f} s: {lag}")
        quiet = quiet + 1 if not any(lag.values()) else 0
        time.sleep(settle_s)
