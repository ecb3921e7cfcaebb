"""The ingest builds the published event without validating it again: it must still be
exactly the event a validated construction gives, for any valid declaration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_api.ingest import IngestService
from ingest_api.metrics import ApiMetrics
from vhc_common.pseudonym import Pseudonymiser
from vhc_common.schemas import Contact, DeclarationEvent, DeclarationIn, Symptom

SERVICE = IngestService(publisher=None, seen=None,  # type: ignore[arg-type]
                        pseudonymiser=Pseudonymiser(b"k" * 32), metrics=ApiMetrics(),
                        max_future_skew_s=120, retention_days=21)

declarations = st.builds(
    lambda symptoms, contact, travel, temp, phone, minutes: DeclarationIn.model_validate({
        "declaration_id": str(uuid4()), "checkpoint_id": "PY-XH-CHO",
        "scanned_at": (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat(),
        "person": {"id_number": "012345678901", **({"phone": "0912345678"} if phone else {}),
                   "full_name": "Nguyễn Văn A"},
        "temperature_c": temp, "symptoms": symptoms, "contact": contact,
        "travel_from": travel}),
    st.lists(st.sampled_from([s.value for s in Symptom]), max_size=4),
    st.sampled_from([c.value for c in Contact]),
    st.lists(st.sampled_from(["08749", "HN", "a.b-c_1"]), max_size=4),
    st.one_of(st.none(), st.floats(30, 45)), st.booleans(), st.integers(0, 10_000))


@settings(max_examples=100, deadline=None)
@given(declarations)
def test_constructed_event_equals_the_validated_one(item: DeclarationIn) -> None:
    received = datetime.now(UTC)
    built = SERVICE._event(item, received)
    text = built.model_dump_json()
    validated = DeclarationEvent.model_validate_json(text)
    assert validated.model_dump_json() == text
    as_dict: dict[str, Any] = validated.model_dump(mode="json")
    assert as_dict["schema_version"] == 1
    assert as_dict["travel_from"] == list(dict.fromkeys(item.travel_from))
    assert "Nguyễn" not in text and "012345678901" not in text  # pseudonymised
