"""The documentation site's Python examples run, page by page, as a reader would paste them.

Each page's ```python blocks run in order in one namespace, compiled at their own line numbers
so a failure points at the page and line. Pages owned by other topics (churn, segments, scale)
hold measured tables and longer jobs; their examples are covered by the modules' own tests.
Blocks fenced as ```py instead of ```python are shown, not run: they need a service that is
not a dependency (an Airflow DAG).
"""

import re
import warnings
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
FENCE = re.compile(r"^```python\n(.*?)^```", flags=re.S | re.M)
NOT_RUN = {"churn.md", "segments.md", "scale.md"}
PAGES = sorted(
    p.relative_to(DOCS).as_posix()
    for p in DOCS.rglob("*.md")
    if p.name not in NOT_RUN and FENCE.search(p.read_text())
)


def page_source(text: str) -> str:
    """The page's python blocks, every other line blanked so line numbers match the page."""
    lines = [""] * (text.count("\n") + 1)
    for match in FENCE.finditer(text):
        first = text.count("\n", 0, match.start(1))
        for offset, line in enumerate(match.group(1).splitlines()):
            lines[first + offset] = line
    return "\n".join(lines)


def test_pages_with_examples_are_found():
    assert {"quickstart.md", "migrating.md", "how-to/columns.md"} <= set(PAGES)


def test_page_source_keeps_line_numbers():
    text = "# t\n\n```python\nx = 1\n```\n\ntext\n```python\ny = x + 1\n```\n"
    source = page_source(text).splitlines()
    assert source[3] == "x = 1" and source[8] == "y = x + 1"
    assert sum(bool(line) for line in source) == 2


@pytest.mark.parametrize("page", PAGES)
def test_page_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    path = DOCS / page
    namespace: dict = {"__name__": "__docs__"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an example must not warn unless it says why
        warnings.filterwarnings("ignore", module="lifetimes")  # reference library's own
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        exec(compile(page_source(path.read_text()), str(path), "exec"), namespace)
