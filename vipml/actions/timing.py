"""When to contact a customer: from their own purchase rhythm, not the calendar of a campaign.

A customer who buys every three weeks and bought five days ago does not need a retention
message today: the right moment is when their next purchase is due and has not come. Their
rhythm is the median gap between their purchase days (``gap_median_days`` of
:func:`~vipml.features.purchase_cycle_features`, carried in the pipeline's scores with
``days_since_last_purchase`` and ``overdue_ratio``). The contact is due
``gap_median_days × overdue_factor − days_since_last_purchase`` days after the scoring date
(never before it): "contact after day X if no purchase by then". A customer already past that
point (overdue) is contacted at once. One-time buyers have no gap of their own: they take the
median gap of the customers of their segment (or of everyone when their segment has none).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from vipml.data.validate import as_timestamp
from vipml.errors import DataValidationError

__all__ = ["RHYTHM_COLUMNS", "TIMING_COLUMNS", "contact_timing"]

#: Columns of the scores the timing reads.
RHYTHM_COLUMNS: tuple[str, ...] = ("days_since_last_purchase", "gap_median_days")
#: Columns of :func:`contact_timing`.
TIMING_COLUMNS: tuple[str, ...] = ("contact_after_days", "contact_date", "timing")


def _text(fmt: str, values: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """``fmt % value`` for every value (a vectorised printf; also used by next_best)."""
    return np.char.mod(fmt, np.asarray(values, dtype=np.float64))


def _join(*parts: Any) -> npt.NDArray[np.str_]:
    out = np.asarray(parts[0], dtype=np.str_)
    for part in parts[1:]:
        out = np.char.add(out, np.asarray(part, dtype=np.str_))
    return out


def contact_timing(
    scores: pd.DataFrame,
    *,
    at: Any = None,
    overdue_factor: float = 1.0,
    now: npt.ArrayLike | None = None,
) -> pd.DataFrame:
    """The day to contact each customer if they have not bought by then.

    Parameters
    ----------
    scores : pandas.DataFrame
        Indexed by customer id, with ``days_since_last_purchase`` and ``gap_median_days``
        (:meth:`vipml.VipPipeline.score` has them) and optionally ``segment`` (for the rhythm
        of one-time buyers).
    at : str, date or datetime, optional
        The scoring date; gives ``contact_date``. Without it the dates are missing (NaT) and
        only ``contact_after_days`` counts.
    overdue_factor : float, default 1.0
        How late, in gaps, a purchase must be before the contact (1.5: half a gap late).
    now : array_like of bool, optional
        Customers to contact at once whatever their rhythm (e.g. those of a win-back action).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``scores``: ``contact_after_days`` (float, days after ``at``; 0 for
        now), ``contact_date`` (``at`` + those days, at day resolution) and ``timing`` (the
        rule in words).

    Raises
    ------
    DataValidationError
        The rhythm columns are missing, ``overdue_factor`` is not positive or ``at`` is
        not a date.

    Examples
    --------
    >>> scores = pd.DataFrame({"days_since_last_purchase": [5.0, 40.0, 10.0],
    ...                        "gap_median_days": [21.0, 20.0, np.nan]},
    ...                       index=pd.Index(["a", "b", "c"], name="customer_id"))
    >>> timing = contact_timing(scores, at="2025-06-30")
    >>> timing["contact_after_days"].tolist()
    [16.0, 0.0, 11.0]
    >>> timing.loc["a", "timing"]
    'contact on 2025-07-16 if no purchase by then (buys every 21 days, last 5 days ago)'
    >>> timing.loc["b", "timing"]
    'contact now: 40 days since the last purchase, 2.0× their usual 20-day gap'
    """
    missing = [c for c in RHYTHM_COLUMNS if c not in scores.columns]
    if missing:
        raise DataValidationError(
            f"scores lack the purchase-rhythm column(s) {missing}: score with a vipml "
            "pipeline of this version (VipPipeline.score adds them) or join "
            "purchase_cycle_features(transactions, at)[['days_since_last_purchase', "
            "'gap_median_days']] to the scores."
        )
    factor = float(overdue_factor)
    if not np.isfinite(factor) or factor <= 0:
        raise DataValidationError(f"overdue_factor must be positive, got {overdue_factor!r}.")
    since = scores["days_since_last_purchase"].to_numpy(dtype=np.float64, na_value=np.nan)
    own = scores["gap_median_days"].to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isnan(since).any():
        bad = scores.index[np.isnan(since)]
        raise DataValidationError(
            f"days_since_last_purchase is missing for {len(bad)} customer(s), e.g. "
            f"{list(bad[:3])}: every scored customer has a last purchase."
        )
    gap = own.copy()
    borrowed = np.isnan(gap)
    if borrowed.any():
        overall = np.nanmedian(own) if (~borrowed).any() else np.nan
        if "segment" in scores.columns:
            medians = (
                pd.Series(own, index=scores.index)
                .groupby(scores["segment"].astype(str).to_numpy())
                .median()
            )
            peer = medians.reindex(scores["segment"].astype(str).to_numpy()).to_numpy()
            gap[borrowed] = peer[borrowed]
        gap[np.isnan(gap)] = overall
    due = gap * factor - since
    immediate = ~(due > 0)  # overdue, or no rhythm known anywhere (NaN)
    if now is not None:
        immediate |= np.asarray(now, dtype=bool)
    days = np.where(immediate, 0.0, np.ceil(np.where(immediate, 0.0, due)))
    if at is None:
        dates = pd.Series(pd.NaT, index=scores.index, dtype="datetime64[ns]")
        when = np.full(len(scores), "after day ", dtype=object)
        when = _join(when, _text("%.0f", days))
    else:
        stamp = as_timestamp(at, "at").normalize()
        dates = pd.Series(stamp + pd.to_timedelta(days, unit="D"), index=scores.index)
        when = _join("on ", np.asarray(dates.dt.strftime("%Y-%m-%d").to_numpy(), dtype=str))
    kind = np.where(np.isnan(own), "like their segment, every ~", "buys every ")
    scheduled = _join(
        "contact ",
        when,
        " if no purchase by then (",
        kind,
        _text("%.0f", gap),
        " days, last ",
        _text("%.0f", since),
        " days ago)",
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = since / gap
    overdue = _join(
        "contact now: ",
        _text("%.0f", since),
        " days since the last purchase, ",
        _text("%.1f", ratio),
        "× their usual ",
        _text("%.0f", gap),
        "-day gap",
    )
    text = np.where(
        np.isnan(gap),
        "contact now: no purchase rhythm known",
        np.where(immediate & (due <= 0), overdue, np.where(immediate, "contact now", scheduled)),
    )
    return pd.DataFrame(
        {"contact_after_days": days, "contact_date": dates, "timing": text.astype(object)},
        index=scores.index,
    )
