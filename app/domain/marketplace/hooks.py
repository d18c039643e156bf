"""Hooks other features attach to (one place each)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.domain.ticket import service as tickets
from app.domain.ticket.schemas import TicketCreate

_URGE = sa.text(
    "UPDATE orders SET urgent = true, urged_at = :at WHERE id = :id "
    "AND status IN ('pending_payment', 'awaiting_shipment') "
    "AND urged_at IS DISTINCT FROM :at RETURNING id, store_id, external_id"
)


async def shipping_urged(
    session: AsyncSession, principal: Principal, order_id: int, at: datetime
) -> bool:
    """The buyer urged shipping (催发货, PDD ``urge_shipping_time``): the order becomes
    ``urgent`` (DOMAIN.md §2 urgency) and a ``shipping_chase`` ticket opens on it, opened at
    the urge instant (its SLA clocks start there). Once per urge instant: the ticket's
    ``external_id`` is ``urge-<order id>-<unix seconds>``, so a resent snapshot finds it.
    True if this urge is new."""
    row = (await session.execute(_URGE, {"id": order_id, "at": at})).first()
    if row is None:
        return False
    local = at.isoformat(timespec="seconds")
    await tickets.create(
        session,
        principal,
        TicketCreate(
            store_id=str(row.store_id),
            order_id=str(row.id),
            type="shipping_chase",
            subject=f"催发货 {row.external_id}",
            body=f"买家在平台催发货（{local}）。The buyer urged shipping on the marketplace.",
            opened_at=at,
            external_id=f"urge-{row.id}-{int(at.timestamp())}",
        ),
        at,
    )
    return True
