from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

from vipml.plotting import plot_lift, plot_reliability

matplotlib.use("Agg")


@pytest.fixture
def predictions() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    p = rng.random(500)
    return pd.DataFrame({"churned": rng.random(500) < p, "model": p, "flat": np.full(500, 0.5)})


def test_reliability_diagram_draws_each_method(predictions):
    import matplotlib.pyplot as plt

    ax = plot_reliability(predictions, bins=5)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["perfect", "model", "flat"]
    assert len(ax.get_lines()[1].get_xdata()) == 5
    plt.close(ax.figure)


def test_lift_curve_starts_high_for_a_good_model(predictions):
    import matplotlib.pyplot as plt

    ax = plot_lift(predictions, methods=["model"], points=10)
    line = ax.get_lines()[0]
    assert line.get_ydata()[0] > 1.5 and line.get_ydata()[-1] == pytest.approx(1.0)
    plt.close(ax.figure)


def test_unknown_method_is_refused(predictions):
    with pytest.raises(ValueError, match="no column"):
        plot_lift(predictions, methods=["nope"])
