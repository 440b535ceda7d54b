import gzip
import hashlib
import io
from importlib import resources

import numpy as np
import pandas as pd

from vipml.data import load_cdnow

# The source files as published in lifetimes 0.11.3 (see tests/parity/data/README.md): vipml
# ships them gzip-compressed, and inflated they must be these exact bytes.
SOURCE = {
    "CDNOW_master.txt": (
        1_950_500,
        "eff6889ed364c5199d6eacbbeb7a6d559971df4406ac876f322c373f00a072ef",
    ),
    "CDNOW_sample.txt": (
        228_327,
        "6fae10155c0b0ba363c2c386e30f77990d22328220efd862a5edd1443420d94a",
    ),
}


def _shipped(name: str) -> bytes:
    packaged = resources.files("vipml.data").joinpath("_files", f"{name}.gz")
    return gzip.decompress(packaged.read_bytes())


def test_shipped_files_are_the_source_files_byte_for_byte():
    for name, (size, sha256) in SOURCE.items():
        content = _shipped(name)
        assert len(content) == size, name
        assert hashlib.sha256(content).hexdigest() == sha256, name


def test_master_matches_the_published_size():
    tx = load_cdnow()
    assert tx.shape == (69659, 4)
    assert tx["customer_id"].nunique() == 23570
    assert list(tx.columns) == ["customer_id", "timestamp", "amount", "quantity"]
    assert tx["timestamp"].min() == pd.Timestamp("1997-01-01")
    assert tx["timestamp"].max() == pd.Timestamp("1998-06-30")


def test_master_equals_the_source_file():
    """load_cdnow returns the source file's values (parsed here independently, by header name)."""
    raw = pd.read_csv(io.BytesIO(_shipped("CDNOW_master.txt")), sep=r"\s+")
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
