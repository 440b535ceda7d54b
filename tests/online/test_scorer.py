"""OnlineScorer: streamed rows give the scores VipPipeline.score gives at the same moment."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from vipml import VipPipeline
from vipml.data import simulate
from vipml.errors import DataValidationError
from vipml.features.online import OnlineConfig
from vipml.online.scorer import AlertRules, OnlineScorer
from vipml.online.store import MemoryStore, SQLiteStore

CUTOFF = "2025-03-31"
END = "2025-04-03 23:59:59"
CONFIG = {
    "churn": {"lgbm_params": {"num_boost_round": 20}},
    "ltv": {"n_draws": 20},
    "segments": {"n_segments": 3},
}


@pytest.fixture(scope="module")
def shop():
    return simulate(350, "2024-01-01", "2025-06-30", random_state=11)


@pytest.fixture(scope="module")
def pipeline(shop):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return VipPipeline(CONFIG).fit(shop.transactions, shop.events, cutoff=CUTOFF)


def stream_rows(shop, start, end):
    tx, ev = shop.transactions, shop.events
    rows = pd.concat([tx, ev])
    rows = rows[(rows["timestamp"] > start) & (rows["timestamp"] <= end)]
    rows = rows.sort_values("timestamp", kind="stable")
    return [{k: v for k, v in r.items() if not pd.isna(v)} for r in rows.to_dict("records")]


def batch_scores(pipeline, shop, at, until=None):
    """``VipPipeline.score`` at ``at`` over the rows up to ``until`` (default ``at``)."""
    stamp = pd.Timestamp(at if until is None else until)
    tx, ev = shop.transactions, shop.events
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pipeline.score(tx[tx["timestamp"] <= stamp], ev[ev["timestamp"] <= stamp], at=at)


def assert_scores_equal(online, batch):
    """Equal scores, churn reasons included; floats to 1e-12 (the batch's channel entropy
    sums its terms in polars' order, see vipml.features.online), the rest exactly.
    """
    floats = [c for c in batch.columns if batch[c].dtype.kind == "f"]
    # A record's missing reason is None (JSON null); read into the batch's dtypes it is NaN.
    online = online.astype({c: batch[c].dtype for c in batch.columns if c not in floats})
    pd.testing.assert_frame_equal(
        online.drop(columns=floats), batch.drop(columns=floats), check_dtype=False
    )
    np.testing.assert_allclose(
        online[floats].to_numpy(float), batch[floats].to_numpy(float), rtol=1e-12, atol=0
    )


def test_streamed_scores_equal_the_pipeline_at_the_same_moment(pipeline, shop, tmp_path):
    store = SQLiteStore(tmp_path / "online.db", synchronous="NORMAL")
    scorer = OnlineScorer(pipeline, store=store)
    end_of_cutoff = pd.Timestamp(CUTOFF) + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert scorer.bootstrap(shop.transactions, shop.events, cutoff=CUTOFF) > 250
    rows = stream_rows(shop, end_of_cutoff, pd.Timestamp(END))
    half = len(rows) // 2
    updates = [scorer.update(row) for row in rows[:half]] + scorer.update_many(rows[half:])
    assert all(u.applied for u in updates) and len(updates) > 20
    # Every update's scores are the batch scores of that customer at that row's moment.
    checked = [u for u in updates if u.scores is not None]
    for update in (checked[0], checked[-1]):
        batch = batch_scores(pipeline, shop, update.at).loc[[update.customer_id]]
        online = pd.DataFrame([update.scores], index=batch.index)
        assert_scores_equal(online, batch)
    # All customers a day later, with no new rows, after a restart from the SQLite file.
    store.close()
    reopened = OnlineScorer(pipeline, store=SQLiteStore(tmp_path / "online.db"))
    states = [reopened.state(key) for key, _ in reopened.store.items()]
    later = pd.Timestamp(END) + pd.Timedelta(days=1)
    batch = batch_scores(pipeline, shop, later, until=END)
    assert_scores_equal(reopened.score_states(states, later), batch)
    # Alerts returned are the alerts stored, in order, with their ids.
    returned = [a for u in updates for a in u.alerts]
    stored = reopened.store.alerts_since(0)
    assert [a["id"] for a in returned] == [s.id for s in stored]
    assert [{k: v for k, v in a.items() if k != "id"} for a in returned] == [
        s.alert for s in stored
    ]
    kinds = {a["kind"] for a in returned}
    assert kinds <= {
        "tier_entered",
        "tier_left",
        "churn_risk_high",
        "churn_risk_low",
        "engagement_dropped",
        "sentiment_dropped",
    }
    # A redelivered row changes nothing and raises nothing.
    again = reopened.update(rows[-1])
    assert not again.applied and again.alerts == []
    assert len(reopened.store.alerts_since(0)) == len(stored)


def test_bootstrap_reads_the_logs_with_the_pipelines_column_names(pipeline, shop):
    renamed = {"customer_id": "user", "timestamp": "ordered_at"}
    tx = shop.transactions.rename(columns=renamed)
    ev = shop.events.rename(columns=renamed)
    config = {**CONFIG, "columns": {"customer_id": "user", "timestamp": "ordered_at"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mapped = VipPipeline(config).fit(tx, ev, cutoff=CUTOFF)
        standard, named = OnlineScorer(pipeline), OnlineScorer(mapped)
        assert named.bootstrap(tx, ev, cutoff=CUTOFF) == standard.bootstrap(
            shop.transactions, shop.events, cutoff=CUTOFF
        )
    keys = [key for key, _ in standard.store.items()]
    assert keys == [key for key, _ in named.store.items()]
    at = pd.Timestamp(CUTOFF)
    pd.testing.assert_frame_equal(
        named.score_states([named.state(k) for k in keys], at),
        standard.score_states([standard.state(k) for k in keys], at),
    )


def test_alert_rules(pipeline):
    scorer = OnlineScorer(pipeline, rules=AlertRules(churn_threshold=0.6))
    at = pd.Timestamp("2025-04-01")
    calm = {
        "vip_tier": "Standard",
        "churn_probability": 0.2,
        "engagement_low": False,
        "sentiment_low": False,
    }
    vip = {**calm, "vip_tier": "VIP", "churn_probability": 0.7, "engagement_low": True}
    kinds = [a["kind"] for a in scorer._alerts("c", at, calm, vip)]
    assert kinds == ["tier_entered", "churn_risk_high", "engagement_dropped"]
    kinds = [a["kind"] for a in scorer._alerts("c", at, vip, {**calm, "vip_tier": "Gold"})]
    assert kinds == ["tier_left", "churn_risk_low"]
    assert scorer._alerts("c", at, vip, vip) == []
    assert [a["kind"] for a in scorer._alerts("c", at, None, {**vip, "sentiment_low": True})] == [
        "tier_entered",
        "churn_risk_high",
        "engagement_dropped",
        "sentiment_dropped",
    ]
    with pytest.raises(ValueError, match="churn_threshold"):
        AlertRules(churn_threshold=1.5)


def test_bad_rows_and_mismatched_stores_are_refused(pipeline):
    store = MemoryStore()
    scorer = OnlineScorer(pipeline, store=store)
    with pytest.raises(DataValidationError, match="needs a customer_id"):
        scorer.update({"timestamp": "2025-04-01", "amount": 3.0})
    with pytest.raises(DataValidationError, match="amount"):
        scorer.update({"customer_id": "x", "timestamp": "2025-04-01", "amount": "3"})
    good = {"customer_id": "x", "timestamp": "2025-04-01", "amount": 3.0}
    with pytest.raises(DataValidationError, match="event_type is missing"):
        scorer.update_many(
            [good, {"customer_id": "y", "timestamp": "2025-04-01", "event_type": ""}]
        )
    assert len(store) == 0 and store.alerts_since(0) == []
    with pytest.raises(ValueError, match="states made with"):
        OnlineScorer(pipeline, store=store, config=OnlineConfig(retention="400D"))
    with pytest.raises(ValueError, match="freq='D', time_unit='W'"):
        OnlineScorer(pipeline, config=OnlineConfig(freq="W"))
    # A new customer's first purchase is scored at once; events alone are not scored.
    first = scorer.update({"customer_id": "new", "timestamp": "2025-04-02 10:00", "amount": 50.0})
    assert first.scores is not None and first.scores["vip_tier"] in ("VIP", "Gold", "Standard")
    visit = scorer.update(
        {"customer_id": "watcher", "timestamp": "2025-04-02", "event_type": "visit"}
    )
    assert visit.applied and visit.scores is None
