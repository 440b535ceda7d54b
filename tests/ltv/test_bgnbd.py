"""Tests of vipml.ltv.bgnbd.BetaGeo (and the shared input validation)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.stats import gamma as gamma_dist
from sklearn.base import clone

from vipml.errors import ConvergenceError, DataValidationError, NotFittedError
from vipml.ltv import BetaGeo

TRUTH = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}


@pytest.fixture(scope="module")
def rfm(simulate_bg, ages) -> pd.DataFrame:
    """10,000 simulated customers; recency on the same daily grid as T, so rows repeat."""
    frame = simulate_bg(ages(10_000, 1), *TRUTH.values(), np.random.default_rng(2))
    frame["recency"] = np.round(frame["recency"] * 7.0) / 7.0
    return frame


@pytest.fixture(scope="module")
def model(rfm: pd.DataFrame) -> BetaGeo:
    return BetaGeo().fit(rfm)


def histories(max_frequency: int = 60, max_age: float = 200.0):
    """Strategy: a small frame of valid customer histories."""
    customer = st.tuples(
        st.integers(0, max_frequency), st.floats(0.0, max_age), st.floats(0.0, 1.0)
    )

    def build(rows: list[tuple[int, float, float]]) -> pd.DataFrame:
        x = np.array([r[0] for r in rows], dtype=float)
        age = np.array([r[1] for r in rows])
        rec = np.where(x > 0, np.array([r[2] for r in rows]) * age, 0.0)
        return pd.DataFrame({"frequency": x, "recency": rec, "T": age})

    return st.lists(customer, min_size=1, max_size=15).map(build)


# --- fitting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "seed"), [(2000, 3), (10_000, 4)])
def test_recovers_parameters_within_three_standard_errors(simulate_bg, ages, n, seed) -> None:
    frame = simulate_bg(ages(n, seed), *TRUTH.values(), np.random.default_rng(seed + 100))
    fitted = BetaGeo().fit(frame)
    assert fitted.converged_
    z = (pd.Series(fitted.params_) - pd.Series(TRUTH)) / fitted.standard_errors_
    assert (z.abs() < 3.0).all(), z


def test_fitted_attributes(model: BetaGeo, rfm: pd.DataFrame) -> None:
    assert list(model.params_) == ["r", "alpha", "a", "b"]
    assert all(isinstance(v, float) for v in model.params_.values())
    assert model.n_customers_ == len(rfm)
    assert model.covariance_.index.tolist() == ["r", "alpha", "a", "b"]
    np.testing.assert_allclose(model.standard_errors_, np.sqrt(np.diag(model.covariance_)))
    ll = BetaGeo._loglik(
        tuple(model.params_.values()), *(rfm[c] for c in ("frequency", "recency", "T"))
    )
    assert model.loglik_ == pytest.approx(float(np.sum(ll)), rel=1e-12)
    assert isinstance(model.vipml_version_, str)


def test_weighted_collapsed_fit_equals_plain_fit(model: BetaGeo, rfm: pd.DataFrame) -> None:
    grouped = rfm.groupby(["frequency", "recency", "T"]).size().rename("count").reset_index()
    assert len(grouped) < 0.8 * len(rfm)
    collapsed = BetaGeo().fit(grouped.drop(columns="count"), weights=grouped["count"])
    assert collapsed.params_ == model.params_
    assert collapsed.loglik_ == model.loglik_
    assert collapsed.n_customers_ == len(rfm)


def test_fit_is_deterministic(model: BetaGeo, rfm: pd.DataFrame) -> None:
    again = BetaGeo().fit(rfm)
    assert again.params_ == model.params_
    np.testing.assert_array_equal(again.covariance_.to_numpy(), model.covariance_.to_numpy())
    shuffled = BetaGeo().fit(rfm.sample(frac=1.0, random_state=0))
    assert shuffled.params_ == model.params_  # row order does not matter either


def test_pickle_round_trip_keeps_no_data(model: BetaGeo, rfm: pd.DataFrame) -> None:
    blob = pickle.dumps(model)
    assert len(blob) < 5_000
    restored = pickle.loads(blob)
    pd.testing.assert_series_equal(
        restored.expected_purchases(rfm.head(50), 39), model.expected_purchases(rfm.head(50), 39)
    )
    assert not any(callable(v) for v in vars(model).values())


def test_sklearn_parameters(model: BetaGeo) -> None:
    est = BetaGeo(penalizer=0.1, tol=1e-6, max_iter=50)
    assert est.get_params() == {
        "penalizer": 0.1,
        "penalizer_kind": "log",
        "purchase_covariates": (),
        "dropout_covariates": (),
        "tol": 1e-6,
        "max_iter": 50,
    }
    assert clone(model).get_params() == BetaGeo().get_params()
    assert not hasattr(clone(model), "params_")
    with pytest.raises(TypeError):
        BetaGeo(0.1)  # keyword-only


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"penalizer": -1.0}, "penalizer"), ({"tol": 0.0}, "tol"), ({"max_iter": 0}, "max_iter")],
)
def test_invalid_settings(kwargs, match, rfm: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=match):
        BetaGeo(**kwargs).fit(rfm)


def test_not_fitted_error(rfm: pd.DataFrame) -> None:
    model = BetaGeo()
    calls = [
        lambda: model.expected_purchases(rfm, 10),
        lambda: model.p_alive(rfm),
        lambda: model.probability_of_purchases(rfm, 1, 10),
        lambda: model.expected_purchases_new_customer(10),
        lambda: model.median_time_to_next_purchase(rfm),
        lambda: model.expected_purchases_interval(rfm, 10),
        lambda: model.sample_params(10),
    ]
    for call in calls:
        with pytest.raises(NotFittedError, match="BetaGeo"):
            call()


def test_convergence_error_is_helpful(rfm: pd.DataFrame) -> None:
    with pytest.raises(ConvergenceError) as info:
        BetaGeo(max_iter=1).fit(rfm)
    assert "max_iter=1" in str(info.value)
    assert "penalizer" in str(info.value)


# --- input validation (shared by every model through vipml.ltv._input) ----------------------


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda f: f.drop(columns="T"), r"lacks the column\(s\) \['T'\]"),
        (lambda f: f.assign(recency=f["recency"].where(f.index != 3, np.nan)), "recency.*NaN"),
        (lambda f: f.assign(T=f["T"].where(f.index != 3, np.inf)), "'T'.*infinite"),
        (lambda f: f.assign(T=-f["T"]), "'T': 10 rows are negative"),
        (lambda f: f.assign(frequency=f["frequency"] + 0.5), "not whole numbers"),
        (lambda f: f.assign(recency=f["T"] + 1.0), "recency > T"),
        (lambda f: f.assign(frequency=0.0, recency=1.0), "frequency 0"),
        (lambda f: f.assign(T="x"), "must be numeric"),
        (lambda f: f.iloc[:0], "no rows"),
    ],
)
def test_invalid_input_is_refused_with_the_column_and_ids(change, match) -> None:
    frame = pd.DataFrame(
        {"frequency": np.arange(10.0), "recency": np.arange(10.0), "T": np.arange(10.0) + 5.0},
        index=pd.Index(np.arange(10), name="customer_id"),
    )
    with pytest.raises(DataValidationError, match=match) as info:
        BetaGeo().fit(change(frame))
    if not any(word in match for word in ("lacks", "numeric", "no rows")):
        assert "customer ids [" in str(info.value)


def test_invalid_weights(rfm: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="weights has 3 values"):
        BetaGeo().fit(rfm, weights=[1, 2, 3])
    with pytest.raises(DataValidationError, match="negative"):
        BetaGeo().fit(rfm, weights=-np.ones(len(rfm)))


def test_input_frame_is_not_mutated(rfm: pd.DataFrame) -> None:
    frame = rfm.head(300).copy()
    frame["frequency"] = frame["frequency"].astype("int64")
    before = frame.copy()
    BetaGeo().fit(frame).p_alive(frame)
    pd.testing.assert_frame_equal(frame, before)


def test_polars_and_pyarrow_frames_match_pandas(model: BetaGeo, rfm: pd.DataFrame) -> None:
    pl = pytest.importorskip("polars")
    pa = pytest.importorskip("pyarrow")
    head = rfm.head(200)
    expected = model.expected_purchases(head, 39)
    as_columns = head.reset_index()
    for frame in (pl.from_pandas(as_columns), pa.Table.from_pandas(as_columns)):
        got = model.expected_purchases(frame, 39)
        pd.testing.assert_series_equal(got, expected, check_index_type=False)
    with pytest.raises(DataValidationError, match="customer_id"):
        model.p_alive(pl.from_pandas(head.reset_index(drop=True)))


# --- predictions ------------------------------------------------------------------------------


def test_prediction_outputs_are_indexed_series(model: BetaGeo, rfm: pd.DataFrame) -> None:
    head = rfm.head(20)
    for series, name in [
        (model.expected_purchases(head, 39), "expected_purchases"),
        (model.p_alive(head), "p_alive"),
        (model.probability_of_purchases(head, 2, 39), "probability_of_purchases"),
        (model.median_time_to_next_purchase(head), "median_time_to_next_purchase"),
    ]:
        assert series.name == name
        assert series.index.equals(head.index)


def test_zero_frequency_customers_are_alive(model: BetaGeo, rfm: pd.DataFrame) -> None:
    zero = rfm[rfm["frequency"] == 0]
    assert (model.p_alive(zero) == 1.0).all()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=histories(), horizons=st.lists(st.floats(0.0, 100.0), min_size=2, max_size=4))
def test_prediction_invariants(model: BetaGeo, frame: pd.DataFrame, horizons: list[float]) -> None:
    p_alive = model.p_alive(frame)
    assert ((p_alive >= 0) & (p_alive <= 1)).all()
    expected = [model.expected_purchases(frame, h).to_numpy() for h in sorted(horizons)]
    assert all(np.isfinite(e).all() and (e >= 0).all() for e in expected)
    for shorter, longer in zip(expected[:-1], expected[1:], strict=True):
        assert (longer >= shorter * (1 - 1e-12)).all()
    median = model.median_time_to_next_purchase(frame)
    assert (median > 0).all() and np.isfinite(median).all()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=histories(max_frequency=25, max_age=100.0), horizon=st.floats(0.0, 30.0))
def test_pmf_sums_to_one_and_its_mean_is_the_expectation(
    model: BetaGeo, frame: pd.DataFrame, horizon: float
) -> None:
    x, rec, age = (frame[c].to_numpy() for c in ("frequency", "recency", "T"))
    expected = BetaGeo._expected_purchases_at(model.params_, x, rec, age, horizon)
    # Sum until the tail's contribution to the mean is negligible: the tail is heavy for
    # customers with many purchases in a short T.
    terms = []
    for n in range(100_000):
        terms.append(BetaGeo._probability_of_purchases_at(model.params_, x, rec, age, n, horizon))
        if n > 2 * expected.max() + 20 and (n * terms[-1]).max() < 1e-13:
            break
    pmf = np.stack(terms)
    n_max = len(terms)
    np.testing.assert_allclose(pmf.sum(axis=0), 1.0, atol=1e-8)
    np.testing.assert_allclose(np.arange(n_max) @ pmf, expected, rtol=1e-6, atol=1e-9)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=histories(), horizon=st.floats(0.0, 60.0))
def test_interval_contains_the_estimate(
    model: BetaGeo, frame: pd.DataFrame, horizon: float
) -> None:
    out = model.expected_purchases_interval(frame, horizon, level=0.8, n_draws=40, random_state=1)
    assert out.columns.tolist() == ["estimate", "lower", "upper"]
    assert ((out["lower"] <= out["estimate"]) & (out["estimate"] <= out["upper"])).all()
    assert (out["lower"] >= 0).all()
    pd.testing.assert_series_equal(
        out["estimate"], model.expected_purchases(frame, horizon), check_names=False
    )


def test_interval_is_the_quantile_of_draws(model: BetaGeo, rfm: pd.DataFrame) -> None:
    head = rfm.head(100)
    out = model.expected_purchases_interval(head, 39, level=0.9, n_draws=200, random_state=5)
    draws = model.sample_params(200, random_state=5)
    assert draws == model.sample_params(200, random_state=5)
    x, rec, age = (head[c].to_numpy() for c in ("frequency", "recency", "T"))
    values = np.stack([BetaGeo._expected_purchases_at(d, x, rec, age, 39.0) for d in draws])
    lower, upper = np.quantile(values, [0.05, 0.95], axis=0, method="inverted_cdf")
    np.testing.assert_allclose(out["lower"], np.minimum(lower, out["estimate"]))
    np.testing.assert_allclose(out["upper"], np.maximum(upper, out["estimate"]))
    assert (out["upper"] > out["lower"]).all()


def test_new_customer_expectation_matches_simulation(simulate_bg) -> None:
    horizon = 30.0
    model = BetaGeo()
    model.params_ = dict(TRUTH)  # evaluate the closed form at known parameters
    model.covariance_ = pd.DataFrame()
    model.loglik_ = 0.0
    sims = simulate_bg(np.full(200_000, horizon), *TRUTH.values(), np.random.default_rng(9))
    counts = sims["frequency"]
    expected = model.expected_purchases_new_customer(horizon)
    assert isinstance(expected, float)
    assert abs(counts.mean() - expected) < 4.0 * counts.std() / np.sqrt(len(counts))
    curve = model.expected_purchases_new_customer(np.array([0.0, 10.0, 30.0]))
    assert curve[0] == 0.0 and curve[2] == pytest.approx(expected)
    assert np.all(np.diff(curve) > 0)


def test_median_time_is_the_median_of_the_posterior_waiting_time(model: BetaGeo) -> None:
    r, alpha = model.params_["r"], model.params_["alpha"]
    frame = pd.DataFrame(
        {"frequency": [0.0, 3.0, 40.0], "recency": [0.0, 20.0, 30.0], "T": [10.0, 30.0, 31.0]}
    )
    medians = model.median_time_to_next_purchase(frame).to_numpy()
    for (x, age), m in zip(frame[["frequency", "T"]].to_numpy(), medians, strict=True):
        # P(next purchase <= m) = E[1 - exp(-lambda m)] with lambda ~ Gamma(r + x, alpha + T)
        prob, _ = quad(
            lambda lam, m=m, x=x, age=age: (
                -np.expm1(-lam * m) * gamma_dist.pdf(lam, r + x, scale=1.0 / (alpha + age))
            ),
            0.0,
            np.inf,
        )
        assert prob == pytest.approx(0.5, abs=1e-8)


def test_probability_of_purchases_rejects_bad_n(model: BetaGeo, rfm: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="n must be"):
        model.probability_of_purchases(rfm.head(), -1, 10)
    with pytest.raises(ValueError, match="horizon"):
        model.expected_purchases(rfm.head(), -1.0)


def test_large_frames_group_identical_frequency_and_age(model: BetaGeo) -> None:
    """Above 20,000 rows the hypergeometric factor is evaluated once per (frequency, T)."""
    rng = np.random.default_rng(10)
    n = 50_000
    x = rng.integers(0, 30, n).astype(float)
    age = rng.integers(1, 365, n) / 7.0
    rec = np.where(x > 0, np.floor(rng.uniform(0.0, 1.0, n) * age * 7.0) / 7.0, 0.0)
    x[:3] = [0.5, 1.5, 2.5]  # non-integer frequencies take the generic grouping
    frame = pd.DataFrame({"frequency": x, "recency": rec, "T": age})
    grouped = BetaGeo._expected_purchases_at(model.params_, x, rec, age, 39.0)
    in_small_chunks = np.concatenate(
        [
            BetaGeo._expected_purchases_at(
                model.params_, x[i : i + 1000], rec[i : i + 1000], age[i : i + 1000], 39.0
            )
            for i in range(0, n, 1000)
        ]
    )
    np.testing.assert_array_equal(grouped, in_small_chunks)
    assert model.expected_purchases(frame.iloc[3:], 39).to_numpy() == pytest.approx(grouped[3:])


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
    fitted = BetaGeo().fit(pd.concat([rfm, heavy]))
    assert fitted.converged_ and np.isfinite(fitted.loglik_)
    assert np.isfinite(fitted.standard_errors_).all()
