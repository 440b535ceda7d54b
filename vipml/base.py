"""Base class of vipml's estimators: scikit-learn conventions plus a version stamp."""

from __future__ import annotations

from collections.abc import Mapping

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

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        """scikit-learn's repr, followed once fitted by the customers and the estimates.

        ``BetaGeo(penalizer=0.01)`` before ``fit``;
        ``BetaGeo(penalizer=0.01) fitted on 2,357 customers: r=0.2426, alpha=4.414, ...`` after,
        for every estimator with ``n_customers_`` and a ``params_`` dict.
        """
        text = super().__repr__(N_CHAR_MAX=N_CHAR_MAX)
        params = getattr(self, "params_", None)
        n_customers = getattr(self, "n_customers_", None)
        if not isinstance(params, Mapping) or n_customers is None:
            return text
        whole = float(n_customers).is_integer()
        count = f"{int(n_customers):,}" if whole else f"{float(n_customers):,.6g}"
        estimates = ", ".join(f"{name}={float(value):.4g}" for name, value in params.items())
        return f"{text} fitted on {count} customers: {estimates}"
