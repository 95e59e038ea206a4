"""Remove the temp files that interrupted atomic writes leave in the lake.

`lake.atomic_write_parquet` writes `.<name>.<32 hex>.tmp` next to its target and renames it into
place; its `finally` removes the temp file, but a killed process (kill -9, power loss, NAS unmounted)
never runs it. Such files are invisible to readers (`*.parquet` globs skip them) yet accumulate and
fill the disk. Call `sweep_temp_files` at the start of a run: only files older than `older_than` are
removed, so a write in progress in another process (seconds long) is never touched.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

# The writer's temp naming (lake.atomic_write_parquet, warehouse.publish_marts): hidden, a uuid4 hex, .tmp.
TEMP_FILE = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp$")
DEFAULT_AGE = timedelta(minutes=60)


@dataclass(frozen=True)
class SweepResult:
    removed: list[Path]
    kept_recent: list[Path]  # temp files younger than the cut-off: possibly a write in progress
    freed_bytes: int


def sweep_temp_files(root: str | os.PathLike, older_than: timedelta = DEFAULT_AGE,
                     now: float | None = None) -> SweepResult:
    """Delete the writer's temp files under `root` last modified more than `older_than` ago.

    Symlinks are not followed; a missing root is an empty result (a fresh workspace). Files that
    vanish meanwhile (another sweeper, the writer finishing) are skipped.
    """
    cutoff = (time.time() if now is None else now) - older_than.total_seconds()
    removed, kept, freed = [], [], 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if not TEMP_FILE.match(name):
                continue
            path = Path(folder) / name
            try:
                stat = path.lstat()
                if stat.st_mtime > cutoff:
                    kept.append(path)
                    continue
                path.unlink()
            except FileNotFoundError:
                continue
            removed.append(path)
            freed += stat.st_size
    return SweepResult(removed=sorted(removed), kept_recent=sorted(kept), freed_bytes=freed)
