"""The scoring service under a bounded load, and the online scorer against batch recomputation.

On a simulated shop (``vipml.data.simulate``, 2025, transactions and engagement events) the
script fits a pipeline on a sample of the customers, publishes it as the champion of a
registry, writes the logs up to ``--seed-until`` as Parquet and starts ``vipml serve`` in a
subprocess on a free loopback port, seeding its SQLite state (``synchronous=FULL``: one fsync
per acknowledged request) with every customer. Then, from a second process:

- ``POST /events`` with one event per request (the rows after ``--seed-until``, in time
  order), from ``--concurrency`` client threads for ``--duration`` seconds, with a
  ``GET /customers/{id}`` of a random known customer every ``--get-every`` requests;
- the same for ``--duration / 2`` seconds with ``--batch`` events per request.

It reports sustained events per second and the p50/p99 latency of each route. In this
process, on the same states: ``OnlineScorer.update`` per second (SQLite store, FULL and
NORMAL) against recomputing that customer's features in batch from their own rows and scoring
them (``VipPipeline.score`` on the customer's rows: the batch path's best case), as a ratio
measured in the same run.

    python benchmarks/bench_serve.py --customers 100000 --duration 60
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

START, END = "2025-01-01", "2025-12-31"
CUTOFF = "2025-09-30"  # the models' fit


def later_rows(tx: pd.DataFrame, events: pd.DataFrame, after: str) -> list[dict]:
    """Rows after ``after`` as JSON-ready events, in time order."""
    end = pd.Timestamp(after) + pd.Timedelta(days=1)
    rows = pd.concat([tx[tx["timestamp"] >= end], events[events["timestamp"] >= end]])
    rows = rows.sort_values("timestamp", kind="stable")
    out = []
    for row in rows.to_dict("records"):
        event = {k: v for k, v in row.items() if not pd.isna(v)}
        event["timestamp"] = event["timestamp"].isoformat()
        if "quantity" in event:
            event["quantity"] = int(event["quantity"])
        out.append(event)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    ms = np.asarray(values) * 1000
    return f"p50 {np.percentile(ms, 50):7.2f} ms   p99 {np.percentile(ms, 99):7.2f} ms"


# -- the load, in a second process ------------------------------------------------------------


def load(
    port: int,
    events: list[dict],
    ids: list[str],
    duration: float,
    concurrency: int,
    batch: int,
    get_every: int,
    results: multiprocessing.Queue,
) -> None:
    import httpx

    cursor = iter(range(0, len(events), batch))
    lock = threading.Lock()
    posts: list[float] = []
    gets: list[float] = []
    acked = [0]
    errors = [0]
    sent = [0]
    deadline = time.perf_counter() + duration

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            n = 0
            while time.perf_counter() < deadline:
                with lock:
                    start = next(cursor, None)
                    if start is not None:
                        sent[0] = start + batch
                if start is None:
                    return
                chunk = events[start : start + batch]
                began = time.perf_counter()
                answer = client.post("/events", json=chunk if batch > 1 else chunk[0])
                took = time.perf_counter() - began
                with lock:
                    if answer.status_code == 200:
                        posts.append(took)
                        acked[0] += len(chunk)
                    else:
                        errors[0] += 1
                n += 1
                if get_every and n % get_every == 0:
                    began = time.perf_counter()
                    answer = client.get(f"/customers/{rng.choice(ids)}")
                    took = time.perf_counter() - began
                    with lock:
                        if answer.status_code == 200:
                            gets.append(took)
                        else:
                            errors[0] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    results.put(
        {
            "posts": posts,
            "gets": gets,
            "acked": acked[0],
            "errors": errors[0],
            "s": elapsed,
            "sent": min(sent[0], len(events)),
        }
    )


def run_load(port, events, ids, duration, concurrency, batch, get_every) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(
        target=load, args=(port, events, ids, duration, concurrency, batch, get_every, queue)
    )
    process.start()
    result = queue.get(timeout=duration + 600)
    process.join(60)
    return result


# -- in-process: the scorer against batch recomputation ---------------------------------------


def in_process(pipeline, tx, ev, stream, state_file: Path, n_updates: int, n_batch: int) -> None:
    from vipml.online.scorer import OnlineScorer
    from vipml.online.store import SQLiteStore

    rows = [dict(r, timestamp=pd.Timestamp(r["timestamp"])) for r in stream]
    timings = {}
    for mode in ("FULL", "NORMAL"):
        store = SQLiteStore(state_file, synchronous=mode)
        scorer = OnlineScorer(pipeline, store=store)
        subset = rows[:n_updates] if mode == "FULL" else rows[n_updates : 2 * n_updates]
        began = time.perf_counter()
        for row in subset:
            scorer.update(row)
        timings[mode] = (time.perf_counter() - began) / len(subset)
        store.close()
    # where the time goes: the features (online vs batch) and the scoring both paths share
    from vipml.features.online import _instant

    scorer = OnlineScorer(pipeline, store=SQLiteStore(state_file))
    picked = rows[2 * n_updates : 2 * n_updates + n_updates]
    states = {r["customer_id"]: scorer.state(r["customer_id"]) for r in picked}
    began = time.perf_counter()
    tables = []
    for row in picked:
        state = states[row["customer_id"]]
        if state is None:
            continue
        state.update(row)
        tables.append(scorer.features([state], _instant(row["timestamp"])))
    online_features_s = (time.perf_counter() - began) / len(picked)
    tables = [t for t in tables if len(t)]
    began = time.perf_counter()
    for table in tables:
        pipeline.score_features(table)
    score_s = (time.perf_counter() - began) / len(tables)
    by_tx = dict(tuple(tx.groupby("customer_id", sort=False)))
    by_ev = dict(tuple(ev.groupby("customer_id", sort=False)))
    empty_tx, empty_ev = tx.iloc[:0], ev.iloc[:0]
    sample = [r for r in rows[2 * n_updates :] if r["customer_id"] in by_tx][:n_batch]
    own = []
    for row in sample:
        at = row["timestamp"]
        own_tx = by_tx.get(row["customer_id"], empty_tx)
        own_ev = by_ev.get(row["customer_id"], empty_ev)
        own.append((own_tx[own_tx["timestamp"] <= at], own_ev[own_ev["timestamp"] <= at], at))
    began = time.perf_counter()
    for own_tx, own_ev, at in own:
        pipeline.build_features(own_tx, own_ev, at=at)
    batch_features_s = (time.perf_counter() - began) / len(own)
    began = time.perf_counter()
    for own_tx, own_ev, at in own:
        pipeline.score(own_tx, own_ev, at=at)
    batch_s = (time.perf_counter() - began) / len(own)
    print(f"\nin process ({len(subset)} updates per store mode, {len(sample)} batch recomputes)")
    print(f"  batch: features from the customer's rows + score   {1 / batch_s:10.1f} /s   1.00x")
    for mode, seconds in timings.items():
        print(
            f"  OnlineScorer.update, SQLite synchronous={mode:<6}     {1 / seconds:10.1f} /s "
            f"{batch_s / seconds:6.1f}x"
        )
    print("where the time goes (per customer, same run)")
    print(f"  features in batch from the customer's rows    {batch_features_s * 1000:9.2f} ms")
    print(
        f"  features online (update + evaluate)           {online_features_s * 1000:9.2f} ms"
        f"   {batch_features_s / online_features_s:6.1f}x faster"
    )
    print(f"  VipPipeline.score_features of one customer    {score_s * 1000:9.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--fit-customers", type=int, default=5000, help="customers fitted on")
    parser.add_argument("--seed-until", default="2025-11-30")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of single events")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--batch", type=int, default=50, help="events per request, phase 2")
    parser.add_argument("--get-every", type=int, default=4)
    parser.add_argument("--updates", type=int, default=500, help="in-process updates per mode")
    parser.add_argument("--batch-sample", type=int, default=40, help="batch recomputations")
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here")
    parser.add_argument(
        "--skip-service", action="store_true", help="only the in-process measurements"
    )
    args = parser.parse_args()

    from vipml import VipPipeline, bundle
    from vipml.data import simulate
    from vipml.registry import Registry

    warnings.simplefilter("ignore")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_serve_"))
    work.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    sim = simulate(args.customers, START, END, random_state=0)
    tx, ev = sim.transactions, sim.events
    print(f"{args.customers:,} customers: {len(tx):,} transactions, {len(ev):,} events")
    fitted = sorted(tx["customer_id"].unique())[: args.fit_customers]
    pipeline = VipPipeline().fit(
        tx[tx["customer_id"].isin(fitted)], ev[ev["customer_id"].isin(fitted)], cutoff=CUTOFF
    )
    registry = Registry(work / "models")
    registry.promote(registry.publish(lambda folder: bundle.save(pipeline, folder)))
    until = pd.Timestamp(args.seed_until) + pd.Timedelta(days=1)
    tx[tx["timestamp"] < until].to_parquet(work / "tx.parquet")
    ev[ev["timestamp"] < until].to_parquet(work / "events.parquet")
    stream = later_rows(tx, ev, args.seed_until)
    print(
        f"fitted on {len(fitted):,} customers; {len(stream):,} rows to stream after "
        f"{args.seed_until} (setup {time.perf_counter() - began:.0f} s)"
    )

    if args.skip_service:
        from vipml.online.scorer import OnlineScorer
        from vipml.online.store import SQLiteStore

        began = time.perf_counter()
        scorer = OnlineScorer(pipeline, store=SQLiteStore(work / "state.sqlite"))
        scorer.bootstrap(
            tx[tx["timestamp"] < until], ev[ev["timestamp"] < until], cutoff=args.seed_until
        )
        scorer.store.close()
        print(f"states seeded in process in {time.perf_counter() - began:.0f} s")
        in_process(pipeline, tx, ev, stream, work / "state.sqlite", args.updates, args.batch_sample)
        return
    port = free_port()
    state = work / "state.sqlite"
    command = [
        sys.executable, "-m", "vipml", "serve", "--registry", str(work / "models"),
        "--state", str(state), "--port", str(port), "--transactions", str(work / "tx.parquet"),
        "--events", str(work / "events.parquet"), "--seed-until", args.seed_until,
        "--max-batch", str(max(args.batch, 1)),
    ]  # fmt: skip
    log = (work / "serve.log").open("ab")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    import httpx

    began = time.perf_counter()
    while True:
        if server.poll() is not None:
            raise SystemExit(f"the service exited; see {work / 'serve.log'}")
        try:
            health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
            break
        except httpx.TransportError:
            time.sleep(1)
    print(
        f"service up with {health['customers']:,} customers in "
        f"{time.perf_counter() - began:.0f} s (seeding and VIP index included)"
    )
    ids = sorted(tx["customer_id"].unique())
    try:
        single = run_load(port, stream, ids, args.duration, args.concurrency, 1, args.get_every)
        rest = stream[single["sent"] :]
        batched = run_load(port, rest, ids, args.duration / 2, args.concurrency, args.batch, 0)
    finally:
        server.terminate()
        server.wait(60)
    print(f"\nload from a second process, {args.concurrency} connections, loopback")
    for name, result in (
        ("single events", single),
        (f"batches of {args.batch}", batched),
    ):
        print(
            f"  {name:<16} {result['acked'] / result['s']:9.1f} events/s   "
            f"POST /events {percentiles(result['posts'])}   ({result['errors']} errors, "
            f"{result['s']:.0f} s)"
        )
    print(
        f"  GET /customers/{{id}} during single events: {percentiles(single['gets'])} "
        f"({len(single['gets'])} requests)"
    )
    in_process(pipeline, tx, ev, rest[batched["sent"] :], state, args.updates, args.batch_sample)
    print(f"\nfiles in {work}")
    if args.workdir is None:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
