"""Webhook delivery against a real local HTTP receiver: signatures, order, retries, the
breaker, give-up, redelivery, and several workers on one database."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.domain.events import service as events
from app.domain.webhook import rules
from app.domain.webhook.delivery import DeliveryWorker, WorkerConfig
from tests.helpers import ADMIN, Api
from tests.receiver import Receiver

SECRET = "whsec_test_0123456789abcdef"


def _config(**policy: Any) -> WorkerConfig:
    """A quick worker: tiny retry base, short timeouts."""
    values: dict[str, Any] = {
        "base": timedelta(milliseconds=20),
        "cap": timedelta(milliseconds=200),
        "give_up_after": timedelta(hours=1),
        "breaker_failures": 1000,
        "breaker_cooldown": timedelta(milliseconds=300),
    }
    values.update(policy)
    return WorkerConfig(
        poll_seconds=0.02, concurrency=8, timeout_seconds=1.0, policy=rules.Policy(**values)
    )


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
async def workers(app: Any) -> AsyncIterator[Callable[..., DeliveryWorker]]:
    """Start delivery workers (stopped after the test)."""
    started: list[DeliveryWorker] = []

    def start(config: WorkerConfig | None = None, maker: Any = None) -> DeliveryWorker:
        worker = DeliveryWorker(maker or app.state.sessionmaker, config or _config())
        worker.start()
        started.append(worker)
        return worker

    yield start
    for w in started:
        await w.stop()


async def _subscribe(api: Api, url: str, store_id: str, types: list[str]) -> dict[str, Any]:
    r = await api.client.post(
        "/v1/webhooks",
        json={"url": url, "events": types, "secret": SECRET, "store_ids": [store_id]},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def _emit(app: Any, store_id: str, n: int, type_: str = "stock.low") -> list[str]:
    """``n`` events in one store, committed one by one; their ids."""
    for i in range(n):
        async with app.state.sessionmaker() as session:
            await events.append(session, type_, int(store_id), {"sku_id": "1", "n": i})
            await session.commit()
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            sa.text("SELECT id FROM events WHERE store_id = :s AND type = :t ORDER BY id"),
            {"s": int(store_id), "t": type_},
        )
        return [str(i) for i in rows.scalars()][-n:]


async def _feed(app: Any, store_id: str) -> list[dict[str, Any]]:
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/v1/events", params={"store_id": store_id, "limit": 500}, headers=ADMIN)
        assert r.status_code == 200, r.text
        return r.json()["items"]  # type: ignore[no-any-return]


async def _hook(api: Api, hook_id: str) -> dict[str, Any]:
    r = await api.client.get(f"/v1/webhooks/{hook_id}", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def _until(api: Api, hook_id: str, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The webhook once ``check`` holds for it (polled; fails after 20 s)."""
    async with asyncio.timeout(20):
        # Polls the API: the state lives in the database, there is nothing to wait on.
        while not check(state := await _hook(api, hook_id)):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return state


async def _deliveries(api: Api, hook_id: str) -> list[dict[str, Any]]:
    r = await api.client.get(f"/v1/webhooks/{hook_id}/deliveries?limit=500", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def test_signed_body_is_the_feed_event(
    api: Api, app: Any, receiver: Receiver, workers: Any
) -> None:
    store = await api.store()
    await _subscribe(api, receiver.url("/sig"), store["id"], ["stock.low"])
    (event_id,) = await _emit(app, store["id"], 1)
    workers()
    await receiver.wait_for(lambda: receiver.at("/sig"))
    (got,) = receiver.at("/sig")
    feed_item = next(e for e in await _feed(app, store["id"]) if e["id"] == event_id)
    assert got.body == orjson.dumps(feed_item)
    assert got.headers["x-storeops-event-id"] == event_id
    assert got.headers["content-type"] == "application/json"
    expected = hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-storeops-signature"] == f"sha256={expected}"
    ts = got.headers["x-storeops-timestamp"]
    assert ts.isdigit()
    v2 = hmac.new(SECRET.encode(), ts.encode() + b"." + got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-storeops-signature-v2"] == f"sha256={v2}"
    # A wrong secret does not verify.
    wrong = hmac.new(b"another-secret-0123", got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-storeops-signature"] != f"sha256={wrong}"


async def test_failures_hold_later_events_back_until_success(
    api: Api, app: Any, receiver: Receiver, workers: Any
) -> None:
    store = await api.store()
    hook = await _subscribe(api, receiver.url("/retry"), store["id"], ["stock.low"])
    receiver.plans["/retry"] = [500, 302]
    ids = await _emit(app, store["id"], 3)
    workers()
    await receiver.wait_for(lambda: len(receiver.at("/retry")) >= 5)
    got = [(r.event_id, r.attempt, r.status) for r in receiver.at("/retry")]
    assert got == [
        (ids[0], 1, 500),
        (ids[0], 2, 302),
        (ids[0], 3, 200),
        (ids[1], 1, 200),
        (ids[2], 1, 200),
    ]
    state = await _until(api, hook["id"], lambda h: h["last_delivered_event_id"] == ids[2])
    assert len(receiver.at("/retry")) == 5  # each delivered once
    log = await _deliveries(api, hook["id"])
    assert [(d["event_id"], d["attempt"], d["response_status"]) for d in log] == [
        (ids[2], 1, 200),
        (ids[1], 1, 200),
        (ids[0], 3, 200),
        (ids[0], 2, 302),
        (ids[0], 1, 500),
    ]
    assert [d["error"] for d in log] == [
        None,
        None,
        None,
        "redirect not followed (HTTP 302)",
        "HTTP 500",
    ]
    assert all(d["event_type"] == "stock.low" and d["duration_ms"] >= 0 for d in log)
    assert state["status"] == "active"
    assert state["pending_event_id"] is None


async def test_filters_by_event_type_and_store(
    api: Api, app: Any, receiver: Receiver, workers: Any
) -> None:
    mine, other = await api.store(), await api.store()
    await _subscribe(api, receiver.url("/filter"), mine["id"], ["stock.out"])
    await _emit(app, mine["id"], 2, "stock.low")
    wanted = await _emit(app, mine["id"], 2, "stock.out")
    await _emit(app, other["id"], 2, "stock.out")
    workers()
    await receiver.wait_for(lambda: len(receiver.at("/filter")) >= 2)
    await asyncio.sleep(0.2)
    assert [r.event_id for r in receiver.at("/filter")] == wanted


async def test_slow_endpoint_does_not_delay_others(
    api: Api, app: Any, receiver: Receiver, workers: Any
) -> None:
    store = await api.store()
    await _subscribe(api, receiver.url("/hang"), store["id"], ["stock.low"])
    await _subscribe(api, receiver.url("/fast"), store["id"], ["stock.low"])
    receiver.hang.add("/hang")
    ids = await _emit(app, store["id"], 5)
    workers(_config())
    await receiver.wait_for(lambda: len(receiver.at("/fast")) == 5)
    assert [r.event_id for r in receiver.at("/fast")] == ids
    # The hanging endpoint holds its first event; nothing after it was sent there.
    assert {r.event_id for r in receiver.at("/hang")} == {ids[0]}


async def test_breaker_opens_pauses_and_a_probe_closes_it(
    api: Api, app: Any, receiver: Receiver, workers: Any
) -> None:
    store = await api.store()
    hook = await _subscribe(api, receiver.url("/breaker"), store["id"], ["stock.low"])
    receiver.plans["/breaker"] = [500, 500, 500]
    ids = await _emit(app, store["id"], 2)
    config = _config(breaker_failures=3, breaker_cooldown=timedelta(milliseconds=600))
    workers(config)
    await receiver.wait_for(lambda: len(receiver.at("/breaker")) >= 3)
    state = await _until(api, hook["id"], lambda h: h["failed_attempts"] == 3)
    assert state["status"] == "paused"
    assert state["paused_until"] is not None
    assert state["failed_attempts"] == 3
    await receiver.wait_for(lambda: len(receiver.at("/breaker")) >= 5)
    got = receiver.at("/breaker")
    # Nothing was sent while the breaker was open; the probe came after the cool-down.
    assert got[3].at - got[2].at >= 0.55
    assert [(r.event_id, r.status) for r in got[3:]] == [(ids[0], 200), (ids[1], 200)]
    state = await _until(api, hook["id"], lambda h: h["last_delivered_event_id"] == ids[1])
    assert state["status"] == "active"
    assert state["paused_until"] is None


async def test_give_up_marks_failing_and_redeliver_replays(
    api: Api, app: Any, receiver: Receiver, workers: Any
) -> None:
    store = await api.store()
    hook = await _subscribe(api, receiver.url("/giveup"), store["id"], ["stock.low"])
    receiver.always["/giveup"] = 503
    ids = await _emit(app, store["id"], 2)
    worker = workers(_config(give_up_after=timedelta(milliseconds=150)))
    await receiver.wait_for(lambda: {r.event_id for r in receiver.at("/giveup")} == set(ids))
    # Both events were tried; once the second is given up too, nothing is pending.
    state = await _until(
        api, hook["id"], lambda h: h["status"] == "failing" and h["pending_event_id"] is None
    )
    await worker.stop()
    assert state["first_skipped_event_id"] == ids[0]
    assert state["failing_since"] is not None
    # The endpoint is fixed; redelivery from the first skipped event sends both, in order.
    receiver.always["/giveup"] = 200
    before = len(receiver.at("/giveup"))
    r = await api.client.post(
        f"/v1/webhooks/{hook['id']}/redeliver", json={"from_event_id": ids[0]}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    workers()
    await receiver.wait_for(lambda: len(receiver.at("/giveup")) >= before + 2)
    again = receiver.at("/giveup")[before:]
    assert [(x.event_id, x.attempt, x.status) for x in again] == [
        (ids[0], 1, 200),
        (ids[1], 1, 200),
    ]
    assert (await _hook(api, hook["id"]))["status"] == "active"


async def test_redeliver_replays_delivered_events_in_order(
    api: Api, app: Any, receiver: Receiver, workers: Any
) -> None:
    store = await api.store()
    hook = await _subscribe(api, receiver.url("/replay"), store["id"], ["stock.low"])
    ids = await _emit(app, store["id"], 3)
    workers()
    await receiver.wait_for(lambda: len(receiver.at("/replay")) == 3)
    r = await api.client.post(
        f"/v1/webhooks/{hook['id']}/redeliver", json={"from_event_id": ids[1]}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    await receiver.wait_for(lambda: len(receiver.at("/replay")) == 5)
    assert [x.event_id for x in receiver.at("/replay")] == [*ids, ids[1], ids[2]]


@pytest.fixture
async def second_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """Another engine on the same database, as another process would have."""
    engine = create_engine(database_url, Settings(database_url=database_url))
    yield engine
    await engine.dispose()


async def test_two_workers_never_send_one_attempt_twice(
    second_engine: AsyncEngine, api: Api, app: Any, receiver: Receiver, workers: Any
) -> None:
    # second_engine comes first: set up first, disposed of after the workers stopped.
    store = await api.store()
    paths = [f"/pair-{i}" for i in range(4)]
    for p in paths:
        await _subscribe(api, receiver.url(p), store["id"], ["stock.low"])
        receiver.plans[p] = [500, 500]
    maker: async_sessionmaker[Any] = create_sessionmaker(second_engine)
    workers(_config())
    workers(_config(), maker)
    ids = await _emit(app, store["id"], 40)
    await receiver.wait_for(lambda: all(len(receiver.at(p)) >= 42 for p in paths), seconds=60)
    await asyncio.sleep(0.3)
    for p in paths:
        got = receiver.at(p)
        seen = Counter((r.event_id, r.attempt) for r in got)
        assert max(seen.values()) == 1, [k for k, v in seen.items() if v > 1]
        delivered = [r.event_id for r in got if r.status == 200]
        assert delivered == ids


@pytest.mark.parametrize("mode", ["process", "thread"])
async def test_the_service_delivers_from_its_own_process_or_thread(
    database_url: str, api: Api, app: Any, receiver: Receiver, mode: str
) -> None:
    """A served app (worker enabled, as deployed) delivers from a child process of its own
    (the default) or from a thread with its own loop."""
    import httpx

    from app.main import create_app
    from tests.helpers import ADMIN_SECRET

    store = await api.store()
    await _subscribe(api, receiver.url("/served"), store["id"], ["stock.low"])
    settings = Settings(
        database_url=database_url,
        admin_key=ADMIN_SECRET,
        access_log=False,
        log_level="WARNING",
        sweep_enabled=False,
        webhook_poll_seconds=0.05,
        webhook_worker_mode=mode,
    )
    served = create_app(settings)
    async with served.router.lifespan_context(served):
        ids = await _emit(app, store["id"], 3)
        await receiver.wait_for(lambda: len(receiver.at("/served")) == 3)
        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.get("/healthz")
            assert r.status_code == 200
    assert [r.event_id for r in receiver.at("/served")] == ids
