r"""Time-invariant covariates: parameters scaled by :math:`\exp(\gamma^\top z)`, as CLVTools does.

A covariate model keeps the base model's parameters :math:`\theta_0` (those of a customer whose
covariates are all 0) and one coefficient vector per process; customer ``i`` with covariates
:math:`z_i` has

- BG/NBD and MBG/NBD: :math:`\alpha_i = \alpha_0 e^{-\gamma_{purchase}^\top z_i}`,
  :math:`a_i = a_0 e^{\gamma_{dropout}^\top z_i}`, :math:`b_i = b_0 e^{\gamma_{dropout}^\top z_i}`;
- Pareto/NBD: :math:`\alpha_i = \alpha_0 e^{-\gamma_{purchase}^\top z_i}`,
  :math:`\beta_i = \beta_0 e^{-\gamma_{dropout}^\top z_i}`;
- Gamma-Gamma: :math:`v_i = v_0 e^{\gamma_{spend}^\top z_i}`,

so a positive purchase coefficient raises the purchase rate (:math:`E[\lambda] = r/\alpha`), a
positive Pareto/NBD dropout coefficient the dropout rate and a positive spend coefficient the
mean spend (:math:`p v / (q - 1)`). The links are those of CLVTools (Bachmann, Meierer &
Näf, ``bgnbd_staticcov_*`` and ``pnbd_staticcov_*``; its Gamma-Gamma has no covariates).

The likelihood is evaluated once per distinct covariate vector (customers sharing one share
their parameters), each with the base model's own fast code, and the gradient follows by the
chain rule; so fitting and scoring cost one base-model evaluation per distinct covariate
vector: cheap with categorical covariates (gender, channel, region, season of acquisition),
expensive with a continuous covariate of many distinct values (bin it).

The optimiser of :mod:`vipml.ltv._mle` works on the logarithms of positive parameters; a
coefficient :math:`\gamma` is handed to it as the positive number :math:`e^\gamma`, so that
the variable it moves is :math:`\gamma` itself (and its log penalty is a ridge penalty on
:math:`\gamma`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from vipml.errors import ConvergenceError, DataValidationError
from vipml.ltv._mle import RowSum, TotalFactory

__all__ = [
    "LINKS",
    "CovariateLinks",
    "CovariateTotal",
    "covariate_matrix",
    "covariate_names",
    "covariate_total_factory",
    "draw_params",
    "make_links",
    "split_result",
]

FloatArray = npt.NDArray[np.float64]

#: Which parameters each process scales, with the sign of the exponent (CLVTools' links).
LINKS: dict[str, dict[str, tuple[str, float]]] = {
    "BG/NBD": {"alpha": ("purchase", -1.0), "a": ("dropout", 1.0), "b": ("dropout", 1.0)},
    "MBG/NBD": {"alpha": ("purchase", -1.0), "a": ("dropout", 1.0), "b": ("dropout", 1.0)},
    "Pareto/NBD": {"alpha": ("purchase", -1.0), "beta": ("dropout", -1.0)},
    "Gamma-Gamma": {"v": ("spend", 1.0)},
}


def covariate_names(groups: Mapping[str, Sequence[str]]) -> list[str]:
    """Coefficient names ``"<process>.<column>"``, processes in the order given."""
    return [f"{process}.{column}" for process, columns in groups.items() for column in columns]


@dataclass(frozen=True)
class CovariateLinks:
    """How a model's parameters depend on covariates, for one choice of covariate columns.

    Parameters
    ----------
    param_names : tuple of str
        The base model's parameters.
    links : dict
        ``{parameter: (process, sign)}`` (see :data:`LINKS`).
    groups : dict
        ``{process: covariate columns}``; the processes a model has but no column is given
        for are left out.
    """

    param_names: tuple[str, ...]
    links: dict[str, tuple[str, float]]
    groups: dict[str, tuple[str, ...]]

    @property
    def columns(self) -> tuple[str, ...]:
        """Every covariate column once, in a fixed order."""
        return tuple(dict.fromkeys(c for cols in self.groups.values() for c in cols))

    @property
    def coefficient_names(self) -> list[str]:
        return covariate_names(self.groups)

    @property
    def names(self) -> list[str]:
        return [*self.param_names, *self.coefficient_names]

    def exponents(self, coefficients: FloatArray, z: FloatArray) -> FloatArray:
        """``(rows, base params)``: the log-multiplier of each parameter for rows ``z``."""
        z = np.atleast_2d(z)
        out = np.zeros((z.shape[0], len(self.param_names)))
        position = {c: j for j, c in enumerate(self.columns)}
        start = 0
        for process, columns in self.groups.items():
            gamma = coefficients[start : start + len(columns)]
            start += len(columns)
            eta = z[:, [position[c] for c in columns]] @ gamma
            for k, name in enumerate(self.param_names):
                linked = self.links.get(name)
                if linked is not None and linked[0] == process:
                    out[:, k] += linked[1] * eta
        return out

    def jacobian(self, z: FloatArray) -> FloatArray:
        """``(base params, coefficients)``: d exponent_k / d gamma_c for one covariate row."""
        position = {c: j for j, c in enumerate(self.columns)}
        jac = np.zeros((len(self.param_names), len(self.coefficient_names)))
        start = 0
        for process, columns in self.groups.items():
            for j, column in enumerate(columns):
                for k, name in enumerate(self.param_names):
                    linked = self.links.get(name)
                    if linked is not None and linked[0] == process:
                        jac[k, start + j] = linked[1] * z[position[column]]
            start += len(columns)
        return jac

    def split(self, values: Mapping[str, float]) -> tuple[FloatArray, FloatArray]:
        """``(base parameters, coefficients)`` from a ``params_``-like dict."""
        base = np.array([values[k] for k in self.param_names], dtype=np.float64)
        coefficients = np.array([values[k] for k in self.coefficient_names], dtype=np.float64)
        return base, coefficients

    def params_for(self, values: Mapping[str, float], z: FloatArray) -> list[dict[str, float]]:
        """Per covariate row, the base model's parameters as a dict."""
        base, coefficients = self.split(values)
        scaled = base[None, :] * np.exp(self.exponents(coefficients, z))
        return [dict(zip(self.param_names, map(float, row), strict=True)) for row in scaled]


def make_links(
    model_name: str, param_names: Sequence[str], groups: Mapping[str, Sequence[str]]
) -> CovariateLinks | None:
    """The links of a model for the covariate columns given per process (None without any)."""
    given = {process: tuple(columns) for process, columns in groups.items() if columns}
    if not given:
        return None
    links = LINKS.get(model_name)
    if links is None:
        raise ValueError(
            f"{model_name} does not take covariates; covariates are available for BG/NBD, "
            "MBG/NBD, Pareto/NBD (purchase_covariates, dropout_covariates) and Gamma-Gamma "
            "(spend_covariates)."
        )
    processes = {process for process, _ in links.values()}
    for process, columns in given.items():
        if process not in processes:
            raise ValueError(f"{model_name} has no {process} process to attach covariates to.")
        if len(set(columns)) != len(columns) or not all(isinstance(c, str) for c in columns):
            raise ValueError(
                f"{process}_covariates must be distinct column names, got {list(columns)!r}."
            )
    return CovariateLinks(tuple(param_names), dict(links), given)


def covariate_matrix(frame: pd.DataFrame, columns: Sequence[str]) -> FloatArray:
    """The covariate columns of a summary as a float matrix, with clear errors."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"The summary lacks the covariate column(s) {missing} (columns found: "
            f"{list(frame.columns)}). Add one numeric column per covariate (e.g. 0/1 for a "
            "category), the same columns for fitting and scoring."
        )
    out = np.empty((len(frame), len(columns)))
    for j, column in enumerate(columns):
        try:
            values = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise DataValidationError(
                f"Covariate column '{column}' must be numeric, got dtype {frame[column].dtype}: "
                "encode categories as 0/1 columns (e.g. pandas.get_dummies, drop_first=True)."
            ) from exc
        bad = ~np.isfinite(values)
        if bad.any():
            shown = [str(v) for v in frame.index[bad][:5]]
            raise DataValidationError(
                f"Covariate column '{column}': {int(bad.sum())} rows are NaN or infinite "
                f"(customer ids {shown}). Fill or drop them before fitting or scoring."
            )
        out[:, j] = values
    return out


class CovariateTotal:
    """Weighted total log-likelihood of a covariate model, one base evaluation per covariate row.

    ``columns`` are the base model's data columns followed by the covariate columns (the rows
    fit_mle collapsed); ``params`` handed to :meth:`value` are the base parameters followed by
    ``exp(coefficient)`` (see the module docstring).
    """

    def __init__(
        self,
        columns: Sequence[FloatArray],
        weights: FloatArray,
        *,
        links: CovariateLinks,
        n_data: int,
        base_total: Callable[[Sequence[FloatArray], FloatArray], Any],
        has_gradient: bool,
    ) -> None:
        data, covariates = columns[:n_data], np.column_stack(columns[n_data:])
        self.links = links
        self.k = len(links.param_names)
        patterns, codes = np.unique(covariates, axis=0, return_inverse=True)
        codes = np.asarray(codes).ravel()
        self.patterns = patterns
        self.parts = []
        for g in range(patterns.shape[0]):
            rows = codes == g
            self.parts.append(base_total([c[rows] for c in data], weights[rows]))
        self.jacobians = [links.jacobian(z) for z in patterns]
        self.has_gradient = has_gradient

    def _scaled(self, params: FloatArray) -> FloatArray:
        base = np.asarray(params[: self.k], dtype=np.float64)
        coefficients = np.log(np.asarray(params[self.k :], dtype=np.float64))
        return base[None, :] * np.exp(self.links.exponents(coefficients, self.patterns))

    def value(self, params: FloatArray) -> float:
        scaled = self._scaled(params)
        return float(sum(part.value(theta) for part, theta in zip(self.parts, scaled, strict=True)))

    def value_and_grad(self, params: FloatArray) -> tuple[float, FloatArray]:
        scaled = self._scaled(params)
        total = 0.0
        d_log_base = np.zeros(self.k)
        d_coefficients = np.zeros(len(params) - self.k)
        for part, theta, jac in zip(self.parts, scaled, self.jacobians, strict=True):
            value, grad = part.value_and_grad(theta)
            total += value
            d_log = theta * np.asarray(grad)  # d total / d log(theta_k)
            d_log_base += d_log
            d_coefficients += jac.T @ d_log
        # back to the "natural" scale fit_mle differentiates in: theta_0 and exp(gamma)
        natural = np.asarray(params, dtype=np.float64)
        return total, np.concatenate([d_log_base, d_coefficients]) / natural


def covariate_total_factory(
    links: CovariateLinks,
    n_data: int,
    loglik: Callable[..., FloatArray],
    loglik_grad: Callable[..., tuple[FloatArray, FloatArray]] | None,
    total: TotalFactory | None,
) -> TotalFactory:
    """A ``total=`` factory for :func:`vipml.ltv._mle.fit_mle` with covariates."""
    has_gradient = total is not None or loglik_grad is not None
    if total is not None:
        gradient_total = total
    else:

        def gradient_total(rows: Sequence[FloatArray], weights: FloatArray) -> RowSum:
            return RowSum(loglik, loglik_grad, rows, weights)

    def factory(columns: Sequence[FloatArray], weights: FloatArray) -> CovariateTotal:
        return CovariateTotal(
            columns,
            weights,
            links=links,
            n_data=n_data,
            base_total=gradient_total,
            has_gradient=has_gradient,
        )

    return factory


def split_result(
    links: CovariateLinks, params: FloatArray, log_covariance: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Estimates and covariance with coefficients on their own scale (not exp(gamma))."""
    k = len(links.param_names)
    values = np.asarray(params, dtype=np.float64).copy()
    values[k:] = np.log(values[k:])
    jac = np.where(np.arange(values.size) < k, values, 1.0)  # d value / d log-variable
    return values, jac[:, None] * log_covariance * jac[None, :]


def draw_params(
    links: CovariateLinks,
    values: Mapping[str, float],
    covariance: pd.DataFrame,
    n_draws: int,
    random_state: int | np.random.Generator | None,
) -> list[dict[str, float]]:
    """Draws from the asymptotic normal: log-normal base parameters, normal coefficients."""
    names = links.names
    estimate = np.array([values[k] for k in names], dtype=np.float64)
    k = len(links.param_names)
    is_base = np.arange(estimate.size) < k
    jac = np.where(is_base, estimate, 1.0)
    cov = covariance.loc[names, names].to_numpy() / np.outer(jac, jac)
    center = np.where(is_base, np.log(np.where(is_base, estimate, 1.0)), estimate)
    try:
        chol = np.linalg.cholesky(cov) if np.all(np.isfinite(cov)) else None
    except np.linalg.LinAlgError:
        chol = None
    if chol is None:
        raise ConvergenceError(
            "The covariance of the estimates is undefined (the Hessian at the optimum is not "
            "positive definite), so parameters cannot be drawn. Refit with a small penalizer."
        )
    rng = np.random.default_rng(random_state)
    draws = center + rng.standard_normal((int(n_draws), estimate.size)) @ chol.T
    draws[:, is_base] = np.exp(draws[:, is_base])
    return [dict(zip(names, map(float, row), strict=True)) for row in draws]
