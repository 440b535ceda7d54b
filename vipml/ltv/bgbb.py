"""BG/BB model of repeat buying at discrete opportunities (Fader, Hardie & Shang 2010).

:class:`BetaGeoBetaBinom` is for businesses where a purchase can happen only at discrete,
evenly spaced transaction opportunities: a yearly fundraising drive, an annual event, a weekly
market, a monthly box that customers may or may not take. It reads the summary of
:func:`vipml.features.discrete_summary`: ``frequency`` (opportunities with a purchase after the
first), ``recency`` (the opportunity of the last one) and ``n_periods`` (opportunities since
the first purchase), all whole numbers.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import betaln, digamma, gammaln, logsumexp

from vipml.errors import DataValidationError
from vipml.ltv._base import FloatArray, Params, PurchaseModel
from vipml.ltv._discrete import discounted_survivals, expected_survivals, log_survival
from vipml.ltv._mle import collapse_rows

__all__ = ["BetaGeoBetaBinom", "bgbb_loglik"]

logger = logging.getLogger(__name__)

_COLUMNS = ("frequency", "recency", "n_periods")
_UNIQUE_MIN_ROWS = 5_000  # above this many rows, predictions collapse identical histories
_N_SHOWN = 5


def _floats(*arrays: Any) -> list[FloatArray]:
    return [np.asarray(a, dtype=np.float64) for a in arrays]


class _BGBBSums:
    r"""The BG/BB log-likelihood of many rows, and its gradient, in one pass over the gaps.

    Without the constant :math:`-\log B(\alpha,\beta) - \log B(\gamma,\delta)`, a customer's
    likelihood is the "alive at n" term
    :math:`B(\alpha+x, \beta+n-x)\, B(\gamma, \delta+n)` plus one "died after opportunity
    :math:`t_x + i`" term per ``i < n - t_x``,
    :math:`B(\alpha+x, \beta+t_x-x+i)\, B(\gamma+1, \delta+t_x+i)`. Those terms depend on the
    customer only through ``(x, t_x)``, and each is the previous one times a ratio of four
    linear factors, so smaller: they are summed once per distinct ``(x, t_x)`` pair, relative
    to the first (largest) term, one vector step per ``i`` over the pairs still running
    (sorted by their longest gap, they are a prefix), and each row reads the running sums when
    ``i`` reaches its own gap ``n - t_x``. The digamma derivatives follow the same
    recurrence (:math:`\psi(z+1) = \psi(z) + 1/z`). Memory stays proportional to the rows.
    """

    def __init__(self, frequency: FloatArray, recency: FloatArray, n_periods: FloatArray) -> None:
        x, t_x, n = _floats(frequency, recency, n_periods)
        self.x, self.n = x, n
        gap = (n - t_x).astype(np.int64)
        pair_codes, pair_keys = pd.factorize(pd.MultiIndex.from_arrays([x, t_x]), sort=False)
        pair_x = pair_keys.get_level_values(0).to_numpy(dtype=np.float64)
        pair_tx = pair_keys.get_level_values(1).to_numpy(dtype=np.float64)
        longest = np.zeros(pair_x.size, dtype=np.int64)
        np.maximum.at(longest, pair_codes, gap)
        # pairs by longest gap, descending: those still summing at step i are a prefix
        order = np.argsort(-longest, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        self.pair_x, self.pair_tx = pair_x[order], pair_tx[order]
        self.row_pair = rank[pair_codes]
        self.running = np.searchsorted(-longest[order], -np.arange(int(gap.max(initial=0))))
        # rows by gap: those whose sum is complete after step i (gap == i + 1) are a block
        self.row_order = np.argsort(gap, kind="stable")
        sorted_gap = gap[self.row_order]
        self.block = np.searchsorted(sorted_gap, np.arange(int(gap.max(initial=0)) + 2))
        self.gap = gap

    def _dead_sums(
        self, alpha: float, beta: float, gamma: float, delta: float, gradient: bool
    ) -> tuple[FloatArray, FloatArray, list[FloatArray]]:
        """Per row: log of the first dead term, the sum of the terms over it, and, with
        ``gradient``, the weighted sums of the four digamma derivatives."""
        px, ptx = self.pair_x, self.pair_tx
        first = betaln(alpha + px, beta + ptx - px) + betaln(gamma + 1.0, delta + ptx)
        rows = self.x.size
        total = np.zeros(rows)
        sums = [np.zeros(rows) for _ in range(4)] if gradient else []
        steps = self.running.size
        if steps == 0:
            return first[self.row_pair], total, sums
        b = beta + ptx - px
        ab = alpha + beta + ptx
        d = delta + ptx
        gd = gamma + delta + ptx + 1.0
        weight = np.ones(px.size)
        acc = np.zeros(px.size)
        if gradient:
            psi = [digamma(ab), digamma(b), digamma(gd), digamma(d)]  # ab, b, gd, d
            acc_psi = [np.zeros(px.size) for _ in range(4)]
        pair_of_row = self.row_pair[self.row_order]
        for i in range(steps):
            k = int(self.running[i])
            if i > 0:
                bk, abk, dk, gdk = b[:k], ab[:k], d[:k], gd[:k]
                weight[:k] *= (bk * dk) / (abk * gdk)
                if gradient:
                    for values, z in zip(psi, (abk, bk, gdk, dk), strict=True):
                        values[:k] += 1.0 / z
                bk += 1.0
                abk += 1.0
                dk += 1.0
                gdk += 1.0
            w = weight[:k]
            acc[:k] += w
            if gradient:
                for target, values in zip(acc_psi, psi, strict=True):
                    target[:k] += w * values[:k]
            done = slice(self.block[i + 1], self.block[i + 2])  # rows with gap == i + 1
            pairs = pair_of_row[done]
            rows_done = self.row_order[done]
            total[rows_done] = acc[pairs]
            if gradient:
                for target, values in zip(sums, acc_psi, strict=True):
                    target[rows_done] = values[pairs]
        return first[self.row_pair], total, sums

    def evaluate(
        self, params: Sequence[float], *, gradient: bool
    ) -> tuple[FloatArray, FloatArray | None]:
        """Per-row log-likelihood (input order) and, optionally, its gradient ``(rows, 4)``."""
        alpha, beta, gamma, delta = (float(p) for p in params)
        x, n = self.x, self.n
        alive = betaln(alpha + x, beta + n - x) + betaln(gamma, delta + n)
        first, dead, sums = self._dead_sums(alpha, beta, gamma, delta, gradient)
        has_dead = dead > 0
        with np.errstate(divide="ignore"):
            log_dead = np.where(has_dead, first + np.log(np.where(has_dead, dead, 1.0)), -np.inf)
        top = np.maximum(alive, log_dead)
        alive_share = np.exp(alive - top)
        dead_scale = np.where(has_dead, np.exp(first - top), 0.0)
        total = alive_share + dead_scale * dead
        constant = betaln(alpha, beta) + betaln(gamma, delta)
        ll = top + np.log(total) - constant
        if not gradient:
            return ll, None
        psi_ab_n = digamma(alpha + beta + n)
        psi_gd_n = digamma(gamma + delta + n)
        psi_a_x = digamma(alpha + x)
        alive_grad = (
            psi_a_x - psi_ab_n,
            digamma(beta + n - x) - psi_ab_n,
            digamma(gamma) - psi_gd_n,
            digamma(delta + n) - psi_gd_n,
        )
        s_ab, s_b, s_gd, s_d = sums
        dead_grad = (
            psi_a_x * dead - s_ab,
            s_b - s_ab,
            float(digamma(gamma + 1.0)) * dead - s_gd,
            s_d - s_gd,
        )
        psi_ab0, psi_gd0 = digamma(alpha + beta), digamma(gamma + delta)
        base = (
            digamma(alpha) - psi_ab0,
            digamma(beta) - psi_ab0,
            digamma(gamma) - psi_gd0,
            digamma(delta) - psi_gd0,
        )
        grad = np.empty((x.size, 4))
        for j in range(4):
            grad[:, j] = (alive_share * alive_grad[j] + dead_scale * dead_grad[j]) / total - base[j]
        return ll, grad


def bgbb_loglik(
    params: Sequence[float], frequency: npt.ArrayLike, recency: npt.ArrayLike, n_periods: Any
) -> FloatArray:
    r"""BG/BB log-likelihood of each customer.

    .. math::
        L = \frac{B(\alpha+x, \beta+n-x)}{B(\alpha,\beta)}\frac{B(\gamma, \delta+n)}{B(\gamma,\delta)}
          + \sum_{i=0}^{n-t_x-1} \frac{B(\alpha+x, \beta+t_x-x+i)}{B(\alpha,\beta)}
            \frac{B(\gamma+1, \delta+t_x+i)}{B(\gamma,\delta)}

    Parameters
    ----------
    params : sequence of float
        ``(alpha, beta, gamma, delta)``, all positive.
    frequency, recency, n_periods : array_like
        Repeat purchases ``x``, opportunity of the last purchase ``t_x`` and opportunities
        ``n`` (whole numbers, ``x <= t_x <= n``).

    Returns
    -------
    numpy.ndarray
        ``log L`` per customer.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. & Shang, J. (2010). "Customer-Base Analysis in a
    Discrete-Time Noncontractual Setting". Marketing Science 29(6), 1086-1108, equation (5).

    Examples
    --------
    >>> ll = bgbb_loglik((1.204, 0.750, 0.657, 2.783), [0, 3, 6], [0, 5, 6], [6, 6, 6])
    >>> [round(float(v), 4) for v in ll]
    [-1.1673, -5.6159, -2.1822]
    """
    x, t_x, n = (np.atleast_1d(v) for v in _floats(frequency, recency, n_periods))
    x, t_x, n = np.broadcast_arrays(x, t_x, n)
    shape = x.shape
    ll, _ = _BGBBSums(x.ravel(), t_x.ravel(), n.ravel()).evaluate(params, gradient=False)
    return ll.reshape(shape)


class _BGBBTotal:
    """Weighted total BG/BB log-likelihood and gradient for :func:`vipml.ltv._mle.fit_mle`."""

    has_gradient = True

    def __init__(self, columns: Sequence[FloatArray], weights: FloatArray) -> None:
        self.sums = _BGBBSums(*columns)
        self.weights = np.asarray(weights, dtype=np.float64)

    def value(self, params: FloatArray) -> float:
        ll, _ = self.sums.evaluate(params, gradient=False)
        return float(np.einsum("i,i->", self.weights, ll))

    def value_and_grad(self, params: FloatArray) -> tuple[float, FloatArray]:
        ll, grad = self.sums.evaluate(params, gradient=True)
        return float(np.einsum("i,i->", self.weights, ll)), np.einsum("i,ij->j", self.weights, grad)


def _bgbb_total(columns: Sequence[FloatArray], weights: FloatArray) -> _BGBBTotal:
    return _BGBBTotal(columns, weights)


def _log_alive(params: Params, x: FloatArray, n: FloatArray, ll: FloatArray) -> FloatArray:
    """log P(alive at opportunity n | history): the "alive" term of the likelihood over L."""
    alpha, beta, gamma, delta = (params[k] for k in ("alpha", "beta", "gamma", "delta"))
    return (
        betaln(alpha + x, beta + n - x)
        - betaln(alpha, beta)
        + betaln(gamma, delta + n)
        - betaln(gamma, delta)
        - ll
    )


class BetaGeoBetaBinom(PurchaseModel):
    r"""BG/BB model: purchases at discrete opportunities, dropout at the start of any of them.

    While alive, a customer buys at each transaction opportunity with probability
    :math:`p \sim \mathrm{Beta}(\alpha, \beta)`; before each opportunity a living customer
    becomes inactive, for good, with probability :math:`\theta \sim \mathrm{Beta}(\gamma,
    \delta)`. The first purchase (opportunity 0) starts the relationship and is not modelled.
    Parameters are estimated by maximum likelihood on the log scale with the analytic gradient;
    identical customers (the summary has few distinct rows) are collapsed into weighted rows.

    Same fitted attributes, predictions and uncertainty as :class:`~vipml.ltv.BetaGeo`, with
    horizons counted in whole opportunities, and :meth:`discounted_expected_transactions`
    (DERT) for customer valuation.

    Parameters
    ----------
    penalizer : float, default 0.0
        L2 penalty on the log-parameters added to the mean negative log-likelihood.
    penalizer_kind : {"log", "lifetimes"}, default "log"
        ``"lifetimes"`` reproduces lifetimes' ``BetaGeoBetaBinomFitter(penalizer_coef=penalizer)``: an
        L2 penalty on the parameters themselves, towards 0, with time rescaled so the oldest
        customer has age 1 (see docs/migrating.md).
    purchase_covariates, dropout_covariates : sequence of str, default ()
        Not supported by BG/BB (``fit`` raises a ValueError): see
        :mod:`vipml.ltv._covariates` for the models that take covariates.
    tol : float, default 1e-8
        BFGS tolerance on the gradient of the mean negative log-likelihood.
    max_iter : int, default 500
        Maximum BFGS iterations.

    Attributes
    ----------
    params_ : dict
        ``{"alpha", "beta", "gamma", "delta"}``.
    loglik_ : float
        Total log-likelihood, as printed in the paper (donation data: -33,225.6).
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
    Fader, P. S., Hardie, B. G. S. & Shang, J. (2010). "Customer-Base Analysis in a
    Discrete-Time Noncontractual Setting". Marketing Science 29(6), 1086-1108: likelihood (5),
    P(X(n) = x) (7), E[X(n)] (8), P(alive) (11), conditional expectation (13), DERT (15).

    Examples
    --------
    >>> import pandas as pd
    >>> from vipml.ltv import BetaGeoBetaBinom
    >>> summary = pd.DataFrame(
    ...     {"frequency": [0, 1, 2, 3, 5, 6, 2],
    ...      "recency": [0, 1, 5, 4, 6, 6, 2],
    ...      "n_periods": [6, 6, 6, 6, 6, 6, 6]},
    ...     index=pd.Index(list("abcdefg"), name="customer_id"))
    >>> bgbb = BetaGeoBetaBinom(penalizer=0.01).fit(summary)
    >>> sorted(bgbb.params_)
    ['alpha', 'beta', 'delta', 'gamma']
    >>> bgbb.expected_purchases(summary, horizon=5).round(2).tolist()
    [0.06, 0.07, 1.65, 1.08, 3.28, 3.74, 0.11]
    """

    _param_names = ("alpha", "beta", "gamma", "delta")
    _model_name = "BG/BB"
    _columns = _COLUMNS
    _discrete = True
    _time_rates = ()
    _loglik = staticmethod(bgbb_loglik)
    _loglik_grad = None
    _total = staticmethod(_bgbb_total)

    @staticmethod
    def _initial_params(columns: Sequence[FloatArray], weights: FloatArray) -> tuple[float, ...]:
        """Deterministic start: every shape parameter 1 (uniform p and theta)."""
        return (1.0, 1.0, 1.0, 1.0)

    @classmethod
    def _check_summary(cls, index: pd.Index, columns: Mapping[str, FloatArray]) -> None:
        x, t_x, n = (columns[c] for c in _COLUMNS)
        problems = (
            (
                "recency",
                (t_x != np.round(t_x)) | (n != np.round(n)),
                "recency and n_periods count whole transaction opportunities",
            ),
            ("recency", t_x > n, "have recency > n_periods"),
            (
                "frequency",
                (x > t_x) | ((x > 0) & (t_x < 1)),
                "have more purchases than opportunities up to the last one (frequency > recency)",
            ),
        )
        for column, bad, what in problems:
            if bad.any():
                shown = ", ".join(str(v) for v in index[bad][:_N_SHOWN])
                more = ", ..." if int(bad.sum()) > _N_SHOWN else ""
                raise DataValidationError(
                    f"Column '{column}': {int(bad.sum())} rows {what} (customer ids "
                    f"[{shown}{more}]). A BG/BB summary counts opportunities after the first "
                    "purchase: frequency <= recency <= n_periods, all whole numbers. Build it "
                    "with vipml.features.discrete_summary."
                )

    @staticmethod
    def _p_alive_at(params: Params, frequency: Any, recency: Any, T: Any) -> FloatArray:
        x, t_x, n = np.broadcast_arrays(*_floats(frequency, recency, T))
        if x.ndim == 1 and x.size >= _UNIQUE_MIN_ROWS:
            # few distinct histories: the likelihood once per history, then spread back
            (ux, ut, un), _, inverse = collapse_rows([x, t_x, n])
            return BetaGeoBetaBinom._p_alive_at(params, ux, ut, un)[inverse]
        ll = bgbb_loglik(tuple(params[k] for k in _PARAMS), x, t_x, n)
        return np.minimum(np.exp(_log_alive(params, x, n, ll)), 1.0)

    @staticmethod
    def _expected_purchases_at(
        params: Params, frequency: Any, recency: Any, T: Any, horizon: Any
    ) -> FloatArray:
        alpha, beta, gamma, delta = (params[k] for k in _PARAMS)
        x, t_x, n, h = _floats(frequency, recency, T, horizon)
        p_alive = BetaGeoBetaBinom._p_alive_at(params, x, t_x, n)
        return p_alive * (alpha + x) / (alpha + beta + n) * expected_survivals(gamma, delta + n, h)

    @staticmethod
    def _probability_of_purchases_at(
        params: Params, frequency: Any, recency: Any, T: Any, n: int, horizon: float
    ) -> FloatArray:
        r"""Given alive at the n-th opportunity, the customer lives ``J`` more of the next ``h``
        (``P(J = j) = B(\gamma+1, \delta+n+j) / B(\gamma, \delta+n)`` for ``j < h``, the rest
        for ``j = h``) and buys Binomial(J, p) times, ``p ~ Beta(alpha + x, beta + n - x)``."""
        alpha, beta, gamma, delta = (params[k] for k in _PARAMS)
        x, t_x, opportunities = _floats(frequency, recency, T)
        h = round(float(horizon))
        k = int(n)
        ll = bgbb_loglik((alpha, beta, gamma, delta), x, t_x, opportunities)
        log_alive = _log_alive(params, x, opportunities, ll)
        a_post, b_post = alpha + x, beta + opportunities - x
        d_post = delta + opportunities
        terms = []
        for j in range(k, h + 1):
            if j < h:
                log_lives = betaln(gamma + 1.0, d_post + j) - betaln(gamma, d_post)
            else:
                log_lives = log_survival(gamma, d_post, float(h))
            log_buys = (
                gammaln(j + 1.0)
                - gammaln(k + 1.0)
                - gammaln(j - k + 1.0)
                + betaln(a_post + k, b_post + j - k)
                - betaln(a_post, b_post)
            )
            terms.append(log_lives + log_buys)
        prob = np.exp(log_alive + logsumexp(np.stack(terms), axis=0)) if terms else 0.0 * x
        if k == 0:
            prob = prob + (1.0 - np.exp(log_alive))
        return np.clip(prob, 0.0, 1.0)

    @staticmethod
    def _median_time_at(params: Params, frequency: Any, T: Any) -> FloatArray:
        raise NotImplementedError(
            "median_time_to_next_purchase describes continuous-time purchasing; with BG/BB "
            "use probability_of_purchases(summary, n=0, horizon=k) for the chance of no "
            "purchase in the next k opportunities."
        )

    def p_alive(self, rfm: Any, periods_ahead: int = 0) -> pd.Series:
        """Probability that each customer is alive at opportunity ``n_periods + periods_ahead``.

        With ``periods_ahead=0`` (the default, as for the other models), alive at the last
        observed opportunity; the paper's eq. (11) is ``periods_ahead=1``, alive at the next
        opportunity (lifetimes' ``conditional_probability_alive(m, ...)`` is
        ``periods_ahead=m``).

        Parameters
        ----------
        rfm : DataFrame
            Summary with ``frequency``, ``recency`` and ``n_periods`` (see :meth:`fit`).
        periods_ahead : int, default 0
            Opportunities after the last observed one.

        Returns
        -------
        pandas.Series
            ``p_alive`` in ``[0, 1]``, indexed like ``rfm``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        DataValidationError
            If ``rfm`` is invalid.
        ValueError
            If ``periods_ahead`` is not an integer >= 0.

        References
        ----------
        Fader, Hardie & Shang (2010), eq. (11).

        Examples
        --------
        >>> import pandas as pd
        >>> summary = pd.DataFrame({"frequency": [0, 3, 6], "recency": [0, 3, 6],
        ...                         "n_periods": [6, 6, 6]})
        >>> bgbb = BetaGeoBetaBinom()
        >>> bgbb.params_ = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
        >>> bgbb.loglik_, bgbb.covariance_ = -33225.6, None
        >>> bgbb.p_alive(summary, periods_ahead=1).round(3).tolist()
        [0.108, 0.095, 0.93]
        """
        if not (isinstance(periods_ahead, numbers.Integral) and periods_ahead >= 0):
            raise ValueError(f"periods_ahead must be an integer >= 0, got {periods_ahead!r}.")
        index, x, t_x, n = self._arrays(rfm)
        gamma, delta = self.params_["gamma"], self.params_["delta"]
        alive_now = self._p_alive_at(self.params_, x, t_x, n)
        later = np.exp(log_survival(gamma, delta + n, float(periods_ahead)))
        return pd.Series(alive_now * later, index=index, name="p_alive")

    def discounted_expected_transactions(self, rfm: Any, discount_rate: float) -> pd.Series:
        r"""Discounted expected residual transactions (DERT) of each customer.

        .. math::  \mathrm{DERT} = \sum_{t > n} \frac{P(\text{buys at } t \mid x, t_x, n)}
                   {(1 + d)^{t - n}}
                   = P(\text{alive at } n) \frac{\alpha + x}{\alpha + \beta + n}
                     \frac{\delta + n}{(\gamma + \delta + n)(1 + d)}
                     {}_2F_1\!\left(1, \delta + n + 1; \gamma + \delta + n + 1; \tfrac{1}{1+d}\right)

        Multiplied by the value of a transaction (e.g. :meth:`vipml.ltv.GammaGamma.expected_spend`)
        it is the customer's residual lifetime value over an unbounded horizon.

        Parameters
        ----------
        rfm : DataFrame
            Summary with ``frequency``, ``recency`` and ``n_periods``.
        discount_rate : float
            Discount rate per opportunity, ``>= 0`` (e.g. 0.10 for yearly opportunities and a
            10 % yearly rate). With 0 the sum is finite only when ``gamma > 1``.

        Returns
        -------
        pandas.Series
            ``dert``, indexed like ``rfm``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        DataValidationError
            If ``rfm`` is invalid.
        ValueError
            If ``discount_rate`` is negative or not finite.

        References
        ----------
        Fader, Hardie & Shang (2010), eq. (15).

        Examples
        --------
        >>> import pandas as pd
        >>> summary = pd.DataFrame({"frequency": [0, 3, 6], "recency": [0, 3, 6],
        ...                         "n_periods": [6, 6, 6]})
        >>> bgbb = BetaGeoBetaBinom()
        >>> bgbb.params_ = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
        >>> bgbb.loglik_, bgbb.covariance_ = -33225.6, None
        >>> bgbb.discounted_expected_transactions(summary, 0.1).round(2).tolist()
        [0.11, 0.35, 5.91]
        """
        if not (isinstance(discount_rate, numbers.Real) and 0 <= discount_rate < np.inf):
            raise ValueError(f"discount_rate must be a finite number >= 0, got {discount_rate!r}.")
        index, x, t_x, n = self._arrays(rfm)
        alpha, beta, gamma, delta = (self.params_[k] for k in _PARAMS)
        p_alive = self._p_alive_at(self.params_, x, t_x, n)
        future = discounted_survivals(gamma, delta + n, float(discount_rate))
        values = p_alive * (alpha + x) / (alpha + beta + n) * future
        return pd.Series(values, index=index, name="dert")


_PARAMS = BetaGeoBetaBinom._param_names
