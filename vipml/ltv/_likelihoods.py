"""Per-customer log-likelihoods of the buy-till-you-die models, in plain numpy / scipy.

Every function here is vectorised over customers and works in log space. Parameters are
passed in their natural scale as a sequence, in the order of the model's parameter names
(BG/NBD and MBG/NBD ``(r, alpha, a, b)``, Pareto/NBD ``(r, alpha, s, beta)``, Gamma-Gamma
``(p, q, v)``). The ``*_loglik_grad`` functions also return the gradient of each customer's
log-likelihood with respect to the natural parameters, shape ``(n_customers, n_params)``.

The log-likelihoods include every constant term the papers include, so that their weighted
sum is the figure the papers print (BG/NBD on the CDNOW sample: -9582.4).

Gauss hypergeometric functions are evaluated in log space on the Euler-transformed form
whose value stays bounded (``c - a - b >= 0``); the Pareto/NBD term needs only
``2F1(1, b; c; z)``, evaluated with Gauss's continued fraction, which stays finite for
frequencies and ages of 1e4 periods and more, where the untransformed function overflows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, gammaln, hyp2f1

__all__ = [
    "bgnbd_loglik",
    "bgnbd_loglik_grad",
    "gamma_gamma_loglik",
    "gamma_gamma_loglik_grad",
    "log_hyp2f1",
    "log_hyp2f1_unit_a",
    "modified_bgnbd_loglik",
    "modified_bgnbd_loglik_grad",
    "pareto_nbd_log_a0",
    "pareto_nbd_loglik",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

_CF_MAX_TERMS = 200_000
_SERIES_MAX_TERMS = 100_000
_EPS = np.finfo(np.float64).eps
_TINY = 1e-300


def _as_float(*arrays: ArrayLike) -> list[FloatArray]:
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def log_hyp2f1_unit_a(b: ArrayLike, c: ArrayLike, z: ArrayLike) -> FloatArray:
    r"""Logarithm of :math:`{}_2F_1(1, b; c; z)` for ``0 <= z < 1`` and ``0 < b < c``.

    Evaluated with Gauss's continued fraction for the ratio
    :math:`{}_2F_1(1, b; c; z) / {}_2F_1(0, b; c - 1; z)`, summed with the modified Lentz
    algorithm. Under these conditions the function is a Stieltjes transform: every partial
    numerator is negative times ``z``, the value lies in ``[1, 1 / (1 - z)]`` and no term can
    overflow, whatever the size of ``b`` and ``c``. The fraction converges for every
    ``z < 1``; near ``z = 1`` it needs about ``20 / sqrt(1 - z)`` terms.

    Parameters
    ----------
    b, c, z : array_like
        Broadcastable arrays with ``0 < b < c`` and ``0 <= z < 1``.

    Returns
    -------
    numpy.ndarray
        ``log 2F1(1, b; c; z)``, at least 0.

    References
    ----------
    Abramowitz & Stegun (1964), Handbook of Mathematical Functions, 15.1.1 (series), and
    Cuyt et al. (2008), Handbook of Continued Fractions for Special Functions, 15.3.7
    (Gauss's continued fraction); Press et al., Numerical Recipes, 5.2 (modified Lentz).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.special import hyp2f1
    >>> bool(np.isclose(log_hyp2f1_unit_a(2.5, 4.0, 0.3), np.log(hyp2f1(1, 2.5, 4.0, 0.3))))
    True
    """
    b_arr, c_arr, z_arr = np.broadcast_arrays(*_as_float(b, c, z))
    shape = b_arr.shape
    b_flat, c_flat, z_flat = (np.ravel(v) for v in (b_arr, c_arr, z_arr))
    c0 = c_flat - 1.0
    # f = 1 / (1 + k1 z / (1 + k2 z / (1 + ...))): Lentz on b_0 = 0, a_1 = 1, a_{j+1} = k_j z.
    f = np.full(b_flat.shape, _TINY)
    big_c = f.copy()
    d = np.zeros_like(f)
    active = np.nonzero(z_flat > 0.0)[0]
    f[z_flat <= 0.0] = 1.0
    for j in range(_CF_MAX_TERMS):
        if active.size == 0:
            break
        if j == 0:
            numerator = np.ones(active.size)
        else:
            n = (j + 1) // 2
            bb, cc = b_flat[active], c0[active]
            if j == 1:
                k = -bb / (cc + 1.0)
            elif j % 2 == 1:
                k = -(cc + n - 1.0) * (bb + n - 1.0) / ((cc + 2.0 * n - 2.0) * (cc + 2.0 * n - 1.0))
            else:
                k = -n * (cc + n - bb) / ((cc + 2.0 * n - 1.0) * (cc + 2.0 * n))
            numerator = k * z_flat[active]
        d_a = 1.0 + numerator * d[active]
        d_a = np.where(d_a == 0.0, _TINY, d_a)
        c_a = 1.0 + numerator / big_c[active]
        c_a = np.where(c_a == 0.0, _TINY, c_a)
        d_a = 1.0 / d_a
        delta = c_a * d_a
        f[active] *= delta
        big_c[active] = c_a
        d[active] = d_a
        active = active[np.abs(delta - 1.0) > 4.0 * _EPS]
    else:
        logger.debug("continued fraction of 2F1(1, b; c; z) stopped at %d terms", _CF_MAX_TERMS)
    return np.maximum(np.log(f), 0.0).reshape(shape)


def _log_hyp2f1_series(a: FloatArray, b: FloatArray, c: FloatArray, z: FloatArray) -> FloatArray:
    """log 2F1(a, b; c; z) by its power series, summed in log space with signs.

    Terms are accumulated relative to the largest term met so far, so neither the terms nor
    the partial sums overflow. Returns NaN where the sum is not positive or does not converge
    within the term budget.
    """
    log_t = np.zeros_like(z)
    sign_t = np.ones_like(z)
    log_scale = np.zeros_like(z)
    acc = np.ones_like(z)
    done = z == 0.0
    # the tail after a term t with later ratios below z is at most t / (1 - z)
    log_tolerance = np.log(_EPS / 4.0) + np.log1p(-z)
    for k in range(_SERIES_MAX_TERMS):
        if np.all(done):
            break
        ratio = (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z
        with np.errstate(divide="ignore"):
            log_t = log_t + np.log(np.abs(ratio))
        sign_t = sign_t * np.sign(ratio)
        grow = log_t > log_scale
        with np.errstate(over="ignore", invalid="ignore"):
            acc = np.where(
                grow,
                acc * np.exp(log_scale - log_t) + sign_t,
                acc + sign_t * np.exp(log_t - log_scale),
            )
        log_scale = np.where(grow, log_t, log_scale)
        with np.errstate(divide="ignore", invalid="ignore"):
            small = (log_t - log_scale - np.log(np.abs(acc))) < log_tolerance
        done = done | (ratio == 0.0) | (small & (np.abs(ratio) < 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = log_scale + np.log(acc)
    return np.where(done, out, np.nan)


def log_hyp2f1(a: ArrayLike, b: ArrayLike, c: ArrayLike, z: ArrayLike) -> FloatArray:
    r"""Logarithm of a positive Gauss hypergeometric function :math:`{}_2F_1(a, b; c; z)`, ``0 <= z < 1``.

    Where ``c - a - b < 0`` the function grows like :math:`(1 - z)^{c - a - b}` and overflows
    for large parameters; there Euler's transformation
    :math:`{}_2F_1(a, b; c; z) = (1 - z)^{c - a - b} {}_2F_1(c - a, c - b; c; z)` moves the
    growth into a logarithmic prefactor and leaves a bounded function. The bounded function is
    evaluated with :func:`scipy.special.hyp2f1` where that is finite and positive, and with a
    power series summed in log space otherwise.

    Parameters
    ----------
    a, b, c, z : array_like
        Broadcastable parameters with ``0 <= z < 1`` and ``c`` not a non-positive integer.

    Returns
    -------
    numpy.ndarray
        ``log 2F1(a, b; c; z)``; NaN where the function is not positive.

    References
    ----------
    Abramowitz & Stegun (1964), 15.3.3 (Euler's transformation) and 15.1.1 (series).

    Examples
    --------
    >>> import numpy as np
    >>> round(float(log_hyp2f1(1e4, 1e4, 1e4 + 1.5, 0.5)), 3)  # scipy's hyp2f1 overflows here
    6930.432
    """
    a_arr, b_arr, c_arr, z_arr = np.broadcast_arrays(*_as_float(a, b, c, z))
    excess = c_arr - a_arr - b_arr
    euler = excess < 0.0
    a2 = np.where(euler, c_arr - a_arr, a_arr)
    b2 = np.where(euler, c_arr - b_arr, b_arr)
    prefactor = np.where(euler, excess * np.log1p(-z_arr), 0.0)
    with np.errstate(all="ignore"):
        value = hyp2f1(a2, b2, c_arr, z_arr)
    good = np.isfinite(value) & (value > 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(good, np.log(np.where(good, value, 1.0)), np.nan)
    if not np.all(good):
        bad = ~good
        logger.debug("log_hyp2f1: series fallback for %d values", int(bad.sum()))
        out[bad] = _log_hyp2f1_series(a2[bad], b2[bad], c_arr[bad], z_arr[bad])
    return prefactor + out


def _logsubexp(upper: FloatArray, lower: FloatArray) -> FloatArray:
    """log(exp(upper) - exp(lower)) for ``upper >= lower``; -inf where they are equal."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = upper + np.log(-np.expm1(np.minimum(lower - upper, 0.0)))
    return np.where(np.isneginf(upper), -np.inf, out)


# ---------------------------------------------------------------------------------------------
# BG/NBD and MBG/NBD
# ---------------------------------------------------------------------------------------------


def _bg_family_terms(
    params: Sequence[float],
    frequency: FloatArray,
    recency: FloatArray,
    T: FloatArray,
    *,
    modified: bool,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Shared pieces of the BG/NBD (``modified=False``) and MBG/NBD log-likelihoods.

    Returns ``(base, log_alive, log_dead, has_dead)``: the customer's log-likelihood is
    ``base + logaddexp(log_alive, log_dead)`` with ``log_dead = -inf`` where ``has_dead`` is 0.
    """
    r, alpha, a, b = (float(p) for p in params)
    x = frequency
    shift = 1.0 if modified else 0.0
    base = (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha)
        + gammaln(a + b)
        + gammaln(b + x + shift)
        - gammaln(b)
        - gammaln(a + b + x + shift)
    )
    log_alive = -(r + x) * np.log(alpha + T)
    if modified:
        has_dead = np.ones_like(x)
        denominator = b + x
    else:
        has_dead = (x > 0).astype(np.float64)
        denominator = b + np.maximum(x, 1.0) - 1.0
    log_dead = np.log(a) - np.log(denominator) - (r + x) * np.log(alpha + recency)
    log_dead = np.where(has_dead > 0, log_dead, -np.inf)
    return base, log_alive, log_dead, has_dead


def _bg_family_loglik_grad(
    params: Sequence[float],
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    modified: bool,
) -> tuple[FloatArray, FloatArray]:
    x, t_x, age = _as_float(frequency, recency, T)
    r, alpha, a, b = (float(p) for p in params)
    base, log_alive, log_dead, has_dead = _bg_family_terms(params, x, t_x, age, modified=modified)
    mix = np.logaddexp(log_alive, log_dead)
    ll = base + mix
    w_alive = np.exp(log_alive - mix)
    w_dead = np.exp(log_dead - mix)
    shift = 1.0 if modified else 0.0
    denominator = b + x if modified else b + np.maximum(x, 1.0) - 1.0
    log_alpha_t = np.log(alpha + age)
    log_alpha_tx = np.log(alpha + t_x)
    grad = np.empty((x.size, 4))
    grad[:, 0] = (
        digamma(r + x) - digamma(r) + np.log(alpha) - w_alive * log_alpha_t - w_dead * log_alpha_tx
    )
    grad[:, 1] = r / alpha - (r + x) * (w_alive / (alpha + age) + w_dead / (alpha + t_x))
    common = digamma(a + b) - digamma(a + b + x + shift)
    grad[:, 2] = common + w_dead * has_dead / a
    grad[:, 3] = common + digamma(b + x + shift) - digamma(b) - w_dead * has_dead / denominator
    return ll, grad


def bgnbd_loglik(
    params: Sequence[float], frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    r"""BG/NBD log-likelihood of each customer.

    .. math::
        L = \frac{B(a, b + x)}{B(a, b)} \frac{\Gamma(r + x) \alpha^r}{\Gamma(r) (\alpha + T)^{r + x}}
          + \delta_{x > 0} \frac{B(a + 1, b + x - 1)}{B(a, b)}
            \frac{\Gamma(r + x) \alpha^r}{\Gamma(r) (\alpha + t_x)^{r + x}}

    Parameters
    ----------
    params : sequence of float
        ``(r, alpha, a, b)``, all positive.
    frequency, recency, T : array_like
        Repeat purchases ``x``, time of the last purchase ``t_x`` and age ``T``.

    Returns
    -------
    numpy.ndarray
        ``log L`` per customer.

    References
    ----------
    Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way", Marketing Science
    24(2), equation (6); Fader, Hardie & Lee (2007), note "Implementing the BG/NBD model",
    section 7 (log-space evaluation).

    Examples
    --------
    >>> ll = bgnbd_loglik((0.243, 4.414, 0.793, 2.426), [0, 2], [0.0, 30.43], [38.86, 38.86])
    >>> [round(float(v), 3) for v in ll]
    [-0.555, -9.459]
    """
    x, t_x, age = _as_float(frequency, recency, T)
    base, log_alive, log_dead, _ = _bg_family_terms(params, x, t_x, age, modified=False)
    return base + np.logaddexp(log_alive, log_dead)


def bgnbd_loglik_grad(
    params: Sequence[float], frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """BG/NBD log-likelihood per customer and its gradient in ``(r, alpha, a, b)``.

    Parameters
    ----------
    params : sequence of float
        ``(r, alpha, a, b)``.
    frequency, recency, T : array_like
        Customer histories.

    Returns
    -------
    tuple of numpy.ndarray
        ``(loglik, gradient)`` with shapes ``(n,)`` and ``(n, 4)``.

    References
    ----------
    Fader, Hardie & Lee (2005), equation (6), differentiated term by term.

    Examples
    --------
    >>> ll, grad = bgnbd_loglik_grad((0.243, 4.414, 0.793, 2.426), [2], [30.43], [38.86])
    >>> grad.shape
    (1, 4)
    """
    return _bg_family_loglik_grad(params, frequency, recency, T, modified=False)


def modified_bgnbd_loglik(
    params: Sequence[float], frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    r"""MBG/NBD log-likelihood of each customer (dropout possible right after the first purchase).

    .. math::
        L = \frac{B(a, b + x + 1)}{B(a, b)}
            \frac{\Gamma(r + x) \alpha^r}{\Gamma(r) (\alpha + T)^{r + x}}
          + \frac{B(a + 1, b + x)}{B(a, b)}
            \frac{\Gamma(r + x) \alpha^r}{\Gamma(r) (\alpha + t_x)^{r + x}}

    Parameters
    ----------
    params : sequence of float
        ``(r, alpha, a, b)``, all positive.
    frequency, recency, T : array_like
        Customer histories.

    Returns
    -------
    numpy.ndarray
        ``log L`` per customer.

    References
    ----------
    Batislam, Denizel & Filiztekin (2007), "Empirical validation and comparison of models for
    customer base analysis", IJRM 24(3), appendix A, equation (3); Wagner & Hoppe (2008),
    "Erratum on the MBG/NBD model", IJRM 25(3).

    Examples
    --------
    >>> ll = modified_bgnbd_loglik((0.525, 6.183, 0.891, 1.614), [0, 2], [0.0, 30.43], [38.86, 38.86])
    >>> [round(float(v), 3) for v in ll]
    [-0.54, -9.486]
    """
    x, t_x, age = _as_float(frequency, recency, T)
    base, log_alive, log_dead, _ = _bg_family_terms(params, x, t_x, age, modified=True)
    return base + np.logaddexp(log_alive, log_dead)


def modified_bgnbd_loglik_grad(
    params: Sequence[float], frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """MBG/NBD log-likelihood per customer and its gradient in ``(r, alpha, a, b)``.

    Parameters
    ----------
    params : sequence of float
        ``(r, alpha, a, b)``.
    frequency, recency, T : array_like
        Customer histories.

    Returns
    -------
    tuple of numpy.ndarray
        ``(loglik, gradient)`` with shapes ``(n,)`` and ``(n, 4)``.

    References
    ----------
    Batislam et al. (2007), appendix A, equation (3), differentiated term by term.

    Examples
    --------
    >>> ll, grad = modified_bgnbd_loglik_grad((0.5, 6.0, 0.9, 1.6), [0, 3], [0.0, 20.0], [30.0, 30.0])
    >>> grad.shape
    (2, 4)
    """
    return _bg_family_loglik_grad(params, frequency, recency, T, modified=True)


# ---------------------------------------------------------------------------------------------
# Pareto/NBD
# ---------------------------------------------------------------------------------------------


def _pareto_log_g(
    r: float, alpha: float, s: float, beta: float, x: FloatArray, y: FloatArray
) -> FloatArray:
    r"""log of :math:`(m + y)^{-(r+s+x)}\, {}_2F_1(r+s+x, b; r+s+x+1; |\alpha-\beta|/(m+y))`.

    ``m = max(alpha, beta)``, ``b = r + x`` when ``alpha < beta`` and ``s + 1`` otherwise.
    With Euler's transformation the hypergeometric factor is
    :math:`(1-z)^{1-b}\, {}_2F_1(1, r+s+x+1-b; r+s+x+1; z)`, bounded, where ``1 - z`` is
    ``(min(alpha, beta) + y) / (m + y)``.
    """
    rsx = r + s + x
    high, low = max(alpha, beta), min(alpha, beta)
    if alpha < beta:
        b_param = r + x
        b_transformed = s + 1.0 + np.zeros_like(x)
    else:
        b_param = s + 1.0 + np.zeros_like(x)
        b_transformed = r + x
    log_high = np.log(high + y)
    log_one_minus_z = np.log(low + y) - log_high
    z = (high - low) / (high + y)
    return (
        -rsx * log_high
        + (1.0 - b_param) * log_one_minus_z
        + log_hyp2f1_unit_a(b_transformed, rsx + 1.0, z)
    )


def pareto_nbd_log_a0(
    params: Sequence[float], frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    r"""log of the Pareto/NBD term :math:`A_0` (the customer died between ``t_x`` and ``T``).

    :math:`A_0 = G(t_x) - G(T)` with
    :math:`G(y) = {}_2F_1(r+s+x, b; r+s+x+1; |\alpha-\beta|/(m+y)) / (m+y)^{r+s+x}`,
    ``m = max(alpha, beta)``. Each ``G`` is evaluated in log space through Euler's
    transformation and a continued fraction (see :func:`log_hyp2f1_unit_a`), so it stays finite
    for any frequency and age; lifetimes evaluates the untransformed hypergeometric function,
    which overflows to inf (and the likelihood to NaN) for a customer with ``x = 1e4`` and
    ``T = 1e4``. ``-inf`` where ``t_x = T``.

    Parameters
    ----------
    params : sequence of float
        ``(r, alpha, s, beta)``, all positive.
    frequency, recency, T : array_like
        Customer histories.

    Returns
    -------
    numpy.ndarray
        ``log A0`` per customer.

    References
    ----------
    Fader & Hardie (2005), "A note on deriving the Pareto/NBD model and related expressions",
    equations (19) and (20).

    Examples
    --------
    >>> out = pareto_nbd_log_a0((0.553, 10.578, 0.606, 11.669), [1e4], [9999.0], [1e4])
    >>> bool(np.isfinite(out[0]))
    True
    """
    r, alpha, s, beta = (float(p) for p in params)
    x, t_x, age = _as_float(frequency, recency, T)
    return _logsubexp(
        _pareto_log_g(r, alpha, s, beta, x, t_x), _pareto_log_g(r, alpha, s, beta, x, age)
    )


def pareto_nbd_log_alive_part(
    params: Sequence[float], frequency: ArrayLike, T: ArrayLike
) -> FloatArray:
    r"""log of the part of the Pareto/NBD likelihood where the customer is alive at ``T``.

    :math:`\Gamma(r+x)\alpha^r\beta^s / (\Gamma(r) (\alpha+T)^{r+x} (\beta+T)^s)`; divided by the
    likelihood it is :math:`P(\text{alive})`.

    Parameters
    ----------
    params : sequence of float
        ``(r, alpha, s, beta)``.
    frequency, T : array_like
        Repeat purchases and age.

    Returns
    -------
    numpy.ndarray
        The log of the alive part per customer.

    References
    ----------
    Fader & Hardie (2005), note on the Pareto/NBD, equations (18) and (36).

    Examples
    --------
    >>> round(float(pareto_nbd_log_alive_part((0.5, 10.0, 0.6, 12.0), [0], [39.0])[0]), 4)
    -1.6628
    """
    r, alpha, s, beta = (float(p) for p in params)
    x, age = _as_float(frequency, T)
    return (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha)
        + s * np.log(beta)
        - (r + x) * np.log(alpha + age)
        - s * np.log(beta + age)
    )


def pareto_nbd_loglik(
    params: Sequence[float], frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    r"""Pareto/NBD log-likelihood of each customer.

    .. math::
        L = \frac{\Gamma(r+x) \alpha^r \beta^s}{\Gamma(r)}
            \left[\frac{1}{(\alpha+T)^{r+x} (\beta+T)^s} + \frac{s}{r+s+x} A_0\right]

    No closed-form gradient exists in ``r`` and ``s`` (they enter the hypergeometric
    function's parameters); the fit uses central differences of this function.

    Parameters
    ----------
    params : sequence of float
        ``(r, alpha, s, beta)``, all positive.
    frequency, recency, T : array_like
        Customer histories.

    Returns
    -------
    numpy.ndarray
        ``log L`` per customer.

    References
    ----------
    Schmittlein, Morrison & Colombo (1987), "Counting your customers", Management Science
    33(1); Fader & Hardie (2005), note on the Pareto/NBD, equation (18).

    Examples
    --------
    >>> ll = pareto_nbd_loglik((0.553, 10.578, 0.606, 11.669), [0, 2], [0.0, 30.43], [38.86, 38.86])
    >>> [round(float(v), 3) for v in ll]
    [-0.521, -9.554]
    """
    r, alpha, s, beta = (float(p) for p in params)
    x, t_x, age = _as_float(frequency, recency, T)
    log_alive = pareto_nbd_log_alive_part(params, x, age)
    base = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    log_dead = base + np.log(s) - np.log(r + s + x) + pareto_nbd_log_a0(params, x, t_x, age)
    return np.logaddexp(log_alive, log_dead)


# ---------------------------------------------------------------------------------------------
# Gamma-Gamma
# ---------------------------------------------------------------------------------------------


def gamma_gamma_loglik(
    params: Sequence[float], frequency: ArrayLike, monetary_value: ArrayLike
) -> FloatArray:
    r"""Gamma-Gamma log-likelihood of each repeat customer's average spend.

    .. math::
        f(\bar z \mid x) = \frac{\Gamma(px+q)}{\Gamma(px)\Gamma(q)}
            \frac{\gamma^q \bar z^{px-1} x^{px}}{(\gamma + x \bar z)^{px+q}}

    Parameters
    ----------
    params : sequence of float
        ``(p, q, v)``; ``v`` is the paper's :math:`\gamma`.
    frequency, monetary_value : array_like
        Number of repeat transactions ``x > 0`` and their mean value ``z̄ > 0``.

    Returns
    -------
    numpy.ndarray
        ``log f`` per customer.

    References
    ----------
    Fader & Hardie (2013), "The Gamma-Gamma model of monetary value", equation (3);
    Fader, Hardie & Lee (2005), "RFM and CLV", JMR 42(4).

    Examples
    --------
    >>> round(float(gamma_gamma_loglik((6.25, 3.74, 15.44), [2], [22.35])[0]), 3)
    -3.551
    """
    p, q, v = (float(t) for t in params)
    x, m = _as_float(frequency, monetary_value)
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(x * m + v)
    )


def gamma_gamma_loglik_grad(
    params: Sequence[float], frequency: ArrayLike, monetary_value: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Gamma-Gamma log-likelihood per customer and its gradient in ``(p, q, v)``.

    Parameters
    ----------
    params : sequence of float
        ``(p, q, v)``.
    frequency, monetary_value : array_like
        Repeat transactions and their mean value.

    Returns
    -------
    tuple of numpy.ndarray
        ``(loglik, gradient)`` with shapes ``(n,)`` and ``(n, 3)``.

    References
    ----------
    Fader & Hardie (2013), equation (3), differentiated term by term.

    Examples
    --------
    >>> ll, grad = gamma_gamma_loglik_grad((6.25, 3.74, 15.44), [2, 5], [22.35, 40.0])
    >>> grad.shape
    (2, 3)
    """
    p, q, v = (float(t) for t in params)
    x, m = _as_float(frequency, monetary_value)
    px = p * x
    log_xm_v = np.log(x * m + v)
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * log_xm_v
    )
    psi_pxq = digamma(px + q)
    grad = np.empty((x.size, 3))
    grad[:, 0] = x * (psi_pxq - digamma(px) + np.log(m) + np.log(x) - log_xm_v)
    grad[:, 1] = psi_pxq - digamma(q) + np.log(v) - log_xm_v
    grad[:, 2] = q / v - (px + q) / (x * m + v)
    return ll, grad


# ---------------------------------------------------------------------------------------------
# Grouped totals for fitting: the same log-likelihoods, summed with far fewer special functions
# ---------------------------------------------------------------------------------------------


def _dot(a: FloatArray, b: FloatArray) -> float:
    """Inner product without BLAS, whose threads stall when the cores are busy elsewhere."""
    return float(np.einsum("i,i->", a, b))


class BGFamilyTotal:
    r"""Weighted total BG/NBD (or MBG/NBD) log-likelihood and its gradient, evaluated fast.

    Each customer's log-likelihood is
    :math:`A(x) - (r+x)\log(\alpha+T) + \mathrm{softplus}(D(x) + (r+x)(\log(\alpha+T) - \log(\alpha+t_x)))`;
    the gamma and digamma functions enter only through ``A(x)`` and ``D(x)``, evaluated once
    per distinct frequency, and the alive term is summed once per distinct age, so only the
    softplus needs one evaluation per row. The value equals the weighted sum of
    :func:`bgnbd_loglik` (or :func:`modified_bgnbd_loglik`) up to rounding.

    Parameters
    ----------
    frequency, recency, T : numpy.ndarray
        Customer histories (typically the collapsed rows).
    weights : numpy.ndarray
        Row weights.
    modified : bool
        MBG/NBD (dropout also possible right after the first purchase) instead of BG/NBD.

    Examples
    --------
    >>> x, t_x, age = np.array([0.0, 2.0, 5.0]), np.array([0.0, 30.4, 20.0]), np.full(3, 38.9)
    >>> total = BGFamilyTotal(x, t_x, age, np.ones(3), modified=False)
    >>> params = (0.243, 4.414, 0.793, 2.426)
    >>> bool(np.isclose(total.value(params), bgnbd_loglik(params, x, t_x, age).sum()))
    True
    """

    def __init__(
        self,
        frequency: FloatArray,
        recency: FloatArray,
        T: FloatArray,
        weights: FloatArray,
        *,
        modified: bool,
    ) -> None:
        x, t_x, age, w = _as_float(frequency, recency, T, weights)
        self.shift = 1.0 if modified else 0.0
        self.xs, x_code = np.unique(x, return_inverse=True)
        self.w_x = np.bincount(x_code, weights=w, minlength=self.xs.size)
        self.ages, age_code = np.unique(age, return_inverse=True)
        self.w_age = np.bincount(age_code, weights=w, minlength=self.ages.size)
        self.xw_age = np.bincount(age_code, weights=w * x, minlength=self.ages.size)
        dead = np.ones(x.size, dtype=bool) if modified else x > 0
        self.dead_w = w[dead]
        self.dead_code = x_code[dead]
        self.dead_x = x[dead]
        self.dead_age = age[dead]
        self.dead_recency = t_x[dead]
        self.dead_span = self.dead_age - self.dead_recency  # T - t_x >= 0
        self.total_weight = float(w.sum())
        # b + x - 1 (BG/NBD, x > 0) or b + x (MBG/NBD), minus b: finite for every distinct x
        self.dead_offset = np.maximum(self.xs + self.shift, 1.0) - 1.0

    def _terms(self, params: Sequence[float]) -> tuple[float, FloatArray, FloatArray]:
        r, alpha, a, b = (float(p) for p in params)
        xs, s = self.xs, self.shift
        base = (
            gammaln(r + xs)
            - gammaln(r)
            + r * np.log(alpha)
            + gammaln(a + b)
            + gammaln(b + xs + s)
            - gammaln(b)
            - gammaln(a + b + xs + s)
        )
        alive = _dot(np.log(alpha + self.ages), r * self.w_age + self.xw_age)
        log_odds = np.log(a) - np.log(b + self.dead_offset)
        # log(alpha + T) - log(alpha + t_x), with one transcendental function per row
        gap = np.log1p(self.dead_span / (alpha + self.dead_recency))
        d = log_odds[self.dead_code] + (r + self.dead_x) * gap
        return _dot(self.w_x, base) - alive, d, gap

    @staticmethod
    def _softplus(d: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``log(1 + e^d)`` and the sigmoid ``e^d / (1 + e^d)``, sharing one exponential."""
        small = np.exp(-np.abs(d))
        softplus = np.maximum(d, 0.0) + np.log1p(small)
        sigmoid = np.where(d >= 0.0, 1.0, small) / (1.0 + small)
        return softplus, sigmoid

    def value(self, params: Sequence[float]) -> float:
        """Total weighted log-likelihood."""
        head, d, _ = self._terms(params)
        return head + _dot(self.dead_w, self._softplus(d)[0])

    def value_and_grad(self, params: Sequence[float]) -> tuple[float, FloatArray]:
        """Total weighted log-likelihood and its gradient in ``(r, alpha, a, b)``."""
        r, alpha, a, b = (float(p) for p in params)
        xs, s = self.xs, self.shift
        head, d, gap = self._terms(params)
        softplus, sigmoid = self._softplus(d)
        value = head + _dot(self.dead_w, softplus)
        dead_share = self.dead_w * sigmoid  # the weight of "dropped out" in each row
        share_by_x = np.bincount(self.dead_code, weights=dead_share, minlength=xs.size)
        common = digamma(a + b) - digamma(a + b + xs + s)
        # (r + x) * d(gap)/d(alpha) = (r + x) * (1 / (alpha + T) - 1 / (alpha + t_x))
        rate_gap = (r + self.dead_x) * (
            -self.dead_span / ((alpha + self.dead_age) * (alpha + self.dead_recency))
        )
        grad_r = (
            _dot(self.w_x, digamma(r + xs) - digamma(r) + np.log(alpha))
            - _dot(np.log(alpha + self.ages), self.w_age)
            + _dot(dead_share, gap)
        )
        grad_alpha = (
            self.total_weight * r / alpha
            - _dot(r * self.w_age + self.xw_age, 1.0 / (alpha + self.ages))
            + _dot(dead_share, rate_gap)
        )
        grad_a = _dot(self.w_x, common) + float(share_by_x.sum()) / a
        grad_b = _dot(self.w_x, common + digamma(b + xs + s) - digamma(b)) - _dot(
            share_by_x, 1.0 / (b + self.dead_offset)
        )
        return value, np.array([grad_r, grad_alpha, grad_a, grad_b])


def bgnbd_total(columns: Sequence[FloatArray], weights: FloatArray) -> BGFamilyTotal:
    """:class:`BGFamilyTotal` of BG/NBD for ``columns = (frequency, recency, T)``."""
    return BGFamilyTotal(*columns, weights, modified=False)


def modified_bgnbd_total(columns: Sequence[FloatArray], weights: FloatArray) -> BGFamilyTotal:
    """:class:`BGFamilyTotal` of MBG/NBD for ``columns = (frequency, recency, T)``."""
    return BGFamilyTotal(*columns, weights, modified=True)


class GammaGammaTotal:
    r"""Weighted total Gamma-Gamma log-likelihood and its gradient, evaluated fast.

    The gamma and digamma functions depend only on the frequency and are evaluated once per
    distinct frequency; the terms in :math:`\log \bar z` and :math:`\log x` are constant sums;
    only :math:`\log(x \bar z + \gamma)` needs one evaluation per row. The value equals the
    weighted sum of :func:`gamma_gamma_loglik` up to rounding.

    Parameters
    ----------
    frequency, monetary_value : numpy.ndarray
        Repeat transactions (> 0) and their mean value (> 0).
    weights : numpy.ndarray
        Row weights.

    Examples
    --------
    >>> x, m = np.array([1.0, 2.0, 7.0]), np.array([22.0, 15.5, 40.0])
    >>> params = (6.25, 3.74, 15.44)
    >>> total = GammaGammaTotal(x, m, np.ones(3))
    >>> bool(np.isclose(total.value(params), gamma_gamma_loglik(params, x, m).sum()))
    True
    """

    def __init__(
        self, frequency: FloatArray, monetary_value: FloatArray, weights: FloatArray
    ) -> None:
        x, m, w = _as_float(frequency, monetary_value, weights)
        self.xs, x_code = np.unique(x, return_inverse=True)
        self.w_x = np.bincount(x_code, weights=w, minlength=self.xs.size)
        self.total_weight = float(w.sum())
        log_m = np.log(m)
        self.sum_w_log_m = _dot(w, log_m)
        self.sum_wx_log_xm = _dot(w * x, log_m + np.log(x))
        self.spend = x * m
        self.w = w
        self.wx = w * x

    def _value(self, p: float, q: float, v: float, log_total: FloatArray) -> float:
        pxs = p * self.xs
        return (
            _dot(self.w_x, gammaln(pxs + q) - gammaln(pxs))
            + self.total_weight * (q * np.log(v) - gammaln(q))
            + p * self.sum_wx_log_xm
            - self.sum_w_log_m
            - p * _dot(self.wx, log_total)
            - q * _dot(self.w, log_total)
        )

    def value(self, params: Sequence[float]) -> float:
        """Total weighted log-likelihood."""
        p, q, v = (float(t) for t in params)
        return self._value(p, q, v, np.log(self.spend + v))

    def value_and_grad(self, params: Sequence[float]) -> tuple[float, FloatArray]:
        """Total weighted log-likelihood and its gradient in ``(p, q, v)``."""
        p, q, v = (float(t) for t in params)
        xs = self.xs
        pxs = p * xs
        log_total = np.log(self.spend + v)
        inverse = 1.0 / (self.spend + v)
        psi = digamma(pxs + q)
        grad = np.array(
            [
                _dot(self.w_x, xs * (psi - digamma(pxs)))
                + self.sum_wx_log_xm
                - _dot(self.wx, log_total),
                _dot(self.w_x, psi)
                + self.total_weight * (np.log(v) - digamma(q))
                - _dot(self.w, log_total),
                self.total_weight * q / v - p * _dot(self.wx, inverse) - q * _dot(self.w, inverse),
            ]
        )
        return self._value(p, q, v, log_total), grad


def gamma_gamma_total(columns: Sequence[FloatArray], weights: FloatArray) -> GammaGammaTotal:
    """:class:`GammaGammaTotal` for ``columns = (frequency, monetary_value)``."""
    return GammaGammaTotal(*columns, weights)
