"""Hypothesis strategies for transaction logs, shared by vipml's tests and by users' own tests.

Requires the ``dev`` extra (hypothesis).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from hypothesis import strategies as st

__all__ = ["transaction_logs"]

_START = dt.datetime(2023, 1, 1)
_SPAN_SECONDS = 2 * 365 * 86400


@st.composite
def transaction_logs(
    draw: st.DrawFn,
    *,
    max_customers: int = 6,
    max_rows: int = 40,
    allow_returns: bool = False,
    with_order_ids: bool = False,
) -> pd.DataFrame:
    """Draw a small transaction log: ``customer_id``, ``timestamp`` (seconds), ``amount``.

    Several rows may share a customer and a day (so purchase periods collapse rows) and
    amounts are cents. With ``allow_returns``, some amounts are negative; with
    ``with_order_ids``, rows carry an ``order_id`` that returns may share with a purchase.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5)
    ... @given(transaction_logs())
    ... def check(tx):
    ...     assert {"customer_id", "timestamp", "amount"} <= set(tx.columns)
    >>> check()
    """
    n_rows = draw(st.integers(1, max_rows))
    n_customers = draw(st.integers(1, max_customers))
    customers = draw(st.lists(st.integers(0, n_customers - 1), min_size=n_rows, max_size=n_rows))
    # Cluster times on a few days so that same-day and same-week purchases are common.
    days = draw(st.lists(st.integers(0, 60), min_size=n_rows, max_size=n_rows))
    seconds = draw(st.lists(st.integers(0, 86399), min_size=n_rows, max_size=n_rows))
    scale = draw(st.sampled_from([1, 3, 12]))
    low = -5000 if allow_returns else 0
    cents = draw(st.lists(st.integers(low, 50000), min_size=n_rows, max_size=n_rows))
    offsets = np.array(days, dtype="int64") * scale * 86400 + np.array(seconds, dtype="int64")
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{c}" for c in customers],
            "timestamp": pd.Timestamp(_START) + pd.to_timedelta(offsets % _SPAN_SECONDS, unit="s"),
            "amount": np.array(cents, dtype="float64") / 100,
        }
    )
    if with_order_ids:
        orders = draw(st.lists(st.integers(0, n_rows), min_size=n_rows, max_size=n_rows))
        frame["order_id"] = [
            f"o{customer}-{order}" for customer, order in zip(customers, orders, strict=True)
        ]
    return frame.drop_duplicates(ignore_index=True)
