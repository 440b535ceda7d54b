"""Public data shipped with vipml."""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["load_cdnow", "load_donations", "load_retention_cohorts"]

_MASTER = "CDNOW_master.txt.gz"
_SAMPLE = "CDNOW_sample.txt.gz"
_DONATIONS = "donations.csv"
_RETENTION = "retention_cohorts.csv"


def load_cdnow(sample: bool = False) -> pd.DataFrame:
    """Load the CDNOW purchase log, the standard benchmark of buy-till-you-die models.

    Every purchase of compact discs made on the CDNOW web site from 1997-01-01 to 1998-06-30 by
    the cohort of customers whose first purchase was in the first quarter of 1997 (Fader,
    Hardie & Lee 2005). The master log has 69,659 purchases by 23,570 customers; the sample,
    used for the published parameter estimates, 6,919 purchases by 2,357 of them. The copies
    come from the MIT-licensed ``lifetimes`` 0.11.3 package, originally published by Bruce
    Hardie (brucehardie.com) for research and teaching; vipml ships them gzip-compressed
    (about 400 kB and 50 kB) inside the package and reads them with ``importlib.resources``.

    Parameters
    ----------
    sample : bool, default False
        Return the 1/10 sample (2,357 customers) instead of the full log.

    Returns
    -------
    pandas.DataFrame
        One row per purchase record, ordered as in the source file: ``customer_id`` (int, the
        master id, the same in both logs), ``timestamp`` (day of purchase), ``amount`` (dollars)
        and ``quantity`` (number of CDs). A customer can have several rows on one day.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting Your Customers" the Easy Way:
    An Alternative to the Pareto/NBD Model. Marketing Science 24(2), 275-284.

    Examples
    --------
    >>> tx = load_cdnow(sample=True)
    >>> tx.shape, tx["customer_id"].nunique()
    ((6919, 4), 2357)
    >>> tx.head(2)
       customer_id  timestamp  amount  quantity
    0            4 1997-01-01   29.33         2
    1            4 1997-01-18   29.73         2
    """
    source = resources.files("vipml.data").joinpath("_files", _SAMPLE if sample else _MASTER)
    names = (
        ["customer_id", "sample_id", "date", "quantity", "amount"]
        if sample
        else ["customer_id", "date", "quantity", "amount"]
    )
    with source.open("rb") as handle:
        raw = pd.read_csv(
            handle,
            compression="gzip",
            sep=r"\s+",
            header=None,
            skiprows=0 if sample else 1,
            names=names,
            dtype={"customer_id": "int64", "date": str, "quantity": "int64", "amount": "float64"},
        )
    return pd.DataFrame(
        {
            "customer_id": raw["customer_id"],
            "timestamp": pd.to_datetime(raw["date"], format="%Y%m%d").astype("datetime64[us]"),
            "amount": raw["amount"],
            "quantity": raw["quantity"],
        }
    )


def load_donations() -> pd.DataFrame:
    """Load the donation data of Fader, Hardie & Shang (2010): the standard BG/BB benchmark.

    The 11,104 people who first donated to a US non-profit organisation in 1995, with whether
    they donated again in each of the six yearly fund-raising drives 1996-2001, summarised
    into 22 distinct histories (the recency/frequency table printed in the paper). The copy
    comes from the MIT-licensed ``lifetimes`` 0.11.3 package (``datasets/donations.csv``; the
    same table is in PyMC-Marketing's tests), with the column ``periods`` named ``n_periods``
    and ``weights`` named ``customers``.

    Returns
    -------
    pandas.DataFrame
        22 rows indexed by ``history``: ``frequency`` (repeat donation years), ``recency`` (the
        year of the last one, 1996 = 1), ``n_periods`` (6) and ``customers`` (the number of
        donors with that history). Fit :class:`vipml.ltv.BetaGeoBetaBinom` with
        ``weights=data["customers"]``.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. & Shang, J. (2010). "Customer-Base Analysis in a
    Discrete-Time Noncontractual Setting". Marketing Science 29(6), 1086-1108, table 1 (data)
    and table 2 (estimates: alpha 1.204, beta 0.750, gamma 0.657, delta 2.783, LL -33,225.6).

    Examples
    --------
    >>> data = load_donations()
    >>> len(data), int(data["customers"].sum())
    (22, 11104)
    """
    source = resources.files("vipml.data").joinpath("_files", _DONATIONS)
    with source.open("rb") as handle:
        table = pd.read_csv(handle, dtype="float64")
    table.index = pd.RangeIndex(len(table), name="history")
    return table


def load_retention_cohorts() -> pd.DataFrame:
    """Load the two retention cohorts of Fader & Hardie (2007), the standard sBG benchmark.

    For two cohorts of 1,000 customers of a subscription business who joined in the same year
    ("regular" and "high end" plans), the number still subscribed at the start of each of the
    following 12 years, as printed in table 1 of the paper (from Berry & Linoff 2004, "Data
    Mining Techniques", 2nd ed.). The paper fits the sBG model on years 0-7 and projects
    years 8-12.

    Returns
    -------
    pandas.DataFrame
        13 rows indexed by ``period`` (years since joining, 0-12), columns ``regular`` and
        ``high_end`` (customers still active). Turn a column into a contracts table with
        :func:`vipml.ltv.contracts_from_survival`.

    References
    ----------
    Fader, P. S. & Hardie, B. G. S. (2007). "How to Project Customer Retention". Journal of
    Interactive Marketing 21(1), 76-90, table 1 (data); estimates on years 0-7: regular
    alpha 0.704, beta 1.182; high end alpha 0.668, beta 3.806.

    Examples
    --------
    >>> load_retention_cohorts().loc[[0, 7, 12]]
            regular  high_end
    period
    0          1000      1000
    7           241       491
    12          173       394
    """
    source = resources.files("vipml.data").joinpath("_files", _RETENTION)
    with source.open("rb") as handle:
        return pd.read_csv(handle, index_col="period", dtype="int64")
