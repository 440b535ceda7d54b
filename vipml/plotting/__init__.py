"""Diagnostic plots (matplotlib, an optional extra: ``pip install vipml[plot]``).

matplotlib is imported inside each function, so ``import vipml.plotting`` works without it, and
no model ever imports this package. Every function draws on the given Axes (or a new figure's)
and returns the Axes.

- lifetime value (:mod:`vipml.plotting.ltv`): calibration vs holdout, frequency histogram,
  cumulative tracking, P(alive) matrix;
- churn (:mod:`vipml.plotting.churn`): reliability diagram, lift curve;
- segments (:mod:`vipml.plotting.segments`): migration matrix, segment profile.
"""

from vipml.plotting.churn import plot_lift, plot_reliability
from vipml.plotting.ltv import (
    cumulative_tracking,
    expected_frequency_counts,
    plot_calibration_holdout,
    plot_cumulative_tracking,
    plot_frequency_histogram,
    plot_p_alive_matrix,
)
from vipml.plotting.segments import plot_migration, plot_profile

__all__ = [
    "cumulative_tracking",
    "expected_frequency_counts",
    "plot_calibration_holdout",
    "plot_cumulative_tracking",
    "plot_frequency_histogram",
    "plot_lift",
    "plot_migration",
    "plot_p_alive_matrix",
    "plot_profile",
    "plot_reliability",
]
