"""The sweep loop: time-based rules run in exactly one process at a time.

Every process runs :class:`Sweeper`; on each tick it tries a PostgreSQL advisory lock
and only the holder sweeps, so any number of replicas can run. Each sweep claims its
work in short transactions (``FOR UPDATE SKIP LOCKED``) and time-based events carry
dedupe keys, so a crash mid-sweep loses nothing and a repeat emits nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app import dberrors, idempotency
from app.domain.clock import Clock
from app.domain.dispatch.sweep import compact_board, sweep_orders
from app.domain.inventory.sweep import refresh_all_thresholds
from app.domain.promotion.calendar import sweep as sweep_promotions
from app.domain.report.compaction import compact as compact_reports
from app.domain.ticket.sweep import sweep_tickets

logger = logging.getLogger("storeops.worker")

# pg_advisory_lock key: the bytes of "storeops" as a bigint.
SWEEP_LOCK_KEY = int.from_bytes(b"storeops", "big") & 0x7FFF_FFFF_FFFF_FFFF

Sweep = Callable[[async_sessionmaker[AsyncSession], datetime], Awaitable[dict[str, int]]]


def _housekeeping(ttl_hours: int) -> Sweep:
    async def sweep(maker: async_sessionmaker[AsyncSession], now: datetime) -> dict[str, int]:
        async with maker() as session:
            purged = await idempotency.purge_expired(session, ttl_hours)
            await session.commit()
        return {
            "idempotency_keys_purged": purged,
            "board_groups_compacted": await compact_board(maker),
            "report_deltas_compacted": await compact_reports(maker),
        }

    return sweep


def sweeps(ttl_hours: int) -> dict[str, Sweep]:
    """Every rule sweep, by the name its counts are reported under."""
    return {
        "dispatch": sweep_orders,
        "inventory": refresh_all_thresholds,
        "tickets": sweep_tickets,
        "promotions": sweep_promotions,
        "housekeeping": _housekeeping(ttl_hours),
    }


async def run_sweeps(
    engine: AsyncEngine,
    maker: async_sessionmaker[AsyncSession],
    clock: Clock,
    ttl_hours: int,
    *,
    wait: bool,
) -> dict[str, dict[str, int]] | None:
    """Run every sweep once under the advisory lock; None if another process holds it."""
    async with engine.connect() as lock_conn:
        if wait:
            await lock_conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": SWEEP_LOCK_KEY})
        else:
            got = (
                await lock_conn.execute(
                    sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": SWEEP_LOCK_KEY}
                )
            ).scalar_one()
            if not got:
                await lock_conn.rollback()
                return None
        # Session-level lock: end the implicit transaction so the connection is not idle
        # in a transaction (which would hold back the event feed's horizon).
        await lock_conn.commit()
        try:
            now = clock.now()
            report: dict[str, dict[str, int]] = {}
            for name, sweep in sweeps(ttl_hours).items():
                report[name] = await sweep(maker, now)
            return report
        finally:
            await lock_conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": SWEEP_LOCK_KEY})
            await lock_conn.commit()


class Sweeper:
    """Background task: a sweep every ``interval`` seconds, if this process wins the lock."""

    def __init__(
        self,
        engine: AsyncEngine,
        maker: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        interval: float,
        ttl_hours: int,
    ) -> None:
        self.engine = engine
        self.maker = maker
        self.clock = clock
        self.interval = interval
        self.ttl_hours = ttl_hours
        self._task: asyncio.Task[Any] | None = None

    def start(self) -> None:
        """Start the loop."""
        self._task = asyncio.create_task(self._loop(), name="storeops-sweeper")

    async def stop(self) -> None:
        """Stop the loop (a sweep in progress is cancelled; its open batch rolls back)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                report = await run_sweeps(
                    self.engine, self.maker, self.clock, self.ttl_hours, wait=False
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The loop outlives any failure; a database outage is expected and brief,
                # so it is one line per tick rather than a traceback.
                failure = dberrors.classify(exc)
                if failure is not None and failure.kind is dberrors.Kind.UNAVAILABLE:
                    logger.warning("sweep.database_unavailable error=%s", type(exc).__name__)
                else:
                    logger.exception("sweep.failed")
                continue
            if report is not None:
                logger.info("sweep.done report=%s", report)
