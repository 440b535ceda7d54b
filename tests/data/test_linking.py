"""Identity resolution: normalisation, links, report, stable ids, resolve on every engine."""

from __future__ import annotations

import duckdb
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vipml.data import (
    Columns,
    FuzzyMatch,
    IdentityMap,
    link_identities,
    resolve,
    simulate,
    simulate_identities,
    split_identities,
)
from vipml.data.identifiers import normalise_emails, normalise_phones
from vipml.errors import DataValidationError, DataWarning
from vipml.features import rfm_summary

EXACT_KEYS = ["email", "phone", ("first_name", "surname", "birth_date")]


def pair_scores(people, identities: IdentityMap) -> dict[str, float]:
    """Pairwise precision and recall of a map against the simulated persons."""
    index = pd.MultiIndex.from_frame(people.records[["source", "source_id"]])
    customer = identities.mapping.set_index(["source", "source_id"])["customer_id"]
    frame = pd.DataFrame(
        {"person": people.truth.to_numpy(), "customer": customer.reindex(index).to_numpy()}
    )
    predicted = frame.groupby("customer").size()
    correct = frame.groupby(["customer", "person"]).size()
    n_predicted = int((predicted * (predicted - 1) // 2).sum())
    n_correct = int((correct * (correct - 1) // 2).sum())
    return {
        "precision": n_correct / max(n_predicted, 1),
        "recall": n_correct / people.true_pairs(),
    }


def small_records() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source": ["web", "store", "app", "web", "store"],
            "source_id": ["w1", "s9", "a3", "w2", "s4"],
            "email": ["Kim@Example.com", None, " kim@example.com", "lee@example.com", None],
            "phone": [None, "010-1234-5678", "+82 10 1234 5678", None, "02 312 3456"],
            "address": ["1 Sejong-daero", "1 sejong-daero ", None, "1 Sejong-daero", "9 Jongno"],
        }
    )


def test_emails_lose_case_and_blanks_and_invalid_ones_are_missing():
    out = normalise_emails(["  A.B@X.ORG", "a. b@x.org", "a@b", "two@@x.org", "", None])
    assert out.tolist()[:2] == ["a.b@x.org", "a.b@x.org"]
    assert out.isna().tolist() == [False, False, True, True, True, True]


def test_phones_become_e164_in_every_notation():
    raw = [
        "010-1234-5678",
        "01012345678",
        "+82 10 1234 5678",
        "0082-10-1234-5678",
        "(010) 1234.5678",
    ]
    assert set(normalise_phones(raw, "KR")) == {"+821012345678"}
    assert normalise_phones(["(415) 555-2671"], "US").tolist() == ["+14155552671"]
    assert normalise_phones(["123", "not a phone"], "KR").isna().all()


def test_records_sharing_identifiers_are_linked_transitively():
    identities = link_identities(small_records(), keys=["email", "phone"])
    customer = identities.mapping.set_index(["source", "source_id"])["customer_id"]
    # w1 -e-mail- a3 -phone- s9: one person; w2 and s4 alone.
    assert customer[("web", "w1")] == customer[("app", "a3")] == customer[("store", "s9")]
    assert customer[("web", "w2")] == "web:w2"
    assert customer[("store", "s4")] == "store:s4"
    assert identities.summary["n_customers"] == 3
    assert identities.summary["n_linked_records"] == 3
    assert identities.linked_ids(customer[("web", "w1")])["source_id"].tolist() == [
        "a3",
        "s9",
        "w1",
    ]
    assert identities.customer_of("web", "w2") == "web:w2"
    assert identities.customer_of("web", "nobody") is None


def test_priority_chooses_the_source_whose_id_names_the_customer():
    identities = link_identities(small_records(), keys=["email", "phone"], priority=["store"])
    assert identities.customer_of("web", "w1") == "store:s9"


def test_an_identifier_over_the_cap_does_not_link_and_is_reported():
    records = pd.DataFrame(
        {
            "source": ["store"] * 4 + ["web"],
            "source_id": ["s1", "s2", "s3", "s4", "w1"],
            # The shop's own number typed into every walk-in's card.
            "phone": ["02-555-0100"] * 4 + [None],
            "email": [None, None, None, "x@example.com", "X@example.com"],
        }
    )
    identities = link_identities(records, keys=["phone", "email"], max_records_per_key=3)
    assert identities.mapping["customer_id"].nunique() == 4  # only s4-w1 linked, by e-mail
    over = identities.report[identities.report["kind"] == "over_cap"]
    assert over[["key", "value", "n_records", "action"]].values.tolist() == [
        ["phone", "+8225550100", 4, "not used to link"]
    ]
    assert identities.summary["keys"]["phone"]["over_cap"] == 1
    uncapped = link_identities(records, keys=["phone", "email"], max_records_per_key=None)
    assert uncapped.mapping["customer_id"].nunique() == 1


def test_same_source_joins_and_households_are_reported():
    identities = link_identities(small_records(), keys=["email", "phone"], household="address")
    kinds = identities.report.set_index("kind")
    assert "same_source" not in kinds.index
    household = kinds.loc[["household"]]
    assert household["value"].tolist() == ["1 sejong-daero"]
    assert household["n_customers"].tolist() == [2]  # w1's person and w2
    assert household["action"].tolist() == ["not linked"]
    records = small_records().assign(email=["a@x.org", "b@x.org", None, "a@x.org", None])
    twice = link_identities(records, keys=["email"])
    same = twice.report[twice.report["kind"] == "same_source"]
    assert same[["key", "value", "n_records"]].values.tolist() == [["email", "a@x.org", 2]]


def test_large_groups_are_reported():
    records = pd.DataFrame(
        {
            "source": "web",
            "source_id": [f"w{i}" for i in range(6)],
            "email": ["a@x.org", "a@x.org", "b@x.org", "b@x.org", "c@x.org", "c@x.org"],
            "card": ["1", "2", "2", "3", "3", "4"],  # a chain through the cards
        }
    )
    identities = link_identities(records, keys=["email", "card"], max_group=5)
    large = identities.report[identities.report["kind"] == "large_group"]
    assert large["n_records"].tolist() == [6]


def test_composite_keys_need_every_part():
    records = pd.DataFrame(
        {
            "source": ["a", "b", "c"],
            "source_id": ["1", "1", "1"],
            "first_name": ["Minji", "minji ", "minji"],
            "surname": ["Kim", "KIM", None],
            "birth_date": ["1990-01-02"] * 3,
        }
    )
    identities = link_identities(records, keys=[("first_name", "surname", "birth_date")])
    assert identities.mapping["customer_id"].tolist() == ["a:1", "a:1", "c:1"]


def test_several_rows_of_one_record_are_one_node():
    records = pd.DataFrame(
        {
            "source": ["web", "web", "app"],
            "source_id": [7, 7, 8],  # integer ids are read as strings
            "email": ["one@x.org", "two@x.org", "two@x.org"],
        }
    )
    identities = link_identities(records, keys=["email"])
    assert identities.mapping.values.tolist() == [["app", "8", "app:8"], ["web", "7", "app:8"]]


@settings(max_examples=10, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(0, 3))
def test_customer_ids_do_not_depend_on_the_order_of_the_records(random, seed):
    people = simulate_identities(40, random_state=seed)
    records = people.records
    order = list(range(len(records)))
    random.shuffle(order)
    first = link_identities(records, keys=EXACT_KEYS)
    second = link_identities(records.iloc[order], keys=EXACT_KEYS)
    pd.testing.assert_frame_equal(first.mapping, second.mapping)
    pd.testing.assert_frame_equal(first.report, second.report)


def test_exact_keys_on_the_simulated_people_reach_the_target():
    people = simulate_identities(2000, random_state=0, typo_rate=0.05)
    scores = pair_scores(people, link_identities(people.records, keys=EXACT_KEYS))
    assert scores["precision"] == 1.0
    assert scores["recall"] >= 0.95


def test_fuzzy_matching_through_splink_reaches_f1_099():
    people = simulate_identities(500, random_state=4, typo_rate=0.05)
    fuzzy = FuzzyMatch(
        names=["first_name", "surname"],
        dates=["birth_date"],
        addresses=["street", "email"],
        exact=["district"],
        blocking=["surname", "birth_date", ("first_name", "district")],
    )
    exact = pair_scores(people, link_identities(people.records, keys=["email", "phone"]))
    identities = link_identities(people.records, keys=["email", "phone"], fuzzy=fuzzy)
    scores = pair_scores(people, identities)
    f1 = 2 * scores["precision"] * scores["recall"] / (scores["precision"] + scores["recall"])
    assert f1 >= 0.99
    assert scores["recall"] > exact["recall"]
    assert identities.summary["n_fuzzy_links"] > 0


def test_fuzzy_match_validates_its_settings():
    with pytest.raises(ValueError, match="threshold"):
        FuzzyMatch(names=["a"], threshold=1.0)
    with pytest.raises(TypeError, match="list of column names"):
        FuzzyMatch(names="first_name")
    with pytest.raises(ValueError, match="at least one column"):
        FuzzyMatch()


def test_earlier_ids_survive_relinking():
    records = small_records()
    before = link_identities(records, keys=["email", "phone"], priority=["store"])
    # A new app record that sorts first would otherwise rename the group.
    grown = pd.concat(
        [
            records,
            pd.DataFrame({"source": ["app"], "source_id": ["a0"], "email": ["kim@example.com"]}),
        ],
        ignore_index=True,
    )
    fresh = link_identities(grown, keys=["email", "phone"])
    assert fresh.customer_of("web", "w1") == "app:a0"
    kept = link_identities(grown, keys=["email", "phone"], previous=before)
    assert kept.customer_of("web", "w1") == "store:s9"
    assert kept.customer_of("app", "a0") == "store:s9"
    assert kept.customer_of("web", "w2") == "web:w2"


def test_a_split_customer_keeps_the_id_on_the_larger_part():
    records = pd.DataFrame(
        {"source": "web", "source_id": ["1", "2", "3"], "email": ["a@x.org"] * 3}
    )
    before = link_identities(records, keys=["email"])
    after = link_identities(
        records.assign(email=["a@x.org", "a@x.org", "z@x.org"]), keys=["email"], previous=before
    )
    assert after.mapping["customer_id"].tolist() == ["web:1", "web:1", "web:3"]


def test_save_and_load_round_trip_and_refuse_a_changed_file(tmp_path):
    identities = link_identities(small_records(), keys=["email", "phone"], household="address")
    identities.save(tmp_path)
    loaded = IdentityMap.load(tmp_path)
    pd.testing.assert_frame_equal(loaded.mapping, identities.mapping)
    assert loaded.sha256 == identities.sha256
    assert loaded.report["kind"].tolist() == identities.report["kind"].tolist()
    again = link_identities(small_records().iloc[::-1], keys=["email", "phone"])
    assert again.sha256 == identities.sha256  # same records, same bytes
    tampered = identities.mapping.assign(customer_id="someone else")
    IdentityMap(tampered, identities.report).save(tmp_path / "other")
    (tmp_path / "identity_map.parquet").write_bytes(
        (tmp_path / "other" / "identity_map.parquet").read_bytes()
    )
    with pytest.raises(DataValidationError, match="does not match the sha256"):
        IdentityMap.load(tmp_path)
    with pytest.raises(DataValidationError, match="No readable identity map"):
        IdentityMap.load(tmp_path / "missing")


def test_a_bundle_records_the_map_and_gets_only_that_map_back(tmp_path):
    identities = link_identities(small_records(), keys=["email", "phone"])
    entry = identities.manifest_entry()
    assert entry == {
        "format": 1,
        "sha256": identities.sha256,
        "n_records": 5,
        "n_customers": 3,
    }
    identities.save(tmp_path / "identities")
    assert (
        IdentityMap.load(tmp_path / "identities", sha256=entry["sha256"]).sha256 == entry["sha256"]
    )
    other = link_identities(small_records(), keys=["email"])
    other.save(tmp_path / "other")
    with pytest.raises(DataValidationError, match="trained with another map"):
        IdentityMap.load(tmp_path / "other", sha256=entry["sha256"])


def test_bad_records_get_clear_errors():
    with pytest.raises(DataValidationError, match="'source_id'"):
        link_identities(pd.DataFrame({"source": ["a"], "email": ["a@x.org"]}))
    with pytest.raises(DataValidationError, match=r"lack the column\(s\) \['phone'\]"):
        link_identities(pd.DataFrame({"source": ["a"], "source_id": ["1"], "email": ["a@x.org"]}))
    with pytest.raises(DataValidationError, match="1 missing or empty"):
        link_identities(
            pd.DataFrame({"source": ["a", None], "source_id": ["1", "2"], "email": [None, None]}),
            keys=["email"],
        )
    with pytest.raises(DataValidationError, match="holds floats"):
        link_identities(
            pd.DataFrame({"source": ["a"], "source_id": [1.0], "email": ["a@x.org"]}),
            keys=["email"],
        )
    with pytest.raises(ValueError, match="kind of key"):
        link_identities(small_records(), keys={"email": "fuzzy"})


def test_callable_keys_normalise_as_told():
    records = small_records().assign(card=["A-1", "a1", None, None, "B-2"])
    identities = link_identities(
        records, keys={"card": lambda s: s.str.replace("-", "").str.upper()}
    )
    assert identities.customer_of("web", "w1") == identities.customer_of("store", "s9")


# ---- resolve ----------------------------------------------------------------------------------


def logs_of(frame: pd.DataFrame, kind: str):
    if kind == "pandas":
        return frame
    if kind == "polars":
        return pl.from_pandas(frame)
    if kind == "polars-lazy":
        return pl.from_pandas(frame).lazy()
    if kind == "duckdb":
        return duckdb.from_arrow(pl.from_pandas(frame).to_arrow())
    raise AssertionError(kind)


def as_pandas(native) -> pd.DataFrame:
    if isinstance(native, pd.DataFrame):
        return native
    if isinstance(native, pl.LazyFrame):
        return native.collect().to_pandas()
    if isinstance(native, pl.DataFrame):
        return native.to_pandas()
    return native.df()


@pytest.mark.parametrize("kind", ["pandas", "polars", "polars-lazy", "duckdb"])
def test_resolve_rewrites_ids_on_every_engine(kind):
    identities = link_identities(small_records(), keys=["email", "phone"])
    tx = pd.DataFrame(
        {
            "user": ["w1", "s9", "a3", "w2", "zz"],
            "source": ["web", "store", "app", "web", "web"],
            "timestamp": pd.to_datetime(
                ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
            ),
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    with pytest.warns(DataWarning, match="1 row"):
        out = resolve(logs_of(tx, kind), identities, columns=Columns(customer_id="user"))
    got = as_pandas(out).sort_values("timestamp")
    assert list(got.columns) == list(tx.columns)
    assert got["user"].tolist() == ["app:a3", "app:a3", "app:a3", "web:w2", "web:zz"]
    assert got["amount"].tolist() == tx["amount"].tolist()


def test_resolve_with_one_source_keeps_order_and_the_callers_frame():
    identities = link_identities(small_records(), keys=["email", "phone"])
    events = pd.DataFrame({"customer_id": ["s4", "s9", "s9"], "event_type": ["visit"] * 3})
    snapshot = events.copy()
    out = resolve(events, identities, source="store", keep_source_id="store_id")
    pd.testing.assert_frame_equal(events, snapshot)
    assert out["customer_id"].tolist() == ["store:s4", "app:a3", "app:a3"]
    assert out["store_id"].tolist() == ["s4", "s9", "s9"]


def test_resolve_refuses_or_drops_unknown_ids_when_told():
    identities = link_identities(small_records(), keys=["email", "phone"])
    tx = pd.DataFrame({"customer_id": ["w1", "ghost"], "source": ["web", "web"]})
    with pytest.raises(DataValidationError, match="web:ghost"):
        resolve(tx, identities, unknown="error")
    with pytest.warns(DataWarning, match="left out"):
        dropped = resolve(tx, identities, unknown="drop")
    assert dropped["customer_id"].tolist() == ["app:a3"]
    with pytest.raises(DataValidationError, match="pass source='web'"):
        resolve(tx.drop(columns="source"), identities)
    with pytest.raises(DataValidationError, match="more than once"):
        resolve(tx, pd.concat([identities.mapping, identities.mapping]))


def test_rfm_of_a_customer_split_across_two_sources_equals_one_id_after_resolve():
    records = pd.DataFrame(
        {
            "source": ["web", "store"],
            "source_id": ["w1", "s1"],
            "phone": ["010-1111-2222", "01011112222"],
        }
    )
    tx = pd.DataFrame(
        {
            "customer_id": ["w1", "s1", "w1", "s1"],
            "source": ["web", "store", "web", "store"],
            "timestamp": pd.to_datetime(["2024-01-02", "2024-02-10", "2024-03-05", "2024-05-20"]),
            "amount": [20.0, 35.0, 15.0, 50.0],
        }
    )
    resolved = rfm_summary(
        resolve(tx, link_identities(records, keys=["phone"])), cutoff="2024-06-30"
    )
    one_id = rfm_summary(tx.assign(customer_id="store:s1"), cutoff="2024-06-30")
    pd.testing.assert_frame_equal(resolved, one_id)
    fragments = rfm_summary(tx, cutoff="2024-06-30")
    assert fragments["frequency"].tolist() == [1.0, 1.0]
    assert resolved["frequency"].tolist() == [3.0]


def test_rfm_of_the_split_shop_equals_the_shops_after_linking_and_resolve():
    sim = simulate(150, random_state=5)
    shop = split_identities(sim, typo_rate=0.0, random_state=5)
    assert shop.transactions["customer_id"].nunique() > sim.transactions["customer_id"].nunique()
    identities = link_identities(shop.records, keys=EXACT_KEYS)
    linked = identities.mapping.merge(
        shop.truth, on=["source", "source_id"], suffixes=("", "_true")
    )
    names = linked.groupby("customer_id_true")["customer_id"].unique()
    assert (names.str.len() == 1).all()  # every customer's records found each other
    groups = linked.groupby("customer_id")["customer_id_true"].nunique()
    assert (groups == 1).all()  # and no two customers were merged
    renamed = sim.transactions.assign(customer_id=sim.transactions["customer_id"].map(names.str[0]))
    pd.testing.assert_frame_equal(
        rfm_summary(resolve(shop.transactions, identities), cutoff="2025-06-30"),
        rfm_summary(renamed, cutoff="2025-06-30"),
    )


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["KR", "US", "GB", "DE", "JP"]),
    st.sampled_from(["", "0", "+82", "0082", "+1", "+44", "08", "081", "0505", "01", "1"]),
    st.text("0123456789", min_size=0, max_size=12),
    st.sampled_from(["", " ", "-", "."]),
)
def test_the_vectorised_phone_path_agrees_with_phonenumbers(region, head, digits, sep):
    import phonenumbers

    raw = head + sep + digits
    expected = None
    # phonenumbers with the region's international prefix, then with "00" read as one
    for candidate in [raw, "+" + (head + digits)[2:]] if head.startswith("00") else [raw]:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            expected = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            break
    got = normalise_phones([raw], region).iloc[0]
    assert (None if pd.isna(got) else got) == expected
