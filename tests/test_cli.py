"""The command line: the README's main command, end to end, on the bundled data."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from vipml import __version__
from vipml.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    output = tmp_path_factory.mktemp("demo")
    result = runner.invoke(app, ["demo", "--output", str(output), "--customers", "300"])
    assert result.exit_code == 0, result.output
    return output, result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_demo_writes_every_table_and_summarises(demo):
    output, printed = demo
    rfm = pd.read_csv(output / "cdnow" / "rfm_summary.csv", index_col="customer_id")
    assert len(rfm) == 23570
    assert f"{len(rfm):,} customers" in printed
    for name in ["rfm_summary", "engagement", "training_snapshots", "transactions", "truth"]:
        path = output / "simulated" / f"{name}.csv"
        assert path.stat().st_size > 0
        assert str(path) in printed
    truth = pd.read_csv(output / "simulated" / "truth.csv")
    assert len(truth) == 300


def test_demo_values_cdnow_and_checks_the_holdout(demo):
    output, printed = demo
    assert "Holdout purchases by calibration frequency" in printed
    assert "7+" in printed and "spearman" in printed
    values = pd.read_csv(output / "cdnow" / "lifetime_value.csv", index_col="customer_id")
    assert len(values) == 23570
    assert not values.isna().any().any()
    assert values["p_alive"].between(0, 1).all()
    assert (values["clv_lower"] <= values["clv"]).all()
    assert (values["clv"] <= values["clv_upper"]).all()


def test_demo_segments_and_tiers_cdnow(demo):
    output, printed = demo
    assert "Value segments" in printed and "VIP tiers by CLV" in printed
    tiers = pd.read_csv(output / "cdnow" / "vip_tiers.csv", index_col="customer_id")
    counts = tiers["tier"].value_counts()
    assert counts["VIP"] == pytest.approx(0.05 * len(tiers), abs=2)
    segments = pd.read_csv(output / "cdnow" / "value_segments.csv", index_col="customer_id")
    assert segments["segment_name"].nunique() == 5
