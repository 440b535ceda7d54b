"""A campaign within a budget: who to contact with what, and a random holdout to measure it.

:func:`plan_campaign` takes every customer's next best action and chooses the contacts that
maximise the expected net value (expected gain minus cost) without spending more than the
budget. With one action per customer this is a 0-1 knapsack: NP-hard in general, solved here
by the classic greedy rule, customers in decreasing order of expected gain per unit of cost,
taken while the budget lasts; then the budget left is filled with the next customers that
still fit, in the same order.

What greedy loses is bounded: the linear relaxation of the knapsack (the greedy prefix plus a
fraction of the first customer that does not fit) is an upper bound on the best possible plan
(Dantzig 1957), so the greedy plan is never worse than the optimum by more than that first
customer's net value, one contact's worth. The plan reports the bound (``summary
["upper_bound"]``). With thousands of contacts under a budget of many contacts, the loss is
negligible; it matters only for budgets of a handful of expensive contacts.

Then a random share of the chosen customers, drawn separately for each action (stratified)
with a seeded generator, is kept as a holdout: they are not contacted, and
:func:`~vipml.actions.campaign_effect` compares the contacted customers with them. The list is
sized so that the contacted customers alone never cost more than the budget.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from vipml.actions.next_best import NBA_COLUMNS, next_best_action
from vipml.actions.playbook import NO_CONTACT, Playbook
from vipml.actions.policy import ContactPolicy, withheld_reasons
from vipml.data.validate import as_timestamp
from vipml.errors import DataValidationError
from vipml.features.cycle import parse_duration

__all__ = ["PLAN_COLUMNS", "CampaignPlan", "plan_campaign", "read_plan"]

#: Columns of :attr:`CampaignPlan.table`, in order (indexed by customer id).
PLAN_COLUMNS: tuple[str, ...] = ("group", "priority", *NBA_COLUMNS, "scored_at")
TREATED, HOLDOUT = "treated", "holdout"
_METADATA_KEY = b"vipml.campaign_plan"


@dataclass(frozen=True, eq=False)
class CampaignPlan:
    """Result of :func:`plan_campaign`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per customer of the campaign, contacted (``group == "treated"``) or held out
        (``"holdout"``), indexed by customer id and sorted by ``priority`` (1: best expected
        gain per unit of cost); columns :data:`PLAN_COLUMNS`. A holdout row says what the
        customer would have got.
    withheld : pandas.DataFrame
        Customers the contact policy withheld before the choice: ``action`` (what they would
        have been offered) and ``reason``.
    summary : dict
        ``budget``, ``spent`` (cost of the contacted customers), ``n_candidates`` (customers
        with an action worth its cost), ``n_treated``, ``n_holdout``, ``holdout`` (the share
        asked for), ``expected_value`` and ``expected_net_value`` of the contacts,
        ``greedy_value`` and ``upper_bound`` (expected net value of the whole list, treated
        and holdout, and the bound no plan of that size can beat), ``by_action``,
        ``withheld`` (counts by reason), ``random_state``, ``scored_at`` and ``window_days`` (the response window, if given).
    """

    table: pd.DataFrame
    withheld: pd.DataFrame
    summary: dict[str, Any]

    @property
    def treated(self) -> pd.DataFrame:
        """The customers to contact."""
        return self.table[self.table["group"] == TREATED]

    @property
    def holdout(self) -> pd.DataFrame:
        """The customers held out to measure the campaign."""
        return self.table[self.table["group"] == HOLDOUT]

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"CampaignPlan(treated={s['n_treated']}, holdout={s['n_holdout']}, "
            f"spent={s['spent']:.2f} of {s['budget']:.2f}, expected net value "
            f"{s['expected_net_value']:.2f})"
        )

    def to_parquet(self, path: str | os.PathLike[str]) -> Path:
        """Write the table as Parquet, with the summary in the file's metadata.

        :func:`read_plan` reads it back (``pandas.read_parquet`` reads the table alone).
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        target = Path(path)
        arrow = pa.Table.from_pandas(self.table)
        meta = dict(arrow.schema.metadata or {})
        meta[_METADATA_KEY] = json.dumps(
            {"summary": self.summary, "withheld": _withheld_records(self.withheld)},
            default=str,
            sort_keys=True,
        ).encode()
        pq.write_table(arrow.replace_schema_metadata(meta), target)
        return target


def _withheld_records(withheld: pd.DataFrame) -> list[dict[str, Any]]:
    frame = withheld.rename_axis("customer_id").reset_index().astype(object)
    return frame.where(frame.notna(), None).to_dict("records")


def read_plan(path: str | os.PathLike[str]) -> CampaignPlan:
    """Read a plan written by :meth:`CampaignPlan.to_parquet`.

    Raises
    ------
    DataValidationError
        The file is not a campaign plan (missing columns).
    """
    import pyarrow.parquet as pq

    try:
        arrow = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise DataValidationError(f"cannot read the plan {path} as Parquet ({exc}).") from None
    table = arrow.to_pandas()
    missing = [c for c in ("group", "action", "cost") if c not in table.columns]
    if missing:
        raise DataValidationError(
            f"{path} is not a campaign plan: it lacks the column(s) {missing} (write plans "
            "with plan_campaign(...).to_parquet or `vipml plan`)."
        )
    raw = (arrow.schema.metadata or {}).get(_METADATA_KEY)
    stored = json.loads(raw) if raw else {"summary": {}, "withheld": []}
    withheld = pd.DataFrame(stored["withheld"], columns=["customer_id", "action", "reason"])
    return CampaignPlan(
        table=table, withheld=withheld.set_index("customer_id"), summary=stored["summary"]
    )


def _as_actions(
    scores: pd.DataFrame,
    *,
    playbook: Playbook | None,
    tiers: Any,
    uplift: Any,
    uplift_kind: Literal["probability", "value"],
    at: Any,
    costs: Mapping[str, float] | None,
    overdue_factor: float,
) -> pd.DataFrame:
    """The next best actions: given as such, or computed from the scores."""
    if not isinstance(scores, pd.DataFrame):
        raise DataValidationError(
            f"scores must be a pandas DataFrame (VipPipeline.score or next_best_action), got "
            f"{type(scores).__name__}."
        )
    if set(NBA_COLUMNS) <= set(scores.columns):
        if playbook is not None or tiers is not None or uplift is not None:
            raise DataValidationError(
                "scores are already next best actions: playbook, tiers and uplift apply to "
                "scores; pass the scores, or the actions without them."
            )
        actions = scores[list(NBA_COLUMNS)].copy()
        if costs:
            for action, cost in costs.items():
                rows = actions["action"] == action
                actions.loc[rows, "cost"] = float(cost)
                actions.loc[rows, "net_value"] = actions.loc[rows, "expected_value"] - float(cost)
        return actions
    return next_best_action(
        scores,
        playbook,
        tiers=tiers,
        uplift=uplift,
        uplift_kind=uplift_kind,
        at=at,
        costs=costs,
        overdue_factor=overdue_factor,
    )


def _positive_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise DataValidationError(f"{name} must be a number, got {value!r}.")
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise DataValidationError(f"{name} must be finite and positive, got {value!r}.")
    return number


def _greedy(cost: np.ndarray, net: np.ndarray, capacity: float) -> tuple[np.ndarray, float]:
    """Greedy choice over items already in decreasing order of value per cost.

    Returns the chosen mask and the linear-relaxation bound on the best total net value.
    """
    n = cost.size
    total = np.cumsum(cost)
    fits = total <= capacity * (1 + 1e-12)
    stop = int(np.argmin(fits)) if not fits.all() else n
    take = np.zeros(n, dtype=bool)
    take[:stop] = True
    used = float(total[stop - 1]) if stop else 0.0
    if stop == n:
        return take, float(net.sum())
    bound = float(net[:stop].sum()) + (capacity - used) / float(cost[stop]) * float(net[stop])
    left, start = capacity - used, stop + 1
    positions = np.arange(n)
    while start < n:  # fill: at most (budget left / cheapest cost) rounds
        fitting = (positions >= start) & (cost <= left * (1 + 1e-12))
        if not fitting.any():
            break
        i = int(np.argmax(fitting))
        take[i] = True
        left -= float(cost[i])
        start = i + 1
    return take, bound


def plan_campaign(
    scores: pd.DataFrame,
    budget: float,
    *,
    costs: Mapping[str, float] | None = None,
    playbook: Playbook | None = None,
    tiers: Any = None,
    uplift: Any = None,
    uplift_kind: Literal["probability", "value"] = "probability",
    at: Any = None,
    holdout: float = 0.1,
    window: Any = None,
    contact_policy: ContactPolicy | Callable[[pd.DataFrame], Any] | None = None,
    overdue_factor: float = 1.0,
    random_state: int = 0,
) -> CampaignPlan:
    """Choose the contacts of a campaign within a budget, and hold a random group out.

    Parameters
    ----------
    scores : pandas.DataFrame
        :meth:`vipml.VipPipeline.score`'s table, or :func:`~vipml.actions.next_best_action`'s
        (then ``playbook``, ``tiers`` and ``uplift`` must be left out). Not modified.
    budget : float
        Most the contacted customers may cost, in the currency of the costs.
    costs : mapping of str to float, optional
        Cost per contact of some actions, replacing the playbook's.
    playbook, tiers, uplift, uplift_kind, at, overdue_factor
        As in :func:`~vipml.actions.next_best_action`; ``at`` (the scoring date) also marks
        the start of the campaign for :func:`~vipml.actions.campaign_effect`.
    holdout : float, default 0.1
        Share of the chosen customers of each action kept out of the campaign, in [0, 1):
        ``ceil(holdout × n)`` of the ``n`` customers chosen for an action. 0 plans a campaign
        that cannot be measured.
    window : str or timedelta, optional
        How long after ``at`` the campaign's responses will count (``"8W"``); kept in the
        summary, where :func:`~vipml.actions.campaign_effect` finds it.
    contact_policy : callable, optional
        A :class:`~vipml.actions.ContactPolicy`, applied before the choice: withheld
        customers take neither budget nor a place in the holdout, and are reported.
    random_state : int, default 0
        Seed of the holdout draw. The same actions, budget and seed give the same plan,
        whatever the order of the rows.

    Returns
    -------
    CampaignPlan

    Raises
    ------
    DataValidationError
        A budget that is not positive, a holdout share outside [0, 1), or bad scores.

    Examples
    --------
    >>> scores = pd.DataFrame({
    ...     "clv": np.linspace(100.0, 2000.0, 40), "churn_probability": np.linspace(0.05, 0.9, 40),
    ...     "vip_tier": ["Standard"] * 30 + ["Gold"] * 8 + ["VIP"] * 2,
    ...     "segment": "Loyal", "rfm_segment": "Loyal",
    ...     "days_since_last_purchase": 20.0, "gap_median_days": 30.0},
    ...     index=pd.Index([f"c{i:02d}" for i in range(40)], name="customer_id"))
    >>> plan = plan_campaign(scores, budget=150.0, tiers={"VIP": 1900.0, "Gold": 1500.0},
    ...                      at="2025-06-30", holdout=0.2, random_state=1)
    >>> plan.summary["spent"] <= 150.0, plan.summary["n_treated"], plan.summary["n_holdout"]
    (True, 15, 6)
    >>> plan.treated["action"].value_counts().to_dict()
    {'upgrade_offer': 9, 'retention_offer': 5, 'vip_experience': 1}
    """
    money = _positive_number(budget, "budget")
    span = None if window is None else parse_duration(window, "window")
    if isinstance(holdout, bool) or not isinstance(holdout, int | float | np.number):
        raise DataValidationError(f"holdout must be a share in [0, 1), got {holdout!r}.")
    share = float(holdout)
    if not 0.0 <= share < 1.0:
        raise DataValidationError(f"holdout must be a share in [0, 1), got {holdout!r}.")
    actions = _as_actions(
        scores,
        playbook=playbook,
        tiers=tiers,
        uplift=uplift,
        uplift_kind=uplift_kind,
        at=at,
        costs=costs,
        overdue_factor=overdue_factor,
    )
    # candidates in a fixed order (by customer id): the plan does not depend on row order
    candidates = actions[
        (actions["action"].to_numpy() != NO_CONTACT) & (actions["net_value"].to_numpy() > 0)
    ]
    candidates = candidates.sort_index(kind="stable")
    withheld = pd.DataFrame(
        {"action": pd.Series(dtype=object), "reason": pd.Series(dtype=object)},
        index=actions.index[:0],
    )
    if contact_policy is not None and len(candidates):
        why = withheld_reasons(contact_policy, candidates)
        held = why.notna().to_numpy()
        withheld = pd.DataFrame(
            {"action": candidates["action"][held], "reason": why[held]},
            index=candidates.index[held],
        )
        candidates = candidates[~held]

    cost = candidates["cost"].to_numpy(dtype=np.float64)
    expected = candidates["expected_value"].to_numpy(dtype=np.float64)
    net = candidates["net_value"].to_numpy(dtype=np.float64)
    if (cost < 0).any() or not np.isfinite(cost).all():
        raise DataValidationError("Costs must be finite and >= 0.")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(cost > 0, expected / cost, np.inf)
    order = np.lexsort((np.arange(len(candidates)), -net, -ratio))
    capacity = money / (1.0 - share)
    take, bound = _greedy(cost[order], net[order], capacity)
    chosen = order[take]
    listed = candidates.iloc[np.sort(chosen)].copy()  # by customer id
    priority = np.empty(len(candidates), dtype=np.int64)
    priority[order] = np.arange(1, len(candidates) + 1)
    listed.insert(0, "priority", priority[np.sort(chosen)])
    listed.insert(0, "group", _holdout_groups(listed["action"].to_numpy(), share, random_state))

    # the contacted customers alone never cost more than the budget
    contacted = listed["group"].to_numpy() == TREATED
    spent = float(listed["cost"].to_numpy()[contacted].sum())
    if spent > money:  # only through rounding: drop the last contacts by priority
        by_priority = listed[contacted].sort_values("priority", kind="stable")
        keep = by_priority["cost"].cumsum().to_numpy() <= money
        listed = listed.drop(index=by_priority.index[~keep])
        contacted = listed["group"].to_numpy() == TREATED
        spent = float(listed["cost"].to_numpy()[contacted].sum())
    stamp = pd.NaT if at is None else as_timestamp(at, "at")
    listed["scored_at"] = pd.Series(stamp, index=listed.index, dtype="datetime64[ns]")
    listed = listed.sort_values("priority", kind="stable")[list(PLAN_COLUMNS)]

    treated = listed[listed["group"] == TREATED]
    summary = {
        "budget": money,
        "spent": spent,
        "n_candidates": len(candidates),
        "n_treated": int((listed["group"] == TREATED).sum()),
        "n_holdout": int((listed["group"] == HOLDOUT).sum()),
        "holdout": share,
        "expected_value": float(treated["expected_value"].sum()),
        "expected_net_value": float(treated["net_value"].sum()),
        "greedy_value": float(listed["net_value"].sum()),
        "upper_bound": bound,
        "by_action": {
            str(a): {
                "treated": int(((listed["action"] == a) & (listed["group"] == TREATED)).sum()),
                "holdout": int(((listed["action"] == a) & (listed["group"] == HOLDOUT)).sum()),
            }
            for a in pd.unique(listed["action"])
        },
        "withheld": {str(k): int(v) for k, v in withheld["reason"].value_counts().items()},
        "random_state": int(random_state),
        "scored_at": None if at is None else stamp.isoformat(),
        "window_days": None if span is None else span / dt.timedelta(days=1),
    }
    return CampaignPlan(table=listed, withheld=withheld, summary=summary)


def _holdout_groups(action: np.ndarray, share: float, random_state: int) -> np.ndarray:
    """``ceil(share × n)`` random holdout customers within each action, the rest treated."""
    groups = np.full(action.size, TREATED, dtype=object)
    if share == 0.0 or action.size == 0:
        return groups
    rng = np.random.default_rng(random_state)
    keys = rng.random(action.size)
    codes, names = pd.factorize(action, sort=True)
    order = np.lexsort((keys, codes))
    sizes = np.bincount(codes, minlength=len(names))
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    rank = np.empty(action.size, dtype=np.int64)
    rank[order] = np.arange(action.size) - starts[codes[order]]
    wanted = np.ceil(share * sizes - 1e-9).astype(np.int64)
    groups[rank < wanted[codes]] = HOLDOUT
    return groups
