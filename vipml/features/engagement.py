"""Engagement features from event logs: activity per window, recency, channels and values.

:func:`engagement_features` turns a log of engagement events (visits, e-mail opens, support
tickets, ...) into one row per customer at an explicit cutoff, lazily, with narwhals
expressions: counts per event type in recent windows, days since the first and last event,
how spread over channels a customer is and how often they switch channel (the omnichannel
transition rate), and summaries of a numeric event value such as a sentiment score.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import narwhals.stable.v2 as nw

from vipml.data.columns import Columns
from vipml.data.validate import PreparedLog, parse_cutoff, prepare_events, to_native_result
from vipml.errors import DataValidationError
from vipml.features._periods import calendar_arithmetic, day_number
from vipml.features.cycle import (
    count_where,
    day_of,
    group_names,
    matches,
    parse_duration,
    scan_once,
)
from vipml.features.rfm import micro_sum, micro_units, micro_value

__all__ = ["EngagementLayout", "engagement_features"]

_NAN = float("nan")
#: Length of the recent period of ``value_trend``.
VALUE_TREND_WINDOW = dt.timedelta(days=30)


@dataclass(frozen=True)
class EngagementLayout:
    """The columns an engagement table will have: windows, event types and channels.

    Attributes
    ----------
    windows : tuple of (str, datetime.timedelta)
        Column suffix (``"7d"``) and length of each window.
    event_types : tuple of (str, tuple)
        Column-safe name and the raw event types it counts.
    channels : tuple of (str, tuple) or None
        Column-safe name and raw channel values; None when the log has no channel column.
    has_value : bool
        Whether the log has a ``value`` column.
    """

    windows: tuple[tuple[str, dt.timedelta], ...]
    event_types: tuple[tuple[str, tuple[Any, ...]], ...]
    channels: tuple[tuple[str, tuple[Any, ...]], ...] | None
    has_value: bool

    @property
    def count_columns(self) -> list[str]:
        """Columns that are counts (0 for a customer without events)."""
        names = [f"n_{name}_{label}" for name, _ in self.event_types for label, _ in self.windows]
        names += [f"n_events_{label}" for label, _ in self.windows]
        if self.channels is not None:
            names += [f"n_channel_{name}" for name, _ in self.channels] + ["n_channels"]
        if self.has_value:
            names.append("n_negative_values")
        return names

    @property
    def columns(self) -> list[str]:
        """Every feature column, in output order."""
        names = [f"n_{name}_{label}" for name, _ in self.event_types for label, _ in self.windows]
        names += [f"n_events_{label}" for label, _ in self.windows]
        names += ["days_since_last_event", "days_since_first_event"]
        if self.channels is not None:
            names += [f"n_channel_{name}" for name, _ in self.channels]
            names += ["n_channels", "channel_entropy", "channel_switch_rate"]
        if self.has_value:
            names += ["value_mean", "value_last", "value_trend", "n_negative_values"]
        return names


def window_label(span: dt.timedelta) -> str:
    """Column suffix of a window: whole days ``"30d"``, else hours ``"12h"``, minutes, seconds.

    >>> window_label(dt.timedelta(weeks=2)), window_label(dt.timedelta(hours=36))
    ('14d', '36h')
    """
    seconds = span.total_seconds()
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s" if seconds == int(seconds) else f"{int(seconds * 1e6)}us"


def parse_windows(windows: Any) -> tuple[tuple[str, dt.timedelta], ...]:
    """Labels and lengths of the engagement windows; refuses duplicates and bare numbers."""
    if isinstance(windows, str) or not isinstance(windows, Sequence):
        windows = [windows]
    parsed = tuple(
        (window_label(span), span) for span in (parse_duration(w, "windows") for w in windows)
    )
    labels = [label for label, _ in parsed]
    if len(set(labels)) < len(labels):
        raise DataValidationError(
            f"windows={list(windows)!r} repeats a window ({labels}); give each length once."
        )
    return parsed


def engagement_layout(
    log: PreparedLog, cutoff_end: dt.datetime, windows: tuple[tuple[str, dt.timedelta], ...]
) -> EngagementLayout:
    """Find the event types and channels seen by the cutoff with one small query."""
    keys = ["event_type"] + (["channel"] if "channel" in log.columns else [])
    distinct = (
        log.frame.filter(nw.col("timestamp") <= nw.lit(cutoff_end))
        .group_by(*keys)
        .agg(nw.len())
        .collect()
    )
    event_types = group_names(distinct.get_column("event_type").to_list(), "event_type")
    channels = None
    if "channel" in log.columns:
        channels = group_names(distinct.get_column("channel").to_list(), "channel")
    layout = EngagementLayout(
        windows=windows,
        event_types=tuple((name, tuple(raw)) for name, raw in event_types.items()),
        channels=None
        if channels is None
        else tuple((name, tuple(raw)) for name, raw in channels.items()),
        has_value="value" in log.columns,
    )
    names = layout.columns
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise DataValidationError(
            f"Event types {[raw for name, raw in layout.event_types]} give clashing feature "
            f"columns {clashes} (an event type named like 'events' or 'channel_...'). Rename "
            "those event types in the log."
        )
    return layout


def engagement_frame(log: PreparedLog, cutoff_end: dt.datetime, layout: EngagementLayout) -> Any:
    """Lazy engagement features of a prepared event log at a cutoff (see the public builder)."""
    timestamp = nw.col("timestamp")
    events = log.frame.filter(timestamp <= nw.lit(cutoff_end))
    if layout.has_value:
        # NaN and null both mean "no value" (pandas NaN reaches DuckDB as null anyway).
        events = events.with_columns(value=nw.when(~nw.col("value").is_nan()).then(nw.col("value")))
        # Values are averaged from exact integer sums of micro-units (resolution 1e-6), so the
        # means do not depend on the order in which the engine adds rows.
        events = events.with_columns(_value_micros=micro_units("value"))
    cutoff_day = day_of(cutoff_end)
    calendar = calendar_arithmetic(events)
    aggregates: list[Any] = []
    for name, raw in layout.event_types:
        for label, span in layout.windows:
            recent = timestamp > nw.lit(cutoff_end - span)
            aggregates.append(
                count_where(matches("event_type", list(raw)) & recent).alias(f"n_{name}_{label}")
            )
    for label, span in layout.windows:
        aggregates.append(
            count_where(timestamp > nw.lit(cutoff_end - span)).alias(f"n_events_{label}")
        )
    aggregates += [timestamp.max().alias("_last"), timestamp.min().alias("_first")]
    finals: list[Any] = [
        (nw.lit(cutoff_day) - day_number("_last", calendar=calendar))
        .cast(nw.Float64)
        .alias("days_since_last_event"),
        (nw.lit(cutoff_day) - day_number("_first", calendar=calendar))
        .cast(nw.Float64)
        .alias("days_since_first_event"),
    ]
    if layout.channels is not None:
        channel_columns = [f"n_channel_{name}" for name, _ in layout.channels]
        for (_, raw), column in zip(layout.channels, channel_columns, strict=True):
            aggregates.append(count_where(matches("channel", list(raw))).alias(column))
        aggregates.append(count_where(~nw.col("channel").is_null()).alias("_n_channelled"))
        total = nw.col("_n_channelled").cast(nw.Float64)
        # p ln(1/p) rather than -p ln p: a single channel gives +0.0, not -0.0.
        terms = [
            nw.when(nw.col(c) > 0)
            .then((nw.col(c) / total) * (total / nw.col(c)).log())
            .otherwise(nw.lit(0.0))
            for c in channel_columns
        ]
        present = [
            nw.when(nw.col(c) > 0).then(nw.lit(1)).otherwise(nw.lit(0)) for c in channel_columns
        ]
        entropy = nw.sum_horizontal(*terms) if terms else nw.lit(0.0)
        finals += [nw.col(c) for c in channel_columns]
        finals += [
            (nw.sum_horizontal(*present) if present else nw.lit(0))
            .cast(nw.Int64)
            .alias("n_channels"),
            nw.when(total > 0)
            .then(entropy)
            .otherwise(nw.lit(_NAN))
            .cast(nw.Float64)
            .alias("channel_entropy"),
            nw.col("channel_switch_rate"),
        ]
    if layout.has_value:
        value, micros = nw.col("value"), nw.col("_value_micros")
        valued = ~value.is_null()
        split = timestamp > nw.lit(cutoff_end - VALUE_TREND_WINDOW)
        aggregates += [
            micro_sum(nw.when(valued).then(micros).otherwise(0)).alias("_value_sum"),
            count_where(valued).alias("_value_n"),
            micro_sum(nw.when(valued & split).then(micros).otherwise(0)).alias("_recent_sum"),
            count_where(valued & split).alias("_recent_n"),
            count_where((value < 0).fill_null(False)).alias("n_negative_values"),
        ]
        recent = micro_value("_recent_sum", "_recent_n")
        before = micro_value(
            nw.col("_value_sum") - nw.col("_recent_sum"), nw.col("_value_n") - nw.col("_recent_n")
        )
        finals += [
            micro_value("_value_sum", "_value_n").fill_null(_NAN).alias("value_mean"),
            nw.col("value_last").fill_null(_NAN).cast(nw.Float64),
            (recent - before).fill_null(_NAN).cast(nw.Float64).alias("value_trend"),
            nw.col("n_negative_values"),
        ]
    counts = [nw.col(c) for c in layout.columns[: len(layout.event_types) * len(layout.windows)]]
    counts += [nw.col(f"n_events_{label}") for label, _ in layout.windows]
    table = events.group_by("customer_id").agg(*aggregates)
    order = _event_order(layout)
    if layout.channels is not None:
        table = table.join(_switch_rates(events, order), on="customer_id", how="left")
    if layout.has_value:
        table = table.join(_last_values(events, order), on="customer_id", how="left")
    return table.select("customer_id", *counts, *finals)


def _event_order(layout: EngagementLayout) -> list[str]:
    """Time order of a customer's events, ties broken by channel, event type and value."""
    order = ["timestamp"]
    if layout.channels is not None:
        order.append("channel")
    order.append("event_type")
    if layout.has_value:
        order.append("value")
    return order


def _switch_rates(events: Any, order: list[str]) -> Any:
    """Share of consecutive channelled events (in time order) whose channel differs."""
    previous = nw.col("channel").shift(1).over("customer_id", order_by=order)
    return (
        events.filter(~nw.col("channel").is_null())
        .with_columns(_previous=previous)
        .group_by("customer_id")
        .agg(
            count_where(~nw.col("_previous").is_null()).alias("_pairs"),
            count_where((nw.col("_previous") != nw.col("channel")).fill_null(False)).alias(
                "_switches"
            ),
        )
        .select(
            "customer_id",
            nw.when(nw.col("_pairs") > 0)
            .then(nw.col("_switches") / nw.col("_pairs"))
            .otherwise(nw.lit(_NAN))
            .cast(nw.Float64)
            .alias("channel_switch_rate"),
        )
    )


def _last_values(events: Any, order: list[str]) -> Any:
    """The value of each customer's latest event that has one (ties: the order's last)."""
    following = nw.col("timestamp").shift(-1).over("customer_id", order_by=order)
    return (
        events.filter(~nw.col("value").is_null())
        .with_columns(_following=following)
        .group_by("customer_id")
        .agg(
            nw.when(nw.col("_following").is_null()).then(nw.col("value")).max().alias("value_last")
        )
    )


def engagement_features(
    events: Any,
    cutoff: Any,
    *,
    windows: Sequence[Any] = ("7D", "30D", "90D"),
    columns: Columns | None = None,
) -> Any:
    """Per-customer engagement at a cutoff: activity per window, recency, channels, values.

    Only events at or before the cutoff are used. A window ``w`` holds the events in
    ``(cutoff - w, cutoff]``; with a date cutoff and whole-day windows that is the last ``w``
    calendar days, the cutoff day included. Event types and channels are those seen by the
    cutoff, each named in snake case (``"Email Open"`` → ``email_open``).

    Parameters
    ----------
    events : DataFrame-like
        Event log (pandas, polars eager or lazy, pyarrow, DuckDB relation, ...) with customer
        id, timestamp and event type; optional ``channel`` and numeric ``value``.
    cutoff : str, date or datetime
        Only events at or before the cutoff are used; a date includes its whole day.
    windows : sequence of str or timedelta, default ("7D", "30D", "90D")
        Lengths of the count windows, each with a unit. Column suffixes are the length in
        days (``"2W"`` → ``14d``), or in hours when not a whole number of days.
    columns : Columns, optional
        Names of the caller's columns.

    Returns
    -------
    DataFrame
        One row per customer with an event at or before the cutoff:

        - ``n_<event_type>_<w>``: events of each type in each window (event types sorted,
          then windows in the order given); ``n_events_<w>``: all events in each window;
        - ``days_since_last_event``, ``days_since_first_event``: cutoff day minus the day of
          the last (first) event, in days;
        - with a ``channel`` column: ``n_channel_<name>``, events per channel up to the cutoff
          (sorted by name); ``n_channels``, distinct channels used; ``channel_entropy``, the
          Shannon entropy (natural log) of the customer's channel shares (0 for a single
          channel, NaN without any channelled event); ``channel_switch_rate``, the share of
          consecutive channelled events, in time order, whose channel differs (ties in time
          broken by channel, then event type, then value; NaN with fewer than two channelled
          events). Events with a missing channel are left out of all three;
        - with a ``value`` column (null or NaN means no value): ``value_mean``; ``value_last``,
          the value of the latest event that has one (same tie-break); ``value_trend``, the
          mean value over the last 30 days minus the mean before them (NaN when either has no
          value); ``n_negative_values``. Means are computed from exact integer sums of the
          values in micro-units (values are rounded to 1e-6 first, see
          :func:`vipml.features.rfm.micro_units`), so they are the same bit for bit in every
          run.

        Counts are Int64, the rest Float64. pandas input gives a frame indexed by
        ``customer_id``; other kinds give their own frame with a ``customer_id`` column (lazy
        inputs a lazy frame).

    Raises
    ------
    DataValidationError
        Bad input (see the data contract), a window without a unit or given twice, event
        types whose column names clash, or a cutoff before every event.

    Examples
    --------
    >>> import pandas as pd
    >>> ev = pd.DataFrame({
    ...     "customer_id": [1, 1, 1, 2],
    ...     "timestamp": pd.to_datetime(["2024-01-02", "2024-01-25", "2024-01-30", "2024-01-20"]),
    ...     "event_type": ["visit", "Email Open", "visit", "visit"],
    ...     "channel": ["web", "email", "web", "app"],
    ... })
    >>> eng = engagement_features(ev, cutoff="2024-01-31", windows=["7D", "30D"])
    >>> eng[["n_visit_7d", "n_visit_30d", "n_email_open_30d", "days_since_last_event"]]
                 n_visit_7d  n_visit_30d  n_email_open_30d  days_since_last_event
    customer_id
    1                     1            2                 1                    1.0
    2                     0            1                 0                   11.0
    >>> eng[["n_channels", "channel_entropy", "channel_switch_rate"]]
                 n_channels  channel_entropy  channel_switch_rate
    customer_id
    1                     2         0.636514                  1.0
    2                     1         0.000000                  NaN
    """
    log = prepare_events(events, columns)
    parsed = parse_windows(windows)
    cutoff_end = parse_cutoff(cutoff, tz_aware=log.tz_aware)
    if cutoff_end < log.first_timestamp:
        raise DataValidationError(
            f"cutoff={cutoff!r} is before every event (the first is at "
            f"{log.first_timestamp}). Choose a cutoff on or after the first event."
        )
    log = scan_once(log, cutoff_end)
    layout = engagement_layout(log, cutoff_end, parsed)
    return to_native_result(engagement_frame(log, cutoff_end, layout), log.kind)
