from __future__ import annotations

import pandas as pd
import polars as pl
import pytest

from vipml.churn import churn_labels
from vipml.errors import DataValidationError
from vipml.features.split import labels_after


@pytest.fixture
def log() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "c", "c", "d"],
            "timestamp": pd.to_datetime(
                ["2024-01-01", "2024-02-10", "2024-01-05", "2024-01-20", "2024-03-25", "2024-02-01"]
            ),
            "amount": [10.0, 5.0, 7.0, 3.0, 4.0, 9.0],
        }
    )


def test_is_labels_after_churned(log):
    expected = labels_after(log, "2024-01-31", "6W")["churned"]
    got = churn_labels(log, "2024-01-31", "6W")
    pd.testing.assert_series_equal(got, expected.astype(bool).sort_index())
    assert got.to_dict() == {"a": False, "b": True, "c": True}  # d has no purchase by the cutoff


def test_horizon_end_is_inclusive_and_start_exclusive(log):
    # c buys again on 2024-03-25 = 2024-01-20 + 65 days: inside a 65-day horizon, not a 64-day one.
    assert not churn_labels(log, "2024-01-20", "65D")["c"]
    assert churn_labels(log, "2024-01-20", "64D")["c"]
    # a purchase on the cutoff day itself is a feature, not a label.
    assert churn_labels(log, "2024-01-01", "1D")["a"]


def test_polars_input_gives_the_same_series(log):
    pd.testing.assert_series_equal(
        churn_labels(pl.from_pandas(log), "2024-01-31", "6W"), churn_labels(log, "2024-01-31", "6W")
    )


def test_incomplete_horizon_is_refused(log):
    with pytest.raises(DataValidationError, match="incomplete"):
        churn_labels(log, "2024-03-01", "8W")


def test_bare_number_horizon_is_refused(log):
    with pytest.raises(DataValidationError, match="no unit"):
        churn_labels(log, "2024-01-31", 42)
