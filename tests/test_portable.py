"""The pickle-free JSON codec of fitted objects."""

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vipml._portable import from_document, to_document
from vipml.churn.calibration import IsotonicCalibrator
from vipml.errors import BundleError


def roundtrip(value):
    boosters = {}
    text = json.dumps(to_document(value, boosters))
    return from_document(json.loads(text), boosters)


@given(arrays(np.float64, st.integers(0, 30)))
def test_float_arrays_roundtrip_bit_for_bit(values):
    again = roundtrip(values)
    assert again.dtype == values.dtype
    assert again.tobytes() == values.tobytes()


def test_containers_times_and_frames_roundtrip():
    frame = pd.DataFrame(
        {"log": [True, False], "center": [0.5, np.nan], "name": ["a", "b"]},
        index=pd.Index(["frequency", "clv"], name="feature"),
    )
    value = {
        "tuple": (1, 2.5, "x"),
        7: [None, True],
        "stamp": pd.Timestamp("2025-06-30 12:00"),
        "span": dt.timedelta(days=91, microseconds=3),
        "pd_span": pd.Timedelta(hours=5),
        "scalar": np.float64(0.1),
        "series": pd.Series([3, 1], index=[0, 1], name="n"),
        "frame": frame,
    }
    again = roundtrip(value)
    assert again["tuple"] == (1, 2.5, "x") and again[7] == [None, True]
    assert again["stamp"] == value["stamp"] and again["span"] == value["span"]
    assert again["pd_span"] == value["pd_span"]
    assert type(again["scalar"]) is np.float64 and again["scalar"] == 0.1
    pd.testing.assert_series_equal(again["series"], value["series"])
    pd.testing.assert_frame_equal(again["frame"], frame)


def test_a_fitted_calibrator_predicts_identically():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=500)
    labels = rng.random(500) < 1 / (1 + np.exp(-scores))
    calibrator = IsotonicCalibrator().fit(scores, labels)
    again = roundtrip(calibrator)
    grid = np.linspace(-4, 4, 101)
    assert np.array_equal(again.predict(grid), calibrator.predict(grid))


def test_documents_cannot_name_arbitrary_classes():
    for name in ("os:system", "subprocess:Popen", "builtins:eval", "vipml.data:Columns.x"):
        with pytest.raises(BundleError, match="does not rebuild|not a class|does not exist"):
            from_document({"__type__": "object", "class": name, "state": {}}, {})
    with pytest.raises(BundleError, match="Unknown entry"):
        from_document({"__type__": "pickle", "data": ""}, {})


def test_customer_level_frames_and_foreign_objects_are_refused():
    big = pd.Series(np.zeros(5000), index=pd.RangeIndex(5000, name="customer_id"))
    with pytest.raises(BundleError, match="no customer-level rows"):
        to_document({"labels_": big}, {})
    with pytest.raises(BundleError, match="cannot be stored without pickle"):
        to_document({"f": open}, {})
