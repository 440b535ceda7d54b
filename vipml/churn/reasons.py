"""Readable churn drivers from LightGBM's own per-row contributions.

``Booster.predict(X, pred_contrib=True)`` gives, for every row, each feature's contribution
to the raw score (TreeSHAP: exact Shapley values of the tree ensemble, in log-odds), which
sum with the expected value to the row's score. Features that describe the same behaviour are
summed into one *driver* (days since the last purchase, the overdue ratio and the purchase
gaps are one "lapse" driver), the drivers that push a customer towards churn are ranked, and
each is written as a sentence built from the customer's own feature values:

- lapse: "no purchase for 120 days, 3.1× their usual gap";
- history: "21 repeat purchases, the last 150 days ago (BG/NBD: 97% chance of no purchase in
  the next 39 weeks)";
- momentum: "0 purchases in the last 90 days vs 3 in the 90 before";
- engagement: "engagement down 70% in the last 30 days (3 events vs 10.0 a month before)";
- sentiment, spend, returns, channels, and any other feature as "name = value".

Everything is vectorised over customers; the only loops run over the few drivers.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import expit

__all__ = ["DRIVERS", "driver_of", "explain"]

FloatArray = npt.NDArray[np.float64]
Texts = npt.NDArray[np.str_]

#: Driver of each known feature. Event counts (per type and window, and per channel) are
#: matched by name and belong to "engagement"; unknown features are their own driver.
DRIVERS: dict[str, str] = {
    **dict.fromkeys(
        (
            "days_since_last_purchase",
            "overdue_ratio",
            "recency_ratio",
            "gap_mean_days",
            "gap_median_days",
            "gap_std_days",
            "gap_cv",
            "recency",
        ),
        "lapse",
    ),
    **dict.fromkeys(
        (
            "frequency",
            "T",
            "purchase_rate",
            "bg_p_alive",
            "bg_expected_purchases",
            "bg_p_no_purchase",
        ),
        "history",
    ),
    **dict.fromkeys(
        (
            "count_last_window",
            "count_prev_window",
            "count_trend",
            "spend_last_window",
            "spend_prev_window",
            "spend_trend",
        ),
        "momentum",
    ),
    **dict.fromkeys(("monetary_value", "gg_expected_spend"), "spend"),
    **dict.fromkeys(("return_share", "n_returns"), "returns"),
    **dict.fromkeys(("days_since_last_event", "days_since_first_event"), "engagement"),
    **dict.fromkeys(("value_mean", "value_last", "value_trend", "n_negative_values"), "sentiment"),
    **dict.fromkeys(("n_channels", "channel_entropy", "channel_switch_rate"), "channels"),
}
_COUNT_WINDOW = re.compile(r"^n_.+_\d+(d|h|min|s|us)$")


def driver_of(feature: str) -> str:
    """The driver a feature belongs to; unknown features are their own driver.

    >>> driver_of("overdue_ratio"), driver_of("n_visit_30d"), driver_of("channel_entropy")
    ('lapse', 'engagement', 'channels')
    >>> driver_of("my_feature")
    'my_feature'
    """
    if feature in DRIVERS:
        return DRIVERS[feature]
    if feature.startswith("n_channel_") or _COUNT_WINDOW.match(feature):
        return "engagement"
    return feature


def _text(fmt: str, values: npt.ArrayLike) -> Texts:
    """``fmt % value`` for every value (a vectorised printf)."""
    return np.char.mod(fmt, np.asarray(values, dtype=np.float64))


def _join(*parts: Texts | str) -> Texts:
    out = np.asarray(parts[0], dtype=np.str_)
    for part in parts[1:]:
        out = np.char.add(out, np.asarray(part, dtype=np.str_))
    return out


def _column(table: pd.DataFrame, name: str) -> FloatArray:
    if name not in table.columns:
        return np.full(len(table), np.nan)
    return table[name].to_numpy(dtype=np.float64, na_value=np.nan)


def _plural(count: FloatArray, word: str) -> Texts:
    return np.where(count == 1, word, word + "s")


def _lapse(table: pd.DataFrame, context: dict[str, str]) -> Texts:
    days = _column(table, "days_since_last_purchase")
    ratio = _column(table, "overdue_ratio")
    since = _join("no purchase for ", _text("%.0f", days), " days")
    return np.where(
        np.isfinite(ratio),
        _join(since, ", ", _text("%.1f", ratio), "× their usual gap"),
        _join("no repeat purchase in the ", _text("%.0f", days), " days since their first"),
    )


def _history(table: pd.DataFrame, context: dict[str, str]) -> Texts:
    frequency = _column(table, "frequency")
    age_days = _column(table, "T") * 7.0
    idle_days = _column(table, "days_since_last_purchase")
    p_none = _column(table, "_base_probability")
    count = np.where(
        frequency == 0,
        _join("a one-time buyer so far (first purchase ", _text("%.0f", age_days), " days ago)"),
        _join(
            _text("%.0f", frequency),
            " repeat ",
            _plural(frequency, "purchase"),
            ", the last ",
            _text("%.0f", idle_days),
            " days ago",
        ),
    )
    model = _join(
        " (BG/NBD: ",
        _text("%.0f", 100.0 * p_none),
        "% chance of no purchase in the next ",
        context["horizon"],
        ")",
    )
    return np.where(np.isfinite(p_none), _join(count, model), count)


def _momentum(table: pd.DataFrame, context: dict[str, str]) -> Texts:
    last = _column(table, "count_last_window")
    previous = _column(table, "count_prev_window")
    counts = _join(
        _text("%.0f", last),
        " ",
        _plural(last, "purchase"),
        " in the last 90 days vs ",
        _text("%.0f", previous),
        " in the 90 before",
    )
    return np.where((last == 0) & (previous == 0), "no purchase in the last 180 days", counts)


def _spend(table: pd.DataFrame, context: dict[str, str]) -> Texts:
    spend = _column(table, "monetary_value")
    return np.where(
        _column(table, "frequency") > 0,
        _join("average repeat spend ", _text("%.2f", spend)),
        "no repeat spend yet",
    )


def _returns(table: pd.DataFrame, context: dict[str, str]) -> Texts:
    share = _column(table, "return_share")
    return _join("returned ", _text("%.0f", 100.0 * share), "% of what they bought")


def _engagement(table: pd.DataFrame, context: dict[str, str]) -> Texts:
    recent = _column(table, "n_events_30d")
    quarter = _column(table, "n_events_90d")
    idle = _column(table, "days_since_last_event")
    before = (quarter - recent) / 2.0  # events per 30 days in the 60 days before
    with np.errstate(divide="ignore", invalid="ignore"):
        change = recent / before - 1.0
    moved = _join(
        np.where(change < 0, "engagement down ", "engagement up "),
        _text("%.0f", np.abs(100.0 * change)),
        "%",
    )
    trend = _join(
        np.where(np.abs(change) < 0.005, "engagement unchanged", moved),
        " in the last 30 days (",
        _text("%.0f", recent),
        " ",
        _plural(recent, "event"),
        " vs ",
        _text("%.1f", before),
        " a month before)",
    )
    quiet = np.where(
        np.isfinite(idle),
        _join("no engagement for ", _text("%.0f", idle), " days"),
        "no engagement events recorded",
    )
    new = _join(_text("%.0f", recent), " events in the last 30 days, none in the 60 before")
    return np.where(before > 0, trend, np.where(recent > 0, new, quiet))


def _sentiment(table: pd.DataFrame, context: dict[str, str]) -> Texts:
    last = _column(table, "value_last")
    trend = _column(table, "value_trend")
    mean = _column(table, "value_mean")
    moved = _join(
        "sentiment ",
        np.where(trend < 0, "fell", "rose"),
        " by ",
        _text("%.2f", np.abs(trend)),
        " in the last 30 days (latest ",
        _text("%+.2f", last),
        ")",
    )
    level = _join(
        "sentiment ", _text("%+.2f", mean), " on average (latest ", _text("%+.2f", last), ")"
    )
    return np.where(
        np.isfinite(trend), moved, np.where(np.isfinite(mean), level, "no sentiment recorded")
    )


def _channels(table: pd.DataFrame, context: dict[str, str]) -> Texts:
    count = _column(table, "n_channels")
    return _join("engages through ", _text("%.0f", count), " ", _plural(count, "channel"))


_WRITERS: dict[str, Callable[[pd.DataFrame, dict[str, str]], Texts]] = {
    "lapse": _lapse,
    "history": _history,
    "momentum": _momentum,
    "spend": _spend,
    "returns": _returns,
    "engagement": _engagement,
    "sentiment": _sentiment,
    "channels": _channels,
}


def _horizon_text(horizon: dt.timedelta) -> str:
    if horizon % dt.timedelta(weeks=1) == dt.timedelta(0):
        return f"{horizon // dt.timedelta(weeks=1)} weeks"
    return f"{horizon / dt.timedelta(days=1):g} days"


def explain(
    features: pd.DataFrame,
    contributions: npt.ArrayLike,
    feature_names: Sequence[str],
    *,
    base_margin: npt.ArrayLike,
    horizon: dt.timedelta,
    top: int = 3,
    reference: float | None = None,
) -> pd.DataFrame:
    """Rank each row's churn drivers and write them as text.

    Parameters
    ----------
    features : pandas.DataFrame
        The rows' feature values (the booster's inputs and ``T``), indexed by customer id.
    contributions : array_like
        ``(n_rows, n_features)`` log-odds contributions, in the order of ``feature_names``
        (``pred_contrib=True`` output without its last, expected-value column).
    feature_names : sequence of str
        Names of the contribution columns.
    base_margin : array_like
        The BG/NBD base margin of each row (log-odds of no purchase in ``horizon``). Its
        deviation from ``reference`` is added to the "history" driver, so a customer BG/NBD
        already rates as likely gone gets that reason too.
    horizon : datetime.timedelta
        The churn horizon, for the text.
    top : int, default 3
        Drivers per row.
    reference : float, optional
        The base margin counted as neutral; default its mean over the rows (then a row's
        reasons depend on the other rows: pass a fixed value to score rows one at a time).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``features``: ``reason_1`` .. ``reason_<top>`` (text; missing where fewer
        drivers push towards churn) and ``impact_1`` .. ``impact_<top>`` (log-odds).

    Examples
    --------
    >>> import datetime as dt
    >>> import numpy as np
    >>> import pandas as pd
    >>> X = pd.DataFrame({"days_since_last_purchase": [120.0, 10.0],
    ...                   "overdue_ratio": [3.1, 0.5], "frequency": [4.0, 0.0],
    ...                   "T": [40.0, 3.0]}, index=pd.Index(["a", "b"], name="customer_id"))
    >>> contrib = np.array([[0.8, 0.3, -0.1], [-0.5, -0.1, 0.2]])
    >>> out = explain(X, contrib, ["days_since_last_purchase", "overdue_ratio", "frequency"],
    ...               base_margin=np.array([0.0, 0.0]), horizon=dt.timedelta(weeks=39), top=2)
    >>> out.loc["a", "reason_1"], float(out.loc["a", "impact_1"]), out.loc["a", "reason_2"]
    ('no purchase for 120 days, 3.1× their usual gap', 1.1, None)
    >>> out.loc["b", "reason_1"]
    'a one-time buyer so far (first purchase 21 days ago) (BG/NBD: 50% chance of no purchase in the next 39 weeks)'
    """
    values = np.asarray(contributions, dtype=np.float64)
    margin = np.asarray(base_margin, dtype=np.float64)
    names = list(feature_names)
    if values.shape != (len(features), len(names)) or margin.shape != (len(features),):
        raise ValueError(
            f"contributions must be (n_rows, n_features) = ({len(features)}, {len(names)}) and "
            f"base_margin ({len(features)},); got {values.shape} and {margin.shape}."
        )
    drivers = list(dict.fromkeys([driver_of(name) for name in names] + ["history"]))
    membership = np.zeros((len(names), len(drivers)))
    for i, name in enumerate(names):
        membership[i, drivers.index(driver_of(name))] = 1.0
    grouped = values @ membership
    neutral = margin.mean() if reference is None else float(reference)
    grouped[:, drivers.index("history")] += margin - neutral
    table = features.assign(_base_probability=expit(margin))
    context = {"horizon": _horizon_text(horizon)}
    texts = np.empty((len(features), len(drivers)), dtype=object)
    for j, driver in enumerate(drivers):
        writer = _WRITERS.get(driver)
        if writer is None:
            texts[:, j] = _join(driver, " = ", _text("%.3g", _column(table, driver)))
        else:
            texts[:, j] = writer(table, context)
    k = min(int(top), len(drivers))
    order = np.argsort(-grouped, axis=1, kind="stable")[:, :k]
    impact = np.take_along_axis(grouped, order, axis=1)
    chosen = np.take_along_axis(texts, order, axis=1)
    pushes = impact > 0
    chosen = np.where(pushes, chosen, None)
    impact = np.where(pushes, impact, np.nan)
    out = pd.DataFrame(index=features.index)
    for i in range(int(top)):
        # Object dtype whatever the rows hold, so one row alone and a batch have one schema.
        text = chosen[:, i] if i < k else np.full(len(features), None, dtype=object)
        out[f"reason_{i + 1}"] = pd.Series(text, index=features.index, dtype=object)
    for i in range(int(top)):
        out[f"impact_{i + 1}"] = impact[:, i] if i < k else np.nan
    return out
