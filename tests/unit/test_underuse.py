"""Under-used checkpoints against their ward's peers of the same kind."""

from __future__ import annotations

import pytest

from detectors.underuse import CheckpointDay, under_used


def day(cid: str, n: int, ward: str = "08749", kind: str = "shop") -> CheckpointDay:
    return CheckpointDay(cid, ward, kind, n)


def test_hand_computed_peer_medians() -> None:
    days = [day("A", 100), day("B", 80), day("C", 120), day("D", 19), day("E", 0),
            day("M", 5, kind="market"), day("X", 1, ward="08740")]
    found = {u.checkpoint_id: u for u in under_used(days)}
    # D: peers A, B, C, E -> median of 0, 80, 100, 120 = 90; 19 < 0.25 * 90 = 22.5
    # E: peers A, B, C, D -> median of 19, 80, 100, 120 = 90; 0 < 22.5
    # B: peers A, C, D, E -> median of 0, 19, 100, 120 = 59.5; 80 >= 14.9
    assert set(found) == {"D", "E"}
    assert found["D"].peer_median == 90.0 and found["D"].peers == 4
    # M and X have no peers of their kind in their ward: never judged.


def test_no_norm_no_verdict() -> None:
    # Peers that are themselves quiet (median 4 < 10) set no norm.
    assert under_used([day("A", 4), day("B", 4), day("C", 0)]) == []
    assert under_used([day("A", 100), day("B", 0)]) == []  # one peer only


@pytest.mark.parametrize(("kw", "msg"),
                         [({"ratio": 1.5}, "ratio"), ({"min_peers": 0}, "min_peers")])
def test_parameters_are_checked(kw: dict[str, float], msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        under_used([], **kw)  # type: ignore[arg-type]
