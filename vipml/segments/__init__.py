"""Customer segments: clusters named for marketing, VIP tiers, migration and holdout validation.

- :class:`Segmenter` clusters a per-customer feature table (RFM summary, CLV, churn risk, ...)
  and profiles and names the segments (:mod:`vipml.segments.naming`).
- :class:`SegmentTracker` re-segments period after period with stable names;
  :func:`migration_matrix` and :func:`value_growth` show who moved where and what it is worth.
- :func:`vip_tiers` ranks customers by value into tiers, with hysteresis across periods.
- :func:`validate_holdout`, :func:`bootstrap_stability` and :func:`revenue_capture` check the
  segments against what customers do after the cutoff.
"""

from vipml.segments.cluster import Segmenter, as_feature_table, segment_profile
from vipml.segments.migration import (
    Migration,
    SegmentTracker,
    match_segments,
    migration_matrix,
    value_growth,
)
from vipml.segments.naming import (
    DEFAULT_VOCABULARY,
    SegmentName,
    name_segments,
    naming_axes,
    with_actions,
)
from vipml.segments.tiers import count_tier_flips, tier_history, tier_transitions, vip_tiers
from vipml.segments.validate import (
    HoldoutValidation,
    Stability,
    bootstrap_stability,
    revenue_capture,
    validate_holdout,
)

__all__ = [
    "DEFAULT_VOCABULARY",
    "HoldoutValidation",
    "Migration",
    "SegmentName",
    "SegmentTracker",
    "Segmenter",
    "Stability",
    "as_feature_table",
    "bootstrap_stability",
    "count_tier_flips",
    "match_segments",
    "migration_matrix",
    "name_segments",
    "naming_axes",
    "revenue_capture",
    "segment_profile",
    "tier_history",
    "tier_transitions",
    "validate_holdout",
    "value_growth",
    "vip_tiers",
    "with_actions",
]
