"""Logs larger than memory: Parquet files scanned by DuckDB under a memory limit.

A feature builder given a path (``str`` or :class:`pathlib.Path`, a glob such as
``"logs/*.parquet"``, or a list of paths) reads it here: DuckDB streams the files, keeps its
working memory under ``memory_limit`` and spills what does not fit to a temporary folder, so
a log of 1e8 rows or more builds features on one machine. Pass the relation of
:func:`scan_parquet` instead of a path to choose the memory limit yourself and to get a lazy
DuckDB relation back (write it with ``.to_parquet()``, or take ``.df()`` / ``.pl()``).
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from vipml.errors import DataValidationError

__all__ = ["DEFAULT_MEMORY_LIMIT", "is_parquet_source", "parquet_connection", "scan_parquet"]

#: DuckDB's working-memory limit for Parquet logs read from a path: half the machine's RAM,
#: which leaves room for the Python process and the result table.
DEFAULT_MEMORY_LIMIT = "50%"


def is_parquet_source(source: Any) -> bool:
    """Whether ``source`` names Parquet files: a ``str``, a path, or a list of them.

    >>> is_parquet_source("logs/*.parquet"), is_parquet_source([Path("a.parquet")])
    (True, True)
    >>> is_parquet_source(3), is_parquet_source([])
    (False, False)
    """
    if isinstance(source, str | os.PathLike):
        return True
    return (
        isinstance(source, Sequence)
        and len(source) > 0
        and all(isinstance(item, str | os.PathLike) for item in source)
    )


@functools.cache
def parquet_connection(
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    threads: int | None = None,
    temp_directory: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """The DuckDB connection that scans Parquet logs, one per configuration and process.

    Logs read with the same settings share one connection, so relations of a transaction and
    an event log can be joined (as :func:`vipml.features.training_snapshots` does). Insertion
    order is not preserved (results are sorted by customer anyway), which lets DuckDB stream
    large aggregations with less memory.

    Parameters
    ----------
    memory_limit : str, default DEFAULT_MEMORY_LIMIT
        DuckDB's memory limit: a size (``"4GB"``) or a share of the RAM (``"50%"``).
    threads : int, optional
        Worker threads (default: DuckDB's choice, one per core).
    temp_directory : str, optional
        Where DuckDB spills intermediate results that exceed the memory limit (default: a
        ``vipml-duckdb-<pid>`` folder in the system's temporary directory).

    Returns
    -------
    duckdb.DuckDBPyConnection

    Examples
    --------
    >>> con = parquet_connection("1GB", threads=1)
    >>> con.sql("SELECT current_setting('threads')").fetchall()
    [(1,)]
    >>> con is parquet_connection("1GB", threads=1)
    True
    """
    config: dict[str, Any] = {
        "memory_limit": memory_limit,
        "preserve_insertion_order": False,
        "temp_directory": temp_directory
        or str(Path(tempfile.gettempdir()) / f"vipml-duckdb-{os.getpid()}"),
    }
    if threads is not None:
        config["threads"] = threads
    try:
        return duckdb.connect(config=config)
    except duckdb.Error as exc:
        raise ValueError(
            f"DuckDB refused the settings memory_limit={memory_limit!r}, threads={threads!r} "
            f"({exc}). Pass a size such as '4GB' or a share such as '50%', and a positive "
            "number of threads."
        ) from exc


def scan_parquet(
    source: Any,
    *,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    threads: int | None = None,
    temp_directory: str | None = None,
) -> duckdb.DuckDBPyRelation:
    """A lazy DuckDB relation over Parquet files, for logs larger than memory.

    Nothing is read until a feature builder runs its query; DuckDB then streams the files and
    spills to disk beyond ``memory_limit``. Builders given this relation return DuckDB
    relations (lazy), which can be written out without ever being held in memory.

    Parameters
    ----------
    source : str, path or list of them
        A Parquet file, a folder's glob (``"logs/*.parquet"``, ``"logs/**/*.parquet"``) or a
        list of files.
    memory_limit, threads, temp_directory
        DuckDB settings, see :func:`parquet_connection`.

    Returns
    -------
    duckdb.DuckDBPyRelation

    Raises
    ------
    DataValidationError
        When no file matches or a file is not Parquet.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> from vipml.features import rfm_summary
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"customer_id": [1, 1, 2], "amount": [5.0, 7.0, 3.0],
    ...               "timestamp": pd.to_datetime(["2024-01-01", "2024-01-09", "2024-01-03"])}
    ...              ).to_parquet(folder / "part-0.parquet")
    >>> log = scan_parquet(folder / "*.parquet", memory_limit="1GB")
    >>> rfm_summary(log, cutoff="2024-01-31").order("customer_id").fetchall()
    [(1, 1.0, 8.0, 30.0, 7.0), (2, 0.0, 0.0, 28.0, 0.0)]
    >>> import shutil; shutil.rmtree(folder)
    """
    if not is_parquet_source(source):
        raise DataValidationError(
            f"source must be a Parquet path, a glob or a list of paths; got {type(source).__name__}."
        )
    files = [str(source)] if isinstance(source, str | os.PathLike) else [str(s) for s in source]
    connection = parquet_connection(memory_limit, threads, temp_directory)
    try:
        return connection.read_parquet(files if len(files) > 1 else files[0])
    except (duckdb.IOException, duckdb.InvalidInputException) as exc:
        raise DataValidationError(
            f"Could not read Parquet from {files if len(files) > 1 else files[0]!r}: {exc}. Check "
            "the path or glob (e.g. 'logs/*.parquet') and that the files are Parquet."
        ) from exc
