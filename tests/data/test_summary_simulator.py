"""simulate_summary: seeded, valid summaries whose latent truth the models recover."""

import numpy as np
import pandas as pd
import pytest

from vipml.data import simulate_summary
from vipml.ltv import (
    BetaGeo,
    BetaGeoBetaBinom,
    GammaGamma,
    ModifiedBetaGeo,
    ParetoNBD,
    ShiftedBetaGeometric,
)

BG = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
PARETO = {"r": 0.55, "alpha": 10.5, "s": 0.6, "beta": 11.7}
BGBB = {"alpha": 1.2, "beta": 0.75, "gamma": 0.66, "delta": 2.8}
SBG = {"alpha": 0.7, "beta": 1.2}
SPEND = {"p": 6.0, "q": 4.0, "v": 15.0}
CASES = [
    ("bgnbd", BG, 39.0, BetaGeo),
    ("modified_bgnbd", BG, 39.0, ModifiedBetaGeo),
    ("pareto_nbd", PARETO, 39.0, ParetoNBD),
    ("bgbb", BGBB, 6, BetaGeoBetaBinom),
    ("sbg", SBG, 7, ShiftedBetaGeometric),
]


@pytest.mark.parametrize(("name", "params", "T", "model"), CASES)
def test_same_seed_same_summary_and_the_model_accepts_it(name, params, T, model):
    one = simulate_summary(name, params, 300, T, random_state=5)
    two = simulate_summary(name, params, 300, T, random_state=5)
    pd.testing.assert_frame_equal(one, two)
    assert one.index.name == "customer_id" and len(one) == 300
    model(penalizer=0.01).fit(one)  # valid input for the model it came from


@pytest.mark.parametrize(("name", "params", "T", "model"), CASES)
def test_the_share_alive_matches_the_models_p_alive(name, params, T, model):
    """Mean P(alive) over the simulated histories estimates the share of customers alive."""
    summary = simulate_summary(name, params, 20_000, T, latent=True, random_state=9)
    fitted = model()
    fitted.params_, fitted.loglik_, fitted.covariance_ = dict(params), 0.0, None
    alive = summary["alive"]
    if name == "sbg":
        predicted = fitted.survival(T)
        assert alive.mean() == pytest.approx(float(predicted), abs=0.015)
    else:
        observed = summary.drop(columns=[c for c in summary if c not in fitted._columns])
        assert alive.mean() == pytest.approx(fitted.p_alive(observed).mean(), abs=0.015)


def test_spend_follows_gamma_gamma():
    summary = simulate_summary("bgnbd", BG, 8000, 52.0, spend_params=SPEND, random_state=3)
    repeat = summary[summary["frequency"] > 0]
    assert (summary.loc[summary["frequency"] == 0, "monetary_value"] == 0).all()
    gg = GammaGamma().fit(repeat)
    for name, value in SPEND.items():
        assert abs(gg.params_[name] - value) < 3 * gg.standard_errors_[name], name


def test_a_fitted_model_simulates_from_its_own_estimates():
    fitted = BetaGeo(penalizer=0.01).fit(simulate_summary("bgnbd", BG, 500, 30.0, random_state=1))
    again = simulate_summary(fitted, n=100, T=30.0, random_state=2)
    assert again.equals(simulate_summary("bgnbd", fitted.params_, 100, 30.0, random_state=2))


def test_per_customer_ages():
    ages = np.array([1.0, 5.0, 10.0])
    summary = simulate_summary("pareto_nbd", PARETO, 3, ages, random_state=0)
    np.testing.assert_array_equal(summary["T"], ages)
    assert (summary["recency"] <= summary["T"]).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"model": "nbd", "params": BG}, ValueError, "model must be one of"),
        ({"model": "bgnbd", "params": {"r": 1.0}}, ValueError, "missing"),
        ({"model": "bgnbd", "params": {**BG, "r": -1.0}}, ValueError, "positive"),
        ({"model": "bgnbd", "params": BG, "n": 0}, ValueError, "n must be"),
        ({"model": "bgbb", "params": BGBB, "T": 2.5}, ValueError, "whole"),
        ({"model": "bgnbd", "params": BG, "T": [1.0, 2.0]}, ValueError, "one value per customer"),
        ({"model": "sbg", "params": SBG, "spend_params": SPEND}, ValueError, "purchase models"),
        ({"model": BetaGeo(), "params": None}, ValueError, "not fitted"),
        ({"model": object(), "params": BG}, TypeError, "fitted vipml"),
    ],
)
def test_bad_arguments_are_refused(kwargs, error, match):
    kwargs = {"n": 10, "T": 4, **kwargs}
    with pytest.raises(error, match=match):
        simulate_summary(**kwargs)
