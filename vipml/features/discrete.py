"""Summary of purchases at discrete transaction opportunities, for the BG/BB model."""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

import narwhals.stable.v2 as nw

from vipml.data.columns import Columns
from vipml.data.validate import ReturnsPolicy, prepare_transactions, to_native_result
from vipml.errors import DataWarning
from vipml.features._periods import canonical_freq, cutoff_instant, period_of
from vipml.features.rfm import check_cutoff_after_first, purchase_periods, summarise_periods

__all__ = ["discrete_summary"]


def discrete_summary(
    transactions: Any,
    cutoff: Any,
    *,
    period: str = "Y",
    columns: Columns | None = None,
    returns: ReturnsPolicy = "net",
    check_duplicates: bool = True,
) -> Any:
    """Per-customer frequency, recency and number of opportunities, counted in whole periods.

    Each ``period`` (a year, a quarter, a month, a week, ...) is one transaction opportunity:
    a customer either buys in it or not. The period of a customer's first purchase is
    opportunity 0 and is not counted; ``n_periods`` is the number of opportunities from the
    next period to the one holding the cutoff, ``frequency`` the number of them with a
    purchase and ``recency`` the opportunity of the last one (0 without repeat purchases).
    These are the ``x``, ``t_x`` and ``n`` of Fader, Hardie & Shang (2010), the input of
    :class:`vipml.ltv.BetaGeoBetaBinom`; ``monetary_value`` is the mean net spend of the
    repeat periods, as in :func:`~vipml.features.rfm_summary` (whose definitions these are,
    with ``freq = time_unit = period``).

    Parameters
    ----------
    transactions : DataFrame-like
        Transaction log (pandas, polars, pyarrow, DuckDB relation, Spark, ...).
    cutoff : str, date or datetime
        Only rows at or before the cutoff are used. Choose the last day of a period (e.g.
        ``"2001-12-31"`` with yearly opportunities): if the cutoff falls inside a period, that
        period counts as an opportunity although it is only partly observed, and a
        :class:`~vipml.errors.DataWarning` says so.
    period : str, default "Y"
        Length of an opportunity, spelled as pandas spells periods: ``"Y"``/``"YE"`` (calendar
        years), ``"Q"``/``"QE"``, ``"M"``/``"ME"``, ``"W"`` (Monday-Sunday weeks), ``"D"``,
        ``"h"``.
    columns : Columns, optional
        Names of the caller's columns.
    returns : {"net", "exclude", "error"}, default "net"
        Policy for negative amounts; see :func:`vipml.data.validate.prepare_transactions`.
    check_duplicates : bool, default True
        Warn about exact duplicate rows (one extra pass over the log).

    Returns
    -------
    DataFrame
        One row per customer with a purchase at or before the cutoff: ``frequency``,
        ``recency``, ``n_periods`` and ``monetary_value`` (floats; the first three whole
        numbers). pandas input gives a pandas frame indexed by ``customer_id``; other inputs
        their own frame type with a ``customer_id`` column.

    Raises
    ------
    DataValidationError
        Bad input (see the data contract), an unknown ``period``, or a cutoff before every
        transaction.

    Warns
    -----
    DataWarning
        When the cutoff is not the last instant of its period.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. & Shang, J. (2010). "Customer-Base Analysis in a
    Discrete-Time Noncontractual Setting". Marketing Science 29(6), section 2.

    Examples
    --------
    >>> import pandas as pd
    >>> tx = pd.DataFrame({
    ...     "customer_id": ["a", "a", "a", "a", "b"],
    ...     "timestamp": pd.to_datetime(
    ...         ["2019-03-01", "2019-11-20", "2021-05-05", "2022-01-10", "2021-07-01"]),
    ...     "amount": [50.0, 20.0, 40.0, 60.0, 25.0],
    ... })
    >>> discrete_summary(tx, cutoff="2023-12-31", period="Y")
                 frequency  recency  n_periods  monetary_value
    customer_id
    a                  2.0      3.0        4.0            50.0
    b                  0.0      0.0        2.0             0.0
    """
    freq = canonical_freq(period, "period")
    log = prepare_transactions(
        transactions, columns, returns=returns, check_duplicates=check_duplicates
    )
    cutoff_end = cutoff_instant(cutoff, tz_aware=log.tz_aware, freq=freq)
    check_cutoff_after_first(log, cutoff_end, "cutoff")
    last_period = period_of(cutoff_end, freq)
    if period_of(cutoff_end + dt.timedelta(microseconds=1), freq) == last_period:
        warnings.warn(
            f"cutoff={cutoff!r} falls inside a {period!r} period: that last opportunity is "
            "only partly observed, yet counts as one in n_periods, so customers look less "
            "active in it than they are. Use the last day of a period as the cutoff.",
            DataWarning,
            stacklevel=2,
        )
    periods = purchase_periods(log, cutoff_end, freq, returns)
    summary = summarise_periods(periods, last_period, 1.0).select(
        "customer_id",
        "frequency",
        "recency",
        nw.col("T").alias("n_periods"),
        "monetary_value",
    )
    return to_native_result(summary, log.kind)
