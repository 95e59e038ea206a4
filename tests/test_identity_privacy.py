"""Erasure removes every trace of a customer and a later visit gets a new id; retention."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from tests.test_identity_registry import (
    DAY1,
    DAY2,
    DAY3,
    SHOP,
    day_base,
    ids_by_track,
    make_config,
    no_known,
    photo_vectors,  # noqa: F401 - the fixture
    visit,
    write_vision_day,
)
from watershop_dagster import lake
from watershop_dagster.config import Retention, WatershopConfig
from watershop_dagster.identity import pipeline as ident
from watershop_dagster.identity.erasure import forget_customer
from watershop_dagster.identity.privacy import (
    KIND_FORGET,
    KIND_RETENTION,
    apply_retention,
    read_audit,
    was_erased,
)
from watershop_dagster.pos.ingest import TRANSACTIONS_SCHEMA

SPECS = {
    DAY1: [visit("John_Salley", [0], 0), visit("John_Savage", [0], 100)],
    DAY2: [visit("John_Salley", [1], 50), visit("John_Schneider", [0], 150)],
}


def write_transactions(config: WatershopConfig, day: date, seconds: list[float]) -> None:
    rows = []
    for k, s in enumerate(seconds):
        ts = day_base(day) + timedelta(seconds=s)
        rows.append({"transaction_id": f"{day}-{k}", "timestamp_local": ts.replace(tzinfo=None), "timestamp_utc": ts,
                     "customer_id": f"L{k}", "payment_mode": "Cash", "can_size": "20L", "number_of_cans": 1,
                     "amount": 35.0, "payment_status": "Paid", "source_file": "x.csv", "source_line": k + 2})
    lake.write_partition(pl.DataFrame(rows, schema=TRANSACTIONS_SCHEMA), config.lake_root, "transactions",
                         shop_id=SHOP, date=day.isoformat())


def write_crops(config: WatershopConfig, day: date, detection_ids: list[str]) -> None:
    folder = lake.partition_dir(config.lake_root, "face_crops", shop_id=SHOP, date=day.isoformat(), camera="counter")
    folder.mkdir(parents=True, exist_ok=True)
    for det in detection_ids:
        (folder / f"{det}.jpg").write_bytes(b"\xff\xd8jpeg")


def build_all(config: WatershopConfig, day: date) -> None:
    ident.build_customer_registry(config, SHOP, day, known=no_known())
    ident.build_visits(config, SHOP, day)
    ident.link_transactions(config, SHOP, day)


def lake_mentions(config: WatershopConfig, needles: set[str]) -> list[str]:
    """Parquet files (and file names) anywhere in the lake whose string values mention a needle."""
    hits = []
    for path in config.lake_root.rglob("*"):
        if path.is_file() and any(n in path.name for n in needles):
            hits.append(str(path))
        if path.suffix != ".parquet":
            continue
        frame = pl.read_parquet(path)
        for name, dtype in frame.schema.items():
            values = frame[name]
            if dtype == pl.List(pl.Utf8):
                values = values.explode(empty_as_null=False)
            elif dtype != pl.Utf8:
                continue
            if values.is_in(sorted(needles)).any():
                hits.append(f"{path}:{name}")
    return hits


def test_forget_removes_every_trace_and_a_later_visit_gets_a_new_id(photo_vectors, tmp_path):
    config = make_config(tmp_path)
    for day, specs in SPECS.items():
        tracks = write_vision_day(config, day, specs, photo_vectors)
        write_crops(config, day, [f"{t}-d0" for t in tracks["track_id"]])
        write_transactions(config, day, [s["start"] + 20 for s in specs])
        build_all(config, day)
    salley = ids_by_track(config, DAY1)["t0501-000"]
    assert ids_by_track(config, DAY2)["t0502-000"] == salley
    other_ids = {ids_by_track(config, DAY1)["t0501-001"], ids_by_track(config, DAY2)["t0502-001"]}
    salley_tracks = {"t0501-000", "t0502-000"}
    visits = pl.concat([lake.read_dataset(config.lake_root, "visits", shop_id=SHOP, date=d) for d in SPECS])
    salley_visits = set(visits.filter(pl.col("customer_id") == salley)["visit_id"])
    assert len(salley_visits) == 2
    needles = {salley, *salley_tracks, *salley_visits}
    assert lake_mentions(config, needles)  # there is something to erase

    report = forget_customer(config, SHOP, salley)

    assert report.found and report.counts["customer_ledger"] >= 2 and report.counts["face_embeddings"] == 2
    assert report.counts["face_crops"] == 2 and report.counts["visits"] == 2
    assert report.counts["transaction_visit_links"] == 2
    assert lake_mentions(config, needles) == []
    assert not any(salley_tracks & {p.stem.rsplit("-d", 1)[0]} for p in (config.lake_root / "face_crops").rglob("*.jpg"))
    # the others are untouched
    for cid in other_ids:
        assert lake.read_dataset(config.lake_root, "customer_registry", shop_id=SHOP, date=DAY2).filter(pl.col("customer_id") == cid).height == 1
    links = pl.concat([lake.read_dataset(config.lake_root, "transaction_visit_links", shop_id=SHOP, date=d) for d in SPECS])
    assert links.height == 4 and links.filter(pl.col("reason") == "erased").height == 2
    # the audit names nobody, but the erasure can be verified by whoever knows the id
    audit = read_audit(config)
    assert audit.height == 1 and audit["kind"][0] == KIND_FORGET and audit["rows_removed"][0] > 0
    assert salley.encode() not in (config.lake_root / "privacy_audit" / "part.parquet").read_bytes()
    assert was_erased(config, SHOP, salley) and not was_erased(config, SHOP, next(iter(other_ids)))

    # Salley comes back on day 3: a new id, not merged with anybody
    write_vision_day(config, DAY3, [visit("John_Salley", [2], 0), visit("John_Savage", [1], 200)], photo_vectors)
    build_all(config, DAY3)
    day3 = ids_by_track(config, DAY3)
    assert day3["t0503-000"] not in {salley, *other_ids}
    assert day3["t0503-001"] in other_ids
    # even re-processing the old footage (same track ids) cannot bring the old id back
    write_vision_day(config, DAY1, SPECS[DAY1], photo_vectors)
    ident.build_customer_registry(config, SHOP, DAY1, known=no_known())
    again = ids_by_track(config, DAY1)["t0501-000"]
    assert again != salley and again == day3["t0503-000"]
    assert ident.registry_stability_problems(config, SHOP, DAY3) == []


def test_retention_drops_old_embeddings_and_crops(photo_vectors, tmp_path):
    config = make_config(tmp_path).model_copy(update={"retention": Retention(embeddings_days=30, face_crops_days=7)})
    old, recent, today = DAY1, DAY1 + timedelta(days=40), DAY1 + timedelta(days=45)
    for day, specs in ((old, [visit("John_Shimkus", [0], 0)]), (recent, [visit("John_Savage", [0], 0)])):
        tracks = write_vision_day(config, day, specs, photo_vectors)
        write_crops(config, day, [f"{t}-d0" for t in tracks["track_id"]])
        ident.build_customer_registry(config, SHOP, day, known=no_known())
    shimkus = ids_by_track(config, old)["t0501-000"]

    report = apply_retention(config, today)

    assert report.counts["face_embeddings"] == 1 and report.counts["face_crops"] == 1
    assert not lake.partition_dir(config.lake_root, "face_embeddings", shop_id=SHOP, date=old.isoformat()).exists()
    assert lake.partition_dir(config.lake_root, "face_embeddings", shop_id=SHOP, date=recent.isoformat()).exists()
    assert not lake.partition_dir(config.lake_root, "face_crops", shop_id=SHOP, date=old.isoformat()).exists()
    assert lake.partition_dir(config.lake_root, "face_crops", shop_id=SHOP, date=recent.isoformat()).exists()
    ledger = lake.read_dataset(config.lake_root, "customer_ledger", shop_id=SHOP, date=old)
    assert ledger.height and ledger["embedding"].null_count() == ledger.height
    snapshot = lake.read_dataset(config.lake_root, "customer_registry", shop_id=SHOP, date=recent)
    expired = snapshot.filter(pl.col("customer_id") == shimkus).row(0, named=True)
    assert expired["n_exemplars"] == 0 and expired["exemplars"] == []  # the id remains, the face does not
    assert snapshot.filter(pl.col("customer_id") != shimkus)["n_exemplars"].to_list() == [1]
    assert read_audit(config)["kind"].to_list() == [KIND_RETENTION]
    # with no exemplar left, Shimkus is a new customer on his next visit
    write_vision_day(config, today, [visit("John_Shimkus", [1], 0)], photo_vectors)
    ident.build_customer_registry(config, SHOP, today, known=no_known())
    assert ids_by_track(config, today)[f"t{today:%m%d}-000"] != shimkus


def test_retention_drops_old_quarantines_only(tmp_path):
    config = make_config(tmp_path).model_copy(update={"retention": Retention(quarantine_days=90)})
    today = DAY1 + timedelta(days=100)
    old, recent = DAY1, DAY1 + timedelta(days=20)
    rejected = pl.DataFrame({"source_file": ["a.csv"], "source_line": [3], "raw": ["x"], "reason": ["bad"]})
    skipped = pl.DataFrame({"path": ["counter/x.mp4", "counter/y.mp4"], "camera": ["counter"] * 2, "reason": ["zero-byte"] * 2})
    for day in (old, recent):
        lake.write_dataset(rejected, config.lake_root, "transactions_quarantine", shop_id=SHOP, date=day)
        lake.write_dataset(skipped, config.lake_root, "footage_quarantine", shop_id=SHOP, date=day, camera="counter")
        write_transactions(config, day, [0.0])

    report = apply_retention(config, today)

    assert report.quarantine_cutoff == today - timedelta(days=90)
    assert report.counts == {"transactions_quarantine": 1, "footage_quarantine": 2}
    for dataset in ("transactions_quarantine", "footage_quarantine"):
        assert [d for d, _ in lake.dated_partitions(config.lake_root, dataset, SHOP)] == [recent]
    # business data is kept whatever its age
    assert [d for d, _ in lake.dated_partitions(config.lake_root, "transactions", SHOP)] == [old, recent]
    assert read_audit(config).row(0, named=True)["rows_removed"] == 3
