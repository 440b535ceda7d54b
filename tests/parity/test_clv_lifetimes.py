"""vipml.ltv.customer_lifetime_value against lifetimes 0.11.3 on the CDNOW master file.

lifetimes' ``GammaGammaFitter.customer_lifetime_value(model, ..., time=12, discount_rate=0.01,
freq=...)`` hides 30-day months: it steps in months of 30 days (``freq="D"``) or 4.345 weeks
(``freq="W"``) and discounts by ``(1 + discount_rate) ** k`` after the k-th month. vipml states
every unit: the same value is ``horizon = 12 * month`` and ``step = month`` in the summary's
time unit, with the rate per that unit, ``(1 + monthly_rate) ** (1 / month) - 1``, because
``(1 + d) ** (k * month) == (1 + monthly_rate) ** k``. lifetimes' fitted models get our
parameters (``params_`` set to ours), so the comparison isolates the CLV computation.

Tolerance achieved (asserted): relative 1e-6 for every customer; the largest relative
difference observed is about 2e-13.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from vipml.data import load_cdnow
from vipml.features import rfm_summary
from vipml.ltv import BetaGeo, GammaGamma
from vipml.ltv.clv import customer_lifetime_value

MONTHS = 12
RTOL = 1e-6
#: lifetimes' hidden month in each time unit (lifetimes.utils._customer_lifetime_value).
MONTH_LENGTH = {"D": 30.0, "W": 4.345}


def _quiet(function, *args, **kwargs):
    """Call lifetimes with its warnings silenced (it warns on current numpy and pandas)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return load_cdnow()


@pytest.fixture(scope="module", params=["D", "W"], ids=["days", "weeks"])
def fitted(request, transactions: pd.DataFrame) -> SimpleNamespace:
    """CDNOW calibration summary in one time unit, our models and lifetimes' with our params."""
    lifetimes = _quiet(__import__, "lifetimes")
    time_unit = request.param
    # CDNOW has exact duplicate rows: kept (DataWarning silenced), as lifetimes keeps them
    rfm = _quiet(rfm_summary, transactions, "1997-09-30", freq="D", time_unit=time_unit)
    # one customer's repeat purchases are all $0: Gamma-Gamma needs a positive mean spend
    rfm = rfm[(rfm["frequency"] == 0) | (rfm["monetary_value"] > 0)]
    purchase_model = BetaGeo().fit(rfm)
    spend_model = GammaGamma().fit(rfm)
    theirs_purchase = _quiet(
        lifetimes.BetaGeoFitter().fit, rfm["frequency"], rfm["recency"], rfm["T"]
    )
    theirs_purchase.params_ = pd.Series(purchase_model.params_)
    repeat = rfm[rfm["frequency"] > 0]
    theirs_spend = _quiet(
        lifetimes.GammaGammaFitter().fit, repeat["frequency"], repeat["monetary_value"]
    )
    theirs_spend.params_ = pd.Series(spend_model.params_)
    return SimpleNamespace(
        time_unit=time_unit,
        rfm=rfm,
        ours=(purchase_model, spend_model),
        theirs=(theirs_purchase, theirs_spend),
    )


@pytest.mark.parametrize("monthly_rate", [0.01, 0.0, 0.15])
def test_clv_equals_lifetimes_in_explicit_units(fitted: SimpleNamespace, monthly_rate) -> None:
    rfm, time_unit = fitted.rfm, fitted.time_unit
    theirs_purchase, theirs_spend = fitted.theirs
    theirs = _quiet(
        theirs_spend.customer_lifetime_value,
        theirs_purchase,
        rfm["frequency"],
        rfm["recency"],
        rfm["T"],
        rfm["monetary_value"],
        time=MONTHS,
        discount_rate=monthly_rate,
        freq=time_unit,
    )
    month = MONTH_LENGTH[time_unit]
    ours = customer_lifetime_value(
        *fitted.ours,
        rfm,
        horizon=MONTHS * month,
        step=month,
        time_unit=time_unit,
        discount_rate=(1.0 + monthly_rate) ** (1.0 / month) - 1.0,
    )
    assert ours.index.equals(theirs.index)
    assert len(ours) == 23_569
    assert (ours > 0).all()
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(dtype=float), rtol=RTOL, atol=0)
