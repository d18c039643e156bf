"""Stock reports (DOMAIN.md §3): the low-stock list and the weekly replenishment table.

Both read SKUs in id-ordered batches with one SQL statement per batch for balances, one
GROUP BY for 28-day sales and one for backorders, then apply the pure rules in Python.
Thresholds are computed live from ``now`` (the cached ``stock_levels.threshold`` is only
for crossing detection and may lag velocity changes between refreshes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.inventory import levels, reservations, rules
from app.domain.inventory.report_schemas import LowStockItem, ReplenishmentRow
from app.models import Sku, StockLevel

BATCH_SIZE = 1_000

_skus = Sku.__table__  # type: ignore[attr-defined]
_levels = StockLevel.__table__  # type: ignore[attr-defined]

_CLASS_ORDER = {
    rules.VelocityClass.HOT: 0,
    rules.VelocityClass.REGULAR: 1,
    rules.VelocityClass.SLOW: 2,
}


async def _sku_batch(
    session: AsyncSession,
    store_ids: list[int] | None,
    after_id: int | None,
    *,
    active_only: bool,
    size: int = BATCH_SIZE,
) -> list[Any]:
    """Up to ``size`` SKUs with their balances, by id, after ``after_id``."""
    stmt = (
        sa.select(
            _skus.c.id,
            _skus.c.store_id,
            _skus.c.sku_code,
            _skus.c.title,
            _skus.c.low_stock_threshold,
            _skus.c.lead_time_days,
            _skus.c.safety_days,
            sa.func.coalesce(_levels.c.on_hand, 0).label("on_hand"),
            sa.func.coalesce(_levels.c.reserved, 0).label("reserved"),
        )
        .select_from(_skus.outerjoin(_levels, _levels.c.sku_id == _skus.c.id))
        .order_by(_skus.c.id)
        .limit(size)
    )
    if store_ids is not None:
        stmt = stmt.where(_skus.c.store_id.in_(store_ids))
    if after_id is not None:
        stmt = stmt.where(_skus.c.id > after_id)
    if active_only:
        stmt = stmt.where(_skus.c.status == "active")
    return list(await session.execute(stmt))


async def _shipped_28d(
    session: AsyncSession, sku_ids: Sequence[int], now: datetime
) -> dict[int, int]:
    return await levels.units_shipped_since(
        session, sku_ids, now - timedelta(days=rules.VELOCITY_WINDOW_DAYS)
    )


def _figures(row: Any, shipped: dict[int, int]) -> rules.StockFigures:
    return rules.stock_figures(
        on_hand=row.on_hand,
        reserved=row.reserved,
        units_shipped_28d=shipped.get(row.id, 0),
        low_stock_threshold=row.low_stock_threshold,
        lead_time_days=row.lead_time_days,
        safety_days=row.safety_days,
    )


def _suggested(fig: rules.StockFigures, backordered: int) -> int:
    return rules.suggested_qty(
        fig.avg_daily_sales,
        lead_time_days=fig.lead_time_days,
        safety_days=fig.safety_days,
        available=fig.available,
        backordered=backordered,
    )


async def low_stock(
    session: AsyncSession,
    store_ids: list[int] | None,
    now: datetime,
    after_id: int | None,
    limit: int,
) -> list[LowStockItem]:
    """SKUs (any status) with ``available ≤ threshold``, by id: ``limit + 1`` after ``after_id``.

    Delisted SKUs are included: an out-of-stock SKU delisted automatically still needs
    reordering. Batches are scanned until the page is full or the SKUs run out.
    """
    found: list[LowStockItem] = []
    after = after_id
    while len(found) <= limit:
        batch = await _sku_batch(session, store_ids, after, active_only=False)
        if not batch:
            break
        after = batch[-1].id
        shipped = await _shipped_28d(session, [r.id for r in batch], now)
        low = [(r, f) for r in batch if (f := _figures(r, shipped)).low_stock]
        low = low[: limit + 1 - len(found)]
        waiting = await reservations.backordered(session, [r.id for r, _ in low])
        found.extend(
            LowStockItem(
                sku_id=r.id,
                store_id=r.store_id,
                sku_code=r.sku_code,
                title=r.title,
                available=f.available,
                threshold=f.threshold,
                velocity_class=f.velocity_class,
                avg_daily_sales=rules.display_avg(f.avg_daily_sales),
                suggested_reorder=_suggested(f, waiting.get(r.id, 0)),
            )
            for r, f in low
        )
        if len(batch) < BATCH_SIZE:
            break
    return found


def _replenishment_key(row: ReplenishmentRow) -> tuple[int, bool, Decimal, str, int]:
    cover = row.days_of_cover
    return (
        _CLASS_ORDER[row.velocity_class],
        cover is None,
        cover if cover is not None else Decimal(0),
        row.sku_code,
        row.sku_id,
    )


async def replenishment(
    session: AsyncSession, store_ids: list[int] | None, now: datetime
) -> list[ReplenishmentRow]:
    """The weekly replenishment table of the active SKUs of ``store_ids`` (None: every store).

    Sorted hot, regular, slow; within a class fewest days of cover first (none last), then
    by SKU code.
    """
    rows: list[ReplenishmentRow] = []
    after: int | None = None
    while True:
        batch = await _sku_batch(session, store_ids, after, active_only=True)
        if not batch:
            break
        after = batch[-1].id
        ids = [r.id for r in batch]
        shipped = await _shipped_28d(session, ids, now)
        waiting = await reservations.backordered(session, ids)
        for r in batch:
            fig = _figures(r, shipped)
            back = waiting.get(r.id, 0)
            rows.append(
                ReplenishmentRow(
                    sku_id=r.id,
                    store_id=r.store_id,
                    sku_code=r.sku_code,
                    title=r.title,
                    velocity_class=fig.velocity_class,
                    avg_daily_sales=rules.display_avg(fig.avg_daily_sales),
                    on_hand=fig.on_hand,
                    reserved=fig.reserved,
                    available=fig.available,
                    backordered=back,
                    days_of_cover=rules.days_of_cover(fig.available, fig.avg_daily_sales),
                    lead_time_days=fig.lead_time_days,
                    safety_days=fig.safety_days,
                    reorder_point=fig.reorder_point,
                    suggested_qty=_suggested(fig, back),
                )
            )
        if len(batch) < BATCH_SIZE:
            break
    rows.sort(key=_replenishment_key)
    return rows
