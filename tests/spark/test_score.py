"""score_spark: a bundle scores a Spark feature table partition by partition, as on one machine."""

from __future__ import annotations

import pandas as pd
import pytest

from vipml import VipPipeline, bundle
from vipml.data import simulate
from vipml.errors import DataValidationError
from vipml.spark import score_spark

pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::vipml.errors.ModelAssumptionWarning"),
]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    sim = simulate(300, "2024-01-01", "2025-12-31", random_state=5)
    config = {
        "churn": {"lgbm_params": {"num_boost_round": 10}},
        "ltv": {"n_draws": 10},
        "segments": {"n_segments": 3},
    }
    pipe = VipPipeline(config).fit(sim.transactions, cutoff="2025-06-30")
    folder = bundle.save(pipe, tmp_path_factory.mktemp("registry") / "score-spark-bundle")
    features = pipe.build_features(sim.transactions, at="2025-09-30")
    return pipe, folder, features


def test_scores_from_executors_equal_the_pipelines(spark, fitted):
    pipe, folder, features = fitted
    sdf = spark.createDataFrame(features.reset_index()).repartition(3)
    result = score_spark(folder, sdf)
    got = result.toPandas().set_index("customer_id").sort_index()
    expected = pipe.score_features(features).sort_index()
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(features)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_missing_feature_columns_are_named(spark, fitted):
    _, folder, features = fitted
    sdf = spark.createDataFrame(features.reset_index().drop(columns=["recency"]))
    with pytest.raises(DataValidationError, match=r"features lack column\(s\) \['recency'\]"):
        score_spark(folder, sdf)
