from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from vipml.churn.calibration import IsotonicCalibrator, SigmoidCalibrator
from vipml.errors import ConvergenceError, DataValidationError


@pytest.fixture(scope="module")
def scored():
    rng = np.random.default_rng(0)
    score = rng.normal(size=20_000)
    offset = rng.normal(size=score.size)
    y = rng.random(score.size) < expit(offset + 2.0 * score - 1.0)
    return score, offset, y


def test_sigmoid_recovers_slope_and_intercept_with_an_offset(scored):
    score, offset, y = scored
    cal = SigmoidCalibrator().fit(score, y, offset=offset)
    assert cal.slope_ == pytest.approx(2.0, abs=0.1)
    assert cal.intercept_ == pytest.approx(-1.0, abs=0.1)
    p = cal.predict(score, offset=offset)
    assert np.allclose(p, expit(offset + cal.slope_ * score + cal.intercept_))


def test_sigmoid_is_deterministic_and_monotone(scored):
    score, _, y = scored
    a = SigmoidCalibrator().fit(score, y)
    b = SigmoidCalibrator().fit(score, y)
    assert (a.slope_, a.intercept_) == (b.slope_, b.intercept_)
    grid = np.linspace(-3, 3, 50)
    assert np.all(np.diff(a.predict(grid)) > 0)


def test_isotonic_is_monotone_and_bounded(scored):
    score, _, y = scored
    cal = IsotonicCalibrator().fit(score, y)
    grid = np.linspace(-10, 10, 1000)
    p = cal.predict(grid)
    assert np.all(np.diff(p) >= 0)
    low, high = cal.bounds_
    assert low == pytest.approx(1 / (score.size + 2))
    assert p.min() >= low and p.max() <= high


def test_isotonic_takes_no_offset(scored):
    score, offset, y = scored
    with pytest.raises(ValueError, match="no offset"):
        IsotonicCalibrator().fit(score, y).predict(score, offset=offset)


def test_single_class_and_bad_input_are_refused():
    with pytest.raises(DataValidationError, match="both churners"):
        SigmoidCalibrator().fit([0.1, 0.2], [1, 1])
    with pytest.raises(DataValidationError, match="0/1"):
        IsotonicCalibrator().fit([0.1, 0.2], [0, 2])
    with pytest.raises(DataValidationError, match="NaN"):
        IsotonicCalibrator().fit([np.nan, 0.2], [0, 1])
    with pytest.raises(DataValidationError, match="offset"):
        SigmoidCalibrator().fit([0.1, 0.2], [0, 1], offset=[0.0])


def test_separated_labels_raise_convergence_error():
    with pytest.raises(ConvergenceError, match="isotonic"):
        SigmoidCalibrator().fit([-2.0, -1.0, 1.0, 2.0], [0, 0, 1, 1])
