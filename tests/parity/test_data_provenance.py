"""The parity data kept in the repository are the files its README describes, byte for byte."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

PARITY_DATA = Path(__file__).resolve().parent / "data"

ROW = re.compile(r"^\| `(?P<name>[^`]+)` \|.*\| (?P<size>[\d,]+) \| `(?P<sha256>[0-9a-f]{64})` \|$")


def _recorded() -> dict[str, tuple[int, str]]:
    """File name -> (bytes, SHA-256) from the README's first table (the files kept here)."""
    readme = (PARITY_DATA / "README.md").read_text(encoding="utf-8")
    rows = {}
    for line in readme.splitlines():
        match = ROW.match(line)
        if match and (PARITY_DATA / match["name"]).exists():
            rows[match["name"]] = (int(match["size"].replace(",", "")), match["sha256"])
    return rows


def test_every_data_file_is_recorded_with_its_checksum() -> None:
    kept = {path.name for path in PARITY_DATA.iterdir() if path.name != "README.md"}
    assert kept, "the parity data folder is empty"
    assert kept == set(_recorded())


def test_checksums_match() -> None:
    for name, (size, sha256) in _recorded().items():
        content = (PARITY_DATA / name).read_bytes()
        assert len(content) == size, name
        assert hashlib.sha256(content).hexdigest() == sha256, name
