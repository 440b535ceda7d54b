"""VipPipeline: one fit at a cutoff, scores from each customer's own features."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest

from vipml import VipPipeline, bundle
from vipml.data import simulate
from vipml.errors import DataValidationError, ModelAssumptionWarning, NotFittedError
from vipml.features import rfm_scores, rfm_segments

CUTOFF = "2025-06-30"
CONFIG = {
    "churn": {"lgbm_params": {"num_boost_round": 60}},
    "ltv": {"n_draws": 40},
    "segments": {"n_segments": 4},
}


@pytest.fixture(scope="module")
def shop():
    return simulate(1500, "2024-01-01", "2025-12-31", random_state=11)


@pytest.fixture(scope="module")
def fitted(shop):
    return VipPipeline(CONFIG).fit(shop.transactions, shop.events, cutoff=CUTOFF)


@pytest.fixture(scope="module")
def scores(fitted, shop):
    return fitted.score(shop.transactions, shop.events, at=CUTOFF)


def test_one_row_per_customer_with_consistent_scores(scores, shop):
    bought = shop.transactions.loc[shop.transactions["timestamp"] <= CUTOFF, "customer_id"]
    assert set(scores.index) == set(bought.unique())
    assert scores.index.is_unique
    assert scores["p_alive"].between(0, 1).all()
    assert scores["churn_probability"].between(0, 1).all()
    assert (scores["clv_lower"] <= scores["clv"]).all()
    assert (scores["clv"] <= scores["clv_upper"]).all()
    assert not scores[["clv", "expected_purchases", "expected_spend"]].isna().any().any()
    assert set(scores["vip_tier"]) == {"VIP", "Gold", "Standard"}
    assert scores["reason_1"].notna().mean() > 0.9


def test_at_the_cutoff_scores_equal_the_separate_models(fitted, scores, shop):
    churn = fitted.churn_model_.predict_proba(shop.transactions, shop.events, at=CUTOFF)
    assert np.array_equal(churn.reindex(scores.index).to_numpy(), scores["churn_probability"])
    features = fitted.build_features(shop.transactions, shop.events, at=CUTOFF)
    rfm = features[["frequency", "recency", "T", "monetary_value"]]
    expected = rfm_scores(rfm)
    assert (expected[["R", "F", "M"]] == scores[["R", "F", "M"]]).all().all()
    assert (rfm_segments(rfm)["segment"] == scores["rfm_segment"]).all()
    purchases = fitted.purchase_model_.expected_purchases(rfm, 52)
    assert np.array_equal(purchases.to_numpy(), scores["expected_purchases"].to_numpy())


def test_tiers_hold_the_configured_shares_at_the_cutoff(scores):
    n = len(scores)
    counts = scores["vip_tier"].value_counts()
    assert counts["VIP"] == pytest.approx(0.05 * n, abs=2)
    assert counts["Gold"] == pytest.approx(0.05 * n, abs=2)
    vip_floor = scores.loc[scores["vip_tier"] == "VIP", "clv"].min()
    assert (scores.loc[scores["vip_tier"] != "VIP", "clv"] < vip_floor).all()


def test_a_customer_scores_the_same_alone_or_in_a_batch(fitted, scores, shop):
    """What real-time scoring relies on: nothing in a row's scores depends on other rows."""
    features = fitted.build_features(shop.transactions, shop.events, at=CUTOFF)
    rng = np.random.default_rng(0)
    picked = rng.choice(len(features), size=7, replace=False)
    for i in picked[:3]:
        alone = fitted.score_features(features.iloc[[i]])
        pd.testing.assert_frame_equal(alone, scores.iloc[[i]])
    shuffled = fitted.score_features(features.iloc[picked[::-1]])
    pd.testing.assert_frame_equal(shuffled, scores.iloc[picked[::-1]])


def test_later_scoring_uses_the_fitted_models(fitted, shop):
    later = fitted.score(shop.transactions, shop.events, at="2025-09-30")
    assert later["churn_probability"].between(0, 1).all()
    assert fitted.cutoff_ == pd.Timestamp(CUTOFF)
    assert later.index.size >= fitted.summary_["n_customers"]


def test_rows_after_the_cutoff_change_nothing_and_fits_repeat_bit_for_bit(fitted, scores, shop):
    tx, ev = shop.transactions, shop.events
    past_tx = tx[tx["timestamp"] < pd.Timestamp(CUTOFF) + pd.Timedelta(days=1)]
    past_ev = ev[ev["timestamp"] < pd.Timestamp(CUTOFF) + pd.Timedelta(days=1)]
    again = VipPipeline(CONFIG).fit(past_tx, past_ev, cutoff=CUTOFF)
    pd.testing.assert_frame_equal(again.score(past_tx, past_ev, at=CUTOFF), scores)
    assert again.summary_ == fitted.summary_


def test_evaluate_on_the_holdout(fitted, shop):
    metrics = fitted.evaluate(shop.transactions, shop.events, at=CUTOFF)
    assert 0.7 < metrics["churn_roc_auc"] <= 1
    assert 0 < metrics["churn_brier"] < 0.25
    assert metrics["ltv_purchases_mae"] > 0
    assert 0.1 < metrics["ltv_top10_capture"] <= 1
    assert metrics["n_customers"] == fitted.summary_["n_customers"]
    with pytest.warns(ModelAssumptionWarning, match="optimistic"):
        fitted.evaluate(shop.transactions, shop.events, at="2025-03-31")


def test_clear_errors(fitted, shop):
    with pytest.raises(NotFittedError):
        VipPipeline().score(shop.transactions)
    with pytest.raises(DataValidationError, match="engagement events"):
        fitted.score(shop.transactions)
    features = fitted.build_features(shop.transactions, shop.events, at=CUTOFF)
    with pytest.raises(DataValidationError, match="gap_mean_days"):
        fitted.score_features(features.drop(columns=["gap_mean_days"]))
    with pytest.raises(TypeError, match="PipelineConfig"):
        VipPipeline(config=3).fit(shop.transactions, cutoff=CUTOFF)
    with pytest.raises(DataValidationError, match="not cover|beyond|after"):
        fitted.evaluate(shop.transactions, shop.events, at="2025-12-01")


def test_the_caller_frames_are_not_mutated(shop, fitted):
    tx, ev = shop.transactions.copy(), shop.events.copy()
    fitted.score(shop.transactions, shop.events, at=CUTOFF)
    pd.testing.assert_frame_equal(tx, shop.transactions)
    pd.testing.assert_frame_equal(ev, shop.events)


def test_the_bundle_holds_no_customer_rows(fitted, shop, tmp_path):
    folder = bundle.save(fitted, tmp_path / "b")
    ids = shop.transactions["customer_id"].unique()
    blob = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
    leaked = [c for c in ids if c.encode() in blob]
    assert leaked == []
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) < 2_000_000


def test_a_second_process_gets_identical_scores(fitted, scores, shop, tmp_path):
    folder = bundle.save(fitted, tmp_path / "bundle")
    shop.transactions.to_parquet(tmp_path / "tx.parquet")
    shop.events.to_parquet(tmp_path / "ev.parquet")
    script = textwrap.dedent(
        f"""
        import sys
        import pandas as pd
        from vipml import bundle
        tx = pd.read_parquet({str(tmp_path / "tx.parquet")!r})
        ev = pd.read_parquet({str(tmp_path / "ev.parquet")!r})
        for allow in (True, False):
            pipe = bundle.load({str(folder)!r}, allow_pickle=allow)
            pipe.score(tx, ev, at={CUTOFF!r}).to_pickle(
                {str(tmp_path)!r} + f"/scores-{{allow}}.pkl")
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    for allow in (True, False):
        other = pd.read_pickle(tmp_path / f"scores-{allow}.pkl")
        pd.testing.assert_frame_equal(other, scores, check_exact=True)


def test_no_pickle_load_rebuilds_only_from_json(fitted, tmp_path):
    folder = bundle.save(fitted, tmp_path / "b")
    (folder / "objects.joblib").chmod(0)  # unreadable: the pickle-free path must not open it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = bundle.load(folder, allow_pickle=False)
    assert again.summary_ == fitted.summary_
    assert again.feature_columns_ == fitted.feature_columns_


def test_the_logs_may_use_their_own_column_names(fitted, scores, shop):
    # [columns] maps every reader: the churn model's snapshots and labels, the features, the
    # LTV fits and evaluate. Renamed logs give the very scores and metrics of standard ones.
    names = {"customer_id": "user", "timestamp": "ordered_at", "amount": "revenue"}
    tx = shop.transactions.rename(columns=names)
    events = shop.events.rename(columns=names)
    before = tx.copy()
    config = {**CONFIG, "columns": {**names, "event_type": "event_type"}}
    renamed = VipPipeline(config).fit(tx, events, cutoff=CUTOFF)
    pd.testing.assert_frame_equal(renamed.score(tx, events, at=CUTOFF), scores)
    assert renamed.evaluate(tx, events, at=CUTOFF) == fitted.evaluate(
        shop.transactions, shop.events, at=CUTOFF
    )
    pd.testing.assert_frame_equal(tx, before)
