"""BG/NBD and Gamma-Gamma fitted from Spark summaries: the pandas fit, from distinct rows only."""

from __future__ import annotations

import numpy as np
import pytest

from vipml.errors import DataValidationError
from vipml.features import rfm_summary
from vipml.ltv import BetaGeo, GammaGamma

from .conftest import to_spark

pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore:.*exact duplicate row:vipml.errors.DataWarning"),
]

CUTOFF = "1997-09-30"


@pytest.fixture
def collected(monkeypatch, spark):
    """Spy on every way a Spark DataFrame reaches the driver; record the rows of each."""
    sizes: list[int] = []
    cls = type(spark.range(1))
    for method in ("toPandas", "toArrow", "collect", "take", "tail"):
        original = getattr(cls, method)

        def spy(self, *args, _original=original, **kwargs):
            result = _original(self, *args, **kwargs)
            sizes.append(result.num_rows if hasattr(result, "num_rows") else len(result))
            return result

        monkeypatch.setattr(cls, method, spy)
    return sizes


def _same_fit(a, b):
    assert a.params_ == b.params_
    assert a.loglik_ == b.loglik_
    assert a.n_customers_ == b.n_customers_
    np.testing.assert_array_equal(a.covariance_, b.covariance_)


def test_fits_from_spark_equal_the_pandas_fits_and_collect_only_histories(spark, cdnow, collected):
    expected_rfm = rfm_summary(cdnow, CUTOFF, time_unit="W")
    expected_bg = BetaGeo().fit(expected_rfm)
    spending = expected_rfm[(expected_rfm["frequency"] == 0) | (expected_rfm["monetary_value"] > 0)]
    expected_gg = GammaGamma().fit(spending)

    log = to_spark(spark, cdnow)
    collected.clear()
    rfm = rfm_summary(log, CUTOFF, time_unit="W")
    bg = BetaGeo().fit(rfm)
    gg = GammaGamma().fit(rfm.filter("frequency = 0 OR monetary_value > 0"))
    _same_fit(bg, expected_bg)
    _same_fit(gg, expected_gg)

    n_histories = len(expected_rfm.groupby(["frequency", "recency", "T"]))
    n_spend = len(spending.groupby(["frequency", "monetary_value"]))
    assert collected, "the spy saw nothing: the fit did not go through Spark"
    # Only one-row check results, the distinct (frequency, recency, T) rows and the distinct
    # (frequency, monetary_value) rows ever reach the driver: never the 69,659 transactions,
    # never the 23,570 customers.
    assert max(collected) == max(n_histories, n_spend)
    assert sorted(collected)[-2:] == sorted([n_histories, n_spend])
    assert sum(collected) < len(cdnow) / 2
    assert n_histories < len(expected_rfm) / 2


def test_weights_with_a_spark_frame_are_refused(spark, cdnow):
    rfm = rfm_summary(to_spark(spark, cdnow.head(500)), CUTOFF)
    with pytest.raises(ValueError, match="weights cannot be given with a lazy frame"):
        BetaGeo().fit(rfm, weights=np.ones(10))


def test_bad_spark_summaries_name_the_column(spark, cdnow):
    rfm = rfm_summary(to_spark(spark, cdnow.head(2000)), CUTOFF, time_unit="W")
    with pytest.raises(DataValidationError, match="lacks the column"):
        BetaGeo().fit(rfm.drop("T"))
    broken = rfm.withColumn("recency", rfm["T"] + 1)
    with pytest.raises(DataValidationError, match="recency > T"):
        BetaGeo().fit(broken)
