"""Campaign effect: recovery of the simulator's known effect, groups, ROI and refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vipml.actions import EFFECT_COLUMNS, campaign_effect, plan_campaign
from vipml.data import simulate, simulate_campaign
from vipml.errors import DataValidationError
from vipml.features import labels_after

from .conftest import CUTOFF

RUNS, NEEDED = 40, 32


def random_campaign(seed: int, n: int = 1500, treated_share: float = 0.5):
    sim = simulate(n, "2024-01-01", "2025-12-31", population="mixture", random_state=seed)
    ids = sim.truth.index
    rng = np.random.default_rng([seed, 7])  # not the simulation's own stream
    group = np.where(rng.random(ids.size) < treated_share, "treated", "holdout")
    plan = pd.DataFrame({"group": group, "action": "retention_offer", "cost": 4.0}, index=ids)
    campaign = simulate_campaign(sim, ids[group == "treated"], CUTOFF, "8W", random_state=seed)
    return plan, campaign


def test_bound_of_the_coverage_test_cannot_be_passed_by_luck():
    # a correct 90% interval passes with probability > 0.98, one covering 60% with < 0.01
    # (and one covering by being too wide fails the width check below)
    assert stats.binom.sf(NEEDED - 1, RUNS, 0.9) > 0.98
    assert stats.binom.sf(NEEDED - 1, RUNS, 0.6) < 0.01


def test_effect_recovers_the_true_average_effect_within_its_interval():
    covered = {"purchase_rate": 0, "revenue": 0}
    width_ratio = {"purchase_rate": [], "revenue": []}
    truth_of = {"purchase_rate": "uplift_purchase_prob", "revenue": "uplift_spend"}
    for seed in range(RUNS):
        plan, campaign = random_campaign(seed)
        effect = campaign_effect(
            plan,
            campaign.transactions,
            window="8W",
            start=CUTOFF,
            by=(),
            n_boot=400,
            random_state=seed,
        )
        labels = labels_after(campaign.transactions, CUTOFF, "8W").reindex(plan.index)
        outcome = {
            "purchase_rate": (labels["purchases_next"] > 0).astype(float),
            "revenue": labels["spend_next"],
        }
        for metric, column in truth_of.items():
            row = effect.loc[("all", "all", metric)]
            truth = campaign.truth.loc[plan.index, column].mean()
            covered[metric] += bool(row["effect_low"] <= truth <= row["effect_high"])
            y, t = outcome[metric], plan["group"] == "treated"
            se = np.sqrt(y[t].var(ddof=1) / t.sum() + y[~t].var(ddof=1) / (~t).sum())
            width_ratio[metric].append((row["effect_high"] - row["effect_low"]) / (2 * 1.645 * se))
    for metric in covered:
        assert covered[metric] >= NEEDED, (metric, covered[metric])
        # not wide enough to cover by luck: the width of a normal 90% interval, within 15%
        assert 0.85 < np.mean(width_ratio[metric]) < 1.15, (metric, np.mean(width_ratio[metric]))


def test_groups_roi_and_refusals(shop, scores, pipeline):
    plan = plan_campaign(scores, 3000.0, tiers=pipeline, at=CUTOFF, holdout=0.4, random_state=5)
    campaign = simulate_campaign(shop, plan.treated.index, CUTOFF, "8W", random_state=1)
    effect = campaign_effect(plan, campaign.transactions, window="8W", pipeline=pipeline)
    assert list(effect.columns) == list(EFFECT_COLUMNS)
    assert set(effect.index.get_level_values("dimension")) == {
        "all",
        "action",
        "segment",
        "vip_tier",
    }
    assert set(effect.index.get_level_values("metric")) == {
        "purchase_rate",
        "revenue",
        "churn_rate",
        "clv",
    }
    overall = effect.loc[("all", "all")]
    assert overall.loc["purchase_rate", "effect"] == pytest.approx(
        -overall.loc["churn_rate", "effect"]
    )
    revenue = overall.loc["revenue"]
    assert revenue["cost"] == pytest.approx(plan.summary["spent"])
    assert revenue["incremental"] == pytest.approx(revenue["effect"] * revenue["n_treated"])
    assert revenue["roi"] == pytest.approx(
        (revenue["incremental"] - revenue["cost"]) / revenue["cost"]
    )
    assert revenue["roi_low"] <= revenue["roi"] <= revenue["roi_high"]
    assert overall["reliable"].all()
    # small groups are flagged, without figures
    small = effect[effect["n_holdout"] < 30]
    assert len(small) and (~small["reliable"]).all() and small["effect"].isna().all()
    assert small["note"].str.contains("too few customers").all()
    # seeded: the same call gives the same table
    again = campaign_effect(plan, campaign.transactions, window="8W", pipeline=pipeline)
    pd.testing.assert_frame_equal(effect, again)


def test_a_campaign_too_small_to_measure_is_refused(shop, scores, pipeline):
    plan = plan_campaign(scores, 100.0, tiers=pipeline, at=CUTOFF, holdout=0.1)
    with pytest.raises(DataValidationError, match="cannot be measured"):
        campaign_effect(plan, shop.transactions, window="8W")
    plan0 = plan_campaign(scores, 3000.0, tiers=pipeline, at=CUTOFF, holdout=0.0)
    with pytest.raises(DataValidationError, match="0 held out"):
        campaign_effect(plan0, shop.transactions, window="8W")


def test_bad_inputs_are_refused(shop, scores, pipeline):
    plan = plan_campaign(scores, 3000.0, tiers=pipeline, holdout=0.3)  # no scoring date
    with pytest.raises(DataValidationError, match="start"):
        campaign_effect(plan, shop.transactions, window="8W")
    with pytest.raises(DataValidationError, match="incomplete"):
        campaign_effect(plan, shop.transactions, window="40W", start=CUTOFF)
    with pytest.raises(DataValidationError, match="unit"):
        campaign_effect(plan, shop.transactions, window=8, start=CUTOFF)
    stranger = plan.table.rename(index={plan.table.index[0]: "nobody"})
    with pytest.raises(DataValidationError, match="nobody"):
        campaign_effect(stranger, shop.transactions, window="8W", start=CUTOFF)
    bad = plan.table.assign(group="control")
    with pytest.raises(DataValidationError, match="group"):
        campaign_effect(bad, shop.transactions, window="8W", start=CUTOFF)
    with pytest.raises(DataValidationError, match="lacks"):
        campaign_effect(
            plan.table.drop(columns="cost"), shop.transactions, window="8W", start=CUTOFF
        )
