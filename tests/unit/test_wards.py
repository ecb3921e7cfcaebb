"""Ward-level aberration: a ward's checkpoints summed, replays counted once."""

from __future__ import annotations

from detectors.aberration import AberrationDetector
from detectors.counts import HOUR_MS
from detectors.flags import DeclarationFlags as F
from streams.wards import WardDetection, WardRecord, WardState
from vhc_common.schemas import AlertKind

D0 = 20_000


def day_records(day: int, spike: bool = False) -> list[WardRecord]:
    """Two checkpoints' worth: 10 declarations an hour 08..17, one symptomatic a day,
    or (spike) 8 symptomatic in hour 10."""
    out = []
    for hour in range(8, 18):
        for i in range(10):
            sym = (spike and hour == 10 and i < 8) or (hour == 9 and i == 0)
            out.append(WardRecord("08749", ((D0 + day) * 24 + hour) * HOUR_MS + i * 60_000,
                                  int(F.SYMPTOMATIC if sym else F.NONE)))
    return out


def test_ward_series_alerts_once_and_ignores_replays() -> None:
    states: dict[str, str] = {}
    wards = WardDetection(states=states, aberration=AberrationDetector(), grace_s=300,
                          ward_names={"08749": "Phường Xuân Hòa"})
    offset = 0
    alerts = []
    for day in range(18):
        batch = []
        for record in day_records(day, spike=day == 17):
            offset += 1
            batch.append((offset, record))
        alerts += wards.on_records(batch)
        # The same records again (a replay upstream of the ward topic offsets): ignored.
        assert wards.on_records(batch[:50]) == []
    assert [a.kind for a in alerts] == [AlertKind.SYMPTOM_ABERRATION]
    (alert,) = alerts
    assert alert.checkpoint_id is None and alert.ward_code == "08749"
    assert "Phường Xuân Hòa" in alert.summary.vi
    state = WardState.decode(states["08749"])
    assert state.offset == offset
    # 18 days x 100 records, pruned to the hours the baselines need
    assert sum(t for t, _ in state.history.hours.values()) <= 18 * 100


def test_ward_record_round_trip() -> None:
    record = WardRecord("08740", 123, 3)
    assert WardRecord.decode(record.encode()) == record
