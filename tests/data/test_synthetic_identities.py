"""Simulated identities: seeded, noisy as documented, and the shop's logs split by source."""

from __future__ import annotations

import pandas as pd
import pytest

from vipml.data import simulate, simulate_identities, split_identities
from vipml.data.identifiers import normalise_emails, normalise_phones
from vipml.data.synthetic_identities import SOURCE_OF_CHANNEL


def test_identities_are_seeded_and_noisy_as_documented():
    first = simulate_identities(300, random_state=5)
    pd.testing.assert_frame_equal(first.records, simulate_identities(300, random_state=5).records)
    records = first.records
    assert first.truth.nunique() == 300
    assert not records.duplicated(["source", "source_id"]).any()
    # Clean copies of one person's e-mail and phone agree once normalised...
    clean = simulate_identities(300, random_state=5, typo_rate=0.0)
    emails = normalise_emails(clean.records["email"]).groupby(clean.truth.to_numpy()).nunique()
    phones = normalise_phones(clean.records["phone"]).groupby(clean.truth.to_numpy()).nunique()
    assert emails.max() == 1 and phones.max() == 1
    # ... while raw spellings differ (case, blanks, notations).
    assert clean.records["email"].dropna().str.contains("[A-Z]").any()
    assert clean.records["phone"].dropna().str.startswith("+82").any()
    # Typos make some of them disagree.
    noisy = simulate_identities(300, random_state=5, typo_rate=0.3)
    typos = normalise_emails(noisy.records["email"]).groupby(noisy.truth.to_numpy()).nunique()
    assert typos.max() > 1


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="sources"):
        simulate_identities(10, sources=("fax",))
    with pytest.raises(ValueError, match="typo_rate"):
        simulate_identities(10, typo_rate=1.5)


def test_split_identities_relabels_the_logs_and_nothing_else():
    sim = simulate(150, random_state=9)
    shop = split_identities(sim, random_state=9)
    tx = shop.transactions
    pd.testing.assert_frame_equal(
        tx.drop(columns=["customer_id", "source"]), sim.transactions.drop(columns="customer_id")
    )
    assert (tx["source"] == sim.transactions["channel"].map(SOURCE_OF_CHANNEL)).all()
    # One source id per (customer, source), mapping back to the shop's customer.
    truth = shop.truth.set_index(["source", "source_id"])["customer_id"]
    back = truth.reindex(pd.MultiIndex.from_frame(tx[["source", "customer_id"]]))
    assert (back.to_numpy() == sim.transactions["customer_id"].to_numpy()).all()
    assert set(shop.records["source_id"]) == set(shop.truth["source_id"])
    assert (shop.events["source"] == sim.events["channel"].map(SOURCE_OF_CHANNEL)).all()
