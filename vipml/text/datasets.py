"""Labelled texts shipped with vipml, to try and check the sentiment scorers."""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["load_korean_reviews", "load_review_sentences"]


def load_review_sentences() -> pd.DataFrame:
    """3,000 English review sentences labelled positive or negative (Kotzias et al. 2015).

    The "Sentiment Labelled Sentences" data set of the UCI Machine Learning Repository
    (CC BY 4.0): for each of amazon.com (phones and accessories), imdb.com (films) and
    yelp.com (restaurants), 500 positive and 500 negative sentences chosen for a clear
    sentiment. The copy comes from the data set's files as redistributed unchanged in the
    GitHub repository ``Nanofication/TWC-Naive-Bayes`` (commit 5bc4715, 2017; each file 1,000
    lines, 500 per class, the yelp file byte-identical to an independent copy); blanks were
    collapsed. About 80 kB gzip-compressed.

    Returns
    -------
    pandas.DataFrame
        ``source`` ("amazon", "imdb", "yelp"), ``text``, ``label`` (1 positive, 0 negative).

    References
    ----------
    Kotzias, D., Denil, M., de Freitas, N. and Smyth, P. (2015). From Group to Individual
    Labels using Deep Features. KDD 2015. https://doi.org/10.24432/C57604

    Examples
    --------
    >>> reviews = load_review_sentences()
    >>> reviews.groupby("source")["label"].agg(["size", "sum"])
            size  sum
    source
    amazon  1000  500
    imdb    1000  500
    yelp    1000  500
    """
    return _read("review_sentences.tsv.gz")


def load_korean_reviews() -> pd.DataFrame:
    """5,000 Korean film reviews labelled positive or negative, from the NSMC crawl (CC0).

    The Naver Sentiment Movie Corpus (Park 2015, CC0 1.0) labels reviews rated 1-4 of 10 as
    negative and 9-10 as positive, keeping reviews under 140 characters. vipml ships a
    balanced sample drawn the same way from the corpus's raw crawl (``raw/*.json`` of GitHub
    ``e9t/nsmc``, commit cc0670e): 2,500 reviews of each class drawn with
    ``numpy.random.default_rng(2015)``, in review-id order, blanks collapsed; only text and
    label are kept (no author). About 180 kB gzip-compressed.

    Returns
    -------
    pandas.DataFrame
        ``text`` and ``label`` (1 positive, 0 negative).

    References
    ----------
    Park, L. (2015). Naver sentiment movie corpus v1.0. https://github.com/e9t/nsmc

    Examples
    --------
    >>> reviews = load_korean_reviews()
    >>> reviews["label"].value_counts().sort_index().tolist()
    [2500, 2500]
    """
    return _read("nsmc_sample.tsv.gz")


def _read(name: str) -> pd.DataFrame:
    source = resources.files("vipml.text").joinpath("_files", name)
    with source.open("rb") as handle:
        frame = pd.read_csv(
            handle, compression="gzip", sep="\t", keep_default_na=False, dtype={"label": "int64"}
        )
    return frame
