"""Every field rule of a declaration and a checkpoint, good and bad."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tests.factories import declaration_in
from vhc_common.schemas import CheckpointIn, Contact, DeclarationIn, Symptom


def errors_of(body: dict[str, Any], model: Any = DeclarationIn) -> set[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(body)
    return {tuple(e["loc"]) for e in info.value.errors()}


def test_a_complete_declaration_is_valid() -> None:
    decl = DeclarationIn.model_validate(declaration_in(
        symptoms=["cough", "fever", "cough"], contact="f1", travel_from=["79", "HN.BaDinh"]))
    assert decl.symptoms == [Symptom.COUGH, Symptom.FEVER]  # deduplicated, sorted
    assert decl.contact is Contact.F1
    assert decl.person.phone == "0912345678"


def test_defaults_for_optional_fields() -> None:
    body = declaration_in()
    for name in ("temperature_c", "symptoms", "contact", "travel_from"):
        del body[name]
    decl = DeclarationIn.model_validate(body)
    assert (decl.temperature_c, decl.symptoms, decl.contact, decl.travel_from) == (
        None, [], Contact.NONE, [])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("declaration_id", "not-a-uuid"),
        ("declaration_id", None),
        ("checkpoint_id", ""),
        ("checkpoint_id", "has space"),
        ("checkpoint_id", "x" * 65),
        ("checkpoint_id", "a|b"),
        ("scanned_at", "2026-11-26T08:00:00"),  # no offset
        ("scanned_at", "yesterday"),
        ("temperature_c", 29.9),
        ("temperature_c", 45.1),
        ("temperature_c", "hot"),
        ("symptoms", ["sneezing"]),
        ("symptoms", "cough"),
        ("contact", "f2"),
        ("travel_from", ["has space"]),
        ("travel_from", ["x" * 65]),
        ("travel_from", ["79"] * 51),
    ],
)
def test_bad_field_is_named(field: str, value: Any) -> None:
    locs = errors_of(declaration_in(**{field: value}))
    assert any(loc[0] == field for loc in locs), locs


@pytest.mark.parametrize("field", ["declaration_id", "checkpoint_id", "scanned_at", "person"])
def test_required_fields(field: str) -> None:
    body = declaration_in()
    del body[field]
    assert (field,) in errors_of(body)


def test_every_bad_field_is_named_at_once() -> None:
    body = declaration_in(declaration_id="x", temperature_c=99, contact="f9",
                          person={"phone": "12"})
    locs = errors_of(body)
    assert {("declaration_id",), ("temperature_c",), ("contact",), ("person", "phone")} <= locs


@pytest.mark.parametrize(
    ("person", "ok"),
    [
        ({"id_number": "123456789"}, True),  # CMND, 9 digits
        ({"id_number": "001203004005"}, True),  # CCCD, 12 digits
        ({"id_number": "12345678"}, False),
        ({"id_number": "1234567890"}, False),
        ({"id_number": "12345678901a"}, False),
        ({"phone": "0912345678"}, True),
        ({"phone": "+84912345678"}, True),
        ({"phone": "84 912 345 678"}, True),
        ({"phone": "02113123456"}, True),  # landline, 11 digits with the 0
        ({"phone": "091234567"}, False),
        ({"phone": "+1 555 0100"}, False),
        ({"full_name": "Nguyễn Văn A"}, False),  # a name alone identifies nobody reliably
        ({}, False),
        ({"id_number": "123456789", "birth_year": 1899}, False),
    ],
)
def test_person_rules(person: dict[str, Any], ok: bool) -> None:
    body = declaration_in(person=person)
    if ok:
        DeclarationIn.model_validate(body)
    else:
        assert any(loc[0] == "person" for loc in errors_of(body))


@pytest.mark.parametrize("spelling", ["0912345678", "+84912345678", "84912345678",
                                      "091 234 5678", "(+84) 912.345.678"])
def test_phone_spellings_share_one_canonical_form(spelling: str) -> None:
    decl = DeclarationIn.model_validate(declaration_in(person={"phone": spelling}))
    assert decl.person.phone == "0912345678"


def checkpoint(**overrides: Any) -> dict[str, Any]:
    body = {"name": "Chợ Xuân Hòa - Cổng A", "kind": "market", "ward_code": "08749",
            "address": "Chợ Xuân Hòa"}
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ward_code", "8749"),
        ("ward_code", 8749),
        ("ward_code", "08749a"),
        ("kind", "castle"),
        ("name", "ab"),
        ("address", ""),
        ("checkpoint_id", "bad id"),
        ("opening_hours", ["7:00-11:00"]),
        ("opening_hours", ["11:00-07:00"]),
        ("opening_hours", ["07:00-24:30"]),
    ],
)
def test_bad_checkpoint_field_is_named(field: str, value: Any) -> None:
    assert any(loc[0] == field for loc in errors_of(checkpoint(**{field: value}), CheckpointIn))


def test_good_checkpoint() -> None:
    cp = CheckpointIn.model_validate(checkpoint(opening_hours=["07:00-11:30", "13:30-24:00"]))
    assert cp.opening_hours == ["07:00-11:30", "13:30-24:00"]


def test_opening_hours_by_day_of_the_week() -> None:
    cp = CheckpointIn.model_validate(checkpoint(opening_hours="Mo-Fr 07:00-17:00; Sa 08:00-12:00"))
    assert cp.opening_hours == "Mo-Fr 07:00-17:00; Sa 08:00-12:00"
    assert CheckpointIn.model_validate(checkpoint(opening_hours=None)).opening_hours is None


@pytest.mark.parametrize(("hours", "part"), [
    ("Mo-Fr 07:00-17:00; Sa 8:00-12:00", "'8:00-12:00' is not a time span"),
    ("Mo-Fr 07:00-17:00; PH off", "'PH' is not a day selector"),
    ("Mo-Xx 07:00-17:00", "'Xx' is not a day"),
    ([f"{h:02d}:00-{h:02d}:30" for h in range(9)], "at most 8 daily intervals"),
])
def test_malformed_hours_name_the_part_that_is_wrong(hours: Any, part: str) -> None:
    with pytest.raises(ValidationError) as err:
        CheckpointIn.model_validate(checkpoint(opening_hours=hours))
    (error,) = err.value.errors()
    assert error["loc"][0] == "opening_hours" and part in error["msg"]
