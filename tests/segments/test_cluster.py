"""Segmenter: scaling, choice of k, determinism, row order, errors, profile, latent types."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

from vipml.errors import DataValidationError, NotFittedError
from vipml.segments import Segmenter, as_feature_table, segment_profile
from vipml.segments import cluster as cluster_module


def blobs(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Three well separated groups of RFM-like customers (log-normal around centres), string ids."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, n)
    noise = rng.normal(0.0, 0.15, (n, 3))
    centres = np.log(np.array([[0.5, 10.0, 25.0], [4.0, 40.0, 8.0], [15.0, 160.0, 1.5]]))
    values = np.exp(centres[group] + noise)
    ids = pd.Index([f"C{i:05d}" for i in range(n)], name="customer_id")
    return pd.DataFrame(
        {
            "frequency": values[:, 0],
            "monetary_value": values[:, 1],
            "time_since_last": values[:, 2],
            "group": group,
        },
        index=ids,
    )


FEATURES = ["frequency", "monetary_value", "time_since_last"]


def test_same_seed_same_labels_and_centres() -> None:
    table = blobs()
    first = Segmenter(features=FEATURES).fit(table)
    second = Segmenter(features=FEATURES).fit(table)
    pd.testing.assert_series_equal(first.labels_, second.labels_)
    np.testing.assert_array_equal(first.cluster_centers_, second.cluster_centers_)
    pd.testing.assert_frame_equal(first.profile_, second.profile_)


@pytest.mark.parametrize("n_segments", ["auto", 4])
def test_row_order_does_not_matter(n_segments: str | int) -> None:
    table = blobs()
    shuffled = table.sample(frac=1.0, random_state=7)
    first = Segmenter(n_segments=n_segments, features=FEATURES).fit(table)
    second = Segmenter(n_segments=n_segments, features=FEATURES).fit(shuffled)
    pd.testing.assert_series_equal(first.labels_, second.labels_.reindex(table.index))
    pd.testing.assert_series_equal(first.names_, second.names_)
    assert second.labels_.index.equals(shuffled.index)  # labels come in the caller's order


def test_well_separated_groups_are_found() -> None:
    table = blobs()
    segmenter = Segmenter(n_segments="auto", features=FEATURES).fit(table)
    assert segmenter.n_segments_ == 3
    assert adjusted_rand_score(table["group"], segmenter.labels_) > 0.9
    assert list(segmenter.k_scores_.index) == list(range(3, 9))
    assert segmenter.k_scores_.idxmax() == 3


def test_segments_numbered_by_value_and_named() -> None:
    table = blobs().assign(clv=lambda t: t["frequency"] * t["monetary_value"])
    segmenter = Segmenter(n_segments=3).fit(table)
    means = segmenter.profile_["mean_value"]
    assert means.is_monotonic_decreasing
    assert segmenter.names_[0] == "Champions"
    assert segmenter.names_.is_unique
    assert segmenter.features_ == ["frequency", "monetary_value", "time_since_last", "clv"]


def test_predict_on_training_data_gives_labels() -> None:
    table = blobs()
    segmenter = Segmenter(n_segments=4, features=FEATURES).fit(table)
    pd.testing.assert_series_equal(segmenter.predict(table), segmenter.labels_)


def test_large_inputs_start_from_the_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    table = blobs(3000)
    monkeypatch.setattr(cluster_module, "SELECTION_SAMPLE", 500)
    monkeypatch.setattr(cluster_module, "SAMPLED_START_ABOVE", 1000)
    for n_segments in (3, "auto"):
        segmenter = Segmenter(n_segments=n_segments, features=FEATURES).fit(table)
        assert segmenter.algorithm_ == "KMeans (sample start)"
        assert adjusted_rand_score(table["group"], segmenter.labels_) > 0.9
    full = Segmenter(n_segments=3, features=FEATURES).fit(blobs())
    assert full.algorithm_ == "KMeans"


def test_minibatch_on_request() -> None:
    table = blobs(2000)
    segmenter = Segmenter(n_segments=3, features=FEATURES, method="minibatch", batch_size=256)
    assert segmenter.fit(table).algorithm_ == "MiniBatchKMeans"
    assert adjusted_rand_score(table["group"], segmenter.labels_) > 0.9
    again = Segmenter(n_segments=3, features=FEATURES, method="minibatch", batch_size=256)
    pd.testing.assert_series_equal(again.fit(table).labels_, segmenter.labels_)


def test_auto_k_on_a_sample_of_large_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    table = blobs(3000)
    monkeypatch.setattr(cluster_module, "SELECTION_SAMPLE", 500)
    segmenter = Segmenter(features=FEATURES).fit(table)
    assert segmenter.n_segments_ == 3
    assert len(segmenter.labels_) == 3000


def test_scaling_logs_skewed_non_negative_columns_and_resists_outliers() -> None:
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "skewed": rng.lognormal(3.0, 1.0, 500),
            "symmetric": rng.normal(10.0, 2.0, 500),
            "negative": -rng.lognormal(0.0, 1.0, 500),
        }
    )
    scaling = Segmenter(n_segments=3).fit(table).scaling_
    assert scaling["log"].to_dict() == {"skewed": True, "symmetric": False, "negative": False}
    # median and IQR (after the log): the scaled columns have median 0 and IQR 1
    scaled = Segmenter(n_segments=3).fit(table).transform_features(table)
    np.testing.assert_allclose(np.median(scaled, axis=0), 0.0, atol=1e-12)
    q25, q75 = np.percentile(scaled, [25, 75], axis=0)
    np.testing.assert_allclose(q75 - q25, 1.0)
    # one enormous value moves neither the centre nor the scale much
    outlier = table.copy()
    outlier.loc[0, "skewed"] = 1e9
    moved = Segmenter(n_segments=3).fit(outlier).scaling_
    np.testing.assert_allclose(
        moved[["center", "scale"]].to_numpy(dtype=float),
        scaling[["center", "scale"]].to_numpy(dtype=float),
        rtol=0.02,
    )


def test_centres_are_in_feature_units() -> None:
    table = blobs()
    segmenter = Segmenter(n_segments=3, features=FEATURES).fit(table)
    top = segmenter.centers_.loc[0]
    assert 5 < top["frequency"] < 20 and top["monetary_value"] > 50


def test_profile_shares_and_means() -> None:
    table = blobs().assign(revenue=lambda t: t["frequency"] * t["monetary_value"] + 10.0)
    segmenter = Segmenter(n_segments=3, features=FEATURES).fit(table)
    profile = segmenter.profile_
    assert profile["n_customers"].sum() == len(table)
    assert profile["customer_share"].sum() == pytest.approx(1.0)
    assert profile["revenue_share"].sum() == pytest.approx(1.0)
    expected = table.groupby(segmenter.labels_)["revenue"].sum() / table["revenue"].sum()
    np.testing.assert_allclose(profile["revenue_share"], expected)
    np.testing.assert_allclose(
        profile["frequency"], table.groupby(segmenter.labels_)["frequency"].mean()
    )
    assert profile.columns[0] == "name" and profile.columns[-1] == "action"
    assert (profile["action"] != "").all()


def test_cdnow_profile(cdnow_features: pd.DataFrame) -> None:
    segmenter = Segmenter().fit(cdnow_features)
    profile = segmenter.profile_
    assert segmenter.n_segments_ == 3  # the simplified silhouette prefers 3 on CDNOW
    assert profile.loc[0, "name"] == "Champions"
    # The top eighth of customers brought 45% of the revenue and carries 63% of the value.
    assert profile.loc[0, "customer_share"] < 0.15
    assert profile.loc[0, "revenue_share"] > 0.4 and profile.loc[0, "value_share"] > 0.6
    assert profile["churn_risk"].is_monotonic_increasing
    # the one-time buyers, most of the base, form the bottom segment
    one_timers = cdnow_features["frequency"] == 0
    assert (segmenter.labels_[one_timers] == 2).mean() > 0.95


def test_polars_input() -> None:
    pl = pytest.importorskip("polars")
    table = blobs()
    frame = pl.from_pandas(table.reset_index())
    from_polars = Segmenter(n_segments=3, features=FEATURES).fit(frame)
    from_pandas = Segmenter(n_segments=3, features=FEATURES).fit(table)
    pd.testing.assert_series_equal(from_polars.labels_, from_pandas.labels_)


def test_time_since_last_is_derived_from_rfm() -> None:
    rfm = pd.DataFrame({"frequency": [0.0, 3.0], "recency": [0.0, 20.0], "T": [30.0, 26.0]})
    table = as_feature_table(rfm)
    assert table["time_since_last"].tolist() == [30.0, 6.0]
    assert "time_since_last" not in rfm  # the caller's frame is not modified


@pytest.mark.parametrize(
    ("n", "n_segments", "message"),
    [
        (5, 3, "5 customers are too few for n_segments=3"),
        (5, "auto", "the smallest k \\(3\\) needs at least 6 customers"),
    ],
)
def test_too_few_customers(n: int, n_segments: str | int, message: str) -> None:
    table = blobs(n)
    with pytest.raises(DataValidationError, match=message):
        Segmenter(n_segments=n_segments, features=FEATURES).fit(table)


def test_fewer_distinct_customers_than_segments() -> None:
    table = pd.DataFrame({"frequency": [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]})
    with (
        pytest.warns(Warning),  # scikit-learn's ConvergenceWarning comes first
        pytest.raises(DataValidationError, match="Only 2 distinct feature rows"),
    ):
        Segmenter(n_segments=3).fit(table)


def test_auto_range_shrinks_to_the_customers() -> None:
    segmenter = Segmenter(features=FEATURES).fit(blobs(9))
    assert list(segmenter.k_scores_.index) == [3, 4]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            pd.DataFrame({"frequency": [1.0, np.nan] * 4}),
            "column 'frequency' has 4 missing or infinite",
        ),
        (pd.DataFrame({"frequency": ["a", "b"] * 4}), "not numeric"),
        (
            pd.DataFrame({"frequency": [1.0] * 8}, index=pd.Index([1, 1, 2, 3, 4, 5, 6, 7])),
            "1 repeated customer id",
        ),
    ],
)
def test_bad_tables(table: pd.DataFrame, message: str) -> None:
    with pytest.raises(DataValidationError, match=message):
        Segmenter(n_segments=2, features=["frequency"]).fit(table)


def test_missing_feature_and_negative_log_feature_at_predict() -> None:
    segmenter = Segmenter(n_segments=3, features=FEATURES).fit(blobs())
    with pytest.raises(DataValidationError, match="lacks the feature column"):
        segmenter.predict(blobs().drop(columns="frequency"))
    skewed = pd.DataFrame({"spend": np.random.default_rng(0).lognormal(3.0, 1.0, 50)})
    fitted = Segmenter(n_segments=3).fit(skewed)
    with pytest.raises(DataValidationError, match="column 'spend' has negative values"):
        fitted.predict(skewed.assign(spend=-1.0))


@pytest.mark.parametrize(
    "params",
    [
        {"n_segments": 1},
        {"n_segments": "many"},
        {"k_range": (1, 4)},
        {"k_range": (5, 4)},
        {"method": "dbscan"},
        {"batch_size": 0},
    ],
)
def test_bad_parameters(params: dict) -> None:
    with pytest.raises(ValueError):
        Segmenter(**params).fit(blobs())


def test_not_fitted_pickle_and_clone() -> None:
    with pytest.raises(NotFittedError, match="Segmenter"):
        Segmenter().predict(blobs())
    segmenter = Segmenter(n_segments=3, features=FEATURES).fit(blobs())
    restored = pickle.loads(pickle.dumps(segmenter))
    pd.testing.assert_series_equal(restored.predict(blobs()), segmenter.labels_)
    assert clone(segmenter).get_params() == segmenter.get_params()


def test_rename_keeps_profile_in_step() -> None:
    segmenter = Segmenter(n_segments=3, features=FEATURES).fit(blobs())
    segmenter.rename({2: "Sleepers"})
    assert segmenter.names_[2] == "Sleepers" and segmenter.profile_.loc[2, "name"] == "Sleepers"
    assert segmenter.profile_.loc[2, "action"] == ""
    with pytest.raises(DataValidationError, match="same name"):
        segmenter.rename({1: "Sleepers"})


def test_segment_profile_function() -> None:
    table = pd.DataFrame({"clv": [10.0, 30.0, 60.0], "churn_risk": [0.1, 0.3, 0.8]})
    profile = segment_profile(table, [0, 0, 1])
    assert profile["value_share"].tolist() == [0.4, 0.6]
    assert profile["churn_risk"].tolist() == pytest.approx([0.2, 0.8])


def test_latent_types_are_recovered(mixture, sim_quarters: dict[str, pd.DataFrame]) -> None:
    """Simulated shop of four latent types (vip, regular, bargain, one-time), at 2024-12-31."""
    features = sim_quarters["2024-12-31"]
    truth = mixture.truth["latent_type"].reindex(features.index)
    # The types differ in purchase rate and spend: clustering those recovers them well.
    by_rate_and_spend = Segmenter(features=["frequency", "monetary_value"]).fit(features)
    assert by_rate_and_spend.n_segments_ == 4
    assert adjusted_rand_score(truth, by_rate_and_spend.labels_) > 0.45
    # The default features add recency and value, so segments follow behaviour states more
    # than types, yet still far above chance.
    default = Segmenter(n_segments=4).fit(features)
    ari = adjusted_rand_score(truth, default.labels_)
    chance = [
        adjusted_rand_score(truth.sample(frac=1.0, random_state=s).to_numpy(), default.labels_)
        for s in range(5)
    ]
    assert ari > 0.2
    assert max(abs(c) for c in chance) < 0.01
    # VIPs land in the top segment
    vip = truth == "vip"
    assert (default.labels_[vip] == 0).mean() > 0.5


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(min_value=8, max_value=60),
    k=st.integers(min_value=2, max_value=4),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_labels_cover_segments_and_ignore_row_order(n: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {"frequency": rng.poisson(2.0, n).astype(float), "monetary_value": rng.gamma(2.0, 10, n)},
        index=pd.Index(rng.permutation(n) + 100, name="customer_id"),
    )
    segmenter = Segmenter(n_segments=k).fit(table)
    assert set(segmenter.labels_) == set(range(k))
    assert segmenter.names_.is_unique
    shuffled = Segmenter(n_segments=k).fit(table.iloc[rng.permutation(n)])
    pd.testing.assert_series_equal(shuffled.labels_.reindex(table.index), segmenter.labels_)
