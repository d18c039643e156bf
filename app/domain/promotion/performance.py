"""Promotion performance (DOMAIN.md §5): orders, units, GMV, discount cost, ad spend, ROI."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.domain.promotion.rules_report import grade, roi
from app.domain.promotion.service import get_visible

PERFORMANCE_SQL = """
WITH used AS (
    SELECT o.id, o.total - o.refunded_amount AS total, o.paid_at
      FROM order_promotions op JOIN orders o ON o.id = op.order_id
     WHERE op.promotion_id = :p AND o.status <> 'cancelled' AND o.paid_at IS NOT NULL
       AND (o.refunded_amount < o.total OR o.total = 0)
)
SELECT (SELECT count(*) FROM used) AS orders,
       (SELECT coalesce(sum(l.quantity), 0) FROM order_lines l JOIN used u ON u.id = l.order_id)
           AS units,
       (SELECT coalesce(sum(total), 0) FROM used) AS gmv,
       (SELECT coalesce(sum(op.amount), 0) FROM order_promotions op
          JOIN orders o ON o.id = op.order_id
         WHERE op.promotion_id = :p AND o.status <> 'cancelled' AND op.returned_at IS NULL
           AND (o.refunded_amount < o.total OR o.total = 0))
           AS discount_cost,
       (SELECT coalesce(sum(amount), 0) FROM promotion_spend WHERE promotion_id = :p)
           AS ad_spend
"""
"""``gmv``: paid totals, net of refunds, of the orders that used the promotion (the one place it
is computed). A cancelled or fully refunded order counts nowhere: not in ``orders``, ``units``,
``gmv`` nor ``discount_cost``."""


async def performance(
    session: AsyncSession, principal: Principal, promotion_id: int
) -> dict[str, Any]:
    """Orders, units, gmv, discount cost, ad spend, ROI and grade (DOMAIN.md §5)."""
    await get_visible(session, principal, promotion_id)
    r = (await session.execute(sa.text(PERFORMANCE_SQL), {"p": promotion_id})).one()
    cost = Decimal(r.discount_cost) + Decimal(r.ad_spend)
    return {
        "orders": r.orders,
        "units": r.units,
        "gmv": Decimal(r.gmv),
        "discount_cost": Decimal(r.discount_cost),
        "ad_spend": Decimal(r.ad_spend),
        "roi": roi(Decimal(r.gmv), cost),
        "grade": grade(Decimal(r.gmv), cost),
    }


async def put_spend(
    session: AsyncSession, principal: Principal, promotion_id: int, day: Any, amount: Decimal
) -> None:
    """Record (or replace) the ad spend of one day."""
    await get_visible(session, principal, promotion_id)
    await session.execute(
        sa.text(
            "INSERT INTO promotion_spend (promotion_id, spend_date, amount) VALUES (:p, :d, :a) "
            "ON CONFLICT (promotion_id, spend_date) DO UPDATE SET amount = EXCLUDED.amount, "
            "updated_at = now()"
        ),
        {"p": promotion_id, "d": day, "a": amount},
    )
