"""Roles and area scopes of credentials (contract v1.1): parsing, settings, coverage."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ingest_api.access import Area, Role, parse_ingest_key, parse_staff_token
from ingest_api.config import ApiSettings
from ingest_api.security import CredentialSet
from vhc_common.settings import settings_errors

TOKEN = "staff-token-0123456789"
KEY = "ingest-key-0123456789"
BASE = {"environment": "development", "kafka_bootstrap": "localhost:9092", "redis_url": "redis://localhost:6379/0",
        "pseudonym_secret": "a-random-value-9f8e7d6c5b4a"}


def test_a_plain_token_is_an_unrestricted_admin() -> None:
    entry = parse_staff_token(TOKEN)
    assert (entry.secret, entry.role, entry.area) == (TOKEN, Role.ADMIN, Area(None))


@pytest.mark.parametrize(("text", "role", "area"), [
    (f"{TOKEN}:viewer:08749", Role.VIEWER, "08749"),
    (f"{TOKEN}:responder:25", Role.RESPONDER, "25"),
    (f"{TOKEN}:case_officer:*", Role.CASE_OFFICER, None),
    (f"{TOKEN}:ADMIN:01", Role.ADMIN, "01"),
])
def test_scoped_tokens(text: str, role: Role, area: str | None) -> None:
    entry = parse_staff_token(text)
    assert (entry.secret, entry.role, entry.area.code) == (TOKEN, role, area)


@pytest.mark.parametrize(("text", "message"), [
    (f"{TOKEN}:boss:*", "unknown role"),
    (f"{TOKEN}:viewer", "TOKEN:ROLE:AREA"),
    (f"{TOKEN}:viewer:*:extra", "TOKEN:ROLE:AREA"),
    (f"{TOKEN}:viewer:99999", "not an official ward code"),
    (f"{TOKEN}:viewer:03", "not a province code"),
    (f"{TOKEN}:viewer:٠٨٧٤٩", "5-digit ward code"),
    (f"{TOKEN}:viewer:123", "5-digit ward code"),
    ("short:viewer:*", "at least 16 characters"),
])
def test_bad_token_entries_are_refused_without_the_secret(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_staff_token(text)
    assert TOKEN not in str(caught.value)


def test_ingest_keys() -> None:
    assert parse_ingest_key(KEY).area.everywhere
    assert parse_ingest_key(f"{KEY}:08749").area == Area("08749")
    with pytest.raises(ValueError, match="KEY or KEY:AREA"):
        parse_ingest_key(f"{KEY}:viewer:08749")


def test_area_coverage() -> None:
    ward, province, everywhere = Area.parse("08749"), Area.parse("25"), Area.parse("*")
    assert ward.covers_ward("08749") and not ward.covers_ward("00004")
    assert province.covers_ward("08749")  # Xuân Hòa lies in Phú Thọ (25)
    assert not province.covers_ward("00004")  # Ba Đình, Hà Nội (01)
    assert everywhere.covers_ward("00004") and everywhere.covers_ward(None)
    # Something without a known ward only the unrestricted area sees.
    assert not ward.covers_ward(None) and not province.covers_ward(None)
    assert not province.covers_ward("99999")


def test_roles_are_ordered() -> None:
    assert Role.ADMIN > Role.CASE_OFFICER > Role.RESPONDER > Role.VIEWER


def test_settings_parse_scoped_entries_and_refuse_bad_ones_without_values() -> None:
    settings = ApiSettings(**BASE, ingest_keys=f"{KEY}:08749",
                           staff_tokens=f"{TOKEN}:viewer:25,other-token-0123456789")
    assert [e.role for e in settings.staff_entries] == [Role.VIEWER, Role.ADMIN]
    assert settings.ingest_entries[0].area == Area("08749")
    for bad in (f"{TOKEN}:boss:*", f"{TOKEN},{TOKEN}:viewer:*"):
        with pytest.raises(ValidationError) as caught:
            ApiSettings(**BASE, ingest_keys=KEY, staff_tokens=bad)
        shown = settings_errors(caught.value)  # what the process prints on a bad start
        assert "VHC_STAFF_TOKENS" in shown and TOKEN not in shown
    # The same secret as a key and as a scoped token is refused too.
    with pytest.raises(ValidationError, match="both an ingest key and a staff token"):
        ApiSettings(**BASE, ingest_keys=KEY, staff_tokens=f"{KEY}:viewer:*")


def test_credential_set_gives_the_principal() -> None:
    creds = CredentialSet([parse_staff_token(f"{TOKEN}:responder:08749"),
                           parse_staff_token("admin-token-0123456789")], key=b"k" * 32)
    who = creds.check(TOKEN)
    assert who is not None and who.role == Role.RESPONDER and who.area == Area("08749")
    assert who.may(Role.VIEWER) and who.may(Role.RESPONDER) and not who.may(Role.CASE_OFFICER)
    admin = creds.check("admin-token-0123456789")
    assert admin is not None and admin.role == Role.ADMIN and admin.area.everywhere
    assert creds.check(f"{TOKEN}:responder:08749") is None  # the entry is not the secret


@pytest.mark.parametrize("override", [
    {"staff_tokens": "dev-staff-0123456789abcdef"},          # made by make up
    {"ingest_keys": "dev-ingest-0123456789abcdef:08749"},
    {"pseudonym_secret": "change-me-to-a-random-value"},      # copied from an example
    {"qr_signing_key": None, "pseudonym_secret": "it-pseudonym-secret-0123456789"},
])
def test_production_refuses_development_secrets(override: dict[str, str | None]) -> None:
    values: dict[str, object] = {**BASE, "ingest_keys": KEY, "staff_tokens": TOKEN,
                                 "pseudonym_secret": "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
                                 **{k: v for k, v in override.items() if v is not None}}
    ApiSettings(**{**values, "environment": "development"})  # accepted for development
    with pytest.raises(ValidationError, match="development or placeholder secrets") as caught:
        ApiSettings(**{**values, "environment": "production"})
    shown = settings_errors(caught.value)
    assert all(str(v) not in shown for v in override.values() if v)


def test_production_is_the_default_and_takes_random_values() -> None:
    values = {k: v for k, v in BASE.items() if k != "environment"}
    values |= {"ingest_keys": "9c1f0e7d2b3a4c5d6e7f8091",
               "staff_tokens": "a1b2c3d4e5f60718293a4b5c:viewer:*",
               "pseudonym_secret": "9f8e7d6c5b4a39281706f5e4d3c2b1a0"}
    settings = ApiSettings(**values)
    assert settings.environment == "production"
