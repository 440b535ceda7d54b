"""The suppression list: tombstones of erased customers, kept so they are never contacted again.

Erasing a customer removes what vipml holds about them, but a log re-ingested tomorrow (a
nightly export, a replayed Kafka topic) still carries their ids. The suppression list keeps a
salted SHA-256 of each erased id (the customer id and every linked source id), never the id
itself, so :class:`~vipml.privacy.ContactPolicy` can withhold contacts to them without vipml
keeping who they were.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vipml.errors import DataValidationError

__all__ = ["SuppressionList"]

_FORMAT = 1


class SuppressionList:
    """Salted hashes of erased customer ids, optionally persisted to a JSON file.

    Parameters
    ----------
    path : str or path-like, optional
        JSON file to read (when it exists) and write on every :meth:`add`; in memory only
        when None.
    salt : str, optional
        Hex salt of the hashes; a new random one when the list is new. Keep the file (or the
        salt): without it, tombstones can no longer be matched.

    Examples
    --------
    >>> tombstones = SuppressionList()
    >>> tombstones.add(["C000042", "web:w17"], reason="erasure request")
    2
    >>> "C000042" in tombstones, "C000043" in tombstones
    (True, False)
    >>> tombstones.mask(["C000043", "web:w17"]).tolist()
    [False, True]
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, salt: str | None = None):
        self.path = None if path is None else Path(path)
        self._entries: dict[str, dict[str, str]] = {}
        if self.path is not None and self.path.exists():
            self._read(self.path, salt)
        else:
            self.salt = salt if salt is not None else secrets.token_hex(16)

    def __repr__(self) -> str:
        return f"SuppressionList(entries={len(self)}, path={self.path})"

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, customer_id: object) -> bool:
        return self._hash(customer_id) in self._entries

    def add(self, customer_ids: Iterable[Any], *, reason: str = "erasure", at: Any = None) -> int:
        """Add tombstones for ids (written to ``path`` at once); return how many were new."""
        when = (pd.Timestamp.now(tz="UTC") if at is None else pd.Timestamp(at)).isoformat()
        new = 0
        for customer_id in customer_ids:
            digest = self._hash(customer_id)
            if digest not in self._entries:
                self._entries[digest] = {"reason": str(reason), "at": when}
                new += 1
        if self.path is not None:
            self._write(self.path)
        return new

    def mask(self, customer_ids: Iterable[Any]) -> np.ndarray:
        """Whether each id is suppressed (each distinct id is hashed once)."""
        ids = pd.Series(list(customer_ids), dtype=object)
        distinct = ids.drop_duplicates()
        hit = {value: self._hash(value) in self._entries for value in distinct}
        return ids.map(hit).to_numpy(dtype=bool)

    def __call__(self, contacts: pd.DataFrame) -> pd.Series:
        """The contact-policy hook of :mod:`vipml.actions`: ``"suppressed"`` or None per row.

        ``contacts`` is indexed by customer id (or has a ``customer_id`` column).
        """
        ids = contacts.get("customer_id", contacts.index)
        held = self.mask(ids)
        return pd.Series(np.where(held, "suppressed", None), index=contacts.index, dtype=object)

    def _hash(self, customer_id: object) -> str:
        # 42 and "42" are one id here: when in doubt, suppress.
        return hashlib.sha256(f"{self.salt}\x1f{customer_id}".encode()).hexdigest()

    def _read(self, path: Path, salt: str | None) -> None:
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DataValidationError(
                f"{path} is not a readable suppression list ({exc})."
            ) from exc
        if not isinstance(document, dict) or document.get("format") != _FORMAT:
            raise DataValidationError(f"{path} is not a suppression list (format {_FORMAT}).")
        if salt is not None and salt != document.get("salt"):
            raise DataValidationError(f"salt differs from the salt stored in {path}.")
        self.salt = str(document["salt"])
        entries = document.get("entries", {})
        if not isinstance(entries, dict):
            raise DataValidationError(f"{path}: entries must be a mapping of hashes.")
        self._entries = {str(k): dict(v) for k, v in entries.items()}

    def _write(self, path: Path) -> None:
        document = {
            "format": _FORMAT,
            "salt": self.salt,
            "written": dt.datetime.now(dt.timezone.utc).isoformat(),
            "entries": dict(sorted(self._entries.items())),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(path.name + ".tmp")
        aside.write_text(json.dumps(document, indent=1) + "\n")
        os.replace(aside, path)  # atomic: a crash leaves the old list or the new one
