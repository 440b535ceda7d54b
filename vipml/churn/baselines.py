"""The simple rules a churn model must beat, each giving a probability of no purchase.

A churn model earns its keep only if it beats what a team would do without it, so every
evaluation reports these beside the model (:func:`vipml.churn.evaluate`):

- :class:`RecencyBaseline`: days since the last purchase, the classic "lapsed" rule, turned
  into a probability by a one-feature logistic regression on ``log(1 + days)``;
- :class:`LogRFMLogistic`: logistic regression on log frequency, recency, T and monetary
  value (scikit-learn);
- :class:`NoPurchaseBaseline`: P(no purchase in the horizon) from BG/NBD or Pareto/NBD
  fitted at the scoring date, no labels needed.

The supervised baselines are fitted on the model's own training snapshots, the unsupervised
ones at the scoring date on data up to it, so all are as time-honest as the model.

**Not a baseline: 1 − P(alive).** It is tempting to read BG/NBD's P(alive) as a churn
score, but in BG/NBD a customer can only drop out right after a repeat purchase, so every
one-time buyer has P(alive) = 1 and ranks as the *safest* customer, although one-time buyers
are the likeliest to never return. On CDNOW (cutoff 1997-09-30, 39-week horizon) 1 − P(alive)
reaches a ROC AUC of about 0.32, worse than chance. :class:`PAliveBaseline` is kept to show
this (``evaluate(..., baselines=[..., "bgnbd_p_alive"])``), never as a default.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from vipml.base import VipmlEstimator
from vipml.errors import DataValidationError
from vipml.features.cycle import parse_duration
from vipml.ltv import BetaGeo, ParetoNBD

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "BASELINES",
    "DEFAULT_BASELINES",
    "LogRFMLogistic",
    "NoPurchaseBaseline",
    "PAliveBaseline",
    "RecencyBaseline",
    "make_baseline",
]

_RFM = ("frequency", "recency", "T", "monetary_value")


def _columns(features: pd.DataFrame, names: tuple[str, ...], who: str) -> pd.DataFrame:
    missing = [c for c in names if c not in features.columns]
    if missing:
        raise DataValidationError(
            f"{who} needs the column(s) {missing} (found {list(features.columns)[:8]}...): pass "
            "the RFM summary with time_unit='W' and the purchase-cycle features, e.g. a "
            "training_snapshots(...) or ChurnModel.features(...) table."
        )
    return features[list(names)].astype(np.float64)


def _labels(churned: npt.ArrayLike | None, n: int, who: str) -> npt.NDArray[np.int64]:
    if churned is None:
        raise DataValidationError(f"{who} is supervised: pass the churn labels to fit.")
    y = np.asarray(churned).astype(np.int64)
    if y.shape != (n,):
        raise DataValidationError(f"{who}: {y.size} labels for {n} rows.")
    return y


class _SupervisedBaseline(VipmlEstimator):
    supervised: ClassVar[bool] = True
    _fitted_attributes = ("pipeline_",)
    _inputs: ClassVar[tuple[str, ...]] = ()

    def _design(self, features: pd.DataFrame) -> npt.NDArray[np.float64]:
        values = _columns(features, self._inputs, type(self).__name__).to_numpy()
        return np.log1p(np.clip(values, 0.0, None))

    def fit(self, features: pd.DataFrame, churned: npt.ArrayLike | None = None) -> Self:
        """Fit on training rows (e.g. the stacked snapshots) and their 0/1 churn labels.

        Parameters
        ----------
        features : pandas.DataFrame
            Rows with the input columns.
        churned : array_like
            Labels, one per row.

        Returns
        -------
        Self
        """
        X = self._design(features)
        y = _labels(churned, len(X), type(self).__name__)
        self.pipeline_ = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
        self._stamp_version()
        return self

    def predict_proba(self, features: pd.DataFrame) -> pd.Series:
        """Probability of churn per row.

        Parameters
        ----------
        features : pandas.DataFrame
            Rows with the input columns.

        Returns
        -------
        pandas.Series
            Indexed like ``features``.
        """
        self._check_fitted()
        values = self.pipeline_.predict_proba(self._design(features))[:, 1]
        return pd.Series(values, index=features.index, name="churn_probability")


class RecencyBaseline(_SupervisedBaseline):
    """Days since the last purchase, as a probability: logistic regression on ``log1p(days)``.

    The ranking is that of days since the last purchase alone (the coefficient is positive
    whenever recency carries any signal); the regression only puts it on a probability scale
    so that Brier score and log loss can be compared.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"days_since_last_purchase": [1.0, 5.0, 30.0, 90.0, 200.0, 10.0]})
    >>> p = RecencyBaseline().fit(X, [0, 0, 1, 1, 1, 0]).predict_proba(X)
    >>> bool(p.iloc[4] > p.iloc[3] > p.iloc[0])
    True
    """

    _inputs = ("days_since_last_purchase",)


class LogRFMLogistic(_SupervisedBaseline):
    """Logistic regression on ``log1p`` of frequency, recency, T and monetary value.

    Inputs are standardised; scikit-learn's default L2 penalty (``C = 1``).

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"frequency": [0.0, 1.0, 5.0, 0.0, 3.0, 8.0],
    ...                   "recency": [0.0, 2.0, 30.0, 0.0, 10.0, 38.0],
    ...                   "T": [40.0, 40.0, 39.0, 20.0, 38.0, 39.0],
    ...                   "monetary_value": [0.0, 20.0, 35.0, 0.0, 15.0, 50.0]})
    >>> p = LogRFMLogistic().fit(X, [1, 1, 0, 1, 0, 0]).predict_proba(X)
    >>> bool(p.iloc[0] > p.iloc[5])
    True
    """

    _inputs = _RFM


class NoPurchaseBaseline(VipmlEstimator):
    """P(no purchase in the horizon) from BG/NBD or Pareto/NBD, fitted on the rows it scores.

    Unsupervised: ``fit`` fits the purchase model on the RFM summary at the scoring date (in
    weeks) and ignores any labels, which is time-honest because the summary uses no data
    after that date.

    Parameters
    ----------
    model : {"bgnbd", "pareto_nbd"}, default "bgnbd"
        The purchase model.
    horizon : str or timedelta, default "39W"
        The churn horizon.
    penalizer : float, default 0.0
        Passed to the purchase model (a little helps tiny data sets converge).

    Examples
    --------
    >>> import pandas as pd
    >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0, 0.0],
    ...                     "recency": [0.0, 10.0, 25.0, 36.0, 5.0, 0.0],
    ...                     "T": [30.0, 38.0, 30.0, 39.0, 39.0, 12.0],
    ...                     "monetary_value": [0.0, 9.0, 12.0, 30.0, 20.0, 0.0]})
    >>> base = NoPurchaseBaseline(horizon="39W", penalizer=0.01).fit(rfm)
    >>> p = base.predict_proba(rfm)
    >>> bool(p.between(0, 1).all()), bool(p.iloc[4] > p.iloc[3])
    (True, True)
    """

    supervised: ClassVar[bool] = False
    _fitted_attributes = ("model_",)

    def __init__(
        self,
        *,
        model: Literal["bgnbd", "pareto_nbd"] = "bgnbd",
        horizon: Any = "39W",
        penalizer: float = 0.0,
    ) -> None:
        self.model = model
        self.horizon = horizon
        self.penalizer = penalizer

    def _weeks(self) -> float:
        return parse_duration(self.horizon, "horizon") / dt.timedelta(weeks=1)

    def fit(self, features: pd.DataFrame, churned: npt.ArrayLike | None = None) -> Self:
        """Fit the purchase model on the RFM columns (``churned`` is ignored).

        Parameters
        ----------
        features : pandas.DataFrame
            ``frequency``, ``recency``, ``T`` in weeks.
        churned : ignored

        Returns
        -------
        Self

        Raises
        ------
        ValueError
            An unknown ``model``.
        """
        if self.model not in ("bgnbd", "pareto_nbd"):
            raise ValueError(f"model must be 'bgnbd' or 'pareto_nbd', got {self.model!r}.")
        self._weeks()
        rfm = _columns(features, _RFM[:3], type(self).__name__)
        purchase_model = BetaGeo if self.model == "bgnbd" else ParetoNBD
        self.model_ = purchase_model(penalizer=self.penalizer).fit(rfm)
        self._stamp_version()
        return self

    def predict_proba(self, features: pd.DataFrame) -> pd.Series:
        """P(no purchase in the horizon) per row.

        Parameters
        ----------
        features : pandas.DataFrame
            ``frequency``, ``recency``, ``T`` in weeks.

        Returns
        -------
        pandas.Series
        """
        self._check_fitted()
        rfm = _columns(features, _RFM[:3], type(self).__name__)
        values = self.model_.probability_of_purchases(rfm, 0, self._weeks()).to_numpy()
        return pd.Series(values, index=features.index, name="churn_probability")


class PAliveBaseline(VipmlEstimator):
    """1 − P(alive) under BG/NBD: shown as a warning, not a baseline (see the module notes).

    Parameters
    ----------
    penalizer : float, default 0.0
        Passed to :class:`~vipml.ltv.BetaGeo`.

    Examples
    --------
    >>> import pandas as pd
    >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0, 0.0],
    ...                     "recency": [0.0, 10.0, 25.0, 36.0, 5.0, 0.0],
    ...                     "T": [30.0, 38.0, 30.0, 39.0, 39.0, 12.0]})
    >>> p = PAliveBaseline(penalizer=0.01).fit(rfm).predict_proba(rfm)
    >>> p.iloc[[0, 5]].tolist()  # one-time buyers: P(alive) = 1, so "no churn risk"
    [0.0, 0.0]
    """

    supervised: ClassVar[bool] = False
    _fitted_attributes = ("model_",)

    def __init__(self, *, penalizer: float = 0.0) -> None:
        self.penalizer = penalizer

    def fit(self, features: pd.DataFrame, churned: npt.ArrayLike | None = None) -> Self:
        """Fit BG/NBD on the RFM columns (``churned`` is ignored).

        Parameters
        ----------
        features : pandas.DataFrame
            ``frequency``, ``recency``, ``T`` in weeks.
        churned : ignored

        Returns
        -------
        Self
        """
        rfm = _columns(features, _RFM[:3], type(self).__name__)
        self.model_ = BetaGeo(penalizer=self.penalizer).fit(rfm)
        self._stamp_version()
        return self

    def predict_proba(self, features: pd.DataFrame) -> pd.Series:
        """1 − P(alive) per row.

        Parameters
        ----------
        features : pandas.DataFrame
            ``frequency``, ``recency``, ``T`` in weeks.

        Returns
        -------
        pandas.Series
        """
        self._check_fitted()
        alive = self.model_.p_alive(_columns(features, _RFM[:3], type(self).__name__))
        return pd.Series(1.0 - alive.to_numpy(), index=features.index, name="churn_probability")


#: Baselines by name: their display name in evaluation tables.
BASELINES: dict[str, str] = {
    "recency": "days since last purchase",
    "log_rfm": "logistic regression on log RFM",
    "bgnbd": "BG/NBD P(no purchase)",
    "pareto_nbd": "Pareto/NBD P(no purchase)",
    "bgnbd_p_alive": "BG/NBD 1 - P(alive) (not a baseline)",
}
#: What :func:`vipml.churn.evaluate` reports unless told otherwise.
DEFAULT_BASELINES: tuple[str, ...] = ("recency", "log_rfm", "bgnbd", "pareto_nbd")

Baseline = RecencyBaseline | LogRFMLogistic | NoPurchaseBaseline | PAliveBaseline


def make_baseline(name: str, horizon: Any) -> tuple[str, Baseline]:
    """Display name and a new, unfitted baseline for ``name`` (a key of :data:`BASELINES`).

    Parameters
    ----------
    name : str
        ``"recency"``, ``"log_rfm"``, ``"bgnbd"``, ``"pareto_nbd"`` or ``"bgnbd_p_alive"``.
    horizon : str or timedelta
        The churn horizon (used by the P(no purchase) baselines).

    Returns
    -------
    tuple
        Display name and estimator.

    Raises
    ------
    ValueError
        An unknown name.

    Examples
    --------
    >>> make_baseline("pareto_nbd", "13W")
    ('Pareto/NBD P(no purchase)', NoPurchaseBaseline(horizon='13W', model='pareto_nbd'))
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose among {sorted(BASELINES)}.")
    baseline: Baseline
    if name == "recency":
        baseline = RecencyBaseline()
    elif name == "log_rfm":
        baseline = LogRFMLogistic()
    elif name == "bgnbd_p_alive":
        baseline = PAliveBaseline()
    else:
        baseline = NoPurchaseBaseline(model=name, horizon=horizon)  # type: ignore[arg-type]
    return BASELINES[name], baseline
