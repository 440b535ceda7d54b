"""Holdout evaluation of the purchase and spend models: tables and metrics.

Every function takes a calibration/holdout frame as built by
:func:`vipml.features.calibration_holdout`: the calibration RFM summary (``frequency_cal``,
``recency_cal``, ``T_cal``, ``monetary_value_cal``) and what each customer did afterwards
(``frequency_holdout`` purchase periods, ``monetary_value_holdout`` mean spend per holdout
purchase, over ``duration_holdout`` time units). The models must have been fitted on the
calibration columns, in the same time unit.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import spearmanr

from vipml.errors import DataValidationError
from vipml.ltv._base import FloatArray, PurchaseModel, refuse_covariates
from vipml.ltv._input import as_rfm_frame
from vipml.ltv.clv import customer_lifetime_value
from vipml.ltv.gamma_gamma import GammaGamma

__all__ = ["HoldoutReport", "evaluate_holdout", "holdout_metrics", "holdout_table"]

logger = logging.getLogger(__name__)

_CALIBRATION = {
    "frequency_cal": "frequency",
    "recency_cal": "recency",
    "T_cal": "T",
    "monetary_value_cal": "monetary_value",
}
_PURCHASE_COLUMNS = (
    "frequency_cal",
    "recency_cal",
    "T_cal",
    "frequency_holdout",
    "duration_holdout",
)
_SPEND_COLUMNS = ("monetary_value_cal", "monetary_value_holdout")
#: Shares of customers whose holdout revenue the value metrics report.
TOP_SHARES = (0.05, 0.10)
_N_SHOWN = 5


def _refuse(frame: pd.DataFrame, bad: npt.NDArray[np.bool_], column: str, problem: str) -> None:
    if bad.any():
        shown = ", ".join(str(v) for v in frame.index[bad][:_N_SHOWN])
        more = ", ..." if int(bad.sum()) > _N_SHOWN else ""
        raise DataValidationError(
            f"Column '{column}': {int(bad.sum())} rows {problem} (customer ids [{shown}{more}]). "
            "Build the frame with vipml.features.calibration_holdout."
        )


def _holdout_frame(frame: Any, columns: Sequence[str]) -> pd.DataFrame:
    """Validated float columns indexed by customer id; calibration columns renamed to RFM names."""
    data = as_rfm_frame(frame, columns).rename(columns=_CALIBRATION)
    as_rfm_frame(data, [c for c in _CALIBRATION.values() if c in data.columns])  # RFM rules
    holdout = data["frequency_holdout"].to_numpy()
    whole = (holdout >= 0) & (holdout == np.round(holdout))
    _refuse(data, ~whole, "frequency_holdout", "are not whole numbers >= 0")
    _refuse(data, data["duration_holdout"].to_numpy() <= 0, "duration_holdout", "are not > 0")
    return data


def _predicted_purchases(purchase_model: PurchaseModel, data: pd.DataFrame) -> FloatArray:
    """Expected purchases over each customer's holdout duration (durations may differ)."""
    if not isinstance(purchase_model, PurchaseModel):
        raise TypeError(
            "purchase_model must be a purchase model (BetaGeo, ParetoNBD or ModifiedBetaGeo), "
            f"got {type(purchase_model).__name__}."
        )
    refuse_covariates(purchase_model, function="holdout evaluation", discrete=True)
    purchase_model._check_fitted()
    names = ("frequency", "recency", "T", "duration_holdout")
    x, t_x, age, duration = (data[c].to_numpy() for c in names)
    return type(purchase_model)._expected_purchases_at(
        purchase_model.params_, x, t_x, age, duration
    )


def check_max_frequency(max_frequency: Any) -> int:
    """The open bucket of a frequency table, as an int; refuses anything but an integer >= 1."""
    if not (isinstance(max_frequency, numbers.Integral) and max_frequency >= 1):
        raise ValueError(f"max_frequency must be an integer >= 1, got {max_frequency!r}.")
    return int(max_frequency)


def bucket_labels(top: int) -> list[str]:
    """Labels of frequency buckets ``0, 1, ..., top - 1, "top+"``."""
    return [str(k) for k in range(top)] + [f"{top}+"]


def holdout_table(
    purchase_model: PurchaseModel, calibration_holdout_frame: Any, *, max_frequency: int = 7
) -> pd.DataFrame:
    """Actual and predicted holdout purchases per calibration-frequency bucket.

    Customers are grouped by their calibration frequency (repeat purchases), the last bucket
    holding every customer with ``max_frequency`` or more. Per bucket, ``actual`` is the mean
    number of holdout purchases and ``predicted`` the mean of the model's conditional
    expectation over each customer's ``duration_holdout``: the calibration/holdout check of
    Fader, Hardie & Lee (2005), figure 4.

    Parameters
    ----------
    purchase_model : BetaGeo, ParetoNBD or ModifiedBetaGeo
        Model fitted on the calibration columns.
    calibration_holdout_frame : DataFrame
        Output of :func:`vipml.features.calibration_holdout` (pandas indexed by customer id,
        or any narwhals-supported frame with a ``customer_id`` column).
    max_frequency : int, default 7
        First frequency pooled into the open bucket ``"7+"``.

    Returns
    -------
    pandas.DataFrame
        Indexed by the bucket labels ``"0"``, ..., ``"6"``, ``"7+"`` (index name
        ``frequency_cal``), every bucket present, with columns ``n_customers``, ``actual``,
        ``predicted`` and ``error = predicted - actual`` (NaN for an empty bucket).

    Raises
    ------
    TypeError
        If ``purchase_model`` is not a purchase model.
    NotFittedError
        Before the model is fitted.
    DataValidationError
        Missing or invalid columns.
    ValueError
        If ``max_frequency`` is not an integer >= 1.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting Your Customers the Easy
    Way", Marketing Science 24(2), section 4 and figure 4.

    Examples
    --------
    >>> import pandas as pd
    >>> from vipml.ltv import BetaGeo
    >>> frame = pd.DataFrame({
    ...     "frequency_cal": [0.0, 1.0, 2.0, 5.0, 3.0], "recency_cal": [0.0, 10.0, 25.0, 36.0, 5.0],
    ...     "T_cal": [30.0, 38.0, 30.0, 39.0, 39.0], "frequency_holdout": [1.0, 0.0, 2.0, 4.0, 0.0],
    ...     "duration_holdout": 39.0})
    >>> rfm = frame.rename(columns=lambda c: c.removesuffix("_cal"))
    >>> bg = BetaGeo(penalizer=0.01).fit(rfm)
    >>> holdout_table(bg, frame, max_frequency=3).round(2)
                   n_customers  actual  predicted  error
    frequency_cal
    0                        1     1.0       0.79  -0.21
    1                        1     0.0       0.46   0.46
    2                        1     2.0       1.75  -0.25
    3+                       2     2.0       1.64  -0.36
    """
    top = check_max_frequency(max_frequency)
    data = _holdout_frame(calibration_holdout_frame, _PURCHASE_COLUMNS)
    predicted = _predicted_purchases(purchase_model, data)
    bucket = np.minimum(data["frequency"].to_numpy(), top).astype(np.intp)
    counts = np.bincount(bucket, minlength=top + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        actual_mean = np.bincount(bucket, data["frequency_holdout"], top + 1) / counts
        predicted_mean = np.bincount(bucket, predicted, top + 1) / counts
    labels = bucket_labels(top)
    return pd.DataFrame(
        {
            "n_customers": counts,
            "actual": actual_mean,
            "predicted": predicted_mean,
            "error": predicted_mean - actual_mean,
        },
        index=pd.Index(labels, name="frequency_cal"),
    )


def top_revenue_share(score: FloatArray, revenue: FloatArray, share: float) -> float:
    """Share of total revenue earned by the ``ceil(share * n)`` customers with the top scores.

    Customers tied with the last one selected share the remaining places equally (each counts
    for ``places / n_tied`` of its revenue): the expected share under a random tie-break, so
    the result does not depend on row order.

    Examples
    --------
    >>> top_revenue_share(np.array([3.0, 1.0, 1.0, 0.0]), np.array([5.0, 2.0, 4.0, 9.0]), 0.5)
    0.4
    """
    n_top = max(1, math.ceil(share * score.size))
    threshold = np.partition(score, score.size - n_top)[score.size - n_top]
    above = score > threshold
    tied = score == threshold
    places = n_top - int(above.sum())
    captured = revenue[above].sum() + places / int(tied.sum()) * revenue[tied].sum()
    total = revenue.sum()
    return float(captured / total) if total > 0 else float("nan")


def _spearman(a: FloatArray, b: FloatArray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:  # rank correlation undefined for a constant
        return float("nan")
    return float(spearmanr(a, b).statistic)


def holdout_metrics(
    purchase_model: PurchaseModel,
    frame: Any,
    *,
    spend_model: GammaGamma | None = None,
    discount_rate: float = 0.0,
) -> dict[str, float]:
    """Per-customer accuracy of holdout purchase predictions, and value ranking metrics.

    With ``error = predicted - actual`` per customer (predicted: expected purchases over the
    holdout duration; actual: ``frequency_holdout``):

    - ``mae`` = mean |error|, ``rmse`` = sqrt(mean error²), ``bias`` = mean error;
    - ``total_error_pct`` = 100 (Σ predicted − Σ actual) / Σ actual;
    - ``spearman``: rank correlation of predicted and actual purchases (average ranks for
      ties; NaN when either is constant).

    With a ``spend_model``, customers are also ranked by their predicted CLV over the holdout
    duration (:func:`~vipml.ltv.clv.customer_lifetime_value` on the calibration columns, in
    steps of at most one time unit) and by their past spend
    (``frequency_cal * monetary_value_cal``). For the top 5 % and 10 % of each ranking,
    ``clv_top5_revenue_share`` etc. give their share of the holdout revenue
    (``frequency_holdout * monetary_value_holdout``); customers tied at the boundary count
    fractionally (see :func:`top_revenue_share`), so ties are broken deterministically and
    independently of row order.

    Parameters
    ----------
    purchase_model : BetaGeo, ParetoNBD or ModifiedBetaGeo
        Model fitted on the calibration columns.
    frame : DataFrame
        Output of :func:`vipml.features.calibration_holdout`.
    spend_model : GammaGamma, optional
        Spend model fitted on the calibration columns; adds the value metrics.
    discount_rate : float, default 0.0
        Discount rate per time unit of the frame for the CLV ranking.

    Returns
    -------
    dict
        ``n_customers``, ``mae``, ``rmse``, ``bias``, ``total_error_pct``, ``spearman`` and,
        with a spend model, ``clv_top5_revenue_share``, ``clv_top10_revenue_share``,
        ``past_spend_top5_revenue_share``, ``past_spend_top10_revenue_share``.

    Raises
    ------
    TypeError
        If a model has the wrong type.
    NotFittedError
        Before the models are fitted.
    DataValidationError
        Missing or invalid columns; with a spend model, holdout durations that differ between
        customers.
    ValueError
        If ``discount_rate`` is invalid.

    References
    ----------
    Fader, Hardie & Lee (2005), Marketing Science 24(2), section 4 (holdout validation);
    Fader, Hardie & Lee (2005), Journal of Marketing Research 42(4) (CLV).

    Examples
    --------
    >>> import pandas as pd
    >>> from vipml.ltv import BetaGeo
    >>> frame = pd.DataFrame({
    ...     "frequency_cal": [0.0, 1.0, 2.0, 5.0, 3.0], "recency_cal": [0.0, 10.0, 25.0, 36.0, 5.0],
    ...     "T_cal": [30.0, 38.0, 30.0, 39.0, 39.0], "frequency_holdout": [1.0, 0.0, 2.0, 4.0, 0.0],
    ...     "duration_holdout": 39.0})
    >>> bg = BetaGeo(penalizer=0.01).fit(frame.rename(columns=lambda c: c.removesuffix("_cal")))
    >>> {k: round(v, 2) for k, v in holdout_metrics(bg, frame).items()}
    {'n_customers': 5, 'mae': 0.35, 'rmse': 0.43, 'bias': -0.14, 'total_error_pct': -10.28, 'spearman': 0.97}
    """
    columns = _PURCHASE_COLUMNS + (_SPEND_COLUMNS if spend_model is not None else ())
    data = _holdout_frame(frame, columns)
    actual = data["frequency_holdout"].to_numpy()
    predicted = _predicted_purchases(purchase_model, data)
    error = predicted - actual
    total_actual = actual.sum()
    metrics: dict[str, float] = {
        "n_customers": len(data),
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "bias": float(np.mean(error)),
        "total_error_pct": float(100.0 * error.sum() / total_actual)
        if total_actual > 0
        else float("nan"),
        "spearman": _spearman(predicted, actual),
    }
    if spend_model is not None:
        metrics.update(_value_metrics(purchase_model, spend_model, data, discount_rate))
    logger.debug("holdout metrics: %s", metrics)
    return metrics


def _value_metrics(
    purchase_model: PurchaseModel, spend_model: GammaGamma, data: pd.DataFrame, rate: float
) -> dict[str, float]:
    durations = data["duration_holdout"].to_numpy()
    problem = f"differ from the first row's {durations[0]!r}: the CLV ranking needs one period"
    _refuse(data, durations != durations[0], "duration_holdout", problem)
    horizon = float(durations[0])
    clv = customer_lifetime_value(
        purchase_model,
        spend_model,
        data,
        horizon=horizon,
        discount_rate=rate,
        step=horizon / math.ceil(horizon),
    ).to_numpy()
    past_spend = (data["frequency"] * data["monetary_value"]).to_numpy()
    revenue = (data["frequency_holdout"] * data["monetary_value_holdout"]).to_numpy()
    metrics = {}
    for name, score in (("clv", clv), ("past_spend", past_spend)):
        for share in TOP_SHARES:
            key = f"{name}_top{round(100 * share)}_revenue_share"
            metrics[key] = top_revenue_share(score, revenue, share)
    return metrics


@dataclass(frozen=True, eq=False)
class HoldoutReport:
    """Holdout table and metrics of a fitted model, printable as text (e.g. by the CLI).

    Attributes
    ----------
    table : pandas.DataFrame
        :func:`holdout_table`.
    metrics : dict
        :func:`holdout_metrics`.
    """

    table: pd.DataFrame
    metrics: dict[str, float]

    def __str__(self) -> str:
        table = self.table.to_string(float_format=lambda v: f"{v:.3f}")
        width = max(len(k) for k in self.metrics)
        metrics = "\n".join(
            f"{k:<{width}}  {v if isinstance(v, numbers.Integral) else format(v, '.4g')}"
            for k, v in self.metrics.items()
        )
        return f"Holdout purchases by calibration frequency\n{table}\n\nMetrics\n{metrics}"


def evaluate_holdout(
    purchase_model: PurchaseModel,
    frame: Any,
    *,
    spend_model: GammaGamma | None = None,
    max_frequency: int = 7,
    discount_rate: float = 0.0,
) -> HoldoutReport:
    """Holdout table and metrics in one report (see :func:`holdout_table`, :func:`holdout_metrics`).

    Parameters
    ----------
    purchase_model : BetaGeo, ParetoNBD or ModifiedBetaGeo
        Model fitted on the calibration columns.
    frame : DataFrame
        Output of :func:`vipml.features.calibration_holdout`.
    spend_model : GammaGamma, optional
        Adds the value metrics.
    max_frequency : int, default 7
        Open bucket of the table.
    discount_rate : float, default 0.0
        Discount rate per time unit for the CLV ranking.

    Returns
    -------
    HoldoutReport
        ``.table``, ``.metrics``; ``str(report)`` formats both as text.

    Raises
    ------
    TypeError, NotFittedError, DataValidationError, ValueError
        As :func:`holdout_table` and :func:`holdout_metrics`.

    Examples
    --------
    >>> import pandas as pd
    >>> from vipml.ltv import BetaGeo
    >>> frame = pd.DataFrame({
    ...     "frequency_cal": [0.0, 1.0, 2.0, 5.0, 3.0], "recency_cal": [0.0, 10.0, 25.0, 36.0, 5.0],
    ...     "T_cal": [30.0, 38.0, 30.0, 39.0, 39.0], "frequency_holdout": [1.0, 0.0, 2.0, 4.0, 0.0],
    ...     "duration_holdout": 39.0})
    >>> bg = BetaGeo(penalizer=0.01).fit(frame.rename(columns=lambda c: c.removesuffix("_cal")))
    >>> print(evaluate_holdout(bg, frame, max_frequency=2))
    Holdout purchases by calibration frequency
                   n_customers  actual  predicted  error
    frequency_cal
    0                        1   1.000      0.785 -0.215
    1                        1   0.000      0.461  0.461
    2+                       3   2.000      1.678 -0.322
    <BLANKLINE>
    Metrics
    n_customers      5
    mae              0.3532
    rmse             0.4321
    bias             -0.1439
    total_error_pct  -10.28
    spearman         0.9747
    """
    return HoldoutReport(
        table=holdout_table(purchase_model, frame, max_frequency=max_frequency),
        metrics=holdout_metrics(
            purchase_model, frame, spend_model=spend_model, discount_rate=discount_rate
        ),
    )
