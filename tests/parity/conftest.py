"""Fixtures of the parity tests: where the shared public data live."""

from __future__ import annotations

from pathlib import Path

import pytest

# pytest runs with --doctest-modules: collecting this file as a doctest module would import it a
# second time under the name "conftest", which clashes with the other folders' conftest.py files.
collect_ignore = ["conftest.py"]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of public data (CDNOW files), beside the repository: ``../shared/data``.

    CI clones the repository with ``shared/`` next to it, as on the development machines.
    """
    path = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    if not path.is_dir():
        pytest.fail(f"shared data folder not found at {path}: clone 'shared' beside the repository")
    return path
