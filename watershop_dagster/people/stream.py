"""A camera's footage fed to one PeopleTracker frame by frame, from any decode loop.

`PeopleStream.feed(path, decoded)` takes the frames of a decode someone else runs (the face
pipeline's, see `faces_and_people`), so faces and people share one decode of each file; `track`
decodes a file itself. Either way the stream also counts the footage seconds each file covered
and keeps the day's first frame (the heatmap's background).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import polars as pl

from watershop_dagster.config import ShopConfig, VisionConfig
from watershop_dagster.people.tracking import PeopleSettings, PeopleTracker
from watershop_dagster.vision.decode import DecodedFrame, FootageDecodeError, iter_frames
from watershop_dagster.vision.footage import FootageFile
from watershop_dagster.vision.motion import PersonBox
from watershop_dagster.vision.pipeline import PipelineTuning, VisionResult, process_footage


def tracks_people(shop: ShopConfig, camera: str) -> bool:
    """Whether the camera's footage is tracked for people: a camera with zones, or `people: true`."""
    settings = shop.camera_settings.get(camera)
    return settings is not None and settings.tracks_people


@dataclass
class _Span:
    first_s: float
    last_s: float
    frames: int = 1

    @property
    def seconds(self) -> float:
        span = self.last_s - self.first_s
        return span + (span / (self.frames - 1) if self.frames > 1 else 0.0)


@dataclass
class PeopleStream:
    """One tracker over a camera's files in time order (see module docstring)."""

    camera: str
    settings: PeopleSettings = field(default_factory=PeopleSettings)
    first_rgb: np.ndarray | None = None  # the first frame fed, RGB
    _spans: dict[Path, _Span] = field(default_factory=dict)

    def __post_init__(self):
        self.tracker = PeopleTracker(self.camera, self.settings)

    def feed(self, path: Path | str, decoded: DecodedFrame) -> list[PersonBox]:
        """Track the frame; returns the persons tracked in it (where the face pipeline looks for faces)."""
        if self.first_rgb is None:
            self.first_rgb = decoded.rgb()
        self.tracker.update_av(decoded.frame, decoded.ts_utc)
        span = self._spans.get(Path(path))
        if span is None:
            self._spans[Path(path)] = _Span(decoded.pts_s, decoded.pts_s)
        else:
            span.last_s, span.frames = decoded.pts_s, span.frames + 1
        return self.tracker.people

    def track(self, footage: FootageFile) -> str | None:
        """Decode one file into the tracker; None when it decoded to the end, else why not."""
        try:
            for decoded in iter_frames(footage.path, footage.start_utc, threads=self.settings.decode_threads):
                self.feed(footage.path, decoded)
        except (FootageDecodeError, av.FFmpegError, OSError) as exc:
            return f"decode failed: {exc}"
        return None

    @property
    def seconds(self) -> float:
        """Footage seconds fed: each file's first to last frame, plus one frame interval."""
        return sum(span.seconds for span in self._spans.values())

    def observations(self) -> pl.DataFrame:
        return self.tracker.observations()


def faces_and_people(
    files: Sequence[FootageFile],
    camera: str,
    vision: VisionConfig,
    people: PeopleSettings = PeopleSettings(),
    *,
    tuning: PipelineTuning | None = None,
) -> tuple[VisionResult, PeopleStream]:
    """The face pipeline over one camera's files (as `process_footage` with on_error="skip") with
    every decoded frame also fed to a people tracker: each file is decoded once for both, and faces
    are looked for only in the heads of the persons tracked (see vision.motion). Runs in this
    process (the tracker needs the frames in time order)."""
    stream = PeopleStream(camera, people)
    result = process_footage(files, vision, tuning=tuning, on_error="skip",
                             on_frame=lambda footage, decoded: stream.feed(footage.path, decoded))
    return result, stream
