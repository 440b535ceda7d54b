"""Identifiers in one spelling: e-mail addresses, E.164 phone numbers and plain text keys.

What :func:`vipml.data.link_identities` compares. E-mails lose blanks and case; phone numbers
become E.164 with the ``phonenumbers`` library (numbers valid in the default region are checked
with that region's own patterns, vectorised; the rest are parsed one distinct string at a time);
other keys are text with blanks collapsed and case folded. Everything runs on polars Series.
"""

from __future__ import annotations

from re import escape as re_escape
from typing import Any

import pandas as pd
import polars as pl

__all__ = ["normalise_emails", "normalise_phones"]

_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def normalise_emails(values: Any) -> pd.Series:
    """E-mail addresses in one spelling: blanks removed, lower case; invalid ones missing.

    Parameters
    ----------
    values : array-like of str
        Raw addresses; missing values stay missing.

    Returns
    -------
    pandas.Series
        The normalised addresses (pandas string dtype); an address without exactly one ``@``
        and a dot in its domain becomes missing.

    Examples
    --------
    >>> normalise_emails([" Kim.Minji@Example.COM ", "kim minji@example.com", "no-at-sign", None])
    0    kim.minji@example.com
    1     kimminji@example.com
    2                     <NA>
    3                     <NA>
    dtype: string
    """
    return pd.Series(email_keys(as_string_series(values)).to_list(), dtype="string")


def email_keys(series: pl.Series) -> pl.Series:
    """:func:`normalise_emails` on a polars Series (null where invalid)."""
    cleaned = series.str.replace_all(r"\s+", "").str.to_lowercase()
    valid = cleaned.str.contains(_EMAIL).fill_null(False)
    return pl.select(pl.when(valid).then(cleaned)).to_series().alias("v")


def normalise_phones(values: Any, region: str = "KR") -> pd.Series:
    """Phone numbers in E.164 (``+821012345678``) with the ``phonenumbers`` library.

    Numbers written without a country code are read as numbers of ``region``. A value that is
    not a valid phone number (by the country's numbering plan) becomes missing.

    Parameters
    ----------
    values : array-like of str
        Raw numbers in any common notation (spaces, dashes, dots, parentheses, ``+``, or an
        international prefix: the one dialled from ``region``, such as ``001`` from Korea or
        ``011`` from North America, and else ``00``, the prefix ITU-T recommends).
    region : str, default "KR"
        ISO 3166 country code of numbers written in national form.

    Returns
    -------
    pandas.Series
        The E.164 numbers (pandas string dtype), missing where a value is no phone number.

    Raises
    ------
    ImportError
        When ``phonenumbers`` is not installed (``pip install "vipml[link]"``).

    Examples
    --------
    >>> normalise_phones(["010-1234-5678", "+82 10 1234 5678", "(02) 312-3456", "12"])
    0    +821012345678
    1    +821012345678
    2     +8223123456
    3             <NA>
    dtype: string
    """
    return pd.Series(phone_keys(as_string_series(values), region).to_list(), dtype="string")


def phone_keys(series: pl.Series, region: str) -> pl.Series:
    """:func:`normalise_phones` on a polars Series (null where invalid)."""
    phonenumbers = _import_phonenumbers()
    # Formatting characters go first (vectorised), so numbers written differently share one
    # spelling. Numbers that start with an international prefix go to the exact parser.
    compact = series.str.replace_all(r"[\s\-\.\(\)/]", "")
    fast = _phones_of_region(compact, region, phonenumbers)
    # What the region's rules do not settle (foreign numbers, carrier codes, invalid strings)
    # goes through phonenumbers itself, one parse per distinct string.
    rest = compact.filter(fast.is_null() & compact.is_not_null()).unique(maintain_order=True)
    # one parse per distinct leftover: phonenumbers is not vectorised
    parsed = [exact_phone_key(raw, region) for raw in rest.to_list()]
    lookup = pl.DataFrame(
        {"v": rest, "e164": pl.Series(parsed, dtype=pl.String)},
        schema={"v": pl.String, "e164": pl.String},
    )
    slow = compact.to_frame("v").join(lookup, on="v", how="left", maintain_order="left")
    return fast.fill_null(slow.get_column("e164")).alias("v")


def exact_phone_key(raw: str, region: str) -> str | None:
    """E.164 of one compact number by ``phonenumbers`` itself, or None when it is no number.

    The region's own international prefix is tried first (Korea's ``008`` is a carrier's
    prefix, so ``0082...`` dialled in Korea is no +82 number); a number still invalid that
    starts with ``00`` is then read with ``00`` as the international prefix, the way it is
    written across most of the world (``0082-10-1234-5678`` is ``+821012345678``).

    Examples
    --------
    >>> exact_phone_key("00821012345678", "KR"), exact_phone_key("001821012345678", "KR")
    ('+821012345678', '+821012345678')
    """
    candidates = [raw, "+" + raw[2:]] if raw.startswith("00") else [raw]
    phonenumbers = _import_phonenumbers()
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def _phones_of_region(compact: pl.Series, region: str, phonenumbers: Any) -> pl.Series:
    """E.164 of the numbers valid in ``region``, vectorised with the region's own patterns.

    A number is valid when its national significant number matches the region's general
    pattern and one of its type patterns (with their possible lengths), as
    ``phonenumbers.is_valid_number`` decides. Numbers whose national prefix could hide a
    carrier code, and anything not valid here, are left null for the exact parser.
    """
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.upper(), None)
    empty = pl.Series("v", [None] * compact.len(), dtype=pl.String)
    if metadata is None:
        return empty
    code = str(metadata.country_code)
    prefix = metadata.national_prefix or ""
    parsing = metadata.national_prefix_for_parsing or (re_escape(prefix) if prefix else None)
    frame = compact.to_frame("v")
    national = (
        pl.when(pl.col("v").str.starts_with("+" + code))
        .then(pl.col("v").str.slice(len(code) + 1))
        .when(pl.lit(bool(prefix)) & pl.col("v").str.starts_with(prefix or "\x00"))
        .then(pl.col("v").str.slice(len(prefix)))
        .when(~pl.col("v").str.starts_with("+"))
        .then(pl.col("v"))
    )
    frame = frame.with_columns(n=national)
    safe = pl.col("n").str.contains(r"^[1-9]\d{1,16}$").fill_null(False)
    if prefix and parsing:
        # The prefix must be exactly the national prefix, not a longer carrier-code match.
        stripped = pl.col("v").str.extract(f"^({parsing})", 1).str.len_chars()
        national_form = ~pl.col("v").str.starts_with("+")
        safe = safe & (~national_form | (stripped == len(prefix)).fill_null(False))
    if metadata.leading_digits or metadata.national_prefix_transform_rule:
        return empty  # regions whose numbers need rewriting: leave them to the parser
    length = pl.col("n").str.len_chars()

    def matches(desc: Any) -> pl.Expr:
        if desc is None or desc.national_number_pattern is None:
            return pl.lit(False)
        test = pl.col("n").str.contains(f"^(?:{desc.national_number_pattern})$")
        lengths = [n for n in desc.possible_length if n > 0]
        if desc.possible_length:
            test = length.is_in(lengths) & test
        return test.fill_null(False)

    types = [
        metadata.premium_rate,
        metadata.toll_free,
        metadata.shared_cost,
        metadata.voip,
        metadata.personal_number,
        metadata.pager,
        metadata.uan,
        metadata.voicemail,
        metadata.fixed_line,
        metadata.mobile,
    ]
    valid = safe & matches(metadata.general_desc) & pl.any_horizontal(*map(matches, types))
    out = frame.select(pl.when(valid).then(pl.lit("+" + code) + pl.col("n")).alias("v"))
    return out.to_series()


def text_keys(values: pl.Series) -> pl.Series:
    """Text identifiers: blanks collapsed and trimmed, case folded; empty means missing."""
    text = values.cast(pl.String, strict=False)
    text = text.str.replace_all(r"\s+", " ").str.strip_chars().str.to_lowercase()
    return pl.select(pl.when(text.str.len_chars() > 0).then(text)).to_series()


def _import_phonenumbers() -> Any:
    try:
        import phonenumbers
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Normalising phone numbers needs the 'phonenumbers' package: "
            'pip install "vipml[link]" (or pip install phonenumbers).'
        ) from exc
    return phonenumbers


def as_string_series(values: Any) -> pl.Series:
    """Strings as a polars Series; pandas and numpy missing values become null."""
    if isinstance(values, pl.Series):
        return values.cast(pl.String, strict=False).alias("v")
    if isinstance(values, pd.Series):
        values = values.astype(object).where(values.notna(), None).tolist()
    else:
        values = [None if (isinstance(v, float) and v != v) or v is pd.NA else v for v in values]
    return pl.Series("v", values, dtype=pl.String, strict=False)
