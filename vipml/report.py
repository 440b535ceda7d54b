"""A self-contained HTML report of a fitted pipeline on a time holdout.

:func:`build_report` scores every customer at a date ``at`` (usually the fit's cutoff) with a
fitted :class:`~vipml.VipPipeline` and compares the scores with what customers did in
``(at, at + horizon]``: lifetime-value holdout and tracking plots, churn calibration and lift
beside a BG/NBD baseline, segment and VIP-tier tables with the holdout revenue they captured,
segment migration and the most frequent churn reasons. The page is one HTML string with
inline CSS and the plots as base64 PNG images: nothing is fetched from the network, so it can
be mailed, archived or opened offline. :func:`write_report` saves it.

The same inputs give the same bytes: no wall-clock time is written unless passed as
``generated_at``. matplotlib (the ``plot`` extra) draws the figures, on figures created
without pyplot, so no global plotting state changes.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import narwhals.stable.v2 as nw
import numpy as np
import pandas as pd

from vipml.bundle import library_versions
from vipml.churn.metrics import classification_metrics
from vipml.churn.model import to_pandas
from vipml.data.validate import as_timestamp, prepare_transactions
from vipml.errors import DataValidationError, ModelAssumptionWarning
from vipml.features.cycle import parse_duration
from vipml.features.split import calibration_holdout, labels_after
from vipml.ltv.evaluate import holdout_table
from vipml.pipeline import VipPipeline
from vipml.segments.cluster import segment_profile
from vipml.segments.migration import migration_matrix

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["build_report", "campaign_report", "write_report"]

_WEEK = dt.timedelta(weeks=1)
_PLOT_HINT = 'pip install "vipml[plot]"'
_MODEL_LABEL = "vipml churn model"

#: What each metric of :meth:`VipPipeline.evaluate` measures, for the metrics table.
_METRIC_NOTES = {
    "churn_roc_auc": "ranking of churners above stayers (0.5 = random, 1 = perfect)",
    "churn_pr_auc": "average precision of the churn ranking",
    "churn_brier": "mean squared error of the churn probabilities (lower is better)",
    "churn_log_loss": "log loss of the churn probabilities (lower is better)",
    "churn_ece": "expected calibration error: mean gap between predicted and observed rates",
    "ltv_purchases_mae": "mean absolute error of expected vs actual purchases in the holdout",
    "ltv_top10_capture": "share of the holdout's revenue spent by the top 10% by CLV",
    "n_customers": "customers with a purchase by the scoring date",
    "churn_rate": "share of them without a purchase in the holdout",
}

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1f2933;
margin:0;background:#f5f7fa;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:1.7em;margin:0 0 4px}h2{font-size:1.3em;margin:34px 0 8px;padding-top:8px;
border-top:2px solid #e4e7eb}h3{font-size:1.05em;margin:18px 0 6px}
p.lead{color:#52606d;margin:0 0 14px}p.note{color:#52606d;font-size:.92em;margin:6px 0}
nav{font-size:.92em;margin:10px 0 0}nav a{margin-right:14px;color:#2563eb;text-decoration:none}
table{border-collapse:collapse;font-size:.88em;margin:6px 0 10px}
th,td{padding:4px 9px;border-bottom:1px solid #e4e7eb;text-align:right;vertical-align:top}
th{background:#f0f4f8;font-weight:600}td.text,th.text{text-align:left}
table.facts td:first-child{text-align:left;color:#52606d}table.facts td{text-align:left}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:14px;
align-items:start}figure{margin:0}figure img{width:100%;height:auto;border:1px solid #e4e7eb}
figcaption{font-size:.85em;color:#52606d;margin-top:3px}
ul{margin:4px 0;padding-left:20px;font-size:.92em}li{margin:3px 0}
.warn{background:#fff7e6;border-left:4px solid #f0b429;padding:6px 10px;font-size:.92em}
"""


# -- helpers: matplotlib, numbers, HTML ------------------------------------------------------


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"The HTML report draws its plots with matplotlib, an optional extra: {_PLOT_HINT}"
        ) from exc


def _figure(draw: Callable[[Axes], Any], *, size: tuple[float, float] = (6.4, 4.0)) -> str:
    """Draw on a new figure (no pyplot state) and return it as a base64 PNG data URI."""
    import matplotlib
    from matplotlib.figure import Figure

    style = {"font.size": 9.0, "axes.titlesize": 10.5, "figure.dpi": 100.0, "savefig.dpi": 110}
    with matplotlib.rc_context(style):
        figure = Figure(figsize=size, layout="constrained")
        draw(figure.subplots())
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(uri: str, alt: str, caption: str) -> str:
    return (
        f'<figure><img src="{uri}" alt="{html.escape(alt)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _number(value: Any, kind: str = "g") -> str:
    """Text of a number: ``pct`` (a share), ``int``, ``money``, ``float`` or general."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if isinstance(value, str):
        return value
    if kind == "pct":
        return f"{100.0 * float(value):.1f}%"
    if kind == "int":
        return f"{int(round(float(value))):,}"
    if kind == "money":
        return f"{float(value):,.2f}"
    if kind == "float":
        return f"{float(value):.3f}"
    number = float(value)
    if number == int(number) and abs(number) < 1e12:
        return f"{int(number):,}"
    if abs(number) >= 1000:
        return f"{number:,.0f}"
    return f"{number:.4g}"


def _table(
    frame: pd.DataFrame, formats: Mapping[str, str] | None = None, *, index: bool = True
) -> str:
    """An HTML table (every cell escaped, ``_`` in headers as spaces).

    Numeric columns and those named in ``formats`` (kinds of :func:`_number`; already
    formatted text passes through) are right-aligned, other text left-aligned.
    """
    formats = dict(formats or {})
    right = [pd.api.types.is_numeric_dtype(frame[c]) or c in formats for c in frame.columns]
    header = []
    if index:
        name = frame.index.name if frame.index.name is not None else ""
        header.append(f'<th class="text">{html.escape(str(name).replace("_", " "))}</th>')
    for column, aligned in zip(frame.columns, right, strict=True):
        css = "" if aligned else ' class="text"'
        header.append(f"<th{css}>{html.escape(str(column).replace('_', ' '))}</th>")
    rows = []
    for label, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        cells = [f'<td class="text">{html.escape(str(label))}</td>'] if index else []
        for column, value, aligned in zip(frame.columns, row, right, strict=True):
            if aligned:
                cells.append(f"<td>{html.escape(_number(value, formats.get(column, 'g')))}</td>")
            else:
                text = "–" if value is None or value is pd.NA or value != value else str(value)
                cells.append(f'<td class="text">{html.escape(text)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        "<table><thead><tr>"
        + "".join(header)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _facts(items: Iterable[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in items)
    return f'<table class="facts"><tbody>{rows}</tbody></table>'


def _actions(actions: Mapping[str, Any]) -> str:
    items = "".join(
        f"<li><b>{html.escape(str(name))}</b>: {html.escape(str(text))}</li>"
        for name, text in actions.items()
        if isinstance(text, str) and text
    )
    return f"<div><h3>Suggested actions</h3><ul>{items}</ul></div>" if items else "<div></div>"


def _section(anchor: str, title: str, *parts: str) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>{"".join(parts)}</section>'


def _p(text: str, css: str = "note") -> str:
    return f'<p class="{css}">{html.escape(text)}</p>'


def _grid(*figures: str) -> str:
    return '<div class="grid">' + "".join(figures) + "</div>"


def _day(stamp: pd.Timestamp) -> str:
    """A date, with the time of day only when there is one."""
    return f"{stamp:%Y-%m-%d}" if stamp == stamp.normalize() else f"{stamp:%Y-%m-%d %H:%M:%S}"


def _duration_text(span: dt.timedelta) -> str:
    if span % _WEEK == dt.timedelta(0):
        return f"{span // _WEEK} weeks"
    return f"{span / dt.timedelta(days=1):g} days"


# -- the report's parts ----------------------------------------------------------------------


def _data_span(pipeline: VipPipeline, transactions: Any) -> tuple[pd.Timestamp, pd.Timestamp, int]:
    log = prepare_transactions(transactions, pipeline.config_.columns, check_duplicates=False)
    span = (
        log.frame.select(
            nw.col("timestamp").min().alias("first"),
            nw.col("timestamp").max().alias("last"),
            nw.len().alias("rows"),
        )
        .collect()
        .to_pandas()
    )
    return (
        pd.Timestamp(span["first"].iloc[0]),
        pd.Timestamp(span["last"].iloc[0]),
        int(span["rows"].iloc[0]),
    )


def _summary_items(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    items = []
    for key, value in summary.items():
        if isinstance(value, Mapping):
            text = ", ".join(f"{k} = {_number(v)}" for k, v in value.items())
        elif isinstance(value, bool) or value is None:
            text = str(value)
        elif isinstance(value, int | float | np.number):
            text = _number(value)
        else:
            text = str(value)
        items.append((key.replace("_", " "), text))
    return items


def _reason_kind(text: str) -> str:
    """A reason's wording with its numbers as ``#`` (and plurals merged): its kind."""
    kind = re.sub(r"[-+]?\d+(?:[.,]\d+)?", "#", text)
    return re.sub(r"(# (?:repeat )?)(event|purchase|channel|day|week)s?\b", r"\1\2s", kind)


def _reasons_table(scores: pd.DataFrame, threshold: float) -> tuple[pd.DataFrame, int]:
    reasons = [c for c in scores.columns if c.startswith("reason_")]
    flagged = scores[scores["churn_probability"] >= threshold]
    if not reasons or flagged.empty:
        return pd.DataFrame(), len(flagged)
    first = flagged[reasons[0]].dropna().map(_reason_kind)
    anywhere = pd.concat([flagged[c].dropna() for c in reasons])
    kinds = anywhere.map(_reason_kind)
    # the most frequent wording of each kind (ties: the first in sorted order) as its example
    counted = (
        pd.DataFrame({"kind": kinds.to_numpy(), "text": anywhere.to_numpy()})
        .value_counts()
        .rename("n")
        .reset_index()
        .sort_values(["kind", "n", "text"], ascending=[True, False, True], kind="stable")
    )
    examples = counted.groupby("kind", sort=True)["text"].first()
    table = pd.DataFrame(
        {
            "as first reason": first.value_counts(),
            f"among the top {len(reasons)}": kinds.value_counts(),
        }
    ).fillna(0)
    table = table.astype(np.int64)
    table["share of flagged customers"] = table[f"among the top {len(reasons)}"] / len(flagged)
    table["example"] = examples.reindex(table.index)
    table.index.name = "reason (numbers as #)"
    table = table.sort_values(
        ["as first reason", f"among the top {len(reasons)}"], ascending=False, kind="stable"
    ).iloc[:10]
    return table, len(flagged)


def _tier_table(pipeline: VipPipeline, scores: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    tiers = pipeline.config_.tiers
    order = [*tiers.names, tiers.rest]
    spend = after["spend_next"].astype(np.float64)
    frame = pd.DataFrame(
        {
            "tier": pd.Categorical(scores["vip_tier"], categories=order, ordered=True),
            "clv": scores["clv"],
            "churn": scores["churn_probability"],
            "spend": spend,
            "churned": after["churned"].astype(np.float64),
        }
    )
    grouped = frame.groupby("tier", observed=False)
    table = pd.DataFrame(
        {
            "customers": grouped.size(),
            "customer_share": grouped.size() / len(frame),
            "total_clv": grouped["clv"].sum(),
            "clv_share": grouped["clv"].sum() / frame["clv"].sum(),
            "holdout_revenue": grouped["spend"].sum(),
            "holdout_revenue_share": grouped["spend"].sum() / frame["spend"].sum(),
            "mean_churn_probability": grouped["churn"].mean(),
            "holdout_churn_rate": grouped["churned"].mean(),
        }
    )
    starts = [*pipeline.tier_thresholds_, float("nan")]
    table["clv_from"] = starts[: len(table)]
    table.index = pd.Index([str(t) for t in table.index], name="tier")
    return table


def _segment_table(
    pipeline: VipPipeline, features: pd.DataFrame, scores: pd.DataFrame, after: pd.DataFrame
) -> pd.DataFrame:
    names = [str(n) for n in pipeline.segmenter_.names_]
    table = features[["frequency", "recency", "T", "monetary_value"]].assign(
        clv=scores["clv"],
        churn_risk=scores["churn_probability"],
        revenue=after["spend_next"].astype(np.float64),
        churned=after["churned"].astype(np.float64),
    )
    profile = segment_profile(table, scores["segment"].to_numpy(), extra=["churned"])
    profile = profile.reindex([n for n in names if n in profile.index])
    actions = pd.Series(
        pipeline.segmenter_.profile_["action"].to_numpy(),
        index=pipeline.segmenter_.profile_["name"].astype(str).to_numpy(),
    )
    out = pd.DataFrame(
        {
            "customers": profile["n_customers"],
            "customer_share": profile["customer_share"],
            "value_share": profile["value_share"],
            "mean_clv": profile["mean_value"],
            "holdout_revenue_share": profile["revenue_share"],
            "churn_probability": profile["churn_risk"],
            "holdout_churn_rate": profile["churned"],
            "frequency": profile["frequency"],
            "monetary_value": profile["monetary_value"],
        },
        index=pd.Index(profile.index, name="segment"),
    )
    out.attrs["actions"] = actions.reindex(profile.index).to_dict()
    return out


def _quiet(call: Callable[[], Any]) -> Any:
    """Run ``call`` hiding model-assumption warnings (already stated in the report)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelAssumptionWarning)
        return call()


# -- public ----------------------------------------------------------------------------------


def build_report(
    pipeline: VipPipeline,
    transactions: Any,
    events: Any = None,
    *,
    at: Any = None,
    horizon: Any = None,
    title: str = "vipml report",
    generated_at: str | None = None,
    plan: Any = None,
    effect: pd.DataFrame | None = None,
    omnichannel: Any = None,
) -> str:
    """A self-contained HTML report of a fitted pipeline evaluated on a time holdout.

    Customers are scored at ``at`` and compared with what they did in
    ``(at, at + horizon]``. Sections: header (cutoff, holdout window, data span, customers,
    versions), fit summary, holdout metrics (:meth:`VipPipeline.evaluate`), lifetime value
    (expected vs actual holdout purchases by repeat-purchase bucket, cumulative tracking),
    churn (reliability diagram and lift curve, beside the purchase model's P(no purchase) as
    a baseline), segments (profile at ``at`` with the holdout revenue each captured),
    VIP tiers (customers, CLV share, holdout revenue captured), segment migration and the
    most frequent churn reasons of the customers above the alert threshold.

    Migration compares the segments at two dates with the fitted segment definitions: from
    the fit's cutoff to ``at`` when ``at`` is later, otherwise from ``at - horizon`` to
    ``at`` (how customers moved over the period just before the scoring date).

    Parameters
    ----------
    pipeline : VipPipeline
        A fitted pipeline.
    transactions, events : DataFrame-like
        Logs covering ``at + horizon`` (``events`` when the pipeline was fitted with them).
    at : str, date or datetime, optional
        Scoring date; default the fit's cutoff (an honest holdout starts there or later).
    horizon : str or timedelta, optional
        Holdout length; default the churn horizon.
    title : str, default "vipml report"
        Page title.
    generated_at : str, optional
        Shown in the header when given; no clock is read otherwise, so the same inputs give
        the same bytes.
    plan : CampaignPlan, optional
        A campaign plan (:func:`vipml.actions.plan_campaign`): adds its section.
    effect : pandas.DataFrame, optional
        Its measured effect (:func:`vipml.actions.campaign_effect`): adds its section.
    omnichannel : OmnichannelReport, optional
        Omnichannel measures (:func:`vipml.features.omnichannel_measures`): adds their
        section.

    Returns
    -------
    str
        The HTML page: inline CSS, plots as base64 PNG, no external resources.

    Raises
    ------
    ImportError
        Without matplotlib (``pip install "vipml[plot]"``).
    TypeError
        If ``pipeline`` is not a :class:`~vipml.VipPipeline`.
    NotFittedError
        Before the pipeline is fitted.
    DataValidationError
        The logs do not cover the holdout, or the holdout has a single class.

    Warns
    -----
    ModelAssumptionWarning
        When ``at`` is before the fit's cutoff (the models saw part of the holdout).

    Examples
    --------
    >>> from vipml import VipPipeline
    >>> from vipml.data import simulate
    >>> sim = simulate(300, "2024-06-01", "2025-12-31", random_state=3, events=False)
    >>> pipe = VipPipeline({"churn": {"n_snapshots": 2, "lgbm_params": {
    ...     "num_boost_round": 10, "num_threads": 1}}, "ltv": {"n_draws": 10},
    ...     "segments": {"n_segments": 3}})
    >>> pipe = pipe.fit(sim.transactions, cutoff="2025-06-30")
    >>> page = build_report(pipe, sim.transactions, at="2025-06-30")
    >>> page.startswith("<!DOCTYPE html>"), page.count("data:image/png;base64,") >= 5
    (True, True)
    """
    _require_matplotlib()
    if not isinstance(pipeline, VipPipeline):
        raise TypeError(f"build_report takes a fitted VipPipeline, not {type(pipeline).__name__}.")
    pipeline._check_fitted()
    # the report reads the logs several times: say each warning about them once
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        page = _build(pipeline, transactions, events, at, horizon, title, generated_at)
    if plan is not None or effect is not None:
        page = page.replace("</main>", "".join(_campaign_parts(plan, effect)) + "</main>", 1)
    if omnichannel is not None:
        page = page.replace("</main>", _omnichannel_section(omnichannel) + "</main>", 1)
    seen: set[tuple[type[Warning], str]] = set()
    for record in caught:
        key = (record.category, str(record.message))
        if key not in seen:
            seen.add(key)
            warnings.warn(record.message, stacklevel=2)
    return page


def _build(
    pipeline: VipPipeline,
    transactions: Any,
    events: Any,
    at: Any,
    horizon: Any,
    title: str,
    generated_at: str | None,
) -> str:
    from vipml.plotting.churn import plot_lift, plot_reliability
    from vipml.plotting.ltv import plot_calibration_holdout, plot_cumulative_tracking
    from vipml.plotting.segments import plot_migration, plot_profile

    config = pipeline.config_
    columns = config.columns
    cutoff = pipeline.cutoff_
    stamp = cutoff if at is None else as_timestamp(at, "at")
    span = parse_duration(config.churn.horizon if horizon is None else horizon, "horizon")
    end = stamp + span
    # churn probabilities are about the churn horizon: churn labels always use it
    churn_span = parse_duration(config.churn.horizon, "churn.horizon")
    churn_end = stamp + churn_span
    first, last, n_rows = _data_span(pipeline, transactions)
    if last < max(end, churn_end):
        raise DataValidationError(
            f"The transactions end at {_day(last)}, before the end of the holdout "
            f"{_day(max(end, churn_end))} (at {_day(stamp)} + "
            f"{_duration_text(max(span, churn_span))}): pass an earlier `at`, a shorter "
            "`horizon` or a longer log."
        )
    metrics = pipeline.evaluate(transactions, events, at=stamp, horizon=span)

    features = pipeline.build_features(transactions, events, at=stamp)
    scores = pipeline.score_features(features)
    revenue = to_pandas(labels_after(transactions, stamp, span, columns=columns), ["customer_id"])
    churn_labels = (
        revenue
        if churn_span == span
        else to_pandas(
            labels_after(transactions, stamp, churn_span, columns=columns), ["customer_id"]
        )
    )
    after = pd.DataFrame(
        {"spend_next": revenue["spend_next"], "churned": churn_labels["churned"]}
    ).reindex(scores.index)
    churned = after["churned"].astype(bool)
    purchase_model = pipeline.purchase_model_
    model_name = purchase_model._model_name
    rfm = features[["frequency", "recency", "T"]]

    # header
    versions = library_versions()
    try:
        from importlib.metadata import version

        versions["matplotlib"] = version("matplotlib")
    except Exception:  # pragma: no cover - matplotlib is importable here
        versions["matplotlib"] = None
    header_items = [
        ("fit cutoff", _day(cutoff)),
        ("scored at", _day(stamp)),
        ("holdout", f"({_day(stamp)}, {_day(end)}]: {_duration_text(span)}"),
        *(
            []
            if churn_span == span
            else [
                (
                    "churn holdout",
                    f"({_day(stamp)}, {_day(churn_end)}]: {_duration_text(churn_span)}, the "
                    "churn model's horizon",
                )
            ]
        ),
        (
            "data",
            f"{n_rows:,} transactions from {_day(first)} to {_day(last)}"
            + ("" if events is None else ", with engagement events"),
        ),
        ("customers scored", f"{len(scores):,} (with a purchase by {_day(stamp)})"),
        ("fitted with", f"vipml {getattr(pipeline, 'vipml_version_', '?')}"),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items() if v is not None)),
    ]
    if generated_at is not None:
        header_items.append(("generated", str(generated_at)))
    sections = [
        ("summary", "Fit summary"),
        ("metrics", "Holdout metrics"),
        ("ltv", "Lifetime value"),
        ("churn", "Churn"),
        ("segments", "Segments"),
        ("tiers", "VIP tiers"),
        ("migration", "Segment migration"),
        ("reasons", "Churn reasons"),
    ]
    nav = "<nav>" + "".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t in sections) + "</nav>"
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        _p(
            f"A pipeline fitted at {_day(cutoff)}, scored at {_day(stamp)} and compared with "
            f"what customers did in the {_duration_text(span)} after.",
            "lead",
        ),
        _facts(header_items),
    ]
    if stamp < cutoff:
        parts.append(
            '<p class="warn">'
            + html.escape(
                f"The scoring date {_day(stamp)} is before the fit's cutoff {_day(cutoff)}: the "
                "models saw part of this holdout, so the metrics below are optimistic."
            )
            + "</p>"
        )
    parts.append(nav)

    # fit summary and metrics
    parts.append(_section("summary", "Fit summary", _facts(_summary_items(pipeline.summary_))))
    metric_table = pd.DataFrame(
        {
            "value": [
                _number(v, "int" if k == "n_customers" else "float") for k, v in metrics.items()
            ],
            "meaning": [_METRIC_NOTES.get(k, "") for k in metrics],
        },
        index=pd.Index(list(metrics), name="metric"),
    )
    parts.append(
        _section(
            "metrics",
            "Holdout metrics",
            _p(f"VipPipeline.evaluate at {_day(stamp)} over {_duration_text(span)}."),
            ""
            if churn_span == span
            else _p(
                f"The churn metrics here label churn over {_duration_text(span)}, while the model "
                f"predicts churn over {_duration_text(churn_span)} (its horizon): the Churn "
                f"section below, the segment and tier churn rates use {_duration_text(churn_span)}."
            ),
            _table(metric_table, {"value": "text"}),
        )
    )

    # lifetime value
    frame = to_pandas(
        _quiet(
            lambda: calibration_holdout(
                transactions, stamp, end, freq="D", time_unit="W", columns=columns
            )
        ),
        ["customer_id"],
    )
    buckets = holdout_table(purchase_model, frame)
    ltv_plot = _figure(lambda ax: plot_calibration_holdout(purchase_model, frame, ax))
    tracking = _figure(
        lambda ax: plot_cumulative_tracking(
            purchase_model, transactions, cutoff, end, ax, columns=columns
        )
    )
    parts.append(
        _section(
            "ltv",
            "Lifetime value",
            _p(
                f"{model_name} fitted at {_day(cutoff)}: expected purchases in the holdout given "
                f"each customer's history at {_day(stamp)}, against the purchases made, by "
                "repeat purchases before the holdout; and cumulative repeat purchases of the "
                f"customers acquired by {_day(cutoff)}, actual against expected."
            ),
            _grid(
                _img(
                    ltv_plot,
                    "expected vs actual holdout purchases",
                    "Holdout purchases by repeat-purchase bucket.",
                ),
                _img(
                    tracking,
                    "cumulative tracking",
                    "Cumulative repeat purchases; the dotted line is the fit's cutoff.",
                ),
            ),
            _table(
                buckets.rename(
                    columns={
                        "n_customers": "customers",
                        "actual": "actual mean",
                        "predicted": "expected mean",
                        "error": "expected − actual",
                    }
                ),
                {
                    "customers": "int",
                    "actual mean": "float",
                    "expected mean": "float",
                    "expected − actual": "float",
                },
            ),
        )
    )

    # churn
    baseline_label = f"{model_name} P(no purchase), baseline"
    baseline = purchase_model.probability_of_purchases(rfm, 0, churn_span / _WEEK).to_numpy()
    predictions = pd.DataFrame(
        {
            "churned": churned.to_numpy(),
            _MODEL_LABEL: scores["churn_probability"].to_numpy(),
            baseline_label: baseline,
        },
        index=scores.index,
    )
    labels = churned.to_numpy(dtype=np.float64)
    comparison = pd.DataFrame(
        {
            name: classification_metrics(labels, predictions[name].to_numpy())
            for name in (_MODEL_LABEL, baseline_label)
        }
    ).T
    comparison.index.name = "method"
    comparison = comparison[
        [
            c
            for c in ("roc_auc", "pr_auc", "brier", "log_loss", "ece", "lift_top_decile")
            if c in comparison
        ]
    ]
    reliability = _figure(lambda ax: plot_reliability(predictions, ax=ax))
    lift = _figure(lambda ax: plot_lift(predictions, ax=ax))
    parts.append(
        _section(
            "churn",
            "Churn",
            _p(
                f"Churn = no purchase in ({_day(stamp)}, {_day(churn_end)}]: {int(labels.sum()):,} of "
                f"{labels.size:,} customers ({_number(labels.mean(), 'pct')}). The baseline is the "
                f"{model_name} probability of no purchase in those {_duration_text(churn_span)}, "
                "from the same fit."
            ),
            _grid(
                _img(
                    reliability,
                    "reliability diagram",
                    "Observed churn rate by decile of "
                    "predicted probability (on the diagonal = calibrated).",
                ),
                _img(
                    lift,
                    "lift curve",
                    "Churn rate among the riskiest customers over the overall rate.",
                ),
            ),
            _table(comparison, dict.fromkeys(comparison.columns, "float")),
        )
    )

    # segments
    segments = _segment_table(pipeline, features, scores, after)
    pct = (
        "customer_share",
        "value_share",
        "holdout_revenue_share",
        "churn_probability",
        "holdout_churn_rate",
    )
    segment_plot = _figure(
        lambda ax: plot_profile(
            segments.assign(name=segments.index),
            ax,
            columns=["customer_share", "value_share", "holdout_revenue_share"],
        ),
        size=(6.4, 1.6 + 0.55 * len(segments)),
    )
    parts.append(
        _section(
            "segments",
            "Segments",
            _p(
                f"Segments at {_day(stamp)} (definitions fitted at {_day(cutoff)}): value share "
                "is the share of predicted CLV, holdout revenue share the share of the revenue "
                "actually spent in the holdout."
            ),
            _grid(
                _img(
                    segment_plot,
                    "segment profile",
                    "Shares of customers, predicted value and holdout revenue per segment.",
                ),
                _actions(segments.attrs["actions"]),
            ),
            _table(
                segments,
                {
                    **dict.fromkeys(pct, "pct"),
                    "customers": "int",
                    "mean_clv": "money",
                    "frequency": "float",
                    "monetary_value": "money",
                },
            ),
        )
    )

    # tiers
    tiers = _tier_table(pipeline, scores, after)
    tier_plot = _figure(
        lambda ax: _titled(
            plot_profile(
                tiers.assign(name=tiers.index),
                ax,
                columns=["customer_share", "clv_share", "holdout_revenue_share"],
            ),
            "VIP tiers",
        ),
        size=(6.4, 1.6 + 0.55 * len(tiers)),
    )
    parts.append(
        _section(
            "tiers",
            "VIP tiers",
            _p(
                "Tiers by CLV with the thresholds frozen at the fit (clv_from); holdout revenue "
                "share is the share of the holdout's revenue each tier spent."
            ),
            _grid(
                _img(
                    tier_plot, "VIP tiers", "Shares of customers, CLV and holdout revenue per tier."
                )
            ),
            _table(
                tiers,
                {
                    "customers": "int",
                    "customer_share": "pct",
                    "total_clv": "money",
                    "clv_share": "pct",
                    "holdout_revenue": "money",
                    "holdout_revenue_share": "pct",
                    "mean_churn_probability": "pct",
                    "holdout_churn_rate": "pct",
                    "clv_from": "money",
                },
            ),
        )
    )

    # migration
    earlier = cutoff if stamp > cutoff else stamp - churn_span
    what = (
        f"from the fit's cutoff {_day(cutoff)} to the scoring date {_day(stamp)}"
        if stamp > cutoff
        else f"over the {_duration_text(churn_span)} (churn horizon) before the scoring date: "
        f"from {_day(earlier)} "
        f"to {_day(stamp)}"
    )
    if earlier < first:
        migration_parts = [
            _p(f"No migration: the data start at {_day(first)}, after {_day(earlier)}.")
        ]
    else:
        before = pipeline.score(transactions, events, at=earlier)
        names = [str(n) for n in pipeline.segmenter_.names_]
        moves = migration_matrix(
            before["segment"].rename(_day(earlier)),
            scores["segment"].rename(_day(stamp)),
            order=names,
        )
        tier_order = [*config.tiers.names, config.tiers.rest]
        tier_moves = migration_matrix(
            before["vip_tier"].rename(_day(earlier)),
            scores["vip_tier"].rename(_day(stamp)),
            order=tier_order,
        )
        height = 2.6 + 0.45 * max(moves.counts.shape)
        migration_plot = _figure(lambda ax: plot_migration(moves, ax), size=(6.4, height))
        stayed = float(np.mean(before["segment"].reindex(scores.index) == scores["segment"]))
        corner = f"from {_day(earlier)} \\ to {_day(stamp)}"
        for table in (moves.counts, tier_moves.counts):
            table.index.name = corner
        migration_parts = [
            _p(
                f"Customers' segments {what}, both with the segment definitions fitted at "
                f"{_day(cutoff)}. Rows: segment at {_day(earlier)}; "
                f"columns: segment at {_day(stamp)}. {_number(stayed, 'pct')} of the customers "
                f"scored at {_day(stamp)} kept their segment; customers without a purchase by "
                f"{_day(earlier)} are the new customers row."
            ),
            _grid(
                _img(
                    migration_plot,
                    "segment migration",
                    "Row shares: where each segment's customers went.",
                )
            ),
            "<h3>Segment migration (customers)</h3>",
            _table(moves.counts, dict.fromkeys(moves.counts.columns, "int")),
            "<h3>VIP tier migration (customers)</h3>",
            _table(tier_moves.counts, dict.fromkeys(tier_moves.counts.columns, "int")),
        ]
    parts.append(_section("migration", "Segment migration", *migration_parts))

    # reasons
    threshold = config.churn.alert_threshold
    reasons, n_flagged = _reasons_table(scores, threshold)
    if reasons.empty:
        reason_parts = [
            _p(
                f"No reasons to show: {n_flagged} customers at or above the alert threshold "
                f"{threshold:g}, {config.churn.reasons} reasons per customer configured."
            )
        ]
    else:
        reason_parts = [
            _p(
                f"The churn model's top reasons for the {n_flagged:,} customers whose churn "
                f"probability at {_day(stamp)} is at least the alert threshold {threshold:g}, "
                "grouped by wording (numbers replaced by #), most frequent first reason first."
            ),
            _table(reasons, {"share of flagged customers": "pct"}),
        ]
    parts.append(_section("reasons", "Churn reasons", *reason_parts))

    body = "".join(parts)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


# -- campaigns (vipml.actions) ----------------------------------------------------------------

_PLAN_SHOWN = 25


def _campaign_parts(plan: Any, effect: pd.DataFrame | None) -> list[str]:
    """The campaign plan and effect sections."""
    parts = []
    if plan is not None:
        table = plan.table
        summary = dict(plan.summary)
        facts = [
            (k.replace("_", " "), _number(summary[k], "money" if k in _MONEY else "g"))
            for k in (
                "budget",
                "spent",
                "n_treated",
                "n_holdout",
                "holdout",
                "expected_value",
                "expected_net_value",
                "greedy_value",
                "upper_bound",
                "scored_at",
                "window_days",
            )
            if summary.get(k) is not None
        ]
        facts += [
            (f"withheld: {k}", _number(v, "int")) for k, v in summary.get("withheld", {}).items()
        ]
        grouped = table.groupby(["action", "group"], observed=True)
        by_action = pd.DataFrame(
            {
                "customers": grouped.size(),
                "cost": grouped["cost"].sum(),
                "expected_value": grouped["expected_value"].sum(),
                "mean_net_value": grouped["net_value"].mean(),
                "mean_days_to_contact": grouped["contact_after_days"].mean(),
            }
        )
        by_action.index = [f"{a} ({g})" for a, g in by_action.index]
        by_action.index.name = "action (group)"
        first = table[table["group"] == "treated"].head(_PLAN_SHOWN)
        contacts = first[["action", "reason", "timing"]].rename_axis("customer")
        parts.append(
            _section(
                "plan",
                "Campaign plan",
                _p(
                    "The contacts worth most per unit of cost, taken until the budget is spent "
                    "(greedy; no plan of the same size can beat the upper bound), and a random "
                    "holdout drawn within each action to measure the campaign."
                ),
                _facts(facts),
                _table(
                    by_action,
                    {
                        "cost": "money",
                        "expected_value": "money",
                        "mean_net_value": "money",
                        "mean_days_to_contact": "float",
                    },
                ),
                _p(f"The first {len(contacts)} contacts by priority:"),
                _table(contacts),
            )
        )
    if effect is not None:
        shown = effect.reset_index()
        interval = shown.apply(
            lambda r: (
                "–"
                if not r["reliable"]
                else f"{r['effect']:+.4g} [{r['effect_low']:+.4g}, {r['effect_high']:+.4g}]"
            ),
            axis=1,
        )
        roi = shown.apply(
            lambda r: (
                "–"
                if not np.isfinite(r["roi"])
                else f"{r['roi']:+.2f} [{r['roi_low']:+.2f}, {r['roi_high']:+.2f}]"
            ),
            axis=1,
        )
        view = pd.DataFrame(
            {
                "group": shown["dimension"] + ": " + shown["group"],
                "metric": shown["metric"],
                "treated": shown["n_treated"],
                "holdout": shown["n_holdout"],
                "effect per customer": interval,
                "incremental": shown["incremental"],
                "cost": shown["cost"],
                "ROI": roi,
                "note": shown["note"].fillna(""),
            }
        ).set_index("group")
        parts.append(
            _section(
                "effect",
                "Campaign effect",
                _p(
                    "Contacted against held-out customers over the response window: effect per "
                    "contacted customer (treated minus holdout, weighted by action) with its "
                    "bootstrap interval, the incremental total over the contacted customers and "
                    "ROI = (incremental revenue − cost) / cost. Groups too small to measure "
                    "show no figures."
                ),
                _table(
                    view,
                    {
                        "effect per customer": "text",
                        "ROI": "text",
                        "incremental": "money",
                        "cost": "money",
                    },
                ),
            )
        )
    return parts


_MONEY = {"budget", "spent", "expected_value", "expected_net_value", "greedy_value", "upper_bound"}


def campaign_report(
    plan: Any, effect: pd.DataFrame | None = None, *, title: str = "vipml campaign"
) -> str:
    """A self-contained HTML page of a campaign plan and, once measured, its effect.

    Parameters
    ----------
    plan : CampaignPlan
        :func:`vipml.actions.plan_campaign`'s result (or :func:`vipml.actions.read_plan`'s).
    effect : pandas.DataFrame, optional
        :func:`vipml.actions.campaign_effect`'s table.
    title : str, default "vipml campaign"
        Page title.

    Returns
    -------
    str
        The HTML page (no external resources, no plots).

    Examples
    --------
    >>> from vipml.actions import plan_campaign
    >>> scores = pd.DataFrame({"clv": [900.0, 50.0], "churn_probability": [0.7, 0.9],
    ...     "vip_tier": ["Gold", "Standard"], "segment": "Loyal", "rfm_segment": "At risk",
    ...     "days_since_last_purchase": [40.0, 90.0], "gap_median_days": [20.0, 30.0]},
    ...     index=pd.Index(["a", "b"], name="customer_id"))
    >>> page = campaign_report(plan_campaign(scores, 100.0, tiers={"VIP": 2000.0, "Gold": 500.0}))
    >>> page.startswith("<!DOCTYPE html>"), "Campaign plan" in page
    (True, True)
    """
    body = f"<h1>{html.escape(title)}</h1>" + "".join(_campaign_parts(plan, effect))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


# -- omnichannel (vipml.features.omnichannel) -----------------------------------------------


def _omnichannel_section(report: Any) -> str:
    """Channels used, moves between them, sentiment consistency, single vs multi-channel."""
    overall = report.overall
    level = f"{100 * overall['confidence']:.0f}%"
    value = "value given" if overall["value"] == "given" else "spend in the horizon"
    facts = [
        ("buyers at the cutoff", _number(overall["buyers"], "int")),
        ("bought in several channels", _number(overall["multichannel_share"], "pct")),
        ("purchase channels per buyer", _number(overall["mean_channels"], "float")),
        ("switch rate between purchases", _number(overall["mean_switch_rate"], "pct")),
        ("sentiment consistency", _number(overall["mean_sentiment_consistency"], "float")),
    ]
    groups = report.groups.rename(
        columns={"value": value, "value_lower": "lower", "value_upper": "upper"}
    )
    groups = groups.rename(columns={"retention_lower": "lower ", "retention_upper": "upper "})
    formats = {"retention": "pct", "lower ": "pct", "upper ": "pct"}
    return _section(
        "omnichannel",
        "Omnichannel",
        _facts(facts),
        _p(
            f"Single- against multi-channel buyers at {overall['cutoff']}: the share who "
            f"bought again within {overall['horizon_days']:g} days and the mean {value}, "
            f"with {level} bootstrap intervals. Multi-channel buyers also buy more often, so "
            "the difference describes, it does not prove that a second channel causes it."
        ),
        _table(groups, formats),
        _p("Moves between consecutive purchases (rows: from, columns: to)."),
        _table(report.transitions),
    )


def _titled(ax: Axes, title: str) -> Axes:
    ax.set_title(title)
    return ax


def write_report(html_text: str, path: str | os.PathLike[str]) -> Path:
    """Write a report (from :func:`build_report`) as a UTF-8 file.

    Parameters
    ----------
    html_text : str
        The HTML page.
    path : path-like
        File to write; its folder must exist. An existing file is replaced.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    TypeError
        If ``html_text`` is not a string.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> tmp = tempfile.TemporaryDirectory()
    >>> out = write_report("<!DOCTYPE html><html></html>", pathlib.Path(tmp.name) / "r.html")
    >>> out.read_text(encoding="utf-8")
    '<!DOCTYPE html><html></html>'
    >>> tmp.cleanup()
    """
    if not isinstance(html_text, str):
        raise TypeError(f"write_report takes the HTML text, not {type(html_text).__name__}.")
    target = Path(path)
    target.write_text(html_text, encoding="utf-8")
    return target
