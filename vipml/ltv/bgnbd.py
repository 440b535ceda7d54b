"""BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005): :class:`BetaGeo`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betainc, betaln, expit, gammaln, hyp2f1, xlogy

from vipml.ltv._base import FloatArray, Params, PurchaseModel
from vipml.ltv._likelihoods import bgnbd_loglik, bgnbd_loglik_grad, bgnbd_total, log_hyp2f1

__all__ = ["BetaGeo"]

logger = logging.getLogger(__name__)

_A_NEAR_ONE = 1e-8
_PAIRS_MIN_ROWS = 20_000


def _floats(*arrays: Any) -> list[FloatArray]:
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def alive_expectation(a: float, big_a: Any, c: Any, z: Any) -> FloatArray:
    r"""``C / (a - 1) * [1 - (1 - z)^(a - 1) * 2F1(A, a - 1; C; z)]``, the alive-customer factor.

    The BG/NBD (and MBG/NBD) conditional expectation is this factor times P(alive), where the
    papers write :math:`(1-z)^{r+x}\, {}_2F_1(r+x, b+x; C; z)`; Euler's transformation turns that
    product into :math:`(1-z)^{a-1}\, {}_2F_1(A, a-1; C; z)`, a bounded function, and
    ``expm1`` keeps the difference from 1 accurate for short horizons. At ``a = 1`` exactly
    the factor is a 0/0 limit; ``a`` is moved ``1e-8`` away from 1 there.
    """
    b_minus = a - 1.0
    if abs(b_minus) < _A_NEAR_ONE:
        b_minus = _A_NEAR_ONE if b_minus >= 0 else -_A_NEAR_ONE
    big_a, c, z = np.broadcast_arrays(*_floats(big_a, c, z))
    log_one_minus_z = np.log1p(-z)
    with np.errstate(all="ignore"):
        log_f = log_hyp2f1(big_a, b_minus, c, z)
        out = -c / b_minus * np.expm1(b_minus * log_one_minus_z + log_f)
        bad = ~np.isfinite(log_f)
        if bad.any():
            # the bounded function is not positive (only when C <= 0): evaluate it directly
            direct = hyp2f1(big_a[bad], b_minus, c[bad], z[bad])
            out[bad] = c[bad] / b_minus * (1.0 - np.exp(b_minus * log_one_minus_z[bad]) * direct)
    return out


def dropout_odds(
    r: float, alpha: float, x: FloatArray, t_x: FloatArray, age: FloatArray, log_prior_odds: Any
) -> FloatArray:
    """P(alive) = 1 / (1 + odds), odds = prior odds * ((alpha + T) / (alpha + t_x)) ** (r + x).

    Evaluated in log space with few temporaries (it runs on every customer of a scoring run).
    """
    shape = np.broadcast_shapes(np.shape(x), np.shape(t_x), np.shape(age))
    ratio = np.broadcast_to((alpha + age) / (alpha + t_x), shape)
    log_odds = np.log(ratio, out=np.empty(shape))
    log_odds *= r + x
    log_odds += log_prior_odds
    return expit(np.negative(log_odds, out=log_odds))


def on_unique_pairs(
    function: Callable[[FloatArray, FloatArray], FloatArray], first: FloatArray, second: FloatArray
) -> FloatArray:
    """``function(first, second)`` evaluated once per distinct pair of values, then spread back.

    The hypergeometric factor of the conditional expectation depends on the customer only
    through ``(frequency, T)``; a large customer base has far fewer distinct pairs than rows.
    Hash-based factorisation (pandas) keeps the grouping cheaper than the function.
    """
    if first.ndim != 1 or first.size < _PAIRS_MIN_ROWS:
        return function(first, second)
    codes_2, uniques_2 = pd.factorize(second)
    if np.all(first >= 0) and np.all(first < 2**31) and np.array_equal(first, np.floor(first)):
        codes_1, uniques_1 = first.astype(np.int64), np.arange(int(first.max()) + 1.0)
    else:
        codes_1, uniques_1 = pd.factorize(first)
    pair_codes, pairs = pd.factorize(codes_1 * uniques_2.size + codes_2)
    values = function(uniques_1[pairs // uniques_2.size], uniques_2[pairs % uniques_2.size])
    return values[pair_codes]


class BetaGeo(PurchaseModel):
    r"""BG/NBD model: Poisson purchasing while active, dropout after any repeat purchase.

    Each customer buys at rate :math:`\lambda \sim \mathrm{Gamma}(r, \alpha)` while active and
    becomes inactive right after each repeat purchase with probability
    :math:`p \sim \mathrm{Beta}(a, b)`. Parameters are estimated by maximum likelihood on the
    log scale with the analytic gradient; identical customers are collapsed into weighted rows.

    Parameters
    ----------
    penalizer : float, default 0.0
        L2 penalty on the log-parameters, added to the mean negative log-likelihood per
        customer; shrinks every parameter towards 1 multiplicatively (see
        :mod:`vipml.ltv._mle`). Not lifetimes' ``penalizer_coef``.
    penalizer_kind : {"log", "lifetimes"}, default "log"
        ``"lifetimes"`` reproduces lifetimes' ``BetaGeoFitter(penalizer_coef=penalizer)``: an
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
        ``{"r", "alpha", "a", "b"}``; ``alpha`` in the time unit of recency and T.
    loglik_ : float
        Total log-likelihood, as printed in the paper (CDNOW sample, weeks: -9582.4).
    converged_ : bool
        True (a fit that does not converge raises :class:`~vipml.errors.ConvergenceError`).
    n_customers_ : int or float
        Customers fitted (the sum of the weights when weights were given).
    covariance_ : pandas.DataFrame
        Covariance of the estimates (inverse Hessian, delta method from the log scale).
    standard_errors_ : pandas.Series
        Their standard errors.
    vipml_version_ : str
        vipml version that fitted the model.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting Your Customers the Easy
    Way: An Alternative to the Pareto/NBD Model". Marketing Science 24(2), 275-284:
    likelihood (6), P(X(t) = x) (8), E[X(t)] (9), conditional expectation (10).
    Fader, Hardie & Lee (2008), note "Computing P(alive) using the BG/NBD model".

    Examples
    --------
    >>> import pandas as pd
    >>> from vipml.ltv import BetaGeo
    >>> rfm = pd.DataFrame(
    ...     {"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
    ...      "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
    ...      "T": [30.0, 38.0, 30.0, 39.0, 39.0]},
    ...     index=pd.Index(["a", "b", "c", "d", "e"], name="customer_id"))
    >>> bg = BetaGeo(penalizer=0.01).fit(rfm)  # five customers: a penalizer keeps it identified
    >>> sorted(bg.params_)
    ['a', 'alpha', 'b', 'r']
    >>> bg.expected_purchases(rfm, horizon=39).round(2).tolist()
    [0.79, 0.46, 1.75, 3.22, 0.06]
    >>> bg.p_alive(rfm).round(2).tolist()
    [1.0, 0.34, 0.74, 0.83, 0.02]
    """

    _param_names = ("r", "alpha", "a", "b")
    _model_name = "BG/NBD"
    _loglik = staticmethod(bgnbd_loglik)
    _loglik_grad = staticmethod(bgnbd_loglik_grad)
    _total = staticmethod(bgnbd_total)

    @staticmethod
    def _p_alive_at(params: Params, frequency: Any, recency: Any, T: Any) -> FloatArray:
        r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
        x, t_x, age = _floats(frequency, recency, T)
        odds = dropout_odds(r, alpha, x, t_x, age, np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0))
        return np.where(x == 0, 1.0, odds)

    @staticmethod
    def _expected_purchases_at(
        params: Params, frequency: Any, recency: Any, T: Any, horizon: Any
    ) -> FloatArray:
        r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
        x, t_x, age, t = _floats(frequency, recency, T, horizon)

        def factor(x_: FloatArray, age_: FloatArray) -> FloatArray:
            return alive_expectation(a, a + b - 1.0 - r, a + b + x_ - 1.0, t / (alpha + age_ + t))

        if np.ndim(t) == 0:  # one horizon: the factor depends on (frequency, T) only
            alive_factor = on_unique_pairs(factor, *np.broadcast_arrays(x, age))
        else:
            alive_factor = factor(x, age)
        return BetaGeo._p_alive_at(params, x, t_x, age) * alive_factor

    @staticmethod
    def _probability_of_purchases_at(
        params: Params, frequency: Any, recency: Any, T: Any, n: int, horizon: float
    ) -> FloatArray:
        r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
        x, t_x, age = _floats(frequency, recency, T)
        ll = bgnbd_loglik((r, alpha, a, b), x, t_x, age)
        return bg_family_pmf(r, alpha, a, b, x, t_x, age, n, horizon, ll, shift=0.0)


def bg_family_pmf(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: FloatArray,
    t_x: FloatArray,
    age: FloatArray,
    n: int,
    t: float,
    ll: FloatArray,
    *,
    shift: float,
) -> FloatArray:
    r"""P(X(T, T+t) = n | x, t_x, T) for BG/NBD (``shift=0``) and MBG/NBD (``shift=1``).

    Given alive at T (posterior weight :math:`(1-p)^{x+shift}\lambda^x e^{-\lambda T}`), the
    window count is n when the Poisson count is n and the customer survived the first n
    purchases, or the count is at least n and the customer dropped out after the n-th:
    :math:`(1-p)^n P(N=n) + p(1-p)^{n-1} P(N \ge n)` (the form of FHL 2005 eq. 8). With no
    purchase in the window the customer may also have dropped out before T.
    """
    log_common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b) - ll
    log_alpha_t = np.log(alpha + age)
    log_term1 = (
        log_common
        + betaln(a, b + x + n + shift)
        + gammaln(r + x + n)
        - gammaln(r + x)
        + xlogy(n, t)
        - gammaln(n + 1.0)
        - (r + x + n) * np.log(alpha + age + t)
    )
    with np.errstate(divide="ignore"):
        if n == 0:
            has_dead = np.ones_like(x) if shift else (x > 0).astype(np.float64)
            log_other = (
                log_common
                + betaln(a + 1.0, b + np.maximum(x + shift, 1.0) - 1.0)
                - (r + x) * np.log(alpha + t_x)
            )
            log_other = np.where(has_dead > 0, log_other, -np.inf)
        else:
            tail = betainc(float(n), r + x, t / (alpha + age + t))
            log_other = (
                log_common
                + betaln(a + 1.0, b + x + n - 1.0 + shift)
                - (r + x) * log_alpha_t
                + np.log(tail)
            )
    return np.clip(np.exp(log_term1) + np.exp(log_other), 0.0, 1.0)
