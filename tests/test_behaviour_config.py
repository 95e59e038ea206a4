"""Which cameras track people: zones, or `people: true`; `people` survives a Frigate re-import."""

from __future__ import annotations

from watershop_dagster.behaviour.partition import people_cameras
from watershop_dagster.config import CONFIG_FILENAME, load_config
from watershop_dagster.frigate.config_import import import_frigate_config

CONFIG = """\
shops:
  - id: market
    cameras:
      door:
        zones:
          entrance: {coordinates: "0,0.5,0.3,0.5,0.3,1,0,1", kind: entrance}
      backroom: {people: true}
      till: {}
      quiet:
        people: false
        zones:
          shelf: {coordinates: "0,0,1,0,1,1"}
  - id: water
    cameras: [counter]
"""
FRIGATE = """\
cameras:
  backroom:
    detect: {width: 1280, height: 720, fps: 5}
    zones:
      back_door: {coordinates: "0,0,100,0,100,100"}
"""


def test_cameras_with_zones_or_people_true_track_people(tmp_path):
    (tmp_path / CONFIG_FILENAME).write_text(CONFIG)
    config = load_config(tmp_path / CONFIG_FILENAME)
    assert people_cameras(config.shop("market")) == ["door", "backroom"]
    assert people_cameras(config.shop("water")) == []


def test_a_frigate_reimport_keeps_the_people_switch(tmp_path):
    (tmp_path / CONFIG_FILENAME).write_text(CONFIG)
    (tmp_path / "frigate.yml").write_text(FRIGATE)
    import_frigate_config(tmp_path / "frigate.yml", tmp_path / CONFIG_FILENAME, "market")
    shop = load_config(tmp_path / CONFIG_FILENAME).shop("market")
    assert shop.camera_settings["backroom"].people is True
    assert [zone.name for zone in shop.zones("backroom")] == ["back_door"]


def test_a_shop_frigate_feeds_re_tracks_recordings_only_when_told_to(tmp_path):
    """Frigate's events already fill the behaviour datasets of its shop (source=frigate); tracking the
    recordings too would overwrite the same camera-day partitions."""
    (tmp_path / CONFIG_FILENAME).write_text(CONFIG + "frigate:\n  shop: market\n")
    config = load_config(tmp_path / CONFIG_FILENAME)
    assert people_cameras(config.shop("market")) == ["backroom"]  # the explicit `people: true` only
    assert config.shop("market").zones("door")  # its zones still drive Frigate's zone analytics
