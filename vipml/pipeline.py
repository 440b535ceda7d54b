"""One pipeline from logs to scores: features, lifetime value, churn, segments and VIP tiers.

:class:`VipPipeline` fits every model at one cutoff and scores customers at any later date
with those models, without refitting. What depends on the whole population at the cutoff is
frozen at fit time, so a customer's scores depend on that customer's history alone (the
property real-time scoring relies on):

- RFM scores use the quantile edges of the fit's customers (at the cutoff itself the scores
  equal :func:`vipml.features.rfm_scores`);
- VIP tiers use the CLV thresholds of the fit's top shares (ties at a threshold share the
  upper tier);
- churn features use BG/NBD and Gamma-Gamma fitted at the cutoff.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from vipml.base import VipmlEstimator
from vipml.churn import ChurnModel, churn_labels
from vipml.churn.metrics import classification_metrics
from vipml.churn.model import (
    CYCLE_WINDOW,
    ENGAGEMENT_WINDOWS,
    RFM_COLUMNS,
    align_engagement,
    to_pandas,
)
from vipml.config import PipelineConfig
from vipml.data.validate import as_timestamp, prepare_events, prepare_transactions
from vipml.errors import DataValidationError, ModelAssumptionWarning
from vipml.features.cycle import CYCLE_COLUMNS, parse_duration, purchase_cycle_features
from vipml.features.engagement import engagement_features
from vipml.features.rfm import DEFAULT_SEGMENT_RULES, rfm_segments, rfm_summary
from vipml.features.split import labels_after
from vipml.ltv import BetaGeo, GammaGamma, ModifiedBetaGeo, ParetoNBD
from vipml.ltv.clv import customer_lifetime_value_interval, per_period_rate
from vipml.ltv.evaluate import top_revenue_share
from vipml.segments import Segmenter
from vipml.segments.tiers import top_count

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["SCORE_COLUMNS", "VipPipeline"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

_WEEK = dt.timedelta(weeks=1)
_PURCHASE_MODELS = {"bgnbd": BetaGeo, "pareto_nbd": ParetoNBD, "modified_bgnbd": ModifiedBetaGeo}

#: Columns of :meth:`VipPipeline.score`, before the ``reason_*`` columns.
SCORE_COLUMNS = (
    "p_alive",
    "expected_purchases",
    "expected_spend",
    "clv",
    "clv_lower",
    "clv_upper",
    "churn_probability",
    "R",
    "F",
    "M",
    "RFM",
    "rfm_segment",
    "segment",
    "vip_tier",
    # the customer's purchase rhythm, for contact timing (vipml.actions)
    "days_since_last_purchase",
    "gap_median_days",
    "overdue_ratio",
)


def _text_dtype() -> Any:
    try:  # pandas >= 2.3: the string dtype Parquet and Arrow read back (missing as NaN)
        return pd.StringDtype(na_value=np.nan)
    except TypeError:  # older pandas: plain objects
        return object


#: dtype of the text columns of the scores, so that scores written to Parquet read back equal.
TEXT = _text_dtype()


def _as_config(config: Any) -> PipelineConfig:
    if config is None:
        return PipelineConfig()
    if isinstance(config, PipelineConfig):
        return config
    if isinstance(config, Mapping):
        return PipelineConfig.from_dict(config)
    if isinstance(config, str | os.PathLike):
        return PipelineConfig.from_toml(config)
    raise TypeError(
        "config must be a PipelineConfig, a mapping, a path to a TOML file or None, "
        f"not {type(config).__name__}."
    )


def score_edges(values: FloatArray, bins: int) -> FloatArray:
    """Edges that reproduce :func:`vipml.features.rfm_scores` for new values.

    A value ``v`` scores ``1 + #{edges < v}``. On the values the edges come from, this is
    exactly ``ceil(bins * rank_min / n)``, computed with the same floating-point operations
    as :func:`vipml.features.rfm_scores` (so boundary cases round the same way).

    Parameters
    ----------
    values : numpy.ndarray
        The fit population's values, higher meaning a better score.
    bins : int
        Number of score levels.

    Returns
    -------
    numpy.ndarray
        ``bins - 1`` non-decreasing edges (``-inf`` for a level every value reaches).

    Examples
    --------
    >>> edges = score_edges(np.array([0.0, 0.0, 1.0, 2.0, 5.0]), 5)
    >>> edges.tolist()
    [0.0, 0.0, 1.0, 2.0]
    >>> (1 + np.searchsorted(edges, np.array([0.0, 1.0, 2.0, 5.0, 9.0]))).tolist()
    [1, 3, 4, 5, 5]
    """
    ordered = np.sort(values)
    n = ordered.size
    levels = np.ceil(np.arange(1, n + 1, dtype=np.float64) / n * bins).clip(1, bins)
    edges = np.full(bins - 1, np.inf)
    for s in range(2, bins + 1):
        first = int(np.searchsorted(levels, s, side="left"))  # smallest count c with level >= s
        if first == 0:
            edges[s - 2] = -np.inf
        elif first < n:
            edges[s - 2] = ordered[first - 1]
    return edges


def _apply_edges(values: FloatArray, edges: FloatArray) -> npt.NDArray[np.int64]:
    return (1 + np.searchsorted(edges, values, side="left")).astype(np.int64)


class VipPipeline(VipmlEstimator):
    """Features → BG/NBD (or Pareto/NBD) + Gamma-Gamma → churn → segments and VIP tiers.

    Parameters
    ----------
    config : PipelineConfig, mapping, path to a TOML file, or None
        Settings (see :mod:`vipml.config`); None uses the defaults.

    Attributes
    ----------
    config_ : PipelineConfig
        The validated configuration.
    cutoff_ : pandas.Timestamp
        The fit's cutoff.
    purchase_model_ : BetaGeo, ParetoNBD or ModifiedBetaGeo
        Purchase model fitted at the cutoff (per ``config.ltv``).
    spend_model_ : GammaGamma
        Spend model fitted on the repeat buyers with positive spend.
    churn_model_ : ChurnModel
        The churn model.
    churn_purchase_model_ : BetaGeo
        BG/NBD as the churn model uses it (default settings, fitted at the cutoff).
    segmenter_ : Segmenter
        Value segments (without the fit's per-customer labels).
    rfm_edges_ : dict of str to list of float
        Frozen quantile edges of the R, F and M scores.
    tier_thresholds_ : list of float
        CLV from which each VIP tier starts, best tier first.
    feature_columns_ : list of str
        Columns of :meth:`build_features`' table, in order.
    summary_ : dict
        Aggregates of the fit (customers, parameters, churn mode, segment sizes, tier
        sizes, ...), stored in bundles.

    Examples
    --------
    >>> from vipml.data import simulate
    >>> sim = simulate(1500, "2024-01-01", "2025-12-31", random_state=1)
    >>> pipe = VipPipeline({"churn": {"lgbm_params": {"num_boost_round": 40}},
    ...                     "ltv": {"n_draws": 20}, "segments": {"n_segments": 4}})
    >>> pipe = pipe.fit(sim.transactions, sim.events, cutoff="2025-06-30")
    >>> scores = pipe.score(sim.transactions, sim.events, at="2025-06-30")
    >>> list(scores.columns[:7])
    ['p_alive', 'expected_purchases', 'expected_spend', 'clv', 'clv_lower', 'clv_upper', 'churn_probability']
    >>> sorted(scores["vip_tier"].unique())
    ['Gold', 'Standard', 'VIP']
    """

    _fitted_attributes = ("cutoff_", "churn_model_", "segmenter_")

    def __init__(self, config: Any = None) -> None:
        self.config = config

    # -- features -----------------------------------------------------------------------------

    def _engagement_used(self, events: Any) -> bool:
        return events is not None and self.config_.churn.engagement

    def build_features(self, transactions: Any, events: Any = None, *, at: Any) -> pd.DataFrame:
        """The per-customer base features at ``at``: RFM, purchase cycle and engagement.

        These are what :meth:`score_features` scores (and what an online state keeps
        current): the RFM summary (daily periods, weeks), the purchase-cycle features (90-day
        window) and, when the pipeline was fitted with events, the engagement features aligned
        to the fitted event types and channels.

        Parameters
        ----------
        transactions, events : DataFrame-like
            Logs (only rows at or before ``at`` are used).
        at : str, date or datetime
            Scoring date.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``customer_id`` (customers with a purchase by ``at``), columns
            ``feature_columns_`` (float64).
        """
        self._check_fitted()
        return self._features(transactions, events, at)

    def _features(self, transactions: Any, events: Any, at: Any) -> pd.DataFrame:
        columns = self.config_.columns
        stamp = as_timestamp(at, "at")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ModelAssumptionWarning)
            rfm = to_pandas(
                rfm_summary(
                    transactions,
                    stamp,
                    freq="D",
                    time_unit="W",
                    columns=columns,
                    check_duplicates=False,
                ),
                ["customer_id"],
            )
            cycle = to_pandas(
                purchase_cycle_features(
                    transactions, stamp, window=CYCLE_WINDOW, freq="D", columns=columns
                ),
                ["customer_id"],
            )
        table = rfm.join(cycle)[[*RFM_COLUMNS, *CYCLE_COLUMNS]].astype(np.float64)
        engaged = getattr(self, "churn_model_", None)
        names = list(engaged.engagement_columns_) if engaged is not None else []
        if names:
            if events is None:
                raise DataValidationError(
                    "This pipeline was fitted with engagement events: pass the event log "
                    "(events=...) to score, or fit without events."
                )
            found = to_pandas(
                engagement_features(events, stamp, windows=ENGAGEMENT_WINDOWS, columns=columns),
                ["customer_id"],
            )
            table = table.join(align_engagement(found, table.index, names, f"by {stamp.date()}"))
        return table

    # -- fitting ------------------------------------------------------------------------------

    def fit(self, transactions: Any, events: Any = None, *, cutoff: Any) -> Self:
        """Fit every model on the rows up to ``cutoff``.

        Parameters
        ----------
        transactions : DataFrame-like
            Transaction log (pandas, polars, pyarrow, DuckDB, ...).
        events : DataFrame-like, optional
            Engagement-event log; its features feed the churn model.
        cutoff : str, date or datetime
            Nothing after it is read.

        Returns
        -------
        Self

        Raises
        ------
        DataValidationError
            Bad input, or too little history for the churn model's time-honest protocol.
        ConvergenceError
            A lifetime-value model failed to converge.
        """
        config = _as_config(self.config)
        self.config_ = config
        stamp = as_timestamp(cutoff, "cutoff")
        # Validate each log once, up front: bad input fails before any model is fitted.
        prepare_transactions(transactions, columns=config.columns)
        use_events = self._engagement_used(events)
        if use_events:
            prepare_events(events, columns=config.columns, check_duplicates=False)
        logger.info("fitting the churn model at %s", stamp)
        churn = ChurnModel(
            horizon=config.churn.horizon,
            n_snapshots=config.churn.n_snapshots,
            snapshot_step=config.churn.snapshot_step,
            lgbm_params=dict(config.churn.lgbm_params) or None,
            calibration=config.churn.calibration,
            refit=config.churn.refit,
            columns=config.columns,
            engagement=use_events,
            random_state=config.random_state,
        ).fit(transactions, events if use_events else None, cutoff=stamp)
        self.churn_model_ = churn
        table = self._features(transactions, events if use_events else None, stamp)
        rfm = table[list(RFM_COLUMNS)]
        logger.info("fitting lifetime-value models on %d customers", len(rfm))
        self.churn_purchase_model_ = BetaGeo().fit(rfm[["frequency", "recency", "T"]])
        ltv = config.ltv
        if ltv.model == "bgnbd" and ltv.penalizer == 0.0:
            self.purchase_model_ = self.churn_purchase_model_
        else:
            model = _PURCHASE_MODELS[ltv.model](
                penalizer=ltv.penalizer, penalizer_kind=ltv.penalizer_kind
            )
            self.purchase_model_ = model.fit(rfm[["frequency", "recency", "T"]])
        positive = (rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)
        self.spend_model_ = GammaGamma().fit(rfm.loc[positive, ["frequency", "monetary_value"]])
        self.cutoff_ = stamp
        self.feature_columns_ = list(table.columns)

        bins = config.rfm.bins
        self.rfm_edges_ = {
            "R": score_edges(-(rfm["T"] - rfm["recency"]).to_numpy(), bins).tolist(),
            "F": score_edges(rfm["frequency"].to_numpy(), bins).tolist(),
            "M": score_edges(rfm["monetary_value"].to_numpy(), bins).tolist(),
        }
        values = self._values(table)
        churn_scores = self._churn(table, top=0)
        segment_input = rfm.assign(clv=values["clv"], churn_risk=churn_scores["churn_probability"])
        n_segments = config.segments.n_segments
        segmenter = Segmenter(
            n_segments=n_segments,
            k_range=config.segments.k_range,
            random_state=config.random_state,
        ).fit(segment_input)
        sizes = segmenter.labels_.map(segmenter.names_).value_counts().sort_index()
        del segmenter.labels_  # customer-level: models travel, customers' data does not
        self.segmenter_ = segmenter
        self.tier_thresholds_ = self._tier_thresholds(values["clv"].to_numpy())
        tiers = self._tiers(values["clv"].to_numpy())
        self.summary_ = {
            "cutoff": stamp.isoformat(),
            "n_customers": len(table),
            "purchase_model": type(self.purchase_model_).__name__,
            "purchase_params": dict(self.purchase_model_.params_),
            "spend_params": dict(self.spend_model_.params_),
            "churn_mode": churn.mode_,
            "churn_training_horizon_days": churn.training_horizon_ / dt.timedelta(days=1),
            "churn_calibration": churn.calibration_,
            "churn_validation_log_loss": churn.validation_log_loss_,
            "mean_churn_probability": float(churn_scores["churn_probability"].mean()),
            "total_clv": float(values["clv"].sum()),
            "segments": {str(k): int(v) for k, v in sizes.items()},
            "tiers": {str(k): int(v) for k, v in tiers.value_counts().sort_index().items()},
        }
        self._stamp_version()
        return self

    def _tier_thresholds(self, clv: FloatArray) -> list[float]:
        ordered = np.sort(clv)[::-1]
        out = []
        for share in self.config_.tiers.thresholds:
            count = top_count(share, ordered.size)
            out.append(float(ordered[count - 1]) if count > 0 else float("inf"))
        return out

    def _tiers(self, clv: FloatArray) -> pd.Categorical:
        tiers = self.config_.tiers
        thresholds = np.asarray(self.tier_thresholds_)
        # first tier whose threshold the value reaches; len(thresholds) means the rest
        codes = (clv[:, None] < thresholds[None, :]).sum(axis=1) if thresholds.size else 0
        codes = np.minimum(codes, thresholds.size)
        return pd.Categorical.from_codes(
            np.asarray(codes, dtype=np.int64),
            categories=[*tiers.names, tiers.rest],
            ordered=True,
        )

    # -- scoring ------------------------------------------------------------------------------

    def _values(self, table: pd.DataFrame) -> pd.DataFrame:
        ltv = self.config_.ltv
        rfm = table[list(RFM_COLUMNS)]
        weeks = parse_duration(ltv.horizon, "ltv.horizon") / _WEEK
        clv = customer_lifetime_value_interval(
            self.purchase_model_,
            self.spend_model_,
            rfm,
            horizon=weeks,
            discount_rate=per_period_rate(ltv.discount_rate, "W"),
            time_unit="W",
            level=ltv.interval_level,
            n_draws=ltv.n_draws,
            random_state=self.config_.random_state,
        )
        usable = rfm[["frequency", "monetary_value"]].where(
            (rfm["frequency"] == 0) | (rfm["monetary_value"] > 0), 0.0
        )
        return pd.DataFrame(
            {
                "p_alive": self.purchase_model_.p_alive(rfm),
                "expected_purchases": self.purchase_model_.expected_purchases(rfm, weeks),
                "expected_spend": self.spend_model_.expected_spend(usable),
                "clv": clv["estimate"],
                "clv_lower": clv["lower"],
                "clv_upper": clv["upper"],
            },
            index=table.index,
        )

    def _churn(self, table: pd.DataFrame, top: int) -> pd.DataFrame:
        names = self.churn_model_.engagement_columns_
        base = table[[*RFM_COLUMNS, *CYCLE_COLUMNS]]
        engagement = table[list(names)] if names else None
        return self.churn_model_.score_table(
            base,
            engagement,
            purchase_model=self.churn_purchase_model_,
            spend_model=self.spend_model_,
            top=top,
        )

    def score_features(self, features: pd.DataFrame) -> pd.DataFrame:
        """Scores of customers from their base features (see :meth:`build_features`).

        Each row is scored from its own features and the fitted models alone, so a subset of
        customers (one, in real time) gets exactly the scores it gets in a full batch.

        Parameters
        ----------
        features : pandas.DataFrame
            Indexed by customer id, with ``feature_columns_``.

        Returns
        -------
        pandas.DataFrame
            One row per customer: :data:`SCORE_COLUMNS`, then ``reason_1`` ..
            ``reason_<churn.reasons>``.

        Raises
        ------
        DataValidationError
            Missing feature columns.
        """
        self._check_fitted()
        missing = [c for c in self.feature_columns_ if c not in features.columns]
        if missing:
            raise DataValidationError(
                f"features lack column(s) {missing[:5]} ({len(missing)} in all); build them "
                "with VipPipeline.build_features or vipml.features.online."
            )
        table = features[self.feature_columns_].astype(np.float64)
        values = self._values(table)
        top = self.config_.churn.reasons
        churn = self._churn(table, top=top)
        scores = values.assign(churn_probability=churn["churn_probability"])
        recency_gap = -(table["T"] - table["recency"]).to_numpy()
        rfm = pd.DataFrame(
            {
                "R": _apply_edges(recency_gap, np.asarray(self.rfm_edges_["R"])),
                "F": _apply_edges(table["frequency"].to_numpy(), np.asarray(self.rfm_edges_["F"])),
                "M": _apply_edges(
                    table["monetary_value"].to_numpy(), np.asarray(self.rfm_edges_["M"])
                ),
            },
            index=table.index,
        )
        rfm["RFM"] = rfm["R"].astype(str) + rfm["F"].astype(str) + rfm["M"].astype(str)
        named = rfm_segments(rfm, rules=DEFAULT_SEGMENT_RULES, bins=self.config_.rfm.bins)
        scores = scores.join(rfm)
        scores["rfm_segment"] = named["segment"].astype(str)
        segment_input = table[list(RFM_COLUMNS)].assign(
            clv=values["clv"], churn_risk=churn["churn_probability"]
        )
        segments = self.segmenter_.predict(segment_input)
        scores["segment"] = segments.map(self.segmenter_.names_).astype(str)
        scores["vip_tier"] = pd.Series(
            self._tiers(values["clv"].to_numpy()), index=table.index
        ).astype(str)
        rhythm = ["days_since_last_purchase", "gap_median_days", "overdue_ratio"]
        scores = scores.join(table[rhythm])
        reasons = [c for c in churn.columns if c.startswith("reason_")]
        scores = scores.join(churn[reasons])
        text = ["RFM", "rfm_segment", "segment", "vip_tier", *reasons]
        scores[text] = scores[text].astype(TEXT)
        return scores

    def score(self, transactions: Any, events: Any = None, *, at: Any = None) -> pd.DataFrame:
        """Score every customer with a purchase by ``at`` (default: the fit's cutoff).

        Parameters
        ----------
        transactions, events : DataFrame-like
            Logs; only rows at or before ``at`` are used. ``events`` is required when the
            pipeline was fitted with events.
        at : str, date or datetime, optional
            Scoring date; the models are not refitted.

        Returns
        -------
        pandas.DataFrame
            See :meth:`score_features`.
        """
        self._check_fitted()
        moment = self.cutoff_ if at is None else at
        return self.score_features(self._features(transactions, events, moment))

    # -- evaluation ---------------------------------------------------------------------------

    def evaluate(
        self, transactions: Any, events: Any = None, *, at: Any, horizon: Any = None
    ) -> dict[str, float]:
        """Scores at ``at`` against what customers did in ``(at, at + horizon]``.

        Parameters
        ----------
        transactions, events : DataFrame-like
            Logs covering the horizon after ``at``.
        at : str, date or datetime
            Scoring date (at or after the fit's cutoff for an honest holdout).
        horizon : str or timedelta, optional
            Holdout length; default the churn horizon.

        Returns
        -------
        dict
            ``churn_roc_auc``, ``churn_pr_auc``, ``churn_brier``, ``churn_log_loss``,
            ``churn_ece``, ``ltv_purchases_mae`` (expected vs actual purchases in the horizon),
            ``ltv_top10_capture`` (share of the horizon's spend by the top 10% by CLV),
            ``n_customers`` and ``churn_rate``.

        Raises
        ------
        DataValidationError
            The log does not cover the horizon, or the holdout has a single class.
        """
        self._check_fitted()
        span = parse_duration(self.config_.churn.horizon if horizon is None else horizon, "horizon")
        stamp = as_timestamp(at, "at")
        if stamp < self.cutoff_:
            warnings.warn(
                f"Evaluating at {stamp.date()}, before the fit's cutoff {self.cutoff_.date()}: "
                "the models saw part of this holdout, so the metrics are optimistic.",
                ModelAssumptionWarning,
                stacklevel=2,
            )
        table = self._features(transactions, events, stamp)
        scores = self.score_features(table)
        columns = self.config_.columns
        labels = churn_labels(transactions, stamp, span, columns=columns)
        after = to_pandas(labels_after(transactions, stamp, span, columns=columns), ["customer_id"])
        labels = labels.reindex(scores.index)
        after = after.reindex(scores.index)
        metrics = classification_metrics(
            labels.to_numpy(dtype=np.float64), scores["churn_probability"].to_numpy()
        )
        expected = self.purchase_model_.expected_purchases(
            table[list(RFM_COLUMNS)], span / _WEEK
        ).to_numpy()
        actual = after["purchases_next"].to_numpy(dtype=np.float64)
        spend = after["spend_next"].to_numpy(dtype=np.float64)
        out = {
            f"churn_{k}": v
            for k, v in metrics.items()
            if k in ("roc_auc", "pr_auc", "brier", "log_loss", "ece")
        }
        out["ltv_purchases_mae"] = float(np.mean(np.abs(expected - actual)))
        out["ltv_top10_capture"] = top_revenue_share(scores["clv"].to_numpy(), spend, 0.1)
        out["n_customers"] = float(len(scores))
        out["churn_rate"] = float(labels.mean())
        return out
