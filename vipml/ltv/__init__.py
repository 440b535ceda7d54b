"""Customer lifetime value models fitted by maximum likelihood.

Purchase-count models (:class:`BetaGeo`, :class:`ParetoNBD`, :class:`ModifiedBetaGeo`, and
:class:`BetaGeoBetaBinom` for discrete transaction opportunities) predict how many purchases
each customer will make and whether they are still active; the spend model
(:class:`GammaGamma`) predicts how much they spend per transaction;
:func:`customer_lifetime_value` discounts the two into a value per customer, and
:func:`evaluate_holdout` checks predictions against a holdout period. All take a summary
indexed by customer id (see :func:`vipml.features.rfm_summary` and
:func:`vipml.features.discrete_summary`). For contractual businesses, where cancellations are
observed, :class:`ShiftedBetaGeometric` projects retention and residual lifetimes.
"""

from vipml.ltv.bgbb import BetaGeoBetaBinom
from vipml.ltv.bgnbd import BetaGeo
from vipml.ltv.clv import (
    customer_lifetime_value,
    customer_lifetime_value_interval,
    per_period_rate,
)
from vipml.ltv.evaluate import HoldoutReport, evaluate_holdout, holdout_metrics, holdout_table
from vipml.ltv.gamma_gamma import GammaGamma
from vipml.ltv.modified_bgnbd import ModifiedBetaGeo
from vipml.ltv.pareto_nbd import ParetoNBD
from vipml.ltv.sbg import ShiftedBetaGeometric, contracts_from_survival

__all__ = [
    "BetaGeo",
    "BetaGeoBetaBinom",
    "GammaGamma",
    "HoldoutReport",
    "ModifiedBetaGeo",
    "ParetoNBD",
    "ShiftedBetaGeometric",
    "contracts_from_survival",
    "customer_lifetime_value",
    "customer_lifetime_value_interval",
    "evaluate_holdout",
    "holdout_metrics",
    "holdout_table",
    "per_period_rate",
]
