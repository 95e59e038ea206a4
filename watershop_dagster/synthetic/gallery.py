"""Face galleries for synthetic footage: person -> face photos, pre-cropped for cheap compositing.

Every gallery image is a crop of one photo around its (largest) face, found once with
face_recognition's HOG detector, rescaled so the detected face box is `FACE_BOX_PX` square and
placed at the same spot in every crop (see `face_box_in_crop`). The renderer scales crops to the
wanted face size and blends them in with an elliptical mask.

`load_gallery(folder)` reads `<folder>/<person>/*.jpg|png` (folders starting with '_' or '.' are
skipped); with no folder it returns a built-in default gallery made of sample photos that
installed packages ship, so it works on a fresh machine with no shared fixtures:

* ``eileen_collins``: scikit-image ``skimage.data.astronaut()`` (NASA, public domain)
* ``grace_hopper``: matplotlib ``sample_data/grace_hopper.jpg`` (US Navy, public domain)

(Those are the only sample photos in scikit-image, matplotlib, OpenCV and the face_recognition
packages with a face HOG can find at a usable size: ``skimage.data.camera()`` shows a face the
detector misses, ``lfw_subset`` faces are 25x25 grey thumbnails.)
"""

from __future__ import annotations

import itertools
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

log = logging.getLogger(__name__)

Gallery = dict[str, list[np.ndarray]]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# Side of the detected (square) HOG face box inside every gallery crop.
FACE_BOX_PX = 160
# Crop margins around the face box, in face-box sizes: hair above, a bit of neck below.
MARGIN_SIDE = 0.35
MARGIN_TOP = 0.6
MARGIN_BOTTOM = 0.3
# Photos are shrunk to at most this many pixels on the long side before face detection.
DETECT_MAX_SIDE = 900


def crop_size() -> tuple[int, int]:
    """(width, height) of every gallery crop."""
    width = round(FACE_BOX_PX * (1 + 2 * MARGIN_SIDE))
    height = round(FACE_BOX_PX * (1 + MARGIN_TOP + MARGIN_BOTTOM))
    return width, height


def face_box_in_crop() -> tuple[int, int, int, int]:
    """(top, right, bottom, left) of the face box inside a gallery crop, face_recognition's order."""
    left = round(FACE_BOX_PX * MARGIN_SIDE)
    top = round(FACE_BOX_PX * MARGIN_TOP)
    return top, left + FACE_BOX_PX, top + FACE_BOX_PX, left


def _face_locations(image: np.ndarray, upsample: int) -> list[tuple[int, int, int, int]]:
    from watershop_dagster.vision.faces import face_models  # lazily: loading dlib's models costs ~1 s

    return face_models().face_locations(image, number_of_times_to_upsample=upsample, model="hog")


def _largest_face(image: np.ndarray) -> tuple[float, float, float, float] | None:
    """(top, right, bottom, left) of the largest face in `image` (full-resolution coordinates)."""
    height, width = image.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
    small = image if scale == 1.0 else cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    boxes = _face_locations(small, 1)
    if not boxes and max(small.shape[:2]) <= 500:
        boxes = _face_locations(small, 2)
    if not boxes:
        return None
    top, right, bottom, left = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
    return top / scale, right / scale, bottom / scale, left / scale


def crop_face(image: np.ndarray) -> np.ndarray | None:
    """The gallery crop of the largest face in an RGB photo, or None when no face is found."""
    image = np.ascontiguousarray(image[..., :3])
    box = _largest_face(image)
    if box is None:
        return None
    top, right, bottom, left = box
    side = max(bottom - top, right - left)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    x0 = cx - side / 2 - side * MARGIN_SIDE
    y0 = cy - side / 2 - side * MARGIN_TOP
    width, height = crop_size()
    scale = FACE_BOX_PX / side
    # One affine warp crops, scales and pads (edge pixels repeat where the crop leaves the photo).
    matrix = np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]])
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.warpAffine(image, matrix, (width, height), flags=interpolation, borderMode=cv2.BORDER_REPLICATE)


def read_rgb(path: Path) -> np.ndarray:
    """An image file as an RGB uint8 array, EXIF orientation applied."""
    with Image.open(path) as img:
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))


def _person_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def load_gallery(folder: Path | None = None, max_images_per_person: int | None = None) -> Gallery:
    """person -> list of RGB face crops, from `<folder>/<person>/*` or the default gallery.

    `folder` None or missing gives `default_gallery()`. Photos without a detectable face are
    skipped with a warning; people left with no photo are dropped. `max_images_per_person`
    keeps the first N usable photos of each person (sorted by file name).
    """
    if folder is None or not Path(folder).is_dir():
        if folder is not None:
            log.warning("gallery folder %s not found; using the default gallery", folder)
        gallery = default_gallery()
        if max_images_per_person is not None:
            gallery = {person: crops[:max_images_per_person] for person, crops in gallery.items()}
        return gallery
    gallery: Gallery = {}
    for person_dir in _person_folders(Path(folder)):
        crops = list(itertools.islice(_iter_crops(_image_files(person_dir)), max_images_per_person))
        if crops:
            gallery[person_dir.name] = crops
        else:
            log.warning("no usable photo of %s in %s", person_dir.name, person_dir)
    if not gallery:
        raise ValueError(f"no face photos found in {folder} (expected <person>/<photo>.jpg folders)")
    return gallery


def gallery_photos(folder: Path) -> dict[str, list[Path]]:
    """person -> photo files (sorted) of a `<folder>/<person>/*` gallery, without reading them."""
    people = {person_dir.name: _image_files(person_dir) for person_dir in _person_folders(Path(folder))}
    return {person: files for person, files in people.items() if files}


def crops_of(paths: list[Path]) -> list[np.ndarray]:
    """Gallery crops of the given photos; unreadable photos and photos without a face are skipped with a warning."""
    return list(_iter_crops(paths))


def _iter_crops(paths: Iterable[Path]) -> Iterator[np.ndarray]:
    """Crops in photo order, read lazily so a caller that needs only the first few reads no more."""
    for path in paths:
        try:
            crop = crop_face(read_rgb(path))
        except OSError as exc:
            log.warning("cannot read %s: %s", path, exc)
            continue
        if crop is None:
            log.warning("no face found in %s; skipped", path)
            continue
        yield crop


def default_photos() -> dict[str, np.ndarray]:
    """The built-in sample photos (person -> full RGB photo) from installed packages."""
    import skimage.data
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        grace = np.asarray(Image.open(handle).convert("RGB"))
    return {"eileen_collins": np.asarray(skimage.data.astronaut()), "grace_hopper": grace}


@lru_cache(maxsize=1)
def _default_crops() -> tuple[tuple[str, np.ndarray], ...]:
    crops = []
    for person, photo in default_photos().items():
        crop = crop_face(photo)
        if crop is None:  # pragma: no cover - both photos are verified by the tests
            raise RuntimeError(f"no face found in the default photo of {person}")
        crop.setflags(write=False)
        crops.append((person, crop))
    return tuple(crops)


def default_gallery() -> Gallery:
    """Two people from package sample photos; works with no shared fixtures and no network."""
    return {person: [crop.copy()] for person, crop in _default_crops()}


def save_gallery(gallery: Gallery, folder: Path, people: list[str] | None = None) -> list[Path]:
    """Write crops as `<folder>/<person>/<n>.jpg` (e.g. to seed known_people/staff/<name>).

    Files are written atomically (temp name, then rename). Returns the written paths.
    """
    written = []
    for person in people if people is not None else list(gallery):
        target_dir = Path(folder) / person
        target_dir.mkdir(parents=True, exist_ok=True)
        for index, crop in enumerate(gallery[person]):
            path = target_dir / f"{index}.jpg"
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            try:
                Image.fromarray(crop).save(tmp, format="JPEG", quality=95)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            written.append(path)
    return written
