"""Tests of vipml.ltv._likelihoods against independent evaluations (quadrature, direct formulas)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.special import betaln, gammaln, hyp2f1
from scipy.stats import gamma as gamma_dist

from vipml.ltv import _likelihoods as lk


def _euler_integral_log(b: float, c: float, z: float) -> float:
    """log 2F1(1, b; c; z) from its Euler integral, by adaptive quadrature with Jacobi weights."""
    value, _ = quad(
        lambda w: 1.0 / (1.0 - z * w),
        0.0,
        1.0,
        weight="alg",
        wvar=(b - 1.0, c - b - 1.0),
        epsabs=0.0,
        epsrel=1e-13,
        limit=500,
    )
    return float(np.log(value) - betaln(b, c - b))


@pytest.mark.parametrize(
    ("b", "c", "z"),
    [
        (0.5, 1.7, 0.3),
        (1.6, 2.2, 0.99),
        (1.6, 2.2, 0.9999),
        (52.6, 52.9, 0.99996),
        (0.73, 1.18, 0.9995),
    ],
)
def test_log_hyp2f1_unit_a_matches_euler_integral(b: float, c: float, z: float) -> None:
    ours = float(lk.log_hyp2f1_unit_a(b, c, z))
    assert ours == pytest.approx(_euler_integral_log(b, c, z), rel=1e-10, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    b=st.floats(0.01, 2e4),
    gap=st.floats(0.01, 2e4),
    z=st.floats(0.0, 0.999),
)
def test_log_hyp2f1_unit_a_matches_scipy_where_finite(b: float, gap: float, z: float) -> None:
    reference = hyp2f1(1.0, b, b + gap, z)
    ours = float(lk.log_hyp2f1_unit_a(b, b + gap, z))
    assert np.isfinite(ours)
    assert 0.0 <= ours <= -np.log1p(-z) + 1e-12
    if np.isfinite(reference):
        assert ours == pytest.approx(np.log(reference), rel=1e-9, abs=1e-11)


@pytest.mark.parametrize(
    ("b", "c", "z"), [(10000.5, 10001.7, 0.999), (1.6, 10001.7, 0.5), (1e4, 1e4 + 0.6, 0.9)]
)
def test_log_hyp2f1_unit_a_large_parameters_match_series_and_scipy(
    b: float, c: float, z: float
) -> None:
    ours = float(lk.log_hyp2f1_unit_a(b, c, z))
    series = float(lk._log_hyp2f1_series(*(np.array([v]) for v in (1.0, b, c, z)))[0])
    assert ours == pytest.approx(series, rel=1e-11)
    reference = hyp2f1(1.0, b, c, z)  # NaN on scipy 1.17 for the first case
    if np.isfinite(reference):
        assert ours == pytest.approx(np.log(reference), rel=1e-9)


def test_log_hyp2f1_uses_euler_form_where_scipy_overflows() -> None:
    a, b, c, z = 1e4, 1e4, 1e4 + 1.5, 0.5
    assert not np.isfinite(hyp2f1(a, b, c, z))
    expected = (c - a - b) * np.log1p(-z) + np.log(hyp2f1(c - a, c - b, c, z))
    assert float(lk.log_hyp2f1(a, b, c, z)) == pytest.approx(expected, rel=1e-13)


def test_log_hyp2f1_series_fallback_agrees_with_scipy() -> None:
    rng = np.random.default_rng(3)
    a = rng.uniform(-3.0, 5.0, 300)
    b = rng.uniform(-2.0, 5.0, 300)
    c = rng.uniform(0.5, 20.0, 300)
    z = rng.uniform(0.0, 0.95, 300)
    reference = hyp2f1(a, b, c, z)
    positive = reference > 0
    series = lk._log_hyp2f1_series(a[positive], b[positive], c[positive], z[positive])
    np.testing.assert_allclose(series, np.log(reference[positive]), rtol=1e-11, atol=1e-12)


def test_log_hyp2f1_falls_back_to_series_for_large_parameters() -> None:
    rng = np.random.default_rng(4)
    a = rng.uniform(1.0, 1e4, 200)
    b = rng.uniform(0.1, 1e4, 200)
    c = a + b + rng.uniform(-50.0, 50.0, 200)
    z = rng.uniform(0.0, 0.99, 200)
    euler = c - a - b < 0
    a2, b2 = np.where(euler, c - a, a), np.where(euler, c - b, b)
    expected = np.where(euler, (c - a - b) * np.log1p(-z), 0.0) + lk._log_hyp2f1_series(
        a2, b2, c, z
    )
    ours = lk.log_hyp2f1(a, b, c, z)
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, expected, rtol=1e-12)


# --- log-likelihoods against direct evaluation of the papers' formulas -----------------------

HISTORIES = (
    np.array([0.0, 1.0, 2.0, 7.0, 3.0]),
    np.array([0.0, 5.5, 30.43, 36.0, 12.0]),
    np.array([38.86, 20.0, 38.86, 39.0, 12.0]),
)


def test_bgnbd_loglik_matches_equation_6() -> None:
    r, alpha, a, b = 0.243, 4.414, 0.793, 2.426
    x, t_x, age = HISTORIES
    beta_fn = np.exp(betaln(a, b + x) - betaln(a, b))
    gamma_part = np.exp(gammaln(r + x) - gammaln(r)) * alpha**r
    dead = np.where(x > 0, np.exp(betaln(a + 1, b + np.maximum(x, 1) - 1) - betaln(a, b)), 0.0)
    direct = gamma_part * (beta_fn / (alpha + age) ** (r + x) + dead / (alpha + t_x) ** (r + x))
    np.testing.assert_allclose(lk.bgnbd_loglik((r, alpha, a, b), x, t_x, age), np.log(direct))


def test_modified_bgnbd_loglik_matches_batislam_equation() -> None:
    r, alpha, a, b = 0.525, 6.183, 0.891, 1.614
    x, t_x, age = HISTORIES
    alive = np.exp(betaln(a, b + x + 1) - betaln(a, b))
    dead = np.exp(betaln(a + 1, b + x) - betaln(a, b))
    gamma_part = np.exp(gammaln(r + x) - gammaln(r)) * alpha**r
    direct = gamma_part * (alive / (alpha + age) ** (r + x) + dead / (alpha + t_x) ** (r + x))
    np.testing.assert_allclose(
        lk.modified_bgnbd_loglik((r, alpha, a, b), x, t_x, age), np.log(direct)
    )


def _pareto_loglik_by_quadrature(
    params: tuple[float, ...], x: float, t_x: float, age: float
) -> float:
    """Pareto/NBD log-likelihood with the death time integrated numerically (no 2F1 at all).

    L = C [(a+T)^-(r+x) (b+T)^-s + s int_{t_x}^{T} (a+y)^-(r+x) (b+y)^-(s+1) dy]; the integrand
    is scaled by its value at y = t_x (its maximum) so nothing overflows.
    """
    r, alpha, s, beta = params
    log_c = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)

    def log_integrand(y: float) -> float:
        return -(r + x) * np.log(alpha + y) - (s + 1.0) * np.log(beta + y)

    peak = log_integrand(t_x)
    # the integrand decays on the scale (alpha + t_x) / (r + x): integrate piece by piece
    width = (alpha + t_x) / (r + x + s + 1.0)
    edges = np.unique(np.minimum(age, t_x + width * np.array([0.0, 1.0, 10.0, 1e2, 1e3, 1e4, 1e8])))
    scaled = sum(
        quad(
            lambda y: np.exp(log_integrand(y) - peak), lo, hi, epsabs=0.0, epsrel=1e-11, limit=500
        )[0]
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    )
    log_alive = -(r + x) * np.log(alpha + age) - s * np.log(beta + age)
    return float(log_c + np.logaddexp(log_alive, np.log(s) + peak + np.log(scaled)))


@pytest.mark.parametrize(
    ("x", "t_x", "age"),
    [
        (0.0, 0.0, 38.86),
        (2.0, 30.43, 38.86),
        (7.0, 3.0, 39.0),
        (1e4, 9999.0, 1e4),
        (1e4, 9990.0, 1e4),
        (300.0, 50.0, 1e4),
    ],
)
@pytest.mark.parametrize(
    "params",
    [(0.553, 10.578, 0.606, 11.669), (0.553, 11.669, 0.606, 10.578), (2.0, 0.5, 1.5, 40.0)],
)
def test_pareto_nbd_loglik_matches_quadrature(
    params: tuple[float, ...], x: float, t_x: float, age: float
) -> None:
    ours = float(lk.pareto_nbd_loglik(params, [x], [t_x], [age])[0])
    assert ours == pytest.approx(_pareto_loglik_by_quadrature(params, x, t_x, age), rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    x=st.integers(0, 10_000),
    age=st.floats(0.0, 1e4),
    share=st.floats(0.0, 1.0),
    log_params=st.tuples(*(st.floats(-3.0, 3.0) for _ in range(4))),
)
def test_pareto_nbd_loglik_is_finite_for_heavy_buyers(
    x: int, age: float, share: float, log_params: tuple[float, ...]
) -> None:
    t_x = 0.0 if x == 0 else share * age
    params = tuple(np.exp(log_params))
    ll = lk.pareto_nbd_loglik(params, [float(x)], [t_x], [age])
    log_a0 = lk.pareto_nbd_log_a0(params, [float(x)], [t_x], [age])
    assert np.isfinite(ll[0])
    # -inf only when no time is left to die in (t_x == T up to rounding)
    assert np.isfinite(log_a0[0]) or (log_a0[0] == -np.inf and np.isclose(t_x, age))


def test_gamma_gamma_density_integrates_to_one() -> None:
    params = (6.25, 3.74, 15.44)
    for x in (1.0, 2.0, 7.0):
        total, _ = quad(
            lambda m, x=x: np.exp(lk.gamma_gamma_loglik(params, [x], [m])[0]), 0.0, np.inf
        )
        assert total == pytest.approx(1.0, rel=1e-8)


def test_gamma_gamma_loglik_is_a_gamma_mixture() -> None:
    """For x = 1 the mean spend is Gamma(p, nu) with nu ~ Gamma(q, v): check by quadrature."""
    p, q, v = 6.25, 3.74, 15.44
    m = 22.35
    mixture, _ = quad(
        lambda nu: gamma_dist.pdf(m, p, scale=1.0 / nu) * gamma_dist.pdf(nu, q, scale=1.0 / v),
        0.0,
        np.inf,
        epsabs=0.0,
        epsrel=1e-11,
    )
    assert float(lk.gamma_gamma_loglik((p, q, v), [1.0], [m])[0]) == pytest.approx(
        np.log(mixture), rel=1e-9
    )


# --- analytic gradients against central differences ------------------------------------------

GRADIENT_CASES = [
    (lk.bgnbd_loglik, lk.bgnbd_loglik_grad, (0.243, 4.414, 0.793, 2.426), HISTORIES),
    (lk.bgnbd_loglik, lk.bgnbd_loglik_grad, (3.0, 0.7, 2.5, 0.4), HISTORIES),
    (
        lk.modified_bgnbd_loglik,
        lk.modified_bgnbd_loglik_grad,
        (0.525, 6.183, 0.891, 1.614),
        HISTORIES,
    ),
    (lk.modified_bgnbd_loglik, lk.modified_bgnbd_loglik_grad, (2.0, 1.5, 0.3, 5.0), HISTORIES),
    (
        lk.gamma_gamma_loglik,
        lk.gamma_gamma_loglik_grad,
        (6.25, 3.74, 15.44),
        (np.array([1.0, 2.0, 7.0, 40.0]), np.array([22.35, 5.0, 80.0, 33.0])),
    ),
]


@pytest.mark.parametrize(("loglik", "loglik_grad", "params", "data"), GRADIENT_CASES)
def test_analytic_gradient_matches_central_differences(loglik, loglik_grad, params, data) -> None:
    theta = np.asarray(params, dtype=np.float64)
    ll, grad = loglik_grad(theta, *data)
    np.testing.assert_allclose(ll, loglik(theta, *data), rtol=1e-14)
    for j in range(theta.size):
        step = 1e-6 * theta[j]
        up, down = theta.copy(), theta.copy()
        up[j] += step
        down[j] -= step
        numeric = (loglik(up, *data) - loglik(down, *data)) / (2.0 * step)
        np.testing.assert_allclose(grad[:, j], numeric, rtol=2e-6, atol=1e-7)


# --- grouped totals used by the fits ----------------------------------------------------------


@pytest.mark.parametrize(
    ("total_class", "loglik_grad", "modified"),
    [
        (lk.BGFamilyTotal, lk.bgnbd_loglik_grad, False),
        (lk.BGFamilyTotal, lk.modified_bgnbd_loglik_grad, True),
    ],
)
@pytest.mark.parametrize("params", [(0.243, 4.414, 0.793, 2.426), (3.0, 0.7, 2.5, 0.4)])
def test_bg_family_total_equals_weighted_row_sum(
    total_class, loglik_grad, modified, params
) -> None:
    rng = np.random.default_rng(8)
    x = rng.integers(0, 40, 3000).astype(float)
    age = np.round(rng.uniform(0.0, 60.0, 3000), 1)
    rec = np.where(x > 0, np.round(rng.uniform(0.0, 1.0, 3000) * age, 1), 0.0)
    w = rng.uniform(0.0, 3.0, 3000)
    total = total_class(x, rec, age, w, modified=modified)
    ll, grad = loglik_grad(params, x, rec, age)
    value, total_grad = total.value_and_grad(params)
    assert value == pytest.approx(float(w @ ll), rel=1e-12)
    assert total.value(params) == value
    np.testing.assert_allclose(total_grad, w @ grad, rtol=1e-10)


def test_gamma_gamma_total_equals_weighted_row_sum() -> None:
    rng = np.random.default_rng(9)
    x = rng.integers(1, 40, 3000).astype(float)
    m = rng.gamma(4.0, 10.0, 3000)
    w = rng.uniform(0.0, 3.0, 3000)
    params = (6.25, 3.74, 15.44)
    total = lk.GammaGammaTotal(x, m, w)
    ll, grad = lk.gamma_gamma_loglik_grad(params, x, m)
    value, total_grad = total.value_and_grad(params)
    assert value == pytest.approx(float(w @ ll), rel=1e-12)
    assert total.value(params) == value
    np.testing.assert_allclose(total_grad, w @ grad, rtol=1e-10)
