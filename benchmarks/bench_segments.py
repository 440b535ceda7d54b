"""Segmenter against scikit-learn's k-means on the same matrix, measured in the same run.

For each size N (customers) the script draws a synthetic feature table (frequency, monetary
value, time since last purchase, CLV: zero-inflated and heavy-tailed like real RFM tables) and
times each contender ``--repeat`` times (best time kept), with K=6 segments:

- ``sklearn KMeans``: KMeans (k-means++, 3 restarts, seed 0) on the Segmenter's own scaled
  matrix, so both solve the same problem; the reference of the next three rows;
- ``vipml Segmenter(n_segments=6)``: validation, customer-id order, log and robust scaling,
  k-means (above 50 000 customers: restarts on a 20 000 sample, one Lloyd run on everyone),
  profile and names; then the same with restarts on everyone (scikit-learn's algorithm, so
  the ratio is the Segmenter's own overhead), with string customer ids, and with
  ``n_segments="auto"`` (k in 3..8);
- ``sklearn MiniBatchKMeans`` (batch 16 384, 3 restarts) and ``vipml Segmenter(method=
  "minibatch")``, the second against the first.

``inertia`` is the k-means objective per customer of each contender's partition, all scored
on the same scaled matrix (lower is better). The target is at most 1.5x the matching scikit-learn algorithm for a fixed k. The
OpenMP/BLAS thread count is the machine's unless ``--threads`` is given.

    python benchmarks/bench_segments.py --sizes 1e5 1e6 --threads 1
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans, MiniBatchKMeans
from threadpoolctl import threadpool_limits

from vipml.segments import Segmenter
from vipml.segments import cluster as cluster_module

K = 6


def make_table(n: int, seed: int = 0) -> pd.DataFrame:
    """Synthetic RFM-like features: 60% one-time buyers, heavy-tailed spend and value."""
    rng = np.random.default_rng(seed)
    repeat = rng.random(n) < 0.4
    rate = rng.gamma(0.8, 2.0, n)
    frequency = np.where(repeat, 1 + rng.poisson(rate), 0).astype(np.float64)
    spend = rng.gamma(6.0, 1.0, n) / rng.gamma(4.0, 1.0 / 15.0, n)
    monetary = np.where(repeat, spend, 0.0)
    since = np.where(repeat, rng.uniform(0, 39, n) / (1 + rate), rng.uniform(20, 39, n))
    clv = (frequency + 0.2) * spend * np.exp(-since / 20.0) * rng.lognormal(0, 0.3, n)
    return pd.DataFrame(
        {
            "frequency": frequency,
            "monetary_value": monetary,
            "time_since_last": since,
            "clv": clv,
        },
        index=pd.Index(np.arange(n), name="customer_id"),
    )


def best_time(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Best wall time over ``repeat`` runs, and the last run's result."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def objective(scaled: np.ndarray, labels: np.ndarray) -> float:
    """k-means objective of a partition on one matrix, per customer (labels in row order).

    Every contender's partition is scored on the same scaled matrix, so the figures compare.
    """
    sizes = np.bincount(labels)
    means = np.stack([np.bincount(labels, weights=column) / sizes for column in scaled.T], axis=1)
    return float(((scaled - means[labels]) ** 2).sum() / len(scaled))


def full_restarts(table: pd.DataFrame) -> Segmenter:
    """The Segmenter with KMeans restarted on every customer, as scikit-learn does: overhead only."""
    threshold = cluster_module.SAMPLED_START_ABOVE
    cluster_module.SAMPLED_START_ABOVE = len(table)
    try:
        return Segmenter(n_segments=K).fit(table)
    finally:
        cluster_module.SAMPLED_START_ABOVE = threshold


def bench(n: int, repeat: int) -> list[dict[str, object]]:
    table = make_table(n)
    with_strings = table.set_axis(pd.Index(np.char.add("C", table.index.astype(str)), dtype=object))
    scaled = Segmenter(n_segments=K).fit(table).transform_features(table)
    settings = {"n_init": cluster_module.N_INIT, "random_state": 0}
    batch = cluster_module.DEFAULT_BATCH_SIZE
    contenders: list[tuple[str, str, Callable[[], Any]]] = [
        ("sklearn KMeans", "sklearn KMeans", lambda: KMeans(K, **settings).fit(scaled)),
        (
            f"vipml Segmenter(n_segments={K})",
            "sklearn KMeans",
            lambda: Segmenter(n_segments=K).fit(table),
        ),
        (
            f"vipml Segmenter(n_segments={K}), restarts on everyone",
            "sklearn KMeans",
            lambda: full_restarts(table),
        ),
        (
            f"vipml Segmenter(n_segments={K}), string ids",
            "sklearn KMeans",
            lambda: Segmenter(n_segments=K).fit(with_strings),
        ),
        ("vipml Segmenter() (auto k)", "sklearn KMeans", lambda: Segmenter().fit(table)),
        (
            "sklearn MiniBatchKMeans",
            "sklearn MiniBatchKMeans",
            lambda: MiniBatchKMeans(K, batch_size=batch, **settings).fit(scaled),
        ),
        (
            f'vipml Segmenter(n_segments={K}, method="minibatch")',
            "sklearn MiniBatchKMeans",
            lambda: Segmenter(n_segments=K, method="minibatch").fit(table),
        ),
    ]
    seconds, inertia = {}, {}
    for name, _, run in contenders:
        seconds[name], model = best_time(run, repeat)
        inertia[name] = objective(scaled, np.asarray(model.labels_))
    return [
        {
            "customers": n,
            "contender": name,
            "seconds": seconds[name],
            "ratio": seconds[name] / seconds[reference],
            "against": reference,
            "inertia": inertia[name],
        }
        for name, reference, _ in contenders
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e5, 1e6])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    rows = []
    with threadpool_limits(args.threads):
        for size in args.sizes:
            rows += bench(int(size), args.repeat)
    result = pd.DataFrame(rows)
    threads = args.threads or "default"
    header = f"Segmenter vs scikit-learn, k={K}, best of {args.repeat}, threads: {threads}"
    print(header)
    print(result.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
