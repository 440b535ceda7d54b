from __future__ import annotations

import datetime as dt
import pickle
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vipml.churn import ChurnModel, evaluate
from vipml.churn.labels import churn_labels
from vipml.churn.metrics import MODEL_NAME, RAW_MODEL_NAME
from vipml.churn.model import CYCLE_WINDOW, ENGAGEMENT_WINDOWS, plan_snapshots
from vipml.data import simulate
from vipml.errors import DataValidationError, DataWarning, NotFittedError
from vipml.features import engagement_features, purchase_cycle_features, rfm_summary
from vipml.ltv import BetaGeo, GammaGamma, ParetoNBD

from .conftest import CDNOW_CUTOFF, SIM_CUTOFF

BASELINE_ROWS = [
    "days since last purchase",
    "logistic regression on log RFM",
    "BG/NBD P(no purchase)",
    "Pareto/NBD P(no purchase)",
]


def _until(frame: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Rows of a log up to the end of the cutoff's day."""
    return frame[frame["timestamp"] < cutoff.normalize() + pd.Timedelta(days=1)]


# -- snapshot schedule ------------------------------------------------------------------------


def test_cdnow_schedule_is_bridged_over_13_weeks():
    plan = plan_snapshots(
        pd.Timestamp("1997-09-30"),
        pd.Timestamp("1997-01-01"),
        dt.timedelta(weeks=39),
        dt.timedelta(weeks=13),
        4,
    )
    assert plan.mode == "bridged" and plan.training_horizon == dt.timedelta(weeks=13)
    assert plan.cutoffs == [pd.Timestamp("1997-04-01"), pd.Timestamp("1997-07-01")]


@settings(max_examples=200, deadline=None)
@given(
    first=st.dates(dt.date(2000, 1, 1), dt.date(2001, 1, 1)),
    history=st.integers(1, 1500),
    horizon=st.integers(1, 60),
    step=st.integers(1, 30),
    n=st.integers(2, 8),
)
def test_schedule_never_lets_a_label_cross_the_validation_cutoff(first, history, horizon, step, n):
    first_ts = pd.Timestamp(first)
    cutoff = first_ts + pd.Timedelta(days=history)
    span, spacing = dt.timedelta(weeks=horizon), dt.timedelta(weeks=step)
    try:
        plan = plan_snapshots(cutoff, first_ts, span, spacing, n)
    except DataValidationError as exc:
        works = pd.Timestamp(str(exc).split("on or after ")[1][:10])
        assert plan_snapshots(works, first_ts, span, spacing, n).training_horizon.days >= 7
        return
    h = plan.training_horizon
    assert plan.validation_cutoff + h == cutoff
    assert all(c + h <= plan.validation_cutoff for c in plan.training_cutoffs)
    assert all(c >= first_ts + spacing - pd.Timedelta(days=1) for c in plan.cutoffs)
    assert len(plan.cutoffs) <= n and len(plan.training_cutoffs) >= 1
    assert (
        (plan.mode == "direct") == (h == span)
        and h <= span
        and h % dt.timedelta(weeks=1) == dt.timedelta(0)
    )


# -- behaviour on a simulated shop ------------------------------------------------------------


def test_small_model_attributes(small_model):
    assert small_model.mode_ == "direct"
    assert small_model.training_horizon_ == dt.timedelta(weeks=13)
    assert [str(c.date()) for c in small_model.snapshot_cutoffs_] == [
        "2024-07-01",
        "2024-09-30",
        "2024-12-30",
        "2025-03-31",
    ]
    assert "T" not in small_model.feature_names_ and "bg_p_alive" in small_model.feature_names_
    assert "n_events_30d" in small_model.engagement_columns_
    assert small_model.calibration_ == "isotonic"


def test_model_beats_every_baseline_and_engagement_carries_signal(shop_tables):
    table, without = shop_tables[True], shop_tables[False]
    best_auc = table.loc[BASELINE_ROWS, "roc_auc"].max()
    best_brier = table.loc[BASELINE_ROWS, "brier"].min()
    assert table.loc[MODEL_NAME, "roc_auc"] > best_auc + 0.01
    assert table.loc[MODEL_NAME, "brier"] < best_brier
    assert table.loc[MODEL_NAME, "roc_auc"] > without.loc[MODEL_NAME, "roc_auc"] + 0.01
    assert table.attrs["mode"] == "direct"
    assert table.loc[MODEL_NAME, "training"].startswith("direct: 13W labels")


def test_probabilities_are_identical_bit_for_bit_across_fits(small_shop, small_model):
    again = ChurnModel(horizon="13W", lgbm_params={"num_boost_round": 40}).fit(
        small_shop.transactions, small_shop.events, cutoff=SIM_CUTOFF
    )
    first = small_model.predict_proba(small_shop.transactions, small_shop.events, at=SIM_CUTOFF)
    second = again.predict_proba(small_shop.transactions, small_shop.events, at=SIM_CUTOFF)
    assert np.array_equal(first.to_numpy(), second.to_numpy())
    assert small_model.booster_.model_to_string() == again.booster_.model_to_string()
    restored = pickle.loads(pickle.dumps(small_model))
    third = restored.predict_proba(small_shop.transactions, small_shop.events, at=SIM_CUTOFF)
    assert np.array_equal(first.to_numpy(), third.to_numpy())


def test_fit_reads_nothing_after_its_cutoff(small_shop, small_model):
    cutoff = pd.Timestamp(SIM_CUTOFF)
    tx, ev = _until(small_shop.transactions, cutoff), _until(small_shop.events, cutoff)
    truncated = ChurnModel(horizon="13W", lgbm_params={"num_boost_round": 40}).fit(
        tx, ev, cutoff=SIM_CUTOFF
    )
    assert small_model.booster_.model_to_string() == truncated.booster_.model_to_string()


def test_polars_logs_give_the_same_model(small_shop, small_model):
    tx, ev = pl.from_pandas(small_shop.transactions), pl.from_pandas(small_shop.events)
    other = ChurnModel(horizon="13W", lgbm_params={"num_boost_round": 40}).fit(
        tx, ev, cutoff=SIM_CUTOFF
    )
    assert other.booster_.model_to_string() == small_model.booster_.model_to_string()
    expected = small_model.predict_proba(small_shop.transactions, small_shop.events, at=SIM_CUTOFF)
    pd.testing.assert_series_equal(other.predict_proba(tx, ev, at=SIM_CUTOFF), expected)


def test_snapshot_features_ignore_every_row_after_the_snapshot(small_shop, small_model):
    for cutoff in small_model.snapshot_cutoffs_:
        full, full_margin = small_model.features(
            small_shop.transactions, small_shop.events, at=cutoff
        )
        cut, cut_margin = small_model.features(
            _until(small_shop.transactions, cutoff), _until(small_shop.events, cutoff), at=cutoff
        )
        pd.testing.assert_frame_equal(full, cut)  # RFM, cycle, engagement and the LTV outputs
        assert np.array_equal(full_margin, cut_margin)
        assert full[["bg_p_alive", "gg_expected_spend", "n_events_30d"]].notna().any().all()


def test_training_rows_equal_the_scoring_features(small_shop, small_model):
    schedule = plan_snapshots(
        pd.Timestamp(SIM_CUTOFF),
        small_shop.transactions["timestamp"].min(),
        dt.timedelta(weeks=13),
        dt.timedelta(weeks=13),
        4,
    )
    first_event = small_shop.events["timestamp"].min().to_pydatetime()
    table, margin, _, _ = small_model._training_table(
        small_shop.transactions, small_shop.events, schedule, first_event
    )
    latest = schedule.validation_cutoff
    scored, scored_margin = small_model.features(
        small_shop.transactions, small_shop.events, at=latest
    )
    pd.testing.assert_frame_equal(table.loc[latest], scored, check_names=False)
    rows = table.index.get_level_values("cutoff") == latest
    assert np.array_equal(margin[rows], scored_margin)


def test_reasons_are_text_from_the_strongest_drivers(small_shop, small_model):
    drivers = small_model.reasons(small_shop.transactions, small_shop.events, at=SIM_CUTOFF, top=2)
    assert list(drivers.columns) == [
        "churn_probability",
        "reason_1",
        "reason_2",
        "impact_1",
        "impact_2",
    ]
    risky = drivers[drivers["churn_probability"] > 0.9]
    assert len(risky) > 100 and risky["reason_1"].notna().all()
    assert (risky["impact_1"] >= risky["impact_2"].fillna(-np.inf)).all()
    text = " | ".join(risky["reason_1"].tolist() + risky["reason_2"].dropna().tolist())
    assert "no purchase for" in text and "engagement" in text
    proba = small_model.predict_proba(small_shop.transactions, small_shop.events, at=SIM_CUTOFF)
    np.testing.assert_array_equal(drivers["churn_probability"].to_numpy(), proba.to_numpy())


# -- scoring from feature tables and fitted LTV models ----------------------------------------


def _scoring_inputs(transactions, events, at):
    """The pipeline's view at ``at``: base table, engagement table, and the LTV models."""
    rfm = rfm_summary(transactions, at, freq="D", time_unit="W")
    base = rfm.join(purchase_cycle_features(transactions, at, window=CYCLE_WINDOW, freq="D"))
    engaged = (
        None if events is None else engagement_features(events, at, windows=ENGAGEMENT_WINDOWS)
    )
    bg = BetaGeo().fit(rfm)
    gg = GammaGamma().fit(rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)])
    return base, engaged, bg, gg


@pytest.fixture(scope="module")
def small_inputs(small_shop):
    return _scoring_inputs(small_shop.transactions, small_shop.events, SIM_CUTOFF)


def test_score_table_equals_predict_proba_and_reasons_bit_for_bit(
    small_shop, small_model, small_inputs
):
    base, engaged, bg, gg = small_inputs
    before = base.copy(), engaged.copy()
    table = small_model.score_table(base, engaged, purchase_model=bg, spend_model=gg, top=3)
    pd.testing.assert_frame_equal(base, before[0])
    pd.testing.assert_frame_equal(engaged, before[1])
    expected = small_model.reasons(small_shop.transactions, small_shop.events, at=SIM_CUTOFF, top=3)
    pd.testing.assert_frame_equal(table, expected, check_exact=True)
    only = small_model.score_table(base, engaged, purchase_model=bg, spend_model=gg)
    assert list(only.columns) == ["churn_probability"]
    proba = small_model.predict_proba(small_shop.transactions, small_shop.events, at=SIM_CUTOFF)
    pd.testing.assert_series_equal(only["churn_probability"], proba, check_exact=True)
    restored = pickle.loads(pickle.dumps(small_model))
    again = restored.score_table(base, engaged, purchase_model=bg, spend_model=gg, top=3)
    pd.testing.assert_frame_equal(again, table, check_exact=True)


def test_a_customer_scores_and_reasons_the_same_alone_or_in_a_batch(small_model, small_inputs):
    base, engaged, bg, gg = small_inputs
    batch = small_model.score_table(base, engaged, purchase_model=bg, spend_model=gg, top=3)
    for i in (0, 7, len(base) - 1):
        alone = small_model.score_table(
            base.iloc[[i]], engaged, purchase_model=bg, spend_model=gg, top=3
        )
        # Impacts come from a matrix product whose rounding may follow the batch's size.
        pd.testing.assert_frame_equal(alone, batch.iloc[[i]], check_exact=False, rtol=1e-12)


def test_score_table_uses_the_models_it_is_given(small_model, small_inputs):
    base, engaged, bg, gg = small_inputs
    fitted = small_model.score_table(base, engaged, purchase_model=bg, spend_model=gg)
    no_spend = small_model.score_table(base, engaged, purchase_model=bg, spend_model=None)
    pareto = small_model.score_table(
        base, engaged, purchase_model=ParetoNBD().fit(base), spend_model=gg
    )
    for other in (no_spend, pareto):
        assert other.index.equals(base.index) and other["churn_probability"].between(0, 1).all()
        assert not np.array_equal(other.to_numpy(), fitted.to_numpy())


def test_score_table_aligns_the_engagement_table(small_model, small_inputs):
    base, engaged, bg, gg = small_inputs
    quiet = base.index.difference(engaged.index)
    assert len(quiet) > 0  # some customers have no events: 0 counts, as in predict_proba
    shuffled = engaged.sample(frac=1.0, random_state=0).reset_index()  # a column, any order
    expected = small_model.score_table(base, engaged, purchase_model=bg, spend_model=gg)
    for other in (shuffled, pl.from_pandas(shuffled)):
        table = small_model.score_table(base, other, purchase_model=bg, spend_model=gg)
        pd.testing.assert_frame_equal(table, expected, check_exact=True)


def test_score_table_in_bridged_mode_equals_predict_proba(cdnow, cdnow_model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        base, _, bg, gg = _scoring_inputs(cdnow, None, CDNOW_CUTOFF)
        expected = cdnow_model.reasons(cdnow, at=CDNOW_CUTOFF, top=2)
    table = cdnow_model.score_table(base, purchase_model=bg, spend_model=gg, top=2)
    pd.testing.assert_frame_equal(table, expected, check_exact=True)


def test_score_table_refuses_bad_input(small_model, small_inputs):
    base, engaged, bg, gg = small_inputs
    models = {"purchase_model": bg, "spend_model": gg}
    with pytest.raises(DataValidationError, match=r"lacks the column\(s\) \['overdue_ratio'\]"):
        small_model.score_table(base.drop(columns="overdue_ratio"), engaged, **models)
    with pytest.raises(DataValidationError, match="2 repeated customer id"):
        small_model.score_table(pd.concat([base, base.iloc[:2]]), engaged, **models)
    with pytest.raises(DataValidationError, match="engagement_features"):
        small_model.score_table(base, **models)
    with pytest.raises(ValueError, match="purchase_model"):
        small_model.score_table(base, engaged, purchase_model=gg, spend_model=gg)
    with pytest.raises(NotFittedError):
        small_model.score_table(base, engaged, purchase_model=BetaGeo(), spend_model=None)
    with pytest.raises(ValueError, match="top"):
        small_model.score_table(base, engaged, top=-1, **models)


# -- CDNOW ------------------------------------------------------------------------------------


def test_cdnow_bridged_model_against_the_baselines(cdnow_model, cdnow_table):
    table = cdnow_table
    assert cdnow_model.mode_ == "bridged" and table.attrs["training_horizon"] == "13W"
    assert table.loc[MODEL_NAME, "training"].startswith("bridged: 13W labels")
    assert table.attrs["n_customers"] == 23570
    assert table.loc[MODEL_NAME, "brier"] < table.loc[BASELINE_ROWS, "brier"].min()
    # It improves on the BG/NBD it corrects and on recency; the weight of the linear
    # correction was chosen on the validation snapshot and is strictly between 0 and 1.
    for rule in ("days since last purchase", "BG/NBD P(no purchase)"):
        assert table.loc[MODEL_NAME, "roc_auc"] > table.loc[rule, "roc_auc"]
    assert 0.0 < cdnow_model.blend_weight_ < 1.0
    assert table.loc["BG/NBD 1 - P(alive) (not a baseline)", "roc_auc"] < 0.5
    # The reference figures measured elsewhere with a time-honest protocol.
    assert table.loc["days since last purchase", "roc_auc"] == pytest.approx(0.76, abs=0.01)
    assert table.loc["BG/NBD P(no purchase)", "roc_auc"] == pytest.approx(0.75, abs=0.01)
    assert table.loc["logistic regression on log RFM", "roc_auc"] == pytest.approx(0.77, abs=0.01)


def test_cdnow_model_ranks_at_least_as_well_as_every_baseline(cdnow_table):
    assert cdnow_table.loc[MODEL_NAME, "roc_auc"] >= cdnow_table.loc[BASELINE_ROWS, "roc_auc"].max()


def test_cdnow_model_without_the_blend_ranks_below_the_log_rfm_regression(cdnow, cdnow_table):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        trees = ChurnModel(horizon="39W", blend=False).fit(cdnow, cutoff=CDNOW_CUTOFF)
        alone = evaluate(trees, cdnow, baselines=())
    assert trees.blend_weight_ == 0.0 and not hasattr(trees, "linear_")
    best = cdnow_table.loc[BASELINE_ROWS, "roc_auc"].max()
    assert alone.loc[MODEL_NAME, "roc_auc"] < best <= cdnow_table.loc[MODEL_NAME, "roc_auc"]


def test_calibration_lowers_the_expected_calibration_error_on_the_simulated_shop(shop_tables):
    # Seeded 4,000-customer shop: isotonic on the validation snapshot lowers the holdout ECE
    # of the kept booster (0.0166 raw, 0.0110 calibrated; 20,000 customers: 0.0195, 0.0070).
    table = shop_tables[True]
    assert table.loc[MODEL_NAME, "ece"] < table.loc[RAW_MODEL_NAME, "ece"]


def _validation_calibration(model, shop):
    """Mean calibrated probability and churn rate on the model's validation snapshot."""
    at = model.snapshot_cutoffs_[-1]
    scores = model.predict_proba(shop.transactions, shop.events, at=at)
    labels = churn_labels(shop.transactions, at, horizon=model.training_horizon_)
    return scores.mean(), labels.reindex(scores.index).mean()


def test_direct_mode_keeps_the_booster_its_calibrator_was_fitted_on(small_shop, small_model):
    # refit="auto" keeps the early-stopped booster in direct mode: isotonic regression
    # preserves the mean of the labels it was fitted on, so on the validation snapshot the
    # calibrated probabilities average the churn rate (up to the clipping of the bounds).
    assert small_model.refitted_ is False
    assert small_model.booster_.num_trees() == small_model.best_iteration_
    predicted, rate = _validation_calibration(small_model, small_shop)
    assert predicted == pytest.approx(rate, abs=2e-4)
    refitted = ChurnModel(horizon="13W", refit=True, lgbm_params={"num_boost_round": 40}).fit(
        small_shop.transactions, small_shop.events, cutoff=SIM_CUTOFF
    )
    assert refitted.refitted_ is True
    assert refitted.best_iteration_ == small_model.best_iteration_
    # The refitted booster has trained on the validation snapshot: the map no longer fits it.
    predicted, rate = _validation_calibration(refitted, small_shop)
    assert abs(predicted - rate) > 1e-3


def test_bridged_mode_refits_by_default(cdnow_model):
    assert cdnow_model.mode_ == "bridged" and cdnow_model.refitted_ is True


@pytest.mark.xfail(
    strict=True,
    reason="the holdout opens with a Christmas season the 39 weeks of history never show (BG/NBD "
    "fitted at the cutoff over-predicts 13-week churn by -0.165 log-odds, at the validation "
    "snapshot by -0.010): no calibrator fitted before the cutoff can learn it (docs/churn.md)",
)
def test_calibration_lowers_the_expected_calibration_error_on_cdnow(cdnow_table):
    assert cdnow_table.loc[MODEL_NAME, "ece"] < cdnow_table.loc[RAW_MODEL_NAME, "ece"]


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::vipml.errors.ModelAssumptionWarning")
def test_too_few_churners_or_stayers_for_a_time_honest_split():
    tiny = simulate(60, "2024-01-01", "2025-12-31", random_state=0)
    with pytest.raises(
        DataValidationError, match=r"Too few churners.*churners and .* non-churners"
    ):
        ChurnModel(horizon="13W").fit(tiny.transactions, cutoff=SIM_CUTOFF)


def test_cutoff_too_early_names_one_that_works(small_shop):
    with pytest.raises(DataValidationError, match="too early.*on or after 2024-04-14"):
        ChurnModel(horizon="13W").fit(small_shop.transactions, cutoff="2024-04-10")


def test_cutoff_after_the_log_is_refused(small_shop):
    with pytest.raises(DataValidationError, match="after the last transaction"):
        ChurnModel(horizon="13W").fit(small_shop.transactions, cutoff="2026-03-01")


def test_events_without_transactions_are_refused(small_shop):
    foreign = small_shop.events.assign(customer_id="X" + small_shop.events["customer_id"])
    with pytest.raises(DataValidationError, match="Events without transactions"):
        ChurnModel(horizon="13W").fit(small_shop.transactions, foreign, cutoff=SIM_CUTOFF)


def test_scoring_without_the_events_the_model_was_fitted_with(small_shop, small_model):
    with pytest.raises(DataValidationError, match="pass the event log"):
        small_model.predict_proba(small_shop.transactions, at=SIM_CUTOFF)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"n_snapshots": 1}, "n_snapshots"),
        ({"calibration": "platt"}, "calibration"),
        ({"lgbm_params": {"objective": "regression"}}, "binary"),
        ({"lgbm_params": {"num_boost_round": 0}}, "num_boost_round"),
        ({"random_state": 1.5}, "random_state"),
        ({"refit": "always"}, "refit"),
        ({"refit": 1}, "refit"),
    ],
)
def test_invalid_settings(small_shop, settings, message):
    with pytest.raises(ValueError, match=message):
        ChurnModel(**settings).fit(small_shop.transactions, cutoff=SIM_CUTOFF)


def test_not_fitted():
    with pytest.raises(NotFittedError):
        ChurnModel().predict_proba(pd.DataFrame(), at="2024-01-01")


def test_cdnow_fit_warns_about_its_duplicate_rows_only(cdnow):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ChurnModel(horizon="39W", lgbm_params={"num_boost_round": 5}).fit(
            cdnow, cutoff="1997-09-30"
        )
    assert caught and all(issubclass(w.category, DataWarning) for w in caught)
