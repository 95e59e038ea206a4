"""Zones in watershop.yaml: Frigate's camera mapping beside the plain camera list, polygon checks."""

from __future__ import annotations

import numpy as np
import pytest

from watershop_dagster.config import ConfigError, WatershopConfig, load_config
from watershop_dagster.zones import PolygonError, parse_polygon

MAPPING = """\
shops:
  - id: market
    timezone: Europe/Berlin
    cameras:
      door:
        detect: {width: 1280, height: 720, fps: 5}
        zones:
          entrance:
            coordinates: 0,720,400,720,400,500,0,500
            kind: entrance
          promo_table:
            coordinates: ["0.5,0.5", "0.7,0.5", "0.7,0.8", "0.5,0.8"]
            inertia: 5
            loitering_time: 30
            kind: promo
            category: seasonal
      aisle1:
        zones:
          dairy:
            coordinates: [[0.1, 0.1], [0.4, 0.1], [0.4, 0.6]]
            kind: shelf
            category: dairy
      office: {}
"""


def _load(tmp_path, body):
    path = tmp_path / "watershop.yaml"
    path.write_text(body)
    return load_config(path)


def test_camera_mapping_keeps_camera_ids_as_a_list_and_resolves_zones(tmp_path):
    shop = _load(tmp_path, MAPPING).shop("market")
    assert shop.cameras == ["door", "aisle1", "office"]
    assert shop.camera_settings["door"].detect.fps == 5
    zones = {(z.camera, z.name): z for z in shop.zones()}
    assert set(zones) == {("door", "entrance"), ("door", "promo_table"), ("aisle1", "dairy")}
    np.testing.assert_allclose(zones["door", "entrance"].polygon[1], [400 / 1280, 1.0])
    promo = zones["door", "promo_table"]
    assert (promo.kind, promo.category, promo.inertia, promo.loitering_time) == ("promo", "seasonal", 5, 30)
    dairy = zones["aisle1", "dairy"]
    assert (dairy.inertia, dairy.loitering_time, dairy.kind) == (3, 0, "shelf")
    assert [z.name for z in shop.zones("aisle1")] == ["dairy"]
    assert shop.zones("office") == []


def test_plain_camera_list_still_works_without_zones(tmp_path):
    shop = _load(tmp_path, "shops:\n  - id: a\n    cameras: [door, till]\n").shop("a")
    assert shop.cameras == ["door", "till"] and shop.camera_settings == {} and shop.zones() == []
    assert WatershopConfig.model_validate({"shops": [{"id": "k", "cameras": []}]}).shops[0].cameras == []


@pytest.mark.parametrize(
    ("coordinates", "problem"),
    [
        ("0.1,0.1,0.5,0.1", "at least 3 points"),
        ("0.1,0.1,0.5,0.1,0.3", "odd number"),
        ("0.1,0.1,abc,0.1,0.3,0.5", "non-numeric coordinate 'abc'"),
        ("0.1,0.1,1.5,0.1,0.3,0.5", "within 0-1"),
        ("-0.1,0.1,0.5,0.1,0.3,0.5", "negative"),
        ("0.1,0.1,0.5,0.5,0.9,0.9", "zero area"),
        ("0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2", "zero area"),
        ("0,0,1300,0,1300,700", "outside the 1280x720"),
    ],
)
def test_bad_polygon_is_a_config_error_naming_shop_camera_and_zone(tmp_path, coordinates, problem):
    body = MAPPING.replace("coordinates: 0,720,400,720,400,500,0,500", f'coordinates: "{coordinates}"')
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, body)
    message = str(error.value)
    assert "shop 'market'" in message and "camera 'door'" in message and "zone 'entrance'" in message
    assert problem in message


def test_pixel_coordinates_need_the_detect_size(tmp_path):
    body = MAPPING.replace("coordinates: [[0.1, 0.1], [0.4, 0.1], [0.4, 0.6]]", "coordinates: 10,10,300,10,300,200")
    with pytest.raises(ConfigError, match=r"shop 'market' camera 'aisle1' zone 'dairy': pixel coordinates need"):
        _load(tmp_path, body)


@pytest.mark.parametrize(
    ("replace", "with_", "bad_key"),
    [
        ("kind: shelf", "kind: freezer", "kind"),
        ("category: dairy", "category: dairy\n            objects: [person]", "objects"),
        ("inertia: 5", "inertia: 0", "inertia"),
        ("loitering_time: 30", "loitering_time: -1", "loitering_time"),
        ("promo_table:", "promo table:", "promo table"),
    ],
)
def test_bad_zone_settings_name_the_key(tmp_path, replace, with_, bad_key):
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, MAPPING.replace(replace, with_))
    assert bad_key in str(error.value)


def test_settings_for_an_unlisted_camera_are_refused():
    with pytest.raises(ValueError, match="unknown camera"):
        WatershopConfig.model_validate({"shops": [{"id": "k", "cameras": ["a"], "camera_settings": {"b": {}}}]})


def test_parse_polygon_accepts_frigate_forms_and_rejects_garbage():
    expected = np.array([[0.1, 0.2], [0.5, 0.2], [0.5, 0.6]])
    for form in ("0.1,0.2,0.5,0.2,0.5,0.6", ["0.1,0.2", "0.5,0.2", "0.5,0.6"], [[0.1, 0.2], [0.5, 0.2], [0.5, 0.6]]):
        np.testing.assert_allclose(parse_polygon(form), expected)
    for garbage in (None, 5, [[0.1, 0.2, 0.3]], ["0.1,0.2", {"x": 1}], "0.1,0.2,nan,0.2,0.5,0.6"):
        with pytest.raises(PolygonError):
            parse_polygon(garbage)
