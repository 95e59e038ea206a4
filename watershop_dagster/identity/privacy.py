"""Right to erasure and retention for the face/identity data in the lake.

`forget_customer(config, shop_id, customer_id)` removes every trace of one customer from the
shop's partitions of every catalog dataset that declares personal data (`catalog.PersonalData`),
each file rewritten atomically, while holding the shop's identity lock (no registry/visits/link
build of that shop interleaves):

* ``customer_ledger`` and ``customer_registry`` rows (and ``ambiguous_with`` references);
* the tracks identified as them (``face_identities``, ``recognition_results``; other tracks'
  ``best_match``/``second_match`` references are nulled), and those tracks' rows in
  ``face_embeddings``, ``face_detections`` and ``face_tracks`` (every camera partition) and their
  face crops (``face_crops/shop_id=/date=/camera=/<detection_id>.jpg``, or rows of any Parquet
  file there with a ``detection_id`` column);
* their ``visits``, ``alerts``, ``visits_without_transaction`` and ``pos_customer_map`` rows;
  ``transaction_visit_links`` rows keep the (business) transaction but lose the visit and
  customer (``reason`` = "erased").

Then one row is appended to ``<lake>/privacy_audit/part.parquet`` (PRIVACY_AUDIT_SCHEMA): erasure
id, shop, time, rows removed per dataset — and no personal data: the customer id only as
sha256(random salt + shop + id), so "was X erased?" can be answered by whoever knows X, but the
log names nobody. Marts built from the lake must be rebuilt afterwards.

A later visit of the erased person gets a NEW id: their exemplars are gone, so matching creates
a customer, and new ids hash the shop's *id salt* (`id_salt`: a digest of the shop's erasure ids),
which every erasure changes — even re-processing the old footage cannot recreate the old id.

`apply_retention(config, today)` applies each catalog dataset's retention class: it deletes
``face_embeddings`` partitions older than ``retention.embeddings_days`` and nulls older embeddings
kept as exemplars (ledger rows of older days; snapshot exemplars seen on older days), deletes
``face_crops`` older than ``retention.face_crops_days``, and deletes the quarantines
(``transactions_quarantine``, ``footage_quarantine``) older than ``retention.quarantine_days``.
A customer whose every exemplar expired can no longer be recognised: their next visit creates a
new id. Each run appends an audit row (kind "retention").
"""

from __future__ import annotations

import functools
import hashlib
import json
import operator
import secrets
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
#: where erasure finds whose tracks and visits they were (erased after the datasets keyed by them)
_TRACK_SOURCES = (catalog.FACE_IDENTITIES, catalog.RECOGNITION_RESULTS, catalog.CUSTOMER_LEDGER)
_VISIT_SOURCES = (catalog.VISITS,)


@dataclass
class ErasureReport:
    erasure_id: str
    shop_id: str
    counts: dict[str, int] = field(default_factory=dict)  # dataset -> rows removed (or scrubbed)
    files_removed: int = 0

    @property
    def rows_removed(self) -> int:
        return sum(self.counts.values())

    @property
    def found(self) -> bool:
        return self.rows_removed > 0 or self.files_removed > 0


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


def _append_audit(config: WatershopConfig, row: dict) -> None:
    with privacy_audit_lock(config.warehouse_dir):
        current = read_audit(config)
        new = pl.DataFrame([row], schema=PRIVACY_AUDIT_SCHEMA)
        merged = pl.concat([current.select(list(PRIVACY_AUDIT_SCHEMA)).cast(dict(PRIVACY_AUDIT_SCHEMA)), new])
        lake.atomic_write_parquet(merged, audit_path(config))


# --------------------------------------------------------------------------------------------
# rewriting partitions


def _rewrite(path: Path, transform: Callable[[pl.DataFrame], tuple[pl.DataFrame, int]]) -> int:
    """Apply transform (frame -> (new frame, rows removed or scrubbed)); write atomically if it did anything."""
    frame = pl.read_parquet(path)
    new, changed = transform(frame)
    if changed:
        lake.atomic_write_parquet(new, path)
    return changed


def _shop_parts(lake_root: Path, dataset: Dataset, shop_id: str) -> list[tuple[date, Path]]:
    """(date, file) of every partition file of the shop (any depth: cameras too)."""
    return [(day, path) for day, folder in lake.dated_partitions(lake_root, dataset, shop_id)
            for path in lake.part_files(folder)]


@dataclass(frozen=True)
class _Subject:
    """The person being erased: their customer id, and the tracks and visits that were theirs."""

    customer_id: str
    tracks: frozenset[str]
    visits: frozenset[str]

    def rows(self, frame: pl.DataFrame, match_on: tuple[str, ...]) -> pl.Expr | None:
        """Which rows of `frame` are theirs (None: it has none of the `match_on` columns)."""
        tests = {
            "customer_id": lambda: pl.col("customer_id") == self.customer_id,
            "track_id": lambda: pl.col("track_id").is_in(sorted(self.tracks)),
            "visit_id": lambda: pl.col("visit_id").is_in(sorted(self.visits)),
            "identity": lambda: pl.col("identity") == self.customer_id,  # behaviour rows name them
        }
        hits = [tests[column]() for column in match_on if column in tests and column in frame.columns]
        if not hits:
            return None
        return functools.reduce(operator.or_, hits).fill_null(False)

    def could_own_rows(self, match_on: tuple[str, ...]) -> bool:
        known = {"customer_id": True, "identity": True, "track_id": bool(self.tracks), "visit_id": bool(self.visits)}
        return any(known.get(column, False) for column in match_on)


def _their_values(lake_root: Path, shop_id: str, sources: Iterable[Dataset], customer_id: str, column: str) -> frozenset[str]:
    """Values of `column` in the rows of `sources` that belong to the customer."""
    found: set[str] = set()
    for dataset in sources:
        for _day, path in _shop_parts(lake_root, dataset, shop_id):
            frame = pl.read_parquet(path)
            if _has(frame, "customer_id", column):
                found.update(frame.filter(pl.col("customer_id") == customer_id)[column].drop_nulls().to_list())
    return frozenset(found)


def _forget(dataset: Dataset, subject: _Subject, gone_detections: set[str]):
    """Transform removing (or scrubbing) the subject's rows and nulling references to them;
    detection ids of removed rows are added to `gone_detections` (their face crops go too)."""
    personal = dataset.personal

    def transform(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
        changed = 0
        hit = subject.rows(frame, personal.match_on)
        if hit is not None and (n := frame.filter(hit).height):
            if personal.scrub is not None:
                frame = frame.with_columns(
                    pl.when(hit).then(pl.lit(value, frame.schema[column])).otherwise(pl.col(column)).alias(column)
                    for column, value in personal.scrub.items() if column in frame.columns
                )
            else:
                if "detection_id" in frame.columns:
                    gone_detections.update(frame.filter(hit)["detection_id"].drop_nulls().to_list())
                frame = frame.filter(~hit)
            changed += n
        for reference in personal.references:
            if reference.column not in frame.columns:
                continue
            named = pl.col(reference.column) == subject.customer_id
            if n := frame.filter(named).height:
                frame = frame.with_columns(
                    pl.when(named).then(None).otherwise(pl.col(column)).alias(column)
                    for column in (reference.column, *reference.dependents) if column in frame.columns
                )
                changed += n
        return frame, changed

    return transform


def _erasure_order() -> list[Dataset]:
    """Parquet datasets holding personal data; those erasure learns tracks and visits from go last,
    so an interrupted erasure, run again, still finds everything."""
    sources = (*_TRACK_SOURCES, *_VISIT_SOURCES)
    personal = [d for d in catalog.DATASETS if d.personal is not None and d.schema is not None]
    return sorted(personal, key=lambda d: d in sources)


def _has(frame: pl.DataFrame, *columns: str) -> bool:
    return all(c in frame.columns for c in columns)


def forget_customer(config: WatershopConfig, shop_id: str, customer_id: str) -> ErasureReport:
    """Erase one customer of one shop everywhere in the lake; see the module docstring."""
    config.shop(shop_id)
    root = config.lake_root
    report = ErasureReport(erasure_id=uuid.uuid4().hex, shop_id=shop_id)
    counts = report.counts
    with identity_lock(config.warehouse_dir, shop_id):
        subject = _Subject(
            customer_id,
            tracks=_their_values(root, shop_id, _TRACK_SOURCES, customer_id, "track_id"),
            visits=_their_values(root, shop_id, _VISIT_SOURCES, customer_id, "visit_id"),
        )
        detection_ids: dict[date, set[str]] = {}
        for dataset in _erasure_order():
            if not subject.could_own_rows(dataset.personal.match_on):
                continue
            for day, path in _shop_parts(root, dataset, shop_id):
                changed = _rewrite(path, _forget(dataset, subject, detection_ids.setdefault(day, set())))
                if changed:
                    counts[dataset.name] = counts.get(dataset.name, 0) + changed
        removed_crops = _forget_crops(root, shop_id, {day: ids for day, ids in detection_ids.items() if ids})
        if removed_crops:
            counts[catalog.FACE_CROPS.name] = removed_crops
        report.files_removed += removed_crops

        salt = secrets.token_hex(16)
        _append_audit(config, {
            "erasure_id": report.erasure_id,
            "kind": KIND_FORGET,
            "shop_id": shop_id,
            "erased_at": datetime.now(UTC),
            "subject_hash": subject_hash(salt, shop_id, customer_id),
            "hash_salt": salt,
            "rows_removed": report.rows_removed - removed_crops,
            "files_removed": report.files_removed,
            "counts_json": json.dumps(dict(sorted(counts.items()))),
            "detail": None,
        })
    return report


def _forget_crops(lake_root: Path, shop_id: str, detection_ids: dict[date, set[str]]) -> int:
    removed = 0
    for day, ids in detection_ids.items():
        folder = lake.partition_dir(lake_root, catalog.FACE_CROPS.name, shop_id=shop_id, date=day.isoformat())
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            if not path.is_file():
                continue
            if path.suffix == ".parquet":
                frame = pl.read_parquet(path)
                if "detection_id" in frame.columns:
                    removed += _rewrite(path, _drop_rows(pl.col("detection_id").is_in(sorted(ids))))
            elif path.stem in ids:
                path.unlink()
                removed += 1
    return removed


def _drop_rows(condition: pl.Expr) -> Callable[[pl.DataFrame], tuple[pl.DataFrame, int]]:
    def transform(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
        keep = frame.filter(~condition.fill_null(False))
        return keep, frame.height - keep.height

    return transform


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
    _append_audit(config, {
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
                count(_rewrite(part, _expire_exemplars(cutoff)))
            continue
        if day >= cutoff:
            continue
        if dataset.expiry == Expiry.EMBEDDING_COLUMN:
            for part in lake.part_files(folder):
                count(_rewrite(part, _null_embeddings))
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
        if not _has(frame, "exemplar_days", "exemplars", "exemplar_ids") or frame.is_empty():
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
