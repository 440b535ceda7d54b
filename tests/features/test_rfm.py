"""RFM summary, scores and segments: lifetimes' definitions, on every backend, at any cutoff."""

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lifetimes.utils import summary_data_from_transaction_data

from vipml.data import load_cdnow
from vipml.errors import DataValidationError
from vipml.features import SegmentRule, rfm_scores, rfm_segments, rfm_summary
from vipml.testing import transaction_logs

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CUTOFF = "2023-02-15"


def _lifetimes(tx, cutoff, freq):
    out = summary_data_from_transaction_data(
        tx, "customer_id", "timestamp", "amount", observation_period_end=cutoff, freq=freq
    )
    out.index.name = "customer_id"
    return out


@PROPERTY
@given(
    tx=transaction_logs(),
    freq_and_cutoff=st.sampled_from(
        # lifetimes keeps a whole period at the cutoff: compare where periods end at the cutoff.
        [("D", "2023-02-15"), ("W", "2023-02-19"), ("H", "2023-02-15 13:59:59.999999")]
    ),
)
def test_equals_lifetimes_on_random_logs(tx, freq_and_cutoff):
    freq, cutoff = freq_and_cutoff
    if (tx["timestamp"] <= pd.Timestamp(cutoff)).sum() == 0:
        return  # nothing to summarise: tested in test_validate
    ours = rfm_summary(tx, cutoff, freq=freq)
    theirs = _lifetimes(tx, cutoff, {"H": "h"}.get(freq, freq)).sort_index()
    pd.testing.assert_frame_equal(ours, theirs, check_exact=False, rtol=1e-12, atol=1e-9)


@PROPERTY
@given(tx=transaction_logs(allow_returns=True))
def test_recency_within_zero_and_T_and_frequency_bounded_by_periods(tx):
    try:
        summary = rfm_summary(tx, CUTOFF)
    except DataValidationError:
        return  # every row after the cutoff
    assert (summary["recency"] >= 0).all()
    assert (summary["recency"] <= summary["T"]).all()
    before = tx[tx["timestamp"] <= pd.Timestamp(CUTOFF) + pd.Timedelta(days=1)]
    distinct_days = before.groupby("customer_id")["timestamp"].apply(
        lambda s: s.dt.floor("D").nunique()
    )
    assert (summary["frequency"] <= distinct_days.reindex(summary.index) - 1).all()


@PROPERTY
@given(tx=transaction_logs(allow_returns=True, with_order_ids=True), extra=transaction_logs())
def test_rows_after_the_cutoff_change_nothing(tx, extra):
    later = extra.assign(timestamp=extra["timestamp"] + pd.Timedelta(days=800))
    try:
        base = rfm_summary(tx, CUTOFF, freq="W", time_unit="D")
    except DataValidationError:
        return
    later["order_id"] = "late"
    extended = pd.concat([tx, later], ignore_index=True)
    pd.testing.assert_frame_equal(rfm_summary(extended, CUTOFF, freq="W", time_unit="D"), base)


@PROPERTY
@given(tx=transaction_logs(allow_returns=True, with_order_ids=True), seed=st.integers(0, 2**16))
def test_shuffling_rows_changes_nothing(tx, seed):
    shuffled = tx.sample(frac=1.0, random_state=seed)
    try:
        base = rfm_summary(tx, "2024-12-31")
    except DataValidationError:
        return
    pd.testing.assert_frame_equal(rfm_summary(shuffled, "2024-12-31"), base)


def test_returns_net_into_their_order_and_never_count_as_purchases():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b"],
            "timestamp": pd.to_datetime(
                ["2024-01-01", "2024-01-05", "2024-01-09", "2024-01-12", "2024-01-02"]
            ),
            "amount": [10.0, 30.0, -10.0, -5.0, 8.0],
            "order_id": ["o1", "o2", "o2", None, "o3"],
        }
    )
    net = rfm_summary(tx, "2024-01-31")
    # o2 (30 - 10) keeps its purchase day; the loose return on the 12th is not a purchase.
    assert net.loc["a", "frequency"] == 1.0
    assert net.loc["a", "recency"] == 4.0
    assert net.loc["a", "monetary_value"] == 20.0
    excluded = rfm_summary(tx, "2024-01-31", returns="exclude")
    assert excluded.loc["a", "monetary_value"] == 30.0


def test_return_only_periods_are_not_purchases_without_order_ids(small_log):
    tx = pd.concat(
        [
            small_log,
            pd.DataFrame(
                {
                    "customer_id": ["a"],
                    "timestamp": pd.to_datetime(["2024-01-20"]),
                    "amount": [-5.0],
                }
            ),
        ],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(
        rfm_summary(tx, "2024-01-31"), rfm_summary(small_log, "2024-01-31")
    )


def test_months_count_calendar_months_only(small_log):
    monthly = rfm_summary(small_log, "2024-03-15", freq="M")
    assert monthly.loc["a", "T"] == 2.0
    with pytest.raises(DataValidationError, match="no exact ratio"):
        rfm_summary(small_log, "2024-03-15", freq="M", time_unit="W")
    assert rfm_summary(small_log, "2024-03-15", freq="Q").loc["a", "T"] == 0.0  # quarters too
    with pytest.raises(DataValidationError, match="freq='2W'"):
        rfm_summary(small_log, "2024-03-15", freq="2W")


@pytest.fixture(scope="module")
def cdnow_sample():
    return load_cdnow(sample=True).drop_duplicates()


@pytest.mark.parametrize(
    "convert",
    [pl.from_pandas, lambda df: pl.from_pandas(df).lazy(), pa.Table.from_pandas, duckdb.from_df],
    ids=["polars", "polars-lazy", "pyarrow", "duckdb"],
)
def test_every_backend_gives_the_pandas_result(cdnow_sample, convert):
    expected = rfm_summary(cdnow_sample, "1997-09-30", time_unit="W")
    result = rfm_summary(convert(cdnow_sample), "1997-09-30", time_unit="W")
    frame = pl.DataFrame(result.collect()) if isinstance(result, pl.LazyFrame) else result
    if isinstance(result, duckdb.DuckDBPyRelation):
        frame = result.df()
    as_pandas = frame.to_pandas() if not isinstance(frame, pd.DataFrame) else frame
    as_pandas = as_pandas.sort_values("customer_id").set_index("customer_id")
    pd.testing.assert_frame_equal(as_pandas, expected, check_index_type=False)


def test_backends_keep_the_callers_type(cdnow_sample):
    assert isinstance(rfm_summary(pl.from_pandas(cdnow_sample), "1997-09-30"), pl.DataFrame)
    assert isinstance(rfm_summary(pa.Table.from_pandas(cdnow_sample), "1997-09-30"), pa.Table)
    lazy = rfm_summary(duckdb.from_df(cdnow_sample), "1997-09-30")
    assert isinstance(lazy, duckdb.DuckDBPyRelation)


# ---- scores and segments -------------------------------------------------------------------


@PROPERTY
@given(tx=transaction_logs(max_customers=12, max_rows=60), seed=st.integers(0, 1000))
def test_scores_are_order_invariant_and_share_ties(tx, seed):
    summary = rfm_summary(tx, "2024-12-31")
    scores = rfm_scores(summary)
    reordered = rfm_scores(summary.sample(frac=1.0, random_state=seed))
    pd.testing.assert_frame_equal(reordered.loc[scores.index], scores)
    assert scores[["R", "F", "M"]].isin(range(1, 6)).all().all()
    for column, score in [("frequency", "F"), ("monetary_value", "M")]:
        assert (scores.groupby(summary[column])[score].nunique() == 1).all()
        ordered = scores[score].groupby(summary[column]).first().sort_index()
        assert ordered.is_monotonic_increasing


def test_scores_split_into_quantiles():
    summary = pd.DataFrame(
        {
            "frequency": np.arange(100.0),
            "recency": np.zeros(100),
            "T": np.arange(100.0),
            "monetary_value": np.arange(100.0)[::-1],
        }
    )
    scores = rfm_scores(summary)
    assert (scores["F"].value_counts() == 20).all()
    assert scores["R"].iloc[0] == 5 and scores["M"].iloc[0] == 5


def test_every_default_grid_cell_has_a_name():
    grid = pd.DataFrame(
        [(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)],
        columns=["R", "F", "M"],
    )
    named = rfm_segments(grid)
    assert named["segment"].notna().all()
    assert set(named["segment"]) == {
        "Champions", "Loyal", "Potential loyalists", "New", "Promising", "Need attention",
        "About to sleep", "Can't lose them", "At risk", "Lost", "Hibernating",
    }  # fmt: skip
    assert named.query("R == 5 and F == 5")["segment"].eq("Champions").all()
    assert named.query("R == 1 and F == 1")["segment"].eq("Lost").all()


def test_custom_rules_and_uncovered_customers():
    grid = pd.DataFrame({"R": [5, 1], "F": [5, 1], "M": [3, 3]})
    rules = [SegmentRule("Best", recency=(4, 5), frequency=(4, 5))]
    with pytest.raises(DataValidationError, match=r"1 customer\(s\) match no segment rule"):
        rfm_segments(grid, rules=rules)
    named = rfm_segments(grid, rules=[*rules, SegmentRule("Other")])
    assert named["segment"].tolist() == ["Best", "Other"]


def test_segments_of_polars_come_back_as_polars(cdnow_sample):
    summary = rfm_summary(pl.from_pandas(cdnow_sample), "1997-09-30")
    segments = rfm_segments(summary)
    assert isinstance(segments, pl.DataFrame)
    assert segments.columns == ["customer_id", "R", "F", "M", "RFM", "segment"]
