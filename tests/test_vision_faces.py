from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.vision_helpers import face_distance
from watershop_dagster.vision.faces import (
    Detection,
    detect_faces,
    detector_cache_dir,
    embed_faces,
    face_jpeg,
    face_patch,
    face_quality,
    hog_detector,
    pose_asymmetry,
)
from watershop_dagster.vision.motion import Box, SearchRegion

PEOPLE = ["John_Salley", "John_Savage", "John_Schneider", "John_Simm"]


def load(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return np.ascontiguousarray(image[:, :, ::-1])


def one_face(rgb: np.ndarray) -> Detection:
    dets = detect_faces(rgb, None, 40)
    assert dets, "no face found"
    return max(dets, key=lambda d: d.width)


@pytest.fixture(scope="module")
def gallery(faces_dir) -> dict[str, np.ndarray]:
    """Three photos of each of four people → their embeddings."""
    out = {}
    for person in PEOPLE:
        vectors = []
        for path in sorted((faces_dir / person).glob("*.jpg"))[:3]:
            rgb = load(path)
            vectors.append(embed_faces(rgb, [one_face(rgb)])[0])
        out[person] = np.stack(vectors)
    return out


def test_embeddings_same_person_close_different_far(gallery):
    for person, vectors in gallery.items():
        assert vectors.dtype == np.float32 and vectors.shape == (3, 128)
        same = face_distance(vectors, vectors)[np.triu_indices(3, 1)]
        assert same.max() < 0.6, person
        for other, others in gallery.items():
            if other != person:
                assert face_distance(vectors, others).min() > 0.6, (person, other)


def test_embedding_is_deterministic_and_needs_only_a_patch(faces_dir):
    rgb = load(faces_dir / "_probe" / "obama-720p.jpg")
    det = one_face(rgb)
    a = embed_faces(rgb, [det])
    assert np.array_equal(a, embed_faces(rgb, [det]))
    patch, in_patch = face_patch(rgb, det)
    assert patch.shape[0] < rgb.shape[0]
    assert np.allclose(a, embed_faces(patch, [in_patch]), atol=1e-5)
    assert embed_faces(rgb, []).shape == (0, 128)


def test_detects_several_and_small_faces(faces_dir):
    probe = faces_dir / "_probe"
    assert len(detect_faces(load(probe / "two_people.jpg"), None, 40)) == 2
    assert len(detect_faces(load(probe / "obama_and_biden.jpg"), None, 80)) == 3  # and a girl, lower right
    assert detect_faces(load(probe / "dogs.jpg"), None, 40) == []
    small = load(probe / "obama-240p.jpg")  # 427x240, face ~50 px
    dets = detect_faces(small, None, 40)
    assert len(dets) == 1 and dets[0].width < 80
    assert dets[0].score > 0 and 0 < dets[0].quality <= 1 and len(dets[0].landmarks) == 5


def test_region_search_finds_the_same_face_in_frame_coordinates(faces_dir):
    rgb = load(faces_dir / "_probe" / "obama-720p.jpg")
    full = one_face(rgb)
    region = Box(full.left - 60, full.top - 80, full.right + 90, full.bottom + 50)
    dets = detect_faces(rgb, [region], 40)
    assert len(dets) == 1
    assert full.box.iou(dets[0].box) > 0.7
    # a known big face: search the window at reduced scale (cheap) and still find it
    window = detect_faces(rgb, [SearchRegion(region, 0.8 * full.width, "track")], 40)
    assert len(window) == 1 and full.box.iou(window[0].box) > 0.6
    # overlapping regions do not duplicate the face
    assert len(detect_faces(rgb, [region, region.pad(20), Box(0, 0, rgb.shape[1], rgb.shape[0])], 40)) == 1
    # no face where it is not searched
    assert detect_faces(rgb, [Box(0, 0, 200, 200)], 40) == []


def test_face_quality_prefers_sharp_large_frontal(faces_dir):
    rgb = load(faces_dir / "_probe" / "obama-720p.jpg")
    det = one_face(rgb)
    sharp = face_quality(rgb, det)
    blurred = cv2.GaussianBlur(rgb, (0, 0), 4)
    assert face_quality(blurred, det) < sharp - 0.1
    small = cv2.resize(rgb, None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA)
    small_det = one_face(cv2.resize(small, None, fx=1.0, fy=1.0))
    assert face_quality(small, small_det) < sharp
    assert 0.0 <= face_quality(blurred, det) <= sharp <= 1.0


def test_pose_asymmetry():
    frontal = ((60, 40), (45, 40), (20, 40), (35, 40), (40, 60))
    turned = ((60, 40), (45, 40), (20, 40), (35, 40), (52, 60))
    assert pose_asymmetry(frontal)[0] == pytest.approx(0.0)
    assert pose_asymmetry(turned)[0] > 0.25
    assert abs(pose_asymmetry(frontal)[1]) < 1e-9


def test_face_jpeg(faces_dir):
    rgb = load(faces_dir / "_probe" / "obama-480p.jpg")
    data = face_jpeg(rgb, one_face(rgb))
    assert data[:2] == b"\xff\xd8"


def test_the_cached_hog_detector_detects_what_dlibs_own_does_and_a_bad_cache_is_rebuilt(faces_dir, tmp_path, monkeypatch):
    import dlib

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    hog_detector.cache_clear()
    try:
        built = hog_detector()  # no cache yet: built from dlib's model and saved
        cached = detector_cache_dir() / f"dlib-{dlib.__version__}-frontal_face_detector.svm"
        assert cached.stat().st_size > 0
        hog_detector.cache_clear()
        loaded = hog_detector()
        reference = dlib.get_frontal_face_detector()
        for path in sorted((faces_dir / PEOPLE[0]).glob("*.jpg"))[:3]:
            rgb = load(path)
            expected = reference.run(rgb, 1, -0.5)
            for detector in (built, loaded):
                rects, scores, kinds = detector.run(rgb, 1, -0.5)
                assert [(r.left(), r.top(), r.right(), r.bottom()) for r in rects] == \
                    [(r.left(), r.top(), r.right(), r.bottom()) for r in expected[0]]
                assert list(scores) == list(expected[1]) and list(kinds) == list(expected[2])
        cached.write_bytes(b"not a detector")
        hog_detector.cache_clear()
        assert hog_detector().num_detectors == reference.num_detectors
        assert cached.stat().st_size > len(b"not a detector")  # rebuilt
    finally:
        hog_detector.cache_clear()
