"""People as foreground blobs: a background model on a small YUV frame, morphology, connected components.

No permissively licensed person detector ships as a wheel and nothing may be downloaded, so a
person is "a person-sized region that differs from the empty scene". The model works on a
downscaled frame (`ForegroundSettings.width`, 320 px by default) of luma plus chroma, so a
shirt of the floor's brightness but another colour still stands out.

Why the pieces are there:

* Lighting: luma is compared against `gain × background`, the gain being the median ratio over
  pixels no track covers, so lamps switching or clouds do not light up the whole frame.
* Still people: a running background absorbs anybody who stops (within seconds). Foreground
  pixels under a live track (`protect` boxes passed in by the tracker) are updated
  `protected_tau_s` slowly instead, so a person standing for minutes stays foreground and keeps
  one track, and leaves no ghost behind when walking on; everything else (the floor visible
  around them included) follows the scene within `background_tau_s`.
* Relit background: a blob whose pixels correlate with the background's texture is the same
  surface under other light (a lamp, a reflection) and is absorbed at once.
* Ghosts: something that was part of the first frames' background and then left (a person
  present at start-up) leaves a "ghost" blob. A blob whose boundary shows the background's
  edges rather than the current frame's is such a ghost and is absorbed at once.
* Groups: people side by side merge into one blob; a blob much wider than a person is cut at
  the valleys of its column profile, and a blob that holds several tracked people is cut along
  their last boxes (the tracker passes them as `protect`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import cv2
import numpy as np

#: confidence of a blob with a person's shape; a marginal blob only extends existing tracks
CONFIDENT_SCORE = 0.9
MARGINAL_SCORE = 0.4


@dataclass(frozen=True)
class ForegroundSettings:
    width: int = 320  # processing width (px); height keeps the aspect ratio
    luma_threshold: float = 20.0  # |Y - gain·background| (0..255) that counts as foreground
    chroma_threshold: float = 9.0  # |U - background| or |V - background| that counts as foreground
    background_tau_s: float = 4.0  # time constant of the background outside tracks
    background_interval_s: float = 0.2  # the background is updated at most this often
    protected_tau_s: float = 3600.0  # ... and for foreground under live tracks (a still person stays foreground)
    warmup_s: float = 2.0  # the first seconds learn the background fast, without any protection
    open_px: int = 1  # opening radius (px of the small frame) that removes noise specks
    close_w_px: int = 2  # closing half-width / half-height joining a person's parts
    close_h_px: int = 5
    # a person blob: at least this share of the frame height and this many small-frame pixels
    min_height_share: float = 0.07
    min_area_px: int = 40
    # a person is about this much taller than wide; wider blobs are cut at column-profile valleys
    person_aspect: float = 2.2
    split_valley_share: float = 0.45  # a valley deeper than this share of the peak column splits
    min_fill: float = 0.25  # foreground share of a confident box
    # a blob whose pixels correlate this well with the background's (which has texture: std at
    # least relit_min_std) is the background relit, not a person, and is absorbed at once
    relit_correlation: float = 0.85
    relit_min_std: float = 8.0
    ghost_check_s: float = 1.0  # how often blobs under still tracks are checked for ghosts
    ghost_edge_ratio: float = 0.8  # current-frame edges / background edges below this: ghost


class Detection(NamedTuple):
    """A person candidate in pixels of the small (processing) frame."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float


class PersonDetector(Protocol):
    """What the tracker needs from a detector (Frigate-style: one small interface per detector)."""

    def detect(self, planes: YuvSmall, t: float, protect: Sequence[tuple[float, float, float, float]]) -> list[Detection]: ...


class YuvSmall(NamedTuple):
    """Downscaled planes (float32, same size) of one frame and the full frame's size."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    frame_width: int
    frame_height: int


def small_size(frame_width: int, frame_height: int, width: int) -> tuple[int, int]:
    """Processing size near `width` px wide, an integer fraction of the frame (area scaling by an
    integer factor is several times cheaper than by a fractional one)."""
    factor = max(1, round(frame_width / width))
    return max(1, frame_width // factor), max(1, frame_height // factor)


_YUV_FORMATS = ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p")


def yuv_small_from_av(frame, width: int) -> YuvSmall:
    """Planes of a decoded PyAV frame, read in place (no RGB conversion) and downscaled."""
    size = small_size(frame.width, frame.height, width)
    factor = max(1, round(frame.width / width))
    if frame.format.name not in _YUV_FORMATS:
        frame = frame.reformat(format="yuv420p")
    planes = []
    for index, plane in enumerate(frame.planes[:3]):
        data = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
        if index == 0:
            planes.append(area_shrink(data[: size[1] * factor, : size[0] * factor], factor).astype(np.float32))
        else:
            planes.append(_nearest(data, size).astype(np.float32))
    return YuvSmall(*planes, frame.width, frame.height)


def area_shrink(plane: np.ndarray, factor: int) -> np.ndarray:
    """Area average of a uint8 plane by a whole `factor`, by halvings while the factor is even:
    cv2's halving is vectorised and ~7x cheaper than its 4x (0.05 vs 0.35 ms on a 720p luma
    plane). Each halving rounds, so a value may differ by one grey level from one 4x4 average."""
    while factor > 1:
        step = 2 if factor % 2 == 0 else factor
        plane = cv2.resize(plane, (plane.shape[1] // step, plane.shape[0] // step), interpolation=cv2.INTER_AREA)
        factor //= step
    return plane


def _nearest(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Chroma is already subsampled, so nearest-neighbour is enough for it; a whole-number step is
    a strided view (what cv2's INTER_NEAREST picks then, without its per-pixel pass)."""
    height, width = plane.shape
    step_y, step_x = height // size[1], width // size[0]
    if step_y and step_x and height == step_y * size[1] and width == step_x * size[0]:
        return plane[::step_y, ::step_x]
    return cv2.resize(plane, size, interpolation=cv2.INTER_NEAREST)


def yuv_small_from_rgb(rgb: np.ndarray, width: int) -> YuvSmall:
    """Planes of an RGB uint8 frame (H, W, 3), for frames that never were a video."""
    height, full_width = rgb.shape[:2]
    size = small_size(full_width, height, width)
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    yuv = cv2.cvtColor(small, cv2.COLOR_RGB2YUV).astype(np.float32)
    return YuvSmall(yuv[..., 0].copy(), yuv[..., 1].copy(), yuv[..., 2].copy(), full_width, height)


def _valleys(profile: np.ndarray, parts: int, valley_share: float) -> list[int]:
    """Cut columns splitting `profile` into up to `parts` pieces, at its deepest valleys."""
    if parts < 2 or len(profile) < 6:
        return []
    smooth = np.convolve(profile, np.ones(3) / 3, mode="same")
    peak = float(smooth.max())
    cuts: list[int] = []
    segment_w = len(profile) / parts
    for k in range(1, parts):
        centre = k * segment_w
        lo, hi = max(1, int(centre - segment_w / 2)), min(len(profile) - 1, int(centre + segment_w / 2))
        if hi <= lo:
            continue
        column = lo + int(np.argmin(smooth[lo:hi]))
        if smooth[column] < valley_share * peak:
            cuts.append(column)
    return cuts


class ForegroundDetector:
    """The default `PersonDetector` (see module docstring). Not thread-safe; one per camera stream."""

    def __init__(self, settings: ForegroundSettings = ForegroundSettings()):
        self.settings = settings
        s = settings
        self._bg: list[np.ndarray] | None = None  # float32 Y, U, V planes
        self._t0: float | None = None
        self._last_t: float | None = None  # last background update
        self._last_ghost_check = -math.inf
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * s.open_px + 1, 2 * s.open_px + 1))
        self._close = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * s.close_w_px + 1, 2 * s.close_h_px + 1))
        self.last_mask: np.ndarray | None = None  # foreground mask (uint8 0/1) of the last frame, for inspection

    def reset(self) -> None:
        self._bg = None
        self._t0 = self._last_t = None

    # -- background ------------------------------------------------------------------------

    def _gain(self, y: np.ndarray, bg_y: np.ndarray, free: np.ndarray) -> float:
        sample = free[::3, ::3] & (bg_y[::3, ::3] > 20)
        if sample.sum() < 50:
            return 1.0
        ratio = y[::3, ::3][sample] / bg_y[::3, ::3][sample]
        return float(np.clip(_median(ratio), 0.3, 3.0))

    def _update_background(self, planes: YuvSmall, gain: float, protected: np.ndarray, dt: float, warm: bool) -> None:
        s = self.settings
        alpha = 1.0 - math.exp(-dt / s.background_tau_s) if dt > 0 else 0.0
        if warm:
            alpha = max(alpha, 0.5)
        if not protected.any():
            for plane, current in zip(self._bg, planes[:3]):
                cv2.accumulateWeighted(current, plane, alpha)
            return
        slow = 1.0 - math.exp(-dt / s.protected_tau_s) if dt > 0 else 0.0
        inside = protected.view(np.uint8)
        outside = (~protected).view(np.uint8)
        if abs(gain - 1.0) > 1e-3:
            # protected pixels follow the global brightness at the normal rate, so a lighting step
            # does not leave a stale patch where a person stands
            step = np.float32(1.0 + alpha * (gain - 1.0))
            self._bg[0][protected] *= step
            for chroma in self._bg[1:]:
                chroma[protected] = (chroma[protected] - 128.0) * step + 128.0
        for plane, current in zip(self._bg, planes[:3]):
            cv2.accumulateWeighted(current, plane, alpha, mask=outside)
            cv2.accumulateWeighted(current, plane, slow, mask=inside)

    # -- blobs -----------------------------------------------------------------------------

    def _split(self, mask: np.ndarray, x: int, y: int, w: int, h: int) -> list[tuple[int, int, int, int]]:
        s = self.settings
        parts = math.floor(w * s.person_aspect / max(h, 1) + 0.25)
        if parts < 2:
            return [(x, y, w, h)]
        profile = mask[y : y + h, x : x + w].sum(axis=0).astype(np.float32)
        cuts = _valleys(profile, parts, s.split_valley_share)
        if not cuts:
            return [(x, y, w, h)]
        pieces = []
        edges = [0, *cuts, w]
        for a, b in zip(edges[:-1], edges[1:]):
            sub = mask[y : y + h, x + a : x + b]
            rows = np.flatnonzero(sub.any(axis=1))
            if len(rows) and b - a >= 2:
                pieces.append((x + a, y + int(rows[0]), b - a, int(rows[-1] - rows[0] + 1)))
        return pieces or [(x, y, w, h)]

    def _is_relit(self, y_small: np.ndarray, labels: np.ndarray, index: int, box: tuple[int, int, int, int]) -> bool:
        """The blob shows the background's own texture, only brighter or darker (light, reflections).
        Masked statistics with cv2 (no pixel copies): runs for every person-sized blob of every frame."""
        x, y, w, h = box
        inside = (labels[y : y + h, x : x + w] == index).view(np.uint8)
        if cv2.countNonZero(inside) < 20:
            return False
        min_std = self.settings.relit_min_std
        cur = y_small[y : y + h, x : x + w]
        cur_mean, cur_std = (float(v[0, 0]) for v in cv2.meanStdDev(cur, mask=inside))
        if cur_std < min_std:
            return False
        ref = self._bg[0][y : y + h, x : x + w]
        ref_mean, ref_std = (float(v[0, 0]) for v in cv2.meanStdDev(ref, mask=inside))
        if ref_std < min_std:
            return False
        covariance = cv2.mean(cv2.multiply(cur, ref), mask=inside)[0] - cur_mean * ref_mean
        return covariance / (cur_std * ref_std) >= self.settings.relit_correlation

    def _is_ghost(self, y_small: np.ndarray, labels: np.ndarray, index: int, box: tuple[int, int, int, int]) -> bool:
        x, y, w, h = box
        pad = 2
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(labels.shape[1], x + w + pad), min(labels.shape[0], y + h + pad)
        blob = (labels[y0:y1, x0:x1] == index).astype(np.uint8)
        edge = cv2.morphologyEx(blob, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)).astype(bool)
        if edge.sum() < 10:
            return False

        def strength(img: np.ndarray) -> float:
            gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
            gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
            return float(np.abs(gx)[edge].mean() + np.abs(gy)[edge].mean())

        current = strength(y_small[y0:y1, x0:x1])
        background = strength(self._bg[0][y0:y1, x0:x1])
        return current < self.settings.ghost_edge_ratio * background

    def detect(self, planes: YuvSmall, t: float, protect: Sequence[tuple[float, float, float, float]] = ()) -> list[Detection]:
        """Person candidates in this frame. `protect`: boxes (small-frame px) of live tracks."""
        s = self.settings
        h, w = planes.y.shape
        if self._bg is None or self._bg[0].shape != (h, w):
            self._bg = [planes.y.copy(), planes.u.copy(), planes.v.copy()]
            self._t0 = self._last_t = t
            self.last_mask = np.zeros((h, w), np.uint8)
            return []
        warm = t - self._t0 < s.warmup_s

        protected = np.zeros((h, w), bool)
        if not warm:
            for x1, y1, x2, y2 in protect:
                protected[max(0, int(y1) - 1) : min(h, int(math.ceil(y2)) + 1), max(0, int(x1) - 1) : min(w, int(math.ceil(x2)) + 1)] = True
        bg = self._bg
        gain = self._gain(planes.y, bg[0], ~protected)
        # the expected luma saturates like the sensor does (at 235 in limited-range video, 255 in
        # full range): a bright wall brightened stays at the frame's brightest value
        fg = cv2.absdiff(planes.y, np.minimum(gain * bg[0], float(planes.y.max()))) > s.luma_threshold
        # a brightness gain scales chroma's distance from grey (128) as well
        fg |= cv2.absdiff(planes.u, gain * (bg[1] - 128.0) + 128.0) > s.chroma_threshold
        fg |= cv2.absdiff(planes.v, gain * (bg[2] - 128.0) + 128.0) > s.chroma_threshold
        mask = fg.view(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._open)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close)
        self.last_mask = mask
        ghosts = np.zeros((h, w), bool)
        detections: list[Detection] = []
        if not warm:
            detections = self._blobs(mask, planes, t, protect, ghosts)
        if ghosts.any():  # absorb ghosts at once
            for plane, current in zip(bg, planes[:3]):
                plane[ghosts] = current[ghosts]
            protected &= ~ghosts
        dt = t - self._last_t
        if warm or dt >= s.background_interval_s - 1e-9:
            self._last_t = t
            self._update_background(planes, gain, protected & mask.view(bool), dt, warm)
        return detections

    def _blobs(self, mask, planes: YuvSmall, t: float, protect, ghosts: np.ndarray) -> list[Detection]:
        s = self.settings
        h, w = mask.shape
        min_h = s.min_height_share * h
        # 16-bit labels (a 320 px frame has fewer than 2**16 pixels): ~2.5x cheaper components, same labels
        label_type = cv2.CV_16U if mask.size < 2**16 else cv2.CV_32S
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=label_type)
        check_ghosts = t - self._last_ghost_check >= s.ghost_check_s
        if check_ghosts:
            self._last_ghost_check = t
        out: list[Detection] = []
        # most components are specks: drop them in one vectorised test, not one Python iteration each
        person_sized = (stats[1:, cv2.CC_STAT_AREA] >= s.min_area_px) & (stats[1:, cv2.CC_STAT_HEIGHT] >= 0.6 * min_h)
        for index in (np.flatnonzero(person_sized) + 1).tolist():
            x, y, bw, bh, _ = stats[index].tolist()
            if self._is_relit(planes.y, labels, index, (x, y, bw, bh)) or (
                check_ghosts and self._is_ghost(planes.y, labels, index, (x, y, bw, bh))
            ):
                ghosts |= labels == index
                continue
            inside = [b for b in protect if _ioa(b, (x, y, x + bw, y + bh)) >= 0.5]
            if len(inside) >= 2:  # several tracked people in one blob: keep them apart
                for bx1, by1, bx2, by2 in inside:
                    cx1, cy1, cx2, cy2 = max(bx1, x), max(by1, y), min(bx2, x + bw), min(by2, y + bh)
                    if cx2 > cx1 and cy2 > cy1:
                        out.append(Detection(cx1, cy1, cx2, cy2, MARGINAL_SCORE + 0.2))
                continue
            for px, py, pw, ph in self._split(mask, x, y, bw, bh):
                fill = float(mask[py : py + ph, px : px + pw].mean()) if pw and ph else 0.0
                if ph < 0.6 * min_h:
                    continue
                confident = ph >= min_h and fill >= s.min_fill and ph >= 0.9 * pw
                score = CONFIDENT_SCORE if confident else MARGINAL_SCORE
                out.append(Detection(px, py, px + pw, py + ph, score))
        return out


def _median(values: np.ndarray) -> np.floating:
    """np.median of a 1-d array (the same value), without its dispatch: half the cost on a frame's
    few thousand gain samples."""
    middle = values.size // 2
    if values.size % 2:
        return np.partition(values, middle)[middle]
    part = np.partition(values, (middle - 1, middle))
    return (part[middle - 1] + part[middle]) / 2


def _ioa(inner: tuple[float, float, float, float], outer: tuple[float, float, float, float]) -> float:
    """Share of `inner`'s area that lies inside `outer`."""
    w = min(inner[2], outer[2]) - max(inner[0], outer[0])
    h = min(inner[3], outer[3]) - max(inner[1], outer[1])
    area = (inner[2] - inner[0]) * (inner[3] - inner[1])
    return w * h / area if w > 0 and h > 0 and area > 0 else 0.0
