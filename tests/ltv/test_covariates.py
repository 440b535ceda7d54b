"""Time-invariant covariates (CLVTools' links): likelihood, gradient, recovery, predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vipml.data import simulate_summary
from vipml.data.summary_simulator import COVARIATE_LINKS
from vipml.errors import DataValidationError
from vipml.ltv import (
    BetaGeo,
    BetaGeoBetaBinom,
    GammaGamma,
    ModifiedBetaGeo,
    ParetoNBD,
    customer_lifetime_value,
)
from vipml.ltv._covariates import LINKS, covariate_total_factory, make_links
from vipml.ltv._likelihoods import bgnbd_loglik

BG = {"r": 0.4, "alpha": 5.0, "a": 0.8, "b": 2.5}
PARETO = {"r": 0.55, "alpha": 10.5, "s": 0.6, "beta": 11.7}
SPEND = {"p": 6.0, "q": 4.0, "v": 15.0}


def _covariates(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "gender": rng.integers(0, 2, n).astype(float),
            "channel": rng.integers(0, 2, n).astype(float),
        }
    )


def _simulate(model, params, n, seed, coefficients, spend=None):
    rng = np.random.default_rng(seed)
    return simulate_summary(
        model,
        params,
        n,
        rng.uniform(8.0, 60.0, n),
        spend_params=spend,
        covariates=_covariates(n, seed + 1),
        coefficients=coefficients,
        random_state=seed,
    )


def _within_three_standard_errors(model, truth):
    for name, value in truth.items():
        error = abs(model.params_[name] - value) / model.standard_errors_[name]
        assert error < 3, (
            f"{name}: fitted {model.params_[name]:.4f}, true {value}, {error:.1f} s.e."
        )


def test_the_simulator_and_the_models_use_the_same_links():
    simulated = {"bgnbd": "BG/NBD", "modified_bgnbd": "MBG/NBD", "pareto_nbd": "Pareto/NBD"}
    for name, model_name in simulated.items():
        assert COVARIATE_LINKS[name] == LINKS[model_name]
    assert LINKS["Gamma-Gamma"] == {"v": ("spend", 1.0)}


def test_likelihood_is_the_base_likelihood_at_each_customers_parameters():
    summary = _simulate("bgnbd", BG, 300, 1, {"purchase.gender": 0.5, "dropout.channel": -0.4})
    links = make_links(
        "BG/NBD", ("r", "alpha", "a", "b"), {"purchase": ["gender"], "dropout": ["channel"]}
    )
    values = {**BG, "purchase.gender": 0.3, "dropout.channel": -0.2}
    z = summary[["gender", "channel"]].to_numpy()
    direct = sum(
        float(bgnbd_loglik(tuple(p.values()), *row))
        for p, row in zip(
            links.params_for(values, z),
            summary[["frequency", "recency", "T"]].to_numpy(),
            strict=True,
        )
    )
    columns = [summary[c].to_numpy() for c in ("frequency", "recency", "T", "gender", "channel")]
    factory = covariate_total_factory(links, 3, bgnbd_loglik, None, BetaGeo._total)
    total = factory(columns, np.ones(len(summary)))
    natural = np.array([*BG.values(), np.exp(0.3), np.exp(-0.2)])
    assert total.value(natural) == pytest.approx(direct, rel=1e-12)
    # the chain-rule gradient (in the optimiser's variables) against central differences
    _, grad = total.value_and_grad(natural)
    for j in range(natural.size):
        up, down = natural.copy(), natural.copy()
        up[j] *= np.exp(1e-6)
        down[j] *= np.exp(-1e-6)
        numeric = (total.value(up) - total.value(down)) / 2e-6
        assert grad[j] * natural[j] == pytest.approx(numeric, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize(("n_customers", "seed"), [(2500, 3), (8000, 4)])
def test_bgnbd_recovers_parameters_and_coefficients(n_customers, seed):
    coefficients = {"purchase.gender": 0.5, "purchase.channel": -0.3, "dropout.gender": 0.4}
    summary = _simulate("bgnbd", BG, n_customers, seed, coefficients)
    model = BetaGeo(purchase_covariates=["gender", "channel"], dropout_covariates=["gender"])
    model.fit(summary)
    _within_three_standard_errors(model, {**BG, **coefficients})
    assert list(model.covariance_.index) == [*BG, *coefficients]


def test_pareto_nbd_and_mbgnbd_recover_coefficients():
    coefficients = {"purchase.gender": 0.6, "dropout.gender": 0.7}
    summary = _simulate("pareto_nbd", PARETO, 1500, 5, coefficients)
    model = ParetoNBD(purchase_covariates=["gender"], dropout_covariates=["gender"]).fit(summary)
    _within_three_standard_errors(model, {**PARETO, **coefficients})
    coefficients = {"purchase.channel": -0.5, "dropout.channel": 0.5}
    summary = _simulate("modified_bgnbd", BG, 4000, 6, coefficients)
    model = ModifiedBetaGeo(purchase_covariates=["channel"], dropout_covariates=["channel"])
    _within_three_standard_errors(model.fit(summary), {**BG, **coefficients})


@pytest.mark.parametrize(("n_customers", "seed"), [(3000, 7), (10000, 8)])
def test_gamma_gamma_recovers_the_spend_coefficient(n_customers, seed):
    coefficients = {"spend.gender": 0.4, "spend.channel": -0.25}
    summary = _simulate("bgnbd", BG, n_customers, seed, coefficients, spend=SPEND)
    repeat = summary[summary["frequency"] > 0]
    model = GammaGamma(spend_covariates=["gender", "channel"]).fit(repeat)
    _within_three_standard_errors(model, {**SPEND, **coefficients})
    spend = model.expected_spend(repeat.assign(frequency=0.0, monetary_value=0.0))
    base = SPEND["p"] * model.params_["v"] / (model.params_["q"] - 1.0)
    # a new customer's expected spend is the population mean scaled by exp(gamma' z)
    shift = np.exp(
        model.params_["spend.gender"] * repeat["gender"]
        + model.params_["spend.channel"] * repeat["channel"]
    )
    np.testing.assert_allclose(spend, model.params_["p"] / SPEND["p"] * base * shift, rtol=1e-12)


def test_predictions_use_each_customers_own_parameters():
    coefficients = {"purchase.gender": 0.8, "dropout.gender": -0.3}
    summary = _simulate("bgnbd", BG, 3000, 9, coefficients)
    model = BetaGeo(purchase_covariates=["gender"], dropout_covariates=["gender"]).fit(summary)
    plain = BetaGeo()
    for gender in (0.0, 1.0):
        rows = summary[summary["gender"] == gender]
        plain.params_ = model._params_of({"gender": gender})
        plain.loglik_, plain.covariance_ = 0.0, None
        np.testing.assert_allclose(model.p_alive(rows), plain.p_alive(rows), rtol=1e-12)
        np.testing.assert_allclose(
            model.expected_purchases(rows, 26.0), plain.expected_purchases(rows, 26.0), rtol=1e-12
        )
        assert model.expected_purchases_new_customer(26.0, covariates={"gender": gender}) == (
            pytest.approx(plain.expected_purchases_new_customer(26.0))
        )
    # customers with gender 1 buy faster: a customer alive for sure (no repeat purchase yet,
    # BG/NBD) is expected to buy more in the same horizon
    twin = pd.DataFrame(
        {"frequency": 0.0, "recency": 0.0, "T": 10.0, "gender": [0.0, 1.0], "channel": 0.0}
    )
    low, high = model.expected_purchases(twin, 26.0)
    assert high > low
    interval = model.expected_purchases_interval(summary.head(20), 26.0, n_draws=60)
    assert (
        (interval["lower"] <= interval["estimate"]) & (interval["estimate"] <= interval["upper"])
    ).all()
    draws = model.sample_params(5, random_state=0)
    assert all(set(d) == set(model.params_) for d in draws)
    assert any(d["dropout.gender"] < 0 for d in model.sample_params(50, random_state=0))


def test_covariate_errors_are_clear():
    summary = _simulate("bgnbd", BG, 200, 10, {"purchase.gender": 0.2})
    with pytest.raises(DataValidationError, match="lacks the column.*'age'"):
        BetaGeo(purchase_covariates=["age"]).fit(summary)
    with pytest.raises(DataValidationError, match="'gender' must be numeric"):
        BetaGeo(purchase_covariates=["gender"]).fit(summary.assign(gender="f"))
    with pytest.raises(ValueError, match="does not take covariates"):
        BetaGeoBetaBinom(purchase_covariates=["gender"]).fit(
            pd.DataFrame(
                {"frequency": [1.0], "recency": [1.0], "n_periods": [2.0], "gender": [1.0]}
            )
        )
    with pytest.raises(ValueError, match="penalizer_kind"):
        BetaGeo(purchase_covariates=["gender"], penalizer_kind="lifetimes").fit(summary)
    model = BetaGeo(penalizer=0.01, purchase_covariates=["gender"]).fit(summary)
    with pytest.raises(ValueError, match="unknown covariates"):
        model.expected_purchases_new_customer(4.0, covariates={"age": 3})
    spend = GammaGamma(penalizer=0.01).fit(
        pd.DataFrame({"frequency": [1.0, 2.0, 3.0], "monetary_value": [10.0, 20.0, 15.0]})
    )
    with pytest.raises(NotImplementedError, match="covariate models"):
        customer_lifetime_value(
            model, spend, summary.assign(monetary_value=10.0), horizon=10.0, discount_rate=0.0
        )
