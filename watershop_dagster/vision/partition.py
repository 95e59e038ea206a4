"""One shop-day of footage through the vision pipeline, written to the lake.

Datasets (per shop-day; the per-frame/face ones also per camera):
  footage_files        every file of the day: camera, path, start_utc, layout, status, reason
  footage_quarantine   files skipped: path, camera (nullable), reason
  frames, face_detections, face_tracks, face_embeddings   see vision.pipeline's schemas
Face crops, only when `vision.store_face_crops` is on: <lake>/face_crops/shop_id=/date=/camera=/<id>.jpg.

A file is recorded `processed` only when its rows landed; a file that fails mid-decode leaves no rows
and is quarantined with the reason. Camera outputs are written before `footage_files`, each atomically.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from watershop_dagster import lake
from watershop_dagster.config import WatershopConfig
from watershop_dagster.vision.footage import discover_footage, probe_footage
from watershop_dagster.vision.pipeline import (
    FACE_DETECTIONS_SCHEMA,
    FACE_EMBEDDINGS_SCHEMA,
    FACE_TRACKS_SCHEMA,
    FRAMES_SCHEMA,
    VisionResult,
    process_footage,
)

CAMERA_DATASETS = {
    "frames": FRAMES_SCHEMA,
    "face_detections": FACE_DETECTIONS_SCHEMA,
    "face_tracks": FACE_TRACKS_SCHEMA,
    "face_embeddings": FACE_EMBEDDINGS_SCHEMA,
}
FOOTAGE_FILES_SCHEMA = {
    "camera": pl.Utf8,
    "path": pl.Utf8,
    "start_utc": pl.Datetime("us", "UTC"),
    "layout": pl.Utf8,
    "status": pl.Utf8,
    "reason": pl.Utf8,
}
FOOTAGE_QUARANTINE_SCHEMA = {"path": pl.Utf8, "camera": pl.Utf8, "reason": pl.Utf8}
CROPS_DATASET = "face_crops"


@dataclass
class VisionPartition:
    files: pl.DataFrame
    quarantine: pl.DataFrame
    per_camera: dict[str, VisionResult] = field(default_factory=dict)

    def count(self, dataset: str) -> int:
        return sum(getattr(result, dataset).height for result in self.per_camera.values())

    @property
    def footage_seconds(self) -> float:
        return sum(result.stats.get("footage_s", 0.0) for result in self.per_camera.values())


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def process_shop_day(config: WatershopConfig, shop_id: str, day: date, workers: int = 2) -> VisionPartition:
    """Discover, probe and process the shop-day's footage; write every dataset; return what landed."""
    shop = config.shop(shop_id)
    root = config.footage_root
    found, bad_paths = discover_footage(root, shop, day) if root.exists() else ([], [])
    quarantined = [(_relative(b.path, root), None, b.reason) for b in bad_paths]
    usable = []
    for footage in found:
        reason = probe_footage(footage)
        if reason:
            quarantined.append((_relative(footage.path, root), footage.camera, reason))
        else:
            usable.append(footage)

    result = VisionPartition(files=pl.DataFrame(schema=FOOTAGE_FILES_SCHEMA), quarantine=pl.DataFrame())
    failed: dict[str, str] = {}
    for camera in shop.cameras:
        files = [f for f in usable if f.camera == camera]
        outcome = process_footage(files, config.vision, workers, on_error="skip") if files else VisionResult.empty()
        for path, message in outcome.errors:
            failed[_relative(path, root)] = message
        result.per_camera[camera] = outcome
        _write_camera(config, shop_id, day, camera, outcome)
    _drop_stale_cameras(config, shop_id, day, set(shop.cameras))

    quarantined += [(path, next((f.camera for f in usable if _relative(f.path, root) == path), None), f"decode failed: {msg}")
                    for path, msg in failed.items()]
    result.quarantine = pl.DataFrame(quarantined, schema=FOOTAGE_QUARANTINE_SCHEMA, orient="row").sort("path", "reason")
    rows = [
        (f.camera, _relative(f.path, root), f.start_utc, f.layout,
         "failed" if _relative(f.path, root) in failed else "processed", failed.get(_relative(f.path, root)))
        for f in usable
    ]
    rows += [(camera, path, None, None, "quarantined", reason) for path, camera, reason in quarantined
             if path not in failed]
    result.files = pl.DataFrame(rows, schema=FOOTAGE_FILES_SCHEMA, orient="row").sort("path")
    keys = {"shop_id": shop_id, "date": day.isoformat()}
    lake.write_partition(result.quarantine, config.lake_root, "footage_quarantine", **keys)
    lake.write_partition(result.files, config.lake_root, "footage_files", **keys)
    return result


def _write_camera(config: WatershopConfig, shop_id: str, day: date, camera: str, outcome: VisionResult) -> None:
    keys = {"shop_id": shop_id, "date": day.isoformat(), "camera": camera}
    for dataset in CAMERA_DATASETS:
        lake.write_partition(getattr(outcome, dataset), config.lake_root, dataset, **keys)
    crops_dir = lake.partition_dir(config.lake_root, CROPS_DATASET, **keys)
    if outcome.crops:
        _replace_dir_with_crops(crops_dir, outcome.crops)
    elif crops_dir.exists():
        shutil.rmtree(crops_dir)


def _replace_dir_with_crops(target: Path, crops: list[tuple[str, bytes]]) -> None:
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    staging.mkdir(parents=True)
    for detection_id, jpeg in crops:
        (staging / f"{detection_id}.jpg").write_bytes(jpeg)
    old = target.with_name(f".{target.name}.{uuid.uuid4().hex}.old")
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def _drop_stale_cameras(config: WatershopConfig, shop_id: str, day: date, cameras: set[str]) -> None:
    """A camera removed from the config must not leave last run's rows in this shop-day."""
    for dataset in (*CAMERA_DATASETS, CROPS_DATASET):
        folder = lake.partition_dir(config.lake_root, dataset, shop_id=shop_id, date=day.isoformat())
        if folder.exists():
            for child in folder.iterdir():
                if child.name.startswith("camera=") and child.name.removeprefix("camera=") not in cameras:
                    shutil.rmtree(child)


def read_camera_dataset(config: WatershopConfig, dataset: str, shop_id: str, day: date) -> pl.DataFrame:
    """All cameras' rows of a shop-day (with a `camera` column), empty with the schema if none."""
    schema = CAMERA_DATASETS[dataset]
    frames = [
        lake.read_partition(config.lake_root, dataset, schema=schema, shop_id=shop_id, date=day.isoformat(), camera=c)
        for c in config.shop(shop_id).cameras
    ]
    frames = [f for f in frames if f.height]
    return pl.concat(frames) if frames else pl.DataFrame(schema=schema)
