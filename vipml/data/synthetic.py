"""Seeded simulator of a shop whose ground truth is known.

:func:`simulate` draws customers from the BG/NBD purchase process (Fader, Hardie & Lee 2005)
with Gamma-Gamma spend (Fader & Hardie 2013), adds channels, categories, quantities, returns and
an engagement event log whose intensity fades and whose sentiment sours before a customer drops
out, and returns the logs together with every customer's latent parameters. Models and feature
builders are checked against it: a BG/NBD/Gamma-Gamma fit should recover ``purchase_params`` and
``spend_params``, a churn model should find the fading engagement, a segmentation the latent
types.

Everything is vectorised over customers and rows; the only Python loop is over the fortnightly
email campaigns (about fifty for two years), never over customers or transactions.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "CAMPAIGN_TRUTH_COLUMNS",
    "CATEGORIES",
    "DEFAULT_CAMPAIGN_EFFECTS",
    "DEFAULT_PURCHASE_PARAMS",
    "DEFAULT_SPEND_PARAMS",
    "EVENT_CHANNELS",
    "EVENT_TYPES",
    "MIXTURE_TYPES",
    "TRANSACTION_CHANNELS",
    "CampaignSimulation",
    "Simulation",
    "simulate",
    "simulate_campaign",
]

_DAY_S = 86_400
_WEEK_S = 7 * _DAY_S

#: BG/NBD parameters of the default population, per **week** (converted to ``time_unit``):
#: λ ~ Gamma(shape r, rate alpha), p ~ Beta(a, b). CDNOW's fit is r=0.243, alpha=4.414,
#: a=0.793, b=2.426; this shop is about three times as active.
DEFAULT_PURCHASE_PARAMS: dict[str, float] = {"r": 0.75, "alpha": 4.0, "a": 0.8, "b": 2.5}
#: Gamma-Gamma parameters of the default population: ν ~ Gamma(shape q, rate v) and each
#: amount z ~ Gamma(shape p, rate ν); mean spend p/ν, on average p·v/(q-1) = 30.
DEFAULT_SPEND_PARAMS: dict[str, float] = {"p": 6.0, "q": 4.0, "v": 15.0}
#: Engagement propensity of the default population: Gamma(shape, rate), mean 1.
_DEFAULT_ENGAGEMENT: dict[str, float] = {"shape": 2.0, "rate": 2.0}

#: Latent types of ``population="mixture"``. Purchase parameters per **week** (converted to
#: ``time_unit``), spend in currency units, engagement propensity Gamma(shape, rate).
#: Means: vip λ=1.0/week, p=0.03, spend 120, engagement 2; regular λ=0.25, p=0.09, spend 45,
#: engagement 1; bargain λ=0.6, p=0.06, spend 12, engagement 1.2; one_time λ=0.05, p=0.9,
#: spend 30, engagement 0.5 (BG/NBD customers can only drop out after a repeat purchase, so a
#: one_time customer usually buys once more, late, and is then gone).
MIXTURE_TYPES: dict[str, dict[str, Any]] = {
    "vip": {
        "share": 0.05,
        "purchase": {"r": 20.0, "alpha": 20.0, "a": 2.0, "b": 60.0},
        "spend": {"p": 6.0, "q": 20.0, "v": 400.0},
        "engagement": {"shape": 8.0, "rate": 4.0},
    },
    "regular": {
        "share": 0.30,
        "purchase": {"r": 10.0, "alpha": 40.0, "a": 2.0, "b": 20.0},
        "spend": {"p": 6.0, "q": 20.0, "v": 150.0},
        "engagement": {"shape": 4.0, "rate": 4.0},
    },
    "bargain": {
        "share": 0.25,
        "purchase": {"r": 10.0, "alpha": 50.0 / 3.0, "a": 2.0, "b": 30.0},
        "spend": {"p": 6.0, "q": 20.0, "v": 40.0},
        "engagement": {"shape": 6.0, "rate": 5.0},
    },
    "one_time": {
        "share": 0.40,
        "purchase": {"r": 4.0, "alpha": 80.0, "a": 18.0, "b": 2.0},
        "spend": {"p": 6.0, "q": 20.0, "v": 100.0},
        "engagement": {"shape": 2.0, "rate": 4.0},
    },
}

TRANSACTION_CHANNELS: tuple[str, ...] = ("web", "app", "store", "call_center")
EVENT_CHANNELS: tuple[str, ...] = (*TRANSACTION_CHANNELS, "email")
CATEGORIES: tuple[str, ...] = ("music", "books", "electronics", "home")
EVENT_TYPES: tuple[str, ...] = ("visit", "email_open", "email_click", "support_ticket", "review")

# Dirichlet concentrations of the per-customer channel and category preferences.
_CHANNEL_ALPHA = np.array([2.0, 1.5, 1.0, 0.3])
_CATEGORY_ALPHA = np.array([0.6, 0.6, 0.6, 0.6])
# Typical item price per category: quantity = 1 + Poisson(amount / (2 * price)).
_ITEM_PRICE = np.array([12.0, 15.0, 90.0, 35.0])
# Returns: share of partial returns among multi-item orders, delay 1-30 days.
_PARTIAL_RETURN_SHARE = 0.5
_RETURN_DELAY_S = (_DAY_S, 30 * _DAY_S)

# Engagement, per week for a customer with propensity 1 while engaged (fade factor 1):
_VISITS_BASE = 0.15  # browsing without buying
_VISITS_PER_PURCHASE = 1.5  # visits per expected purchase (λ per week)
_TICKETS_BASE = 0.005
_TICKETS_PER_PURCHASE = 0.05
_REVIEWS_PER_PURCHASE = 0.1
_TICKET_EMAIL_SHARE = 0.35  # support tickets by email; the rest follow the channel preference
_CAMPAIGN_FIRST_S = 10 * 3600  # first campaign 10 hours after `start`, then fortnightly
_CAMPAIGN_EVERY_S = 2 * _WEEK_S
_OPEN_PROB = 0.3  # x propensity x fade, capped at _OPEN_PROB_MAX
_OPEN_PROB_MAX = 0.9
_OPEN_DELAY_MEAN_S = 12 * 3600
_CLICK_PROB = 0.3
_CLICK_DELAY_MEAN_S = 15 * 60
# Churn signal: over the _FADE_WEEKS before dropout the event rate falls linearly from 1 to
# _FADE_FLOOR (and stays there) and the sentiment mean from _SENTIMENT_ENGAGED to
# _SENTIMENT_LEAVING; sentiment = clip(mean + _SENTIMENT_SD * N(0, 1), -1, 1).
_FADE_WEEKS = 8.0
_FADE_FLOOR = 0.2
_SENTIMENT_ENGAGED = 0.3
_SENTIMENT_LEAVING = -0.4
_SENTIMENT_SD = 0.3

_PURCHASE_KEYS = ("r", "alpha", "a", "b")
_SPEND_KEYS = ("p", "q", "v")
_ENGAGEMENT_KEYS = ("shape", "rate")
_MAX_ROWS = 500_000_000


@dataclass(frozen=True, eq=False)
class Simulation:
    """Result of :func:`simulate`: the logs, the truth and the parameters that produced them.

    Attributes
    ----------
    transactions : pandas.DataFrame
        ``customer_id``, ``timestamp``, ``amount``, ``order_id``, ``channel``, ``category``,
        ``quantity``; returns are rows with negative ``amount`` and ``quantity``.
    events : pandas.DataFrame
        ``customer_id``, ``timestamp``, ``event_type``, ``channel``, ``value`` (empty when
        simulated with ``events=False``).
    truth : pandas.DataFrame
        One row per customer, indexed by ``customer_id``: ``birth``, ``lambda_``,
        ``p_dropout``, ``dropout_time``, ``alive_at_end``, ``mean_spend``,
        ``engagement_propensity``, ``preferred_channel``, ``latent_type``.
    purchase_params, spend_params : dict
        BG/NBD (``r``, ``alpha``, ``a``, ``b``, per ``time_unit``) and Gamma-Gamma (``p``,
        ``q``, ``v``) parameters; for a mixture, one such dict per latent type.
    time_unit : str
        Unit of λ and of ``alpha``.
    start, end, acquisition_end : pandas.Timestamp
        Observation window and the end of the acquisition period.
    population : str
        ``"bgnbd"``, ``"mixture"`` or ``"custom"``.
    type_shares : dict or None
        Share of each latent type in a mixture, ``None`` for ``"bgnbd"``.
    """

    transactions: pd.DataFrame
    events: pd.DataFrame
    truth: pd.DataFrame
    purchase_params: dict[str, Any]
    spend_params: dict[str, Any]
    time_unit: str
    start: pd.Timestamp
    end: pd.Timestamp
    acquisition_end: pd.Timestamp
    population: str = "bgnbd"
    type_shares: dict[str, float] | None = None

    def __repr__(self) -> str:
        return (
            f"Simulation(population={self.population!r}, customers={len(self.truth)}, "
            f"transactions={len(self.transactions)}, events={len(self.events)}, "
            f"start={self.start!s}, end={self.end!s}, time_unit={self.time_unit!r})"
        )


def simulate(
    n_customers: int = 1000,
    start: Any = "2024-01-01",
    end: Any = "2025-12-31",
    *,
    random_state: int | np.random.Generator | None = 0,
    purchase_params: Mapping[str, float] | None = None,
    spend_params: Mapping[str, float] | None = None,
    acquisition_end: Any = None,
    time_unit: str = "W",
    returns_rate: float = 0.0,
    events: bool = True,
    population: str | Mapping[str, Mapping[str, Any]] = "bgnbd",
) -> Simulation:
    """Simulate a shop's transactions and engagement events with known ground truth.

    Customers make their first purchase ("birth") uniformly between `start` and
    `acquisition_end`. Each customer i has a purchase rate λ_i ~ Gamma(shape r, rate alpha)
    per `time_unit` and a dropout probability p_i ~ Beta(a, b); repeat purchases arrive as a
    Poisson process with rate λ_i, and after each repeat purchase the customer drops out with
    probability p_i, the dropout time being that purchase's time (BG/NBD, [1]_). Each amount is
    Gamma(shape p, rate ν_i) with ν_i ~ Gamma(shape q, rate v), so the customer's mean spend is
    p/ν_i (Gamma-Gamma, [2]_). Amounts are rounded to cents (at least 0.01). Channel and
    category of a transaction are drawn from the customer's Dirichlet preferences; quantity is
    1 + Poisson(amount / (2 * typical item price of the category)).

    Engagement events: each customer has a propensity (Gamma, mean 1 for ``"bgnbd"``) and
    from birth on visits, support tickets and reviews arrive as Poisson processes with weekly
    rates propensity × (0.15 + 1.5 λ_week) for visits, propensity × (0.005 + 0.05 λ_week) for
    tickets and propensity × 0.1 λ_week for reviews (λ_week: λ per week). A fortnightly email
    campaign goes to every customer born by then, alive or not; it is opened with
    probability min(0.3 × propensity × fade, 0.9) about 12 hours later and clicked after 30% of
    the opens. Over the 8 weeks before a customer's dropout every rate is multiplied by a fade
    factor falling linearly from 1 to 0.2 (and staying at 0.2 afterwards), and the mean
    sentiment of tickets and reviews (``value``: mean + N(0, 0.3²) clipped to [-1, 1], NaN for
    other events) drifts from +0.3 to -0.4. For customers alive at `end` the fade uses their
    dropout after `end` (drawn, not reported), so those about to leave already fade. Visits
    take the customer's channel preference, emails the "email" channel, 35% of tickets
    "email" and the rest the preference, reviews "web" or "app". With the defaults a customer
    makes about 6 purchases and has about 30 events over the two years, 2 to 3 a month while
    engaged. All timestamps have second resolution and lie in [`start`, `end`].

    Parameters
    ----------
    n_customers : int, default 1000
        Number of customers, at least 1.
    start, end : str or datetime-like, default "2024-01-01", "2025-12-31"
        Observation window; `end` is an instant (``"2025-12-31"`` is its midnight) and must be
        after `start`. Tz-aware values are converted to UTC and made naive.
    random_state : int, numpy.random.Generator or None, default 0
        Seed of ``numpy.random.default_rng``; the same arguments give identical frames.
    purchase_params : dict, optional
        BG/NBD ``{"r", "alpha", "a", "b"}``, rates per `time_unit`. Default
        :data:`DEFAULT_PURCHASE_PARAMS` (given per week, converted to `time_unit`). Only with
        ``population="bgnbd"``.
    spend_params : dict, optional
        Gamma-Gamma ``{"p", "q", "v"}`` (``v`` is γ, as in ``lifetimes``). Default
        :data:`DEFAULT_SPEND_PARAMS`. Only with ``population="bgnbd"``.
    acquisition_end : str or datetime-like, optional
        Last possible birth, in [`start`, `end`]; default `start` + 1/4 of the window (as in
        the CDNOW cohort, acquired in the first quarter of the observation window).
    time_unit : str, default "W"
        Unit of λ and alpha, a pandas Timedelta unit: ``"W"`` (7 days), ``"D"``, ``"h"``...
        Calendar months and years are not units.
    returns_rate : float, default 0.0
        Share of orders, in [0, 1), that get a return row: same ``order_id``, negative amount
        and quantity (the whole order, or for half of the multi-item orders some items),
        1 to 30 days later. A return that would fall after `end` is not observed.
    events : bool, default True
        Simulate the engagement events; if False ``events`` is an empty frame.
    population : {"bgnbd", "mixture"} or dict, default "bgnbd"
        ``"bgnbd"``: one heterogeneous BG/NBD/Gamma-Gamma population; ``latent_type`` is then
        "lapsed" for customers who dropped out before `end` and, among those alive at `end`
        ranked by λ × mean spend, "vip" for the top 10%, "regular" down to the median and
        "occasional" below. ``"mixture"``: the latent types of :data:`MIXTURE_TYPES`. A dict
        in the format of :data:`MIXTURE_TYPES` (``share``, ``purchase`` per `time_unit`,
        ``spend``, ``engagement``) defines a custom mixture.

    Returns
    -------
    Simulation
        Frozen dataclass with ``transactions``, ``events``, ``truth`` (rows sorted by timestamp
        then customer_id; truth sorted by customer_id) and the parameters used.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If an argument is out of range (non-positive parameters, `end` not after `start`,
        `returns_rate` outside [0, 1), ...).

    References
    ----------
    .. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "Counting Your Customers" the
       Easy Way: An Alternative to the Pareto/NBD Model. Marketing Science 24(2), 275-284.
    .. [2] Fader, P. S. and Hardie, B. G. S. (2013). The Gamma-Gamma Model of Monetary Value.
       http://www.brucehardie.com/notes/025/

    Examples
    --------
    >>> sim = simulate(200, random_state=1, returns_rate=0.05)
    >>> sim.transactions.columns.tolist()
    ['customer_id', 'timestamp', 'amount', 'order_id', 'channel', 'category', 'quantity']
    >>> sim.events.columns.tolist()
    ['customer_id', 'timestamp', 'event_type', 'channel', 'value']
    >>> sim.truth.shape
    (200, 9)
    >>> sim.purchase_params
    {'r': 0.75, 'alpha': 4.0, 'a': 0.8, 'b': 2.5}
    >>> first = sim.transactions.groupby("customer_id")["timestamp"].min()
    >>> bool((first == sim.truth["birth"]).all())
    True
    """
    n = _check_n_customers(n_customers)
    start_ts = _to_timestamp(start, "start")
    end_ts = _to_timestamp(end, "end")
    if end_ts <= start_ts:
        raise ValueError(f"end ({end_ts}) must be after start ({start_ts}).")
    if acquisition_end is None:
        acq_ts = start_ts + pd.Timedelta(
            seconds=math.floor((end_ts - start_ts).total_seconds() / 4)
        )
    else:
        acq_ts = _to_timestamp(acquisition_end, "acquisition_end")
        if not start_ts <= acq_ts <= end_ts:
            raise ValueError(
                f"acquisition_end ({acq_ts}) must lie between start ({start_ts}) and end ({end_ts})."
            )
    unit_s = _unit_seconds(time_unit)
    weeks_per_unit = unit_s / _WEEK_S
    if isinstance(returns_rate, bool) or not isinstance(returns_rate, numbers.Real):
        raise TypeError(f"returns_rate must be a number in [0, 1), got {returns_rate!r}.")
    returns_rate = float(returns_rate)
    if not 0.0 <= returns_rate < 1.0:
        raise ValueError(f"returns_rate must be in [0, 1), got {returns_rate}.")
    if not isinstance(events, (bool, np.bool_)):
        raise TypeError(f"events must be True or False, got {events!r}.")
    pop_name, types = _resolve_population(population, purchase_params, spend_params, weeks_per_unit)

    rng = np.random.default_rng(random_state)
    span_s = (end_ts - start_ts).total_seconds()
    acq_s = math.floor((acq_ts - start_ts).total_seconds())

    # ---- customers: type, birth and latent parameters --------------------------------------
    names = list(types)
    shares = np.array([types[k]["share"] for k in names])
    if len(names) > 1:
        type_code = rng.choice(len(names), size=n, p=shares)
    else:
        type_code = np.zeros(n, dtype=np.int64)

    def per_customer(group: str, key: str) -> npt.NDArray[np.float64]:
        return np.array([types[k][group][key] for k in names])[type_code]

    birth = rng.integers(0, acq_s + 1, size=n)  # seconds after start
    lam = rng.gamma(per_customer("purchase", "r"), 1.0 / per_customer("purchase", "alpha"))
    p_drop = rng.beta(per_customer("purchase", "a"), per_customer("purchase", "b"))
    spend_shape = per_customer("spend", "p")
    nu = rng.gamma(per_customer("spend", "q"), 1.0 / per_customer("spend", "v"))
    propensity = rng.gamma(
        per_customer("engagement", "shape"), 1.0 / per_customer("engagement", "rate")
    )
    channel_pref = rng.dirichlet(_CHANNEL_ALPHA, size=n)
    category_pref = rng.dirichlet(_CATEGORY_ALPHA, size=n)
    lam_s = lam / unit_s  # purchases per second

    # ---- BG/NBD purchases -----------------------------------------------------------------
    # K ~ Geometric(p): the repeat purchase after which the customer drops out; M ~ Poisson(λT)
    # purchases the Poisson process would make over the window T. The customer makes
    # min(K, M) repeat purchases in the window, at the first min(K, M) of M uniform order
    # statistics, drawn from exponential spacings: U_(j) = S_j / (S_k + Gamma(M - k + 1)).
    window = span_s - birth
    n_drop = rng.geometric(np.clip(p_drop, 1e-12, 1.0))
    n_window = rng.poisson(lam_s * window)
    n_rep = np.minimum(n_drop, n_window)
    dropped = n_drop <= n_window
    total_rep = int(n_rep.sum())
    if n + total_rep > _MAX_ROWS:
        raise ValueError(
            f"These parameters give {n + total_rep} transactions, more than {_MAX_ROWS}; "
            "lower n_customers or the purchase rate (r/alpha)."
        )
    has_rep = n_rep > 0
    tail = np.zeros(n)
    tail[has_rep] = rng.gamma((n_window - n_rep + 1)[has_rep].astype(np.float64))
    rep_cust = np.repeat(np.arange(n), n_rep)
    spacing_sum = np.cumsum(rng.standard_exponential(total_rep))
    bounds = np.concatenate(([0.0], spacing_sum))
    group_start = np.cumsum(n_rep) - n_rep
    offset = bounds[group_start]
    s_total = bounds[group_start + n_rep] - offset
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = (spacing_sum - offset[rep_cust]) / (s_total + tail)[rep_cust]
    rep_time = birth[rep_cust] + window[rep_cust] * frac
    del spacing_sum, bounds, frac

    # Dropout: time of the K-th repeat purchase; after `end` (latent, for the fade) it is
    # end + Gamma(K - M, rate λ) by the memoryless Poisson process.
    dropout = np.empty(n)
    last_rep = group_start + n_rep - 1
    dropout[dropped] = rep_time[last_rep[dropped]]
    alive = ~dropped
    with np.errstate(divide="ignore"):
        dropout[alive] = (
            span_s + rng.gamma((n_drop - n_window)[alive].astype(np.float64)) / (lam_s[alive])
        )

    # ---- transactions -----------------------------------------------------------------------
    cust_dtype = np.int32 if n < 2**31 else np.int64
    n_orders = n + total_rep
    tx_cust = np.repeat(np.arange(n, dtype=cust_dtype), n_rep + 1)
    is_first = np.zeros(n_orders, dtype=bool)
    is_first[np.cumsum(n_rep + 1) - (n_rep + 1)] = True
    tx_sec = np.empty(n_orders, dtype=np.int64)
    tx_sec[is_first] = birth
    tx_sec[~is_first] = np.floor(rep_time)
    del rep_time, rep_cust, is_first
    # Rows are grouped by customer (ascending) and in time order within a customer, so the row
    # number breaks ties of the timestamp exactly as customer_id and purchase order do.
    order = _argsort_by_time(tx_sec)
    tx_sec, tx_cust = tx_sec[order], tx_cust[order]
    del order
    amount = _to_cents(rng.gamma(spend_shape[tx_cust]) / nu[tx_cust])
    tx_channel = _draw_rows(rng, channel_pref, tx_cust)
    category = _draw_rows(rng, category_pref, tx_cust)
    quantity = 1 + rng.poisson(amount / (2.0 * _ITEM_PRICE[category]))
    order_no = np.arange(1, n_orders + 1, dtype=np.int64)

    if returns_rate > 0.0:
        picked = np.flatnonzero(rng.random(n_orders) < returns_rate)
        delay = rng.integers(_RETURN_DELAY_S[0], _RETURN_DELAY_S[1] + 1, size=picked.size)
        q = quantity[picked]
        partial = (q > 1) & (rng.random(picked.size) < _PARTIAL_RETURN_SHARE)
        k = np.where(partial, 1 + np.floor(rng.random(picked.size) * (q - 1)).astype(q.dtype), q)
        full_amount = amount[picked]
        refund = np.where(
            partial,
            np.clip(np.round(full_amount * k / q, 2), 0.01, full_amount),
            full_amount,
        )
        ret_sec = tx_sec[picked] + delay
        seen = ret_sec <= span_s
        picked, ret_sec, k, refund = picked[seen], ret_sec[seen], k[seen], refund[seen]
        ret_cust = tx_cust[picked]
        ret_order = np.lexsort((ret_cust, ret_sec))  # stable: ties keep the purchases' order
        picked, ret_sec, ret_cust = picked[ret_order], ret_sec[ret_order], ret_cust[ret_order]
        k, refund = k[ret_order], refund[ret_order]
        # Merge the sorted returns into the sorted purchases; a return comes after the
        # purchases of the same customer in the same second.
        key_p = tx_sec * n + tx_cust
        key_r = ret_sec * n + ret_cust
        is_ret = np.zeros(n_orders + picked.size, dtype=bool)
        is_ret[np.searchsorted(key_p, key_r, side="right") + np.arange(picked.size)] = True
        del key_p, key_r
        tx_sec = _merge(is_ret, tx_sec, ret_sec)
        tx_cust = _merge(is_ret, tx_cust, ret_cust)
        amount = _merge(is_ret, amount, -refund)
        tx_channel = _merge(is_ret, tx_channel, tx_channel[picked])
        category = _merge(is_ret, category, category[picked])
        quantity = _merge(is_ret, quantity, -k)
        order_no = _merge(is_ret, order_no, order_no[picked])

    id_width = max(6, len(str(n)))
    customer_ids = _digits("C", np.arange(1, n + 1), id_width)
    transactions = pd.DataFrame(
        {
            "customer_id": _fixed_width_str(customer_ids[tx_cust]),
            "timestamp": _to_datetime(start_ts, tx_sec, inplace=True),
            "amount": amount,
            "order_id": _fixed_width_str(_digits("O", order_no, max(8, len(str(n_orders))))),
            "channel": _labels(TRANSACTION_CHANNELS, tx_channel),
            "category": _labels(CATEGORIES, category),
            "quantity": quantity.astype(np.int64),
        },
        copy=False,
    )
    del tx_sec, tx_cust, amount, tx_channel, category, quantity, order_no

    # ---- events -----------------------------------------------------------------------------
    if events:
        events_frame = _simulate_events(
            rng,
            span_s=span_s,
            birth=birth,
            dropout=dropout,
            lam_week=lam / weeks_per_unit,
            propensity=propensity,
            channel_pref=channel_pref,
            customer_ids=customer_ids,
            start_ts=start_ts,
            cust_dtype=cust_dtype,
        )
    else:
        events_frame = pd.DataFrame(
            {
                "customer_id": _labels((), np.zeros(0, dtype=np.int8)),
                "timestamp": _to_datetime(start_ts, np.zeros(0, dtype=np.int64)),
                "event_type": _labels(EVENT_TYPES, np.zeros(0, dtype=np.int8)),
                "channel": _labels(EVENT_CHANNELS, np.zeros(0, dtype=np.int8)),
                "value": np.zeros(0, dtype=np.float64),
            }
        )

    # ---- truth ------------------------------------------------------------------------------
    mean_spend = spend_shape / nu
    if pop_name == "bgnbd":
        latent = _bgnbd_types(lam * mean_spend, alive)
    else:
        latent = np.array(names, dtype=object)[type_code]
    dropout_ns = _to_datetime(start_ts, np.floor(np.where(dropped, dropout, 0.0)).astype(np.int64))
    dropout_ns[alive] = np.datetime64("NaT")
    truth = pd.DataFrame(
        {
            "birth": _to_datetime(start_ts, birth),
            "lambda_": lam,
            "p_dropout": p_drop,
            "dropout_time": dropout_ns,
            "alive_at_end": alive,
            "mean_spend": mean_spend,
            "engagement_propensity": propensity,
            "preferred_channel": _labels(TRANSACTION_CHANNELS, np.argmax(channel_pref, axis=1)),
            "latent_type": pd.array(latent, dtype="str"),
        },
        index=pd.Index(_fixed_width_str(customer_ids), name="customer_id"),
    )

    if pop_name == "bgnbd":
        only = types["bgnbd"]
        purchase_out: dict[str, Any] = dict(only["purchase"])
        spend_out: dict[str, Any] = dict(only["spend"])
        type_shares = None
    else:
        purchase_out = {k: dict(types[k]["purchase"]) for k in names}
        spend_out = {k: dict(types[k]["spend"]) for k in names}
        type_shares = {k: float(types[k]["share"]) for k in names}
    return Simulation(
        transactions=transactions,
        events=events_frame,
        truth=truth,
        purchase_params=purchase_out,
        spend_params=spend_out,
        time_unit=str(time_unit),
        start=start_ts,
        end=end_ts,
        acquisition_end=acq_ts,
        population=pop_name,
        type_shares=type_shares,
    )


# ---- events ---------------------------------------------------------------------------------


def _simulate_events(
    rng: np.random.Generator,
    *,
    span_s: float,
    birth: np.ndarray,
    dropout: np.ndarray,
    lam_week: np.ndarray,
    propensity: np.ndarray,
    channel_pref: np.ndarray,
    customer_ids: np.ndarray,
    start_ts: pd.Timestamp,
    cust_dtype: type,
) -> pd.DataFrame:
    n = birth.size
    fade_s = _FADE_WEEKS * _WEEK_S
    fade_start = dropout - fade_s
    code = {name: np.int8(i) for i, name in enumerate(EVENT_TYPES)}
    channel_code = {name: np.int8(i) for i, name in enumerate(EVENT_CHANNELS)}

    # Visits, tickets and reviews share the fade: one Poisson process whose events are typed
    # afterwards. Piecewise: engaged (birth, D - W] at the full rate; fading (D - W, D] at the
    # full rate thinned by the fade factor; gone (D, end] at the floor rate.
    visit_rate = propensity * (_VISITS_BASE + _VISITS_PER_PURCHASE * lam_week)
    ticket_rate = propensity * (_TICKETS_BASE + _TICKETS_PER_PURCHASE * lam_week)
    review_rate = propensity * (_REVIEWS_PER_PURCHASE * lam_week)
    total_rate = visit_rate + ticket_rate + review_rate
    rate = total_rate / _WEEK_S
    lo = birth.astype(np.float64)
    cust_a, t_a = _poisson_times(rng, rate, lo, np.minimum(fade_start, span_s))
    cust_b, t_b = _poisson_times(rng, rate, np.maximum(lo, fade_start), np.minimum(dropout, span_s))
    keep = rng.random(t_b.size) < _fade(t_b, fade_start[cust_b], fade_s)
    cust_b, t_b = cust_b[keep], t_b[keep]
    cust_c, t_c = _poisson_times(rng, rate * _FADE_FLOOR, np.maximum(lo, dropout), span_s)
    ev_cust = np.concatenate((cust_a, cust_b, cust_c)).astype(cust_dtype)
    ev_time = np.concatenate((t_a, t_b, t_c))
    del cust_a, t_a, cust_b, t_b, cust_c, t_c, keep

    with np.errstate(divide="ignore", invalid="ignore"):
        p_visit = visit_rate / total_rate
        p_not_review = (visit_rate + ticket_rate) / total_rate
    u = rng.random(ev_time.size)
    ev_type = np.where(u < p_not_review[ev_cust], code["support_ticket"], code["review"])
    ev_type[u < p_visit[ev_cust]] = code["visit"]
    del u
    ev_channel = _draw_rows(rng, channel_pref, ev_cust)
    tickets = np.flatnonzero(ev_type == code["support_ticket"])
    by_email = tickets[rng.random(tickets.size) < _TICKET_EMAIL_SHARE]
    ev_channel[by_email] = channel_code["email"]
    reviews = np.flatnonzero(ev_type == code["review"])
    web, app = channel_pref[:, 0], channel_pref[:, 1]
    on_web = rng.random(reviews.size) < (web / (web + app))[ev_cust[reviews]]
    ev_channel[reviews] = np.where(on_web, channel_code["web"], channel_code["app"])
    del by_email, on_web
    ev_sec = np.floor(ev_time).astype(np.int64)

    # Tickets and reviews carry a sentiment; they are few and sorted on their own.
    valued = np.sort(np.concatenate((tickets, reviews)))
    del tickets, reviews
    v_time = ev_time[valued]
    v_cust = ev_cust[valued]
    v_value = _sentiment(rng, v_time, fade_start[v_cust], fade_s)
    v_sec, v_type, v_channel = ev_sec[valued], ev_type[valued], ev_channel[valued]
    plain = np.ones(ev_time.size, dtype=bool)
    plain[valued] = False
    del ev_time, valued
    p_sec, p_cust, p_type, p_channel = (
        ev_sec[plain],
        ev_cust[plain],
        ev_type[plain],
        ev_channel[plain],
    )
    del ev_sec, ev_cust, ev_type, ev_channel, plain

    # Fortnightly campaigns to every customer already born, alive or not.
    parts_cust, parts_time, parts_type = [p_cust], [p_sec], [p_type]
    sends = np.arange(_CAMPAIGN_FIRST_S, span_s + 1, _CAMPAIGN_EVERY_S, dtype=np.float64)
    for send in sends:
        reached = np.flatnonzero(birth <= send)
        p_open = np.minimum(
            _OPEN_PROB * propensity[reached] * _fade(send, fade_start[reached], fade_s),
            _OPEN_PROB_MAX,
        )
        opened = reached[rng.random(reached.size) < p_open]
        t_open = send + rng.exponential(_OPEN_DELAY_MEAN_S, size=opened.size)
        clicked = rng.random(opened.size) < _CLICK_PROB
        t_click = t_open[clicked] + rng.exponential(_CLICK_DELAY_MEAN_S, size=int(clicked.sum()))
        c_click = opened[clicked]
        seen_open, seen_click = t_open <= span_s, t_click <= span_s
        parts_cust += [opened[seen_open].astype(cust_dtype), c_click[seen_click].astype(cust_dtype)]
        parts_time += [
            np.floor(t_open[seen_open]).astype(np.int64),
            np.floor(t_click[seen_click]).astype(np.int64),
        ]
        parts_type += [
            np.full(int(seen_open.sum()), code["email_open"]),
            np.full(int(seen_click.sum()), code["email_click"]),
        ]
    n_campaign = sum(part.size for part in parts_cust) - p_cust.size
    p_channel = np.concatenate((p_channel, np.full(n_campaign, channel_code["email"])))
    p_cust = np.concatenate(parts_cust)
    del parts_cust
    p_sec = np.concatenate(parts_time)
    del parts_time
    p_type = np.concatenate(parts_type)
    del parts_type

    plain = [p_sec, p_cust, p_type, p_channel]
    del p_sec, p_cust, p_type, p_channel  # _sort_events frees them as soon as it can
    sec, cust, ev_type, channel, value = _sort_events(
        n, plain, [v_sec, v_cust, v_type, v_channel, v_value]
    )
    return pd.DataFrame(
        {
            "customer_id": _fixed_width_str(customer_ids[cust]),
            "timestamp": _to_datetime(start_ts, sec, inplace=True),
            "event_type": _labels(EVENT_TYPES, ev_type),
            "channel": _labels(EVENT_CHANNELS, channel),
            "value": value,
        },
        copy=False,
    )


def _sort_events(
    n: int,
    plain: list[np.ndarray],
    valued: list[np.ndarray],
    *,
    pack: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Events ordered by (second, customer, has a value, type, channel), stably.

    Rows without a value are fully described by (second, customer, type, channel): packed into
    one int64 they sort by value, which is fast and leaves ties nothing to reorder. The few
    rows with a value (tickets, reviews) are sorted stably on their own and merged in after
    the plain rows of the same customer and second. ``pack=False`` (used when the packed key
    would not fit in 63 bits) gives the same order with one lexsort.

    ``plain`` is [second, customer, type, channel] and ``valued`` the same plus value; both
    lists are emptied so that their arrays can be freed early.
    """
    p_sec, p_cust, p_type, p_channel = plain
    v_sec, v_cust, v_type, v_channel, v_value = valued
    plain.clear()
    valued.clear()
    cust_bits = max(1, (n - 1).bit_length())
    max_sec = int(max(p_sec.max(initial=0), v_sec.max(initial=0)))
    if pack is None:
        pack = max_sec.bit_length() + cust_bits + 6 <= 63
    if not pack:
        sec = np.concatenate((p_sec, v_sec))
        cust = np.concatenate((p_cust, v_cust))
        ev_type = np.concatenate((p_type, v_type))
        channel = np.concatenate((p_channel, v_channel))
        value = np.concatenate((np.full(p_sec.size, np.nan), v_value))
        has_value = np.concatenate((np.zeros(p_sec.size, bool), np.ones(v_sec.size, bool)))
        order = np.lexsort((channel, ev_type, has_value, cust, sec))
        return sec[order], cust[order], ev_type[order], channel[order], value[order]

    cust_dtype = p_cust.dtype
    key = (p_sec << (cust_bits + 6)) | (p_cust.astype(np.int64) << 6)
    key |= (p_type.astype(np.int64) << 3) | p_channel.astype(np.int64)
    del p_sec, p_cust
    key.sort()
    p_type = ((key >> 3) & 7).astype(np.int8)
    p_channel = (key & 7).astype(np.int8)
    key >>= 6
    order = np.lexsort((v_channel, v_type, v_cust, v_sec))
    v_key = (v_sec[order] << cust_bits) | v_cust[order].astype(np.int64)
    is_v = np.zeros(key.size + v_key.size, dtype=bool)
    is_v[np.searchsorted(key, v_key, side="right") + np.arange(v_key.size)] = True
    key = _merge(is_v, key, v_key)
    ev_type = _merge(is_v, p_type, v_type[order])
    channel = _merge(is_v, p_channel, v_channel[order])
    value = _merge(is_v, np.full(p_type.size, np.nan), v_value[order])
    del p_type, p_channel, is_v
    cust = (key & ((1 << cust_bits) - 1)).astype(cust_dtype)
    key >>= cust_bits
    return key, cust, ev_type, channel, value


def _fade(t: np.ndarray | float, fade_start: np.ndarray, fade_s: float) -> np.ndarray:
    """Event-rate multiplier: 1 before the fade window, linear to the floor, floor after."""
    return 1.0 - (1.0 - _FADE_FLOOR) * np.clip((t - fade_start) / fade_s, 0.0, 1.0)


def _sentiment(
    rng: np.random.Generator, t: np.ndarray, fade_start: np.ndarray, fade_s: float
) -> np.ndarray:
    drift = np.clip((t - fade_start) / fade_s, 0.0, 1.0)
    mean = _SENTIMENT_ENGAGED + (_SENTIMENT_LEAVING - _SENTIMENT_ENGAGED) * drift
    return np.clip(mean + _SENTIMENT_SD * rng.standard_normal(t.size), -1.0, 1.0)


def _poisson_times(
    rng: np.random.Generator, rate: np.ndarray, lo: np.ndarray, hi: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Homogeneous Poisson process per customer on [lo, hi] (empty where hi <= lo)."""
    length = np.clip(hi - lo, 0.0, None)
    length[~np.isfinite(length)] = 0.0
    counts = rng.poisson(rate * length)
    cust = np.repeat(np.arange(rate.size), counts)
    return cust, lo[cust] + rng.random(cust.size) * length[cust]


# ---- campaigns ------------------------------------------------------------------------------

#: Default response of each latent type to a campaign (:func:`simulate_campaign`). ``rate``: the
#: relative change of the purchase rate during the campaign window while the customer is still
#: active (-0.1: ten percent fewer purchases; 1.0: twice as many); ``reactivation``: the
#: probability that a customer who had already dropped out when the campaign started makes one
#: purchase in the window. Heterogeneous on purpose: bargain hunters respond most, regular
#: customers well, VIPs slightly negatively (an offer to someone who buys anyway cannibalises
#: and annoys: "sleeping dogs"), one-time buyers not at all, and lapsed customers barely come
#: back. Targeting by churn risk alone therefore spends on the customers who respond least.
DEFAULT_CAMPAIGN_EFFECTS: dict[str, dict[str, float]] = {
    # population="mixture"
    "vip": {"rate": -0.1, "reactivation": 0.0},
    "regular": {"rate": 0.6, "reactivation": 0.15},
    "bargain": {"rate": 1.0, "reactivation": 0.25},
    "one_time": {"rate": 0.0, "reactivation": 0.02},
    # population="bgnbd" (its latent types, see simulate)
    "occasional": {"rate": 0.3, "reactivation": 0.05},
    "lapsed": {"rate": 0.3, "reactivation": 0.05},
}

#: Columns of :attr:`CampaignSimulation.truth`.
CAMPAIGN_TRUTH_COLUMNS: tuple[str, ...] = (
    "treated",
    "latent_type",
    "active_at_start",
    "rate_effect",
    "reactivation",
    "exposure_days",
    "baseline_purchases",
    "uplift_purchases",
    "uplift_purchase_prob",
    "uplift_spend",
)


@dataclass(frozen=True, eq=False)
class CampaignSimulation:
    """Result of :func:`simulate_campaign`: the shop's log after a campaign, and its truth.

    Attributes
    ----------
    transactions : pandas.DataFrame
        The simulation's transactions with the treated customers' responses: purchases added
        (order ids starting with ``"K"``) or removed (with their returns) in the window. Rows
        of customers who were not treated are the simulation's own.
    truth : pandas.DataFrame
        One row per customer of the simulation, indexed by ``customer_id``
        (:data:`CAMPAIGN_TRUTH_COLUMNS`): ``treated``; ``latent_type``; ``active_at_start``
        (not yet dropped out at ``start``); ``rate_effect`` and ``reactivation`` (the
        customer's response parameters); ``exposure_days`` (days of the window the customer
        is active); ``baseline_purchases`` (purchase rows in the window without the
        campaign); and what treating the customer changes, in expectation over the campaign's
        randomness given the customer's latent parameters and untreated purchases:
        ``uplift_purchases`` (purchases), ``uplift_purchase_prob`` (the probability of at least
        one purchase in the window) and ``uplift_spend`` (spend in the window). Defined for
        every customer, treated or not: the true uplift an uplift model should rank by.
    start : pandas.Timestamp
        Start of the campaign: contacts count from this instant.
    window : pandas.Timedelta
        Length of the response window ``(start, start + window]``.
    effects : dict
        Response parameters per latent type that were used.
    """

    transactions: pd.DataFrame
    truth: pd.DataFrame
    start: pd.Timestamp
    window: pd.Timedelta
    effects: dict[str, dict[str, float]]

    def __repr__(self) -> str:
        return (
            f"CampaignSimulation(customers={len(self.truth)}, "
            f"treated={int(self.truth['treated'].sum())}, start={self.start!s}, "
            f"window={self.window!s})"
        )


def simulate_campaign(
    simulation: Simulation,
    treated: Any,
    start: Any,
    window: Any = "8W",
    *,
    effects: Mapping[str, Mapping[str, float]] | None = None,
    random_state: int | np.random.Generator | None = 0,
) -> CampaignSimulation:
    """A campaign on a simulated shop: treated customers respond with a known, varied effect.

    Customers keep their latent BG/NBD parameters (:func:`simulate`). At ``start`` the
    ``treated`` customers are contacted; over the window ``(start, start + window]``:

    - a customer still active at ``start`` buys at rate ``λ (1 + rate)`` until their dropout
      (the dropout time is not changed): a positive ``rate`` adds a Poisson number of
      purchases with mean ``rate · λ · exposure`` at uniform times of the active part of the
      window, a negative one removes each of the window's purchases (and its returns) with
      probability ``-rate``;
    - a customer who had already dropped out comes back for one purchase, at a uniform time
      of the window, with probability ``reactivation``.

    Added purchases draw their amount from the customer's Gamma-Gamma spend (shape ``p`` of
    their type, mean ``mean_spend``), their channel from the customer's preferred channel and
    their category uniformly. Untreated customers' rows are left as they are: the simulation's
    log is the untreated outcome of every customer, so each customer's true effect is known
    (``truth``) and a measurement against a random holdout can be checked against it.
    :func:`simulate` itself is unchanged.

    Parameters
    ----------
    simulation : Simulation
        A result of :func:`simulate`.
    treated : iterable of customer ids, or boolean Series indexed by customer id
        The contacted customers (a holdout is simply left out).
    start : str or datetime-like
        When the campaign starts; the window must end by the simulation's ``end``.
    window : str or timedelta, default "8W"
        Length of the response window.
    effects : dict, optional
        Response per latent type, ``{"rate": float >= -1, "reactivation": float in [0, 1]}``;
        default :data:`DEFAULT_CAMPAIGN_EFFECTS`. Every latent type of the simulation needs an
        entry.
    random_state : int, numpy.random.Generator or None, default 0
        Seed of the campaign's randomness (independent of the simulation's).

    Returns
    -------
    CampaignSimulation

    Raises
    ------
    ValueError
        A treated id unknown to the simulation or born after ``start``, a window past the
        simulation's end, a latent type without effects, or effects out of range.
    TypeError
        ``simulation`` is not a :class:`Simulation`.

    Examples
    --------
    >>> sim = simulate(300, "2024-01-01", "2025-12-31", population="mixture", random_state=2)
    >>> ids = sim.truth.index[sim.truth["birth"] <= "2025-06-30"][::2]
    >>> campaign = simulate_campaign(sim, ids, "2025-06-30", "8W", random_state=0)
    >>> int(campaign.truth["treated"].sum()) == len(ids)
    True
    >>> effect = campaign.truth.groupby("latent_type")["rate_effect"].first()
    >>> effect.to_dict()
    {'bargain': 1.0, 'one_time': 0.0, 'regular': 0.6, 'vip': -0.1}
    """
    if not isinstance(simulation, Simulation):
        raise TypeError(f"simulation must be a Simulation, got {type(simulation).__name__}.")
    start_ts = _to_timestamp(start, "start")
    span = _campaign_window(window)
    end_ts = start_ts + span
    if start_ts < simulation.start or end_ts > simulation.end:
        raise ValueError(
            f"The campaign window ({start_ts}, {end_ts}] must lie within the simulation "
            f"[{simulation.start}, {simulation.end}]: start earlier or use a shorter window."
        )
    truth = simulation.truth
    ids = truth.index
    is_treated = _treated_mask(treated, ids)
    born_late = is_treated & (truth["birth"].to_numpy() > start_ts.to_datetime64())
    if born_late.any():
        raise ValueError(
            f"{int(born_late.sum())} treated customer(s) make their first purchase after the "
            f"campaign start {start_ts}, e.g. {list(ids[born_late][:3])}: a campaign plan can "
            "only hold customers known at its start."
        )
    latent = truth["latent_type"].astype(str).to_numpy()
    table = _campaign_effects(effects, sorted(set(latent)))
    rate = np.array([table[t]["rate"] for t in latent])
    reactivation = np.array([table[t]["reactivation"] for t in latent])

    unit_s = _unit_seconds(simulation.time_unit)
    lam_per_s = truth["lambda_"].to_numpy() / unit_s
    start_s = (start_ts - simulation.start).total_seconds()
    end_s = start_s + span.total_seconds()
    dropout = truth["dropout_time"]
    dropout_s = np.where(
        dropout.isna().to_numpy(),
        np.inf,
        (dropout - simulation.start).dt.total_seconds().to_numpy(),
    )
    active = dropout_s > start_s
    exposure_s = np.where(active, np.clip(np.minimum(dropout_s, end_s) - start_s, 0.0, None), 0.0)

    tx = simulation.transactions
    seconds = (tx["timestamp"] - simulation.start).dt.total_seconds().to_numpy()
    in_window = (seconds > start_s) & (seconds <= end_s)
    position = ids.get_indexer(tx["customer_id"])
    purchase_rows = in_window & (tx["amount"].to_numpy() > 0)
    baseline = np.bincount(position[purchase_rows], minlength=ids.size)
    window_spend = np.bincount(
        position[in_window], weights=tx["amount"].to_numpy()[in_window], minlength=ids.size
    )

    mean_spend = truth["mean_spend"].to_numpy()
    extra_mean = np.where(rate > 0, rate, 0.0) * lam_per_s * exposure_s
    drop_share = np.where(rate < 0, -rate, 0.0)
    with np.errstate(invalid="ignore"):
        p_lose_all = np.where(baseline > 0, drop_share**baseline, 0.0)
    uplift_prob = np.where(
        active,
        np.where(baseline == 0, -np.expm1(-extra_mean), -p_lose_all),
        reactivation,
    )
    uplift_purchases = np.where(active, extra_mean - drop_share * baseline, reactivation)
    uplift_spend = np.where(
        active, extra_mean * mean_spend - drop_share * window_spend, reactivation * mean_spend
    )

    rng = np.random.default_rng(random_state)
    # Removed purchases (negative rate): each of the window's orders with probability -rate.
    order_ids = tx["order_id"].to_numpy()
    candidates = np.flatnonzero(purchase_rows & is_treated[position] & (rate[position] < 0))
    lost = candidates[rng.random(candidates.size) < drop_share[position[candidates]]]
    lost_orders = set(order_ids[lost].tolist())
    keep = ~np.isin(order_ids, list(lost_orders)) if lost_orders else np.ones(len(tx), bool)

    # Added purchases: extra Poisson purchases of the active, one purchase of the reactivated.
    n_extra = np.where(is_treated & active, rng.poisson(extra_mean), 0)
    back = is_treated & ~active & (rng.random(ids.size) < reactivation)
    cust = np.concatenate((np.repeat(np.arange(ids.size), n_extra), np.flatnonzero(back)))
    length = np.concatenate(
        (np.repeat(exposure_s, n_extra), np.full(int(back.sum()), end_s - start_s))
    )
    # whole seconds in (start, start + length]
    moment = start_s + length * (1.0 - rng.random(cust.size))
    when = np.minimum(np.ceil(moment), np.floor(start_s + length)).astype(np.int64)
    shape = _spend_shape(simulation, latent)[cust]
    amount = _to_cents(rng.gamma(shape) * mean_spend[cust] / shape)
    category = rng.integers(0, len(CATEGORIES), size=cust.size)
    quantity = 1 + rng.poisson(amount / (2.0 * _ITEM_PRICE[category]))
    numbers_ = np.arange(1, cust.size + 1)
    added = pd.DataFrame(
        {
            "customer_id": pd.array(ids.to_numpy()[cust], dtype=tx["customer_id"].dtype),
            "timestamp": _to_datetime(simulation.start, when),
            "amount": amount,
            "order_id": _fixed_width_str(_digits("K", numbers_, 8)),
            "channel": pd.array(
                truth["preferred_channel"].to_numpy()[cust], dtype=tx["channel"].dtype
            ),
            "category": pd.array(
                np.asarray(CATEGORIES, dtype=object)[category], dtype=tx["category"].dtype
            ),
            "quantity": quantity.astype(np.int64),
        }
    )
    combined = pd.concat([tx[keep], added], ignore_index=True)
    combined = combined.sort_values(["timestamp", "customer_id"], kind="stable", ignore_index=True)

    out = pd.DataFrame(
        {
            "treated": is_treated,
            "latent_type": truth["latent_type"],
            "active_at_start": active,
            "rate_effect": rate,
            "reactivation": reactivation,
            "exposure_days": exposure_s / _DAY_S,
            "baseline_purchases": baseline.astype(np.int64),
            "uplift_purchases": uplift_purchases,
            "uplift_purchase_prob": uplift_prob,
            "uplift_spend": uplift_spend,
        },
        index=ids,
    )
    return CampaignSimulation(
        transactions=combined, truth=out, start=start_ts, window=span, effects=table
    )


def _campaign_window(window: Any) -> pd.Timedelta:
    try:
        span = pd.Timedelta(window)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"window must be a duration such as '8W', got {window!r}.") from exc
    if span is pd.NaT or span <= pd.Timedelta(0):
        raise ValueError(f"window must be a positive duration, got {window!r}.")
    return span


def _treated_mask(treated: Any, ids: pd.Index) -> np.ndarray:
    if isinstance(treated, pd.Series) and treated.dtype == bool:
        chosen = treated.index[treated.to_numpy()]
    elif isinstance(treated, str):
        raise TypeError("treated must be a collection of customer ids, not one string.")
    else:
        chosen = pd.Index(list(treated))
    unknown = chosen[ids.get_indexer(chosen) < 0]
    if len(unknown):
        raise ValueError(
            f"{len(unknown)} treated id(s) are not customers of the simulation, e.g. "
            f"{list(unknown[:3])}."
        )
    mask = np.zeros(ids.size, dtype=bool)
    mask[ids.get_indexer(chosen)] = True
    return mask


def _campaign_effects(
    effects: Mapping[str, Mapping[str, float]] | None, types: list[str]
) -> dict[str, dict[str, float]]:
    given = DEFAULT_CAMPAIGN_EFFECTS if effects is None else effects
    if not isinstance(given, Mapping):
        raise TypeError(f"effects must map latent types to responses, got {given!r}.")
    missing = [t for t in types if t not in given]
    if missing:
        raise ValueError(
            f"effects has no entry for the latent type(s) {missing}; give each type "
            "{'rate': ..., 'reactivation': ...}."
        )
    table = {}
    for name in types:
        entry = given[name]
        if not isinstance(entry, Mapping) or set(entry) != {"rate", "reactivation"}:
            raise ValueError(
                f"effects[{name!r}] must be {{'rate': float, 'reactivation': float}}, got {entry!r}."
            )
        rate, back = float(entry["rate"]), float(entry["reactivation"])
        if not (math.isfinite(rate) and rate >= -1.0):
            raise ValueError(f"effects[{name!r}]['rate'] must be >= -1, got {rate}.")
        if not 0.0 <= back <= 1.0:
            raise ValueError(f"effects[{name!r}]['reactivation'] must be in [0, 1], got {back}.")
        table[name] = {"rate": rate, "reactivation": back}
    return table


def _spend_shape(simulation: Simulation, latent: np.ndarray) -> np.ndarray:
    """Gamma-Gamma shape ``p`` of each customer's amounts (per latent type for a mixture)."""
    params = simulation.spend_params
    if "p" in params:
        return np.full(latent.size, float(params["p"]))
    return np.array([float(params[t]["p"]) if t in params else 6.0 for t in latent])


# ---- helpers --------------------------------------------------------------------------------


def _bgnbd_types(value: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """ "lapsed" if dropped out; among the alive by λ × mean spend: vip, regular, occasional."""
    latent = np.full(value.size, "lapsed", dtype=object)
    if alive.any():
        vip_cut, regular_cut = np.quantile(value[alive], [0.9, 0.5])
        latent[alive] = np.where(
            value[alive] >= vip_cut,
            "vip",
            np.where(value[alive] >= regular_cut, "regular", "occasional"),
        )
    return latent


def _draw_rows(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One categorical draw per row, from the probability vector of the row's customer."""
    u = rng.random(rows.size)
    code = np.zeros(rows.size, dtype=np.int8)
    cum = np.cumsum(probs, axis=1)
    for j in range(probs.shape[1] - 1):  # loop over categories, not rows
        code += u >= cum[:, j][rows]
    return code


def _argsort_by_time(sec: np.ndarray) -> np.ndarray:
    """Stable argsort of non-negative integer seconds (ties keep the row order)."""
    row_bits = max(1, (sec.size - 1).bit_length())
    if sec.size == 0 or int(sec.max()).bit_length() + row_bits > 63 or int(sec.min()) < 0:
        return np.argsort(sec, kind="stable")
    # With the row number packed below the seconds the keys are unique, so sorting the values
    # (much faster than a stable argsort) gives the stable order.
    key = (sec << row_bits) | np.arange(sec.size, dtype=np.int64)
    key.sort()
    key &= (1 << row_bits) - 1
    return key


def _merge(is_second: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Interleave two arrays: ``second`` where ``is_second``, ``first`` elsewhere, in order."""
    out = np.empty(is_second.size, dtype=np.result_type(first, second))
    out[~is_second] = first
    out[is_second] = second
    return out


def _to_cents(x: np.ndarray) -> np.ndarray:
    return np.maximum(np.round(x, 2), 0.01)


def _to_datetime(start_ts: pd.Timestamp, seconds: np.ndarray, *, inplace: bool = False) -> Any:
    """datetime64[ns] of ``start_ts`` + integer seconds (overwriting ``seconds`` if inplace)."""
    ns = seconds if inplace else np.array(seconds, dtype=np.int64)
    ns *= 1_000_000_000
    ns += start_ts.as_unit("ns").value
    return ns.view("datetime64[ns]")


def _arrow_strings() -> bool:
    """Whether pandas' default string dtype is backed by pyarrow (pandas 3 with pyarrow)."""
    return getattr(pd.array([], dtype="str").dtype, "storage", None) == "pyarrow"


def _labels(labels: tuple[str, ...], codes: np.ndarray) -> Any:
    """``labels[codes]`` in pandas' default string dtype."""
    if _arrow_strings():
        import pyarrow as pa

        taken = pa.array(labels, pa.large_string()).take(pa.array(codes))
        return pd.array(taken, dtype="str")
    return pd.array(np.asarray(labels, dtype=object)[codes], dtype="str")


def _digits(prefix: str, numbers_: np.ndarray, width: int) -> np.ndarray:
    """ASCII codes of ``prefix`` + zero-padded numbers, one row per number."""
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    out = np.empty((numbers_.size, head.size + width), dtype=np.uint8)
    out[:, : head.size] = head
    rest = np.asarray(numbers_, dtype=np.int64).copy()
    for j in range(head.size + width - 1, head.size - 1, -1):  # loop over digits, not rows
        out[:, j] = rest % 10 + ord("0")
        rest //= 10
    return out


def _fixed_width_str(chars: np.ndarray) -> Any:
    """Pandas string array from a (rows, width) matrix of ASCII codes."""
    rows, width = chars.shape
    chars = np.ascontiguousarray(chars)
    if _arrow_strings():
        import pyarrow as pa

        offsets = np.arange(0, (rows + 1) * width, width, dtype=np.int64)
        array = pa.Array.from_buffers(
            pa.large_string(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(chars.reshape(-1))]
        )
        return pd.array(array, dtype="str")
    fixed = chars.view(f"S{width}").reshape(-1)
    return pd.array(fixed.astype(f"U{width}").astype(object), dtype="str")


# ---- validation -----------------------------------------------------------------------------


def _check_n_customers(n_customers: Any) -> int:
    if isinstance(n_customers, bool) or not isinstance(n_customers, numbers.Integral):
        raise TypeError(f"n_customers must be an integer, got {n_customers!r}.")
    if n_customers < 1:
        raise ValueError(f"n_customers must be at least 1, got {n_customers}.")
    return int(n_customers)


def _to_timestamp(value: Any, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a date or timestamp, got {value!r}.") from exc
    if ts is pd.NaT or pd.isna(ts):
        raise ValueError(f"{name} must be a date or timestamp, got {value!r}.")
    if ts.tz is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.as_unit("ns")


def _unit_seconds(time_unit: Any) -> float:
    if not isinstance(time_unit, str):
        raise TypeError(f"time_unit must be a string such as 'W' or 'D', got {time_unit!r}.")
    try:
        seconds = pd.Timedelta(1, unit=time_unit).total_seconds()
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"time_unit must be a fixed-length unit such as 'W' (7 days), 'D' or 'h', got "
            f"{time_unit!r}; calendar months and years are not units."
        ) from exc
    if seconds <= 0:  # pragma: no cover - pandas units are positive
        raise ValueError(f"time_unit {time_unit!r} has no positive length.")
    return seconds


def _check_params(params: Any, keys: tuple[str, ...], name: str) -> dict[str, float]:
    if not isinstance(params, Mapping):
        raise TypeError(f"{name} must be a dict with keys {list(keys)}, got {params!r}.")
    missing = [k for k in keys if k not in params]
    unknown = [k for k in params if k not in keys]
    if missing or unknown:
        raise ValueError(
            f"{name} must have exactly the keys {list(keys)}; missing {missing}, unknown {unknown}."
        )
    out = {}
    for k in keys:
        v = params[k]
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{name}[{k!r}] must be a number, got {v!r}.")
        v = float(v)
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name}[{k!r}] must be finite and positive, got {v}.")
        out[k] = v
    return out


def _per_unit(purchase: dict[str, float], weeks_per_unit: float) -> dict[str, float]:
    """BG/NBD parameters given per week, expressed per time unit (λ scales, so does alpha)."""
    return {**purchase, "alpha": purchase["alpha"] / weeks_per_unit}


def _resolve_population(
    population: Any,
    purchase_params: Any,
    spend_params: Any,
    weeks_per_unit: float,
) -> tuple[str, dict[str, dict[str, Any]]]:
    if isinstance(population, str):
        if population == "bgnbd":
            if purchase_params is None:
                purchase = _per_unit(DEFAULT_PURCHASE_PARAMS, weeks_per_unit)
            else:
                purchase = _check_params(purchase_params, _PURCHASE_KEYS, "purchase_params")
            spend = _check_params(
                DEFAULT_SPEND_PARAMS if spend_params is None else spend_params,
                _SPEND_KEYS,
                "spend_params",
            )
            entry = {
                "share": 1.0,
                "purchase": purchase,
                "spend": spend,
                "engagement": dict(_DEFAULT_ENGAGEMENT),
            }
            return "bgnbd", {"bgnbd": entry}
        if population == "mixture":
            name = "mixture"
            spec: Mapping[str, Any] = {
                k: {**v, "purchase": _per_unit(v["purchase"], weeks_per_unit)}
                for k, v in MIXTURE_TYPES.items()
            }
        else:
            raise ValueError(
                f"population must be 'bgnbd', 'mixture' or a dict of latent types, got "
                f"{population!r}."
            )
    elif isinstance(population, Mapping):
        name, spec = "custom", population
        if not spec:
            raise ValueError("population must define at least one latent type.")
    else:
        raise TypeError(
            f"population must be 'bgnbd', 'mixture' or a dict of latent types, got {population!r}."
        )
    if purchase_params is not None or spend_params is not None:
        raise ValueError(
            "purchase_params and spend_params apply to population='bgnbd'; a mixture's "
            "parameters are given per latent type (see MIXTURE_TYPES)."
        )
    types: dict[str, dict[str, Any]] = {}
    for type_name, entry in spec.items():
        label = f"population[{type_name!r}]"
        if not isinstance(type_name, str) or not isinstance(entry, Mapping):
            raise TypeError(f"{label}: latent types map a name to a dict like MIXTURE_TYPES.")
        unknown = set(entry) - {"share", "purchase", "spend", "engagement"}
        if unknown or not {"share", "purchase", "spend"} <= set(entry):
            raise ValueError(
                f"{label} needs 'share', 'purchase', 'spend' and optionally 'engagement'; "
                f"got keys {sorted(entry)}."
            )
        share = _check_params({"share": entry["share"]}, ("share",), label)["share"]
        types[type_name] = {
            "share": share,
            "purchase": _check_params(entry["purchase"], _PURCHASE_KEYS, f"{label}['purchase']"),
            "spend": _check_params(entry["spend"], _SPEND_KEYS, f"{label}['spend']"),
            "engagement": _check_params(
                entry.get("engagement", _DEFAULT_ENGAGEMENT),
                _ENGAGEMENT_KEYS,
                f"{label}['engagement']",
            ),
        }
    total = sum(t["share"] for t in types.values())
    for t in types.values():
        t["share"] /= total
    return name, types
