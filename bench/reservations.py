"""Scenario ``reservations``: one hot SKU, the domain ``reserve`` against raw asyncpg.

Rows, run one after the other on the same database, each from a reset balance:

- A ``domain service``: ``reserve()`` in an ``AsyncSession``, then ``commit()``;
- B ``raw asyncpg``: the bare conditional UPDATE, autocommit (the ceiling);
- C ``raw asyncpg, same tx``: BEGIN; the UPDATE + INSERT statement of ``reserve``; COMMIT;
- D ``raw asyncpg, same stmt autocommit``: that statement alone, autocommit.

B → D is the cost of writing the reservation row, D → C the cost of holding the row lock
across a client round trip (BEGIN … COMMIT), C → A the cost of SQLAlchemy.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, suppress
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.domain.inventory.levels import STATE_COLUMNS
from app.domain.inventory.reservations import Line, reserve
from bench.common import Op, Options, Report, Sample, asyncpg_dsn, measure_slice, summarize

NAME = "reservations"
TARGET = 0.5
DOMAIN = "domain service"
RAW = "raw asyncpg"
RAW_TX = "raw asyncpg, same tx"
RAW_STMT = "raw asyncpg, same stmt autocommit"
# Enough that reservations never run out; threshold 0 keeps low-stock events quiet.
ON_HAND = 1_000_000_000
DEADLINE = timedelta(hours=48)

RESERVE_BARE = (
    "UPDATE stock_levels SET reserved = reserved + $1"
    " WHERE sku_id = $2 AND on_hand - reserved >= $1"
)
# A reservation as one statement (UPDATE then INSERT), the shape the domain service used
# before stock could be taken at commit; kept as the same-transaction comparison row.
RESERVE_WITH_LINE = f"""
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

RawOp = Callable[[asyncpg.Connection], Op]


async def _seed(conn: asyncpg.Connection) -> int:
    """One store, one SKU and its balance; returns the SKU id."""
    store_id: int = await conn.fetchval(
        "INSERT INTO stores (code, name, platform, version) "
        "VALUES ('bench', 'Bench store', 'other', 1) RETURNING id"
    )
    sku_id: int = await conn.fetchval(
        "INSERT INTO skus (store_id, sku_code, title, price, version) "
        "VALUES ($1, 'HOT-1', 'Hot SKU', $2, 1) RETURNING id",
        store_id,
        Decimal("9.90"),
    )
    await conn.execute(
        "INSERT INTO stock_levels (sku_id, store_id, on_hand, reserved, threshold) "
        "VALUES ($1, $2, $3, 0, 0)",
        sku_id,
        store_id,
        ON_HAND,
    )
    return sku_id


async def _reset(conn: asyncpg.Connection, sku_id: int) -> None:
    """Start every row alike: no reservations, nothing reserved, no dead tuples."""
    await conn.execute("TRUNCATE reservations")
    await conn.execute("UPDATE stock_levels SET reserved = 0 WHERE sku_id = $1", sku_id)
    await conn.execute("VACUUM (ANALYZE) stock_levels")
    # A fresh checkpoint spares the next row a burst of full-page writes.
    with suppress(asyncpg.InsufficientPrivilegeError):
        await conn.execute("CHECKPOINT")


async def _check_balance(conn: asyncpg.Connection, sku_id: int) -> None:
    """The balance must equal the sum of the reservations written (no lost updates)."""
    reserved, held = await conn.fetchrow(
        "SELECT (SELECT reserved FROM stock_levels WHERE sku_id = $1), "
        "(SELECT coalesce(sum(reserved), 0) FROM reservations WHERE sku_id = $1)",
        sku_id,
    )
    if reserved != held:
        raise AssertionError(f"stock_levels.reserved={reserved} but reservations hold {held}")


async def _domain(url: str, sku_id: int, options: Options) -> Sample:
    """Row A: the service function in its own session and transaction per op."""
    engine = create_engine(url, Settings(db_pool_size=options.clients, db_max_overflow=0))
    sessionmaker = create_sessionmaker(engine)
    refs = itertools.count()

    async def op(_: int) -> None:
        now = datetime.now(UTC)
        line = Line(sku_id, 1, f"a-{next(refs)}", placed_at=now, deadline=now + DEADLINE)
        async with sessionmaker() as session:
            await reserve(session, line, allow_partial=False)
            await session.commit()

    try:
        # Open the whole pool before the clock starts, as asyncpg's min_size does for B-D.
        async with AsyncExitStack() as stack:
            for _ in range(options.clients):
                await stack.enter_async_context(engine.connect())
        return await measure_slice(options.clients, op, options)
    finally:
        await engine.dispose()


def _bare(sku_id: int) -> RawOp:
    """Row B: the conditional UPDATE, autocommit."""

    def bind(conn: asyncpg.Connection) -> Op:
        async def op(_: int) -> None:
            status = await conn.execute(RESERVE_BARE, 1, sku_id)
            if status != "UPDATE 1":
                raise RuntimeError(f"reservation failed: {status}")

        return op

    return bind


def _with_line(sku_id: int, prefix: str, *, in_tx: bool) -> RawOp:
    """Rows C and D: the statement of ``reserve``, in a transaction or autocommit."""
    refs = itertools.count()

    def bind(conn: asyncpg.Connection) -> Op:
        async def op(_: int) -> None:
            now = datetime.now(UTC)
            args = (1, sku_id, f"{prefix}-{next(refs)}", None, now + DEADLINE, now)
            if in_tx:
                async with conn.transaction():
                    row = await conn.fetchrow(RESERVE_WITH_LINE, *args)
            else:
                row = await conn.fetchrow(RESERVE_WITH_LINE, *args)
            if row is None:
                raise RuntimeError("reservation failed: no row")

        return op

    return bind


async def _raw(url: str, bind: RawOp, options: Options) -> Sample:
    """A raw row: each worker holds one pooled connection for the whole run.

    Acquire/release per op would add asyncpg's reset round trip, which is not part
    of the statement's cost.
    """
    size = options.clients
    async with asyncpg.create_pool(asyncpg_dsn(url), min_size=size, max_size=size) as pool:
        conns = [await pool.acquire() for _ in range(size)]
        ops = [bind(conn) for conn in conns]

        async def op(index: int) -> None:
            await ops[index](index)

        try:
            return await measure_slice(size, op, options)
        finally:
            for conn in conns:
                await pool.release(conn)


async def run(url: str, options: Options) -> Report:
    """Rows A–D on one hot SKU; the ratio of interest is A over B."""
    admin = await asyncpg.connect(asyncpg_dsn(url))
    try:
        sku_id = await _seed(admin)
        steps: list[tuple[str, Callable[[], Awaitable[Sample]]]] = [
            (DOMAIN, lambda: _domain(url, sku_id, options)),
            (RAW, lambda: _raw(url, _bare(sku_id), options)),
            (RAW_TX, lambda: _raw(url, _with_line(sku_id, "c", in_tx=True), options)),
            (RAW_STMT, lambda: _raw(url, _with_line(sku_id, "d", in_tx=False), options)),
        ]
        samples: dict[str, list[Sample]] = {name: [] for name, _ in steps}
        for _ in range(options.rounds):
            for name, step in steps:
                await _reset(admin, sku_id)
                samples[name].append(await step())
                if name != RAW:
                    await _check_balance(admin, sku_id)
    finally:
        await admin.close()
    rows = [summarize(name, options.clients, samples[name]) for name, _ in steps]
    ratio = rows[0].ops_per_s / rows[1].ops_per_s
    return Report(
        NAME,
        rows,
        baseline=RAW,
        summary=f"{NAME}: domain/raw = {ratio:.2f} (target >= {TARGET:.2f})",
        extra={"ratio": round(ratio, 4), "target": TARGET},
    )
