"""Omnichannel measures: channels, moves, sentiment consistency, single vs multi-channel."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from vipml import VipPipeline
from vipml.data import channel_sentiment, simulate
from vipml.errors import DataValidationError
from vipml.features import omnichannel_measures
from vipml.report import build_report


def small_log():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b", "a", "b"],
            "timestamp": pd.to_datetime(
                [
                    "2025-01-01",
                    "2025-01-05",
                    "2025-01-09",
                    "2025-01-03",
                    "2025-01-04",
                    "2025-02-10",
                    "2025-03-20",
                ]
            ),
            "amount": [10.0, 20.0, 30.0, 5.0, 5.0, 40.0, 7.0],
            "channel": ["web", "store", "web", "app", "app", "web", "app"],
        }
    )
    events = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b"],
            "timestamp": pd.to_datetime(["2025-01-02", "2025-01-06", "2025-01-07", "2025-01-04"]),
            "event_type": ["review", "support_ticket", "review", "visit"],
            "channel": ["web", "call_center", "web", "email"],
            "value": [0.8, -0.6, 0.4, np.nan],
        }
    )
    return tx, events


def test_per_customer_measures_on_a_hand_written_log():
    tx, events = small_log()
    report = omnichannel_measures(tx, events, cutoff="2025-01-31", horizon="30D", n_boot=200)
    a, b = report.customers.loc["a"], report.customers.loc["b"]
    assert (a["n_channels"], a["channels"], a["primary_channel"]) == (2, "store+web", "web")
    assert a["channel_switch_rate"] == 1.0  # web -> store -> web
    assert (b["n_channels"], b["multichannel"], b["channel_switch_rate"]) == (1, False, 0.0)
    assert (a["n_touchpoints"], b["n_touchpoints"]) == (3, 2)
    assert a["sentiment_web"] == pytest.approx(0.6)
    assert a["sentiment_call_center"] == pytest.approx(-0.6)
    assert a["sentiment_spread"] == pytest.approx(1.2)
    assert a["sentiment_consistency"] == pytest.approx(0.4)
    assert np.isnan(b["sentiment_spread"])
    # a bought again on 02-10 (within 30 days of the cutoff), b only on 03-20 (after).
    assert report.customers["retained"].tolist() == [True, False]
    assert report.customers["spend_next"].tolist() == [40.0, 0.0]
    assert report.groups.loc["difference", "retention"] == 1.0
    assert report.transitions.loc["web", "store"] == 1 and report.transitions.loc["app", "app"] == 1


def test_multichannel_value_on_the_simulated_shop_has_honest_intervals():
    sim = simulate(1500, "2024-01-01", "2025-12-31", random_state=4)
    events = channel_sentiment(sim)
    report = omnichannel_measures(sim.transactions, events, cutoff="2025-06-30", random_state=1)
    groups = report.groups
    for name in groups.index:
        row = groups.loc[name]
        assert row["retention_lower"] <= row["retention"] <= row["retention_upper"]
        assert row["value_lower"] <= row["value"] <= row["value_upper"]
    # Customers who buy in several channels buy more often in the simulator: retained more.
    assert groups.loc["difference", "retention_lower"] > 0
    # Channel-dependent sentiment: the call centre is sourer than the app.
    customers = report.customers
    assert customers["sentiment_call_center"].mean() < customers["sentiment_app"].mean()
    assert 0 < report.overall["mean_sentiment_consistency"] < 1
    again = omnichannel_measures(sim.transactions, events, cutoff="2025-06-30", random_state=1)
    pd.testing.assert_frame_equal(report.groups, again.groups)


def test_channel_sentiment_leaves_the_simulation_alone():
    sim = simulate(200, random_state=6)
    before = sim.events.copy()
    shifted = channel_sentiment(sim, {"call_center": -0.5})
    pd.testing.assert_frame_equal(sim.events, before)
    calls = (sim.events["channel"] == "call_center") & sim.events["value"].notna()
    assert (shifted.loc[calls, "value"] <= sim.events.loc[calls, "value"]).all()
    others = ~sim.events["channel"].isin(["call_center"])
    pd.testing.assert_series_equal(shifted.loc[others, "value"], sim.events.loc[others, "value"])


def test_a_log_without_channels_is_refused():
    tx, _ = small_log()
    with pytest.raises(DataValidationError, match="channel column"):
        omnichannel_measures(tx.drop(columns="channel"), cutoff="2025-01-31")


def test_the_report_gains_an_omnichannel_section():
    sim = simulate(300, "2024-06-01", "2025-12-31", random_state=3, events=False)
    config = {
        "churn": {"n_snapshots": 2, "lgbm_params": {"num_boost_round": 10, "num_threads": 1}},
        "ltv": {"n_draws": 10},
        "segments": {"n_segments": 3},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = VipPipeline(config).fit(sim.transactions, cutoff="2025-06-30")
        measures = omnichannel_measures(sim.transactions, cutoff="2025-06-30", n_boot=100)
        page = build_report(pipe, sim.transactions, at="2025-06-30", omnichannel=measures)
        plain = build_report(pipe, sim.transactions, at="2025-06-30")
    assert '<section id="omnichannel">' in page and "omnichannel" not in plain
    assert "multi-channel" in page and "Moves between consecutive purchases" in page
