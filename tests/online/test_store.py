"""SQLite state store: round trips, atomic puts, durability through SIGKILL, concurrent reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from vipml.features.online import CustomerState
from vipml.online.store import (
    ALERTS_AT_OR_AFTER,
    MemoryStore,
    SQLiteStore,
    StateStore,
    StoredAlert,
)


def test_round_trip_and_reopen(tmp_path):
    path = tmp_path / "states.db"
    state = CustomerState("a")
    state.update({"timestamp": "2024-01-01", "amount": 12.5})
    with SQLiteStore(path) as store:
        assert isinstance(store, StateStore)
        assert store.put({"a": state.to_bytes(), 1: b"one", np.int64(2): b"two"}) == []
        assert store.put({"1": b"text one"}, alerts=[{"kind": "x"}, {"kind": "y", "p": 0.5}]) == [
            1,
            2,
        ]
        store.put({1: b"one again"})
        store.set_meta("config", "D")
        assert store.get(1) == b"one again" and store.get("1") == b"text one"
        assert store.get("missing") is None
        assert store.get_many(["a", "zz", 2]) == {"a": state.to_bytes(), 2: b"two"}
    with SQLiteStore(path) as store:  # a fresh connection sees everything
        assert list(store.items()) == [
            (1, b"one again"),
            (2, b"two"),
            ("1", b"text one"),
            ("a", state.to_bytes()),
        ]
        assert len(store) == 4
        assert CustomerState.from_bytes(store.get("a")) == state
        assert store.alerts_since(0) == [
            StoredAlert(1, {"kind": "x"}),
            StoredAlert(2, {"kind": "y", "p": 0.5}),
        ]
        assert store.alerts_since(1) == [StoredAlert(2, {"kind": "y", "p": 0.5})]
        assert store.alerts_since(0, limit=1) == [StoredAlert(1, {"kind": "x"})]
        assert store.append_alerts([{"kind": "z"}]) == [3]
        assert store.get_meta("config") == "D" and store.get_meta("other") is None


def test_items_pages_through_many_states(tmp_path):
    with SQLiteStore(tmp_path / "s.db", synchronous="NORMAL") as store:
        store.put({i: str(i).encode() for i in range(2500)})
        seen = list(store.items())
    assert [k for k, _ in seen] == list(range(2500))
    assert all(v == str(k).encode() for k, v in seen)


def test_a_bad_put_writes_nothing(tmp_path):
    with SQLiteStore(tmp_path / "s.db") as store:
        store.put({"a": b"1"})
        with pytest.raises(ValueError, match="must be bytes"):
            store.put({"a": b"2", "b": "text"})
        with pytest.raises(ValueError, match="store keys are str or int"):
            store.put({1.5: b"x"})
        with pytest.raises(ValueError, match="not JSON-serialisable"):
            store.put({"a": b"2"}, alerts=[{"when": object()}])
        with pytest.raises(ValueError, match="synchronous"):
            SQLiteStore(tmp_path / "t.db", synchronous="OFF")
        assert store.get("a") == b"1" and store.alerts_since() == [] and len(store) == 1


WRITER = textwrap.dedent(
    """
    import sys
    from vipml.online.store import SQLiteStore

    store = SQLiteStore(sys.argv[1])
    for i in range(100000):
        ids = store.put({f"c{i % 50}": f"v{i}".encode(), f"n{i}": b"x"}, alerts=[{"i": i}])
        print(i, ids[0], flush=True)  # acknowledged: put returned
    """
)


def test_every_acknowledged_write_survives_sigkill(tmp_path):
    path = tmp_path / "killed.db"
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    acknowledged = []
    try:
        for line in child.stdout:
            acknowledged.append(tuple(int(x) for x in line.split()))
            if len(acknowledged) == 200:
                break
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL and len(acknowledged) == 200
    with SQLiteStore(path) as store:
        last = acknowledged[-1][0]
        # Every acknowledged put is there whole (it may be followed by later, unacknowledged ones).
        for i, _ in acknowledged:
            assert store.get(f"n{i}") == b"x"
        assert {a.alert["i"]: a.id for a in store.alerts_since(0)}.items() >= set(acknowledged)
        latest = {k: int(v.decode()[1:]) for k, v in store.items() if k.startswith("c")}
        assert all(latest[f"c{i % 50}"] >= i for i in range(last - 49, last + 1))


def test_a_reader_sees_each_put_whole_while_a_writer_writes(tmp_path):
    path = tmp_path / "shared.db"
    keys = [f"k{j}" for j in range(20)]
    with SQLiteStore(path, synchronous="NORMAL") as writer:
        writer.put(dict.fromkeys(keys, b"0"))
        done = threading.Event()

        def write():
            try:
                for version in range(1, 300):
                    writer.put(dict.fromkeys(keys, str(version).encode()), alerts=[{"v": version}])
            finally:
                done.set()

        thread = threading.Thread(target=write)
        with SQLiteStore(path) as reader:
            thread.start()
            seen = []
            while not done.is_set() or len(seen) < 5:
                states = reader.get_many(keys)
                versions = {int(v) for v in states.values()}
                assert len(versions) == 1 and len(states) == len(keys)  # never a torn put
                seen.append(versions.pop())
            thread.join()
            assert seen == sorted(seen) and len(set(seen)) > 1
            assert set(reader.get_many(keys).values()) == {b"299"}
            assert len(reader.alerts_since(0)) == 299
            assert json.loads(json.dumps(reader.alerts_since(298)[0].alert)) == {"v": 299}


def _alerts_at(times):
    return [
        {"customer_id": f"C{i}", "kind": "churn_risk_high", "at": t} for i, t in enumerate(times)
    ]


TIMES = [
    "2025-07-01T10:00:00",
    "2025-06-30T23:00:00",  # a late row's alert: written later, timed earlier
    "2025-07-02T08:00:00+02:00",  # 06:00 UTC
    "2025-07-01T09:59:59.999999",
]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_alerts_at_or_after_a_moment_by_id(kind, tmp_path):
    store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "s.db")
    ids = store.put({}, _alerts_at(TIMES))
    found = store.alerts_at_or_after("2025-07-01T10:00")
    assert [a.id for a in found] == [ids[0], ids[2]]
    assert [a.id for a in store.alerts_at_or_after("2025-07-01T12:00+02:00")] == [ids[0], ids[2]]
    assert [a.id for a in store.alerts_at_or_after("2025-06-01", limit=2)] == ids[:2]
    assert store.alerts_at_or_after("2025-08-01") == []
    with pytest.raises(ValueError, match="not a time"):
        store.alerts_at_or_after("soon")
    with pytest.raises(ValueError, match="limit"):
        store.alerts_at_or_after("2025-06-01", limit=0)


def test_alert_times_are_indexed_and_added_to_older_files(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)  # the layout before alert times had a column
    old.execute("CREATE TABLE alerts (id INTEGER PRIMARY KEY AUTOINCREMENT, alert TEXT NOT NULL)")
    old.executemany(
        "INSERT INTO alerts (alert) VALUES (?)", [(json.dumps(a),) for a in _alerts_at(TIMES)]
    )
    old.commit()
    old.close()
    store = SQLiteStore(path)
    assert [a.id for a in store.alerts_at_or_after("2025-07-01T10:00")] == [1, 3]
    store.put({}, _alerts_at(["2025-07-03T00:00:00"]))
    assert [a.id for a in store.alerts_at_or_after("2025-07-02")] == [3, 5]
    # The query reads the time index, not every alert.
    plan = store._conn.execute("EXPLAIN QUERY PLAN " + ALERTS_AT_OR_AFTER, (0, 10)).fetchall()
    assert any("USING INDEX alerts_at (at_us>?)" in step[-1] for step in plan), plan
