"""VipPipeline end to end: train, bundle, load and score on simulated shops, stage by stage.

For each size N (customers of ``vipml.data.simulate`` over 2024-2025, seed ``--seed``) the
script generates the transaction and event logs once and caches them as Parquet (``--cache``,
default ``/tmp/vipml-bench``; the generation time is measured and printed separately). Then,
in a fresh subprocess per size, it

- reads the logs from Parquet;
- fits ``VipPipeline(config)`` at ``--cutoff`` and times each stage: input validation, the
  churn model (its own snapshots, BG/NBD per snapshot, LightGBM, calibration), the features
  at the cutoff, the LTV fits (BG/NBD + Gamma-Gamma), the CLV values with intervals, churn
  scoring, segments and tiers;
- saves the bundle (time, size on disk, of which the joblib pickle) and loads it with and
  without pickle (time);
- scores every customer at ``--at``: ``score_features`` on prebuilt features with the fitted
  pipeline (the reference, in customers per second), the same from each loaded bundle, and
  ``score`` from logs (features included) from each loaded bundle; checks that the loaded
  bundles give scores identical to the fitted pipeline.

Stages are timed from outside by wrapping the methods ``VipPipeline.fit`` and ``.score``
call (``vipml/`` is not modified); a call made inside another timed stage counts to the
outer one (e.g. the BG/NBD fits inside the churn model count to the churn model), and what no
wrapper covers is "other". Peak memory is the subprocess's peak resident set size
(``VmHWM``/``ru_maxrss``, Linux; the whole process: Python, NumPy, Arrow and LightGBM
allocations), and, per phase, the peak above the memory held when the phase starts (``VmHWM`` reset through
``/proc/self/clear_refs``, where the kernel allows it).

    python benchmarks/bench_pipeline.py --customers 1e5 1e6
    python benchmarks/bench_pipeline.py --customers 1e5 --score-sample 2e4 --repeat 1

``--score-sample`` scores a seeded random sample of customers (with their own logs) instead of
all of them: throughput is per customer, and scoring is row by row, so a sample bounds the
run time on a large shop. Stage times are printed as wall time and CPU time of the process
(all threads); on a loaded machine the CPU time is the steadier figure. Throughputs are
ratios to the reference measured in the same run, as the figures of a shared machine are
noisy. Needs the ``dev`` extra (pyarrow).
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

START, END = "2024-01-01", "2025-12-31"
FIT_STAGES = (
    "validation",
    "churn model",
    "features",
    "LTV fits",
    "CLV values",
    "churn scores",
    "segments",
    "tiers",
)
SCORE_STAGES = ("features", "CLV values", "churn scores", "RFM scores", "segments", "tiers")


# -- data ------------------------------------------------------------------------------------


def cached_logs(n: int, seed: int, cache: Path, with_events: bool) -> tuple[Path, Path, dict]:
    """Parquet logs of a simulated shop of ``n`` customers, generated once (in a subprocess)."""
    stem = f"sim_{n}_{seed}_{START}_{END}" + ("" if with_events else "_noevents")
    tx_path, events_path = cache / f"{stem}_tx.parquet", cache / f"{stem}_events.parquet"
    info_path = cache / f"{stem}.json"
    if not info_path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        info = child(
            "generate", str(n), str(seed), str(tx_path), str(events_path), str(int(with_events))
        )
        info_path.write_text(json.dumps(info))
        info["cached"] = False
    else:
        info = json.loads(info_path.read_text())
        info["cached"] = True
    return tx_path, events_path, info


def generate(n: int, seed: int, tx_path: str, events_path: str, with_events: bool) -> dict:
    from vipml.data import simulate

    start = time.perf_counter()
    sim = simulate(n, START, END, random_state=seed, events=with_events)
    simulate_s = time.perf_counter() - start
    start = time.perf_counter()
    sim.transactions.to_parquet(tx_path + ".part")
    os.replace(tx_path + ".part", tx_path)
    events = sim.events if with_events else sim.events.iloc[:0]
    events.to_parquet(events_path + ".part")
    os.replace(events_path + ".part", events_path)
    return {
        "simulate_s": simulate_s,
        "write_s": time.perf_counter() - start,
        "tx_rows": len(sim.transactions),
        "event_rows": len(sim.events) if with_events else 0,
        "peak_rss_mb": _peak_rss_mb(),
    }


# -- measurement -----------------------------------------------------------------------------


_PEAK_KB = [0]  # VmHWM seen before each reset: clear_refs also lowers ru_maxrss


def _note_peak() -> None:
    _PEAK_KB[0] = max(_PEAK_KB[0], _status_kb("VmHWM") or 0)


def _peak_rss_mb() -> float:
    _note_peak()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    return max(maxrss, _PEAK_KB[0]) / 1024


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


@contextmanager
def phase_peak(out: dict[str, float], name: str) -> Iterator[None]:
    """Peak RSS above the RSS at the start of the block (MB), where the kernel allows it."""
    gc.collect()
    _note_peak()
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM to the current RSS
        baseline = _status_kb("VmRSS")
    except OSError:
        baseline = None
    yield
    peak = _status_kb("VmHWM")
    _note_peak()
    if baseline is not None and peak is not None:
        out[name] = (peak - baseline) / 1024


class StageClock:
    """Wall and CPU time per stage, from wrappers around the methods the pipeline calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self._active: str | None = None
        self._undo: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, name: str, stage: str) -> None:
        original = owner.__dict__[name] if name in getattr(owner, "__dict__", {}) else None
        target = getattr(owner, name)
        clock = self

        @functools.wraps(target)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if clock._active is not None:  # nested: counts to the outer stage
                return target(*args, **kwargs)
            clock._active = stage
            start, cpu = time.perf_counter(), time.process_time()
            try:
                return target(*args, **kwargs)
            finally:
                clock.seconds[stage] += time.perf_counter() - start
                clock.cpu[stage] += time.process_time() - cpu
                clock._active = None

        self._undo.append((owner, name, original))
        setattr(owner, name, timed)

    def reset(self) -> dict[str, dict[str, float]]:
        out = {"wall": dict(self.seconds), "cpu": dict(self.cpu)}
        self.seconds, self.cpu = defaultdict(float), defaultdict(float)
        return out

    def unwrap(self) -> None:
        for owner, name, original in reversed(self._undo):
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self._undo.clear()


def install_clock() -> StageClock:
    import vipml.pipeline as pipeline_module
    from vipml.churn import ChurnModel
    from vipml.ltv import BetaGeo, GammaGamma, ModifiedBetaGeo, ParetoNBD
    from vipml.pipeline import VipPipeline
    from vipml.segments import Segmenter

    clock = StageClock()
    clock.wrap(pipeline_module, "prepare_transactions", "validation")
    clock.wrap(pipeline_module, "prepare_events", "validation")
    clock.wrap(ChurnModel, "fit", "churn model")
    clock.wrap(VipPipeline, "_features", "features")
    for model in (BetaGeo, ParetoNBD, ModifiedBetaGeo, GammaGamma):
        clock.wrap(model, "fit", "LTV fits")
    clock.wrap(VipPipeline, "_values", "CLV values")
    clock.wrap(VipPipeline, "_churn", "churn scores")
    clock.wrap(pipeline_module, "_apply_edges", "RFM scores")
    clock.wrap(pipeline_module, "rfm_segments", "RFM scores")
    clock.wrap(Segmenter, "fit", "segments")
    clock.wrap(Segmenter, "predict", "segments")
    clock.wrap(VipPipeline, "_tier_thresholds", "tiers")
    clock.wrap(VipPipeline, "_tiers", "tiers")
    return clock


def best_of(repeat: int, function: Callable[[], Any]) -> tuple[float, float, Any]:
    """Best wall time of ``repeat`` calls (the machine may be shared), its CPU time, the result."""
    best, best_cpu, result = np.inf, np.inf, None
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        result = function()
        seconds = time.perf_counter() - start
        if seconds < best:
            best, best_cpu = seconds, time.process_time() - cpu
    return best, best_cpu, result


def progress(out: dict[str, Any], what: str, _shown: set[str] = set()) -> None:  # noqa: B006
    """New figures on stderr as they come, so that an interrupted run still tells something."""
    new = {k: v for k, v in out.items() if k not in _shown}
    _shown.update(new)
    print(f"[bench {time.strftime('%H:%M:%S')}] {what}: {json.dumps(new)}", file=sys.stderr)
    sys.stderr.flush()


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def run(
    tx_path: str,
    events_path: str,
    config: str | None,
    cutoff: str,
    at: str,
    repeat: int,
    sample: int,
) -> dict[str, Any]:
    """Train, bundle, load and score in this process; return the figures."""
    from vipml.bundle import load, save
    from vipml.pipeline import VipPipeline

    warnings.simplefilter("ignore")
    out: dict[str, Any] = {"peaks_mb": {}}
    start = time.perf_counter()
    tx = pd.read_parquet(tx_path)
    events = pd.read_parquet(events_path)
    events = events if len(events) else None
    out["read_s"] = time.perf_counter() - start
    out["data_rss_mb"] = (_status_kb("VmRSS") or 0) / 1024
    clock = install_clock()

    with phase_peak(out["peaks_mb"], "fit"):
        start, cpu = time.perf_counter(), time.process_time()
        pipe = VipPipeline(config).fit(tx, events, cutoff=cutoff)
        out["fit_s"] = time.perf_counter() - start
        out["fit_cpu_s"] = time.process_time() - cpu
    out["fit_stages"] = clock.reset()
    out["n_fit_customers"] = int(pipe.summary_["n_customers"])
    out["churn_mode"] = pipe.summary_["churn_mode"]
    out["n_segments"] = len(pipe.summary_["segments"])
    out["n_trees"] = int(pipe.churn_model_.booster_.num_trees())
    progress(out, "fitted")

    with tempfile.TemporaryDirectory(dir=os.environ.get("VIPML_BENCH_TMP")) as tmp:
        folder = Path(tmp) / "bundle"
        start = time.perf_counter()
        save(pipe, folder)
        out["save_s"] = time.perf_counter() - start
        out["bundle_bytes"] = _folder_bytes(folder)
        out["pickle_bytes"] = (folder / "objects.joblib").stat().st_size
        loaded = {}
        for allow_pickle in (True, False):
            key = "pickle" if allow_pickle else "no pickle"
            out[f"load_s[{key}]"], _, loaded[key] = best_of(
                repeat, lambda a=allow_pickle: load(folder, allow_pickle=a)
            )
    progress(out, "bundle saved and loaded")

    # scoring: features once, then score_features (reference) and score from logs
    with phase_peak(out["peaks_mb"], "score"):
        if sample and sample < out["n_fit_customers"]:
            chosen = tx["customer_id"].drop_duplicates().sample(sample, random_state=0)
            tx = tx[tx["customer_id"].isin(chosen)]
            events = events[events["customer_id"].isin(chosen)] if events is not None else None
        start = time.perf_counter()
        features = pipe.build_features(tx, events, at=at)
        out["build_features_s"] = time.perf_counter() - start
        clock.reset()
        out["n_scored"] = len(features)
        out["score_features_s[fitted]"], out["score_features_cpu_s[fitted]"], reference = best_of(
            repeat, lambda: pipe.score_features(features)
        )
        out["score_stages"] = {
            kind: {k: v / repeat for k, v in values.items()}
            for kind, values in clock.reset().items()
        }
        progress(out, "reference scored")
        identical = {}
        for key, model in loaded.items():
            out[f"score_features_s[{key}]"], out[f"score_features_cpu_s[{key}]"], scores = best_of(
                repeat, lambda m=model: m.score_features(features)
            )
            identical[key] = bool(scores.equals(reference))
            out[f"score_s[{key}]"], out[f"score_cpu_s[{key}]"], scores = best_of(
                repeat, lambda m=model: m.score(tx, events, at=at)
            )
            identical[key] &= bool(scores.equals(reference))
            progress(out, f"scored from the bundle loaded with {key}")
        out["identical"] = identical
        clock.reset()
    out["peak_rss_mb"] = _peak_rss_mb()
    clock.unwrap()
    return out


# -- driver ----------------------------------------------------------------------------------


def child(*args: str, threads: int | None = None) -> dict[str, Any]:
    """Run ``--child args`` in a fresh interpreter; return its JSON answer."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        check=False,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    if done.returncode != 0:
        raise SystemExit(f"child {args[0]} failed with exit code {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(n: int, info: dict, f: dict[str, Any]) -> None:
    """Print one size's figures as a table: what, wall time (or rate), CPU time, notes."""
    rows: list[tuple[str, str, str, str]] = []

    def row(what: str, value: str, cpu: str = "", note: str = "") -> None:
        rows.append((what, value, cpu, note))

    generated = "cached" if info["cached"] else "generated now"
    row(
        "simulate() + write Parquet",
        f"{info['simulate_s'] + info['write_s']:.1f} s",
        "",
        f"{generated}; simulate {info['simulate_s']:.1f} s, "
        f"{info['tx_rows']:,} tx, {info['event_rows']:,} events, "
        f"peak RSS {info['peak_rss_mb']:,.0f} MB",
    )
    row("read Parquet", f"{f['read_s']:.1f} s", "", f"RSS with logs {f['data_rss_mb']:,.0f} MB")
    fit = f["fit_s"]
    row(
        "fit (total)",
        f"{fit:.1f} s",
        f"{f['fit_cpu_s']:.1f} s",
        f"{f['n_fit_customers']:,} customers, churn mode {f['churn_mode']}, "
        f"{f['n_segments']} segments, {f.get('n_trees', 0)} trees; peak +{f['peaks_mb'].get('fit', float('nan')):,.0f} MB",
    )
    wall, cpu = f["fit_stages"]["wall"], f["fit_stages"]["cpu"]
    for stage in FIT_STAGES:
        seconds = wall.get(stage, 0.0)
        row(
            f"  {stage}", f"{seconds:.2f} s", f"{cpu.get(stage, 0.0):.2f} s", f"{seconds / fit:.0%}"
        )
    other = fit - sum(wall.values())
    row("  other", f"{other:.2f} s", "", f"{other / fit:.0%}")
    row(
        "bundle save",
        f"{f['save_s']:.2f} s",
        "",
        f"{f['bundle_bytes'] / 1e6:.2f} MB on disk, of which joblib {f['pickle_bytes'] / 1e6:.2f} MB",
    )
    for key in ("pickle", "no pickle"):
        row(f"bundle load ({key})", f"{f[f'load_s[{key}]']:.3f} s")
    n_scored = f["n_scored"]
    row(
        "build_features at --at",
        f"{f['build_features_s']:.1f} s",
        "",
        f"{n_scored:,} customers; scoring phase peak +{f['peaks_mb'].get('score', float('nan')):,.0f} MB",
    )
    reference = f["score_features_s[fitted]"]
    reference_cpu = f.get("score_features_cpu_s[fitted]")
    for label, key in (
        ("score_features, fitted (ref.)", "score_features_s[fitted]"),
        ("score_features, loaded pickle", "score_features_s[pickle]"),
        ("score_features, loaded no pickle", "score_features_s[no pickle]"),
        ("score from logs, loaded pickle", "score_s[pickle]"),
        ("score from logs, loaded no pickle", "score_s[no pickle]"),
    ):
        seconds = f[key]
        cpu_s = f.get(key.replace("_s[", "_cpu_s["))
        note = f"{seconds:.2f} s = {seconds / reference:.2f}x the reference"
        if cpu_s and reference_cpu:
            note += (
                f"; {n_scored / cpu_s:,.0f} per CPU-s, CPU {cpu_s / reference_cpu:.2f}x "
                "the reference"
            )
        row(
            label,
            f"{n_scored / seconds:,.0f} /s",
            "" if cpu_s is None else f"{cpu_s:.2f} s",
            note,
        )
    wall, cpu = f["score_stages"]["wall"], f["score_stages"]["cpu"]
    for stage in SCORE_STAGES[1:]:
        seconds = wall.get(stage, 0.0)
        row(
            f"  ref. {stage}",
            f"{seconds:.2f} s",
            f"{cpu.get(stage, 0.0):.2f} s",
            f"{seconds / reference:.0%}",
        )
    identical = ", ".join(f"{k}: {v}" for k, v in f["identical"].items())
    row("scores identical after load", "", "", identical)
    row("peak RSS of the process", f"{f['peak_rss_mb']:,.0f} MB", "", "VmHWM, whole subprocess")
    width = max(len(r[0]) for r in rows)
    print(f"\n== {n:,} customers ==")
    print(f"{'':<{width}}  {'wall/rate':>12}  {'CPU':>9}  notes (% = share of the parent's wall)")
    for what, value, cpu_s, note in rows:
        print(f"{what:<{width}}  {value:>12}  {cpu_s:>9}  {note}".rstrip())
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", nargs="+", type=float, default=[1e5, 1e6], help="shop sizes")
    parser.add_argument("--seed", type=int, default=0, help="simulation seed")
    parser.add_argument(
        "--cache", type=Path, default=Path("/tmp/vipml-bench"), help="Parquet cache of the logs"
    )
    parser.add_argument("--config", help="PipelineConfig TOML file (default: the defaults)")
    parser.add_argument("--cutoff", default="2025-06-30", help="fit cutoff")
    parser.add_argument("--at", default="2025-12-31", help="scoring date")
    parser.add_argument("--repeat", type=int, default=2, help="scoring: best of this many runs")
    parser.add_argument(
        "--score-sample",
        type=float,
        default=0,
        help="score a random sample of this many customers (their logs); default: all",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="OMP_NUM_THREADS of the runs (default unset); LightGBM follows its own "
        "num_threads (2 unless the config's churn.lgbm_params sets it)",
    )
    parser.add_argument(
        "--no-events-above",
        type=float,
        default=float("inf"),
        help="simulate and fit without engagement events above this many customers",
    )
    parser.add_argument(
        "--generate-only", action="store_true", help="only fill the cache, then stop"
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--show", type=Path, help="print the tables of a --json file, then stop")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.show:
        for n, figures in json.loads(args.show.read_text()).items():
            report(int(n), figures["generation"], figures)
        return
    if args.child:
        kind, *rest = args.child
        if kind == "generate":
            n, seed, tx, ev, with_events = rest
            print(json.dumps(generate(int(n), int(seed), tx, ev, bool(int(with_events)))))
        else:
            tx, ev, config, cutoff, at, repeat, sample = rest
            figures = run(tx, ev, config or None, cutoff, at, int(repeat), int(sample))
            print(json.dumps(figures))
        return

    import vipml

    print(
        f"vipml {vipml.__version__} pipeline benchmark: cutoff {args.cutoff}, scoring at {args.at}, "
        f"config {args.config or 'defaults'}, scoring sample {int(args.score_sample) or 'all'}, "
        f"cache {args.cache}, {os.cpu_count()} CPUs, "
        f"OMP_NUM_THREADS {args.threads or os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    everything = {}
    for size in args.customers:
        n = int(size)
        with_events = n <= args.no_events_above
        tx, ev, info = cached_logs(n, args.seed, args.cache, with_events)
        if args.generate_only:
            print(f"{n:,} customers: {tx} {ev} {info}", flush=True)
            continue
        figures = child(
            "run",
            str(tx),
            str(ev),
            args.config or "",
            args.cutoff,
            args.at,
            str(args.repeat),
            str(int(args.score_sample)),
            threads=args.threads,
        )
        report(n, info, figures)
        everything[n] = {"generation": info, "load_average": os.getloadavg(), **figures}
        if args.json:
            args.json.write_text(json.dumps(everything, indent=1))


if __name__ == "__main__":
    main()
