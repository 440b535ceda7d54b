"""The ``vipml`` command line: train, score, evaluate, promote, list, report and demo.

The only place in vipml that configures logging and prints. Errors end with a message on
stderr and a documented exit code (:class:`~vipml.cli._io.ExitCode`), never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from vipml._version import __version__
from vipml.cli._io import (
    EXIT_CODES_HELP,
    ExitCode,
    configure_logging,
    fail,
    file_sha256,
    guarded,
    read_table,
    stage,
    write_table,
)

app = typer.Typer(
    help="vipml: find, value and keep your most valuable customers.\n\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
)

RegistryOption = Annotated[
    Path, typer.Option("--registry", help="Model registry folder.", show_default=True)
]
EventsOption = Annotated[
    Path | None, typer.Option("--events", help="Engagement-event log (CSV or Parquet).")
]
ModelOption = Annotated[
    str, typer.Option("--model", help='Version to use, or "champion".', show_default=True)
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vipml {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
    log_json: Annotated[
        bool, typer.Option("--log-json", help="Log as JSON lines on stderr (for log shippers).")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """vipml: find, value and keep your most valuable customers."""
    configure_logging(verbose, log_json)


# -- shared steps -----------------------------------------------------------------------------


def _config(path: Path | None) -> Any:
    from vipml.config import PipelineConfig

    return PipelineConfig() if path is None else PipelineConfig.from_toml(path)


def _logs(transactions: Path, events: Path | None, config: Any) -> tuple[Any, Any]:
    timestamp = config.columns.timestamp
    with stage("reading the logs"):
        tx = read_table(transactions, "transactions", timestamp)
        ev = None if events is None else read_table(events, "events", timestamp)
    return tx, ev


def _load(registry: Path, model: str, allow_pickle: bool = True) -> tuple[str, Any]:
    from vipml import bundle
    from vipml.registry import Registry

    reg = Registry(registry)
    folder = reg.path(model)
    with stage(f"loading model {folder.name}"):
        return folder.name, bundle.load(folder, allow_pickle=allow_pickle)


def _metrics_table(rows: dict[str, dict[str, float]], metrics: list[str]) -> str:
    import pandas as pd

    table = pd.DataFrame(rows).reindex(metrics)
    return table.to_string(float_format=lambda v: f"{v:.4f}")


def _gate(candidate: dict[str, float], champion: dict[str, float], config: Any) -> list[str]:
    """The gate metrics on which the candidate is worse than the champion (beyond tolerance)."""
    from vipml.config import GATE_METRICS

    worse = []
    for metric in config.gates.metrics:
        sign = GATE_METRICS[metric]
        if sign * (candidate[metric] - champion[metric]) < -config.gates.tolerance:
            worse.append(metric)
    return worse


# -- commands ---------------------------------------------------------------------------------


@app.command()
@guarded
def train(
    transactions: Annotated[Path, typer.Argument(help="Transaction log (CSV or Parquet).")],
    cutoff: Annotated[str, typer.Option(help="Fit on the rows up to this date.")],
    events: EventsOption = None,
    config: Annotated[Path | None, typer.Option(help="Pipeline configuration (TOML).")] = None,
    registry: RegistryOption = Path("models"),
    promote: Annotated[
        bool,
        typer.Option(help="Promote the new version when it passes the gate (or is the first)."),
    ] = True,
) -> None:
    """Fit the whole pipeline at a cutoff and publish it to the registry.

    The registry stays locked from the start of training to publication, so a second
    training refuses to start. Training is idempotent: the same inputs and configuration give
    the same version, byte for byte. When the log reaches one churn horizon past the cutoff,
    the new version is evaluated on that holdout and its metrics are stored in the bundle.
    """
    settings = _config(config)

    def inputs() -> tuple[Any, Any, dict[str, Any]]:
        logs = _logs(transactions, events, settings)
        provenance = {
            "transactions": {"name": transactions.name, "sha256": file_sha256(transactions)}
        }
        if events is not None:
            provenance["events"] = {"name": events.name, "sha256": file_sha256(events)}
        return (*logs, provenance)

    train_and_publish(inputs, settings, cutoff, registry, promote=promote)


def train_and_publish(
    inputs: Any, settings: Any, cutoff: str, registry: Path, *, promote: bool
) -> tuple[str, Any]:
    """Lock the registry, read the inputs, fit, evaluate, publish and (maybe) promote.

    ``inputs()`` returns the transactions, the events (or None) and their provenance; it runs
    under the lock, so a second training is refused before it reads anything.
    """
    from vipml import VipPipeline, bundle
    from vipml.registry import Registry

    reg = Registry(registry)
    with reg.lock():
        tx, ev, provenance = inputs()
        with stage("fitting features, lifetime value, churn, segments and tiers"):
            pipeline = VipPipeline(settings).fit(tx, ev, cutoff=cutoff)
        metrics = _holdout_metrics(pipeline, tx, ev)
        with stage("publishing the bundle"):
            version = reg.publish(
                lambda folder: bundle.save(
                    pipeline, folder, metrics=metrics, metadata={"inputs": provenance}
                )
            )
        typer.echo(f"version {version}  ({reg.path(version)})")
        if metrics:
            typer.echo(
                "holdout metrics: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items()))
            )
        champion = reg.champion()
        if champion == version:
            typer.echo("already the champion")
        elif promote and champion is None:
            reg.promote(version)
            typer.echo(f"champion: {version} (the registry's first version)")
        elif promote and not metrics:
            typer.echo(
                f"not promoted: no holdout to compare with the champion {champion}; use "
                f"`vipml evaluate` and `vipml promote {version}`."
            )
        elif promote:
            _, incumbent = _load(registry, champion)
            with stage(f"evaluating the champion {champion} on the same holdout"):
                reference = incumbent.evaluate(tx, ev, at=pipeline.cutoff_)
            worse = _gate(metrics, reference, settings)
            typer.echo(
                _metrics_table(
                    {version: metrics, champion: reference}, list(settings.gates.metrics)
                )
            )
            if worse:
                raise fail(
                    f"{version} is published but not promoted: worse than the champion "
                    f"{champion} on {', '.join(worse)}.",
                    ExitCode.GATE_FAILED,
                )
            reg.promote(version)
            typer.echo(f"champion: {version} (passed the gate against {champion})")
    return version, pipeline


def _holdout_metrics(pipeline: Any, tx: Any, ev: Any) -> dict[str, float]:
    """Metrics on the churn horizon after the cutoff, when the log reaches that far."""
    from vipml.errors import DataValidationError

    try:
        with stage("evaluating on the holdout after the cutoff"):
            return pipeline.evaluate(tx, ev, at=pipeline.cutoff_)
    except DataValidationError as exc:
        typer.echo(f"no holdout metrics: {exc}", err=True)
        return {}


@app.command()
@guarded
def score(
    transactions: Annotated[Path, typer.Argument(help="Transaction log (CSV or Parquet).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Scores file (.parquet or .csv).")],
    events: EventsOption = None,
    at: Annotated[
        str | None, typer.Option(help="Scoring date (default: the model's cutoff).")
    ] = None,
    model: ModelOption = "champion",
    registry: RegistryOption = Path("models"),
    pickle: Annotated[
        bool,
        typer.Option(help="Allow unpickling the bundle (--no-pickle: JSON and LightGBM only)."),
    ] = True,
) -> None:
    """Score every customer with a saved model: one row per customer."""
    version, pipeline = _load(registry, model, allow_pickle=pickle)
    tx, ev = _logs(transactions, events, pipeline.config_)
    with stage("scoring"):
        scores = pipeline.score(tx, ev, at=at)
    write_table(scores, output)
    typer.echo(f"scored {len(scores):,} customers with model {version}: {output}")


@app.command()
@guarded
def evaluate(
    transactions: Annotated[Path, typer.Argument(help="Transaction log covering the holdout.")],
    at: Annotated[str, typer.Option(help="Holdout start: score at this date.")],
    events: EventsOption = None,
    candidate: Annotated[
        str | None, typer.Option(help="Version to compare with the champion.")
    ] = None,
    horizon: Annotated[
        str | None, typer.Option(help='Holdout length, e.g. "13W" (default: churn horizon).')
    ] = None,
    registry: RegistryOption = Path("models"),
) -> None:
    """Compare a candidate with the champion on the same time holdout."""
    from vipml.config import GATE_METRICS

    results, settings = _evaluate_versions(registry, candidate, transactions, events, at, horizon)
    rows = list(GATE_METRICS) + ["churn_ece", "n_customers", "churn_rate"]
    typer.echo(_metrics_table({name: m for name, (m, _) in results.items()}, rows))
    if len(results) == 2:
        (first, (a, _)), (second, (b, _)) = results.items()
        worse = _gate(a, b, settings)
        verdict = f"worse on {', '.join(worse)}" if worse else "passes the gate"
        typer.echo(f"\n{first} vs {second}: {verdict}")


def _evaluate_versions(
    registry: Path,
    candidate: str | None,
    transactions: Path,
    events: Path | None,
    at: str,
    horizon: str | None,
) -> tuple[dict[str, tuple[dict[str, float], Any]], Any]:
    from vipml.registry import Registry

    reg = Registry(registry)
    names = [v for v in (candidate, reg.champion()) if v is not None]
    if not names:
        raise fail(
            "nothing to evaluate: give --candidate or promote a champion first.", ExitCode.BAD_MODEL
        )
    results: dict[str, tuple[dict[str, float], Any]] = {}
    logs: tuple[Any, Any] | None = None
    settings = None
    for name in dict.fromkeys(names):
        version, pipeline = _load(registry, name)
        settings = settings or pipeline.config_
        if logs is None:
            logs = _logs(transactions, events, pipeline.config_)
        label = f"{version} (champion)" if version == reg.champion() else version
        with stage(f"evaluating {version}"):
            results[label] = (pipeline.evaluate(*logs, at=at, horizon=horizon), pipeline)
    return results, settings


@app.command()
@guarded
def promote(
    version: Annotated[str, typer.Argument(help="Version to make the champion.")],
    transactions: Annotated[
        Path | None, typer.Option(help="Log for the gate's holdout comparison.")
    ] = None,
    events: EventsOption = None,
    at: Annotated[str | None, typer.Option(help="Holdout start of the comparison.")] = None,
    horizon: Annotated[str | None, typer.Option(help="Holdout length.")] = None,
    force: Annotated[bool, typer.Option(help="Promote without the gate.")] = False,
    registry: RegistryOption = Path("models"),
) -> None:
    """Make a version the champion, unless it is worse than the champion on the gate metrics.

    The gate compares both models on the same time holdout (``--transactions`` and ``--at``)
    using the candidate's configured metrics and tolerance; ``--force`` skips it.
    """
    from vipml.registry import Registry

    reg = Registry(registry)
    reg.path(version)  # an unknown version fails before any work
    champion = reg.champion()
    if champion is not None and champion != version and not force:
        if transactions is None or at is None:
            raise fail(
                f"the champion is {champion}: give --transactions and --at to compare "
                f"{version} with it on a time holdout, or --force to promote without the gate.",
                ExitCode.BAD_INPUT,
            )
        results, _ = _evaluate_versions(registry, version, transactions, events, at, horizon)
        (cand_metrics, candidate), (champ_metrics, _) = results.values()
        settings = candidate.config_
        worse = _gate(cand_metrics, champ_metrics, settings)
        typer.echo(
            _metrics_table({k: m for k, (m, _) in results.items()}, list(settings.gates.metrics))
        )
        if worse:
            raise fail(
                f"{version} is worse than the champion {champion} on {', '.join(worse)} "
                f"(tolerance {settings.gates.tolerance}); not promoted. Use --force to "
                "promote anyway.",
                ExitCode.GATE_FAILED,
            )
    reg.promote(version)
    typer.echo(f"champion: {version}")


@app.command("list")
@guarded
def list_versions(registry: RegistryOption = Path("models")) -> None:
    """The registry's versions: cutoff, customers, holdout metrics, the champion marked."""
    import pandas as pd

    from vipml.bundle import load_bundle
    from vipml.registry import Registry

    reg = Registry(registry)
    champion = reg.champion()
    rows = []
    for version in reg.versions():
        try:
            meta = load_bundle(reg.path(version), allow_pickle=False).metadata
        except Exception as exc:  # a damaged version is listed, not fatal
            rows.append({"version": version, "status": f"damaged: {exc}"[:60]})
            continue
        metrics = meta.get("metrics", {})
        rows.append(
            {
                "version": version + (" *" if version == champion else ""),
                "cutoff": str(meta.get("cutoff", ""))[:10],
                "customers": meta.get("summary", {}).get("n_customers"),
                "churn_roc_auc": metrics.get("churn_roc_auc"),
                "churn_brier": metrics.get("churn_brier"),
                "ltv_purchases_mae": metrics.get("ltv_purchases_mae"),
            }
        )
    if not rows:
        typer.echo(f"registry {registry} has no versions yet")
        return
    typer.echo(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    typer.echo("* champion")


@app.command()
@guarded
def report(
    transactions: Annotated[Path, typer.Argument(help="Transaction log covering the holdout.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")],
    events: EventsOption = None,
    at: Annotated[
        str | None, typer.Option(help="Holdout start (default: the model's cutoff).")
    ] = None,
    horizon: Annotated[str | None, typer.Option(help="Holdout length.")] = None,
    model: ModelOption = "champion",
    registry: RegistryOption = Path("models"),
) -> None:
    """Write a self-contained HTML report: holdout, calibration, segments, tiers, migration."""
    from vipml.report import build_report, write_report

    version, pipeline = _load(registry, model)
    tx, ev = _logs(transactions, events, pipeline.config_)
    with stage("building the report"):
        html = build_report(pipeline, tx, ev, at=at or pipeline.cutoff_, horizon=horizon)
    write_report(html, output)
    typer.echo(f"report for model {version}: {output}")


from vipml.cli.demo import demo  # noqa: E402  (registers `vipml demo` on app)

app.command()(guarded(demo))

from vipml.cli.serve import serve  # noqa: E402  (registers `vipml serve` on app)

app.command()(guarded(serve))

from vipml.cli import actions as _actions  # noqa: E402, F401  (registers `vipml plan` and `vipml measure`)

__all__ = ["ExitCode", "app"]
