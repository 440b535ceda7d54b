"""Tests of the shared maximum-likelihood machinery (vipml.ltv._mle)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vipml.errors import ConvergenceError, ModelAssumptionWarning
from vipml.ltv import _likelihoods as lk
from vipml.ltv._mle import _inverse_hessian, collapse_rows, draw_log_normal, fit_mle


@pytest.fixture(scope="module")
def bg_rows(simulate_bg, ages):
    """A BG/NBD sample on a daily grid: many identical rows."""
    rfm = simulate_bg(ages(3000, 11), 0.3, 5.0, 0.8, 2.5, np.random.default_rng(12))
    rec = np.round(rfm["recency"].to_numpy() * 7.0) / 7.0
    return rfm["frequency"].to_numpy(), rec, rfm["T"].to_numpy()


def _fit(data, weights=None, *, collapse=True, penalizer=0.0, max_iter=500, grad=True):
    return fit_mle(
        loglik=lk.bgnbd_loglik,
        loglik_grad=lk.bgnbd_loglik_grad if grad else None,
        data=data,
        weights=weights,
        initial_params=lambda rows, w: (1.0, float(np.average(rows[2], weights=w)), 1.0, 1.0),
        param_names=("r", "alpha", "a", "b"),
        penalizer=penalizer,
        tol=1e-8,
        max_iter=max_iter,
        model_name="BG/NBD",
        collapse=collapse,
    )


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(np.int64, st.integers(1, 60), elements=st.integers(0, 3)),
    st.integers(1, 3),
)
def test_collapse_rows_round_trips(values: np.ndarray, n_cols: int) -> None:
    rng = np.random.default_rng(values.size)
    cols = [values.astype(float)] + [
        rng.integers(0, 2, values.size).astype(float) for _ in range(n_cols - 1)
    ]
    weights = rng.uniform(0.0, 2.0, values.size)
    unique, summed, inverse = collapse_rows(cols, weights)
    for original, u in zip(cols, unique, strict=True):
        np.testing.assert_array_equal(u[inverse], original)
    np.testing.assert_allclose(summed.sum(), weights.sum())
    np.testing.assert_allclose(summed, np.bincount(inverse, weights=weights))
    keys = list(zip(*unique, strict=True))
    assert len(set(keys)) == len(keys) and keys == sorted(keys)


def test_collapsed_fit_has_the_same_optimum(bg_rows) -> None:
    _, summed, _ = collapse_rows(bg_rows)
    assert summed.size < 0.7 * bg_rows[0].size  # the grid really has duplicates
    collapsed = _fit(bg_rows, collapse=True)
    plain = _fit(bg_rows, collapse=False)
    np.testing.assert_allclose(collapsed.params, plain.params, rtol=1e-6)
    assert collapsed.loglik == pytest.approx(plain.loglik, rel=1e-12)
    np.testing.assert_allclose(collapsed.covariance, plain.covariance, rtol=1e-4)


def test_integer_weights_equal_repeated_rows(bg_rows) -> None:
    x, rec, age = bg_rows
    counts = np.random.default_rng(5).integers(1, 4, x.size)
    repeated = tuple(np.repeat(c, counts) for c in bg_rows)
    by_weight = _fit(bg_rows, counts)
    by_rows = _fit(repeated)
    # the collapsed tables and their weights are identical, so the fits are identical
    np.testing.assert_array_equal(by_weight.params, by_rows.params)
    assert by_weight.loglik == by_rows.loglik


def test_zero_weights_drop_rows(bg_rows) -> None:
    weights = np.ones(bg_rows[0].size)
    weights[::2] = 0.0
    dropped = _fit(bg_rows, weights, collapse=False)
    kept = _fit(tuple(c[1::2] for c in bg_rows), collapse=False)
    np.testing.assert_allclose(dropped.params, kept.params, rtol=1e-8)


def test_covariance_is_inverse_hessian_on_natural_scale(bg_rows) -> None:
    result = _fit(bg_rows)
    theta = result.params
    # the delta method from the log scale: Cov = J Sigma_log J with J = diag(theta)
    np.testing.assert_allclose(
        result.covariance, theta[:, None] * result.log_covariance * theta[None, :]
    )
    # the natural-scale Hessian of the total NLL at the optimum, by central differences
    data = bg_rows
    k = theta.size
    hess = np.empty((k, k))
    for j in range(k):
        step = 1e-5 * theta[j]
        up, down = theta.copy(), theta.copy()
        up[j] += step
        down[j] -= step
        g_up = lk.bgnbd_loglik_grad(up, *data)[1].sum(axis=0)
        g_down = lk.bgnbd_loglik_grad(down, *data)[1].sum(axis=0)
        hess[:, j] = -(g_up - g_down) / (2.0 * step)
    np.testing.assert_allclose(result.covariance, np.linalg.inv(hess), rtol=1e-4)


def test_numerical_gradient_path_reaches_the_same_optimum(bg_rows) -> None:
    analytic = _fit(bg_rows)
    numeric = _fit(bg_rows, grad=False)
    np.testing.assert_allclose(numeric.params, analytic.params, rtol=1e-5)
    np.testing.assert_allclose(numeric.covariance, analytic.covariance, rtol=1e-3)


def test_penalizer_shrinks_log_parameters(bg_rows) -> None:
    norms = [
        float(np.sum(np.log(_fit(bg_rows, penalizer=c).params) ** 2)) for c in (0.0, 0.01, 0.1)
    ]
    assert norms[0] > norms[1] > norms[2]


def test_failed_optimisation_raises_a_helpful_convergence_error(bg_rows) -> None:
    with pytest.raises(ConvergenceError) as info:
        _fit(bg_rows, max_iter=1)
    message = str(info.value)
    for hint in ("BG/NBD", "max_iter=1", "penalizer", "weeks", "Maximum number of iterations"):
        assert hint in message


def test_non_positive_definite_hessian_warns_and_gives_nan() -> None:
    with pytest.warns(ModelAssumptionWarning, match="not positive definite"):
        cov = _inverse_hessian(np.array([[1.0, 0.0], [0.0, -1.0]]), "BG/NBD", ("r", "alpha"))
    assert np.isnan(cov).all()
    with pytest.raises(ConvergenceError, match="penalizer"):
        draw_log_normal([1.0, 2.0], cov, 10, random_state=0)


def test_draws_are_seeded_log_normal() -> None:
    theta = np.array([0.5, 4.0, 2.0])
    log_cov = np.array([[0.04, 0.01, 0.0], [0.01, 0.09, 0.02], [0.0, 0.02, 0.01]])
    cov = theta[:, None] * log_cov * theta[None, :]
    first = draw_log_normal(theta, cov, 20_000, random_state=7)
    np.testing.assert_array_equal(first, draw_log_normal(theta, cov, 20_000, random_state=7))
    assert not np.array_equal(first, draw_log_normal(theta, cov, 20_000, random_state=8))
    assert (first > 0).all()
    logs = np.log(first)
    np.testing.assert_allclose(logs.mean(axis=0), np.log(theta), atol=0.01)
    np.testing.assert_allclose(np.cov(logs.T), log_cov, atol=0.004)


def test_collapse_rows_sorting_fallback_agrees(bg_rows, monkeypatch) -> None:
    fast = collapse_rows(bg_rows)
    monkeypatch.setattr("vipml.ltv._mle._MAX_KEY", 1.0)
    slow = collapse_rows(bg_rows)
    for a, b in zip(fast[0], slow[0], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fast[1], slow[1])
    np.testing.assert_array_equal(fast[2], slow[2])


def test_collapse_rows_does_not_depend_on_row_order(bg_rows) -> None:
    order = np.random.default_rng(3).permutation(bg_rows[0].size)
    first = collapse_rows(bg_rows)
    shuffled = collapse_rows([c[order] for c in bg_rows])
    for a, b in zip(first[0], shuffled[0], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first[1], shuffled[1])
    np.testing.assert_array_equal(first[2][order], shuffled[2])
