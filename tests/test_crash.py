"""Crash safety (issue 7 item 6): the real server, SIGKILLed under load, loses and halves nothing.

The server runs as a subprocess (``python -m uvicorn app.main:app``) on a fresh database of the
suite's PostgreSQL server. Concurrent clients send single and bulk intakes, shipments and stock
movements, each with an ``Idempotency-Key``; the server is killed with SIGKILL mid-load and
started again. Then:

- every acknowledged (2xx) write is there exactly once;
- every write at all is whole: an order has all its lines, reservations and its
  ``order.created`` event; a shipment its ``ship`` movements and ``order.shipped`` event; a
  stock movement its balance change (``on_hand`` is the ledger's sum);
- every request sent again with its key converges: the end state is one application of each;
- the event feed, paged with ``after``, has each event once and none missing.

tests/routers/test_orders_crash.py covers the in-process case (an exception between the
reservation and the commit); this one kills the whole process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.databases import asyncpg_dsn, free_port, migrated_database
from tests.helpers import ADMIN, ADMIN_SECRET

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[1]
SKUS = 6
ON_HAND = 100_000
WORKERS = 12
# Acknowledged writes before the kill: enough that many requests are in flight by then.
KILL_AFTER = 150
BULK = 20


@pytest.fixture
def crash_database(server_url: str) -> Iterator[str]:
    """A fresh database of its own, migrated to head (the server process is killed on it)."""
    with migrated_database(server_url, "storeops_crash") as url:
        yield url


class Server:
    """``uvicorn app.main:app`` in a subprocess on 127.0.0.1, sweeps off."""

    def __init__(self, database_url: str, log: Path) -> None:
        self.database_url = database_url
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self) -> None:
        """Start on a free port and wait until ``/readyz`` answers 200."""
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "STOREOPS_ADMIN_KEY": ADMIN_SECRET,
            "STOREOPS_SWEEP_ENABLED": "false",
            "STOREOPS_ACCESS_LOG": "false",
            "STOREOPS_LOG_LEVEL": "WARNING",
            # The PostgreSQL server is shared: one connection per client is enough.
            "STOREOPS_DB_POOL_SIZE": str(WORKERS),
            "STOREOPS_DB_MAX_OVERFLOW": "2",
        }
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "uvicorn",
                "app.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=out,
            )
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            for _ in range(300):
                assert self.proc.returncode is None, self.log.read_text()
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        pytest.fail(f"the server did not become ready: {self.log.read_text()}")

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, open transactions abandoned."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()


@dataclass
class Sent:
    """One write request and what became of it the first time."""

    kind: str  # order | bulk | ship | shipbulk | move
    path: str
    body: dict[str, Any]
    key: str
    status: int | None = None  # None: no response (the connection died)
    response: Any = None

    @property
    def acked(self) -> bool:
        """The client saw a 2xx."""
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Load:
    """What the clients sent, and the shared state they draw from."""

    store_id: str
    skus: list[str]
    rng: random.Random
    sent: list[Sent] = field(default_factory=list)
    shippable: list[str] = field(default_factory=list)
    acked: int = 0
    tracking: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def order(self) -> dict[str, Any]:
        """A new order of 1–3 lines on distinct SKUs."""
        chosen = self.rng.sample(self.skus, self.rng.randint(1, 3))
        # Paid just now (the server runs on the real clock): shipped well within its window,
        # so no shipment is late and records a penalty (order.overdue).
        paid = datetime.now(UTC) - timedelta(minutes=1)
        return {
            "store_id": self.store_id,
            "external_id": f"CRASH-{uuid.uuid4().hex[:12]}",
            "placed_at": (paid - timedelta(minutes=1)).isoformat(),
            "paid_at": paid.isoformat(),
            "buyer": {
                "name": "张三",
                "phone": "13800138000",
                "province": "浙江省",
                "city": "杭州市",
                "address": "西湖区文三路 1 号",
            },
            "items": [
                {"sku_id": s, "quantity": self.rng.randint(1, 3), "unit_price": "9.90"}
                for s in chosen
            ],
        }

    def next_request(self) -> Sent:
        """A random write: single or bulk intake, single or bulk shipment, stock movement."""
        roll = self.rng.random()
        key = uuid.uuid4().hex
        if roll < 0.06 and len(self.shippable) >= 3:
            items = [
                {
                    "order_id": self.shippable.pop(self.rng.randrange(len(self.shippable))),
                    "carrier": "SF",
                    "tracking_number": f"SF{next(self.tracking):013d}",
                }
                for _ in range(3)
            ]
            return Sent("shipbulk", "/v1/orders/ship-bulk", {"items": items}, key)
        if roll < 0.25 and self.shippable:
            order_id = self.shippable.pop(self.rng.randrange(len(self.shippable)))
            body: dict[str, Any] = {
                "carrier": "SF",
                "tracking_number": f"SF{next(self.tracking):013d}",
            }
            return Sent("ship", f"/v1/orders/{order_id}/ship", body, key)
        if roll < 0.5:
            body = {
                "sku_id": self.rng.choice(self.skus),
                "kind": "receive",
                "quantity": self.rng.randint(1, 5),
                "reference": f"crash-{key}",
            }
            return Sent("move", "/v1/stock-movements", body, key)
        if roll < 0.6:
            body = {"orders": [self.order() for _ in range(BULK)]}
            return Sent("bulk", "/v1/orders/bulk", body, key)
        return Sent("order", "/v1/orders", self.order(), key)

    def record(self, sent: Sent, response: httpx.Response | None) -> None:
        """Keep the outcome; acknowledged orders become shippable."""
        if response is None:
            return
        sent.status = response.status_code
        sent.response = response.json()
        if not sent.acked:
            return
        self.acked += 1
        if sent.kind == "order":
            self.shippable.append(sent.response["id"])
        elif sent.kind == "bulk":
            self.shippable.extend(
                r["id"] for r in sent.response["results"] if r["status"] in (200, 201)
            )


async def _send(client: httpx.AsyncClient, sent: Sent) -> httpx.Response | None:
    headers = {**ADMIN, "Idempotency-Key": sent.key}
    try:
        return await client.post(sent.path, json=sent.body, headers=headers)
    except httpx.TransportError:
        return None


async def _worker(client: httpx.AsyncClient, load: Load, stop: asyncio.Event) -> None:
    while not stop.is_set():
        sent = load.next_request()
        load.sent.append(sent)
        load.record(sent, await _send(client, sent))


@contextlib.asynccontextmanager
async def _connect(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        yield conn
    finally:
        await conn.close()


def _shipments(sent: Sent) -> dict[str, str]:
    """Tracking number by order id of a single or bulk shipment request."""
    if sent.kind == "ship":
        return {sent.path.split("/")[3]: sent.body["tracking_number"]}
    if sent.kind == "shipbulk":
        return {i["order_id"]: i["tracking_number"] for i in sent.body["items"]}
    return {}


def _orders_sent(load: Load) -> dict[str, dict[str, Any]]:
    """Every order body sent, by external id."""
    out: dict[str, dict[str, Any]] = {}
    for s in load.sent:
        for body in s.body["orders"] if s.kind == "bulk" else [s.body] if s.kind == "order" else []:
            out[body["external_id"]] = body
    return out


async def check_whole(database_url: str, load: Load) -> dict[str, Any]:
    """Nothing half-written, nothing unknown; returns the stored state for later checks."""
    sent_orders = _orders_sent(load)
    moves = {s.body["reference"]: s for s in load.sent if s.kind == "move"}
    async with _connect(database_url) as db:
        store = int(load.store_id)
        orders = {
            r["external_id"]: r
            for r in await db.fetch(
                "SELECT id, external_id, status, tracking_number FROM orders WHERE store_id = $1",
                store,
            )
        }
        lines = defaultdict(list)
        for r in await db.fetch(
            "SELECT l.order_id, l.line_no, l.sku_id, l.quantity, l.reserved FROM order_lines l "
            "JOIN orders o ON o.id = l.order_id WHERE o.store_id = $1 ORDER BY l.line_no",
            store,
        ):
            lines[r["order_id"]].append(r)
        reservations = {
            r["line_ref"]: r
            for r in await db.fetch(
                "SELECT line_ref, order_id, sku_id, requested, reserved, status "
                "FROM reservations WHERE store_id = $1",
                store,
            )
        }
        events = await db.fetch(
            "SELECT id, type, data FROM events WHERE store_id = $1 ORDER BY id", store
        )
        movements = await db.fetch(
            "SELECT sku_id, kind, quantity, reference FROM stock_movements WHERE store_id = $1",
            store,
        )
        levels = {
            r["sku_id"]: r
            for r in await db.fetch(
                "SELECT sku_id, on_hand, reserved FROM stock_levels WHERE store_id = $1", store
            )
        }
        open_reserved = dict(
            await db.fetch(
                "SELECT sku_id, sum(reserved) FROM reservations "
                "WHERE store_id = $1 AND status = 'open' GROUP BY sku_id",
                store,
            )
        )

    assert {e["type"] for e in events} <= {"order.created", "order.shipped"}, events
    by_type: dict[str, Counter[str]] = defaultdict(Counter)
    for e in events:
        by_type[e["type"]][json.loads(e["data"])["order_id"]] += 1

    # Every order stored was sent, and is whole: its lines as sent, each reserved in full
    # (stock is plentiful), a reservation per line, and its order.created once.
    assert set(orders) <= set(sent_orders), set(orders) - set(sent_orders)
    for external_id, order in orders.items():
        body = sent_orders[external_id]
        got = [(str(r["sku_id"]), r["quantity"], r["reserved"]) for r in lines[order["id"]]]
        assert got == [(i["sku_id"], i["quantity"], i["quantity"]) for i in body["items"]], order
        shipped = order["status"] == "shipped"
        assert order["status"] in ("awaiting_shipment", "shipped"), order
        for line in lines[order["id"]]:
            res = reservations[f"order:{order['id']}:{line['line_no']}"]
            assert (res["requested"], res["reserved"]) == (line["quantity"], line["quantity"])
            assert res["status"] == ("consumed" if shipped else "open"), res
        assert by_type["order.created"][str(order["id"])] == 1, order
        assert by_type["order.shipped"][str(order["id"])] == (1 if shipped else 0), order
    assert sum(by_type["order.created"].values()) == len(orders)

    # Every movement is whole: its balance moved with it (on_hand is the ledger's sum), and a
    # shipment's ship movements took exactly its lines.
    ship_moves: Counter[tuple[str, int]] = Counter()
    crash_refs: Counter[str] = Counter()
    ledger: Counter[int] = Counter()
    for m in movements:
        ledger[m["sku_id"]] += m["quantity"]
        ref = m["reference"] or ""
        if m["kind"] == "ship":
            ship_moves[(ref, m["sku_id"])] += m["quantity"]
        elif ref.startswith("crash-"):
            crash_refs[ref] += 1
            assert m["quantity"] == moves[ref].body["quantity"]
    assert set(crash_refs) <= set(moves)
    assert set(crash_refs.values()) <= {1}
    for sku_id, level in levels.items():
        assert level["on_hand"] == ledger[sku_id], (sku_id, level, ledger[sku_id])
        assert level["reserved"] == open_reserved.get(sku_id, 0), (sku_id, level)
    shipped_orders = {o["id"] for o in orders.values() if o["status"] == "shipped"}
    expected_ships = Counter[tuple[str, int]]()
    for order_id in shipped_orders:
        for line in lines[order_id]:
            expected_ships[(f"order:{order_id}", line["sku_id"])] -= line["quantity"]
    assert ship_moves == expected_ships

    return {"orders": orders, "crash_refs": crash_refs, "levels": levels, "lines": lines}


def check_acknowledged(load: Load, state: dict[str, Any]) -> None:
    """Every write the client saw succeed is there, exactly once."""
    orders = state["orders"]
    by_id = {str(o["id"]): o for o in orders.values()}
    for s in load.sent:
        if not s.acked:
            continue
        if s.kind == "order":
            assert str(orders[s.body["external_id"]]["id"]) == s.response["id"]
        elif s.kind == "bulk":
            for body, result in zip(s.body["orders"], s.response["results"], strict=True):
                assert result["status"] in (200, 201), result
                assert str(orders[body["external_id"]]["id"]) == result["id"]
        elif s.kind in ("ship", "shipbulk"):
            if s.kind == "shipbulk":
                assert {r["status"] for r in s.response["results"]} == {200}, s.response
            for order_id, number in _shipments(s).items():
                order = by_id[order_id]
                assert (order["status"], order["tracking_number"]) == ("shipped", number)
        else:
            assert state["crash_refs"][s.body["reference"]] == 1, s


async def read_feed(client: httpx.AsyncClient, store_id: str, expected: int) -> list[Any]:
    """The store's whole feed, paged with ``after``; waits (bounded) for transactions still
    running anywhere on the server, which hold the feed's horizon back."""
    seen: list[Any] = []
    try:
        async with asyncio.timeout(20):
            while True:
                seen, after = [], None
                while True:
                    params: dict[str, str | int] = {"store_id": store_id, "limit": 37}
                    if after:
                        params["after"] = after
                    r = await client.get("/v1/events", params=params, headers=ADMIN)
                    assert r.status_code == 200, r.text
                    page = r.json()
                    seen.extend(page["items"])
                    if page["items"]:
                        after = page["items"][-1]["id"]
                    if page["next_cursor"] is None:
                        break
                if len(seen) >= expected:
                    return seen
                await asyncio.sleep(0.1)
    except TimeoutError:
        pytest.fail(f"the feed shows {len(seen)} of {expected} events")


async def test_sigkill_under_load_loses_nothing_and_halves_nothing(
    crash_database: str, tmp_path: Path
) -> None:
    server = Server(crash_database, tmp_path / "server.log")
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            r = await client.post(
                "/v1/stores",
                json={"code": "crash", "name": "崩溃测试", "platform": "pdd"},
                headers=ADMIN,
            )
            assert r.status_code == 201, r.text
            store_id = r.json()["id"]
            skus = []
            for n in range(SKUS):
                body = {"store_id": store_id, "sku_code": f"C{n}", "title": "茶", "price": "9.90"}
                r = await client.post("/v1/skus", json=body, headers=ADMIN)
                assert r.status_code == 201, r.text
                skus.append(r.json()["id"])
                r = await client.post(
                    "/v1/stock-movements",
                    json={"sku_id": skus[-1], "kind": "receive", "quantity": ON_HAND},
                    headers=ADMIN,
                )
                assert r.status_code == 201, r.text
        load = Load(store_id, skus, random.Random(7))

        # Load, then SIGKILL while requests are in flight.
        stop = asyncio.Event()
        limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS)
        async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:
            workers = [asyncio.create_task(_worker(client, load, stop)) for _ in range(WORKERS)]
            for _ in range(600):
                if load.acked >= KILL_AFTER:
                    break
                assert not any(w.done() for w in workers), [w.exception() for w in workers]
                await asyncio.sleep(0.05)
            stop.set()
            await server.kill()
            await asyncio.gather(*workers)
        answered = [s for s in load.sent if s.status is not None]
        lost = [s for s in load.sent if s.status is None]
        assert load.acked, "no write was acknowledged before the kill"
        assert lost, "the kill came after every request had its answer"
        assert {s.status for s in answered} <= {200, 201}, Counter(s.status for s in answered)

        await server.start()
        state = await check_whole(crash_database, load)
        check_acknowledged(load, state)

        # Every request again, with its key: the end state is one application of each.
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            for s in load.sent:
                again = await _send(client, s)
                assert again is not None
                r = again
                assert r.status_code in (200, 201), (s.kind, r.text)
                if s.kind in ("bulk", "shipbulk"):
                    assert {x["status"] for x in r.json()["results"]} <= {200, 201}, r.text
                if s.acked:  # a replay of the first answer
                    assert r.json() == s.response, (s, r.text)
            final = await check_whole(crash_database, load)
            sent_orders = _orders_sent(load)
            assert set(final["orders"]) == set(sent_orders)
            ships = {o: number for s in load.sent for o, number in _shipments(s).items()}
            shipped = {
                str(o["id"]): o["tracking_number"]
                for o in final["orders"].values()
                if o["status"] == "shipped"
            }
            assert shipped == ships
            moves = [s for s in load.sent if s.kind == "move"]
            assert final["crash_refs"] == Counter(s.body["reference"] for s in moves)
            for sku in skus:
                received = sum(s.body["quantity"] for s in moves if s.body["sku_id"] == sku)
                taken = sum(
                    line["quantity"]
                    for o in final["orders"].values()
                    for line in final["lines"][o["id"]]
                    if str(line["sku_id"]) == sku
                )
                shipped_qty = sum(
                    line["quantity"]
                    for o in final["orders"].values()
                    if o["status"] == "shipped"
                    for line in final["lines"][o["id"]]
                    if str(line["sku_id"]) == sku
                )
                level = final["levels"][int(sku)]
                assert level["on_hand"] == ON_HAND + received - shipped_qty
                assert level["reserved"] == taken - shipped_qty

            # The feed: every event once, none missing, each order's events once.
            async with _connect(crash_database) as db:
                stored = [
                    str(r["id"])
                    for r in await db.fetch(
                        "SELECT id FROM events WHERE store_id = $1", int(store_id)
                    )
                ]
            feed = await read_feed(client, store_id, len(stored))
            ids = [e["id"] for e in feed]
            assert len(ids) == len(set(ids))
            assert sorted(ids, key=int) == sorted(stored, key=int)
            created = Counter(e["data"]["order_id"] for e in feed if e["type"] == "order.created")
            assert created == Counter(str(o["id"]) for o in final["orders"].values())
            shipped_events = Counter(
                e["data"]["order_id"] for e in feed if e["type"] == "order.shipped"
            )
            assert shipped_events == Counter(list(shipped))
    finally:
        await server.kill()
