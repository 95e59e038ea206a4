"""Workspace configuration: one YAML file names the shops, their cameras and every path.

Relative paths are resolved against the folder holding the config file, so a workspace can be
moved or mounted anywhere. Unknown keys are errors: a typo must not silently fall back to a default.
"""

from __future__ import annotations

import json
import os
from datetime import date, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# the POS vocabulary is defined in `vocabulary`; importable from here as before
from watershop_dagster.atomic import atomic_write_text
from watershop_dagster.shelf.settings import ShelfConfig
from watershop_dagster.vocabulary import (  # noqa: F401
    CAN_SIZES,
    KNOWN_ROLES,
    PAYMENT_MODES,
    PAYMENT_STATUSES,
    RECEIPT_COLUMNS,
)
from watershop_dagster.zones.config import CameraSettings, PolygonError, Zone, resolve_zones

CONFIG_ENV_VAR = "WATERSHOP_CONFIG"
DEFAULT_WORKSPACE = Path("data_lake")
CONFIG_FILENAME = "watershop.yaml"

POS_COLUMNS = (
    "transaction_id",
    "timestamp",
    "customer_id",
    "payment_mode",
    "can_size",
    "number_of_cans",
    "amount",
    "payment_status",
)


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the bad key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paths(_Strict):
    landing: Path = Path("landing")
    footage_root: Path | None = Field(
        default=None, description="Footage root (e.g. a NAS share); defaults to <landing>/footage"
    )
    known_people: Path = Path("known_people")
    lake: Path = Path("lake")
    warehouse: Path = Path("warehouse")
    dagster_home: Path = Path(".dagster_home")


RECEIPT_SOURCES = ("csv", "postgres", "mariadb", "http")
_SQL_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$"


class ReceiptsConfig(_Strict):
    """Where a supermarket shop's line-item receipts come from (README "Supermarket receipts").

    Every source lands the same validated lake data: `csv` reads exports dropped into
    landing/receipts/<shop>/; `postgres`/`mariadb` pull the POS database and `http` a paged JSON API,
    incrementally past a high-water mark on `cursor`, into landing/receipts/<shop>/pulled/.
    Secrets stay out of the file: `${VAR}` in `dsn`, `url` and `headers` is read from the
    environment at pull time."""

    source: Literal["csv", "postgres", "mariadb", "http"] = "csv"
    columns: dict[str, str] = Field(
        default_factory=dict, description="Watershop receipt column -> the export's / table's / API's name"
    )
    zone_map: Path | None = Field(
        default=None, description="Versioned category -> zone CSV (category, zone, valid_from, valid_to); "
                                  "default: zone categories of the shop's cameras, never changing",
    )
    dsn: str | None = Field(default=None, description="postgresql://user@host:5432/db or mysql://user@host:3306/db")
    table: str | None = Field(default=None, pattern=_SQL_IDENTIFIER)
    query: str | None = Field(default=None, description="A SELECT used instead of `table` (as a subquery)")
    url: str | None = Field(default=None, description="First page of the API's receipt lines")
    cursor: str | None = Field(default=None, pattern=_SQL_IDENTIFIER,
                               description="Ever-increasing column/field (line id or updated_at): the high-water mark")
    key: str | None = Field(default=None, pattern=_SQL_IDENTIFIER,
                            description="Unique line id (default: the cursor); a re-pulled line replaces its copy")
    batch_size: int = Field(default=5000, ge=1, le=1_000_000)
    items_key: str = Field(default="items", description="API: the page's list of lines")
    next_key: str = Field(default="next", description="API: the next page's URL (null on the last page)")
    since_param: str = Field(default="since", description="API: query parameter carrying the high-water mark")
    from_param: str = "from"
    to_param: str = "to"
    headers: dict[str, str] = Field(default_factory=dict, description="API request headers, e.g. "
                                    "{Authorization: 'Bearer ${POS_TOKEN}'}")
    timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(RECEIPT_COLUMNS))
        if unknown:
            raise ValueError(f"unknown receipt column(s) {unknown}; known: {list(RECEIPT_COLUMNS)}")
        return value

    @model_validator(mode="after")
    def _source_settings(self) -> ReceiptsConfig:
        needed = {"postgres": ("dsn", "cursor"), "mariadb": ("dsn", "cursor"), "http": ("url", "cursor")}
        missing = [name for name in needed.get(self.source, ()) if getattr(self, name) is None]
        if self.source in ("postgres", "mariadb") and (self.table is None) == (self.query is None):
            missing.append("table or query (one of them)")
        if missing:
            raise ValueError(f"receipts source {self.source!r} needs {', '.join(missing)}")
        return self

    @property
    def pulled(self) -> bool:
        return self.source != "csv"


class ShopConfig(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    name: str | None = None
    timezone: str = "UTC"
    cameras: list[str] = Field(
        default_factory=lambda: ["counter"],
        description="Camera ids; or, in Frigate's shape, a mapping camera -> {detect, zones} (see zones/config.py)",
    )
    camera_settings: dict[str, CameraSettings] = Field(
        default_factory=dict, description="Filled from the mapping form of `cameras`; cameras without zones are absent"
    )
    prices: dict[Literal["10L", "20L"], float] = Field(default_factory=dict)
    opening_time: time = time(6, 0)
    closing_time: time = time(21, 0)
    pos_columns: dict[str, str] = Field(
        default_factory=dict,
        description="Map from Watershop's POS column name to the column name in this shop's CSV export",
    )
    receipts: ReceiptsConfig | None = Field(
        default=None, description="A supermarket's line-item receipts (none: the shop has no receipts)"
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @model_validator(mode="before")
    @classmethod
    def _cameras_mapping(cls, data):
        """`cameras: {door: {detect: ..., zones: ...}}` -> the id list plus `camera_settings`."""
        if isinstance(data, dict) and isinstance(data.get("cameras"), dict):
            if data.get("camera_settings"):
                raise ValueError("give camera settings in the `cameras` mapping or in `camera_settings`, not both")
            cameras = data["cameras"]
            data = {**data, "cameras": list(cameras),
                    "camera_settings": {name: settings or {} for name, settings in cameras.items()}}
        return data

    @model_validator(mode="after")
    def _zones_resolve(self) -> ShopConfig:
        unknown = sorted(set(self.camera_settings) - set(self.cameras))
        if unknown:
            raise ValueError(f"shop {self.id!r}: settings for unknown camera(s) {unknown}")
        for camera, settings in self.camera_settings.items():
            try:
                resolve_zones(camera, settings)
            except PolygonError as exc:
                raise ValueError(f"shop {self.id!r} {exc}") from None
        return self

    def zones(self, camera: str | None = None) -> list[Zone]:
        """Zones of one camera (or of every camera), polygons in relative coordinates."""
        return [zone for name, settings in self.camera_settings.items() if camera in (None, name)
                for zone in resolve_zones(name, settings)]

    @field_validator("cameras")
    @classmethod
    def _camera_ids(cls, value: list[str]) -> list[str]:
        for camera in value:
            if not camera or not all(ch.isalnum() or ch in "_-" for ch in camera):
                raise ValueError(f"camera id {camera!r} may hold only letters, digits, '_' and '-'")
        if len(set(value)) != len(value):
            raise ValueError("camera ids must be unique")
        return value

    @field_validator("pos_columns")
    @classmethod
    def _known_pos_columns(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(POS_COLUMNS))
        if unknown:
            raise ValueError(f"unknown POS column(s) {unknown}; known: {list(POS_COLUMNS)}")
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Retention(_Strict):
    embeddings_days: int = Field(default=365, ge=1)
    face_crops_days: int = Field(default=7, ge=1)
    quarantine_days: int = Field(default=90, ge=1)


class Thresholds(_Strict):
    face_match_distance: float = Field(default=0.5, gt=0, lt=1)
    face_ambiguous_margin: float = Field(default=0.05, ge=0, lt=1)
    face_separation: float = Field(
        default=0.1, ge=0, description="A match in the ambiguous band is taken when every other identity is this much "
        "farther and the two are each other's nearest (identity.matching); 1 or more keeps every such case ambiguous",
    )
    visit_gap_seconds: float = Field(default=60.0, gt=0)
    min_visit_seconds: float = Field(default=2.0, ge=0)
    max_visit_hours: float = Field(default=6.0, gt=0)
    zone_exit_debounce_seconds: float = Field(
        default=1.0, gt=0, description="A person out of a zone for longer than this has left it (shorter: a dropout)"
    )
    zone_presence_gap_seconds: float = Field(
        default=1.5, ge=0, description="A zone visit beginning at most this long after another ended, where it ended, "
        "continues that presence (loitering); 0: each visit stands alone",
    )


class VisionConfig(_Strict):
    motion_threshold: float = Field(default=0.004, ge=0, le=1)
    min_face_px: int = Field(default=40, ge=16)
    max_fps: float = Field(default=5.0, gt=0)
    store_face_crops: bool = False
    workers: int = Field(default_factory=lambda: min(os.cpu_count() or 1, 8), ge=1, le=64,
                         description="Processes per camera-day run; a long file is split into slices across them")


class SmtpConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = "watershop@localhost"
    recipients: list[str] = Field(min_length=1)
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout_seconds: float = Field(default=10.0, gt=0)


class MqttBrokerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None


AlertChannel = Literal["webhook", "mqtt", "email"]


class AlertRule(_Strict):
    """An alert: a known person of `roles` enters (`known_person`), a person's presence in a zone
    reaches its loitering_time (`loitering`), or an item falls in a shelf zone (`falling_object`);
    `zones` limits it (empty: every zone)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    kind: Literal["known_person", "loitering", "falling_object"]
    roles: list[str] = Field(default_factory=lambda: ["vip", "blocked"])
    zones: list[str] = Field(default_factory=list)
    cooldown_seconds: float = Field(default=300.0, ge=0, description="Per person (track, or shelf zone) and rule")
    channels: list[AlertChannel] = Field(
        default_factory=list, description="Empty: every configured channel (none configured: logged only)")


def _default_alert_rules() -> list[AlertRule]:
    return [AlertRule(name="known_person", kind="known_person"), AlertRule(name="loitering", kind="loitering"),
            AlertRule(name="falling_object", kind="falling_object")]


class AlertsConfig(_Strict):
    """Alert rules and channels, for `frigate listen` (live) and the recordings path (after each run)."""

    webhook_url: str | None = Field(default=None, description="POST alerts here as JSON")
    timeout_seconds: float = Field(default=10.0, gt=0)
    mqtt_topic: str = Field(default="watershop/alerts", description="Alerts are published to <mqtt_topic>/<rule>")
    mqtt: MqttBrokerConfig | None = Field(
        default=None, description="Broker for the mqtt channel; default: Frigate's broker when there is one")
    smtp: SmtpConfig | None = None
    retry_first_seconds: float = Field(default=5.0, ge=0, description="A failed delivery is retried after this, doubling")
    retry_max_seconds: float = Field(default=600.0, ge=0)
    max_attempts: int = Field(default=8, ge=1, description="Attempts per alert and channel before giving up")
    rules: list[AlertRule] = Field(default_factory=_default_alert_rules)


class FrigateConfig(_Strict):
    """A Frigate NVR that feeds one shop: its MQTT broker (live) and HTTP API (backfill)."""

    shop: str | None = Field(default=None, description="Shop fed by this Frigate; default: the only shop")
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    topic_prefix: str = "frigate"
    username: str | None = None
    password: str | None = None
    client_id: str = Field(default="watershop-frigate",
                           description="Persistent MQTT session: the broker keeps QoS 1 messages while we are away")
    api_url: str | None = Field(default=None, description="Frigate's HTTP API, e.g. http://frigate:5000")
    fsync_seconds: float = Field(default=1.0, gt=0, description="Landed messages are fsync'd at least this often")
    sub_labels: dict[str, str] = Field(
        default_factory=dict, description="Frigate sub_label -> known person (role/name); default: the folder name")


class ServingConfig(_Strict):
    api_key: str | None = Field(default=None, description="API key for `watershop api`; $WATERSHOP_API_KEY wins")
    host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    dashboard_port: int = Field(default=8501, ge=1, le=65535)
    keep_builds: int = Field(default=3, ge=1, description="Published builds kept under warehouse/builds/")
    build_grace_minutes: float = Field(
        default=60.0, ge=0, description="Older builds are also kept this long: a query may still be reading them")
    postgres_url: str | None = Field(
        default=None, description="Also publish every mart to this PostgreSQL; $WATERSHOP_POSTGRES_URL wins")
    postgres_schema: str = Field(default="marts", pattern=r"^[a-z_][a-z0-9_]{0,29}$")


class WatershopConfig(_Strict):
    shops: list[ShopConfig] = Field(min_length=1)
    partitions_start: date = Field(
        default=date(2024, 1, 1), description="First day of the daily partitions (backfills reach back to it)"
    )
    paths: Paths = Field(default_factory=Paths)
    retention: Retention = Field(default_factory=Retention)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    vision: VisionConfig = Field(default_factory=VisionConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    shelf: ShelfConfig = Field(default_factory=ShelfConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    frigate: FrigateConfig | None = None
    workspace_dir: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _unique_shop_ids(self) -> WatershopConfig:
        ids = [shop.id for shop in self.shops]
        if len(set(ids)) != len(ids):
            raise ValueError(f"shop ids must be unique, got {ids}")
        if self.frigate is not None:
            if self.frigate.shop is None and len(ids) > 1:
                raise ValueError(f"frigate.shop: choose one of {ids}")
            if self.frigate.shop is not None and self.frigate.shop not in ids:
                raise ValueError(f"frigate.shop: unknown shop {self.frigate.shop!r}; configured: {ids}")
        return self

    @model_validator(mode="before")
    @classmethod
    def _frigate_tracks_its_shops_people(cls, data: Any) -> Any:
        """Frigate already tracks its shop's people: those cameras re-track recordings only when told to
        (`people: true`), else both sources would write the same camera-day partitions."""
        if not isinstance(data, dict) or not isinstance(data.get("frigate"), dict):
            return data
        shops = data.get("shops") or []
        named = [shop.get("id") for shop in shops if isinstance(shop, dict)]
        fed = data["frigate"].get("shop") or (named[0] if len(named) == 1 else None)

        def untracked(cameras: dict) -> dict:
            return {name: {"people": False, **settings} if isinstance(settings, dict) else
                    {"people": False} if settings is None else settings for name, settings in cameras.items()}

        return {**data, "shops": [
            {**shop, "cameras": untracked(shop["cameras"])}
            if isinstance(shop, dict) and shop.get("id") == fed and isinstance(shop.get("cameras"), dict) else shop
            for shop in shops]}

    @property
    def frigate_shop(self) -> ShopConfig:
        """The shop the `frigate:` section feeds."""
        if self.frigate is None:
            raise KeyError("no `frigate:` section in the config")
        return self.shop(self.frigate.shop or self.shops[0].id)

    def _resolve(self, path: Path) -> Path:
        path = Path(os.path.expandvars(str(path))).expanduser()
        return path if path.is_absolute() else (self.workspace_dir / path).resolve()

    @property
    def landing_dir(self) -> Path:
        return self._resolve(self.paths.landing)

    @property
    def transactions_landing(self) -> Path:
        return self.landing_dir / "transactions"

    @property
    def frigate_landing(self) -> Path:
        """Frigate's messages as received: <frigate_landing>/<shop>/<camera>/<date>.ndjson."""
        return self.landing_dir / "frigate"

    @property
    def receipts_landing(self) -> Path:
        return self.landing_dir / "receipts"

    @property
    def receipt_shops(self) -> list[ShopConfig]:
        """The shops with a `receipts:` section."""
        return [shop for shop in self.shops if shop.receipts is not None]

    def resolve(self, path: Path) -> Path:
        """A config path: relative ones are relative to the workspace folder."""
        return self._resolve(path)

    @property
    def footage_root(self) -> Path:
        if self.paths.footage_root is not None:
            return self._resolve(self.paths.footage_root)
        return self.landing_dir / "footage"

    @property
    def known_people_dir(self) -> Path:
        return self._resolve(self.paths.known_people)

    @property
    def lake_root(self) -> Path:
        return self._resolve(self.paths.lake)

    @property
    def warehouse_dir(self) -> Path:
        return self._resolve(self.paths.warehouse)

    @property
    def build_db(self) -> Path:
        """DuckDB file dbt writes to; only the pipeline opens it.

        It shares the served file's name (in a sub-folder), so both are catalog `marts` to a reader.
        """
        return self.warehouse_dir / "build" / self.marts_db.name

    @property
    def frigate_sub_labels(self) -> dict[str, str]:
        """Frigate sub_label -> known person key, as configured (none without a Frigate)."""
        return self.frigate.sub_labels if self.frigate else {}

    @property
    def marts_db(self) -> Path:
        """DuckDB file BI tools open read-only: views over `current/` (see `warehouse`)."""
        return self.warehouse_dir / "marts.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self._resolve(self.paths.dagster_home)

    @property
    def shop_ids(self) -> list[str]:
        return [shop.id for shop in self.shops]

    def shop(self, shop_id: str) -> ShopConfig:
        for shop in self.shops:
            if shop.id == shop_id:
                return shop
        raise KeyError(f"unknown shop {shop_id!r}; configured: {self.shop_ids}")


def config_path(path: str | os.PathLike | None = None) -> Path:
    """The config file to use: explicit path, then $WATERSHOP_CONFIG, then ./data_lake/watershop.yaml."""
    if path:
        return Path(path).expanduser().resolve()
    if os.environ.get(CONFIG_ENV_VAR):
        return Path(os.environ[CONFIG_ENV_VAR]).expanduser().resolve()
    return (DEFAULT_WORKSPACE / CONFIG_FILENAME).resolve()


def _format_error(path: Path, error: ValidationError) -> str:
    lines = [f"invalid config {path}:"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "<root>"
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def load_config(path: str | os.PathLike | None = None) -> WatershopConfig:
    path = config_path(path)
    if not path.is_file():
        raise ConfigError(
            f"no config at {path}: create one with `watershop init DIR` and pass --config "
            f"DIR/{CONFIG_FILENAME} or set {CONFIG_ENV_VAR}"
        )
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid config {path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid config {path}: expected a mapping at the top level")
    if "workspace_dir" in raw:
        raise ConfigError(f"invalid config {path}:\n  workspace_dir: unknown key")
    try:
        return WatershopConfig.model_validate({**raw, "workspace_dir": path.parent.resolve()})
    except ValidationError as exc:
        raise ConfigError(_format_error(path, exc)) from exc


CONFIG_TEMPLATE = """\
# Watershop workspace configuration.
# Relative paths are resolved against this file's folder.

paths:
  # POS exports (landing/transactions/<shop>/*.csv) and camera footage (landing/footage/).
  landing: landing
  # Footage root, e.g. a NAS share holding Frigate's recordings/ tree; default <landing>/footage.
  # footage_root: /mnt/nas/frigate
  # Reference photos of known people: known_people/<staff|vip|blocked>/<name>/*.jpg
  known_people: known_people
  # The Parquet lake. May be a NAS mount: only Parquet is written here.
  lake: lake
  # DuckDB files (build + served marts). Keep on local disk: DuckDB needs real file locks.
  warehouse: warehouse
  # Dagster's instance folder: run history, schedules, sensors, backfills.
  dagster_home: .dagster_home

# First day of the daily partitions: backfills can reach back to it.
partitions_start: "{partitions_start}"

shops:
{shops}
retention:
  embeddings_days: 365     # face embeddings older than this are deleted
  face_crops_days: 7       # review crops (only stored when vision.store_face_crops is true)
  quarantine_days: 90      # rejected input rows kept for inspection

thresholds:
  face_match_distance: 0.5   # max embedding distance for "same person"
  face_ambiguous_margin: 0.05
  face_separation: 0.1       # ambiguous-band match taken when everyone else is this much farther
  visit_gap_seconds: 60      # out of view longer than this starts a new visit
  min_visit_seconds: 2
  max_visit_hours: 6
  zone_exit_debounce_seconds: 1  # out of a zone (or unseen) longer than this: the person left it
  zone_presence_gap_seconds: 1.5  # loitering: a track re-found at the same spot within this continues the presence

vision:
  motion_threshold: 0.004  # share of changed pixels that wakes the face detector
  min_face_px: 40
  max_fps: 5               # at most this many frames/s searched for faces while there is motion
  store_face_crops: false  # biometric data: keep off unless you need crops for review

alerts:
  # Rules (default: a vip or blocked person of known_people/<role>/<name>/ enters, a person
  # loiters in a zone past its loitering_time, an item falls in a shelf zone) go to every
  # configured channel; without one they are only logged (lake/alert_deliveries).
  # webhook_url: https://example.invalid/watershop-alerts
  # smtp: {{host: mail.example.invalid, port: 587, starttls: true, recipients: [owner@example.invalid]}}
  # mqtt: {{host: 127.0.0.1, port: 1883}}   # publishes to <mqtt_topic>/<rule>
  timeout_seconds: 10

serving:
  # api_key: change-me        # `watershop api` requires it (or $WATERSHOP_API_KEY)
  host: 127.0.0.1
  api_port: 8000
  dashboard_port: 8501
  # keep_builds: 3            # published builds kept in warehouse/builds/ (BI tools read warehouse/current)
  # build_grace_minutes: 60   # ... and any build younger than this
  # postgres_url: postgresql://watershop@localhost:5432/bi   # also serve the marts from PostgreSQL
"""

SHOP_TEMPLATE = """\
  - id: {shop_id}
    name: {shop_id}
    timezone: {timezone}
    # Cameras may also be Frigate's mapping with zones (README "Zones"; `watershop frigate import-config`).
    cameras: [{cameras}]
    prices: {{10L: 20, 20L: 35}}   # price per can; checks verify amount = price x cans
    opening_time: "06:00"
    closing_time: "21:00"          # the daily schedule runs after closing
    # Map Watershop's POS columns to another export's column names, e.g.:
    # pos_columns: {{transaction_id: BillNo, timestamp: BillTime}}
"""


def _yaml_string(value: str) -> str:
    """`value` as a double-quoted YAML scalar (a JSON string is one), so ids like 007, yes or on stay strings."""
    return json.dumps(str(value))


def render_config(
    shop_id: str = "shop1",
    timezone: str = "Asia/Kolkata",
    cameras: list[str] | None = None,
    partitions_start: date = date(2024, 1, 1),
) -> str:
    shop = SHOP_TEMPLATE.format(
        shop_id=_yaml_string(shop_id),
        timezone=_yaml_string(timezone),
        cameras=", ".join(_yaml_string(camera) for camera in (cameras or ["counter"])),
    )
    return CONFIG_TEMPLATE.format(shops=shop, partitions_start=partitions_start.isoformat())


def _validated(text: str, target: Path, shop_id: str) -> WatershopConfig:
    """The config `text` would load as from `target`, checked in memory before anything is written."""
    try:
        raw = yaml.safe_load(text)
        config = WatershopConfig.model_validate({**raw, "workspace_dir": target.parent})
    except yaml.YAMLError as exc:  # only if the template itself is broken
        raise ConfigError(f"invalid config {target}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(_format_error(target, exc).replace("invalid config", "refusing to write", 1)) from exc
    if config.shop_ids != [shop_id]:
        raise ConfigError(f"refusing to write {target}: shop id {shop_id!r} reads back as {config.shop_ids}")
    return config


def init_workspace(
    directory: str | os.PathLike,
    shop_id: str = "shop1",
    timezone: str = "Asia/Kolkata",
    cameras: list[str] | None = None,
    partitions_start: date = date(2024, 1, 1),
    overwrite: bool = False,
) -> WatershopConfig:
    """Create a workspace folder with a commented config and its landing folders.

    The config is rendered and validated in memory first and written atomically: a bad argument
    leaves nothing behind, so a corrected retry does not find an invalid file "already" there.
    """
    directory = Path(directory).expanduser().resolve()
    target = directory / CONFIG_FILENAME
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} already exists (pass --force to overwrite it)")
    text = render_config(shop_id, timezone, cameras, partitions_start)
    _validated(text, target, shop_id)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, text)
    config = load_config(target)
    for folder in (
        config.transactions_landing / shop_id,
        config.footage_root,
        *(config.known_people_dir / role for role in KNOWN_ROLES),
        config.lake_root,
        config.warehouse_dir,
        config.dagster_home,
    ):
        folder.mkdir(parents=True, exist_ok=True)
    return config
