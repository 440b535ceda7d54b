"""Paths of the parity tests' data: copies kept in the repository and files vipml ships.

Nothing here reads outside the repository: a plain clone runs every parity test
(see ``tests/parity/data/README.md`` for the provenance and checksums of each file).
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

PARITY_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def parity_data() -> Path:
    """The folder of published summaries kept beside these tests."""
    return PARITY_DATA


@pytest.fixture(scope="session")
def cdnow_sample_file() -> Iterator[Path]:
    """The raw CDNOW sample as vipml ships it (gzip; byte-identical to the source once inflated)."""
    packaged = resources.files("vipml.data").joinpath("_files", "CDNOW_sample.txt.gz")
    with resources.as_file(packaged) as path:
        yield path
