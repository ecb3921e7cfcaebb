"""Every decoder of stored state and of records read from Kafka, fed arbitrary input
(hypothesis): it returns a value or raises its one documented error, never anything
else, so a corrupt record goes to the dead-letter topic and corrupt state is named,
instead of an unexplained crash. Valid encodings round-trip."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.counts import HourBucket
from detectors.errors import StateDecodeError
from detectors.outbreak import OutbreakAreaHistory
from ingest_api.sse import parse_event_id
from streams.counting import CheckpointRecent, RawRecord, decode
from streams.errors import BadRecordError
from streams.pipeline import CheckpointEnvelope, PartitionClock, decode_tick
from streams.wards import WardEnvelope, decode_ward_record
from vhc_common.qr import QrPayloadError, parse_payload

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=5),
    max_leaves=20)


def json_like(keys: list[str]) -> st.SearchStrategy[str]:
    """JSON text close to a real encoding: the right keys with values of any kind, or
    a list of any values, or any JSON at all, or any text."""
    return st.one_of(
        st.fixed_dictionaries({k: json_values for k in keys}).map(json.dumps),
        st.lists(json_values, max_size=6).map(json.dumps),
        json_values.map(json.dumps),
        st.text(max_size=50),
        st.integers(1, 4000).map(lambda n: "[" * n),  # deeply nested
    )


STATE_DECODERS: list[tuple[str, Callable[[str], Any], list[str]]] = [
    ("checkpoint envelope", CheckpointEnvelope.decode,
     ["v", "o", "fr", "cur", "st", "new", "re", "late", "ser", "cl", "vo", "ab", "ob"]),
    ("ward envelope", WardEnvelope.decode, ["v", "o", "m", "c", "cur", "s", "a", "ob", "f"]),
    ("partition clock", PartitionClock.decode, []),
    ("checkpoint recent", CheckpointRecent.decode, ["newest_ms", "hours"]),
    ("outbreak history", OutbreakAreaHistory.decode, []),
]


@pytest.mark.parametrize(("name", "decoder", "keys"), STATE_DECODERS,
                         ids=[n for n, _, _ in STATE_DECODERS])
def test_state_decoders_raise_only_state_decode_error(
        name: str, decoder: Callable[[str], Any], keys: list[str]) -> None:
    @settings(max_examples=300, deadline=None)
    @given(text=json_like(keys))
    def check(text: str) -> None:
        with contextlib.suppress(StateDecodeError):
            decoder(text)

    check()


@settings(max_examples=300, deadline=None)
@given(hour=st.integers(0, 10**7), data=st.binary(max_size=200))
def test_hour_buckets_raise_only_state_decode_error(hour: int, data: bytes) -> None:
    with contextlib.suppress(StateDecodeError):
        HourBucket.decode(hour, data)


RECORD_DECODERS: list[tuple[str, Callable[[bytes], Any], list[str]]] = [
    ("by-ward record", decode_ward_record, ["v", "k", "w", "c", "h", "t", "p"]),
    ("tick", decode_tick, ["wall_ms"]),
    ("declaration", lambda v: decode(RawRecord("declarations.v1", 0, 0, None, v)),
     ["schema_version", "declaration_id", "checkpoint_id", "scanned_at", "received_at",
      "person", "symptoms", "contact", "travel_from"]),
]


@pytest.mark.parametrize(("name", "decoder", "keys"), RECORD_DECODERS,
                         ids=[n for n, _, _ in RECORD_DECODERS])
def test_record_decoders_raise_only_bad_record_error(
        name: str, decoder: Callable[[bytes], Any], keys: list[str]) -> None:
    @settings(max_examples=300, deadline=None)
    @given(data=st.one_of(json_like(keys).map(str.encode), st.binary(max_size=100)))
    def check(data: bytes) -> None:
        with contextlib.suppress(BadRecordError):
            decoder(data)

    check()


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60))
def test_event_ids_and_qr_payloads(text: str) -> None:
    parsed = parse_event_id(text)
    assert parsed is None or (0 <= parsed[0] < 2**64 and 0 <= parsed[1] < 2**64)
    with contextlib.suppress(QrPayloadError):
        parse_payload(text)


def test_valid_encodings_round_trip() -> None:
    clock = PartitionClock(live_ms=5, backlog_ms=3, members={"CP": ["live", 7]},
                           next_offset=9)
    assert PartitionClock.decode(clock.encode()) == clock
    recent = CheckpointRecent(newest_ms=12, hours={1, 2})
    assert CheckpointRecent.decode(recent.encode()) == recent
    envelope = CheckpointEnvelope.decode(None)
    assert CheckpointEnvelope.decode(envelope.encode()).encode() == envelope.encode()
    assert decode_tick(json.dumps({"wall_ms": 42}).encode()) == 42


@pytest.mark.parametrize("text", ["[Infinity, 0, 0, {}, 0]", '{"newest_ms": 1e999, "hours": []}',
                                  "[[-Infinity, []]]"])
def test_infinite_numbers_are_malformed_state(text: str) -> None:
    """Found by the hypothesis tests above: ``int(inf)`` raised OverflowError."""
    for decoder in (PartitionClock.decode, CheckpointRecent.decode,
                    OutbreakAreaHistory.decode):
        with contextlib.suppress(StateDecodeError):
            decoder(text)
