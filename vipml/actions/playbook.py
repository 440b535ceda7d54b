"""The playbook: which actions a customer is eligible for, what each costs and what it may win.

A :class:`Playbook` is an ordered table of :class:`Rule` objects. A rule makes an action
available to the customers it matches, by value segment, RFM segment, VIP tier, churn-risk band
and the driver of their top churn reason (any of these left as ``None`` matches everyone),
and says what the action costs per contact and what share of the value at stake it is
expected to win (``response``). :func:`~vipml.actions.next_best_action` then gives every
customer the available action with the highest expected net value (expected gain minus cost);
a customer for whom no action pays gets ``no_contact``.

The value at stake is what the action is about:

- ``"at_risk"`` (retention, reactivation, VIP care): ``CLV × P(churn)``, the value the
  customer takes away if they leave;
- ``"upgrade"``: the CLV the customer lacks to reach the next VIP tier (its threshold minus
  their CLV), the value an upgrade offer asks them to add.

The default responses are assumptions of the order of magnitude retention campaigns report;
replace them with your own measured ones (:func:`~vipml.actions.campaign_effect` measures
them) or with a fitted uplift model's predictions (``uplift=`` of
:func:`~vipml.actions.next_best_action`).

Churn reasons are text (``reason_1`` of the scores); :func:`reason_driver` reads the driver
each was written for ("lapse", "sentiment", ...), by the wording of
:mod:`vipml.churn.reasons`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from vipml.errors import DataValidationError

__all__ = [
    "DEFAULT_PLAYBOOK",
    "DEFAULT_PLAYBOOK_RULES",
    "DEFAULT_RISK_BANDS",
    "NO_CONTACT",
    "RISK_BANDS",
    "Playbook",
    "Rule",
    "reason_driver",
    "risk_band",
]

ValueKind = Literal["at_risk", "upgrade"]
Timing = Literal["rhythm", "now"]

#: The action of customers no rule pays for.
NO_CONTACT = "no_contact"
#: Names of the churn-risk bands, lowest first.
RISK_BANDS: tuple[str, ...] = ("low", "medium", "high")
#: Churn probabilities where the "medium" and the "high" band start.
DEFAULT_RISK_BANDS: tuple[float, float] = (0.3, 0.6)
_MATCHED = ("segment", "rfm_segment", "vip_tier", "risk", "reason")
_VALUE_KINDS = ("at_risk", "upgrade")

# The driver of a churn reason, from the opening words vipml.churn.reasons writes for it;
# tried in order, the first match wins.
_REASON_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("lapse", re.compile(r"^(no purchase for |no repeat purchase in the )")),
    ("momentum", re.compile(r"^(\d+ purchases? in the last |no purchase in the last )")),
    ("history", re.compile(r"^(a one-time buyer|\d+ repeat purchases?, the last)")),
    ("spend", re.compile(r"^(average repeat spend|no repeat spend)")),
    ("returns", re.compile(r"^returned ")),
    ("sentiment", re.compile(r"^(sentiment |no sentiment)")),
    ("engagement", re.compile(r"^(engagement |no engagement|\d+ events? in the last)")),
    ("channels", re.compile(r"^engages through ")),
)


def reason_driver(reasons: Iterable[Any]) -> npt.NDArray[np.object_]:
    """The driver each churn reason was written for, from its wording.

    Drivers are those of :mod:`vipml.churn.reasons`: ``lapse``, ``momentum``, ``history``,
    ``spend``, ``returns``, ``sentiment``, ``engagement``, ``channels``; ``other`` for a reason
    of another feature (written ``"name = value"``) and ``none`` where there is no reason.

    Parameters
    ----------
    reasons : iterable of str or None
        Reason texts (e.g. the ``reason_1`` column of the scores).

    Returns
    -------
    numpy.ndarray of str (object dtype)

    Examples
    --------
    >>> reason_driver(["no purchase for 120 days, 3.1× their usual gap",
    ...                "sentiment fell by 0.40 in the last 30 days (latest -0.50)",
    ...                "tenure = 3", None]).tolist()
    ['lapse', 'sentiment', 'other', 'none']
    """
    series = pd.Series(list(reasons), dtype=object)
    out = np.full(len(series), "none", dtype=object)
    present = (series.notna() & (series.astype(str).str.len() > 0)).to_numpy()
    if not present.any():
        return out
    texts = series[present].astype(str)
    driver = np.full(len(texts), "other", dtype=object)
    undecided = np.ones(len(texts), dtype=bool)
    for name, pattern in _REASON_PATTERNS:  # loop over the drivers, vectorised over texts
        hit = undecided & texts.str.match(pattern.pattern).to_numpy(dtype=bool)
        driver[hit] = name
        undecided &= ~hit
    out[present] = driver
    return out
    distinct = pd.unique(series[present].astype(str))
    lookup = {  # one pass per distinct wording, not per customer
        text: next((d for d, p in _REASON_PATTERNS if p.match(text)), "other") for text in distinct
    }
    out[present] = series[present].astype(str).map(lookup).to_numpy()
    return out


def risk_band(
    churn_probability: npt.ArrayLike, bands: Sequence[float] = DEFAULT_RISK_BANDS
) -> npt.NDArray[np.object_]:
    """The churn-risk band of each probability: ``low``, ``medium`` or ``high``.

    Parameters
    ----------
    churn_probability : array_like
        Probabilities in [0, 1].
    bands : (float, float), default (0.3, 0.6)
        Where "medium" and "high" start (a probability equal to a bound is in the upper band).

    Returns
    -------
    numpy.ndarray of str (object dtype)

    Examples
    --------
    >>> risk_band([0.1, 0.3, 0.59, 0.6, 0.95]).tolist()
    ['low', 'medium', 'medium', 'high', 'high']
    """
    p = np.asarray(churn_probability, dtype=np.float64)
    codes = np.searchsorted(np.asarray(bands, dtype=np.float64), p, side="right")
    return np.asarray(RISK_BANDS, dtype=object)[codes]


def _as_choice(value: Any, name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable):
        items = tuple(value)
        if items and all(isinstance(v, str) and v for v in items):
            return items
    raise DataValidationError(
        f"Rule {name}={value!r}: give a name, a list of names, or None for any."
    )


@dataclass(frozen=True)
class Rule:
    """One action of the playbook, the customers it is for, its cost and expected response.

    Attributes
    ----------
    action : str
        Name of the action (e.g. ``"retention_offer"``); the rules of one action may be
        several (the customer gets it if any matches).
    cost : float
        Cost of one contact, in currency units (>= 0).
    response : float
        Share of the value at stake the action is expected to win, in [0, 1] (0.1: it keeps
        one in ten of the customers who would otherwise have left).
    value : {"at_risk", "upgrade"}, default "at_risk"
        What is at stake: ``CLV × P(churn)``, or the CLV gap to the next VIP tier.
    segment, rfm_segment, vip_tier : str, tuple of str or None
        Value segments, RFM segments and VIP tiers the rule is for (None: any).
    risk : str, tuple of str or None
        Churn-risk bands (``"low"``, ``"medium"``, ``"high"``; None: any).
    reason : str, tuple of str or None
        Drivers of the customer's top churn reason (see :func:`reason_driver`; None: any).
    timing : {"rhythm", "now"}, default "rhythm"
        When to contact: when the customer's next purchase is overdue by their own rhythm
        (:func:`~vipml.actions.contact_timing`), or at once.
    description : str
        What the action is, for people reading the plan.
    """

    action: str
    cost: float
    response: float
    value: ValueKind = "at_risk"
    segment: str | tuple[str, ...] | None = None
    rfm_segment: str | tuple[str, ...] | None = None
    vip_tier: str | tuple[str, ...] | None = None
    risk: str | tuple[str, ...] | None = None
    reason: str | tuple[str, ...] | None = None
    timing: Timing = "rhythm"
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.action, str) or not self.action or self.action == NO_CONTACT:
            raise DataValidationError(
                f"Rule action must be a non-empty name other than {NO_CONTACT!r}, "
                f"got {self.action!r}."
            )
        for name in ("cost", "response"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise DataValidationError(f"Rule {self.action!r}: {name} must be a number.")
            object.__setattr__(self, name, float(value))
        if not (math.isfinite(self.cost) and self.cost >= 0):
            raise DataValidationError(
                f"Rule {self.action!r}: cost must be finite and >= 0, got {self.cost}."
            )
        if not 0.0 <= self.response <= 1.0:
            raise DataValidationError(
                f"Rule {self.action!r}: response must be a share in [0, 1], got {self.response}."
            )
        if self.value not in _VALUE_KINDS:
            raise DataValidationError(
                f"Rule {self.action!r}: value must be one of {_VALUE_KINDS}, got {self.value!r}."
            )
        for name in _MATCHED:
            object.__setattr__(self, name, _as_choice(getattr(self, name), name))
        if self.timing not in ("rhythm", "now"):
            raise DataValidationError(
                f"Rule {self.action!r}: timing must be 'rhythm' or 'now', got {self.timing!r}."
            )
        if self.risk is not None and set(self.risk) - set(RISK_BANDS):
            raise DataValidationError(
                f"Rule {self.action!r}: risk bands are {RISK_BANDS}, got {self.risk}."
            )


#: The default playbook, in priority order (ties of expected net value go to the earlier
#: rule). Costs are per contact in the currency of the amounts; responses are assumptions to
#: replace with measured ones. Tier names are vipml's defaults (``[tiers]`` of the config).
DEFAULT_PLAYBOOK_RULES: tuple[Rule, ...] = (
    Rule(
        "vip_experience",
        cost=25.0,
        response=0.20,
        vip_tier="VIP",
        description="A personal call, an invitation or early access: care for a VIP.",
    ),
    Rule(
        "service_recovery",
        cost=15.0,
        response=0.20,
        risk=("medium", "high"),
        reason=("sentiment", "returns"),
        description="Their reviews, tickets or returns went sour: a personal follow-up.",
    ),
    Rule(
        "retention_offer",
        cost=10.0,
        response=0.10,
        risk=("medium", "high"),
        description="A personal offer before they drift away.",
    ),
    Rule(
        "reactivation",
        cost=2.0,
        response=0.03,
        risk="high",
        timing="now",
        description="A low-cost win-back message for customers who have gone quiet.",
    ),
    Rule(
        "upgrade_offer",
        cost=5.0,
        response=0.10,
        value="upgrade",
        risk="low",
        vip_tier=("Gold", "Standard"),
        description="An offer that brings a loyal customer up to the next tier.",
    ),
)


@dataclass(frozen=True)
class Playbook:
    """An ordered set of :class:`Rule` objects and the churn-risk bands they refer to.

    Parameters
    ----------
    rules : sequence of Rule, default DEFAULT_PLAYBOOK_RULES
        The rules, in priority order.
    risk_bands : (float, float), default (0.3, 0.6)
        Churn probabilities where "medium" and "high" start.

    Examples
    --------
    >>> book = Playbook().with_costs({"retention_offer": 12.0}).without("reactivation")
    >>> book.actions
    ('vip_experience', 'service_recovery', 'retention_offer', 'upgrade_offer')
    >>> row = book.to_frame().loc["retention_offer"]
    >>> float(row["cost"]), float(row["response"]), row["risk"]
    (12.0, 0.1, 'medium, high')
    """

    rules: tuple[Rule, ...] = DEFAULT_PLAYBOOK_RULES
    risk_bands: tuple[float, float] = DEFAULT_RISK_BANDS

    def __post_init__(self) -> None:
        rules = tuple(self.rules)
        if not rules or not all(isinstance(r, Rule) for r in rules):
            raise DataValidationError("A playbook needs at least one Rule (vipml.actions.Rule).")
        object.__setattr__(self, "rules", rules)
        bands = tuple(float(b) for b in self.risk_bands)
        if len(bands) != 2 or not 0.0 < bands[0] < bands[1] < 1.0:
            raise DataValidationError(
                f"risk_bands must be two increasing probabilities in (0, 1), got {self.risk_bands}."
            )
        object.__setattr__(self, "risk_bands", bands)

    @property
    def actions(self) -> tuple[str, ...]:
        """The playbook's actions, in the order of their first rule."""
        return tuple(dict.fromkeys(r.action for r in self.rules))

    def _check_actions(self, names: Iterable[str]) -> None:
        unknown = sorted(set(names) - set(self.actions))
        if unknown:
            raise DataValidationError(
                f"The playbook has no action {unknown}; its actions are {list(self.actions)}."
            )

    def replace(self, action: str, **changes: Any) -> Playbook:
        """A copy with fields of every rule of ``action`` changed (e.g. ``cost=12.0``).

        Raises
        ------
        DataValidationError
            An unknown action or field, or a value the rule refuses.
        """
        self._check_actions([action])
        fields = {f.name for f in dataclasses.fields(Rule)} - {"action"}
        unknown = sorted(set(changes) - fields)
        if unknown:
            raise DataValidationError(f"Rule has no field {unknown}; fields: {sorted(fields)}.")
        rules = tuple(
            dataclasses.replace(r, **changes) if r.action == action else r for r in self.rules
        )
        return dataclasses.replace(self, rules=rules)

    def with_costs(self, costs: Mapping[str, float]) -> Playbook:
        """A copy with the cost per contact of some actions replaced."""
        self._check_actions(costs)
        book = self
        for action, cost in costs.items():
            book = book.replace(action, cost=cost)
        return book

    def with_responses(self, responses: Mapping[str, float]) -> Playbook:
        """A copy with the expected response of some actions replaced (e.g. measured ones)."""
        self._check_actions(responses)
        book = self
        for action, response in responses.items():
            book = book.replace(action, response=response)
        return book

    def with_rule(self, rule: Rule, *, first: bool = False) -> Playbook:
        """A copy with one more rule, last (or first: it wins ties)."""
        if not isinstance(rule, Rule):
            raise DataValidationError(f"with_rule takes a Rule, got {type(rule).__name__}.")
        rules = (rule, *self.rules) if first else (*self.rules, rule)
        return dataclasses.replace(self, rules=rules)

    def without(self, *actions: str) -> Playbook:
        """A copy without the rules of some actions."""
        self._check_actions(actions)
        return dataclasses.replace(
            self, rules=tuple(r for r in self.rules if r.action not in actions)
        )

    def to_frame(self) -> pd.DataFrame:
        """The rules as a table, one row per rule, indexed by action (lists joined by ", ")."""
        rows = []
        for rule in self.rules:
            row = dataclasses.asdict(rule)
            for name in _MATCHED:
                row[name] = None if row[name] is None else ", ".join(row[name])
            rows.append(row)
        return pd.DataFrame(rows).set_index("action")

    @classmethod
    def from_frame(cls, table: pd.DataFrame, **kwargs: Any) -> Playbook:
        """A playbook from a table like :meth:`to_frame`'s (e.g. read from a CSV file).

        Matching columns hold a name, names joined by ", ", or nothing (any). ``action`` is
        the index or a column; ``cost`` and ``response`` are required.
        """
        frame = table.reset_index() if "action" not in table.columns else table
        fields = {f.name for f in dataclasses.fields(Rule)}
        missing = sorted({"action", "cost", "response"} - set(frame.columns))
        unknown = sorted(set(frame.columns) - fields - {"index"})
        if missing or unknown:
            raise DataValidationError(
                f"A playbook table needs the columns action, cost and response and may have "
                f"{sorted(fields - {'action', 'cost', 'response'})}; missing {missing}, "
                f"unknown {unknown}."
            )
        rules = []
        for record in frame.drop(columns=["index"], errors="ignore").to_dict("records"):
            entry = {k: (None if _blank(v) else v) for k, v in record.items()}
            for name in _MATCHED:
                if isinstance(entry.get(name), str):
                    entry[name] = tuple(p.strip() for p in entry[name].split(",") if p.strip())
            entry["value"] = entry.get("value") or "at_risk"
            entry["timing"] = entry.get("timing") or "rhythm"
            entry["description"] = entry.get("description") or ""
            rules.append(Rule(**entry))
        return cls(tuple(rules), **kwargs)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


#: The default :class:`Playbook`.
DEFAULT_PLAYBOOK = Playbook()
