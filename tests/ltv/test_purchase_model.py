"""Methods every purchase model shares: new-customer probabilities, the P(alive) path, repr."""

import warnings

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter

from vipml.ltv import BetaGeo, BetaGeoBetaBinom, ModifiedBetaGeo, ParetoNBD
from vipml.ltv._base import purchase_history

BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PARETO = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
BGBB = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
MODELS = [(BetaGeo, BG), (ModifiedBetaGeo, BG), (ParetoNBD, PARETO), (BetaGeoBetaBinom, BGBB)]


def _at(cls, params):
    model = cls()
    model.params_, model.loglik_, model.covariance_ = dict(params), 0.0, None
    return model


def _quiet(function, *args):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return function(*args)


@pytest.mark.parametrize(
    ("ours", "theirs"), [(BetaGeo, BetaGeoFitter), (ModifiedBetaGeo, ModifiedBetaGeoFitter)]
)
def test_new_customer_probabilities_match_lifetimes(ours, theirs):
    model, fitter = _at(ours, BG), theirs()
    fitter.params_ = pd.Series(BG)
    for n in (0, 1, 2, 5):
        for t in (0.5, 13.0, 39.0, 78.0):
            expected = _quiet(fitter.probability_of_n_purchases_up_to_time, t, n)
            assert model.probability_of_purchases_new_customer(n, t) == pytest.approx(
                expected, rel=1e-9, abs=1e-15
            )


@pytest.mark.parametrize(("cls", "params"), MODELS)
def test_new_customer_probabilities_are_a_distribution_with_the_expected_mean(cls, params):
    model = _at(cls, params)
    horizons = np.array([1.0, 4.0, 9.0])
    probabilities = np.stack(
        [model.probability_of_purchases_new_customer(k, horizons) for k in range(80)]
    )
    np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, atol=1e-10)
    np.testing.assert_allclose(
        np.arange(80) @ probabilities, model.expected_purchases_new_customer(horizons), rtol=1e-8
    )
    assert isinstance(model.probability_of_purchases_new_customer(0, 3.0), float)
    with pytest.raises(ValueError, match="n must be"):
        model.probability_of_purchases_new_customer(-1, 3.0)


def test_p_alive_path_matches_lifetimes_alive_path():
    """lifetimes' calculate_alive_path, day by day (it breaks on pandas 3, so its steps here)."""
    fitter = BetaGeoFitter()
    fitter.params_ = pd.Series(BG)
    bought_on = np.array([0, 3, 3, 14, 31])
    days = np.arange(61)
    bought = np.isin(days, bought_on).astype(int)
    frequency = np.cumsum(bought) - 1
    recency = pd.Series(np.where(bought > 0, days, np.nan)).ffill().fillna(0).to_numpy()
    theirs = _quiet(fitter.conditional_probability_alive, frequency, recency, days)
    ours = _at(BetaGeo, BG).p_alive_path(bought_on.astype(float), times=days.astype(float))
    np.testing.assert_allclose(ours.to_numpy(), theirs, rtol=1e-12)


def test_purchase_history_counts_distinct_times_up_to_each_time():
    table = purchase_history([10.0, 12.0, 12.0, 20.0], [10.0, 11.0, 12.0, 19.0, 25.0])
    assert table["frequency"].tolist() == [0, 0, 1, 1, 2]
    assert table["recency"].tolist() == [0, 0, 2, 2, 10]
    assert table["T"].tolist() == [0, 1, 2, 9, 15]
    with pytest.raises(ValueError, match="precede the first purchase"):
        purchase_history([10.0], [9.0])
    with pytest.raises(ValueError, match="history"):
        purchase_history([], [1.0])


@pytest.mark.parametrize(("cls", "params"), MODELS)
def test_repr_shows_customers_and_estimates_once_fitted(cls, params):
    model = cls(penalizer=0.01)
    assert repr(model) == f"{cls.__name__}(penalizer=0.01)"
    model.params_, model.n_customers_ = dict(params), 2357
    text = repr(model)
    assert text.startswith(f"{cls.__name__}(penalizer=0.01) fitted on 2,357 customers: ")
    for name, value in params.items():
        assert f"{name}={value:.4g}" in text
    model.n_customers_ = 10.5  # weights
    assert "fitted on 10.5 customers" in repr(model)
