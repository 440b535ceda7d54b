"""Gamma-Gamma model of spend per transaction (Fader & Hardie 2013): :class:`GammaGamma`."""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from vipml.base import VipmlEstimator
from vipml.errors import DataValidationError, ModelAssumptionWarning
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
from vipml.ltv._covariates import (
    CovariateLinks,
    covariate_total_factory,
    draw_params,
    make_links,
    split_result,
)
from vipml.ltv._input import fit_columns, rfm_columns
from vipml.ltv._likelihoods import (
    gamma_gamma_loglik,
    gamma_gamma_loglik_grad,
    gamma_gamma_total,
)
from vipml.ltv._mle import fit_mle

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["GammaGamma"]

logger = logging.getLogger(__name__)

_COLUMNS = ("frequency", "monetary_value")
_CORRELATION_LIMIT = 0.3
_N_SHOWN = 5


def _weighted_correlation(x: FloatArray, y: FloatArray, w: FloatArray | None) -> float:
    weights = np.ones_like(x) if w is None else w
    mx = np.average(x, weights=weights)
    my = np.average(y, weights=weights)
    cov = np.average((x - mx) * (y - my), weights=weights)
    var = np.average((x - mx) ** 2, weights=weights) * np.average((y - my) ** 2, weights=weights)
    return float(cov / np.sqrt(var)) if var > 0 else 0.0


def _initial_params(columns: Sequence[FloatArray], weights: FloatArray) -> tuple[float, ...]:
    """Start at p = 1, q = 2 and v = the mean spend, so the implied mean p v / (q - 1) fits."""
    return (1.0, 2.0, float(np.average(columns[1], weights=weights)))


def _refuse_non_positive_spend(
    index: pd.Index, x: FloatArray, m: FloatArray, *, allow_zero: bool = False
) -> None:
    """Fitting needs positive spend (log z); predicting only non-negative spend."""
    bad = (x > 0) & ((m < 0) if allow_zero else (m <= 0))
    if bad.any():
        shown = ", ".join(str(v) for v in index[bad][:_N_SHOWN])
        bound = "< 0" if allow_zero else "<= 0"
        raise DataValidationError(
            f"Column 'monetary_value': {int(bad.sum())} customers with repeat purchases have "
            f"monetary_value {bound} (customer ids [{shown}"
            f"{', ...' if bad.sum() > _N_SHOWN else ''}]). The Gamma-Gamma model needs a "
            "positive average spend to fit: leave those customers out of `fit` (they can still "
            "be scored when their spend is 0), or build the summary with returns='net'."
        )


class GammaGamma(VipmlEstimator):
    r"""Gamma-Gamma model of the average spend per transaction.

    A customer's transactions are gamma distributed with shape ``p`` and rate :math:`\nu`, and
    :math:`\nu \sim \mathrm{Gamma}(q, \gamma)` across customers; the parameter called ``v``
    here (as in lifetimes) is the paper's :math:`\gamma`. The model assumes spend per
    transaction is independent of the number of transactions; ``fit`` warns when the data
    contradict that. Only customers with repeat purchases (``frequency > 0``) are fitted, with
    ``monetary_value`` the mean value of their repeat transactions.

    Parameters
    ----------
    penalizer : float, default 0.0
        L2 penalty on the log-parameters added to the mean negative log-likelihood.
    penalizer_kind : {"log", "lifetimes"}, default "log"
        ``"lifetimes"`` penalises ``penalizer * (p**2 + q**2 + v**2)`` instead, as lifetimes'
        ``GammaGammaFitter(penalizer_coef=...)`` does (see docs/migrating.md).
    spend_covariates : sequence of str, default ()
        Numeric columns of the summary that scale the mean spend: customer ``i`` has
        ``v_i = v * exp(gamma' z_i)``; the coefficients appear in ``params_`` as
        ``"spend.<column>"`` (see :mod:`vipml.ltv._covariates`).
    tol : float, default 1e-8
        BFGS tolerance on the gradient of the mean negative log-likelihood.
    max_iter : int, default 500
        Maximum BFGS iterations.

    Attributes
    ----------
    params_ : dict
        ``{"p", "q", "v"}`` (``v`` is the paper's :math:`\gamma`).
    loglik_ : float
        Total log-likelihood of the repeat buyers' average spends.
    converged_ : bool
        True (a failed fit raises).
    n_customers_ : int or float
        Repeat buyers fitted (sum of their weights when weights were given).
    covariance_ : pandas.DataFrame
        Covariance of the estimates.
    standard_errors_ : pandas.Series
        Standard errors.
    vipml_version_ : str
        vipml version that fitted the model.

    References
    ----------
    Fader, P. S. & Hardie, B. G. S. (2013). "The Gamma-Gamma Model of Monetary Value":
    likelihood (eq. 3), conditional expectation of the mean spend (eq. 5).
    Fader, Hardie & Lee (2005). "RFM and CLV: Using Iso-Value Curves for Customer Base
    Analysis". Journal of Marketing Research 42(4), 415-430.

    Examples
    --------
    >>> import pandas as pd
    >>> from vipml.ltv import GammaGamma
    >>> rfm = pd.DataFrame(
    ...     {"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
    ...      "monetary_value": [0.0, 20.0, 35.5, 18.0, 60.0]},
    ...     index=pd.Index(["a", "b", "c", "d", "e"], name="customer_id"))
    >>> gg = GammaGamma(penalizer=0.01).fit(rfm)
    >>> gg.expected_spend(rfm).round(1).tolist()
    [34.9, 22.2, 35.5, 18.6, 58.6]
    """

    _param_names = ("p", "q", "v")
    _model_name = "Gamma-Gamma"
    _fitted_attributes = ("params_", "loglik_", "covariance_")

    def __init__(
        self,
        *,
        penalizer: float = 0.0,
        penalizer_kind: Literal["log", "lifetimes"] = "log",
        spend_covariates: Sequence[str] = (),
        tol: float = 1e-8,
        max_iter: int = 500,
    ) -> None:
        self.penalizer = penalizer
        self.penalizer_kind = penalizer_kind
        self.spend_covariates = spend_covariates
        self.tol = tol
        self.max_iter = max_iter

    def _links(self) -> CovariateLinks | None:
        """How covariates scale ``v`` (None without covariates); see :mod:`vipml.ltv._covariates`."""
        spend = tuple(getattr(self, "spend_covariates", ()) or ())
        return make_links(self._model_name, self._param_names, {"spend": spend})

    def _row_params(self, params: Params, z: FloatArray | None) -> Params:
        """The parameters of each row: ``v`` scaled by its covariates (a model without: as is)."""
        links = self._links()
        if links is None or z is None:
            return params
        _, coefficients = links.split(params)
        shift = links.exponents(coefficients, z)[:, self._param_names.index("v")]
        return {"p": params["p"], "q": params["q"], "v": params["v"] * np.exp(shift)}

    def fit(self, rfm: Any, weights: npt.ArrayLike | None = None) -> Self:
        """Fit the Gamma-Gamma model by maximum likelihood on the repeat buyers.

        Parameters
        ----------
        rfm : DataFrame
            RFM summary indexed by customer id with ``frequency`` and ``monetary_value``
            (mean spend of the repeat purchases, lifetimes definition), or a narwhals-supported
            frame with a ``customer_id`` column. Rows with ``frequency == 0`` are ignored.
        weights : array_like, optional
            Non-negative weight per row of ``rfm``.

        Returns
        -------
        GammaGamma
            The fitted estimator.

        Raises
        ------
        DataValidationError
            Invalid columns; no repeat buyers; repeat buyers with ``monetary_value <= 0``; or
            an estimate ``q <= 1``, for which the mean spend does not exist.
        ConvergenceError
            If the optimiser fails.

        Warns
        -----
        ModelAssumptionWarning
            If the correlation between frequency and monetary value among repeat buyers
            exceeds 0.3 in absolute value (the model assumes they are independent).

        References
        ----------
        Fader & Hardie (2013), equation (3).

        Examples
        --------
        >>> import pandas as pd
        >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
        ...                     "monetary_value": [0.0, 20.0, 35.5, 18.0, 60.0]})
        >>> GammaGamma(penalizer=0.01).fit(rfm).n_customers_
        4
        """
        check_hyperparameters(self.penalizer, self.tol, self.max_iter)
        check_penalizer_kind(self.penalizer_kind)
        links = self._links()
        extra = () if links is None else links.columns
        index, columns, w_all = fit_columns(rfm, (*_COLUMNS, *extra), weights)
        x_all, m_all = columns["frequency"], columns["monetary_value"]
        _refuse_non_positive_spend(index, x_all, m_all)
        repeat = x_all > 0
        if w_all is not None:
            repeat &= w_all > 0
        if not repeat.any():
            raise DataValidationError(
                "Column 'frequency': no customer has a repeat purchase (frequency > 0), so the "
                "Gamma-Gamma model has no spend to learn from. Use a longer calibration period."
            )
        x, m = x_all[repeat], m_all[repeat]
        covariates = [columns[c][repeat] for c in extra]
        w = None if w_all is None else w_all[repeat]
        correlation = _weighted_correlation(x, m, w)
        if abs(correlation) > _CORRELATION_LIMIT:
            warnings.warn(
                f"Gamma-Gamma assumes spend per transaction is independent of the number of "
                f"transactions, but among repeat buyers the Pearson correlation between "
                f"frequency and monetary_value is {correlation:.2f} (|r| > "
                f"{_CORRELATION_LIMIT}). Expected spend may be biased; consider segmenting "
                "customers or a model of spend that depends on frequency.",
                ModelAssumptionWarning,
                stacklevel=2,
            )
        if links is not None and self.penalizer_kind != "log":
            raise ValueError(
                "penalizer_kind='lifetimes' has no meaning for covariate coefficients: use "
                "penalizer_kind='log', a ridge penalty on them."
            )
        result = fit_mle(
            loglik=gamma_gamma_loglik,
            loglik_grad=gamma_gamma_loglik_grad,
            data=(x, m, *covariates),
            weights=w,
            initial_params=_initial_params
            if links is None
            else (lambda rows, ww: (*_initial_params(rows, ww), *([1.0] * len(covariates)))),
            param_names=self._param_names if links is None else links.names,
            penalizer=float(self.penalizer),
            tol=float(self.tol),
            max_iter=int(self.max_iter),
            model_name=self._model_name,
            total=gamma_gamma_total
            if links is None
            else covariate_total_factory(
                links, 2, gamma_gamma_loglik, gamma_gamma_loglik_grad, gamma_gamma_total
            ),
            penalty=(
                lifetimes_penalty(self.penalizer, self._param_names)
                if self.penalizer_kind == "lifetimes"
                else None
            ),
        )
        p, q, v = result.params[:3]
        if q <= 1.0:
            raise DataValidationError(
                f"The Gamma-Gamma estimate q = {q:.4g} is <= 1 (p = {p:.4g}, v = {v:.4g}): the "
                "spend distribution is so heavy-tailed that the population mean spend "
                "p * v / (q - 1) does not exist. Cap extreme monetary values (e.g. at a high "
                "percentile), remove outliers such as business accounts, or add a penalizer."
            )
        n_customers = int(repeat.sum()) if w is None else float(w.sum())
        names = self._param_names
        if links is not None:
            values, covariance = split_result(links, result.params, result.log_covariance)
            result = dataclasses.replace(result, params=values, covariance=covariance)
            names = tuple(links.names)
        set_fit_result(self, result, names, n_customers)
        logger.debug("Gamma-Gamma fitted: %s, loglik %.6f", self.params_, self.loglik_)
        return self

    @staticmethod
    def _expected_spend_at(params: Params, frequency: Any, monetary_value: Any) -> FloatArray:
        """``p (v + x m) / (p x + q - 1)``; the population mean ``p v / (q - 1)`` at ``x = 0``.

        Infinite where ``p x + q <= 1`` (the posterior mean does not exist).
        """
        p, q, v = params["p"], params["q"], params["v"]
        x = np.asarray(frequency, dtype=np.float64)
        m = np.asarray(monetary_value, dtype=np.float64)
        denominator = p * x + q - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            value = p * (v + x * m) / denominator
        return np.where(denominator > 0, value, np.inf)

    def _arrays(self, rfm: Any) -> tuple[pd.Index, FloatArray, FloatArray]:
        index, x, m, _ = self._arrays_with_covariates(rfm)
        return index, x, m

    def _arrays_with_covariates(
        self, rfm: Any
    ) -> tuple[pd.Index, FloatArray, FloatArray, FloatArray | None]:
        self._check_fitted()
        links = self._links()
        extra = () if links is None else links.columns
        index, columns = rfm_columns(rfm, (*_COLUMNS, *extra))
        x, m = columns["frequency"], columns["monetary_value"]
        _refuse_non_positive_spend(index, x, m, allow_zero=True)
        z = np.column_stack([columns[c] for c in extra]) if extra else None
        return index, x, m, z

    def expected_spend(self, rfm: Any) -> pd.Series:
        r"""Conditional expected average spend per transaction of each customer.

        .. math::  E[Z \mid p, q, \gamma, \bar z, x] = \frac{p(\gamma + x \bar z)}{px + q - 1}
                   = \omega \bar z + (1 - \omega) \frac{p\gamma}{q - 1},\quad
                   \omega = \frac{px}{px + q - 1}

        For customers without repeat purchases (``frequency == 0``) this is the population
        mean :math:`p\gamma/(q-1)`.

        Parameters
        ----------
        rfm : DataFrame
            Summary with ``frequency`` and ``monetary_value``.

        Returns
        -------
        pandas.Series
            ``expected_spend``, indexed like ``rfm``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        DataValidationError
            Invalid columns, or repeat buyers with ``monetary_value <= 0``.

        References
        ----------
        Fader & Hardie (2013), equation (5).

        Examples
        --------
        >>> import pandas as pd
        >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
        ...                     "monetary_value": [0.0, 20.0, 35.5, 18.0, 60.0]})
        >>> gg = GammaGamma(penalizer=0.01).fit(rfm)
        >>> bool(gg.expected_spend(rfm).iloc[0] == gg.expected_spend(rfm.iloc[[0]]).iloc[0])
        True
        """
        index, x, m, z = self._arrays_with_covariates(rfm)
        values = self._expected_spend_at(self._row_params(self.params_, z), x, m)
        return pd.Series(values, index=index, name="expected_spend")

    def sample_params(
        self, n_draws: int = 500, random_state: int | np.random.Generator | None = 0
    ) -> list[dict[str, float]]:
        """Draw ``(p, q, v)`` from the asymptotic normal of the estimates (log scale).

        Parameters
        ----------
        n_draws : int, default 500
            Number of draws.
        random_state : int, numpy.random.Generator or None, default 0
            Seed for :func:`numpy.random.default_rng`.

        Returns
        -------
        list of dict
            One ``{"p", "q", "v"}`` dict per draw.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ConvergenceError
            If the covariance is undefined.

        Examples
        --------
        >>> import pandas as pd
        >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
        ...                     "monetary_value": [0.0, 20.0, 35.5, 18.0, 60.0]})
        >>> draws = GammaGamma(penalizer=0.01).fit(rfm).sample_params(3, random_state=1)
        >>> len(draws), sorted(draws[0])
        (3, ['p', 'q', 'v'])
        """
        self._check_fitted()
        links = self._links()
        if links is not None:
            return draw_params(links, self.params_, self.covariance_, n_draws, random_state)
        return sample_param_dicts(self.params_, self.covariance_, n_draws, random_state)

    def expected_spend_interval(
        self,
        rfm: Any,
        *,
        level: float = 0.9,
        n_draws: int = 500,
        random_state: int | np.random.Generator | None = 0,
    ) -> pd.DataFrame:
        """Expected average spend with an interval from parameter uncertainty.

        ``estimate`` is :meth:`expected_spend` at the estimates; ``lower`` and ``upper`` are
        quantiles of it over parameter draws, then widened to contain the estimate
        (``lower = min(quantile, estimate)``, ``upper = max(quantile, estimate)``), so
        ``lower <= estimate <= upper`` always. A draw with ``q <= 1`` has no finite population
        mean and counts as infinite spend for customers without repeat purchases.

        Parameters
        ----------
        rfm : DataFrame
            Summary with ``frequency`` and ``monetary_value``.
        level : float, default 0.9
            Coverage, strictly between 0 and 1.
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
            Invalid input.

        Examples
        --------
        >>> import pandas as pd
        >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
        ...                     "monetary_value": [0.0, 20.0, 35.5, 18.0, 60.0]})
        >>> out = GammaGamma(penalizer=0.01).fit(rfm).expected_spend_interval(rfm, n_draws=50)
        >>> bool(((out.lower <= out.estimate) & (out.estimate <= out.upper)).all())
        True
        """
        check_interval_arguments(level, n_draws)
        index, x, m, z = self._arrays_with_covariates(rfm)
        extra = [] if z is None else list(z.T)

        def evaluate(params: Params, x_: FloatArray, m_: FloatArray, *z_: FloatArray) -> FloatArray:
            rows = np.column_stack(z_) if z_ else None
            return self._expected_spend_at(self._row_params(params, rows), x_, m_)

        estimate = evaluate(self.params_, x, m, *extra)
        draws = self.sample_params(n_draws, random_state)
        lower, upper = interval_bounds(evaluate, draws, [x, m, *extra], estimate, level)
        return pd.DataFrame({"estimate": estimate, "lower": lower, "upper": upper}, index=index)
