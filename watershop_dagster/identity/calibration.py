"""Match thresholds from measured distances instead of a constant.

Given embeddings labelled by person (e.g. known people's photos, or a labelled gallery of other
people's photos under varied looks), `distance_distributions` gives the same-person and
different-person pairwise distances and `calibrate` picks:

* ``face_match_distance``: merging two people is worse than splitting one (a wrong merge
  corrupts a customer's history, a split only costs a repeat-visit count), so the threshold is
  the `max_false_match` quantile of the different-person distances — unless the same-person
  distances end well below that, then the middle of the gap between the `same_quantile`
  quantile of the same-person distances and that point;
* ``face_ambiguous_margin``: half the width of the band where the two distributions overlap
  (same-person distances above, different-person distances below the threshold), kept between
  `min_margin` and `max_margin`, so near-threshold cases are recorded as ambiguous.

Distances are euclidean between dlib's 128-d embeddings (what matching uses).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from watershop_dagster.identity.clustering import distances

#: share of different-person pairs allowed under the threshold
MAX_FALSE_MATCH = 0.01
#: the same-person distance most pairs (this share) stay under
SAME_QUANTILE = 0.95
MIN_MARGIN, MAX_MARGIN = 0.02, 0.06
#: fewer pairs than this on either side: no calibration (keep the configured thresholds)
MIN_PAIRS = 20


@dataclass(frozen=True)
class Calibration:
    face_match_distance: float
    face_ambiguous_margin: float
    same_pairs: int
    different_pairs: int
    same_median: float
    same_quantile: float  # the SAME_QUANTILE quantile of same-person distances
    different_quantile: float  # the MAX_FALSE_MATCH quantile of different-person distances
    false_match_rate: float  # share of different-person pairs under the threshold
    false_split_rate: float  # share of same-person pairs at or over the threshold

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def distance_distributions(vectors: np.ndarray, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(same-person distances, different-person distances) over all pairs of rows."""
    n = len(labels)
    if n < 2:
        return np.zeros(0), np.zeros(0)
    d = distances(vectors, vectors)
    lab = np.asarray(labels)
    upper = np.triu(np.ones((n, n), bool), 1)
    same = lab[:, None] == lab[None, :]
    return d[upper & same], d[upper & ~same]


def calibrate(
    same: np.ndarray,
    different: np.ndarray,
    max_false_match: float = MAX_FALSE_MATCH,
    same_quantile: float = SAME_QUANTILE,
) -> Calibration | None:
    """Thresholds from the two distance distributions (see module docstring); None if too few pairs."""
    same, different = np.asarray(same, np.float64), np.asarray(different, np.float64)
    if len(same) < MIN_PAIRS or len(different) < MIN_PAIRS:
        return None
    q_diff = float(np.quantile(different, max_false_match))
    q_same = float(np.quantile(same, same_quantile))
    threshold = (q_same + q_diff) / 2 if q_same < q_diff else q_diff
    overlap_lo = float(np.quantile(different, 0.0))
    overlap_hi = float(np.quantile(same, 1.0))
    margin = float(np.clip((overlap_hi - overlap_lo) / 2, MIN_MARGIN, MAX_MARGIN))
    return Calibration(
        face_match_distance=round(threshold, 4),
        face_ambiguous_margin=round(margin, 4),
        same_pairs=len(same),
        different_pairs=len(different),
        same_median=float(np.median(same)),
        same_quantile=q_same,
        different_quantile=q_diff,
        false_match_rate=float((different < threshold).mean()),
        false_split_rate=float((same >= threshold).mean()),
    )
