"""Per-customer feature state, updated one transaction or engagement event at a time.

A :class:`CustomerState` holds what a customer's history contributes to the batch features
(:func:`~vipml.features.rfm_summary`, :func:`~vipml.features.purchase_cycle_features`,
:func:`~vipml.features.engagement_features`) in a compact form, and evaluates them *as of* any
moment ``at`` on or after the latest event it has seen: T, days since the last purchase and
the window counts move with ``at`` without new events. The features are exactly those of the
batch builders over the same rows, bit for bit: money and event values are summed in integer
micro-units (:func:`vipml.features.rfm.micro_units`), gap statistics from exact integer sums,
and every float is computed with the batch builders' documented operations. Two exceptions
agree to the last bit or two (within 1e-15 relative), not always bit for bit, because of
the batch engine (polars, which runs pandas input): ``channel_entropy`` is a sum of one term
per channel, which polars' lazy ``sum_horizontal`` adds in an order of its own; and
``spend_last_window``, ``spend_prev_window`` and ``spend_trend`` are micro-unit sums divided
by one million, which polars computes as a product with the reciprocal whenever the table
has two rows or more (``21620000 / 1e6`` gives ``21.619999999999997``), while online states
divide, giving the correctly rounded quotient the batch docstrings promise.

What a state keeps
------------------
* Purchases, for the whole history: net spend per purchase period of the rows without an order
  id, and each order's net amount, first purchase row and first row (returns are netted into
  their order or period as ``returns="net"`` does). This is what RFM and the gap statistics
  (including the median gap) need; it grows with the number of purchase periods and orders,
  not with the number of rows.
* Totals: bought and returned micro-units and the number of returns; events per channel, the
  value sum, count and negatives, the first and last event, the latest valued event.
* The rows of the last ``retention`` (default: twice the cycle window, at least the longest
  engagement window and the 30 days of ``value_trend``; 180 days with the defaults), which the
  windowed features and the idempotency check need. Older rows are dropped; the channel
  switches among the dropped events are kept as a count and the last dropped channel.

Late and duplicate rows (the rule)
----------------------------------
* A row identical in every standard column to one the state holds (same timestamp, amount,
  order id, channel, category and quantity for a transaction; same timestamp, event type,
  channel and value for an event) is a redelivery: it is ignored and ``update`` returns
  False. Batch builders count exact duplicate rows of a log as separate rows (and warn about
  them), so streamed features equal batch features over the log without its exact duplicate
  rows. A history loaded with :func:`states_from_logs` keeps its duplicate rows by default
  (CDNOW, with dates for timestamps, holds genuine repeated purchases), giving the batch
  features exactly; a source whose distinct rows can coincide in every column should
  stream an ``order_id`` that tells them apart.
* A row older than the latest timestamp the state has seen (its *watermark*) but within the
  retention is applied exactly where it belongs in time: the state is the same whatever order
  the rows arrived in.
* A row at or before ``watermark - retention`` is refused with :class:`LateEventError` and
  changes nothing: the state no longer holds the rows needed to tell whether it is a
  duplicate or to place it in the channel sequence, and it never guesses. Rebuild the state
  from the logs (:func:`states_from_logs`) or configure a longer ``retention``.

Timestamps are taken as UTC: time-zone aware ones are converted, naive ones kept, and both are
truncated to microseconds as the batch builders do. Features are evaluated at an ``at`` read
like a batch cutoff (a date, or a timestamp at midnight, includes that whole day).
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import heapq
import json
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import narwhals.stable.v2 as nw
import numpy as np
import pandas as pd

from vipml.data.columns import Columns
from vipml.data.validate import (
    ReturnsPolicy,
    parse_cutoff,
    prepare_events,
    prepare_transactions,
)
from vipml.errors import DataValidationError, DataWarning
from vipml.features._periods import (
    EPOCH,
    SUB_DAILY,
    Freq,
    canonical_freq,
    period_of,
    time_scale,
)
from vipml.features.cycle import (
    _DAYS_PER_PERIOD,
    CYCLE_COLUMNS,
    days_per_period,
    parse_duration,
    snake_case,
)
from vipml.features.engagement import (
    VALUE_TREND_WINDOW,
    EngagementLayout,
    engagement_layout,
    parse_windows,
)
from vipml.features.rfm import MICRO

__all__ = [
    "RFM_COLUMNS",
    "CustomerState",
    "LateEventError",
    "OnlineConfig",
    "cycle_table",
    "engagement_table",
    "layout_from_events",
    "rfm_table",
    "states_from_logs",
]

#: Columns of :func:`rfm_table`, in order.
RFM_COLUMNS: tuple[str, ...] = ("frequency", "recency", "T", "monetary_value")
#: Version of the serialised state (:meth:`CustomerState.to_bytes`).
STATE_FORMAT = 1

_NAN = float("nan")
_US = dt.timedelta(microseconds=1)
_US_PER_SECOND = 1_000_000
_US_PER_DAY = 86_400 * _US_PER_SECOND
_RETURNS_POLICIES = ("net", "exclude", "error")
_TRANSACTION_FIELDS = ("order_id", "channel", "category", "quantity")


#: Purchase periods an online state counts in (pandas' spellings are accepted, e.g. "h").
_ONLINE_FREQS = ("H", "D", "W", "M")


class LateEventError(DataValidationError):
    """A row is older than what a customer's online state retains; it was not applied."""


@dataclass(frozen=True)
class OnlineConfig:
    """How online states count purchases and how much recent history they retain.

    Parameters
    ----------
    freq : {"h", "D", "W", "M"}, default "D"
        Purchase period, as in :func:`~vipml.features.rfm_summary` (cycle features refuse "M";
        pandas' other spellings such as "H" or "ME" are accepted and stored canonically).
    time_unit : {"h", "D", "W", "M"} or None, default "W"
        Unit of ``recency`` and ``T`` (None: ``freq``).
    window : str or timedelta, default "90D"
        Window of the purchase-cycle momentum features.
    windows : sequence of str or timedelta, default ("7D", "30D", "90D")
        Engagement count windows.
    returns : {"net", "exclude", "error"}, default "net"
        Policy for negative amounts, as in the batch builders.
    retention : str or timedelta, optional
        How far behind its latest row a state keeps rows (and accepts late ones). The default
        and minimum is the longest of twice ``window``, the longest of ``windows`` and 30 days.

    Examples
    --------
    >>> OnlineConfig().retention_us // 86_400_000_000
    180
    """

    freq: Freq = "D"
    time_unit: Freq | None = "W"
    window: Any = "90D"
    windows: tuple[Any, ...] = ("7D", "30D", "90D")
    returns: ReturnsPolicy = "net"
    retention: Any = None
    window_us: int = field(init=False, repr=False, compare=False)
    retention_us: int = field(init=False, repr=False, compare=False)
    scale: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "freq", canonical_freq(self.freq, allowed=_ONLINE_FREQS))
        if self.time_unit is not None:
            unit = canonical_freq(self.time_unit, "time_unit", allowed=_ONLINE_FREQS)
            object.__setattr__(self, "time_unit", unit)
        if self.returns not in _RETURNS_POLICIES:
            raise ValueError(f"returns must be one of {_RETURNS_POLICIES}, got {self.returns!r}.")
        scale = time_scale(self.freq, self.time_unit)
        window = parse_duration(self.window, "window")
        spans = [span for _, span in parse_windows(self.windows)]
        needed = max(2 * window, max(spans), VALUE_TREND_WINDOW)
        retention = (
            needed if self.retention is None else parse_duration(self.retention, "retention")
        )
        if retention < needed:
            raise ValueError(
                f"retention={self.retention!r} is shorter than the features need ({needed}: "
                "twice the cycle window, the longest engagement window and 30 days); pass at "
                f"least {needed.days}D or leave it unset."
            )
        object.__setattr__(self, "windows", tuple(self.windows))
        object.__setattr__(self, "window_us", window // _US)
        object.__setattr__(self, "retention_us", retention // _US)
        object.__setattr__(self, "scale", scale)

    def fingerprint(self) -> list[Any]:
        """What a serialised state depends on: purchase period, returns policy, retention."""
        return [self.freq, self.returns, self.retention_us]


# -- conversions ------------------------------------------------------------------------------


def _native(value: Any) -> Any:
    """A JSON-able Python scalar (numpy scalars unwrapped); NaN and pandas NA become None."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _microseconds(value: Any, name: str) -> int:
    """Microseconds since 1970-01-01 (UTC) of a timestamp, truncated like the batch logs."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"{name}={value!r} is not a timestamp; pass a datetime or an ISO-8601 string."
        ) from exc
    if stamp is pd.NaT:
        raise DataValidationError(f"{name} is missing; pass when the row happened.")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.value // 1000


def _instant(at: Any, *, whole_day: bool = True) -> int:
    """Microseconds of the last instant a cutoff-like ``at`` includes (see ``parse_cutoff``).

    ``whole_day=False`` (purchases counted per hour or finer) reads a midnight as that instant.
    """
    if isinstance(at, pd.Timestamp) and at is not pd.NaT:
        # The common case when streaming, without parse_cutoff's string handling.
        if at.tzinfo is not None:
            at = at.tz_convert("UTC").tz_localize(None)
        nanoseconds = at.value
        midnight = nanoseconds % (_US_PER_DAY * 1000) == 0
        end_of_day = (_US_PER_DAY - 1) if midnight and whole_day else 0
        return nanoseconds // 1000 + end_of_day
    try:
        aware = pd.Timestamp(at).tzinfo is not None
    except (TypeError, ValueError):
        aware = False  # parse_cutoff says what is wrong
    end = parse_cutoff(at, tz_aware=aware, name="at", whole_day=whole_day)
    return (end - EPOCH) // _US


def _purchase_instant(at: Any, config: OnlineConfig) -> int:
    """``at`` read as the batch purchase builders read a cutoff with ``config.freq``."""
    return _instant(at, whole_day=config.freq not in SUB_DAILY)


def _as_datetime(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=us)


def _micros(value: float) -> int:
    """Integer millionths of a float, halves away from zero (as ``micro_units`` computes)."""
    scaled = value * MICRO
    if scaled < 0:
        return -math.floor(-scaled + 0.5)
    return math.floor(scaled + 0.5)


def _number(value: Any, name: str, *, required: bool) -> float | None:
    """A finite float from a record field; None for a missing optional one (null or NaN)."""
    value = _native(value)
    if value is None:
        if required:
            raise DataValidationError(
                f"{name} is missing (null or NaN); vipml never guesses a missing {name}. Pass "
                "a number."
            )
        return None
    if isinstance(value, bool | str | bytes) or not isinstance(value, int | float):
        raise DataValidationError(
            f"{name}={value!r} ({type(value).__name__}) must be a number (int or float)."
        )
    if math.isinf(value):
        raise DataValidationError(f"{name}={value} is infinite; pass a finite number.")
    return float(value)


def _period(us: int, freq: Freq) -> int:
    """The purchase period of a timestamp in microseconds (as ``period_number`` computes it)."""
    if freq == "M":
        return period_of(_as_datetime(us), "M")
    seconds = us // _US_PER_SECOND
    if freq == "H":
        return seconds // 3600
    if freq == "D":
        return seconds // 86400
    return (seconds // 86400 + 3) // 7


@functools.lru_cache(maxsize=4096)
def _name(value: Any) -> str:
    """:func:`~vipml.features.cycle.snake_case`, remembered (event types and channels repeat)."""
    return snake_case(value)


def _channel_key(channel: Any) -> tuple[Any, ...]:
    """Sort key of a channel: missing channels first, as the batch builders order them."""
    return (0,) if channel is None else (1, channel)


def _event_sort_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    ts, channel, event_type, value = row
    return (ts, _channel_key(channel), event_type, (0,) if value is None else (1, value))


def _row_time(row: tuple[Any, ...]) -> int:
    return row[0]


def _canonical(row: list[Any]) -> tuple[int, str]:
    """A total order of transaction rows: time, then the rest of the row as JSON."""
    return row[0], json.dumps(row[1:])


def _net_purchase_periods(
    loose: Iterable[tuple[int, int, bool]],
    orders: Iterable[tuple[int | None, int, int]],
    freq: Freq,
) -> list[tuple[int, int]]:
    """Sorted ``(period, spend_micros)`` of purchase periods, as ``purchase_periods`` does.

    ``loose`` holds ``(period, micros, purchase)`` for rows without an order id, ``orders``
    ``(purchased_at, first_seen, micros)`` per order (``purchased_at`` None when the order
    holds no purchase row).
    """
    periods: dict[int, list[Any]] = {}
    for period, micros, purchase in loose:
        entry = periods.setdefault(period, [0, False])
        entry[0] += micros
        entry[1] = entry[1] or purchase
    for purchased_at, first_seen, micros in orders:
        stamp = first_seen if purchased_at is None else purchased_at
        entry = periods.setdefault(_period(stamp, freq), [0, False])
        entry[0] += micros
        entry[1] = entry[1] or (purchased_at is not None and micros >= 0)
    return sorted((period, spend) for period, (spend, purchase) in periods.items() if purchase)


def _window_periods(
    rows: Iterable[tuple[Any, ...]], start: int, end: int, freq: Freq, returns: ReturnsPolicy
) -> list[tuple[int, int]]:
    """Purchase periods among raw rows in ``(start, end]``, netted within those rows only."""
    loose: dict[int, list[Any]] = {}
    orders: dict[Any, list[Any]] = {}
    for ts, amount, order_id, *_ in rows:
        if not start < ts <= end or (returns == "exclude" and amount < 0):
            continue
        _add_purchase_row(loose, orders, ts, amount, order_id, freq, returns)
    return _net_purchase_periods(
        ((p, m, b) for p, (m, b) in loose.items()), (tuple(o) for o in orders.values()), freq
    )


def _add_purchase_row(
    loose: dict[int, list[Any]],
    orders: dict[Any, list[Any]],
    ts: int,
    amount: float,
    order_id: Any,
    freq: Freq,
    returns: ReturnsPolicy,
) -> None:
    micros, purchase = _micros(amount), amount >= 0
    if order_id is not None and returns != "exclude":
        order = orders.get(order_id)
        if order is None:
            orders[order_id] = [ts if purchase else None, ts, micros]
            return
        if purchase and (order[0] is None or ts < order[0]):
            order[0] = ts
        order[1] = min(order[1], ts)
        order[2] += micros
        return
    entry = loose.setdefault(_period(ts, freq), [0, False])
    entry[0] += micros
    entry[1] = entry[1] or purchase


def _median(values: list[float]) -> float:
    """Median with linear interpolation between the middle values (polars' arithmetic)."""
    ordered = sorted(values)
    middle = (len(ordered) - 1) // 2
    low = ordered[middle]
    if len(ordered) % 2:
        return low
    return low + (ordered[middle + 1] - low) * 0.5


def _mean_micros(total: int, count: int) -> float:
    return float(total) / (float(count) * float(MICRO)) if count > 0 else _NAN


def _sort_ids(ids: Iterable[Any]) -> list[Any]:
    return sorted(ids, key=lambda value: (type(value).__name__, value))


# -- the state --------------------------------------------------------------------------------


class CustomerState:
    """One customer's feature state, updated one transaction or event at a time.

    Parameters
    ----------
    customer_id : hashable
        The customer.
    config : OnlineConfig, optional
        Purchase period, windows, returns policy and retention (default ``OnlineConfig()``).

    Attributes
    ----------
    watermark : int or None
        Latest timestamp applied, in microseconds since 1970-01-01 (None before any row).

    Examples
    --------
    >>> state = CustomerState("a")
    >>> state.update({"timestamp": "2024-01-01 10:00", "amount": 10.0})
    True
    >>> state.update({"timestamp": "2024-01-15 09:00", "amount": 30.0})
    True
    >>> state.update({"timestamp": "2024-01-15 09:00", "amount": 30.0})  # redelivered
    False
    >>> state.update({"timestamp": "2024-01-20", "event_type": "visit", "channel": "web"})
    True
    >>> features = state.features("2024-01-29")
    >>> features["frequency"], features["T"], features["monetary_value"]
    (1.0, 4.0, 30.0)
    >>> features["days_since_last_purchase"], features["count_last_window"]
    (14.0, 2)
    >>> state.features("2024-02-29")["days_since_last_purchase"]
    45.0
    """

    __slots__ = (
        "_best_value",
        "_bought",
        "_channel_counts",
        "_event_keys",
        "_event_rows",
        "_first_event",
        "_last_event",
        "_loose",
        "_n_channelled",
        "_n_negative",
        "_n_returns",
        "_orders",
        "_returned",
        "_sealed_channel",
        "_sealed_switches",
        "_tx_keys",
        "_tx_rows",
        "_value_n",
        "_value_sum",
        "config",
        "customer_id",
        "watermark",
    )

    def __init__(self, customer_id: Any, config: OnlineConfig | None = None) -> None:
        self.customer_id = _native(customer_id)
        self.config = config or OnlineConfig()
        self.watermark: int | None = None
        # Purchases over the whole history.
        self._loose: dict[int, list[Any]] = {}
        self._orders: dict[Any, list[Any]] = {}
        self._returned = self._bought = self._n_returns = 0
        # Retained raw transaction rows: (ts, amount, order_id, channel, category, quantity).
        self._tx_rows: list[tuple[Any, ...]] = []
        self._tx_keys: set[tuple[Any, ...]] = set()
        # Events: totals, and the retained rows (ts, channel, event_type, value).
        self._first_event: int | None = None
        self._last_event: int | None = None
        self._channel_counts: dict[Any, int] = {}
        self._n_channelled = 0
        self._sealed_switches = 0
        self._sealed_channel: Any = None
        self._value_sum = self._value_n = self._n_negative = 0
        self._best_value: tuple[Any, ...] | None = None
        self._event_rows: list[tuple[Any, ...]] = []
        self._event_keys: set[tuple[Any, ...]] = set()

    def __repr__(self) -> str:
        return (
            f"CustomerState({self.customer_id!r}, periods={len(self._loose) + len(self._orders)}, "
            f"events={self._n_events_retained()}, watermark={self.watermark})"
        )

    def _n_events_retained(self) -> int:
        return len(self._event_rows)

    @property
    def has_purchases(self) -> bool:
        """Whether the state holds a purchase period (it has RFM and cycle features)."""
        return bool(
            _net_purchase_periods(self._loose_items(), self._order_items(), self.config.freq)
        )

    @property
    def has_events(self) -> bool:
        """Whether the state has seen an engagement event (it has engagement features)."""
        return self._first_event is not None

    # -- updates ------------------------------------------------------------------------------

    def update(self, record: Mapping[str, Any]) -> bool:
        """Apply one transaction (a record with ``amount``) or event (with ``event_type``).

        Parameters
        ----------
        record : mapping
            A transaction: ``timestamp``, ``amount`` and optionally ``order_id``, ``channel``,
            ``category``, ``quantity``; or an event: ``timestamp``, ``event_type`` and
            optionally ``channel``, ``value``. A ``customer_id``, when present, must be this
            state's. Other keys are ignored, as the batch builders ignore other columns.

        Returns
        -------
        bool
            True when applied, False when the row is an exact duplicate of one the state
            holds (ignored).

        Raises
        ------
        DataValidationError
            A missing or malformed field, a record that is neither or both kinds, a negative
            amount under ``returns="error"``.
        LateEventError
            A row at or before ``watermark - retention`` (nothing is changed).
        """
        if not isinstance(record, Mapping):
            raise DataValidationError(
                f"record must be a mapping (a dict of fields), got {type(record).__name__}."
            )
        if "customer_id" in record and _native(record["customer_id"]) != self.customer_id:
            raise ValueError(
                f"record is for customer {record['customer_id']!r}, this state is for "
                f"{self.customer_id!r}."
            )
        is_transaction, is_event = "amount" in record, "event_type" in record
        if is_transaction == is_event:
            raise DataValidationError(
                "record must have either an 'amount' (a transaction) or an 'event_type' (an "
                f"engagement event), not {'both' if is_transaction else 'neither'}; got keys "
                f"{sorted(record)}."
            )
        ts = _microseconds(record.get("timestamp"), "timestamp")
        if is_transaction:
            amount = _number(record["amount"], "amount", required=True)
            extras = tuple(_native(record.get(name)) for name in _TRANSACTION_FIELDS)
            return self._add_transaction(ts, amount, *extras)
        event_type = _native(record["event_type"])
        if event_type is None or event_type == "":
            raise DataValidationError("event_type is missing or empty; name the event.")
        value = _number(record.get("value"), "value", required=False)
        return self._add_event(ts, _native(record.get("channel")), event_type, value)

    def _check_late(self, ts: int, what: str) -> None:
        if self.watermark is not None and ts <= self.watermark - self.config.retention_us:
            boundary = _as_datetime(self.watermark - self.config.retention_us)
            raise LateEventError(
                f"customer {self.customer_id!r}: {what} at {_as_datetime(ts)} is too late to "
                f"apply: the state's latest row is at {_as_datetime(self.watermark)} and it "
                f"retains {dt.timedelta(microseconds=self.config.retention_us)}, so rows at or "
                f"before {boundary} are refused (it could not tell a duplicate). Rebuild the "
                "state from the logs with states_from_logs, or configure a longer retention."
            )

    def _add_transaction(
        self,
        ts: int,
        amount: float,
        order_id: Any = None,
        channel: Any = None,
        category: Any = None,
        quantity: Any = None,
        *,
        repeat: bool = False,
    ) -> bool:
        self._check_late(ts, "transaction")
        row = (ts, amount, order_id, channel, category, quantity)
        if row in self._tx_keys and not repeat:
            return False
        returns = self.config.returns
        if amount < 0 and returns == "error":
            raise DataValidationError(
                f"amount={amount} is negative (a return) while returns='error'. Use "
                "returns='net' or 'exclude' in the OnlineConfig."
            )
        micros = _micros(amount)
        if amount < 0:
            self._returned -= micros
            self._n_returns += 1
        elif amount > 0:
            self._bought += micros
        if not (returns == "exclude" and amount < 0):
            _add_purchase_row(
                self._loose, self._orders, ts, amount, order_id, self.config.freq, returns
            )
        bisect.insort(self._tx_rows, row, key=_row_time)
        self._tx_keys.add(row)
        self._advance(ts)
        return True

    def _add_event(
        self, ts: int, channel: Any, event_type: Any, value: float | None, *, repeat: bool = False
    ) -> bool:
        self._check_late(ts, "event")
        row = (ts, channel, event_type, value)
        if row in self._event_keys and not repeat:
            return False
        if self._first_event is None or ts < self._first_event:
            self._first_event = ts
        if self._last_event is None or ts > self._last_event:
            self._last_event = ts
        if channel is not None:
            self._channel_counts[channel] = self._channel_counts.get(channel, 0) + 1
            self._n_channelled += 1
        if value is not None:
            self._value_sum += _micros(value)
            self._value_n += 1
            self._n_negative += value < 0
            if self._best_value is None or _event_sort_key(row) > _event_sort_key(self._best_value):
                self._best_value = row
        bisect.insort(self._event_rows, row, key=_event_sort_key)
        self._event_keys.add(row)
        self._advance(ts)
        return True

    def _advance(self, ts: int) -> None:
        """Move the watermark to ``ts`` if later, and drop rows the retention no longer needs."""
        if self.watermark is not None and ts <= self.watermark:
            return
        self.watermark = ts
        boundary = ts - self.config.retention_us
        if self._tx_rows and self._tx_rows[0][0] <= boundary:
            cut = bisect.bisect_right(self._tx_rows, boundary, key=_row_time)
            self._tx_keys.difference_update(self._tx_rows[:cut])
            del self._tx_rows[:cut]
        if self._event_rows and self._event_rows[0][0] <= boundary:
            cut = bisect.bisect_right(self._event_rows, boundary, key=_row_time)
            for row in self._event_rows[:cut]:
                channel = row[1]
                if channel is None:
                    continue
                if self._sealed_channel is not None and channel != self._sealed_channel:
                    self._sealed_switches += 1
                self._sealed_channel = channel
            self._event_keys.difference_update(self._event_rows[:cut])
            del self._event_rows[:cut]

    # -- features -----------------------------------------------------------------------------

    def _loose_items(self) -> Iterable[tuple[int, int, bool]]:
        return ((p, m, b) for p, (m, b) in self._loose.items())

    def _order_items(self) -> Iterable[tuple[int | None, int, int]]:
        return (tuple(order) for order in self._orders.values())

    def _check_at(self, at_us: int) -> None:
        if self.watermark is not None and at_us < self.watermark:
            raise ValueError(
                f"at={_as_datetime(at_us)} is before customer {self.customer_id!r}'s latest "
                f"row ({_as_datetime(self.watermark)}): a state cannot forget rows. Evaluate "
                "at or after the latest row, or rebuild the state at the earlier cutoff."
            )

    def _purchase_features(self, at_us: int, *, cycle: bool = True) -> dict[str, Any] | None:
        config = self.config
        periods = _net_purchase_periods(self._loose_items(), self._order_items(), config.freq)
        if not periods:
            return None
        at = _as_datetime(at_us)
        cutoff_period = period_of(at, config.freq)
        first, last, n = periods[0][0], periods[-1][0], len(periods)
        repeat = sum(spend for _, spend in periods[1:])
        features: dict[str, Any] = {
            "frequency": float(n - 1),
            "recency": float((last - first) * config.scale),
            "T": float((cutoff_period - first) * config.scale),
            "monetary_value": float(repeat) / (float(n - 1) * float(MICRO)) if n > 1 else 0.0,
        }
        if not cycle:
            return features
        days = days_per_period(config.freq)
        numerator, denominator = _DAYS_PER_PERIOD[config.freq]
        steps = [b[0] - a[0] for a, b in zip(periods, periods[1:], strict=False)]
        n_gaps, total = len(steps), last - first
        squares = sum(step * step for step in steps)
        gap_mean = float(total * numerator) / float(n_gaps * denominator) if n_gaps > 0 else _NAN
        if n_gaps > 1:
            spread = float(n_gaps * squares - total * total) * float(numerator**2)
            gap_std = math.sqrt(spread / (float(n_gaps * (n_gaps - 1)) * float(denominator**2)))
        else:
            gap_std = _NAN
        gap_median = _median([float(step * days) for step in steps]) if steps else _NAN
        since = float((cutoff_period - last) * days)
        window = config.window_us
        recent = _window_periods(self._tx_rows, at_us - window, at_us, config.freq, config.returns)
        before = _window_periods(
            self._tx_rows, at_us - 2 * window, at_us - window, config.freq, config.returns
        )
        last_micros = sum(spend for _, spend in recent)
        prev_micros = sum(spend for _, spend in before)
        if self._returned == 0:
            return_share = 0.0
        elif self._bought > 0:
            return_share = float(self._returned) / float(self._bought)
        else:
            return_share = _NAN
        features.update(
            gap_mean_days=gap_mean,
            gap_median_days=gap_median,
            gap_std_days=gap_std,
            gap_cv=gap_std / gap_mean,
            days_since_last_purchase=since,
            overdue_ratio=since / gap_median,
            spend_last_window=float(last_micros) / float(MICRO),
            spend_prev_window=float(prev_micros) / float(MICRO),
            spend_trend=float(last_micros - prev_micros) / float(MICRO),
            count_last_window=len(recent),
            count_prev_window=len(before),
            count_trend=len(recent) - len(before),
            return_share=return_share,
            n_returns=self._n_returns,
        )
        return features

    def _engagement_features(self, at_us: int, layout: EngagementLayout) -> dict[str, Any] | None:
        if self._first_event is None or self._last_event is None:
            return None
        retention = self.config.retention_us
        longest = max(span for _, span in layout.windows)
        if longest // _US > retention:
            raise ValueError(
                f"layout window {longest} is longer than the state's retention "
                f"({dt.timedelta(microseconds=retention)}); configure a longer retention."
            )
        type_counts: dict[tuple[str, str], int] = {}
        event_counts: dict[str, int] = {}
        recent_sum = recent_n = 0
        trend_start = at_us - VALUE_TREND_WINDOW // _US
        # Rows are in time order: only those inside the longest span count for anything.
        oldest = at_us - max(longest, VALUE_TREND_WINDOW) // _US
        first = bisect.bisect_right(self._event_rows, oldest, key=_row_time)
        starts = [(label, at_us - span // _US) for label, span in layout.windows]
        for ts, _, event_type, value in self._event_rows[first:]:
            name = _name(event_type)
            for label, start in starts:
                if ts > start:
                    event_counts[label] = event_counts.get(label, 0) + 1
                    type_counts[name, label] = type_counts.get((name, label), 0) + 1
            if value is not None and ts > trend_start:
                recent_sum += _micros(value)
                recent_n += 1
        features: dict[str, Any] = {}
        for name, _ in layout.event_types:
            for label, _ in layout.windows:
                features[f"n_{name}_{label}"] = type_counts.get((name, label), 0)
        for label, _ in layout.windows:
            features[f"n_events_{label}"] = event_counts.get(label, 0)
        at_day = at_us // _US_PER_DAY
        features["days_since_last_event"] = float(at_day - self._last_event // _US_PER_DAY)
        features["days_since_first_event"] = float(at_day - self._first_event // _US_PER_DAY)
        if layout.channels is not None:
            per_name: dict[str, int] = {}
            for channel, count in self._channel_counts.items():
                name = _name(channel)
                per_name[name] = per_name.get(name, 0) + count
            for name, _ in layout.channels:
                features[f"n_channel_{name}"] = per_name.get(name, 0)
            total = float(self._n_channelled)
            entropy = 0.0
            for name in sorted(per_name):
                count = per_name[name]
                entropy += (count / total) * math.log(total / count)
            features["n_channels"] = len(per_name)
            features["channel_entropy"] = entropy if self._n_channelled > 0 else _NAN
            features["channel_switch_rate"] = self._switch_rate()
        if layout.has_value:
            before_n = self._value_n - recent_n
            recent = _mean_micros(recent_sum, recent_n)
            previous = _mean_micros(self._value_sum - recent_sum, before_n)
            features["value_mean"] = _mean_micros(self._value_sum, self._value_n)
            features["value_last"] = _NAN if self._best_value is None else self._best_value[3]
            features["value_trend"] = recent - previous if recent_n and before_n else _NAN
            features["n_negative_values"] = self._n_negative
        return features

    def _switch_rate(self) -> float:
        pairs = self._n_channelled - 1
        if pairs <= 0:
            return _NAN
        switches, previous = self._sealed_switches, self._sealed_channel
        for _, channel, _, _ in self._event_rows:
            if channel is None:
                continue
            if previous is not None and channel != previous:
                switches += 1
            previous = channel
        return switches / pairs

    def features(self, at: Any, layout: EngagementLayout | None = None) -> dict[str, Any]:
        """The customer's features as of ``at``: RFM, purchase cycle and engagement.

        Parameters
        ----------
        at : str, date or datetime
            The moment, read like a batch cutoff; on or after the state's latest row.
        layout : EngagementLayout, optional
            The engagement columns (see :func:`layout_from_events`); without it, no
            engagement features.

        Returns
        -------
        dict
            The columns of :func:`rfm_table` and :func:`cycle_table` when the customer has a
            purchase period, those of :func:`engagement_table` when a layout is given and the
            customer has events; values as the batch builders compute them.

        Raises
        ------
        ValueError
            ``at`` before the state's latest row.
        """
        at_us = _instant(at)
        purchases_at = _purchase_instant(at, self.config)
        self._check_at(min(at_us, purchases_at))
        features = self._purchase_features(purchases_at, cycle=self.config.freq != "M") or {}
        if layout is not None:
            features.update(self._engagement_features(at_us, layout) or {})
        return features

    # -- serialisation ------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The state as compact, canonical JSON (UTF-8): equal states give equal bytes.

        >>> state = CustomerState(7)
        >>> state.update({"timestamp": "2024-01-01", "amount": 5.0})
        True
        >>> CustomerState.from_bytes(state.to_bytes()).to_bytes() == state.to_bytes()
        True
        """
        orders = sorted(
            ([oid, *order] for oid, order in self._orders.items()),
            key=lambda item: (type(item[0]).__name__, item[0]),
        )
        payload = {
            "format": STATE_FORMAT,
            "customer_id": self.customer_id,
            "config": self.config.fingerprint(),
            "watermark": self.watermark,
            "loose": sorted([p, m, int(b)] for p, (m, b) in self._loose.items()),
            "orders": orders,
            "returns": [self._returned, self._bought, self._n_returns],
            "tx": sorted((list(row) for row in self._tx_rows), key=_canonical),
            "events": [list(row) for row in self._event_rows],
            "event_span": [self._first_event, self._last_event],
            "channels": [[c, self._channel_counts[c]] for c in _sort_ids(self._channel_counts)],
            "sealed": [self._n_channelled, self._sealed_switches, self._sealed_channel],
            "values": [self._value_sum, self._value_n, self._n_negative],
            "best_value": None if self._best_value is None else list(self._best_value),
        }
        return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()

    @classmethod
    def from_bytes(cls, data: bytes | str, config: OnlineConfig | None = None) -> CustomerState:
        """Rebuild a state from :meth:`to_bytes`; ``config`` must match the one it was made with.

        Raises
        ------
        ValueError
            Data that are not a serialised state, of another format version, or made under
            another purchase period, returns policy or retention.
        """
        config = config or OnlineConfig()
        try:
            payload = json.loads(data)
            if payload["format"] != STATE_FORMAT:
                raise ValueError(
                    f"serialised state has format {payload['format']!r}, this vipml reads "
                    f"{STATE_FORMAT}; rebuild the states from the logs."
                )
            state = cls(payload["customer_id"], config)
            if payload["config"] != config.fingerprint():
                raise ValueError(
                    f"serialised state of customer {state.customer_id!r} was made with (freq, "
                    f"returns, retention_us) = {payload['config']}, not {config.fingerprint()}; "
                    "load it with the OnlineConfig it was made with."
                )
            state.watermark = payload["watermark"]
            state._loose = {p: [m, bool(b)] for p, m, b in payload["loose"]}
            state._orders = {oid: [pa, fs, m] for oid, pa, fs, m in payload["orders"]}
            state._returned, state._bought, state._n_returns = payload["returns"]
            state._tx_rows = [tuple(row) for row in payload["tx"]]
            state._tx_keys = set(state._tx_rows)
            state._event_rows = [tuple(row) for row in payload["events"]]
            state._event_keys = set(state._event_rows)
            state._first_event, state._last_event = payload["event_span"]
            state._channel_counts = dict(payload["channels"])
            state._n_channelled, state._sealed_switches, state._sealed_channel = payload["sealed"]
            state._value_sum, state._value_n, state._n_negative = payload["values"]
            best = payload["best_value"]
            state._best_value = None if best is None else tuple(best)
        except (KeyError, TypeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"data are not a serialised CustomerState ({exc!r}).") from exc
        return state

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CustomerState):
            return NotImplemented
        return self.config == other.config and self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]


# -- many states ------------------------------------------------------------------------------


def states_from_logs(
    transactions: Any = None,
    events: Any = None,
    *,
    cutoff: Any,
    config: OnlineConfig | None = None,
    columns: Columns | None = None,
    keep_duplicates: bool = True,
) -> dict[Any, CustomerState]:
    """Bootstrap online states from batch logs: every customer's state at a cutoff.

    The rows at or before the cutoff are applied in time order, so no row is late. By
    default exact duplicate rows of the history count as separate rows, as the batch builders
    count them (and warn about them), so the states give the batch features bit for bit;
    rows streamed afterwards through :meth:`CustomerState.update` that repeat a retained row
    are ignored as redeliveries.

    Parameters
    ----------
    transactions, events : DataFrame-like, optional
        Transaction and event logs (any frame the batch builders accept); at least one.
    cutoff : str, date or datetime
        Only rows at or before the cutoff are used; a date includes its whole day.
    config : OnlineConfig, optional
        Purchase period, windows, returns policy and retention.
    columns : Columns, optional
        Names of the caller's columns.
    keep_duplicates : bool, default True
        Count exact duplicate rows of the logs as separate rows (as the batch builders do);
        False applies each once, as streamed redeliveries are.

    Returns
    -------
    dict
        ``customer_id`` → :class:`CustomerState`, sorted by customer id.

    Raises
    ------
    DataValidationError
        Bad input, as the batch builders raise it.

    Examples
    --------
    >>> import pandas as pd
    >>> tx = pd.DataFrame({
    ...     "customer_id": ["a", "a", "b"],
    ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-08", "2024-01-10"]),
    ...     "amount": [10.0, 20.0, 5.0],
    ... })
    >>> states = states_from_logs(tx, cutoff="2024-01-29")
    >>> rfm_table(states, "2024-01-29")
                 frequency  recency         T  monetary_value
    customer_id
    a                  1.0      1.0  4.000000            20.0
    b                  0.0      0.0  2.714286             0.0
    """
    if transactions is None and events is None:
        raise ValueError("Pass a transaction log, an event log, or both.")
    config = config or OnlineConfig()
    states: dict[Any, CustomerState] = {}
    streams: list[Iterable[tuple[Any, ...]]] = []
    if transactions is not None:
        log = prepare_transactions(
            transactions, columns, returns=config.returns, check_duplicates=keep_duplicates
        )
        streams.append(_rows_until(log, cutoff, "amount", _TRANSACTION_FIELDS))
    if events is not None:
        log = prepare_events(events, columns, check_duplicates=keep_duplicates)
        streams.append(_rows_until(log, cutoff, "event_type", ("channel", "value")))
    duplicates = 0
    # Both logs together in time order: no row is ever late.
    for kind, customer_id, ts, *fields in heapq.merge(*streams, key=_row_time_of_tagged):
        state = states.get(customer_id)
        if state is None:
            state = states[customer_id] = CustomerState(customer_id, config)
        if kind == "amount":
            applied = state._add_transaction(ts, *fields, repeat=keep_duplicates)
        else:
            event_type, channel, value = fields
            applied = state._add_event(ts, channel, event_type, value, repeat=keep_duplicates)
        duplicates += not applied
    if duplicates:
        warnings.warn(
            f"{duplicates} exact duplicate row(s) were applied once (keep_duplicates=False); "
            "the batch builders count them as separate rows.",
            DataWarning,
            stacklevel=2,
        )
    return {customer_id: states[customer_id] for customer_id in _sort_ids(states)}


def _row_time_of_tagged(row: tuple[Any, ...]) -> int:
    return row[2]


def _rows_until(
    log: Any, cutoff: Any, required: str, optional: tuple[str, ...]
) -> list[tuple[Any, ...]]:
    """Rows ``(required, customer, ts in microseconds, required, *optional)`` up to the cutoff.

    In time order; optional columns the log lacks are None, NaN values None.
    """
    cutoff_end = parse_cutoff(cutoff, tz_aware=log.tz_aware)
    frame = (
        log.frame.filter(nw.col("timestamp") <= nw.lit(cutoff_end))
        .collect(backend="polars")
        .sort("timestamp")
        .to_native()
    )
    n_rows = len(frame)
    data = [
        [required] * n_rows,
        frame.get_column("customer_id").to_list(),
        frame.get_column("timestamp").dt.epoch("us").to_list(),
        frame.get_column(required).to_list(),
    ]
    for name in optional:
        if name in log.columns:
            data.append([_native(value) for value in frame.get_column(name).to_list()])
        else:
            data.append([None] * n_rows)
    return list(zip(*data, strict=True))


def layout_from_events(
    events: Any,
    cutoff: Any,
    *,
    windows: Any = ("7D", "30D", "90D"),
    columns: Columns | None = None,
) -> EngagementLayout:
    """The engagement columns the batch builder gives for an event log at a cutoff.

    Pass it to :func:`engagement_table` and :meth:`CustomerState.features`: the event types
    and channels become columns as in :func:`~vipml.features.engagement_features`.

    Examples
    --------
    >>> import pandas as pd
    >>> ev = pd.DataFrame({"customer_id": [1, 2],
    ...                    "timestamp": pd.to_datetime(["2024-01-02", "2024-01-03"]),
    ...                    "event_type": ["visit", "Email Open"]})
    >>> layout_from_events(ev, "2024-01-31", windows=["7D"]).columns
    ['n_email_open_7d', 'n_visit_7d', 'n_events_7d', 'days_since_last_event', 'days_since_first_event']
    """
    log = prepare_events(events, columns, check_duplicates=False)
    cutoff_end = parse_cutoff(cutoff, tz_aware=log.tz_aware)
    return engagement_layout(log, cutoff_end, parse_windows(windows))


def _table(
    states: Mapping[Any, CustomerState] | Iterable[CustomerState],
    at: Any,
    columns: list[str],
    integers: set[str],
    evaluate: Any,
    *,
    purchases: bool,
) -> pd.DataFrame:
    values = list(states.values() if isinstance(states, Mapping) else states)
    rows: dict[Any, dict[str, Any]] = {}
    instants: dict[bool, int] = {}  # whole_day -> microseconds
    for state in values:
        whole_day = not purchases or state.config.freq not in SUB_DAILY
        if whole_day not in instants:
            instants[whole_day] = _instant(at, whole_day=whole_day)
        at_us = instants[whole_day]
        state._check_at(at_us)
        row = evaluate(state, at_us)
        if row is not None:
            rows[state.customer_id] = row
    ids = _sort_ids(rows)
    # Without rows, the index still takes the dtype of the customer ids.
    index = pd.Index(ids or [s.customer_id for s in values][:1], name="customer_id")[: len(ids)]
    data = {
        name: np.array(
            [rows[i][name] for i in ids], dtype="int64" if name in integers else "float64"
        )
        for name in columns
    }
    return pd.DataFrame(data, index=index, columns=columns)


def rfm_table(
    states: Mapping[Any, CustomerState] | Iterable[CustomerState], at: Any
) -> pd.DataFrame:
    """The :func:`~vipml.features.rfm_summary` table of many states as of ``at``.

    Customers with a purchase period, sorted by id; see :func:`states_from_logs` for an
    example.
    """
    return _table(
        states,
        at,
        list(RFM_COLUMNS),
        set(),
        lambda state, at_us: state._purchase_features(at_us, cycle=False),
        purchases=True,
    )


def cycle_table(
    states: Mapping[Any, CustomerState] | Iterable[CustomerState], at: Any
) -> pd.DataFrame:
    """The :func:`~vipml.features.purchase_cycle_features` table of many states as of ``at``.

    >>> import pandas as pd
    >>> tx = pd.DataFrame({"customer_id": ["a", "a"], "amount": [10.0, 20.0],
    ...                    "timestamp": pd.to_datetime(["2024-01-01", "2024-01-11"])})
    >>> cycle_table(states_from_logs(tx, cutoff="2024-01-31"), "2024-02-09")[
    ...     ["gap_mean_days", "days_since_last_purchase", "count_last_window"]]
                 gap_mean_days  days_since_last_purchase  count_last_window
    customer_id
    a                     10.0                      29.0                  2
    """
    integers = {"count_last_window", "count_prev_window", "count_trend", "n_returns"}
    return _table(
        states,
        at,
        list(CYCLE_COLUMNS),
        integers,
        lambda state, at_us: state._purchase_features(at_us),
        purchases=True,
    )


def engagement_table(
    states: Mapping[Any, CustomerState] | Iterable[CustomerState],
    at: Any,
    layout: EngagementLayout,
) -> pd.DataFrame:
    """The :func:`~vipml.features.engagement_features` table of many states as of ``at``.

    ``layout`` fixes the columns (:func:`layout_from_events`); customers with an event.

    >>> import pandas as pd
    >>> ev = pd.DataFrame({"customer_id": [1, 1], "event_type": ["visit", "visit"],
    ...                    "timestamp": pd.to_datetime(["2024-01-02", "2024-01-30"]),
    ...                    "channel": ["web", "app"]})
    >>> layout = layout_from_events(ev, "2024-01-31", windows=["7D"])
    >>> states = states_from_logs(events=ev, cutoff="2024-01-31")
    >>> engagement_table(states, "2024-01-31", layout)[["n_visit_7d", "channel_switch_rate"]]
                 n_visit_7d  channel_switch_rate
    customer_id
    1                     1                  1.0
    """
    return _table(
        states,
        at,
        layout.columns,
        set(layout.count_columns),
        lambda state, at_us: state._engagement_features(at_us, layout),
        purchases=False,
    )
