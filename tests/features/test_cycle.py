"""Purchase-cycle and transaction-mix features: against plain-pandas references, every backend."""

import copy

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vipml.errors import DataValidationError, DataWarning
from vipml.features.cycle import (
    CYCLE_COLUMNS,
    parse_duration,
    purchase_cycle_features,
    transaction_mix_features,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*exact duplicate row:vipml.errors.DataWarning")
PROPERTY = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
START = pd.Timestamp("2023-01-01")
CHANNELS = ["web", "App", "in store"]
CATEGORIES = ["Books", "music", "DVD & Blu-ray"]
SAFE = {"web": "web", "App": "app", "in store": "in_store", "Books": "books", "music": "music",
        "DVD & Blu-ray": "dvd_blu_ray"}  # fmt: skip
CUTOFFS = st.sampled_from(["2023-03-31", "2023-07-15", "2023-07-15 12:30:00", "2023-10-01"])


@st.composite
def transactions(draw, *, returns=True, orders=None, mix=False):
    """A few customers, a few dozen rows over 2023, second resolution, clustered days."""
    n_rows = draw(st.integers(1, 36))
    n_customers = draw(st.integers(1, 5))
    day_pool = draw(st.lists(st.integers(0, 364), min_size=1, max_size=14))
    rows = draw(
        st.lists(
            st.tuples(
                st.integers(0, n_customers - 1),
                st.sampled_from(day_pool),
                st.integers(0, 86399),
                st.integers(-3000 if returns else 0, 30000),
            ),
            min_size=n_rows,
            max_size=n_rows,
        )
    )
    customer, day, second, cents = (list(column) for column in zip(*rows, strict=True))
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{c}" for c in customer],
            "timestamp": START
            + pd.to_timedelta(np.array(day) * 86400 + np.array(second), unit="s"),
            "amount": np.array(cents, dtype="float64") / 100,
        }
    )
    if orders is None:
        orders = draw(st.booleans())
    if orders:
        order = draw(st.lists(st.integers(0, 6), min_size=n_rows, max_size=n_rows))
        frame["order_id"] = [
            None if o == 0 else f"o{c}-{o}" for c, o in zip(customer, order, strict=True)
        ]
    if mix:
        pick = st.sampled_from([*CHANNELS, None])
        frame["channel"] = draw(st.lists(pick, min_size=n_rows, max_size=n_rows))
        pick = st.sampled_from([*CATEGORIES, None])
        frame["category"] = draw(st.lists(pick, min_size=n_rows, max_size=n_rows))
    return frame


# ---- plain-pandas references -----------------------------------------------------------------


def end_of(cutoff, freq="D"):
    """The last instant a cutoff includes: a midnight is the whole day, unless periods are hours."""
    stamp = pd.Timestamp(cutoff)
    return (
        stamp + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
        if stamp == stamp.normalize() and freq != "H"
        else stamp
    )


def ordinal(stamps, freq):
    return pd.PeriodIndex(pd.DatetimeIndex(stamps), freq={"H": "h"}.get(freq, freq)).asi8


def reference_periods(rows, freq, returns):
    """Purchase periods (customer, period, spend) of some rows under a returns policy."""
    rows = rows[
        ["customer_id", "timestamp", "amount", *(["order_id"] if "order_id" in rows else [])]
    ]
    if returns == "exclude":
        rows = rows[rows["amount"] >= 0]
    elif "order_id" in rows:
        netted = []
        for (customer, _), order in rows[rows["order_id"].notna()].groupby(
            ["customer_id", "order_id"]
        ):
            bought = order[order["amount"] >= 0]
            total = order["amount"].sum()
            if len(bought):
                netted.append((customer, bought["timestamp"].min(), total))
            else:
                netted.append((customer, order["timestamp"].min(), -abs(total)))
        loose = rows[rows["order_id"].isna()][["customer_id", "timestamp", "amount"]]
        netted = pd.DataFrame(netted, columns=["customer_id", "timestamp", "amount"])
        rows = pd.concat([loose, netted.astype(loose.dtypes.to_dict())], ignore_index=True)
    if rows.empty:
        return pd.DataFrame({"customer_id": [], "period": [], "spend": []})
    rows = rows.assign(period=ordinal(rows["timestamp"], freq))
    grouped = rows.groupby(["customer_id", "period"])["amount"].agg(["sum", "max"])
    return grouped[grouped["max"] >= 0]["sum"].rename("spend").reset_index()


def reference_cycle(tx, cutoff, window_days, freq, returns):
    end = end_of(cutoff, freq)
    per_day = {"D": 1.0, "W": 7.0, "H": 1 / 24}[freq]
    rows = tx[tx["timestamp"] <= end]
    periods = reference_periods(rows, freq, returns)
    window = pd.Timedelta(days=window_days)
    recent = reference_periods(rows[rows["timestamp"] > end - window], freq, returns)
    before = rows[(rows["timestamp"] > end - 2 * window) & (rows["timestamp"] <= end - window)]
    before = reference_periods(before, freq, returns)
    cutoff_period = ordinal([end], freq)[0]
    records = {}
    for customer, own in periods.groupby("customer_id"):
        held = np.sort(own["period"].to_numpy())
        gaps = np.diff(held) * per_day
        mean = gaps.mean() if len(gaps) else np.nan
        median = np.median(gaps) if len(gaps) else np.nan
        std = gaps.std(ddof=1) if len(gaps) > 1 else np.nan
        since = (cutoff_period - held[-1]) * per_day
        last = recent[recent["customer_id"] == customer]["spend"]
        prev = before[before["customer_id"] == customer]["spend"]
        raw = rows[rows["customer_id"] == customer]["amount"]
        returned, bought = -raw[raw < 0].sum(), raw[raw > 0].sum()
        share = 0.0 if returned == 0 else (returned / bought if bought > 0 else np.nan)
        records[customer] = {
            "gap_mean_days": mean,
            "gap_median_days": median,
            "gap_std_days": std,
            "gap_cv": std / mean,
            "days_since_last_purchase": since,
            "overdue_ratio": since / median if len(gaps) else np.nan,
            "spend_last_window": last.sum(),
            "spend_prev_window": prev.sum(),
            "spend_trend": last.sum() - prev.sum(),
            "count_last_window": len(last),
            "count_prev_window": len(prev),
            "count_trend": len(last) - len(prev),
            "return_share": share,
            "n_returns": int((raw < 0).sum()),
        }
    frame = pd.DataFrame.from_dict(records, orient="index", columns=list(CYCLE_COLUMNS))
    frame.index.name = "customer_id"
    counts = ["count_last_window", "count_prev_window", "count_trend", "n_returns"]
    return frame.astype(dict.fromkeys(counts, "int64")).astype(
        {c: "float64" for c in CYCLE_COLUMNS if c not in counts}
    )


def reference_mix(tx, cutoff):
    rows = tx[(tx["timestamp"] <= end_of(cutoff)) & (tx["amount"] >= 0)]
    n_rows = rows.groupby("customer_id").size()
    parts = {}
    for key, plural in [("channel", "n_channels"), ("category", "n_categories")]:
        if key not in tx:
            continue
        counts = pd.crosstab(rows["customer_id"], rows[key]).reindex(n_rows.index, fill_value=0)
        for value in counts.columns:
            parts[f"share_{key}_{SAFE.get(value, value)}"] = counts[value] / n_rows
        parts[plural] = (counts > 0).sum(axis=1).astype("int64")
    frame = pd.DataFrame(parts, index=n_rows.index)
    shares = sorted(c for c in frame if c.startswith("share_channel"))
    shares += sorted(c for c in frame if c.startswith("share_category"))
    return frame[shares + [c for c in ("n_channels", "n_categories") if c in frame]]


def has_purchase_by(tx, cutoff, freq="D"):
    return bool((tx["timestamp"] <= end_of(cutoff, freq)).any())


def assert_same(result, expected):
    result = result.sort_index()
    expected = expected.sort_index()
    pd.testing.assert_frame_equal(
        result, expected, check_exact=False, rtol=1e-9, atol=1e-9, check_index_type=False
    )


def assert_close(result, expected):
    """Equal up to float summation order (engines add rows in no fixed order)."""
    pd.testing.assert_frame_equal(
        to_pandas(result), to_pandas(expected), check_exact=False, rtol=1e-12, atol=1e-9
    )


def to_pandas(result):
    if isinstance(result, pd.DataFrame):
        return result
    if isinstance(result, duckdb.DuckDBPyRelation):
        frame = result.df()
    elif isinstance(result, pl.LazyFrame):
        frame = result.collect().to_pandas()
    else:
        frame = result.to_pandas()
    return frame.set_index("customer_id").sort_index()


# ---- purchase-cycle features -------------------------------------------------------------------


@PROPERTY
@given(
    tx=transactions(),
    cutoff=CUTOFFS,
    freq=st.sampled_from(["D", "W", "H"]),
    returns=st.sampled_from(["net", "exclude"]),
    window=st.sampled_from([30, 90]),
)
def test_cycle_features_match_a_pandas_reference(tx, cutoff, freq, returns, window):
    expected = reference_cycle(tx, cutoff, window, freq, returns)
    if not has_purchase_by(tx, cutoff, freq):
        with pytest.raises(DataValidationError, match="before every transaction"):
            purchase_cycle_features(tx, cutoff, window=f"{window}D", freq=freq, returns=returns)
        return
    result = purchase_cycle_features(tx, cutoff, window=f"{window}D", freq=freq, returns=returns)
    assert list(result.columns) == list(CYCLE_COLUMNS)
    assert_same(result, expected)


def test_cycle_features_on_a_hand_made_log():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "a", "b", "b"],
            "timestamp": pd.to_datetime(
                [
                    "2024-01-01 10:00",
                    "2024-01-01 18:00",
                    "2024-01-05 09:00",
                    "2024-01-15 23:00",
                    "2024-01-20 12:00",
                    "2024-01-10 08:00",
                    "2024-01-12 08:00",
                ]
            ),  # fmt: skip
            "amount": [10.0, 5.0, 20.0, 30.0, -6.0, 0.0, -4.0],
        }
    )
    result = purchase_cycle_features(tx, "2024-01-31", window="2W")
    a, b = result.loc["a"], result.loc["b"]
    # a buys on the 1st, 5th and 15th (two rows on the 1st make one period): gaps 4 and 10.
    assert (a["gap_mean_days"], a["gap_median_days"]) == (7.0, 7.0)
    assert a["gap_std_days"] == pytest.approx(np.std([4.0, 10.0], ddof=1))
    assert a["days_since_last_purchase"] == 16.0  # the return on the 20th is no purchase
    assert a["overdue_ratio"] == pytest.approx(16 / 7)
    # last 14 days: (Jan 17, Jan 31] holds only the return; the 14 before hold the 5th, 15th.
    assert (a["count_last_window"], a["count_prev_window"], a["count_trend"]) == (0, 2, -2)
    assert (a["spend_last_window"], a["spend_prev_window"]) == (0.0, 50.0)
    assert a["return_share"] == pytest.approx(6 / 65) and a["n_returns"] == 1
    # b: a zero-value purchase (counts, as in lifetimes) and a return with nothing bought.
    assert np.isnan(b["gap_mean_days"]) and np.isnan(b["overdue_ratio"])
    assert np.isnan(b["return_share"]) and b["n_returns"] == 1


@PROPERTY
@given(
    tx=transactions(),
    later=transactions(),
    cutoff=CUTOFFS,
    freq=st.sampled_from(["D", "W"]),
)
def test_rows_after_the_cutoff_change_nothing(tx, later, cutoff, freq):
    if not has_purchase_by(tx, cutoff):
        return
    end = end_of(cutoff)
    shift = end - later["timestamp"].min() + pd.Timedelta(microseconds=1)
    # later rows: after the cutoff, sharing customers and (possibly) order ids with tx
    later = later.assign(timestamp=later["timestamp"] + shift)
    extended = pd.concat([tx, later], ignore_index=True)
    base = purchase_cycle_features(pl.from_pandas(tx), cutoff, freq=freq)
    grown = purchase_cycle_features(pl.from_pandas(extended), cutoff, freq=freq)
    assert_close(grown, base)


@PROPERTY
@given(tx=transactions(mix=True), cutoff=CUTOFFS, seed=st.integers(0, 2**16))
def test_shuffling_rows_changes_nothing(tx, cutoff, seed):
    if not has_purchase_by(tx, cutoff):
        return
    shuffled = tx.sample(frac=1.0, random_state=seed)
    base = purchase_cycle_features(pl.from_pandas(tx), cutoff)
    assert_close(purchase_cycle_features(pl.from_pandas(shuffled), cutoff), base)
    if (tx["timestamp"] <= end_of(cutoff)).sum() and (tx["amount"] >= 0).any():
        try:
            mix = transaction_mix_features(pl.from_pandas(tx), cutoff)
        except DataValidationError:
            return
        assert_close(transaction_mix_features(pl.from_pandas(shuffled), cutoff), mix)


# ---- transaction mix -----------------------------------------------------------------------------


@PROPERTY
@given(
    tx=transactions(mix=True, orders=False),
    cutoff=CUTOFFS,
    drop=st.sampled_from([None, "channel", "category"]),
)
def test_mix_features_match_a_pandas_reference(tx, cutoff, drop):
    if drop is not None:
        tx = tx.drop(columns=drop)
    if not has_purchase_by(tx, cutoff):
        return
    expected = reference_mix(tx, cutoff)
    result = transaction_mix_features(tx, cutoff)
    assert list(result.columns) == list(expected.columns)
    assert_same(result, expected)


@PROPERTY
@given(tx=transactions(mix=True), later=transactions(mix=True), cutoff=CUTOFFS)
def test_mix_ignores_rows_after_the_cutoff(tx, later, cutoff):
    if not has_purchase_by(tx, cutoff):
        return
    end = end_of(cutoff)
    later = later.assign(
        timestamp=later["timestamp"] - later["timestamp"].min() + end + pd.Timedelta(seconds=1),
        channel="brand new channel",
    )
    base = transaction_mix_features(pl.from_pandas(tx), cutoff)
    extended = pl.from_pandas(pd.concat([tx, later], ignore_index=True))
    assert_close(transaction_mix_features(extended, cutoff), base)


def test_mix_needs_a_channel_or_a_category():
    tx = pd.DataFrame(
        {"customer_id": [1], "timestamp": pd.to_datetime(["2024-01-01"]), "amount": [1.0]}
    )
    with pytest.raises(DataValidationError, match="needs a channel column .* or a category"):
        transaction_mix_features(tx, "2024-01-31")


def test_mix_names_are_snake_case_sorted_and_merged_with_a_warning():
    tx = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]),
            "amount": [1.0, 2.0, 3.0, 4.0],
            "channel": ["Web", "web ", "Mobile App", "Café"],
        }
    )
    with pytest.warns(DataWarning, match="'web'"):
        mix = transaction_mix_features(tx, "2024-01-31")
    assert list(mix.columns) == [
        "share_channel_cafe",
        "share_channel_mobile_app",
        "share_channel_web",
        "n_channels",
    ]
    assert mix.loc[1, "share_channel_web"] == pytest.approx(2 / 3)
    assert mix.loc[1, "n_channels"] == 2


# ---- backends, inputs, errors ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded_log():
    rng = np.random.default_rng(7)
    n = 400
    return pd.DataFrame(
        {
            "customer_id": rng.integers(0, 40, n),
            "timestamp": START + pd.to_timedelta(rng.integers(0, 365 * 86400, n), unit="s"),
            "amount": rng.integers(-2000, 20000, n) / 100,
            "order_id": rng.integers(0, 150, n),
            "channel": rng.choice(["web", "app", "store"], n),
            "category": rng.choice(["a", "b"], n),
        }
    )


@pytest.mark.parametrize(
    "convert",
    [pl.from_pandas, lambda df: pl.from_pandas(df).lazy(), pa.Table.from_pandas, duckdb.from_df],
    ids=["polars", "polars-lazy", "pyarrow", "duckdb"],
)
def test_every_backend_gives_the_pandas_result(seeded_log, convert):
    for build in (
        lambda tx: purchase_cycle_features(tx, "2023-09-30", window="60D", freq="W"),
        lambda tx: transaction_mix_features(tx, "2023-09-30"),
    ):
        expected = build(seeded_log)
        pd.testing.assert_frame_equal(
            to_pandas(build(convert(seeded_log))), expected, check_index_type=False
        )


@pytest.mark.parametrize(
    ("cutoff", "freq", "returns"),
    [
        ("2023-09-30", "D", "net"),
        ("2023-06-15 13:00:00", "W", "net"),
        ("2023-11-01", "H", "exclude"),
    ],
)
def test_a_larger_log_matches_the_references(seeded_log, cutoff, freq, returns):
    expected = reference_cycle(seeded_log, cutoff, 60, freq, returns)
    assert expected["gap_std_days"].notna().sum() > 10
    result = purchase_cycle_features(seeded_log, cutoff, window="60D", freq=freq, returns=returns)
    assert_same(result, expected)
    assert_same(transaction_mix_features(seeded_log, cutoff), reference_mix(seeded_log, cutoff))


def test_the_callers_frame_is_left_unchanged(seeded_log):
    before = copy.deepcopy(seeded_log)
    purchase_cycle_features(seeded_log, "2023-09-30")
    transaction_mix_features(seeded_log, "2023-09-30")
    pd.testing.assert_frame_equal(seeded_log, before)
    polars_log = pl.from_pandas(seeded_log)
    polars_before = polars_log.clone()
    purchase_cycle_features(polars_log, "2023-09-30")
    assert polars_log.equals(polars_before)


def test_window_and_freq_errors(seeded_log):
    with pytest.raises(DataValidationError, match="window=90 has no unit"):
        purchase_cycle_features(seeded_log, "2023-09-30", window=90)
    with pytest.raises(DataValidationError, match="months"):
        purchase_cycle_features(seeded_log, "2023-09-30", window="3M")
    with pytest.raises(DataValidationError, match="freq='M'"):
        purchase_cycle_features(seeded_log, "2023-09-30", freq="M")
    with pytest.raises(DataValidationError, match="before every transaction"):
        purchase_cycle_features(seeded_log, "2020-01-01")


@pytest.mark.parametrize(
    ("given_value", "days"),
    [("39W", 273), ("273D", 273), ("12h", 0.5), ("1.5D", 1.5), (pd.Timedelta(days=3), 3)],
)
def test_durations_need_units(given_value, days):
    assert parse_duration(given_value, "horizon") == pd.Timedelta(days=days)


@pytest.mark.parametrize("bad", [39, 2.5, "39", " 7 ", "3M", "1Y", "0D", "-4D", "soon", None])
def test_bad_durations_are_refused(bad):
    with pytest.raises(DataValidationError, match="horizon"):
        parse_duration(bad, "horizon")
