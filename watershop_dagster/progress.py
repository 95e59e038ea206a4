"""What a person at the terminal sees while `watershop run`/`demo` works: one progress bar per
stage (counts and ETA), warnings in plain words, then the summary.

The runner talks to a `RunProgress`; the CLI picks a rich reporter for a terminal and a plain one
(whole lines, no escape codes) for pipes, CI and log files. Dagster's own event log stays in the
run's log (the Dagster UI), see watershop_dagster/terminal.py.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

# The stages of a range run, in the order a user meets them.
FOOTAGE_FILES = "footage files"
CAMERA_DAYS = "camera-days"
SHOP_DAYS = "shop-days"
DBT_MODELS = "dbt models"


PLAIN_LINES_PER_STAGE = 10


def _step(done: int, total: int) -> int:
    return done * PLAIN_LINES_PER_STAGE // total


class RunProgress(Protocol):
    """How far a run is, told as it goes. Every method is cheap and never raises."""

    def stage_started(self, name: str, total: int) -> None: ...

    def advanced(self, name: str, n: int = 1, detail: str | None = None) -> None: ...

    def warned(self, text: str) -> None: ...

    def finished(self, summary: str) -> None: ...


class NoProgress:
    """For library callers (tests, the daemon) that want nothing printed."""

    def stage_started(self, name: str, total: int) -> None:
        pass

    def advanced(self, name: str, n: int = 1, detail: str | None = None) -> None:
        pass

    def warned(self, text: str) -> None:
        pass

    def finished(self, summary: str) -> None:
        pass


class PlainProgress:
    """Whole lines, no escape codes: what CI logs, pipes and `| tee` should get."""

    def __init__(self, stream: IO[str] | None = None, clock=time.monotonic) -> None:
        self.stream = stream or sys.stdout
        self.clock = clock
        self.totals: dict[str, int] = {}
        self.done: dict[str, int] = {}
        self.started: dict[str, float] = {}

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def stage_started(self, name: str, total: int) -> None:
        self.totals[name] = total
        self.done[name] = 0
        self.started[name] = self.clock()
        self._line(f"{name}: 0/{total}")

    def advanced(self, name: str, n: int = 1, detail: str | None = None) -> None:
        if name not in self.totals:
            self.stage_started(name, 0)
        self.done[name] += n
        total = self.totals[name]
        done = self.done[name]
        if total > PLAIN_LINES_PER_STAGE and done < total and _step(done, total) == _step(done - n, total):
            return  # long stages (dbt's ~160 nodes) print about every tenth, not every item
        shown = f"{done}/{total}" if total else str(done)
        eta = self._eta(name)
        suffix = f" ({detail})" if detail else ""
        self._line(f"{name}: {shown}{suffix}{f', about {eta} left' if eta else ''}")

    def _eta(self, name: str) -> str | None:
        done, total = self.done[name], self.totals[name]
        if not total or not done or done >= total:
            return None
        per_item = (self.clock() - self.started[name]) / done
        return format_duration(per_item * (total - done))

    def warned(self, text: str) -> None:
        self._line(f"warning: {text}")

    def finished(self, summary: str) -> None:
        if summary:
            self._line(summary)


class RichProgress:
    """One live bar per stage with counts, elapsed time and ETA; warnings print above the bars."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self.bars = Progress(
            TextColumn("[bold]{task.description:<13}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[detail]}", style="dim"),
            console=self.console,
        )
        self.tasks: dict[str, int] = {}
        self.bars.start()

    def stage_started(self, name: str, total: int) -> None:
        if name in self.tasks:
            self.bars.update(self.tasks[name], total=total, completed=0, detail="")
        else:
            self.tasks[name] = self.bars.add_task(name, total=total or None, detail="")

    def advanced(self, name: str, n: int = 1, detail: str | None = None) -> None:
        if name not in self.tasks:
            self.stage_started(name, 0)
        self.bars.update(self.tasks[name], advance=n, detail=detail or "")

    def warned(self, text: str) -> None:
        self.bars.console.print(f"[yellow]warning:[/yellow] {text}", highlight=False)

    def finished(self, summary: str) -> None:
        for task in self.tasks.values():  # a stage with no total ends as "n/n"
            if self.bars.tasks[task].total is None:
                self.bars.update(task, total=self.bars.tasks[task].completed)
        self.bars.stop()
        if summary:
            self.console.print(summary, highlight=False)


def terminal_progress(stream: IO[str] | None = None) -> RunProgress:
    """Live bars for a person at a terminal, plain lines for everything else."""
    stream = stream or sys.stdout
    if stream.isatty():
        return RichProgress(Console(file=stream))
    return PlainProgress(stream)


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
