"""Consent and contact policy: every contact vipml proposes passes :meth:`ContactPolicy.filter`.

A contact is a row ``(customer_id, channel, purpose, planned time)``: what a campaign plan, a
next best action, an offer or a trigger proposes. :class:`ContactPolicy` withholds the rows
that must not be sent and says why, with one reason per withheld row, checked in this order:

1. ``suppressed``: the customer was erased (a tombstone of the :class:`SuppressionList`);
2. ``no_consent``: the purpose needs prior consent and the customer has none for this channel
   and purpose (or gave it after the planned time);
3. ``denied`` / ``revoked``: the customer's latest answer for this channel and purpose is no
   (honoured for every purpose, even those that need no prior consent);
4. ``expired``: the consent's expiry, or its re-confirmation deadline (``since`` plus
   ``reconfirm_every``), is at or before the planned time;
5. ``quiet_hours``: the planned time falls in the quiet hours, in the customer's local time,
   for a purpose that needs consent, and the customer did not also consent to night-time
   messages;
6. ``paused``: the planned time falls in a pause window of the channel;
7. ``frequency_cap``: the contact would exceed the channel's cap, counting the contacts
   already sent (``history``) and the batch's earlier contacts that passed rules 1-6.

Korean defaults (the Information and Communications Network Act, art. 50, as the issue reads
it): advertising needs prior consent per channel; sending advertising between 21:00 and 08:00
needs a separate consent; consent must be re-confirmed every two years, so a consent older than
that is expired. Other markets change ``quiet_hours``, ``reconfirm_every`` and
``consent_purposes``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vipml.errors import DataValidationError
from vipml.privacy.suppression import SuppressionList

__all__ = [
    "CONSENT_COLUMNS",
    "REASONS",
    "ContactDecision",
    "ContactPolicy",
    "FrequencyCap",
    "PauseWindow",
    "check_consents",
]

#: Columns of a consent table (``expires``, ``source`` and ``night`` may be absent).
CONSENT_COLUMNS = (
    "customer_id",
    "channel",
    "purpose",
    "status",
    "since",
    "expires",
    "source",
    "night",
)
#: Why a contact is withheld, in the order the rules are checked.
REASONS = (
    "suppressed",
    "no_consent",
    "denied",
    "revoked",
    "expired",
    "quiet_hours",
    "paused",
    "frequency_cap",
)
_STATUSES = ("granted", "denied", "revoked")


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``max_contacts`` contacts per customer on a channel in any window of ``per``.

    Examples
    --------
    >>> FrequencyCap(2, "7D").per
    Timedelta('7 days 00:00:00')
    """

    max_contacts: int
    per: Any = "7D"

    def __post_init__(self) -> None:
        if isinstance(self.max_contacts, bool) or int(self.max_contacts) < 1:
            raise ValueError(f"max_contacts must be at least 1, got {self.max_contacts!r}.")
        per = pd.Timedelta(self.per)
        if per <= pd.Timedelta(0):
            raise ValueError(f"per must be a positive duration, got {self.per!r}.")
        object.__setattr__(self, "max_contacts", int(self.max_contacts))
        object.__setattr__(self, "per", per)


@dataclass(frozen=True)
class PauseWindow:
    """No contact on ``channel`` (every channel when None) from ``start`` up to ``end`` (UTC).

    Examples
    --------
    >>> PauseWindow("sms", "2025-10-05", "2025-10-09").channel
    'sms'
    """

    channel: str | None
    start: Any
    end: Any

    def __post_init__(self) -> None:
        start, end = _utc(self.start, "start"), _utc(self.end, "end")
        if end <= start:
            raise ValueError(f"A pause window must end after it starts ({start} .. {end}).")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)


@dataclass(frozen=True, eq=False)
class ContactDecision:
    """What :meth:`ContactPolicy.filter` decided.

    Attributes
    ----------
    allowed : pandas.DataFrame
        The contacts that may be sent (the caller's columns, in the caller's order).
    withheld : pandas.DataFrame
        The others, with a ``reason`` column (one of :data:`REASONS`).
    counts : pandas.Series
        Contacts per outcome: ``allowed`` then each reason, zeros included.
    """

    allowed: pd.DataFrame
    withheld: pd.DataFrame
    counts: pd.Series

    def __repr__(self) -> str:
        reasons = ", ".join(f"{k}={int(v)}" for k, v in self.counts.items() if v and k != "allowed")
        return (
            f"ContactDecision(allowed={int(self.counts['allowed'])}, withheld: {reasons or 'none'})"
        )


def check_consents(consents: pd.DataFrame) -> pd.DataFrame:
    """A validated copy of a consent table (one row per answer a customer gave).

    Columns: ``customer_id``, ``channel``, ``purpose``, ``status`` (``"granted"``, ``"denied"``
    or ``"revoked"``), ``since`` (when the answer was given), and optionally ``expires`` (when a
    grant lapses), ``source`` (where it was collected: ``"web_signup"``, ``"store_form"``, ...)
    and ``night`` (True when the customer also agreed to night-time advertising). Naive times
    are UTC; aware ones are converted. Several answers for one (customer, channel, purpose) are
    allowed: the latest ``since`` counts.

    Raises
    ------
    DataValidationError
        A missing column, an unknown status, a missing or unparseable time.
    """
    if not isinstance(consents, pd.DataFrame):
        raise DataValidationError(
            f"consents must be a pandas DataFrame, got {type(consents).__name__}."
        )
    missing = [c for c in CONSENT_COLUMNS[:5] if c not in consents.columns]
    if missing:
        raise DataValidationError(
            f"consents lack the column(s) {missing}; a consent table has "
            f"{list(CONSENT_COLUMNS)} (expires, source and night optional)."
        )
    table = consents.copy()
    status = table["status"].astype(str).str.lower()
    bad = ~status.isin(_STATUSES)
    if bad.any():
        raise DataValidationError(
            f"Column 'status' of consents has {int(bad.sum())} value(s) outside {_STATUSES}: "
            f"{table.loc[bad, 'status'].head(5).tolist()}."
        )
    table["status"] = status
    table["since"] = _utc_column(table["since"], "since", required=True)
    table["expires"] = (
        _utc_column(table["expires"], "expires", required=False)
        if "expires" in table.columns
        else pd.Series(pd.NaT, index=table.index, dtype="datetime64[us]")
    )
    if "source" not in table.columns:
        table["source"] = None
    night = table["night"] if "night" in table.columns else False
    table["night"] = pd.Series(night, index=table.index).fillna(False).astype(bool)
    for column in ("customer_id", "channel", "purpose"):
        if table[column].isna().any():
            raise DataValidationError(f"Column '{column}' of consents has missing values.")
    return table[list(CONSENT_COLUMNS)].reset_index(drop=True)


@dataclass(eq=False)
class ContactPolicy:
    """The rules every contact list passes through; Korean defaults (see the module notes).

    Parameters
    ----------
    consents : pandas.DataFrame
        The consent table (see :func:`check_consents`).
    suppression : SuppressionList, optional
        Tombstones of erased customers.
    caps : dict of str to FrequencyCap, optional
        Frequency cap per channel (channels not listed are not capped).
    pauses : iterable of PauseWindow, optional
        Windows without contacts.
    history : pandas.DataFrame, optional
        Contacts already sent: ``customer_id``, ``channel``, ``at`` (counted against caps).
    consent_purposes : tuple of str, default ("advertising",)
        Purposes that need prior consent (and obey the quiet hours); other purposes (a
        delivery notice, a password reset) need none but still honour a "no".
    quiet_hours : tuple of int or None, default (21, 8)
        Local hours [start, end) without advertising unless the customer consented to
        night-time messages; None turns the rule off.
    reconfirm_every : str or timedelta or None, default "730D"
        A grant lapses this long after it was given (two years, as Korean law asks); None
        keeps grants until their own expiry.
    timezone : str, default "Asia/Seoul"
        The customers' time zone when a contact row has no ``timezone`` column. Each contact
        row can carry the customer's own IANA zone (from their address, country or device).
    default_channel : str, default "email"
        Channel of contacts given without one (the hook of :mod:`vipml.actions`).
    send_hour : int, default 10
        Local hour at which a contact planned for a day (``contact_date``) is sent.
    now : datetime-like, optional
        Time of the hook's contacts that come without a date (default: the current time; fix
        it for reproducible plans).

    Examples
    --------
    >>> consents = pd.DataFrame({
    ...     "customer_id": ["a", "b"], "channel": "sms", "purpose": "advertising",
    ...     "status": ["granted", "revoked"], "since": ["2025-01-10", "2025-02-01"]})
    >>> policy = ContactPolicy(consents)
    >>> plan = pd.DataFrame({"customer_id": ["a", "b", "c", "a"], "channel": "sms",
    ...                      "purpose": "advertising",
    ...                      "planned_at": pd.to_datetime(["2025-03-03 01:00", "2025-03-03 01:00",
    ...                                                    "2025-03-03 01:00", "2025-03-03 14:00"])})
    >>> decision = policy.filter(plan)
    >>> decision.allowed["customer_id"].tolist()
    ['a']
    >>> decision.withheld[["customer_id", "reason"]].values.tolist()
    [['b', 'revoked'], ['c', 'no_consent'], ['a', 'quiet_hours']]
    """

    consents: pd.DataFrame
    suppression: SuppressionList | None = None
    caps: Mapping[str, FrequencyCap] = field(default_factory=dict)
    pauses: Iterable[PauseWindow] = ()
    history: pd.DataFrame | None = None
    consent_purposes: tuple[str, ...] = ("advertising",)
    quiet_hours: tuple[int, int] | None = (21, 8)
    reconfirm_every: Any = "730D"
    timezone: str = "Asia/Seoul"
    default_channel: str = "email"
    send_hour: int = 10
    now: Any = None

    def __post_init__(self) -> None:
        self.consents = check_consents(self.consents)
        self.pauses = tuple(self.pauses)
        for channel, cap in dict(self.caps).items():
            if not isinstance(cap, FrequencyCap):
                raise TypeError(f"caps[{channel!r}] must be a FrequencyCap, got {cap!r}.")
        if self.quiet_hours is not None:
            start, end = self.quiet_hours
            if not (0 <= start <= 23 and 0 <= end <= 23) or start == end:
                raise ValueError(
                    f"quiet_hours must be two different hours in 0..23, got {self.quiet_hours}."
                )
        self.reconfirm_every = (
            None if self.reconfirm_every is None else pd.Timedelta(self.reconfirm_every)
        )
        if self.history is not None:
            missing = [c for c in ("customer_id", "channel", "at") if c not in self.history.columns]
            if missing:
                raise DataValidationError(f"history lacks the column(s) {missing}.")

    def filter(
        self,
        contacts: pd.DataFrame,
        *,
        at: Any = None,
        time_column: str = "planned_at",
    ) -> ContactDecision:
        """Split proposed contacts into those allowed and those withheld, with reasons.

        Parameters
        ----------
        contacts : pandas.DataFrame
            ``customer_id``, ``channel``, ``purpose`` and the planned time in
            ``time_column`` (naive UTC or tz-aware); optionally ``timezone`` per row. A
            campaign plan, next best actions, offers and trigger firings all fit this shape.
        at : datetime-like, optional
            The planned time of every row when ``contacts`` has no ``time_column``.
        time_column : str, default "planned_at"
            Column of the planned times.

        Returns
        -------
        ContactDecision

        Raises
        ------
        DataValidationError
            A missing column or time.
        """
        table = self._contacts(contacts, at, time_column)
        n = len(table)
        reason = np.full(n, "", dtype=object)

        def withhold(mask: np.ndarray, why: str) -> None:
            reason[(reason == "") & mask] = why

        if self.suppression is not None and len(self.suppression):
            withhold(self.suppression.mask(table["customer_id"]), "suppressed")
        # The answer in force at the planned time: the latest given at or before it.
        joined = self._answers_at(table)
        status = joined["status"].to_numpy(dtype=object)
        since = joined["since"].to_numpy(dtype="datetime64[us]")
        expires = joined["expires"].to_numpy(dtype="datetime64[us]")
        night = joined["night"].fillna(False).to_numpy(dtype=bool)
        planned = table["_t"].to_numpy(dtype="datetime64[us]")
        needs = table["purpose"].isin(self.consent_purposes).to_numpy()
        answered = pd.notna(status)
        withhold(needs & ~answered, "no_consent")
        withhold(answered & (status == "denied"), "denied")
        withhold(answered & (status == "revoked"), "revoked")
        lapse = expires
        if self.reconfirm_every is not None:
            deadline = since + np.timedelta64(self.reconfirm_every.to_timedelta64(), "us")
            lapse = np.where(np.isnat(expires) | (deadline < expires), deadline, expires)
        expired = answered & (status == "granted") & ~np.isnat(lapse) & (lapse <= planned)
        withhold(expired, "expired")
        if self.quiet_hours is not None:
            withhold(needs & self._in_quiet_hours(table) & ~night, "quiet_hours")
        for pause in self.pauses:
            on_channel = (
                np.ones(n, dtype=bool)
                if pause.channel is None
                else (table["channel"] == pause.channel).to_numpy()
            )
            inside = (planned >= pause.start.to_datetime64()) & (
                planned < pause.end.to_datetime64()
            )
            withhold(on_channel & inside, "paused")
        if self.caps:
            withhold(self._over_cap(table, reason == ""), "frequency_cap")

        original = contacts
        if time_column not in original:
            original = original.assign(**{time_column: table["_t"].to_numpy()})
        # The caller's rows, index and columns as given, split in two.
        allowed = original.iloc[np.flatnonzero(reason == "")]
        withheld = original.iloc[np.flatnonzero(reason != "")].assign(reason=reason[reason != ""])
        counts = pd.Series(
            [int((reason == "").sum()), *[int((reason == why).sum()) for why in REASONS]],
            index=["allowed", *REASONS],
            name="contacts",
        )
        return ContactDecision(allowed=allowed, withheld=withheld, counts=counts)

    def __call__(self, contacts: pd.DataFrame, *, now: Any = None) -> pd.Series:
        """The contact-policy hook of :mod:`vipml.actions`: per contact, None or the reason.

        ``contacts`` is indexed by customer id, as next best actions and campaign plans are;
        the channel comes from a ``channel`` column (else ``default_channel``), the purpose
        from a ``purpose`` column (else ``"advertising"``: every action of the playbook is
        marketing), the time from ``planned_at``, or from ``contact_date`` at ``send_hour`` in
        the customer's zone, or ``now`` (the argument, else the policy's ``now``, else the
        current time) for contacts without a date.

        Examples
        --------
        >>> consents = pd.DataFrame({"customer_id": ["a"], "channel": "email",
        ...     "purpose": "advertising", "status": "granted", "since": ["2025-01-01"]})
        >>> plan = pd.DataFrame({"action": ["retention_offer", "upgrade_offer"],
        ...     "contact_date": pd.to_datetime(["2025-03-01", "2025-03-02"])},
        ...     index=pd.Index(["a", "b"], name="customer_id"))
        >>> ContactPolicy(consents)(plan).tolist()
        [None, 'no_consent']
        """
        table = contacts.reset_index()
        if "customer_id" not in table:
            table = table.rename(columns={table.columns[0]: "customer_id"})
        if "channel" not in table:
            table["channel"] = self.default_channel
        if "purpose" not in table:
            table["purpose"] = "advertising"
        if "planned_at" not in table:
            now = self.now if now is None else now
            when = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
            table["planned_at"] = _utc(when, "now")
            if "contact_date" in table:
                days = pd.to_datetime(table["contact_date"]).dt.normalize()
                zones = (
                    table["timezone"].fillna(self.timezone)
                    if "timezone" in table
                    else pd.Series(self.timezone, index=table.index)
                )
                for zone, rows in zones.groupby(zones).groups.items():  # zones, not rows
                    local = days.loc[rows] + pd.Timedelta(hours=self.send_hour)
                    utc = local.dt.tz_localize(
                        str(zone), nonexistent="shift_forward", ambiguous=False
                    )
                    known = utc.notna()
                    table.loc[known[known].index, "planned_at"] = (
                        utc[known].dt.tz_convert("UTC").dt.tz_localize(None)
                    )
        decision = self.filter(table)  # table has a RangeIndex: withheld rows by position
        reasons = np.full(len(table), None, dtype=object)
        reasons[decision.withheld.index.to_numpy()] = decision.withheld["reason"].to_numpy()
        return pd.Series(reasons, index=contacts.index, dtype=object)

    # ---- internals ---------------------------------------------------------------------------

    def _contacts(self, contacts: Any, at: Any, time_column: str) -> pd.DataFrame:
        if not isinstance(contacts, pd.DataFrame):
            raise DataValidationError(
                f"contacts must be a pandas DataFrame, got {type(contacts).__name__}."
            )
        missing = [c for c in ("customer_id", "channel", "purpose") if c not in contacts]
        if time_column not in contacts and at is None:
            missing.append(time_column)
        if missing:
            raise DataValidationError(
                f"contacts lack the column(s) {missing}: each proposed contact needs "
                "customer_id, channel, purpose and its planned time (or pass at=...)."
            )
        table = contacts[["customer_id", "channel", "purpose"]].reset_index(drop=True).copy()
        if time_column in contacts:
            table["_t"] = _utc_column(
                contacts[time_column].reset_index(drop=True), time_column, required=True
            )
        else:
            table["_t"] = pd.Series(_utc(at, "at"), index=table.index).astype("datetime64[us]")
        if "timezone" in contacts:
            table["timezone"] = contacts["timezone"].reset_index(drop=True).fillna(self.timezone)
        else:
            table["timezone"] = self.timezone
        table["_cid"] = table["customer_id"].astype(str)
        return table

    def _answers_at(self, table: pd.DataFrame) -> pd.DataFrame:
        """Per contact row, the consent answer in force at its planned time (or nothing)."""
        keys = ["_cid", "channel", "purpose"]
        answers = self.consents.assign(_cid=self.consents["customer_id"].astype(str))
        answers = answers[[*keys, "status", "since", "expires", "night"]].astype(
            {"channel": str, "purpose": str}
        )
        rows = table[[*keys, "_t"]].astype({"channel": str, "purpose": str})
        rows = rows.assign(_row=np.arange(len(rows))).sort_values("_t", kind="stable")
        answers = answers.sort_values("since", kind="stable")
        joined = pd.merge_asof(
            rows, answers, left_on="_t", right_on="since", by=keys, direction="backward"
        )
        return joined.sort_values("_row").reset_index(drop=True)

    def _in_quiet_hours(self, table: pd.DataFrame) -> np.ndarray:
        start, end = self.quiet_hours  # type: ignore[misc]
        hours = np.zeros(len(table), dtype=np.int64)
        utc = table["_t"].dt.tz_localize("UTC")
        for zone, rows in table.groupby("timezone").groups.items():  # loop over zones, not rows
            try:
                local = utc.loc[rows].dt.tz_convert(str(zone))
            except Exception as exc:  # an unknown zone name
                raise DataValidationError(f"Unknown time zone {zone!r} in contacts: {exc}") from exc
            hours[np.asarray(rows)] = local.dt.hour.to_numpy()
        if start < end:
            return (hours >= start) & (hours < end)
        return (hours >= start) | (hours < end)

    def _over_cap(self, table: pd.DataFrame, eligible: np.ndarray) -> np.ndarray:
        """Contacts that would exceed their channel's cap (history + earlier eligible rows)."""
        over = np.zeros(len(table), dtype=bool)
        for channel, cap in self.caps.items():  # loop over channels, not rows
            rows = np.flatnonzero(eligible & (table["channel"] == channel).to_numpy())
            if rows.size == 0:
                continue
            candidates = pd.DataFrame(
                {
                    "cid": table["_cid"].to_numpy()[rows],
                    "t": table["_t"].to_numpy()[rows],
                    "row": rows,
                    "sent": False,
                }
            )
            parts = [candidates]
            if self.history is not None:
                past = self.history[self.history["channel"] == channel]
                parts.append(
                    pd.DataFrame(
                        {
                            "cid": past["customer_id"].astype(str).to_numpy(),
                            "t": _utc_column(past["at"], "at", required=True).to_numpy(),
                            "row": -1,
                            "sent": True,
                        }
                    )
                )
            events = pd.concat(parts, ignore_index=True)
            # Sent contacts first at equal times, then the batch in its own order.
            events = events.sort_values(
                ["cid", "t", "sent", "row"], ascending=[True, True, False, True], kind="stable"
            )
            code = pd.factorize(events["cid"])[0].astype(np.int64)
            t = events["t"].to_numpy(dtype="datetime64[us]").astype(np.int64)
            # Times as ranks, so (customer, time) packs into one sortable int64 exactly.
            distinct = np.unique(t)
            width = distinct.size + 1
            rank = np.searchsorted(distinct, t)
            lower = np.searchsorted(distinct, t - cap.per.value // 1000, side="right")
            key = code * width + rank
            start = np.searchsorted(key, code * width + lower, side="left")
            in_window = np.arange(len(events)) - start  # earlier contacts in (t - per, t]
            candidate = ~events["sent"].to_numpy(dtype=bool)
            rows_of = events["row"].to_numpy()[candidate]
            over[rows_of] = in_window[candidate] >= cap.max_contacts
        return over


def _utc(value: Any, name: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(f"{name}={value!r} is not a time.") from exc
    if stamp is pd.NaT:
        raise DataValidationError(f"{name} is missing.")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.as_unit("us")


def _utc_column(values: pd.Series, name: str, *, required: bool) -> pd.Series:
    try:
        parsed = pd.to_datetime(values, utc=True, format="mixed")
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"Column '{name}' holds values that are not times ({exc})."
        ) from exc
    if required and parsed.isna().any():
        raise DataValidationError(
            f"Column '{name}' has {int(parsed.isna().sum())} missing time(s); every row needs one."
        )
    return parsed.dt.tz_localize(None).astype("datetime64[us]")
