"""docker-compose.yml is checked as far as possible without a Docker engine."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ingest_api.config import ApiSettings
from simulator.main import SimulatorSettings
from streams.config import WorkerSettings
from streams.notifier import NotifierSettings

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {"VHC_INGEST_KEYS": "k" * 16, "VHC_STAFF_TOKENS": "t" * 16,
           "VHC_PSEUDONYM_SECRET": "s" * 16, "GRAFANA_ADMIN_PASSWORD": "g" * 16}


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose (Debian package) is installed by `make deps`"
    return subprocess.run([binary, "-f", str(ROOT / "docker-compose.yml"), "config"],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, **env}, cwd=ROOT)


def test_compose_file_is_valid_and_resolves() -> None:
    result = compose_config(SECRETS)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert set(config["services"]) >= {"kafka", "redis", "worker", "api", "simulator"}
    assert config["services"]["api"]["environment"]["VHC_INGEST_KEYS"] == "k" * 16


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_refuses_to_run_without_secrets(missing: str) -> None:
    env = {k: v for k, v in SECRETS.items() if k != missing}
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
    result = subprocess.run(
        [shutil.which("docker-compose") or "docker-compose", "-f",
         str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True, text=True, check=False, env={**clean, **env}, cwd=ROOT)
    assert result.returncode != 0
    assert missing in result.stderr


def _fields(settings: type, prefix: str) -> set[str]:
    return {prefix + name.upper() for name in settings.model_fields}


def test_every_vhc_variable_in_compose_is_a_real_setting() -> None:
    config = yaml.safe_load(compose_config(SECRETS).stdout)
    known = {
        "worker": _fields(WorkerSettings, "VHC_"),
        "api": _fields(ApiSettings, "VHC_"),
        "simulator": _fields(SimulatorSettings, "VHC_SIM_"),
        "notifier": _fields(NotifierSettings, "VHC_"),
    }
    for service, names in known.items():
        env = config["services"][service]["environment"]
        unknown = {k for k in env if k.startswith("VHC_")} - names
        assert not unknown, f"{service}: {unknown}"


def test_compose_kafka_matches_the_local_broker_settings() -> None:
    """The settings that matter for correctness agree between compose and deploy/localsvc."""
    from deploy.localsvc import KAFKA_VERSION, KafkaBroker

    config = yaml.safe_load(compose_config(SECRETS).stdout)
    kafka = config["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}"
    local = dict(line.split("=", 1) for line in
                 KafkaBroker(name="k", log_path=Path("x")).properties().splitlines() if line)
    for prop in ("transaction.state.log.min.isr", "offsets.topic.replication.factor",
                 "log.retention.hours", "group.initial.rebalance.delay.ms",
                 "auto.create.topics.enable"):
        env_name = "KAFKA_" + prop.upper().replace(".", "_")
        assert str(kafka["environment"][env_name]) == local[prop], prop
