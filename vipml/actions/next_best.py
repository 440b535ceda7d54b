"""One action per customer: the playbook's best bet, its value at stake, its timing, in words."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from vipml.actions.playbook import (
    DEFAULT_PLAYBOOK,
    NO_CONTACT,
    Playbook,
    Rule,
    reason_driver,
    risk_band,
)
from vipml.actions.policy import ContactPolicy, withheld_reasons
from vipml.actions.timing import _join, _text, contact_timing
from vipml.errors import DataValidationError, DataWarning

__all__ = ["NBA_COLUMNS", "next_best_action", "tier_thresholds"]

FloatArray = npt.NDArray[np.float64]

#: Columns of :func:`next_best_action`, in order (indexed by customer id).
NBA_COLUMNS: tuple[str, ...] = (
    "action",
    "cost",
    "value_at_stake",
    "expected_value",
    "net_value",
    "risk_band",
    "reason_driver",
    "reason",
    "contact_after_days",
    "contact_date",
    "timing",
    "segment",
    "rfm_segment",
    "vip_tier",
    "clv",
    "churn_probability",
)
_CARRIED = ("segment", "rfm_segment", "vip_tier")


def tier_thresholds(pipeline: Any) -> dict[str, float]:
    """The CLV from which each VIP tier starts, best tier first, from a fitted pipeline.

    Parameters
    ----------
    pipeline : VipPipeline
        A fitted pipeline (its ``tier_thresholds_`` and ``config_.tiers.names``).

    Returns
    -------
    dict of str to float
    """
    try:
        names = list(pipeline.config_.tiers.names)
        values = [float(v) for v in pipeline.tier_thresholds_]
    except AttributeError as exc:
        raise DataValidationError(
            "tiers must be a fitted VipPipeline or a mapping {tier name: CLV threshold}, best "
            f"tier first; got {type(pipeline).__name__}."
        ) from exc
    return dict(zip(names, values, strict=True))


def _thresholds(tiers: Any, scores: pd.DataFrame) -> dict[str, float]:
    if isinstance(tiers, Mapping):
        out = {str(k): float(v) for k, v in tiers.items()}
        values = list(out.values())
        if any(a < b for a, b in zip(values, values[1:], strict=False)):
            raise DataValidationError(
                f"tiers must list the CLV thresholds best tier first (decreasing), got {out}."
            )
        return out
    if tiers is not None:
        return tier_thresholds(tiers)
    floors = scores.groupby(scores["vip_tier"].astype(str), observed=True)["clv"].min()
    floors = floors.sort_values(ascending=False)
    warnings.warn(
        "No tier thresholds given: the CLV gap to the next tier uses the lowest CLV seen in "
        "each tier of these scores. Pass tiers=<fitted VipPipeline> for the fitted thresholds.",
        DataWarning,
        stacklevel=3,
    )
    return {str(k): float(v) for k, v in floors.iloc[:-1].items()}


def _upgrade_gap(scores: pd.DataFrame, thresholds: dict[str, float]) -> tuple[FloatArray, Any]:
    """CLV missing to reach the next tier (NaN in the best tier) and that tier's name."""
    names = list(thresholds)
    tier = scores["vip_tier"].astype(str).to_numpy()
    known = set(names)
    rank = np.array([names.index(t) if t in known else len(names) for t in pd.unique(tier)])
    lookup = dict(zip(pd.unique(tier), rank, strict=True))
    position = pd.Series(tier).map(lookup).to_numpy(dtype=np.int64)
    target = position - 1
    limits = np.asarray(list(thresholds.values()) + [np.nan], dtype=np.float64)
    next_name = np.asarray([*names, ""], dtype=object)
    usable = target >= 0
    gap = np.full(len(scores), np.nan)
    clv = scores["clv"].to_numpy(dtype=np.float64)
    gap[usable] = np.maximum(limits[target[usable]] - clv[usable], 0.0)
    name = np.where(usable, next_name[np.maximum(target, 0)], "")
    return gap, name


def _check_scores(scores: Any, book: Playbook) -> pd.DataFrame:
    if not isinstance(scores, pd.DataFrame):
        raise DataValidationError(
            f"scores must be a pandas DataFrame indexed by customer id (VipPipeline.score), "
            f"got {type(scores).__name__}."
        )
    needed = {"clv", "churn_probability"}
    for rule in book.rules:
        needed.update(n for n in ("segment", "rfm_segment", "vip_tier") if getattr(rule, n))
        if rule.value == "upgrade":
            needed.add("vip_tier")
    missing = sorted(needed - set(scores.columns))
    if missing:
        raise DataValidationError(
            f"scores lack the column(s) {missing} the playbook needs (found "
            f"{list(scores.columns)[:10]}); use the table of VipPipeline.score."
        )
    if scores.index.has_duplicates:
        repeated = scores.index[scores.index.duplicated()].unique()
        raise DataValidationError(
            f"scores repeat {len(repeated)} customer id(s), e.g. {list(repeated[:3])}: one row "
            "per customer."
        )
    for column in ("clv", "churn_probability"):
        values = pd.to_numeric(scores[column], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if column == "churn_probability":
            bad |= (values < 0) | (values > 1)
        if bad.any():
            raise DataValidationError(
                f"scores column {column!r} has {int(bad.sum())} missing or invalid value(s), "
                f"e.g. customers {list(scores.index[bad][:3])}: score them again or drop them."
            )
    return scores


def _uplift_values(uplift: Any, index: pd.Index) -> FloatArray:
    series = uplift if isinstance(uplift, pd.Series) else None
    if series is None:
        values = np.asarray(uplift, dtype=np.float64)
        if values.shape != (len(index),):
            raise DataValidationError(
                f"uplift must be a Series indexed by customer id, or an array of one value per "
                f"scored customer ({len(index)}); got shape {values.shape}."
            )
    else:
        missing = index.difference(series.index)
        if len(missing):
            raise DataValidationError(
                f"uplift has no value for {len(missing)} scored customer(s), e.g. "
                f"{list(missing[:3])}: predict it for every customer of the scores."
            )
        values = series.reindex(index).to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        bad = index[~np.isfinite(values)]
        raise DataValidationError(
            f"uplift is missing for {len(bad)} customer(s), e.g. {list(bad[:3])}."
        )
    return values


def _matches(
    rule: Rule, columns: dict[str, npt.NDArray[np.object_]], n: int
) -> npt.NDArray[np.bool_]:
    mask = np.ones(n, dtype=bool)
    for name, column in (
        ("segment", "segment"),
        ("rfm_segment", "rfm_segment"),
        ("vip_tier", "vip_tier"),
        ("risk", "risk_band"),
        ("reason", "reason_driver"),
    ):
        wanted = getattr(rule, name)
        if wanted is not None:
            mask &= np.isin(columns[column], np.asarray(wanted, dtype=object))
    return mask


def next_best_action(
    scores: pd.DataFrame,
    playbook: Playbook | None = None,
    *,
    tiers: Any = None,
    uplift: Any = None,
    uplift_kind: Literal["probability", "value"] = "probability",
    at: Any = None,
    costs: Mapping[str, float] | None = None,
    overdue_factor: float = 1.0,
    contact_policy: ContactPolicy | Callable[[pd.DataFrame], Any] | None = None,
) -> pd.DataFrame:
    """One action per customer: the available action with the highest expected net value.

    Each rule of the playbook that matches a customer makes its action available. Its value
    at stake is ``CLV × P(churn)`` (``value="at_risk"``) or the CLV the customer lacks to reach
    the next VIP tier (``value="upgrade"``); its expected gain is ``response × value at
    stake`` and its net value that gain minus the cost of the contact. The customer gets the
    action with the highest net value (ties: the earlier rule); ``no_contact`` when no action
    has a positive net value, or when the contact policy withholds them.

    With ``uplift`` (e.g. :meth:`UpliftModel.predict <vipml.actions.UpliftModel.predict>`)
    the expected gain of ``at_risk`` actions is the predicted uplift instead: ``uplift × CLV``
    for an uplift in the probability of buying (``uplift_kind="probability"``), the uplift
    itself for an uplift in spend (``"value"``). Customers the model expects to react badly
    then get no contact, whatever their churn risk.

    Parameters
    ----------
    scores : pandas.DataFrame
        :meth:`vipml.VipPipeline.score`'s table: ``clv``, ``churn_probability``, ``vip_tier``,
        ``segment``, ``rfm_segment``, ``reason_1`` and the purchase rhythm (``days_since_last_
        purchase``, ``gap_median_days``), indexed by customer id. Not modified.
    playbook : Playbook, optional
        Default :data:`~vipml.actions.playbook.DEFAULT_PLAYBOOK`.
    tiers : VipPipeline or mapping of str to float, optional
        The fitted tier thresholds (a fitted pipeline, or ``{tier: CLV from which it
        starts}`` best first), for upgrade offers. Without it they are inferred from the
        scores (lowest CLV per tier), with a :class:`~vipml.errors.DataWarning`.
    uplift : pandas.Series or array_like, optional
        Predicted uplift per customer.
    uplift_kind : {"probability", "value"}, default "probability"
        What ``uplift`` is an uplift in.
    at : str, date or datetime, optional
        The scoring date, for the contact dates.
    costs : mapping of str to float, optional
        Cost per contact of some actions, replacing the playbook's.
    overdue_factor : float, default 1.0
        See :func:`~vipml.actions.contact_timing`.
    contact_policy : callable, optional
        A :class:`~vipml.actions.ContactPolicy`: customers it withholds get ``no_contact``
        and the policy's reason.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``scores``, columns :data:`NBA_COLUMNS`: ``action``, ``cost``,
        ``value_at_stake``, ``expected_value`` (expected gain), ``net_value`` (gain minus
        cost), ``risk_band``, ``reason_driver`` (of ``reason_1``), ``reason`` (the choice in
        words), ``contact_after_days``, ``contact_date``, ``timing`` (when, in words),
        ``segment``, ``rfm_segment``, ``vip_tier``, ``clv``, ``churn_probability``.
        ``no_contact`` rows have cost, expected and net value 0 and no contact date.

    Raises
    ------
    DataValidationError
        Missing columns, repeated customers, missing or invalid CLV or churn probabilities,
        an uplift that does not cover the customers, unknown actions in ``costs``.

    Examples
    --------
    >>> scores = pd.DataFrame({
    ...     "clv": [2000.0, 300.0, 150.0], "churn_probability": [0.7, 0.1, 0.9],
    ...     "vip_tier": ["VIP", "Gold", "Standard"], "segment": ["Champions"] * 3,
    ...     "rfm_segment": ["Loyal", "Loyal", "Lost"],
    ...     "reason_1": ["no purchase for 90 days, 3.0× their usual gap", None, None],
    ...     "days_since_last_purchase": [90.0, 10.0, 200.0],
    ...     "gap_median_days": [30.0, 14.0, np.nan]},
    ...     index=pd.Index(["a", "b", "c"], name="customer_id"))
    >>> nba = next_best_action(scores, tiers={"VIP": 1000.0, "Gold": 250.0}, at="2025-06-30")
    >>> nba["action"].tolist()
    ['vip_experience', 'upgrade_offer', 'retention_offer']
    >>> nba.loc["a", "reason"]
    'vip_experience: high churn risk (70%): no purchase for 90 days, 3.0× their usual gap; at stake 1,400.00 (CLV 2,000.00 × P(churn) 0.70), expected gain 280.00 for a cost of 25.00'
    >>> float(nba.loc["b", "value_at_stake"]), nba.loc["b", "timing"]
    (700.0, 'contact on 2025-07-04 if no purchase by then (buys every 14 days, last 10 days ago)')
    """
    book = DEFAULT_PLAYBOOK if playbook is None else playbook
    if not isinstance(book, Playbook):
        raise DataValidationError(f"playbook must be a Playbook, got {type(book).__name__}.")
    if costs:
        book = book.with_costs(costs)
    if uplift_kind not in ("probability", "value"):
        raise DataValidationError(
            f"uplift_kind must be 'probability' or 'value', got {uplift_kind!r}."
        )
    _check_scores(scores, book)
    n = len(scores)
    index = scores.index
    clv = scores["clv"].to_numpy(dtype=np.float64)
    p_churn = scores["churn_probability"].to_numpy(dtype=np.float64)
    band = risk_band(p_churn, book.risk_bands)
    reasons = (
        scores["reason_1"].to_numpy(dtype=object)
        if "reason_1" in scores.columns
        else np.full(n, None, dtype=object)
    )
    driver = reason_driver(reasons)
    columns = {
        name: (
            scores[name].astype(str).to_numpy(dtype=object)
            if name in scores.columns
            else np.full(n, "", dtype=object)
        )
        for name in _CARRIED
    }
    columns.update(risk_band=band, reason_driver=driver)
    at_risk = clv * p_churn
    if any(r.value == "upgrade" for r in book.rules):
        gap, next_tier = _upgrade_gap(scores, _thresholds(tiers, scores))
    else:
        gap, next_tier = np.full(n, np.nan), np.full(n, "", dtype=object)
    lift = None if uplift is None else _uplift_values(uplift, index)

    k = len(book.rules)
    net = np.full((n, k), -np.inf)
    stake = np.zeros((n, k))
    gain = np.zeros((n, k))
    eligible_any = np.zeros(n, dtype=bool)
    for j, rule in enumerate(book.rules):  # loop over the few rules, not the customers
        value = gap if rule.value == "upgrade" else at_risk
        if lift is not None and rule.value == "at_risk":
            expected = lift * clv if uplift_kind == "probability" else lift.copy()
        else:
            expected = rule.response * value
        eligible = _matches(rule, columns, n) & np.isfinite(value)
        eligible_any |= eligible
        stake[:, j] = np.where(eligible, value, 0.0)
        gain[:, j] = np.where(eligible, expected, 0.0)
        net[:, j] = np.where(eligible, expected - rule.cost, -np.inf)
    best = np.argmax(net, axis=1) if k else np.zeros(n, dtype=np.int64)
    best_net = net[np.arange(n), best]
    chosen = best_net > 0
    actions = np.asarray([r.action for r in book.rules], dtype=object)
    rule_cost = np.asarray([r.cost for r in book.rules])
    now = np.asarray([r.timing == "now" for r in book.rules])

    action = np.where(chosen, actions[best], NO_CONTACT)
    cost = np.where(chosen, rule_cost[best], 0.0)
    value_at_stake = np.where(eligible_any, stake[np.arange(n), best], 0.0)
    expected_value = np.where(chosen, gain[np.arange(n), best], 0.0)

    # the choice in words
    top = np.where(pd.isna(reasons), "", np.char.add(": ", reasons.astype(str)))
    risk_text = _join(band, " churn risk (", _text("%.0f", 100 * p_churn), "%)", top)
    is_upgrade = np.asarray([r.value == "upgrade" for r in book.rules])[best]
    stake_text = np.where(
        is_upgrade,
        _join(
            "at stake ",
            _money(value_at_stake),
            " (CLV ",
            _money(clv),
            ", ",
            next_tier.astype(str),
            " from ",
            _money(clv + np.nan_to_num(gap)),
            ")",
        ),
        _join(
            "at stake ",
            _money(value_at_stake),
            " (CLV ",
            _money(clv),
            " × P(churn) ",
            _text("%.2f", p_churn),
            ")",
        ),
    )
    gain_text = _join(
        ", expected gain ",
        _money(gain[np.arange(n), best]),
        " for a cost of ",
        _money(rule_cost[best]),
    )
    chosen_text = _join(actions[best].astype(str), ": ", risk_text, "; ", stake_text, gain_text)
    passed_text = _join(
        "no_contact: ",
        risk_text,
        "; the best action, ",
        actions[best].astype(str),
        ", ",
        stake_text,
        gain_text,
    )
    reason = np.where(
        chosen,
        chosen_text,
        np.where(eligible_any, passed_text, _join("no_contact: ", risk_text, "; no rule applies")),
    ).astype(object)

    table = pd.DataFrame(
        {
            "action": action.astype(object),
            "cost": cost,
            "value_at_stake": value_at_stake,
            "expected_value": expected_value,
            "net_value": np.where(chosen, best_net, 0.0),
            "risk_band": band,
            "reason_driver": driver,
            "reason": reason,
        },
        index=index,
    )
    timing = contact_timing(scores, at=at, overdue_factor=overdue_factor, now=chosen & now[best])
    table = table.join(timing)
    if contact_policy is not None:
        table = _withhold(table, contact_policy)
    silent = table["action"].to_numpy() == NO_CONTACT
    table.loc[silent, "contact_after_days"] = np.nan
    table.loc[silent, "contact_date"] = pd.NaT
    table.loc[silent, "timing"] = "no contact"
    for name in _CARRIED:
        table[name] = scores[name].astype(object) if name in scores.columns else None
    table["clv"] = clv
    table["churn_probability"] = p_churn
    return table[list(NBA_COLUMNS)]


def _money(values: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """Amounts with two decimals and thousands separators (text: one format per value)."""
    return np.asarray([f"{v:,.2f}" for v in np.asarray(values, dtype=np.float64)], dtype=np.str_)


def _withhold(table: pd.DataFrame, policy: Any) -> pd.DataFrame:
    """Customers the contact policy withholds get no contact, with the policy's reason."""
    contacting = table["action"].to_numpy() != NO_CONTACT
    why = withheld_reasons(policy, table[contacting])
    held = why.notna().to_numpy()
    rows = table.index[contacting][held]
    out = table.copy()
    out.loc[rows, "action"] = NO_CONTACT
    out.loc[rows, ["cost", "expected_value", "net_value"]] = 0.0
    out.loc[rows, "reason"] = (
        "no_contact: withheld by the contact policy: " + why[held]
    ).to_numpy()
    return out
