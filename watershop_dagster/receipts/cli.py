"""`watershop receipts pull`: fetch a supermarket's receipt lines from its POS database or API now."""

from __future__ import annotations

from datetime import timedelta

import click

from watershop_dagster.cli_common import _date, _load, config_option
from watershop_dagster.receipts.ingest import ingest_receipt_days, write_zone_map
from watershop_dagster.receipts.pull import PullError, pull_receipts


@click.group()
def receipts() -> None:
    """Supermarket line-item receipts (POS database, API or CSV exports)."""


@receipts.command()
@config_option
@click.option("--shop", "shop_id", required=True)
@click.option("--from", "start", callback=_date, help="Pull every line of these days again (default: only new lines).")
@click.option("--to", "end", callback=_date)
def pull(config_file, shop_id, start, end) -> None:
    """Pull SHOP's new receipt lines (or every line from --from to --to) and land the days they touch
    in the lake, validated; `watershop run` over those days then builds the marts."""
    config = _load(config_file)
    try:
        config.shop(shop_id)
        pulled = pull_receipts(config, shop_id, start, end)
    except (KeyError, PullError) as exc:
        raise click.ClickException(str(exc).strip("'\"")) from exc
    first, last = start or end, end or start
    window = {first + timedelta(days=i) for i in range((last - first).days + 1)} if first else set()
    days = sorted(pulled.days | window)
    landed = ingest_receipt_days(config, shop_id, days) if days else {}
    write_zone_map(config, shop_id)
    lines = sum(day.valid.height for day in landed.values())
    rejected = sum(day.quarantine.height for day in landed.values())
    click.echo(f"{shop_id}: pulled {pulled.lines} lines; high-water mark {pulled.mark_before and pulled.mark_before.cursor}"
               f" -> {pulled.mark_after and pulled.mark_after.cursor}")
    if days:
        click.echo(f"landed {len(days)} day(s) {days[0]} .. {days[-1]}: {lines} lines, {rejected} quarantined")
        click.echo(f"build the marts: watershop run --shop {shop_id} --from {days[0]} --to {days[-1]}")
