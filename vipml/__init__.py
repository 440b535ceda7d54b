"""vipml: find, value and keep a business's most valuable customers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vipml._version import __version__

if TYPE_CHECKING:
    from vipml.pipeline import VipPipeline

__all__ = ["VipPipeline", "__version__"]


def __getattr__(name: str) -> Any:
    # VipPipeline pulls in LightGBM and scikit-learn: import it on first use only.
    if name == "VipPipeline":
        from vipml.pipeline import VipPipeline

        return VipPipeline
    raise AttributeError(f"module 'vipml' has no attribute {name!r}")
