"""Report charts as PNG bytes (matplotlib, Agg canvas; no pyplot global state, safe in threads).

Every function takes a small polars frame and returns PNG bytes; an empty frame gives a chart that
says there is nothing to show, so a report always has the same files.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

BLUE, GREEN, RED, GREY, ORANGE = "#4c78a8", "#59a14f", "#d62728", "#b0b0b0", "#f58518"
SIZE = (6.4, 3.6)
DPI = 125


def _figure(size: tuple[float, float] = SIZE) -> Figure:
    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def _style(ax, title: str) -> None:
    ax.set_title(title, loc="left", fontsize=10, fontweight="bold")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", alpha=0.25)


def _legend(ax, **kwargs) -> None:
    """Legend right of the plot, so it never hides a bar nor the title."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8, borderaxespad=0.3, **kwargs)


def _date_axis(ax, days: list) -> None:
    import matplotlib.dates as mdates

    step = max(1, -(-len(days) // 10))  # at most ~10 labels
    ax.xaxis.set_major_locator(mdates.DayLocator(interval=step))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    if days:
        ax.set_xlim(mdates.date2num(min(days)) - 0.6, mdates.date2num(max(days)) + 0.6)
    for label in ax.get_xticklabels():
        label.set_rotation(0 if len(days) <= 8 else 45)
        label.set_horizontalalignment("center" if len(days) <= 8 else "right")


def _empty(title: str, message: str) -> bytes:
    figure = _figure()
    ax = figure.add_subplot()
    _style(ax, title)
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, color="#666666", transform=ax.transAxes)
    return _png(figure)


def _guard(title: str, df: pl.DataFrame | None, message: str, draw: Callable[[], bytes]) -> bytes:
    if df is None:
        return _empty(title, "No visit marts in this workspace yet")
    if df.height == 0:
        return _empty(title, message)
    return draw()


def top_customers_by_visits(df: pl.DataFrame | None, title: str) -> bytes:
    """Horizontal bars: customer_id, visits (first row on top)."""

    def draw() -> bytes:
        figure = _figure((6.4, max(2.4, 0.28 * df.height + 1.1)))
        ax = figure.add_subplot()
        rows = df.reverse()
        bars = ax.barh(rows["customer_id"].to_list(), rows["visits"].to_list(), color=BLUE)
        ax.bar_label(bars, padding=3, fontsize=9)
        ax.set_xlim(0, max(rows["visits"].max(), 1) * 1.12)  # room for the labels
        ax.set_xlabel("visits")
        _style(ax, title)
        ax.grid(axis="y", visible=False)
        ax.grid(axis="x", alpha=0.25)
        ax.xaxis.get_major_locator().set_params(integer=True)
        return _png(figure)

    return _guard(title, df, "No visits in this period", draw)


def visits_per_hour(df: pl.DataFrame | None, title: str) -> bytes:
    """Bars per hour: hour, visits, optional is_peak/is_idle flags colour them."""

    def draw() -> bytes:
        figure = _figure()
        ax = figure.add_subplot()
        peak = df["is_peak"].fill_null(False).to_list() if "is_peak" in df.columns else [False] * df.height
        idle = df["is_idle"].fill_null(False).to_list() if "is_idle" in df.columns else [False] * df.height
        colors = [RED if p else GREY if i else BLUE for p, i in zip(peak, idle)]
        ax.bar(df["hour"].to_list(), df["visits"].to_list(), color=colors, width=0.8)
        ax.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)])
        ax.set_xlim(-0.6, 23.6)
        ax.set_xlabel("hour of day")
        ax.set_ylabel("visits")
        ax.yaxis.get_major_locator().set_params(integer=True)
        if any(peak) or any(idle):
            from matplotlib.patches import Patch

            _legend(ax, handles=[Patch(color=RED, label="peak"), Patch(color=BLUE, label="normal"),
                                 Patch(color=GREY, label="idle")])
        _style(ax, title)
        return _png(figure)

    return _guard(title, None if df is None else df.filter(pl.col("visits") > 0), "No visits in this period", draw)


def daily_visits_trend(df: pl.DataFrame | None, title: str) -> bytes:
    """Stacked bars new/returning customers per day and a line of visits: date, visits, new_customers,
    returning_customers."""

    def draw() -> bytes:
        figure = _figure()
        ax = figure.add_subplot()
        days = df["date"].to_list()
        new, returning = df["new_customers"].to_list(), df["returning_customers"].to_list()
        ax.bar(days, new, color=GREEN, label="new customers", width=0.8)
        ax.bar(days, returning, bottom=new, color=BLUE, label="returning customers", width=0.8)
        ax.plot(days, df["visits"].to_list(), color=ORANGE, marker="o", markersize=3, label="visits")
        ax.set_ylabel("per day")
        ax.yaxis.get_major_locator().set_params(integer=True)
        _legend(ax)
        _date_axis(ax, days)
        _style(ax, title)
        return _png(figure)

    return _guard(title, df, "No visits in this period", draw)


def new_vs_returning(new: int | None, returning: int | None, title: str) -> bytes:
    if new is None or returning is None:
        return _empty(title, "No visit marts in this workspace yet")
    if new + returning == 0:
        return _empty(title, "No customers in this period")
    figure = _figure((5.0, 3.6))
    ax = figure.add_subplot()
    slices = [(n, f"{label} ({n})", color) for n, label, color in
              ((new, "new", GREEN), (returning, "returning", BLUE)) if n > 0]
    ax.pie([n for n, _, _ in slices], labels=[label for _, label, _ in slices], colors=[c for _, _, c in slices],
           autopct="%1.0f%%", startangle=90, counterclock=False, wedgeprops={"width": 0.45, "edgecolor": "white"},
           textprops={"fontsize": 9})
    ax.set_title(title, loc="left", fontsize=10, fontweight="bold")
    ax.set_aspect("equal")
    return _png(figure)


def spend_per_customer(df: pl.DataFrame, title: str) -> bytes:
    """Stacked horizontal bars paid/unpaid: customer_id, paid_amount, unpaid_amount (first row on top)."""

    def draw() -> bytes:
        figure = _figure((6.4, max(2.4, 0.28 * df.height + 1.1)))
        ax = figure.add_subplot()
        rows = df.reverse()
        names = rows["customer_id"].to_list()
        paid, unpaid = rows["paid_amount"].to_list(), rows["unpaid_amount"].to_list()
        ax.barh(names, paid, color=BLUE, label="paid")
        bars = ax.barh(names, unpaid, left=paid, color=RED, label="unpaid")
        ax.bar_label(bars, labels=[f"{p + u:,.0f}" for p, u in zip(paid, unpaid)], padding=3, fontsize=9)
        ax.set_xlim(0, max(max(p + u for p, u in zip(paid, unpaid)), 1) * 1.15)  # room for the labels
        ax.set_xlabel("amount")
        _legend(ax)
        _style(ax, title)
        ax.grid(axis="y", visible=False)
        ax.grid(axis="x", alpha=0.25)
        return _png(figure)

    return _guard(title, df, "No purchases by known customers in this period", draw)


def daily_revenue(df: pl.DataFrame, title: str) -> bytes:
    """Stacked bars paid/unpaid revenue per day: date, paid_revenue, unpaid_revenue."""

    def draw() -> bytes:
        figure = _figure()
        ax = figure.add_subplot()
        days = df["date"].to_list()
        paid, unpaid = df["paid_revenue"].to_list(), df["unpaid_revenue"].to_list()
        ax.bar(days, paid, color=BLUE, label="paid", width=0.8)
        ax.bar(days, unpaid, bottom=paid, color=RED, label="unpaid", width=0.8)
        ax.set_ylabel("revenue")
        _legend(ax)
        _date_axis(ax, days)
        _style(ax, title)
        return _png(figure)

    return _guard(title, df, "No sales in this period", draw)
