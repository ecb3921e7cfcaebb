"""Pseudonymisation: stable, keyed, and nothing identifying survives into the event."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.factories import T0, declaration_in
from vhc_common.pseudonym import Pseudonymiser
from vhc_common.schemas import DeclarationEvent, DeclarationIn, PersonIn, PersonRef

SECRET = b"0123456789abcdef-test-secret"


def test_keys_are_stable_and_canonical() -> None:
    p = Pseudonymiser(SECRET)
    a = p.person(PersonIn(phone="+84 912 345 678"))
    b = p.person(PersonIn(phone="0912345678"))
    assert a == b
    assert a.key == a.phone_key and a.id_key is None


def test_key_is_the_documented_hmac() -> None:
    expected = hmac.new(SECRET, b"id:001203004005", hashlib.sha256).hexdigest()[:32]
    assert Pseudonymiser(SECRET).id_key("001203004005") == expected


@given(st.binary(min_size=16, max_size=200), st.text(max_size=40),
       st.sampled_from([b"id", b"phone"]))
def test_every_key_is_the_hmac_of_its_domain_and_value(secret: bytes, value: str,
                                                       domain: bytes) -> None:
    # The keyed state is set up once and copied per key; any secret length (over the
    # 64-byte block HMAC hashes the secret first) and any value give the plain HMAC, and a
    # key does not change what the next one starts from.
    p = Pseudonymiser(secret)
    for _ in range(2):
        key = p.id_key(value) if domain == b"id" else p.phone_key(value)
        assert key == hmac.new(secret, domain + b":" + value.encode(),
                               hashlib.sha256).hexdigest()[:32]


def test_keys_depend_on_the_secret() -> None:
    one = Pseudonymiser(SECRET).id_key("001203004005")
    other = Pseudonymiser(SECRET + b"x").id_key("001203004005")
    assert one != other
    # An unkeyed hash of the number (what an attacker could brute-force) is not the key.
    assert one not in hashlib.sha256(b"001203004005").hexdigest()


def test_id_and_phone_domains_do_not_collide() -> None:
    p = Pseudonymiser(SECRET)
    assert p.id_key("0912345678") != p.phone_key("0912345678")


def test_id_number_is_the_person_key_when_given() -> None:
    ref = Pseudonymiser(SECRET).person(PersonIn(id_number="123456789", phone="0912345678"))
    assert ref.key == ref.id_key != ref.phone_key


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes, got 5"):
        Pseudonymiser(b"short")


def test_no_clear_identifier_survives_in_the_published_event() -> None:
    body = declaration_in(person={"id_number": "001203004005", "phone": "+84 912 345 678",
                                  "full_name": "Nguyễn Văn A", "birth_year": 1980})
    decl = DeclarationIn.model_validate(body)
    event = DeclarationEvent(
        declaration_id=decl.declaration_id, checkpoint_id=decl.checkpoint_id,
        scanned_at=decl.scanned_at, received_at=T0,
        person=Pseudonymiser(SECRET).person(decl.person),
    )
    published = event.model_dump_json()
    for clear in ("001203004005", "912345678", "0912345678", "Nguyễn", "Văn A"):
        assert clear not in published
    assert '"birth_year":1980' in published


@given(id_number=st.one_of(st.none(), st.from_regex(r"\A([0-9]{9}|[0-9]{12})\Z")),
       phone=st.one_of(st.none(), st.from_regex(r"\A0[0-9]{9,10}\Z")),
       birth_year=st.one_of(st.none(), st.integers(1900, 2100)))
def test_person_ref_is_valid_as_built(id_number: str | None, phone: str | None,
                                      birth_year: int | None) -> None:
    # person() builds the PersonRef without validating it again: what it builds must be
    # what validation would have made (same fields, same published JSON).
    assume(id_number is not None or phone is not None)
    ref = Pseudonymiser(SECRET).person(PersonIn(id_number=id_number, phone=phone,
                                                birth_year=birth_year))
    validated = PersonRef.model_validate(ref.model_dump())
    assert validated == ref
    assert validated.model_dump_json() == ref.model_dump_json()
    assert ref.model_fields_set == validated.model_fields_set
