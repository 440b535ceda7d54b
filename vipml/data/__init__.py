"""Data contract, bundled data and the shop simulator."""

from vipml.data.columns import Columns
from vipml.data.datasets import load_cdnow
from vipml.data.synthetic import Simulation, simulate

__all__ = ["Columns", "Simulation", "load_cdnow", "simulate"]
