"""Read-only HTTP API over the served marts (FastAPI).

`watershop api [--port N]` serves it. Every `/v1` endpoint requires the `X-API-Key` header (an apiKey
security scheme in the OpenAPI schema at `/openapi.json`, docs at `/docs`); `/health` does not.
Lists are paginated with `limit`/`offset` and return `total`. Dates are shop-local `YYYY-MM-DD` days
(inclusive ranges). A visit endpoint on a workspace without visit marts answers 404 with a message
saying so; a workspace whose marts were never built answers 503.
"""

# No `from __future__ import annotations`: FastAPI must see the real (locally defined) annotations.
import hmac
from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Security, status
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field

from watershop_dagster.config import WatershopConfig
from watershop_dagster.serving import queries as q
from watershop_dagster.serving.marts import VISIT_MARTS, MartMissing, MartsConnection, MartsReader, MartsUnavailable
from watershop_dagster.serving.settings import API_KEY_ENV_VAR, API_KEY_HEADER, resolve_api_key
from watershop_dagster.vocabulary import PAYMENT_MODES, PAYMENT_STATUSES

T = TypeVar("T")
MAX_LIMIT = 1000
# Bounds of integer query parameters: far beyond any mart, and inside DuckDB's BIGINT (a larger offset
# used to fail in DuckDB: a 500 instead of a 422).
MAX_OFFSET = 1_000_000_000
MAX_COUNT = 1_000_000_000


class MissingApiKey(RuntimeError):
    pass


# --- response models ----------------------------------------------------------------------------

class Page(BaseModel, Generic[T]):
    total: int = Field(description="Rows matching the filters, over all pages.")
    limit: int
    offset: int
    items: list[T]


class Shop(BaseModel):
    shop_id: str
    name: str | None
    timezone: str
    first_day: date | None = Field(description="First day with sales or visits in the marts.")
    last_day: date | None
    has_visit_marts: bool


class DailyVisits(BaseModel):
    shop_id: str
    date: date
    visits: int
    unique_customers: int
    new_customers: int
    returning_customers: int
    avg_duration_s: float | None


class DailyRevenue(BaseModel):
    shop_id: str
    date: date
    transactions: int
    cans: int
    revenue: float
    paid_revenue: float
    unpaid_revenue: float
    customers: int
    walk_in_transactions: int


class Customer(BaseModel):
    shop_id: str
    customer_id: str
    visits: int | None = Field(description="Lifetime visits; null when the workspace has no visit marts.")
    first_visit: datetime | None
    last_visit: datetime | None
    avg_duration_s: float | None
    transactions: int
    cans: int
    amount: float
    paid_amount: float
    unpaid_amount: float
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None


class CustomerAtShop(Customer):
    repeat_defaulter: bool = False
    unpaid_count: int | None = None


class CustomerDetail(BaseModel):
    customer_id: str = Field(description="The customer's id; a merged id is answered with the id it merged into.")
    merged_ids: list[str] = Field(default=[], description="Earlier ids of this person, merged into it (customer_merges).")
    shops: list[CustomerAtShop]


class Visit(BaseModel):
    visit_id: str
    shop_id: str
    date: date
    customer_id: str | None
    role: str | None
    entry_time: datetime
    exit_time: datetime | None
    duration_s: float | None
    cameras: list[str] | str | None
    n_faces: int | None
    confidence: float | None
    transaction_id: str | None
    amount: float | None


class Payment(BaseModel):
    shop_id: str
    date: date
    transaction_id: str
    timestamp_local: datetime
    customer_id: str | None
    is_walk_in: bool
    payment_mode: str
    can_size: str
    number_of_cans: int
    amount: float
    payment_status: str


class PaymentModeTotal(BaseModel):
    payment_mode: str
    transactions: int
    cans: int
    amount: float
    paid_amount: float
    unpaid_amount: float


class Defaulter(BaseModel):
    shop_id: str
    customer_id: str
    unpaid_count: int
    unpaid_cans: int
    amount_owed: float
    first_unpaid_at: datetime | None
    last_unpaid_at: datetime | None


class ZoneDwell(BaseModel):
    shop_id: str
    date: date
    camera: str
    zone: str
    kind: str | None
    category: str | None
    visits: int = Field(description="Customer visits of the zone that day (staff excluded).")
    people: int = Field(description="Distinct store visits among them.")
    mean_dwell_s: float
    median_dwell_s: float
    p90_dwell_s: float
    max_dwell_s: float
    loitering_events: int


class LoiteringEvent(BaseModel):
    shop_id: str
    date: date
    camera: str
    zone: str
    kind: str | None
    track_id: str
    identity: str | None = Field(description="Registry customer id or known person (vip/..., blocked/...).")
    role: str
    start_time: datetime = Field(description="Entry into the zone, shop-local.")
    alert_time: datetime = Field(description="When presence reached the zone's loitering_time, shop-local.")
    dwell_s: float
    loitering_time_s: float


class FootfallHour(BaseModel):
    shop_id: str
    date: date
    hour: int
    entries: int
    exits: int
    occupancy: int = Field(description="People inside at the end of the hour (running entries - exits).")


class ZoneHour(BaseModel):
    shop_id: str
    date: date
    hour: int
    zone: str
    visits: int = Field(description="Customer visits of the zone that started in the hour (staff excluded).")
    visitors: int = Field(description="Distinct store visits among them.")
    total_dwell_s: float
    mean_dwell_s: float | None
    receipts: int = Field(description="Receipts with a line of the zone's categories in the hour.")
    lines: int
    units: float
    sales: float = Field(description="Net sales of the zone's categories in the hour.")
    sales_per_visitor: float | None


class StoreDayBehaviour(BaseModel):
    shop_id: str
    date: date
    store_visitors: int = Field(description="Customer entries at the entrances (footfall).")
    zone_visitors: int = Field(description="Customer store visits seen in a zone past the entrance.")
    receipts: int
    units: float
    sales: float
    average_transaction_value: float | None
    units_per_transaction: float | None
    conversion_rate: float | None = Field(description="receipts / store_visitors; null without entries.")
    shopper_yield: float | None = Field(description="sales / store_visitors; null without entries.")
    zone_entry_rate: float | None = Field(description="zone_visitors / store_visitors; null without entries.")


class LabourHour(BaseModel):
    shop_id: str
    date: date
    hour: int
    staff_on_floor: int = Field(description="Staff members on shift (observed on camera) during the hour.")
    labour_hours: float = Field(description="Staff hours on shift within the hour (1.0 = one person all hour).")
    store_visitors: int = Field(description="Customer entries at the entrances in the hour.")
    receipts: int
    sales: float
    sales_per_labour_hour: float | None = Field(description="sales / labour_hours; null without staff on shift.")
    receipts_per_labour_hour: float | None
    visitors_per_staff: float | None = Field(description="store_visitors / labour_hours; null without staff.")
    conversion_rate: float | None = Field(description="receipts / store_visitors; null without entries.")


class DwellSalesCorrelation(BaseModel):
    shop_id: str
    zone: str
    grain: Literal["hour", "day"] = Field(description="Observations are zone-hours or zone-days.")
    category: str | None
    sold_categories: str | None
    first_date: date
    last_date: date
    n: int
    mean_total_dwell_s: float
    mean_sales: float
    correlation: float | None = Field(description="Pearson r of total dwell vs sales.")
    ci_low: float | None = Field(description="95 % interval of r by Fisher's z (n >= 4).")
    ci_high: float | None
    slope_sales_per_dwell_minute: float | None
    status: str = Field(description="ok, too_few_observations, no_variation, no_interval or perfect_correlation.")
    reason: str | None


class ErrorBody(BaseModel):
    detail: str
    missing_marts: list[str] | None = None


# --- app ----------------------------------------------------------------------------------------

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="ApiKeyAuth",
    description=f"The workspace's API key (config `serving.api_key` or ${API_KEY_ENV_VAR}).",
    auto_error=False,
)

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or wrong API key"},
    404: {"model": ErrorBody, "description": "Unknown shop or customer, or the mart is not built in this workspace"},
    503: {"model": ErrorBody, "description": "The marts file has not been built yet"},
}


def _page(con: MartsConnection, sql: str, params: Sequence[Any], order_by: str, limit: int, offset: int) -> dict[str, Any]:
    """One `Page` of `sql`'s rows, the total counted from the same snapshot."""
    total, rows = q.paged(con, sql, params, order_by, limit, offset)
    return {"total": total, "limit": limit, "offset": offset, "items": rows}


def create_app(config: WatershopConfig, api_key: str | None = None) -> FastAPI:
    """The API for a workspace. The key comes from `api_key`, then $WATERSHOP_API_KEY, then the config."""
    key = resolve_api_key(config, api_key)
    if not key:
        raise MissingApiKey(
            f"no API key: set {API_KEY_ENV_VAR} (or serving.api_key in the workspace config) before serving the API"
        )
    reader = MartsReader(config.marts_db)
    shops = {shop.id: shop for shop in config.shops}

    def require_key(supplied: Annotated[str | None, Security(api_key_header)]) -> None:
        if not supplied or not hmac.compare_digest(supplied.encode(), key.encode()):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail=f"missing or wrong API key (send it in the {API_KEY_HEADER} header)",
                headers={"WWW-Authenticate": "ApiKey"},
            )

    def marts():
        with reader.connect() as con:
            yield con

    Marts = Annotated[MartsConnection, Depends(marts)]

    def shop_param(shop_id: Annotated[str | None, Query(description="Shop id; all shops when omitted.")] = None):
        if shop_id is not None and shop_id not in shops:
            raise HTTPException(404, detail=f"unknown shop {shop_id!r}; configured: {sorted(shops)}")
        return shop_id

    def date_filter(
        shop_id: Annotated[str | None, Depends(shop_param)],
        start: Annotated[date | None, Query(description="First day (YYYY-MM-DD), inclusive.")] = None,
        end: Annotated[date | None, Query(description="Last day (YYYY-MM-DD), inclusive.")] = None,
    ) -> q.Filter:
        if start is not None and end is not None and end < start:
            raise HTTPException(422, detail=f"end {end} is before start {start}")
        return q.Filter(shop_id, start, end)

    Shop_ = Annotated[str | None, Depends(shop_param)]
    Dates = Annotated[q.Filter, Depends(date_filter)]
    Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]
    MinVisits = Annotated[int | None, Query(ge=0, le=MAX_COUNT,
                                            description="Only customers with this many visits or more.")]
    Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description=f"Rows to skip (at most {MAX_OFFSET}).")]

    app = FastAPI(
        title="Watershop API",
        version="1.0",
        description=(__doc__ or "").strip(),
        openapi_tags=[{"name": "visits"}, {"name": "customers"}, {"name": "payments"}, {"name": "zones"},
                      {"name": "meta"}],
    )
    app.state.reader = reader

    @app.exception_handler(MartMissing)
    def _missing(_request: Request, exc: MartMissing) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc), "missing_marts": list(exc.marts)})

    @app.exception_handler(MartsUnavailable)
    def _unavailable(_request: Request, exc: MartsUnavailable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.get("/health", tags=["meta"], summary="Liveness and whether the marts exist (no key needed)")
    def health() -> dict[str, Any]:
        try:
            with reader.connect() as con:
                return {"status": "ok", "marts": True, "visit_marts": con.has(*VISIT_MARTS[:2])}
        except MartsUnavailable:
            return {"status": "ok", "marts": False, "visit_marts": False}

    v1 = dict(dependencies=[Depends(require_key)], responses=ERRORS)

    @app.get("/v1/shops", tags=["meta"], response_model=list[Shop], **v1)
    def list_shops(con: Marts) -> list[dict[str, Any]]:
        out = []
        for shop in config.shops:
            bounds = q.date_bounds(con, shop.id)
            out.append({"shop_id": shop.id, "name": shop.name, "timezone": shop.timezone,
                        "first_day": bounds[0] if bounds else None, "last_day": bounds[1] if bounds else None,
                        "has_visit_marts": con.has("visit_log", "daily_visits")})
        return out

    @app.get("/v1/daily-visits", tags=["visits"], response_model=Page[DailyVisits], **v1,
             summary="Visits, unique, new and returning customers per shop-day")
    def daily_visits(con: Marts, flt: Dates, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
        con.require("daily_visits")
        sql, params = q.daily_visits_sql(flt)
        return _page(con, sql, params, "date, shop_id", limit, offset)

    @app.get("/v1/daily-revenue", tags=["payments"], response_model=Page[DailyRevenue], **v1,
             summary="Sales per shop-day")
    def daily_revenue(con: Marts, flt: Dates, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
        con.require("daily_revenue")
        sql, params = q.daily_revenue_sql(flt)
        return _page(con, sql, params, "date, shop_id", limit, offset)

    customer_sorts = {
        "visits": "visits desc nulls last, amount desc, customer_id, shop_id",
        "amount": "amount desc, visits desc nulls last, customer_id, shop_id",
        "customer_id": "customer_id, shop_id",
    }

    @app.get("/v1/customers", tags=["customers"], response_model=Page[Customer], **v1,
             summary="Known customers with lifetime visits and spend")
    def customers(
        con: Marts, shop_id: Shop_, limit: Limit = 100, offset: Offset = 0,
        sort: Annotated[Literal["visits", "amount", "customer_id"], Query()] = "visits",
        min_visits: MinVisits = None,
    ) -> dict[str, Any]:
        con.require("total_spent")
        sql, params = q.customers_sql(con, shop_id)
        if min_visits is not None:
            con.require("customer_visit_counts")
            sql, params = f"select * from ({sql}) where visits >= ?", [*params, min_visits]
        return _page(con, sql, params, customer_sorts[sort], limit, offset)

    def known_customer(con: MartsConnection, customer_id: str, shop_id: str | None) -> list[dict[str, Any]]:
        con.require("total_spent")
        rows = q.customer_summary(con, customer_id, shop_id)
        if not rows:
            where = f" at shop {shop_id!r}" if shop_id else ""
            raise HTTPException(404, detail=f"unknown customer {customer_id!r}{where}")
        return rows

    @app.get("/v1/customers/{customer_id}", tags=["customers"], response_model=CustomerDetail, **v1,
             summary="One customer's lifetime figures, per shop")
    def customer(con: Marts, customer_id: str, shop_id: Shop_) -> dict[str, Any]:
        survivor = q.surviving_customer_id(con, customer_id, shop_id)
        return {"customer_id": survivor, "merged_ids": q.merged_customer_ids(con, survivor, shop_id),
                "shops": known_customer(con, survivor, shop_id)}

    @app.get("/v1/customers/{customer_id}/visits", tags=["customers", "visits"], response_model=Page[Visit], **v1,
             summary="One customer's visits, oldest first")
    def customer_visits(con: Marts, customer_id: str, flt: Dates, limit: Limit = 100,
                        offset: Offset = 0) -> dict[str, Any]:
        con.require("visit_log")
        customer_id = q.surviving_customer_id(con, customer_id, flt.shop_id)
        known_customer(con, customer_id, flt.shop_id)
        sql, params = q.customer_visits_sql(customer_id, flt)
        return _page(con, sql, params, "entry_time, visit_id", limit, offset)

    @app.get("/v1/payments", tags=["payments"], response_model=Page[Payment], **v1,
             summary="Transactions, newest first")
    def payments(
        con: Marts, flt: Dates, limit: Limit = 100, offset: Offset = 0,
        payment_status: Annotated[Literal[PAYMENT_STATUSES] | None, Query(alias="status")] = None,
        mode: Annotated[Literal[PAYMENT_MODES] | None, Query()] = None,
        customer_id: Annotated[str | None, Query(description="POS customer id.")] = None,
    ) -> dict[str, Any]:
        con.require("transactions")
        sql, params = q.payments_sql(flt, payment_status, mode, customer_id)
        return _page(con, sql, params, "timestamp_local desc, transaction_id", limit, offset)

    @app.get("/v1/payments/summary", tags=["payments"], response_model=list[PaymentModeTotal], **v1,
             summary="Totals per payment mode")
    def payment_summary(con: Marts, flt: Dates) -> list[dict[str, Any]]:
        return q.payment_modes(con, flt).to_dicts()

    @app.get("/v1/defaulters", tags=["payments"], response_model=Page[Defaulter], **v1,
             summary="Customers with two or more unpaid transactions, biggest debt first")
    def defaulters(con: Marts, shop_id: Shop_, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
        con.require("repeat_defaulters")
        sql, params = q.defaulters_sql(shop_id)
        return _page(con, sql, params, "amount_owed desc, customer_id, shop_id", limit, offset)

    @app.get("/v1/zones/dwell", tags=["zones"], response_model=Page[ZoneDwell], **v1,
             summary="Customer dwell per zone and shop-day: visits, mean, median and p90 dwell")
    def zone_dwell(
        con: Marts, flt: Dates, limit: Limit = 100, offset: Offset = 0,
        zone: Annotated[str | None, Query(max_length=200, description="Only this zone.")] = None,
    ) -> dict[str, Any]:
        con.require("zone_dwell_daily")
        sql, params = q.zone_dwell_sql(flt, zone)
        return _page(con, sql, params, "date, shop_id, camera, zone", limit, offset)

    @app.get("/v1/zones/loitering", tags=["zones"], response_model=Page[LoiteringEvent], **v1,
             summary="Loitering events (staff excluded), newest first")
    def zone_loitering(con: Marts, flt: Dates, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
        con.require("loitering_events")
        sql, params = q.loitering_sql(flt)
        return _page(con, sql, params, "start_time desc, shop_id, camera, zone, track_id", limit, offset)

    @app.get("/v1/footfall/hourly", tags=["zones"], response_model=Page[FootfallHour], **v1,
             summary="Entrance entries, exits and occupancy per shop-day and hour")
    def footfall_hourly(con: Marts, flt: Dates, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
        con.require("footfall_hourly")
        sql, params = q.footfall_hourly_sql(flt)
        return _page(con, sql, params, "date, hour, shop_id", limit, offset)

    @app.get("/v1/zones/hourly", tags=["zones"], response_model=Page[ZoneHour], **v1,
             summary="Per zone and shop-day hour: customer visitors and dwell beside the zone's sales")
    def zone_hourly(
        con: Marts, flt: Dates, limit: Limit = 100, offset: Offset = 0,
        zone: Annotated[str | None, Query(max_length=200, description="Only this zone.")] = None,
    ) -> dict[str, Any]:
        con.require("fct_zone_hour")
        sql, params = q.zone_hour_sql(flt, zone)
        return _page(con, sql, params, "date, hour, shop_id, zone", limit, offset)

    @app.get("/v1/store-days/behaviour", tags=["zones"], response_model=Page[StoreDayBehaviour], **v1,
             summary="Per shop-day: visitors, receipts, conversion rate, shopper yield and zone entry rate")
    def store_day_behaviour(con: Marts, flt: Dates, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
        con.require("fct_store_day_behaviour")
        sql, params = q.store_day_behaviour_sql(flt)
        return _page(con, sql, params, "date, shop_id", limit, offset)

    @app.get("/v1/store-hours/labour", tags=["zones"], response_model=Page[LabourHour], **v1,
             summary="Per shop-day hour: staff on the floor, labour hours, visitors, sales per labour hour")
    def sales_per_labour_hour(con: Marts, flt: Dates, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
        con.require("sales_per_labour_hour")
        sql, params = q.sales_per_labour_hour_sql(flt)
        return _page(con, sql, params, "date, hour, shop_id", limit, offset)

    @app.get("/v1/zones/dwell-sales-correlation", tags=["zones"], response_model=Page[DwellSalesCorrelation], **v1,
             summary="Per zone: correlation of dwell with the zone's sales, 95 % CI, slope (all days)")
    def dwell_sales_correlation(
        con: Marts, shop_id: Shop_, limit: Limit = 100, offset: Offset = 0,
        grain: Annotated[Literal["hour", "day"] | None, Query(description="Only this grain.")] = None,
    ) -> dict[str, Any]:
        con.require("zone_dwell_sales_correlation")
        sql, params = q.dwell_sales_correlation_sql(shop_id, grain)
        return _page(con, sql, params, "shop_id, zone, grain", limit, offset)

    return app


def serve_api(config: WatershopConfig, host: str, port: int, api_key: str | None = None,
              log_level: str = "info") -> None:
    import uvicorn

    app = create_app(config, api_key)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=log_level == "debug")
