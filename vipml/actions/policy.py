"""The contact-policy hook: every list of contacts vipml proposes passes through it.

A contact policy is any callable that takes the proposed contacts (a table indexed by
customer id with at least ``action`` and ``contact_date``) and returns, for each, ``None``
when the contact may go ahead or the reason it is withheld ("no consent for e-mail",
"erased", ...). :func:`~vipml.actions.next_best_action` and
:func:`~vipml.actions.plan_campaign` apply it before anything is chosen, so the budget goes
to customers who may be contacted and the holdout is drawn among them, and they report who
was withheld and why. :class:`SuppressionList` is the simplest policy: ids that are never
contacted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from vipml.errors import DataValidationError

__all__ = ["ContactPolicy", "SuppressionList", "withheld_reasons"]


@runtime_checkable
class ContactPolicy(Protocol):
    """What a contact policy is: a callable from proposed contacts to withheld reasons."""

    def __call__(self, contacts: pd.DataFrame) -> Any:
        """For each proposed contact, ``None`` (allowed) or the reason it is withheld.

        Returns a Series indexed like ``contacts`` (or an array in its row order).
        """


class SuppressionList:
    """A contact policy that withholds every contact to the listed customer ids.

    Parameters
    ----------
    customer_ids : iterable
        Ids never to contact (opted out, erased, complaints, staff, ...).
    reason : str, default "on the suppression list"
        The reason reported for them.

    Examples
    --------
    >>> contacts = pd.DataFrame({"action": ["retention_offer", "upgrade_offer"]},
    ...                         index=pd.Index(["a", "b"], name="customer_id"))
    >>> SuppressionList(["b"])(contacts).tolist()
    [None, 'on the suppression list']
    """

    def __init__(self, customer_ids: Iterable[Any], reason: str = "on the suppression list"):
        self.customer_ids = frozenset(customer_ids)
        self.reason = str(reason)

    def __call__(self, contacts: pd.DataFrame) -> pd.Series:
        held = contacts.index.isin(list(self.customer_ids))
        return pd.Series(np.where(held, self.reason, None), index=contacts.index, dtype=object)

    def __repr__(self) -> str:
        return f"SuppressionList({len(self.customer_ids)} ids, reason={self.reason!r})"


def withheld_reasons(policy: Any, contacts: pd.DataFrame) -> pd.Series:
    """Run a contact policy and check its answer: a reason (str) or missing per contact.

    Raises
    ------
    DataValidationError
        The policy is not callable, or answers with the wrong length, unknown ids or values
        that are neither text nor missing.
    """
    if not callable(policy):
        raise DataValidationError(
            f"contact_policy must be callable (see vipml.actions.ContactPolicy), got "
            f"{type(policy).__name__}."
        )
    answer = policy(contacts.copy())
    if isinstance(answer, pd.Series):
        if not answer.index.equals(contacts.index):
            if len(answer.index.difference(contacts.index)) or answer.index.has_duplicates:
                raise DataValidationError(
                    "The contact policy answered for customers it was not asked about: return "
                    "a Series indexed like the contacts it gets."
                )
            answer = answer.reindex(contacts.index)
        values = answer.to_numpy(dtype=object)
    else:
        values = np.asarray(answer, dtype=object)
        if values.shape != (len(contacts),):
            raise DataValidationError(
                f"The contact policy must return one reason or None per contact "
                f"({len(contacts)}); got shape {values.shape}."
            )
    missing = pd.isna(values)
    if pd.api.types.infer_dtype(values[~missing], skipna=True) not in ("string", "empty"):
        raise DataValidationError(
            "The contact policy must answer None (allowed) or a reason (text) for each contact."
        )
    return pd.Series(np.where(missing, None, values), index=contacts.index, dtype=object)
