"""``vipml demo``: the whole job on bundled CDNOW and a simulated shop with engagement events."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

logger = logging.getLogger("vipml.cli")

CDNOW_CUTOFF, CDNOW_END = "1997-09-30", "1998-06-30"
SHOP_CUTOFF = "2025-06-30"


def _write(table: pd.DataFrame, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path)
    return f"  {path}  ({len(table):,} rows x {table.shape[1]} columns)"


def demo(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for the tables written.")
    ] = Path("vipml-demo"),
    customers: Annotated[
        int, typer.Option(help="Customers in the simulated shop.", min=100)
    ] = 5000,
    seed: Annotated[int, typer.Option(help="Seed of the simulated shop.")] = 0,
) -> None:
    """Run the whole job on bundled CDNOW and a simulated shop; write tables, models, scores, report.

    CDNOW (purchases only): RFM, lifetime value checked on the holdout, churn risk against its
    baselines, value segments and VIP tiers. The simulated shop (purchases and engagement
    events): the pipeline trained into a registry, customers scored, an HTML report.
    """
    from vipml.data import load_cdnow, simulate
    from vipml.features import (
        calibration_holdout,
        engagement_features,
        purchase_cycle_features,
        rfm_segments,
        rfm_summary,
        training_snapshots,
    )

    started = time.perf_counter()
    written: list[str] = []

    typer.echo(f"CDNOW: the bundled purchase log, cutoff {CDNOW_CUTOFF}, holdout to {CDNOW_END}")
    cdnow = load_cdnow()
    with warnings.catch_warnings():
        # CDNOW records purchases by day: 21 same-day, same-value rows are genuine repeats.
        warnings.filterwarnings("ignore", message=".*exact duplicate")
        rfm = rfm_summary(cdnow, CDNOW_CUTOFF, freq="D", time_unit="W")
        split = calibration_holdout(cdnow, CDNOW_CUTOFF, CDNOW_END, freq="D", time_unit="W")
        cycle = purchase_cycle_features(cdnow, CDNOW_CUTOFF)
    segments = rfm_segments(rfm)
    _print_rfm_overview(rfm, segments)
    values, report = _cdnow_lifetime_value(split)
    typer.echo("\n" + _indent(str(report)))
    value_segments, tiers = _cdnow_segments(cdnow, rfm, values, split)
    churn_table = _cdnow_churn(cdnow)
    folder = output / "cdnow"
    written += [
        _write(rfm, folder / "rfm_summary.csv"),
        _write(split, folder / "calibration_holdout.csv"),
        _write(segments, folder / "rfm_segments.csv"),
        _write(cycle, folder / "purchase_cycle.csv"),
        _write(values, folder / "lifetime_value.csv"),
        _write(value_segments, folder / "value_segments.csv"),
        _write(tiers, folder / "vip_tiers.csv"),
        _write(churn_table, folder / "churn_evaluation.csv"),
    ]

    typer.echo(f"\nSimulated shop: {customers:,} customers, 2024-2025, seed {seed}")
    shop = simulate(customers, "2024-01-01", "2025-12-31", random_state=seed)
    cutoff = SHOP_CUTOFF
    shop_rfm = rfm_summary(shop.transactions, cutoff, freq="D", time_unit="W")
    shop_segments = rfm_segments(shop_rfm)
    engagement = engagement_features(shop.events, cutoff)
    snapshots = training_snapshots(
        shop.transactions,
        shop.events,
        cutoffs=["2024-09-30", "2024-12-31", "2025-03-31", cutoff],
        horizon="13W",
    )
    folder = output / "simulated"
    written += [
        _write(shop.transactions, folder / "transactions.csv"),
        _write(shop.events, folder / "events.csv"),
        _write(shop.truth, folder / "truth.csv"),
        _write(shop_rfm, folder / "rfm_summary.csv"),
        _write(shop_segments, folder / "rfm_segments.csv"),
        _write(engagement, folder / "engagement.csv"),
        _write(snapshots, folder / "training_snapshots.csv"),
    ]
    _print_rfm_overview(shop_rfm, shop_segments)
    _print_recovery(shop_rfm, shop.purchase_params)
    churn_rate = snapshots.groupby(level="cutoff")["churned"].mean()
    typer.echo("  churned within 13 weeks, by snapshot cutoff:")
    typer.echo("    " + ", ".join(f"{c:%Y-%m-%d}: {r:.0%}" for c, r in churn_rate.items()))

    written += _shop_pipeline(shop, folder, output / "models")
    typer.echo("\nFiles written:")
    typer.echo("\n".join(written))
    typer.echo(f"\nDone in {time.perf_counter() - started:.1f} s.")


def _cdnow_churn(cdnow: pd.DataFrame) -> pd.DataFrame:
    """Churn risk at the CDNOW cutoff over 39 weeks, against every baseline on the holdout."""
    from vipml.churn import ChurnModel, evaluate

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*exact duplicate")
        model = ChurnModel(horizon="39W").fit(cdnow, cutoff=CDNOW_CUTOFF)
        table = evaluate(model, cdnow)
    typer.echo(
        f"\n  Churn risk: no purchase in the 39 weeks after {CDNOW_CUTOFF} "
        f"({table.attrs['churn_rate']:.0%} of customers); model trained in {model.mode_} mode "
        f"on {model.training_horizon_.days}-day labels. Time holdout:"
    )
    shown = table.drop(columns=[c for c in ("training",) if c in table.columns])
    typer.echo(_indent(shown.to_string(float_format=lambda v: f"{v:.3f}")))
    return table


def _shop_pipeline(shop: object, folder: Path, registry: Path) -> list[str]:
    """Train the pipeline on the shop's logs into a registry, score everyone, write a report."""
    from vipml.cli import train_and_publish
    from vipml.config import PipelineConfig
    from vipml.report import build_report, write_report

    logs = folder / "transactions.parquet", folder / "events.parquet"
    shop.transactions.to_parquet(logs[0])
    shop.events.to_parquet(logs[1])
    settings = PipelineConfig()
    typer.echo(f"\n  Pipeline trained at {SHOP_CUTOFF} into the registry {registry}:")

    def inputs() -> tuple[object, object, dict[str, object]]:
        return shop.transactions, shop.events, {"transactions": "simulated", "seed": "demo"}

    version, pipeline = train_and_publish(inputs, settings, SHOP_CUTOFF, registry, promote=True)
    scores = pipeline.score(shop.transactions, shop.events)
    scores_path = folder / "scores.parquet"
    scores.to_parquet(scores_path)
    tiers = scores["vip_tier"].value_counts()
    typer.echo(
        "  Scores: "
        + ", ".join(
            f"{name} {tiers.get(name, 0):,}"
            for name in (*settings.tiers.names, settings.tiers.rest)
        )
        + f"; mean churn probability {scores['churn_probability'].mean():.2f}"
    )
    top = scores.sort_values("clv", ascending=False).head(3)
    typer.echo(
        _indent(
            top[["clv", "churn_probability", "segment", "vip_tier", "reason_1"]].to_string(
                float_format=lambda v: f"{v:.2f}"
            )
        )
    )
    report_path = folder / "report.html"
    write_report(
        build_report(pipeline, shop.transactions, shop.events, at=pipeline.cutoff_), report_path
    )
    return [
        f"  {logs[0]}",
        f"  {logs[1]}",
        f"  {registry / version}  (model bundle, champion)",
        f"  {scores_path}  ({len(scores):,} customers scored)",
        f"  {report_path}  (HTML report: open it in a browser)",
    ]


def _cdnow_lifetime_value(split: pd.DataFrame) -> tuple[pd.DataFrame, object]:
    """BG/NBD and Gamma-Gamma on the calibration period, CLV with intervals, holdout check."""
    from vipml.ltv import BetaGeo, GammaGamma, customer_lifetime_value_interval, evaluate_holdout

    calibration = split[["frequency_cal", "recency_cal", "T_cal", "monetary_value_cal"]]
    calibration = calibration.rename(columns=lambda c: c.removesuffix("_cal"))
    purchases = BetaGeo().fit(calibration)
    # Gamma-Gamma learns from positive spend; repeat buyers whose repeat purchases net to $0
    # are scored (shrunk towards the population mean) but not fitted on.
    positive = (calibration["frequency"] > 0) & (calibration["monetary_value"] > 0)
    spend = GammaGamma().fit(calibration[positive])
    duration = float(split["duration_holdout"].iloc[0])
    typer.echo(
        "\n  BG/NBD on the calibration period: "
        + ", ".join(f"{k}={v:.3f}" for k, v in purchases.params_.items())
        + f" (log-likelihood {purchases.loglik_:,.1f})"
    )
    typer.echo(
        "  Gamma-Gamma on repeat buyers: "
        + ", ".join(f"{k}={v:.3f}" for k, v in spend.params_.items())
    )
    clv = customer_lifetime_value_interval(
        purchases, spend, calibration, horizon=duration, discount_rate=0.0, n_draws=200
    )
    values = pd.DataFrame(
        {
            "p_alive": purchases.p_alive(calibration),
            "expected_purchases": purchases.expected_purchases(calibration, duration),
            "expected_spend": spend.expected_spend(calibration),
            "clv": clv["estimate"],
            "clv_lower": clv["lower"],
            "clv_upper": clv["upper"],
        }
    )
    report = evaluate_holdout(purchases, split, spend_model=spend)
    return values, report


def _cdnow_segments(
    cdnow: pd.DataFrame, rfm: pd.DataFrame, values: pd.DataFrame, split: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Value segments and VIP tiers at the cutoff, checked against the holdout's revenue."""
    from vipml.segments import Segmenter, revenue_capture, vip_tiers

    revenue = cdnow[cdnow["timestamp"] <= CDNOW_CUTOFF].groupby("customer_id")["amount"].sum()
    features = rfm.assign(
        clv=values["clv"],
        churn_risk=1.0 - values["p_alive"],
        revenue=revenue,
    )
    segmenter = Segmenter(n_segments=5).fit(features)
    profile = segmenter.profile_
    shown = profile[["name", "n_customers", "revenue_share", "value_share", "mean_value"]]
    typer.echo("\n  Value segments (k-means on frequency, spend, recency and CLV):")
    typer.echo(_indent(shown.to_string(float_format=lambda v: f"{v:.3f}")))
    tiers = vip_tiers(values["clv"])
    realised = (split["frequency_holdout"] * split["monetary_value_holdout"]).rename("revenue")
    capture = revenue_capture({"CLV tiers": values["clv"], "past spend": revenue}, realised)
    typer.echo(
        "\n  VIP tiers by CLV: " + ", ".join(f"{k} {v:,}" for k, v in tiers.value_counts().items())
    )
    typer.echo("  Share of holdout revenue captured by the top customers:")
    typer.echo(_indent(capture.to_string(float_format=lambda v: f"{v:.1%}")))
    labelled = features.assign(
        segment=segmenter.labels_, segment_name=segmenter.labels_.map(segmenter.names_)
    )
    return labelled, tiers.to_frame()


def _print_recovery(rfm: pd.DataFrame, truth: dict[str, float]) -> None:
    from vipml.ltv import BetaGeo

    fitted = BetaGeo().fit(rfm)
    typer.echo(
        "  BG/NBD recovers the simulated parameters (true / fitted ± s.e.): "
        + ", ".join(
            f"{k} {truth[k]:.3f} / {v:.3f} ± {fitted.standard_errors_[k]:.3f}"
            for k, v in fitted.params_.items()
        )
    )


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _print_rfm_overview(rfm: pd.DataFrame, segments: pd.DataFrame) -> None:
    repeat = (rfm["frequency"] > 0).mean()
    typer.echo(
        f"  {len(rfm):,} customers, {repeat:.0%} with a repeat purchase, mean frequency "
        f"{rfm['frequency'].mean():.2f}, mean repeat spend {rfm['monetary_value'].mean():.2f}"
    )
    counts = segments["segment"].value_counts()
    typer.echo("  RFM segments: " + ", ".join(f"{name} {n:,}" for name, n in counts.items()))
