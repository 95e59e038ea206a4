"""The landing writer: one whole line per message, never twice (also across a restart), a torn tail
cut off, routing by the object's camera and local start day."""

from __future__ import annotations

import json
from datetime import date
from zoneinfo import ZoneInfo

from watershop_dagster.frigate.landing import (
    UNROUTED,
    LandedMessage,
    LandingWriter,
    landed_camera_days,
    read_landed,
    route,
)

KOLKATA = ZoneInfo("Asia/Kolkata")
LATE_EVENING_UTC = 1_717_273_800.0  # 2024-06-01 20:30 UTC = 2024-06-02 02:00 in Kolkata


def event(event_id: str, camera: str = "door", start: float = LATE_EVENING_UTC) -> str:
    return json.dumps({"type": "new", "after": {"id": event_id, "camera": camera, "start_time": start}})


def test_routing_uses_the_objects_camera_and_local_start_day():
    assert route(event("e1"), {"door"}, KOLKATA, LATE_EVENING_UTC + 7200) == ("door", date(2024, 6, 2))
    assert route(event("e1", "garage"), {"door"}, KOLKATA, LATE_EVENING_UTC)[0] == UNROUTED
    assert route("{oops", {"door"}, KOLKATA, LATE_EVENING_UTC) == (UNROUTED, date(2024, 6, 2))


def test_a_restarted_writer_cuts_a_torn_tail_and_writes_nothing_twice(tmp_path):
    writer = LandingWriter(tmp_path, "s1", {"door"}, KOLKATA)
    path = writer.append("frigate/events", event("e1"), LATE_EVENING_UTC)
    assert writer.append("frigate/events", event("e1"), LATE_EVENING_UTC + 1) is None  # the same message again
    writer.close()
    with open(path, "ab") as handle:
        handle.write(b'{"received_at": 1, "topic": "frigate/ev')  # a write cut short by a power loss
    assert [m.payload for m in read_landed(path) if isinstance(m, LandedMessage)] == [event("e1")]
    again = LandingWriter(tmp_path, "s1", {"door"}, KOLKATA)
    assert again.append("frigate/events", event("e1"), LATE_EVENING_UTC + 2) is None  # known from the file
    again.append("frigate/events", event("e2"), LATE_EVENING_UTC + 3)
    again.close()
    lines = path.read_text().splitlines()
    assert [json.loads(line)["payload"] for line in lines] == [event("e1"), event("e2")]
    assert set(landed_camera_days(tmp_path, "s1")) == {("door", date(2024, 6, 2))}
