"""Exceptions and warnings raised by vipml.

Every error vipml raises on purpose derives from :class:`VipmlError`, and every warning from
:class:`VipmlWarning`, so callers can catch or filter the library's own conditions without
touching anything else.
"""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

__all__ = [
    "BundleError",
    "ConfigError",
    "ConvergenceError",
    "DataValidationError",
    "DataWarning",
    "ModelAssumptionWarning",
    "NotFittedError",
    "RegistryBusyError",
    "VipmlError",
    "VipmlWarning",
]


class VipmlError(Exception):
    """Base class of every error vipml raises on purpose."""


class DataValidationError(VipmlError, ValueError):
    """Input data break the data contract: a column, its rows, a few values and the fix."""


class ConvergenceError(VipmlError, RuntimeError):
    """A maximum-likelihood fit did not converge; the message says what to try."""


class ConfigError(VipmlError, ValueError):
    """A pipeline configuration has an unknown key, a wrong type or an impossible value."""


class BundleError(VipmlError):
    """A model bundle is missing, incomplete, tampered with or of an unknown format."""


class RegistryBusyError(BundleError):
    """Another process holds a model registry's write lock (training or promoting)."""


class NotFittedError(VipmlError, _SklearnNotFittedError):
    """A method that needs a fitted estimator was called before ``fit``."""


class VipmlWarning(UserWarning):
    """Base class of every warning vipml emits."""


class DataWarning(VipmlWarning):
    """Input data are usable but suspicious (duplicates, returns, unusual values)."""


class ModelAssumptionWarning(VipmlWarning):
    """Data violate an assumption of a model (e.g. spend correlated with frequency)."""
