"""RFM features from Parquet logs of 1e6 to 1e8 rows: out of core with DuckDB, and on Spark.

For each size N (rows; N/10 customers over three years, second timestamps, positive amounts)
the script writes the transaction log once as Parquet parts of 2.5e6 rows into a cache folder
(a cheap vectorised generator, seeded: the files are the same in every run), then runs each
contender in its own subprocess (``--repeat`` times, round robin, keeping the best time) and
reports its wall time and the peak resident memory of the subprocess *and all its
descendants* (the Spark JVM included), sampled from /proc (Linux).

Contenders, all computing the same RFM summary (lifetimes definitions, daily purchase periods,
recency and T in weeks) and ending with the result as a pandas frame:

* ``sql``: a hand-written DuckDB query over the Parquet files (the reference);
* ``vipml``: ``rfm_summary(scan_parquet(glob, memory_limit=...))``, the out-of-core path;
* ``vipml-checked``: the same with the duplicate-row check on (one more pass over the log);
* ``pandas``: the files read into pandas, then ``rfm_summary`` of the in-memory frame;
* ``spark``: a local Spark session (``local[2]``) reading the files, ``rfm_summary`` of the Spark
  DataFrame and ``toPandas()`` of the result; session start-up is reported separately.

Figures are printed as ratios against the reference measured in the same run, and the growth
of each contender's time from the smallest size on (near 10x per 10x rows is linear).

    python benchmarks/bench_scale.py --sizes 1e6 1e7 1e8
    python benchmarks/bench_scale.py --sizes 1e6 1e7 --contenders sql vipml spark --repeat 2

Needs the ``spark`` extra for the Spark contender (Java 17).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

CUTOFF = "2023-09-30"
START = np.datetime64("2021-01-01T00:00:00", "s")
SPAN_SECONDS = 3 * 365 * 86400
PART_ROWS = 2_500_000
CONTENDERS = ("sql", "vipml", "vipml-checked", "pandas", "spark")

SQL_RFM = """
WITH periods AS (
    SELECT customer_id, CAST(timestamp AS DATE) AS day, SUM(amount) AS spend
    FROM read_parquet('{glob}') WHERE timestamp <= TIMESTAMP '{cutoff} 23:59:59.999999'
    GROUP BY ALL HAVING MAX(amount) >= 0
), customers AS (
    SELECT customer_id, MIN(day) AS first_day, MAX(day) AS last_day, COUNT(*) AS n,
           SUM(spend) AS total, ARG_MIN(spend, day) AS first_spend
    FROM periods GROUP BY customer_id
)
SELECT customer_id,
       n - 1.0 AS frequency,
       DATEDIFF('day', first_day, last_day) / 7.0 AS recency,
       DATEDIFF('day', first_day, DATE '{cutoff}') / 7.0 AS T,
       CASE WHEN n > 1 THEN (total - first_spend) / (n - 1) ELSE 0.0 END AS monetary_value
FROM customers ORDER BY customer_id
"""


def make_log(n_rows: int, cache: Path) -> str:
    """Write (once) a log of ``n_rows`` rows as Parquet parts; return the parts' glob."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = cache / f"tx_{n_rows}"
    done = folder / "_SUCCESS"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        n_customers = max(n_rows // 10, 1)
        for part, first in enumerate(range(0, n_rows, PART_ROWS)):
            size = min(PART_ROWS, n_rows - first)
            rng = np.random.default_rng([n_rows, part])
            table = pa.table(
                {
                    "customer_id": rng.integers(0, n_customers, size),
                    "timestamp": (START + rng.integers(0, SPAN_SECONDS, size)).astype(
                        "datetime64[us]"
                    ),
                    "amount": np.round(rng.gamma(2.0, 20.0, size), 2),
                }
            )
            pq.write_table(table, folder / f"part-{part:04d}.parquet")
        done.touch()
    return str(folder / "*.parquet")


def run_contender(name: str, glob: str, memory_limit: str) -> dict[str, Any]:
    """Run one contender in this process; return its time and a fingerprint of the result."""
    import warnings

    warnings.simplefilter("ignore")
    extra: dict[str, Any] = {}
    if name == "sql":
        import duckdb

        con = duckdb.connect(config={"memory_limit": memory_limit})
        start = time.perf_counter()
        result = con.sql(SQL_RFM.format(glob=glob, cutoff=CUTOFF)).df().set_index("customer_id")
    elif name in ("vipml", "vipml-checked"):
        from vipml.data.parquet import scan_parquet
        from vipml.features import rfm_summary

        start = time.perf_counter()
        log = scan_parquet(glob, memory_limit=memory_limit)
        relation = rfm_summary(
            log, CUTOFF, freq="D", time_unit="W", check_duplicates=name == "vipml-checked"
        )
        result = relation.order("customer_id").df().set_index("customer_id")
    elif name == "pandas":
        import pandas as pd

        from vipml.features import rfm_summary

        start = time.perf_counter()
        tx = pd.read_parquet(Path(glob).parent)
        extra["read_seconds"] = time.perf_counter() - start
        result = rfm_summary(tx, CUTOFF, freq="D", time_unit="W", check_duplicates=False)
    elif name == "spark":
        from vipml.features import rfm_summary
        from vipml.spark import local_session

        begin = time.perf_counter()
        spark = local_session(cores=2)
        extra["startup_seconds"] = time.perf_counter() - begin
        start = time.perf_counter()
        sdf = spark.read.parquet(str(Path(glob).parent))
        summary = rfm_summary(sdf, CUTOFF, freq="D", time_unit="W", check_duplicates=False)
        result = summary.toPandas().set_index("customer_id").sort_index()
    else:
        raise ValueError(name)
    seconds = time.perf_counter() - start
    fingerprint = {c: float(result[c].sum()) for c in ("frequency", "recency", "T")}
    fingerprint["monetary_value"] = float(result["monetary_value"].sum())
    return {"seconds": seconds, "rows_out": len(result), "fingerprint": fingerprint, **extra}


def _tree_rss_kb(root: int) -> int:
    """Resident memory of a process and all its descendants, in kB (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/statm") as statm:
                pages = int(statm.read().split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        rss[int(entry)] = pages * os.sysconf("SC_PAGE_SIZE") // 1024
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


def measure(name: str, glob: str, memory_limit: str) -> dict[str, Any]:
    """Run a contender in a subprocess, sampling the peak memory of its process tree."""
    command = [sys.executable, __file__, "--run", name, glob, "--memory-limit", memory_limit]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss_kb(proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{err[-3000:]}")
    figures = json.loads(out.strip().splitlines()[-1])
    figures["peak_mb"] = peak[0] / 1024
    return figures


def _agree(a: dict[str, float], b: dict[str, float]) -> bool:
    return all(abs(a[k] - b[k]) <= 1e-9 * max(1.0, abs(b[k])) for k in b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7, 1e8])
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/vipml-bench"))
    parser.add_argument("--memory-limit", default="4GB", help="DuckDB memory limit")
    parser.add_argument(
        "--in-memory-max", type=float, default=1e7, help="largest size for pandas and Spark"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender (best kept)")
    parser.add_argument("--run", nargs=2, metavar=("NAME", "GLOB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_contender(*args.run, args.memory_limit)))
        return
    print(f"DuckDB memory limit {args.memory_limit}; cache {args.cache}; cutoff {CUTOFF}")
    print(f"{'rows':>11} {'contender':<14} {'seconds':>8} {'x sql':>6} {'peak MB':>8} {'notes'}")
    first: dict[str, tuple[int, float]] = {}
    for size in args.sizes:
        n_rows = int(size)
        glob = make_log(n_rows, args.cache)
        names = [
            name
            for name in args.contenders
            if name not in ("pandas", "spark") or n_rows <= args.in_memory_max
        ]
        figures: dict[str, dict[str, Any]] = {}
        # Round robin: a passing load on the machine hits every contender alike; the best of
        # the repeats is kept.
        for _ in range(args.repeat):
            for name in names:
                run = measure(name, glob, args.memory_limit)
                if name not in figures or run["seconds"] < figures[name]["seconds"]:
                    figures[name] = run
        for name in names:
            f = figures[name]
            ratio = f["seconds"] / figures["sql"]["seconds"] if "sql" in figures else float("nan")
            notes = [f"{f['rows_out']} customers"]
            if "sql" in figures and name != "sql":
                agree = _agree(f["fingerprint"], figures["sql"]["fingerprint"])
                notes.append("same result" if agree else "RESULT DIFFERS")
            if "read_seconds" in f:
                notes.append(f"of which reading into pandas {f['read_seconds']:.1f} s")
            if "startup_seconds" in f:
                notes.append(f"session start-up {f['startup_seconds']:.1f} s not included")
            if name in first:
                rows0, seconds0 = first[name]
                notes.append(
                    f"time x{f['seconds'] / seconds0:.1f} for rows x{n_rows / rows0:.0f} "
                    f"since {rows0:.0e}"
                )
            else:
                first[name] = (n_rows, f["seconds"])
            print(
                f"{n_rows:>11} {name:<14} {f['seconds']:>8.2f} {ratio:>6.2f} "
                f"{f['peak_mb']:>8.0f} {'; '.join(notes)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
