"""Webhook notifier: pushes alerts (critical by default) to the teams' own tools.

``vhc-notifier`` (``python -m streams.notifier``) reads ``alerts.v1`` in its own consumer
group and POSTs each alert at or above ``VHC_WEBHOOK_MIN_SEVERITY`` to every URL of
``VHC_WEBHOOK_URLS`` as JSON. Each request carries:

* ``X-VHC-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``; a
  receiver recomputes it with ``VHC_WEBHOOK_SECRET`` and refuses a mismatch or a ``t``
  older than a few minutes (replays);
* ``X-VHC-Delivery: <alert id>`` (the same on every retry and after a restart, so a
  receiver drops a repeat) and ``X-VHC-Event: alert``.

A delivery that fails (connection error, timeout, or any answer but 2xx) is retried with
exponential back-off (``VHC_WEBHOOK_BACKOFF_S`` doubled each time, capped at 60 s) up to
``VHC_WEBHOOK_MAX_ATTEMPTS``; after the last failure a record goes to ``deadletter.v1``
(``source: "webhook"``, the URL, the attempts and the last error) and the counter
``vhc_notifier_deliveries_total{outcome="dead_letter"}`` rises. Offsets are committed
only once every URL has had its delivery or its dead letter, and a Redis marker per
alert and URL keeps a restart or a re-emitted alert from sending twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from prometheus_client import CollectorRegistry, Counter, start_http_server
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from redis.asyncio import Redis

from vhc_common import kafka_security, native, redis_wire
from vhc_common.kafka_security import client_options
from vhc_common.settings import Environment, development_secret, settings_errors
from vhc_common.topics import ALERTS, DEADLETTER

__all__ = ["NotifierSettings", "WebhookSender", "run", "signature"]

log = logging.getLogger("vhc.notifier")

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
MAX_BACKOFF_S = 60.0


class NotifierSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VHC_", extra="ignore")

    kafka_bootstrap: str = Field(min_length=3)
    redis_url: str = Field(pattern=r"^rediss?://")
    webhook_urls: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="comma-separated http(s) URLs; none: the notifier idles")
    webhook_secret: SecretStr | None = Field(default=None, description="HMAC key, >= 16 B")
    environment: Environment = Field(default="production",
                                     description="production refuses development secrets")
    webhook_min_severity: str = Field(default="critical", pattern=r"^(info|warning|critical)$")
    webhook_max_attempts: int = Field(default=6, ge=1, le=20)
    webhook_backoff_s: float = Field(default=1.0, gt=0, le=60)
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=60)
    retention_days: int = Field(default=21, ge=1, le=60)
    notifier_metrics_port: int = Field(default=0, ge=0, le=65535)

    @field_validator("webhook_urls", mode="before")
    @classmethod
    def _urls(cls, value: object) -> tuple[str, ...]:
        items = tuple(v.strip() for v in str(value or "").split(",") if v.strip())
        bad = [u for u in items if not u.startswith(("http://", "https://"))]
        if bad:
            raise ValueError(f"not http(s) URLs: {len(bad)} item(s)")
        return items

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _unset(cls, value: object) -> object:
        return None if value == "" else value  # compose passes unset variables as ""

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < 16:
            raise ValueError("must be at least 16 bytes")
        return value

    def model_post_init(self, _: Any) -> None:
        if self.webhook_urls and self.webhook_secret is None:
            raise ValueError("VHC_WEBHOOK_SECRET is required when VHC_WEBHOOK_URLS is set")
        if (self.environment == "production" and self.webhook_secret is not None
                and development_secret(self.webhook_secret.get_secret_value())):
            raise ValueError("VHC_WEBHOOK_SECRET looks like a development or placeholder "
                             "value; use a random one or set VHC_ENVIRONMENT=development")


def signature(secret: bytes, body: bytes, at_s: int) -> str:
    """The ``X-VHC-Signature`` value for ``body`` sent at ``at_s`` (unix seconds)."""
    mac = hmac.new(secret, f"{at_s}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at_s},v1={mac}"


@dataclass
class Outcome:
    delivered: bool
    attempts: int
    error: str | None


class WebhookSender:
    """Delivers one body to one URL with retries (``sleep`` injectable for tests)."""

    def __init__(self, *, client: httpx.AsyncClient, secret: bytes, max_attempts: int,
                 backoff_s: float, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._secret = secret
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._sleep = sleep
        self._clock = clock

    async def deliver(self, url: str, body: bytes, delivery_id: str) -> Outcome:
        error = None
        for attempt in range(1, self._max_attempts + 1):
            headers = {"Content-Type": "application/json", "X-VHC-Event": "alert",
                       "X-VHC-Delivery": delivery_id,
                       "X-VHC-Signature": signature(self._secret, body, int(self._clock()))}
            try:
                answer = await self._client.post(url, content=body, headers=headers)
                if 200 <= answer.status_code < 300:
                    return Outcome(True, attempt, None)
                error = f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            if attempt < self._max_attempts:
                await self._sleep(min(MAX_BACKOFF_S, self._backoff_s * 2 ** (attempt - 1)))
        return Outcome(False, self._max_attempts, error)


class NotifierMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.deliveries = Counter("vhc_notifier_deliveries_total",
                                  "Webhook deliveries by outcome "
                                  "(delivered, dead_letter, duplicate)",
                                  ["outcome"], registry=self.registry)
        self.attempts = Counter("vhc_notifier_attempts_total", "Webhook HTTP attempts",
                                registry=self.registry)
        for outcome in ("delivered", "dead_letter", "duplicate"):
            self.deliveries.labels(outcome)


async def notify(settings: NotifierSettings, metrics: NotifierMetrics,
                 stop: asyncio.Event) -> None:
    if not settings.webhook_urls:
        log.info("no VHC_WEBHOOK_URLS: nothing to notify; idling")
        await stop.wait()
        return
    assert settings.webhook_secret is not None
    redis = redis_wire.client(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    # A new group starts at the end: a first start does not replay weeks of old alerts.
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                                group_id="vhc-notifier", enable_auto_commit=False,
                                auto_offset_reset="latest", **client_options())
    consumer.subscribe([ALERTS], listener=_LogAssignment())
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                **client_options())
    minimum = SEVERITY_RANK[settings.webhook_min_severity]
    ttl_s = settings.retention_days * 86_400
    async with httpx.AsyncClient(timeout=settings.webhook_timeout_s) as client:
        sender = WebhookSender(client=client,
                               secret=settings.webhook_secret.get_secret_value().encode(),
                               max_attempts=settings.webhook_max_attempts,
                               backoff_s=settings.webhook_backoff_s)
        await consumer.start()
        await producer.start()
        log.info("notifying %d webhook(s) of %s+ alerts", len(settings.webhook_urls),
                 settings.webhook_min_severity)
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=1000, max_records=50)
                for records in batches.values():
                    for record in records:
                        await _handle(record, settings, sender, redis, producer, metrics,
                                      minimum, ttl_s)
                if batches:
                    await consumer.commit()
        finally:
            await consumer.stop()
            await producer.stop()
            await redis.aclose()


class _LogAssignment(ConsumerRebalanceListener):  # type: ignore[misc]
    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("assigned %d partition(s) of %s", len(assigned), ALERTS)


async def _handle(record: Any, settings: NotifierSettings, sender: WebhookSender,
                  redis: Redis, producer: AIOKafkaProducer, metrics: NotifierMetrics,
                  minimum: int, ttl_s: int) -> None:
    try:
        alert = json.loads(record.value)
        alert_id, severity = str(alert["alert_id"]), str(alert["severity"])
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("skipping an unreadable alert at %s[%d]@%d: %s", record.topic,
                    record.partition, record.offset, exc)
        return
    if SEVERITY_RANK.get(severity, -1) < minimum:
        return
    body = json.dumps(alert, ensure_ascii=False, separators=(",", ":")).encode()
    for url in settings.webhook_urls:
        marker = "vhc:webhook:" + hashlib.sha256(f"{alert_id}|{url}".encode()).hexdigest()[:32]
        if await redis.exists(marker):
            metrics.deliveries.labels("duplicate").inc()
            continue
        outcome = await sender.deliver(url, body, alert_id)
        metrics.attempts.inc(outcome.attempts)
        if outcome.delivered:
            metrics.deliveries.labels("delivered").inc()
        else:
            metrics.deliveries.labels("dead_letter").inc()
            log.error("webhook %s failed %d times for %s (%s[%d]@%d): %s; dead-lettered",
                      url, outcome.attempts, alert_id, record.topic, record.partition,
                      record.offset, outcome.error)
            dead = {"schema_version": 1, "source": "webhook", "url": url,
                    "alert_id": alert_id, "attempts": outcome.attempts,
                    "error": outcome.error, "failed_at": datetime.now(UTC).isoformat(),
                    "alert": alert}
            await producer.send_and_wait(DEADLETTER, json.dumps(dead).encode(),
                                         key=alert_id.encode())
        await redis.set(marker, b"1" if outcome.delivered else b"0", ex=ttl_s)


def run() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    native.exit_if_stale("vhc-notifier")  # compiled modules match their sources
    try:
        settings = NotifierSettings()
        kafka_security.current()  # VHC_KAFKA_SECURITY_PROTOCOL etc.: checked at start too
    except ValidationError as exc:
        sys.exit(f"vhc-notifier: invalid settings:\n{settings_errors(exc)}")
    except ValueError as exc:
        sys.exit(f"vhc-notifier: invalid settings: {exc}")
    metrics = NotifierMetrics()
    if settings.notifier_metrics_port:
        start_http_server(settings.notifier_metrics_port, registry=metrics.registry)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await notify(settings, metrics, stop)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


if __name__ == "__main__":
    run()
