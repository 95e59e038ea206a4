"""The questions the dashboard, the API and the reports ask of the marts, in one place.

Every function takes a `MartsConnection` (one snapshot), binds its parameters, and reads marts only.
Functions that need visit marts raise `MartMissing` when the file has none (a POS-only workspace);
`overview` degrades instead, leaving the visit figures as None.

Date ranges are inclusive shop-local days. Customer ids: visit marts use the face-registry id; where a
sale is linked to a visit (`transaction_visit_links`) the sale counts for that registry customer, like
`total_spent` does, otherwise for the POS customer id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import polars as pl

from watershop_dagster.alerts.log import recent_alerts
from watershop_dagster.config import WatershopConfig
from watershop_dagster.serving.marts import MartsConnection
from watershop_dagster.vocabulary import Role


@dataclass(frozen=True)
class Filter:
    """shop (None = every shop) and inclusive date range (None = open)."""

    shop_id: str | None = None
    start: date | None = None
    end: date | None = None

    def where(self, date_column: str | None = "date", shop_column: str = "shop_id",
              extra: Sequence[str] = ()) -> tuple[str, list[Any]]:
        clauses, params = [], []
        if self.shop_id is not None:
            clauses.append(f"{shop_column} = ?")
            params.append(self.shop_id)
        if date_column and self.start is not None:
            clauses.append(f"{date_column} >= ?")
            params.append(self.start)
        if date_column and self.end is not None:
            clauses.append(f"{date_column} <= ?")
            params.append(self.end)
        clauses.extend(extra)
        return ("where " + " and ".join(clauses)) if clauses else "", params

    @property
    def days(self) -> int | None:
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).days + 1


# --- paging -------------------------------------------------------------------------------------

def paged(con: MartsConnection, sql: str, params: Sequence[Any], order_by: str, limit: int,
          offset: int) -> tuple[int, list[dict[str, Any]]]:
    """(total rows, one page of rows) of `sql`, from the same snapshot."""
    total = con.scalar(f"select count(*) from ({sql})", params)
    rows = con.rows(f"select * from ({sql}) order by {order_by} limit ? offset ?", [*params, limit, offset])
    return int(total), rows


# --- shops and dates ----------------------------------------------------------------------------

def shops_with_data(con: MartsConnection) -> list[str]:
    parts = [f"select distinct shop_id from {m}" for m in ("daily_revenue", "daily_visits") if con.has(m)]
    if not parts:
        return []
    return [r[0] for r in con.cursor.execute(" union ".join(parts) + " order by 1").fetchall()]


def date_bounds(con: MartsConnection, shop_id: str | None = None) -> tuple[date, date] | None:
    """First and last day with sales or visits."""
    flt = Filter(shop_id)
    parts, params = [], []
    for mart in ("daily_revenue", "daily_visits"):
        if con.has(mart):
            where, p = flt.where(None)
            parts.append(f"select min(date) lo, max(date) hi from {mart} {where}")
            params += p
    if not parts:
        return None
    lo, hi = con.one(f"select min(lo), max(hi) from ({' union all '.join(parts)})", params)
    return None if lo is None else (lo, hi)


# --- overview -----------------------------------------------------------------------------------

@dataclass
class Overview:
    # visits (None when the workspace has no visit marts)
    visits: int | None = None
    unique_customers: int | None = None
    new_customers: int | None = None
    returning_customers: int | None = None
    avg_duration_s: float | None = None
    visits_without_payment: int | None = None
    # sales
    transactions: int = 0
    revenue: float = 0.0
    paid_revenue: float = 0.0
    unpaid_revenue: float = 0.0
    cans: int = 0
    walk_in_transactions: int = 0
    days_with_sales: int = 0

    @property
    def has_visits(self) -> bool:
        return self.visits is not None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def overview(con: MartsConnection, flt: Filter) -> Overview:
    """Headline figures for a shop and date range.

    Over a range, unique customers are distinct visitors in the range, new ones were first seen in the
    range and returning ones (= unique - new) were first seen before it; for one day these equal
    `daily_visits`.
    """
    result = Overview()
    con.require("daily_revenue")
    where, params = flt.where()
    row = con.one(
        f"""select count(*), coalesce(sum(transactions), 0), coalesce(sum(revenue), 0)::double,
                   coalesce(sum(paid_revenue), 0)::double, coalesce(sum(unpaid_revenue), 0)::double,
                   coalesce(sum(cans), 0), coalesce(sum(walk_in_transactions), 0)
            from daily_revenue {where}""",
        params,
    )
    (result.days_with_sales, result.transactions, result.revenue, result.paid_revenue, result.unpaid_revenue,
     result.cans, result.walk_in_transactions) = row
    if con.has("daily_visits", "new_customers", "returning_customers"):
        visits, avg_duration = con.one(
            f"select coalesce(sum(visits), 0), sum(visits * avg_duration_s) / nullif(sum(visits), 0) "
            f"from daily_visits {where}",
            params,
        )
        unique, new = con.one(
            f"""select count(distinct customer_id), count(distinct customer_id) filter (where is_new)
                from (select customer_id, true as is_new from new_customers {where}
                      union all select customer_id, false from returning_customers {where})""",
            params + params,
        )
        result.visits, result.avg_duration_s = int(visits), avg_duration
        result.unique_customers, result.new_customers = int(unique), int(new)
        result.returning_customers = int(unique) - int(new)
        if con.has("visits_without_payment"):
            result.visits_without_payment = int(
                con.scalar(f"select count(*) from visits_without_payment {where}", params))
    return result


def daily_series(con: MartsConnection, flt: Filter) -> pl.DataFrame:
    """One row per day: sales (0 when none) and, when visit marts exist, visits."""
    con.require("daily_revenue")
    where, params = flt.where()
    sales = con.df(
        f"""select date, sum(transactions)::bigint as transactions, sum(revenue)::double as revenue,
                   sum(paid_revenue)::double as paid_revenue, sum(unpaid_revenue)::double as unpaid_revenue,
                   sum(cans)::bigint as cans
            from daily_revenue {where} group by date""",
        params,
    )
    if not con.has("daily_visits"):
        return sales.sort("date")
    visits = con.df(
        f"""select date, sum(visits)::bigint as visits, sum(unique_customers)::bigint as unique_customers,
                   sum(new_customers)::bigint as new_customers, sum(returning_customers)::bigint as returning_customers,
                   sum(visits * avg_duration_s) / nullif(sum(visits), 0) as avg_duration_s
            from daily_visits {where} group by date""",
        params,
    )
    out = visits.join(sales, on="date", how="full", coalesce=True)
    fill = {c: 0 for c in out.columns if c not in ("date", "avg_duration_s")}
    return out.with_columns(pl.col(c).fill_null(v) for c, v in fill.items()).sort("date")


def hourly_traffic(con: MartsConnection, flt: Filter) -> pl.DataFrame:
    """Visits per hour of day in the range, with the shop's peak/idle flags and suggested staff."""
    con.require("traffic_per_hour")
    where, params = flt.where()
    hours = con.df(
        f"""select hour, sum(visits)::bigint as visits, count(distinct date) as days,
                   sum(visits) / greatest(count(distinct date), 1) as visits_per_day
            from traffic_per_hour {where} group by hour""",
        params,
    )
    if con.has("peak_hours"):
        where_shop, p = Filter(flt.shop_id).where(None)
        peaks = con.df(
            f"""select hour, bool_or(is_peak) as is_peak, bool_or(is_idle) and not bool_or(is_peak) as is_idle,
                       max(suggested_staff) as suggested_staff, avg(avg_visits_per_day) as avg_visits_per_day
                from peak_hours {where_shop} group by hour""",
            p,
        )
        hours = hours.join(peaks, on="hour", how="full", coalesce=True)
    else:
        hours = hours.with_columns(is_peak=pl.lit(None, pl.Boolean), is_idle=pl.lit(None, pl.Boolean),
                                   suggested_staff=pl.lit(None, pl.Int64), avg_visits_per_day=pl.lit(None, pl.Float64))
    return hours.with_columns(
        pl.col("visits").fill_null(0), pl.col("visits_per_day").fill_null(0.0), pl.col("days").fill_null(0)
    ).sort("hour")


def opening_times(con: MartsConnection, flt: Filter) -> pl.DataFrame:
    """Per day: first customer in (detected opening) and last customer out (detected closing)."""
    con.require("first_last_customer")
    where, params = flt.where()
    return con.df(
        f"""select shop_id, date, first_entry, last_exit, first_customer_id, last_customer_id
            from first_last_customer {where} order by date, shop_id""",
        params,
    )


def payment_modes(con: MartsConnection, flt: Filter) -> pl.DataFrame:
    con.require("payment_summary")
    where, params = flt.where()
    return con.df(
        f"""select payment_mode, sum(transactions)::bigint as transactions, sum(cans)::bigint as cans,
                   sum(amount)::double as amount, sum(paid_amount)::double as paid_amount,
                   sum(unpaid_amount)::double as unpaid_amount
            from payment_summary {where} group by payment_mode order by amount desc, payment_mode""",
        params,
    )


def cans_by_size(con: MartsConnection, flt: Filter) -> pl.DataFrame:
    con.require("cans_per_day")
    where, params = flt.where()
    return con.df(
        f"""select can_size, sum(cans)::bigint as cans, sum(transactions)::bigint as transactions,
                   sum(amount)::double as amount
            from cans_per_day {where} group by can_size order by can_size""",
        params,
    )


# --- customers ----------------------------------------------------------------------------------

def _sales_by_customer_sql(con: MartsConnection) -> str:
    """Transactions with `customer` = linked registry customer, else the POS customer id."""
    if con.has("transaction_visit_links"):
        return """(select t.*, coalesce(l.customer_id, t.customer_id) as customer
                   from transactions t
                   left join (select shop_id, date, transaction_id, any_value(customer_id) as customer_id
                              from transaction_visit_links where visit_id is not null group by all) l
                   using (shop_id, date, transaction_id))"""
    return "(select t.*, t.customer_id as customer from transactions t)"


def top_customers_by_visits(con: MartsConnection, flt: Filter, n: int = 10) -> pl.DataFrame:
    con.require("visit_log")
    where, params = flt.where(extra=[f"role <> '{Role.STAFF}'", "customer_id is not null"])
    return con.df(
        f"""select customer_id, count(*) as visits, count(distinct date) as days_visited,
                   avg(duration_s) as avg_duration_s, count(transaction_id) as visits_with_purchase,
                   coalesce(sum(amount), 0)::double as amount
            from visit_log {where} group by customer_id
            order by visits desc, amount desc, customer_id limit ?""",
        [*params, n],
    )


def spend_per_customer(con: MartsConnection, flt: Filter, n: int | None = 10) -> pl.DataFrame:
    """Known customers' purchases in the range, biggest spenders first (walk-ins excluded)."""
    con.require("transactions")
    where, params = flt.where(extra=["customer is not null"])
    limit = "limit ?" if n is not None else ""
    return con.df(
        f"""select customer as customer_id, count(*) as transactions, sum(number_of_cans)::bigint as cans,
                   sum(amount)::double as amount, sum(paid_amount)::double as paid_amount,
                   sum(unpaid_amount)::double as unpaid_amount, max(timestamp_local) as last_purchase_at
            from {_sales_by_customer_sql(con)} {where} group by customer
            order by amount desc, customer_id {limit}""",
        [*params, n] if n is not None else params,
    )


def customers_sql(con: MartsConnection, shop_id: str | None) -> tuple[str, list[Any]]:
    """Every known customer of a shop (or of all shops): lifetime visits (if any) and spend."""
    where, params = Filter(shop_id).where(None)
    spend = f"""select shop_id, customer_id, transactions, cans, amount::double as amount,
                       paid_amount::double as paid_amount, unpaid_amount::double as unpaid_amount,
                       first_purchase_at, last_purchase_at
                from total_spent {where}"""
    if con.has("customer_visit_counts"):
        visits_where, _ = Filter(shop_id).where(None, extra=["customer_id is not null"])
        visits = f"""select shop_id, customer_id, visits, first_visit, last_visit, avg_duration_s
                     from customer_visit_counts {visits_where}"""
        sql = f"""select shop_id, customer_id, coalesce(v.visits, 0) as visits, v.first_visit, v.last_visit,
                         v.avg_duration_s, coalesce(s.transactions, 0) as transactions, coalesce(s.cans, 0) as cans,
                         coalesce(s.amount, 0) as amount, coalesce(s.paid_amount, 0) as paid_amount,
                         coalesce(s.unpaid_amount, 0) as unpaid_amount, s.first_purchase_at, s.last_purchase_at
                  from ({visits}) v full outer join ({spend}) s using (shop_id, customer_id)"""
        return sql, params + params
    sql = f"""select shop_id, customer_id, null::bigint as visits, null::timestamp as first_visit,
                     null::timestamp as last_visit, null::double as avg_duration_s, transactions, cans, amount,
                     paid_amount, unpaid_amount, first_purchase_at, last_purchase_at
              from ({spend})"""
    return sql, params


def customer_ids(con: MartsConnection, shop_id: str | None) -> list[str]:
    sql, params = customers_sql(con, shop_id)
    return [r[0] for r in con.cursor.execute(
        f"select distinct customer_id from ({sql}) order by customer_id", params).fetchall()]


def surviving_customer_id(con: MartsConnection, customer_id: str, shop_id: str | None = None) -> str:
    """The id a merged customer id goes by now (the customer_merges mart, chains followed); the id
    itself when it was never merged, or when it was merged into different ids at different shops
    and no shop says which."""
    if not con.has("customer_merges"):
        return customer_id
    where, params = Filter(shop_id).where(date_column=None, extra=["customer_id = ?"])
    survivors = con.rows(f"select distinct surviving_id from customer_merges {where}", [*params, customer_id])
    return survivors[0]["surviving_id"] if len(survivors) == 1 else customer_id


def merged_customer_ids(con: MartsConnection, customer_id: str, shop_id: str | None = None) -> list[str]:
    """The ids merged into this customer (customer_merges): earlier ids of the same person."""
    if not con.has("customer_merges"):
        return []
    where, params = Filter(shop_id).where(date_column=None, extra=["surviving_id = ?"])
    return [r["customer_id"] for r in con.rows(
        f"select distinct customer_id from customer_merges {where} order by customer_id", [*params, customer_id])]


def customer_summary(con: MartsConnection, customer_id: str, shop_id: str | None = None) -> list[dict[str, Any]]:
    """The customer's lifetime figures per shop; empty when the customer is unknown."""
    sql, params = customers_sql(con, shop_id)
    rows = con.rows(f"select * from ({sql}) where customer_id = ? order by shop_id", [*params, customer_id])
    if con.has("repeat_defaulters"):
        owed = {r["shop_id"]: r for r in con.rows(
            "select shop_id, unpaid_count, amount_owed::double as amount_owed "
            "from repeat_defaulters where customer_id = ?",
            [customer_id])}
        for row in rows:
            d = owed.get(row["shop_id"])
            row["repeat_defaulter"] = d is not None
            row["unpaid_count"] = d["unpaid_count"] if d else None
    return rows


def customer_visits_sql(customer_id: str, flt: Filter) -> tuple[str, list[Any]]:
    where, params = flt.where(extra=["customer_id = ?"])
    return (f"""select visit_id, shop_id, date, customer_id, role, entry_time, exit_time, duration_s, cameras,
                       n_faces, confidence, transaction_id, amount::double as amount
                from visit_log {where}""", [*params, customer_id])


def customer_visits(con: MartsConnection, customer_id: str, flt: Filter) -> pl.DataFrame:
    con.require("visit_log")
    sql, params = customer_visits_sql(customer_id, flt)
    return con.df(f"{sql} order by entry_time", params)


def customer_purchases(con: MartsConnection, customer_id: str, flt: Filter) -> pl.DataFrame:
    con.require("transactions")
    where, params = flt.where(extra=["(customer = ? or customer_id = ?)"])
    return con.df(
        f"""select shop_id, date, transaction_id, timestamp_local, customer_id as pos_customer_id, payment_mode,
                   can_size, number_of_cans, amount::double as amount, payment_status
            from {_sales_by_customer_sql(con)} {where} order by timestamp_local""",
        [*params, customer_id, customer_id],
    )


# --- payments and defaulters --------------------------------------------------------------------

def payments_sql(flt: Filter, status: str | None = None, mode: str | None = None,
                 customer_id: str | None = None) -> tuple[str, list[Any]]:
    extra, extra_params = [], []
    if status:
        extra.append("payment_status = ?")
        extra_params.append(status)
    if mode:
        extra.append("payment_mode = ?")
        extra_params.append(mode)
    if customer_id:
        extra.append("customer_id = ?")
        extra_params.append(customer_id)
    where, params = flt.where(extra=extra)
    return (f"""select shop_id, date, transaction_id, timestamp_local, customer_id, is_walk_in, payment_mode,
                       can_size, number_of_cans, amount::double as amount, payment_status
                from transactions {where}""", params + extra_params)


def unpaid(con: MartsConnection, flt: Filter) -> pl.DataFrame:
    con.require("unpaid")
    where, params = flt.where()
    return con.df(
        f"""select shop_id, date, transaction_id, timestamp_local, customer_id, payment_mode, can_size,
                   number_of_cans, amount::double as amount
            from unpaid {where} order by timestamp_local desc""",
        params,
    )


def defaulters_sql(shop_id: str | None) -> tuple[str, list[Any]]:
    where, params = Filter(shop_id).where(None)
    return (f"""select shop_id, customer_id, unpaid_count, unpaid_cans, amount_owed::double as amount_owed,
                       first_unpaid_at, last_unpaid_at
                from repeat_defaulters {where}""", params)


def defaulters(con: MartsConnection, shop_id: str | None) -> pl.DataFrame:
    con.require("repeat_defaulters")
    sql, params = defaulters_sql(shop_id)
    return con.df(f"{sql} order by amount_owed desc, customer_id", params)


def daily_visits_sql(flt: Filter) -> tuple[str, list[Any]]:
    where, params = flt.where()
    return (f"""select shop_id, date, visits, unique_customers, new_customers, returning_customers, avg_duration_s
                from daily_visits {where}""", params)


def daily_revenue_sql(flt: Filter) -> tuple[str, list[Any]]:
    where, params = flt.where()
    return (f"""select shop_id, date, transactions, cans, revenue::double as revenue,
                       paid_revenue::double as paid_revenue, unpaid_revenue::double as unpaid_revenue,
                       customers, walk_in_transactions
                from daily_revenue {where}""", params)


# --- zones (supermarket behaviour) --------------------------------------------------------------
# Customer figures: the zone marts already drop staff (zone_visits keeps them, flagged is_customer).

def has_zone_data(con: MartsConnection, shop_id: str | None = None) -> bool:
    """Whether the zone marts hold any customer zone visit (of the shop): they exist, empty, everywhere."""
    if not con.has("zone_dwell_daily"):
        return False
    where, params = Filter(shop_id).where(None)
    return con.scalar(f"select count(*) > 0 from (select 1 from zone_dwell_daily {where} limit 1)", params)


def zone_dwell_sql(flt: Filter, zone: str | None = None) -> tuple[str, list[Any]]:
    """zone_dwell_daily rows: one per shop, day, camera and zone."""
    where, params = flt.where(extra=["zone = ?"] if zone else [])
    return (f"""select shop_id, date, camera, zone, kind, category, visits, people, mean_dwell_s, median_dwell_s,
                       p90_dwell_s, max_dwell_s, loitering_events
                from zone_dwell_daily {where}""", [*params, *([zone] if zone else [])])


def _source_clause(sources: Sequence[str] | None) -> tuple[list[str], list[Any]]:
    """`source in (...)` for the chosen sources (frigate, watershop); None = every source."""
    if sources is None:
        return [], []
    return [f"source in ({', '.join('?' * len(sources)) or 'null'})"], list(sources)


def zone_sources(con: MartsConnection, flt: Filter) -> list[str]:
    """Where the range's zone visits came from: `watershop` (its people tracker), `frigate`, or both."""
    con.require("zone_visits")
    where, params = flt.where()
    return [r[0] for r in con.cursor.execute(
        f"select distinct source from zone_visits {where} order by source", params).fetchall()]


def zone_dwell(con: MartsConnection, flt: Filter, sources: Sequence[str] | None = None) -> pl.DataFrame:
    """Customer dwell per zone (and source) over the range, recomputed from the visits (quantiles do not
    add up)."""
    con.require("zone_visits")
    extra, extra_params = _source_clause(sources)
    where, params = flt.where(extra=["is_customer", *extra])
    return con.df(
        f"""select camera, zone, source, any_value(kind) as kind, count(*) as visits,
                   count(distinct date::varchar || store_visit_id) as people, avg(dwell_s) as mean_dwell_s,
                   quantile_cont(dwell_s, 0.5) as median_dwell_s, quantile_cont(dwell_s, 0.9) as p90_dwell_s,
                   count(*) filter (where is_loitering) as loitering_events
            from zone_visits {where} group by camera, zone, source
            order by mean_dwell_s desc, camera, zone, source""",
        [*params, *extra_params],
    )


def loitering_sql(flt: Filter, sources: Sequence[str] | None = None) -> tuple[str, list[Any]]:
    extra, extra_params = _source_clause(sources)
    where, params = flt.where(extra=extra)
    return (f"""select shop_id, date, camera, zone, kind, track_id, identity, role, start_time, alert_time,
                       dwell_s, loitering_time_s, source
                from loitering_events {where}""", [*params, *extra_params])


def loitering(con: MartsConnection, flt: Filter, sources: Sequence[str] | None = None) -> pl.DataFrame:
    con.require("loitering_events")
    sql, params = loitering_sql(flt, sources)
    return con.df(f"{sql} order by start_time desc, camera, zone, track_id", params)


def footfall_hourly_sql(flt: Filter) -> tuple[str, list[Any]]:
    where, params = flt.where()
    return f"select shop_id, date, hour, entries, exits, occupancy from footfall_hourly {where}", params


def zone_hour_sql(flt: Filter, zone: str | None = None) -> tuple[str, list[Any]]:
    """fct_zone_hour rows: one per shop, day, hour and zone, visitors and dwell beside the zone's sales."""
    where, params = flt.where(extra=["zone = ?"] if zone else [])
    return (f"""select shop_id, date, hour, zone, visits, visitors, total_dwell_s, mean_dwell_s, receipts, lines,
                       units, sales::double as sales, sales_per_visitor::double as sales_per_visitor
                from fct_zone_hour {where}""", [*params, *([zone] if zone else [])])


def store_day_behaviour_sql(flt: Filter) -> tuple[str, list[Any]]:
    """fct_store_day_behaviour rows: one per shop-day, footfall beside receipts and their ratios."""
    where, params = flt.where()
    return (f"""select shop_id, date, store_visitors, zone_visitors, receipts, units, sales::double as sales,
                       average_transaction_value::double as average_transaction_value, units_per_transaction,
                       conversion_rate::double as conversion_rate, shopper_yield::double as shopper_yield,
                       zone_entry_rate::double as zone_entry_rate
                from fct_store_day_behaviour {where}""", params)


def sales_per_labour_hour_sql(flt: Filter) -> tuple[str, list[Any]]:
    """sales_per_labour_hour rows: one per shop, day and hour, staff labour beside entries and sales."""
    where, params = flt.where()
    return (f"""select shop_id, date, hour, staff_on_floor, labour_hours, store_visitors, receipts,
                       sales::double as sales, sales_per_labour_hour, receipts_per_labour_hour, visitors_per_staff,
                       conversion_rate
                from sales_per_labour_hour {where}""", params)


def dwell_sales_correlation_sql(shop_id: str | None, grain: str | None = None) -> tuple[str, list[Any]]:
    """zone_dwell_sales_correlation rows: one per shop, zone and grain (hour or day), over all days."""
    where, params = Filter(shop_id).where(None, extra=["grain = ?"] if grain else [])
    return (f"""select shop_id, zone, grain, category, sold_categories, first_date, last_date, n, mean_total_dwell_s,
                       mean_sales, correlation, ci_low, ci_high, slope_sales_per_dwell_minute, status, reason
                from zone_dwell_sales_correlation {where}""", [*params, *([grain] if grain else [])])


def footfall_by_hour(con: MartsConnection, flt: Filter) -> pl.DataFrame:
    """Entries and exits per hour of day over the range, with the mean end-of-hour occupancy."""
    con.require("footfall_hourly")
    where, params = flt.where()
    return con.df(
        f"""select hour, sum(entries)::bigint as entries, sum(exits)::bigint as exits,
                   avg(occupancy) as mean_occupancy
            from footfall_hourly {where} group by hour order by hour""",
        params,
    )


def format_time(value: datetime | time | None) -> str:
    return "—" if value is None else value.strftime("%H:%M")


# --- supermarket sales, behaviour, experiments and shelves ------------------------------------------
# The receipt, experiment and shelf marts exist (empty) in every workspace; the behaviour marts
# (fct_zone_hour, fct_store_day_behaviour, zone_dwell_sales_correlation) only once cameras with zones
# have filled the lake. Ratios over a range are recomputed from the summed parts, never averaged.

SUPERMARKET_MARTS = ("fct_store_day", "zone_sales_hourly", "fct_store_day_behaviour", "fct_zone_hour",
                     "experiment_results", "falling_object_events")


def marts_with_rows(con: MartsConnection, marts: Sequence[str], shop_id: str | None = None) -> set[str]:
    """Those of `marts` the file holds with at least one row (of the shop; an experiment counts for any shop)."""
    found = set()
    for mart in marts:
        if not con.has(mart):
            continue
        where, params = Filter(None if mart.startswith("experiment_") else shop_id).where(None)
        if con.scalar(f"select count(*) > 0 from (select 1 from {mart} {where} limit 1)", params):
            found.add(mart)
    return found


def store_days(con: MartsConnection, flt: Filter) -> pl.DataFrame:
    """fct_store_day rows of the range: receipts, units, net sales, ATV and UPT per shop-day."""
    con.require("fct_store_day")
    where, params = flt.where()
    return con.df(
        f"""select date, receipts, lines, units::double as units, sales::double as sales,
                   average_transaction_value::double as average_transaction_value,
                   units_per_transaction::double as units_per_transaction, loyalty_customers
            from fct_store_day {where} order by date""",
        params,
    )


def receipts(con: MartsConnection, flt: Filter, limit: int = 500) -> tuple[int, pl.DataFrame]:
    """(receipts in the range, the newest `limit` of them), one row per receipt from receipt_lines."""
    con.require("receipt_lines")
    where, params = flt.where()
    sql = f"""select date, receipt_id, min(sold_at) as sold_at, any_value(till) as till,
                     any_value(customer_id) as customer_id, any_value(payment_mode) as payment_mode,
                     count(*) as lines, sum(quantity)::double as units, sum(line_total)::double as total
              from receipt_lines {where} group by date, receipt_id"""
    total = con.scalar(f"select count(*) from ({sql})", params)
    return int(total), con.df(f"{sql} order by sold_at desc, receipt_id limit ?", [*params, limit])


def receipt_lines(con: MartsConnection, shop_id: str, day: date, receipt_id: str) -> pl.DataFrame:
    con.require("receipt_lines")
    return con.df(
        """select source_line, product_id, product_name, category, zone, quantity::double as quantity,
                  unit_price::double as unit_price, discount::double as discount, line_total::double as line_total
           from receipt_lines where shop_id = ? and date = ? and receipt_id = ? order by source_line""",
        [shop_id, day, receipt_id],
    )


def sales_by_category(con: MartsConnection, flt: Filter) -> pl.DataFrame:
    con.require("receipt_lines")
    where, params = flt.where()
    return con.df(
        f"""select category, any_value(zone) as zone, count(distinct date::varchar || receipt_id) as receipts,
                   sum(quantity)::double as units, sum(line_total)::double as sales
            from receipt_lines {where} group by category order by sales desc, category""",
        params,
    )


def zone_sales_by_hour(con: MartsConnection, flt: Filter) -> pl.DataFrame:
    """Sales of each zone's categories per hour of day over the range (zone_sales_hourly)."""
    con.require("zone_sales_hourly")
    where, params = flt.where()
    return con.df(
        f"""select zone, hour, sum(receipts)::bigint as receipts, sum(units)::double as units,
                   sum(sales)::double as sales
            from zone_sales_hourly {where} group by zone, hour order by zone, hour""",
        params,
    )


@dataclass
class StoreBehaviour:
    """The range's footfall beside its receipts. Conversion, shopper yield and zone entry rate count
    only days with entries (a day whose door camera was off would inflate them)."""

    days: int = 0
    store_visitors: int = 0
    zone_visitors: int = 0
    receipts: int = 0
    units: float = 0.0
    sales: float = 0.0
    average_transaction_value: float | None = None
    units_per_transaction: float | None = None
    conversion_rate: float | None = None
    shopper_yield: float | None = None
    zone_entry_rate: float | None = None


def labour_by_hour(con: MartsConnection, flt: Filter) -> pl.DataFrame:
    """Sales per labour hour by hour of day over the range (sums first, then the ratio), from
    sales_per_labour_hour; empty when the mart is missing or no staff member was seen."""
    if not con.has("sales_per_labour_hour"):
        return pl.DataFrame()
    where, params = flt.where()
    return con.df(
        f"""select hour, sum(labour_hours) as labour_hours, sum(sales)::double as sales,
                   sum(receipts) as receipts, sum(store_visitors) as store_visitors,
                   sum(sales)::double / nullif(sum(labour_hours), 0) as sales_per_labour_hour,
                   sum(store_visitors) / nullif(sum(labour_hours), 0) as visitors_per_labour_hour
            from sales_per_labour_hour {where} group by hour having sum(labour_hours) > 0 order by hour""",
        params,
    )


def store_behaviour(con: MartsConnection, flt: Filter) -> tuple[StoreBehaviour, pl.DataFrame]:
    """(range totals and ratios, the fct_store_day_behaviour rows of the range)."""
    con.require("fct_store_day_behaviour")
    where, params = flt.where()
    days = con.df(
        f"""select date, store_visitors, zone_visitors, receipts, units::double as units, sales::double as sales,
                   average_transaction_value::double as average_transaction_value,
                   units_per_transaction::double as units_per_transaction,
                   conversion_rate::double as conversion_rate, shopper_yield::double as shopper_yield,
                   zone_entry_rate::double as zone_entry_rate
            from fct_store_day_behaviour {where} order by date""",
        params,
    )
    totals = StoreBehaviour(days=days.height)
    if days.height == 0:
        return totals, days
    seen = days.filter(pl.col("store_visitors") > 0)
    totals.store_visitors = int(days["store_visitors"].sum())
    totals.zone_visitors = int(days["zone_visitors"].sum())
    totals.receipts = int(days["receipts"].sum())
    totals.units = float(days["units"].fill_null(0).sum())
    totals.sales = float(days["sales"].sum())
    if totals.receipts:
        totals.average_transaction_value = totals.sales / totals.receipts
        totals.units_per_transaction = totals.units / totals.receipts
    if totals.store_visitors:
        totals.conversion_rate = float(seen["receipts"].sum()) / totals.store_visitors
        totals.shopper_yield = float(seen["sales"].sum()) / totals.store_visitors
        totals.zone_entry_rate = float(seen["zone_visitors"].sum()) / totals.store_visitors
    return totals, days


def zone_hour_totals(con: MartsConnection, flt: Filter) -> pl.DataFrame:
    """Per zone over the range (fct_zone_hour): customer visits, visitors, dwell and the zone's sales."""
    con.require("fct_zone_hour")
    where, params = flt.where()
    return con.df(
        f"""select zone, sum(visits)::bigint as visits, sum(visitors)::bigint as visitors,
                   sum(total_dwell_s)::double as total_dwell_s,
                   sum(total_dwell_s) / nullif(sum(visits), 0) as mean_dwell_s,
                   sum(receipts)::bigint as receipts, sum(units)::double as units, sum(sales)::double as sales,
                   sum(sales)::double / nullif(sum(visitors), 0) as sales_per_visitor
            from fct_zone_hour {where} group by zone order by sales desc, zone""",
        params,
    )


def dwell_sales_correlation(con: MartsConnection, shop_id: str | None, grain: str) -> pl.DataFrame:
    """zone_dwell_sales_correlation of the shop at one grain (hour or day): r with its 95 % interval."""
    con.require("zone_dwell_sales_correlation")
    sql, params = dwell_sales_correlation_sql(shop_id, grain)
    return con.df(f"{sql} order by zone", params)


def experiment_results(con: MartsConnection, shop_id: str | None) -> pl.DataFrame:
    """The experiments analysed on the shop's sales, and those no shop could be analysed for yet."""
    con.require("experiment_results")
    return con.df(
        """select experiment, shop_id, metric, status, effect, ci_low, ci_high, p_value, mde, n_cells, n_zones,
                  n_days, cluster_ci_low, cluster_ci_high, guardrail
           from experiment_results where shop_id = ? or shop_id is null or ? is null
           order by experiment, shop_id""",
        [shop_id, shop_id],
    )


def experiment_assignment(con: MartsConnection, experiment: str) -> pl.DataFrame:
    """The experiment's switchback schedule: which zone is treated on which day."""
    con.require("experiment_assignment")
    return con.df("""select zone, date, arm, period, washout from experiment_assignment
                     where experiment = ? order by date, zone""", [experiment])


def falling_objects(con: MartsConnection, flt: Filter) -> pl.DataFrame:
    """Every fall of the range, newest first, with its still (lake-relative) when one was stored."""
    con.require("falling_object_events")
    where, params = flt.where()
    return con.df(
        f"""select date, camera, zone, event_id, release_utc, landing_utc, fall_s, drop_height_px, blob_area_px,
                   confidence, landed, x_px, y_px, source_path, still
            from falling_object_events {where} order by release_utc desc, camera, zone, event_id""",
        params,
    )


def shelf_incidents(con: MartsConnection, flt: Filter) -> pl.DataFrame:
    """shelf_incidents_daily of the range: falls per camera, zone and day."""
    con.require("shelf_incidents_daily")
    where, params = flt.where()
    return con.df(
        f"""select date, camera, zone, falls, fell_out_of_zone, max_drop_height_px, mean_drop_height_px,
                   mean_confidence, first_release_utc, last_release_utc
            from shelf_incidents_daily {where} order by date desc, camera, zone""",
        params,
    )


# --- live alerts ------------------------------------------------------------------------------------


def recent_alerts_frame(config: WatershopConfig, limit: int) -> pl.DataFrame:
    """Today's alerts of each shop (its own local day), newest first, one row per delivery channel,
    from the alert layer's delivery log (every producer: Frigate live, recordings, shelves)."""
    alerts = recent_alerts(config, limit)
    today = [(pl.col("shop") == shop.id)
             & (pl.col("time") >= datetime.combine(datetime.now(shop.tz).date(), time(0), tzinfo=shop.tz).astimezone(UTC))
             for shop in config.shops]
    return alerts.filter(pl.any_horizontal(today)) if today else alerts