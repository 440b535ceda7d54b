"""Pipeline configuration: one TOML file, validated with clear errors, stored in every bundle.

A configuration file has one table per stage; every key is optional and defaults to the
values below, so an empty file is a valid configuration::

    random_state = 0

    [columns]            # the caller's column names (see vipml.data.Columns)
    customer_id = "user"
    timestamp = "ordered_at"
    amount = "revenue"

    [ltv]
    purchase_model = "bgnbd"  # "bgnbd", "pareto_nbd" or "modified_bgnbd" (old name: model)
    penalizer = 0.0
    penalizer_kind = "log"    # or "lifetimes" (lifetimes' penalizer_coef)
    horizon = "52W"      # expected purchases, spend and CLV over this horizon
    discount_rate = 0.1  # annual
    interval_level = 0.9
    n_draws = 100

    [churn]
    horizon = "13W"
    n_snapshots = 4
    snapshot_step = "13W"
    calibration = "isotonic"
    refit = "auto"       # or true / false (see vipml.churn.ChurnModel)
    engagement = true
    reasons = 3
    alert_threshold = 0.5
    lgbm_params = { num_boost_round = 500 }

    [rfm]
    bins = 5

    [segments]
    n_segments = "auto"  # or an integer
    k_range = [3, 8]

    [tiers]
    thresholds = [0.05, 0.10]   # cumulative shares of customers, by CLV
    names = ["VIP", "Gold"]
    rest = "Standard"

    [gates]              # promote refuses a candidate worse than the champion on these
    metrics = ["churn_roc_auc", "churn_brier", "ltv_purchases_mae"]
    tolerance = 0.0

Unknown tables or keys, wrong types and impossible values raise
:class:`~vipml.errors.ConfigError` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from vipml.data.columns import Columns
from vipml.errors import ConfigError, DataValidationError
from vipml.features.cycle import parse_duration

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "GATE_METRICS",
    "ChurnConfig",
    "GateConfig",
    "LtvConfig",
    "PipelineConfig",
    "RfmConfig",
    "SegmentsConfig",
    "TiersConfig",
]

#: Metrics a promotion gate can compare, and whether higher (+1) or lower (-1) is better.
GATE_METRICS: dict[str, int] = {
    "churn_roc_auc": +1,
    "churn_pr_auc": +1,
    "churn_brier": -1,
    "churn_log_loss": -1,
    "ltv_purchases_mae": -1,
    "ltv_top10_capture": +1,
}
_WEEK = dt.timedelta(weeks=1)
_LTV_MODELS = ("bgnbd", "pareto_nbd", "modified_bgnbd")
#: Models of vipml.ltv that read another summary than the pipeline's daily purchase periods.
_LTV_ELSEWHERE = {
    "bgbb": "BG/BB counts purchases at discrete transaction opportunities (fit "
    "vipml.ltv.BetaGeoBetaBinom on vipml.features.discrete_summary)",
    "sbg": "sBG models contract renewals, which a purchase log does not record (fit "
    "vipml.ltv.ShiftedBetaGeometric on your contracts)",
}
_CALIBRATIONS = ("isotonic", "sigmoid", "none")


def _fail(key: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"config: {key} = {value!r} is not valid; expected {expected}.")


def _duration(key: str, value: Any) -> str:
    try:
        parse_duration(value, key)
    except (DataValidationError, TypeError, ValueError) as exc:
        raise _fail(key, value, 'a duration with a unit such as "13W" or "90D"') from exc
    return str(value)


def _number(key: str, value: Any, low: float, high: float, *, closed: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(key, value, "a number")
    inside = low <= value <= high if closed else low < value < high
    if not inside:
        bracket = "[]" if closed else "()"
        raise _fail(key, value, f"a number in {bracket[0]}{low}, {high}{bracket[1]}")
    return float(value)


def _integer(key: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _fail(key, value, f"an integer >= {low}")
    return int(value)


def _choice(key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise _fail(key, value, f"one of {list(allowed)}")
    return str(value)


@dataclass(frozen=True)
class LtvConfig:
    """Lifetime value: the purchase model, its horizon, discounting and intervals.

    ``purchase_model`` names the purchase model; ``model`` is its older name, still read (give
    one of them, or both equal). After validation both hold the model.
    """

    model: str = "bgnbd"
    purchase_model: str | None = None
    penalizer: float = 0.0
    penalizer_kind: str = "log"
    horizon: str = "52W"
    discount_rate: float = 0.1
    interval_level: float = 0.9
    n_draws: int = 100

    def __post_init__(self) -> None:
        chosen = self.model if self.purchase_model is None else self.purchase_model
        if self.purchase_model is not None and self.model not in ("bgnbd", self.purchase_model):
            raise _fail(
                "ltv.model",
                self.model,
                f"left out, or equal to ltv.purchase_model = {self.purchase_model!r} (model is "
                "the older name of purchase_model)",
            )
        key = "ltv.model" if self.purchase_model is None else "ltv.purchase_model"
        if chosen in _LTV_ELSEWHERE:
            raise ConfigError(
                f"config: {key} = {chosen!r} does not fit the pipeline, which values customers "
                f"from their daily purchase periods (the features online scoring keeps): "
                f"{_LTV_ELSEWHERE[chosen]}. Choose one of {list(_LTV_MODELS)}."
            )
        _choice(key, chosen, _LTV_MODELS)
        object.__setattr__(self, "model", chosen)
        object.__setattr__(self, "purchase_model", chosen)
        _number("ltv.penalizer", self.penalizer, 0.0, float("inf"))
        _choice("ltv.penalizer_kind", self.penalizer_kind, ("log", "lifetimes"))
        weeks = parse_duration(_duration("ltv.horizon", self.horizon), "ltv.horizon") / _WEEK
        if weeks != int(weeks):
            raise _fail("ltv.horizon", self.horizon, 'a whole number of weeks, such as "52W"')
        _number("ltv.discount_rate", self.discount_rate, 0.0, 1.0)
        _number("ltv.interval_level", self.interval_level, 0.0, 1.0, closed=False)
        _integer("ltv.n_draws", self.n_draws, 10)


@dataclass(frozen=True)
class ChurnConfig:
    """Churn model settings (see :class:`vipml.churn.ChurnModel`) and alerting."""

    horizon: str = "13W"
    n_snapshots: int = 4
    snapshot_step: str = "13W"
    calibration: str = "isotonic"
    refit: str | bool = "auto"
    engagement: bool = True
    reasons: int = 3
    alert_threshold: float = 0.5
    lgbm_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _duration("churn.horizon", self.horizon)
        _integer("churn.n_snapshots", self.n_snapshots, 2)
        _duration("churn.snapshot_step", self.snapshot_step)
        _choice("churn.calibration", self.calibration, _CALIBRATIONS)
        if not (isinstance(self.refit, bool) or self.refit == "auto"):
            raise _fail("churn.refit", self.refit, '"auto", true or false')
        if not isinstance(self.engagement, bool):
            raise _fail("churn.engagement", self.engagement, "true or false")
        _integer("churn.reasons", self.reasons, 0)
        _number("churn.alert_threshold", self.alert_threshold, 0.0, 1.0, closed=False)
        if not isinstance(self.lgbm_params, Mapping):
            raise _fail("churn.lgbm_params", self.lgbm_params, "a table of LightGBM parameters")


@dataclass(frozen=True)
class RfmConfig:
    """RFM scores: number of quantile levels."""

    bins: int = 5

    def __post_init__(self) -> None:
        _integer("rfm.bins", self.bins, 2)


@dataclass(frozen=True)
class SegmentsConfig:
    """Clustering settings (see :class:`vipml.segments.Segmenter`)."""

    n_segments: int | str = "auto"
    k_range: tuple[int, int] = (3, 8)

    def __post_init__(self) -> None:
        if self.n_segments != "auto":
            _integer("segments.n_segments", self.n_segments, 2)
        k = self.k_range
        if (
            not isinstance(k, list | tuple)
            or len(k) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in k)
            or not 2 <= k[0] <= k[1]
        ):
            raise _fail("segments.k_range", k, "two integers [low, high] with 2 <= low <= high")
        object.__setattr__(self, "k_range", (int(k[0]), int(k[1])))


@dataclass(frozen=True)
class TiersConfig:
    """VIP tiers by CLV: cumulative shares of customers and tier names, best first."""

    thresholds: tuple[float, ...] = (0.05, 0.10)
    names: tuple[str, ...] = ("VIP", "Gold")
    rest: str = "Standard"

    def __post_init__(self) -> None:
        shares, names = self.thresholds, self.names
        if not isinstance(shares, list | tuple) or not shares:
            raise _fail("tiers.thresholds", shares, "a list of cumulative shares in (0, 1]")
        for q in shares:
            _number("tiers.thresholds", q, 0.0, 1.0)
        if any(b <= a for a, b in zip(shares, shares[1:], strict=False)) or shares[0] <= 0:
            raise _fail("tiers.thresholds", shares, "strictly increasing shares in (0, 1]")
        if (
            not isinstance(names, list | tuple)
            or len(names) != len(shares)
            or not all(isinstance(n, str) and n for n in names)
        ):
            raise _fail("tiers.names", names, f"{len(shares)} names, one per threshold")
        if not isinstance(self.rest, str) or not self.rest or self.rest in names:
            raise _fail("tiers.rest", self.rest, "a name different from the tier names")
        object.__setattr__(self, "thresholds", tuple(float(q) for q in shares))
        object.__setattr__(self, "names", tuple(names))


@dataclass(frozen=True)
class GateConfig:
    """What ``vipml promote`` compares: metrics (see :data:`GATE_METRICS`) and a tolerance."""

    metrics: tuple[str, ...] = ("churn_roc_auc", "churn_brier", "ltv_purchases_mae")
    tolerance: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.metrics, list | tuple):
            raise _fail("gates.metrics", self.metrics, f"a list of {sorted(GATE_METRICS)}")
        for metric in self.metrics:
            _choice("gates.metrics", metric, tuple(sorted(GATE_METRICS)))
        _number("gates.tolerance", self.tolerance, 0.0, float("inf"))
        object.__setattr__(self, "metrics", tuple(self.metrics))


_SECTIONS: dict[str, type] = {
    "ltv": LtvConfig,
    "churn": ChurnConfig,
    "rfm": RfmConfig,
    "segments": SegmentsConfig,
    "tiers": TiersConfig,
    "gates": GateConfig,
}


def _section(name: str, cls: type, values: Any) -> Any:
    if not isinstance(values, Mapping):
        raise _fail(name, values, "a table of settings")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"config: unknown key(s) {[f'{name}.{k}' for k in unknown]}; the keys of [{name}] "
            f"are {sorted(known)}."
        )
    try:
        return cls(**values)
    except TypeError as exc:  # pragma: no cover - every field has a default
        raise ConfigError(f"config: [{name}] {exc}") from exc


@dataclass(frozen=True)
class PipelineConfig:
    """Everything :class:`vipml.VipPipeline` needs besides the data.

    Build one from a TOML file (:meth:`from_toml`), a mapping (:meth:`from_dict`) or
    directly; every setting has a default. :meth:`to_dict` gives the JSON-able form stored in
    bundles, and ``from_dict(config.to_dict()) == config``.

    Examples
    --------
    >>> config = PipelineConfig.from_dict({"ltv": {"horizon": "26W"}, "tiers": {
    ...     "thresholds": [0.01, 0.05], "names": ["Diamond", "Gold"]}})
    >>> config.ltv.horizon, config.tiers.names, config.churn.horizon
    ('26W', ('Diamond', 'Gold'), '13W')
    >>> PipelineConfig.from_dict(config.to_dict()) == config
    True
    >>> PipelineConfig.from_dict({"ltv": {"horizon": 52}})
    Traceback (most recent call last):
    ...
    vipml.errors.ConfigError: config: ltv.horizon = 52 is not valid; expected a duration ...
    """

    columns: Columns = field(default_factory=Columns)
    ltv: LtvConfig = field(default_factory=LtvConfig)
    churn: ChurnConfig = field(default_factory=ChurnConfig)
    rfm: RfmConfig = field(default_factory=RfmConfig)
    segments: SegmentsConfig = field(default_factory=SegmentsConfig)
    tiers: TiersConfig = field(default_factory=TiersConfig)
    gates: GateConfig = field(default_factory=GateConfig)
    random_state: int = 0

    def __post_init__(self) -> None:
        _integer("random_state", self.random_state, 0)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PipelineConfig:
        """Validate a mapping shaped like the TOML file (tables as nested mappings).

        Raises
        ------
        ConfigError
            Unknown tables or keys, wrong types, impossible values.
        """
        if not isinstance(values, Mapping):
            raise ConfigError(f"config must be a table of settings, got {type(values).__name__}.")
        known = {"columns", "random_state", *_SECTIONS}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"config: unknown table(s) or key(s) {unknown}; allowed: {sorted(known)}."
            )
        parts: dict[str, Any] = {
            name: _section(name, cls_, values[name])
            for name, cls_ in _SECTIONS.items()
            if name in values
        }
        if "columns" in values:
            mapping = values["columns"]
            if not isinstance(mapping, Mapping):
                raise _fail("columns", mapping, "a table of column names")
            try:
                parts["columns"] = _section("columns", Columns, mapping)
            except TypeError as exc:
                raise ConfigError(f"config: {exc}") from exc
        if "random_state" in values:
            parts["random_state"] = values["random_state"]
        return cls(**parts)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> PipelineConfig:
        """Read and validate a TOML configuration file.

        Raises
        ------
        ConfigError
            The file is missing, is not valid TOML, or holds an invalid setting.
        """
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"config: cannot read {file}: {exc.strerror}.") from exc
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config: {file} is not valid TOML: {exc}.") from exc
        return cls.from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain JSON-able values (tuples become lists)."""

        def plain(value: Any) -> Any:
            if isinstance(value, tuple | list):
                return [plain(v) for v in value]
            if isinstance(value, Mapping):
                return {k: plain(v) for k, v in sorted(value.items())}
            return value

        out: dict[str, Any] = {"random_state": self.random_state}
        for part in ("columns", *_SECTIONS):
            out[part] = plain(dataclasses.asdict(getattr(self, part)))
        return out
