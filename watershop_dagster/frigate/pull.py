"""`watershop frigate pull`: backfill days of finished events from Frigate's HTTP API into landing.

GET <url>/api/events?after=&before=&limit=&camera= returns events newest first; a page as long as
`limit` means more: the next page asks for events before the oldest start_time seen (ids already
seen are skipped, so a tie at the boundary is neither lost nor doubled). Each finished event lands
under the topic `api/events` as canonical JSON (sorted keys), so re-pulling a day writes nothing
new unless Frigate changed the event; in-progress events (no end_time) are left for a later pull.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as day_time
from zoneinfo import ZoneInfo

import requests

from watershop_dagster.frigate.events import API_TOPIC
from watershop_dagster.frigate.landing import LandingWriter

PAGE_LIMIT = 500
TIMEOUT_SECONDS = 30
LABEL = "person"


@dataclass
class PullReport:
    events: int = 0
    landed: int = 0
    unchanged: int = 0
    in_progress: int = 0
    pages: int = 0
    files: set = field(default_factory=set)


def fetch_events(url: str, after: float, before: float, camera: str | None = None, limit: int = PAGE_LIMIT,
                 session: requests.Session | None = None):
    """Every event with after <= start_time < before, page by page (newest first)."""
    http = session or requests.Session()
    seen: set[str] = set()
    upper = before
    while True:
        params = {"after": after, "before": upper, "limit": limit, "label": LABEL}
        if camera:
            params["camera"] = camera
        response = http.get(f"{url.rstrip('/')}/api/events", params=params, timeout=TIMEOUT_SECONDS)
        response.raise_for_status()
        page = response.json()
        if not isinstance(page, list):
            raise ValueError(f"{url}/api/events returned {type(page).__name__}, not a list of events")
        fresh = [event for event in page if isinstance(event, dict) and event.get("id") not in seen]
        yield page, fresh
        seen.update(event.get("id") for event in fresh)
        starts = [e["start_time"] for e in page if isinstance(e, dict) and isinstance(e.get("start_time"), (int, float))]
        if len(page) < limit or not fresh or not starts:
            return
        upper = min(starts) + 1e-6  # the boundary's other events come again; `seen` drops them


def day_bounds(first: date, last: date, tz: ZoneInfo) -> tuple[float, float]:
    """Epoch seconds of the shop's local midnight starting `first` and ending `last`."""
    start = datetime.combine(first, day_time(0), tz)
    end = datetime.combine(last + timedelta(days=1), day_time(0), tz)
    return start.timestamp(), end.timestamp()


def pull_events(url: str, writer: LandingWriter, first: date, last: date, camera: str | None = None,
                limit: int = PAGE_LIMIT) -> PullReport:
    report = PullReport()
    after, before = day_bounds(first, last, writer.tz)
    for page, fresh in fetch_events(url, after, before, camera, limit):
        report.pages += 1
        for event in fresh:
            report.events += 1
            if event.get("end_time") is None:
                report.in_progress += 1
                continue
            path = writer.append(API_TOPIC, json.dumps(event, sort_keys=True, ensure_ascii=False), time.time())
            if path is None:
                report.unchanged += 1
            else:
                report.landed += 1
                report.files.add(path)
    writer.close()
    return report
