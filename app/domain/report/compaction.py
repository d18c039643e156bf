"""The report sweep: fold ``report_day_deltas`` into one ``report_days`` row per store and day.

Writers only append deltas, so they never wait on each other; a report sums the compacted
row and the deltas not folded yet. Each batch is one transaction that deletes up to
:data:`BATCH` delta rows (claimed ``FOR UPDATE SKIP LOCKED``) and adds their sums into
``report_days``: a report read at any moment sees each change exactly once, before or after.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models.report import FIGURES

BATCH = 20_000

_COLUMNS = ", ".join(FIGURES)
_COMPACT = sa.text(
    f"""
    WITH gone AS (
        DELETE FROM report_day_deltas
         WHERE ctid = ANY(ARRAY(SELECT ctid FROM report_day_deltas LIMIT :batch
                                   FOR UPDATE SKIP LOCKED))
        RETURNING *
    ), folded AS (
        INSERT INTO report_days (store_id, day, {_COLUMNS})
        SELECT store_id, day, {", ".join(f"sum({c})" for c in FIGURES)}
          FROM gone GROUP BY store_id, day
        ON CONFLICT (store_id, day) DO UPDATE SET
            {", ".join(f"{c} = report_days.{c} + excluded.{c}" for c in FIGURES)}
    )
    SELECT count(*) FROM gone
    """
)


async def compact(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Fold every pending delta row; the number of rows folded."""
    folded = 0
    while True:
        async with sessionmaker() as session:
            n: int = (await session.execute(_COMPACT, {"batch": BATCH})).scalar_one()
            await session.commit()
        folded += n
        if n < BATCH:
            return folded
