"""Daily and monthly shop reports: charts (PNG), figures (CSV) and one self-contained HTML page.

Written into `<workspace>/reports/<shop>/<YYYY-MM-DD | YYYY-MM>/`; every file is written to a temp file
in that folder and renamed into place, the HTML last, so a reader never sees a half-written file and
the HTML never points at a missing chart. Re-running replaces the files (idempotent).

Windows: a daily report's figures, hourly traffic and new-vs-returning cover the day; its trend, top
customers and spend charts cover the 30 days ending that day. A monthly report covers the month.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from watershop_dagster.atomic import atomic_write_bytes
from watershop_dagster.config import WatershopConfig
from watershop_dagster.reports import charts
from watershop_dagster.serving import queries as q
from watershop_dagster.serving.marts import MartsConnection, MartsReader
from watershop_dagster.serving.settings import reports_dir

TREND_DAYS = 30
TOP_N = 10
CHART_FILES = {
    "top_customers": "top_customers.png",
    "visits_per_hour": "visits_per_hour.png",
    "daily_visits": "daily_visits.png",
    "new_vs_returning": "new_vs_returning.png",
    "spend_per_customer": "spend_per_customer.png",
    "daily_revenue": "daily_revenue.png",
}


@dataclass(frozen=True)
class ReportResult:
    shop_id: str
    kind: str  # "daily" | "monthly"
    period: str  # "YYYY-MM-DD" | "YYYY-MM"
    directory: Path
    html: Path
    charts: dict[str, Path] = field(default_factory=dict)
    tables: dict[str, Path] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    has_visits: bool = False


def _csv_bytes(df: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    df.write_csv(buffer, datetime_format="%Y-%m-%d %H:%M:%S", float_precision=2)
    return buffer.getvalue()


def _month_start(month: date | str) -> date:
    if isinstance(month, str):
        year, number = month.split("-")[:2]
        return date(int(year), int(number), 1)
    return month.replace(day=1)


def _month_end(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


#: the behaviour analytics write each camera-day's heatmap into the day's report folder under this name
HEATMAP_GLOB = "heatmap_*.png"


def write_daily_report(config: WatershopConfig, shop_id: str, day: date | str) -> ReportResult:
    """Report for one shop-day; call after the day's partition is materialized."""
    day = date.fromisoformat(day) if isinstance(day, str) else day
    period = q.Filter(shop_id, day, day)
    context = q.Filter(shop_id, day - timedelta(days=TREND_DAYS - 1), day)
    return _write(config, shop_id, "daily", day.isoformat(), period, context,
                  title=f"Daily report · {day:%A %d %B %Y}", context_label=f"last {TREND_DAYS} days")


def write_monthly_report(config: WatershopConfig, shop_id: str, month: date | str) -> ReportResult:
    """Report for one shop-month (`month` is any day of it, or 'YYYY-MM')."""
    first = _month_start(month)
    period = q.Filter(shop_id, first, _month_end(first))
    return _write(config, shop_id, "monthly", f"{first:%Y-%m}", period, period,
                  title=f"Monthly report · {first:%B %Y}", context_label=f"{first:%B %Y}")


def _collect(con: MartsConnection, period: q.Filter, context: q.Filter) -> dict[str, Any]:
    has_visits = con.has("daily_visits", "new_customers", "returning_customers", "traffic_per_hour", "visit_log")
    figures = q.overview(con, period)
    data: dict[str, Any] = {"has_visits": has_visits, "figures": figures}
    data["daily"] = q.daily_series(con, context)
    data["hourly"] = q.hourly_traffic(con, period) if has_visits else None
    data["opening"] = q.opening_times(con, period) if con.has("first_last_customer") else None
    data["top_customers"] = q.top_customers_by_visits(con, context, TOP_N) if has_visits else None
    data["spend"] = q.spend_per_customer(con, context, None)
    data["payment_modes"] = q.payment_modes(con, period)
    data["cans_by_size"] = q.cans_by_size(con, period)
    data["defaulters"] = q.defaulters(con, period.shop_id) if con.has("repeat_defaulters") else None
    data["unpaid"] = q.unpaid(con, period) if con.has("unpaid") else None
    return data


def _summary(data: dict[str, Any]) -> dict[str, Any]:
    f: q.Overview = data["figures"]
    summary: dict[str, Any] = {
        "visits": f.visits, "unique_customers": f.unique_customers, "new_customers": f.new_customers,
        "returning_customers": f.returning_customers,
        "avg_visit_seconds": None if f.avg_duration_s is None else round(f.avg_duration_s, 1),
        "visits_without_payment": f.visits_without_payment,
        "transactions": f.transactions, "revenue": round(f.revenue, 2), "paid_revenue": round(f.paid_revenue, 2),
        "unpaid_revenue": round(f.unpaid_revenue, 2), "cans": f.cans, "walk_in_transactions": f.walk_in_transactions,
        "days_with_sales": f.days_with_sales,
    }
    opening = data["opening"]
    if opening is not None and opening.height:
        summary["first_entry"] = q.format_time(opening["first_entry"].dt.time().min())
        summary["last_exit"] = q.format_time(opening["last_exit"].dt.time().max())
    hourly = data["hourly"]
    if hourly is not None and hourly.height:
        for flag, key in (("is_peak", "peak_hours"), ("is_idle", "idle_hours")):
            summary[key] = " ".join(f"{h:02d}:00" for h in hourly.filter(pl.col(flag).fill_null(False))["hour"])
        busiest = hourly.sort("visits", descending=True).row(0, named=True)
        summary["busiest_hour"] = f"{busiest['hour']:02d}:00" if busiest["visits"] else None
    return summary


def _write(config: WatershopConfig, shop_id: str, kind: str, period_name: str, period: q.Filter,
           context: q.Filter, title: str, context_label: str) -> ReportResult:
    config.shop(shop_id)  # unknown shop -> KeyError naming the configured ones
    reader = MartsReader(config.marts_db)
    try:
        with reader.connect() as con:
            data = _collect(con, period, context)
    finally:
        reader.close()
    figures: q.Overview = data["figures"]
    summary = _summary(data)
    directory = reports_dir(config) / shop_id / period_name
    period_label = "the day" if kind == "daily" else "the month"

    daily = data["daily"]
    visits_daily = daily.select("date", "visits", "new_customers", "returning_customers") if (
        data["has_visits"] and "visits" in daily.columns) else None
    top = data["top_customers"]
    spend = data["spend"]
    pngs = {
        "top_customers": charts.top_customers_by_visits(top, f"Top customers by visits ({context_label})"),
        "visits_per_hour": charts.visits_per_hour(data["hourly"], f"Visits per hour ({period_label})"),
        "daily_visits": charts.daily_visits_trend(visits_daily, f"Daily visits ({context_label})"),
        "new_vs_returning": charts.new_vs_returning(figures.new_customers, figures.returning_customers,
                                                    f"New vs returning customers ({period_label})"),
        "spend_per_customer": charts.spend_per_customer(spend.head(TOP_N), f"Spend per customer ({context_label})"),
        "daily_revenue": charts.daily_revenue(daily.select("date", "paid_revenue", "unpaid_revenue"),
                                              f"Revenue per day ({context_label})"),
    }
    tables: dict[str, pl.DataFrame] = {
        "summary": pl.DataFrame({"metric": list(summary),
                                 "value": [None if v is None else str(v) for v in summary.values()]}),
        "daily": daily,
        "payment_modes": data["payment_modes"],
        "cans_by_size": data["cans_by_size"],
        "spend_per_customer": spend,
    }
    if data["hourly"] is not None:
        tables["hourly"] = data["hourly"]
    if top is not None:
        tables["top_customers"] = top
    if data["opening"] is not None:
        tables["opening_closing"] = data["opening"]
    if data["unpaid"] is not None:
        tables["unpaid"] = data["unpaid"]
    if data["defaulters"] is not None:
        tables["repeat_defaulters"] = data["defaulters"]

    chart_paths = {name: atomic_write_bytes(directory / CHART_FILES[name], png) for name, png in pngs.items()}
    table_paths = {name: atomic_write_bytes(directory / f"{name}.csv", _csv_bytes(df)) for name, df in tables.items()}
    shop = config.shop(shop_id)
    heatmaps = sorted(directory.glob(HEATMAP_GLOB))  # written beside the report by each camera-day's behaviour
    page = _html(shop.name or shop.id, title, kind, summary, pngs, tables, table_paths, data["has_visits"], heatmaps)
    html_path = atomic_write_bytes(directory / "report.html", page.encode())
    return ReportResult(shop_id, kind, period_name, directory, html_path, chart_paths, table_paths, summary,
                        data["has_visits"])


# --- HTML ---------------------------------------------------------------------------------------

SUMMARY_LABELS = {
    "visits": "Visits", "unique_customers": "Unique customers", "new_customers": "New customers",
    "returning_customers": "Returning customers", "avg_visit_seconds": "Average visit",
    "visits_without_payment": "Visits without a purchase", "transactions": "Transactions", "revenue": "Revenue",
    "paid_revenue": "Paid", "unpaid_revenue": "Unpaid", "cans": "Cans sold",
    "walk_in_transactions": "Walk-in transactions", "days_with_sales": "Days with sales",
    "first_entry": "First customer in", "last_exit": "Last customer out", "peak_hours": "Peak hours",
    "idle_hours": "Idle hours", "busiest_hour": "Busiest hour",
}
CSS = """
body{font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;padding:0 1rem} h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:.6rem;margin:1rem 0}
.card{border:1px solid #e3e3e3;border-radius:8px;padding:.6rem .8rem}.card .k{color:#666;font-size:.85rem}
.card .v{font-size:1.5rem;font-weight:600} .charts{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
.charts img{width:100%;border:1px solid #eee;border-radius:6px} table{border-collapse:collapse;font-size:.9rem;
margin:.5rem 0 1.5rem} th,td{border-bottom:1px solid #eee;padding:.3rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left} .note{background:#eef5fc;padding:.6rem .8rem;border-radius:6px}
@media (max-width:800px){.charts{grid-template-columns:1fr}}
"""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return html.escape(str(value))


def _card_value(key: str, value: Any) -> str:
    if key == "avg_visit_seconds":
        minutes, seconds = divmod(int(round(value)), 60)
        return f"{minutes}m {seconds:02d}s"
    if isinstance(value, int):
        return f"{value:,}"
    return _cell(value)


def _table_html(df: pl.DataFrame, limit: int = 15) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in df.head(limit).rows())
    more = f"<p class='sub'>{df.height - limit} more rows in the CSV.</p>" if df.height > limit else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def _html(shop: str, title: str, kind: str, summary: dict[str, Any], pngs: dict[str, bytes],
          tables: dict[str, pl.DataFrame], table_paths: dict[str, Path], has_visits: bool,
          heatmaps: list[Path] = ()) -> str:
    cards = "".join(
        f"<div class='card'><div class='k'>{html.escape(SUMMARY_LABELS.get(k, k))}</div>"
        f"<div class='v'>{_card_value(k, v)}</div></div>"
        for k, v in summary.items() if v not in (None, "")
    )
    images = "".join(
        f"<figure><img alt='{html.escape(name.replace('_', ' '))}' "
        f"src='data:image/png;base64,{base64.b64encode(png).decode()}'></figure>"
        for name, png in pngs.items()
    )
    note = "" if has_visits else (
        "<p class='note'>This workspace has no visit marts yet (they are built from camera footage): "
        "visit figures and charts are empty; sales figures come from the POS marts.</p>"
    )
    sections = []
    for name in ("payment_modes", "cans_by_size", "top_customers", "spend_per_customer", "opening_closing",
                 "unpaid", "repeat_defaulters"):
        if name in tables and tables[name].height:
            label = name.replace("_", " ").capitalize()
            link = html.escape(table_paths[name].name)
            sections.append(f"<h3>{label} <small>(<a href='{link}'>CSV</a>)</small></h3>{_table_html(tables[name])}")
    if heatmaps:
        figures = "".join(f"<figure><img alt='{html.escape(p.stem)}' src='{html.escape(p.name)}'>"
                          f"<figcaption>{html.escape(p.stem.removeprefix('heatmap_'))}</figcaption></figure>"
                          for p in heatmaps)
        sections.append(f"<h3>Where people stood (per camera)</h3><div class='charts'>{figures}</div>")
    links = " · ".join(f"<a href='{html.escape(p.name)}'>{html.escape(p.name)}</a>" for p in table_paths.values())
    generated = datetime.now().strftime("%Y-%m-%d %H:%M")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{html.escape(shop)} · {html.escape(title)}</title><style>{CSS}</style></head>
<body><h1>{html.escape(shop)}</h1><p class="sub">{html.escape(title)} · generated {generated}</p>
{note}<div class="cards">{cards}</div>
<div class="charts">{images}</div>
{''.join(sections)}
<p class="sub">Figures as CSV: {links}</p>
</body></html>
"""
