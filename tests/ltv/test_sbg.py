"""sBG: likelihood, closed forms against brute-force sums, DERL, validation, uncertainty."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.special import betaln

from vipml.data import load_retention_cohorts, simulate_summary
from vipml.errors import DataValidationError, NotFittedError
from vipml.ltv import ShiftedBetaGeometric, contracts_from_survival
from vipml.ltv.sbg import _sbg_loglik_grad, sbg_loglik

HIGH_END = {"alpha": 0.668, "beta": 3.806}


def _at(params=HIGH_END) -> ShiftedBetaGeometric:
    model = ShiftedBetaGeometric()
    model.params_, model.loglik_, model.covariance_ = dict(params), 0.0, None
    return model


def _contracts(renewals, churned) -> pd.DataFrame:
    return pd.DataFrame(
        {"renewals": renewals, "churned": churned},
        index=pd.Index(range(len(renewals)), name="customer_id"),
        dtype=float,
    )


def _lifetime_pmf(alpha: float, beta: float, t: np.ndarray) -> np.ndarray:
    """P(T = t) by the recursion of Fader & Hardie (2007), eq. (7)."""
    out = [alpha / (alpha + beta)]
    for k in range(2, int(t.max()) + 1):
        out.append(out[-1] * (beta + k - 2) / (alpha + beta + k - 1))
    return np.array(out)[t.astype(int) - 1]


def test_loglik_follows_the_papers_recursion():
    alpha, beta = HIGH_END.values()
    t = np.arange(1.0, 30.0)
    cancelled = sbg_loglik((alpha, beta), t - 1, np.ones_like(t))
    np.testing.assert_allclose(np.exp(cancelled), _lifetime_pmf(alpha, beta, t), rtol=1e-12)
    active = sbg_loglik((alpha, beta), t, np.zeros_like(t))
    survival = 1.0 - np.cumsum(_lifetime_pmf(alpha, beta, t))
    np.testing.assert_allclose(np.exp(active), survival, rtol=1e-10)


def test_gradient_matches_central_differences():
    m, churned = np.array([0.0, 1, 5, 5, 12]), np.array([1.0, 0, 1, 0, 1])
    theta = (0.7, 1.9)
    _, grad = _sbg_loglik_grad(theta, m, churned)
    for j in range(2):
        up, down = list(theta), list(theta)
        up[j] += 1e-6
        down[j] -= 1e-6
        numeric = (sbg_loglik(up, m, churned) - sbg_loglik(down, m, churned)) / 2e-6
        np.testing.assert_allclose(grad[:, j], numeric, rtol=1e-6)


def test_contracts_from_survival_counts_each_history():
    table = contracts_from_survival([100, 60, 45, 40])
    assert table["customers"].tolist() == [40, 15, 5, 40]
    assert table["renewals"].tolist() == [0, 1, 2, 3]
    assert table["churned"].tolist() == [1, 1, 1, 0]


@pytest.mark.parametrize("counts", [[100], [100, 120, 90], [100, -1], [100, np.nan]])
def test_contracts_from_survival_refuses_impossible_counts(counts):
    with pytest.raises(DataValidationError, match="survivors"):
        contracts_from_survival(counts)


def test_individual_rows_and_the_cohort_table_give_the_same_fit():
    cohort = contracts_from_survival(load_retention_cohorts()["regular"].loc[:7])
    grouped = ShiftedBetaGeometric().fit(cohort, weights=cohort["customers"])
    rows = cohort.loc[cohort.index.repeat(cohort["customers"].astype(int))]
    individual = ShiftedBetaGeometric().fit(rows.reset_index(drop=True))
    assert individual.params_ == grouped.params_
    assert individual.n_customers_ == 1000


def test_expected_renewals_and_renewal_probability_are_the_survival_sums():
    model = _at()
    alpha, beta = HIGH_END.values()
    contracts = _contracts([0, 3, 9, 4], [0, 0, 0, 1])
    m = contracts["renewals"].to_numpy()
    for horizon in (1, 2, 10):
        brute = sum(
            np.exp(betaln(alpha, beta + m + k) - betaln(alpha, beta + m))
            for k in range(1, horizon + 1)
        )
        brute[3] = 0.0  # cancelled
        np.testing.assert_allclose(model.expected_renewals(contracts, horizon), brute, rtol=1e-9)
    renew = model.probability_of_renewal(contracts).to_numpy()
    np.testing.assert_allclose(renew[:3], (beta + m[:3]) / (alpha + beta + m[:3]), rtol=1e-12)
    assert renew[3] == 0.0
    # customers who stayed longer are likelier to stay (the sorting effect of heterogeneity)
    assert renew[0] < renew[1] < renew[2]


def test_derl_is_the_discounted_sum_of_future_renewals():
    model = _at()
    alpha, beta = HIGH_END.values()
    contracts = _contracts([0, 4, 7, 2], [0, 0, 0, 1])
    m = contracts["renewals"].to_numpy()
    rate = 0.1
    brute = sum(
        np.exp(betaln(alpha, beta + m + k) - betaln(alpha, beta + m)) / (1 + rate) ** (k - 1)
        for k in range(1, 5000)
    )
    brute[3] = 0.0
    derl = model.discounted_expected_residual_lifetime(contracts, rate)
    np.testing.assert_allclose(derl, brute, rtol=1e-9)
    # DEL of a new customer: the first payment plus the discounted survivals
    survivals = np.exp(betaln(alpha, beta + np.arange(1, 5000)) - betaln(alpha, beta))
    expected = 1 + np.sum(survivals / (1 + rate) ** np.arange(1, 5000))
    assert model.discounted_expected_lifetime(rate) == pytest.approx(expected, rel=1e-9)


def test_undiscounted_residual_lifetime_is_finite_only_when_alpha_exceeds_one():
    contracts = _contracts([2], [0])
    assert np.isinf(_at().discounted_expected_residual_lifetime(contracts, 0.0).iloc[0])
    heavy = _at({"alpha": 2.5, "beta": 4.0})
    # sum of B(a, b + m + k) / B(a, b + m) over k >= 1 is (b + m) / (a - 1)
    assert heavy.discounted_expected_residual_lifetime(contracts, 0.0).iloc[0] == pytest.approx(
        (4.0 + 2.0) / 1.5
    )


def test_retention_rises_with_tenure():
    curve = _at().retention_curve(10)
    assert np.isnan(curve["retention"].iloc[0])
    assert np.all(np.diff(curve["retention"].iloc[1:]) > 0)
    assert np.all(np.diff(curve["survival"]) < 0)


@pytest.mark.parametrize(
    ("contracts", "column"),
    [
        (_contracts([1.5], [0]), "renewals"),
        (_contracts([-1], [0]), "renewals"),
        (_contracts([2], [2]), "churned"),
    ],
)
def test_invalid_contracts_name_the_column(contracts, column):
    with pytest.raises(DataValidationError, match=f"'{column}'"):
        ShiftedBetaGeometric().fit(contracts)


def test_bad_arguments_are_refused():
    model = _at()
    with pytest.raises(ValueError, match="discount_rate"):
        model.discounted_expected_lifetime(-0.1)
    with pytest.raises(ValueError, match="periods"):
        model.survival([1.5])
    with pytest.raises(ValueError, match="renewals_ahead"):
        model.probability_of_renewal(_contracts([1], [0]), renewals_ahead=-1)
    with pytest.raises(NotFittedError):
        ShiftedBetaGeometric().survival([1])


def test_intervals_contain_the_estimate_and_widen_with_the_horizon():
    cohort = contracts_from_survival(load_retention_cohorts()["high_end"].loc[:7])
    model = ShiftedBetaGeometric().fit(cohort, weights=cohort["customers"])
    out = model.survival_interval([1, 4, 12], n_draws=300)
    assert ((out["lower"] <= out["estimate"]) & (out["estimate"] <= out["upper"])).all()
    width = out["upper"] - out["lower"]
    assert width.loc[12] > width.loc[1]
    derl = model.discounted_expected_residual_lifetime_interval(
        _contracts([0, 7, 3], [0, 0, 1]), 0.1, n_draws=200
    )
    assert (derl["lower"] <= derl["estimate"]).all() and (derl["estimate"] <= derl["upper"]).all()
    assert derl["estimate"].iloc[2] == 0.0


def test_pickles_and_repr():
    cohort = contracts_from_survival(load_retention_cohorts()["regular"].loc[:7])
    model = ShiftedBetaGeometric().fit(cohort, weights=cohort["customers"])
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.survival([3, 9]), model.survival([3, 9]))
    assert repr(model) == (
        "ShiftedBetaGeometric() fitted on 1,000 customers: alpha=0.7041, beta=1.182"
    )


@pytest.mark.parametrize(("n_customers", "seed"), [(800, 21), (4000, 22)])
def test_recovers_simulated_parameters_within_three_standard_errors(n_customers, seed):
    truth = {"alpha": 0.9, "beta": 2.4}
    rng = np.random.default_rng(seed)
    contracts = simulate_summary(
        "sbg", truth, n_customers, rng.integers(1, 13, n_customers), random_state=seed
    )
    model = ShiftedBetaGeometric().fit(contracts)
    for name, value in truth.items():
        assert abs(model.params_[name] - value) < 3 * model.standard_errors_[name], name
