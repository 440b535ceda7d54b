"""Did the campaign pay? Contacted customers against the random holdout, with intervals.

:func:`campaign_effect` reads what every customer of a plan did in the window after the
campaign started (through :func:`vipml.features.labels_after`, so the returns policy and the
purchase definition are vipml's own) and compares the contacted customers with the held-out
ones: the share who bought, the revenue per customer, the share who churned (no purchase in
the window) and, given the fitted pipeline, the CLV at the end of the window.

The holdout is drawn separately for each action, so the estimate is stratified by action:
within a group (all customers, one action, one segment, one tier) the effect is the mean over
its actions of (treated mean − holdout mean), weighted by the action's number of customers in
the group. That is the average effect of the campaign on the group's customers, whatever the
holdout share of each action. Intervals are percentile bootstraps that resample treated and
holdout customers within each action (seeded). The incremental total is the effect times the
number of contacted customers; ROI is ``(incremental revenue − cost) / cost``.

A group with fewer than ``min_group`` treated or held-out customers gets no estimate: its row
is flagged (``reliable`` False, a ``note``) and its figures are missing. A campaign whose
whole list is too small is refused with an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import narwhals.stable.v2 as nw
import numpy as np
import pandas as pd

from vipml.actions.plan import HOLDOUT, TREATED, CampaignPlan
from vipml.data.columns import Columns
from vipml.data.validate import as_timestamp
from vipml.errors import DataValidationError
from vipml.features.cycle import parse_duration
from vipml.features.split import labels_after

__all__ = ["EFFECT_COLUMNS", "EFFECT_METRICS", "campaign_effect"]

#: Metrics of :func:`campaign_effect` (``clv`` only with a pipeline).
EFFECT_METRICS: tuple[str, ...] = ("purchase_rate", "revenue", "churn_rate", "clv")
#: Columns of :func:`campaign_effect`.
EFFECT_COLUMNS: tuple[str, ...] = (
    "n_treated",
    "n_holdout",
    "treated",
    "holdout",
    "effect",
    "effect_low",
    "effect_high",
    "incremental",
    "incremental_low",
    "incremental_high",
    "cost",
    "roi",
    "roi_low",
    "roi_high",
    "reliable",
    "note",
)
_CHUNK = 4_000_000  # most floats one bootstrap batch holds


def _labels(transactions: Any, start: pd.Timestamp, window: Any, columns: Columns | None) -> Any:
    native = labels_after(transactions, start, window, columns=columns)
    if isinstance(native, pd.DataFrame):
        return native
    frame = nw.from_native(native)
    if isinstance(frame, nw.LazyFrame):
        frame = frame.collect()
    return frame.to_pandas().set_index("customer_id")


def _plan_table(plan: Any) -> pd.DataFrame:
    table = plan.table if isinstance(plan, CampaignPlan) else plan
    if not isinstance(table, pd.DataFrame):
        raise DataValidationError(
            f"plan must be a CampaignPlan or its table, got {type(plan).__name__}."
        )
    missing = [c for c in ("group", "action", "cost") if c not in table.columns]
    if missing:
        raise DataValidationError(
            f"the plan lacks the column(s) {missing}: pass plan_campaign's result or its table."
        )
    groups = set(pd.unique(table["group"].astype(str)))
    if groups - {TREATED, HOLDOUT}:
        raise DataValidationError(
            f"the plan's group column holds {sorted(groups - {TREATED, HOLDOUT})}; it must be "
            f"{TREATED!r} or {HOLDOUT!r}."
        )
    if table.index.has_duplicates:
        raise DataValidationError("the plan repeats customers: one row per customer.")
    return table


def _start(table: pd.DataFrame, start: Any) -> pd.Timestamp:
    if start is not None:
        return as_timestamp(start, "start")
    stamps = pd.unique(table["scored_at"].dropna()) if "scored_at" in table.columns else []
    if len(stamps) != 1:
        raise DataValidationError(
            "the campaign's start is unknown: the plan has no single scoring date "
            "(plan_campaign(..., at=...)); pass start=..."
        )
    return pd.Timestamp(stamps[0])


def _window(plan: Any, window: Any) -> Any:
    if window is not None:
        return parse_duration(window, "window")
    days = plan.summary.get("window_days") if isinstance(plan, CampaignPlan) else None
    if days is None:
        raise DataValidationError(
            "the response window is unknown: pass window=... (e.g. '8W'), or plan with "
            "plan_campaign(..., window=...)."
        )
    return parse_duration(pd.Timedelta(days=float(days)), "window")


def _bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, metrics)`` means of resamples (with replacement) of the rows of ``values``."""
    n, m = values.shape
    out = np.empty((n_boot, m))
    step = max(1, _CHUNK // max(1, n * m))
    for lo in range(0, n_boot, step):  # loop over batches of replicates, not customers
        hi = min(n_boot, lo + step)
        idx = rng.integers(0, n, size=(hi - lo, n))
        out[lo:hi] = values[idx].mean(axis=1)
    return out


def _estimate(
    outcomes: np.ndarray,
    treated: np.ndarray,
    action: np.ndarray,
    cost: np.ndarray,
    *,
    n_boot: int,
    level: float,
    min_group: int,
    rng: np.random.Generator,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray]:
    """Stratified effects of one group: facts, then (point, low, high) per metric."""
    m = outcomes.shape[1]
    strata = pd.unique(action)
    usable, left_out = [], 0
    for a in strata:  # loop over the few actions
        cell = action == a
        n_t, n_h = int((cell & treated).sum()), int((cell & ~treated).sum())
        if n_t and n_h:
            usable.append((cell, n_t, n_h))
        else:
            left_out += n_t + n_h
    n_t = sum(u[1] for u in usable)
    n_h = sum(u[2] for u in usable)
    spent = float(sum(cost[u[0] & treated].sum() for u in usable))
    notes = []
    if left_out:
        notes.append(f"{left_out} customer(s) of actions without both groups left out")
    facts = {"n_treated": n_t, "n_holdout": n_h, "cost": spent}
    nan = np.full(m, np.nan)
    if n_t < min_group or n_h < min_group:
        notes.append(
            f"too few customers to measure: {n_t} treated and {n_h} held out, fewer than "
            f"min_group={min_group} in a group"
        )
        facts.update(reliable=False, note="; ".join(notes))
        return facts, nan, np.vstack([nan, nan]), nan
    total = n_t + n_h
    point_t, point_h = np.zeros(m), np.zeros(m)
    reps = np.zeros((n_boot, m))
    for cell, c_t, c_h in usable:
        weight = (c_t + c_h) / total
        y_t = outcomes[cell & treated]
        y_h = outcomes[cell & ~treated]
        point_t += weight * y_t.mean(axis=0)
        point_h += weight * y_h.mean(axis=0)
        reps += weight * (_bootstrap_means(y_t, n_boot, rng) - _bootstrap_means(y_h, n_boot, rng))
    tail = (1.0 - level) / 2.0
    bounds = np.quantile(reps, [tail, 1.0 - tail], axis=0)
    facts.update(
        reliable=True, note="; ".join(notes) if notes else None, treated=point_t, holdout=point_h
    )
    return facts, point_t - point_h, bounds, reps


def campaign_effect(
    plan: CampaignPlan | pd.DataFrame,
    transactions: Any,
    events: Any = None,
    *,
    window: Any = None,
    start: Any = None,
    by: Sequence[str] = ("action", "segment", "vip_tier"),
    pipeline: Any = None,
    columns: Columns | None = None,
    level: float = 0.9,
    n_boot: int = 1000,
    min_group: int = 30,
    random_state: int = 0,
) -> pd.DataFrame:
    """The campaign's effect: contacted against held-out customers, overall and by group.

    Parameters
    ----------
    plan : CampaignPlan or pandas.DataFrame
        :func:`~vipml.actions.plan_campaign`'s result (or its table, e.g. read back with
        :func:`~vipml.actions.read_plan`): ``group``, ``action``, ``cost`` and the columns of
        ``by``, indexed by customer id.
    transactions : DataFrame-like
        The transaction log covering ``(start, start + window]``.
    events : DataFrame-like, optional
        The event log, when ``pipeline`` was fitted with events.
    window : str or timedelta, optional
        How long after the start responses count, with a unit (``"8W"``); default the
        window the plan was made for (``plan_campaign(..., window=...)``).
    start : str, date or datetime, optional
        When the campaign started; default the plan's ``scored_at``.
    by : sequence of str, default ("action", "segment", "vip_tier")
        Plan columns to break the effect down by (those absent from the plan are skipped).
    pipeline : VipPipeline, optional
        A fitted pipeline: adds the ``clv`` metric, the customers' CLV scored at the end of
        the window.
    columns : Columns, optional
        Names of the log's columns.
    level : float, default 0.9
        Level of the bootstrap intervals.
    n_boot : int, default 1000
        Bootstrap replicates.
    min_group : int, default 30
        Fewest treated and fewest held-out customers a group needs for an estimate.
    random_state : int, default 0
        Seed of the bootstrap.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(dimension, group, metric)``: dimension ``"all"`` (group ``"all"``)
        then each of ``by``; metrics :data:`EFFECT_METRICS`. Columns
        :data:`EFFECT_COLUMNS`: group sizes, the (action-weighted) treated and holdout
        means, the effect per customer with its interval, the incremental total over the
        contacted customers with its interval, the cost of those contacts and, on revenue
        rows, the ROI with its interval; ``reliable`` and a ``note`` for flagged rows.

    Raises
    ------
    DataValidationError
        The whole campaign has fewer than ``min_group`` treated or held-out customers, the
        log does not cover the window, plan customers are unknown to the log, or bad
        arguments.

    Examples
    --------
    >>> from vipml.data import simulate, simulate_campaign
    >>> sim = simulate(2000, "2024-01-01", "2025-12-31", population="mixture", random_state=3)
    >>> ids = sim.truth.index
    >>> rng = np.random.default_rng(0)
    >>> plan = pd.DataFrame({"group": np.where(rng.random(ids.size) < 0.5, "treated", "holdout"),
    ...                      "action": "retention_offer", "cost": 5.0}, index=ids)
    >>> campaign = simulate_campaign(sim, ids[plan["group"] == "treated"], "2025-06-30", "8W")
    >>> effect = campaign_effect(plan, campaign.transactions, window="8W", start="2025-06-30",
    ...                          n_boot=200)
    >>> row = effect.loc[("all", "all", "revenue")]
    >>> bool(row["effect_low"] < campaign.truth["uplift_spend"].mean() < row["effect_high"])
    True
    """
    table = _plan_table(plan)
    if not (isinstance(min_group, int) and min_group >= 1):
        raise DataValidationError(f"min_group must be a positive integer, got {min_group!r}.")
    if not (isinstance(n_boot, int) and n_boot >= 100):
        raise DataValidationError(f"n_boot must be an integer >= 100, got {n_boot!r}.")
    if not 0.0 < float(level) < 1.0:
        raise DataValidationError(f"level must be in (0, 1), got {level!r}.")
    unknown = [d for d in by if not isinstance(d, str)]
    if unknown:
        raise DataValidationError(f"by must name plan columns, got {unknown}.")
    dims = [d for d in by if d in table.columns]
    stamp = _start(table, start)
    span = _window(plan, window)
    labels = _labels(transactions, stamp, span, columns)
    missing = table.index.difference(labels.index)
    if len(missing):
        raise DataValidationError(
            f"{len(missing)} plan customer(s) have no purchase by the campaign start "
            f"{stamp.date()} in this log, e.g. {list(missing[:3])}: measure with the log the "
            "plan was made from (the same customer ids and column names)."
        )
    after = labels.reindex(table.index)
    metrics = ["purchase_rate", "revenue", "churn_rate"]
    values = [
        (after["purchases_next"].to_numpy(dtype=np.float64) > 0).astype(np.float64),
        after["spend_next"].to_numpy(dtype=np.float64),
        after["churned"].to_numpy(dtype=np.float64),
    ]
    if pipeline is not None:
        scored = pipeline.score(transactions, events, at=stamp + span)
        values.append(scored["clv"].reindex(table.index).to_numpy(dtype=np.float64))
        metrics.append("clv")
    outcomes = np.column_stack(values)
    treated = table["group"].astype(str).to_numpy() == TREATED
    action = table["action"].astype(str).to_numpy()
    cost = table["cost"].to_numpy(dtype=np.float64)

    groups: list[tuple[str, str, np.ndarray]] = [("all", "all", np.ones(len(table), bool))]
    for dim in dims:
        labels_ = table[dim].astype(str).to_numpy()
        for value in sorted(pd.unique(labels_)):
            groups.append((dim, value, labels_ == value))
    rows, keys = [], []
    for i, (dim, value, rows_in) in enumerate(groups):  # loop over groups, not customers
        rng = np.random.default_rng([int(random_state), i])
        facts, point, bounds, reps = _estimate(
            outcomes[rows_in],
            treated[rows_in],
            action[rows_in],
            cost[rows_in],
            n_boot=n_boot,
            level=float(level),
            min_group=min_group,
            rng=rng,
        )
        if dim == "all" and not facts["reliable"]:
            raise DataValidationError(
                f"The campaign cannot be measured: {facts['note']}. Plan a larger campaign or "
                "holdout, or lower min_group knowingly."
            )
        n_t, spent = facts["n_treated"], facts["cost"]
        tail = (1.0 - float(level)) / 2.0
        for j, metric in enumerate(metrics):
            row = {
                "n_treated": n_t,
                "n_holdout": facts["n_holdout"],
                "treated": facts["treated"][j] if facts["reliable"] else np.nan,
                "holdout": facts["holdout"][j] if facts["reliable"] else np.nan,
                "effect": point[j],
                "effect_low": bounds[0][j],
                "effect_high": bounds[1][j],
                "incremental": point[j] * n_t,
                "incremental_low": bounds[0][j] * n_t,
                "incremental_high": bounds[1][j] * n_t,
                "cost": spent,
                "roi": np.nan,
                "roi_low": np.nan,
                "roi_high": np.nan,
                "reliable": facts["reliable"],
                "note": facts["note"],
            }
            if metric == "revenue" and spent > 0 and facts["reliable"]:
                roi = (reps[:, j] * n_t - spent) / spent
                row["roi"] = (point[j] * n_t - spent) / spent
                row["roi_low"], row["roi_high"] = np.quantile(roi, [tail, 1.0 - tail])
            rows.append(row)
            keys.append((dim, value, metric))
    # levels in order of appearance: the index reads "all" first and is lexsorted (fast .loc)
    levels = [list(dict.fromkeys(key[i] for key in keys)) for i in range(3)]
    codes = [[levels[i].index(key[i]) for key in keys] for i in range(3)]
    index = pd.MultiIndex(levels=levels, codes=codes, names=["dimension", "group", "metric"])
    out = pd.DataFrame(rows, index=index)
    out["n_treated"] = out["n_treated"].astype(np.int64)
    out["n_holdout"] = out["n_holdout"].astype(np.int64)
    out["reliable"] = out["reliable"].astype(bool)
    out["note"] = out["note"].astype(object)
    return out[list(EFFECT_COLUMNS)]
