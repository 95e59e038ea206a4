"""`watershop frigate import-config`: a real-shaped Frigate config into watershop.yaml."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from watershop_dagster.cli import main
from watershop_dagster.config import init_workspace, load_config
from watershop_dagster.frigate.config_import import FrigateImportError, import_frigate_config, read_frigate_cameras

# The shape of a Frigate 0.14+ config.yml: global blocks, per-camera ffmpeg/detect/record, zones in
# both coordinate forms (relative string; legacy pixel list), objects/filters/friendly names.
FRIGATE_CONFIG = """\
mqtt:
  enabled: true
  host: 192.168.1.20
  user: "{FRIGATE_MQTT_USER}"
  password: "{FRIGATE_MQTT_PASSWORD}"

detectors:
  ov:
    type: openvino
    device: GPU

model:
  width: 300
  height: 300
  path: /openvino-model/ssdlite_mobilenet_v2.xml

detect:
  enabled: true
  fps: 5

objects:
  track:
    - person

record:
  enabled: true
  retain:
    days: 7
    mode: motion

snapshots:
  enabled: true

go2rtc:
  streams:
    door: rtsp://{FRIGATE_RTSP_USER}:{FRIGATE_RTSP_PASSWORD}@192.168.1.31:554/stream1

cameras:
  door:
    enabled: true
    ffmpeg:
      inputs:
        - path: rtsp://127.0.0.1:8554/door
          input_args: preset-rtsp-restream
          roles: [detect, record]
    detect:
      width: 1280
      height: 720
      fps: 15
    motion:
      mask:
        - 0.9,0,1,0,1,0.1,0.9,0.1
    zones:
      front_entrance:
        friendly_name: Front entrance
        coordinates: 0.05,0.95,0.35,0.95,0.35,0.6,0.05,0.6
        inertia: 2
        objects:
          - person
      promo_stand:
        coordinates: 0.5,0.5,0.8,0.5,0.8,0.9,0.5,0.9
        loitering_time: 20
        filters:
          person:
            min_area: 5000
            threshold: 0.7
      summer_display:
        enabled: false
        coordinates: 0.1,0.1,0.2,0.1,0.2,0.2
    review:
      alerts:
        required_zones: [front_entrance]
  aisle_2:
    ffmpeg:
      inputs:
        - path: rtsp://192.168.1.32:554/stream1
          roles: [detect]
    detect:
      width: 1920
      height: 1080
    zones:
      dairy_shelf:
        coordinates:
          - 100,200
          - 900,200
          - 900,1000
          - 100,1000
        inertia: 4
        loitering_time: 60
      aisle:
        coordinates: 0,0,1920,0,1920,1080,0,1080
  till:
    ffmpeg:
      inputs:
        - path: rtsp://192.168.1.33:554/stream1
          roles: [detect, record]
    zones:
      checkout_queue:
        coordinates: 0.2,0.3,0.9,0.3,0.9,1,0.2,1
        speed_threshold: 1
        distances: 1,2,1,2
"""


@pytest.fixture
def workspace(tmp_path):
    init_workspace(tmp_path / "ws", shop_id="market", timezone="Europe/Berlin", cameras=["counter", "door"])
    frigate = tmp_path / "frigate.yml"
    frigate.write_text(FRIGATE_CONFIG)
    return tmp_path / "ws" / "watershop.yaml", frigate


def test_import_writes_cameras_and_zones_and_keeps_the_rest_of_the_file(workspace):
    target, frigate = workspace
    before = target.read_text()
    import_frigate_config(frigate, target)
    after = target.read_text()
    assert "# Watershop workspace configuration." in after and "embeddings_days: 365" in after
    assert "face_match_distance: 0.5   # max embedding distance" in after
    shop = load_config(target).shop("market")
    assert shop.cameras == ["counter", "door", "aisle_2", "till"]
    assert shop.camera_settings["door"].detect.model_dump() == {"width": 1280, "height": 720, "fps": 15}
    assert shop.camera_settings["aisle_2"].detect.fps == 5  # Frigate's global detect fps
    assert shop.camera_settings["till"].detect.width is None
    zones = {(z.camera, z.name): z for z in shop.zones()}
    assert set(zones) == {("door", "front_entrance"), ("door", "promo_stand"), ("aisle_2", "dairy_shelf"),
                          ("aisle_2", "aisle"), ("till", "checkout_queue")}  # the disabled zone is left out
    assert [zones["door", "front_entrance"].kind, zones["door", "promo_stand"].kind,
            zones["aisle_2", "dairy_shelf"].kind, zones["aisle_2", "aisle"].kind,
            zones["till", "checkout_queue"].kind] == ["entrance", "promo", "shelf", "aisle", "checkout"]
    assert zones["door", "front_entrance"].inertia == 2 and zones["door", "promo_stand"].loitering_time == 20
    np.testing.assert_allclose(zones["aisle_2", "dairy_shelf"].polygon[2], [900 / 1920, 1000 / 1080])
    assert before != after and "objects" not in after.split("shops:")[1].split("retention:")[0]


def test_reimport_keeps_user_kind_and_category_and_is_idempotent(workspace):
    target, frigate = workspace
    import_frigate_config(frigate, target)
    edited = target.read_text().replace(" kind: aisle\n", " kind: aisle\n            category: bakery\n")
    target.write_text(edited.replace("kind: promo", "kind: shelf"))
    import_frigate_config(frigate, target)
    once = target.read_text()
    import_frigate_config(frigate, target)
    assert target.read_text() == once
    zones = {z.name: z for z in load_config(target).shop("market").zones()}
    assert (zones["aisle"].category, zones["promo_stand"].kind) == ("bakery", "shelf")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("0.5,0.5,0.8,0.5,0.8,0.9,0.5,0.9", "0.5,0.5,0.8,0.5",
         "camera 'door' zone 'promo_stand': a polygon needs at least 3"),
        ("0,0,1920,0,1920,1080", "0,0,2000,0,1920,1080",
         "camera 'aisle_2' zone 'aisle': pixel coordinates outside"),
        ("0.2,0.3,0.9,0.3,0.9,1,0.2,1", "20,30,90,30,90,100",
         "camera 'till' zone 'checkout_queue': pixel coordinates need"),
    ],
)
def test_bad_polygon_names_camera_and_zone_and_leaves_the_file_alone(workspace, old, new, message):
    target, frigate = workspace
    frigate.write_text(FRIGATE_CONFIG.replace(old, new))
    before = target.read_text()
    with pytest.raises(FrigateImportError, match=message):
        import_frigate_config(frigate, target)
    assert target.read_text() == before
    assert not [p.name for p in target.parent.iterdir() if p.name.endswith(".tmp")]


def test_shop_choice_and_unusable_files(tmp_path, workspace):
    target, frigate = workspace
    target.write_text(target.read_text().replace("shops:\n", "shops:\n  - id: other\n    cameras: []\n", 1))
    with pytest.raises(FrigateImportError, match=r"choose one with --shop"):
        import_frigate_config(frigate, target)
    with pytest.raises(FrigateImportError, match="unknown shop 'nope'"):
        import_frigate_config(frigate, target, "nope")
    import_frigate_config(frigate, target, "market")
    assert load_config(target).shop("other").cameras == []
    with pytest.raises(FrigateImportError, match="no `cameras` mapping"):
        read_frigate_cameras("mqtt:\n  host: x\n")
    with pytest.raises(FrigateImportError, match="not valid YAML"):
        read_frigate_cameras("cameras: [\n")
    with pytest.raises(FrigateImportError, match="camera 'a' zone 'z': no coordinates"):
        read_frigate_cameras("cameras:\n  a:\n    zones:\n      z: {inertia: 3}\n")


def test_cli_import_config(workspace):
    target, frigate = workspace
    result = CliRunner().invoke(main, ["frigate", "import-config", str(frigate), "--config", str(target)])
    assert result.exit_code == 0, result.output
    assert "door: 1280x720 @ 15 fps; front_entrance, promo_stand" in result.output
    assert "till: native size @ 5 fps; checkout_queue" in result.output
    frigate.write_text(FRIGATE_CONFIG.replace("0.05,0.95,0.35,0.95", "0.05,0.95,x,0.95"))
    result = CliRunner().invoke(main, ["frigate", "import-config", str(frigate), "--config", str(target)])
    assert result.exit_code == 1 and "camera 'door' zone 'front_entrance': non-numeric coordinate 'x'" in result.output


def test_imported_zones_drive_the_analytics(workspace):
    """Frigate config -> watershop.yaml -> shop.zones(camera) -> zone visits on the same camera."""
    from tests.test_zones_analytics import frame, track
    from watershop_dagster.zones import analyse_observations

    target, frigate = workspace
    import_frigate_config(frigate, target)
    shop = load_config(target).shop("market")
    walk_in = track([(2, (0.2, 0.9)), (30, (0.65, 0.8)), (2, (0.9, 0.2))], "p1", camera="door")
    result = analyse_observations(frame(walk_in), shop.zones("door"))
    assert result.visits.select("zone", "kind", "exit_reason").rows() == [
        ("front_entrance", "entrance", "left_zone"), ("promo_stand", "promo", "left_zone")]
    assert result.loitering["zone"].to_list() == ["promo_stand"]
    assert result.footfall["direction"].to_list() == ["in"]
