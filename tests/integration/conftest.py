"""Real services for integration tests: Kafka and Redis on free ports, the worker and the
API as real processes. A failed start fails the session loudly with the service's log."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.localsvc import (
    KafkaBroker,
    ManagedProcess,
    RedisServer,
    ServiceStartError,
    free_port,
    log_tail,
)

INGEST_KEY = "it-ingest-key-0123456789"
STAFF_TOKEN = "it-staff-token-0123456789"
SECRET = "it-pseudonym-secret-0123456789"
PARTITIONS = 4


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vhc-it")


@pytest.fixture(scope="session")
def kafka(run_dir: Path) -> Iterator[KafkaBroker]:
    broker = KafkaBroker.on_free_ports("kafka", run_dir)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def redis_server(run_dir: Path) -> Iterator[RedisServer]:
    server = RedisServer.on_free_port("redis", run_dir)
    server.start()
    yield server
    server.stop()


def service_env(kafka: KafkaBroker, redis_server: RedisServer, run_dir: Path,
                **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "VHC_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "VHC_REDIS_URL": redis_server.url,
        "VHC_INGEST_KEYS": INGEST_KEY,
        "VHC_STAFF_TOKENS": STAFF_TOKEN,
        "VHC_PSEUDONYM_SECRET": SECRET,
        "VHC_ENVIRONMENT": "development",
        "VHC_PARTITIONS": str(PARTITIONS),
        "VHC_DATA_DIR": str(run_dir / "worker"),
        "VHC_METRICS_PORT": "0",
        "VHC_SESSION_TIMEOUT_S": "6",
        "VHC_HEARTBEAT_INTERVAL_S": "0.5",
        "VHC_TICK_INTERVAL_S": "1",
        **extra,
    }


@dataclass
class Api:
    base_url: str
    process: ManagedProcess
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base_url, timeout=30)

    @property
    def front_end(self) -> dict[str, str]:
        return {"X-API-Key": INGEST_KEY}

    @property
    def staff(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {STAFF_TOKEN}"}


def start_api(env: dict[str, str], log_path: Path, *, wait_ready: bool) -> Api:
    port = free_port()
    process = ManagedProcess.spawn_module("api", "ingest_api.main",
                                          {**env, "VHC_API_PORT": str(port)}, log_path)
    api = Api(f"http://127.0.0.1:{port}", process)
    path = "/readyz" if wait_ready else "/healthz"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not process.alive():
            raise ServiceStartError(f"API exited:\n{log_tail(log_path)}")
        try:
            if api.client.get(path).status_code == 200:
                return api
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.stop()
    raise ServiceStartError(f"API not answering {path} within 60 s:\n{log_tail(log_path)}")


def start_worker(env: dict[str, str], log_path: Path) -> ManagedProcess:
    return ManagedProcess.spawn_module("worker", "streams.main", env, log_path)


#: Where the session's worker serves its metrics (scraped by the Prometheus test).
WORKER_METRICS_PORT = free_port()


@pytest.fixture(scope="session")
def worker(kafka: KafkaBroker, redis_server: RedisServer,
           run_dir: Path) -> Iterator[ManagedProcess]:
    env = service_env(kafka, redis_server, run_dir,
                      VHC_METRICS_PORT=str(WORKER_METRICS_PORT))
    process = start_worker(env, run_dir / "worker.log")
    yield process
    process.stop()


@pytest.fixture(scope="session")
def api(kafka: KafkaBroker, redis_server: RedisServer, worker: ManagedProcess,
        run_dir: Path) -> Iterator[Api]:
    instance = start_api(service_env(kafka, redis_server, run_dir,
                                     VHC_SURVEILLANCE_REFRESH_S="2"),
                         run_dir / "api.log", wait_ready=True)
    yield instance
    instance.client.close()
    instance.process.stop()


def good_name(kind_word: str, unit: str, ward_code: str) -> str:
    """A name that follows the default naming convention, for tests not about naming."""
    from vietnam_provinces import Province, Ward, WardCode

    from detectors.naming import official_province_name

    ward = Ward.from_code(WardCode(int(ward_code)))
    return (f"{kind_word} {unit} - {ward.name} - "
            f"{official_province_name(Province.from_code(ward.province_code))}")


def wait_for(predicate: Any, timeout_s: float = 30, what: str = "condition") -> Any:
    """The predicate's first truthy value, polled every 0.3 s; fails after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")
