"""RFM summary of the CDNOW sample against the published summary of Fader, Hardie & Lee (2005)."""

import numpy as np
import pandas as pd
import pytest

from vipml.data import load_cdnow
from vipml.features import rfm_summary


@pytest.fixture(scope="module")
def published(parity_data, cdnow_sample_file):
    """The published summaries, keyed by master customer id (the sample file maps the ids)."""
    raw = pd.read_csv(
        cdnow_sample_file,
        sep=r"\s+",
        header=None,
        usecols=[0, 1],
        names=["master", "sample"],
    ).drop_duplicates()
    master_of = dict(zip(raw["sample"], raw["master"], strict=True))
    summary = pd.read_csv(parity_data / "cdnow_customers_summary.csv")
    spend = pd.read_csv(parity_data / "cdnow_customers_summary_with_transactions.csv")
    table = summary.merge(spend[["ID", "zbar"]], on="ID")
    table["customer_id"] = table["ID"].map(master_of)
    return table.set_index("customer_id").sort_index()


@pytest.fixture(scope="module")
def ours():
    with pytest.warns(match="21 exact duplicate"):
        return rfm_summary(load_cdnow(sample=True), "1997-09-30", freq="D", time_unit="W")


def test_same_customers(published, ours):
    assert len(ours) == 2357
    assert ours.index.equals(published.index)


def test_frequency_identical_for_every_customer(published, ours):
    np.testing.assert_array_equal(ours["frequency"], published["frequency"])


# Published to two decimals: half a unit of the last digit, plus float noise on exact halves.
ROUNDING = 0.005 + 1e-9


def test_recency_and_T_within_printed_rounding(published, ours):
    assert np.abs(ours["recency"] - published["recency"]).max() <= ROUNDING
    assert np.abs(ours["T"] - published["T"]).max() <= ROUNDING


def test_mean_repeat_spend_within_printed_rounding(published, ours):
    assert np.abs(ours["monetary_value"] - published["zbar"]).max() <= ROUNDING
