"""The PostgreSQL copy of the marts: each publish switches every mart at once, a failed one changes
nothing. Runs against the loopback server (trust auth, database `test`), one schema per test."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest

from tests.test_warehouse_publish import rows_t, workspace, write_build_file
from watershop_dagster import warehouse
from watershop_dagster.config import load_config
from watershop_dagster.serving import builds
from watershop_dagster.serving.postgres import (
    postgres_type,
    publish_to_postgres,
    served_build,
)

psycopg = pytest.importorskip("psycopg")

pytestmark = pytest.mark.services

URL = os.environ.get("WATERSHOP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def schema():
    """A schema name of this test's own; it and every `<name>__*` schema are dropped afterwards."""
    try:
        admin = psycopg.connect(URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {URL}: {exc}")
    name = f"t{uuid.uuid4().hex[:12]}"
    yield name
    with admin:
        for (leftover,) in admin.execute("select nspname from pg_namespace where nspname like %s",
                                         [f"{name}%"]).fetchall():
            admin.execute(f'drop schema "{leftover}" cascade')


def export(config, build: int) -> builds.Build:
    """Build `build` and export it as a published build (the DuckDB side of a publish)."""
    write_build_file(config.build_db, build)
    return warehouse.export_build(config.build_db, config.warehouse_dir)


def schemas_like(connection, name: str) -> list[str]:
    return sorted(n for (n,) in connection.execute("select nspname from pg_namespace where nspname like %s",
                                                   [f"{name}%"]).fetchall())


def test_types_map_to_their_postgres_twins():
    assert postgres_type("BIGINT") == "bigint"
    assert postgres_type("DECIMAL(18,2)") == "numeric(18,2)"
    assert postgres_type("TIMESTAMP WITH TIME ZONE") == "timestamptz"
    assert postgres_type("HUGEINT") == "numeric(39,0)"
    assert postgres_type("INTEGER[]") == "text"
    assert postgres_type("STRUCT(a INTEGER)") == "text"


def test_publish_copies_every_mart_and_replaces_the_previous_build(tmp_path, schema):
    config = workspace(tmp_path)
    first = export(config, 1)
    publish_to_postgres(URL, first, schema=schema)
    with psycopg.connect(URL) as pg:
        assert pg.execute(f"select min(build), max(build), count(*) from {schema}.t").fetchone() == (1, 1, rows_t(1))
        total = pg.execute(f"select total, pg_typeof(total)::text from {schema}.u limit 1").fetchone()
        assert total == (sum(range(2 * rows_t(1))), "numeric")
        assert served_build(URL, schema) == first.build_id
    third = export(config, 3)
    publish_to_postgres(URL, third, schema=schema)
    with psycopg.connect(URL) as pg:
        assert pg.execute(f"select build, extra from {schema}.t limit 1").fetchone() == (3, "x")
        assert pg.execute(f"select build from {schema}.w").fetchone() == (3,)
        assert served_build(URL, schema) == third.build_id
        assert schemas_like(pg, schema) == [schema]  # the old build's schema is gone


def test_a_reader_sees_the_old_or_the_new_build_never_a_mix(tmp_path, schema):
    config = workspace(tmp_path)
    exported = [export(config, build) for build in (1, 2)]  # same marts, different rows
    publish_to_postgres(URL, exported[0], schema=schema)
    seen: set[int] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            with psycopg.connect(URL, autocommit=True) as pg:
                while not stop.is_set():
                    row = pg.execute(
                        f"select (select min(build) from {schema}.t), (select max(build) from {schema}.t), "
                        f"(select count(*) from {schema}.t), (select min(build) from {schema}.u), "
                        f"(select max(build) from {schema}.u), (select count(*) from {schema}.u)").fetchone()
                    build = row[0]
                    assert row == (build, build, rows_t(build), build, build, 2 * rows_t(build)), row
                    seen.add(build)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for round_ in range(6):
            publish_to_postgres(URL, exported[(round_ + 1) % 2], schema=schema)
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not errors, errors
    assert seen == {1, 2}


def test_a_failed_publish_leaves_the_old_build_serving(tmp_path, schema):
    config = workspace(tmp_path)
    good = export(config, 1)
    publish_to_postgres(URL, good, schema=schema)
    broken = export(config, 2)
    broken.parquet("u").write_bytes(b"PAR1 this is not a parquet file PAR1")  # t loads, then u fails
    with pytest.raises(Exception, match="(?i)parquet"):
        publish_to_postgres(URL, broken, schema=schema)
    with psycopg.connect(URL) as pg:
        assert pg.execute(f"select min(build), count(*) from {schema}.t").fetchone() == (1, rows_t(1))
        assert schemas_like(pg, schema) == [schema]
    assert served_build(URL, schema) == good.build_id


def test_publish_marts_mirrors_to_the_configured_postgres(tmp_path, schema, monkeypatch):
    """`$WATERSHOP_POSTGRES_URL` wins over the config; DuckDB and PostgreSQL serve the same build."""
    config = workspace(tmp_path)
    text = config.workspace_dir.joinpath("watershop.yaml").read_text()
    text = text.replace("  dashboard_port: 8501\n", "  dashboard_port: 8501\n  postgres_url: postgresql://nobody@"
                        f"127.0.0.1:1/none\n  postgres_schema: {schema}\n")
    config.workspace_dir.joinpath("watershop.yaml").write_text(text)
    config = load_config(config.workspace_dir / "watershop.yaml")
    monkeypatch.setenv(warehouse.POSTGRES_URL_ENV_VAR, URL)
    with warehouse.build_lock(config):
        write_build_file(config.build_db, 2)
        warehouse.publish_marts(config)
    assert served_build(URL, schema) == builds.current_build(config.warehouse_dir).build_id
    monkeypatch.delenv(warehouse.POSTGRES_URL_ENV_VAR)  # now the config's unreachable server: publish fails
    with warehouse.build_lock(config), pytest.raises(psycopg.OperationalError):
        write_build_file(config.build_db, 3)
        warehouse.publish_marts(config)
    with psycopg.connect(URL) as pg:
        assert pg.execute(f"select min(build) from {schema}.t").fetchone() == (2,)
