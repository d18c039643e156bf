"""Hooks other features attach to (one place each)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession


async def shipping_urged(session: AsyncSession, order_id: int, at: datetime) -> bool:
    """The buyer urged shipping (催发货, PDD ``urge_shipping_time``): the order becomes
    ``urgent`` (DOMAIN.md §2 urgency). When tickets land this opens a ``shipping_chase``
    ticket instead. True if this urge is new (once per urge instant)."""
    result = await session.execute(
        sa.text(
            "UPDATE orders SET urgent = true, urged_at = :at WHERE id = :id "
            "AND status IN ('pending_payment', 'awaiting_shipment') "
            "AND urged_at IS DISTINCT FROM :at RETURNING id"
        ),
        {"id": order_id, "at": at},
    )
    return result.first() is not None
