"""Tests of the seeded shop simulator: shapes, invariants and recovery of the known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import hyp2f1

from vipml.data.synthetic import (
    CATEGORIES,
    EVENT_CHANNELS,
    EVENT_TYPES,
    MIXTURE_TYPES,
    TRANSACTION_CHANNELS,
    Simulation,
    _argsort_by_time,
    _digits,
    _fixed_width_str,
    _sort_events,
    simulate,
)

WEEK = pd.Timedelta(days=7)
TX_COLUMNS = ["customer_id", "timestamp", "amount", "order_id", "channel", "category", "quantity"]
EVENT_COLUMNS = ["customer_id", "timestamp", "event_type", "channel", "value"]
TRUTH_COLUMNS = [
    "birth",
    "lambda_",
    "p_dropout",
    "dropout_time",
    "alive_at_end",
    "mean_spend",
    "engagement_propensity",
    "preferred_channel",
    "latent_type",
]


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(5_000, random_state=7, returns_rate=0.05)


@pytest.fixture(scope="module")
def big() -> Simulation:
    """Many customers, no events: for the statistical checks of the purchase process."""
    return simulate(60_000, random_state=11, events=False)


@pytest.fixture(scope="module")
def engaged() -> Simulation:
    return simulate(20_000, random_state=5)


def purchases(sim: Simulation) -> pd.DataFrame:
    return sim.transactions[sim.transactions["amount"] > 0]


def with_truth(frame: pd.DataFrame, sim: Simulation, *columns: str) -> pd.DataFrame:
    return frame.join(sim.truth[list(columns)], on="customer_id")


def bgnbd_expected_repeats(t: np.ndarray, r: float, alpha: float, a: float, b: float):
    """E[X(t)] of the BG/NBD model, Fader, Hardie & Lee (2005), eq. (9)."""
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))


# ---- determinism ------------------------------------------------------------------------------


def test_same_seed_gives_identical_frames():
    one = simulate(400, random_state=3, returns_rate=0.1)
    two = simulate(400, random_state=3, returns_rate=0.1)
    for name in ("transactions", "events", "truth"):
        pd.testing.assert_frame_equal(getattr(one, name), getattr(two, name), check_exact=True)
    assert one.purchase_params == two.purchase_params
    assert one.spend_params == two.spend_params


def test_different_seed_gives_different_frames():
    one = simulate(400, random_state=3)
    two = simulate(400, random_state=4)
    assert not one.truth["lambda_"].equals(two.truth["lambda_"])
    assert not one.transactions.equals(two.transactions)
    assert not one.events.equals(two.events)


def test_generator_as_random_state():
    one = simulate(50, random_state=np.random.default_rng(9))
    two = simulate(50, random_state=9)
    pd.testing.assert_frame_equal(one.transactions, two.transactions)


# ---- shapes, dtypes, ordering -------------------------------------------------------------------


def test_columns_and_dtypes(sim):
    tx, ev, truth = sim.transactions, sim.events, sim.truth
    assert tx.columns.tolist() == TX_COLUMNS
    assert ev.columns.tolist() == EVENT_COLUMNS
    assert truth.columns.tolist() == TRUTH_COLUMNS
    assert truth.index.name == "customer_id"
    assert len(truth) == 5_000 and truth.index.is_unique and truth.index.is_monotonic_increasing
    assert truth.index[0] == "C000001" and truth.index[-1] == "C005000"
    for col in ("customer_id", "order_id", "channel", "category"):
        assert pd.api.types.is_string_dtype(tx[col]), col
    for col in ("customer_id", "event_type", "channel"):
        assert pd.api.types.is_string_dtype(ev[col]), col
    assert pd.api.types.is_string_dtype(truth.index)
    assert tx["timestamp"].dtype == "datetime64[ns]"
    assert ev["timestamp"].dtype == "datetime64[ns]"
    assert truth["birth"].dtype == "datetime64[ns]"
    assert truth["dropout_time"].dtype == "datetime64[ns]"
    assert tx["amount"].dtype == np.float64 and ev["value"].dtype == np.float64
    assert tx["quantity"].dtype == np.int64
    assert truth["alive_at_end"].dtype == bool
    assert set(tx["customer_id"]) <= set(truth.index)
    assert set(tx["channel"]) == set(TRANSACTION_CHANNELS)
    assert set(tx["category"]) == set(CATEGORIES)
    assert set(ev["event_type"]) == set(EVENT_TYPES)
    assert set(ev["channel"]) == set(EVENT_CHANNELS)
    assert set(truth["preferred_channel"]) <= set(TRANSACTION_CHANNELS)
    assert len(tx) > 5 * len(truth)
    assert "Simulation(population='bgnbd', customers=5000" in repr(sim)


@pytest.mark.parametrize("name", ["transactions", "events"])
def test_rows_sorted_by_timestamp_then_customer(sim, name):
    frame = getattr(sim, name)
    assert pd.MultiIndex.from_frame(frame[["timestamp", "customer_id"]]).is_monotonic_increasing


def test_customer_ids_have_fixed_width():
    assert simulate(1, events=False).truth.index.tolist() == ["C000001"]
    chars = _digits("C", np.array([1, 42, 1_000_001]), 7)
    assert _fixed_width_str(chars).tolist() == ["C0000001", "C0000042", "C1000001"]


# ---- the purchase process ------------------------------------------------------------------------


def test_timestamps_inside_window_and_after_birth(sim):
    for frame in (sim.transactions, sim.events):
        ts = frame["timestamp"]
        assert ts.min() >= sim.start and ts.max() <= sim.end
        joined = with_truth(frame, sim, "birth")
        assert (joined["timestamp"] >= joined["birth"]).all()
        assert (ts.dt.microsecond == 0).all() and (ts.dt.nanosecond == 0).all()
    birth = sim.truth["birth"]
    assert birth.min() >= sim.start and birth.max() <= sim.acquisition_end
    assert sim.acquisition_end == pd.Timestamp("2024-07-01 12:00:00")


def test_first_purchase_at_birth(sim):
    first = purchases(sim).groupby("customer_id")["timestamp"].min()
    pd.testing.assert_series_equal(first, sim.truth["birth"], check_names=False)


def test_no_repeat_purchase_after_dropout(sim):
    truth = sim.truth
    assert (truth["alive_at_end"] == truth["dropout_time"].isna()).all()
    joined = with_truth(purchases(sim), sim, "dropout_time")
    assert not (joined["timestamp"] > joined["dropout_time"]).any()
    # the dropout is the time of the last repeat purchase
    dead = truth.index[~truth["alive_at_end"]]
    last = purchases(sim).groupby("customer_id")["timestamp"].max()
    n_orders = purchases(sim).groupby("customer_id").size()
    assert (n_orders[dead] >= 2).all()
    pd.testing.assert_series_equal(last[dead], truth.loc[dead, "dropout_time"], check_names=False)
    assert truth["alive_at_end"].mean() == pytest.approx(0.3, abs=0.15)


def test_amounts_positive_and_in_cents(sim):
    amount = purchases(sim)["amount"].to_numpy()
    assert (amount >= 0.01).all()
    np.testing.assert_allclose(amount * 100, np.round(amount * 100), atol=1e-6)
    assert (purchases(sim)["quantity"] >= 1).all()
    assert purchases(sim)["order_id"].is_unique


def test_no_returns_by_default():
    tx = simulate(300, random_state=1).transactions
    assert (tx["amount"] > 0).all() and tx["order_id"].is_unique


def test_returns_match_orders(sim):
    tx = sim.transactions
    returns = tx[tx["amount"] < 0]
    orders = purchases(sim).set_index("order_id")
    assert len(returns) > 0 and returns["order_id"].is_unique
    assert len(returns) / len(orders) == pytest.approx(0.05, rel=0.25)
    order = orders.loc[returns["order_id"]]
    assert (returns["customer_id"].to_numpy() == order["customer_id"].to_numpy()).all()
    delay = returns["timestamp"].to_numpy() - order["timestamp"].to_numpy()
    assert (delay >= np.timedelta64(1, "D")).all() and (delay <= np.timedelta64(30, "D")).all()
    assert (-returns["amount"].to_numpy() <= order["amount"].to_numpy() + 1e-9).all()
    assert (returns["quantity"] < 0).all()
    assert (-returns["quantity"].to_numpy() <= order["quantity"].to_numpy()).all()
    full = -returns["amount"].to_numpy() == order["amount"].to_numpy()
    assert 0 < full.mean() < 1  # some partial, some whole orders


def test_latent_parameters_follow_their_distributions(big):
    truth, pp, sp = big.truth, big.purchase_params, big.spend_params
    assert pp == {"r": 0.75, "alpha": 4.0, "a": 0.8, "b": 2.5}
    assert truth["lambda_"].mean() == pytest.approx(pp["r"] / pp["alpha"], rel=0.03)
    assert truth["lambda_"].var() == pytest.approx(pp["r"] / pp["alpha"] ** 2, rel=0.1)
    assert truth["p_dropout"].mean() == pytest.approx(pp["a"] / (pp["a"] + pp["b"]), rel=0.02)
    nu = sp["p"] / truth["mean_spend"]
    assert nu.mean() == pytest.approx(sp["q"] / sp["v"], rel=0.02)
    birth_day = (truth["birth"] - big.start) / pd.Timedelta(days=1)
    assert birth_day.mean() == pytest.approx(
        (big.acquisition_end - big.start) / pd.Timedelta(days=2), rel=0.02
    )


def test_repeat_purchases_match_bgnbd_expectation(big):
    t = ((big.end - big.truth["birth"]) / WEEK).to_numpy()
    expected = bgnbd_expected_repeats(t, **big.purchase_params).sum()
    observed = len(big.transactions) - len(big.truth)
    assert observed == pytest.approx(expected, rel=0.03)


def test_repeat_counts_grow_with_lambda(big):
    repeats = big.transactions.groupby("customer_id").size() - 1
    low = big.truth["lambda_"] < big.truth["lambda_"].quantile(0.25)
    assert repeats[~low].mean() > 3 * repeats[low].mean()


def test_mean_spend_close_to_truth_for_heavy_buyers(big):
    spend = big.transactions.groupby("customer_id")["amount"].agg(["mean", "size"])
    heavy = spend[spend["size"] >= 20]
    assert len(heavy) > 500
    ratio = heavy["mean"] / big.truth.loc[heavy.index, "mean_spend"]
    assert ratio.median() == pytest.approx(1.0, abs=0.03)
    assert ((ratio - 1).abs() < 0.3).mean() > 0.95


def test_time_unit_days_describes_the_same_shop():
    days = simulate(20_000, random_state=2, time_unit="D", events=False)
    assert days.purchase_params["alpha"] == pytest.approx(28.0)
    assert days.truth["lambda_"].mean() * 7 == pytest.approx(0.75 / 4.0, rel=0.05)
    t = ((days.end - days.truth["birth"]) / pd.Timedelta(days=1)).to_numpy()
    expected = bgnbd_expected_repeats(t, **days.purchase_params).sum()
    assert len(days.transactions) - len(days.truth) == pytest.approx(expected, rel=0.05)


def test_custom_purchase_and_spend_params():
    s = simulate(
        10_000,
        random_state=4,
        purchase_params={"r": 2.0, "alpha": 10.0, "a": 1.5, "b": 6.0},
        spend_params={"p": 3.0, "q": 5.0, "v": 20.0},
        events=False,
    )
    assert s.truth["lambda_"].mean() == pytest.approx(0.2, rel=0.05)
    assert s.truth["p_dropout"].mean() == pytest.approx(0.2, rel=0.05)
    assert (3.0 / s.truth["mean_spend"]).mean() == pytest.approx(0.25, rel=0.05)


def test_bgnbd_latent_types(sim):
    truth = sim.truth
    assert set(truth["latent_type"]) == {"vip", "regular", "occasional", "lapsed"}
    assert ((truth["latent_type"] == "lapsed") == ~truth["alive_at_end"]).all()
    alive = truth[truth["alive_at_end"]]
    assert (alive["latent_type"] == "vip").mean() == pytest.approx(0.1, abs=0.01)
    value = alive["lambda_"] * alive["mean_spend"]
    by_type = value.groupby(alive["latent_type"]).agg(["min", "max"])
    assert by_type.loc["vip", "min"] >= by_type.loc["regular", "max"]
    assert by_type.loc["regular", "min"] >= by_type.loc["occasional", "max"]


# ---- events -------------------------------------------------------------------------------------


def test_event_values(sim):
    ev = sim.events
    sentiment = ev["event_type"].isin(["support_ticket", "review"])
    assert ev.loc[sentiment, "value"].between(-1, 1).all()
    assert ev.loc[~sentiment, "value"].isna().all()
    email = ev["event_type"].isin(["email_open", "email_click"])
    assert (ev.loc[email, "channel"] == "email").all()
    assert set(ev.loc[ev["event_type"] == "review", "channel"]) == {"web", "app"}
    assert "email" not in set(ev.loc[ev["event_type"] == "visit", "channel"])
    per_customer_month = len(ev) / len(sim.truth) / 21
    assert 0.5 < per_customer_month < 5


def test_visits_follow_channel_preference(sim):
    visits = sim.events[sim.events["event_type"] == "visit"]
    counts = pd.crosstab(visits["customer_id"], visits["channel"])
    busy = counts[counts.sum(axis=1) >= 20]
    agree = busy.idxmax(axis=1) == sim.truth.loc[busy.index, "preferred_channel"]
    assert len(busy) > 100 and agree.mean() > 0.8


def test_engagement_fades_and_sours_before_dropout(engaged):
    truth = engaged.truth
    dead = truth[~truth["alive_at_end"]]
    dead = dead[dead["dropout_time"] - dead["birth"] >= 16 * WEEK]
    ev = engaged.events.join(dead[["birth", "dropout_time"]], on="customer_id", how="inner")
    weeks_to_dropout = (ev["dropout_time"] - ev["timestamp"]) / WEEK
    early = weeks_to_dropout > 8
    late = weeks_to_dropout.between(0, 8)
    after = weeks_to_dropout < 0
    early_exposure = ((dead["dropout_time"] - dead["birth"]) / WEEK - 8).sum()
    late_exposure = 8 * len(dead)
    after_exposure = ((engaged.end - dead["dropout_time"]) / WEEK).sum()
    early_rate = early.sum() / early_exposure
    late_rate = late.sum() / late_exposure
    after_rate = after.sum() / after_exposure
    assert late_rate / early_rate < 0.8
    assert after_rate / early_rate < 0.35
    value = ev["value"]
    assert value[late].mean() < value[early].mean() - 0.2
    assert value[early].mean() == pytest.approx(0.3, abs=0.05)
    assert value[after].mean() == pytest.approx(-0.4, abs=0.05)


def test_dead_customers_still_open_emails(engaged):
    truth = engaged.truth
    long_dead = truth[truth["dropout_time"] < engaged.end - 30 * WEEK].index
    ev = engaged.events.join(truth["dropout_time"], on="customer_id")
    gone = ev[(ev["timestamp"] > ev["dropout_time"] + 9 * WEEK)]
    opened = set(gone.loc[gone["event_type"] == "email_open", "customer_id"])
    assert len(opened & set(long_dead)) > 0.2 * len(long_dead)


def test_event_rates_grow_with_propensity_and_purchase_rate(engaged):
    truth = engaged.truth
    visits = engaged.events[engaged.events["event_type"] == "visit"]
    per_customer = visits.groupby("customer_id").size().reindex(truth.index, fill_value=0)
    by_rate = per_customer.groupby(pd.qcut(truth["lambda_"], 4, labels=False)).mean()
    by_propensity = per_customer.groupby(
        pd.qcut(truth["engagement_propensity"], 4, labels=False)
    ).mean()
    assert by_rate.is_monotonic_increasing and by_rate[3] > 1.5 * by_rate[0]
    assert by_propensity.is_monotonic_increasing and by_propensity[3] > 3 * by_propensity[0]


def test_events_false_gives_empty_frame():
    s = simulate(100, events=False)
    assert s.events.empty and s.events.columns.tolist() == EVENT_COLUMNS
    assert s.events["timestamp"].dtype == "datetime64[ns]"
    # the purchase log does not depend on whether events are simulated
    pd.testing.assert_frame_equal(s.transactions, simulate(100).transactions)


# ---- mixture population ---------------------------------------------------------------------------


def test_mixture_has_all_types_with_distinct_behaviour():
    s = simulate(8_000, random_state=8, population="mixture", events=False)
    truth = s.truth
    assert s.population == "mixture"
    assert set(truth["latent_type"]) == set(MIXTURE_TYPES)
    shares = truth["latent_type"].value_counts(normalize=True)
    for name, spec in MIXTURE_TYPES.items():
        assert shares[name] == pytest.approx(spec["share"], abs=0.02)
    assert s.type_shares == pytest.approx({k: v["share"] for k, v in MIXTURE_TYPES.items()})
    assert set(s.purchase_params) == set(MIXTURE_TYPES)
    means = truth.groupby("latent_type")[["lambda_", "p_dropout", "mean_spend"]].mean()
    assert means["lambda_"].idxmax() == "vip" and means["lambda_"].idxmin() == "one_time"
    assert means["p_dropout"].idxmax() == "one_time" and means["p_dropout"].idxmin() == "vip"
    assert means["mean_spend"].idxmax() == "vip" and means["mean_spend"].idxmin() == "bargain"
    assert means.loc["vip", "lambda_"] == pytest.approx(1.0, rel=0.1)
    assert means.loc["one_time", "p_dropout"] == pytest.approx(0.9, abs=0.03)


def test_custom_mixture():
    population = {
        "a": {
            "share": 1,
            "purchase": {"r": 1, "alpha": 1, "a": 1, "b": 9},
            "spend": MIXTURE_TYPES["vip"]["spend"],
        },
        "b": {
            "share": 3,
            "purchase": {"r": 1, "alpha": 10, "a": 9, "b": 1},
            "spend": {"p": 6, "q": 20, "v": 40},
            "engagement": {"shape": 1, "rate": 1},
        },
    }
    s = simulate(4_000, random_state=1, population=population, events=False)
    assert s.population == "custom"
    assert s.type_shares == {"a": 0.25, "b": 0.75}
    assert (s.truth["latent_type"] == "a").mean() == pytest.approx(0.25, abs=0.03)


# ---- arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_customers": 0}, ValueError, "n_customers"),
        ({"n_customers": 2.5}, TypeError, "n_customers"),
        ({"n_customers": True}, TypeError, "n_customers"),
        ({"end": "2024-01-01"}, ValueError, "after start"),
        ({"start": "not a date"}, ValueError, "start"),
        ({"acquisition_end": "2026-06-01"}, ValueError, "acquisition_end"),
        ({"purchase_params": {"r": 1, "alpha": -1, "a": 1, "b": 1}}, ValueError, "alpha"),
        ({"purchase_params": {"r": 1, "alpha": 1, "a": 1}}, ValueError, "missing"),
        ({"purchase_params": [1, 2, 3, 4]}, TypeError, "purchase_params"),
        ({"spend_params": {"p": 1, "q": 0, "v": 1}}, ValueError, "q"),
        ({"spend_params": {"p": 1, "q": float("nan"), "v": 1}}, ValueError, "q"),
        ({"returns_rate": 1.0}, ValueError, "returns_rate"),
        ({"returns_rate": -0.1}, ValueError, "returns_rate"),
        ({"time_unit": "M"}, ValueError, "time_unit"),
        ({"population": "zoo"}, ValueError, "population"),
        (
            {"population": "mixture", "spend_params": {"p": 1, "q": 1, "v": 1}},
            ValueError,
            "mixture",
        ),
        ({"population": {"x": {"share": 1}}}, ValueError, "purchase"),
        ({"events": "yes"}, TypeError, "events"),
    ],
)
def test_invalid_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        simulate(**{"n_customers": 10, **kwargs})


def test_edge_cases():
    one = simulate(1, random_state=0)
    assert len(one.truth) == 1 and len(one.transactions) >= 1
    same_day = simulate(50, acquisition_end="2024-01-01", events=False)
    assert (same_day.truth["birth"] == pd.Timestamp("2024-01-01")).all()
    tz = simulate(20, start="2024-01-01T00:00+02:00", end="2024-06-01T00:00Z", events=False)
    assert tz.start == pd.Timestamp("2023-12-31 22:00") and tz.start.tz is None
    assert tz.transactions["timestamp"].max() <= tz.end


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 60),
    seed=st.integers(0, 2**32 - 1),
    returns_rate=st.sampled_from([0.0, 0.3]),
    days=st.integers(1, 800),
    population=st.sampled_from(["bgnbd", "mixture"]),
)
def test_invariants_hold_for_any_arguments(n, seed, returns_rate, days, population):
    start = pd.Timestamp("2023-03-05 08:30")
    end = start + pd.Timedelta(days=days)
    s = simulate(n, start, end, random_state=seed, returns_rate=returns_rate, population=population)
    for frame in (s.transactions, s.events):
        assert frame["timestamp"].between(start, end).all()
        assert pd.MultiIndex.from_frame(frame[["timestamp", "customer_id"]]).is_monotonic_increasing
    buys = purchases(s)
    first = buys.groupby("customer_id")["timestamp"].min()
    assert (first == s.truth["birth"]).all()
    joined = with_truth(buys, s, "dropout_time")
    assert not (joined["timestamp"] > joined["dropout_time"]).any()
    assert set(s.transactions.loc[s.transactions["amount"] < 0, "order_id"]) <= set(
        buys["order_id"]
    )


# ---- private sorting helpers ------------------------------------------------------------------------


def test_argsort_by_time_is_a_stable_argsort():
    sec = np.random.default_rng(0).integers(0, 50, 1_000)
    np.testing.assert_array_equal(_argsort_by_time(sec), np.argsort(sec, kind="stable"))


def test_sort_events_packed_and_lexsort_paths_agree():
    rng = np.random.default_rng(1)
    n, m, k = 7, 400, 60

    def draw(size):
        return (
            rng.integers(0, 30, size),
            rng.integers(0, n, size).astype(np.int32),
            rng.integers(0, 5, size).astype(np.int8),
            rng.integers(0, 5, size).astype(np.int8),
        )

    plain, valued = draw(m), (*draw(k), rng.random(k))
    fast = _sort_events(n, list(plain), list(valued), pack=True)
    slow = _sort_events(n, list(plain), list(valued), pack=False)
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a, b)
    sec, cust = fast[0], fast[1]
    assert (np.diff(sec * n + cust) >= 0).all()


def test_string_columns_without_pyarrow_fast_path(monkeypatch):
    fast = simulate(300, random_state=2, returns_rate=0.1)
    monkeypatch.setattr("vipml.data.synthetic._arrow_strings", lambda: False)
    slow = simulate(300, random_state=2, returns_rate=0.1)
    for name in ("transactions", "events", "truth"):
        pd.testing.assert_frame_equal(getattr(fast, name), getattr(slow, name))
