"""A copy of the served marts in PostgreSQL, for BI servers that reach their data over the network.

Optional (`serving.postgres_url` or `$WATERSHOP_POSTGRES_URL`): the embedded DuckDB file stays the
default and nothing here runs without it. Each publish loads every mart of the build into a fresh
schema `<schema>__<build>_new` and, in the same transaction, renames the served schema away and the
fresh one to `<schema>`. A reader's statement therefore sees the old build or the new one, every
mart of it, never a mix; a publish that fails anywhere rolls back and the old build keeps serving.
The old schema is dropped afterwards in its own short transaction, so the switch never waits for a
reader still scanning it (a leftover is dropped by the next publish).

DuckDB's postgres extension is downloaded on first use, so this uses psycopg: each mart is written
by DuckDB as CSV and streamed with COPY.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import duckdb
import psycopg
from psycopg import sql

from watershop_dagster.serving.builds import Build, mart_view_sql

_TYPES = {
    "BOOLEAN": "boolean", "TINYINT": "smallint", "SMALLINT": "smallint", "INTEGER": "integer",
    "BIGINT": "bigint", "HUGEINT": "numeric(39,0)", "UTINYINT": "smallint", "USMALLINT": "integer",
    "UINTEGER": "bigint", "UBIGINT": "numeric(20,0)", "UHUGEINT": "numeric(39,0)", "FLOAT": "real",
    "DOUBLE": "double precision", "DATE": "date", "TIME": "time", "TIMESTAMP": "timestamp",
    "TIMESTAMP_S": "timestamp", "TIMESTAMP_MS": "timestamp", "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz", "TIME WITH TIME ZONE": "timetz", "INTERVAL": "interval",
    "UUID": "uuid", "VARCHAR": "text",
}
_DECIMAL = re.compile(r"^DECIMAL\((\d+),(\d+)\)$")


def postgres_type(duckdb_type: str) -> str:
    """The PostgreSQL column type for a DuckDB one; anything without a twin (lists, structs, blobs)
    is served as text, in DuckDB's own text form."""
    decimal = _DECIMAL.match(duckdb_type.replace(" ", ""))
    if decimal:
        return f"numeric({decimal.group(1)},{decimal.group(2)})"
    return _TYPES.get(duckdb_type, "text")


def _as_loaded(column: str, duckdb_type: str) -> str:
    """A select item giving the column as COPY reads it: as is, or DuckDB's text form for text."""
    quoted = '"' + column.replace('"', '""') + '"'
    if postgres_type(duckdb_type) == "text" and duckdb_type != "VARCHAR":
        return f"CAST({quoted} AS VARCHAR) AS {quoted}"
    return quoted


def _build_tag(build: Build) -> str:
    return re.sub(r"[^a-z0-9]", "", build.build_id.lower())[-8:]


def _leftovers(cursor: psycopg.Cursor, schema: str) -> list[str]:
    like = schema.replace("_", r"\_") + r"\_\_%\_old"
    return [name for (name,) in cursor.execute(
        "select nspname from pg_namespace where nspname like %s", [like]).fetchall()]


def _load_mart(cursor: psycopg.Cursor, db: duckdb.DuckDBPyConnection, target: str, build: Build,
               name: str, scratch: Path) -> None:
    mart = build.mart(name)
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(postgres_type(type_)))
        for column, type_ in mart.columns)
    cursor.execute(sql.SQL("CREATE TABLE {}.{} ({})").format(sql.Identifier(target), sql.Identifier(name), columns))
    select = ", ".join(_as_loaded(column, type_) for column, type_ in mart.columns)
    csv = scratch / f"{name}.csv"
    db.execute(f"COPY (SELECT {select} FROM ({mart_view_sql(build.parquet(name), mart)})) "
               f"TO '{str(csv).replace(chr(39), chr(39) * 2)}' (FORMAT csv, HEADER true)")
    copy_sql = sql.SQL("COPY {}.{} FROM STDIN (FORMAT csv, HEADER true)").format(
        sql.Identifier(target), sql.Identifier(name))
    with cursor.copy(copy_sql) as copy, open(csv, "rb") as handle:
        while chunk := handle.read(1 << 20):
            copy.write(chunk)


def publish_to_postgres(url: str, build: Build, schema: str = "marts") -> str:
    """Serve `build` as PostgreSQL schema `schema`, switching atomically; returns the schema."""
    tag = _build_tag(build)
    fresh, old = f"{schema}__{tag}_new", f"{schema}__{tag}_old"
    with psycopg.connect(url, autocommit=True) as pg, tempfile.TemporaryDirectory(prefix="watershop-pg-") as scratch, \
            duckdb.connect(":memory:") as db:
        db.execute("SET TimeZone = 'UTC'")  # timestamptz as +00 text, which PostgreSQL reads exactly
        with pg.transaction(), pg.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"watershop-marts:{schema}"])
            cursor.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(fresh)))
            cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(fresh)))
            for mart in build.marts:
                _load_mart(cursor, db, fresh, build, mart.name, Path(scratch))
            cursor.execute(sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
                sql.Identifier(fresh), sql.Literal(f"watershop build {build.build_id}")))
            served = cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone()
            if served:
                cursor.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(sql.Identifier(schema), sql.Identifier(old)))
            cursor.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(sql.Identifier(fresh), sql.Identifier(schema)))
        with pg.cursor() as cursor:
            for leftover in _leftovers(cursor, schema):
                try:
                    with pg.transaction():
                        cursor.execute("SET LOCAL lock_timeout = '5s'")  # a reader still scanning it: next time
                        cursor.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(leftover)))
                except psycopg.errors.LockNotAvailable:
                    pass
    return schema


def served_build(url: str, schema: str = "marts") -> str | None:
    """The build id PostgreSQL serves now (the schema's comment), or None before the first publish."""
    with psycopg.connect(url) as pg:
        row = pg.execute("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s",
                         [schema]).fetchone()
    if not row or not row[0]:
        return None
    return row[0].removeprefix("watershop build ")
