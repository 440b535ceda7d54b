"""Spark helpers: a local session set up the way vipml computes, and scoring on executors.

The feature builders take PySpark DataFrames directly (see :mod:`vipml.features`) and
``BetaGeo``/``GammaGamma`` fit from Spark RFM summaries by collecting only the distinct
histories; this module holds what only Spark needs. PySpark is imported when a function here
runs, never when :mod:`vipml` is imported: install it with the ``spark`` extra
(``pip install "vipml[spark]"``, Java 17 required).
"""

from __future__ import annotations

from typing import Any

__all__ = ["local_session"]


def _pyspark_sql() -> Any:
    try:
        import pyspark.sql
    except ImportError as exc:
        raise ImportError(
            "vipml.spark needs PySpark: pip install 'vipml[spark]' (and Java 17)."
        ) from exc
    return pyspark.sql


def local_session(
    cores: int = 2,
    *,
    app_name: str = "vipml",
    shuffle_partitions: int | None = None,
    driver_memory: str | None = None,
) -> Any:
    """A local Spark session with UTC timestamps, no web UI and few shuffle partitions.

    vipml computes in UTC, and PySpark keeps the time zone of ``TIMESTAMP`` columns in the
    session: this session sets ``spark.sql.session.timeZone`` to UTC (on a cluster, set it in
    the session builder the same way). If a session is already running, Spark returns it
    unchanged (its settings cannot be changed from here).

    Parameters
    ----------
    cores : int, default 2
        Local worker threads (``local[cores]``).
    app_name : str, default "vipml"
        The application's name.
    shuffle_partitions : int, optional
        ``spark.sql.shuffle.partitions`` (default: twice ``cores``; Spark's default of 200
        is tuned for clusters and slows small local jobs down).
    driver_memory : str, optional
        ``spark.driver.memory`` (e.g. ``"8g"``); Spark's default when omitted.

    Returns
    -------
    pyspark.sql.SparkSession

    Raises
    ------
    ValueError
        If ``cores`` or ``shuffle_partitions`` is not a positive integer.
    ImportError
        If PySpark is not installed.

    Examples
    --------
    >>> spark = local_session(cores=2)
    >>> spark.conf.get("spark.sql.session.timeZone")
    'UTC'
    """
    for argument, value in (("cores", cores), ("shuffle_partitions", shuffle_partitions)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{argument} must be a positive integer, got {value!r}.")
    builder = (
        _pyspark_sql()
        .SparkSession.builder.master(f"local[{cores}]")
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions or 2 * cores))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    if driver_memory is not None:
        builder = builder.config("spark.driver.memory", driver_memory)
    return builder.getOrCreate()
