"""Do the segments matter? What they do after the cutoff, and how stable they are.

Silhouette scores say clusters are compact; marketing needs segments that *behave* differently.
:func:`validate_holdout` takes the segments assigned at a cutoff and what each customer did in
``(cutoff, cutoff + horizon]`` (:func:`vipml.features.split.labels_after`) and reports per
segment the repeat-purchase rate, purchases, revenue per customer and churn rate with seeded
bootstrap intervals, a Kruskal-Wallis test with its effect size, and the rank agreement between
the segments' predicted and realised value. :func:`bootstrap_stability` refits the segmenter on
bootstrap resamples. :func:`revenue_capture` measures how much of the holdout revenue the top
customers by a score bring in. Each warns with :class:`~vipml.errors.ModelAssumptionWarning`
when the segments do not hold up.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import kruskal, spearmanr
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score
from sklearn.metrics.cluster import contingency_matrix

from vipml.errors import DataValidationError, ModelAssumptionWarning
from vipml.segments.cluster import Segmenter, as_feature_table
from vipml.segments.tiers import rank_positions, top_count

__all__ = [
    "HoldoutValidation",
    "Stability",
    "bootstrap_stability",
    "revenue_capture",
    "validate_holdout",
]

FloatArray = npt.NDArray[np.float64]

# Per-segment metrics of validate_holdout's table, and the outcomes it tests.
_METRICS = ("repeat_rate", "purchases_per_customer", "revenue_per_customer", "churn_rate")
_TESTED = ("purchases_next", "spend_next", "churned")
# Bootstrap replicates are drawn in chunks of at most this many resampled values.
_CHUNK_VALUES = 4_000_000


@dataclass(frozen=True)
class HoldoutValidation:
    """Result of :func:`validate_holdout`.

    Attributes
    ----------
    table : pandas.DataFrame
        Per segment: ``n_customers``, then for each of ``repeat_rate`` (share with a purchase
        in the horizon), ``purchases_per_customer``, ``revenue_per_customer`` and
        ``churn_rate`` (share with ``churned``) the estimate and its bootstrap bounds
        (``<metric>_low``, ``<metric>_high``); ``predicted_value`` (mean) when given.
    tests : pandas.DataFrame
        Kruskal-Wallis test across segments per outcome (``purchases_next``, ``spend_next``,
        ``churned``): ``statistic`` (H), ``p_value``, ``epsilon_squared`` (effect size).
    rank_agreement : pandas.Series
        Spearman correlation (``rho``, ``p_value``) between the segments' mean predicted value
        and their revenue per customer in the horizon; NaN without a predicted value.
    """

    table: pd.DataFrame
    tests: pd.DataFrame
    rank_agreement: pd.Series


@dataclass(frozen=True)
class Stability:
    """Result of :func:`bootstrap_stability`.

    Attributes
    ----------
    ari : numpy.ndarray
        Adjusted Rand index between the segments and each bootstrap refit's segments.
    jaccard : pandas.DataFrame
        Per segment, the Jaccard similarity with its best-matching bootstrap segment:
        ``mean``, ``min`` over replicates, and ``dissolved`` (share of replicates below 0.5).
    """

    ari: FloatArray
    jaccard: pd.DataFrame

    @property
    def mean_ari(self) -> float:
        """Mean adjusted Rand index over the replicates."""
        return float(self.ari.mean())


def _segment_codes(segments: pd.Series) -> tuple[npt.NDArray[np.intp], pd.Index]:
    if isinstance(segments.dtype, pd.CategoricalDtype):
        present = segments.cat.remove_unused_categories()
        return present.cat.codes.to_numpy().astype(np.intp), pd.Index(present.cat.categories)
    codes, uniques = pd.factorize(segments, sort=True)
    return codes.astype(np.intp), pd.Index(uniques)


def _bootstrap_means(
    codes: npt.NDArray[np.intp],
    columns: FloatArray,
    n_boot: int,
    rng: np.random.Generator,
) -> FloatArray:
    """Bootstrap means per segment: resample customers within each segment.

    Returns an array (n_boot, n_segments, n_columns). Vectorised over customers; replicates
    are drawn in chunks.
    """
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    values = columns[order]
    sizes = np.bincount(sorted_codes)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    n = len(codes)
    chunk = max(1, _CHUNK_VALUES // max(n, 1))
    out = np.empty((n_boot, len(sizes), columns.shape[1]))
    for first in range(0, n_boot, chunk):
        b = min(chunk, n_boot - first)
        draws = rng.random((b, n))
        index = starts[sorted_codes] + (draws * sizes[sorted_codes]).astype(np.intp)
        sums = np.add.reduceat(values[index], starts, axis=1)
        out[first : first + b] = sums / sizes[None, :, None]
    return out


def validate_holdout(
    segments: pd.Series,
    outcomes: pd.DataFrame,
    *,
    predicted_value: pd.Series | None = None,
    n_boot: int = 200,
    level: float = 0.95,
    alpha: float = 0.01,
    min_effect: float = 0.01,
    random_state: int | None = 0,
) -> HoldoutValidation:
    """Behaviour of each segment in the holdout period, with intervals and a test.

    Parameters
    ----------
    segments : pandas.Series
        Segment per customer assigned at the cutoff (numbers or names; a categorical keeps
        its category order in the table, other values are sorted).
    outcomes : pandas.DataFrame
        What customers did in ``(cutoff, cutoff + horizon]``, indexed by customer:
        ``purchases_next``, ``spend_next`` and ``churned``, as from
        :func:`vipml.features.split.labels_after`. Every segmented customer must be present.
    predicted_value : pandas.Series, optional
        Predicted value per customer at the cutoff (e.g. CLV over the horizon), for the rank
        agreement with the realised revenue.
    n_boot : int, default 200
        Bootstrap replicates (customers resampled within each segment).
    level : float, default 0.95
        Level of the percentile intervals.
    alpha : float, default 0.01
        Significance level of the warning.
    min_effect : float, default 0.01
        Smallest epsilon-squared that counts as a real difference (0.01: small effect).
    random_state : int or None, default 0
        Seed of the bootstrap.

    Returns
    -------
    HoldoutValidation

    Raises
    ------
    DataValidationError
        Missing outcome columns, customers without outcomes, or a single segment.
    ValueError
        ``n_boot < 1`` or ``level`` outside (0, 1).

    Warns
    -----
    ModelAssumptionWarning
        When holdout revenue does not differ across segments: Kruskal-Wallis p-value at least
        ``alpha`` or epsilon-squared below ``min_effect``.

    Notes
    -----
    Kruskal-Wallis H is computed with tie correction (:func:`scipy.stats.kruskal`); its effect
    size is epsilon-squared, ``H / (n - 1)`` (Tomczak & Tomczak 2014), from 0 (no difference)
    to 1 (the segments separate the outcome's ranks completely); 0.01, 0.08 and 0.26 are
    conventionally small, medium and large.

    References
    ----------
    Kruskal & Wallis (1952), "Use of ranks in one-criterion variance analysis", JASA 47(260).
    Tomczak & Tomczak (2014), "The need to report effect size estimates revisited", Trends in
    Sport Sciences 21(1), eq. 13 (epsilon-squared for Kruskal-Wallis).

    Examples
    --------
    >>> import pandas as pd
    >>> segments = pd.Series([0, 0, 0, 1, 1, 1], index=list("abcdef"))
    >>> outcomes = pd.DataFrame({"purchases_next": [3, 2, 4, 0, 0, 1],
    ...                          "spend_next": [90.0, 50.0, 120.0, 0.0, 0.0, 10.0],
    ...                          "churned": [False, False, False, True, True, False]},
    ...                         index=list("abcdef"))
    >>> result = validate_holdout(segments, outcomes, n_boot=50, alpha=0.1)
    >>> result.table[["n_customers", "repeat_rate", "revenue_per_customer"]].round(2)
             n_customers  repeat_rate  revenue_per_customer
    segment
    0                  3         1.00                 86.67
    1                  3         0.33                  3.33
    >>> round(float(result.tests.loc["spend_next", "epsilon_squared"]), 2)
    0.7
    """
    if not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}.")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}.")
    missing = [c for c in _TESTED if c not in outcomes.columns]
    if missing:
        raise DataValidationError(
            f"outcomes lacks column(s) {missing}; pass the output of "
            "vipml.features.split.labels_after for the same cutoff."
        )
    absent = segments.index.difference(outcomes.index)
    if len(absent):
        raise DataValidationError(
            f"{len(absent)} segmented customer(s) have no outcomes, e.g. {list(absent[:5])}: "
            "compute the outcomes at the cutoff the segments were assigned at."
        )
    frame = outcomes.loc[segments.index, list(_TESTED)]
    codes, segment_index = _segment_codes(segments)
    if len(segment_index) < 2:
        raise DataValidationError("validate_holdout needs at least two segments.")
    purchases = frame["purchases_next"].to_numpy(dtype=np.float64)
    spend = frame["spend_next"].to_numpy(dtype=np.float64)
    churned = frame["churned"].to_numpy(dtype=np.float64)
    columns = np.column_stack([purchases > 0, purchases, spend, churned]).astype(np.float64)
    sizes = np.bincount(codes, minlength=len(segment_index))
    estimates = (
        np.stack(
            [np.bincount(codes, weights=col, minlength=len(segment_index)) for col in columns.T],
            axis=1,
        )
        / sizes[:, None]
    )
    boot = _bootstrap_means(codes, columns, int(n_boot), np.random.default_rng(random_state))
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(boot, [tail, 1.0 - tail], axis=0)
    table = pd.DataFrame({"n_customers": sizes}, index=segment_index.rename("segment"))
    for j, metric in enumerate(_METRICS):
        table[metric] = estimates[:, j]
        table[f"{metric}_low"] = low[:, j]
        table[f"{metric}_high"] = high[:, j]
    agreement = pd.Series({"rho": np.nan, "p_value": np.nan}, name="spearman")
    if predicted_value is not None:
        predicted = predicted_value.reindex(segments.index).to_numpy(dtype=np.float64)
        if np.isnan(predicted).any():
            raise DataValidationError(
                "predicted_value is missing for some segmented customers; pass one value per "
                "customer."
            )
        table["predicted_value"] = np.bincount(codes, weights=predicted) / sizes
        rho, p_value = spearmanr(table["predicted_value"], table["revenue_per_customer"])
        agreement = pd.Series({"rho": float(rho), "p_value": float(p_value)}, name="spearman")
    n = len(codes)
    rows = {}
    for column, values in zip(_TESTED, (purchases, spend, churned), strict=True):
        groups = [values[codes == j] for j in range(len(segment_index))]
        if np.ptp(values) == 0:
            rows[column] = {"statistic": 0.0, "p_value": 1.0, "epsilon_squared": 0.0}
            continue
        statistic, p_value = kruskal(*groups)
        rows[column] = {
            "statistic": float(statistic),
            "p_value": float(p_value),
            "epsilon_squared": float(statistic) / (n - 1),
        }
    tests = pd.DataFrame.from_dict(rows, orient="index").rename_axis("outcome")
    revenue = tests.loc["spend_next"]
    if revenue["p_value"] >= alpha or revenue["epsilon_squared"] < min_effect:
        warnings.warn(
            f"Segments barely differ in holdout revenue: Kruskal-Wallis p = "
            f"{revenue['p_value']:.3g}, epsilon-squared = {revenue['epsilon_squared']:.3g} "
            f"(thresholds: p < {alpha}, epsilon-squared >= {min_effect}). They may not be worth "
            "acting on: try other features (value, churn risk), another number of segments, or "
            "a longer horizon.",
            ModelAssumptionWarning,
            stacklevel=2,
        )
    return HoldoutValidation(table=table, tests=tests, rank_agreement=agreement)


def bootstrap_stability(
    segmenter: Segmenter,
    features: Any,
    *,
    n_boot: int = 20,
    random_state: int | None = 0,
    min_ari: float = 0.6,
    min_jaccard: float = 0.5,
) -> Stability:
    """Refit the segmenter on bootstrap resamples and compare with its segments.

    Each replicate draws customers with replacement, fits a clone of ``segmenter`` with its
    fitted number of segments on them, assigns every customer of ``features`` with the refit
    and compares with the fitted segmenter's assignment: the adjusted Rand index overall, and
    per original segment the Jaccard similarity (shared customers over customers in either)
    with its best-matching refit segment (Hennig 2007).

    Parameters
    ----------
    segmenter : Segmenter
        A fitted segmenter.
    features : DataFrame-like
        The customers to compare on (usually the table it was fitted on).
    n_boot : int, default 20
        Bootstrap replicates.
    random_state : int or None, default 0
        Seed of the resampling; replicate ``b`` fits with seed ``random_state + b``.
    min_ari, min_jaccard : float, default 0.6 and 0.5
        Thresholds of the warning.

    Returns
    -------
    Stability

    Raises
    ------
    NotFittedError
        If ``segmenter`` is not fitted.

    Warns
    -----
    ModelAssumptionWarning
        Mean ARI below ``min_ari``, or a segment whose mean Jaccard is below ``min_jaccard``
        (Hennig: below 0.5 a cluster "dissolves").

    References
    ----------
    Hennig (2007), "Cluster-wise assessment of cluster stability", Computational Statistics &
    Data Analysis 52(1), 258-271. Hubert & Arabie (1985), "Comparing partitions", Journal of
    Classification 2, 193-218 (adjusted Rand index).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> table = pd.DataFrame({"x": np.r_[rng.normal(0, 1, 50), rng.normal(10, 1, 50)],
    ...                       "y": np.r_[rng.normal(0, 1, 50), rng.normal(10, 1, 50)]})
    >>> seg = Segmenter(n_segments=2).fit(table)
    >>> stability = bootstrap_stability(seg, table, n_boot=5)
    >>> round(stability.mean_ari, 2), stability.jaccard["mean"].round(2).tolist()
    (1.0, [1.0, 1.0])
    """
    segmenter._check_fitted()
    if not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}.")
    table = as_feature_table(features)
    reference = segmenter.predict(table).to_numpy()
    k = segmenter.n_segments_
    rng = np.random.default_rng(random_state)
    base_seed = 0 if random_state is None else int(random_state)
    n = len(table)
    ari = np.empty(n_boot)
    jaccard = np.empty((n_boot, k))
    for b in range(n_boot):
        sample = table.iloc[np.sort(rng.integers(0, n, n))]
        sample = sample.set_axis(pd.RangeIndex(n, name=table.index.name))
        refit = clone(segmenter).set_params(n_segments=k, random_state=base_seed + b + 1)
        labels = refit.fit(sample).predict(table).to_numpy()
        ari[b] = adjusted_rand_score(reference, labels)
        counts = contingency_matrix(reference, labels)
        union = counts.sum(axis=1)[:, None] + counts.sum(axis=0)[None, :] - counts
        best = (counts / union).max(axis=1)
        present = np.unique(reference)
        jaccard[b] = 0.0
        jaccard[b, present] = best
    summary = pd.DataFrame(
        {
            "name": segmenter.names_.reindex(range(k)).to_numpy(),
            "mean": jaccard.mean(axis=0),
            "min": jaccard.min(axis=0),
            "dissolved": (jaccard < 0.5).mean(axis=0),
        },
        index=pd.RangeIndex(k, name="segment"),
    )
    weak = summary.index[summary["mean"] < min_jaccard].tolist()
    if ari.mean() < min_ari or weak:
        warnings.warn(
            f"Segments are unstable under bootstrap resampling: mean adjusted Rand index "
            f"{ari.mean():.2f} (threshold {min_ari}); segments with mean Jaccard below "
            f"{min_jaccard}: {weak or 'none'}. Try fewer segments or more telling features.",
            ModelAssumptionWarning,
            stacklevel=2,
        )
    return Stability(ari=ari, jaccard=summary)


def revenue_capture(
    scores: Mapping[str, pd.Series] | pd.Series,
    realised: pd.Series,
    shares: Sequence[float] = (0.05, 0.10),
) -> pd.DataFrame:
    """Share of realised revenue brought by the top customers according to each score.

    For each score and each share ``q``, the top ``ceil(q * n)`` customers by the score (ties
    by customer id, as in :func:`~vipml.segments.vip_tiers`) are taken and their realised
    revenue divided by everyone's.

    Parameters
    ----------
    scores : mapping of str to pandas.Series, or pandas.Series
        Scores to rank customers by (e.g. ``{"CLV": clv, "past spend": revenue}``); all over
        the same customers as ``realised``.
    realised : pandas.Series
        Revenue per customer in the holdout (e.g. ``spend_next``).
    shares : sequence of float, default (0.05, 0.10)
        Top shares of customers.

    Returns
    -------
    pandas.DataFrame
        One row per share (``top_share``), one column per score, plus ``random`` (the
        expected capture of a random pick: the share itself).

    Raises
    ------
    DataValidationError
        Scores over customers other than ``realised``'s, or no realised revenue.

    Examples
    --------
    >>> import pandas as pd
    >>> realised = pd.Series([100.0, 0.0, 50.0, 0.0], index=list("abcd"))
    >>> clv = pd.Series([9.0, 1.0, 5.0, 2.0], index=list("abcd"))
    >>> revenue_capture({"CLV": clv}, realised, shares=(0.25, 0.5))
               CLV  random
    top_share
    0.25       0.666667    0.25
    0.50       1.000000    0.50
    """
    if isinstance(scores, pd.Series):
        scores = {str(scores.name or "score"): scores}
    total = float(realised.sum())
    if not total > 0:
        raise DataValidationError("realised revenue sums to zero: nothing to capture.")
    result = {}
    for name, score in scores.items():
        if not score.index.sort_values().equals(realised.index.sort_values()):
            raise DataValidationError(
                f"score '{name}' covers other customers than realised ({len(score)} vs "
                f"{len(realised)}); align them first, e.g. score.reindex(realised.index)."
            )
        positions = rank_positions(score)
        revenue = realised.reindex(score.index).to_numpy(dtype=np.float64)
        result[name] = [
            float(revenue[positions < top_count(q, len(score))].sum()) / total for q in shares
        ]
    result["random"] = [float(q) for q in shares]
    return pd.DataFrame(result, index=pd.Index([float(q) for q in shares], name="top_share"))
