"""Common base of the purchase models (BG/NBD, Pareto/NBD, MBG/NBD) and shared helpers.

A purchase model supplies its parameter names, the summary columns it reads (``frequency``,
``recency``, ``T`` for the continuous-time models; ``n_periods`` instead of ``T`` for the
discrete-time BG/BB), its per-customer log-likelihood (with gradient where one exists),
deterministic starting values and its closed forms as static methods taking the parameters
explicitly (``_expected_purchases_at``, ``_p_alive_at``, ``_probability_of_purchases_at``);
fitting, validation, uncertainty and the public prediction methods live here.
"""

from __future__ import annotations

import dataclasses
import logging
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from vipml.base import VipmlEstimator
from vipml.ltv._covariates import (
    CovariateLinks,
    covariate_total_factory,
    draw_params,
    make_links,
    split_result,
)
from vipml.ltv._input import fit_columns, rfm_columns
from vipml.ltv._mle import (
    MLEResult,
    ParameterPenalty,
    TotalFactory,
    collapse_rows,
    draw_log_normal,
    fit_mle,
)

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["PurchaseModel", "interval_bounds", "purchase_history"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
Params = Mapping[str, float]

RFM_COLUMNS = ("frequency", "recency", "T")
_INTERVAL_CELLS = 10_000_000  # draws x customers evaluated at once by the interval methods


PENALIZER_KINDS = ("log", "lifetimes")


def check_penalizer_kind(penalizer_kind: Any) -> None:
    """Refuse an unknown ``penalizer_kind`` with a ValueError listing the kinds."""
    if penalizer_kind not in PENALIZER_KINDS:
        raise ValueError(
            f"penalizer_kind must be 'log' (vipml: L2 on the log-parameters, towards 1) or "
            f"'lifetimes' (lifetimes' penalizer_coef: L2 on the parameters, towards 0), got "
            f"{penalizer_kind!r}."
        )


def lifetimes_penalty(
    penalizer: float,
    names: Sequence[str],
    time_rates: Sequence[str] = (),
    age: FloatArray | None = None,
    *,
    per_row: int | None = None,
) -> ParameterPenalty:
    """lifetimes' ``penalizer_coef * sum(params ** 2)`` on the mean negative log-likelihood.

    lifetimes rescales time so that the oldest customer has age 1 (``max(T)``), so the rate
    parameters in ``time_rates`` enter its penalty divided by ``max(age)``. Its Pareto/NBD
    divides the weighted negative log-likelihood by the mean weight instead of the total,
    which on the mean scale divides the coefficient by the number of rows: ``per_row``.
    """
    scale = 1.0 / float(np.max(age)) if time_rates and age is not None and np.max(age) > 0 else 1.0
    coef = float(penalizer) / (per_row if per_row else 1)
    scales = tuple(scale if name in time_rates else 1.0 for name in names)
    return ParameterPenalty(coef=coef, scales=scales)


def refuse_covariates(*models: Any, function: str, discrete: bool = False) -> None:
    """Refuse covariate models (and BG/BB) in functions that evaluate the closed forms directly.

    :func:`vipml.ltv.customer_lifetime_value` and the holdout functions evaluate a model's
    closed forms at ``params_`` on ``frequency``, ``recency`` and ``T``: they know neither
    covariates (which give each customer their own parameters) nor, for the continuous-time
    discounting of the CLV, BG/BB's opportunities (``discrete=True`` lets BG/BB through, e.g.
    for a holdout built with ``freq = time_unit =`` the opportunity period).
    """
    for model in models:
        links = getattr(model, "_links", None)
        if callable(links) and links() is not None:
            raise NotImplementedError(
                f"{function} does not take covariate models yet: score with the model's own "
                f"methods (expected_purchases, p_alive, expected_spend), which use each "
                f"customer's covariates ({type(model).__name__} has covariates "
                f"{list(links().columns)})."
            )
        if getattr(model, "_discrete", False) and not discrete:
            raise NotImplementedError(
                f"{function} works in continuous time; for {type(model).__name__} use "
                "discounted_expected_transactions (DERT) times the expected spend, or "
                "expected_purchases over whole opportunities."
            )


def check_hyperparameters(penalizer: float, tol: float, max_iter: int) -> None:
    """Refuse meaningless estimator settings with a ValueError naming the setting."""
    if not (isinstance(penalizer, numbers.Real) and np.isfinite(penalizer) and penalizer >= 0):
        raise ValueError(f"penalizer must be a finite number >= 0, got {penalizer!r}.")
    if not (isinstance(tol, numbers.Real) and np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a finite number > 0, got {tol!r}.")
    if not (isinstance(max_iter, numbers.Integral) and max_iter >= 1):
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}.")


def check_horizon(horizon: Any, *, allow_array: bool = False) -> Any:
    """A horizon is a finite number >= 0 (or an array of them, where allowed)."""
    value = np.asarray(horizon, dtype=np.float64)
    if (value.ndim > 0 and not allow_array) or not np.all(np.isfinite(value)) or np.any(value < 0):
        raise ValueError(
            f"horizon must be a finite number >= 0 in the time unit of recency and T, got "
            f"{horizon!r}."
        )
    return value if value.ndim > 0 else float(value)


def check_interval_arguments(level: float, n_draws: int) -> None:
    """Refuse a level outside (0, 1) or fewer than two draws."""
    if not (isinstance(level, numbers.Real) and 0.0 < level < 1.0):
        raise ValueError(f"level must be strictly between 0 and 1, got {level!r}.")
    if not (isinstance(n_draws, numbers.Integral) and n_draws >= 2):
        raise ValueError(f"n_draws must be an integer >= 2, got {n_draws!r}.")


def interval_bounds(
    evaluate: Callable[..., FloatArray],
    draws: Sequence[Params],
    columns: Sequence[FloatArray],
    estimate: FloatArray,
    level: float,
) -> tuple[FloatArray, FloatArray]:
    """Quantiles of a prediction over parameter draws, widened to contain the point estimate.

    The prediction is evaluated once per distinct customer history (identical rows collapsed),
    in blocks of customers so that memory stays bounded.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(params, *columns) -> prediction per row``.
    draws : sequence of mapping
        Parameter draws.
    columns : sequence of numpy.ndarray
        Customer data columns.
    estimate : numpy.ndarray
        Point prediction at the estimates, per row.
    level : float
        Central coverage of the interval.

    Returns
    -------
    tuple of numpy.ndarray
        ``(lower, upper)`` per row, with ``lower <= estimate <= upper``.
    """
    unique, _, inverse = collapse_rows(columns)
    n_unique = unique[0].size
    block = max(1, _INTERVAL_CELLS // len(draws))
    probabilities = [(1.0 - level) / 2.0, (1.0 + level) / 2.0]
    lower = np.empty(n_unique)
    upper = np.empty(n_unique)
    for start in range(0, n_unique, block):
        part = slice(start, start + block)
        values = np.stack([evaluate(draw, *(c[part] for c in unique)) for draw in draws])
        # No interpolation between order statistics: draws with an infinite prediction (e.g.
        # Gamma-Gamma's mean spend when a draw has q <= 1) give inf, never inf - inf = NaN.
        lower[part], upper[part] = np.quantile(values, probabilities, axis=0, method="inverted_cdf")
    return np.minimum(lower[inverse], estimate), np.maximum(upper[inverse], estimate)


def sample_param_dicts(
    params: Params,
    covariance: pd.DataFrame,
    n_draws: int,
    random_state: int | np.random.Generator | None,
) -> list[dict[str, float]]:
    """Parameter draws (log-normal, see :func:`~vipml.ltv._mle.draw_log_normal`) as dicts."""
    names = list(params)
    draws = draw_log_normal(
        [params[k] for k in names], covariance.to_numpy(), n_draws, random_state
    )
    return [dict(zip(names, map(float, row), strict=True)) for row in draws]


def set_fit_result(
    estimator: VipmlEstimator,
    result: MLEResult,
    names: Sequence[str],
    n_customers: float,
) -> None:
    """Store a fit's outcome in the estimator's fitted attributes (plain data only)."""
    estimator.params_ = {name: float(v) for name, v in zip(names, result.params, strict=True)}
    estimator.loglik_ = float(result.loglik)
    estimator.converged_ = bool(result.converged)
    estimator.n_customers_ = n_customers
    estimator.covariance_ = pd.DataFrame(result.covariance, index=list(names), columns=list(names))
    estimator.standard_errors_ = pd.Series(
        np.sqrt(np.diag(result.covariance)), index=list(names), name="standard_error"
    )
    estimator._stamp_version()


def purchase_history(
    history: npt.ArrayLike, times: npt.ArrayLike, columns: Sequence[str] = RFM_COLUMNS
) -> pd.DataFrame:
    """One customer's summary at each of ``times``, from the times of their purchases.

    Parameters
    ----------
    history : array_like
        Purchase times (any origin); the earliest is the first purchase. Repeated times count
        once.
    times : array_like
        Evaluation times, none before the first purchase.
    columns : sequence of str, default ("frequency", "recency", "T")
        Names of the purchases, last-purchase and age columns of the result.

    Returns
    -------
    pandas.DataFrame
        One row per time, indexed by ``time``.

    Raises
    ------
    ValueError
        Empty or non-finite inputs, or a time before the first purchase.

    Examples
    --------
    >>> purchase_history([3.0, 5.0, 5.0, 9.0], [3.0, 6.0, 12.0])
          frequency  recency    T
    time
    3.0         0.0      0.0  0.0
    6.0         1.0      2.0  3.0
    12.0        2.0      6.0  9.0
    """
    bought = np.unique(np.asarray(history, dtype=np.float64).ravel())
    at = np.asarray(times, dtype=np.float64).ravel()
    for name, values in (("history", bought), ("times", at)):
        if values.size == 0 or not np.all(np.isfinite(values)):
            raise ValueError(f"{name} must be a non-empty sequence of finite numbers.")
    first = bought[0]
    if at.min() < first:
        raise ValueError(
            f"times must not precede the first purchase ({first:g}); got {at.min():g}. Before "
            "the first purchase the customer is not yet a customer."
        )
    seen = np.searchsorted(bought, at, side="right")  # purchases at or before each time
    frequency, recency, age = columns
    return pd.DataFrame(
        {
            frequency: (seen - 1).astype(np.float64),
            recency: bought[seen - 1] - first,
            age: at - first,
        },
        index=pd.Index(at, name="time"),
    )


class PurchaseModel(VipmlEstimator):
    """Base class of the purchase-count models; see :class:`vipml.ltv.BetaGeo` for the API.

    Subclasses set ``_param_names``, ``_model_name``, ``_loglik`` (and ``_loglik_grad``, or
    None for central differences) and implement the static closed forms
    ``_expected_purchases_at``, ``_p_alive_at`` and ``_probability_of_purchases_at``. These take
    the parameters as a dict and numpy arrays, so other modules can evaluate predictions at
    parameter draws (:meth:`sample_params`) without refitting.
    """

    _param_names: ClassVar[tuple[str, ...]] = ()
    _model_name: ClassVar[str] = ""
    #: Summary columns read by the model: purchases, time of the last one, age or opportunities.
    _columns: ClassVar[tuple[str, str, str]] = RFM_COLUMNS
    #: Discrete-time models count whole transaction opportunities: horizons must be integers.
    _discrete: ClassVar[bool] = False
    _loglik: ClassVar[Callable[..., FloatArray]]
    _loglik_grad: ClassVar[Callable[..., tuple[FloatArray, FloatArray]] | None] = None
    _total: ClassVar[TotalFactory | None] = None
    _fitted_attributes = ("params_", "loglik_", "covariance_")

    #: Parameters that are rates per unit of time (lifetimes rescales them, see
    #: :func:`lifetimes_penalty`).
    _time_rates: ClassVar[tuple[str, ...]] = ("alpha",)
    #: Whether lifetimes' version of the model divides its objective by the mean weight.
    _lifetimes_per_row: ClassVar[bool] = False

    def __init__(
        self,
        *,
        penalizer: float = 0.0,
        penalizer_kind: Literal["log", "lifetimes"] = "log",
        purchase_covariates: Sequence[str] = (),
        dropout_covariates: Sequence[str] = (),
        tol: float = 1e-8,
        max_iter: int = 500,
    ) -> None:
        self.penalizer = penalizer
        self.penalizer_kind = penalizer_kind
        self.purchase_covariates = purchase_covariates
        self.dropout_covariates = dropout_covariates
        self.tol = tol
        self.max_iter = max_iter

    def _links(self) -> CovariateLinks | None:
        """How covariates scale the parameters (None for a model without covariates)."""
        groups = {
            "purchase": tuple(getattr(self, "purchase_covariates", ()) or ()),
            "dropout": tuple(getattr(self, "dropout_covariates", ()) or ()),
        }
        return make_links(self._model_name, self._param_names, groups)

    # -- closed forms (numpy, parameters explicit) --------------------------------------------

    @staticmethod
    def _initial_params(columns: Sequence[FloatArray], weights: FloatArray) -> tuple[float, ...]:
        """Deterministic start: shape parameters 1, the rate's scale ``alpha`` the mean age.

        Computed on the collapsed rows (``columns`` = frequency, recency, T) and their weights.
        """
        mean_age = float(np.average(columns[2], weights=weights))
        return (1.0, mean_age if mean_age > 0 else 1.0, 1.0, 1.0)

    @staticmethod
    def _expected_purchases_at(
        params: Params, frequency: Any, recency: Any, T: Any, horizon: Any
    ) -> FloatArray:
        """E[purchases in (T, T + horizon] | history] at ``params``; numpy arrays broadcast."""
        raise NotImplementedError

    @staticmethod
    def _p_alive_at(params: Params, frequency: Any, recency: Any, T: Any) -> FloatArray:
        """P(alive at T | history) at ``params``."""
        raise NotImplementedError

    @staticmethod
    def _probability_of_purchases_at(
        params: Params, frequency: Any, recency: Any, T: Any, n: int, horizon: float
    ) -> FloatArray:
        """P(exactly n purchases in (T, T + horizon] | history) at ``params``."""
        raise NotImplementedError

    @classmethod
    def _check_summary(cls, index: pd.Index, columns: Mapping[str, FloatArray]) -> None:
        """Model-specific checks of a validated summary (the discrete models need integers)."""

    @staticmethod
    def _median_time_at(params: Params, frequency: Any, T: Any) -> FloatArray:
        """Median of the Lomax waiting time: ``(alpha + T) * (2 ** (1 / (r + x)) - 1)``."""
        r, alpha = params["r"], params["alpha"]
        x = np.asarray(frequency, dtype=np.float64)
        return (alpha + np.asarray(T, dtype=np.float64)) * np.expm1(np.log(2.0) / (r + x))

    # -- fitting -----------------------------------------------------------------------------

    def fit(self, rfm: Any, weights: npt.ArrayLike | None = None) -> Self:
        """Fit the model by maximum likelihood.

        Identical customers are collapsed into weighted rows first (same optimum, far fewer
        evaluations); the parameters are optimised on the log scale with BFGS from
        deterministic starting values, so identical data give identical estimates bit for bit.
        No training data are kept on the estimator.

        Parameters
        ----------
        rfm : DataFrame
            RFM summary indexed by customer id with float columns ``frequency`` (repeat
            purchase periods), ``recency`` (first to last purchase) and ``T`` (first purchase
            to the cutoff) in one time unit (e.g. weeks), as from
            :func:`vipml.features.rfm_summary` (lifetimes definitions). Any narwhals-supported
            frame (polars, pyarrow, ...) with a ``customer_id`` column is accepted too. It is
            not modified.
        weights : array_like, optional
            Non-negative weight per row, e.g. the number of customers sharing that history.

        Returns
        -------
        Self
            The fitted estimator, with ``params_``, ``loglik_``, ``converged_``,
            ``n_customers_``, ``covariance_``, ``standard_errors_`` and ``vipml_version_``.

        Raises
        ------
        DataValidationError
            Missing columns or invalid values; the message names the column, the number of
            rows, a few customer ids and the fix.
        ConvergenceError
            If the optimiser fails; the message says what to try (penalizer, time unit, ...).
        ValueError
            If ``penalizer``, ``tol`` or ``max_iter`` is invalid.

        Warns
        -----
        ModelAssumptionWarning
            If the Hessian at the optimum is not positive definite (covariance set to NaN).

        References
        ----------
        BG/NBD: Fader, Hardie & Lee (2005), Marketing Science 24(2), eq. (6). Pareto/NBD:
        Fader & Hardie (2005), note on the Pareto/NBD, eqs. (18)-(20). MBG/NBD: Batislam,
        Denizel & Filiztekin (2007), IJRM 24(3), appendix A, eq. (3).

        Examples
        --------
        >>> import pandas as pd
        >>> from vipml.ltv import BetaGeo
        >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
        ...                     "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
        ...                     "T": [30.0, 38.0, 30.0, 39.0, 39.0]})
        >>> bg = BetaGeo(penalizer=0.01).fit(rfm)  # five customers: a penalizer keeps it identified
        >>> sorted(bg.params_), bg.n_customers_
        (['a', 'alpha', 'b', 'r'], 5)
        """
        check_hyperparameters(self.penalizer, self.tol, self.max_iter)
        check_penalizer_kind(self.penalizer_kind)
        cls = type(self)
        links = self._links()
        if links is not None:
            return self._fit_with_covariates(rfm, weights, links)
        index, columns, w = fit_columns(rfm, cls._columns, weights)
        cls._check_summary(index, columns)
        x, t_x, age = (columns[c] for c in cls._columns)
        penalty = None
        if self.penalizer_kind == "lifetimes":
            penalty = lifetimes_penalty(
                self.penalizer,
                cls._param_names,
                cls._time_rates,
                age,
                per_row=len(index) if cls._lifetimes_per_row else None,
            )
        result = fit_mle(
            loglik=cls._loglik,
            loglik_grad=cls._loglik_grad,
            data=(x, t_x, age),
            weights=w,
            initial_params=cls._initial_params,
            param_names=cls._param_names,
            penalizer=float(self.penalizer),
            tol=float(self.tol),
            max_iter=int(self.max_iter),
            model_name=cls._model_name,
            total=cls._total,
            penalty=penalty,
        )
        n_customers = len(index) if w is None else float(w.sum())
        set_fit_result(self, result, cls._param_names, n_customers)
        logger.debug("%s fitted: %s, loglik %.6f", cls._model_name, self.params_, self.loglik_)
        return self

    def _fit_with_covariates(
        self, rfm: Any, weights: npt.ArrayLike | None, links: CovariateLinks
    ) -> Self:
        """Fit base parameters and covariate coefficients (see :mod:`vipml.ltv._covariates`)."""
        if self.penalizer_kind != "log":
            raise ValueError(
                "penalizer_kind='lifetimes' has no meaning for covariate coefficients (lifetimes "
                "has no covariates): use penalizer_kind='log', a ridge penalty on them."
            )
        cls = type(self)
        index, columns, w = fit_columns(rfm, (*cls._columns, *links.columns), weights)
        cls._check_summary(index, columns)
        n_coefficients = len(links.coefficient_names)

        def start(rows: Sequence[FloatArray], row_weights: FloatArray) -> tuple[float, ...]:
            return (*cls._initial_params(rows[:3], row_weights), *([1.0] * n_coefficients))

        result = fit_mle(
            loglik=cls._loglik,
            loglik_grad=cls._loglik_grad,
            data=[columns[c] for c in (*cls._columns, *links.columns)],
            weights=w,
            initial_params=start,
            param_names=links.names,
            penalizer=float(self.penalizer),
            tol=float(self.tol),
            max_iter=int(self.max_iter),
            model_name=cls._model_name,
            total=covariate_total_factory(links, 3, cls._loglik, cls._loglik_grad, cls._total),
        )
        values, covariance = split_result(links, result.params, result.log_covariance)
        result = dataclasses.replace(result, params=values, covariance=covariance)
        n_customers = len(index) if w is None else float(w.sum())
        set_fit_result(self, result, links.names, n_customers)
        logger.debug("%s fitted with covariates: %s", cls._model_name, self.params_)
        return self

    # -- predictions -------------------------------------------------------------------------

    def _arrays(self, rfm: Any) -> tuple[pd.Index, FloatArray, FloatArray, FloatArray]:
        index, x, t_x, age, _ = self._arrays_with_covariates(rfm)
        return index, x, t_x, age

    def _arrays_with_covariates(
        self, rfm: Any
    ) -> tuple[pd.Index, FloatArray, FloatArray, FloatArray, FloatArray | None]:
        self._check_fitted()
        links = self._links()
        extra = links.columns if links is not None else ()
        index, columns = rfm_columns(rfm, (*self._columns, *extra))
        self._check_summary(index, columns)
        x, t_x, age = (columns[c] for c in self._columns)
        z = np.column_stack([columns[c] for c in extra]) if extra else None
        return index, x, t_x, age, z

    def _apply(
        self, params: Params, function: Callable[..., Any], z: FloatArray | None, *columns: Any
    ) -> FloatArray:
        """``function(params, *columns)``, with each covariate pattern's own parameters."""
        links = self._links()
        if links is None or z is None:
            return function(params, *columns)
        patterns, codes = np.unique(z, axis=0, return_inverse=True)
        codes = np.asarray(codes).ravel()
        arrays = [np.broadcast_to(np.asarray(c, dtype=np.float64), codes.shape) for c in columns]
        out = np.empty(codes.shape)
        for g, own in enumerate(links.params_for(params, patterns)):
            rows = codes == g
            out[rows] = function(own, *(c[rows] for c in arrays))
        return out

    def _evaluate(
        self, rfm: Any, function: Callable[..., Any], *args: Any
    ) -> tuple[pd.Index, FloatArray]:
        """A closed form on a summary: ``function(params, frequency, recency, T, *args)``."""
        index, x, t_x, age, z = self._arrays_with_covariates(rfm)
        values = self._apply(self.params_, lambda p, *c: function(p, *c, *args), z, x, t_x, age)
        return index, values

    def _params_of(self, covariates: Mapping[str, float] | None) -> Params:
        """The parameters of a customer with the given covariates (0 for those not given)."""
        links = self._links()
        if links is None:
            if covariates:
                raise ValueError(f"covariates given, but this {type(self).__name__} has none.")
            return self.params_
        given = dict(covariates or {})
        unknown = sorted(set(given) - set(links.columns))
        if unknown:
            raise ValueError(
                f"unknown covariates {unknown}; the model's are {list(links.columns)}."
            )
        z = np.array([[float(given.get(c, 0.0)) for c in links.columns]])
        return links.params_for(self.params_, z)[0]

    def _horizon(self, horizon: Any, *, allow_array: bool = False) -> Any:
        """A valid horizon: finite and >= 0; a whole number of opportunities when discrete."""
        value = check_horizon(horizon, allow_array=allow_array)
        if self._discrete and not np.all(np.asarray(value) == np.round(value)):
            raise ValueError(
                f"horizon must be a whole number of transaction opportunities for "
                f"{self._model_name}, got {horizon!r}."
            )
        return value

    def expected_purchases(self, rfm: Any, horizon: float) -> pd.Series:
        """Expected number of purchases in ``(T, T + horizon]``, given each customer's history.

        Parameters
        ----------
        rfm : DataFrame
            RFM summary (see :meth:`fit`).
        horizon : float
            Length of the period, in the time unit of recency and T (e.g. 39 weeks).

        Returns
        -------
        pandas.Series
            ``expected_purchases``, indexed like ``rfm``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        DataValidationError
            If ``rfm`` is invalid.
        ValueError
            If ``horizon`` is negative or not finite.

        References
        ----------
        BG/NBD: Fader, Hardie & Lee (2005), eq. (10). Pareto/NBD: Fader & Hardie (2005) note,
        eq. (41). MBG/NBD: Wagner & Hoppe (2008), corrected conditional expectation. The
        hypergeometric factor is evaluated in its Euler-transformed, bounded form.

        Examples
        --------
        >>> import pandas as pd
        >>> from vipml.ltv import BetaGeo
        >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
        ...                     "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
        ...                     "T": [30.0, 38.0, 30.0, 39.0, 39.0]})
        >>> bg = BetaGeo(penalizer=0.01).fit(rfm)
        >>> bg.expected_purchases(rfm, horizon=39).round(2).tolist()
        [0.79, 0.46, 1.75, 3.22, 0.06]
        """
        h = self._horizon(horizon)
        index, values = self._evaluate(rfm, self._expected_purchases_at, h)
        return pd.Series(values, index=index, name="expected_purchases")

    def p_alive(self, rfm: Any) -> pd.Series:
        """Probability that each customer is still active at ``T``, given the history.

        For BG/NBD a customer without repeat purchases is alive with certainty (dropout only
        happens right after a repeat purchase); MBG/NBD and Pareto/NBD allow earlier dropout.

        Parameters
        ----------
        rfm : DataFrame
            RFM summary (see :meth:`fit`).

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

        References
        ----------
        BG/NBD: Fader, Hardie & Lee (2008), note "Computing P(alive) using the BG/NBD model",
        eq. (2). Pareto/NBD: Fader & Hardie (2005) note, eqs. (36)-(37). MBG/NBD: Batislam et
        al. (2007), appendix A, eq. (5).

        Examples
        --------
        >>> import pandas as pd
        >>> from vipml.ltv import BetaGeo
        >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
        ...                     "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
        ...                     "T": [30.0, 38.0, 30.0, 39.0, 39.0]})
        >>> BetaGeo(penalizer=0.01).fit(rfm).p_alive(rfm).round(2).tolist()
        [1.0, 0.34, 0.74, 0.83, 0.02]
        """
        index, values = self._evaluate(rfm, self._p_alive_at)
        return pd.Series(values, index=index, name="p_alive")

    def probability_of_purchases(self, rfm: Any, n: int, horizon: float) -> pd.Series:
        """Probability of exactly ``n`` purchases in ``(T, T + horizon]``, given the history.

        Given alive at T, the count in the window is ``n`` when the underlying Poisson count
        is ``n`` and the customer survives, or when the customer drops out at the ``n``-th
        purchase (BG/NBD, MBG/NBD) or dies after it (Pareto/NBD); with ``n = 0`` the customer
        may also have dropped out before T. Absolute accuracy is about 1e-15.

        Parameters
        ----------
        rfm : DataFrame
            RFM summary (see :meth:`fit`).
        n : int
            Number of purchases, ``>= 0``.
        horizon : float
            Length of the period, in the time unit of recency and T.

        Returns
        -------
        pandas.Series
            ``probability_of_purchases`` in ``[0, 1]``, indexed like ``rfm``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        DataValidationError
            If ``rfm`` is invalid.
        ValueError
            If ``n`` is not a non-negative integer or ``horizon`` is invalid.

        References
        ----------
        BG/NBD: conditional form of Fader, Hardie & Lee (2005), eq. (8), derived by
        conditioning on the history as in the Pareto/NBD case. Pareto/NBD: Fader & Hardie
        (2006), note "Deriving the conditional PMF of the Pareto/NBD model", eq. (16).
        MBG/NBD: the BG/NBD derivation with the extra dropout opportunity at time 0.

        Examples
        --------
        >>> import pandas as pd
        >>> from vipml.ltv import BetaGeo
        >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
        ...                     "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
        ...                     "T": [30.0, 38.0, 30.0, 39.0, 39.0]})
        >>> bg = BetaGeo(penalizer=0.01).fit(rfm)
        >>> bg.probability_of_purchases(rfm, n=0, horizon=39).round(2).tolist()
        [0.52, 0.76, 0.35, 0.19, 0.98]
        """
        if not (isinstance(n, numbers.Integral) and n >= 0):
            raise ValueError(f"n must be an integer >= 0, got {n!r}.")
        h = self._horizon(horizon)
        index, values = self._evaluate(rfm, self._probability_of_purchases_at, int(n), h)
        return pd.Series(values, index=index, name="probability_of_purchases")

    def expected_purchases_new_customer(
        self, horizon: npt.ArrayLike, *, covariates: Mapping[str, float] | None = None
    ) -> float | FloatArray:
        """Unconditional expected number of repeat purchases of a new customer in ``(0, horizon]``.

        Parameters
        ----------
        horizon : float or array_like
            Time(s) since the first purchase, in the model's time unit.
        covariates : dict, optional
            With a covariate model, the new customer's covariates (0 for those not given).

        Returns
        -------
        float or numpy.ndarray
            ``E[X(horizon)]``: a float for a scalar horizon, an array otherwise.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ValueError
            If a horizon is negative or not finite.

        References
        ----------
        BG/NBD: Fader, Hardie & Lee (2005), eq. (9). Pareto/NBD: Fader & Hardie (2005) note,
        eq. (27). MBG/NBD: Batislam et al. (2007), eq. (4). Each equals the conditional
        expectation at ``frequency = recency = T = 0``, which is how it is computed.

        Examples
        --------
        >>> import pandas as pd
        >>> from vipml.ltv import BetaGeo
        >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
        ...                     "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
        ...                     "T": [30.0, 38.0, 30.0, 39.0, 39.0]})
        >>> bg = BetaGeo(penalizer=0.01).fit(rfm)
        >>> bg.expected_purchases_new_customer([13.0, 26.0, 39.0]).round(2).tolist()
        [1.32, 2.16, 2.8]
        """
        self._check_fitted()
        h = self._horizon(horizon, allow_array=True)
        zeros = np.zeros_like(h)
        values = self._expected_purchases_at(self._params_of(covariates), zeros, zeros, zeros, h)
        return float(values) if np.ndim(values) == 0 else np.asarray(values, dtype=np.float64)

    def probability_of_purchases_new_customer(
        self, n: int, horizon: npt.ArrayLike, *, covariates: Mapping[str, float] | None = None
    ) -> float | FloatArray:
        """Probability that a new customer makes exactly ``n`` repeat purchases in ``(0, horizon]``.

        The unconditional distribution of the number of repeat purchases of a customer just
        acquired (first purchase at time 0), as lifetimes'
        ``probability_of_n_purchases_up_to_time(t, n)``. It equals
        :meth:`probability_of_purchases` at ``frequency = recency = T = 0`` (that history says
        nothing beyond the first purchase), which is how it is computed.

        Parameters
        ----------
        n : int
            Number of repeat purchases, ``>= 0``.
        horizon : float or array_like
            Time(s) since the first purchase, in the model's time unit (whole transaction
            opportunities for BG/BB).
        covariates : dict, optional
            With a covariate model, the new customer's covariates (0 for those not given).

        Returns
        -------
        float or numpy.ndarray
            ``P(X(horizon) = n)``: a float for a scalar horizon, an array otherwise.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ValueError
            If ``n`` is not a non-negative integer or a horizon is invalid.

        References
        ----------
        BG/NBD: Fader, Hardie & Lee (2005), eq. (8). Pareto/NBD: Fader, Hardie & Lee (2005),
        "A note on deriving the Pareto/NBD model and related expressions", eq. (21). MBG/NBD:
        Batislam, Denizel & Filiztekin (2007), appendix A. BG/BB: Fader, Hardie & Shang (2010),
        eq. (7).

        Examples
        --------
        >>> import pandas as pd
        >>> from vipml.ltv import BetaGeo
        >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
        ...                     "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
        ...                     "T": [30.0, 38.0, 30.0, 39.0, 39.0]})
        >>> bg = BetaGeo(penalizer=0.01).fit(rfm)
        >>> [round(bg.probability_of_purchases_new_customer(k, 39.0), 3) for k in range(3)]
        [0.176, 0.292, 0.168]
        """
        if not (isinstance(n, numbers.Integral) and n >= 0):
            raise ValueError(f"n must be an integer >= 0, got {n!r}.")
        self._check_fitted()
        h = self._horizon(horizon, allow_array=True)
        times = np.atleast_1d(np.asarray(h, dtype=np.float64))
        zero = np.zeros(1)
        params = self._params_of(covariates)
        values = np.array(
            [
                self._probability_of_purchases_at(params, zero, zero, zero, int(n), float(t))[0]
                for t in times
            ]
        )
        return float(values[0]) if np.ndim(h) == 0 else values.reshape(np.shape(h))

    def p_alive_path(
        self,
        history: npt.ArrayLike,
        times: npt.ArrayLike,
        *,
        covariates: Mapping[str, float] | None = None,
    ) -> pd.Series:
        """P(alive) of one customer at each of ``times``, given the purchases made up to it.

        At each time ``t`` the customer's summary is rebuilt from the purchases at or before
        ``t`` (frequency = purchase times after the first, recency = last minus first purchase,
        ``T`` = ``t`` minus the first purchase), and :meth:`p_alive` is evaluated on it: the
        curve lifetimes draws with ``plot_history_alive``. Purchase times are counted once
        each, so give one time per purchase period (as :func:`vipml.features.rfm_summary`
        counts them).

        Parameters
        ----------
        history : array_like
            The customer's purchase times in the model's time unit (e.g. weeks since some
            origin; whole opportunities for BG/BB). The earliest is the first purchase.
        times : array_like
            Times at which to evaluate, on the same scale, none before the first purchase.
        covariates : dict, optional
            With a covariate model, the customer's covariates (0 for those not given).

        Returns
        -------
        pandas.Series
            ``p_alive`` indexed by ``times`` (index name ``time``).

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ValueError
            Empty or non-finite ``history`` or ``times``, or a time before the first purchase.

        References
        ----------
        As :meth:`p_alive`; lifetimes' ``calculate_alive_path``.

        Examples
        --------
        >>> import pandas as pd
        >>> from vipml.ltv import BetaGeo
        >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
        ...                     "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
        ...                     "T": [30.0, 38.0, 30.0, 39.0, 39.0]})
        >>> bg = BetaGeo(penalizer=0.01).fit(rfm)
        >>> bg.p_alive_path([0.0, 2.0, 5.0], times=[0.0, 3.0, 10.0, 30.0]).round(2).tolist()
        [1.0, 0.73, 0.6, 0.13]
        """
        self._check_fitted()
        summary = purchase_history(history, times, self._columns)
        columns = {c: summary[c].to_numpy() for c in self._columns}
        self._check_summary(summary.index, columns)
        values = self._p_alive_at(self._params_of(covariates), *columns.values())
        return pd.Series(values, index=summary.index, name="p_alive")

    def median_time_to_next_purchase(self, rfm: Any) -> pd.Series:
        r"""Median time from ``T`` to the next purchase of a customer who is still alive.

        Given the history and that the customer is alive at T, the purchase rate has a gamma
        posterior with shape ``r + x`` and rate ``alpha + T``; the waiting time to the next
        purchase is then Lomax distributed, with survival
        :math:`((\alpha+T)/(\alpha+T+t))^{r+x}` and median
        :math:`(\alpha+T)(2^{1/(r+x)} - 1)`. In BG/NBD and MBG/NBD dropout happens only right
        after a purchase, so it cannot pre-empt the next purchase of an alive customer and this
        is exact; in Pareto/NBD the lifetime may also end before the next purchase, which this
        median ignores (it describes the purchase clock of a customer who stays alive).

        Parameters
        ----------
        rfm : DataFrame
            RFM summary (see :meth:`fit`).

        Returns
        -------
        pandas.Series
            ``median_time_to_next_purchase`` in the time unit of T, indexed like ``rfm``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        DataValidationError
            If ``rfm`` is invalid.

        References
        ----------
        Gamma-Poisson posterior of the purchase rate: Fader, Hardie & Lee (2005), section 3;
        Fader & Hardie (2005) note on the Pareto/NBD, section 5.

        Examples
        --------
        >>> import pandas as pd
        >>> from vipml.ltv import BetaGeo
        >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
        ...                     "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
        ...                     "T": [30.0, 38.0, 30.0, 39.0, 39.0]})
        >>> bg = BetaGeo(penalizer=0.01).fit(rfm)
        >>> bg.median_time_to_next_purchase(rfm).round(1).tolist()
        [43.3, 19.7, 9.9, 5.7, 8.9]
        """
        index, values = self._evaluate(rfm, lambda p, x, _, age: self._median_time_at(p, x, age))
        return pd.Series(values, index=index, name="median_time_to_next_purchase")

    # -- uncertainty -------------------------------------------------------------------------

    def sample_params(
        self, n_draws: int = 500, random_state: int | np.random.Generator | None = 0
    ) -> list[dict[str, float]]:
        """Draw parameters from the asymptotic normal distribution of the estimates.

        The draws are normal on the log scale, ``log(theta) ~ N(log(theta_hat), Sigma_log)``,
        with ``Sigma_log`` the inverse Hessian of the total negative log-likelihood in the
        log-parameters, so every draw is positive. Evaluate predictions at the draws with the
        static ``_expected_purchases_at(params, frequency, recency, T, horizon)``.

        Parameters
        ----------
        n_draws : int, default 500
            Number of draws.
        random_state : int, numpy.random.Generator or None, default 0
            Seed for :func:`numpy.random.default_rng`; the same seed gives the same draws.

        Returns
        -------
        list of dict
            One ``{name: value}`` dict per draw.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ConvergenceError
            If the covariance is undefined (Hessian not positive definite).

        References
        ----------
        Asymptotic normality of maximum-likelihood estimates, with the delta method for the
        log transform (e.g. Casella & Berger, Statistical Inference, 10.1).

        Examples
        --------
        >>> import pandas as pd
        >>> from vipml.ltv import BetaGeo
        >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
        ...                     "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
        ...                     "T": [30.0, 38.0, 30.0, 39.0, 39.0]})
        >>> draws = BetaGeo(penalizer=0.01).fit(rfm).sample_params(3, random_state=1)
        >>> len(draws), sorted(draws[0])
        (3, ['a', 'alpha', 'b', 'r'])
        """
        self._check_fitted()
        links = self._links()
        if links is not None:
            return draw_params(links, self.params_, self.covariance_, n_draws, random_state)
        return sample_param_dicts(self.params_, self.covariance_, n_draws, random_state)

    def expected_purchases_interval(
        self,
        rfm: Any,
        horizon: float,
        *,
        level: float = 0.9,
        n_draws: int = 500,
        random_state: int | np.random.Generator | None = 0,
    ) -> pd.DataFrame:
        """Expected purchases in ``(T, T + horizon]`` with an interval from parameter uncertainty.

        ``estimate`` is the prediction at the maximum-likelihood estimates; ``lower`` and
        ``upper`` are the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the
        prediction over ``n_draws`` draws from :meth:`sample_params`. Because the estimate at
        the MLE need not fall between the quantiles of a skewed distribution, ``lower`` is the
        minimum of the quantile and the estimate and ``upper`` the maximum, so that
        ``lower <= estimate <= upper`` always holds. The cost is ``n_draws`` evaluations per
        distinct customer history.

        Parameters
        ----------
        rfm : DataFrame
            RFM summary (see :meth:`fit`).
        horizon : float
            Length of the period, in the time unit of recency and T.
        level : float, default 0.9
            Coverage of the interval, strictly between 0 and 1.
        n_draws : int, default 500
            Number of parameter draws.
        random_state : int, numpy.random.Generator or None, default 0
            Seed of the draws.

        Returns
        -------
        pandas.DataFrame
            Columns ``estimate``, ``lower``, ``upper``, indexed like ``rfm``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        DataValidationError
            If ``rfm`` is invalid.
        ValueError
            If ``horizon``, ``level`` or ``n_draws`` is invalid.
        ConvergenceError
            If the covariance is undefined.

        References
        ----------
        As :meth:`expected_purchases` and :meth:`sample_params`.

        Examples
        --------
        >>> import pandas as pd
        >>> from vipml.ltv import BetaGeo
        >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
        ...                     "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
        ...                     "T": [30.0, 38.0, 30.0, 39.0, 39.0]})
        >>> bg = BetaGeo(penalizer=0.01).fit(rfm)
        >>> out = bg.expected_purchases_interval(rfm, horizon=39, n_draws=100)
        >>> out.columns.tolist(), bool((out.lower <= out.estimate).all())
        (['estimate', 'lower', 'upper'], True)
        """
        check_interval_arguments(level, n_draws)
        h = self._horizon(horizon)
        index, x, t_x, age, z = self._arrays_with_covariates(rfm)
        closed_form = type(self)._expected_purchases_at
        n_covariates = 0 if z is None else z.shape[1]

        def evaluate(params: Params, *columns: FloatArray) -> FloatArray:
            covariates = np.column_stack(columns[3:]) if n_covariates else None
            return self._apply(
                params, lambda p, *c: closed_form(p, *c, h), covariates, *columns[:3]
            )

        extra = [] if z is None else list(z.T)
        estimate = evaluate(self.params_, x, t_x, age, *extra)
        draws = self.sample_params(n_draws, random_state)
        lower, upper = interval_bounds(evaluate, draws, [x, t_x, age, *extra], estimate, level)
        return pd.DataFrame({"estimate": estimate, "lower": lower, "upper": upper}, index=index)
