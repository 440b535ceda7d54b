r"""Sums over a beta-geometric lifetime, shared by the discrete-time models (BG/BB and sBG).

A customer who is still active after an opportunity survives each later one with probability
:math:`1 - \theta`, where (given the history) :math:`\theta \sim \mathrm{Beta}(a, b)`. The
probability of surviving ``k`` more opportunities is then

.. math::  E[(1-\theta)^k] = \frac{B(a, b + k)}{B(a, b)}
           = \prod_{j=0}^{k-1} \frac{b + j}{a + b + j},

and the expected number of opportunities survived, plain or discounted, have closed forms in
gamma and hypergeometric functions (Fader & Hardie 2007, 2010; Fader, Hardie & Shang 2010).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln

from vipml.ltv._likelihoods import log_hyp2f1_unit_a

__all__ = ["discounted_survivals", "expected_survivals", "log_survival"]

FloatArray = npt.NDArray[np.float64]

_A_NEAR_ONE = 1e-5


def _floats(*arrays: Any) -> list[FloatArray]:
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def log_survival(a: Any, b: Any, k: Any) -> FloatArray:
    """``log E[(1 - theta)^k] = log B(a, b + k) - log B(a, b)`` for ``theta ~ Beta(a, b)``.

    Examples
    --------
    >>> round(float(np.exp(log_survival(1.0, 1.0, 3.0))), 6)  # uniform theta: 1 / (k + 1)
    0.25
    """
    a, b, k = _floats(a, b, k)
    return gammaln(b + k) - gammaln(b) + gammaln(a + b) - gammaln(a + b + k)


def expected_survivals(a: float, b: Any, horizon: Any) -> FloatArray:
    r"""Expected number of the next ``horizon`` opportunities survived, ``sum_{k=1}^{h} E[(1-theta)^k]``.

    .. math::  \sum_{k=1}^{h} \frac{B(a, b+k)}{B(a, b)} = \frac{b}{a - 1}
               \left[1 - \frac{\Gamma(a + b)\,\Gamma(b + 1 + h)}{\Gamma(b + 1)\,\Gamma(a + b + h)}\right],

    evaluated with ``expm1`` so that short horizons keep their precision. Near ``a = 1`` the
    formula is a 0/0 limit whose rounding error grows like ``1e-16 / |a - 1|``; within
    ``1e-5`` of 1 the value is interpolated linearly between ``a = 1 - 1e-5`` and
    ``a = 1 + 1e-5`` (error about 1e-10 relative).

    Parameters
    ----------
    a : float
        First shape parameter of the dropout probability (the same for every customer).
    b : array_like
        Second shape parameter (per customer: it grows with the opportunities survived).
    horizon : array_like
        Number of future opportunities, ``>= 0``.

    Returns
    -------
    numpy.ndarray
        The expected number of opportunities survived.

    References
    ----------
    Fader, Hardie & Shang (2010), "Customer-Base Analysis in a Discrete-Time Noncontractual
    Setting", Marketing Science 29(6), eqs. (8) and (13).

    Examples
    --------
    >>> round(float(expected_survivals(2.0, 3.0, 4)), 6)  # 3/5 + 3/5*4/6 + ... = 1.5
    1.5
    """
    a_minus = float(a) - 1.0
    b, h = _floats(b, horizon)
    if abs(a_minus) < _A_NEAR_ONE:
        below = _expected_survivals(-_A_NEAR_ONE, b, h)
        above = _expected_survivals(_A_NEAR_ONE, b, h)
        return below + (a_minus + _A_NEAR_ONE) / (2.0 * _A_NEAR_ONE) * (above - below)
    return _expected_survivals(a_minus, b, h)


def _expected_survivals(a_minus: float, b: FloatArray, h: FloatArray) -> FloatArray:
    log_ratio = (
        gammaln(a_minus + 1.0 + b)
        - gammaln(b + 1.0)
        + gammaln(b + 1.0 + h)
        - gammaln(a_minus + 1.0 + b + h)
    )
    return -b / a_minus * np.expm1(log_ratio)


def discounted_survivals(a: float, b: Any, discount_rate: float) -> FloatArray:
    r"""``sum_{k>=1} E[(1-theta)^k] / (1 + d)^k``: survived opportunities, discounted.

    .. math::  \sum_{k \ge 1} \frac{B(a, b+k)}{B(a, b)} \frac{1}{(1+d)^k}
               = \frac{b}{(a + b)(1 + d)}\; {}_2F_1\!\left(1, b + 1; a + b + 1; \frac{1}{1+d}\right)

    With ``d = 0`` the sum is :math:`b / (a - 1)` when ``a > 1`` and infinite otherwise.

    Parameters
    ----------
    a : float
        First shape parameter.
    b : array_like
        Second shape parameter per customer.
    discount_rate : float
        Discount rate per opportunity, ``>= 0``.

    Returns
    -------
    numpy.ndarray
        The discounted expected number of future opportunities survived.

    References
    ----------
    Fader & Hardie (2010), "Customer-Base Valuation in a Contractual Setting: The Perils of
    Ignoring Heterogeneity", Marketing Science 29(1), eq. (6); Fader, Hardie & Shang (2010),
    eq. (15) (DERT).

    Examples
    --------
    >>> float(discounted_survivals(2.0, 3.0, 0.0))  # b / (a - 1)
    3.0
    """
    (b,) = _floats(b)
    a = float(a)
    if discount_rate == 0:
        if a <= 1.0:
            return np.full(b.shape, np.inf)
        return b / (a - 1.0)
    z = 1.0 / (1.0 + discount_rate)
    log_f = log_hyp2f1_unit_a(b + 1.0, a + b + 1.0, z)
    return b / (a + b) * z * np.exp(log_f)
