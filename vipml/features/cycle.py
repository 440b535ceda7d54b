"""Inter-purchase times, purchase momentum, returns and the mix of channels and categories.

Two builders, both computed lazily with narwhals expressions where the data lives:

* :func:`purchase_cycle_features`: how regularly a customer buys (gaps between purchase
  periods), how overdue the next purchase is, spend and purchase counts in the last window
  against the window before, and the share of spend returned.
* :func:`transaction_mix_features`: the share of a customer's purchases per channel and per
  product category.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import warnings
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import narwhals.stable.v2 as nw
import numpy as np
import pandas as pd

from vipml.data.columns import Columns
from vipml.data.validate import (
    PreparedLog,
    ReturnsPolicy,
    parse_cutoff,
    prepare_transactions,
    to_native_result,
)
from vipml.errors import DataValidationError, DataWarning
from vipml.features._periods import (
    EPOCH,
    Freq,
    canonical_freq,
    cutoff_instant,
    period_of,
    time_scale,
)
from vipml.features.rfm import (
    check_cutoff_after_first,
    micro_sum,
    micro_units,
    micro_value,
    purchase_periods,
)

__all__ = [
    "CYCLE_COLUMNS",
    "parse_duration",
    "purchase_cycle_features",
    "snake_case",
    "transaction_mix_features",
]

#: Columns of :func:`purchase_cycle_features`, in order (after ``customer_id``).
CYCLE_COLUMNS: tuple[str, ...] = (
    "gap_mean_days",
    "gap_median_days",
    "gap_std_days",
    "gap_cv",
    "days_since_last_purchase",
    "overdue_ratio",
    "spend_last_window",
    "spend_prev_window",
    "spend_trend",
    "count_last_window",
    "count_prev_window",
    "count_trend",
    "return_share",
    "n_returns",
)

_NAN = float("nan")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([A-Za-z]+)\s*$")
_DURATION_UNITS = {
    "w": "W",
    "week": "W",
    "weeks": "W",
    "d": "D",
    "day": "D",
    "days": "D",
    "h": "h",
    "hour": "h",
    "hours": "h",
    "min": "min",
    "s": "s",
}


def parse_duration(value: Any, name: str) -> dt.timedelta:
    """A positive duration from a timedelta or a string with a unit (``"39W"``, ``"90D"``).

    Units are weeks (``W``), days (``D``), hours (``h``), minutes (``min``) and seconds
    (``s``); calendar months and years have no fixed length and are refused, and so is a bare
    number, whose unit would be a guess.

    Parameters
    ----------
    value : str, datetime.timedelta, pandas.Timedelta or numpy.timedelta64
        The duration.
    name : str
        The argument's name, for error messages.

    Returns
    -------
    datetime.timedelta

    Raises
    ------
    DataValidationError
        A bare number, an unknown or calendar unit, or a duration that is not positive.

    Examples
    --------
    >>> parse_duration("39W", "horizon")
    datetime.timedelta(days=273)
    >>> parse_duration(pd.Timedelta(hours=36), "window")
    datetime.timedelta(days=1, seconds=43200)
    """
    if isinstance(value, bool | int | float | np.number):
        raise DataValidationError(
            f"{name}={value!r} has no unit. Pass a duration with its unit, e.g. "
            f"{name}='{value}D' (days) or '{value}W' (weeks), or a pandas.Timedelta."
        )
    if isinstance(value, str):
        stamp = _parse_duration_text(value, name)
    elif isinstance(value, dt.timedelta | np.timedelta64):
        stamp = pd.Timedelta(value)
    else:
        raise DataValidationError(
            f"{name} must be a duration such as '90D' or pandas.Timedelta(days=90); got "
            f"{type(value).__name__} {value!r}."
        )
    if stamp is pd.NaT or stamp <= pd.Timedelta(0):
        raise DataValidationError(f"{name}={value!r} must be a positive duration.")
    return stamp.to_pytimedelta()


def _parse_duration_text(text: str, name: str) -> pd.Timedelta:
    match = _DURATION.match(text)
    if match is not None:
        number, unit = match.groups()
        if unit in ("M", "m", "Y", "y") or unit.lower() in ("month", "months", "year", "years"):
            raise DataValidationError(
                f"{name}={text!r}: months and years have no fixed length. Use days or weeks "
                f"(e.g. '91D' or '13W'); write minutes as 'min'."
            )
        standard = _DURATION_UNITS.get(unit.lower())
        if standard is None:
            raise DataValidationError(
                f"{name}={text!r} has an unknown unit {unit!r}; use W, D, h, min or s."
            )
        return pd.Timedelta(float(number), unit=standard)
    try:
        float(text)
    except ValueError:
        pass
    else:
        raise DataValidationError(
            f"{name}={text!r} has no unit. Pass a duration with its unit, e.g. "
            f"{name}='{text.strip()}D' (days) or '{text.strip()}W' (weeks)."
        )
    try:
        return pd.Timedelta(text)
    except ValueError as exc:
        raise DataValidationError(
            f"{name}={text!r} is not a duration; pass e.g. '90D', '13W' or '12h'."
        ) from exc


def snake_case(value: Any) -> str:
    """A column-safe snake-case name for a category value (``"In-Store"`` → ``"in_store"``).

    >>> snake_case("In-Store Pickup"), snake_case("eMail"), snake_case(" "), snake_case(3)
    ('in_store_pickup', 'e_mail', 'blank', '3')
    """
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode()
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()
    return text or "blank"


def group_names(values: Iterable[Any], what: str) -> dict[str, list[Any]]:
    """Sorted map from column-safe name to the raw values it stands for (nulls dropped).

    Values whose names coincide (``"Web"`` and ``"web "``) share a column; a
    :class:`~vipml.errors.DataWarning` says which.
    """
    groups: dict[str, list[Any]] = {}
    for value in dict.fromkeys(values):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        groups.setdefault(snake_case(value), []).append(value)
    for name, raw in groups.items():
        raw.sort(key=str)
        if len(raw) > 1:
            warnings.warn(
                f"{what} values {raw} all become the column name {name!r}; they are counted "
                "together. Clean the values first if they are different things.",
                DataWarning,
                stacklevel=4,
            )
    return dict(sorted(groups.items()))


def matches(column: str, raw: list[Any]) -> Any:
    """Expression: the column holds one of ``raw`` (null rows give False)."""
    expression = nw.col(column) == raw[0] if len(raw) == 1 else nw.col(column).is_in(raw)
    return expression.fill_null(False)


def count_where(condition: Any) -> Any:
    """Expression: how many rows satisfy ``condition``, as Int64 (portable filtered count)."""
    return nw.when(condition).then(nw.lit(1)).otherwise(nw.lit(0)).sum().cast(nw.Int64)


def day_of(moment: dt.datetime) -> int:
    """Day number (days since 1970-01-01) of an instant, as :func:`day_number` computes it."""
    return (moment - EPOCH) // dt.timedelta(days=1)


def scan_once(log: PreparedLog, until: dt.datetime | None = None) -> PreparedLog:
    """Copy a pandas log's standard columns to Arrow once, for builders that scan it often.

    DuckDB reads a pandas frame by converting it on every scan, and a builder scans its log
    several times (purchase periods, windows, returns); one Arrow copy of the few standard
    columns (rows up to ``until``) makes the later scans zero-copy. Other kinds are left where
    they live: polars, DuckDB and pyarrow already scan cheaply.
    """
    if log.kind != "pandas" or log.frame.implementation.is_polars():
        return log
    frame = log.frame
    if until is not None:
        frame = frame.filter(nw.col("timestamp") <= nw.lit(until))
    table = frame.collect(backend="pyarrow")
    return replace(log, frame=table.lazy(backend=log.frame.implementation))


def days_per_period(freq: Freq) -> float:
    """Length of one purchase period in days; calendar periods are refused (months differ)."""
    if freq in ("M", "Q", "Y"):
        raise DataValidationError(
            f"freq={freq!r}: purchase-cycle features are measured in days, and calendar "
            "months, quarters and years have no fixed length in days. Count purchases per day "
            "('D'), week ('W') or hour ('h') for these features."
        )
    return time_scale(freq, "D")


#: Length of one purchase period in days as an exact fraction (numerator, denominator).
_DAYS_PER_PERIOD = {"s": (1, 86400), "min": (1, 1440), "H": (1, 24), "D": (1, 1), "W": (7, 1)}


def _gap_statistics(n: Any, total: Any, squares: Any, freq: Freq) -> tuple[Any, Any]:
    """Mean and sample standard deviation (ddof=1) of gaps, in days, from exact integer sums.

    ``n``, ``total`` and ``squares`` are the number of gaps and the Int64 sums of the gaps and
    of their squares, in periods. The engine adds integers, exactly and in any order, so the
    features are the same bit for bit in every run; the rest is per-customer float arithmetic:
    the mean is one division, the variance ``(n Σx² - (Σx)²) / (n (n - 1))`` has an exact
    integer numerator (no cancellation) and one division, then a square root. Gaps are at least one period and add
    up to the customer's span ``S`` in periods, so every integer stays below ``S**3``: exact in
    Int64 for spans under 2e6 periods (over 200 years of hours) and exactly representable as a
    float under 2e5 periods (23 years of hours; a longer span only rounds once, the same way
    every run).
    """
    numerator, denominator = _DAYS_PER_PERIOD[freq]
    mean = nw.when(n > 0).then(
        (total * numerator).cast(nw.Float64) / (n * denominator).cast(nw.Float64)
    )
    spread = (n * squares - total * total).cast(nw.Float64) * float(numerator**2)
    variance = spread / ((n * (n - 1)).cast(nw.Float64) * float(denominator**2))
    return mean, nw.when(n > 1).then(variance.sqrt())


def _window_stats(
    log: PreparedLog, start: dt.datetime, end: dt.datetime, freq: Freq, returns: ReturnsPolicy
) -> Any:
    """Purchase periods and their exact spend in micro-units among rows in ``(start, end]``."""
    rows = replace(log, frame=log.frame.filter(nw.col("timestamp") > nw.lit(start)))
    return (
        purchase_periods(rows, end, freq, returns)
        .group_by("customer_id")
        .agg(
            nw.len().cast(nw.Int64).alias("count"), micro_sum(nw.col("spend_micros")).alias("spend")
        )
    )


def cycle_frame(
    log: PreparedLog,
    cutoff_end: dt.datetime,
    window: dt.timedelta,
    freq: Freq,
    returns: ReturnsPolicy,
    periods: Any = None,
) -> Any:
    """Lazy purchase-cycle features of a prepared log at a cutoff (see the public builder).

    ``periods``: the log's :func:`purchase_periods` at ``cutoff_end`` when the caller has
    them already (one plan node, computed once by engines that share subplans).
    """
    scale = days_per_period(freq)
    cutoff_period = period_of(cutoff_end, freq)
    if periods is None:
        periods = purchase_periods(log, cutoff_end, freq, returns)
    # Gaps between consecutive purchase periods, in periods: integers, summed exactly.
    step = nw.col("period") - nw.col("period").shift(1).over("customer_id", order_by="period")
    gaps = (
        periods.with_columns(step=step)
        .with_columns(gap=(nw.col("step") * scale).cast(nw.Float64))
        .group_by("customer_id")
        .agg(
            nw.col("step").count().cast(nw.Int64).alias("_n_gaps"),
            nw.col("step").sum().cast(nw.Int64).alias("_gap_sum"),
            (nw.col("step") * nw.col("step")).sum().cast(nw.Int64).alias("_gap_squares"),
            # An order statistic (the middle gap, or half the sum of the two middle ones):
            # it does not depend on the order rows are added in.
            nw.col("gap").median().alias("gap_median_days"),
            nw.col("period").max().alias("last_period"),
        )
    )
    gap_mean, gap_std = _gap_statistics(
        nw.col("_n_gaps"), nw.col("_gap_sum"), nw.col("_gap_squares"), freq
    )
    last = _window_stats(log, cutoff_end - window, cutoff_end, freq, returns).rename(
        {"count": "count_last_window", "spend": "_last_micros"}
    )
    prev = _window_stats(log, cutoff_end - 2 * window, cutoff_end - window, freq, returns).rename(
        {"count": "count_prev_window", "spend": "_prev_micros"}
    )
    amount, micros = nw.col("amount"), nw.col("micros")
    returned = (
        log.frame.filter(nw.col("timestamp") <= nw.lit(cutoff_end))
        .with_columns(micros=micro_units("amount"))
        .group_by("customer_id")
        .agg(
            micro_sum(nw.when(amount < 0).then(-micros).otherwise(0)).alias("_returned"),
            micro_sum(nw.when(amount > 0).then(micros).otherwise(0)).alias("_bought"),
            count_where(amount < 0).alias("n_returns"),
        )
    )
    gap_median = nw.col("gap_median_days")
    last_micros = nw.col("_last_micros").fill_null(0)
    prev_micros = nw.col("_prev_micros").fill_null(0)
    return (
        gaps.join(last, on="customer_id", how="left")
        .join(prev, on="customer_id", how="left")
        .join(returned, on="customer_id", how="left")
        .with_columns(
            gap_mean.fill_null(_NAN).alias("gap_mean_days"),
            gap_median.fill_null(_NAN),
            gap_std.fill_null(_NAN).alias("gap_std_days"),
            days_since_last_purchase=((nw.lit(cutoff_period) - nw.col("last_period")) * scale).cast(
                nw.Float64
            ),
            spend_last_window=micro_value(last_micros),
            spend_prev_window=micro_value(prev_micros),
            spend_trend=micro_value(last_micros - prev_micros),
            count_last_window=nw.col("count_last_window").fill_null(0).cast(nw.Int64),
            count_prev_window=nw.col("count_prev_window").fill_null(0).cast(nw.Int64),
            return_share=nw.when(nw.col("_returned") == 0)
            .then(nw.lit(0.0))
            .when(nw.col("_bought") > 0)
            .then(nw.col("_returned").cast(nw.Float64) / nw.col("_bought").cast(nw.Float64))
            .otherwise(nw.lit(_NAN))
            .cast(nw.Float64),
            n_returns=nw.col("n_returns").fill_null(0).cast(nw.Int64),
        )
        .with_columns(
            gap_cv=(nw.col("gap_std_days") / nw.col("gap_mean_days")).fill_null(_NAN),
            overdue_ratio=(nw.col("days_since_last_purchase") / gap_median).fill_null(_NAN),
            count_trend=nw.col("count_last_window") - nw.col("count_prev_window"),
        )
        .select("customer_id", *CYCLE_COLUMNS)
    )


def purchase_cycle_features(
    transactions: Any,
    cutoff: Any,
    *,
    window: Any = "90D",
    freq: str = "D",
    columns: Columns | None = None,
    returns: ReturnsPolicy = "net",
) -> Any:
    """Inter-purchase gaps, overdue ratio, recent momentum and returns at a cutoff.

    Purchases are counted once per ``freq`` period after the returns policy, exactly as in
    :func:`~vipml.features.rfm_summary`; only rows at or before the cutoff are used. Times are in
    days (a week is 7 days, an hour 1/24).

    Parameters
    ----------
    transactions : DataFrame-like
        Transaction log (pandas, polars eager or lazy, pyarrow, DuckDB relation, ...).
    cutoff : str, date or datetime
        Only rows at or before the cutoff are used; a date includes its whole day (with
        periods shorter than a day, a date is the instant midnight, as in
        :func:`~vipml.features.rfm_summary`).
    window : str or timedelta, default "90D"
        Length of the recent window ``(cutoff - window, cutoff]``; the previous window is
        ``(cutoff - 2 window, cutoff - window]``. A unit is required (``"90D"``, ``"13W"``).
    freq : str, default "D"
        Period in which purchases are counted: ``"s"``, ``"min"``, ``"h"``, ``"D"`` or ``"W"``
        (pandas' spellings). Calendar months, quarters and years are refused: the features
        are in days.
    columns : Columns, optional
        Names of the caller's columns.
    returns : {"net", "exclude", "error"}, default "net"
        Policy for negative amounts in purchase periods and window spend; see
        :func:`vipml.data.validate.prepare_transactions`. ``return_share`` and ``n_returns``
        always see every row.

    Returns
    -------
    DataFrame
        One row per customer with a purchase period at or before the cutoff:

        - ``gap_mean_days``, ``gap_median_days``: mean and median of the gaps between
          consecutive purchase periods (NaN with a single purchase period: no gap);
        - ``gap_std_days``: sample standard deviation (ddof=1) of the gaps (NaN with fewer than
          two gaps); ``gap_cv``: ``gap_std_days / gap_mean_days`` (NaN when the std is);
        - ``days_since_last_purchase``: cutoff's period minus the last purchase period, in days
          (with ``freq="D"``: cutoff day minus last purchase day);
        - ``overdue_ratio``: ``days_since_last_purchase / gap_median_days`` (NaN without a gap);
        - ``spend_last_window``, ``count_last_window``: net spend and number of purchase periods
          among the rows in ``(cutoff - window, cutoff]``; ``spend_prev_window``,
          ``count_prev_window``: the same for the window before; ``spend_trend`` and
          ``count_trend``: last minus previous;
        - ``return_share``: returned amount (absolute sum of negative amounts) over bought
          amount (sum of positive amounts), from the raw rows whatever the returns policy; 0
          without returns, NaN when there are returns but nothing positive was bought;
        - ``n_returns``: number of rows with a negative amount.

        Every feature is the same bit for bit in every run, whatever the engine's threads do:
        amounts are summed exactly in integer micro-units (1e-6 of the currency unit; amounts
        are rounded to that resolution first, see :func:`vipml.features.rfm.micro_units`),
        gap means and standard deviations come from exact integer sums of the gaps (in
        periods) and of their squares, and each float is computed per customer from those
        integers.

        Counts are Int64, the rest Float64. pandas input gives a frame indexed by
        ``customer_id``; other kinds give their own frame with a ``customer_id`` column
        (lazy inputs a lazy frame).

    Raises
    ------
    DataValidationError
        Bad input (see the data contract), a window without a unit, ``freq="M"``, or a cutoff
        before every transaction.

    Examples
    --------
    >>> import pandas as pd
    >>> tx = pd.DataFrame({
    ...     "customer_id": ["a", "a", "a", "a", "b"],
    ...     "timestamp": pd.to_datetime(
    ...         ["2024-01-01", "2024-01-11", "2024-01-31", "2024-02-05", "2024-01-20"]),
    ...     "amount": [10.0, 20.0, 40.0, -8.0, 5.0],
    ... })
    >>> cycle = purchase_cycle_features(tx, cutoff="2024-02-09", window="30D")
    >>> cycle[["gap_mean_days", "gap_std_days", "overdue_ratio"]]
                 gap_mean_days  gap_std_days  overdue_ratio
    customer_id
    a                     15.0      7.071068            0.6
    b                      NaN           NaN            NaN
    >>> cycle[["days_since_last_purchase", "count_last_window", "count_prev_window"]]
                 days_since_last_purchase  count_last_window  count_prev_window
    customer_id
    a                                 9.0                  2                  1
    b                                20.0                  1                  0
    >>> cycle["return_share"].round(4).tolist()
    [0.1143, 0.0]
    """
    freq = canonical_freq(freq)
    log = prepare_transactions(transactions, columns, returns=returns)
    span = parse_duration(window, "window")
    days_per_period(freq)
    cutoff_end = cutoff_instant(cutoff, tz_aware=log.tz_aware, freq=freq)
    check_cutoff_after_first(log, cutoff_end, "cutoff")
    log = scan_once(log, cutoff_end)
    return to_native_result(cycle_frame(log, cutoff_end, span, freq, returns), log.kind)


def transaction_mix_features(
    transactions: Any, cutoff: Any, *, columns: Columns | None = None
) -> Any:
    """Share of each customer's purchases per channel and per product category.

    Purchases are the transaction rows with a non-negative amount at or before the cutoff
    (returns are left out). The distinct channels and categories seen by the cutoff are found
    with one small query; each becomes a column named after its value in snake case
    (``"In-Store"`` → ``share_channel_in_store``); values that give the same name are counted
    together (with a :class:`~vipml.errors.DataWarning`).

    Parameters
    ----------
    transactions : DataFrame-like
        Transaction log with a ``channel`` column, a ``category`` column, or both.
    cutoff : str, date or datetime
        Only rows at or before the cutoff are used; a date includes its whole day.
    columns : Columns, optional
        Names of the caller's columns.

    Returns
    -------
    DataFrame
        One row per customer with a purchase row at or before the cutoff, columns in this
        order: ``share_channel_<name>`` (sorted by name), ``share_category_<name>`` (sorted),
        ``n_channels``, ``n_categories``; the channel (category) columns only when the log has
        a channel (category) column. A share is the number of purchase rows with that value
        over all the customer's purchase rows (Float64), so rows with a missing value make the
        shares sum to less than 1; ``n_*`` counts the distinct non-missing values (Int64).

    Raises
    ------
    DataValidationError
        Neither a channel nor a category column, bad input, or a cutoff before every
        transaction.

    Examples
    --------
    >>> import pandas as pd
    >>> tx = pd.DataFrame({
    ...     "customer_id": [1, 1, 1, 2],
    ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-02"]),
    ...     "amount": [10.0, 20.0, 5.0, 7.0],
    ...     "channel": ["Web", "In-Store", "Web", "App"],
    ... })
    >>> mix = transaction_mix_features(tx, cutoff="2024-01-31")
    >>> list(mix.columns)
    ['share_channel_app', 'share_channel_in_store', 'share_channel_web', 'n_channels']
    >>> mix[["share_channel_in_store", "share_channel_web", "n_channels"]]
                 share_channel_in_store  share_channel_web  n_channels
    customer_id
    1                          0.333333           0.666667           2
    2                          0.000000           0.000000           1
    """
    log = prepare_transactions(transactions, columns, returns="net")
    keys = [c for c in ("channel", "category") if c in log.columns]
    if not keys:
        names = columns or Columns()
        raise DataValidationError(
            f"transaction_mix_features needs a channel column ('{names.channel}') or a "
            f"category column ('{names.category}') in the transactions; neither is present "
            f"(standard columns found: {list(log.columns)}). Map yours with vipml.data."
            "Columns(channel=..., category=...)."
        )
    cutoff_end = parse_cutoff(cutoff, tz_aware=log.tz_aware)
    check_cutoff_after_first(log, cutoff_end, "cutoff")
    log = scan_once(log, cutoff_end)
    purchases = log.frame.filter(
        (nw.col("timestamp") <= nw.lit(cutoff_end)) & (nw.col("amount") >= 0)
    )
    distinct = purchases.group_by(*keys).agg(nw.len()).collect()
    aggregates: list[Any] = [nw.len().alias("_n")]
    outputs: list[Any] = []
    counts: dict[str, list[str]] = {}
    for key in keys:
        groups = group_names(distinct.get_column(key).to_list(), key)
        counts[key] = []
        for name, raw in groups.items():
            column = f"_{key}_{name}"
            aggregates.append(count_where(matches(key, raw)).alias(column))
            outputs.append(
                (nw.col(column) / nw.col("_n")).cast(nw.Float64).alias(f"share_{key}_{name}")
            )
            counts[key].append(column)
    plural = {"channel": "n_channels", "category": "n_categories"}
    for key in keys:
        present = [nw.when(nw.col(c) > 0).then(nw.lit(1)).otherwise(nw.lit(0)) for c in counts[key]]
        total = nw.sum_horizontal(*present) if present else nw.lit(0)
        outputs.append(total.cast(nw.Int64).alias(plural[key]))
    result = purchases.group_by("customer_id").agg(*aggregates).select("customer_id", *outputs)
    return to_native_result(result, log.kind)
