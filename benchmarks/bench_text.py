"""Sentiment scorers on the labelled texts vipml ships: the figures of docs/text.md.

- English: the 3,000 review sentences of Kotzias et al. (2015) (``load_review_sentences``):
  sign accuracy of the VADER lexicon (a score above 0 is positive; exactly 0, about a fifth of
  the sentences, counts as negative), per site and overall; the trained TF-IDF back end with
  word and with character n-grams, 5-fold stratified cross-validation (seeded).
- Korean: the 5,000 NSMC reviews (``load_korean_reviews``): the trained back end with
  character n-grams and with words, 5-fold cross-validation.

Times are for the whole cross-validation on this machine; there is no reference library to
compare with in the same run, so only accuracies are targets.

    python benchmarks/bench_text.py
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from vipml.text import SentimentScorer, load_korean_reviews, load_review_sentences


def cross_validated(texts: pd.Series, labels: pd.Series, **params) -> tuple[float, float, float]:
    start = time.perf_counter()
    accuracies = []
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    for train, test in folds.split(texts, labels):
        scorer = SentimentScorer(**params).fit(texts.iloc[train], labels.iloc[train])
        predicted = np.array(scorer.predict(texts.iloc[test]))
        accuracies.append((predicted == labels.iloc[test].to_numpy()).mean())
    return float(np.mean(accuracies)), float(np.std(accuracies)), time.perf_counter() - start


def main() -> None:
    rows = []
    english = load_review_sentences()
    lexicon = SentimentScorer("lexicon")
    for source, part in [("all", english), *english.groupby("source")]:
        scores = lexicon.score(part["text"])
        accuracy = float(((scores > 0) == (part["label"] == 1)).mean())
        rows.append(
            {
                "data": f"English ({source})",
                "scorer": "VADER lexicon",
                "accuracy": accuracy,
                "sd": np.nan,
                "seconds": np.nan,
            }
        )
    for name, params in [
        ("TF-IDF words", {}),
        ("TF-IDF chars (2-5)", {"analyzer": "char_wb", "ngram_range": (2, 5)}),
    ]:
        mean, sd, seconds = cross_validated(english["text"], english["label"], **params)
        rows.append(
            {
                "data": "English (all), 5-fold",
                "scorer": name,
                "accuracy": mean,
                "sd": sd,
                "seconds": seconds,
            }
        )
    korean = load_korean_reviews()
    for name, params in [("TF-IDF chars (1-3)", {"analyzer": "char_wb"}), ("TF-IDF words", {})]:
        mean, sd, seconds = cross_validated(korean["text"], korean["label"], **params)
        rows.append(
            {
                "data": "Korean NSMC 5,000, 5-fold",
                "scorer": name,
                "accuracy": mean,
                "sd": sd,
                "seconds": seconds,
            }
        )
    print(pd.DataFrame(rows).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
