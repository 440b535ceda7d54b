"""Every feature builder on a PySpark DataFrame equals the pandas path and stays on Spark."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from pyspark.sql import DataFrame as SparkDataFrame

from vipml.errors import DataValidationError
from vipml.features import (
    calibration_holdout,
    engagement_features,
    labels_after,
    purchase_cycle_features,
    rfm_scores,
    rfm_segments,
    rfm_summary,
    training_snapshots,
    transaction_mix_features,
)

from .conftest import spark_to_pandas, to_spark

# PySpark warns that it does not support pandas 3 yet; its own conversions still work here.
pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore:.*exact duplicate row:vipml.errors.DataWarning"),
]

BUILDERS = {
    "rfm_summary": lambda tx, ev: rfm_summary(tx, "2023-03-31", freq="W", time_unit="W"),
    "rfm_summary_months": lambda tx, ev: rfm_summary(tx, "2023-03-31", freq="M"),
    "rfm_summary_exclude": lambda tx, ev: rfm_summary(tx, "2023-03-31", returns="exclude"),
    "purchase_cycle_features": lambda tx, ev: purchase_cycle_features(tx, "2023-03-31"),
    "transaction_mix_features": lambda tx, ev: transaction_mix_features(tx, "2023-03-31"),
    "engagement_features": lambda tx, ev: engagement_features(ev, "2023-03-31"),
    "calibration_holdout": lambda tx, ev: calibration_holdout(tx, "2022-12-31", "2023-06-30"),
    "labels_after": lambda tx, ev: labels_after(tx, "2023-01-31", "13W"),
}


@pytest.fixture(scope="module")
def shop_frames(spark, shop_log, shop):
    return shop_log, shop.events, to_spark(spark, shop_log), to_spark(spark, shop.events)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_spark_equals_pandas_on_the_simulated_shop(name, shop_frames):
    tx, ev, stx, sev = shop_frames
    expected = BUILDERS[name](tx, ev)
    result = BUILDERS[name](stx, sev)
    assert isinstance(result, SparkDataFrame)
    got = spark_to_pandas(result)
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_training_snapshots_on_spark_equal_pandas(shop_frames):
    tx, ev, stx, sev = shop_frames
    kwargs = {"cutoffs": ["2022-12-31", "2023-02-28"], "horizon": "8W", "window": "60D"}
    expected = training_snapshots(tx, ev, **kwargs)
    result = training_snapshots(stx, sev, **kwargs)
    assert isinstance(result, SparkDataFrame)
    got = spark_to_pandas(result, index=("cutoff", "customer_id"))
    assert len(got) > 150
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_rfm_summary_on_cdnow_equals_pandas(spark, cdnow):
    expected = rfm_summary(cdnow, "1997-09-30", freq="D", time_unit="W")
    got = spark_to_pandas(rfm_summary(to_spark(spark, cdnow), "1997-09-30", time_unit="W"))
    assert len(got) == 23570
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_naive_spark_timestamps_give_the_same_summary(spark, shop_log):
    """TIMESTAMP_NTZ columns (naive) and session-UTC TIMESTAMP columns agree."""
    stx = to_spark(spark, shop_log)
    naive = stx.withColumn("timestamp", stx["timestamp"].cast("timestamp_ntz"))
    assert naive.schema["timestamp"].dataType.typeName() == "timestamp_ntz"
    expected = rfm_summary(shop_log, "2023-03-31")
    pd.testing.assert_frame_equal(
        spark_to_pandas(rfm_summary(naive, "2023-03-31")), expected, check_dtype=False
    )


def test_dates_before_1970_and_leap_days_count_like_pandas(spark):
    """Calendar-field day numbers (Spark's path) match pandas across epochs and leap days."""
    stamps = ["1968-02-28 23:00", "1968-02-29 01:00", "1969-12-31 23:59", "1970-01-01 00:00",
              "2000-02-29 12:00", "2000-03-01 00:00", "2100-03-01 06:00"]  # fmt: skip
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "b", "c", "c", "c"],
            "timestamp": pd.to_datetime(stamps),
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        }
    )
    for freq in ("H", "W"):
        expected = rfm_summary(tx, "2100-12-31", freq=freq)
        got = spark_to_pandas(rfm_summary(to_spark(spark, tx), "2100-12-31", freq=freq))
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_scores_and_segments_accept_spark_summaries(spark, shop_log):
    expected = rfm_segments(rfm_summary(shop_log, "2023-03-31"))
    summary = rfm_summary(to_spark(spark, shop_log), "2023-03-31")
    scores = rfm_scores(summary)
    segments = rfm_segments(summary)
    assert isinstance(scores, SparkDataFrame)
    assert isinstance(segments, SparkDataFrame)
    got = spark_to_pandas(segments)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    pd.testing.assert_frame_equal(
        spark_to_pandas(scores), expected[["R", "F", "M", "RFM"]], check_dtype=False
    )


def _log(spark, **changes):
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-03"]),
            "amount": [10.0, 20.0, 5.0],
        }
    ).assign(**changes)
    return to_spark(spark, frame)


def test_missing_column_is_named(spark):
    with pytest.raises(DataValidationError, match=r"missing required column\(s\) 'amount'"):
        rfm_summary(_log(spark).drop("amount"), "2024-01-31")


def test_null_and_empty_ids_are_counted_with_examples(spark):
    log = _log(spark, customer_id=["a", None, ""])
    with pytest.raises(
        DataValidationError, match=r"'customer_id' .* 2 row\(s\) with null or empty"
    ):
        rfm_summary(log, "2024-01-31")


def test_missing_and_infinite_amounts_are_refused(spark):
    with pytest.raises(DataValidationError, match=r"'amount' .* 1 row\(s\) with missing"):
        rfm_summary(_log(spark, amount=[1.0, None, 2.0]), "2024-01-31")
    with pytest.raises(DataValidationError, match=r"'amount' .* 1 row\(s\) with infinite"):
        rfm_summary(_log(spark, amount=[1.0, float("inf"), 2.0]), "2024-01-31")


def test_string_amounts_and_returns_policy_are_refused(spark):
    log = _log(spark)
    with pytest.raises(DataValidationError, match="'amount' .* must be numeric"):
        rfm_summary(log.withColumn("amount", log["amount"].cast("string")), "2024-01-31")
    with pytest.raises(DataValidationError, match=r"1 row\(s\) with negative amounts"):
        rfm_summary(_log(spark, amount=[1.0, -2.0, 3.0]), "2024-01-31", returns="error")


def test_cutoff_before_the_log_and_incomplete_labels_are_refused(spark):
    log = _log(spark)
    with pytest.raises(DataValidationError, match="before every transaction"):
        rfm_summary(log, "2023-12-31")
    with pytest.raises(DataValidationError, match="labels would be incomplete"):
        labels_after(log, "2024-01-02", "2W")


def test_the_callers_frame_is_untouched(spark, shop_log):
    stx = to_spark(spark, shop_log)
    columns, schema = list(stx.columns), stx.schema
    rfm_summary(stx, dt.date(2023, 3, 31))
    assert list(stx.columns) == columns
    assert stx.schema == schema
