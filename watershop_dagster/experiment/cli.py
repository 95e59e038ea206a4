"""`watershop experiment create | assign | analyse`: declare, randomise and read a zone experiment."""

from __future__ import annotations

import json
import os
import uuid

import click
from pydantic import ValidationError

from watershop_dagster.cli_common import _date, _load, config_option
from watershop_dagster.experiment.design import (
    ExperimentError,
    ExperimentSpec,
    assign,
    experiment_dir,
    load_spec,
    save_spec,
)

RESULT_FILE = "result.json"


def _fail(exc: Exception) -> click.ClickException:
    if isinstance(exc, ValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'experiment'}: {e['msg']}" for e in exc.errors())
        return click.ClickException(f"invalid experiment: {problems}")
    return click.ClickException(str(exc))


@click.group()
def experiment() -> None:
    """Switchback experiments on store zones: does the treatment increase sales?"""


@experiment.command()
@config_option
@click.argument("name")
@click.option("--zones", required=True, help="Comma-separated zone ids, e.g. Z1,Z2,Z3,Z4.")
@click.option("--unit", type=click.Choice(["zone-day", "zone-week"]), default="zone-day", show_default=True)
@click.option("--pre-start", required=True, callback=_date, help="First day of the pre-period history.")
@click.option("--start", required=True, callback=_date)
@click.option("--end", required=True, callback=_date)
@click.option("--washout-days", default=0, show_default=True, help="Days dropped at the start of every period.")
@click.option("--metric", type=click.Choice(["zone_sales", "conversion"]), default="zone_sales", show_default=True)
@click.option("--treatment", default="", help="What is done to treated zones (shown in the report).")
@click.option("--seed", default=0, show_default=True)
@click.option("--replace", is_flag=True, help="Change an existing declaration (refused once it has started).")
def create(config_file, name, zones, unit, pre_start, start, end, washout_days, metric, treatment, seed, replace):
    """Declare experiment NAME in the workspace."""
    config = _load(config_file)
    try:
        spec = ExperimentSpec(
            name=name, zones=[z.strip() for z in zones.split(",") if z.strip()], unit=unit, pre_start=pre_start,
            start=start, end=end, washout_days=washout_days, metric=metric, treatment=treatment, seed=seed,
        )
        path = save_spec(config.workspace_dir, spec, replace=replace)
    except (ValidationError, ExperimentError) as exc:
        raise _fail(exc) from exc
    click.echo(f"experiment {name}: {len(spec.zones)} zones, {spec.n_periods} {unit} periods -> {path}")


@experiment.command("assign")
@config_option
@click.argument("name")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), help="Also write the schedule to this CSV.")
def assign_command(config_file, name, out_file):
    """Write (or confirm) NAME's randomised switchback schedule (zone, date, arm)."""
    config = _load(config_file)
    try:
        schedule = assign(config.workspace_dir, name)
    except ExperimentError as exc:
        raise _fail(exc) from exc
    if out_file:
        schedule.write_csv(out_file)
    treated = schedule.filter(schedule["arm"] == "treatment").height
    click.echo(f"experiment {name}: {schedule.height} zone-days, {treated} treated "
               f"-> {experiment_dir(config.workspace_dir, name) / 'assignment.csv'}")


@experiment.command()
@config_option
@click.argument("name")
@click.option("--metrics", "metrics_file", type=click.Path(dir_okay=False),
              help="Parquet/CSV of zone, date, metric (default: zone sales from the lake's receipts).")
@click.option("--shop", "shop_id", default="*", help="The shop whose receipts to read (default: all).")
@click.option("--permutations", default=2000, show_default=True, help="Randomisation-inference redraws.")
@click.option("--no-report", is_flag=True, help="Skip the HTML/PNG report.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def analyse(config_file, name, metrics_file, shop_id, permutations, no_report, as_json):
    """Did NAME's treatment increase the metric? Effect, 95 % CI, RI p-value, MDE."""
    from watershop_dagster.experiment.analysis import analyse as run_analysis
    from watershop_dagster.experiment.data import load_zone_day_metrics
    from watershop_dagster.experiment.design import load_assignment
    from watershop_dagster.experiment.report import write_report

    config = _load(config_file)
    workspace = config.workspace_dir
    try:
        spec = load_spec(workspace, name)
        assignment = load_assignment(workspace, name)
        metrics = load_zone_day_metrics(spec, workspace, config.lake_root, shop_id, metrics_file)
        result = run_analysis(spec, metrics, assignment, permutations=permutations)
    except ExperimentError as exc:
        raise _fail(exc) from exc
    summary = result.summary()
    folder = experiment_dir(workspace, name)
    if not no_report:
        paths = write_report(result, spec, assignment, folder / "report")
        summary["report"] = str(paths["html"])
    text = json.dumps(summary, indent=2, default=str)
    tmp = folder / f".{RESULT_FILE}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(text + "\n")
    os.replace(tmp, folder / RESULT_FILE)
    if as_json:
        click.echo(json.dumps(summary, default=str))
        return
    click.echo(f"effect {100 * result.effect:+.1f}% (95% CI {100 * result.ci_low:+.1f}% to "
               f"{100 * result.ci_high:+.1f}%), randomisation p = {result.p_value:.4f}")
    mde = "n/a" if result.mde is None else f"{100 * result.mde:.1f}%"
    click.echo(f"minimum detectable effect {mde}; {result.n_cells} zone-days; "
               f"guard rail: {result.guardrail.get('verdict', 'not run')}")
    if "report" in summary:
        click.echo(f"report: {summary['report']}")
