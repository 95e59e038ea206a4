"""`watershop dashboard`, `watershop api` and `watershop report` (click commands).

Register them on the main group with `main.add_command(dashboard)` etc.; `python -m
watershop_dagster.serving.commands` also runs them standalone.
"""

from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path

import click

from watershop_dagster.cli_common import _date, _load, config_option
from watershop_dagster.config import config_path
from watershop_dagster.serving.settings import API_KEY_ENV_VAR, is_loopback, resolve_api_key, serving_settings

DASHBOARD_SCRIPT = Path(__file__).with_name("dashboard.py")


def _month(_ctx, _param, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        year, month = value.split("-")
        return date(int(year), int(month), 1)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a YYYY-MM month") from exc


def streamlit_command(config_file: Path, host: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(DASHBOARD_SCRIPT),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false",
        "--client.toolbarMode", "viewer",
        "--theme.base", "light",
        "--", "--config", str(config_file),
    ]


@click.command()
@config_option
@click.option("--port", type=int, default=None, help="Port (default: serving.dashboard_port, else 8501).")
@click.option("--host", default=None, help="Address to listen on (default: serving.host, else 127.0.0.1).")
def dashboard(config_file, port, host) -> None:
    """Serve the Streamlit dashboard over the marts (read-only)."""
    config = _load(config_file)
    settings = serving_settings(config)
    resolved = config_path(config_file)
    host, port = host or settings.host, port or settings.dashboard_port
    if not is_loopback(host):
        if not resolve_api_key(config):
            raise click.ClickException(
                f"refusing to serve the dashboard on {host} without a sign-in: set {API_KEY_ENV_VAR} "
                f"(or serving.api_key), or listen on 127.0.0.1"
            )
        click.echo(f"dashboard listens beyond loopback ({host}): every session must sign in with the API key",
                   err=True)
    command = streamlit_command(resolved, host, port)
    click.echo(f"dashboard on http://{host}:{port} over {config.marts_db}", err=True)
    os.execv(sys.executable, command)  # streamlit takes over this process (signals, exit code)


@click.command()
@config_option
@click.option("--port", type=int, default=None, help="Port (default: serving.api_port, else 8000).")
@click.option("--host", default=None, help="Address to listen on (default: serving.host, else 127.0.0.1).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def api(config_file, port, host, log_level) -> None:
    """Serve the read-only HTTP API over the marts (OpenAPI docs at /docs).

    Requests need the X-API-Key header; the key comes from $WATERSHOP_API_KEY or serving.api_key.
    """
    from watershop_dagster.serving.api import MissingApiKey, serve_api

    config = _load(config_file)
    settings = serving_settings(config)
    try:
        serve_api(config, host or settings.host, port or settings.api_port, log_level=log_level)
    except MissingApiKey as exc:
        raise click.ClickException(f"{exc} (e.g. `export {API_KEY_ENV_VAR}=$(openssl rand -hex 24)`)") from exc


@click.command()
@config_option
@click.option("--date", "day", callback=_date, help="Daily report for this YYYY-MM-DD day.")
@click.option("--month", callback=_month, help="Monthly report for this YYYY-MM month.")
@click.option("--shop", "shop_ids", multiple=True, help="Only these shops (repeatable); default every shop.")
def report(config_file, day, month, shop_ids) -> None:
    """Write charts (PNG), figures (CSV) and an HTML report into <workspace>/reports/<shop>/<date|month>/."""
    from watershop_dagster.reports import write_daily_report, write_monthly_report
    from watershop_dagster.serving.marts import MartsUnavailable

    if (day is None) == (month is None):
        raise click.UsageError("give exactly one of --date YYYY-MM-DD or --month YYYY-MM")
    config = _load(config_file)
    shops = list(shop_ids) or config.shop_ids
    for shop_id in shops:
        try:
            config.shop(shop_id)
        except KeyError as exc:
            raise click.BadParameter(str(exc.args[0]), param_hint="--shop") from exc
    for shop_id in shops:
        try:
            if day is not None:
                result = write_daily_report(config, shop_id, day)
            else:
                result = write_monthly_report(config, shop_id, month)
        except MartsUnavailable as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"{shop_id}: {result.html}")


@click.group()
def serving_cli() -> None:
    """Watershop serving commands (standalone entry point)."""


for _command in (dashboard, api, report):
    serving_cli.add_command(_command)

if __name__ == "__main__":
    serving_cli()
