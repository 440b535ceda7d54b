"""Purchase periods and time units: the portable arithmetic behind every feature builder.

Timestamps become integer period numbers with expressions every narwhals backend runs
(pandas through DuckDB, polars, DuckDB, Spark). No 30-day months are hidden anywhere: seconds,
minutes, hours, days and weeks convert into one another exactly, calendar months, quarters and
years only into one another. Public functions accept pandas' spellings of the periods
(:data:`FREQ_ALIASES`) and turn them into canonical codes with :func:`canonical_freq`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import narwhals.stable.v2 as nw

from vipml.data.validate import parse_cutoff
from vipml.errors import DataValidationError

__all__ = [
    "EPOCH",
    "FREQ_ALIASES",
    "Freq",
    "calendar_arithmetic",
    "canonical_freq",
    "civil_days",
    "cutoff_instant",
    "day_number",
    "period_number",
    "period_of",
    "time_scale",
]

#: Canonical period codes: seconds, minutes, hours, days, Monday-to-Sunday weeks, calendar
#: months, quarters and years.
Freq = Literal["s", "min", "H", "D", "W", "M", "Q", "Y"]

#: Every accepted spelling of a period, as pandas spells it today (period aliases such as
#: ``"h"``, ``"M"``, ``"Y"`` and offset aliases such as ``"ME"``, ``"QE"``, ``"YE"``), plus the
#: legacy upper-case ``"H"``, mapped to its canonical code. Month, quarter and year periods are
#: calendar periods whatever the anchor (``"MS"`` and ``"ME"`` count the same months).
FREQ_ALIASES: dict[str, str] = {
    "s": "s",
    "min": "min",
    "h": "H",
    "H": "H",
    "D": "D",
    "W": "W",
    "W-SUN": "W",
    "M": "M",
    "ME": "M",
    "MS": "M",
    "Q": "Q",
    "QE": "Q",
    "QS": "Q",
    "Q-DEC": "Q",
    "QE-DEC": "Q",
    "QS-JAN": "Q",
    "Y": "Y",
    "YE": "Y",
    "YS": "Y",
    "Y-DEC": "Y",
    "YE-DEC": "Y",
    "YS-JAN": "Y",
}

EPOCH = dt.datetime(1970, 1, 1)
_SECONDS_PER_PERIOD = {"s": 1, "min": 60, "H": 3600, "D": 86400}
_DAYS_PER_UNIT = {"s": 1 / 86400, "min": 1 / 1440, "H": 1 / 24, "D": 1.0, "W": 7.0}
_MONTHS_PER_UNIT = {"M": 1, "Q": 3, "Y": 12}
#: Periods shorter than a day: a cutoff at midnight is that instant, not the whole day.
SUB_DAILY = frozenset({"s", "min", "H"})
# 1970-01-01 is a Thursday; pandas' weekly periods ("W" = "W-SUN") run Monday to Sunday.
_WEEK_SHIFT_DAYS = 3
_SPELLINGS = (
    "'s' (seconds), 'min' (minutes), 'h' (hours), 'D' (days), 'W' (weeks, Monday to Sunday), "
    "'M' or 'ME' (calendar months), 'Q' or 'QE' (quarters), 'Y' or 'YE' (years)"
)


def canonical_freq(
    freq: Any, argument: str = "freq", allowed: tuple[str, ...] | None = None
) -> Freq:
    """The canonical code of a period alias (``"h"`` -> ``"H"``, ``"ME"`` -> ``"M"``, ...).

    Parameters
    ----------
    freq : str
        A period alias (see :data:`FREQ_ALIASES`).
    argument : str, default "freq"
        The argument's name, for the error message.
    allowed : tuple of str, optional
        Canonical codes the caller supports (all by default).

    Returns
    -------
    str
        The canonical code.

    Raises
    ------
    DataValidationError
        Unknown alias, or a period the caller does not support.

    Examples
    --------
    >>> canonical_freq("h"), canonical_freq("ME"), canonical_freq("YE")
    ('H', 'M', 'Y')
    """
    code = FREQ_ALIASES.get(freq) if isinstance(freq, str) else None
    if code is None or (allowed is not None and code not in allowed):
        supported = _SPELLINGS if allowed is None else ", ".join(repr(c) for c in allowed)
        hint = (
            " Weeks ending on another day than Sunday are not supported."
            if isinstance(freq, str) and freq.upper().startswith("W-")
            else ""
        )
        raise DataValidationError(f"{argument}={freq!r} is not supported; use {supported}.{hint}")
    return code  # type: ignore[return-value]


def cutoff_instant(cutoff: Any, *, tz_aware: bool, freq: str, name: str = "cutoff") -> dt.datetime:
    """The last instant a cutoff includes, for purchases counted per ``freq`` period.

    As :func:`vipml.data.validate.parse_cutoff`: a cutoff with a time of day is that instant,
    and with daily or longer periods a date (or a timestamp at exactly midnight) includes its
    whole day. With periods shorter than a day (``"s"``, ``"min"``, ``"H"``) a midnight cutoff
    is the instant midnight, as in ``lifetimes``, whose observation end is the period holding
    that instant: ``"2024-01-29"`` with hourly periods ends at 2024-01-29 00:00, and ``T`` is
    counted to the hour that starts then.

    Examples
    --------
    >>> cutoff_instant("2024-01-29", tz_aware=False, freq="D")
    datetime.datetime(2024, 1, 29, 23, 59, 59, 999999)
    >>> cutoff_instant("2024-01-29", tz_aware=False, freq="H")
    datetime.datetime(2024, 1, 29, 0, 0)
    """
    whole_day = canonical_freq(freq) not in SUB_DAILY
    return parse_cutoff(cutoff, tz_aware=tz_aware, name=name, whole_day=whole_day)


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

    Periods are those of pandas' ``to_period(freq)`` (and so of ``lifetimes``): calendar
    seconds, minutes, hours, days, Monday-to-Sunday weeks, months, quarters and years.
    ``calendar=True`` derives them from calendar fields, for engines without duration
    arithmetic (see :func:`calendar_arithmetic`).
    """
    freq = canonical_freq(freq)
    if freq == "D":
        return day_number(column, calendar=calendar)
    if freq in _SECONDS_PER_PERIOD:
        return seconds_since_epoch(column, calendar=calendar) // _SECONDS_PER_PERIOD[freq]
    if freq == "W":
        return (day_number(column, calendar=calendar) + _WEEK_SHIFT_DAYS) // 7
    months = (nw.col(column).dt.year() - 1970) * 12 + nw.col(column).dt.month() - 1
    return months // _MONTHS_PER_UNIT[freq]


def period_of(moment: dt.datetime, freq: Freq) -> int:
    """The period number of one instant, computed exactly like :func:`period_number`."""
    freq = canonical_freq(freq)
    if freq in _MONTHS_PER_UNIT:
        return ((moment.year - 1970) * 12 + moment.month - 1) // _MONTHS_PER_UNIT[freq]
    seconds = (moment - EPOCH) // dt.timedelta(seconds=1)
    if freq in _SECONDS_PER_PERIOD:
        return seconds // _SECONDS_PER_PERIOD[freq]
    return (seconds // 86400 + _WEEK_SHIFT_DAYS) // 7


def time_scale(freq: Freq, time_unit: str | None) -> float:
    """Length of one ``freq`` period in ``time_unit``; refuses conversions with no exact ratio.

    Seconds, minutes, hours, days and weeks convert into one another, and months, quarters
    and years into one another; a calendar period never converts into days (months differ in
    length).

    >>> time_scale("D", "W")
    0.14285714285714285
    >>> time_scale("Q", "M")
    3.0
    """
    freq = canonical_freq(freq)
    if time_unit is None:
        return 1.0
    time_unit = canonical_freq(time_unit, "time_unit")
    if time_unit == freq:
        return 1.0
    if (freq in _MONTHS_PER_UNIT) != (time_unit in _MONTHS_PER_UNIT):
        raise DataValidationError(
            f"freq={freq!r} and time_unit={time_unit!r} have no exact ratio (months differ in "
            "length). Count and measure calendar periods together (months, quarters, years), "
            "or use seconds, minutes, hours, days and weeks."
        )
    if freq in _MONTHS_PER_UNIT:
        return _MONTHS_PER_UNIT[freq] / _MONTHS_PER_UNIT[time_unit]
    return _DAYS_PER_UNIT[freq] / _DAYS_PER_UNIT[time_unit]
