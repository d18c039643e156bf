"""Scenario ``webhooks``: webhook delivery while order intake runs at full speed.

The service runs as in ``intake-single`` (uvicorn, one worker per core, each process with
its webhook worker) and ``--clients`` workers POST paid orders to ``/v1/orders`` as fast
as it takes them. A receiver in this process acknowledges each delivery at once and
notes its lag: receipt time minus the event's ``occurred_at`` (the writing transaction's
start, so the lag also holds the transaction itself and the wait for the feed horizon).

- ``healthy alone``: one webhook on ``order.created`` of the store.
- ``next to a hanging one``: the same, plus a second webhook on the same events whose
  endpoint accepts the connection and never answers (each attempt runs into the 5 s
  timeout, then backs off). The healthy webhook's lag must stay the same.

With ``--rounds N`` the two phases alternate in N slices of ``seconds / N`` each (the
hanging webhook is created before each of its slices and deleted after).

Rows: intake orders/s in each phase, and per phase the deliveries received in the window
(ops/s) with the lag's p50/p99 in the latency columns. Targets: deliveries keep up with
intake, p99 lag <= 2 s, and the hanging endpoint leaves the healthy lag unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection

import asyncpg
import httpx
import orjson

from bench.common import Measurement, Options, Report, Sample, asyncpg_dsn, measure_slice, summarize
from bench.intake import (
    ADMIN_KEY,
    SERVICE_WARMUP,
    Catalog,
    _app_op,
    _catalog,
    _poster,
    running_service,
)

NAME = "webhooks"
LAG_P99_TARGET_S = 2.0
SECRET = "whsec_bench_0123456789"
HEALTHY = "/healthy"
HANGING = "/hanging"


@dataclass
class Receiver:
    """Acknowledges deliveries at once; ``HANGING`` never answers. Notes each receipt."""

    receipts: list[tuple[float, float]] = field(default_factory=list)
    """(time.time() at receipt, lag in seconds) of each healthy delivery."""
    hanging: int = 0
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen on a free local port."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                path = line.split(b" ", 2)[1].decode()
                length = 0
                while (raw := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = raw.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                if path == HANGING:
                    self.hanging += 1
                    await asyncio.sleep(3600)
                at = time.time()
                occurred = datetime.fromisoformat(orjson.loads(body)["occurred_at"])
                self.receipts.append((at, at - occurred.timestamp()))
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            writer.close()


def _serve_receiver(conn: Connection) -> None:
    """The receiver's own process (a webhook endpoint is another service): it sends its
    port, then answers ``"dump"`` with ``(receipts, hanging)`` until ``"stop"``."""

    async def main() -> None:
        receiver = Receiver()
        await receiver.start()
        conn.send(receiver.port)
        loop = asyncio.get_running_loop()
        while (command := await loop.run_in_executor(None, conn.recv)) != "stop":
            assert command == "dump"
            conn.send((receiver.receipts, receiver.hanging))
        receiver.close()

    asyncio.run(main())


class RemoteReceiver:
    """A :class:`Receiver` in a child process."""

    def __init__(self) -> None:
        self._conn, child = multiprocessing.get_context("spawn").Pipe()
        self._process = multiprocessing.get_context("spawn").Process(
            target=_serve_receiver, args=(child,), daemon=True
        )
        self._process.start()
        self.port: int = self._conn.recv()

    def dump(self) -> tuple[list[tuple[float, float]], int]:
        """Receipts so far and the hanging endpoint's request count."""
        self._conn.send("dump")
        receipts, hanging = self._conn.recv()
        return receipts, hanging

    def close(self) -> None:
        """Stop the child."""
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Settings for the service started inside (``running_service`` passes os.environ)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


async def _subscribe(client: httpx.AsyncClient, url: str, store_id: int) -> str:
    r = await client.post(
        "/v1/webhooks",
        json={
            "url": url,
            "events": ["order.created"],
            "secret": SECRET,
            "store_ids": [str(store_id)],
        },
    )
    r.raise_for_status()
    return str(r.json()["id"])


async def _drained(url: str, client: httpx.AsyncClient, seconds: float) -> None:
    """Wait (bounded) until the healthy webhook has delivered the last event written."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        last = await conn.fetchval("SELECT max(id) FROM events")
    finally:
        await conn.close()
    deadline = time.monotonic() + seconds
    while last is not None and time.monotonic() < deadline:
        hooks = (await client.get("/v1/webhooks")).json()["items"]
        healthy = next(h for h in hooks if h["url"].endswith(HEALTHY))
        if int(healthy["last_delivered_event_id"] or 0) >= last:
            return
        await asyncio.sleep(0.2)


@dataclass
class Phase:
    """One measured phase: intake samples and the deliveries inside its windows."""

    name: str
    intake: list[Sample] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    seconds: float = 0.0
    windows: list[tuple[float, float]] = field(default_factory=list)
    received: int = 0


async def _measure(
    phase: Phase, receiver: RemoteReceiver, base: str, cat: Catalog, options: Options
) -> None:
    def order() -> bytes:
        return orjson.dumps(cat.draft(phase.name[:1].upper()).body(cat.store_id))

    start = time.time() + options.warmup
    end = start + options.slice_seconds
    async with _poster(base, "/v1/orders", options.clients) as post:
        sample = await measure_slice(options.clients, _app_op(post, order, 1), options)
    phase.intake.append(sample)
    phase.seconds += options.slice_seconds
    phase.windows.append((start, end))


def _collect(phase: Phase, receipts: list[tuple[float, float]]) -> None:
    """Deliveries received inside the windows, and the lags of the events committed inside
    them (a backlog delivered after the window still counts with its full lag)."""
    for start, end in phase.windows:
        phase.received += sum(1 for at, _ in receipts if start <= at < end)
        phase.lags += [lag for at, lag in receipts if start <= at - lag < end]


def _lag_row(name: str, phase: Phase) -> Measurement:
    ordered = sorted(phase.lags)

    def pct(p: float) -> float:
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)] * 1000 if ordered else math.nan

    return Measurement(
        name=name,
        clients=1,
        ops=phase.received,
        seconds=phase.seconds,
        ops_per_s=phase.received / phase.seconds if phase.seconds else math.nan,
        p50_ms=pct(0.50),
        p99_ms=pct(0.99),
        cpu_ms_per_op=math.nan,
    )


@contextlib.asynccontextmanager
async def _service(url: str) -> AsyncIterator[tuple[str, int]]:
    with _environment(STOREOPS_WEBHOOK_ALLOWED_HOSTS="127.0.0.1"):
        async with running_service(url) as (base, pid):
            yield base, pid


async def run(url: str, options: Options) -> Report:
    """Intake at full speed with one healthy webhook, then with a hanging one next to it."""
    cat = await _catalog(url)
    receiver = RemoteReceiver()
    alone, beside = Phase("alone"), Phase("beside")
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    try:
        async with (
            _service(url) as (base, _),
            httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client,
        ):
            await _subscribe(client, f"http://127.0.0.1:{receiver.port}{HEALTHY}", cat.store_id)
            # Serve a while first, as in intake-single (fresh connections, first plans).
            warm = Phase("warm")
            warm_options = Options(options.clients, SERVICE_WARMUP, options.warmup)
            await _measure(warm, receiver, base, cat, warm_options)
            await _drained(url, client, 30)
            # The phases alternate in --rounds slices (the hanging webhook is added for each
            # "beside" slice and deleted after it), so background load falls on both alike.
            hanging_url = f"http://127.0.0.1:{receiver.port}{HANGING}"
            for _ in range(options.rounds):
                await _measure(alone, receiver, base, cat, options)
                await _drained(url, client, 60)
                hanging_id = await _subscribe(client, hanging_url, cat.store_id)
                await _measure(beside, receiver, base, cat, options)
                await _drained(url, client, 60)
                (await client.delete(f"/v1/webhooks/{hanging_id}")).raise_for_status()
        receipts, hanging = receiver.dump()
        _collect(alone, receipts)
        _collect(beside, receipts)
    finally:
        receiver.close()
    rows = [
        summarize("app: POST /v1/orders, 1 webhook", options.clients, alone.intake),
        _lag_row("deliveries, healthy alone (p = lag)", alone),
        summarize("app: POST /v1/orders, + hanging webhook", options.clients, beside.intake),
        _lag_row("deliveries, next to hanging (p = lag)", beside),
    ]
    intake_a, lag_a, intake_b, lag_b = rows
    keep_up = lag_a.ops_per_s / intake_a.ops_per_s
    hang_ratio = lag_b.p99_ms / lag_a.p99_ms
    summary = (
        f"{NAME}: deliveries/s over intake orders/s = {keep_up:.2f} alone,"
        f" {lag_b.ops_per_s / intake_b.ops_per_s:.2f} next to the hanging endpoint;"
        f" p99 lag {lag_a.p99_ms / 1000:.2f} s alone, {lag_b.p99_ms / 1000:.2f} s next to it"
        f" (target <= {LAG_P99_TARGET_S:.1f} s); healthy p99 lag with/without the hanging"
        f" endpoint = {hang_ratio:.2f} (target ~1); hanging endpoint got {hanging}"
        " request(s)"
    )
    return Report(
        NAME,
        rows,
        baseline=intake_a.name,
        summary=summary,
        extra={
            "deliveries_over_intake": round(keep_up, 4),
            "p99_lag_s_alone": round(lag_a.p99_ms / 1000, 4),
            "p99_lag_s_beside_hanging": round(lag_b.p99_ms / 1000, 4),
            "hanging_ratio": round(hang_ratio, 4),
            "hanging_requests": hanging,
            "target_p99_lag_s": LAG_P99_TARGET_S,
        },
    )
