"""Settings of the stream worker (environment variables ``VHC_*``), checked at start."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from detectors.aberration import METHODS

__all__ = ["WorkerSettings"]


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VHC_", extra="ignore")

    kafka_bootstrap: str = Field(min_length=3, description="host:port[,host:port]")
    redis_url: str = Field(pattern=r"^rediss?://")
    app_id: str = Field(default="vhc-worker", pattern=r"^[A-Za-z0-9._-]+$")
    partitions: int = Field(default=4, ge=1, le=256)
    retention_days: int = Field(default=21, ge=1, le=60)
    store: str = Field(default="memory://", description="faust's table store: memory:// only")
    data_dir: Path = Path(".run/worker")
    fever_threshold_c: float = Field(default=37.5, ge=35, le=42)
    # False-alarm budgets: alerts each baseline or cluster detector may raise on ordinary
    # traffic, per 100 days of one checkpoint (one ward for the ward aberration). With
    # about 7 checkpoints a ward, the defaults add up to under 1 per 100 checkpoint-days.
    budget_cluster: float = Field(default=0.3, gt=0, le=100)
    budget_surge: float = Field(default=0.2, gt=0, le=100)
    budget_silence: float = Field(default=0.2, gt=0, le=100)
    budget_aberration: float = Field(default=0.15, gt=0, le=100)
    budget_ward_aberration: float = Field(default=1.0, gt=0, le=100)
    aberration_methods: Annotated[list[str], NoDecode] = Field(
        default=["llr_cusum"],
        description="symptom_aberration methods, OR-ed (llr_cusum, negbin, ears_c1, ears_c2, "
                    "ears_c3, cusum); the budget is shared among them")
    cluster_min_people: int = Field(default=3, ge=2, le=100)
    cluster_window_s: int = Field(default=3600, ge=60, le=7 * 86_400)
    grace_s: int = Field(default=300, ge=0, le=86_400,
                         description="how long an hour stays open for late declarations")
    live_lag_s: int = Field(default=600, ge=1, description="received - scanned below this: live")
    tick_lag_s: int = Field(default=30, ge=0, description="ticks move time to wall clock - this")
    tick_interval_s: float = Field(default=5.0, gt=0, le=300)
    batch_max: int = Field(default=5000, ge=1, le=100_000)
    batch_within_s: float = Field(default=0.25, gt=0, le=10)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9108, ge=0, le=65535, description="0: no metrics server")
    session_timeout_s: float = Field(
        default=30.0, ge=6, le=300,
        description="Kafka group session timeout: how soon a dead worker's partitions move",
    )
    heartbeat_interval_s: float = Field(default=2.0, gt=0, le=60)
    standby_replicas: int = Field(
        default=0, ge=0, le=3,
        description="faust's table standby replicas: each worker also keeps this many "
        "copies of other workers' tables, for a quicker take-over; each copy costs it the "
        "work of applying another worker's changelog (two workers on two cores went at "
        "0.99x one worker with 1, 1.62x with 0)",
    )
    log_level: str = Field(default="info", pattern=r"^(debug|info|warning|error)$")

    @field_validator("store")
    @classmethod
    def _store(cls, value: str) -> str:
        if not value.startswith("memory://"):
            raise ValueError(
                "only memory:// is supported: faust's RocksDB store takes each write's "
                "partition from the event being processed, and the worker writes a batch's "
                "tables outside any one event (with rocksdict installed, the first batch "
                "failed)")
        return value

    @field_validator("aberration_methods", mode="before")
    @classmethod
    def _methods(cls, value: object) -> object:
        if isinstance(value, str):
            value = [m.strip() for m in value.split(",") if m.strip()]
        if isinstance(value, list):
            unknown = [m for m in value if m not in METHODS]
            if unknown or not value:
                raise ValueError(f"methods are a comma-separated subset of {', '.join(METHODS)}"
                                 f"; unknown: {unknown or 'none given'}")
        return value
