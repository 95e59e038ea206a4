"""`watershop frigate ...`: commands for shops that run Frigate NVR."""

from __future__ import annotations

from functools import partial

import click

from watershop_dagster.cli_common import _date, _load, config_option
from watershop_dagster.config import ConfigError, FrigateConfig, WatershopConfig, config_path


@click.group()
def frigate() -> None:
    """Frigate NVR: import its cameras and zones, land its events (live or backfilled), alert."""


def _frigate_section(config: WatershopConfig) -> FrigateConfig:
    """The config's `frigate:` section (defaults when absent: the only shop, a local broker)."""
    if config.frigate is not None:
        return config.frigate
    if len(config.shops) > 1:
        raise click.ClickException("several shops: add a `frigate:` section naming the shop Frigate feeds")
    return FrigateConfig()


def live_alerts(config: WatershopConfig, section: FrigateConfig, shop, client):
    """The alert service of `listen`: the config's live rules, every configured channel (MQTT through
    `client`), the cooldown and the failed deliveries left in the log by an earlier run."""
    import time

    from watershop_dagster.alerts.channels import configured_senders
    from watershop_dagster.alerts.delivery import LiveDelivery, logged_cooldown, pending_live
    from watershop_dagster.alerts.model import SOURCE_FRIGATE
    from watershop_dagster.frigate.alerts import AlertRules, AlertService
    from watershop_dagster.frigate.events import sub_label_people

    people = sub_label_people(config.known_people_dir, section.sub_labels)
    cooldown = logged_cooldown(config, shop.id, SOURCE_FRIGATE, time.time())
    rules = AlertRules(shop.id, config.alerts.rules, people, shop.zones(), cooldown)
    delivery = LiveDelivery(config, shop.id, configured_senders(config, client.publish))
    return AlertService(rules, delivery, pending_live(config, shop.id, SOURCE_FRIGATE))


@frigate.command()
@config_option
@click.option("--mqtt-host", help="Broker host (default: frigate.mqtt_host, else 127.0.0.1).")
@click.option("--mqtt-port", type=int, help="Broker port (default: frigate.mqtt_port, else 1883).")
@click.option("--topic-prefix", help="Frigate's MQTT topic prefix (default: frigate.topic_prefix, else frigate).")
@click.option("--username", help="Broker user (default: frigate.username).")
@click.option("--password", help="Broker password (default: frigate.password).")
def listen(config_file, mqtt_host, mqtt_port, topic_prefix, username, password) -> None:
    """Land Frigate's MQTT events and reviews as they come (a long-running service; SIGTERM stops it)."""
    import logging

    from watershop_dagster.frigate.alerts import LIVE_KINDS
    from watershop_dagster.frigate.listener import MqttSettings
    from watershop_dagster.frigate.listener import listen as run_listener

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = _load(config_file)
    section = _frigate_section(config)
    shop = config.frigate_shop if config.frigate else config.shops[0]
    settings = MqttSettings(
        host=mqtt_host or section.mqtt_host, port=mqtt_port or section.mqtt_port,
        topic_prefix=topic_prefix or section.topic_prefix, username=username or section.username,
        password=password or section.password, client_id=section.client_id)
    click.echo(f"listening on {settings.host}:{settings.port} {settings.topic_prefix}/# for shop {shop.id}; "
               f"landing in {config.frigate_landing / shop.id}")
    live = any(rule.kind in LIVE_KINDS for rule in config.alerts.rules)
    make_alerts = partial(live_alerts, config, section, shop) if live else None
    try:
        listener = run_listener(settings, config.frigate_landing, shop.id, set(shop.cameras), shop.tz,
                                section.fsync_seconds, make_alerts)
    except RuntimeError as exc:
        raise click.ClickException(f"{exc} (messages not landed stay with the broker)") from exc
    click.echo(f"stopped: {listener.writer.written} message(s) landed, {listener.writer.duplicates} duplicate(s) skipped")


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


@frigate.command()
@config_option
@click.option("--url", help="Frigate's address, e.g. http://frigate:5000 (default: frigate.api_url).")
@click.option("--from", "first", required=True, callback=_date, help="First local day (YYYY-MM-DD).")
@click.option("--to", "last", required=True, callback=_date, help="Last local day (YYYY-MM-DD).")
@click.option("--camera", help="Only this camera.")
def pull(config_file, url, first, last, camera) -> None:
    """Backfill finished person events of days from Frigate's HTTP API into landing (idempotent)."""
    import requests

    from watershop_dagster.frigate.landing import LandingWriter
    from watershop_dagster.frigate.pull import pull_events

    config = _load(config_file)
    section = _frigate_section(config)
    url = url or section.api_url
    if not url:
        raise click.ClickException("no --url and no frigate.api_url in the config")
    if last < first:
        raise click.ClickException("--to is before --from")
    shop = config.frigate_shop if config.frigate else config.shops[0]
    writer = LandingWriter(config.frigate_landing, shop.id, set(shop.cameras), shop.tz)
    try:
        report = pull_events(url, writer, first, last, camera)
    except (requests.RequestException, ValueError) as exc:
        raise click.ClickException(f"pull from {url} failed: {exc}") from exc
    click.echo(f"{report.events} event(s) in {report.pages} page(s): {report.landed} landed, "
               f"{report.unchanged} already landed, {report.in_progress} still in progress")
    for path in sorted(report.files):
        click.echo(f"  {path}")
