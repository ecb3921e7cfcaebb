"""The counting adapter (streams.counting) with plain dicts as tables."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from detectors.counts import HOUR_MS, HourBucket, hour_of, window_counts
from detectors.flags import FlagPolicy
from streams.counting import CheckpointRecent, DeclarationCounting, RawRecord
from tests.factories import T0, declaration_event
from vhc_common.partitioning import composite_key
from vhc_common.schemas import DeclarationEvent


class Harness:
    def __init__(self, areas: frozenset[str] = frozenset()) -> None:
        self.buckets: dict[str, bytes] = {}
        self.recent: dict[str, str] = {}
        self.offset = 0
        self.counting = DeclarationCounting(buckets=self.buckets, recent=self.recent,
                                            policy=FlagPolicy(),
                                            outbreak_areas_at=lambda _ms: areas)

    def record(self, event: DeclarationEvent | bytes, key: bytes | None = None) -> RawRecord:
        self.offset += 1
        if isinstance(event, DeclarationEvent):
            key = key if key is not None else event.checkpoint_id.encode()
            value = event.model_dump_json().encode()
        else:
            value = event
        return RawRecord("declarations.v1", 0, self.offset, key, value)

    def total(self, checkpoint_id: str, end_ms: int, window_ms: int) -> int:
        prefix = checkpoint_id + "|"
        buckets = [HourBucket.decode(int(k[len(prefix):]), v)
                   for k, v in self.buckets.items() if k.startswith(prefix)]
        return window_counts(buckets, end_ms=end_ms, window_ms=window_ms).total


END_MS = int(T0.timestamp() * 1000)


def test_counts_each_declaration_once_across_batches_and_replays() -> None:
    h = Harness()
    events = [declaration_event(scanned_at=T0 - timedelta(minutes=i)) for i in range(10)]
    first = h.counting.apply([h.record(e) for e in events[:6]])
    assert first.outcomes == {"counted": 6}
    # A replay after a crash re-delivers 3 old records (same offsets) with the new ones.
    old = [RawRecord(r.topic, r.partition, r.offset, r.key, r.value)
           for r in [h.record(e) for e in events[:6]]][3:]
    replay = [RawRecord(o.topic, 0, o.offset - 6, o.key, o.value) for o in old]
    second = h.counting.apply(replay + [h.record(e) for e in events[6:]])
    assert second.outcomes == {"counted": 4, "replayed": 3}
    # Another record of a declaration counted before (a retried publish) is a duplicate.
    third = h.counting.apply([h.record(events[0])])
    assert third.outcomes == {"duplicate": 1}
    assert [c.duplicate for c in third.events] == [True]
    assert h.total("PY-XH-CHO", END_MS, HOUR_MS) == 10


def test_late_and_out_of_order_events_land_in_their_own_hour() -> None:
    h = Harness()
    late = declaration_event(scanned_at=T0 - timedelta(hours=5))
    h.counting.apply([h.record(declaration_event()), h.record(late)])
    hour = hour_of(int(late.scanned_at.timestamp() * 1000))
    assert composite_key("PY-XH-CHO", hour) in h.buckets
    assert h.total("PY-XH-CHO", END_MS, 24 * HOUR_MS) == 2
    assert h.total("PY-XH-CHO", END_MS, HOUR_MS) == 1


def test_events_beyond_the_horizon_are_reported_not_counted() -> None:
    h = Harness()
    h.counting.apply([h.record(declaration_event())])
    old = declaration_event(scanned_at=T0 - timedelta(hours=27))
    result = h.counting.apply([h.record(old)])
    assert result.outcomes == {"beyond_horizon": 1}


def test_buckets_leave_the_horizon_and_are_removed() -> None:
    h = Harness()
    h.counting.apply([h.record(declaration_event(scanned_at=T0))])
    result = h.counting.apply([h.record(declaration_event(scanned_at=T0 + timedelta(hours=27)))])
    assert result.removed == [("PY-XH-CHO", hour_of(END_MS))]
    assert composite_key("PY-XH-CHO", hour_of(END_MS)) not in h.buckets
    recent = CheckpointRecent.decode(h.recent["PY-XH-CHO"])
    assert recent.hours == {hour_of(END_MS) + 27}


def test_bad_records_become_dead_letters_with_reasons() -> None:
    h = Harness()
    good = declaration_event()
    records = [
        h.record(b"not json"),
        h.record(b'{"schema_version": 1}'),
        h.record(good, key=b"OTHER-CHECKPOINT"),
        RawRecord("declarations.v1", 0, 99, b"x", None),
        h.record(good),
    ]
    result = h.counting.apply(records)
    assert result.outcomes == {"dead_letter": 4, "counted": 1}
    reasons = [reason for _, reason in result.dead]
    assert "invalid declaration" in reasons[0]
    assert "does not match checkpoint_id" in reasons[2]
    assert reasons[3] == "empty value"
    assert [r.offset for r, _ in result.dead] == [1, 2, 3, 99]


def test_travel_is_judged_against_the_outbreak_areas() -> None:
    h = Harness(areas=frozenset({"01"}))
    h.counting.apply([h.record(declaration_event(travel_from=("01",))),
                      h.record(declaration_event(travel_from=("79",)))])
    (raw,) = h.buckets.values()
    flags = [f for _, f in HourBucket.decode(0, raw)]
    assert sorted(flags) == [0, 16]


def test_recent_tracks_the_newest_time() -> None:
    h = Harness()
    result = h.counting.apply([h.record(declaration_event(scanned_at=T0)),
                               h.record(declaration_event(scanned_at=T0 - timedelta(hours=1)))])
    assert result.newest_ms == {"PY-XH-CHO": END_MS}
    assert CheckpointRecent.decode(h.recent["PY-XH-CHO"]).newest_ms == END_MS


def test_horizon_must_be_positive() -> None:
    with pytest.raises(ValueError, match="got 0"):
        DeclarationCounting(buckets={}, recent={}, policy=FlagPolicy(),
                            outbreak_areas_at=lambda _ms: frozenset(), horizon_ms=0)


def test_uuid_forms_are_accepted_as_declaration_ids() -> None:
    h = Harness()
    result = h.counting.apply([h.record(declaration_event(declaration_id=uuid.UUID(int=5)))])
    assert result.outcomes == {"counted": 1}


@pytest.mark.parametrize("seed", range(6))
def test_horizon_decisions_equal_the_true_newest_though_recent_is_stored_less(
        seed: int) -> None:
    """``recent`` is stored only when the hours kept or the horizon's floor hour change
    (6/7): out-of-order batches, each through a fresh adapter over the same tables (what a
    restore gives), must still judge every record against the true newest time so far."""
    import random

    rng = random.Random(seed)
    horizon_ms = 7 * HOUR_MS + 1_234 * (seed % 2)  # a whole number of hours, or not
    buckets: dict[str, bytes] = {}
    recent: dict[str, str] = {}
    newest: dict[str, int] = {}
    offset = writes = 0
    for _batch in range(40):
        counting = DeclarationCounting(buckets=buckets, recent=recent, policy=FlagPolicy(),
                                       outbreak_areas_at=lambda _ms: (),
                                       horizon_ms=horizon_ms)
        events = [declaration_event(
            checkpoint_id=f"PY-XH-{rng.randrange(3)}",
            scanned_at=T0 + timedelta(minutes=rng.randrange(-60 * 9, 60 * 30)) + timedelta(
                minutes=_batch * 20)) for _ in range(rng.randrange(1, 12))]
        records = []
        for e in events:
            offset += 1
            records.append(RawRecord("declarations.v1", 0, offset, e.checkpoint_id.encode(),
                                     e.model_dump_json().encode()))
        before = dict(recent)
        for e in events:
            cid, at = e.checkpoint_id, int(e.scanned_at.timestamp() * 1000)
            newest[cid] = max(newest.get(cid, 0), at)
        result = counting.apply(records)
        writes += sum(1 for k in recent if recent[k] != before.get(k))
        for item in result.events:
            cid = item.event.checkpoint_id
            beyond = hour_of(item.scanned_at_ms) < hour_of(newest[cid] - horizon_ms)
            assert (item.outcome == "beyond_horizon") == beyond, (item, newest[cid])
        for cid, ms in result.newest_ms.items():
            assert hour_of(ms - horizon_ms) == hour_of(newest[cid] - horizon_ms)
    assert writes < offset  # stored less often than once per record


def test_a_floor_hour_moved_within_a_kept_hour_is_stored() -> None:
    """A horizon that is not whole hours moves its floor inside an hour already kept."""
    horizon_ms = 7 * HOUR_MS + 1_234
    hour_ms = hour_of(END_MS) * HOUR_MS
    buckets: dict[str, bytes] = {}
    recent: dict[str, str] = {}
    outcomes = []
    for offset, at_ms in enumerate([hour_ms + 500, hour_ms + 2_000, hour_ms - 7 * HOUR_MS - 1]):
        counting = DeclarationCounting(buckets=buckets, recent=recent, policy=FlagPolicy(),
                                       outbreak_areas_at=lambda _ms: (), horizon_ms=horizon_ms)
        event = declaration_event(scanned_at=T0 + timedelta(milliseconds=at_ms - END_MS))
        result = counting.apply([RawRecord("declarations.v1", 0, offset, b"PY-XH-CHO",
                                           event.model_dump_json().encode())])
        outcomes.append(result.events[0].outcome)
    # Against the newest (hour + 2 s) the floor is the hour 7 hours back: the last record
    # lies before it.
    assert outcomes == ["counted", "counted", "beyond_horizon"]


@pytest.mark.parametrize("seed", range(4))
def test_buckets_kept_between_batches_count_as_decoding_each_time(seed: int) -> None:
    """The decoded buckets and bookkeeping kept between batches (and the buckets'
    incremental encoding) change nothing: the same outcomes and the same stored bytes as
    an adapter that decodes and encodes every bucket whole, through replays, duplicates
    and tables changed behind its back (a rebalance). The bytes handed to the view are
    the ones stored."""
    import random

    from detectors.counts import _ENTRY

    rng = random.Random(seed)
    kept, fresh = Harness(), Harness()
    events = [declaration_event(checkpoint_id=f"PY-XH-{rng.randrange(3)}",
                                scanned_at=T0 - timedelta(minutes=rng.randrange(0, 400)))
              for _ in range(300)]
    sent: list[RawRecord] = []
    for batch in range(30):
        records = [kept.record(rng.choice(events)) for _ in range(rng.randrange(1, 15))]
        if sent and rng.random() < 0.3:  # a replay: records re-delivered at their offsets
            records = rng.sample(sent, min(len(sent), 5)) + records
        sent += records
        fresh.counting.forget()  # decodes every bucket and bookkeeping from its bytes
        a, b = kept.counting.apply(records), fresh.counting.apply(records)
        assert [i.outcome for i in a.events] == [i.outcome for i in b.events]
        assert kept.buckets == fresh.buckets and kept.recent == fresh.recent
        assert a.buckets.keys() == a.encoded.keys()
        for (cid, hour), data in a.encoded.items():
            assert data == kept.buckets[composite_key(cid, hour)] \
                == a.buckets[(cid, hour)].encode()
        if batch == 15:  # another worker wrote a bucket: the kept copy must not be used
            key = next(iter(kept.buckets))
            extra = _ENTRY.pack(rng.getrandbits(64), END_MS, 0, 10_000)
            for h in (kept, fresh):
                h.buckets[key] = h.buckets[key] + extra
        if batch == 20:  # ...and a checkpoint's bookkeeping: its newest time two days on
            # (its records from now on lie beyond the horizon), an hour more kept
            cid = next(iter(kept.recent))
            moved = CheckpointRecent.decode(kept.recent[cid])
            moved = CheckpointRecent(moved.newest_ms + 48 * HOUR_MS,
                                     moved.hours | {hour_of(moved.newest_ms) + 48})
            for h in (kept, fresh):
                h.recent[cid] = moved.encode()
    # Stored bytes decode and encode back to themselves.
    for key, data in kept.buckets.items():
        hour = int(key.rpartition("|")[2])
        assert HourBucket(hour, HourBucket.decode(hour, data).entries).encode() == data
