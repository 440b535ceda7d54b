"""Probability calibration on held-out time: isotonic and logistic maps of a model's margin.

A gradient-boosted model trained by log loss is often close to calibrated on the data it was
fitted on and less so on a later period. :class:`~vipml.churn.ChurnModel` therefore fits a
calibrator on the scores of its latest snapshot, which the booster did not train on, and
applies it to every later prediction.

Two maps are offered:

- :class:`IsotonicCalibrator`: the non-decreasing step function of the margin that fits the
  held-out labels best (pool adjacent violators). Flexible, needs a few thousand held-out rows,
  and ties scores within each step (ranking metrics can move slightly).
- :class:`SigmoidCalibrator`: ``p = sigmoid(offset + slope * score + intercept)`` fitted by
  maximum likelihood (Platt scaling, with an optional fixed offset). Two parameters, strictly
  monotone (keeps the ranking), and with an offset it can recalibrate a correction learnt on
  top of a base model, which is how a model bridged across horizons is calibrated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression

from vipml.base import VipmlEstimator
from vipml.errors import ConvergenceError, DataValidationError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["IsotonicCalibrator", "SigmoidCalibrator"]

FloatArray = npt.NDArray[np.float64]

_NEWTON_MAX_ITER = 100
_NEWTON_TOL = 1e-10
_RIDGE = 1e-8  # keeps the 2x2 Newton system invertible when the scores are constant


def _check_pair(scores: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(y, dtype=np.float64)
    if s.ndim != 1 or s.shape != t.shape:
        raise DataValidationError(
            f"scores and labels must be 1-d arrays of the same length, got shapes {s.shape} "
            f"and {t.shape}."
        )
    if s.size == 0 or not np.all(np.isfinite(s)):
        raise DataValidationError(
            f"scores must be a non-empty array of finite numbers; {int((~np.isfinite(s)).sum())} "
            "of them are NaN or infinite."
        )
    if not np.all((t == 0) | (t == 1)):
        raise DataValidationError("labels must be 0/1 (or booleans).")
    if t.min() == t.max():
        raise DataValidationError(
            f"every label is {int(t[0])}: a calibrator needs both churners and non-churners."
        )
    return s, t


class IsotonicCalibrator(VipmlEstimator):
    """Non-decreasing step map from a score to a probability, fitted on held-out labels.

    Probabilities are clipped to ``[1 / (n + 2), 1 - 1 / (n + 2)]``, with ``n`` the number of
    calibration rows: a step holding only churners would otherwise predict exactly 1 and make
    the log loss infinite on the first non-churner it meets. Scores outside the fitted range
    get the value at the nearest end.

    Attributes
    ----------
    isotonic_ : sklearn.isotonic.IsotonicRegression
        The fitted step function.
    bounds_ : tuple of float
        The clipping bounds.

    References
    ----------
    Zadrozny, B. & Elkan, C. (2002). "Transforming classifier scores into accurate multiclass
    probability estimates". KDD '02, 694-699.

    Examples
    --------
    >>> import numpy as np
    >>> cal = IsotonicCalibrator().fit([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0], [0, 0, 1, 0, 1, 1])
    >>> cal.predict(np.array([-5.0, 0.5, 9.0])).round(3).tolist()
    [0.125, 0.5, 0.875]
    """

    _fitted_attributes = ("isotonic_", "bounds_")

    def fit(self, scores: npt.ArrayLike, y: npt.ArrayLike) -> Self:
        """Fit the step function on held-out scores and 0/1 labels.

        Parameters
        ----------
        scores : array_like
            A model's scores (margins or probabilities), higher meaning more likely 1.
        y : array_like
            0/1 labels.

        Returns
        -------
        Self

        Raises
        ------
        DataValidationError
            Shapes differ, non-finite scores, labels other than 0/1, or a single class.
        """
        s, t = _check_pair(scores, y)
        self.isotonic_ = IsotonicRegression(out_of_bounds="clip").fit(s, t)
        eps = 1.0 / (s.size + 2.0)
        self.bounds_ = (eps, 1.0 - eps)
        self._stamp_version()
        return self

    def predict(self, scores: npt.ArrayLike, offset: npt.ArrayLike | None = None) -> FloatArray:
        """Calibrated probabilities of new scores.

        Parameters
        ----------
        scores : array_like
            Scores on the scale the calibrator was fitted on.
        offset : None
            Not supported (kept for a common interface with :class:`SigmoidCalibrator`).

        Returns
        -------
        numpy.ndarray
        """
        self._check_fitted()
        if offset is not None:
            raise ValueError("IsotonicCalibrator takes no offset; use SigmoidCalibrator.")
        values = self.isotonic_.predict(np.asarray(scores, dtype=np.float64))
        return np.clip(values, *self.bounds_)


class SigmoidCalibrator(VipmlEstimator):
    """Logistic map ``p = sigmoid(offset + slope * score + intercept)`` (Platt scaling).

    ``slope`` and ``intercept`` maximise the Bernoulli likelihood of the held-out labels
    (Newton's method from ``slope = 1, intercept = 0``, deterministic). With ``offset``, the
    score is a correction added to a fixed base margin (a model's ``init_score``): the fit then
    decides how much of the correction to trust out of time, and the same map applies to a
    base margin computed for another horizon.

    Attributes
    ----------
    slope_, intercept_ : float
        Fitted coefficients.

    References
    ----------
    Platt, J. (1999). "Probabilistic outputs for support vector machines and comparisons to
    regularized likelihood methods". Advances in Large Margin Classifiers, 61-74.

    Examples
    --------
    >>> import numpy as np
    >>> cal = SigmoidCalibrator().fit([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0], [0, 0, 1, 0, 1, 1])
    >>> round(cal.slope_, 3), round(cal.intercept_, 3)
    (1.214, -0.607)
    >>> cal.predict(np.array([0.0])).round(3).tolist()
    [0.353]
    """

    _fitted_attributes = ("slope_", "intercept_")

    def fit(
        self, scores: npt.ArrayLike, y: npt.ArrayLike, offset: npt.ArrayLike | None = None
    ) -> Self:
        """Fit slope and intercept by maximum likelihood.

        Parameters
        ----------
        scores : array_like
            Scores (margins), or corrections on top of ``offset``.
        y : array_like
            0/1 labels.
        offset : array_like, optional
            Fixed part of the margin (log-odds), one per row.

        Returns
        -------
        Self

        Raises
        ------
        DataValidationError
            Bad shapes or labels, or a non-finite offset.
        ConvergenceError
            If Newton's method does not converge (e.g. perfectly separated labels).
        """
        s, t = _check_pair(scores, y)
        base = self._offset(offset, s.size)
        coef = np.array([1.0, 0.0])
        design = np.column_stack([s, np.ones_like(s)])
        for _ in range(_NEWTON_MAX_ITER):
            p = expit(base + design @ coef)
            gradient = design.T @ (t - p) - _RIDGE * coef
            weights = p * (1.0 - p)
            hessian = (design * weights[:, None]).T @ design + _RIDGE * np.eye(2)
            step = np.linalg.solve(hessian, gradient)
            coef = coef + step
            if np.max(np.abs(step)) < _NEWTON_TOL:
                break
        else:
            raise ConvergenceError(
                f"Sigmoid calibration did not converge in {_NEWTON_MAX_ITER} Newton steps "
                f"(last step {np.abs(step).max():.3g}); the held-out labels may be perfectly "
                "separated by the scores. Use calibration='isotonic' or more held-out rows."
            )
        self.slope_, self.intercept_ = float(coef[0]), float(coef[1])
        self._stamp_version()
        return self

    @staticmethod
    def _offset(offset: npt.ArrayLike | None, size: int) -> FloatArray:
        if offset is None:
            return np.zeros(size)
        base = np.asarray(offset, dtype=np.float64)
        if base.shape != (size,) or not np.all(np.isfinite(base)):
            raise DataValidationError(
                f"offset must hold {size} finite numbers, one per score; got shape {base.shape}."
            )
        return base

    def predict(self, scores: npt.ArrayLike, offset: npt.ArrayLike | None = None) -> FloatArray:
        """Calibrated probabilities ``sigmoid(offset + slope * scores + intercept)``.

        Parameters
        ----------
        scores : array_like
            Scores on the scale the calibrator was fitted on.
        offset : array_like, optional
            Base margins (required when the calibrator was fitted with one).

        Returns
        -------
        numpy.ndarray
        """
        self._check_fitted()
        s = np.asarray(scores, dtype=np.float64)
        return expit(self._offset(offset, s.size) + self.slope_ * s + self.intercept_)
