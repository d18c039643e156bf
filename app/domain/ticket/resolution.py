"""Resolving a ticket (DOMAIN.md §4): outcome, refund, restock, order hold, one function."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.domain.errors import Conflict, RuleViolation
from app.domain.events import service as events
from app.domain.inventory import ledger
from app.domain.order import lifecycle
from app.domain.report import rollup
from app.domain.ticket import refunds, rules
from app.domain.ticket import repository as repo
from app.domain.ticket.rules import Author, TicketStatus, TicketType
from app.domain.ticket.schemas import ResolveIn
from app.domain.ticket.service import audit_change, check_version, event_data

_LINES = sa.text(
    "SELECT sku_id, sum(quantity) AS quantity FROM order_lines WHERE order_id = :id "
    "GROUP BY sku_id ORDER BY sku_id"
)


def _invalid(code: str, detail: str, field: str) -> RuleViolation:
    return RuleViolation(
        code, detail, errors=[{"loc": ["body", field], "msg": detail, "type": "invalid"}]
    )


async def resolve(
    session: AsyncSession,
    principal: Principal,
    ticket_id: int,
    data: ResolveIn,
    now: datetime,
    if_match: int | None,
) -> None:
    """Resolve an open ticket; a refund goes on its order through ``record_refund``.

    A full refund of an unshipped order cancels it (its stock is released); ``restock`` on a
    shipped ``return_refund`` writes a ``return`` movement per SKU; the order's refund hold
    lifts with its last open refund/return ticket. ``409 invalid_transition`` when resolved.
    """
    row = await repo.load(session, principal, ticket_id, lock=True)
    check_version(row, if_match)
    if row.status != TicketStatus.OPEN.value:
        raise Conflict("invalid_transition", "The ticket is resolved already; reopen it first.")
    ticket_type = TicketType(row.type)
    order = None if row.order_id is None else await repo.lock_order(session, row.order_id)
    if data.restock:
        if ticket_type is not TicketType.RETURN_REFUND:
            raise _invalid(
                "restock_not_allowed", "Only a return_refund ticket restocks goods.", "restock"
            )
        if order is None or order.shipped_at is None:
            raise _invalid(
                "restock_not_allowed",
                "The order never shipped: its stock was never taken out.",
                "restock",
            )
    if data.refund_amount is not None:
        if order is None:
            raise _invalid(
                "refund_without_order", "Only a ticket on an order can refund.", "refund_amount"
            )
        refund = await refunds.record_refund(
            session, order.id, data.refund_amount, now, ticket_id=row.id
        )
        if refund.is_full and refund.status == "awaiting_shipment":
            # DOMAIN.md §4: a full refund of an unshipped order cancels it, stock released.
            fresh = await repo.lock_order(session, order.id)
            await lifecycle.cancel_locked(
                session, fresh, "refunded", now, refunded=True, ticket_id=str(row.id)
            )
    if data.restock and order is not None:
        await _restock(session, principal, row, order, now)
    await repo.update(
        session,
        row,
        now,
        status=TicketStatus.RESOLVED.value,
        resolved_at=now,
        outcome=data.outcome.value,
        refund_amount=data.refund_amount,
        compensation_amount=data.compensation_amount,
        restock=data.restock,
    )
    if data.note:
        await repo.add_message(
            session,
            row.id,
            author=Author.NOTE.value,
            body=data.note,
            agent=None,
            api_key_id=principal.key_id,
            at=now,
        )
    if order is not None:
        fresh = await repo.lock_order(session, order.id)
        await repo.sync_order_flags(session, fresh, now, exclude_ticket=row.id)
    await events.append(
        session,
        "ticket.resolved",
        row.store_id,
        event_data(
            row,
            outcome=data.outcome.value,
            resolved_at=now,
            refund_amount=None if data.refund_amount is None else f"{data.refund_amount:.2f}",
            compensation_amount=None
            if data.compensation_amount is None
            else f"{data.compensation_amount:.2f}",
            within_sla=now <= row.resolution_due,
        ),
        dedupe_key=rules.dedupe_key(row.id, f"resolved:{row.reopen_count}"),
    )
    await rollup.record_ticket_resolved(session, row.store_id, now, now <= row.resolution_due)
    await audit_change(session, principal, row, "ticket.resolved", data.model_dump(mode="json"))


async def _restock(
    session: AsyncSession, principal: Principal, row: Any, order: Any, now: datetime
) -> None:
    """The returned goods back on hand: one ``return`` movement per SKU of the order."""
    for line in await session.execute(_LINES, {"id": order.id}):
        await ledger.move(
            session,
            sku_id=line.sku_id,
            kind="return",
            delta=int(line.quantity),
            at=now,
            reason=f"return_refund ticket {row.id}",
            reference=f"ticket:{row.id}",
            api_key_id=principal.key_id,
        )
