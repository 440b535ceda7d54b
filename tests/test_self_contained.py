"""The test suite needs nothing outside the repository: a user's plain clone runs all of it.

The team's public data folder sits beside the repository (``../shared``) on development
machines only; benchmarks may read it (and say so when it is absent), tests never.
"""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPOSITORY = TESTS.parent

# Ways a test could reach the folder beside the repository: the relative path itself, a path
# built from the repository's parent, or the fixture that used to hand it out.
OUTSIDE = re.compile(
    r"\.\./shared"
    r"|[\"']shared[\"']\s*/"
    r"|/\s*[\"']shared[\"']"
    r"|\bshared_data\b"
    r"|__file__.*\.parents\[\d+\]\.parent\b"
    r"|__file__.*(\.parent){3}"
)


def _test_sources() -> list[Path]:
    return sorted(path for path in TESTS.rglob("*.py") if path != Path(__file__).resolve())


def test_no_test_module_reaches_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(REPOSITORY)}:{number}: {line.strip()}"
        for path in _test_sources()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if OUTSIDE.search(line)
    ]
    assert not offenders, "tests must not read outside the repository:\n" + "\n".join(offenders)


def test_the_pattern_catches_the_ways_it_was_done() -> None:
    for line in (
        'SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"',
        "def published(shared_data):",
        'pd.read_csv("../shared/data/CDNOW_master.txt")',
        "root = Path(__file__).parent.parent.parent",
        'data = Path(__file__).resolve().parents[2].parent / "data"',
    ):
        assert OUTSIDE.search(line), line
    for line in (
        'parity_data / "cdnow_customers_summary.csv"',
        "shared out pro rata",
        "outside = tmp.parent.parent.parent / name",
    ):
        assert not OUTSIDE.search(line), line


def test_no_fixture_names_a_folder_outside_the_repository() -> None:
    """Every data path a conftest hands out resolves inside the repository."""
    from importlib import util

    for conftest in sorted(TESTS.rglob("conftest.py")):
        spec = util.spec_from_file_location(f"_conftest_{conftest.parent.name}", conftest)
        module = util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for name, value in vars(module).items():
            if isinstance(value, Path):
                assert value.resolve().is_relative_to(REPOSITORY), (conftest, name, value)
