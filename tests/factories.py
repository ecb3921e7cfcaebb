"""Builders of test data shared by the test tiers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from vhc_common.schemas import (
    AlertEvent,
    AlertKind,
    DeclarationEvent,
    Evidence,
    PersonRef,
    Severity,
)

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def declaration_in(**overrides: Any) -> dict[str, Any]:
    """A valid ``POST /v1/declarations`` body; override any field."""
    body: dict[str, Any] = {
        "declaration_id": str(uuid.uuid4()),
        "checkpoint_id": "PY-XH-CHO",
        "scanned_at": T0.isoformat(),
        "person": {"id_number": "001203004005", "phone": "0912345678",
                   "full_name": "Nguyễn Văn A", "birth_year": 1980},
        "temperature_c": 36.6,
        "symptoms": [],
        "contact": "none",
        "travel_from": [],
    }
    body.update(overrides)
    return body


def declaration_event(**overrides: Any) -> DeclarationEvent:
    """A valid ``declarations.v1`` event; override any field."""
    fields: dict[str, Any] = {
        "declaration_id": uuid.uuid4(),
        "checkpoint_id": "PY-XH-CHO",
        "scanned_at": T0,
        "received_at": T0,
        "person": PersonRef(key="a" * 32, id_key="a" * 32),
    }
    fields.update(overrides)
    return DeclarationEvent(**fields)


def alert_event(*, key: str, kind: str = "fever", checkpoint_id: str | None = None,
                ward_code: str | None = None) -> AlertEvent:
    """A valid ``alerts.v1`` event (``key`` makes its id); close contacts are critical."""
    from detectors.alerts import make_alert

    return make_alert(
        kind=AlertKind(kind), condition=(key,),
        severity=Severity.CRITICAL if kind == "close_contact" else Severity.WARNING,
        detected_at_ms=int(T0.timestamp() * 1000), vi="cảnh báo thử", en="test alert",
        evidence=Evidence(method="test"), checkpoint_id=checkpoint_id, ward_code=ward_code)
