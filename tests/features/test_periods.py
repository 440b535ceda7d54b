"""Period spellings: pandas' aliases of today, quarters and years, and the cutoff instant."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from vipml.errors import DataValidationError
from vipml.features import calibration_holdout, rfm_summary
from vipml.features._periods import FREQ_ALIASES, canonical_freq, cutoff_instant, period_of

TX = pd.DataFrame(
    {
        "customer_id": ["a", "a", "a", "b", "b", "c"],
        "timestamp": pd.to_datetime(
            [
                "2023-01-05 10:20:30",
                "2023-04-17 08:00:00",
                "2023-11-30 23:10:00",
                "2023-02-01 00:30:00",
                "2023-02-01 05:45:10",
                "2023-12-31 12:00:00",
            ]
        ),
        "amount": [10.0, 20.0, 5.0, 7.0, 3.0, 1.0],
    }
)


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [("h", "H"), ("H", "H"), ("ME", "M"), ("MS", "M"), ("QE", "Q"), ("YE", "Y"), ("W-SUN", "W")],
)
def test_aliases_give_the_same_summary_as_the_canonical_code(alias, canonical):
    pd.testing.assert_frame_equal(
        rfm_summary(TX, "2024-01-31", freq=alias), rfm_summary(TX, "2024-01-31", freq=canonical)
    )


@pytest.mark.parametrize("freq", ["s", "min", "h", "D", "W", "M", "Q", "Y"])
def test_periods_are_those_of_pandas(freq):
    stamps = pd.to_datetime(
        ["1969-12-31 23:59:59", "1970-01-01 00:00:00", "2023-02-28 13:45:10", "2024-12-31 23:00:01"]
    )
    expected = pd.PeriodIndex(stamps, freq=freq)
    origin = pd.Period("1970-01-01", freq=freq)
    ours = [period_of(stamp.to_pydatetime(), canonical_freq(freq)) for stamp in stamps]
    assert ours == [(p - origin).n for p in expected]


def test_quarters_and_years_count_whole_calendar_periods():
    summary = rfm_summary(TX, "2023-12-31", freq="QE")
    assert summary.loc["a", ["frequency", "recency", "T"]].tolist() == [2.0, 3.0, 3.0]
    assert summary.loc["b", "frequency"] == 0.0
    months = rfm_summary(TX, "2023-12-31", freq="Q", time_unit="ME")
    assert months.loc["a", "T"] == 9.0  # three quarters
    with pytest.raises(DataValidationError, match="no exact ratio"):
        rfm_summary(TX, "2023-12-31", freq="Y", time_unit="D")


def test_unknown_spellings_say_what_is_accepted():
    with pytest.raises(DataValidationError, match="'h' \\(hours\\)"):
        rfm_summary(TX, "2024-01-31", freq="hour")
    with pytest.raises(DataValidationError, match="other day than Sunday"):
        rfm_summary(TX, "2024-01-31", freq="W-MON")
    assert set(FREQ_ALIASES.values()) == {"s", "min", "H", "D", "W", "M", "Q", "Y"}


def test_a_midnight_cutoff_is_the_whole_day_only_for_daily_or_longer_periods():
    assert cutoff_instant("2023-02-01", tz_aware=False, freq="D") == dt.datetime(
        2023, 2, 1, 23, 59, 59, 999999
    )
    assert cutoff_instant("2023-02-01", tz_aware=False, freq="h") == dt.datetime(2023, 2, 1)
    assert cutoff_instant("2023-02-01 06:00", tz_aware=False, freq="D") == dt.datetime(
        2023, 2, 1, 6
    )
    daily = rfm_summary(TX, "2023-02-01", freq="D")
    hourly = rfm_summary(TX, "2023-02-01", freq="h")
    # b's rows at 00:30 and 05:45 on the cutoff day count for a daily summary only
    assert "b" in daily.index and "b" not in hourly.index
    # a bought first in the hour from 2023-01-05 10:00; T runs to the hour starting at midnight
    assert hourly.loc["a", "T"] == 27 * 24 - 10


def test_calibration_holdout_reads_aliases_and_midnights_like_rfm_summary():
    split = calibration_holdout(TX, "2023-06-30", "2023-12-31", freq="h", time_unit="D")
    summary = rfm_summary(TX, "2023-06-30", freq="h", time_unit="D")
    np.testing.assert_allclose(split.loc[summary.index, "T_cal"], summary["T"])
    assert split["duration_holdout"].iloc[0] == 184.0  # 2023-06-30 00:00 to 2023-12-31 00:00
