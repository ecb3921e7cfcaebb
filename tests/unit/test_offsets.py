"""The guards against records the consumer skips or stops delivering (streams.offsets)."""

from __future__ import annotations

from streams.offsets import (
    Admission,
    CommitWatch,
    OffsetGuard,
    ProgressWatch,
    Stall,
    StallWatch,
)


def test_the_expected_record_applies_an_older_one_replays_a_newer_one_opens_a_gap() -> None:
    guard = OffsetGuard()
    assert guard.admit(0, -1, 17) is Admission.APPLY  # unknown: anything
    assert guard.admit(0, 18, 18) is Admission.APPLY
    assert guard.admit(0, 19, 12) is Admission.REPLAY
    assert guard.admit(0, 19, 25) is Admission.GAP
    assert guard.open_gaps() == {0: 19}
    assert guard.admit(0, 19, 19) is Admission.APPLY  # the seek back brought it
    assert guard.open_gaps() == {}


def test_an_accepted_or_forgotten_gap_is_no_longer_listed() -> None:
    guard = OffsetGuard()
    guard.admit(1, 5, 9)
    guard.admit(2, 5, 9)
    guard.close(1)
    assert guard.open_gaps() == {2: 5}
    guard.forget()
    assert guard.open_gaps() == {}


def test_where_the_consumer_was_sought_is_expected_until_the_owner_knows() -> None:
    guard = OffsetGuard()
    guard.start_at(0, 40)
    assert guard.expects(0, -1) == 40 and guard.expects(0, 30) == 30
    assert guard.admit(0, -1, 45) is Admission.GAP
    assert guard.open_gaps() == {0: 40}
    assert guard.admit(0, -1, 40) is Admission.APPLY
    assert guard.admit(1, -1, 45) is Admission.APPLY  # no position known: anything
    guard.close(0)  # a loss accepted: anything again
    assert guard.admit(0, -1, 99) is Admission.APPLY


def test_records_from_the_committed_offset_must_come_even_when_the_owner_is_ahead() -> None:
    """The owner's state is ahead of the group's commit (a batch's state reached the
    changelog, its Redis views did not, then a crash): the records in between are
    replays for the state but must be delivered, for the views. A consumer that skips
    them opens a gap at the committed offset, not at the owner's next offset."""
    guard = OffsetGuard()
    guard.start_at(0, 40)
    assert guard.expects(0, 52) == 40
    assert guard.admit(0, 52, 52) is Admission.GAP  # 40..51 skipped
    assert guard.admit(0, 52, 60) is Admission.GAP
    assert guard.open_gaps() == {0: 40}
    assert guard.admit(0, 52, 12) is Admission.REPLAY  # older than where it was sought
    assert guard.admit(0, 52, 40) is Admission.REPLAY  # the seek back brought them
    assert guard.open_gaps() == {}
    assert guard.expects(0, 52) == 52  # delivering in order from there: the owner decides
    assert guard.admit(0, 52, 41) is Admission.REPLAY
    assert guard.admit(0, 52, 52) is Admission.APPLY
    assert guard.admit(0, 53, 54) is Admission.GAP
    # Sought to the owner's own next offset: nothing to replay, the same as before.
    guard.start_at(1, 52)
    assert guard.admit(1, 52, 52) is Admission.APPLY


def test_a_partition_is_overdue_only_after_patience_with_records_waiting() -> None:
    watch = StallWatch(30)
    key = ("declarations.v1", 3)
    assert not watch.overdue(key, 100, 250, now=0)
    assert not watch.overdue(key, 100, 250, now=29.9)
    assert watch.overdue(key, 100, 250, now=30)
    # Sought back once; asked again only after another full patience.
    assert not watch.overdue(key, 100, 250, now=45)
    assert watch.overdue(key, 100, 250, now=60)


def test_progress_or_an_empty_backlog_resets_the_watch() -> None:
    watch = StallWatch(30)
    key = ("declarations.v1", 0)
    watch.overdue(key, 100, 250, now=0)
    assert not watch.overdue(key, 140, 250, now=31)  # it moved: a new wait starts
    assert not watch.overdue(key, 140, 250, now=60)
    assert watch.overdue(key, 140, 250, now=61)
    watch.overdue(key, 150, 250, now=62)
    assert not watch.overdue(key, 150, 150, now=100)  # nothing waiting: not a stall
    assert not watch.overdue(key, 150, 151, now=101)  # waiting again: the clock restarts
    assert not watch.overdue(key, -1, 151, now=200)  # nothing expected yet
    assert not watch.overdue(key, 150, None, now=300)  # highwater unknown


def test_a_partition_whose_records_do_not_flow_after_a_seek_calls_for_a_restart() -> None:
    """Its records do not flow (``flowing`` false: nothing fetched since the assignment,
    or left paused) and the broker says records wait: sought back first, and if still
    nothing comes, a new consumer."""
    watch = StallWatch(30)
    key = ("declarations.v1", 0)
    assert watch.action(key, 0, 20, now=0, flowing=False) is Stall.NONE
    assert watch.action(key, 0, 20, now=30, flowing=False) is Stall.SEEK
    assert watch.action(key, 0, 20, now=45, flowing=False) is Stall.NONE  # patience again
    assert watch.action(key, 0, 20, now=60, flowing=False) is Stall.RESTART


def test_a_flowing_partition_is_only_ever_sought_back() -> None:
    """Fetched and handed on but not processed (an agent waiting for Redis, say): a
    restart would not help, the seek stays the remedy, however long it lasts."""
    watch = StallWatch(30)
    key = ("declarations.v1", 1)
    actions = [watch.action(key, 100, 250, now=t, flowing=True) for t in range(0, 200, 5)]
    assert Stall.RESTART not in actions
    assert actions.count(Stall.SEEK) == 6  # at 30, 60, ... 180


def test_a_fetch_or_progress_after_the_seek_clears_the_suspicion() -> None:
    watch = StallWatch(30)
    key = ("declarations.v1", 2)
    watch.action(key, 0, 20, now=0, flowing=False)
    assert watch.action(key, 0, 20, now=30, flowing=False) is Stall.SEEK
    # The seek worked: the records flow, though the one expected is late.
    assert watch.action(key, 0, 20, now=60, flowing=True) is Stall.SEEK
    # Stuck again later: a seek first again, not a restart.
    assert watch.action(key, 0, 20, now=90, flowing=False) is Stall.SEEK
    watch.forget()  # a rebalance
    watch.action(key, 0, 20, now=100, flowing=False)
    assert watch.action(key, 0, 20, now=130, flowing=False) is Stall.SEEK
    # Nothing waiting (the broker holds nothing past it): never a stall.
    other = ("declarations.v1", 3)
    assert {watch.action(other, 5, 5, now=t, flowing=False) for t in range(0, 300, 10)} \
        == {Stall.NONE}


def test_recovery_that_reads_nothing_for_the_patience_is_stalled() -> None:
    watch = ProgressWatch(45)
    assert not watch.stalled(2, now=0)
    assert not watch.stalled(2, now=44.9)
    assert watch.stalled(2, now=45)
    assert not watch.stalled(2, now=50)  # the wait starts afresh
    assert not watch.stalled(2, now=94)
    assert watch.stalled(2, now=95)


def test_recovery_that_moves_or_ends_is_not_stalled() -> None:
    watch = ProgressWatch(45)
    now = 0.0
    for remaining in range(10_000, 0, -250):  # slow, but moving every 40 s
        assert not watch.stalled(remaining, now=now)
        assert not watch.stalled(remaining, now=now + 40)
        now += 40
    assert not watch.stalled(0, now=now)  # done
    assert not watch.stalled(0, now=now + 100)
    # A new recovery (more to read than the last had left) waits from its own start.
    assert not watch.stalled(7, now=1_000)
    assert not watch.stalled(9, now=1_040)
    assert not watch.stalled(9, now=1_080)
    assert watch.stalled(9, now=1_085)


def test_forget_starts_every_wait_afresh() -> None:
    watch = StallWatch(30)
    key = ("t", 0)
    watch.overdue(key, 1, 5, now=0)
    watch.forget()
    assert not watch.overdue(key, 1, 5, now=31)


def test_a_commit_that_does_not_reach_what_was_finished_in_time_is_overdue() -> None:
    watch = CommitWatch(30)
    key = ("declarations.v1", 0)
    assert not watch.overdue(key, 100, 500, now=0)  # behind: the mark is 500
    assert not watch.overdue(key, 105, 520, now=10)  # creeping is not reaching it
    assert watch.overdue(key, 110, 540, now=30)
    assert not watch.overdue(key, 540, 540, now=31)  # caught up (the repair committed)


def test_a_commit_that_reaches_each_mark_in_time_is_never_overdue() -> None:
    watch = CommitWatch(30)
    key = ("alerts.v1", 2)
    now = 0.0
    for committed, done in [(None, 50), (50, 90), (90, 140), (140, 200), (200, 230)]:
        assert not watch.overdue(key, committed, done, now=now)
        now += 25  # each mark reached before the next look, 25 s later
    watch.forget()
    assert not watch.overdue(key, 0, 10, now=1000)


def test_what_may_be_committed_stops_at_an_open_hole_of_replays() -> None:
    """``done`` is what the case look-up waits for and what the worker's commit repair
    commits: a consumer that skipped from the group's commit past replays whose views a
    crash left unwritten must not have those replays committed away before they come."""
    guard = OffsetGuard()
    guard.start_at(2, 1300)  # the group's commit; the state had applied up to 1473
    assert guard.admit(2, 1474, 1500) is Admission.GAP  # skipped 1300..1499
    assert guard.done(2, 1474, 1501) == 1300  # not 1474 (the state's) nor 1501
    assert guard.admit(2, 1474, 1300) is Admission.REPLAY  # the seek back brings them
    assert guard.admit(2, 1474, 1301) is Admission.REPLAY
    assert guard.done(2, 1474, 1302) == 1302  # replays up to 1301 are written again
    assert guard.admit(2, 1474, 1474) is Admission.APPLY
    assert guard.done(2, 1475, 1475) == 1475
    assert OffsetGuard().done(0, -1, 10) == 10  # nothing expected: the batch is done
