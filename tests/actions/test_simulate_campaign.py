"""The simulator's campaigns: known, heterogeneous responses; untreated rows untouched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vipml.data import CampaignSimulation, simulate, simulate_campaign
from vipml.data.synthetic import CAMPAIGN_TRUTH_COLUMNS, DEFAULT_CAMPAIGN_EFFECTS

START = "2025-03-31"


@pytest.fixture(scope="module")
def sim():
    return simulate(3000, "2024-01-01", "2025-12-31", population="mixture", random_state=4)


def test_simulate_is_unchanged_by_a_campaign(sim):
    before = sim.transactions.copy()
    again = simulate(3000, "2024-01-01", "2025-12-31", population="mixture", random_state=4)
    simulate_campaign(sim, sim.truth.index[:100], START, "8W")
    pd.testing.assert_frame_equal(sim.transactions, before)
    pd.testing.assert_frame_equal(again.transactions, before)


def test_only_treated_customers_change_and_only_in_the_window(sim):
    treated = sim.truth.index[::3]
    campaign = simulate_campaign(sim, treated, START, "8W", random_state=1)
    assert isinstance(campaign, CampaignSimulation)
    tx = campaign.transactions
    assert list(tx.columns) == list(sim.transactions.columns)
    assert tx["timestamp"].is_monotonic_increasing
    others = ~sim.transactions["customer_id"].isin(treated)
    pd.testing.assert_frame_equal(
        tx[~tx["customer_id"].isin(treated)].reset_index(drop=True),
        sim.transactions[others].reset_index(drop=True),
    )
    added = tx[tx["order_id"].str.startswith("K")]
    assert added["customer_id"].isin(treated).all()
    assert (added["timestamp"] > pd.Timestamp(START)).all()
    assert (added["timestamp"] <= pd.Timestamp(START) + pd.Timedelta("8W")).all()
    outside = tx[
        (tx["timestamp"] <= pd.Timestamp(START))
        | (tx["timestamp"] > pd.Timestamp(START) + pd.Timedelta("8W"))
    ]
    assert len(outside) == len(
        sim.transactions[
            (sim.transactions["timestamp"] <= pd.Timestamp(START))
            | (sim.transactions["timestamp"] > pd.Timestamp(START) + pd.Timedelta("8W"))
        ]
    )
    assert list(campaign.truth.columns) == list(CAMPAIGN_TRUTH_COLUMNS)
    assert campaign.truth["treated"].sum() == len(treated)


def test_the_effect_is_heterogeneous_and_matches_its_truth(sim):
    everyone = sim.truth.index
    campaign = simulate_campaign(sim, everyone, START, "8W", random_state=2)
    truth = campaign.truth
    rates = truth.groupby("latent_type")["rate_effect"].first().to_dict()
    assert rates == {t: DEFAULT_CAMPAIGN_EFFECTS[t]["rate"] for t in rates}
    spend = truth[truth["active_at_start"]].groupby("latent_type")["uplift_spend"].mean()
    assert spend["bargain"] > 0 and spend["regular"] > 0
    assert spend["vip"] < 0 and spend["one_time"] == 0
    # added purchases: Poisson with the truth's mean (customers whose rate does not fall)
    added = campaign.transactions["order_id"].str.startswith("K").sum()
    expected_added = truth.loc[truth["rate_effect"] >= 0, "uplift_purchases"].sum()
    assert abs(added - expected_added) < 4 * np.sqrt(expected_added)
    # removed purchases: each vip purchase in the window with probability 0.1
    lost = len(sim.transactions) + added - len(campaign.transactions)
    at_stake = truth.loc[truth["rate_effect"] < 0, "baseline_purchases"].sum()
    assert abs(lost - 0.1 * at_stake) < 4 * np.sqrt(0.1 * 0.9 * at_stake)


def test_custom_effects_and_errors(sim):
    flat = {
        t: {"rate": 0.0, "reactivation": 0.0} for t in ("vip", "regular", "bargain", "one_time")
    }
    none = simulate_campaign(sim, sim.truth.index, START, "8W", effects=flat)
    pd.testing.assert_frame_equal(none.transactions, sim.transactions)
    assert (none.truth["uplift_spend"] == 0).all()
    with pytest.raises(ValueError, match="no entry"):
        simulate_campaign(sim, sim.truth.index[:5], START, effects={"vip": flat["vip"]})
    with pytest.raises(ValueError, match=">= -1"):
        simulate_campaign(
            sim,
            sim.truth.index[:5],
            START,
            effects={**flat, "vip": {"rate": -2.0, "reactivation": 0.0}},
        )
    with pytest.raises(ValueError, match="not customers"):
        simulate_campaign(sim, ["nobody"], START)
    with pytest.raises(ValueError, match="within the simulation"):
        simulate_campaign(sim, sim.truth.index[:5], "2025-12-01", "8W")
    with pytest.raises(TypeError, match="Simulation"):
        simulate_campaign(sim.transactions, [], START)
    late = simulate(200, "2024-01-01", "2025-12-31", acquisition_end="2025-12-01", random_state=1)
    born = late.truth.index[late.truth["birth"] > pd.Timestamp(START)]
    with pytest.raises(ValueError, match="after the campaign start"):
        simulate_campaign(late, born[:2], START)
