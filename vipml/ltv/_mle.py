"""Maximum-likelihood machinery shared by the models of :mod:`vipml.ltv`.

A model supplies a per-customer log-likelihood (and, where one exists, its gradient in the
natural parameters); this module

- collapses identical customers into weighted rows (:func:`collapse_rows`), which gives the same
  optimum with far fewer likelihood evaluations;
- maximises the weighted log-likelihood over the logarithms of the (positive) parameters with
  BFGS (:func:`fit_mle`), using the analytic gradient or central differences;
- computes the Hessian by central differences of the gradient, the covariance of the estimates
  (inverse Hessian, mapped to the natural scale by the delta method) and standard errors;
- draws parameters from their asymptotic normal distribution on the log scale
  (:func:`draw_log_normal`) for prediction intervals.

Penalizer
---------
With ``penalizer = c > 0`` the optimiser minimises

.. math::  -\\frac{1}{W} \\sum_i w_i \\log L_i(\\theta) + c \\sum_k (\\log \\theta_k)^2,

the mean negative log-likelihood per (weighted) customer plus an L2 penalty on the logarithms
of the parameters. It shrinks every parameter towards 1 on a multiplicative scale, never to 0
(where the models degenerate), and, being on the per-customer scale, means the same for 1e3 and
1e6 customers. It differs from lifetimes' ``penalizer_coef`` (an L2 penalty on the parameters
themselves, with time rescaled so the oldest customer has age 1), which
:class:`ParameterPenalty` reproduces (the models' ``penalizer_kind="lifetimes"``).
``loglik_`` is always the unpenalised log-likelihood; the covariance is the inverse Hessian of
the penalised objective ``W * (mean NLL + penalty)``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import minimize

from vipml.errors import ConvergenceError, ModelAssumptionWarning

__all__ = [
    "LogPenalty",
    "MLEResult",
    "ParameterPenalty",
    "Penalty",
    "collapse_rows",
    "draw_log_normal",
    "fit_mle",
    "weighted_rows",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
LogLik = Callable[..., FloatArray]
LogLikGrad = Callable[..., tuple[FloatArray, FloatArray]]
InitialParams = Callable[[Sequence[FloatArray], FloatArray], Sequence[float]]


class Total(Protocol):
    """Weighted total log-likelihood of a data set, as a function of the natural parameters."""

    def value(self, params: FloatArray) -> float: ...

    def value_and_grad(self, params: FloatArray) -> tuple[float, FloatArray]: ...


TotalFactory = Callable[[Sequence[FloatArray], FloatArray], Total]


class Penalty(Protocol):
    """A penalty added to the mean negative log-likelihood, as a function of the log-parameters."""

    def value(self, log_params: FloatArray) -> float: ...

    def gradient(self, log_params: FloatArray) -> FloatArray: ...


@dataclass(frozen=True)
class LogPenalty:
    """``coef * sum(log(theta) ** 2)``: shrinks every parameter towards 1 (vipml's default)."""

    coef: float

    def value(self, log_params: FloatArray) -> float:
        return self.coef * float(log_params @ log_params)

    def gradient(self, log_params: FloatArray) -> FloatArray:
        return 2.0 * self.coef * log_params


@dataclass(frozen=True)
class ParameterPenalty:
    """``coef * sum((scale * theta) ** 2)``: lifetimes' ``penalizer_coef``, towards 0.

    lifetimes fits its purchase models with time rescaled so that the oldest customer has age
    1, so its penalty sees each rate parameter (BG/NBD's ``alpha``, Pareto/NBD's ``alpha`` and
    ``beta``) multiplied by ``1 / max(T)``: ``scales`` holds that factor for those parameters
    and 1 for the others.
    """

    coef: float
    scales: tuple[float, ...]

    def value(self, log_params: FloatArray) -> float:
        scaled = np.exp(log_params) * np.asarray(self.scales)
        return self.coef * float(scaled @ scaled)

    def gradient(self, log_params: FloatArray) -> FloatArray:
        scaled = np.exp(log_params) * np.asarray(self.scales)
        return 2.0 * self.coef * scaled * scaled


_GRAD_STEP = 6e-6  # ~ eps ** (1/3): central differences of the function
_HESS_STEP_FROM_GRAD = 1e-5  # central differences of an analytic gradient
_HESS_STEP_FROM_VALUE = 1e-4  # ~ eps ** (1/4): second differences of the function
_ACCEPT_GRADIENT = 1e-5  # a stalled optimiser is accepted below this mean-scale gradient
_MAX_KEY = 2.0**62  # collapse_rows combines the columns' codes into one int64 below this


@dataclass(frozen=True)
class MLEResult:
    """Outcome of :func:`fit_mle`.

    Attributes
    ----------
    params : numpy.ndarray
        Estimates in the natural scale.
    loglik : float
        Total weighted (unpenalised) log-likelihood at the estimates.
    converged : bool
        Whether the optimiser met its tolerance (or stalled where the gradient is negligible).
    n_iter : int
        Optimiser iterations.
    covariance : numpy.ndarray
        Covariance of the estimates in the natural scale; NaN where the Hessian is singular.
    log_covariance : numpy.ndarray
        Covariance of the log-parameters (inverse Hessian of the total objective).
    message : str
        The optimiser's message.
    """

    params: FloatArray
    loglik: float
    converged: bool
    n_iter: int
    covariance: FloatArray
    log_covariance: FloatArray
    message: str


def collapse_rows(
    columns: Sequence[npt.ArrayLike], weights: npt.ArrayLike | None = None
) -> tuple[list[FloatArray], FloatArray, npt.NDArray[np.intp]]:
    """Collapse identical rows of several columns into unique rows with summed weights.

    Like ``np.unique(..., axis=0, return_inverse=True)`` with weights, but several times faster:
    each column is factorised by hashing (pandas) and the codes are combined into one integer
    key whose order is the rows' lexicographic order (the rows are sorted only when that key
    would overflow). The result does not depend on the order of the input rows.

    Parameters
    ----------
    columns : sequence of array_like
        Columns of equal length (e.g. frequency, recency, T).
    weights : array_like, optional
        Row weights; ones when omitted.

    Returns
    -------
    unique : list of numpy.ndarray
        The columns of the unique rows, in lexicographic order (deterministic).
    summed : numpy.ndarray
        The total weight of each unique row (the count when ``weights`` is omitted).
    inverse : numpy.ndarray
        For each input row, the index of its unique row: ``unique[k][inverse]`` rebuilds
        column ``k``.

    Examples
    --------
    >>> (freq, rec), w, inv = collapse_rows([[1, 0, 1], [2.0, 0.0, 2.0]])
    >>> freq.tolist(), rec.tolist(), w.tolist(), inv.tolist()
    ([0.0, 1.0], [0.0, 2.0], [1.0, 2.0], [1, 0, 1])
    """
    cols = [np.asarray(c, dtype=np.float64) for c in columns]
    n = cols[0].size
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if n <= 1:  # one customer (real-time scoring): nothing to collapse, skip the hashing
        return [c.copy() for c in cols], w.copy(), np.zeros(n, dtype=np.intp)
    # each column's values -> sorted codes (hash-based, much faster than sorting the rows), then
    # one mixed-radix key whose order is the rows' lexicographic order
    codes, uniques = zip(*(pd.factorize(c, sort=True) for c in cols), strict=True)
    sizes = [max(len(u), 1) for u in uniques]
    if float(np.prod(sizes, dtype=np.float64)) < _MAX_KEY:
        key = np.zeros(n, dtype=np.int64)
        for code, size in zip(codes, sizes, strict=True):
            key = key * size + code
        inverse, unique_keys = pd.factorize(key, sort=True)
        unique = []
        for values, size in zip(reversed(uniques), reversed(sizes), strict=True):
            unique.append(np.asarray(values, dtype=np.float64)[unique_keys % size])
            unique_keys = unique_keys // size
        unique.reverse()
    else:  # too many distinct values for one int64 key: sort the rows by their codes
        order = np.lexsort(tuple(reversed(codes)))
        starts = np.zeros(n, dtype=bool)
        starts[:1] = True
        for code in codes:
            ordered = code[order]
            starts[1:] |= ordered[1:] != ordered[:-1]
        inverse = np.empty(n, dtype=np.intp)
        inverse[order] = np.cumsum(starts) - 1
        unique = [c[order][starts] for c in cols]
    inverse = np.asarray(inverse, dtype=np.intp)
    summed = np.bincount(inverse, weights=w, minlength=unique[0].size)
    return unique, summed, inverse


def weighted_rows(
    columns: Sequence[FloatArray], weights: FloatArray | None, *, collapse: bool
) -> tuple[list[FloatArray], FloatArray]:
    """Rows and weights the likelihood is evaluated on: collapsed, or as given.

    Parameters
    ----------
    columns : sequence of numpy.ndarray
        Data columns.
    weights : numpy.ndarray or None
        Row weights (ones when None).
    collapse : bool
        Collapse identical rows (zero-weight rows are dropped either way).

    Returns
    -------
    tuple
        ``(columns, weights)``.

    Examples
    --------
    >>> cols, w = weighted_rows([np.array([1.0, 1.0, 2.0])], None, collapse=True)
    >>> cols[0].tolist(), w.tolist()
    ([1.0, 2.0], [2.0, 1.0])
    """
    n = columns[0].size
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if collapse:
        unique, summed, _ = collapse_rows(columns, w)
        keep = summed > 0
        return [c[keep] for c in unique], summed[keep]
    keep = w > 0
    return [np.asarray(c, dtype=np.float64)[keep] for c in columns], w[keep]


class RowSum:
    """Weighted sum of a per-row log-likelihood (and of its gradient, when one is given)."""

    def __init__(
        self,
        loglik: LogLik,
        loglik_grad: LogLikGrad | None,
        rows: Sequence[FloatArray],
        weights: FloatArray,
    ) -> None:
        self.loglik = loglik
        self.loglik_grad = loglik_grad
        self.rows = rows
        self.weights = weights
        self.has_gradient = loglik_grad is not None

    def value(self, params: FloatArray) -> float:
        return float(np.einsum("i,i->", self.weights, self.loglik(params, *self.rows)))

    def value_and_grad(self, params: FloatArray) -> tuple[float, FloatArray]:
        ll, grad = self.loglik_grad(params, *self.rows)
        total = float(np.einsum("i,i->", self.weights, ll))
        return total, np.einsum("i,ij->j", self.weights, grad)


class _Objective:
    """Penalised mean negative log-likelihood on the log scale, with its gradient.

    A plain class (not a closure) so nothing unpicklable is ever created; it lives only for the
    duration of one fit. ``total`` evaluates the weighted total log-likelihood (``value``) and,
    when ``total.has_gradient``, its gradient in the natural parameters (``value_and_grad``).
    """

    def __init__(self, total: Total, total_weight: float, penalty: Penalty) -> None:
        self.total = total
        self.has_gradient = bool(getattr(total, "has_gradient", True))
        self.total_weight = total_weight
        self.penalty = penalty

    def total_loglik(self, log_params: FloatArray) -> float:
        with np.errstate(all="ignore"):
            return self.total.value(np.exp(log_params))

    def value(self, log_params: FloatArray) -> float:
        total = self.total_loglik(log_params)
        if not np.isfinite(total):
            return np.inf
        return -total / self.total_weight + self.penalty.value(log_params)

    def gradient(self, log_params: FloatArray) -> FloatArray:
        return self.value_and_gradient(log_params)[1]

    def value_and_gradient(self, log_params: FloatArray) -> tuple[float, FloatArray]:
        if not self.has_gradient:
            return self.value(log_params), self._numerical_gradient(log_params)
        params = np.exp(log_params)
        with np.errstate(all="ignore"):
            total, total_grad = self.total.value_and_grad(params)
        if not (np.isfinite(total) and np.all(np.isfinite(total_grad))):
            return np.inf, np.zeros_like(log_params)
        value = -total / self.total_weight + self.penalty.value(log_params)
        gradient = -total_grad * params / self.total_weight + self.penalty.gradient(log_params)
        return value, gradient

    def _numerical_gradient(self, log_params: FloatArray) -> FloatArray:
        grad = np.empty_like(log_params)
        for j in range(log_params.size):
            step = _GRAD_STEP * max(1.0, abs(log_params[j]))
            up, down = log_params.copy(), log_params.copy()
            up[j] += step
            down[j] -= step
            grad[j] = (self.value(up) - self.value(down)) / (2.0 * step)
        if not np.all(np.isfinite(grad)):
            return np.zeros_like(log_params)
        return grad

    def hessian(self, log_params: FloatArray) -> FloatArray:
        """Hessian of the mean objective by central differences, symmetrised."""
        k = log_params.size
        hess = np.empty((k, k))
        if self.has_gradient:
            for j in range(k):
                step = _HESS_STEP_FROM_GRAD * max(1.0, abs(log_params[j]))
                up, down = log_params.copy(), log_params.copy()
                up[j] += step
                down[j] -= step
                hess[:, j] = (self.gradient(up) - self.gradient(down)) / (2.0 * step)
        else:
            steps = _HESS_STEP_FROM_VALUE * np.maximum(1.0, np.abs(log_params))
            for i in range(k):
                for j in range(i, k):
                    corners = []
                    for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                        point = log_params.copy()
                        point[i] += si * steps[i]
                        point[j] += sj * steps[j]
                        corners.append(self.value(point))
                    hess[i, j] = (corners[0] - corners[1] - corners[2] + corners[3]) / (
                        4.0 * steps[i] * steps[j]
                    )
                    hess[j, i] = hess[i, j]
        return 0.5 * (hess + hess.T)


def fit_mle(
    *,
    loglik: LogLik,
    loglik_grad: LogLikGrad | None,
    data: Sequence[npt.ArrayLike],
    weights: npt.ArrayLike | None,
    initial_params: Sequence[float] | InitialParams,
    param_names: Sequence[str],
    penalizer: float,
    tol: float,
    max_iter: int,
    model_name: str,
    collapse: bool = True,
    total: TotalFactory | None = None,
    penalty: Penalty | None = None,
) -> MLEResult:
    """Maximise a weighted log-likelihood over the logarithms of positive parameters.

    Parameters
    ----------
    loglik : callable
        ``loglik(params, *data) -> per-row log-likelihood`` with ``params`` in the natural scale.
    loglik_grad : callable or None
        ``loglik_grad(params, *data) -> (loglik, gradient)`` with the gradient in the natural
        parameters, shape ``(n, k)``; ``None`` to use central differences.
    data : sequence of array_like
        Data columns (one row per customer).
    weights : array_like or None
        Non-negative customer weights (frequency weights); ones when None.
    initial_params : sequence of float or callable
        Starting point, natural scale, all positive; or ``initial_params(columns, weights)``
        computing it from the (collapsed) rows the likelihood is evaluated on, so that a fit on
        repeated rows and one on unique rows with counts as weights start, and end, at the same
        point, bit for bit.
    param_names : sequence of str
        Names, for messages.
    penalizer : float
        L2 penalty on the log-parameters, added to the mean negative log-likelihood (see the
        module docstring).
    tol : float
        BFGS gradient tolerance on the mean objective (largest gradient component).
    max_iter : int
        Maximum BFGS iterations.
    model_name : str
        Model name for messages.
    collapse : bool, default True
        Collapse identical rows first (same optimum, fewer evaluations).
    total : callable, optional
        ``total(columns, weights)`` building an object whose ``value(params)`` and
        ``value_and_grad(params)`` give the weighted total log-likelihood (and gradient) of the
        rows faster than summing ``loglik`` row by row (e.g. evaluating special functions once
        per distinct frequency). ``loglik`` is then not called.
    penalty : Penalty, optional
        The penalty added to the mean negative log-likelihood; ``LogPenalty(penalizer)`` when
        omitted (e.g. :class:`ParameterPenalty` for lifetimes' ``penalizer_coef``).

    Returns
    -------
    MLEResult
        Estimates, log-likelihood and covariance.

    Raises
    ------
    ConvergenceError
        If the optimiser stops before the gradient is negligible, or the optimum is not finite;
        the message gives the optimiser's own message and what to try.

    Warns
    -----
    ModelAssumptionWarning
        If the Hessian at the optimum is not positive definite (the data do not identify every
        parameter); the covariance is then NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from vipml.ltv._likelihoods import gamma_gamma_loglik, gamma_gamma_loglik_grad
    >>> rng = np.random.default_rng(0)
    >>> x = rng.integers(1, 10, 500).astype(float)
    >>> m = rng.gamma(6.0 * x, 1.0 / (x * rng.gamma(4.0, 1.0 / 15.0, 500)))
    >>> res = fit_mle(loglik=gamma_gamma_loglik, loglik_grad=gamma_gamma_loglik_grad,
    ...               data=(x, m), weights=None, initial_params=(1.0, 2.0, float(m.mean())),
    ...               param_names=("p", "q", "v"), penalizer=0.0, tol=1e-8, max_iter=500,
    ...               model_name="Gamma-Gamma")
    >>> bool(res.converged), res.params.shape, res.covariance.shape
    (True, (3,), (3, 3))
    """
    columns = [np.asarray(c, dtype=np.float64) for c in data]
    w_in = None if weights is None else np.asarray(weights, dtype=np.float64)
    rows, w = weighted_rows(columns, w_in, collapse=collapse)
    logger.debug(
        "%s: %d rows -> %d likelihood rows (total weight %.6g)",
        model_name,
        columns[0].size,
        rows[0].size,
        float(w.sum()),
    )
    summed = RowSum(loglik, loglik_grad, rows, w) if total is None else total(rows, w)
    objective = _Objective(summed, float(w.sum()), penalty or LogPenalty(penalizer))
    start = initial_params(rows, w) if callable(initial_params) else initial_params
    x0 = np.log(np.asarray(start, dtype=np.float64))
    with np.errstate(all="ignore"):
        result = minimize(
            objective.value_and_gradient,
            x0,
            jac=True,
            method="BFGS",
            options={"gtol": tol, "maxiter": max_iter},
        )
    log_params = np.asarray(result.x, dtype=np.float64)
    gradient = objective.gradient(log_params)
    largest = float(np.max(np.abs(gradient))) if np.all(np.isfinite(gradient)) else np.inf
    value = objective.value(log_params)
    stalled_at_optimum = largest <= max(_ACCEPT_GRADIENT, tol)
    converged = bool(result.success) or stalled_at_optimum
    logger.debug(
        "%s: BFGS %s after %d iterations, largest gradient %.3g (%s)",
        model_name,
        "converged" if converged else "failed",
        result.nit,
        largest,
        result.message,
    )
    names = ", ".join(f"{n}={p:.4g}" for n, p in zip(param_names, np.exp(log_params), strict=True))
    if not (converged and np.isfinite(value) and np.all(np.isfinite(log_params))):
        raise ConvergenceError(
            f"{model_name} maximum-likelihood fit did not converge after {result.nit} "
            f"iterations (max_iter={max_iter}): {result.message} Largest gradient component "
            f"{largest:.3g} (tolerance {tol:g}); last parameters {names}. Try: a small "
            "penalizer (e.g. penalizer=0.001) to keep the parameters away from degenerate "
            "values; a larger max_iter; rescaling the data (recency, T and horizons in weeks "
            "rather than days, so that T is of order 1 to 100; spend in units where typical "
            "values are 1 to 1000); or checking the data (a very large share of customers "
            "without repeat purchases, no visible dropout, or spend unrelated to any gamma "
            "mixture leaves parameters unidentified)."
        )
    params = np.exp(log_params)
    total_weight = float(w.sum())
    loglik_value = objective.total_loglik(log_params)
    hessian = objective.hessian(log_params) * total_weight
    log_cov = _inverse_hessian(hessian, model_name, param_names)
    covariance = params[:, None] * log_cov * params[None, :]
    return MLEResult(
        params=params,
        loglik=loglik_value,
        converged=converged,
        n_iter=int(result.nit),
        covariance=covariance,
        log_covariance=log_cov,
        message=str(result.message),
    )


def _inverse_hessian(
    hessian: FloatArray, model_name: str, param_names: Sequence[str]
) -> FloatArray:
    k = hessian.shape[0]
    if np.all(np.isfinite(hessian)):
        try:
            chol = np.linalg.cholesky(hessian)
        except np.linalg.LinAlgError:
            chol = None
        if chol is not None:
            identity = np.eye(k)
            inv_chol = np.linalg.solve(chol, identity)
            return inv_chol.T @ inv_chol
    warnings.warn(
        f"{model_name}: the Hessian of the log-likelihood at the optimum is not positive "
        f"definite, so the covariance and standard errors of ({', '.join(param_names)}) are "
        "undefined (set to NaN). The data do not identify every parameter (e.g. no visible "
        "dropout); a small penalizer (e.g. penalizer=0.001) makes them identified.",
        ModelAssumptionWarning,
        stacklevel=4,
    )
    return np.full((k, k), np.nan)


def draw_log_normal(
    params: Sequence[float],
    covariance: npt.ArrayLike,
    n_draws: int,
    random_state: int | np.random.Generator | None,
) -> FloatArray:
    """Draw parameters from their asymptotic normal distribution on the log scale.

    ``log(theta) ~ N(log(theta_hat), Sigma_log)`` with
    ``Sigma_log[i, j] = covariance[i, j] / (theta_hat[i] * theta_hat[j])`` (the delta method
    reversed), so every draw is positive.

    Parameters
    ----------
    params : sequence of float
        Estimates, natural scale.
    covariance : array_like
        Their covariance, natural scale.
    n_draws : int
        Number of draws.
    random_state : int, numpy.random.Generator or None
        Seed for :func:`numpy.random.default_rng`.

    Returns
    -------
    numpy.ndarray
        Draws, shape ``(n_draws, n_params)``.

    Raises
    ------
    ConvergenceError
        If the covariance is not finite and positive definite.

    Examples
    --------
    >>> draws = draw_log_normal([1.0, 2.0], [[0.01, 0.0], [0.0, 0.04]], 3, random_state=0)
    >>> draws.shape, bool((draws > 0).all())
    ((3, 2), True)
    """
    theta = np.asarray(params, dtype=np.float64)
    cov = np.asarray(covariance, dtype=np.float64)
    log_cov = cov / np.outer(theta, theta)
    try:
        chol = np.linalg.cholesky(log_cov) if np.all(np.isfinite(log_cov)) else None
    except np.linalg.LinAlgError:
        chol = None
    if chol is None:
        raise ConvergenceError(
            "The covariance of the parameter estimates is undefined (the Hessian at the "
            "optimum is not positive definite), so parameters cannot be drawn. Refit with a "
            "small penalizer (e.g. penalizer=0.001)."
        )
    rng = np.random.default_rng(random_state)
    normal = rng.standard_normal((int(n_draws), theta.size))
    return np.exp(np.log(theta) + normal @ chol.T)
