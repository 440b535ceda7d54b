"""Data contract, bundled data and the shop simulator."""

from vipml.data.columns import Columns
from vipml.data.datasets import load_cdnow
from vipml.data.synthetic import CampaignSimulation, Simulation, simulate, simulate_campaign

__all__ = [
    "CampaignSimulation",
    "Columns",
    "Simulation",
    "load_cdnow",
    "simulate",
    "simulate_campaign",
]
