"""One local Spark session for the whole test run, and the logs the Spark tests compare on."""

from __future__ import annotations

import pandas as pd
import pytest

from vipml.data import load_cdnow, simulate
from vipml.spark import local_session


@pytest.fixture(scope="session")
def spark():
    """A ``local[2]`` session in UTC with two shuffle partitions (small data, fast stages)."""
    session = local_session(cores=2, shuffle_partitions=2)
    session.sparkContext.setLogLevel("ERROR")
    return session


@pytest.fixture(scope="session")
def cdnow() -> pd.DataFrame:
    return load_cdnow()


@pytest.fixture(scope="session")
def shop():
    """A small simulated shop with orders, returns, channels, categories and events."""
    return simulate(150, "2022-01-01", "2023-06-30", random_state=7)


def to_spark(spark, frame: pd.DataFrame):
    """A Spark DataFrame of a pandas frame (``timestamp`` becomes a UTC ``TIMESTAMP``)."""
    return spark.createDataFrame(frame)


def spark_to_pandas(sdf, index=("customer_id",)) -> pd.DataFrame:
    """A Spark result as pandas, indexed and sorted like the pandas path's result."""
    return sdf.toPandas().set_index(list(index)).sort_index()


@pytest.fixture(scope="session")
def shop_log(shop) -> pd.DataFrame:
    """The shop's transactions plus returns: half an order back two days later, some loose."""
    tx = shop.transactions
    returned = tx.iloc[::12].copy()
    returned["timestamp"] = returned["timestamp"] + pd.Timedelta(days=2)
    returned["amount"] = -(returned["amount"] / 2).round(2)
    returned.loc[returned.index[::3], "order_id"] = None
    return pd.concat([tx, returned], ignore_index=True)
