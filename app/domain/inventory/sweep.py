"""The inventory sweep: thresholds follow velocity as the 28-day window slides."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.inventory import levels

BATCH = 500


async def refresh_all_thresholds(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime
) -> dict[str, int]:
    """Recompute every SKU's cached threshold in short batches; emit ``stock.low`` crossings.

    Rows another transaction holds are skipped (``SKIP LOCKED``): that transaction settles
    them itself, and the next sweep comes back to them.
    """
    checked = changed = 0
    after = 0
    while True:
        async with sessionmaker() as session:
            ids = list(
                (
                    await session.execute(
                        sa.text(
                            "SELECT sku_id FROM stock_levels WHERE sku_id > :after "
                            "ORDER BY sku_id LIMIT :batch FOR UPDATE SKIP LOCKED"
                        ),
                        {"after": after, "batch": BATCH},
                    )
                ).scalars()
            )
            if not ids:
                break
            changed += len(await levels.refresh_thresholds(session, ids, now))
            await session.commit()
        checked += len(ids)
        after = ids[-1]
    return {"skus_checked": checked, "thresholds_changed": changed}
