"""MartsReader: read-only, follows the served file across atomic replacements, never blocks a publish."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import duckdb
import pytest

from watershop_dagster.serving.marts import MartMissing, MartsReader, MartsUnavailable


def _write_marts(path: Path, revenue: int) -> None:
    """A tiny marts file, published the way `publish_marts` does it: temp copy + rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    with duckdb.connect(str(tmp)) as db:
        db.execute("create table daily_revenue as select 'north' as shop_id, date '2025-03-01' as date, ? as revenue",
                   [revenue])
        db.execute("create view revenue_view as select * from daily_revenue")
    os.replace(tmp, path)


def _open_fds_to(path: Path) -> list[str]:
    fd_dir = Path("/proc/self/fd")
    targets = []
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(path)):
            targets.append(target)
    return targets


def test_reader_sees_each_published_version_and_releases_old_files(tmp_path):
    marts = tmp_path / "marts.duckdb"
    _write_marts(marts, 100)
    reader = MartsReader(marts)
    with reader.connect() as con:
        assert con.scalar("select revenue from daily_revenue") == 100
        assert con.scalar("select revenue from revenue_view") == 100  # views baked with catalog 'marts' resolve
        held = con
        _write_marts(marts, 200)  # published while a request is still running
        assert held.scalar("select revenue from daily_revenue") == 100  # that request keeps its snapshot
        with reader.connect() as fresh:
            assert fresh.scalar("select revenue from daily_revenue") == 200
    if Path("/proc/self/fd").is_dir():
        with reader.connect() as con:
            con.scalar("select 1")
        assert not [t for t in _open_fds_to(marts) if "(deleted)" in t], "old marts file still open"
    reader.close()


def test_reader_reports_missing_file_and_marts(tmp_path):
    reader = MartsReader(tmp_path / "marts.duckdb")
    with pytest.raises(MartsUnavailable, match="watershop run"):
        with reader.connect():
            pass
    _write_marts(tmp_path / "marts.duckdb", 1)
    with reader.connect() as con:
        assert con.has("daily_revenue") and not con.has("daily_visits")
        with pytest.raises(MartMissing, match="visit marts"):
            con.require("daily_revenue", "daily_visits")


def test_concurrent_requests_across_publishes(tmp_path):
    marts = tmp_path / "marts.duckdb"
    _write_marts(marts, 0)
    reader = MartsReader(marts)
    errors: list[BaseException] = []
    stop = threading.Event()

    def hammer() -> None:
        try:
            while not stop.is_set():
                with reader.connect() as con:
                    value = con.scalar("select revenue from daily_revenue")
                    assert con.scalar("select revenue from revenue_view") == value
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    for version in range(1, 8):
        _write_marts(marts, version)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    with reader.connect() as con:
        assert con.scalar("select revenue from daily_revenue") == 7


WRITER = textwrap.dedent(
    """
    import sys, duckdb
    with duckdb.connect(sys.argv[1]) as db:  # read-write open of the *build* file, like dbt
        db.execute("create or replace table t as select 1")
    print("ok")
    """
)


def test_reader_never_locks_other_files_nor_a_publish(tmp_path):
    """Another process can write the build file and publish while the reader holds the served file."""
    marts, build = tmp_path / "marts.duckdb", tmp_path / "build.duckdb"
    _write_marts(marts, 5)
    reader = MartsReader(marts)
    with reader.connect() as con:
        assert con.scalar("select revenue from daily_revenue") == 5
        result = subprocess.run([sys.executable, "-c", WRITER, str(build)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        _write_marts(marts, 6)
    with reader.connect() as con:
        assert con.scalar("select revenue from daily_revenue") == 6


def test_api_before_the_first_build_answers_503_not_500(tmp_path):
    """A workspace whose marts were never built: the API starts, says so, and still checks the key first."""
    import socket

    import httpx
    import uvicorn

    from watershop_dagster.config import init_workspace
    from watershop_dagster.serving.api import create_app

    config = init_workspace(tmp_path / "ws", shop_id="north")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(config, api_key="k"), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for _ in range(100):
                try:
                    health = client.get("/health")
                    break
                except httpx.TransportError:
                    threading.Event().wait(0.1)
            assert health.json() == {"status": "ok", "marts": False, "visit_marts": False}
            assert client.get("/v1/daily-revenue").status_code == 401
            missing = client.get("/v1/daily-revenue", headers={"X-API-Key": "k"})
            assert missing.status_code == 503 and "watershop run" in missing.json()["detail"]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
