from __future__ import annotations

import numpy as np

from tests.vision_helpers import link_tracks, select_embeddings
from watershop_dagster.vision.motion import Box
from watershop_dagster.vision.tracking import (
    EmbeddingPolicy,
    EmbeddingSelector,
    FaceTracker,
    TrackEnd,
    TrackParams,
    link_cost,
    stitch_pairs,
)


def face(x: float, y: float, size: int = 80) -> Box:
    return Box(int(x), int(y), int(x) + size, int(y) + size)


def test_link_cost_rules():
    a = face(100, 100)
    assert link_cost(a, 0.0, face(110, 102), 0.2) is not None  # small move
    assert link_cost(a, 0.0, face(400, 100), 0.2) is None  # far away
    assert link_cost(a, 0.0, face(110, 102), 3.5) is None  # too long ago
    assert link_cost(a, 0.0, face(100, 100, size=200), 0.2) is None  # size jump
    assert link_cost(a, 0.0, face(180, 100), 1.5) is not None  # a face width away after 1.5 s
    near = link_cost(a, 0.0, face(105, 100), 0.2)
    farther = link_cost(a, 0.0, face(150, 100), 0.2)
    assert near < farther
    same, other = np.zeros(128), np.full(128, 0.1)  # distance 1.13
    assert link_cost(a, 0.0, face(105, 100), 0.2, TrackParams(), same, same) is not None
    assert link_cost(a, 0.0, face(105, 100), 0.2, TrackParams(), same, other) is None


def test_two_people_walking_past_each_other():
    frames = []
    for i in range(30):
        t = i * 0.2
        frames.append((t, [face(100 + 20 * i, 200), face(800 - 20 * i, 260)]))
    ids = link_tracks(frames)
    assert all(row == ids[0] for row in ids)  # each keeps its track through the crossing
    assert len(set(ids[0])) == 2


def test_gap_splits_and_short_dropout_does_not():
    frames = [(i * 0.2, [face(300, 300)]) for i in range(10)]  # 0 .. 1.8 s
    frames += [(3.0 + i * 0.2, [face(300, 300)]) for i in range(5)]  # back after 1.2 s: same track
    frames += [(8.0 + i * 0.2, [face(300, 300)]) for i in range(5)]  # back after 4 s: new track
    ids = [row[0] for row in link_tracks(frames)]
    assert ids[:15] == [0] * 15
    assert ids[15:] == [1] * 5


def test_tracker_expiry_and_following():
    tracker = FaceTracker(TrackParams(max_gap_s=1.0))
    assert tracker.update(0.0, [face(0, 0), face(500, 0)]) == [0, 1]
    assert tracker.update(0.5, [face(505, 0)]) == [1]
    assert tracker.following(0.6, keep_s=0.3) == [face(505, 0)]
    assert tracker.expire(1.2) == [0]
    assert tracker.close_all() == [1]
    # lost: seen more than keep_s but at most window_s ago, open or closed, each once at its last box
    assert tracker.lost(0.9, keep_s=0.3, window_s=1.0) == [(0, face(0, 0)), (1, face(505, 0))]
    assert tracker.lost(0.9, keep_s=0.6, window_s=1.0) == [(0, face(0, 0))]
    assert tracker.lost(1.4, keep_s=0.3, window_s=1.0) == [(1, face(505, 0))]


# ---------------------------------------------------------------- embedding selection


def test_long_track_costs_few_embeddings():
    policy = EmbeddingPolicy()
    times = [i * 0.2 for i in range(300)]  # a minute at the counter, 5 detections a second
    rng = np.random.default_rng(0)
    qualities = list(np.clip(0.55 + 0.3 * rng.random(300), 0, 1))
    chosen = select_embeddings(times, qualities, policy)
    assert 1 <= len(chosen) <= policy.max_per_track
    # the first is the best of the first second
    first_second = [i for i, t in enumerate(times) if t <= policy.first_window_s]
    assert chosen[0] == max(first_second, key=lambda i: qualities[i])


def test_embedding_policy_improvement_and_refresh():
    policy = EmbeddingPolicy(first_window_s=1.0, min_quality=0.5, improve_by=0.1, min_interval_s=2.0, refresh_s=30.0)
    times = [i * 0.5 for i in range(120)]
    quality = [0.6] * 120
    quality[10] = 0.65  # +0.05: not worth it
    quality[20] = 0.9  # +0.3 at 10 s: embedded
    chosen = select_embeddings(times, quality, policy)
    assert 20 in chosen and 10 not in chosen
    assert chosen[0] == 0  # 0.6 in the first second (ties keep the earliest)
    # refreshes need nearly the best quality: 0.6 < 0.9 - 0.1, so none in this track
    assert len(chosen) == 2
    quality = [0.6] * 120
    chosen = select_embeddings(times, quality, policy)
    # a fresh, recent look every 30 s of this 60 s track
    assert len(chosen) == 3 and times[chosen[0]] == 0.0
    assert 30.0 - policy.candidate_max_age_s <= times[chosen[1]] <= 30.0
    assert times[chosen[2]] - times[chosen[1]] >= 30.0 - policy.candidate_max_age_s


def test_every_track_gets_one_embedding_even_if_poor():
    assert select_embeddings([0.0, 0.2], [0.2, 0.3]) == [1]
    assert select_embeddings([0.0], [float("nan")]) == [0]
    assert select_embeddings([], []) == []


def test_selector_returns_pending_candidate_later():
    sel = EmbeddingSelector(EmbeddingPolicy(first_window_s=1.0))
    assert sel.offer("a", 0.0, 0.7) == []
    assert sel.offer("b", 0.5, 0.9) == []
    assert sel.pending_key == "b"
    assert sel.offer("c", 1.0, 0.6) == ["b"]  # window over: the best so far, not the current one
    assert sel.pending_key is None
    assert sel.close() == []


# ---------------------------------------------------------------- stitching


def test_stitch_pairs_links_pieces_across_parts():
    ends = [
        TrackEnd("A", 0, 59.8, face(100, 100)),
        TrackEnd("B", 0, 59.9, face(700, 100)),
        TrackEnd("Z", 0, 30.0, face(100, 100)),  # ended long before
    ]
    starts = [
        TrackEnd("C", 1, 60.0, face(105, 100)),
        TrackEnd("D", 1, 60.1, face(690, 100)),
        TrackEnd("E", 1, 60.0, face(400, 400)),  # someone new
        TrackEnd("F", 0, 59.9, face(100, 100)),  # same part: never stitched
    ]
    assert stitch_pairs(ends, starts) == {"C": "A", "D": "B"}
    # an embedding mismatch prevents the link
    e1, e2 = np.zeros(128, np.float32), np.full(128, 0.1, np.float32)
    ends = [TrackEnd("A", 0, 59.8, face(100, 100), e1)]
    starts = [TrackEnd("C", 1, 60.0, face(105, 100), e2)]
    assert stitch_pairs(ends, starts) == {}
