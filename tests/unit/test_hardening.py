"""Fixes from the 7/7 review that can be shown without services; each test fails on the
code before its fix."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ingest_api.config import ApiSettings
from ingest_api.ingest import _raw_id
from ingest_api.models import CaseIn
from streams.counting import RawRecord
from streams.counting import decode as decode_declaration
from vhc_common.schemas import PersonIn
from vhc_common.settings import settings_errors

BASE = {"environment": "development", "kafka_bootstrap": "k:9092",
        "redis_url": "redis://r:6379/0",
        "ingest_keys": "ingest-key-0123456789", "staff_tokens": "staff-token-0123456789",
        "pseudonym_secret": "a-random-secret-0123456789"}


@pytest.mark.parametrize("secret", ["a" * 16, "abababababababab", "0" * 64])
def test_weak_pseudonym_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValidationError, match="too weak"):
        ApiSettings(**{**BASE, "pseudonym_secret": secret})


def test_one_credential_cannot_be_both_key_and_token() -> None:
    with pytest.raises(ValidationError, match="both an ingest key and a staff token"):
        ApiSettings(**{**BASE, "staff_tokens": "staff-token-0123456789,ingest-key-0123456789"})


def test_settings_errors_never_show_the_values() -> None:
    with pytest.raises(ValidationError) as caught:
        ApiSettings(**{**BASE, "pseudonym_secret": "short", "redis_url": "http://x",
                       "ingest_keys": "tiny-secret-key"})
    text = settings_errors(caught.value)
    assert "VHC_PSEUDONYM_SECRET" in text and "VHC_REDIS_URL" in text
    for secret in ("short", "tiny-secret-key", "http://x"):
        assert secret not in text
    assert "tiny-secret-key" in str(caught.value)  # what pydantic alone would have printed


@pytest.mark.parametrize("field,value", [
    ("id_number", "０１２３４５６７８"),      # fullwidth
    ("id_number", "٠١٢٣٤٥٦٧٨"),              # Arabic-Indic
    ("phone", "０９１２３４５６７８"),
    ("phone", "٠٩١٢٣٤٥٦٧٨"),
])
def test_non_ascii_digits_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        PersonIn(**{field: value})
    assert PersonIn(id_number="012345678").id_number == "012345678"


def test_case_time_out_of_range_in_utc_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="out of range"):
        CaseIn.model_validate({"person": {"phone": "0912345678"},
                               "confirmed_at": "0001-01-01T00:00:00+14:00"})
    ok = CaseIn.model_validate({"person": {"phone": "0912345678"},
                                "confirmed_at": "2026-11-26T10:00:00+07:00"})
    assert ok.confirmed_at.utcoffset() is not None and ok.confirmed_at.hour == 3


@pytest.mark.parametrize(("raw", "echoed"), [
    ({"declaration_id": "Nguyen Van A 0912345678"}, None),
    ({"declaration_id": "<script>"}, None),
    ({"declaration_id": 12}, None),
    ({"declaration_id": "0b3f1c7e-8a8e-4c1e-9f6a-2b1c3d4e5f60"},
     "0b3f1c7e-8a8e-4c1e-9f6a-2b1c3d4e5f60"),
    ("not a dict", None),
])
def test_invalid_batch_items_echo_only_id_shaped_ids(raw: object, echoed: str | None) -> None:
    assert _raw_id(raw) == echoed


def test_dead_letter_reasons_carry_no_input() -> None:
    value = (b'{"schema_version":1,"declaration_id":"x","checkpoint_id":"CP",'
             b'"person":{"key":"Nguyen Van A 0912345678"}}')
    with pytest.raises(Exception) as caught:
        decode_declaration(RawRecord("declarations.v1", 0, 7, b"CP", value))
    assert "Nguyen" not in str(caught.value) and "0912345678" not in str(caught.value)


async def test_the_metrics_method_label_is_bounded() -> None:
    from ingest_api.main import Observe
    from ingest_api.metrics import ApiMetrics

    metrics = ApiMetrics()

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 405, "headers": []})  # type: ignore[operator]

    async def send(_: object) -> None:
        return None

    observe = Observe(app, metrics=metrics)  # type: ignore[arg-type]
    for i in range(50):
        await observe({"type": "http", "method": f"FOO{i}", "path": "/"}, None, send)  # type: ignore[arg-type]
    methods = {s.labels["method"] for m in metrics.registry.collect() for s in m.samples
               if s.name == "vhc_api_requests_total"}
    assert methods == {"other"}


async def test_a_failed_release_neither_skips_the_confirm_nor_fails_the_acknowledged() -> None:
    from datetime import UTC, datetime
    from uuid import uuid4

    from ingest_api.errors import BrokerUnavailableError, StoreUnavailableError
    from ingest_api.ingest import IngestService
    from ingest_api.metrics import ApiMetrics
    from vhc_common.pseudonym import Pseudonymiser

    confirmed: list[str] = []

    class Seen:
        async def claim_registered(self, items: list[tuple[str, str]], *,
                                   owner: str, area: object) -> list[str]:
            return ["claimed"] * len(items)

        async def confirm(self, ids: list[str]) -> None:
            confirmed.extend(ids)

        async def release(self, ids: list[str], *, owner: str) -> int:
            raise StoreUnavailableError("redis: down")

    class Publisher:
        async def publish_many(self, messages: list[object]) -> list[object]:
            return [None, BrokerUnavailableError("no ack")]

    service = IngestService(publisher=Publisher(), seen=Seen(),  # type: ignore[arg-type]
                            pseudonymiser=Pseudonymiser(b"k" * 32), metrics=ApiMetrics(),
                            max_future_skew_s=120, retention_days=21)
    ids = [str(uuid4()), str(uuid4())]
    now = datetime.now(UTC).isoformat()
    outcomes = await service.submit([
        {"declaration_id": d, "checkpoint_id": "CP-1", "scanned_at": now,
         "person": {"id_number": "012345678"}} for d in ids])
    assert [o.status for o in outcomes] == ["accepted", "unavailable"]
    assert confirmed == [ids[0]]


async def test_readiness_probes_share_one_thread_and_reuse_a_fresh_answer() -> None:
    import asyncio
    import threading
    import time

    from ingest_api.publisher import KafkaPublisher

    publisher = KafkaPublisher("127.0.0.1:1", timeout_s=1)
    calls: list[str] = []

    def slow_ping() -> bool:  # a broker that does not answer: the probe takes its time
        calls.append(threading.current_thread().name)
        time.sleep(0.3)
        return False

    publisher.ping = slow_ping  # type: ignore[method-assign]
    answers = await asyncio.gather(*(publisher.reachable() for _ in range(12)))
    assert answers == [False] * 12
    assert len(calls) == 1  # twelve /readyz calls held one thread, not twelve


def test_a_table_store_the_worker_cannot_run_with_is_refused_at_start() -> None:
    """``rocksdb://`` passed the settings and, with rocksdict installed, failed at the
    first batch: faust's RocksDB store finds a write's partition from the current event."""
    from streams.config import WorkerSettings

    base = {"kafka_bootstrap": "k:9092", "redis_url": "redis://r:6379/0"}
    assert WorkerSettings(**base).store == "memory://"
    with pytest.raises(ValidationError, match="only memory:// is supported"):
        WorkerSettings(**base, store="rocksdb://")


@pytest.mark.parametrize("linger_ms", [0, 2, 3, 5, 100])
@pytest.mark.parametrize("publish_timeout_s", [0.5, 5.0, 60.0])
def test_every_linger_the_settings_allow_gives_a_producer_kafka_python_accepts(
        linger_ms: int, publish_timeout_s: float) -> None:
    """``delivery_timeout_ms`` was ``timeout + 2``: with ``VHC_KAFKA_LINGER_MS`` over 2,
    kafka-python refused to build the producer and every declaration was answered 503."""
    from kafka.producer.record_accumulator import RecordAccumulator

    from ingest_api.publisher import producer_options

    settings = ApiSettings(**{**BASE, "kafka_linger_ms": linger_ms,
                              "publish_timeout_s": publish_timeout_s})
    options = producer_options(timeout_s=settings.publish_timeout_s,
                               linger_ms=settings.kafka_linger_ms,
                               batch_bytes=settings.kafka_batch_bytes)
    accumulator = RecordAccumulator(**options)  # raises KafkaConfigurationError if refused
    assert accumulator.config["linger_ms"] == linger_ms
    assert accumulator.config["batch_size"] == settings.kafka_batch_bytes
