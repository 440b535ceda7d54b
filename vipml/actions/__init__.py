"""From scores to decisions: who to contact, with what, when, within a budget, and did it pay.

Everything here reads the pipeline's outputs (the scores of :meth:`vipml.VipPipeline.score`,
its tier thresholds) and vipml's feature builders, never a raw log:

- :class:`Playbook` and :class:`Rule`: which actions a customer is eligible for (by value
  segment, RFM segment, VIP tier, churn-risk band and churn reason), at what cost and with what
  expected response; :func:`next_best_action` gives each customer the best of them, with the
  value at stake, the reason in words and the contact timing from their own purchase rhythm
  (:func:`contact_timing`).
- :func:`plan_campaign`: the contacts that maximise the expected net value within a budget
  (greedy on value per cost, with the bound on what greedy loses), and a seeded random holdout
  stratified by action; a :class:`ContactPolicy` filters every list first.
- :func:`campaign_effect`: contacted against held-out customers after the campaign, overall
  and by action, segment and tier, with bootstrap intervals and ROI.
- :class:`UpliftModel` (two-model and X-learner on LightGBM) and the Qini and uplift curves
  (:func:`qini_coefficient`, :func:`compare_targeting`) to target by response instead of risk.
"""

from vipml.actions.effect import EFFECT_COLUMNS, EFFECT_METRICS, campaign_effect
from vipml.actions.metrics import (
    auuc_score,
    compare_targeting,
    qini_coefficient,
    qini_curve,
    uplift_at_k,
    uplift_curve,
)
from vipml.actions.next_best import NBA_COLUMNS, next_best_action, tier_thresholds
from vipml.actions.plan import PLAN_COLUMNS, CampaignPlan, plan_campaign, read_plan
from vipml.actions.playbook import (
    DEFAULT_PLAYBOOK,
    DEFAULT_PLAYBOOK_RULES,
    NO_CONTACT,
    Playbook,
    Rule,
    reason_driver,
    risk_band,
)
from vipml.actions.policy import ContactPolicy, SuppressionList
from vipml.actions.timing import contact_timing
from vipml.actions.uplift import UpliftModel

__all__ = [
    "DEFAULT_PLAYBOOK",
    "DEFAULT_PLAYBOOK_RULES",
    "EFFECT_COLUMNS",
    "EFFECT_METRICS",
    "NBA_COLUMNS",
    "NO_CONTACT",
    "PLAN_COLUMNS",
    "CampaignPlan",
    "ContactPolicy",
    "Playbook",
    "Rule",
    "SuppressionList",
    "UpliftModel",
    "auuc_score",
    "campaign_effect",
    "compare_targeting",
    "contact_timing",
    "next_best_action",
    "plan_campaign",
    "qini_coefficient",
    "qini_curve",
    "read_plan",
    "reason_driver",
    "risk_band",
    "tier_thresholds",
    "uplift_at_k",
    "uplift_curve",
]
