from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from vipml.churn.metrics import (
    METRIC_COLUMNS,
    capture_curve,
    classification_metrics,
    expected_calibration_error,
    reliability_table,
    score_table,
    top_fraction,
)
from vipml.errors import DataValidationError


@pytest.fixture(scope="module")
def calibrated():
    rng = np.random.default_rng(3)
    p = rng.random(50_000)
    return (rng.random(p.size) < p).astype(float), p


@pytest.mark.parametrize("strategy", ["quantile", "uniform"])
def test_ece_small_for_calibrated_large_for_shifted(calibrated, strategy):
    y, p = calibrated
    assert expected_calibration_error(y, p, strategy=strategy) < 0.01
    shifted = np.clip(p + 0.2, 0, 1)
    assert expected_calibration_error(y, shifted, strategy=strategy) > 0.15


def test_equal_mass_bins_hold_equal_counts_and_keep_ties_together(calibrated):
    y, p = calibrated
    table = reliability_table(y, p, bins=10)
    assert table["n"].min() >= 4_999 and table["n"].max() <= 5_001
    tied = reliability_table([0, 1, 1, 0, 1], [0.2, 0.2, 0.2, 0.2, 0.9], bins=4)
    assert tied["n"].tolist() == [4, 1]


def test_top_fraction_shares_ties_pro_rata():
    # Every score tied: the top decile holds a tenth of the churners on average.
    y = np.array([1] * 30 + [0] * 70, dtype=float)
    lift, capture = top_fraction(y, np.zeros(100), 0.1)
    assert capture == pytest.approx(0.1) and lift == pytest.approx(1.0)
    # Expected capture over random tie-breaks equals the pro-rata value.
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 100).astype(float)
    y = (rng.random(100) < 0.4).astype(float)
    draws = []
    for _ in range(4000):
        order = np.lexsort((rng.random(100), -scores))
        draws.append(y[order[:25]].sum() / y.sum())
    assert capture_curve(y, scores, [0.25])[0] == pytest.approx(np.mean(draws), abs=0.01)


def test_capture_curve_ends_at_one_and_never_decreases(calibrated):
    y, p = calibrated
    curve = capture_curve(y, p, np.linspace(0.01, 1.0, 100))
    assert curve[-1] == pytest.approx(1.0)
    assert np.all(np.diff(curve) >= -1e-12)


def test_classification_metrics_match_sklearn(calibrated):
    y, p = calibrated
    metrics = classification_metrics(y, p)
    assert list(metrics) == list(METRIC_COLUMNS)
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert metrics["brier"] == pytest.approx(np.mean((p - y) ** 2))
    with pytest.raises(DataValidationError, match="single class"):
        classification_metrics(np.ones(3), [0.2, 0.5, 0.9])


def test_score_table_has_one_row_per_method():
    frame = pd.DataFrame(
        {"churned": [True, False, True, False], "a": [0.9, 0.1, 0.6, 0.4], "b": [0.5] * 4}
    )
    frame.attrs["training"] = {"a": "rule a"}
    table = score_table(frame, bins=2)
    assert list(table.index) == ["a", "b"]
    assert list(table.columns) == [*METRIC_COLUMNS, "training"]
    assert table.loc["a", "training"] == "rule a"
    assert table.attrs["churn_rate"] == 0.5 and table.attrs["ece_bins"] == "2 equal-mass"
