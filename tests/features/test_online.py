"""Online feature state: one row at a time gives exactly the batch features, at any moment."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vipml.data import load_cdnow, simulate
from vipml.data.validate import parse_cutoff
from vipml.errors import DataValidationError
from vipml.features import engagement_features, purchase_cycle_features, rfm_summary
from vipml.features.online import (
    CustomerState,
    LateEventError,
    OnlineConfig,
    cycle_table,
    engagement_table,
    layout_from_events,
    rfm_table,
    states_from_logs,
)
from vipml.testing import transaction_logs

pytestmark = pytest.mark.filterwarnings("ignore::vipml.errors.DataWarning")
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
START = pd.Timestamp("2023-01-01")
WINDOWS = ("7D", "30D", "90D")
LONG = OnlineConfig(retention="1000D")


@st.composite
def event_logs(draw):
    """A few customers' events over two years, with time ties, channels and values."""
    n_rows = draw(st.integers(1, 40))
    pool = draw(st.lists(st.integers(0, 2 * 365 * 86400), min_size=1, max_size=15))
    rows = draw(
        st.lists(
            st.tuples(
                st.integers(0, 5),
                st.sampled_from(pool),
                st.sampled_from(["visit", "Email Open", "review"]),
                st.sampled_from(["web", "App", "e-mail", None]),
                st.one_of(st.none(), st.integers(-6, 6).map(lambda v: v / 3)),
            ),
            min_size=n_rows,
            max_size=n_rows,
        )
    )
    customer, second, kind, channel, value = (list(c) for c in zip(*rows, strict=True))
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{c}" for c in customer],
            "timestamp": START + pd.to_timedelta(second, unit="s"),
            "event_type": kind,
        }
    )
    if draw(st.booleans()):
        frame["channel"] = channel
    if draw(st.booleans()):
        frame["value"] = np.array([np.nan if v is None else v for v in value], dtype="float64")
    return frame.drop_duplicates(ignore_index=True)


@st.composite
def cutoffs(draw, frames):
    """A cutoff on or after the first row: a date, or an instant with a time of day."""
    first = min(frame["timestamp"].min() for frame in frames)
    last = max(frame["timestamp"].max() for frame in frames)
    span = int((last - first).total_seconds()) + 86400
    stamp = first + pd.Timedelta(seconds=draw(st.integers(0, span)))
    return stamp.strftime("%Y-%m-%d") if draw(st.booleans()) else stamp


def records(frame):
    """A log's rows as the dicts a service would receive (NaN values left as NaN)."""
    return frame.to_dict("records")


def feed(rows, config=None, states=None):
    states = {} if states is None else states
    for row in rows:
        key = row["customer_id"]
        state = states.get(key)
        if state is None:
            state = states[key] = CustomerState(key, config)
        state.update(row)
    return states


def until(frame, cutoff):
    return frame[frame["timestamp"] <= parse_cutoff(cutoff, tz_aware=False)]


#: Micro-unit sums over one million: polars multiplies by the reciprocal (one ulp off).
SPEND = ["spend_last_window", "spend_prev_window", "spend_trend"]


def assert_cycle_equal(online, batch):
    """Bit for bit, but for the spend columns (to one or two ulps, see the module notes)."""
    pd.testing.assert_frame_equal(online.drop(columns=SPEND), batch.drop(columns=SPEND))
    np.testing.assert_allclose(online[SPEND], batch[SPEND], rtol=1e-15, atol=0)


def assert_tables_equal(states, tx, ev, cutoff, at):
    """Online tables at ``at`` equal batch tables at ``at`` over the rows up to ``cutoff``."""
    if tx is not None and len(until(tx, cutoff)):
        seen = until(tx, cutoff)
        pd.testing.assert_frame_equal(
            rfm_table(states, at), rfm_summary(seen, at, freq="D", time_unit="W")
        )
        assert_cycle_equal(
            cycle_table(states, at), purchase_cycle_features(seen, at, window="90D", freq="D")
        )
    if ev is not None and len(until(ev, cutoff)):
        seen = until(ev, cutoff)
        layout = layout_from_events(seen, at, windows=WINDOWS)
        online = engagement_table(states, at, layout)
        batch = engagement_features(seen, at, windows=WINDOWS)
        # Exact, but for the entropy: polars adds its per-channel terms in an order of its own.
        entropy = "channel_entropy"
        pd.testing.assert_frame_equal(
            online.drop(columns=entropy, errors="ignore"),
            batch.drop(columns=entropy, errors="ignore"),
            check_exact=True,
        )
        if entropy in batch:
            np.testing.assert_allclose(online[entropy], batch[entropy], rtol=1e-15, atol=0)


@PROPERTY
@given(
    data=st.data(),
    tx=transaction_logs(allow_returns=True, with_order_ids=True),
    ev=event_logs(),
    orders=st.booleans(),
)
def test_online_equals_batch_at_any_split_and_later(data, tx, ev, orders):
    if not orders:
        tx = tx.drop(columns="order_id")
    cutoff = data.draw(cutoffs([tx, ev]))
    seen_tx, seen_ev = until(tx, cutoff), until(ev, cutoff)
    rows = pd.concat([seen_tx, seen_ev]).sort_values("timestamp", kind="stable")
    states = feed(
        {k: v for k, v in row.items() if not (k in ("amount", "event_type") and pd.isna(v))}
        for row in records(rows)
    )
    assert_tables_equal(states, tx, ev, cutoff, cutoff)
    later = pd.Timestamp(parse_cutoff(cutoff, tz_aware=False)) + pd.Timedelta(
        seconds=data.draw(st.integers(0, 400 * 86400))
    )
    assert_tables_equal(states, tx, ev, cutoff, later)
    # Bootstrapping from the logs gives the very same states.
    booted = states_from_logs(
        seen_tx if len(seen_tx) else None, seen_ev if len(seen_ev) else None, cutoff=cutoff
    )
    assert list(booted) == sorted(states)
    assert all(booted[key].to_bytes() == states[key].to_bytes() for key in booted)


@PROPERTY
@given(data=st.data(), tx=transaction_logs(allow_returns=True, with_order_ids=True))
def test_shuffled_rows_give_the_same_state_and_features(data, tx):
    cutoff = data.draw(cutoffs([tx]))
    rows = records(until(tx, cutoff))
    in_order = feed(sorted(rows, key=lambda r: r["timestamp"]), LONG)
    random.Random(data.draw(st.integers(0, 2**32))).shuffle(rows)
    shuffled = feed(rows, LONG)
    assert {k: s.to_bytes() for k, s in shuffled.items()} == {
        k: s.to_bytes() for k, s in in_order.items()
    }
    if rows:
        assert_tables_equal(shuffled, tx, None, cutoff, cutoff)


@PROPERTY
@given(data=st.data(), ev=event_logs())
def test_shuffled_events_give_the_same_state_and_features(data, ev):
    cutoff = data.draw(cutoffs([ev]))
    rows = records(until(ev, cutoff))
    in_order = feed(sorted(rows, key=lambda r: r["timestamp"]), LONG)
    random.Random(data.draw(st.integers(0, 2**32))).shuffle(rows)
    shuffled = feed(rows, LONG)
    assert {k: s.to_bytes() for k, s in shuffled.items()} == {
        k: s.to_bytes() for k, s in in_order.items()
    }
    if rows:
        assert_tables_equal(shuffled, None, ev, cutoff, cutoff)


@PROPERTY
@given(tx=transaction_logs(allow_returns=True, with_order_ids=True), ev=event_logs())
def test_redelivered_rows_are_ignored(tx, ev):
    rows = records(pd.concat([tx, ev]).sort_values("timestamp", kind="stable"))
    rows = [{k: v for k, v in r.items() if not (isinstance(v, float) and pd.isna(v))} for r in rows]
    once = feed(rows)
    twice = {}
    for row in rows:
        key = row["customer_id"]
        state = twice.setdefault(key, CustomerState(key))
        assert state.update(row) is True
        assert state.update(dict(row)) is False
    assert {k: s.to_bytes() for k, s in twice.items()} == {k: s.to_bytes() for k, s in once.items()}


@PROPERTY
@given(data=st.data(), tx=transaction_logs(max_customers=1), ev=event_logs())
def test_rows_older_than_the_retention_are_refused_and_change_nothing(data, tx, ev):
    ev = ev.assign(customer_id="c0").drop_duplicates()
    rows = [
        {k: v for k, v in r.items() if not (isinstance(v, float) and pd.isna(v))}
        for r in records(pd.concat([tx, ev]))
    ]
    random.Random(data.draw(st.integers(0, 2**32))).shuffle(rows)
    state, accepted = CustomerState("c0"), []
    retention = pd.Timedelta(microseconds=state.config.retention_us)
    for row in rows:
        before = state.to_bytes()
        watermark = state.watermark
        too_late = (
            watermark is not None
            and row["timestamp"] <= pd.Timestamp(watermark, unit="us") - retention
        )
        if too_late:
            with pytest.raises(LateEventError, match="too late to apply"):
                state.update(row)
            assert state.to_bytes() == before
        else:
            assert state.update(row)
            accepted.append(row)
    # What was accepted is applied exactly: the same state as those rows in time order.
    reference = feed(sorted(accepted, key=lambda r: r["timestamp"]))["c0"]
    assert state.to_bytes() == reference.to_bytes()


def test_features_move_with_at_without_new_rows():
    state = CustomerState("a")
    for day, amount in (("2024-01-01", 10.0), ("2024-01-15", 30.0), ("2024-03-01", 5.0)):
        state.update({"timestamp": day, "amount": amount})
    early, late = state.features("2024-03-01"), state.features("2024-06-30")
    assert late["T"] > early["T"]
    assert late["days_since_last_purchase"] - early["days_since_last_purchase"] == 121.0
    assert early["count_last_window"] == 3 and late["count_last_window"] == 0
    assert late["count_prev_window"] == 2 and late["spend_prev_window"] == 35.0
    with pytest.raises(ValueError, match="before customer 'a'"):
        state.features("2024-02-01")


def test_bad_records_are_refused_with_the_field_and_change_nothing():
    state = CustomerState("a")
    state.update({"timestamp": "2024-01-01", "amount": 10.0})
    before = state.to_bytes()
    bad = [
        ({"timestamp": "2024-01-02"}, "either an 'amount'"),
        ({"timestamp": "2024-01-02", "amount": 1.0, "event_type": "visit"}, "not both"),
        ({"timestamp": "2024-01-02", "amount": float("nan")}, "amount is missing"),
        ({"timestamp": "2024-01-02", "amount": float("inf")}, "amount=inf is infinite"),
        ({"timestamp": "2024-01-02", "amount": "ten"}, "amount='ten'"),
        ({"timestamp": "2024-01-02", "amount": None}, "amount is missing"),
        ({"timestamp": "yesterday-ish", "amount": 1.0}, "timestamp='yesterday-ish'"),
        ({"amount": 1.0}, "timestamp is missing"),
        ({"timestamp": "2024-01-02", "event_type": ""}, "event_type is missing"),
        ({"timestamp": "2024-01-02", "event_type": "visit", "value": "good"}, "value='good'"),
        ("not a record", "must be a mapping"),
    ]
    for record, message in bad:
        with pytest.raises(DataValidationError, match=message):
            state.update(record)
    with pytest.raises(ValueError, match="customer 'b'"):
        state.update({"customer_id": "b", "timestamp": "2024-01-02", "amount": 1.0})
    strict = CustomerState("a", OnlineConfig(returns="error"))
    with pytest.raises(DataValidationError, match="returns='error'"):
        strict.update({"timestamp": "2024-01-02", "amount": -1.0})
    assert state.to_bytes() == before and strict.watermark is None


def test_config_and_serialisation_refuse_what_does_not_fit():
    with pytest.raises(ValueError, match="retention='30D' is shorter"):
        OnlineConfig(retention="30D")
    with pytest.raises(ValueError, match="returns must be one of"):
        OnlineConfig(returns="keep")
    state = CustomerState(1)
    state.update({"timestamp": "2024-01-01", "amount": 3.0})
    with pytest.raises(ValueError, match="load it with the OnlineConfig it was made with"):
        CustomerState.from_bytes(state.to_bytes(), OnlineConfig(freq="W"))
    with pytest.raises(ValueError, match="not a serialised CustomerState"):
        CustomerState.from_bytes(b"{}")
    assert CustomerState.from_bytes(state.to_bytes()) == state


def test_time_zones_are_converted_to_utc():
    naive, aware = CustomerState("a"), CustomerState("a")
    naive.update({"timestamp": "2024-01-01 23:30", "amount": 1.0})
    aware.update({"timestamp": "2024-01-02 00:30+01:00", "amount": 1.0})
    assert naive.to_bytes() == aware.to_bytes()


def test_other_configs_match_the_batch_builders(small_log):
    log = small_log.assign(amount=[10.0, -2.0, 20.0, 7.5, -12.5, 3.0])
    for config in (
        OnlineConfig(freq="W", time_unit="D", window="14D"),
        OnlineConfig(freq="H", time_unit="D", returns="exclude"),
    ):
        states = states_from_logs(log, cutoff="2024-01-31", config=config)
        kwargs = {"freq": config.freq, "returns": config.returns}
        pd.testing.assert_frame_equal(
            rfm_table(states, "2024-02-10"),
            rfm_summary(log, "2024-02-10", time_unit=config.time_unit, **kwargs),
        )
        assert_cycle_equal(
            cycle_table(states, "2024-02-10"),
            purchase_cycle_features(log, "2024-02-10", window=config.window, **kwargs),
        )


def test_cdnow_bootstrap_equals_batch():
    tx = load_cdnow()
    states = states_from_logs(tx, cutoff="1997-09-30")
    for at in ("1997-09-30", "1998-06-30"):
        pd.testing.assert_frame_equal(
            rfm_table(states, at), rfm_summary(until(tx, "1997-09-30"), at, time_unit="W")
        )
        assert_cycle_equal(
            cycle_table(states, at), purchase_cycle_features(until(tx, "1997-09-30"), at)
        )


def test_simulated_shop_streamed_after_bootstrap_equals_batch():
    shop = simulate(150, "2024-01-01", "2024-12-31", random_state=3)
    tx, ev = shop.transactions, shop.events
    states = states_from_logs(tx, ev, cutoff="2024-08-31")
    later = pd.concat([tx, ev])
    later = later[later["timestamp"] > parse_cutoff("2024-08-31", tz_aware=False)]
    later = later.sort_values("timestamp", kind="stable")
    feed(({k: v for k, v in r.items() if not pd.isna(v)} for r in records(later)), None, states)
    assert_tables_equal(states, tx, ev, "2024-12-31", "2024-12-31")
