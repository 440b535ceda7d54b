"""Per-customer feature tables computed at an explicit cutoff."""

from vipml.features.rfm import (
    DEFAULT_SEGMENT_RULES,
    SegmentRule,
    rfm_scores,
    rfm_segments,
    rfm_summary,
)
from vipml.features.split import calibration_holdout

__all__ = [
    "DEFAULT_SEGMENT_RULES",
    "SegmentRule",
    "calibration_holdout",
    "rfm_scores",
    "rfm_segments",
    "rfm_summary",
]
