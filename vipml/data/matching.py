"""Probabilistic record matching on names, dates and addresses through Splink (``vipml[link]``)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["FuzzyMatch"]


@dataclass(frozen=True)
class FuzzyMatch:
    """Probabilistic links on names, dates and addresses (Fellegi-Sunter, through Splink).

    Splink [1]_ (``pip install "vipml[link]"``, DuckDB back end) compares the records that share
    a blocking value, estimates how much agreement on each column says about a match (u by
    random sampling, m by expectation maximisation, unsupervised) and scores every pair. Pairs
    whose match probability is at least ``threshold`` become links, added to the exact links
    before the connected components are taken.

    Parameters
    ----------
    names : sequence of str
        Name columns (Jaro-Winkler and Damerau-Levenshtein levels).
    dates : sequence of str
        Date columns, dates of birth for instance (ISO strings or dates; levels for exact,
        one-character typos, and within a month, a year, ten years).
    addresses : sequence of str
        Free-text columns such as street and suburb (Levenshtein distance 1, 2 and exact).
    exact : sequence of str
        Columns compared for equality only (postcode, street number, gender, ...).
    blocking : sequence of str or of sequences of str, optional
        Columns (or column tuples) whose equal values make two records a candidate pair.
        Default: each name and date column on its own. Records that share no blocking value
        are never compared: choose blocks a true match rarely misses.
    threshold : float, default 0.99
        Match probability from which a pair is linked. At 0.99 the links on FEBRL4 (see
        ``docs/linking.md``) have precision 1.0 and recall 0.999; lowering it trades
        precision for recall.
    prior : float, default 1e-4
        Starting probability that two random records match (refined from the
        ``names`` x ``dates`` block when both are given).
    max_pairs : float, default 2e6
        Random pairs used to estimate the u probabilities.
    random_state : int, default 0
        Seed of the random pairs.

    References
    ----------
    .. [1] Linacre, R. et al. (2022). Splink: Free software for probabilistic record linkage
       at scale. International Journal of Population Data Science 7(3).

    Examples
    --------
    >>> FuzzyMatch(names=["first_name", "surname"], dates=["birth_date"]).threshold
    0.99
    """

    names: Sequence[str] = ()
    dates: Sequence[str] = ()
    addresses: Sequence[str] = ()
    exact: Sequence[str] = ()
    blocking: Sequence[str | Sequence[str]] = ()
    threshold: float = 0.99
    prior: float = 1e-4
    max_pairs: float = 2e6
    random_state: int = 0

    def __post_init__(self) -> None:
        for name in ("names", "dates", "addresses", "exact", "blocking"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise TypeError(f"FuzzyMatch.{name} must be a list of column names, not a str.")
            object.__setattr__(self, name, tuple(value))
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold!r}.")
        if not 0.0 < self.prior < 1.0:
            raise ValueError(f"prior must be in (0, 1), got {self.prior!r}.")
        if not self.columns:
            raise ValueError("FuzzyMatch needs at least one column to compare.")

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column compared."""
        return (*self.names, *self.dates, *self.addresses, *self.exact)

    def blocks(self) -> tuple[tuple[str, ...], ...]:
        """Blocking rules as column tuples."""
        rules = self.blocking or (*self.names, *self.dates) or self.columns[:1]
        return tuple((rule,) if isinstance(rule, str) else tuple(rule) for rule in rules)

    def pairs(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Linked pairs: node numbers ``left``, ``right`` and their ``match_probability``."""
        try:
            import splink.comparison_library as cl
            from splink import DuckDBAPI, Linker, SettingsCreator, block_on
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                'Probabilistic matching needs Splink: pip install "vipml[link]".'
            ) from exc
        comparisons = [cl.NameComparison(c) for c in self.names]
        comparisons += [
            cl.DateOfBirthComparison(c, input_is_string=True, datetime_format="%Y-%m-%d")
            for c in self.dates
        ]
        comparisons += [cl.LevenshteinAtThresholds(c, [1, 2]) for c in self.addresses]
        comparisons += [cl.ExactMatch(c) for c in self.exact]
        blocks = [block_on(*rule) for rule in self.blocks()]
        settings = SettingsCreator(
            link_type="dedupe_only",
            unique_id_column_name="_node",
            comparisons=comparisons,
            blocking_rules_to_generate_predictions=blocks,
            probability_two_random_records_match=self.prior,
            retain_matching_columns=False,
        )
        db = DuckDBAPI()
        table = db.register(frame[["_node", *self.columns]])
        linker = Linker(table, settings, log_level=logging.WARNING)
        with warnings.catch_warnings():
            # Splink warns about levels never seen in training; the defaults it then uses are
            # documented, and vipml reports the links it makes.
            warnings.simplefilter("ignore")
            if self.names and self.dates:
                linker.training.estimate_probability_two_random_records_match(
                    [block_on(*self.names, *self.dates)], recall=0.7
                )
            linker.training.estimate_u_using_random_sampling(
                max_pairs=self.max_pairs, seed=self.random_state
            )
            for rule in self.blocks():
                linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule))
            predicted = linker.inference.predict(threshold_match_probability=self.threshold)
        pairs = predicted.as_pandas_dataframe()
        return pd.DataFrame(
            {
                "left": pairs["_node_l"].to_numpy(dtype=np.int64),
                "right": pairs["_node_r"].to_numpy(dtype=np.int64),
                "match_probability": pairs["match_probability"].to_numpy(dtype=np.float64),
            }
        )
