"""Consent, contact policy, suppression, and what vipml holds about a customer.

Every contact list vipml proposes (campaign plans, next best actions, offers, trigger firings)
passes :meth:`ContactPolicy.filter`; :func:`export_customer` returns everything vipml holds
about a customer and :func:`erase_customer` removes it and leaves a tombstone.
"""

from vipml.privacy.consent import (
    REASONS,
    ContactDecision,
    ContactPolicy,
    FrequencyCap,
    PauseWindow,
    check_consents,
)
from vipml.privacy.export import Erasure, PersonalData, erase_customer, export_customer
from vipml.privacy.suppression import SuppressionList

__all__ = [
    "REASONS",
    "ContactDecision",
    "ContactPolicy",
    "Erasure",
    "FrequencyCap",
    "PauseWindow",
    "PersonalData",
    "SuppressionList",
    "check_consents",
    "erase_customer",
    "export_customer",
]
