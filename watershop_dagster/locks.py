"""Every cross-process lock of the project: exclusive flocks on files under the warehouse folder.

The warehouse folder is local disk, where flock is reliable (the lake may be a NAS, where it is
not). A lock dies with its process, so a killed run never leaves a lock that blocks the next one.

* `identity_lock(warehouse, shop)`: ``<warehouse>/locks/identity-<shop>.lock``, held by every
  writer of a shop's identity data (ledger, registry snapshots, identities, visits, links,
  erasure, retention), so two days of one shop never interleave their read-match-write steps.
* `privacy_audit_lock(warehouse)`: ``<warehouse>/locks/privacy-audit.lock``, around appends to
  the privacy audit log.
* `alert_log_lock(warehouse, shop)`: ``<warehouse>/locks/alerts-<shop>.lock``, around a shop's
  alert delivery log (read, decide, deliver, write), so two runs (or `listen` and a run) never both
  send one alert, nor two alerts of one subject inside its cooldown.
* `build_lock(build_db)`: ``<build_db folder>/.build.lock``, serialising writers of the DuckDB
  build file (dbt runs, publishing).
* `manifest_lock(target)`: ``<dbt target folder>/.manifest.lock``, around re-parsing the dbt
  project's manifest (`dbt.ensure_manifest`), which every process loading the definitions may do.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: how long a lock waits by default before giving up (a day of identity work takes minutes)
DEFAULT_TIMEOUT_S = 1800.0
_POLL_S = 0.05
_LOCAL = threading.local()


@contextmanager
def file_lock(path: Path, timeout_s: float | None = DEFAULT_TIMEOUT_S) -> Iterator[Path]:
    """Exclusive flock on `path`, re-entrant within a thread; `timeout_s=None` waits for ever."""
    path = Path(path)
    held: dict[str, int] = getattr(_LOCAL, "held", None) or {}
    _LOCAL.held = held
    key = str(path)
    if held.get(key):
        held[key] += 1
        try:
            yield path
        finally:
            held[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, timeout_s)
        held[key] = 1
        try:
            yield path
        finally:
            held[key] = 0
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, timeout_s: float | None) -> None:
    if timeout_s is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not lock {path} within {timeout_s:.0f} s") from None
            time.sleep(_POLL_S)


def identity_lock(warehouse_dir: Path, shop_id: str, timeout_s: float | None = DEFAULT_TIMEOUT_S):
    """Exclusive lock on a shop's identity data (see the module docstring)."""
    return file_lock(Path(warehouse_dir) / "locks" / f"identity-{shop_id}.lock", timeout_s)


def privacy_audit_lock(warehouse_dir: Path):
    """Exclusive lock on the privacy audit log."""
    return file_lock(Path(warehouse_dir) / "locks" / "privacy-audit.lock")


def alert_log_lock(warehouse_dir: Path, shop_id: str):
    """Exclusive lock on a shop's alert delivery log."""
    return file_lock(Path(warehouse_dir) / "locks" / f"alerts-{shop_id}.lock")


def build_lock(build_db: Path):
    """Exclusive lock on the DuckDB build file; waits for ever (a backfill's dbt build may be long)."""
    return file_lock(Path(build_db).parent / ".build.lock", timeout_s=None)


def manifest_lock(target_dir: Path):
    """Exclusive lock on re-parsing the dbt manifest in `target_dir`."""
    return file_lock(Path(target_dir) / ".manifest.lock")
