"""Per-declaration alerts: one alert per flagged declaration, of its most serious kind.

Kinds, most serious first: ``close_contact`` (contact with F0, F1 or a suspected case),
``travel_from_outbreak_area``, ``fever``, ``symptomatic_declaration``. ``evidence.flags``
lists every flag the declaration raised, by these names.

Severity follows the combination:

=====================================================  ========
contact with F0 (with or without symptoms)             critical
contact with F1 or a suspected case, and any symptom   critical
travel from an outbreak area, and any symptom          critical
contact with F1 or a suspected case, no symptom        warning
travel from an outbreak area, no symptom               warning
fever (measured or declared)                           warning
other symptoms only                                    info
=====================================================  ========

Stateless: the declaration and the outbreak areas in force at its ``scanned_at`` decide.
"""

from __future__ import annotations

from detectors.alerts import make_alert
from detectors.flags import DeclarationFlags as F
from vhc_common.schemas import AlertEvent, AlertKind, DeclarationEvent, Evidence, Severity
from vhc_common.timebase import to_ms

__all__ = ["declaration_alert"]

_CONTACT = F.CONTACT_F0 | F.CONTACT_F1 | F.CONTACT_SUSPECTED

_TEXT = {
    AlertKind.CLOSE_CONTACT: ("Người khai báo có tiếp xúc gần với {contact_vi} tại {cp}",
                              "Declarant reports close contact with {contact_en} at {cp}"),
    AlertKind.TRAVEL_FROM_OUTBREAK_AREA: (
        "Người khai báo đến từ vùng dịch ({areas}) tại {cp}",
        "Declarant comes from an outbreak area ({areas}) at {cp}",
    ),
    AlertKind.FEVER: ("Người khai báo bị sốt tại {cp}", "Declarant has a fever at {cp}"),
    AlertKind.SYMPTOMATIC_DECLARATION: ("Người khai báo có triệu chứng ({symptoms}) tại {cp}",
                                        "Declarant reports symptoms ({symptoms}) at {cp}"),
}

_CONTACT_VI = {"f0": "ca bệnh (F0)", "f1": "người tiếp xúc gần (F1)",
               "suspected": "trường hợp nghi ngờ"}
_CONTACT_EN = {"f0": "a confirmed case (F0)", "f1": "a close contact (F1)",
               "suspected": "a suspected case"}


def _kinds(flags: F) -> list[AlertKind]:
    kinds = []
    if flags & _CONTACT:
        kinds.append(AlertKind.CLOSE_CONTACT)
    if flags & F.TRAVEL_FROM_OUTBREAK:
        kinds.append(AlertKind.TRAVEL_FROM_OUTBREAK_AREA)
    if flags & F.FEVER:
        kinds.append(AlertKind.FEVER)
    if flags & F.SYMPTOMATIC:
        kinds.append(AlertKind.SYMPTOMATIC_DECLARATION)
    return kinds


def _severity(flags: F) -> Severity:
    symptomatic = bool(flags & F.SYMPTOMATIC)
    if flags & F.CONTACT_F0:
        return Severity.CRITICAL
    if flags & (F.CONTACT_F1 | F.CONTACT_SUSPECTED | F.TRAVEL_FROM_OUTBREAK):
        return Severity.CRITICAL if symptomatic else Severity.WARNING
    if flags & F.FEVER:
        return Severity.WARNING
    return Severity.INFO


def declaration_alert(
    declaration: DeclarationEvent,
    flags: F,
    *,
    outbreak_areas: frozenset[str],
    ward_code: str | None,
) -> AlertEvent | None:
    """The alert for one declaration, or ``None`` when it raised no flag."""
    if not flags:  # most declarations (and IntFlag's ``&`` is slow Python)
        return None
    kinds = _kinds(flags)
    if not kinds:
        return None
    kind = kinds[0]
    scanned_at_ms = to_ms(declaration.scanned_at)
    vi, en = _TEXT[kind]
    values = {
        "cp": declaration.checkpoint_id,
        "contact_vi": _CONTACT_VI.get(declaration.contact.value, ""),
        "contact_en": _CONTACT_EN.get(declaration.contact.value, ""),
        "areas": ", ".join(a for a in declaration.travel_from if a in outbreak_areas),
        "symptoms": ", ".join(declaration.symptoms) or f"{declaration.temperature_c} °C",
    }
    return make_alert(
        kind=kind,
        condition=(declaration.declaration_id,),
        severity=_severity(flags),
        detected_at_ms=scanned_at_ms,
        vi=vi.format(**values),
        en=en.format(**values),
        checkpoint_id=declaration.checkpoint_id,
        ward_code=ward_code,
        evidence=Evidence(
            method="rule",
            observed=declaration.temperature_c,
            declaration_ids=(declaration.declaration_id,),
            flags=tuple(kinds),
            person_keys=(declaration.person.key,),
        ),
    )
