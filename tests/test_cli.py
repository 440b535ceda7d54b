"""The command line: the README's main command, end to end, on the bundled data."""

import pandas as pd
from typer.testing import CliRunner

from vipml import __version__
from vipml.cli import app

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_demo_writes_every_table_and_summarises(tmp_path):
    result = runner.invoke(app, ["demo", "--output", str(tmp_path), "--customers", "300"])
    assert result.exit_code == 0, result.output
    rfm = pd.read_csv(tmp_path / "cdnow" / "rfm_summary.csv", index_col="customer_id")
    assert len(rfm) == 23570
    assert f"{len(rfm):,} customers" in result.output
    for name in ["rfm_summary", "engagement", "training_snapshots", "transactions", "truth"]:
        path = tmp_path / "simulated" / f"{name}.csv"
        assert path.stat().st_size > 0
        assert str(path) in result.output
    truth = pd.read_csv(tmp_path / "simulated" / "truth.csv")
    assert len(truth) == 300


def test_demo_values_cdnow_and_checks_the_holdout(tmp_path):
    result = runner.invoke(app, ["demo", "--output", str(tmp_path), "--customers", "300"])
    assert result.exit_code == 0, result.output
    assert "Holdout purchases by calibration frequency" in result.output
    assert "7+" in result.output and "spearman" in result.output
    values = pd.read_csv(tmp_path / "cdnow" / "lifetime_value.csv", index_col="customer_id")
    assert values["p_alive"].between(0, 1).all()
    valued = values.dropna(subset=["clv"])
    assert len(valued) >= len(values) - 1
    assert (valued["clv_lower"] <= valued["clv"]).all()
    assert (valued["clv"] <= valued["clv_upper"]).all()
