"""Reliability diagram and lift curve of churn probabilities (matplotlib, imported lazily).

Both take the frame of :func:`vipml.churn.holdout_predictions`: a ``churned`` column and one
probability column per method. These will move to :mod:`vipml.plotting`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from vipml.churn.metrics import Strategy, capture_curve, reliability_table
from vipml.plotting._axes import axes_or_new

__all__ = ["plot_lift", "plot_reliability"]


def _methods(predictions: pd.DataFrame, methods: Sequence[str] | None) -> list[str]:
    if "churned" not in predictions.columns:
        raise ValueError("predictions need a 'churned' column (see holdout_predictions).")
    chosen = (
        [c for c in predictions.columns if c != "churned"] if methods is None else list(methods)
    )
    missing = [m for m in chosen if m not in predictions.columns]
    if missing:
        raise ValueError(f"no column {missing} in predictions; found {list(predictions.columns)}.")
    return chosen


def plot_reliability(
    predictions: pd.DataFrame,
    *,
    methods: Sequence[str] | None = None,
    bins: int = 10,
    strategy: Strategy = "quantile",
    ax: Any = None,
) -> Any:
    """Reliability diagram: observed churn rate against mean predicted probability per bin.

    A calibrated method lies on the diagonal. Bins as in
    :func:`vipml.churn.metrics.expected_calibration_error`.

    Parameters
    ----------
    predictions : pandas.DataFrame
        ``churned`` and probability columns (:func:`vipml.churn.holdout_predictions`).
    methods : sequence of str, optional
        Columns to draw (default: all).
    bins : int, default 10
        Number of bins.
    strategy : {"quantile", "uniform"}, default "quantile"
        Equal-mass or equal-width bins.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"churned": [0, 0, 1, 1], "rule": [0.1, 0.3, 0.6, 0.8]})
    >>> ax = plot_reliability(frame, bins=2)
    >>> ax.get_xlabel()
    'mean predicted churn probability'
    """
    chosen = _methods(predictions, methods)
    axes = axes_or_new(ax)
    y = predictions["churned"].to_numpy(dtype=np.float64)
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    for method in chosen:
        table = reliability_table(y, predictions[method], bins=bins, strategy=strategy)
        axes.plot(table["mean_predicted"], table["observed_rate"], marker="o", label=method)
    axes.set_xlabel("mean predicted churn probability")
    axes.set_ylabel("observed churn rate")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_title("Reliability diagram")
    axes.legend(loc="upper left", fontsize="small")
    return axes


def plot_lift(
    predictions: pd.DataFrame,
    *,
    methods: Sequence[str] | None = None,
    points: int = 100,
    ax: Any = None,
) -> Any:
    """Lift curve: churn rate among the riskiest share of customers over the overall rate.

    Ties are shared out pro rata, as in :func:`vipml.churn.metrics.top_fraction`.

    Parameters
    ----------
    predictions : pandas.DataFrame
        ``churned`` and probability columns (:func:`vipml.churn.holdout_predictions`).
    methods : sequence of str, optional
        Columns to draw (default: all).
    points : int, default 100
        Shares targeted, evenly spaced in ``(0, 1]``.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"churned": [0, 0, 1, 1], "rule": [0.1, 0.3, 0.6, 0.8]})
    >>> plot_lift(frame, points=4).get_ylabel()
    'lift'
    """
    chosen = _methods(predictions, methods)
    axes = axes_or_new(ax)
    y = predictions["churned"].to_numpy(dtype=np.float64)
    share = np.arange(1, points + 1) / points
    for method in chosen:
        axes.plot(share, capture_curve(y, predictions[method], share) / share, label=method)
    axes.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="random")
    axes.set_xlabel("share of customers targeted (riskiest first)")
    axes.set_ylabel("lift")
    axes.set_title("Lift curve")
    axes.legend(loc="upper right", fontsize="small")
    return axes
