"""Stock reports (DOMAIN.md §3): the low-stock list and the weekly replenishment table.

The low-stock list reads SKUs in id-ordered batches with one SQL statement per batch for
balances, one GROUP BY for 28-day sales and one for backorders. The replenishment table
sorts on figures derived from 28-day sales, so PostgreSQL computes and sorts it in one
statement, read a page at a time (keyset) or streamed in batches (``app.streaming``): the
service never holds a whole catalogue. Both apply the pure rules in Python. Thresholds are
computed live from ``now`` (the cached ``stock_levels.threshold`` is only for crossing
detection and may lag velocity changes between refreshes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
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


_REPLENISHMENT = """
WITH figures AS (
    SELECT s.id, s.store_id, s.sku_code, s.title, s.low_stock_threshold, s.lead_time_days,
           s.safety_days, coalesce(l.on_hand, 0) AS on_hand, coalesce(l.reserved, 0) AS reserved,
           coalesce(sh.units, 0) AS shipped, coalesce(bo.waiting, 0) AS backordered
      FROM skus s
      LEFT JOIN stock_levels l ON l.sku_id = s.id
      LEFT JOIN LATERAL (
            SELECT -SUM(m.quantity) AS units FROM stock_movements m
             WHERE m.sku_id = s.id AND m.kind = 'ship' AND m.created_at >= :since) sh ON true
      LEFT JOIN LATERAL (
            SELECT SUM(r.requested - r.reserved) AS waiting FROM reservations r
             WHERE r.sku_id = s.id AND r.status = 'open' AND r.reserved < r.requested) bo ON true
     WHERE s.status = 'active' {scope}
), keyed AS (
    SELECT f.*,
           CASE WHEN f.shipped >= CAST(:hot_units AS numeric) THEN 0
                WHEN f.shipped < CAST(:slow_units AS numeric) THEN 2
                ELSE 1 END AS class_rank,
           f.shipped = 0 AS no_cover,
           CASE WHEN f.shipped = 0 THEN 0
                ELSE CAST(round((f.on_hand - f.reserved) * CAST(:window AS numeric)
                                / f.shipped, 1) * 10 AS bigint) END AS cover_tenths,
           f.sku_code COLLATE "C" AS code_c
      FROM figures f
)
SELECT * FROM keyed {after}
 ORDER BY class_rank, no_cover, cover_tenths, code_c, id
{limit}"""
_AFTER = (
    "WHERE (class_rank, no_cover, cover_tenths, code_c, id) > (CAST(:a_rank AS int), "
    "CAST(:a_no_cover AS boolean), CAST(:a_cover AS bigint), CAST(:a_code AS text) "
    'COLLATE "C", CAST(:a_id AS bigint))'
)
ReplenishmentPosition = tuple[int, int, int, str, int]
"""Where a row sorts: class rank, no cover (0/1), cover in tenths of a day, SKU code, id."""


def replenishment_position(row: ReplenishmentRow) -> ReplenishmentPosition:
    """The sort position of ``row``: hot, regular, slow; fewest days of cover (none last);
    then SKU code (by code point) and id."""
    cover = row.days_of_cover
    return (
        _CLASS_ORDER[row.velocity_class],
        int(cover is None),
        0 if cover is None else int(cover * 10),
        row.sku_code,
        row.sku_id,
    )


def replenishment_query(
    store_ids: list[int] | None,
    now: datetime,
    after: ReplenishmentPosition | None = None,
    limit: int | None = None,
) -> tuple[sa.TextClause, dict[str, Any]]:
    """The table's rows in their order, computed and sorted by PostgreSQL.

    The sort key (velocity class and days of cover) is derived from 28-day sales, so the
    database sorts the whole scope and the service only ever holds a page or a batch.
    """
    params: dict[str, Any] = {
        "since": now - timedelta(days=rules.VELOCITY_WINDOW_DAYS),
        "hot_units": rules.HOT_PER_DAY * rules.VELOCITY_WINDOW_DAYS,
        "slow_units": rules.SLOW_PER_DAY * rules.VELOCITY_WINDOW_DAYS,
        "window": rules.VELOCITY_WINDOW_DAYS,
    }
    scope = ""
    if store_ids is not None:
        scope = "AND s.store_id = ANY(CAST(:store_ids AS bigint[]))"
        params["store_ids"] = store_ids
    where = ""
    if after is not None:
        where = _AFTER
        rank, no_cover, cover, code, sku_id = after
        params |= {
            "a_rank": rank,
            "a_no_cover": bool(no_cover),
            "a_cover": cover,
            "a_code": code,
            "a_id": sku_id,
        }
    top = ""
    if limit is not None:
        top = "LIMIT CAST(:limit AS bigint)"
        params["limit"] = limit
    return sa.text(_REPLENISHMENT.format(scope=scope, after=where, limit=top)), params


def replenishment_row(r: Any) -> ReplenishmentRow:
    """A row of :func:`replenishment_query` as the table shows it (the rules applied)."""
    fig = _figures(r, {r.id: int(r.shipped)})
    back = int(r.backordered)
    return ReplenishmentRow(
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
        days_of_cover=rules.days_of_cover(fig.available, int(r.shipped)),
        lead_time_days=fig.lead_time_days,
        safety_days=fig.safety_days,
        reorder_point=fig.reorder_point,
        suggested_qty=_suggested(fig, back),
    )


async def replenishment_page(
    session: AsyncSession,
    store_ids: list[int] | None,
    now: datetime,
    after: ReplenishmentPosition | None,
    limit: int,
) -> list[ReplenishmentRow]:
    """``limit + 1`` rows of the weekly replenishment table (DOMAIN.md §3) after ``after``.

    Active SKUs of ``store_ids`` (None: every store), hot, regular, slow; within a class
    fewest days of cover first (none last), then by SKU code.
    """
    stmt, params = replenishment_query(store_ids, now, after, limit + 1)
    return [replenishment_row(r) for r in await session.execute(stmt, params)]
