"""The behaviour <-> sales marts from a hand-made lake of a tiny supermarket (shop `market`, in UTC so
camera and till hours agree), value by value.

Zones: entrance and promo (snacks) on the door camera, dairy and bakery on the floor camera;
produce is in no zone. Over two days customers browse dairy in four hours, a staff member stands in
dairy (not counted), bakery sells in an hour nobody was seen there, and a third day has entrance
crossings but no receipts. The correlation figures are recomputed here with the statistics module
from the observations listed in the comments.
"""

from __future__ import annotations

import math
import statistics
from datetime import UTC, date, datetime, timedelta

import polars as pl

from tests.conftest import assert_marts
from tests.test_dbt_zones import catalog_frame
from watershop_dagster import catalog, lake

SHOP = "market"
DAY1, DAY2, DAY3 = date(2025, 6, 2), date(2025, 6, 3), date(2025, 6, 4)
ZONES = {"entrance": ("door", "entrance", None), "promo": ("door", "promo", "snacks"),
         "dairy": ("floor", "shelf", "dairy"), "bakery": ("floor", "shelf", "bakery")}
# day -> (zone, track, identity, enter hh:mm:ss, dwell s)
VISITS = {
    DAY1: [("entrance", "d1", "c_1", "09:00:00", 4), ("entrance", "d2", None, "09:01:00", 5),
           ("entrance", "d3", "staff/anna", "09:02:00", 3), ("promo", "d1", "c_1", "09:00:10", 90),
           ("dairy", "f1", "c_1", "09:05:00", 60), ("dairy", "f2", None, "09:06:00", 30),
           ("dairy", "f3", "c_2", "10:10:00", 120), ("dairy", "f4", "staff/anna", "11:00:00", 300)],
    DAY2: [("entrance", "d5", None, "09:00:00", 6), ("dairy", "f1", "c_3", "09:10:00", 20),
           ("dairy", "f2", None, "10:00:00", 200), ("dairy", "f2", None, "10:20:00", 40),
           ("bakery", "f5", None, "10:05:00", 50)],
    DAY3: [],
}
# day -> (track, identity, direction): entrance crossings on the door camera
CROSSINGS = {
    DAY1: [("d1", "c_1", "in"), ("d2", None, "in"), ("d3", "staff/anna", "in"), ("d7", None, "in"),
           ("d8", None, "in"), ("d1", "c_1", "out")],
    DAY2: [("d5", None, "in"), ("d6", None, "in"), ("d8", None, "in"), ("d9", None, "in")],
    DAY3: [("d1", None, "in")],
}
# day -> (receipt, hh:mm, product, category, quantity, unit price)
LINES = {
    DAY1: [("R1", "09:20", "P1", "dairy", 2, 1.50), ("R1", "09:20", "P2", "snacks", 1, 2.00),
           ("R1", "09:20", "P3", "bakery", 1, 2.25), ("R2", "10:30", "P1", "dairy", 3, 1.50),
           ("R3", "16:00", "P4", "produce", 1, 0.85)],
    DAY2: [("R4", "10:15", "P1", "dairy", 4, 1.50), ("R4", "10:15", "P3", "bakery", 2, 2.25),
           ("R5", "12:05", "P1", "dairy", 1, 1.50)],
}
CATEGORY_ZONES = [("dairy", "dairy", None, None), ("snacks", "promo", None, None), ("bakery", "bakery", None, None)]


def at(day: date, hms: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hms}").replace(tzinfo=UTC)


def write_lake(root) -> None:
    for day in (DAY1, DAY2, DAY3):
        for camera in ("door", "floor"):
            visits = [{"camera": camera, "zone": z, "kind": ZONES[z][1], "category": ZONES[z][2], "track_id": t,
                       "identity": i, "enter_ts": at(day, hms), "exit_ts": at(day, hms) + timedelta(seconds=dwell),
                       "dwell_s": float(dwell), "exit_reason": "left_zone", "source": catalog.SOURCE_WATERSHOP}
                      for z, t, i, hms, dwell in VISITS[day] if ZONES[z][0] == camera]
            tracks = {(v["track_id"], v["identity"]): v for v in visits}
            person_tracks = [{"camera": camera, "track_id": t, "identity": i, "start_ts": v["enter_ts"],
                              "end_ts": v["exit_ts"], "duration_s": v["dwell_s"], "observations": 10,
                              "source": catalog.SOURCE_WATERSHOP} for (t, i), v in tracks.items()]
            footfall = [{"camera": camera, "zone": "entrance", "track_id": t, "identity": i,
                         "ts": at(day, f"09:{n:02d}:30"), "direction": d, "source": catalog.SOURCE_WATERSHOP}
                        for n, (t, i, d) in enumerate(CROSSINGS[day]) if camera == "door"]
            for dataset, rows in ((catalog.PERSON_TRACKS, person_tracks), (catalog.ZONE_VISITS, visits),
                                  (catalog.FOOTFALL, footfall)):
                lake.write_dataset(catalog_frame(dataset, rows), root, dataset, shop_id=SHOP, date=day, camera=camera)
    for day, lines in LINES.items():
        rows = [{"receipt_id": r, "timestamp": datetime.fromisoformat(f"{day}T{t}"), "till": "T1", "customer_id": None,
                 "payment_mode": "Card", "product_id": p, "product_name": p, "category": cat, "quantity": float(q),
                 "unit_price": u, "discount": 0.0, "line_total": round(q * u, 2),
                 "source_file": f"{SHOP}/export_{day}.csv", "source_line": n + 2}
                for n, (r, t, p, cat, q, u) in enumerate(lines)]
        lake.write_dataset(pl.DataFrame(rows), root, catalog.RECEIPTS, shop_id=SHOP, date=day)
    zones = pl.DataFrame(CATEGORY_ZONES, schema=dict(catalog.CATEGORY_ZONES.schema), orient="row")
    lake.write_dataset(zones, root, catalog.CATEGORY_ZONES, shop_id=SHOP)


def fit(points: list[tuple[float, float]]) -> tuple:
    """n, mean dwell, mean sales, r, Fisher z 95 % interval, slope of sales per dwell minute."""
    dwell, sales = [p[0] for p in points], [p[1] for p in points]
    r = statistics.correlation(dwell, sales)
    half = 1.959963984540054 / math.sqrt(len(points) - 3)
    slope = statistics.linear_regression([d / 60 for d in dwell], sales).slope
    return (len(points), statistics.mean(dwell), statistics.mean(sales), round(r, 6),
            round(math.tanh(math.atanh(r) - half), 6), round(math.tanh(math.atanh(r) + half), 6), round(slope, 6))


# dairy's zone-hours: (total dwell, sales)
DAIRY_HOURS = [(90, 3.00), (120, 4.50), (20, 0.0), (240, 6.00), (0, 1.50)]
SALES_CONSTANT, DWELL_CONSTANT = "sales are the same in every observation", "dwell is the same in every observation"
NO_INTERVAL = "n = 2: the Fisher z interval needs at least 4 observations"
TOO_FEW = "n = 1: a correlation needs at least 2 observations"

QUERIES = {
    "fct_zone_hour": (3, "select date, hour, zone, visits, visitors, total_dwell_s, mean_dwell_s, receipts, lines, "
                         "units, sales, sales_per_visitor from fct_zone_hour"),
    "fct_store_day_behaviour": (1, "select date, store_visitors, zone_visitors, receipts, units, sales, "
                                   "average_transaction_value, units_per_transaction, conversion_rate, shopper_yield, "
                                   "zone_entry_rate from fct_store_day_behaviour"),
    "zone_dwell_sales_correlation": (
        2, "select zone, grain, category, sold_categories, first_date, last_date, n, mean_total_dwell_s, mean_sales, "
           "correlation, ci_low, ci_high, slope_sales_per_dwell_minute, status, reason "
           "from zone_dwell_sales_correlation"),
}
EXPECTED = {
    "fct_zone_hour": {
        (DAY1, 9, "entrance"): (2, 2, 9.0, 4.5, 0, 0, 0.0, 0.0, 0.0),  # anna (staff) not counted
        (DAY1, 9, "promo"): (1, 1, 90.0, 90.0, 1, 1, 1.0, 2.00, 2.0),
        (DAY1, 9, "dairy"): (2, 2, 90.0, 45.0, 1, 1, 2.0, 3.00, 1.5),
        (DAY1, 9, "bakery"): (0, 0, 0.0, None, 1, 1, 1.0, 2.25, None),  # sales, nobody seen
        (DAY1, 10, "dairy"): (1, 1, 120.0, 120.0, 1, 1, 3.0, 4.50, 4.5),
        # DAY1 11:00 dairy: only anna (staff), no sales -> no row
        (DAY2, 9, "entrance"): (1, 1, 6.0, 6.0, 0, 0, 0.0, 0.0, 0.0),
        (DAY2, 9, "dairy"): (1, 1, 20.0, 20.0, 0, 0, 0.0, 0.0, 0.0),  # visitors, no sales
        (DAY2, 10, "dairy"): (2, 1, 240.0, 120.0, 1, 1, 4.0, 6.00, 6.0),  # one shopper, two visits
        (DAY2, 10, "bakery"): (1, 1, 50.0, 50.0, 1, 1, 2.0, 4.50, 4.5),
        (DAY2, 12, "dairy"): (0, 0, 0.0, None, 1, 1, 1.0, 1.50, None),
    },
    "fct_store_day_behaviour": {
        # DAY1: 4 customer entries (anna's not counted); c_1, f2 and c_2 seen past the entrance
        (DAY1,): (4, 3, 3, 8.0, 12.60, 4.20, 2.6667, 0.75, 3.15, 0.75),
        (DAY2,): (4, 3, 2, 7.0, 12.00, 6.00, 3.5, 0.5, 3.0, 0.75),
        (DAY3,): (1, 0, 0, 0.0, 0.0, None, None, 0.0, 0.0, 0.0),  # entries, no receipts
    },
    "zone_dwell_sales_correlation": {
        ("dairy", "hour"): ("dairy", "dairy", DAY1, DAY2, *fit(DAIRY_HOURS), "ok", None),
        # dairy's days: (210 s, 7.50), (260 s, 7.50)
        ("dairy", "day"): ("dairy", "dairy", DAY1, DAY2, 2, 235.0, 7.5, None, None, None, 0.0, "no_variation",
                           SALES_CONSTANT),
        ("promo", "hour"): ("snacks", "snacks", DAY1, DAY1, 1, 90.0, 2.0, None, None, None, None,
                            "too_few_observations", TOO_FEW),
        ("promo", "day"): ("snacks", "snacks", DAY1, DAY1, 1, 90.0, 2.0, None, None, None, None,
                           "too_few_observations", TOO_FEW),
        # bakery: (0 s, 2.25), (50 s, 4.50): two points lie on a line, r = 1, no interval yet
        ("bakery", "hour"): ("bakery", "bakery", DAY1, DAY2, 2, 25.0, 3.375, 1.0, None, None, 2.7, "no_interval",
                             NO_INTERVAL),
        ("bakery", "day"): ("bakery", "bakery", DAY1, DAY2, 2, 25.0, 3.375, 1.0, None, None, 2.7, "no_interval",
                            NO_INTERVAL),
        ("entrance", "hour"): (None, None, DAY1, DAY2, 2, 7.5, 0.0, None, None, None, 0.0, "no_variation",
                               SALES_CONSTANT),
        ("entrance", "day"): (None, None, DAY1, DAY2, 2, 7.5, 0.0, None, None, None, 0.0, "no_variation",
                              SALES_CONSTANT),
    },
}


# the new marts, what they read, and store_visits (zone_visits' relationship test reads it); only the
# tests whose models are all built
MODELS = ("--select", "+zone_dwell_sales_correlation +fct_store_day_behaviour +store_visits",
          "--indirect-selection", "cautious")


def test_the_behaviour_sales_marts_hold_exact_values_and_a_scoped_rebuild_keeps_them(dbt_build):
    write_lake(dbt_build.lake)
    statuses = {r.node.name: str(r.status) for r in dbt_build(None, None, *MODELS).result.results if r.node.resource_type == "test"}
    assert {name: status for name, status in statuses.items() if status != "pass"} == {}
    assert {"fct_zone_hour_reconciles", "fct_store_day_behaviour_reconciles"} <= statuses.keys()
    assert_marts(dbt_build.db, QUERIES, EXPECTED, places=6)
    # the daily case: rebuilding one shop-day rewrites it, and the shop's correlations, to the same rows
    dbt_build(SHOP, DAY2.isoformat(), *MODELS)
    assert_marts(dbt_build.db, QUERIES, EXPECTED, places=6)
