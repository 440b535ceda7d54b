"""Feature builders against lifetimes and hand-written DuckDB SQL, measured in the same run.

For each size N (rows; N/10 customers over two years, second timestamps) the script writes a
transaction log and an event log to Parquet once, then times each contender in its own
subprocess, which loads the log into pandas, resets the peak resident memory (Linux), runs the
contender and reports wall time and the peak memory *above* the loaded log. Figures are printed as
ratios against the references measured in the same run.

    python benchmarks/bench_features.py --sizes 1e5 1e6 1e7

Needs the ``dev`` extra (lifetimes, pyarrow).
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CUTOFF = "2024-12-31"
START = np.datetime64("2023-01-01T00:00:00", "s")
SPAN_SECONDS = 2 * 365 * 86400

SQL_RFM = """
WITH periods AS (
    SELECT customer_id, CAST(timestamp AS DATE) AS day, SUM(amount) AS spend
    FROM tx WHERE timestamp <= TIMESTAMP '{cutoff} 23:59:59.999999'
    GROUP BY ALL HAVING MAX(amount) >= 0
), ranked AS (
    SELECT *, MIN(day) OVER (PARTITION BY customer_id) AS first_day FROM periods
)
SELECT customer_id,
       COUNT(*) - 1.0 AS frequency,
       DATEDIFF('day', MIN(day), MAX(day)) / 7.0 AS recency,
       DATEDIFF('day', MIN(day), DATE '{cutoff}') / 7.0 AS T,
       COALESCE(AVG(spend) FILTER (WHERE day > first_day), 0.0) AS monetary_value
FROM ranked GROUP BY customer_id
"""


def make_logs(n_rows: int, folder: Path) -> tuple[Path, Path]:
    """A transaction log and an event log of ``n_rows`` rows each, N/10 customers."""
    rng = np.random.default_rng(0)
    n_customers = max(n_rows // 10, 1)
    ids = np.char.add("C", rng.integers(0, n_customers, n_rows).astype(str))
    offsets = rng.integers(0, SPAN_SECONDS, n_rows)
    tx = pd.DataFrame(
        {
            "customer_id": ids,
            "timestamp": (START + offsets).astype("datetime64[us]"),
            "amount": np.round(rng.gamma(2.0, 20.0, n_rows), 2),
        }
    )
    events = pd.DataFrame(
        {
            "customer_id": np.char.add("C", rng.integers(0, n_customers, n_rows).astype(str)),
            "timestamp": (START + rng.integers(0, SPAN_SECONDS, n_rows)).astype("datetime64[us]"),
            "event_type": rng.choice(["visit", "email_open", "email_click", "review"], n_rows),
            "channel": rng.choice(["web", "app", "store"], n_rows),
            "value": np.where(rng.random(n_rows) < 0.1, rng.uniform(-1, 1, n_rows), np.nan),
        }
    )
    tx_path, events_path = folder / f"tx_{n_rows}.parquet", folder / f"events_{n_rows}.parquet"
    tx.to_parquet(tx_path)
    events.to_parquet(events_path)
    return tx_path, events_path


def run_contender(name: str, tx_path: str, events_path: str) -> dict[str, float]:
    """Run one contender in this process and return its time and extra peak memory."""
    import warnings

    tx = pd.read_parquet(tx_path)
    events = pd.read_parquet(events_path) if name == "vipml_engagement" else None
    contender = _contender(name)
    baseline = _reset_peak_rss()
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    result = contender(tx, events)
    seconds = time.perf_counter() - start
    peak = _status_kb("VmHWM")
    return {"seconds": seconds, "extra_peak_mb": (peak - baseline) / 1024, "rows_out": len(result)}


def _contender(name: str) -> Callable[[pd.DataFrame, pd.DataFrame | None], Any]:
    """The contender's function, imported before the clock starts."""
    if name == "vipml_rfm":
        from vipml.features import rfm_summary

        return lambda tx, _: rfm_summary(tx, CUTOFF, freq="D", time_unit="W")
    if name == "lifetimes_rfm":
        from lifetimes.utils import summary_data_from_transaction_data

        return lambda tx, _: summary_data_from_transaction_data(
            tx, "customer_id", "timestamp", "amount", observation_period_end=CUTOFF, freq="D"
        )
    if name == "duckdb_sql_rfm":
        import duckdb

        return lambda tx, _: duckdb.sql(SQL_RFM.format(cutoff=CUTOFF)).df()
    if name == "vipml_engagement":
        from vipml.features import engagement_features

        return lambda _, events: engagement_features(events, CUTOFF)
    raise ValueError(name)


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> int:
    """Reset the peak resident set size (Linux) and return the current one, in kB."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    return _status_kb("VmRSS")


def measure(name: str, tx_path: Path, events_path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--run", name, str(tx_path), str(events_path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e5, 1e6, 1e7])
    parser.add_argument("--skip-lifetimes-above", type=float, default=1e8)
    parser.add_argument("--run", nargs=3, metavar=("NAME", "TX", "EVENTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_contender(*args.run)))
        return
    contenders = ["vipml_rfm", "duckdb_sql_rfm", "lifetimes_rfm", "vipml_engagement"]
    print(f"{'rows':>10} {'contender':<18} {'seconds':>9} {'extra peak MB':>14} {'rows out':>9}")
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            n_rows = int(size)
            tx_path, events_path = make_logs(n_rows, Path(folder))
            figures = {}
            for name in contenders:
                if name == "lifetimes_rfm" and n_rows > args.skip_lifetimes_above:
                    continue
                figures[name] = measure(name, tx_path, events_path)
                f = figures[name]
                print(
                    f"{n_rows:>10} {name:<18} {f['seconds']:>9.2f} {f['extra_peak_mb']:>14.0f} "
                    f"{f['rows_out']:>9}"
                )
            vipml, sql = figures["vipml_rfm"], figures["duckdb_sql_rfm"]
            line = f"{n_rows:>10} vipml / DuckDB SQL time: {vipml['seconds'] / sql['seconds']:.2f}x"
            if "lifetimes_rfm" in figures:
                theirs = figures["lifetimes_rfm"]
                line += (
                    f"; lifetimes / vipml time: {theirs['seconds'] / vipml['seconds']:.1f}x; "
                    f"peak memory vipml / lifetimes: "
                    f"{vipml['extra_peak_mb'] / max(theirs['extra_peak_mb'], 1):.2f}"
                )
            print(line, flush=True)


if __name__ == "__main__":
    main()
