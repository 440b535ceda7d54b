"""Spark helpers: a local session set up the way vipml computes, and scoring on executors.

The feature builders take PySpark DataFrames directly (see :mod:`vipml.features`) and
``BetaGeo``/``GammaGamma`` fit from Spark RFM summaries by collecting only the distinct
histories; this module holds what only Spark needs. PySpark is imported when a function here
runs, never when :mod:`vipml` is imported: install it with the ``spark`` extra
(``pip install "vipml[spark]"``, Java 17 required).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from vipml.errors import DataValidationError

__all__ = ["local_session", "score_spark"]


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
    """A local Spark session with UTC timestamps, no web UI or progress bars, few partitions.

    vipml computes in UTC, and PySpark keeps the time zone of ``TIMESTAMP`` columns in the
    session: this session sets ``spark.sql.session.timeZone`` to UTC (on a cluster, set it in
    the session builder the same way). If a session is already running, Spark returns it
    unchanged (its settings cannot be changed from here). Python workers run this
    interpreter: ``PYSPARK_PYTHON`` is set to it when it is not set already.

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
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions or 2 * cores))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    if driver_memory is not None:
        builder = builder.config("spark.driver.memory", driver_memory)
    # Local Python workers must import vipml: run them with this interpreter unless told.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return builder.getOrCreate()


def _spark_type(values: Any) -> str:
    """The Spark SQL type of a pandas column of scores."""
    if pd.api.types.is_bool_dtype(values):
        return "boolean"
    if pd.api.types.is_integer_dtype(values):
        return "bigint"
    if pd.api.types.is_float_dtype(values):
        return "double"
    return "string"


@functools.cache
def _executor_pipeline(name: str) -> Any:
    """The pipeline of a bundle shipped with ``SparkContext.addFile``, loaded once per worker."""
    from pyspark import SparkFiles

    from vipml.bundle import load

    return load(SparkFiles.get(name), allow_pickle=False)


def score_spark(
    bundle: str | os.PathLike[str], features: Any, *, id_column: str = "customer_id"
) -> Any:
    """Score a Spark DataFrame of customer features where it lives, partition by partition.

    The bundle folder is shipped once to every executor (``SparkContext.addFile``) and loaded
    there once per Python worker, pickle-free, after its hashes are verified; each partition
    is then scored with :meth:`vipml.VipPipeline.score_features` through ``mapInPandas``.
    Every customer is scored from their own features alone, so the result equals scoring the
    whole table on one machine. The driver loads the bundle too, to check the columns and
    derive the output schema from one scored row.

    Parameters
    ----------
    bundle : path-like
        A bundle folder saved by :func:`vipml.bundle.save`, readable from the driver.
    features : pyspark.sql.DataFrame
        One row per customer: ``id_column`` and the pipeline's ``feature_columns_`` (the
        table of :meth:`~vipml.VipPipeline.build_features`, e.g. built on Spark by joining
        :func:`~vipml.features.rfm_summary` (``freq="D"``, ``time_unit="W"``) and
        :func:`~vipml.features.purchase_cycle_features` on ``customer_id``).
    id_column : str, default "customer_id"
        The column holding the customer ids.

    Returns
    -------
    pyspark.sql.DataFrame
        ``id_column`` then the score columns of :meth:`~vipml.VipPipeline.score_features`.
        Lazy: nothing runs until an action (``write``, ``count``, ...).

    Raises
    ------
    DataValidationError
        Missing id or feature columns, or an empty ``features`` frame.
    BundleError
        A bundle that does not verify.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from vipml import VipPipeline, bundle
    >>> from vipml.data import simulate
    >>> sim = simulate(300, "2024-01-01", "2025-12-31", random_state=2)
    >>> pipe = VipPipeline({"churn": {"lgbm_params": {"num_boost_round": 10}},
    ...                     "ltv": {"n_draws": 10}, "segments": {"n_segments": 3}})
    >>> pipe = pipe.fit(sim.transactions, cutoff="2025-06-30")
    >>> tmp = tempfile.TemporaryDirectory()
    >>> folder = bundle.save(pipe, pathlib.Path(tmp.name) / "doctest-bundle")
    >>> features = pipe.build_features(sim.transactions, at="2025-06-30")
    >>> spark = local_session(cores=2)
    >>> scores = score_spark(folder, spark.createDataFrame(features.reset_index()))
    >>> scores.count() == len(features)
    True
    >>> tmp.cleanup()
    """
    from vipml.bundle import load

    folder = Path(bundle)
    pipeline = load(folder, allow_pickle=False)
    columns = list(features.columns)
    missing = [c for c in (id_column, *pipeline.feature_columns_) if c not in columns]
    if missing:
        raise DataValidationError(
            f"features lack column(s) {missing[:5]} ({len(missing)} in all; found {columns[:8]}"
            f"...). Pass one row per customer with '{id_column}' and the pipeline's "
            "feature_columns_ (see VipPipeline.build_features)."
        )
    needed = features.select(id_column, *pipeline.feature_columns_)
    sample = needed.limit(1).toPandas()
    if sample.empty:
        raise DataValidationError("features has no rows: there is no customer to score.")
    scored = pipeline.score_features(sample.set_index(id_column)).reset_index()
    schema = ", ".join(f"`{column}` {_spark_type(scored[column])}" for column in scored.columns)
    features.sparkSession.sparkContext.addFile(str(folder), recursive=True)
    name = folder.name

    def score_partition(batches: Any) -> Any:
        executor_pipeline = _executor_pipeline(name)
        for batch in batches:
            if len(batch):
                table = batch.set_index(id_column)
                yield executor_pipeline.score_features(table).reset_index()

    return needed.mapInPandas(score_partition, schema)
