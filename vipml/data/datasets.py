"""Public data shipped with vipml."""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["load_cdnow"]

_MASTER = "CDNOW_master.txt.gz"
_SAMPLE = "CDNOW_sample.txt.gz"


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
