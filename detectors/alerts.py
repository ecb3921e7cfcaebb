"""What every detector shares: deterministic alert ids and building alert events.

An alert id is ``<kind>-<24 hex>``: the first 96 bits of SHA-256 over the kind and a
*condition key* that names the condition (a declaration id, a checkpoint and an episode
start, ...). Replaying the same events yields the same ids, so consumers store an alert
once however often it is emitted.
"""

from __future__ import annotations

import hashlib

from vhc_common.schemas import AlertEvent, AlertKind, Evidence, Severity, Summary
from vhc_common.timebase import ms_to_datetime

__all__ = ["alert_id", "make_alert"]


def alert_id(kind: AlertKind, *condition: object) -> str:
    material = "|".join([kind.value, *map(str, condition)]).encode()
    return f"{kind.value}-{hashlib.sha256(material).hexdigest()[:24]}"


def make_alert(
    *,
    kind: AlertKind,
    condition: tuple[object, ...],
    severity: Severity,
    detected_at_ms: int,
    vi: str,
    en: str,
    evidence: Evidence,
    checkpoint_id: str | None = None,
    ward_code: str | None = None,
    window_ms: tuple[int, int] | None = None,
) -> AlertEvent:
    return AlertEvent(
        alert_id=alert_id(kind, *condition),
        kind=kind,
        severity=severity,
        checkpoint_id=checkpoint_id,
        ward_code=ward_code,
        detected_at=ms_to_datetime(detected_at_ms),
        window_start=ms_to_datetime(window_ms[0]) if window_ms else None,
        window_end=ms_to_datetime(window_ms[1]) if window_ms else None,
        summary=Summary(vi=vi, en=en),
        evidence=evidence,
    )
