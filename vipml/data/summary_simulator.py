"""Seeded draws of customer summaries straight from each lifetime-value model's story.

:func:`simulate_summary` is the counterpart of lifetimes' ``generate_data`` functions
(``beta_geometric_nbd_model`` and friends): it draws what the models read (frequency, recency
and age; opportunities for BG/BB; renewals for sBG), vectorised over customers, with known
parameters, for parameter-recovery checks, power calculations and examples. The transaction-log
simulator :func:`vipml.data.simulate` draws whole logs instead.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["SUMMARY_MODELS", "simulate_summary"]

#: Parameter names of each model :func:`simulate_summary` draws from.
SUMMARY_MODELS: dict[str, tuple[str, ...]] = {
    "bgnbd": ("r", "alpha", "a", "b"),
    "modified_bgnbd": ("r", "alpha", "a", "b"),
    "pareto_nbd": ("r", "alpha", "s", "beta"),
    "bgbb": ("alpha", "beta", "gamma", "delta"),
    "sbg": ("alpha", "beta"),
}
_DISCRETE = ("bgbb", "sbg")
#: How covariates scale each model's parameters: ``{parameter: (process, sign)}``, as
#: :data:`vipml.ltv._covariates.LINKS` (CLVTools' links; a test keeps the two equal).
COVARIATE_LINKS: dict[str, dict[str, tuple[str, float]]] = {
    "bgnbd": {"alpha": ("purchase", -1.0), "a": ("dropout", 1.0), "b": ("dropout", 1.0)},
    "modified_bgnbd": {"alpha": ("purchase", -1.0), "a": ("dropout", 1.0), "b": ("dropout", 1.0)},
    "pareto_nbd": {"alpha": ("purchase", -1.0), "beta": ("dropout", -1.0)},
}
_SPEND_LINK = ("v", "spend", 1.0)
_SPEND_KEYS = ("p", "q", "v")
# fitted vipml estimators, recognised by class name (vipml.data never imports vipml.ltv)
_ESTIMATORS = {
    "BetaGeo": "bgnbd",
    "ModifiedBetaGeo": "modified_bgnbd",
    "ParetoNBD": "pareto_nbd",
    "BetaGeoBetaBinom": "bgbb",
    "ShiftedBetaGeometric": "sbg",
}

FloatArray = npt.NDArray[np.float64]


def _model_and_params(model: Any, params: Any) -> tuple[str, dict[str, float]]:
    if isinstance(model, str):
        name = model
    else:
        name = _ESTIMATORS.get(type(model).__name__, "")
        if not name:
            raise TypeError(
                f"model must be one of {sorted(SUMMARY_MODELS)} or a fitted vipml purchase or "
                f"retention model, got {model!r}."
            )
        if params is None:
            params = getattr(model, "params_", None)
            if params is None:
                raise ValueError(f"{type(model).__name__} is not fitted: pass params or fit it.")
    if name not in SUMMARY_MODELS:
        raise ValueError(f"model must be one of {sorted(SUMMARY_MODELS)}, got {model!r}.")
    return name, _check_params(params, SUMMARY_MODELS[name], "params")


def _check_params(params: Any, keys: tuple[str, ...], label: str) -> dict[str, float]:
    if not isinstance(params, Mapping):
        raise TypeError(f"{label} must be a dict with keys {list(keys)}, got {params!r}.")
    missing = [k for k in keys if k not in params]
    unknown = [k for k in params if k not in keys]
    if missing or unknown:
        raise ValueError(
            f"{label} must have exactly the keys {list(keys)}; missing {missing}, unknown "
            f"{unknown}."
        )
    out = {}
    for key in keys:
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{label}[{key!r}] must be a number, got {value!r}.")
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{label}[{key!r}] must be finite and positive, got {value}.")
        out[key] = float(value)
    return out


def _ages(T: Any, n: int, discrete: bool) -> FloatArray:
    age = np.asarray(T, dtype=np.float64)
    if age.ndim == 0:
        age = np.full(n, float(age))
    if age.shape != (n,):
        raise ValueError(
            f"T must be a number or one value per customer ({n}), got shape {age.shape}."
        )
    if not np.all(np.isfinite(age)) or np.any(age < 0):
        raise ValueError("T must be finite and >= 0 for every customer.")
    if discrete and np.any(age != np.round(age)):
        raise ValueError("T counts whole opportunities (BG/BB) or periods (sBG): use integers.")
    return age


def simulate_summary(
    model: Any,
    params: Mapping[str, float] | None = None,
    n: int = 1000,
    T: float | npt.ArrayLike = 52.0,
    *,
    spend_params: Mapping[str, float] | None = None,
    covariates: pd.DataFrame | None = None,
    coefficients: Mapping[str, float] | None = None,
    latent: bool = False,
    random_state: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Draw ``n`` customer summaries from a lifetime-value model with known parameters.

    - ``"bgnbd"``, ``"modified_bgnbd"``, ``"pareto_nbd"``: Poisson purchases at rate
      :math:`\\lambda \\sim \\mathrm{Gamma}(r, \\alpha)` until dropout (after a repeat
      purchase with probability :math:`p \\sim \\mathrm{Beta}(a, b)`, for MBG/NBD also at time
      0; or after an exponential lifetime with rate :math:`\\mu \\sim \\mathrm{Gamma}(s,
      \\beta)`), observed for ``T`` time units after the first purchase: ``frequency``,
      ``recency`` and ``T`` in continuous time, as the models read them.
    - ``"bgbb"``: ``T`` whole opportunities; before each a living customer dies with
      probability :math:`\\theta \\sim \\mathrm{Beta}(\\gamma, \\delta)`, and buys in it with
      probability :math:`p \\sim \\mathrm{Beta}(\\alpha, \\beta)`: ``frequency``,
      ``recency``, ``n_periods``.
    - ``"sbg"``: ``T`` renewal dates; at each an active customer cancels with probability
      :math:`\\theta \\sim \\mathrm{Beta}(\\alpha, \\beta)`: ``renewals``, ``churned``.

    Parameters
    ----------
    model : str or fitted estimator
        One of :data:`SUMMARY_MODELS`, or a fitted :class:`~vipml.ltv.BetaGeo`,
        :class:`~vipml.ltv.ModifiedBetaGeo`, :class:`~vipml.ltv.ParetoNBD`,
        :class:`~vipml.ltv.BetaGeoBetaBinom` or :class:`~vipml.ltv.ShiftedBetaGeometric`
        (whose ``params_`` are used when ``params`` is None).
    params : dict, optional
        The model's parameters (names as in the estimators' ``params_``).
    n : int, default 1000
        Number of customers.
    T : float or array_like, default 52.0
        Observation length after the first purchase (time units; whole opportunities for
        BG/BB; renewal dates for sBG), one number or one per customer.
    spend_params : dict, optional
        Gamma-Gamma ``{"p", "q", "v"}``: adds ``monetary_value``, the mean of the repeat
        purchases' spends (0 without repeat purchases). Purchase models only.
    covariates : pandas.DataFrame, optional
        ``n`` rows of numeric customer covariates (time-invariant), returned as columns of the
        summary; they scale the parameters as in CLVTools (see :mod:`vipml.ltv._covariates`).
    coefficients : dict, optional
        ``{"purchase.<column>": gamma, "dropout.<column>": gamma, "spend.<column>": gamma}``:
        the covariates' coefficients (BG/NBD, MBG/NBD and Pareto/NBD purchase and dropout;
        Gamma-Gamma spend).
    latent : bool, default False
        Add the customers' drawn parameters (``lambda``, ``p``, ``mu``, ``theta``, ``nu``)
        and whether they are still active at the end (``alive``).
    random_state : int, numpy.random.Generator or None
        Seed; the same seed gives the same summaries.

    Returns
    -------
    pandas.DataFrame
        One row per customer, indexed by ``customer_id`` (0 .. n - 1).

    Raises
    ------
    TypeError, ValueError
        Unknown model, wrong parameter names or values, ``n`` not a positive integer,
        ``T`` negative (or fractional for the discrete models), or ``spend_params`` with sBG.

    References
    ----------
    Fader, Hardie & Lee (2005), section 2 (BG/NBD); Schmittlein, Morrison & Colombo (1987)
    (Pareto/NBD); Batislam, Denizel & Filiztekin (2007) (MBG/NBD); Fader, Hardie & Shang
    (2010), section 2 (BG/BB); Fader & Hardie (2007), section 3 (sBG); Fader & Hardie (2013)
    (Gamma-Gamma).

    Examples
    --------
    >>> summary = simulate_summary("bgnbd", {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5},
    ...                            n=3, T=39.0, random_state=0)
    >>> summary.columns.tolist(), len(summary)
    (['frequency', 'recency', 'T'], 3)
    >>> simulate_summary("sbg", {"alpha": 0.7, "beta": 1.2}, n=4, T=7, random_state=1)
                 renewals  churned
    customer_id
    0                 0.0      1.0
    1                 2.0      1.0
    2                 7.0      0.0
    3                 2.0      1.0
    """
    name, theta = _model_and_params(model, params)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}.")
    n = int(n)
    age = _ages(T, n, name in _DISCRETE)
    rng = np.random.default_rng(random_state)
    z, spend_shift = None, 0.0
    if covariates is not None or coefficients:
        z, shifts = _covariate_shifts(name, covariates, coefficients or {}, n)
        theta = {k: v * np.exp(shifts.get(k, 0.0)) for k, v in theta.items()}
        spend_shift = shifts.get("v", 0.0)
    if name == "sbg":
        if spend_params is not None:
            raise ValueError("spend_params applies to purchase models, not to sBG renewals.")
        columns = _simulate_sbg(theta, age, rng)
    elif name == "bgbb":
        columns = _simulate_bgbb(theta, age, rng)
    elif name == "pareto_nbd":
        columns = _simulate_pareto(theta, age, rng)
    else:
        columns = _simulate_bg(theta, age, rng, modified=name == "modified_bgnbd")
    if spend_params is not None:
        spend = _check_params(spend_params, _SPEND_KEYS, "spend_params")
        spend = {**spend, "v": spend["v"] * np.exp(spend_shift)}
        columns.update(_simulate_spend(spend, columns["frequency"], rng))
    frame = pd.DataFrame(columns, index=pd.RangeIndex(n, name="customer_id"))
    if not latent:
        frame = frame[[c for c in frame.columns if c in _OBSERVED]]
    if z is not None:
        frame = frame.join(z.set_axis(frame.index))
    return frame


def _covariate_shifts(
    name: str, covariates: pd.DataFrame | None, coefficients: Mapping[str, float], n: int
) -> tuple[pd.DataFrame, dict[str, FloatArray]]:
    """Per parameter, the exponent each customer's covariates add (``sign * gamma' z``)."""
    if not isinstance(covariates, pd.DataFrame) or len(covariates) != n:
        raise ValueError(f"covariates must be a pandas DataFrame with n={n} rows.")
    links = {**COVARIATE_LINKS.get(name, {}), _SPEND_LINK[0]: _SPEND_LINK[1:]}
    processes = {process for process, _ in links.values()}
    shifts: dict[str, FloatArray] = {}
    for key, gamma in coefficients.items():
        process, _, column = str(key).partition(".")
        if process not in processes or column not in covariates.columns:
            raise ValueError(
                f"coefficient {key!r}: expected '<process>.<column>' with a process among "
                f"{sorted(processes)} and a column of covariates ({list(covariates.columns)})."
            )
        eta = float(gamma) * covariates[column].to_numpy(dtype=np.float64)
        for parameter, (linked, sign) in links.items():
            if linked == process:
                shifts[parameter] = shifts.get(parameter, 0.0) + sign * eta
    return covariates, shifts


_OBSERVED = ("frequency", "recency", "T", "n_periods", "renewals", "churned", "monetary_value")


def _simulate_bg(
    theta: dict[str, float], age: FloatArray, rng: np.random.Generator, *, modified: bool
) -> dict[str, FloatArray]:
    n = age.size
    lam = rng.gamma(theta["r"], 1.0 / theta["alpha"], n)
    p = rng.beta(theta["a"], theta["b"], n)
    count = rng.poisson(lam * age)  # purchases if the customer never dropped out
    # repeat purchases made before dropping out: the coin is tossed after each one (MBG/NBD:
    # also at time 0, so zero repeat purchases is possible)
    allowed = rng.geometric(p) - (1 if modified else 0)
    x = np.minimum(count, allowed)
    recency = np.zeros(n)
    buyers = x > 0
    # the x-th of `count` uniform arrival times on (0, T)
    recency[buyers] = age[buyers] * rng.beta(x[buyers], count[buyers] - x[buyers] + 1)
    return {
        "frequency": x.astype(np.float64),
        "recency": recency,
        "T": age,
        "lambda": lam,
        "p": p,
        "alive": (count < allowed).astype(np.float64),
    }


def _simulate_pareto(
    theta: dict[str, float], age: FloatArray, rng: np.random.Generator
) -> dict[str, FloatArray]:
    n = age.size
    lam = rng.gamma(theta["r"], 1.0 / theta["alpha"], n)
    mu = rng.gamma(theta["s"], 1.0 / theta["beta"], n)
    lifetime = rng.exponential(1.0 / mu)
    active = np.minimum(lifetime, age)
    x = rng.poisson(lam * active)
    recency = np.zeros(n)
    buyers = x > 0
    recency[buyers] = active[buyers] * rng.beta(x[buyers], 1.0)  # last of x uniform times
    return {
        "frequency": x.astype(np.float64),
        "recency": recency,
        "T": age,
        "lambda": lam,
        "mu": mu,
        "alive": (lifetime > age).astype(np.float64),
    }


def _simulate_bgbb(
    theta: dict[str, float], age: FloatArray, rng: np.random.Generator
) -> dict[str, FloatArray]:
    n = age.size
    p = rng.beta(theta["alpha"], theta["beta"], n)
    death = rng.beta(theta["gamma"], theta["delta"], n)
    # opportunities lived: the first death comes at opportunity G ~ Geometric(theta)
    lived = np.minimum(rng.geometric(death) - 1, age).astype(np.int64)
    x = np.zeros(n, dtype=np.int64)
    last = np.zeros(n, dtype=np.int64)
    for k in range(1, int(lived.max(initial=0)) + 1):
        buys = (lived >= k) & (rng.random(n) < p)
        x += buys
        last[buys] = k
    return {
        "frequency": x.astype(np.float64),
        "recency": last.astype(np.float64),
        "n_periods": age,
        "p": p,
        "theta": death,
        "alive": (lived >= age).astype(np.float64),
    }


def _simulate_sbg(
    theta: dict[str, float], age: FloatArray, rng: np.random.Generator
) -> dict[str, FloatArray]:
    n = age.size
    cancel = rng.beta(theta["alpha"], theta["beta"], n)
    lifetime = rng.geometric(cancel)  # periods paid; cancels at renewal date `lifetime`
    churned = lifetime <= age
    renewals = np.where(churned, lifetime - 1, age)
    return {
        "renewals": renewals.astype(np.float64),
        "churned": churned.astype(np.float64),
        "theta": cancel,
        "alive": (~churned).astype(np.float64),
    }


def _simulate_spend(
    spend: dict[str, float], frequency: FloatArray, rng: np.random.Generator
) -> dict[str, FloatArray]:
    x = frequency
    nu = rng.gamma(spend["q"], 1.0 / spend["v"], x.size)
    repeat = x > 0
    shape = np.where(repeat, spend["p"] * x, 1.0)
    mean_spend = rng.gamma(shape, 1.0 / (np.where(repeat, x, 1.0) * nu))
    return {"monetary_value": np.where(repeat, mean_spend, 0.0), "nu": nu}
