"""Parameter recovery: fits on vipml.data.simulate() logs find the parameters that made them."""

import pytest

from vipml.data import simulate
from vipml.features import rfm_summary
from vipml.ltv import BetaGeo, GammaGamma


@pytest.fixture(scope="module", params=[(3000, 1), (12000, 2)], ids=["3k", "12k"])
def shop(request):
    n_customers, seed = request.param
    sim = simulate(n_customers, "2024-01-01", "2025-12-31", random_state=seed, events=False)
    rfm = rfm_summary(sim.transactions, "2025-12-30", freq="D", time_unit="W")
    return sim, rfm


def _within_three_standard_errors(model, truth):
    for name, value in model.params_.items():
        error = abs(value - truth[name]) / model.standard_errors_[name]
        assert error < 3, f"{name}: fitted {value:.4f}, true {truth[name]}, {error:.1f} s.e."


def test_bgnbd_recovers_the_simulated_purchase_process(shop):
    sim, rfm = shop
    _within_three_standard_errors(BetaGeo().fit(rfm), sim.purchase_params)


def test_gamma_gamma_recovers_the_simulated_spend(shop):
    sim, rfm = shop
    repeat_buyers = rfm[rfm["frequency"] > 0]
    _within_three_standard_errors(GammaGamma().fit(repeat_buyers), sim.spend_params)
