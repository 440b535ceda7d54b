"""Time-honest churn risk: LightGBM on point-in-time snapshots, on top of BG/NBD.

:class:`ChurnModel` predicts, for every customer at a date, the probability of no purchase in
the following ``horizon`` (the label of :func:`vipml.churn.labels.churn_labels`). It learns
only from the past, the way it will be used: features at earlier cutoffs, labels from the
periods after them, validated on the latest period whose labels are complete by the fit's
cutoff, never on a random split.
"""

from __future__ import annotations

import datetime as dt
import logging
import numbers
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import lightgbm as lgb
import narwhals.stable.v2 as nw
import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import expit, logit

from vipml.base import VipmlEstimator
from vipml.churn.calibration import IsotonicCalibrator, SigmoidCalibrator
from vipml.churn.linear import LOG_RFM_COLUMNS, LogRFMRegression, blend_weight
from vipml.churn.reasons import explain
from vipml.data.columns import Columns
from vipml.data.validate import as_timestamp, prepare_events, prepare_transactions
from vipml.errors import DataValidationError, ModelAssumptionWarning
from vipml.features.cycle import CYCLE_COLUMNS, parse_duration, purchase_cycle_features
from vipml.features.engagement import engagement_features
from vipml.features.rfm import rfm_summary
from vipml.features.split import LABEL_COLUMNS, training_snapshots
from vipml.ltv import BetaGeo, GammaGamma
from vipml.ltv._base import PurchaseModel

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["ChurnModel", "DEFAULT_LGBM_PARAMS"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
Calibration = Literal["isotonic", "sigmoid", "none"]
Refit = Literal["auto"] | bool

#: LightGBM parameters used unless ``lgbm_params`` overrides them. ``deterministic``,
#: ``force_col_wise``, ``num_threads`` and ``seed`` (from ``random_state``) make a fit
#: reproducible bit for bit on one machine; ``num_boost_round`` is the cap early stopping
#: works under, ``early_stopping_rounds`` its patience.
DEFAULT_LGBM_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.8,
    "lambda_l2": 1.0,
    "max_bin": 255,
    "num_threads": 2,
    "deterministic": True,
    "force_col_wise": True,
    "verbose": -1,
    "num_boost_round": 1000,
    "early_stopping_rounds": 50,
}
_LOOP_KEYS = ("num_boost_round", "early_stopping_rounds")

#: Columns of the RFM summary (recency and T in weeks).
RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value")
ENGAGEMENT_WINDOWS = ("7D", "30D", "90D")
CYCLE_WINDOW = "90D"
#: Left out of the booster's inputs: they grow with the calendar (see the class notes).
_AGE_COLUMNS = ("T", "recency")
_LABEL = "churned"
_MIN_PER_CLASS = 20
_MIN_TRAINING_HORIZON = dt.timedelta(days=7)
_P_CLIP = 1e-6
_WEEK = dt.timedelta(weeks=1)


@dataclass(frozen=True)
class Schedule:
    """Where a fit's snapshots sit in time.

    Attributes
    ----------
    mode : {"direct", "bridged"}
        ``"direct"``: trained on the full horizon's labels. ``"bridged"``: the history was
        too short, so trained on ``training_horizon`` and bridged to the full horizon through
        the BG/NBD base margin.
    training_horizon : datetime.timedelta
        Horizon of the training labels.
    validation_cutoff : pandas.Timestamp
        The latest snapshot (early stopping and calibration).
    training_cutoffs : tuple of pandas.Timestamp
        The older snapshots, oldest first, each with labels ending by the validation cutoff.
    """

    mode: Literal["direct", "bridged"]
    training_horizon: dt.timedelta
    validation_cutoff: pd.Timestamp
    training_cutoffs: tuple[pd.Timestamp, ...]

    @property
    def cutoffs(self) -> list[pd.Timestamp]:
        """Every snapshot cutoff, oldest first."""
        return [*self.training_cutoffs, self.validation_cutoff]


def describe_duration(span: dt.timedelta) -> str:
    """``"13W"`` for whole weeks, ``"10D"`` for whole days, the timedelta otherwise.

    >>> describe_duration(dt.timedelta(days=91)), describe_duration(dt.timedelta(days=10))
    ('13W', '10D')
    """
    if span % _WEEK == dt.timedelta(0):
        return f"{span // _WEEK}W"
    if span % dt.timedelta(days=1) == dt.timedelta(0):
        return f"{span.days}D"
    return str(pd.Timedelta(span))


def plan_snapshots(
    cutoff: pd.Timestamp,
    first_purchase: pd.Timestamp,
    horizon: dt.timedelta,
    step: dt.timedelta,
    n_snapshots: int,
) -> Schedule:
    """Snapshot cutoffs whose labels are complete by ``cutoff``, and the mode they allow.

    A snapshot needs at least one ``step`` of history: its cutoff day is at least
    ``step - 1 day`` after the first purchase's day (both days count, so a 13-week step from
    1997-01-01 allows 1997-04-01). The latest snapshot (validation) is at ``cutoff - h``; the
    training snapshots at ``cutoff - 2h``, ``cutoff - 2h - step``, ... so that their labels
    end by the validation cutoff and never overlap the validation labels. With the full
    horizon ``h = horizon`` this needs ``cutoff - 2 horizon >= first_purchase + step``
    (direct mode); otherwise ``h`` is the longest whole number of weeks that fits (bridged
    mode; whole weeks cover every weekday equally), at least one week.

    Parameters
    ----------
    cutoff, first_purchase : pandas.Timestamp
        The fit's cutoff and the first transaction's day.
    horizon, step : datetime.timedelta
        The full horizon and the spacing of the training snapshots.
    n_snapshots : int
        Wanted number of snapshots, validation included (at least 2).

    Returns
    -------
    Schedule

    Raises
    ------
    DataValidationError
        If not even a one-week horizon fits, naming the earliest cutoff that works.

    Examples
    --------
    >>> import datetime as dt
    >>> import pandas as pd
    >>> plan = plan_snapshots(pd.Timestamp("1997-09-30"), pd.Timestamp("1997-01-01"),
    ...                       dt.timedelta(weeks=39), dt.timedelta(weeks=13), 4)
    >>> plan.mode, plan.training_horizon.days, [str(c.date()) for c in plan.cutoffs]
    ('bridged', 91, ['1997-04-01', '1997-07-01'])
    """
    earliest = first_purchase.normalize() + step - pd.Timedelta(days=1)
    room = cutoff - earliest
    if room >= 2 * horizon:
        mode: Literal["direct", "bridged"] = "direct"
        span = horizon
    else:
        mode = "bridged"
        span = (room / 2) // _WEEK * _WEEK
        if span < _MIN_TRAINING_HORIZON:
            need_direct = earliest + 2 * pd.Timedelta(horizon)
            need_bridged = earliest + 2 * pd.Timedelta(_MIN_TRAINING_HORIZON)
            raise DataValidationError(
                f"cutoff {cutoff.date()} is too early for any time-honest snapshot: a snapshot "
                f"needs one snapshot_step ({describe_duration(step)}) of history after the first "
                f"purchase ({first_purchase.date()}), and the validation snapshot's labels plus "
                f"a training snapshot's labels need two horizons before the cutoff. Use a "
                f"cutoff on or after {need_bridged.date()} (bridged over a one-week training "
                f"horizon) or {need_direct.date()} (the full {describe_duration(horizon)} horizon), or "
                "a shorter snapshot_step."
            )
    validation = cutoff - span
    training = [validation - span - k * step for k in range(n_snapshots - 1)]
    training = [c for c in training if c >= earliest]
    return Schedule(mode, span, validation, tuple(reversed(training)))


def to_pandas(native: Any, index: Sequence[str]) -> pd.DataFrame:
    """A feature builder's result as a pandas frame indexed by ``index``."""
    if isinstance(native, pd.DataFrame):
        return native
    frame = nw.from_native(native)
    if isinstance(frame, nw.LazyFrame):
        frame = frame.collect()
    return frame.to_pandas().set_index(list(index)).sort_index()


def _training_margin(table: pd.DataFrame) -> FloatArray:
    """BG/NBD's log-odds of no purchase over the training horizon (the training base margin)."""
    p = table["bg_p_no_purchase"].to_numpy(dtype=np.float64)
    return logit(np.clip(p, _P_CLIP, 1.0 - _P_CLIP))


def _check_base(base: Any) -> pd.DataFrame:
    """The RFM and cycle columns of a scoring table, refusing missing columns or repeated ids."""
    if not isinstance(base, pd.DataFrame):
        raise DataValidationError(
            f"base must be a pandas DataFrame indexed by customer_id, got {type(base).__name__}."
        )
    needed = [*RFM_COLUMNS, *CYCLE_COLUMNS]
    missing = [c for c in needed if c not in base.columns]
    if missing:
        raise DataValidationError(
            f"base lacks the column(s) {missing} (found {list(base.columns)[:8]}): build it as "
            "rfm_summary(transactions, at, freq='D', time_unit='W').join("
            "purchase_cycle_features(transactions, at, window=CYCLE_WINDOW, freq='D'))."
        )
    repeated = base.index[base.index.duplicated()]
    if len(repeated):
        raise DataValidationError(
            f"base holds {len(repeated)} repeated customer id(s), e.g. {list(repeated[:3])}: "
            "one row per customer is needed (index the table by customer_id)."
        )
    return base[needed]


def align_engagement(
    table: pd.DataFrame, index: pd.Index, columns: Sequence[str] | None, when: str
) -> pd.DataFrame:
    """Engagement ``table`` on the customers of ``index`` and the given ``columns``, as floats.

    Customers without a row get 0 counts (the ``n_*`` columns) and NaN elsewhere; missing
    columns are filled alike. A table none of whose customers is in ``index`` is refused:
    the ids of the two logs do not match.
    """
    if len(table) and not table.index.isin(index).any():
        raise DataValidationError(
            f"events: none of the {len(table)} customers with events {when} has a "
            f"transaction by then (event ids look like {list(table.index[:3])}, dtype "
            f"{table.index.dtype}; transaction ids like {list(index[:3])}, dtype "
            f"{index.dtype}). Events without transactions cannot be joined: check that both "
            "logs use the same customer ids."
        )
    names = list(table.columns) if columns is None else list(columns)
    aligned = table.reindex(index=index, columns=names).astype(np.float64)
    counts = [c for c in names if c.startswith("n_")]
    aligned[counts] = aligned[counts].fillna(0.0)
    return aligned


class ChurnModel(VipmlEstimator):
    """Churn risk: probability of no purchase in ``horizon``, learnt only from the past.

    **Features** of a customer at a cutoff: the RFM summary (recency and T in weeks), the
    purchase-cycle features (gaps, days since the last purchase, overdue ratio, 90-day
    momentum, returns), ``recency / T`` and ``frequency / T``, the engagement features of the
    event log (counts per type and window, recency of events, channels, sentiment) when
    events are given, and the outputs of BG/NBD (P(alive), expected purchases and
    P(no purchase) over the training horizon) and Gamma-Gamma (expected spend) **fitted at that
    cutoff on the rows up to it**. Nothing after a cutoff reaches its features. ``T`` and
    ``recency`` themselves are left out of the booster's inputs: in a cohort they grow with
    the calendar, so the scoring date's values lie beyond the snapshots' and trees cannot
    extrapolate; their information reaches the booster through the ratios, days since the
    last purchase and the BG/NBD outputs (and the base margin).

    **Base margin.** LightGBM does not start from zero: its ``init_score`` is BG/NBD's
    log-odds of no purchase in the label horizon, and the trees learn a correction on top.
    The correction is a function of the features only, not of the horizon, which is what
    lets a model trained on a short horizon predict a longer one.

    **Training protocol** (``fit(..., cutoff=C)``, nothing after ``C`` is read):

    1. Snapshots. The validation snapshot is at ``C - h`` and the training snapshots at
       ``C - 2h``, ``C - 2h - snapshot_step``, ... (up to ``n_snapshots`` in all, none before
       the first purchase plus one ``snapshot_step``), so every label ends by ``C`` and no
       training label overlaps the validation period.
    2. Mode. When the history allows it, ``h`` is the full ``horizon`` (``mode_ = "direct"``).
       Otherwise (CDNOW: 39 weeks of history before 1997-09-30 and a 39-week horizon) ``h``
       is the longest whole number of weeks that fits (``mode_ = "bridged"``): the model is
       trained on ``h``-labels with BG/NBD's log-odds of no purchase in ``h`` as base margin,
       and predicts with BG/NBD's log-odds of no purchase in the full horizon plus the
       learnt correction.
    3. Early stopping: LightGBM trains on the older snapshots and stops when the log loss of
       the validation snapshot has not improved for ``early_stopping_rounds``.
    4. Blend (``blend=True``): a logistic regression on log RFM (:mod:`vipml.churn.linear`)
       fitted on the older snapshots gives a second correction, its log-odds minus the base
       margin; the correction becomes ``(1 - w) * trees + w * linear`` with the weight ``w``
       of ``0, 0.05, ..., 1`` that minimises the validation snapshot's log loss
       (``blend_weight_``; 0 when the trees need no help).
    5. Calibration on the validation snapshot, out of time for that booster: isotonic (or
       sigmoid) on the margin in direct mode. In bridged mode an isotonic map of
       ``h``-margins would not transfer to the full horizon, so a sigmoid recalibration of
       the correction on top of the base margin is fitted instead (``calibration_`` says
       which), which transfers under the same assumption as the correction itself.
    6. Refit (``refit``). Without it the early-stopped booster and the regression of steps
       3-4 are kept, so the calibrator was fitted on the very scores it maps, out of time.
       With it the booster (with the early-stopped number of rounds) and the regression are
       retrained on every snapshot, the validation one included, and the weight and
       calibrator of steps 4-5 are kept although they were fitted on the older model's
       scores. ``refit="auto"`` (default) refits in bridged mode only: there the history is
       short (CDNOW: one training snapshot, which the refit doubles; ROC AUC 0.768 against
       0.765 kept) and the sigmoid of the correction barely moves the scores, while in direct
       mode the refitted booster no longer carries the level shift the calibrator learnt
       (simulated shop, 20,000 customers: holdout ECE 0.013 calibrated against 0.009 raw with
       the refit, 0.007 against 0.020 without it, for ROC AUC 0.924 and 0.922) and the fit
       trains LightGBM once instead of twice.

    Parameters
    ----------
    horizon : str or timedelta, default "39W"
        Churn horizon: churned means no purchase in the ``horizon`` after the scoring date.
        A unit is required (``"39W"``, ``"90D"``).
    n_snapshots : int, default 4
        Snapshots wanted (the validation snapshot included, at least 2); fewer are used when
        the history is short.
    snapshot_step : str or timedelta, default "13W"
        Spacing of the training snapshots, and the minimal history before the first one.
    lgbm_params : dict, optional
        LightGBM parameters overriding :data:`DEFAULT_LGBM_PARAMS`, plus
        ``num_boost_round`` (cap) and ``early_stopping_rounds`` (patience). ``objective`` must
        stay binary; ``deterministic`` and ``seed`` are always set.
    calibration : {"isotonic", "sigmoid", "none"}, default "isotonic"
        Probability calibration on the validation snapshot (see step 5).
    engagement : bool, default True
        Use the engagement features when events are given; False ignores the events.
    blend : bool, default True
        Blend the trees' correction with a logistic regression on log RFM (step 4).
    refit : {"auto", True, False}, default "auto"
        Retrain the booster and the regression on every snapshot after early stopping
        (step 6); ``"auto"`` refits in bridged mode only.
    columns : Columns, optional
        Names of the logs' columns (transactions and events alike), when they are not the
        standard ``customer_id``, ``timestamp``, ``amount``, ...
    random_state : int, default 0
        LightGBM's ``seed``.

    Attributes
    ----------
    cutoff_ : pandas.Timestamp
        The fit's cutoff.
    mode_ : {"direct", "bridged"}
        Whether the full horizon was trained directly or bridged from ``training_horizon_``.
    training_horizon_ : datetime.timedelta
        Horizon of the training labels (the full horizon in direct mode).
    snapshot_cutoffs_ : list of pandas.Timestamp
        Every snapshot, oldest first; the last is the validation snapshot.
    feature_names_ : list of str
        Columns the booster uses, in order.
    engagement_columns_ : list of str
        The engagement columns among them (empty without events).
    best_iteration_ : int
        Boosting rounds chosen by early stopping (and used by the refit).
    refitted_ : bool
        Whether the booster and the regression were retrained on every snapshot.
    blend_weight_ : float
        Weight of the linear correction (0 without ``blend``, or when it does not help).
    margin_reference_ : float
        Mean base margin of the validation snapshot (training horizon): reasons count a
        customer's base margin as its deviation from this fixed value, so a customer's
        reasons do not depend on who else is scored.
    linear_ : LogRFMRegression
        The logistic regression on log RFM (only with ``blend``): fitted on the older
        snapshots, or on every snapshot when refitted.
    booster_ : lightgbm.Booster
        The early-stopped or refitted booster; its raw output is the correction on top of
        the base margin.
    calibrator_ : IsotonicCalibrator, SigmoidCalibrator or None
        The calibration map.
    calibration_ : str
        ``"isotonic"``, ``"sigmoid"``, ``"sigmoid on the correction"`` (bridged) or ``"none"``.
    n_training_rows_ : int
        Rows of every snapshot (customers times snapshots), validation included.
    validation_log_loss_ : float
        Log loss of the early-stopped booster on the validation snapshot, before calibration.
    vipml_version_ : str
        vipml version that fitted the model.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting Your Customers the Easy
    Way". Marketing Science 24(2): P(no purchase) from the conditional PMF, eq. (8).
    Ke, G. et al. (2017). "LightGBM: A Highly Efficient Gradient Boosting Decision Tree".
    NeurIPS 30.

    Examples
    --------
    >>> from vipml.data import simulate
    >>> sim = simulate(1500, "2024-01-01", "2025-12-31", random_state=1)
    >>> model = ChurnModel(horizon="13W", lgbm_params={"num_boost_round": 50}).fit(
    ...     sim.transactions, sim.events, cutoff="2025-06-30")
    >>> model.mode_, model.training_horizon_.days, len(model.snapshot_cutoffs_)
    ('direct', 91, 4)
    >>> risk = model.predict_proba(sim.transactions, sim.events, at="2025-06-30")
    >>> bool(risk.between(0, 1).all()), risk.name
    (True, 'churn_probability')
    """

    _fitted_attributes = ("booster_", "feature_names_", "mode_")

    def __init__(
        self,
        *,
        horizon: Any = "39W",
        n_snapshots: int = 4,
        snapshot_step: Any = "13W",
        lgbm_params: Mapping[str, Any] | None = None,
        calibration: Calibration = "isotonic",
        engagement: bool = True,
        blend: bool = True,
        refit: Refit = "auto",
        columns: Columns | None = None,
        random_state: int = 0,
    ) -> None:
        self.horizon = horizon
        self.n_snapshots = n_snapshots
        self.snapshot_step = snapshot_step
        self.lgbm_params = lgbm_params
        self.calibration = calibration
        self.engagement = engagement
        self.blend = blend
        self.refit = refit
        self.columns = columns
        self.random_state = random_state

    # -- settings ---------------------------------------------------------------------------

    def _check_settings(self) -> tuple[dt.timedelta, dt.timedelta, dict[str, Any], int, int]:
        horizon = parse_duration(self.horizon, "horizon")
        step = parse_duration(self.snapshot_step, "snapshot_step")
        if not (isinstance(self.n_snapshots, numbers.Integral) and self.n_snapshots >= 2):
            raise ValueError(
                f"n_snapshots must be an integer >= 2 (one or more training snapshots and the "
                f"validation snapshot), got {self.n_snapshots!r}."
            )
        if self.calibration not in ("isotonic", "sigmoid", "none"):
            raise ValueError(
                f"calibration must be 'isotonic', 'sigmoid' or 'none', got {self.calibration!r}."
            )
        if not (
            isinstance(self.refit, bool) or (isinstance(self.refit, str) and self.refit == "auto")
        ):
            raise ValueError(f"refit must be 'auto', True or False, got {self.refit!r}.")
        if not isinstance(self.random_state, numbers.Integral) or isinstance(
            self.random_state, bool
        ):
            raise ValueError(f"random_state must be an integer, got {self.random_state!r}.")
        if self.lgbm_params is not None and not isinstance(self.lgbm_params, Mapping):
            raise ValueError(f"lgbm_params must be a dict, got {type(self.lgbm_params).__name__}.")
        params = {**DEFAULT_LGBM_PARAMS, **(self.lgbm_params or {})}
        if params["objective"] not in ("binary", "cross_entropy", "xentropy"):
            raise ValueError(
                f"lgbm_params objective={params['objective']!r}: the churn label is binary and "
                "the base margin is a log-odds, so the objective must be 'binary'."
            )
        rounds, patience = (params.pop(k) for k in _LOOP_KEYS)
        for name, value in (("num_boost_round", rounds), ("early_stopping_rounds", patience)):
            if not (isinstance(value, numbers.Integral) and value >= 1):
                raise ValueError(f"lgbm_params {name} must be an integer >= 1, got {value!r}.")
        params.update(deterministic=True, seed=int(self.random_state))
        return horizon, step, params, int(rounds), int(patience)

    # -- features ---------------------------------------------------------------------------

    def _engagement(
        self,
        events: Any,
        cutoff: pd.Timestamp,
        index: pd.Index,
        first_event: dt.datetime,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Engagement features at ``cutoff`` for the customers in ``index``, as floats.

        Customers without events get 0 counts (the ``n_*`` columns) and NaN elsewhere;
        ``columns`` (default: those found) fixes the columns, missing ones filled alike.
        """
        if cutoff.normalize() + pd.Timedelta(days=1) <= first_event:
            table = pd.DataFrame(index=index)
        else:
            table = to_pandas(
                engagement_features(
                    events, cutoff, windows=ENGAGEMENT_WINDOWS, columns=self.columns
                ),
                ["customer_id"],
            )
        return align_engagement(table, index, columns, f"by {cutoff.date()}")

    @staticmethod
    def _fit_ltv(rfm: pd.DataFrame, cutoff: pd.Timestamp) -> tuple[BetaGeo, GammaGamma | None]:
        """BG/NBD on ``rfm`` (one cutoff) and Gamma-Gamma on its repeat buyers' positive spend.

        Gamma-Gamma is None (with a warning) when it cannot be fitted.
        """
        bg = BetaGeo().fit(rfm[["frequency", "recency", "T"]])
        valid = ((rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)).to_numpy()
        try:
            gg = GammaGamma().fit(rfm.loc[valid, ["frequency", "monetary_value"]])
        except DataValidationError as exc:
            warnings.warn(
                f"Gamma-Gamma could not be fitted at {cutoff.date()} ({exc}) The "
                "gg_expected_spend feature is missing (NaN) for that snapshot.",
                ModelAssumptionWarning,
                stacklevel=4,
            )
            return bg, None
        return bg, gg

    @staticmethod
    def _ltv(
        rfm: pd.DataFrame,
        purchase_model: PurchaseModel,
        spend_model: GammaGamma | None,
        feature_weeks: float,
        label_weeks: float,
    ) -> tuple[pd.DataFrame, FloatArray]:
        """The fitted LTV models' outputs on ``rfm`` (one cutoff), and the base margin."""
        out = pd.DataFrame(index=rfm.index)
        out["bg_p_alive"] = purchase_model.p_alive(rfm).to_numpy()
        out["bg_expected_purchases"] = purchase_model.expected_purchases(
            rfm, feature_weeks
        ).to_numpy()
        p_feature = purchase_model.probability_of_purchases(rfm, 0, feature_weeks).to_numpy()
        out["bg_p_no_purchase"] = p_feature
        p_label = (
            p_feature
            if label_weeks == feature_weeks
            else purchase_model.probability_of_purchases(rfm, 0, label_weeks).to_numpy()
        )
        spend = np.full(len(rfm), np.nan)
        if spend_model is not None:
            repeat = (rfm["frequency"] > 0).to_numpy()
            netted = repeat & ~(rfm["monetary_value"] > 0).to_numpy()
            usable = rfm[["frequency", "monetary_value"]].copy()
            usable.loc[netted] = 0.0
            spend = spend_model.expected_spend(usable).to_numpy(copy=True)
            spend[netted] = np.nan  # repeat spend netted to <= 0 by returns
        out["gg_expected_spend"] = spend
        margin = logit(np.clip(p_label, _P_CLIP, 1.0 - _P_CLIP))
        return out, margin

    def _assemble(
        self,
        base: pd.DataFrame,
        feature_weeks: float,
        label_weeks: float,
        engagement: pd.DataFrame | None,
        *,
        cutoff: pd.Timestamp | None = None,
        models: tuple[PurchaseModel, GammaGamma | None] | None = None,
    ) -> tuple[pd.DataFrame, FloatArray]:
        """Features of one cutoff from its RFM and cycle columns: ratios, LTV, engagement.

        The LTV models are ``models`` when given, else fitted on ``base`` (at ``cutoff``).
        """
        table = base.astype(np.float64)
        age = table["T"].where(table["T"] > 0)
        table["recency_ratio"] = table["recency"] / age
        table["purchase_rate"] = table["frequency"] / age
        rfm = table[list(RFM_COLUMNS)]
        if models is None:
            models = self._fit_ltv(rfm, cutoff)
        ltv, margin = self._ltv(rfm, *models, feature_weeks, label_weeks)
        table = table.join(ltv)
        if engagement is not None:
            table = table.join(engagement)
        return table, margin

    def _first_event(self, events: Any, transactions_tz: bool) -> dt.datetime | None:
        if not self.engagement or events is None:
            return None
        log = prepare_events(events, self.columns, check_duplicates=False)
        if log.tz_aware != transactions_tz:
            raise DataValidationError(
                "transactions and events disagree on time zones: one has tz-aware timestamps, "
                "the other naive ones. Make both aware (or both naive)."
            )
        return log.first_timestamp

    def _training_table(
        self,
        transactions: Any,
        events: Any,
        schedule: Schedule,
        first_event: dt.datetime | None,
    ) -> tuple[pd.DataFrame, FloatArray, npt.NDArray[np.bool_], list[str]]:
        """Stacked snapshot features, base margins, labels and the engagement columns.

        One :func:`training_snapshots` pass builds every snapshot's RFM, cycle and engagement
        features (event types and channels as seen by the latest snapshot) and labels. The
        frame is indexed by (cutoff, customer_id), oldest snapshot first.
        """
        latest = schedule.validation_cutoff
        engaged = (
            first_event is not None and latest.normalize() + pd.Timedelta(days=1) > first_event
        )
        snaps = to_pandas(
            training_snapshots(
                transactions,
                events if engaged else None,
                cutoffs=schedule.cutoffs,
                horizon=schedule.training_horizon,
                freq="D",
                time_unit="W",
                window=CYCLE_WINDOW,
                engagement_windows=ENGAGEMENT_WINDOWS,
                columns=self.columns,
            ),
            ["cutoff", "customer_id"],
        )
        known = {*RFM_COLUMNS, *CYCLE_COLUMNS, *LABEL_COLUMNS}
        columns = [c for c in snaps.columns if c not in known]
        weeks = schedule.training_horizon / _WEEK
        tables, margins, labels = [], [], []
        for cutoff, part in snaps.groupby(level="cutoff", sort=True):
            part = part.droplevel("cutoff")
            if cutoff == latest and columns and part["days_since_last_event"].isna().all():
                raise DataValidationError(
                    f"events: none of the customers with events by {latest.date()} has a "
                    f"transaction by then (transaction ids look like {list(part.index[:3])}, "
                    f"dtype {part.index.dtype}). Events without transactions cannot be joined: "
                    "check that both logs use the same customer ids."
                )
            labels.append(part[_LABEL].to_numpy(dtype=bool))
            engagement = part[columns].astype(np.float64) if columns else None
            features = part[[*RFM_COLUMNS, *CYCLE_COLUMNS]]
            table, margin = self._assemble(features, weeks, weeks, engagement, cutoff=cutoff)
            tables.append(table)
            margins.append(margin)
        stacked = pd.concat(tables, keys=schedule.cutoffs, names=["cutoff", "customer_id"])
        return stacked, np.concatenate(margins), np.concatenate(labels), columns

    def features(
        self, transactions: Any, events: Any = None, *, at: Any
    ) -> tuple[pd.DataFrame, FloatArray]:
        """The model's features of every customer at ``at``, and the base margins.

        Uses only rows at or before ``at``: the RFM summary and cycle features, the ratios, the
        BG/NBD and Gamma-Gamma outputs fitted at ``at`` (over the training horizon, as in
        training) and the engagement features (aligned to the fitted columns). The base
        margin is BG/NBD's log-odds of no purchase in the full horizon.

        Parameters
        ----------
        transactions : DataFrame-like
            Transaction log.
        events : DataFrame-like, optional
            Event log; required when the model was fitted with engagement features.
        at : str, date or datetime
            Scoring date.

        Returns
        -------
        features : pandas.DataFrame
            Indexed by ``customer_id`` (customers with a purchase by ``at``), the columns of
            ``feature_names_`` plus ``T`` and ``recency`` whatever the model uses.
        base_margin : numpy.ndarray
            BG/NBD's log-odds of no purchase in ``horizon``, per row.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        DataValidationError
            Events missing (or given) against the fit, or bad input.
        """
        self._check_fitted()
        stamp = as_timestamp(at, "at")
        if bool(self.engagement_columns_) and events is None:
            raise DataValidationError(
                "This ChurnModel was fitted with engagement features: pass the event log "
                "(events=...) to score, or fit with engagement=False."
            )
        columns = self.columns
        rfm = to_pandas(
            rfm_summary(transactions, stamp, freq="D", time_unit="W", columns=columns),
            ["customer_id"],
        )
        cycle = to_pandas(
            purchase_cycle_features(
                transactions, stamp, window=CYCLE_WINDOW, freq="D", columns=columns
            ),
            ["customer_id"],
        )
        base = rfm.join(cycle)[[*RFM_COLUMNS, *CYCLE_COLUMNS]]
        engaged = None
        if self.engagement_columns_:
            first_event = prepare_events(events, columns, check_duplicates=False).first_timestamp
            engaged = self._engagement(
                events, stamp, base.index, first_event, self.engagement_columns_
            )
        weeks = self.training_horizon_ / _WEEK
        full = parse_duration(self.horizon, "horizon") / _WEEK
        return self._assemble(base, weeks, full, engaged, cutoff=stamp)

    # -- fitting ----------------------------------------------------------------------------

    def _check_classes(
        self,
        y_train: npt.NDArray[np.bool_],
        y_valid: npt.NDArray[np.bool_],
        schedule: Schedule,
    ) -> None:
        problems = []
        for what, y in (("training snapshots", y_train), ("validation snapshot", y_valid)):
            churners = int(y.sum())
            if min(churners, y.size - churners) < _MIN_PER_CLASS:
                problems.append((what, y.size, churners))
        if not problems:
            return
        details = "; ".join(
            f"the {what} have {n} rows: {c} churners and {n - c} non-churners"
            for what, n, c in problems
        )
        few_churners = any(c < _MIN_PER_CLASS for _, _, c in problems)
        few_stayers = any(n - c < _MIN_PER_CLASS for _, n, c in problems)
        advice = []
        if few_churners:
            advice.append("a shorter horizon (more customers go quiet within it)")
        if few_stayers:
            advice.append("a longer horizon (more customers buy again within it)")
        advice.append("a later cutoff or a shorter snapshot_step (more customers and history)")
        raise DataValidationError(
            f"Too few churners or non-churners for a time-honest split ({schedule.mode} mode, "
            f"labels over {describe_duration(schedule.training_horizon)}, snapshots at "
            f"{[str(c.date()) for c in schedule.cutoffs]}): {details}. At least "
            f"{_MIN_PER_CLASS} of each are needed in both. Try " + ", or ".join(advice) + "."
        )

    def fit(self, transactions: Any, events: Any = None, *, cutoff: Any) -> Self:
        """Fit on point-in-time snapshots before ``cutoff`` (see the training protocol).

        Parameters
        ----------
        transactions : DataFrame-like
            Transaction log (pandas, polars, pyarrow, DuckDB relation, ...). Rows after
            ``cutoff`` may be present: they are never read.
        events : DataFrame-like, optional
            Engagement-event log of the same customers.
        cutoff : str, date or datetime
            Every label used ends by this date; the latest date the model knows about.

        Returns
        -------
        Self

        Raises
        ------
        DataValidationError
            Bad input; a cutoff after the end of the log, or too early for any snapshot
            (the message names a cutoff that works); too few churners or non-churners for a
            time-honest split (with counts and what to change); events whose customers have
            no transactions.
        ConvergenceError
            If a BG/NBD fit fails at a snapshot.
        ValueError
            Invalid settings.
        """
        horizon, step, params, rounds, patience = self._check_settings()
        stamp = as_timestamp(cutoff, "cutoff")
        log = prepare_transactions(transactions, self.columns, check_duplicates=False)
        last = pd.Timestamp(log.last_timestamp).normalize()
        if stamp.normalize() > last:
            raise DataValidationError(
                f"cutoff {stamp.date()} is after the last transaction ({last.date()}): the "
                "latest labels would end in days the log does not cover. Use a cutoff up to "
                f"{last.date()}."
            )
        first_event = self._first_event(events, log.tz_aware)
        schedule = plan_snapshots(
            stamp, pd.Timestamp(log.first_timestamp), horizon, step, int(self.n_snapshots)
        )
        logger.info(
            "churn fit at %s: %s mode, labels over %s, snapshots %s",
            stamp.date(),
            schedule.mode,
            describe_duration(schedule.training_horizon),
            [str(c.date()) for c in schedule.cutoffs],
        )
        table, margin, y, engagement_columns = self._training_table(
            transactions, events, schedule, first_event
        )
        is_valid = np.asarray(table.index.get_level_values("cutoff") == schedule.validation_cutoff)
        self._check_classes(y[~is_valid], y[is_valid], schedule)
        names = [c for c in table.columns if c not in _AGE_COLUMNS]
        # One binned dataset; the stages train on row subsets of it (binning once, not thrice).
        everything = lgb.Dataset(
            table[names], y.astype(np.float64), init_score=margin, params=params
        ).construct()
        train = everything.subset(np.flatnonzero(~is_valid))
        valid = everything.subset(np.flatnonzero(is_valid))
        first = lgb.train(
            {**params, "metric": "binary_logloss"},
            train,
            num_boost_round=rounds,
            valid_sets=[valid],
            valid_names=["validation"],
            callbacks=[lgb.early_stopping(patience, first_metric_only=True, verbose=False)],
        )
        best = max(int(first.best_iteration), 1)
        correction = first.predict(table.loc[is_valid, names], raw_score=True, num_iteration=best)
        self.validation_log_loss_ = float(first.best_score["validation"]["binary_logloss"])
        refit = schedule.mode == "bridged" if self.refit == "auto" else bool(self.refit)
        weight = 0.0
        if self.blend:
            # The regression on the older snapshots, as a correction of the same base margin.
            older = LogRFMRegression().fit(table.loc[~is_valid], y[~is_valid])
            linear = older.decision_function(table.loc[is_valid]) - margin[is_valid]
            weight = blend_weight(margin[is_valid], correction, linear, y[is_valid])
            correction = (1.0 - weight) * correction + weight * linear
            self.linear_ = LogRFMRegression().fit(table, y) if refit else older
        self.blend_weight_ = weight
        self.margin_reference_ = float(margin[is_valid].mean())
        self.calibrator_, self.calibration_ = self._fit_calibrator(
            schedule.mode, correction, margin[is_valid], y[is_valid]
        )
        if refit:
            self.booster_ = lgb.train(params, everything, num_boost_round=best)
        else:
            # The early-stopped booster without its rounds past the best one.
            self.booster_ = lgb.Booster(model_str=first.model_to_string(num_iteration=best))
        self.refitted_ = refit
        self.cutoff_ = stamp
        self.mode_ = schedule.mode
        self.training_horizon_ = schedule.training_horizon
        self.snapshot_cutoffs_ = schedule.cutoffs
        self.feature_names_ = names
        self.engagement_columns_ = engagement_columns
        self.best_iteration_ = best
        self.n_training_rows_ = int(len(table))
        self._stamp_version()
        return self

    def _fit_calibrator(
        self,
        mode: str,
        correction: FloatArray,
        base_margin: FloatArray,
        y: npt.NDArray[np.bool_],
    ) -> tuple[IsotonicCalibrator | SigmoidCalibrator | None, str]:
        if self.calibration == "none":
            return None, "none"
        if mode == "bridged":
            calibrator = SigmoidCalibrator().fit(correction, y, offset=base_margin)
            return calibrator, "sigmoid on the correction"
        if self.calibration == "isotonic":
            return IsotonicCalibrator().fit(base_margin + correction, y), "isotonic"
        return SigmoidCalibrator().fit(base_margin + correction, y), "sigmoid"

    # -- prediction -------------------------------------------------------------------------

    def _predict(
        self, table: pd.DataFrame, margin: FloatArray, *, top: int, calibrated: bool = True
    ) -> pd.DataFrame:
        """``churn_probability`` of assembled features, and ``top`` reasons when ``top > 0``."""
        inputs = table[self.feature_names_]
        correction = self.booster_.predict(inputs, raw_score=True)
        weight = self.blend_weight_
        if weight > 0.0:
            linear = self.linear_.decision_function(table) - _training_margin(table)
            correction = (1.0 - weight) * correction + weight * linear
        out = pd.DataFrame(
            {"churn_probability": self._probability(margin, correction, calibrated)},
            index=table.index,
        )
        if top == 0:
            return out
        contributions = self.booster_.predict(inputs, pred_contrib=True)[:, :-1]
        names = list(self.feature_names_)
        if weight > 0.0:
            contributions, names = self._blended_contributions(table, contributions * (1 - weight))
        drivers = explain(
            table,
            contributions,
            names,
            base_margin=margin,
            reference=self.margin_reference_,
            horizon=parse_duration(self.horizon, "horizon"),
            top=top,
        )
        return out.join(drivers)

    def _blended_contributions(
        self, table: pd.DataFrame, trees: FloatArray
    ) -> tuple[FloatArray, list[str]]:
        """The trees' (weighted) contributions plus the linear correction's, and their names.

        The regression's terms go to their inputs (recency and T appended as columns); the
        correction's ``- base log-odds`` part, as its deviation from ``margin_reference_``,
        to ``bg_p_no_purchase``.
        """
        weight = self.blend_weight_
        names = list(self.feature_names_)
        names += [c for c in LOG_RFM_COLUMNS if c not in names]
        values = np.zeros((len(table), len(names)))
        values[:, : trees.shape[1]] = trees
        linear = weight * self.linear_.contributions(table)
        for j, column in enumerate(LOG_RFM_COLUMNS):
            values[:, names.index(column)] += linear[:, j]
        base = _training_margin(table)
        values[:, names.index("bg_p_no_purchase")] -= weight * (base - self.margin_reference_)
        return values, names

    def _probability(
        self, margin: FloatArray, correction: FloatArray, calibrated: bool
    ) -> FloatArray:
        if not calibrated or self.calibrator_ is None:
            return expit(margin + correction)
        if isinstance(self.calibrator_, SigmoidCalibrator) and self.mode_ == "bridged":
            return self.calibrator_.predict(correction, offset=margin)
        return self.calibrator_.predict(margin + correction)

    def predict_proba(
        self, transactions: Any, events: Any = None, *, at: Any, calibrated: bool = True
    ) -> pd.Series:
        """Probability of no purchase in ``horizon`` after ``at``, per customer.

        Parameters
        ----------
        transactions : DataFrame-like
            Transaction log; only rows at or before ``at`` are used.
        events : DataFrame-like, optional
            Event log (required when fitted with engagement features).
        at : str, date or datetime
            Scoring date.
        calibrated : bool, default True
            False returns the raw LightGBM probability ``sigmoid(base margin + correction)``.

        Returns
        -------
        pandas.Series
            ``churn_probability`` indexed by ``customer_id`` (every customer with a purchase
            by ``at``).

        Raises
        ------
        NotFittedError
            Before ``fit``.
        DataValidationError
            Bad input or events missing against the fit.
        """
        table, margin = self.features(transactions, events, at=at)
        return self._predict(table, margin, top=0, calibrated=calibrated)["churn_probability"]

    def reasons(
        self, transactions: Any, events: Any = None, *, at: Any, top: int = 3
    ) -> pd.DataFrame:
        """Each customer's strongest churn drivers, as text, from LightGBM's contributions.

        Contributions come from ``Booster.predict(..., pred_contrib=True)`` (exact
        TreeSHAP values of the correction, in log-odds) and are summed over features that
        describe the same thing (e.g. days since the last purchase, overdue ratio and gaps).
        The BG/NBD base margin counts too, as its deviation from ``margin_reference_`` (fixed
        at fit, so a customer's reasons do not depend on who else is scored), within the
        purchase-history driver. Only drivers that push towards churn are
        listed, strongest first; see :func:`vipml.churn.reasons.explain`.

        Parameters
        ----------
        transactions, events, at
            As in :meth:`predict_proba`.
        top : int, default 3
            Drivers per customer.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``customer_id``: ``churn_probability``, then ``reason_1`` ..
            ``reason_<top>`` (text; missing when fewer drivers push towards churn) and
            ``impact_1`` .. ``impact_<top>`` (their log-odds contributions).

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ValueError
            If ``top`` is not a positive integer.
        """
        if not (isinstance(top, numbers.Integral) and top >= 1):
            raise ValueError(f"top must be an integer >= 1, got {top!r}.")
        table, margin = self.features(transactions, events, at=at)
        return self._predict(table, margin, top=int(top))

    def score_table(
        self,
        base: pd.DataFrame,
        engagement: pd.DataFrame | None = None,
        *,
        purchase_model: PurchaseModel,
        spend_model: GammaGamma | None,
        top: int = 0,
    ) -> pd.DataFrame:
        """Churn probabilities (and reasons) from feature tables and already-fitted LTV models.

        The scoring seam of a pipeline that has built the features and fitted BG/NBD and
        Gamma-Gamma at the scoring date itself: no log is read and no model is refitted.
        With ``purchase_model`` and ``spend_model`` the models :meth:`features` would fit at
        that date (``BetaGeo()`` on the RFM columns, ``GammaGamma()`` on the repeat buyers
        with positive spend), the result equals :meth:`predict_proba` and :meth:`reasons`
        bit for bit.

        Parameters
        ----------
        base : pandas.DataFrame
            Indexed by ``customer_id``: the columns :data:`RFM_COLUMNS` of
            ``rfm_summary(..., freq="D", time_unit="W")`` and :data:`CYCLE_COLUMNS` of
            ``purchase_cycle_features(..., window=CYCLE_WINDOW, freq="D")`` at the scoring date
            (other columns are ignored).
        engagement : DataFrame-like, optional
            ``engagement_features(..., windows=ENGAGEMENT_WINDOWS)`` at the scoring date
            (indexed by, or with a column, ``customer_id``); required when the model was
            fitted with engagement features, ignored otherwise. Customers of ``base`` without
            a row get 0 event counts and NaN elsewhere.
        purchase_model : BetaGeo, ParetoNBD or ModifiedBetaGeo
            A fitted purchase model (``p_alive``, ``expected_purchases``,
            ``probability_of_purchases``) for the base margin and the LTV features.
        spend_model : GammaGamma or None
            A fitted spend model; None leaves ``gg_expected_spend`` missing (NaN).
        top : int, default 0
            Reasons per customer, as in :meth:`reasons`; 0 for probabilities only.
        Returns
        -------
        pandas.DataFrame
            Indexed like ``base``: ``churn_probability``, then (``top > 0``) ``reason_1`` ..
            ``reason_<top>`` and ``impact_1`` .. ``impact_<top>``.

        Raises
        ------
        NotFittedError
            Before ``fit``, or if ``purchase_model`` or ``spend_model`` is not fitted.
        DataValidationError
            ``base`` lacks a column or repeats a customer; engagement missing against the fit
            or with none of ``base``'s customers.
        ValueError
            ``top`` not an integer >= 0, or a model of the wrong kind.

        Examples
        --------
        >>> from vipml.data import simulate
        >>> from vipml.features import rfm_summary
        >>> from vipml.features.cycle import purchase_cycle_features
        >>> from vipml.features.engagement import engagement_features
        >>> from vipml.churn.model import CYCLE_WINDOW, ENGAGEMENT_WINDOWS
        >>> sim = simulate(1500, "2024-01-01", "2025-12-31", random_state=1)
        >>> model = ChurnModel(horizon="13W", lgbm_params={"num_boost_round": 50}).fit(
        ...     sim.transactions, sim.events, cutoff="2025-06-30")
        >>> at = "2025-06-30"
        >>> rfm = rfm_summary(sim.transactions, at, freq="D", time_unit="W")
        >>> base = rfm.join(purchase_cycle_features(sim.transactions, at, window=CYCLE_WINDOW,
        ...                                         freq="D"))
        >>> events = engagement_features(sim.events, at, windows=ENGAGEMENT_WINDOWS)
        >>> bg = BetaGeo().fit(rfm)
        >>> scores = model.score_table(base, events, purchase_model=bg, spend_model=None, top=1)
        >>> list(scores.columns), bool(scores["churn_probability"].between(0, 1).all())
        (['churn_probability', 'reason_1', 'impact_1'], True)
        """
        self._check_fitted()
        if not (isinstance(top, numbers.Integral) and not isinstance(top, bool) and top >= 0):
            raise ValueError(f"top must be an integer >= 0, got {top!r}.")
        if not isinstance(purchase_model, PurchaseModel):
            raise ValueError(
                "purchase_model must be a fitted vipml purchase model (BetaGeo, ParetoNBD or "
                f"ModifiedBetaGeo), got {type(purchase_model).__name__}."
            )
        if spend_model is not None and not isinstance(spend_model, GammaGamma):
            raise ValueError(
                f"spend_model must be a fitted GammaGamma or None, got "
                f"{type(spend_model).__name__}."
            )
        purchase_model._check_fitted()
        if spend_model is not None:
            spend_model._check_fitted()
        table = _check_base(base)
        engaged = None
        if self.engagement_columns_:
            if engagement is None:
                raise DataValidationError(
                    "This ChurnModel was fitted with engagement features: pass the "
                    "engagement_features(..., windows=ENGAGEMENT_WINDOWS) table of the scoring "
                    "date (engagement=...), or fit with engagement=False."
                )
            if isinstance(engagement, pd.DataFrame) and "customer_id" in engagement.columns:
                engagement = engagement.set_index("customer_id")
            engaged = align_engagement(
                to_pandas(engagement, ["customer_id"]),
                table.index,
                self.engagement_columns_,
                "in the engagement table",
            )
        weeks = self.training_horizon_ / _WEEK
        full = parse_duration(self.horizon, "horizon") / _WEEK
        features, margin = self._assemble(
            table, weeks, full, engaged, models=(purchase_model, spend_model)
        )
        return self._predict(features, margin, top=int(top))
