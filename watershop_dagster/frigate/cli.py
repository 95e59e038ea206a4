"""`watershop frigate ...`: commands for shops that run Frigate NVR."""

from __future__ import annotations

import click

from watershop_dagster.cli_common import config_option
from watershop_dagster.config import ConfigError, config_path


@click.group()
def frigate() -> None:
    """Frigate NVR: import its cameras and zones."""


@frigate.command("import-config")
@click.argument("frigate_config", type=click.Path(exists=True, dir_okay=False))
@click.option("--shop", "shop_id", help="Shop to import into; required when watershop.yaml has several.")
@config_option
def import_config(frigate_config, shop_id, config_file) -> None:
    """Import cameras (detect width/height/fps) and zones from FRIGATE_CONFIG into watershop.yaml."""
    from watershop_dagster.frigate.config_import import import_frigate_config

    target = config_path(config_file)
    try:
        cameras = import_frigate_config(frigate_config, target, shop_id)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    for camera in cameras:
        size = "x".join(str(camera.detect[k]) for k in ("width", "height") if k in camera.detect) or "native size"
        zones = ", ".join(camera.zones) or "no zones"
        click.echo(f"{camera.name}: {size} @ {camera.detect['fps']} fps; {zones}")
    click.echo(f"updated {target}")
