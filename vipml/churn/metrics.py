"""Time-holdout evaluation of churn probabilities: the model beside every baseline.

:func:`evaluate` scores a fitted :class:`~vipml.churn.ChurnModel` and the baselines of
:mod:`vipml.churn.baselines` at a date whose labels (the following horizon) the model never
saw, and returns one table:

- ``roc_auc``: probability that a random churner is ranked above a random non-churner;
- ``pr_auc``: average precision (area under the precision-recall curve, churn as positive);
- ``brier``: mean squared error of the probabilities;
- ``log_loss``: mean negative Bernoulli log-likelihood (probabilities clipped to
  ``[1e-15, 1 - 1e-15]``);
- ``ece``: expected calibration error, ``sum_b n_b / n * |mean(p_b) - mean(y_b)|`` over bins
  of the predicted probability: equal-mass bins by default (the ``k``-th of ``B`` bins holds
  the predictions ranked ``k n / B`` to ``(k + 1) n / B``; tied predictions all go to the bin
  of their lowest rank, so bins can differ in size and some can be empty), or equal-width
  bins on ``[0, 1]`` with ``strategy="uniform"``;
- ``lift_top_decile``: churn rate among the 10% highest-risk customers over the overall
  churn rate; ``capture_top_decile``: share of all churners among them. Ties at the 10%
  boundary are shared out pro rata (as if broken at random), so a score with many ties,
  such as days since the last purchase, is not flattered or penalised by an arbitrary order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from vipml.churn.baselines import DEFAULT_BASELINES, make_baseline
from vipml.churn.labels import churn_labels
from vipml.churn.model import ChurnModel, describe_duration, to_pandas
from vipml.errors import DataValidationError
from vipml.features.cycle import parse_duration
from vipml.features.split import training_snapshots

__all__ = [
    "METRIC_COLUMNS",
    "capture_curve",
    "classification_metrics",
    "evaluate",
    "expected_calibration_error",
    "holdout_predictions",
    "reliability_table",
    "score_table",
    "top_fraction",
]

Strategy = Literal["quantile", "uniform"]
FloatArray = npt.NDArray[np.float64]

#: Columns of :func:`evaluate`'s table, in order (then ``training``).
METRIC_COLUMNS: tuple[str, ...] = (
    "roc_auc",
    "pr_auc",
    "brier",
    "log_loss",
    "ece",
    "lift_top_decile",
    "capture_top_decile",
)
MODEL_NAME = "ChurnModel"
RAW_MODEL_NAME = "ChurnModel (uncalibrated)"
_LOG_LOSS_CLIP = 1e-15


def _pair(y: npt.ArrayLike, p: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    labels = np.asarray(y, dtype=np.float64)
    scores = np.asarray(p, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1 or labels.size == 0:
        raise DataValidationError(
            f"labels and scores must be non-empty 1-d arrays of one length; got shapes "
            f"{labels.shape} and {scores.shape}."
        )
    if not np.all(np.isfinite(scores)):
        raise DataValidationError(
            f"{int((~np.isfinite(scores)).sum())} scores are NaN or infinite."
        )
    return labels, scores


def _bin_index(p: FloatArray, bins: int, strategy: Strategy) -> npt.NDArray[np.intp]:
    """Bin of each prediction: by rank (equal mass, ties share the bin of their first rank)."""
    if not (isinstance(bins, int) and bins >= 1):
        raise ValueError(f"bins must be an integer >= 1, got {bins!r}.")
    if strategy == "quantile":
        first_rank = np.searchsorted(np.sort(p, kind="stable"), p, side="left")
        return (first_rank * bins) // p.size
    if strategy == "uniform":
        return np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], p, side="right")
    raise ValueError(f"strategy must be 'quantile' or 'uniform', got {strategy!r}.")


def reliability_table(
    y: npt.ArrayLike, p: npt.ArrayLike, *, bins: int = 10, strategy: Strategy = "quantile"
) -> pd.DataFrame:
    """Mean prediction and observed rate per probability bin (the reliability diagram's data).

    Parameters
    ----------
    y : array_like
        0/1 outcomes.
    p : array_like
        Predicted probabilities.
    bins : int, default 10
        Number of bins (empty ones are left out).
    strategy : {"quantile", "uniform"}, default "quantile"
        Equal-mass bins (by rank of ``p``, ties kept together) or equal-width bins on
        ``[0, 1]``.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin: ``n``, ``mean_predicted``, ``observed_rate``.

    Examples
    --------
    >>> reliability_table([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9], bins=2)
         n  mean_predicted  observed_rate
    bin
    0    2            0.15            0.0
    1    2            0.80            1.0
    """
    labels, scores = _pair(y, p)
    index = _bin_index(scores, bins, strategy)
    frame = pd.DataFrame({"bin": index, "p": scores, "y": labels})
    table = frame.groupby("bin").agg(
        n=("y", "size"), mean_predicted=("p", "mean"), observed_rate=("y", "mean")
    )
    return table


def expected_calibration_error(
    y: npt.ArrayLike, p: npt.ArrayLike, *, bins: int = 10, strategy: Strategy = "quantile"
) -> float:
    """Expected calibration error: ``sum_b n_b / n * |mean(p_b) - mean(y_b)|``.

    Parameters
    ----------
    y : array_like
        0/1 outcomes.
    p : array_like
        Predicted probabilities.
    bins : int, default 10
        Number of bins.
    strategy : {"quantile", "uniform"}, default "quantile"
        Equal-mass (quantile) or equal-width bins; see :func:`reliability_table`.

    Returns
    -------
    float

    References
    ----------
    Naeini, M. P., Cooper, G. F. & Hauskrecht, M. (2015). "Obtaining Well Calibrated
    Probabilities Using Bayesian Binning". AAAI, 2901-2907 (the ECE definition).

    Examples
    --------
    >>> round(expected_calibration_error([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9], bins=2), 3)
    0.175
    """
    table = reliability_table(y, p, bins=bins, strategy=strategy)
    weights = table["n"] / table["n"].sum()
    return float((weights * (table["mean_predicted"] - table["observed_rate"]).abs()).sum())


def capture_curve(y: npt.ArrayLike, score: npt.ArrayLike, fractions: npt.ArrayLike) -> FloatArray:
    """Share of all churners among the highest-scored ``fraction`` of customers.

    Ties at a boundary are shared out pro rata: the expected capture if ties were broken at
    random.

    Parameters
    ----------
    y : array_like
        0/1 outcomes (at least one 1).
    score : array_like
        Risk scores, higher meaning riskier.
    fractions : array_like
        Shares of customers targeted, in ``(0, 1]``.

    Returns
    -------
    numpy.ndarray
        Capture per fraction.

    Examples
    --------
    >>> capture_curve([1, 0, 1, 0], [0.9, 0.5, 0.5, 0.1], [0.25, 0.5]).tolist()
    [0.5, 0.75]
    """
    labels, scores = _pair(y, score)
    share = np.asarray(fractions, dtype=np.float64)
    if np.any((share <= 0) | (share > 1)):
        raise ValueError("fractions must lie in (0, 1].")
    if labels.sum() == 0:
        raise DataValidationError("no churner among the labels: capture is undefined.")
    n = scores.size
    order = np.argsort(-scores, kind="stable")
    descending = -scores[order]  # ascending keys of the sorted scores
    cumulative = np.concatenate([[0.0], np.cumsum(labels[order])])
    k = share * n
    threshold = descending[np.clip(np.ceil(k).astype(np.intp) - 1, 0, n - 1)]
    above = np.searchsorted(descending, threshold, side="left")
    through = np.searchsorted(descending, threshold, side="right")
    tie_rate = (cumulative[through] - cumulative[above]) / (through - above)
    return (cumulative[above] + (k - above) * tie_rate) / labels.sum()


def top_fraction(
    y: npt.ArrayLike, score: npt.ArrayLike, fraction: float = 0.1
) -> tuple[float, float]:
    """Lift and capture among the highest-scored ``fraction`` of customers (ties pro rata).

    Parameters
    ----------
    y : array_like
        0/1 outcomes.
    score : array_like
        Risk scores.
    fraction : float, default 0.1
        Share targeted (0.1: the top decile).

    Returns
    -------
    tuple of float
        ``(lift, capture)``: churn rate in the targeted share over the overall rate, and
        share of all churners it holds.

    Examples
    --------
    >>> top_fraction([1, 0, 1, 0, 0], [0.9, 0.8, 0.2, 0.1, 0.3], fraction=0.2)
    (2.5, 0.5)
    """
    capture = float(capture_curve(y, score, [fraction])[0])
    return capture / fraction, capture


def classification_metrics(
    y: npt.ArrayLike, p: npt.ArrayLike, *, bins: int = 10, strategy: Strategy = "quantile"
) -> dict[str, float]:
    """Every metric of the evaluation table for one set of probabilities.

    Parameters
    ----------
    y : array_like
        0/1 outcomes, both classes present.
    p : array_like
        Predicted probabilities.
    bins, strategy
        Binning of the expected calibration error.

    Returns
    -------
    dict
        Keys of :data:`METRIC_COLUMNS`.

    Examples
    --------
    >>> m = classification_metrics([0, 1, 1, 0, 1], [0.2, 0.8, 0.6, 0.4, 0.3], bins=2)
    >>> round(m["roc_auc"], 3), round(m["brier"], 3)
    (0.833, 0.178)
    """
    labels, scores = _pair(y, p)
    if labels.min() == labels.max():
        raise DataValidationError("the holdout labels hold a single class; metrics need both.")
    clipped = np.clip(scores, _LOG_LOSS_CLIP, 1.0 - _LOG_LOSS_CLIP)
    log_loss = -np.mean(labels * np.log(clipped) + (1.0 - labels) * np.log1p(-clipped))
    lift, capture = top_fraction(labels, scores, 0.1)
    return {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "pr_auc": float(average_precision_score(labels, scores)),
        "brier": float(brier_score_loss(labels, scores)),
        "log_loss": float(log_loss),
        "ece": expected_calibration_error(labels, scores, bins=bins, strategy=strategy),
        "lift_top_decile": lift,
        "capture_top_decile": capture,
    }


def holdout_predictions(
    model: ChurnModel,
    transactions: Any,
    events: Any = None,
    *,
    at: Any = None,
    baselines: Sequence[str] = DEFAULT_BASELINES,
) -> pd.DataFrame:
    """Churn labels after ``at`` beside the model's and every baseline's probabilities.

    The model scores with the features at ``at``; the supervised baselines are fitted on the
    model's own training snapshots (same cutoffs, same training horizon), the BG/NBD and
    Pareto/NBD ones at ``at`` on data up to it. Labels are :func:`churn_labels` over the
    model's full horizon after ``at``, so the log must cover it.

    Parameters
    ----------
    model : ChurnModel
        A fitted model.
    transactions, events : DataFrame-like
        The logs (events as in the fit).
    at : str, date or datetime, optional
        Holdout date; default the model's cutoff (labels after it were never seen).
    baselines : sequence of str
        Keys of :data:`vipml.churn.baselines.BASELINES`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``: ``churned`` (bool), then one probability column per
        method (``ChurnModel``, ``ChurnModel (uncalibrated)``, then the baselines' display
        names). ``attrs`` holds ``at``, ``horizon``, ``mode``, ``training_horizon`` and a
        ``training`` map from method to what it was fitted on.

    Raises
    ------
    NotFittedError
        If the model is not fitted.
    DataValidationError
        If the log does not cover the horizon after ``at``, or bad input.
    """
    model._check_fitted()
    stamp = model.cutoff_ if at is None else pd.Timestamp(at)
    horizon = parse_duration(model.horizon, "horizon")
    labels = churn_labels(transactions, stamp, horizon, columns=model.columns)
    table, margin = model.features(transactions, events, at=stamp)
    trained = describe_duration(model.training_horizon_)
    mode = (
        f"direct: {trained} labels, BG/NBD base margin"
        if model.mode_ == "direct"
        else f"bridged: {trained} labels, BG/NBD base margin at {describe_duration(horizon)}"
    )
    out = pd.DataFrame(
        {"churned": labels.reindex(table.index).to_numpy(dtype=bool)}, index=table.index
    )
    for name, calibrated in ((MODEL_NAME, True), (RAW_MODEL_NAME, False)):
        scores = model._predict(table, margin, top=0, calibrated=calibrated)
        out[name] = scores["churn_probability"].to_numpy()
    training: dict[str, str] = {
        MODEL_NAME: f"{mode}, {model.calibration_} calibration",
        RAW_MODEL_NAME: mode,
    }
    built = [make_baseline(name, horizon) for name in baselines]
    snapshots = None
    if any(type(b).supervised for _, b in built):
        snapshots = to_pandas(
            training_snapshots(
                transactions,
                cutoffs=model.snapshot_cutoffs_,
                horizon=model.training_horizon_,
                freq="D",
                time_unit="W",
                columns=model.columns,
            ),
            ["cutoff", "customer_id"],
        )
    for label, baseline in built:
        if type(baseline).supervised:
            baseline.fit(snapshots, snapshots["churned"].to_numpy())
            training[label] = f"{trained} labels of the model's snapshots"
        else:
            baseline.fit(table)
            training[label] = f"fitted at {stamp.date()}, no labels"
        out[label] = baseline.predict_proba(table).to_numpy()
    out.attrs.update(
        at=stamp,
        horizon=describe_duration(horizon),
        mode=model.mode_,
        training_horizon=trained,
        training=training,
    )
    return out


def evaluate(
    model: ChurnModel,
    transactions: Any,
    events: Any = None,
    *,
    at: Any = None,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    bins: int = 10,
    strategy: Strategy = "quantile",
) -> pd.DataFrame:
    """The model and every baseline on a time holdout, in one table.

    Parameters
    ----------
    model : ChurnModel
        A fitted model.
    transactions, events : DataFrame-like
        The logs; they must cover the model's horizon after ``at``.
    at : str, date or datetime, optional
        Holdout date; default the model's cutoff.
    baselines : sequence of str, default ("recency", "log_rfm", "bgnbd", "pareto_nbd")
        Baselines to report; add ``"bgnbd_p_alive"`` to see why 1 − P(alive) is not one.
    bins : int, default 10
        Bins of the expected calibration error.
    strategy : {"quantile", "uniform"}, default "quantile"
        Equal-mass or equal-width ECE bins.

    Returns
    -------
    pandas.DataFrame
        One row per method (``ChurnModel``, ``ChurnModel (uncalibrated)``, baselines), the
        columns of :data:`METRIC_COLUMNS` and ``training`` (what the method was fitted on,
        the model's mode included). ``attrs``: ``at``, ``horizon``, ``mode``,
        ``training_horizon``, ``n_customers``, ``churn_rate``, ``ece_bins``.

    Raises
    ------
    NotFittedError
        If the model is not fitted.
    DataValidationError
        If the log does not cover the horizon after ``at``, the holdout has a single class,
        or bad input.

    Examples
    --------
    >>> from vipml.churn import ChurnModel
    >>> from vipml.data import simulate
    >>> sim = simulate(1500, "2024-01-01", "2025-12-31", random_state=1)
    >>> model = ChurnModel(horizon="13W", lgbm_params={"num_boost_round": 50}).fit(
    ...     sim.transactions, sim.events, cutoff="2025-06-30")
    >>> table = evaluate(model, sim.transactions, sim.events)
    >>> list(table.index[:2]), table.attrs["mode"]
    (['ChurnModel', 'ChurnModel (uncalibrated)'], 'direct')
    """
    predictions = holdout_predictions(model, transactions, events, at=at, baselines=baselines)
    return score_table(predictions, bins=bins, strategy=strategy)


def score_table(
    predictions: pd.DataFrame, *, bins: int = 10, strategy: Strategy = "quantile"
) -> pd.DataFrame:
    """The evaluation table of a :func:`holdout_predictions` frame.

    Parameters
    ----------
    predictions : pandas.DataFrame
        ``churned`` and one probability column per method.
    bins, strategy
        ECE binning.

    Returns
    -------
    pandas.DataFrame
        See :func:`evaluate`.
    """
    y = predictions["churned"].to_numpy(dtype=np.float64)
    methods = [c for c in predictions.columns if c != "churned"]
    rows = {
        m: classification_metrics(y, predictions[m], bins=bins, strategy=strategy) for m in methods
    }
    table = pd.DataFrame.from_dict(rows, orient="index")[list(METRIC_COLUMNS)]
    training: Mapping[str, str] = predictions.attrs.get("training", {})
    table["training"] = [training.get(m, "") for m in methods]
    table.index.name = "method"
    table.attrs.update(
        {k: v for k, v in predictions.attrs.items() if k != "training"},
        n_customers=int(y.size),
        churn_rate=float(y.mean()),
        ece_bins=f"{bins} {'equal-mass' if strategy == 'quantile' else 'equal-width'}",
    )
    return table
