"""Tests of vipml.plotting on CDNOW: the drawn data equal independently computed figures."""

from __future__ import annotations

import sys
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy.special import betaln, gammaln, hyp2f1

from vipml.data import load_cdnow
from vipml.errors import DataValidationError, NotFittedError
from vipml.features import calibration_holdout
from vipml.ltv import BetaGeo, ModifiedBetaGeo, ParetoNBD
from vipml.ltv.evaluate import holdout_table
from vipml.plotting import (
    cumulative_tracking,
    expected_frequency_counts,
    plot_calibration_holdout,
    plot_cumulative_tracking,
    plot_frequency_histogram,
    plot_p_alive_matrix,
)

CALIBRATION_END = "1997-09-30"
OBSERVATION_END = "1998-06-30"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return load_cdnow()


@pytest.fixture(scope="module")
def frame(transactions: pd.DataFrame) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CDNOW has exact duplicate rows (kept)
        return calibration_holdout(
            transactions, CALIBRATION_END, OBSERVATION_END, freq="D", time_unit="W"
        )


@pytest.fixture(scope="module")
def rfm(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns=lambda c: c.removesuffix("_cal"))[["frequency", "recency", "T"]]


@pytest.fixture(scope="module")
def bg(rfm: pd.DataFrame) -> BetaGeo:
    return BetaGeo().fit(rfm)


def bg_pmf(params, n: int, t: np.ndarray) -> np.ndarray:
    """FHL (2005) eq. (8): P(X(t) = n) for a new customer, written directly."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    log_poisson = gammaln(r + n) - gammaln(r) - gammaln(n + 1.0)
    first = np.exp(
        betaln(a, b + n) - betaln(a, b) + log_poisson
        + r * np.log(alpha / (alpha + t)) + n * np.log(t / (alpha + t))
    )  # fmt: skip
    if n == 0:
        return first
    partial = sum(
        np.exp(
            gammaln(r + j) - gammaln(r) - gammaln(j + 1.0)
            + r * np.log(alpha / (alpha + t)) + j * np.log(t / (alpha + t))
        )
        for j in range(n)
    )  # fmt: skip
    return first + np.exp(betaln(a + 1, b + n - 1) - betaln(a, b)) * (1.0 - partial)


def bg_new_customer_expectation(params, t: np.ndarray) -> np.ndarray:
    """FHL (2005) eq. (9): E[X(t)] for a new customer."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))


# --- calibration / holdout --------------------------------------------------------------------


def test_calibration_holdout_lines_are_the_holdout_table(bg, frame) -> None:
    fig, given_ax = plt.subplots()
    ax = plot_calibration_holdout(bg, frame, ax=given_ax)
    assert ax is given_ax
    table = holdout_table(bg, frame)
    actual, predicted = ax.get_lines()
    np.testing.assert_array_equal(actual.get_xdata(), np.arange(8))
    np.testing.assert_array_equal(actual.get_ydata(), table["actual"].to_numpy())
    np.testing.assert_array_equal(predicted.get_ydata(), table["predicted"].to_numpy())
    assert [t.get_text() for t in ax.get_xticklabels()] == table.index.tolist()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["actual", "BG/NBD"]


# --- frequency histogram ----------------------------------------------------------------------


def test_frequency_histogram_bars(bg, rfm) -> None:
    ax = plot_frequency_histogram(bg, rfm)
    assert len(ax.patches) == 16
    heights = np.array([bar.get_height() for bar in ax.patches])
    observed, expected = heights[:8], heights[8:]
    counts = rfm["frequency"].clip(upper=7).value_counts().sort_index()
    np.testing.assert_array_equal(observed, counts.to_numpy())
    T = rfm["T"].to_numpy()
    reference = np.array([bg_pmf(bg.params_, n, T).sum() for n in range(7)])
    np.testing.assert_allclose(expected[:7], reference, rtol=1e-9)
    assert expected.sum() == pytest.approx(len(rfm), rel=1e-12)
    assert expected[7] == pytest.approx(len(rfm) - reference.sum(), rel=1e-9)
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "7+"


@pytest.mark.parametrize("model_class", [ParetoNBD, ModifiedBetaGeo])
def test_expected_counts_of_other_models_are_a_distribution(model_class) -> None:
    sample = load_cdnow(sample=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = calibration_holdout(sample, CALIBRATION_END, OBSERVATION_END, time_unit="W")
    rfm = summary.rename(columns=lambda c: c.removesuffix("_cal"))[["frequency", "recency", "T"]]
    model = model_class().fit(rfm)
    observed, expected = expected_frequency_counts(model, rfm, max_frequency=5)
    assert (expected >= 0).all()
    assert expected.sum() == pytest.approx(len(rfm), rel=1e-12)
    assert observed.sum() == len(rfm)
    # a fitted model reproduces the share of customers without repeat purchases closely
    assert expected[0] == pytest.approx(observed[0], rel=0.05)


# --- tracking ---------------------------------------------------------------------------------


def test_cumulative_tracking_lines(bg, transactions, frame) -> None:
    ax = plot_cumulative_tracking(bg, transactions, CALIBRATION_END, OBSERVATION_END)
    actual_line, expected_line, calibration_line = ax.get_lines()
    weeks = actual_line.get_xdata()
    np.testing.assert_allclose(weeks, np.append(np.arange(78.0), 545 / 7))
    assert calibration_line.get_xdata()[0] == pytest.approx(272 / 7)

    # actual: distinct purchase days after each customer's first, counted with pandas
    days = transactions.assign(day=transactions["timestamp"].dt.normalize())[
        ["customer_id", "day"]
    ].drop_duplicates()
    first = days.groupby("customer_id")["day"].transform("min")
    start = first.min()
    assert start == pd.Timestamp("1997-01-01")
    elapsed = (days.loc[days["day"] > first, "day"] - start).dt.days.to_numpy()
    reference = [(elapsed <= 7 * w + 1e-9).sum() for w in weeks]
    np.testing.assert_array_equal(actual_line.get_ydata(), reference)
    total_repeats = (frame["frequency_cal"] + frame["frequency_holdout"]).sum()
    assert actual_line.get_ydata()[-1] == total_repeats

    # expected: eq. (9) for each customer from their first purchase day (grouped by that day)
    birth = (first.groupby(days["customer_id"]).first() - start).dt.days.value_counts()
    ages = np.maximum(weeks[:, None] - birth.index.to_numpy()[None, :] / 7, 0.0)
    expected = bg_new_customer_expectation(bg.params_, ages) @ birth.to_numpy()
    assert birth.sum() == len(frame)
    np.testing.assert_allclose(expected_line.get_ydata(), expected, rtol=1e-9)
    assert ax.get_xlabel() == "Weeks since 1997-01-01"


def test_cumulative_tracking_in_days_ends_where_the_weekly_one_does(bg, rfm, transactions) -> None:
    weekly = cumulative_tracking(bg, transactions, CALIBRATION_END, OBSERVATION_END)
    daily_model = BetaGeo().fit(rfm.assign(recency=rfm["recency"] * 7, T=rfm["T"] * 7))
    daily = cumulative_tracking(
        daily_model, transactions, CALIBRATION_END, OBSERVATION_END, time_unit="D"
    )
    np.testing.assert_array_equal(daily.index, np.arange(546.0))
    assert daily.attrs["calibration_time"] == 272
    np.testing.assert_array_equal(daily["actual"].iloc[::7], weekly["actual"].iloc[:-1])
    # the same model in days: alpha scales by 7, so the expected curves agree
    np.testing.assert_allclose(daily["expected"].iloc[::7], weekly["expected"].iloc[:-1], rtol=1e-5)


def test_cumulative_tracking_refuses_bad_periods(bg, transactions) -> None:
    with pytest.raises(DataValidationError, match="observation_end"):
        cumulative_tracking(bg, transactions, OBSERVATION_END, CALIBRATION_END)
    with pytest.raises(DataValidationError, match="no exact ratio"):
        cumulative_tracking(bg, transactions, CALIBRATION_END, OBSERVATION_END, time_unit="M")
    with pytest.raises(DataValidationError, match="before every transaction"):
        cumulative_tracking(bg, transactions, "1990-01-01", OBSERVATION_END)
    with pytest.raises(NotFittedError):
        cumulative_tracking(BetaGeo(), transactions, CALIBRATION_END, OBSERVATION_END)


# --- P(alive) matrix --------------------------------------------------------------------------


def test_p_alive_matrix_image(bg, rfm) -> None:
    ax = plot_p_alive_matrix(bg, rfm, max_frequency=20, resolution=30)
    image = ax.images[0].get_array()
    oldest = rfm["T"].max()
    grid = pd.DataFrame(
        [(f, r) for f in range(21) for r in np.linspace(0, oldest, 30)],
        columns=["frequency", "recency"],
    ).assign(T=oldest)
    possible = (grid["frequency"] > 0) | (grid["recency"] == 0)
    reference = np.full(len(grid), np.nan)
    reference[possible] = bg.p_alive(grid[possible]).to_numpy()
    np.testing.assert_allclose(np.ma.filled(image, np.nan).ravel(), reference, rtol=1e-12)
    assert image.shape == (21, 30)
    assert len(ax.figure.axes) == 2  # the heat map and its colour bar
    default = plot_p_alive_matrix(bg, rfm)
    assert default.images[0].get_array().shape == (int(rfm["frequency"].max()) + 1, 100)


def test_p_alive_matrix_refuses_bad_settings(bg, rfm) -> None:
    with pytest.raises(ValueError, match="resolution"):
        plot_p_alive_matrix(bg, rfm, resolution=1)
    with pytest.raises(ValueError, match="max_frequency"):
        plot_p_alive_matrix(bg, rfm, max_frequency=-1)


# --- output and the optional dependency -------------------------------------------------------


def test_saves_a_png(bg, frame, tmp_path) -> None:
    ax = plot_calibration_holdout(bg, frame)
    path = tmp_path / "calibration_holdout.png"
    ax.figure.savefig(path)
    content = path.read_bytes()
    assert len(content) > 1000
    assert content[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_matplotlib_names_the_extra(bg, frame, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install vipml\[plot\]"):
        plot_calibration_holdout(bg, frame)
