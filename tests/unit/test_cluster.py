"""symptom_cluster: distinct people, sliding windows, background rate, one alert per episode."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from detectors.cluster import (
    DAY_MS,
    ClusterDetector,
    ClusterParams,
    ClusterState,
    poisson_threshold,
)
from detectors.flags import DeclarationFlags as F
from tests.factories import T0, declaration_event
from vhc_common.schemas import AlertKind, PersonRef

SYM = F.SYMPTOMATIC


def person(n: int) -> PersonRef:
    return PersonRef(key=f"{n:032x}")


def decl(minute: float, who: int, **kw: object) -> object:
    return declaration_event(scanned_at=T0 + timedelta(minutes=minute), person=person(who), **kw)


def run(det: ClusterDetector, state: ClusterState, items: list[tuple[float, int, F]]) -> list:
    alerts = []
    for minute, who, flags in items:
        state, new = det.update(state, decl(minute, who), flags)  # type: ignore[arg-type]
        alerts.append(new)
    return alerts


@pytest.mark.parametrize(
    ("lam", "q"),
    [
        (0.0, 1),
        # P(X >= 5) = 0.00366, P(X >= 6) = 0.000594 for Poisson(1)
        (1.0, 6),
        # P(X >= 3) = 0.00216, P(X >= 4) = 0.000133 for Poisson(0.25)
        (0.25, 4),
        # 5000 a day, 2% symptomatic: lambda = 0.02 * 5000 / 24 = 4.1667;
        # P(X >= 12) = 0.00129, P(X >= 13) = 0.000400
        (0.02 * 5000 / 24, 13),
    ],
)
def test_poisson_threshold(lam: float, q: int) -> None:
    assert poisson_threshold(lam, 0.001) == q


def test_raised_on_the_third_distinct_person_within_the_window() -> None:
    det, state = ClusterDetector(), ClusterState()
    alerts = run(det, state, [(0, 1, SYM), (10, 1, SYM), (20, 2, SYM), (30, 3, F.NONE),
                              (59, 4, SYM)])
    assert [len(a) for a in alerts] == [0, 0, 0, 0, 1]  # person 1 twice counts once
    (alert,) = alerts[-1]
    assert alert.kind is AlertKind.SYMPTOM_CLUSTER
    assert alert.evidence.observed == 3 and alert.evidence.threshold == 3
    assert len(alert.evidence.declaration_ids) == 4 and len(alert.evidence.person_keys) == 3
    assert alert.window_start == T0


def test_spread_out_cases_are_no_cluster_until_one_window_holds_three() -> None:
    det, state = ClusterDetector(), ClusterState()
    alerts = run(det, state, [(0, 1, SYM), (50, 2, SYM), (100, 3, SYM)])
    assert alerts == [[], [], []]  # [0,60] and [50,110] hold two each
    (late,) = run(det, state, [(55, 4, SYM)])  # arrives late: [0,60] now holds 1, 2, 4
    assert len(late) == 1 and late[0].window_start == T0


def test_one_condition_one_alert_then_a_new_episode() -> None:
    det, state = ClusterDetector(), ClusterState()
    first = run(det, state, [(0, 1, SYM), (5, 2, SYM), (10, 3, SYM), (15, 4, SYM),
                             (70, 5, SYM)])
    assert [len(a) for a in first] == [0, 0, 1, 0, 0]
    # Three hours later a new trio is a new condition with a new id.
    second = run(det, state, [(250, 6, SYM), (255, 7, SYM), (260, 8, SYM)])
    assert [len(a) for a in second] == [0, 0, 1]
    assert second[-1][0].alert_id != first[2][0].alert_id


def test_replayed_declarations_change_nothing() -> None:
    det = ClusterDetector()
    state = ClusterState()
    events = [decl(m, w) for m, w in ((0, 1), (5, 2), (10, 3))]
    ids = []
    for e in events + events:
        state, alerts = det.update(state, e, SYM)  # type: ignore[arg-type]
        ids += [a.alert_id for a in alerts]
    assert len(ids) == 1


def test_same_events_same_alert_id() -> None:
    events = [decl(m, w) for m, w in ((0, 1), (5, 2), (10, 3))]
    runs = []
    for _ in range(2):
        state, ids = ClusterState(), []
        for e in events:
            state, alerts = ClusterDetector().update(state, e, SYM)  # type: ignore[arg-type]
            ids += [a.alert_id for a in alerts]
        runs.append(ids)
    assert runs[0] == runs[1] and len(runs[0]) == 1


def test_busy_background_raises_the_threshold() -> None:
    det = ClusterDetector()
    state = ClusterState()
    # Seven days at 5000 declarations, 100 symptomatic each (share 2%): lambda for an
    # hour = 0.02 * 5000 / 24 = 4.1667 and k_eff = 13 (see test_poisson_threshold).
    day0 = int(T0.timestamp() * 1000) // DAY_MS
    for d in range(1, 8):
        state.days[day0 - d] = [5000, 100]
    k_eff, lam = det.threshold(state, int(T0.timestamp() * 1000))
    assert (k_eff, round(lam, 4)) == (13, 4.1667)
    alerts = run(det, state, [(i * 4, 100 + i, SYM) for i in range(13)])
    assert [len(a) for a in alerts] == [0] * 12 + [1]


def test_cold_start_uses_the_fixed_floor() -> None:
    assert ClusterDetector().threshold(ClusterState(), 0) == (3, 0.0)


def test_state_round_trips() -> None:
    det, state = ClusterDetector(), ClusterState()
    run(det, state, [(0, 1, SYM), (5, 2, SYM), (10, 3, SYM), (20, 4, F.NONE)])
    assert ClusterState.decode(state.encode()) == state


def test_old_cases_leave_the_state() -> None:
    det = ClusterDetector(ClusterParams(horizon_s=2 * 3600))
    state = ClusterState()
    run(det, state, [(0, 1, SYM), (600, 2, SYM)])
    assert [c[1] for c in state.cases] == [f"{2:032x}"]


@pytest.mark.parametrize("kw", [{"min_people": 1}, {"window_s": 10}, {"alpha": 0.9},
                                {"baseline_days": 0}, {"horizon_s": 60}])
def test_parameters_are_checked(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="got"):
        ClusterParams(**kw)  # type: ignore[arg-type]


def test_uuid_ids_in_evidence() -> None:
    det, state = ClusterDetector(), ClusterState()
    alerts = run(det, state, [(0, 1, SYM), (1, 2, SYM), (2, 3, SYM)])
    assert all(isinstance(i, uuid.UUID) for i in alerts[-1][0].evidence.declaration_ids)
