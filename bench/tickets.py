"""Scenario ``tickets``: SLA lists and the ticket sweep on a store with 500,000 tickets.

One store with 500,000 tickets COPYed in (not through the API): 90 % resolved over the
last 60 days, 10 % (50,000) open, opened over the last 48 h, their due instants computed
by the service's own rules (first response in service hours), 70 % already answered,
spread over 20 agents; each ticket has its first message. The real service runs under
uvicorn (one worker, sweeps off). Targets, at one client (requests back to back):

- ``GET /v1/tickets?store_id=&sla=breached&limit=50``: p99 <= 50 ms;
- ``GET /v1/tickets?store_id=&status=open&assignee=&limit=50``: p99 <= 50 ms;
- the ticket sweep over the 50,000 open tickets (escalations and SLA notices, first pass
  and a repeat pass): under 10 s.

The uvicorn worker's CPU per request (from its process CPU times, warm-up included) is
printed too: on a shared machine the latency depends on the load, the CPU does not.

The baseline row is the breached list's SQL alone through raw asyncpg (no HTTP, no read
model), so the ratio shows what the service adds around the query.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import psutil

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.domain.ticket import rules
from app.domain.ticket.rules import ServiceHours, TicketType
from app.domain.ticket.sweep import sweep_tickets
from bench.common import Options, Report, Sample, asyncpg_dsn, measure_slice, summarize
from bench.dispatch_board import ADMIN_KEY, running_service

NAME = "tickets"
TARGET_MS = 50.0
SWEEP_TARGET_S = 10.0
TICKETS = 500_000
OPEN_SHARE = 10
AGENTS = 20
LIMIT = 50
H = timedelta(hours=1)
COLUMNS = (
    "store_id",
    "external_id",
    "type",
    "priority",
    "status",
    "subject",
    "assignee",
    "opened_at",
    "first_response_due",
    "first_response_at",
    "resolution_started_at",
    "resolution_due",
    "resolved_at",
    "outcome",
    "content_hash",
    "version",
)
TYPES = [t for t in TicketType]
# The breached list's statement, as the service issues it (for the raw baseline).
BREACHED_SQL = (
    "SELECT * FROM tickets WHERE store_id = $1 AND status = 'open' AND "
    "((first_response_at IS NULL AND first_response_due < $2) OR resolution_due < $2) "
    "ORDER BY id DESC LIMIT 51"
)


def records(store_id: int, now: datetime) -> Iterator[tuple[Any, ...]]:
    """500,000 ticket rows: resolved history first, then the open ones by opening time."""
    rnd = random.Random(20261201)
    hours = ServiceHours(tz=ZoneInfo("Asia/Shanghai"))
    open_count = TICKETS // OPEN_SHARE
    old = TICKETS - open_count
    for i in range(TICKETS):
        ticket_type = TYPES[rnd.randrange(len(TYPES))]
        priority = rules.default_priority(ticket_type)
        agent = f"agent-{rnd.randrange(AGENTS)}"
        if i < old:
            opened = now - timedelta(days=60) + timedelta(seconds=i * (58 * 86_400 / old))
            fr_due = opened + timedelta(minutes=30)
            answered: datetime | None = opened + timedelta(minutes=rnd.randint(1, 40))
            resolved: datetime | None = opened + timedelta(hours=rnd.randint(1, 30))
            status, outcome = "resolved", "answered"
        else:
            opened = now - 48 * H + timedelta(seconds=(i - old) * (48 * 3600 / open_count))
            fr_due = rules.first_response_due(opened, priority, hours)
            answered = opened + timedelta(minutes=5) if rnd.random() < 0.7 else None
            resolved, status, outcome = None, "open", None
        yield (
            store_id,
            f"AS{i:08d}",
            ticket_type.value,
            priority.value,
            status,
            "售后",
            agent,
            opened,
            fr_due,
            answered,
            opened,
            rules.resolution_due(opened, ticket_type, priority),
            resolved,
            outcome,
            "bench",
            1,
        )


async def load(url: str) -> tuple[int, datetime]:
    """Create the store, COPY the tickets and their first messages; the store and now."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        store_id: int = await conn.fetchval(
            "INSERT INTO stores (code, name, platform, version) "
            "VALUES ('bench-tickets', '售后旗舰店', 'pdd', 1) RETURNING id"
        )
        now = datetime.now(UTC)
        started = time.perf_counter()
        await conn.copy_records_to_table("tickets", records=records(store_id, now), columns=COLUMNS)
        await conn.execute(
            "INSERT INTO ticket_messages (ticket_id, author, body, created_at) "
            "SELECT id, 'customer', '请尽快处理', opened_at FROM tickets WHERE store_id = $1",
            store_id,
        )
        await conn.execute("VACUUM (ANALYZE) tickets, ticket_messages")
        print(f"loaded {TICKETS:,} tickets in {time.perf_counter() - started:.1f}s", flush=True)
        return store_id, now
    finally:
        await conn.close()


async def _sweeps(url: str, now: datetime) -> list[tuple[str, float, dict[str, int]]]:
    """The ticket sweep over the store at ``now``, twice: first pass and a repeat."""
    engine = create_engine(url, Settings(database_url=url))
    try:
        maker = create_sessionmaker(engine)
        out = []
        for name in ("first pass", "repeat pass"):
            started = time.perf_counter()
            counts = await sweep_tickets(maker, now)
            load = os.getloadavg()[0]
            out.append((f"{name} (load average {load:.1f})", time.perf_counter() - started, counts))
        return out
    finally:
        await engine.dispose()


class _Counted:
    """An op that counts its calls (warm-up included), to share out the server's CPU."""

    def __init__(self, op: Any) -> None:
        self.op = op
        self.calls = 0

    async def __call__(self, index: int) -> None:
        self.calls += 1
        await self.op(index)


def _uvicorn() -> psutil.Process | None:
    """The uvicorn child serving the app (the only child process of this one)."""
    children = psutil.Process().children(recursive=True)
    return next((c for c in children if "uvicorn" in " ".join(c.cmdline())), None)


def _cpu(process: psutil.Process | None) -> float:
    """User + system CPU seconds of ``process`` (0 when unknown)."""
    if process is None:
        return 0.0
    times = process.cpu_times()
    return float(times.user + times.system)


async def run(url: str, options: Options) -> Report:
    """Load the store, measure both lists at one client and the raw query, then sweep."""
    store_id, _ = await load(url)
    names = ["sla=breached (HTTP)", "status=open&assignee (HTTP)", "sla=breached SQL (asyncpg)"]
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    server_cpu = dict.fromkeys(names, 0.0)
    server_ops = dict.fromkeys(names, 0)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    breached = {"store_id": str(store_id), "sla": "breached", "limit": str(LIMIT)}
    assigned = {"store_id": str(store_id), "status": "open", "assignee": "agent-3"}
    assigned["limit"] = str(LIMIT)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        statement = await conn.prepare(BREACHED_SQL)

        async def raw(_: int) -> None:
            await statement.fetch(store_id, datetime.now(UTC))

        async with (
            running_service(url) as base,
            httpx.AsyncClient(base_url=base, headers=headers) as client,
        ):

            def getter(params: dict[str, str]) -> Any:
                async def get(_: int) -> None:
                    r = await client.get("/v1/tickets", params=params)
                    if r.status_code != 200:
                        raise RuntimeError(f"tickets answered {r.status_code}: {r.text}")

                return get

            first = (await client.get("/v1/tickets", params=breached)).json()
            if len(first["items"]) != LIMIT or first["items"][0]["sla_state"] != "breached":
                raise AssertionError("sla=breached did not list 50 breached tickets")
            ops = [getter(breached), getter(assigned), raw]
            worker = _uvicorn()
            for _ in range(options.rounds):
                for name, op in zip(names, ops, strict=True):
                    counted = _Counted(op)
                    before = _cpu(worker)
                    samples[name].append(await measure_slice(1, counted, options))
                    server_cpu[name] += _cpu(worker) - before
                    server_ops[name] += counted.calls
    finally:
        await conn.close()
    sweeps = await _sweeps(url, datetime.now(UTC))
    rows = [summarize(name, 1, samples[name]) for name in names]
    cpu_ms = {n: 1000 * server_cpu[n] / max(server_ops[n], 1) for n in names[:2]}
    lines = [
        f"{NAME}: {row.name}: p99 = {row.p99_ms:.1f} ms (target <= {TARGET_MS:.0f} ms), "
        f"uvicorn CPU {cpu_ms[row.name]:.1f} ms/request"
        for row in rows[:2]
    ]
    lines += [
        f"{NAME}: sweep {name} over {TICKETS // OPEN_SHARE:,} open tickets: {seconds:.2f} s "
        f"(target < {SWEEP_TARGET_S:.0f} s) {counts}"
        for name, seconds, counts in sweeps
    ]
    return Report(
        NAME,
        rows,
        baseline=names[2],
        summary="\n".join([*lines, f"{NAME}: load average {os.getloadavg()[0]:.1f}"]),
        extra={
            "p99_ms": {row.name: round(row.p99_ms, 2) for row in rows},
            "uvicorn_cpu_ms_per_request": {n: round(v, 2) for n, v in cpu_ms.items()},
            "sweep_seconds": {name: round(seconds, 2) for name, seconds, _ in sweeps},
            "sweep_counts": {name: counts for name, _, counts in sweeps},
            "tickets": TICKETS,
        },
    )
