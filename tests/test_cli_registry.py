"""The command line against a registry: train, score, evaluate, promote, list, and faults."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from vipml.cli import ExitCode, app
from vipml.data import simulate
from vipml.registry import Registry

runner = CliRunner()
CUTOFF = "2025-06-30"
CONFIG = """
[churn]
lgbm_params = { num_boost_round = 40 }
[ltv]
n_draws = 20
[segments]
n_segments = 4
"""


def vipml(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def train(workspace, registry, config):
    """``vipml train`` on the workspace's simulated logs at the cutoff."""
    return vipml(
        "train",
        workspace / "tx.parquet",
        "--events",
        workspace / "ev.parquet",
        "--cutoff",
        CUTOFF,
        "--config",
        config,
        "--registry",
        registry,
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    shop = simulate(1000, "2024-01-01", "2025-12-31", random_state=5)
    shop.transactions.to_parquet(root / "tx.parquet")
    shop.transactions.to_csv(root / "tx.csv", index=False)
    shop.events.to_parquet(root / "ev.parquet")
    (root / "config.toml").write_text(CONFIG)
    return root


@pytest.fixture(scope="module")
def trained(workspace):
    registry = workspace / "models"
    code, out = train(workspace, registry, workspace / "config.toml")
    assert code == 0, out
    version = Registry(registry).champion()
    assert version is not None and f"champion: {version}" in out
    return registry, version, out


def test_train_publishes_evaluates_and_promotes_the_first_version(trained):
    registry, version, out = trained
    assert "holdout metrics" in out and "churn_roc_auc" in out
    manifest = json.loads((registry / version / "manifest.json").read_text())
    assert manifest["metadata"]["metrics"]["churn_roc_auc"] > 0.7
    assert manifest["metadata"]["inputs"]["transactions"]["name"] == "tx.parquet"
    assert manifest["metadata"]["config"]["churn"]["lgbm_params"] == {"num_boost_round": 40}


def test_train_is_idempotent(trained, workspace):
    registry, version, _ = trained
    before = {p: p.read_bytes() for p in (registry / version).rglob("*") if p.is_file()}
    code, out = train(workspace, registry, workspace / "config.toml")
    assert code == 0, out
    assert f"version {version}" in out and "already the champion" in out
    assert Registry(registry).versions() == [version]
    after = {p: p.read_bytes() for p in (registry / version).rglob("*") if p.is_file()}
    assert after == before


@pytest.mark.parametrize("pickle", [True, False])
def test_score_writes_one_row_per_customer(trained, workspace, tmp_path, pickle):
    registry, version, _ = trained
    output = tmp_path / "scores.parquet"
    flag = "--pickle" if pickle else "--no-pickle"
    code, out = vipml(
        "score",
        workspace / "tx.csv",
        "--events",
        workspace / "ev.parquet",
        "--registry",
        registry,
        "-o",
        output,
        flag,
    )
    assert code == 0, out
    scores = pd.read_parquet(output)
    assert scores.index.is_unique and len(scores) > 900
    assert scores["churn_probability"].between(0, 1).all()
    assert version in out


def test_list_and_evaluate(trained, workspace):
    registry, version, _ = trained
    code, out = vipml("list", "--registry", registry)
    assert code == 0 and f"{version} *" in out
    code, out = vipml(
        "evaluate",
        workspace / "tx.parquet",
        "--events",
        workspace / "ev.parquet",
        "--at",
        CUTOFF,
        "--registry",
        registry,
    )
    assert code == 0, out
    assert "churn_roc_auc" in out and "(champion)" in out


def test_a_worse_candidate_is_published_but_not_promoted(trained, workspace, tmp_path):
    registry, champion, _ = trained
    weak = tmp_path / "weak.toml"
    weak.write_text(
        "[churn]\nlgbm_params = { num_boost_round = 1, learning_rate = 0.001 }\n"
        "[gates]\nmetrics = ['churn_brier']\n[ltv]\nn_draws = 20\n"
    )
    code, out = train(workspace, registry, weak)
    assert code == ExitCode.GATE_FAILED, out
    reg = Registry(registry)
    candidate = next(v for v in reg.versions() if v != champion)
    assert "not promoted" in out and reg.champion() == champion
    code, out = vipml("promote", candidate, "--registry", registry)
    assert code == ExitCode.BAD_INPUT and "--force" in out
    code, out = vipml(
        "promote",
        candidate,
        "--registry",
        registry,
        "--transactions",
        workspace / "tx.parquet",
        "--events",
        workspace / "ev.parquet",
        "--at",
        CUTOFF,
    )
    assert code == ExitCode.GATE_FAILED and "churn_brier" in out
    assert reg.champion() == champion
    code, out = vipml("promote", candidate, "--registry", registry, "--force")
    assert code == 0 and reg.champion() == candidate
    code, out = vipml("promote", champion, "--registry", registry, "--force")
    assert code == 0 and reg.champion() == champion


def test_bad_input_gives_a_message_and_an_exit_code(workspace, tmp_path):
    broken = tmp_path / "tx.parquet"
    broken.write_bytes((workspace / "tx.parquet").read_bytes()[:500])
    code, out = vipml("train", broken, "--cutoff", CUTOFF, "--registry", tmp_path / "m")
    assert code == ExitCode.BAD_INPUT
    assert "not read parquet" in out.lower() and "Traceback" not in out
    text = tmp_path / "tx.csv"
    text.write_text("customer_id,timestamp,amount\nA,yesterday,3.5\n")
    code, out = vipml("train", text, "--cutoff", CUTOFF, "--registry", tmp_path / "m")
    assert code == ExitCode.BAD_INPUT and "'timestamp'" in out and "yesterday" in out
    code, out = vipml("score", text, "-o", tmp_path / "s.csv", "--registry", tmp_path / "none")
    assert code == ExitCode.BAD_MODEL and "no champion" in out


def test_a_tampered_bundle_is_refused(trained, workspace, tmp_path):
    registry, version, _ = trained
    copy = tmp_path / "models"
    copy.mkdir()
    (copy / version).mkdir()
    for p in (registry / version).rglob("*"):
        if p.is_file():
            target = copy / version / p.relative_to(registry / version)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(p.read_bytes())
    booster = next((copy / version / "lightgbm").glob("*.txt"))
    text = booster.read_text()
    at = text.index("leaf_value=") + len("leaf_value=") + 3  # a digit of the first leaf
    digit = "1" if text[at] != "1" else "2"
    booster.write_text(text[:at] + digit + text[at + 1 :])  # same size, other bytes
    code, out = vipml(
        "score",
        workspace / "tx.parquet",
        "--events",
        workspace / "ev.parquet",
        "--model",
        version,
        "--registry",
        copy,
        "-o",
        tmp_path / "s.csv",
    )
    assert code == ExitCode.BAD_MODEL and "sha256" in out


def _train_process(workspace, registry):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vipml",
            "--log-json",
            "train",
            str(workspace / "tx.parquet"),
            "--events",
            str(workspace / "ev.parquet"),
            "--cutoff",
            CUTOFF,
            "--config",
            str(workspace / "config.toml"),
            "--registry",
            str(registry),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_training_is_refused_by_the_lock(workspace, tmp_path):
    registry = tmp_path / "models"
    with Registry(registry).lock():
        process = _train_process(workspace, registry)
        _, err = process.communicate(timeout=120)
    assert process.returncode == ExitCode.REGISTRY_BUSY
    assert "busy" in err and str(os.getpid()) in err


def test_a_killed_training_leaves_the_registry_usable(trained, workspace, tmp_path):
    registry, champion, _ = trained
    copy = tmp_path / "models"
    subprocess.run(["cp", "-r", str(registry), str(copy)], check=True)
    process = _train_process(workspace, copy)
    deadline = time.monotonic() + 120
    for line in process.stderr:  # JSON lines: kill once training is under way
        if "fitting" in line or time.monotonic() > deadline:
            break
    time.sleep(1.0)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    reg = Registry(copy)
    assert reg.champion() == champion
    assert reg.load().metadata["cutoff"].startswith(CUTOFF)
    with reg.lock():  # the dead process's lock is gone
        pass
