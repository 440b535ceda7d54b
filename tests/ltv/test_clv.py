"""Tests of vipml.ltv.clv: discounted customer lifetime value and its interval."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import hyp2f1

import vipml.ltv.clv as clv_module
from vipml.errors import DataValidationError, NotFittedError
from vipml.ltv import BetaGeo, GammaGamma, ModifiedBetaGeo, ParetoNBD
from vipml.ltv.clv import (
    customer_lifetime_value,
    customer_lifetime_value_interval,
    per_period_rate,
)

BG_TRUTH = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
GG_TRUTH = {"p": 6.25, "q": 3.74, "v": 15.44}
WEEKLY = 1.10 ** (7.0 / 365.25) - 1.0  # 10 % a year, written independently of per_period_rate


@pytest.fixture(scope="module")
def rfm(simulate_bg, simulate_spend, ages) -> pd.DataFrame:
    """3,000 simulated customers (weeks) with a Gamma-Gamma mean spend."""
    rng = np.random.default_rng(7)
    frame = simulate_bg(ages(3000, 6), *BG_TRUTH.values(), rng)
    frame["monetary_value"] = simulate_spend(frame["frequency"].to_numpy(), *GG_TRUTH.values(), rng)
    return frame


@pytest.fixture(scope="module")
def spend_model(rfm: pd.DataFrame) -> GammaGamma:
    return GammaGamma().fit(rfm)


@pytest.fixture(scope="module")
def purchase_models(rfm: pd.DataFrame) -> dict[str, object]:
    return {cls.__name__: cls().fit(rfm) for cls in (BetaGeo, ParetoNBD, ModifiedBetaGeo)}


@pytest.fixture(scope="module")
def bg(purchase_models) -> BetaGeo:
    return purchase_models["BetaGeo"]


@pytest.fixture(scope="module")
def few(rfm: pd.DataFrame) -> pd.DataFrame:
    """A few customers: no repeat purchase, a recent and a lapsed repeat buyer, a heavy buyer."""
    picks = [
        rfm.index[rfm["frequency"] == 0][0],
        rfm.index[(rfm["frequency"] == 2) & (rfm["recency"] > 0.8 * rfm["T"])][0],
        rfm.index[(rfm["frequency"] == 2) & (rfm["recency"] < 0.2 * rfm["T"])][0],
        rfm["frequency"].idxmax(),
    ]
    return rfm.loc[picks]


# --- independent references -------------------------------------------------------------------


def bg_conditional_expectation(params, x, t_x, T, t):
    """FHL (2005) eq. (10), written directly with scipy's 2F1 (fine for moderate inputs)."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    z = t / (alpha + T + t)
    body = (a + b + x - 1.0) / (a - 1.0)
    body *= 1.0 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(
        r + x, b + x, a + b + x - 1, z
    )
    dropout = np.where(
        x > 0, a / (b + np.maximum(x, 1) - 1.0) * ((alpha + T) / (alpha + t_x)) ** (r + x), 0.0
    )
    return body / (1.0 + dropout)


def gg_expected_spend(params, x, m):
    """Fader & Hardie (2013) eq. (5)."""
    p, q, v = (params[k] for k in ("p", "q", "v"))
    return (p * (v + x * m)) / (p * x + q - 1.0)


def direct_clv(expected, spend, horizon, step, rate):
    """sum_k spend * (E(t_k) - E(t_(k-1))) / (1 + rate) ** t_k with one call per step."""
    total = np.zeros_like(spend)
    previous = np.zeros_like(spend)
    for k in range(1, int(round(horizon / step)) + 1):
        current = expected(k * step)
        total += spend * (current - previous) / (1.0 + rate) ** (k * step)
        previous = current
    return total


# --- values -----------------------------------------------------------------------------------


def test_equals_direct_numpy_computation_bgnbd(bg, spend_model, few) -> None:
    x, t_x, T, m = (few[c].to_numpy() for c in ("frequency", "recency", "T", "monetary_value"))
    reference = direct_clv(
        lambda t: bg_conditional_expectation(bg.params_, x, t_x, T, t),
        gg_expected_spend(spend_model.params_, x, m),
        horizon=52.0,
        step=1.0,
        rate=WEEKLY,
    )
    ours = customer_lifetime_value(bg, spend_model, few, horizon=52, discount_rate=WEEKLY)
    np.testing.assert_allclose(ours.to_numpy(), reference, rtol=1e-10)
    assert ours.index.equals(few.index)
    assert ours.name == "clv"


@pytest.mark.parametrize("name", ["BetaGeo", "ParetoNBD", "ModifiedBetaGeo"])
@pytest.mark.parametrize(("horizon", "step", "rate"), [(52.0, 1.0, WEEKLY), (26.0, 6.5, 0.02)])
def test_equals_stepwise_expected_purchases(
    purchase_models, spend_model, rfm, name, horizon, step, rate
) -> None:
    model = purchase_models[name]
    sample = rfm.iloc[::50]
    reference = direct_clv(
        lambda t: model.expected_purchases(sample, horizon=t).to_numpy(),
        spend_model.expected_spend(sample).to_numpy(),
        horizon,
        step,
        rate,
    )
    ours = customer_lifetime_value(
        model, spend_model, sample, horizon=horizon, discount_rate=rate, step=step
    )
    np.testing.assert_allclose(ours.to_numpy(), reference, rtol=1e-9)


@pytest.mark.parametrize("step", [1.0, 4.0, 52.0])
def test_without_discount_is_spend_times_expected_purchases(bg, spend_model, rfm, step) -> None:
    ours = customer_lifetime_value(bg, spend_model, rfm, horizon=52, discount_rate=0.0, step=step)
    reference = spend_model.expected_spend(rfm) * bg.expected_purchases(rfm, horizon=52)
    np.testing.assert_allclose(ours.to_numpy(), reference.to_numpy(), rtol=1e-10)


def test_blocks_do_not_change_values(bg, spend_model, rfm, monkeypatch) -> None:
    whole = customer_lifetime_value(bg, spend_model, rfm, horizon=52, discount_rate=WEEKLY)
    monkeypatch.setattr(clv_module, "_CELLS", 520)  # blocks of ten customer histories
    blocked = customer_lifetime_value(bg, spend_model, rfm, horizon=52, discount_rate=WEEKLY)
    np.testing.assert_array_equal(whole.to_numpy(), blocked.to_numpy())


def test_row_order_and_frame_type_do_not_matter(bg, spend_model, rfm) -> None:
    expected = customer_lifetime_value(bg, spend_model, rfm, horizon=13, discount_rate=0.01)
    shuffled = rfm.sample(frac=1.0, random_state=3)
    again = customer_lifetime_value(bg, spend_model, shuffled, horizon=13, discount_rate=0.01)
    pd.testing.assert_series_equal(again.loc[expected.index], expected)
    polars_frame = pl.from_pandas(rfm.reset_index())
    from_polars = customer_lifetime_value(
        bg, spend_model, polars_frame, horizon=13, discount_rate=0.01
    )
    np.testing.assert_array_equal(from_polars.to_numpy(), expected.to_numpy())


def test_parameter_names_of_the_two_models_are_disjoint(purchase_models, spend_model) -> None:
    """The joint draws are one dict holding both models' parameters."""
    for model in purchase_models.values():
        assert not set(model.params_) & set(spend_model.params_)


# --- invariants (hypothesis) ------------------------------------------------------------------


@st.composite
def histories(draw) -> pd.DataFrame:
    n = draw(st.integers(1, 6))
    x = np.array(draw(st.lists(st.integers(0, 40), min_size=n, max_size=n)), dtype=float)
    T = np.array(draw(st.lists(st.floats(0.5, 150.0), min_size=n, max_size=n)))
    share = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)))
    m = np.array(draw(st.lists(st.floats(0.5, 2000.0), min_size=n, max_size=n)))
    return pd.DataFrame(
        {
            "frequency": x,
            "recency": np.where(x > 0, share * T, 0.0),
            "T": T,
            "monetary_value": np.where(x > 0, m, 0.0),
        }
    )


FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
rates = st.floats(0.0, 0.5)


@FAST
@given(frame=histories(), low=rates, high=rates, steps=st.integers(1, 40))
def test_non_negative_and_non_increasing_in_the_discount_rate(
    purchase_models, spend_model, frame, low, high, steps
) -> None:
    low, high = min(low, high), max(low, high)
    for model in purchase_models.values():
        kwargs = {"horizon": 2.0 * steps, "step": 2.0}
        at_low = customer_lifetime_value(model, spend_model, frame, discount_rate=low, **kwargs)
        at_high = customer_lifetime_value(model, spend_model, frame, discount_rate=high, **kwargs)
        assert (at_high >= 0).all()
        assert (at_high <= at_low * (1 + 1e-12)).all()


@FAST
@given(frame=histories(), short=st.integers(1, 60), extra=st.integers(0, 60), rate=rates)
def test_non_decreasing_in_the_horizon(
    purchase_models, spend_model, frame, short, extra, rate
) -> None:
    for model in purchase_models.values():
        near = customer_lifetime_value(model, spend_model, frame, horizon=short, discount_rate=rate)
        far = customer_lifetime_value(
            model, spend_model, frame, horizon=short + extra, discount_rate=rate
        )
        assert (far >= near * (1 - 1e-12)).all()


# --- intervals --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def interval(bg, spend_model, rfm) -> pd.DataFrame:
    return customer_lifetime_value_interval(
        bg, spend_model, rfm, horizon=52, discount_rate=WEEKLY, n_draws=60, random_state=11
    )


def test_interval_contains_the_estimate(bg, spend_model, rfm, interval) -> None:
    point = customer_lifetime_value(bg, spend_model, rfm, horizon=52, discount_rate=WEEKLY)
    np.testing.assert_array_equal(interval["estimate"].to_numpy(), point.to_numpy())
    assert interval.columns.tolist() == ["estimate", "lower", "upper"]
    assert interval.index.equals(rfm.index)
    assert (interval["lower"] <= interval["estimate"]).all()
    assert (interval["estimate"] <= interval["upper"]).all()
    assert (interval["upper"] > interval["lower"]).mean() > 0.99  # parameter uncertainty shows


def test_interval_is_the_quantile_of_joint_independent_draws(bg, spend_model, rfm, interval):
    """Recompute from the documented recipe: purchase draws, then spend draws, one generator."""
    sample = rfm.iloc[:40]
    rng = np.random.default_rng(11)
    purchase_draws = bg.sample_params(60, rng)
    spend_draws = spend_model.sample_params(60, rng)
    x, t_x, T, m = (sample[c].to_numpy() for c in ("frequency", "recency", "T", "monetary_value"))
    values = [
        direct_clv(
            functools.partial(bg_conditional_expectation, p, x, t_x, T),
            gg_expected_spend(s, x, m),
            52.0,
            1.0,
            WEEKLY,
        )
        for p, s in zip(purchase_draws, spend_draws, strict=True)
    ]
    low, high = np.quantile(np.array(values), [0.05, 0.95], axis=0, method="inverted_cdf")
    estimate = interval["estimate"].to_numpy()[:40]
    np.testing.assert_allclose(
        interval["lower"].to_numpy()[:40], np.minimum(low, estimate), rtol=1e-9
    )
    np.testing.assert_allclose(
        interval["upper"].to_numpy()[:40], np.maximum(high, estimate), rtol=1e-9
    )


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), level=st.floats(0.5, 0.99))
def test_interval_is_deterministic_for_a_seed(bg, spend_model, few, seed, level) -> None:
    kwargs = {"horizon": 26, "discount_rate": 0.01, "level": level, "n_draws": 30}
    first = customer_lifetime_value_interval(bg, spend_model, few, random_state=seed, **kwargs)
    second = customer_lifetime_value_interval(bg, spend_model, few, random_state=seed, **kwargs)
    pd.testing.assert_frame_equal(first, second)
    assert (first["lower"] <= first["estimate"]).all()
    assert (first["estimate"] <= first["upper"]).all()
    other = customer_lifetime_value_interval(bg, spend_model, few, random_state=seed + 1, **kwargs)
    assert not other["upper"].equals(first["upper"])


def test_interval_bound_is_infinite_where_draws_have_no_mean_spend() -> None:
    """Five customers: many Gamma-Gamma draws have q <= 1 (infinite mean spend)."""
    rfm = pd.DataFrame(
        {
            "frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
            "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
            "T": [30.0, 38.0, 30.0, 39.0, 39.0],
            "monetary_value": [0.0, 20.0, 35.5, 18.0, 60.0],
        }
    )
    bg = BetaGeo(penalizer=0.01).fit(rfm)
    gg = GammaGamma(penalizer=0.01).fit(rfm)
    out = customer_lifetime_value_interval(
        bg, gg, rfm, horizon=52, discount_rate=0.002, n_draws=100, random_state=1
    )
    assert not out.isna().any().any()
    assert out["upper"].iloc[0] == np.inf  # no repeat purchase: value is the population mean
    assert np.isfinite(out["upper"].iloc[1:]).all()


# --- rates and errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "periods"), [("H", 8766.0), ("D", 365.25), ("W", 365.25 / 7), ("M", 12.0)]
)
def test_per_period_rate_compounds_to_the_annual_rate(unit, periods) -> None:
    rate = per_period_rate(0.10, unit)
    assert rate == pytest.approx(1.10 ** (1.0 / periods) - 1.0, rel=1e-12)
    assert (1.0 + rate) ** periods == pytest.approx(1.10, rel=1e-12)
    assert per_period_rate(0.0, unit) == 0.0


def test_weekly_rate_of_the_documentation() -> None:
    assert per_period_rate(0.10, "W") == pytest.approx(1.10 ** (1 / 52.17857142857143) - 1.0)


@pytest.mark.parametrize("bad", [-0.01, float("nan"), float("inf"), "0.1", None])
def test_per_period_rate_refuses_bad_rates(bad) -> None:
    with pytest.raises(ValueError, match="annual_rate"):
        per_period_rate(bad, "W")


def test_per_period_rate_refuses_unknown_units() -> None:
    with pytest.raises(ValueError, match="time_unit"):
        per_period_rate(0.1, "Y")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"horizon": 10, "step": 3}, "whole number of steps"),
        ({"horizon": 0}, "horizon must be"),
        ({"horizon": -5}, "horizon must be"),
        ({"horizon": float("nan")}, "horizon must be"),
        ({"horizon": 4, "step": 8}, "step must be"),
        ({"horizon": 4, "step": 0}, "step must be"),
        ({"horizon": 4, "discount_rate": -0.01}, "discount_rate must be"),
        ({"horizon": 4, "discount_rate": float("inf")}, "discount_rate must be"),
        ({"horizon": 4, "time_unit": "Y"}, "time_unit must be"),
    ],
)
def test_refuses_bad_arguments(bg, spend_model, few, kwargs, match) -> None:
    arguments = {"discount_rate": 0.01, **kwargs}
    with pytest.raises(ValueError, match=match):
        customer_lifetime_value(bg, spend_model, few, **arguments)


def test_accepts_a_horizon_that_is_a_multiple_up_to_rounding(bg, spend_model, few) -> None:
    value = customer_lifetime_value(bg, spend_model, few, horizon=0.3, step=0.1, discount_rate=0)
    np.testing.assert_allclose(
        value, spend_model.expected_spend(few) * bg.expected_purchases(few, 0.3), rtol=1e-12
    )


def test_refuses_swapped_or_unfitted_models(bg, spend_model, few) -> None:
    with pytest.raises(TypeError, match="purchase_model"):
        customer_lifetime_value(spend_model, bg, few, horizon=4, discount_rate=0.0)
    with pytest.raises(TypeError, match="spend_model"):
        customer_lifetime_value(bg, bg, few, horizon=4, discount_rate=0.0)
    with pytest.raises(NotFittedError):
        customer_lifetime_value(BetaGeo(), spend_model, few, horizon=4, discount_rate=0.0)
    with pytest.raises(NotFittedError):
        customer_lifetime_value(bg, GammaGamma(), few, horizon=4, discount_rate=0.0)


def test_refuses_bad_rfm(bg, spend_model, few) -> None:
    with pytest.raises(DataValidationError, match="monetary_value"):
        customer_lifetime_value(
            bg, spend_model, few.drop(columns="monetary_value"), horizon=4, discount_rate=0.0
        )
    negative = few.assign(monetary_value=np.where(few["frequency"] > 0, -1.0, 0.0))
    with pytest.raises(DataValidationError, match="monetary_value < 0"):
        customer_lifetime_value(bg, spend_model, negative, horizon=4, discount_rate=0.0)


def test_interval_refuses_bad_level_and_draws(bg, spend_model, few) -> None:
    with pytest.raises(ValueError, match="level"):
        customer_lifetime_value_interval(bg, spend_model, few, horizon=4, discount_rate=0, level=1)
    with pytest.raises(ValueError, match="n_draws"):
        customer_lifetime_value_interval(
            bg, spend_model, few, horizon=4, discount_rate=0, n_draws=1
        )


def test_time_units_accept_pandas_spellings():
    assert per_period_rate(0.1, "h") == per_period_rate(0.1, "H")
    assert per_period_rate(0.1, "ME") == per_period_rate(0.1, "M")
    with pytest.raises(ValueError, match="'h' and 'ME' are accepted"):
        per_period_rate(0.1, "hour")
