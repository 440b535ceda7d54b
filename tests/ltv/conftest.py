"""Small seeded simulators of the buy-till-you-die models, for parameter-recovery tests.

They draw customer summaries (frequency, recency, T) directly from each model's generative
story, vectorised over customers. ``vipml.data.simulate`` will replace them once it exists.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest


def _summary(x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> pd.DataFrame:
    index = pd.Index(np.arange(x.size), name="customer_id")
    return pd.DataFrame(
        {"frequency": x.astype(np.float64), "recency": t_x, "T": age.astype(np.float64)},
        index=index,
    )


def simulate_bg_family(
    T: np.ndarray,
    r: float,
    alpha: float,
    a: float,
    b: float,
    rng: np.random.Generator,
    *,
    modified: bool = False,
) -> pd.DataFrame:
    """BG/NBD (or MBG/NBD with ``modified=True``) summaries for customers of ages ``T``.

    The Poisson count ``N`` over ``(0, T]`` is what the customer would buy if never dropping
    out; ``J`` is the number of repeat purchases made before dropping out (geometric: the coin
    is tossed after every repeat purchase, and for MBG/NBD also at time 0). The observed count
    is ``min(N, J)`` and the last purchase is the ``x``-th of ``N`` uniform arrival times.
    """
    age = np.asarray(T, dtype=np.float64)
    n = age.size
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    count = rng.poisson(lam * age)
    allowed = rng.geometric(p) - (1 if modified else 0)
    x = np.minimum(count, allowed)
    t_x = np.zeros(n)
    buyers = x > 0
    t_x[buyers] = age[buyers] * rng.beta(x[buyers], count[buyers] - x[buyers] + 1)
    return _summary(x, t_x, age)


def simulate_pareto_nbd(
    T: np.ndarray, r: float, alpha: float, s: float, beta: float, rng: np.random.Generator
) -> pd.DataFrame:
    """Pareto/NBD summaries: Poisson purchases during an exponential lifetime."""
    age = np.asarray(T, dtype=np.float64)
    n = age.size
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    active = np.minimum(rng.exponential(1.0 / mu), age)
    x = rng.poisson(lam * active)
    t_x = np.zeros(n)
    buyers = x > 0
    t_x[buyers] = active[buyers] * rng.beta(x[buyers], 1.0)
    return _summary(x, t_x, age)


def simulate_gamma_gamma(
    frequency: np.ndarray, p: float, q: float, v: float, rng: np.random.Generator
) -> np.ndarray:
    """Mean spend of ``frequency`` transactions per customer (0 where frequency is 0)."""
    x = np.asarray(frequency, dtype=np.float64)
    nu = rng.gamma(q, 1.0 / v, x.size)
    shape = np.where(x > 0, p * x, 1.0)
    mean_spend = rng.gamma(shape, 1.0 / (np.where(x > 0, x, 1.0) * nu))
    return np.where(x > 0, mean_spend, 0.0)


@pytest.fixture(scope="session")
def simulate_bg() -> Callable[..., pd.DataFrame]:
    return simulate_bg_family


@pytest.fixture(scope="session")
def simulate_pareto() -> Callable[..., pd.DataFrame]:
    return simulate_pareto_nbd


@pytest.fixture(scope="session")
def simulate_spend() -> Callable[..., np.ndarray]:
    return simulate_gamma_gamma


@pytest.fixture(scope="session")
def ages() -> Callable[[int, int], np.ndarray]:
    """Ages on a daily grid (in weeks) between 4 and 52 weeks, so identical rows occur."""

    def make(n: int, seed: int) -> np.ndarray:
        return np.random.default_rng(seed).integers(28, 365, n) / 7.0

    return make
