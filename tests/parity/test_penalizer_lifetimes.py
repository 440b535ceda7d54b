"""penalizer_kind="lifetimes" reproduces lifetimes' penalizer_coef fits (lifetimes 0.11.3).

lifetimes adds ``penalizer_coef * sum(params ** 2)`` to the mean negative log-likelihood, with
time rescaled so that the oldest customer has age 1 (so BG/NBD's alpha enters the penalty as
alpha / max(T)); its Pareto/NBD divides by the mean weight instead of the total. vipml's default
penalizer (``penalizer_kind="log"``) is a different penalty (on the log-parameters, towards 1):
the last test shows how far apart the two are at the same coefficient.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from vipml.data import load_cdnow, load_donations
from vipml.features import rfm_summary
from vipml.ltv import BetaGeo, BetaGeoBetaBinom, GammaGamma, ModifiedBetaGeo, ParetoNBD

BG_NAMES = ["r", "alpha", "a", "b"]


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rfm_summary(load_cdnow(sample=True), "1997-09-30", freq="D", time_unit="W")


def _columns(rfm: pd.DataFrame) -> list[np.ndarray]:
    return [rfm[c].to_numpy() for c in ("frequency", "recency", "T")]


def _ratio(ours, theirs, names) -> np.ndarray:
    return np.array([ours.params_[k] for k in names]) / theirs.params_[names].to_numpy()


@pytest.mark.parametrize("coef", [0.001, 0.01, 0.1])
def test_bgnbd_matches_lifetimes_penalizer_coef(cdnow, coef):
    from lifetimes import BetaGeoFitter

    theirs = _quiet(BetaGeoFitter(penalizer_coef=coef).fit, *_columns(cdnow))
    ours = BetaGeo(penalizer=coef, penalizer_kind="lifetimes").fit(cdnow)
    np.testing.assert_allclose(_ratio(ours, theirs, BG_NAMES), 1.0, rtol=1e-4)


def test_modified_bgnbd_and_pareto_nbd_match_lifetimes(cdnow):
    from lifetimes import ModifiedBetaGeoFitter, ParetoNBDFitter

    theirs = _quiet(ModifiedBetaGeoFitter(penalizer_coef=0.01).fit, *_columns(cdnow))
    ours = ModifiedBetaGeo(penalizer=0.01, penalizer_kind="lifetimes").fit(cdnow)
    np.testing.assert_allclose(_ratio(ours, theirs, BG_NAMES), 1.0, rtol=1e-4)
    names = ["r", "alpha", "s", "beta"]
    theirs = _quiet(ParetoNBDFitter(penalizer_coef=0.01).fit, *_columns(cdnow))
    ours = ParetoNBD(penalizer=0.01, penalizer_kind="lifetimes").fit(cdnow)
    # lifetimes' Pareto/NBD stops its optimiser early (Nelder-Mead): 2e-4 of its own optimum
    np.testing.assert_allclose(_ratio(ours, theirs, names), 1.0, rtol=5e-4)


def test_gamma_gamma_and_bgbb_match_lifetimes(cdnow):
    from lifetimes import BetaGeoBetaBinomFitter, GammaGammaFitter

    repeat = cdnow[cdnow["frequency"] > 0]
    # spend is in dollars and not rescaled: at 0.01 lifetimes pushes q below 1 (no mean spend)
    theirs = _quiet(
        GammaGammaFitter(penalizer_coef=0.001).fit, repeat["frequency"], repeat["monetary_value"]
    )
    ours = GammaGamma(penalizer=0.001, penalizer_kind="lifetimes").fit(repeat)
    np.testing.assert_allclose(_ratio(ours, theirs, ["p", "q", "v"]), 1.0, rtol=1e-4)
    data = load_donations()
    theirs = _quiet(
        BetaGeoBetaBinomFitter(penalizer_coef=0.01).fit,
        data["frequency"],
        data["recency"],
        data["n_periods"],
        weights=data["customers"],
    )
    ours = BetaGeoBetaBinom(penalizer=0.01, penalizer_kind="lifetimes").fit(
        data, weights=data["customers"]
    )
    np.testing.assert_allclose(
        _ratio(ours, theirs, ["alpha", "beta", "gamma", "delta"]), 1.0, rtol=1e-4
    )


def test_the_default_penalizer_is_not_lifetimes(cdnow):
    """At 0.001, vipml's log penalty gives a and b 42% and 54% above lifetimes' estimates."""
    from lifetimes import BetaGeoFitter

    theirs = _quiet(BetaGeoFitter(penalizer_coef=0.001).fit, *_columns(cdnow))
    ours = BetaGeo(penalizer=0.001).fit(cdnow)
    relative = _ratio(ours, theirs, BG_NAMES) - 1.0
    assert relative[2] == pytest.approx(0.42, abs=0.01)
    assert relative[3] == pytest.approx(0.54, abs=0.01)


def test_unknown_kind_is_refused(cdnow):
    with pytest.raises(ValueError, match="penalizer_kind"):
        BetaGeo(penalizer_kind="l2").fit(cdnow)
