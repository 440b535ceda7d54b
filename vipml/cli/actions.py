"""``vipml plan`` and ``vipml measure``: a budgeted campaign from a saved model, and its effect."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from vipml.cli import EventsOption, ModelOption, RegistryOption, app
from vipml.cli._io import guarded, stage, write_table
from vipml.errors import DataValidationError


def _costs(values: list[str] | None) -> dict[str, float]:
    costs: dict[str, float] = {}
    for item in values or []:
        action, sep, amount = item.partition("=")
        try:
            if not sep or not action.strip():
                raise ValueError
            costs[action.strip()] = float(amount)
        except ValueError:
            raise DataValidationError(
                f"--cost {item!r}: write ACTION=AMOUNT, e.g. --cost retention_offer=12.5."
            ) from None
    return costs


def _suppressed(path: Path | None) -> Any:
    if path is None:
        return None
    import pandas as pd

    from vipml.actions import SuppressionList

    if not path.is_file():
        raise DataValidationError(f"--suppress: no such file {path}.")
    ids = pd.read_csv(path, dtype=str).iloc[:, 0].dropna().str.strip()
    return SuppressionList(ids, reason=f"on the suppression list {path.name}")


def _playbook(path: Path | None) -> Any:
    if path is None:
        return None
    import pandas as pd

    from vipml.actions import Playbook

    if not path.is_file():
        raise DataValidationError(f"--playbook: no such file {path}.")
    return Playbook.from_frame(pd.read_csv(path))


@app.command()
@guarded
def plan(
    transactions: Annotated[Path, typer.Argument(help="Transaction log (CSV or Parquet).")],
    budget: Annotated[float, typer.Option(help="Most the contacts may cost.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Plan file (.parquet, or .csv for a CRM).")
    ],
    events: EventsOption = None,
    at: Annotated[
        str | None, typer.Option(help="Scoring date, the campaign's start (default: cutoff).")
    ] = None,
    holdout: Annotated[
        float, typer.Option(help="Share of each action's customers held out to measure it.")
    ] = 0.1,
    window: Annotated[
        str | None,
        typer.Option(help='Response window to measure, e.g. "8W" (default: churn horizon).'),
    ] = None,
    cost: Annotated[
        list[str] | None,
        typer.Option(help="Cost per contact of an action, ACTION=AMOUNT (repeatable)."),
    ] = None,
    playbook: Annotated[
        Path | None, typer.Option(help="Playbook table (CSV, as Playbook.to_frame writes it).")
    ] = None,
    suppress: Annotated[
        Path | None, typer.Option(help="CSV whose first column lists ids never to contact.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the holdout draw.")] = 0,
    report: Annotated[
        Path | None, typer.Option(help="Also write the plan as an HTML page.")
    ] = None,
    model: ModelOption = "champion",
    registry: RegistryOption = Path("models"),
    pickle: Annotated[
        bool,
        typer.Option(help="Allow unpickling the bundle (--no-pickle: JSON and LightGBM only)."),
    ] = True,
) -> None:
    """Plan a campaign within a budget: who to contact, with what, when; a holdout to measure it.

    Scores every customer with a saved model, gives each the playbook's next best action and
    keeps the contacts worth most per unit of cost until the budget is spent; a random share
    of each action's customers is held out (not contacted) so `vipml measure` can tell what
    the campaign changed.
    """
    from vipml.actions import plan_campaign
    from vipml.cli import _load, _logs

    version, pipeline = _load(registry, model, allow_pickle=pickle)
    tx, ev = _logs(transactions, events, pipeline.config_)
    moment = pipeline.cutoff_ if at is None else at
    with stage("scoring"):
        scores = pipeline.score(tx, ev, at=moment)
    with stage("planning"):
        result = plan_campaign(
            scores,
            budget,
            costs=_costs(cost),
            playbook=_playbook(playbook),
            tiers=pipeline,
            at=moment,
            holdout=holdout,
            window=window or pipeline.config_.churn.horizon,
            contact_policy=_suppressed(suppress),
            random_state=seed,
        )
    _write_plan(result, output)
    s = result.summary
    typer.echo(
        f"plan with model {version}: {s['n_treated']:,} contacts and {s['n_holdout']:,} held "
        f"out; spent {s['spent']:,.2f} of {s['budget']:,.2f}; expected net value "
        f"{s['expected_net_value']:,.2f} (greedy list {s['greedy_value']:,.2f}, no plan of "
        f"that size above {s['upper_bound']:,.2f}): {output}"
    )
    for action, counts in s["by_action"].items():
        typer.echo(f"  {action}: {counts['treated']:,} contacted, {counts['holdout']:,} held out")
    if s["withheld"]:
        for reason, count in s["withheld"].items():
            typer.echo(f"  withheld {count:,}: {reason}")
    if report is not None:
        from vipml.report import campaign_report, write_report

        write_report(campaign_report(result), report)
        typer.echo(f"plan page: {report}")


def _write_plan(result: Any, output: Path) -> None:
    suffix = output.suffix.lower()
    output.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        result.to_parquet(output)
    elif suffix == ".csv":
        write_table(result.table, output)
    else:
        raise DataValidationError(f"--output {output}: use a .parquet or .csv file name.")


def _read_plan(path: Path) -> Any:
    import pandas as pd

    from vipml.actions import read_plan

    if not path.is_file():
        raise DataValidationError(f"no such plan file {path}.")
    if path.suffix.lower() == ".csv":
        table = pd.read_csv(path, index_col=0, parse_dates=["contact_date", "scored_at"])
        return table
    return read_plan(path)


@app.command()
@guarded
def measure(
    plan_file: Annotated[Path, typer.Argument(help="Plan written by `vipml plan`.")],
    transactions: Annotated[
        Path, typer.Argument(help="Transaction log covering the response window.")
    ],
    window: Annotated[
        str | None, typer.Option(help='Response window, e.g. "8W" (default: the plan\'s).')
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="Campaign start (default: the plan's scoring date).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Effect table (.parquet or .csv).")
    ] = None,
    min_group: Annotated[
        int, typer.Option(help="Fewest treated and held-out customers a group needs.", min=1)
    ] = 30,
    level: Annotated[float, typer.Option(help="Level of the bootstrap intervals.")] = 0.9,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    clv: Annotated[
        bool, typer.Option(help="Also measure CLV at the window's end with the saved model.")
    ] = False,
    events: EventsOption = None,
    report: Annotated[
        Path | None, typer.Option(help="Also write the plan and its effect as an HTML page.")
    ] = None,
    model: ModelOption = "champion",
    registry: RegistryOption = Path("models"),
) -> None:
    """Measure a campaign: contacted against held-out customers, with intervals and ROI."""
    from vipml.actions import CampaignPlan, campaign_effect
    from vipml.cli import _load
    from vipml.cli._io import read_table

    planned = _read_plan(plan_file)
    pipeline = None
    columns = None
    if clv:
        _, pipeline = _load(registry, model)
        columns = pipeline.config_.columns
    timestamp = columns.timestamp if columns is not None else "timestamp"
    with stage("reading the logs"):
        tx = read_table(transactions, "transactions", timestamp)
        ev = None if events is None else read_table(events, "events", timestamp)
    with stage("measuring"):
        effect = campaign_effect(
            planned,
            tx,
            ev,
            window=window,
            start=start,
            pipeline=pipeline,
            columns=columns,
            level=level,
            min_group=min_group,
            random_state=seed,
        )
    shown = effect[effect.index.get_level_values("dimension").isin(["all", "action"])]
    typer.echo(_effect_text(shown, level))
    flagged = int((~effect["reliable"]).sum() // effect.index.get_level_values("metric").nunique())
    if flagged:
        typer.echo(f"{flagged} group(s) too small to measure (see the table's note column)")
    if output is not None:
        write_table(effect.reset_index(), output)
        typer.echo(f"effect table: {output}")
    if report is not None:
        from vipml.report import campaign_report, write_report

        if not isinstance(planned, CampaignPlan):
            planned = CampaignPlan(table=planned, withheld=planned.iloc[:0, :0], summary={})
        write_report(campaign_report(planned, effect), report)
        typer.echo(f"campaign page: {report}")


def _effect_text(effect: Any, level: float) -> str:
    import numpy as np

    lines = [f"effect per contacted customer, {level:.0%} interval:"]
    for (dim, group, metric), row in effect.iterrows():  # a few dozen rows: groups x metrics
        label = "all customers" if dim == "all" else f"{dim} {group}"
        if not row["reliable"]:
            if metric == "purchase_rate":
                lines.append(f"  {label}: not measured ({row['note']})")
            continue
        text = (
            f"  {label} {metric}: {row['effect']:+.4g} [{row['effect_low']:+.4g}, "
            f"{row['effect_high']:+.4g}]"
        )
        if metric == "revenue" and np.isfinite(row["roi"]):
            text += (
                f"; incremental {row['incremental']:,.2f} for a cost of {row['cost']:,.2f}, "
                f"ROI {row['roi']:+.2f} [{row['roi_low']:+.2f}, {row['roi_high']:+.2f}]"
            )
        lines.append(text)
    return "\n".join(lines)
