"""One camera-day of footage through the vision pipeline, written to the lake.

A camera that tracks people (people.stream.tracks_people) has its files decoded once for faces and
people together: the person tracks land in `person_observations` for the behaviour step.

Every dataset is partitioned shop_id=/date=/camera=:
  footage_files        every file of the camera-day: path, start_utc, layout, status, reason
  footage_quarantine   files skipped: path, camera, reason
  frames, face_detections, face_tracks, face_embeddings   see vision.pipeline's schemas
Face crops, only when `vision.store_face_crops` is on: <lake>/face_crops/shop_id=/date=/camera=/<id>.jpg.

A bad path that names none of the shop's cameras (a Frigate file outside any camera folder) is
reported in the day's partition of the shop's first camera, with an empty camera.
A file is recorded `processed` only when its rows landed; a file that fails mid-decode leaves no rows
and is quarantined with the reason. Face datasets are written before `footage_files`, each atomically.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from watershop_dagster import catalog, lake
from watershop_dagster.config import WatershopConfig
from watershop_dagster.people.stream import faces_and_people, tracks_people
from watershop_dagster.vision.footage import discover_footage, probe_footage
from watershop_dagster.vision.pipeline import VisionResult, process_footage

FOOTAGE_FILES_SCHEMA = catalog.FOOTAGE_FILES.schema
#: footage_files.status: decoded to the end, failed while decoding (rows left out), or never decoded
FILE_PROCESSED, FILE_FAILED, FILE_QUARANTINED = "processed", "failed", "quarantined"
FOOTAGE_QUARANTINE_SCHEMA = catalog.FOOTAGE_QUARANTINE.schema


@dataclass
class VisionPartition:
    files: pl.DataFrame
    quarantine: pl.DataFrame
    result: VisionResult

    def count(self, dataset: str) -> int:
        return getattr(self.result, dataset).height

    @property
    def footage_seconds(self) -> float:
        return self.result.stats.get("footage_s", 0.0)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def process_camera_day(config: WatershopConfig, shop_id: str, camera: str, day: date, workers: int = 2) -> VisionPartition:
    """Discover, probe and process one camera's footage of the day; write every dataset; return what landed."""
    root = config.footage_root
    found, quarantined = _camera_day_paths(config, shop_id, camera, day)
    usable = []
    for footage in found:
        reason = probe_footage(footage)
        if reason:
            quarantined.append((_relative(footage.path, root), camera, reason))
        else:
            usable.append(footage)

    keys = {"shop_id": shop_id, "date": day, "camera": camera}
    if tracks_people(config.shop(shop_id), camera):
        outcome, people = faces_and_people(usable, camera, config.vision)
        lake.write_dataset(people.observations(), config.lake_root, catalog.PERSON_OBSERVATIONS, **keys)
    else:
        outcome = process_footage(usable, config.vision, workers, on_error="skip") if usable else VisionResult.empty()
    failed = {_relative(path, root): message for path, message in outcome.errors}
    _write_camera(config, shop_id, day, camera, outcome)

    quarantined += [(path, camera, f"decode failed: {message}") for path, message in failed.items()]
    quarantine = pl.DataFrame(quarantined, schema=FOOTAGE_QUARANTINE_SCHEMA, orient="row").sort("path", "reason")
    rows = [
        (camera, _relative(f.path, root), f.start_utc, f.layout,
         FILE_FAILED if _relative(f.path, root) in failed else FILE_PROCESSED, failed.get(_relative(f.path, root)))
        for f in usable
    ]
    rows += [(owner, path, None, None, FILE_QUARANTINED, reason) for path, owner, reason in quarantined
             if path not in failed]
    files = pl.DataFrame(rows, schema=FOOTAGE_FILES_SCHEMA, orient="row").sort("path")
    lake.write_dataset(quarantine, config.lake_root, catalog.FOOTAGE_QUARANTINE, **keys)
    lake.write_dataset(files, config.lake_root, catalog.FOOTAGE_FILES, **keys)
    return VisionPartition(files=files, quarantine=quarantine, result=outcome)


def _camera_day_paths(config: WatershopConfig, shop_id: str, camera: str,
                      day: date) -> tuple[list, list[tuple[str, str | None, str]]]:
    """The camera-day's footage files and its bad paths (relative path, owning camera, reason)."""
    shop = config.shop(shop_id)
    root = config.footage_root
    found, bad_paths = discover_footage(root, shop, day, [camera]) if root.exists() else ([], [])
    quarantined = [(_relative(b.path, root), owner, b.reason) for b in bad_paths
                   if (owner := _bad_path_camera(b.path, root, shop.cameras)) == camera
                   or (owner is None and camera == shop.cameras[0])]
    return found, quarantined


def camera_day_has_work(config: WatershopConfig, shop_id: str, camera: str, day: date) -> bool:
    """Whether a vision run of the camera-day has anything to record: footage or a bad path of it, or
    an earlier run's partition to restate. Without them the run would write only empty partitions,
    which every reader (lake.read_dataset, dbt's lake sources) takes as no rows already."""
    found, quarantined = _camera_day_paths(config, shop_id, camera, day)
    earlier = lake.partition_file(config.lake_root, catalog.FOOTAGE_FILES.name,
                                  shop_id=shop_id, date=day.isoformat(), camera=camera)
    return bool(found or quarantined) or earlier.exists()


def _bad_path_camera(path: Path, root: Path, cameras: list[str]) -> str | None:
    """The configured camera whose folder holds a bad file, if any."""
    try:
        folders = Path(path).relative_to(root).parts[:-1]
    except ValueError:
        folders = Path(path).parts[:-1]
    return next((part for part in folders if part in cameras), None)


def _write_camera(config: WatershopConfig, shop_id: str, day: date, camera: str, outcome: VisionResult) -> None:
    for dataset in catalog.CAMERA_OUTPUTS:
        lake.write_dataset(getattr(outcome, dataset.name), config.lake_root, dataset,
                           shop_id=shop_id, date=day, camera=camera)
    crops_dir = lake.partition_dir(config.lake_root, catalog.FACE_CROPS.name,
                                   shop_id=shop_id, date=day.isoformat(), camera=camera)
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
