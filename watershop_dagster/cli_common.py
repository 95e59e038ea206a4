"""Options and parsers shared by every `watershop` command module."""

from __future__ import annotations

from datetime import date

import click

from watershop_dagster.config import CONFIG_ENV_VAR, ConfigError, WatershopConfig, load_config

config_option = click.option(
    "--config",
    "config_file",
    envvar=CONFIG_ENV_VAR,
    type=click.Path(dir_okay=False),
    help=f"Workspace config file (default: ${CONFIG_ENV_VAR}, else ./data_lake/watershop.yaml).",
)


def _load(config_file: str | None) -> WatershopConfig:
    try:
        return load_config(config_file)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _date(_ctx, _param, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a YYYY-MM-DD date") from exc
