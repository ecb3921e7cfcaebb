"""Every record of a partition, once and in order: the guard against skipped records.

The worker's state says, per checkpoint (and per ward), the last input offset applied, and
skips anything at or below it as a replay. That is exact only if the records of a partition
arrive without holes: a record skipped once and delivered after a later one would be taken
for a replay and never applied.

faust can skip records. When a worker gets partitions, faust resumes fetching them
*before* it seeks them to the committed offsets; records fetched in between are queued,
the fetch loop records their offsets as read *after* the seek, the queue is cleared when
the flow resumes, and the copies fetched again from the committed offset are dropped as
already read. Those records are never processed, and the consumer group's committed offset
stops there (a head-of-line gap in faust's acknowledgements), so the lag never drains.
Seen about once in four runs of the repeated-SIGKILL scenario; the dump of such a worker
showed ``committed=2620`` with the first acknowledged offset 2786.

So every owner of per-partition state keeps the *next offset it expects* per input
partition (persisted with its state, so it survives restarts) and asks ``admit`` about
each record: the expected one (or any, while unknown) is applied, an older one is a replay,
a newer one means records were skipped: nothing past it is applied, and the worker seeks
the partition back to the expected offset (``open_gaps`` lists what is still missing, so a
seek that faust loses again is repeated). Topics here are neither compacted nor written
in transactions, so their offsets have no legitimate holes; the one exception, records
deleted by retention before they were read, is accepted by the worker (``accept``) when
the expected offset is below the partition's earliest.

A skip shows only when a later record comes. ``StallWatch`` covers the other case: records
wait on a partition (its high watermark is past the expected offset) and the expected one
does not come for a while; the worker then seeks the partition to it as well.
``ProgressWatch`` covers faust's table recovery: changelog records left to read and none
read for a while.
"""

from __future__ import annotations

import enum

__all__ = ["Admission", "CommitWatch", "OffsetGuard", "ProgressWatch", "Stall", "StallWatch"]


class Admission(enum.Enum):
    APPLY = "apply"
    REPLAY = "replay"
    GAP = "gap"


class OffsetGuard:
    """Per input partition, whether a record may be applied, given the next offset its
    owner expects (``-1``: unknown, after a fresh start or an accepted loss)."""

    def __init__(self) -> None:
        self._open: dict[int, int] = {}
        self._start: dict[int, int] = {}

    def start_at(self, partition: int, offset: int) -> None:
        """The consumer was sought to ``offset`` (the group's committed offset, or where
        it resets to): until a record comes from there, that is the record expected, when
        the owner expects nothing yet *or expects a later one*. Records between the
        committed offset and the owner's next offset are replays for its state, but not
        for everything else: a crash after a batch's state was written and before its
        Redis views (the exposure index among them) leaves only the replay to write them.
        So a consumer that skips from the committed offset straight past them (the race
        above) opens a gap there, not at the owner's next offset."""
        self._start[partition] = offset

    def expects(self, partition: int, expected: int) -> int:
        """The record expected on ``partition`` given the owner's expectation (-1: any)."""
        start = self._start.get(partition)
        if start is None:
            return expected
        return start if expected < 0 else min(start, expected)

    def done(self, partition: int, expected: int, batch_end: int) -> int:
        """The offset below which every record of ``partition`` was processed, after a
        batch whose last record was ``batch_end - 1``: short of it while a hole is open
        (records skipped, replays not yet brought back). What the case look-up may rely
        on and what the worker's commit repair may commit."""
        due = self.expects(partition, expected)
        return batch_end if due < 0 else min(batch_end, due)

    def admit(self, partition: int, expected: int, offset: int) -> Admission:
        due = self.expects(partition, expected)
        if due < 0:  # nothing known: anything
            self._open.pop(partition, None)
            return Admission.APPLY
        if offset > due:
            self._open[partition] = due
            return Admission.GAP
        if offset < due:
            return Admission.REPLAY
        self._open.pop(partition, None)
        self._start.pop(partition, None)  # delivering from where it was sought: in order
        return Admission.APPLY if expected < 0 or offset == expected else Admission.REPLAY

    def open_gaps(self) -> dict[int, int]:
        """``partition -> first missing offset`` of the gaps not yet filled."""
        return dict(self._open)

    def close(self, partition: int) -> None:
        """The owner accepted the loss (or lost the partition)."""
        self._open.pop(partition, None)
        self._start.pop(partition, None)

    def forget(self) -> None:
        """After a rebalance: the partitions may be gone; a gap shows again if not."""
        self._open.clear()
        self._start.clear()


class Stall(enum.Enum):
    NONE = "none"
    SEEK = "seek"  # seek the partition back to the record expected
    RESTART = "restart"  # the consumer no longer fetches the partition: a new one will


class StallWatch:
    """Per partition, whether the next expected record is overdue: the partition holds
    records past it (``highwater``: the offset after its last record) and it has been
    expected for ``patience_s`` (by the caller's monotonic clock)."""

    def __init__(self, patience_s: float) -> None:
        self._patience_s = patience_s
        self._since: dict[tuple[str, int], tuple[int, float]] = {}
        #: overdue partitions sought back while their records did not flow
        self._stuck: set[tuple[str, int]] = set()

    def action(self, key: tuple[str, int], expected: int, highwater: int | None,
               now: float, *, flowing: bool) -> Stall:
        """What to do about the partition: seek it back to the expected record when that
        is overdue; restart when it is overdue again after such a seek and its records
        still do not flow (``flowing`` false: the consumer has fetched nothing of the
        partition since it was assigned, or faust left it paused). Seen in 6/7 after a
        rebalance: a worker ready and a partition's records never processed."""
        if flowing:
            self._stuck.discard(key)
        if not self.overdue(key, expected, highwater, now):
            return Stall.NONE
        if not flowing:
            if key in self._stuck:
                return Stall.RESTART
            self._stuck.add(key)
        return Stall.SEEK

    def overdue(self, key: tuple[str, int], expected: int, highwater: int | None,
                now: float) -> bool:
        """True at most once per ``patience_s`` while the same offset stays overdue."""
        if expected < 0 or highwater is None or highwater <= expected:
            self._since.pop(key, None)
            return False
        since = self._since.get(key)
        if since is None or since[0] != expected:
            self._since[key] = (expected, now)
            return False
        if now - since[1] < self._patience_s:
            return False
        self._since[key] = (expected, now)
        return True

    def forget(self) -> None:
        self._since.clear()
        self._stuck.clear()


class CommitWatch:
    """Per partition, whether the group's commit is overdue: an offset the worker had
    finished was still not committed ``patience_s`` later. Progress that creeps (faust
    committing a few offsets a second from a fragmented acknowledgement list) is overdue
    too: what counts is reaching the mark, not moving."""

    def __init__(self, patience_s: float) -> None:
        self._patience_s = patience_s
        self._marks: dict[tuple[str, int], tuple[int, float]] = {}

    def overdue(self, key: tuple[str, int], committed: int | None, done: int,
                now: float) -> bool:
        if committed is not None and committed >= done:
            self._marks.pop(key, None)
            return False
        mark = self._marks.get(key)
        if mark is None or (committed is not None and committed >= mark[0]):
            self._marks[key] = (done, now)  # the last mark was reached: watch this one
            return False
        if now - mark[1] < self._patience_s:
            return False
        del self._marks[key]
        return True

    def forget(self) -> None:
        self._marks.clear()


class ProgressWatch:
    """Whether work with something left to do has stood still: ``remaining`` above zero
    and the same as ``patience_s`` ago (by the caller's monotonic clock). Used
    for faust's table recovery, which waits for changelog records its fetcher may never
    bring (seen in 6/7: a worker whose partitions moved in a rebalance read none of a
    changelog partition's two records for over a minute, and judged nothing meanwhile)."""

    def __init__(self, patience_s: float) -> None:
        self._patience_s = patience_s
        self._mark: tuple[int, float] | None = None

    def stalled(self, remaining: int, now: float) -> bool:
        """True once ``remaining`` has not changed for ``patience_s`` (it goes down as
        work is done, up when new work comes: either way it moves); then the wait starts
        afresh."""
        if remaining <= 0:
            self._mark = None
            return False
        if self._mark is None or remaining != self._mark[0]:
            self._mark = (remaining, now)  # moving: wait from here
            return False
        if now - self._mark[1] < self._patience_s:
            return False
        self._mark = None
        return True
