"""Shared fitted models for the churn tests: small seeded shops and CDNOW, fitted once."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from vipml.churn import ChurnModel, evaluate
from vipml.data import load_cdnow, simulate
from vipml.errors import DataWarning

# pytest runs with --doctest-modules: collecting this file as a doctest module would import it a
# second time under the name "conftest", which clashes with the other folders' conftest.py files.
collect_ignore = ["conftest.py"]

SIM_CUTOFF = "2025-06-30"
CDNOW_CUTOFF = "1997-09-30"


@pytest.fixture(scope="session")
def shop():
    """4,000 simulated customers over 2024-2025, with engagement events."""
    return simulate(4000, "2024-01-01", "2025-12-31", random_state=0)


@pytest.fixture(scope="session")
def small_shop():
    """1,500 simulated customers: for determinism and leakage checks."""
    return simulate(1500, "2024-01-01", "2025-12-31", random_state=1)


@pytest.fixture(scope="session")
def small_model(small_shop):
    return ChurnModel(horizon="13W", lgbm_params={"num_boost_round": 40}).fit(
        small_shop.transactions, small_shop.events, cutoff=SIM_CUTOFF
    )


@pytest.fixture(scope="session")
def shop_tables(shop):
    """Evaluate tables of the shop's model with and without the engagement features."""
    tables = {}
    for engagement in (True, False):
        model = ChurnModel(
            horizon="13W", engagement=engagement, lgbm_params={"num_boost_round": 300}
        ).fit(shop.transactions, shop.events, cutoff=SIM_CUTOFF)
        tables[engagement] = evaluate(model, shop.transactions, shop.events)
    return tables


@pytest.fixture(scope="session")
def cdnow() -> pd.DataFrame:
    return load_cdnow()


@pytest.fixture(scope="session")
def cdnow_model(cdnow):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # CDNOW holds 255 duplicate rows
        return ChurnModel(horizon="39W").fit(cdnow, cutoff=CDNOW_CUTOFF)


@pytest.fixture(scope="session")
def cdnow_table(cdnow, cdnow_model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return evaluate(
            cdnow_model,
            cdnow,
            baselines=("recency", "log_rfm", "bgnbd", "pareto_nbd", "bgnbd_p_alive"),
        )
