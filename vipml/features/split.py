"""Calibration/holdout splits and point-in-time training snapshots."""

from __future__ import annotations

from typing import Any

import narwhals.stable.v2 as nw

from vipml.data.columns import Columns
from vipml.data.validate import ReturnsPolicy, parse_cutoff, prepare_transactions, to_native_result
from vipml.errors import DataValidationError
from vipml.features._periods import Freq, period_of, time_scale
from vipml.features.rfm import check_cutoff_after_first, purchase_periods, summarise_periods

__all__ = ["calibration_holdout"]


def calibration_holdout(
    transactions: Any,
    calibration_end: Any,
    observation_end: Any,
    *,
    freq: Freq = "D",
    time_unit: Freq | None = None,
    columns: Columns | None = None,
    returns: ReturnsPolicy = "net",
) -> Any:
    """RFM summary of a calibration period and purchases in the holdout period after it.

    The calibration columns are :func:`rfm_summary` at ``calibration_end`` with a ``_cal``
    suffix. For the same customers (those with a purchase by ``calibration_end``), the holdout
    ``(calibration_end, observation_end]`` gives ``frequency_holdout`` (purchase periods in the
    holdout), ``monetary_value_holdout`` (mean net spend per holdout purchase period, 0 without
    one) and ``duration_holdout`` (its length in ``time_unit``), as
    ``lifetimes.utils.calibration_and_holdout_data`` does.

    One deliberate difference: ``lifetimes`` averages holdout spend per *transaction row* but
    calibration spend per *period*; vipml uses periods for both, so the two columns measure the
    same thing. They coincide whenever a customer has at most one row per period.

    Parameters
    ----------
    transactions : DataFrame-like
        Transaction log.
    calibration_end, observation_end : str, date or datetime
        End of the calibration period and of the holdout period (inclusive; dates include
        their whole day).
    freq, time_unit, columns, returns
        As in :func:`rfm_summary`.

    Returns
    -------
    DataFrame
        ``frequency_cal``, ``recency_cal``, ``T_cal``, ``monetary_value_cal``,
        ``frequency_holdout``, ``monetary_value_holdout``, ``duration_holdout``.

    Raises
    ------
    DataValidationError
        Bad input, ``observation_end`` not after ``calibration_end``, or a calibration end
        before every transaction.

    Examples
    --------
    >>> import pandas as pd
    >>> tx = pd.DataFrame({
    ...     "customer_id": [1, 1, 2, 1],
    ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-02", "2024-01-09"]),
    ...     "amount": [10.0, 20.0, 5.0, 8.0],
    ... })
    >>> calibration_holdout(tx, "2024-01-05", "2024-01-12")[["frequency_cal", "frequency_holdout",
    ...                                                        "duration_holdout"]]
                 frequency_cal  frequency_holdout  duration_holdout
    customer_id
    1                      1.0                1.0               7.0
    2                      0.0                0.0               7.0
    """
    log = prepare_transactions(transactions, columns, returns=returns)
    scale = time_scale(freq, time_unit)
    calibration_stop = parse_cutoff(calibration_end, tz_aware=log.tz_aware, name="calibration_end")
    observation_stop = parse_cutoff(observation_end, tz_aware=log.tz_aware, name="observation_end")
    if observation_stop <= calibration_stop:
        raise DataValidationError(
            f"observation_end={observation_end!r} must be after calibration_end="
            f"{calibration_end!r}: the holdout period would be empty."
        )
    check_cutoff_after_first(log, calibration_stop, "calibration_end")
    calibration_period = period_of(calibration_stop, freq)
    periods = purchase_periods(log, observation_stop, freq, returns)
    calibration = summarise_periods(
        periods.filter(nw.col("period") <= calibration_period), calibration_period, scale
    )
    holdout = (
        periods.filter(nw.col("period") > calibration_period)
        .group_by("customer_id")
        .agg(
            nw.len().cast(nw.Float64).alias("frequency_holdout"),
            nw.col("spend").mean().alias("monetary_value_holdout"),
        )
    )
    duration = (period_of(observation_stop, freq) - calibration_period) * scale
    combined = (
        calibration.rename({c: f"{c}_cal" for c in ("frequency", "recency", "T", "monetary_value")})
        .join(holdout, on="customer_id", how="left")
        .with_columns(
            nw.col("frequency_holdout").fill_null(0.0),
            nw.col("monetary_value_holdout").fill_null(0.0).cast(nw.Float64),
            nw.lit(float(duration)).alias("duration_holdout"),
        )
    )
    return to_native_result(combined, log.kind)
