"""`watershop run`/`demo` as the user meets them (progress, plain warnings, summary) and
`watershop status`. cli.py only registers these."""

from __future__ import annotations

import json
import sys
from datetime import date, timedelta
from pathlib import Path

import click

from watershop_dagster import catalog, lake
from watershop_dagster.cli_common import _date, _load, config_option
from watershop_dagster.config import WatershopConfig
from watershop_dagster.progress import RunProgress, terminal_progress

QUARANTINES = {catalog.TRANSACTIONS_QUARANTINE.name: "POS rows", catalog.FOOTAGE_QUARANTINE.name: "footage files"}

verbose_option = click.option("--verbose", "-v", is_flag=True,
                              help="Also print Dagster's and dbt's own logs (normally only in the run's log in the UI).")


def run_and_report(config_file, start: date, end: date, shop_ids, verbose: bool = False,
                   progress: RunProgress | None = None, summary=None) -> None:
    """Run the range with one progress bar per stage; warn in plain words about what needs a look."""
    from watershop_dagster.orchestration.runner import run_range
    from watershop_dagster.terminal import QUIET_RUN_CONFIG, cli_log_path, quiet_terminal

    config = _load(config_file)
    progress = progress or terminal_progress()
    log_path = None
    try:
        if verbose:
            runs = run_range(start, end, config_file, shop_ids, progress=progress)
        else:
            log_path = cli_log_path(config.dagster_home)
            with quiet_terminal(log_path, progress):
                runs = run_range(start, end, config_file, shop_ids, progress=progress, run_config=QUIET_RUN_CONFIG)
    except BaseException as error:
        progress.finished(f"the run stopped; logs: {log_path}" if log_path else "")  # give the terminal back
        if isinstance(error, lake.LakeUnavailableError):
            raise click.ClickException(str(error)) from error
        raise
    for warning in run_warnings(config, runs):
        progress.warned(warning)
    failed = [r for r in runs if not r.success]
    lines = [f"{len(runs) - len(failed)}/{len(runs)} shop-days succeeded"]
    if log_path:
        lines.append(f"dbt and Dagster logs: {log_path} (every run's events: the Dagster UI)")
    if summary:
        lines.append(summary(config))
    progress.finished("\n".join(lines))
    if failed:
        sys.exit(1)


def run_warnings(config: WatershopConfig, runs) -> list[str]:
    """Failed shop-days with their step and the command to re-run, and quarantined input."""
    warnings = []
    for run in runs:
        if not run.success:
            steps = ", ".join(run.failed_steps) or "a run"
            reasons = "; ".join(step_errors(config, run))
            warnings.append(f"{run.shop_id} {run.day} failed in {steps} (Dagster run {run.run_id[:8]})"
                            f"{f': {reasons}' if reasons else ''}; "
                            f"fix and re-run: watershop run --from {run.day} --to {run.day} --shop {run.shop_id}")
    warnings += failed_checks(config, runs)
    return warnings + quarantine_warnings(config.lake_root, [(run.shop_id, run.day) for run in runs])


def quarantine_warnings(lake_root: Path, shop_days: list[tuple[str, date]]) -> list[str]:
    """One line per quarantine dataset and shop-day holding rows (every camera of a camera-day
    dataset), with the commonest reasons and the folder to look in."""
    warnings = []
    for dataset, what in QUARANTINES.items():
        for shop_id, day in shop_days:
            frame = lake.read_dataset(lake_root, dataset, shop_id=shop_id, date=day)
            if frame.height:
                reasons = frame["reason"].value_counts(sort=True).head(3)
                why = "; ".join(f"{r} ({n})" for r, n in reasons.iter_rows())
                folder = lake.partition_file(lake_root, dataset, shop_id=shop_id, date=day.isoformat()).parent
                warnings.append(f"{shop_id} {day}: {frame.height} {what} quarantined - {why}; see {folder}")
    return warnings


def step_errors(config: WatershopConfig, run) -> list[str]:
    """The root cause of each step failure of the shop-day's runs, one line each (e.g. "OSError:
    [Errno 28] No space left on device"): what to fix, without opening the log."""
    from dagster import DagsterEventType

    from watershop_dagster.orchestration.instance import workspace_instance

    instance = workspace_instance(config)
    found = []
    for run_id in dict.fromkeys(rid for rid in (run.run_id, *run.vision_run_ids, run.marts_run_id) if rid):
        for entry in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
            error = entry.dagster_event.event_specific_data.error
            while error is not None and error.cause is not None:
                error = error.cause
            if error is not None:
                found.append(error.message.strip().splitlines()[0][:200])
    return list(dict.fromkeys(found))


def failed_checks(config: WatershopConfig, runs) -> list[str]:
    """Asset checks that failed in the range's runs (quarantine checks are told as quarantines)."""
    from dagster import DagsterEventType

    from watershop_dagster.orchestration.instance import workspace_instance

    instance = workspace_instance(config)
    run_ids = dict.fromkeys(rid for r in runs for rid in (r.run_id, *r.vision_run_ids, r.marts_run_id) if rid)
    found = []
    for run_id in run_ids:
        for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
            check = entry.dagster_event.event_specific_data
            asset = check.asset_key.to_user_string()
            if check.passed or asset.endswith("_quarantine"):
                continue
            summary = check.metadata.get("summary")
            detail = f": {str(summary.value)[:120]}" if summary is not None else ""
            found.append(f"check {check.check_name} on {asset} failed ({check.severity.value.lower()}){detail}; "
                         f"details in the Dagster UI, run {run_id[:8]}")
    return found


@click.command()
@config_option
@click.option("--shop", "shop_ids", multiple=True, help="Only these shops (repeatable).")
@click.option("--from", "start", callback=_date, help="First day (default: 30 days ago).")
@click.option("--to", "end", callback=_date, help="Last day (default: yesterday).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(config_file, shop_ids, start, end, as_json) -> None:
    """Partitions that are missing, failed or stale per shop and asset, with the command to fix them."""
    from rich.console import Console

    from watershop_dagster.orchestration.instance import workspace_instance
    from watershop_dagster.orchestration.status import find_problems, render, status_report
    from watershop_dagster.terminal import hide_dagster_notices

    hide_dagster_notices()
    config = _load(config_file)
    end = end or date.today() - timedelta(days=1)
    start = start or max(config.partitions_start, end - timedelta(days=29))
    for shop_id in shop_ids:
        config.shop(shop_id)
    problems = find_problems(config, workspace_instance(config), list(shop_ids) or config.shop_ids, start, end)
    if as_json:
        click.echo(json.dumps({"from": str(start), "to": str(end), **status_report(problems)}, indent=2))
    else:
        click.echo(f"{start} .. {end}")
        render(problems, Console())
