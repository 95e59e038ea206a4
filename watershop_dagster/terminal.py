"""Keep Dagster's and dbt's own chatter off the terminal of `watershop run`/`demo`.

Dagster records every event of a run in the instance (the run's log in the UI) whatever its console
logger prints, so the CLI turns the console logger down (`QUIET_RUN_CONFIG`), hides Dagster's
preview/beta notices, and sends what dagster-dbt echoes to stdout (dbt's own log lines) to a log
file in DAGSTER_HOME, counting dbt's finished nodes for the progress bar on the way.
`--verbose` keeps all of it on the terminal.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from datetime import datetime
from pathlib import Path
from typing import IO, Iterator

from watershop_dagster.progress import DBT_MODELS, RunProgress

# Run config for execute_in_process: the default console logger only prints errors; the run's
# events still go to the instance's event log.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

# dbt's per-node result line, e.g. "12 of 158 PASS not_null_x ....... [PASS in 0.18s]".
DBT_NODE_DONE = re.compile(r"^\s*(\d+) of (\d+) (OK|PASS|WARN|ERROR|FAIL|SKIP)\b")
# dbt's own console lines (in-process) start with colour codes and a "HH:MM:SS  " time stamp.
DBT_LINE_PREFIX = re.compile(r"^(?:\x1b\[[0-9;]*m)*(?:\d{2}:\d{2}:\d{2}\s+)?")
ANSI_CODES = re.compile(r"\x1b\[[0-9;]*m")
DBT_FAILED_STATUSES = {"ERROR", "FAIL"}


def hide_dagster_notices() -> None:
    """Dagster's PreviewWarning/BetaWarning/SupersessionWarning speak to us, not to the shop owner."""
    import dagster as dg

    for category in (dg.PreviewWarning, dg.BetaWarning, dg.SupersessionWarning):
        warnings.filterwarnings("ignore", category=category)


class DbtOutputSink(io.TextIOBase):
    """Stands in for sys.stdout while Dagster runs: every line goes to the log file; dbt's
    "N of M <status>" lines advance the dbt models bar, failed nodes become warnings."""

    def __init__(self, log: IO[str], progress: RunProgress) -> None:
        self.log = log
        self.progress = progress
        self.pending = ""
        self.total: int | None = None

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.log.write(text)
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self._read(line)
        return len(text)

    def flush(self) -> None:
        self.log.flush()

    def _read(self, line: str) -> None:
        line = ANSI_CODES.sub("", DBT_LINE_PREFIX.sub("", line, count=1))
        match = DBT_NODE_DONE.match(line)
        if not match:
            return
        done, total, status = int(match[1]), int(match[2]), match[3]
        if total != self.total or done == 1:
            self.total = total
            self.progress.stage_started(DBT_MODELS, total)
        words = line[match.end():].split(" ..", 1)[0].split("  [", 1)[0].split()
        node = words[-1] if words else ""  # "created sql view model staging.stg_x" -> the node's name
        self.progress.advanced(DBT_MODELS, detail=node[:48])
        if status in DBT_FAILED_STATUSES:
            self.progress.warned(f"dbt {status.lower()}: {node}")


def cli_log_path(dagster_home: Path) -> Path:
    folder = dagster_home / "cli_logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"run-{datetime.now():%Y%m%d-%H%M%S}.log"


@contextlib.contextmanager
def quiet_terminal(log_path: Path, progress: RunProgress) -> Iterator[Path]:
    """While inside: dbt's echoed output and anything else printed to stdout/stderr by the
    pipeline goes to log_path instead of the terminal."""
    hide_dagster_notices()
    with open(log_path, "a", encoding="utf-8") as log:
        sink = DbtOutputSink(log, progress)
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(log):
            yield log_path

