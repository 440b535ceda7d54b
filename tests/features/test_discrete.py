"""discrete_summary: the BG/BB summary from a log, on every backend, with lifetimes' definitions."""

import warnings

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest

from vipml.data import load_donations
from vipml.errors import DataWarning
from vipml.features import discrete_summary, rfm_summary
from vipml.ltv import BetaGeoBetaBinom


def _donation_log() -> pd.DataFrame:
    """One gift in 1995 per donor, then gifts in 1996-2001 that reproduce the donation table."""
    rows = []
    donor = 0
    for frequency, recency, _, customers in load_donations().itertuples(index=False):
        for _ in range(int(customers)):
            # the last gift in year `recency`, the others in the years just before it
            years = [1995] + [1995 + int(recency) - k for k in range(int(frequency))]
            rows += [(donor, f"{year}-06-15", 25.0) for year in years]
            donor += 1
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"]).assign(
        timestamp=lambda f: pd.to_datetime(f["timestamp"])
    )


@pytest.fixture(scope="module")
def donation_log() -> pd.DataFrame:
    return _donation_log()


def test_the_donation_log_gives_the_papers_table_and_estimates(donation_log):
    summary = discrete_summary(donation_log, "2001-12-31", period="YE")
    table = (
        summary.groupby(["frequency", "recency", "n_periods"])
        .size()
        .rename("customers")
        .reset_index()
    )
    expected = load_donations()[["frequency", "recency", "n_periods", "customers"]]
    pd.testing.assert_frame_equal(
        table.astype("float64"), expected.reset_index(drop=True), check_names=False
    )
    model = BetaGeoBetaBinom().fit(summary)
    assert round(model.loglik_, 1) == -33225.6


def test_equals_rfm_summary_with_the_same_period_as_time_unit(donation_log):
    ours = discrete_summary(donation_log, "2001-12-31", period="Y")
    rfm = rfm_summary(donation_log, "2001-12-31", freq="Y")
    np.testing.assert_array_equal(ours["n_periods"], rfm["T"])
    pd.testing.assert_frame_equal(
        ours[["frequency", "recency", "monetary_value"]],
        rfm[["frequency", "recency", "monetary_value"]],
    )


def test_polars_and_duckdb_give_the_same_summary(donation_log):
    sample = donation_log[donation_log["customer_id"] < 400]
    expected = discrete_summary(sample, "2001-12-31", period="Y")
    from_polars = discrete_summary(pl.from_pandas(sample), "2001-12-31", period="Y")
    pd.testing.assert_frame_equal(from_polars.to_pandas().set_index("customer_id"), expected)
    relation = duckdb.from_df(sample)
    from_duckdb = discrete_summary(relation, "2001-12-31", period="Y").df()
    pd.testing.assert_frame_equal(
        from_duckdb.set_index("customer_id").sort_index(), expected, check_index_type=False
    )


def test_monthly_opportunities_and_rows_after_the_cutoff():
    tx = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 1, 2],
            "timestamp": pd.to_datetime(
                ["2024-01-10", "2024-01-20", "2024-03-02", "2024-07-01", "2024-02-29"]
            ),
            "amount": [5.0, 5.0, 8.0, 100.0, 3.0],
        }
    )
    summary = discrete_summary(tx, "2024-04-30", period="ME")
    assert summary.loc[1].tolist() == [1.0, 2.0, 3.0, 8.0]  # March only; July is after
    assert summary.loc[2].tolist() == [0.0, 0.0, 2.0, 0.0]


def test_a_cutoff_inside_a_period_warns():
    tx = pd.DataFrame(
        {
            "customer_id": [1, 1],
            "timestamp": pd.to_datetime(["2020-03-01", "2021-03-01"]),
            "amount": 1.0,
        }
    )
    with pytest.warns(DataWarning, match="only partly observed"):
        discrete_summary(tx, "2022-06-30", period="Y")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        discrete_summary(tx, "2022-12-31", period="Y")
