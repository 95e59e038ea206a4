"""Footage → frames → motion → face detections → tracks → 128-d embeddings.

`process_video(footage, settings, workers=2)` splits a file into time slices (60 s to 5 min:
`slice_length`, about SLICES_PER_WORKER per worker; the last `workers` slices halved so the
workers finish together), runs `process_segment` on each in a spawn-based process pool, and
stitches tracks cut at slice boundaries. `process_footage(files, ...)` does the same for
many files through one pool, running short files (Frigate's 10 s segments) as continuous runs of
consecutive files. Per slice or run:

1. decode every frame (H.264 needs them), but only look at the first frame of each 1/max_fps
   bucket: its luma, shrunk to 160 px, feeds the motion detector (cheap, ~1 ms);
2. FrameSampler decides whether to search that frame and where: motion regions (scaled so a
   min_face_px face is found) and small windows around faces already followed;
3. dlib HOG finds faces there; each gets a quality score; FaceTracker links them into tracks;
4. EmbeddingSelector picks the few detections per track worth a 128-d embedding (~0.1 s each);
   the image patch of the pending best detection is kept until it is embedded or dropped.

Idle footage costs decoding plus ~1 ms per sampled frame. With `on_frame`, every decoded frame
(not only the sampled ones) also goes to a second consumer, e.g. the people tracker, so one decode
serves both (the jobs then run in this process, in time order). A sink that tracks people returns
the persons it sees in the frame; faces are then looked for only in their heads (FrameSampler's
people plan), not in whole motion regions. Output is a `VisionResult` of polars
DataFrames with the schemas below; IDs are hashes of camera, file start and frame time, so
re-running gives identical rows. Face images are not kept unless `store_face_crops` is on.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import polars as pl

from watershop_dagster import catalog
from watershop_dagster.config import VisionConfig
from watershop_dagster.vision.decode import DecodedFrame, FootageDecodeError, iter_frames, video_info
from watershop_dagster.vision.faces import (
    EMBEDDING_DIM,
    Detection,
    detect_faces,
    embed_faces,
    face_jpeg,
    face_patch,
)
from watershop_dagster.vision.footage import FootageFile
from watershop_dagster.vision.motion import Box, FrameSampler, MotionDetector, PersonBox, SamplerSettings
from watershop_dagster.vision.tracking import (
    EmbeddingPolicy,
    EmbeddingSelector,
    FaceTracker,
    TrackEnd,
    TrackParams,
    chain_roots,
    stitch_pairs,
)

FRAMES_SCHEMA = catalog.FRAMES.schema
FACE_DETECTIONS_SCHEMA = catalog.FACE_DETECTIONS.schema
FACE_TRACKS_SCHEMA = catalog.FACE_TRACKS.schema
FACE_EMBEDDINGS_SCHEMA = catalog.FACE_EMBEDDINGS.schema

#: shortest target slice length; a file is cut into round(duration / slice length) equal slices
SLICE_SECONDS = 60.0
#: every slice starts blind (decoded from a keyframe, a motion pre-roll, one whole-frame face
#: search), so long footage gets longer slices, up to this, while each worker still gets about
#: SLICES_PER_WORKER of them to balance the load
MAX_SLICE_SECONDS = 300.0
SLICES_PER_WORKER = 4
#: frames decoded before a slice's start to warm up the motion background
PREROLL_SECONDS = 1.0
#: width of the grayscale frame motion runs on
MOTION_WIDTH = 160

#: gets every decoded frame (not only the sampled ones) with its file: a second consumer of one decode;
#: a people tracker returns the persons it sees in the frame (None: no such knowledge)
FrameSink = Callable[[FootageFile, DecodedFrame], Sequence[PersonBox] | None]


@dataclass(frozen=True)
class PipelineTuning:
    """Knobs beyond VisionConfig; the defaults are what the speed/recall figures were measured with."""

    sampler: SamplerSettings | None = None  # None: built from VisionConfig
    tracks: TrackParams = field(default_factory=TrackParams)
    embeddings: EmbeddingPolicy = field(default_factory=EmbeddingPolicy)
    min_det_score: float = 0.0  # dlib adjust_threshold: detections scoring below are dropped
    slice_seconds: float = SLICE_SECONDS
    preroll_seconds: float = PREROLL_SECONDS


@dataclass
class VisionResult:
    frames: pl.DataFrame
    face_detections: pl.DataFrame
    face_tracks: pl.DataFrame
    face_embeddings: pl.DataFrame
    crops: list[tuple[str, bytes]] = field(default_factory=list)  # (detection_id, JPEG) if store_face_crops
    stats: dict[str, float] = field(default_factory=dict)  # counters and timings, summed over slices
    errors: list[tuple[Path, str]] = field(default_factory=list)  # files skipped (on_error="skip")

    @classmethod
    def empty(cls) -> VisionResult:
        return cls(
            frames=pl.DataFrame(schema=FRAMES_SCHEMA),
            face_detections=pl.DataFrame(schema=FACE_DETECTIONS_SCHEMA),
            face_tracks=pl.DataFrame(schema=FACE_TRACKS_SCHEMA),
            face_embeddings=pl.DataFrame(schema=FACE_EMBEDDINGS_SCHEMA),
        )


# --------------------------------------------------------------------------------------------
# ids


def _hid(*parts: object) -> str:
    return hashlib.blake2b("|".join(str(p) for p in parts).encode(), digest_size=8).hexdigest()


def _us(ts: datetime) -> int:
    return (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def detection_id(camera: str, file_start: datetime, ts: datetime, index: int) -> str:
    """Deterministic id of the `index`-th face (top-to-bottom, left-to-right) of a frame."""
    return _hid("det", camera, _us(file_start), _us(ts), index)


def track_id_for(first_detection_id: str) -> str:
    return _hid("track", first_detection_id)


def embedding_id_for(det_id: str) -> str:
    return _hid("emb", det_id)


# --------------------------------------------------------------------------------------------
# one slice


def _sampler_settings(settings: VisionConfig, tuning: PipelineTuning) -> SamplerSettings:
    if tuning.sampler is not None:
        return tuning.sampler
    return SamplerSettings(
        max_fps=settings.max_fps,
        motion_threshold=settings.motion_threshold,
        min_face_px=float(settings.min_face_px),
    )


@dataclass
class _TrackState:
    track_id: str
    selector: EmbeddingSelector
    patch: tuple[str, np.ndarray, Detection] | None = None  # (detection_id, patch, det in patch)


class _Runner:
    """The per-slice state machine: motion → sampler → detector → tracker → embeddings.

    `run(footage, t0, t1)` may be called for several consecutive files of one camera (e.g.
    Frigate's 10 s segments): motion, sampler and tracks then carry on across the files, on a
    clock of seconds since the first file's start. `finish()` closes the tracks and returns the
    VisionResult.
    """

    def __init__(self, settings: VisionConfig, tuning: PipelineTuning, threads: int = 0):
        self.settings = settings
        self.tuning = tuning
        self.threads = threads
        self.sampler_settings = _sampler_settings(settings, tuning)
        self.motion: MotionDetector | None = None
        self.sampler: FrameSampler | None = None
        self.tracker = FaceTracker(tuning.tracks)
        self.states: dict[int, _TrackState] = {}
        self.origin: datetime | None = None
        self.camera: str | None = None
        self.frame_rows: dict[str, list] = {k: [] for k in FRAMES_SCHEMA}
        self.det_rows: dict[str, list] = {k: [] for k in FACE_DETECTIONS_SCHEMA}
        self.det_row_index: dict[str, int] = {}
        self.emb_rows: dict[str, list] = {k: [] for k in FACE_EMBEDDINGS_SCHEMA}
        self.crops: list[tuple[str, bytes]] = []
        self.stats: dict[str, float] = {
            "frames_decoded": 0,
            "frames_scored": 0,
            "frames_searched": 0,
            "search_pixels": 0,
            "detections": 0,
            "embeddings": 0,
            "footage_s": 0.0,
            "start_searches": 0,
            "start_search_cpu_s": 0.0,
            "start_search_faces": 0,
            "lost_face_looks": 0,
        }
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()

    def _embed(self, state: _TrackState, det_id: str, patch: np.ndarray, det: Detection) -> None:
        vector = embed_faces(patch, [det])[0]
        row = self.det_row_index[det_id]
        self.det_rows["embedded"][row] = True
        for name, value in (
            ("embedding_id", embedding_id_for(det_id)),
            ("track_id", state.track_id),
            ("detection_id", det_id),
            ("camera", self.det_rows["camera"][row]),
            ("ts_utc", self.det_rows["ts_utc"][row]),
            ("quality", self.det_rows["quality"][row]),
            ("embedding", vector),
        ):
            self.emb_rows[name].append(value)
        self.stats["embeddings"] += 1
        if self.settings.store_face_crops:
            self.crops.append((det_id, face_jpeg(patch, det)))

    def _close_tracks(self, indices: Iterable[int]) -> None:
        for i in indices:
            state = self.states.pop(i)
            for key in state.selector.close():
                assert state.patch is not None and state.patch[0] == key
                self._embed(state, key, state.patch[1], state.patch[2])
            state.patch = None

    def run(self, footage: FootageFile, t0: float = 0.0, t1: float | None = None, on_frame: FrameSink | None = None) -> None:
        camera, file_start = footage.camera, footage.start_utc
        if self.camera is None:
            self.camera, self.origin = camera, file_start
        elif camera != self.camera:
            raise ValueError(f"one runner handles one camera, got {camera!r} after {self.camera!r}")
        offset = (file_start - self.origin).total_seconds()
        ss = self.sampler_settings
        decode_stats: dict[str, int] = {}
        first_pts = last_pts = None
        for df in iter_frames(
            footage.path,
            file_start,
            t0,
            t1,
            preroll_s=self.tuning.preroll_seconds if t0 > 0 else 0.0,
            max_rate=ss.max_fps,
            threads=self.threads,
            stats=decode_stats,
            unsampled=on_frame is not None,
        ):
            people = None
            if on_frame is not None and df.pts_s >= t0:
                people = on_frame(footage, df)
            if not df.sampled:
                continue
            t = offset + df.pts_s  # the runner's clock
            if self.motion is None or self.sampler is None:
                self.motion = MotionDetector((df.width, df.height))
                self.sampler = FrameSampler((df.width, df.height), ss)
            result = self.motion.update(df.gray_small(MOTION_WIDTH), t)
            if df.pts_s < t0:
                continue  # pre-roll: motion warm-up only
            first_pts = df.pts_s if first_pts is None else first_pts
            last_pts = df.pts_s
            self.stats["frames_scored"] += 1
            self._close_tracks(self.tracker.expire(t))
            # people cameras look for faces in heads, not where faces were lost
            lost = self.tracker.lost(t, ss.track_keep_s, ss.lost_face_window_s) if people is None else ()
            plan = self.sampler.plan(t, result, self.tracker.following(t, ss.track_keep_s), people, lost)
            dets: list[Detection] = []
            if plan is not None:
                dets = self._search(df, t, plan, camera, file_start)
            for name, value in (
                ("camera", camera),
                ("ts_utc", df.ts_utc),
                ("pts_s", df.pts_s),
                ("motion_score", result.score),
                ("searched", plan is not None),
                ("n_faces", len(dets)),
            ):
                self.frame_rows[name].append(value)
        self.stats["frames_decoded"] += decode_stats.get("decoded", 0)
        if first_pts is not None:
            self.stats["footage_s"] += last_pts - first_pts + 1.0 / ss.max_fps

    def _search(self, df, t: float, plan, camera: str, file_start: datetime) -> list[Detection]:
        ss = self.sampler_settings
        rgb = df.rgb()
        started = time.process_time()
        dets = [
            d
            for d in detect_faces(rgb, plan.regions, ss.min_face_px, adjust_threshold=self.tuning.min_det_score)
            if max(d.width, d.height) >= 0.75 * ss.min_face_px
        ]
        if plan.regions[0].kind == "start":  # what slice starts cost, for bench_vision
            self.stats["start_searches"] += 1
            self.stats["start_search_cpu_s"] += time.process_time() - started
            self.stats["start_search_faces"] += len(dets)
        self.stats["lost_face_looks"] += sum(1 for r in plan.regions if r.kind == "lost")
        self.sampler.report(plan, len(dets), [d.box for d in dets])
        self.stats["frames_searched"] += 1
        self.stats["search_pixels"] += sum(r.box.area * (72.0 / r.min_face_px) ** 2 for r in plan.regions)
        track_indices = self.tracker.update(t, [d.box for d in dets])
        for k, (det, ti) in enumerate(zip(dets, track_indices)):
            det_id = detection_id(camera, file_start, df.ts_utc, k)
            state = self.states.get(ti)
            if state is None:
                state = self.states[ti] = _TrackState(track_id_for(det_id), EmbeddingSelector(self.tuning.embeddings))
            self.det_row_index[det_id] = len(self.det_rows["detection_id"])
            for name, value in (
                ("detection_id", det_id),
                ("camera", camera),
                ("ts_utc", df.ts_utc),
                ("track_id", state.track_id),
                ("top", det.top),
                ("right", det.right),
                ("bottom", det.bottom),
                ("left", det.left),
                ("det_score", det.score),
                ("quality", det.quality),
                ("embedded", False),
            ):
                self.det_rows[name].append(value)
            self.stats["detections"] += 1
            patch, in_patch = face_patch(rgb, det)
            for key in state.selector.offer(det_id, t, det.quality):
                if key == det_id:
                    self._embed(state, det_id, patch, in_patch)
                else:
                    assert state.patch is not None and state.patch[0] == key
                    self._embed(state, key, state.patch[1], state.patch[2])
            if state.selector.pending_key == det_id:
                state.patch = (det_id, patch, in_patch)
            elif state.selector.pending_key is None:
                state.patch = None
        return dets

    def finish(self) -> VisionResult:
        self._close_tracks(self.tracker.close_all())
        self.stats["wall_s"] = time.perf_counter() - self.wall0
        self.stats["cpu_s"] = time.process_time() - self.cpu0
        detections = pl.DataFrame(self.det_rows, schema=FACE_DETECTIONS_SCHEMA)
        vectors = np.asarray(self.emb_rows["embedding"], np.float32).reshape(-1, EMBEDDING_DIM)
        embeddings = pl.DataFrame(
            {k: v for k, v in self.emb_rows.items() if k != "embedding"} | {"embedding": vectors},
            schema=FACE_EMBEDDINGS_SCHEMA,
        )
        return VisionResult(
            frames=pl.DataFrame(self.frame_rows, schema=FRAMES_SCHEMA),
            face_detections=detections,
            face_tracks=tracks_from_detections(detections, embeddings),
            face_embeddings=embeddings,
            crops=self.crops,
            stats=self.stats,
        )


def process_segment(
    footage: FootageFile,
    settings: VisionConfig | None = None,
    t0: float = 0.0,
    t1: float | None = None,
    *,
    tuning: PipelineTuning | None = None,
    threads: int = 0,
    on_frame: FrameSink | None = None,
) -> VisionResult:
    """Process frames with pts in [t0, t1) seconds of one file (t1=None: to the end).

    Tracks are local to the slice; `process_video` stitches them. `threads` is the decoder's
    thread count (0: FFmpeg's choice). `on_frame` gets every decoded frame of [t0, t1).
    """
    runner = _Runner(settings or VisionConfig(), tuning or PipelineTuning(), threads)
    runner.run(footage, t0, t1, on_frame)
    return runner.finish()


def process_consecutive(
    files: Sequence[FootageFile],
    settings: VisionConfig | None = None,
    *,
    tuning: PipelineTuning | None = None,
    threads: int = 0,
    on_frame: FrameSink | None = None,
) -> VisionResult:
    """Consecutive whole files of ONE camera (e.g. Frigate segments) as one continuous run:
    tracks carry on from file to file instead of being cut and stitched."""
    runner = _Runner(settings or VisionConfig(), tuning or PipelineTuning(), threads)
    for footage in sorted(files, key=lambda f: f.start_utc):
        runner.run(footage, on_frame=on_frame)
    return runner.finish()


def tracks_from_detections(detections: pl.DataFrame, embeddings: pl.DataFrame) -> pl.DataFrame:
    """The face_tracks table: one row per track_id of the detections."""
    if detections.is_empty():
        return pl.DataFrame(schema=FACE_TRACKS_SCHEMA)
    n_emb = embeddings.group_by("track_id").agg(pl.len().cast(pl.Int32).alias("n_embeddings"))
    tracks = (
        detections.group_by("track_id")
        .agg(
            pl.col("camera").first(),
            pl.col("ts_utc").min().alias("start_utc"),
            pl.col("ts_utc").max().alias("end_utc"),
            pl.len().cast(pl.Int32).alias("n_detections"),
            pl.col("quality").max().alias("best_quality"),
        )
        .join(n_emb, on="track_id", how="left")
        .with_columns(pl.col("n_embeddings").fill_null(0))
        .sort("start_utc", "track_id")
    )
    return tracks.select(list(FACE_TRACKS_SCHEMA)).cast(dict(FACE_TRACKS_SCHEMA))


# --------------------------------------------------------------------------------------------
# many slices / files → one result


def slice_length(long_footage_s: float, workers: int, min_slice_s: float = SLICE_SECONDS) -> float:
    """Target slice length for `long_footage_s` seconds of long files on `workers` processes."""
    balanced = long_footage_s / (max(1, workers) * SLICES_PER_WORKER)
    return max(min_slice_s, min(MAX_SLICE_SECONDS, balanced))


def split_tail(jobs: list[tuple], workers: int, durations: dict[int, float | None], min_slice_s: float) -> list[tuple]:
    """`jobs` (time order, as the pool takes them) with each of the last `workers` long-file
    slices halved: equal slices cost unequal CPU (busy vs idle minutes), so the last ones left
    a worker idle while the other finished; halves of at least min_slice_s shorten that tail.
    A job is (footage, settings, t0, t1, tuning); a group of short files is never split."""
    if workers < 2:
        return list(jobs)
    split: list[tuple] = list(jobs[:-workers])
    for job in jobs[-workers:]:
        footage, settings, t0, t1, tuning = job
        end = t1 if t1 is not None else durations.get(id(footage))
        if isinstance(footage, tuple) or end is None or end - t0 < 2 * min_slice_s:
            split.append(job)
            continue
        middle = round((t0 + end) / 2, 6)
        split += [(footage, settings, t0, middle, tuning), (footage, settings, middle, t1, tuning)]
    return split


def plan_slices(duration_s: float | None, slice_seconds: float = SLICE_SECONDS) -> list[tuple[float, float | None]]:
    """Equal slices of about slice_seconds covering the file; the last is open-ended (t1=None)
    so frames past the declared duration are not lost."""
    if not duration_s or duration_s <= 1.5 * slice_seconds:
        return [(0.0, None)]
    n = max(1, round(duration_s / slice_seconds))
    step = duration_s / n
    bounds = [round(i * step, 6) for i in range(n)]
    return [(b, bounds[i + 1] if i + 1 < n else None) for i, b in enumerate(bounds)]


def _ts_seconds(ts: datetime) -> float:
    return _us(ts) / 1_000_000


def combine_results(results: Sequence[VisionResult], params: TrackParams = TrackParams()) -> VisionResult:
    """Concatenate results of consecutive slices or files (in time order) and stitch tracks of the
    same camera cut at their boundaries; a stitched track keeps its earliest piece's id."""
    results = [r for r in results if r is not None]
    if not results:
        return VisionResult.empty()
    frames = pl.concat([r.frames for r in results], how="vertical")
    detections = pl.concat([r.face_detections for r in results], how="vertical")
    embeddings = pl.concat([r.face_embeddings for r in results], how="vertical")
    crops = [c for r in results for c in r.crops]
    errors = [e for r in results for e in r.errors]
    stats: dict[str, float] = {}
    for r in results:
        for k, v in r.stats.items():
            stats[k] = stats.get(k, 0) + v

    remap = _stitch_map(results, params)
    if remap:
        mapping = pl.DataFrame({"track_id": list(remap), "_new": list(remap.values())})
        detections = (
            detections.join(mapping, on="track_id", how="left", maintain_order="left")
            .with_columns(pl.coalesce("_new", "track_id").alias("track_id"))
            .drop("_new")
        )
        embeddings = (
            embeddings.join(mapping, on="track_id", how="left", maintain_order="left")
            .with_columns(pl.coalesce("_new", "track_id").alias("track_id"))
            .drop("_new")
        )
    detections = detections.sort("ts_utc", "detection_id")
    embeddings = embeddings.sort("ts_utc", "embedding_id")
    return VisionResult(
        frames=frames.sort("camera", "ts_utc"),
        face_detections=detections,
        face_tracks=tracks_from_detections(detections, embeddings),
        face_embeddings=embeddings,
        crops=crops,
        stats=stats,
        errors=errors,
    )


def _stitch_map(results: Sequence[VisionResult], params: TrackParams) -> dict[str, str]:
    ends: list[TrackEnd] = []
    starts: list[TrackEnd] = []
    for part, r in enumerate(results):
        if r.face_detections.is_empty():
            continue
        emb = {row["track_id"]: row for row in r.face_embeddings.sort("ts_utc").iter_rows(named=True)}  # last per track
        emb_first = {}
        for row in r.face_embeddings.sort("ts_utc", descending=True).iter_rows(named=True):
            emb_first[row["track_id"]] = row
        ordered = r.face_detections.sort("ts_utc")
        firsts = ordered.group_by("track_id", maintain_order=True).first()
        lasts = ordered.group_by("track_id", maintain_order=True).last()
        for rows, out, embs in ((firsts, starts, emb_first), (lasts, ends, emb)):
            for row in rows.iter_rows(named=True):
                e = embs.get(row["track_id"])
                out.append(
                    TrackEnd(
                        track_id=row["track_id"],
                        part=part,
                        t=_ts_seconds(row["ts_utc"]),
                        box=Box(row["left"], row["top"], row["right"], row["bottom"]),
                        embedding=None if e is None else np.asarray(e["embedding"], np.float32),
                    )
                )
    cameras = {row: cam for r in results for row, cam in r.face_detections.select("track_id", "camera").iter_rows()}
    links = {}
    for camera in sorted(set(cameras.values())):
        links.update(
            stitch_pairs(
                [e for e in ends if cameras[e.track_id] == camera],
                [s for s in starts if cameras[s.track_id] == camera],
                params,
            )
        )
    return chain_roots(links)


def _pool_worker_init(threads: int) -> None:
    """A pool worker's OpenCV uses its share of the cores: its own thread pool sized for the
    whole machine would compete with the other workers."""
    cv2.setNumThreads(threads)


def _slice_worker(args, on_frame: FrameSink | None = None) -> VisionResult:
    footage, settings, t0, t1, tuning, threads = args
    if isinstance(footage, tuple):
        return process_consecutive(footage, settings, tuning=tuning, threads=threads, on_frame=on_frame)
    return process_segment(footage, settings, t0, t1, tuning=tuning, threads=threads, on_frame=on_frame)


def _failed_paths(outcomes: Iterable[VisionResult | FootageDecodeError]) -> dict[Path, str]:
    """The files whose decoding failed, with the first message of each."""
    failed: dict[Path, str] = {}
    for outcome in outcomes:
        if isinstance(outcome, FootageDecodeError):
            failed.setdefault(outcome.path, str(outcome))
    return failed


def _rerun_group(
    group: tuple[FootageFile, ...],
    error: FootageDecodeError,
    settings: VisionConfig,
    tuning: PipelineTuning,
    failed: dict[Path, str],
    on_frame: FrameSink | None = None,
) -> list[VisionResult]:
    """A failed segment spoils only its group's run: the group's other files, rerun as one run
    (dropping any further file that fails, noted in `failed`). The sink is fed only the files
    after the failed one: it saw the earlier ones, and the failed file up to the failure (their
    frames, with no persons from it, are searched for faces as on a camera without people)."""
    failed.setdefault(error.path, str(error))
    seen = _files_through(group, error.path)
    rest = tuple(f for f in group if Path(f.path) not in failed)

    def unseen_only(footage: FootageFile, frame: DecodedFrame) -> Sequence[PersonBox] | None:
        return None if Path(footage.path) in seen else on_frame(footage, frame)

    while rest:
        try:
            return [process_consecutive(rest, settings, tuning=tuning, on_frame=on_frame and unseen_only)]
        except FootageDecodeError as exc:
            failed.setdefault(exc.path, str(exc))
            seen |= _files_through(rest, exc.path)
            rest = tuple(f for f in rest if Path(f.path) != exc.path)
    return []


def _files_through(files: Sequence[FootageFile], path: Path) -> set[Path]:
    """The paths of `files`, in time order, up to and including `path`."""
    paths = [Path(f.path) for f in sorted(files, key=lambda f: f.start_utc)]
    return set(paths[: paths.index(Path(path)) + 1])


def _job_key(footage: FootageFile | tuple[FootageFile, ...]) -> tuple:
    first = footage[0] if isinstance(footage, tuple) else footage
    return (first.start_utc, first.camera, str(first.path))


def _short_file_groups(files: Sequence[FootageFile], span_s: float) -> list[list[FootageFile]]:
    """Consecutive files of each camera, grouped so a group's files start within span_s of its
    first: one job each (Frigate writes ~10 s segments; a job per file would cut every track)."""
    groups: list[list[FootageFile]] = []
    by_camera: dict[str, list[FootageFile]] = {}
    for f in sorted(files, key=lambda f: (f.camera, f.start_utc, str(f.path))):
        by_camera.setdefault(f.camera, []).append(f)
    for camera_files in by_camera.values():
        group: list[FootageFile] = []
        for f in camera_files:
            if group and (f.start_utc - group[0].start_utc).total_seconds() >= span_s:
                groups.append(group)
                group = []
            group.append(f)
        if group:
            groups.append(group)
    return groups


def process_video(
    footage: FootageFile,
    settings: VisionConfig | None = None,
    workers: int = 2,
    *,
    tuning: PipelineTuning | None = None,
) -> VisionResult:
    """All faces of one file: slices processed in `workers` spawned processes, tracks stitched."""
    return process_footage([footage], settings, workers, tuning=tuning)


def process_footage(
    files: Sequence[FootageFile],
    settings: VisionConfig | None = None,
    workers: int = 2,
    *,
    tuning: PipelineTuning | None = None,
    on_error: Literal["raise", "skip"] = "raise",
    on_frame: FrameSink | None = None,
) -> VisionResult:
    """Several files (e.g. one camera-day) through ONE process pool. Long files are cut into
    slices; short files (Frigate's ~10 s segments, or any file of at most one slice) are grouped
    into runs of consecutive files of a camera spanning about slice_seconds, each run processed
    as one continuous stream. Tracks are stitched across slices, runs and files.

    A file that fails to decode raises FootageDecodeError (naming the file); with
    on_error="skip" its rows are left out entirely and (path, message) is listed in `errors`.

    With `on_frame` (e.g. a people tracker fed from the same decode), the jobs run in this
    process in time order, whatever `workers`: the sink sees every frame of each file once, in
    time order, up to a decoding failure (a failed file's later slices are not decoded).
    """
    settings = settings or VisionConfig()
    tuning = tuning or PipelineTuning()
    wall0 = time.perf_counter()
    files = sorted(files, key=lambda f: (f.start_utc, f.camera, str(f.path)))
    jobs: list[tuple] = []
    errors: list[tuple[Path, str]] = []
    short: list[FootageFile] = []
    durations: dict[int, float | None] = {}  # id of each long-layout file that opened -> its duration
    for f in files:
        if f.layout == "frigate":
            short.append(f)  # ~10 s segments: no need to open them here
            continue
        try:
            durations[id(f)] = video_info(f.path).duration_s
        except FootageDecodeError as exc:
            if on_error == "raise":
                raise
            errors.append((Path(f.path), str(exc)))
    pool_size = 1 if on_frame is not None else workers
    slice_s = slice_length(sum(d or 0.0 for d in durations.values()), pool_size, tuning.slice_seconds)
    for f in files:
        if id(f) not in durations:
            continue
        duration = durations[id(f)]
        slices = plan_slices(duration, slice_s)
        if len(slices) == 1 and duration is not None:
            short.append(f)
            continue
        for t0, t1 in slices:
            jobs.append((f, settings, t0, t1, tuning))
    for group in _short_file_groups(short, tuning.slice_seconds):
        jobs.append((tuple(group), settings, 0.0, None, tuning))
    jobs.sort(key=lambda job: _job_key(job[0]) + (job[2],))
    workers = max(1, min(pool_size, len(jobs)))
    if workers > 1 and multiprocessing.current_process().daemon:
        # e.g. inside a Celery prefork worker: daemonic processes may not start children
        warnings.warn("process_footage: running in a daemonic process, slices run serially", stacklevel=2)
        workers = 1
    jobs = split_tail(jobs, workers, durations, tuning.slice_seconds)
    failed: dict[Path, str] = {}  # files that failed, with the message
    outcomes: list[VisionResult | FootageDecodeError] = []
    retried: list[VisionResult] = []  # failed runs' other files, rerun serially
    if workers == 1:
        failed_sources: dict[int, FootageDecodeError] = {}  # id of a job's file (or group) -> its failure
        for job in jobs:
            if id(job[0]) in failed_sources:
                outcomes.append(failed_sources[id(job[0])])  # a long file with a failed slice is left out whole
                continue
            try:
                outcomes.append(_slice_worker((*job, 0), on_frame))
            except FootageDecodeError as exc:
                if on_error == "raise":
                    raise
                outcomes.append(exc)
                failed_sources[id(job[0])] = exc
                if isinstance(job[0], tuple):  # rerun now, so a frame sink still sees time order
                    retried += _rerun_group(job[0], exc, settings, tuning, failed, on_frame)
    else:
        threads = max(1, (os.cpu_count() or 1) // workers)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_pool_worker_init, initargs=(threads,)) as pool:
            futures = [pool.submit(_slice_worker, (*job, threads)) for job in jobs]
            try:
                for future in futures:
                    try:
                        outcomes.append(future.result())
                    except FootageDecodeError as exc:
                        if on_error == "raise":
                            raise
                        outcomes.append(exc)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    failed = _failed_paths(outcomes) | failed
    results = []
    for job, outcome in zip(jobs, outcomes):
        if isinstance(outcome, FootageDecodeError):
            continue
        paths = {Path(f.path) for f in (job[0] if isinstance(job[0], tuple) else (job[0],))}
        if paths & set(failed):
            continue  # a long file with one failed slice is left out whole
        results.append(outcome)
    if workers > 1 and failed and any(isinstance(job[0], tuple) for job in jobs):
        # a failed segment spoils only its group's run: rerun the group's other files
        for job, outcome in zip(jobs, outcomes):
            if isinstance(outcome, FootageDecodeError) and isinstance(job[0], tuple):
                retried += _rerun_group(job[0], outcome, settings, tuning, failed)
    if retried:
        results += retried
        results.sort(key=lambda r: r.frames["ts_utc"].min() if not r.frames.is_empty() else datetime.max.replace(tzinfo=UTC))
    errors.extend(failed.items())
    combined = combine_results(results, tuning.tracks)
    combined.errors = errors
    combined.stats["wall_s"] = time.perf_counter() - wall0
    combined.stats["workers"] = workers
    return combined
