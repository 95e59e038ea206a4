"""One footage file through the shelf zones' fall detectors: every frame decoded, only the shelf regions examined."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from watershop_dagster.shelf.detector import FallEvent, ShelfFallDetector, ShelfRegion, YuvPlanes
from watershop_dagster.shelf.settings import FallTuning, ShelfConfig
from watershop_dagster.vision.decode import FootageDecodeError, iter_frames, video_info
from watershop_dagster.zones.config import Zone

SHELF_KIND = "shelf"
STILL_JPEG_QUALITY = 85


def shelf_zones(zones: list[Zone]) -> list[Zone]:
    return [zone for zone in zones if zone.kind == SHELF_KIND]


def regions_for(zones: list[Zone], frame_size: tuple[int, int], config: ShelfConfig, tuning: FallTuning) -> list[ShelfRegion]:
    """A region per shelf zone, for frames of `frame_size` (w, h), with the zone's gravity in px/s²."""
    regions = []
    for zone in shelf_zones(zones):
        height_px = float((zone.polygon[:, 1].max() - zone.polygon[:, 1].min()) * frame_size[1])
        regions.append(ShelfRegion.from_polygon(zone.camera, zone.name, zone.polygon, frame_size,
                                                config.gravity_px_s2(zone.name, height_px), tuning.work_width))
    return regions


@dataclass
class FileFalls:
    events: list[FallEvent]
    frames: int = 0
    footage_s: float = 0.0
    stills: dict[int, bytes] = field(default_factory=dict)  # index in events -> JPEG of the shelf region


def yuv_planes(frame) -> YuvPlanes:
    """The frame's Y, U, V planes without copying (any other pixel format is converted first)."""
    if frame.format.name not in ("yuv420p", "yuvj420p"):
        frame = frame.reformat(format="yuv420p")
    planes = []
    for index, (width, height) in enumerate(((frame.width, frame.height),) + 2 * (((frame.width + 1) // 2, (frame.height + 1) // 2),)):
        plane = frame.planes[index]
        planes.append(np.frombuffer(plane, np.uint8).reshape(height, plane.line_size)[:, :width])
    return YuvPlanes(*planes)


def _frames(path: Path, threads: int, previous: Path | None, preroll_s: float):
    """(time s from the file's start, frame): the previous file's last `preroll_s` first (negative
    times), so the background and the busy map are learnt before this file's first frame."""
    if previous is not None:
        try:
            duration = video_info(previous).duration_s
            if duration:
                for decoded in iter_frames(previous, t0=max(0.0, duration - preroll_s), threads=threads, strict=False):
                    yield decoded.pts_s - duration, decoded
        except FootageDecodeError:
            pass  # a bad neighbour: start cold
    for decoded in iter_frames(path, threads=threads):
        yield decoded.pts_s, decoded


def detect_falls_in_file(path: Path, zones: list[Zone], config: ShelfConfig, tuning: FallTuning = FallTuning(),
                         *, previous: Path | None = None, threads: int = 1) -> FileFalls:  # fmt: skip
    """Falls judged in one file (times in s from its first frame; a fall released in the last
    second of `previous` and landing in this file is this file's, with a negative release time).
    `previous`: the file just before it (the last Frigate segment), whose tail warms the detector up
    and shows this file's first falls whole. A fall judged in that tail is the previous file's, and
    one still under way at this file's end is the next file's: a fall across a boundary is told
    once. Raises FootageDecodeError for a bad file."""
    detectors: list[ShelfFallDetector] | None = None
    out = FileFalls([])
    last_t = 0.0

    for t, decoded in _frames(path, threads, previous, tuning.preroll_s):
        frame = decoded.frame
        if detectors is None:
            regions = regions_for(zones, (frame.width, frame.height), config, tuning)
            if not regions:
                return out
            detectors = [ShelfFallDetector(region, tuning) for region in regions]
        planes = yuv_planes(frame)
        if t >= 0:
            out.frames += 1
            last_t = t
        for detector in detectors:
            for event in detector.update(t, planes):
                if t < 0 or event.confidence < config.min_confidence:  # judged in the pre-roll: the previous file's
                    continue
                if config.store_stills:
                    out.stills[len(out.events)] = _still(decoded.rgb(), detector.region)
                out.events.append(event)
    out.footage_s = last_t
    return out


def _still(rgb: np.ndarray, region: ShelfRegion) -> bytes:
    """A JPEG of the shelf region only (never the whole frame)."""
    import cv2

    x0, y0, x1, y1 = region.box
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb[y0:y1, x0:x1], cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, STILL_JPEG_QUALITY])
    return jpeg.tobytes() if ok else b""
