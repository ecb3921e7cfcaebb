"""Ordinary traffic of a province, deterministic for a seed.

A province has checkpoints of several kinds on real wards (``vietnam-provinces``), each
with its own weekly opening pattern (offices closed at weekends, shops closed on Sundays,
markets every day, factories in shifts...), a time-of-day curve, a typical volume and a
day-to-day variation (a gamma multiplier, coefficient of variation ``day_cv``). Declarants
come back: most are regulars of the checkpoint or live in its ward. A small share of them
is sick for a few days and says so each time they declare; a smaller share reports a
passing symptom once. Together about ``symptomatic_share`` of declarations (0.5 %) are
symptomatic.

Only some checkpoints register their opening hours (``registered_share``), in either of
the contract's forms; the others must be learned from history.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from vietnam_provinces import Province, ProvinceCode, Ward

__all__ = [
    "KINDS",
    "LOCAL",
    "CheckpointPlan",
    "Declaration",
    "KindProfile",
    "Province",
    "ProvincePlan",
    "TrafficConfig",
    "hour_rates",
    "ordinary_traffic",
    "plan_province",
]

LOCAL = timedelta(hours=7)
SYMPTOMS = ("fever", "cough", "sore_throat", "fatigue", "shortness_of_breath",
            "loss_of_taste_or_smell")

#: weekday (0 = Monday) -> list of (open minute, close minute) local, or [] closed
Week = dict[int, list[tuple[int, int]]]


def _every_day(spans: list[tuple[int, int]], closed: tuple[int, ...] = ()) -> Week:
    return {d: ([] if d in closed else list(spans)) for d in range(7)}


def _hm(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 60 + int(m)


@dataclass(frozen=True)
class KindProfile:
    kind: str
    label_vi: str
    volume: tuple[int, int]
    weeks: tuple[tuple[float, Week], ...]
    curve: Callable[[float], float]
    weekend_factor: float = 1.0


def _curve(points: dict[int, float]) -> Callable[[float], float]:
    """Piecewise-constant weight by local hour."""
    keys = sorted(points)

    def weight(hour: float) -> float:
        value = points[keys[0]]
        for k in keys:
            if hour >= k:
                value = points[k]
        return value

    return weight


OFFICE_WEEK = _every_day([(_hm("07:30"), _hm("11:30")), (_hm("13:30"), _hm("17:00"))],
                         closed=(5, 6))
KINDS: dict[str, KindProfile] = {
    "market": KindProfile(
        "market", "Chợ", (700, 2000),
        ((0.75, _every_day([(_hm("05:00"), _hm("18:00"))])),
         (0.25, _every_day([(_hm("05:00"), _hm("18:00"))], closed=(0,)))),
        _curve({0: 3.0, 9: 2.0, 11: 1.0, 14: 1.5}), weekend_factor=1.2),
    "supermarket": KindProfile(
        "supermarket", "Siêu thị", (400, 1200),
        ((1.0, _every_day([(_hm("08:00"), _hm("22:00"))])),),
        _curve({0: 1.0, 11: 1.3, 13: 0.8, 16: 2.0, 20: 1.2}), weekend_factor=1.4),
    "shop": KindProfile(
        "shop", "Cửa hàng", (60, 250),
        ((0.7, _every_day([(_hm("07:00"), _hm("21:00"))])),
         (0.3, _every_day([(_hm("07:00"), _hm("21:00"))], closed=(6,)))),
        _curve({0: 1.0, 17: 1.6, 20: 0.8})),
    "office": KindProfile(
        "office", "Văn phòng", (60, 300),
        ((0.8, OFFICE_WEEK),
         (0.2, {**OFFICE_WEEK, 5: [(_hm("07:30"), _hm("11:30"))]})),
        _curve({0: 3.0, 8: 1.0, 13: 2.0, 14: 0.8})),
    "school": KindProfile(
        "school", "Trường", (200, 600),
        ((1.0, _every_day([(_hm("07:00"), _hm("17:00"))], closed=(5, 6))),),
        _curve({0: 4.0, 8: 0.5, 11: 2.0, 14: 1.0})),
    "hospital": KindProfile(
        "hospital", "Bệnh viện", (300, 900),
        ((1.0, _every_day([(0, 24 * 60)])),),
        _curve({0: 0.2, 6: 2.0, 11: 1.2, 17: 0.5}), weekend_factor=0.7),
    "factory": KindProfile(
        "factory", "Nhà máy", (200, 700),
        ((1.0, _every_day([(0, 24 * 60)], closed=(6,))),),
        _curve({0: 0.1, 6: 3.0, 7: 0.3, 14: 3.0, 15: 0.3, 22: 2.0, 23: 0.1})),
}
#: How often each kind occurs in a province (the issue's mix leans on markets, shops and
#: offices closed at weekends).
KIND_MIX = (("market", 0.15), ("supermarket", 0.1), ("shop", 0.3), ("office", 0.25),
            ("school", 0.08), ("hospital", 0.04), ("factory", 0.08))


@dataclass(frozen=True)
class TrafficConfig:
    seed: int = 1
    days: int = 15
    checkpoints: int = 40
    wards: int = 6
    province_code: int | None = None
    symptomatic_share: float = 0.005
    persistent_share: float = 0.6
    day_cv: float = 0.15
    registered_share: float = 0.3
    #: the local date of day 0 (default: so the last day ends before now)
    start_local: datetime | None = None
    volume_scale: float = 1.0


@dataclass
class CheckpointPlan:
    checkpoint_id: str
    kind: str
    ward_code: str
    ward_name: str
    name: str
    address: str
    week: Week
    volume: float
    registered: list[str] | str | None
    regulars: int

    def spans_on(self, weekday: int) -> list[tuple[int, int]]:
        return self.week.get(weekday, [])

    def body(self) -> dict[str, object]:
        """``POST /v1/checkpoints`` body."""
        return {"checkpoint_id": self.checkpoint_id, "name": self.name, "kind": self.kind,
                "ward_code": self.ward_code, "address": self.address,
                "opening_hours": self.registered}


@dataclass
class Declaration:
    """One generated declaration; ``sent_at`` is when its front end sends it."""

    declaration_id: str
    checkpoint_id: str
    scanned_at: datetime
    person: str
    symptoms: tuple[str, ...] = ()
    temperature_c: float | None = None
    contact: str = "none"
    travel_from: tuple[str, ...] = ()
    sent_at: datetime | None = None
    tag: str = ""

    def body(self) -> dict[str, object]:
        return {"declaration_id": self.declaration_id, "checkpoint_id": self.checkpoint_id,
                "scanned_at": self.scanned_at.isoformat(), "person": {"id_number": self.person},
                "temperature_c": self.temperature_c, "symptoms": list(self.symptoms),
                "contact": self.contact, "travel_from": list(self.travel_from)}


@dataclass
class ProvincePlan:
    config: TrafficConfig
    province_code: str
    province_name: str
    start_utc: datetime
    checkpoints: list[CheckpointPlan]
    wards: dict[str, str] = field(default_factory=dict)

    def by_id(self, checkpoint_id: str) -> CheckpointPlan:
        return next(c for c in self.checkpoints if c.checkpoint_id == checkpoint_id)

    def day_start(self, day: int) -> datetime:
        return self.start_utc + timedelta(days=day)


def _osm(week: Week) -> str:
    """OpenStreetMap form, consecutive days with the same hours grouped (``Mo-Fr ...``)."""
    names = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")

    def text(spans: list[tuple[int, int]]) -> str:
        if not spans:
            return "off"
        return ",".join(f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}"
                        for a, b in spans)

    rules, d = [], 0
    while d < 7:
        e = d
        while e + 1 < 7 and week.get(e + 1, []) == week.get(d, []):
            e += 1
        days = names[d] if d == e else f"{names[d]}-{names[e]}"
        rules.append(f"{days} {text(week.get(d, []))}")
        d = e + 1
    return "; ".join(rules)


def _daily(week: Week) -> list[str] | None:
    """The daily-list form, when every open day has the same spans (and no day is closed)."""
    spans = [tuple(week.get(d, [])) for d in range(7)]
    if len(set(spans)) != 1 or not spans[0]:
        return None
    if spans[0] == ((0, 24 * 60),):
        return None
    return [f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in spans[0]]


def plan_province(config: TrafficConfig) -> ProvincePlan:
    rng = random.Random(f"province-{config.seed}")
    codes = [p for p in ProvinceCode]
    province_code = (ProvinceCode(config.province_code) if config.province_code
                     else rng.choice(codes))
    province = Province.from_code(province_code)
    wards = sorted((w for w in Ward.iter_all() if w.province_code == province_code),
                   key=lambda w: int(w.code))
    chosen = rng.sample(wards, min(config.wards, len(wards)))
    now_local = datetime.now(UTC) + LOCAL
    start_local = config.start_local or (now_local - timedelta(days=config.days + 1)).replace(
        hour=0, minute=0, second=0, microsecond=0)
    start_utc = (start_local - LOCAL).replace(tzinfo=UTC)
    plans: list[CheckpointPlan] = []
    kinds = [k for k, _ in KIND_MIX]
    weights = [w for _, w in KIND_MIX]
    for i in range(config.checkpoints):
        ward = chosen[i % len(chosen)] if i < len(chosen) else rng.choice(chosen)
        kind = kinds[i % len(kinds)] if i < len(kinds) else rng.choices(kinds, weights)[0]
        profile = KINDS[kind]
        shares = [s for s, _ in profile.weeks]
        week = rng.choices([w for _, w in profile.weeks], shares)[0]
        volume = rng.uniform(*profile.volume) * config.volume_scale
        ward_code = f"{int(ward.code):05d}"
        registered: list[str] | str | None = None
        if rng.random() < config.registered_share:
            registered = _daily(week) if rng.random() < 0.5 and _daily(week) else _osm(week)
        cid = f"SIM{config.seed}-{ward_code}-{kind[:3].upper()}{i:02d}"
        unit = f"{profile.label_vi} số {i + 1}"
        plans.append(CheckpointPlan(
            checkpoint_id=cid, kind=kind, ward_code=ward_code, ward_name=ward.name,
            name=f"{unit} - {ward.name} - {province.name}",
            address=f"{rng.randint(1, 300)} đường số {rng.randint(1, 40)}, {ward.name}",
            week=week, volume=volume, registered=registered,
            regulars=max(30, int(volume * 2))))
    return ProvincePlan(config, f"{int(province_code):02d}", province.name, start_utc, plans,
                        {f"{int(w.code):05d}": w.name for w in chosen})


class People:
    """Who declares: regulars of the checkpoint, people of its ward, a few visitors; and
    who is sick, day by day (a person is sick for 2 to 6 days and says so)."""

    def __init__(self, plan: ProvincePlan, rng: random.Random) -> None:
        self._rng = rng
        self._wards = sorted(plan.wards)
        self._ward_size = {w: max(2000, int(sum(c.volume for c in plan.checkpoints
                                                if c.ward_code == w) * 3))
                           for w in self._wards}
        self._sick_until: dict[str, int] = {}
        self._plan = plan
        population = sum(self._ward_size.values())
        config = plan.config
        # Sick people declare symptoms every time; about persistent_share of the
        # symptomatic share comes from them. A sick person declares roughly as often as
        # anyone, so prevalence ~ that share; new cases a day = prevalence / mean duration.
        self._incidence = (config.symptomatic_share * config.persistent_share / 4.0
                           * population)
        self._population = population

    def person(self, ward_index: int, number: int) -> str:
        return f"{ward_index + 1:03d}{number:09d}"

    def pick(self, cp: CheckpointPlan, cp_index: int) -> str:
        rng = self._rng
        ward_index = self._wards.index(cp.ward_code)
        roll = rng.random()
        if roll < 0.5:  # a regular of this checkpoint
            return self.person(ward_index, (cp_index * 7919 + rng.randrange(cp.regulars))
                               % self._ward_size[cp.ward_code])
        if roll < 0.9:
            return self.person(ward_index, rng.randrange(self._ward_size[cp.ward_code]))
        other = rng.randrange(len(self._wards))
        return self.person(other, rng.randrange(self._ward_size[self._wards[other]]))

    def new_day(self, day: int) -> None:
        rng = self._rng
        n = _poisson(rng, self._incidence)
        for _ in range(n):
            w = rng.randrange(len(self._wards))
            who = self.person(w, rng.randrange(self._ward_size[self._wards[w]]))
            self._sick_until[who] = day + rng.randint(2, 6)

    def sick(self, person: str, day: int) -> bool:
        return self._sick_until.get(person, -1) >= day


def _poisson(rng: random.Random, lam: float) -> int:
    """Poisson draw (inversion for small rates, normal approximation above 500)."""
    if lam <= 0:
        return 0
    if lam > 500:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    threshold = math.exp(-lam)
    k, product = 0, rng.random()
    while product > threshold and k < 10_000:
        k += 1
        product *= rng.random()
    return k


def hour_rates(cp: CheckpointPlan, day_start_local: datetime, level: float) -> Iterator[
        tuple[int, float, int, int]]:
    """``(local hour, expected declarations, open from minute, open to minute)`` for each
    hour of one local day with opening time, given the day's level multiplier."""
    profile = KINDS[cp.kind]
    weekday = day_start_local.weekday()
    spans = cp.spans_on(weekday)
    if not spans:
        return
    factor = profile.weekend_factor if weekday >= 5 else 1.0
    slots: list[tuple[int, float, int, int]] = []
    for hour in range(24):
        a, b = hour * 60, hour * 60 + 60
        covered = [(max(a, s), min(b, e)) for s, e in spans if s < b and e > a]
        minutes = sum(e - s for s, e in covered)
        if minutes:
            slots.append((hour, profile.curve(hour) * minutes / 60, covered[0][0],
                          covered[-1][1]))
    total_weight = sum(w for _, w, _, _ in slots)
    for hour, weight, lo, hi in slots:
        yield hour, cp.volume * factor * level * weight / total_weight, lo, hi


def ordinary_traffic(plan: ProvincePlan) -> list[Declaration]:
    """Every ordinary declaration of the scenario, in ``scanned_at`` order."""
    config = plan.config
    rng = random.Random(f"traffic-{config.seed}")
    people = People(plan, rng)
    shape = 1.0 / config.day_cv**2
    out: list[Declaration] = []
    iid_share = config.symptomatic_share * (1 - config.persistent_share)
    for day in range(config.days):
        people.new_day(day)
        day_utc = plan.day_start(day)
        day_local = day_utc + LOCAL
        for index, cp in enumerate(plan.checkpoints):
            level = rng.gammavariate(shape, 1.0 / shape)
            for _hour, rate, lo, hi in hour_rates(cp, day_local, level):
                for _ in range(_poisson(rng, rate)):
                    minute = rng.uniform(lo, hi)
                    at = day_utc + timedelta(minutes=minute)
                    who = people.pick(cp, index)
                    symptoms: tuple[str, ...] = ()
                    if people.sick(who, day):
                        symptoms = tuple(sorted(rng.sample(SYMPTOMS, rng.choice((1, 1, 2)))))
                    elif rng.random() < iid_share:
                        symptoms = (rng.choice(("cough", "fatigue", "sore_throat")),)
                    out.append(_declaration(rng, cp.checkpoint_id, at, who, symptoms))
    out.sort(key=lambda d: d.scanned_at)
    return out


def _declaration(rng: random.Random, checkpoint_id: str, at: datetime, person: str,
                 symptoms: tuple[str, ...], tag: str = "") -> Declaration:
    fever = "fever" in symptoms
    temperature = round(rng.gauss(38.3, 0.4) if fever else rng.gauss(36.6, 0.25), 1)
    contact = rng.choices(("none", "f1", "f0", "suspected"), (0.994, 0.003, 0.0005, 0.0025))[0]
    return Declaration(
        declaration_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        checkpoint_id=checkpoint_id, scanned_at=at.replace(microsecond=(at.microsecond // 1000)
                                                           * 1000),
        person=person, symptoms=symptoms,
        temperature_c=min(max(temperature, 34.0), 42.0) if rng.random() < 0.8 else None,
        contact=contact, tag=tag)
