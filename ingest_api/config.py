"""Settings of the API process (environment variables ``VHC_*``), checked at start.

Secrets have no defaults: the process refuses to start without them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from detectors.naming import DEFAULT_RULE, NamingError, NamingRule
from ingest_api.access import CredentialEntry, parse_ingest_key, parse_staff_token
from vhc_common.settings import Environment, development_secret

__all__ = ["ApiSettings", "qr_seed"]

CommaList = Annotated[tuple[str, ...], NoDecode]


def qr_seed(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VHC_", extra="ignore")

    environment: Environment = Field(
        default="production", description="production refuses development and placeholder "
        "secrets; make up and the tests run in development")
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    kafka_bootstrap: str = Field(min_length=3)
    redis_url: str = Field(pattern=r"^rediss?://")
    ingest_keys: CommaList = Field(description="API keys of front ends, comma-separated; "
                                   "each KEY or KEY:AREA")
    staff_tokens: CommaList = Field(description="bearer tokens of staff, comma-separated; "
                                    "each TOKEN or TOKEN:ROLE:AREA")
    pseudonym_secret: SecretStr = Field(description="HMAC key for personal identifiers")
    partitions: int = Field(default=4, ge=1, le=256)
    retention_days: int = Field(default=21, ge=1, le=60)
    max_future_skew_s: float = Field(default=120.0, ge=0, le=3600)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    batch_max_items: int = Field(default=500, ge=1, le=5000)
    publish_timeout_s: float = Field(default=5.0, gt=0, le=60)
    kafka_linger_ms: int = Field(
        default=0, ge=0, le=100,
        description="kafka-python's linger: how long a send waits for others to share its "
                    "produce request (README, benchmark section)")
    kafka_batch_bytes: int = Field(
        default=16_384, ge=1024, le=1_000_000,
        description="kafka-python's batch size per partition, in bytes (under the "
                    "broker's 1 MB message limit)")
    rate_limit_per_s: float = Field(default=200.0, ge=100, description="per key or token")
    rate_limit_burst: int = Field(default=400, ge=1)
    declaration_rate_per_s: float = Field(
        default=5_000.0, gt=0, description="declarations per second per key, however sent "
        "(a batch of n costs n)")
    declaration_burst: int = Field(default=10_000, ge=1)
    unauthenticated_rate_per_s: float = Field(
        default=5.0, gt=0, description="requests without valid credentials, per address")
    unauthenticated_burst: int = Field(default=50, ge=1)
    exposure_lookback_days: int = Field(default=14, ge=1, le=60)
    exposure_window_min: int = Field(default=60, ge=1, le=24 * 60)
    worker_heartbeat_required: bool = Field(
        default=True, description="/readyz needs a live stream worker"
    )
    naming_rule: str = Field(
        default=DEFAULT_RULE, description="checkpoint naming template over {kind}, {unit}, "
        "{ward}, {province}")
    naming_mode: Literal["flag", "strict"] = Field(
        default="flag", description="flag: store and raise naming_violation; strict: 422")
    qr_signing_key: SecretStr | None = Field(
        default=None, description="Ed25519 seed for QR codes, 32 bytes in base64url; unset: "
        "derived from the pseudonym secret")
    sse_max_per_token: int = Field(default=20, ge=1, le=10_000,
                                   description="open alert streams per staff token")
    sse_max_streams: int = Field(default=2_000, ge=1, le=100_000,
                                 description="open alert streams per API process")
    sse_keepalive_s: float = Field(default=15.0, gt=0, le=300)
    surveillance_refresh_s: float = Field(default=30.0, ge=1, le=3600,
                                          description="how often the ward gauges are computed")

    @field_validator("naming_rule")
    @classmethod
    def _naming_rule(cls, value: str) -> str:
        try:
            NamingRule(value)
        except NamingError as exc:
            raise ValueError(str(exc)) from exc
        return value

    @field_validator("qr_signing_key")
    @classmethod
    def _qr_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value()
        try:
            seed = qr_seed(text)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("must be base64url") from exc
        if len(seed) != 32:
            raise ValueError(f"must decode to 32 bytes, got {len(seed)}")
        return value

    @field_validator("ingest_keys", "staff_tokens", mode="before")
    @classmethod
    def _split(cls, value: object) -> tuple[str, ...]:
        if isinstance(value, str):
            items = tuple(v.strip() for v in value.split(",") if v.strip())
        elif isinstance(value, list | tuple):
            items = tuple(str(v) for v in value)
        else:
            raise ValueError("expected a comma-separated string")
        if not items:
            raise ValueError("at least one credential is required")
        return items

    @field_validator("ingest_keys")
    @classmethod
    def _ingest_entries(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        _parse_all(value, parse_ingest_key)
        return value

    @field_validator("staff_tokens")
    @classmethod
    def _staff_entries(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        _parse_all(value, parse_staff_token)
        return value

    @property
    def ingest_entries(self) -> list[CredentialEntry]:
        return _parse_all(self.ingest_keys, parse_ingest_key)

    @property
    def staff_entries(self) -> list[CredentialEntry]:
        return _parse_all(self.staff_tokens, parse_staff_token)

    @model_validator(mode="after")
    def _a_full_batch_fits_the_burst(self) -> ApiSettings:
        if self.declaration_burst < self.batch_max_items:
            raise ValueError(f"declaration_burst ({self.declaration_burst}) must be at least "
                             f"batch_max_items ({self.batch_max_items}): a full batch could "
                             "never be accepted")
        return self

    @model_validator(mode="after")
    def _lookback_within_retention(self) -> ApiSettings:
        if self.exposure_lookback_days > self.retention_days:
            raise ValueError(
                f"exposure_lookback_days ({self.exposure_lookback_days}) must not exceed "
                f"retention_days ({self.retention_days}): nothing older is kept")
        return self

    @field_validator("pseudonym_secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if len(text.encode()) < 16:
            raise ValueError("must be at least 16 bytes")
        if len(set(text)) < 8:
            raise ValueError("is too weak: use a random value (at least 8 distinct characters),"
                             " e.g. `openssl rand -hex 32`")
        return value

    @model_validator(mode="after")
    def _no_development_secrets_in_production(self) -> ApiSettings:
        if self.environment != "production":
            return self
        found = [f"{name} item {i}" for name, entries in (("ingest_keys", self.ingest_entries),
                                                          ("staff_tokens", self.staff_entries))
                 for i, e in enumerate(entries) if development_secret(e.secret)]
        found += [name for name, value in (("pseudonym_secret", self.pseudonym_secret),
                                           ("qr_signing_key", self.qr_signing_key))
                  if value is not None and development_secret(value.get_secret_value())]
        if found:
            raise ValueError(f"development or placeholder secrets in production: "
                             f"{', '.join(found)}; use random values (e.g. `openssl rand "
                             "-hex 32`) or set VHC_ENVIRONMENT=development")
        return self

    @model_validator(mode="after")
    def _credentials_not_shared(self) -> ApiSettings:
        shared = ({e.secret for e in self.ingest_entries}
                  & {e.secret for e in self.staff_entries})
        if shared:
            raise ValueError(f"{len(shared)} credential(s) are both an ingest key and a staff "
                             "token: give each role its own")
        return self


def _parse_all(items: tuple[str, ...],
               parse: Callable[[str], CredentialEntry]) -> list[CredentialEntry]:
    """Every entry parsed; errors name the item's position, never its text (a secret)."""
    out: list[CredentialEntry] = []
    problems: list[str] = []
    for index, item in enumerate(items):
        try:
            out.append(parse(item))
        except ValueError as exc:
            problems.append(f"item {index}: {exc}")
    if problems:
        raise ValueError("; ".join(problems))
    secrets = [e.secret for e in out]
    if len(set(secrets)) != len(secrets):
        raise ValueError("the same credential is listed twice")
    return out
