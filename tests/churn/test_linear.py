from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import expit, logit

from vipml.churn.baselines import LogRFMLogistic
from vipml.churn.linear import BLEND_GRID, LogRFMRegression, blend_weight


@pytest.fixture(scope="module")
def rfm_rows():
    rng = np.random.default_rng(3)
    n = 3000
    frame = pd.DataFrame(
        {
            "frequency": rng.poisson(2.0, n).astype(float),
            "recency": rng.uniform(0, 30, n),
            "T": rng.uniform(30, 40, n),
            "monetary_value": rng.gamma(2.0, 20.0, n),
        }
    )
    risk = 1.0 - 0.8 * np.log1p(frame["frequency"]) + 0.05 * (frame["T"] - frame["recency"])
    churned = rng.random(n) < expit(risk - 1.0)
    return frame, churned


def test_regression_is_the_log_rfm_baseline_as_arrays(rfm_rows):
    frame, churned = rfm_rows
    ours = LogRFMRegression().fit(frame, churned)
    baseline = LogRFMLogistic().fit(frame, churned).predict_proba(frame).to_numpy()
    np.testing.assert_allclose(ours.decision_function(frame), logit(baseline), atol=1e-9)
    terms = ours.contributions(frame)
    np.testing.assert_allclose(terms.sum(axis=1) + ours.intercept_, ours.decision_function(frame))
    assert ours.coef_[0] < 0  # more repeat purchases, less churn
    assert all(isinstance(v, np.ndarray) for v in (ours.mean_, ours.scale_, ours.coef_))


def test_blend_weight_finds_the_better_correction():
    rng = np.random.default_rng(0)
    signal = rng.normal(size=5000)
    y = rng.random(signal.size) < expit(signal)
    noise = rng.normal(size=signal.size)
    base = np.zeros(signal.size)
    assert blend_weight(base, noise, signal, y) == 1.0
    assert blend_weight(base, signal, noise, y) == 0.0
    half = blend_weight(base, signal + noise, signal - noise, y)
    assert 0.3 <= half <= 0.7  # errors that cancel: a blend beats either correction


@settings(max_examples=50, deadline=None)
@given(
    values=arrays(np.float64, (3, 40), elements=st.floats(-5, 5)),
    y=arrays(np.bool_, 40),
)
def test_blend_weight_is_on_the_grid_and_never_worse_than_either_end(values, y):
    base, trees, linear = values

    def loss(w):
        p = np.clip(expit(base + (1 - w) * trees + w * linear), 1e-15, 1 - 1e-15)
        return -np.mean(y * np.log(p) + (1 - y) * np.log1p(-p))

    w = blend_weight(base, trees, linear, y)
    assert w in BLEND_GRID
    assert loss(w) <= min(loss(0.0), loss(1.0)) + 1e-12
    assert blend_weight(base, trees, linear, y) == w
