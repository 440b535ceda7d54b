"""Shared data of the segment tests: CDNOW and a simulated mixture shop, feature tables per cutoff.

Feature tables are what a user would build: the RFM summary (weeks) with ``clv`` (discount-free
CLV over the horizon from BG/NBD and Gamma-Gamma), ``churn_risk`` (P(no purchase in the
horizon)) and ``revenue`` (net spend up to the cutoff).
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from vipml.data import load_cdnow, simulate
from vipml.errors import DataWarning
from vipml.features import rfm_summary
from vipml.features.split import labels_after
from vipml.ltv import BetaGeo, GammaGamma
from vipml.ltv.clv import customer_lifetime_value

CDNOW_CUTOFF = "1997-09-30"
HORIZON_WEEKS = 39
CDNOW_QUARTERS = ("1997-03-31", "1997-06-30", "1997-09-30", "1997-12-31", "1998-03-31")
SIM_QUARTERS = ("2024-06-30", "2024-09-30", "2024-12-31", "2025-03-31", "2025-06-30")


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """k-means on one OpenMP thread: on a shared, loaded machine two threads spin and wait."""
    with threadpool_limits(1):
        yield


def feature_table(tx: pd.DataFrame, cutoff: str, horizon: float = HORIZON_WEEKS) -> pd.DataFrame:
    """RFM summary at ``cutoff`` with clv, churn_risk and revenue."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # CDNOW has exact duplicate rows
        rfm = rfm_summary(tx, cutoff, freq="D", time_unit="W")
    # A repeat buyer whose repeat purchases are all worth 0 has no Gamma-Gamma spend: value
    # those purchases at one cent.
    zero_spend = (rfm["frequency"] > 0) & (rfm["monetary_value"] <= 0)
    rfm.loc[zero_spend, "monetary_value"] = 0.01
    bg = BetaGeo().fit(rfm)
    gg = GammaGamma().fit(rfm)
    clv = customer_lifetime_value(bg, gg, rfm, horizon=horizon, discount_rate=0.0)
    until_cutoff = tx["timestamp"] < pd.Timestamp(cutoff) + pd.Timedelta(days=1)
    revenue = tx.loc[until_cutoff].groupby("customer_id")["amount"].sum()
    return rfm.assign(
        clv=clv,
        churn_risk=bg.probability_of_purchases(rfm, 0, horizon),
        revenue=revenue.reindex(rfm.index),
    )


@pytest.fixture(scope="session")
def cdnow() -> pd.DataFrame:
    return load_cdnow()


@pytest.fixture(scope="session")
def cdnow_features(cdnow: pd.DataFrame) -> pd.DataFrame:
    return feature_table(cdnow, CDNOW_CUTOFF)


@pytest.fixture(scope="session")
def cdnow_outcomes(cdnow: pd.DataFrame) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return labels_after(cdnow, CDNOW_CUTOFF, f"{HORIZON_WEEKS}W")


@pytest.fixture(scope="session")
def cdnow_quarters(cdnow: pd.DataFrame, cdnow_features: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {
        q: cdnow_features if q == CDNOW_CUTOFF else feature_table(cdnow, q) for q in CDNOW_QUARTERS
    }


@pytest.fixture(scope="session")
def mixture():
    """3000 customers of the four latent types, acquired in 2024's first quarter."""
    return simulate(
        3000, "2024-01-01", "2025-12-31", random_state=1, population="mixture", events=False
    )


@pytest.fixture(scope="session")
def sim_quarters(mixture) -> dict[str, pd.DataFrame]:
    return {q: feature_table(mixture.transactions, q) for q in SIM_QUARTERS}
