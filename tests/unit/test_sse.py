"""The alert feed's pure parts: event ids, per-credential caps, fan-out and overflow."""

from __future__ import annotations

import pytest

from ingest_api.sse import AlertFeed, TooManyStreamsError, parse_event_id


@pytest.mark.parametrize(("text", "parsed"), [
    ("0-0", (0, 0)), ("1732600000000-3", (1732600000000, 3)),
    ("18446744073709551615-0", (2**64 - 1, 0)),
    ("18446744073709551616-0", None), ("99999999999999999999-0", None),
    ("1-2-3", None), ("abc", None), ("", None), ("-1", None), ("1-", None),
    ("١٢-٣", None), ("1" * 4301 + "-0", None),
])
def test_event_ids(text: str, parsed: tuple[int, int] | None) -> None:
    assert parse_event_id(text) == parsed


def test_caps_per_credential_and_process() -> None:
    feed = AlertFeed("redis://127.0.0.1:1/0", max_streams=3, max_per_token=2)
    subs = [feed.subscribe("a"), feed.subscribe("a")]
    with pytest.raises(TooManyStreamsError) as per_token:
        feed.check("a")
    assert per_token.value.per_token
    feed.check("b")
    subs.append(feed.subscribe("b"))
    with pytest.raises(TooManyStreamsError) as per_process:
        feed.check("c")
    assert not per_process.value.per_token
    feed.unsubscribe(subs[0])
    feed.unsubscribe(subs[0])  # twice is harmless
    feed.check("a")
    assert feed.open_streams == 2


def test_fan_out_reaches_every_subscriber_and_marks_the_slow_one() -> None:
    feed = AlertFeed("redis://127.0.0.1:1/0", max_streams=10, max_per_token=10, queue_size=2)
    fast, slow = feed.subscribe("a"), feed.subscribe("b")
    for i in range(2):
        feed._fan_out(f"1-{i}", {"alert_id": str(i)})
        fast.queue.get_nowait()
    feed._fan_out("1-2", {"alert_id": "2"})
    assert fast.queue.qsize() == 1 and not fast.overflowed
    assert slow.queue.qsize() == 2 and slow.overflowed  # its stream ends; the client resumes
