"""The one place that imports matplotlib, lazily, for every plot."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def axes_or_new(ax: Axes | None) -> Axes:
    """The given Axes, or a new figure's; a clear message when matplotlib is missing."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "vipml.plotting needs matplotlib, an optional extra: pip install vipml[plot]"
        ) from exc
    if ax is None:
        _, ax = plt.subplots()
    return ax
