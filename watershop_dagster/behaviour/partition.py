"""One camera-day of footage through people tracking and the zone analytics, written to the lake.

Every BEHAVIOUR_OUTPUTS dataset is written for the camera-day (shop_id=/date=/camera=), each
atomically, `source` = "watershop"; a re-run replaces them (idempotent). The footage is found and
probed as the vision pipeline does (plain and Frigate layouts), and one people tracker runs across
the day's files in time order, so a person keeps one track over Frigate's 10 s segments. The tracker
normally ran in the camera-day's vision step, on the same decode as the faces (`person_observations`);
only when that step did not track these very files (older run, files added since) are they decoded here.

Which cameras: those whose settings track people (`tracks_people`: a camera with zones, or
`people: true`). Any other camera-day writes empty datasets and says why (`skipped`).

Bad input never stops the camera-day; it lands in `person_observations_quarantine` with a reason:
observation rows the analytics cannot use, and one row per footage file that was skipped (a path
without a time, a file that does not probe or fails mid-decode; `ts` is the file's start when
known) or for a camera the shop does not list. A file that fails mid-decode keeps the observations
of the frames before the failure.

Identity: person tracks take the registry identity of faces seen on them (identities.py), from the
camera-day's FACE_DETECTIONS and the shop-day's FACE_IDENTITIES, so this runs after identity.

The heatmap PNG of the camera-day goes beside the day's report:
<workspace>/reports/<shop>/<date>/heatmap_<camera>.png.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import cv2
import numpy as np
import polars as pl

from watershop_dagster import catalog, lake
from watershop_dagster.behaviour.identities import face_identities, person_identities, with_identities
from watershop_dagster.config import ShopConfig, WatershopConfig
from watershop_dagster.people import PeopleSettings
from watershop_dagster.people.stream import PeopleStream, tracks_people
from watershop_dagster.serving.settings import reports_dir
from watershop_dagster.vision.decode import FootageDecodeError, iter_frames, video_info
from watershop_dagster.vision.footage import FootageFile, discover_footage, probe_footage
from watershop_dagster.vision.partition import FILE_FAILED, FILE_PROCESSED
from watershop_dagster.zones import ZoneAnalytics, analyse_observations, heatmap_grid, render_heatmap_png
from watershop_dagster.zones.schemas import PERSON_OBSERVATIONS

SKIP_NO_PEOPLE = "the camera tracks no people (no zones and no `people: true`)"
STILL_FRAME_WIDTH = 640  # the heatmap's background frame is scaled down to this width


def people_cameras(shop: ShopConfig) -> list[str]:
    return [camera for camera in shop.cameras if tracks_people(shop, camera)]


@dataclass
class BehaviourPartition:
    outputs: dict[str, pl.DataFrame]  # dataset name -> the rows written
    footage_seconds: float = 0.0
    processing_seconds: float = 0.0
    files: int = 0  # footage files tracked
    skipped: str | None = None  # why the camera-day was not processed
    heatmap_png: Path | None = None

    def count(self, dataset: catalog.Dataset) -> int:
        return self.outputs[dataset.name].height

    @property
    def quarantined(self) -> pl.DataFrame:
        return self.outputs[catalog.PERSON_OBSERVATIONS_QUARANTINE.name]

    @property
    def identified_tracks(self) -> int:
        tracks = self.outputs[catalog.PERSON_TRACKS.name]
        return tracks.filter(pl.col("identity").is_not_null()).height

    @property
    def realtime_factor(self) -> float:
        return self.footage_seconds / self.processing_seconds if self.processing_seconds else 0.0


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def _quarantine_rows(camera: str, problems: list[tuple[datetime | None, str]]) -> pl.DataFrame:
    """Quarantine rows that are not observations: (time or None, reason)."""
    rows = [{"camera": camera, "ts": ts, "reason": reason} for ts, reason in problems]
    return lake.conform(pl.DataFrame(rows, schema={"camera": pl.Utf8, "ts": catalog.TS, "reason": pl.Utf8}),
                        catalog.PERSON_OBSERVATIONS_QUARANTINE.schema)


@dataclass
class _People:
    """The camera-day's person tracks and what the decode that made them saw."""

    observations: pl.DataFrame
    seconds: float  # footage seconds tracked
    still: np.ndarray | None  # the day's first frame (RGB), the heatmap's background
    failures: dict[str, str]  # relative path -> why it did not decode to the end


def _track(usable: list[FootageFile], camera: str, settings: PeopleSettings, root: Path) -> _People:
    """Decode the files here, in time order, into one people tracker."""
    stream = PeopleStream(camera, settings)
    failures = {}
    for item in usable:
        if reason := stream.track(item):
            failures[_relative(item.path, root)] = reason
    return _People(stream.observations(), stream.seconds, stream.first_rgb, failures)


def _from_vision_step(config: WatershopConfig, keys: dict, usable: list[FootageFile]) -> _People | None:
    """The person tracks the camera-day's vision step wrote from its decode (faces and people share
    it), when that step ran on exactly these files; None otherwise (e.g. the camera tracked no
    people then, or files arrived since): the caller decodes them itself."""
    partition = {**keys, "date": keys["date"].isoformat()}
    if not lake.partition_file(config.lake_root, catalog.PERSON_OBSERVATIONS.name, **partition).exists():
        return None
    root = config.footage_root
    files = lake.read_dataset(config.lake_root, catalog.FOOTAGE_FILES, **keys).filter(
        pl.col("status").is_in([FILE_PROCESSED, FILE_FAILED]))
    if set(files["path"]) != {_relative(item.path, root) for item in usable}:
        return None
    failures = {path: f"decode failed: {reason}" for path, reason in
                files.filter(pl.col("status") == FILE_FAILED).select("path", "reason").iter_rows()}
    seconds = sum(video_info(item.path).duration_s or 0.0 for item in usable
                  if _relative(item.path, root) not in failures)
    return _People(lake.read_dataset(config.lake_root, catalog.PERSON_OBSERVATIONS, **keys), seconds,
                   _first_frame(usable), failures)


def _first_frame(files: list[FootageFile]) -> np.ndarray | None:
    for item in files[:1]:
        try:
            for decoded in iter_frames(item.path, item.start_utc):
                return decoded.rgb()
        except FootageDecodeError:
            return None
    return None


def _small_rgb(rgb: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    if width <= STILL_FRAME_WIDTH:
        return rgb
    return cv2.resize(rgb, (STILL_FRAME_WIDTH, round(height * STILL_FRAME_WIDTH / width)), interpolation=cv2.INTER_AREA)


def process_behaviour_day(
    config: WatershopConfig, shop_id: str, camera: str, day: date, settings: PeopleSettings = PeopleSettings(),
) -> BehaviourPartition:
    """Track people in one camera's footage of the day, run the zone analytics, write every dataset."""
    started = time.perf_counter()
    shop = config.shop(shop_id)
    keys = {"shop_id": shop_id, "date": day, "camera": camera}
    if camera not in shop.cameras:
        reason = f"camera {camera!r} is not a camera of shop {shop_id!r} (cameras: {', '.join(shop.cameras)})"
        return _write(config, keys, analyse_observations(_no_observations(), []),
                      _quarantine_rows(camera, [(None, reason)]), BehaviourPartition({}, skipped=reason))
    if not tracks_people(shop, camera):
        return _write(config, keys, analyse_observations(_no_observations(), []), _quarantine_rows(camera, []),
                      BehaviourPartition({}, skipped=SKIP_NO_PEOPLE))

    root = config.footage_root
    found, bad_paths = discover_footage(root, shop, day, [camera]) if root.exists() else ([], [])
    problems = [(None, f"footage {_relative(b.path, root)}: {b.reason}") for b in bad_paths
                if camera in Path(_relative(b.path, root)).parts[:-1]]  # bad paths of other folders: vision's
    reasons = {item.path: probe_footage(item) for item in found}
    usable = [item for item in found if reasons[item.path] is None]
    people = _from_vision_step(config, keys, usable) or _track(usable, camera, settings, root)
    for item in found:
        reason = reasons[item.path] or people.failures.get(_relative(item.path, root))
        if reason:
            problems.append((item.start_utc, f"footage {_relative(item.path, root)}: {reason}"))

    observations = people.observations
    links = person_identities(observations, face_identities(
        lake.read_dataset(config.lake_root, catalog.FACE_DETECTIONS, **keys),
        lake.read_dataset(config.lake_root, catalog.FACE_IDENTITIES, shop_id=shop_id, date=day)
        .filter(pl.col("camera") == camera)))
    zones = shop.zones(camera)
    analytics = analyse_observations(with_identities(observations, links), zones,
                                     exit_debounce_seconds=config.thresholds.zone_exit_debounce_seconds,
                                     presence_gap_seconds=config.thresholds.zone_presence_gap_seconds)
    result = BehaviourPartition({}, footage_seconds=people.seconds, files=len(usable))
    result.heatmap_png = render_heatmap_png(
        heatmap_grid(analytics.heatmap, camera),
        reports_dir(config) / shop_id / day.isoformat() / f"heatmap_{camera}.png",
        still_frame=None if people.still is None else _small_rgb(people.still), zones=zones,
        title=f"{shop_id} {camera} {day.isoformat()}")
    result = _write(config, keys, analytics, _quarantine_rows(camera, problems), result)
    result.processing_seconds = time.perf_counter() - started
    return result


def _no_observations() -> pl.DataFrame:
    return pl.DataFrame(schema=PERSON_OBSERVATIONS)


def _write(config: WatershopConfig, keys: dict, analytics: ZoneAnalytics, bad_files: pl.DataFrame,
           result: BehaviourPartition) -> BehaviourPartition:
    frames = {
        catalog.PERSON_TRACKS.name: analytics.tracks,
        catalog.ZONE_VISITS.name: analytics.visits,
        catalog.LOITERING_EVENTS.name: analytics.loitering,
        catalog.FOOTFALL.name: analytics.footfall,
        catalog.ZONE_OCCUPANCY.name: analytics.occupancy,
        catalog.ZONE_TRANSITIONS.name: analytics.transitions,
        catalog.HEATMAP_CELLS.name: analytics.heatmap,
        catalog.PERSON_OBSERVATIONS_QUARANTINE.name: pl.concat([
            lake.conform(analytics.rejected, catalog.PERSON_OBSERVATIONS_QUARANTINE.schema), bad_files]),
    }
    for dataset in catalog.BEHAVIOUR_OUTPUTS:
        frame = lake.conform(frames[dataset.name].with_columns(source=pl.lit(catalog.SOURCE_WATERSHOP)), dataset.schema)
        lake.write_dataset(frame, config.lake_root, dataset, **keys)
        result.outputs[dataset.name] = frame
    return result
