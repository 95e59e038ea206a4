from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

from watershop_dagster.config import WatershopConfig
from watershop_dagster.fixtures import FIXTURES_ENV_VAR, fixtures_dir


@pytest.fixture(autouse=True)
def _keep_main_module():
    """Streamlit's AppTest installs the dashboard script as sys.modules['__main__'] and leaves it there;
    every `spawn` process pool started later would re-run that script in its workers."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared fixtures not found at {path} (set {FIXTURES_ENV_VAR} to their folder)")
    return path


@pytest.fixture(scope="session")
def fixtures_root() -> Path:
    return _require(fixtures_dir())


@pytest.fixture(scope="session")
def faces_dir(fixtures_root: Path) -> Path:
    return _require(fixtures_root / "faces")


@pytest.fixture(scope="session")
def videos_dir(fixtures_root: Path) -> Path:
    return _require(fixtures_root / "video")


# ------------------------------------------------------------------ dbt project: lake and marts
# Shared by tests/test_dbt_project.py and tests/test_dbt_visits.py: a hand-made lake, a dbt build
# of the repository's project into a tmp DuckDB file, and the marts read back keyed for comparison.

TRANSACTION_SCHEMA = {
    "transaction_id": pl.Utf8,
    "timestamp_local": pl.Datetime("us"),
    "timestamp_utc": pl.Datetime("us", "UTC"),
    "customer_id": pl.Utf8,
    "payment_mode": pl.Utf8,
    "can_size": pl.Utf8,
    "number_of_cans": pl.Int32,
    "amount": pl.Float64,
    "payment_status": pl.Utf8,
    "source_file": pl.Utf8,
    "source_line": pl.Int32,
}
PRICE = {"10L": 20.0, "20L": 35.0}
IST = timedelta(hours=5, minutes=30)  # the hand-made shops are in IST


def sale(tid: str, day: str, hhmm: str, customer: str | None, mode: str, size: str, cans: int, status: str,
         line: int, amount: float | None = None) -> dict:
    """One lake transaction row of an IST shop, priced from PRICE unless `amount` is given."""
    local = datetime.fromisoformat(f"{day}T{hhmm}")
    return {
        "transaction_id": tid,
        "timestamp_local": local,
        "timestamp_utc": (local - IST).replace(tzinfo=timezone.utc),
        "customer_id": customer,
        "payment_mode": mode,
        "can_size": size,
        "number_of_cans": cans,
        "amount": PRICE[size] * cans if amount is None else amount,
        "payment_status": status,
        "source_file": f"pos_{day}.csv",
        "source_line": line,
    }


def write_part(lake: Path, dataset: str, shop: str, day: str, rows: list[dict], schema: dict) -> Path:
    path = lake / dataset / f"shop_id={shop}" / f"date={day}" / "part.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(rows, schema=schema, orient="row").write_parquet(path)
    return path


MartQueries = dict[str, tuple[int, str]]  # mart -> (number of leading key columns, query)


def read_marts(db: Path, queries: MartQueries, places: int) -> dict[str, dict]:
    """Each mart as {key tuple: value, or tuple of values}; numbers rounded to `places`."""
    def clean(value):
        return round(float(value), places) if isinstance(value, (Decimal, float)) else value

    marts = {}
    with duckdb.connect(str(db)) as con:
        for name, (width, query) in queries.items():
            rows = [tuple(clean(v) for v in row) for row in con.execute(query).fetchall()]
            mart = {row[:width]: (row[width] if len(row) == width + 1 else row[width:]) for row in rows}
            assert len(mart) == len(rows), f"{name} has duplicate keys"
            marts[name] = mart
    return marts


def assert_marts(db: Path, queries: MartQueries, expected: dict, places: int) -> dict[str, dict]:
    """The marts read as in read_marts, each equal to `expected`'s; returns them."""
    actual = read_marts(db, queries, places)
    for name in queries:
        assert actual[name] == expected[name], f"mart {name} differs"
    return actual


@pytest.fixture
def dbt_build(tmp_path, monkeypatch):
    """build(shop_id, day, *extra_args, day_to=None, dbt_vars=None): one `dbt build` of the project,
    scoped by the partition vars when given (plus `dbt_vars`), over the lake `build.lake` into the
    DuckDB file `build.db`; returns dbt's result."""
    lake, db = tmp_path / "lake", tmp_path / "warehouse" / "build.duckdb"
    db.parent.mkdir(parents=True)
    monkeypatch.setenv("WATERSHOP_LAKE_ROOT", str(lake))
    monkeypatch.setenv("WATERSHOP_BUILD_DB", str(db))
    monkeypatch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    from dbt.cli.main import dbtRunner

    from watershop_dagster.dbt import DBT_PROJECT_DIR

    def build(shop_id: str | None = None, day: str | None = None, *extra: str, day_to: str | None = None,
              dbt_vars: dict | None = None):
        args = [
            "build", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
            "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs"), "--quiet", *extra,
        ]
        scope = {"shop_id": shop_id, "date": day, "date_to": day_to} if shop_id or day else {}
        if scope or dbt_vars:
            args += ["--vars", json.dumps({**scope, **(dbt_vars or {})})]
        result = dbtRunner().invoke(args)
        if not result.success:
            problems = [
                f"{r.node.name}: {r.status} {r.message}"
                for r in getattr(result.result, "results", [])
                if str(r.status) not in ("success", "pass", "warn", "skipped")
            ]
            pytest.fail(f"dbt build {shop_id} {day} failed: {result.exception or problems}")
        return result

    build.lake, build.db = lake, db
    return build


# ------------------------------------------------------------------ served marts: workspaces and pages
# Shared by the serving tests (API and dashboard): a workspace whose marts the pipeline's own dbt
# runner built from a hand-made lake and published, and one dashboard page run by Streamlit's AppTest.

def published_workspace(root: Path, config_yaml: str, fill_lake) -> WatershopConfig:
    """The workspace at `root` (its watershop.yaml = `config_yaml`) after `fill_lake(config)` wrote its
    lake: the dbt runner's build (as `watershop run` does it, time zones from the config), published."""
    from watershop_dagster.config import CONFIG_FILENAME, load_config
    from watershop_dagster.dbt_runner import project_runner
    from watershop_dagster.warehouse import publish_marts

    (root / CONFIG_FILENAME).write_text(config_yaml)
    config = load_config(root / CONFIG_FILENAME)
    fill_lake(config)
    result = project_runner().build(config)
    assert result.success, result.failures or result.error
    publish_marts(config)
    return config


def _dashboard_page(config_file: str, page: str, shop: str, start: str, end: str) -> None:
    """One page of the dashboard alone (AppTest runs this body as a script: only builtins in the signature)."""
    from datetime import date

    from watershop_dagster.config import load_config
    from watershop_dagster.serving import dashboard_pages as pages
    from watershop_dagster.serving import queries as q
    from watershop_dagster.serving.marts import MartsReader

    config = load_config(config_file)
    flt = q.Filter(shop, date.fromisoformat(start), date.fromisoformat(end))
    getattr(pages, page)(pages.View(config=config, reader=MartsReader(config.marts_db), flt=flt))


def dashboard_page(config: WatershopConfig, page: str, shop: str, start, end=None):
    """AppTest of `serving.dashboard_pages.<page>` for the shop and inclusive date range, run once, no exception."""
    from streamlit.testing.v1 import AppTest

    from watershop_dagster.config import CONFIG_FILENAME

    app = AppTest.from_function(_dashboard_page, args=(str(config.workspace_dir / CONFIG_FILENAME), page, shop,
                                                       str(start), str(end or start)), default_timeout=120)
    app.run()
    assert not app.exception, app.exception
    return app
