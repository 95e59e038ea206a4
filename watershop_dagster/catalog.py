"""The lake's datasets, each declared once: folder name, Parquet schema, partition keys, asset key,
retention class and where it holds personal data.

Everything that names a dataset takes it from here: the domain modules' schemas, the lake readers
and writers (`lake.read_dataset`, `lake.write_dataset`), the Dagster asset keys (tuples here; the
Dagster layer turns them into `dg.AssetKey`), retention and erasure (`identity.privacy` iterates
`DATASETS`), and the dbt sources (tests/test_catalog.py fails when _sources.yml disagrees). A new
dataset costs one entry.

Layout on disk: ``<lake>/<name>/<key>=<value>/.../part.parquet``, one file per partition, the
partition keys as hive folders only (never columns in the files). Dagster-free on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import polars as pl

from watershop_dagster.vision.faces import EMBEDDING_DIM
from watershop_dagster.vocabulary import REASON_ERASED
from watershop_dagster.zones import schemas as zone_schemas

TS = pl.Datetime("us", "UTC")
EMBEDDING = pl.Array(pl.Float32, EMBEDDING_DIM)

SHOP_DAY = ("shop_id", "date")
CAMERA_DAY = ("shop_id", "date", "camera")
ASSET_PREFIX = "lake"


class Retention:
    """Retention classes: which `config.retention` period applies (none: kept)."""

    EMBEDDINGS = "embeddings"  # biometric templates: retention.embeddings_days
    FACE_CROPS = "face_crops"  # face images: retention.face_crops_days
    QUARANTINE = "quarantine"  # rejected input: retention.quarantine_days
    KEPT = "kept"  # business and operational records


#: retention class -> the `config.retention` field holding its period in days
RETENTION_DAYS_FIELD = MappingProxyType({
    Retention.EMBEDDINGS: "embeddings_days",
    Retention.FACE_CROPS: "face_crops_days",
    Retention.QUARANTINE: "quarantine_days",
})


class Expiry:
    """What retention does to a dataset's data older than its period."""

    PARTITIONS = "partitions"  # delete the day's partition folders
    EMBEDDING_COLUMN = "embedding_column"  # null `embedding` in the day's rows (ledger)
    EXEMPLARS = "exemplars"  # drop exemplars seen before the cut-off from every snapshot


@dataclass(frozen=True)
class Reference:
    """A column naming another customer or known person (nulled on their erasure, with `dependents`)."""

    column: str
    dependents: tuple[str, ...] = ()


@dataclass(frozen=True)
class PersonalData:
    """How erasure finds one person's rows: `match_on` columns holding their customer_id,
    their track_ids or their visit_ids (or, for face crops, detection_ids).

    Matching rows are dropped, unless `scrub` is set: then they stay (a business record) with
    these columns overwritten (None: null). `references` name other customers."""

    match_on: tuple[str, ...]
    scrub: Mapping[str, object] | None = None
    references: tuple[Reference, ...] = ()


@dataclass(frozen=True)
class Dataset:
    name: str  # the lake folder
    schema: pl.Schema | None  # None: not Parquet (face crops are JPEG files)
    partition_keys: tuple[str, ...] = SHOP_DAY
    asset: bool = True  # a Dagster asset ["lake", name]
    retention: str = Retention.KEPT
    expiry: str = Expiry.PARTITIONS
    personal: PersonalData | None = None
    # A partition without rows is not written (an earlier file is removed): a quarantine holds rows
    # on few days, and a file per shop-day cost 20 shops' year 7,300 files to write and to read.
    sparse: bool = False

    @property
    def asset_key(self) -> tuple[str, ...] | None:
        return (ASSET_PREFIX, self.name) if self.asset else None


# --------------------------------------------------------------------------------------------
# POS


TRANSACTIONS = Dataset(
    "transactions",
    pl.Schema({
        "transaction_id": pl.Utf8,
        "timestamp_local": pl.Datetime("us"),
        "timestamp_utc": TS,
        "customer_id": pl.Utf8,  # the POS's own customer id, not a registry customer
        "payment_mode": pl.Utf8,  # vocabulary.PAYMENT_MODES
        "can_size": pl.Utf8,  # vocabulary.CAN_SIZES
        "number_of_cans": pl.Int32,
        "amount": pl.Float64,
        "payment_status": pl.Utf8,  # vocabulary.PAYMENT_STATUSES
        "source_file": pl.Utf8,
        "source_line": pl.Int32,
    }),
)
TRANSACTIONS_QUARANTINE = Dataset(
    "transactions_quarantine",
    pl.Schema({"source_file": pl.Utf8, "source_line": pl.Int32, "raw": pl.Utf8, "reason": pl.Utf8}),
    retention=Retention.QUARANTINE,
    sparse=True,
)

# --------------------------------------------------------------------------------------------
# supermarket POS: receipt lines per shop-day (the day is the hive folder: the local date of the
# line's `timestamp`), and the versioned category -> zone table per shop

RECEIPTS = Dataset(
    "receipts",
    pl.Schema({
        "receipt_id": pl.Utf8,
        "timestamp": pl.Datetime("us"),  # till's local wall-clock time (naive)
        "till": pl.Utf8,
        "customer_id": pl.Utf8,  # the POS's loyalty id, not a registry customer
        "payment_mode": pl.Utf8,
        "product_id": pl.Utf8,
        "product_name": pl.Utf8,
        "category": pl.Utf8,
        "quantity": pl.Float64,  # negative for refunds and voids
        "unit_price": pl.Float64,
        "discount": pl.Float64,
        "line_total": pl.Float64,
        "source_file": pl.Utf8,  # landing file (exports and pulled batches) relative to landing/receipts
        "source_line": pl.Int32,
    }),
)
RECEIPTS_QUARANTINE = Dataset(
    "receipts_quarantine",
    pl.Schema({"source_file": pl.Utf8, "source_line": pl.Int32, "raw": pl.Utf8, "reason": pl.Utf8}),
    retention=Retention.QUARANTINE,
    sparse=True,
)
CATEGORY_ZONES = Dataset(
    "category_zones",
    pl.Schema({
        "category": pl.Utf8,
        "zone": pl.Utf8,
        "valid_from": pl.Date,  # inclusive
        "valid_to": pl.Date,  # exclusive; null while still valid
    }),
    partition_keys=("shop_id",),  # the shop's whole versioned table, rewritten on every change
)

# --------------------------------------------------------------------------------------------
# vision: one partition per camera-day

_BY_TRACK = PersonalData(match_on=("track_id",))
#: the columns that place a face track, leading every per-track dataset
_TRACK_SPAN = {"track_id": pl.Utf8, "camera": pl.Utf8, "start_utc": TS, "end_utc": TS}

FOOTAGE_FILES = Dataset(
    "footage_files",
    pl.Schema({
        "camera": pl.Utf8,
        "path": pl.Utf8,
        "start_utc": TS,
        "layout": pl.Utf8,
        "status": pl.Utf8,  # processed | failed | quarantined
        "reason": pl.Utf8,
    }),
    CAMERA_DAY,
)
FOOTAGE_QUARANTINE = Dataset(
    "footage_quarantine",
    pl.Schema({"path": pl.Utf8, "camera": pl.Utf8, "reason": pl.Utf8}),
    CAMERA_DAY,
    retention=Retention.QUARANTINE,
    sparse=True,
)
FRAMES = Dataset(
    "frames",
    pl.Schema({
        "camera": pl.Utf8,
        "ts_utc": TS,
        "pts_s": pl.Float64,
        "motion_score": pl.Float64,
        "searched": pl.Boolean,
        "n_faces": pl.Int32,
    }),
    CAMERA_DAY,
)
FACE_DETECTIONS = Dataset(
    "face_detections",
    pl.Schema({
        "detection_id": pl.Utf8,
        "camera": pl.Utf8,
        "ts_utc": TS,
        "track_id": pl.Utf8,
        "top": pl.Int32,
        "right": pl.Int32,
        "bottom": pl.Int32,
        "left": pl.Int32,
        "det_score": pl.Float64,
        "quality": pl.Float64,
        "embedded": pl.Boolean,
    }),
    CAMERA_DAY,
    personal=_BY_TRACK,
)
FACE_TRACKS = Dataset(
    "face_tracks",
    pl.Schema({**_TRACK_SPAN, "n_detections": pl.Int32, "n_embeddings": pl.Int32, "best_quality": pl.Float64}),
    CAMERA_DAY,
    personal=_BY_TRACK,
)
FACE_EMBEDDINGS = Dataset(
    "face_embeddings",
    pl.Schema({
        "embedding_id": pl.Utf8,
        "track_id": pl.Utf8,
        "detection_id": pl.Utf8,
        "camera": pl.Utf8,
        "ts_utc": TS,
        "quality": pl.Float64,
        "embedding": EMBEDDING,
    }),
    CAMERA_DAY,
    retention=Retention.EMBEDDINGS,
    personal=_BY_TRACK,
)
FACE_CROPS = Dataset(
    "face_crops",
    None,  # <detection_id>.jpg files, only when vision.store_face_crops is on
    CAMERA_DAY,
    asset=False,
    retention=Retention.FACE_CROPS,
    personal=PersonalData(match_on=("detection_id",)),
)

# --------------------------------------------------------------------------------------------
# identity: one partition per shop-day

#: a customer's own rows, and other customers created as ambiguous with them
_CUSTOMER_ROWS = PersonalData(match_on=("customer_id",), references=(Reference("ambiguous_with"),))
#: who a visit was and when, leading every per-visit dataset
_VISIT = {
    "visit_id": pl.Utf8,
    "customer_id": pl.Utf8,  # null for staff
    "person_key": pl.Utf8,  # role/name of a known person, else null
    "role": pl.Utf8,  # customer | staff | vip | blocked
    "entry_utc": TS,
    "exit_utc": TS,
}

CUSTOMER_LEDGER = Dataset(
    "customer_ledger",
    pl.Schema({
        "customer_id": pl.Utf8,
        "role": pl.Utf8,  # customer | vip | blocked
        "person_key": pl.Utf8,  # role/name for known people, else null
        "created": pl.Boolean,  # this day created the customer
        "created_day": pl.Date,  # day whose build created the customer (null for known people)
        "created_from_track": pl.Utf8,
        "ambiguous_with": pl.Utf8,  # created by an ambiguous decision: the candidate it was not merged with
        "track_id": pl.Utf8,
        "embedding_id": pl.Utf8,
        "camera": pl.Utf8,
        "ts_utc": TS,
        "quality": pl.Float64,
        "embedding": EMBEDDING,  # null for known people's sighting rows and after retention
    }),
    retention=Retention.EMBEDDINGS,
    expiry=Expiry.EMBEDDING_COLUMN,
    personal=_CUSTOMER_ROWS,
)
CUSTOMER_REGISTRY = Dataset(
    "customer_registry",
    pl.Schema({
        "customer_id": pl.Utf8,
        "role": pl.Utf8,
        "person_key": pl.Utf8,
        "first_seen": pl.Date,
        "last_seen": pl.Date,
        "n_days_seen": pl.Int32,
        "created_day": pl.Date,
        "created_from_track": pl.Utf8,
        "ambiguous_with": pl.Utf8,
        "n_exemplars": pl.Int32,
        "exemplar_ids": pl.List(pl.Utf8),  # embedding_id of each exemplar
        "exemplar_days": pl.List(pl.Date),  # day each exemplar was seen (retention drops old ones)
        "exemplars": pl.List(EMBEDDING),
    }),
    retention=Retention.EMBEDDINGS,
    expiry=Expiry.EXEMPLARS,
    personal=_CUSTOMER_ROWS,
)
CUSTOMER_MERGES = Dataset(
    "customer_merges",
    pl.Schema({
        "customer_id": pl.Utf8,  # the newer id, merged away: readers map it to surviving_id
        "surviving_id": pl.Utf8,  # the older id, which stays
        "first_seen": pl.Date,  # the merged id's first day: marts are rebuilt from there
        "linkage": pl.Float64,  # the two ids' face distance that decided (identity.merges.linkage)
        "runner_up": pl.Float64,  # the nearest other customer's linkage to either (null: none)
        "n_exemplars": pl.Int32,  # exemplars of the merged id compared
        "n_exemplars_surviving": pl.Int32,
    }),
    # partition = the day whose build decided the merge; readers take every partition <= their day
    personal=PersonalData(match_on=("customer_id",)),  # erasure expands the subject to the whole merge group
)
KNOWN_PERSON_SIGHTINGS = Dataset(
    "known_person_sightings",
    pl.Schema({
        "person_key": pl.Utf8,  # role/name of the known person confirmed
        "role": pl.Utf8,
        "track_id": pl.Utf8,
        "embedding_id": pl.Utf8,
        "camera": pl.Utf8,
        "ts_utc": TS,
        "quality": pl.Float64,
        "distance": pl.Float64,  # the day-person's distance to the person's exemplars that confirmed it
        "embedding": EMBEDDING,
    }),
    retention=Retention.EMBEDDINGS,
    personal=PersonalData(match_on=("person_key", "track_id")),
)
FACE_IDENTITIES = Dataset(
    "face_identities",
    pl.Schema({
        **_TRACK_SPAN,
        "n_detections": pl.Int32,
        "n_embeddings": pl.Int32,
        "person_id": pl.Utf8,  # the day-person (cluster of tracks) this track belongs to
        "customer_id": pl.Utf8,  # null for staff and unidentified tracks
        "person_key": pl.Utf8,  # role/name of a known person, else null
        "role": pl.Utf8,  # customer | staff | vip | blocked | unidentified
        "decision": pl.Utf8,
        "distance": pl.Float64,  # day-person's distance to the assigned identity (null for new)
        "confidence": pl.Float64,
        "ambiguous": pl.Boolean,
    }),
    personal=PersonalData(match_on=("customer_id", "track_id")),
)
RECOGNITION_RESULTS = Dataset(
    "recognition_results",
    pl.Schema({
        **_TRACK_SPAN,
        "n_embeddings": pl.Int32,
        "person_id": pl.Utf8,
        "n_person_tracks": pl.Int32,
        "best_match": pl.Utf8,  # nearest registry customer (other days' exemplars)
        "best_distance": pl.Float64,  # day-person level
        "track_distance": pl.Float64,  # this track's own distance to best_match
        "second_match": pl.Utf8,
        "second_distance": pl.Float64,
        "known_match": pl.Utf8,  # nearest known person (person_key)
        "known_distance": pl.Float64,
        "decision": pl.Utf8,  # matched | new | ambiguous | known:<role> | unidentified
        "ambiguous": pl.Boolean,  # a distance that decided lies within the margin of the threshold
        "reused": pl.Boolean,  # identity kept from an earlier build of this day
        "customer_id": pl.Utf8,
        "person_key": pl.Utf8,
        "role": pl.Utf8,
    }),
    personal=PersonalData(
        match_on=("customer_id", "track_id"),
        references=(Reference("best_match", ("best_distance", "track_distance")),
                    Reference("second_match", ("second_distance",)),
                    Reference("known_match", ("known_distance",))),
    ),
)
VISITS = Dataset(
    "visits",
    pl.Schema({
        **_VISIT,
        "entry_local": pl.Datetime("us"),  # shop time zone, naive
        "exit_local": pl.Datetime("us"),
        "duration_s": pl.Float64,
        "cameras": pl.Utf8,  # comma-separated, sorted
        "n_tracks": pl.Int32,
        "n_faces": pl.Int32,  # face detections
        "n_embeddings": pl.Int32,
        "confidence": pl.Float64,
        "ambiguous": pl.Boolean,  # some track's identity was near the match threshold
    }),
    personal=PersonalData(match_on=("customer_id", "visit_id")),  # visit_id: a staff member's visits have no customer id
)
ALERTS = Dataset(
    "alerts",
    pl.Schema({
        "alert_id": pl.Utf8,
        "camera": pl.Utf8,  # camera of the visit's first face
        "ts_utc": TS,  # entry time of the visit
        "person_key": pl.Utf8,
        "role": pl.Utf8,  # vip | blocked
        "visit_id": pl.Utf8,
        "confidence": pl.Float64,
    }),
    personal=PersonalData(match_on=("visit_id",)),
)
TRANSACTION_VISIT_LINKS = Dataset(
    "transaction_visit_links",
    pl.Schema({
        "transaction_id": pl.Utf8,
        "timestamp_utc": TS,
        "visit_id": pl.Utf8,  # null when unlinked
        "customer_id": pl.Utf8,  # registry customer of the visit (null when unlinked)
        "person_key": pl.Utf8,  # known person (VIP/blocked) of the visit, else null
        "role": pl.Utf8,
        "pos_customer_id": pl.Utf8,  # the POS export's customer id, kept as is
        "link_confidence": pl.Float64,  # 0 when unlinked
        "n_candidates": pl.Int32,
        "seen_gap_s": pl.Float64,  # seconds between the payment and the nearest face of the person
        "reason": pl.Utf8,  # why it is unlinked; null when linked
    }),
    # the transaction is a business record: it stays, unlinked, when its person is erased
    personal=PersonalData(
        match_on=("customer_id", "visit_id"),
        scrub=MappingProxyType({"visit_id": None, "customer_id": None, "person_key": None, "role": None,
                                "seen_gap_s": None, "link_confidence": 0.0, "reason": REASON_ERASED}),
    ),
)
VISITS_WITHOUT_TRANSACTION = Dataset(
    "visits_without_transaction",
    pl.Schema({**_VISIT, "duration_s": pl.Float64}),
    personal=PersonalData(match_on=("customer_id", "visit_id")),
)
POS_CUSTOMER_MAP = Dataset(
    "pos_customer_map",
    pl.Schema({
        "pos_customer_id": pl.Utf8,
        "customer_id": pl.Utf8,
        "n_links": pl.Int32,  # links of this pos id to this customer
        "n_pos_links": pl.Int32,  # all links of this pos id
        "share": pl.Float64,
        "mean_link_confidence": pl.Float64,
        "first_date": pl.Date,
        "last_date": pl.Date,
    }),
    personal=PersonalData(match_on=("customer_id",)),
)
PRIVACY_AUDIT = Dataset(
    "privacy_audit",
    pl.Schema({
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
    }),
    partition_keys=(),  # one file: <lake>/privacy_audit/part.parquet
    asset=False,
)

# --------------------------------------------------------------------------------------------
# supermarket behaviour: people without faces, zones (camera-day partitions). Each row says where
# it came from: `source` is "watershop" (our people tracker on the recordings) or "frigate" (Frigate's
# events). An erased customer's rows stay as anonymous business records, their identity nulled.

SOURCE_WATERSHOP = "watershop"
SOURCE_FRIGATE = "frigate"
_BY_IDENTITY = PersonalData(match_on=("identity",), scrub={"identity": None})


def _behaviour(name: str, columns: Mapping[str, pl.DataType]) -> Dataset:
    return Dataset(name, pl.Schema({**columns, "source": pl.Utf8}), CAMERA_DAY, personal=_BY_IDENTITY)


PERSON_TRACKS = _behaviour("person_tracks", zone_schemas.PERSON_TRACKS)
ZONE_VISITS = _behaviour("zone_visits", zone_schemas.ZONE_VISITS)
LOITERING_EVENTS = _behaviour("loitering_events", zone_schemas.LOITERING_EVENTS)
FOOTFALL = _behaviour("footfall", zone_schemas.FOOTFALL)
ZONE_OCCUPANCY = Dataset("zone_occupancy", pl.Schema({**zone_schemas.ZONE_OCCUPANCY, "source": pl.Utf8}), CAMERA_DAY)
ZONE_TRANSITIONS = Dataset("zone_transitions", pl.Schema({**zone_schemas.ZONE_TRANSITIONS, "source": pl.Utf8}),
                           CAMERA_DAY)
HEATMAP_CELLS = Dataset("heatmap_cells", pl.Schema({**zone_schemas.HEATMAP_CELLS, "source": pl.Utf8}), CAMERA_DAY)
PERSON_OBSERVATIONS_QUARANTINE = Dataset(
    "person_observations_quarantine", pl.Schema({**zone_schemas.PERSON_OBSERVATIONS_REJECTED, "source": pl.Utf8}),
    CAMERA_DAY, retention=Retention.QUARANTINE, personal=_BY_IDENTITY,
)
FRIGATE_MESSAGES_QUARANTINE = Dataset(
    "frigate_messages_quarantine",
    pl.Schema({
        "camera": pl.Utf8,  # the landing file's camera (_unrouted: the message names no configured camera)
        "source_file": pl.Utf8,  # the landing file, relative to the Frigate landing folder
        "source_line": pl.Int32,
        "received_at": TS,
        "topic": pl.Utf8,
        "payload": pl.Utf8,  # the message as received
        "reason": pl.Utf8,
    }),
    CAMERA_DAY,  # messages naming no configured camera: camera=_unrouted
    retention=Retention.QUARANTINE,
    sparse=True,
)
#: the person tracks of a camera-day as the people tracker left them (no identities, no zones), written by
#: the vision step of a camera that tracks people: faces and people share its one decode of each file, and
#: the behaviour step reads them instead of decoding the footage again. Not an asset: an intermediate.
PERSON_OBSERVATIONS = Dataset("person_observations", pl.Schema(zone_schemas.PERSON_OBSERVATIONS), CAMERA_DAY,
                              asset=False)
#: the behaviour outputs of one camera-day, in the order they are written
BEHAVIOUR_OUTPUTS = (PERSON_TRACKS, ZONE_VISITS, LOITERING_EVENTS, FOOTFALL, ZONE_OCCUPANCY, ZONE_TRANSITIONS,
                     HEATMAP_CELLS, PERSON_OBSERVATIONS_QUARANTINE)

# --------------------------------------------------------------------------------------------
# shelves: items falling in `kind: shelf` zones (camera-day partitions; no personal data: the
# stills, off by default, show only the shelf region)

_FALLING_OBJECT = {
    "event_id": pl.Utf8,  # stable: the same fall found twice has one id (the camera is the partition's)
    "zone": pl.Utf8,
    "release_utc": TS,  # the fitted parabola's vertex: when the item left its place
    "landing_utc": TS,  # first frame at the bottom of the fall (or the last one in the zone)
    "drop_height_px": pl.Float64,  # frame pixels
    "blob_area_px": pl.Float64,  # frame pixels²
    "confidence": pl.Float64,
    "landed": pl.Boolean,  # stopped inside the zone (false: fell out of it)
    "x_px": pl.Float64,  # where it landed, frame pixels
    "y_px": pl.Float64,
    "source_path": pl.Utf8,  # footage file, relative to the footage root
    "still": pl.Utf8,  # JPEG of the shelf region, relative to the lake (only with shelf.store_stills)
}
FALLING_OBJECT_EVENTS = Dataset("falling_object_events", pl.Schema(_FALLING_OBJECT), CAMERA_DAY)
#: one footage file's falls, kept per file so the near-live run's work is reused by the camera-day run
FALLING_OBJECT_SEGMENTS = Dataset("falling_object_segments", pl.Schema(_FALLING_OBJECT),
                                  (*CAMERA_DAY, "segment"), asset=False)
FALLING_OBJECT_FILES = Dataset(
    "falling_object_files",
    pl.Schema({
        "camera": pl.Utf8,
        "path": pl.Utf8,
        "start_utc": TS,
        "status": pl.Utf8,  # processed | reused | quarantined
        "reason": pl.Utf8,
        "n_events": pl.Int32,
        "footage_s": pl.Float64,
    }),
    CAMERA_DAY,
)
FALLING_OBJECT_STILLS = Dataset("falling_object_stills", None, CAMERA_DAY, asset=False)  # <event_id>.jpg

# --------------------------------------------------------------------------------------------
# alerts of every source (Frigate live, recordings after each run, shelf segments near-live)

ALERT_DELIVERIES = Dataset(
    "alert_deliveries",
    pl.Schema({
        "alert_id": pl.Utf8,  # stable: the same event evaluated twice gives the same id
        "source": pl.Utf8,  # frigate | recordings | shelf
        "rule": pl.Utf8,
        "kind": pl.Utf8,  # known_person | loitering | falling_object
        "camera": pl.Utf8,
        "event_id": pl.Utf8,  # Frigate's tracked object, the visit, the loitering track or the fall
        "zone": pl.Utf8,
        "subject": pl.Utf8,  # what the cooldown counts per rule: the person, else the track or shelf zone
        "person_key": pl.Utf8,  # known person (role/name), else null
        "role": pl.Utf8,
        "ts": TS,  # when it happened
        "triggered_at": TS,  # when the alert was raised
        "cooldown_s": pl.Float64,
        "detail_json": pl.Utf8,  # producer-specific fields of the payload (drop height, confidence, ...)
        "channel": pl.Utf8,  # webhook | mqtt | email | log (no channel configured)
        "status": pl.Utf8,  # delivered | failed (retried at next_attempt_at) | given_up | not_configured
        "attempts": pl.Int32,
        "last_attempt_at": TS,
        "next_attempt_at": TS,  # null unless failed
        "error": pl.Utf8,
    }),
    SHOP_DAY,  # the shop's local day of `ts`; one row per alert and channel, updated in place
    asset=False,
    personal=PersonalData(match_on=("person_key",)),  # an alert about a known person names them
)

DATASETS: tuple[Dataset, ...] = (
    TRANSACTIONS, TRANSACTIONS_QUARANTINE, RECEIPTS, RECEIPTS_QUARANTINE, CATEGORY_ZONES,
    FOOTAGE_FILES, FOOTAGE_QUARANTINE, FRAMES, FACE_DETECTIONS, FACE_TRACKS, FACE_EMBEDDINGS, FACE_CROPS,
    CUSTOMER_LEDGER, CUSTOMER_REGISTRY, CUSTOMER_MERGES, KNOWN_PERSON_SIGHTINGS, FACE_IDENTITIES, RECOGNITION_RESULTS, VISITS, ALERTS,
    TRANSACTION_VISIT_LINKS, VISITS_WITHOUT_TRANSACTION, POS_CUSTOMER_MAP, PRIVACY_AUDIT,
    PERSON_OBSERVATIONS, *BEHAVIOUR_OUTPUTS, FRIGATE_MESSAGES_QUARANTINE,
    FALLING_OBJECT_EVENTS, FALLING_OBJECT_SEGMENTS, FALLING_OBJECT_FILES, FALLING_OBJECT_STILLS,
    ALERT_DELIVERIES,
)
BY_NAME: Mapping[str, Dataset] = MappingProxyType({d.name: d for d in DATASETS})
#: the per-camera vision outputs, in the order the pipeline writes them
CAMERA_OUTPUTS = (FRAMES, FACE_DETECTIONS, FACE_TRACKS, FACE_EMBEDDINGS)


def dataset(name_or_dataset: str | Dataset) -> Dataset:
    """The catalog entry of a dataset name (a Dataset is returned as is)."""
    if isinstance(name_or_dataset, Dataset):
        return name_or_dataset
    try:
        return BY_NAME[name_or_dataset]
    except KeyError:
        raise KeyError(f"no dataset {name_or_dataset!r} in the catalog") from None
