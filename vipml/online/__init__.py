"""Online recognition: per-customer state kept current in an embedded store as events arrive.

The feature state itself lives in :mod:`vipml.features.online`; this package keeps it
(:class:`~vipml.online.store.StateStore`, :class:`~vipml.online.store.SQLiteStore`).
"""

from vipml.online.store import MemoryStore, SQLiteStore, StateStore, StoredAlert

__all__ = ["MemoryStore", "SQLiteStore", "StateStore", "StoredAlert"]
