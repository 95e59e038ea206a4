"""The dashboard's pages. Each page reads one snapshot of the marts through `View.reader`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

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
    st.caption(f"{customer_id} · " + ("all time" if all_time else view.title_suffix))
    with snapshot(view) as con:
        summary = q.customer_summary(con, customer_id, view.flt.shop_id)
        visits = q.customer_visits(con, customer_id, flt) if con.has("visit_log") else None
        purchases = q.customer_purchases(con, customer_id, flt)
    if not summary:
        st.warning(f"Unknown customer {customer_id!r} at this shop.")
        return
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
        dwell = q.zone_dwell(con, flt)
        loitering = q.loitering(con, flt)
        footfall = q.footfall_by_hour(con, flt)

    st.subheader("Dwell per zone")
    if dwell.height == 0:
        st.write("No zone visits in this date range.")
    else:
        dwell = dwell.with_columns(label=pl.col("camera") + " · " + pl.col("zone"))
        st.altair_chart(
            alt.Chart(dwell).mark_bar().encode(
                x=alt.X("mean_dwell_s:Q", title="mean dwell (s)"),
                y=alt.Y("label:N", title=None, sort="-x"),
                color=alt.Color("kind:N", title="kind"),
                tooltip=["camera:N", "zone:N", "kind:N", alt.Tooltip("visits:Q"),
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
