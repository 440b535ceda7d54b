"""The contact policy in vipml.actions' plans and next best actions."""

from __future__ import annotations

import pandas as pd

from vipml.actions import next_best_action, plan_campaign
from vipml.privacy import ContactPolicy, SuppressionList

TIERS = {"VIP": 2000.0, "Gold": 500.0}


def scores() -> pd.DataFrame:
    ids = ["a", "b", "c", "d", "e", "f"]
    return pd.DataFrame(
        {
            "clv": [900.0, 850.0, 800.0, 750.0, 700.0, 650.0],
            "churn_probability": [0.7, 0.8, 0.75, 0.9, 0.85, 0.6],
            "vip_tier": "Gold",
            "segment": "Loyal",
            "rfm_segment": "At risk",
            "days_since_last_purchase": [40.0, 50.0, 45.0, 60.0, 55.0, 41.0],
            "gap_median_days": [20.0, 25.0, 22.0, 30.0, 28.0, 21.0],
        },
        index=pd.Index(ids, name="customer_id"),
    )


def policy() -> ContactPolicy:
    consents = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e"],
            "channel": "email",
            "purpose": "advertising",
            "status": ["granted", "granted", "revoked", "granted", "granted"],
            "since": ["2025-01-01", "2021-01-01", "2025-01-01", "2025-01-01", "2025-01-01"],
        }
    )
    tombstones = SuppressionList()
    tombstones.add(["d"])
    return ContactPolicy(consents, suppression=tombstones, now="2025-03-01 02:00")


def test_a_campaign_plan_contacts_only_whom_the_policy_allows():
    plan = plan_campaign(
        scores(), 10_000.0, tiers=TIERS, at="2025-03-01", holdout=0.0, contact_policy=policy()
    )
    assert plan.withheld["reason"].to_dict() == {
        "b": "expired",  # consent of 2021: not re-confirmed within two years
        "c": "revoked",
        "d": "suppressed",
        "f": "no_consent",
    }
    assert sorted(plan.table.index) == ["a", "e"]
    assert plan.summary["withheld"] == {
        "expired": 1,
        "no_consent": 1,
        "revoked": 1,
        "suppressed": 1,
    }


def test_next_best_actions_say_the_policy_withheld_them():
    actions = next_best_action(scores(), tiers=TIERS, at="2025-03-01", contact_policy=policy())
    held = actions.loc[["b", "c", "d", "f"], "reason"].tolist()
    assert all("withheld by the contact policy" in text for text in held)
    assert "withheld" not in " ".join(actions.loc[["a", "e"], "reason"])
