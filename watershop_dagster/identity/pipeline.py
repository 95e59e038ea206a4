"""Entry points the Dagster assets call, one shop-day each: registry → visits → transaction links.

Each reads the lake partitions it needs, holds the shop's identity lock
(``<warehouse>/locks/identity-<shop>.lock``) while it reads shared state and writes, writes every
output partition atomically (re-running a partition is idempotent) and returns a small dataclass
whose `metadata()` suits a MaterializeResult.

* `build_customer_registry(config, shop_id, day)` — reads face_embeddings + face_tracks (all
  cameras) and known_people photos; writes customer_ledger (the day's contribution),
  face_identities, recognition_results and customer_registry (snapshot of the day; snapshots of
  LATER days already written are refreshed too, so an out-of-order backfill leaves them
  consistent).
* `build_visits(config, shop_id, day)` — reads face_identities and face_detections (face
  boxes, to bridge a still face the detector lost); writes visits and alerts.
* `link_transactions(config, shop_id, day)` — reads transactions, visits, face_identities and
  face_detections; writes transaction_visit_links, visits_without_transaction and
  pos_customer_map (snapshot over every day <= D).

Datasets (all ``<lake>/<dataset>/shop_id=<s>/date=<YYYY-MM-DD>/part.parquet``; shop_id and date
are hive keys only, never columns in the files) and their schema constants:

customer_ledger — LEDGER_SCHEMA. Append-only per-shop ledger; partition = contribution day.
    customer_id, role (customer|vip|blocked), person_key, created (this day created the
    customer), created_day, created_from_track, ambiguous_with, track_id, embedding_id, camera,
    ts_utc, quality, embedding Array(Float32,128) (null for VIP/blocked sighting rows and after
    retention). Biometric: never expose to BI.
customer_registry — CUSTOMER_REGISTRY_SCHEMA. Snapshot of day D, from ledger rows of days <= D.
    customer_id, role, person_key, first_seen, last_seen, n_days_seen, created_day,
    created_from_track, ambiguous_with, n_exemplars, exemplar_ids List(Utf8), exemplar_days
    List(Date), exemplars List(Array(Float32,128)) (biometric: marts should drop the last three).
face_identities — FACE_IDENTITIES_SCHEMA. One row per face track of the day.
    track_id, camera, start_utc, end_utc, n_detections, n_embeddings, person_id (day-person),
    customer_id (null for staff/unidentified), person_key (known people), role
    (customer|staff|vip|blocked|unidentified), decision, distance, confidence, ambiguous.
recognition_results — RECOGNITION_RESULTS_SCHEMA. Per track, why it got its identity.
    track_id, camera, start_utc, end_utc, n_embeddings, person_id, n_person_tracks, best_match,
    best_distance, track_distance, second_match, second_distance, known_match, known_distance,
    decision (matched|new|ambiguous|known:<role>|unidentified), ambiguous, reused, customer_id,
    person_key, role.
visits — VISITS_SCHEMA. visit_id, customer_id (null for staff), person_key, role, entry_utc,
    exit_utc, entry_local, exit_local (shop tz, naive), duration_s, cameras (comma list),
    n_tracks, n_faces, n_embeddings, confidence, ambiguous. Staff visits are included (role
    staff, customer_id null): count customers with ``customer_id IS NOT NULL`` / role <> 'staff'.
    entry/exit are the first/last time the face was seen.
alerts — ALERTS_SCHEMA. alert_id, camera, ts_utc, person_key, role (vip|blocked), visit_id,
    confidence (shop_id is the hive key).
transaction_visit_links — TRANSACTION_VISIT_LINKS_SCHEMA. One row per POS transaction of the
    day: transaction_id, timestamp_utc, visit_id, customer_id, person_key, role,
    pos_customer_id, link_confidence, n_candidates, seen_gap_s, reason (null when linked).
visits_without_transaction — VISITS_WITHOUT_TRANSACTION_SCHEMA. visit_id, customer_id,
    person_key, role, entry_utc, exit_utc, duration_s (paying roles only).
pos_customer_map — POS_CUSTOMER_MAP_SCHEMA. Snapshot over links of days <= D: pos_customer_id,
    customer_id, n_links, n_pos_links, share, mean_link_confidence, first_date, last_date.
privacy_audit — PRIVACY_AUDIT_SCHEMA, one file ``<lake>/privacy_audit/part.parquet`` (see privacy).

Asset checks the lead can call: `visit_problems(visits)` (exit >= entry, no overlapping visits
per person, unique ids) and `registry_stability_problems(config, shop_id, day)` (every id of the
previous snapshot is still there with the same first_seen).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date

import polars as pl

from watershop_dagster import lake
from watershop_dagster.config import WatershopConfig
from watershop_dagster.identity.known_people import KNOWN_PEOPLE_SCHEMA, load_known_people
from watershop_dagster.identity.linking import (
    DEFAULT_TOLERANCE_S,
    LINKS_DATASET,
    POS_CUSTOMER_MAP_SCHEMA,
    POS_MAP_DATASET,
    TRANSACTION_VISIT_LINKS_SCHEMA,
    UNLINKED_VISITS_DATASET,
    VISITS_WITHOUT_TRANSACTION_SCHEMA,
    link_transactions_to_visits,
    pos_customer_map,
    visits_without_transaction,
)
from watershop_dagster.identity.privacy import PRIVACY_AUDIT_SCHEMA, apply_retention, forget_customer, id_salt
from watershop_dagster.identity.registry import (
    CUSTOMER_REGISTRY_SCHEMA,
    FACE_IDENTITIES_SCHEMA,
    IDENTITIES_DATASET,
    LEDGER_DATASET,
    LEDGER_SCHEMA,
    RECOGNITION_DATASET,
    RECOGNITION_RESULTS_SCHEMA,
    REGISTRY_DATASET,
    assign_identities,
    dated_partitions,
    previous_assignments,
    read_camera_day,
    read_dated,
    read_ledger,
    registry_snapshot,
    shop_lock,
    write_dataset_day,
)
from watershop_dagster.identity.visits import (
    ALERTS_DATASET,
    ALERTS_SCHEMA,
    VISITS_DATASET,
    VISITS_SCHEMA,
    segment_visits,
    track_end_boxes,
    visit_alerts,
    visit_problems,
    visit_tracks,
)
from watershop_dagster.vision.pipeline import FACE_DETECTIONS_SCHEMA, FACE_EMBEDDINGS_SCHEMA, FACE_TRACKS_SCHEMA

TRANSACTIONS_DATASET = "transactions"
#: tracks whose best face quality is below this are not identified (false detections, blurs)
MIN_TRACK_QUALITY = 0.0

DATASET_SCHEMAS: dict[str, pl.Schema] = {
    LEDGER_DATASET: LEDGER_SCHEMA,
    REGISTRY_DATASET: CUSTOMER_REGISTRY_SCHEMA,
    IDENTITIES_DATASET: FACE_IDENTITIES_SCHEMA,
    RECOGNITION_DATASET: RECOGNITION_RESULTS_SCHEMA,
    VISITS_DATASET: VISITS_SCHEMA,
    ALERTS_DATASET: ALERTS_SCHEMA,
    LINKS_DATASET: TRANSACTION_VISIT_LINKS_SCHEMA,
    UNLINKED_VISITS_DATASET: VISITS_WITHOUT_TRANSACTION_SCHEMA,
    POS_MAP_DATASET: POS_CUSTOMER_MAP_SCHEMA,
}

__all__ = [
    "ALERTS_SCHEMA", "CUSTOMER_REGISTRY_SCHEMA", "DATASET_SCHEMAS", "FACE_IDENTITIES_SCHEMA", "KNOWN_PEOPLE_SCHEMA",
    "LEDGER_SCHEMA", "POS_CUSTOMER_MAP_SCHEMA", "PRIVACY_AUDIT_SCHEMA", "RECOGNITION_RESULTS_SCHEMA",
    "TRANSACTION_VISIT_LINKS_SCHEMA", "VISITS_SCHEMA", "VISITS_WITHOUT_TRANSACTION_SCHEMA",
    "RegistryBuild", "VisitsBuild", "LinkBuild", "build_customer_registry", "build_visits", "link_transactions",
    "forget_customer", "apply_retention", "visit_problems", "registry_stability_problems", "read_day",
]


def read_day(config: WatershopConfig, dataset: str, shop_id: str, day: date) -> pl.DataFrame:
    """One of this module's per-day datasets (empty with its schema when never written)."""
    schema = DATASET_SCHEMAS[dataset]
    frame = lake.read_partition(config.lake_root, dataset, schema=schema, shop_id=shop_id, date=day.isoformat())
    missing = [pl.lit(None, dtype).alias(name) for name, dtype in schema.items() if name not in frame.columns]
    return frame.with_columns(missing).select(list(schema)).cast(dict(schema))


def _write(config: WatershopConfig, frame: pl.DataFrame, dataset: str, shop_id: str, day: date) -> None:
    schema = DATASET_SCHEMAS[dataset]
    write_dataset_day(frame.select(list(schema)).cast(dict(schema)), config.lake_root, dataset, shop_id, day)


# --------------------------------------------------------------------------------------------
# registry


@dataclass
class RegistryBuild:
    shop_id: str
    day: date
    tracks: int = 0
    people: int = 0  # day-persons (clusters)
    customers_seen: int = 0
    new_customers: int = 0
    matched_customers: int = 0
    ambiguous: int = 0  # day-persons decided 'ambiguous' (new customer, not merged)
    known: dict[str, int] = field(default_factory=dict)  # role -> day-persons
    unidentified_tracks: int = 0
    registry_size: int = 0  # customers in the day's snapshot
    ledger_rows: int = 0
    refreshed_snapshots: list[str] = field(default_factory=list)
    known_photo_problems: list[tuple[str, str]] = field(default_factory=list)

    def metadata(self) -> dict:
        out = asdict(self)
        out["day"] = self.day.isoformat()
        out["known"] = dict(self.known)
        out["known_photo_problems"] = [f"{p}: {r}" for p, r in self.known_photo_problems][:50]
        return out


def build_customer_registry(
    config: WatershopConfig,
    shop_id: str,
    day: date,
    *,
    known: pl.DataFrame | None = None,
    reassign: bool = False,
    refresh_later: bool = True,
    min_track_quality: float = MIN_TRACK_QUALITY,
) -> RegistryBuild:
    """Identify the day's faces; write customer_ledger, face_identities, recognition_results and
    customer_registry (see the module docstring).

    Re-running a day keeps every id it gave before (unless `reassign`: then the day's people are
    matched afresh; other days' ids are never touched). `known`: known people (default: the
    config's known_people folder).
    """
    config.shop(shop_id)
    root = config.lake_root
    result = RegistryBuild(shop_id, day)
    problems: list[tuple[str, str]] = []
    if known is None:
        known = load_known_people(config, report=problems)
    result.known_photo_problems = problems
    embeddings = read_camera_day(root, "face_embeddings", shop_id, day, FACE_EMBEDDINGS_SCHEMA)
    tracks = read_camera_day(root, "face_tracks", shop_id, day, FACE_TRACKS_SCHEMA)
    with shop_lock(config.warehouse_dir, shop_id):
        salt = id_salt(config, shop_id)
        ledger = read_ledger(root, shop_id)
        other = ledger.filter(pl.col("date") != day)
        previous_rows = ledger.filter(pl.col("date") == day).drop("date")
        previous = {}
        if not reassign:
            previous = previous_assignments(read_day(config, IDENTITIES_DATASET, shop_id, day), previous_rows)
        out = assign_identities(
            shop_id, day, embeddings, tracks, known, other.drop("date"), config.thresholds,
            salt=salt, previous=previous, previous_ledger=None if reassign else previous_rows,
            min_track_quality=min_track_quality,
        )
        _write(config, out.ledger_rows, LEDGER_DATASET, shop_id, day)
        _write(config, out.identities, IDENTITIES_DATASET, shop_id, day)
        _write(config, out.recognition, RECOGNITION_DATASET, shop_id, day)
        ledger = pl.concat([other, out.ledger_rows.with_columns(pl.lit(day).alias("date"))])
        snapshot = registry_snapshot(ledger, day)
        _write(config, snapshot, REGISTRY_DATASET, shop_id, day)
        unchanged = previous_rows.sort("customer_id", "embedding_id", "track_id").equals(
            out.ledger_rows.sort("customer_id", "embedding_id", "track_id")
        )
        if refresh_later and not unchanged:
            # later snapshots hold rows of this day: recompute the customers this day touched
            touched = sorted(set(previous_rows["customer_id"].to_list()) | set(out.ledger_rows["customer_id"].to_list()))
            touched_rows = ledger.filter(pl.col("customer_id").is_in(touched))
            for later, _path in dated_partitions(root, REGISTRY_DATASET, shop_id):
                if later > day:
                    kept = read_day(config, REGISTRY_DATASET, shop_id, later).filter(~pl.col("customer_id").is_in(touched))
                    fresh = registry_snapshot(touched_rows, later)
                    merged = pl.concat([kept, fresh]).sort("first_seen", "customer_id")
                    _write(config, merged, REGISTRY_DATASET, shop_id, later)
                    result.refreshed_snapshots.append(later.isoformat())

    rec = out.recognition
    people = rec.filter(pl.col("person_id").is_not_null()).unique("person_id")
    result.tracks = rec.height
    result.people = people.height
    result.unidentified_tracks = rec.filter(pl.col("decision") == "unidentified").height
    result.new_customers = people.filter(pl.col("decision") == "new").select("customer_id").n_unique() \
        if people.height else 0
    result.ambiguous = people.filter(pl.col("decision") == "ambiguous").height
    result.matched_customers = people.filter(pl.col("decision") == "matched").select("customer_id").n_unique() \
        if people.height else 0
    result.customers_seen = people.filter(pl.col("role") == "customer")["customer_id"].n_unique()
    for role in sorted(set(people.filter(pl.col("decision").str.starts_with("known:"))["role"].to_list())):
        result.known[role] = people.filter(pl.col("role") == role).height
    result.registry_size = snapshot.height
    result.ledger_rows = out.ledger_rows.height
    return result


def registry_stability_problems(config: WatershopConfig, shop_id: str, day: date) -> list[str]:
    """Every customer of the latest snapshot before `day` must be in the day's snapshot with the
    same first_seen (ids are never renumbered or lost, except by erasure or retention)."""
    earlier = [d for d, _ in dated_partitions(config.lake_root, REGISTRY_DATASET, shop_id) if d < day]
    if not earlier:
        return []
    before = read_day(config, REGISTRY_DATASET, shop_id, earlier[-1]).select("customer_id", "first_seen")
    now = read_day(config, REGISTRY_DATASET, shop_id, day).select("customer_id", "first_seen")
    problems = []
    missing = before.join(now, on="customer_id", how="anti")
    if missing.height:
        problems.append(f"{missing.height} customers of {earlier[-1]} missing on {day}: {missing['customer_id'].head(10).to_list()}")
    changed = before.join(now, on="customer_id").filter(pl.col("first_seen") != pl.col("first_seen_right"))
    if changed.height:
        problems.append(f"{changed.height} customers changed first_seen between {earlier[-1]} and {day}")
    return problems


# --------------------------------------------------------------------------------------------
# visits


@dataclass
class VisitsBuild:
    shop_id: str
    day: date
    visits: int = 0
    customer_visits: int = 0
    staff_visits: int = 0
    customers: int = 0
    alerts: int = 0
    mean_duration_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    def metadata(self) -> dict:
        out = asdict(self)
        out["day"] = self.day.isoformat()
        return out


def build_visits(config: WatershopConfig, shop_id: str, day: date) -> VisitsBuild:
    """Segment the day's identified tracks into visits; write visits and alerts."""
    shop = config.shop(shop_id)
    detections = read_camera_day(config.lake_root, "face_detections", shop_id, day, FACE_DETECTIONS_SCHEMA)
    with shop_lock(config.warehouse_dir, shop_id):
        identities = read_day(config, IDENTITIES_DATASET, shop_id, day)
        visits = segment_visits(identities, config.thresholds, shop.tz, shop_id, track_end_boxes(detections))
        alerts = visit_alerts(visits, visit_tracks(visits, identities))
        _write(config, visits, VISITS_DATASET, shop_id, day)
        _write(config, alerts, ALERTS_DATASET, shop_id, day)
    paying = visits.filter(pl.col("customer_id").is_not_null())
    return VisitsBuild(
        shop_id, day,
        visits=visits.height,
        customer_visits=paying.height,
        staff_visits=visits.filter(pl.col("role") == "staff").height,
        customers=paying["customer_id"].n_unique(),
        alerts=alerts.height,
        mean_duration_s=round(float(paying["duration_s"].mean() or 0.0), 1),
        problems=visit_problems(visits),
    )


# --------------------------------------------------------------------------------------------
# transaction links


@dataclass
class LinkBuild:
    shop_id: str
    day: date
    transactions: int = 0
    linked: int = 0
    unlinked: int = 0
    unlinked_reasons: dict[str, int] = field(default_factory=dict)
    visits_without_transaction: int = 0
    pos_customers_mapped: int = 0
    mean_link_confidence: float = 0.0

    def metadata(self) -> dict:
        out = asdict(self)
        out["day"] = self.day.isoformat()
        return out


def visit_sightings(visits: pl.DataFrame, identities: pl.DataFrame, detections: pl.DataFrame) -> pl.DataFrame:
    """(visit_id, ts_utc) of every face detection of each visit's person inside the visit's span."""
    tracks = visit_tracks(visits, identities)
    if tracks.is_empty() or detections.is_empty():
        return pl.DataFrame(schema={"visit_id": pl.Utf8, "ts_utc": FACE_DETECTIONS_SCHEMA["ts_utc"]})
    spans = visits.select("visit_id", "entry_utc", "exit_utc")
    return (
        detections.select("track_id", "ts_utc")
        .join(tracks.select("visit_id", "track_id"), on="track_id")
        .join(spans, on="visit_id")
        .filter(pl.col("ts_utc").is_between(pl.col("entry_utc"), pl.col("exit_utc")))
        .select("visit_id", "ts_utc")
    )


def link_transactions(
    config: WatershopConfig, shop_id: str, day: date, *, tolerance_s: float = DEFAULT_TOLERANCE_S
) -> LinkBuild:
    """Link the day's POS transactions to visits; write transaction_visit_links,
    visits_without_transaction and pos_customer_map."""
    from watershop_dagster.pos.ingest import TRANSACTIONS_SCHEMA

    config.shop(shop_id)
    root = config.lake_root
    transactions = lake.read_partition(root, TRANSACTIONS_DATASET, schema=TRANSACTIONS_SCHEMA,
                                       shop_id=shop_id, date=day.isoformat())
    detections = read_camera_day(root, "face_detections", shop_id, day, FACE_DETECTIONS_SCHEMA)
    with shop_lock(config.warehouse_dir, shop_id):
        visits = read_day(config, VISITS_DATASET, shop_id, day)
        identities = read_day(config, IDENTITIES_DATASET, shop_id, day)
        sightings = visit_sightings(visits, identities, detections)
        links = link_transactions_to_visits(transactions, visits, sightings, tolerance_s=tolerance_s)
        lonely = visits_without_transaction(visits, links)
        _write(config, links, LINKS_DATASET, shop_id, day)
        _write(config, lonely, UNLINKED_VISITS_DATASET, shop_id, day)
        history = read_dated(root, LINKS_DATASET, shop_id, TRANSACTION_VISIT_LINKS_SCHEMA, upto=day)
        mapping = pos_customer_map(history)
        _write(config, mapping, POS_MAP_DATASET, shop_id, day)
    linked = links.filter(pl.col("visit_id").is_not_null())
    reasons = links.filter(pl.col("reason").is_not_null()).group_by("reason").len()
    return LinkBuild(
        shop_id, day,
        transactions=links.height,
        linked=linked.height,
        unlinked=links.height - linked.height,
        unlinked_reasons={r: int(n) for r, n in reasons.iter_rows()},
        visits_without_transaction=lonely.height,
        pos_customers_mapped=mapping.height,
        mean_link_confidence=round(float(linked["link_confidence"].mean() or 0.0), 3),
    )
