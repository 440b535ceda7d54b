"""Engagement features: against a plain-pandas reference, every backend, point in time."""

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
from vipml.features.engagement import engagement_features

pytestmark = pytest.mark.filterwarnings("ignore:.*exact duplicate row:vipml.errors.DataWarning")
PROPERTY = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
START = pd.Timestamp("2023-01-01")
EVENT_TYPES = {"visit": "visit", "Email Open": "email_open", "support_ticket": "support_ticket"}
CHANNELS = {"web": "web", "App": "app", "e-mail": "e_mail"}
CUTOFFS = st.sampled_from(["2023-03-31", "2023-07-15", "2023-07-15 12:30:00", "2023-12-31"])
WINDOWS = st.sampled_from(
    [(("7D", "30D", "90D"), ("7d", "30d", "90d")), (("2W", "36h"), ("14d", "36h"))]
)


@st.composite
def event_logs(draw, *, channel=None, value=None):
    """A few customers, a few dozen events over 2023 at second resolution, with time ties."""
    n_rows = draw(st.integers(1, 36))
    n_customers = draw(st.integers(1, 5))
    pool = draw(st.lists(st.integers(0, 365 * 86400 - 1), min_size=1, max_size=20))
    rows = draw(
        st.lists(
            st.tuples(
                st.integers(0, n_customers - 1),
                st.sampled_from(pool),
                st.sampled_from(list(EVENT_TYPES)),
                st.sampled_from([*CHANNELS, None]),
                st.one_of(st.none(), st.integers(-6, 6).map(lambda v: v / 2)),
            ),
            min_size=n_rows,
            max_size=n_rows,
        )
    )
    customer, second, kind, channels, values = (list(c) for c in zip(*rows, strict=True))
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{c}" for c in customer],
            "timestamp": START + pd.to_timedelta(second, unit="s"),
            "event_type": kind,
        }
    )
    if channel if channel is not None else draw(st.booleans()):
        frame["channel"] = channels
    if value if value is not None else draw(st.booleans()):
        frame["value"] = np.array([np.nan if v is None else v for v in values], dtype="float64")
    return frame


def end_of(cutoff):
    stamp = pd.Timestamp(cutoff)
    if stamp == stamp.normalize():
        return stamp + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    return stamp


def reference_engagement(events, cutoff, windows, labels, names=None):
    """Per-customer engagement computed row by row in pandas and numpy."""
    names = names or {**EVENT_TYPES, **CHANNELS}
    end = end_of(cutoff)
    rows = events[events["timestamp"] <= end]
    spans = [pd.Timedelta(w) for w in windows]
    types = sorted(rows["event_type"].unique(), key=names.get)
    channels = None
    if "channel" in rows:
        channels = sorted(rows["channel"].dropna().unique(), key=names.get)
    records = {}
    for customer, own in rows.groupby("customer_id"):
        record = {}
        for kind in types:
            for span, label in zip(spans, labels, strict=True):
                hits = (own["event_type"] == kind) & (own["timestamp"] > end - span)
                record[f"n_{names[kind]}_{label}"] = int(hits.sum())
        for span, label in zip(spans, labels, strict=True):
            record[f"n_events_{label}"] = int((own["timestamp"] > end - span).sum())
        record["days_since_last_event"] = float(
            (end.normalize() - own["timestamp"].max().normalize()).days
        )
        record["days_since_first_event"] = float(
            (end.normalize() - own["timestamp"].min().normalize()).days
        )
        if channels is not None:
            counts = np.array([(own["channel"] == c).sum() for c in channels])
            for c, n in zip(channels, counts, strict=True):
                record[f"n_channel_{names[c]}"] = int(n)
            record["n_channels"] = int((counts > 0).sum())
            shares = counts[counts > 0] / counts.sum() if counts.sum() else np.array([])
            record["channel_entropy"] = (
                float(-(shares * np.log(shares)).sum()) if counts.sum() else np.nan
            )
            ordered = own[own["channel"].notna()].sort_values(
                ["timestamp", "channel", "event_type"]
            )
            sequence = ordered["channel"].to_numpy()
            record["channel_switch_rate"] = (
                float(np.mean(sequence[1:] != sequence[:-1])) if len(sequence) > 1 else np.nan
            )
        if "value" in rows:
            valued = own[own["value"].notna()]
            record["value_mean"] = valued["value"].mean() if len(valued) else np.nan
            keys = [
                "timestamp",
                *(["channel"] if channels is not None else []),
                "event_type",
                "value",
            ]
            last = valued.sort_values(keys, na_position="first")
            record["value_last"] = last["value"].iloc[-1] if len(valued) else np.nan
            recent = valued["timestamp"] > end - pd.Timedelta(days=30)
            if recent.any() and (~recent).any():
                trend = valued["value"][recent].mean() - valued["value"][~recent].mean()
            else:
                trend = np.nan
            record["value_trend"] = trend
            record["n_negative_values"] = int((valued["value"] < 0).sum())
        records[customer] = record
    frame = pd.DataFrame.from_dict(records, orient="index")
    frame.index.name = "customer_id"
    return frame


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


def assert_close(result, expected):
    pd.testing.assert_frame_equal(
        to_pandas(result).sort_index(),
        to_pandas(expected).sort_index(),
        check_exact=False,
        rtol=1e-12,
        atol=1e-12,
        check_index_type=False,
    )


@PROPERTY
@given(events=event_logs(), cutoff=CUTOFFS, windows=WINDOWS)
def test_features_match_a_pandas_reference(events, cutoff, windows):
    given_windows, labels = windows
    if not (events["timestamp"] <= end_of(cutoff)).any():
        with pytest.raises(DataValidationError, match="before every event"):
            engagement_features(events, cutoff, windows=given_windows)
        return
    expected = reference_engagement(events, cutoff, given_windows, labels)
    result = engagement_features(events, cutoff, windows=given_windows)
    assert list(result.columns) == list(expected.columns)
    counts = [c for c in result.columns if c.startswith("n_")]
    assert (result[counts].dtypes == "int64").all()
    assert_close(result, expected)


def test_a_hand_made_log():
    events = pd.DataFrame(
        {
            "customer_id": ["a"] * 5 + ["b"],
            "timestamp": pd.to_datetime(
                [
                    "2024-03-01 09:00",
                    "2024-03-20 10:00",
                    "2024-03-20 10:00",
                    "2024-03-29 08:00",
                    "2024-03-30 23:59",
                    "2024-04-02 00:00",
                ]
            ),  # fmt: skip
            "event_type": ["visit", "visit", "Email Open", "visit", "support_ticket", "visit"],
            "channel": ["web", "app", "email", "web", None, "web"],
            "value": [0.5, None, -1.0, 2.0, 4.0, 1.0],
        }
    )
    result = engagement_features(events, "2024-03-31", windows=["7D", "30D"])
    a = result.loc["a"]
    assert list(result.index) == ["a"]  # b's only event is after the cutoff
    assert (a["n_visit_7d"], a["n_visit_30d"], a["n_email_open_30d"]) == (1, 2, 1)
    assert (a["n_support_ticket_7d"], a["n_events_7d"], a["n_events_30d"]) == (1, 2, 4)
    assert (a["days_since_last_event"], a["days_since_first_event"]) == (1.0, 30.0)
    assert (a["n_channel_app"], a["n_channel_email"], a["n_channel_web"]) == (1, 1, 2)
    assert a["n_channels"] == 3
    assert a["channel_entropy"] == pytest.approx(-(0.5 * np.log(0.5) + 2 * 0.25 * np.log(0.25)))
    # time order web, (10:00 tie: app before email), web: three switches in three pairs
    assert a["channel_switch_rate"] == 1.0
    assert a["value_mean"] == pytest.approx(5.5 / 4)
    assert a["value_last"] == 4.0
    # last 30 days: (Mar 1 23:59:59.999999, Mar 31]: -1, 2, 4; before: 0.5
    assert a["value_trend"] == pytest.approx(5 / 3 - 0.5)
    assert a["n_negative_values"] == 1


def test_ties_in_time_are_broken_by_channel_then_event_type_then_value():
    events = pd.DataFrame(
        {
            "customer_id": ["a"] * 4,
            "timestamp": pd.to_datetime(["2024-01-05 10:00"] * 3 + ["2024-01-01 00:00"]),
            "event_type": ["visit", "visit", "click", "visit"],
            "channel": ["web", "web", "app", "web"],
            "value": [3.0, 1.0, 9.0, 0.0],
        }
    )
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]):
        a = engagement_features(events.iloc[order], "2024-01-31").loc["a"]
        # order: web@Jan 1, app click, web visit 1.0, web visit 3.0 -> web, app, web, web
        assert a["value_last"] == 3.0
        assert a["channel_switch_rate"] == pytest.approx(2 / 3)


@PROPERTY
@given(events=event_logs(), later=event_logs(), cutoff=CUTOFFS)
def test_events_after_the_cutoff_change_nothing(events, later, cutoff):
    end = end_of(cutoff)
    if not (events["timestamp"] <= end).any():
        return
    later = later.assign(
        timestamp=later["timestamp"] - later["timestamp"].min() + end + pd.Timedelta(seconds=1),
        event_type="new kind of event",
    )
    if "channel" in events and "channel" in later:
        later["channel"] = "a new channel"
    later = later[[c for c in events.columns if c in later]]
    base = engagement_features(pl.from_pandas(events), cutoff)
    grown = engagement_features(pl.from_pandas(pd.concat([events, later])), cutoff)
    assert_close(grown, base)


@PROPERTY
@given(events=event_logs(), cutoff=CUTOFFS, seed=st.integers(0, 2**16))
def test_shuffling_rows_changes_nothing(events, cutoff, seed):
    if not (events["timestamp"] <= end_of(cutoff)).any():
        return
    base = engagement_features(pl.from_pandas(events), cutoff)
    shuffled = events.sample(frac=1.0, random_state=seed)
    assert_close(engagement_features(pl.from_pandas(shuffled), cutoff), base)


@pytest.fixture(scope="module")
def seeded_events():
    rng = np.random.default_rng(11)
    n = 500
    values = rng.integers(-4, 5, n) / 2
    return pd.DataFrame(
        {
            "customer_id": rng.integers(0, 40, n),
            "timestamp": START + pd.to_timedelta(rng.integers(0, 365 * 86400, n), unit="s"),
            "event_type": rng.choice(list(EVENT_TYPES), n),
            "channel": rng.choice(["web", "app", "store", None], n),
            "value": np.where(rng.random(n) < 0.3, np.nan, values),
        }
    )


@pytest.mark.parametrize(
    "convert",
    [pl.from_pandas, lambda df: pl.from_pandas(df).lazy(), pa.Table.from_pandas, duckdb.from_df],
    ids=["polars", "polars-lazy", "pyarrow", "duckdb"],
)
def test_every_backend_gives_the_pandas_result(seeded_events, convert):
    expected = engagement_features(seeded_events, "2023-10-15")
    result = to_pandas(engagement_features(convert(seeded_events), "2023-10-15"))
    pd.testing.assert_frame_equal(result, expected, check_index_type=False)


@pytest.mark.parametrize("cutoff", ["2023-10-15", "2023-06-01 06:00:00"])
def test_a_larger_log_matches_the_reference(seeded_events, cutoff):
    names = {**EVENT_TYPES, "web": "web", "app": "app", "store": "store"}
    windows = ("7D", "30D", "90D")
    expected = reference_engagement(seeded_events, cutoff, windows, ("7d", "30d", "90d"), names)
    assert expected["channel_switch_rate"].notna().sum() > 20
    assert_close(engagement_features(seeded_events, cutoff, windows=windows), expected)


def test_the_callers_frame_is_left_unchanged(seeded_events):
    before = copy.deepcopy(seeded_events)
    engagement_features(seeded_events, "2023-10-15")
    pd.testing.assert_frame_equal(seeded_events, before)


def test_customers_without_channel_or_value_get_nan_not_zero():
    events = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "event_type": ["visit", "visit"],
            "channel": [None, "web"],
            "value": [np.nan, 1.0],
        }
    )
    one = engagement_features(events, "2024-01-31").loc[1]
    assert one["n_channels"] == 0 and one["n_channel_web"] == 0
    assert np.isnan(one["channel_entropy"]) and np.isnan(one["channel_switch_rate"])
    assert np.isnan(one["value_mean"]) and np.isnan(one["value_last"])


def test_errors_are_clear(seeded_events):
    with pytest.raises(DataValidationError, match="windows=7 has no unit"):
        engagement_features(seeded_events, "2023-10-15", windows=[7, 30])
    with pytest.raises(DataValidationError, match="repeats a window"):
        engagement_features(seeded_events, "2023-10-15", windows=["7D", "1W"])
    with pytest.raises(DataValidationError, match="before every event"):
        engagement_features(seeded_events, "2020-01-01")
    clash = seeded_events.assign(event_type="Events")
    with pytest.raises(DataValidationError, match="clashing feature columns"):
        engagement_features(clash, "2023-10-15")
    with pytest.raises(DataValidationError, match="missing required column"):
        engagement_features(seeded_events.drop(columns="event_type"), "2023-10-15")
