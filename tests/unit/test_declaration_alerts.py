"""Per-declaration alerts: the most serious kind, every flag, severity by combination."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.declaration_alerts import declaration_alert
from detectors.flags import FlagPolicy, flags_of
from detectors.outbreak import OutbreakAreaChange, OutbreakAreaHistory
from tests.factories import declaration_event
from vhc_common.schemas import AlertKind as K
from vhc_common.schemas import Severity as S

AREAS = frozenset({"01"})


@pytest.mark.parametrize(
    ("fields", "kind", "flags", "severity"),
    [
        ({"contact": "f0"}, K.CLOSE_CONTACT, [K.CLOSE_CONTACT], S.CRITICAL),
        ({"contact": "f1"}, K.CLOSE_CONTACT, [K.CLOSE_CONTACT], S.WARNING),
        ({"contact": "f1", "symptoms": ("cough",)}, K.CLOSE_CONTACT,
         [K.CLOSE_CONTACT, K.SYMPTOMATIC_DECLARATION], S.CRITICAL),
        ({"contact": "suspected", "temperature_c": 38.0}, K.CLOSE_CONTACT,
         [K.CLOSE_CONTACT, K.FEVER, K.SYMPTOMATIC_DECLARATION], S.CRITICAL),
        ({"travel_from": ("01",)}, K.TRAVEL_FROM_OUTBREAK_AREA, [K.TRAVEL_FROM_OUTBREAK_AREA],
         S.WARNING),
        ({"travel_from": ("01",), "symptoms": ("fever",)}, K.TRAVEL_FROM_OUTBREAK_AREA,
         [K.TRAVEL_FROM_OUTBREAK_AREA, K.FEVER, K.SYMPTOMATIC_DECLARATION], S.CRITICAL),
        ({"temperature_c": 37.5}, K.FEVER, [K.FEVER, K.SYMPTOMATIC_DECLARATION], S.WARNING),
        ({"symptoms": ("fatigue",)}, K.SYMPTOMATIC_DECLARATION, [K.SYMPTOMATIC_DECLARATION],
         S.INFO),
    ],
)
def test_kind_flags_and_severity(fields: dict[str, Any], kind: K, flags: list[K],
                                 severity: S) -> None:
    event = declaration_event(**fields)
    alert = declaration_alert(event, flags_of(event, outbreak_areas=AREAS, policy=FlagPolicy()),
                              outbreak_areas=AREAS, ward_code="08749")
    assert alert is not None
    assert (alert.kind, list(alert.evidence.flags), alert.severity) == (kind, flags, severity)
    assert alert.evidence.declaration_ids == (event.declaration_id,)
    assert alert.ward_code == "08749" and alert.detected_at == event.scanned_at
    assert alert.summary.vi and alert.summary.en and alert.summary.vi != alert.summary.en


def test_nothing_to_flag_no_alert() -> None:
    event = declaration_event(travel_from=("79",), temperature_c=36.8)
    flags = flags_of(event, outbreak_areas=AREAS, policy=FlagPolicy())
    assert declaration_alert(event, flags, outbreak_areas=AREAS, ward_code=None) is None


def test_alert_id_is_deterministic_per_declaration() -> None:
    event = declaration_event(contact="f0")
    flags = flags_of(event, outbreak_areas=(), policy=FlagPolicy())
    one = declaration_alert(event, flags, outbreak_areas=frozenset(), ward_code=None)
    two = declaration_alert(event, flags, outbreak_areas=frozenset(), ward_code=None)
    assert one is not None and two is not None and one.alert_id == two.alert_id
    assert one.alert_id.startswith("close_contact-")


def test_outbreak_history_is_judged_at_event_time() -> None:
    history = OutbreakAreaHistory().apply(OutbreakAreaChange(1000, frozenset({"01"})))
    history = history.apply(OutbreakAreaChange(2000, frozenset({"79"})))
    assert history.areas_at(999) == frozenset()
    assert history.areas_at(1000) == {"01"}
    assert history.areas_at(1999) == {"01"}
    assert history.areas_at(5000) == {"79"} == history.current()
    assert OutbreakAreaHistory.decode(history.encode()).areas_at(1500) == {"01"}
    pruned = history.prune(2500)
    assert len(pruned) == 1 and pruned.areas_at(2500) == {"79"}
    assert len(history.prune(1500)) == 2  # keeps the list in force at 1500
