"""The demo's story: one cast, a planned week of counter visits, the clips to film and the POS sales.

Pure planning, no I/O: `plan_story(cast, shop, days, seed)` gives every visit (footage `Visit`s,
UTC), the stretches of the day worth filming (`clips`, one per visit or per busy stretch of
back-to-back visits) and the sales the till records. Footage, ground truth and POS exports made
from one `Story` agree by construction: each sale of a filmed customer is rung up while that
customer stands at the counter.

The cast comes from the gallery (`choose_cast`): a staff member at the side desk on a morning and
an evening shift, a VIP and a blocked person (both raise alerts; they need spare photos so their
reference photos under known_people/ are not the ones filmed), regulars who come on most days
(half of them twice: morning and evening), newcomers who first appear on later days and sometimes come
back, and one regular who leaves bills unpaid (a repeat defaulter). Arrivals follow each
regular's habit (an early bird opens the day, a late regular closes it) around a morning and an
evening peak; afternoons stay quiet. Walk-ins are cash sales with no POS customer id whose buyer
the camera never saw (served at the door, phone orders picked up by a runner): they are marked
`kind == "walk_in"` and placed well away from every filmed visit, so they never link to one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import polars as pl

from watershop_dagster.config import POS_COLUMNS
from watershop_dagster.synthetic.footage import ROLE_CUSTOMER, ROLE_STAFF, Visit

ROLE_VIP = "vip"
ROLE_BLOCKED = "blocked"
KIND_VISIT = "visit"
KIND_WALK_IN = "walk_in"

#: a person needs this many photos to play a known role: 2 become reference photos, the rest are filmed
KNOWN_ROLE_MIN_PHOTOS = 3
REFERENCE_PHOTOS = 2
PRICES = {"10L": 20.0, "20L": 35.0}

_WALK_S = (4.0, 7.0)
_COUNTER_S = {ROLE_CUSTOMER: (20.0, 50.0), ROLE_VIP: (70.0, 100.0), ROLE_BLOCKED: (15.0, 25.0)}
_MIN_GAP_S = 3.0  # between one customer leaving and the next entering
_CLIP_PAD_S = 2.0  # filmed before entry and after exit
_CLIP_MERGE_S = 30.0  # visits closer than this share one clip
_MORNING, _EVENING, _PEAK_SD_H = 8.5, 18.5, 0.9
_HABIT_SD_MIN = 25.0  # a regular arrives within about this many minutes of their habit
_ATTENDANCE = 0.85  # a regular comes on this share of days (Sundays less)
_SUNDAY_FACTOR = 0.7
_NEWCOMER_RETURN = 0.4  # after their first day, a newcomer comes back on this share of days
_WALK_INS_PER_DAY = 1.5
_WALK_IN_CLEARANCE_S = 300.0  # walk-ins are at least this far from any filmed visit
_UNPAID_DEFAULTER_VISITS = 3  # the defaulter leaves this many bills unpaid over the story
_ONLY_ASKING_P = 0.04  # share of customer visits that only ask and leave without buying


@dataclass(frozen=True)
class Cast:
    """Who plays which part; every name is a gallery person."""

    regulars: tuple[str, ...]
    newcomers: tuple[str, ...] = ()
    staff: str | None = None
    vip: str | None = None
    blocked: str | None = None
    defaulter: str | None = None  # one of the regulars
    twice_a_day: tuple[str, ...] = ()  # regulars who come morning and evening

    @property
    def known(self) -> dict[str, str]:
        """person -> known_people role (staff, vip, blocked)."""
        return {p: r for r, p in ((ROLE_STAFF, self.staff), (ROLE_VIP, self.vip), (ROLE_BLOCKED, self.blocked)) if p}

    @property
    def people(self) -> tuple[str, ...]:
        return (*self.regulars, *self.newcomers, *self.known)


def choose_cast(photo_counts: Mapping[str, int], seed: int = 0) -> Cast:
    """Cast a gallery (person -> number of photos); deterministic by seed.

    Known roles go to people with at least `KNOWN_ROLE_MIN_PHOTOS` photos (staff first, then VIP,
    then blocked) as long as at least two customers are left; about a third of the customers are
    newcomers (none with fewer than four customers).
    """
    rng = np.random.default_rng([seed, 41])
    people = sorted(photo_counts)
    order = [people[i] for i in rng.permutation(len(people))]
    roles: dict[str, str | None] = {ROLE_STAFF: None, ROLE_VIP: None, ROLE_BLOCKED: None}
    for role in roles:
        candidates = [p for p in order if photo_counts[p] >= KNOWN_ROLE_MIN_PHOTOS and p not in roles.values()]
        if candidates and len(order) - sum(v is not None for v in roles.values()) - 1 >= 2:
            roles[role] = candidates[0]
    customers = [p for p in order if p not in roles.values()]
    n_new = len(customers) // 3 if len(customers) >= 4 else 0
    regulars, newcomers = customers[: len(customers) - n_new], customers[len(customers) - n_new :]
    defaulter = regulars[-1] if len(regulars) >= 3 else None
    twice = tuple(regulars[1 : 1 + len(regulars) // 2])
    return Cast(
        regulars=tuple(regulars), newcomers=tuple(newcomers), staff=roles[ROLE_STAFF], vip=roles[ROLE_VIP],
        blocked=roles[ROLE_BLOCKED], defaulter=defaulter, twice_a_day=twice,
    )


def pos_customer_id(person: str) -> str:
    """The loyalty id the till keeps for a person: derived from the name, never the name itself."""
    return "C" + hashlib.sha1(person.encode()).hexdigest()[:5].upper()


@dataclass(frozen=True)
class Sale:
    """One POS row plus what the story knows about it (`kind`, `person`, the visit it belongs to)."""

    day: date
    kind: str  # KIND_VISIT or KIND_WALK_IN
    person: str | None
    visit_index: int | None  # index into Story.visits
    timestamp_local: datetime  # naive shop-local time, whole seconds
    customer_id: str | None
    payment_mode: str
    can_size: str
    number_of_cans: int
    payment_status: str


@dataclass(frozen=True)
class Story:
    cast: Cast
    days: tuple[date, ...]
    visits: tuple[Visit, ...]  # every day, staff shifts included, sorted by entry
    visit_days: tuple[date, ...]  # local day of each visit
    clips: Mapping[date, tuple[tuple[datetime, float], ...]]  # day -> (aware local start, seconds)
    sales: tuple[Sale, ...]

    def day_visits(self, day: date) -> list[Visit]:
        return [v for v, d in zip(self.visits, self.visit_days, strict=True) if d == day]

    def sales_frame(self, shop_id: str, day: date | None = None, prices: Mapping[str, float] | None = None) -> pl.DataFrame:
        """POS export rows (`POS_COLUMNS`) plus `kind` and `person`, ordered by time; ids count per day."""
        prices = {**PRICES, **(prices or {})}
        rows = [s for s in self.sales if day is None or s.day == day]
        rows.sort(key=lambda s: (s.timestamp_local, s.kind, s.person or ""))
        ids: dict[date, int] = {}
        records = []
        for sale in rows:
            ids[sale.day] = ids.get(sale.day, 0) + 1
            records.append({
                "transaction_id": f"{shop_id}-{sale.day:%Y%m%d}-S{ids[sale.day]:03d}",
                "timestamp": sale.timestamp_local.strftime("%Y-%m-%d %H:%M:%S"),
                "customer_id": sale.customer_id,
                "payment_mode": sale.payment_mode,
                "can_size": sale.can_size,
                "number_of_cans": sale.number_of_cans,
                "amount": prices[sale.can_size] * sale.number_of_cans,
                "payment_status": sale.payment_status,
                "kind": sale.kind,
                "person": sale.person,
            })
        schema = {c: pl.Utf8 for c in POS_COLUMNS} | {"number_of_cans": pl.Int64, "amount": pl.Float64,
                                                      "kind": pl.Utf8, "person": pl.Utf8}
        return pl.DataFrame(records, schema=schema, orient="row")

    def clip_seconds(self) -> float:
        return sum(seconds for clips in self.clips.values() for _, seconds in clips)


def _hours(moment: time) -> float:
    return moment.hour + moment.minute / 60 + moment.second / 3600


def _habit_hour(rng: np.random.Generator, open_h: float, close_h: float) -> float:
    """Most people shop around the morning or the evening peak; a few in the quiet middle of the day."""
    kind = rng.choice(3, p=[0.45, 0.45, 0.10])
    hour = (rng.normal(_MORNING, _PEAK_SD_H), rng.normal(_EVENING, _PEAK_SD_H), rng.uniform(open_h, close_h))[kind]
    return float(np.clip(hour, open_h + 0.5, close_h - 0.75))


def plan_story(cast: Cast, shop, days: Sequence[date], seed: int = 0) -> Story:
    """The week (or any run of days) of `cast` at `shop` (a ShopConfig: tz, opening/closing time)."""
    days = tuple(sorted(days))
    n = len(days)
    rng = np.random.default_rng([seed, 42])
    open_h = _hours(shop.opening_time)
    close_h = _hours(shop.closing_time) if shop.closing_time > shop.opening_time else 24.0
    regulars = list(cast.regulars)
    # Half the regulars shop around the morning peak, half around the evening one; those who
    # come twice a day (a tea stall, an eatery) come back at the other peak.
    peaks = (_MORNING, _EVENING)
    habits = {p: float(rng.normal(peaks[k % 2], _PEAK_SD_H * 0.7)) for k, p in enumerate(regulars)}
    second = {p: float(rng.normal(peaks[(k + 1) % 2], _PEAK_SD_H * 0.5))
              for k, p in enumerate(regulars) if p in cast.twice_a_day}
    # The early bird opens the shop, the latecomer closes it; both come every day.
    opener = regulars[0] if regulars else None
    closer = next((p for p in reversed(regulars) if p not in (opener, cast.defaulter, *cast.twice_a_day)), None)
    if opener:
        habits[opener] = open_h + 0.12
    if closer:
        habits[closer] = close_h - 0.3
    newcomer_day = {p: 1 + (k * max(1, n - 1)) // max(1, len(cast.newcomers)) for k, p in enumerate(cast.newcomers)}
    newcomer_day = {p: min(d, n - 1) for p, d in newcomer_day.items()}
    vip_days = {min(1, n - 1), max(0, n - 3)}
    blocked_days = {max(0, n - 2)}

    plan: list[tuple[date, Visit]] = []
    for index, day in enumerate(days):
        day_rng = np.random.default_rng([seed, 43, day.toordinal()])
        factor = _SUNDAY_FACTOR if day.weekday() == 6 else 1.0
        wanted: list[tuple[float, str, str]] = []  # (arrival hour, person, role)
        for person in regulars:
            edge = person in (opener, closer)
            if edge or day_rng.random() < _ATTENDANCE * factor:
                spread = 4.0 if edge else _HABIT_SD_MIN
                wanted.append((habits[person] + day_rng.normal(0, spread) / 60, person, ROLE_CUSTOMER))
            if person in second and day_rng.random() < _ATTENDANCE * factor:
                wanted.append((second[person] + day_rng.normal(0, _HABIT_SD_MIN) / 60, person, ROLE_CUSTOMER))
        for person, first in newcomer_day.items():
            if index == first or (index > first and day_rng.random() < _NEWCOMER_RETURN):
                wanted.append((_habit_hour(day_rng, open_h, close_h), person, ROLE_CUSTOMER))
        if cast.vip and index in vip_days:
            wanted.append((float(day_rng.uniform(10.5, 12.5)), cast.vip, ROLE_VIP))
        if cast.blocked and index in blocked_days:
            wanted.append((float(day_rng.uniform(15.0, 16.5)), cast.blocked, ROLE_BLOCKED))
        plan += [(day, v) for v in _schedule(day_rng, shop, day, wanted, open_h, close_h)]
        if cast.staff:
            plan += [(day, v) for v in _staff_shifts(day_rng, shop, day, cast.staff, open_h, close_h)]
    plan.sort(key=lambda item: (item[1].entry_utc, item[1].person))
    visits = tuple(v for _, v in plan)
    visit_days = tuple(d for d, _ in plan)
    clips = {day: _clips(shop, [v for v, d in zip(visits, visit_days, strict=True) if d == day and v.role != ROLE_STAFF])
             for day in days}
    sales = _sales(np.random.default_rng([seed, 44]), cast, shop, days, visits, visit_days)
    return Story(cast=cast, days=days, visits=visits, visit_days=visit_days, clips=clips, sales=tuple(sales))


def _schedule(rng, shop, day: date, wanted, open_h: float, close_h: float) -> list[Visit]:
    """One visit per wish, in arrival order, never overlapping: a later arrival waits for the counter."""
    visits: list[Visit] = []
    free_at = datetime.combine(day, time(), shop.tz) + timedelta(hours=open_h, minutes=1)
    close_at = datetime.combine(day, time(), shop.tz) + timedelta(hours=close_h, minutes=-1)
    for hour, person, role in sorted(wanted):
        hour = float(np.clip(hour, open_h + 1 / 60, close_h - 0.2))
        lo, hi = _COUNTER_S[role]
        walk_in, stay, walk_out = rng.uniform(*_WALK_S), rng.uniform(lo, hi), rng.uniform(*_WALK_S)
        arrival = datetime.combine(day, time(), shop.tz) + timedelta(seconds=round(hour * 3600, 3))
        entry = max(arrival, free_at)
        exit_ = entry + timedelta(seconds=round(walk_in + stay + walk_out, 3))
        if exit_ > close_at:
            continue
        visits.append(Visit(
            person=person, role=role, entry_utc=entry.astimezone(UTC),
            counter_start=(entry + timedelta(seconds=round(walk_in, 3))).astimezone(UTC),
            counter_end=(entry + timedelta(seconds=round(walk_in + stay, 3))).astimezone(UTC),
            exit_utc=exit_.astimezone(UTC),
        ))
        free_at = exit_ + timedelta(seconds=_MIN_GAP_S)
    return visits


def _staff_shifts(rng, shop, day: date, staff: str, open_h: float, close_h: float) -> list[Visit]:
    """A morning shift from just before opening to early afternoon, an evening shift to closing."""
    midnight = datetime.combine(day, time(), shop.tz)
    shifts = [(open_h - 0.05, min(close_h, 13.0 + rng.uniform(0, 0.5))),
              (max(open_h, 16.0 + rng.uniform(0, 0.5)), close_h + 0.05)]
    visits = []
    for start_h, end_h in shifts:
        if end_h - start_h < 0.5:
            continue
        start = midnight + timedelta(seconds=round(start_h * 3600))
        end = midnight + timedelta(seconds=round(end_h * 3600))
        walk = timedelta(seconds=5)
        visits.append(Visit(person=staff, role=ROLE_STAFF, entry_utc=start.astimezone(UTC),
                            counter_start=(start + walk).astimezone(UTC), counter_end=(end - walk).astimezone(UTC),
                            exit_utc=end.astimezone(UTC)))
    return visits


def _clips(shop, visits: Sequence[Visit]) -> tuple[tuple[datetime, float], ...]:
    """(local start at a whole second, seconds) covering every visit; close visits share a clip."""
    spans: list[list[datetime]] = []
    for visit in sorted(visits, key=lambda v: v.entry_utc):
        start = visit.entry_utc - timedelta(seconds=_CLIP_PAD_S)
        end = visit.exit_utc + timedelta(seconds=_CLIP_PAD_S)
        if spans and (start - spans[-1][1]).total_seconds() <= _CLIP_MERGE_S:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    clips = []
    for start, end in spans:
        start = start.replace(microsecond=0)
        clips.append((start.astimezone(shop.tz), float(np.ceil((end - start).total_seconds()))))
    return tuple(clips)


def _sales(rng, cast: Cast, shop, days, visits, visit_days) -> list[Sale]:
    """A sale inside each buying visit's counter time, plus walk-ins far from every visit."""
    buyers = [i for i, v in enumerate(visits) if v.role in (ROLE_CUSTOMER, ROLE_VIP)]
    only_asking = {i for i in buyers if visits[i].role == ROLE_CUSTOMER and rng.random() < _ONLY_ASKING_P}
    defaulted = [i for i in buyers if visits[i].person == cast.defaulter][:: 2][:_UNPAID_DEFAULTER_VISITS]
    size_habit = {p: ("20L" if rng.random() < 0.7 else "10L") for p in cast.people}
    mode_habit = {p: ("UPI" if rng.random() < 0.55 else "Cash") for p in cast.people}
    members = set(cast.regulars) | ({cast.vip} if cast.vip else set())
    sales = []
    for i in buyers:
        visit = visits[i]
        if i in only_asking and i not in defaulted:
            continue
        span = (visit.counter_end - visit.counter_start).total_seconds()
        moment = visit.counter_start + timedelta(seconds=float(rng.uniform(0.35, 0.65)) * span)
        local = moment.astimezone(shop.tz).replace(tzinfo=None, microsecond=0)
        person = visit.person
        size = size_habit[person] if rng.random() < 0.9 else ("10L" if size_habit[person] == "20L" else "20L")
        cans = int(rng.integers(4, 9)) if visit.role == ROLE_VIP else int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15]))
        sales.append(Sale(
            day=visit_days[i], kind=KIND_VISIT, person=person, visit_index=i, timestamp_local=local,
            customer_id=pos_customer_id(person) if person in members else None,
            payment_mode=mode_habit[person] if rng.random() < 0.85 else ("Cash" if mode_habit[person] == "UPI" else "UPI"),
            can_size=size, number_of_cans=cans,
            payment_status="Unpaid" if i in defaulted else "Paid",
        ))
    open_h = _hours(shop.opening_time)
    close_h = _hours(shop.closing_time) if shop.closing_time > shop.opening_time else 24.0
    for day in days:
        busy = [(v.entry_utc, v.exit_utc) for v, d in zip(visits, visit_days, strict=True) if d == day and v.role != ROLE_STAFF]
        midnight = datetime.combine(day, time(), shop.tz)
        for _ in range(int(rng.poisson(_WALK_INS_PER_DAY))):
            for _attempt in range(20):
                hour = _habit_hour(rng, open_h, close_h)
                moment = (midnight + timedelta(seconds=round(hour * 3600))).astimezone(UTC)
                if all((moment - b).total_seconds() > _WALK_IN_CLEARANCE_S or (a - moment).total_seconds() > _WALK_IN_CLEARANCE_S
                       for a, b in busy):
                    sales.append(Sale(
                        day=day, kind=KIND_WALK_IN, person=None, visit_index=None,
                        timestamp_local=moment.astimezone(shop.tz).replace(tzinfo=None, microsecond=0),
                        customer_id=None, payment_mode="Cash", can_size="20L" if rng.random() < 0.6 else "10L",
                        number_of_cans=int(rng.integers(1, 3)), payment_status="Paid",
                    ))
                    break
    return sales
