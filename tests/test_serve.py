"""The scoring service: validation, tokens, scores equal to batch, restarts, champion swaps."""

from __future__ import annotations

import copy
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from vipml import VipPipeline, bundle
from vipml.data import simulate
from vipml.online.scorer import OnlineScorer
from vipml.online.store import SQLiteStore
from vipml.registry import Registry
from vipml.serve import ModelFollower, create_app, seed_store

CUTOFF = "2025-03-31"  # the models' fit
SEED_UNTIL = "2025-05-31"  # the states' history
END = "2025-06-30"  # what is streamed through the service
NOW = dt.datetime(2025, 6, 30, 23, 59, 59, 999999)  # the service's clock: end of END


@pytest.fixture(scope="module")
def sim():
    return simulate(400, "2024-01-01", END, random_state=11)


@pytest.fixture(scope="module")
def pipeline(sim):
    config = {
        "churn": {"lgbm_params": {"num_boost_round": 15}},
        "ltv": {"n_draws": 10},
        "segments": {"n_segments": 3},
    }
    return VipPipeline(config).fit(sim.transactions, sim.events, cutoff=CUTOFF)


@pytest.fixture(scope="module")
def registry_root(tmp_path_factory, pipeline) -> Path:
    root = tmp_path_factory.mktemp("serve") / "models"
    registry = Registry(root)
    registry.promote(registry.publish(lambda folder: bundle.save(pipeline, folder)))
    return root


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON-ready events (ISO timestamps, no missing fields)."""
    out = []
    for row in frame.to_dict("records"):
        event = {k: v for k, v in row.items() if not pd.isna(v)}
        event["timestamp"] = pd.Timestamp(event["timestamp"]).isoformat()
        out.append(event)
    return out


def later_rows(sim, start: str, end: str) -> list[dict]:
    lo, hi = pd.Timestamp(start) + pd.Timedelta(days=1), pd.Timestamp(end) + pd.Timedelta(days=1)
    tx, ev = sim.transactions, sim.events
    rows = pd.concat(
        [
            tx[(tx["timestamp"] >= lo) & (tx["timestamp"] < hi)],
            ev[(ev["timestamp"] >= lo) & (ev["timestamp"] < hi)],
        ]
    ).sort_values("timestamp", kind="stable")
    return records(rows)


def app_for(root: Path, tmp_path: Path, **options):
    options.setdefault("clock", lambda: NOW)
    return create_app(Registry(root), tmp_path / "state.sqlite", **options)


# -- validation -------------------------------------------------------------------------------

GOOD = {"customer_id": "C1", "timestamp": "2025-06-01T10:00:00", "amount": 20.0}


@pytest.mark.parametrize(
    ("body", "status", "loc", "words"),
    [
        ('{"customer_id": "C1", "amount": ', 400, ["body"], "malformed JSON"),
        ("not json at all", 400, ["body"], "malformed JSON"),
        ({**GOOD, "amount": "twenty"}, 422, ["body", 0, "amount"], "valid number"),
        ({**GOOD, "amount": None}, 422, ["body", 0, "amount"], "valid number"),
        ({**GOOD, "customer_id": 1.5}, 422, ["body", 0, "customer_id"], "string or an integer"),
        ({**GOOD, "customer_id": ""}, 422, ["body", 0, "customer_id"], "1 to 200"),
        ({**GOOD, "timestamp": "yesterday"}, 422, ["body", 0, "timestamp"], "datetime"),
        ({**GOOD, "colour": "red"}, 422, ["body", 0, "colour"], "Extra inputs"),
        ({**GOOD, "event_type": "visit"}, 422, ["body", 0, "event_type"], "Extra inputs"),
        ({"customer_id": "C1", "timestamp": "2025-06-01"}, 422, ["body", 0], "'amount'"),
        ([GOOD, {**GOOD, "quantity": "3"}], 422, ["body", 1, "quantity"], "valid number"),
        (
            {"customer_id": "C1", "timestamp": "2025-06-01", "event_type": ""},
            422,
            ["body", 0, "event_type"],
            "at least 1 character",
        ),
        ([], 422, ["body"], "empty"),
        ("42", 422, ["body", 0], "'amount'"),
        ({**GOOD, "timestamp": "2025-07-01T00:06:00"}, 422, ["body", 0, "timestamp"], "ahead"),
        ({**GOOD, "timestamp": "2031-01-01T00:00:00Z"}, 422, ["body", 0, "timestamp"], "ahead"),
        ([GOOD] * 11, 413, ["body"], "over the limit of 10"),
    ],
)
def test_bad_requests_get_a_clear_4xx_and_the_service_goes_on(
    registry_root, tmp_path, body, status, loc, words
):
    app = app_for(registry_root, tmp_path, max_batch=10)
    with TestClient(app) as client:
        if isinstance(body, str):
            answer = client.post(
                "/events", content=body, headers={"content-type": "application/json"}
            )
        else:
            answer = client.post("/events", json=body)
        assert answer.status_code == status, answer.text
        detail = answer.json()["detail"]
        assert detail[0]["loc"] == loc
        assert words in " ".join(d["msg"] for d in detail)
        assert client.get("/health").status_code == 200
        # nothing of a refused request was stored, and a good event still goes through
        assert client.get("/health").json()["customers"] == 0
        assert client.post("/events", json=GOOD).status_code == 200


def test_unknown_customer_oversized_body_and_bad_queries(registry_root, tmp_path):
    app = app_for(registry_root, tmp_path, max_body_bytes=2000)
    with TestClient(app) as client:
        missing = client.get("/customers/nobody")
        assert missing.status_code == 404
        assert "no customer 'nobody'" in missing.json()["detail"]
        huge = client.post("/events", json=[GOOD] * 40)
        assert huge.status_code == 413
        assert "over the limit of 2000" in huge.json()["detail"][0]["msg"]
        assert client.post("/events", json=GOOD).status_code == 200
        bad_at = client.get("/customers/C1", params={"at": "soon"})
        assert bad_at.status_code == 422
        assert bad_at.json()["detail"][0]["loc"] == ["query", "at"]
        assert client.get("/vip", params={"tier": "Platinum"}).status_code == 422
        assert client.get("/alerts", params={"limit": 0}).status_code == 422
        assert client.get("/health").json()["customers"] == 1
        # an event a little ahead of the clock (within the tolerance) is accepted; "now" then
        # means that event's time, and an explicit moment before it is refused
        ahead = {**GOOD, "customer_id": "C2", "timestamp": "2025-07-01T00:02:00"}
        assert client.post("/events", json=ahead).status_code == 200
        now = client.get("/customers/C2")
        assert now.status_code == 200 and now.json()["scores"]["clv"] > 0
        before = client.get("/customers/C2", params={"at": "2025-06-30T12:00"})
        assert before.status_code == 422 and before.json()["detail"][0]["loc"] == ["query", "at"]
        engaged = {"customer_id": "E1", "timestamp": "2025-06-01T09:00", "event_type": "visit"}
        assert client.post("/events", json=engaged).json()["results"][0]["scores"] is None
        assert client.get("/customers/E1").json()["scores"] is None  # seen, not a buyer yet


def test_a_batch_with_a_late_event_is_refused_whole(registry_root, tmp_path):
    late = {**GOOD, "timestamp": "2024-06-01T10:00:00"}  # > 180 days before GOOD
    later = {**GOOD, "amount": 5.0, "timestamp": "2025-06-02T10:00:00"}
    with TestClient(app_for(registry_root, tmp_path)) as client:
        answer = client.post("/events", json=[GOOD, late, later])
        assert answer.status_code == 422
        detail = answer.json()["detail"][0]
        assert "too late" in detail["msg"] and "Nothing of this request was stored" in detail["msg"]
        assert client.get("/health").json()["customers"] == 0
        again = client.post("/events", json=[GOOD, later, GOOD]).json()
        assert again["accepted"] == 3
        assert [(r["customer_id"], r["applied"]) for r in again["results"]] == [("C1", True)]
        assert again["results"][0]["at"] == "2025-06-02T10:00:00"
        redelivered = client.post("/events", json=[later, GOOD]).json()["results"]
        assert [r["applied"] for r in redelivered] == [False]


def test_bearer_token(registry_root, tmp_path):
    with TestClient(app_for(registry_root, tmp_path, token="s3cret")) as client:
        for path in ("/health", "/vip", "/alerts", "/customers/C1"):
            answer = client.get(path)
            assert answer.status_code == 401, path
            assert answer.headers["www-authenticate"] == "Bearer"
        wrong = {"Authorization": "Bearer guess"}
        assert client.post("/events", json=GOOD, headers=wrong).status_code == 401
        right = {"Authorization": "Bearer s3cret"}
        assert client.post("/events", json=GOOD, headers=right).status_code == 200
        assert client.get("/customers/C1", headers=right).status_code == 200
        assert client.get("/openapi.json").status_code == 200  # the schema is public


def test_openapi_schema_documents_the_routes_and_events(registry_root, tmp_path):
    with TestClient(app_for(registry_root, tmp_path)) as client:
        schema = client.get("/openapi.json").json()
    assert {"/events", "/customers/{customer_id}", "/vip", "/alerts", "/health"} <= set(
        schema["paths"]
    )
    components = schema["components"]["schemas"]
    assert {"Transaction", "EngagementEvent", "Events"} <= set(components)
    assert components["Transaction"]["required"] == ["customer_id", "timestamp", "amount"]
    body = schema["paths"]["/events"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/Events"}
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


# -- scores -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def streamed(sim, pipeline, registry_root, tmp_path_factory):
    """States seeded up to SEED_UNTIL, the rows up to END posted; what the service says."""
    store = SQLiteStore(tmp_path_factory.mktemp("streamed") / "state.sqlite")
    scorer = OnlineScorer(pipeline, store=store)
    seeded = seed_store(scorer, sim.transactions, sim.events, cutoff=SEED_UNTIL)
    stream = later_rows(sim, SEED_UNTIL, END)
    app = create_app(Registry(registry_root), store, clock=lambda: NOW, max_batch=200)
    out = {"seeded": seeded, "acks": []}
    with TestClient(app) as client:
        for start in range(0, len(stream), 200):
            answer = client.post("/events", json=stream[start : start + 200])
            assert answer.status_code == 200, answer.text
            out["acks"] += answer.json()["results"]
        batch = pipeline.score(sim.transactions, sim.events, at=END)
        sample = np.random.default_rng(0).choice(batch.index.to_numpy(), size=25, replace=False)
        out["served"] = {
            c: client.get(f"/customers/{c}", params={"at": END}).json()["scores"] for c in sample
        }
        out["vip"] = client.get("/vip").json()
        out["gold"] = client.get("/vip", params={"tier": "Gold"}).json()
        alerts = out["alerts"] = client.get("/alerts").json()["alerts"]
        if alerts:
            last = alerts[-1]["id"]
            out["after_last"] = client.get("/alerts", params={"since": last}).json()["alerts"]
        out["since_time"] = client.get("/alerts", params={"since": "2025-06-20T00:00"}).json()
        out["health"] = client.get("/health").json()
    out["batch"] = batch
    return out


def _same(value, expected) -> bool:
    if isinstance(value, float):
        return value == pytest.approx(expected, rel=1e-12, abs=1e-12)
    return value == (None if pd.isna(expected) else expected)


def test_service_scores_equal_the_batch_pipeline(sim, streamed):
    assert streamed["seeded"] == len(
        set(sim.transactions["customer_id"]) | set(sim.events["customer_id"])
    )
    assert all(ack["applied"] for ack in streamed["acks"])
    batch = streamed["batch"]
    for customer_id, scores in streamed["served"].items():
        assert list(scores) == list(batch.columns)
        for name, value in scores.items():
            if not name.startswith("reason_"):
                assert _same(value, batch.loc[customer_id, name]), (customer_id, name)


def test_service_reasons_equal_the_batch_pipeline(streamed):
    batch = streamed["batch"]
    for customer_id, scores in streamed["served"].items():
        for name in [c for c in batch.columns if c.startswith("reason_")]:
            assert _same(scores[name], batch.loc[customer_id, name]), (customer_id, name)


def test_vip_list_and_alerts(pipeline, streamed):
    batch = streamed["batch"]
    vip = streamed["vip"]
    named = batch[batch["vip_tier"] != pipeline.config_.tiers.rest]
    assert {c["customer_id"] for c in vip["customers"]} == set(named.index)
    clv = [c["scores"]["clv"] for c in vip["customers"]]
    assert clv == sorted(clv, reverse=True) and vip["count"] == len(named)
    gold = streamed["gold"]["customers"]
    assert gold and {c["scores"]["vip_tier"] for c in gold} == {"Gold"}
    alerts = streamed["alerts"]
    assert alerts, "a month of events raises alerts"
    acked = [a for ack in streamed["acks"] for a in ack["alerts"]]
    assert alerts == acked  # what the answers said is what was stored, in order
    assert [a["id"] for a in alerts] == sorted(a["id"] for a in alerts)
    assert streamed["after_last"] == []
    since = streamed["since_time"]["alerts"]
    assert since and since == [a for a in alerts if a["at"] >= "2025-06-20"]
    assert streamed["health"]["customers"] == streamed["seeded"]


# -- restarts ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(args: list[str], port: int, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "vipml", "serve", "--port", str(port), *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the service exited: {log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"the service did not start: {log.read_text()}")


def test_acknowledged_events_survive_a_sigkill(sim, registry_root, tmp_path):
    tx_path = tmp_path / "tx.csv"
    sim.transactions.to_csv(tx_path, index=False)
    state = tmp_path / "state.sqlite"
    args = [
        "--registry",
        str(registry_root),
        "--state",
        str(state),
        "--transactions",
        str(tx_path),
        "--seed-until",
        SEED_UNTIL,
    ]
    stream = [r for r in later_rows(sim, SEED_UNTIL, END) if "amount" in r]
    port, log = _free_port(), tmp_path / "serve.log"
    process = _start(args, port, log)
    acked: list[dict] = []
    stop = threading.Event()

    def send() -> None:  # one event per request until killed
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for event in stream:
                if stop.is_set():
                    return
                try:
                    answer = client.post("/events", json=event)
                except httpx.TransportError:
                    return
                if answer.status_code == 200:
                    acked.append(answer.json()["results"][0] | {"event": event})

    sender = threading.Thread(target=send)
    try:
        sender.start()
        deadline = time.monotonic() + 60
        while len(acked) < 8 and time.monotonic() < deadline and sender.is_alive():
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)  # mid-stream, no shutdown of any kind
        process.wait(10)
        stop.set()
        sender.join(30)
    finally:
        if process.poll() is None:
            process.kill()
    assert len(acked) >= 8, log.read_text()
    assert len(acked) < len(stream), "the kill came after the whole stream: nothing tested"
    process = _start(args, port, log)  # same state file; the history is not applied again
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            last = {ack["customer_id"]: ack for ack in acked}
            for customer_id, ack in last.items():
                served = client.get(f"/customers/{customer_id}", params={"at": ack["at"]})
                assert served.status_code == 200
                assert served.json()["scores"] == ack["scores"]
            # every acknowledged event is in its customer's state: a redelivery is a duplicate
            again = client.post("/events", json=[ack["event"] for ack in acked]).json()
            assert again["accepted"] == len(acked)
            assert [r["applied"] for r in again["results"]] == [False] * len(last)
            assert "seeded" not in log.read_text().split("serving model")[-1]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


# -- following the champion -------------------------------------------------------------------


def _everyone_vip(pipeline: VipPipeline) -> VipPipeline:
    """Another model: the same fit with the first tier starting at CLV 0."""
    other = copy.deepcopy(pipeline)
    other.tier_thresholds_ = [0.0, 0.0]
    return other


def test_a_promoted_champion_is_swapped_in_without_dropping_requests(
    pipeline, tmp_path, registry_root
):
    root = tmp_path / "models"
    registry = Registry(root)
    first = registry.publish(lambda folder: bundle.save(pipeline, folder))
    registry.promote(first)
    second = registry.publish(lambda folder: bundle.save(_everyone_vip(pipeline), folder))
    app = create_app(registry, tmp_path / "state.sqlite", clock=lambda: NOW, check_interval=0.0)
    statuses: list[int] = []
    tiers: list[tuple[str, str]] = []
    with TestClient(app) as client:
        assert client.get("/health").json()["model_version"] == first
        stop = threading.Event()

        def hammer() -> None:
            day = 0
            while not stop.is_set():
                day = day % 28 + 1
                event = {**GOOD, "amount": 10.0 + day, "timestamp": f"2025-06-{day:02d}T12:00"}
                answer = client.post("/events", json=event)
                statuses.append(answer.status_code)
                if answer.status_code == 200:
                    body = answer.json()
                    tiers.append((body["version"], body["results"][0]["scores"]["vip_tier"]))

        worker = threading.Thread(target=hammer)
        worker.start()
        try:
            deadline = time.monotonic() + 60
            while len(tiers) < 2:  # requests served by the first model
                assert time.monotonic() < deadline and worker.is_alive(), statuses
                time.sleep(0.05)
            registry.promote(second)
            while client.get("/health").json()["model_version"] != second:
                assert time.monotonic() < deadline, "the new champion was not picked up"
                time.sleep(0.05)
            served = len(tiers)
            while len(tiers) < served + 2:  # requests served by the new one
                assert time.monotonic() < deadline and worker.is_alive(), statuses
                time.sleep(0.05)
        finally:
            stop.set()
            worker.join(30)
        assert statuses and set(statuses) == {200}
        versions = [v for v, _ in tiers]
        assert versions[0] == first and versions[-1] == second
        assert versions == sorted(versions, key=[first, second].index)  # one switch, no return
        assert {t for v, t in tiers if v == second} == {"VIP"}
        vip = client.get("/vip").json()
        assert vip["version"] == second and [c["customer_id"] for c in vip["customers"]] == ["C1"]


def test_a_champion_that_fails_to_load_leaves_the_current_model(pipeline, tmp_path, caplog):
    registry = Registry(tmp_path / "models")
    first = registry.publish(lambda folder: bundle.save(pipeline, folder))
    registry.promote(first)
    store = SQLiteStore(tmp_path / "state.sqlite")
    follower = ModelFollower(registry, store, check_interval=0.0)
    second = registry.publish(lambda folder: bundle.save(_everyone_vip(pipeline), folder))
    registry.promote(second)
    damaged = next(
        p for p in sorted(registry.path(second).rglob("*.json")) if p.name != "manifest.json"
    )
    damaged.write_bytes(damaged.read_bytes() + b" ")  # no longer the file the manifest lists
    with caplog.at_level("ERROR", logger="vipml.serve"):
        follower.check(wait=True)
    assert follower.version == first
    assert f"could not load champion {second}" in caplog.text
    assert follower.loading is None


# -- the command ------------------------------------------------------------------------------


def test_serve_command_refuses_bad_setups_with_exit_codes(tmp_path, registry_root):
    from typer.testing import CliRunner

    from vipml.cli import app

    runner = CliRunner()
    empty = tmp_path / "token"
    empty.write_text("\n")
    state = str(tmp_path / "state.sqlite")
    base = ["serve", "--registry", str(registry_root), "--state", state]
    refused = runner.invoke(app, [*base, "--token-file", str(empty)])
    assert refused.exit_code == 2 and "token file" in refused.output and "empty" in refused.output
    missing = runner.invoke(app, [*base, "--token-file", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "cannot read the token file" in missing.output
    unknown = runner.invoke(app, [*base, "--model", "0123456789ab"])
    assert unknown.exit_code == 5 and "no version '0123456789ab'" in unknown.output
    nothing = runner.invoke(app, ["serve", "--registry", str(tmp_path / "none"), "--state", state])
    assert nothing.exit_code == 5 and "no champion" in nothing.output
