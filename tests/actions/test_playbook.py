"""Playbook rules, their overrides, churn-reason drivers and the next best action."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from vipml.actions import (
    DEFAULT_PLAYBOOK,
    NBA_COLUMNS,
    NO_CONTACT,
    Playbook,
    Rule,
    SuppressionList,
    next_best_action,
    reason_driver,
    risk_band,
    tier_thresholds,
)
from vipml.churn.reasons import DRIVERS, explain
from vipml.errors import DataValidationError, DataWarning

TIERS = {"VIP": 1000.0, "Gold": 250.0}


def frame(**columns):
    n = len(next(iter(columns.values())))
    base = {
        "clv": [500.0] * n,
        "churn_probability": [0.5] * n,
        "vip_tier": ["Standard"] * n,
        "segment": ["Loyal"] * n,
        "rfm_segment": ["Loyal"] * n,
        "reason_1": [None] * n,
        "days_since_last_purchase": [10.0] * n,
        "gap_median_days": [30.0] * n,
    }
    base.update(columns)
    return pd.DataFrame(base, index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"))


def test_reason_driver_reads_every_wording_the_churn_reasons_write():
    # one row whose features give each driver a text; each driver pushed first in turn
    names = sorted({*DRIVERS, "n_events_30d", "n_events_90d"})
    row = dict.fromkeys(names, 3.0) | {"T": 20.0, "frequency": 2.0, "value_trend": -0.3}
    features = pd.DataFrame([row] * 2, index=pd.Index(["a", "b"], name="customer_id"))
    drivers = sorted({DRIVERS.get(n, "engagement") for n in names})
    for driver in drivers:
        contributions = np.array(
            [[1.0 if (DRIVERS.get(n, "engagement") == driver) else -1.0 for n in names]] * 2
        )
        text = explain(
            features,
            contributions,
            names,
            base_margin=np.zeros(2),
            horizon=dt.timedelta(weeks=13),
            top=1,
            reference=0.0,
        )["reason_1"]
        assert reason_driver(text).tolist() == [driver, driver], text.iloc[0]


def test_reason_driver_other_and_missing():
    assert reason_driver(["my_feature = 3", "", None, np.nan]).tolist() == [
        "other",
        "none",
        "none",
        "none",
    ]


def test_risk_bands_and_custom_bounds():
    assert risk_band([0.0, 0.29, 0.3, 0.6, 1.0]).tolist() == [
        "low",
        "low",
        "medium",
        "high",
        "high",
    ]
    assert risk_band([0.15, 0.25], (0.1, 0.2)).tolist() == ["medium", "high"]


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"cost": -1.0}, "cost"),
        ({"response": 1.5}, "response"),
        ({"value": "loyalty"}, "value"),
        ({"risk": "extreme"}, "risk bands"),
        ({"timing": "later"}, "timing"),
        ({"segment": 3}, "segment"),
        ({"action": NO_CONTACT}, "other than"),
    ],
)
def test_rule_refuses_bad_fields(changes, match):
    fields = {"action": "call", "cost": 1.0, "response": 0.1} | changes
    with pytest.raises(DataValidationError, match=match):
        Rule(**fields)


def test_playbook_overrides_change_the_choice():
    scores = frame(churn_probability=[0.7, 0.7])
    assert next_best_action(scores, tiers=TIERS)["action"].tolist() == ["retention_offer"] * 2
    # retention now costs more than it can win: the next best rule (reactivation) takes over
    dearer = DEFAULT_PLAYBOOK.with_costs({"retention_offer": 100.0})
    assert next_best_action(scores, dearer, tiers=TIERS)["action"].tolist() == ["reactivation"] * 2
    # a measured response changes the value too
    better = DEFAULT_PLAYBOOK.with_responses({"retention_offer": 0.5})
    nba = next_best_action(scores, better, tiers=TIERS)
    assert nba["expected_value"].tolist() == pytest.approx([0.5 * 500 * 0.7] * 2)
    # removing actions leaves nothing that applies
    bare = DEFAULT_PLAYBOOK.without("retention_offer", "reactivation", "service_recovery")
    nba = next_best_action(scores, bare, tiers=TIERS)
    assert nba["action"].tolist() == [NO_CONTACT] * 2
    assert nba["reason"].str.endswith("no rule applies").all()
    # the costs= argument is the same override
    assert (
        next_best_action(scores, tiers=TIERS, costs={"retention_offer": 100.0})["action"].tolist()
        == ["reactivation"] * 2
    )


def test_a_rule_added_first_wins_ties_and_matching_columns_narrow_it():
    scores = frame(churn_probability=[0.7, 0.7], rfm_segment=["At risk", "Loyal"])
    call = Rule("call", cost=10.0, response=0.1, rfm_segment="At risk")
    nba = next_best_action(scores, DEFAULT_PLAYBOOK.with_rule(call, first=True), tiers=TIERS)
    assert nba["action"].tolist() == ["call", "retention_offer"]
    later = next_best_action(scores, DEFAULT_PLAYBOOK.with_rule(call), tiers=TIERS)
    assert later["action"].tolist() == ["retention_offer", "retention_offer"]


def test_playbook_table_round_trip_and_errors():
    table = DEFAULT_PLAYBOOK.to_frame()
    assert Playbook.from_frame(table) == DEFAULT_PLAYBOOK
    assert Playbook.from_frame(table.reset_index()) == DEFAULT_PLAYBOOK
    with pytest.raises(DataValidationError, match="no action"):
        DEFAULT_PLAYBOOK.with_costs({"sms": 1.0})
    with pytest.raises(DataValidationError, match="no field"):
        DEFAULT_PLAYBOOK.replace("retention_offer", price=3.0)
    with pytest.raises(DataValidationError, match="missing"):
        Playbook.from_frame(table.drop(columns="cost"))
    with pytest.raises(DataValidationError, match="risk_bands"):
        Playbook(risk_bands=(0.6, 0.3))


def test_values_at_stake_and_upgrade_gap():
    scores = frame(
        clv=[2000.0, 300.0, 100.0],
        churn_probability=[0.1, 0.1, 0.1],
        vip_tier=["VIP", "Gold", "Standard"],
    )
    nba = next_best_action(scores, tiers=TIERS)
    assert nba["action"].tolist() == ["vip_experience", "upgrade_offer", "upgrade_offer"]
    assert nba["value_at_stake"].tolist() == pytest.approx([200.0, 700.0, 150.0])
    assert nba["expected_value"].tolist() == pytest.approx([40.0, 70.0, 15.0])
    assert (nba["net_value"] == nba["expected_value"] - nba["cost"]).all()
    assert "Gold from 250.00" in nba.loc["c2", "reason"]


def test_next_best_action_on_pipeline_scores(scores, pipeline):
    before = scores.copy()
    nba = next_best_action(scores, tiers=pipeline, at="2025-06-30")
    pd.testing.assert_frame_equal(scores, before)  # the input is not modified
    assert list(nba.columns) == list(NBA_COLUMNS) and nba.index.equals(scores.index)
    contact = nba["action"] != NO_CONTACT
    assert set(nba["action"]) <= {*DEFAULT_PLAYBOOK.actions, NO_CONTACT}
    assert contact.any() and (~contact).any()
    assert (nba.loc[contact, "net_value"] > 0).all()
    assert (nba.loc[~contact, ["cost", "expected_value", "net_value"]] == 0).all().all()
    assert nba.loc[~contact, "contact_date"].isna().all()
    assert (nba.loc[contact, "contact_date"] >= pd.Timestamp("2025-06-30")).all()
    thresholds = tier_thresholds(pipeline)
    upgrades = nba[nba["action"] == "upgrade_offer"]
    gold = upgrades[upgrades["vip_tier"] == "Gold"]
    assert np.allclose(gold["value_at_stake"], thresholds["VIP"] - gold["clv"])


def test_uplift_replaces_the_assumed_response():
    scores = frame(churn_probability=[0.7, 0.7, 0.7])
    nba = next_best_action(scores, tiers=TIERS, uplift=pd.Series([0.2, 0.0, -0.1], scores.index))
    # every at-risk action expects the same gain from the uplift: the cheapest one wins
    assert nba["action"].tolist() == ["reactivation", NO_CONTACT, NO_CONTACT]
    assert nba.loc["c0", "expected_value"] == pytest.approx(0.2 * 500.0)
    spend = next_best_action(scores, tiers=TIERS, uplift=[30.0, 5.0, 1.0], uplift_kind="value")
    assert spend["expected_value"].tolist() == pytest.approx([30.0, 5.0, 0.0])  # 1.0 < cost 2
    with pytest.raises(DataValidationError, match="no value"):
        next_best_action(scores, tiers=TIERS, uplift=pd.Series([0.1], index=["c0"]))


def test_contact_policy_withholds_customers():
    scores = frame(churn_probability=[0.7, 0.7])
    nba = next_best_action(scores, tiers=TIERS, contact_policy=SuppressionList(["c1"], "erased"))
    assert nba["action"].tolist() == ["retention_offer", NO_CONTACT]
    assert nba.loc["c1", "reason"] == "no_contact: withheld by the contact policy: erased"
    with pytest.raises(DataValidationError, match="None \\(allowed\\) or a reason"):
        next_best_action(scores, tiers=TIERS, contact_policy=lambda c: [1, 2])


def test_bad_scores_are_refused_with_the_column_and_rows():
    with pytest.raises(DataValidationError, match="clv"):
        next_best_action(frame(clv=[1.0]).drop(columns="clv"), tiers=TIERS)
    with pytest.raises(DataValidationError, match="c1"):
        next_best_action(frame(clv=[1.0, np.nan]), tiers=TIERS)
    with pytest.raises(DataValidationError, match="churn_probability"):
        next_best_action(frame(churn_probability=[1.5]), tiers=TIERS)
    twice = pd.concat([frame(clv=[1.0]), frame(clv=[2.0])])
    with pytest.raises(DataValidationError, match="repeat"):
        next_best_action(twice, tiers=TIERS)
    with pytest.raises(DataValidationError, match="decreasing"):
        next_best_action(frame(clv=[1.0]), tiers={"Gold": 1.0, "VIP": 5.0})


def test_inferred_tiers_warn():
    scores = frame(clv=[2000.0, 300.0, 100.0], vip_tier=["VIP", "Gold", "Standard"])
    with pytest.warns(DataWarning, match="tiers="):
        next_best_action(scores)
