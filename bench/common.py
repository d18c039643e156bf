"""Benchmark plumbing: server and database lifecycle, the timing loop, tables and results."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from app.bootstrap import migrate
from app.config import PROJECT_ROOT, to_async_url
from app.embedded_pg import start as start_embedded

BENCH_PG_DIR = PROJECT_ROOT / ".storeops" / "bench-pg"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# Headroom over warm-up + measuring window before a stuck run is cancelled.
STALL_SECONDS = 60.0

Op = Callable[[int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Options:
    """What every scenario is run with."""

    clients: int
    seconds: float
    warmup: float = 1.0
    # Rows are measured in this many interleaved slices of seconds / rounds each, so that
    # background load on a shared machine falls on every row alike.
    rounds: int = 1

    @property
    def slice_seconds(self) -> float:
        """Measuring window of one slice."""
        return self.seconds / self.rounds


@dataclass(frozen=True, slots=True)
class Sample:
    """One measuring window: the latencies of the ops that finished in it, and CPU used."""

    seconds: float
    latencies: list[float]
    cpu_seconds: float


@dataclass(frozen=True, slots=True)
class Measurement:
    """Throughput and latency of one row: ops completed inside its measuring windows."""

    name: str
    clients: int
    ops: int
    seconds: float
    ops_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_op: float


@dataclass(frozen=True, slots=True)
class Report:
    """A scenario's rows; ``baseline`` names the row that ratios are taken against."""

    scenario: str
    rows: list[Measurement]
    baseline: str
    summary: str
    extra: dict[str, Any] = field(default_factory=dict)

    def ratio(self, row: Measurement) -> float:
        """``row``'s throughput over the baseline's."""
        base = next(r for r in self.rows if r.name == self.baseline)
        return row.ops_per_s / base.ops_per_s if base.ops_per_s else math.nan


def asyncpg_dsn(url: str) -> str:
    """A ``postgresql://`` DSN for asyncpg from any accepted URL form."""
    return to_async_url(url).replace("postgresql+asyncpg://", "postgresql://", 1)


def _host(url: str) -> str | None:
    parsed = make_url(to_async_url(url))
    if parsed.host:
        return parsed.host
    host = parsed.query.get("host")
    return host[0] if isinstance(host, tuple) else host


def ensure_local(url: str) -> None:
    """Refuse any server but a local one: the benchmark creates and drops databases."""
    host = _host(url)
    if host is not None and not host.startswith("/") and host not in LOCAL_HOSTS:
        raise SystemExit(f"bench: refusing non-local database host {host!r}")


@contextlib.contextmanager
def server(url: str | None) -> Iterator[tuple[str, bool]]:
    """``(server URL, embedded?)``: ``url`` if given, else the embedded server in bench-pg."""
    if url:
        ensure_local(url)
        yield url, False
        return
    embedded = start_embedded(BENCH_PG_DIR)
    try:
        yield embedded.uri, True
    finally:
        embedded.stop()


async def _admin(server_url: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def fresh_database(server_url: str) -> AsyncIterator[str]:
    """A new ``storeops_bench_<hex>`` database migrated to head; dropped on exit."""
    name = f"storeops_bench_{uuid.uuid4().hex[:12]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    try:
        url = make_url(to_async_url(server_url)).set(database=name)
        rendered = url.render_as_string(hide_password=False)
        # migrate() runs its own event loop (alembic's async env), so not on this one.
        await asyncio.to_thread(migrate, rendered)
        yield rendered
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def server_facts(url: str) -> dict[str, Any]:
    """Version and settings of the server that shape the numbers."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        names = ("server_version", "max_connections", "synchronous_commit", "shared_buffers")
        return {n: await conn.fetchval(f"SHOW {n}") for n in names}
    finally:
        await conn.close()


def _percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


async def _window(clients: int, op: Op, warmup: float, seconds: float) -> Sample:
    started = time.perf_counter()
    window_start = started + warmup
    window_end = window_start + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]

    async def worker(index: int) -> None:
        perf = time.perf_counter
        out = latencies[index]
        while (t0 := perf()) < window_end:
            await op(index)
            t1 = perf()
            if window_start <= t1 < window_end:
                out.append(t1 - t0)

    cpu: list[float] = []

    async def sample_cpu() -> None:
        for moment in (window_start, window_end):
            await asyncio.sleep(moment - time.perf_counter())
            cpu.append(time.process_time())

    async with asyncio.timeout(warmup + seconds + STALL_SECONDS):
        async with asyncio.TaskGroup() as group:
            group.create_task(sample_cpu())
            for index in range(clients):
                group.create_task(worker(index))
    merged = [x for per_worker in latencies for x in per_worker]
    return Sample(seconds, merged, cpu[1] - cpu[0])


async def measure(name: str, clients: int, op: Op, options: Options) -> Measurement:
    """Run ``op(worker)`` in ``clients`` concurrent loops: warm-up, then a fixed window.

    Counted are the ops that finish inside the window; their latencies give p50/p99.
    ``cpu_ms_per_op`` is this process's CPU time over the window per counted op.
    """
    sample = await _window(clients, op, options.warmup, options.seconds)
    return summarize(name, clients, [sample])


async def measure_slice(clients: int, op: Op, options: Options) -> Sample:
    """Like :func:`measure`, for one of ``options.rounds`` interleaved slices of a row."""
    return await _window(clients, op, options.warmup, options.slice_seconds)


def summarize(name: str, clients: int, samples: Sequence[Sample]) -> Measurement:
    """One row from its slices: ops/s over the summed windows, percentiles over all ops."""
    ordered = sorted(x for s in samples for x in s.latencies)
    seconds = sum(s.seconds for s in samples)
    cpu = sum(s.cpu_seconds for s in samples)
    return Measurement(
        name=name,
        clients=clients,
        ops=len(ordered),
        seconds=seconds,
        ops_per_s=len(ordered) / seconds,
        p50_ms=_percentile(ordered, 0.50) * 1000,
        p99_ms=_percentile(ordered, 0.99) * 1000,
        cpu_ms_per_op=cpu * 1000 / len(ordered) if ordered else math.nan,
    )


def format_table(report: Report) -> str:
    """The report's rows as an aligned text table."""
    headers = (
        "scenario",
        "clients",
        "ops/s",
        "p50 ms",
        "p99 ms",
        f"ratio to {report.baseline}",
        "client CPU ms/op",
    )
    body = [
        (
            r.name,
            str(r.clients),
            f"{r.ops_per_s:,.0f}",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{report.ratio(r):.2f}",
            f"{r.cpu_ms_per_op:.2f}",
        )
        for r in report.rows
    ]
    widths = [max(len(line[i]) for line in (headers, *body)) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join((first, *rest))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join((line(headers), rule, *(line(b) for b in body)))


def write_results(report: Report, options: Options, context: dict[str, Any]) -> Path:
    """Write ``bench/results/<scenario>-<UTC timestamp>.json`` and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    path = RESULTS_DIR / f"{report.scenario}-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    payload = {
        "scenario": report.scenario,
        "finished_at": now.isoformat(),
        "options": asdict(options),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        **context,
        "baseline": report.baseline,
        "rows": [{**asdict(r), "ratio": round(report.ratio(r), 4)} for r in report.rows],
        "summary": report.summary,
        **report.extra,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
