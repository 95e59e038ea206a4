from __future__ import annotations

import numpy as np

from watershop_dagster.vision.motion import (
    Box,
    FrameSampler,
    HeadWatch,
    MotionDetector,
    MotionResult,
    PersonBox,
    SamplerSettings,
    head_box,
    head_interval,
    merge_boxes,
    motion_score,
)

FULL = (1280, 720)
SMALL = (160, 90)


def scene(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(60, 200, (9, 16), dtype=np.uint8)
    return np.kron(base, np.ones((10, 10), np.uint8))  # blocky static background, 160x90


def with_square(frame: np.ndarray, x: int, y: int, size: int = 12, value: int = 250) -> np.ndarray:
    out = frame.copy()
    out[y : y + size, x : x + size] = value
    return out


def noisy(frame: np.ndarray, rng, sigma: float = 2.0) -> np.ndarray:
    return np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255).astype(np.uint8)


def test_static_scene_has_no_motion():
    rng = np.random.default_rng(1)
    det = MotionDetector(FULL, SMALL)
    bg = scene()
    results = [det.update(noisy(bg, rng), i * 0.2) for i in range(20)]
    assert all(r.score == 0.0 and r.boxes == () for r in results)


def test_moving_square_is_found_in_full_resolution():
    det = MotionDetector(FULL, SMALL)
    bg = scene()
    det.update(bg, 0.0)
    det.update(bg, 0.2)
    r = det.update(with_square(bg, 100, 40), 0.4)
    assert r.score > 0.004
    assert len(r.boxes) == 1
    box = r.boxes[0]
    # the square covers x 100-112, y 40-52 of 160x90 → ×8 in 1280x720
    assert box.x0 <= 800 and box.x1 >= 896 and box.y0 <= 320 and box.y1 >= 416
    assert box.width < 250 and box.height < 250
    # it moves: still found, at its new place
    r = det.update(with_square(bg, 60, 40), 0.6)
    assert any(b.x0 <= 480 <= b.x1 for b in r.boxes)


def test_global_brightness_change_is_not_motion():
    det = MotionDetector(FULL, SMALL)
    bg = scene()
    det.update(bg, 0.0)
    r = det.update(np.clip(bg.astype(int) + 30, 0, 255).astype(np.uint8), 0.2)
    assert r.score < 0.004


def test_ghost_of_a_departed_object_fades():
    det = MotionDetector(FULL, SMALL, background_tau_s=1.0)
    bg = scene()
    parked = with_square(bg, 40, 30, size=20)
    t = 0.0
    for _ in range(40):  # an object stands still long enough to become background
        det.update(parked, t)
        t += 0.2
    r = det.update(bg, t)  # it leaves: motion where it was
    assert r.score > 0.004
    for _ in range(3):
        t += 0.2
        r = det.update(bg, t)
    assert r.score == 0.0  # nothing moves any more; the stale background is not motion


def test_motion_score_helper():
    bg = scene()
    assert motion_score(bg, bg) == 0.0
    assert motion_score(bg, with_square(bg, 10, 10, 30)) > 0.05


def test_merge_boxes():
    merged = merge_boxes([Box(0, 0, 10, 10), Box(5, 5, 20, 20), Box(100, 100, 110, 110)])
    assert merged == [Box(0, 0, 20, 20), Box(100, 100, 110, 110)]
    assert merge_boxes([Box(0, 0, 10, 10), Box(14, 0, 20, 10)], gap=5) == [Box(0, 0, 20, 10)]


# ---------------------------------------------------------------- sampler

MOVING = MotionResult(0.02, (Box(400, 200, 600, 500),))
STILL = MotionResult(0.0, ())


def started(sampler: FrameSampler, t: float = -1.0) -> FrameSampler:
    """The sampler past its slice's first frame (searched whole, see the start test)."""
    assert sampler.plan(t, STILL).regions[0].kind == "start"
    return sampler


def test_sampler_searches_a_slices_first_frame_whole_then_needs_motion():
    # a slice starts blind: a customer standing still across its boundary is part of the motion
    # background and followed by nobody, so the first frame is searched whole, moving or not
    for first in (STILL, MOVING):
        plan = FrameSampler(FULL, SamplerSettings(max_fps=5)).plan(0.0, first)
        assert [(r.kind, r.box, r.min_face_px) for r in plan.regions] == [("start", Box(0, 0, *FULL), 40.0)]
    sampler = started(FrameSampler(FULL, SamplerSettings(max_fps=5)))
    # then a still scene with nobody followed is never searched whole again, however long
    assert all(sampler.plan(k * 0.2, STILL) is None for k in range(5000))
    sampler = started(FrameSampler(FULL, SamplerSettings(max_fps=5)))
    assert sampler.plan(0.0, STILL) is None
    assert sampler.plan(0.1, MotionResult(0.001, (Box(0, 0, 50, 50),))) is None  # below threshold
    plan = sampler.plan(0.2, MOVING)
    assert plan is not None and plan.motion_search
    region = plan.regions[0]
    assert region.kind == "motion" and region.min_face_px == 40
    # padded so a face just above the moving blob is inside
    assert region.box.y0 <= 200 - 60 and region.box.x0 <= 400 - 60 and region.box.x1 >= 600 + 60


def test_sampler_rate_limit():
    sampler = FrameSampler(FULL, SamplerSettings(max_fps=2))
    searched = []
    for i in range(150):  # 10 s at 15 fps, motion all the time, a face found every time
        t = i / 15
        plan = sampler.plan(t, MOVING)
        if plan:
            sampler.report(plan, 1)
            searched.append(t)
    assert len(searched) <= 2 * 10 + 1
    assert min(np.diff(searched)) >= 0.5 - 1e-6


def test_sampler_backs_off_when_nothing_is_found():
    settings = SamplerSettings(max_fps=5, empty_searches_before_backoff=3, idle_motion_interval_s=1.0)
    sampler = FrameSampler(FULL, settings)
    searched = []
    for i in range(100):  # 20 s of motion (a fan, a TV) with no face in it
        t = i * 0.2
        plan = sampler.plan(t, MOVING)
        if plan:
            sampler.report(plan, 0)
            searched.append(t)
    gaps = np.diff(searched)
    assert abs(gaps[0] - 0.2) < 1e-9
    assert max(gaps) <= 1.0 + 1e-9
    assert len(searched) < 30  # vs 100 without back-off
    # a still scene resets: the next motion gets the full rate again
    assert sampler.plan(20.0, STILL) is None
    first = sampler.plan(20.2, MOVING)
    sampler.report(first, 0)
    assert sampler.plan(20.4, MOVING) is not None


def test_sampler_follows_tracked_faces_cheaply():
    sampler = started(FrameSampler(FULL, SamplerSettings(max_fps=5, follow_interval_s=0.4, tracked_motion_interval_s=1.0)))
    face = Box(480, 220, 560, 300)
    body_motion = MotionResult(0.03, (Box(430, 200, 620, 700),))  # the person below the face
    other_motion = MotionResult(0.03, (Box(430, 200, 620, 700), Box(1000, 100, 1200, 400)))
    plan = sampler.plan(0.0, body_motion, [face])
    sampler.report(plan, 1)
    kinds = [r.kind for r in plan.regions]
    assert "track" in kinds
    window = plan.regions[kinds.index("track")]
    assert window.box.x0 <= 480 and window.box.x1 >= 560 and window.box.width <= 3 * 80
    assert window.min_face_px >= 0.75 * 80  # looks for a face of about the known size: cheap
    # while the face is found again, blobs it explains are not searched
    plans = []
    for i in range(1, 26):
        p = sampler.plan(i * 0.2, body_motion, [face])
        if p:
            sampler.report(p, 1)
            plans.append(p)
    assert all(r.kind == "track" for p in plans for r in p.regions)
    assert len(plans) <= 14  # following at 2.5 fps, not 5
    # a blob elsewhere (a second person) is searched, at the slower rate while following
    seen = [sampler.plan(5.2 + i * 0.2, other_motion, [face]) for i in range(10)]
    motion_searches = [p for p in seen if p and p.motion_search]
    assert 1 <= len(motion_searches) <= 3


def test_sampler_large_change_searches_whole_frame_for_big_faces():
    sampler = started(FrameSampler(FULL))
    plan = sampler.plan(0.0, MotionResult(0.8, (Box(0, 0, 1280, 720),)))
    assert plan.regions[0].kind == "frame" and plan.regions[0].min_face_px >= 80


def test_sampler_looks_where_a_followed_face_was_lost_ever_less_often():
    # a customer at the counter looks down: the follow loses the face (the tracker stops offering it
    # after track_keep_s and lists it as lost), nothing moves; the window where it was is looked at
    # after lost_face_interval_s, then doubling up to lost_face_max_interval_s, moving or not, for as
    # long as the tracker lists it, and no more once it is followed again
    settings = SamplerSettings(max_fps=5, lost_face_interval_s=2.0, lost_face_max_interval_s=16.0)
    sampler = started(FrameSampler(FULL, settings))
    face = Box(480, 220, 560, 300)
    looks = []
    for k in range(0, 1000):  # 200 s: the face was lost at 10 s, something moves elsewhere at 30-40 s
        t = k * 0.2
        motion = MotionResult(0.03, (Box(1000, 100, 1200, 400),)) if 30.0 <= t < 40.0 else STILL
        plan = sampler.plan(t, motion, [], lost=[(7, face)] if 10.0 <= t <= 70.0 else [])
        if plan is not None:
            looks += [(round(t, 1), r) for r in plan.regions if r.kind == "lost"]
    assert [t for t, _ in looks] == [12.0, 16.0, 24.0, 40.0, 56.0]
    window = looks[0][1]
    assert window.box.x0 <= 480 and window.box.x1 >= 560 and window.box.width <= 3 * 80
    assert window.min_face_px >= 0.75 * 80  # a face of about the known size: cheap
    # found again (a new track followed where it was lost), it is no longer looked for
    sampler = started(FrameSampler(FULL, settings))
    assert [r.kind for r in sampler.plan(2.0, STILL, [], lost=[(7, face)]) or []] == []
    assert [r.kind for r in sampler.plan(4.0, STILL, [], lost=[(7, face)]).regions] == ["lost"]
    again = Box(484, 222, 564, 302)
    assert [r.kind for r in sampler.plan(9.0, STILL, [again], lost=[(7, face)]).regions] == ["track"]


# ---------------------------------------------------------------- people cameras: faces in heads


def test_head_box_is_the_padded_upper_part_of_the_person():
    settings = SamplerSettings(min_face_px=40, head_share=0.5, head_pad_faces=0.5)
    assert head_box(Box(500, 100, 600, 400), FULL, settings) == Box(480, 80, 620, 270)
    # clipped to the frame
    assert head_box(Box(0, 0, 100, 300), FULL, settings) == Box(0, 0, 120, 170)
    assert head_box(Box(1200, 600, 1280, 720), FULL, settings) == Box(1180, 580, 1280, 680)


def test_head_interval_backs_off_to_the_idle_interval():
    settings = SamplerSettings(max_fps=5, empty_searches_before_backoff=3, idle_head_interval_s=1.0)
    assert [head_interval(n, settings) for n in range(7)] == [0.2, 0.2, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_head_watch_backs_off_while_no_face_shows_and_starts_over_when_one_does():
    settings = SamplerSettings(max_fps=5, empty_searches_before_backoff=1, idle_head_interval_s=1.0)
    watch = HeadWatch()
    watch.searched(10.0, False, settings)
    watch.searched(10.2, False, settings)
    assert watch.empty == 2 and abs(watch.due_t - (10.2 + 0.8)) < 1e-9
    watch.searched(11.0, True, settings)
    assert watch.empty == 0 and abs(watch.due_t - 11.2) < 1e-9


PERSON = PersonBox(7, Box(500, 100, 600, 400))


def test_people_plan_searches_heads_not_motion_nor_the_whole_frame():
    sampler = FrameSampler(FULL, SamplerSettings(max_fps=5, min_face_px=40))
    plan = sampler.plan(0.0, MOVING, [], [PERSON])
    assert [r.kind for r in plan.regions] == ["head"]
    assert plan.regions[0].box == head_box(PERSON.box, FULL, sampler.settings)
    assert plan.heads == {7: plan.regions[0].box}
    # nobody tracked: no search, whatever moves (a lighting change, a trolley) and however long it is still
    sampler = FrameSampler(FULL, SamplerSettings(max_fps=5))
    assert all(sampler.plan(k * 0.2, motion, [], []) is None
               for k in range(400) for motion in (MOVING, STILL, MotionResult(0.8, (Box(0, 0, *FULL),))))


def test_people_plan_merges_overlapping_heads_and_skips_people_too_small_for_a_face():
    sampler = FrameSampler(FULL, SamplerSettings(max_fps=5, min_face_px=40, head_min_person_faces=2.0))
    side_by_side = [PersonBox(1, Box(500, 100, 600, 400)), PersonBox(2, Box(590, 110, 690, 410))]
    far = PersonBox(3, Box(100, 100, 160, 250))  # 60 px wide: a face there is under 40 px
    plan = sampler.plan(0.0, MOVING, [], [*side_by_side, far])
    assert set(plan.heads) == {1, 2}
    assert len(plan.regions) == 1 and plan.regions[0].box == plan.heads[1].union(plan.heads[2])


def test_people_plan_leaves_followed_faces_to_their_window_and_backs_off_per_person():
    settings = SamplerSettings(max_fps=5, min_face_px=40, empty_searches_before_backoff=2, idle_head_interval_s=1.0,
                               follow_interval_s=0.4)
    sampler = FrameSampler(FULL, settings)
    face = Box(530, 120, 580, 170)  # followed, in PERSON's head
    other = PersonBox(8, Box(900, 100, 1000, 400))  # nobody's face seen: backs off
    times = {7: [], 8: []}
    for k in range(50):  # 10 s
        t = k * 0.2
        plan = sampler.plan(t, MOVING, [face], [PERSON, other])
        if plan is None:
            continue
        assert all(r.kind in ("track", "head") for r in plan.regions)
        for key in plan.heads:
            times[key].append(t)
        sampler.report(plan, 1, [face])
    assert times[7] == [0.0]  # found there once, then followed: no more head searches
    gaps = np.diff(times[8])
    assert abs(gaps[0] - 0.2) < 1e-9 and max(gaps) <= 1.0 + 1e-9 and len(times[8]) <= 14
    # once the follow loses the face (it turned away, walked off), the person's head is due again
    plan = sampler.plan(10.0, MOVING, [face], [PERSON, other])
    assert 7 not in plan.heads and "track" in [r.kind for r in plan.regions]
    sampler.report(plan, 0, [])
    assert 7 in sampler.plan(10.2, MOVING, [face], [PERSON, other]).heads
