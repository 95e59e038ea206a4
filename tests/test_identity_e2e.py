"""End to end on a short synthetic day: footage → process_video → registry → visits → links."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from watershop_dagster import lake
from watershop_dagster.config import ShopConfig, WatershopConfig
from watershop_dagster.identity import pipeline as ident
from watershop_dagster.pos.ingest import TRANSACTIONS_SCHEMA
from watershop_dagster.synthetic.footage import plain_path, write_day
from watershop_dagster.synthetic.gallery import load_gallery, save_gallery
from watershop_dagster.vision.footage import FootageFile
from watershop_dagster.vision.pipeline import process_video

pytestmark = pytest.mark.slow

DAY = date(2024, 6, 3)
PEOPLE = ("John_Simm", "John_Salley", "kit_harington", "biden")


def test_short_day_end_to_end(faces_dir, tmp_path):
    config = WatershopConfig(shops=[ShopConfig(id="s1", timezone="Asia/Kolkata", cameras=["counter"])],
                             workspace_dir=tmp_path)
    shop = config.shop("s1")
    gallery = {p: crops for p, crops in load_gallery(faces_dir, max_images_per_person=2).items() if p in PEOPLE}
    save_gallery(gallery, config.known_people_dir / "staff", ["John_Simm"])
    truth = write_day(config.footage_root, shop, "counter", DAY, gallery, duration_s=180.0, visits_per_hour=60.0,
                      counter_s=(15.0, 30.0), staff="John_Simm", size=(640, 360), fps=10.0, seed=3)
    customers = truth.filter(pl.col("role") == "customer").sort("entry_utc")
    assert customers.height >= 2

    local_start = datetime.combine(DAY, shop.opening_time, tzinfo=shop.tz)
    footage = FootageFile(start_utc=local_start.astimezone(UTC), camera="counter",
                          path=plain_path(config.footage_root, "counter", local_start), layout="plain")
    result = process_video(footage, config.vision, workers=1)
    keys = {"shop_id": "s1", "date": DAY.isoformat(), "camera": "counter"}
    for dataset in ("face_detections", "face_tracks", "face_embeddings"):
        lake.write_partition(getattr(result, dataset), config.lake_root, dataset, **keys)
    pay = [v["counter_start_utc"] + (v["counter_end_utc"] - v["counter_start_utc"]) / 2 for v in customers.iter_rows(named=True)]
    transactions = pl.DataFrame(
        [{"transaction_id": f"T{k}", "timestamp_local": t.replace(tzinfo=None), "timestamp_utc": t, "customer_id": None,
          "payment_mode": "UPI", "can_size": "20L", "number_of_cans": 1, "amount": 35.0, "payment_status": "Paid",
          "source_file": "e2e.csv", "source_line": k + 2} for k, t in enumerate(pay)],
        schema=TRANSACTIONS_SCHEMA,
    )
    lake.write_partition(transactions, config.lake_root, "transactions", shop_id="s1", date=DAY.isoformat())

    registry = ident.build_customer_registry(config, "s1", DAY)
    visits_build = ident.build_visits(config, "s1", DAY)
    links_build = ident.link_transactions(config, "s1", DAY)

    assert registry.known.get("staff") == 1  # the staff member is recognised, not a customer
    assert visits_build.problems == []
    visits = lake.read_dataset(config.lake_root, "visits", shop_id="s1", date=DAY)
    paying = visits.filter(pl.col("role") == "customer").sort("entry_utc")
    assert paying.height == customers.height
    for truth_row, row in zip(customers.iter_rows(named=True), paying.iter_rows(named=True)):
        assert abs((row["entry_utc"] - truth_row["entry_utc"]).total_seconds()) < 5
        assert abs((row["exit_utc"] - truth_row["counter_end_utc"]).total_seconds()) < 5
    # one id per person, different people apart
    pairs = set(zip(customers["person"], paying["customer_id"]))
    assert len(pairs) == customers["person"].n_unique() == paying["customer_id"].n_unique()
    links = lake.read_dataset(config.lake_root, "transaction_visit_links", shop_id="s1", date=DAY).sort("timestamp_utc")
    assert links_build.linked == customers.height
    assert links["visit_id"].to_list() == paying["visit_id"].to_list()
    assert lake.read_dataset(config.lake_root, "visits_without_transaction", shop_id="s1", date=DAY).is_empty()
    # the whole chain is idempotent
    before = {name: lake.read_dataset(config.lake_root, name, shop_id="s1", date=DAY) for name in ("face_identities", "visits", "transaction_visit_links")}
    ident.build_customer_registry(config, "s1", DAY)
    ident.build_visits(config, "s1", DAY)
    ident.link_transactions(config, "s1", DAY)
    for name, frame in before.items():
        assert lake.read_dataset(config.lake_root, name, shop_id="s1", date=DAY).equals(frame), name
    assert timedelta(0) < paying["exit_utc"][0] - paying["entry_utc"][0]
