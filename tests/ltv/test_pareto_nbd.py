"""Tests of vipml.ltv.pareto_nbd.ParetoNBD."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vipml.errors import ConvergenceError, NotFittedError
from vipml.ltv import ParetoNBD

TRUTH = {"r": 0.55, "alpha": 10.5, "s": 0.6, "beta": 11.7}


@pytest.fixture(scope="module")
def rfm(simulate_pareto, ages) -> pd.DataFrame:
    frame = simulate_pareto(ages(5000, 31), *TRUTH.values(), np.random.default_rng(32))
    frame["recency"] = np.round(frame["recency"] * 7.0) / 7.0
    return frame


@pytest.fixture(scope="module")
def model(rfm: pd.DataFrame) -> ParetoNBD:
    return ParetoNBD().fit(rfm)


def histories(max_frequency: int = 60, max_age: float = 200.0, max_size: int = 15):
    customer = st.tuples(
        st.integers(0, max_frequency), st.floats(0.0, max_age), st.floats(0.0, 1.0)
    )

    def build(rows: list[tuple[int, float, float]]) -> pd.DataFrame:
        x = np.array([r[0] for r in rows], dtype=float)
        age = np.array([r[1] for r in rows])
        rec = np.where(x > 0, np.array([r[2] for r in rows]) * age, 0.0)
        return pd.DataFrame({"frequency": x, "recency": rec, "T": age})

    return st.lists(customer, min_size=1, max_size=max_size).map(build)


@pytest.mark.parametrize(("n", "seed", "data"), [(2000, 33, None), (5000, None, "rfm")])
def test_recovers_parameters_within_three_standard_errors(
    simulate_pareto, ages, request, n, seed, data
) -> None:
    if data is None:
        frame = simulate_pareto(ages(n, seed), *TRUTH.values(), np.random.default_rng(seed))
        fitted = ParetoNBD().fit(frame)
    else:
        fitted = request.getfixturevalue("model")
    z = (pd.Series(fitted.params_) - pd.Series(TRUTH)) / fitted.standard_errors_
    assert (z.abs() < 3.0).all(), z


def test_weighted_collapsed_fit_equals_plain_fit(model, rfm) -> None:
    grouped = rfm.groupby(["frequency", "recency", "T"]).size().rename("count").reset_index()
    assert len(grouped) < 0.8 * len(rfm)
    collapsed = ParetoNBD().fit(grouped.drop(columns="count"), weights=grouped["count"])
    assert collapsed.params_ == model.params_
    assert collapsed.loglik_ == model.loglik_


def test_fit_is_deterministic_and_pickles(model, rfm) -> None:
    again = ParetoNBD().fit(rfm)
    assert again.params_ == model.params_
    restored = pickle.loads(pickle.dumps(model))
    pd.testing.assert_series_equal(restored.p_alive(rfm), model.p_alive(rfm))
    assert len(pickle.dumps(model)) < 5_000


def test_not_fitted_and_convergence_errors(rfm) -> None:
    with pytest.raises(NotFittedError):
        ParetoNBD().expected_purchases(rfm, 10)
    with pytest.raises(ConvergenceError, match="Pareto/NBD.*max_iter=1"):
        ParetoNBD(max_iter=1).fit(rfm)


def test_heavy_buyers_stay_finite_and_in_range(model) -> None:
    frame = pd.DataFrame(
        {
            "frequency": [1e4, 1e4, 1e4, 5e3, 0.0],
            "recency": [1.0, 9999.0, 5000.0, 1e4, 0.0],
            "T": [1e4, 1e4, 1e4, 1e4, 1e4],
        }
    )
    p_alive = model.p_alive(frame).to_numpy()
    expected = model.expected_purchases(frame, 39).to_numpy()
    assert np.isfinite(p_alive).all() and ((p_alive >= 0) & (p_alive <= 1)).all()
    assert np.isfinite(expected).all() and (expected >= 0).all()
    # bought 1e4 times in the first week and never since: gone; still buying at 1e4: alive
    assert p_alive[0] < 1e-12 and p_alive[1] > 0.99 and p_alive[3] > 0.99
    r, alpha = model.params_["r"], model.params_["alpha"]
    rate = (r + 1e4) / (alpha + 1e4)
    assert expected[1] == pytest.approx(p_alive[1] * rate * 39, rel=0.01)
    pmf = model.probability_of_purchases(frame, 39, 39).to_numpy()
    assert np.isfinite(pmf).all() and ((pmf >= 0) & (pmf <= 1)).all()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=histories(), horizons=st.lists(st.floats(0.0, 100.0), min_size=2, max_size=4))
def test_prediction_invariants(model, frame: pd.DataFrame, horizons: list[float]) -> None:
    p_alive = model.p_alive(frame)
    assert ((p_alive >= 0) & (p_alive <= 1)).all()
    expected = [model.expected_purchases(frame, h).to_numpy() for h in sorted(horizons)]
    assert all(np.isfinite(e).all() and (e >= 0).all() for e in expected)
    for shorter, longer in zip(expected[:-1], expected[1:], strict=True):
        assert (longer >= shorter * (1 - 1e-12)).all()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=histories(max_frequency=10, max_age=60.0, max_size=5), horizon=st.floats(0.0, 10.0))
def test_pmf_sums_to_one_and_its_mean_is_the_expectation(model, frame, horizon) -> None:
    x, rec, age = (frame[c].to_numpy() for c in ("frequency", "recency", "T"))
    expected = ParetoNBD._expected_purchases_at(model.params_, x, rec, age, horizon)
    # Sum until the tail's contribution to the mean is negligible: the tail is heavy for
    # customers with many purchases in a short T.
    terms = []
    for n in range(100_000):
        terms.append(ParetoNBD._probability_of_purchases_at(model.params_, x, rec, age, n, horizon))
        if n > 2 * expected.max() + 20 and (n * terms[-1]).max() < 1e-13:
            break
    pmf = np.stack(terms)
    n_max = len(terms)
    np.testing.assert_allclose(pmf.sum(axis=0), 1.0, atol=1e-8)
    np.testing.assert_allclose(np.arange(n_max) @ pmf, expected, rtol=1e-6, atol=1e-9)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=histories(), horizon=st.floats(0.0, 60.0))
def test_interval_contains_the_estimate(model, frame, horizon) -> None:
    out = model.expected_purchases_interval(frame, horizon, n_draws=40, random_state=3)
    assert ((out["lower"] <= out["estimate"]) & (out["estimate"] <= out["upper"])).all()


def test_new_customer_expectation_matches_simulation(simulate_pareto) -> None:
    horizon = 40.0
    sims = simulate_pareto(np.full(200_000, horizon), *TRUTH.values(), np.random.default_rng(34))
    expected = ParetoNBD._expected_purchases_at(TRUTH, 0.0, 0.0, 0.0, horizon)
    counts = sims["frequency"]
    assert abs(counts.mean() - expected) < 4.0 * counts.std() / np.sqrt(len(counts))


@pytest.mark.parametrize(("name", "value"), [("s", 1.0), ("alpha", 11.7)])
def test_removable_singularities_are_continuous(name: str, value: float) -> None:
    """s = 1 (a 0/0 in the expectation) and alpha = beta (z = 0 in 2F1) give the limits."""
    cols = (np.array([0.0, 3.0, 12.0]), np.array([0.0, 10.0, 30.0]), np.array([20.0, 35.0, 31.0]))
    at = dict(TRUTH, **{name: value})
    near = dict(TRUTH, **{name: value * (1 + 1e-7)})
    np.testing.assert_allclose(
        ParetoNBD._expected_purchases_at(at, *cols, 30.0),
        ParetoNBD._expected_purchases_at(near, *cols, 30.0),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        ParetoNBD._p_alive_at(at, *cols), ParetoNBD._p_alive_at(near, *cols), rtol=1e-5
    )
