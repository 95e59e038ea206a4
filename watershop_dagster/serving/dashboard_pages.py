"""The dashboard's pages. Each page reads one snapshot of the marts through `View.reader`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import altair as alt
import polars as pl
import streamlit as st

from watershop_dagster.config import WatershopConfig
from watershop_dagster.serving import queries as q
from watershop_dagster.serving.marts import MartsConnection, MartsReader, MartsUnavailable

NO_VISITS = (
    "This workspace has no visit marts yet (they are built from camera footage): visit figures are not "
    "available; sales figures come from the POS marts."
)
NEEDS_VISITS = "Needs the visit marts, which this workspace does not have yet."
PEAK, IDLE, NORMAL = "Peak", "Idle", "Normal"
HOUR_COLORS = alt.Scale(domain=[PEAK, NORMAL, IDLE], range=["#d62728", "#4c78a8", "#b0b0b0"])


@dataclass(frozen=True)
class View:
    config: WatershopConfig
    reader: MartsReader
    flt: q.Filter

    @property
    def title_suffix(self) -> str:
        shop = self.config.shop(self.flt.shop_id)
        name = shop.name or shop.id
        if self.flt.start == self.flt.end:
            return f"{name} · {self.flt.start:%a %d %b %Y}"
        return f"{name} · {self.flt.start:%d %b %Y} – {self.flt.end:%d %b %Y}"


def money(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def count(value: int | None) -> str:
    return "—" if value is None else f"{int(value):,}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def hour_label(hour: int) -> str:
    return f"{hour:02d}:00"


@contextmanager
def snapshot(view: View) -> Iterator[MartsConnection]:
    try:
        with view.reader.connect() as con:
            yield con
    except MartsUnavailable as exc:
        st.error(str(exc))
        st.stop()


def _table(df: pl.DataFrame, **column_config) -> None:
    """A read-only table; days and times shown as plain local text (no time zone games in the browser)."""
    df = df.with_columns(
        [pl.col(c).dt.strftime("%Y-%m-%d") for c, t in df.schema.items() if t == pl.Date]
        + [pl.col(c).dt.strftime("%Y-%m-%d %H:%M:%S") for c, t in df.schema.items() if isinstance(t, pl.Datetime)]
    )
    st.dataframe(df, hide_index=True, width="stretch", column_config=column_config or None)


def _day_axis() -> alt.X:
    return alt.X("day:O", title=None, sort=alt.EncodingSortField("date"),
                 axis=alt.Axis(labelAngle=0, labelOverlap=True))


# --- overview -----------------------------------------------------------------------------------

def overview(view: View) -> None:
    st.title("Overview")
    st.caption(view.title_suffix)
    flt = view.flt
    with snapshot(view) as con:
        figures = q.overview(con, flt)
        series = q.daily_series(con, flt)
        hours = q.hourly_traffic(con, flt) if con.has("traffic_per_hour") else None
        opening = q.opening_times(con, flt) if con.has("first_last_customer") else None
        modes = q.payment_modes(con, flt)
        sizes = q.cans_by_size(con, flt)

    st.subheader("Customers")
    if figures.has_visits:
        cols = st.columns(5)
        cols[0].metric("Visits", count(figures.visits), help="Customer visits seen on camera (staff excluded).")
        cols[1].metric("Unique customers", count(figures.unique_customers))
        cols[2].metric("New customers", count(figures.new_customers), help="First seen in this date range.")
        cols[3].metric("Returning customers", count(figures.returning_customers),
                       help="Seen in this range and first seen before it.")
        cols[4].metric("Average visit", duration(figures.avg_duration_s))
    else:
        st.info(NO_VISITS)

    st.subheader("Sales")
    cols = st.columns(5)
    cols[0].metric("Revenue", money(figures.revenue), help="Billed amount, paid and unpaid.")
    cols[1].metric("Paid", money(figures.paid_revenue))
    cols[2].metric("Unpaid", money(figures.unpaid_revenue))
    cols[3].metric("Transactions", count(figures.transactions))
    cols[4].metric("Cans sold", count(figures.cans))

    if series.height:
        series = series.with_columns(day=pl.col("date").dt.strftime("%d %b"))
        left, right = st.columns(2)
        if "visits" in series.columns:
            visits = series.select("date", "day", pl.col("new_customers").alias("New"),
                                   pl.col("returning_customers").alias("Returning")).unpivot(
                index=["date", "day"], variable_name="customers", value_name="count")
            left.markdown("**Customers per day**")
            left.altair_chart(
                alt.Chart(visits).mark_bar().encode(
                    x=_day_axis(),
                    y=alt.Y("count:Q", title="customers"),
                    color=alt.Color("customers:N", title=None, scale=alt.Scale(range=["#59a14f", "#4c78a8"])),
                    tooltip=["date:T", "customers:N", "count:Q"],
                ).properties(height=260),
                width="stretch",
            )
        revenue = series.select("date", "day", pl.col("paid_revenue").alias("Paid"),
                                pl.col("unpaid_revenue").alias("Unpaid")).unpivot(
            index=["date", "day"], variable_name="status", value_name="amount")
        target = right if "visits" in series.columns else left
        target.markdown("**Revenue per day**")
        target.altair_chart(
            alt.Chart(revenue).mark_bar().encode(
                x=_day_axis(),
                y=alt.Y("amount:Q", title="amount"),
                color=alt.Color("status:N", title=None, scale=alt.Scale(domain=["Paid", "Unpaid"],
                                                                        range=["#4c78a8", "#e45756"])),
                tooltip=["date:T", "status:N", alt.Tooltip("amount:Q", format=",.2f")],
            ).properties(height=260),
            width="stretch",
        )
    else:
        st.warning("No sales or visits in this date range.")

    st.subheader("Traffic per hour")
    if hours is None:
        st.caption(NEEDS_VISITS)
    elif hours.filter(pl.col("visits") > 0).height == 0:
        st.write("No visits in this date range.")
    else:
        hours = hours.with_columns(
            kind=pl.when(pl.col("is_peak")).then(pl.lit(PEAK)).when(pl.col("is_idle")).then(pl.lit(IDLE))
            .otherwise(pl.lit(NORMAL)),
            label=pl.col("hour").map_elements(hour_label, return_dtype=pl.String),
            tick=pl.col("hour").cast(pl.String).str.zfill(2),
        )
        peak_hours = ", ".join(hours.filter(pl.col("kind") == PEAK)["label"].to_list()) or "—"
        idle_hours = ", ".join(hours.filter(pl.col("kind") == IDLE)["label"].to_list()) or "—"
        cols = st.columns([3, 1])
        cols[0].altair_chart(
            alt.Chart(hours).mark_bar().encode(
                x=alt.X("tick:O", title="hour of day", sort=None, axis=alt.Axis(labelAngle=0)),
                y=alt.Y("visits_per_day:Q", title="visits per day"),
                color=alt.Color("kind:N", title=None, scale=HOUR_COLORS),
                tooltip=[alt.Tooltip("label:O", title="hour"), alt.Tooltip("visits:Q", title="visits"),
                         alt.Tooltip("visits_per_day:Q", title="per day", format=".1f"),
                         alt.Tooltip("suggested_staff:Q", title="suggested staff")],
            ).properties(height=260),
            width="stretch",
        )
        with cols[1]:
            st.markdown(f"**Peak hours**  \n{peak_hours}")
            st.markdown(f"**Idle hours**  \n{idle_hours}")
            staff = hours.filter(pl.col("suggested_staff").is_not_null())
            if staff.height:
                st.markdown(f"**Staff at peak**  \n{int(staff['suggested_staff'].max())}")
            st.caption("Peak/idle flags and staffing come from `peak_hours` (the shop's history).")

    st.subheader("Opening and closing (detected)")
    if opening is None:
        st.caption(NEEDS_VISITS)
    elif opening.height == 0:
        st.write("No visits in this date range.")
    else:
        first_in = opening["first_entry"].dt.time().min()
        last_out = opening["last_exit"].dt.time().max()
        cols = st.columns(4)
        if opening.height == 1:
            cols[0].metric("Opened (first customer in)", q.format_time(first_in))
            cols[1].metric("Closed (last customer out)", q.format_time(last_out))
        else:
            cols[0].metric("Earliest opening", q.format_time(first_in))
            cols[1].metric("Latest closing", q.format_time(last_out))
        shop = view.config.shop(flt.shop_id)
        cols[2].metric("Configured hours", f"{shop.opening_time:%H:%M}–{shop.closing_time:%H:%M}")
        cols[3].metric("Visits without a purchase", count(figures.visits_without_payment))
        if opening.height > 1:
            _table(opening.select(
                "date",
                pl.col("first_entry").dt.strftime("%H:%M").alias("first in"),
                pl.col("last_exit").dt.strftime("%H:%M").alias("last out"),
                pl.col("first_customer_id").alias("first customer"),
                pl.col("last_customer_id").alias("last customer"),
            ))

    st.subheader("Payments and cans")
    left, right = st.columns(2)
    with left:
        st.markdown("**Payment modes**")
        if modes.height:
            st.altair_chart(
                alt.Chart(modes).mark_arc(innerRadius=45).encode(
                    theta=alt.Theta("amount:Q"),
                    color=alt.Color("payment_mode:N", title=None),
                    tooltip=["payment_mode:N", "transactions:Q", alt.Tooltip("amount:Q", format=",.2f")],
                ).properties(height=220),
                width="stretch",
            )
            _table(modes.select(pl.col("payment_mode").alias("mode"), "transactions", "cans", "amount",
                                "unpaid_amount"),
                   amount=st.column_config.NumberColumn(format="%.2f"),
                   unpaid_amount=st.column_config.NumberColumn("unpaid", format="%.2f"))
        else:
            st.write("No sales in this date range.")
    with right:
        st.markdown("**Cans by size**")
        if sizes.height:
            st.altair_chart(
                alt.Chart(sizes).mark_bar().encode(
                    x=alt.X("can_size:N", title=None, axis=alt.Axis(labelAngle=0)), y=alt.Y("cans:Q", title="cans"),
                    color=alt.Color("can_size:N", legend=None),
                    tooltip=["can_size:N", "cans:Q", "transactions:Q"],
                ).properties(height=220),
                width="stretch",
            )
            _table(sizes.select(pl.col("can_size").alias("size"), "cans", "transactions", "amount"),
                   amount=st.column_config.NumberColumn(format="%.2f"))
        else:
            st.write("No sales in this date range.")


# --- unpaid and defaulters ------------------------------------------------------------------------

def payments(view: View) -> None:
    st.title("Unpaid & repeat defaulters")
    st.caption(view.title_suffix)
    with snapshot(view) as con:
        unpaid = q.unpaid(con, view.flt)
        defaulters = q.defaulters(con, view.flt.shop_id)
    cols = st.columns(3)
    cols[0].metric("Unpaid transactions", count(unpaid.height))
    cols[1].metric("Unpaid amount", money(unpaid["amount"].sum() if unpaid.height else 0.0))
    cols[2].metric("Repeat defaulters", count(defaulters.height), help="Customers with 2+ unpaid bills, all time.")

    st.subheader("Repeat defaulters (all time)")
    if defaulters.height:
        _table(defaulters.drop("shop_id"), amount_owed=st.column_config.NumberColumn("amount owed", format="%.2f"))
    else:
        st.write("No customer has two or more unpaid transactions.")
    st.subheader("Unpaid transactions in the date range")
    if unpaid.height:
        _table(unpaid.drop("shop_id").with_columns(pl.col("customer_id").fill_null("walk-in")),
               amount=st.column_config.NumberColumn(format="%.2f"))
    else:
        st.write("Every transaction in this date range is paid.")


# --- top customers --------------------------------------------------------------------------------

def _hbar(df: pl.DataFrame, value: str, title: str, fmt: str = ",.0f") -> None:
    chart = alt.Chart(df).mark_bar().encode(
        y=alt.Y("customer_id:N", sort="-x", title=None, axis=alt.Axis(labelOverlap=False)),
        x=alt.X(f"{value}:Q", title=title),
        tooltip=["customer_id:N", alt.Tooltip(f"{value}:Q", format=fmt)],
    )
    st.altair_chart(chart, width="stretch", height=max(160, 24 * df.height + 50))


def top_customers(view: View) -> None:
    st.title("Top customers")
    st.caption(view.title_suffix)
    n = st.slider("How many", 5, 50, 10, step=5)
    with snapshot(view) as con:
        by_visits = q.top_customers_by_visits(con, view.flt, n) if con.has("visit_log") else None
        by_spend = q.spend_per_customer(con, view.flt, n)
    left, right = st.columns(2)
    with left:
        st.subheader("By visits")
        if by_visits is None:
            st.info(NO_VISITS)
        elif by_visits.height == 0:
            st.write("No visits in this date range.")
        else:
            _hbar(by_visits, "visits", "visits")
            _table(by_visits.select("customer_id", "visits", pl.col("days_visited").alias("days"),
                                    pl.col("visits_with_purchase").alias("with purchase"),
                                    pl.col("avg_duration_s").round(0).alias("avg visit (s)"),
                                    pl.col("amount").alias("spent")),
                   spent=st.column_config.NumberColumn(format="%.2f"))
    with right:
        st.subheader("By spend")
        if by_spend.height == 0:
            st.write("No purchases by known customers in this date range.")
        else:
            _hbar(by_spend, "amount", "amount", ",.2f")
            _table(by_spend.select("customer_id", "transactions", "cans", "amount",
                                   pl.col("unpaid_amount").alias("unpaid")),
                   amount=st.column_config.NumberColumn(format="%.2f"),
                   unpaid=st.column_config.NumberColumn(format="%.2f"))


# --- one customer ---------------------------------------------------------------------------------

def customer(view: View) -> None:
    st.title("Customer history")
    with snapshot(view) as con:
        ids = q.customer_ids(con, view.flt.shop_id) if con.has("total_spent") else []
    if not ids:
        st.warning("No known customers for this shop yet.")
        return
    customer_id = st.selectbox("Customer", ids, index=None, placeholder="Pick or type a customer id",
                               key="customer", bind="query-params")
    if customer_id is None:
        st.caption("Pick a customer to see their visits and purchases.")
        return
    all_time = st.toggle("All time (ignore the date range)", value=False)
    flt = q.Filter(view.flt.shop_id, None, None) if all_time else view.flt
    with snapshot(view) as con:
        merged = q.merged_customer_ids(con, customer_id, view.flt.shop_id)
        summary = q.customer_summary(con, customer_id, view.flt.shop_id)
        visits = q.customer_visits(con, customer_id, flt) if con.has("visit_log") else None
        purchases = q.customer_purchases(con, customer_id, flt)
    if not summary:
        st.warning(f"Unknown customer {customer_id!r} at this shop.")
        return
    also = f" (earlier ids of this person: {', '.join(merged)})" if merged else ""
    st.caption(f"{customer_id}{also} · " + ("all time" if all_time else view.title_suffix))
    life = summary[0]
    cols = st.columns(5)
    cols[0].metric("Visits (all time)", count(life.get("visits")))
    first = life.get("first_visit") or life.get("first_purchase_at")
    cols[1].metric("First seen", first.strftime("%Y-%m-%d") if first else "—")
    cols[2].metric("Spent (all time)", money(life.get("amount")))
    cols[3].metric("Unpaid (all time)", money(life.get("unpaid_amount")))
    cols[4].metric("Repeat defaulter", "yes" if life.get("repeat_defaulter") else "no")

    st.subheader("Visits")
    if visits is None:
        st.info(NO_VISITS)
    elif visits.height == 0:
        st.write("No visits in this period.")
    else:
        _table(visits.select("date", pl.col("entry_time").dt.strftime("%H:%M:%S").alias("in"),
                             pl.col("exit_time").dt.strftime("%H:%M:%S").alias("out"),
                             pl.col("duration_s").round(0).alias("seconds"), "cameras", "confidence",
                             "transaction_id", "amount"),
               amount=st.column_config.NumberColumn(format="%.2f"))
    st.subheader("Purchases")
    if purchases.height == 0:
        st.write("No purchases in this period.")
    else:
        _table(purchases.drop("shop_id"), amount=st.column_config.NumberColumn(format="%.2f"))



# --- zones (supermarket behaviour) --------------------------------------------------------------

def zones(view: View) -> None:
    """Dwell per zone, the loitering list and footfall per hour (the zone marts; staff excluded)."""
    st.title("Zones")
    st.caption(view.title_suffix)
    flt = view.flt
    with snapshot(view) as con:
        sources = q.zone_sources(con, flt)
        picked = st.multiselect("Source", sources, default=sources, key="zone_source",
                                help="Who tracked the people: `watershop` (its own people tracker on the "
                                     "recordings) or `frigate` (Frigate's events).")
        dwell = q.zone_dwell(con, flt, picked)
        loitering = q.loitering(con, flt, picked)
        footfall = q.footfall_by_hour(con, flt)
    if sources and not picked:
        st.warning("Pick at least one source.")

    st.subheader("Dwell per zone")
    if dwell.height == 0:
        st.write("No zone visits in this date range.")
    else:
        dwell = dwell.with_columns(label=pl.col("camera") + " · " + pl.col("zone") + " (" + pl.col("source") + ")")
        st.altair_chart(
            alt.Chart(dwell).mark_bar().encode(
                x=alt.X("mean_dwell_s:Q", title="mean dwell (s)"),
                y=alt.Y("label:N", title=None, sort="-x"),
                color=alt.Color("kind:N", title="kind"),
                tooltip=["camera:N", "zone:N", "source:N", "kind:N", alt.Tooltip("visits:Q"),
                         alt.Tooltip("mean_dwell_s:Q", format=".1f", title="mean (s)"),
                         alt.Tooltip("median_dwell_s:Q", format=".1f", title="median (s)"),
                         alt.Tooltip("p90_dwell_s:Q", format=".1f", title="p90 (s)")],
            ).properties(height=max(120, 28 * dwell.height)),
            width="stretch",
        )
        _table(dwell.drop("label").with_columns(
            [pl.col(c).round(1) for c in ("mean_dwell_s", "median_dwell_s", "p90_dwell_s")]))

    st.subheader("Loitering")
    if loitering.height == 0:
        st.write("Nobody loitered in this date range.")
    else:
        st.metric("Loitering events", count(loitering.height))
        _table(loitering.with_columns(pl.col("dwell_s").round(1)))

    st.subheader("Footfall per hour")
    if footfall.height == 0:
        st.write("No entrance crossings in this date range.")
    else:
        if set(picked) != set(sources):
            st.caption("Footfall counts the crossings of every source (the footfall mart is not split by source).")
        cols = st.columns(2)
        cols[0].metric("Entries", count(int(footfall["entries"].sum())), help="Customers in (staff excluded).")
        cols[1].metric("Exits", count(int(footfall["exits"].sum())))
        crossings = footfall.with_columns(tick=pl.col("hour").cast(pl.String).str.zfill(2)).select(
            "tick", pl.col("entries").alias("In"), pl.col("exits").alias("Out")).unpivot(
            index="tick", variable_name="direction", value_name="people")
        st.altair_chart(
            alt.Chart(crossings).mark_bar().encode(
                x=alt.X("tick:O", title="hour of day", axis=alt.Axis(labelAngle=0)),
                xOffset="direction:N",
                y=alt.Y("people:Q", title="people"),
                color=alt.Color("direction:N", title=None, scale=alt.Scale(range=["#59a14f", "#e45756"])),
                tooltip=["tick:O", "direction:N", "people:Q"],
            ).properties(height=260),
            width="stretch",
        )


# --- supermarket: receipts, store behaviour, zone sales, experiments, shelves ---------------------

NO_RECEIPTS = ("This shop has no supermarket receipts yet: the receipt marts are built from its receipt "
               "exports (`receipts:` in watershop.yaml).")
NO_BEHAVIOUR = ("This shop has no behaviour marts yet: they are built once cameras with zones (or Frigate) "
                "have been processed.")
NO_EXPERIMENTS = ("No experiment has been analysed in this workspace: declare and assign one with "
                  "`watershop experiment`, then run the marts.")
NO_SHELF = ("This shop has no shelf incidents yet: falls are detected on cameras with `kind: shelf` "
            "zones.")
ARM_COLORS = alt.Scale(domain=["treatment", "control"], range=["#e45756", "#4c78a8"])


def percent(value: float | None, signed: bool = False) -> str:
    return "—" if value is None else f"{value:+.1%}" if signed else f"{value:.1%}"


def number(value: float | None, places: int = 2) -> str:
    return "—" if value is None else f"{value:,.{places}f}"


def _nothing_built(con: MartsConnection, marts: tuple[str, ...], shop_id: str | None, message: str) -> bool:
    """Say plainly when the page's marts are not in the served file, or hold nothing of the shop on any
    day (a water shop's workspace: they are missing or empty)."""
    if con.has(*marts) and q.marts_with_rows(con, marts[:1], shop_id):
        return False
    st.info(message)
    return True


def _local(df: pl.DataFrame, tz: str, *columns: str) -> pl.DataFrame:
    """UTC instants as the shop's wall-clock times."""
    return df.with_columns([
        (pl.col(c).dt.replace_time_zone("UTC") if df.schema[c].time_zone is None else pl.col(c))
        .dt.convert_time_zone(tz).dt.replace_time_zone(None) for c in columns])


def receipts(view: View) -> None:
    """The supermarket's sales from its receipts: per day, per category, per zone and hour, and each receipt."""
    st.title("Receipts")
    st.caption(view.title_suffix)
    flt = view.flt
    with snapshot(view) as con:
        if _nothing_built(con, ("fct_store_day", "receipt_lines", "zone_sales_hourly"), flt.shop_id, NO_RECEIPTS):
            return
        days = q.store_days(con, flt)
        total, listed = q.receipts(con, flt)
        categories = q.sales_by_category(con, flt)
        zone_hours = q.zone_sales_by_hour(con, flt)
    if days.height == 0:
        st.write("No receipts in this date range.")
        return
    receipts_, units, sales = int(days["receipts"].sum()), float(days["units"].sum()), float(days["sales"].sum())
    cols = st.columns(5)
    cols[0].metric("Receipts", count(receipts_))
    cols[1].metric("Net sales", money(sales), help="Refunds and voids subtract.")
    cols[2].metric("Average transaction value", money(sales / receipts_), help="Net sales / receipts.")
    cols[3].metric("Units per transaction", number(units / receipts_), help="Net units / receipts.")
    cols[4].metric("Units", number(units, 0))

    st.subheader("Sales per day")
    per_day = days.with_columns(day=pl.col("date").dt.strftime("%d %b"))
    st.altair_chart(
        alt.Chart(per_day).mark_bar().encode(
            x=_day_axis(), y=alt.Y("sales:Q", title="net sales"),
            tooltip=["date:T", "receipts:Q", alt.Tooltip("sales:Q", format=",.2f"),
                     alt.Tooltip("average_transaction_value:Q", title="ATV", format=",.2f"),
                     alt.Tooltip("units_per_transaction:Q", title="UPT", format=".2f")],
        ).properties(height=240),
        width="stretch",
    )
    _table(days, sales=st.column_config.NumberColumn(format="%.2f"),
           average_transaction_value=st.column_config.NumberColumn("ATV", format="%.2f"),
           units_per_transaction=st.column_config.NumberColumn("UPT", format="%.2f"))

    left, right = st.columns(2)
    with left:
        st.subheader("Sales per category")
        _table(categories, sales=st.column_config.NumberColumn(format="%.2f"))
    with right:
        st.subheader("Zone sales per hour")
        if zone_hours.height == 0:
            st.write("No sales of zoned categories in this date range.")
        else:
            st.altair_chart(
                alt.Chart(zone_hours).mark_rect().encode(
                    x=alt.X("hour:O", title="hour of day", axis=alt.Axis(labelAngle=0)),
                    y=alt.Y("zone:N", title=None),
                    color=alt.Color("sales:Q", title="net sales"),
                    tooltip=["zone:N", "hour:O", "receipts:Q", alt.Tooltip("sales:Q", format=",.2f")],
                ).properties(height=max(120, 26 * zone_hours["zone"].n_unique())),
                width="stretch",
            )

    st.subheader("Receipts")
    if total > listed.height:
        st.caption(f"The newest {listed.height:,} of {total:,} receipts.")
    _table(listed, total=st.column_config.NumberColumn(format="%.2f"))
    by_label = {f"{day:%Y-%m-%d} · {receipt_id}": (day, receipt_id)  # a till may restart its ids each day
                for day, receipt_id in listed.select("date", "receipt_id").iter_rows()}
    picked = st.selectbox("Receipt lines", list(by_label), index=None, key="receipt",
                          placeholder="Pick a receipt to see its lines")
    if picked is not None:
        with snapshot(view) as con:
            lines = q.receipt_lines(con, flt.shop_id, *by_label[picked])
        _table(lines, line_total=st.column_config.NumberColumn("line total", format="%.2f"))


def store_behaviour(view: View) -> None:
    """Footfall beside receipts: conversion, average transaction value, units per transaction, shopper
    yield and zone entry rate (fct_store_day_behaviour)."""
    st.title("Store conversion")
    st.caption(view.title_suffix)
    with snapshot(view) as con:
        if _nothing_built(con, ("fct_store_day_behaviour",), view.flt.shop_id, NO_BEHAVIOUR):
            return
        totals, days = q.store_behaviour(con, view.flt)
    if days.height == 0:
        st.write("No footfall or receipts in this date range.")
        return
    cols = st.columns(4)
    cols[0].metric("Store visitors", count(totals.store_visitors), help="Customer entries at the entrances.")
    cols[1].metric("Receipts", count(totals.receipts))
    cols[2].metric("Net sales", money(totals.sales))
    cols[3].metric("Zone visitors", count(totals.zone_visitors), help="Visitors seen in a zone past the entrance.")
    cols = st.columns(5)
    cols[0].metric("Conversion", percent(totals.conversion_rate), help="Receipts / store visitors (days with entries).")
    cols[1].metric("Average transaction value", money(totals.average_transaction_value))
    cols[2].metric("Units per transaction", number(totals.units_per_transaction))
    cols[3].metric("Shopper yield", money(totals.shopper_yield), help="Net sales / store visitors.")
    cols[4].metric("Zone entry rate", percent(totals.zone_entry_rate),
                   help="Zone visitors / store visitors: how many went past the entrance.")
    rates = days.select("date", pl.col("date").dt.strftime("%d %b").alias("day"),
                        pl.col("conversion_rate").alias("Conversion"),
                        pl.col("zone_entry_rate").alias("Zone entry rate")).unpivot(
        index=["date", "day"], variable_name="rate", value_name="value")
    st.subheader("Per day")
    st.altair_chart(
        alt.Chart(rates).mark_line(point=True).encode(
            x=_day_axis(), y=alt.Y("value:Q", title=None, axis=alt.Axis(format="%")),
            color=alt.Color("rate:N", title=None),
            tooltip=["date:T", "rate:N", alt.Tooltip("value:Q", format=".1%")],
        ).properties(height=240),
        width="stretch",
    )
    _table(days, sales=st.column_config.NumberColumn(format="%.2f"),
           average_transaction_value=st.column_config.NumberColumn("ATV", format="%.2f"),
           units_per_transaction=st.column_config.NumberColumn("UPT", format="%.2f"),
           conversion_rate=st.column_config.NumberColumn("conversion", format="percent"),
           shopper_yield=st.column_config.NumberColumn("shopper yield", format="%.2f"),
           zone_entry_rate=st.column_config.NumberColumn("zone entry rate", format="percent"))
    _labour(view)


def _labour(view: View) -> None:
    """Sales per labour hour (staff seen on camera), by hour of day: when the floor is under- or over-staffed."""
    with snapshot(view) as con:
        hours = q.labour_by_hour(con, view.flt)
    st.subheader("Sales per labour hour")
    if hours.height == 0:
        st.write("No staff member was seen in this date range (staff are known by enrolment or Frigate sub_label).")
        return
    labour, sales = float(hours["labour_hours"].sum()), float(hours["sales"].sum())
    cols = st.columns(3)
    cols[0].metric("Labour hours", number(labour), help="Hours staff were seen on the floor.")
    cols[1].metric("Sales per labour hour", money(sales / labour))
    cols[2].metric("Visitors per labour hour", number(float(hours["store_visitors"].sum()) / labour))
    st.altair_chart(
        alt.Chart(hours).mark_bar().encode(
            x=alt.X("hour:O", title="hour"), y=alt.Y("sales_per_labour_hour:Q", title="sales per labour hour"),
            tooltip=["hour:O", alt.Tooltip("labour_hours:Q", format=".2f"), alt.Tooltip("sales:Q", format=".2f"),
                     alt.Tooltip("sales_per_labour_hour:Q", format=".2f"), "store_visitors:Q"],
        ).properties(height=220),
        width="stretch",
    )


def _correlation_chart(fits: pl.DataFrame) -> alt.LayerChart:
    """Each zone's r as a point, its 95 % interval as a bar through it, on the full -1..1 scale."""
    scale = alt.Scale(domain=[-1, 1])
    base = alt.Chart(fits).encode(y=alt.Y("zone:N", title=None))
    tooltip = ["zone:N", "n:Q", alt.Tooltip("correlation:Q", format=".2f", title="r"),
               alt.Tooltip("ci_low:Q", format=".2f", title="95 % low"),
               alt.Tooltip("ci_high:Q", format=".2f", title="95 % high"), "status:N"]
    interval = base.mark_rule(strokeWidth=3, color="#4c78a8").encode(
        x=alt.X("ci_low:Q", scale=scale, title="correlation of dwell with sales (r, 95 % interval)"),
        x2="ci_high:Q", tooltip=tooltip)
    point = base.mark_point(filled=True, size=80, color="#e45756").encode(x=alt.X("correlation:Q", scale=scale),
                                                                          tooltip=tooltip)
    zero = alt.Chart(pl.DataFrame({"x": [0.0]})).mark_rule(strokeDash=[4, 4], color="#888").encode(x="x:Q")
    return (zero + interval + point).properties(height=max(120, 32 * fits.height))


def zone_sales(view: View) -> None:
    """Per zone: customer visitors and dwell beside the zone's sales, and whether dwell goes with sales."""
    st.title("Zone sales")
    st.caption(view.title_suffix)
    with snapshot(view) as con:
        if _nothing_built(con, ("fct_zone_hour", "zone_dwell_sales_correlation"), view.flt.shop_id, NO_BEHAVIOUR):
            return
        zones_ = q.zone_hour_totals(con, view.flt)
        grain = st.segmented_control("Observations", ["hour", "day"], default="hour", key="correlation_grain",
                                     format_func=lambda g: f"zone-{g}s") or "hour"
        fits = q.dwell_sales_correlation(con, view.flt.shop_id, grain)

    st.subheader("Visitors and sales per zone")
    if zones_.height == 0:
        st.write("No zone visitors or zone sales in this date range.")
    else:
        _table(zones_.with_columns(pl.col("mean_dwell_s").round(1), pl.col("total_dwell_s").round(0)),
               sales=st.column_config.NumberColumn(format="%.2f"),
               sales_per_visitor=st.column_config.NumberColumn("sales per visitor", format="%.2f"))

    st.subheader("Does dwell go with sales?")
    st.caption("Pearson r of a zone's total customer dwell with its categories' sales over every observed "
               f"zone-{grain} (all days, not the date range), with its 95 % confidence interval (Fisher z). "
               "Association, not cause: busy hours raise both.")
    if fits.height == 0:
        st.write("No zone has been observed yet.")
        return
    with_interval = fits.filter(pl.col("ci_low").is_not_null())
    if with_interval.height:
        st.altair_chart(_correlation_chart(with_interval), width="stretch")
    shown = fits.select(
        "zone", "n", pl.col("correlation").round(3).alias("r"),
        pl.when(pl.col("ci_low").is_not_null())
        .then(pl.format("[{}, {}]", pl.col("ci_low").round(3), pl.col("ci_high").round(3)))
        .alias("95 % CI"),
        pl.col("slope_sales_per_dwell_minute").round(3).alias("sales per dwell minute"),
        pl.col("mean_total_dwell_s").round(1).alias("mean dwell (s)"), pl.col("mean_sales").round(2).alias("mean sales"),
        "status", "reason", "first_date", "last_date")
    _table(shown)


def experiments(view: View) -> None:
    """Each experiment's effect on the shop's zone sales (95 % CI, randomisation p-value, MDE) and its
    switchback calendar."""
    st.title("Experiments")
    st.caption(f"{view.title_suffix.split(' · ')[0]} · every experiment, whatever the date range")
    with snapshot(view) as con:
        if _nothing_built(con, ("experiment_results", "experiment_assignment"), view.flt.shop_id, NO_EXPERIMENTS):
            return
        results = q.experiment_results(con, view.flt.shop_id)
    if results.height == 0:
        st.info(NO_EXPERIMENTS)  # experiments of other shops only
        return
    _table(results.select(
        "experiment", "status", pl.col("effect").alias("lift"), "ci_low", "ci_high", "p_value", "mde",
        "n_zones", "n_days", "guardrail"),
        lift=st.column_config.NumberColumn(format="percent"),
        ci_low=st.column_config.NumberColumn("95 % CI low", format="percent"),
        ci_high=st.column_config.NumberColumn("95 % CI high", format="percent"),
        p_value=st.column_config.NumberColumn("p (RI)", format="%.3f"),
        mde=st.column_config.NumberColumn("MDE", format="percent"))
    name = st.selectbox("Experiment", results["experiment"].unique(maintain_order=True).to_list(), key="experiment")
    row = results.filter(pl.col("experiment") == name).row(0, named=True)
    st.subheader(name)
    if row["effect"] is None:
        st.warning(f"Not analysed: {row['status']}")
    else:
        cols = st.columns(4)
        cols[0].metric("Lift", percent(row["effect"], signed=True), help="Relative change of the treated zone-days' sales.")
        cols[1].metric("95 % CI", f"{percent(row['ci_low'], True)} to {percent(row['ci_high'], True)}",
                       help="Randomisation-inference interval of the lift.")
        cols[2].metric("p-value (RI)", number(row["p_value"], 3), help="Randomisation inference: chance of a lift "
                       "this large with no effect.")
        cols[3].metric("MDE", percent(row["mde"]), help="Smallest lift the design detects with 80 % power.")
        st.caption(f"{row['n_cells']} zone-days over {row['n_zones']} zones and {row['n_days']} days; "
                   f"cluster-robust CI {percent(row['cluster_ci_low'], True)} to {percent(row['cluster_ci_high'], True)}; "
                   f"store guard rail: {row['guardrail'] or '—'}.")
    with snapshot(view) as con:
        calendar = q.experiment_assignment(con, name)
    st.subheader("Assignment calendar")
    if calendar.height == 0:
        st.write("No stored assignment (run `watershop experiment assign`).")
        return
    calendar = calendar.with_columns(
        shown=pl.when(pl.col("washout")).then(pl.lit("washout")).otherwise(pl.col("arm")),
        day=pl.col("date").dt.strftime("%Y-%m-%d"))
    st.altair_chart(
        alt.Chart(calendar).mark_rect(stroke="white").encode(
            x=alt.X("day:O", title=None, axis=alt.Axis(labelAngle=-60, labelOverlap=True)),
            y=alt.Y("zone:N", title=None),
            color=alt.Color("shown:N", title=None, scale=alt.Scale(domain=["treatment", "control", "washout"],
                                                                   range=["#e45756", "#4c78a8", "#d0d0d0"])),
            tooltip=["day:O", "zone:N", "arm:N", "period:Q", "washout:N"],
        ).properties(height=max(120, 26 * calendar["zone"].n_unique())),
        width="stretch",
    )
    arms = calendar.filter(~pl.col("washout")).group_by("arm").len().sort("arm")
    st.caption(" · ".join(f"{arm}: {n} zone-days" for arm, n in arms.iter_rows()))


def _still_file(view: View, still: str | None) -> Path | None:
    """The still's file inside the lake, or None (not stored, gone, or pointing outside the lake)."""
    if not still:
        return None
    lake_root = view.config.lake_root.resolve()
    path = (lake_root / still).resolve()
    return path if path.is_relative_to(lake_root) and path.is_file() else None


def shelf_incidents(view: View) -> None:
    """Items fallen from shelves: per camera, zone and day, and each fall with its still when stored."""
    st.title("Shelf incidents")
    st.caption(view.title_suffix)
    tz = view.config.shop(view.flt.shop_id).timezone
    with snapshot(view) as con:
        if _nothing_built(con, ("falling_object_events", "shelf_incidents_daily"), view.flt.shop_id, NO_SHELF):
            return
        daily = q.shelf_incidents(con, view.flt)
        falls = q.falling_objects(con, view.flt)
    if falls.height == 0:
        st.write("No item fell from a shelf in this date range.")
        return
    cols = st.columns(3)
    cols[0].metric("Falls", count(falls.height))
    cols[1].metric("Fell out of the zone", count(int(daily["fell_out_of_zone"].sum())))
    cols[2].metric("Shelf zones with a fall", count(daily.select("camera", "zone").n_unique()))

    st.subheader("Per camera, zone and day")
    _table(_local(daily, tz, "first_release_utc", "last_release_utc").rename(
        {"first_release_utc": "first fall", "last_release_utc": "last fall"}).with_columns(
        pl.col("mean_drop_height_px").round(0), pl.col("mean_confidence").round(2)))

    st.subheader("Falls")
    left, right = st.columns(2)
    camera = left.selectbox("Camera", sorted(falls["camera"].unique()), index=None, placeholder="every camera",
                            key="shelf_camera")
    if camera:
        falls = falls.filter(pl.col("camera") == camera)
    zone = right.selectbox("Zone", sorted(falls["zone"].unique()), index=None, placeholder="every zone",
                           key="shelf_zone")
    if zone:
        falls = falls.filter(pl.col("zone") == zone)
    falls = _local(falls, tz, "release_utc", "landing_utc").rename({"release_utc": "fell at", "landing_utc": "landed at"})
    _table(falls.select("date", "fell at", "camera", "zone", "event_id", pl.col("fall_s").round(2),
                        pl.col("drop_height_px").round(0), pl.col("confidence").round(2), "landed",
                        pl.col("still").is_not_null().alias("still stored")))
    picked = st.selectbox("Fall", falls["event_id"].to_list(), index=None, placeholder="Pick a fall to see it",
                          key="fall",
                          format_func=lambda e: "{camera} · {zone} · {fell at:%Y-%m-%d %H:%M:%S}".format(
                              **falls.filter(pl.col("event_id") == e).row(0, named=True)))
    if picked is not None:
        event = falls.filter(pl.col("event_id") == picked).row(0, named=True)
        still = _still_file(view, event["still"])
        if still is not None:
            st.image(str(still), caption=f"{event['camera']} · {event['zone']} · {event['fell at']:%H:%M:%S} "
                                         f"(the shelf region at the landing)")
        else:
            st.caption("No still stored for this fall (`shelf.store_stills` is off, or the file is gone).")
        st.caption(f"Footage: `{event['source_path']}`")


# --- live alerts --------------------------------------------------------------------------------

ALERTS_REFRESH_SECONDS = 5
ALERTS_SHOWN = 200


@st.fragment(run_every=ALERTS_REFRESH_SECONDS)
def _latest_alerts(config: WatershopConfig, shop_id: str) -> None:
    """Re-read every few seconds on its own (the rest of the page does not rerun)."""
    alerts = q.recent_alerts_frame(config, ALERTS_SHOWN)
    alerts = alerts.filter(pl.col("shop") == shop_id)
    if alerts.height == 0:
        st.write("No alerts today.")
    else:
        cols = st.columns(3)
        cols[0].metric("Alerts today", count(alerts.select("time", "camera", "rule").n_unique()))
        cols[1].metric("Failed deliveries", count(alerts.filter(pl.col("status") == "failed").height))
        cols[2].metric("Latest", f"{alerts['time'].max().astimezone(config.shop(shop_id).tz):%H:%M:%S}")
        _table(_local(alerts, config.shop(shop_id).timezone, "time").drop("shop"))
    st.caption(f"Refreshed {datetime.now(config.shop(shop_id).tz):%H:%M:%S}, every {ALERTS_REFRESH_SECONDS} s.")


def live_alerts(view: View) -> None:
    """Today's alerts and their delivery, refreshed every few seconds (not the marts: the delivery log)."""
    st.title("Live alerts")
    shop = view.config.shop(view.flt.shop_id)
    st.caption(f"{shop.name or shop.id} · today, newest first (the date range does not apply)")
    _latest_alerts(view.config, shop.id)
