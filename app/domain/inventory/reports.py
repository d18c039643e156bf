"""Stock reports (DOMAIN.md §3): the low-stock list and the weekly replenishment table.

Both read the same per-SKU inputs (:data:`_FIGURES`: balance, 28-day sales, backorders) for
the same SKUs (active or auto-delisted, ``rules.is_replenished``) and apply the same pure
rules in Python, so a SKU's ``suggested_reorder`` and ``suggested_qty`` agree. The low-stock
list reads them in id-ordered batches. The replenishment table sorts on figures derived from
28-day sales, so PostgreSQL computes and sorts it in one statement, read a page at a time
(keyset) or streamed in batches (``app.streaming``): the service never holds a whole
catalogue. Thresholds are computed live from ``now`` (the cached ``stock_levels.threshold``
is only for crossing detection and may lag velocity changes between refreshes).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.inventory import rules
from app.domain.inventory.report_schemas import LowStockItem, ReplenishmentRow

BATCH_SIZE = 1_000

_CLASS_ORDER = {
    rules.VelocityClass.HOT: 0,
    rules.VelocityClass.REGULAR: 1,
    rules.VelocityClass.SLOW: 2,
}


# Inputs of the rules per SKU, one statement for both reports, so that they read the same
# figures: balance, units shipped in the last 28 days and units waiting for stock. Which SKUs
# are reported mirrors ``rules.is_replenished`` (active, or delisted for running out).
_FIGURES = """
SELECT s.id, s.store_id, s.sku_code, s.title, s.status, s.low_stock_threshold,
       s.lead_time_days, s.safety_days, coalesce(l.on_hand, 0) AS on_hand,
       coalesce(l.reserved, 0) AS reserved, coalesce(sh.units, 0) AS shipped,
       coalesce(bo.waiting, 0) AS backordered
  FROM skus s
  LEFT JOIN stock_levels l ON l.sku_id = s.id
  LEFT JOIN LATERAL (
        SELECT -SUM(m.quantity) AS units FROM stock_movements m
         WHERE m.sku_id = s.id AND m.kind = 'ship' AND m.created_at >= :since) sh ON true
  LEFT JOIN LATERAL (
        SELECT SUM(r.requested - r.reserved) AS waiting FROM reservations r
         WHERE r.sku_id = s.id AND r.status = 'open' AND r.reserved < r.requested) bo ON true
 WHERE (s.status = 'active' OR s.delisted_by = 'auto') {scope}"""


def _scope(store_ids: list[int] | None, now: datetime) -> tuple[str, dict[str, Any]]:
    """The ``{scope}`` of :data:`_FIGURES` and the parameters it needs."""
    params: dict[str, Any] = {"since": now - timedelta(days=rules.VELOCITY_WINDOW_DAYS)}
    if store_ids is None:
        return "", params
    return "AND s.store_id = ANY(CAST(:store_ids AS bigint[]))", params | {"store_ids": store_ids}


def _figures(row: Any) -> rules.StockFigures:
    return rules.stock_figures(
        on_hand=row.on_hand,
        reserved=row.reserved,
        units_shipped_28d=int(row.shipped),
        low_stock_threshold=row.low_stock_threshold,
        lead_time_days=row.lead_time_days,
        safety_days=row.safety_days,
    )


async def low_stock(
    session: AsyncSession,
    store_ids: list[int] | None,
    now: datetime,
    after_id: int | None,
    limit: int,
) -> list[LowStockItem]:
    """Reported SKUs with ``available ≤ threshold``, by id: ``limit + 1`` after ``after_id``.

    The SKUs of the replenishment table (``rules.is_replenished``): an out-of-stock SKU
    delisted automatically still needs reordering, one delisted by hand does not. Batches
    are scanned until the page is full or the SKUs run out.
    """
    scope, params = _scope(store_ids, now)
    stmt = sa.text(
        _FIGURES.format(scope=scope + " AND s.id > CAST(:after AS bigint)")
        + " ORDER BY s.id LIMIT CAST(:size AS bigint)"
    )
    found: list[LowStockItem] = []
    after = 0 if after_id is None else after_id
    while len(found) <= limit:
        batch = list(await session.execute(stmt, params | {"after": after, "size": BATCH_SIZE}))
        if not batch:
            break
        after = batch[-1].id
        low = [(r, f) for r in batch if (f := _figures(r)).low_stock]
        low = low[: limit + 1 - len(found)]
        found.extend(
            LowStockItem(
                sku_id=r.id,
                store_id=r.store_id,
                sku_code=r.sku_code,
                title=r.title,
                status=r.status,
                available=f.available,
                threshold=f.threshold,
                backordered=int(r.backordered),
                velocity_class=f.velocity_class,
                avg_daily_sales=rules.display_avg(f.avg_daily_sales),
                suggested_reorder=rules.suggested_qty(f, backordered=int(r.backordered)),
            )
            for r, f in low
        )
        if len(batch) < BATCH_SIZE:
            break
    return found


_REPLENISHMENT = """
WITH figures AS ({figures}
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
    scope, params = _scope(store_ids, now)
    params |= {
        "hot_units": rules.HOT_PER_DAY * rules.VELOCITY_WINDOW_DAYS,
        "slow_units": rules.SLOW_PER_DAY * rules.VELOCITY_WINDOW_DAYS,
        "window": rules.VELOCITY_WINDOW_DAYS,
    }
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
    figures = _FIGURES.format(scope=scope)
    return sa.text(_REPLENISHMENT.format(figures=figures, after=where, limit=top)), params


def replenishment_row(r: Any) -> ReplenishmentRow:
    """A row of :func:`replenishment_query` as the table shows it (the rules applied)."""
    fig = _figures(r)
    back = int(r.backordered)
    return ReplenishmentRow(
        sku_id=r.id,
        store_id=r.store_id,
        sku_code=r.sku_code,
        title=r.title,
        status=r.status,
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
        suggested_qty=rules.suggested_qty(fig, backordered=back),
    )


async def replenishment_page(
    session: AsyncSession,
    store_ids: list[int] | None,
    now: datetime,
    after: ReplenishmentPosition | None,
    limit: int,
) -> list[ReplenishmentRow]:
    """``limit + 1`` rows of the weekly replenishment table (DOMAIN.md §3) after ``after``.

    Active and auto-delisted SKUs of ``store_ids`` (None: every store), hot, regular, slow;
    within a class fewest days of cover first (none last), then by SKU code.
    """
    stmt, params = replenishment_query(store_ids, now, after, limit + 1)
    return [replenishment_row(r) for r in await session.execute(stmt, params)]
