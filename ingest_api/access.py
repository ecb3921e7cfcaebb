"""Who may do what, where: roles and area scopes of staff tokens and front-end keys.

A staff token entry is ``TOKEN`` (an unrestricted admin) or ``TOKEN:ROLE:AREA``; a front-end
key entry is ``KEY`` (any checkpoint) or ``KEY:AREA`` (contract v1.1). ``AREA`` is a
5-digit official ward code, a 2-digit province code, or ``*``. Roles are ordered: each one
may do everything the ones before it may.

============  ====================================================================
role          may
============  ====================================================================
viewer        read alerts, statistics, checkpoints, reports, the SSE stream
responder     also acknowledge and resolve alerts
case_officer  also report confirmed cases
admin         also change the registry and the outbreak-area list
============  ====================================================================

A scoped credential sees and acts only on checkpoints and ward-level alerts in its area:
listings and the stream leave the rest out; a direct request for them is refused (403).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import cache

from vietnam_provinces import Province, ProvinceCode

from vhc_common.wards import UnknownWardError, lookup_ward

__all__ = [
    "EVERYWHERE",
    "Area",
    "CredentialEntry",
    "Principal",
    "Role",
    "parse_ingest_key",
    "parse_staff_token",
]


class Role(IntEnum):
    VIEWER = 1
    RESPONDER = 2
    CASE_OFFICER = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        return self.name.lower()


@cache
def _province_exists(code: str) -> bool:
    try:
        Province.from_code(ProvinceCode(int(code)))
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Area:
    """Everywhere (``code`` ``None``), one ward (5 digits) or one province (2 digits)."""

    code: str | None = None

    @classmethod
    def parse(cls, text: str) -> Area:
        if text == "*":
            return cls(None)
        if not (text.isascii() and text.isdigit() and len(text) in (2, 5)):
            raise ValueError("an area is a 5-digit ward code, a 2-digit province code or *")
        if len(text) == 5:
            try:
                lookup_ward(text)
            except UnknownWardError as exc:
                raise ValueError(f"{text} is not an official ward code") from exc
        elif not _province_exists(text):
            raise ValueError(f"{text} is not a province code")
        return cls(text)

    @property
    def everywhere(self) -> bool:
        return self.code is None

    def covers_ward(self, ward_code: str | None) -> bool:
        """Whether a checkpoint or alert of this ward lies in the area. Something without a
        known ward lies only in the unrestricted area."""
        if self.code is None:
            return True
        if ward_code is None:
            return False
        if len(self.code) == 5:
            return ward_code == self.code
        try:
            return lookup_ward(ward_code).province_code == self.code
        except UnknownWardError:
            return False

    def __str__(self) -> str:
        return self.code or "*"


EVERYWHERE = Area()


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: its non-secret ``label`` (used in audit records and for
    rate limits), its role and its area."""

    label: str
    role: Role = Role.ADMIN
    area: Area = EVERYWHERE

    def may(self, role: Role) -> bool:
        return self.role >= role


@dataclass(frozen=True, slots=True)
class CredentialEntry:
    secret: str
    role: Role
    area: Area


def _secret(text: str) -> str:
    if len(text) < 16:
        raise ValueError("a credential must be at least 16 characters")
    return text


def parse_staff_token(entry: str) -> CredentialEntry:
    """``TOKEN`` or ``TOKEN:ROLE:AREA``. Error messages never contain the token."""
    parts = entry.split(":")
    if len(parts) == 1:
        return CredentialEntry(_secret(parts[0]), Role.ADMIN, EVERYWHERE)
    if len(parts) != 3:
        raise ValueError("a staff token entry is TOKEN or TOKEN:ROLE:AREA")
    secret, role_text, area_text = parts
    try:
        role = Role[role_text.upper()]
    except KeyError:
        raise ValueError(f"unknown role {role_text[:20]!r}: one of "
                         f"{', '.join(r.label for r in Role)}") from None
    return CredentialEntry(_secret(secret), role, Area.parse(area_text))


def parse_ingest_key(entry: str) -> CredentialEntry:
    """``KEY`` or ``KEY:AREA``. Error messages never contain the key."""
    parts = entry.split(":")
    if len(parts) == 1:
        return CredentialEntry(_secret(parts[0]), Role.ADMIN, EVERYWHERE)
    if len(parts) != 2:
        raise ValueError("an ingest key entry is KEY or KEY:AREA")
    return CredentialEntry(_secret(parts[0]), Role.ADMIN, Area.parse(parts[1]))
