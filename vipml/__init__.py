"""vipml: find, value and keep a business's most valuable customers."""

from vipml._version import __version__

__all__ = ["__version__"]
