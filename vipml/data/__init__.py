"""Data contract, bundled data and the shop simulator."""

from vipml.data.columns import Columns
from vipml.data.datasets import load_cdnow

__all__ = ["Columns", "load_cdnow"]
