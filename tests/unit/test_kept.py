"""``streams.kept``: decoded values handed back only while the table holds their form."""

from __future__ import annotations

from streams.kept import KeptDecoded


def test_a_value_comes_back_only_for_its_stored_form_and_only_once() -> None:
    kept: KeptDecoded[list[int]] = KeptDecoded(limit=10)
    value = [1, 2]
    kept.keep("a", b"v1", value)
    assert kept.take("a", b"v2") is None  # the table holds something else now
    assert kept.take("a", b"v1") is None  # and the stale copy is gone
    kept.keep("a", b"v1", value)
    assert kept.take("a", None) is None
    kept.keep("a", b"v1", value)
    assert kept.take("a", b"v1") is value
    assert kept.take("a", b"v1") is None  # taken: out until kept again


def test_the_least_recently_kept_go_first() -> None:
    kept: KeptDecoded[str] = KeptDecoded(limit=2)
    kept.keep("a", 1, "A")
    kept.keep("b", 1, "B")
    kept.keep("a", 2, "A2")  # kept again: now the most recent
    kept.keep("c", 1, "C")
    assert len(kept) == 2
    assert kept.take("b", 1) is None
    assert (kept.take("a", 2), kept.take("c", 1)) == ("A2", "C")


def test_take_or_decode_decodes_only_what_is_not_kept_for_that_form() -> None:
    kept: KeptDecoded[list[bytes]] = KeptDecoded(limit=10)
    decoded: list[bytes | None] = []

    def decode(stored: bytes | None) -> list[bytes]:
        decoded.append(stored)
        return [stored or b""]

    value = [b"v1"]
    kept.keep("a", b"v1", value)
    assert kept.take_or_decode("a", b"v1", decode) is value  # kept: not decoded again
    assert decoded == []
    assert kept.take_or_decode("a", b"v1", decode) == [b"v1"]  # taken before: decoded
    kept.keep("a", b"v1", value)
    assert kept.take_or_decode("a", b"v2", decode) == [b"v2"]  # the table moved on
    assert kept.take_or_decode("b", None, decode) == [b""]  # nothing stored yet
    assert decoded == [b"v1", b"v2", None]
    assert len(kept) == 0
