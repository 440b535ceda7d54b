"""Segments over periods: matching, stable names, migration matrices, value growth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vipml.errors import DataValidationError, NotFittedError
from vipml.segments import (
    Segmenter,
    SegmentTracker,
    match_segments,
    migration_matrix,
    value_growth,
    vip_tiers,
)
from vipml.segments.migration import GONE, NEW


def table(seed: int, n: int = 400, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 4, n)
    centres = np.log(
        np.array([[0.5, 10.0, 25.0], [3.0, 30.0, 12.0], [8.0, 60.0, 4.0], [20.0, 200.0, 1.0]])
    )
    values = np.exp(centres[group] + shift + rng.normal(0.0, 0.15, (n, 3)))
    return pd.DataFrame(
        values,
        columns=["frequency", "monetary_value", "time_since_last"],
        index=pd.Index(np.arange(n), name="customer_id"),
    )


def test_same_structure_is_matched_one_to_one() -> None:
    first = Segmenter(n_segments=4).fit(table(0))
    second = Segmenter(n_segments=4, random_state=5).fit(table(1, shift=0.05))
    matches = match_segments(first, second)
    assert (matches["status"] == "continued").all()
    assert (matches["previous"] == matches["current"]).all()  # both numbered by value
    assert matches["distance"].max() < 0.5
    assert matches["previous_name"].tolist() == first.names_.tolist()


def test_new_and_vanished_segments() -> None:
    four = Segmenter(n_segments=4).fit(table(0))
    three = Segmenter(n_segments=3).fit(table(1))
    vanished = match_segments(four, three)
    assert vanished["status"].value_counts().to_dict() == {"continued": 3, "vanished": 1}
    appeared = match_segments(three, four)
    assert appeared["status"].value_counts().to_dict() == {"continued": 3, "new": 1}
    broken = match_segments(four, Segmenter(n_segments=4).fit(table(1)), max_distance=0.0)
    assert broken["status"].value_counts().to_dict() == {"new": 4, "vanished": 4}


def test_different_features_cannot_be_matched() -> None:
    first = Segmenter(n_segments=3).fit(table(0))
    other = Segmenter(n_segments=3, features=["frequency", "monetary_value"]).fit(table(1))
    with pytest.raises(DataValidationError, match="different features"):
        match_segments(first, other)


def test_tracker_keeps_names_when_k_means_renumbers() -> None:
    periods = {"Q1": table(0), "Q2": table(1, shift=0.03), "Q3": table(2, shift=0.06)}
    tracker = SegmentTracker(Segmenter(n_segments=4)).fit(periods)
    names = {p: set(tracker.segmenters_[p].names_) for p in tracker.periods_}
    assert names["Q1"] == names["Q2"] == names["Q3"]
    assert (tracker.changes_["status"] == "continued").all()
    assert (tracker.changes_["previous_name"] == tracker.changes_["name"]).all()
    assert list(tracker.assignments_.columns) == ["Q1", "Q2", "Q3"]


def test_tracker_names_new_segments_from_the_rest_of_the_vocabulary() -> None:
    tracker = SegmentTracker(Segmenter(n_segments=3), refit_k=True)
    tracker.update("Q1", table(0))
    tracker.segmenter = Segmenter(n_segments=4)
    tracker.update("Q2", table(1))
    changes = tracker.changes_
    new = changes.loc[changes["status"] == "new", "name"].tolist()
    assert len(new) == 1 and new[0] not in set(tracker.segmenters_["Q1"].names_)
    assert tracker.segmenters_["Q2"].names_.is_unique
    with pytest.raises(DataValidationError, match="already fitted"):
        tracker.update("Q2", table(2))


def test_auto_k_is_chosen_once_unless_asked() -> None:
    periods = {"Q1": table(0), "Q2": table(1)}
    kept = SegmentTracker(Segmenter(k_range=(3, 6))).fit(periods)
    ks = {p: s.n_segments_ for p, s in kept.segmenters_.items()}
    assert ks["Q1"] == ks["Q2"]


def test_migration_matrix_counts_and_shares() -> None:
    before = pd.Series(["A", "A", "B", "B", "B"], index=[1, 2, 3, 4, 5])
    after = pd.Series(["A", "B", "B", "B", "A"], index=[1, 2, 3, 6, 7])
    migration = migration_matrix(before, after)
    assert migration.counts.index.tolist() == ["A", "B", NEW]
    assert migration.counts.columns.tolist() == ["A", "B", GONE]
    assert migration.counts.to_numpy().tolist() == [[1, 1, 0], [0, 1, 2], [1, 1, 0]]
    assert migration.counts.to_numpy().sum() == 7
    np.testing.assert_allclose(migration.shares.sum(axis=1), 1.0)


def test_categorical_order_is_kept() -> None:
    before = pd.Series(pd.Categorical(["VIP", "Standard"], categories=["VIP", "Gold", "Standard"]))
    after = pd.Series(pd.Categorical(["Gold", "Standard"], categories=["VIP", "Gold", "Standard"]))
    migration = migration_matrix(before, after)
    assert migration.counts.index.tolist() == ["VIP", "Gold", "Standard"]
    assert migration.shares.loc["Gold"].sum() == 0.0  # empty row: shares of 0, not NaN


def test_cdnow_quarters_names_stable_and_migration(
    cdnow_quarters: dict[str, pd.DataFrame],
) -> None:
    tracker = SegmentTracker(Segmenter()).fit(cdnow_quarters)
    periods = tracker.periods_
    names = [list(tracker.segmenters_[p].names_) for p in periods]
    assert all(set(n) == set(names[0]) for n in names)
    assert (tracker.changes_["status"] == "continued").all()
    migration = tracker.migration("1997-09-30", "1997-12-31")
    counts = migration.counts
    assert counts.to_numpy().sum() == len(cdnow_quarters["1997-09-30"])  # one cohort: no one new
    assert NEW not in counts.index and GONE not in counts.columns
    np.testing.assert_allclose(migration.shares.sum(axis=1), 1.0)
    # the inactive bottom segment is sticky; customers rarely jump from it to the top
    assert migration.shares.loc["Lost", "Lost"] > 0.9
    assert migration.shares.loc["Lost", "Champions"] < 0.02


def test_simulated_quarters_names_stable(sim_quarters: dict[str, pd.DataFrame]) -> None:
    tracker = SegmentTracker(Segmenter(n_segments=5)).fit(sim_quarters)
    names = [set(tracker.segmenters_[p].names_) for p in tracker.periods_]
    assert all(n == names[0] for n in names)
    assert (tracker.changes_["status"] == "continued").all()
    shares = tracker.migration("2024-12-31", "2025-03-31").shares
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)


def test_value_growth_per_segment_and_tier(cdnow_quarters: dict[str, pd.DataFrame]) -> None:
    q3, q4 = cdnow_quarters["1997-09-30"], cdnow_quarters["1997-12-31"]
    before = q3.assign(tier=vip_tiers(q3["clv"]))
    after = q4.assign(tier=vip_tiers(q4["clv"], previous=before["tier"]))
    growth = value_growth(before, after, by="tier")
    assert growth.index.tolist() == ["VIP", "Gold", "Standard", "(all)"]
    assert growth.loc["(all)", "total_before"] == pytest.approx(q3["clv"].sum())
    assert growth.loc["(all)", "total_after"] == pytest.approx(q4["clv"].sum())
    assert growth.loc[["VIP", "Gold", "Standard"], "n_after"].sum() == len(q4)
    np.testing.assert_allclose(growth["mean_change"], growth["mean_after"] - growth["mean_before"])
    with pytest.raises(DataValidationError, match="lacks"):
        value_growth(before, after, by="segment")


def test_tracker_errors() -> None:
    with pytest.raises(NotFittedError):
        SegmentTracker().migration("a", "b")
    with pytest.raises(DataValidationError, match="empty"):
        SegmentTracker().fit({})
    tracker = SegmentTracker(Segmenter(n_segments=3)).fit({"Q1": table(0)})
    with pytest.raises(DataValidationError, match="not fitted"):
        tracker.migration("Q1", "Q9")
