from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from watershop_dagster.receipts.generate import (
    CATEGORIES,
    DEFAULT_ZONE_OF_CATEGORY,
    InjectedEffect,
    StoreProfile,
    generate_receipts,
    write_receipt_csvs,
)
from watershop_dagster.receipts.schema import (
    RECEIPT_COLUMNS,
    ReceiptsSchemaError,
    read_receipts,
    validate_receipts_csv,
    validate_receipts_text,
    write_receipts_partitions,
)
from watershop_dagster.receipts.zones import ZoneMap, ZoneMapError

HEADER = ",".join(RECEIPT_COLUMNS) + "\n"
GOOD = "R1,2026-03-02 10:00:00,T1,C00001,Card,P0001,Milk 1L,dairy,2,1.50,0,3.00\n"
SMALL = StoreProfile(receipts_per_day=80)


def test_valid_lines_land_and_every_bad_line_is_quarantined_with_its_reason():
    text = (
        HEADER + GOOD
        + "R1,2026-03-02 10:00:00,T1,,Cash,P0002,Bread,bakery,-1,2.00,,-2.00\n"  # a refund: negative quantity
        + "R2,2026-03-02 10:05,T2,,Cash,P0003,Eggs,dairy,two,1.00,0,2.00\n"
        + "R3,2026-03-02 10:06:00,T2,,Cash,P0003,Eggs,dairy,1,1.00,0,5.00\n"
        + ",not a time,T2,,Cash,P0003,Eggs,dairy,1,1.00,0,1.00\n"
        + "R4,2026-03-02 10:07:00,T2\n"
        + "R5,2026-03-02 10:08:00,T1,,UPI,P0004,Apples,produce,3,0.50,0.30,1.20\n"
    )
    batch = validate_receipts_text(text, "export.csv")
    assert batch.valid["receipt_id"].to_list() == ["R1", "R1", "R5"]
    assert batch.valid["quantity"].to_list() == [2.0, -1.0, 3.0]
    assert batch.valid["discount"].to_list() == [0.0, 0.0, 0.3]
    reasons = dict(zip(batch.quarantine["source_line"], batch.quarantine["reason"]))
    assert reasons[4] == "quantity 'two' is not a number"
    assert reasons[5].startswith("line_total 5.0 != quantity x unit_price - discount = 1.0")
    assert "empty receipt_id" in reasons[6] and "unparseable timestamp 'not a time'" in reasons[6]
    assert reasons[7] == "expected 12 fields, got 3"
    assert batch.valid.height + batch.quarantine.height == 7  # every data line in exactly one place


def test_other_exports_are_read_through_a_column_mapping():
    loyverse = {"receipt_id": "Receipt number", "timestamp": "Date", "product_id": "SKU", "product_name": "Item",
                "quantity": "Quantity", "unit_price": "Price", "line_total": "Net sales", "category": "Category"}
    text = ("Date,Receipt number,Item,SKU,Category,Quantity,Price,Net sales\n"
            "2026-03-02 09:00,1-1001,Milk,10001,dairy,1,1.5,1.5\n")
    batch = validate_receipts_text(text, "loyverse.csv", loyverse)
    assert batch.quarantine.is_empty()
    assert batch.valid.select("receipt_id", "product_id", "line_total").row(0) == ("1-1001", "10001", 1.5)
    missing = validate_receipts_text("Date,Item\n2026-03-02 09:00,Milk\n", "bad.csv", loyverse)
    assert "missing required column(s)" in missing.quarantine["reason"][0]
    with pytest.raises(ReceiptsSchemaError, match="unknown receipt column"):
        validate_receipts_text(text, "x.csv", {"basket": "Receipt number"})


def test_zone_map_resolves_a_category_by_date_and_rejects_overlaps():
    zones = ZoneMap.constant({"dairy": "Z1", "bakery": "Z2"}).move("dairy", "Z3", date(2026, 3, 10))
    assert zones.zone_on("dairy", date(2026, 3, 9)) == "Z1"
    assert zones.zone_on("dairy", date(2026, 3, 10)) == "Z3"
    assert zones.zone_on("bakery", date(2030, 1, 1)) == "Z2"
    assert zones.zone_on("pet", date(2026, 3, 10)) is None
    frame = pl.DataFrame({"category": ["dairy", "dairy", "pet"],
                          "date": [date(2026, 3, 9), date(2026, 3, 11), date(2026, 3, 11)]})
    assert zones.resolve(frame)["zone"].to_list() == ["Z1", "Z3", None]
    with pytest.raises(ZoneMapError, match="two zones"):
        ZoneMap.from_frame(pl.concat([zones.table, zones.table.head(1)]))


def test_zone_map_round_trips_through_csv(tmp_path: Path):
    zones = ZoneMap.constant(DEFAULT_ZONE_OF_CATEGORY).move("alcohol", "Z1", date(2026, 2, 1))
    assert ZoneMap.read_csv(zones.write_csv(tmp_path / "category_zones.csv")).table.equals(zones.table)


def test_generator_is_seeded_and_has_a_few_hundred_products_in_every_category():
    first = generate_receipts(date(2026, 3, 2), date(2026, 3, 8), seed=5, profile=SMALL)
    again = generate_receipts(date(2026, 3, 2), date(2026, 3, 8), seed=5, profile=SMALL)
    other = generate_receipts(date(2026, 3, 2), date(2026, 3, 8), seed=6, profile=SMALL)
    assert first.zone_day_sales().equals(again.zone_day_sales())
    assert not first.zone_day_sales().equals(other.zone_day_sales())
    assert len(first.catalogue.product_id) == 300
    assert set(np.bincount(first.catalogue.category)) and (np.bincount(first.catalogue.category) > 0).all()
    frame = first.frame()
    assert frame.columns == list(RECEIPT_COLUMNS)
    assert (frame["quantity"] < 0).any()  # voids
    assert (frame["discount"] > 0).any()  # promotions
    saturday = frame.filter(pl.col("timestamp").dt.weekday() == 6).height
    tuesday = frame.filter(pl.col("timestamp").dt.weekday() == 2).height
    assert saturday > tuesday  # weekly pattern


def test_injected_lift_raises_the_treated_zone_days_by_the_lift():
    start, end = date(2026, 1, 5), date(2026, 3, 1)
    treated = frozenset(("Z2", start + timedelta(days=i)) for i in range(0, 56, 2))
    base = generate_receipts(start, end, seed=9).zone_day_sales()
    lifted = generate_receipts(start, end, seed=9, effect=InjectedEffect(0.2, treated)).zone_day_sales()
    is_treated = pl.struct("zone", "date").map_elements(lambda r: (r["zone"], r["date"]) in treated,
                                                        return_dtype=pl.Boolean)
    ratio = lifted.filter(is_treated)["metric"].sum() / base.filter(is_treated)["metric"].sum()
    assert ratio == pytest.approx(1.2, abs=0.03)
    untouched = lifted.filter(~is_treated)["metric"].sum() / base.filter(~is_treated)["metric"].sum()
    assert untouched == pytest.approx(1.0, abs=0.01)


def test_generated_csvs_validate_cleanly_and_land_in_the_lake(tmp_path: Path):
    lines = generate_receipts(date(2026, 3, 2), date(2026, 3, 3), seed=1, profile=SMALL)
    paths = write_receipt_csvs(lines, tmp_path / "landing", "shop1")
    assert [p.name for p in paths] == ["receipts_shop1_2026-03-02.csv", "receipts_shop1_2026-03-03.csv"]
    total = 0.0
    for path, day in zip(paths, (date(2026, 3, 2), date(2026, 3, 3))):
        batch = validate_receipts_csv(path)
        assert batch.quarantine.is_empty()
        write_receipts_partitions(batch, tmp_path / "lake", "shop1", day)
        total += batch.valid["line_total"].sum()
    stored = read_receipts(tmp_path / "lake", "shop1")
    assert stored["line_total"].sum() == pytest.approx(total)
    assert stored["line_total"].sum() == pytest.approx(float(lines.line_total.sum()), abs=0.05)
    assert set(stored["category"]) <= set(CATEGORIES)
