"""Ticket orchestration (DOMAIN.md §4): intake, reads, thread, assignment, changes, reopen.

Every service runs in the caller's transaction and writes its events there. Each change is
kept with the key that made it: messages carry their key, other changes an audit entry.
Resolution (with refunds) is in :mod:`app.domain.ticket.resolution`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.domain import audit
from app.domain.errors import Conflict, PreconditionFailed, RuleViolation, not_found
from app.domain.events import service as events
from app.domain.report import rollup
from app.domain.store import zones
from app.domain.ticket import repository as repo
from app.domain.ticket import rules
from app.domain.ticket.rules import Author, Outcome, Priority, TicketStatus, TicketType
from app.domain.ticket.schemas import (
    AssignIn,
    CustomerIn,
    MessageIn,
    MessageOut,
    TicketCreate,
    TicketPublic,
    TicketUpdate,
)

# Clients' clocks drift: an opened_at this far ahead of ours is still taken as given.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Created:
    """A ticket taken: its id, and whether this call created it (else a retry)."""

    ticket_id: int
    created: bool


def content_hash(data: TicketCreate) -> str:
    """What makes two intakes of one ``external_id`` the same ticket."""
    return hashlib.sha256(
        orjson.dumps(data.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


def event_data(row: Any, **extra: Any) -> dict[str, Any]:
    """The common part of every ticket event."""
    return {
        "ticket_id": str(row.id),
        "order_id": None if row.order_id is None else str(row.order_id),
        "external_id": row.external_id,
        "type": row.type,
        "priority": row.priority,
        **extra,
    }


async def create(
    session: AsyncSession, principal: Principal, data: TicketCreate, now: datetime
) -> Created:
    """Open a ticket (idempotent on store + ``external_id``); hold or flag its order (§2, §4)."""
    if not principal.sees_store(data.store_id):
        raise not_found("store", data.store_id)
    hours = (await repo.service_hours(session, [data.store_id])).get(data.store_id)
    if hours is None:
        raise not_found("store", data.store_id)
    opened_at = data.opened_at or now
    if opened_at > now + CLOCK_SKEW:
        raise RuleViolation(
            "invalid_opened_at",
            "opened_at is more than 5 minutes in the future.",
            errors=[{"loc": ["body", "opened_at"], "msg": "in the future", "type": "invalid"}],
        )
    order = None
    if data.order_id is not None:
        # Locked first: intakes of one order queue here, before the unique index.
        order = await repo.lock_order(session, data.order_id)
        if order is None or order.store_id != data.store_id:
            raise not_found("order", data.order_id)
    ticket_type = TicketType(data.type)
    priority = Priority(data.priority) if data.priority else rules.default_priority(ticket_type)
    digest = content_hash(data)
    stmt = pg_insert(repo.tickets).values(
        store_id=data.store_id,
        order_id=data.order_id,
        external_id=data.external_id,
        type=ticket_type.value,
        priority=priority.value,
        status=TicketStatus.OPEN.value,
        subject=data.subject,
        customer=None if data.customer is None else data.customer.model_dump(),
        opened_at=opened_at,
        first_response_due=rules.first_response_due(opened_at, priority, hours),
        resolution_started_at=opened_at,
        resolution_due=rules.resolution_due(opened_at, ticket_type, priority),
        content_hash=digest,
        created_by=principal.key_id,
        version=1,
    )
    if data.external_id is not None:
        stmt = stmt.on_conflict_do_nothing(
            index_elements=["store_id", "external_id"],
            index_where=sa.text("external_id IS NOT NULL"),
        )
    inserted = (await session.execute(stmt.returning(repo.tickets.c.id))).first()
    if inserted is None:
        existing = (
            await session.execute(
                sa.select(repo.tickets.c.id, repo.tickets.c.content_hash).where(
                    repo.tickets.c.store_id == data.store_id,
                    repo.tickets.c.external_id == data.external_id,
                )
            )
        ).one()
        if existing.content_hash != digest:
            raise Conflict(
                "duplicate_ticket",
                f"Ticket {data.external_id} was taken before with other content.",
            )
        return Created(existing.id, False)
    ticket_id: int = inserted.id
    await repo.add_message(
        session,
        ticket_id,
        author=Author.CUSTOMER.value,
        body=data.body,
        agent=None,
        api_key_id=principal.key_id,
        at=opened_at,
    )
    if order is not None:
        await repo.sync_order_flags(
            session,
            order,
            now,
            holding=ticket_type in rules.HOLDING_TYPES,
            urgent=ticket_type is TicketType.SHIPPING_CHASE,
        )
    row = await repo.load(session, principal, ticket_id)
    await events.append(
        session,
        "ticket.created",
        row.store_id,
        event_data(
            row,
            opened_at=row.opened_at,
            first_response_due=row.first_response_due,
            resolution_due=row.resolution_due,
        ),
        dedupe_key=rules.dedupe_key(ticket_id, "created"),
    )
    await rollup.record_ticket_opened(session, row.store_id, row.opened_at)
    await audit_change(session, principal, row, "ticket.created", {"external_id": data.external_id})
    return Created(ticket_id, True)


async def audit_change(
    session: AsyncSession,
    principal: Principal | None,
    row: Any,
    action: str,
    data: dict[str, Any],
) -> None:
    """An audit entry for a change of ticket ``row``, naming the key that made it."""
    await audit.record(
        session,
        api_key_id=None if principal is None else principal.key_id,
        action=action,
        resource_type="ticket",
        resource_id=row.id,
        store_id=row.store_id,
        data=data,
    )


def check_version(row: Any, if_match: int | None) -> None:
    """412 ``version_mismatch`` on a stale ``If-Match``."""
    if if_match is not None and if_match != row.version:
        raise PreconditionFailed(
            "version_mismatch", f"Ticket is at version {row.version}, not {if_match}."
        )


def _local(at: datetime | None, tz: tzinfo) -> datetime | None:
    return None if at is None else at.astimezone(tz)


async def read_models(
    session: AsyncSession, rows: Sequence[Any], now: datetime
) -> list[TicketPublic]:
    """Read models with their threads (one query), SLA state as of ``now``, in store time."""
    thread = await repo.threads(session, [r.id for r in rows])
    tzs = await zones.zones_of(session, {r.store_id for r in rows})
    out = []
    for r in rows:
        tz = tzs[r.store_id]
        # Instants in store time as they are built (API.md "Time"), not walked afterwards.
        # Built without validation: every value is already of its field's type (the row's
        # columns are constrained to the enums), and lists are the hot path of ticket reads.
        out.append(
            TicketPublic.model_construct(
                id=r.id,
                store_id=r.store_id,
                order_id=r.order_id,
                external_id=r.external_id,
                type=TicketType(r.type),
                priority=Priority(r.priority),
                status=TicketStatus(r.status),
                subject=r.subject,
                assignee=r.assignee,
                customer=None if r.customer is None else CustomerIn.model_validate(r.customer),
                opened_at=r.opened_at.astimezone(tz),
                first_response_due=r.first_response_due.astimezone(tz),
                first_response_at=_local(r.first_response_at, tz),
                resolution_due=r.resolution_due.astimezone(tz),
                resolved_at=_local(r.resolved_at, tz),
                sla_state=rules.sla_state(
                    status=TicketStatus(r.status),
                    first_response_due=r.first_response_due,
                    first_response_at=r.first_response_at,
                    resolution_due=r.resolution_due,
                    resolved_at=r.resolved_at,
                    now=now,
                ),
                outcome=None if r.outcome is None else Outcome(r.outcome),
                refund_amount=r.refund_amount,
                compensation_amount=r.compensation_amount,
                restock=r.restock,
                reopen_count=r.reopen_count,
                escalated_at=_local(r.escalated_at, tz),
                version=r.version,
                created_at=r.created_at.astimezone(tz),
                updated_at=r.updated_at.astimezone(tz),
                messages=[
                    MessageOut.model_construct(
                        id=m.id,
                        author=Author(m.author),
                        agent=m.agent,
                        body=m.body,
                        api_key_id=m.api_key_id,
                        created_at=m.created_at.astimezone(tz),
                    )
                    for m in thread[r.id]
                ],
            )
        )
    return out


async def read_one(
    session: AsyncSession, principal: Principal, ticket_id: int, now: datetime
) -> TicketPublic:
    """One ticket with its whole thread."""
    row = await repo.load(session, principal, ticket_id)
    return (await read_models(session, [row], now))[0]


async def add_message(
    session: AsyncSession, principal: Principal, ticket_id: int, data: MessageIn, now: datetime
) -> None:
    """Append a message; the first ``agent`` message sets ``first_response_at`` (§4)."""
    row = await repo.load(session, principal, ticket_id, lock=True)
    await repo.add_message(
        session,
        row.id,
        author=data.author.value,
        body=data.body,
        agent=data.agent,
        api_key_id=principal.key_id,
        at=now,
    )
    values: dict[str, Any] = {}
    if data.author is Author.AGENT and row.first_response_at is None:
        values["first_response_at"] = now
    await repo.update(session, row, now, **values)


async def assign(
    session: AsyncSession,
    principal: Principal,
    ticket_id: int,
    data: AssignIn,
    now: datetime,
    if_match: int | None,
) -> None:
    """Give the ticket to an agent (kept in the audit trail)."""
    row = await repo.load(session, principal, ticket_id, lock=True)
    check_version(row, if_match)
    await repo.update(session, row, now, assignee=data.agent)
    await audit_change(
        session, principal, row, "ticket.assigned", {"agent": data.agent, "previous": row.assignee}
    )


async def change(
    session: AsyncSession,
    principal: Principal,
    ticket_id: int,
    data: TicketUpdate,
    now: datetime,
    if_match: int | None,
) -> None:
    """Change priority or subject; a new priority recomputes both due instants (§4)."""
    row = await repo.load(session, principal, ticket_id, lock=True)
    check_version(row, if_match)
    values: dict[str, Any] = {}
    if data.subject is not None and data.subject != row.subject:
        values["subject"] = data.subject
    if data.priority is not None and data.priority.value != row.priority:
        values.update(await _dues(session, row, data.priority))
    if values:
        await repo.update(session, row, now, **values)
        await audit_change(
            session,
            principal,
            row,
            "ticket.updated",
            {k: v for k, v in data.model_dump(mode="json", exclude_none=True).items()},
        )


async def _dues(session: AsyncSession, row: Any, priority: Priority) -> dict[str, Any]:
    """``priority`` and the due instants it gives the ticket (the first-response due only
    while no agent has answered)."""
    values: dict[str, Any] = {
        "priority": priority.value,
        "resolution_due": rules.resolution_due(
            row.resolution_started_at, TicketType(row.type), priority
        ),
    }
    if row.first_response_at is None:  # an answered ticket was judged by its old due
        hours = (await repo.service_hours(session, [row.store_id]))[row.store_id]
        values["first_response_due"] = rules.first_response_due(row.opened_at, priority, hours)
    return values


async def reopen(
    session: AsyncSession,
    principal: Principal,
    ticket_id: int,
    now: datetime,
    if_match: int | None,
) -> None:
    """Open a resolved ticket again: a new resolution clock starts now (§4)."""
    row = await repo.load(session, principal, ticket_id, lock=True)
    check_version(row, if_match)
    if row.status == TicketStatus.OPEN.value:
        raise Conflict("invalid_transition", "The ticket is open already.")
    ticket_type = TicketType(row.type)
    await repo.update(
        session,
        row,
        now,
        status=TicketStatus.OPEN.value,
        resolved_at=None,
        outcome=None,
        refund_amount=None,
        compensation_amount=None,
        restock=None,
        resolution_started_at=now,
        resolution_due=rules.resolution_due(now, ticket_type, Priority(row.priority)),
        reopen_count=row.reopen_count + 1,
    )
    if row.order_id is not None and ticket_type in rules.HOLDING_TYPES:
        order = await repo.lock_order(session, row.order_id)
        if order is not None:
            await repo.sync_order_flags(session, order, now, holding=True)
    await audit_change(
        session, principal, row, "ticket.reopened", {"reopen_count": row.reopen_count + 1}
    )
