"""Online feature updates against recomputing a customer's features in batch.

On a simulated shop (``vipml.data.simulate``, 2024-2025, transactions and engagement events)
the script bootstraps every customer's online state from the logs up to 2025-06-30, then
streams the later rows one at a time, in time order, and times in one process and one run:

- ``CustomerState.update`` alone (updates per second);
- ``update`` followed by that customer's fresh features as of the row's time
  (``CustomerState.features`` with the engagement layout): what rescoring needs;
- the same, with the state read from and written back to a ``SQLiteStore`` at every row
  (``synchronous="FULL"``: one fsync per row; and ``"NORMAL"``);
- with ``--scorer``: ``OnlineScorer.update`` (state, features and ``VipPipeline.score_features``
  for one customer, alerts, a ``MemoryStore`` put) one row at a time, and ``update_many`` in
  batches, on a pipeline fitted at the cutoff with a small configuration;
- the reference: recomputing that customer's features in batch at the row's time from their
  own rows only (``rfm_summary``, ``purchase_cycle_features`` and ``engagement_features`` on
  the customer's rows, already separated from the log: the batch builders' best case), for
  a sample of the streamed rows.

Figures are printed as ratios to the batch recomputation measured in the same run, with the
bootstrap's rows per second and the mean serialised state size.

    python benchmarks/bench_online.py --customers 2000 --sample 40 --scorer
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

from vipml import VipPipeline
from vipml.data import simulate
from vipml.features import engagement_features, purchase_cycle_features, rfm_summary
from vipml.features.online import CustomerState, layout_from_events, states_from_logs
from vipml.online.scorer import OnlineScorer
from vipml.online.store import SQLiteStore

CUTOFF = "2025-06-30"
#: A quick pipeline for the scorer's figures (scoring cost hardly depends on these).
PIPELINE = {
    "churn": {"lgbm_params": {"num_boost_round": 40}},
    "ltv": {"n_draws": 30},
    "segments": {"n_segments": 3},
}
WINDOWS = ("7D", "30D", "90D")


def later_rows(tx: pd.DataFrame, events: pd.DataFrame) -> list[dict]:
    """The rows after the cutoff as records, in time order, without missing fields."""
    end = pd.Timestamp(CUTOFF) + pd.Timedelta(days=1)
    rows = pd.concat([tx[tx["timestamp"] >= end], events[events["timestamp"] >= end]])
    rows = rows.sort_values("timestamp", kind="stable")
    return [{k: v for k, v in r.items() if not pd.isna(v)} for r in rows.to_dict("records")]


def batch_features(own_tx: pd.DataFrame, own_events: pd.DataFrame, at: pd.Timestamp) -> None:
    tx = own_tx[own_tx["timestamp"] <= at]
    rfm_summary(tx, at, freq="D", time_unit="W", check_duplicates=False)
    purchase_cycle_features(tx, at, window="90D", freq="D")
    events = own_events[own_events["timestamp"] <= at]
    if len(events):
        engagement_features(events, at, windows=WINDOWS)


def stream(states, rows, layout, store=None) -> float:
    """Seconds to apply ``rows`` (updating and evaluating; through ``store`` if given)."""
    start = time.perf_counter()
    for row in rows:
        key = row["customer_id"]
        if store is None:
            state = states.get(key) or states.setdefault(key, CustomerState(key))
        else:
            data = store.get(key)
            state = CustomerState(key) if data is None else CustomerState.from_bytes(data)
        state.update(row)
        state.features(row["timestamp"], layout)
        if store is not None:
            store.put({key: state.to_bytes()})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--sample", type=int, default=40, help="rows recomputed in batch")
    parser.add_argument("--store-rows", type=int, default=2000, help="rows through the store")
    parser.add_argument("--scorer", action="store_true", help="also time OnlineScorer")
    parser.add_argument("--batch", type=int, default=200, help="rows per update_many call")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    sim = simulate(args.customers, "2024-01-01", "2025-12-31", random_state=0)
    tx, events = sim.transactions, sim.events
    start = time.perf_counter()
    states = states_from_logs(tx, events, cutoff=CUTOFF)
    boot_s = time.perf_counter() - start
    n_boot = int((tx["timestamp"] <= CUTOFF).sum() + (events["timestamp"] <= CUTOFF).sum())
    layout = layout_from_events(events, CUTOFF, windows=WINDOWS)
    size = sum(len(s.to_bytes()) for s in states.values()) / len(states)
    rows = later_rows(tx, events)

    copies = {k: CustomerState.from_bytes(s.to_bytes()) for k, s in states.items()}
    start = time.perf_counter()
    for row in rows:
        key = row["customer_id"]
        state = copies.get(key) or copies.setdefault(key, CustomerState(key))
        state.update(row)
    update_s = (time.perf_counter() - start) / len(rows)

    copies = {k: CustomerState.from_bytes(s.to_bytes()) for k, s in states.items()}
    rescore_s = stream(copies, rows, layout) / len(rows)

    store_s = {}
    subset = rows[: args.store_rows]
    for mode in ("FULL", "NORMAL"):
        with tempfile.TemporaryDirectory() as folder:
            store = SQLiteStore(Path(folder) / "states.db", synchronous=mode)
            store.put({k: s.to_bytes() for k, s in states.items()})
            store_s[mode] = stream(None, subset, layout, store) / len(subset)
            store.close()

    own_tx = dict(tuple(tx.groupby("customer_id")))
    own_events = dict(tuple(events.groupby("customer_id")))
    empty = events.iloc[:0]
    sample = rows[:: max(1, len(rows) // args.sample)][: args.sample]
    start = time.perf_counter()
    for row in sample:
        key = row["customer_id"]
        if key in own_tx:
            batch_features(own_tx[key], own_events.get(key, empty), row["timestamp"])
    batch_s = (time.perf_counter() - start) / len(sample)

    scorer_s = {}
    if args.scorer:
        scorer = OnlineScorer(VipPipeline(PIPELINE).fit(tx, events, cutoff=CUTOFF))
        scorer.bootstrap(tx, events, cutoff=CUTOFF)
        single = rows[:200]
        start = time.perf_counter()
        for row in single:
            scorer.update(row)
        scorer_s["OnlineScorer.update"] = (time.perf_counter() - start) / len(single)
        many = rows[200 : 200 + 10 * args.batch]
        start = time.perf_counter()
        for first in range(0, len(many), args.batch):
            scorer.update_many(many[first : first + args.batch])
        name = f"OnlineScorer.update_many ({args.batch} rows)"
        scorer_s[name] = (time.perf_counter() - start) / len(many)

    print(
        f"{args.customers} customers: bootstrap {n_boot} rows at {n_boot / boot_s:,.0f} rows/s; "
        f"{len(rows)} streamed rows; mean state {size:,.0f} bytes"
    )
    print(f"reference: batch recompute of one customer's features {batch_s * 1e3:.1f} ms")
    for name, seconds in (
        ("update", update_s),
        ("update + features", rescore_s),
        ("store FULL: get + update + features + put", store_s["FULL"]),
        ("store NORMAL: get + update + features + put", store_s["NORMAL"]),
        *scorer_s.items(),
    ):
        print(
            f"{name:<45} {1 / seconds:>10,.1f} /s   {batch_s / seconds:>8,.1f}x the batch recompute"
        )


if __name__ == "__main__":
    main()
