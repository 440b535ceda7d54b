"""Identity resolution: one customer id for the records that several sources hold of a person.

The web shop, the store's loyalty card, the app and the call centre each know a customer under
their own id. :func:`link_identities` takes their records (one row per source and source id,
with identifiers such as e-mail, phone or card number), normalises the identifiers, links every
two records that share one, and gives each connected group of records one customer id. It
reports the links that look wrong (an identifier shared by many records, records of one source
joined together, a shared household address) and, with :class:`FuzzyMatch` and the ``link``
extra, adds probabilistic links on names, addresses and dates of birth through Splink.
:func:`resolve` then rewrites the customer id of a transaction or event log before any feature
is built, where the data live (pandas, polars, DuckDB, Spark through narwhals).

Customer ids are deterministic: the id of a group is ``"<source>:<source id>"`` of its first
record in the order (source priority, source, source id), so the same records give the same ids
whatever their order, and a record that no group holds keeps the id it would have alone.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import narwhals.stable.v2 as nw
import numpy as np
import pandas as pd
import polars as pl
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from vipml.data.columns import Columns
from vipml.data.identifiers import as_string_series, email_keys, phone_keys, text_keys
from vipml.data.matching import FuzzyMatch
from vipml.errors import DataValidationError, DataWarning

__all__ = [
    "IdentityMap",
    "link_identities",
    "resolve",
]

logger = logging.getLogger(__name__)

KeyKind = Literal["email", "phone", "exact"]
Unknown = Literal["singleton", "error", "drop"]

_SEP = "\x1f"
_MAPPING_FILE = "identity_map.parquet"
_META_FILE = "identity_map.json"
_FORMAT = 1


def _text_dtype() -> Any:
    try:  # pandas >= 2.3: the string dtype Parquet and Arrow read back
        return pd.StringDtype(na_value=np.nan)
    except TypeError:  # pragma: no cover - older pandas
        return object


_TEXT = _text_dtype()
_N_EXAMPLES = 5


# ---- the identity map -------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class IdentityMap:
    """Result of :func:`link_identities`: which customer each source record belongs to.

    Attributes
    ----------
    mapping : pandas.DataFrame
        ``source``, ``source_id`` and ``customer_id`` (strings), one row per source record,
        sorted by source and source id.
    report : pandas.DataFrame
        Suspicious links, one row per finding: ``kind`` (``"over_cap"``: an identifier held by
        more records than the cap, not used to link; ``"same_source"``: an identifier that
        joins several records of one source, linked; ``"household"``: an address shared by
        several customers, never linked; ``"large_group"``: a customer made of more records
        than ``max_group``), ``key``, ``value``, ``n_records``, ``n_customers``, ``action``.
    summary : dict
        Counts: records, customers, linked records, and per key present, invalid and
        over-cap values, fuzzy links, settings.
    """

    mapping: pd.DataFrame
    report: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"IdentityMap(records={len(self.mapping)}, customers="
            f"{self.mapping['customer_id'].nunique()}, findings={len(self.report)})"
        )

    def customer_of(self, source: str, source_id: Any) -> str | None:
        """The customer id of one source record, or None when the map does not hold it."""
        hit = self.mapping[
            (self.mapping["source"] == str(source)) & (self.mapping["source_id"] == str(source_id))
        ]
        return None if hit.empty else str(hit["customer_id"].iloc[0])

    def linked_ids(self, customer_id: Any) -> pd.DataFrame:
        """The source records (``source``, ``source_id``) of one customer."""
        rows = self.mapping[self.mapping["customer_id"] == str(customer_id)]
        return rows[["source", "source_id"]].reset_index(drop=True)

    def to_parquet_bytes(self) -> bytes:
        """The mapping as Parquet bytes, identical for identical mappings."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        table = pa.Table.from_pandas(self.mapping, preserve_index=False)
        pq.write_table(table.replace_schema_metadata(None), buffer, compression="zstd")
        return buffer.getvalue()

    @property
    def sha256(self) -> str:
        """sha256 of the mapping's Parquet bytes: the version recorded beside a model."""
        return hashlib.sha256(self.to_parquet_bytes()).hexdigest()

    def manifest_entry(self) -> dict[str, Any]:
        """What a model bundle records of the map it was trained with (JSON, no rows).

        Pass it in the bundle's metadata (``bundle.save(pipe, path, metadata={"identity_map":
        identities.manifest_entry()})``) and read the map back with
        ``IdentityMap.load(folder, sha256=manifest["metadata"]["identity_map"]["sha256"])``:
        scores are then always read with the ids they were computed on.
        """
        return {
            "format": _FORMAT,
            "sha256": self.sha256,
            "n_records": len(self.mapping),
            "n_customers": int(self.mapping["customer_id"].nunique()),
        }

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``identity_map.parquet`` and ``identity_map.json`` (summary, hash) to a folder.

        The folder may be a model bundle's: the JSON file records the Parquet file's sha256,
        which :meth:`load` checks.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        data = self.to_parquet_bytes()
        (folder / _MAPPING_FILE).write_bytes(data)
        meta = {
            "format": _FORMAT,
            "sha256": hashlib.sha256(data).hexdigest(),
            "summary": self.summary,
            "report": self.report.to_dict(orient="list"),
        }
        (folder / _META_FILE).write_text(json.dumps(meta, sort_keys=True, default=str) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike[str], *, sha256: str | None = None) -> IdentityMap:
        """Read a map written by :meth:`save`, refusing a Parquet file whose hash differs.

        ``sha256`` (e.g. the one a model bundle recorded, see :meth:`manifest_entry`) must then
        also match: a model is never used with another map than its own.
        """
        folder = Path(folder)
        try:
            meta = json.loads((folder / _META_FILE).read_text())
            data = (folder / _MAPPING_FILE).read_bytes()
        except (OSError, ValueError) as exc:
            raise DataValidationError(
                f"No readable identity map in {folder} ({exc}); write one with IdentityMap.save."
            ) from exc
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise DataValidationError(f"{folder / _META_FILE} is not an identity map (format 1).")
        if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            raise DataValidationError(
                f"{folder / _MAPPING_FILE} does not match the sha256 in {_META_FILE}: the file "
                "was changed or damaged. Link the identities again."
            )
        if sha256 is not None and sha256 != meta.get("sha256"):
            raise DataValidationError(
                f"The identity map in {folder} (sha256 {str(meta.get('sha256'))[:12]}...) is not "
                f"the one expected ({sha256[:12]}...): the model was trained with another map."
            )
        mapping = pd.read_parquet(io.BytesIO(data)).astype(_TEXT)
        _check_mapping(mapping)
        report = pd.DataFrame(meta.get("report") or {c: [] for c in _REPORT_COLUMNS})
        return cls(mapping=mapping, report=report, summary=meta.get("summary", {}))


_REPORT_COLUMNS = ("kind", "key", "value", "n_records", "n_customers", "action")


def link_identities(
    records: Any,
    keys: Sequence[str | Sequence[str]] | Mapping[str, KeyKind | Callable[..., Any]] = (
        "email",
        "phone",
    ),
    *,
    source: str = "source",
    source_id: str = "source_id",
    region: str = "KR",
    max_records_per_key: int | None = 10,
    household: str | Sequence[str] | None = None,
    max_group: int = 50,
    fuzzy: FuzzyMatch | None = None,
    priority: Sequence[str] = (),
    previous: IdentityMap | pd.DataFrame | None = None,
) -> IdentityMap:
    """Link the records that several sources hold of one person under one customer id.

    Every identifier is normalised (e-mails: blanks removed and lower case; phones: E.164 with
    ``phonenumbers``; other keys: blanks collapsed, case folded), two records that share a
    normalised identifier are linked, and each connected group of records (connected
    components of the record-identifier graph, ``scipy.sparse.csgraph``) becomes one customer.
    With ``fuzzy``, pairs that Splink scores at or above its threshold are linked too.

    Parameters
    ----------
    records : DataFrame-like
        One row per source record (pandas, polars, pyarrow, DuckDB, ...): the source, the
        record's id in it, and identifier columns. A record may span several rows (several
        e-mails of one account): its rows are one node.
    keys : sequence or mapping, default ("email", "phone")
        The identifier columns. A name containing ``mail`` is normalised as an e-mail, one
        containing ``phone``, ``mobile`` or ``tel`` as a phone number, any other as text. A
        tuple of columns is one composite key (all parts must be present), e.g.
        ``("first_name", "surname", "birth_date")``. A mapping gives the kind explicitly
        (``"email"``, ``"phone"``, ``"exact"`` or a callable from a pandas Series to the
        normalised Series).
    source, source_id : str, default "source", "source_id"
        Columns naming the source and the record's id in it.
    region : str, default "KR"
        Country of phone numbers written without a country code.
    max_records_per_key : int or None, default 10
        An identifier held by more records than this (a shop's own phone number typed into
        every walk-in's loyalty card, ``noemail@none.com``) is not used to link, and is
        reported. None links through any identifier.
    household : str or sequence of str, optional
        Address column(s). Customers who share an address are reported as a household and
        never linked through it.
    max_group : int, default 50
        Customers made of more records than this are reported (long chains of links).
    fuzzy : FuzzyMatch, optional
        Probabilistic links through Splink (``vipml[link]``).
    priority : sequence of str, optional
        Sources in order of preference for the customer id: a group's id comes from its record
        of the first source listed (then the others, alphabetically).
    previous : IdentityMap or DataFrame, optional
        An earlier map. A group that holds records of an earlier customer keeps that
        customer's id (the one most of its records had; when a customer splits, the larger
        part keeps it), so ids stay stable across re-linking.

    Returns
    -------
    IdentityMap

    Raises
    ------
    DataValidationError
        A missing column, missing source or source ids, or an empty frame.

    Examples
    --------
    >>> import pandas as pd
    >>> records = pd.DataFrame({
    ...     "source": ["web", "store", "app", "web"],
    ...     "source_id": ["w1", "s9", "a3", "w2"],
    ...     "email": ["Kim@Example.com", None, "kim@example.com ", "lee@example.com"],
    ...     "phone": [None, "010-1234-5678", "+82 10 1234 5678", None],
    ... })
    >>> identities = link_identities(records, keys=["email", "phone"])
    >>> identities.mapping
      source source_id customer_id
    0    app        a3      app:a3
    1  store        s9      app:a3
    2    web        w1      app:a3
    3    web        w2      web:w2
    """
    frame = _records_frame(records, source, source_id)
    specs = _key_specs(keys)
    needed = {c for spec in specs for c in spec[1]}
    if household is not None:
        household = (household,) if isinstance(household, str) else tuple(household)
        needed |= set(household)
    if fuzzy is not None:
        needed |= set(fuzzy.columns)
    missing = sorted(needed - set(frame.columns))
    if missing:
        raise DataValidationError(
            f"records lack the column(s) {missing}; available: {frame.columns}. Name the "
            "identifier columns in keys=..., household=... and FuzzyMatch."
        )
    if max_records_per_key is not None and max_records_per_key < 2:
        raise ValueError(f"max_records_per_key must be at least 2, got {max_records_per_key}.")

    distinct, node_source, node = _nodes(frame)
    n = distinct.height
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    links: list[_KeyLinks] = []
    key_summary: dict[str, dict[str, int]] = {}
    offset = n
    for label, columns, kind in specs:
        values, n_invalid = _normalised_key(frame, columns, kind, region)
        present = values.is_not_null().to_numpy()
        codes = values.filter(values.is_not_null()).rank("dense").to_numpy().astype(np.int64) - 1
        key_nodes = node[present]
        # One edge per (record, identifier): several rows of a record count once.
        pairs = np.unique(codes * n + key_nodes)
        codes, key_nodes = pairs // n, pairs % n
        n_values = int(codes.max()) + 1 if codes.size else 0
        per_value = np.bincount(codes, minlength=n_values)
        over = np.zeros(n_values, dtype=bool)
        if max_records_per_key is not None:
            over = per_value > max_records_per_key
        keep = ~over[codes]
        rows.append(key_nodes[keep])
        cols.append(codes[keep] + offset)
        offset += n_values
        key_summary[label] = {
            "present": int(present.sum()),
            "invalid": n_invalid,
            "distinct": n_values,
            "over_cap": int(over.sum()),
        }
        # Dense ranks number the distinct values in sorted order.
        key_values = values.drop_nulls().unique().sort().to_numpy()
        links.append(_KeyLinks(label, key_values, codes, key_nodes, over))

    fuzzy_pairs = pd.DataFrame({"left": [], "right": []}, dtype=np.int64)
    if fuzzy is not None:
        fuzzy_frame = _fuzzy_frame(frame, node, fuzzy)
        fuzzy_pairs = fuzzy.pairs(fuzzy_frame)
    edges_from = np.concatenate([*rows, fuzzy_pairs["left"].to_numpy(dtype=np.int64)])
    edges_to = np.concatenate([*cols, fuzzy_pairs["right"].to_numpy(dtype=np.int64)])
    graph = sp.coo_matrix(
        (np.ones(edges_from.size, dtype=np.int8), (edges_from, edges_to)), shape=(offset, offset)
    )
    _, labels = connected_components(graph, directed=False)
    labels = labels[:n]

    customer = _customer_ids(distinct, node_source, labels, priority)
    if previous is not None:
        customer = _keep_previous(distinct, labels, customer, previous)
    mapping = pl.DataFrame(
        {
            "source": distinct.get_column("_source"),
            "source_id": distinct.get_column("_source_id"),
            "customer_id": pl.Series(customer, dtype=pl.String),
        }
    ).to_pandas()
    mapping = mapping.astype(_TEXT)

    report = _report(links, frame, node, node_source, labels, customer, household, max_group)
    group_sizes = np.bincount(labels)
    summary: dict[str, Any] = {
        "n_records": int(n),
        "n_customers": int(group_sizes.size),
        "n_linked_records": int((group_sizes[labels] > 1).sum()),
        "largest_group": int(group_sizes.max()),
        "keys": key_summary,
        "n_fuzzy_links": len(fuzzy_pairs),
        "settings": {
            "region": region,
            "max_records_per_key": max_records_per_key,
            "max_group": max_group,
            "priority": list(priority),
            "fuzzy_threshold": None if fuzzy is None else fuzzy.threshold,
        },
    }
    logger.info(
        "Linked %d records into %d customers (%d findings).",
        n,
        summary["n_customers"],
        len(report),
    )
    return IdentityMap(mapping=mapping, report=report, summary=summary)


def _records_frame(records: Any, source: str, source_id: str) -> pl.DataFrame:
    try:
        frame = nw.from_native(records)
    except TypeError as exc:
        raise DataValidationError(
            f"records must be a DataFrame (pandas, polars, pyarrow, DuckDB, ...), got "
            f"{type(records).__name__}."
        ) from exc
    if isinstance(frame, nw.LazyFrame):
        frame = frame.collect(backend="polars")
    native = frame.to_polars()
    for column in (source, source_id):
        if column not in native.columns:
            raise DataValidationError(
                f"records lack the column '{column}'; available: {native.columns}. Pass "
                "source=... and source_id=... naming the source and the record's id in it."
            )
    if native.height == 0:
        raise DataValidationError("records is empty: there is nothing to link.")
    if native.schema[source_id].is_float():
        raise DataValidationError(
            f"Column '{source_id}' holds floats; ids must be integers or strings (a float id "
            "such as 12.0 would not match '12' in the logs). Cast it first."
        )
    ids = native.select(
        pl.col(source).cast(pl.String).alias("_source"),
        pl.col(source_id).cast(pl.String).alias("_source_id"),
    )
    bad = ids.select(
        (pl.col("_source").is_null() | (pl.col("_source") == "")).alias("s"),
        (pl.col("_source_id").is_null() | (pl.col("_source_id") == "")).alias("i"),
    )
    for flag, column in (("s", source), ("i", source_id)):
        mask = bad.get_column(flag)
        if mask.any():
            rows = np.flatnonzero(mask.to_numpy())[:_N_EXAMPLES].tolist()
            raise DataValidationError(
                f"Column '{column}' of records has {int(mask.sum())} missing or empty value(s) "
                f"(rows {rows}). Every record needs its source and its id there."
            )
    return native.with_columns(ids)


def _nodes(frame: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Distinct (source, source id) records in sorted order, their source codes, row nodes."""
    ids = frame.select("_source", "_source_id")
    distinct = ids.unique().sort("_source", "_source_id")
    numbered = distinct.with_row_index("_node")
    node = ids.join(numbered, on=["_source", "_source_id"], how="left", maintain_order="left")
    source_code = distinct.get_column("_source").rank("dense").to_numpy().astype(np.int64) - 1
    return distinct, source_code, node.get_column("_node").to_numpy().astype(np.int64)


def _key_specs(
    keys: Sequence[str | Sequence[str]] | Mapping[str, Any],
) -> list[tuple[str, tuple[str, ...], Any]]:
    if isinstance(keys, str):
        keys = (keys,)
    specs: list[tuple[str, tuple[str, ...], Any]] = []
    if isinstance(keys, Mapping):
        for name, kind in keys.items():
            columns = (name,) if isinstance(name, str) else tuple(name)
            specs.append((_label(columns), columns, kind))
    else:
        for key in keys:
            columns = (key,) if isinstance(key, str) else tuple(key)
            kind = _guess_kind(columns[0]) if len(columns) == 1 else "exact"
            specs.append((_label(columns), columns, kind))
    if not specs:
        raise ValueError("keys must name at least one identifier column.")
    for label, columns, kind in specs:
        if not callable(kind) and kind not in ("email", "phone", "exact"):
            raise ValueError(
                f"The kind of key {label!r} must be 'email', 'phone', 'exact' or a callable, "
                f"got {kind!r}."
            )
        if not callable(kind) and kind != "exact" and len(columns) > 1:
            raise ValueError(f"A composite key ({label}) is compared as 'exact' text.")
    return specs


def _label(columns: tuple[str, ...]) -> str:
    return "+".join(columns)


def _guess_kind(name: str) -> KeyKind:
    lowered = name.lower()
    if "mail" in lowered:
        return "email"
    if any(word in lowered for word in ("phone", "mobile", "tel")):
        return "phone"
    return "exact"


def _normalised_key(
    frame: pl.DataFrame, columns: tuple[str, ...], kind: Any, region: str
) -> tuple[pl.Series, int]:
    """The normalised identifier of every row (null where absent) and the invalid count."""
    if len(columns) == 1:
        raw = frame.get_column(columns[0])
        given = raw.cast(pl.String, strict=False)
        given_mask = given.is_not_null() & (given.str.strip_chars() != "")
        if callable(kind):
            values = as_string_series(kind(raw.to_pandas()))
        elif kind == "email":
            values = email_keys(given)
        elif kind == "phone":
            values = phone_keys(given, region)
        else:
            values = text_keys(raw)
        invalid = int((given_mask.fill_null(False) & values.is_null()).sum())
        return values.alias("v"), invalid
    parts = [text_keys(frame.get_column(c)) for c in columns]
    joined = pl.select(pl.concat_str(parts, separator=_SEP)).to_series()
    return joined.alias("v"), 0


@dataclass(frozen=True)
class _KeyLinks:
    """The identifiers of one key: per (record, identifier) edge its code and record node."""

    label: str
    values: np.ndarray  # distinct normalised values, in code order
    codes: np.ndarray
    nodes: np.ndarray
    over: np.ndarray  # per code: held by more records than the cap


def _fuzzy_frame(frame: pl.DataFrame, node: np.ndarray, fuzzy: FuzzyMatch) -> pd.DataFrame:
    """One row per record node with the compared columns (first non-missing value)."""
    exprs = []
    for column in fuzzy.columns:
        if column in fuzzy.dates:
            expr = pl.col(column)
            dtype = frame.schema[column]
            expr = expr.dt.strftime("%Y-%m-%d") if dtype.is_temporal() else expr.cast(pl.String)
        else:
            expr = pl.col(column).cast(pl.String)
            expr = expr.str.replace_all(r"\s+", " ").str.strip_chars().str.to_lowercase()
        exprs.append(pl.when(expr.str.len_chars() > 0).then(expr).alias(column))
    per_row = frame.select(*exprs).with_columns(_node=pl.Series(node))
    per_node = per_row.group_by("_node").agg(pl.col(c).drop_nulls().first() for c in fuzzy.columns)
    return per_node.sort("_node").to_pandas()


def _customer_ids(
    distinct: pl.DataFrame, source_code: np.ndarray, labels: np.ndarray, priority: Sequence[str]
) -> np.ndarray:
    """``source:source_id`` of each group's first record by (priority, source, id)."""
    sources = distinct.get_column("_source").unique().sort().to_list()
    rank = {name: i for i, name in enumerate(priority)}
    source_rank = np.array([rank.get(s, len(rank)) for s in sources], dtype=np.int64)
    # Nodes are numbered in (source, id) order, so the node number breaks ties.
    order = np.lexsort((np.arange(labels.size), source_rank[source_code], labels))
    first = np.ones(labels.size, dtype=bool)
    first[1:] = labels[order][1:] != labels[order][:-1]
    representative = np.empty(labels.max() + 1, dtype=np.int64)
    representative[labels[order][first]] = order[first]
    ids = distinct.select(pl.concat_str([pl.col("_source"), pl.lit(":"), pl.col("_source_id")]))
    return ids.to_series()[representative[labels]].to_numpy().astype(object)


def _keep_previous(
    distinct: pl.DataFrame,
    labels: np.ndarray,
    customer: np.ndarray,
    previous: IdentityMap | pd.DataFrame,
) -> np.ndarray:
    """Give each group the earlier id most of its records had (the larger part on a split)."""
    old = previous.mapping if isinstance(previous, IdentityMap) else previous
    _check_mapping(old)
    now = pd.DataFrame(
        {
            "source": distinct.get_column("_source").to_numpy().astype(object),
            "source_id": distinct.get_column("_source_id").to_numpy().astype(object),
            "group": labels,
            "customer_id": customer,
        }
    )
    old = old[["source", "source_id", "customer_id"]].astype(str)
    joined = now.merge(old, on=["source", "source_id"], how="inner", suffixes=("", "_old"))
    if joined.empty:
        return customer
    votes = joined.groupby(["group", "customer_id_old"], sort=True).size().rename("votes")
    votes = votes.reset_index().sort_values(
        ["customer_id_old", "votes", "group"], ascending=[True, False, True]
    )
    # Each earlier id goes to the group holding most of its records; each group takes the
    # earlier id with most votes among those it won.
    won = votes.drop_duplicates("customer_id_old")
    won = won.sort_values(["group", "votes", "customer_id_old"], ascending=[True, False, True])
    won = won.drop_duplicates("group")
    kept = np.full(labels.max() + 1, None, dtype=object)
    kept[won["group"].to_numpy(dtype=np.int64)] = won["customer_id_old"].to_numpy(dtype=object)
    per_node = kept[labels]
    has_old = pd.notna(per_node)
    out = np.where(has_old, per_node, customer)
    # A new id that collides with a kept earlier id would merge two customers: suffix it.
    clash = ~has_old & pd.Series(out).isin(won["customer_id_old"]).to_numpy()
    out[clash] = np.char.add(out[clash].astype(str), "~").astype(object)
    return out


def _report(
    links: list[_KeyLinks],
    frame: pl.DataFrame,
    node: np.ndarray,
    node_source: np.ndarray,
    labels: np.ndarray,
    customer: np.ndarray,
    household: tuple[str, ...] | None,
    max_group: int,
) -> pd.DataFrame:
    """The suspicious links (see :class:`IdentityMap`), largest first within each kind."""
    parts = [_key_report(key, node_source, labels) for key in links]
    if household:
        parts.append(_household_report(frame, node, labels, household))
    sizes = np.bincount(labels)
    big = np.flatnonzero(sizes > max_group)
    first_node = np.full(sizes.size, -1)
    first_node[labels[::-1]] = np.arange(labels.size)[::-1]
    large = pd.Series(sizes[big], index=customer[first_node[big]]).sort_index()
    parts.append(
        pd.DataFrame(
            {
                "kind": "large_group",
                "key": "customer_id",
                "value": large.index.astype(str),
                "n_records": large.to_numpy(dtype=np.int64),
                "n_customers": 1,
                "action": "linked",
            }
        )
    )
    parts = [p for p in parts if not p.empty]
    if not parts:
        empty = pd.DataFrame({c: pd.Series(dtype=object) for c in _REPORT_COLUMNS})
        return empty.astype({"n_records": np.int64, "n_customers": np.int64})
    report = pd.concat(parts, ignore_index=True)[list(_REPORT_COLUMNS)]
    report = report.astype({"n_records": np.int64, "n_customers": np.int64})
    return report.sort_values(
        ["kind", "n_records", "key", "value"], ascending=[True, False, True, True]
    ).reset_index(drop=True)


def _key_report(key: _KeyLinks, node_source: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Identifiers over the cap (not used) and identifiers joining records of one source."""
    edges = pd.DataFrame(
        {
            "code": key.codes,
            "source": node_source[key.nodes],
            "customer": labels[key.nodes],
        }
    )
    per_code = edges.groupby("code").agg(
        n_records=("source", "size"), n_customers=("customer", "nunique")
    )
    over = per_code[key.over[per_code.index.to_numpy()]]
    same = edges[~key.over[key.codes]].groupby(["code", "source"]).size()
    same_codes = np.unique(same[same > 1].index.get_level_values("code").to_numpy())
    joined = per_code.loc[same_codes]

    def rows(table: pd.DataFrame, kind: str, action: str) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "kind": kind,
                "key": key.label,
                "value": [str(v).replace(_SEP, " | ") for v in key.values[table.index]],
                "n_records": table["n_records"].to_numpy(dtype=np.int64),
                "n_customers": table["n_customers"].to_numpy(dtype=np.int64),
                "action": action,
            }
        )

    return pd.concat(
        [rows(over, "over_cap", "not used to link"), rows(joined, "same_source", "linked")],
        ignore_index=True,
    )


def _household_report(
    frame: pl.DataFrame, node: np.ndarray, labels: np.ndarray, household: tuple[str, ...]
) -> pd.DataFrame:
    """Addresses shared by several customers (reported, never used to link)."""
    parts = [text_keys(frame.get_column(c)) for c in household]
    address = pl.select(pl.concat_str(parts, separator=" | ")).to_series().to_list()
    homes = pd.DataFrame({"address": address, "node": node, "customer": labels[node]})
    homes = homes.dropna(subset=["address"])
    per_home = homes.groupby("address").agg(
        n_records=("node", "nunique"), n_customers=("customer", "nunique")
    )
    shared = per_home[per_home["n_customers"] > 1]
    return pd.DataFrame(
        {
            "kind": "household",
            "key": "+".join(household),
            "value": shared.index.astype(str),
            "n_records": shared["n_records"].to_numpy(dtype=np.int64),
            "n_customers": shared["n_customers"].to_numpy(dtype=np.int64),
            "action": "not linked",
        }
    )


def _check_mapping(mapping: Any) -> None:
    if not isinstance(mapping, pd.DataFrame):
        raise DataValidationError(
            f"mapping must be an IdentityMap or a DataFrame, got {type(mapping).__name__}."
        )
    missing = [c for c in ("source", "source_id", "customer_id") if c not in mapping.columns]
    if missing:
        raise DataValidationError(
            f"mapping lacks the column(s) {missing}: it needs source, source_id and "
            "customer_id (as IdentityMap.mapping has)."
        )
    repeated = mapping.duplicated(["source", "source_id"])
    if repeated.any():
        examples = mapping.loc[repeated, ["source", "source_id"]].head(_N_EXAMPLES)
        raise DataValidationError(
            f"mapping maps {int(repeated.sum())} (source, source_id) pair(s) more than once, "
            f"e.g. {examples.to_dict(orient='records')}: one record, one customer."
        )


# ---- applying the map to logs -------------------------------------------------------------------


def resolve(
    log: Any,
    mapping: IdentityMap | pd.DataFrame,
    *,
    source: str | None = None,
    source_column: str = "source",
    columns: Columns | None = None,
    unknown: Unknown = "singleton",
    keep_source_id: str | None = None,
) -> Any:
    """Rewrite a log's customer ids to the linked customer ids, where the log lives.

    Apply it to transactions and events before any feature is built: every builder then sees
    one customer where the sources saw several. The work is a join, run by the log's own
    engine through narwhals (pandas, polars eager or lazy, pyarrow, DuckDB, Spark); nothing is
    collected into Python.

    Parameters
    ----------
    log : DataFrame-like
        A transaction or event log whose customer ids are the ids of one source (pass
        ``source``) or of the source named in each row's ``source_column``.
    mapping : IdentityMap or DataFrame
        The map of :func:`link_identities`, or a frame with ``source``, ``source_id`` and
        ``customer_id``.
    source : str, optional
        The source every row comes from; None reads it from ``source_column``.
    source_column : str, default "source"
        Column naming each row's source when ``source`` is None.
    columns : Columns, optional
        Names of the log's columns (only ``customer_id`` is used).
    unknown : {"singleton", "error", "drop"}, default "singleton"
        Rows whose (source, id) the map does not hold: ``"singleton"`` gives them the id such
        a record would get alone (``"<source>:<id>"``), ``"error"`` refuses them, ``"drop"``
        leaves them out. Either way their number is warned about.
    keep_source_id : str, optional
        Keep the original id in a column of this name.

    Returns
    -------
    DataFrame-like
        The log, same kind and columns, with the customer id column holding linked ids
        (strings). Row order is kept for eager frames.

    Raises
    ------
    DataValidationError
        A missing column, or unknown rows with ``unknown="error"``.

    Warns
    -----
    DataWarning
        When rows have ids the map does not hold (with ``"singleton"`` or ``"drop"``).

    Examples
    --------
    >>> import pandas as pd
    >>> identities = link_identities(pd.DataFrame({
    ...     "source": ["web", "store"], "source_id": ["w1", "s9"],
    ...     "email": ["kim@example.com", "KIM@example.com"]}), keys=["email"])
    >>> tx = pd.DataFrame({"customer_id": ["w1", "s9"], "source": ["web", "store"],
    ...                    "timestamp": pd.to_datetime(["2024-01-02", "2024-02-03"]),
    ...                    "amount": [10.0, 25.0]})
    >>> resolve(tx, identities)["customer_id"].tolist()
    ['store:s9', 'store:s9']
    """
    if unknown not in ("singleton", "error", "drop"):
        raise ValueError(f"unknown must be 'singleton', 'error' or 'drop', got {unknown!r}.")
    table = mapping.mapping if isinstance(mapping, IdentityMap) else mapping
    _check_mapping(table)
    columns = columns or Columns()
    cid = columns.customer_id
    try:
        frame = nw.from_native(log)
    except TypeError as exc:
        raise DataValidationError(
            f"log must be a DataFrame narwhals supports, got {type(log).__name__}."
        ) from exc
    names = list(frame.columns)
    needed = [cid] + ([] if source is not None else [source_column])
    missing = [c for c in needed if c not in names]
    if missing:
        raise DataValidationError(
            f"log lacks the column(s) {missing}; available: {names}. "
            + (
                f"Name each row's source in '{source_column}' or pass source='web' when every "
                "row comes from one source."
                if source_column in missing
                else "Map the customer id column with Columns(customer_id=...)."
            )
        )
    lookup = pd.DataFrame(
        {
            "_vipml_source": table["source"].astype(str).to_numpy(dtype=object),
            "_vipml_key": table["source_id"].astype(str).to_numpy(dtype=object),
            "_vipml_customer": table["customer_id"].astype(str).to_numpy(dtype=object),
        }
    )
    if source is not None:
        lookup = lookup[lookup["_vipml_source"] == str(source)]
    row_source = (
        nw.lit(str(source)) if source is not None else nw.col(source_column).cast(nw.String)
    )
    key = nw.col(cid).cast(nw.String)
    eager = isinstance(frame, nw.DataFrame)
    staged = frame.with_columns(_vipml_key=key, _vipml_source=row_source)
    if eager:
        staged = staged.with_row_index("_vipml_row")
    joined = staged.join(_in_backend(lookup, frame), on=["_vipml_source", "_vipml_key"], how="left")
    if eager:
        joined = joined.sort("_vipml_row")
    unmatched = nw.col("_vipml_customer").is_null()
    n_unknown = _count(joined, unmatched)
    if n_unknown:
        examples = _head(joined.filter(unmatched).select("_vipml_source", "_vipml_key"))
        message = (
            f"{n_unknown} row(s) of the log have customer ids the identity map does not hold, "
            f"e.g. {examples}."
        )
        if unknown == "error":
            raise DataValidationError(
                message + " Link records of those ids too, or pass unknown='singleton'."
            )
        warnings.warn(
            message
            + (
                " They were left out (unknown='drop')."
                if unknown == "drop"
                else " Each keeps the id it would have alone ('<source>:<id>')."
            ),
            DataWarning,
            stacklevel=2,
        )
        if unknown == "drop":
            joined = joined.filter(~unmatched)
    alone = nw.concat_str([nw.col("_vipml_source"), nw.lit(":"), nw.col("_vipml_key")])
    resolved = nw.when(unmatched).then(alone).otherwise(nw.col("_vipml_customer"))
    out_columns = [resolved.alias(cid) if name == cid else nw.col(name) for name in names]
    if keep_source_id is not None:
        if keep_source_id in names:
            raise DataValidationError(
                f"keep_source_id={keep_source_id!r} names a column the log already has."
            )
        out_columns.append(nw.col(cid).alias(keep_source_id))
    return joined.select(*out_columns).to_native()


def _in_backend(lookup: pd.DataFrame, frame: Any) -> Any:
    """The lookup table as a frame of the log's backend (joins need one backend)."""
    implementation = frame.implementation
    if implementation.is_pandas():
        return nw.from_native(lookup)
    arrow = pl.from_pandas(lookup).to_arrow()
    if implementation.is_polars():
        table = nw.from_native(pl.from_arrow(arrow))
        return table.lazy() if isinstance(frame, nw.LazyFrame) else table
    if implementation.is_pyarrow():
        return nw.from_native(arrow)
    if implementation.is_duckdb():
        import duckdb

        return nw.from_native(duckdb.from_arrow(arrow))
    if implementation.is_spark_like():
        session = frame.to_native().sparkSession
        return nw.from_native(session.createDataFrame(lookup))
    raise DataValidationError(
        f"resolve does not know how to join a {implementation} frame; pass pandas, polars, "
        "pyarrow, DuckDB or Spark."
    )


def _count(frame: Any, mask: Any) -> int:
    counted = frame.select(mask.cast(nw.Int64).sum().alias("n"))
    if isinstance(counted, nw.LazyFrame):
        counted = counted.collect()
    value = counted.item()
    return int(value or 0)


def _head(frame: Any) -> list[str]:
    head = frame.head(_N_EXAMPLES)
    if isinstance(head, nw.LazyFrame):
        head = head.collect()
    return [f"{s}:{k}" for s, k in head.iter_rows()]
