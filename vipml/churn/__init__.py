"""Churn risk: a time-honest LightGBM classifier with calibrated probabilities and reasons.

:class:`ChurnModel` learns the probability of no purchase in a horizon from point-in-time
snapshots on top of BG/NBD; :func:`evaluate` compares it with the simple baselines of
:mod:`vipml.churn.baselines` on a time holdout; :func:`churn_labels` is the label.
"""

from vipml.churn.labels import churn_labels
from vipml.churn.metrics import evaluate, holdout_predictions
from vipml.churn.model import ChurnModel

__all__ = ["ChurnModel", "churn_labels", "evaluate", "holdout_predictions"]
