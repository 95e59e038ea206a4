"""Every file of tests/fuzz_corpus lands or is quarantined with a reason; nothing crashes, nothing is lost."""

from __future__ import annotations

import io
import os
import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from watershop_dagster import lake
from watershop_dagster.config import init_workspace
from watershop_dagster.pos.ingest import QUARANTINE_DATASET, VALID_DATASET, ingest_partitions, rows_dates

CORPUS = Path(__file__).with_name("fuzz_corpus")
UNDATED_WRITTEN = datetime(2024, 1, 5, 12, tzinfo=ZoneInfo("Asia/Kolkata"))
UNPRINTABLE = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]} | set("\u200b\u200e\u202e\u2066\ufeff")


def manifest() -> dict[str, tuple[int, str, list[str]]]:
    entries = {}
    for line in (CORPUS / "expected.tsv").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, rows_in, outcome, landed = (line.split("\t") + [""])[:4]
        entries[name] = (int(rows_in), outcome, [tid for tid in landed.split(",") if tid])
    return entries


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    config = init_workspace(tmp_path_factory.mktemp("fuzz"), shop_id="shop1", timezone="Asia/Kolkata")
    folder = config.transactions_landing / "shop1"
    days = set()
    for source in sorted(CORPUS.glob("*.csv")):
        path = folder / source.name
        shutil.copyfile(source, path)
        os.utime(path, (UNDATED_WRITTEN.timestamp(), UNDATED_WRITTEN.timestamp()))
        days |= rows_dates(path, config.shop("shop1"), config.partitions_start)
    results = ingest_partitions(config, "shop1", days)
    # read back from the lake: what was written, not what the function returned
    read = {
        dataset: pl.concat([lake.read_partition(config.lake_root, dataset, shop_id="shop1", date=day.isoformat())
                            for day in sorted(days)])
        for dataset in (VALID_DATASET, QUARANTINE_DATASET)
    }
    assert sum(r.valid_count for r in results.values()) == read[VALID_DATASET].height
    return read[VALID_DATASET], read[QUARANTINE_DATASET]


def test_the_manifest_lists_every_corpus_file():
    assert sorted(manifest()) == sorted(p.name for p in CORPUS.glob("*.csv"))


@pytest.mark.parametrize("name", sorted(manifest()))
def test_each_file_lands_or_is_quarantined_and_nothing_is_lost(ingested, name):
    valid, rejected = ingested
    rows_in, outcome, landed_ids = manifest()[name]
    mine_valid = valid.filter(pl.col("source_file") == f"shop1/{name}")
    mine_rejected = rejected.filter(pl.col("source_file") == f"shop1/{name}")
    assert (mine_rejected["reason"].str.len_chars() > 0).all()
    if outcome == "file":
        assert mine_valid.height == 0 and mine_rejected.height == 1
        assert mine_rejected["source_line"].to_list() == [None]
        return
    lines = mine_valid["source_line"].to_list() + mine_rejected["source_line"].to_list()
    assert len(lines) == len(set(lines)) == rows_in  # rows in = landed + quarantined, each once
    assert sorted(mine_valid["transaction_id"]) == sorted(landed_ids)
    text = (CORPUS / name).read_bytes()
    if b'"' not in text and not text.startswith(b"\xff\xfe"):  # one record per physical line: check independently
        physical = io.StringIO(text.decode("utf-8-sig", "replace"), newline="").readlines()
        numbers = [n for n, line in enumerate(physical, start=1) if line.strip()][1:]  # after the header
        assert sorted(lines) == numbers


def test_nothing_unprintable_or_out_of_bounds_lands(ingested):
    valid, rejected = ingested
    for column in ("transaction_id", "customer_id", "source_file"):
        assert not any(ch in UNPRINTABLE for value in valid[column].drop_nulls() for ch in value), column
    for column in ("source_file", "raw", "reason"):
        assert not any(ch in UNPRINTABLE for value in rejected[column].drop_nulls() for ch in value), column
    assert valid["amount"].is_between(0, 10_000_000).all() and valid["number_of_cans"].is_between(1, 1000).all()
    assert valid.group_by("transaction_id").len()["len"].max() == 1
