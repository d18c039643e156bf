"""Order lists and lookups (filters backed by indexes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.domain.dispatch.rules import Risk
from app.domain.errors import not_found
from app.domain.order.rules import Allocation, Status
from app.domain.store import service as stores
from app.models import Order

_o = Order.__table__  # type: ignore[attr-defined]


async def get_visible(session: AsyncSession, principal: Principal, order_id: int) -> Order:
    """An order inside the key's scope, else 404."""
    order = await session.get(Order, order_id, populate_existing=True)
    if order is None or not principal.sees_store(order.store_id):
        raise not_found("order", order_id)
    return order


def _risk_condition(risk: Risk, now: datetime) -> Any:
    awaiting = _o.c.status == Status.AWAITING_SHIPMENT.value
    if risk == Risk.OVERDUE:
        return sa.and_(awaiting, _o.c.dispatch_deadline < now)
    if risk == Risk.AT_RISK:
        return sa.and_(awaiting, _o.c.dispatch_deadline >= now, _o.c.at_risk_at <= now)
    return sa.and_(awaiting, _o.c.at_risk_at > now)


async def list_page(
    session: AsyncSession,
    principal: Principal,
    *,
    now: datetime,
    store_id: int | None,
    status: Status | None,
    risk: Risk | None,
    allocation: Allocation | None,
    placed_from: datetime | None,
    placed_to: datetime | None,
    q: str | None,
    before_id: int | None,
    limit: int,
) -> list[Order]:
    """Orders newest first, ``limit + 1`` rows with ids below ``before_id``."""
    stmt = sa.select(Order).order_by(_o.c.id.desc())
    store_ids = await stores.store_filter(session, principal, store_id)
    if store_ids is not None:
        stmt = stmt.where(_o.c.store_id.in_(store_ids))
    if status is not None:
        stmt = stmt.where(_o.c.status == status.value)
    if risk is not None:
        stmt = stmt.where(_risk_condition(risk, now))
    if allocation is not None:
        stmt = stmt.where(_o.c.allocation == allocation.value)
    if placed_from is not None:
        stmt = stmt.where(_o.c.placed_at >= placed_from)
    if placed_to is not None:
        stmt = stmt.where(_o.c.placed_at < placed_to)
    if q:
        # Exact matches on indexed columns: marketplace number, buyer phone, tracking number.
        stmt = stmt.where(
            sa.or_(
                _o.c.external_id == q,
                _o.c.buyer_phone == q,
                _o.c.tracking_number == q.upper(),
            )
        )
    if before_id is not None:
        stmt = stmt.where(_o.c.id < before_id)
    return list((await session.execute(stmt.limit(limit + 1))).scalars())
