"""Segments period after period: aligned names, migration matrices and value growth.

Re-clustering every period lets segments follow customers as they change, but k-means numbers
its clusters arbitrarily. :class:`SegmentTracker` fits a fresh :class:`~vipml.segments.Segmenter`
at each period and matches its centres with the previous period's (Hungarian algorithm on the
distances between centres, :func:`match_segments`), so a segment that continues keeps its name;
unmatched segments are reported as new or vanished. :func:`migration_matrix` counts who moved
where between two periods, and :func:`value_growth` compares total and mean predicted value per
segment or VIP tier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.base import clone

from vipml.base import VipmlEstimator
from vipml.errors import DataValidationError
from vipml.segments.cluster import Segmenter, _apply_scaling
from vipml.segments.naming import name_segments

if TYPE_CHECKING:
    try:
        from typing import Self
    except ImportError:  # Python < 3.11
        from typing_extensions import Self

__all__ = [
    "GONE",
    "NEW",
    "Migration",
    "SegmentTracker",
    "match_segments",
    "migration_matrix",
    "value_growth",
]

#: Row of :func:`migration_matrix` for customers absent from the earlier period.
NEW = "(new customers)"
#: Column of :func:`migration_matrix` for customers absent from the later period.
GONE = "(gone)"


def match_segments(
    previous: Segmenter, current: Segmenter, *, max_distance: float | None = None
) -> pd.DataFrame:
    """Match the segments of two fitted segmenters by their centres.

    ``current``'s centres (in feature units) are scaled with ``previous``'s scaling, so both
    sets of centres live in the same space; the matching minimises the total Euclidean distance
    between matched centres (:func:`scipy.optimize.linear_sum_assignment`). With different
    numbers of segments the extra ones stay unmatched; a match farther apart than
    ``max_distance`` is broken into a vanished and a new segment.

    Parameters
    ----------
    previous, current : Segmenter
        Fitted on the same feature columns, e.g. at consecutive cutoffs.
    max_distance : float, optional
        Largest distance (in ``previous``'s scaled units: roughly inter-quartile ranges) at
        which two segments still count as the same. None: no limit.

    Returns
    -------
    pandas.DataFrame
        One row per pair or unmatched segment: ``previous`` and ``previous_name`` (missing for
        a new segment), ``current`` (missing for a vanished one), ``distance`` and ``status``
        (``"continued"``, ``"new"`` or ``"vanished"``); continued pairs first, by
        ``current``.

    Raises
    ------
    DataValidationError
        If the two segmenters use different features.

    Examples
    --------
    >>> import pandas as pd
    >>> first = pd.DataFrame({"monetary_value": [1.0, 1.2, 1.1, 9.0, 9.5, 9.2, 30.0, 31.0]})
    >>> later = pd.DataFrame({"monetary_value": [9.1, 9.4, 9.3, 1.3, 1.0, 1.1, 1.2, 1.0]})
    >>> a = Segmenter(n_segments=3).fit(first)
    >>> b = Segmenter(n_segments=2).fit(later)
    >>> a.centers_["monetary_value"].round(1).tolist(), b.centers_["monetary_value"].round(1).tolist()
    ([30.5, 9.2, 1.1], [9.3, 1.1])
    >>> match_segments(a, b)[["previous", "current", "distance", "status"]].round(1)
       previous  current  distance     status
    0         1        0       0.0  continued
    1         2        1       0.0  continued
    2         0     <NA>       NaN   vanished
    """
    previous._check_fitted()
    current._check_fitted()
    if list(previous.features_) != list(current.features_):
        raise DataValidationError(
            f"Cannot match segments fitted on different features: {previous.features_} vs "
            f"{current.features_}. Fit every period with the same features."
        )
    centres = np.maximum(
        current.centers_.to_numpy(),
        np.where(previous.scaling_["log"].to_numpy(dtype=bool), 0.0, -np.inf),
    )
    moved = _apply_scaling(centres, previous.scaling_, "centres")
    cost = np.linalg.norm(previous.cluster_centers_[:, None, :] - moved[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(cost)
    distance = cost[rows, cols]
    keep = np.ones(len(rows), dtype=bool) if max_distance is None else distance <= max_distance
    records = [
        {"previous": p, "current": c, "distance": d, "status": "continued"}
        for p, c, d in zip(rows[keep], cols[keep], distance[keep], strict=True)
    ]
    records.sort(key=lambda r: r["current"])
    matched_current, matched_previous = set(cols[keep]), set(rows[keep])
    records += [
        {"previous": pd.NA, "current": c, "distance": np.nan, "status": "new"}
        for c in range(current.n_segments_)
        if c not in matched_current
    ]
    records += [
        {"previous": p, "current": pd.NA, "distance": np.nan, "status": "vanished"}
        for p in range(previous.n_segments_)
        if p not in matched_previous
    ]
    table = pd.DataFrame.from_records(
        records, columns=["previous", "current", "distance", "status"]
    )
    table["previous"] = table["previous"].astype("Int64")
    table["current"] = table["current"].astype("Int64")
    table.insert(1, "previous_name", table["previous"].map(previous.names_, na_action="ignore"))
    return table


class SegmentTracker(VipmlEstimator):
    """Fit segments period after period, keeping names of segments that continue.

    At each period a clone of ``segmenter`` is fitted on that period's features; from the
    second period on its segments are matched with the previous period's
    (:func:`match_segments`). A continued segment takes its predecessor's name; new segments are
    named from the rest of the vocabulary (:func:`~vipml.segments.name_segments` with the
    continued names fixed).

    Parameters
    ----------
    segmenter : Segmenter, optional
        Template segmenter (cloned each period). Default: ``Segmenter()``.
    max_distance : float, optional
        See :func:`match_segments`.
    refit_k : bool, default False
        With ``n_segments="auto"``: False chooses k at the first period and keeps it, so
        segments persist; True chooses it again every period, so segments may appear and
        vanish as the silhouette's preference moves.

    Attributes
    ----------
    periods_ : list
        Periods fitted, in order.
    segmenters_ : dict
        Fitted segmenter per period (names aligned).
    changes_ : pandas.DataFrame
        :func:`match_segments` per period from the second on, with a ``period`` column and the
        current segment's ``name``.
    assignments_ : pandas.DataFrame
        Segment name per customer (rows, sorted by id) and period (columns); missing where a
        customer is absent.

    Examples
    --------
    >>> import pandas as pd
    >>> q1 = pd.DataFrame({"frequency": [0, 0, 1, 1, 6, 7.0],
    ...                    "time_since_last": [20, 25, 10, 12, 1, 2.0],
    ...                    "monetary_value": [0, 0, 20, 25, 80, 90.0]})
    >>> q2 = pd.DataFrame({"frequency": [0, 1, 1, 2, 7, 8.0],
    ...                    "time_since_last": [33, 5, 20, 9, 2, 1.0],
    ...                    "monetary_value": [0, 15, 20, 25, 85, 90.0]})
    >>> tracker = SegmentTracker(Segmenter(n_segments=3)).fit({"Q1": q1, "Q2": q2})
    >>> tracker.assignments_
                   Q1              Q2
    0            Lost            Lost
    1            Lost  Need attention
    2  Need attention            Lost
    3  Need attention  Need attention
    4       Champions       Champions
    5       Champions       Champions
    >>> tracker.migration("Q1", "Q2").counts
    Q2              Champions  Need attention  Lost
    Q1
    Champions               2               0     0
    Need attention          0               1     1
    Lost                    0               1     1
    """

    _fitted_attributes = ("periods_", "segmenters_", "assignments_")

    def __init__(
        self,
        segmenter: Segmenter | None = None,
        *,
        max_distance: float | None = None,
        refit_k: bool = False,
    ) -> None:
        self.segmenter = segmenter
        self.max_distance = max_distance
        self.refit_k = refit_k

    def fit(self, features_by_period: Mapping[Any, Any]) -> Self:
        """Fit every period in order (replacing any earlier fit).

        Parameters
        ----------
        features_by_period : mapping of period to DataFrame-like
            Feature table per period, in chronological order.

        Returns
        -------
        Self

        Raises
        ------
        DataValidationError
            As :meth:`Segmenter.fit`, or an empty mapping.
        """
        if not features_by_period:
            raise DataValidationError("features_by_period is empty: pass at least one period.")
        for name in ("periods_", "segmenters_", "changes_", "assignments_"):
            self.__dict__.pop(name, None)
        for period, features in features_by_period.items():
            self.update(period, features)
        return self

    def update(self, period: Any, features: Any) -> Self:
        """Fit one more period and align its segments with the last one.

        Parameters
        ----------
        period : hashable
            Label of the new period (e.g. its cutoff); must be new.
        features : DataFrame-like
            That period's feature table.

        Returns
        -------
        Self
        """
        periods = list(getattr(self, "periods_", []))
        if period in periods:
            raise DataValidationError(f"Period {period!r} is already fitted; periods: {periods}.")
        template = clone(self.segmenter if self.segmenter is not None else Segmenter())
        segmenters = dict(getattr(self, "segmenters_", {}))
        if periods and not self.refit_k:
            template.set_params(n_segments=segmenters[periods[0]].n_segments_)
        fitted = template.fit(features)
        changes = getattr(self, "changes_", None)
        if periods:
            matches = match_segments(
                segmenters[periods[-1]], fitted, max_distance=self.max_distance
            )
            continued = matches[matches["status"] == "continued"]
            fixed = dict(zip(continued["current"], continued["previous_name"], strict=True))
            fitted.rename(name_segments(fitted.axes_, fitted.vocabulary, fixed=fixed))
            matches.insert(0, "period", period)
            matches["name"] = matches["current"].map(fitted.names_, na_action="ignore")
            changes = pd.concat([changes, matches], ignore_index=True)
        segmenters[period] = fitted
        names = fitted.labels_.map(fitted.names_).rename(period)
        assignments = getattr(self, "assignments_", None)
        self.assignments_ = (
            names.to_frame() if assignments is None else assignments.join(names, how="outer")
        ).sort_index()
        self.periods_ = [*periods, period]
        self.segmenters_ = segmenters
        self.changes_ = changes
        self._stamp_version()
        return self

    def migration(self, start: Any, end: Any) -> Migration:
        """Migration between the segments of two fitted periods.

        Rows and columns follow the segments' order (by value) in ``start``, then segments
        only present in ``end``.

        Parameters
        ----------
        start, end : hashable
            Two fitted periods.

        Returns
        -------
        Migration
        """
        self._check_fitted()
        unknown = [p for p in (start, end) if p not in self.segmenters_]
        if unknown:
            raise DataValidationError(f"Periods {unknown} are not fitted; fitted: {self.periods_}.")
        order = [*self.segmenters_[start].names_, *self.segmenters_[end].names_]
        first, last = self.segmenters_[start], self.segmenters_[end]
        before = first.labels_.map(first.names_).rename(start)
        after = last.labels_.map(last.names_).rename(end)
        return migration_matrix(before, after, order=list(dict.fromkeys(order)))


@dataclass(frozen=True)
class Migration:
    """Who moved where between two periods.

    Attributes
    ----------
    counts : pandas.DataFrame
        Customers by earlier segment (rows, plus :data:`NEW` for customers absent earlier) and
        later segment (columns, plus :data:`GONE` for customers absent later).
    shares : pandas.DataFrame
        ``counts`` divided by its row totals: where each earlier segment's customers went.
    """

    counts: pd.DataFrame
    shares: pd.DataFrame


def _order(*columns: pd.Series) -> list[Any]:
    """Categories in order when a column is categorical, else the sorted values."""
    categories = [c.cat.categories for c in columns if isinstance(c.dtype, pd.CategoricalDtype)]
    if categories:
        return list(dict.fromkeys(v for c in categories for v in c))
    return sorted(set().union(*(set(c.dropna()) for c in columns)), key=str)


def migration_matrix(
    before: pd.Series, after: pd.Series, *, order: Sequence[Any] | None = None
) -> Migration:
    """Counts and row shares of customers moving between segments (or tiers).

    Parameters
    ----------
    before, after : pandas.Series
        Segment or tier per customer in the earlier and the later period.
    order : sequence, optional
        Order of rows and columns; default: categories for categoricals, else sorted values.
        :data:`NEW` and :data:`GONE` come last when needed.

    Returns
    -------
    Migration

    Examples
    --------
    >>> import pandas as pd
    >>> before = pd.Series(["Loyal", "Loyal", "Lost"], index=["a", "b", "c"])
    >>> after = pd.Series(["Loyal", "Lost", "Lost", "Loyal"], index=["a", "b", "c", "d"])
    >>> migration_matrix(before, after, order=["Loyal", "Lost"]).shares
    after            Loyal  Lost
    before
    Loyal              0.5   0.5
    Lost               0.0   1.0
    (new customers)    1.0   0.0
    """
    customers = before.index.union(after.index)
    first = before.astype(object).reindex(customers)
    last = after.astype(object).reindex(customers)
    if order is None:
        order = _order(before, after)
    rows = [*order, *([NEW] if first.isna().any() else [])]
    columns = [*order, *([GONE] if last.isna().any() else [])]
    counts = (
        pd.crosstab(
            first.fillna(NEW).to_numpy(),
            last.fillna(GONE).to_numpy(),
            rownames=[before.name if before.name is not None else "before"],
            colnames=[after.name if after.name is not None else "after"],
        )
        .reindex(index=rows, columns=columns, fill_value=0)
        .astype(np.int64)
    )
    totals = counts.sum(axis=1).to_numpy(dtype=np.float64)
    shares = counts.div(np.where(totals > 0, totals, 1.0), axis=0)
    return Migration(counts=counts, shares=shares)


def value_growth(
    before: pd.DataFrame,
    after: pd.DataFrame,
    *,
    by: str = "segment",
    value: str = "clv",
) -> pd.DataFrame:
    """Change in total and mean predicted value per group (segment or tier) between periods.

    Each period is grouped by its own assignment (a customer counts in the group they were in
    at that period).

    Parameters
    ----------
    before, after : pandas.DataFrame
        Per customer, the group column ``by`` and the value column ``value`` at each period.
    by : str, default "segment"
        Group column (segment name, tier, ...).
    value : str, default "clv"
        Predicted value column.

    Returns
    -------
    pandas.DataFrame
        Per group (categories' order for a categorical ``by``, else sorted) and for
        ``"(all)"``: ``n_before``, ``n_after``,
        ``total_before``, ``total_after``, ``total_change``, ``total_growth`` (relative),
        ``mean_before``, ``mean_after``, ``mean_change``.

    Raises
    ------
    DataValidationError
        Missing columns.

    Examples
    --------
    >>> import pandas as pd
    >>> q1 = pd.DataFrame({"tier": ["VIP", "Standard", "Standard"], "clv": [100.0, 10.0, 20.0]})
    >>> q2 = pd.DataFrame({"tier": ["VIP", "VIP", "Standard"], "clv": [90.0, 60.0, 10.0]})
    >>> value_growth(q1, q2, by="tier")[["total_before", "total_after", "mean_change"]]
              total_before  total_after  mean_change
    tier
    Standard          30.0         10.0         -5.0
    VIP              100.0        150.0        -25.0
    (all)            130.0        160.0         10.0
    """
    for name, frame in (("before", before), ("after", after)):
        missing = [c for c in (by, value) if c not in frame.columns]
        if missing:
            raise DataValidationError(f"{name} lacks column(s) {missing}.")

    def summary(frame: pd.DataFrame) -> pd.DataFrame:
        grouped = frame.groupby(frame[by].astype(object))[value]
        return pd.DataFrame({"n": grouped.size(), "total": grouped.sum()})

    groups = _order(before[by], after[by])
    first, last = summary(before), summary(after)
    first = first.reindex(groups).fillna(0.0)
    last = last.reindex(groups).fillna(0.0)
    first.loc["(all)"] = [len(before), float(before[value].sum())]
    last.loc["(all)"] = [len(after), float(after[value].sum())]
    with np.errstate(divide="ignore", invalid="ignore"):
        table = pd.DataFrame(
            {
                "n_before": first["n"].astype(np.int64),
                "n_after": last["n"].astype(np.int64),
                "total_before": first["total"],
                "total_after": last["total"],
                "total_change": last["total"] - first["total"],
                "total_growth": last["total"] / first["total"] - 1.0,
                "mean_before": first["total"] / first["n"],
                "mean_after": last["total"] / last["n"],
            }
        )
    table["mean_change"] = table["mean_after"] - table["mean_before"]
    table.index.name = by
    return table
