r"""Discounted customer lifetime value from a purchase model and the Gamma-Gamma spend model.

The value of customer ``i`` over ``horizon`` time units, cut into steps of ``step``:

.. math::  \mathrm{CLV}_i = E[Z_i] \sum_{k=1}^{K}
           \frac{E[X_i(t_k)] - E[X_i(t_{k-1})]}{(1 + d)^{t_k}},\qquad
           t_k = k \cdot \mathrm{step},\; K = \mathrm{horizon} / \mathrm{step},

with :math:`E[X_i(t)]` the expected purchases in ``(T, T + t]`` given the history,
:math:`E[Z_i]` the Gamma-Gamma expected spend per purchase and ``d`` the discount rate per
time unit. Every unit is explicit: ``horizon``, ``step`` and ``d`` are in the time unit of the
RFM summary (weeks when it was built with ``time_unit="W"``). :func:`per_period_rate` turns an
annual rate into a rate per hour, day, week or month exactly. ``lifetimes`` hides 30-day months
instead (steps of 30 days, a rate per month); ``tests/parity/test_clv_lifetimes.py`` shows the
translation.
"""

from __future__ import annotations

import functools
import logging
import numbers
from typing import Any, Literal

import numpy as np
import pandas as pd

from vipml.ltv._base import (
    FloatArray,
    Params,
    PurchaseModel,
    check_interval_arguments,
    interval_bounds,
    refuse_covariates,
)
from vipml.ltv._mle import collapse_rows
from vipml.ltv.gamma_gamma import GammaGamma

__all__ = ["customer_lifetime_value", "customer_lifetime_value_interval", "per_period_rate"]

logger = logging.getLogger(__name__)

TimeUnit = Literal["H", "D", "W", "M"]

#: Periods of each time unit in a year of 365.25 days (a calendar month is a twelfth of it).
PERIODS_PER_YEAR: dict[str, float] = {"H": 365.25 * 24.0, "D": 365.25, "W": 365.25 / 7.0, "M": 12.0}
_UNIT_NAMES = {"H": "hours", "D": "days", "W": "weeks", "M": "months"}
_CELLS = 2_000_000  # customer histories x steps evaluated at once
_STEP_TOLERANCE = 1e-9


#: pandas' current spellings of the same units (as vipml.features accepts them).
_UNIT_ALIASES = {"h": "H", "ME": "M", "MS": "M"}


def _check_time_unit(time_unit: Any) -> str:
    unit = _UNIT_ALIASES.get(time_unit, time_unit) if isinstance(time_unit, str) else time_unit
    if unit not in PERIODS_PER_YEAR:
        raise ValueError(
            f"time_unit must be one of {sorted(PERIODS_PER_YEAR)} (hours, days, weeks, calendar "
            f"months; 'h' and 'ME' are accepted too), got {time_unit!r}."
        )
    return str(unit)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and bool(np.isfinite(value))


def per_period_rate(annual_rate: float, time_unit: TimeUnit) -> float:
    """Convert an annual discount rate into the equivalent rate per time unit.

    The rate per period compounds to the annual rate over a year of 365.25 days:
    ``(1 + rate) ** periods_per_year == 1 + annual_rate``, with 8766 hours, 365.25 days,
    365.25 / 7 = 52.1786 weeks or 12 calendar months in a year. No 30-day month is assumed.

    Parameters
    ----------
    annual_rate : float
        Discount rate per year, ``>= 0`` (e.g. 0.10 for 10 %).
    time_unit : {"H", "D", "W", "M"}
        Unit of the returned rate: hours, days, weeks or calendar months.

    Returns
    -------
    float
        ``(1 + annual_rate) ** (1 / periods_per_year) - 1``.

    Raises
    ------
    ValueError
        If ``annual_rate`` is negative or not finite, or ``time_unit`` is unknown.

    Examples
    --------
    >>> round(per_period_rate(0.10, "W"), 8)
    0.00182828
    >>> (1 + per_period_rate(0.10, "D")) ** 365.25
    1.1...
    """
    unit = _check_time_unit(time_unit)
    if not (_is_number(annual_rate) and annual_rate >= 0):
        raise ValueError(f"annual_rate must be a finite number >= 0, got {annual_rate!r}.")
    return float(np.expm1(np.log1p(annual_rate) / PERIODS_PER_YEAR[unit]))


def _step_times(horizon: Any, step: Any, time_unit: str) -> FloatArray:
    """The step ends ``t_1 < ... < t_K = horizon``; refuses a horizon not a multiple of step."""
    unit = _UNIT_NAMES[time_unit]
    if not (_is_number(horizon) and horizon > 0):
        raise ValueError(f"horizon must be a finite number > 0 ({unit}), got {horizon!r}.")
    if not (_is_number(step) and 0 < step <= horizon):
        raise ValueError(
            f"step must be a finite number > 0 and <= horizon={horizon!r} ({unit}), got {step!r}."
        )
    n_steps = round(horizon / step)
    if abs(n_steps * step - horizon) > _STEP_TOLERANCE * horizon:
        raise ValueError(
            f"horizon={horizon!r} is not a whole number of steps of {step!r} {unit}: choose a "
            "step that divides the horizon (e.g. horizon=52, step=1 or step=4)."
        )
    return float(horizon) * np.arange(1, n_steps + 1) / n_steps


def _check_discount_rate(discount_rate: Any, time_unit: str) -> float:
    if not (_is_number(discount_rate) and discount_rate >= 0):
        raise ValueError(
            f"discount_rate must be a finite number >= 0 per {_UNIT_NAMES[time_unit][:-1]}, got "
            f"{discount_rate!r}. Convert an annual rate with per_period_rate(annual_rate, "
            f"{time_unit!r})."
        )
    return float(discount_rate)


def _check_models(purchase_model: Any, spend_model: Any) -> None:
    if not isinstance(purchase_model, PurchaseModel):
        raise TypeError(
            "purchase_model must be a purchase model (BetaGeo, ParetoNBD or ModifiedBetaGeo), "
            f"got {type(purchase_model).__name__}."
        )
    if not isinstance(spend_model, GammaGamma):
        raise TypeError(
            f"spend_model must be a GammaGamma model, got {type(spend_model).__name__}."
        )
    refuse_covariates(purchase_model, spend_model, function="customer_lifetime_value")


def _inputs(
    purchase_model: PurchaseModel, spend_model: GammaGamma, rfm: Any
) -> tuple[pd.Index, list[FloatArray], dict[str, float]]:
    """Validated columns (frequency, recency, T, monetary_value) and both models' estimates."""
    _check_models(purchase_model, spend_model)
    index, x, t_x, age = purchase_model._arrays(rfm)
    _, _, m = spend_model._arrays(rfm)
    params = {**purchase_model.params_, **spend_model.params_}
    return index, [x, t_x, age, m], params


def _discounted_purchases(
    model: type[PurchaseModel],
    params: Params,
    frequency: FloatArray,
    recency: FloatArray,
    T: FloatArray,
    times: FloatArray,
    discount: FloatArray,
) -> FloatArray:
    r"""``sum_k (E[X(t_k)] - E[X(t_(k-1))]) * discount_k`` per customer, at ``params``.

    In BG/NBD, Pareto/NBD and MBG/NBD the conditional expectation factorises as
    :math:`E[X(t) \mid x, t_x, T] = P(\text{alive} \mid x, t_x, T)\, E[X(t) \mid
    \text{alive at } T, x, T]`: given that the customer is alive at T, the future depends on
    the history only through ``x`` and ``T`` (the purchase rate's posterior is
    Gamma(r + x, alpha + T); the dropout's depends on ``x`` or ``T`` alone). So the customers x steps grid is evaluated once per distinct
    ``(frequency, T)`` pair, at the history with the last purchase at T (recency 0 without
    repeat purchases), divided by P(alive) there, then scaled by each customer's P(alive).
    The grid is evaluated in blocks of at most about two million cells.
    """
    (x_u, age_u), _, inverse = collapse_rows([frequency, T])
    recency_u = np.where(x_u > 0, age_u, 0.0)
    alive_value = np.empty(x_u.size)
    block = max(1, _CELLS // times.size)
    for start in range(0, x_u.size, block):
        part = slice(start, start + block)
        columns = (x_u[part, None], recency_u[part, None], age_u[part, None])
        cumulative = model._expected_purchases_at(params, *columns, times[None, :])
        increments = np.diff(cumulative, axis=1, prepend=0.0)
        p_alive = model._p_alive_at(params, x_u[part], recency_u[part], age_u[part])
        # a row-wise sum, not a BLAS product: a value must not depend on the block it falls in
        alive_value[part] = (increments * discount).sum(axis=1) / p_alive
    return model._p_alive_at(params, frequency, recency, T) * alive_value[inverse]


def _clv_at(
    params: Params,
    frequency: FloatArray,
    recency: FloatArray,
    T: FloatArray,
    monetary_value: FloatArray,
    *,
    model: type[PurchaseModel],
    times: FloatArray,
    discount: FloatArray,
) -> FloatArray:
    """CLV per customer at one joint parameter dict holding both models' parameters.

    The names do not overlap (``r, alpha, a, b`` or ``r, alpha, s, beta`` and ``p, q, v``), so
    each model's closed form reads its own from the one dict.
    """
    spend = GammaGamma._expected_spend_at(params, frequency, monetary_value)
    return spend * _discounted_purchases(model, params, frequency, recency, T, times, discount)


def _clv_evaluator(
    purchase_model: PurchaseModel,
    *,
    horizon: Any,
    discount_rate: Any,
    time_unit: Any,
    step: Any,
) -> functools.partial[FloatArray]:
    unit = _check_time_unit(time_unit)
    times = _step_times(horizon, step, unit)
    rate = _check_discount_rate(discount_rate, unit)
    discount = np.exp(-times * np.log1p(rate))
    return functools.partial(_clv_at, model=type(purchase_model), times=times, discount=discount)


def customer_lifetime_value(
    purchase_model: PurchaseModel,
    spend_model: GammaGamma,
    rfm: Any,
    *,
    horizon: float,
    discount_rate: float,
    time_unit: TimeUnit = "W",
    step: float = 1.0,
) -> pd.Series:
    r"""Discounted expected value of each customer's purchases over the next ``horizon``.

    .. math::  \mathrm{CLV}_i = E[Z_i] \sum_{k=1}^{K}
               \frac{E[X_i(t_k)] - E[X_i(t_{k-1})]}{(1 + d)^{t_k}},\quad t_k = k\,\mathrm{step}

    The purchases expected in each step are valued at the Gamma-Gamma expected spend and
    discounted to ``T`` (the cutoff) from the end of their step. Without discounting
    (``discount_rate=0``) this is ``expected_spend * expected_purchases(rfm, horizon)``.
    Vectorised over customers and steps.

    Parameters
    ----------
    purchase_model : BetaGeo, ParetoNBD or ModifiedBetaGeo
        Fitted purchase model.
    spend_model : GammaGamma
        Fitted spend model.
    rfm : DataFrame
        RFM summary indexed by customer id with ``frequency``, ``recency``, ``T`` and
        ``monetary_value`` (see :func:`vipml.features.rfm_summary`).
    horizon : float
        Length of the period valued, ``> 0``, in the time unit of recency and T.
    discount_rate : float
        Discount rate per one ``time_unit``, ``>= 0``. An annual rate ``r`` is
        ``per_period_rate(r, time_unit)`` per period, e.g. ``(1 + r) ** (7 / 365.25) - 1`` per
        week. ``lifetimes``' default of 0.01 is a rate per 30-day month.
    time_unit : {"H", "D", "W", "M"}, default "W"
        The time unit of the RFM summary (its recency and T), in which ``horizon`` and
        ``step`` are given and ``discount_rate`` is quoted. The summary does not record its
        unit, so this states it; it must be the ``time_unit`` the summary was built with.
    step : float, default 1.0
        Length of the discounting steps, ``> 0``; ``horizon`` must be a whole number of steps.

    Returns
    -------
    pandas.Series
        ``clv`` (in the currency of ``monetary_value``), indexed like ``rfm``.

    Raises
    ------
    TypeError
        If the models are not a purchase model and a GammaGamma model.
    NotFittedError
        If a model is not fitted.
    DataValidationError
        If ``rfm`` is invalid (missing columns, repeat buyers with ``monetary_value <= 0``, ...).
    ValueError
        If ``horizon``, ``step``, ``discount_rate`` or ``time_unit`` is invalid, or
        ``horizon`` is not a multiple of ``step``.

    References
    ----------
    Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base
    Analysis", Journal of Marketing Research 42(4), section on discounted expected
    transactions; expected purchases: Fader, Hardie & Lee (2005), Marketing Science 24(2),
    eq. (10); expected spend: Fader & Hardie (2013), eq. (5).

    Examples
    --------
    >>> import pandas as pd
    >>> from vipml.ltv import BetaGeo, GammaGamma
    >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
    ...                     "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
    ...                     "T": [30.0, 38.0, 30.0, 39.0, 39.0],
    ...                     "monetary_value": [0.0, 20.0, 35.5, 18.0, 60.0]})
    >>> bg = BetaGeo(penalizer=0.01).fit(rfm)
    >>> gg = GammaGamma(penalizer=0.01).fit(rfm)
    >>> weekly = per_period_rate(0.10, "W")  # 10 % a year
    >>> customer_lifetime_value(bg, gg, rfm, horizon=52, discount_rate=weekly).round(1).tolist()
    [33.3, 12.4, 74.2, 71.4, 4.4]
    """
    index, columns, params = _inputs(purchase_model, spend_model, rfm)
    evaluate = _clv_evaluator(
        purchase_model, horizon=horizon, discount_rate=discount_rate, time_unit=time_unit, step=step
    )
    return pd.Series(evaluate(params, *columns), index=index, name="clv")


def customer_lifetime_value_interval(
    purchase_model: PurchaseModel,
    spend_model: GammaGamma,
    rfm: Any,
    *,
    horizon: float,
    discount_rate: float,
    time_unit: TimeUnit = "W",
    step: float = 1.0,
    level: float = 0.9,
    n_draws: int = 500,
    random_state: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Customer lifetime value with an interval from both models' parameter uncertainty.

    ``estimate`` is :func:`customer_lifetime_value` at the estimates. For the interval, each
    of ``n_draws`` joint draws combines a draw of the purchase model's parameters and an
    independent draw of the Gamma-Gamma parameters (each from its model's asymptotic normal on
    the log scale, :meth:`~vipml.ltv.BetaGeo.sample_params`), both from one generator seeded
    with ``random_state``, so the same seed gives the same output. ``lower`` and ``upper`` are
    the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the CLV over the draws,
    widened to contain the estimate: ``lower <= estimate <= upper`` always. A spend draw with
    ``q <= 1`` has no finite mean spend and counts as infinite value for customers without
    repeat purchases; where a quantile reaches such draws the bound is ``inf``. Cost:
    ``n_draws`` CLV evaluations per distinct customer history, in bounded blocks of customers.

    Parameters
    ----------
    purchase_model, spend_model, rfm, horizon, discount_rate, time_unit, step
        As in :func:`customer_lifetime_value`.
    level : float, default 0.9
        Coverage of the interval, strictly between 0 and 1.
    n_draws : int, default 500
        Number of joint parameter draws, ``>= 2``.
    random_state : int, numpy.random.Generator or None, default 0
        Seed of the draws.

    Returns
    -------
    pandas.DataFrame
        Columns ``estimate``, ``lower``, ``upper``, indexed like ``rfm``.

    Raises
    ------
    TypeError, NotFittedError, DataValidationError, ValueError
        As in :func:`customer_lifetime_value`; ValueError also for ``level`` or ``n_draws``.
    ConvergenceError
        If a model's covariance is undefined (parameters cannot be drawn).

    References
    ----------
    As :func:`customer_lifetime_value`; asymptotic normality of the maximum-likelihood
    estimates (e.g. Casella & Berger, Statistical Inference, 10.1).

    Examples
    --------
    >>> import pandas as pd
    >>> from vipml.ltv import BetaGeo, GammaGamma
    >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
    ...                     "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
    ...                     "T": [30.0, 38.0, 30.0, 39.0, 39.0],
    ...                     "monetary_value": [0.0, 20.0, 35.5, 18.0, 60.0]})
    >>> bg = BetaGeo(penalizer=0.01).fit(rfm)
    >>> gg = GammaGamma(penalizer=0.01).fit(rfm)
    >>> out = customer_lifetime_value_interval(bg, gg, rfm, horizon=52, discount_rate=0.002,
    ...                                        n_draws=100, random_state=1)
    >>> out.columns.tolist()
    ['estimate', 'lower', 'upper']
    >>> bool(((out.lower <= out.estimate) & (out.estimate <= out.upper)).all())
    True
    """
    check_interval_arguments(level, n_draws)
    index, columns, params = _inputs(purchase_model, spend_model, rfm)
    evaluate = _clv_evaluator(
        purchase_model, horizon=horizon, discount_rate=discount_rate, time_unit=time_unit, step=step
    )
    estimate = evaluate(params, *columns)
    rng = np.random.default_rng(random_state)
    purchase_draws = purchase_model.sample_params(n_draws, rng)
    spend_draws = spend_model.sample_params(n_draws, rng)
    draws = [{**p, **s} for p, s in zip(purchase_draws, spend_draws, strict=True)]
    with np.errstate(invalid="ignore"):
        lower, upper = interval_bounds(evaluate, draws, columns, estimate, level)
    logger.debug("CLV interval: %d draws, %d customers", n_draws, index.size)
    return pd.DataFrame({"estimate": estimate, "lower": lower, "upper": upper}, index=index)
