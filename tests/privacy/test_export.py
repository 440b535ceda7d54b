"""export_customer holds a row from every table that holds the id; erasure is final."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from vipml.data import link_identities, resolve, simulate, split_identities
from vipml.errors import DataValidationError
from vipml.features import rfm_segments, rfm_summary
from vipml.features.online import CustomerState
from vipml.online.store import MemoryStore, SQLiteStore
from vipml.privacy import (
    ContactPolicy,
    PersonalData,
    SuppressionList,
    erase_customer,
    export_customer,
)

KEYS = ["email", "phone", ("first_name", "surname", "birth_date")]
CUTOFF = "2025-06-30"


@pytest.fixture(scope="module")
def shop():
    sim = simulate(120, random_state=8)
    return split_identities(sim, typo_rate=0.0, random_state=8)


def build(shop, store) -> tuple[PersonalData, str, pd.DataFrame]:
    """Every place vipml keeps customer rows, filled for the simulated shop."""
    identities = link_identities(shop.records, keys=KEYS)
    tx = resolve(shop.transactions, identities)
    features = rfm_summary(tx, cutoff=CUTOFF)
    scores = rfm_segments(features)
    history = pd.concat(
        [
            rfm_segments(rfm_summary(tx, cutoff=c)).assign(at=pd.Timestamp(c))
            for c in ("2025-03-31", CUTOFF)
        ]
    ).reset_index()[["customer_id", "at", "segment"]]
    customer = features["frequency"].idxmax()
    ids = features.index.tolist()
    plans = pd.DataFrame(
        {
            "customer_id": ids,
            "channel": "sms",
            "purpose": "advertising",
            "planned_at": pd.Timestamp("2025-07-01 02:00"),
        }
    )
    consents = pd.DataFrame(
        {
            "customer_id": ids,
            "channel": "sms",
            "purpose": "advertising",
            "status": "granted",
            "since": "2025-01-01",
            "source": "web_signup",
        }
    )
    contacts = pd.DataFrame(
        {"customer_id": [customer], "channel": ["sms"], "at": [pd.Timestamp("2025-05-01")]}
    )
    state = CustomerState(customer)
    for row in tx[tx["customer_id"] == customer].head(3).to_dict("records"):
        state.update(row)
    store.put(
        {customer: state.to_bytes()},
        [{"customer_id": customer, "kind": "tier_entered", "at": "2025-06-01"}],
    )
    store.put(
        {"someone": CustomerState("someone").to_bytes()}, [{"customer_id": "someone", "kind": "x"}]
    )
    data = PersonalData(
        {
            "features": features,
            "scores": scores,
            "segment_history": history,
            "plans": plans,
            "contacts": contacts,
            "consents": consents,
            "raw_transactions": shop.transactions,  # keyed by the sources' own ids
        },
        identities=identities,
        store=store,
    )
    return data, customer, plans


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_export_holds_a_row_from_every_table_that_holds_the_id(shop, tmp_path, kind):
    store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "online.db")
    data, customer, _ = build(shop, store)
    document = export_customer(customer, data, at="2025-07-01")
    # The places that hold customer ids: every table, the identity map and the store.
    places = [*data.tables, "linked_ids", "store.state", "store.alerts"]
    found = {name: len(rows) for name, rows in document["tables"].items()}
    found["linked_ids"] = len(document["linked_ids"])
    found["store.state"] = int(document["store"]["state"] is not None)
    found["store.alerts"] = len(document["store"]["alerts"])
    assert sorted(found) == sorted(places)
    assert all(found[name] >= 1 for name in places), found
    assert found["linked_ids"] >= 2  # the customer was split across sources
    assert document["store"]["state"]["customer_id"] == customer
    assert {a["customer_id"] for a in document["store"]["alerts"]} == {customer}
    text = json.dumps(document)
    assert "someone" not in text
    # Nothing of another customer leaks into the export.
    for rows in document["tables"].values():
        owners = {str(r.get("customer_id")) for r in rows}
        assert owners <= data.ids_of(customer)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_erasure_removes_everything_and_a_reingested_log_stays_out_of_contact_lists(
    shop, tmp_path, kind
):
    store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "online.db")
    data, customer, plans = build(shop, store)
    tombstones = SuppressionList(tmp_path / "suppressed.json")
    policy = ContactPolicy(data.tables["consents"], suppression=tombstones)
    assert customer in policy.filter(plans).allowed["customer_id"].tolist()

    erasure = erase_customer(customer, data, tombstones, at="2025-07-02")
    assert erasure.removed["store_state"] == 1 and erasure.removed["store_alerts"] == 1
    assert all(n >= 1 for name, n in erasure.removed.items() if name in data.tables)
    after = export_customer(customer, erasure.data)
    assert after["linked_ids"] == [] and after["store"] == {"state": None, "alerts": []}
    assert all(rows == [] for rows in after["tables"].values())
    assert store.get("someone") is not None  # the others are untouched
    assert erasure.tombstones == len(data.ids_of(customer))

    # The same log comes in again, through a map that no longer holds the customer...
    with pytest.warns(Warning):
        again = resolve(shop.transactions, erasure.data.identities)
    plan = pd.DataFrame(
        {
            "customer_id": again["customer_id"].unique(),
            "channel": "sms",
            "purpose": "advertising",
            "planned_at": pd.Timestamp("2025-07-03 02:00"),
        }
    )
    # ... and even with consents re-imported for everyone, the customer is withheld.
    consents = plan[["customer_id", "channel", "purpose"]].assign(
        status="granted", since="2025-01-01"
    )
    reloaded = ContactPolicy(consents, suppression=SuppressionList(tmp_path / "suppressed.json"))
    decision = reloaded.filter(plan)
    erased_ids = data.ids_of(customer)
    assert not set(decision.allowed["customer_id"]) & erased_ids
    assert decision.counts["suppressed"] >= 2  # each source id of the customer
    # Linking the source records again gives the old id back: still suppressed.
    relinked = resolve(shop.transactions, link_identities(shop.records, keys=KEYS))
    fresh = pd.DataFrame(
        {
            "customer_id": relinked["customer_id"].unique(),
            "channel": "sms",
            "purpose": "advertising",
        }
    )
    consents = fresh.assign(status="granted", since="2025-01-01")
    decision = ContactPolicy(consents, suppression=tombstones).filter(fresh, at="2025-07-03 02:00")
    assert customer in decision.withheld["customer_id"].tolist()
    assert not set(decision.allowed["customer_id"]) & erased_ids


def test_places_without_a_customer_id_are_refused():
    with pytest.raises(DataValidationError, match="no customer id column"):
        PersonalData({"orphans": pd.DataFrame({"x": [1]})})
    with pytest.raises(TypeError, match="DataFrame"):
        PersonalData({"orphans": [1, 2]})
