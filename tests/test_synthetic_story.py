"""The demo story planner: the planned visits, the clips to film and the POS sales agree."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest

from watershop_dagster.config import POS_COLUMNS, init_workspace
from watershop_dagster.synthetic.footage import ROLE_CUSTOMER, ROLE_STAFF
from watershop_dagster.synthetic.story import (
    KIND_VISIT,
    KIND_WALK_IN,
    ROLE_BLOCKED,
    ROLE_VIP,
    choose_cast,
    plan_story,
    pos_customer_id,
)

# The shared fixture gallery's shape: five people with 11 photos, five with 1-2, plus two built-ins.
PHOTOS = {f"john_{k}": 11 for k in range(5)} | {f"face_{k}": 2 for k in range(5)} | {"eileen": 1, "grace": 1}
WEEK = [date(2026, 11, 23) + timedelta(days=k) for k in range(7)]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    config = init_workspace(tmp_path_factory.mktemp("story") / "ws", shop_id="demo_shop", timezone="Asia/Kolkata",
                            partitions_start=date(2026, 1, 1))
    return config.shops[0]


@pytest.fixture(scope="module")
def story(shop):
    return plan_story(choose_cast(PHOTOS, seed=7), shop, WEEK, seed=7)


def test_cast_gives_known_roles_to_people_with_spare_photos():
    cast = choose_cast(PHOTOS, seed=7)
    assert set(cast.known.values()) == {"staff", "vip", "blocked"}
    assert all(PHOTOS[person] >= 3 for person in cast.known)
    assert cast.defaulter in cast.regulars and set(cast.twice_a_day) <= set(cast.regulars)
    assert len(cast.regulars) >= 5 and len(cast.newcomers) >= 2
    assert len(set(cast.people)) == len(PHOTOS)
    # the built-in gallery alone still makes a (small) cast, without known roles
    small = choose_cast({"eileen": 1, "grace": 1})
    assert small.known == {} and set(small.regulars) == {"eileen", "grace"}


def test_every_sale_of_a_filmed_customer_is_rung_up_while_they_stand_at_the_counter(story, shop):
    filmed = [s for s in story.sales if s.kind == KIND_VISIT]
    assert filmed
    for sale in filmed:
        visit = story.visits[sale.visit_index]
        assert visit.person == sale.person and visit.role in (ROLE_CUSTOMER, ROLE_VIP)
        moment = sale.timestamp_local.replace(tzinfo=shop.tz)
        assert visit.counter_start <= moment <= visit.counter_end
        assert story.visit_days[sale.visit_index] == sale.day == sale.timestamp_local.date()
        clips = story.clips[sale.day]
        assert any(start <= visit.entry_utc and visit.exit_utc <= start + timedelta(seconds=seconds) for start, seconds in clips)


def test_walk_ins_are_marked_anonymous_and_far_from_every_filmed_visit(story, shop):
    walk_ins = [s for s in story.sales if s.kind == KIND_WALK_IN]
    assert walk_ins and len(walk_ins) < 0.25 * len(story.sales)
    for sale in walk_ins:
        assert sale.person is None and sale.customer_id is None and sale.visit_index is None
        moment = sale.timestamp_local.replace(tzinfo=shop.tz)
        for visit in story.day_visits(sale.day):
            if visit.role != ROLE_STAFF:
                assert not visit.entry_utc - timedelta(minutes=3) <= moment <= visit.exit_utc + timedelta(minutes=3)


def test_customers_never_overlap_and_the_day_spans_the_opening_hours(story, shop):
    for day in story.days:
        customers = sorted((v for v in story.day_visits(day) if v.role != ROLE_STAFF), key=lambda v: v.entry_utc)
        assert all(a.exit_utc < b.entry_utc for a, b in zip(customers, customers[1:], strict=False))
        local = [v.entry_utc.astimezone(shop.tz).time() for v in customers]
        assert min(local) <= time(6, 20) and max(v.exit_utc.astimezone(shop.tz).time() for v in customers) >= time(20, 30)
        hours = {t.hour for t in local}
        assert len(hours) >= 4 and hours & {7, 8, 9} and hours & {17, 18, 19}
        staff = [v for v in story.day_visits(day) if v.role == ROLE_STAFF]
        assert len(staff) == 2


def test_the_week_has_returning_customers_newcomers_alerts_and_one_repeat_defaulter(story):
    cast = story.cast
    seen_days: dict[str, set[date]] = {}
    for visit, day in zip(story.visits, story.visit_days, strict=True):
        seen_days.setdefault(visit.person, set()).add(day)
    assert sum(len(seen_days[p]) >= 4 for p in cast.regulars) >= len(cast.regulars) - 1
    first_days = {min(seen_days[p]) for p in cast.newcomers}
    assert first_days and min(first_days) > story.days[0]  # newcomers arrive during the week
    roles = [v.role for v in story.visits]
    assert roles.count(ROLE_VIP) >= 1 and roles.count(ROLE_BLOCKED) == 1
    unpaid = [s for s in story.sales if s.payment_status == "Unpaid"]
    assert len(unpaid) >= 2 and {s.person for s in unpaid} == {cast.defaulter}
    assert not [s for s in story.sales if s.person == cast.blocked]  # turned away: a visit without a sale
    members = [s for s in story.sales if s.person in cast.regulars]
    assert all(s.customer_id == pos_customer_id(s.person) for s in members)
    per_day = len([v for v in story.visits if v.role != ROLE_STAFF]) / len(story.days)
    assert 8 <= per_day <= 30


def test_sales_frame_is_a_pos_export_with_unique_ids(story):
    df = story.sales_frame("demo_shop")
    assert df.columns[: len(POS_COLUMNS)] == list(POS_COLUMNS)
    assert df["transaction_id"].n_unique() == df.height == len(story.sales)
    assert df["amount"].min() > 0 and set(df["payment_status"]) <= {"Paid", "Unpaid"}
    one_day = story.sales_frame("demo_shop", story.days[2])
    assert one_day.height and set(one_day["timestamp"].str.slice(0, 10)) == {story.days[2].isoformat()}


def test_the_story_is_deterministic_by_seed(shop):
    cast = choose_cast(PHOTOS, seed=3)
    assert cast == choose_cast(PHOTOS, seed=3)
    first, again = plan_story(cast, shop, WEEK, seed=3), plan_story(cast, shop, WEEK, seed=3)
    assert first == again and first.sales_frame("s").equals(again.sales_frame("s"))
    other = plan_story(cast, shop, WEEK, seed=4)
    assert other.visits != first.visits


def test_a_two_day_story_still_has_both_alerts_and_a_newcomer(shop):
    story = plan_story(choose_cast(PHOTOS, seed=7), shop, WEEK[:2], seed=7)
    roles = {v.role for v in story.visits}
    assert {ROLE_VIP, ROLE_BLOCKED, ROLE_STAFF, ROLE_CUSTOMER} <= roles
    newcomer_days = {d for v, d in zip(story.visits, story.visit_days, strict=True) if v.person in story.cast.newcomers}
    assert newcomer_days == {WEEK[1]}
