"""Tests of vipml.ltv.gamma_gamma.GammaGamma."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vipml.errors import (
    ConvergenceError,
    DataValidationError,
    ModelAssumptionWarning,
    NotFittedError,
)
from vipml.ltv import GammaGamma

TRUTH = {"p": 6.25, "q": 3.74, "v": 15.44}


def _spend_frame(simulate_spend, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frequency = rng.negative_binomial(1, 0.35, n).astype(float)  # many zeros, a long tail
    return pd.DataFrame(
        {"frequency": frequency, "monetary_value": simulate_spend(frequency, *TRUTH.values(), rng)},
        index=pd.Index(np.arange(n), name="customer_id"),
    )


@pytest.fixture(scope="module")
def rfm(simulate_spend) -> pd.DataFrame:
    return _spend_frame(simulate_spend, 10_000, 41)


@pytest.fixture(scope="module")
def model(rfm: pd.DataFrame) -> GammaGamma:
    return GammaGamma().fit(rfm)


@pytest.mark.parametrize(("n", "seed"), [(2000, 42), (10_000, 43)])
def test_recovers_parameters_within_three_standard_errors(simulate_spend, n, seed) -> None:
    fitted = GammaGamma().fit(_spend_frame(simulate_spend, n, seed))
    z = (pd.Series(fitted.params_) - pd.Series(TRUTH)) / fitted.standard_errors_
    assert (z.abs() < 3.0).all(), z


def test_fits_only_repeat_buyers(model, rfm) -> None:
    repeat = rfm[rfm["frequency"] > 0]
    assert model.n_customers_ == len(repeat)
    assert GammaGamma().fit(repeat).params_ == model.params_
    assert list(model.params_) == ["p", "q", "v"]


def test_weighted_fit_equals_repeated_rows(simulate_spend) -> None:
    base = _spend_frame(simulate_spend, 800, 44)
    counts = np.random.default_rng(45).integers(1, 4, len(base))
    repeated = base.loc[base.index.repeat(counts)].reset_index(drop=True)
    by_weight = GammaGamma().fit(base, weights=counts)
    by_rows = GammaGamma().fit(repeated)
    assert by_weight.params_ == by_rows.params_
    assert by_weight.n_customers_ == float(counts[base["frequency"].to_numpy() > 0].sum())


def test_fit_is_deterministic_and_pickles(model, rfm) -> None:
    again = GammaGamma().fit(rfm)
    assert again.params_ == model.params_
    np.testing.assert_array_equal(again.covariance_.to_numpy(), model.covariance_.to_numpy())
    blob = pickle.dumps(model)
    assert len(blob) < 5_000
    pd.testing.assert_series_equal(
        pickle.loads(blob).expected_spend(rfm), model.expected_spend(rfm)
    )


def test_not_fitted_and_convergence_errors(rfm) -> None:
    for call in (
        lambda: GammaGamma().expected_spend(rfm),
        lambda: GammaGamma().expected_spend_interval(rfm),
        lambda: GammaGamma().sample_params(5),
    ):
        with pytest.raises(NotFittedError, match="GammaGamma"):
            call()
    with pytest.raises(ConvergenceError, match="Gamma-Gamma.*max_iter=1"):
        GammaGamma(max_iter=1).fit(rfm)


def test_expected_spend_shrinks_towards_the_population_mean(model, rfm) -> None:
    p, q, v = model.params_.values()
    spend = model.expected_spend(rfm)
    assert spend.name == "expected_spend" and spend.index.equals(rfm.index)
    zero = rfm["frequency"] == 0
    np.testing.assert_allclose(spend[zero], p * v / (q - 1.0))
    repeat = rfm[~zero]
    weight = p * repeat["frequency"] / (p * repeat["frequency"] + q - 1.0)
    np.testing.assert_allclose(
        spend[~zero], weight * repeat["monetary_value"] + (1 - weight) * p * v / (q - 1.0)
    )


def test_non_positive_spend_of_repeat_buyers_is_refused(rfm) -> None:
    bad = rfm.copy()
    repeat_ids = bad.index[bad["frequency"] > 0][:3]
    bad.loc[repeat_ids, "monetary_value"] = [0.0, -5.0, -1.0]
    with pytest.raises(DataValidationError) as info:
        GammaGamma().fit(bad)
    message = str(info.value)
    assert "3 customers" in message and "returns='net'" in message
    assert str(repeat_ids[0]) in message
    # a zero-frequency customer with zero spend is fine
    assert (rfm.loc[rfm["frequency"] == 0, "monetary_value"] == 0).all()


def test_zero_spend_repeat_buyers_are_scored_but_negative_spend_is_refused(model, rfm) -> None:
    zero = rfm.copy()
    buyer = zero.index[zero["frequency"] > 0][0]
    zero.loc[buyer, "monetary_value"] = 0.0
    p, q, v = (model.params_[k] for k in ("p", "q", "v"))
    x = zero.loc[buyer, "frequency"]
    # The posterior mean shrinks a $0 average all the way from the population mean.
    expected = (q - 1.0) / (p * x + q - 1.0) * p * v / (q - 1.0)
    assert model.expected_spend(zero)[buyer] == pytest.approx(expected, rel=1e-12)
    zero.loc[buyer, "monetary_value"] = -1.0
    with pytest.raises(DataValidationError, match="monetary_value < 0"):
        model.expected_spend(zero)


def test_no_repeat_buyers_is_refused() -> None:
    frame = pd.DataFrame({"frequency": [0.0, 0.0], "monetary_value": [0.0, 0.0]})
    with pytest.raises(DataValidationError, match="no customer has a repeat purchase"):
        GammaGamma().fit(frame)


def test_correlated_spend_warns_with_the_figure() -> None:
    rng = np.random.default_rng(46)
    frequency = rng.integers(1, 30, 3000).astype(float)
    # Gamma-Gamma spend, scaled up with frequency: heavy buyers spend more per transaction
    spend = rng.gamma(6.0 * frequency, 1.0 / (frequency * rng.gamma(3.7, 1.0 / 15.0, 3000)))
    spend *= np.sqrt(frequency)
    frame = pd.DataFrame({"frequency": frequency, "monetary_value": spend})
    correlation = np.corrcoef(frequency, spend)[0, 1]
    with pytest.warns(ModelAssumptionWarning, match=f"{correlation:.2f}"):
        GammaGamma().fit(frame)


def test_q_at_most_one_is_refused() -> None:
    rng = np.random.default_rng(47)
    frequency = rng.integers(1, 5, 4000).astype(float)
    nu = rng.gamma(0.6, 1.0 / 15.0, 4000)  # q = 0.6: no population mean
    spend = rng.gamma(6.0 * frequency, 1.0 / (frequency * nu))
    frame = pd.DataFrame({"frequency": frequency, "monetary_value": spend})
    with pytest.raises(DataValidationError, match="q = .* <= 1"):
        GammaGamma().fit(frame)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.tuples(st.integers(0, 50), st.floats(0.01, 1e4)), min_size=1, max_size=20),
    level=st.floats(0.5, 0.99),
)
def test_interval_contains_the_estimate(model, rows, level) -> None:
    frame = pd.DataFrame(rows, columns=["frequency", "monetary_value"]).astype(float)
    out = model.expected_spend_interval(frame, level=level, n_draws=50, random_state=4)
    assert out.columns.tolist() == ["estimate", "lower", "upper"]
    assert ((out["lower"] <= out["estimate"]) & (out["estimate"] <= out["upper"])).all()
    assert (out["lower"] > 0).all()


def test_interval_is_the_quantile_of_draws(model, rfm) -> None:
    head = rfm.head(200)
    out = model.expected_spend_interval(head, level=0.8, n_draws=300, random_state=6)
    draws = model.sample_params(300, random_state=6)
    x, m = head["frequency"].to_numpy(), head["monetary_value"].to_numpy()
    values = np.stack([GammaGamma._expected_spend_at(d, x, m) for d in draws])
    lower, upper = np.quantile(values, [0.1, 0.9], axis=0, method="inverted_cdf")
    np.testing.assert_allclose(out["lower"], np.minimum(lower, out["estimate"]))
    np.testing.assert_allclose(out["upper"], np.maximum(upper, out["estimate"]))


def test_interval_bounds_are_never_nan_when_draws_have_no_finite_mean() -> None:
    # Five customers leave q weakly identified: some draws have q <= 1 (infinite mean spend).
    rfm = pd.DataFrame(
        {
            "frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
            "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
            "T": [30.0, 38.0, 30.0, 39.0, 39.0],
            "monetary_value": [0.0, 20.0, 35.5, 18.0, 60.0],
        }
    )
    model = GammaGamma(penalizer=0.01).fit(rfm)
    draws = model.sample_params(200, random_state=9)
    assert any(d["q"] <= 1 for d in draws)
    out = model.expected_spend_interval(rfm, n_draws=200, random_state=9)
    assert not out.isna().any().any()
    assert (out["lower"] <= out["estimate"]).all() and (out["estimate"] <= out["upper"]).all()
