"""Benchmark: vipml.ltv against lifetimes on simulated RFM summaries, measured in the same run.

For each size the script simulates a BG/NBD + Gamma-Gamma customer base (ages and recencies on
a daily grid in weeks, as ``rfm_summary(freq="D", time_unit="W")`` produces), then times

- the BG/NBD fit (vipml ``BetaGeo.fit`` vs lifetimes ``BetaGeoFitter.fit``),
- the Gamma-Gamma fit on the repeat buyers,
- predictions: expected purchases over 39 weeks plus P(alive) for every customer, at identical
  parameters,

and prints times (best of ``--repeat`` runs), ratios (lifetimes / vipml) and the relative
difference of the maximised log-likelihoods (each evaluated with the model's own likelihood in
the data's time unit) and of the predictions. Targets at 1e6 customers: fits >= 10x, predictions >= 5x, log-likelihood
within 1e-6 relative.

The discrete-time models are measured the same way on their own simulated summaries
(:func:`vipml.data.simulate_summary`, monthly opportunities over a year):

- BG/BB against lifetimes' ``BetaGeoBetaBinomFitter`` (fit on the same per-customer rows, and
  expected purchases over 12 opportunities plus P(alive) at identical parameters);
- sBG against a hand-written scipy fit (the per-customer likelihood of Fader & Hardie 2007
  minimised with BFGS on the log-parameters: what a user writes without a library), since
  lifetimes has no sBG;
- both against PyMC-Marketing's MAP fit (``BetaGeoBetaBinomModel``, ``ShiftedBetaGeoModel``)
  when ``pymc_marketing`` is importable, up to ``--pymc-max`` customers (its MAP fit takes
  minutes already at 1e4; beyond that size the row says "skipped").

Usage::

    python benchmarks/bench_ltv.py --sizes 1e4 1e5 1e6
    python benchmarks/bench_ltv.py --sizes 1e5 1e6 --models discrete --pymc-max 1e5
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from vipml.data import simulate_summary
from vipml.ltv import BetaGeo, BetaGeoBetaBinom, GammaGamma, ShiftedBetaGeometric

BG_TRUTH = (0.25, 4.0, 0.8, 2.5)
GG_TRUTH = (6.25, 3.74, 15.44)
HORIZON = 39.0
BGBB_TRUTH = {"alpha": 1.2, "beta": 0.75, "gamma": 0.66, "delta": 2.8}
SBG_TRUTH = {"alpha": 0.7, "beta": 1.2}
OPPORTUNITIES = 12  # monthly opportunities (BG/BB) or renewal dates (sBG) over a year


def simulate(n: int, seed: int) -> pd.DataFrame:
    """BG/NBD histories and Gamma-Gamma mean spends for ``n`` customers, on a daily grid."""
    rng = np.random.default_rng(seed)
    r, alpha, a, b = BG_TRUTH
    age_days = rng.integers(1, 546, n)
    age = age_days / 7.0
    lam = rng.gamma(r, 1.0 / alpha, n)
    count = rng.poisson(lam * age)
    x = np.minimum(count, rng.geometric(rng.beta(a, b, n)))
    last = np.zeros(n)
    buyers = x > 0
    last[buyers] = rng.beta(x[buyers], count[buyers] - x[buyers] + 1)
    recency_days = np.floor(last * age_days)
    p, q, v = GG_TRUTH
    nu = rng.gamma(q, 1.0 / v, n)
    spend = rng.gamma(np.where(buyers, p * x, 1.0), 1.0 / (np.maximum(x, 1) * nu))
    return pd.DataFrame(
        {
            "frequency": x.astype(np.float64),
            "recency": recency_days / 7.0,
            "T": age,
            "monetary_value": np.where(buyers, np.round(spend, 2), 0.0),
        },
        index=pd.Index(np.arange(n), name="customer_id"),
    )


def timed(
    function: Callable[..., Any], *args: Any, repeat: int = 1, **kwargs: Any
) -> tuple[float, Any]:
    """Best wall time of ``repeat`` calls (the machine may be shared) and the last result."""
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            result = function(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, result


def relative_difference(ours: np.ndarray, theirs: np.ndarray) -> float:
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    scale = np.maximum(np.abs(theirs), 1e-300)
    return float(np.nanmax(np.abs(ours - theirs) / scale))


def run(n: int, seed: int, repeat: int) -> list[dict[str, Any]]:
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    rfm = simulate(n, seed)
    x, rec, age = (rfm[c].to_numpy() for c in ("frequency", "recency", "T"))
    repeaters = rfm[rfm["frequency"] > 0]
    rows = []

    t_ours, bg = timed(BetaGeo().fit, rfm, repeat=repeat)
    t_theirs, bgf = timed(BetaGeoFitter().fit, x, rec, age, repeat=repeat)
    names = ["r", "alpha", "a", "b"]
    their_params = bgf.params_[names].to_numpy()
    # lifetimes' likelihood, evaluated at its own optimum in weeks, per customer -> total
    their_loglik = (
        -timed(
            BetaGeoFitter._negative_log_likelihood,
            np.log(their_params),
            x,
            rec,
            age,
            np.ones(n),
            0.0,
        )[1]
        * n
    )
    rows.append(
        {
            "size": n,
            "task": "BG/NBD fit",
            "vipml_s": t_ours,
            "lifetimes_s": t_theirs,
            "loglik_rel_diff": abs(bg.loglik_ - their_loglik) / abs(their_loglik),
            "max_rel_diff": relative_difference(
                np.array([bg.params_[k] for k in names]), their_params
            ),
        }
    )

    t_ours, gg = timed(GammaGamma().fit, rfm, repeat=repeat)
    t_theirs, ggf = timed(
        GammaGammaFitter().fit, repeaters["frequency"], repeaters["monetary_value"], repeat=repeat
    )
    gg_names = ["p", "q", "v"]
    their_gg = ggf.params_[gg_names].to_numpy()
    their_gg_loglik = -timed(
        GammaGammaFitter._negative_log_likelihood,
        np.log(their_gg),
        repeaters["frequency"].to_numpy(),
        repeaters["monetary_value"].to_numpy(),
        np.ones(len(repeaters)),
        0.0,
    )[1] * len(repeaters)
    rows.append(
        {
            "size": n,
            "task": "Gamma-Gamma fit",
            "vipml_s": t_ours,
            "lifetimes_s": t_theirs,
            "loglik_rel_diff": abs(gg.loglik_ - their_gg_loglik) / abs(their_gg_loglik),
            "max_rel_diff": relative_difference(
                np.array([gg.params_[k] for k in gg_names]), their_gg
            ),
        }
    )

    bgf.params_ = pd.Series(bg.params_)  # identical parameters for the predictions

    def ours_predict() -> tuple[pd.Series, pd.Series]:
        return bg.expected_purchases(rfm, HORIZON), bg.p_alive(rfm)

    def theirs_predict() -> tuple[np.ndarray, np.ndarray]:
        expected = bgf.conditional_expected_number_of_purchases_up_to_time(HORIZON, x, rec, age)
        return expected, bgf.conditional_probability_alive(x, rec, age)

    t_ours, (e_ours, p_ours) = timed(ours_predict, repeat=repeat)
    t_theirs, (e_theirs, p_theirs) = timed(theirs_predict, repeat=repeat)
    rows.append(
        {
            "size": n,
            "task": "predictions (E + P(alive))",
            "vipml_s": t_ours,
            "lifetimes_s": t_theirs,
            "loglik_rel_diff": np.nan,
            "max_rel_diff": max(
                relative_difference(e_ours, e_theirs), relative_difference(p_ours, p_theirs)
            ),
        }
    )
    return rows


def _pymc_marketing() -> Any:
    try:
        from pymc_marketing import clv
    except ImportError:
        return None
    return clv


def _pymc_map(clv: Any, name: str, data: pd.DataFrame) -> dict[str, float]:
    model = getattr(clv, name)(data=data)
    model.fit(method="map", progressbar=False)
    return {k: float(v) for k, v in model.fit_summary().items()}


def _sbg_scipy_reference(renewals: np.ndarray, churned: np.ndarray) -> np.ndarray:
    """The sBG likelihood of Fader & Hardie (2007) per customer, minimised by BFGS (log scale)."""
    from scipy.optimize import minimize
    from scipy.special import betaln

    def negative_loglik(log_params: np.ndarray) -> float:
        a, b = np.exp(log_params)
        ll = np.where(churned > 0, betaln(a + 1.0, b + renewals), betaln(a, b + renewals))
        return -float(np.sum(ll - betaln(a, b)))

    return np.exp(minimize(negative_loglik, np.zeros(2), method="BFGS").x)


def run_discrete(n: int, seed: int, repeat: int, pymc_max: float) -> list[dict[str, Any]]:
    """BG/BB and sBG fits (and BG/BB predictions) against lifetimes, scipy and PyMC-Marketing."""
    from lifetimes import BetaGeoBetaBinomFitter

    summary = simulate_summary("bgbb", BGBB_TRUTH, n, OPPORTUNITIES, random_state=seed)
    x, t_x, n_periods = (summary[c].to_numpy() for c in ("frequency", "recency", "n_periods"))
    rows: list[dict[str, Any]] = []
    names = list(BGBB_TRUTH)

    t_ours, bgbb = timed(BetaGeoBetaBinom().fit, summary, repeat=repeat)
    t_theirs, fitter = timed(BetaGeoBetaBinomFitter().fit, x, t_x, n_periods, repeat=repeat)
    theirs = fitter.params_[names].to_numpy()
    their_ll = float(
        np.sum(
            BetaGeoBetaBinomFitter._loglikelihood(
                theirs, x.astype(int), t_x.astype(int), n_periods.astype(int)
            )
        )
    )
    rows.append(
        {
            "size": n,
            "task": "BG/BB fit (lifetimes)",
            "vipml_s": t_ours,
            "reference_s": t_theirs,
            "loglik_rel_diff": abs(bgbb.loglik_ - their_ll) / abs(their_ll),
            "max_rel_diff": relative_difference(np.array([bgbb.params_[k] for k in names]), theirs),
        }
    )
    fitter.params_ = pd.Series(bgbb.params_)

    def ours_predict() -> tuple[pd.Series, pd.Series]:
        return bgbb.expected_purchases(summary, OPPORTUNITIES), bgbb.p_alive(summary)

    def theirs_predict() -> tuple[np.ndarray, np.ndarray]:
        expected = fitter.conditional_expected_number_of_purchases_up_to_time(
            OPPORTUNITIES, x, t_x, n_periods
        )
        return expected, fitter.conditional_probability_alive(0, x, t_x, n_periods)

    t_ours, (e_ours, p_ours) = timed(ours_predict, repeat=repeat)
    t_theirs, (e_theirs, p_theirs) = timed(theirs_predict, repeat=repeat)
    rows.append(
        {
            "size": n,
            "task": "BG/BB predictions (lifetimes)",
            "vipml_s": t_ours,
            "reference_s": t_theirs,
            "loglik_rel_diff": np.nan,
            "max_rel_diff": max(
                relative_difference(e_ours, e_theirs), relative_difference(p_ours, p_theirs)
            ),
        }
    )

    contracts = simulate_summary("sbg", SBG_TRUTH, n, OPPORTUNITIES, random_state=seed)
    renewals, churned = contracts["renewals"].to_numpy(), contracts["churned"].to_numpy()
    t_ours, sbg = timed(ShiftedBetaGeometric().fit, contracts, repeat=repeat)
    t_theirs, reference = timed(_sbg_scipy_reference, renewals, churned, repeat=repeat)
    rows.append(
        {
            "size": n,
            "task": "sBG fit (scipy by hand)",
            "vipml_s": t_ours,
            "reference_s": t_theirs,
            "loglik_rel_diff": np.nan,
            "max_rel_diff": relative_difference(
                np.array([sbg.params_["alpha"], sbg.params_["beta"]]), reference
            ),
        }
    )

    clv = _pymc_marketing()
    for task, name, data, ours_time, ours_params in (
        (
            "BG/BB fit (PyMC-Marketing MAP)",
            "BetaGeoBetaBinomModel",
            pd.DataFrame(
                {"customer_id": np.arange(n), "frequency": x, "recency": t_x, "T": n_periods}
            ),
            rows[0]["vipml_s"],
            [bgbb.params_[k] for k in names],
        ),
        (
            "sBG fit (PyMC-Marketing MAP)",
            "ShiftedBetaGeoModel",
            # PyMC-Marketing: recency = last period paid (T for the active), T = periods observed
            pd.DataFrame(
                {
                    "customer_id": np.arange(n),
                    "recency": renewals + 1.0,
                    "T": float(OPPORTUNITIES + 1),
                    "cohort": "all",
                }
            ),
            rows[2]["vipml_s"],
            [sbg.params_["alpha"], sbg.params_["beta"]],
        ),
    ):
        row = {"size": n, "task": task, "vipml_s": ours_time, "loglik_rel_diff": np.nan}
        if clv is None or n > pymc_max:
            why = (
                "pymc_marketing not importable" if clv is None else f"n > --pymc-max {pymc_max:.0e}"
            )
            rows.append({**row, "reference_s": np.nan, "max_rel_diff": np.nan, "note": why})
            continue
        t_theirs, fitted = timed(_pymc_map, clv, name, data)
        keys = names if name == "BetaGeoBetaBinomModel" else ["alpha", "beta"]
        # the cohort model names its parameters per cohort: alpha[all], beta[all]
        theirs = np.array([fitted.get(k, fitted.get(f"{k}[all]", np.nan)) for k in keys])
        rows.append(
            {
                **row,
                "reference_s": t_theirs,
                "max_rel_diff": relative_difference(np.asarray(ours_params), theirs),
                "note": "MAP under PyMC-Marketing's default priors",
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", nargs="+", type=float, default=[1e4, 1e5, 1e6], help="numbers of customers"
    )
    parser.add_argument("--seed", type=int, default=0, help="simulation seed")
    parser.add_argument(
        "--repeat", type=int, default=3, help="timings are the best of this many runs"
    )
    parser.add_argument(
        "--models",
        choices=["all", "continuous", "discrete"],
        default="all",
        help="BG/NBD and Gamma-Gamma (continuous), BG/BB and sBG (discrete), or both",
    )
    parser.add_argument(
        "--pymc-max",
        type=float,
        default=1e4,
        help="largest size at which PyMC-Marketing's MAP fits are timed",
    )
    args = parser.parse_args(argv)
    rows = []
    for size in args.sizes:
        if args.models in ("all", "continuous"):
            rows.extend(
                {**row, "reference_s": row.pop("lifetimes_s"), "note": "vs lifetimes"}
                for row in run(int(size), args.seed, args.repeat)
            )
        if args.models in ("all", "discrete"):
            rows.extend(run_discrete(int(size), args.seed, args.repeat, args.pymc_max))
    table = pd.DataFrame(rows)
    table["ratio"] = table["reference_s"] / table["vipml_s"]
    table["note"] = table.get("note", pd.Series("", index=table.index)).fillna("")
    columns = ["size", "task", "vipml_s", "reference_s", "ratio", "loglik_rel_diff", "max_rel_diff"]
    number = "{:.3f}".format
    formatters = {
        "size": "{:.0e}".format,
        "vipml_s": number,
        "reference_s": lambda v: "-" if np.isnan(v) else number(v),
        "ratio": lambda v: "-" if np.isnan(v) else f"{v:.1f}x",
        "loglik_rel_diff": lambda v: "-" if np.isnan(v) else f"{v:.1e}",
        "max_rel_diff": lambda v: "-" if np.isnan(v) else f"{v:.1e}",
    }
    print(table[[*columns, "note"]].to_string(index=False, formatters=formatters))


if __name__ == "__main__":
    main()
