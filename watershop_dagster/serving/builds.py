"""The layout of published builds, shared by the publisher (`warehouse`) and the readers.

    <warehouse>/builds/<build_id>/<mart>.parquet   every mart of one build, immutable
    <warehouse>/builds/<build_id>/manifest.json    its marts, their columns, the publish time
    <warehouse>/current -> builds/<build_id>       the build served now
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

MANIFEST = "manifest.json"
BUILD_ID = re.compile(r"^(\d{8}T\d{12}Z)-[0-9a-f]{8}$")


@dataclass(frozen=True)
class Mart:
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type) as built by dbt
    casts: tuple[tuple[str, str], ...] = ()  # columns whose Parquet round trip changes the type


@dataclass(frozen=True)
class Build:
    build_id: str
    path: Path
    published_at: datetime
    marts: tuple[Mart, ...]

    def mart(self, name: str) -> Mart:
        return next(m for m in self.marts if m.name == name)

    def parquet(self, name: str) -> Path:
        return self.path / f"{name}.parquet"


def builds_dir(warehouse: Path) -> Path:
    return warehouse / "builds"


def current_link(warehouse: Path) -> Path:
    return warehouse / "current"


def quote_identifier(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def build_time(build_id: str) -> datetime | None:
    match = BUILD_ID.match(build_id)
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%S%fZ").replace(tzinfo=timezone.utc) if match else None


def mart_view_sql(parquet: Path | str, mart: Mart) -> str:
    """The SELECT serving one mart from its Parquet file, with dbt's types where Parquet lost them."""
    replace = ", ".join(f"{quote_identifier(column)}::{type_} AS {quote_identifier(column)}" for column, type_ in mart.casts)
    star = f"* REPLACE ({replace})" if replace else "*"
    return f"SELECT {star} FROM read_parquet({quote_literal(str(parquet))})"


def read_build(path: Path) -> Build:
    manifest = json.loads((path / MANIFEST).read_text())
    marts = tuple(Mart(m["name"], tuple(map(tuple, m["columns"])), tuple(map(tuple, m["casts"])))
                  for m in manifest["marts"])
    return Build(manifest["build_id"], path, datetime.fromisoformat(manifest["published_at"]), marts)


def current_build(warehouse: Path) -> Build | None:
    """The build `current` points at (resolved once: the caller keeps reading that one)."""
    link = current_link(warehouse)
    if not os.path.lexists(link):
        return None
    return read_build(Path(os.path.realpath(link)))
