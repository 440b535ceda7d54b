"""Validation and conversion of the RFM summary frames the models of :mod:`vipml.ltv` take."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import narwhals as nw
import numpy as np
import numpy.typing as npt
import pandas as pd

from vipml.errors import DataValidationError

__all__ = ["as_rfm_frame", "check_weights", "fit_columns", "rfm_columns"]

logger = logging.getLogger(__name__)

_ID = "customer_id"
_NON_NEGATIVE = ("frequency", "recency", "T", "n_periods", "renewals")
_N_SHOWN = 5
_FIX_SUMMARY = (
    "Build the summary with vipml.features.rfm_summary (lifetimes definitions), or "
    "vipml.features.discrete_summary for BG/BB."
)


def _examples(index: pd.Index, mask: npt.NDArray[np.bool_]) -> str:
    shown = [str(v) for v in index[mask][:_N_SHOWN]]
    more = ", ..." if int(mask.sum()) > _N_SHOWN else ""
    return "[" + ", ".join(shown) + more + "]"


def _to_pandas(rfm: Any) -> pd.DataFrame:
    if isinstance(rfm, pd.DataFrame):
        if _ID in rfm.columns and rfm.index.name != _ID:
            return rfm.set_index(_ID)
        return rfm
    try:
        frame = nw.from_native(rfm)
    except TypeError as exc:
        raise DataValidationError(
            f"Expected an RFM summary data frame (pandas, polars, pyarrow, ...), got "
            f"{type(rfm).__name__}. {_FIX_SUMMARY}"
        ) from exc
    if isinstance(frame, nw.LazyFrame):
        frame = frame.collect()
    if not isinstance(frame, nw.DataFrame):
        raise DataValidationError(
            f"Expected an RFM summary data frame, got a {type(rfm).__name__} that is not a "
            f"table. {_FIX_SUMMARY}"
        )
    if _ID not in frame.columns:
        raise DataValidationError(
            f"The RFM frame ({type(rfm).__name__}) has no '{_ID}' column; a non-pandas frame "
            f"must carry the customer ids in a '{_ID}' column (columns found: "
            f"{list(frame.columns)})."
        )
    return frame.to_pandas().set_index(_ID)


def as_rfm_frame(rfm: Any, required_columns: Sequence[str]) -> pd.DataFrame:
    """Validate an RFM summary and return it as a new float pandas frame indexed by customer id.

    Accepts a pandas DataFrame indexed by customer id (or with a ``customer_id`` column) and
    any frame narwhals supports (polars, pyarrow, DuckDB, ...) with a ``customer_id`` column.
    The caller's frame is never modified.

    Parameters
    ----------
    rfm : DataFrame
        Summary with the required columns.
    required_columns : sequence of str
        Columns to keep, e.g. ``frequency``, ``recency``, ``T`` (or ``n_periods``) and
        ``monetary_value``.

    Returns
    -------
    pandas.DataFrame
        The required columns as float64, indexed by customer id.

    Raises
    ------
    DataValidationError
        Not a frame; missing columns; non-numeric, NaN or infinite values; negative frequency,
        recency, T, n_periods or renewals; non-integer frequency; recency > T (or n_periods);
        recency > 0 with frequency 0; or no rows. The message names the column, the number of rows, a few customer ids and the fix.

    Examples
    --------
    >>> import pandas as pd
    >>> rfm = pd.DataFrame({"frequency": [0, 2], "recency": [0.0, 3.5], "T": [5.0, 6.0]},
    ...                    index=pd.Index(["a", "b"], name="customer_id"))
    >>> as_rfm_frame(rfm, ["frequency", "T"]).dtypes.tolist()
    [dtype('float64'), dtype('float64')]
    """
    index, values = rfm_columns(rfm, required_columns)
    return pd.DataFrame({c: values[c].copy() for c in required_columns}, index=index.copy())


def rfm_columns(
    rfm: Any, required_columns: Sequence[str]
) -> tuple[pd.Index, dict[str, npt.NDArray[np.float64]]]:
    """The checks of :func:`as_rfm_frame`, returning the index and float64 arrays.

    The arrays may be read-only views of the caller's data (no copy for float64 columns);
    callers must not write into them.

    Parameters
    ----------
    rfm : DataFrame
        Summary with the required columns.
    required_columns : sequence of str
        Columns to return.

    Returns
    -------
    tuple
        ``(index, {column: array})``.

    Raises
    ------
    DataValidationError
        As :func:`as_rfm_frame`.

    Examples
    --------
    >>> import pandas as pd
    >>> index, cols = rfm_columns(pd.DataFrame({"frequency": [1, 0]}), ["frequency"])
    >>> cols["frequency"].tolist()
    [1.0, 0.0]
    """
    frame = _to_pandas(rfm)
    missing = [c for c in required_columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"The RFM frame lacks the column(s) {missing} (columns found: "
            f"{list(frame.columns)}). {_FIX_SUMMARY}"
        )
    if len(frame) == 0:
        raise DataValidationError(f"The RFM frame has no rows. {_FIX_SUMMARY}")
    index = frame.index
    values: dict[str, npt.NDArray[np.float64]] = {}
    for column in required_columns:
        try:
            values[column] = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise DataValidationError(
                f"Column '{column}' must be numeric, got dtype {frame[column].dtype}. "
                f"{_FIX_SUMMARY}"
            ) from exc
        column_values = values[column]
        bad = ~np.isfinite(column_values)
        if bad.any():
            raise DataValidationError(
                f"Column '{column}': {int(bad.sum())} rows are NaN or infinite (customer ids "
                f"{_examples(index, bad)}). Drop or fill these customers before fitting or "
                "scoring."
            )
        if column in _NON_NEGATIVE:
            bad = column_values < 0
            if bad.any():
                raise DataValidationError(
                    f"Column '{column}': {int(bad.sum())} rows are negative (customer ids "
                    f"{_examples(index, bad)}, values {column_values[bad][:_N_SHOWN].tolist()}). "
                    f"{column} counts time or purchases since the first purchase and cannot be "
                    f"negative. {_FIX_SUMMARY}"
                )
    if "frequency" in values:
        freq = values["frequency"]
        bad = freq != np.round(freq)
        if bad.any():
            raise DataValidationError(
                f"Column 'frequency': {int(bad.sum())} rows are not whole numbers (customer ids "
                f"{_examples(index, bad)}, values {freq[bad][:_N_SHOWN].tolist()}). Frequency is "
                f"the number of repeat purchase periods. {_FIX_SUMMARY}"
            )
    age = "T" if "T" in values else "n_periods"
    if "recency" in values and age in values:
        bad = values["recency"] > values[age]
        if bad.any():
            raise DataValidationError(
                f"Column 'recency': {int(bad.sum())} rows have recency > {age} (customer ids "
                f"{_examples(index, bad)}). Recency (first to last purchase) cannot exceed "
                f"{age} (first purchase to the cutoff): compute both at the same cutoff and in "
                f"the same time unit. {_FIX_SUMMARY}"
            )
    if "recency" in values and "frequency" in values:
        bad = (values["frequency"] == 0) & (values["recency"] > 0)
        if bad.any():
            raise DataValidationError(
                f"Column 'recency': {int(bad.sum())} rows have recency > 0 but frequency 0 "
                f"(customer ids {_examples(index, bad)}). Without a repeat purchase recency is "
                f"0 by definition. {_FIX_SUMMARY}"
            )
    logger.debug("validated RFM frame: %d rows, columns %s", len(frame), list(required_columns))
    return index, values


def check_weights(weights: npt.ArrayLike | None, n_rows: int) -> npt.NDArray[np.float64] | None:
    """Validate customer weights: one finite, non-negative number per row, not all zero.

    Parameters
    ----------
    weights : array_like or None
        Weights, e.g. the number of customers a row stands for.
    n_rows : int
        Number of rows of the RFM frame.

    Returns
    -------
    numpy.ndarray or None
        Weights as float64, or None when none were given.

    Raises
    ------
    DataValidationError
        Wrong length, NaN, infinite or negative weights, or all weights zero.

    Examples
    --------
    >>> check_weights([1, 2], 2).tolist()
    [1.0, 2.0]
    """
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.size != n_rows:
        raise DataValidationError(
            f"weights has {w.size} values but the RFM frame has {n_rows} rows; pass one weight "
            "per customer row (in the frame's order)."
        )
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        raise DataValidationError(
            f"weights: {int(bad.sum())} values are negative, NaN or infinite (positions "
            f"{np.nonzero(bad)[0][:_N_SHOWN].tolist()}). Weights count customers: use finite "
            "non-negative numbers."
        )
    if not (w > 0).any():
        raise DataValidationError("weights are all zero: at least one customer must count.")
    return w


def fit_columns(
    rfm: Any, required_columns: Sequence[str], weights: npt.ArrayLike | None = None
) -> tuple[pd.Index, dict[str, npt.NDArray[np.float64]], npt.NDArray[np.float64] | None]:
    """The checked columns and weights a model is fitted on; lazy frames collapse in place.

    A lazy frame (Spark, DuckDB, polars lazy) is collapsed by its own engine into its
    distinct rows of ``required_columns`` with their counts, and only those rows are
    collected: a Spark fit never brings the customers to the driver. Fitting on the distinct
    rows weighted by their counts reaches the same optimum as fitting on every customer (the
    optimiser collapses identical rows itself). Checks then run on the distinct rows: error
    messages count distinct rows and show one customer id of each.

    Parameters
    ----------
    rfm : DataFrame
        RFM summary; eager frames are read as by :func:`rfm_columns`.
    required_columns : sequence of str
        Columns the model is fitted on.
    weights : array_like, optional
        One weight per row of an eager frame. Lazy frames have no row order: weights are
        refused with them.

    Returns
    -------
    tuple
        ``(index, {column: array}, weights)``; for a lazy frame the index holds one customer id
        per distinct row and the weights are the row counts.

    Raises
    ------
    DataValidationError
        As :func:`rfm_columns` and :func:`check_weights`.
    ValueError
        When weights are given with a lazy frame.

    Examples
    --------
    >>> import polars as pl
    >>> rfm = pl.LazyFrame({"customer_id": [1, 2, 3], "frequency": [0.0, 0.0, 2.0]})
    >>> index, cols, w = fit_columns(rfm, ["frequency"])
    >>> cols["frequency"].tolist(), w.tolist(), index.tolist()
    ([0.0, 2.0], [2.0, 1.0], [1, 3])
    """
    frame = _lazy_frame(rfm)
    if frame is None:
        index, values = rfm_columns(rfm, required_columns)
        return index, values, check_weights(weights, len(index))
    if weights is not None:
        raise ValueError(
            "weights cannot be given with a lazy frame (Spark, DuckDB, polars lazy): its rows "
            "have no fixed order. Fit without weights (identical customers are collapsed into "
            "weighted rows anyway), or collect the frame first."
        )
    missing = [c for c in required_columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"The RFM frame lacks the column(s) {missing} (columns found: "
            f"{list(frame.columns)}). {_FIX_SUMMARY}"
        )
    aggregates = [nw.len().alias("_count")]
    if _ID in frame.columns:
        aggregates.append(nw.col(_ID).min())
    distinct = (
        frame.group_by(*required_columns)
        .agg(*aggregates)
        .collect(backend="pandas")
        .to_native()
        .sort_values(list(required_columns), kind="stable", ignore_index=True)
    )
    if _ID in distinct.columns:
        distinct = distinct.set_index(_ID)
    index, values = rfm_columns(distinct, required_columns)
    logger.debug("collapsed a lazy RFM frame into %d distinct rows", len(index))
    return index, values, check_weights(distinct["_count"].to_numpy(np.float64), len(index))


def _lazy_frame(rfm: Any) -> Any:
    """The narwhals lazy frame of a lazy input, None for anything else."""
    if isinstance(rfm, pd.DataFrame):
        return None
    try:
        frame = nw.from_native(rfm)
    except TypeError:
        return None
    return frame if isinstance(frame, nw.LazyFrame) else None
