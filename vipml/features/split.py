"""Calibration/holdout splits and point-in-time training snapshots."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import narwhals.stable.v2 as nw
import pandas as pd

from vipml.data.columns import Columns
from vipml.data.validate import (
    PreparedLog,
    ReturnsPolicy,
    parse_cutoff,
    prepare_events,
    prepare_transactions,
    to_native_result,
)
from vipml.errors import DataValidationError
from vipml.features._periods import Freq, canonical_freq, cutoff_instant, period_of, time_scale
from vipml.features.cycle import (
    CYCLE_COLUMNS,
    cycle_frame,
    days_per_period,
    parse_duration,
    scan_once,
)
from vipml.features.engagement import (
    EngagementLayout,
    engagement_frame,
    engagement_layout,
    parse_windows,
)
from vipml.features.rfm import (
    check_cutoff_after_first,
    micro_sum,
    micro_value,
    purchase_periods,
    summarise_periods,
)

__all__ = ["LABEL_COLUMNS", "calibration_holdout", "labels_after", "training_snapshots"]

#: Label columns of :func:`labels_after` and :func:`training_snapshots`.
LABEL_COLUMNS: tuple[str, ...] = ("purchases_next", "spend_next", "churned")
_RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value")
_NAN = float("nan")


def calibration_holdout(
    transactions: Any,
    calibration_end: Any,
    observation_end: Any,
    *,
    freq: str = "D",
    time_unit: str | None = None,
    columns: Columns | None = None,
    returns: ReturnsPolicy = "net",
) -> Any:
    """RFM summary of a calibration period and purchases in the holdout period after it.

    The calibration columns are :func:`rfm_summary` at ``calibration_end`` with a ``_cal``
    suffix. For the same customers (those with a purchase by ``calibration_end``), the holdout
    ``(calibration_end, observation_end]`` gives ``frequency_holdout`` (purchase periods in the
    holdout), ``monetary_value_holdout`` (mean net spend per holdout purchase period, 0 without
    one) and ``duration_holdout`` (its length in ``time_unit``), as
    ``lifetimes.utils.calibration_and_holdout_data`` does.

    One deliberate difference: ``lifetimes`` averages holdout spend per *transaction row* but
    calibration spend per *period*; vipml uses periods for both, so the two columns measure the
    same thing. They coincide whenever a customer has at most one row per period.

    Spend is summed exactly in integer micro-units (1e-6 of the currency unit, as in
    :func:`rfm_summary`), so both monetary values are the same bit for bit in every run.

    Parameters
    ----------
    transactions : DataFrame-like
        Transaction log.
    calibration_end, observation_end : str, date or datetime
        End of the calibration period and of the holdout period (inclusive; dates include
        their whole day).
    freq, time_unit, columns, returns
        As in :func:`rfm_summary`.

    Returns
    -------
    DataFrame
        ``frequency_cal``, ``recency_cal``, ``T_cal``, ``monetary_value_cal``,
        ``frequency_holdout``, ``monetary_value_holdout``, ``duration_holdout``.

    Raises
    ------
    DataValidationError
        Bad input, ``observation_end`` not after ``calibration_end``, or a calibration end
        before every transaction.

    Examples
    --------
    >>> import pandas as pd
    >>> tx = pd.DataFrame({
    ...     "customer_id": [1, 1, 2, 1],
    ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-02", "2024-01-09"]),
    ...     "amount": [10.0, 20.0, 5.0, 8.0],
    ... })
    >>> calibration_holdout(tx, "2024-01-05", "2024-01-12")[["frequency_cal", "frequency_holdout",
    ...                                                        "duration_holdout"]]
                 frequency_cal  frequency_holdout  duration_holdout
    customer_id
    1                      1.0                1.0               7.0
    2                      0.0                0.0               7.0
    """
    freq, time_unit = canonical_freq(freq), canonical_freq(time_unit or freq, "time_unit")
    log = prepare_transactions(transactions, columns, returns=returns)
    scale = time_scale(freq, time_unit)
    calibration_stop = cutoff_instant(
        calibration_end, tz_aware=log.tz_aware, freq=freq, name="calibration_end"
    )
    observation_stop = cutoff_instant(
        observation_end, tz_aware=log.tz_aware, freq=freq, name="observation_end"
    )
    if observation_stop <= calibration_stop:
        raise DataValidationError(
            f"observation_end={observation_end!r} must be after calibration_end="
            f"{calibration_end!r}: the holdout period would be empty."
        )
    check_cutoff_after_first(log, calibration_stop, "calibration_end")
    calibration_period = period_of(calibration_stop, freq)
    periods = purchase_periods(log, observation_stop, freq, returns)
    calibration = summarise_periods(
        periods.filter(nw.col("period") <= calibration_period), calibration_period, scale
    )
    holdout = (
        periods.filter(nw.col("period") > calibration_period)
        .group_by("customer_id")
        .agg(
            nw.len().cast(nw.Int64).alias("_n_holdout"),
            micro_sum(nw.col("spend_micros")).alias("_spend_holdout"),
        )
        .select(
            "customer_id",
            nw.col("_n_holdout").cast(nw.Float64).alias("frequency_holdout"),
            micro_value("_spend_holdout", "_n_holdout").alias("monetary_value_holdout"),
        )
    )
    duration = (period_of(observation_stop, freq) - calibration_period) * scale
    combined = (
        calibration.rename({c: f"{c}_cal" for c in ("frequency", "recency", "T", "monetary_value")})
        .join(holdout, on="customer_id", how="left")
        .with_columns(
            nw.col("frequency_holdout").fill_null(0.0),
            nw.col("monetary_value_holdout").fill_null(0.0).cast(nw.Float64),
            nw.lit(float(duration)).alias("duration_holdout"),
        )
    )
    return to_native_result(combined, log.kind)


def future_purchases(
    log: PreparedLog,
    cutoff_end: dt.datetime,
    horizon: dt.timedelta,
    freq: Freq,
    returns: ReturnsPolicy,
) -> Any:
    """Purchase periods and net spend among the rows in ``(cutoff_end, cutoff_end + horizon]``.

    Only customers with a purchase in the horizon appear; join and fill with :func:`fill_labels`.
    The spend is an exact integer sum of micro-units turned into a float by one division.
    """
    after = replace(log, frame=log.frame.filter(nw.col("timestamp") > nw.lit(cutoff_end)))
    return (
        purchase_periods(after, cutoff_end + horizon, freq, returns)
        .group_by("customer_id")
        .agg(
            nw.len().cast(nw.Int64).alias("purchases_next"),
            micro_sum(nw.col("spend_micros")).alias("_spend_next"),
        )
        .select("customer_id", "purchases_next", micro_value("_spend_next").alias("spend_next"))
    )


def fill_labels() -> list[Any]:
    """Expressions completing the labels after a left join on the customers at the cutoff."""
    return [
        nw.col("purchases_next").fill_null(0).cast(nw.Int64),
        nw.col("spend_next").fill_null(0.0).cast(nw.Float64),
        (nw.col("purchases_next").fill_null(0) == 0).alias("churned"),
    ]


def check_labels_complete(
    log: PreparedLog, cutoff: Any, cutoff_end: dt.datetime, horizon: dt.timedelta
) -> None:
    """Refuse a horizon that runs past the log: its labels would be incomplete.

    The log is taken to cover every day up to the day of its last row, so a horizon ending
    on that day is complete.
    """
    last = log.last_timestamp
    horizon_end = cutoff_end + horizon
    if horizon_end.date() <= last.date():
        return
    latest = (dt.datetime.combine(last.date(), dt.time.max) - horizon).date()
    if (parse_cutoff(latest, tz_aware=False) + horizon).date() > last.date():
        latest -= dt.timedelta(days=1)
    raise DataValidationError(
        f"cutoff {cutoff!r} + horizon {_describe(horizon)} ends on {horizon_end.date()}, "
        f"after the last transaction ({last.date()}): the labels would be incomplete, and "
        f"customers would look churned for lack of data. Use cutoffs up to {latest} or a "
        "shorter horizon."
    )


def _describe(span: dt.timedelta) -> str:
    if span % dt.timedelta(days=1) == dt.timedelta(0):
        return f"{span.days} days"
    return str(pd.Timedelta(span))


def labels_after(
    transactions: Any,
    cutoff: Any,
    horizon: Any,
    *,
    freq: str = "D",
    columns: Columns | None = None,
    returns: ReturnsPolicy = "net",
) -> Any:
    """What each customer does in the horizon after a cutoff: the churn and spend labels.

    Labels use only the rows in ``(cutoff, cutoff + horizon]``: the returns policy is applied
    to those rows alone (a return of an earlier order made in the horizon counts as a return
    in the horizon). Customers are those with a purchase period at or before the cutoff, as in
    :func:`~vipml.features.rfm_summary`.

    Parameters
    ----------
    transactions : DataFrame-like
        Transaction log.
    cutoff : str, date or datetime
        End of the feature period (a date includes its whole day).
    horizon : str or timedelta
        Length of the label period, with a unit: ``"39W"``, ``"273D"``,
        ``pandas.Timedelta(days=90)``. A bare number is refused.
    freq : {"H", "D", "W", "M"}, default "D"
        Period in which purchases are counted.
    columns : Columns, optional
        Names of the caller's columns.
    returns : {"net", "exclude", "error"}, default "net"
        Policy for negative amounts; see :func:`vipml.data.validate.prepare_transactions`.

    Returns
    -------
    DataFrame
        One row per customer with a purchase at or before the cutoff: ``purchases_next``
        (purchase periods in the horizon, Int64), ``spend_next`` (their net spend; a period
        holding only returns is not a purchase and adds nothing; summed exactly at a
        resolution of 1e-6 currency units, so it is the same bit for bit in every run) and
        ``churned`` (bool: no purchase in the horizon). pandas input gives a frame indexed by
        ``customer_id``.

    Raises
    ------
    DataValidationError
        A horizon without a unit; a horizon ending after the day of the last transaction
        (incomplete labels); a cutoff before every transaction; bad input.

    Examples
    --------
    >>> import pandas as pd
    >>> tx = pd.DataFrame({
    ...     "customer_id": [1, 1, 2, 1, 3],
    ...     "timestamp": pd.to_datetime(
    ...         ["2024-01-01", "2024-01-03", "2024-01-02", "2024-01-09", "2024-02-01"]),
    ...     "amount": [10.0, 20.0, 5.0, 8.0, 1.0],
    ... })
    >>> labels_after(tx, "2024-01-05", "2W")
                 purchases_next  spend_next  churned
    customer_id
    1                         1         8.0    False
    2                         0         0.0     True
    """
    freq = canonical_freq(freq)
    log = prepare_transactions(transactions, columns, returns=returns)
    span = parse_duration(horizon, "horizon")
    cutoff_end = cutoff_instant(cutoff, tz_aware=log.tz_aware, freq=freq)
    check_cutoff_after_first(log, cutoff_end, "cutoff")
    check_labels_complete(log, cutoff, cutoff_end, span)
    log = scan_once(log, cutoff_end + span)
    customers = purchase_periods(log, cutoff_end, freq, returns).select("customer_id").unique()
    labels = customers.join(
        future_purchases(log, cutoff_end, span, freq, returns), on="customer_id", how="left"
    ).with_columns(*fill_labels())
    return to_native_result(labels.select("customer_id", *LABEL_COLUMNS), log.kind)


def _parse_cutoffs(
    cutoffs: Any, tz_aware: bool, freq: str
) -> list[tuple[Any, pd.Timestamp, dt.datetime]]:
    """Each cutoff: as given, as a naive timestamp (UTC when aware), as its last instant."""
    if isinstance(cutoffs, str) or not isinstance(cutoffs, Sequence | pd.Index | pd.Series):
        raise DataValidationError(
            f"cutoffs must be a list of dates, e.g. ['2023-06-30', '2023-09-30']; got {cutoffs!r}."
        )
    if len(cutoffs) == 0:
        raise DataValidationError("cutoffs is empty: pass at least one cutoff date.")
    parsed = []
    for cutoff in cutoffs:
        end = cutoff_instant(cutoff, tz_aware=tz_aware, freq=freq, name="cutoffs")
        stamp = pd.Timestamp(cutoff)
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        parsed.append((cutoff, stamp.floor("us"), end))
    ends = [end for _, _, end in parsed]
    repeated = list(dict.fromkeys(str(c) for c, _, end in parsed if ends.count(end) > 1))
    if repeated:
        raise DataValidationError(
            f"cutoffs repeat {repeated}: each cutoff gives one snapshot; pass each once."
        )
    if ends != sorted(ends):
        order = [str(c) for c, _, _ in sorted(parsed, key=lambda item: item[2])]
        raise DataValidationError(
            f"cutoffs must be in increasing order; got {[str(c) for c in cutoffs]}. Pass them "
            f"sorted: {order}."
        )
    return parsed


def _align_events(events: PreparedLog, log: PreparedLog) -> PreparedLog:
    """Bring the event log onto the transactions' engine so the two can be joined."""
    target = log.frame.implementation
    if events.frame.implementation == target:
        return events
    if not (target.is_polars() or target.is_duckdb()):
        raise DataValidationError(
            f"transactions ({log.kind}) and events ({events.kind}) live on different engines; "
            "pass both in the same kind of frame."
        )
    arrow = events.frame.collect().to_arrow()
    return replace(events, frame=nw.from_native(arrow).lazy(backend=target))


def _snapshot(
    log: PreparedLog,
    events: PreparedLog | None,
    layout: EngagementLayout | None,
    stamp: pd.Timestamp,
    cutoff_end: dt.datetime,
    *,
    horizon: dt.timedelta,
    window: dt.timedelta,
    freq: Freq,
    scale: float,
    returns: ReturnsPolicy,
) -> Any:
    periods = purchase_periods(log, cutoff_end, freq, returns)
    table = summarise_periods(periods, period_of(cutoff_end, freq), scale).join(
        cycle_frame(log, cutoff_end, window, freq, returns, periods=periods),
        on="customer_id",
        how="left",
    )
    names: list[str] = []
    if events is not None and layout is not None:
        names = layout.columns
        counts = set(layout.count_columns)
        try:
            table = table.join(
                engagement_frame(events, cutoff_end, layout), on="customer_id", how="left"
            )
        except Exception as exc:  # DuckDB relations of two connections cannot be joined
            if "connection" not in str(exc):
                raise
            raise DataValidationError(
                "transactions and events are DuckDB relations of different connections; "
                "create both from the same connection."
            ) from exc
        table = table.with_columns(
            nw.col(c).fill_null(0).cast(nw.Int64) if c in counts else nw.col(c).fill_null(_NAN)
            for c in names
        )
    table = table.join(
        future_purchases(log, cutoff_end, horizon, freq, returns), on="customer_id", how="left"
    ).with_columns(*fill_labels())
    return table.select(
        nw.lit(stamp.to_pydatetime()).cast(nw.Datetime("us")).alias("cutoff"),
        "customer_id",
        *_RFM_COLUMNS,
        *CYCLE_COLUMNS,
        *names,
        *LABEL_COLUMNS,
    )


def training_snapshots(
    transactions: Any,
    events: Any = None,
    *,
    cutoffs: Sequence[Any],
    horizon: Any,
    freq: str = "D",
    time_unit: str = "D",
    window: Any = "90D",
    engagement_windows: Sequence[Any] = ("7D", "30D", "90D"),
    columns: Columns | None = None,
    event_columns: Columns | None = None,
    returns: ReturnsPolicy = "net",
) -> Any:
    """Point-in-time training rows: features at each cutoff, labels from the horizon after it.

    For every cutoff ``c`` and every customer with a purchase by ``c``, one row holds the
    :func:`~vipml.features.rfm_summary` columns, the :func:`purchase_cycle_features` and
    (with events) the :func:`engagement_features` computed from rows at or before ``c`` only,
    and the :func:`labels_after` labels computed from rows in ``(c, c + horizon]`` only. Rows
    of several cutoffs are stacked, the shape a churn model trains on without leaking the
    future.

    Parameters
    ----------
    transactions : DataFrame-like
        Transaction log (pandas, polars eager or lazy, pyarrow, DuckDB relation, ...).
    events : DataFrame-like, optional
        Engagement-event log. Without it, no engagement columns. A log of another kind than
        ``transactions`` is collected and moved to the transactions' engine.
    cutoffs : sequence of str, date or datetime
        Feature cutoffs, strictly increasing (dates include their whole day).
    horizon : str or timedelta
        Length of the label period with a unit (``"39W"``, ``"273D"``); bare numbers are
        refused. Every cutoff's horizon must end by the day of the last transaction.
    freq : {"H", "D", "W"}, default "D"
        Period in which purchases are counted (months are refused by the cycle features).
    time_unit : {"H", "D", "W"}, default "D"
        Unit of ``recency`` and ``T``; cycle and engagement features are in days.
    window : str or timedelta, default "90D"
        Window of the purchase-cycle momentum features.
    engagement_windows : sequence of str or timedelta, default ("7D", "30D", "90D")
        Count windows of the engagement features.
    columns : Columns, optional
        Names of the transaction log's columns.
    event_columns : Columns, optional
        Names of the event log's columns (default: ``columns``).
    returns : {"net", "exclude", "error"}, default "net"
        Policy for negative amounts, in features and labels alike.

    Returns
    -------
    DataFrame
        ``cutoff`` (the cutoff as given, a naive datetime), ``customer_id``, ``frequency``,
        ``recency``, ``T``, ``monetary_value``, the cycle columns, the engagement columns
        (event types and channels are those seen by the *last* cutoff, so every cutoff has
        the same columns; customers without events get 0 counts and NaN elsewhere), then
        ``purchases_next``, ``spend_next`` and ``churned``. pandas input gives a frame indexed
        by (``cutoff``, ``customer_id``), sorted; other kinds give their own frame with both as
        columns (eager ones sorted, lazy ones lazy).

    Raises
    ------
    DataValidationError
        Unsorted or repeated cutoffs; a horizon without a unit; a horizon running past the
        last transaction (naming the cutoff and the last date); a first cutoff before every
        transaction; bad input in either log.

    See Also
    --------
    labels_after : the label definition on its own.

    Examples
    --------
    >>> import pandas as pd
    >>> tx = pd.DataFrame({
    ...     "customer_id": [1, 1, 2, 1, 2, 1],
    ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-10", "2024-01-12",
    ...                                  "2024-01-20", "2024-01-22", "2024-02-20"]),
    ...     "amount": [10.0, 20.0, 5.0, 8.0, 4.0, 1.0],
    ... })
    >>> snaps = training_snapshots(tx, cutoffs=["2024-01-11", "2024-01-21"], horizon="4W")
    >>> snaps[["frequency", "purchases_next", "churned"]]
                            frequency  purchases_next  churned
    cutoff     customer_id
    2024-01-11 1                  1.0               1    False
    2024-01-21 1                  2.0               0     True
               2                  0.0               1    False
    >>> snaps["days_since_last_purchase"].tolist()
    [1.0, 1.0, 9.0]
    """
    freq, time_unit = canonical_freq(freq), canonical_freq(time_unit, "time_unit")
    log = prepare_transactions(transactions, columns, returns=returns)
    span = parse_duration(horizon, "horizon")
    cycle_window = parse_duration(window, "window")
    windows = parse_windows(engagement_windows)
    scale = time_scale(freq, time_unit)
    days_per_period(freq)
    parsed = _parse_cutoffs(cutoffs, log.tz_aware, freq)
    check_cutoff_after_first(log, parsed[0][2], "cutoffs")
    last_given, _, last_end = parsed[-1]
    check_labels_complete(log, last_given, last_end, span)
    log = scan_once(log, last_end + span)
    event_log, layout = None, None
    if events is not None:
        event_log = prepare_events(events, event_columns or columns)
        event_log = _align_events(scan_once(event_log, last_end), log)
        if event_log.tz_aware != log.tz_aware:
            raise DataValidationError(
                "transactions and events disagree on time zones: one has tz-aware timestamps, "
                "the other naive ones. Make both aware (or both naive)."
            )
        layout = engagement_layout(event_log, last_end, windows)
    snapshots = [
        _snapshot(
            log,
            event_log,
            layout,
            stamp,
            end,
            horizon=span,
            window=cycle_window,
            freq=freq,
            scale=scale,
            returns=returns,
        )
        for _, stamp, end in parsed
    ]
    stacked = nw.concat(snapshots, how="vertical")
    return _snapshots_to_native(stacked, log.kind)


def _snapshots_to_native(result: Any, kind: str) -> Any:
    if kind not in ("pandas", "pyarrow", "polars", "parquet"):
        return to_native_result(result, kind, index=None)
    # Sorted by polars (multi-threaded) before any conversion: pandas sorts on one core.
    eager = result.collect(backend="polars").sort("cutoff", "customer_id")
    if kind in ("pandas", "parquet"):
        return eager.to_pandas().set_index(["cutoff", "customer_id"])
    if kind == "pyarrow":
        return eager.to_arrow()
    return eager.to_native()
