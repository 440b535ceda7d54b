"""VIP tiers: customers ranked by predicted value, with hysteresis across periods.

A tier holds the top share of customers by a value column (predicted CLV, or anything where
higher is better). Thresholds are cumulative: with ``thresholds=(0.05, 0.10)`` and
``names=("VIP", "Gold")`` the top 5% are VIP, the next 5% Gold and everyone else Standard.
The top ``q`` share is the first ``ceil(q * n)`` customers in the ranking by decreasing value,
ties broken by increasing customer id, so tiers never depend on row order.

Re-ranked every period, customers near a boundary flap in and out of a tier. With hysteresis a
customer *enters* a tier at its threshold but *leaves* it only when they fall below a lower bar,
its exit threshold (by default 1.5 times the entry threshold: enter VIP in the top 5%, stay VIP
while in the top 7.5%). Tiers can then hold a little more than their share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from vipml.errors import DataValidationError

__all__ = [
    "DEFAULT_EXIT_FACTOR",
    "count_tier_flips",
    "rank_positions",
    "tier_history",
    "tier_transitions",
    "top_count",
    "vip_tiers",
]

#: Default exit threshold of a tier, as a multiple of its entry threshold (capped at 1).
DEFAULT_EXIT_FACTOR = 1.5
_N_SHOWN = 5


def top_count(share: float, n: int) -> int:
    """Number of customers in the top ``share`` of ``n``: ``ceil(share * n)``.

    The product is rounded to 9 decimals first, so float noise (0.05 * 100 = 5.000000000000001)
    does not add a customer.

    Examples
    --------
    >>> top_count(0.05, 100), top_count(0.05, 101), top_count(1.0, 7)
    (5, 6, 7)
    """
    return math.ceil(round(share * n, 9))


def _value_series(value: Any, name: str = "value") -> pd.Series:
    if isinstance(value, pd.DataFrame) and value.shape[1] == 1:
        value = value.iloc[:, 0]
    if not isinstance(value, pd.Series):
        raise DataValidationError(
            f"{name} must be a pandas Series indexed by customer id, got {type(value).__name__}."
        )
    if not value.index.is_unique:
        repeated = value.index[value.index.duplicated()].unique()
        raise DataValidationError(
            f"{name} has {len(repeated)} repeated customer id(s), e.g. "
            f"{list(repeated[:_N_SHOWN])}; pass one value per customer."
        )
    if not pd.api.types.is_numeric_dtype(value):
        raise DataValidationError(f"{name} must be numeric, got dtype {value.dtype}.")
    bad = ~np.isfinite(value.to_numpy(dtype=np.float64))
    if bad.any():
        raise DataValidationError(
            f"{name} has {int(bad.sum())} missing or infinite value(s), customers "
            f"{list(value.index[bad][:_N_SHOWN])}. Fill or drop them before ranking."
        )
    return value


def rank_positions(value: pd.Series) -> npt.NDArray[np.int64]:
    """0-based position of each customer in the ranking by decreasing value, ties by id.

    Parameters
    ----------
    value : pandas.Series
        Value per customer (index: customer ids, unique and sortable).

    Returns
    -------
    numpy.ndarray
        ``positions[i]`` is the rank of ``value.iloc[i]`` (0 = highest).

    Examples
    --------
    >>> import pandas as pd
    >>> rank_positions(pd.Series([5.0, 9.0, 5.0], index=["c", "a", "b"])).tolist()
    [2, 0, 1]
    """
    values = _value_series(value).to_numpy(dtype=np.float64)
    id_rank = np.argsort(np.argsort(value.index.to_numpy(), kind="stable"), kind="stable")
    order = np.lexsort((id_rank, -values))
    positions = np.empty(len(values), dtype=np.int64)
    positions[order] = np.arange(len(values))
    return positions


def _check_tiers(
    thresholds: Sequence[float],
    names: Sequence[str],
    rest: str,
    exit_thresholds: Sequence[float] | None,
) -> tuple[list[float], list[float]]:
    entry = [float(q) for q in thresholds]
    if not entry or len(entry) != len(names):
        raise ValueError(
            f"thresholds {tuple(thresholds)} and names {tuple(names)} must be non-empty and of "
            "the same length: one cumulative share per tier."
        )
    if not all(0.0 < q <= 1.0 for q in entry) or any(
        b <= a for a, b in zip(entry, entry[1:], strict=False)
    ):
        raise ValueError(
            f"thresholds must be strictly increasing cumulative shares in (0, 1], got "
            f"{tuple(thresholds)}, e.g. (0.05, 0.10) for the top 5% and the next 5%."
        )
    labels = [*names, rest]
    if len(set(labels)) != len(labels):
        raise ValueError(f"Tier names must differ from each other and from rest: {labels}.")
    if exit_thresholds is None:
        leave = [min(1.0, DEFAULT_EXIT_FACTOR * q) for q in entry]
    else:
        leave = [float(q) for q in exit_thresholds]
        if len(leave) != len(entry) or any(
            not e <= x <= 1.0 for e, x in zip(entry, leave, strict=True)
        ):
            raise ValueError(
                f"exit_thresholds {tuple(exit_thresholds)} must give one share per tier, each "
                f"at least its entry threshold {tuple(entry)} and at most 1."
            )
    return entry, leave


def vip_tiers(
    value: pd.Series,
    thresholds: Sequence[float] = (0.05, 0.10),
    names: Sequence[str] = ("VIP", "Gold"),
    *,
    rest: str = "Standard",
    previous: pd.Series | None = None,
    exit_thresholds: Sequence[float] | None = None,
) -> pd.Series:
    """Rank customers by value into named tiers, with hysteresis when last period's are given.

    Parameters
    ----------
    value : pandas.Series
        Predicted value per customer (e.g. CLV), indexed by customer id; higher is better.
    thresholds : sequence of float, default (0.05, 0.10)
        Cumulative shares of customers, strictly increasing in (0, 1]: tier ``j`` holds ranks
        ``[top_count(thresholds[j-1]), top_count(thresholds[j]))``.
    names : sequence of str, default ("VIP", "Gold")
        Tier names, best first.
    rest : str, default "Standard"
        Name of everyone below the last threshold.
    previous : pandas.Series, optional
        Last period's tiers (names) per customer. A customer whose previous tier is ``t`` keeps
        ``t`` while ranked within ``t``'s exit threshold (hysteresis); otherwise, or without
        ``previous``, tiers follow the entry thresholds alone. Customers of ``previous`` absent
        from ``value`` are ignored; new customers get their entry tier.
    exit_thresholds : sequence of float, optional
        Cumulative share below which a customer leaves each tier; each at least its entry
        threshold. Default: ``DEFAULT_EXIT_FACTOR`` (1.5) times the entry thresholds, at most 1.

    Returns
    -------
    pandas.Series
        Ordered categorical ``tier`` (``names`` then ``rest``, best first), indexed like
        ``value``.

    Raises
    ------
    DataValidationError
        ``value`` not a numeric Series with unique ids and finite values; ``previous`` with
        tier names that are not among ``names`` and ``rest``.
    ValueError
        Inconsistent thresholds, names or exit thresholds.

    Examples
    --------
    >>> import pandas as pd
    >>> value = pd.Series([50.0, 40.0, 30.0, 20.0, 10.0, 5.0, 4.0, 3.0, 2.0, 1.0],
    ...                   index=pd.Index(list("abcdefghij"), name="customer_id"))
    >>> vip_tiers(value, thresholds=(0.1, 0.3), names=("VIP", "Gold")).tolist()
    ['VIP', 'Gold', 'Gold', 'Standard', 'Standard', 'Standard', 'Standard', 'Standard', 'Standard', 'Standard']

    Next period ``b`` rises to first place, ``a`` slips to second and ``c`` to fourth. Without
    hysteresis ``a`` would drop to Gold and ``c`` to Standard; with it (exit at 1.5 times the
    entry shares: top 15% and 45%) both keep their tier.

    >>> later = pd.Series([40.0, 50.0, 30.0, 35.0, 10.0, 5.0, 4.0, 3.0, 2.0, 1.0],
    ...                   index=value.index)
    >>> vip_tiers(later, (0.1, 0.3)).head(4).tolist()
    ['Gold', 'VIP', 'Standard', 'Gold']
    >>> previous = vip_tiers(value, (0.1, 0.3))
    >>> vip_tiers(later, (0.1, 0.3), previous=previous).head(4).tolist()
    ['VIP', 'VIP', 'Gold', 'Gold']
    """
    entry, leave = _check_tiers(thresholds, names, rest, exit_thresholds)
    value = _value_series(value)
    n = len(value)
    positions = rank_positions(value)
    n_tiers = len(entry)
    entry_counts = np.array([top_count(q, n) for q in entry])
    tier = np.searchsorted(entry_counts, positions, side="right")
    if previous is not None:
        labels = [*names, rest]
        prev = pd.Series(previous).reindex(value.index)
        known = prev.isna() | prev.isin(labels)
        if not known.all():
            odd = sorted({str(v) for v in prev[~known]})
            raise DataValidationError(
                f"previous has tier names {odd[:_N_SHOWN]} that are not among {labels}."
            )
        codes = prev.map({label: i for i, label in enumerate(labels)})
        prev_tier = codes.fillna(n_tiers).to_numpy(dtype=np.int64)
        exit_counts = np.append([top_count(q, n) for q in leave], n + 1)
        keeps = positions < exit_counts[prev_tier]
        tier = np.where(keeps, np.minimum(tier, prev_tier), tier)
    categories = [*names, rest]
    return pd.Series(
        pd.Categorical.from_codes(tier, categories=categories, ordered=True),
        index=value.index,
        name="tier",
    )


def tier_history(
    values: Mapping[Any, pd.Series],
    thresholds: Sequence[float] = (0.05, 0.10),
    names: Sequence[str] = ("VIP", "Gold"),
    *,
    rest: str = "Standard",
    exit_thresholds: Sequence[float] | None = None,
    hysteresis: bool = True,
) -> pd.DataFrame:
    """Tiers period after period, each period's tiers feeding the next one's hysteresis.

    Parameters
    ----------
    values : mapping of period to pandas.Series
        Value per customer at each period, in chronological order.
    thresholds, names, rest, exit_thresholds
        As in :func:`vip_tiers`.
    hysteresis : bool, default True
        Pass each period's tiers as ``previous`` to the next; False ranks each period alone.

    Returns
    -------
    pandas.DataFrame
        One column per period, one row per customer seen in any period (sorted by id), each
        an ordered categorical of tier names (missing where the customer has no value that
        period).

    Examples
    --------
    >>> import pandas as pd
    >>> ids = pd.Index(list("abcd"), name="customer_id")
    >>> values = {"Q1": pd.Series([4.0, 3.0, 2.0, 1.0], index=ids),
    ...           "Q2": pd.Series([3.0, 4.0, 2.0, 1.0], index=ids)}
    >>> tier_history(values, thresholds=(0.25,), names=("VIP",))
                       Q1        Q2
    customer_id
    a                 VIP       VIP
    b            Standard       VIP
    c            Standard  Standard
    d            Standard  Standard
    """
    columns: dict[Any, pd.Series] = {}
    previous: pd.Series | None = None
    for period, value in values.items():
        tiers = vip_tiers(
            value,
            thresholds,
            names,
            rest=rest,
            previous=previous if hysteresis else None,
            exit_thresholds=exit_thresholds,
        )
        columns[period] = tiers
        previous = tiers
    history = pd.DataFrame(columns)
    return history.sort_index()


def tier_transitions(previous: pd.Series, current: pd.Series) -> pd.DataFrame:
    """Per tier, how many customers stayed, entered and left between two periods.

    Parameters
    ----------
    previous, current : pandas.Series
        Tier per customer in the earlier and the later period (e.g. :func:`vip_tiers`).

    Returns
    -------
    pandas.DataFrame
        Indexed by tier (categories' order when ``current`` is categorical): ``stayed`` (in the
        tier both times), ``entered`` (in it now, not before; new customers included),
        ``entered_new`` (of those, customers absent before), ``left`` (in it before, not now;
        customers absent now included).

    Examples
    --------
    >>> import pandas as pd
    >>> before = pd.Series(["VIP", "Gold", "Standard"], index=["a", "b", "c"])
    >>> after = pd.Series(["Gold", "VIP", "Standard", "Standard"], index=["a", "b", "c", "d"])
    >>> tier_transitions(before, after)
              stayed  entered  entered_new  left
    tier
    VIP            0        1            0     1
    Gold           0        1            0     1
    Standard       1        1            1     0
    """
    customers = previous.index.union(current.index)
    before = previous.astype(object).reindex(customers)
    after = current.astype(object).reindex(customers)
    if isinstance(current.dtype, pd.CategoricalDtype):
        tiers = list(current.cat.categories)
    elif isinstance(previous.dtype, pd.CategoricalDtype):
        tiers = list(previous.cat.categories)
    else:
        tiers = list(dict.fromkeys([*before.dropna().unique(), *after.dropna().unique()]))
    rows = {}
    for tier in tiers:
        was, now = (before == tier).to_numpy(), (after == tier).to_numpy()
        rows[tier] = {
            "stayed": int((was & now).sum()),
            "entered": int((now & ~was).sum()),
            "entered_new": int((now & before.isna().to_numpy()).sum()),
            "left": int((was & ~now).sum()),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("tier")


def count_tier_flips(history: pd.DataFrame) -> pd.Series:
    """Customers whose tier changed, between each pair of consecutive periods.

    Only customers present in both periods count.

    Parameters
    ----------
    history : pandas.DataFrame
        Output of :func:`tier_history` (one column per period).

    Returns
    -------
    pandas.Series
        Number of flips per transition, indexed ``"<earlier> -> <later>"``; ``.sum()`` is the
        total.

    Examples
    --------
    >>> import pandas as pd
    >>> history = pd.DataFrame({"Q1": ["VIP", "Gold", None], "Q2": ["Gold", "Gold", "VIP"],
    ...                         "Q3": ["VIP", "Gold", "VIP"]})
    >>> count_tier_flips(history)
    Q1 -> Q2    1
    Q2 -> Q3    1
    Name: flips, dtype: int64
    """
    periods = list(history.columns)
    flips = {}
    for earlier, later in zip(periods, periods[1:], strict=False):
        both = history[earlier].notna() & history[later].notna()
        changed = both & (history[earlier].astype(object) != history[later].astype(object))
        flips[f"{earlier} -> {later}"] = int(changed.sum())
    return pd.Series(flips, name="flips", dtype=np.int64)
