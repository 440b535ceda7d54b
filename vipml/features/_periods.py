"""Purchase periods and time units: the portable arithmetic behind every feature builder.

Timestamps become integer period numbers with expressions every narwhals backend runs
(pandas through DuckDB, polars, DuckDB, Spark). No 30-day months are hidden anywhere: hours,
days and weeks convert into one another exactly, calendar months only into months.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import narwhals.stable.v2 as nw

from vipml.errors import DataValidationError

__all__ = [
    "EPOCH",
    "Freq",
    "calendar_arithmetic",
    "civil_days",
    "day_number",
    "period_number",
    "period_of",
    "time_scale",
]

Freq = Literal["H", "D", "W", "M"]

EPOCH = dt.datetime(1970, 1, 1)
_SECONDS_PER_PERIOD = {"H": 3600, "D": 86400}
_DAYS_PER_UNIT = {"H": 1 / 24, "D": 1.0, "W": 7.0}
# 1970-01-01 is a Thursday; pandas' weekly periods ("W" = "W-SUN") run Monday to Sunday.
_WEEK_SHIFT_DAYS = 3


def _check_freq(freq: str, argument: str = "freq") -> None:
    if freq not in ("H", "D", "W", "M"):
        raise DataValidationError(
            f"{argument}={freq!r} is not supported; use 'H' (hours), 'D' (days), 'W' (weeks, "
            "Monday to Sunday) or 'M' (calendar months)."
        )


def calendar_arithmetic(frame: Any) -> bool:
    """Whether a lazy frame's engine needs day numbers from calendar fields (Spark does).

    Spark has no duration-to-seconds conversion, so its day numbers are computed from the
    year, day of year and time of day (:func:`civil_days`); elsewhere a timestamp difference
    is several times faster.
    """
    return frame.implementation.is_spark_like()


def civil_days(column: str = "timestamp") -> Any:
    """Expression: days since 1970-01-01 from the year and day of year (any engine).

    Exact integer arithmetic on the proleptic Gregorian calendar: 365 days a year plus the
    leap days between 1970 and the timestamp's year.
    """
    year = nw.col(column).dt.year().cast(nw.Int64)
    before = year - 1
    leap_days = before // 4 - before // 100 + before // 400 - 477  # 477 leap years before 1970
    return (year - 1970) * 365 + leap_days + nw.col(column).dt.ordinal_day().cast(nw.Int64) - 1


def seconds_since_epoch(column: str = "timestamp", *, calendar: bool = False) -> Any:
    """Expression: whole seconds between 1970-01-01 and a naive timestamp column.

    With ``calendar=True`` they are computed from calendar fields (see
    :func:`calendar_arithmetic`), with the same result.
    """
    if not calendar:
        return (nw.col(column) - nw.lit(EPOCH)).dt.total_seconds()
    clock = nw.col(column).dt
    time_of_day = clock.hour() * 3600 + clock.minute() * 60 + clock.second()
    return civil_days(column) * 86400 + time_of_day.cast(nw.Int64)


def day_number(column: str = "timestamp", *, calendar: bool = False) -> Any:
    """Expression: the day number (days since 1970-01-01) of a naive timestamp column."""
    if calendar:
        return civil_days(column)
    return seconds_since_epoch(column) // 86400


def period_number(freq: Freq, column: str = "timestamp", *, calendar: bool = False) -> Any:
    """Expression: the integer purchase period of a timestamp column.

    Periods are those of pandas' ``to_period(freq)`` (and so of ``lifetimes``): calendar hours,
    days, Monday-to-Sunday weeks and calendar months. ``calendar=True`` derives them from
    calendar fields, for engines without duration arithmetic (see :func:`calendar_arithmetic`).
    """
    _check_freq(freq)
    if freq == "D":
        return day_number(column, calendar=calendar)
    if freq == "H":
        return seconds_since_epoch(column, calendar=calendar) // 3600
    if freq == "W":
        return (day_number(column, calendar=calendar) + _WEEK_SHIFT_DAYS) // 7
    return (nw.col(column).dt.year() - 1970) * 12 + nw.col(column).dt.month() - 1


def period_of(moment: dt.datetime, freq: Freq) -> int:
    """The period number of one instant, computed exactly like :func:`period_number`."""
    _check_freq(freq)
    if freq == "M":
        return (moment.year - 1970) * 12 + moment.month - 1
    seconds = (moment - EPOCH) // dt.timedelta(seconds=1)
    if freq in _SECONDS_PER_PERIOD:
        return seconds // _SECONDS_PER_PERIOD[freq]
    return (seconds // 86400 + _WEEK_SHIFT_DAYS) // 7


def time_scale(freq: Freq, time_unit: str | None) -> float:
    """Length of one ``freq`` period in ``time_unit``; refuses conversions with no exact ratio.

    >>> time_scale("D", "W")
    0.14285714285714285
    """
    _check_freq(freq)
    if time_unit is None or time_unit == freq:
        return 1.0
    _check_freq(time_unit, "time_unit")
    if "M" in (freq, time_unit):
        raise DataValidationError(
            f"freq={freq!r} and time_unit={time_unit!r} have no exact ratio (months differ in "
            "length). Count and measure in months together (freq='M', time_unit='M'), or use "
            "hours, days and weeks."
        )
    return _DAYS_PER_UNIT[freq] / _DAYS_PER_UNIT[time_unit]
