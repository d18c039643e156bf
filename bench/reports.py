"""Scenarios ``reports`` and ``reports-intake``: the daily-report rollups, read and written.

``reports``: ``GET /v1/reports/range`` for 90 days of one PDD store holding 1,000,000 orders
placed over the last 92 days (3 % never paid, 2 % cancelled, 0.2 % stuck past their
deadline, the rest shipped, 4 % of them late, the last ~50 h awaiting shipment; buyers drawn
from 400,000 phones). The orders are loaded set-based (``INSERT … SELECT generate_series``
in chunks of 100,000) with the report triggers on, so the rollups are the triggers' own
(one delta row per store and day per chunk); the sweep's compaction then folds them, and
2,000 more orders taken one statement at a time leave today's deltas pending, as between
two sweeps. The real service runs under uvicorn (one worker, sweeps off); the target,
p99 <= 100 ms, is measured at one client. Beside it: the same figures counted from the
orders in one pass (raw asyncpg), what a report without rollups would cost.

The loaded database ``storeops_bench_reports`` is kept between runs;
``BENCH_REPORTS_FRESH=1`` reloads it.

``reports-intake``: single intake (as ``intake-single``: 64 workers, paid orders of 2 lines)
with the report triggers enabled (this branch) and disabled (what ``main`` runs: the
triggers are the only change on the intake path), interleaved in ``--rounds`` slices on
one database, so both rows share the machine's background load.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import orjson
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.bootstrap import migrate
from app.config import to_async_url
from app.domain.report.compaction import compact
from bench import intake
from bench.common import Options, Report, Sample, asyncpg_dsn, measure_slice, summarize
from bench.dispatch_board import ADMIN_KEY, running_service

NAME = "reports"
INTAKE = "reports-intake"
TARGET_MS = 100.0
DB_NAME = "storeops_bench_reports"
ORDERS = 1_000_000
CHUNK = 100_000
PENDING = 2_000
DAYS = 90
HISTORY = timedelta(days=92)
STORE_CODE = "bench-reports"
TRIGGERS = ("insert", "update", "delete")

# Every order's fields from its number g (1..N) and a hash of it (r, 0..999): a timeline
# over HISTORY up to now, then kind by r. $1 store, $2 first placed_at, $3 spacing, $4 now,
# $5 first g, $6 last g.
LOAD = """
INSERT INTO orders (store_id, external_id, status, allocation, placed_at, paid_at,
       clock_started_at, dispatch_deadline, at_risk_at, buyer, buyer_phone, subtotal,
       discount, shipping_fee, total, penalty, carrier, tracking_number, shipped_at,
       shipped_late, completed_at, cancelled_at, cancel_reason, content_hash, version)
SELECT $1, 'RPT' || lpad(g::text, 8, '0'),
       CASE k WHEN 'pending' THEN 'pending_payment' WHEN 'cancelled' THEN 'cancelled'
              WHEN 'awaiting' THEN 'awaiting_shipment'
              ELSE CASE WHEN shipped < $4::timestamptz - interval '10 days' THEN 'completed'
                        ELSE 'shipped' END
       END,
       'full', placed, paid, paid, paid + interval '48 hours', paid + interval '24 hours',
       '{"name": "王五", "phone": "13900000000", "province": "浙江省", "city": "杭州市",
         "address": "西湖区文三路 1 号"}'::jsonb,
       phone, total, 0, 0, total,
       CASE WHEN k = 'shipped' AND shipped > paid + interval '48 hours' THEN 3.00 ELSE 0 END,
       CASE WHEN k = 'shipped' THEN 'ZTO' END,
       CASE WHEN k = 'shipped' THEN 'T' || lpad(g::text, 12, '0') END,
       CASE WHEN k = 'shipped' THEN shipped END,
       k = 'shipped' AND shipped > paid + interval '48 hours',
       CASE WHEN k = 'shipped' AND shipped < $4::timestamptz - interval '10 days'
            THEN shipped + interval '10 days' END,
       CASE WHEN k = 'cancelled' THEN paid + interval '1 hour' END,
       CASE WHEN k = 'cancelled' THEN '买家取消' END,
       'bench', 1
  FROM (
    SELECT g, placed, total, phone,
           CASE WHEN r < 30 THEN NULL ELSE placed + interval '1 minute' END AS paid,
           placed + interval '1 minute' + (r % 50) * interval '1 hour' AS shipped,
           CASE WHEN r < 30 THEN 'pending' WHEN r < 50 THEN 'cancelled'
                WHEN placed > $4::timestamptz - interval '50 hours' OR r < 52 THEN 'awaiting'
                ELSE 'shipped' END AS k
      FROM (SELECT g, abs(hashint4(g)) % 1000 AS r,
                   $2::timestamptz + (g - 1) * $3::interval AS placed,
                   10.00 + (abs(hashint4(g + 7)) % 50000) / 100.0 AS total,
                   '139' || lpad((abs(hashint4(g * 31)) % 400000)::text, 8, '0') AS phone
              FROM generate_series($5::int, $6::int) AS g) AS a
  ) AS o
"""
# What a report without rollups would cost: the day's figures counted from the orders.
ONE_PASS = """
SELECT d, count(*) FILTER (WHERE placed) AS placed, count(*) FILTER (WHERE paid) AS paid,
       sum(total) FILTER (WHERE paid) AS gmv, count(DISTINCT phone) FILTER (WHERE paid)
  FROM (SELECT (placed_at AT TIME ZONE 'Asia/Shanghai')::date AS d, true AS placed,
               false AS paid, total, buyer_phone AS phone FROM orders
         WHERE store_id = $1 AND placed_at >= $2
        UNION ALL
        SELECT (paid_at AT TIME ZONE 'Asia/Shanghai')::date, false, true, total, buyer_phone
          FROM orders WHERE store_id = $1 AND paid_at >= $2) AS x
 GROUP BY d
"""
APP = f"app: GET /v1/reports/range ({DAYS} days), 1 client"


async def _fetchval(url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def _load(url: str, conn: asyncpg.Connection) -> int:
    """Create the store, insert the orders in chunks (triggers on), fold the deltas."""
    store_id: int = await conn.fetchval(
        "INSERT INTO stores (code, name, platform, version) "
        "VALUES ($1, '报表旗舰店', 'pdd', 1) RETURNING id",
        STORE_CODE,
    )
    now = datetime.now(UTC)
    start = now - HISTORY
    spacing = (HISTORY - timedelta(minutes=10)) / ORDERS
    for first in range(1, ORDERS + 1, CHUNK):
        await conn.execute(LOAD, store_id, start, spacing, now, first, first + CHUNK - 1)
    await _fold(url)
    for month in {(now - timedelta(days=d)).date().replace(day=1) for d in range(DAYS + 31)}:
        await conn.execute(
            "INSERT INTO store_targets (store_id, month, sales_target) VALUES ($1, $2, $3)",
            store_id,
            month,
            6_000_000,
        )
    await conn.execute(
        "INSERT INTO store_traffic (store_id, day, visitors, ad_spend) "
        "SELECT $1, d::date, 200000, 5000 FROM generate_series($2::date, $3::date, "
        "interval '1 day') AS d",
        store_id,
        (now - HISTORY).date(),
        now.date(),
    )
    await conn.execute(
        "CREATE TABLE bench_reports_meta (store_id bigint NOT NULL, loaded_at timestamptz)"
    )
    await conn.execute("INSERT INTO bench_reports_meta VALUES ($1, $2)", store_id, now)
    return store_id


async def _fold(url: str) -> int:
    engine = create_async_engine(to_async_url(url))
    try:
        return await compact(async_sessionmaker(engine, expire_on_commit=False))
    finally:
        await engine.dispose()


async def _pending(conn: asyncpg.Connection, store_id: int) -> None:
    """Today's orders one statement at a time: delta rows the sweep has not folded yet."""
    now = datetime.now(UTC)
    base = int(time.time() * 1000) % 10**9
    statement = await conn.prepare(
        "INSERT INTO orders (store_id, external_id, status, allocation, placed_at, paid_at, "
        "buyer, buyer_phone, subtotal, discount, shipping_fee, total, content_hash, version) "
        "VALUES ($1, $2, 'awaiting_shipment', 'full', $3, $3, '{}'::jsonb, $4, 25, 0, 0, 25, "
        "'bench', 1)"
    )
    for n in range(PENDING):
        at = now - timedelta(seconds=n)
        await statement.fetch(store_id, f"PEND{base}-{n}", at, f"1370000{n % 997:04d}")


async def prepare(url: str, fresh: bool) -> tuple[str, int]:
    """The bench database (loaded, migrated, vacuumed) and its store id."""
    db_url = make_url(to_async_url(url)).set(database=DB_NAME).render_as_string(False)
    store_id = None
    if await _fetchval(url, "SELECT 1 FROM pg_database WHERE datname = $1", DB_NAME):
        if not fresh:
            with contextlib.suppress(asyncpg.UndefinedTableError):
                store_id = await _fetchval(db_url, "SELECT store_id FROM bench_reports_meta")
        if store_id is None:
            await _fetchval(url, f'DROP DATABASE "{DB_NAME}" WITH (FORCE)')
    if store_id is None:
        await _fetchval(url, f'CREATE DATABASE "{DB_NAME}"')
    await asyncio.to_thread(migrate, db_url)
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        if store_id is None:
            started = time.perf_counter()
            store_id = await _load(db_url, conn)
            print(f"loaded {ORDERS:,} orders in {time.perf_counter() - started:.1f}s", flush=True)
        await _fold(db_url)
        await _pending(conn, store_id)
        pending = await conn.fetchval("SELECT count(*) FROM report_day_deltas")
        print(f"{pending} delta rows pending (not folded)", flush=True)
        await conn.execute("VACUUM (ANALYZE) orders, report_days, report_day_deltas")
    finally:
        await conn.close()
    return db_url, store_id


async def _check(client: httpx.AsyncClient, db_url: str, params: dict[str, str]) -> None:
    """The report's GMV and orders paid per day equal a count of the orders."""
    body = (await client.get("/v1/reports/range", params=params)).raise_for_status().json()
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        rows = await conn.fetch(
            "SELECT (paid_at AT TIME ZONE 'Asia/Shanghai')::date AS d, count(*) AS n, "
            "sum(total) AS gmv FROM orders WHERE store_id = $1 AND paid_at >= $2 "
            "GROUP BY 1",
            int(params["store_id"]),
            datetime.combine(date.fromisoformat(params["from"]), datetime.min.time(), UTC)
            - timedelta(hours=8),
        )
    finally:
        await conn.close()
    counted = {r["d"].isoformat(): (r["n"], f"{r['gmv']:.2f}") for r in rows}
    for day in body["days"]:
        got = (day["orders_paid"], day["gmv"])
        if got != counted.get(day["date"], (0, "0.00")):
            raise AssertionError(f"{day['date']}: report {got}, orders {counted.get(day['date'])}")
    totals = body["totals"]
    print(
        f"90 days: {totals['orders_placed']:,} placed, {totals['orders_paid']:,} paid, "
        f"gmv {totals['gmv']}, overdue {totals['overdue']}, buyers (buyer-days) "
        f"{totals['buyers']:,}",
        flush=True,
    )


async def run(url: str, options: Options) -> Report:
    """Load (or reuse) the store, start the service, measure a 90-day range at 1 client."""
    fresh = os.environ.get("BENCH_REPORTS_FRESH", "") not in ("", "0")
    db_url, store_id = await prepare(url, fresh)
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    params = {
        "store_id": str(store_id),
        "from": (today - timedelta(days=DAYS - 1)).isoformat(),
        "to": today.isoformat(),
    }
    samples: list[Sample] = []
    one_pass_ms: list[float] = []
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        await conn.execute("SET jit = off")
        since = datetime.now(UTC) - timedelta(days=DAYS)
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        async with (
            running_service(db_url) as base,
            httpx.AsyncClient(base_url=base, headers=headers) as client,
        ):
            await _check(client, db_url, params)

            async def report(_: int) -> None:
                r = await client.get("/v1/reports/range", params=params)
                if r.status_code != 200:
                    raise RuntimeError(f"report answered {r.status_code}: {r.text}")

            for _ in range(options.rounds):
                samples.append(await measure_slice(1, report, options))
                # Seconds per run: timed once per round rather than in a window.
                started = time.perf_counter()
                await conn.fetch(ONE_PASS, store_id, since)
                one_pass_ms.append((time.perf_counter() - started) * 1000)
    finally:
        await conn.close()
    app = summarize(APP, 1, samples)
    counted = sorted(one_pass_ms)[len(one_pass_ms) // 2]
    return Report(
        NAME,
        [app],
        baseline=APP,
        summary=f"counting placed/paid/GMV/buyers from the orders instead (one pass, asyncpg, "
        f"no JIT): median {counted:.0f} ms of {len(one_pass_ms)} runs\n"
        f"{NAME}: p50 {app.p50_ms:.1f} ms, p99 = {app.p99_ms:.1f} ms "
        f"(target <= {TARGET_MS:.0f} ms) for {DAYS} days of {ORDERS:,} orders",
        extra={
            "p99_ms": round(app.p99_ms, 2),
            "target_ms": TARGET_MS,
            "orders": ORDERS,
            "one_pass_ms": [round(x, 1) for x in one_pass_ms],
        },
    )


async def _triggers(url: str, enabled: bool) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for op in TRIGGERS:
            action = "ENABLE" if enabled else "DISABLE"
            await conn.execute(f"ALTER TABLE orders {action} TRIGGER orders_report_days_{op}")
    finally:
        await conn.close()


async def run_intake(url: str, options: Options) -> Report:
    """Single intake with and without the report triggers, interleaved slices."""
    cat, db = await intake._catalog(url), intake._database(url)
    with_rollups = intake.Row("app: POST /v1/orders, report triggers on", options.clients, 1, db)
    without = intake.Row("app: POST /v1/orders, triggers off (main)", options.clients, 1, db)

    def order() -> bytes:
        return orjson.dumps(cat.draft("A").body(cat.store_id))

    async def slice_of(row: intake.Row, enabled: bool) -> int:
        await _triggers(url, enabled)
        return await intake._app_slice(url, row, "/v1/orders", order, options)

    await intake._interleave(
        url,
        options,
        [
            (without, lambda: slice_of(without, False)),
            (with_rollups, lambda: slice_of(with_rollups, True)),
        ],
    )
    on, off = with_rollups.result(), without.result()
    ratio = on.ops_per_s / off.ops_per_s
    pg_ratio = intake._postgres_ms(with_rollups) / intake._postgres_ms(without)
    return Report(
        INTAKE,
        [off, on],
        baseline=off.name,
        summary=(
            f"{intake._summary((without, with_rollups), '')}"
            f"{INTAKE}: throughput with/without report triggers = {ratio:.3f}; "
            f"postgres CPU per order {intake._postgres_ms(with_rollups):.2f} vs "
            f"{intake._postgres_ms(without):.2f} ms = {pg_ratio:.3f}x"
        ),
        extra={"ratio": round(ratio, 4), "postgres_cpu_ratio": round(pg_ratio, 4)},
    )
