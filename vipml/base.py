"""Base class of vipml's estimators: scikit-learn conventions plus a version stamp."""

from __future__ import annotations

from sklearn.base import BaseEstimator

from vipml._version import __version__
from vipml.errors import NotFittedError

__all__ = ["VipmlEstimator"]


class VipmlEstimator(BaseEstimator):
    """Estimator base: ``__init__`` stores parameters, ``fit`` sets attributes ending in ``_``.

    Subclasses list their fitted attributes in ``_fitted_attributes``; :meth:`_check_fitted`
    raises :class:`~vipml.errors.NotFittedError` naming the estimator when they are absent.
    Every fitted estimator records the vipml version that fitted it in ``vipml_version_``.
    """

    _fitted_attributes: tuple[str, ...] = ("params_",)

    def _check_fitted(self) -> None:
        if not all(hasattr(self, name) for name in self._fitted_attributes):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. "
                "Call 'fit' with appropriate arguments before using this estimator."
            )

    def _stamp_version(self) -> None:
        self.vipml_version_ = __version__

    def __sklearn_is_fitted__(self) -> bool:
        return all(hasattr(self, name) for name in self._fitted_attributes)
