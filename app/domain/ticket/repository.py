"""Ticket SQL: locks, scoped loads, threads, service hours, order links."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.domain.errors import not_found
from app.domain.store import zones
from app.domain.ticket.rules import HOLDING_TYPES, ServiceHours
from app.models import Ticket, TicketMessage

tickets = Ticket.__table__  # type: ignore[attr-defined]
messages = TicketMessage.__table__  # type: ignore[attr-defined]

_LOCK = sa.text("SELECT * FROM tickets WHERE id = :id FOR UPDATE")
_GET = sa.text("SELECT * FROM tickets WHERE id = :id")
_HOURS = sa.text(
    "SELECT id, timezone, service_start_minute, service_end_minute FROM stores WHERE id = ANY(:ids)"
)
_THREADS = sa.text(
    "SELECT id, ticket_id, author, agent, body, api_key_id, created_at FROM ticket_messages "
    "WHERE ticket_id = ANY(:ids) ORDER BY ticket_id, id"
)
_LOCK_ORDER = sa.text("SELECT * FROM orders WHERE id = :id FOR UPDATE")
_OPEN_HOLDING = sa.text(
    "SELECT count(*) FROM tickets WHERE order_id = :order AND status = 'open' "
    "AND type = ANY(:types) AND id <> :exclude"
)
_SET_ORDER_FLAGS = sa.text(
    "UPDATE orders SET refund_pending = :pending, urgent = urgent OR :urgent, "
    "version = version + 1, updated_at = :now WHERE id = :id "
    "AND (refund_pending IS DISTINCT FROM :pending OR (:urgent AND NOT urgent))"
)
UNSHIPPED = frozenset({"pending_payment", "awaiting_shipment"})


async def load(
    session: AsyncSession, principal: Principal, ticket_id: int, *, lock: bool = False
) -> Any:
    """The ticket row (locked when ``lock``); 404 ``ticket_not_found`` outside the key's scope."""
    row = (await session.execute(_LOCK if lock else _GET, {"id": ticket_id})).one_or_none()
    if row is None or not principal.sees_store(row.store_id):
        raise not_found("ticket", ticket_id)
    return row


async def service_hours(session: AsyncSession, store_ids: Iterable[int]) -> dict[int, ServiceHours]:
    """Each store's service hours in its own zone (its zone noted for the transaction)."""
    ids = sorted(set(store_ids))
    out: dict[int, ServiceHours] = {}
    if not ids:
        return out
    for r in await session.execute(_HOURS, {"ids": ids}):
        tz = zones.remember(session, r.id, r.timezone)
        out[r.id] = ServiceHours(r.service_start_minute, r.service_end_minute, tz)
    return out


async def lock_order(session: AsyncSession, order_id: int) -> Any:
    """The order row, locked (None when there is none)."""
    return (await session.execute(_LOCK_ORDER, {"id": order_id})).one_or_none()


async def update(session: AsyncSession, row: Any, now: datetime, **values: Any) -> None:
    """Change the locked ticket ``row``: one more version."""
    await session.execute(
        sa.update(tickets)
        .where(tickets.c.id == row.id)
        .values(**values, version=row.version + 1, updated_at=now)
    )


async def add_message(
    session: AsyncSession,
    ticket_id: int,
    *,
    author: str,
    body: str,
    agent: str | None,
    api_key_id: int | None,
    at: datetime,
) -> None:
    """Append one message to a ticket's thread."""
    await session.execute(
        sa.insert(messages).values(
            ticket_id=ticket_id,
            author=author,
            agent=agent,
            body=body,
            api_key_id=api_key_id,
            created_at=at,
        )
    )


async def threads(session: AsyncSession, ticket_ids: list[int]) -> dict[int, list[Any]]:
    """The messages of each ticket, oldest first (one query)."""
    out: dict[int, list[Any]] = defaultdict(list)
    if not ticket_ids:
        return out
    for r in await session.execute(_THREADS, {"ids": ticket_ids}):
        out[r.ticket_id].append(r)
    return out


async def sync_order_flags(
    session: AsyncSession,
    order: Any,
    now: datetime,
    *,
    exclude_ticket: int = 0,
    holding: bool = False,
    urgent: bool = False,
) -> None:
    """Set the locked order's ``refund_pending`` from its open refund/return tickets (§2 Holds).

    ``holding`` counts the ticket being opened; ``exclude_ticket`` leaves out the one being
    resolved. Only an unshipped order is held; ``urgent`` (a shipping chase) flags it urgent.
    """
    others = (
        await session.execute(
            _OPEN_HOLDING,
            {"order": order.id, "types": sorted(HOLDING_TYPES), "exclude": exclude_ticket},
        )
    ).scalar_one()
    unshipped = order.status in UNSHIPPED
    pending = unshipped and (holding or others > 0)
    await session.execute(
        _SET_ORDER_FLAGS,
        {
            "pending": pending,
            "urgent": urgent and order.status == "awaiting_shipment",
            "id": order.id,
            "now": now,
        },
    )


async def open_counts(session: AsyncSession, order_ids: list[int]) -> dict[int, int]:
    """Open tickets per order (orders without any are absent)."""
    if not order_ids:
        return {}
    rows = await session.execute(
        sa.text(
            "SELECT order_id, count(*) AS n FROM tickets WHERE order_id = ANY(:ids) "
            "AND status = 'open' GROUP BY order_id"
        ),
        {"ids": order_ids},
    )
    return {r.order_id: r.n for r in rows}
