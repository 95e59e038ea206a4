"""Shop reports: charts (PNG), figures (CSV) and an HTML page per shop-day or shop-month.

`write_daily_report(config, shop_id, day)` and `write_monthly_report(config, shop_id, month)` write into
`<workspace>/reports/<shop>/<YYYY-MM-DD | YYYY-MM>/` and return a `ReportResult` (paths + summary).
"""

from watershop_dagster.reports.report import ReportResult, write_daily_report, write_monthly_report

__all__ = ["ReportResult", "write_daily_report", "write_monthly_report"]
