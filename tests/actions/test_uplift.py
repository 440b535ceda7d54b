"""Uplift models and the Qini/uplift curves: recovery, determinism, saving, targeting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vipml.actions import (
    UpliftModel,
    auuc_score,
    compare_targeting,
    qini_coefficient,
    qini_curve,
    uplift_at_k,
    uplift_curve,
)
from vipml.data import simulate_campaign
from vipml.errors import DataValidationError
from vipml.features import labels_after

from .conftest import CUTOFF

FAST = {"num_boost_round": 60}


def experiment(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x": rng.uniform(-1, 1, n), "z": rng.normal(size=n)})
    t = rng.random(n) < 0.3  # a small treated group, as campaigns with holdouts are not
    effect = np.where(X["x"] > 0, 0.25, -0.05)
    y = (rng.random(n) < 0.3 + t * effect).astype(int)
    return X, y, t, effect


@pytest.mark.parametrize("method", ["two_model", "x_learner"])
def test_uplift_models_rank_by_the_true_effect(method):
    X, y, t, effect = experiment()
    model = UpliftModel(method, lgbm_params=FAST).fit(X, y, t)
    test_X, test_y, test_t, test_effect = experiment(seed=1)
    tau = model.predict(test_X)
    assert isinstance(tau, pd.Series) and tau.index.equals(test_X.index)
    assert tau[test_effect > 0].mean() > tau[test_effect < 0].mean() + 0.1
    assert qini_coefficient(test_y, tau, test_t) > qini_coefficient(test_y, -test_X["z"], test_t)
    assert model.outcome_ == "binary" and model.propensity_ == pytest.approx(t.mean())
    assert model.average_effect_ == pytest.approx(y[t].mean() - y[~t].mean())


def test_continuous_outcomes_and_arrays():
    X, y, t, _ = experiment()
    spend = y * 20.0 + np.asarray(X["x"]) * 3.0
    model = UpliftModel("two_model", lgbm_params=FAST).fit(X.to_numpy(), spend, t)
    assert model.outcome_ == "continuous"
    tau = model.predict(X.to_numpy())
    assert isinstance(tau, np.ndarray) and tau.shape == (len(X),)
    outcomes = model.predict_outcomes(X.to_numpy())
    assert np.allclose(outcomes["treated"] - outcomes["control"], tau)


def test_same_seed_same_model_bit_for_bit():
    X, y, t, _ = experiment(2000)
    a = UpliftModel(lgbm_params=FAST, random_state=3).fit(X, y, t).predict(X)
    b = UpliftModel(lgbm_params=FAST, random_state=3).fit(X, y, t).predict(X)
    assert np.array_equal(a.to_numpy(), b.to_numpy())


def test_uplift_model_saves_without_pickle():
    from vipml._portable import from_document, to_document

    X, y, t, _ = experiment(2000)
    model = UpliftModel(lgbm_params=FAST).fit(X, y, t)
    boosters: dict = {}
    document = to_document(model, boosters)
    texts = {name: b.model_to_string() for name, b in boosters.items()}
    import lightgbm as lgb

    back = from_document(document, {n: lgb.Booster(model_str=s) for n, s in texts.items()})
    assert np.array_equal(back.predict(X).to_numpy(), model.predict(X).to_numpy())


def test_bad_experiments_are_refused():
    X, y, t, _ = experiment(500)
    with pytest.raises(DataValidationError, match="one of each"):
        UpliftModel().fit(X, y[:-1], t)
    with pytest.raises(DataValidationError, match="0/1"):
        UpliftModel().fit(X, y, np.where(t, 2, 0))
    with pytest.raises(DataValidationError, match="at least 20"):
        UpliftModel().fit(X, y, np.arange(500) < 5)
    with pytest.raises(DataValidationError, match="method"):
        UpliftModel("s_learner").fit(X, y, t)
    with pytest.raises(DataValidationError, match="binary"):
        UpliftModel(outcome="binary").fit(X, y * 2.5, t)
    model = UpliftModel(lgbm_params=FAST).fit(X, y, t)
    with pytest.raises(DataValidationError, match="lacks"):
        model.predict(X[["x"]])


def test_curves_end_at_the_total_incremental_response():
    X, y, t, _ = experiment(3000)
    score = np.asarray(X["x"])
    qini = qini_curve(y, score, t)
    total = y[t].sum() - y[~t].sum() * t.sum() / (~t).sum()
    assert qini["qini"].iloc[-1] == pytest.approx(total)
    assert qini["n_targeted"].iloc[-1] == len(y) and qini["n_targeted"].iloc[0] == 0
    uplift = uplift_curve(y, score, t)
    assert uplift["uplift"].iloc[-1] == pytest.approx((y[t].mean() - y[~t].mean()) * len(y))
    # ties form one point
    assert len(qini_curve(y, np.zeros(len(y)), t)) == 2


def test_coefficients_perfect_random_and_reversed():
    X, y, t, _ = experiment(3000)
    perfect = y * t - y * (1 - t)
    assert qini_coefficient(y, perfect, t) == pytest.approx(1.0)
    assert auuc_score(y, perfect, t) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    assert abs(np.mean([qini_coefficient(y, rng.random(len(y)), t) for _ in range(20)])) < 0.05
    assert qini_coefficient(y, -perfect, t) < 0
    assert uplift_at_k(y, np.asarray(X["x"]), t, 0.3) > uplift_at_k(y, -np.asarray(X["x"]), t, 0.3)
    table = compare_targeting(y, t, {"x": X["x"], "-x": -X["x"]})
    assert list(table.columns) == ["qini", "auuc", "uplift_at_k"]
    assert table.loc["x", "qini"] > table.loc["-x", "qini"]
    with pytest.raises(DataValidationError, match="both"):
        qini_coefficient(y, X["x"], np.ones(len(y)))
    with pytest.raises(DataValidationError, match="one value"):
        qini_curve(y[:-1], X["x"], t)


def test_uplift_model_beats_targeting_by_churn_risk_on_the_simulator(shop, scores, pipeline):
    """A past experiment on half the customers trains the model; the other half judges it."""
    ids = scores.index
    rng = np.random.default_rng(11)
    treated = rng.random(ids.size) < 0.5
    campaign = simulate_campaign(shop, ids[treated], CUTOFF, "8W", random_state=4)
    spend = labels_after(campaign.transactions, CUTOFF, "8W")["spend_next"].reindex(ids)
    features = pipeline.build_features(shop.transactions, at=CUTOFF)
    X = features.join(scores[["churn_probability", "clv", "p_alive"]])
    train = rng.random(ids.size) < 0.5
    model = UpliftModel(lgbm_params={"num_boost_round": 100}).fit(
        X[train], spend[train], treated[train]
    )
    test = ~train
    table = compare_targeting(
        spend[test],
        treated[test],
        {
            "uplift model": model.predict(X[test]),
            "churn risk": scores.loc[test, "churn_probability"],
            "CLV": scores.loc[test, "clv"],
        },
    )
    assert table.loc["uplift model", "qini"] > table.loc["churn risk", "qini"]
    assert table.loc["uplift model", "qini"] > 0.2
