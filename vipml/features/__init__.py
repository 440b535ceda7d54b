"""Per-customer feature tables computed at an explicit cutoff."""

from vipml.features.cycle import purchase_cycle_features, transaction_mix_features
from vipml.features.discrete import discrete_summary
from vipml.features.engagement import engagement_features
from vipml.features.omnichannel import OmnichannelReport, omnichannel_measures
from vipml.features.rfm import (
    DEFAULT_SEGMENT_RULES,
    SegmentRule,
    rfm_scores,
    rfm_segments,
    rfm_summary,
)
from vipml.features.split import calibration_holdout, labels_after, training_snapshots

__all__ = [
    "DEFAULT_SEGMENT_RULES",
    "OmnichannelReport",
    "SegmentRule",
    "calibration_holdout",
    "discrete_summary",
    "engagement_features",
    "labels_after",
    "omnichannel_measures",
    "purchase_cycle_features",
    "rfm_scores",
    "rfm_segments",
    "rfm_summary",
    "training_snapshots",
    "transaction_mix_features",
]
