from __future__ import annotations

import os

# LightGBM's and scikit-learn's OpenMP threads spin while they wait by default; on a shared
# machine (CI runners, several test processes) that starves the other threads: a CDNOW churn
# fit measured 80.8 s spinning against 2.5 s with passive waits. Set before any OpenMP runtime
# starts (this file is loaded before the tests are collected); subprocesses inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pandas as pd
import pytest
from hypothesis import settings

# CI explores the same examples on every run (reproducible results); developers' runs explore
# new ones each time.
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture
def small_log() -> pd.DataFrame:
    """Three customers over January 2024, one same-day pair of rows."""
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b", "c"],
            "timestamp": pd.to_datetime(
                [
                    "2024-01-01 09:00",
                    "2024-01-01 17:30",
                    "2024-01-10 12:00",
                    "2024-01-03 08:00",
                    "2024-01-20 20:00",
                    "2024-01-25 10:00",
                ]
            ),
            "amount": [10.0, 5.0, 20.0, 7.5, 12.5, 3.0],
        }
    )
