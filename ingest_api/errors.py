"""Errors of the API process; mapped to HTTP answers in ``ingest_api.main`` only."""

from __future__ import annotations

__all__ = [
    "BrokerUnavailableError",
    "ConflictError",
    "IngestApiError",
    "NotFoundError",
    "StoreUnavailableError",
]


class IngestApiError(Exception):
    """Root of every error raised by ``ingest_api``."""


class BrokerUnavailableError(IngestApiError):
    """Kafka did not acknowledge in time (answered 503 with Retry-After)."""


class StoreUnavailableError(IngestApiError):
    """Redis did not answer (answered 503 with Retry-After)."""


class NotFoundError(IngestApiError):
    """The resource does not exist (404)."""


class ConflictError(IngestApiError):
    """The resource exists already (409)."""
