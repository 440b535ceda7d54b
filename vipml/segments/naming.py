"""Human names and recommended actions for segments, from their profile against the population.

Each segment is placed on five *naming axes*, each the mean percentile rank (0 to 1, 0.5 for
the population as a whole) of its customers in the population:

``recency``
    How recent the last purchase is (high: bought lately), from ``time_since_last``
    (``T - recency`` of an RFM summary) or, failing that, ``T - recency`` itself.
``frequency``
    ``frequency`` (repeat purchase periods).
``monetary``
    ``monetary_value`` (mean spend of the repeat periods).
``tenure``
    ``T`` (time since the first purchase; low: new customers).
``value``
    The predicted value column (e.g. CLV), when there is one.

A :class:`SegmentName` is a name, an ideal position on some of these axes and a recommended
action. :func:`name_segments` first stretches each axis so that the lowest segment sits at 0 and
the highest at 1 (in most shops a majority of one-time buyers ties at the bottom, which squeezes
every repeat buyer into the top percentiles), then gives every segment a different name by
matching segments to names with the Hungarian algorithm on a weighted squared distance between
the segment's position and each name's ideal. Each axis weighs as much as the segments differ on
it (its range before stretching), so an axis on which segments barely differ (tenure in a
single-cohort shop) barely counts. :data:`DEFAULT_VOCABULARY` is data, not code: replace it, or
any entry's action (:func:`with_actions`), to speak your business's language.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import linear_sum_assignment

from vipml.errors import DataValidationError

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "AXES",
    "DEFAULT_VOCABULARY",
    "SegmentName",
    "name_segments",
    "naming_axes",
    "with_actions",
]

#: The naming axes, in the order of :func:`naming_axes`' columns.
AXES: tuple[str, ...] = ("recency", "frequency", "monetary", "tenure", "value")


@dataclass(frozen=True)
class SegmentName:
    """One entry of a naming vocabulary.

    Attributes
    ----------
    name : str
        The segment's human name.
    profile : dict of str to float
        Ideal position on some naming axes (:data:`AXES`), each in [0, 1] on the stretched
        scale of :func:`name_segments`: 0 is the lowest segment, 1 the highest. Axes left out
        do not count for this name.
    action : str
        What marketing should do with the segment.
    """

    name: str
    profile: dict[str, float] = field(default_factory=dict)
    action: str = ""


#: The default vocabulary: the RFM names marketing teams use, with their ideal positions on the
#: naming axes and a recommended action each. Replace it, or change actions with
#: :func:`with_actions`.
DEFAULT_VOCABULARY: tuple[SegmentName, ...] = (
    SegmentName(
        "Champions",
        {"recency": 0.95, "frequency": 1.0, "monetary": 0.9, "value": 1.0},
        "Reward them: exclusive experiences and early access; no discounts needed.",
    ),
    SegmentName(
        "Loyal",
        {"recency": 0.75, "frequency": 0.85, "monetary": 0.75, "value": 0.7},
        "Keep them close: loyalty programme, upsell higher-value products, ask for reviews.",
    ),
    SegmentName(
        "Big spenders",
        {"recency": 0.6, "frequency": 0.4, "monetary": 1.0, "value": 0.7},
        "Recommend premium products and bundles; invite them to the loyalty programme.",
    ),
    SegmentName(
        "Potential loyalists",
        {"recency": 0.85, "frequency": 0.6, "monetary": 0.6, "value": 0.65},
        "Nudge toward the next purchase: membership offer, personal recommendations.",
    ),
    SegmentName(
        "Promising",
        {"recency": 0.8, "frequency": 0.35, "monetary": 0.4, "value": 0.45},
        "Nudge toward the next purchase: onboarding content, a time-limited offer.",
    ),
    SegmentName(
        "New",
        {"recency": 1.0, "frequency": 0.1, "tenure": 0.0, "value": 0.4},
        "Welcome series and a reason for a second purchase soon.",
    ),
    SegmentName(
        "Need attention",
        {"recency": 0.5, "frequency": 0.5, "monetary": 0.5, "value": 0.45},
        "Reactivate with limited-time offers and recommendations from their purchase history.",
    ),
    SegmentName(
        "At risk",
        {"recency": 0.25, "frequency": 0.6, "monetary": 0.6, "value": 0.3},
        "Win-back offer and personal contact; run an exit survey to learn why they slipped.",
    ),
    SegmentName(
        "Can't lose them",
        {"recency": 0.0, "frequency": 0.95, "monetary": 0.9, "value": 0.6},
        "Reactivation now: a personal call or a strong offer; they were among the best.",
    ),
    SegmentName(
        "Hibernating",
        {"recency": 0.25, "frequency": 0.2, "monetary": 0.35, "value": 0.2},
        "Low-cost reactivation: relevant products and occasional offers, no heavy spend.",
    ),
    SegmentName(
        "Lost",
        {"recency": 0.0, "frequency": 0.0, "monetary": 0.1, "value": 0.0},
        "Do not spend on them: a last low-cost campaign at most, then suppress from mailings.",
    ),
)


def with_actions(
    actions: Mapping[str, str], vocabulary: Sequence[SegmentName] = DEFAULT_VOCABULARY
) -> tuple[SegmentName, ...]:
    """A copy of a vocabulary with some recommended actions replaced.

    Parameters
    ----------
    actions : mapping of str to str
        New action per segment name.
    vocabulary : sequence of SegmentName, default DEFAULT_VOCABULARY
        The vocabulary to copy.

    Returns
    -------
    tuple of SegmentName

    Raises
    ------
    DataValidationError
        If a name is not in the vocabulary.

    Examples
    --------
    >>> vocabulary = with_actions({"Lost": "Exit survey."})
    >>> [entry.action for entry in vocabulary if entry.name == "Lost"]
    ['Exit survey.']
    """
    known = {entry.name for entry in vocabulary}
    unknown = sorted(set(actions) - known)
    if unknown:
        raise DataValidationError(
            f"with_actions got names {unknown} that are not in the vocabulary; its names are "
            f"{sorted(known)}."
        )
    return tuple(
        dataclasses.replace(entry, action=actions.get(entry.name, entry.action))
        for entry in vocabulary
    )


def _axis_columns(features: pd.DataFrame, value: str | None) -> dict[str, FloatArray]:
    """The naming axes ``features`` allows, oriented so that higher means "more"."""
    columns: dict[str, FloatArray] = {}

    def get(name: str) -> FloatArray:
        return features[name].to_numpy(dtype=np.float64)

    if "time_since_last" in features:
        columns["recency"] = -get("time_since_last")
    elif "recency" in features and "T" in features:
        columns["recency"] = get("recency") - get("T")
    if "frequency" in features:
        columns["frequency"] = get("frequency")
    if "monetary_value" in features:
        columns["monetary"] = get("monetary_value")
    if "T" in features:
        columns["tenure"] = get("T")
    if value is not None and value in features:
        columns["value"] = get(value)
    return columns


def naming_axes(
    features: pd.DataFrame,
    labels: npt.ArrayLike,
    *,
    value: str | None = None,
    reference: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Each segment's position on the naming axes: mean percentile rank of its customers.

    A customer's percentile on an axis is their mid-rank in the population,
    ``(#lower + #lower-or-equal) / (2 n)``: ties share the average rank, so the population's
    mean is exactly 0.5.

    Parameters
    ----------
    features : pandas.DataFrame
        Per-customer table with some of ``frequency``, ``recency``, ``T``, ``monetary_value``,
        ``time_since_last`` and the value column.
    labels : array_like
        Segment of each row of ``features``.
    value : str, optional
        Name of the predicted-value column.
    reference : pandas.DataFrame, optional
        The population to rank against (default ``features`` itself), e.g. a random sample
        of it: ranking a million customers against a sample of 20 000 is much cheaper and
        moves the positions by well under 0.01.

    Returns
    -------
    pandas.DataFrame
        One row per segment (sorted), one column per axis that ``features`` allows (see
        :data:`AXES`), each in [0, 1].

    Examples
    --------
    >>> import pandas as pd
    >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 4.0, 6.0],
    ...                     "recency": [0.0, 3.0, 20.0, 30.0],
    ...                     "T": [30.0, 30.0, 31.0, 32.0],
    ...                     "monetary_value": [0.0, 10.0, 40.0, 50.0]})
    >>> naming_axes(rfm, [0, 0, 1, 1])
       recency  frequency  monetary  tenure
    0     0.25       0.25      0.25    0.25
    1     0.75       0.75      0.75    0.75
    """
    codes, segments = pd.factorize(np.asarray(labels), sort=True)
    sizes = np.bincount(codes, minlength=len(segments))
    population = _axis_columns(features if reference is None else reference, value)
    axes = {}
    for axis, column in _axis_columns(features, value).items():
        ranked = np.sort(population[axis])
        below = np.searchsorted(ranked, column, side="left")
        at_or_below = np.searchsorted(ranked, column, side="right")
        percentile = (below + at_or_below) / (2.0 * len(ranked))
        axes[axis] = np.bincount(codes, weights=percentile, minlength=len(segments)) / sizes
    return pd.DataFrame(axes, index=pd.Index(segments))


def name_segments(
    axes: pd.DataFrame,
    vocabulary: Sequence[SegmentName] = DEFAULT_VOCABULARY,
    *,
    fixed: Mapping[Any, str] | None = None,
) -> pd.Series:
    """A distinct name per segment: the best one-to-one match of segments to vocabulary names.

    Each axis is stretched over the segments (lowest 0, highest 1). The cost of naming a segment
    ``s`` with entry ``e`` is the weighted mean, over the axes present both in ``axes`` and in
    ``e.profile``, of the squared difference between the segment's stretched position and
    ``e``'s ideal, each axis weighted by its range before stretching (relative to the widest);
    the total cost is minimised with the Hungarian algorithm
    (:func:`scipy.optimize.linear_sum_assignment`). With more segments than names, names are
    reused with a suffix (``"Loyal (2)"``). Without any usable axis the segments are called
    ``"Segment 1"``, ``"Segment 2"``, ... in the order of ``axes``.

    Parameters
    ----------
    axes : pandas.DataFrame
        Output of :func:`naming_axes`: one row per segment.
    vocabulary : sequence of SegmentName, default DEFAULT_VOCABULARY
        Candidate names, with ideal positions.
    fixed : mapping, optional
        Segments whose name is already decided (segment -> name), e.g. kept from the previous
        period; the other segments get the remaining names.

    Returns
    -------
    pandas.Series
        Name per segment, indexed like ``axes``.

    Raises
    ------
    DataValidationError
        An empty vocabulary, repeated vocabulary names, or ideals outside [0, 1].

    Examples
    --------
    >>> import pandas as pd
    >>> axes = pd.DataFrame({"recency": [0.9, 0.2, 0.1], "frequency": [0.9, 0.8, 0.2],
    ...                      "monetary": [0.8, 0.8, 0.2]})
    >>> name_segments(axes).tolist()
    ['Champions', "Can't lose them", 'Lost']
    >>> name_segments(axes, fixed={0: "Loyal"}).tolist()
    ['Loyal', "Can't lose them", 'Lost']
    """
    _check_vocabulary(vocabulary)
    fixed = dict(fixed or {})
    names = pd.Series([fixed.get(s) for s in axes.index], index=axes.index, dtype=object)
    free = [s for s in axes.index if s not in fixed]
    if not free:
        return names
    usable = [axis for axis in AXES if axis in axes.columns]
    if not usable:
        taken = set(fixed.values())
        generic = (f"Segment {i}" for i in range(1, len(axes) + len(taken) + 1))
        names.loc[free] = [n for n in generic if n not in taken][: len(free)]
        return names
    taken = set(fixed.values())
    entries = [e for e in vocabulary if any(axis in e.profile for axis in usable)]
    if not entries:
        raise DataValidationError(
            f"No vocabulary entry has an ideal on the naming axes available ({usable}); give "
            "the entries ideals on these axes."
        )
    ideal = np.array([[e.profile.get(axis, np.nan) for axis in usable] for e in entries])
    low, high = axes[usable].min().to_numpy(), axes[usable].max().to_numpy()
    spread = high - low
    weight = spread / spread.max() if spread.max() > 0 else np.ones_like(spread)
    stretched = (axes.loc[free, usable].to_numpy(dtype=np.float64) - low) / np.where(
        spread > 0, spread, 1.0
    )
    known = ~np.isnan(ideal)
    squared = np.where(known, (stretched[:, None, :] - np.nan_to_num(ideal)) ** 2, 0.0)
    total = (known * weight).sum(axis=1)
    cost = (squared * weight).sum(axis=2) / np.where(total > 0, total, 1.0)
    # Candidates: unused names first, then suffixed copies ("Loyal (2)") that cost more than
    # any first use, so names repeat only when segments outnumber them.
    candidates: list[str] = []
    columns: list[FloatArray] = []
    copy = 1
    while len(candidates) < len(free):
        for j, entry in enumerate(entries):
            label = entry.name if copy == 1 else f"{entry.name} ({copy})"
            if label not in taken:
                candidates.append(label)
                columns.append(cost[:, j] + (copy - 1) * (1.0 + cost.max()))
        copy += 1
    rows, cols = linear_sum_assignment(np.column_stack(columns))
    labels = [candidates[c] for c in cols]
    names.loc[[free[r] for r in rows]] = labels
    return names


def actions_for(names: pd.Series, vocabulary: Sequence[SegmentName]) -> pd.Series:
    """The recommended action of each name (suffixes such as ``" (2)"`` ignored; "" if unknown)."""
    actions = {entry.name: entry.action for entry in vocabulary}
    base = names.astype(str).str.replace(r" \(\d+\)$", "", regex=True)
    return base.map(actions).fillna("").rename("action")


def _check_vocabulary(vocabulary: Sequence[SegmentName]) -> None:
    if len(vocabulary) == 0:
        raise DataValidationError("The naming vocabulary is empty; pass at least one name.")
    names = [entry.name for entry in vocabulary]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataValidationError(f"The naming vocabulary repeats names {repeated}.")
    bad = [
        entry.name
        for entry in vocabulary
        if any(axis not in AXES or not 0.0 <= ideal <= 1.0 for axis, ideal in entry.profile.items())
    ]
    if bad:
        raise DataValidationError(
            f"Vocabulary entries {bad} have ideals on unknown axes or outside [0, 1]; axes are "
            f"{list(AXES)} and ideals percentiles in [0, 1]."
        )
