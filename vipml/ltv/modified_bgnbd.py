"""MBG/NBD model (Batislam, Denizel & Filiztekin 2007): :class:`ModifiedBetaGeo`."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from vipml.ltv._base import FloatArray, Params, PurchaseModel
from vipml.ltv._likelihoods import (
    modified_bgnbd_loglik,
    modified_bgnbd_loglik_grad,
    modified_bgnbd_total,
)
from vipml.ltv.bgnbd import alive_expectation, bg_family_pmf, dropout_odds, on_unique_pairs

__all__ = ["ModifiedBetaGeo"]

logger = logging.getLogger(__name__)


def _floats(*arrays: Any) -> list[FloatArray]:
    return [np.asarray(a, dtype=np.float64) for a in arrays]


class ModifiedBetaGeo(PurchaseModel):
    r"""MBG/NBD model: like BG/NBD, but a customer may also drop out right after the first purchase.

    Each customer buys at rate :math:`\lambda \sim \mathrm{Gamma}(r, \alpha)` while active and
    becomes inactive with probability :math:`p \sim \mathrm{Beta}(a, b)` at time 0 and after
    each repeat purchase, so customers without repeat purchases can be inactive (in BG/NBD they
    are alive with certainty). Same fitting, attributes and methods as
    :class:`~vipml.ltv.BetaGeo`.

    Parameters
    ----------
    penalizer : float, default 0.0
        L2 penalty on the log-parameters added to the mean negative log-likelihood.
    penalizer_kind : {"log", "lifetimes"}, default "log"
        ``"lifetimes"`` reproduces lifetimes' ``ModifiedBetaGeoFitter(penalizer_coef=penalizer)``: an
        L2 penalty on the parameters themselves, towards 0, with time rescaled so the oldest
        customer has age 1 (see docs/migrating.md).
    purchase_covariates : sequence of str, default ()
        Numeric columns of the summary that scale the purchase rate: ``alpha_i = alpha * exp(-gamma' z_i)``, so a
        positive coefficient means more purchases (CLVTools' link). Coefficients appear in
        ``params_`` as ``"purchase.<column>"``; see :mod:`vipml.ltv._covariates`.
    dropout_covariates : sequence of str, default ()
        Numeric columns that scale the dropout process: ``a_i, b_i = a, b * exp(gamma' z_i)``; coefficients
        ``"dropout.<column>"``.
    tol : float, default 1e-8
        BFGS tolerance on the gradient of the mean negative log-likelihood.
    max_iter : int, default 500
        Maximum BFGS iterations.

    Attributes
    ----------
    params_ : dict
        ``{"r", "alpha", "a", "b"}``.
    loglik_ : float
        Total log-likelihood.
    converged_ : bool
        True (a failed fit raises).
    n_customers_ : int or float
        Customers fitted (sum of the weights when given).
    covariance_ : pandas.DataFrame
        Covariance of the estimates.
    standard_errors_ : pandas.Series
        Standard errors.
    vipml_version_ : str
        vipml version that fitted the model.

    References
    ----------
    Batislam, E. P., Denizel, M. & Filiztekin, A. (2007). "Empirical validation and comparison
    of models for customer base analysis". International Journal of Research in Marketing
    24(3), 201-209: likelihood (appendix A, eq. 3), P(alive) (eq. 5), E[X(t)] (eq. 4).
    Wagner, U. & Hoppe, D. (2008). "Erratum on the MBG/NBD model". IJRM 25(3), 225-226:
    corrected conditional expectation.

    Examples
    --------
    >>> import pandas as pd
    >>> from vipml.ltv import ModifiedBetaGeo
    >>> rfm = pd.DataFrame(
    ...     {"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
    ...      "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
    ...      "T": [30.0, 38.0, 30.0, 39.0, 39.0]},
    ...     index=pd.Index(["a", "b", "c", "d", "e"], name="customer_id"))
    >>> mbg = ModifiedBetaGeo(penalizer=0.01).fit(rfm)
    >>> mbg.p_alive(rfm).round(2).tolist()
    [0.35, 0.36, 0.78, 0.85, 0.03]
    """

    _param_names = ("r", "alpha", "a", "b")
    _model_name = "MBG/NBD"
    _loglik = staticmethod(modified_bgnbd_loglik)
    _loglik_grad = staticmethod(modified_bgnbd_loglik_grad)
    _total = staticmethod(modified_bgnbd_total)

    @staticmethod
    def _p_alive_at(params: Params, frequency: Any, recency: Any, T: Any) -> FloatArray:
        r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
        x, t_x, age = _floats(frequency, recency, T)
        return dropout_odds(r, alpha, x, t_x, age, np.log(a) - np.log(b + x))

    @staticmethod
    def _expected_purchases_at(
        params: Params, frequency: Any, recency: Any, T: Any, horizon: Any
    ) -> FloatArray:
        r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
        x, t_x, age, t = _floats(frequency, recency, T, horizon)

        def factor(x_: FloatArray, age_: FloatArray) -> FloatArray:
            return alive_expectation(a, a + b - r, a + b + x_, t / (alpha + age_ + t))

        if np.ndim(t) == 0:  # one horizon: the factor depends on (frequency, T) only
            alive_factor = on_unique_pairs(factor, *np.broadcast_arrays(x, age))
        else:
            alive_factor = factor(x, age)
        return ModifiedBetaGeo._p_alive_at(params, x, t_x, age) * alive_factor

    @staticmethod
    def _probability_of_purchases_at(
        params: Params, frequency: Any, recency: Any, T: Any, n: int, horizon: float
    ) -> FloatArray:
        r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
        x, t_x, age = _floats(frequency, recency, T)
        ll = modified_bgnbd_loglik((r, alpha, a, b), x, t_x, age)
        return bg_family_pmf(r, alpha, a, b, x, t_x, age, n, horizon, ll, shift=1.0)
