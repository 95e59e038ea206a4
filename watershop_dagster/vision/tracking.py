"""Link face detections across frames into tracks, and choose which detections to embed.

Pure functions and small state machines; no images. A track is one face followed through time:
detections link when their boxes overlap (IoU) or their centres are close relative to the face
size, the sizes are similar, and the time gap is short. The embedding selector keeps the cost of a
long track small: the best face of the track's first second, then only a notably better face, or a
refresh after a long time, up to a cap; every track gets at least one embedding.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from watershop_dagster.vision.motion import Box


@dataclass(frozen=True)
class TrackParams:
    max_gap_s: float = 3.0  # a face unseen longer than this ends its track
    min_iou: float = 0.2  # boxes overlapping this much link ...
    max_center_dist: float = 1.0  # ... or centres within this many face widths (+ this per second of gap)
    max_center_dist_cap: float = 3.0
    max_size_ratio: float = 2.0  # face widths may differ at most this factor
    max_embedding_distance: float = 0.6  # when both sides have embeddings (stitching)
    # pieces of a track cut by a slice/file boundary may be further apart: a still face is only
    # found again in the next slice once something moves (the embeddings must agree too)
    stitch_max_gap_s: float = 10.0


def link_cost(
    prev: Box,
    prev_t: float,
    box: Box,
    t: float,
    params: TrackParams = TrackParams(),
    prev_embedding: np.ndarray | None = None,
    embedding: np.ndarray | None = None,
    max_gap_s: float | None = None,
) -> float | None:
    """Cost (lower is better) of linking `box` at `t` to a track last seen as `prev` at `prev_t`;
    None when they cannot be the same face. `max_gap_s` overrides params.max_gap_s."""
    dt = t - prev_t
    if dt < 0 or dt > (params.max_gap_s if max_gap_s is None else max_gap_s):
        return None
    wa, wb = max(prev.width, 1), max(box.width, 1)
    if max(wa, wb) / min(wa, wb) > params.max_size_ratio:
        return None
    if prev_embedding is not None and embedding is not None:
        if float(np.linalg.norm(np.asarray(prev_embedding) - np.asarray(embedding))) > params.max_embedding_distance:
            return None
    iou = prev.iou(box)
    (ax, ay), (bx, by) = prev.center, box.center
    dist = math.hypot(ax - bx, ay - by) / max(wa, wb)
    allowed = min(params.max_center_dist_cap, params.max_center_dist * (1.0 + dt))
    if iou < params.min_iou and dist > allowed:
        return None
    return dist + (1.0 - iou)


@dataclass
class Track:
    index: int
    first_t: float
    last_t: float
    last_box: Box
    n: int = 1


@dataclass
class FaceTracker:
    """Online linking: `update(t, boxes)` → track index per box (new tracks get new indices).

    Greedy assignment by `link_cost` between the boxes and the tracks seen within max_gap_s.
    """

    params: TrackParams = field(default_factory=TrackParams)
    tracks: list[Track] = field(default_factory=list)
    _open: set[int] = field(default_factory=set)

    def update(self, t: float, boxes: Sequence[Box]) -> list[int]:
        candidates = []
        for j, box in enumerate(boxes):
            for i in sorted(self._open):
                track = self.tracks[i]
                cost = link_cost(track.last_box, track.last_t, Box(*box), t, self.params)
                if cost is not None:
                    candidates.append((cost, i, j))
        assigned: dict[int, int] = {}
        used: set[int] = set()
        for _cost, i, j in sorted(candidates):
            if j in assigned or i in used:
                continue
            assigned[j] = i
            used.add(i)
        out = []
        for j, box in enumerate(boxes):
            if j in assigned:
                track = self.tracks[assigned[j]]
                track.last_t, track.last_box, track.n = t, Box(*box), track.n + 1
            else:
                track = Track(len(self.tracks), t, t, Box(*box))
                self.tracks.append(track)
                self._open.add(track.index)
            out.append(track.index)
        return out

    def expire(self, t: float) -> list[int]:
        """Close and return the tracks not seen for more than max_gap_s before `t`."""
        closed = sorted(i for i in self._open if t - self.tracks[i].last_t > self.params.max_gap_s)
        self._open.difference_update(closed)
        return closed

    def close_all(self) -> list[int]:
        closed = sorted(self._open)
        self._open.clear()
        return closed

    def following(self, t: float, keep_s: float) -> list[Box]:
        """Last boxes of open tracks seen within `keep_s` of `t` (where to look next)."""
        return [self.tracks[i].last_box for i in sorted(self._open) if t - self.tracks[i].last_t <= keep_s]

    def lost(self, t: float, keep_s: float, window_s: float) -> list[tuple[int, Box]]:
        """(index, last box) of the tracks last seen more than `keep_s` but at most `window_s`
        before `t`: faces no longer followed that may still stand where they were."""
        return [(tr.index, tr.last_box) for tr in self.tracks if keep_s < t - tr.last_t <= window_s]


# --------------------------------------------------------------------------------------------
# which detections to embed


@dataclass(frozen=True)
class EmbeddingPolicy:
    first_window_s: float = 1.0  # the first embedding is the best face of the track's first second
    min_quality: float = 0.5  # ... once one reaches this quality (else the best, at the track's end)
    improve_by: float = 0.1  # later: a face this much better than the best embedded so far
    min_interval_s: float = 2.0  # never two embeddings of a track closer than this
    refresh_s: float = 30.0  # and a fresh look after this long, if nearly as good
    max_per_track: int = 4
    # once a track has an embedding, a held candidate older than this gives way to a newer one
    # (a refresh should show the person as they look now)
    candidate_max_age_s: float = 5.0


@dataclass
class _Candidate:
    key: Hashable
    t: float
    quality: float


@dataclass
class EmbeddingSelector:
    """Online choice of the detections of ONE track to embed.

    offer(key, t, quality) for each detection in time order returns the keys to embed now — the
    current detection or an earlier one held as the pending best (so the caller keeps the image
    patch of `pending_key` only). close() at the track's end returns the last ones.
    """

    policy: EmbeddingPolicy = field(default_factory=EmbeddingPolicy)
    start_t: float | None = None
    n_embedded: int = 0
    best_quality: float = -math.inf
    last_embed_t: float = -math.inf
    pending: _Candidate | None = None

    @property
    def pending_key(self) -> Hashable | None:
        return self.pending.key if self.pending else None

    def offer(self, key: Hashable, t: float, quality: float) -> list[Hashable]:
        if self.start_t is None:
            self.start_t = t
        q = quality if not math.isnan(quality) else 0.0
        pol = self.policy
        if (
            self.pending is None
            or q > self.pending.quality
            or (self.n_embedded > 0 and t - self.pending.t > pol.candidate_max_age_s)
        ):
            self.pending = _Candidate(key, t, q)
        p = self.pending
        if self.n_embedded == 0:
            if t - self.start_t >= pol.first_window_s and p.quality >= pol.min_quality:
                return self._take()
            return []
        if self.n_embedded >= pol.max_per_track or t - self.last_embed_t < pol.min_interval_s:
            return []
        if p.quality >= self.best_quality + pol.improve_by:
            return self._take()
        if t - self.last_embed_t >= pol.refresh_s and p.quality >= max(pol.min_quality, self.best_quality - pol.improve_by):
            return self._take()
        return []

    def close(self) -> list[Hashable]:
        p, pol = self.pending, self.policy
        if p is None:
            return []
        if self.n_embedded == 0:
            return self._take()
        if self.n_embedded < pol.max_per_track and p.quality >= self.best_quality + pol.improve_by and p.t - self.last_embed_t >= pol.min_interval_s:
            return self._take()
        self.pending = None
        return []

    def _take(self) -> list[Hashable]:
        p = self.pending
        assert p is not None
        self.pending = None
        self.n_embedded += 1
        self.best_quality = max(self.best_quality, p.quality)
        self.last_embed_t = p.t
        return [p.key]


# --------------------------------------------------------------------------------------------
# stitching tracks cut by slice/file boundaries


@dataclass(frozen=True)
class TrackEnd:
    """One end of a track: its first (for a later piece) or last (earlier piece) detection."""

    track_id: str
    part: int  # which slice/file result it came from
    t: float  # seconds (any common clock, e.g. UTC epoch)
    box: Box
    embedding: np.ndarray | None = None


def chain_roots(links: Mapping[str, str]) -> dict[str, str]:
    """Each later piece of a track (keys of `links`: later -> earlier) mapped to the earliest piece of
    its chain (A <- B <- C gives B -> A, C -> A)."""
    roots = {}
    for later in links:
        root = later
        while root in links:
            root = links[root]
        roots[later] = root
    return roots


def stitch_pairs(ends: Sequence[TrackEnd], starts: Sequence[TrackEnd], params: TrackParams = TrackParams()) -> dict[str, str]:
    """{later track id: earlier track id} for pieces of the same face in different parts: a track
    ending at most stitch_max_gap_s before another starts, at a matching box (and embedding, when
    both have one). Greedy by cost; each track end links at most one start."""
    candidates = []
    for a in ends:
        for b in starts:
            if a.part >= b.part or a.track_id == b.track_id:
                continue
            cost = link_cost(a.box, a.t, b.box, b.t, params, a.embedding, b.embedding, params.stitch_max_gap_s)
            if cost is not None:
                candidates.append((cost, a.track_id, b.track_id))
    links: dict[str, str] = {}
    used: set[str] = set()
    for _cost, a_id, b_id in sorted(candidates):
        if b_id in links or a_id in used:
            continue
        links[b_id] = a_id
        used.add(a_id)
    return links
