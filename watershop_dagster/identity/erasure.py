"""Crash-safe, resumable, verified erasure of one customer of one shop (`watershop forget`).

Erasure rewrites dozens of files, and the rows that say whose tracks and visits were whose
(identities, ledger, visits) are among them: killed half way, a plain re-run could no longer find
the embeddings of tracks whose identity rows were already gone. So the plan comes first:

1. **plan**: everything to erase is collected — the customer id, their known-person key (a VIP or
   blocked person) and the Frigate sub_labels naming it, their track, visit, detection and
   embedding ids, the Frigate landing files naming them, their known-person folder —
   and written to the journal ``<lake>/state/erasure/<shop>/<digest>.json`` (atomically, fsync'd,
   folder fsync'd; the file name is a digest, not the id) before anything is touched;
2. **steps**, each idempotent and marked done in the journal (same durable write) when finished,
   so a re-run after a kill redoes at most the step it was killed in: one step per catalog dataset
   with personal data (`catalog.PersonalData`: rows dropped, or scrubbed where they are business
   records), face crops, Frigate landing lines (the sub_label naming them nulled in the payload: the
   tracked person stays, anonymous), their
   known-person folder (else the next run re-creates them from the reference photos), the privacy
   audit row (appended once per erasure id; from then on new ids use the new salt), the marts
   rebuilt from the lake;
3. **verify**: `verify_erased` scans the shop's partitions of every catalog dataset with personal
   data (the alert delivery log among them), the face crops, the Frigate landing, the known people
   and the served marts for any id of the journal. A trace left fails the erasure loudly (`ErasureIncomplete`): the
   journal stays with every step reopened, so the next `forget` runs them all again. Clean: the
   journal, which itself lists the erased ids, is deleted; the audit row is the lasting record.

`forget_customer` resumes the customer's unfinished journal; `finish_pending_erasures` (run by
`watershop run` before any run) finishes every one; while one is unfinished the identity build of
its shop refuses to run (`privacy.refuse_if_erasure_pending`).

Shelf stills (`falling_object_stills`) show a shelf region only and falling-object events name
nobody: no step. A running `frigate listen` keeps today's landing file open for appends: stop it
while erasing someone whose messages land today.

Test hook: with ``WATERSHOP_ERASURE_KILL_AFTER=N`` the process SIGKILLs itself right after its N-th
journal write (the plan is the first), a real kill at a step boundary.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import operator
import os
import secrets
import shutil
import signal
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from watershop_dagster import catalog, lake
from watershop_dagster.atomic import atomic_write_text, fsync_dir
from watershop_dagster.catalog import Dataset
from watershop_dagster.config import WatershopConfig
from watershop_dagster.frigate.events import sub_label_people
from watershop_dagster.frigate.landing import SUFFIX, encode_line
from watershop_dagster.identity.merges import merge_group
from watershop_dagster.identity.privacy import (
    ERASURE_JOURNALS,
    KIND_FORGET,
    append_audit,
    drop_rows,
    erasure_journals,
    read_audit,
    rewrite,
    shop_parts,
    subject_hash,
)
from watershop_dagster.locks import alert_log_lock, identity_lock
from watershop_dagster.warehouse import rebuild_marts

KILL_AFTER_ENV = "WATERSHOP_ERASURE_KILL_AFTER"
_journal_writes = itertools.count(1)

STEP_CROPS = "face_crops"
STEP_LANDING = "frigate_landing"
STEP_KNOWN_PERSON = "known_person"
STEP_AUDIT = "audit"
STEP_MARTS = "marts"


class ErasureIncomplete(RuntimeError):
    """Verification found traces of the erased customer; `traces` says where (never the ids)."""

    def __init__(self, traces: list[str]):
        super().__init__("erasure incomplete, traces remain in: " + "; ".join(traces))
        self.traces = traces


@dataclass
class ErasureReport:
    erasure_id: str
    shop_id: str
    counts: dict[str, int] = field(default_factory=dict)  # dataset -> rows removed (or scrubbed)
    files_removed: int = 0
    marts_rebuilt: bool = False
    resumed_after: int | None = None  # steps an earlier, interrupted attempt had done
    # Frigate sub_labels watershop.yaml still maps to the person: the config is the user's to edit
    configured_sub_labels: tuple[str, ...] = ()

    @property
    def rows_removed(self) -> int:
        return sum(self.counts.values())

    @property
    def found(self) -> bool:
        return self.rows_removed > 0 or self.files_removed > 0


# --------------------------------------------------------------------------------------------
# who is erased: the subject and the rows that are theirs


@dataclass(frozen=True)
class Subject:
    """The person being erased: customer id, known-person key, and the tracks and visits that were theirs."""

    customer_id: str
    person_key: str | None
    merged_ids: frozenset[str]  # the other ids of the same person (customer_merges), erased with it
    tracks: frozenset[str]
    visits: frozenset[str]

    def rows(self, frame: pl.DataFrame, match_on: tuple[str, ...]) -> pl.Expr | None:
        """Which rows of `frame` are theirs (None: it has none of the `match_on` columns)."""
        tests = {
            "customer_id": lambda: pl.col("customer_id").is_in(self.customer_ids),
            "track_id": lambda: pl.col("track_id").is_in(sorted(self.tracks)),
            "visit_id": lambda: pl.col("visit_id").is_in(sorted(self.visits)),
            "identity": lambda: pl.col("identity").is_in(self.names),  # behaviour rows: customer id or known key
            "person_key": lambda: pl.col("person_key") == self.person_key,
        }
        hits = [tests[column]() for column in match_on
                if column in tests and column in frame.columns and self.could_match(column)]
        return functools.reduce(operator.or_, hits).fill_null(False) if hits else None

    @property
    def names(self) -> list[str]:
        """What names them: their customer id and, for a known person, their key."""
        return sorted({*self.customer_ids, self.person_key} - {None})

    @property
    def customer_ids(self) -> list[str]:
        return sorted({self.customer_id, *self.merged_ids})

    def could_match(self, column: str) -> bool:
        known = {"customer_id": True, "identity": True, "track_id": bool(self.tracks),
                 "visit_id": bool(self.visits), "person_key": self.person_key is not None}
        return known.get(column, False)


def personal_datasets() -> list[Dataset]:
    """Catalog datasets in Parquet that declare personal data, in catalog order."""
    return [d for d in catalog.DATASETS if d.personal is not None and d.schema is not None]


def _forget_rows(dataset: Dataset, subject: Subject) -> Callable[[pl.DataFrame], tuple[pl.DataFrame, int]]:
    """Transform removing (or scrubbing) the subject's rows and nulling references to them."""
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
                frame = frame.filter(~hit)
            changed += n
        for reference in personal.references:
            if reference.column not in frame.columns:
                continue
            named = pl.col(reference.column).is_in(subject.names).fill_null(False)
            if n := frame.filter(named).height:
                frame = frame.with_columns(
                    pl.when(named).then(None).otherwise(pl.col(column)).alias(column)
                    for column in (reference.column, *reference.dependents) if column in frame.columns
                )
                changed += n
        return frame, changed

    return transform


def _values(lake_root: Path, shop_id: str, datasets: Iterable[Dataset], key: str, wanted: Iterable[str],
            column: str) -> set[str]:
    """Non-null values of `column` in the shop's rows of `datasets` whose `key` is one of `wanted`."""
    wanted = sorted(set(wanted))
    found: set[str] = set()
    if not wanted:
        return found
    for dataset in datasets:
        for _day, path in shop_parts(lake_root, dataset, shop_id):
            frame = pl.read_parquet(path)
            if key in frame.columns and column in frame.columns:
                values = frame.filter(pl.col(key).is_in(wanted))[column].drop_nulls()
                found.update(values.explode(empty_as_null=False).drop_nulls().to_list() if values.dtype == pl.List(pl.Utf8)
                             else values.to_list())
    return found


# --------------------------------------------------------------------------------------------
# the journal


def journal_path(config: WatershopConfig, shop_id: str, customer_id: str) -> Path:
    digest = hashlib.sha256(f"{shop_id}|{customer_id}".encode()).hexdigest()[:24]
    return config.lake_root / ERASURE_JOURNALS / shop_id / f"{digest}.json"



def _save(path: Path, journal: dict) -> None:
    """Durably replace the journal (temp file fsync'd, renamed, folder fsync'd); then the test hook."""
    atomic_write_text(path, json.dumps(journal, indent=1, sort_keys=True))
    fsync_dir(path.parent)
    if os.environ.get(KILL_AFTER_ENV) == str(next(_journal_writes)):
        os.kill(os.getpid(), signal.SIGKILL)


def is_person_key(subject_id: str) -> bool:
    """A known person's key (`role/name`, e.g. staff/anita) rather than a customer id: staff have none."""
    return "/" in subject_id


def _plan(config: WatershopConfig, shop_id: str, customer_id: str) -> dict:
    """Everything the erasure will touch, found while all of it is still there. `customer_id` may be
    a known person's key: a staff member has no customer id, a VIP's is found from the key."""
    root = config.lake_root
    registry = (catalog.CUSTOMER_REGISTRY, catalog.CUSTOMER_LEDGER)
    if is_person_key(customer_id):
        person_key = customer_id
        group = sorted(_values(root, shop_id, registry, "person_key", [person_key], "customer_id"))
    else:
        group = sorted(merge_group(lake.read_days(root, catalog.CUSTOMER_MERGES, shop_id), customer_id))
        keys = _values(root, shop_id, registry, "customer_id", group, "person_key")
        person_key = min(keys) if keys else None
    by_key = [person_key] if person_key else []
    identity_sources = (catalog.FACE_IDENTITIES, catalog.RECOGNITION_RESULTS, catalog.CUSTOMER_LEDGER)
    tracks = (_values(root, shop_id, identity_sources, "customer_id", group, "track_id")
              | _values(root, shop_id, (catalog.FACE_IDENTITIES, catalog.KNOWN_PERSON_SIGHTINGS), "person_key",
                        by_key, "track_id"))
    visit_sources = (catalog.VISITS, catalog.VISITS_WITHOUT_TRANSACTION, catalog.TRANSACTION_VISIT_LINKS)
    visits = (_values(root, shop_id, visit_sources, "customer_id", group, "visit_id")
              | _values(root, shop_id, visit_sources, "person_key", by_key, "visit_id"))
    face_rows = (catalog.FACE_DETECTIONS, catalog.FACE_EMBEDDINGS)
    detections = _values(root, shop_id, face_rows, "track_id", tracks, "detection_id")
    embeddings = (_values(root, shop_id, (catalog.FACE_EMBEDDINGS,), "track_id", tracks, "embedding_id")
                  | _values(root, shop_id, (catalog.CUSTOMER_LEDGER,), "customer_id", group, "embedding_id")
                  | _values(root, shop_id, (catalog.CUSTOMER_REGISTRY,), "customer_id", group, "exemplar_ids"))
    labels = _labels(config, person_key)
    journal = {
        "erasure_id": uuid.uuid4().hex,
        "shop_id": shop_id,
        "customer_id": customer_id,
        "merged_ids": [cid for cid in group if cid != customer_id],
        "person_key": person_key,
        "sub_labels": sorted(labels),
        "tracks": sorted(tracks),
        "visits": sorted(visits),
        "detections": sorted(detections),
        "embeddings": sorted(embeddings),
        "landing_files": _relative(config, (p for p, n in _landing_hits(config, shop_id, labels) if n)),
        "known_person_dir": person_key if person_key and (config.known_people_dir / person_key).is_dir() else None,
        "planned_at": datetime.now(UTC).isoformat(),
        "steps": [*(f"dataset:{d.name}" for d in personal_datasets()), STEP_CROPS, STEP_LANDING,
                  STEP_KNOWN_PERSON, STEP_AUDIT, STEP_MARTS],
        "done": [],
        "counts": {},
        "files_removed": 0,
        "marts_rebuilt": False,
    }
    return journal


def _relative(config: WatershopConfig, paths: Iterable[Path]) -> list[str]:
    return sorted(str(p.relative_to(config.frigate_landing)) for p in paths)


def _subject(journal: dict) -> Subject:
    # journals planned before merges existed have no merged_ids
    return Subject(journal["customer_id"], journal["person_key"], frozenset(journal.get("merged_ids", [])),
                   frozenset(journal["tracks"]), frozenset(journal["visits"]))


def _needles(journal: dict) -> list[str]:
    """Every id of the journal: none of them may remain anywhere."""
    values = {journal["customer_id"], *journal.get("merged_ids", []), journal["person_key"], *journal["tracks"],
              *journal["visits"], *journal["detections"], *journal["embeddings"]}
    return sorted(values - {None})


# --------------------------------------------------------------------------------------------
# Frigate: landing lines naming the person, known-person folders


def _labels(config: WatershopConfig, person_key: str | None) -> set[str]:
    """Lower-cased Frigate sub_labels that name the known person."""
    if person_key is None:
        return set()
    people = sub_label_people(config.known_people_dir, config.frigate_sub_labels)
    return {label for label, key in people.items() if key == person_key}


def _label(value) -> str | None:
    if isinstance(value, (list, tuple)) and value:
        value = value[0]
    return value.lower() if isinstance(value, str) and value else None


def _unlabel(line: str, labels: set[str]) -> str | None:
    """The landing line with every sub_label naming the person nulled (None: it names nobody of them)."""
    try:
        entry = json.loads(line)
        message = json.loads(entry["payload"])
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(message, dict):
        return None
    bodies = [message, *(message.get(side) for side in ("before", "after"))]
    hit = False
    for body in bodies:
        if isinstance(body, dict) and _label(body.get("sub_label")) in labels:
            body["sub_label"] = None
            hit = True
    if not hit:
        return None
    return encode_line(entry.get("received_at"), entry.get("topic"), json.dumps(message)).decode().rstrip("\n")


def _landing_files(config: WatershopConfig, shop_id: str) -> Iterator[Path]:
    folder = config.frigate_landing / shop_id
    yield from sorted(folder.glob(f"*/*{SUFFIX}")) if folder.is_dir() else []


def _landing_hits(config: WatershopConfig, shop_id: str, labels: set[str]) -> Iterator[tuple[Path, int]]:
    """(landing file, lines naming the person) for every landing file of the shop."""
    for path in _landing_files(config, shop_id) if labels else []:
        yield path, sum(_unlabel(line, labels) is not None for line in path.read_text().splitlines())


def _rewrite_lines(path: Path, change: Callable[[str], str | None]) -> int:
    """Rewrite a line file atomically with `change` applied (None: keep the line; "": drop it)."""
    lines, changed = [], 0
    for line in path.read_text().splitlines():
        new = change(line)
        if new is not None:
            changed += 1
            if new:
                lines.append(new)
        else:
            lines.append(line)
    if changed:
        atomic_write_text(path, "".join(f"{line}\n" for line in lines))
    return changed


# --------------------------------------------------------------------------------------------
# the steps


def _run_step(config: WatershopConfig, journal: dict, step: str) -> None:
    """Do one step (idempotent), adding what it removed to the journal's counts."""
    shop_id, root, counts = journal["shop_id"], config.lake_root, journal["counts"]

    def count(name: str, n: int) -> None:
        if n:
            counts[name] = counts.get(name, 0) + n

    if step.startswith("dataset:"):
        dataset = catalog.dataset(step.removeprefix("dataset:"))
        subject = _subject(journal)
        if any(subject.could_match(column) for column in dataset.personal.match_on):
            # the alert layer rewrites its log under this lock (a running `frigate listen` too)
            guard = alert_log_lock(config.warehouse_dir, shop_id) if dataset is catalog.ALERT_DELIVERIES else nullcontext()
            with guard:
                for _day, path in shop_parts(root, dataset, shop_id):
                    count(dataset.name, rewrite(path, _forget_rows(dataset, subject)))
    elif step == STEP_CROPS:
        removed = _forget_crops(root, shop_id, set(journal["detections"]))
        count(catalog.FACE_CROPS.name, removed)
        journal["files_removed"] += removed
    elif step == STEP_LANDING:
        labels = set(journal["sub_labels"])
        for relative in journal["landing_files"]:
            path = config.frigate_landing / relative
            if path.exists():
                count("frigate_landing_lines", _rewrite_lines(path, lambda line: _unlabel(line, labels)))
    elif step == STEP_KNOWN_PERSON:
        folder = config.known_people_dir / journal["known_person_dir"] if journal["known_person_dir"] else None
        if folder is not None and folder.is_dir():
            photos = sum(1 for p in folder.rglob("*") if p.is_file())
            shutil.rmtree(folder)
            count("known_people_photos", photos)
            journal["files_removed"] += photos
    elif step == STEP_AUDIT:
        if journal["erasure_id"] not in set(read_audit(config)["erasure_id"].to_list()):
            salt = secrets.token_hex(16)
            files = journal["files_removed"]
            append_audit(config, {
                "erasure_id": journal["erasure_id"], "kind": KIND_FORGET, "shop_id": shop_id,
                "erased_at": datetime.now(UTC), "subject_hash": subject_hash(salt, shop_id, journal["customer_id"]),
                "hash_salt": salt, "rows_removed": sum(counts.values()) - counts.get(catalog.FACE_CROPS.name, 0)
                - counts.get("known_people_photos", 0), "files_removed": files,
                "counts_json": json.dumps(dict(sorted(counts.items()))), "detail": None,
            })
    elif step == STEP_MARTS:
        if config.build_db.exists():  # no build yet: no mart holds anybody
            rebuild_marts(config, shop_id)
            journal["marts_rebuilt"] = True
    else:
        raise ValueError(f"unknown erasure step {step!r}")


def _forget_crops(lake_root: Path, shop_id: str, detection_ids: set[str]) -> int:
    """Crop files named after the detections (and rows of Parquet files there) removed."""
    folder = lake.partition_dir(lake_root, catalog.FACE_CROPS.name, shop_id=shop_id)
    removed = 0
    for path in sorted(folder.rglob("*")) if folder.is_dir() and detection_ids else []:
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            if "detection_id" in pl.read_parquet_schema(path):
                removed += rewrite(path, drop_rows(pl.col("detection_id").is_in(sorted(detection_ids))))
        elif path.stem in detection_ids:
            path.unlink()
            removed += 1
    return removed


# --------------------------------------------------------------------------------------------
# verification


def verify_erased(config: WatershopConfig, journal: dict) -> list[str]:
    """Where any id of the journal remains (no ids in the answer): the shop's partitions of every
    personal dataset, face crops, Frigate landing lines, the known-person folder and
    every table of the served marts."""
    shop_id, needles = journal["shop_id"], _needles(journal)
    traces = []
    for dataset in personal_datasets():
        for _day, path in shop_parts(config.lake_root, dataset, shop_id):
            traces += [f"{path.relative_to(config.lake_root)}:{column} ({n} rows)"
                       for column, n in _mentions(pl.read_parquet(path), needles).items()]
    crops = lake.partition_dir(config.lake_root, catalog.FACE_CROPS.name, shop_id=shop_id)
    detections = set(journal["detections"])
    for path in sorted(crops.rglob("*")) if crops.is_dir() else []:
        if path.is_file() and (path.stem in detections
                               or (path.suffix == ".parquet" and _mentions(pl.read_parquet(path), needles))):
            traces.append(str(path.relative_to(config.lake_root)))
    labels = set(journal["sub_labels"]) | _labels(config, journal["person_key"])
    traces += [f"{path}: {n} lines with their sub_label" for path, n in _landing_hits(config, shop_id, labels) if n]
    if journal["person_key"] and (config.known_people_dir / journal["person_key"]).exists():
        traces.append(f"known people folder {config.known_people_dir / journal['person_key']}")
    traces += [f"served marts {config.marts_db.name}: {where}" for where in marts_mentions(config.marts_db, needles)]
    return traces


def _mentions(frame: pl.DataFrame, needles: list[str]) -> dict[str, int]:
    """Column -> rows whose (string or list-of-string) value is one of `needles`."""
    out = {}
    for column, dtype in frame.schema.items():
        if dtype == pl.Utf8:
            n = frame[column].is_in(needles).sum()
        elif dtype == pl.List(pl.Utf8):
            n = frame[column].list.eval(pl.element().is_in(needles)).list.any().fill_null(False).sum()
        else:
            continue
        if n:
            out[column] = int(n)
    return out


def marts_mentions(db: Path, needles: list[str]) -> list[str]:
    """`table.column (n rows)` of every text column of the DuckDB file holding one of `needles`."""
    if not db.exists() or not needles:
        return []
    found = []
    with duckdb.connect(str(db), read_only=True) as con:
        columns = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where data_type = 'VARCHAR' and table_catalog = current_database() order by all").fetchall()
        for schema, table, column in columns:
            n = con.execute(f'select count(*) from "{schema}"."{table}" where list_contains(?, "{column}")',
                            [needles]).fetchone()[0]
            if n:
                found.append(f"{schema}.{table}.{column} ({n} rows)")
    return found


# --------------------------------------------------------------------------------------------
# entry points


def forget_customer(config: WatershopConfig, shop_id: str, customer_id: str) -> ErasureReport:
    """Erase one customer of one shop everywhere (lake, landing, known people, marts), resuming an
    unfinished erasure of them; raises ErasureIncomplete when verification finds a trace."""
    config.shop(shop_id)
    path = journal_path(config, shop_id, customer_id)
    with identity_lock(config.warehouse_dir, shop_id):
        resumed_after = None
        if path.exists():
            journal = json.loads(path.read_text())
            resumed_after = len(journal["done"])
        else:
            journal = _plan(config, shop_id, customer_id)
            _save(path, journal)
        for step in journal["steps"]:
            if step in journal["done"]:
                continue
            _run_step(config, journal, step)
            journal["done"].append(step)
            _save(path, journal)
        traces = verify_erased(config, journal)
        if traces:
            journal["done"], journal["counts"], journal["files_removed"] = [], {}, 0  # all again next time
            _save(path, journal)
            raise ErasureIncomplete(traces)
        path.unlink()
        fsync_dir(path.parent)
    configured = tuple(sorted(label for label, key in config.frigate_sub_labels.items() if key == journal["person_key"]))
    return ErasureReport(journal["erasure_id"], shop_id, dict(journal["counts"]), journal["files_removed"],
                         journal["marts_rebuilt"], resumed_after, configured)


def finish_pending_erasures(config: WatershopConfig) -> list[ErasureReport]:
    """Finish every unfinished erasure of the workspace (before anything could re-create a person)."""
    reports = []
    for path in erasure_journals(config):
        journal = json.loads(path.read_text())
        reports.append(forget_customer(config, journal["shop_id"], journal["customer_id"]))
    return reports
