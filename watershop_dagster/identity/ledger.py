"""The customer ledger (dataset ``customer_ledger``): the shop's append-only memory of customers.

One partition per shop and contribution day: building day D replaces only D's partition, never
another day's rows, so a customer created on another day keeps its id. Per customer seen on a
day it holds up to EXEMPLARS_PER_DAY diverse, good-quality embeddings (VIP/blocked: one sighting
row without embedding). Biometric: never expose it to BI.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from watershop_dagster import catalog, lake
from watershop_dagster.vocabulary import Role


def read_ledger(lake_root: Path, shop_id: str, *, exclude: date | None = None, upto: date | None = None) -> pl.DataFrame:
    """The shop's ledger rows of every day (<= `upto`, not `exclude`) with a `date` column."""
    return lake.read_days(lake_root, catalog.CUSTOMER_LEDGER, shop_id, exclude=exclude, upto=upto)


def ledger_info(ledger: pl.DataFrame) -> dict[str, dict]:
    """customer_id -> {role, person_key, created_day, created_from_track, ambiguous_with}."""
    if ledger.is_empty():
        return {}
    agg = ledger.group_by("customer_id").agg(
        pl.col("role").first(),
        pl.col("person_key").drop_nulls().first(),
        pl.col("created_day").drop_nulls().min(),
        pl.col("created_from_track").drop_nulls().sort().first(),
        pl.col("ambiguous_with").drop_nulls().sort().first(),
    )
    return {row.pop("customer_id"): row for row in agg.iter_rows(named=True)}


def previous_assignments(identities: pl.DataFrame, ledger_day: pl.DataFrame) -> dict[str, str]:
    """track_id -> customer_id from an earlier build of the day (face_identities, then ledger rows)."""
    out: dict[str, str] = {}
    if not ledger_day.is_empty():
        for track, cid in ledger_day.filter(pl.col("role") == Role.CUSTOMER).select("track_id", "customer_id").iter_rows():
            if track is not None and cid is not None:
                out[track] = cid
    if not identities.is_empty():
        rows = identities.filter(pl.col("role") == Role.CUSTOMER).select("track_id", "customer_id")
        for track, cid in rows.iter_rows():
            if cid is not None:
                out[track] = cid
    return out
