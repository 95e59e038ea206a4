"""The zone marts, built by dbt from a hand-made lake of a tiny supermarket (shop `market`, IST).

Two cameras: `door` (zones entrance and promo, Watershop's tracker) and `floor` (dairy and
checkout, from Frigate). Customer c_1 comes in at the door, loiters at the promo table, shops on
the floor camera (loitering at the checkout) and leaves an hour later (three tracks, one store
visit); an anonymous shopper comes in and browses; an anonymous track on the floor; staff member
anna comes in and stands at the promo table (excluded from customer figures and the loitering
list); VIP ravi loiters at the checkout (listed with his name). Every expected value is worked out
by hand from the rows below (times in UTC; the shop's day and hours are IST, UTC+5:30).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from tests.conftest import assert_marts
from watershop_dagster import catalog, lake

SHOP, DAY = "market", "2025-06-02"
VARS = {"shop_timezones": {SHOP: "Asia/Kolkata"}}
ZONES = {"entrance": ("entrance", None), "promo": ("promo", "snacks"), "dairy": ("shelf", "dairy"),
         "checkout": ("checkout", None)}
SOURCE = {"door": catalog.SOURCE_WATERSHOP, "floor": catalog.SOURCE_FRIGATE}


def ts(hms: str) -> datetime:
    return datetime.fromisoformat(f"{DAY}T{hms}").replace(tzinfo=UTC)


def seconds(a: str, b: str) -> float:
    return (ts(b) - ts(a)).total_seconds()


# (camera, track, identity, start, end)
TRACKS = [
    ("door", "d1", "c_1", "04:30:00", "04:32:00"),
    ("door", "d2", None, "04:35:00", "04:36:00"),
    ("door", "d3", "staff/anna", "04:40:00", "05:50:00"),
    ("door", "d4", "c_1", "05:40:00", "05:41:00"),
    ("floor", "f1", "c_1", "04:32:30", "04:39:00"),
    ("floor", "f2", None, "04:36:00", "04:37:00"),
    ("floor", "f3", "vip/ravi", "05:10:00", "05:12:00"),
]
# (camera, zone, track, enter, exit, exit_reason)
VISITS = [
    ("door", "entrance", "d1", "04:30:00", "04:30:05", "left_zone"),
    ("door", "promo", "d1", "04:30:10", "04:31:40", "left_zone"),
    ("door", "entrance", "d2", "04:35:00", "04:35:04", "left_zone"),
    ("door", "promo", "d2", "04:35:10", "04:35:30", "left_zone"),
    ("door", "entrance", "d3", "04:40:00", "04:40:03", "left_zone"),
    ("door", "promo", "d3", "04:41:00", "04:43:00", "left_zone"),
    ("door", "entrance", "d4", "05:40:50", "05:41:00", "track_lost"),
    ("floor", "dairy", "f1", "04:33:00", "04:33:30", "left_zone"),
    ("floor", "checkout", "f1", "04:36:00", "04:38:00", "left_zone"),
    ("floor", "dairy", "f1", "04:38:10", "04:38:20", "left_zone"),
    ("floor", "dairy", "f2", "04:36:10", "04:36:50", "track_lost"),
    ("floor", "checkout", "f3", "05:10:30", "05:11:30", "left_zone"),
]
LOITERING_TIME = {"promo": 60.0, "checkout": 45.0}
# (camera, zone, track, direction, at)
CROSSINGS = [
    ("door", "entrance", "d1", "in", "04:30:05"),
    ("door", "entrance", "d2", "in", "04:35:04"),
    ("door", "entrance", "d3", "in", "04:40:03"),
    ("door", "entrance", "d4", "out", "05:41:00"),
]
IDENTITY = {(camera, track): identity for camera, track, identity, _, _ in TRACKS}


def write_lake(root, visits=VISITS, crossings=CROSSINGS, identity=IDENTITY) -> None:
    """The supermarket's camera-day partitions, through the lake writer (schemas from the catalog)."""
    for camera in SOURCE:
        common = {"source": SOURCE[camera]}
        tracks = [{"camera": c, "track_id": t, "identity": identity[c, t], "start_ts": ts(a), "end_ts": ts(b),
                   "duration_s": seconds(a, b), "observations": 10, **common}
                  for c, t, _, a, b in TRACKS if c == camera]
        zone_visits = [{"camera": c, "zone": z, "kind": ZONES[z][0], "category": ZONES[z][1], "track_id": t,
                        "identity": identity[c, t], "enter_ts": ts(a), "exit_ts": ts(b), "dwell_s": seconds(a, b),
                        "exit_reason": r, **common}
                       for c, z, t, a, b, r in visits if c == camera]
        loitering = [{**v, "start_ts": v["enter_ts"], "alert_ts": v["enter_ts"] + timedelta(seconds=LOITERING_TIME[v["zone"]]),
                      "loitering_time_s": LOITERING_TIME[v["zone"]]}
                     for v in zone_visits if v["dwell_s"] >= LOITERING_TIME.get(v["zone"], float("inf"))]
        footfall = [{"camera": c, "zone": z, "track_id": t, "identity": identity[c, t], "ts": ts(at),
                     "direction": d, **common} for c, z, t, d, at in crossings if c == camera]
        for dataset, rows in ((catalog.PERSON_TRACKS, tracks), (catalog.ZONE_VISITS, zone_visits),
                              (catalog.LOITERING_EVENTS, loitering), (catalog.FOOTFALL, footfall)):
            frame = catalog_frame(dataset, rows)
            lake.write_dataset(frame, root, dataset, shop_id=SHOP, date=DAY, camera=camera)


def catalog_frame(dataset: catalog.Dataset, rows: list[dict]) -> pl.DataFrame:
    """The rows with the dataset's types; the lake writer fills the columns they leave out."""
    if not rows:  # no columns at all would make the writer's null columns one row long
        return pl.DataFrame(schema=dataset.schema)
    columns = [name for name in dataset.schema if any(name in row for row in rows)]
    return pl.DataFrame([{name: row.get(name) for name in columns} for row in rows],
                        schema={name: dataset.schema[name] for name in columns}, orient="row")


QUERIES = {
    "zone_dwell_daily": (4, "select shop_id, date::varchar, camera, zone, kind, visits, people, mean_dwell_s, "
                            "median_dwell_s, p90_dwell_s, max_dwell_s, total_dwell_s, loitering_events "
                            "from zone_dwell_daily"),
    "zone_traffic_hourly": (4, "select date::varchar, hour, camera, zone, visits, people, mean_dwell_s "
                               "from zone_traffic_hourly"),
    "loitering_events": (3, "select camera, zone, track_id, store_visit_id, identity, role, "
                            "strftime(start_time, '%H:%M:%S'), strftime(alert_time, '%H:%M:%S'), dwell_s, "
                            "loitering_time_s, source from loitering_events"),
    "footfall_hourly": (3, "select shop_id, date::varchar, hour, entries, exits, occupancy from footfall_hourly"),
    "zone_transitions": (3, "select camera, from_zone, to_zone, transitions, people from zone_transitions"),
    "store_visits": (1, "select store_visit_id, identity, role, is_customer, cameras, tracks, "
                        "strftime(start_time, '%H:%M:%S'), strftime(end_time, '%H:%M:%S'), duration_s, "
                        "zones_visited, zone_visits, zone_dwell_s, loitering_events from store_visits"),
    "zone_visits": (3, "select camera, track_id, strftime(enter_time, '%H:%M:%S'), zone, store_visit_id, role, "
                       "is_customer, hour, dwell_s, is_loitering, source from zone_visits"),
}
EXPECTED = {
    "zone_dwell_daily": {
        (SHOP, DAY, "door", "entrance"): ("entrance", 3, 2, round(19 / 3, 6), 5.0, 9.0, 10.0, 19.0, 0),
        (SHOP, DAY, "door", "promo"): ("promo", 2, 2, 55.0, 55.0, 83.0, 90.0, 110.0, 1),
        (SHOP, DAY, "floor", "dairy"): ("shelf", 3, 2, round(80 / 3, 6), 30.0, 38.0, 40.0, 80.0, 0),
        (SHOP, DAY, "floor", "checkout"): ("checkout", 2, 2, 90.0, 90.0, 114.0, 120.0, 180.0, 2),
    },
    "zone_traffic_hourly": {
        (DAY, 10, "door", "entrance"): (2, 2, 4.5),
        (DAY, 11, "door", "entrance"): (1, 1, 10.0),
        (DAY, 10, "door", "promo"): (2, 2, 55.0),
        (DAY, 10, "floor", "dairy"): (3, 2, round(80 / 3, 6)),
        (DAY, 10, "floor", "checkout"): (2, 2, 90.0),
    },
    "loitering_events": {
        ("door", "promo", "d1"): ("person:c_1", "c_1", "customer", "10:00:10", "10:01:10", 90.0, 60.0, "watershop"),
        ("floor", "checkout", "f1"): ("person:c_1", "c_1", "customer", "10:06:00", "10:06:45", 120.0, 45.0,
                                      "frigate"),
        ("floor", "checkout", "f3"): ("person:vip/ravi", "vip/ravi", "vip", "10:40:30", "10:41:15", 60.0, 45.0,
                                      "frigate"),
    },
    "footfall_hourly": {
        (SHOP, DAY, 10): (2, 0, 2),
        (SHOP, DAY, 11): (0, 1, 1),
    },
    "zone_transitions": {
        ("door", "entrance", "promo"): (2, 2),
        ("floor", "dairy", "checkout"): (1, 1),
        ("floor", "checkout", "dairy"): (1, 1),
    },
    "store_visits": {
        ("person:c_1",): ("c_1", "customer", True, "door,floor", 3, "10:00:00", "11:11:00", 4260.0,
                          "checkout,dairy,entrance,promo", 6, 265.0, 2),
        ("track:door/d2",): (None, "customer", True, "door", 1, "10:05:00", "10:06:00", 60.0, "entrance,promo", 2,
                             24.0, 0),
        ("person:staff/anna",): ("staff/anna", "staff", False, "door", 1, "10:10:00", "11:20:00", 4200.0,
                                 "entrance,promo", 2, 123.0, 1),
        ("track:floor/f2",): (None, "customer", True, "floor", 1, "10:06:00", "10:07:00", 60.0, "dairy", 1, 40.0, 0),
        ("person:vip/ravi",): ("vip/ravi", "vip", True, "floor", 1, "10:40:00", "10:42:00", 120.0, "checkout", 1,
                               60.0, 1),
    },
    "zone_visits": {
        ("door", "d1", "10:00:00"): ("entrance", "person:c_1", "customer", True, 10, 5.0, False, "watershop"),
        ("door", "d1", "10:00:10"): ("promo", "person:c_1", "customer", True, 10, 90.0, True, "watershop"),
        ("door", "d2", "10:05:00"): ("entrance", "track:door/d2", "customer", True, 10, 4.0, False, "watershop"),
        ("door", "d2", "10:05:10"): ("promo", "track:door/d2", "customer", True, 10, 20.0, False, "watershop"),
        ("door", "d3", "10:10:00"): ("entrance", "person:staff/anna", "staff", False, 10, 3.0, False, "watershop"),
        ("door", "d3", "10:11:00"): ("promo", "person:staff/anna", "staff", False, 10, 120.0, True, "watershop"),
        ("door", "d4", "11:10:50"): ("entrance", "person:c_1", "customer", True, 11, 10.0, False, "watershop"),
        ("floor", "f1", "10:03:00"): ("dairy", "person:c_1", "customer", True, 10, 30.0, False, "frigate"),
        ("floor", "f1", "10:06:00"): ("checkout", "person:c_1", "customer", True, 10, 120.0, True, "frigate"),
        ("floor", "f1", "10:08:10"): ("dairy", "person:c_1", "customer", True, 10, 10.0, False, "frigate"),
        ("floor", "f2", "10:06:10"): ("dairy", "track:floor/f2", "customer", True, 10, 40.0, False, "frigate"),
        ("floor", "f3", "10:40:30"): ("checkout", "person:vip/ravi", "vip", True, 10, 60.0, True, "frigate"),
    },
}


def test_zone_marts_of_a_tiny_supermarket(dbt_build):
    write_lake(dbt_build.lake)
    dbt_build(dbt_vars=VARS)
    assert_marts(dbt_build.db, QUERIES, EXPECTED, places=6)
    # the daily case: rebuilding the shop-day alone rewrites it to the same rows
    dbt_build(SHOP, DAY, dbt_vars=VARS)
    assert_marts(dbt_build.db, QUERIES, EXPECTED, places=6)


def test_a_customer_merged_later_is_one_store_visit_under_the_surviving_id(dbt_build):
    """The floor camera's track and the door's last crossing were named c_9 on their day; a later
    registry build merged c_9 into c_1: every zone mart names c_1 and joins the tracks in one visit."""
    write_lake(dbt_build.lake, identity={**IDENTITY, ("floor", "f1"): "c_9", ("door", "d4"): "c_9"})
    merge = {"customer_id": "c_9", "surviving_id": "c_1", "first_seen": datetime.fromisoformat(DAY).date(),
             "linkage": 0.45, "runner_up": 0.8, "n_exemplars": 4, "n_exemplars_surviving": 9}
    lake.write_dataset(catalog_frame(catalog.CUSTOMER_MERGES, [merge]), dbt_build.lake, catalog.CUSTOMER_MERGES,
                       shop_id=SHOP, date=DAY)
    dbt_build(dbt_vars=VARS)
    assert_marts(dbt_build.db, QUERIES, EXPECTED, places=6)


def _test_statuses(result) -> dict[str, str]:
    return {r.node.name: str(r.status) for r in result.result.results if r.node.resource_type == "test"}


def test_zone_checks_flag_inconsistent_lake_data(dbt_build):
    """Overlapping visits of one track in one zone, a loitering event whose visit is gone and more
    identified shoppers than entries are reported as warnings (the marts still build); an exit
    before the entry stops the build."""
    broken_visits = [v for v in VISITS if v[2] != "f3"] + [
        ("floor", "dairy", "f2", "04:36:40", "04:36:55", "track_lost")]  # overlaps f2's dairy visit
    write_lake(dbt_build.lake, crossings=[c for c in CROSSINGS if c[2] != "d1"])  # c_1 never came in
    lake.write_dataset(catalog_frame(catalog.ZONE_VISITS, [
        {"camera": c, "zone": z, "kind": ZONES[z][0], "track_id": t, "identity": IDENTITY[c, t], "enter_ts": ts(a),
         "exit_ts": ts(b), "dwell_s": seconds(a, b), "exit_reason": r, "source": "frigate"}
        for c, z, t, a, b, r in broken_visits if c == "floor"]),
        dbt_build.lake, catalog.ZONE_VISITS, shop_id=SHOP, date=DAY, camera="floor")
    statuses = _test_statuses(dbt_build(dbt_vars=VARS))
    assert statuses["zone_visits_no_overlap"] == "warn"
    assert statuses["loitering_events_match_zone_visits"] == "warn"  # f3's loitering has no visit now
    assert statuses["footfall_covers_identified_visits"] == "warn"  # 1 entry, 2 identified customers
    assert statuses["zone_visits_exit_after_entry"] == "pass"

    backwards = [("door", "promo", "d2", "04:35:30", "04:35:10", "left_zone")]
    lake.write_dataset(catalog_frame(catalog.ZONE_VISITS, [
        {"camera": c, "zone": z, "kind": ZONES[z][0], "track_id": t, "identity": None, "enter_ts": ts(a),
         "exit_ts": ts(b), "dwell_s": seconds(a, b), "exit_reason": r, "source": "watershop"}
        for c, z, t, a, b, r in backwards]), dbt_build.lake, catalog.ZONE_VISITS, shop_id=SHOP, date=DAY, camera="door")
    with pytest.raises(pytest.fail.Exception, match="zone_visits_exit_after_entry"):
        dbt_build(SHOP, DAY, dbt_vars=VARS)



def test_the_pipeline_builds_the_zone_models_only_once_the_lake_has_behaviour_data(tmp_path):
    from watershop_dagster.config import CONFIG_FILENAME, load_config
    from watershop_dagster.dbt import zone_build_args

    (tmp_path / CONFIG_FILENAME).write_text("shops:\n  - id: market\n")
    config = load_config(tmp_path / CONFIG_FILENAME)
    lake.write_dataset(pl.DataFrame(), config.lake_root, catalog.TRANSACTIONS, shop_id=SHOP, date=DAY)
    assert zone_build_args(config) == ["--exclude", "tag:zones"]
    assert zone_build_args(config, ["--select", "fqn:*", "--exclude", "daily_revenue"]) == \
        ["--select", "fqn:*", "--exclude", "tag:zones", "daily_revenue"]
    lake.write_dataset(pl.DataFrame(schema=catalog.FOOTFALL.schema), config.lake_root, catalog.FOOTFALL,
                       shop_id=SHOP, date=DAY, camera="door")  # an empty camera-day file is data too
    assert zone_build_args(config, ["--select", "fqn:*"]) == ["--select", "fqn:*"]
