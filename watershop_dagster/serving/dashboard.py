"""Watershop dashboard: the Streamlit entry script (`watershop dashboard` runs it).

Run directly with `streamlit run watershop_dagster/serving/dashboard.py -- --config PATH`.
The filters (shop, date range, customer) live in the sidebar and in the URL, e.g.
`/?shop=north&dates=2025-03-01&dates=2025-03-03`, so a view can be bookmarked or shared.
Every page render reads one snapshot of the served marts, read-only (see `serving.marts`).
Bound beyond loopback, each session must first sign in with the API key (see `dashboard_auth`).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta

import streamlit as st

from watershop_dagster.config import ConfigError, WatershopConfig, config_path, load_config
from watershop_dagster.serving import dashboard_pages as pages
from watershop_dagster.serving import queries as q
from watershop_dagster.serving.dashboard_auth import require_sign_in
from watershop_dagster.serving.marts import MartsReader, MartsUnavailable
from watershop_dagster.serving.settings import resolve_api_key

DEFAULT_DAYS = 7


def _config_file() -> str | None:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--config", default=None)
    args, _ = parser.parse_known_args(sys.argv[1:])
    return args.config


@st.cache_resource(show_spinner=False)
def _config(config_file: str) -> WatershopConfig:
    return load_config(config_file)


@st.cache_resource(show_spinner=False)
def _reader(marts_db: str) -> MartsReader:
    return MartsReader(marts_db)


def _default_range(reader: MartsReader) -> tuple[date, date]:
    try:
        with reader.connect() as con:
            bounds = q.date_bounds(con)
    except MartsUnavailable:
        bounds = None
    end = bounds[1] if bounds else date.today()
    start = max(end - timedelta(days=DEFAULT_DAYS - 1), bounds[0] if bounds else end - timedelta(days=DEFAULT_DAYS - 1))
    return start, end


def _has_zone_data(reader: MartsReader) -> bool:
    try:
        with reader.connect() as con:
            return q.has_zone_data(con)
    except MartsUnavailable:
        return False


def _supermarket_marts(reader: MartsReader) -> set[str]:
    """The supermarket marts holding rows: a page is offered once its marts have something to show."""
    try:
        with reader.connect() as con:
            return q.marts_with_rows(con, q.SUPERMARKET_MARTS)
    except MartsUnavailable:
        return set()


def main() -> None:
    st.set_page_config(page_title="Watershop", page_icon=":material/water_drop:", layout="wide")
    try:
        config = _config(str(config_path(_config_file())))  # --config, else $WATERSHOP_CONFIG, else default
    except ConfigError as exc:
        st.error(str(exc))
        st.stop()
        return  # st.stop() only raises inside a Streamlit runtime
    require_sign_in(resolve_api_key(config), st.get_option("server.address"))  # beyond loopback only
    reader = _reader(str(config.marts_db))
    default_start, default_end = _default_range(reader)

    with st.sidebar:
        st.markdown("### :material/water_drop: Watershop")
        shop_names = {s.id: (s.name or s.id) for s in config.shops}
        shop_id = st.selectbox("Shop", list(shop_names), format_func=lambda s: shop_names[s], key="shop",
                               bind="query-params", persist_state="session")
        picked = st.date_input("Dates", value=(default_start, default_end), key="dates", bind="query-params",
                               persist_state="session", format="YYYY-MM-DD")
    if isinstance(picked, (tuple, list)):
        start, end = (picked[0], picked[-1]) if picked else (default_start, default_end)
    else:
        start = end = picked or default_end

    view = pages.View(config=config, reader=reader, flt=q.Filter(shop_id, start, end))
    zone_pages = [  # only where cameras with zones have filled the zone marts
        st.Page(lambda: pages.zones(view), title="Zones", icon=":material/floor:", url_path="zones"),
    ] if _has_zone_data(reader) else []
    filled = _supermarket_marts(reader)
    supermarket_pages = [page for mart, page in (
        ("fct_store_day", st.Page(lambda: pages.receipts(view), title="Receipts", icon=":material/receipt:",
                                  url_path="receipts")),
        ("fct_store_day_behaviour", st.Page(lambda: pages.store_behaviour(view), title="Store conversion",
                                            icon=":material/conversion_path:", url_path="store-conversion")),
        ("fct_zone_hour", st.Page(lambda: pages.zone_sales(view), title="Zone sales", icon=":material/scatter_plot:",
                                  url_path="zone-sales")),
        ("experiment_results", st.Page(lambda: pages.experiments(view), title="Experiments",
                                       icon=":material/science:", url_path="experiments")),
        ("falling_object_events", st.Page(lambda: pages.shelf_incidents(view), title="Shelf incidents",
                                          icon=":material/shelves:", url_path="shelf-incidents")),
    ) if mart in filled]
    sections = {
        "Shop": [
            st.Page(lambda: pages.overview(view), title="Overview", icon=":material/dashboard:",
                    url_path="overview", default=True),
            st.Page(lambda: pages.payments(view), title="Unpaid & defaulters", icon=":material/receipt_long:",
                    url_path="unpaid"),
            st.Page(lambda: pages.top_customers(view), title="Top customers", icon=":material/leaderboard:",
                    url_path="top-customers"),
            st.Page(lambda: pages.customer(view), title="Customer history", icon=":material/person:",
                    url_path="customer"),
        ],
        "Supermarket": [*zone_pages, *supermarket_pages],
        "Alerts": [st.Page(lambda: pages.live_alerts(view), title="Live alerts", icon=":material/notifications:",
                           url_path="live-alerts")],
    }
    navigation = st.navigation({name: listed for name, listed in sections.items() if listed})
    with st.sidebar:
        st.caption(f"Marts: `{config.marts_db}` (read-only)")
    navigation.run()


if __name__ == "__main__":  # `streamlit run` executes the script as __main__; a spawned worker must not
    main()
