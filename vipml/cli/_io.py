"""Plumbing of the command line: exit codes, logging, progress, reading and writing tables."""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import logging
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import typer

from vipml.errors import (
    BundleError,
    ConfigError,
    ConvergenceError,
    DataValidationError,
    RegistryBusyError,
)

logger = logging.getLogger("vipml.cli")

T = TypeVar("T")


class ExitCode(enum.IntEnum):
    """Exit codes of every ``vipml`` command (documented in ``vipml --help``)."""

    OK = 0
    INTERNAL = 1  # a bug: please report it (the traceback is shown with --verbose)
    BAD_INPUT = 2  # unreadable file, invalid data or configuration
    GATE_FAILED = 3  # promote refused a candidate worse than the champion
    REGISTRY_BUSY = 4  # another training or promotion holds the registry lock
    BAD_MODEL = 5  # unknown version, or a bundle that fails verification
    NOT_CONVERGED = 6  # a model fit did not converge


EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 internal error; 2 bad input (file, data or config); "
    "3 promotion gate failed; 4 registry locked by another process; "
    "5 unknown or damaged model bundle; 6 a model fit did not converge."
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


_JSON_LINES = {"on": False}


def configure_logging(verbose: bool, json_lines: bool) -> None:
    """Log to stderr: INFO with ``--verbose`` (WARNING otherwise), as JSON lines if asked.

    With JSON lines, errors are logged as JSON too instead of printed, so stderr stays
    machine-readable.
    """
    _JSON_LINES["on"] = json_lines
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger("vipml")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose or json_lines else logging.WARNING)
    root.propagate = False
    logging.captureWarnings(True)


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Show a stage on an interactive terminal (quiet in cron), and log it either way."""
    interactive = sys.stderr.isatty()
    if interactive:
        sys.stderr.write(f"  {name} ...")
        sys.stderr.flush()
    logger.info("%s: started", name)
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        if interactive:
            sys.stderr.write(" failed\n")
        raise
    elapsed = time.perf_counter() - started
    logger.info("%s: done in %.1f s", name, elapsed)
    if interactive:
        sys.stderr.write(f" done ({elapsed:.1f} s)\n")


def fail(message: str, code: ExitCode) -> typer.Exit:
    """Print ``error: message`` to stderr and return the exit to raise."""
    if _JSON_LINES["on"]:
        logger.error(message)
    else:
        typer.echo(f"error: {message}", err=True)
    return typer.Exit(int(code))


def guarded(command: Callable[..., T]) -> Callable[..., T]:
    """Turn vipml's errors into a message and an exit code instead of a traceback."""
    import functools

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> T:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except (DataValidationError, ConfigError) as exc:
            raise fail(str(exc), ExitCode.BAD_INPUT) from None
        except RegistryBusyError as exc:
            raise fail(str(exc), ExitCode.REGISTRY_BUSY) from None
        except BundleError as exc:
            raise fail(str(exc), ExitCode.BAD_MODEL) from None
        except ConvergenceError as exc:
            raise fail(str(exc), ExitCode.NOT_CONVERGED) from None
        except Exception as exc:  # a bug: say so, keep the traceback for --verbose
            logger.debug("internal error", exc_info=True)
            if logging.getLogger("vipml").isEnabledFor(logging.INFO):
                traceback.print_exc()
            raise fail(
                f"internal error {type(exc).__name__}: {exc}. Re-run with --verbose for the "
                "traceback and report it at https://github.com/vipml/vipml/issues.",
                ExitCode.INTERNAL,
            ) from None

    return run


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (recorded as the provenance of a training input)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _parquet_source(path: Path) -> str | None:
    """The Parquet files ``path`` names (a file, a folder or a glob), or None for other files."""
    text = str(path)
    if path.is_dir():
        return str(path / "*.parquet")
    if any(c in text for c in "*?[") or path.suffix.lower() == ".parquet":
        return text
    return None


def read_table(path: Path, what: str, timestamp: str) -> Any:
    """A log to train or score on: CSV read eagerly, Parquet streamed by DuckDB.

    Parquet (a file, a folder of files or a glob such as ``"logs/*.parquet"``) is checked
    here — every file must be readable Parquet — and then passed on as a path, so the feature
    builders stream it through DuckDB under a memory limit and a log larger than memory
    works. CSV is read into memory, its ``timestamp`` column parsed from ISO 8601 text. A
    damaged file fails here, with its name.
    """
    import polars as pl

    parquet = _parquet_source(path)
    if parquet is not None:
        import duckdb

        from vipml.data.parquet import scan_parquet

        try:
            scan_parquet(parquet).limit(1).fetchall()  # reads every footer and one row group
        except DataValidationError as exc:
            raise DataValidationError(f"{what}: {exc}") from None
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise DataValidationError(
                f"{what}: cannot read {parquet} as Parquet ({first}). Check that the files are "
                "complete Parquet files."
            ) from None
        return parquet
    if not path.is_file():
        raise DataValidationError(f"{what}: no such file {path}.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            table = pl.read_csv(path, infer_schema_length=10_000)
            if timestamp in table.columns and table.schema[timestamp] == pl.String:
                table = _parse_timestamps(table, timestamp, what, path)
            return table
    except DataValidationError:
        raise
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataValidationError(
            f"{what}: cannot read {path} as {suffix[1:].upper()} ({first}). Check that the "
            "file is complete and in that format."
        ) from None
    raise DataValidationError(
        f"{what}: {path} has suffix {suffix or '(none)'}; use a .csv or .parquet file."
    )


def _parse_timestamps(table: Any, column: str, what: str, path: Path) -> Any:
    import polars as pl

    try:
        return table.with_columns(pl.col(column).str.to_datetime(strict=True))
    except pl.exceptions.PolarsError:
        values = table[column]
        try:
            parsed = values.str.to_datetime(strict=False)
        except pl.exceptions.PolarsError:  # no format fits any value
            parsed = pl.Series(column, [None] * len(values), dtype=pl.Datetime)
        bad = values.filter(parsed.is_null() & values.is_not_null())
        raise DataValidationError(
            f"{what}: column {column!r} of {path} has {len(bad):,} value(s) that are not ISO "
            f"8601 timestamps, e.g. {bad.head(3).to_list()}. Write timestamps as "
            "'2025-06-30' or '2025-06-30 14:05:00' (or use Parquet with a timestamp column)."
        ) from None


def write_table(table: pd.DataFrame, path: Path) -> Path:
    """Write scores as Parquet or CSV (by suffix), creating the folder."""
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise DataValidationError(
            f"--output {path}: use a .parquet or .csv file name for the scores."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        table.to_parquet(path)
    else:
        table.to_csv(path)
    return path
