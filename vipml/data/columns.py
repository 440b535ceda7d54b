"""Mapping of the caller's column names onto vipml's data contract."""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["Columns"]


@dataclass(frozen=True)
class Columns:
    """Names of the columns in the caller's transaction and event logs.

    vipml reads the caller's columns under these names and never renames or mutates the
    caller's frame: the mapping is applied to a projection of it. Only the fields a function
    needs are looked up; optional columns (``order_id``, ``channel``, ``category``,
    ``quantity``, ``value``) are used when present and ignored otherwise.

    Parameters
    ----------
    customer_id : str, default "customer_id"
        Customer identifier (transactions and events).
    timestamp : str, default "timestamp"
        When the purchase or event happened (transactions and events).
    amount : str, default "amount"
        Monetary value of a transaction; negative values are returns.
    order_id : str, default "order_id"
        Optional order identifier; returns carrying an order's id are netted into it.
    channel : str, default "channel"
        Optional sales or engagement channel (web, app, store, ...).
    category : str, default "category"
        Optional product category of a transaction.
    quantity : str, default "quantity"
        Optional number of items in a transaction.
    event_type : str, default "event_type"
        Type of an engagement event (visit, email_open, support_ticket, ...).
    value : str, default "value"
        Optional numeric value of an event, such as a sentiment score.

    Examples
    --------
    >>> cols = Columns(customer_id="user", timestamp="ordered_at", amount="revenue")
    >>> cols.customer_id, cols.amount
    ('user', 'revenue')
    >>> cols.source_of("amount")
    'revenue'
    """

    customer_id: str = "customer_id"
    timestamp: str = "timestamp"
    amount: str = "amount"
    order_id: str = "order_id"
    channel: str = "channel"
    category: str = "category"
    quantity: str = "quantity"
    event_type: str = "event_type"
    value: str = "value"

    def __post_init__(self) -> None:
        for field in fields(self):
            name = getattr(self, field.name)
            if not isinstance(name, str) or not name:
                raise TypeError(
                    f"Columns.{field.name} must be a non-empty column name (str), got {name!r}."
                )

    def source_of(self, standard: str) -> str:
        """Return the caller's column name for a standard vipml column name."""
        return getattr(self, standard)
