"""Scoring person tracks against ground-truth boxes: detection recall/precision, CLEAR MOT, IDF1.

The CLEAR (MOTA, ID switches) and identity (IDF1) metrics are the `trackers` package's
implementations; this module only lines up frames and boxes. Ground-truth boxes less visible
than `min_visibility` (hidden behind other people) are "don't care": neither a miss when not
found nor a false positive when found, as in the MOT benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl
from trackers.eval import compute_clear_metrics, compute_identity_metrics

from watershop_dagster.people.schema import PERSON_OBSERVATIONS


@dataclass(frozen=True)
class TrackScore:
    frames: int
    people: int
    tracks: int
    recall: float
    precision: float
    mota: float
    idf1: float
    id_switches: int
    fragmentations: int

    def line(self) -> str:
        return (
            f"recall {self.recall:.3f}  precision {self.precision:.3f}  MOTA {self.mota:.3f}  IDF1 {self.idf1:.3f}  "
            f"ID switches {self.id_switches}  tracks {self.tracks} vs people {self.people}"
        )


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of (n, 4) and (m, 4) xyxy boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def processed_times(times: list[float], max_fps: float | None) -> list[float]:
    """The frame times (seconds) a tracker with `max_fps` processes: the same rule as PeopleTracker."""
    if not max_fps:
        return list(times)
    out, last = [], -np.inf
    for t in times:
        if t - last >= 1.0 / max_fps - 1e-6:
            out.append(t)
            last = t
    return out


def score_tracks(
    observations: pl.DataFrame,
    truth: pl.DataFrame,
    start: datetime,
    fps: float,
    *,
    max_fps: float | None = None,
    iou: float = 0.5,
    min_visibility: float = 0.3,
) -> TrackScore:
    """Score PERSON_OBSERVATIONS against truth boxes (synthetic.supermarket.BOX_SCHEMA: person,
    frame, x1..y2, visibility) on the frames the tracker processed (all truth frames, thinned by `max_fps`)."""
    assert set(PERSON_OBSERVATIONS.names()) <= set(observations.columns)
    obs = observations.with_columns(
        ((pl.col("ts") - pl.lit(start)).dt.total_microseconds() * fps / 1e6).round().cast(pl.Int64).alias("frame")
    )
    n_frames = int(truth["frame"].max()) + 1 if not truth.is_empty() else 0
    keep = {round(t * fps) for t in processed_times([i / fps for i in range(n_frames)], max_fps)}
    gt_by_frame = {f: g for (f,), g in truth.filter(pl.col("frame").is_in(list(keep))).group_by(["frame"])}
    obs_by_frame = {f: g for (f,), g in obs.filter(pl.col("frame").is_in(list(keep))).group_by(["frame"])}
    people = {p: i for i, p in enumerate(sorted(truth["person"].unique().to_list()))}
    tracks = {t: i for i, t in enumerate(sorted(observations["track_id"].unique().to_list()))}
    gt_ids, tr_ids, sims = [], [], []
    for frame in sorted(keep):
        g = gt_by_frame.get(frame)
        o = obs_by_frame.get(frame)
        g_boxes = g.select("x1", "y1", "x2", "y2").to_numpy() if g is not None else np.zeros((0, 4))
        g_vis = g["visibility"].to_numpy() if g is not None else np.zeros(0)
        g_id = np.array([people[p] for p in g["person"]], int) if g is not None else np.zeros(0, int)
        o_boxes = o.select("x1", "y1", "x2", "y2").to_numpy() if o is not None else np.zeros((0, 4))
        o_id = np.array([tracks[t] for t in o["track_id"]], int) if o is not None else np.zeros(0, int)
        # drop ground truth hidden behind others, and tracker boxes that matched only such ground truth
        hidden = g_vis < min_visibility
        if hidden.any() and len(o_boxes):
            m = box_iou(g_boxes, o_boxes)
            visible_best = m[~hidden].max(axis=0) if (~hidden).any() else np.zeros(len(o_boxes))
            hidden_best = m[hidden].max(axis=0)
            drop = (hidden_best >= iou) & (visible_best < iou)
            o_boxes, o_id = o_boxes[~drop], o_id[~drop]
        g_boxes, g_id = g_boxes[~hidden], g_id[~hidden]
        gt_ids.append(g_id)
        tr_ids.append(o_id)
        sims.append(box_iou(g_boxes, o_boxes))
    clear = compute_clear_metrics(gt_ids, tr_ids, sims, threshold=iou)
    ident = compute_identity_metrics(gt_ids, tr_ids, sims, threshold=iou)
    return TrackScore(
        frames=len(keep),
        people=len(people),
        tracks=len(tracks),
        recall=float(clear["CLR_Re"]),
        precision=float(clear["CLR_Pr"]),
        mota=float(clear["MOTA"]),
        idf1=float(ident["IDF1"]),
        id_switches=int(clear["IDSW"]),
        fragmentations=int(clear.get("Frag", 0)),
    )
