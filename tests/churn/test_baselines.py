from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from vipml.churn.baselines import (
    LogRFMLogistic,
    NoPurchaseBaseline,
    PAliveBaseline,
    RecencyBaseline,
    make_baseline,
)
from vipml.errors import DataValidationError
from vipml.features.split import training_snapshots
from vipml.ltv import BetaGeo, ParetoNBD


@pytest.fixture(scope="module")
def snapshots(small_shop):
    return training_snapshots(
        small_shop.transactions,
        cutoffs=["2024-12-31", "2025-03-31"],
        horizon="13W",
        time_unit="W",
    )


def test_recency_baseline_ranks_like_days_since_last_purchase(snapshots):
    y = snapshots["churned"].to_numpy()
    p = RecencyBaseline().fit(snapshots, y).predict_proba(snapshots)
    assert roc_auc_score(y, p) == pytest.approx(
        roc_auc_score(y, snapshots["days_since_last_purchase"])
    )


def test_log_rfm_logistic_beats_chance(snapshots):
    y = snapshots["churned"].to_numpy()
    p = LogRFMLogistic().fit(snapshots, y).predict_proba(snapshots)
    assert p.between(0, 1).all() and roc_auc_score(y, p) > 0.7


@pytest.mark.parametrize(("name", "model"), [("bgnbd", BetaGeo), ("pareto_nbd", ParetoNBD)])
def test_no_purchase_baselines_are_the_models_probability(snapshots, name, model):
    rfm = snapshots.loc["2025-03-31"]
    p = NoPurchaseBaseline(model=name, horizon="13W").fit(rfm).predict_proba(rfm)
    expected = model().fit(rfm).probability_of_purchases(rfm, 0, 13.0)
    np.testing.assert_allclose(p.to_numpy(), expected.to_numpy())


def test_one_minus_p_alive_calls_every_one_time_buyer_safe(snapshots):
    rfm = snapshots.loc["2025-03-31"]
    p = PAliveBaseline().fit(rfm).predict_proba(rfm)
    assert (p[rfm["frequency"] == 0] == 0).all()


def test_errors(snapshots):
    with pytest.raises(DataValidationError, match="supervised"):
        RecencyBaseline().fit(snapshots)
    with pytest.raises(DataValidationError, match="days_since_last_purchase"):
        RecencyBaseline().fit(pd.DataFrame({"x": [1.0]}), [1])
    with pytest.raises(ValueError, match="unknown baseline"):
        make_baseline("coin_flip", "13W")
    with pytest.raises(ValueError, match="bgnbd"):
        NoPurchaseBaseline(model="mbgnbd").fit(snapshots)
