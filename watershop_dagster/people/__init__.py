"""People without faces: person tracks from foreground blobs and ByteTrack (see tracking.py)."""

from watershop_dagster.people.detector import ForegroundDetector, ForegroundSettings, PersonDetector
from watershop_dagster.people.schema import PERSON_OBSERVATIONS, empty_observations
from watershop_dagster.people.tracking import (
    PeopleSettings,
    PeopleTracker,
    TrackerSettings,
    track_people,
    track_people_files,
)

__all__ = [
    "PERSON_OBSERVATIONS",
    "ForegroundDetector",
    "ForegroundSettings",
    "PeopleSettings",
    "PeopleTracker",
    "PersonDetector",
    "TrackerSettings",
    "empty_observations",
    "track_people",
    "track_people_files",
]
