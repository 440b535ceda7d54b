"""The data contract: every bad input gets a clear error, and nothing the caller passes changes."""

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from vipml.data.validate import parse_cutoff, prepare_events, prepare_transactions
from vipml.errors import DataValidationError, DataWarning
from vipml.features import rfm_summary


def _summary(tx, **kwargs):
    return rfm_summary(tx, "2024-02-01", **kwargs)


def test_missing_column_names_it_and_the_fix(small_log):
    with pytest.raises(DataValidationError, match=r"'amount'.*Columns\(amount="):
        _summary(small_log.drop(columns="amount"))


def test_missing_mapped_column_names_both_names(small_log):
    from vipml.data import Columns

    with pytest.raises(DataValidationError, match=r"'spend' \(standard column 'amount'\)"):
        _summary(small_log, columns=Columns(amount="spend"))


@pytest.mark.parametrize("bad_id", [None, ""])
def test_null_or_empty_customer_ids(small_log, bad_id):
    tx = small_log.astype({"customer_id": object})
    tx.loc[[1, 4], "customer_id"] = bad_id
    with pytest.raises(DataValidationError) as info:
        _summary(tx)
    message = str(info.value)
    assert "'customer_id'" in message and "2 row(s)" in message
    assert "row=1" in message and "row=4" in message


def test_unparseable_timestamps_show_rows_and_values(small_log):
    tx = small_log.astype({"timestamp": str})
    tx.loc[2, "timestamp"] = "not a date"
    tx.loc[5, "timestamp"] = "2024-13-45"
    with pytest.raises(DataValidationError) as info:
        _summary(tx)
    message = str(info.value)
    assert "'timestamp'" in message and "2 value(s)" in message
    assert "'not a date'" in message and "'2024-13-45'" in message


def test_string_timestamps_parse_like_datetimes(small_log):
    as_text = small_log.astype({"timestamp": str})
    pd.testing.assert_frame_equal(_summary(as_text), _summary(small_log))


def test_mixed_naive_and_aware_timestamps(small_log):
    tx = small_log.astype({"timestamp": str})
    tx.loc[0, "timestamp"] = "2024-01-01T09:00:00+02:00"
    with pytest.raises(DataValidationError, match=r"mixes naive and time-zone aware.*1 aware"):
        _summary(tx)


def test_aware_timestamps_are_converted_to_utc(small_log):
    aware = small_log.assign(timestamp=small_log["timestamp"].dt.tz_localize("Europe/Paris"))
    utc = small_log.assign(timestamp=aware["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None))
    pd.testing.assert_frame_equal(_summary(aware), _summary(utc))


def test_aware_cutoff_with_naive_log_is_refused(small_log):
    with pytest.raises(DataValidationError, match="time-zone aware but the log's timestamps"):
        rfm_summary(small_log, pd.Timestamp("2024-02-01", tz="UTC"))


@pytest.mark.parametrize("bad", [np.nan, None])
def test_missing_amounts(small_log, bad):
    tx = small_log.astype({"amount": object})
    tx.loc[3, "amount"] = bad
    with pytest.raises(DataValidationError, match=r"'amount'.*1 row\(s\).*missing.*row=3"):
        _summary(tx.astype({"amount": float}))


def test_non_numeric_amounts(small_log):
    tx = small_log.astype({"amount": object})
    tx.loc[0, "amount"] = "12,50 EUR"
    with pytest.raises(DataValidationError, match=r"'amount'.*must be numeric.*'12,50 EUR'"):
        _summary(tx)


def test_numeric_strings_are_accepted(small_log):
    pd.testing.assert_frame_equal(_summary(small_log.astype({"amount": str})), _summary(small_log))


def test_infinite_amounts(small_log):
    tx = small_log.assign(amount=small_log["amount"].replace(20.0, np.inf))
    with pytest.raises(DataValidationError, match="infinite"):
        _summary(tx)


def test_empty_frame(small_log):
    with pytest.raises(DataValidationError, match="empty"):
        _summary(small_log.iloc[:0])


def test_cutoff_before_every_transaction(small_log):
    with pytest.raises(DataValidationError, match=r"before every transaction.*2024-01-01 09:00"):
        rfm_summary(small_log, "2023-12-31")


def test_not_a_frame():
    with pytest.raises(DataValidationError, match="must be a DataFrame"):
        rfm_summary([1, 2, 3], "2024-01-01")


def test_negative_amounts_refused_under_error_policy(small_log):
    tx = small_log.assign(amount=small_log["amount"].where(small_log.index != 2, -4.0))
    with pytest.raises(DataValidationError, match=r"negative amounts.*returns='net'"):
        _summary(tx, returns="error")


def test_exact_duplicates_warn_with_their_count(small_log):
    doubled = pd.concat([small_log, small_log.iloc[[0, 3]]], ignore_index=True)
    with pytest.warns(DataWarning, match="2 exact duplicate"):
        _summary(doubled)


def test_rows_after_the_cutoff_are_excluded_not_an_error(small_log):
    later = pd.DataFrame(
        {"customer_id": ["a", "z"], "timestamp": pd.to_datetime(["2025-01-01"] * 2), "amount": 1.0}
    )
    extended = pd.concat([small_log, later], ignore_index=True)
    pd.testing.assert_frame_equal(_summary(extended), _summary(small_log))


@pytest.mark.parametrize(
    "convert",
    [
        lambda df: df,
        pl.from_pandas,
        lambda df: pl.from_pandas(df).lazy(),
        pa.Table.from_pandas,
        duckdb.from_df,
    ],
    ids=["pandas", "polars", "polars-lazy", "pyarrow", "duckdb"],
)
def test_errors_are_the_same_on_every_backend(small_log, convert):
    tx = small_log.assign(amount=small_log["amount"].where(small_log.index != 2, np.nan))
    native = convert(tx)
    with pytest.raises(DataValidationError, match=r"'amount'.*1 row\(s\).*missing"):
        _summary(native)


def test_callers_frame_is_unchanged(small_log):
    tx = small_log.assign(
        timestamp=small_log["timestamp"].astype(str), amount=["1", "2", "3", "4", "5", "6"]
    )
    before = tx.copy(deep=True)
    _summary(tx)
    pd.testing.assert_frame_equal(tx, before)


def test_events_need_event_types():
    events = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "timestamp": pd.to_datetime(["2024-01-01"] * 2),
            "event_type": ["visit", None],
        }
    )
    with pytest.raises(DataValidationError, match=r"'event_type'.*1 row\(s\)"):
        prepare_events(events)


def test_event_values_must_be_finite():
    events = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "timestamp": pd.to_datetime(["2024-01-01"] * 2),
            "event_type": ["review", "visit"],
            "value": [np.inf, np.nan],
        }
    )
    with pytest.raises(DataValidationError, match="infinite values"):
        prepare_events(events)


def test_unknown_returns_policy(small_log):
    with pytest.raises(ValueError, match="returns must be one of"):
        prepare_transactions(small_log, returns="keep")


def test_date_cutoff_includes_its_whole_day():
    assert parse_cutoff("2024-01-31", tz_aware=False) == pd.Timestamp("2024-01-31 23:59:59.999999")
    assert parse_cutoff("2024-01-31 12:00", tz_aware=False) == pd.Timestamp("2024-01-31 12:00")
    assert parse_cutoff(pd.Timestamp("2024-01-31 12:00", tz="Europe/Paris"), tz_aware=True) == (
        pd.Timestamp("2024-01-31 11:00")
    )


@pytest.mark.parametrize("bad", [None, "yesterday", pd.NaT])
def test_bad_cutoffs(bad):
    with pytest.raises(DataValidationError, match="cutoff"):
        parse_cutoff(bad, tz_aware=False)


def test_duplicate_check_can_be_turned_off(small_log, recwarn):
    doubled = pd.concat([small_log, small_log.iloc[[0]]], ignore_index=True)
    _summary(doubled, check_duplicates=False)
    assert not [w for w in recwarn if issubclass(w.category, DataWarning)]


def test_duplicate_warning_points_at_the_callers_line(small_log):
    doubled = pd.concat([small_log, small_log.iloc[[0]]], ignore_index=True)
    with pytest.warns(DataWarning) as record:
        rfm_summary(doubled, "2024-02-01")
    assert record[0].filename == __file__
