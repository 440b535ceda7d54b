"""The HTML report's campaign sections: the plan and, once measured, its effect."""

from __future__ import annotations

import re

from vipml.actions import campaign_effect, plan_campaign
from vipml.data import simulate_campaign
from vipml.report import build_report, campaign_report

from .conftest import CUTOFF


def test_campaign_page_and_report_sections(shop, scores, pipeline):
    plan = plan_campaign(scores, 3000.0, tiers=pipeline, at=CUTOFF, holdout=0.4, window="8W")
    page = campaign_report(plan)
    assert page.startswith("<!DOCTYPE html>") and 'id="plan"' in page and 'id="effect"' not in page
    assert f"{plan.summary['n_treated']:,}" in page
    for action in plan.summary["by_action"]:
        assert f"{action} (treated)" in page
    campaign = simulate_campaign(shop, plan.treated.index, CUTOFF, "8W", random_state=0)
    effect = campaign_effect(plan, campaign.transactions)
    page = campaign_report(plan, effect)
    assert 'id="effect"' in page and "ROI" in page and "too few customers" in page
    assert "<script" not in page and not re.search(r"https?://", page)
    report = build_report(pipeline, campaign.transactions, at=CUTOFF, plan=plan, effect=effect)
    assert report.count('id="plan"') == 1 and report.count('id="effect"') == 1
    assert report.index('id="reasons"') < report.index('id="plan"')
