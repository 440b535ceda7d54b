"""Omnichannel measures: which channels customers use, how they move between them, whether
their sentiment agrees across them, and what multi-channel customers are worth.

:func:`omnichannel_measures` reads the transaction log (and the event log when given) up to a
cutoff and describes each buyer: channels used, the primary one, the entropy of their channel
shares and how often consecutive interactions switch channel (the engagement builder's switch
rate, over purchases and events together), the mean sentiment per channel and its spread. It
then compares single- and multi-channel customers after the cutoff (retention over a horizon,
the spend in it, and an optional value such as the pipeline's CLV) with seeded bootstrap
intervals, and counts the moves between channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import narwhals.stable.v2 as nw
import numpy as np
import pandas as pd

from vipml.data.columns import Columns
from vipml.data.validate import parse_cutoff, prepare_events, prepare_transactions
from vipml.errors import DataValidationError
from vipml.features.cycle import parse_duration, snake_case
from vipml.features.engagement import engagement_features

__all__ = ["OmnichannelReport", "omnichannel_measures"]


@dataclass(frozen=True, eq=False)
class OmnichannelReport:
    """Result of :func:`omnichannel_measures`.

    Attributes
    ----------
    customers : pandas.DataFrame
        Per buyer (index ``customer_id``), from purchases: ``n_channels``, ``channels``
        (sorted, joined by "+"), ``primary_channel`` (most purchases), ``multichannel``
        (bought in more than one channel), ``channel_entropy`` and ``channel_switch_rate``
        (share of consecutive purchases in another channel); from purchases and events
        together: ``n_touchpoints`` (channels of any interaction) and
        ``touchpoint_switch_rate``; from events with a value: ``sentiment_<channel>`` (mean event value per channel),
        ``sentiment_spread`` (highest minus lowest channel mean, NaN with fewer than two
        channels with values), ``sentiment_consistency`` (1 - spread / 2, in [0, 1] for values
        in [-1, 1]), ``retained`` (a purchase in the horizon after the cutoff), ``spend_next``
        and ``value`` (the value given, else ``spend_next``).
    groups : pandas.DataFrame
        One row per group (``single-channel``, ``multi-channel``, ``difference``): customers,
        retention rate and mean value with their bootstrap intervals.
    transitions : pandas.DataFrame
        Moves between consecutive purchases of a customer, ``from_channel`` x
        ``to_channel`` counts (staying on a channel included).
    overall : dict
        Buyers, the share of multi-channel buyers, mean channels, mean switch rate, mean
        sentiment consistency, cutoff, horizon, confidence.
    """

    customers: pd.DataFrame
    groups: pd.DataFrame
    transitions: pd.DataFrame
    overall: dict[str, Any]


def omnichannel_measures(
    transactions: Any,
    events: Any = None,
    *,
    cutoff: Any,
    horizon: Any = "90D",
    value: pd.Series | None = None,
    columns: Columns | None = None,
    n_boot: int = 1000,
    confidence: float = 0.9,
    random_state: int = 0,
) -> OmnichannelReport:
    """Channels, movement between them, sentiment consistency, and value by channel count.

    Parameters
    ----------
    transactions : DataFrame-like
        Transactions with a ``channel`` column, covering ``cutoff + horizon`` for retention.
    events : DataFrame-like, optional
        Engagement events; their channels count as channels used, and their ``value``
        (sentiment) gives the per-channel sentiment.
    cutoff : str, date or datetime
        Rows at or before it describe the customers; rows in ``(cutoff, cutoff + horizon]``
        say whether they were retained.
    horizon : str or timedelta, default "90D"
        Length of the retention window.
    value : pandas.Series, optional
        A value per customer (the pipeline's ``clv`` for instance) compared between groups;
        default the spend in the horizon.
    columns : Columns, optional
        Names of the logs' columns.
    n_boot : int, default 1000
        Bootstrap resamples of customers for the intervals.
    confidence : float, default 0.9
        Level of the percentile intervals.
    random_state : int, default 0
        Seed of the bootstrap.

    Returns
    -------
    OmnichannelReport

    Raises
    ------
    DataValidationError
        Logs without a channel column, bad input, or a cutoff before every purchase.

    Examples
    --------
    >>> from vipml.data import simulate
    >>> sim = simulate(400, "2024-01-01", "2025-12-31", random_state=2)
    >>> report = omnichannel_measures(sim.transactions, sim.events, cutoff="2025-06-30")
    >>> report.groups.index.tolist()
    ['single-channel', 'multi-channel', 'difference']
    >>> bool(report.customers["n_channels"].max() > 1)
    True
    """
    columns = columns or Columns()
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")
    tx = prepare_transactions(transactions, columns, check_duplicates=False)
    if "channel" not in tx.columns:
        raise DataValidationError(
            f"transactions need a channel column ('{columns.channel}') for omnichannel "
            "measures; map it with Columns(channel=...)."
        )
    span = parse_duration(horizon, "horizon")
    end = parse_cutoff(cutoff, tz_aware=tx.tz_aware)
    if end < tx.first_timestamp:
        raise DataValidationError(
            f"cutoff={cutoff!r} is before every purchase (the first is {tx.first_timestamp})."
        )
    interactions = _interactions(tx, events, columns)
    before = interactions[interactions["timestamp"] <= end]
    buyers = before.loc[before["kind"] == "purchase", "customer_id"].unique()
    before = before[before["customer_id"].isin(buyers)]
    purchases = before[before["kind"] == "purchase"]
    shape = _channel_shape(purchases, end)
    touch = _channel_shape(before, end)
    counts = purchases.groupby(["customer_id", "channel"]).size().unstack(fill_value=0)
    table = pd.DataFrame(index=pd.Index(np.sort(buyers), name="customer_id"))
    used = counts.reindex(table.index).fillna(0) > 0
    names = np.asarray(counts.columns, dtype=object)
    table["n_channels"] = used.sum(axis=1).astype(np.int64)
    # One join per customer: the only way to spell a set of channels as text.
    table["channels"] = ["+".join(names[row]) for row in used.to_numpy()]
    table["primary_channel"] = counts.reindex(table.index).idxmax(axis=1)
    table["multichannel"] = table["n_channels"] > 1
    table["channel_entropy"] = shape["channel_entropy"].reindex(table.index)
    table["channel_switch_rate"] = shape["channel_switch_rate"].reindex(table.index)
    table["n_touchpoints"] = touch["n_channels"].reindex(table.index).astype(np.int64)
    table["touchpoint_switch_rate"] = touch["channel_switch_rate"].reindex(table.index)
    valued = before.dropna(subset=["value"])
    if len(valued):
        means = valued.groupby(["customer_id", "channel"])["value"].mean().unstack()
        means.columns = [f"sentiment_{snake_case(str(c))}" for c in means.columns]
        means = means.reindex(table.index)
        spread = means.max(axis=1) - means.min(axis=1)
        spread[means.notna().sum(axis=1) < 2] = np.nan
        table = table.join(means)
        table["sentiment_spread"] = spread
        table["sentiment_consistency"] = 1.0 - spread / 2.0
    after = interactions[
        (interactions["kind"] == "purchase")
        & (interactions["timestamp"] > end)
        & (interactions["timestamp"] <= end + span)
    ]
    spend = after.groupby("customer_id")["amount"].sum()
    table["retained"] = table.index.isin(after.loc[after["amount"] > 0, "customer_id"])
    table["spend_next"] = spend.reindex(table.index).fillna(0.0)
    if value is not None:
        table["value"] = pd.Series(value).reindex(table.index).astype(np.float64)
    else:
        table["value"] = table["spend_next"]
    groups = _groups(table, n_boot, confidence, random_state)
    transitions = _transitions(purchases)
    overall = {
        "cutoff": str(pd.Timestamp(end).date()),
        "horizon_days": span.total_seconds() / 86400,
        "buyers": len(table),
        "multichannel_share": float(table["multichannel"].mean()),
        "mean_channels": float(table["n_channels"].mean()),
        "mean_switch_rate": float(table["channel_switch_rate"].mean()),
        "mean_sentiment_consistency": float(table["sentiment_consistency"].mean())
        if "sentiment_consistency" in table
        else float("nan"),
        "value": "given" if value is not None else "spend_next",
        "confidence": confidence,
    }
    return OmnichannelReport(table, groups, transitions, overall)


def _channel_shape(rows: pd.DataFrame, end: Any) -> pd.DataFrame:
    """Channels, entropy and switch rate per customer (the engagement builder's definitions)."""
    frame = rows.rename(columns={"kind": "event_type"})[
        ["customer_id", "timestamp", "event_type", "channel"]
    ]
    return engagement_features(frame, cutoff=end, windows=["1D"])


def _interactions(tx: Any, events: Any, columns: Columns) -> pd.DataFrame:
    """Purchases and events as one pandas frame: customer, time, kind, channel, amount, value."""
    purchases = (
        tx.frame.select(
            nw.col("customer_id"),
            nw.col("timestamp"),
            nw.col("channel").cast(nw.String),
            nw.col("amount"),
        )
        .collect()
        .to_pandas()
        .assign(kind="purchase", value=np.nan)
    )
    parts = [purchases]
    if events is not None:
        ev = prepare_events(events, columns, check_duplicates=False)
        if "channel" in ev.columns:
            wanted = [nw.col("customer_id"), nw.col("timestamp"), nw.col("channel").cast(nw.String)]
            if "value" in ev.columns:
                wanted.append(nw.col("value"))
            frame = ev.frame.select(*wanted).collect().to_pandas().assign(kind="event", amount=0.0)
            if "value" not in frame:
                frame["value"] = np.nan
            parts.append(frame)
    out = pd.concat(parts, ignore_index=True)
    out = out.dropna(subset=["channel"])
    return out.sort_values(["customer_id", "timestamp", "kind"], kind="stable", ignore_index=True)


def _groups(table: pd.DataFrame, n_boot: int, confidence: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    alpha = (1.0 - confidence) / 2.0
    rows = {}
    draws = {}
    for name, multi in (("single-channel", False), ("multi-channel", True)):
        part = table[table["multichannel"] == multi]
        retained = part["retained"].to_numpy(dtype=np.float64)
        value = part["value"].to_numpy(dtype=np.float64)
        value = value[np.isfinite(value)]
        boot_r = _boot_means(rng, retained, n_boot)
        boot_v = _boot_means(rng, value, n_boot)
        draws[name] = (boot_r, boot_v)
        rows[name] = _row(len(part), retained, value, boot_r, boot_v, alpha)
    diff_r = draws["multi-channel"][0] - draws["single-channel"][0]
    diff_v = draws["multi-channel"][1] - draws["single-channel"][1]
    rows["difference"] = {
        "customers": np.nan,
        "retention": rows["multi-channel"]["retention"] - rows["single-channel"]["retention"],
        "retention_lower": _quantile(diff_r, alpha),
        "retention_upper": _quantile(diff_r, 1 - alpha),
        "value": rows["multi-channel"]["value"] - rows["single-channel"]["value"],
        "value_lower": _quantile(diff_v, alpha),
        "value_upper": _quantile(diff_v, 1 - alpha),
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def _row(n, retained, value, boot_r, boot_v, alpha) -> dict[str, float]:
    return {
        "customers": n,
        "retention": retained.mean() if retained.size else np.nan,
        "retention_lower": _quantile(boot_r, alpha),
        "retention_upper": _quantile(boot_r, 1 - alpha),
        "value": value.mean() if value.size else np.nan,
        "value_lower": _quantile(boot_v, alpha),
        "value_upper": _quantile(boot_v, 1 - alpha),
    }


def _boot_means(rng: np.random.Generator, x: np.ndarray, n_boot: int) -> np.ndarray:
    if x.size == 0:
        return np.full(n_boot, np.nan)
    picks = rng.integers(0, x.size, size=(n_boot, x.size))
    return x[picks].mean(axis=1)


def _quantile(x: np.ndarray, q: float) -> float:
    return float(np.quantile(x, q)) if np.isfinite(x).all() else float("nan")


def _transitions(before: pd.DataFrame) -> pd.DataFrame:
    previous = before.groupby("customer_id")["channel"].shift(1)
    moves = pd.DataFrame({"from_channel": previous, "to_channel": before["channel"]}).dropna()
    return moves.groupby(["from_channel", "to_channel"]).size().unstack(fill_value=0)
