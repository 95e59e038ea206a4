"""Falls of one footage file (a Frigate segment or a plain file) and of one camera-day, written to the lake.

Each file's falls are kept in `falling_object_segments` under a key made of the file's start and a
digest of its path, size and modification time, so the near-live run of a segment and the daily
camera-day run share the work: whichever comes second reads the stored result. A file that
changed gets a new key (and its old result is dropped). Events carry a stable id (shop, camera,
zone, release time to 0.1 s), so a segment processed twice gives one event.

Bad files (unreadable, truncated, corrupt) are quarantined with the reason in
`falling_object_files` and never cached, so a repaired file is taken next time.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from watershop_dagster import catalog, lake
from watershop_dagster.atomic import atomic_write_bytes
from watershop_dagster.config import ShopConfig, WatershopConfig
from watershop_dagster.shelf.scan import detect_falls_in_file, shelf_zones
from watershop_dagster.shelf.settings import FallTuning
from watershop_dagster.vision.decode import FootageDecodeError
from watershop_dagster.vision.footage import FootageFile, discover_footage, probe_footage
from watershop_dagster.vision.layout import FRIGATE_DIR, parse_frigate_path

PROCESSED, REUSED, QUARANTINED = "processed", "reused", "quarantined"
#: a file starting this long before another can be the one just before it (Frigate: 60 s segments)
MAX_SEGMENT = timedelta(minutes=2)
EVENTS_SCHEMA = catalog.FALLING_OBJECT_EVENTS.schema
FILES_SCHEMA = catalog.FALLING_OBJECT_FILES.schema


@dataclass
class FileOutcome:
    footage: FootageFile
    status: str  # processed | reused | quarantined
    events: pl.DataFrame
    reason: str | None = None
    footage_s: float = 0.0


@dataclass
class ShelfPartition:
    events: pl.DataFrame
    files: pl.DataFrame

    def count(self, status: str) -> int:
        return self.files.filter(pl.col("status") == status).height


def shelf_cameras(shop: ShopConfig) -> list[str]:
    """The shop's cameras with at least one `kind: shelf` zone."""
    return [camera for camera in shop.cameras if shelf_zones(shop.zones(camera))]


def event_id(shop_id: str, camera: str, zone: str, release_utc) -> str:
    tenths = round(release_utc.timestamp() * 10)
    return hashlib.sha1(f"{shop_id}|{camera}|{zone}|{tenths}".encode()).hexdigest()[:16]


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def segment_key(footage: FootageFile, root: Path) -> str:
    """`<start>-<digest of path, size, mtime>`: a changed file is a new segment."""
    stat = footage.path.stat()
    digest = hashlib.sha1(f"{_relative(footage.path, root)}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:10]
    return f"{footage.start_utc:%Y%m%dT%H%M%SZ}-{digest}"


def _local_day(footage: FootageFile, shop: ShopConfig) -> date:
    return footage.start_utc.astimezone(shop.tz).date()


def falls_in_file(config: WatershopConfig, shop: ShopConfig, footage: FootageFile, previous: FootageFile | None,
                  tuning: FallTuning = FallTuning()) -> FileOutcome:  # fmt: skip
    """The file's falls: stored ones when this exact file was done before, else detected (warmed up
    on the tail of `previous`, the file just before it) and stored."""
    root, lake_root = config.footage_root, config.lake_root
    day, camera = _local_day(footage, shop), footage.camera
    keys = {"shop_id": shop.id, "date": day, "camera": camera}
    try:
        key = segment_key(footage, root)
    except OSError as exc:
        return FileOutcome(footage, QUARANTINED, pl.DataFrame(schema=EVENTS_SCHEMA), f"unreadable: {exc}")
    if lake.partition_file(lake_root, catalog.FALLING_OBJECT_SEGMENTS.name, **_str(keys), segment=key).exists():
        events = lake.read_dataset(lake_root, catalog.FALLING_OBJECT_SEGMENTS, **keys, segment=key)
        return FileOutcome(footage, REUSED, events)
    reason = probe_footage(footage)
    if reason:
        return FileOutcome(footage, QUARANTINED, pl.DataFrame(schema=EVENTS_SCHEMA), reason)
    try:
        found = detect_falls_in_file(footage.path, shop.zones(camera), config.shelf, tuning,
                                     previous=previous.path if previous else None)
    except FootageDecodeError as exc:
        return FileOutcome(footage, QUARANTINED, pl.DataFrame(schema=EVENTS_SCHEMA), f"decode failed: {exc.message}")
    rows = []
    for index, event in enumerate(found.events):
        release = footage.start_utc + timedelta(seconds=event.release_s)
        eid = event_id(shop.id, camera, event.zone, release)
        still = None
        if index in found.stills:
            folder = lake.partition_dir(lake_root, catalog.FALLING_OBJECT_STILLS.name, **_str(keys))
            atomic_write_bytes(folder / f"{eid}.jpg", found.stills[index])
            still = _relative(folder / f"{eid}.jpg", lake_root)
        rows.append((eid, event.zone, release, footage.start_utc + timedelta(seconds=event.landing_s),
                     event.drop_height_px, event.blob_area_px, event.confidence, event.landed, event.x_px,
                     event.y_px, _relative(footage.path, root), still))
    events = pl.DataFrame(rows, schema=EVENTS_SCHEMA, orient="row")
    _drop_stale_segments(lake_root, keys, key)
    lake.write_dataset(events, lake_root, catalog.FALLING_OBJECT_SEGMENTS, **keys, segment=key)
    return FileOutcome(footage, PROCESSED, events, footage_s=found.footage_s)


def _str(keys: dict) -> dict:
    return {name: value.isoformat() if isinstance(value, date) else value for name, value in keys.items()}


def _drop_stale_segments(lake_root: Path, keys: dict, key: str) -> None:
    """Results of earlier versions of the same file (same start, other digest)."""
    folder = lake.partition_dir(lake_root, catalog.FALLING_OBJECT_SEGMENTS.name, **_str(keys))
    start = key.split("-")[0]
    for stale in folder.glob(f"segment={start}-*") if folder.is_dir() else []:
        if stale.name != f"segment={key}":
            shutil.rmtree(stale, ignore_errors=True)


def previous_file(footage: FootageFile, candidates: list[FootageFile]) -> FootageFile | None:
    """The camera's file that ends where `footage` starts (started at most MAX_SEGMENT before it)."""
    earlier = [f for f in candidates if f.camera == footage.camera
               and footage.start_utc - MAX_SEGMENT <= f.start_utc < footage.start_utc]
    return max(earlier, key=lambda f: f.start_utc) if earlier else None


def neighbours(config: WatershopConfig, shop: ShopConfig, footage: FootageFile) -> list[FootageFile]:
    """The camera's files around a segment's start (its local day and the day before)."""
    day = _local_day(footage, shop)
    files = []
    for d in (day - timedelta(days=1), day):
        files += discover_footage(config.footage_root, shop, d, [footage.camera])[0]
    return files


def frigate_footage(config: WatershopConfig, shop: ShopConfig, path: Path) -> FootageFile:
    """A Frigate segment's FootageFile from its path; ValueError when the path carries no time."""
    path = Path(path)
    parts = path.parts
    if FRIGATE_DIR not in parts:
        raise ValueError(f"{path} is not under a {FRIGATE_DIR}/ folder")
    i = len(parts) - 1 - parts[::-1].index(FRIGATE_DIR)
    camera, start = parse_frigate_path(Path(*parts[i + 1:]))
    if camera not in shop.cameras:
        raise ValueError(f"camera {camera!r} is not one of shop {shop.id!r}'s")
    return FootageFile(path=path, camera=camera, start_utc=start, layout="frigate")


def process_shelf_camera_day(config: WatershopConfig, shop_id: str, camera: str, day: date) -> ShelfPartition:
    """Falls of the camera's day (stored segment results reused); writes events and the per-file record."""
    shop = config.shop(shop_id)
    outcomes: list[FileOutcome] = []
    bad_rows = []
    if shelf_zones(shop.zones(camera)) and config.footage_root.exists():
        found, bad = discover_footage(config.footage_root, shop, day, [camera])
        # the day's first file warms up on the day before's last, as the near-live path does: a fall
        # released just before midnight is told by the file it lands in, seen whole in that pre-roll
        yesterday = discover_footage(config.footage_root, shop, day - timedelta(days=1), [camera])[0]
        outcomes = [falls_in_file(config, shop, footage, previous_file(footage, found[:i] if i else yesterday))
                    for i, footage in enumerate(found)]
        bad_rows = [(camera, _relative(b.path, config.footage_root), None, QUARANTINED, b.reason, 0, 0.0) for b in bad]
    frames = [outcome.events for outcome in outcomes if outcome.events.height]
    events = (pl.concat(frames).unique("event_id", keep="first").sort("release_utc", "event_id") if frames
              else pl.DataFrame(schema=EVENTS_SCHEMA))
    rows = [(camera, _relative(o.footage.path, config.footage_root), o.footage.start_utc, o.status, o.reason,
             o.events.height, o.footage_s) for o in outcomes] + bad_rows
    files = pl.DataFrame(rows, schema=FILES_SCHEMA, orient="row").sort("path")
    keys = {"shop_id": shop_id, "date": day, "camera": camera}
    lake.write_dataset(events, config.lake_root, catalog.FALLING_OBJECT_EVENTS, **keys)
    lake.write_dataset(files, config.lake_root, catalog.FALLING_OBJECT_FILES, **keys)
    return ShelfPartition(events, files)
