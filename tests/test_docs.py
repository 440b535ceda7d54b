"""The documentation site's Python examples run, page by page, as a reader would paste them.

Each page's ```python blocks run in order in one namespace, in a fresh Python process started in
a temporary folder (examples that write files write them there), compiled at their own line
numbers so a failure points at the page and line. An example must not warn unless it silences
that warning itself and says why. Pages owned by other topics (churn, segments, scale, serving)
hold measured tables, longer jobs or a running service; the modules' own tests cover them. Blocks
fenced as ```py instead of ```python are shown, not run: they need a service that is not a
dependency (an Airflow DAG).

The process runs with ``OMP_WAIT_POLICY=PASSIVE``: on a machine busy with other processes,
OpenMP threads that spin at barriers made LightGBM's fits 30 times slower; sleeping threads
cost nothing measurable on an idle machine.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
FENCE = re.compile(r"^```python\n(.*?)^```", flags=re.S | re.M)
NOT_RUN = {"churn.md", "segments.md", "scale.md", "serving.md"}
PAGES = sorted(
    p.relative_to(DOCS).as_posix()
    for p in DOCS.rglob("*.md")
    if p.name not in NOT_RUN and FENCE.search(p.read_text())
)

# Reads a page's source from stdin and runs it as the page (argv[1]) with warnings as errors.
RUNNER = """
import sys
import warnings

warnings.simplefilter("error")
warnings.filterwarnings("ignore", module="lifetimes")  # the reference library's own
warnings.filterwarnings("ignore", category=DeprecationWarning)
exec(compile(sys.stdin.read(), sys.argv[1], "exec"), {"__name__": "__docs__"})
"""


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
    text = "# t\n\n```python\nx = 1\n```\n\ntext\n```py\nshown = 1\n```\n```python\ny = x\n```\n"
    source = page_source(text).splitlines()
    assert source[3] == "x = 1" and source[11] == "y = x"
    assert sum(bool(line) for line in source) == 2


def test_a_failing_example_fails_with_its_page_and_line(tmp_path):
    run = run_page(tmp_path, "# t\n\n```python\nx = 1\nassert x == 2\n```\n", "broken.md")
    assert run.returncode != 0
    assert 'broken.md", line 5' in run.stderr


def run_page(folder: Path, text: str, name: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-c", RUNNER, name],
        input=page_source(text),
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
        timeout=600,
    )


@pytest.mark.parametrize("page", PAGES)
def test_page_examples_run(page, tmp_path):
    path = DOCS / page
    run = run_page(tmp_path, path.read_text(), str(path))
    assert run.returncode == 0, f"{page} failed:\n{run.stderr[-4000:]}"
