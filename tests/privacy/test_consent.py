"""ContactPolicy: no contact against a missing, denied, revoked or expired consent, in quiet
hours without night consent, in a pause, beyond a cap, or to an erased customer."""

from __future__ import annotations

import zoneinfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vipml.errors import DataValidationError
from vipml.privacy import (
    REASONS,
    ContactPolicy,
    FrequencyCap,
    PauseWindow,
    SuppressionList,
)

START = pd.Timestamp("2025-01-01")
CUSTOMERS = ["a", "b", "c", "d"]
CHANNELS = ["sms", "email", "push"]
PURPOSES = ["advertising", "service"]


def hours(n: int) -> pd.Timedelta:
    return pd.Timedelta(hours=n)


@st.composite
def scenarios(draw):
    """Random consents, caps, history, pauses, suppression and a plan, on a small clock."""
    n_consents = draw(st.integers(0, 14))
    consents = pd.DataFrame(
        {
            "customer_id": draw(
                st.lists(st.sampled_from(CUSTOMERS), min_size=n_consents, max_size=n_consents)
            ),
            "channel": draw(
                st.lists(st.sampled_from(CHANNELS), min_size=n_consents, max_size=n_consents)
            ),
            "purpose": draw(
                st.lists(st.sampled_from(PURPOSES), min_size=n_consents, max_size=n_consents)
            ),
            "status": draw(
                st.lists(
                    st.sampled_from(["granted", "granted", "denied", "revoked"]),
                    min_size=n_consents,
                    max_size=n_consents,
                )
            ),
            "since": [
                START + hours(h)
                for h in draw(
                    st.lists(
                        st.integers(-24 * 800, 24 * 60), min_size=n_consents, max_size=n_consents
                    )
                )
            ],
            "expires": [
                pd.NaT if e is None else START + hours(e)
                for e in draw(
                    st.lists(
                        st.one_of(st.none(), st.integers(0, 24 * 90)),
                        min_size=n_consents,
                        max_size=n_consents,
                    )
                )
            ],
            "night": draw(st.lists(st.booleans(), min_size=n_consents, max_size=n_consents)),
        }
    )
    n_plan = draw(st.integers(1, 25))
    plan = pd.DataFrame(
        {
            "customer_id": draw(
                st.lists(st.sampled_from(CUSTOMERS), min_size=n_plan, max_size=n_plan)
            ),
            "channel": draw(st.lists(st.sampled_from(CHANNELS), min_size=n_plan, max_size=n_plan)),
            "purpose": draw(st.lists(st.sampled_from(PURPOSES), min_size=n_plan, max_size=n_plan)),
            "planned_at": [
                START + hours(h)
                for h in draw(st.lists(st.integers(0, 24 * 60), min_size=n_plan, max_size=n_plan))
            ],
            "timezone": draw(
                st.lists(
                    st.sampled_from(["Asia/Seoul", "Europe/Paris", "America/New_York"]),
                    min_size=n_plan,
                    max_size=n_plan,
                )
            ),
        }
    )
    caps = {
        channel: FrequencyCap(draw(st.integers(1, 3)), f"{draw(st.integers(1, 10))}D")
        for channel in draw(st.lists(st.sampled_from(CHANNELS), unique=True, max_size=3))
    }
    n_history = draw(st.integers(0, 6))
    history = pd.DataFrame(
        {
            "customer_id": draw(
                st.lists(st.sampled_from(CUSTOMERS), min_size=n_history, max_size=n_history)
            ),
            "channel": draw(
                st.lists(st.sampled_from(CHANNELS), min_size=n_history, max_size=n_history)
            ),
            "at": [
                START + hours(h)
                for h in draw(
                    st.lists(st.integers(-24 * 10, 24 * 60), min_size=n_history, max_size=n_history)
                )
            ],
        }
    )
    pauses = [
        PauseWindow(
            draw(st.sampled_from([None, *CHANNELS])), START + hours(h), START + hours(h + d)
        )
        for h, d in draw(
            st.lists(st.tuples(st.integers(0, 24 * 60), st.integers(1, 72)), max_size=2)
        )
    ]
    suppressed = draw(st.lists(st.sampled_from(CUSTOMERS), unique=True, max_size=2))
    quiet = draw(st.sampled_from([(21, 8), (22, 6), (0, 7)]))
    return consents, plan, caps, history, pauses, suppressed, quiet


def oracle_violations(
    policy: ContactPolicy, allowed: pd.DataFrame, suppressed: list[str]
) -> list[str]:
    """Re-check every allowed contact with plain Python, one rule at a time."""
    problems = []
    consents = policy.consents
    sent: dict[tuple[str, str], list[pd.Timestamp]] = {}
    for _, row in policy.history.iterrows() if policy.history is not None else []:
        sent.setdefault((row["customer_id"], row["channel"]), []).append(pd.Timestamp(row["at"]))
    for row in allowed.sort_values("planned_at", kind="stable").itertuples():
        t = pd.Timestamp(row.planned_at)
        where = f"{row.customer_id}/{row.channel}/{row.purpose}@{t}"
        if row.customer_id in suppressed:
            problems.append(f"suppressed {where}")
        given = consents[
            (consents["customer_id"] == row.customer_id)
            & (consents["channel"] == row.channel)
            & (consents["purpose"] == row.purpose)
            & (consents["since"] <= t)
        ].sort_values("since", kind="stable")
        latest = None if given.empty else given.iloc[-1]
        needs = row.purpose == "advertising"
        if needs and latest is None:
            problems.append(f"no consent {where}")
        if latest is not None:
            if latest["status"] in ("denied", "revoked"):
                problems.append(f"{latest['status']} {where}")
            lapse = latest["since"] + pd.Timedelta(days=730)
            if pd.notna(latest["expires"]):
                lapse = min(lapse, latest["expires"])
            if lapse <= t:
                problems.append(f"expired {where}")
        local = t.tz_localize("UTC").tz_convert(zoneinfo.ZoneInfo(row.timezone)).hour
        start, end = policy.quiet_hours
        quiet = (start <= local < end) if start < end else (local >= start or local < end)
        night = latest is not None and bool(latest["night"])
        if needs and quiet and not night:
            problems.append(f"quiet hour {local} {where}")
        for pause in policy.pauses:
            if pause.channel in (None, row.channel) and pause.start <= t < pause.end:
                problems.append(f"paused {where}")
        cap = policy.caps.get(row.channel)
        times = sent.setdefault((row.customer_id, row.channel), [])
        if cap is not None:
            recent = [s for s in times if t - cap.per < s <= t]
            if len(recent) >= cap.max_contacts:
                problems.append(f"cap {where}")
        times.append(t)
    return problems


@settings(max_examples=80, deadline=None)
@given(scenarios())
def test_no_allowed_contact_breaks_a_rule(scenario):
    consents, plan, caps, history, pauses, suppressed, quiet = scenario
    tombstones = SuppressionList()
    tombstones.add(suppressed)
    policy = ContactPolicy(
        consents,
        suppression=tombstones,
        caps=caps,
        pauses=pauses,
        history=history,
        quiet_hours=quiet,
    )
    decision = policy.filter(plan)
    assert oracle_violations(policy, decision.allowed, suppressed) == []
    # Every contact is either allowed or withheld once, with a known reason, counted.
    assert len(decision.allowed) + len(decision.withheld) == len(plan)
    assert set(decision.withheld["reason"]) <= set(REASONS)
    assert decision.counts.sum() == len(plan)
    assert decision.counts["allowed"] == len(decision.allowed)
    for reason in REASONS:
        assert decision.counts[reason] == (decision.withheld["reason"] == reason).sum()


@settings(max_examples=40, deadline=None)
@given(scenarios())
def test_a_contact_is_withheld_only_for_its_stated_reason(scenario):
    """Without caps, the withheld reason is the first rule the oracle finds broken."""
    consents, plan, _, _, pauses, suppressed, quiet = scenario
    tombstones = SuppressionList()
    tombstones.add(suppressed)
    policy = ContactPolicy(consents, suppression=tombstones, pauses=pauses, quiet_hours=quiet)
    decision = policy.filter(plan)
    for row in decision.withheld.itertuples():
        one = pd.DataFrame([row._asdict()]).drop(columns=["Index", "reason"])
        problems = oracle_violations(policy, one, suppressed)
        assert problems, f"{row} was withheld ({row.reason}) but breaks no rule"
        first = problems[0].split()[0]
        expected = {"no": "no_consent", "quiet": "quiet_hours", "cap": "frequency_cap"}.get(
            first, first
        )
        assert expected == row.reason


def test_korean_defaults_read_as_documented():
    consents = pd.DataFrame(
        {
            "customer_id": ["kim", "lee", "park"],
            "channel": "sms",
            "purpose": "advertising",
            "status": "granted",
            "since": ["2023-03-01", "2025-01-01", "2025-01-01"],
            "night": [False, False, True],
            "source": "app_signup",
        }
    )
    policy = ContactPolicy(consents)
    plan = pd.DataFrame(
        {
            "customer_id": ["kim", "lee", "lee", "park", "lee"],
            "channel": "sms",
            "purpose": ["advertising", "advertising", "advertising", "advertising", "service"],
            # 10:00, 22:30, 07:30 and 22:30 in Seoul (UTC+9); a service message at 22:30.
            "planned_at": pd.to_datetime(
                [
                    "2025-03-10 01:00",
                    "2025-03-10 13:30",
                    "2025-03-09 22:30",
                    "2025-03-10 13:30",
                    "2025-03-10 13:30",
                ]
            ),
        }
    )
    decision = policy.filter(plan)
    assert decision.withheld["reason"].tolist() == ["expired", "quiet_hours", "quiet_hours"]
    assert decision.allowed["customer_id"].tolist() == ["park", "lee"]
    assert repr(decision) == "ContactDecision(allowed=2, withheld: expired=1, quiet_hours=2)"
    # The customer's own time zone moves the quiet hours: 14:30 and 23:30 in Paris.
    in_paris = policy.filter(plan.assign(timezone="Europe/Paris")).withheld
    assert in_paris["reason"].to_dict() == {0: "expired", 2: "quiet_hours"}


def test_caps_count_history_and_the_batch():
    consents = pd.DataFrame(
        {
            "customer_id": ["a"],
            "channel": "email",
            "purpose": "advertising",
            "status": "granted",
            "since": ["2025-01-01"],
        }
    )
    history = pd.DataFrame({"customer_id": ["a"], "channel": ["email"], "at": ["2025-03-01 02:00"]})
    policy = ContactPolicy(consents, caps={"email": FrequencyCap(2, "7D")}, history=history)
    plan = pd.DataFrame(
        {
            "customer_id": "a",
            "channel": "email",
            "purpose": "advertising",
            "planned_at": pd.to_datetime(
                ["2025-03-02 02:00", "2025-03-03 02:00", "2025-03-09 02:00"]
            ),
        }
    )
    decision = policy.filter(plan)
    # 03-02: one sent in the week, allowed; 03-03: two in the week, capped; 03-09: the sent
    # one left the window, the 03-02 one is still in it: allowed.
    assert decision.withheld["reason"].tolist() == ["frequency_cap"]
    assert decision.allowed["planned_at"].dt.day.tolist() == [2, 9]


def test_one_time_for_the_whole_list_and_bad_input():
    consents = pd.DataFrame(
        {
            "customer_id": [1],
            "channel": "push",
            "purpose": "advertising",
            "status": "granted",
            "since": ["2025-01-01"],
        }
    )
    policy = ContactPolicy(consents)
    plan = pd.DataFrame({"customer_id": [1, 2], "channel": "push", "purpose": "advertising"})
    decision = policy.filter(plan, at="2025-02-01 03:00")  # noon in Seoul
    assert decision.allowed["customer_id"].tolist() == [1]
    assert decision.allowed["planned_at"].tolist() == [pd.Timestamp("2025-02-01 03:00")]
    with pytest.raises(DataValidationError, match="planned_at"):
        policy.filter(plan)
    with pytest.raises(DataValidationError, match="status"):
        ContactPolicy(consents.assign(status="maybe"))
    with pytest.raises(DataValidationError, match=r"\['since'\]"):
        ContactPolicy(consents.drop(columns="since"))
    with pytest.raises(ValueError, match="quiet_hours"):
        ContactPolicy(consents, quiet_hours=(8, 8))
    with pytest.raises(DataValidationError, match="Unknown time zone"):
        policy.filter(plan.assign(timezone="Mars/Olympus"), at="2025-02-01")


def test_suppression_lists_persist_without_the_ids(tmp_path):
    path = tmp_path / "suppressed.json"
    tombstones = SuppressionList(path)
    assert tombstones.add(["C000042", 42], reason="erasure") == 2
    assert tombstones.add(["C000042", "42"]) == 0  # 42 and "42" are one id
    text = path.read_text()
    assert "C000042" not in text
    again = SuppressionList(path)
    assert "C000042" in again and 42 in again and "42" in again
    assert again.mask(np.array(["x", "C000042"], dtype=object)).tolist() == [False, True]
    path.write_text("{}")
    with pytest.raises(DataValidationError, match="not a suppression list"):
        SuppressionList(path)


def test_the_policy_answers_the_actions_hook_per_customer():
    consents = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "channel": "email",
            "purpose": "advertising",
            "status": ["granted", "granted", "denied"],
            "since": ["2025-01-01", "2025-01-01", "2025-01-01"],
        }
    )
    tombstones = SuppressionList()
    tombstones.add(["b"])
    policy = ContactPolicy(consents, suppression=tombstones)
    plan = pd.DataFrame(
        {
            "action": ["retention_offer", "upgrade_offer", "reactivation", "vip_experience"],
            "contact_date": pd.to_datetime(["2025-03-01", "2025-03-01", "2025-03-01", pd.NaT]),
        },
        index=pd.Index(["a", "b", "c", "d"], name="customer_id"),
    )
    reasons = policy(plan, now="2025-03-01 01:00")
    assert reasons.index.equals(plan.index)
    assert reasons.tolist() == [None, "suppressed", "denied", "no_consent"]
    # A day-level contact goes out at send_hour in the customer's zone.
    late = ContactPolicy(consents, send_hour=22)(plan.loc[["a"]])
    assert late.tolist() == ["quiet_hours"]
    assert tombstones(plan).tolist() == [None, "suppressed", None, None]


def test_the_callers_rows_keep_their_index_and_columns():
    consents = pd.DataFrame(
        {
            "customer_id": ["a"],
            "channel": "sms",
            "purpose": "advertising",
            "status": "granted",
            "since": ["2025-01-01"],
        }
    )
    plan = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "channel": "sms",
            "purpose": "advertising",
            "offer": ["10%", "free"],
        },
        index=pd.Index([101, 102], name="contact_id"),
    )
    snapshot = plan.copy()
    decision = ContactPolicy(consents).filter(plan, at="2025-02-01 03:00")
    pd.testing.assert_frame_equal(plan, snapshot)
    assert decision.allowed.index.tolist() == [101] and decision.withheld.index.tolist() == [102]
    assert decision.allowed.columns.tolist() == [
        "customer_id",
        "channel",
        "purpose",
        "offer",
        "planned_at",
    ]
