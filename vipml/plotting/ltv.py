"""Diagnostic plots of the purchase models (matplotlib, an optional extra: ``vipml[plot]``).

matplotlib is imported inside each function, so ``import vipml.plotting`` works without it and
no model ever imports it. Every function draws on the given Axes (or a new figure's) and
returns the Axes. The figures are those of Fader, Hardie & Lee (2005), "Counting Your
Customers the Easy Way", Marketing Science 24(2): calibration/holdout check (figure 4),
frequency histogram (figure 2), cumulative tracking plot (figure 3), and lifetimes' P(alive)
matrix.
"""

from __future__ import annotations

import datetime as dt
import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from vipml.data.columns import Columns
from vipml.data.validate import parse_cutoff, prepare_transactions
from vipml.errors import DataValidationError
from vipml.features._periods import EPOCH, Freq, period_of, time_scale
from vipml.features.rfm import check_cutoff_after_first, purchase_periods
from vipml.ltv._base import FloatArray, PurchaseModel
from vipml.ltv.evaluate import bucket_labels, check_max_frequency, holdout_table
from vipml.plotting._axes import axes_or_new

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "plot_calibration_holdout",
    "plot_cumulative_tracking",
    "plot_frequency_histogram",
    "plot_p_alive_matrix",
]

_UNIT_NAMES = {"H": "hours", "D": "days", "W": "weeks"}


def plot_calibration_holdout(
    purchase_model: PurchaseModel,
    frame: Any,
    ax: Axes | None = None,
    *,
    max_frequency: int = 7,
) -> Axes:
    """Mean actual and predicted holdout purchases by calibration frequency.

    The two lines are the ``actual`` and ``predicted`` columns of
    :func:`vipml.ltv.evaluate.holdout_table`.

    Parameters
    ----------
    purchase_model : BetaGeo, ParetoNBD or ModifiedBetaGeo
        Model fitted on the calibration columns of ``frame``.
    frame : DataFrame
        Output of :func:`vipml.features.calibration_holdout`.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure by default.
    max_frequency : int, default 7
        Open last bucket (``"7+"``).

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ImportError
        Without matplotlib.
    TypeError, NotFittedError, DataValidationError, ValueError
        As :func:`~vipml.ltv.evaluate.holdout_table`.

    References
    ----------
    Fader, Hardie & Lee (2005), Marketing Science 24(2), figure 4.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from vipml.ltv import BetaGeo
    >>> frame = pd.DataFrame({
    ...     "frequency_cal": [0.0, 1.0, 2.0, 5.0, 3.0], "recency_cal": [0.0, 10.0, 25.0, 36.0, 5.0],
    ...     "T_cal": [30.0, 38.0, 30.0, 39.0, 39.0], "frequency_holdout": [1.0, 0.0, 2.0, 4.0, 0.0],
    ...     "duration_holdout": 39.0})
    >>> bg = BetaGeo(penalizer=0.01).fit(frame.rename(columns=lambda c: c.removesuffix("_cal")))
    >>> ax = plot_calibration_holdout(bg, frame, max_frequency=3)
    >>> [line.get_label() for line in ax.get_lines()]
    ['actual', 'BG/NBD']
    """
    ax = axes_or_new(ax)
    table = holdout_table(purchase_model, frame, max_frequency=max_frequency)
    positions = np.arange(len(table))
    ax.plot(positions, table["actual"].to_numpy(), marker="o", label="actual")
    ax.plot(
        positions,
        table["predicted"].to_numpy(),
        marker="s",
        linestyle="--",
        label=purchase_model._model_name,
    )
    ax.set_xticks(positions, table.index.tolist())
    ax.set_xlabel("Repeat purchases in the calibration period")
    ax.set_ylabel("Mean purchases in the holdout period")
    ax.set_title("Calibration vs holdout purchases")
    ax.legend()
    return ax


def expected_frequency_counts(
    purchase_model: PurchaseModel, rfm: Any, *, max_frequency: int = 7
) -> tuple[FloatArray, FloatArray]:
    """Observed and expected numbers of customers with 0, 1, ..., ``max_frequency``+ repeats.

    The expected count of ``n`` is the sum over customers of the model's unconditional
    probability ``P(X(T_i) = n)`` of ``n`` repeat purchases in a customer's first ``T_i`` time
    units (the conditional PMF at an empty history: frequency = recency = T = 0), the last
    bucket taking the remaining probability. One evaluation per distinct age and count.

    Parameters
    ----------
    purchase_model : BetaGeo, ParetoNBD or ModifiedBetaGeo
        Fitted model.
    rfm : DataFrame
        RFM summary the model was fitted on.
    max_frequency : int, default 7
        Open last bucket.

    Returns
    -------
    observed, expected : numpy.ndarray
        Customers per bucket, each of length ``max_frequency + 1``.

    Examples
    --------
    >>> import pandas as pd
    >>> from vipml.ltv import BetaGeo
    >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
    ...                     "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
    ...                     "T": [30.0, 38.0, 30.0, 39.0, 39.0]})
    >>> observed, expected = expected_frequency_counts(BetaGeo(penalizer=0.01).fit(rfm), rfm,
    ...                                                max_frequency=2)
    >>> observed.tolist(), round(float(expected.sum()), 10)
    ([1.0, 1.0, 3.0], 5.0)
    """
    top = check_max_frequency(max_frequency)
    _, x, _, age = purchase_model._arrays(rfm)
    observed = np.bincount(np.minimum(x, top).astype(np.intp), minlength=top + 1)
    ages, customers = np.unique(age, return_counts=True)
    empty = np.zeros(1)
    pmf_at = type(purchase_model)._probability_of_purchases_at
    pmf = np.empty((ages.size, top))
    # the Pareto/NBD PMF takes one horizon at a time: loop over distinct ages, not customers
    for i, t in enumerate(ages):
        for n in range(top):
            pmf[i, n] = pmf_at(purchase_model.params_, empty, empty, empty, n, float(t))[0]
    below = customers @ pmf
    expected = np.append(below, x.size - below.sum())
    return observed.astype(np.float64), expected


def plot_frequency_histogram(
    purchase_model: PurchaseModel,
    rfm: Any,
    ax: Axes | None = None,
    *,
    max_frequency: int = 7,
) -> Axes:
    """Observed numbers of customers by repeat purchases beside the model's expected numbers.

    Bars of :func:`expected_frequency_counts`: observed on the left, expected on the right of
    each bucket.

    Parameters
    ----------
    purchase_model : BetaGeo, ParetoNBD or ModifiedBetaGeo
        Fitted model.
    rfm : DataFrame
        RFM summary the model was fitted on.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure by default.
    max_frequency : int, default 7
        Open last bucket.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ImportError
        Without matplotlib.
    NotFittedError, DataValidationError, ValueError
        Unfitted model, invalid ``rfm`` or ``max_frequency``.

    References
    ----------
    Fader, Hardie & Lee (2005), Marketing Science 24(2), eq. (8) and figure 2.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from vipml.ltv import BetaGeo
    >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
    ...                     "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
    ...                     "T": [30.0, 38.0, 30.0, 39.0, 39.0]})
    >>> ax = plot_frequency_histogram(BetaGeo(penalizer=0.01).fit(rfm), rfm, max_frequency=3)
    >>> len(ax.patches)
    8
    """
    ax = axes_or_new(ax)
    observed, expected = expected_frequency_counts(purchase_model, rfm, max_frequency=max_frequency)
    positions = np.arange(observed.size)
    width = 0.4
    ax.bar(positions - width / 2, observed, width, label="observed")
    ax.bar(positions + width / 2, expected, width, label=purchase_model._model_name)
    ax.set_xticks(positions, bucket_labels(observed.size - 1))
    ax.set_xlabel("Repeat purchases")
    ax.set_ylabel("Customers")
    ax.set_title("Frequency of repeat purchases")
    ax.legend()
    return ax


def cumulative_tracking(
    purchase_model: PurchaseModel,
    transactions: Any,
    calibration_end: Any,
    observation_end: Any,
    *,
    time_unit: Freq = "W",
    columns: Columns | None = None,
) -> pd.DataFrame:
    """Cumulative repeat purchases of the calibration cohort, actual and expected, over time.

    The cohort is every customer whose first purchase is at or before ``calibration_end``.
    Purchases are counted once per day (``freq="D"``, as in :func:`vipml.features.rfm_summary`)
    and repeat purchases are those after a customer's first purchase day. Time runs in whole
    ``time_unit`` steps from the cohort's first purchase day, plus a last point at
    ``observation_end`` (measured as T is: a purchase on day ``d`` is at ``d - start``). The
    expected curve sums, over first-purchase days ``b`` with ``n_b`` new customers,
    ``n_b * E[X(t - b)]`` from :meth:`~vipml.ltv.BetaGeo.expected_purchases_new_customer`,
    evaluated on the whole (time x first day) grid at once.

    Parameters
    ----------
    purchase_model : BetaGeo, ParetoNBD or ModifiedBetaGeo
        Model fitted on a summary with ``freq="D"`` and this ``time_unit``.
    transactions : DataFrame-like
        Transaction log (see the data contract).
    calibration_end, observation_end : str, date or datetime
        End of the calibration period (defines the cohort) and of the plot.
    time_unit : {"H", "D", "W"}, default "W"
        Time unit of the model and of the time axis.
    columns : Columns, optional
        Names of the log's columns.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``time`` (``time_unit`` steps since the cohort's first purchase day), with
        ``actual`` and ``expected`` cumulative repeat purchases; ``attrs`` holds ``start`` (the
        first purchase day) and ``calibration_time`` (the end of calibration on that axis).

    Raises
    ------
    DataValidationError
        Bad log, ``observation_end`` not after ``calibration_end``, a calibration end before
        every transaction, or a month time unit (not a whole number of days).
    NotFittedError
        Before the model is fitted.

    Examples
    --------
    >>> import pandas as pd
    >>> from vipml.ltv import BetaGeo
    >>> tx = pd.DataFrame({
    ...     "customer_id": [1, 1, 2, 2, 3, 1],
    ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-09", "2024-01-03", "2024-01-20",
    ...                                  "2024-01-05", "2024-02-01"]),
    ...     "amount": 10.0})
    >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
    ...                     "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
    ...                     "T": [30.0, 38.0, 30.0, 39.0, 39.0]})
    >>> bg = BetaGeo(penalizer=0.01).fit(rfm)
    >>> curve = cumulative_tracking(bg, tx, "2024-01-21", "2024-02-04")
    >>> curve["actual"].tolist()
    [0.0, 0.0, 1.0, 2.0, 2.0, 3.0]
    """
    scale = time_scale("D", time_unit)  # one day in time units; refuses months
    log = prepare_transactions(transactions, columns, check_duplicates=False)
    calibration_stop = parse_cutoff(calibration_end, tz_aware=log.tz_aware, name="calibration_end")
    observation_stop = parse_cutoff(observation_end, tz_aware=log.tz_aware, name="observation_end")
    if observation_stop <= calibration_stop:
        raise DataValidationError(
            f"observation_end={observation_end!r} must be after calibration_end="
            f"{calibration_end!r}: there would be nothing to track."
        )
    check_cutoff_after_first(log, calibration_stop, "calibration_end")
    purchase_model._check_fitted()
    days = purchase_periods(log, observation_stop, "D", "net").select("customer_id", "period")
    native = days.collect().to_pandas()
    day = native["period"].to_numpy(dtype=np.int64)
    first = native.groupby("customer_id")["period"].transform("min").to_numpy(dtype=np.int64)
    cohort = first <= period_of(calibration_stop, "D")
    start = int(first[cohort].min())
    repeat_days = np.sort(day[cohort & (day > first)] - start)
    birth_days, new_customers = np.unique(
        first[cohort & (day == first)] - start, return_counts=True
    )
    end_day = period_of(observation_stop, "D") - start
    elapsed_days = np.arange(np.floor(end_day * scale + 1e-9) + 1.0) / scale  # whole steps
    if elapsed_days[-1] < end_day - 1e-9:
        elapsed_days = np.append(elapsed_days, end_day)  # and the end of the observation
    time = elapsed_days * scale
    # purchases fall on whole days: count those up to the last day reached (no rounding slip)
    days_reached = np.floor(elapsed_days + 1e-9)
    actual = np.searchsorted(repeat_days, days_reached, side="right").astype(np.float64)
    ages = np.maximum(elapsed_days[:, None] - birth_days[None, :], 0.0) * scale
    expected = purchase_model.expected_purchases_new_customer(ages) @ new_customers
    curve = pd.DataFrame(
        {"actual": actual, "expected": expected}, index=pd.Index(time, name="time")
    )
    curve.attrs["start"] = EPOCH + dt.timedelta(days=start)
    curve.attrs["calibration_time"] = (period_of(calibration_stop, "D") - start) * scale
    return curve


def plot_cumulative_tracking(
    purchase_model: PurchaseModel,
    transactions: Any,
    calibration_end: Any,
    observation_end: Any,
    ax: Axes | None = None,
    time_unit: Freq = "W",
    *,
    columns: Columns | None = None,
) -> Axes:
    """Tracking plot: cumulative repeat purchases, actual against expected, over time.

    Draws :func:`cumulative_tracking` (actual solid, expected dashed) with a vertical line at
    the end of the calibration period, as in Fader, Hardie & Lee (2005), figure 3.

    Parameters
    ----------
    purchase_model, transactions, calibration_end, observation_end, time_unit, columns
        As in :func:`cumulative_tracking`.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure by default.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ImportError
        Without matplotlib.
    DataValidationError, NotFittedError
        As :func:`cumulative_tracking`.

    References
    ----------
    Fader, Hardie & Lee (2005), Marketing Science 24(2), eq. (9) and figure 3.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from vipml.ltv import BetaGeo
    >>> tx = pd.DataFrame({
    ...     "customer_id": [1, 1, 2, 2, 3, 1],
    ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-09", "2024-01-03", "2024-01-20",
    ...                                  "2024-01-05", "2024-02-01"]),
    ...     "amount": 10.0})
    >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
    ...                     "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
    ...                     "T": [30.0, 38.0, 30.0, 39.0, 39.0]})
    >>> ax = plot_cumulative_tracking(BetaGeo(penalizer=0.01).fit(rfm), tx, "2024-01-21",
    ...                               "2024-02-04")
    >>> [line.get_label() for line in ax.get_lines()][:2]
    ['actual', 'BG/NBD']
    """
    ax = axes_or_new(ax)
    curve = cumulative_tracking(
        purchase_model,
        transactions,
        calibration_end,
        observation_end,
        time_unit=time_unit,
        columns=columns,
    )
    time = curve.index.to_numpy()
    ax.plot(time, curve["actual"].to_numpy(), label="actual")
    ax.plot(time, curve["expected"].to_numpy(), linestyle="--", label=purchase_model._model_name)
    ax.axvline(
        curve.attrs["calibration_time"], color="grey", linestyle=":", label="end of calibration"
    )
    ax.set_xlabel(f"{_UNIT_NAMES[time_unit].capitalize()} since {curve.attrs['start']:%Y-%m-%d}")
    ax.set_ylabel("Cumulative repeat purchases")
    ax.set_title("Tracking cumulative repeat purchases")
    ax.legend()
    return ax


def plot_p_alive_matrix(
    purchase_model: PurchaseModel,
    rfm: Any,
    ax: Axes | None = None,
    *,
    max_frequency: int | None = None,
    resolution: int = 100,
) -> Axes:
    """Heat map of P(alive) over recency and frequency, for customers of the largest age T.

    Rows are frequencies ``0, ..., max_frequency`` (default: the largest observed), columns
    ``resolution`` recencies evenly spaced from 0 to the largest ``T`` of ``rfm``. A history
    with no repeat purchase and a positive recency cannot occur and is left blank (NaN).

    Parameters
    ----------
    purchase_model : BetaGeo, ParetoNBD or ModifiedBetaGeo
        Fitted model.
    rfm : DataFrame
        RFM summary (sets the age T and the default frequency range).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure by default.
    max_frequency : int, optional
        Largest frequency shown.
    resolution : int, default 100
        Number of recency values, ``>= 2``.

    Returns
    -------
    matplotlib.axes.Axes
        With the image (``ax.images[0]``, the matrix with frequency in rows) and a colour bar.

    Raises
    ------
    ImportError
        Without matplotlib.
    NotFittedError, DataValidationError, ValueError
        Unfitted model, invalid ``rfm``, ``max_frequency`` or ``resolution``.

    References
    ----------
    Fader, Hardie & Lee (2008), note "Computing P(alive) using the BG/NBD model".

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from vipml.ltv import BetaGeo
    >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
    ...                     "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
    ...                     "T": [30.0, 38.0, 30.0, 39.0, 39.0]})
    >>> ax = plot_p_alive_matrix(BetaGeo(penalizer=0.01).fit(rfm), rfm, resolution=40)
    >>> ax.images[0].get_array().shape
    (6, 40)
    """
    ax = axes_or_new(ax)
    _, x, _, age = purchase_model._arrays(rfm)
    top = int(x.max()) if max_frequency is None else max_frequency
    if not (isinstance(top, numbers.Integral) and top >= 0):
        raise ValueError(f"max_frequency must be an integer >= 0, got {max_frequency!r}.")
    if not (isinstance(resolution, numbers.Integral) and resolution >= 2):
        raise ValueError(f"resolution must be an integer >= 2, got {resolution!r}.")
    oldest = float(age.max())
    frequency = np.arange(top + 1, dtype=np.float64)[:, None]
    recency = np.linspace(0.0, oldest, resolution)[None, :]
    matrix = type(purchase_model)._p_alive_at(purchase_model.params_, frequency, recency, oldest)
    matrix = np.where((frequency == 0) & (recency > 0), np.nan, matrix)
    half_step = oldest / (resolution - 1) / 2
    image = ax.imshow(
        matrix,
        origin="lower",
        aspect="auto",
        interpolation="nearest",
        extent=(-half_step, oldest + half_step, -0.5, top + 0.5),
        vmin=0.0,
        vmax=1.0,
    )
    ax.figure.colorbar(image, ax=ax, label="P(alive)")
    ax.set_xlabel("Recency (time of the last purchase, in the unit of T)")
    ax.set_ylabel("Frequency (repeat purchases)")
    ax.set_title(f"P(alive) at T = {oldest:.4g}, {purchase_model._model_name}")
    return ax
