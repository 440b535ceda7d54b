"""Naming: distinct names from profiles, overridable vocabulary and actions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vipml.errors import DataValidationError
from vipml.segments import (
    DEFAULT_VOCABULARY,
    Segmenter,
    SegmentName,
    name_segments,
    naming_axes,
    with_actions,
)
from vipml.segments.naming import AXES


def ideal_axes(entries) -> pd.DataFrame:
    """Segments placed exactly at the entries' ideals (0.5 on axes an entry leaves out)."""
    return pd.DataFrame(
        [[e.profile.get(axis, 0.5) for axis in AXES] for e in entries], columns=list(AXES)
    )


def test_segments_at_an_ideal_get_that_name() -> None:
    names = name_segments(ideal_axes(DEFAULT_VOCABULARY))
    assert names.tolist() == [e.name for e in DEFAULT_VOCABULARY]


def test_vocabulary_has_the_marketing_names_and_actions() -> None:
    names = {e.name for e in DEFAULT_VOCABULARY}
    assert {
        "Champions",
        "Loyal",
        "Big spenders",
        "New",
        "Promising",
        "At risk",
        "Can't lose them",
        "Hibernating",
        "Lost",
    } <= names
    assert all(e.action for e in DEFAULT_VOCABULARY)
    assert all(set(e.profile) <= set(AXES) for e in DEFAULT_VOCABULARY)


def test_relative_names() -> None:
    axes = pd.DataFrame(
        {
            "recency": [0.95, 0.9, 0.2, 0.1],
            "frequency": [0.95, 0.4, 0.8, 0.3],
            "monetary": [0.9, 0.4, 0.85, 0.3],
            "tenure": [0.6, 0.1, 0.6, 0.6],
        }
    )
    assert name_segments(axes).tolist() == ["Champions", "New", "Can't lose them", "Lost"]


def test_fixed_names_are_kept_and_not_reused() -> None:
    axes = ideal_axes(DEFAULT_VOCABULARY[:3])
    names = name_segments(axes, fixed={0: "Lost"})
    assert names[0] == "Lost"
    assert "Lost" not in names[1:].tolist()
    assert names.is_unique


def test_more_segments_than_names_get_suffixes() -> None:
    vocabulary = (
        SegmentName("High", {"value": 1.0}, "Keep."),
        SegmentName("Low", {"value": 0.0}, "Drop."),
    )
    axes = pd.DataFrame({"value": [0.9, 0.8, 0.1, 0.2]})
    names = name_segments(axes, vocabulary)
    assert sorted(names) == ["High", "High (2)", "Low", "Low (2)"]
    assert names[0] in ("High", "High (2)") and names[2] in ("Low", "Low (2)")


def test_no_usable_axis_gives_generic_names() -> None:
    axes = pd.DataFrame(index=[0, 1, 2])
    assert name_segments(axes).tolist() == ["Segment 1", "Segment 2", "Segment 3"]


def test_custom_vocabulary_and_actions_flow_into_the_profile() -> None:
    vocabulary = (
        SegmentName("Whales", {"monetary": 1.0, "frequency": 1.0}, "Call them."),
        SegmentName("Minnows", {"monetary": 0.0, "frequency": 0.0}, "Automate."),
    )
    table = pd.DataFrame(
        {"frequency": [0.0, 0.0, 1.0, 9.0, 8.0, 10.0], "monetary_value": [0, 0, 5, 90, 80, 99.0]}
    )
    segmenter = Segmenter(n_segments=2, vocabulary=vocabulary).fit(table)
    assert segmenter.profile_["name"].tolist() == ["Whales", "Minnows"]
    assert segmenter.profile_["action"].tolist() == ["Call them.", "Automate."]
    replaced = with_actions({"Whales": "Invite to the VIP event."}, vocabulary)
    again = Segmenter(n_segments=2, vocabulary=replaced).fit(table)
    assert again.profile_.loc[0, "action"] == "Invite to the VIP event."


@pytest.mark.parametrize(
    ("vocabulary", "message"),
    [
        ((), "empty"),
        ((SegmentName("A", {"value": 1.0}), SegmentName("A", {"value": 0.0})), "repeats"),
        ((SegmentName("A", {"value": 2.0}),), "outside"),
        ((SegmentName("A", {"loyalty": 0.5}),), "unknown axes"),
    ],
)
def test_bad_vocabularies(vocabulary, message: str) -> None:
    with pytest.raises(DataValidationError, match=message):
        name_segments(pd.DataFrame({"value": [0.1, 0.9]}), vocabulary)


def test_with_actions_refuses_unknown_names() -> None:
    with pytest.raises(DataValidationError, match="Whales"):
        with_actions({"Whales": "x"})


def test_naming_axes_are_mean_percentiles() -> None:
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "frequency": rng.poisson(1.0, 500).astype(float),
            "recency": rng.uniform(0, 10, 500),
            "T": rng.uniform(10, 40, 500),
            "monetary_value": rng.gamma(2.0, 10.0, 500),
            "clv": rng.gamma(1.0, 30.0, 500),
        }
    )
    labels = rng.integers(0, 4, 500)
    axes = naming_axes(table, labels, value="clv")
    assert list(axes.columns) == list(AXES)
    sizes = np.bincount(labels)
    # the population's mean percentile is exactly 0.5 on every axis, ties included
    np.testing.assert_allclose(axes.mul(sizes, axis=0).sum() / sizes.sum(), 0.5)
    assert ((axes >= 0) & (axes <= 1)).all().all()


def test_cdnow_names_follow_behaviour(cdnow_features: pd.DataFrame) -> None:
    segmenter = Segmenter(n_segments=5).fit(cdnow_features)
    profile = segmenter.profile_.set_index("name")
    assert profile.index[0] == "Champions"
    # the recently active, frequent buyers are named above those who lapsed
    assert profile.loc["Champions", "time_since_last"] < profile.loc["At risk", "time_since_last"]
    assert profile.loc["Lost", "frequency"] == 0.0


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(*(st.floats(0.0, 1.0) for _ in AXES)),
        min_size=1,
        max_size=14,
    )
)
def test_names_always_distinct(rows) -> None:
    axes = pd.DataFrame(rows, columns=list(AXES))
    names = name_segments(axes)
    assert names.is_unique and names.notna().all()
    trimmed = [dataclasses.replace(e, profile=dict(e.profile)) for e in DEFAULT_VOCABULARY[:4]]
    assert name_segments(axes, trimmed).is_unique
