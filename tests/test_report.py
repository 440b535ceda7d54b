"""HTML report: sections, embedded PNG plots, no external resources, figures that match the
pipeline's own numbers, determinism and clear errors."""

from __future__ import annotations

import base64
import html
import io
import re
import sys
import warnings
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import polars as pl
import pytest
from PIL import Image

from vipml import VipPipeline
from vipml.data import simulate
from vipml.errors import DataValidationError, ModelAssumptionWarning, NotFittedError
from vipml.report import build_report, write_report

CUTOFF = "2025-06-30"
LATER = "2025-08-31"
SECTIONS = ("summary", "metrics", "ltv", "churn", "segments", "tiers", "migration", "reasons")


class _Page(HTMLParser):
    """Sections (by id) with their tables (rows of cell texts) and every image source."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[list[str]]]] = {}
        self.images: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._section = "header"
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "section":
            self._section = str(attributes["id"])
        elif tag == "table":
            self.tables.setdefault(self._section, []).append([])
        elif tag == "tr":
            self.tables[self._section][-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(str(attributes["src"]))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._section][-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


def _frame(rows: list[list[str]]) -> pd.DataFrame:
    return pd.DataFrame(rows[1:], columns=rows[0]).set_index(rows[0][0])


def _value(text: str) -> float:
    return float(text.replace(",", "").rstrip("%"))


@pytest.fixture(scope="module")
def shop():
    return simulate(600, "2024-01-01", "2025-12-31", random_state=5)


@pytest.fixture(scope="module")
def pipe(shop):
    config = {
        "churn": {"n_snapshots": 2, "lgbm_params": {"num_boost_round": 20, "num_threads": 1}},
        "ltv": {"n_draws": 10},
        "segments": {"n_segments": 4},
    }
    return VipPipeline(config).fit(shop.transactions, shop.events, cutoff=CUTOFF)


@pytest.fixture(scope="module")
def page(pipe, shop):
    return build_report(pipe, shop.transactions, shop.events, at=CUTOFF, generated_at="then")


def test_sections_and_header(page, pipe):
    assert page.startswith("<!DOCTYPE html>")
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in page
        assert f'href="#{anchor}"' in page
    header = dict(tuple(row) for row in _parse(page).tables["header"][0])
    assert header["fit cutoff"] == CUTOFF
    assert header["holdout"] == "(2025-06-30, 2025-09-29]: 13 weeks"
    assert header["customers scored"].startswith(f"{pipe.summary_['n_customers']:,} ")
    assert "lightgbm" in header["versions"] and "matplotlib" in header["versions"]


def test_embedded_plots_are_real_pngs(page):
    images = _parse(page).images
    assert len(images) >= 5
    for source in images:
        assert source.startswith("data:image/png;base64,")
        data = base64.b64decode(source.split(",", 1)[1], validate=True)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        image = Image.open(io.BytesIO(data))
        image.load()
        assert image.format == "PNG" and image.width >= 400 and image.height >= 150
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
        assert pixels.std() > 10  # something is drawn, not a blank canvas


def test_no_external_resources(page):
    assert not re.search(r"https?://", page)
    tags = _parse(page).tags
    assert not [t for t, _ in tags if t in ("script", "link", "iframe", "object", "embed")]
    for _, attributes in tags:
        for name in ("src", "href"):
            target = attributes.get(name)
            if target is not None:
                assert target.startswith(("data:", "#")), target
    assert "url(" not in page


def test_metrics_are_the_pipelines(page, pipe, shop):
    metrics = pipe.evaluate(shop.transactions, shop.events, at=CUTOFF)
    table = _frame(_parse(page).tables["metrics"][0])
    assert list(table.index) == list(metrics)
    assert table.loc["churn_roc_auc", "value"] == f"{metrics['churn_roc_auc']:.3f}"
    assert table.loc["ltv_top10_capture", "value"] == f"{metrics['ltv_top10_capture']:.3f}"
    assert table.loc["n_customers", "value"] == f"{int(metrics['n_customers']):,}"


def test_tiers_and_segments_match_the_scores(page, pipe, shop):
    scores = pipe.score(shop.transactions, shop.events, at=CUTOFF)
    tables = _parse(page).tables
    tiers = _frame(tables["tiers"][0])
    assert list(tiers.index) == ["VIP", "Gold", "Standard"]
    counts = scores["vip_tier"].value_counts()
    for tier in tiers.index:
        assert _value(tiers.loc[tier, "customers"]) == counts.get(tier, 0)
    clv_share = scores.groupby("vip_tier")["clv"].sum() / scores["clv"].sum()
    assert _value(tiers.loc["VIP", "clv share"]) == pytest.approx(100 * clv_share["VIP"], abs=0.06)
    assert sum(_value(v) for v in tiers["holdout revenue share"]) == pytest.approx(100, abs=0.2)
    segments = _frame(tables["segments"][0])
    assert set(segments.index) == set(scores["segment"])
    sizes = scores["segment"].value_counts()
    assert {s: _value(segments.loc[s, "customers"]) for s in segments.index} == sizes.to_dict()


def test_migration_before_the_cutoff_at_the_cutoff(page, pipe, shop):
    assert "from 2025-03-31 to 2025-06-30" in html.unescape(page)
    earlier = pipe.score(shop.transactions, shop.events, at="2025-03-31")["segment"]
    now = pipe.score(shop.transactions, shop.events, at=CUTOFF)["segment"]
    counts = _frame(_parse(page).tables["migration"][0]).map(_value)
    assert counts.to_numpy().sum() == len(now)
    stayed = sum(counts.loc[s, s] for s in counts.columns if s in counts.index)
    assert stayed == int((earlier.reindex(now.index) == now).sum())


def test_reasons_of_flagged_customers(page, pipe, shop):
    scores = pipe.score(shop.transactions, shop.events, at=CUTOFF)
    flagged = scores[scores["churn_probability"] >= pipe.config_.churn.alert_threshold]
    reasons = _frame(_parse(page).tables["reasons"][0])
    assert 1 <= len(reasons) <= 10
    firsts = reasons["as first reason"].map(_value)
    assert firsts.is_monotonic_decreasing
    assert firsts.sum() <= len(flagged)
    texts = set(flagged[["reason_1", "reason_2", "reason_3"]].stack())
    assert set(reasons["example"]) <= texts
    assert f"for the {len(flagged):,} customers" in page


def test_deterministic(page, pipe, shop):
    again = build_report(pipe, shop.transactions, shop.events, at=CUTOFF, generated_at="then")
    assert again == page
    header = dict(tuple(row) for row in _parse(page).tables["header"][0])
    assert header["generated"] == "then"


def test_later_scoring_date_polars_logs(pipe, shop):
    logs = pl.from_pandas(shop.transactions), pl.from_pandas(shop.events)
    later = build_report(pipe, *logs, at=LATER)
    text = html.unescape(later)
    assert "from the fit's cutoff 2025-06-30 to the scoring date 2025-08-31" in text
    parsed = _parse(later)
    header = dict(tuple(row) for row in parsed.tables["header"][0])
    assert header["holdout"] == "(2025-08-31, 2025-11-30]: 13 weeks"
    assert "generated" not in header
    now = pipe.score(shop.transactions, shop.events, at=LATER)
    counts = _frame(parsed.tables["migration"][0]).map(_value)
    assert counts.to_numpy().sum() == len(now)
    assert list(counts.index[: len(pipe.segmenter_.names_)]) == list(pipe.segmenter_.names_)


def test_scoring_before_the_cutoff_is_flagged(pipe, shop):
    with pytest.warns(ModelAssumptionWarning, match="before the fit's cutoff"):
        page = build_report(pipe, shop.transactions, shop.events, at="2025-05-31", horizon="8W")
    assert '<p class="warn">' in page
    header = dict(tuple(row) for row in _parse(page).tables["header"][0])
    assert header["holdout"] == "(2025-05-31, 2025-07-26]: 8 weeks"
    # churn is labelled over the model's own 13-week horizon, not the 8-week holdout
    assert header["churn holdout"].startswith("(2025-05-31, 2025-08-30]: 13 weeks")
    assert "Churn = no purchase in (2025-05-31, 2025-08-30]" in page


def test_errors(pipe, shop, monkeypatch):
    with pytest.raises(DataValidationError, match="before the end of the holdout"):
        build_report(pipe, shop.transactions, shop.events, at="2025-11-01")
    with pytest.raises(NotFittedError):
        build_report(VipPipeline(), shop.transactions, at=CUTOFF)
    with pytest.raises(TypeError, match="VipPipeline"):
        build_report(object(), shop.transactions, at=CUTOFF)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=re.escape('pip install "vipml[plot]"')):
        build_report(pipe, shop.transactions, shop.events, at=CUTOFF)


def test_write_report(tmp_path, page):
    out = write_report(page, tmp_path / "report.html")
    assert out == tmp_path / "report.html"
    assert out.read_text(encoding="utf-8") == page
    with pytest.raises(TypeError, match="HTML text"):
        write_report(b"<html></html>", tmp_path / "x.html")  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_report("<p>é</p>", tmp_path / "x.html")
    assert (tmp_path / "x.html").read_bytes() == "<p>é</p>".encode()
