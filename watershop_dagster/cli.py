"""`watershop`: create a workspace, generate demo data, run partitions, inspect where things are."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import click

from watershop_dagster.cli_common import _date, _load, config_option
from watershop_dagster.config import ConfigError, WatershopConfig, config_path, init_workspace
from watershop_dagster.experiment.cli import experiment
from watershop_dagster.frigate.cli import frigate
from watershop_dagster.orchestration.run_cli import run_and_report, status, verbose_option
from watershop_dagster.receipts.cli import receipts


@click.group()
def main() -> None:
    """Watershop: CCTV + POS analytics for shops, orchestrated by Dagster."""


@main.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--shop", "shop_id", default="shop1", show_default=True)
@click.option("--timezone", default="Asia/Kolkata", show_default=True)
@click.option("--camera", "cameras", multiple=True, help="Camera id (repeatable); default: counter.")
@click.option("--start", "partitions_start", callback=_date, default="2024-01-01", show_default=True,
              help="First day of the daily partitions.")
@click.option("--force", is_flag=True, help="Overwrite an existing watershop.yaml.")
def init(directory, shop_id, timezone, cameras, partitions_start, force) -> None:
    """Create a workspace DIR with a commented watershop.yaml and its folders."""
    try:
        config = init_workspace(directory, shop_id, timezone, list(cameras) or None, partitions_start, overwrite=force)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"created {config.workspace_dir / 'watershop.yaml'}")
    click.echo(f"drop POS CSVs into {config.transactions_landing / shop_id} and footage into {config.footage_root}")


def workspace_info(config_file: str | None, config: WatershopConfig) -> dict:
    return {
        "config": str(config_path(config_file)),
        "lake_root": str(config.lake_root),
        "marts_db": str(config.marts_db),
        "build_db": str(config.build_db),
        "dagster_home": str(config.dagster_home),
        "landing": str(config.landing_dir),
        "footage_root": str(config.footage_root),
        "known_people": str(config.known_people_dir),
        "shops": [{"id": s.id, "timezone": s.timezone, "cameras": s.cameras} for s in config.shops],
    }


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(config_file, as_json) -> None:
    """Where the lake, the marts (for BI tools) and DAGSTER_HOME are."""
    details = workspace_info(config_file, _load(config_file))
    if as_json:
        click.echo(json.dumps(details, indent=2))
        return
    for key, value in details.items():
        click.echo(f"{key:13} {value}")


@main.command("generate-transactions")
@config_option
@click.option("--from", "start", required=True, callback=_date)
@click.option("--to", "end", required=True, callback=_date)
@click.option("--shop", "shop_ids", multiple=True, help="Only these shops (repeatable).")
@click.option("--seed", default=0, show_default=True)
@click.option("--per-day", default=60.0, show_default=True, help="Mean transactions per shop-day.")
def generate_transactions(config_file, start, end, shop_ids, seed, per_day) -> None:
    """Write seeded, realistic POS CSVs (one per shop-day) into the landing folder."""
    from watershop_dagster.pos.generate import write_transaction_csvs

    config = _load(config_file)
    paths = write_transaction_csvs(config, start, end, seed=seed, shop_ids=list(shop_ids) or None,
                                   transactions_per_day=per_day)
    click.echo(f"wrote {len(paths)} CSV files under {config.transactions_landing}")


@main.command()
@config_option
@click.option("--from", "start", required=True, callback=_date)
@click.option("--to", "end", required=True, callback=_date)
@click.option("--shop", "shop_ids", multiple=True, help="Only these shops (repeatable).")
@verbose_option
def run(config_file, start, end, shop_ids, verbose) -> None:
    """Materialize every asset for each shop-day in the range through Dagster."""
    run_and_report(config_file, start, end, list(shop_ids) or None, verbose)


@main.command()
@config_option
@click.option("--shop", "shop_id", default=None, help="The customer's shop (default: the only shop).")
@click.argument("customer_id")
def forget(config_file, shop_id, customer_id) -> None:
    """Erase a customer everywhere (lake, registry, embeddings, crops, visits, Frigate landing, marts),
    verify nothing is left and audit it; resumes an interrupted erasure of them. CUSTOMER_ID is a
    customer id, or a known person's key (role/name, e.g. staff/anita: staff have no customer id)."""
    from watershop_dagster.identity.erasure import ErasureIncomplete, forget_customer

    config = _load(config_file)
    if shop_id is None:
        if len(config.shops) != 1:
            raise click.UsageError("this workspace has several shops: pass --shop")
        shop_id = config.shop_ids[0]
    try:
        report = forget_customer(config, shop_id, customer_id)
    except ErasureIncomplete as exc:
        raise click.ClickException(f"{exc}\nrun `watershop forget` again once the cause is fixed") from exc
    if report.resumed_after is not None:
        click.echo(f"resumed an interrupted erasure ({report.resumed_after} steps were done)")
    if not report.found:
        click.echo(f"no data found for {customer_id} in {shop_id}; erasure {report.erasure_id} recorded anyway")
    for dataset, rows in sorted(report.counts.items()):
        click.echo(f"  {dataset}: {rows}")
    click.echo(f"  files removed: {report.files_removed}")
    if report.marts_rebuilt:
        click.echo(f"marts rebuilt and published: {config.marts_db}")
    click.echo("verified: no trace left in the lake, landing logs, known people or served marts")
    click.echo(f"erasure {report.erasure_id} recorded in the privacy audit log")
    if report.configured_sub_labels:
        click.echo(f"warning: frigate.sub_labels in {config_path(config_file)} still maps "
                   f"{', '.join(report.configured_sub_labels)} to this person: remove it (and their face from "
                   "Frigate's library), or new Frigate events will name them again", err=True)


@main.command()
@config_option
def retention(config_file) -> None:
    """Delete embeddings and face crops older than the configured retention now."""
    from watershop_dagster.identity.privacy import apply_retention

    report = apply_retention(_load(config_file), date.today())
    click.echo(f"retention {report.audit_id}: {report.counts}, files removed {report.files_removed}")


@main.command()
@click.option("--workspace", default="data_lake", show_default=True, type=click.Path(file_okay=False))
@click.option("--days", default=7, show_default=True, help="Days of demo data, ending yesterday.")
@click.option("--seed", default=7, show_default=True)
@verbose_option
def demo(workspace, days, seed, verbose) -> None:
    """Build the demo water shop's week and a small supermarket's last days, materialize everything,
    print where to look."""
    from watershop_dagster.demo import DEMO_SHOP, MARKET_DAYS, MARKET_SHOP, build_demo, build_market, summary

    config_file = Path(workspace) / "watershop.yaml"
    end = date.today() - timedelta(days=1)
    start = end - timedelta(days=days - 1)
    build_demo(Path(workspace), start, end, seed)
    market_start, _ = build_market(config_file, end, seed, days=min(days, MARKET_DAYS))
    run_and_report(str(config_file), start, end, [DEMO_SHOP], verbose)
    run_and_report(str(config_file), market_start, end, [MARKET_SHOP], verbose, summary=summary)


def _register_serving_commands() -> None:
    from watershop_dagster.serving.commands import api, dashboard, report

    for command in (dashboard, api, report):
        main.add_command(command)


_register_serving_commands()
main.add_command(frigate)
main.add_command(experiment)
main.add_command(receipts)
main.add_command(status)

if __name__ == "__main__":
    main()
