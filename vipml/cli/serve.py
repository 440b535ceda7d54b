"""``vipml serve``: the scoring service (needs the ``serve`` extra: FastAPI and uvicorn)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vipml.cli._io import ExitCode, fail, read_table, stage


def serve(
    model: Annotated[
        str, typer.Option("--model", help='Version to serve, or "champion" (followed).')
    ] = "champion",
    registry: Annotated[Path, typer.Option("--registry", help="Model registry folder.")] = Path(
        "models"
    ),
    state: Annotated[
        Path, typer.Option("--state", help="SQLite file of the customers' states and alerts.")
    ] = Path("state.sqlite"),
    host: Annotated[
        str, typer.Option("--host", help="Address to bind (loopback unless told otherwise).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help="File holding the bearer token clients must send."),
    ] = None,
    transactions: Annotated[
        Path | None,
        typer.Option("--transactions", help="Transaction history to seed an empty state from."),
    ] = None,
    events: Annotated[
        Path | None,
        typer.Option("--events", help="Engagement-event history to seed an empty state from."),
    ] = None,
    seed_until: Annotated[
        str | None,
        typer.Option("--seed-until", help="Seed with the history up to this time (default: now)."),
    ] = None,
    max_batch: Annotated[int, typer.Option(help="Most events per POST /events.")] = 1000,
    future_tolerance: Annotated[
        str, typer.Option(help='How far ahead timestamps may be, e.g. "5min".')
    ] = "5min",
    check_interval: Annotated[
        float, typer.Option(help="Seconds between two looks at the champion pointer.")
    ] = 2.0,
    synchronous: Annotated[
        str,
        typer.Option(help='SQLite durability: "FULL" (fsync per batch) or "NORMAL".'),
    ] = "FULL",
    pickle: Annotated[
        bool, typer.Option(help="Allow unpickling bundles (default: JSON and LightGBM only).")
    ] = False,
) -> None:
    """Serve scores over HTTP: POST /events, GET /customers/{id}, /vip, /alerts, /health.

    Every acknowledged event is on disk in the state file, so a restart on the same file
    loses nothing. With --model champion the registry's champion pointer is followed: a
    newly promoted version is loaded aside and swapped in without dropping requests.
    """
    try:
        import uvicorn

        from vipml.serve import create_app, seed_store
    except ImportError as exc:
        raise fail(
            f"{exc}. Install the serve extra: pip install 'vipml[serve]'.", ExitCode.BAD_INPUT
        ) from None
    import datetime as dt

    from vipml.online.store import SQLiteStore
    from vipml.registry import Registry
    from vipml.serve import SEEDED, ModelFollower

    token = None
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise fail(
                f"cannot read the token file {token_file}: {exc}", ExitCode.BAD_INPUT
            ) from None
        if not token:
            raise fail(f"the token file {token_file} is empty.", ExitCode.BAD_INPUT)
    if synchronous not in ("FULL", "NORMAL"):
        raise fail(
            f"--synchronous must be FULL or NORMAL, not {synchronous!r}.", ExitCode.BAD_INPUT
        )
    reg = Registry(registry)
    source = reg if model == "champion" else reg.path(model)
    store = SQLiteStore(state, synchronous=synchronous)  # type: ignore[arg-type]
    with stage(f"loading model {model}"):
        follower = ModelFollower(source, store, allow_pickle=pickle, check_interval=check_interval)
    if transactions is not None or events is not None:
        columns = follower.scorer.pipeline.config_.columns
        with stage("reading the history"):
            tx = (
                None
                if transactions is None
                else read_table(transactions, "transactions", columns.timestamp)
            )
            ev = None if events is None else read_table(events, "events", columns.timestamp)
        until = seed_until or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat()
        with stage("seeding the customers' states from the history"):
            seeded = seed_store(follower.scorer, tx, ev, cutoff=until)
        if seeded:
            typer.echo(f"seeded {seeded:,} customers from the history up to {until}")
    elif store.get_meta(SEEDED) is None and next(iter(store.items()), None) is None:
        store.set_meta(SEEDED, '{"customers": 0}')
    app = create_app(
        follower,
        store,
        token=token,
        max_batch=max_batch,
        future_tolerance=future_tolerance,
    )
    typer.echo(f"serving model {follower.version} on http://{host}:{port} (state: {state})")
    uvicorn.run(app, host=host, port=port, log_level="warning")
