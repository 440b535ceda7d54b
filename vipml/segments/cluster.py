"""Customer segments: k-means on robustly scaled features, a profile and a name per segment."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import narwhals as nw
import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import pairwise_distances_argmin

from vipml.base import VipmlEstimator
from vipml.errors import DataValidationError
from vipml.segments.naming import (
    DEFAULT_VOCABULARY,
    SegmentName,
    actions_for,
    name_segments,
    naming_axes,
)

if TYPE_CHECKING:
    try:
        from typing import Self
    except ImportError:  # Python < 3.11
        from typing_extensions import Self

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "SAMPLED_START_ABOVE",
    "N_INIT",
    "SELECTION_SAMPLE",
    "simplified_silhouette",
    "Segmenter",
    "as_feature_table",
    "segment_profile",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

_ID = "customer_id"
#: Derived column: time since the last purchase, ``T - recency`` of an RFM summary.
TIME_SINCE_LAST = "time_since_last"
_RFM_MEANS = ("frequency", "recency", "T", "monetary_value", TIME_SINCE_LAST)
_DEFAULT_FEATURES = ("frequency", "monetary_value", TIME_SINCE_LAST)
#: Above this many customers ``method="kmeans"`` runs its k-means++ restarts on the selection
#: sample and one Lloyd run on everyone from the best of them (see :class:`Segmenter`).
SAMPLED_START_ABOVE = 50_000
#: Scaling statistics, naming percentiles and the choice of k use a seeded sample of at most
#: this many customers.
SELECTION_SAMPLE = 20_000
#: k-means restarts (best inertia kept), for KMeans and MiniBatchKMeans alike.
N_INIT = 3
#: Mini-batch size of MiniBatchKMeans when ``batch_size`` is None (large batches: fewer steps).
DEFAULT_BATCH_SIZE = 16_384
#: A non-negative column whose sample skewness exceeds this is log1p-transformed before scaling.
_SKEW_FOR_LOG = 1.0
_N_SHOWN = 5
# A segment with fewer sampled members than this is placed on the naming axes from all of them.
_MIN_NAMING_ROWS = 100


def _few(values: Sequence[Any] | pd.Index) -> str:
    shown = [str(v) for v in list(values)[:_N_SHOWN]]
    return "[" + ", ".join(shown) + (", ..." if len(values) > _N_SHOWN else "") + "]"


def as_feature_table(features: Any, name: str = "features") -> pd.DataFrame:
    """A pandas feature table indexed by customer id, with ``time_since_last`` added.

    Parameters
    ----------
    features : DataFrame-like
        pandas frame indexed by customer id (or with a ``customer_id`` column), or any frame
        narwhals supports (polars, pyarrow, DuckDB, ...) with a ``customer_id`` column. It is
        not modified.
    name : str, default "features"
        Argument name for error messages.

    Returns
    -------
    pandas.DataFrame
        The table; when it has ``recency`` and ``T`` but no ``time_since_last``, that column
        (``T - recency``: time since the last purchase, in the RFM time unit) is appended.

    Raises
    ------
    DataValidationError
        Not a table, no customer ids, or repeated customer ids.

    Examples
    --------
    >>> import pandas as pd
    >>> rfm = pd.DataFrame({"frequency": [0.0, 2.0], "recency": [0.0, 5.0], "T": [8.0, 9.0]},
    ...                    index=pd.Index(["a", "b"], name="customer_id"))
    >>> as_feature_table(rfm)["time_since_last"].tolist()
    [8.0, 4.0]
    """
    if isinstance(features, pd.DataFrame):
        table = features
        if _ID in table.columns and table.index.name != _ID:
            table = table.set_index(_ID)
    else:
        try:
            frame = nw.from_native(features)
        except TypeError as exc:
            raise DataValidationError(
                f"{name} must be a data frame indexed by customer, got {type(features).__name__}."
            ) from exc
        if isinstance(frame, nw.LazyFrame):
            frame = frame.collect()
        if not isinstance(frame, nw.DataFrame) or _ID not in frame.columns:
            raise DataValidationError(
                f"{name} ({type(features).__name__}) needs a '{_ID}' column when it is not a "
                "pandas frame indexed by customer."
            )
        table = frame.to_pandas().set_index(_ID)
    if not table.index.is_unique:
        repeated = table.index[table.index.duplicated()].unique()
        raise DataValidationError(
            f"{name} has {len(repeated)} repeated customer id(s), e.g. {_few(repeated)}: a "
            "feature table has one row per customer. Aggregate or drop the duplicates first."
        )
    if TIME_SINCE_LAST not in table and "recency" in table and "T" in table:
        table = table.assign(**{TIME_SINCE_LAST: table["T"] - table["recency"]})
    return table


def _matrix(table: pd.DataFrame, columns: Sequence[str], name: str) -> FloatArray:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataValidationError(
            f"{name} lacks the feature column(s) {missing}; it has {list(table.columns)}."
        )
    not_numeric = [c for c in columns if not pd.api.types.is_numeric_dtype(table[c])]
    if not_numeric:
        raise DataValidationError(
            f"{name}: feature column(s) {not_numeric} are not numeric; encode them or leave "
            "them out of `features`."
        )
    matrix = table[list(columns)].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(matrix)
    if bad.any():
        column = columns[int(np.flatnonzero(bad.any(axis=0))[0])]
        rows = bad[:, list(columns).index(column)]
        raise DataValidationError(
            f"{name}: column '{column}' has {int(rows.sum())} missing or infinite value(s), "
            f"customers {_few(table.index[rows])}. Fill them (e.g. 0 for counts) or drop those "
            "customers."
        )
    return matrix


def _fit_scaling(matrix: FloatArray, columns: Sequence[str]) -> pd.DataFrame:
    """Per column: log1p if non-negative and skewed, then the median and the IQR (or the SD)."""
    centred = matrix - matrix.mean(axis=0)
    variance = (centred**2).mean(axis=0)
    with np.errstate(all="ignore"):
        skewness = np.nan_to_num((centred**3).mean(axis=0) / variance**1.5, nan=0.0)
    log = (matrix.min(axis=0) >= 0) & (skewness > _SKEW_FOR_LOG)
    z = np.where(log, np.log1p(np.where(log, matrix, 0.0)), matrix)
    q25, median, q75 = np.percentile(z, [25, 50, 75], axis=0)
    spread = q75 - q25
    sd = z.std(axis=0)
    scale = np.where(spread > 0, spread, np.where(sd > 0, sd, 1.0))
    return pd.DataFrame(
        {"log": log, "center": median, "scale": scale}, index=pd.Index(columns, name="feature")
    )


def _apply_scaling(matrix: FloatArray, scaling: pd.DataFrame, name: str) -> FloatArray:
    log = scaling["log"].to_numpy(dtype=bool)
    negative = (matrix < 0) & log
    if negative.any():
        column = scaling.index[int(np.flatnonzero(negative.any(axis=0))[0])]
        raise DataValidationError(
            f"{name}: column '{column}' has negative values, but it was non-negative when the "
            "segmenter was fitted (and is log-transformed). Check the feature definitions."
        )
    z = matrix.copy()
    z[:, log] = np.log1p(z[:, log])
    z -= scaling["center"].to_numpy()
    z /= scaling["scale"].to_numpy()
    return z


def _invert_scaling(scaled: FloatArray, scaling: pd.DataFrame) -> FloatArray:
    z = scaled * scaling["scale"].to_numpy() + scaling["center"].to_numpy()
    log = scaling["log"].to_numpy(dtype=bool)
    z[:, log] = np.expm1(z[:, log])
    return z


def segment_profile(
    features: Any,
    labels: npt.ArrayLike,
    *,
    value: str | None = "clv",
    churn_risk: str | None = "churn_risk",
    revenue: str | None = "revenue",
    extra: Sequence[str] = (),
) -> pd.DataFrame:
    """Per segment: size, shares of customers, revenue and value, churn risk and RFM means.

    Parameters
    ----------
    features : DataFrame-like
        Per-customer table (see :func:`as_feature_table`).
    labels : array_like
        Segment of each row.
    value, churn_risk, revenue : str or None
        Names of the predicted-value (e.g. CLV), churn-probability and past-revenue columns;
        each is profiled when present in ``features``.
    extra : sequence of str
        Further numeric columns whose segment means are added.

    Returns
    -------
    pandas.DataFrame
        Indexed by segment: ``n_customers``, ``customer_share``; ``revenue_share`` (share of
        the revenue column) and ``revenue_per_customer``; ``value_share`` and ``mean_value``
        (the value column); ``churn_risk`` (mean); then the means of ``frequency``,
        ``recency``, ``T``, ``monetary_value``, ``time_since_last`` and of ``extra``, for
        the columns present.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"frequency": [0.0, 1.0, 4.0, 6.0],
    ...                       "revenue": [10.0, 30.0, 200.0, 160.0]})
    >>> segment_profile(table, [1, 1, 0, 0])[["n_customers", "revenue_share", "frequency"]]
             n_customers  revenue_share  frequency
    segment
    0                  2            0.9        5.0
    1                  2            0.1        0.5
    """
    table = as_feature_table(features)
    codes, segments = pd.factorize(np.asarray(labels), sort=True)
    k = len(segments)
    sizes = np.bincount(codes, minlength=k)

    def sums(column: str) -> tuple[FloatArray, FloatArray]:
        """Per segment, the sum and the count of the column's non-missing values."""
        values = pd.to_numeric(table[column]).to_numpy(dtype=np.float64)
        known = ~np.isnan(values)
        return (
            np.bincount(codes[known], weights=values[known], minlength=k),
            np.bincount(codes[known], minlength=k).astype(np.float64),
        )

    profile = pd.DataFrame(
        {"n_customers": sizes, "customer_share": sizes / len(table)},
        index=pd.Index(segments, name="segment"),
    )
    # An all-missing column gives NaN means, not warnings.
    with np.errstate(invalid="ignore", divide="ignore"):
        if revenue is not None and revenue in table:
            total, _ = sums(revenue)
            profile["revenue_share"] = total / total.sum()
            profile["revenue_per_customer"] = total / sizes
        if value is not None and value in table:
            total, _ = sums(value)
            profile["value_share"] = total / total.sum()
            profile["mean_value"] = total / sizes
        if churn_risk is not None and churn_risk in table:
            total, count = sums(churn_risk)
            profile["churn_risk"] = total / count
        means = [c for c in (*_RFM_MEANS, *extra) if c in table and c not in profile]
        for column in dict.fromkeys(means):
            total, count = sums(column)
            profile[column] = total / count
    return profile


def simplified_silhouette(model: KMeans | MiniBatchKMeans, scaled: FloatArray) -> float:
    """Mean simplified silhouette of a fitted k-means model on ``scaled``.

    For each point, ``a`` is the distance to its own centre and ``b`` to the nearest other
    centre; its score is ``(b - a) / max(a, b)`` (0 when both are 0). This is the silhouette
    with centres in place of all other points: O(n k) instead of O(n^2), so it can score
    every row of the selection sample.

    References
    ----------
    Hruschka, Campello & de Castro (2004), "Improving the efficiency of a clustering genetic
    algorithm", IBERAMIA, LNCS 3315, 861-870 (simplified silhouette). Vendramin, Campello &
    Hruschka (2010), "Relative clustering validity criteria: a comparative overview",
    Statistical Analysis and Data Mining 3(4), 209-235 (it ranks among the best criteria).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.cluster import KMeans
    >>> x = np.array([[0.0], [0.1], [5.0], [5.1]])
    >>> round(simplified_silhouette(KMeans(2, n_init=1, random_state=0).fit(x), x), 3)
    0.99
    """
    distances = model.transform(scaled)
    rows = np.arange(len(scaled))
    own_labels = pairwise_distances_argmin(scaled, model.cluster_centers_)
    own = distances[rows, own_labels]
    distances[rows, own_labels] = np.inf
    other = distances.min(axis=1)
    top = np.maximum(own, other)
    score = np.divide(other - own, top, out=np.zeros_like(top), where=top > 0)
    return float(score.mean())


def nearest_center(
    scaled: FloatArray, centers: FloatArray, block: int = 65_536
) -> npt.NDArray[np.int64]:
    """Index of each row's nearest centre (squared Euclidean distance, first on ties).

    Plain numpy in blocks of rows: no thread pool to start, which dominates when one customer
    is scored in real time, and bounded memory for millions of rows.

    Examples
    --------
    >>> nearest_center(np.array([[0.0, 0.1], [5.0, 5.0]]), np.array([[0.0, 0.0], [4.0, 4.0]]))
    array([0, 1])
    """
    labels = np.empty(scaled.shape[0], dtype=np.int64)
    for start in range(0, scaled.shape[0], block):
        part = scaled[start : start + block]
        distances = ((part[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
        labels[start : start + block] = distances.argmin(axis=1)
    return labels


class Segmenter(VipmlEstimator):
    """Customer segments by k-means, profiled, named and ready for marketing.

    **Scaling.** Each feature column that is non-negative with a sample skewness above 1 is
    transformed with ``log1p`` (frequency, spend and value are heavy-tailed); then every column
    is centred on its median and divided by its inter-quartile range (by its standard deviation
    when the IQR is 0, e.g. a mostly-zero column; by 1 when constant). Log plus robust scaling
    keeps the top customers spread out (quantile scaling would squeeze the top 5% into
    [0.95, 1]) while one huge spender cannot stretch an axis. With more than
    :data:`SELECTION_SAMPLE` customers, the skewness, median and IQR come from a seeded sample
    of that many, which keeps large inputs cheap; so do the naming positions (a segment with
    fewer than 100 sampled members is placed from all its members, ranked against the sample).

    **Choice of k.** With ``n_segments="auto"``, k-means is fitted for each k in ``k_range``
    (inclusive) on a seeded sample of at most :data:`SELECTION_SAMPLE` customers (all of them
    when fewer) and scored by the mean simplified silhouette (:func:`simplified_silhouette`) on
    that sample; the k with the highest score wins (the smaller k on a tie). The chosen k is
    then fitted on every customer.

    **Algorithm.** ``method="kmeans"`` (default) uses scikit-learn's KMeans (k-means++,
    :data:`N_INIT` restarts, Lloyd iterations). Above :data:`SAMPLED_START_ABOVE` customers the
    restarts run on the seeded selection sample and one Lloyd run on every customer starts from
    the best of them: on 1e5 to 1e6 customers that is 1.5 to 3.5 times faster than restarting on
    everyone, for the same inertia (``benchmarks/bench_segments.py``). ``method="minibatch"``
    uses MiniBatchKMeans (batches of ``batch_size``, default :data:`DEFAULT_BATCH_SIZE`). It is
    not chosen automatically: scikit-learn 1.9 draws every mini-batch with a weighted sampler
    that costs a pass over all customers, so on a handful of features it is slower than KMeans
    at every size measured, 1e5 to 1e7 customers (at 1e7: 128 s against 31 s, one core).

    **Determinism.** Rows are put in customer-id order before anything random happens, so the
    same customers with the same seed give the same labels whatever the row order. Segments are
    numbered by decreasing value: by the ``value`` axis of :func:`~vipml.segments.naming_axes`
    when there is a value column, else by the mean of the other axes.

    Parameters
    ----------
    n_segments : int or "auto", default "auto"
        Number of segments, or "auto" to choose it in ``k_range``.
    features : sequence of str, optional
        Columns to cluster on. Default: those of ``frequency``, ``monetary_value``,
        ``time_since_last`` (``T - recency``, derived from an RFM summary) and the ``value``
        column that are present; all numeric columns when none is.
    method : {"kmeans", "minibatch"}, default "kmeans"
        See *Algorithm*.
    k_range : tuple of int, default (3, 8)
        Smallest and largest k tried with ``n_segments="auto"``.
    random_state : int or None, default 0
        Seed of the samples and of k-means.
    batch_size : int, optional
        MiniBatchKMeans batch size.
    value : str or None, default "clv"
        Predicted-value column (CLV or any value): profiled, used for naming and ordering, and
        clustered by default. Ignored when absent.
    churn_risk : str or None, default "churn_risk"
        Churn-probability column, profiled when present (not clustered unless in ``features``).
    revenue : str or None, default "revenue"
        Past-revenue column, profiled (share of revenue) when present.
    vocabulary : sequence of SegmentName, default DEFAULT_VOCABULARY
        Names, ideal profiles and actions; see :mod:`vipml.segments.naming`.

    Attributes
    ----------
    n_segments_ : int
        Number of segments fitted.
    features_ : list of str
        Clustered columns.
    labels_ : pandas.Series
        Segment (0 .. k-1) per customer, in the order of the fitted table.
    names_ : pandas.Series
        Name per segment.
    centers_ : pandas.DataFrame
        Segment centres in the features' own units (back-transformed; for a log column the
        centre is a geometric-type mean).
    cluster_centers_ : numpy.ndarray
        Centres in the scaled space (what :meth:`predict` measures distances to).
    scaling_ : pandas.DataFrame
        Per feature: ``log`` (log1p applied), ``center`` and ``scale``.
    profile_ : pandas.DataFrame
        :func:`segment_profile` with ``name`` first and ``action`` last.
    axes_ : pandas.DataFrame
        Position of each segment on the naming axes.
    k_scores_ : pandas.Series or None
        Simplified silhouette per candidate k (``n_segments="auto"``), else None.
    algorithm_ : str
        "KMeans", "KMeans (sample start)" or "MiniBatchKMeans".
    inertia_ : float
        Sum of squared distances to the centres, in the scaled space.
    vipml_version_ : str
        vipml version that fitted the segmenter.

    Examples
    --------
    >>> import pandas as pd
    >>> rfm = pd.DataFrame(
    ...     {"frequency": [0, 0, 0, 1, 2, 1, 8, 9, 7, 0, 0, 1.0],
    ...      "recency": [0, 0, 0, 10, 20, 15, 38, 37, 39, 0, 0, 2.0],
    ...      "T": [39, 38, 39, 39, 30, 39, 39, 39, 39, 20, 39, 39.0],
    ...      "monetary_value": [0, 0, 0, 20, 25, 30, 80, 90, 85, 0, 0, 15.0]},
    ...     index=pd.Index(range(1, 13), name="customer_id"))
    >>> seg = Segmenter(n_segments=3).fit(rfm)
    >>> seg.labels_.tolist()
    [2, 2, 2, 1, 1, 1, 0, 0, 0, 2, 2, 1]
    >>> seg.names_.tolist()
    ['Champions', 'Need attention', 'Lost']
    >>> seg.profile_[["name", "n_customers", "frequency"]]
                       name  n_customers  frequency
    segment
    0             Champions            3        8.0
    1        Need attention            4        1.25
    2                  Lost            5        0.0
    """

    _fitted_attributes = ("cluster_centers_", "scaling_", "names_")

    def __init__(
        self,
        *,
        n_segments: int | Literal["auto"] = "auto",
        features: Sequence[str] | None = None,
        method: Literal["kmeans", "minibatch"] = "kmeans",
        k_range: tuple[int, int] = (3, 8),
        random_state: int | None = 0,
        batch_size: int | None = None,
        value: str | None = "clv",
        churn_risk: str | None = "churn_risk",
        revenue: str | None = "revenue",
        vocabulary: Sequence[SegmentName] = DEFAULT_VOCABULARY,
    ) -> None:
        self.n_segments = n_segments
        self.features = features
        self.method = method
        self.k_range = k_range
        self.random_state = random_state
        self.batch_size = batch_size
        self.value = value
        self.churn_risk = churn_risk
        self.revenue = revenue
        self.vocabulary = vocabulary

    # -- checks ---------------------------------------------------------------------------------

    def _check_params(self) -> None:
        k = self.n_segments
        if not (k == "auto" or (isinstance(k, int | np.integer) and not isinstance(k, bool))):
            raise ValueError(f"n_segments must be 'auto' or an integer >= 2, got {k!r}.")
        if k != "auto" and int(k) < 2:
            raise ValueError(f"n_segments must be at least 2, got {k!r}.")
        low_high = tuple(self.k_range)
        if (
            len(low_high) != 2
            or not all(isinstance(v, int | np.integer) for v in low_high)
            or not 2 <= low_high[0] <= low_high[1]
        ):
            raise ValueError(
                f"k_range must be two integers (smallest, largest) with 2 <= smallest <= "
                f"largest, got {self.k_range!r}."
            )
        if self.method not in ("kmeans", "minibatch"):
            raise ValueError(f"method must be 'kmeans' or 'minibatch', got {self.method!r}.")
        if self.batch_size is not None and (
            not isinstance(self.batch_size, int | np.integer) or self.batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}.")

    def _feature_columns(self, table: pd.DataFrame) -> list[str]:
        if self.features is not None:
            columns = list(self.features)
            if not columns:
                raise ValueError("features is empty; pass column names or None for the default.")
            return columns
        defaults = [*_DEFAULT_FEATURES, *([self.value] if self.value else [])]
        columns = [c for c in dict.fromkeys(defaults) if c in table]
        if columns:
            return columns
        numeric = [c for c in table.columns if pd.api.types.is_numeric_dtype(table[c])]
        if not numeric:
            raise DataValidationError(
                f"features has no numeric column to cluster on (columns: {list(table.columns)})."
            )
        return numeric

    def _candidate_ks(self, n: int) -> list[int]:
        if self.n_segments != "auto":
            k = int(self.n_segments)
            if n < 2 * k:
                raise DataValidationError(
                    f"{n} customers are too few for n_segments={k}: k-means needs at least two "
                    f"customers per segment ({2 * k}). Ask for at most {n // 2} segments or "
                    "segment more customers."
                )
            return [k]
        low, high = (int(v) for v in self.k_range)
        if n < 2 * low:
            raise DataValidationError(
                f"{n} customers are too few for n_segments='auto' with k_range={self.k_range}: "
                f"the smallest k ({low}) needs at least {2 * low} customers (two per segment)."
            )
        return list(range(low, min(high, n // 2) + 1))

    # -- fitting --------------------------------------------------------------------------------

    def _choose_k(
        self, scaled: FloatArray, ks: list[int]
    ) -> tuple[int, pd.Series | None, KMeans | None]:
        """k, the score per candidate k and the chosen candidate's model (fitted on ``scaled``)."""
        if self.n_segments != "auto":
            return ks[0], None, None
        models = {
            k: KMeans(k, n_init=N_INIT, random_state=self.random_state).fit(scaled) for k in ks
        }
        scores = {k: simplified_silhouette(model, scaled) for k, model in models.items()}
        k_scores = pd.Series(scores, name="silhouette").rename_axis("k")
        best = int(k_scores.idxmax())
        logger.debug("Segmenter: simplified silhouette by k %s, chose k=%d", scores, best)
        return best, k_scores, models[best]

    def _naming_axes(
        self, table: pd.DataFrame, labels: npt.NDArray[np.int64], k: int, sample: Any
    ) -> pd.DataFrame:
        """Naming positions, on the sample (if any) plus every member of thinly sampled segments."""
        if sample is None:
            return naming_axes(table, labels, value=self.value)
        thin = np.flatnonzero(np.bincount(labels[sample], minlength=k) < _MIN_NAMING_ROWS)
        rows = np.union1d(sample, np.flatnonzero(np.isin(labels, thin)))
        return naming_axes(
            table.iloc[rows], labels[rows], value=self.value, reference=table.iloc[sample]
        )

    def _cluster(
        self, k: int, scaled: FloatArray, sample: Any, start: KMeans | None
    ) -> KMeans | MiniBatchKMeans:
        """Fit the final k-means model on every customer (see *Algorithm*)."""
        if self.method == "minibatch":
            return MiniBatchKMeans(
                k,
                batch_size=int(self.batch_size or DEFAULT_BATCH_SIZE),
                n_init=N_INIT,
                random_state=self.random_state,
            ).fit(scaled)
        if sample is None or len(scaled) <= SAMPLED_START_ABOVE:
            return KMeans(k, n_init=N_INIT, random_state=self.random_state).fit(scaled)
        if start is None:
            start = KMeans(k, n_init=N_INIT, random_state=self.random_state).fit(scaled[sample])
        return KMeans(k, init=start.cluster_centers_, n_init=1, random_state=self.random_state).fit(
            scaled
        )

    def fit(self, features: Any, y: None = None) -> Self:
        """Scale the features, choose k, cluster, then profile and name the segments.

        Parameters
        ----------
        features : DataFrame-like
            One row per customer (see :func:`as_feature_table`), e.g. an RFM summary joined
            with ``clv``, ``churn_risk`` and ``revenue`` columns. It is not modified.
        y : None
            Ignored (scikit-learn convention).

        Returns
        -------
        Self
            The fitted segmenter.

        Raises
        ------
        DataValidationError
            Missing, non-numeric or non-finite feature columns, repeated customer ids, fewer
            than two customers per requested segment, or fewer distinct customers than
            segments.
        ValueError
            Invalid parameters.
        """
        self._check_params()
        table = as_feature_table(features)
        columns = self._feature_columns(table)
        matrix = _matrix(table, columns, "features")
        ks = self._candidate_ks(len(table))
        # Customer-id order first: the result cannot depend on the caller's row order.
        order = table.index.argsort()
        sorted_matrix = matrix[order]
        n = len(table)
        sample = None
        if n > SELECTION_SAMPLE:
            rng = np.random.default_rng(self.random_state)
            sample = np.sort(rng.choice(n, SELECTION_SAMPLE, replace=False))
        scaling = _fit_scaling(sorted_matrix if sample is None else sorted_matrix[sample], columns)
        scaled = _apply_scaling(sorted_matrix, scaling, "features")
        k, k_scores, start = self._choose_k(scaled if sample is None else scaled[sample], ks)
        model = self._cluster(k, scaled, sample, start)
        sorted_labels = np.asarray(model.labels_)
        if np.bincount(sorted_labels, minlength=k).min() == 0:
            distinct = len(np.unique(scaled, axis=0))
            raise DataValidationError(
                f"Only {distinct} distinct feature rows among {n} customers: too few "
                f"for {k} segments. Ask for fewer segments or add features that tell customers "
                "apart."
            )
        raw = np.empty(n, dtype=np.int64)
        raw[order] = sorted_labels
        axes = self._naming_axes(table, raw, k, None if sample is None else order[sample])
        if len(axes.columns):
            key = axes["value"] if "value" in axes else axes.mean(axis=1)
        else:
            key = pd.Series(np.bincount(raw, minlength=k), dtype=np.float64)
        ranking = np.argsort(-key.to_numpy(), kind="stable")
        relabel = np.empty(k, dtype=np.int64)
        relabel[ranking] = np.arange(k)
        labels = relabel[raw]
        centers = np.asarray(model.cluster_centers_)[ranking]

        self.n_segments_ = k
        self.features_ = columns
        self.k_scores_ = k_scores
        self.algorithm_ = type(model).__name__ + (
            " (sample start)" if isinstance(model.init, np.ndarray) else ""
        )
        self.inertia_ = float(model.inertia_)
        self.scaling_ = scaling
        self.cluster_centers_ = centers
        self.centers_ = pd.DataFrame(
            _invert_scaling(centers, scaling),
            index=pd.RangeIndex(k, name="segment"),
            columns=columns,
        )
        self.labels_ = pd.Series(labels, index=table.index, name="segment")
        self.axes_ = axes.iloc[ranking].set_axis(pd.RangeIndex(k, name="segment"))
        names = name_segments(self.axes_, self.vocabulary)
        self._set_names(names, table)
        self._stamp_version()
        return self

    def _set_names(self, names: pd.Series, table: pd.DataFrame) -> None:
        """Set ``names_`` and the profile (``name`` first, ``action`` last)."""
        self.names_ = names.rename("name")
        profile = segment_profile(
            table,
            self.labels_.to_numpy(),
            value=self.value,
            churn_risk=self.churn_risk,
            revenue=self.revenue,
            extra=self.features_,
        )
        profile.insert(0, "name", self.names_)
        profile["action"] = actions_for(self.names_, self.vocabulary)
        self.profile_ = profile

    def rename(self, names: pd.Series | dict[int, str]) -> Self:
        """Replace segment names (e.g. to keep last period's), updating ``profile_``.

        Parameters
        ----------
        names : mapping or Series
            New name per segment number; segments left out keep theirs.

        Returns
        -------
        Self

        Raises
        ------
        DataValidationError
            Unknown segment numbers, or names that would repeat.
        """
        self._check_fitted()
        updates = pd.Series(names, dtype=object)
        unknown = sorted(set(updates.index) - set(self.names_.index))
        if unknown:
            raise DataValidationError(
                f"rename got segments {unknown}; this segmenter has 0..{self.n_segments_ - 1}."
            )
        new = self.names_.copy()
        new.loc[updates.index] = updates.to_numpy()
        if not new.is_unique:
            raise DataValidationError(
                f"rename would give two segments the same name: {new.tolist()}."
            )
        self.names_ = new
        profile = self.profile_.copy()
        profile["name"] = new
        profile["action"] = actions_for(new, self.vocabulary)
        self.profile_ = profile
        return self

    # -- prediction -----------------------------------------------------------------------------

    def transform_features(self, features: Any) -> FloatArray:
        """The scaled feature matrix of ``features`` (rows in the table's order).

        Parameters
        ----------
        features : DataFrame-like
            Table with the fitted feature columns.

        Returns
        -------
        numpy.ndarray
            One row per customer, one column per feature of ``features_``.
        """
        self._check_fitted()
        table = as_feature_table(features)
        return _apply_scaling(_matrix(table, self.features_, "features"), self.scaling_, "features")

    def predict(self, features: Any) -> pd.Series:
        """Assign customers to the nearest segment centre (in the fitted scaled space).

        Parameters
        ----------
        features : DataFrame-like
            Table with the fitted feature columns (see :func:`as_feature_table`).

        Returns
        -------
        pandas.Series
            Segment number per customer, named ``segment``; map it to names with
            ``.map(segmenter.names_)``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        DataValidationError
            Missing or invalid feature columns.

        Examples
        --------
        >>> import pandas as pd
        >>> train = pd.DataFrame({"frequency": [0, 0, 1, 1, 8, 9.0],
        ...                       "time_since_last": [30, 35, 20, 25, 1, 2.0],
        ...                       "monetary_value": [0, 0, 20, 25, 80, 90.0]})
        >>> seg = Segmenter(n_segments=3).fit(train)
        >>> new = pd.DataFrame({"frequency": [10.0, 0.0], "time_since_last": [0.0, 30.0],
        ...                     "monetary_value": [100.0, 0.0]},
        ...                    index=pd.Index(["x", "y"], name="customer_id"))
        >>> seg.predict(new).map(seg.names_).tolist()
        ['Champions', 'Lost']
        """
        table = as_feature_table(features)
        scaled = self.transform_features(table)
        labels = nearest_center(scaled, self.cluster_centers_)
        return pd.Series(labels.astype(np.int64), index=table.index, name="segment")

    def fit_predict(self, features: Any, y: None = None) -> pd.Series:
        """Fit and return ``labels_``."""
        return self.fit(features).labels_
