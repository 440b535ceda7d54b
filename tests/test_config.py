"""Pipeline configuration: TOML in, validated settings out, clear errors."""

import pytest

from vipml.config import GATE_METRICS, PipelineConfig
from vipml.errors import ConfigError

FULL = """
random_state = 7

[columns]
customer_id = "user"
timestamp = "ordered_at"
amount = "revenue"

[ltv]
model = "pareto_nbd"
penalizer = 0.01
horizon = "26W"
discount_rate = 0.08
interval_level = 0.8
n_draws = 50

[churn]
horizon = "8W"
n_snapshots = 3
snapshot_step = "4W"
calibration = "sigmoid"
refit = true
engagement = false
reasons = 2
alert_threshold = 0.7
lgbm_params = { num_boost_round = 100, num_leaves = 7 }

[rfm]
bins = 4

[segments]
n_segments = 5
k_range = [3, 6]

[tiers]
thresholds = [0.01, 0.05, 0.2]
names = ["Diamond", "Gold", "Silver"]
rest = "Bronze"

[gates]
metrics = ["churn_roc_auc", "ltv_top10_capture"]
tolerance = 0.005
"""


def test_empty_file_gives_the_defaults(tmp_path):
    path = tmp_path / "empty.toml"
    path.write_text("")
    assert PipelineConfig.from_toml(path) == PipelineConfig()


def test_every_setting_is_read(tmp_path):
    path = tmp_path / "vipml.toml"
    path.write_text(FULL)
    config = PipelineConfig.from_toml(path)
    assert config.random_state == 7
    assert (config.columns.customer_id, config.columns.amount) == ("user", "revenue")
    assert config.columns.event_type == "event_type"  # unset keys keep their default
    assert (config.ltv.model, config.ltv.horizon, config.ltv.n_draws) == ("pareto_nbd", "26W", 50)
    assert config.churn.lgbm_params == {"num_boost_round": 100, "num_leaves": 7}
    assert config.churn.engagement is False and config.churn.refit is True
    assert config.segments.k_range == (3, 6)
    assert config.tiers.names == ("Diamond", "Gold", "Silver")
    assert config.gates.metrics == ("churn_roc_auc", "ltv_top10_capture")
    assert PipelineConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"ltv": {"horizon": "13"}}, "ltv.horizon = '13'"),
        ({"ltv": {"horizon": "90D"}}, "whole number of weeks"),
        ({"ltv": {"model": "bg"}}, "one of ['bgnbd', 'pareto_nbd', 'modified_bgnbd']"),
        ({"ltv": {"purchase_model": "bg"}}, "ltv.purchase_model = 'bg'"),
        ({"ltv": {"purchase_model": "bgbb"}}, "discrete transaction opportunities"),
        ({"ltv": {"model": "sbg"}}, "contract renewals"),
        ({"ltv": {"model": "pareto_nbd", "purchase_model": "modified_bgnbd"}}, "older name"),
        ({"ltv": {"penalizer_kind": "l2"}}, "ltv.penalizer_kind = 'l2'"),
        ({"ltv": {"discount_rate": -0.1}}, "ltv.discount_rate"),
        ({"ltv": {"n_draws": "100"}}, "ltv.n_draws = '100'"),
        ({"churn": {"calibration": "platt"}}, "churn.calibration"),
        ({"churn": {"refit": "always"}}, "churn.refit"),
        ({"churn": {"refit": 1}}, "churn.refit"),
        ({"churn": {"horizonn": "13W"}}, "unknown key(s) ['churn.horizonn']"),
        ({"churn": {"engagement": "yes"}}, "true or false"),
        ({"tiers": {"thresholds": [0.1, 0.05]}}, "strictly increasing"),
        ({"tiers": {"names": ["VIP"]}}, "2 names, one per threshold"),
        ({"tiers": {"rest": "VIP"}}, "tiers.rest"),
        ({"segments": {"k_range": [5, 3]}}, "segments.k_range"),
        ({"gates": {"metrics": ["accuracy"]}}, "gates.metrics = 'accuracy'"),
        ({"columns": {"customer": "id"}}, "columns.customer"),
        ({"colums": {}}, "unknown table(s) or key(s) ['colums']"),
        ({"random_state": -1}, "random_state"),
    ],
)
def test_bad_settings_are_named(values, fragment):
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_dict(values)
    assert fragment in str(info.value)


def test_unreadable_and_invalid_toml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        PipelineConfig.from_toml(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[ltv\nhorizon = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        PipelineConfig.from_toml(broken)


def test_gate_metrics_have_a_direction():
    assert set(GATE_METRICS.values()) == {-1, 1}
    assert PipelineConfig().gates.metrics


@pytest.mark.parametrize(
    "table",
    [
        {"model": "pareto_nbd"},
        {"purchase_model": "pareto_nbd"},
        {"model": "pareto_nbd", "purchase_model": "pareto_nbd"},
    ],
)
def test_purchase_model_and_its_old_name_model_choose_the_same(table):
    config = PipelineConfig.from_dict({"ltv": table})
    assert config.ltv.model == config.ltv.purchase_model == "pareto_nbd"
    assert PipelineConfig.from_dict(config.to_dict()) == config


def test_an_old_config_without_purchase_model_still_reads():
    config = PipelineConfig.from_dict({"ltv": {"model": "modified_bgnbd", "penalizer": 0.01}})
    assert config.ltv.purchase_model == "modified_bgnbd"
    assert config.ltv.penalizer_kind == "log"
