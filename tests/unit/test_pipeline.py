"""The worker's batch body without faust: exactly once per alert across crashes, stream time
per frame, backlogs judged on their own time, wards independent of interleaving."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from detectors.aberration import AberrationDetector, AberrationParams
from detectors.cluster import ClusterDetector
from detectors.errors import StateDecodeError
from detectors.flags import FlagPolicy
from detectors.outbreak import OutbreakAreaHistory
from detectors.schedule import HoursChange, HoursTimeline, parse_opening_hours
from detectors.volume import VolumeDetector
from streams.counting import RawRecord
from streams.pipeline import (
    BatchOutput,
    CheckpointEnvelope,
    CheckpointInfo,
    Pipeline,
    PipelineTables,
    TimeRules,
)
from streams.wards import HourSummary, WardProcessor, Watermark, decode_ward_record
from tests.factories import declaration_event
from vhc_common.partitioning import partition_for
from vhc_common.schemas import Contact, PersonRef
from vhc_common.timebase import HOUR_MS, to_ms

PARTITIONS = 4
# 2026-11-02 (a Monday) 00:00 local is 2026-11-01 17:00 UTC.
DAY0 = datetime(2026, 11, 1, 17, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # when a replay's records are received


class Rig:
    """A pipeline over dict tables, fed like the worker feeds it."""

    def __init__(self, tables: PipelineTables | None = None,
                 registry: dict[str, CheckpointInfo] | None = None) -> None:
        self.tables = tables or PipelineTables({}, {}, {}, {})
        self.registry = registry if registry is not None else {}
        self.wall = int(NOW.timestamp() * 1000)
        self.pipeline = Pipeline(
            tables=self.tables, partitions=PARTITIONS, policy=FlagPolicy(),
            cluster=ClusterDetector(), volume=VolumeDetector(),
            aberration=AberrationDetector(AberrationParams()), rules=TimeRules(),
            info=lambda cid: self.registry.get(cid) or CheckpointInfo(),
            wards_on_partition=self.wards_on, outbreak=OutbreakAreaHistory,
            wall_ms=lambda: self.wall)

    def _confirmed_from(self, other: Rig) -> None:
        """Continue after ``other``'s batches as the same process would (its outboxes
        delivered), only without the decoded states it keeps."""
        self.pipeline._confirmed |= other.pipeline._confirmed

    def wards_on(self, partition: int) -> set[str]:
        return {i.ward_code for c, i in self.registry.items()
                if i.ward_code and partition_for(c.encode(), PARTITIONS) == partition}

    def run(self, records: list[RawRecord], batch: int) -> list[BatchOutput]:
        return [self.pipeline.process(records[i:i + batch])
                for i in range(0, len(records), batch)]


def office(cid: str = "OFF-A", ward: str = "08749") -> CheckpointInfo:
    del cid
    return CheckpointInfo(ward_code=ward, kind="office")


class Stream:
    """Records of several checkpoints, partitioned and numbered as Kafka would."""

    def __init__(self) -> None:
        self.offsets: dict[int, int] = {}
        self.records: list[RawRecord] = []

    def add(self, cid: str, scanned: datetime, *, received: datetime | None = None,
            sick: bool = False, contact: Contact = Contact.NONE,
            declaration_id: str | None = None, person: int | None = None) -> RawRecord:
        p = partition_for(cid.encode(), PARTITIONS)
        offset = self.offsets.get(p, 0)
        self.offsets[p] = offset + 1
        fields: dict[str, Any] = {"checkpoint_id": cid, "scanned_at": scanned,
                                  "received_at": received or NOW,
                                  "symptoms": ("cough",) if sick else (), "contact": contact}
        if declaration_id:
            fields["declaration_id"] = declaration_id
        if person is not None:
            fields["person"] = PersonRef(key=f"{person:032x}")
        value = declaration_event(**fields).model_dump_json().encode()
        record = RawRecord("declarations.v1", p, offset, cid.encode(), value)
        self.records.append(record)
        return record


def office_days(stream: Stream, cid: str, days: Iterable[int], rng: random.Random, *,
                per_hour: int = 8, live: bool = False, sick_share: float = 0.01,
                skip: set[tuple[int, int]] | None = None) -> None:
    """Weekdays 07:00-17:00 local; ``skip`` (day, hour) pairs are silent."""
    for day in days:
        if day % 7 >= 5:
            continue
        for hour in range(7, 17):
            if skip and (day, hour) in skip:
                continue
            for i in range(per_hour):
                at = DAY0 + timedelta(days=day, hours=hour, minutes=i * 60 / per_hour + 1)
                stream.add(cid, at, received=at + timedelta(seconds=2) if live else None,
                           sick=rng.random() < sick_share, person=rng.getrandbits(64))


def kinds(outputs: list[BatchOutput]) -> list[str]:
    return [a.kind.value for o in outputs for a in o.alerts]


def ids(outputs: list[BatchOutput]) -> list[str]:
    return [a.alert_id for o in outputs for a in o.alerts]


# ------------------------------------------------------------------------ batches


@pytest.mark.parametrize("batch", [7, 500, 100_000])
def test_batch_size_never_changes_the_alerts(batch: int) -> None:
    rng = random.Random(3)
    stream = Stream()
    office_days(stream, "OFF-A", range(14), rng, skip={(10, h) for h in range(12, 17)})
    office_days(stream, "OFF-B", range(14), rng)
    for i in range(5):  # a burst of coughs
        stream.add("OFF-A", DAY0 + timedelta(days=11, hours=9, minutes=i * 5 + 2), sick=True,
                   person=10_000 + i)
    registry = {"OFF-A": office(), "OFF-B": office()}
    one_by_one = Rig(registry=registry).run(stream.records, 1)
    assert {"checkpoint_silent", "symptom_cluster"} <= set(kinds(one_by_one))
    # The same alerts; their order across partitions may differ, never within one.
    assert sorted(ids(Rig(registry=registry).run(stream.records, batch))) == sorted(
        ids(one_by_one))


def test_states_kept_decoded_between_batches_change_nothing() -> None:
    """The pipeline keeps decoded states between batches; a fresh pipeline over the same
    tables for every batch (always decoding) writes the same tables and sends the same
    records, and a state written to the table by someone else (a rebalance, a changelog
    restore) is read from the table, not from memory."""
    rng = random.Random(11)
    stream = Stream()
    # OFF-A goes quiet one afternoon: a silence raised by a sweep of stream time, from a
    # state whose steps that only looked were never stored (``_finish``)
    office_days(stream, "OFF-A", range(12), rng, skip={(10, h) for h in range(12, 17)})
    office_days(stream, "OFF-B", range(12), rng)
    for i in range(5):
        stream.add("OFF-B", DAY0 + timedelta(days=8, hours=10, minutes=i * 3), sick=True,
                   person=20_000 + i)
    registry = {"OFF-A": office(), "OFF-B": office()}
    warm = Rig(registry=registry)
    cold_tables = PipelineTables({}, {}, {}, {})
    warm_out, cold_out = [], []
    for i in range(0, len(stream.records), 97):
        batch = stream.records[i:i + 97]
        warm_out.append(warm.pipeline.process(batch))
        cold = Rig(tables=cold_tables, registry=registry)  # nothing kept in memory
        cold._confirmed_from(warm)
        cold_out.append(cold.pipeline.process(batch))
    assert warm.tables.checkpoints == cold_tables.checkpoints
    assert [o.alert_sends for o in warm_out] == [o.alert_sends for o in cold_out]
    assert {"checkpoint_silent", "symptom_cluster"} <= set(kinds(warm_out))
    assert ids(warm_out) == ids(cold_out)
    # Someone else's state in the table wins over the one kept in memory.
    other = CheckpointEnvelope.decode(warm.tables.checkpoints["OFF-A"])
    other.late_ms = 123_456
    warm.tables.checkpoints["OFF-A"] = other.encode()
    stream.add("OFF-A", DAY0 + timedelta(days=12, hours=9))
    warm.pipeline.process(stream.records[-1:])
    assert CheckpointEnvelope.decode(warm.tables.checkpoints["OFF-A"]).late_ms == 123_456


def test_replayed_offsets_are_skipped() -> None:
    stream = Stream()
    office_days(stream, "OFF-A", range(3), random.Random(4), sick_share=0.2)
    rig = Rig(registry={"OFF-A": office()})
    first = rig.run(stream.records, 100)
    again = rig.run(stream.records[50:150], 100)  # redelivered after a crash
    assert kinds(first) and not kinds(again)
    assert sum(o.outcomes["replayed_detection"] for o in again) == 100
    env = CheckpointEnvelope.decode(rig.tables.checkpoints["OFF-A"])
    assert env.series.window(0, 10**7)[0] == len(stream.records)


def test_the_same_declaration_at_two_offsets_counts_once() -> None:
    # A retried publish: one declaration, two records. Stats counted it once; the detectors'
    # hour history gave [2, 0] and inflated every baseline.
    stream = Stream()
    at = DAY0 + timedelta(days=1, hours=9)
    did = "3b0a4f0e-1f7a-4f53-9d3e-1d2c3b4a5f60"
    stream.add("OFF-A", at, sick=True, declaration_id=did, person=1)
    stream.add("OFF-A", at, sick=True, declaration_id=did, person=1)
    rig = Rig(registry={"OFF-A": office()})
    out = rig.run(stream.records, 1)
    env = CheckpointEnvelope.decode(rig.tables.checkpoints["OFF-A"])
    assert env.series.at(to_ms(at) // HOUR_MS) == (1, 1)
    assert kinds(out) == ["symptomatic_declaration"]
    assert out[1].outcomes["duplicate"] == 1


def test_a_silent_day_in_a_replay_is_dated_when_it_showed_not_at_the_next_record() -> None:
    """A replay jumps stream time from one evening to the morning after the silent day;
    the jump is walked step by step, as live time would have."""
    stream = Stream()
    office_days(stream, "OFF-A", range(15), random.Random(8),
                skip={(9, h) for h in range(7, 17)})  # Wednesday 2026-11-11: nothing
    out = Rig(registry={"OFF-A": office()}).run(stream.records, 200)
    (silence,) = [a for o in out for a in o.alerts if a.kind.value == "checkpoint_silent"]
    opened = DAY0 + timedelta(days=9, hours=7)
    assert opened < silence.detected_at <= opened + timedelta(hours=3)
    assert silence.window_end <= silence.detected_at


# ------------------------------------------------------------------------ skipped offsets


def _two_offices(days: int = 14) -> tuple[Stream, dict[str, CheckpointInfo]]:
    """Two offices, a burst of coughs at OFF-A on day 11 (2026-11-13) 09:xx local, in the
    middle of its partition's offsets."""
    rng = random.Random(5)
    stream = Stream()
    for span in (range(min(days, 11)), range(11, days)):
        office_days(stream, "OFF-A", span, rng, skip={(10, h) for h in range(12, 17)})
        office_days(stream, "OFF-B", span, rng)
        if span.start == 0 and days > 11:
            for i in range(5):
                stream.add("OFF-A", DAY0 + timedelta(days=11, hours=9, minutes=i * 5 + 2),
                           sick=True, person=10_000 + i)
    return stream, {"OFF-A": office(), "OFF-B": office()}


def test_records_the_consumer_skipped_are_asked_for_again_not_taken_for_replays() -> None:
    """The faust race (``streams.offsets``): a run of records is delivered, then later ones
    without the run, then the run again. Nothing past the hole is applied; the pipeline
    asks to seek back; the alerts are those of a clean run."""
    stream, registry = _two_offices()
    clean_rig = Rig(registry=registry)
    clean = sorted(ids(clean_rig.run(stream.records, 50)))
    p = partition_for(b"OFF-A", PARTITIONS)
    mine = [r for r in stream.records if r.partition == p]
    # The hole holds the burst of coughs (the records of 2026-11-13 09:xx local).
    burst = next(i for i, r in enumerate(mine) if json.loads(r.value)["symptoms"]
                 and json.loads(r.value)["scanned_at"].startswith("2026-11-13T02"))
    lo, hi = burst - 20, burst + 30
    rig = Rig(registry=registry)
    outs = [rig.pipeline.process(mine[:lo])]
    assert outs[0].applied == {p: lo}
    skipped = rig.pipeline.process(mine[hi:hi + 40])  # lo..hi-1 never came
    assert skipped.gaps == {p: lo}
    assert skipped.outcomes["after_gap"] == 40 and not skipped.alerts
    assert rig.pipeline.offsets.open_gaps() == {p: lo}
    # The case look-up must not take the records past the hole for processed: it would
    # answer without the visits of the hole (and the processed offsets only ever rise).
    assert skipped.applied == {p: lo}
    outs.append(skipped)
    outs += rig.run(mine[lo:], 50)  # sought back: lo onwards again
    assert outs[-1].applied == {p: mine[-1].offset + 1}
    # A batch delivered again (a replay) is applied no further than its own records.
    assert rig.pipeline.process(mine[lo:lo + 10]).applied == {p: lo + 10}
    assert rig.pipeline.offsets.open_gaps() == {}
    outs += rig.run([r for r in stream.records if r.partition != p], 50)
    assert "symptom_cluster" in kinds(outs)
    assert sorted(ids(outs)) == clean
    state, clean_state = (CheckpointEnvelope.decode(r.tables.checkpoints["OFF-A"])
                          for r in (rig, clean_rig))
    state.outbox = clean_state.outbox = []  # what the last batch produced: batches differ
    assert state == clean_state


def test_a_dead_letter_is_not_a_hole() -> None:
    stream, registry = _two_offices(days=3)
    p = stream.records[0].partition
    mine = [r for r in stream.records if r.partition == p]
    bad = RawRecord("declarations.v1", p, mine[10].offset, mine[10].key, b"{not json")
    rig = Rig(registry=registry)
    out = rig.pipeline.process([*mine[:10], bad, *mine[11:40]])
    assert len(out.counting.dead) == 1 and out.gaps == {}
    assert rig.pipeline.process(mine[40:60]).gaps == {}


def test_records_skipped_before_the_first_one_applied_are_asked_for_again() -> None:
    """A fresh worker expects nothing yet; where faust sought the partition (its committed
    offset) is the record it expects. A first batch lost to a crashed agent shows as a
    hole, not as the start of the partition."""
    stream, registry = _two_offices(days=3)
    p = partition_for(b"OFF-A", PARTITIONS)
    mine = [r for r in stream.records if r.partition == p]
    rig = Rig(registry=registry)
    rig.pipeline.offsets.start_at(p, mine[0].offset)
    skipped = rig.pipeline.process(mine[30:60])
    assert skipped.gaps == {p: mine[0].offset} and not skipped.alerts
    assert skipped.applied == {p: mine[0].offset}
    assert rig.pipeline.next_offset(p) == -1
    rig.run(mine, 50)
    assert rig.pipeline.offsets.open_gaps() == {}
    assert rig.pipeline.next_offset(p) == mine[-1].offset + 1


def test_replays_the_consumer_skipped_after_a_restart_are_asked_for_again() -> None:
    """After a crash the state can be a batch ahead of the group's commit (the batch's
    state reached the changelog, its Redis views did not): the records in between are
    replays for the state, and only their replay writes their views (the exposure index
    the case look-up reads). A consumer that skips them is sought back to them, and the
    processed offsets stay at the committed offset until they come."""
    stream, registry = _two_offices(days=3)
    p = partition_for(b"OFF-A", PARTITIONS)
    mine = [r for r in stream.records if r.partition == p]
    rig = Rig(registry=registry)
    rig.pipeline.process(mine[:60])
    rig.pipeline.offsets.start_at(p, mine[40].offset)  # restarted: the commit was at 40
    skipped = rig.pipeline.process(mine[60:80])
    assert skipped.gaps == {p: mine[40].offset}
    assert skipped.applied == {p: mine[40].offset}
    back = rig.pipeline.process(mine[40:80])
    assert back.gaps == {} and back.applied == {p: mine[79].offset + 1}
    assert {c.record.offset for c in back.counting.events} >= {r.offset for r in mine[40:60]}
    assert back.outcomes["replayed_detection"] == 20  # replays: nothing judged twice


def test_records_deleted_by_retention_are_accepted_as_lost() -> None:
    stream, registry = _two_offices(days=3)
    p = stream.records[0].partition
    mine = [r for r in stream.records if r.partition == p]
    rig = Rig(registry=registry)
    rig.pipeline.process(mine[:10])
    assert rig.pipeline.process(mine[50:60]).gaps == {p: 10}
    rig.pipeline.accept_gap(p)  # the broker's earliest offset is past 10
    assert rig.pipeline.offsets.open_gaps() == {}
    out = rig.pipeline.process(mine[50:60])
    assert out.gaps == {} and out.outcomes["after_gap"] == 0
    assert out.outcomes["replayed_detection"] == 0  # applied, not taken for replays


def test_ward_records_the_consumer_skipped_are_asked_for_again() -> None:
    def run(feed: list[list[tuple[int, int, HourSummary | Watermark | None]]]) -> Any:
        wards = WardProcessor(states={}, partitions=PARTITIONS,
                              aberration=AberrationDetector(), grace_s=300,
                              ward_partitions=lambda _w: {0})
        outs = [wards.on_records(batch) for batch in feed]
        return wards, outs

    h = 500_000
    records: list[tuple[int, int, HourSummary | Watermark | None]] = [
        (2, 0, HourSummary("08749", "A", h, 10, ("p1",))),
        (2, 1, None),  # unreadable, dead-lettered: not a hole
        (2, 2, HourSummary("08749", "B", h, 4, ("p2",))),
        (2, 3, Watermark("08749", 0, h)),
    ]
    clean, _ = run([records])
    wards, outs = run([records[:1], records[3:], records[1:]])
    assert outs[1].gaps == {2: 1} and outs[1].outcomes["after_gap"] == 1
    assert outs[2].gaps == {} and wards.offsets.open_gaps() == {}
    assert wards._states["08749"] == clean._states["08749"]
    assert wards._decode(wards._states["08749"]).series.at(h) == (14, 2)


# ------------------------------------------------------------------------ the outbox


class _AlwaysDue(VolumeDetector):
    """Looks at every step, as the pipeline did before ``clock_due``."""

    def clock_due(self, state: Any, subject: Any) -> int | None:
        return 0


def test_steps_with_nothing_due_are_passed_over_without_changing_anything() -> None:
    """Sweeps pass over checkpoints with no hour to close and no detector due, and a
    jump of stream time skips such steps: same alerts, summaries and stored states as a
    pipeline that looks at every checkpoint at every step."""
    rng = random.Random(5)
    stream = Stream()
    # Three neighbours on one partition: each one's records move the others' clock.
    a, b, c = [cid for cid in (f"OFF-{i}" for i in range(100))
               if partition_for(cid.encode(), PARTITIONS) == 0][:3]
    office_days(stream, a, range(14), rng, skip={(10, h) for h in range(11, 17)})
    office_days(stream, b, range(14), rng, per_hour=3)
    office_days(stream, c, range(3, 14), rng, per_hour=2, skip={(12, 9)})
    for i in range(5):
        stream.add(b, DAY0 + timedelta(days=11, hours=9, minutes=i * 4), sick=True,
                   person=30_000 + i)
    registry = {a: office(), b: office(), c: office()}
    # Interleaved in time, numbered again in that order on each partition (as Kafka would);
    # a's front end queues day 9 from 09:00 and uploads it five hours late, after a
    # sweep passed a (gone quiet, its silence alerted) over: the late declarations must
    # not be judged at the steps passed over as if they had been there.
    queue = (DAY0 + timedelta(days=9, hours=9), DAY0 + timedelta(days=9, hours=17))

    def upload_at(r: RawRecord) -> datetime:
        at = datetime.fromisoformat(json.loads(r.value or b"")["scanned_at"])
        queued = r.key == a.encode() and queue[0] <= at < queue[1]
        return at + timedelta(hours=5) if queued else at

    records, next_offset = [], dict.fromkeys(range(PARTITIONS), 0)
    for r in sorted(stream.records, key=upload_at):
        records.append(RawRecord(r.topic, r.partition, next_offset[r.partition], r.key,
                                 r.value))
        next_offset[r.partition] += 1
    passing = Rig(registry=registry)
    looking = Rig(registry=registry)
    looking.pipeline._volume = _AlwaysDue()
    # a batch a record: what a sweep passes over shows in that record's output
    out_passing = passing.run(records, 1)
    out_looking = looking.run(records, 1)
    assert "checkpoint_silent" in kinds(out_passing)
    assert not any(o.gaps for o in out_passing)
    assert [o.alert_sends for o in out_passing] == [o.alert_sends for o in out_looking]
    assert [o.summary_sends for o in out_passing] == [o.summary_sends for o in out_looking]
    assert passing.tables.checkpoints == looking.tables.checkpoints
    # Each stored state is the JSON of the whole envelope (the series' text is put in as
    # the series keeps it).
    for text in passing.tables.checkpoints.values():
        env = CheckpointEnvelope.decode(text)
        assert text == env.encode() == json.dumps({
            "v": 2, "o": env.offset, "fr": env.frame, "cur": env.cursor, "st": env.step,
            "new": env.newest_ms, "re": env.reopened, "late": env.late_ms,
            "ser": env.series.to_json(), "cl": env.cluster.to_json(),
            "vo": env.volume.to_json(), "ab": env.aberration.to_json(), "ob": env.outbox,
        }, separators=(",", ":"))
    # A process restarted before every record (states from the tables only, whose steps
    # that only looked were never stored) decides the same.
    tables = PipelineTables({}, {}, {}, {})
    previous = Rig(tables, registry)
    out_restarting = []
    for record in records:
        restarted = Rig(tables, registry)
        restarted._confirmed_from(previous)
        out_restarting.append(restarted.pipeline.process([record]))
        previous = restarted
    assert [o.alert_sends for o in out_restarting] == [o.alert_sends for o in out_looking]
    assert tables.checkpoints == looking.tables.checkpoints


class _Writes(dict[str, str]):
    """A table that counts the writes of each key."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: dict[str, int] = {}

    def __setitem__(self, key: str, value: str) -> None:
        self.writes[key] = self.writes.get(key, 0) + 1
        super().__setitem__(key, value)


def test_a_checkpoint_only_looked_at_is_not_written_until_it_changes() -> None:
    """Steps of stream time that judge nothing new for a checkpoint (no hour closed, no
    alert) leave its stored state alone: at 2,000 checkpoints every step rewrote every
    envelope of the partition (a changelog record each)."""
    quiet = "OFF-A"
    busy = next(c for c in (f"OFF-{i}" for i in range(100))
                if c != quiet and partition_for(c.encode(), PARTITIONS)
                == partition_for(quiet.encode(), PARTITIONS))
    stream = Stream()
    stream.add(quiet, DAY0 + timedelta(hours=8, minutes=1))
    for minute in (20, 35, 50, 55):  # three quarter-hour steps of the partition's clock
        stream.add(busy, DAY0 + timedelta(hours=8, minutes=minute))
    stream.add(busy, DAY0 + timedelta(hours=9, minutes=6))  # hour 8 closes (grace 5 min)
    tables = PipelineTables({}, {}, _Writes(), {})
    rig = Rig(tables)
    writes = tables.checkpoints.writes  # type: ignore[attr-defined]
    rig.run(stream.records[:5], 1)
    assert writes == {quiet: 1, busy: 4}
    stored_step = CheckpointEnvelope.decode(tables.checkpoints[quiet]).step
    rig.run(stream.records[5:], 1)
    assert writes == {quiet: 2, busy: 5}  # the hour closed for both
    assert CheckpointEnvelope.decode(tables.checkpoints[quiet]).step > stored_step


def test_an_alert_whose_state_was_stored_is_sent_again_after_a_crash() -> None:
    # The old worker stored "offset 41 applied" in one changelog record and queued the
    # alert separately: if only the state reached Kafka, the replay skipped offset 41 and
    # the close-contact alert was never raised.
    stream = Stream()
    for i in range(42):
        stream.add("OFF-A", DAY0 + timedelta(days=1, hours=8, minutes=i),
                   contact=Contact.F0 if i == 41 else Contact.NONE, person=i)
    tables = PipelineTables({}, {}, {}, {})
    registry = {"OFF-A": office()}
    before = Rig(tables, registry).run(stream.records, 41)
    assert [a.kind.value for a in before[1].alerts] == ["close_contact"]
    sent = before[1].alert_sends
    # Crash: the tables (changelog) have offset 41 applied, the alert send is lost. A new
    # process sends the stored outboxes at start (after the tables are restored)...
    assert Rig(tables, registry).pipeline.pending_outboxes().alert_sends == sent
    # ...and a process that replays first sends it when it loads the envelope.
    restarted = Rig(tables, registry)
    replay = restarted.run(stream.records[41:], 10)
    assert replay[0].alerts == []  # nothing raised twice...
    assert replay[0].alert_sends == sent  # ...and nothing lost: the outbox is sent again
    # Once delivered (the worker waits for the acknowledgement), the next batch forgets it.
    stream.add("OFF-A", DAY0 + timedelta(days=1, hours=9), person=99)
    later = restarted.run(stream.records[42:], 10)
    assert later[0].alert_sends == []


def test_ward_summaries_are_in_the_outbox_too() -> None:
    stream = Stream()
    for i in range(30):
        stream.add("OFF-A", DAY0 + timedelta(days=1, hours=8, minutes=i * 5), person=i)
    tables = PipelineTables({}, {}, {}, {})
    out = Rig(tables, {"OFF-A": office()}).run(stream.records, 100)
    summaries = [decode_ward_record(v) for _, v in out[0].summary_sends]
    assert any(isinstance(s, HourSummary) for s in summaries)
    resent = Rig(tables, {"OFF-A": office()}).pipeline.pending_outboxes()
    assert {v for _, v in resent.summary_sends} <= {v for _, v in out[0].summary_sends}
    assert any(isinstance(decode_ward_record(v), HourSummary) for _, v in resent.summary_sends)


def test_state_of_another_version_is_refused() -> None:
    env = json.loads(CheckpointEnvelope().encode())
    env["v"] = 1
    with pytest.raises(StateDecodeError, match="version 1"):
        CheckpointEnvelope.decode(json.dumps(env))


# ------------------------------------------------------------------------ stream time


def test_neighbours_on_the_partition_do_not_change_a_checkpoints_verdicts() -> None:
    # A replay of OFF-A's past weeks onto a partition that carries live traffic: before,
    # its hours were already closed by the live clock and nothing was judged.
    rng = random.Random(5)
    replay = Stream()
    office_days(replay, "OFF-A", range(15), rng, skip={(11, h) for h in range(9, 17)})
    alone = Rig(registry={"OFF-A": office()}).run(replay.records, 200)
    assert "checkpoint_silent" in kinds(alone)

    # Another checkpoint on the same partition is live, right now; its records interleave.
    live_cid = next(f"LIVE-{i}" for i in range(100) if
                    partition_for(f"LIVE-{i}".encode(), PARTITIONS)
                    == partition_for(b"OFF-A", PARTITIONS))
    mixed = Stream()
    now = NOW
    for i, record in enumerate(replay.records):
        if i % 10 == 0:
            mixed.add(live_cid, now, received=now, person=i)
            now += timedelta(seconds=30)
        mixed.add("OFF-A", datetime.fromisoformat(json.loads(record.value)["scanned_at"]),
                  received=now, person=json.loads(record.value)["person"]["key"] and i)
    rig = Rig(registry={"OFF-A": office(), live_cid: office()})
    together = rig.run(mixed.records, 200)
    mine = [a.kind.value for o in together for a in o.alerts
            if a.checkpoint_id == "OFF-A" and a.kind.value in
            {"checkpoint_silent", "volume_surge", "symptom_cluster", "symptom_aberration"}]
    theirs = [a.kind.value for o in alone for a in o.alerts if a.kind.value in
              {"checkpoint_silent", "volume_surge", "symptom_cluster", "symptom_aberration"}]
    assert mine == theirs


def test_a_backlog_is_judged_on_its_own_time() -> None:
    # OFF-A is live; its front end goes offline at 09:00 on day 14 for 5 hours and sends
    # its queue when it comes back; traffic inside the outage surged. Live: the silence
    # is raised (and stands). Then the queued hours are judged late, on their own time,
    # and the surge inside them is found.
    rng = random.Random(6)
    stream = Stream()
    office_days(stream, "OFF-A", range(14), rng, live=True, per_hour=12)
    rig = Rig(registry={"OFF-A": office()})
    out = rig.run(stream.records, 300)
    start = len(stream.records)
    outage = DAY0 + timedelta(days=14, hours=9)
    for minute in range(0, 120, 5):  # 08:00-09:00 live, then nothing
        at = DAY0 + timedelta(days=14, hours=7, minutes=minute)
        stream.add("OFF-A", at, received=at + timedelta(seconds=2), person=rng.getrandbits(64))
    out += rig.run(stream.records[start:], 300)
    # Ticks move the live clock through the outage: the silence is noticed.
    silence = []
    partition = partition_for(b"OFF-A", PARTITIONS)
    for q in range(1, 4 * 5):
        tick = rig.pipeline.tick(partition, to_ms(outage) + q * 15 * 60_000 + 30_000,
                                 highwater=rig.pipeline.next_offset(partition))
        silence += [a.kind.value for a in tick.alerts]
    assert silence == ["checkpoint_silent"]
    # The queue arrives at 14:05: 12 an hour, but 40 an hour from 10:00 to 12:00.
    upload = outage + timedelta(hours=5, minutes=5)
    start = len(stream.records)
    for hour in range(5):
        n = 40 if hour in (1, 2) else 12
        for i in range(n):
            at = outage + timedelta(hours=hour, minutes=i * 60 / n)
            stream.add("OFF-A", at, received=upload, person=rng.getrandbits(64))
    stream.add("OFF-A", upload, received=upload + timedelta(seconds=1), person=1)
    late = rig.run(stream.records[start:], 1000)
    surges = [a for o in late for a in o.alerts if a.kind.value == "volume_surge"]
    assert len(surges) == 1 and surges[0].window_start is not None
    assert surges[0].window_start.hour in (outage.hour + 1, outage.hour + 2)
    assert sum(o.outcomes["late_after_close"] for o in late) > 0


def test_a_tick_waits_for_the_records_the_worker_has_not_applied() -> None:
    # OFF-A is live and busy all morning on day 14; the worker stops at 09:00 and comes
    # back at 12:05 with three hours of OFF-A's declarations waiting in Kafka. The wall
    # clock's tick reaches the partition before them. Judged then, 09:00-12:00 would look
    # empty: a silence that is not there, raised live, and it would stand.
    rng = random.Random(7)
    stream = Stream()
    office_days(stream, "OFF-A", range(14), rng, live=True, per_hour=12)
    day = DAY0 + timedelta(days=14)
    stop = len(stream.records)
    for minute in range(7 * 60, 12 * 60, 5):
        at = day + timedelta(minutes=minute)
        stream.add("OFF-A", at, received=at + timedelta(seconds=2), person=rng.getrandbits(64))
        if at < day + timedelta(hours=9):
            stop = len(stream.records)
    partition = partition_for(b"OFF-A", PARTITIONS)
    back = to_ms(day + timedelta(hours=12, minutes=5)) + 30_000
    kinds_by_tick: dict[str, list[str]] = {}
    late: dict[str, int] = {}
    for told in ("applied", "holds"):
        rig = Rig(registry={"OFF-A": office()})
        out = rig.run(stream.records[:stop], 300)
        applied = rig.pipeline.next_offset(partition)
        live_before = rig.pipeline._clock(partition).live_ms
        # What the consumer last heard the partition holds ("applied": as a tick that
        # did not ask, before this fix).
        highwater = applied if told == "applied" else stream.offsets[partition]
        tick = rig.pipeline.tick(partition, back, highwater=highwater)
        out.append(tick)
        if told == "holds":
            assert tick.outcomes["tick_held"] == 1 and not tick.alerts
            assert rig.pipeline._clock(partition).live_ms == live_before
        out += rig.run(stream.records[stop:], 300)
        # Caught up: the next tick moves the clock.
        after = rig.pipeline.tick(partition, back + 60_000,
                                  highwater=stream.offsets[partition])
        assert after.outcomes["tick_held"] == 0
        assert rig.pipeline._clock(partition).live_ms == back + 60_000 - 30_000
        out.append(after)
        kinds_by_tick[told] = kinds(out)
        late[told] = sum(o.outcomes["late_after_close"] for o in out)
    assert "checkpoint_silent" in kinds_by_tick["applied"]  # the hazard is real
    assert "checkpoint_silent" not in kinds_by_tick["holds"]
    assert late == {"applied": 36, "holds": 0}  # 09:00-12:00 came in after it closed


def test_a_live_silence_is_noticed_while_a_backlog_keeps_the_partition_busy() -> None:
    # OFF-A is live and goes quiet at 09:00 on day 14. From 09:00 to 14:00 UP-5, on the
    # same partition, uploads a front end's queue of days 10-13 as it is received, and
    # the worker, a minute behind, always has some of it waiting at a tick. The ticks
    # move the live clock as far as the records processed were received: the silence
    # is noticed during the upload, not after it.
    assert partition_for(b"UP-5", PARTITIONS) == partition_for(b"OFF-A", PARTITIONS)
    rng = random.Random(9)
    stream = Stream()
    office_days(stream, "OFF-A", range(14), rng, live=True, per_hour=12)
    day = DAY0 + timedelta(days=14)
    for minute in range(7 * 60, 9 * 60, 5):
        at = day + timedelta(minutes=minute)
        stream.add("OFF-A", at, received=at + timedelta(seconds=2), person=rng.getrandbits(64))
    upload_from = len(stream.records)
    received: list[datetime] = []
    for i in range(600):  # one every 30 s
        when = day + timedelta(hours=9, seconds=30 * i)
        scanned = DAY0 + timedelta(days=10 + i % 4, hours=8, minutes=i % 50)
        stream.add("UP-5", scanned, received=when, person=rng.getrandbits(64))
        received.append(when)
    partition = partition_for(b"OFF-A", PARTITIONS)
    rig = Rig(registry={"OFF-A": office()})
    out = rig.run(stream.records[:upload_from], 300)
    done = upload_from
    held = 0
    for q in range(1, 4 * 5 + 1):
        wall = day + timedelta(hours=9, minutes=15 * q)
        arrived = upload_from + sum(r <= wall for r in received)
        behind = upload_from + sum(r <= wall - timedelta(minutes=1) for r in received)
        out += rig.run(stream.records[done:behind], 300)
        done = behind
        tick = rig.pipeline.tick(partition, to_ms(wall), highwater=arrived)
        held += tick.outcomes["tick_held"]
        out.append(tick)
    assert held == 4 * 5  # every tick came with records waiting
    (silence,) = [a for o in out for a in o.alerts if a.kind.value == "checkpoint_silent"]
    quiet = day + timedelta(hours=9)
    assert quiet < silence.detected_at <= quiet + timedelta(hours=3)


def test_hours_in_force_then_decide() -> None:
    # Registered as always open until day 8, then "Mo-Fr 07:00-12:00": afternoons stop
    # counting as silent from the change on, and not before.
    change = to_ms(DAY0 + timedelta(days=8))
    hours = HoursTimeline([HoursChange(0, None),
                           HoursChange(change, parse_opening_hours("Mo-Fr 07:00-12:00"))])
    info = CheckpointInfo(ward_code="08749", kind="office", hours=hours)
    assert info.hours.at(change - 1) is None
    assert info.hours.at(change) is not None


# ------------------------------------------------------------------------ wards


def _ward_run(records: list[RawRecord], registry: dict[str, CheckpointInfo], seed: int,
              ) -> list[str]:
    """Partitions processed in a random interleaving, batches of random sizes; ward
    records delivered per ward partition in order."""
    rng = random.Random(seed)
    rig = Rig(registry=registry)
    by_p: dict[int, list[RawRecord]] = {}
    for r in records:
        by_p.setdefault(r.partition, []).append(r)
    cursor = dict.fromkeys(by_p, 0)
    queued: dict[int, list[bytes]] = {}
    while any(cursor[p] < len(v) for p, v in by_p.items()):
        p = rng.choice([q for q in by_p if cursor[q] < len(by_p[q])])
        n = rng.randint(1, 400)
        out = rig.pipeline.process(by_p[p][cursor[p]:cursor[p] + n])
        cursor[p] += n
        for key, value in out.summary_sends:
            queued.setdefault(partition_for(key, PARTITIONS), []).append(value)
    wards = WardProcessor(states={}, partitions=PARTITIONS,
                          aberration=AberrationDetector(AberrationParams(budget_per_100_days=5)),
                          grace_s=300, ward_partitions=lambda w: {
                              partition_for(c.encode(), PARTITIONS)
                              for c, i in registry.items() if i.ward_code == w})
    alerts: list[str] = []
    for wp, values in sorted(queued.items()):
        records_ = [(wp, i, decode_ward_record(v)) for i, v in enumerate(values)]
        i = 0
        while i < len(records_):
            n = rng.randint(1, 300)
            alerts += [a.alert_id for a in wards.on_records(records_[i:i + n]).alerts]
            i += n
    return sorted(alerts)


def test_ward_alerts_do_not_depend_on_how_partitions_interleave() -> None:
    rng = random.Random(8)
    cids = [f"W-{i}" for i in range(8)]
    traffic: list[tuple[datetime, str, bool]] = []
    for day in range(14):
        if day % 7 >= 5:
            continue
        for cid in cids:
            for hour in range(7, 17):
                for i in range(6):
                    at = DAY0 + timedelta(days=day, hours=hour, minutes=i * 10 + 1)
                    traffic.append((at, cid, rng.random() < 0.01))
                if day == 11 and hour in (9, 10, 11):  # a thin rise in the whole ward
                    traffic.append((DAY0 + timedelta(days=day, hours=hour, minutes=30),
                                    cid, True))
    stream = Stream()
    for at, cid, sick in sorted(traffic):
        stream.add(cid, at, sick=sick, person=rng.getrandbits(64))
    registry = {c: office(c) for c in cids}
    first = _ward_run(stream.records, registry, seed=1)
    assert first  # the rise is found
    for seed in (2, 3, 4):
        assert _ward_run(stream.records, registry, seed=seed) == first


def test_ward_summaries_replace_and_watermarks_gate() -> None:
    wards = WardProcessor(states={}, partitions=PARTITIONS,
                          aberration=AberrationDetector(), grace_s=300,
                          ward_partitions=lambda _w: {0, 1})
    h = 500_000
    records: list[tuple[int, int, HourSummary | Watermark]] = [
        (0, 0, HourSummary("08749", "A", h, 10, ("p1",))),
        (0, 1, HourSummary("08749", "A", h, 10, ("p1",))),  # sent twice: replaces
        (0, 2, Watermark("08749", 0, h)),
    ]
    wards.on_records(records)
    env = wards._decode(wards._states["08749"])
    assert env.cursor is None  # partition 1 has not said anything yet
    wards.on_records([(0, 3, Watermark("08749", 1, None))])  # nothing active there
    env = wards._decode(wards._states["08749"])
    assert env.cursor == h and env.series.at(h) == (10, 1)
    # A late summary for a judged hour updates it (absolute, judged again).
    wards.on_records([(0, 4, HourSummary("08749", "B", h, 5, ("p1", "p2")))])
    env = wards._decode(wards._states["08749"])
    assert env.series.at(h) == (15, 2)  # p1 counted once across checkpoints
