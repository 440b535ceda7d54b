"""Holdout validation on CDNOW, bootstrap intervals and stability, revenue capture, warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from vipml.errors import DataValidationError, ModelAssumptionWarning
from vipml.segments import (
    Segmenter,
    bootstrap_stability,
    revenue_capture,
    validate_holdout,
)
from vipml.segments.validate import _bootstrap_means


@pytest.fixture(scope="module")
def cdnow_segmenter(cdnow_features: pd.DataFrame) -> Segmenter:
    return Segmenter(n_segments=5).fit(cdnow_features)


def test_cdnow_segments_differ_in_the_holdout(
    cdnow_segmenter: Segmenter, cdnow_features: pd.DataFrame, cdnow_outcomes: pd.DataFrame
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelAssumptionWarning)
        result = validate_holdout(
            cdnow_segmenter.labels_, cdnow_outcomes, predicted_value=cdnow_features["clv"]
        )
    tests = result.tests
    assert (tests["p_value"] < 0.001).all()
    # well past a medium effect (epsilon-squared 0.08 medium, 0.26 large; 0.28 when written)
    assert tests.loc["spend_next", "epsilon_squared"] > 0.2
    table = result.table
    assert table["n_customers"].sum() == len(cdnow_features)
    # segments are numbered by predicted value; realised revenue follows that order
    assert result.rank_agreement["rho"] == pytest.approx(1.0)
    assert table["revenue_per_customer"].is_monotonic_decreasing
    assert table.loc[0, "repeat_rate"] > 0.8 and table.loc[4, "repeat_rate"] < 0.2
    np.testing.assert_allclose(table["churn_rate"], 1.0 - table["repeat_rate"])
    for metric in ("repeat_rate", "purchases_per_customer", "revenue_per_customer"):
        assert (table[f"{metric}_low"] <= table[metric]).all()
        assert (table[metric] <= table[f"{metric}_high"]).all()
    # the Champions' interval lies above every other segment's
    assert (
        table.loc[0, "revenue_per_customer_low"] > table.loc[1:, "revenue_per_customer_high"].max()
    )


def test_auto_segments_differ_too(
    cdnow_features: pd.DataFrame, cdnow_outcomes: pd.DataFrame
) -> None:
    labels = Segmenter().fit(cdnow_features).labels_
    result = validate_holdout(labels, cdnow_outcomes, n_boot=50)
    assert result.tests.loc["spend_next", "p_value"] < 0.001
    assert result.tests.loc["spend_next", "epsilon_squared"] > 0.2


def test_bootstrap_is_seeded_and_matches_a_plain_loop() -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, 40)
    columns = rng.gamma(1.0, 5.0, (40, 2))
    first = _bootstrap_means(codes, columns, 25, np.random.default_rng(3))
    second = _bootstrap_means(codes, columns, 25, np.random.default_rng(3))
    np.testing.assert_array_equal(first, second)
    # same draws, one replicate and one segment at a time
    draws = np.random.default_rng(3).random((25, 40))
    order = np.argsort(codes, kind="stable")
    sorted_codes, values = codes[order], columns[order]
    for b in range(25):
        for segment in range(3):
            members = np.flatnonzero(sorted_codes == segment)
            picks = members[0] + (draws[b, members] * len(members)).astype(int)
            np.testing.assert_allclose(first[b, segment], values[picks].mean(axis=0))


def test_random_segments_warn(cdnow_outcomes: pd.DataFrame) -> None:
    rng = np.random.default_rng(0)
    random_labels = pd.Series(rng.integers(0, 4, len(cdnow_outcomes)), index=cdnow_outcomes.index)
    with pytest.warns(ModelAssumptionWarning, match="barely differ in holdout revenue"):
        result = validate_holdout(random_labels, cdnow_outcomes, n_boot=20)
    assert result.tests.loc["spend_next", "epsilon_squared"] < 0.001


def test_validation_errors(cdnow_outcomes: pd.DataFrame) -> None:
    labels = pd.Series(0, index=cdnow_outcomes.index[:10])
    with pytest.raises(DataValidationError, match="at least two segments"):
        validate_holdout(labels, cdnow_outcomes)
    with pytest.raises(DataValidationError, match="lacks column"):
        validate_holdout(labels, cdnow_outcomes.drop(columns="churned"))
    with pytest.raises(DataValidationError, match="have no outcomes"):
        validate_holdout(pd.Series([0, 1], index=[-1, -2]), cdnow_outcomes)
    with pytest.raises(ValueError, match="level"):
        validate_holdout(labels, cdnow_outcomes, level=1.5)


def test_named_categorical_segments_keep_their_order() -> None:
    names = pd.Series(
        pd.Categorical(
            ["Lost", "Champions", "Lost", "Champions"], categories=["Champions", "Lost"]
        ),
        index=list("abcd"),
    )
    outcomes = pd.DataFrame(
        {"purchases_next": [0, 3, 0, 2], "spend_next": [0, 90.0, 0, 50], "churned": [1, 0, 1, 0]},
        index=list("abcd"),
    ).astype({"churned": bool})
    result = validate_holdout(names, outcomes, n_boot=10, alpha=1.0, min_effect=0.0)
    assert result.table.index.tolist() == ["Champions", "Lost"]


def test_cdnow_segments_are_stable(
    cdnow_segmenter: Segmenter, cdnow_features: pd.DataFrame
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelAssumptionWarning)
        stability = bootstrap_stability(cdnow_segmenter, cdnow_features, n_boot=8)
    assert stability.mean_ari > 0.95
    assert (stability.jaccard["mean"] > 0.85).all()
    assert stability.jaccard["name"].tolist() == cdnow_segmenter.names_.tolist()
    again = bootstrap_stability(cdnow_segmenter, cdnow_features, n_boot=8)
    np.testing.assert_array_equal(stability.ari, again.ari)


def test_structureless_data_are_unstable() -> None:
    rng = np.random.default_rng(0)
    noise = pd.DataFrame(rng.normal(size=(400, 2)), columns=["x", "y"])
    segmenter = Segmenter(n_segments=7).fit(noise)
    with pytest.warns(ModelAssumptionWarning, match="unstable under bootstrap"):
        stability = bootstrap_stability(segmenter, noise, n_boot=8)
    assert (stability.jaccard["mean"] < 0.5).any()


def test_cdnow_revenue_capture(cdnow_features: pd.DataFrame, cdnow_outcomes: pd.DataFrame) -> None:
    realised = cdnow_outcomes["spend_next"].reindex(cdnow_features.index)
    capture = revenue_capture(
        {"CLV": cdnow_features["clv"], "past spend": cdnow_features["revenue"]}, realised
    )
    assert capture.index.tolist() == [0.05, 0.10]
    for share in (0.05, 0.10):
        # Independent reference: the realised revenue of the top customers by CLV (no ties in CLV).
        top = (
            cdnow_features["clv"].sort_values(ascending=False).index[: round(share * len(realised))]
        )
        expected = realised.loc[top].sum() / realised.sum()
        assert capture.loc[share, "CLV"] == pytest.approx(expected, abs=1e-3)
    assert (capture["CLV"] > capture["past spend"]).all()
    assert (capture["past spend"] > 3 * capture["random"]).all()


def test_revenue_capture_errors() -> None:
    realised = pd.Series([1.0, 2.0], index=["a", "b"])
    with pytest.raises(DataValidationError, match="other customers"):
        revenue_capture(pd.Series([1.0], index=["a"], name="clv"), realised)
    with pytest.raises(DataValidationError, match="sums to zero"):
        revenue_capture(pd.Series([1.0, 2.0], index=["a", "b"]), realised * 0)
