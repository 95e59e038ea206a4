"""Import cameras (detect size/fps) and zones from a Frigate config into a shop of watershop.yaml.

Frigate stays the one source of truth for polygons: a re-import replaces each imported camera's
detect block and zones, keeping only what Frigate does not know (a zone's `kind` and `category`,
cameras that Frigate does not have). Everything else in watershop.yaml, comments included, is kept.
The result is validated as a whole before it atomically replaces the file.
"""

from __future__ import annotations

import io
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml
from ruamel.yaml import YAML

from watershop_dagster.config import ConfigError, load_config
from watershop_dagster.zones.config import DEFAULT_DETECT_FPS, DEFAULT_INERTIA, PolygonError, parse_polygon

# Zone kind guessed from words in a Frigate zone name; anything else is an aisle. Users refine
# `kind` in watershop.yaml and re-imports keep their choice.
KIND_WORDS = {
    "entrance": ("entrance", "entry", "door", "exit"),
    "checkout": ("checkout", "till", "cashier", "register", "counter", "queue"),
    "promo": ("promo", "offer", "display", "endcap"),
    "shelf": ("shelf", "shelves", "rack", "fridge", "freezer"),
}
DETECT_KEYS = ("width", "height", "fps")


class FrigateImportError(ConfigError):
    """A Frigate config (or the import target) that cannot be used; the message names the culprit."""


@dataclass(frozen=True)
class ImportedCamera:
    name: str
    detect: dict
    zones: dict[str, dict]


def guess_kind(zone_name: str) -> str:
    lowered = zone_name.lower()
    for kind, words in KIND_WORDS.items():
        if any(word in lowered for word in words):
            return kind
    return "aisle"


def read_frigate_cameras(text: str, source: str = "Frigate config") -> list[ImportedCamera]:
    """Cameras and enabled zones of a Frigate config; unknown keys and zone objects/filters ignored."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FrigateImportError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("cameras"), dict) or not raw["cameras"]:
        raise FrigateImportError(f"{source}: no `cameras` mapping")
    global_detect = raw.get("detect") if isinstance(raw.get("detect"), dict) else {}
    cameras = []
    for name, camera in raw["cameras"].items():
        camera = camera if isinstance(camera, dict) else {}
        own_detect = camera.get("detect") if isinstance(camera.get("detect"), dict) else {}
        merged = {**global_detect, **own_detect}
        detect = {key: merged[key] for key in DETECT_KEYS if merged.get(key) is not None}
        detect.setdefault("fps", DEFAULT_DETECT_FPS)
        zones = {}
        raw_zones = camera.get("zones") if isinstance(camera.get("zones"), dict) else {}
        for zone_name, zone in raw_zones.items():
            zone = zone if isinstance(zone, dict) else {}
            if zone.get("enabled") is False:
                continue  # Frigate ignores a disabled zone at run time
            where = f"{source}: camera {name!r} zone {zone_name!r}"
            if "coordinates" not in zone:
                raise FrigateImportError(f"{where}: no coordinates")
            try:
                parse_polygon(zone["coordinates"], detect.get("width"), detect.get("height"))
            except PolygonError as exc:
                raise FrigateImportError(f"{where}: {exc}") from None
            zones[str(zone_name)] = {
                "coordinates": zone["coordinates"],
                "inertia": zone.get("inertia", DEFAULT_INERTIA),
                "loitering_time": zone.get("loitering_time", 0),
            }
        cameras.append(ImportedCamera(str(name), detect, zones))
    return cameras


def _round_trip_yaml() -> YAML:
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.indent(mapping=2, sequence=4, offset=2)  # the layout `watershop init` writes
    rt.width = 4096
    return rt


def _pick_shop(shops, shop_id: str | None, path: Path):
    ids = [shop.get("id") for shop in shops]
    if shop_id is None:
        if len(shops) != 1:
            raise FrigateImportError(f"{path} has shops {ids}: choose one with --shop")
        return shops[0]
    for shop in shops:
        if shop.get("id") == shop_id:
            return shop
    raise FrigateImportError(f"{path}: unknown shop {shop_id!r}; configured: {ids}")


def _merged_cameras(existing, imported: list[ImportedCamera]) -> dict:
    """Existing cameras in their order (kept as they are unless Frigate has them), then new ones."""
    if isinstance(existing, dict):
        cameras = {name: settings for name, settings in existing.items()}
    else:
        cameras = {name: {} for name in (existing or [])}
    for camera in imported:
        old = cameras.get(camera.name) or {}
        old_zones = old.get("zones") or {}
        zones = {}
        for zone_name, zone in camera.zones.items():
            kept = old_zones.get(zone_name) or {}
            zones[zone_name] = {**zone, "kind": kept.get("kind", guess_kind(zone_name))}
            if kept.get("category") is not None:
                zones[zone_name]["category"] = kept["category"]
        settings = {"detect": camera.detect}
        if zones:
            settings["zones"] = zones
        if old.get("people") is not None:  # Watershop's own switch: Frigate does not know it
            settings["people"] = old["people"]
        cameras[camera.name] = settings
    return cameras


def import_frigate_config(frigate_config: str | os.PathLike, watershop_config: str | os.PathLike,
                          shop_id: str | None = None) -> list[ImportedCamera]:
    """Write the Frigate config's cameras and zones into the shop's `cameras` of watershop.yaml."""
    frigate_config, watershop_config = Path(frigate_config), Path(watershop_config)
    try:
        frigate_text = frigate_config.read_text()
    except OSError as exc:
        raise FrigateImportError(f"cannot read {frigate_config}: {exc}") from exc
    imported = read_frigate_cameras(frigate_text, str(frigate_config))
    load_config(watershop_config)  # the target must be valid before we touch it
    rt = _round_trip_yaml()
    document = rt.load(watershop_config.read_text())
    shop = _pick_shop(document["shops"], shop_id, watershop_config)
    shop["cameras"] = _merged_cameras(shop.get("cameras"), imported)
    buffer = io.StringIO()
    rt.dump(document, buffer)
    _replace_validated(watershop_config, buffer.getvalue())
    return imported


def _replace_validated(path: Path, text: str) -> None:
    """Write `text` next to `path`, load it as a watershop config, then rename it over `path`."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(text)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        try:
            load_config(tmp)
        except ConfigError as exc:
            raise FrigateImportError(f"imported config not written, it would be invalid:\n{exc}") from exc
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
