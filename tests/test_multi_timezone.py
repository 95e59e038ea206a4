"""Two shops exactly 10 h apart (Asia/Tokyo UTC+9, Atlantic/Cape_Verde UTC-1; neither has DST): each
shop's days are its own local days — partitions, schedules, POS rows, footage files, Frigate messages
and the marts."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import polars as pl
import pytest

from assets.partitions import WorkspacePartitions, date_dimension_timezone, shop_day_key
from assets.vision import footage_changes
from watershop_dagster.config import CONFIG_FILENAME, WatershopConfig, load_config
from watershop_dagster.frigate.landing import LandingWriter, landed_camera_days, route
from watershop_dagster.orchestration.assemble import build_definitions
from watershop_dagster.pos.ingest import ingest_partitions
from watershop_dagster.vision.footage import discover_footage

EAST, WEST = "tokyo", "praia"
TOKYO, PRAIA = ZoneInfo("Asia/Tokyo"), ZoneInfo("Atlantic/Cape_Verde")
DAY, NEXT = date(2024, 3, 10), date(2024, 3, 11)
CONFIG = f"""\
partitions_start: "2024-03-01"
shops:
  - id: {EAST}
    timezone: Asia/Tokyo
    cameras: [cam]
    closing_time: "23:30"
  - id: {WEST}
    timezone: Atlantic/Cape_Verde
    cameras: [cam]
    closing_time: "21:00"
"""


def at(zone: ZoneInfo, day: date, hms: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hms}").replace(tzinfo=zone)


@pytest.fixture
def config(tmp_path) -> WatershopConfig:
    (tmp_path / CONFIG_FILENAME).write_text(CONFIG)
    return load_config(tmp_path / CONFIG_FILENAME)


def test_the_zones_are_exactly_ten_hours_apart_all_year():
    for month in range(1, 13):
        moment = datetime(2024, month, 1, 12, tzinfo=UTC)
        assert moment.astimezone(TOKYO).utcoffset() - moment.astimezone(PRAIA).utcoffset() == timedelta(hours=10)


def test_each_shops_local_today_exists_from_its_own_midnight(config):
    partitions = WorkspacePartitions.from_config(config)
    assert date_dimension_timezone(config.shops) == "Etc/GMT-9"  # the zone furthest ahead
    just_after_tokyo_midnight = at(TOKYO, NEXT, "00:00:30")  # still 14:00 on DAY in Praia
    keys = set(partitions.shop_day.get_partition_keys(current_time=just_after_tokyo_midnight))
    assert str(shop_day_key(EAST, NEXT)) in keys and str(shop_day_key(WEST, DAY)) in keys
    # a date dimension in the other shop's zone (the first shop's, as before) had no key for Tokyo's today
    praia_days = dg.DailyPartitionsDefinition(start_date="2024-03-01", timezone="Atlantic/Cape_Verde", end_offset=1)
    assert NEXT.isoformat() not in praia_days.get_partition_keys(current_time=just_after_tokyo_midnight)
    cameras = set(partitions.camera_day.get_partition_keys(current_time=just_after_tokyo_midnight))
    assert f"{EAST}.cam|{NEXT}" in cameras


@pytest.mark.parametrize(("shop_id", "zone", "tick_local", "closed_day"), [
    (EAST, TOKYO, (NEXT, "00:30:00"), DAY),  # closes 23:30 Tokyo, runs after midnight for the day that closed
    (WEST, PRAIA, (DAY, "22:00:00"), DAY),  # closes 21:00 Praia = 22:00 UTC, runs 23:00 UTC
])
def test_each_shops_daily_run_fires_after_its_own_closing_for_its_own_day(config, shop_id, zone, tick_local, closed_day):
    partitions = WorkspacePartitions.from_config(config)
    defs = build_definitions(config.workspace_dir / CONFIG_FILENAME)
    schedule = defs.resolve_schedule_def(f"{shop_id}_after_closing")
    assert schedule.execution_timezone == zone.key
    hour, minute = (int(v) for v in tick_local[1].split(":")[:2])
    assert schedule.cron_schedule == f"{minute} {hour} * * *"
    tick = at(zone, *tick_local)
    with dg.build_schedule_context(scheduled_execution_time=tick, repository_def=defs.get_repository_def()) as context:
        (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == shop_day_key(shop_id, closed_day)
    assert str(request.partition_key) in partitions.shop_day.get_partition_keys(current_time=tick)


# near-midnight instants, each a UTC time (Z) in the CSV: Tokyo sees 23:59:30 DAY and 00:00:30 NEXT at
# 14:59:30Z / 15:00:30Z; Praia sees them at 00:59:30Z / 01:00:30Z on NEXT (UTC)
INSTANTS = {"z1": "2024-03-10T14:59:30Z", "z2": "2024-03-10T15:00:30Z",
            "z3": "2024-03-11T00:59:30Z", "z4": "2024-03-11T01:00:30Z"}


def write_pos_csv(config: WatershopConfig, shop_id: str) -> None:
    """An undated export (rows placed by their own timestamps): the four UTC instants, and local
    wall-clock times a minute either side of the shop's own midnight."""
    rows = [*INSTANTS.items(), ("local_before", f"{DAY}T23:59:30"), ("local_after", f"{NEXT}T00:00:30")]
    lines = ["transaction_id,timestamp,customer_id,payment_mode,can_size,number_of_cans,amount,payment_status"]
    lines += [f"{shop_id}-{tid},{ts},C1,Cash,20L,1,35,Paid" for tid, ts in rows]
    folder = config.transactions_landing / shop_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "export.csv").write_text("\n".join(lines) + "\n")


def test_pos_rows_near_midnight_land_in_each_shops_local_day(config):
    expected = {
        EAST: {DAY: {"z1", "local_before"}, NEXT: {"z2", "z3", "z4", "local_after"}},
        WEST: {DAY: {"z1", "z2", "z3", "local_before"}, NEXT: {"z4", "local_after"}},
    }
    zones = {EAST: TOKYO, WEST: PRAIA}
    for shop_id, days in expected.items():
        write_pos_csv(config, shop_id)
        results = ingest_partitions(config, shop_id, [DAY, NEXT])
        for day, ids in days.items():
            valid = results[day].valid
            assert {tid.split("-", 1)[1] for tid in valid["transaction_id"]} == ids, (shop_id, day)
            assert results[day].rejected.height == 0
            local = valid["timestamp_utc"].dt.convert_time_zone(zones[shop_id].key).dt.replace_time_zone(None)
            assert (valid["timestamp_local"] == local).all() and (valid["timestamp_local"].dt.date() == day).all()
    local_before = {shop_id: ingest_partitions(config, shop_id, [DAY])[DAY].valid.filter(
        pl.col("transaction_id") == f"{shop_id}-local_before")["timestamp_utc"].item() for shop_id in expected}
    assert local_before[WEST] - local_before[EAST] == timedelta(hours=10)  # the same wall clock, 10 h apart


def touch(path) -> None:
    """A footage file (discovery reads paths only), written long before the sensor ticks below."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00")
    written = datetime(2024, 3, 1, tzinfo=UTC).timestamp()
    os.utime(path, (written, written))


def test_footage_files_near_midnight_land_in_each_shops_local_day(config):
    root = config.footage_root
    # Frigate's recordings are in UTC hour folders: <shop>/recordings/<utc date>/<HH>/<camera>/<MM.SS>.mp4
    for shop_id in (EAST, WEST):
        for utc in ("2024-03-10T14:59:30", "2024-03-10T15:00:30", "2024-03-11T00:59:30", "2024-03-11T01:00:30"):
            moment = datetime.fromisoformat(utc)
            touch(root / shop_id / "recordings" / f"{moment:%Y-%m-%d}" / f"{moment:%H}" / "cam" / f"{moment:%M.%S}.mp4")
        # plain layout: the shop's own wall clock, <shop>/<camera>/<local date>/<HH-MM-SS>.mp4
        touch(root / shop_id / "cam" / f"{DAY}" / "23-59-50.mp4")
        touch(root / shop_id / "cam" / f"{NEXT}" / "00-00-10.mp4")
    expected = {
        EAST: {DAY: ["2024-03-10T14:59:30", "2024-03-10T14:59:50"],
               NEXT: ["2024-03-10T15:00:10", "2024-03-10T15:00:30", "2024-03-11T00:59:30", "2024-03-11T01:00:30"]},
        WEST: {DAY: ["2024-03-10T14:59:30", "2024-03-10T15:00:30", "2024-03-11T00:59:30", "2024-03-11T00:59:50"],
               NEXT: ["2024-03-11T01:00:10", "2024-03-11T01:00:30"]},
    }
    for shop_id, days in expected.items():
        for day, starts in days.items():
            files, bad = discover_footage(root, config.shop(shop_id), day)
            assert bad == []
            assert [f.start_utc.replace(tzinfo=None).isoformat() for f in files] == starts, (shop_id, day)
    # the footage sensor asks for the same camera-days (once each shop's day has closed)
    _, requests = footage_changes(config, {}, at(PRAIA, NEXT, "23:00:00").timestamp())
    assert {(shop, day) for shop, _camera, day, _digest in requests} == {
        (EAST, DAY), (EAST, NEXT), (WEST, DAY), (WEST, NEXT)}
    # at 20:30 in Praia on NEXT (06:30 the day after in Tokyo) Tokyo's NEXT has closed, Praia's not yet
    _, requests = footage_changes(config, {}, at(PRAIA, NEXT, "20:30:00").timestamp())
    assert {(shop, day) for shop, _camera, day, _digest in requests} == {(EAST, DAY), (EAST, NEXT), (WEST, DAY)}


def frigate_event(event_id: str, start: datetime) -> str:
    return json.dumps({"type": "new", "after": {"id": event_id, "camera": "cam", "start_time": start.timestamp()}})


def test_frigate_messages_near_midnight_land_in_each_shops_local_day(config):
    starts = {"f1": datetime(2024, 3, 10, 14, 59, 30, tzinfo=UTC), "f2": datetime(2024, 3, 10, 15, 0, 30, tzinfo=UTC),
              "f3": datetime(2024, 3, 11, 0, 59, 30, tzinfo=UTC), "f4": datetime(2024, 3, 11, 1, 0, 30, tzinfo=UTC)}
    expected = {EAST: {"f1": DAY, "f2": NEXT, "f3": NEXT, "f4": NEXT}, WEST: {"f1": DAY, "f2": DAY, "f3": DAY, "f4": NEXT}}
    for shop_id, days in expected.items():
        shop = config.shop(shop_id)
        writer = LandingWriter(config.frigate_landing, shop_id, set(shop.cameras), shop.tz)
        for event_id, start in starts.items():
            received = start.timestamp() + 2
            assert route(frigate_event(event_id, start), set(shop.cameras), shop.tz, received) == ("cam", days[event_id])
            writer.append("frigate/events", frigate_event(event_id, start), received)
        writer.close()
        assert set(landed_camera_days(config.frigate_landing, shop_id)) == {("cam", DAY), ("cam", NEXT)}
        for day in (DAY, NEXT):
            landed = (config.frigate_landing / shop_id / "cam" / f"{day}.ndjson").read_text().splitlines()
            ids = {json.loads(json.loads(line)["payload"])["after"]["id"] for line in landed}
            assert ids == {e for e, d in days.items() if d == day}, (shop_id, day)


@pytest.mark.slow  # a dbt build
def test_the_marts_show_each_shops_local_days(config, dbt_build):
    assert dbt_build.lake == config.lake_root
    for shop_id in (EAST, WEST):
        write_pos_csv(config, shop_id)
        ingest_partitions(config, shop_id, [DAY, NEXT])
    dbt_build(None, None, "--select", "+daily_revenue +monthly_revenue +transactions",
              dbt_vars={"shop_timezones": {EAST: "Asia/Tokyo", WEST: "Atlantic/Cape_Verde"}})
    with duckdb.connect(str(dbt_build.db)) as con:  # dbt-duckdb keeps its own (read-write) connection open
        revenue = con.execute("select shop_id, date, transactions from daily_revenue order by all").fetchall()
        hours = con.execute("select shop_id, date, min(timestamp_local), max(timestamp_local) from transactions "
                            "group by all order by all").fetchall()
    assert revenue == [(WEST, DAY, 4), (WEST, NEXT, 2), (EAST, DAY, 2), (EAST, NEXT, 4)]
    for _shop, day, first, last in hours:  # every row's local time is on its row's day, each in its shop's zone
        assert first.date() == day and last.date() == day
