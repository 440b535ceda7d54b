"""Everything vipml holds about one customer: export it as JSON, or erase it and keep a tombstone.

vipml keeps customer-level data in a few places: tables the user's jobs write (feature tables,
scores, tier and segment history, campaign plans, contacts sent, consents), the identity map
(the customer's linked source ids) and the online store (state and alerts). :class:`PersonalData`
names them; :func:`export_customer` collects a customer's rows from each, matched on the
customer id and on every linked source id; :func:`erase_customer` removes those rows, erases
the store's state and alerts, and adds tombstones of every id to the suppression list, so that
a log ingested again does not bring the customer back into contact lists.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from vipml.data.linking import IdentityMap
from vipml.errors import DataValidationError
from vipml.privacy.suppression import SuppressionList

__all__ = ["Erasure", "PersonalData", "erase_customer", "export_customer"]


@dataclass(frozen=True, eq=False)
class PersonalData:
    """The places that hold customer-level data, for export and erasure.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        Named tables holding a customer id in a column of ``id_columns`` or in an index of that
        name: ``{"features": ..., "scores": ..., "tier_history": ..., "plans": ...,
        "contacts": ..., "consents": ...}``.
    identities : IdentityMap, optional
        The identity map: its rows of the customer are the linked ids, and tables keyed by a
        source's own id are matched through them.
    store : StateStore, optional
        The online store (state and alerts).
    id_columns : tuple of str, default ("customer_id",)
        Column (or index) names holding customer ids.
    """

    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    identities: IdentityMap | None = None
    store: Any = None
    id_columns: tuple[str, ...] = ("customer_id",)

    def __post_init__(self) -> None:
        for name, table in self.tables.items():
            if not isinstance(table, pd.DataFrame):
                raise TypeError(f"tables[{name!r}] must be a pandas DataFrame.")
            if not self._id_places(table):
                raise DataValidationError(
                    f"tables[{name!r}] has no customer id column or index among "
                    f"{list(self.id_columns)}; vipml cannot tell whose rows they are."
                )

    def _id_places(self, table: pd.DataFrame) -> list[tuple[str, str]]:
        places = [("column", c) for c in self.id_columns if c in table.columns]
        places += [("index", n) for n in table.index.names if n in self.id_columns]
        return places

    def ids_of(self, customer_id: Any) -> set[str]:
        """The customer id and its linked ids (``source:source_id`` and plain source ids)."""
        ids = {str(customer_id)}
        if self.identities is not None:
            mapping = self.identities.mapping
            rows = mapping[mapping["customer_id"] == str(customer_id)]
            ids |= set((rows["source"] + ":" + rows["source_id"]).astype(str))
            ids |= set(rows["source_id"].astype(str))
        return ids

    def rows_of(self, table: pd.DataFrame, ids: set[str]) -> np.ndarray:
        """Whether each row of a table belongs to one of ``ids``."""
        mask = np.zeros(len(table), dtype=bool)
        for kind, name in self._id_places(table):
            values = table[name] if kind == "column" else table.index.get_level_values(name)
            mask |= pd.Series(values).astype(str).isin(ids).to_numpy()
        return mask


@dataclass(frozen=True, eq=False)
class Erasure:
    """What :func:`erase_customer` did.

    Attributes
    ----------
    data : PersonalData
        The same places without the customer's rows (tables are new frames; the store was
        changed in place).
    removed : dict of str to int
        Rows removed per table, ``identities``, ``store_state`` and ``store_alerts``.
    tombstones : int
        New entries in the suppression list.
    """

    data: PersonalData
    removed: dict[str, int]
    tombstones: int


def export_customer(customer_id: Any, data: PersonalData, *, at: Any = None) -> dict[str, Any]:
    """Everything vipml holds about a customer, as a JSON-ready dict.

    Parameters
    ----------
    customer_id : str or int
        The (linked) customer id.
    data : PersonalData
        Where vipml holds customer data.
    at : datetime-like, optional
        Export time written into the document (default now, UTC).

    Returns
    -------
    dict
        ``customer_id``, ``exported_at``, ``linked_ids`` (``source``, ``source_id``),
        ``tables`` (rows per table, as records), ``store`` (``state``, the online state as
        stored; ``alerts``). Times are ISO-8601 strings and missing values null, so
        ``json.dumps(export_customer(...))`` works.

    Examples
    --------
    >>> scores = pd.DataFrame({"clv": [120.5, 80.0], "vip_tier": ["VIP", "Standard"]},
    ...                       index=pd.Index(["c1", "c2"], name="customer_id"))
    >>> document = export_customer("c1", PersonalData({"scores": scores}), at="2025-07-01")
    >>> document["tables"]["scores"]
    [{'customer_id': 'c1', 'clv': 120.5, 'vip_tier': 'VIP'}]
    """
    ids = data.ids_of(customer_id)
    when = pd.Timestamp.now(tz="UTC") if at is None else pd.Timestamp(at)
    document: dict[str, Any] = {
        "customer_id": _jsonable(customer_id),
        "exported_at": when.isoformat(),
        "linked_ids": [],
        "tables": {},
        "store": {"state": None, "alerts": []},
    }
    if data.identities is not None:
        mapping = data.identities.mapping
        rows = mapping[mapping["customer_id"] == str(customer_id)]
        document["linked_ids"] = _records(rows[["source", "source_id"]])
    for name, table in data.tables.items():
        document["tables"][name] = _records(table[data.rows_of(table, ids)].reset_index())
    if data.store is not None:
        state = _store_state(data.store, customer_id)
        document["store"]["state"] = None if state is None else json.loads(state)
        document["store"]["alerts"] = [
            {"id": a.id, **a.alert} for a in _store_alerts(data.store, ids)
        ]
    json.dumps(document, allow_nan=False)  # every value is plain JSON
    return document


def erase_customer(
    customer_id: Any,
    data: PersonalData,
    suppression: SuppressionList,
    *,
    reason: str = "erasure request",
    at: Any = None,
) -> Erasure:
    """Remove a customer from every place vipml holds data, and record tombstones.

    The rows of the customer (and of every linked id) leave each table and the identity map;
    the store's state and alerts of the customer are erased; the customer id and every linked
    id (``source:source_id`` and the plain source id) are added to ``suppression``. A contact
    list built later from a log that still holds the customer is filtered by
    :class:`~vipml.privacy.ContactPolicy` with that list, so the customer is withheld
    (``suppressed``).

    Returns
    -------
    Erasure
    """
    ids = data.ids_of(customer_id)
    removed: dict[str, int] = {}
    tables = {}
    for name, table in data.tables.items():
        mask = data.rows_of(table, ids)
        removed[name] = int(mask.sum())
        tables[name] = table[~mask]
    identities = data.identities
    if identities is not None:
        mapping = identities.mapping
        gone = (mapping["customer_id"] == str(customer_id)).to_numpy()
        removed["identities"] = int(gone.sum())
        identities = replace(identities, mapping=mapping[~gone].reset_index(drop=True))
    if data.store is not None:
        removed.update(_erase_from_store(data.store, customer_id, ids))
    tombstones = suppression.add(sorted(ids), reason=reason, at=at)
    return Erasure(
        data=replace(data, tables=tables, identities=identities),
        removed=removed,
        tombstones=tombstones,
    )


# ---- the online store --------------------------------------------------------------------------
# Seam with vipml's online store (being moved into vipml.serving, which adds a store-level
# erasure): a store with an ``erase(customer_id)`` method is asked to erase; the two built-in
# stores of vipml.online are handled here until then.


def _store_state(store: Any, customer_id: Any) -> bytes | None:
    for key in _store_keys(customer_id):
        state = store.get(key)
        if state is not None:
            return bytes(state)
    return None


def _store_alerts(store: Any, ids: set[str]) -> list[Any]:
    return [a for a in store.alerts_since(0) if str(a.alert.get("customer_id")) in ids]


def _erase_from_store(store: Any, customer_id: Any, ids: set[str]) -> dict[str, int]:
    erase = getattr(store, "erase", None)
    if callable(erase):
        answer = erase(customer_id)
        if isinstance(answer, Mapping):
            return {f"store_{k}": int(v) for k, v in answer.items() if isinstance(v, int)}
        return {"store": 1}
    keys = _store_keys(customer_id) + [k for k in ids if k != str(customer_id)]
    kind = type(store).__name__
    if kind == "MemoryStore":
        with store._lock:
            states = sum(store._states.pop(k, None) is not None for k in keys)
            before = len(store._alerts)
            store._alerts = [a for a in store._alerts if str(a.alert.get("customer_id")) not in ids]
            return {"store_state": states, "store_alerts": before - len(store._alerts)}
    if kind == "SQLiteStore":
        matching = [a.id for a in _store_alerts(store, ids)]
        with store._transaction():
            states = 0
            for key in keys:
                cursor = store._conn.execute("DELETE FROM states WHERE customer_id = ?", (key,))
                states += cursor.rowcount
            store._conn.executemany("DELETE FROM alerts WHERE id = ?", [(i,) for i in matching])
        return {"store_state": states, "store_alerts": len(matching)}
    raise TypeError(
        f"{type(store).__name__} has no erase(customer_id) method: vipml cannot remove the "
        "customer's state and alerts from it."
    )


def _store_keys(customer_id: Any) -> list[Any]:
    keys: list[Any] = [customer_id]
    if isinstance(customer_id, str) and customer_id.lstrip("-").isdigit():
        keys.append(int(customer_id))
    elif isinstance(customer_id, int):
        keys.append(str(customer_id))
    return keys


# ---- JSON ----------------------------------------------------------------------------------------


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): _jsonable(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _jsonable(value: Any) -> Any:
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, pd.Timedelta):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value
