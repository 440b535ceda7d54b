"""BG/BB: likelihood, gradient, closed forms against brute-force sums, validation, uncertainty."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import betaln, comb

from vipml.data import load_donations, simulate_summary
from vipml.errors import DataValidationError, NotFittedError
from vipml.ltv import BetaGeoBetaBinom
from vipml.ltv.bgbb import _BGBBSums, bgbb_loglik

PARAMS = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
THETA = tuple(PARAMS.values())


def _at(params=PARAMS) -> BetaGeoBetaBinom:
    model = BetaGeoBetaBinom()
    model.params_, model.loglik_, model.covariance_ = dict(params), 0.0, None
    return model


def _summary(x, t_x, n) -> pd.DataFrame:
    return pd.DataFrame(
        {"frequency": x, "recency": t_x, "n_periods": n},
        index=pd.Index(range(len(x)), name="customer_id"),
        dtype=float,
    )


def _histories(n_max: int = 8) -> pd.DataFrame:
    rows = [
        (x, t, n)
        for n in range(n_max + 1)
        for t in range(n + 1)
        for x in range(t + 1)
        if (x == 0) == (t == 0)
    ]
    return _summary(*zip(*rows, strict=True))


def _direct_loglik(params, x, t_x, n):
    """Equation (5) of Fader, Hardie & Shang (2010), term by term."""
    a, b, g, d = params
    total = np.exp(betaln(a + x, b + n - x) - betaln(a, b) + betaln(g, d + n) - betaln(g, d))
    for i in range(int(n - t_x)):
        total += np.exp(
            betaln(a + x, b + t_x - x + i)
            - betaln(a, b)
            + betaln(g + 1, d + t_x + i)
            - betaln(g, d)
        )
    return np.log(total)


def test_loglik_is_equation_5_term_by_term():
    data = _histories(12)
    ours = bgbb_loglik(THETA, data["frequency"], data["recency"], data["n_periods"])
    direct = [
        _direct_loglik(THETA, *row) for row in data[["frequency", "recency", "n_periods"]].values
    ]
    np.testing.assert_allclose(ours, direct, rtol=1e-12)


def test_probabilities_of_all_histories_sum_to_one():
    """Over every (x, t_x) a customer can show in n opportunities, the likelihoods add to 1."""
    for n in (1, 4, 9):
        data = _histories(n)
        data = data[data["n_periods"] == n]
        ll = bgbb_loglik(THETA, data["frequency"], data["recency"], data["n_periods"])
        # each (x, t_x) stands for C(t_x - 1, x - 1) purchase patterns with the same likelihood
        patterns = np.where(
            data["frequency"] > 0, comb(data["recency"] - 1, data["frequency"] - 1), 1.0
        )
        assert float(np.sum(patterns * np.exp(ll))) == pytest.approx(1.0, rel=1e-12)


def test_analytic_gradient_matches_central_differences():
    data = _histories(15)
    sums = _BGBBSums(*(data[c].to_numpy() for c in ("frequency", "recency", "n_periods")))
    _, grad = sums.evaluate(THETA, gradient=True)
    for j in range(4):
        up, down = list(THETA), list(THETA)
        up[j] += 1e-6
        down[j] -= 1e-6
        numeric = (
            sums.evaluate(up, gradient=False)[0] - sums.evaluate(down, gradient=False)[0]
        ) / 2e-6
        np.testing.assert_allclose(grad[:, j], numeric, rtol=1e-6, atol=1e-8)


def test_weighted_rows_and_repeated_rows_give_the_same_fit():
    data = load_donations()
    weighted = BetaGeoBetaBinom().fit(data, weights=data["customers"])
    repeated = data.loc[data.index.repeat(data["customers"].astype(int))].reset_index(drop=True)
    repeated.index.name = "customer_id"
    plain = BetaGeoBetaBinom().fit(repeated)
    assert plain.params_ == weighted.params_
    assert plain.n_customers_ == 11_104


def test_conditional_expectation_is_the_sum_of_purchase_probabilities():
    """E[X(n, n + h)] = sum over the next h opportunities of P(alive) * E[p | history]."""
    data = _histories(6)
    model = _at()
    a, b, g, d = THETA
    x, t_x, n = (data[c].to_numpy() for c in ("frequency", "recency", "n_periods"))
    alive_now = model.p_alive(data).to_numpy()
    for horizon in (1, 3, 7):
        brute = sum(
            alive_now * np.exp(betaln(g, d + n + k) - betaln(g, d + n)) * (a + x) / (a + b + n)
            for k in range(1, horizon + 1)
        )
        np.testing.assert_allclose(model.expected_purchases(data, horizon), brute, rtol=1e-10)


@settings(max_examples=25, deadline=None)
@given(horizon=st.integers(0, 8), index=st.integers(0, 40))
def test_conditional_pmf_is_a_distribution_with_the_right_mean(horizon, index):
    data = _histories(6).iloc[[index]]
    model = _at()
    probabilities = np.array(
        [model.probability_of_purchases(data, k, horizon).iloc[0] for k in range(horizon + 1)]
    )
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-12)
    mean = float(np.arange(horizon + 1) @ probabilities)
    assert mean == pytest.approx(model.expected_purchases(data, horizon).iloc[0], abs=1e-12)
    assert model.probability_of_purchases(data, horizon + 1, horizon).iloc[0] == 0.0


def test_new_customer_pmf_is_equation_7():
    model = _at()
    a, b, g, d = THETA
    n = 6
    for x in range(n + 1):
        eq7 = comb(n, x) * np.exp(
            betaln(a + x, b + n - x) - betaln(a, b) + betaln(g, d + n) - betaln(g, d)
        )
        eq7 += sum(
            comb(i, x)
            * np.exp(betaln(a + x, b + i - x) - betaln(a, b) + betaln(g + 1, d + i) - betaln(g, d))
            for i in range(x, n)
        )
        assert model.probability_of_purchases_new_customer(x, n) == pytest.approx(eq7, rel=1e-12)


def test_dert_is_the_discounted_sum_of_purchase_probabilities():
    data = _histories(5)
    model = _at()
    a, b, g, d = THETA
    x, n = data["frequency"].to_numpy(), data["n_periods"].to_numpy()
    alive_now = model.p_alive(data).to_numpy()
    rate = 0.1
    brute = sum(
        alive_now
        * np.exp(betaln(g, d + n + k) - betaln(g, d + n))
        * (a + x)
        / (a + b + n)
        / (1 + rate) ** k
        for k in range(1, 4000)
    )
    np.testing.assert_allclose(model.discounted_expected_transactions(data, rate), brute, rtol=1e-9)


def test_p_alive_falls_with_time_since_the_last_purchase_and_with_periods_ahead():
    model = _at()
    data = _summary([3, 3, 3], [3, 5, 8], [8, 8, 8])
    alive = model.p_alive(data).to_numpy()
    assert alive[0] < alive[1] < alive[2] <= 1.0
    ahead = model.p_alive(data, periods_ahead=2).to_numpy()
    assert np.all(ahead < alive)
    # a customer who bought at the last opportunity is alive for sure
    assert model.p_alive(_summary([2], [6], [6])).iloc[0] == pytest.approx(1.0)


def test_p_alive_path_rebuilds_the_history_at_each_opportunity():
    model = _at()
    path = model.p_alive_path([0, 1, 2, 5], times=[0, 1, 2, 3, 4, 5, 6, 9])
    rebuilt = model.p_alive(
        _summary([0, 1, 2, 2, 2, 3, 3, 3], [0, 1, 2, 2, 2, 5, 5, 5], [0, 1, 2, 3, 4, 5, 6, 9])
    )
    np.testing.assert_allclose(path.to_numpy(), rebuilt.to_numpy())
    assert path.index.tolist() == [0, 1, 2, 3, 4, 5, 6, 9]


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ((2, 1, 6), "frequency"),  # more purchases than opportunities up to the last
        ((1, 7, 6), "recency"),  # last purchase after the last opportunity
        ((1, 2.5, 6), "recency"),  # not a whole opportunity
        ((1, 0, 6), "frequency"),  # a repeat purchase at opportunity 0
    ],
)
def test_impossible_summaries_are_refused_with_the_column(row, column):
    with pytest.raises(DataValidationError, match=f"'{column}'"):
        BetaGeoBetaBinom().fit(_summary(*([v] for v in row)))


def test_missing_n_periods_column_names_it():
    rfm = pd.DataFrame({"frequency": [1.0], "recency": [2.0], "T": [3.0]})
    with pytest.raises(DataValidationError, match="n_periods"):
        BetaGeoBetaBinom().fit(rfm)


def test_fractional_horizons_are_refused():
    with pytest.raises(ValueError, match="whole number of transaction opportunities"):
        _at().expected_purchases(_summary([1], [1], [2]), horizon=2.5)


def test_median_time_to_next_purchase_says_what_to_use_instead():
    with pytest.raises(NotImplementedError, match="probability_of_purchases"):
        _at().median_time_to_next_purchase(_summary([1], [1], [2]))


def test_not_fitted_is_an_error():
    with pytest.raises(NotFittedError):
        BetaGeoBetaBinom().p_alive(_summary([1], [1], [2]))


def test_fit_keeps_no_data_pickles_and_repr_shows_the_estimates():
    data = load_donations()
    model = BetaGeoBetaBinom().fit(data, weights=data["customers"])
    assert set(vars(model)) == {
        "penalizer",
        "penalizer_kind",
        "purchase_covariates",
        "dropout_covariates",
        "tol",
        "max_iter",
        "params_",
        "loglik_",
        "converged_",
        "n_customers_",
        "covariance_",
        "standard_errors_",
        "vipml_version_",
    }
    again = pickle.loads(pickle.dumps(model))
    pd.testing.assert_series_equal(again.p_alive(data), model.p_alive(data))
    assert repr(model).startswith("BetaGeoBetaBinom() fitted on 11,104 customers: alpha=1.204")


def test_interval_contains_the_estimate_and_is_seeded():
    data = load_donations()
    model = BetaGeoBetaBinom().fit(data, weights=data["customers"])
    one = model.expected_purchases_interval(data, 5, n_draws=100, random_state=3)
    two = model.expected_purchases_interval(data, 5, n_draws=100, random_state=3)
    pd.testing.assert_frame_equal(one, two)
    assert ((one["lower"] <= one["estimate"]) & (one["estimate"] <= one["upper"])).all()
    assert (one["upper"] > one["lower"]).all()


@pytest.mark.parametrize(("n_customers", "seed"), [(1500, 11), (6000, 12)])
def test_recovers_simulated_parameters_within_three_standard_errors(n_customers, seed):
    rng = np.random.default_rng(seed)
    summary = simulate_summary(
        "bgbb", PARAMS, n_customers, rng.integers(1, 9, n_customers), random_state=seed
    )
    model = BetaGeoBetaBinom().fit(summary)
    for name, value in PARAMS.items():
        assert abs(model.params_[name] - value) < 3 * model.standard_errors_[name], name


def test_holdout_evaluation_with_yearly_opportunities():
    """calibration_holdout with freq = time_unit = the opportunity gives BG/BB's holdout frame."""
    from vipml.features import calibration_holdout
    from vipml.ltv import holdout_metrics, holdout_table

    rng = np.random.default_rng(0)
    n = 3000
    p = rng.beta(PARAMS["alpha"], PARAMS["beta"], n)
    death = rng.beta(PARAMS["gamma"], PARAMS["delta"], n)
    alive = np.ones(n, dtype=bool)
    rows = [(c, "2000-03-01", 10.0) for c in range(n)]  # every donor's first gift
    for year in range(2001, 2009):  # eight yearly opportunities
        alive &= rng.random(n) >= death
        rows += [(c, f"{year}-03-01", 10.0) for c in np.nonzero(alive & (rng.random(n) < p))[0]]
    log = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    log["timestamp"] = pd.to_datetime(log["timestamp"])
    split = calibration_holdout(log, "2005-12-31", "2008-12-31", freq="YE")
    assert (split["duration_holdout"] == 3).all()
    calibration = split[["frequency_cal", "recency_cal", "T_cal"]].set_axis(
        ["frequency", "recency", "n_periods"], axis=1
    )
    model = BetaGeoBetaBinom().fit(calibration)
    table = holdout_table(model, split, max_frequency=3)
    assert table["n_customers"].sum() == 3000
    metrics = holdout_metrics(model, split)
    # the model predicts the total holdout purchases of customers it has not seen act
    assert abs(metrics["total_error_pct"]) < 10
