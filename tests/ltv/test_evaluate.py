"""Tests of vipml.ltv.evaluate on CDNOW (calibration to 1997-09-30, holdout to 1998-06-30)."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from vipml.data import load_cdnow
from vipml.errors import DataValidationError, NotFittedError
from vipml.features import calibration_holdout
from vipml.ltv import BetaGeo, GammaGamma, ModifiedBetaGeo
from vipml.ltv.evaluate import (
    HoldoutReport,
    evaluate_holdout,
    holdout_metrics,
    holdout_table,
    top_revenue_share,
)

HOLDOUT_WEEKS = 39.0


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """CDNOW master, weeks; one customer whose repeat purchases are all $0 is dropped (see
    ``test_spend_model_needs_positive_spend``), so the Gamma-Gamma model applies to all."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CDNOW has exact duplicate rows (kept)
        full = calibration_holdout(
            load_cdnow(), "1997-09-30", "1998-06-30", freq="D", time_unit="W"
        )
    return full[(full["frequency_cal"] == 0) | (full["monetary_value_cal"] > 0)]


@pytest.fixture(scope="module")
def calibration(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns=lambda c: c.removesuffix("_cal"))[
        ["frequency", "recency", "T", "monetary_value"]
    ]


@pytest.fixture(scope="module")
def bg(calibration: pd.DataFrame) -> BetaGeo:
    return BetaGeo().fit(calibration)


@pytest.fixture(scope="module")
def gg(calibration: pd.DataFrame) -> GammaGamma:
    return GammaGamma().fit(calibration)


def test_cdnow_frame(frame: pd.DataFrame) -> None:
    assert len(frame) == 23_569
    assert (frame["duration_holdout"] == HOLDOUT_WEEKS).all()


# --- table ------------------------------------------------------------------------------------


def test_table_matches_pandas_groupby(bg, frame, calibration) -> None:
    table = holdout_table(bg, frame)
    bucket = frame["frequency_cal"].clip(upper=7).astype(int)
    predicted = bg.expected_purchases(calibration, horizon=HOLDOUT_WEEKS)
    grouped = pd.DataFrame(
        {"bucket": bucket, "actual": frame["frequency_holdout"], "predicted": predicted}
    ).groupby("bucket")
    assert table.index.tolist() == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert table.index.name == "frequency_cal"
    assert table.columns.tolist() == ["n_customers", "actual", "predicted", "error"]
    np.testing.assert_array_equal(table["n_customers"], grouped.size().to_numpy())
    np.testing.assert_allclose(table["actual"], grouped["actual"].mean(), rtol=1e-12)
    np.testing.assert_allclose(table["predicted"], grouped["predicted"].mean(), rtol=1e-12)
    np.testing.assert_allclose(table["error"], table["predicted"] - table["actual"], rtol=1e-12)
    assert table["n_customers"].sum() == len(frame)


def test_table_of_another_model_and_bucket_count(frame, calibration) -> None:
    mbg = ModifiedBetaGeo().fit(calibration)
    table = holdout_table(mbg, frame, max_frequency=3)
    assert table.index.tolist() == ["0", "1", "2", "3+"]
    heavy = frame["frequency_cal"] >= 3
    expected = mbg.expected_purchases(calibration[heavy.to_numpy()], horizon=HOLDOUT_WEEKS)
    assert table.loc["3+", "predicted"] == pytest.approx(expected.mean(), rel=1e-12)
    assert table.loc["3+", "actual"] == pytest.approx(frame.loc[heavy, "frequency_holdout"].mean())


def test_empty_buckets_are_kept_as_nan(bg, frame) -> None:
    light = frame[frame["frequency_cal"] <= 2]
    table = holdout_table(bg, light, max_frequency=4)
    assert table["n_customers"].tolist()[3:] == [0, 0]
    assert table.loc[["3", "4+"], ["actual", "predicted", "error"]].isna().all().all()


def test_table_uses_each_customers_duration(bg, frame, calibration) -> None:
    part = frame.iloc[:200].copy()
    part["duration_holdout"] = np.where(np.arange(200) % 2 == 0, 13.0, 39.0)
    table = holdout_table(bg, part, max_frequency=1)
    cal = calibration.iloc[:200]
    predicted = np.where(
        np.arange(200) % 2 == 0,
        bg.expected_purchases(cal, horizon=13.0),
        bg.expected_purchases(cal, horizon=39.0),
    )
    repeat = part["frequency_cal"].to_numpy() >= 1
    assert table.loc["1+", "predicted"] == pytest.approx(predicted[repeat].mean(), rel=1e-12)


# --- metrics ----------------------------------------------------------------------------------


def test_purchase_metrics_match_numpy_and_scipy(bg, frame, calibration) -> None:
    metrics = holdout_metrics(bg, frame)
    predicted = bg.expected_purchases(calibration, horizon=HOLDOUT_WEEKS).to_numpy()
    actual = frame["frequency_holdout"].to_numpy()
    error = predicted - actual
    assert metrics["n_customers"] == len(frame)
    assert metrics["mae"] == pytest.approx(np.abs(error).mean(), rel=1e-12)
    assert metrics["rmse"] == pytest.approx(np.sqrt((error**2).mean()), rel=1e-12)
    assert metrics["bias"] == pytest.approx(error.mean(), rel=1e-12)
    total = 100 * (predicted.sum() - actual.sum()) / actual.sum()
    assert metrics["total_error_pct"] == pytest.approx(total, rel=1e-12)
    assert metrics["spearman"] == pytest.approx(spearmanr(predicted, actual)[0], rel=1e-12)
    assert set(metrics) == {"n_customers", "mae", "rmse", "bias", "total_error_pct", "spearman"}


def boundary_share(score: np.ndarray, revenue: np.ndarray, fraction: float) -> float:
    """Top-share with fractional ties, via a pandas groupby over distinct scores."""
    n_top = int(np.ceil(fraction * score.size))
    groups = (
        pd.DataFrame({"score": score, "revenue": revenue})
        .groupby("score")["revenue"]
        .agg(["size", "sum"])
        .sort_index(ascending=False)
    )
    before = groups["size"].cumsum().shift(fill_value=0)
    taken = (n_top - before).clip(lower=0, upper=groups["size"])
    return float((groups["sum"] * taken / groups["size"]).sum() / revenue.sum())


def test_value_metrics_match_an_independent_ranking(bg, gg, frame, calibration) -> None:
    metrics = holdout_metrics(bg, frame, spend_model=gg)
    clv = (
        gg.expected_spend(calibration) * bg.expected_purchases(calibration, HOLDOUT_WEEKS)
    ).to_numpy()  # no discounting: CLV over the holdout is spend x purchases
    past = (frame["frequency_cal"] * frame["monetary_value_cal"]).to_numpy()
    revenue = (frame["frequency_holdout"] * frame["monetary_value_holdout"]).to_numpy()
    for pct, fraction in ((5, 0.05), (10, 0.10)):
        assert metrics[f"clv_top{pct}_revenue_share"] == pytest.approx(
            boundary_share(clv, revenue, fraction), rel=1e-9
        )
        assert metrics[f"past_spend_top{pct}_revenue_share"] == pytest.approx(
            boundary_share(past, revenue, fraction), rel=1e-12
        )
    # on CDNOW the CLV ranking finds more of the holdout revenue than past spend does
    assert metrics["clv_top10_revenue_share"] >= metrics["past_spend_top10_revenue_share"]


def test_discounting_changes_the_ranking_input_only_slightly(bg, gg, frame) -> None:
    plain = holdout_metrics(bg, frame, spend_model=gg)
    discounted = holdout_metrics(bg, frame, spend_model=gg, discount_rate=0.002)
    assert discounted["clv_top10_revenue_share"] == pytest.approx(
        plain["clv_top10_revenue_share"], abs=0.01
    )
    assert discounted["mae"] == plain["mae"]


def test_metrics_do_not_depend_on_row_order_or_frame_type(bg, gg, frame) -> None:
    expected = holdout_metrics(bg, frame, spend_model=gg)
    shuffled = holdout_metrics(bg, frame.sample(frac=1.0, random_state=5), spend_model=gg)
    assert shuffled == pytest.approx(expected, rel=1e-12)
    from_polars = holdout_metrics(bg, pl.from_pandas(frame.reset_index()), spend_model=gg)
    assert from_polars == pytest.approx(expected, rel=1e-12)


def test_cdnow_report(bg, gg, frame) -> None:
    """The CDNOW figures (run with ``-s`` to see them)."""
    report = evaluate_holdout(bg, frame, spend_model=gg)
    print(f"\nBG/NBD {bg.params_}\nGamma-Gamma {gg.params_}\n{report}")
    assert isinstance(report, HoldoutReport)
    pd.testing.assert_frame_equal(report.table, holdout_table(bg, frame))
    assert report.metrics == holdout_metrics(bg, frame, spend_model=gg)
    text = str(report)
    assert "7+" in text and "clv_top5_revenue_share" in text and "n_customers  " in text
    assert text.splitlines()[0] == "Holdout purchases by calibration frequency"
    # as measured on CDNOW: BG/NBD under-predicts holdout purchases (by 14 %), in every bucket
    assert -20 < report.metrics["total_error_pct"] < 0
    assert (report.table["actual"].diff().dropna() > 0).all()
    assert (report.table["predicted"].diff().dropna() > 0).all()
    assert (report.table["error"] < 0).all()
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.table = report.table  # type: ignore[misc]


# --- top_revenue_share ------------------------------------------------------------------------


def test_top_share_splits_ties_at_the_boundary() -> None:
    score = np.array([5.0, 2.0, 2.0, 2.0, 1.0])
    revenue = np.array([10.0, 3.0, 6.0, 9.0, 12.0])
    # top 2 = the 5.0 customer and one place shared by three tied customers
    assert top_revenue_share(score, revenue, 0.4) == pytest.approx((10 + 18 / 3) / 40)
    assert top_revenue_share(score, revenue, 0.2) == pytest.approx(10 / 40)
    assert top_revenue_share(score, revenue, 1.0) == pytest.approx(1.0)
    assert np.isnan(top_revenue_share(score, np.zeros(5), 0.4))


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.tuples(st.integers(0, 5), st.floats(0.0, 100.0)), min_size=1, max_size=40),
    fraction=st.floats(0.01, 1.0),
    seed=st.integers(0, 1000),
)
def test_top_share_is_order_free_and_between_0_and_1(values, fraction, seed) -> None:
    score = np.array([v[0] for v in values], dtype=float)
    revenue = np.array([v[1] for v in values])
    share = top_revenue_share(score, revenue, fraction)
    if revenue.sum() == 0:
        assert np.isnan(share)
        return
    order = np.random.default_rng(seed).permutation(score.size)
    assert top_revenue_share(score[order], revenue[order], fraction) == pytest.approx(share)
    assert -1e-12 <= share <= 1 + 1e-12
    assert share == pytest.approx(boundary_share(score, revenue, fraction))


# --- errors -----------------------------------------------------------------------------------


def test_refuses_bad_frames(bg, frame) -> None:
    with pytest.raises(DataValidationError, match="frequency_holdout"):
        holdout_table(bg, frame.drop(columns="frequency_holdout"))
    with pytest.raises(DataValidationError, match="frequency_holdout"):
        holdout_table(bg, frame.assign(frequency_holdout=-1.0))
    with pytest.raises(DataValidationError, match="frequency_holdout"):
        holdout_metrics(bg, frame.assign(frequency_holdout=0.5))
    with pytest.raises(DataValidationError, match="duration_holdout"):
        holdout_table(bg, frame.assign(duration_holdout=0.0))
    with pytest.raises(DataValidationError, match="recency"):
        holdout_table(bg, frame.assign(recency_cal=frame["T_cal"] + 1))


def test_value_metrics_need_one_holdout_period(bg, gg, frame) -> None:
    uneven = frame.assign(duration_holdout=np.where(np.arange(len(frame)) < 10, 13.0, 39.0))
    assert holdout_metrics(bg, uneven)["n_customers"] == len(frame)  # purchases: fine
    with pytest.raises(DataValidationError, match="duration_holdout"):
        holdout_metrics(bg, uneven, spend_model=gg)
    with pytest.raises(DataValidationError, match="monetary_value_holdout"):
        holdout_metrics(bg, frame.drop(columns="monetary_value_holdout"), spend_model=gg)


def test_spend_model_refuses_negative_spend(bg, gg, frame) -> None:
    negative = frame.copy()
    negative.loc[negative.index[negative["frequency_cal"] > 0][0], "monetary_value_cal"] = -1.0
    with pytest.raises(DataValidationError, match="monetary_value < 0"):
        holdout_metrics(bg, negative, spend_model=gg)


def test_refuses_bad_models_and_settings(bg, gg, frame) -> None:
    with pytest.raises(TypeError, match="purchase_model"):
        holdout_table(GammaGamma(), frame)
    with pytest.raises(NotFittedError):
        holdout_metrics(BetaGeo(), frame)
    with pytest.raises(ValueError, match="max_frequency"):
        holdout_table(bg, frame, max_frequency=0)
    with pytest.raises(ValueError, match="discount_rate"):
        holdout_metrics(bg, frame, spend_model=gg, discount_rate=-1)
