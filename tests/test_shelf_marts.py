"""The shelf marts from a hand-made lake: falling_object_events per camera-day -> the marts
falling_object_events and shelf_incidents_daily (per shop, day and zone), rebuilt idempotently."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb
import polars as pl
import pytest

from watershop_dagster import catalog, lake

pytestmark = pytest.mark.slow  # a whole dbt build of the project

DAY = date(2024, 5, 1)
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def fall(event_id: str, zone: str, at_s: float, height: float, landed: bool = True) -> dict:
    return {"event_id": event_id, "zone": zone, "release_utc": T0 + timedelta(seconds=at_s),
            "landing_utc": T0 + timedelta(seconds=at_s + 0.4), "drop_height_px": height, "blob_area_px": 90.0,
            "confidence": 0.9, "landed": landed, "x_px": 100.0, "y_px": 300.0, "source_path": "a.mp4", "still": None}


def test_falls_and_daily_incidents_per_zone(dbt_build):
    events = catalog.FALLING_OBJECT_EVENTS
    lake.write_dataset(pl.DataFrame([fall("e1", "dairy", 0, 150), fall("e2", "dairy", 600, 90, landed=False),
                                     fall("e3", "cereal", 60, 120)], schema=events.schema),
                       dbt_build.lake, events, shop_id="s1", date=DAY, camera="aisle1")
    lake.write_dataset(pl.DataFrame(schema=events.schema), dbt_build.lake, events, shop_id="s1", date=DAY, camera="counter")
    for _ in range(2):  # a re-run rewrites the shop-day: same rows
        dbt_build("s1", DAY.isoformat())
        with duckdb.connect(str(dbt_build.db)) as db:
            falls = db.execute("select event_id, camera, zone, round(fall_s, 3) from falling_object_events "
                               "order by event_id").fetchall()
            daily = db.execute("select zone, falls, fell_out_of_zone, max_drop_height_px from shelf_incidents_daily "
                               "order by zone").fetchall()
        assert falls == [("e1", "aisle1", "dairy", 0.4), ("e2", "aisle1", "dairy", 0.4), ("e3", "aisle1", "cereal", 0.4)]
        assert daily == [("cereal", 1, 0, 120.0), ("dairy", 2, 1, 150.0)]
