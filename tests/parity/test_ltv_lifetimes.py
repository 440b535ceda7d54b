"""vipml.ltv against lifetimes 0.11.3 (the reference implementation) on the CDNOW sample.

Two comparisons per model: the fitted parameters and log-likelihood, then every prediction for
every customer at identical parameters (lifetimes' ``params_`` set to ours). lifetimes is a dev
dependency: these tests fail, they do not skip, when it is missing.

Tolerances achieved (asserted below): fitted parameters within 2e-6 relative (lifetimes stops
its own optimisers earlier; Pareto/NBD is run with Nelder-Mead at tol 1e-10), the same
log-likelihood function to 1e-12, standard errors within 1e-5, and predictions at identical
parameters within 1e-9 relative (PMF: 1e-9 relative or 1e-13 absolute, as both sides subtract
nearly equal terms for tiny probabilities).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vipml.ltv import BetaGeo, GammaGamma, ModifiedBetaGeo, ParetoNBD

HORIZON = 39.0
PARAM_RTOL = 2e-6
PREDICTION_RTOL = 1e-9


@pytest.fixture(scope="module")
def cdnow(parity_data: Path) -> pd.DataFrame:
    raw = pd.read_csv(parity_data / "cdnow_customers_summary_with_transactions.csv")
    return pd.DataFrame(
        {
            "frequency": raw["x"].astype(float).to_numpy(),
            "recency": raw["t_x"].to_numpy(),
            "T": raw["T"].to_numpy(),
            "monetary_value": raw["zbar"].to_numpy(),
        },
        index=pd.Index(raw["ID"].to_numpy(), name="customer_id"),
    )


def _columns(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(frame[c].to_numpy() for c in ("frequency", "recency", "T"))


def _quiet(function, *args, **kwargs):
    """Call lifetimes with its warnings silenced (it warns on current numpy and pandas)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def _assert_close(ours, theirs, rtol: float = PREDICTION_RTOL, atol: float = 0.0) -> None:
    np.testing.assert_allclose(
        np.asarray(ours, float), np.asarray(theirs, float), rtol=rtol, atol=atol
    )


def _lifetimes_fit(fitter_class, frame: pd.DataFrame, **kwargs):
    return _quiet(fitter_class().fit, *_columns(frame), **kwargs)


PURCHASE_MODELS = [
    pytest.param(BetaGeo, "BetaGeoFitter", {}, id="BG/NBD"),
    pytest.param(ModifiedBetaGeo, "ModifiedBetaGeoFitter", {}, id="MBG/NBD"),
    pytest.param(
        ParetoNBD,
        "ParetoNBDFitter",
        {"initial_params": [1.0, 1.0, 1.0, 1.0], "tol": 1e-10, "maxiter": 20_000},
        id="Pareto/NBD",
    ),
]


@pytest.mark.parametrize(("ours_class", "theirs_name", "fit_kwargs"), PURCHASE_MODELS)
def test_purchase_model_fit_matches_lifetimes(cdnow, ours_class, theirs_name, fit_kwargs) -> None:
    import lifetimes

    theirs_class = getattr(lifetimes, theirs_name)
    ours = ours_class().fit(cdnow)
    theirs = _lifetimes_fit(theirs_class, cdnow, **fit_kwargs)
    names = list(ours.params_)
    _assert_close(pd.Series(ours.params_)[names], theirs.params_[names], rtol=PARAM_RTOL)

    x, rec, age = _columns(cdnow)
    ones = np.ones_like(x)
    their_params = theirs.params_[names].to_numpy()
    our_params = np.array([ours.params_[k] for k in names])
    if theirs_class is lifetimes.ParetoNBDFitter:
        nll = theirs_class._negative_log_likelihood  # natural parameters, per mean weight

        def their_loglik(params):
            return -_quiet(nll, params, x, rec, age, ones, 0.0)
    else:
        nll = theirs_class._negative_log_likelihood  # log parameters, per customer

        def their_loglik(params):
            return -_quiet(nll, np.log(params), x, rec, age, ones, 0.0) * x.size

    # the same likelihood function, and our optimum is at least as high as theirs
    assert ours.loglik_ == pytest.approx(their_loglik(our_params), rel=1e-12)
    assert ours.loglik_ >= their_loglik(their_params) - 1e-9 * abs(ours.loglik_)
    assert ours.loglik_ == pytest.approx(their_loglik(their_params), rel=1e-9)
    if theirs_class is not lifetimes.ParetoNBDFitter:  # lifetimes has no Pareto/NBD Hessian
        _assert_close(ours.standard_errors_[names], theirs.standard_errors_[names], rtol=1e-5)


@pytest.mark.parametrize(("ours_class", "theirs_name", "fit_kwargs"), PURCHASE_MODELS)
def test_purchase_predictions_match_lifetimes_at_identical_params(
    cdnow, ours_class, theirs_name, fit_kwargs
) -> None:
    import lifetimes

    ours = ours_class().fit(cdnow)
    theirs = getattr(lifetimes, theirs_name)()
    theirs.params_ = pd.Series(ours.params_)
    x, rec, age = _columns(cdnow)

    _assert_close(
        ours.expected_purchases(cdnow, HORIZON),
        _quiet(theirs.conditional_expected_number_of_purchases_up_to_time, HORIZON, x, rec, age),
    )
    _assert_close(ours.p_alive(cdnow), _quiet(theirs.conditional_probability_alive, x, rec, age))
    horizons = np.array([1.0, 13.0, 39.0, 78.0, 520.0])
    _assert_close(
        ours.expected_purchases_new_customer(horizons),
        _quiet(theirs.expected_number_of_purchases_up_to_time, horizons),
    )
    for n in (0, 1, 2, 5, 10):
        if isinstance(theirs, lifetimes.ParetoNBDFitter):
            # lifetimes' conditional PMF works one customer at a time
            expected = [
                _quiet(theirs.conditional_probability_of_n_purchases_up_to_time, n, HORIZON, *c)
                for c in zip(x, rec, age, strict=True)
            ]
            got = ours.probability_of_purchases(cdnow, n, HORIZON)
        else:
            # lifetimes has only the unconditional PMF: ours at frequency = recency = T = 0
            expected = [_quiet(theirs.probability_of_n_purchases_up_to_time, HORIZON, n)]
            got = ours_class._probability_of_purchases_at(ours.params_, 0.0, 0.0, 0.0, n, HORIZON)
        _assert_close(got, np.ravel(expected), atol=1e-13)


def test_pareto_nbd_heavy_buyer_where_lifetimes_returns_nan(cdnow) -> None:
    from lifetimes import ParetoNBDFitter

    ours = ParetoNBD().fit(cdnow)
    theirs = ParetoNBDFitter()
    theirs.params_ = pd.Series(ours.params_)
    # 1e4 purchases in the first week or two, then nothing for ~1e4 weeks
    heavy = pd.DataFrame(
        {"frequency": [1e4, 1e4], "recency": [1.0, 2.0], "T": [1e4, 1e4]},
        index=pd.Index(["heavy_week_1", "heavy_week_2"], name="customer_id"),
    )
    x, rec, age = _columns(heavy)
    their_loglik = _quiet(ParetoNBDFitter._conditional_log_likelihood, theirs.params_, x, rec, age)
    their_alive = _quiet(theirs.conditional_probability_alive, x, rec, age)
    their_expected = _quiet(
        theirs.conditional_expected_number_of_purchases_up_to_time, HORIZON, x, rec, age
    )
    assert np.isnan(their_loglik).all() and np.isnan(their_alive).all()
    assert np.isnan(their_expected).all()

    assert np.isfinite(ParetoNBD._loglik(tuple(ours.params_.values()), x, rec, age)).all()
    alive = ours.p_alive(heavy)
    expected = ours.expected_purchases(heavy, HORIZON)
    pmf = ours.probability_of_purchases(heavy, 0, HORIZON)
    assert np.isfinite(alive).all() and ((alive >= 0) & (alive <= 1)).all()
    assert np.isfinite(expected).all() and (expected >= 0).all()
    assert (alive < 1e-12).all() and (expected < 1e-9).all()  # certainly gone
    assert pmf.to_numpy() == pytest.approx(1.0)

    # a little later lifetimes is finite again, and the two agree
    later = pd.DataFrame(
        {"frequency": [1e4, 1e4, 1e4], "recency": [10.0, 5000.0, 9999.0], "T": 1e4}
    )
    cols = _columns(later)
    _assert_close(
        ParetoNBD._loglik(tuple(ours.params_.values()), *cols),
        _quiet(ParetoNBDFitter._conditional_log_likelihood, theirs.params_, *cols),
        rtol=1e-12,
    )
    _assert_close(
        ours.p_alive(later), _quiet(theirs.conditional_probability_alive, *cols), rtol=1e-8
    )


def test_gamma_gamma_matches_lifetimes(cdnow) -> None:
    from lifetimes import GammaGammaFitter

    ours = GammaGamma().fit(cdnow)
    repeat = cdnow[cdnow["frequency"] > 0]
    theirs = _quiet(GammaGammaFitter().fit, repeat["frequency"], repeat["monetary_value"])
    names = ["p", "q", "v"]
    _assert_close(pd.Series(ours.params_)[names], theirs.params_[names], rtol=PARAM_RTOL)
    _assert_close(ours.standard_errors_[names], theirs.standard_errors_[names], rtol=1e-5)
    their_nll = _quiet(
        GammaGammaFitter._negative_log_likelihood,
        np.log([ours.params_[k] for k in names]),
        repeat["frequency"].to_numpy(),
        repeat["monetary_value"].to_numpy(),
        np.ones(len(repeat)),
        0.0,
    )
    assert ours.loglik_ == pytest.approx(-their_nll * len(repeat), rel=1e-12)

    theirs.params_ = pd.Series(ours.params_)
    _assert_close(
        ours.expected_spend(cdnow),
        _quiet(
            theirs.conditional_expected_average_profit,
            cdnow["frequency"],
            cdnow["monetary_value"],
        ),
    )
