"""The worker's state JSON (vhc_common.fastjson) against the json module it replaced."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from streams.pipeline import CheckpointEnvelope
from vhc_common import fastjson

_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=4) | st.integers(-1000, 1000), inner, max_size=4),
    max_leaves=20)


@given(_values)
def test_it_reads_back_what_json_reads_and_writes_what_json_reads(value: object) -> None:
    ours = fastjson.dumps(value)
    theirs = json.dumps(value, separators=(",", ":"))
    assert json.loads(ours) == json.loads(theirs)  # written: what json would have read
    assert fastjson.loads(theirs) == json.loads(theirs)  # states written before 6/7


def test_ascii_text_is_the_text_json_wrote() -> None:
    value = {"v": 2, "o": 17, "m": {"3": None}, 5: [1.5, -0.0], "ob": [["a", "k", "x"]]}
    assert fastjson.dumps(value) == json.dumps(value, separators=(",", ":"))
    assert fastjson.dumps_bytes(value) == fastjson.dumps(value).encode()
    # Small floats are spelt differently (0.00002 for 2e-05), the same number.
    assert fastjson.loads(fastjson.dumps([2e-05])) == [2e-05]


def test_a_state_with_vietnamese_alert_text_round_trips() -> None:
    env = CheckpointEnvelope(offset=41, cursor=493_000, newest_ms=1_775_000_000_000,
                             outbox=[["a", "PY-XH-CHO", '{"vi":"Ca bệnh đã đến"}']])
    env.series.observe(1_775_000_000_000, symptomatic=True, person_key="p1")
    again = CheckpointEnvelope.decode(env.encode())
    assert again == env
    assert again.outbox[0][2] == '{"vi":"Ca bệnh đã đến"}'
