import numpy as np
import pandas as pd

from vipml.data import load_cdnow


def test_master_matches_the_published_size(shared_data):
    tx = load_cdnow()
    assert tx.shape == (69659, 4)
    assert tx["customer_id"].nunique() == 23570
    assert list(tx.columns) == ["customer_id", "timestamp", "amount", "quantity"]
    assert tx["timestamp"].min() == pd.Timestamp("1997-01-01")
    assert tx["timestamp"].max() == pd.Timestamp("1998-06-30")


def test_master_equals_the_source_file(shared_data):
    raw = pd.read_csv(shared_data / "CDNOW_master.txt", sep=r"\s+")
    tx = load_cdnow()
    np.testing.assert_array_equal(tx["customer_id"], raw["customer_id"])
    np.testing.assert_array_equal(tx["amount"], raw["dollar_value"])
    np.testing.assert_array_equal(tx["quantity"], raw["number_of_cds"])
    days = pd.to_datetime(raw["date"].astype(str), format="%Y%m%d")
    np.testing.assert_array_equal(tx["timestamp"].to_numpy(), days.to_numpy().astype("M8[us]"))


def test_sample_is_a_subset_of_master_by_customer():
    sample, master = load_cdnow(sample=True), load_cdnow()
    assert sample.shape == (6919, 4)
    assert sample["customer_id"].nunique() == 2357
    in_sample = master[master["customer_id"].isin(sample["customer_id"].unique())]
    pd.testing.assert_frame_equal(
        in_sample.reset_index(drop=True),
        sample.sort_values("customer_id", kind="stable").reset_index(drop=True),
    )
