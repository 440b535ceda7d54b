"""Real-time scores: keep each customer's state current and rescore them as rows arrive.

:class:`OnlineScorer` holds a fitted :class:`~vipml.VipPipeline` (or loads one from a bundle)
and a :class:`~vipml.online.store.StateStore`. ``update(row)`` applies one transaction or
engagement event to that customer's :class:`~vipml.features.online.CustomerState`, computes
the customer's base features as of the row's time (exactly those
:meth:`VipPipeline.build_features <vipml.VipPipeline.build_features>` gives in batch), scores
them with :meth:`VipPipeline.score_features <vipml.VipPipeline.score_features>` without
refitting, and returns the scores with any alerts. The state, the scores alerts compare with,
and the alerts are written to the store in one atomic put before ``update`` returns.

Alerts (each once, when the condition starts to hold):

- ``tier_entered`` / ``tier_left``: the customer's VIP tier moved up / down (a first score in
  a VIP tier counts as entering it);
- ``churn_risk_high`` / ``churn_risk_low``: the churn probability crossed
  ``AlertRules.churn_threshold`` upwards / downwards;
- ``engagement_dropped``: the last 30 days' events fell below ``engagement_drop`` times the
  90-day monthly average (with at least ``min_events`` events in 90 days);
- ``sentiment_dropped``: the mean event value of the last 30 days fell at least
  ``sentiment_drop`` below the mean before them (``value_trend``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vipml.data.columns import Columns
from vipml.errors import DataValidationError
from vipml.features.engagement import EngagementLayout, parse_windows
from vipml.features.online import (
    CustomerState,
    OnlineConfig,
    _instant,
    _native,
    states_from_logs,
)
from vipml.online.store import MemoryStore, StateStore

__all__ = ["AlertRules", "OnlineScorer", "ScoreUpdate"]

_META_KEY = "vipml.online.config"


@dataclass(frozen=True)
class AlertRules:
    """When :class:`OnlineScorer` raises an alert (see the module notes).

    Parameters
    ----------
    churn_threshold : float, default 0.5
        Churn probability whose crossing raises ``churn_risk_high`` / ``churn_risk_low``.
    engagement_drop : float, default 0.5
        Share of the 90-day monthly event rate below which the last 30 days count as a drop.
    min_events : int, default 6
        Events in 90 days needed before an engagement drop is judged.
    sentiment_drop : float, default 0.5
        Fall of the 30-day mean event value against the mean before it that counts as a drop.
    """

    churn_threshold: float = 0.5
    engagement_drop: float = 0.5
    min_events: int = 6
    sentiment_drop: float = 0.5

    def __post_init__(self) -> None:
        for name in ("churn_threshold", "engagement_drop"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {value!r}.")
        if self.min_events < 1 or self.sentiment_drop <= 0:
            raise ValueError("min_events must be >= 1 and sentiment_drop > 0.")


@dataclass(frozen=True)
class ScoreUpdate:
    """What :meth:`OnlineScorer.update` returns.

    Attributes
    ----------
    customer_id : str or int
    applied : bool
        False when the row was a redelivered duplicate (nothing changed).
    scores : dict or None
        The customer's scores (the columns of ``VipPipeline.score``) as of ``at``; None
        while the customer has no purchase (the pipeline scores buyers only).
    alerts : list of dict
        Alerts raised by this row, with their store ids.
    at : pandas.Timestamp
        The moment the scores are for.
    """

    customer_id: Any
    applied: bool
    scores: dict[str, Any] | None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    at: pd.Timestamp | None = None


def _layout(columns: list[str]) -> EngagementLayout | None:
    """The engagement layout whose columns include the pipeline's engagement features."""
    windows = parse_windows(("7D", "30D", "90D"))
    labels = [label for label, _ in windows]
    types, channels = [], []
    for name in columns:
        if name.startswith("n_channel_"):
            channels.append(name[len("n_channel_") :])
        elif name.startswith("n_") and not name.startswith("n_events_"):
            for label in labels:
                if name.endswith(f"_{label}"):
                    types.append(name[2 : -len(label) - 1])
    has_channels = bool(channels) or "channel_entropy" in columns
    has_value = "value_mean" in columns
    if not (types or has_channels or has_value or "days_since_last_event" in columns):
        return None
    return EngagementLayout(
        windows=windows,
        event_types=tuple((t, ()) for t in dict.fromkeys(types)),
        channels=tuple((c, ()) for c in channels) if has_channels else None,
        has_value=has_value,
    )


def _plain(value: Any) -> Any:
    value = _native(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


class OnlineScorer:
    """Keep customers' features current and rescore them with a fitted pipeline.

    Parameters
    ----------
    pipeline : VipPipeline or path-like
        A fitted pipeline, or a bundle folder (loaded without unpickling).
    store : StateStore, optional
        Where states and alerts persist (default: a :class:`~vipml.online.store.MemoryStore`;
        pass a :class:`~vipml.online.store.SQLiteStore` to survive restarts).
    config : OnlineConfig, optional
        The online state's configuration; its purchase period and windows must be the
        pipeline's (daily periods, weeks, a 90-day cycle window, 7/30/90-day engagement).
    rules : AlertRules, optional
        When alerts are raised.

    Raises
    ------
    ValueError
        A store holding states made with another configuration.
    """

    def __init__(
        self,
        pipeline: Any,
        *,
        store: StateStore | None = None,
        config: OnlineConfig | None = None,
        rules: AlertRules | None = None,
    ) -> None:
        if isinstance(pipeline, str | os.PathLike):
            from vipml import bundle

            pipeline = bundle.load(pipeline, allow_pickle=False)
        pipeline._check_fitted()
        self.pipeline = pipeline
        self.store = MemoryStore() if store is None else store
        self.config = config or OnlineConfig()
        if (self.config.freq, self.config.time_unit) != ("D", "W"):
            raise ValueError(
                "The pipeline's features count daily purchase periods in weeks: use "
                "OnlineConfig(freq='D', time_unit='W')."
            )
        self.rules = rules or AlertRules()
        self.columns = list(pipeline.feature_columns_)
        self.layout = _layout(self.columns)
        self._counts = [c for c in self.columns if c.startswith("n_")]
        self._tiers = [*pipeline.config_.tiers.names, pipeline.config_.tiers.rest]
        fingerprint = json.dumps(self.config.fingerprint())
        stored = self.store.get_meta(_META_KEY)
        if stored is None:
            self.store.set_meta(_META_KEY, fingerprint)
        elif stored != fingerprint:
            raise ValueError(
                f"the store holds states made with (freq, returns, retention_us) = {stored}, "
                f"not {fingerprint}; use that OnlineConfig or another store."
            )

    def __repr__(self) -> str:
        return f"OnlineScorer(store={self.store!r}, rules={self.rules!r})"

    # -- state in the store ---------------------------------------------------------------

    def _load(self, customer_id: Any) -> tuple[CustomerState, dict[str, Any] | None]:
        data = self.store.get(customer_id)
        if data is None:
            return CustomerState(customer_id, self.config), None
        state, _, last = data.partition(b"\n")
        return CustomerState.from_bytes(state, self.config), json.loads(last)

    @staticmethod
    def _encode(state: CustomerState, last: dict[str, Any] | None) -> bytes:
        return state.to_bytes() + b"\n" + json.dumps(last, allow_nan=False).encode()

    def state(self, customer_id: Any) -> CustomerState | None:
        """The stored state of a customer, or None."""
        data = self.store.get(customer_id)
        return None if data is None else self._load(customer_id)[0]

    # -- features and scores --------------------------------------------------------------

    def features(self, states: list[CustomerState], at_us: int | list[int]) -> pd.DataFrame:
        """Base features of states (customers with a purchase) as in batch.

        ``at_us`` is one moment for all (microseconds since 1970) or one per state.
        """
        moments = [at_us] * len(states) if isinstance(at_us, int) else at_us
        rows, ids = [], []
        for state, moment in zip(states, moments, strict=True):
            values = state.features(pd.Timestamp(moment, unit="us"), self.layout)
            if "frequency" not in values:
                continue
            rows.append([values.get(c, 0.0 if c in self._counts else np.nan) for c in self.columns])
            ids.append(state.customer_id)
        index = pd.Index(ids, name="customer_id")
        return pd.DataFrame(rows, index=index, columns=self.columns, dtype=np.float64)

    def score_states(self, states: list[CustomerState], at: Any) -> pd.DataFrame:
        """Scores of states as of ``at`` with the pipeline (one row per buyer)."""
        table = self.features(states, _instant(at))
        if len(table) == 0:  # nobody has bought yet: nothing to score
            return pd.DataFrame(index=table.index)
        return self.pipeline.score_features(table)

    def bootstrap(
        self,
        transactions: Any,
        events: Any = None,
        *,
        cutoff: Any,
        columns: Columns | None = None,
    ) -> int:
        """Load every customer's state from the logs up to ``cutoff``; return how many.

        Their scores at the cutoff become the baseline later alerts compare with (no alerts
        are raised for the bootstrap itself).

        Parameters
        ----------
        transactions, events : DataFrame-like
            The logs the pipeline was trained on, or their continuation.
        cutoff : str, date or datetime
            Rows at or before it are applied (a date includes its whole day).
        columns : Columns, optional
            Names of the logs' columns; default: the pipeline's configured ``[columns]``,
            as in :meth:`VipPipeline.fit <vipml.VipPipeline.fit>`. (Rows streamed through
            :meth:`update` always use the standard names.)

        Returns
        -------
        int
            Customers loaded.
        """
        states = states_from_logs(
            transactions,
            events,
            cutoff=cutoff,
            config=self.config,
            columns=self.pipeline.config_.columns if columns is None else columns,
        )
        scores = self.score_states(list(states.values()), cutoff)
        payload = {}
        for key, state in states.items():
            snapshot = None
            if key in scores.index:
                snapshot = self._snapshot(scores.loc[key], state, _instant(cutoff))
            payload[key] = self._encode(state, snapshot)
        self.store.put(payload)
        return len(payload)

    def _snapshot(self, scores: pd.Series, state: CustomerState, at_us: int) -> dict[str, Any]:
        """What alerts compare: tier, churn probability, engagement and sentiment flags."""
        snapshot: dict[str, Any] = {
            "vip_tier": str(scores["vip_tier"]),
            "churn_probability": float(scores["churn_probability"]),
            "engagement_low": False,
            "sentiment_low": False,
        }
        if self.layout is not None and state.has_events:
            values = state.features(pd.Timestamp(at_us, unit="us"), self.layout)
            recent, quarter = values.get("n_events_30d", 0), values.get("n_events_90d", 0)
            rules = self.rules
            snapshot["engagement_low"] = bool(
                quarter >= rules.min_events and recent < rules.engagement_drop * quarter / 3
            )
            trend = values.get("value_trend", np.nan)
            snapshot["sentiment_low"] = bool(trend <= -rules.sentiment_drop)
        return snapshot

    def _alerts(
        self,
        customer_id: Any,
        at: pd.Timestamp,
        before: dict[str, Any] | None,
        after: dict[str, Any],
    ) -> list[dict[str, Any]]:
        base = {"customer_id": customer_id, "at": at.isoformat()}
        alerts = []
        old_tier = None if before is None else before["vip_tier"]
        new_tier = after["vip_tier"]
        rank = self._tiers.index
        old_rank = len(self._tiers) - 1 if old_tier is None else rank(old_tier)
        if rank(new_tier) < old_rank:
            alerts.append({**base, "kind": "tier_entered", "tier": new_tier, "from": old_tier})
        elif rank(new_tier) > old_rank:
            alerts.append({**base, "kind": "tier_left", "tier": old_tier, "to": new_tier})
        threshold = self.rules.churn_threshold
        old_p = None if before is None else before["churn_probability"]
        new_p = after["churn_probability"]
        if new_p >= threshold and (old_p is None or old_p < threshold):
            alerts.append({**base, "kind": "churn_risk_high", "churn_probability": new_p})
        elif new_p < threshold and old_p is not None and old_p >= threshold:
            alerts.append({**base, "kind": "churn_risk_low", "churn_probability": new_p})
        for flag, kind in (
            ("engagement_low", "engagement_dropped"),
            ("sentiment_low", "sentiment_dropped"),
        ):
            if after[flag] and not (before or {}).get(flag, False):
                alerts.append({**base, "kind": kind})
        return alerts

    def update(self, record: Mapping[str, Any], *, at: Any = None) -> ScoreUpdate:
        """Apply one row, rescore its customer and raise alerts; all stored before returning.

        Parameters
        ----------
        record : mapping
            A transaction or engagement event with its ``customer_id`` (see
            :meth:`CustomerState.update <vipml.features.online.CustomerState.update>`).
        at : str or datetime, optional
            The moment to score at (default: the row's timestamp); on or after the
            customer's latest row.

        Returns
        -------
        ScoreUpdate

        Raises
        ------
        DataValidationError
            A malformed row (nothing is stored).
        LateEventError
            A row older than the state retains (nothing is stored).
        """
        return self.update_many([record], at=at)[0]

    def update_many(
        self, records: Iterable[Mapping[str, Any]], *, at: Any = None
    ) -> list[ScoreUpdate]:
        """Apply many rows, rescore each customer once, store everything in one put.

        Rows are applied in the order given. All or nothing: a malformed or too-late row
        raises before anything is stored. Each customer is scored as of their latest row in
        the batch (or ``at``), all in one :meth:`VipPipeline.score_features
        <vipml.VipPipeline.score_features>` call, which is what makes batches faster.

        Returns
        -------
        list of ScoreUpdate
            One per customer, in the order customers first appear; ``applied`` is False when
            every row of that customer was a redelivered duplicate.
        """
        loaded: dict[Any, tuple[CustomerState, dict[str, Any] | None]] = {}
        applied: dict[Any, bool] = {}
        moments: dict[Any, int] = {}
        fixed = None if at is None else _instant(at)
        for record in records:
            if not isinstance(record, Mapping) or _native(record.get("customer_id")) is None:
                raise DataValidationError(
                    "record needs a customer_id (str or int): the customer the row belongs to."
                )
            key = _native(record["customer_id"])
            if key not in loaded:
                loaded[key] = self._load(key)
                applied[key] = False
            applied[key] = loaded[key][0].update(record) or applied[key]
            moment = _instant(record.get("timestamp")) if fixed is None else fixed
            moments[key] = max(moments.get(key, moment), moment)
        touched = [key for key in loaded if applied[key]]
        scores = self.features([loaded[k][0] for k in touched], [moments[k] for k in touched])
        if len(scores):
            scores = self.pipeline.score_features(scores)
        results, payload, alerts = [], {}, []
        for key, (state, last) in loaded.items():
            moment = pd.Timestamp(moments[key], unit="us")
            if not applied[key]:
                results.append(ScoreUpdate(key, False, None, [], moment))
                continue
            if key not in scores.index:
                payload[key] = self._encode(state, last)
                results.append(ScoreUpdate(key, True, None, [], moment))
                continue
            row = scores.loc[key]
            snapshot = self._snapshot(row, state, moments[key])
            raised = self._alerts(key, moment, last, snapshot)
            payload[key] = self._encode(state, snapshot)
            alerts += raised
            plain = {name: _plain(value) for name, value in row.items()}
            results.append(ScoreUpdate(key, True, plain, raised, moment))
        if payload:
            ids = self.store.put(payload, alerts)
            for alert, alert_id in zip(alerts, ids, strict=True):
                alert["id"] = alert_id
        return results
