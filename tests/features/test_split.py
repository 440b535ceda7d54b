"""Calibration/holdout, labels after a cutoff and stacked point-in-time training snapshots."""

import copy

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vipml.errors import DataValidationError
from vipml.features.cycle import purchase_cycle_features
from vipml.features.engagement import engagement_features
from vipml.features.rfm import rfm_summary
from vipml.features.split import calibration_holdout, labels_after, training_snapshots

pytestmark = pytest.mark.filterwarnings("ignore:.*exact duplicate row:vipml.errors.DataWarning")
PROPERTY = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
START = pd.Timestamp("2023-01-01")
HORIZONS = st.sampled_from([("13W", 91), ("90D", 90), ("36h", 1.5)])


@st.composite
def transactions(draw, *, customers=("c0", "c1", "c2", "c3")):
    """A few customers, a few dozen rows over 2023 at second resolution; shared order ids."""
    n_rows = draw(st.integers(1, 48))
    pool = draw(st.lists(st.integers(0, 364), min_size=1, max_size=20))
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(customers),
                st.sampled_from(pool),
                st.integers(0, 86399),
                st.integers(-3000, 30000),
                st.integers(0, 6),
            ),
            min_size=n_rows,
            max_size=n_rows,
        )
    )
    customer, day, second, cents, order = (list(c) for c in zip(*rows, strict=True))
    frame = pd.DataFrame(
        {
            "customer_id": customer,
            "timestamp": START + pd.to_timedelta(np.array(day) * 86400 + second, unit="s"),
            "amount": np.array(cents, dtype="float64") / 100,
            "order_id": [
                None if o == 0 else f"{c}-o{o}" for c, o in zip(customer, order, strict=True)
            ],
        }
    )
    if draw(st.booleans()):  # a late row, so that most horizons have complete labels
        late = {"customer_id": "zz", "timestamp": pd.Timestamp("2023-12-31 12:00"), "amount": 1.0}
        frame = pd.concat([frame, pd.DataFrame([late])], ignore_index=True)
    return frame


@st.composite
def events(draw):
    n_rows = draw(st.integers(1, 30))
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["c0", "c1", "c2", "c9"]),
                st.integers(0, 365 * 86400 - 1),
                st.sampled_from(["visit", "Email Open"]),
                st.sampled_from(["web", "app", None]),
                st.one_of(st.none(), st.integers(-4, 4).map(float)),
            ),
            min_size=n_rows,
            max_size=n_rows,
        )
    )
    customer, second, kind, channel, value = (list(c) for c in zip(*rows, strict=True))
    return pd.DataFrame(
        {
            "customer_id": customer,
            "timestamp": START + pd.to_timedelta(second, unit="s"),
            "event_type": kind,
            "channel": channel,
            "value": np.array([np.nan if v is None else v for v in value]),
        }
    )


# ---- plain-pandas references -----------------------------------------------------------------


def end_of(cutoff, freq="D"):
    """The last instant a cutoff includes: a midnight is the whole day, unless periods are hours."""
    stamp = pd.Timestamp(cutoff)
    if stamp == stamp.normalize() and freq not in ("h", "H"):
        return stamp + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    return stamp


def reference_periods(rows, freq, returns):
    """Purchase periods (customer, period, spend) of some rows, returns netted per order."""
    if returns == "exclude":
        rows = rows[rows["amount"] >= 0]
    else:
        netted = []
        for (customer, _), order in rows[rows["order_id"].notna()].groupby(
            ["customer_id", "order_id"]
        ):
            bought = order[order["amount"] >= 0]
            total = order["amount"].sum()
            stamp = (bought if len(bought) else order)["timestamp"].min()
            netted.append((customer, stamp, total if len(bought) else -abs(total)))
        loose = rows[rows["order_id"].isna()][["customer_id", "timestamp", "amount"]]
        netted = pd.DataFrame(netted, columns=["customer_id", "timestamp", "amount"])
        rows = pd.concat([loose, netted.astype(loose.dtypes.to_dict())], ignore_index=True)
    if rows.empty:
        return pd.DataFrame({"customer_id": [], "period": [], "spend": []})
    periods = pd.PeriodIndex(pd.DatetimeIndex(rows["timestamp"]), freq=freq).asi8
    grouped = rows.assign(period=periods).groupby(["customer_id", "period"])["amount"]
    grouped = grouped.agg(["sum", "max"])
    return grouped[grouped["max"] >= 0]["sum"].rename("spend").reset_index()


def reference_labels(tx, cutoff, horizon_days, freq, returns):
    end = end_of(cutoff, freq)
    customers = reference_periods(tx[tx["timestamp"] <= end], freq, returns)["customer_id"]
    window = (tx["timestamp"] > end) & (tx["timestamp"] <= end + pd.Timedelta(days=horizon_days))
    future = reference_periods(tx[window], freq, returns).groupby("customer_id")["spend"]
    labels = pd.DataFrame(index=pd.Index(sorted(set(customers)), name="customer_id"))
    labels["purchases_next"] = future.size().reindex(labels.index, fill_value=0).astype("int64")
    labels["spend_next"] = future.sum().reindex(labels.index, fill_value=0.0).astype("float64")
    labels["churned"] = labels["purchases_next"] == 0
    return labels


def labels_complete(tx, cutoff, horizon_days):
    horizon_end = end_of(cutoff) + pd.Timedelta(days=horizon_days)
    return horizon_end.normalize() <= tx["timestamp"].max().normalize()


def to_pandas(result, index=("cutoff", "customer_id")):
    if isinstance(result, pd.DataFrame):
        return result
    if isinstance(result, duckdb.DuckDBPyRelation):
        frame = result.df()
    elif isinstance(result, pl.LazyFrame):
        frame = result.collect().to_pandas()
    else:
        frame = result.to_pandas()
    return frame.set_index(list(index)).sort_index()


# ---- labels ------------------------------------------------------------------------------------


@PROPERTY
@given(
    tx=transactions(),
    cutoff=st.sampled_from(["2023-03-31", "2023-06-30 18:00:00", "2023-09-30"]),
    horizon=HORIZONS,
    freq=st.sampled_from(["D", "W"]),
    returns=st.sampled_from(["net", "exclude"]),
)
def test_labels_match_a_pandas_reference(tx, cutoff, horizon, freq, returns):
    text, days = horizon
    if not (tx["timestamp"] <= end_of(cutoff)).any():
        return
    if not labels_complete(tx, cutoff, days):
        with pytest.raises(DataValidationError, match="labels would be incomplete"):
            labels_after(tx, cutoff, text, freq=freq, returns=returns)
        return
    expected = reference_labels(tx, cutoff, days, freq, returns)
    result = labels_after(tx, cutoff, text, freq=freq, returns=returns)
    pd.testing.assert_frame_equal(
        result, expected, check_exact=False, rtol=1e-9, atol=1e-9, check_index_type=False
    )


@pytest.mark.parametrize(
    ("cutoff", "horizon", "days", "freq", "returns"),
    [
        ("2023-03-31", "13W", 91, "D", "net"),
        ("2023-06-30 18:00:00", "90D", 90, "W", "net"),
        ("2023-08-15", "12W", 84, "D", "exclude"),
        ("2023-10-01", "36h", 1.5, "H", "net"),
    ],
)
def test_labels_match_the_reference_on_a_larger_log(logs, cutoff, horizon, days, freq, returns):
    tx = logs[0]
    expected = reference_labels(tx, cutoff, days, {"H": "h"}.get(freq, freq), returns)
    assert (expected["purchases_next"] > 1).sum() > 5 or freq == "H"
    result = labels_after(tx, cutoff, horizon, freq=freq, returns=returns)
    pd.testing.assert_frame_equal(
        result, expected, check_exact=False, rtol=1e-9, atol=1e-9, check_index_type=False
    )


@PROPERTY
@given(tx=transactions(), noise=transactions(customers=("c0", "c1")), seed=st.integers(0, 99))
def test_labels_use_only_the_horizon(tx, noise, seed):
    cutoff, horizon = "2023-05-31", "60D"
    end = end_of(cutoff)
    tx = pd.concat([tx, pd.DataFrame([{"customer_id": "zz", "timestamp": end, "amount": 1.0}])])
    tx = pd.concat(
        [
            tx,
            pd.DataFrame(
                [{"customer_id": "zz", "timestamp": end + pd.Timedelta(days=70), "amount": 1.0}]
            ),
        ]
    )
    base = labels_after(tx, cutoff, horizon)
    rng = np.random.default_rng(seed)
    # Purchases before the cutoff, by customers who already bought, on order ids they reuse
    # after it, and any rows after the horizon: no label may move.
    before = noise.assign(
        timestamp=end - pd.to_timedelta(rng.integers(0, 200 * 86400, len(noise)), unit="s"),
        amount=noise["amount"].abs(),
    )
    before = before[before["customer_id"].isin(base.index)]
    after = noise.assign(timestamp=noise["timestamp"] + pd.Timedelta(days=400))
    changed = pd.concat([tx, before, after], ignore_index=True)
    pd.testing.assert_frame_equal(labels_after(changed, cutoff, horizon), base, rtol=1e-12)


def test_labels_on_a_hand_made_log():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b", "b", "c"],
            "timestamp": pd.to_datetime(
                [
                    "2024-01-10",
                    "2024-02-05",
                    "2024-02-06",
                    "2024-03-20",
                    "2024-01-15",
                    "2024-02-10",
                    "2024-02-01",
                ]
            ),  # fmt: skip
            "amount": [50.0, 20.0, -50.0, 9.0, 10.0, -10.0, 5.0],
            "order_id": ["o1", "o2", "o1", "o3", "o4", "o4", "o5"],
        }
    )
    labels = labels_after(tx, "2024-01-31", "4W")
    # a: the purchase on Feb 5 counts; the return of January's order o1 is a return in the
    # horizon (rows before the cutoff are not looked at), alone on its day: not a purchase.
    assert labels.loc["a"].tolist() == [1, 20.0, False]
    # b only returns in the horizon; c's first purchase is after the cutoff: not a customer yet.
    assert labels.loc["b"].tolist() == [0, 0.0, True]
    assert list(labels.index) == ["a", "b"]
    with pytest.raises(DataValidationError, match=r"'2024-03-01'.*2024-03-20"):
        labels_after(tx, "2024-03-01", "4W")


# ---- snapshots ---------------------------------------------------------------------------------


def single_cutoff_rows(tx, ev, cutoff, horizon, layout_columns):
    """The snapshot rows of one cutoff, assembled from the single-cutoff builders."""
    fast = pl.from_pandas(tx)  # polars: quicker than pandas through DuckDB, same results
    parts = [
        to_pandas(rfm_summary(fast, cutoff, freq="D", time_unit="D"), ["customer_id"]),
        to_pandas(purchase_cycle_features(fast, cutoff, window="30D"), ["customer_id"]),
    ]
    index = parts[0].index
    if ev is not None:
        engagement = pd.DataFrame(index=index, columns=layout_columns, dtype="float64")
        if (pd.to_datetime(ev["timestamp"]) <= end_of(cutoff)).any():
            built = engagement_features(pl.from_pandas(ev), cutoff)
            built = to_pandas(built, ["customer_id"]).reindex(index)
            engagement[built.columns] = built
        counts = [c for c in layout_columns if c.startswith("n_")]
        engagement[counts] = engagement[counts].fillna(0).astype("int64")
        parts.append(engagement)
    parts.append(to_pandas(labels_after(fast, cutoff, horizon), ["customer_id"]))
    rows = pd.concat(parts, axis=1)
    rows.index = pd.MultiIndex.from_product(
        [[pd.Timestamp(cutoff)], index], names=["cutoff", "customer_id"]
    )
    return rows


@settings(PROPERTY, max_examples=10)
@given(tx=transactions(), ev=st.one_of(st.none(), events()))
def test_snapshots_equal_the_single_cutoff_builders(tx, ev):
    cutoffs = ["2023-03-31", "2023-05-15", "2023-06-30"]
    if not (tx["timestamp"] <= end_of(cutoffs[0])).any() or not labels_complete(
        tx, cutoffs[-1], 28
    ):
        return
    snaps = training_snapshots(
        pl.from_pandas(tx),
        None if ev is None else pl.from_pandas(ev),
        cutoffs=cutoffs,
        horizon="4W",
        window="30D",
    )
    snaps = to_pandas(snaps)
    engagement_columns = list(snaps.columns[18:-3])
    expected = pd.concat([single_cutoff_rows(tx, ev, c, "4W", engagement_columns) for c in cutoffs])
    assert list(snaps.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(
        snaps, expected, check_exact=False, rtol=1e-9, atol=1e-9, check_index_type=False
    )


@pytest.fixture(scope="module")
def logs():
    rng = np.random.default_rng(3)
    n = 600
    tx = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 50, n),
            "timestamp": START + pd.to_timedelta(rng.integers(0, 365 * 86400, n), unit="s"),
            "amount": rng.integers(-2000, 20000, n) / 100,
            "order_id": rng.integers(0, 250, n),
        }
    )
    ev = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 60, n),
            "timestamp": START + pd.to_timedelta(rng.integers(0, 365 * 86400, n), unit="s"),
            "event_type": rng.choice(["visit", "open", "ticket"], n),
            "channel": rng.choice(["web", "app", None], n),
            "value": np.where(rng.random(n) < 0.4, np.nan, rng.integers(-3, 4, n) / 2),
        }
    )
    return tx, ev


SNAPSHOT_ARGS = {"cutoffs": ["2023-04-30", "2023-06-30", "2023-08-31"], "horizon": "16W"}


@pytest.fixture(scope="module")
def pandas_snapshots(logs):
    return training_snapshots(*logs, **SNAPSHOT_ARGS)


@pytest.mark.parametrize(
    "convert",
    [pl.from_pandas, lambda df: pl.from_pandas(df).lazy(), pa.Table.from_pandas, duckdb.from_df],
    ids=["polars", "polars-lazy", "pyarrow", "duckdb"],
)
def test_every_backend_gives_the_pandas_result(logs, pandas_snapshots, convert):
    tx, ev = logs
    expected = pandas_snapshots
    assert expected.index.names == ["cutoff", "customer_id"]
    assert expected.index.is_monotonic_increasing
    result = to_pandas(training_snapshots(convert(tx), convert(ev), **SNAPSHOT_ARGS))
    pd.testing.assert_frame_equal(result, expected, check_index_type=False)


def test_events_of_another_kind_are_moved_to_the_transactions_engine(logs, pandas_snapshots):
    tx, ev = logs
    expected = pandas_snapshots
    mixed = training_snapshots(pl.from_pandas(tx), ev, **SNAPSHOT_ARGS)
    assert isinstance(mixed, pl.DataFrame)
    pd.testing.assert_frame_equal(to_pandas(mixed), expected, check_index_type=False)


def test_customers_without_events_get_zero_counts_and_nan(logs):
    tx, ev = logs
    snaps = training_snapshots(tx, ev[ev["customer_id"] != 7], **SNAPSHOT_ARGS)
    row = snaps.xs(7, level="customer_id").iloc[-1]
    assert row["n_events_90d"] == 0 and row["n_channel_web"] == 0 and row["n_channels"] == 0
    assert np.isnan(row["days_since_last_event"]) and np.isnan(row["value_mean"])
    without = training_snapshots(pl.from_pandas(tx), **SNAPSHOT_ARGS)
    assert "n_events_90d" not in without.columns and len(without) == len(snaps)


def test_the_callers_frames_are_left_unchanged(logs):
    tx, ev = logs
    before = copy.deepcopy(logs)
    training_snapshots(tx, ev, **SNAPSHOT_ARGS)
    labels_after(tx, "2023-06-30", "8W")
    pd.testing.assert_frame_equal(tx, before[0])
    pd.testing.assert_frame_equal(ev, before[1])


@pytest.mark.parametrize("horizon", [39, 273.0, "39", np.int64(12)])
def test_a_horizon_needs_a_unit(logs, horizon):
    with pytest.raises(DataValidationError, match="has no unit"):
        training_snapshots(logs[0], cutoffs=["2023-06-30"], horizon=horizon)
    with pytest.raises(DataValidationError, match="has no unit"):
        labels_after(logs[0], "2023-06-30", horizon)


def test_incomplete_labels_name_the_cutoff_and_the_last_date(logs):
    tx = logs[0]
    last = tx["timestamp"].max().date()
    with pytest.raises(
        DataValidationError, match=rf"'2023-11-30'.*after the last transaction \({last}\)"
    ):
        training_snapshots(tx, cutoffs=["2023-06-30", "2023-11-30"], horizon="8W")
    # a horizon ending on the day of the last row is complete
    cutoff = (pd.Timestamp(last) - pd.Timedelta(days=56)).date()
    assert len(labels_after(tx, cutoff, "8W")) > 0


@pytest.mark.parametrize(
    ("cutoffs", "message"),
    [
        (["2023-06-30", "2023-03-31"], r"increasing order.*\['2023-03-31', '2023-06-30'\]"),
        (["2023-03-31", "2023-03-31"], "repeat"),
        ("2023-03-31", "must be a list"),
        ([], "empty"),
        (["2020-01-01"], "before every transaction"),
    ],
)
def test_bad_cutoffs_are_refused(logs, cutoffs, message):
    with pytest.raises(DataValidationError, match=message):
        training_snapshots(logs[0], cutoffs=cutoffs, horizon="4W")


# ---- calibration / holdout (unchanged behaviour) -----------------------------------------------


def test_calibration_holdout_still_splits_at_the_calibration_end():
    tx = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 1, 1],
            "timestamp": pd.to_datetime(
                ["2024-01-01", "2024-01-03", "2024-01-02", "2024-01-09", "2024-01-10"]
            ),
            "amount": [10.0, 20.0, 5.0, 8.0, 4.0],
        }
    )
    split = calibration_holdout(tx, "2024-01-05", "2024-01-12")
    assert split.loc[1, ["frequency_cal", "frequency_holdout"]].tolist() == [1.0, 2.0]
    assert split.loc[1, "monetary_value_holdout"] == 6.0
    assert split.loc[2, ["frequency_holdout", "duration_holdout"]].tolist() == [0.0, 7.0]
