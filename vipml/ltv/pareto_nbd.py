"""Pareto/NBD model (Schmittlein, Morrison & Colombo 1987): :class:`ParetoNBD`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import betaln, gammaln, logsumexp, xlogy

from vipml.ltv._base import FloatArray, Params, PurchaseModel
from vipml.ltv._likelihoods import (
    log_hyp2f1,
    pareto_nbd_log_alive_part,
    pareto_nbd_loglik,
)

__all__ = ["ParetoNBD"]

logger = logging.getLogger(__name__)


def _floats(*arrays: Any) -> list[FloatArray]:
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def _unpack(params: Params) -> tuple[float, float, float, float]:
    return params["r"], params["alpha"], params["s"], params["beta"]


class ParetoNBD(PurchaseModel):
    r"""Pareto/NBD model: Poisson purchasing during an exponential lifetime.

    Each customer buys at rate :math:`\lambda \sim \mathrm{Gamma}(r, \alpha)` and stays active
    for an exponential lifetime with rate :math:`\mu \sim \mathrm{Gamma}(s, \beta)`, independent
    of purchasing. The likelihood's hypergeometric term is evaluated in log space through Euler's
    transformation and a continued fraction, so it stays finite for heavy buyers (frequency and
    age of 1e4 periods) where lifetimes' ``ParetoNBDFitter`` returns NaN. No closed-form gradient
    exists in ``r`` and ``s``; BFGS uses central differences of the log-likelihood. Same
    attributes and methods as :class:`~vipml.ltv.BetaGeo`.

    Parameters
    ----------
    penalizer : float, default 0.0
        L2 penalty on the log-parameters added to the mean negative log-likelihood.
    penalizer_kind : {"log", "lifetimes"}, default "log"
        ``"lifetimes"`` reproduces lifetimes' ``ParetoNBDFitter(penalizer_coef=penalizer)``: an
        L2 penalty on the parameters themselves, towards 0, with time rescaled so the oldest
        customer has age 1 (see docs/migrating.md).
    purchase_covariates : sequence of str, default ()
        Numeric columns of the summary that scale the purchase rate: ``alpha_i = alpha * exp(-gamma' z_i)``, so a
        positive coefficient means more purchases (CLVTools' link). Coefficients appear in
        ``params_`` as ``"purchase.<column>"``; see :mod:`vipml.ltv._covariates`.
    dropout_covariates : sequence of str, default ()
        Numeric columns that scale the dropout process: ``beta_i = beta * exp(-gamma' z_i)``; coefficients
        ``"dropout.<column>"``.
    tol : float, default 1e-8
        BFGS tolerance on the gradient of the mean negative log-likelihood.
    max_iter : int, default 500
        Maximum BFGS iterations.

    Attributes
    ----------
    params_ : dict
        ``{"r", "alpha", "s", "beta"}``; ``alpha`` and ``beta`` in the time unit of the data.
    loglik_ : float
        Total log-likelihood (CDNOW sample, weeks: -9595.0).
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
    Schmittlein, D. C., Morrison, D. G. & Colombo, R. (1987). "Counting Your Customers: Who
    Are They and What Will They Do Next?". Management Science 33(1), 1-24.
    Fader, P. S. & Hardie, B. G. S. (2005). "A Note on Deriving the Pareto/NBD Model and
    Related Expressions": likelihood (18)-(20), E[X(t)] (27), P(alive) (36)-(37), conditional
    expectation (41). Fader & Hardie (2006), note "Deriving the conditional PMF of the
    Pareto/NBD model", equation (16).

    Examples
    --------
    >>> import pandas as pd
    >>> from vipml.ltv import ParetoNBD
    >>> rfm = pd.DataFrame(
    ...     {"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
    ...      "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
    ...      "T": [30.0, 38.0, 30.0, 39.0, 39.0]},
    ...     index=pd.Index(["a", "b", "c", "d", "e"], name="customer_id"))
    >>> pnbd = ParetoNBD(penalizer=0.01).fit(rfm)
    >>> pnbd.p_alive(rfm).round(2).tolist()
    [0.23, 0.38, 0.94, 0.97, 0.05]
    """

    _param_names = ("r", "alpha", "s", "beta")
    _time_rates = ("alpha", "beta")  # lifetimes rescales both (penalizer_kind="lifetimes")
    _lifetimes_per_row = True  # lifetimes divides its objective by the mean weight
    _model_name = "Pareto/NBD"
    _loglik = staticmethod(pareto_nbd_loglik)
    _loglik_grad = None

    @staticmethod
    def _initial_params(columns: Sequence[FloatArray], weights: FloatArray) -> tuple[float, ...]:
        """Deterministic start: shapes 1, both scale parameters the (weighted) mean age."""
        mean_age = float(np.average(columns[2], weights=weights))
        scale = mean_age if mean_age > 0 else 1.0
        return (1.0, scale, 1.0, scale)

    @staticmethod
    def _p_alive_at(params: Params, frequency: Any, recency: Any, T: Any) -> FloatArray:
        x, t_x, age = _floats(frequency, recency, T)
        theta = _unpack(params)
        log_alive = pareto_nbd_log_alive_part(theta, x, age)
        return np.clip(np.exp(log_alive - pareto_nbd_loglik(theta, x, t_x, age)), 0.0, 1.0)

    @staticmethod
    def _expected_purchases_at(
        params: Params, frequency: Any, recency: Any, T: Any, horizon: Any
    ) -> FloatArray:
        r, alpha, s, beta = _unpack(params)
        x, t_x, age, t = np.broadcast_arrays(*_floats(frequency, recency, T, horizon))
        # log((beta + T) / (beta + T + t)) and (1 - that ratio ** (s - 1)) / (s - 1), s -> 1 safe
        log_ratio = np.log1p(-t / (beta + age + t))
        growth = -log_ratio if s == 1.0 else -np.expm1((s - 1.0) * log_ratio) / (s - 1.0)
        p_alive = ParetoNBD._p_alive_at(params, x, t_x, age)
        return p_alive * (r + x) / (alpha + age) * (beta + age) * growth

    @staticmethod
    def _probability_of_purchases_at(
        params: Params, frequency: Any, recency: Any, T: Any, n: int, horizon: float
    ) -> FloatArray:
        r, alpha, s, beta = _unpack(params)
        x, t_x, age = _floats(frequency, recency, T)
        t = float(horizon)
        theta = (r, alpha, s, beta)
        ll = pareto_nbd_loglik(theta, x, t_x, age)
        log_prior = r * np.log(alpha) + s * np.log(beta) - gammaln(r)
        high, low = max(alpha, beta), min(alpha, beta)
        rsx = r + s + x
        b_param = r + x + n if alpha < beta else s + 1.0 + np.zeros_like(x)
        log_beta_fn = betaln(r + x + n, s + 1.0) - gammaln(s)
        with np.errstate(divide="ignore", invalid="ignore"):
            p_alive = np.exp(pareto_nbd_log_alive_part(theta, x, age) - ll)
            log_alive_buy = (
                gammaln(r + x + n)
                + log_prior
                - (r + x + n) * np.log(alpha + age + t)
                - s * np.log(beta + age + t)
                + xlogy(n, t)
                - gammaln(n + 1.0)
            )
            log_b2 = (
                log_prior
                + log_beta_fn
                + gammaln(rsx)
                + log_hyp2f1(rsx, b_param, rsx + n + 1.0, (high - low) / (high + age))
                - rsx * np.log(high + age)
            )
            log_b3 = np.stack(
                [
                    log_prior
                    + log_beta_fn
                    + gammaln(rsx + i)
                    + log_hyp2f1(rsx + i, b_param, rsx + n + 1.0, (high - low) / (high + age + t))
                    - (rsx + i) * np.log(high + age + t)
                    + xlogy(i, t)
                    - gammaln(i + 1.0)
                    for i in range(n + 1)
                ]
            )
            log_b3_sum = logsumexp(log_b3, axis=0)
            # B2 - sum(B3) is the probability mass of dying in the window after n purchases
            log_die_in_window = log_b2 + np.log(-np.expm1(np.minimum(log_b3_sum - log_b2, 0.0)))
            log_die_in_window = np.where(log_b3_sum >= log_b2, -np.inf, log_die_in_window)
            prob = np.exp(log_alive_buy - ll) + np.exp(log_die_in_window - ll)
        if n == 0:
            prob = prob + (1.0 - p_alive)
        return np.clip(prob, 0.0, 1.0)
