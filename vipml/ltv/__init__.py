"""Customer lifetime value models fitted by maximum likelihood.

Purchase-count models (:class:`BetaGeo`, :class:`ParetoNBD`, :class:`ModifiedBetaGeo`) predict
how many purchases each customer will make and whether they are still active; the spend model
(:class:`GammaGamma`) predicts how much they spend per transaction. All take an RFM summary
indexed by customer id (see :func:`vipml.features.rfm_summary`).
"""

from vipml.ltv.bgnbd import BetaGeo
from vipml.ltv.gamma_gamma import GammaGamma
from vipml.ltv.modified_bgnbd import ModifiedBetaGeo
from vipml.ltv.pareto_nbd import ParetoNBD

__all__ = ["BetaGeo", "GammaGamma", "ModifiedBetaGeo", "ParetoNBD"]
