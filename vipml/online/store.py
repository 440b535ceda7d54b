"""Where online states and alerts persist: a small interface and an embedded SQLite store.

A :class:`StateStore` maps customer ids to serialised states
(:meth:`vipml.features.online.CustomerState.to_bytes`) and keeps an append-only log of alerts
with increasing ids. One :meth:`~StateStore.put` writes many states and alerts atomically:
after it returns, all of them are stored, or (if it raised) none. :class:`SQLiteStore`
implements it in one SQLite file in WAL mode; another store (a key-value service, a SQL
server) only needs the same few methods.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from vipml.data.validate import as_timestamp
from vipml.errors import DataValidationError

__all__ = ["MemoryStore", "SQLiteStore", "StateStore", "StoredAlert"]

Synchronous = Literal["FULL", "NORMAL"]
_PAGE = 1000
#: Alerts from a time on, by id. ``INDEXED BY``: SQLite would otherwise walk every alert in id
#: order (to skip the sort) instead of reading the few recent ones from the time index.
ALERTS_AT_OR_AFTER = (
    "SELECT id, alert FROM alerts INDEXED BY alerts_at WHERE at_us >= ? ORDER BY id LIMIT ?"
)


@dataclass(frozen=True)
class StoredAlert:
    """An alert as stored: its id (increasing in the order alerts were written) and content."""

    id: int
    alert: dict[str, Any]


@runtime_checkable
class StateStore(Protocol):
    """What the online scorer needs from a store of customer states and alerts.

    Customer ids are ``str`` or ``int``; states are bytes; alerts are JSON-serialisable dicts.
    """

    def get(self, customer_id: Any) -> bytes | None:
        """The state of one customer, or None."""

    def get_many(self, customer_ids: Iterable[Any]) -> dict[Any, bytes]:
        """The states of the customers that have one (one consistent read)."""

    def put(
        self, states: Mapping[Any, bytes], alerts: Sequence[Mapping[str, Any]] = ()
    ) -> list[int]:
        """Write states and append alerts atomically and durably; return the alerts' ids."""

    def items(self) -> Iterator[tuple[Any, bytes]]:
        """Every ``(customer_id, state)``, by customer id."""

    def alerts_since(self, after_id: int = 0, limit: int | None = None) -> list[StoredAlert]:
        """Alerts with an id above ``after_id``, oldest first."""

    def alerts_at_or_after(self, moment: Any, limit: int | None = None) -> list[StoredAlert]:
        """Alerts whose ``at`` is at or after ``moment``, by id (at most ``limit``)."""

    def get_meta(self, key: str) -> str | None:
        """A stored setting (e.g. the configuration the states were made with)."""

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting durably."""


def alert_time(value: Any) -> int | None:
    """An alert's ``at`` (ISO 8601 text or a datetime) in microseconds since the epoch, as UTC.

    Naive times count as UTC; a missing or unreadable time gives None.

    >>> alert_time("2025-07-01T12:00:00"), alert_time("2025-07-01T14:00:00+02:00")
    (1751371200000000, 1751371200000000)
    """
    try:
        stamp = as_timestamp(value, "at")
    except DataValidationError:
        return None
    return int(stamp.as_unit("ns").value // 1000)


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}.")


def _start_time(moment: Any, limit: int | None) -> int:
    """``moment`` as :func:`alert_time` gives it, refusing a bad moment or ``limit``."""
    _check_limit(limit)
    start = alert_time(moment)
    if start is None:
        raise ValueError(f"moment={moment!r} is not a time.")
    return start


def _key(customer_id: Any) -> str | int:
    if isinstance(customer_id, np.generic):
        customer_id = customer_id.item()
    if isinstance(customer_id, bool) or not isinstance(customer_id, str | int):
        raise ValueError(
            f"customer_id={customer_id!r} ({type(customer_id).__name__}): store keys are str "
            "or int."
        )
    return customer_id


class MemoryStore:
    """A :class:`StateStore` in a Python dict: for tests and throw-away sessions (not durable).

    >>> store = MemoryStore()
    >>> store.put({"a": b"state"}, alerts=[{"kind": "x"}])
    [1]
    >>> store.get("a"), [a.id for a in store.alerts_since(0)]
    (b'state', [1])
    """

    def __init__(self) -> None:
        self._states: dict[Any, bytes] = {}
        self._alerts: list[StoredAlert] = []
        self._meta: dict[str, str] = {}
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"MemoryStore(states={len(self._states)}, alerts={len(self._alerts)})"

    def __len__(self) -> int:
        return len(self._states)

    def get(self, customer_id: Any) -> bytes | None:
        """The state of one customer, or None."""
        return self._states.get(_key(customer_id))

    def get_many(self, customer_ids: Iterable[Any]) -> dict[Any, bytes]:
        """The states of the customers that have one."""
        with self._lock:
            keys = dict.fromkeys(_key(c) for c in customer_ids)
            return {k: self._states[k] for k in keys if k in self._states}

    def put(
        self, states: Mapping[Any, bytes], alerts: Sequence[Mapping[str, Any]] = ()
    ) -> list[int]:
        """Write states and append alerts together; return the alerts' ids."""
        rows = {_key(k): bytes(v) for k, v in states.items()}
        copies = [json.loads(json.dumps(dict(a), allow_nan=False)) for a in alerts]
        with self._lock:
            self._states.update(rows)
            start = len(self._alerts) + 1
            self._alerts += [StoredAlert(start + i, a) for i, a in enumerate(copies)]
            return list(range(start, start + len(copies)))

    def items(self) -> Iterator[tuple[Any, bytes]]:
        """Every ``(customer_id, state)``, by customer id (ints first)."""
        with self._lock:
            keys = sorted(self._states, key=lambda k: (isinstance(k, str), k))
            return iter([(k, self._states[k]) for k in keys])

    def alerts_since(self, after_id: int = 0, limit: int | None = None) -> list[StoredAlert]:
        """Alerts with an id above ``after_id``, oldest first (at most ``limit``)."""
        found = self._alerts[max(int(after_id), 0) :]
        return found if limit is None else found[:limit]

    def alerts_at_or_after(self, moment: Any, limit: int | None = None) -> list[StoredAlert]:
        """Alerts whose ``at`` is at or after ``moment``, by id (at most ``limit``)."""
        start = _start_time(moment, limit)
        with self._lock:
            found = [
                a
                for a in self._alerts
                if (at := alert_time(a.alert.get("at"))) is not None and at >= start
            ]
        return found if limit is None else found[:limit]

    def get_meta(self, key: str) -> str | None:
        """A stored setting, or None."""
        return self._meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting."""
        self._meta[str(key)] = str(value)


class SQLiteStore:
    """States and alerts in one SQLite file, in WAL mode (readers never block the writer).

    Durability: every :meth:`put` is one transaction. With ``synchronous="FULL"`` (the
    default) SQLite fsyncs the write-ahead log at each commit, so a write that returned is on
    disk: it survives a SIGKILL of the process, an operating-system crash and a power cut.
    ``"NORMAL"`` skips that fsync (faster); committed writes still survive a killed process,
    since they are in the operating system's cache, but the last ones may be lost if the
    machine itself goes down. Readers in other connections or processes see each ``put``
    whole or not at all.

    Parameters
    ----------
    path : str or Path
        The database file (created with its tables when missing).
    synchronous : {"FULL", "NORMAL"}, default "FULL"
        SQLite's ``synchronous`` setting (see above).
    timeout : float, default 30.0
        Seconds to wait for another writer's lock before raising.

    Examples
    --------
    >>> import tempfile, os
    >>> folder = tempfile.TemporaryDirectory()
    >>> store = SQLiteStore(os.path.join(folder.name, "states.db"))
    >>> store.put({"a": b"{}", 7: b"[]"}, alerts=[{"customer_id": "a", "kind": "entered_vip"}])
    [1]
    >>> store.get("a"), store.get(7), store.get("b")
    (b'{}', b'[]', None)
    >>> store.alerts_since(0)
    [StoredAlert(id=1, alert={'customer_id': 'a', 'kind': 'entered_vip'})]
    >>> store.close(); folder.cleanup()
    """

    def __init__(
        self, path: str | Path, *, synchronous: Synchronous = "FULL", timeout: float = 30.0
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}.")
        self.path = Path(path)
        self.synchronous = synchronous
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            self._conn.close()
            raise OSError(
                f"SQLite could not put {self.path} in WAL mode (got {mode!r}); use a local "
                "file system (WAL needs shared memory, which network file systems lack)."
            )
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        with self._transaction():
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS states "
                "(customer_id PRIMARY KEY, state BLOB NOT NULL) WITHOUT ROWID"
            )
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS alerts "
                "(id INTEGER PRIMARY KEY AUTOINCREMENT, alert TEXT NOT NULL, at_us INTEGER)"
            )
            self._add_alert_times()
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )

    def _add_alert_times(self) -> None:
        """The alerts' times as an indexed column (added to, and filled in, older files)."""
        names = [row[1] for row in self._conn.execute("PRAGMA table_info(alerts)")]
        if "at_us" not in names:
            self._conn.execute("ALTER TABLE alerts ADD COLUMN at_us INTEGER")
            rows = self._conn.execute("SELECT id, alert FROM alerts").fetchall()
            self._conn.executemany(
                "UPDATE alerts SET at_us = ? WHERE id = ?",
                [(alert_time(json.loads(text).get("at")), i) for i, text in rows],
            )
        self._conn.execute("CREATE INDEX IF NOT EXISTS alerts_at ON alerts (at_us)")

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r}, synchronous={self.synchronous!r})"

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (every acknowledged write is already on disk)."""
        with self._lock:
            self._conn.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn, self._lock)

    def get(self, customer_id: Any) -> bytes | None:
        """The state of one customer, or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT state FROM states WHERE customer_id = ?", (_key(customer_id),)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def get_many(self, customer_ids: Iterable[Any]) -> dict[Any, bytes]:
        """The states of the customers that have one, read in one transaction."""
        keys = list(dict.fromkeys(_key(c) for c in customer_ids))
        found: dict[Any, bytes] = {}
        with self._read():
            for start in range(0, len(keys), _PAGE):
                page = keys[start : start + _PAGE]
                marks = ",".join("?" * len(page))
                query = f"SELECT customer_id, state FROM states WHERE customer_id IN ({marks})"
                found.update((k, bytes(s)) for k, s in self._conn.execute(query, page))
        return {key: found[key] for key in keys if key in found}

    def _read(self) -> _Transaction:
        return _Transaction(self._conn, self._lock, begin="BEGIN")

    def put(
        self, states: Mapping[Any, bytes], alerts: Sequence[Mapping[str, Any]] = ()
    ) -> list[int]:
        """Write states and append alerts in one durable transaction; return the alerts' ids.

        Raises
        ------
        ValueError
            A customer id that is neither str nor int, a state that is not bytes, or an alert
            that is not a JSON-serialisable mapping (nothing is written).
        """
        rows = []
        for customer_id, state in states.items():
            if not isinstance(state, bytes | bytearray | memoryview):
                raise ValueError(
                    f"state of customer {customer_id!r} must be bytes, got {type(state).__name__}."
                )
            rows.append((_key(customer_id), bytes(state)))
        texts = []
        for alert in alerts:
            if not isinstance(alert, Mapping):
                raise ValueError(f"an alert must be a mapping, got {type(alert).__name__}.")
            try:
                text = json.dumps(dict(alert), allow_nan=False, sort_keys=True)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"alert {alert!r} is not JSON-serialisable: {exc}") from exc
            texts.append((text, alert_time(alert.get("at"))))
        ids = []
        with self._transaction():
            self._conn.executemany(
                "INSERT INTO states (customer_id, state) VALUES (?, ?) "
                "ON CONFLICT (customer_id) DO UPDATE SET state = excluded.state",
                rows,
            )
            for text, at_us in texts:
                cursor = self._conn.execute(
                    "INSERT INTO alerts (alert, at_us) VALUES (?, ?)", (text, at_us)
                )
                ids.append(int(cursor.lastrowid))
        return ids

    def append_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> list[int]:
        """Append alerts (durably); return their ids."""
        return self.put({}, alerts)

    def items(self) -> Iterator[tuple[Any, bytes]]:
        """Every ``(customer_id, state)`` by customer id (ints first), read page by page.

        Each page is one consistent read; a ``put`` between pages may show in later pages.
        """
        last: Any = None
        while True:
            with self._read():
                if last is None:
                    page = self._conn.execute(
                        "SELECT customer_id, state FROM states ORDER BY customer_id LIMIT ?",
                        (_PAGE,),
                    ).fetchall()
                else:
                    page = self._conn.execute(
                        "SELECT customer_id, state FROM states WHERE customer_id > ? "
                        "ORDER BY customer_id LIMIT ?",
                        (last, _PAGE),
                    ).fetchall()
            for customer_id, state in page:
                yield customer_id, bytes(state)
            if len(page) < _PAGE:
                return
            last = page[-1][0]

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM states").fetchone()[0])

    def alerts_since(self, after_id: int = 0, limit: int | None = None) -> list[StoredAlert]:
        """Alerts with an id above ``after_id``, oldest first (at most ``limit``)."""
        _check_limit(limit)
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, alert FROM alerts WHERE id > ? ORDER BY id LIMIT ?",
                (int(after_id), -1 if limit is None else int(limit)),
            ).fetchall()
        return [StoredAlert(int(i), json.loads(text)) for i, text in rows]

    def alerts_at_or_after(self, moment: Any, limit: int | None = None) -> list[StoredAlert]:
        """Alerts whose ``at`` is at or after ``moment``, by id (at most ``limit``).

        An index on the alerts' times finds them without reading older alerts.
        """
        start = _start_time(moment, limit)
        with self._lock:
            rows = self._conn.execute(
                ALERTS_AT_OR_AFTER, (start, -1 if limit is None else int(limit))
            ).fetchall()
        return [StoredAlert(int(i), json.loads(text)) for i, text in rows]

    def get_meta(self, key: str) -> str | None:
        """A stored setting, or None."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting durably (replacing an earlier value)."""
        with self._transaction():
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(key), str(value)),
            )


class _Transaction:
    """``BEGIN IMMEDIATE`` (write) or ``BEGIN`` (read) ... ``COMMIT``, rolled back on error."""

    def __init__(
        self, conn: sqlite3.Connection, lock: threading.RLock, begin: str = "BEGIN IMMEDIATE"
    ) -> None:
        self._conn, self._lock, self._begin = conn, lock, begin

    def __enter__(self) -> None:
        self._lock.acquire()
        try:
            self._conn.execute(self._begin)
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        try:
            self._conn.execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            self._lock.release()
