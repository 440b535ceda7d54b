"""The data contract: checks of transaction and event logs, with errors that say what to do.

Every feature builder passes its input through :func:`prepare_transactions` or
:func:`prepare_events`. They accept any frame narwhals supports (pandas, polars, pyarrow,
DuckDB relations, ...), project it onto vipml's standard column names without touching the
caller's object, check it, and hand back a narwhals *lazy* frame that runs where the data lives:
polars stays polars, DuckDB stays DuckDB, and pandas or pyarrow go through polars' in-process
lazy engine, zero-copy through Arrow.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import narwhals.stable.v2 as nw
import pandas as pd

from vipml.data.columns import Columns
from vipml.data.parquet import is_parquet_source, scan_parquet
from vipml.errors import DataValidationError, DataWarning

__all__ = [
    "PreparedLog",
    "ReturnsPolicy",
    "as_timestamp",
    "parse_cutoff",
    "prepare_events",
    "prepare_transactions",
    "to_native_result",
]


ReturnsPolicy = Literal["net", "exclude", "error"]
_RETURNS_POLICIES = ("net", "exclude", "error")
_N_EXAMPLES = 5
_TRANSACTION_REQUIRED = ("customer_id", "timestamp", "amount")
_TRANSACTION_OPTIONAL = ("order_id", "channel", "category", "quantity")
_EVENT_REQUIRED = ("customer_id", "timestamp", "event_type")
_EVENT_OPTIONAL = ("channel", "value")


@dataclass(frozen=True)
class PreparedLog:
    """A checked log under vipml's standard column names.

    Attributes
    ----------
    frame : narwhals.LazyFrame
        The log, lazily: standard column names, naive UTC ``timestamp`` (microseconds).
    kind : str
        What the caller passed: ``"pandas"``, ``"polars"``, ``"polars-lazy"``, ``"pyarrow"``,
        ``"duckdb"`` or another narwhals backend name. Results go back in that kind.
    columns : tuple of str
        The standard columns present in ``frame``.
    tz_aware : bool
        Whether the caller's timestamps were time-zone aware (they are now UTC).
    first_timestamp, last_timestamp : datetime.datetime
        The earliest and latest timestamps in the log.
    """

    frame: Any
    kind: str
    columns: tuple[str, ...]
    tz_aware: bool
    first_timestamp: dt.datetime
    last_timestamp: dt.datetime


def prepare_transactions(
    transactions: Any,
    columns: Columns | None = None,
    *,
    returns: ReturnsPolicy = "net",
    check_duplicates: bool = True,
    name: str = "transactions",
) -> PreparedLog:
    """Check a transaction log and project it onto the standard columns.

    Parameters
    ----------
    transactions : DataFrame-like or path
        pandas, polars (eager or lazy), pyarrow table, DuckDB relation or PySpark DataFrame
        with at least the customer id, timestamp and amount columns; or Parquet files (a path,
        glob or list of paths, read by :func:`vipml.data.parquet.scan_parquet`).
    columns : Columns, optional
        Names of the caller's columns; defaults to the standard names.
    returns : {"net", "exclude", "error"}, default "net"
        Policy for negative amounts (returns). ``"net"`` keeps them: they are netted into
        their order (with ``order_id``) or their purchase period, and a period counts as a
        purchase only when it holds a positive amount. ``"exclude"`` drops negative rows
        before any feature is computed (the returns-share feature still sees them).
        ``"error"`` refuses them.
    check_duplicates : bool, default True
        Count exact duplicate rows and warn about them. The count costs one pass over the
        log (about a third of an RFM summary's time on large logs): production jobs on
        deduplicated data may turn it off.
    name : str, default "transactions"
        How the log is called in error messages.

    Returns
    -------
    PreparedLog

    Raises
    ------
    DataValidationError
        A missing column; null or empty customer ids; unparseable, missing or mixed naive and
        tz-aware timestamps; non-numeric, missing or infinite amounts; an empty log; negative
        amounts under ``returns="error"``.

    Warns
    -----
    DataWarning
        When the log holds exact duplicate rows (they are kept: say so with their count).

    Examples
    --------
    >>> import pandas as pd
    >>> tx = pd.DataFrame({"user": ["a", "b"], "timestamp": ["2024-01-02", "2024-01-05"],
    ...                    "amount": [10.0, 5.5]})
    >>> log = prepare_transactions(tx, Columns(customer_id="user"))
    >>> log.columns, log.kind
    (('customer_id', 'timestamp', 'amount'), 'pandas')
    """
    if returns not in _RETURNS_POLICIES:
        raise ValueError(f"returns must be one of {_RETURNS_POLICIES}, got {returns!r}.")
    columns = columns or Columns()
    frame, kind = _as_narwhals(transactions, name)
    frame, present = _project(frame, columns, _TRANSACTION_REQUIRED, _TRANSACTION_OPTIONAL, name)
    frame, tz_aware = _coerce_timestamp(frame, columns, name, kind)
    frame = _coerce_numeric(frame, "amount", columns, name, kind)
    lazy = _normalise(_to_lazy(frame, kind), tz_aware, numeric="amount")
    first, last = _check_rows(lazy, frame, columns, name, numeric="amount", returns=returns)
    if check_duplicates:
        _warn_duplicates(lazy, name)
    return PreparedLog(lazy, kind, present, tz_aware, first, last)


def prepare_events(
    events: Any,
    columns: Columns | None = None,
    *,
    check_duplicates: bool = True,
    name: str = "events",
) -> PreparedLog:
    """Check an engagement-event log and project it onto the standard columns.

    Parameters
    ----------
    events : DataFrame-like or path
        A frame (or Parquet files) with customer id, timestamp and event type columns;
        optional ``channel`` and a numeric ``value`` (e.g. a sentiment score, missing where an
        event has none).
    columns : Columns, optional
        Names of the caller's columns; defaults to the standard names.
    check_duplicates : bool, default True
        Count exact duplicate rows and warn about them.
    name : str, default "events"
        How the log is called in error messages.

    Returns
    -------
    PreparedLog

    Raises
    ------
    DataValidationError
        A missing column; null or empty customer ids or event types; unparseable, missing or
        mixed timestamps; a non-numeric or infinite ``value``; an empty log.

    Examples
    --------
    >>> import pandas as pd
    >>> ev = pd.DataFrame({"customer_id": [1, 1], "timestamp": pd.to_datetime(["2024-01-02",
    ...                    "2024-01-03"]), "event_type": ["visit", "email_open"]})
    >>> prepare_events(ev).columns
    ('customer_id', 'timestamp', 'event_type')
    """
    columns = columns or Columns()
    frame, kind = _as_narwhals(events, name)
    frame, present = _project(frame, columns, _EVENT_REQUIRED, _EVENT_OPTIONAL, name)
    frame, tz_aware = _coerce_timestamp(frame, columns, name, kind)
    if "value" in present:
        frame = _coerce_numeric(frame, "value", columns, name, kind)
    lazy = _normalise(
        _to_lazy(frame, kind), tz_aware, numeric="value" if "value" in present else None
    )
    first, last = _check_rows(lazy, frame, columns, name, numeric=None, returns="net")
    if check_duplicates:
        _warn_duplicates(lazy, name)
    return PreparedLog(lazy, kind, present, tz_aware, first, last)


def as_timestamp(value: Any, name: str) -> pd.Timestamp:
    """A naive timestamp (converted to UTC when tz-aware) from a date-like argument.

    Unlike :func:`parse_cutoff` it keeps the value as given: a date stays midnight, and the
    feature builders it is passed to read it as that whole day.

    Examples
    --------
    >>> as_timestamp("2025-06-30", "at")
    Timestamp('2025-06-30 00:00:00')
    >>> as_timestamp("2025-06-30T12:00+02:00", "at")
    Timestamp('2025-06-30 10:00:00')
    """
    if value is None:
        raise DataValidationError(f"{name} is required: pass a date such as '2025-06-30'.")
    stamp = _parse_time(value, name, "2025-06-30")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp


def _parse_time(value: Any, name: str, example: str) -> pd.Timestamp:
    """``pd.Timestamp(value)``, refusing what is not a time and NaT with a clear error."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"{name}={value!r} is not a date or timestamp; pass e.g. '{example}'."
        ) from exc
    if stamp is pd.NaT:
        raise DataValidationError(f"{name} is missing (NaT); pass a date such as '{example}'.")
    return stamp


def parse_cutoff(
    cutoff: Any, *, tz_aware: bool, name: str = "cutoff", whole_day: bool = True
) -> dt.datetime:
    """Turn a cutoff into the last instant it includes, as a naive UTC datetime.

    A cutoff given as a date (or a timestamp at exactly midnight) includes that whole day, as
    ``lifetimes`` does with ``freq="D"``: ``"1997-09-30"`` keeps every row of September 30th.
    A cutoff with a time of day includes rows up to that instant. With ``whole_day=False``
    (purchases counted per hour or finer, see
    :func:`vipml.features._periods.cutoff_end`) a midnight cutoff is that instant.

    Parameters
    ----------
    cutoff : str, date, datetime or pandas.Timestamp
        The cutoff. Time-zone aware cutoffs are converted to UTC.
    tz_aware : bool
        Whether the log's timestamps were time-zone aware (and are now UTC).
    name : str, default "cutoff"
        The argument's name in error messages.
    whole_day : bool, default True
        Whether a cutoff at midnight includes the day it starts.

    Returns
    -------
    datetime.datetime
        The last included instant (naive, UTC when the log was tz-aware).

    Examples
    --------
    >>> parse_cutoff("1997-09-30", tz_aware=False)
    datetime.datetime(1997, 9, 30, 23, 59, 59, 999999)
    """
    if cutoff is None:
        raise DataValidationError(f"{name} is required: pass the date features are computed at.")
    stamp = _parse_time(cutoff, name, "1997-09-30")
    if stamp.tzinfo is not None:
        if not tz_aware:
            raise DataValidationError(
                f"{name}={cutoff!r} is time-zone aware but the log's timestamps are naive. "
                "Pass a naive cutoff, or localise the timestamps first."
            )
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    if whole_day and stamp == stamp.normalize():
        stamp = stamp + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    return stamp.floor("us").to_pydatetime()


def to_native_result(result: Any, kind: str, *, index: str | None = "customer_id") -> Any:
    """Return a narwhals result in the caller's frame type.

    pandas callers (and Parquet paths) get a pandas DataFrame indexed by ``index`` (sorted),
    polars and pyarrow callers an eager frame of their kind sorted by ``index``, lazy callers
    (polars lazy, DuckDB, Spark) a lazy frame of their own backend, so the work stays where
    the data lives.
    """
    if kind in ("pandas", "pyarrow", "polars", "parquet"):
        if index is not None:
            result = result.sort(index)
        eager = result.collect(backend="polars" if kind == "polars" else "pandas")
        if kind in ("pandas", "parquet"):
            native = eager.to_native()
            return native.set_index(index) if index is not None else native
        if kind == "pyarrow":
            return eager.to_arrow()
        return eager.to_native()
    return result.to_native()


def _as_narwhals(obj: Any, name: str) -> tuple[Any, str]:
    if is_parquet_source(obj):
        # Files larger than memory: DuckDB streams them; the result comes back as pandas.
        return nw.from_native(scan_parquet(obj)), "parquet"
    if isinstance(obj, pd.Series):
        raise DataValidationError(f"{name} must be a DataFrame, got a pandas Series.")
    try:
        frame = nw.from_native(obj)
    except TypeError as exc:
        raise DataValidationError(
            f"{name} must be a DataFrame (pandas, polars, pyarrow, a DuckDB relation or another "
            f"frame narwhals supports); got {type(obj).__name__}."
        ) from exc
    implementation = frame.implementation
    if implementation.is_pandas():
        kind = "pandas"
    elif implementation.is_polars():
        kind = "polars" if isinstance(frame, nw.DataFrame) else "polars-lazy"
    elif implementation.is_pyarrow():
        kind = "pyarrow"
    else:
        kind = str(implementation).rsplit(".", 1)[-1].lower()
    return frame, kind


def _project(
    frame: Any,
    columns: Columns,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    name: str,
) -> tuple[Any, tuple[str, ...]]:
    available = list(frame.columns)
    missing = [c for c in required if columns.source_of(c) not in available]
    if missing:
        described = ", ".join(
            f"'{columns.source_of(c)}'"
            + (f" (standard column '{c}')" if columns.source_of(c) != c else "")
            for c in missing
        )
        raise DataValidationError(
            f"{name} is missing required column(s) {described}. Available columns: "
            f"{available}. Map your names with vipml.data.Columns, e.g. "
            f"Columns({missing[0]}='<your column>')."
        )
    present = tuple(required) + tuple(c for c in optional if columns.source_of(c) in available)
    projected = frame.select(nw.col(columns.source_of(c)).alias(c) for c in present)
    return projected, present


def _coerce_timestamp(frame: Any, columns: Columns, name: str, kind: str) -> tuple[Any, bool]:
    """Parse string timestamps; return the frame and whether the timestamps are tz-aware."""
    source = columns.source_of("timestamp")
    dtype = frame.collect_schema()["timestamp"]
    if kind == "pandas" and dtype in (nw.String, nw.Object):
        return _parse_pandas_timestamps(frame, source, name)
    if dtype == nw.String:
        try:
            frame = frame.with_columns(nw.col("timestamp").str.to_datetime())
            dtype = frame.collect_schema()["timestamp"]
        except Exception as exc:
            raise DataValidationError(
                f"Column '{source}' of {name} holds strings that could not be parsed as "
                f"timestamps ({exc}). Parse it to a datetime column first."
            ) from exc
    if dtype == nw.Datetime:
        aware = getattr(dtype, "time_zone", None) is not None
        if aware and isinstance(frame, nw.DataFrame):
            # Convert eagerly: DuckDB keeps time zones in the connection, not the data.
            utc = nw.col("timestamp").dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            frame = frame.with_columns(utc)
        return frame, aware
    if dtype == nw.Date:
        return frame, False
    raise DataValidationError(
        f"Column '{source}' of {name} has dtype {dtype}, not a datetime. Pass datetimes, dates "
        "or ISO-8601 strings."
    )


def _normalise(lazy: Any, tz_aware: bool, *, numeric: str | None) -> Any:
    """Naive UTC microsecond timestamps and float numbers: what the builders compute on."""
    timestamp = nw.col("timestamp")
    if tz_aware and lazy.collect_schema()["timestamp"].time_zone is not None:
        timestamp = timestamp.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    exprs = [timestamp.cast(nw.Datetime("us"))]
    if numeric is not None:
        exprs.append(nw.col(numeric).cast(nw.Float64))
    try:
        return lazy.with_columns(*exprs)
    except NotImplementedError as exc:  # Spark keeps the time zone in the session
        if not lazy.implementation.is_spark_like():
            raise
        raise DataValidationError(
            f"The timestamps are in the Spark session's time zone, not UTC ({exc}). vipml "
            "computes in UTC: build the session with .config('spark.sql.session.timeZone', "
            "'UTC') (as vipml.spark.local_session does), or pass TIMESTAMP_NTZ columns."
        ) from exc


def _parse_pandas_timestamps(frame: Any, source: str, name: str) -> tuple[Any, bool]:
    native = frame.to_native()
    raw = native["timestamp"]
    present = raw.notna()
    text = raw[present].astype(str)
    aware = text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True)
    if aware.any() and not aware.all():
        raise DataValidationError(
            f"Column '{source}' of {name} mixes naive and time-zone aware timestamps "
            f"({int((~aware).sum())} naive, {int(aware.sum())} aware; e.g. naive "
            f"{text[~aware].head(2).tolist()}, aware {text[aware].head(2).tolist()}). "
            "Localise the naive ones (or strip the zones) so all rows agree."
        )
    is_aware = bool(aware.any())
    parsed = pd.to_datetime(raw, errors="coerce", utc=is_aware, format="ISO8601")
    bad = present & parsed.isna()
    if bad.any():
        parsed = pd.to_datetime(raw, errors="coerce", utc=is_aware, format="mixed")
        bad = present & parsed.isna()
    if bad.any():
        examples = _format_pandas_examples(raw, bad)
        raise DataValidationError(
            f"Column '{source}' of {name} has {int(bad.sum())} value(s) that are not "
            f"timestamps: {examples}. Fix or drop those rows, or parse the column yourself "
            "(pd.to_datetime with an explicit format)."
        )
    if is_aware:
        parsed = parsed.dt.tz_localize(None)
    return nw.from_native(native.assign(timestamp=parsed)), is_aware


def _coerce_numeric(frame: Any, column: str, columns: Columns, name: str, kind: str) -> Any:
    source = columns.source_of(column)
    dtype = frame.collect_schema()[column]
    if dtype.is_numeric():
        return frame
    if kind == "pandas" and dtype in (nw.String, nw.Object):
        raw = frame.get_column(column).to_native()
        numeric = pd.to_numeric(raw, errors="coerce")
        bad = raw.notna() & numeric.isna()
        if not bad.any():
            return nw.from_native(frame.to_native().assign(**{column: numeric}))
        examples = _format_pandas_examples(raw, bad)
        raise DataValidationError(
            f"Column '{source}' of {name} must be numeric; {int(bad.sum())} row(s) are not "
            f"numbers: {examples}. Convert the column with pd.to_numeric and decide what those "
            "rows mean."
        )
    raise DataValidationError(
        f"Column '{source}' of {name} must be numeric, got dtype {dtype}. Cast it to a number."
    )


def _to_lazy(frame: Any, kind: str) -> Any:
    if isinstance(frame, nw.LazyFrame):
        return frame
    if kind == "polars":
        return frame.lazy()
    if kind in ("pandas", "pyarrow"):
        # In-memory logs run on polars' lazy engine, fed zero-copy through Arrow: on these
        # machines it builds the RFM summary of 1e7 rows faster than DuckDB and than a
        # hand-written DuckDB query (benchmarks/bench_features.py).
        return nw.from_native(frame.to_arrow()).lazy(backend="polars")
    return frame.lazy(backend="duckdb")


def _check_rows(
    lazy: Any,
    frame: Any,
    columns: Columns,
    name: str,
    *,
    numeric: str | None,
    returns: ReturnsPolicy,
) -> tuple[dt.datetime, dt.datetime]:
    """Run every row check in one pass; return the first and last timestamps."""
    schema = lazy.collect_schema()
    string_ids = schema["customer_id"] == nw.String
    checks: dict[str, Any] = {
        "n_rows": nw.len(),
        "first": nw.col("timestamp").min(),
        "last": nw.col("timestamp").max(),
    }
    problems: dict[str, tuple[str, Any, str]] = {}

    def add(key: str, mask: Any, column: str, message: str) -> None:
        checks[key] = mask.cast(nw.Int64).sum()  # Spark cannot sum booleans
        problems[key] = (column, mask, message)

    id_missing = nw.col("customer_id").is_null()
    if string_ids:
        id_missing = id_missing | (nw.col("customer_id") == "")
    add(
        "missing_id",
        id_missing,
        "customer_id",
        "null or empty customer ids. Drop those rows or fill in the customer they belong to.",
    )
    add(
        "missing_ts",
        nw.col("timestamp").is_null(),
        "timestamp",
        "missing timestamps. Drop those rows or fill in when they happened.",
    )
    if "event_type" in schema:
        event_missing = nw.col("event_type").is_null()
        if schema["event_type"] == nw.String:
            event_missing = event_missing | (nw.col("event_type") == "")
        add(
            "missing_event",
            event_missing,
            "event_type",
            "null or empty event types. Drop those rows or name the event.",
        )
    if numeric is not None:
        value = nw.col(numeric).cast(nw.Float64)
        add(
            "missing_num",
            value.is_null() | value.is_nan(),
            numeric,
            "missing (null or NaN) amounts. Drop those rows or fill in the amount; vipml "
            "never guesses a missing amount.",
        )
        add(
            "infinite_num",
            (value.abs() == float("inf")).fill_null(False),
            numeric,
            "infinite amounts. Fix the upstream computation or drop those rows.",
        )
        if returns == "error":
            add(
                "negative_num",
                (value < 0).fill_null(False),
                numeric,
                "negative amounts (returns) while returns='error'. Pass returns='net' to "
                "net them into their order or period, or returns='exclude' to leave them out.",
            )
    elif "value" in schema:
        add(
            "infinite_value",
            (nw.col("value").abs() == float("inf")).fill_null(False),
            "value",
            "infinite values. Use a finite score, or null where an event has none.",
        )
    counts = lazy.select(**checks).collect().row(0)
    found = dict(zip(checks, counts, strict=True))
    if found["n_rows"] == 0:
        raise DataValidationError(
            f"{name} is empty: no rows to compute features from. Check the filter or query "
            "that produced it."
        )
    for key, (column, mask, message) in problems.items():
        if found[key]:
            source = columns.source_of(column)
            examples = _examples(frame, mask)
            raise DataValidationError(
                f"Column '{source}' of {name} has {found[key]} row(s) with {message} "
                f"Examples: {examples}."
            )
    return found["first"], found["last"]


def _warn_duplicates(lazy: Any, name: str) -> None:
    n_rows = lazy.select(nw.len()).collect().item()
    n_unique = lazy.unique().select(nw.len()).collect().item()
    if n_unique < n_rows:
        warnings.warn(
            f"{name} has {n_rows - n_unique} exact duplicate row(s) (same customer, timestamp "
            "and every other column). They are kept and counted as separate rows; drop them "
            "first (e.g. df.drop_duplicates()) if they are double-loaded records.",
            DataWarning,
            stacklevel=4,
        )


def _examples(frame: Any, mask: Any) -> str:
    if isinstance(frame, nw.DataFrame):
        rows = frame.with_row_index("row").filter(mask).head(_N_EXAMPLES).rows(named=True)
    else:
        rows = frame.filter(mask).head(_N_EXAMPLES).collect().rows(named=True)
    return "; ".join(
        ", ".join(f"{key}={value!r}" for key, value in row.items() if value is not None)
        or "all values missing"
        for row in rows
    )


def _format_pandas_examples(raw: pd.Series, bad: pd.Series) -> str:
    offending = raw[bad].head(_N_EXAMPLES)
    return ", ".join(f"row {label!r}: {value!r}" for label, value in offending.items())
