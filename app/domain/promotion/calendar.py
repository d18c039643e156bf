"""Calendar events (DOMAIN.md §5, §7): ``promotion.started`` / ``promotion.ended`` once per
window, every weekly window included.

Each promotion remembers up to when its boundaries were announced (``calendar_at``) and
its next boundary (``next_boundary_at``, indexed). The sweep claims due promotions with
``FOR UPDATE SKIP LOCKED`` and every event carries a dedupe key naming its window, so two
sweepers, a crash mid-sweep or an early end never announce a window twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.events import service as events
from app.domain.promotion import repository
from app.domain.promotion.schedule import (
    Boundary,
    Timing,
    boundaries,
    is_on,
    next_boundary,
    windows,
)
from app.domain.store import zones

BATCH = 200
_TICK = timedelta(microseconds=1)


def calendar_values(timing: Timing, now: datetime) -> dict[str, Any]:
    """The calendar columns of a promotion created at ``now``."""
    return {"calendar_at": now, "next_boundary_at": next_boundary(timing, now)}


def dedupe_key(promotion_id: int, kind: str, window_start: datetime) -> str:
    """One event per promotion, kind and window."""
    return f"promotion.{kind}:{promotion_id}:{window_start.isoformat()}"


async def _emit(session: AsyncSession, row: Any, b: Boundary) -> bool:
    data = {
        "promotion_id": str(row.id),
        "name": row.name,
        "kind": row.kind,
        "code": row.code,
        "window_start": b.window_start,
        "window_end": b.window_end,
    }
    return await events.append(
        session,
        f"promotion.{b.kind}",
        row.store_id,
        data,
        dedupe_key=dedupe_key(row.id, b.kind, b.window_start),
    )


def _current(timing: Timing, now: datetime) -> tuple[datetime, datetime] | None:
    if not is_on(timing, now):
        return None
    found = windows(timing, now, now + _TICK)
    return found[0] if found else None


async def announce_now(session: AsyncSession, row: Any, tz: tzinfo, now: datetime) -> None:
    """A promotion created inside one of its windows: ``promotion.started`` now."""
    window = _current(repository.timing(row, tz), now)
    if window is not None:
        await _emit(session, row, Boundary(now, "started", *window))


async def announce_end(session: AsyncSession, row: Any, tz: tzinfo, now: datetime) -> None:
    """An early end inside a window: ``promotion.ended`` now; nothing left to announce."""
    window = _current(repository.timing(row, tz), now)
    if window is not None:
        await _emit(session, row, Boundary(now, "ended", window[0], now))
    await session.execute(
        sa.text("UPDATE promotions SET next_boundary_at = NULL WHERE id = :id"), {"id": row.id}
    )


_DUE = """
SELECT * FROM promotions WHERE next_boundary_at <= :now
 ORDER BY next_boundary_at, id LIMIT :n FOR UPDATE SKIP LOCKED
"""


async def sweep(maker: async_sessionmaker[AsyncSession], now: datetime) -> dict[str, int]:
    """Announce every window boundary due by ``now``; counts of events emitted."""
    counts = {"started": 0, "ended": 0}
    while True:
        async with maker() as session:
            rows = (await session.execute(sa.text(_DUE), {"now": now, "n": BATCH})).all()
            if not rows:
                await session.commit()
                return counts
            tzs = await zones.zones_of(session, {r.store_id for r in rows})
            for row in rows:
                timing = repository.timing(row, tzs[row.store_id])
                for b in boundaries(timing, row.calendar_at, now):
                    if await _emit(session, row, b):
                        counts[b.kind] += 1
                following = next_boundary(timing, now)
                await session.execute(
                    sa.text(
                        "UPDATE promotions SET calendar_at = :now, "
                        "next_boundary_at = CAST(:nb AS timestamptz), "
                        "ended_at = CASE WHEN CAST(:nb AS timestamptz) IS NULL AND ends_at <= :now "
                        "AND ended_at IS NULL THEN ends_at ELSE ended_at END WHERE id = :id"
                    ),
                    {"now": now, "nb": following, "id": row.id},
                )
            await session.commit()
