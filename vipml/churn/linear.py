"""The logistic regression on log RFM as a second, linear correction of the base margin.

On short, sparse histories (CDNOW: one training snapshot) the simple logistic regression on
``log1p`` of frequency, recency, T and monetary value ranks customers about as well as the
boosted trees, and it extrapolates the calendar-bound T and recency smoothly where trees
cannot. :class:`~vipml.churn.ChurnModel` therefore blends the two: its correction of the
BG/NBD base margin is ``(1 - w) * trees + w * (regression log-odds - base log-odds)``, with
``w`` chosen on the validation snapshot (:func:`blend_weight`).

The regression is stored as plain arrays (no scikit-learn pipeline), so a fitted model can
be saved and rebuilt without pickle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from vipml.base import VipmlEstimator

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["BLEND_GRID", "LOG_RFM_COLUMNS", "LogRFMRegression", "blend_weight"]

FloatArray = npt.NDArray[np.float64]

#: Inputs of the regression (recency and T in weeks), as in the log-RFM baseline.
LOG_RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value")
#: Weights of the linear correction tried on the validation snapshot.
BLEND_GRID: FloatArray = np.linspace(0.0, 1.0, 21)
_CLIP = 1e-15


class LogRFMRegression(VipmlEstimator):
    """Logistic regression on standardised ``log1p`` of frequency, recency, T and monetary value.

    The same model as :class:`vipml.churn.baselines.LogRFMLogistic` (scikit-learn's
    ``LogisticRegression`` with its default L2 penalty, negative values clipped to 0), kept
    as arrays.

    Attributes
    ----------
    mean_, scale_ : numpy.ndarray
        Standardisation of the ``log1p`` inputs.
    coef_ : numpy.ndarray
        Coefficients of the standardised inputs.
    intercept_ : float
        Intercept.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"frequency": [0.0, 1.0, 5.0, 0.0, 3.0, 8.0],
    ...                   "recency": [0.0, 2.0, 30.0, 0.0, 10.0, 38.0],
    ...                   "T": [40.0, 40.0, 39.0, 20.0, 38.0, 39.0],
    ...                   "monetary_value": [0.0, 20.0, 35.0, 0.0, 15.0, 50.0]})
    >>> reg = LogRFMRegression().fit(X, [1, 1, 0, 1, 0, 0])
    >>> logit = reg.decision_function(X)
    >>> bool(logit[0] > logit[5]), reg.contributions(X).shape
    (True, (6, 4))
    """

    _fitted_attributes = ("coef_", "intercept_")

    def _standardised(self, features: pd.DataFrame) -> FloatArray:
        values = features[list(LOG_RFM_COLUMNS)].to_numpy(dtype=np.float64)
        return (np.log1p(np.clip(values, 0.0, None)) - self.mean_) / self.scale_

    def fit(self, features: pd.DataFrame, churned: npt.ArrayLike) -> Self:
        """Fit on rows holding the RFM columns and their 0/1 churn labels.

        Parameters
        ----------
        features : pandas.DataFrame
            Rows with :data:`LOG_RFM_COLUMNS`.
        churned : array_like
            Labels, one per row.

        Returns
        -------
        Self
        """
        values = features[list(LOG_RFM_COLUMNS)].to_numpy(dtype=np.float64)
        scaler = StandardScaler().fit(np.log1p(np.clip(values, 0.0, None)))
        self.mean_ = np.asarray(scaler.mean_, dtype=np.float64)
        self.scale_ = np.asarray(scaler.scale_, dtype=np.float64)
        y = np.asarray(churned).astype(np.int64)
        regression = LogisticRegression().fit(self._standardised(features), y)
        self.coef_ = np.asarray(regression.coef_[0], dtype=np.float64)
        self.intercept_ = float(regression.intercept_[0])
        self._stamp_version()
        return self

    def contributions(self, features: pd.DataFrame) -> FloatArray:
        """Each input's term ``coef * standardised value`` (log-odds), one column per input."""
        self._check_fitted()
        return self._standardised(features) * self.coef_

    def decision_function(self, features: pd.DataFrame) -> FloatArray:
        """Log-odds of churn per row."""
        return self.contributions(features).sum(axis=1) + self.intercept_


def blend_weight(
    base_margin: npt.ArrayLike,
    trees: npt.ArrayLike,
    linear: npt.ArrayLike,
    y: npt.ArrayLike,
    grid: npt.ArrayLike = BLEND_GRID,
) -> float:
    """The weight ``w`` of ``grid`` whose blend has the smallest log loss on ``y``.

    The blend's log-odds are ``base_margin + (1 - w) * trees + w * linear``; ties go to the
    smallest weight.

    Parameters
    ----------
    base_margin, trees, linear : array_like
        Base log-odds and the two corrections, one per row.
    y : array_like
        0/1 labels.
    grid : array_like, default :data:`BLEND_GRID`
        Candidate weights in ``[0, 1]``.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> base = np.zeros(4)
    >>> blend_weight(base, np.array([3.0, 3.0, -3.0, -3.0]), np.zeros(4), [1, 0, 1, 0])
    1.0
    """
    base = np.asarray(base_margin, dtype=np.float64)
    a = np.asarray(trees, dtype=np.float64)
    b = np.asarray(linear, dtype=np.float64)
    t = np.asarray(y, dtype=np.float64)
    weights = np.asarray(grid, dtype=np.float64)
    losses = []
    for w in weights:
        p = np.clip(expit(base + (1.0 - w) * a + w * b), _CLIP, 1.0 - _CLIP)
        losses.append(-np.mean(t * np.log(p) + (1.0 - t) * np.log1p(-p)))
    return float(weights[int(np.argmin(losses))])
