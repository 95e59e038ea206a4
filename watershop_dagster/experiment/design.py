"""An experiment's declaration and its randomised switchback schedule, stored in the workspace.

Design: the experiment days are cut into periods (a day or a week, the `unit`); consecutive periods
form pairs. In every pair each zone is treated in exactly one of the two periods, and a random half
of the zones takes the first one. So every zone is treated in half its periods (balanced per zone),
half the zones are treated in every period (balanced per period), and a zone never stays in one arm
for long (time trends cancel within pairs). With an odd number of zones the odd zone's side is drawn
at random per pair; an odd last period is a single period with a random half treated.

Washout: the first `washout_days` days of every period are dropped from the analysis for every zone
(carry-over after a switch). Dropping the same days whatever the draw keeps the randomisation
inference exact: the analysed cells do not depend on the assignment.

The schedule is a pure function of the declaration (seeded), written once and never silently changed
after the start date: a changed declaration or a schedule that no longer matches is refused.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from watershop_dagster.atomic import atomic_write_text

EXPERIMENTS_DIR = "experiments"
SPEC_FILE = "experiment.json"
ASSIGNMENT_FILE = "assignment.csv"
TREATMENT, CONTROL = "treatment", "control"
PERIOD_DAYS = {"zone-day": 1, "zone-week": 7}
ASSIGNMENT_SCHEMA: dict[str, pl.DataType] = {
    "zone": pl.Utf8(), "date": pl.Date(), "arm": pl.Utf8(), "period": pl.Int32(), "washout": pl.Boolean(),
}


class ExperimentError(ValueError):
    """An experiment that cannot be created, assigned or analysed as asked; the message says why."""


class ExperimentSpec(BaseModel):
    """What the owner declares (CLI or watershop.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    zones: list[str] = Field(min_length=2)
    unit: Literal["zone-day", "zone-week"] = "zone-day"
    pre_start: date
    start: date
    end: date
    washout_days: int = Field(default=0, ge=0)
    metric: Literal["zone_sales", "conversion"] = "zone_sales"
    treatment: str = ""
    seed: int = 0

    @model_validator(mode="after")
    def _coherent(self) -> ExperimentSpec:
        if len(set(self.zones)) != len(self.zones):
            raise ValueError(f"zones must be unique, got {self.zones}")
        if not self.pre_start < self.start <= self.end:
            raise ValueError(f"need pre_start < start <= end, got {self.pre_start}, {self.start}, {self.end}")
        if self.washout_days >= self.period_days:
            raise ValueError(
                f"washout_days {self.washout_days} would drop every day of a {self.period_days}-day period "
                f"(unit {self.unit}); use unit zone-week for a washout"
            )
        if self.n_periods < 2:
            raise ValueError(f"the experiment needs at least two {self.unit} periods between start and end")
        return self

    @property
    def period_days(self) -> int:
        return PERIOD_DAYS[self.unit]

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    @property
    def n_periods(self) -> int:
        return -(-((self.end - self.start).days + 1) // self.period_days)


def draw_arms(n_zones: int, n_periods: int, rng: np.random.Generator, draws: int = 1) -> np.ndarray:
    """`draws` independent schedules of the paired design, bool (draws, zones, periods), True = treated.

    The one procedure used both to assign and, redrawn, for randomisation inference."""
    n_pairs = -(-n_periods // 2)
    order = rng.random((draws, n_pairs, n_zones)).argsort(axis=-1).argsort(axis=-1)  # a random rank per zone
    first = np.full((draws, n_pairs, 1), n_zones // 2)
    if n_zones % 2:
        first = first + rng.integers(0, 2, (draws, n_pairs, 1))
    treated_first = order < first  # (draws, pairs, zones)
    arms = np.empty((draws, n_zones, 2 * n_pairs), dtype=bool)
    arms[:, :, 0::2] = treated_first.transpose(0, 2, 1)
    arms[:, :, 1::2] = ~treated_first.transpose(0, 2, 1)
    return arms[:, :, :n_periods]


def cell_periods(spec: ExperimentSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per experiment day: its period index and whether it is a washout day."""
    offset = np.arange(len(spec.days))
    return offset // spec.period_days, offset % spec.period_days < spec.washout_days


def schedule(spec: ExperimentSpec) -> pl.DataFrame:
    """The seeded schedule of `spec`: one row per zone and experiment day (ASSIGNMENT_SCHEMA)."""
    arms = draw_arms(len(spec.zones), spec.n_periods, np.random.default_rng([spec.seed, 0]))[0]
    period, washout = cell_periods(spec)
    days = spec.days
    return pl.DataFrame(
        {
            "zone": np.repeat(spec.zones, len(days)),
            "date": days * len(spec.zones),
            "arm": np.where(arms[:, period].ravel(), TREATMENT, CONTROL),
            "period": np.tile(period, len(spec.zones)),
            "washout": np.tile(washout, len(spec.zones)),
        },
        schema=ASSIGNMENT_SCHEMA,
    )


# --- storage in the workspace ------------------------------------------------------------------


def experiment_dir(workspace: Path, name: str) -> Path:
    return Path(workspace) / EXPERIMENTS_DIR / name


def load_spec(workspace: Path, name: str) -> ExperimentSpec:
    path = experiment_dir(workspace, name) / SPEC_FILE
    if not path.is_file():
        raise ExperimentError(f"no experiment {name!r} in {Path(workspace) / EXPERIMENTS_DIR}: create it first")
    return ExperimentSpec.model_validate_json(path.read_text())


def load_assignment(workspace: Path, name: str) -> pl.DataFrame:
    path = experiment_dir(workspace, name) / ASSIGNMENT_FILE
    if not path.is_file():
        raise ExperimentError(f"experiment {name!r} has no assignment yet: run `watershop experiment assign {name}`")
    return pl.read_csv(path, schema=ASSIGNMENT_SCHEMA)


def _started(spec: ExperimentSpec, today: date) -> bool:
    return today >= spec.start


def save_spec(workspace: Path, spec: ExperimentSpec, replace: bool = False, today: date | None = None) -> Path:
    """Store the declaration. Re-declaring the same is a no-op; a different one needs `replace`, and is
    refused once the experiment has started and been assigned."""
    today = today or date.today()
    folder = experiment_dir(workspace, spec.name)
    path = folder / SPEC_FILE
    if path.is_file():
        old = load_spec(workspace, spec.name)
        if old == spec:
            return path
        if not replace:
            raise ExperimentError(f"experiment {spec.name!r} already exists with a different declaration "
                                  "(pass --replace to change it before it starts)")
        if (folder / ASSIGNMENT_FILE).is_file() and (_started(old, today) or _started(spec, today)):
            raise ExperimentError(
                f"experiment {spec.name!r} started on {old.start} and has a stored assignment: its declaration "
                "can no longer change (create a new experiment instead)"
            )
        (folder / ASSIGNMENT_FILE).unlink(missing_ok=True)
    return atomic_write_text(path, json.dumps(spec.model_dump(mode="json"), indent=2) + "\n")


def assign(workspace: Path, name: str, today: date | None = None) -> pl.DataFrame:
    """Write (or confirm) the stored schedule. After the start date a stored schedule that differs from
    what the declaration draws is never overwritten: that is an error, not a silent change."""
    today = today or date.today()
    spec = load_spec(workspace, name)
    drawn = schedule(spec)
    path = experiment_dir(workspace, name) / ASSIGNMENT_FILE
    if path.is_file():
        stored = load_assignment(workspace, name)
        if stored.equals(drawn):
            return stored
        if _started(spec, today):
            raise ExperimentError(
                f"the stored assignment of {name!r} differs from the one its declaration draws and the "
                f"experiment started on {spec.start}: refusing to change it ({path})"
            )
    atomic_write_text(path, drawn.write_csv())
    return drawn
