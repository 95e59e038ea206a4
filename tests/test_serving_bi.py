"""bi/example_queries.sql: every named query runs on a real marts file, read-only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from tests.test_serving_data import VISIT_CONTRACT, serving_workspaces
from watershop_dagster.serving.marts import POS_MARTS, VISIT_MARTS

pytestmark = pytest.mark.slow

QUERIES_FILE = Path(__file__).resolve().parents[1] / "bi" / "example_queries.sql"
README = QUERIES_FILE.with_name("README.md")


@dataclass(frozen=True)
class NamedQuery:
    name: str
    question: str
    marts: tuple[str, ...]
    sql: str


def parse_queries(text: str) -> list[NamedQuery]:
    blocks = re.split(r"^-- name:\s*", text, flags=re.MULTILINE)[1:]
    queries = []
    for block in blocks:
        name, _, rest = block.partition("\n")
        question = re.search(r"^-- question:\s*(.+)$", rest, flags=re.MULTILINE)
        marts = re.search(r"^-- marts:\s*(.+)$", rest, flags=re.MULTILINE)
        sql = "\n".join(line for line in rest.splitlines() if not line.startswith("--")).strip()
        assert question and marts, f"query {name!r} needs '-- question:' and '-- marts:' header lines"
        assert sql.endswith(";"), f"query {name!r} must end with a semicolon"
        queries.append(NamedQuery(name.strip(), question.group(1).strip(),
                                  tuple(m.strip() for m in marts.group(1).split(",")), sql.rstrip(";")))
    return queries


QUERIES = parse_queries(QUERIES_FILE.read_text())


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory):
    return serving_workspaces(tmp_path_factory)


def test_queries_are_named_uniquely_and_name_known_marts():
    names = [q.name for q in QUERIES]
    assert len(names) >= 15 and len(set(names)) == len(names)
    known = set(POS_MARTS) | set(VISIT_MARTS)
    for query in QUERIES:
        assert set(query.marts) <= known, (query.name, set(query.marts) - known)
        for mart in query.marts:
            assert re.search(rf"\b{mart}\b", query.sql), f"{query.name} says it reads {mart} but does not"
    # every contract mart has at least one example, and so do the main POS marts
    covered = {m for q in QUERIES for m in q.marts}
    assert set(VISIT_CONTRACT) <= covered, set(VISIT_CONTRACT) - covered
    assert {"daily_revenue", "total_spent", "unpaid", "repeat_defaulters", "payment_summary"} <= covered


@pytest.mark.parametrize("query", QUERIES, ids=[q.name for q in QUERIES])
def test_query_runs_on_the_marts(workspaces, query):
    with duckdb.connect(str(workspaces.full.marts_db), read_only=True) as db:
        rows = db.execute(query.sql).fetchall()
    if query.name != "rejected_pos_rows":  # the fixture's input has no rejected rows
        assert rows, f"{query.name} returned no rows"


def test_pos_only_queries_run_without_visit_marts(workspaces):
    pos_queries = [q for q in QUERIES if not set(q.marts) & set(VISIT_MARTS)]
    assert len(pos_queries) >= 7
    with duckdb.connect(str(workspaces.pos_only.marts_db), read_only=True) as db:
        for query in pos_queries:
            db.execute(query.sql).fetchall()


def test_daily_overview_agrees_with_the_marts(workspaces):
    query = next(q for q in QUERIES if q.name == "daily_overview")
    with duckdb.connect(str(workspaces.full.marts_db), read_only=True) as db:
        got = db.execute(f"select sum(visits), sum(revenue) from ({query.sql})").fetchone()
        want = db.execute("select (select sum(visits) from daily_visits), "
                          "(select sum(revenue) from daily_revenue)").fetchone()
    assert got == want


def test_readme_covers_the_bi_tools():
    text = README.read_text()
    for tool in ("Metabase", "Superset", "Grafana", "Evidence"):
        assert tool in text
    assert "read_only" in text.lower() or "read-only" in text.lower()
