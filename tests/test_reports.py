"""Daily and monthly reports: PNG charts, CSV figures and HTML, checked against SQL on the marts."""

from __future__ import annotations

import csv

import duckdb
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.test_serving_data import END, START, ServingWorkspaces, serving_workspaces
from watershop_dagster.reports import write_daily_report, write_monthly_report
from watershop_dagster.reports.report import CHART_FILES
from watershop_dagster.serving.commands import report

pytestmark = pytest.mark.slow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory) -> ServingWorkspaces:
    return serving_workspaces(tmp_path_factory)


def sql(config, query: str, params: list | None = None) -> tuple:
    with duckdb.connect(str(config.marts_db), read_only=True) as db:
        return db.execute(query, params or []).fetchone()


def read_summary(path) -> dict[str, str]:
    with open(path, newline="") as handle:
        return {row["metric"]: row["value"] for row in csv.DictReader(handle)}


def assert_charts(result) -> None:
    assert set(result.charts) == set(CHART_FILES)
    for path in result.charts.values():
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC), path
        with Image.open(path) as image:
            assert image.width >= 500 and image.height >= 250, (path, image.size)


def test_daily_report_matches_the_marts(workspaces):
    full = workspaces.full
    day = END
    result = write_daily_report(full, "north", day)
    assert result.directory == full.workspace_dir / "reports" / "north" / str(END)
    assert result.html == result.directory / "report.html" and result.has_visits
    assert_charts(result)

    summary = read_summary(result.tables["summary"])
    visits, unique, new, returning = sql(full, "select visits, unique_customers, new_customers, returning_customers "
                                               "from daily_visits where shop_id = 'north' and date = ?", [day])
    revenue, transactions = sql(full, "select revenue::double, transactions from daily_revenue "
                                      "where shop_id = 'north' and date = ?", [day])
    assert (int(summary["visits"]), int(summary["unique_customers"]), int(summary["new_customers"]),
            int(summary["returning_customers"])) == (visits, unique, new, returning)
    assert float(summary["revenue"]) == pytest.approx(revenue)
    assert int(summary["transactions"]) == transactions
    first_in, = sql(full, "select strftime(first_entry, '%H:%M') from first_last_customer "
                          "where shop_id = 'north' and date = ?", [day])
    assert summary["first_entry"] == first_in

    # hourly figures of the day; trend tables over the 30 days ending that day
    with open(result.tables["hourly"], newline="") as handle:
        hourly = list(csv.DictReader(handle))
    assert sum(int(row["visits"]) for row in hourly) == visits
    with open(result.tables["daily"], newline="") as handle:
        assert [row["date"] for row in csv.DictReader(handle)] == [str(START), str(END)]

    page = result.html.read_text()
    assert page.count("data:image/png;base64,") == len(CHART_FILES)
    assert f"{revenue:,.2f}" in page and "summary.csv" in page
    assert not [p for p in result.directory.iterdir() if p.name.endswith(".tmp")]

    before = {p.name: p.read_bytes() for p in result.directory.glob("*.csv")}
    again = write_daily_report(full, "north", day)  # idempotent: same files, same figures
    assert {p.name: p.read_bytes() for p in again.directory.glob("*.csv")} == before


def test_monthly_report_matches_the_marts(workspaces):
    full = workspaces.full
    result = write_monthly_report(full, "north", "2025-03")
    assert result.directory.name == "2025-03" and result.period == "2025-03"
    assert_charts(result)
    summary = read_summary(result.tables["summary"])
    visits, = sql(full, "select sum(visits) from monthly_visits where shop_id = 'north' and month = '2025-03-01'")
    revenue, = sql(full, "select revenue::double from monthly_revenue where shop_id = 'north' and month = '2025-03-01'")
    assert int(summary["visits"]) == visits
    assert float(summary["revenue"]) == pytest.approx(revenue)
    with open(result.tables["top_customers"], newline="") as handle:
        top = next(csv.DictReader(handle))
    march = "shop_id = 'north' and role <> 'staff' and date between '2025-03-01' and '2025-03-31'"
    visits_of_top, = sql(full, f"select count(*) from visit_log where {march} and customer_id = ?", [top["customer_id"]])
    most, = sql(full, f"select max(n) from (select count(*) n from visit_log where {march} "
                      "and customer_id is not null group by customer_id)")
    assert int(top["visits"]) == visits_of_top == most
    with open(result.tables["spend_per_customer"], newline="") as handle:
        spend = sum(float(row["amount"]) for row in csv.DictReader(handle))
    # a sale counts for the visit's (registry) customer where it is linked to a visit, else for its POS customer
    known, = sql(full, """select sum(t.amount)::double from transactions t
                          left join transaction_visit_links l using (shop_id, date, transaction_id)
                          where t.shop_id = 'north' and coalesce(l.customer_id, t.customer_id) is not null""")
    assert spend == pytest.approx(known)


def test_pos_only_report_still_writes_every_file(workspaces):
    result = write_daily_report(workspaces.pos_only, "north", END)
    assert not result.has_visits
    assert_charts(result)
    summary = read_summary(result.tables["summary"])
    assert summary["visits"] == "" and float(summary["revenue"]) > 0
    assert "no visit marts" in result.html.read_text()


def test_report_command(workspaces):
    config_file = str(ServingWorkspaces.config_file(workspaces.full))
    runner = CliRunner()
    done = runner.invoke(report, ["--config", config_file, "--date", "2025-03-01"])
    assert done.exit_code == 0, done.output
    assert set(done.output.split()) >= {"north:", "south:"}
    for shop in ("north", "south"):
        assert (workspaces.full.workspace_dir / "reports" / shop / "2025-03-01" / "report.html").is_file()
    done = runner.invoke(report, ["--config", config_file, "--month", "2025-03", "--shop", "south"])
    assert done.exit_code == 0 and "south:" in done.output
    assert runner.invoke(report, ["--config", config_file]).exit_code == 2
    assert runner.invoke(report, ["--config", config_file, "--date", "2025-03-01", "--month", "2025-03"]).exit_code == 2
    assert runner.invoke(report, ["--config", config_file, "--month", "March"]).exit_code == 2
    unknown = runner.invoke(report, ["--config", config_file, "--date", "2025-03-01", "--shop", "atlantis"])
    assert unknown.exit_code == 2 and "atlantis" in unknown.output
