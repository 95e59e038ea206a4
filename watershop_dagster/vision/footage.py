"""Footage discovery: find a shop's camera files for one local day, and probe them.

Two layouts are understood under a footage root (optionally inside a `<shop_id>/` folder, so one
root can serve several shops whose cameras share names):

* plain:   `<camera>/<YYYY-MM-DD>/<HH-MM-SS>.mp4`, the file's start in the shop's local time;
* frigate: `recordings/<YYYY-MM-DD>/<HH>/<camera>/<MM.SS>.mp4`, Frigate NVR's layout, in UTC.

A file's start time comes from its path only. Files whose path carries no valid time are reported
as `BadFootage` rather than skipped silently; files of cameras the shop does not list are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Literal

from watershop_dagster.config import ShopConfig
from watershop_dagster.vision.layout import (
    FRIGATE_DIR,
    parse_day_folder,
    parse_frigate_path,
    parse_hour_folder,
    require_day_folder,
    video_stem,
)

Layout = Literal["plain", "frigate"]

#: probe: a file whose packets end this much before its declared duration is truncated
TAIL_TOLERANCE_S = 0.5
_PLAIN_NAME_RE = re.compile(r"^(\d{2})-(\d{2})-(\d{2})$")


@dataclass(frozen=True)
class FootageFile:
    """One video file with the wall-clock (UTC) time of its first frame, taken from its path."""

    path: Path
    camera: str
    start_utc: datetime
    layout: Layout = "plain"

    def __post_init__(self) -> None:
        if self.start_utc.tzinfo is None:
            raise ValueError("FootageFile.start_utc must be timezone-aware")

    def local_start(self, tz: tzinfo) -> datetime:
        return self.start_utc.astimezone(tz)


@dataclass(frozen=True, order=True)
class BadFootage:
    path: Path
    reason: str


# --------------------------------------------------------------------------------------------
# path parsing (pure)


def local_to_utc(day: date, clock: time, tz: tzinfo) -> datetime:
    """Local wall time → aware UTC. Ambiguous times (DST fall-back) take the first occurrence;
    times that do not exist (DST spring-forward gap) raise ValueError."""
    naive = datetime.combine(day, clock)
    aware = naive.replace(tzinfo=tz, fold=0)
    utc = aware.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) != naive:
        raise ValueError(f"local time {naive.isoformat()} does not exist in {tz}")
    return utc


def parse_plain_path(rel: Path, tz: tzinfo) -> tuple[str, datetime]:
    """`<camera>/<YYYY-MM-DD>/<HH-MM-SS>.mp4` (relative to the root) → (camera, start_utc).

    Raises ValueError with the reason when the path carries no valid time.
    """
    parts = rel.parts
    if len(parts) != 3:
        raise ValueError("expected <camera>/<YYYY-MM-DD>/<HH-MM-SS>.mp4")
    camera, day_text, name = parts
    day = require_day_folder(day_text)
    match = _PLAIN_NAME_RE.match(video_stem(name))
    if not match:
        raise ValueError(f"file name {name!r} is not HH-MM-SS.mp4")
    hour, minute, second = map(int, match.groups())
    try:
        clock = time(hour, minute, second)
    except ValueError:
        raise ValueError(f"file name {name!r} is not a valid time of day") from None
    return camera, local_to_utc(day, clock, tz)


def local_day_bounds_utc(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the local calendar day (23/24/25 h long around DST changes)."""
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


# --------------------------------------------------------------------------------------------
# filesystem walking


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _children(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if _visible(p))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []


def _files_under(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    for child in _children(path):
        yield from _files_under(child)


def _camera_roots(root: Path, shop: ShopConfig) -> list[Path]:
    """Folders that may hold this shop's camera folders and `recordings/` tree."""
    roots = [root]
    if (root / shop.id).is_dir() and shop.id not in shop.cameras:
        roots.append(root / shop.id)
    return roots


def _frigate_dir(base: Path) -> Path | None:
    if base.name == FRIGATE_DIR and base.is_dir():
        return base
    if (base / FRIGATE_DIR).is_dir():
        return base / FRIGATE_DIR
    return None


def _plain_scan(base: Path, shop: ShopConfig, days: set[date] | None, cameras: list[str]):
    """Yields FootageFile | BadFootage for plain-layout files of the shop's cameras.

    With `days`, only the folders of those local days are read (a local day's files all sit in
    the folder named by that day); malformed day folders are reported only when `days` is None
    (a full scan), since their day cannot be known.
    """
    tz = shop.tz
    for camera in cameras:
        camera_dir = base / camera
        if not camera_dir.is_dir():
            continue
        for day_dir in _children(camera_dir):
            day = parse_day_folder(day_dir.name) if day_dir.is_dir() else None
            if day is None:
                if days is None:
                    for file in _files_under(day_dir):
                        yield BadFootage(file, _reason(file.relative_to(base), lambda r: parse_plain_path(r, tz)))
                continue
            if days is not None and day not in days:
                continue
            for file in _files_under(day_dir):
                rel = file.relative_to(base)
                try:
                    cam, start = parse_plain_path(rel, tz)
                except ValueError as exc:
                    yield BadFootage(file, str(exc))
                    continue
                yield FootageFile(start_utc=start, camera=cam, path=file, layout="plain")


def _frigate_scan(rec: Path, utc_days: set[date] | None, cameras: set[str]):
    for day_dir in _children(rec):
        day = parse_day_folder(day_dir.name) if day_dir.is_dir() else None
        if day is None:
            if utc_days is None:
                for file in _files_under(day_dir):
                    rel = file.relative_to(rec)
                    if len(rel.parts) == 4 and rel.parts[2] not in cameras:
                        continue
                    yield BadFootage(file, _reason(rel, parse_frigate_path))
            continue
        if utc_days is not None and day not in utc_days:
            continue
        for file in _files_under(day_dir):
            rel = file.relative_to(rec)
            if len(rel.parts) == 4 and rel.parts[2] not in cameras:
                continue  # another camera's files (another shop, or not configured)
            try:
                cam, start = parse_frigate_path(rel)
            except ValueError as exc:
                yield BadFootage(file, str(exc))
                continue
            yield FootageFile(start_utc=start, camera=cam, path=file, layout="frigate")


def _reason(rel: Path, parse) -> str:
    try:
        parse(rel)
    except ValueError as exc:
        return str(exc)
    return "unexpected location"


def _scan(
    root: Path, shop: ShopConfig, day: date | None, cameras: list[str] | None = None
) -> Iterable[FootageFile | BadFootage]:
    """Files of `cameras` (default: all the shop's), and bad paths that name no other camera."""
    root = Path(root)
    cameras = shop.cameras if cameras is None else cameras
    plain_days = None if day is None else {day}
    utc_days = None
    if day is not None:
        start, end = local_day_bounds_utc(day, shop.tz)
        utc_days = {start.date() + timedelta(days=i) for i in range((end.date() - start.date()).days + 1)}
    for base in _camera_roots(root, shop):
        yield from _plain_scan(base, shop, plain_days, cameras)
        rec = _frigate_dir(base)
        if rec is not None:
            yield from _frigate_scan(rec, utc_days, set(cameras))


def scan_footage(root: Path, shop: ShopConfig) -> tuple[list[FootageFile], list[BadFootage]]:
    """Every footage file of the shop's cameras under `root`, all days, plus every bad path."""
    good: list[FootageFile] = []
    bad: list[BadFootage] = []
    for item in _scan(root, shop, None):
        (good if isinstance(item, FootageFile) else bad).append(item)
    return _sorted_files(good), sorted(set(bad))


def _sorted_files(files: list[FootageFile]) -> list[FootageFile]:
    return sorted(set(files), key=lambda f: (f.start_utc, f.camera, str(f.path)))


def discover_footage(
    root: Path, shop: ShopConfig, day: date, cameras: list[str] | None = None
) -> tuple[list[FootageFile], list[BadFootage]]:
    """Files of the shop's cameras (or only of `cameras`) whose start falls on local `day`, sorted
    by (start, camera), plus files of that camera/day whose path carries no valid time (and bad
    Frigate paths outside any camera folder).

    Frigate hour folders are in UTC, so the neighbouring UTC dates are read too and only files
    starting within the local day are kept. Bad files in Frigate folders of a UTC date that
    overlaps the local day are reported (a bad name in a boundary hour may be listed for both
    local days). Files in malformed day folders are only reported by `scan_footage`.
    """
    start, end = local_day_bounds_utc(day, shop.tz)
    good: list[FootageFile] = []
    bad: list[BadFootage] = []
    for item in _scan(root, shop, day, cameras):
        if isinstance(item, FootageFile):
            if start <= item.start_utc < end:
                good.append(item)
        elif _bad_belongs_to_day(item.path, start, end):
            bad.append(item)
    return _sorted_files(good), sorted(set(bad))


def _bad_belongs_to_day(path: Path, start: datetime, end: datetime) -> bool:
    """A bad Frigate file belongs to the local day if its hour folder (when valid) overlaps it."""
    parts = path.parts
    if FRIGATE_DIR not in parts:
        return True  # plain layout: only the day's own folder was read
    i = len(parts) - 1 - parts[::-1].index(FRIGATE_DIR)
    rest = parts[i + 1 :]
    utc_day = parse_day_folder(rest[0]) if rest else None
    if utc_day is None:
        return False
    hour = parse_hour_folder(rest[1]) if len(rest) >= 2 else None
    if hour is not None:
        hour_start = datetime.combine(utc_day, time(hour), tzinfo=UTC)
        return hour_start < end and hour_start + timedelta(hours=1) > start
    day_start = datetime.combine(utc_day, time(0), tzinfo=UTC)
    return day_start < end and day_start + timedelta(days=1) > start


# --------------------------------------------------------------------------------------------
# probing


def probe_footage(f: FootageFile | Path) -> str | None:
    """None when the file looks usable, else why not: missing, zero-byte, truncated, corrupt,
    no video stream, unknown duration, or the first frame does not decode."""
    import av

    path = Path(f.path if isinstance(f, FootageFile) else f)
    try:
        size = path.stat().st_size
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if size == 0:
        return "zero-byte file"
    try:
        container = av.open(str(path), timeout=30)
    except av.FFmpegError as exc:
        return f"cannot open (truncated or corrupt): {exc}"
    except OSError as exc:
        return f"unreadable: {exc}"
    try:
        if not container.streams.video:
            return "no video stream"
        stream = container.streams.video[0]
        stream.thread_count = 1  # one frame to decode: a thread pool would cost more than it saves
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        if duration is None or duration <= 0:
            return "unknown duration"
        try:
            frame = next(container.decode(stream), None)
        except av.FFmpegError as exc:
            return f"first frame does not decode: {exc}"
        if frame is None:
            return "no decodable frame (truncated or corrupt)"
        if frame.pts is None:
            return "frames carry no timestamps"
        # the tail: a truncated file with its index up front opens fine, but its packets stop
        # early. Reading (not decoding) the last seconds' packets is cheap and shows it.
        start_pts = stream.start_time or 0
        if duration > 3.0:
            container.seek(start_pts + int((duration - 3.0) / stream.time_base), stream=stream, backward=True)
        end = None
        try:
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                packet_end = float((packet.pts - start_pts + (packet.duration or 0)) * stream.time_base)
                end = packet_end if end is None else max(end, packet_end)
        except av.FFmpegError as exc:
            return f"truncated or corrupt near the end: {exc}"
        if end is None or end < duration - TAIL_TOLERANCE_S:
            got = "no packets" if end is None else f"data ends at {end:.2f} s"
            return f"truncated: {got} of {duration:.2f} s"
        return None
    except av.FFmpegError as exc:
        return f"corrupt: {exc}"
    finally:
        container.close()
