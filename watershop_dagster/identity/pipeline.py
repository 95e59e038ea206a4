"""Entry points the Dagster assets call, one shop-day each: registry → visits → transaction links.

Each reads the lake partitions it needs, holds the shop's identity lock
(``<warehouse>/locks/identity-<shop>.lock``) while it reads shared state and writes, writes every
output partition atomically (re-running a partition is idempotent) and returns a small dataclass
whose `metadata()` suits a MaterializeResult.

* `build_customer_registry(config, shop_id, day)` — reads face_embeddings + face_tracks (all
  cameras) and known_people photos; writes customer_ledger (the day's contribution),
  customer_merges, face_identities, recognition_results and customer_registry (snapshot of the
  day; snapshots of LATER days already written are refreshed too, so an out-of-order backfill
  leaves them consistent).
* `build_visits(config, shop_id, day)` — reads face_identities; writes visits and alerts.
* `link_transactions(config, shop_id, day)` — reads transactions, visits, face_identities and
  face_detections; writes transaction_visit_links, visits_without_transaction and
  pos_customer_map (snapshot over every day <= D).

Datasets (declared, with their columns, in `watershop_dagster.catalog`; all
``<lake>/<dataset>/shop_id=<s>/date=<YYYY-MM-DD>/part.parquet``, shop_id and date are hive keys
only, never columns in the files):

customer_ledger — append-only per-shop ledger; partition = contribution day. Biometric: never
    expose to BI.
customer_registry — snapshot of day D, from ledger rows of days <= D (biometric: marts should drop
    exemplar_ids, exemplar_days and exemplars). Ids are read through customer_merges: a merged id
    has no row of its own, its exemplars count for the id it merged into.
known_person_sightings — faces of known people clearly seen that day, which they are matched with
    on other days (identity.sightings; capped per person). Biometric.
customer_merges — the merges the day's build decided (identity.merges); readers map ids through
    every partition. The lake's other identity datasets keep the ids as decided on their day.
face_identities — one row per face track of the day.
recognition_results — per track, why it got its identity.
visits — staff visits are included (role staff, customer_id null): count customers with
    ``customer_id IS NOT NULL`` / role <> 'staff'. entry/exit are the first/last time the face
    was seen.
alerts — one row per visit of a VIP or blocked person.
transaction_visit_links — one row per POS transaction of the day.
visits_without_transaction — paying roles' visits no transaction was linked to.
pos_customer_map — snapshot over links of days <= D.
privacy_audit — one file ``<lake>/privacy_audit/part.parquet`` (see privacy).

Asset checks the lead can call: `visit_problems(visits)` (exit >= entry, no overlapping visits
per person, unique ids) and `registry_stability_problems(config, shop_id, day)` (every id of the
previous snapshot is still there with the same first_seen).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date

import polars as pl

from watershop_dagster import catalog, lake
from watershop_dagster.config import WatershopConfig
from watershop_dagster.identity.known_people import enrolment_report, load_known_people
from watershop_dagster.identity.ledger import previous_assignments, read_ledger
from watershop_dagster.identity.linking import (
    DEFAULT_TOLERANCE_S,
    link_transactions_to_visits,
    pos_customer_map,
    visits_without_transaction,
)
from watershop_dagster.identity.merges import apply_survivors, find_merges, ledger_as_survivors, survivor_map
from watershop_dagster.identity.privacy import id_salt, refuse_if_erasure_pending
from watershop_dagster.identity.registry import assign_identities, registry_snapshot
from watershop_dagster.identity.sightings import with_learned
from watershop_dagster.identity.visits import (
    segment_visits,
    visit_alerts,
    visit_problems,
    visit_tracks,
)
from watershop_dagster.locks import identity_lock
from watershop_dagster.vocabulary import Role, Verdict

#: tracks whose best face quality is below this are not identified (false detections, blurs)
MIN_TRACK_QUALITY = 0.0


def _read(config: WatershopConfig, dataset: catalog.Dataset, shop_id: str, day: date) -> pl.DataFrame:
    """The shop-day's rows of a dataset (every camera of a per-camera one)."""
    return lake.read_dataset(config.lake_root, dataset, shop_id=shop_id, date=day)


def _write(config: WatershopConfig, frame: pl.DataFrame, dataset: catalog.Dataset, shop_id: str, day: date) -> None:
    lake.write_dataset(frame, config.lake_root, dataset, shop_id=shop_id, date=day)


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
    merges: int = 0  # customer ids the day's evidence merged into older ones (customer_merges)
    learned_faces: int = 0  # faces of clearly seen known people kept to match them by (known_person_sightings)
    known: dict[str, int] = field(default_factory=dict)  # role -> day-persons
    unidentified_tracks: int = 0
    registry_size: int = 0  # customers in the day's snapshot
    ledger_rows: int = 0
    refreshed_snapshots: list[str] = field(default_factory=list)
    known_photo_problems: list[tuple[str, str]] = field(default_factory=list)
    known_enrolment: list[dict] = field(default_factory=list)  # enrolment_report rows: photos, spread, nearest other

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
    embeddings = _read(config, catalog.FACE_EMBEDDINGS, shop_id, day)
    tracks = _read(config, catalog.FACE_TRACKS, shop_id, day)
    with identity_lock(config.warehouse_dir, shop_id):
        refuse_if_erasure_pending(config, shop_id)
        salt = id_salt(config, shop_id)
        other_merges = lake.read_days(root, catalog.CUSTOMER_MERGES, shop_id, exclude=day).drop("date")
        # every id is read as its surviving id: merged customers are one candidate, one snapshot row
        ledger = ledger_as_survivors(read_ledger(root, shop_id), survivor_map(other_merges))
        other = ledger.filter(pl.col("date") != day)
        previous_rows = ledger.filter(pl.col("date") == day).drop("date")
        previous = {}
        if not reassign:
            previous = previous_assignments(_read(config, catalog.FACE_IDENTITIES, shop_id, day), previous_rows)
        learned = lake.read_days(root, catalog.KNOWN_PERSON_SIGHTINGS, shop_id, exclude=day).drop("date")
        out = assign_identities(
            shop_id, day, embeddings, tracks, known, other.drop("date"), config.thresholds,
            salt=salt, previous=previous, previous_ledger=None if reassign else previous_rows,
            min_track_quality=min_track_quality, sightings=learned,
        )
        _write(config, out.sightings, catalog.KNOWN_PERSON_SIGHTINGS, shop_id, day)
        result.learned_faces = out.sightings.height
        result.known_enrolment = enrolment_report(with_learned(known, learned),
                                                  config.thresholds.face_match_distance).to_dicts()
        _write(config, out.ledger_rows, catalog.CUSTOMER_LEDGER, shop_id, day)
        _write(config, out.identities, catalog.FACE_IDENTITIES, shop_id, day)
        _write(config, out.recognition, catalog.RECOGNITION_RESULTS, shop_id, day)
        ledger = pl.concat([other, out.ledger_rows.with_columns(pl.lit(day).alias("date"))])
        day_merges = find_merges(ledger, day, config.thresholds)
        _write(config, day_merges, catalog.CUSTOMER_MERGES, shop_id, day)
        result.merges = day_merges.height
        ledger = ledger_as_survivors(ledger, survivor_map(pl.concat([other_merges, day_merges])))
        snapshot = registry_snapshot(ledger, day)
        _write(config, snapshot, catalog.CUSTOMER_REGISTRY, shop_id, day)
        unchanged = previous_rows.sort("customer_id", "embedding_id", "track_id").equals(
            out.ledger_rows.sort("customer_id", "embedding_id", "track_id")
        )
        if refresh_later and not unchanged:
            # later snapshots hold rows of this day: recompute the customers this day touched
            touched = sorted(set(previous_rows["customer_id"].to_list()) | set(out.ledger_rows["customer_id"].to_list()))
            touched_rows = ledger.filter(pl.col("customer_id").is_in(touched))
            for later, _folder in lake.dated_partitions(root, catalog.CUSTOMER_REGISTRY, shop_id):
                if later > day:
                    kept = _read(config, catalog.CUSTOMER_REGISTRY, shop_id, later).filter(
                        ~pl.col("customer_id").is_in(touched))
                    fresh = registry_snapshot(touched_rows, later)
                    merged = pl.concat([kept, fresh]).sort("first_seen", "customer_id")
                    _write(config, merged, catalog.CUSTOMER_REGISTRY, shop_id, later)
                    result.refreshed_snapshots.append(later.isoformat())

    rec = out.recognition
    people = rec.filter(pl.col("person_id").is_not_null()).unique("person_id")
    result.tracks = rec.height
    result.people = people.height
    result.unidentified_tracks = rec.filter(pl.col("decision") == Verdict.UNIDENTIFIED).height
    result.new_customers = people.filter(pl.col("decision") == Verdict.NEW).select("customer_id").n_unique() \
        if people.height else 0
    result.ambiguous = people.filter(pl.col("decision") == Verdict.AMBIGUOUS).height
    result.matched_customers = people.filter(pl.col("decision") == Verdict.MATCHED).select("customer_id").n_unique() \
        if people.height else 0
    result.customers_seen = people.filter(pl.col("role") == Role.CUSTOMER)["customer_id"].n_unique()
    for role in sorted(set(people.filter(pl.col("decision").str.starts_with(Verdict.KNOWN_PREFIX))["role"].to_list())):
        result.known[role] = people.filter(pl.col("role") == role).height
    result.registry_size = snapshot.height
    result.ledger_rows = out.ledger_rows.height
    return result


def registry_stability_problems(config: WatershopConfig, shop_id: str, day: date) -> list[str]:
    """Every customer of the latest snapshot before `day` must be in the day's snapshot with the
    same first_seen (ids are never renumbered or lost, except by erasure or retention)."""
    earlier = [d for d, _ in lake.dated_partitions(config.lake_root, catalog.CUSTOMER_REGISTRY, shop_id) if d < day]
    if not earlier:
        return []
    before = _read(config, catalog.CUSTOMER_REGISTRY, shop_id, earlier[-1]).select("customer_id", "first_seen")
    now = _read(config, catalog.CUSTOMER_REGISTRY, shop_id, day).select("customer_id", "first_seen")
    problems = []
    # an id merged into another (customer_merges) leaves the registry: its survivor stays
    survivors = survivor_map(lake.read_days(config.lake_root, catalog.CUSTOMER_MERGES, shop_id, upto=day))
    missing = before.join(now, on="customer_id", how="anti").filter(
        ~pl.col("customer_id").replace(survivors).is_in(now["customer_id"].to_list()))
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
    with identity_lock(config.warehouse_dir, shop_id):
        refuse_if_erasure_pending(config, shop_id)
        identities = _read(config, catalog.FACE_IDENTITIES, shop_id, day)
        visits = segment_visits(identities, config.thresholds, shop.tz, shop_id)
        alerts = visit_alerts(visits, visit_tracks(visits, identities))
        _write(config, visits, catalog.VISITS, shop_id, day)
        _write(config, alerts, catalog.ALERTS, shop_id, day)
    paying = visits.filter(pl.col("customer_id").is_not_null())
    return VisitsBuild(
        shop_id, day,
        visits=visits.height,
        customer_visits=paying.height,
        staff_visits=visits.filter(pl.col("role") == Role.STAFF).height,
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
        return pl.DataFrame(schema={"visit_id": pl.Utf8, "ts_utc": catalog.FACE_DETECTIONS.schema["ts_utc"]})
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
    config.shop(shop_id)
    transactions = _read(config, catalog.TRANSACTIONS, shop_id, day)
    detections = _read(config, catalog.FACE_DETECTIONS, shop_id, day)
    with identity_lock(config.warehouse_dir, shop_id):
        refuse_if_erasure_pending(config, shop_id)
        visits = _read(config, catalog.VISITS, shop_id, day)
        identities = _read(config, catalog.FACE_IDENTITIES, shop_id, day)
        sightings = visit_sightings(visits, identities, detections)
        links = link_transactions_to_visits(transactions, visits, sightings, tolerance_s=tolerance_s)
        lonely = visits_without_transaction(visits, links)
        _write(config, links, catalog.TRANSACTION_VISIT_LINKS, shop_id, day)
        _write(config, lonely, catalog.VISITS_WITHOUT_TRANSACTION, shop_id, day)
        history = lake.read_days(config.lake_root, catalog.TRANSACTION_VISIT_LINKS, shop_id, upto=day)
        # links made before a merge voted for the merged id: they count for its survivor
        survivors = survivor_map(lake.read_days(config.lake_root, catalog.CUSTOMER_MERGES, shop_id, upto=day))
        mapping = pos_customer_map(apply_survivors(history, survivors))
        _write(config, mapping, catalog.POS_CUSTOMER_MAP, shop_id, day)
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
