"""Footage path formats shared by the writer (synthetic footage) and the reader (discovery).

Frigate NVR's layout, ``recordings/<YYYY-MM-DD>/<HH>/<camera>/<MM.SS>.mp4`` with the segment's
start in UTC, is formatted by `frigate_path` and parsed back by `parse_frigate_path`, so the two
can never drift apart.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from pathlib import Path

VIDEO_SUFFIXES = frozenset({".mp4"})
FRIGATE_DIR = "recordings"
#: Frigate's folder and file names, as strftime formats of the segment's UTC start
FRIGATE_DAY_FORMAT = "%Y-%m-%d"
FRIGATE_HOUR_FORMAT = "%H"
FRIGATE_NAME_FORMAT = "%M.%S"

_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_FRIGATE_HOUR_RE = re.compile(r"^(\d{2})$")
_FRIGATE_NAME_RE = re.compile(r"^(\d{2})\.(\d{2})$")


def parse_day_folder(text: str) -> date | None:
    """A ``YYYY-MM-DD`` folder name as a date; None when it is not a valid one."""
    match = _DATE_RE.match(text)
    if not match:
        return None
    try:
        return date(*map(int, match.groups()))
    except ValueError:
        return None


def require_day_folder(text: str) -> date:
    """`parse_day_folder`, raising ValueError with the reason when the folder is no date."""
    day = parse_day_folder(text)
    if day is None:
        raise ValueError(f"folder {text!r} is not a valid YYYY-MM-DD date")
    return day


def video_stem(name: str) -> str:
    """The file name without its video suffix; ValueError when it is not a video file."""
    path = Path(name)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"not a video file ({'/'.join(sorted(VIDEO_SUFFIXES))})")
    return path.stem


def parse_hour_folder(text: str) -> int | None:
    """A Frigate ``HH`` hour folder name as an hour 0-23; None when it is not a valid one."""
    if not _FRIGATE_HOUR_RE.match(text) or int(text) > 23:
        return None
    return int(text)


def frigate_path(footage_root: Path, camera: str, segment_start_utc: datetime) -> Path:
    """``<root>/recordings/<YYYY-MM-DD>/<HH>/<camera>/<MM.SS>.mp4`` of a segment starting then."""
    if segment_start_utc.tzinfo is None:
        raise ValueError(f"datetime {segment_start_utc} must be timezone-aware")
    moment = segment_start_utc.astimezone(UTC)
    return (Path(footage_root) / FRIGATE_DIR / moment.strftime(FRIGATE_DAY_FORMAT) / moment.strftime(FRIGATE_HOUR_FORMAT)
            / camera / f"{moment.strftime(FRIGATE_NAME_FORMAT)}.mp4")


def parse_frigate_path(rel: Path) -> tuple[str, datetime]:
    """`<YYYY-MM-DD>/<HH>/<camera>/<MM.SS>.mp4` (relative to `recordings/`) → (camera, start_utc).

    Raises ValueError with the reason when the path carries no valid time.
    """
    parts = rel.parts
    if len(parts) != 4:
        raise ValueError("expected recordings/<YYYY-MM-DD>/<HH>/<camera>/<MM.SS>.mp4")
    day_text, hour_text, camera, name = parts
    day = require_day_folder(day_text)
    hour = parse_hour_folder(hour_text)
    if hour is None:
        raise ValueError(f"folder {hour_text!r} is not an hour 00-23")
    match = _FRIGATE_NAME_RE.match(video_stem(name))
    if not match or int(match.group(1)) > 59 or int(match.group(2)) > 59:
        raise ValueError(f"file name {name!r} is not MM.SS.mp4")
    minute, second = map(int, match.groups())
    return camera, datetime.combine(day, time(hour, minute, second), tzinfo=UTC)
