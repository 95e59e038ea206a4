"""Published builds: a pooled, long-lived BI reader sees each new build on its next query.

A BI tool (Superset + duckdb-engine, Metabase, Grafana) keeps `duckdb.connect(marts.duckdb,
read_only=True)` connections in a pool; DuckDB hands every connection to one path in one process
the same cached instance. These tests hold such a pool in threads while another process publishes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pytest

from watershop_dagster import warehouse
from watershop_dagster.config import init_workspace, load_config
from watershop_dagster.serving import builds
from watershop_dagster.serving.marts import MartsReader


def rows_t(build: int) -> int:
    return 1000 + 37 * build


def write_build_file(build_db: Path, build: int) -> None:
    """What dbt leaves in the build file: marts in `main`, staging/intermediate views beside them.
    From build 3 on, mart `t` has one more column and a mart `w` appears (a schema change)."""
    build_db.parent.mkdir(parents=True, exist_ok=True)
    extra = ", 'x' as extra" if build >= 3 else ""
    with duckdb.connect(str(build_db)) as db:
        db.execute(f"create or replace table t as select {build} as build, range as r{extra} from range({rows_t(build)})")
        db.execute(f"create or replace table u as select {build} as build, range as r, sum(range) over () as total "
                   f"from range({2 * rows_t(build)})")
        if build >= 3:
            db.execute(f"create or replace table w as select {build} as build")
        db.execute("create schema if not exists main_staging")
        db.execute("create or replace view main_staging.stg_t as select * from t")
        db.execute("create or replace view int_t as select * from t")  # a view in main is not a mart either


def workspace(tmp_path: Path, keep_builds: int = 2, grace_minutes: float = 0.0):
    config = init_workspace(tmp_path / "ws", shop_id="north")
    text = config.workspace_dir.joinpath("watershop.yaml").read_text()
    text = text.replace("  dashboard_port: 8501\n", f"  dashboard_port: 8501\n  keep_builds: {keep_builds}\n"
                        f"  build_grace_minutes: {grace_minutes}\n")
    config.workspace_dir.joinpath("watershop.yaml").write_text(text)
    return load_config(config.workspace_dir / "watershop.yaml")


def publish(config, build: int) -> None:
    with warehouse.build_lock(config):
        write_build_file(config.build_db, build)
        warehouse.publish_marts(config)


def storage_number(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[8:12] == b"DUCK"
    return int.from_bytes(header[12:20], "little")


def test_publish_serves_marts_only_as_views_over_the_current_build(tmp_path):
    config = workspace(tmp_path)
    publish(config, 1)
    current = builds.current_build(config.warehouse_dir)
    assert os.readlink(builds.current_link(config.warehouse_dir)) == f"builds/{current.build_id}"
    assert sorted(m.name for m in current.marts) == ["t", "u"]  # no stg_/int_ views
    assert dict(current.mart("u").casts) == {"total": "HUGEINT"}  # Parquet has no HUGEINT: cast back
    with duckdb.connect(str(config.marts_db), read_only=True) as db:
        objects = db.execute("select table_schema, table_name, table_type from information_schema.tables "
                             "order by 2").fetchall()
        assert objects == [("main", "t", "VIEW"), ("main", "u", "VIEW")]
        sql = db.execute("select sql from duckdb_views() where view_name = 't'").fetchall()[0][0]
        assert f"{config.warehouse_dir}/current/t.parquet" in sql
        assert db.execute("select typeof(total), count(*) from u group by 1").fetchall() == [("HUGEINT", 2 * rows_t(1))]
    assert storage_number(config.marts_db) == warehouse.SERVED_STORAGE_NUMBER == 64


def test_the_served_file_is_rewritten_only_when_the_marts_change(tmp_path):
    config = workspace(tmp_path)
    publish(config, 1)
    first = os.stat(config.marts_db).st_ino
    publish(config, 2)  # same marts, same columns: only `current` moves
    assert os.stat(config.marts_db).st_ino == first
    publish(config, 3)  # t gains a column, w appears
    assert os.stat(config.marts_db).st_ino != first
    with duckdb.connect(str(config.marts_db), read_only=True) as db:
        assert db.execute("select build, extra from t limit 1").fetchall() == [(3, "x")]
        assert db.execute("select build from w").fetchall() == [(3,)]


def test_old_builds_are_kept_for_the_grace_period_and_the_last_n(tmp_path):
    config = workspace(tmp_path, keep_builds=2, grace_minutes=30)
    for build in range(1, 5):
        publish(config, build)
    root = builds.builds_dir(config.warehouse_dir)
    published = sorted(p.name for p in root.iterdir())
    assert len(published) == 4  # all younger than 30 minutes
    crashed = root / ".20250101T000000000000Z-deadbeef.0123.tmp"  # what killed publishes leave
    crashed.mkdir()
    stray_link = config.warehouse_dir / ".current.0123.tmp"
    stray_link.symlink_to(f"builds/{published[0]}")
    stray_file = config.warehouse_dir / ".marts.duckdb.0123.tmp"
    stray_file.write_bytes(b"half a file")
    later = time.time() + 31 * 60
    removed = warehouse.collect_old_builds(config.warehouse_dir, keep=2, grace_minutes=30, now=later)
    assert sorted(p.name for p in removed) == sorted([*published[:2], crashed.name, stray_link.name, stray_file.name])
    assert not os.path.lexists(stray_link) and not stray_file.exists()
    assert sorted(p.name for p in root.iterdir()) == published[2:]
    # the current build survives even when it is not among the newest (a roll-back)
    warehouse.switch_current(config.warehouse_dir, builds.read_build(root / published[2]))
    assert warehouse.collect_old_builds(config.warehouse_dir, keep=1, grace_minutes=0, now=later) == []
    assert builds.current_build(config.warehouse_dir).build_id == published[2]


def test_an_erasure_rebuild_purges_every_earlier_build(tmp_path):
    config = workspace(tmp_path, keep_builds=5, grace_minutes=60)
    for build in (1, 2):
        publish(config, build)
    with warehouse.build_lock(config):
        write_build_file(config.build_db, 3)
        warehouse.publish_marts(config, purge_old_builds=True)
    left = list(builds.builds_dir(config.warehouse_dir).iterdir())
    assert [p.name for p in left] == [builds.current_build(config.warehouse_dir).build_id]


PUBLISHER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from tests.test_warehouse_publish import publish
    from watershop_dagster.config import load_config
    config = load_config(sys.argv[1])
    for line in sys.stdin:
        build = int(line)
        publish(config, build)
        print(f"published {build}", flush=True)
    """
)


def test_a_pool_of_long_lived_readers_sees_every_publish_of_another_process(tmp_path):
    """N pooled read-only connections (threads) across publishes by another process: every query
    started after a publish returns that build; no query errors; no query mixes two builds in a mart.
    Old builds are collected under load (keep 2, no grace), and build 3 changes the schema."""
    config = workspace(tmp_path, keep_builds=2, grace_minutes=0)
    repo = Path(__file__).resolve().parents[1]
    publisher = subprocess.Popen([sys.executable, "-c", PUBLISHER, str(config.workspace_dir / "watershop.yaml"),
                                  str(repo)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def publish_from_other_process(build: int) -> None:
        publisher.stdin.write(f"{build}\n")
        publisher.stdin.flush()
        assert publisher.stdout.readline().strip() == f"published {build}"

    builds_total, readers = 6, 4
    publish_from_other_process(1)
    state = {"published": 1, "requested": 1}
    confirmed = [0] * readers
    queries = [0] * readers
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader(index: int) -> None:
        pool_connection = duckdb.connect(str(config.marts_db), read_only=True)  # what duckdb-engine does
        try:
            while not stop.is_set():
                floor, ceiling = state["published"], state["requested"]
                low, high, count = pool_connection.execute("select min(build), max(build), count(*) from t").fetchall()[0]
                assert low == high and count == rows_t(low), ("t mixes builds", low, high, count)
                assert floor <= low <= ceiling, ("stale or future build", floor, low, ceiling)
                u_low, u_high, u_count = pool_connection.execute(
                    "select min(build), max(build), count(*) from u").fetchall()[0]
                assert u_low == u_high and u_count == 2 * rows_t(u_low), ("u mixes builds", u_low, u_high, u_count)
                queries[index] += 1
                if low == floor:
                    confirmed[index] = floor
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            pool_connection.close()

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(readers)]
    for thread in threads:
        thread.start()
    try:
        for build in range(2, builds_total + 1):
            deadline = time.monotonic() + 60
            while min(confirmed) < build - 1 and not errors and time.monotonic() < deadline:
                time.sleep(0.005)
            assert not errors, errors
            assert min(confirmed) == build - 1, ("a reader never saw build", build - 1, confirmed)
            state["requested"] = build
            publish_from_other_process(build)
            state["published"] = build
        deadline = time.monotonic() + 60
        while min(confirmed) < builds_total and not errors and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        publisher.stdin.close()
        publisher.wait(timeout=60)
    assert not errors, errors
    assert confirmed == [builds_total] * readers
    assert min(queries) > builds_total
    assert len(list(builds.builds_dir(config.warehouse_dir).iterdir())) == 2
    with duckdb.connect(str(config.marts_db), read_only=True) as fresh:  # the pool is gone: a new instance
        assert fresh.execute("select build from w").fetchall() == [(builds_total,)]


def test_marts_reader_pins_one_build_per_request(tmp_path):
    config = workspace(tmp_path, keep_builds=3, grace_minutes=60)
    publish(config, 1)
    reader = MartsReader(config.marts_db)
    join = "select (select min(build) from t), (select max(build) from u), (select count(*) from t)"
    with reader.connect() as con:
        assert con.tables == {"t", "u"}
        assert con.one(join) == (1, 1, rows_t(1))
        publish(config, 3)  # published while the request runs
        assert con.one(join) == (1, 1, rows_t(1))  # the request keeps its build, every mart of it
        with reader.connect() as fresh:
            assert fresh.one(join) == (3, 3, rows_t(3))
            assert fresh.has("w") and fresh.scalar("select extra from t limit 1") == "x"
    reader.close()


OLD_DUCKDB = os.environ.get("WATERSHOP_OLD_DUCKDB_PYTHON")  # a python with duckdb<2, e.g. Superset's


@pytest.mark.skipif(not OLD_DUCKDB, reason="set WATERSHOP_OLD_DUCKDB_PYTHON to a python with duckdb 1.x")
def test_an_older_duckdb_reads_the_served_marts(tmp_path):
    config = workspace(tmp_path)
    publish(config, 1)
    probe = ("import duckdb, sys; db = duckdb.connect(sys.argv[1], read_only=True); "
             "print(duckdb.__version__, db.execute('select count(*), min(build) from t').fetchall()[0])")
    result = subprocess.run([OLD_DUCKDB, "-c", probe, str(config.marts_db)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(" ", 1)[1].strip() == f"({rows_t(1)}, 1)"


SQLALCHEMY_POOL = textwrap.dedent(
    """
    import sys
    import sqlalchemy as sa
    engine = sa.create_engine(f"duckdb:///{sys.argv[1]}?access_mode=read_only", pool_size=3)
    for line in sys.stdin:
        if line.strip() == "reconnect":
            engine.dispose()
        held = [engine.connect() for _ in range(3)]  # three pooled connections, kept across publishes
        try:
            answers = [c.execute(sa.text("select min(build), max(build), count(*) from t")).fetchall()[0]
                       for c in held]
            print(" ".join(f"{a}/{b}/{n}" for a, b, n in answers), flush=True)
        except Exception as exc:
            print("error", str(exc).splitlines()[0], flush=True)
        for c in held:
            c.close()
    """
)


@pytest.mark.skipif(not OLD_DUCKDB, reason="set WATERSHOP_OLD_DUCKDB_PYTHON to a python with duckdb 1.x, "
                                           "duckdb-engine and SQLAlchemy")
def test_superset_s_pool_duckdb_engine_on_an_older_duckdb_follows_publishes(tmp_path):
    """Superset's stack without Superset: SQLAlchemy's QueuePool over duckdb-engine, the URI of
    bi/README.md, an older DuckDB, in its own long-lived process. It follows every publish; only a
    change of a mart's columns needs a reconnect there (DuckDB 1.x checks a view's column types
    against those stored when the view was created; DuckDB 2 binds it afresh)."""
    config = workspace(tmp_path)
    publish(config, 1)
    pool = subprocess.Popen([OLD_DUCKDB, "-c", SQLALCHEMY_POOL, str(config.marts_db)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def ask(command: str = "query") -> list[str]:
        pool.stdin.write(f"{command}\n")
        pool.stdin.flush()
        return pool.stdout.readline().split()

    try:
        assert ask() == [f"1/1/{rows_t(1)}"] * 3
        publish(config, 2)
        assert ask() == [f"2/2/{rows_t(2)}"] * 3
        publish(config, 3)  # t gains a column
        assert "Contents of view were altered" in " ".join(ask())
        assert ask("reconnect") == [f"3/3/{rows_t(3)}"] * 3
        publish(config, 4)
        assert ask() == [f"4/4/{rows_t(4)}"] * 3
    finally:
        pool.stdin.close()
        pool.wait(timeout=60)
