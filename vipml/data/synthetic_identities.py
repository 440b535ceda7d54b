"""Simulated identities: people recorded by several sources, with typos, and their truth.

Additions to the shop simulator (:mod:`vipml.data.synthetic`) that leave :func:`simulate`'s
output untouched:

- :func:`simulate_identities` draws people (names, dates of birth, addresses, phones, e-mails)
  and the records several sources hold of them, with the inconsistencies real systems have:
  case and blanks, phone notations, missing fields and typos. Linking is scored against the
  known person of every record.
- :func:`split_identities` gives a simulated shop's customers one id per source (web account,
  loyalty card, app, call centre, e-mail list), rewrites its logs with those ids and returns the
  records to link them.
- :func:`channel_sentiment` makes the sentiment of events depend on their channel.

Everything is vectorised over people and records (polars string expressions for the typos).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from vipml.data.synthetic import Simulation

__all__ = [
    "SOURCE_OF_CHANNEL",
    "IdentityRecords",
    "SplitShop",
    "channel_sentiment",
    "simulate_identities",
    "split_identities",
]

#: Source that records a customer who uses a channel (``split_identities``).
SOURCE_OF_CHANNEL: dict[str, str] = {
    "web": "web",
    "app": "app",
    "store": "loyalty",
    "call_center": "call_center",
    "email": "crm",
}

_GIVEN = [
    "minjun",
    "seoyeon",
    "jiho",
    "haeun",
    "doyun",
    "jiwoo",
    "seojun",
    "seoah",
    "yejun",
    "hayoon",
    "siwoo",
    "jia",
    "juwon",
    "suah",
    "hajun",
    "jimin",
    "jihun",
    "yuna",
    "junseo",
    "chaewon",
    "eunwoo",
    "dayeon",
    "geonwoo",
    "soyul",
    "woojin",
    "jiyu",
    "hyunwoo",
    "yerin",
    "sunwoo",
    "eunseo",
    "yeonwoo",
    "sua",
    "jaewon",
    "minseo",
    "donghyun",
    "subin",
    "taeyang",
    "nayeon",
    "james",
    "mary",
    "john",
    "patricia",
    "robert",
    "jennifer",
    "michael",
    "linda",
    "david",
    "elizabeth",
    "william",
    "barbara",
    "richard",
    "susan",
    "joseph",
    "jessica",
    "thomas",
    "sarah",
    "charles",
    "karen",
    "daniel",
    "lisa",
    "matthew",
    "nancy",
    "anthony",
    "betty",
    "mark",
    "sandra",
    "paul",
    "ashley",
    "steven",
    "emily",
    "andrew",
    "donna",
    "joshua",
    "michelle",
    "kevin",
    "amanda",
    "brian",
    "melissa",
    "george",
    "deborah",
    "timothy",
    "stephanie",
    "ronald",
    "rebecca",
    "jason",
    "laura",
    "edward",
    "sharon",
    "jeffrey",
    "cynthia",
]
_SURNAMES = [
    "kim",
    "lee",
    "park",
    "choi",
    "jung",
    "kang",
    "cho",
    "yoon",
    "jang",
    "lim",
    "han",
    "oh",
    "seo",
    "shin",
    "kwon",
    "hwang",
    "ahn",
    "song",
    "yoo",
    "hong",
    "jeon",
    "ko",
    "moon",
    "yang",
    "son",
    "bae",
    "baek",
    "heo",
    "nam",
    "sim",
    "noh",
    "ha",
    "kwak",
    "sung",
    "cha",
    "joo",
    "woo",
    "koo",
    "min",
    "ryu",
    "na",
    "jin",
    "ji",
    "eom",
    "chae",
    "won",
    "cheon",
    "bang",
    "kong",
    "hyun",
    "ham",
    "byun",
    "yeom",
    "yeo",
    "chu",
    "do",
    "so",
    "seok",
    "sun",
    "seol",
    "ma",
    "gil",
    "yeon",
    "wi",
    "pyo",
    "myung",
    "gi",
    "ban",
    "ra",
    "wang",
    "geum",
    "ok",
    "yook",
    "in",
    "maeng",
    "je",
    "mo",
    "tak",
    "bin",
    "yong",
    "ye",
    "gook",
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "gonzalez",
    "wilson",
    "anderson",
    "thomas",
    "taylor",
    "moore",
    "jackson",
    "martin",
]
_STREETS = [
    "sejong-daero",
    "teheran-ro",
    "gangnam-daero",
    "olympic-ro",
    "hangang-daero",
    "jongno",
    "yulgok-ro",
    "dosan-daero",
    "apgujeong-ro",
    "samseong-ro",
    "yeongdong-daero",
    "bongeunsa-ro",
    "nonhyeon-ro",
    "hakdong-ro",
    "seolleung-ro",
    "eonju-ro",
    "gwanghwamun-ro",
    "myeongdong-gil",
    "insadong-gil",
    "itaewon-ro",
]
_DISTRICTS = [
    "jongno-gu",
    "jung-gu",
    "yongsan-gu",
    "seongdong-gu",
    "gwangjin-gu",
    "mapo-gu",
    "seodaemun-gu",
    "gangnam-gu",
    "seocho-gu",
    "songpa-gu",
    "gangdong-gu",
    "yeongdeungpo-gu",
    "guro-gu",
    "nowon-gu",
    "eunpyeong-gu",
]
_DOMAINS = ("naver.com", "gmail.com", "daum.net", "kakao.com", "hanmail.net", "nate.com")
_LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))
#: Which fields each source asks for (probability that a record has the field).
_SOURCE_FIELDS: dict[str, dict[str, float]] = {
    "web": {"email": 1.0, "phone": 0.8, "name": 1.0, "birth_date": 0.9, "address": 0.9},
    "app": {"email": 0.95, "phone": 0.95, "name": 1.0, "birth_date": 0.9, "address": 0.8},
    "loyalty": {"email": 0.6, "phone": 1.0, "name": 1.0, "birth_date": 1.0, "address": 0.9},
    "call_center": {"email": 0.5, "phone": 1.0, "name": 1.0, "birth_date": 0.9, "address": 0.8},
    "crm": {"email": 1.0, "phone": 0.5, "name": 0.95, "birth_date": 0.8, "address": 0.7},
}


@dataclass(frozen=True, eq=False)
class IdentityRecords:
    """Result of :func:`simulate_identities`.

    Attributes
    ----------
    records : pandas.DataFrame
        One row per source record: ``source``, ``source_id``, ``first_name``, ``surname``,
        ``birth_date`` (ISO string), ``email``, ``phone``, ``street``, ``district``; missing
        fields are None.
    truth : pandas.Series
        The person of every record, indexed like ``records``.
    """

    records: pd.DataFrame
    truth: pd.Series

    def true_pairs(self) -> int:
        """Number of record pairs that belong to one person."""
        sizes = self.truth.value_counts().to_numpy(dtype=np.int64)
        return int((sizes * (sizes - 1) // 2).sum())


def simulate_identities(
    n_people: int = 1000,
    *,
    sources: tuple[str, ...] = ("web", "app", "loyalty", "call_center", "crm"),
    sources_per_person: float = 2.0,
    typo_rate: float = 0.05,
    random_state: int | np.random.Generator | None = 0,
) -> IdentityRecords:
    """Draw people and the records several sources hold of them, with realistic noise.

    Each person has a name, a date of birth (1950-2005), an address in Seoul, a mobile number
    (``010`` and eight digits, distinct per person) and an e-mail address (distinct per
    person). Each person is known to 1 + Poisson(``sources_per_person`` - 1) sources (at most
    all of them), drawn without replacement. A source's record holds each field with the
    source's own probability (a loyalty card always has the phone, the web account always the
    e-mail, ...). Noise, as real systems have it: e-mails in mixed case, with blanks around them
    in 10% of records; phones in one of four notations (``010-1234-5678``, ``01012345678``,
    ``+82 10 1234 5678``, ``010 1234 5678``); and with probability ``typo_rate`` per field, a
    typo (a character deleted, replaced or two swapped) in the e-mail, the phone's digits, the
    names and the street.

    Parameters
    ----------
    n_people : int, default 1000
        Number of people.
    sources : tuple of str
        The sources, among ``"web"``, ``"app"``, ``"loyalty"``, ``"call_center"`` and
        ``"crm"``.
    sources_per_person : float, default 2.0
        Mean number of sources that know a person (at least 1).
    typo_rate : float, default 0.05
        Probability of a typo in each field of a record.
    random_state : int, numpy.random.Generator or None, default 0
        Seed; the same arguments give identical records.

    Returns
    -------
    IdentityRecords

    Examples
    --------
    >>> people = simulate_identities(200, random_state=1)
    >>> people.records.columns.tolist()
    ['source', 'source_id', 'first_name', 'surname', 'birth_date', 'email', 'phone', 'street', 'district']
    >>> int(people.truth.nunique())
    200
    """
    if n_people < 1:
        raise ValueError(f"n_people must be at least 1, got {n_people}.")
    unknown = sorted(set(sources) - set(_SOURCE_FIELDS))
    if unknown or not sources:
        raise ValueError(f"sources must be among {sorted(_SOURCE_FIELDS)}, got {unknown}.")
    if sources_per_person < 1:
        raise ValueError(f"sources_per_person must be at least 1, got {sources_per_person}.")
    if not 0.0 <= typo_rate < 1.0:
        raise ValueError(f"typo_rate must be in [0, 1), got {typo_rate}.")
    rng = np.random.default_rng(random_state)
    people = _draw_people(rng, n_people)
    # Which sources know each person: the first k of a random permutation of the sources.
    n_sources = len(sources)
    count = np.minimum(1 + rng.poisson(sources_per_person - 1.0, n_people), n_sources)
    ranks = np.argsort(rng.random((n_people, n_sources)), axis=1)
    person, slot = np.nonzero(ranks < count[:, None])
    source_code = slot
    return _records(rng, people, person, np.asarray(sources)[source_code], typo_rate)


@dataclass(frozen=True, eq=False)
class SplitShop:
    """Result of :func:`split_identities`.

    Attributes
    ----------
    transactions, events : pandas.DataFrame
        The shop's logs with ``customer_id`` replaced by the source's id and a ``source``
        column (the source of the row's channel).
    records : pandas.DataFrame
        The identity records of every (source, source id), as in :class:`IdentityRecords`.
    truth : pandas.DataFrame
        ``source``, ``source_id`` and the shop's ``customer_id`` they belong to.
    """

    transactions: pd.DataFrame
    events: pd.DataFrame
    records: pd.DataFrame
    truth: pd.DataFrame


def split_identities(
    sim: Simulation,
    *,
    typo_rate: float = 0.02,
    random_state: int | np.random.Generator | None = 0,
) -> SplitShop:
    """Give each customer of a simulated shop one id per source, as unlinked systems do.

    Every row's channel names its source (:data:`SOURCE_OF_CHANNEL`: a store purchase is
    recorded on the loyalty card, an e-mail event in the CRM); a customer gets a source id for
    each source among their rows (``"<source prefix><number>"``, numbered in a random order)
    and identity records drawn as in :func:`simulate_identities`. The shop's logs are not
    changed: new frames are returned.

    Parameters
    ----------
    sim : Simulation
        A result of :func:`vipml.data.simulate` with a ``channel`` column.
    typo_rate : float, default 0.02
        Probability of a typo in each field of a record.
    random_state : int, numpy.random.Generator or None, default 0
        Seed.

    Returns
    -------
    SplitShop

    Examples
    --------
    >>> from vipml.data import simulate
    >>> shop = split_identities(simulate(100, random_state=3), random_state=3)
    >>> sorted(shop.transactions["source"].unique())
    ['app', 'call_center', 'loyalty', 'web']
    >>> bool(shop.truth.groupby("customer_id").size().max() > 1)
    True
    """
    rng = np.random.default_rng(random_state)
    tx_source = sim.transactions["channel"].map(SOURCE_OF_CHANNEL)
    ev_source = (
        sim.events["channel"].map(SOURCE_OF_CHANNEL)
        if len(sim.events)
        else pd.Series([], dtype=object)
    )
    pairs = pd.concat(
        [
            pd.DataFrame({"customer_id": sim.transactions["customer_id"], "source": tx_source}),
            pd.DataFrame({"customer_id": sim.events["customer_id"], "source": ev_source}),
        ],
        ignore_index=True,
    ).drop_duplicates()
    pairs = pairs.sort_values(["source", "customer_id"], ignore_index=True)
    # Number each source's accounts in a random order, so ids say nothing about customers.
    shuffle = rng.permutation(len(pairs))
    pairs["_order"] = shuffle
    pairs["_number"] = pairs.groupby("source")["_order"].rank(method="first").astype(np.int64)
    prefix = pairs["source"].str[0].str.upper()
    pairs["source_id"] = prefix + pairs["_number"].astype(str).str.zfill(7)
    truth = pairs[["source", "source_id", "customer_id"]].reset_index(drop=True)

    customers = np.asarray(sim.truth.index)
    people = _draw_people(rng, customers.size)
    person = np.searchsorted(customers, truth["customer_id"].to_numpy())
    drawn = _records(rng, people, person, truth["source"].to_numpy(), typo_rate)
    records = drawn.records.assign(source_id=truth["source_id"].to_numpy())

    lookup = truth.set_index(["customer_id", "source"])["source_id"]

    def relabel(frame: pd.DataFrame, source: pd.Series) -> pd.DataFrame:
        ids = lookup.reindex(pd.MultiIndex.from_arrays([frame["customer_id"], source]))
        out = frame.copy()
        out["customer_id"] = ids.to_numpy()
        out.insert(1, "source", source.to_numpy())
        return out

    return SplitShop(
        transactions=relabel(sim.transactions, tx_source),
        events=relabel(sim.events, ev_source),
        records=records,
        truth=truth,
    )


def channel_sentiment(
    sim: Simulation,
    offsets: dict[str, float] | None = None,
    *,
    random_state: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """The shop's events with a sentiment that depends on the channel.

    Each event's value is shifted by its channel's offset and clipped to [-1, 1]; events
    without a value stay without. The default offsets make the call centre sour (-0.35: people
    call when something went wrong), e-mail tickets slightly negative (-0.1), the app slightly
    positive (+0.1) and the web and store neutral. A random 10% of customers are "inconsistent":
    their offsets are doubled, so consistency across channels varies between customers.

    Parameters
    ----------
    sim : Simulation
        A result of :func:`vipml.data.simulate`.
    offsets : dict of str to float, optional
        Offset per channel; channels not listed get 0.
    random_state : int, numpy.random.Generator or None, default 0
        Seed of the choice of inconsistent customers.

    Returns
    -------
    pandas.DataFrame
        A copy of ``sim.events`` with the new ``value``.

    Examples
    --------
    >>> from vipml.data import simulate
    >>> sim = simulate(300, random_state=2)
    >>> events = channel_sentiment(sim)
    >>> means = events.groupby("channel")["value"].mean()
    >>> bool(means["call_center"] < means["app"])
    True
    """
    offsets = (
        {"call_center": -0.35, "email": -0.1, "app": 0.1, "web": 0.0, "store": 0.0}
        if offsets is None
        else dict(offsets)
    )
    rng = np.random.default_rng(random_state)
    events = sim.events.copy()
    customers = np.asarray(sim.truth.index)
    inconsistent = customers[rng.random(customers.size) < 0.1]
    scale = np.where(events["customer_id"].isin(inconsistent).to_numpy(), 2.0, 1.0)
    shift = events["channel"].map(offsets).fillna(0.0).to_numpy(dtype=np.float64) * scale
    events["value"] = np.clip(events["value"].to_numpy(dtype=np.float64) + shift, -1.0, 1.0)
    return events


# ---- drawing --------------------------------------------------------------------------------


def _draw_people(rng: np.random.Generator, n: int) -> pl.DataFrame:
    """Clean attributes of ``n`` people; phones and e-mails are distinct per person."""
    first = np.asarray(_GIVEN)[rng.integers(0, len(_GIVEN), n)]
    last = np.asarray(_SURNAMES)[rng.integers(0, len(_SURNAMES), n)]
    birth = np.datetime64("1950-01-01") + rng.integers(0, 56 * 365, n).astype("timedelta64[D]")
    # Distinct eight-digit subscriber numbers and e-mail tags: a random injective map.
    subscriber = rng.choice(100_000_000, size=n, replace=False)
    tag = rng.choice(max(10 * n, 1000), size=n, replace=False)
    frame = pl.DataFrame(
        {
            "first_name": first,
            "surname": last,
            "birth_date": pd.to_datetime(birth).strftime("%Y-%m-%d").to_numpy(),
            "digits": pl.Series(subscriber).cast(pl.String).str.zfill(8),
            "tag": pl.Series(tag).cast(pl.String),
            "domain": np.asarray(_DOMAINS)[rng.integers(0, len(_DOMAINS), n)],
            "street": np.char.add(
                np.char.add(rng.integers(1, 400, n).astype(str), " "),
                np.asarray(_STREETS)[rng.integers(0, len(_STREETS), n)],
            ),
            "district": np.asarray(_DISTRICTS)[rng.integers(0, len(_DISTRICTS), n)],
        }
    )
    return frame.with_columns(
        email=pl.concat_str(
            [pl.col("first_name"), pl.lit("."), pl.col("surname"), pl.col("tag"), pl.lit("@")]
        )
        + pl.col("domain")
    )


def _records(
    rng: np.random.Generator,
    people: pl.DataFrame,
    person: np.ndarray,
    source: np.ndarray,
    typo_rate: float,
) -> IdentityRecords:
    n = person.size
    rows = people[person]
    fields = ("email", "phone", "name", "birth_date", "address")
    probability = {
        f: pd.Series(source).map({s: spec[f] for s, spec in _SOURCE_FIELDS.items()}).to_numpy()
        for f in fields
    }
    has = {f: rng.random(n) < probability[f] for f in fields}
    typo = {f: rng.random(n) < typo_rate for f in ("email", "phone", "first", "last", "street")}

    digits = _typo(rng, rows.get_column("digits"), typo["phone"], alphabet="0123456789")
    notation = rng.integers(0, 4, n)
    phone = pl.DataFrame({"d": digits, "k": notation}).select(
        pl.when(pl.col("k") == 0)
        .then(pl.concat_str([pl.lit("010-"), pl.col("d").str.slice(0, 4), pl.lit("-")]))
        .when(pl.col("k") == 1)
        .then(pl.lit("010"))
        .when(pl.col("k") == 2)
        .then(pl.concat_str([pl.lit("+82 10 "), pl.col("d").str.slice(0, 4), pl.lit(" ")]))
        .otherwise(pl.concat_str([pl.lit("010 "), pl.col("d").str.slice(0, 4), pl.lit(" ")]))
        + pl.when(pl.col("k") == 1).then(pl.col("d")).otherwise(pl.col("d").str.slice(4))
    )
    email = _typo(rng, rows.get_column("email"), typo["email"])
    shout = rng.random(n) < 0.2
    email = pl.select(pl.when(pl.Series(shout)).then(email.str.to_uppercase()).otherwise(email))
    email = email.to_series()
    padded = rng.random(n) < 0.1
    email = pl.select(
        pl.when(pl.Series(padded)).then(pl.lit(" ") + email + pl.lit(" ")).otherwise(email)
    ).to_series()

    def keep(values: Any, mask: np.ndarray) -> list[Any]:
        series = values if isinstance(values, pl.Series) else pl.Series(values)
        return pl.select(pl.when(pl.Series(mask)).then(series)).to_series().to_list()

    source_prefix = pd.Series(source).str[0].str.upper()
    number = pd.Series(rng.permutation(n) + 1).astype(str).str.zfill(7)
    records = pd.DataFrame(
        {
            "source": source.astype(str),
            "source_id": (source_prefix + number).to_numpy(),
            "first_name": keep(
                _typo(rng, rows.get_column("first_name"), typo["first"]), has["name"]
            ),
            "surname": keep(_typo(rng, rows.get_column("surname"), typo["last"]), has["name"]),
            "birth_date": keep(rows.get_column("birth_date"), has["birth_date"]),
            "email": keep(email, has["email"]),
            "phone": keep(phone.to_series(), has["phone"]),
            "street": keep(_typo(rng, rows.get_column("street"), typo["street"]), has["address"]),
            "district": keep(rows.get_column("district"), has["address"]),
        }
    )
    return IdentityRecords(records=records, truth=pd.Series(person, name="person"))


def _typo(
    rng: np.random.Generator, values: pl.Series, mask: np.ndarray, alphabet: str | None = None
) -> pl.Series:
    """One typo (delete, replace or swap a character) in the values where ``mask``."""
    n = values.len()
    length = values.str.len_chars().to_numpy()
    position = np.floor(rng.random(n) * np.maximum(length - 1, 1)).astype(np.int64)
    kind = rng.integers(0, 3, n)
    letters = np.asarray(list(alphabet)) if alphabet else _LETTERS
    replacement = letters[rng.integers(0, letters.size, n)]
    frame = pl.DataFrame(
        {"v": values, "p": position, "k": kind, "r": replacement, "m": mask & (length > 1)}
    )
    head = pl.col("v").str.slice(0, pl.col("p"))
    at = pl.col("v").str.slice(pl.col("p"), 1)
    nxt = pl.col("v").str.slice(pl.col("p") + 1, 1)
    tail1 = pl.col("v").str.slice(pl.col("p") + 1)
    tail2 = pl.col("v").str.slice(pl.col("p") + 2)
    changed = (
        pl.when(pl.col("k") == 0)
        .then(head + tail1)
        .when(pl.col("k") == 1)
        .then(head + pl.col("r") + tail1)
        .otherwise(head + nxt + at + tail2)
    )
    return frame.select(pl.when(pl.col("m")).then(changed).otherwise(pl.col("v"))).to_series()
