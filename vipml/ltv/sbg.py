"""Shifted-beta-geometric model of contract renewals (Fader & Hardie 2007).

:class:`ShiftedBetaGeometric` is for contractual businesses, where customers renew (or cancel)
a membership, subscription or contract at the end of fixed periods and a cancellation is
observed: a yearly VIP membership, a monthly plan. It reads one row per customer with
``renewals`` (renewals made so far) and ``churned`` (1 if the customer cancelled at the renewal
after those, 0 if still a customer), and projects retention curves, renewals and the
discounted expected residual lifetime (DERL) that values a customer base.
:func:`contracts_from_survival` turns a cohort's survival counts (the form in which retention is
usually reported) into that table.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import betaln, digamma

from vipml.base import VipmlEstimator
from vipml.errors import DataValidationError
from vipml.ltv._base import (
    FloatArray,
    Params,
    check_hyperparameters,
    check_interval_arguments,
    check_penalizer_kind,
    interval_bounds,
    lifetimes_penalty,
    sample_param_dicts,
    set_fit_result,
)
from vipml.ltv._discrete import discounted_survivals, expected_survivals, log_survival
from vipml.ltv._input import fit_columns, rfm_columns
from vipml.ltv._mle import fit_mle

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["ShiftedBetaGeometric", "contracts_from_survival", "sbg_loglik"]

logger = logging.getLogger(__name__)

_COLUMNS = ("renewals", "churned")
_N_SHOWN = 5


def _floats(*arrays: Any) -> list[FloatArray]:
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def sbg_loglik(
    params: Sequence[float], renewals: npt.ArrayLike, churned: npt.ArrayLike
) -> FloatArray:
    r"""sBG log-likelihood of each customer.

    A customer who cancelled after ``m`` renewals has lifetime ``T = m + 1`` periods, with
    :math:`P(T = t) = B(\alpha + 1, \beta + t - 1) / B(\alpha, \beta)`; a customer still active
    after ``m`` renewals contributes :math:`S(m) = B(\alpha, \beta + m) / B(\alpha, \beta)`.

    Parameters
    ----------
    params : sequence of float
        ``(alpha, beta)``, both positive.
    renewals, churned : array_like
        Renewals made and whether the customer then cancelled (1) or is still active (0).

    Returns
    -------
    numpy.ndarray
        ``log L`` per customer.

    References
    ----------
    Fader, P. S. & Hardie, B. G. S. (2007). "How to Project Customer Retention". Journal of
    Interactive Marketing 21(1), 76-90, equations (5), (6) and (B3).

    Examples
    --------
    >>> [round(float(v), 4) for v in sbg_loglik((0.704, 1.182), [0, 3, 7], [1, 1, 0])]
    [-0.9854, -2.8841, -1.4311]
    """
    alpha, beta = (float(p) for p in params)
    m, churned_ = _floats(renewals, churned)
    cancelled = betaln(alpha + 1.0, beta + m)
    active = betaln(alpha, beta + m)
    return np.where(churned_ > 0, cancelled, active) - betaln(alpha, beta)


def _sbg_loglik_grad(
    params: Sequence[float], renewals: FloatArray, churned: FloatArray
) -> tuple[FloatArray, FloatArray]:
    alpha, beta = (float(p) for p in params)
    m, churned_ = _floats(renewals, churned)
    ll = sbg_loglik(params, m, churned_)
    out = churned_ > 0
    last = alpha + beta + m + np.where(out, 1.0, 0.0)  # a + b of the beta function used
    common = digamma(alpha + beta) - digamma(last)
    grad = np.empty((m.size, 2))
    grad[:, 0] = common + np.where(out, digamma(alpha + 1.0) - digamma(alpha), 0.0)
    grad[:, 1] = common + digamma(beta + m) - digamma(beta)
    return ll, grad


def contracts_from_survival(survivors: npt.ArrayLike) -> pd.DataFrame:
    """Contracts table of a cohort from its survival counts, one row per distinct history.

    ``survivors[t]`` is the number of the cohort's customers still active at the start of
    period ``t + 1`` (``survivors[0]`` is the cohort size): ``survivors[t - 1] - survivors[t]``
    customers cancelled after ``t - 1`` renewals, and the ``survivors[-1]`` still active have
    renewed ``len(survivors) - 1`` times. Fit :class:`ShiftedBetaGeometric` on the table with
    its ``customers`` column as weights.

    Parameters
    ----------
    survivors : array_like
        Non-increasing, non-negative counts; the first is the cohort size. Shares (1.0,
        0.869, ...) work too: the estimates are the same, the standard errors then describe a
        cohort of one customer.

    Returns
    -------
    pandas.DataFrame
        Columns ``renewals``, ``churned`` and ``customers``, indexed by ``history``.

    Raises
    ------
    DataValidationError
        Fewer than two counts, negative or non-finite counts, or a count larger than the one
        before it.

    References
    ----------
    Fader & Hardie (2007), appendix B (the likelihood of a cohort's survival data).

    Examples
    --------
    >>> contracts_from_survival([1000, 631, 468, 382])
             renewals  churned  customers
    history
    0             0.0      1.0      369.0
    1             1.0      1.0      163.0
    2             2.0      1.0       86.0
    3             3.0      0.0      382.0
    """
    counts = np.asarray(survivors, dtype=np.float64).ravel()
    if counts.size < 2 or not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise DataValidationError(
            "survivors must hold at least two finite, non-negative counts: the cohort size, "
            "then the customers still active after each period."
        )
    increase = np.nonzero(np.diff(counts) > 0)[0]
    if increase.size:
        t = int(increase[0]) + 1
        raise DataValidationError(
            f"survivors must not increase: {counts[t]:g} customers at period {t} but "
            f"{counts[t - 1]:g} at period {t - 1}. A cohort only loses customers; count each "
            "acquisition cohort separately."
        )
    periods = counts.size - 1
    renewals = np.arange(periods + 1, dtype=np.float64)
    churned = np.r_[np.ones(periods), 0.0]
    customers = np.r_[-np.diff(counts), counts[-1]]
    return pd.DataFrame(
        {"renewals": renewals, "churned": churned, "customers": customers},
        index=pd.Index(np.arange(periods + 1), name="history"),
    )


class ShiftedBetaGeometric(VipmlEstimator):
    r"""sBG model: each customer renews with a constant probability, which varies across customers.

    At the end of every contract period an active customer cancels with probability
    :math:`\theta` (and renews otherwise), with :math:`\theta \sim \mathrm{Beta}(\alpha,
    \beta)` across customers. Because customers who cancel easily leave first, the cohort's
    retention rate :math:`r(t) = (\beta + t - 1) / (\alpha + \beta + t - 1)` rises with
    tenure even though no customer's own probability changes. Parameters are estimated by
    maximum likelihood on the log scale with the analytic gradient.

    Parameters
    ----------
    penalizer : float, default 0.0
        L2 penalty on the log-parameters added to the mean negative log-likelihood.
    penalizer_kind : {"log", "lifetimes"}, default "log"
        ``"lifetimes"`` penalises ``penalizer * (alpha**2 + beta**2)`` instead (lifetimes'
        convention; it has no sBG model).
    tol : float, default 1e-8
        BFGS tolerance on the gradient of the mean negative log-likelihood.
    max_iter : int, default 500
        Maximum BFGS iterations.

    Attributes
    ----------
    params_ : dict
        ``{"alpha", "beta"}``.
    loglik_ : float
        Total log-likelihood.
    converged_ : bool
        True (a fit that does not converge raises :class:`~vipml.errors.ConvergenceError`).
    n_customers_ : int or float
        Customers fitted (the sum of the weights when weights were given).
    covariance_ : pandas.DataFrame
        Covariance of the estimates.
    standard_errors_ : pandas.Series
        Their standard errors.
    vipml_version_ : str
        vipml version that fitted the model.

    References
    ----------
    Fader, P. S. & Hardie, B. G. S. (2007). "How to Project Customer Retention". Journal of
    Interactive Marketing 21(1), 76-90: P(T = t) (5), S(t) (6), retention rate (8).
    Fader, P. S. & Hardie, B. G. S. (2010). "Customer-Base Valuation in a Contractual Setting:
    The Perils of Ignoring Heterogeneity". Marketing Science 29(1), 85-93: DEL and DERL.

    Examples
    --------
    >>> from vipml.ltv import ShiftedBetaGeometric, contracts_from_survival
    >>> cohort = contracts_from_survival([1000, 631, 468, 382, 326, 289, 262, 241])
    >>> sbg = ShiftedBetaGeometric().fit(cohort, weights=cohort["customers"])
    >>> {k: round(v, 3) for k, v in sbg.params_.items()}
    {'alpha': 0.704, 'beta': 1.182}
    >>> sbg.survival([8, 12]).round(3).tolist()
    [0.22, 0.17]
    """

    _param_names = ("alpha", "beta")
    _model_name = "sBG"
    _fitted_attributes = ("params_", "loglik_", "covariance_")

    def __init__(
        self,
        *,
        penalizer: float = 0.0,
        penalizer_kind: Literal["log", "lifetimes"] = "log",
        tol: float = 1e-8,
        max_iter: int = 500,
    ) -> None:
        self.penalizer = penalizer
        self.penalizer_kind = penalizer_kind
        self.tol = tol
        self.max_iter = max_iter

    @staticmethod
    def _check_contracts(index: pd.Index, renewals: FloatArray, churned: FloatArray) -> None:
        for column, bad, what in (
            ("renewals", renewals != np.round(renewals), "are not whole numbers"),
            ("churned", (churned != 0) & (churned != 1), "are not 0 or 1 (False or True)"),
        ):
            if bad.any():
                shown = ", ".join(str(v) for v in index[bad][:_N_SHOWN])
                more = ", ..." if int(bad.sum()) > _N_SHOWN else ""
                raise DataValidationError(
                    f"Column '{column}': {int(bad.sum())} rows {what} (customer ids "
                    f"[{shown}{more}]). A contracts table has 'renewals' (renewals made) and "
                    "'churned' (1 if the customer then cancelled); see "
                    "vipml.ltv.contracts_from_survival."
                )

    def fit(self, contracts: Any, weights: npt.ArrayLike | None = None) -> Self:
        """Fit the sBG model by maximum likelihood.

        Parameters
        ----------
        contracts : DataFrame
            One row per customer (or per distinct history, with weights) with ``renewals``
            and ``churned``, indexed by customer id (or any narwhals-supported frame with a
            ``customer_id`` column). It is not modified.
        weights : array_like, optional
            Non-negative weight per row, e.g. the ``customers`` column of
            :func:`contracts_from_survival`.

        Returns
        -------
        ShiftedBetaGeometric
            The fitted estimator.

        Raises
        ------
        DataValidationError
            Missing columns, negative or fractional renewals, ``churned`` not 0/1.
        ConvergenceError
            If the optimiser fails (e.g. nobody ever cancelled: add a penalizer).

        References
        ----------
        Fader & Hardie (2007), appendix B.

        Examples
        --------
        >>> import pandas as pd
        >>> contracts = pd.DataFrame({"renewals": [0, 0, 1, 2, 3, 3], "churned": [1, 0, 1, 0, 1, 0]})
        >>> ShiftedBetaGeometric().fit(contracts).n_customers_
        6
        """
        check_hyperparameters(self.penalizer, self.tol, self.max_iter)
        check_penalizer_kind(self.penalizer_kind)
        index, columns, w = fit_columns(contracts, _COLUMNS, weights)
        renewals, churned = columns["renewals"], columns["churned"]
        self._check_contracts(index, renewals, churned)
        result = fit_mle(
            loglik=sbg_loglik,
            loglik_grad=_sbg_loglik_grad,
            data=(renewals, churned),
            weights=w,
            initial_params=(1.0, 1.0),
            param_names=self._param_names,
            penalizer=float(self.penalizer),
            tol=float(self.tol),
            max_iter=int(self.max_iter),
            model_name=self._model_name,
            penalty=(
                lifetimes_penalty(self.penalizer, self._param_names)
                if self.penalizer_kind == "lifetimes"
                else None
            ),
        )
        n_customers = len(index) if w is None else float(w.sum())
        set_fit_result(self, result, self._param_names, n_customers)
        logger.debug("sBG fitted: %s, loglik %.6f", self.params_, self.loglik_)
        return self

    # -- closed forms -------------------------------------------------------------------------

    @staticmethod
    def _survival_at(params: Params, periods: Any) -> FloatArray:
        (t,) = _floats(periods)
        return np.exp(log_survival(params["alpha"], params["beta"], t))

    def _contracts(self, contracts: Any) -> tuple[pd.Index, FloatArray, FloatArray]:
        self._check_fitted()
        index, columns = rfm_columns(contracts, _COLUMNS)
        self._check_contracts(index, columns["renewals"], columns["churned"])
        return index, columns["renewals"], columns["churned"]

    @staticmethod
    def _periods(periods: Any, name: str = "periods") -> FloatArray:
        t = np.asarray(periods, dtype=np.float64)
        if not np.all(np.isfinite(t)) or np.any(t < 0) or np.any(t != np.round(t)):
            raise ValueError(f"{name} must be whole numbers of periods >= 0, got {periods!r}.")
        return t

    # -- the cohort -----------------------------------------------------------------------------

    def survival(self, periods: npt.ArrayLike) -> FloatArray:
        r"""Share of a new cohort still active after ``periods`` periods: :math:`S(t)`.

        .. math::  S(t) = \frac{B(\alpha, \beta + t)}{B(\alpha, \beta)}

        Parameters
        ----------
        periods : int or array_like of int
            Periods since acquisition (0 gives 1).

        Returns
        -------
        numpy.ndarray
            :math:`S(t)`, shaped like ``periods``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ValueError
            If a period is negative or not a whole number.

        References
        ----------
        Fader & Hardie (2007), equation (6).

        Examples
        --------
        >>> sbg = ShiftedBetaGeometric()
        >>> sbg.params_, sbg.loglik_, sbg.covariance_ = {"alpha": 0.704, "beta": 1.182}, 0, None
        >>> sbg.survival([0, 1, 7]).round(3).tolist()
        [1.0, 0.627, 0.239]
        """
        self._check_fitted()
        return self._survival_at(self.params_, self._periods(periods))

    def retention_curve(self, horizon: int) -> pd.DataFrame:
        r"""Projected survival and retention rate of a new cohort for periods ``0 .. horizon``.

        The retention rate of period ``t >= 1`` is the share of the customers active after
        ``t - 1`` periods who renew again: :math:`r(t) = S(t) / S(t-1) = (\beta + t - 1) /
        (\alpha + \beta + t - 1)` (NaN at ``t = 0``).

        Parameters
        ----------
        horizon : int
            Last period, ``>= 0``.

        Returns
        -------
        pandas.DataFrame
            ``survival`` and ``retention`` indexed by ``period``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ValueError
            If ``horizon`` is not a whole number >= 0.

        References
        ----------
        Fader & Hardie (2007), equations (6) and (8).

        Examples
        --------
        >>> sbg = ShiftedBetaGeometric()
        >>> sbg.params_, sbg.loglik_, sbg.covariance_ = {"alpha": 0.668, "beta": 3.806}, 0, None
        >>> sbg.retention_curve(3).round(3)
                survival  retention
        period
        0          1.000        NaN
        1          0.851      0.851
        2          0.747      0.878
        3          0.670      0.897
        """
        self._check_fitted()
        last = self._periods(horizon, "horizon")
        if last.ndim:
            raise ValueError(f"horizon must be one whole number of periods, got {horizon!r}.")
        t = np.arange(int(last) + 1, dtype=np.float64)
        alpha, beta = self.params_["alpha"], self.params_["beta"]
        with np.errstate(divide="ignore", invalid="ignore"):
            retention = np.where(t > 0, (beta + t - 1.0) / (alpha + beta + t - 1.0), np.nan)
        return pd.DataFrame(
            {"survival": self._survival_at(self.params_, t), "retention": retention},
            index=pd.Index(t.astype(np.int64), name="period"),
        )

    def survival_table(self, survivors: npt.ArrayLike) -> pd.DataFrame:
        """Observed against projected survival of a cohort, period by period.

        Fit on a cohort's first periods, then pass its whole observed curve to see how the
        projection holds up in the later ones (the holdout check of Fader & Hardie 2007).

        Parameters
        ----------
        survivors : array_like
            Customers still active at the start of each period, the cohort size first (as
            for :func:`contracts_from_survival`).

        Returns
        -------
        pandas.DataFrame
            ``actual`` (share still active), ``predicted`` (:meth:`survival`) and
            ``error = predicted - actual``, indexed by ``period``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        DataValidationError
            Invalid counts (see :func:`contracts_from_survival`).

        Examples
        --------
        >>> sbg = ShiftedBetaGeometric()
        >>> sbg.params_, sbg.loglik_, sbg.covariance_ = {"alpha": 0.704, "beta": 1.182}, 0, None
        >>> sbg.survival_table([1000, 631, 468]).round(3)
                actual  predicted  error
        period
        0        1.000      1.000  0.000
        1        0.631      0.627 -0.004
        2        0.468      0.474  0.006
        """
        self._check_fitted()
        contracts_from_survival(survivors)  # the same checks
        counts = np.asarray(survivors, dtype=np.float64).ravel()
        actual = counts / counts[0] if counts[0] > 0 else np.full(counts.shape, np.nan)
        t = np.arange(counts.size, dtype=np.float64)
        predicted = self._survival_at(self.params_, t)
        return pd.DataFrame(
            {"actual": actual, "predicted": predicted, "error": predicted - actual},
            index=pd.Index(t.astype(np.int64), name="period"),
        )

    def discounted_expected_lifetime(self, discount_rate: float) -> float:
        r"""Discounted expected lifetime (DEL) of a new customer, in periods paid.

        .. math::  \mathrm{DEL} = \sum_{t \ge 0} \frac{S(t)}{(1 + d)^t}
                   = {}_2F_1\!\left(1, \beta; \alpha + \beta; \tfrac{1}{1 + d}\right)

        The first payment (at acquisition) counts undiscounted; times a period's margin it is
        the expected value of a customer about to be acquired.

        Parameters
        ----------
        discount_rate : float
            Discount rate per period, ``>= 0`` (with 0 finite only when ``alpha > 1``).

        Returns
        -------
        float
            DEL.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ValueError
            If ``discount_rate`` is negative or not finite.

        References
        ----------
        Fader & Hardie (2010), "Customer-Base Valuation in a Contractual Setting", eq. (3).

        Examples
        --------
        >>> sbg = ShiftedBetaGeometric()
        >>> sbg.params_, sbg.loglik_, sbg.covariance_ = {"alpha": 0.668, "beta": 3.806}, 0, None
        >>> round(sbg.discounted_expected_lifetime(0.1), 3)
        5.923
        """
        self._check_fitted()
        d = _check_discount_rate(discount_rate)
        return float(1.0 + discounted_survivals(self.params_["alpha"], self.params_["beta"], d))

    # -- customers --------------------------------------------------------------------------------

    def probability_of_renewal(self, contracts: Any, renewals_ahead: int = 1) -> pd.Series:
        r"""Probability that each customer makes the next ``renewals_ahead`` renewals.

        An active customer who has renewed ``m`` times has
        :math:`\theta \mid m \sim \mathrm{Beta}(\alpha, \beta + m)`, so the probability is
        :math:`B(\alpha, \beta + m + k) / B(\alpha, \beta + m)`; 0 for customers who cancelled.

        Parameters
        ----------
        contracts : DataFrame
            ``renewals`` and ``churned`` per customer (see :meth:`fit`).
        renewals_ahead : int, default 1
            Number of future renewals, ``>= 0``.

        Returns
        -------
        pandas.Series
            ``probability_of_renewal``, indexed like ``contracts``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        DataValidationError
            If ``contracts`` is invalid.
        ValueError
            If ``renewals_ahead`` is not an integer >= 0.

        References
        ----------
        Fader & Hardie (2010), section 2 (the posterior of theta after n - 1 renewals).

        Examples
        --------
        >>> import pandas as pd
        >>> sbg = ShiftedBetaGeometric()
        >>> sbg.params_, sbg.loglik_, sbg.covariance_ = {"alpha": 0.704, "beta": 1.182}, 0, None
        >>> contracts = pd.DataFrame({"renewals": [0, 4, 4], "churned": [0, 0, 1]})
        >>> sbg.probability_of_renewal(contracts).round(3).tolist()
        [0.627, 0.88, 0.0]
        """
        if not (isinstance(renewals_ahead, numbers.Integral) and renewals_ahead >= 0):
            raise ValueError(f"renewals_ahead must be an integer >= 0, got {renewals_ahead!r}.")
        index, m, churned = self._contracts(contracts)
        alpha, beta = self.params_["alpha"], self.params_["beta"]
        stay = np.exp(log_survival(alpha, beta + m, float(renewals_ahead)))
        return pd.Series(
            np.where(churned > 0, 0.0, stay), index=index, name="probability_of_renewal"
        )

    def expected_renewals(self, contracts: Any, horizon: int) -> pd.Series:
        """Expected number of renewals each customer makes at the next ``horizon`` renewal dates.

        Parameters
        ----------
        contracts : DataFrame
            ``renewals`` and ``churned`` per customer.
        horizon : int
            Number of future renewal dates, ``>= 0``.

        Returns
        -------
        pandas.Series
            ``expected_renewals`` (0 for customers who cancelled), indexed like ``contracts``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        DataValidationError
            If ``contracts`` is invalid.
        ValueError
            If ``horizon`` is not a whole number >= 0.

        References
        ----------
        Fader & Hardie (2007), equation (6), summed over the horizon.

        Examples
        --------
        >>> import pandas as pd
        >>> sbg = ShiftedBetaGeometric()
        >>> sbg.params_, sbg.loglik_, sbg.covariance_ = {"alpha": 0.704, "beta": 1.182}, 0, None
        >>> contracts = pd.DataFrame({"renewals": [0, 4, 4], "churned": [0, 0, 1]})
        >>> sbg.expected_renewals(contracts, horizon=3).round(3).tolist()
        [1.489, 2.391, 0.0]
        """
        h = self._periods(horizon, "horizon")
        index, m, churned = self._contracts(contracts)
        values = self._expected_renewals_at(self.params_, m, churned, h)
        return pd.Series(values, index=index, name="expected_renewals")

    @staticmethod
    def _expected_renewals_at(
        params: Params, renewals: FloatArray, churned: FloatArray, horizon: Any
    ) -> FloatArray:
        alpha, beta = params["alpha"], params["beta"]
        return np.where(churned > 0, 0.0, expected_survivals(alpha, beta + renewals, horizon))

    @staticmethod
    def _derl_at(
        params: Params, renewals: FloatArray, churned: FloatArray, discount_rate: float
    ) -> FloatArray:
        alpha, beta = params["alpha"], params["beta"]
        future = (1.0 + discount_rate) * discounted_survivals(alpha, beta + renewals, discount_rate)
        return np.where(churned > 0, 0.0, future)

    def discounted_expected_residual_lifetime(
        self, contracts: Any, discount_rate: float
    ) -> pd.Series:
        r"""Discounted expected residual lifetime (DERL) of each customer, in future renewals.

        For a customer who has made ``m`` renewals and now faces the next renewal decision
        (which counts undiscounted, as in Fader & Hardie 2010):

        .. math::  \mathrm{DERL} = \sum_{k \ge 1} \frac{B(\alpha, \beta+m+k)}{B(\alpha, \beta+m)}
                   \frac{1}{(1+d)^{k-1}}
                   = \frac{\beta + m}{\alpha + \beta + m}\;
                     {}_2F_1\!\left(1, \beta+m+1; \alpha+\beta+m+1; \tfrac{1}{1+d}\right)

        Times the margin of a period it is the customer's residual value; 0 for customers who
        cancelled.

        Parameters
        ----------
        contracts : DataFrame
            ``renewals`` and ``churned`` per customer.
        discount_rate : float
            Discount rate per period, ``>= 0`` (with 0 finite only when ``alpha > 1``).

        Returns
        -------
        pandas.Series
            ``derl``, indexed like ``contracts``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        DataValidationError
            If ``contracts`` is invalid.
        ValueError
            If ``discount_rate`` is negative or not finite.

        References
        ----------
        Fader & Hardie (2010), "Customer-Base Valuation in a Contractual Setting: The Perils
        of Ignoring Heterogeneity", Marketing Science 29(1), equation (6).

        Examples
        --------
        >>> import pandas as pd
        >>> sbg = ShiftedBetaGeometric()
        >>> sbg.params_, sbg.loglik_, sbg.covariance_ = {"alpha": 0.668, "beta": 3.806}, 0, None
        >>> contracts = pd.DataFrame({"renewals": [0, 7], "churned": [0, 0]})
        >>> sbg.discounted_expected_residual_lifetime(contracts, 0.1).round(3).tolist()
        [5.415, 7.53]
        """
        d = _check_discount_rate(discount_rate)
        index, m, churned = self._contracts(contracts)
        return pd.Series(self._derl_at(self.params_, m, churned, d), index=index, name="derl")

    # -- uncertainty ------------------------------------------------------------------------------

    def sample_params(
        self, n_draws: int = 500, random_state: int | np.random.Generator | None = 0
    ) -> list[dict[str, float]]:
        """Draw ``(alpha, beta)`` from the asymptotic normal of the estimates (log scale).

        Parameters
        ----------
        n_draws : int, default 500
            Number of draws.
        random_state : int, numpy.random.Generator or None, default 0
            Seed for :func:`numpy.random.default_rng`.

        Returns
        -------
        list of dict
            One ``{"alpha", "beta"}`` dict per draw.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ConvergenceError
            If the covariance is undefined.

        Examples
        --------
        >>> cohort = contracts_from_survival([1000, 631, 468, 382, 326])
        >>> sbg = ShiftedBetaGeometric().fit(cohort, weights=cohort["customers"])
        >>> len(sbg.sample_params(3, random_state=1))
        3
        """
        self._check_fitted()
        return sample_param_dicts(self.params_, self.covariance_, n_draws, random_state)

    def survival_interval(
        self,
        periods: npt.ArrayLike,
        *,
        level: float = 0.9,
        n_draws: int = 500,
        random_state: int | np.random.Generator | None = 0,
    ) -> pd.DataFrame:
        """Projected survival with an interval from parameter uncertainty.

        ``estimate`` is :meth:`survival`; ``lower`` and ``upper`` are quantiles over parameter
        draws (:meth:`sample_params`), widened to contain the estimate.

        Parameters
        ----------
        periods : array_like of int
            Periods since acquisition.
        level : float, default 0.9
            Coverage, strictly between 0 and 1.
        n_draws : int, default 500
            Number of parameter draws.
        random_state : int, numpy.random.Generator or None, default 0
            Seed of the draws.

        Returns
        -------
        pandas.DataFrame
            ``estimate``, ``lower`` and ``upper``, indexed by ``period``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ValueError
            Invalid periods, level or number of draws.
        ConvergenceError
            If the covariance is undefined.

        Examples
        --------
        >>> cohort = contracts_from_survival([1000, 631, 468, 382, 326, 289, 262, 241])
        >>> sbg = ShiftedBetaGeometric().fit(cohort, weights=cohort["customers"])
        >>> out = sbg.survival_interval([8, 12], n_draws=200)
        >>> bool((out["lower"] < out["estimate"]).all() and (out["estimate"] < out["upper"]).all())
        True
        """
        check_interval_arguments(level, n_draws)
        self._check_fitted()
        t = np.atleast_1d(self._periods(periods))
        estimate = self._survival_at(self.params_, t)
        draws = self.sample_params(n_draws, random_state)
        lower, upper = interval_bounds(self._survival_at, draws, [t], estimate, level)
        return pd.DataFrame(
            {"estimate": estimate, "lower": lower, "upper": upper},
            index=pd.Index(t.astype(np.int64), name="period"),
        )

    def discounted_expected_residual_lifetime_interval(
        self,
        contracts: Any,
        discount_rate: float,
        *,
        level: float = 0.9,
        n_draws: int = 500,
        random_state: int | np.random.Generator | None = 0,
    ) -> pd.DataFrame:
        """DERL with an interval from parameter uncertainty (see :meth:`survival_interval`).

        Parameters
        ----------
        contracts : DataFrame
            ``renewals`` and ``churned`` per customer.
        discount_rate : float
            Discount rate per period, ``>= 0``.
        level : float, default 0.9
            Coverage, strictly between 0 and 1.
        n_draws : int, default 500
            Number of parameter draws.
        random_state : int, numpy.random.Generator or None, default 0
            Seed of the draws.

        Returns
        -------
        pandas.DataFrame
            ``estimate``, ``lower`` and ``upper``, indexed like ``contracts``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        DataValidationError
            If ``contracts`` is invalid.
        ValueError
            Invalid discount rate, level or number of draws.
        ConvergenceError
            If the covariance is undefined.

        Examples
        --------
        >>> import pandas as pd
        >>> cohort = contracts_from_survival([1000, 869, 743, 653, 593, 551, 517, 491])
        >>> sbg = ShiftedBetaGeometric().fit(cohort, weights=cohort["customers"])
        >>> contracts = pd.DataFrame({"renewals": [0, 7], "churned": [0, 0]})
        >>> out = sbg.discounted_expected_residual_lifetime_interval(contracts, 0.1, n_draws=200)
        >>> out.columns.tolist()
        ['estimate', 'lower', 'upper']
        """
        check_interval_arguments(level, n_draws)
        d = _check_discount_rate(discount_rate)
        index, m, churned = self._contracts(contracts)
        estimate = self._derl_at(self.params_, m, churned, d)
        draws = self.sample_params(n_draws, random_state)
        lower, upper = interval_bounds(
            lambda p, m_, c_: self._derl_at(p, m_, c_, d), draws, [m, churned], estimate, level
        )
        return pd.DataFrame({"estimate": estimate, "lower": lower, "upper": upper}, index=index)


def _check_discount_rate(discount_rate: Any) -> float:
    if not (isinstance(discount_rate, numbers.Real) and 0 <= discount_rate < np.inf):
        raise ValueError(f"discount_rate must be a finite number >= 0, got {discount_rate!r}.")
    return float(discount_rate)
