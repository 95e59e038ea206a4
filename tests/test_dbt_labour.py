"""sales_per_labour_hour from tests/test_dbt_behaviour_sales.py's hand-made supermarket lake plus staff
seen on a till camera, value by value: staff tracks chained into shifts across short gaps (the dbt var
staff_shift_gap_minutes), spread over the clock hours they cover, beside the hour's entries and sales."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import read_marts
from tests.test_dbt_behaviour_sales import DAY1, DAY2, DAY3, SHOP, at, write_lake
from tests.test_dbt_zones import catalog_frame
from watershop_dagster import catalog, lake

# day -> (track, staff member, start hh:mm:ss, seconds) on the till camera. Anna is also seen on the
# door (09:02:00, 3 s) and in dairy (11:00:00 to 11:05:00) in write_lake's visits.
STAFF_TRACKS = {
    DAY1: [("t1", "staff/anna", "09:10:00", 1800), ("t2", "staff/anna", "09:55:00", 2100),  # 15 min apart
           ("t3", "staff/bob", "08:30:00", 2700), ("t4", "staff/bob", "12:00:00", 1800),  # 2 h 45 apart
           ("t5", None, "09:30:00", 600)],  # an anonymous shopper at the till: no labour
    DAY2: [("t6", "staff/carol", "23:30:00", 3600)],  # runs past midnight: the day keeps 30 min
    DAY3: [],
}


def write_staff_tracks(root) -> None:
    """The till camera's person tracks (its own camera-day files beside write_lake's)."""
    for day, tracks in STAFF_TRACKS.items():
        rows = [{"camera": "till", "track_id": t, "identity": who, "start_ts": at(day, hms),
                 "end_ts": at(day, hms) + timedelta(seconds=s), "duration_s": float(s), "observations": 10,
                 "source": catalog.SOURCE_WATERSHOP} for t, who, hms, s in tracks]
        lake.write_dataset(catalog_frame(catalog.PERSON_TRACKS, rows), root, catalog.PERSON_TRACKS, shop_id=SHOP,
                           date=day, camera="till")


def row(staff: int, labour: float, visitors: int, receipts: int, sales: float) -> tuple:
    """The mart's row from its inputs: the ratios are computed here as the model documents them."""
    per_labour = (lambda value, places: round(value / labour, places)) if labour else (lambda *_: None)
    return (staff, round(labour, 4), visitors, receipts, sales, per_labour(sales, 2), per_labour(receipts, 4),
            per_labour(visitors, 4), round(receipts / visitors, 4) if visitors else None)


QUERY = {"sales_per_labour_hour": (
    2, "select date, hour, staff_on_floor, labour_hours, store_visitors, receipts, sales, sales_per_labour_hour, "
       "receipts_per_labour_hour, visitors_per_staff, conversion_rate from sales_per_labour_hour")}
# Anna's day is one shift, 09:02:00 to 11:05:00: the gaps are 7, 15 and 30 minutes (30 still chains).
# Bob has two shifts: 08:30-09:15 and 12:00-12:30. Entries (4 customers) are all at 09:xx.
EXPECTED = {
    (DAY1, 8): row(1, 0.5, 0, 0, 0.0),
    (DAY1, 9): row(2, 58 / 60 + 0.25, 4, 1, 7.25),
    (DAY1, 10): row(1, 1.0, 0, 1, 4.5),
    (DAY1, 11): row(1, 5 / 60, 0, 0, 0.0),
    (DAY1, 12): row(1, 0.5, 0, 0, 0.0),
    (DAY1, 16): row(0, 0.0, 0, 1, 0.85),  # sales, no staff seen: no ratio
    (DAY2, 9): row(0, 0.0, 4, 0, 0.0),
    (DAY2, 10): row(0, 0.0, 0, 1, 10.5),
    (DAY2, 12): row(0, 0.0, 0, 1, 1.5),
    (DAY2, 23): row(1, 0.5, 0, 0, 0.0),
    (DAY3, 9): row(0, 0.0, 1, 0, 0.0),
}
MODELS = ("--select", "+sales_per_labour_hour fct_store_day", "--indirect-selection", "cautious")


def test_labour_hours_from_staff_shifts_beside_entries_and_sales(dbt_build):
    write_lake(dbt_build.lake)
    write_staff_tracks(dbt_build.lake)
    results = dbt_build(None, None, *MODELS).result.results
    statuses = {r.node.name: str(r.status) for r in results if r.node.resource_type == "test"}
    assert "sales_per_labour_hour_reconciles" in statuses
    assert {name: status for name, status in statuses.items() if status != "pass"} == {}
    assert read_marts(dbt_build.db, QUERY, places=6)["sales_per_labour_hour"] == EXPECTED

    # without chaining, anna's 09:xx is her door sighting (3 s) and two till tracks (30 + 5 min)
    dbt_build(SHOP, DAY1.isoformat(), *MODELS, dbt_vars={"staff_shift_gap_minutes": 0})
    rebuilt = read_marts(dbt_build.db, QUERY, places=6)["sales_per_labour_hour"]
    assert rebuilt[(DAY1, 9)] == row(2, (3 + 1800 + 300) / 3600 + 0.25, 4, 1, 7.25)
    assert rebuilt[(DAY1, 10)] == row(1, 0.5, 0, 1, 4.5)  # 10:00-10:30 only
    assert (DAY1, 11) in rebuilt and rebuilt[(DAY2, 23)] == EXPECTED[(DAY2, 23)]  # other days untouched
