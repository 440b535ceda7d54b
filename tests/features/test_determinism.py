"""Feature builders give the same table bit for bit in every run, on pandas and DuckDB input.

Multi-threaded engines (polars, DuckDB) add the rows of a group in an order that varies from
run to run, so a float sum or mean over rows can differ in its last bits between runs. The
builders sum money and event values as exact integers (micro-units) and gap statistics from
exact integer sums; these tests run each builder three times on a log large enough for the
engines to split groups across threads, and require identical bits.
"""

import duckdb
import numpy as np
import pandas as pd
import pytest

from vipml.features import calibration_holdout, rfm_summary
from vipml.features.cycle import purchase_cycle_features
from vipml.features.engagement import engagement_features
from vipml.features.split import labels_after, training_snapshots

pytestmark = pytest.mark.filterwarnings("ignore:.*exact duplicate row:vipml.errors.DataWarning")
N_ROWS = 300_000
N_CUSTOMERS = 1_000
RUNS = 3
START = np.datetime64("2023-01-01T00:00:00", "s")
TWO_YEARS = 2 * 365 * 86400


def _customers(rng):
    return np.char.add("C", rng.integers(0, N_CUSTOMERS, N_ROWS).astype(str))


def _timestamps(rng):
    return (START + rng.integers(0, TWO_YEARS, N_ROWS)).astype("datetime64[us]")


@pytest.fixture(scope="module")
def logs():
    """Unrounded amounts (5% returns, half the rows in orders) and unrounded event values."""
    rng = np.random.default_rng(20240601)
    customers = _customers(rng)
    orders = rng.integers(0, 40, N_ROWS)
    transactions = pd.DataFrame(
        {
            "customer_id": customers,
            "timestamp": _timestamps(rng),
            "amount": rng.gamma(2.0, 20.0, N_ROWS) * np.where(rng.random(N_ROWS) < 0.05, -1, 1),
            "order_id": pd.Series(np.char.add(customers, orders.astype(str))).where(orders < 20),
        }
    )
    events = pd.DataFrame(
        {
            "customer_id": _customers(rng),
            "timestamp": _timestamps(rng),
            "event_type": rng.choice(["visit", "email_open", "support"], N_ROWS),
            "channel": rng.choice(["web", "app", "email"], N_ROWS),
            "value": np.where(rng.random(N_ROWS) < 0.2, np.nan, rng.normal(0.0, 1.0, N_ROWS)),
        }
    )
    return transactions, events


BUILDERS = {
    "rfm_summary": lambda tx, ev: rfm_summary(tx, "2024-06-30", check_duplicates=False),
    "calibration_holdout": lambda tx, ev: calibration_holdout(tx, "2024-03-31", "2024-12-31"),
    "purchase_cycle_features": lambda tx, ev: purchase_cycle_features(tx, "2024-06-30"),
    "engagement_features": lambda tx, ev: engagement_features(ev, "2024-06-30"),
    "labels_after": lambda tx, ev: labels_after(tx, "2024-06-30", "13W"),
    "training_snapshots": lambda tx, ev: training_snapshots(
        tx, ev, cutoffs=["2024-03-31", "2024-06-30"], horizon="13W"
    ),
}


def _as_pandas(result):
    if isinstance(result, pd.DataFrame):
        return result
    frame = result.df()  # a DuckDB relation: rows in no fixed order
    keys = [key for key in ("cutoff", "customer_id") if key in frame.columns]
    return frame.sort_values(keys).reset_index(drop=True)


def assert_same_bits(result, expected):
    pd.testing.assert_frame_equal(result, expected, check_exact=True)
    for column in expected.columns:
        if expected[column].dtype == "float64":
            assert np.array_equal(
                result[column].to_numpy().view("uint64"),
                expected[column].to_numpy().view("uint64"),
            ), f"{column} differs in its bits between runs"


@pytest.mark.parametrize("kind", ["pandas", "duckdb"])
@pytest.mark.parametrize("builder", list(BUILDERS))
def test_the_same_log_gives_the_same_bits_in_every_run(logs, builder, kind):
    transactions, events = logs
    if kind == "duckdb":
        connection = duckdb.connect()
        transactions, events = connection.from_df(transactions), connection.from_df(events)
    build = BUILDERS[builder]
    runs = [_as_pandas(build(transactions, events)) for _ in range(RUNS)]
    assert len(runs[0]) > 0.9 * N_CUSTOMERS * (2 if builder == "training_snapshots" else 1)
    for run in runs[1:]:
        assert_same_bits(run, runs[0])
