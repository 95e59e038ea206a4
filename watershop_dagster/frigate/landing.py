"""The Frigate landing area: every message as received, one NDJSON file per camera-day.

Layout: ``<frigate_landing>/<shop>/<camera>/<YYYY-MM-DD>.ndjson`` (the shop's local day of the
tracked object's start, so all messages of one object share a file); messages naming no configured
camera go to ``<shop>/_unrouted/<day received>.ndjson``. One line per message:
``{"received_at": <epoch s>, "topic": ..., "payload": <the payload text, unchanged>}``.

Durability: a line is written with one `write` and flushed before the broker gets its ack, files
are fsync'd in batches (`sync`), and a torn last line (power loss mid-write) is cut off when the
file is opened again, so a reader never sees half a line. Identity: the sha256 of topic and
payload; the writer knows the identities already in a file and never writes one twice (a QoS 1
redelivery after a reconnect, a re-pull of the same API day).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

UNROUTED = "_unrouted"
SUFFIX = ".ndjson"
IDLE_CLOSE_SECONDS = 2 * 3600  # a file unwritten this long is closed (yesterday's, mostly); reopened on demand


@dataclass(frozen=True)
class LandedMessage:
    received_at: float
    topic: str
    payload: str
    line: int  # 1-based line in its file


def message_identity(topic: str, payload: str) -> str:
    return hashlib.sha256(f"{topic}\n{payload}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


def landing_file(root: Path, shop_id: str, camera: str, day: date) -> Path:
    return Path(root) / shop_id / camera / f"{day.isoformat()}{SUFFIX}"


def route(payload: str, cameras: set[str], tz: ZoneInfo, received_at: float) -> tuple[str, date]:
    """(camera folder, local day) for a payload: its object's camera and start day, else unrouted."""
    try:
        message = json.loads(payload)
        after = message.get("after") if isinstance(message, dict) else None
        body = after if isinstance(after, dict) else message
        camera = body.get("camera")
        start = body.get("start_time")
        if camera in cameras:
            when = float(start) if isinstance(start, (int, float)) else received_at
            return camera, datetime.fromtimestamp(when, tz).date()
    except (ValueError, TypeError, AttributeError, OverflowError, OSError):
        pass
    return UNROUTED, datetime.fromtimestamp(received_at, tz).date()


def encode_line(received_at: float, topic: str, payload: str) -> bytes:
    return (json.dumps({"received_at": received_at, "topic": topic, "payload": payload}, ensure_ascii=False)
            + "\n").encode("utf-8", "surrogatepass")


def read_landed(path: Path) -> Iterator[LandedMessage | tuple[int, str, str]]:
    """Each complete line of a landing file: a LandedMessage, or (line, raw text, reason) when the
    line itself is broken (the payload is never parsed here)."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                return  # a torn tail: the writer cuts it off when it opens the file again
            text = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                record = json.loads(text)
                yield LandedMessage(float(record["received_at"]), str(record["topic"]), str(record["payload"]), number)
            except (ValueError, KeyError, TypeError):
                yield number, text, "unreadable landing line"


def _cut_torn_tail(path: Path) -> None:
    with open(path, "rb+") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)
            handle.flush()
            os.fsync(handle.fileno())


class LandingWriter:
    """Appends messages to camera-day files: once each, flushed at once, fsync'd on `sync`.

    Thread-safe: paho's network thread writes, the main thread syncs.
    """

    def __init__(self, root: Path, shop_id: str, cameras: set[str], tz: ZoneInfo):
        self.root, self.shop_id, self.cameras, self.tz = Path(root), shop_id, set(cameras), tz
        self._files: dict[Path, object] = {}
        self._seen: dict[Path, set[str]] = {}
        self._dirty: set[Path] = set()
        self._last_write: dict[Path, float] = {}
        self._lock = threading.Lock()
        self.written = 0
        self.duplicates = 0

    def append(self, topic: str, payload: str, received_at: float) -> Path | None:
        """Land one message; None when the file already holds it (a duplicate)."""
        camera, day = route(payload, self.cameras, self.tz, received_at)
        path = landing_file(self.root, self.shop_id, camera, day)
        identity = message_identity(topic, payload)
        with self._lock:
            seen = self._open(path)
            if identity in seen:
                self.duplicates += 1
                return None
            handle = self._files[path]
            handle.write(encode_line(received_at, topic, payload))
            handle.flush()
            seen.add(identity)
            self._dirty.add(path)
            self._last_write[path] = time.monotonic()
            self.written += 1
        return path

    def _open(self, path: Path) -> set[str]:
        if path not in self._files:
            path.parent.mkdir(parents=True, exist_ok=True)
            seen = set()
            if path.exists():
                _cut_torn_tail(path)
                seen = {message_identity(m.topic, m.payload) for m in read_landed(path)
                        if isinstance(m, LandedMessage)}
            self._files[path] = open(path, "ab")
            self._seen[path] = seen
        return self._seen[path]

    def sync(self) -> int:
        """fsync every file written since the last sync; the number of files."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            for path in dirty:
                os.fsync(self._files[path].fileno())
            idle = [p for p, t in self._last_write.items() if time.monotonic() - t > IDLE_CLOSE_SECONDS]
            for path in idle:
                self._files.pop(path).close()
                del self._seen[path], self._last_write[path]
        return len(dirty)

    def close(self) -> None:
        self.sync()
        with self._lock:
            for handle in self._files.values():
                handle.close()
            self._files.clear()
            self._seen.clear()
            self._last_write.clear()


def landed_camera_days(root: Path, shop_id: str) -> dict[tuple[str, date], tuple[int, int]]:
    """(camera, day) -> (size, mtime_ns) of every landing file of the shop (unrouted ones included)."""
    out = {}
    shop_dir = Path(root) / shop_id
    for path in sorted(shop_dir.glob(f"*/*{SUFFIX}")) if shop_dir.is_dir() else []:
        try:
            day = date.fromisoformat(path.stem)
        except ValueError:
            continue
        stat = path.stat()
        out[(path.parent.name, day)] = (stat.st_size, stat.st_mtime_ns)
    return out
