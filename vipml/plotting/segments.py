"""Plots of segments: migration matrix heat map and segment profile chart (matplotlib, lazy).

matplotlib is imported inside each function, so importing this module works without it. Each
function draws on the given Axes (or a new figure's) and returns the Axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from vipml.errors import DataValidationError
from vipml.plotting._axes import axes_or_new
from vipml.segments.migration import Migration

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_migration", "plot_profile"]

_SHARE_COLUMNS = ("customer_share", "revenue_share", "value_share")


def plot_migration(
    migration: Migration | pd.DataFrame, ax: Axes | None = None, *, shares: bool = True
) -> Axes:
    """Heat map of a migration matrix: earlier segment (rows) to later segment (columns).

    Parameters
    ----------
    migration : Migration or pandas.DataFrame
        From :func:`~vipml.segments.migration_matrix` or
        :meth:`~vipml.segments.SegmentTracker.migration`, or a matrix of counts or shares.
    ax : matplotlib Axes, optional
        Where to draw; default a new figure.
    shares : bool, default True
        Colour by row shares (where each segment's customers went) and print shares; with
        False, print counts (colour still by shares, so small and large segments compare).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from vipml.segments import migration_matrix
    >>> before = pd.Series(["Loyal", "Loyal", "Lost"], index=["a", "b", "c"])
    >>> after = pd.Series(["Loyal", "Lost", "Lost"], index=["a", "b", "c"])
    >>> ax = plot_migration(migration_matrix(before, after))
    >>> [t.get_text() for t in ax.texts]
    ['100%', '0%', '50%', '50%']
    """
    if isinstance(migration, Migration):
        counts, share_table = migration.counts, migration.shares
    elif isinstance(migration, pd.DataFrame):
        counts = migration
        totals = migration.sum(axis=1).to_numpy(dtype=np.float64)
        share_table = migration.div(np.where(totals > 0, totals, 1.0), axis=0)
    else:
        raise DataValidationError(
            f"plot_migration takes a Migration or a DataFrame, got {type(migration).__name__}."
        )
    ax = axes_or_new(ax)
    grid = share_table.to_numpy(dtype=np.float64)
    image = ax.imshow(grid, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    shown = grid if shares else counts.to_numpy()
    for (i, j), number in np.ndenumerate(shown):
        text = f"{number:.0%}" if shares else f"{int(number):,}"
        ax.text(
            j,
            i,
            text,
            ha="center",
            va="center",
            fontsize=8,
            color="white" if grid[i, j] > 0.6 else "black",
        )
    ax.set_xticks(range(counts.shape[1]), [str(c) for c in counts.columns], rotation=45, ha="right")
    ax.set_yticks(range(counts.shape[0]), [str(r) for r in counts.index])
    ax.set_xlabel(f"to ({counts.columns.name})" if counts.columns.name is not None else "to")
    ax.set_ylabel(f"from ({counts.index.name})" if counts.index.name is not None else "from")
    ax.figure.colorbar(image, ax=ax, label="share of the row's customers")
    ax.set_title("Segment migration")
    return ax


def plot_profile(
    profile: pd.DataFrame,
    ax: Axes | None = None,
    *,
    columns: Sequence[str] | None = None,
) -> Axes:
    """Grouped bars per segment: shares of customers, revenue and value (or other columns).

    Parameters
    ----------
    profile : pandas.DataFrame
        :attr:`Segmenter.profile_ <vipml.segments.Segmenter>` or
        :func:`~vipml.segments.segment_profile` (a ``name`` column labels the bars).
    ax : matplotlib Axes, optional
        Where to draw; default a new figure.
    columns : sequence of str, optional
        Columns to draw; default those of ``customer_share``, ``revenue_share`` and
        ``value_share`` present. Shares are comparable; mixing units is not advised.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    DataValidationError
        When none of the columns is in ``profile``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> profile = pd.DataFrame({"name": ["Champions", "Lost"], "customer_share": [0.1, 0.9],
    ...                         "revenue_share": [0.6, 0.4]})
    >>> ax = plot_profile(profile)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['Champions', 'Lost']
    """
    chosen = [c for c in (columns or _SHARE_COLUMNS) if c in profile.columns]
    if not chosen:
        raise DataValidationError(
            f"profile has none of the columns {list(columns or _SHARE_COLUMNS)}; pass "
            "Segmenter.profile_ or name the columns to draw."
        )
    ax = axes_or_new(ax)
    labels = (
        profile["name"].astype(str).tolist()
        if "name" in profile
        else [str(i) for i in profile.index]
    )
    positions = np.arange(len(profile))
    height = 0.8 / len(chosen)
    for j, column in enumerate(chosen):
        ax.barh(
            positions + (j - (len(chosen) - 1) / 2) * height,
            profile[column].to_numpy(dtype=np.float64),
            height=height,
            label=column.replace("_", " "),
        )
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    ax.set_xlabel("share" if all(c.endswith("_share") for c in chosen) else "value")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Segment profile")
    return ax
