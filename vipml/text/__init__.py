"""Sentiment from text: lexicon (English) and trainable (any language) scorers, saved without pickle."""

from vipml.text.datasets import load_korean_reviews, load_review_sentences
from vipml.text.sentiment import SentimentScorer

__all__ = ["SentimentScorer", "load_korean_reviews", "load_review_sentences"]
