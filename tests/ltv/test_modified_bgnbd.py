"""Tests of vipml.ltv.modified_bgnbd.ModifiedBetaGeo."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vipml.errors import ConvergenceError, NotFittedError
from vipml.ltv import BetaGeo, ModifiedBetaGeo

TRUTH = {"r": 0.5, "alpha": 6.0, "a": 0.9, "b": 1.6}


@pytest.fixture(scope="module")
def rfm(simulate_bg, ages) -> pd.DataFrame:
    frame = simulate_bg(ages(10_000, 21), *TRUTH.values(), np.random.default_rng(22), modified=True)
    frame["recency"] = np.round(frame["recency"] * 7.0) / 7.0
    return frame


@pytest.fixture(scope="module")
def model(rfm: pd.DataFrame) -> ModifiedBetaGeo:
    return ModifiedBetaGeo().fit(rfm)


def histories(max_frequency: int = 60, max_age: float = 200.0):
    customer = st.tuples(
        st.integers(0, max_frequency), st.floats(0.0, max_age), st.floats(0.0, 1.0)
    )

    def build(rows: list[tuple[int, float, float]]) -> pd.DataFrame:
        x = np.array([r[0] for r in rows], dtype=float)
        age = np.array([r[1] for r in rows])
        rec = np.where(x > 0, np.array([r[2] for r in rows]) * age, 0.0)
        return pd.DataFrame({"frequency": x, "recency": rec, "T": age})

    return st.lists(customer, min_size=1, max_size=15).map(build)


@pytest.mark.parametrize(("n", "seed"), [(2000, 23), (10_000, 24)])
def test_recovers_parameters_within_three_standard_errors(simulate_bg, ages, n, seed) -> None:
    frame = simulate_bg(ages(n, seed), *TRUTH.values(), np.random.default_rng(seed), modified=True)
    fitted = ModifiedBetaGeo().fit(frame)
    z = (pd.Series(fitted.params_) - pd.Series(TRUTH)) / fitted.standard_errors_
    assert (z.abs() < 3.0).all(), z


def test_weighted_collapsed_fit_equals_plain_fit(model, rfm) -> None:
    grouped = rfm.groupby(["frequency", "recency", "T"]).size().rename("count").reset_index()
    collapsed = ModifiedBetaGeo().fit(grouped.drop(columns="count"), weights=grouped["count"])
    assert collapsed.params_ == model.params_
    assert collapsed.loglik_ == model.loglik_


def test_fit_is_deterministic_and_pickles(model, rfm) -> None:
    again = ModifiedBetaGeo().fit(rfm)
    assert again.params_ == model.params_
    np.testing.assert_array_equal(again.covariance_.to_numpy(), model.covariance_.to_numpy())
    restored = pickle.loads(pickle.dumps(model))
    pd.testing.assert_series_equal(restored.p_alive(rfm), model.p_alive(rfm))
    assert len(pickle.dumps(model)) < 5_000


def test_not_fitted_and_convergence_errors(rfm) -> None:
    with pytest.raises(NotFittedError):
        ModifiedBetaGeo().p_alive(rfm)
    with pytest.raises(NotFittedError):
        ModifiedBetaGeo().expected_purchases_interval(rfm, 10)
    with pytest.raises(ConvergenceError, match="MBG/NBD.*max_iter=1"):
        ModifiedBetaGeo(max_iter=1).fit(rfm)


def test_zero_frequency_customers_may_have_dropped_out(model) -> None:
    r, alpha, a, b = model.params_.values()
    frame = pd.DataFrame({"frequency": [0.0, 0.0], "recency": [0.0, 0.0], "T": [0.0, 20.0]})
    p_alive = model.p_alive(frame).to_numpy()
    # at T = 0 only the coin at the first purchase counts: P(alive) = b / (a + b)
    assert p_alive[0] == pytest.approx(b / (a + b), rel=1e-12)
    assert 0.0 < p_alive[1] < p_alive[0]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=histories(), horizons=st.lists(st.floats(0.0, 100.0), min_size=2, max_size=4))
def test_prediction_invariants(model, frame: pd.DataFrame, horizons: list[float]) -> None:
    p_alive = model.p_alive(frame)
    assert ((p_alive >= 0) & (p_alive <= 1)).all()
    expected = [model.expected_purchases(frame, h).to_numpy() for h in sorted(horizons)]
    assert all(np.isfinite(e).all() and (e >= 0).all() for e in expected)
    for shorter, longer in zip(expected[:-1], expected[1:], strict=True):
        assert (longer >= shorter * (1 - 1e-12)).all()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=histories(max_frequency=25, max_age=100.0), horizon=st.floats(0.0, 30.0))
def test_pmf_sums_to_one_and_its_mean_is_the_expectation(model, frame, horizon) -> None:
    x, rec, age = (frame[c].to_numpy() for c in ("frequency", "recency", "T"))
    expected = ModifiedBetaGeo._expected_purchases_at(model.params_, x, rec, age, horizon)
    # Sum until the tail's contribution to the mean is negligible: the tail is heavy for
    # customers with many purchases in a short T.
    terms = []
    for n in range(100_000):
        terms.append(
            ModifiedBetaGeo._probability_of_purchases_at(model.params_, x, rec, age, n, horizon)
        )
        if n > 2 * expected.max() + 20 and (n * terms[-1]).max() < 1e-13:
            break
    pmf = np.stack(terms)
    n_max = len(terms)
    np.testing.assert_allclose(pmf.sum(axis=0), 1.0, atol=1e-8)
    np.testing.assert_allclose(np.arange(n_max) @ pmf, expected, rtol=1e-6, atol=1e-9)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=histories(), horizon=st.floats(0.0, 60.0))
def test_interval_contains_the_estimate(model, frame, horizon) -> None:
    out = model.expected_purchases_interval(frame, horizon, n_draws=40, random_state=2)
    assert ((out["lower"] <= out["estimate"]) & (out["estimate"] <= out["upper"])).all()


def test_new_customer_expectation_matches_simulation(simulate_bg) -> None:
    horizon = 25.0
    sims = simulate_bg(
        np.full(200_000, horizon), *TRUTH.values(), np.random.default_rng(25), modified=True
    )
    expected = ModifiedBetaGeo._expected_purchases_at(TRUTH, 0.0, 0.0, 0.0, horizon)
    counts = sims["frequency"]
    assert abs(counts.mean() - expected) < 4.0 * counts.std() / np.sqrt(len(counts))


def test_differs_from_bgnbd_only_through_the_first_dropout(model, rfm) -> None:
    bg = BetaGeo().fit(rfm)
    assert model.loglik_ != bg.loglik_
    # with a -> 0 nobody drops out and both models reduce to the NBD
    params = {"r": 0.5, "alpha": 6.0, "a": 1e-9, "b": 1.6}
    head = rfm.head(50)
    cols = [head[c].to_numpy() for c in ("frequency", "recency", "T")]
    np.testing.assert_allclose(
        ModifiedBetaGeo._expected_purchases_at(params, *cols, 10.0),
        BetaGeo._expected_purchases_at(params, *cols, 10.0),
        rtol=1e-6,
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=histories(max_frequency=10_000, max_age=1e4), n=st.integers(0, 50))
def test_heavy_buyers_stay_finite_and_in_range(model, frame: pd.DataFrame, n: int) -> None:
    p_alive = model.p_alive(frame)
    expected = model.expected_purchases(frame, 39.0)
    pmf = model.probability_of_purchases(frame, n, 39.0)
    for values in (p_alive, pmf):
        assert np.isfinite(values).all() and ((values >= 0) & (values <= 1)).all()
    assert np.isfinite(expected).all() and (expected >= 0).all()
    # an alive customer buys at most at the posterior rate (r + x) / (alpha + T)
    rate = (model.params_["r"] + frame["frequency"]) / (model.params_["alpha"] + frame["T"])
    assert (expected <= rate * 39.0 * (1 + 1e-9) + 1e-12).all()


def test_fit_with_heavy_buyers(rfm: pd.DataFrame) -> None:
    heavy = pd.DataFrame(
        {"frequency": [1e4, 5e3, 1e4], "recency": [9990.0, 100.0, 1e4], "T": [1e4, 1e4, 1e4]},
        index=pd.Index([-1, -2, -3], name="customer_id"),
    )
    fitted = ModifiedBetaGeo().fit(pd.concat([rfm, heavy]))
    assert fitted.converged_ and np.isfinite(fitted.loglik_)
    assert np.isfinite(fitted.standard_errors_).all()
