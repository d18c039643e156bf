"""Scenarios ``intake-single`` and ``intake-bulk``: order intake through the real service.

The service runs under uvicorn (one worker per core, uvloop, access log and sweeps off) in a
subprocess; this process drives it over keep-alive HTTP/1.1 connections with a small
stdlib client (``BENCH_HTTP_CLIENT=httpx`` uses httpx instead, which costs several times
more client CPU per request: CPU the server needs on a 2-core machine). Each app row has
its raw-asyncpg ceiling next to it, measured in the same run on the same data:

- ``intake-single``: 64 workers POST paid orders of 2 lines (two distinct SKUs of 200,
  1-3 units each, unique external ids) to ``/v1/orders``. Ceiling: 64 connections, each
  looping BEGIN; the order INSERT (the columns the app writes, ON CONFLICT DO NOTHING);
  the statement of ``reserve()`` per line in SKU-id order; both lines in one INSERT; the
  ``order.created`` event; COMMIT.
- ``intake-bulk``: 2 workers POST batches of 1,000 such orders to ``/v1/orders/bulk``.
  Ceiling: 2 connections; per batch 1,000 ids from the orders sequence, then one
  transaction: ``copy_records_to_table`` into orders, order_lines, reservations and
  events, the touched balances locked in SKU-id order, one conditional UPDATE of them.
- ``intake-hot``: 32 workers order the same **two hot SKUs**: paid orders of 2 lines (both
  SKUs, in random order), and next to them orders of 1 line on one of the two. Ceiling:
  the single-intake transaction on those 2 lines (stock taken at once, SKU-id order).

Rows alternate in ``--rounds`` slices; every slice starts from empty order tables, and
after it the balances must equal the reservations written. The service runs only during
the app's slices, so its connection pool and the ceiling's 64 connections never add up.
A freshly started service first serves ``BENCH_SERVICE_WARMUP`` seconds (default 4) of
the same load on top of the usual warm-up: every new connection pays once for asyncpg's
introspection of the array types of the hot statements and for the first (custom) plans
of each prepared statement, which a deployed service paid long ago.
The summary adds the CPU cores used inside the windows: the machine, uvicorn (all its
worker processes), the bench database's backends and this process, and PostgreSQL's CPU
per order of the app over the ceiling's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import os
import random
import re
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import psutil
from sqlalchemy.engine import make_url

from app.config import PROJECT_ROOT
from app.domain.dispatch.rules import at_risk_from, deadline
from app.domain.inventory.levels import STATE_COLUMNS
from app.domain.order.rules import CENT, totals
from app.domain.store.rules import effective_policy
from bench.common import (
    Measurement,
    Op,
    Options,
    Report,
    Sample,
    asyncpg_dsn,
    measure_slice,
    summarize,
)

SINGLE = "intake-single"
BULK = "intake-bulk"
HOT = "intake-hot"
NAME = "intake"  # ``python -m bench intake`` runs all three
SCENARIOS = (SINGLE, BULK, HOT)
SINGLE_TARGET = 0.35
# PostgreSQL CPU per order of the app over the ceiling's (issue 7, item 9).
PG_CPU_TARGET = 1.3
HOT_CLIENTS = 32
SERVICE_WARMUP = float(os.environ.get("BENCH_SERVICE_WARMUP", "4"))
BULK_TARGET = 0.50
BULK_ORDERS_PER_S = 5_000
SKUS = 200
ON_HAND = 1_000_000_000
BATCH = 1_000
BULK_CLIENTS = 2
ADMIN_KEY = "sk_bench_intake_admin_0123456789"
APP = "app: POST /v1/orders"
RAW = "raw asyncpg, same tx"
APP_BULK = "app: POST /v1/orders/bulk (1,000)"
RAW_BULK = "raw asyncpg COPY, same tx (1,000)"
APP_HOT = "app: POST /v1/orders, 2 hot lines"
APP_HOT_ONE = "app: POST /v1/orders, 1 hot line"
RAW_HOT = "raw asyncpg, same tx, 2 hot lines"
ZERO = Decimal("0.00")
BUYER = {
    "name": "张三",
    "phone": "13800138000",
    "province": "浙江省",
    "city": "杭州市",
    "address": "西湖区文三路 1 号",
}
BUYER_JSON = orjson.dumps(BUYER).decode()
POLICY = effective_policy("pdd", {})

# The statement of reservations.reserve() (one line: conditional UPDATE + INSERT reservation).
RESERVE = f"""
    WITH l AS (
        UPDATE stock_levels AS l SET reserved = l.reserved + $1
          FROM skus AS s
         WHERE l.sku_id = $2 AND s.id = l.sku_id AND l.on_hand - l.reserved >= $1
        RETURNING {STATE_COLUMNS}
    ), r AS (
        INSERT INTO reservations
               (sku_id, store_id, line_ref, order_id, requested, reserved, deadline, placed_at)
        SELECT sku_id, store_id, $3, $4, $1, $1, $5, $6 FROM l
        RETURNING id
    )
    SELECT l.*, r.id AS reservation_id FROM l, r
"""
# The columns the app's order INSERT writes (intake.py and bulk.py), coupon_code aside.
ORDER_COLUMNS = (
    "store_id", "external_id", "status", "allocation", "placed_at", "paid_at", "group_buy",
    "group_id", "group_formed_at", "promised_ship_by", "clock_started_at", "dispatch_deadline",
    "at_risk_at", "buyer", "buyer_phone", "subtotal", "discount", "shipping_fee", "total",
    "promotion_ids", "allow_backorder", "content_hash", "version", "created_at", "updated_at",
)  # fmt: skip
INSERT_ORDER = (
    f"INSERT INTO orders ({', '.join(ORDER_COLUMNS)}, coupon_code) VALUES ($1, $2, $3, $4, $5,"
    " $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $15, $16, $17, $18, $19, $20, $21, $22,"
    " $23, $24, $25, NULL) ON CONFLICT (store_id, external_id) DO NOTHING RETURNING id"
)
LINE_COLUMNS = ("order_id", "line_no", "sku_id", "quantity", "unit_price", "line_total", "reserved")
INSERT_LINES = (
    "INSERT INTO order_lines (order_id, line_no, sku_id, quantity, unit_price, line_total,"
    " reserved) VALUES ($1, 1, $2, $3, $4, $5, $3), ($1, 2, $6, $7, $8, $9, $7)"
)
INSERT_EVENT = "INSERT INTO events (type, store_id, data) VALUES ('order.created', $1, $2::jsonb)"
RES_COLUMNS = (
    "sku_id", "store_id", "line_ref", "order_id", "requested", "reserved", "deadline", "placed_at",
)  # fmt: skip
EVENT_COLUMNS = ("type", "store_id", "data")
LOCK_LEVELS = "SELECT sku_id FROM stock_levels WHERE sku_id = ANY($1) ORDER BY sku_id FOR UPDATE"
TAKE_IDS = (
    "SELECT array_agg(nextval(pg_get_serial_sequence('orders', 'id'))) FROM generate_series(1, $1)"
)
ADD_RESERVED = (
    "UPDATE stock_levels l SET reserved = l.reserved + v.q "
    "FROM unnest($1::bigint[], $2::int[]) AS v(sku_id, q) "
    "WHERE l.sku_id = v.sku_id AND l.on_hand - l.reserved >= v.q"
)


@dataclass(frozen=True, slots=True)
class Sku:
    """A seeded SKU."""

    id: int
    code: str
    price: Decimal


@dataclass(frozen=True, slots=True)
class Draft:
    """One generated order: what both the app and the ceiling write."""

    external_id: str
    lines: list[tuple[Sku, int]]
    placed_at: datetime
    paid_at: datetime

    def body(self, store_id: int) -> dict[str, Any]:
        """The ``OrderCreate`` JSON of this order."""
        return {
            "store_id": str(store_id),
            "external_id": self.external_id,
            "placed_at": self.placed_at.isoformat(),
            "paid_at": self.paid_at.isoformat(),
            "buyer": BUYER,
            "items": [
                {"sku_code": s.code, "quantity": q, "unit_price": str(s.price)}
                for s, q in self.lines
            ],
        }


@dataclass(slots=True)
class Catalog:
    """The seeded store and a generator of distinct orders on it."""

    store_id: int
    skus: list[Sku]
    rnd: random.Random
    seq: itertools.count[int]

    def draft(self, prefix: str, lines: int = 2) -> Draft:
        """A paid order of ``lines`` lines on distinct random SKUs."""
        now = datetime.now(UTC)
        drawn = [(sku, self.rnd.randint(1, 3)) for sku in self.rnd.sample(self.skus, lines)]
        ext = f"{prefix}{next(self.seq)}"
        return Draft(ext, drawn, now - timedelta(minutes=2), now - timedelta(minutes=1))


@dataclass(frozen=True, slots=True)
class Cpu:
    """CPU cores busy during a row's window: the machine, uvicorn, postgres, this process."""

    machine: float
    server: float
    postgres: float
    client: float


# --- database ------------------------------------------------------------------------------


async def _seed(conn: asyncpg.Connection) -> Catalog:
    """One PDD store, SKUS SKUs with a huge balance and threshold 0 (no stock events)."""
    store_id: int = await conn.fetchval(
        "INSERT INTO stores (code, name, platform, version) "
        "VALUES ('bench-intake', 'Bench intake', 'pdd', 1) RETURNING id"
    )
    prices = [Decimal(990 + 37 * i % 5_000) / 100 for i in range(SKUS)]
    rows = await conn.fetch(
        "INSERT INTO skus (store_id, sku_code, title, price, version) "
        "SELECT $1, c, c, p, 1 FROM unnest($2::text[], $3::numeric[]) AS v(c, p) "
        "RETURNING id, sku_code, price",
        store_id,
        [f"SKU-{i:04d}" for i in range(SKUS)],
        prices,
    )
    await conn.execute(
        "INSERT INTO stock_levels (sku_id, store_id, on_hand, reserved, threshold) "
        "SELECT id, store_id, $2, 0, 0 FROM skus WHERE store_id = $1",
        store_id,
        ON_HAND,
    )
    skus = [Sku(r["id"], r["sku_code"], r["price"]) for r in rows]
    return Catalog(store_id, skus, random.Random(20261111), itertools.count())


async def _reset(conn: asyncpg.Connection) -> None:
    """Empty order tables, nothing reserved, fresh statistics and a checkpoint."""
    await conn.execute("TRUNCATE orders, order_lines, reservations, events CASCADE")
    await conn.execute("UPDATE stock_levels SET reserved = 0")
    for table in ("orders", "order_lines", "reservations", "events", "stock_levels"):
        await conn.execute(f"VACUUM (ANALYZE) {table}")
    with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
        await conn.execute("CHECKPOINT")


async def _check(conn: asyncpg.Connection, name: str, counted: int, lines_each: int) -> None:
    """Balances equal reservations; every order has its lines and one event; none lost."""
    held, written, orders, lines, created = await conn.fetchrow(
        "SELECT (SELECT sum(reserved) FROM stock_levels), (SELECT sum(reserved) FROM reservations),"
        " (SELECT count(*) FROM orders), (SELECT count(*) FROM order_lines),"
        " (SELECT count(*) FROM events WHERE type = 'order.created')"
    )
    if held != written or lines != lines_each * orders or created != orders or orders < counted:
        raise AssertionError(
            f"{name}: reserved {held} vs {written} in reservations, {orders} orders, "
            f"{lines} lines, {created} events, {counted} counted"
        )


# --- CPU accounting (Linux /proc) ----------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_seconds(stat: str) -> float:
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _tree_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its live children (uvicorn's worker processes)."""
    with contextlib.suppress(psutil.Error):
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
        total = 0.0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total
    return 0.0


def _cpu_now(database: str, server_pid: int | None) -> tuple[float, ...]:
    """(machine busy, uvicorn, backends of ``database``, this process) CPU seconds so far."""
    try:
        cpu = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        machine = (sum(cpu[:8]) - cpu[3] - cpu[4]) / _TICK
        server = _tree_seconds(server_pid) if server_pid else 0
        postgres = 0.0
        title = f" {database} ".encode()
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                # A backend's title: "postgres: <user> <database> <client> <state>".
                if title in (proc / "cmdline").read_bytes():
                    postgres += _proc_seconds((proc / "stat").read_text())
    except OSError:
        return (float("nan"),) * 4
    return machine, server, postgres, time.process_time()


def _database(url: str) -> str:
    database = make_url(url).database
    assert database is not None
    return database


@dataclass
class Row:
    """A row measured in ``options.rounds`` slices, with the CPU used inside its windows."""

    name: str
    clients: int
    per_op: int
    database: str
    lines: int = 2
    samples: list[Sample] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=lambda: [0.0] * 4)
    wall: float = 0.0

    async def measure(self, op: Op, options: Options, server_pid: int | None = None) -> int:
        """One slice after its warm-up; returns the orders it counted."""
        marks: list[tuple[float, ...]] = []

        async def sample() -> None:
            start = time.perf_counter() + options.warmup
            for moment in (start, start + options.slice_seconds):
                await asyncio.sleep(max(0.0, moment - time.perf_counter()))
                marks.append((time.perf_counter(), *_cpu_now(self.database, server_pid)))

        got, _ = await asyncio.gather(measure_slice(self.clients, op, options), sample())
        self.samples.append(got)
        (t0, *a), (t1, *b) = marks
        self.wall += t1 - t0
        self.cpu_seconds = [c + y - x for c, x, y in zip(self.cpu_seconds, a, b, strict=True)]
        return len(got.latencies) * self.per_op

    def result(self) -> Measurement:
        """The row over all its slices."""
        return summarize(self.name, self.clients, self.samples)

    def cores(self) -> Cpu:
        """Mean CPU cores busy per party over the row's windows."""
        return Cpu(*(c / self.wall for c in self.cpu_seconds))


# --- HTTP ---------------------------------------------------------------------------------

Post = Callable[[int, bytes], Awaitable[tuple[int, bytes]]]


class HttpConnection:
    """One keep-alive HTTP/1.1 connection: just enough client to POST JSON to uvicorn."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self._address = (host, port)
        self._head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {ADMIN_KEY}\r\nContent-Type: application/json\r\n"
        ).encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> tuple[int, bytes]:
        """Send ``body``; the status and the response body."""
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(*self._address, limit=2**24)
        self._writer.write(b"%sContent-Length: %d\r\n\r\n%s" % (self._head, len(body), body))
        head = await self._reader.readuntil(b"\r\n\r\n")
        match = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.IGNORECASE)
        if match is None:
            raise RuntimeError(f"response without Content-Length: {head[:200]!r}")
        return int(head[9:12]), await self._reader.readexactly(int(match.group(1)))

    async def close(self) -> None:
        """Close the connection if open."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()


@contextlib.asynccontextmanager
async def _poster(
    base: str, path: str, clients: int, *, reconnect: bool = False
) -> AsyncIterator[Post]:
    """``post(worker, body)`` over one connection per worker.

    ``reconnect``: a new connection per request, so that with several uvicorn workers
    (which share one listening socket) each request goes to a worker free to accept it, as
    a load balancer would send it; a kept-alive connection stays on one worker.
    """
    if os.environ.get("BENCH_HTTP_CLIENT", "raw") == "httpx":
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        headers = {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"}
        async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits) as client:

            async def via_httpx(_: int, body: bytes) -> tuple[int, bytes]:
                r = await client.post(path, content=body)
                return r.status_code, r.content

            yield via_httpx
        return
    host, _, port = base.removeprefix("http://").partition(":")
    conns = [HttpConnection(host, int(port), path) for _ in range(clients)]
    try:

        async def raw(worker: int, body: bytes) -> tuple[int, bytes]:
            result = await conns[worker].post(body)
            if reconnect:
                await conns[worker].close()
                conns[worker] = HttpConnection(host, int(port), path)
            return result

        yield raw
    finally:
        for conn in conns:
            await conn.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def running_service(url: str) -> AsyncIterator[tuple[str, int]]:
    """``(base URL, pid)`` of ``uvicorn app.main:app`` on ``url``, once /readyz answers.

    ``BENCH_INTAKE_APP=module:attribute`` serves another ASGI app instead (an experiment).
    """
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": asyncpg_dsn(url),
        "STOREOPS_ADMIN_KEY": ADMIN_KEY,
        "STOREOPS_ACCESS_LOG": "false",
        "STOREOPS_SWEEP_ENABLED": "false",
        "STOREOPS_LOG_LEVEL": "WARNING",
    }
    target = os.environ.get("BENCH_INTAKE_APP", "app.main:app")  # to try a patched variant
    command = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1"]
    # One worker per core, as the service is deployed; BENCH_UVICORN_WORKERS=1 measures one.
    workers = os.environ.get("BENCH_UVICORN_WORKERS", str(os.cpu_count() or 1))
    command += ["--port", str(port), "--workers", workers, "--loop", "uvloop", "--no-access-log"]
    command += ["--log-level", "warning"]
    process = await asyncio.create_subprocess_exec(*command, cwd=PROJECT_ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(300):
                if process.returncode is not None:
                    raise RuntimeError(f"uvicorn exited with {process.returncode}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the service did not become ready in 30 s")
        yield base, process.pid
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()


# --- rows ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Derived:
    """What the app derives from a draft: dispatch deadline, at-risk instant, total."""

    deadline: datetime
    at_risk_at: datetime
    total: Decimal


def _derive(d: Draft) -> Derived:
    """DOMAIN.md §2 for a paid, non-group order; totals without discount or shipping."""
    due = deadline(d.paid_at, None, POLICY)
    assert due is not None
    total = totals([(q, s.price) for s, q in d.lines], ZERO, ZERO).total
    return Derived(due, at_risk_from(d.paid_at, due, POLICY), total)


def _line_ref(order_id: int, line_no: int) -> str:
    """The reservation reference the app gives an order line."""
    return f"order:{order_id}:{line_no}"


def _event(order_id: int, d: Draft, total: Decimal) -> str:
    data = {
        "order_id": str(order_id),
        "external_id": d.external_id,
        "status": "awaiting_shipment",
        "allocation": "full",
        "total": str(total),
    }
    return orjson.dumps(data).decode()


def _order_values(store_id: int, d: Draft, x: Derived) -> list[Any]:
    """The values of ORDER_COLUMNS (as the app writes them), buyer as JSON text."""
    digest = hashlib.sha256(d.external_id.encode()).hexdigest()
    now = datetime.now(UTC)
    return [
        store_id, d.external_id, "awaiting_shipment", "full", d.placed_at, d.paid_at, False,
        None, None, None, d.paid_at, x.deadline, x.at_risk_at, BUYER_JSON, BUYER["phone"],
        x.total, ZERO, ZERO, x.total, None, True, digest, 1, now, now,
    ]  # fmt: skip


async def _copy_batch(conn: asyncpg.Connection, cat: Catalog, drafts: Sequence[Draft]) -> None:
    """One bulk-ceiling batch: ids, then one transaction of four COPYs and the stock UPDATE.

    The balances are locked last, in SKU-id order, so concurrent batches hold them only
    for the UPDATE and the commit.
    """
    ids: list[int] = await conn.fetchval(TAKE_IDS, len(drafts))
    wanted: dict[int, int] = defaultdict(int)
    orders, lines, res, events = [], [], [], []
    for order_id, d in zip(ids, drafts, strict=True):
        x = _derive(d)
        orders.append((order_id, *_order_values(cat.store_id, d, x)))
        for n, (sku, q) in enumerate(d.lines, 1):
            wanted[sku.id] += q
            lines.append((order_id, n, sku.id, q, sku.price, (sku.price * q).quantize(CENT), q))
            ref = _line_ref(order_id, n)
            res.append((sku.id, cat.store_id, ref, order_id, q, q, x.deadline, d.placed_at))
        events.append(("order.created", cat.store_id, _event(order_id, d, x.total)))
    skus = sorted(wanted)
    async with conn.transaction():
        await conn.copy_records_to_table("orders", records=orders, columns=["id", *ORDER_COLUMNS])
        await conn.copy_records_to_table("order_lines", records=lines, columns=LINE_COLUMNS)
        await conn.copy_records_to_table("reservations", records=res, columns=RES_COLUMNS)
        await conn.copy_records_to_table("events", records=events, columns=EVENT_COLUMNS)
        await conn.fetch(LOCK_LEVELS, skus)
        status = await conn.execute(ADD_RESERVED, skus, [wanted[s] for s in skus])
        if status != f"UPDATE {len(skus)}":
            raise RuntimeError(f"stock update touched {status}, expected {len(skus)} SKUs")


def _app_op(post: Post, make: Callable[[], bytes], per_op: int) -> Op:
    """POST ``make()``; every order must come back 201."""

    expected = 201 if per_op == 1 else 200

    async def op(worker: int) -> None:
        status, body = await post(worker, make())
        if status != expected:
            raise RuntimeError(f"intake answered {status}: {body[:500]!r}")
        if per_op > 1:
            results = orjson.loads(body)["results"]
            if len(results) != per_op or any(r["status"] != 201 for r in results):
                raise RuntimeError(f"bulk intake refused orders: {body[:500]!r}")

    return op


async def _app_slice(
    url: str, row: Row, path: str, make: Callable[[], bytes], options: Options
) -> int:
    """One slice of an app row, the service started for it (its pool and ours never overlap)."""
    # Batches are few and large: reconnecting costs nothing next to a 1,000-order request.
    reconnect = row.per_op > 1
    if row.per_op == 1:
        # Single orders spread over ~clients fresh connections, each of which pays once for
        # type introspection and its first plans: serve long enough that the window sees
        # the service as it runs when deployed (batches reuse a few connections).
        options = replace(options, warmup=options.warmup + SERVICE_WARMUP)
    async with (
        running_service(url) as (base, pid),
        _poster(base, path, row.clients, reconnect=reconnect) as post,
    ):
        return await row.measure(_app_op(post, make, row.per_op), options, pid)


async def _single_order(conn: asyncpg.Connection, cat: Catalog) -> None:
    """The single-order ceiling: the app's writes for one order in one transaction."""
    d = cat.draft("R")
    x = _derive(d)
    async with conn.transaction():
        order_id = await conn.fetchval(INSERT_ORDER, *_order_values(cat.store_id, d, x))
        for n, (sku, q) in sorted(enumerate(d.lines, 1), key=lambda line: line[1][0].id):
            args = (q, sku.id, _line_ref(order_id, n), order_id, x.deadline, d.placed_at)
            if await conn.fetchrow(RESERVE, *args) is None:
                raise RuntimeError(f"reservation of SKU {sku.id} failed")
        (a, qa), (b, qb) = d.lines
        await conn.execute(
            INSERT_LINES, order_id, a.id, qa, a.price, (a.price * qa).quantize(CENT),
            b.id, qb, b.price, (b.price * qb).quantize(CENT),
        )  # fmt: skip
        await conn.execute(INSERT_EVENT, cat.store_id, _event(order_id, d, x.total))


async def _raw_slice(
    url: str, row: Row, options: Options, op: Callable[[asyncpg.Connection], Awaitable[None]]
) -> int:
    """One slice of a ceiling row: each worker holds its own connection throughout."""
    conns = [await asyncpg.connect(asyncpg_dsn(url)) for _ in range(row.clients)]
    try:

        async def run(worker: int) -> None:
            await op(conns[worker])

        return await row.measure(run, options)
    finally:
        for conn in conns:
            await conn.close()


async def _interleave(
    url: str, options: Options, slices: Sequence[tuple[Row, Callable[[], Awaitable[int]]]]
) -> None:
    """Every row in turn, ``options.rounds`` times, each slice from empty order tables."""
    admin = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for _ in range(options.rounds):
            for row, run_slice in slices:
                await _reset(admin)
                counted = await run_slice()
                await _check(admin, row.name, counted, row.lines)
    finally:
        await admin.close()


def _summary(rows: Sequence[Row], last: str) -> str:
    """Per row: CPU cores busy in its windows, and CPU ms per op of uvicorn and postgres."""
    lines = []
    for r in rows:
        c, per_s = r.cores(), r.result().ops_per_s
        lines.append(
            f"cpu in '{r.name}': cores machine {c.machine:.2f}, uvicorn {c.server:.2f}, "
            f"postgres backends {c.postgres:.2f}, bench {c.client:.2f}; ms/op uvicorn "
            f"{c.server * 1000 / per_s:.2f}, postgres {c.postgres * 1000 / per_s:.2f}"
        )
    return "\n".join([*lines, last])


def _postgres_ms(row: Row) -> float:
    """PostgreSQL CPU ms per op of a row (per order for single-order rows)."""
    return row.cores().postgres * 1000 / row.result().ops_per_s


def _postgres_line(app: Row, raw: Row) -> str:
    ratio = _postgres_ms(app) / _postgres_ms(raw)
    return (
        f"postgres CPU per order: app {_postgres_ms(app):.2f} ms, ceiling {_postgres_ms(raw):.2f}"
        f" ms = {ratio:.2f}x (target <= {PG_CPU_TARGET:.1f}x)"
    )


def _code_state() -> dict[str, Any]:
    """The commit measured and the files of app/ changed on top of it (others edit it live)."""
    git = ("git", "-C", str(PROJECT_ROOT))
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, check=True)
        changed = subprocess.run(
            [*git, "status", "--porcelain", "--", "app", "alembic"],
            capture_output=True,
            check=True,
        )
        return {
            "head": head.stdout.decode().strip(),
            "changed": changed.stdout.decode().split("\n")[:-1],
        }
    return {}


def _extra(rows: Sequence[Row]) -> dict[str, Any]:
    cores = {r.name: {k: round(v, 3) for k, v in asdict(r.cores()).items()} for r in rows}
    per_op = {
        r.name: {k: round(v * 1000 / r.result().ops_per_s, 3) for k, v in asdict(r.cores()).items()}
        for r in rows
    }
    return {
        "cpu_cores": cores,
        "cpu_ms_per_op": per_op,
        "http_client": os.environ.get("BENCH_HTTP_CLIENT", "raw"),
        "app": os.environ.get("BENCH_INTAKE_APP", "app.main:app"),
        "code": _code_state(),
    }


async def _catalog(url: str) -> Catalog:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await _seed(conn)
    finally:
        await conn.close()


async def run_single(url: str, options: Options) -> Report:
    """POST /v1/orders at ``options.clients`` workers against its raw-asyncpg ceiling."""
    cat, db = await _catalog(url), _database(url)
    app = Row(APP, options.clients, 1, db)
    raw = Row(RAW, options.clients, 1, db)

    def order() -> bytes:
        return orjson.dumps(cat.draft("A").body(cat.store_id))

    await _interleave(
        url,
        options,
        [
            (app, lambda: _app_slice(url, app, "/v1/orders", order, options)),
            (raw, lambda: _raw_slice(url, raw, options, lambda c: _single_order(c, cat))),
        ],
    )
    ratio = app.result().ops_per_s / raw.result().ops_per_s
    last = (
        f"{_postgres_line(app, raw)}\n"
        f"{SINGLE}: app/ceiling = {ratio:.2f} (target >= {SINGLE_TARGET:.2f})"
    )
    return Report(
        SINGLE,
        [app.result(), raw.result()],
        baseline=RAW,
        summary=_summary((app, raw), last),
        extra={
            "ratio": round(ratio, 4),
            "target": SINGLE_TARGET,
            "postgres_cpu_ratio": round(_postgres_ms(app) / _postgres_ms(raw), 4),
            "service_warmup_s": SERVICE_WARMUP,
            **_extra((app, raw)),
        },
    )


async def run_hot(url: str, options: Options) -> Report:
    """Orders on two hot SKUs: 2 lines and 1 line through the app, 2 lines raw."""
    full, db = await _catalog(url), _database(url)
    cat = Catalog(full.store_id, full.skus[:2], full.rnd, full.seq)
    clients = min(options.clients, HOT_CLIENTS)
    two = Row(APP_HOT, clients, 1, db)
    one = Row(APP_HOT_ONE, clients, 1, db, lines=1)
    raw = Row(RAW_HOT, clients, 1, db)

    def order(lines: int) -> Callable[[], bytes]:
        return lambda: orjson.dumps(cat.draft("H", lines).body(cat.store_id))

    await _interleave(
        url,
        options,
        [
            (two, lambda: _app_slice(url, two, "/v1/orders", order(2), options)),
            (one, lambda: _app_slice(url, one, "/v1/orders", order(1), options)),
            (raw, lambda: _raw_slice(url, raw, options, lambda c: _single_order(c, cat))),
        ],
    )
    ratio = two.result().ops_per_s / raw.result().ops_per_s
    last = (
        f"{_postgres_line(two, raw)}\n"
        f"{HOT}: 2 hot lines app/ceiling = {ratio:.2f}, "
        f"1 hot line {one.result().ops_per_s / raw.result().ops_per_s:.2f}"
    )
    return Report(
        HOT,
        [two.result(), one.result(), raw.result()],
        baseline=RAW_HOT,
        summary=_summary((two, one, raw), last),
        extra={
            "ratio": round(ratio, 4),
            "postgres_cpu_ratio": round(_postgres_ms(two) / _postgres_ms(raw), 4),
            "service_warmup_s": SERVICE_WARMUP,
            **_extra((two, one, raw)),
        },
    )


async def run_bulk(url: str, options: Options) -> Report:
    """POST /v1/orders/bulk (1,000 orders) at 2 workers against a COPY ceiling."""
    cat, db = await _catalog(url), _database(url)
    app = Row(APP_BULK, BULK_CLIENTS, BATCH, db)
    raw = Row(RAW_BULK, BULK_CLIENTS, BATCH, db)

    def batch() -> bytes:
        return orjson.dumps({"orders": [cat.draft("B").body(cat.store_id) for _ in range(BATCH)]})

    async def copy(conn: asyncpg.Connection) -> None:
        await _copy_batch(conn, cat, [cat.draft("RB") for _ in range(BATCH)])

    await _interleave(
        url,
        options,
        [
            (app, lambda: _app_slice(url, app, "/v1/orders/bulk", batch, options)),
            (raw, lambda: _raw_slice(url, raw, options, copy)),
        ],
    )
    ratio = app.result().ops_per_s / raw.result().ops_per_s
    per_s, ceiling = app.result().ops_per_s * BATCH, raw.result().ops_per_s * BATCH
    last = (
        f"orders/s: app {per_s:,.0f}, ceiling {ceiling:,.0f} (ops/s above are 1,000-order batches)"
        f"\n{BULK}: app/ceiling = {ratio:.2f}, {per_s:,.0f} orders/s "
        f"(targets >= {BULK_TARGET:.2f} and >= {BULK_ORDERS_PER_S:,}/s)"
    )
    extra = {
        "ratio": round(ratio, 4),
        "orders_per_s": round(per_s, 1),
        "ceiling_orders_per_s": round(ceiling, 1),
        "targets": {"ratio": BULK_TARGET, "orders_per_s": BULK_ORDERS_PER_S},
        "batch": BATCH,
        **_extra((app, raw)),
    }
    return Report(
        BULK,
        [app.result(), raw.result()],
        baseline=RAW_BULK,
        summary=_summary((app, raw), last),
        extra=extra,
    )
