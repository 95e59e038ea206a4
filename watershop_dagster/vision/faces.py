"""Face detection, quality and 128-d embeddings: a small plain API around dlib/face_recognition.

* `detect_faces(rgb, regions, min_face_px)` runs dlib's HOG frontal-face detector on region crops,
  each scaled so the smallest wanted face becomes the ~72 px the detector needs (a 40 px face
  crop is enlarged 1.8×; a crop around a known 150 px face is shrunk), and merges overlapping
  boxes in full-frame coordinates. dlib's `run()` gives a detection score (face_recognition's
  face_locations does not).
* `face_quality(...)` in [0, 1]: size, sharpness (variance of the Laplacian on a fixed-size
  grayscale face) and pose (symmetry of the 5 landmarks: nose under the eyes' midpoint, level eyes).
* `embed_faces(rgb, detections)`: face_recognition.face_encodings with the known boxes,
  num_jitters=1 (deterministic), 5-point alignment ("small": the alignment dlib's ResNet was
  trained with; the 68-point model gave no better separation on the fixtures and is slower).

The models are dlib's, shipped by face_recognition_models; nothing is downloaded.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from watershop_dagster.vision.motion import Box, SearchRegion

#: dlib's HOG detector (80×80 window, pyramid step 5/6) finds faces whose box is ≥ ~72 px; crops
#: are scaled so the smallest wanted face reaches this size.
DLIB_MIN_FACE_PX = 72.0
#: a face this wide (px) has full detail for the 150 px embedding chip: size quality 1
GOOD_FACE_PX = 100.0
#: variance of the Laplacian of a 64×64 grayscale face at which sharpness quality is 0.5
SHARPNESS_HALF = 60.0
EMBEDDING_DIM = 128
EMBEDDING_MODEL = "small"


@dataclass(frozen=True)
class Detection:
    """A face box in full-frame pixels (face_recognition's (top, right, bottom, left) order)."""

    top: int
    right: int
    bottom: int
    left: int
    score: float  # dlib HOG detection score (> 0 at the default threshold)
    quality: float = math.nan
    landmarks: tuple[tuple[float, float], ...] = field(default=(), compare=False, repr=False)

    @property
    def location(self) -> tuple[int, int, int, int]:
        return (self.top, self.right, self.bottom, self.left)

    @property
    def box(self) -> Box:
        return Box(self.left, self.top, self.right, self.bottom)

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def shifted(self, dx: int, dy: int) -> Detection:
        return replace(
            self,
            top=self.top + dy,
            bottom=self.bottom + dy,
            left=self.left + dx,
            right=self.right + dx,
            landmarks=tuple((x + dx, y + dy) for x, y in self.landmarks),
        )


# --------------------------------------------------------------------------------------------
# models (loaded once per process)


@lru_cache(maxsize=1)
def face_models():
    """The face_recognition module, imported once without its pkg_resources warning on the terminal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # face_recognition_models uses deprecated pkg_resources
        import face_recognition

    return face_recognition


@lru_cache(maxsize=1)
def hog_detector():
    """dlib's frontal face detector. Building it from dlib's built-in model costs ~0.75 CPU s in
    every process (a camera-day's vision step, each pool worker); its binary save loads in ~2 ms
    and detects the same, so the save is kept in the user's cache folder (per dlib version)."""
    import dlib

    path = detector_cache_dir() / f"dlib-{dlib.__version__}-frontal_face_detector.svm"
    try:
        return dlib.fhog_object_detector(str(path))
    except RuntimeError:  # not cached yet (or unreadable): build it and cache it
        pass
    detector = dlib.get_frontal_face_detector()
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        detector.save(str(staging))
        os.replace(staging, path)  # atomic: a concurrent process reads the old state or the whole file
    except (OSError, RuntimeError):
        staging.unlink(missing_ok=True)  # a read-only home: build it each time, as before
    return detector


def detector_cache_dir() -> Path:
    """$XDG_CACHE_HOME/watershop (default ~/.cache/watershop)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "watershop"


def _shape_predictor():
    return face_models().api.pose_predictor_5_point


def _dlib_rect(det: Detection):
    import dlib

    return dlib.rectangle(int(det.left), int(det.top), int(det.right), int(det.bottom))


# --------------------------------------------------------------------------------------------
# detection


def _as_region(region, min_face_px: float) -> SearchRegion:
    if isinstance(region, SearchRegion):
        return region
    return SearchRegion(Box(*[int(v) for v in region]), float(min_face_px))


def nms(detections: Sequence[Detection], iou_threshold: float = 0.3) -> list[Detection]:
    """Keep the best-scoring of overlapping boxes (IoU above threshold, or one box's centre inside
    the other), then order by position (top, left) so output order is stable."""
    kept: list[Detection] = []
    for det in sorted(detections, key=lambda d: (-d.score, d.top, d.left)):
        box = det.box
        cx, cy = box.center
        duplicate = False
        for other in kept:
            ob = other.box
            ox, oy = ob.center
            if (
                box.iou(ob) > iou_threshold
                or (ob.x0 <= cx < ob.x1 and ob.y0 <= cy < ob.y1)
                or (box.x0 <= ox < box.x1 and box.y0 <= oy < box.y1)
            ):
                duplicate = True
                break
        if not duplicate:
            kept.append(det)
    return sorted(kept, key=lambda d: (d.top, d.left))


def detect_faces(
    rgb: np.ndarray,
    regions: Iterable[SearchRegion | Box | tuple[int, int, int, int]] | None = None,
    min_face_px: float = 40,
    *,
    adjust_threshold: float = 0.0,
    with_quality: bool = True,
) -> list[Detection]:
    """Faces in the given regions ((x0, y0, x1, y1) boxes or SearchRegions; None: whole frame).

    Each crop is scaled so a face of the region's min_face_px becomes DLIB_MIN_FACE_PX, searched
    without dlib's own upsampling, and the boxes mapped back and de-duplicated in full-frame
    coordinates. With `with_quality`, each detection carries its 5 landmarks and `face_quality`.
    """
    frame_h, frame_w = rgb.shape[:2]
    if regions is None:
        regions = [SearchRegion(Box(0, 0, frame_w, frame_h), float(min_face_px), "frame")]
    detector = hog_detector()
    found: list[Detection] = []
    for region in regions:
        region = _as_region(region, min_face_px)
        box = region.box.clip(frame_w, frame_h)
        if box.width < 8 or box.height < 8:
            continue
        scale = min(3.0, max(0.2, DLIB_MIN_FACE_PX / max(1.0, region.min_face_px)))
        crop = rgb[box.y0 : box.y1, box.x0 : box.x1]
        if abs(scale - 1.0) < 0.02:
            scale = 1.0
            crop = np.ascontiguousarray(crop)
        else:
            interp = cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA
            crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=interp)
        if crop.shape[0] < 40 or crop.shape[1] < 40:
            continue
        rects, scores, _ = detector.run(crop, 0, adjust_threshold)
        for rect, score in zip(rects, scores):
            left = max(0, int(round(box.x0 + rect.left() / scale)))
            top = max(0, int(round(box.y0 + rect.top() / scale)))
            right = min(frame_w, int(round(box.x0 + (rect.right() + 1) / scale)))
            bottom = min(frame_h, int(round(box.y0 + (rect.bottom() + 1) / scale)))
            if right - left >= 8 and bottom - top >= 8:
                found.append(Detection(top, right, bottom, left, float(score)))
    found = nms(found)
    if with_quality:
        found = [with_face_quality(rgb, det) for det in found]
    return found


# --------------------------------------------------------------------------------------------
# quality


def face_landmarks5(rgb: np.ndarray, det: Detection) -> tuple[tuple[float, float], ...]:
    """dlib's 5 landmarks (two corners of each eye, base of the nose) in full-frame pixels."""
    shape = _shape_predictor()(rgb, _dlib_rect(det))
    return tuple((float(p.x), float(p.y)) for p in shape.parts())


def sharpness(gray_face: np.ndarray) -> float:
    """Variance of the Laplacian on the face resized to 64×64 (size-independent blur measure)."""
    if gray_face.size == 0:
        return 0.0
    face = cv2.resize(gray_face, (64, 64), interpolation=cv2.INTER_AREA if gray_face.shape[0] > 64 else cv2.INTER_LINEAR)
    return float(cv2.Laplacian(face, cv2.CV_64F).var())


def pose_asymmetry(landmarks: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """(yaw proxy, roll in degrees) from 5 landmarks: how far the nose sits from the eyes'
    midpoint along the eye line, in eye distances (0 frontal, ~0.3 at ~30° yaw), and the eye
    line's tilt."""
    if len(landmarks) != 5:
        return (1.0, 90.0)
    pts = np.asarray(landmarks, dtype=np.float64)
    eye_a = pts[0:2].mean(axis=0)
    eye_b = pts[2:4].mean(axis=0)
    nose = pts[4]
    axis = eye_b - eye_a
    dist = float(np.hypot(*axis))
    if dist < 1e-6:
        return (1.0, 90.0)
    unit = axis / dist
    mid = (eye_a + eye_b) / 2
    yaw = abs(float(np.dot(nose - mid, unit))) / dist
    roll = math.degrees(math.atan2(axis[1], axis[0]))
    roll = (roll + 90) % 180 - 90  # eye order does not matter
    return (yaw, roll)


def face_quality_parts(
    rgb: np.ndarray, det: Detection, landmarks: Sequence[tuple[float, float]] | None = None
) -> dict[str, float]:
    """The three factors of `face_quality`, each in [0, 1]."""
    size_q = min(1.0, max(0.0, min(det.width, det.height) / GOOD_FACE_PX))
    h, w = rgb.shape[:2]
    crop = rgb[max(0, det.top) : min(h, det.bottom), max(0, det.left) : min(w, det.right)]
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 and crop.size else crop
    var = sharpness(gray)
    sharp_q = var / (var + SHARPNESS_HALF)
    if landmarks is None:
        landmarks = det.landmarks or face_landmarks5(rgb, det)
    yaw, roll = pose_asymmetry(landmarks)
    pose_q = max(0.0, 1.0 - yaw / 0.35) * max(0.0, 1.0 - abs(roll) / 60.0)
    return {"size": size_q, "sharpness": sharp_q, "pose": pose_q}


def face_quality(
    rgb: np.ndarray, det: Detection, landmarks: Sequence[tuple[float, float]] | None = None
) -> float:
    """Face quality in [0, 1]: weighted geometric mean of size (0.3), sharpness (0.3) and pose
    (0.4), so a face poor in any one of them scores low. ≥ 0.6 is a good face for matching."""
    parts = face_quality_parts(rgb, det, landmarks)
    weights = {"size": 0.3, "sharpness": 0.3, "pose": 0.4}
    log_q = sum(w * math.log(max(parts[k], 1e-3)) for k, w in weights.items())
    return float(min(1.0, max(0.0, math.exp(log_q))))


def with_face_quality(rgb: np.ndarray, det: Detection) -> Detection:
    """The detection with its 5 landmarks and quality filled in."""
    landmarks = face_landmarks5(rgb, det)
    return replace(det, landmarks=landmarks, quality=face_quality(rgb, det, landmarks))


# --------------------------------------------------------------------------------------------
# embeddings


def embed_faces(rgb: np.ndarray, detections: Sequence[Detection], num_jitters: int = 1) -> np.ndarray:
    """128-d dlib ResNet embeddings of the detected faces, (n, 128) float32, in input order."""
    if not detections:
        return np.zeros((0, EMBEDDING_DIM), np.float32)
    fr = face_models()
    rgb = np.ascontiguousarray(rgb)
    encodings = fr.face_encodings(
        rgb, [d.location for d in detections], num_jitters=num_jitters, model=EMBEDDING_MODEL
    )
    return np.asarray(encodings, dtype=np.float32).reshape(len(detections), EMBEDDING_DIM)


def face_patch(rgb: np.ndarray, det: Detection, margin: float = 1.0) -> tuple[np.ndarray, Detection]:
    """A copy of the frame around the face (margin × face size on each side) and the detection
    in the patch's coordinates: enough context to embed the face later without the frame."""
    h, w = rgb.shape[:2]
    pad = int(math.ceil(margin * max(det.width, det.height)))
    x0, y0 = max(0, det.left - pad), max(0, det.top - pad)
    x1, y1 = min(w, det.right + pad), min(h, det.bottom + pad)
    return np.ascontiguousarray(rgb[y0:y1, x0:x1]), det.shifted(-x0, -y0)


def face_jpeg(rgb: np.ndarray, det: Detection, margin: float = 0.25, quality: int = 90) -> bytes:
    """JPEG of the face with a small margin (review crops; only when store_face_crops is on)."""
    patch, _ = face_patch(rgb, det, margin)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(patch, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
