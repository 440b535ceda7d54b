"""RFM summary and calibration/holdout split of CDNOW master against lifetimes, same settings."""

import numpy as np
import pandas as pd
import pytest
from lifetimes.utils import calibration_and_holdout_data, summary_data_from_transaction_data

from vipml.data import load_cdnow
from vipml.features import calibration_holdout, rfm_summary

CALIBRATION_END, OBSERVATION_END = "1997-09-30", "1998-06-30"


@pytest.fixture(scope="module")
def master():
    return load_cdnow()


def _assert_parity(ours, theirs, exact=("frequency",)):
    theirs = theirs.sort_index()
    assert ours.index.equals(theirs.index.rename("customer_id"))
    for column in theirs.columns:
        if column in exact:
            np.testing.assert_array_equal(ours[column], theirs[column], err_msg=column)
        else:
            np.testing.assert_allclose(
                ours[column], theirs[column], rtol=0, atol=1e-9, err_msg=column
            )


# lifetimes keeps the whole period that holds the cutoff; vipml stops at the cutoff itself.
# They agree when the cutoff ends a period: any day for "D", a Sunday for "W".
@pytest.mark.parametrize(("freq", "cutoff"), [("D", CALIBRATION_END), ("W", "1997-10-05")])
def test_summary_equals_lifetimes(master, freq, cutoff):
    theirs = summary_data_from_transaction_data(
        master, "customer_id", "timestamp", "amount", observation_period_end=cutoff, freq=freq
    )
    with pytest.warns(match="exact duplicate"):
        ours = rfm_summary(master, cutoff, freq=freq)
    _assert_parity(ours, theirs)


def test_weeks_are_days_over_seven(master):
    theirs = summary_data_from_transaction_data(
        master, "customer_id", "timestamp", "amount", observation_period_end=OBSERVATION_END
    )
    theirs[["recency", "T"]] /= 7
    with pytest.warns(match="exact duplicate"):
        ours = rfm_summary(master, OBSERVATION_END, freq="D", time_unit="W")
    _assert_parity(ours, theirs)


def test_calibration_holdout_equals_lifetimes(master):
    # lifetimes averages holdout spend per row, vipml per purchase period (as for calibration):
    # fed one row per customer and day, lifetimes computes vipml's definition.
    daily = master.groupby(["customer_id", "timestamp"], as_index=False)["amount"].sum()
    theirs = calibration_and_holdout_data(
        daily,
        "customer_id",
        "timestamp",
        CALIBRATION_END,
        OBSERVATION_END,
        monetary_value_col="amount",
    )
    with pytest.warns(match="exact duplicate"):
        ours = calibration_holdout(master, CALIBRATION_END, OBSERVATION_END)
    _assert_parity(ours[theirs.columns], theirs, exact=("frequency_cal", "frequency_holdout"))


def test_holdout_frequency_equals_lifetimes_on_raw_rows(master):
    theirs = calibration_and_holdout_data(
        master,
        "customer_id",
        "timestamp",
        CALIBRATION_END,
        OBSERVATION_END,
        monetary_value_col="amount",
    )
    with pytest.warns(match="exact duplicate"):
        ours = calibration_holdout(master, CALIBRATION_END, OBSERVATION_END)
    np.testing.assert_array_equal(
        ours["frequency_holdout"], theirs.sort_index()["frequency_holdout"]
    )
    one_row_per_day = ~master.duplicated(["customer_id", "timestamp"], keep=False)
    simple = master[one_row_per_day].groupby("customer_id").size().index
    same = pd.Index(simple).difference(master[~one_row_per_day]["customer_id"].unique())
    np.testing.assert_allclose(
        ours.loc[same, "monetary_value_holdout"],
        theirs.loc[same, "monetary_value_holdout"],
        atol=1e-9,
    )


def _hourly_log() -> pd.DataFrame:
    """Purchases at all hours, some on the cutoff day itself (after its midnight)."""
    rng = np.random.default_rng(7)
    n = 400
    stamps = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 40 * 24 * 60, n), "min")
    return pd.DataFrame(
        {
            "customer_id": rng.integers(0, 60, n),
            "timestamp": stamps,
            "amount": rng.gamma(2.0, 10.0, n).round(2),
        }
    )


@pytest.mark.parametrize("cutoff", ["2024-01-29", pd.Timestamp("2024-01-29"), "2024-02-03 00:00"])
@pytest.mark.parametrize(("freq", "time_unit"), [("h", "h"), ("H", "D"), ("s", "h")])
def test_sub_daily_summary_with_a_midnight_cutoff_equals_lifetimes(cutoff, freq, time_unit):
    """A midnight cutoff with hourly (or finer) periods is the instant midnight, as in lifetimes.

    Before, vipml read it as the whole day and measured T 23 hours (for seconds 86,399 seconds)
    further than lifetimes. lifetimes also keeps the rows of the period that starts at
    midnight (00:00-00:59 for hours); the log is built without rows in that hour, where
    vipml (rows after the cutoff never count) and lifetimes must differ.
    """
    tx = _hourly_log()
    tx = tx[~((tx["timestamp"].dt.hour == 0) & tx["timestamp"].dt.minute.between(0, 59))]
    per = {"h": 1.0, "H": 1.0, "D": 24.0, "s": 1 / 3600}
    theirs = summary_data_from_transaction_data(
        tx,
        "customer_id",
        "timestamp",
        "amount",
        observation_period_end=cutoff,
        freq={"H": "h"}.get(freq, freq),
    )
    theirs[["recency", "T"]] *= per[{"H": "h"}.get(freq, freq)] / per[time_unit]
    ours = rfm_summary(tx, cutoff, freq=freq, time_unit=time_unit)
    _assert_parity(ours, theirs)
