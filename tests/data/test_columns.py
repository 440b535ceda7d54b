import pandas as pd
import pytest

from vipml.data import Columns
from vipml.features import rfm_summary


def test_defaults_are_the_standard_names():
    cols = Columns()
    assert (cols.customer_id, cols.timestamp, cols.amount) == ("customer_id", "timestamp", "amount")


@pytest.mark.parametrize("bad", ["", None, 3])
def test_rejects_non_names(bad):
    with pytest.raises(TypeError, match="customer_id"):
        Columns(customer_id=bad)


def test_mapping_reads_the_callers_columns_without_renaming_them(small_log):
    theirs = small_log.rename(columns={"customer_id": "user", "timestamp": "at", "amount": "usd"})
    before = theirs.copy(deep=True)
    mapped = rfm_summary(
        theirs, "2024-01-31", columns=Columns(customer_id="user", timestamp="at", amount="usd")
    )
    pd.testing.assert_frame_equal(theirs, before)
    pd.testing.assert_frame_equal(mapped, rfm_summary(small_log, "2024-01-31"))
