"""Baseline for batch ingest: a bare kafka-python producer with the API's own producer
settings (``ingest_api.publisher.producer_options``: acks=all, idempotent, and the linger
and batch size of ``VHC_KAFKA_LINGER_MS`` and ``VHC_KAFKA_BATCH_BYTES`` or their defaults)
sending N declaration-sized messages keyed by ``--checkpoints`` checkpoint ids (``BENCH-0000``
… ``BENCH-0199`` by default, the keys the batch figure's load sends); prints one JSON line.

    python -m benchmarks.bare_producer --bootstrap HOST:PORT --messages 50000 [--checkpoints 200]
"""

from __future__ import annotations

import argparse
import json
import os
import time

from kafka import KafkaProducer

from ingest_api.config import ApiSettings
from ingest_api.publisher import producer_options
from vhc_common.runtime import tune_gc
from vhc_common.topics import DECLARATIONS


def api_producer_options() -> dict[str, object]:
    """What the API's producer runs with, from the same environment variables."""
    fields = ApiSettings.model_fields

    def setting(name: str) -> int:
        return int(os.environ.get(f"VHC_{name.upper()}", fields[name].default))
    timeout_s = os.environ.get("VHC_PUBLISH_TIMEOUT_S", fields["publish_timeout_s"].default)
    return producer_options(timeout_s=float(timeout_s),
                            linger_ms=setting("kafka_linger_ms"),
                            batch_bytes=setting("kafka_batch_bytes"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--checkpoints", type=int, default=200)
    args = parser.parse_args()
    tune_gc()  # as every API process (ingest_api.main.serve)
    value = json.dumps({"schema_version": 1, "declaration_id": "0" * 36,
                        "checkpoint_id": "BENCH-0000", "scanned_at": "2026-11-26T10:00:00+00:00",
                        "received_at": "2026-11-26T10:00:00+00:00",
                        "person": {"key": "a" * 32, "id_key": "a" * 32, "phone_key": None,
                                   "birth_year": None},
                        "temperature_c": 36.6, "symptoms": [], "contact": "none",
                        "travel_from": []}).encode()
    producer = KafkaProducer(bootstrap_servers=args.bootstrap, **api_producer_options())
    producer.send(DECLARATIONS, key=b"BENCH-0000", value=value).get(timeout=30)  # warm
    started = time.perf_counter()
    keys = [f"BENCH-{i:04d}".encode() for i in range(args.checkpoints)]
    futures = [producer.send(DECLARATIONS, key=keys[i % args.checkpoints], value=value)
               for i in range(args.messages)]
    producer.flush()
    for f in futures:
        f.get(timeout=30)
    elapsed = time.perf_counter() - started
    producer.close()
    print(json.dumps({"messages": args.messages, "seconds": round(elapsed, 3),
                      "messages_per_s": round(args.messages / elapsed, 1)}), flush=True)


if __name__ == "__main__":
    main()
