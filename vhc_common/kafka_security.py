"""How every Kafka client of a process connects: plaintext (the default, for a private
network and the local broker), TLS, SASL, or SASL over TLS.

Read once per process from ``VHC_KAFKA_*`` (``KafkaSecuritySettings``; each deployable's
``main`` reads it at start so a bad value stops it at once) and turned into the options of
each client library: ``client_options`` for kafka-python (the ingest producer, admin and
offset reads) and aiokafka (the notifier, the registry replay, the outbreak-area mirror),
``faust_credentials`` for the worker.
"""

from __future__ import annotations

import ssl
from functools import cache
from pathlib import Path
from typing import Any, Literal

import faust
from aiokafka.helpers import create_ssl_context
from faust.types.auth import CredentialsT
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "KafkaSecuritySettings",
    "client_options",
    "current",
    "faust_credentials",
]


class KafkaSecuritySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VHC_KAFKA_", extra="ignore")

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="how clients reach the brokers")
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = Field(default=None, description="CA bundle that signed the "
                                    "brokers' certificates (default: the system's)")
    ssl_certfile: Path | None = Field(default=None, description="client certificate (mTLS)")
    ssl_keyfile: Path | None = None

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL")

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecuritySettings:
        if self.sasl and (not self.sasl_username or self.sasl_password is None):
            raise ValueError(f"{self.security_protocol} needs VHC_KAFKA_SASL_USERNAME and "
                             "VHC_KAFKA_SASL_PASSWORD")
        if not self.tls and (self.ssl_cafile or self.ssl_certfile or self.ssl_keyfile):
            raise ValueError("VHC_KAFKA_SSL_* files are given but the security protocol "
                             f"{self.security_protocol} does not use TLS")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("VHC_KAFKA_SSL_CERTFILE and VHC_KAFKA_SSL_KEYFILE go together")
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"VHC_KAFKA_{name.upper()}: no such file")
        return self

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context: ssl.SSLContext = create_ssl_context(
            cafile=self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile)
        return context


@cache
def current() -> KafkaSecuritySettings:
    """This process's settings (read from the environment once)."""
    return KafkaSecuritySettings()


def _password(settings: KafkaSecuritySettings) -> str | None:
    return settings.sasl_password.get_secret_value() if settings.sasl_password else None


def client_options(settings: KafkaSecuritySettings | None = None) -> dict[str, Any]:
    """Keyword arguments for kafka-python's ``KafkaProducer``/``KafkaConsumer``/
    ``KafkaAdminClient`` and aiokafka's consumers and producers (both take these names)."""
    s = settings or current()
    if s.security_protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": s.security_protocol}
    if s.tls:
        options["ssl_context"] = s.ssl_context()
    if s.sasl:
        options |= {"sasl_mechanism": s.sasl_mechanism, "sasl_plain_username": s.sasl_username,
                    "sasl_plain_password": _password(s)}
    return options


def faust_credentials(settings: KafkaSecuritySettings | None = None) -> CredentialsT | None:
    """``broker_credentials`` for ``faust.App`` (``None``: plaintext)."""
    s = settings or current()
    if s.sasl:
        return faust.SASLCredentials(username=s.sasl_username, password=_password(s),
                                     ssl_context=s.ssl_context(), mechanism=s.sasl_mechanism)
    if s.tls:
        return faust.SSLCredentials(s.ssl_context())
    return None
