"""Segment plots: the drawn numbers are those of the tables."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from vipml.errors import DataValidationError
from vipml.plotting import plot_migration, plot_profile
from vipml.segments import Segmenter, SegmentTracker, migration_matrix


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_migration_heat_map_shows_the_shares() -> None:
    before = pd.Series(["A", "A", "B", "B"], index=[1, 2, 3, 4])
    after = pd.Series(["A", "B", "B", "B", "A"], index=[1, 2, 3, 4, 5])
    migration = migration_matrix(before, after)
    ax = plot_migration(migration)
    image = ax.images[0].get_array()
    np.testing.assert_allclose(np.asarray(image), migration.shares.to_numpy())
    assert [t.get_text() for t in ax.texts] == ["50%", "50%", "0%", "100%", "100%", "0%"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A", "B", "(new customers)"]
    counts = plot_migration(migration.counts, shares=False)
    assert [t.get_text() for t in counts.texts] == ["1", "1", "0", "2", "1", "0"]


def test_cdnow_plots(cdnow_quarters: dict[str, pd.DataFrame]) -> None:
    periods = {q: cdnow_quarters[q] for q in ("1997-09-30", "1997-12-31")}
    tracker = SegmentTracker(Segmenter(n_segments=4)).fit(periods)
    ax = plot_migration(tracker.migration("1997-09-30", "1997-12-31"))
    assert len(ax.texts) == 16
    profile = tracker.segmenters_["1997-09-30"].profile_
    bars = plot_profile(profile)
    assert len(bars.patches) == 3 * 4  # customer, revenue and value shares of 4 segments
    heights = sorted(p.get_width() for p in bars.patches)
    expected = sorted(
        profile[["customer_share", "revenue_share", "value_share"]].to_numpy().ravel()
    )
    np.testing.assert_allclose(heights, expected)
    assert [t.get_text() for t in bars.get_yticklabels()] == profile["name"].tolist()


def test_plot_errors() -> None:
    with pytest.raises(DataValidationError, match="none of the columns"):
        plot_profile(pd.DataFrame({"x": [1.0]}))
    with pytest.raises(DataValidationError, match="Migration or a DataFrame"):
        plot_migration([[1, 2]])
