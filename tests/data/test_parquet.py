"""Features straight from Parquet files (DuckDB, under a memory limit) equal the pandas path."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from vipml.data import Columns, simulate
from vipml.data.parquet import is_parquet_source, parquet_connection, scan_parquet
from vipml.errors import DataValidationError
from vipml.features import (
    calibration_holdout,
    engagement_features,
    labels_after,
    purchase_cycle_features,
    rfm_summary,
    training_snapshots,
    transaction_mix_features,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*exact duplicate row:vipml.errors.DataWarning")


@pytest.fixture(scope="module")
def shop():
    """A simulated shop's logs with returns added, and the same logs as Parquet parts."""
    sim = simulate(200, "2022-01-01", "2023-06-30", random_state=3)
    tx = sim.transactions
    returned = tx.iloc[::10].assign(
        timestamp=lambda f: f["timestamp"] + pd.Timedelta(days=3),
        amount=lambda f: -(f["amount"] / 2).round(2),
    )
    tx = pd.concat([tx, returned], ignore_index=True)
    return tx, sim.events


@pytest.fixture(scope="module")
def parquet_logs(shop, tmp_path_factory):
    tx, events = shop
    folder = tmp_path_factory.mktemp("logs")
    for part, rows in enumerate(np.array_split(np.arange(len(tx)), 3)):
        tx.iloc[rows].to_parquet(folder / f"tx-{part}.parquet")
    events.to_parquet(folder / "events.parquet")
    return folder


BUILDERS = {
    "rfm_summary": lambda tx, ev: rfm_summary(tx, "2023-03-31", freq="W", time_unit="W"),
    "purchase_cycle_features": lambda tx, ev: purchase_cycle_features(tx, "2023-03-31"),
    "transaction_mix_features": lambda tx, ev: transaction_mix_features(tx, "2023-03-31"),
    "engagement_features": lambda tx, ev: engagement_features(ev, "2023-03-31"),
    "calibration_holdout": lambda tx, ev: calibration_holdout(tx, "2022-12-31", "2023-06-30"),
    "labels_after": lambda tx, ev: labels_after(tx, "2023-01-31", "13W"),
    "training_snapshots": lambda tx, ev: training_snapshots(
        tx, ev, cutoffs=["2022-12-31", "2023-02-28"], horizon="8W"
    ),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_a_parquet_glob_gives_the_pandas_result(name, shop, parquet_logs):
    expected = BUILDERS[name](*shop)
    got = BUILDERS[name](str(parquet_logs / "tx-*.parquet"), parquet_logs / "events.parquet")
    assert isinstance(got, pd.DataFrame)
    pd.testing.assert_frame_equal(got, expected)


def test_paths_lists_and_globs_read_the_same_files(shop, parquet_logs):
    expected = rfm_summary(shop[0], "2023-03-31")
    parts = sorted(parquet_logs.glob("tx-*.parquet"))
    assert len(parts) == 3
    pd.testing.assert_frame_equal(rfm_summary(parts, "2023-03-31"), expected)
    pd.testing.assert_frame_equal(rfm_summary([str(p) for p in parts], "2023-03-31"), expected)
    # one file alone is a smaller log, read through a pathlib.Path
    alone = rfm_summary(parts[0], "2023-03-31")
    assert set(alone.index) <= set(expected.index)


def test_a_scanned_relation_stays_lazy_under_its_memory_limit(shop, parquet_logs):
    log = scan_parquet(parquet_logs / "tx-*.parquet", memory_limit="256MB", threads=1)
    result = rfm_summary(log, "2023-03-31")
    assert isinstance(result, duckdb.DuckDBPyRelation)
    got = result.df().set_index("customer_id").sort_index()
    pd.testing.assert_frame_equal(got, rfm_summary(shop[0], "2023-03-31"))
    settings = parquet_connection("256MB", 1).sql(
        "SELECT current_setting('memory_limit'), current_setting('threads')"
    )
    limit, threads = settings.fetchall()[0]
    assert limit.endswith("MiB") and float(limit.split()[0]) <= 256
    assert threads == 1


def test_missing_files_and_bad_settings_are_explained(tmp_path):
    with pytest.raises(DataValidationError, match="Could not read Parquet .*nothing-here"):
        rfm_summary(str(tmp_path / "nothing-here-*.parquet"), "2023-03-31")
    (tmp_path / "not.parquet").write_text("customer_id,timestamp,amount\n")
    with pytest.raises(DataValidationError, match="Could not read Parquet"):
        rfm_summary(tmp_path / "not.parquet", "2023-03-31")
    with pytest.raises(ValueError, match="memory_limit='lots'"):
        scan_parquet(tmp_path / "x.parquet", memory_limit="lots")
    with pytest.raises(DataValidationError, match="Parquet path"):
        scan_parquet(42)


def test_parquet_columns_are_checked_like_frames(tmp_path):
    log = pd.DataFrame(
        {
            "user": ["a", None],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "amount": [1.0, 2.0],
        }
    )
    log.to_parquet(tmp_path / "log.parquet")
    with pytest.raises(DataValidationError, match="missing required column"):
        rfm_summary(tmp_path / "log.parquet", "2024-01-31")
    with pytest.raises(DataValidationError, match=r"'user' .* 1 row\(s\) with null"):
        rfm_summary(tmp_path / "log.parquet", "2024-01-31", columns=Columns(customer_id="user"))


def test_is_parquet_source_tells_paths_from_frames():
    assert is_parquet_source(Path("a.parquet"))
    assert is_parquet_source(["a.parquet", Path("b.parquet")])
    assert not is_parquet_source(pd.DataFrame({"a": [1]}))
    assert not is_parquet_source(["a.parquet", 3])
