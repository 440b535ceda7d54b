"""How well a ranking targets a campaign: Qini and uplift curves on a randomised experiment.

Customers are ranked by a score (predicted uplift, churn risk, CLV, ...) and the curve asks,
for the top ``k`` of the ranking, how many more responses the treated among them produced
than the same number of controls would have (Radcliffe 2007):

- Qini curve: ``Q(k) = R_t(k) − R_c(k) · N_t(k) / N_c(k)``, with ``R`` the summed outcomes and
  ``N`` the counts of treated (t) and control (c) customers in the top ``k``;
- uplift curve: ``U(k) = (R_t(k) / N_t(k) − R_c(k) / N_c(k)) · k``.

Both end at the experiment's total incremental response; a random ranking draws the straight
line to that end point. The *Qini coefficient* is the area between the model's Qini curve and
that line, divided by the same area for the perfect ranking (the treated responders first and
the control responders last), the normalisation scikit-uplift's ``qini_auc_score`` uses (with
negative effects in the perfect curve); likewise the *AUUC* for the uplift curve. 1 is perfect,
0 random, negative worse than random. Ties in the score are taken together (one point per
distinct score). Outcomes may be binary or amounts.

References
----------
Radcliffe, N. J. (2007). Using control groups to target on predicted lift: building and
assessing uplift models. Direct Marketing Analytics Journal 3, 14-21.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from vipml.errors import DataValidationError

__all__ = [
    "auuc_score",
    "compare_targeting",
    "qini_coefficient",
    "qini_curve",
    "uplift_at_k",
    "uplift_curve",
]

FloatArray = npt.NDArray[np.float64]


def _inputs(y: Any, score: Any, treatment: Any) -> tuple[FloatArray, FloatArray, FloatArray]:
    target = np.asarray(y, dtype=np.float64).reshape(-1)
    ranking = np.asarray(score, dtype=np.float64).reshape(-1)
    raw = np.asarray(treatment).reshape(-1)
    if not target.size == ranking.size == raw.size:
        raise DataValidationError(
            f"y ({target.size}), score ({ranking.size}) and treatment ({raw.size}) must have one "
            "value per customer."
        )
    if not (np.isfinite(target).all() and np.isfinite(ranking).all()):
        raise DataValidationError("y and score must be finite for every customer.")
    if not np.isin(raw.astype(np.float64), (0.0, 1.0)).all():
        raise DataValidationError("treatment must be 0/1 or boolean.")
    treated = raw.astype(np.float64)
    if treated.sum() == 0 or treated.sum() == treated.size:
        raise DataValidationError("the experiment needs both treated and control customers.")
    return target, ranking, treated


def _cumulative(
    y: FloatArray, score: FloatArray, treated: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Top-k counts and sums at each distinct score (highest first), starting from k = 0."""
    order = np.argsort(-score, kind="stable")
    s, t, r = score[order], treated[order], y[order]
    ends = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    n_t = np.cumsum(t)[ends]
    n_all = ends + 1.0
    r_t = np.cumsum(r * t)[ends]
    r_c = np.cumsum(r * (1 - t))[ends]
    zero = np.zeros(1)
    return (
        np.r_[zero, n_all],
        np.r_[zero, n_t],
        np.r_[zero, n_all - n_t],
        np.r_[zero, r_t],
        np.r_[zero, r_c],
    )


def qini_curve(y: Any, score: Any, treatment: Any) -> pd.DataFrame:
    """The Qini curve of a ranking: incremental responses among the top ``k`` customers.

    Parameters
    ----------
    y : array_like
        Outcomes (0/1 or amounts).
    score : array_like
        Ranking score, higher first.
    treatment : array_like of bool or 0/1
        Randomised treatment.

    Returns
    -------
    pandas.DataFrame
        ``n_targeted`` (k, from 0) and ``qini`` (Q(k)), one row per distinct score.

    Examples
    --------
    >>> qini_curve([1, 0, 1, 0], [0.9, 0.8, 0.2, 0.1], [1, 0, 0, 1]).values.tolist()
    [[0.0, 0.0], [1.0, 1.0], [2.0, 1.0], [3.0, 0.5], [4.0, 0.0]]
    """
    target, ranking, treated = _inputs(y, score, treatment)
    n_all, n_t, n_c, r_t, r_c = _cumulative(target, ranking, treated)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(n_c > 0, n_t / n_c, 0.0)
    return pd.DataFrame({"n_targeted": n_all, "qini": r_t - r_c * ratio})


def uplift_curve(y: Any, score: Any, treatment: Any) -> pd.DataFrame:
    """The uplift curve of a ranking: (treated rate − control rate) × k in the top ``k``.

    Returns
    -------
    pandas.DataFrame
        ``n_targeted`` and ``uplift``, one row per distinct score, from k = 0.

    Examples
    --------
    >>> uplift_curve([1, 0, 1, 0], [0.9, 0.8, 0.2, 0.1], [1, 0, 0, 1]).values.tolist()
    [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 1.5], [4.0, 0.0]]
    """
    target, ranking, treated = _inputs(y, score, treatment)
    n_all, n_t, n_c, r_t, r_c = _cumulative(target, ranking, treated)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_t = np.where(n_t > 0, r_t / n_t, 0.0)
        rate_c = np.where(n_c > 0, r_c / n_c, 0.0)
    return pd.DataFrame({"n_targeted": n_all, "uplift": (rate_t - rate_c) * n_all})


def _area_above_random(x: FloatArray, curve: FloatArray) -> float:
    """Trapezoid area between a curve and the straight line from (0, 0) to its end point."""
    gap = curve - curve[-1] * x / x[-1]
    return float(np.sum(np.diff(x) * (gap[1:] + gap[:-1]) / 2.0))


def _normalised(kind: str, y: Any, score: Any, treatment: Any) -> float:
    target, ranking, treated = _inputs(y, score, treatment)
    build = qini_curve if kind == "qini" else uplift_curve
    actual = build(target, ranking, treated)
    perfect = build(target, target * treated - target * (1 - treated), treated)
    best = _area_above_random(perfect["n_targeted"].to_numpy(), perfect[kind].to_numpy())
    if best <= 0:
        raise DataValidationError(
            "the experiment shows no response to rank (the perfect curve has no area): a "
            f"{kind} coefficient is undefined."
        )
    return _area_above_random(actual["n_targeted"].to_numpy(), actual[kind].to_numpy()) / best


def qini_coefficient(y: Any, score: Any, treatment: Any) -> float:
    """Area between the Qini curve and random targeting, over the perfect ranking's.

    1 for the perfect ranking, 0 for a random one, negative when worse than random (the
    normalisation of scikit-uplift's ``qini_auc_score``, negative effects included).

    Examples
    --------
    >>> y, t = [1, 0, 0, 0, 0, 1], [1, 1, 1, 0, 0, 0]
    >>> round(qini_coefficient(y, [6, 5, 4, 3, 2, 1], t), 4)
    1.0
    >>> round(qini_coefficient(y, [1, 2, 3, 4, 5, 6], t), 4)
    -0.2
    """
    return _normalised("qini", y, score, treatment)


def auuc_score(y: Any, score: Any, treatment: Any) -> float:
    """Area between the uplift curve and random targeting, over the perfect ranking's."""
    return _normalised("uplift", y, score, treatment)


def uplift_at_k(y: Any, score: Any, treatment: Any, k: float = 0.3) -> float:
    """Treated minus control response rate among the top ``k`` share of the ranking.

    The top ``int(k × n)`` customers by score are taken together, treated and controls (the
    ``strategy="overall"`` of scikit-uplift's ``uplift_at_k``).

    Examples
    --------
    >>> uplift_at_k([1, 0, 1, 0, 0, 1], [6, 5, 4, 3, 2, 1], [1, 0, 1, 0, 1, 0], k=0.5)
    1.0
    """
    target, ranking, treated = _inputs(y, score, treatment)
    if not 0.0 < float(k) < 1.0:
        raise DataValidationError(f"k must be a share in (0, 1), got {k!r}.")
    top = np.argsort(-ranking, kind="stable")[: int(target.size * float(k))]
    in_t = treated[top] == 1
    if in_t.all() or not in_t.any():
        raise DataValidationError(f"the top {k:.0%} holds only one group: uplift@k is undefined.")
    return float(target[top][in_t].mean() - target[top][~in_t].mean())


def compare_targeting(
    y: Any, treatment: Any, scores: Mapping[str, Any], *, k: float = 0.3
) -> pd.DataFrame:
    """Qini coefficient, AUUC and uplift@k of several rankings on the same experiment.

    Parameters
    ----------
    y, treatment : array_like
        Outcomes and randomised treatment.
    scores : mapping of str to array_like
        Rankings to compare (e.g. ``{"uplift model": ..., "churn risk": ..., "CLV": ...}``),
        higher targeted first.
    k : float, default 0.3
        Share of the ranking for uplift@k.

    Returns
    -------
    pandas.DataFrame
        Indexed by ranking name: ``qini``, ``auuc`` and ``uplift_at_k``.
    """
    rows = {
        name: {
            "qini": qini_coefficient(y, score, treatment),
            "auuc": auuc_score(y, score, treatment),
            "uplift_at_k": uplift_at_k(y, score, treatment, k),
        }
        for name, score in scores.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("ranking")
