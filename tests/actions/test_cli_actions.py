"""``vipml plan`` and ``vipml measure`` on a trained registry and a simulated campaign."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from vipml.actions import read_plan
from vipml.cli import ExitCode, app
from vipml.data import simulate_campaign

from .conftest import CUTOFF

runner = CliRunner()
CONFIG = """
[churn]
lgbm_params = { num_boost_round = 30, num_threads = 1 }
n_snapshots = 2
[ltv]
n_draws = 10
[segments]
n_segments = 4
"""


def vipml(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, shop):
    root = tmp_path_factory.mktemp("campaign")
    shop.transactions.to_parquet(root / "tx.parquet")
    (root / "config.toml").write_text(CONFIG)
    code, out = vipml(
        "train",
        root / "tx.parquet",
        "--cutoff",
        CUTOFF,
        "--config",
        root / "config.toml",
        "--registry",
        root / "models",
    )
    assert code == 0, out
    return root


def test_plan_then_measure(workspace, shop):
    root = workspace
    (root / "suppress.csv").write_text("customer_id\nC000001\nC000002\n")
    code, out = vipml(
        "plan",
        root / "tx.parquet",
        "--budget",
        3000,
        "-o",
        root / "plan.parquet",
        "--holdout",
        0.4,
        "--window",
        "8W",
        "--cost",
        "retention_offer=12",
        "--suppress",
        root / "suppress.csv",
        "--registry",
        root / "models",
        "--report",
        root / "plan.html",
    )
    assert code == 0, out
    assert "contacts" in out and "held out" in out and "of 3,000.00" in out
    plan = read_plan(root / "plan.parquet")
    assert plan.summary["spent"] <= 3000 and plan.summary["window_days"] == 56.0
    assert not {"C000001", "C000002"} & set(plan.table.index)
    assert (plan.table.loc[plan.table["action"] == "retention_offer", "cost"] == 12.0).all()
    assert "Campaign plan" in (root / "plan.html").read_text()
    # the campaign happens: the treated customers respond in the simulated shop
    campaign = simulate_campaign(shop, plan.treated.index, CUTOFF, "8W", random_state=2)
    campaign.transactions.to_parquet(root / "after.parquet")
    code, out = vipml(
        "measure",
        root / "plan.parquet",
        root / "after.parquet",
        "-o",
        root / "effect.csv",
        "--report",
        root / "effect.html",
    )
    assert code == 0, out
    assert "all customers revenue" in out and "ROI" in out
    effect = pd.read_csv(root / "effect.csv")
    assert {"dimension", "group", "metric", "effect", "roi"} <= set(effect.columns)
    assert "Campaign effect" in (root / "effect.html").read_text()


def test_measure_refuses_what_it_cannot_measure(workspace):
    root = workspace
    code, out = vipml(
        "plan",
        root / "tx.parquet",
        "--budget",
        50,
        "-o",
        root / "tiny.parquet",
        "--registry",
        root / "models",
    )
    assert code == 0, out
    code, out = vipml("measure", root / "tiny.parquet", root / "tx.parquet", "--window", "8W")
    assert code == ExitCode.BAD_INPUT and "cannot be measured" in out
    code, out = vipml("measure", root / "missing.parquet", root / "tx.parquet")
    assert code == ExitCode.BAD_INPUT and "no such plan" in out
    code, out = vipml(
        "plan",
        root / "tx.parquet",
        "--budget",
        50,
        "-o",
        root / "p.parquet",
        "--cost",
        "oops",
        "--registry",
        root / "models",
    )
    assert code == ExitCode.BAD_INPUT and "ACTION=AMOUNT" in out
