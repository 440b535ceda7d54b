"""Data contract, bundled data, the shop simulator and identity resolution."""

from vipml.data.columns import Columns
from vipml.data.datasets import load_cdnow, load_donations, load_retention_cohorts
from vipml.data.linking import IdentityMap, link_identities, resolve
from vipml.data.matching import FuzzyMatch
from vipml.data.summary_simulator import simulate_summary
from vipml.data.synthetic import CampaignSimulation, Simulation, simulate, simulate_campaign
from vipml.data.synthetic_identities import (
    channel_sentiment,
    simulate_identities,
    split_identities,
)

__all__ = [
    "CampaignSimulation",
    "Columns",
    "FuzzyMatch",
    "IdentityMap",
    "Simulation",
    "channel_sentiment",
    "link_identities",
    "load_cdnow",
    "load_donations",
    "load_retention_cohorts",
    "resolve",
    "simulate",
    "simulate_campaign",
    "simulate_identities",
    "simulate_summary",
    "split_identities",
]
