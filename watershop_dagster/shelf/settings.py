"""Typed settings of the falling-item detector: the workspace's `shelf:` block and the detector's tuning."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

GRAVITY_M_S2 = 9.81
#: a shelf zone usually spans a shelf unit and the floor in front: about this many metres high
DEFAULT_ZONE_HEIGHT_M = 1.8


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ShelfZoneScale(_Strict):
    """The real size of one shelf zone, when the default zone height does not fit the camera."""

    height_m: float | None = Field(default=None, gt=0, description="Metres the zone spans from top to bottom")
    gravity_px_s2: float | None = Field(default=None, gt=0, description="g in pixels/s² of the camera's frame; wins over height_m")


class ShelfConfig(_Strict):
    """The workspace's `shelf:` block (falling items in `kind: shelf` zones)."""

    zone_height_m: float = Field(default=DEFAULT_ZONE_HEIGHT_M, gt=0,
                                 description="Metres a shelf zone spans from top to bottom (sets g in px/s²)")
    zones: dict[str, ShelfZoneScale] = Field(default_factory=dict, description="Per zone name: its own scale")
    min_confidence: float = Field(default=0.6, ge=0, le=1)
    store_stills: bool = Field(default=False, description="Keep a JPEG of the shelf region at each landing")

    def gravity_px_s2(self, zone: str, zone_height_px: float) -> float:
        """g in px/s² for a zone `zone_height_px` high in frame pixels."""
        scale = self.zones.get(zone)
        if scale and scale.gravity_px_s2:
            return scale.gravity_px_s2
        height_m = scale.height_m if scale and scale.height_m else self.zone_height_m
        return GRAVITY_M_S2 * zone_height_px / height_m


@dataclass(frozen=True)
class FallTuning:
    """The detector's thresholds (work pixels are of the downscaled shelf region)."""

    work_width: int = 192  # the shelf region is downscaled to this width (px)
    luma_threshold: float = 16.0  # |Y - gain·background| that counts as foreground
    chroma_threshold: float = 12.0  # |U - background| or |V - background| that counts as foreground
    background_tau_s: float = 1.5  # background follows the scene outside foreground within this
    foreground_tau_s: float = 6.0  # ... and under foreground (a landed item is absorbed in seconds)
    activity_tau_s: float = 10.0  # memory of where foreground keeps appearing (swinging signs)
    warmup_s: float = 2.0  # the first seconds only learn the background and where signs swing: no falls released then
    preroll_s: float = 3.0  # seconds of the previous segment fed first, so a segment starts warm
    global_change_share: float = 0.25  # more of the region changed at once: a light change, not an item
    min_area_px: int = 3  # work px
    max_area_share: float = 0.03  # of the region's area: bigger is a person, arm or cart
    max_height_share: float = 0.35  # blob height / region height
    min_points: int = 4  # frames of a fall
    min_drop_share: float = 0.08  # a fall spans at least this share of the region height
    max_sideways: float = 0.6  # |dx| / dy over the fall
    gravity_ratio: tuple[float, float] = (0.45, 1.9)  # fitted g / expected g
    max_fit_rms_px: float = 1.5  # work px, or 8% of the drop when larger
    max_gap_frames: int = 2  # a blob unseen longer ends its track
    stop_px: float = 0.6  # work px per frame: slower than this at the bottom is landed
    edge_px: int = 2  # blobs touching the region's edge within this at release: an arm reaching in
