"""Online recognition: per-customer state kept current in an embedded store as events arrive.

The feature state itself lives in :mod:`vipml.features.online`; this package keeps it
(:class:`~vipml.online.store.StateStore`, :class:`~vipml.online.store.SQLiteStore`) and
rescores customers as rows arrive (:class:`~vipml.online.scorer.OnlineScorer`, imported on
first use: it pulls in the pipeline's models).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vipml.online.store import MemoryStore, SQLiteStore, StateStore, StoredAlert

if TYPE_CHECKING:
    from vipml.online.scorer import AlertRules, OnlineScorer, ScoreUpdate

__all__ = [
    "AlertRules",
    "MemoryStore",
    "OnlineScorer",
    "SQLiteStore",
    "ScoreUpdate",
    "StateStore",
    "StoredAlert",
]


def __getattr__(name: str) -> Any:
    if name in ("AlertRules", "OnlineScorer", "ScoreUpdate"):
        from vipml.online import scorer

        return getattr(scorer, name)
    raise AttributeError(f"module 'vipml.online' has no attribute {name!r}")
