"""Zones in Frigate's convention and the behaviour analytics over person tracks.

The Dagster layer calls `analyse_observations` (or the single functions) on one camera-day of
PERSON_OBSERVATIONS with `shop.zones(camera)` and writes each frame to the lake with its schema.
"""

from watershop_dagster.zones.analytics import (
    DEFAULT_EXIT_DEBOUNCE_SECONDS,
    EXIT_LEFT_ZONE,
    EXIT_TRACK_LOST,
    ZoneAnalytics,
    analyse_observations,
    footfall,
    heatmap_cells,
    heatmap_grid,
    loitering_events,
    person_tracks,
    split_valid_observations,
    zone_occupancy,
    zone_transitions,
    zone_visits,
)
from watershop_dagster.zones.config import (
    CameraSettings,
    DetectSettings,
    PolygonError,
    Zone,
    ZoneSettings,
    parse_polygon,
)
from watershop_dagster.zones.heatmap import render_heatmap_png
from watershop_dagster.zones.schemas import (
    FOOTFALL,
    HEATMAP_CELLS,
    LOITERING_EVENTS,
    PERSON_OBSERVATIONS,
    PERSON_OBSERVATIONS_REJECTED,
    PERSON_TRACKS,
    ZONE_OCCUPANCY,
    ZONE_TRANSITIONS,
    ZONE_VISITS,
)

__all__ = [
    "CameraSettings", "DEFAULT_EXIT_DEBOUNCE_SECONDS", "DetectSettings", "EXIT_LEFT_ZONE", "EXIT_TRACK_LOST",
    "FOOTFALL", "HEATMAP_CELLS", "LOITERING_EVENTS", "PERSON_OBSERVATIONS", "PERSON_OBSERVATIONS_REJECTED",
    "PERSON_TRACKS", "PolygonError", "ZONE_OCCUPANCY", "ZONE_TRANSITIONS", "ZONE_VISITS", "Zone",
    "ZoneAnalytics", "ZoneSettings", "analyse_observations", "footfall", "heatmap_cells", "heatmap_grid",
    "loitering_events", "parse_polygon", "person_tracks", "render_heatmap_png", "split_valid_observations",
    "zone_occupancy", "zone_transitions", "zone_visits",
]
