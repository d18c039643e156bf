"""Ticket lists: filters backed by the partial indexes of open tickets (migration 0008)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.domain.store import service as stores
from app.domain.store import zones
from app.domain.ticket.repository import tickets as t
from app.domain.ticket.rules import DUE_SOON, Priority, SlaState, TicketStatus, TicketType


@dataclass(frozen=True, slots=True)
class Filters:
    """What a ticket list asks for."""

    store_id: int | None = None
    status: TicketStatus | None = None
    type: TicketType | None = None
    priority: Priority | None = None
    assignee: str | None = None
    sla: SlaState | None = None
    order_id: int | None = None
    opened_from: datetime | None = None
    opened_to: datetime | None = None


def _due_before(at: datetime) -> Any:
    """Open with a due instant (a pending first response, or the resolution) before ``at``."""
    return sa.or_(
        sa.and_(t.c.first_response_at.is_(None), t.c.first_response_due < at),
        t.c.resolution_due < at,
    )


def sla_condition(sla: SlaState, now: datetime) -> Any:
    """Open tickets in ``sla`` state at ``now`` (as :func:`rules.sla_state` computes it)."""
    is_open = t.c.status == TicketStatus.OPEN.value
    if sla is SlaState.BREACHED:
        return sa.and_(is_open, _due_before(now))
    if sla is SlaState.DUE_SOON:
        return sa.and_(is_open, _due_before(now + DUE_SOON), sa.not_(_due_before(now)))
    return sa.and_(is_open, sa.not_(_due_before(now + DUE_SOON)))


async def list_page(
    session: AsyncSession,
    principal: Principal,
    filters: Filters,
    *,
    now: datetime,
    before_id: int | None,
    limit: int,
) -> list[Any]:
    """Tickets newest first, ``limit + 1`` rows with ids below ``before_id``."""
    stmt = sa.select(t).order_by(t.c.id.desc())
    if filters.store_id is not None:
        store = await stores.get_visible(session, principal, filters.store_id)
        zones.remember(session, filters.store_id, store.timezone)  # read models need it
        store_ids: list[int] | None = [filters.store_id]
    else:
        store_ids = principal.scoped_store_ids(None)
    if store_ids is not None:
        stmt = stmt.where(t.c.store_id.in_(store_ids))
    if filters.status is not None:
        stmt = stmt.where(t.c.status == filters.status.value)
    if filters.type is not None:
        stmt = stmt.where(t.c.type == filters.type.value)
    if filters.priority is not None:
        stmt = stmt.where(t.c.priority == filters.priority.value)
    if filters.assignee is not None:
        stmt = stmt.where(t.c.assignee == filters.assignee)
    if filters.sla is not None:
        stmt = stmt.where(sla_condition(filters.sla, now))
    if filters.order_id is not None:
        stmt = stmt.where(t.c.order_id == filters.order_id)
    if filters.opened_from is not None:
        stmt = stmt.where(t.c.opened_at >= filters.opened_from)
    if filters.opened_to is not None:
        stmt = stmt.where(t.c.opened_at < filters.opened_to)
    if before_id is not None:
        stmt = stmt.where(t.c.id < before_id)
    return list((await session.execute(stmt.limit(limit + 1))).all())
