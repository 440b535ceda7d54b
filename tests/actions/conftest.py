"""A small simulated shop with a fitted pipeline, shared by the tests of vipml.actions."""

from __future__ import annotations

import warnings

import pytest

from vipml import VipPipeline
from vipml.data import simulate
from vipml.errors import ModelAssumptionWarning

CUTOFF = "2025-06-30"


@pytest.fixture(scope="session")
def shop():
    """2,000 customers of the latent-type mixture, two years, no events (fast)."""
    return simulate(2000, "2024-01-01", "2025-12-31", population="mixture", random_state=2)


@pytest.fixture(scope="session")
def pipeline(shop):
    config = {
        "churn": {"lgbm_params": {"num_boost_round": 30, "num_threads": 1}, "n_snapshots": 2},
        "ltv": {"n_draws": 10},
        "segments": {"n_segments": 4},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelAssumptionWarning)
        return VipPipeline(config).fit(shop.transactions, cutoff=CUTOFF)


@pytest.fixture(scope="session")
def scores(shop, pipeline):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelAssumptionWarning)
        return pipeline.score(shop.transactions, at=CUTOFF)
