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

__all__ = ["EPOCH", "Freq", "day_number", "period_number", "period_of", "time_scale"]

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


def seconds_since_epoch(column: str = "timestamp") -> Any:
    """Expression: whole seconds between 1970-01-01 and a naive timestamp column."""
    return (nw.col(column) - nw.lit(EPOCH)).dt.total_seconds()


def day_number(column: str = "timestamp") -> Any:
    """Expression: the day number (days since 1970-01-01) of a naive timestamp column."""
    return seconds_since_epoch(column) // 86400


def period_number(freq: Freq, column: str = "timestamp") -> Any:
    """Expression: the integer purchase period of a timestamp column.

    Periods are those of pandas' ``to_period(freq)`` (and so of ``lifetimes``): calendar hours,
    days, Monday-to-Sunday weeks and calendar months.
    """
    _check_freq(freq)
    if freq in _SECONDS_PER_PERIOD:
        return seconds_since_epoch(column) // _SECONDS_PER_PERIOD[freq]
    if freq == "W":
        return (day_number(column) + _WEEK_SHIFT_DAYS) // 7
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
