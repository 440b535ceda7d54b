"""Sentiment read from what customers write: a score in [-1, 1] per text, and per event.

:class:`SentimentScorer` has two back ends:

- ``"lexicon"``: VADER (Hutto & Gilbert 2014), a rule-based English lexicon whose word list
  ships inside the ``vaderSentiment`` wheel (``pip install "vipml[text]"``); nothing to fit,
  the score is VADER's compound score.
- ``"tfidf"``: TF-IDF features (word n-grams, or character n-grams for languages written
  without spaces or with rich morphology, such as Korean) and a logistic regression, fitted on
  the user's own labelled texts in any language; the score is 2 P(positive) - 1.

The score becomes the ``value`` of events that carry a ``text`` (reviews, tickets, chats), which
is the sentiment that engagement features (``value_mean``, ``value_trend``, ...), churn
reasons and the online ``sentiment_dropped`` alert already read: :meth:`SentimentScorer.
score_events` for a batch log, :meth:`SentimentScorer.score_event` for one event on its way to
the online scorer. A fitted ``"tfidf"`` scorer is saved as JSON (settings, vocabulary) and an
``.npz`` of numbers, loaded without pickle, and predicts the same bits after the round trip.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import narwhals.stable.v2 as nw
import numpy as np
import numpy.typing as npt
from scipy.special import expit
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

from vipml._version import __version__
from vipml.base import VipmlEstimator
from vipml.errors import DataValidationError

__all__ = ["SentimentScorer"]

Backend = Literal["lexicon", "tfidf"]
Analyzer = Literal["word", "char_wb", "char"]

_SETTINGS = "sentiment.json"
_ARRAYS = "sentiment.npz"
_FORMAT = 1
_TOKEN_PATTERN = r"(?u)\b\w+\b"  # one-letter words count ("a", Korean single syllables)


class SentimentScorer(VipmlEstimator):
    """Score texts from -1 (negative) to +1 (positive); turn event texts into event values.

    Parameters
    ----------
    backend : {"lexicon", "tfidf"}, default "tfidf"
        ``"lexicon"``: English VADER lexicon (``vipml[text]``), no fitting. ``"tfidf"``:
        TF-IDF and logistic regression fitted on labelled texts, any language.
    analyzer : {"word", "char_wb", "char"}, default "word"
        Features of the ``"tfidf"`` back end: word n-grams, or character n-grams (``"char_wb"``
        keeps them inside words) for Korean, Japanese, Chinese, Turkish, Finnish and the like.
    ngram_range : tuple of int, optional
        Smallest and largest n-gram; default (1, 2) for words and (1, 3) for characters.
    min_df : int, default 2
        Ignore n-grams seen in fewer texts (they cannot generalise, and keep the file small).
    max_features : int, default 100_000
        Largest vocabulary, the most frequent n-grams first.
    C : float, default 4.0
        Inverse L2 penalty of the logistic regression.
    lowercase : bool, default True
        Fold case before counting.

    Attributes
    ----------
    vocabulary_ : list of str
        The n-grams, in feature order (``"tfidf"``).
    idf_, coef_ : numpy.ndarray
        Inverse document frequencies and logistic coefficients per n-gram.
    intercept_ : float
    classes_ : list
        The two labels as given to ``fit``: ``classes_[1]`` is the positive one.

    Examples
    --------
    >>> texts = ["great service, love it", "terrible, never again", "love the app",
    ...          "awful support", "great prices", "never buying again, awful"]
    >>> scorer = SentimentScorer(min_df=1).fit(texts, [1, 0, 1, 0, 1, 0])
    >>> scorer.score(["love it", "awful"]).round(2)
    array([ 0.38, -0.36])
    """

    _fitted_attributes = ("vocabulary_", "idf_", "coef_", "intercept_", "classes_")

    def __init__(
        self,
        backend: Backend = "tfidf",
        *,
        analyzer: Analyzer = "word",
        ngram_range: tuple[int, int] | None = None,
        min_df: int = 2,
        max_features: int = 100_000,
        C: float = 4.0,
        lowercase: bool = True,
    ) -> None:
        self.backend = backend
        self.analyzer = analyzer
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_features = max_features
        self.C = C
        self.lowercase = lowercase

    # ---- fitting ---------------------------------------------------------------------------

    def fit(self, texts: Iterable[Any], labels: Iterable[Any]) -> SentimentScorer:
        """Learn the n-gram weights from labelled texts (``"tfidf"``; the lexicon needs none).

        Parameters
        ----------
        texts : iterable of str
            The texts; a missing or empty text is an error (it says nothing).
        labels : iterable
            Two classes; the larger in sort order is positive (``1`` of ``0/1``, ``True``,
            ``"positive"`` of ``"negative"/"positive"``).

        Returns
        -------
        SentimentScorer
        """
        self._check_params()
        if self.backend == "lexicon":
            raise ValueError(
                "The lexicon back end has nothing to fit: call score() directly, or use "
                "backend='tfidf' to learn from labelled texts."
            )
        texts = _texts(texts, "texts", allow_missing=False)
        labels = list(labels)
        if len(labels) != len(texts):
            raise DataValidationError(
                f"texts and labels differ in length ({len(texts)} and {len(labels)})."
            )
        classes = sorted(set(labels))
        if len(classes) != 2:
            raise DataValidationError(
                f"labels must hold exactly two classes (negative, positive), got {classes[:5]}."
            )
        y = np.array([label == classes[1] for label in labels], dtype=np.int64)
        vectorizer = TfidfVectorizer(
            analyzer=self.analyzer,
            ngram_range=self._ngram_range(),
            min_df=self.min_df,
            max_features=self.max_features,
            lowercase=self.lowercase,
            token_pattern=_TOKEN_PATTERN if self.analyzer == "word" else None,
            dtype=np.float64,
        )
        try:
            vectorizer.fit(texts)
        except ValueError as exc:  # empty vocabulary
            raise DataValidationError(
                f"No n-gram is frequent enough to learn from ({exc}); lower min_df or pass "
                "more texts."
            ) from exc
        vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
        self.vocabulary_ = vocabulary
        self.idf_ = np.asarray(vectorizer.idf_, dtype=np.float64)
        features = self._features(texts)
        model = LogisticRegression(C=self.C, solver="liblinear", max_iter=1000)
        model.fit(features, y)
        self.coef_ = np.asarray(model.coef_[0], dtype=np.float64)
        self.intercept_ = float(model.intercept_[0])
        self.classes_ = [_plain(c) for c in classes]
        self.n_texts_ = len(texts)
        self._stamp_version()
        return self

    # ---- scoring -----------------------------------------------------------------------------

    def score(self, texts: Iterable[Any]) -> npt.NDArray[np.float64]:
        """Sentiment in [-1, 1] of each text; NaN for a missing or empty text.

        ``"lexicon"``: VADER's compound score. ``"tfidf"``: 2 P(positive) - 1.
        """
        self._check_params()
        texts = _texts(texts, "texts", allow_missing=True)
        out = np.full(len(texts), np.nan)
        present = [i for i, text in enumerate(texts) if text]
        if not present:
            return out
        given = [texts[i] for i in present]
        if self.backend == "lexicon":
            analyzer = _vader()
            out[present] = [analyzer.polarity_scores(text)["compound"] for text in given]
        else:
            self._check_fitted()
            out[present] = 2.0 * self._proba(given) - 1.0
        return out

    def predict_proba(self, texts: Iterable[Any]) -> npt.NDArray[np.float64]:
        """P(positive) of each text (``"tfidf"``); NaN for a missing text."""
        return (self.score(texts) + 1.0) / 2.0

    def predict(self, texts: Iterable[Any]) -> list[Any]:
        """The label of each text: positive when the score is above 0."""
        scores = self.score(texts)
        negative, positive = self.classes_ if self.backend == "tfidf" else (0, 1)
        return [None if np.isnan(s) else (positive if s > 0 else negative) for s in scores]

    def score_events(
        self, events: Any, *, text: str = "text", value: str = "value", keep_text: bool = True
    ) -> Any:
        """The event log with the sentiment of each text as the event's value.

        Rows with a text get its score as ``value``; rows without one keep their value (or
        get NaN when the log has no value column). The caller's frame is not changed.

        Parameters
        ----------
        events : DataFrame
            An eager event log (pandas, polars or pyarrow) with a text column. Collect a lazy
            one first: texts are scored in this process.
        text, value : str, default "text", "value"
            Names of the text and value columns.
        keep_text : bool, default True
            Keep the text column in the result (drop it to keep raw texts out of feature
            stores).

        Returns
        -------
        DataFrame
            Same kind as ``events``.

        Examples
        --------
        >>> import pandas as pd
        >>> texts = ["great", "awful", "great great", "awful awful"]
        >>> scorer = SentimentScorer(min_df=1).fit(texts, [1, 0, 1, 0])
        >>> events = pd.DataFrame({"customer_id": [1, 1], "event_type": ["review", "visit"],
        ...                        "text": ["great", None], "value": [None, 0.3]})
        >>> scorer.score_events(events)["value"].round(2).tolist()
        [0.61, 0.3]
        """
        frame = nw.from_native(events, eager_only=True)
        if text not in frame.columns:
            raise DataValidationError(
                f"events lack the text column '{text}'; available: {list(frame.columns)}."
            )
        scores = self.score(frame.get_column(text).to_list())
        if value in frame.columns:
            old = frame.get_column(value).cast(nw.Float64).to_numpy()
            scores = np.where(np.isnan(scores), old, scores)
        series = nw.new_series(value, scores, nw.Float64, backend=frame.implementation)
        out = frame.with_columns(series)
        if not keep_text:
            out = out.drop(text)
        return out.to_native()

    def score_event(
        self, event: Mapping[str, Any], *, text: str = "text", value: str = "value"
    ) -> dict[str, Any]:
        """One event (a dict) with its text's sentiment as ``value``, for the online scorer.

        ``OnlineScorer.update(scorer.score_event(row))`` gives the same state as the batch
        features of ``scorer.score_events(log)``.
        """
        out = dict(event)
        given = out.get(text)
        if isinstance(given, str) and given.strip():
            out[value] = float(self.score([given])[0])
        return out

    # ---- saving ------------------------------------------------------------------------------

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``sentiment.json`` and ``sentiment.npz`` (no pickle) to a folder.

        The JSON holds the settings, the vocabulary, the classes and the sha256 of the arrays'
        file; :meth:`load` checks it.
        """
        self._check_params()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        settings: dict[str, Any] = {
            "format": _FORMAT,
            "vipml": __version__,
            "params": {
                **self.get_params(),
                "ngram_range": None if self.ngram_range is None else list(self.ngram_range),
            },
        }
        if self.backend == "tfidf":
            self._check_fitted()
            arrays = folder / _ARRAYS
            with arrays.open("wb") as handle:
                np.savez(handle, idf=self.idf_, coef=self.coef_, intercept=[self.intercept_])
            settings.update(
                vocabulary=self.vocabulary_,
                classes=self.classes_,
                n_texts=self.n_texts_,
                sha256=hashlib.sha256(arrays.read_bytes()).hexdigest(),
            )
        (folder / _SETTINGS).write_text(json.dumps(settings, ensure_ascii=False, sort_keys=True))
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> SentimentScorer:
        """Read a scorer written by :meth:`save`; only JSON and plain arrays are read."""
        folder = Path(folder)
        try:
            settings = json.loads((folder / _SETTINGS).read_text())
        except (OSError, ValueError) as exc:
            raise DataValidationError(f"No readable sentiment scorer in {folder} ({exc}).") from exc
        if not isinstance(settings, dict) or settings.get("format") != _FORMAT:
            raise DataValidationError(f"{folder / _SETTINGS} is not a sentiment scorer (format 1).")
        params = dict(settings.get("params", {}))
        allowed = set(cls().get_params())
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise DataValidationError(f"{folder / _SETTINGS} has unknown settings {unknown}.")
        if params.get("ngram_range") is not None:
            params["ngram_range"] = tuple(int(n) for n in params["ngram_range"])
        scorer = cls(**params)
        scorer._check_params()
        if scorer.backend == "lexicon":
            return scorer
        data = (folder / _ARRAYS).read_bytes()
        if hashlib.sha256(data).hexdigest() != settings.get("sha256"):
            raise DataValidationError(
                f"{folder / _ARRAYS} does not match the sha256 in {_SETTINGS}: changed or damaged."
            )
        with np.load(folder / _ARRAYS, allow_pickle=False) as arrays:
            idf = np.asarray(arrays["idf"], dtype=np.float64)
            coef = np.asarray(arrays["coef"], dtype=np.float64)
            intercept = float(arrays["intercept"][0])
        vocabulary = settings.get("vocabulary")
        if not isinstance(vocabulary, list) or not all(isinstance(t, str) for t in vocabulary):
            raise DataValidationError(f"{folder / _SETTINGS} has no vocabulary list.")
        if not (len(vocabulary) == idf.size == coef.size) or len(set(vocabulary)) < len(vocabulary):
            raise DataValidationError(
                f"{folder}: vocabulary ({len(vocabulary)}), idf ({idf.size}) and coefficients "
                f"({coef.size}) do not match."
            )
        scorer.vocabulary_ = vocabulary
        scorer.idf_ = idf
        scorer.coef_ = coef
        scorer.intercept_ = intercept
        scorer.classes_ = list(settings.get("classes", [0, 1]))
        scorer.n_texts_ = int(settings.get("n_texts", 0))
        scorer.vipml_version_ = settings.get("vipml")
        return scorer

    # ---- internals ---------------------------------------------------------------------------

    def _check_params(self) -> None:
        if self.backend not in ("lexicon", "tfidf"):
            raise ValueError(f"backend must be 'lexicon' or 'tfidf', got {self.backend!r}.")
        if self.analyzer not in ("word", "char_wb", "char"):
            raise ValueError(
                f"analyzer must be 'word', 'char_wb' or 'char', got {self.analyzer!r}."
            )
        low, high = self._ngram_range()
        if not 1 <= low <= high:
            raise ValueError(
                f"ngram_range must be (low, high) with 1 <= low <= high, got {(low, high)}."
            )
        if self.min_df < 1 or self.max_features < 1 or not self.C > 0:
            raise ValueError("min_df and max_features must be >= 1 and C > 0.")

    def _ngram_range(self) -> tuple[int, int]:
        if self.ngram_range is not None:
            return (int(self.ngram_range[0]), int(self.ngram_range[1]))
        return (1, 2) if self.analyzer == "word" else (1, 3)

    def _features(self, texts: Sequence[str]) -> Any:
        """TF-IDF rows (l2-normalised), computed the same way at fit and after loading."""
        counter = CountVectorizer(
            analyzer=self.analyzer,
            ngram_range=self._ngram_range(),
            lowercase=self.lowercase,
            token_pattern=_TOKEN_PATTERN if self.analyzer == "word" else None,
            vocabulary={term: i for i, term in enumerate(self.vocabulary_)},
            dtype=np.float64,
        )
        counts = counter.transform(texts).tocsr()
        counts.sort_indices()
        weighted = counts.multiply(self.idf_).tocsr()
        return normalize(weighted, norm="l2", copy=False)

    def _proba(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        margin = self._features(texts) @ self.coef_ + self.intercept_
        return expit(np.asarray(margin, dtype=np.float64))


def _texts(texts: Iterable[Any], name: str, *, allow_missing: bool) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a list of texts, not one str: wrap it in a list.")
    out: list[str] = []
    bad: list[int] = []
    for i, text in enumerate(texts):
        if isinstance(text, str) and text.strip():
            out.append(text)
        elif text is None or (isinstance(text, float) and text != text) or isinstance(text, str):
            if not allow_missing:
                bad.append(i)
            out.append("")
        else:
            raise DataValidationError(
                f"{name}[{i}] is a {type(text).__name__}, not a text: {text!r}."
            )
    if bad:
        raise DataValidationError(
            f"{name} has {len(bad)} missing or empty text(s) (positions {bad[:5]}); drop them "
            "before fitting."
        )
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _vader() -> Any:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            'The lexicon back end needs vaderSentiment: pip install "vipml[text]".'
        ) from exc
    return _cached_vader(SentimentIntensityAnalyzer)


_VADER: list[Any] = []


def _cached_vader(factory: Any) -> Any:
    """One analyzer per process: reading the lexicon costs about 0.1 s."""
    if not _VADER:
        _VADER.append(factory())
    return _VADER[0]
