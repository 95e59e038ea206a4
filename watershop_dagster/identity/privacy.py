"""Right to erasure and retention for the face/identity data in the lake.

`forget_customer(config, shop_id, customer_id)` removes every trace of one customer from the
shop's partitions, each file rewritten atomically, while holding the shop's identity lock (no
registry/visits/link build of that shop interleaves):

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

`apply_retention(config, today)` deletes ``face_embeddings`` partitions older than
``retention.embeddings_days`` and nulls older embeddings kept as exemplars (ledger rows of older
days; snapshot exemplars seen on older days), and deletes ``face_crops`` older than
``retention.face_crops_days``. A customer whose every exemplar expired can no longer be
recognised: their next visit creates a new id. Each run appends an audit row (kind "retention").
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from watershop_dagster import lake
from watershop_dagster.config import WatershopConfig
from watershop_dagster.identity.linking import (
    LINKS_DATASET,
    POS_MAP_DATASET,
    REASON_ERASED,
    UNLINKED_VISITS_DATASET,
)
from watershop_dagster.identity.registry import (
    IDENTITIES_DATASET,
    LEDGER_DATASET,
    RECOGNITION_DATASET,
    REGISTRY_DATASET,
    TS,
    file_lock,
    hid,
    shop_lock,
    utc_now,
)
from watershop_dagster.identity.visits import ALERTS_DATASET, VISITS_DATASET

AUDIT_DATASET = "privacy_audit"
CAMERA_FACE_DATASETS = ("face_embeddings", "face_detections", "face_tracks")
CROPS_DATASET = "face_crops"
KIND_FORGET = "forget_customer"
KIND_RETENTION = "retention"

PRIVACY_AUDIT_SCHEMA = pl.Schema(
    {
        "erasure_id": pl.Utf8,
        "kind": pl.Utf8,  # forget_customer | retention
        "shop_id": pl.Utf8,  # null for a retention run over every shop
        "erased_at": TS,
        "subject_hash": pl.Utf8,  # sha256(hash_salt + shop + customer_id); null for retention
        "hash_salt": pl.Utf8,
        "rows_removed": pl.Int64,
        "files_removed": pl.Int64,
        "counts_json": pl.Utf8,  # {"dataset": rows removed or scrubbed, ...}
        "detail": pl.Utf8,  # e.g. the retention cut-off days
    }
)


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


# --------------------------------------------------------------------------------------------
# the audit log and the id salt


def audit_path(config: WatershopConfig) -> Path:
    return config.lake_root / AUDIT_DATASET / lake.PART_FILE


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
    with file_lock(config.warehouse_dir / "locks" / "privacy-audit.lock"):
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


def _shop_parts(lake_root: Path, dataset: str, shop_id: str) -> list[tuple[date, Path]]:
    """(date, file) of every part.parquet under the shop's partitions (any depth: cameras too)."""
    root = lake.partition_dir(lake_root, dataset, shop_id=shop_id)
    out = []
    if root.is_dir():
        for date_dir in sorted(root.glob("date=*")):
            try:
                day = date.fromisoformat(date_dir.name.removeprefix("date="))
            except ValueError:
                continue
            out += [(day, p) for p in sorted(date_dir.rglob(lake.PART_FILE))]
    return out


def _drop_rows(condition: pl.Expr) -> Callable[[pl.DataFrame], tuple[pl.DataFrame, int]]:
    def transform(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
        keep = frame.filter(~condition.fill_null(False))
        return keep, frame.height - keep.height

    return transform


def _has(frame: pl.DataFrame, *columns: str) -> bool:
    return all(c in frame.columns for c in columns)


def forget_customer(config: WatershopConfig, shop_id: str, customer_id: str) -> ErasureReport:
    """Erase one customer of one shop everywhere in the lake; see the module docstring."""
    config.shop(shop_id)
    root = config.lake_root
    report = ErasureReport(erasure_id=uuid.uuid4().hex, shop_id=shop_id)
    counts = report.counts
    cid = customer_id
    with shop_lock(config.warehouse_dir, shop_id):
        # what belongs to them: tracks (per day) and visits
        tracks: dict[date, set[str]] = {}
        for dataset in (IDENTITIES_DATASET, RECOGNITION_DATASET, LEDGER_DATASET):
            for day, path in _shop_parts(root, dataset, shop_id):
                frame = pl.read_parquet(path, columns=None)
                if _has(frame, "customer_id", "track_id"):
                    found = frame.filter(pl.col("customer_id") == cid)["track_id"].drop_nulls().to_list()
                    if found:
                        tracks.setdefault(day, set()).update(found)
        visit_ids: set[str] = set()
        for _day, path in _shop_parts(root, VISITS_DATASET, shop_id):
            frame = pl.read_parquet(path)
            if _has(frame, "customer_id", "visit_id"):
                visit_ids.update(frame.filter(pl.col("customer_id") == cid)["visit_id"].to_list())
        all_tracks = set().union(*tracks.values()) if tracks else set()
        is_track = pl.col("track_id").is_in(sorted(all_tracks))
        is_visit = pl.col("visit_id").is_in(sorted(visit_ids))

        def count(dataset: str, n: int) -> None:
            if n:
                counts[dataset] = counts.get(dataset, 0) + n

        # the ledger first: from here on, matching can no longer find them
        for dataset in (LEDGER_DATASET, REGISTRY_DATASET):
            for _day, path in _shop_parts(root, dataset, shop_id):
                count(dataset, _rewrite(path, _forget_in_registry(cid)))
        for _day, path in _shop_parts(root, IDENTITIES_DATASET, shop_id):
            count(IDENTITIES_DATASET, _rewrite(path, _drop_rows(is_track | (pl.col("customer_id") == cid))))
        for _day, path in _shop_parts(root, RECOGNITION_DATASET, shop_id):
            count(RECOGNITION_DATASET, _rewrite(path, _forget_in_recognition(cid, is_track)))
        detection_ids: dict[date, set[str]] = {}
        for dataset in CAMERA_FACE_DATASETS:
            for day, path in _shop_parts(root, dataset, shop_id):
                day_tracks = tracks.get(day)
                if not day_tracks:
                    continue
                frame = pl.read_parquet(path)
                if not _has(frame, "track_id"):
                    continue
                gone = frame.filter(pl.col("track_id").is_in(sorted(day_tracks)))
                if gone.is_empty():
                    continue
                if "detection_id" in gone.columns:
                    detection_ids.setdefault(day, set()).update(gone["detection_id"].drop_nulls().to_list())
                lake.atomic_write_parquet(frame.filter(~pl.col("track_id").is_in(sorted(day_tracks))), path)
                count(dataset, gone.height)
        removed_crops = _forget_crops(root, shop_id, detection_ids)
        count(CROPS_DATASET, removed_crops)
        report.files_removed += removed_crops
        for _day, path in _shop_parts(root, VISITS_DATASET, shop_id):
            count(VISITS_DATASET, _rewrite(path, _drop_rows(pl.col("customer_id") == cid)))
        for _day, path in _shop_parts(root, ALERTS_DATASET, shop_id):
            count(ALERTS_DATASET, _rewrite(path, _drop_rows(is_visit)))
        for _day, path in _shop_parts(root, UNLINKED_VISITS_DATASET, shop_id):
            count(UNLINKED_VISITS_DATASET, _rewrite(path, _drop_rows(is_visit | (pl.col("customer_id") == cid))))
        for _day, path in _shop_parts(root, POS_MAP_DATASET, shop_id):
            count(POS_MAP_DATASET, _rewrite(path, _drop_rows(pl.col("customer_id") == cid)))
        for _day, path in _shop_parts(root, LINKS_DATASET, shop_id):
            count(LINKS_DATASET, _rewrite(path, _forget_in_links(cid, is_visit)))

        salt = secrets.token_hex(16)
        _append_audit(config, {
            "erasure_id": report.erasure_id,
            "kind": KIND_FORGET,
            "shop_id": shop_id,
            "erased_at": utc_now(),
            "subject_hash": subject_hash(salt, shop_id, cid),
            "hash_salt": salt,
            "rows_removed": report.rows_removed - removed_crops,
            "files_removed": report.files_removed,
            "counts_json": json.dumps(dict(sorted(counts.items()))),
            "detail": None,
        })
    return report


def _forget_in_registry(cid: str):
    def transform(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
        keep = frame.filter(pl.col("customer_id") != cid)
        removed = frame.height - keep.height
        if "ambiguous_with" in keep.columns:
            refs = keep.filter(pl.col("ambiguous_with") == cid).height
            if refs:
                keep = keep.with_columns(
                    pl.when(pl.col("ambiguous_with") == cid).then(None).otherwise(pl.col("ambiguous_with")).alias("ambiguous_with")
                )
                removed += refs
        return keep, removed

    return transform


def _forget_in_recognition(cid: str, is_track: pl.Expr):
    def transform(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
        keep = frame.filter(~(is_track | (pl.col("customer_id") == cid)).fill_null(False))
        changed = frame.height - keep.height
        for column, dist in (("best_match", "best_distance"), ("second_match", "second_distance")):
            if column not in keep.columns:
                continue
            hit = pl.col(column) == cid
            n = keep.filter(hit).height
            if n:
                keep = keep.with_columns(
                    pl.when(hit).then(None).otherwise(pl.col(column)).alias(column),
                    *([pl.when(hit).then(None).otherwise(pl.col(dist)).alias(dist)] if dist in keep.columns else []),
                    *([pl.when(hit).then(None).otherwise(pl.col("track_distance")).alias("track_distance")]
                      if column == "best_match" and "track_distance" in keep.columns else []),
                )
                changed += n
        return keep, changed

    return transform


def _forget_in_links(cid: str, is_visit: pl.Expr):
    def transform(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
        hit = ((pl.col("customer_id") == cid) | is_visit).fill_null(False)
        n = frame.filter(hit).height
        if not n:
            return frame, 0
        blank = {"visit_id": None, "customer_id": None, "person_key": None, "role": None, "seen_gap_s": None}
        out = frame.with_columns(
            *[pl.when(hit).then(pl.lit(v, frame.schema[c])).otherwise(pl.col(c)).alias(c) for c, v in blank.items()
              if c in frame.columns],
            *([pl.when(hit).then(0.0).otherwise(pl.col("link_confidence")).alias("link_confidence")]
              if "link_confidence" in frame.columns else []),
            *([pl.when(hit).then(pl.lit(REASON_ERASED)).otherwise(pl.col("reason")).alias("reason")]
              if "reason" in frame.columns else []),
        )
        return out, n

    return transform


def _forget_crops(lake_root: Path, shop_id: str, detection_ids: dict[date, set[str]]) -> int:
    removed = 0
    for day, ids in detection_ids.items():
        folder = lake.partition_dir(lake_root, CROPS_DATASET, shop_id=shop_id, date=day.isoformat())
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            if not path.is_file():
                continue
            if path.suffix == ".parquet":
                frame = pl.read_parquet(path)
                if "detection_id" in frame.columns:
                    n = _rewrite(path, _drop_rows(pl.col("detection_id").is_in(sorted(ids))))
                    removed += n
            elif path.stem in ids:
                path.unlink()
                removed += 1
    return removed


# --------------------------------------------------------------------------------------------
# retention


def _date_dirs(lake_root: Path, dataset: str, shop_id: str) -> Iterable[tuple[date, Path]]:
    root = lake.partition_dir(lake_root, dataset, shop_id=shop_id)
    if not root.is_dir():
        return []
    out = []
    for child in sorted(root.glob("date=*")):
        try:
            out.append((date.fromisoformat(child.name.removeprefix("date=")), child))
        except ValueError:
            continue
    return out


def apply_retention(config: WatershopConfig, today: date, shop_ids: Iterable[str] | None = None) -> RetentionReport:
    """Delete embeddings (and crops) older than the retention periods; see the module docstring."""
    emb_cutoff = today - timedelta(days=config.retention.embeddings_days)
    crop_cutoff = today - timedelta(days=config.retention.face_crops_days)
    report = RetentionReport(uuid.uuid4().hex, emb_cutoff, crop_cutoff)
    counts = report.counts
    root = config.lake_root

    def count(dataset: str, n: int) -> None:
        if n:
            counts[dataset] = counts.get(dataset, 0) + n

    for shop_id in list(shop_ids) if shop_ids is not None else config.shop_ids:
        with shop_lock(config.warehouse_dir, shop_id):
            for day, folder in _date_dirs(root, "face_embeddings", shop_id):
                if day < emb_cutoff:
                    for part in folder.rglob(lake.PART_FILE):
                        count("face_embeddings", pl.scan_parquet(part).select(pl.len()).collect().item())
                        report.files_removed += 1
                    shutil.rmtree(folder)
            for day, folder in _date_dirs(root, CROPS_DATASET, shop_id):
                if day < crop_cutoff:
                    files = [p for p in folder.rglob("*") if p.is_file()]
                    count(CROPS_DATASET, len(files))
                    report.files_removed += len(files)
                    shutil.rmtree(folder)
            for day, folder in _date_dirs(root, LEDGER_DATASET, shop_id):
                part = folder / lake.PART_FILE
                if day < emb_cutoff and part.exists():
                    count(LEDGER_DATASET, _rewrite(part, _null_embeddings))
            for _day, folder in _date_dirs(root, REGISTRY_DATASET, shop_id):
                part = folder / lake.PART_FILE
                if part.exists():
                    count(REGISTRY_DATASET, _rewrite(part, _expire_exemplars(emb_cutoff)))
    _append_audit(config, {
        "erasure_id": report.audit_id,
        "kind": KIND_RETENTION,
        "shop_id": None if shop_ids is None else ",".join(sorted(shop_ids)),
        "erased_at": utc_now(),
        "subject_hash": None,
        "hash_salt": None,
        "rows_removed": sum(v for k, v in counts.items() if k != CROPS_DATASET),
        "files_removed": report.files_removed,
        "counts_json": json.dumps(dict(sorted(counts.items()))),
        "detail": json.dumps({"today": today.isoformat(), "embeddings_before": emb_cutoff.isoformat(),
                              "crops_before": crop_cutoff.isoformat()}),
    })
    return report


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
