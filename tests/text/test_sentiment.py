"""SentimentScorer: lexicon and trained back ends, pickle-free round trip, events in and out."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest

from vipml import VipPipeline
from vipml.data import simulate
from vipml.errors import DataValidationError
from vipml.online.scorer import OnlineScorer
from vipml.text import SentimentScorer, load_korean_reviews, load_review_sentences


@pytest.fixture(scope="module")
def english():
    return load_review_sentences()


@pytest.fixture(scope="module")
def trained(english):
    return SentimentScorer().fit(english["text"], english["label"])


def test_the_lexicon_reads_english_without_fitting(english):
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    lexicon = SentimentScorer("lexicon")
    texts = ["I love it, great service!", "Terrible. Never again.", "It is a phone."]
    vader = SentimentIntensityAnalyzer()
    assert lexicon.score(texts).tolist() == [vader.polarity_scores(t)["compound"] for t in texts]
    assert lexicon.score([None, ""]).tolist() == [pytest.approx(np.nan, nan_ok=True)] * 2
    scores = lexicon.score(english["text"])
    accuracy = ((scores > 0) == (english["label"] == 1)).mean()
    assert accuracy >= 0.80  # 0.817 on the 3,000 sentences (docs/text.md)
    with pytest.raises(ValueError, match="nothing to fit"):
        lexicon.fit(["a"], [1])


def test_the_trained_back_end_generalises_to_held_out_reviews(english):
    train = english.sample(frac=0.8, random_state=0)
    test = english.drop(train.index)
    scorer = SentimentScorer().fit(train["text"], train["label"])
    accuracy = (np.array(scorer.predict(test["text"])) == test["label"].to_numpy()).mean()
    assert accuracy >= 0.80
    assert scorer.classes_ == [0, 1]
    assert np.all(np.abs(scorer.score(test["text"])) < 1)


def test_character_ngrams_learn_korean():
    korean = load_korean_reviews()
    train, test = korean.iloc[::2].iloc[:1500], korean.iloc[1::2].iloc[:1000]
    chars = SentimentScorer(analyzer="char_wb").fit(train["text"], train["label"])
    accuracy = (np.array(chars.predict(test["text"])) == test["label"].to_numpy()).mean()
    words = SentimentScorer().fit(train["text"], train["label"])
    word_accuracy = (np.array(words.predict(test["text"])) == test["label"].to_numpy()).mean()
    assert accuracy >= 0.74
    assert accuracy > word_accuracy  # Korean words carry particles: characters generalise


def test_a_saved_scorer_predicts_the_same_bits_without_pickle(trained, english, tmp_path):
    folder = trained.save(tmp_path / "sentiment")
    with np.load(folder / "sentiment.npz", allow_pickle=False) as arrays:
        assert sorted(arrays.files) == ["coef", "idf", "intercept"]
    loaded = SentimentScorer.load(folder)
    texts = english["text"].tolist()
    assert loaded.score(texts).tobytes() == trained.score(texts).tobytes()
    assert loaded.get_params() == trained.get_params()
    # A changed arrays file or an unknown setting is refused.
    data = (folder / "sentiment.npz").read_bytes()
    (folder / "sentiment.npz").write_bytes(data[:-8] + b"\0" * 8)
    with pytest.raises(DataValidationError, match="sha256"):
        SentimentScorer.load(folder)
    lexicon = SentimentScorer("lexicon").save(tmp_path / "lexicon")
    assert SentimentScorer.load(lexicon).backend == "lexicon"
    settings = (lexicon / "sentiment.json").read_text().replace('"C"', '"evil"')
    (lexicon / "sentiment.json").write_text(settings)
    with pytest.raises(DataValidationError, match="unknown settings"):
        SentimentScorer.load(lexicon)


def test_fitting_twice_gives_the_same_model(english):
    first = SentimentScorer(analyzer="char_wb").fit(english["text"][:600], english["label"][:600])
    second = SentimentScorer(analyzer="char_wb").fit(english["text"][:600], english["label"][:600])
    assert first.coef_.tobytes() == second.coef_.tobytes()


def test_events_get_their_texts_sentiment_as_value(trained):
    events = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "event_type": ["review", "visit", "support_ticket"],
            "text": ["Great phone, works perfectly", None, "Terrible service, waste of money"],
            "value": [np.nan, 0.25, np.nan],
        }
    )
    snapshot = events.copy()
    scored = trained.score_events(events)
    pd.testing.assert_frame_equal(events, snapshot)
    assert scored["value"][0] > 0.3 and scored["value"][2] < -0.3
    assert scored["value"][1] == 0.25
    as_polars = trained.score_events(pl.from_pandas(events), keep_text=False)
    assert as_polars.columns == ["customer_id", "event_type", "value"]
    assert as_polars["value"].to_list() == scored["value"].tolist()
    online = trained.score_event({"customer_id": "b", "text": events["text"][2]})
    assert online["value"] == scored["value"][2]
    assert trained.score_event({"customer_id": "b", "value": 0.1}) == {
        "customer_id": "b",
        "value": 0.1,
    }
    with pytest.raises(DataValidationError, match="text column 'comment'"):
        trained.score_events(events, text="comment")


def test_bad_input_is_refused_clearly():
    with pytest.raises(DataValidationError, match="exactly two classes"):
        SentimentScorer().fit(["a b", "c d", "e f"], [0, 1, 2])
    with pytest.raises(DataValidationError, match="missing or empty"):
        SentimentScorer().fit(["good", None], [1, 0])
    with pytest.raises(TypeError, match="not one str"):
        SentimentScorer("lexicon").score("good")
    with pytest.raises(ValueError, match="backend"):
        SentimentScorer("bert").score(["good"])
    with pytest.raises(DataValidationError, match="not a text"):
        SentimentScorer("lexicon").score([3])


# ---- end to end: texts -> values -> churn reasons and the online sentiment alert -----------


def texts_for(values: pd.Series, english: pd.DataFrame, seed: int) -> pd.Series:
    """A review sentence for each event with a value: positive above 0, negative below."""
    rng = np.random.default_rng(seed)
    positive = english.loc[english["label"] == 1, "text"].to_numpy()
    negative = english.loc[english["label"] == 0, "text"].to_numpy()
    pick = np.where(
        values.to_numpy() > 0,
        positive[rng.integers(0, positive.size, values.size)],
        negative[rng.integers(0, negative.size, values.size)],
    )
    return pd.Series(np.where(values.notna(), pick, None), index=values.index)


def test_scores_from_text_reach_churn_reasons_and_the_sentiment_alert(trained, english):
    shop = simulate(400, "2024-01-01", "2025-06-30", random_state=3)
    events = shop.events.assign(text=texts_for(shop.events["value"], english, 3)).drop(
        columns="value"
    )
    scored = trained.score_events(events, keep_text=False)
    # The scores follow the hidden sentiment the texts were chosen from.
    hidden = shop.events["value"]
    assert np.corrcoef(hidden[hidden.notna()], scored["value"][hidden.notna()])[0, 1] > 0.5
    config = {
        "churn": {"lgbm_params": {"num_boost_round": 30}},
        "ltv": {"n_draws": 20},
        "segments": {"n_segments": 3},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline = VipPipeline(config).fit(shop.transactions, scored, cutoff="2025-03-31")
        scores = pipeline.score(shop.transactions, scored, at="2025-03-31")
    reasons = scores.filter(like="reason").astype(object).fillna("").apply(" ".join, axis=1)
    assert reasons.str.contains("sentiment").sum() >= 5
    # Online: negative reviews written after the cutoff raise sentiment_dropped.
    scorer = OnlineScorer(pipeline)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scorer.bootstrap(shop.transactions, scored, cutoff="2025-03-31")
    before = scored[(scored["timestamp"] <= "2025-03-31") & scored["value"].notna()]
    happy = before.groupby("customer_id")["value"].agg(["mean", "size"])
    customer = happy[(happy["size"] >= 3)].sort_values("mean").index[-1]
    alerts = []
    for day, text in zip(
        ("2025-04-02", "2025-04-05", "2025-04-09"),
        (
            "Terrible customer service, a waste of money.",
            "Very disappointed, it broke after a week.",
            "Awful, I will never buy here again.",
        ),
        strict=True,
    ):
        row = {"customer_id": customer, "timestamp": day, "event_type": "review", "text": text}
        alerts += scorer.update(trained.score_event(row)).alerts
    assert "sentiment_dropped" in [a["kind"] for a in alerts]
