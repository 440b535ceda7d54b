"""The churn label of a non-contractual business: no purchase in a horizon after a cutoff.

In a contractual business (subscriptions, telecoms) a customer who leaves cancels, and churn
is observed. In a non-contractual business (retail, e-commerce) nobody says goodbye: a
customer who stops buying looks exactly like one who buys rarely. The label vipml uses is
therefore a statement about the future that *can* be observed:

    churned at cutoff ``c`` with horizon ``h``  ⇔  no purchase in ``(c, c + h]``

for every customer with a purchase at or before ``c``. It is :func:`vipml.features.split.
labels_after`'s ``churned`` column, the same definition the training snapshots use.
"""

from __future__ import annotations

from typing import Any

import narwhals.stable.v2 as nw
import pandas as pd

from vipml.data.columns import Columns
from vipml.data.validate import ReturnsPolicy
from vipml.features._periods import Freq
from vipml.features.split import labels_after

__all__ = ["churn_labels"]


def churn_labels(
    transactions: Any,
    cutoff: Any,
    horizon: Any,
    *,
    freq: Freq = "D",
    columns: Columns | None = None,
    returns: ReturnsPolicy = "net",
) -> pd.Series:
    """Whether each customer makes no purchase in ``(cutoff, cutoff + horizon]``.

    A thin wrapper of :func:`vipml.features.split.labels_after` (its ``churned`` column)
    returning a pandas Series whatever the input, because labels are compared with model
    outputs in memory.

    Caveats, worth stating wherever the label is reported:

    - **It is not "left for good".** Some labelled churners come back after the horizon
      (sleepers), and with a short horizon a loyal customer who buys twice a year looks
      churned. Pick the horizon from the purchase cycle (a few times the typical gap between
      purchases; see :func:`vipml.features.cycle.purchase_cycle_features`), and read a churn
      probability as "probability of no purchase in the horizon".
    - **Horizons change the base rate.** The longer the horizon, the more time to buy again
      and the fewer churners; probabilities for different horizons are not comparable.
    - **The log must cover the horizon.** A horizon that runs past the last transaction
      would label every customer without data as churned; it is refused.
    - **Only customers are labelled**: those with a purchase period at or before the cutoff.
      Prospects with engagement events but no purchase get no label.
    - **Returns**: a period holding only returns is not a purchase, so a customer whose
      only activity in the horizon is a return is labelled churned.
    - **Recent customers** (first purchase just before the cutoff) have little history; their
      labels are as valid as anyone's, but their features say little.

    Parameters
    ----------
    transactions : DataFrame-like
        Transaction log (pandas, polars, pyarrow, DuckDB relation, ...).
    cutoff : str, date or datetime
        End of the feature period; a date includes its whole day.
    horizon : str or timedelta
        Length of the label period with a unit (``"39W"``, ``"273D"``); bare numbers are
        refused.
    freq : {"H", "D", "W", "M"}, default "D"
        Period in which purchases are counted.
    columns : Columns, optional
        Names of the caller's columns.
    returns : {"net", "exclude", "error"}, default "net"
        Policy for negative amounts.

    Returns
    -------
    pandas.Series
        ``churned`` (bool), indexed by ``customer_id`` in sorted order.

    Raises
    ------
    DataValidationError
        A horizon without a unit or running past the last transaction, a cutoff before every
        transaction, or bad input.

    See Also
    --------
    vipml.features.split.labels_after : the labels with purchase counts and spend.

    Examples
    --------
    >>> import pandas as pd
    >>> tx = pd.DataFrame({
    ...     "customer_id": [1, 1, 2, 1, 3],
    ...     "timestamp": pd.to_datetime(
    ...         ["2024-01-01", "2024-01-03", "2024-01-02", "2024-01-09", "2024-02-01"]),
    ...     "amount": [10.0, 20.0, 5.0, 8.0, 1.0],
    ... })
    >>> churn_labels(tx, "2024-01-05", "2W")
    customer_id
    1    False
    2     True
    Name: churned, dtype: bool
    """
    labels = labels_after(
        transactions, cutoff, horizon, freq=freq, columns=columns, returns=returns
    )
    if not isinstance(labels, pd.DataFrame):
        frame = nw.from_native(labels)
        if isinstance(frame, nw.LazyFrame):
            frame = frame.collect()
        labels = frame.to_pandas().set_index("customer_id")
    return labels["churned"].astype(bool).sort_index()
