"""The privacy audit log, the id salt, retention, and where unfinished erasures are journalled.

Erasure itself (`watershop forget`) is `identity.erasure.forget_customer`: journalled, resumable
and verified. Each erasure appends one row to ``<lake>/privacy_audit/part.parquet``
(PRIVACY_AUDIT_SCHEMA): erasure id, shop, time, rows removed per dataset — and no personal data:
the customer id only as sha256(random salt + shop + id), so "was X erased?" can be answered by
whoever knows X, but the log names nobody.

A later visit of the erased person gets a NEW id: their exemplars are gone, so matching creates
a customer, and new ids hash the shop's *id salt* (`id_salt`: a digest of the shop's erasure ids),
which every erasure changes — even re-processing the old footage cannot recreate the old id. Until
an erasure has finished (its audit row written) the salt has not changed yet, so the identity
build refuses to run for a shop with an unfinished erasure journal (`refuse_if_erasure_pending`).

`apply_retention(config, today)` applies each catalog dataset's retention class: it deletes
``face_embeddings`` partitions older than ``retention.embeddings_days`` and nulls older embeddings
kept as exemplars (ledger rows of older days; snapshot exemplars seen on older days), deletes
``face_crops`` older than ``retention.face_crops_days``, and deletes the quarantines
(``transactions_quarantine``, ``footage_quarantine``) older than ``retention.quarantine_days``.
A customer whose every exemplar expired can no longer be recognised: their next visit creates a
new id. Each run appends an audit row (kind "retention").
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from watershop_dagster import catalog, lake
from watershop_dagster.catalog import RETENTION_DAYS_FIELD, Dataset, Expiry, Retention
from watershop_dagster.config import WatershopConfig
from watershop_dagster.identity.ids import hid
from watershop_dagster.locks import identity_lock, privacy_audit_lock

KIND_FORGET = "forget_customer"
KIND_RETENTION = "retention"
PRIVACY_AUDIT_SCHEMA = catalog.PRIVACY_AUDIT.schema
#: unfinished erasures: <lake>/state/erasure/<shop>/<journal>.json (identity.erasure writes them)
ERASURE_JOURNALS = Path("state") / "erasure"


class ErasurePending(RuntimeError):
    """An erasure of the shop was interrupted; identities must not be built until it finishes."""


def erasure_journals(config: WatershopConfig, shop_id: str | None = None) -> list[Path]:
    """Journal files of unfinished erasures (of one shop, or of all)."""
    root = config.lake_root / ERASURE_JOURNALS
    return sorted(root.glob(f"{shop_id or '*'}/*.json")) if root.is_dir() else []


def refuse_if_erasure_pending(config: WatershopConfig, shop_id: str) -> None:
    """Raise ErasurePending while an erasure of the shop is unfinished: building identities now could
    re-create the person from embeddings not yet erased (and under the old id salt)."""
    if pending := erasure_journals(config, shop_id):
        raise ErasurePending(f"{len(pending)} unfinished erasure(s) in {shop_id} ({pending[0].parent}); "
                             "finish them first: watershop forget (or watershop run finishes them)")


@dataclass
class RetentionReport:
    audit_id: str
    embeddings_cutoff: date
    crops_cutoff: date
    counts: dict[str, int] = field(default_factory=dict)
    files_removed: int = 0
    quarantine_cutoff: date | None = None


# --------------------------------------------------------------------------------------------
# the audit log and the id salt


def audit_path(config: WatershopConfig) -> Path:
    return lake.partition_file(config.lake_root, catalog.PRIVACY_AUDIT.name)


def read_audit(config: WatershopConfig) -> pl.DataFrame:
    path = audit_path(config)
    return pl.read_parquet(path) if path.exists() else pl.DataFrame(schema=PRIVACY_AUDIT_SCHEMA)


def subject_hash(salt: str, shop_id: str, customer_id: str) -> str:
    return hashlib.sha256(f"{salt}|{shop_id}|{customer_id}".encode()).hexdigest()


def was_erased(config: WatershopConfig, shop_id: str, customer_id: str) -> bool:
    """Whether the audit log records an erasure of this customer (checked by recomputing hashes)."""
    audit = read_audit(config).filter((pl.col("kind") == KIND_FORGET) & (pl.col("shop_id") == shop_id))
    return any(subject_hash(salt, shop_id, customer_id) == h for salt, h in audit.select("hash_salt", "subject_hash").rows())


def id_salt(config: WatershopConfig, shop_id: str) -> str:
    """Salt of new customer ids: "" before the shop's first erasure, then a digest of its erasure ids."""
    audit = read_audit(config)
    ids = sorted(audit.filter((pl.col("kind") == KIND_FORGET) & (pl.col("shop_id") == shop_id))["erasure_id"].to_list())
    return hid("salt", *ids, size=8) if ids else ""


def append_audit(config: WatershopConfig, row: dict) -> None:
    with privacy_audit_lock(config.warehouse_dir):
        current = read_audit(config)
        new = pl.DataFrame([row], schema=PRIVACY_AUDIT_SCHEMA)
        merged = pl.concat([current.select(list(PRIVACY_AUDIT_SCHEMA)).cast(dict(PRIVACY_AUDIT_SCHEMA)), new])
        lake.atomic_write_parquet(merged, audit_path(config))


# --------------------------------------------------------------------------------------------
# rewriting partitions


def rewrite(path: Path, transform: Callable[[pl.DataFrame], tuple[pl.DataFrame, int]]) -> int:
    """Apply transform (frame -> (new frame, rows removed or scrubbed)); write atomically if it did anything."""
    frame = pl.read_parquet(path)
    new, changed = transform(frame)
    if changed:
        lake.atomic_write_parquet(new, path)
    return changed


def shop_parts(lake_root: Path, dataset: Dataset, shop_id: str) -> list[tuple[date, Path]]:
    """(date, file) of every partition file of the shop (any depth: cameras too)."""
    return [(day, path) for day, folder in lake.dated_partitions(lake_root, dataset, shop_id)
            for path in lake.part_files(folder)]


def drop_rows(condition: pl.Expr) -> Callable[[pl.DataFrame], tuple[pl.DataFrame, int]]:
    def transform(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
        keep = frame.filter(~condition.fill_null(False))
        return keep, frame.height - keep.height

    return transform


def has_columns(frame: pl.DataFrame, *columns: str) -> bool:
    return all(c in frame.columns for c in columns)


# --------------------------------------------------------------------------------------------
# retention


def apply_retention(config: WatershopConfig, today: date, shop_ids: Iterable[str] | None = None) -> RetentionReport:
    """Expire every catalog dataset's data older than its retention class's period; see the
    module docstring."""
    cutoffs = {retention: today - timedelta(days=getattr(config.retention, days_field))
               for retention, days_field in RETENTION_DAYS_FIELD.items()}
    report = RetentionReport(uuid.uuid4().hex, cutoffs[Retention.EMBEDDINGS], cutoffs[Retention.FACE_CROPS],
                             quarantine_cutoff=cutoffs[Retention.QUARANTINE])
    for shop_id in list(shop_ids) if shop_ids is not None else config.shop_ids:
        with identity_lock(config.warehouse_dir, shop_id):
            for dataset in catalog.DATASETS:
                if dataset.retention != Retention.KEPT:
                    _expire(config.lake_root, dataset, shop_id, cutoffs[dataset.retention], report)
    counts = report.counts
    append_audit(config, {
        "erasure_id": report.audit_id,
        "kind": KIND_RETENTION,
        "shop_id": None if shop_ids is None else ",".join(sorted(shop_ids)),
        "erased_at": datetime.now(UTC),
        "subject_hash": None,
        "hash_salt": None,
        "rows_removed": sum(v for k, v in counts.items() if k != catalog.FACE_CROPS.name),
        "files_removed": report.files_removed,
        "counts_json": json.dumps(dict(sorted(counts.items()))),
        "detail": json.dumps({"today": today.isoformat(), "embeddings_before": report.embeddings_cutoff.isoformat(),
                              "crops_before": report.crops_cutoff.isoformat(),
                              "quarantine_before": report.quarantine_cutoff.isoformat()}),
    })
    return report


def _expire(lake_root: Path, dataset: Dataset, shop_id: str, cutoff: date, report: RetentionReport) -> None:
    """Apply the dataset's expiry to the shop's data older than `cutoff` (rows or files counted)."""

    def count(n: int) -> None:
        if n:
            report.counts[dataset.name] = report.counts.get(dataset.name, 0) + n

    for day, folder in lake.dated_partitions(lake_root, dataset, shop_id):
        if dataset.expiry == Expiry.EXEMPLARS:  # every snapshot holds exemplars of old days
            for part in lake.part_files(folder):
                count(rewrite(part, _expire_exemplars(cutoff)))
            continue
        if day >= cutoff:
            continue
        if dataset.expiry == Expiry.EMBEDDING_COLUMN:
            for part in lake.part_files(folder):
                count(rewrite(part, _null_embeddings))
            continue
        if dataset.schema is None:
            files = [p for p in folder.rglob("*") if p.is_file()]
            count(len(files))
        else:
            files = lake.part_files(folder)
            count(sum(pl.scan_parquet(part).select(pl.len()).collect().item() for part in files))
        report.files_removed += len(files)
        shutil.rmtree(folder)


def _null_embeddings(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    if "embedding" not in frame.columns:
        return frame, 0
    n = frame.filter(pl.col("embedding").is_not_null()).height
    if not n:
        return frame, 0
    return frame.with_columns(pl.lit(None, frame.schema["embedding"]).alias("embedding")), n


def _expire_exemplars(cutoff: date):
    def transform(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
        if not has_columns(frame, "exemplar_days", "exemplars", "exemplar_ids") or frame.is_empty():
            return frame, 0
        ids, days, vecs, dropped = [], [], [], 0
        for e_ids, e_days, e_vecs in frame.select("exemplar_ids", "exemplar_days", "exemplars").iter_rows():
            keep = [i for i, d in enumerate(e_days or []) if d is not None and d >= cutoff]
            dropped += len(e_days or []) - len(keep)
            ids.append([e_ids[i] for i in keep])
            days.append([e_days[i] for i in keep])
            vecs.append([e_vecs[i] for i in keep])
        if not dropped:
            return frame, 0
        out = frame.with_columns(
            pl.Series("exemplar_ids", ids, dtype=frame.schema["exemplar_ids"]),
            pl.Series("exemplar_days", days, dtype=frame.schema["exemplar_days"]),
            pl.Series("exemplars", vecs, dtype=frame.schema["exemplars"]),
        ).with_columns(pl.col("exemplar_ids").list.len().cast(pl.Int32).alias("n_exemplars"))
        return out, dropped

    return transform
