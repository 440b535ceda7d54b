"""Uplift models: who responds *because* they are contacted, learnt from a past experiment.

A churn model ranks customers by how likely they are to leave; a campaign needs them ranked by
how much contacting them changes what they do. The two differ: some customers leave whatever
one does, some stay anyway, and some ("sleeping dogs") buy less when contacted. From a
randomised experiment (a past campaign with a random holdout, :func:`~vipml.actions.
plan_campaign` makes one), :class:`UpliftModel` estimates the conditional average treatment
effect τ(x) = E[Y | x, treated] − E[Y | x, control] with LightGBM:

- ``method="two_model"`` (the T-learner): one model of the outcome on the treated customers,
  one on the controls; τ(x) = μ₁(x) − μ₀(x).
- ``method="x_learner"`` (Künzel et al. 2019): the same two models impute each customer's
  individual effect (treated: ``y − μ₀(x)``; controls: ``μ₁(x) − y``), two more models learn
  those imputed effects, and τ(x) = e · τ₀(x) + (1 − e) · τ₁(x) with e the share of treated
  customers (the propensity of a randomised experiment). It does better than the two-model
  learner when one group is much smaller than the other, as holdouts are.

The outcome is binary (bought or not: the models are classifiers and τ is a difference of
probabilities) or continuous (spend: regressions). Fitted state is LightGBM boosters and
numbers only, so a model saves without pickle like the rest of vipml's models.

References
----------
Künzel, S. R., Sekhon, J. S., Bickel, P. J. and Yu, B. (2019). Metalearners for estimating
heterogeneous treatment effects using machine learning. PNAS 116(10), 4156-4165.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from vipml.base import VipmlEstimator
from vipml.errors import DataValidationError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["DEFAULT_UPLIFT_PARAMS", "UpliftModel"]

FloatArray = npt.NDArray[np.float64]

#: LightGBM parameters of each of the model's learners unless ``lgbm_params`` overrides them.
#: Uplift is a small difference between two noisy outcomes: shallow trees with large leaves
#: and a modest number of rounds keep the learners from fitting noise.
DEFAULT_UPLIFT_PARAMS: dict[str, Any] = {
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 100,
    "lambda_l2": 1.0,
    "max_bin": 255,
    "num_threads": 2,
    "deterministic": True,
    "force_col_wise": True,
    "verbose": -1,
    "num_boost_round": 200,
}


def _as_frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    array = np.asarray(X)
    if array.ndim != 2:
        raise DataValidationError(f"X must be a 2-d table of features, got shape {array.shape}.")
    return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])


class UpliftModel(VipmlEstimator):
    """The effect of a treatment on each customer, from a randomised experiment, on LightGBM.

    Parameters
    ----------
    method : {"two_model", "x_learner"}, default "x_learner"
        The meta-learner (see the module notes).
    outcome : {"auto", "binary", "continuous"}, default "auto"
        Binary outcomes (0/1) are modelled with classifiers, continuous ones with regressions;
        "auto" decides from ``y``.
    lgbm_params : dict, optional
        Overrides of :data:`DEFAULT_UPLIFT_PARAMS` (``num_boost_round`` included);
        ``deterministic`` and ``seed`` are always set.
    random_state : int, default 0
        Seed of every learner: the same data and seed give the same model, bit for bit.

    Attributes
    ----------
    boosters_ : dict of str to lightgbm.Booster
        The learners: ``control`` and ``treated`` (μ₀, μ₁), and for the X-learner
        ``effect_control`` and ``effect_treated`` (τ₀, τ₁).
    outcome_ : str
        "binary" or "continuous".
    propensity_ : float
        Share of treated customers in the experiment.
    feature_names_in_ : list of str
        Feature columns, in order.
    average_effect_ : float
        Treated mean minus control mean of ``y`` in the experiment.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"x": rng.uniform(-1, 1, 4000), "noise": rng.normal(size=4000)})
    >>> t = rng.random(4000) < 0.5
    >>> y = (rng.random(4000) < 0.3 + 0.2 * t * (X["x"] > 0)).astype(int)
    >>> model = UpliftModel(lgbm_params={"num_boost_round": 50}).fit(X, y, t)
    >>> tau = model.predict(X)
    >>> bool(tau[X["x"] > 0.5].mean() > tau[X["x"] < -0.5].mean() + 0.05)
    True
    """

    _fitted_attributes = ("boosters_",)

    def __init__(
        self,
        method: Literal["two_model", "x_learner"] = "x_learner",
        *,
        outcome: Literal["auto", "binary", "continuous"] = "auto",
        lgbm_params: Mapping[str, Any] | None = None,
        random_state: int = 0,
    ) -> None:
        self.method = method
        self.outcome = outcome
        self.lgbm_params = lgbm_params
        self.random_state = random_state

    def _params(self, objective: str) -> tuple[dict[str, Any], int]:
        params = {**DEFAULT_UPLIFT_PARAMS, **dict(self.lgbm_params or {})}
        rounds = int(params.pop("num_boost_round"))
        params.update(objective=objective, deterministic=True, seed=int(self.random_state))
        return params, rounds

    def _train(self, X: pd.DataFrame, y: FloatArray, objective: str) -> Any:
        import lightgbm as lgb

        params, rounds = self._params(objective)
        data = lgb.Dataset(X, label=y, params={"verbose": -1}, free_raw_data=True)
        return lgb.train(params, data, num_boost_round=rounds)

    def fit(self, X: Any, y: Any, treatment: Any) -> Self:
        """Learn the uplift from an experiment: features, outcomes and who was treated.

        Parameters
        ----------
        X : pandas.DataFrame or 2-d array
            Features at the start of the experiment (numeric or pandas categorical).
        y : array_like
            Outcome in the experiment's window (0/1, or an amount).
        treatment : array_like of bool or 0/1
            Whether each customer was treated (randomly assigned).

        Returns
        -------
        Self

        Raises
        ------
        DataValidationError
            Lengths differ, missing outcomes, a treatment that is not 0/1, fewer than 20
            customers in a group, or an unknown method or outcome.
        """
        if self.method not in ("two_model", "x_learner"):
            raise DataValidationError(
                f"method must be 'two_model' or 'x_learner', got {self.method!r}."
            )
        if self.outcome not in ("auto", "binary", "continuous"):
            raise DataValidationError(
                f"outcome must be 'auto', 'binary' or 'continuous', got {self.outcome!r}."
            )
        if not isinstance(self.random_state, numbers.Integral):
            raise DataValidationError(
                f"random_state must be an integer, got {self.random_state!r}."
            )
        frame = _as_frame(X)
        target = np.asarray(y, dtype=np.float64).reshape(-1)
        raw = np.asarray(treatment)
        if target.size != len(frame) or raw.size != len(frame):
            raise DataValidationError(
                f"X has {len(frame)} rows, y {target.size} and treatment {raw.size}: one of each "
                "per customer."
            )
        if not np.isfinite(target).all():
            raise DataValidationError(
                f"y has {int((~np.isfinite(target)).sum())} missing or infinite outcome(s)."
            )
        if not np.isin(raw.astype(np.float64), (0.0, 1.0)).all():
            raise DataValidationError("treatment must be 0/1 or boolean for every customer.")
        treated = raw.astype(bool)
        n_t, n_c = int(treated.sum()), int((~treated).sum())
        if min(n_t, n_c) < 20:
            raise DataValidationError(
                f"The experiment has {n_t} treated and {n_c} control customers: an uplift model "
                "needs at least 20 of each (and thousands to rank well)."
            )
        binary = np.isin(target, (0.0, 1.0)).all()
        if self.outcome == "binary" and not binary:
            raise DataValidationError("outcome='binary' but y holds values other than 0 and 1.")
        kind = (
            "binary"
            if (binary if self.outcome == "auto" else self.outcome == "binary")
            else "continuous"
        )
        objective = "binary" if kind == "binary" else "regression"
        boosters = {
            "control": self._train(frame[~treated], target[~treated], objective),
            "treated": self._train(frame[treated], target[treated], objective),
        }
        self.outcome_ = kind
        self.propensity_ = n_t / len(frame)
        self.feature_names_in_ = [str(c) for c in frame.columns]
        self.average_effect_ = float(target[treated].mean() - target[~treated].mean())
        if self.method == "x_learner":
            mu0 = boosters["control"].predict(frame[treated])
            mu1 = boosters["treated"].predict(frame[~treated])
            boosters["effect_treated"] = self._train(
                frame[treated], target[treated] - mu0, "regression"
            )
            boosters["effect_control"] = self._train(
                frame[~treated], mu1 - target[~treated], "regression"
            )
        self.boosters_ = boosters
        self._stamp_version()
        return self

    def _frame(self, X: Any) -> pd.DataFrame:
        self._check_fitted()
        frame = _as_frame(X)
        missing = [c for c in self.feature_names_in_ if c not in frame.columns]
        if missing:
            raise DataValidationError(
                f"X lacks the feature column(s) {missing} the model was fitted on."
            )
        return frame[self.feature_names_in_]

    def predict_outcomes(self, X: Any) -> pd.DataFrame:
        """Expected outcome of each customer without and with the treatment (μ₀, μ₁)."""
        frame = self._frame(X)
        return pd.DataFrame(
            {
                "control": self.boosters_["control"].predict(frame),
                "treated": self.boosters_["treated"].predict(frame),
            },
            index=frame.index,
        )

    def predict(self, X: Any) -> Any:
        """The predicted uplift of each customer (a Series when X is a DataFrame).

        For a binary outcome, a difference of probabilities; for a continuous one, of amounts.
        """
        frame = self._frame(X)
        if self.method == "two_model":
            mu = self.predict_outcomes(frame)
            tau = (mu["treated"] - mu["control"]).to_numpy()
        else:
            e = self.propensity_
            tau = e * self.boosters_["effect_control"].predict(frame) + (1.0 - e) * self.boosters_[
                "effect_treated"
            ].predict(frame)
        if isinstance(X, pd.DataFrame):
            return pd.Series(tau, index=X.index, name="uplift")
        return tau
