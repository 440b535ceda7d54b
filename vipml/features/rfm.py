"""RFM summary (the ``lifetimes`` definitions), calibration/holdout splits, scores and segments."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import narwhals.stable.v2 as nw
import numpy as np
import pandas as pd

from vipml.data.columns import Columns
from vipml.data.validate import (
    PreparedLog,
    ReturnsPolicy,
    prepare_transactions,
    to_native_result,
)
from vipml.errors import DataValidationError
from vipml.features._periods import (
    Freq,
    calendar_arithmetic,
    canonical_freq,
    cutoff_instant,
    period_number,
    period_of,
    time_scale,
)

__all__ = [
    "DEFAULT_SEGMENT_RULES",
    "MICRO",
    "SegmentRule",
    "micro_units",
    "micro_value",
    "purchase_periods",
    "rfm_scores",
    "rfm_segments",
    "rfm_summary",
]


#: Money and event values are summed in integer millionths of their unit ("micro-units").
MICRO = 1_000_000


def micro_units(column: str) -> Any:
    """Expression: a float column as an integer number of millionths (Int64).

    Values are rounded to the nearest millionth, halves away from zero (so ``x`` and ``-x``
    always cancel), with the same arithmetic on every backend (``round`` itself rounds halves
    differently on polars and DuckDB). Sums of micro-units are exact integer sums: they do not
    depend on the order in which a multi-threaded engine adds the rows, so features are the
    same bit for bit from run to run. The resolution is 1e-6 of the unit (of a currency unit
    for amounts); a magnitude must stay below 9.2e12 units for the Int64 to hold it.
    """
    scaled = nw.col(column) * MICRO
    return (
        nw.when(scaled < 0)
        .then(-((-scaled + 0.5).floor()))
        .otherwise((scaled + 0.5).floor())
        .cast(nw.Int64)
    )


def micro_sum(expression: Any) -> Any:
    """Aggregation: the exact Int64 sum of an Int64 micro-unit expression (0 when empty)."""
    return expression.sum().cast(nw.Int64)


def micro_value(total: Any, count: Any = None) -> Any:
    """Expression: a float from an exact micro-unit sum, divided by a count when given.

    One float division of two exactly represented integers (below 2**53, i.e. sums below
    9.0e9 units and counts below 9.0e9), so the result is the correctly rounded quotient,
    identical on every backend and in every run. ``total`` and ``count`` are column names or
    expressions; with a count of 0 the result is null.
    """
    total = nw.col(total) if isinstance(total, str) else total
    if count is None:
        # Divide by an expression, not a scalar: polars turns ``x / scalar`` into ``x * (1 /
        # scalar)``, which is not correctly rounded (21_620_000 / 1e6 -> 21.619999999999997)
        # and differs between one row and many.
        exact = total.cast(nw.Float64)
        return exact / (exact * 0.0 + float(MICRO))
    count = nw.col(count) if isinstance(count, str) else count
    return nw.when(count > 0).then(total.cast(nw.Float64) / (count.cast(nw.Float64) * float(MICRO)))


def purchase_periods(
    log: PreparedLog, cutoff_end: dt.datetime, freq: Freq, returns: ReturnsPolicy
) -> Any:
    """Lazy frame of purchase periods: one row per customer and period with its net spend.

    Rows after ``cutoff_end`` are dropped first. Under ``returns="net"`` a return carrying an
    order id is netted into that order, which keeps the timestamp of its first purchase row;
    other returns are netted into the period they fall in. A period counts as a purchase when
    it holds a row with a non-negative amount (an order counts when its net amount is
    non-negative; zero-value purchases count, as in ``lifetimes``). Under
    ``returns="exclude"`` negative rows are dropped.

    Amounts are converted once to integer micro-units (1e-6 of the currency unit, see
    :func:`micro_units`) and every sum is an exact integer sum, so the spend does not depend
    on the order in which the engine adds rows: the result is the same bit for bit in every
    run. Columns: ``customer_id``, ``period`` and ``spend_micros`` (Int64 net spend in
    micro-units; divide by :data:`MICRO` for currency units).
    """
    rows = log.frame.filter(nw.col("timestamp") <= nw.lit(cutoff_end))
    if returns == "exclude":
        rows = rows.filter(nw.col("amount") >= 0)
    rows = rows.with_columns(micros=micro_units("amount"), purchase=nw.col("amount") >= 0)
    if returns != "exclude" and "order_id" in log.columns:
        rows = _net_into_orders(rows)
    return (
        rows.with_columns(period=period_number(freq, calendar=calendar_arithmetic(rows)))
        .group_by("customer_id", "period")
        .agg(micro_sum(nw.col("micros")).alias("spend_micros"), nw.col("purchase").any())
        .filter(nw.col("purchase"))
        .select("customer_id", "period", "spend_micros")
    )


def _net_into_orders(rows: Any) -> Any:
    with_order = rows.filter(~nw.col("order_id").is_null())
    orders = with_order.group_by("customer_id", "order_id").agg(
        nw.when(nw.col("purchase")).then(nw.col("timestamp")).min().alias("purchased_at"),
        nw.col("timestamp").min().alias("first_seen"),
        micro_sum(nw.col("micros")).alias("micros"),
    )
    netted = orders.select(
        "customer_id",
        nw.coalesce("purchased_at", "first_seen").alias("timestamp"),
        "micros",
        # An order whose rows are all returns stays a return, whatever its net amount.
        (~nw.col("purchased_at").is_null() & (nw.col("micros") >= 0)).alias("purchase"),
    )
    loose = rows.filter(nw.col("order_id").is_null()).select(
        "customer_id", "timestamp", "micros", "purchase"
    )
    return nw.concat([netted, loose], how="vertical")


def summarise_periods(periods: Any, cutoff_period: int, scale: float) -> Any:
    """Lazy RFM summary of :func:`purchase_periods` (monetary value from exact integer sums)."""
    first = nw.col("period").min().over("customer_id")
    repeat_spend = nw.when(nw.col("period") > first).then(nw.col("spend_micros")).otherwise(0)
    return (
        periods.with_columns(repeat_spend=repeat_spend)
        .group_by("customer_id")
        .agg(
            nw.col("period").min().alias("first"),
            nw.col("period").max().alias("last"),
            nw.len().cast(nw.Int64).alias("n_periods"),
            micro_sum(nw.col("repeat_spend")).alias("repeat_spend"),
        )
        .select(
            "customer_id",
            (nw.col("n_periods") - 1).cast(nw.Float64).alias("frequency"),
            ((nw.col("last") - nw.col("first")) * scale).cast(nw.Float64).alias("recency"),
            ((cutoff_period - nw.col("first")) * scale).cast(nw.Float64).alias("T"),
            micro_value("repeat_spend", nw.col("n_periods") - 1)
            .fill_null(0.0)
            .alias("monetary_value"),
        )
    )


def check_cutoff_after_first(log: PreparedLog, cutoff_end: dt.datetime, argument: str) -> None:
    first_seen = log.first_timestamp
    if cutoff_end < first_seen:
        raise DataValidationError(
            f"{argument}={cutoff_end.date()} is before every transaction (the first is at "
            f"{first_seen}). Choose a {argument} on or after the first transaction."
        )


def rfm_summary(
    transactions: Any,
    cutoff: Any,
    *,
    freq: str = "D",
    time_unit: str | None = None,
    columns: Columns | None = None,
    returns: ReturnsPolicy = "net",
    check_duplicates: bool = True,
) -> Any:
    """Per-customer frequency, recency, T and monetary value at a cutoff.

    The definitions are those of ``lifetimes.utils.summary_data_from_transaction_data``, so
    results compare one to one: purchases are counted once per ``freq`` period;
    ``frequency`` is the number of repeat purchase periods (periods with a purchase, less the
    first); ``recency`` is the time from the first to the last purchase period; ``T`` is the
    time from the first purchase period to the cutoff's period; ``monetary_value`` is the mean
    net spend of the repeat periods (0 for customers without repeat purchases).

    Spend is summed exactly in integer micro-units (1e-6 of the currency unit: amounts are
    rounded to that resolution first) and the mean is one division of that exact sum by the
    count, so the result is the same bit for bit in every run, on every backend, whatever the
    number of threads.

    Parameters
    ----------
    transactions : DataFrame-like
        Transaction log (pandas, polars, pyarrow, DuckDB relation, ...).
    cutoff : str, date or datetime
        Only rows at or before the cutoff are used. With daily or longer periods a date
        includes its whole day; with periods shorter than a day a date (or midnight) is the
        instant midnight, as in ``lifetimes`` (see
        :func:`~vipml.features._periods.cutoff_instant`).
    freq : str, default "D"
        Period in which purchases are counted, spelled as pandas spells periods today:
        ``"s"``, ``"min"``, ``"h"`` (or ``"H"``), ``"D"``, ``"W"`` (Monday-Sunday weeks),
        ``"M"``/``"ME"`` (calendar months), ``"Q"``/``"QE"``, ``"Y"``/``"YE"``.
    time_unit : str, optional
        Unit of ``recency`` and ``T`` (default: ``freq``), spelled like ``freq``. Seconds,
        minutes, hours, days and weeks convert into one another exactly (days / 7 = weeks, as
        in the papers); months, quarters and years only into one another.
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
        ``recency``, ``T``, ``monetary_value`` (floats). pandas input gives a pandas frame
        indexed by ``customer_id``; polars and pyarrow give their own frame with a
        ``customer_id`` column; lazy inputs (DuckDB, polars lazy) give a lazy frame.

    Raises
    ------
    DataValidationError
        Bad input (see the data contract), an unsupported ``freq``/``time_unit`` pair, or a
        cutoff before every transaction.

    References
    ----------
    Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way", Marketing Science 24(2),
    section 2: the summary statistics (x, t_x, T).

    Examples
    --------
    >>> import pandas as pd
    >>> tx = pd.DataFrame({
    ...     "customer_id": ["a", "a", "a", "b"],
    ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-08", "2024-01-15", "2024-01-10"]),
    ...     "amount": [10.0, 20.0, 40.0, 5.0],
    ... })
    >>> rfm_summary(tx, cutoff="2024-01-29", freq="D", time_unit="W")
                 frequency  recency         T  monetary_value
    customer_id
    a                  2.0      2.0  4.000000            30.0
    b                  0.0      0.0  2.714286             0.0
    """
    freq, time_unit = canonical_freq(freq), canonical_freq(time_unit or freq, "time_unit")
    log = prepare_transactions(
        transactions, columns, returns=returns, check_duplicates=check_duplicates
    )
    scale = time_scale(freq, time_unit)
    cutoff_end = cutoff_instant(cutoff, tz_aware=log.tz_aware, freq=freq)
    check_cutoff_after_first(log, cutoff_end, "cutoff")
    periods = purchase_periods(log, cutoff_end, freq, returns)
    summary = summarise_periods(periods, period_of(cutoff_end, freq), scale)
    return to_native_result(summary, log.kind)


@dataclass(frozen=True)
class SegmentRule:
    """One named RFM segment: inclusive score ranges for recency, frequency and monetary value.

    Rules are tried in order and the first that matches names the customer, so specific rules
    go before general ones.
    """

    name: str
    recency: tuple[int, int] = (1, 5)
    frequency: tuple[int, int] = (1, 5)
    monetary: tuple[int, int] = (1, 5)


#: The default map from R and F scores (1-5) to segment names, after the RFM grid marketing
#: teams use (e.g. Putler's 11 segments). F carries the "FM" axis: frequency and spend are
#: strongly correlated in practice. Override it with your own list of :class:`SegmentRule`.
DEFAULT_SEGMENT_RULES: tuple[SegmentRule, ...] = (
    SegmentRule("Champions", recency=(5, 5), frequency=(4, 5)),
    SegmentRule("Loyal", recency=(3, 5), frequency=(4, 5)),
    SegmentRule("Potential loyalists", recency=(4, 5), frequency=(2, 3)),
    SegmentRule("New", recency=(5, 5), frequency=(1, 1)),
    SegmentRule("Promising", recency=(4, 4), frequency=(1, 1)),
    SegmentRule("Need attention", recency=(3, 3), frequency=(3, 3)),
    SegmentRule("About to sleep", recency=(3, 3), frequency=(1, 2)),
    SegmentRule("Can't lose them", recency=(1, 2), frequency=(5, 5)),
    SegmentRule("At risk", recency=(1, 2), frequency=(3, 4)),
    SegmentRule("Lost", recency=(1, 1), frequency=(1, 1)),
    SegmentRule("Hibernating", recency=(1, 2), frequency=(1, 2)),
)


def _as_pandas_table(table: Any, name: str) -> tuple[pd.DataFrame, str]:
    if isinstance(table, pd.DataFrame):
        return table, "pandas"
    try:
        frame = nw.from_native(table)
    except TypeError as exc:
        raise DataValidationError(
            f"{name} must be a DataFrame, got {type(table).__name__}."
        ) from exc
    kind = "pyspark" if frame.implementation.is_pyspark() else "pyarrow"
    if isinstance(frame, nw.LazyFrame):
        # Scores are quantiles over all customers: the summary (one row per customer, never
        # the log) is scored in one place.
        frame = frame.collect()
    if frame.implementation.is_polars():
        kind = "polars"
    native = frame.to_pandas()
    if "customer_id" not in native.columns:
        raise DataValidationError(
            f"{name} needs a 'customer_id' column when it is not a pandas frame indexed by "
            "customer."
        )
    return native.set_index("customer_id"), kind


def _back_to_kind(result: pd.DataFrame, kind: str, source: Any) -> Any:
    if kind == "pandas":
        return result
    frame = nw.from_native(result.reset_index(), eager_only=True)
    if kind == "pyspark":
        return frame.lazy(backend="pyspark", session=source.sparkSession).to_native()
    if kind == "polars":
        return frame.lazy(backend="polars").collect().to_native()
    return frame.to_arrow()


def _quantile_score(values: pd.Series, bins: int, higher_is_better: bool) -> pd.Series:
    ranked = values if higher_is_better else -values
    pct = ranked.rank(method="min", pct=True)
    return np.ceil(pct * bins).clip(1, bins).astype("int64")


def rfm_scores(rfm: Any, *, bins: int = 5) -> Any:
    """Quantile scores 1..``bins`` for recency, frequency and monetary value.

    ``R`` rewards a recent last purchase (small ``T - recency``), ``F`` a high ``frequency`` and
    ``M`` a high ``monetary_value``. A score is ``ceil(bins * rank / n)`` with tied values given
    their lowest rank, so ties always share a score, the result does not depend on row order,
    and the many customers without a repeat purchase all get ``F = 1``.

    Parameters
    ----------
    rfm : DataFrame
        Output of :func:`rfm_summary` (pandas indexed by customer, or a frame with
        ``customer_id``).
    bins : int, default 5
        Number of score levels.

    Returns
    -------
    DataFrame
        ``R``, ``F``, ``M`` (int) and ``RFM`` (a three-digit string such as ``"545"``) per
        customer, in the caller's frame type.

    Examples
    --------
    >>> import pandas as pd
    >>> rfm = pd.DataFrame({"frequency": [0.0, 2.0, 5.0], "recency": [0.0, 10.0, 30.0],
    ...                     "T": [30.0, 40.0, 31.0], "monetary_value": [0.0, 12.0, 30.0]},
    ...                    index=pd.Index(["a", "b", "c"], name="customer_id"))
    >>> rfm_scores(rfm, bins=3)
                 R  F  M  RFM
    customer_id
    a            1  1  1  111
    b            1  2  2  122
    c            3  3  3  333
    """
    if not isinstance(bins, int | np.integer) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}.")
    table, kind = _as_pandas_table(rfm, "rfm")
    missing = [c for c in ("frequency", "recency", "T", "monetary_value") if c not in table]
    if missing:
        raise DataValidationError(
            f"rfm is missing column(s) {missing}; pass the output of rfm_summary."
        )
    scores = pd.DataFrame(
        {
            "R": _quantile_score(table["T"] - table["recency"], bins, higher_is_better=False),
            "F": _quantile_score(table["frequency"], bins, higher_is_better=True),
            "M": _quantile_score(table["monetary_value"], bins, higher_is_better=True),
        },
        index=table.index,
    )
    scores["RFM"] = scores["R"].astype(str) + scores["F"].astype(str) + scores["M"].astype(str)
    return _back_to_kind(scores, kind, rfm)


def rfm_segments(
    rfm: Any, *, rules: Sequence[SegmentRule] = DEFAULT_SEGMENT_RULES, bins: int = 5
) -> Any:
    """Named RFM segments (Champions, Loyal, ..., Lost) from the R, F and M scores.

    Parameters
    ----------
    rfm : DataFrame
        Output of :func:`rfm_summary` or of :func:`rfm_scores`.
    rules : sequence of SegmentRule, default DEFAULT_SEGMENT_RULES
        Ordered rules; the first whose score ranges contain a customer's scores names them.
        Every customer must be covered by some rule.
    bins : int, default 5
        Number of score levels when scores are computed here.

    Returns
    -------
    DataFrame
        ``R``, ``F``, ``M``, ``RFM`` and ``segment`` per customer.

    Raises
    ------
    DataValidationError
        When some customers match no rule (the message shows their scores).

    Examples
    --------
    >>> import pandas as pd
    >>> rfm = pd.DataFrame({"frequency": [0.0, 0.0, 3.0, 9.0, 1.0],
    ...                     "recency": [0.0, 0.0, 20.0, 39.0, 2.0],
    ...                     "T": [2.0, 38.0, 39.0, 39.0, 30.0],
    ...                     "monetary_value": [0.0, 0.0, 25.0, 80.0, 10.0]},
    ...                    index=pd.Index(list("abcde"), name="customer_id"))
    >>> rfm_segments(rfm)["segment"]
    customer_id
    a    Promising
    b         Lost
    c        Loyal
    d    Champions
    e      At risk
    Name: segment, dtype: object
    """
    table, kind = _as_pandas_table(rfm, "rfm")
    scores = table if {"R", "F", "M"} <= set(table.columns) else rfm_scores(table, bins=bins)
    scores = scores[["R", "F", "M"]].copy()
    if "RFM" in table:
        scores["RFM"] = table["RFM"]
    else:
        scores["RFM"] = scores["R"].astype(str) + scores["F"].astype(str) + scores["M"].astype(str)
    names = np.full(len(scores), None, dtype=object)
    for rule in reversed(list(rules)):
        matches = np.ones(len(scores), dtype=bool)
        for column, (low, high) in zip(
            ("R", "F", "M"), (rule.recency, rule.frequency, rule.monetary), strict=True
        ):
            matches &= scores[column].between(low, high).to_numpy()
        names[matches] = rule.name
    unmatched = pd.isna(names)
    if unmatched.any():
        examples = scores.loc[unmatched, "RFM"].value_counts().head(5).to_dict()
        raise DataValidationError(
            f"{int(unmatched.sum())} customer(s) match no segment rule; their RFM scores "
            f"(score: count) include {examples}. Add a rule covering them, e.g. a final "
            "catch-all SegmentRule('Other')."
        )
    scores["segment"] = pd.Series(names, index=scores.index, dtype=object)
    return _back_to_kind(scores, kind, rfm)
