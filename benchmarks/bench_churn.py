"""ChurnModel's whole fit against a bare ``lightgbm.train`` on the same final matrix.

For each size N (customers of ``vipml.data.simulate`` over 2024-2025, cutoff 2025-06-30,
13-week horizon, four snapshots) the script times, in one process and one run:

- vipml's whole ``ChurnModel.fit``: validation of the logs, point-in-time snapshots (RFM,
  cycle and engagement features), a BG/NBD and Gamma-Gamma fit per snapshot, LightGBM with
  early stopping on the latest snapshot, the blend, calibration (and, with ``refit``, the
  retraining on every snapshot; the default refits in bridged mode only, and these shops
  are direct);
- the LightGBM work inside that fit (dataset binning and every training), so the rest of the
  fit (validation, features, LTV fits, blend, calibration) can be told apart from LightGBM
  itself;
- the feature work alone (the stacked training table, rebuilt once more outside the fit);
- a bare ``lightgbm.train`` on the fit's own matrix, labels and base margin, with the same
  parameters and the same early stopping on the same validation rows (the reference: what
  LightGBM alone costs for this model);
- scoring: ``predict_proba`` at the cutoff (features, BG/NBD at the cutoff, booster,
  calibration), as customers per second, and the booster's own prediction alone.

Figures are printed as ratios to the bare LightGBM time measured in the same run:
``fit/lgb`` is the whole fit over the bare train, ``rest/lgb`` the fit minus its own LightGBM
work over the bare train (the overhead beyond LightGBM itself). ``cpu fit/lgb`` is the same
ratio in CPU time of the process (all threads): on a machine shared with other jobs, wall
times swing with the load and CPU times are the steadier comparison.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_churn.py --sizes 1e5 1e6

Engagement events (about 31 per customer) are simulated up to ``--no-events-above``
customers (default 2e6: every default size); shops above it are fitted on transactions only.
The 1e6 shop with its 3.1e7 events peaks at about 13 GB; ``--no-events-above 2e5`` fits it
in about 5 GB, but without events the booster stops after a few dozen rounds and the ratio
measures the features rather than LightGBM.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import time
from collections.abc import Callable, Iterator
from typing import Any

import lightgbm as lgb
import numpy as np

from vipml.churn import ChurnModel
from vipml.churn.model import Schedule
from vipml.data import simulate

CUTOFF = "2025-06-30"


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


@contextlib.contextmanager
def lightgbm_clock(spent: list[float]) -> Iterator[None]:
    """Add the time spent in ``lightgbm.train`` and ``Dataset.construct`` to ``spent``.

    Only outermost calls count: ``train`` constructs its datasets itself.
    """
    train, construct = lgb.train, lgb.Dataset.construct
    depth = [0]

    def timed(function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            depth[0] += 1
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    spent.append(time.perf_counter() - start)

        return wrapper

    lgb.train, lgb.Dataset.construct = timed(train), timed(construct)
    try:
        yield
    finally:
        lgb.train, lgb.Dataset.construct = train, construct


def run(n_customers: int, with_events: bool) -> dict[str, float]:
    sim = simulate(n_customers, "2024-01-01", "2025-12-31", random_state=0, events=with_events)
    tx = sim.transactions
    events = sim.events if with_events else None
    model = ChurnModel(horizon="13W")
    spent: list[float] = []
    start, cpu = time.perf_counter(), time.process_time()
    with lightgbm_clock(spent):
        model.fit(tx, events, cutoff=CUTOFF)
    fit_s, fit_cpu = time.perf_counter() - start, time.process_time() - cpu
    fit_lgb_s = sum(spent)

    start = time.perf_counter()
    cutoffs = model.snapshot_cutoffs_
    schedule = Schedule(model.mode_, model.training_horizon_, cutoffs[-1], tuple(cutoffs[:-1]))
    first_event = events["timestamp"].min().to_pydatetime() if with_events else None
    table, margin, y, _ = model._training_table(tx, events, schedule, first_event)
    features_s = time.perf_counter() - start

    params, rounds, patience = model._check_settings()[2:]
    is_valid = np.asarray(table.index.get_level_values("cutoff") == cutoffs[-1])
    X, target = table[model.feature_names_], y.astype(np.float64)
    start, cpu = time.perf_counter(), time.process_time()
    # Binned once on every row, as the fit does (bins do not depend on which rows train).
    data = lgb.Dataset(X, target, init_score=margin, params=params).construct()
    train, valid = data.subset(np.flatnonzero(~is_valid)), data.subset(np.flatnonzero(is_valid))
    bare = lgb.train(
        {**params, "metric": "binary_logloss"},
        train,
        num_boost_round=rounds,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(patience, first_metric_only=True, verbose=False)],
    )
    bare_s, bare_cpu = time.perf_counter() - start, time.process_time() - cpu
    assert bare.best_iteration == model.best_iteration_, "the reference must train alike"

    start = time.perf_counter()
    scores = model.predict_proba(tx, events, at=CUTOFF)
    score_s = time.perf_counter() - start
    scoring, _ = model.features(tx, events, at=CUTOFF)
    start = time.perf_counter()
    model.booster_.predict(scoring[model.feature_names_], raw_score=True)
    booster_s = time.perf_counter() - start
    return {
        "customers": n_customers,
        "transactions": len(tx),
        "events": len(sim.events),
        "rows": len(table),
        "features": len(model.feature_names_),
        "rounds": model.best_iteration_,
        "refitted": model.refitted_,
        "fit_s": fit_s,
        "fit_lgb_s": fit_lgb_s,
        "fit_cpu": fit_cpu,
        "bare_cpu": bare_cpu,
        "features_s": features_s,
        "bare_lgb_s": bare_s,
        "score_s": score_s,
        "scored": len(scores),
        "booster_s": booster_s,
        "peak_gb": _peak_gb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e5, 1e6])
    parser.add_argument("--no-events-above", type=float, default=2e6)
    args = parser.parse_args()
    header = (
        f"{'customers':>10} {'events':>6} {'rows':>9} {'rounds':>6} {'fit s':>7} "
        f"{'lgb in fit s':>12} {'features s':>10} {'bare lgb s':>10} {'fit/lgb':>7} "
        f"{'rest/lgb':>8} {'cpu fit/lgb':>11} {'score s':>7} "
        f"{'scored/s':>9} {'booster/s':>10} {'peak GB':>7}"
    )
    print(header)
    for size in args.sizes:
        n = int(size)
        with_events = n <= args.no_events_above
        r = run(n, with_events)
        print(
            f"{n:>10,} {'yes' if with_events else 'no':>6} {r['rows']:>9,} {r['rounds']:>6} "
            f"{r['fit_s']:>7.1f} {r['fit_lgb_s']:>12.1f} {r['features_s']:>10.1f} "
            f"{r['bare_lgb_s']:>10.1f} {r['fit_s'] / r['bare_lgb_s']:>7.2f} "
            f"{(r['fit_s'] - r['fit_lgb_s']) / r['bare_lgb_s']:>8.2f} "
            f"{r['fit_cpu'] / r['bare_cpu']:>11.2f} {r['score_s']:>7.1f} "
            f"{r['scored'] / r['score_s']:>9,.0f} {r['scored'] / r['booster_s']:>10,.0f} "
            f"{r['peak_gb']:>7.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
