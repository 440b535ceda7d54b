"""A scoring service: events in, fresh scores and alerts out, over HTTP (FastAPI).

:func:`create_app` builds the application around an online scorer
(:class:`vipml.online.scorer.OnlineScorer`) and a state store
(:class:`~vipml.online.store.StateStore`, by default :class:`~vipml.online.store.SQLiteStore`):

``POST /events``
    One event (a JSON object) or a batch (a JSON array). A transaction has ``amount``, an
    engagement event has ``event_type``. The events update their customers' states, each
    customer is rescored once (as of their latest event) with the model in use, and the
    answer holds one result per customer: fresh scores and any alerts. A batch is all or
    nothing: a 200 answer means all of it is stored durably (one store transaction), a 422
    that none of it is. Redelivered events are ignored, so re-sending is always safe.
``GET /customers/{customer_id}``
    A customer's scores now (or ``?at=``); 404 for a customer the service has no state for.
``GET /vip``
    Customers in a VIP tier with their scores, best CLV first.
``GET /alerts``
    Alerts after an alert id (``?since=12``) or since a time (``?since=2025-07-01T00:00``).
``GET /health``
    Model version, customers held, whether a new champion is loading.
``GET /openapi.json``
    The OpenAPI schema (``/docs`` renders it).

Errors are answered, never raised at the client: malformed JSON gets 400, an invalid event
422 naming the field (``loc``) and the reason (``msg``), a batch over ``max_batch`` events
413, a timestamp further in the future than ``future_tolerance`` 422, a missing or wrong
bearer token 401; the service keeps serving after each.

Following the champion: given a :class:`~vipml.registry.Registry`, the service reads its
``champion`` pointer at most every ``check_interval`` seconds (one small file read, on the
request path). When it names another version, that bundle is loaded and verified in a
background thread while requests go on being served with the current model; the new
scorer is then swapped in with one reference assignment, so every request is served whole by
one model or the other and none is dropped. A bundle that fails to load is logged and the
current model stays in use.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd

from vipml.errors import DataValidationError

try:
    from fastapi import Depends, FastAPI, HTTPException, Query, Request
    from fastapi.openapi.utils import get_openapi
    from fastapi.responses import JSONResponse
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
    from pydantic import (
        BaseModel,
        ConfigDict,
        Discriminator,
        Field,
        Strict,
        Tag,
        TypeAdapter,
        ValidationError,
        WithJsonSchema,
    )
    from pydantic.functional_validators import PlainValidator
    from starlette.concurrency import run_in_threadpool
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "vipml.serve needs the 'serve' extra (FastAPI and uvicorn): pip install 'vipml[serve]'."
    ) from exc

__all__ = [
    "EngagementEvent",
    "ModelFollower",
    "Transaction",
    "create_app",
    "seed_store",
]

logger = logging.getLogger(__name__)

#: Default largest batch ``POST /events`` accepts (more is answered with 413).
MAX_BATCH = 1000
#: Default bytes a request body may have (more is answered with 413 before it is read).
MAX_BODY_BYTES = 4 * 1024 * 1024
#: How far ahead of the server's clock an event's timestamp may be.
FUTURE_TOLERANCE = dt.timedelta(minutes=5)

# -- payloads ---------------------------------------------------------------------------------


def _identifier(value: Any) -> str | int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"must be a string or an integer, got {type(value).__name__}")
    if isinstance(value, str) and not 0 < len(value) <= 200:
        raise ValueError("must be a string of 1 to 200 characters")
    return value


_ID_SCHEMA = {"anyOf": [{"type": "string", "minLength": 1, "maxLength": 200}, {"type": "integer"}]}
CustomerId = Annotated[Any, PlainValidator(_identifier), WithJsonSchema(_ID_SCHEMA)]
Finite = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Name = Annotated[str, Strict(), Field(min_length=1, max_length=200)]


class Transaction(BaseModel):
    """A purchase (positive ``amount``) or a return (negative), as the batch logs hold it."""

    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerId
    timestamp: dt.datetime = Field(
        description="ISO 8601; without a time zone it is UTC, with one it is converted."
    )
    amount: Finite
    order_id: CustomerId | None = None
    channel: Name | None = None
    category: Name | None = None
    quantity: Finite | None = None


class EngagementEvent(BaseModel):
    """An engagement event (a visit, an e-mail open, a review with a sentiment ``value``...)."""

    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerId
    timestamp: dt.datetime = Field(
        description="ISO 8601; without a time zone it is UTC, with one it is converted."
    )
    event_type: Name
    channel: Name | None = None
    value: Finite | None = None


def _kind(value: Any) -> str | None:
    if isinstance(value, Mapping):
        if "amount" in value:
            return "transaction"
        if "event_type" in value:
            return "event"
        return None
    if isinstance(value, Transaction):
        return "transaction"
    if isinstance(value, EngagementEvent):
        return "event"
    return None


Event = Annotated[
    Annotated[Transaction, Tag("transaction")] | Annotated[EngagementEvent, Tag("event")],
    Discriminator(
        _kind,
        custom_error_type="event_kind",
        custom_error_message=(
            "an event must be a JSON object with 'amount' (a transaction) or 'event_type' "
            "(an engagement event)"
        ),
    ),
]
_EVENTS = TypeAdapter(list[Event])
_PAYLOAD_SCHEMA = TypeAdapter(Event | list[Event])


def _utc_naive(stamp: dt.datetime) -> dt.datetime:
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return stamp


def _record(event: Transaction | EngagementEvent) -> dict[str, Any]:
    """The event as the online state reads it: UTC-naive timestamp, no unset fields."""
    record = event.model_dump(exclude_none=True)
    record["timestamp"] = pd.Timestamp(_utc_naive(event.timestamp))
    return record


# -- JSON helpers -----------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """Scores as JSON: numpy scalars unwrapped, NaN and infinities as null, times as ISO."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _rows(scores: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for customer_id, row in zip(scores.index, scores.to_dict("records"), strict=True):
        out.append({"customer_id": _jsonable(customer_id), "scores": _jsonable(row)})
    return out


def _error(status: int, loc: Sequence[Any], msg: str, kind: str) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"detail": [{"loc": list(loc), "msg": msg, "type": kind}]}
    )


# -- the model in use -------------------------------------------------------------------------


def _default_factory(pipeline: Any, store: Any) -> Any:
    from vipml.online.scorer import OnlineScorer

    return OnlineScorer(pipeline, store=store)


@dataclass(frozen=True)
class _Current:
    version: str
    scorer: Any


class ModelFollower:
    """The scorer in use, following a registry's champion (or fixed on one model).

    Parameters
    ----------
    source : Registry, path-like or VipPipeline
        A registry (its champion is followed), a bundle folder, or a fitted pipeline.
    store : StateStore
        Where the customers' states and the alerts are kept.
    scorer_factory : callable, optional
        ``factory(pipeline, store)`` → scorer; default
        :class:`vipml.online.scorer.OnlineScorer`.
    allow_pickle : bool, default False
        Load bundles with pickle (False: JSON and LightGBM text only, identical scores).
    check_interval : float, default 2.0
        Seconds between two reads of the champion pointer.

    Examples
    --------
    >>> from vipml import VipPipeline
    >>> from vipml.data import simulate
    >>> class Echo:  # a stand-in scorer
    ...     def __init__(self, pipeline, store):
    ...         self.pipeline = pipeline
    >>> follower = ModelFollower(VipPipeline(), store=None, scorer_factory=Echo)
    >>> follower.version
    'in-memory'
    """

    def __init__(
        self,
        source: Any,
        store: Any,
        *,
        scorer_factory: Callable[[Any, Any], Any] | None = None,
        allow_pickle: bool = False,
        check_interval: float = 2.0,
    ) -> None:
        from vipml.registry import Registry

        self.store = store
        self.allow_pickle = allow_pickle
        self.check_interval = float(check_interval)
        self._factory = scorer_factory or _default_factory
        self._registry: Registry | None = source if isinstance(source, Registry) else None
        self._lock = threading.Lock()
        self._loading: str | None = None
        self._failed: dict[str, float] = {}
        self._next_check = 0.0
        #: Called with the new scorer before it is swapped in, without a lock held (e.g. to
        #: build an index under it), then again with ``commit=True`` under ``swap_lock``.
        self.on_swap: Callable[..., None] | None = None
        #: Held while the new scorer is swapped in (a service shares its writers' lock).
        self.swap_lock: Any = threading.Lock()
        if self._registry is not None:
            version = self._registry.champion()
            if version is None:
                from vipml.errors import BundleError

                raise BundleError(
                    f"Registry {self._registry.root} has no champion yet; train or promote "
                    "a version first."
                )
            pipeline = self._load(version)
        elif isinstance(source, str | Path):
            from vipml.registry import bundle_version

            version = bundle_version(source)
            pipeline = self._load_path(Path(source))
        else:
            version, pipeline = "in-memory", source
        self._current = _Current(version, self._factory(pipeline, store))
        self._next_check = time.monotonic() + self.check_interval

    def _load_path(self, path: Path) -> Any:
        from vipml import bundle

        return bundle.load(path, allow_pickle=self.allow_pickle)

    def _load(self, version: str) -> Any:
        assert self._registry is not None
        return self._load_path(self._registry.path(version))

    @property
    def version(self) -> str:
        """The version in use."""
        return self._current.version

    @property
    def scorer(self) -> Any:
        """The scorer in use."""
        return self._current.scorer

    @property
    def current(self) -> _Current:
        """Version and scorer in use, as one consistent pair."""
        return self._current

    @property
    def loading(self) -> str | None:
        """The version being loaded in the background, if any."""
        return self._loading

    def check(self, *, wait: bool = False) -> None:
        """Look at the champion pointer (at most every ``check_interval`` s) and follow it.

        Parameters
        ----------
        wait : bool, default False
            Look now, and load a new champion in this thread (tests, start-up); by default
            a new champion is loaded in a background thread.
        """
        if self._registry is None:
            return
        now = time.monotonic()
        if not wait and now < self._next_check:
            return
        self._next_check = now + self.check_interval
        try:
            version = self._registry.champion()
        except Exception as exc:  # a damaged pointer must not stop the service
            logger.error("cannot read the champion pointer: %s", exc)
            return
        if version is None or version == self._current.version:
            return
        if self._failed.get(version, -math.inf) > now - 60.0 and not wait:
            return  # failed recently: retry after a minute
        with self._lock:
            if self._loading is not None:
                return
            self._loading = version
        if wait:
            self._swap_to(version)
        else:
            threading.Thread(
                target=self._swap_to, args=(version,), name=f"vipml-load-{version}", daemon=True
            ).start()

    def _swap_to(self, version: str) -> None:
        try:
            started = time.perf_counter()
            pipeline = self._load(version)
            scorer = self._factory(pipeline, self.store)
            old = self._current
            if self.on_swap is not None:
                self.on_swap(scorer)
            with self.swap_lock:
                if self.on_swap is not None:
                    self.on_swap(scorer, commit=True)
                self._current = _Current(version, scorer)  # one assignment: atomic for readers
            logger.info(
                "now serving %s (was %s; loaded in %.2f s)",
                version,
                old.version,
                time.perf_counter() - started,
            )
        except Exception as exc:
            self._failed[version] = time.monotonic()
            logger.error(
                "could not load champion %s, still serving %s: %s", version, self.version, exc
            )
        finally:
            self._loading = None


# -- what the routes do -----------------------------------------------------------------------


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class _Service:
    """The routes' work, independent of HTTP: one writer at a time, a VIP index."""

    def __init__(
        self,
        follower: ModelFollower,
        store: Any,
        *,
        clock: Callable[[], dt.datetime],
        future_tolerance: dt.timedelta,
    ) -> None:
        self.follower = follower
        self.store = store
        self.clock = clock
        self.future_tolerance = future_tolerance
        self.write_lock = threading.Lock()
        # customers whose latest scoring placed them in a named tier -> that tier
        self.vip: dict[Any, str] = {}
        self._touched: set[Any] | None = None
        self._pending: dict[Any, str] = {}
        follower.on_swap = self._rebuild_for
        follower.swap_lock = self.write_lock

    # -- the VIP index ----------------------------------------------------------------------

    def _tiers(self, scorer: Any) -> tuple[str, ...]:
        return tuple(scorer.pipeline.config_.tiers.names)

    def _index(self, scorer: Any, ids: Iterable[Any], at: dt.datetime) -> dict[Any, str]:
        names = self._tiers(scorer)
        found: dict[Any, str] = {}
        ids = list(ids)
        for start in range(0, len(ids), 5000):
            scores = _score_ids(scorer, ids[start : start + 5000], at, clamp=True)
            tiers = scores["vip_tier"]
            found.update((k, t) for k, t in tiers.items() if t in names)
        return found

    def build_index(self) -> None:
        """Score every stored customer now and keep those in a named tier."""
        started = time.perf_counter()
        ids = [customer_id for customer_id, _ in self.store.items()]
        self.vip = self._index(self.follower.scorer, ids, self.clock())
        logger.info(
            "VIP index: %d of %d customers in a named tier (%.1f s)",
            len(self.vip),
            len(ids),
            time.perf_counter() - started,
        )

    def _rebuild_for(self, new: Any, *, commit: bool = False) -> None:
        """The VIP index under a new model: built aside, then (``commit``) swapped in.

        ``commit`` runs under the writers' lock: the customers updated while the index was
        built are rescored with the new model, and the index replaces the current one.
        """
        if not commit:
            with self.write_lock:
                self._touched = set()
            ids = [customer_id for customer_id, _ in self.store.items()]
            self._pending = self._index(new, ids, self.clock())
            return
        touched, self._touched = self._touched or set(), None
        index = {k: v for k, v in self._pending.items() if k not in touched}
        index.update(self._index(new, touched, self.clock()))
        self.vip, self._pending = index, {}

    # -- events -----------------------------------------------------------------------------

    def future_errors(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        limit = self.clock() + self.future_tolerance
        errors = []
        for i, record in enumerate(records):
            if record["timestamp"].to_pydatetime() > limit:
                ahead = record["timestamp"] - (limit - self.future_tolerance)
                errors.append(
                    {
                        "loc": ["body", i, "timestamp"],
                        "msg": (
                            f"timestamp {record['timestamp'].isoformat()} is {ahead} ahead of "
                            f"the server's clock (UTC); at most {self.future_tolerance} is "
                            "tolerated. Send events when they happen, with UTC or time-zone "
                            "aware timestamps."
                        ),
                        "type": "future_timestamp",
                    }
                )
        return errors

    def apply(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Apply a batch all or nothing: one rescoring per customer, one durable store write.

        Raises
        ------
        _BatchError
            An event the scorer refused (a late row, ...); nothing of the batch is stored.
        """
        out = []
        with self.write_lock:
            current = self.follower.current
            names = self._tiers(current.scorer)
            try:
                results = current.scorer.update_many(records)
            except (DataValidationError, ValueError) as exc:
                raise _BatchError(current.version, exc) from exc
            for result in results:
                customer_id = result.customer_id
                if result.scores is not None:
                    if result.scores.get("vip_tier") in names:
                        self.vip[customer_id] = result.scores["vip_tier"]
                    else:
                        self.vip.pop(customer_id, None)
                if self._touched is not None:
                    self._touched.add(customer_id)
                out.append(
                    {
                        "customer_id": _jsonable(customer_id),
                        "applied": bool(result.applied),
                        "at": _jsonable(result.at),
                        "scores": _jsonable(result.scores),
                        "alerts": _jsonable(list(result.alerts)),
                    }
                )
        return {"version": current.version, "accepted": len(records), "results": out}

    def scores(self, ids: Sequence[Any], at: dt.datetime | None) -> tuple[str, pd.DataFrame]:
        """Scores as of ``at`` (None: now, or a customer's latest event if later)."""
        current = self.follower.current
        try:
            scores = _score_ids(current.scorer, ids, at or self.clock(), clamp=at is None)
        except ValueError as exc:
            raise HTTPException(
                status_code=422,
                detail=[{"loc": ["query", "at"], "msg": str(exc), "type": "value_error"}],
            ) from exc
        return current.version, scores


class _BatchError(Exception):
    def __init__(self, version: str, error: Exception) -> None:
        super().__init__(str(error))
        self.version, self.error = version, error


def _score_ids(
    scorer: Any, ids: Iterable[Any], at: dt.datetime, *, clamp: bool = False
) -> pd.DataFrame:
    """Scores as of ``at`` of the stored customers among ``ids`` who have a purchase.

    ``clamp`` scores a customer whose latest event is after ``at`` (by less than the future
    tolerance) as of that event instead.

    Raises
    ------
    ValueError
        ``at`` before a customer's latest event (without ``clamp``).
    """
    from vipml.features.online import _instant

    states = [state for state in map(scorer.state, ids) if state is not None]
    empty = pd.DataFrame(columns=["vip_tier", "clv"])
    if not states:
        return empty
    at_us = _instant(pd.Timestamp(at))
    moments = [max(at_us, s.watermark or at_us) if clamp else at_us for s in states]
    table = scorer.features(states, moments)
    return scorer.pipeline.score_features(table) if len(table) else empty


def _customer_keys(customer_id: str) -> list[Any]:
    """A path's id as stored: the string, and the integer it spells (ids may be either)."""
    keys: list[Any] = [customer_id]
    if customer_id.lstrip("-").isdigit():
        keys.append(int(customer_id))
    return keys


def _moment(at: str | None, clock: Callable[[], dt.datetime]) -> dt.datetime:
    if at is None:
        return clock()
    try:
        stamp = pd.Timestamp(at)
    except (TypeError, ValueError):
        stamp = pd.NaT
    if stamp is pd.NaT:
        raise HTTPException(
            status_code=422,
            detail=[
                {
                    "loc": ["query", "at"],
                    "msg": f"at={at!r} is not a time; pass ISO 8601, e.g. 2025-07-01T12:00",
                    "type": "datetime_parsing",
                }
            ],
        )
    return _utc_naive(stamp.to_pydatetime())


# -- the application --------------------------------------------------------------------------


def create_app(
    model: Any,
    store: Any,
    *,
    token: str | None = None,
    max_batch: int = MAX_BATCH,
    max_body_bytes: int = MAX_BODY_BYTES,
    future_tolerance: dt.timedelta | str = FUTURE_TOLERANCE,
    check_interval: float = 2.0,
    allow_pickle: bool = False,
    scorer_factory: Callable[[Any, Any], Any] | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> FastAPI:
    """The scoring service as a FastAPI application (run it with uvicorn).

    Parameters
    ----------
    model : Registry, path-like, ModelFollower or VipPipeline
        A :class:`~vipml.registry.Registry` (its champion is served and followed), a bundle
        folder, or a fitted pipeline.
    store : StateStore or path-like
        The customers' states and the alerts; a path opens a
        :class:`~vipml.online.store.SQLiteStore` there.
    token : str, optional
        Bearer token every route but the schema requires (401 without it).
    max_batch : int, default 1000
        Most events one ``POST /events`` may carry (413 beyond).
    max_body_bytes : int, default 4 MiB
        Largest request body (413 beyond, refused before it is read).
    future_tolerance : timedelta or str, default 5 minutes
        How far ahead of the server's clock a timestamp may be (422 beyond).
    check_interval : float, default 2.0
        Seconds between two reads of the registry's champion pointer.
    allow_pickle : bool, default False
        Load bundles with pickle (False: the pickle-free path, identical scores).
    scorer_factory : callable, optional
        ``factory(pipeline, store)`` → scorer (default :class:`~vipml.online.scorer.OnlineScorer`).
    clock : callable, optional
        Current UTC time as a naive datetime (default: the system clock).

    Returns
    -------
    fastapi.FastAPI

    Raises
    ------
    BundleError
        No champion in the registry, or a bundle that does not verify.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from fastapi.testclient import TestClient
    >>> from vipml import VipPipeline, bundle
    >>> from vipml.data import simulate
    >>> from vipml.registry import Registry
    >>> sim = simulate(300, "2024-01-01", "2025-06-30", random_state=3)
    >>> pipe = VipPipeline({"churn": {"lgbm_params": {"num_boost_round": 10}},
    ...                     "ltv": {"n_draws": 10}, "segments": {"n_segments": 3}})
    >>> pipe = pipe.fit(sim.transactions, cutoff="2025-03-31")
    >>> tmp = tempfile.TemporaryDirectory()
    >>> registry = Registry(pathlib.Path(tmp.name) / "models")
    >>> registry.promote(registry.publish(lambda folder: bundle.save(pipe, folder)))
    >>> app = create_app(registry, pathlib.Path(tmp.name) / "state.sqlite")
    >>> with TestClient(app) as client:
    ...     ack = client.post("/events", json={"customer_id": "C1", "amount": 25.0,
    ...                                        "timestamp": "2025-07-01T10:00:00"})
    ...     ack.status_code, ack.json()["results"][0]["applied"]
    ...     client.get("/customers/C1").json()["scores"]["vip_tier"] in ("VIP", "Gold", "Standard")
    ...     client.get("/customers/nobody").status_code
    ...     client.post("/events", json={"customer_id": "C1", "amount": "lots",
    ...                                  "timestamp": "2025-07-01"}).json()["detail"][0]["loc"]
    (200, True)
    True
    404
    ['body', 0, 'amount']
    >>> tmp.cleanup()
    """
    from vipml.features.cycle import parse_duration
    from vipml.online.store import SQLiteStore

    if isinstance(store, str | Path):
        store = SQLiteStore(store)
    if max_batch < 1:
        raise ValueError(f"max_batch must be at least 1, got {max_batch!r}.")
    tolerance = parse_duration(future_tolerance, "future_tolerance")
    follower = (
        model
        if isinstance(model, ModelFollower)
        else ModelFollower(
            model,
            store,
            scorer_factory=scorer_factory,
            allow_pickle=allow_pickle,
            check_interval=check_interval,
        )
    )
    service = _Service(follower, store, clock=clock or _utcnow, future_tolerance=tolerance)
    bearer = HTTPBearer(auto_error=False, description="The token given to `vipml serve`.")

    def authorised(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> None:
        if token is None:
            return
        if credentials is None or not hmac.compare_digest(
            credentials.credentials.encode(), token.encode()
        ):
            raise HTTPException(
                status_code=401,
                detail="missing or wrong bearer token: send 'Authorization: Bearer <token>'.",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def follow() -> None:
        follower.check()

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        await run_in_threadpool(service.build_index)
        yield

    app = FastAPI(
        title="vipml scoring service",
        version=follower.version,
        summary="Customer states kept current as events arrive; scores, VIP tiers and alerts.",
        dependencies=[Depends(authorised), Depends(follow)],
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.follower = follower

    @app.exception_handler(DataValidationError)
    async def _invalid_data(request: Request, exc: DataValidationError) -> JSONResponse:
        where = ["body"] if request.method == "POST" else []
        return _error(422, where, str(exc), type(exc).__name__)

    @app.post(
        "/events",
        summary="Apply one event or a batch; rescore the customers",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Events"}}
                },
            }
        },
        responses={
            400: {"description": "Malformed JSON"},
            413: {"description": "Too many events or too large a body"},
            422: {"description": "An invalid event (field and reason in `detail`)"},
        },
    )
    async def post_events(request: Request) -> JSONResponse:
        """One event (an object) or a batch (an array), stored durably before the answer."""
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body_bytes:
            return _error(
                413,
                ["body"],
                f"request body of {int(length)} bytes is over the limit of {max_body_bytes}; "
                f"send at most {max_batch} events per request.",
                "body_too_large",
            )
        body = await request.body()
        if len(body) > max_body_bytes:
            return _error(
                413,
                ["body"],
                f"request body of {len(body)} bytes is over the limit of {max_body_bytes}.",
                "body_too_large",
            )
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, ["body"], f"malformed JSON: {exc}", "json_invalid")
        batch = payload if isinstance(payload, list) else [payload]
        if len(batch) > max_batch:
            return _error(
                413,
                ["body"],
                f"batch of {len(batch)} events is over the limit of {max_batch}; split it.",
                "batch_too_large",
            )
        if not batch:
            return _error(422, ["body"], "the batch is empty; send at least one event", "empty")
        try:
            events = _EVENTS.validate_python(batch)
        except ValidationError as exc:
            detail = [
                {
                    "loc": ["body", *err["loc"][:1], *err["loc"][2:]],
                    "msg": err["msg"],
                    "type": err["type"],
                }
                for err in exc.errors(include_url=False, include_context=False)
            ]
            return JSONResponse(status_code=422, content={"detail": _jsonable(detail)})
        records = [_record(e) for e in events]
        future = service.future_errors(records)
        if future:
            return JSONResponse(status_code=422, content={"detail": future})
        try:
            result = await run_in_threadpool(service.apply, records)
        except _BatchError as exc:
            return JSONResponse(
                status_code=422,
                content={
                    "detail": [
                        {
                            "loc": ["body"],
                            "msg": f"{exc.error} Nothing of this request was stored.",
                            "type": type(exc.error).__name__,
                        }
                    ],
                    "version": exc.version,
                },
            )
        return JSONResponse(result)

    @app.get("/customers/{customer_id}", summary="A customer's current scores")
    def get_customer(
        customer_id: str,
        at: Annotated[str | None, Query(description="Score at this time (default: now).")] = None,
    ) -> dict[str, Any]:
        moment = _moment(at, service.clock)
        for key in _customer_keys(customer_id):
            if store.get(key) is not None:
                version, scores = service.scores([key], None if at is None else moment)
                if len(scores):
                    row = _rows(scores)[0]
                    return {"version": version, "at": moment.isoformat(), **row}
                return {  # events but no purchase yet: the models score buyers
                    "version": version,
                    "at": moment.isoformat(),
                    "customer_id": key,
                    "scores": None,
                }
        raise HTTPException(
            status_code=404,
            detail=f"no customer {customer_id!r}: the service has seen no event of theirs.",
        )

    @app.get("/vip", summary="Customers in a VIP tier, best CLV first")
    def get_vip(
        at: Annotated[str | None, Query(description="Score at this time (default: now).")] = None,
        tier: Annotated[str | None, Query(description="Only this tier.")] = None,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    ) -> dict[str, Any]:
        moment = _moment(at, service.clock)
        names = service._tiers(follower.scorer)
        if tier is not None and tier not in names:
            raise HTTPException(
                status_code=422,
                detail=[
                    {
                        "loc": ["query", "tier"],
                        "msg": f"unknown tier {tier!r}; the model's tiers are {list(names)}",
                        "type": "enum",
                    }
                ],
            )
        candidates = list(service.vip)
        if not candidates:
            return {
                "version": follower.version,
                "at": moment.isoformat(),
                "count": 0,
                "customers": [],
            }
        version, scores = service.scores(candidates, None if at is None else moment)
        wanted = [tier] if tier is not None else list(names)
        scores = scores[scores["vip_tier"].isin(wanted)]
        scores = scores.sort_values("clv", ascending=False, kind="stable").head(limit)
        return {
            "version": version,
            "at": moment.isoformat(),
            "count": len(scores),
            "customers": _rows(scores),
        }

    @app.get("/alerts", summary="Alerts after an alert id or since a time")
    def get_alerts(
        since: Annotated[
            str, Query(description="An alert id (alerts after it) or an ISO 8601 time.")
        ] = "0",
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> dict[str, Any]:
        if since.isdigit():
            stored = store.alerts_since(int(since), limit=limit)
        else:
            stored = store.alerts_at_or_after(_moment(since, service.clock), limit=limit)
        alerts = [{"id": a.id, **a.alert} for a in stored]
        return {"alerts": _jsonable(alerts), "last_id": alerts[-1]["id"] if alerts else None}

    @app.get("/health", summary="Model version and customers held")
    def get_health() -> dict[str, Any]:
        current = follower.current
        pipeline = current.scorer.pipeline
        return {
            "status": "ok",
            "model_version": current.version,
            "model_cutoff": pipeline.cutoff_.isoformat(),
            "loading": follower.loading,
            "customers": _count(store),
            "vip_customers": len(service.vip),
        }

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            events = _PAYLOAD_SCHEMA.json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(events.pop("$defs", {}))
            components["Events"] = events
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


SEEDED = "vipml.serve.seeded"


def seed_store(scorer: Any, transactions: Any = None, events: Any = None, *, cutoff: Any) -> int:
    """Fill an empty store with every customer's state at ``cutoff``, built from the logs.

    The scorer's :meth:`~vipml.online.scorer.OnlineScorer.bootstrap` writes all states in
    one store transaction; the store is then marked as seeded. A store that already holds
    states is left as it is (a restart keeps what it had; the logs are not applied again).

    Parameters
    ----------
    scorer : OnlineScorer
        The scorer, with the (empty) store to fill.
    transactions, events : DataFrame-like, optional
        The history (see :func:`vipml.features.online.states_from_logs`).
    cutoff : str or datetime
        Rows after it are not applied (stream them as events).

    Returns
    -------
    int
        Customers written (0 when the store already held states, or without logs).

    Raises
    ------
    DataValidationError
        The store holds states but was never completely seeded (a seeding was interrupted):
        remove the file and start again.

    Examples
    --------
    >>> import tempfile
    >>> from vipml import VipPipeline
    >>> from vipml.data import simulate
    >>> from vipml.online.scorer import OnlineScorer
    >>> from vipml.online.store import SQLiteStore
    >>> sim = simulate(300, "2024-01-01", "2025-06-30", random_state=4)
    >>> pipe = VipPipeline({"churn": {"lgbm_params": {"num_boost_round": 10}},
    ...                     "ltv": {"n_draws": 10}, "segments": {"n_segments": 3}})
    >>> pipe = pipe.fit(sim.transactions, cutoff="2025-03-31")
    >>> folder = tempfile.TemporaryDirectory()
    >>> scorer = OnlineScorer(pipe, store=SQLiteStore(f"{folder.name}/state.sqlite"))
    >>> seeded = seed_store(scorer, sim.transactions, cutoff="2025-06-30")
    >>> seeded == sim.transactions["customer_id"].nunique()
    True
    >>> seed_store(scorer, sim.transactions, cutoff="2025-06-30")  # already seeded
    0
    >>> scorer.store.close(); folder.cleanup()
    """
    if transactions is None and events is None:
        return 0
    store = scorer.store
    if next(iter(store.items()), None) is not None:
        if store.get_meta(SEEDED) is None:
            raise DataValidationError(
                "the state store holds customers but its seeding from the logs did not "
                "finish; remove the state file and start the service again."
            )
        logger.info("the state store already holds customers: the logs are not applied again")
        return 0
    count = int(scorer.bootstrap(transactions, events, cutoff=cutoff))
    store.set_meta(SEEDED, json.dumps({"cutoff": str(cutoff), "customers": count}))
    logger.info("seeded %d customers' states from the logs up to %s", count, cutoff)
    return count


def _count(store: Any) -> int | None:
    try:
        return len(store)
    except TypeError:
        return None
